"""A worker's `evidence_path`: loaded at start (the ROI guard's config carries it), re-read when the file
changes, a bad file keeps the evidence in force with a one-line log; a calibration applied later keeps it.
The worker is built, not started: no broker is needed to watch a file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from scoring.evidence import Evidence, make_evidence
from scoring.uplift import Observation, effects
from streams.evidencefile import save_evidence
from streams.settings import Settings
from streams.worker.app import Tierstream


def _evidence(uplift_buyers: int) -> Evidence:
    obs = [Observation(f"t{i}", "r", "A", False, i < uplift_buyers, 0.0, False, False, 0.0) for i in range(50)]
    obs += [Observation(f"h{i}", "r", "A", True, i < 10, 0.0, False, False, 0.0) for i in range(50)]
    return make_evidence(effects(obs), len(obs))


async def test_the_evidence_file_is_loaded_at_start_and_picked_up_when_it_changes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "evidence.json"
    first, second = _evidence(20), _evidence(30)
    save_evidence(first, path)
    settings = Settings(evidence_path=path, redis_url="redis://127.0.0.1:1/0",  # never connected
                        scoring={"roi_evidence": {"enabled": True}})
    worker = Tierstream(settings)
    assert worker.handler.config.evidence == first

    await worker.reload_evidence()  # unchanged: nothing to do
    assert worker.handler.config.evidence == first
    save_evidence(second, path)
    await worker.reload_evidence()
    assert worker.handler.config.evidence == second and worker.evidence == second

    bad = json.loads(second.to_json()) | {"outcomes": -1}
    tmp = path.with_name(".bad.tmp")
    tmp.write_text(json.dumps(bad))
    os.replace(tmp, path)
    with caplog.at_level(logging.ERROR, logger="tierstream.worker"):
        await worker.reload_evidence()
    [line] = [r.getMessage() for r in caplog.records if "keeping evidence" in r.getMessage()]
    assert f"{path}: evidence: outcomes: " in line and line.endswith(f"keeping evidence {second.version}")
    assert "\n" not in line and worker.handler.config.evidence == second
