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


def test_the_latency_floor_is_reported_beside_the_loads_without_a_target() -> None:
    from bench.report import rows

    load = {"offered_per_s": 960.0, "achieved_per_s": 955.0, "probes": 720, "answered": 720, "p50": 250.0,
            "p95": 520.0, "p99": 600.0, "max": 700.0, "cpu_us_per_event": 1050.0}
    doc = {"latency_ms": {"50%": load, "floor": {**load, "p99": 73.0, "cpu_us_per_event": 340.0, "load": "50%"}}}
    measured = {row.measure: row for row in rows(doc)}
    assert measured["50% load: p99 (720/720 probes)"].met is False
    floor = measured["50% load through that forwarder: p99 (the floor)"]
    assert floor.value == 73.0 and floor.met is None and floor.target == ""
    assert measured["50% load: the forwarder's CPU per event (aiokafka alone)"].value == 340.0
