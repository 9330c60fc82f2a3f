"""`tierstream fit`, `tierstream evaluate` and `tierstream replay --model` end to end on CDNOW.

The commands run in-process (`streams.cli.main`); figures are checked against
the library functions on the same data, so the file reading is covered too.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.state import NEW_STATE
from scoring.step import step, value_of
from scoring.valuemodel import MODEL_FORMAT, ValueModel, evaluate, fit_value_model
from streams.cli import main
from streams.convert import model_fields
from streams.modelfile import ModelWatcher, load_model, save_model

CDNOW = Path(__file__).resolve().parent / "fixtures" / "cdnow" / "CDNOW_sample.txt"
LAYOUT = ["--delimiter", "whitespace", "--columns", "customer_id,id,occurred_at,quantity,amount"]
History = list[tuple[int, float]]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `tierstream argv` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def epoch_day(yyyymmdd: str) -> int:
    return (date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - date(1970, 1, 1)).days


@pytest.fixture(scope="module")
def cdnow() -> dict[str, History]:
    """CDNOW as the CLI reads it: customer id as written, amounts in whole cents."""
    histories: dict[str, History] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, amount = line.split()
        histories[customer].append((epoch_day(day), round(float(amount) * 100) / 100))
    return {c: sorted(h) for c, h in histories.items()}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model") / "model.json"


def test_fit_writes_a_model_file(fitted: Path, cdnow: dict[str, History], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["fit", str(CDNOW), "--as-of", "1998-06-30", "--out", str(fitted),
                            "--version", "cdnow-cli-1", *LAYOUT], capsys)
    assert code == 0, err
    assert "fitted cdnow-cli-1 on 2,357 customers" in err and "trained on 3 windows" in err
    doc = json.loads(fitted.read_text())
    assert doc["format"] == MODEL_FORMAT and doc["version"] == "cdnow-cli-1"
    model = load_model(fitted)
    want = fit_value_model(cdnow, epoch_day("19980630"), version="cdnow-cli-1")
    for got_part, want_part in ((model.bg, want.bg), (model.gg, want.gg)):
        for name, value in want_part.to_dict().items():
            assert math.isclose(getattr(got_part, name), value, rel_tol=1e-9), name
    assert model.at_risk.weights == pytest.approx(want.at_risk.weights, rel=1e-9, abs=1e-12)
    assert model.thresholds == want.thresholds
    assert model.at_risk.horizon_days == 90 and model.as_of_day == epoch_day("19980630")


def test_fit_refuses_a_history_too_short_to_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["fit", str(CDNOW), "--as-of", "1997-01-03", "--out", str(tmp_path / "m.json"),
                            *LAYOUT], capsys)
    assert code == 1 and "tierstream: cannot fit:" in err
    assert not (tmp_path / "m.json").exists()


def test_evaluate_prints_the_table_and_writes_json(
    tmp_path: Path, cdnow: dict[str, History], capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "evaluation.json"
    code, out, err = run_cli(["evaluate", str(CDNOW), "--cal-end", "19971231", "--json", str(out_json), *LAYOUT],
                             capsys)
    assert code == 0, err
    print(out)
    want = evaluate(cdnow, epoch_day("19971231"))
    assert "who stops buying in the 181 days after the calibration end" in out
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 9
    for segment, method, customers, lapsed, auc, p20 in rows:
        score = want.scores[segment][method]
        assert customers == f"{score.customers:,}" and lapsed == f"{score.positives:,}"
        assert auc == f"{score.roc_auc:.3f}" and p20 == f"{score.precision_at_20:.3f}"
    doc = json.loads(out_json.read_text())
    assert doc == json.loads(json.dumps(want.to_dict()))
    assert doc["horizon_days"] == 181 and set(doc["scores"]) == {"repeat", "repeat_top_value_third", "all"}


def test_evaluate_with_a_horizon(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["evaluate", str(CDNOW), "--cal-end", "1997-09-30", "--horizon-days", "90", *LAYOUT],
                             capsys)
    assert code == 0, err
    assert "in the 90 days after" in out


def test_evaluate_without_a_holdout_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["evaluate", str(CDNOW), "--cal-end", "19980630", *LAYOUT], capsys)
    assert code == 1 and "cannot evaluate" in err


def test_replay_with_the_model_adds_its_figures(
    fitted: Path, tmp_path: Path, cdnow: dict[str, History], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every row carries p_alive, expected purchases and CLV: what the stream computes for that customer."""
    if not fitted.exists():  # this test may run alone
        save_model(fit_value_model(cdnow, epoch_day("19980630"), version="cdnow-cli-1"), fitted)
    out = tmp_path / "scores.csv"
    code, _, err = run_cli(["replay", str(CDNOW), "--as-of", "19980630", "--model", str(fitted), "--out", str(out),
                            *LAYOUT], capsys)
    assert code == 0, err
    rows = {r["customer_id"]: r for r in csv.DictReader(out.open())}
    assert len(rows) == 2357
    model, config = load_model(fitted), ScoringConfig()
    as_of = epoch_day("19980630")
    for customer in ("00004", "00018", "00021", "05000", "10064", "23569"):
        state = NEW_STATE
        for i, (day, amount) in enumerate(cdnow[customer]):
            event = _purchase(f"{customer}-{i}", day, amount)
            state = step(state, event, event.at_ms, customer, config, model=model).state
        want = model_fields(value_of(state, as_of, config, model))
        row = rows[customer]
        for name in ("p_alive", "expected_purchases_90", "expected_purchases_365", "clv"):
            assert float(row[name]) == want[name], (customer, name, row[name], want[name])
        assert float(row["p_alive"]) <= 1.0 and float(row["clv"]) >= 0.0


