"""The README's quickstart, run from a fresh copy of the working tree in a temp dir.

The copy holds what a clone would (tracked files) plus the files not yet committed
(untracked, not ignored), so it tests the tree as it is. The fast test reuses the
project's virtualenv through a stand-in venv dir (so `./dev` neither creates nor
installs anything); the slow one proves the bootstrap: `./dev env` on a fresh venv.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The environment running the tests (its python and console script), wherever it is.
PROJECT_VENV = Path(os.environ.get("TIERSTREAM_VENV", Path(sys.executable).parent.parent))


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run and capture; the caller checks the return code (to show the output when it fails)."""
    return subprocess.run(args, check=False, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def quickstart_commands() -> list[str]:
    """The commands of the README's first code block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "the README has no code block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def copy_working_tree(dst: Path) -> Path:
    """Tracked and untracked-but-not-ignored files, with their modes and times (like a clone of the tree)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # tracked but deleted in the tree: not there
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / name)
    return dst


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("TIERSTREAM_", "KAFKA_BOOTSTRAP", "REDIS_URL", "VIRTUAL_ENV", "PYTHONPATH")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def stand_in_venv(where: Path) -> Path:
    """A venv dir whose python and tierstream are the project's: `./dev` finds it ready and up to date."""
    (where / "bin").mkdir(parents=True)
    python = where / "bin" / "python"  # a wrapper, not a symlink: a venv is found from the invoked path
    python.write_text(f'#!/bin/sh\nexec "{PROJECT_VENV / "bin" / "python"}" "$@"\n')
    python.chmod(0o755)
    (where / "bin" / "tierstream").symlink_to(PROJECT_VENV / "bin" / "tierstream")
    (where / ".installed").touch()  # newer than the copied pyproject.toml: nothing to install
    return where


def assert_demo_ran(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^tier +C\d+ ", done.stdout, re.M), done.stdout[-3000:]
    assert "nothing listening on ports" in done.stdout


def test_readme_starts_with_dev_demo_and_dev_test() -> None:
    assert quickstart_commands()[:2] == ["./dev demo", "./dev test"]


@pytest.mark.integration
def test_quickstart_from_a_fresh_copy(tmp_path: Path) -> None:
    tree = copy_working_tree(tmp_path / "tierstream")
    venv = stand_in_venv(tmp_path / "venv")
    env = clean_env(TIERSTREAM_VENV=str(venv))
    demo = run(["./dev", "demo", "--duration", "8", "--no-live", "--customers", "200"], cwd=tree, env=env,
               timeout=120)
    assert_demo_ran(demo)
    tests = run(["./dev", "test", "--collect-only", "-q", "tests/local/test_generator.py"], cwd=tree, env=env,
                timeout=120)
    assert tests.returncode == 0, tests.stdout[-2000:] + tests.stderr[-2000:]
    assert re.search(r"\d+ tests? collected", tests.stdout)
    assert sorted(p.name for p in venv.iterdir()) == [".installed", "bin"], "./dev changed the stand-in venv"


@pytest.mark.slow
@pytest.mark.integration
async def test_dev_env_bootstraps_a_fresh_venv(tmp_path: Path) -> None:
    # async, the long install in a thread: a blocked session loop would time out the session's Kafka clients
    tree = copy_working_tree(tmp_path / "tierstream")
    venv = tmp_path / "fresh-venv"
    env = clean_env(TIERSTREAM_VENV=str(venv))
    boot = await asyncio.to_thread(run, ["./dev", "env"], cwd=tree, env=env, timeout=900)
    assert boot.returncode == 0, boot.stdout[-3000:] + boot.stderr[-3000:]
    assert (venv / ".installed").is_file() and (venv / "bin" / "tierstream").is_file()
    where = run([str(venv / "bin" / "python"), "-c", "import streams; print(streams.__file__)"], cwd=tmp_path,
                env=env, timeout=60)
    assert where.stdout.strip().startswith(str(tree))  # the copy is what got installed
    demo = await asyncio.to_thread(run, ["./dev", "demo", "--duration", "8", "--no-live", "--customers", "200"],
                                   cwd=tree, env=env, timeout=180)
    assert_demo_ran(demo)
