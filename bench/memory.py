"""Part 5: serialised state bytes per customer, and RSS per customer (real worker and the memory model)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.core import state_sizes
from bench.data import core_events_by_customer
from bench.memory_model import write_states
from bench.services import ROOT
from scoring.config import ScoringConfig


def state_bytes(messages: list[Any], config: ScoringConfig, path: Path) -> dict[str, Any]:
    """Sizes of the part-2 customers' states as the stream stores them; the states go to `path`."""
    states = state_sizes(core_events_by_customer(messages), config)
    write_states(path, states)
    sizes = sorted(len(s) for s in states)
    return {"customers": len(sizes), "mean": statistics.fmean(sizes), "p50": sizes[len(sizes) // 2],
            "p99": sizes[int(len(sizes) * 0.99)], "max": sizes[-1]}


def start_models(sizes: tuple[int, ...], states: Path) -> list[subprocess.Popen[bytes]]:
    """One memory-model process per size (they measure RSS, not time: they may run alongside)."""
    return [subprocess.Popen([sys.executable, "-m", "bench.memory_model", "--customers", str(n), "--states",
                              str(states)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for n in sizes]


def collect_models(procs: list[subprocess.Popen[bytes]]) -> dict[int, dict[str, Any]]:
    out = {}
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"memory model failed: {stderr.decode()[-2000:]}")
        doc = json.loads(stdout)
        out[int(doc["customers"])] = doc
    return out