def test_replay_without_the_model_has_no_model_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scores.csv"
    code, _, err = run_cli(["replay", str(CDNOW), "--as-of", "19980630", "--out", str(out), *LAYOUT], capsys)
    assert code == 0, err
    header = out.read_text().splitlines()[0].split(",")
    assert "p_alive" not in header and "clv" not in header


def test_model_watcher_sees_a_replaced_model_of_the_same_size(tmp_path: Path, fitted: Path,
                                                              cdnow: dict[str, History]) -> None:
    path = tmp_path / "model.json"
    first = fit_value_model(cdnow, epoch_day("19980630"), version="v-0001")
    save_model(first, path)
    watcher = ModelWatcher(path)
    assert watcher.poll() == first
    assert watcher.poll() is None  # unchanged
    second = ValueModel.from_dict({**first.to_dict(), "version": "v-0002"})  # same size, same second
    save_model(second, path)
    assert watcher.poll() == second
    path.write_text("{not json")
    with pytest.raises(Exception, match="is not a tierstream value model"):
        watcher.poll()
    assert watcher.poll() is None  # a bad file is reported once, not on every poll
    save_model(first, path)
    assert watcher.poll() == first


def _purchase(event_id: str, day: int, amount: float) -> CoreEvent:
    return CoreEvent(Kind.PURCHASE, event_id, day * MS_PER_DAY, round(amount * 100), "USD")


def test_an_input_with_no_readable_row_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong columns (here the quantity read as the date): every row is bad. One line naming the first
    bad row, exit 2, instead of "skipped N bad rows" and a fit error."""
    wrong = ["--delimiter", "whitespace", "--columns", "customer_id,id,amount,occurred_at,quantity"]
    for command in (["evaluate", str(CDNOW), "--cal-end", "1997-12-31"],
                    ["fit", str(CDNOW), "--as-of", "1997-12-31", "--out", str(tmp_path / "m.json")]):
        code, _, err = run_cli([*command, *wrong], capsys)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"tierstream: error: {CDNOW}: no row could be read"), err
        assert "line 1:" in lines[0] and "skipped" not in err
    assert not (tmp_path / "m.json").exists()


def test_fit_with_a_horizon_longer_than_the_history_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.json"
    code, _, err = run_cli(["fit", str(CDNOW), "--as-of", "1997-09-30", "--horizon-days", "365",
                            "--out", str(out), *LAYOUT], capsys)
    assert code == 0, err
    assert "P(no purchase in 136 days) (history too short for the 365 days asked for)" in err
    risk = json.loads(out.read_text())["at_risk"]
    assert (risk["horizon_days"], risk["requested_horizon_days"]) == (136, 365)
