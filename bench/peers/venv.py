"""The peers' own virtualenv, built on demand from `requirements.txt` (`python -m bench.peers.venv`).

quixstreams caps pydantic and confluent-kafka below the versions the project's environment holds, so
installing it there would downgrade them: the peers run from `.venv-peers/` at the repository root
(ignored by git), as child processes. Built with uv when it is found (next to this interpreter or on
PATH), else `python -m venv` and pip; rebuilt when `requirements.txt` changes (a stamp holds its hash).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
VENV = ROOT / ".venv-peers"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _uv() -> str | None:
    local = Path(sys.executable).parent / "uv"
    return str(local) if local.is_file() else shutil.which("uv")


def ensure(venv: Path = VENV, requirements: Path = REQUIREMENTS) -> Path:
    """The peers' interpreter, the virtualenv created and filled first when missing or stale."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / "requirements.sha256"
    if stamp.is_file() and stamp.read_text() == digest and python_of(venv).is_file():
        return python_of(venv)
    uv = _uv()
    if uv is not None:
        subprocess.run([uv, "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python_of(venv)), "-r", str(requirements)],
                       check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python_of(venv)), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
    stamp.write_text(digest)
    return python_of(venv)


if __name__ == "__main__":
    print(ensure())
