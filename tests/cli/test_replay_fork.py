"""A batch replay of many customers evaluates and writes them in two processes (`batch.write_population`):
the same output bytes, the same printed summary and counts as one process, on a slice of Online Retail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.offline import background, batch
from tests.cli.test_affinity_cli import retail_slice
from tests.cli.test_model_cli import RETAIL, run_cli


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fifth of Online Retail's customers (CustomerID ending in 3 or 8) and the rows without a customer."""
    return retail_slice(tmp_path_factory.mktemp("retail") / "fifth.csv", lambda c: c[-1:] in ("3", "8", ""))


def replayed(retail: Path, folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
             fork_min: int, extra: list[str]) -> tuple[bytes, str, str, list[bool]]:
    """Output file, stdout, stderr (the timing line left out) and whether each row writing forked."""
    forked: list[bool] = []  # one entry per fork asked for: whether it forked
    real = background.in_background

    def spy(call: Any, enabled: bool = True, expected: Any = ()) -> Any:
        forked.append(enabled and background.can_fork())
        return real(call, enabled, expected)

    monkeypatch.setattr(batch, "FORK_MIN_CUSTOMERS", fork_min)
    monkeypatch.setattr(batch, "in_background", spy)
    out = folder / f"out-{fork_min}.csv"
    code, stdout, stderr = run_cli(["replay", str(retail), "--as-of", "2011-12-09", "-o", str(out), *RETAIL,
                                    *extra], capsys)
    assert code == 0, stderr
    kept = "\n".join(line for line in stderr.splitlines() if "rows/s" not in line)
    return out.read_bytes(), stdout, kept, forked


@pytest.mark.parametrize("tiering", ["calibrated", "absolute"])
def test_two_processes_write_what_one_writes(
    retail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tiering: str,
) -> None:
    config = tmp_path / "tierstream.yaml"
    config.write_text(f"scoring:\n  tiering: {tiering}\n")
    extra = ["--config", str(config)]
    one = replayed(retail, tmp_path, capsys, monkeypatch, 10**9, extra)
    two = replayed(retail, tmp_path, capsys, monkeypatch, 1, extra)
    assert one[3] == [] and two[3] == [True]  # forked only when asked to
    assert two[:3] == one[:3]
    rows = one[0].decode().splitlines()
    assert len(rows) > 800 and len(set(rows)) == len(rows)  # hundreds of customers, each once
