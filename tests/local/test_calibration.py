"""The demo's calibration is what `tierstream calibrate` makes of the history the demo sends."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scoring.calibration import calibration_from_json
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.events import MS_PER_DAY, to_ms
from streams.cli.main import main
from streams.local.calibration import calibrate_history, history_of
from streams.local.demo import DemoOptions
from streams.local.generator import to_json, to_message

START_MS = to_ms(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))


def tierstream(*argv: str | Path) -> tuple[int, str]:
    """Run `tierstream argv` in-process: exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as exited:
        main([str(arg) for arg in argv])
    return int(exited.value.code or 0), err.getvalue()


def test_the_demo_calibrates_its_history_as_tierstream_calibrate_does(tmp_path: Path) -> None:
    opts = DemoOptions(customers=400, seed=3, duration=20, history_days=120)
    plan = opts.drafts()
    history = list(history_of(plan, opts.history_days))
    assert 0 < len(history) < len(plan)  # the live part is left out
    as_of_day = (START_MS + opts.history_days * MS_PER_DAY) // MS_PER_DAY
    mine = calibrate_history(history, opts.seed, START_MS, as_of_day, ScoringConfig())

    events = tmp_path / "history.jsonl"
    events.write_text("".join(to_json(to_message(d, opts.seed, START_MS)) + "\n" for d in history))
    out = tmp_path / "cal.json"
    day = datetime.fromtimestamp(as_of_day * 86_400, tz=UTC).date().isoformat()
    code, err = tierstream("calibrate", events, "--as-of", day, "--out", out)
    assert code == 0, err
    theirs = calibration_from_json(out.read_text())
    assert mine == theirs
    assert mine.customers <= opts.customers and 0 < mine.active <= mine.customers
    assert str(mine.as_of) == day


def test_a_history_without_purchases_has_no_calibration() -> None:
    opts = DemoOptions(customers=50, seed=3, duration=5, history_days=0)
    plan = opts.drafts()
    assert list(history_of(plan, 0)) == []
    with pytest.raises(CalibrationError):
        calibrate_history([], opts.seed, START_MS, START_MS // MS_PER_DAY, ScoringConfig())
