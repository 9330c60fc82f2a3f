"""The benchmark's pure parts run and write valid JSON (`python -m bench --only core --tiny`, `--only memory`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_bench(out: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench", *args, "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results: dict[str, Any] = json.loads(out.read_text())
    assert results["meta"]["machine"]["nproc"] >= 1
    return results


def test_tiny_core_writes_results(tmp_path: Path) -> None:
    results = run_bench(tmp_path / "results.json", "--only", "core")
    assert results["core_events_per_s"] > 0
    assert results["replay_rows_per_s"] > 0
    assert 0 < results["weekly_year_state_bytes"]["folded"] < 4096


def test_tiny_memory_writes_results(tmp_path: Path) -> None:
    results = run_bench(tmp_path / "results.json", "--only", "memory")
    assert results["state_bytes_per_customer"]["mean"] > 0
    assert all(value > 0 for value in results["rss_bytes_per_customer"].values())


def test_table_rows_render_from_a_partial_document() -> None:
    from bench.report import rows

    doc = {"details": {"reviews": {"index": {"1000": {"due": 10, "seconds": 0.001, "popped_per_s": 1e4}}}},
           "due_rescored_per_s": {"1000": 500.0}}
    measured = {row.measure: row for row in rows(doc)}
    assert measured["due customers re-scored, table of 1,000"].met is False
