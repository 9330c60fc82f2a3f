"""`tierstream calibrate`, `tierstream evaluate` and `tierstream fit` on inputs larger than a part: spilled to disk
by customer (`streams.offline.populations`, `streams.offline.spill`), they write the same files (calibration,
model) and print the same lines as in memory.

The part and block sizes are patched small so that a slice of Online Retail (quoted rows read row by row,
bad rows, returns) is spilled in a dozen parts or so; a spy checks it was.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from streams.offline import columnar, spill
from tests.cli.test_affinity_cli import retail_slice
from tests.cli.test_model_cli import RETAIL, run_cli

Run = tuple[int, str, str, list[bytes]]  # exit code, stdout, stderr, the files written


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tenth of Online Retail's customers (CustomerID ending in 7) and the rows without a customer."""
    path = tmp_path_factory.mktemp("retail") / "tenth.csv"
    return retail_slice(path, lambda customer: customer[-1:] in ("7", ""))


def spilled_in(monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> list[int]:
    """Patch the part size to `chunk_bytes` (blocks of a quarter of it); the parts of each spill, as it runs."""
    monkeypatch.setattr(spill, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", chunk_bytes // 4)
    seen: list[int] = []
    real = spill.spilled

    def spy(inputs: Any, parts: int, *args: Any, **kwargs: Any) -> AbstractContextManager[spill.SpilledPopulation]:
        seen.append(parts)
        return real(inputs, parts, *args, **kwargs)

    monkeypatch.setattr(spill, "spilled", spy)
    return seen


def runs(
    argv: Callable[[str], list[str]], outputs: Callable[[str], list[Path]], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, size: int,
) -> tuple[Run, Run, list[int]]:
    """(in memory, spilled in parts of `size` bytes, the spills' parts): exit code, stdout, stderr, files."""
    done: list[Run] = []
    for name in ("whole", "parts"):
        if name == "parts":
            seen = spilled_in(monkeypatch, size)
        code, out, err = run_cli(argv(name), capsys)
        assert code == 0, err
        done.append((code, out, err.replace(name, "NAME"), [p.read_bytes() for p in outputs(name)]))
    return done[0], done[1], seen


def test_calibrate_spilled_writes_the_same_file_and_moves(
    retail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = tmp_path / "old.json"
    code, _, err = run_cli(["calibrate", str(retail), "--as-of", "2011-06-30", "--out", str(old), *RETAIL], capsys)
    assert code == 0, err

    def argv(name: str) -> list[str]:
        return ["calibrate", str(retail), "--as-of", "2011-12-09", "--out", str(tmp_path / f"{name}.json"),
                "--diff", str(old), *RETAIL]

    in_memory, spilled, seen = runs(argv, lambda name: [tmp_path / f"{name}.json"], capsys, monkeypatch,
                                    retail.stat().st_size // 12)
    assert len(seen) == 1 and seen[0] >= 12
    assert spilled == in_memory
    assert "skipped " in in_memory[2] and "moved: " in in_memory[2]  # bad rows and moves are compared too


def test_evaluate_spilled_checks_the_value_model_and_the_potential_alike(
    retail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both checks read spilled (the value model's from the purchase log made part by part, the potential's
    from the population): the same table, notes, JSON and lines as in memory."""
    def argv(name: str) -> list[str]:
        return ["evaluate", str(retail), "--cal-end", "2011-09-09", "--bootstrap", "20", "--affinity-days", "0",
                "--json", str(tmp_path / f"{name}.json"), *RETAIL]

    in_memory, spilled, seen = runs(argv, lambda name: [tmp_path / f"{name}.json"], capsys, monkeypatch,
                                    retail.stat().st_size // 12)
    assert len(seen) == 2 and min(seen) >= 12  # the value model's read, then the potential check's
    assert spilled == in_memory
    assert "Potential, held out 90 days" in in_memory[1] and "ROC AUC" in in_memory[1]
    assert "returns (negative amounts or return rows)" in in_memory[2] and "bad rows" in in_memory[2]


def test_fit_spilled_writes_the_same_model_and_calibration(
    retail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The purchase log made part by part is the one of the whole read (customers in first-row order, the
    same day totals), so the model is the same bytes; the calibration too, and every line printed (what was
    left out: returns and bad rows; the fit's report; the calibration's)."""
    def argv(name: str) -> list[str]:
        return ["fit", str(retail), "--as-of", "2011-12-09", "--out", str(tmp_path / f"{name}.json"), *RETAIL]

    def outputs(name: str) -> list[Path]:
        return [tmp_path / f"{name}.json", tmp_path / f"{name}.calibration.json"]

    in_memory, spilled, seen = runs(argv, outputs, capsys, monkeypatch, retail.stat().st_size // 12)
    assert len(seen) == 1 and seen[0] >= 12
    assert spilled == in_memory
    assert "returns (negative amounts or return rows)" in in_memory[2] and "bad rows" in in_memory[2]
    assert "fitted " in in_memory[2] and "calibration cal-" in in_memory[2]


def test_fit_spilled_says_which_input_could_not_be_read(
    retail: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second input whose every row is bad (its time column holds no time): the same one line as in memory,
    exit 2, no model written."""
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("CustomerID,InvoiceDate,UnitPrice,Quantity\n" + "".join(
        f"{12000 + i},not a time,1.50,2\n" for i in range(400)))
    said = []
    for name in ("whole", "parts"):
        if name == "parts":
            seen = spilled_in(monkeypatch, retail.stat().st_size // 12)
        out = tmp_path / f"{name}.json"
        code, _, err = run_cli(["fit", str(retail), str(wrong), "--as-of", "2011-12-09", "--out", str(out),
                                *RETAIL], capsys)
        assert code == 2 and not out.exists(), err
        said.append(err)
    assert len(seen) == 1 and seen[0] >= 12
    assert said[0] == said[1] and said[0].startswith(f"tierstream: error: {wrong}: no row could be read"), said
