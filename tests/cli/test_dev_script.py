"""`./dev`: what it installs for which task, and what it prints while doing so.

A stand-in venv whose `python` records its arguments and answers like pip (with the
setuptools chatter an editable install prints) shows what `./dev` asks for without
installing anything; the real bootstrap is `test_quickstart.py`'s slow test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHATTER = "SetuptoolsDeprecationWarning: editable install via a compat mode"


def stand_in(tmp_path: Path) -> tuple[Path, Path]:
    """(venv, call log): `python` logs its arguments and prints pip-like noise; `tierstream` echoes."""
    venv, calls = tmp_path / "venv", tmp_path / "calls.txt"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\necho "{CHATTER}" >&2\necho "Successfully installed"\n')
    tierstream = venv / "bin" / "tierstream"
    tierstream.write_text('#!/bin/sh\necho "tierstream $*"\n')
    for script in (python, tierstream):
        script.chmod(0o755)
    return venv, calls


def dev(*args: str, venv: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERSTREAM_", "VIRTUAL_ENV"))}
    return subprocess.run([str(ROOT / "dev"), *args], env={**env, "TIERSTREAM_VENV": str(venv)},
                          capture_output=True, text=True, timeout=60, check=False)


def installs(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if " -e " in line] if calls.exists() else []


def test_the_demo_installs_the_package_alone_says_so_and_hides_the_chatter(tmp_path: Path) -> None:
    venv, calls = stand_in(tmp_path)
    first = dev("demo", "--duration", "1", venv=venv)
    assert first.returncode == 0, first.stderr
    assert installs(calls) == ["-m pip install --quiet --disable-pip-version-check -e ."]  # no dev extras
    assert "installing tierstream (base" in first.stderr
    assert CHATTER not in first.stderr + first.stdout and "Successfully" not in first.stdout
    assert first.stdout.strip() == "tierstream demo --duration 1"
    again = dev("demo", venv=venv)
    assert again.returncode == 0 and again.stderr == ""  # installed: nothing to do, nothing said
    assert len(installs(calls)) == 1


def test_other_tasks_add_the_dev_tools_once_and_the_demo_then_reuses_them(tmp_path: Path) -> None:
    venv, calls = stand_in(tmp_path)
    assert dev("env", venv=venv).returncode == 0
    assert installs(calls) == ["-m pip install --quiet --disable-pip-version-check -e .[dev]"]
    assert dev("demo", venv=venv).returncode == 0
    assert dev("env", venv=venv).returncode == 0
    assert len(installs(calls)) == 1


def test_a_failed_install_shows_its_log(tmp_path: Path) -> None:
    venv, _ = stand_in(tmp_path)
    (venv / "bin" / "python").write_text('#!/bin/sh\necho "ERROR: no matching distribution" >&2\nexit 1\n')
    failed = dev("demo", venv=venv)
    assert failed.returncode == 1
    assert "ERROR: no matching distribution" in failed.stderr and "installing failed" in failed.stderr
