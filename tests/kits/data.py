"""Where the real data sets shared beside the repository are: `<repo>/../shared/data/NAME`.

Also looked for: `$TIERSTREAM_SHARED_DATA/NAME`, beside the main checkout when the repository is a
git worktree, and `/work/shared/data/NAME` (the project's machines, for a clone made elsewhere). A
test that needs a data set FAILS when it is missing: it never skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _places(name: str) -> list[Path]:
    places = []
    if env := os.environ.get("TIERSTREAM_SHARED_DATA"):
        places.append(Path(env) / name)
    places.append(ROOT.parent / "shared" / "data" / name)
    git = ROOT / ".git"
    if git.is_file():  # a worktree: ".git" names <main>/.git/worktrees/<name>
        gitdir = Path(git.read_text().split("gitdir:", 1)[1].strip())
        places.append(gitdir.parents[2].parent / "shared" / "data" / name)
    places.append(Path("/work/shared/data") / name)
    return places


def shared_data(name: str) -> Path:
    """The folder of data set `name`; fails the test when it is nowhere to be found."""
    places = _places(name)
    for place in places:
        if place.is_dir():
            return place
    pytest.fail(f"the {name} data set is missing (looked in {', '.join(map(str, places))})")


def online_retail() -> Path:
    """UCI Online Retail (README beside it): the raw gzip CSV."""
    return shared_data("online_retail") / "online_retail.csv.gz"
