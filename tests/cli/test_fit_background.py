"""`tierstream fit` fits the model in a forked process while it folds the calibration's population
(`streams.offline.background`): the same files and the same lines, in the same order, as in one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import streams.cli.model as model_cli
from scoring.valuemodel.errors import ValueModelError
from scoring.valuemodel.optimize import AtBoundaryError
from streams.offline.background import given_later, in_background
from tests.cli.test_model_cli import CDNOW, LAYOUT, run_cli


def _fit(tmp_path: Path, name: str, as_of: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, Path]:
    out = tmp_path / name / "model.json"
    out.parent.mkdir()
    code, _, err = run_cli(["fit", str(CDNOW), "--as-of", as_of, "--out", str(out), *LAYOUT], capsys)
    return code, err, out


def test_forked_fit_writes_what_one_process_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_cli, "BACKGROUND_MIN_BYTES", 0)
    code, forked_err, forked = _fit(tmp_path, "forked", "1998-06-30", capsys)
    assert code == 0, forked_err
    monkeypatch.setattr(model_cli, "BACKGROUND_MIN_BYTES", 10**9)
    code, alone_err, alone = _fit(tmp_path, "alone", "1998-06-30", capsys)
    assert code == 0, alone_err
    assert forked.read_bytes() == alone.read_bytes()
    calibration = Path("model.calibration.json")
    assert (forked.parent / calibration).read_bytes() == (alone.parent / calibration).read_bytes()
    assert forked_err.replace(str(forked.parent), "X") == alone_err.replace(str(alone.parent), "X")
    assert forked_err.index("fitted valuemodel-") < forked_err.index("calibration cal-")  # the model's lines first


def test_a_model_that_cannot_be_fitted_in_the_child_is_one_line_and_no_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_cli, "BACKGROUND_MIN_BYTES", 0)
    code, err, out = _fit(tmp_path, "short", "1997-01-03", capsys)
    assert code == 1 and "tierstream: cannot fit: " in err and "at least" in err
    assert "calibration" not in err
    assert not out.exists() and not out.with_suffix(".calibration.json").exists()


def _pid() -> int:
    return os.getpid()


def _boundary() -> int:
    raise AtBoundaryError("no interior maximum: a -> 0", None, ((2, -1),))  # type: ignore[arg-type]


def _broken() -> int:
    raise KeyError("other")


def test_in_background_runs_the_call_in_another_process_and_carries_expected_errors() -> None:
    with in_background(_pid) as pending:
        assert pending.result() != os.getpid()
    boundary = pytest.raises(ValueModelError, match="no interior maximum: a -> 0")  # a subclass, more arguments
    with in_background(_boundary, expected=(ValueModelError,)) as pending, boundary:
        pending.result()
    with in_background(_broken) as pending, pytest.raises(KeyError):
        pending.result()


def test_in_background_disabled_calls_on_entry_in_this_process() -> None:
    with in_background(_pid, enabled=False) as pending:
        assert not pending.failed and pending.result() == os.getpid()
    with in_background(_broken, enabled=False) as pending:
        assert pending.failed
        with pytest.raises(KeyError):
            pending.result()


_WARMED: list[int] = []


def _warm() -> None:
    _WARMED.append(os.getpid())


def _answer(value: tuple[int, list[str]]) -> tuple[int, int, list[str], list[int]]:
    return os.getpid(), value[0], value[1], list(_WARMED)


def test_given_later_warms_the_child_at_once_and_calls_it_with_the_value_given() -> None:
    with given_later(_answer, _warm) as give:
        given = (7, ["x"] * 3)
        child, number, items, warmed = give(given).result()
    assert child != os.getpid() and (number, items) == given
    assert warmed == [child] and _WARMED == []  # warmed in the child, before the call, never here


def test_given_later_whose_body_fails_before_giving_stops_the_child() -> None:
    with pytest.raises(RuntimeError, match="read failed"), given_later(_answer, _warm):
        raise RuntimeError("read failed")  # leaving without a value: the child sees EOF, the block does not hang


def test_given_later_disabled_calls_when_given_in_this_process() -> None:
    with given_later(_answer, _warm, enabled=False) as give:
        assert give((1, [])).result() == (os.getpid(), 1, [], [])
    with given_later(_broken_later, enabled=False) as give:
        pending = give(None)
        assert pending.failed
        with pytest.raises(KeyError):
            pending.result()


def _broken_later(_: object) -> int:
    raise KeyError("other")
