"""`tierstream fit`, `tierstream evaluate` and `tierstream replay --model` end to end on CDNOW.

The commands run in-process (`streams.cli.main`); figures are checked against
the library functions on the same data, so the file reading is covered too.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.money import SCALE
from scoring.state import NEW_STATE
from scoring.step import step, value_of
from scoring.valuemodel import MODEL_FORMAT, ValueModel, evaluate, fit_value_model
from streams.cli.main import main
from streams.modelfile import ModelWatcher, load_model, save_model
from streams.profile import model_values as model_fields
from tests.kits.data import online_retail

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
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
            if name != "kind":
                assert math.isclose(getattr(got_part, name), value, rel_tol=1e-9), name
    assert model.bg.drops_out and model.bg_fit is not None and model.bg_fit.method == "mle"
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
    code, out, err = run_cli(["evaluate", str(CDNOW), "--cal-end", "19971231", "--json", str(out_json),
                              "--bootstrap", "200", *LAYOUT], capsys)
    assert code == 0, err
    print(out)
    want = evaluate(cdnow, epoch_day("19971231"), bootstrap_rounds=200)
    assert "who stops buying in the 181 days after the calibration end" in out
    assert "Potential, held out 90 days: low-value customers by cell at the cut-off" in out
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert len(rows) == 9
    for segment, method, customers, lapsed, auc, p20, auc_gap, p20_gap in rows:
        score = want.scores[segment][method]
        assert customers == f"{score.customers:,}" and lapsed == f"{score.positives:,}"
        assert auc == f"{score.roc_auc:.3f}" and p20 == f"{score.precision_at_20:.3f}"
        if method == "model":
            assert auc_gap == p20_gap == ""
        else:
            low, high = want.intervals[segment][method]["roc_auc"]
            assert auc_gap == f"[{low:+.3f}, {high:+.3f}]" and low <= high
            low, high = want.intervals[segment][method]["precision_at_20"]
            assert p20_gap == f"[{low:+.3f}, {high:+.3f}]" and low <= high
    assert "1 - P(alive): the unpenalised BG/NBD" in out and "200 resamples of customers" in out
    doc = json.loads(out_json.read_text())
    assert doc == json.loads(json.dumps(want.to_dict()))
    assert doc["horizon_days"] == 181 and set(doc["scores"]) == {"repeat", "repeat_top_value_third", "all"}
    assert doc["model_fit"]["method"] == "mle" and doc["baseline_penalizer"] == 0.0


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
    return CoreEvent(Kind.PURCHASE, event_id, day * MS_PER_DAY, round(amount * SCALE), "USD")


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


# --- real logs: Online Retail, too-small histories, and what counts as a purchase --------------

ONLINE_RETAIL = online_retail()
RETAIL = ["--customer-col", "CustomerID", "--time-col", "InvoiceDate", "--amount-col", "UnitPrice",
          "--quantity-col", "Quantity"]


@pytest.mark.parametrize("as_of", ["2011-06-09", "2011-09-09"])
def test_fit_on_online_retail_says_which_fit_it_chose(
    as_of: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The unpenalised BG/NBD has no interior maximum there; fit succeeds and says what it did instead.
    Cancellations (negative amounts) are returns, not purchases; lines without a customer are bad rows."""
    out = tmp_path / "model.json"
    code, _, err = run_cli(["fit", str(ONLINE_RETAIL), "--as-of", as_of, "--out", str(out), *RETAIL], capsys)
    assert code == 0, err
    assert "8,905 returns (negative amounts or return rows), 135,080 bad rows" in err
    assert "no interior maximum (a -> 0" in err and "held-out log-likelihood" in err
    assert "spend/frequency check: Pearson r = " in err
    doc = json.loads(out.read_text())
    assert doc["format"] == MODEL_FORMAT and doc["fits"]["bgnbd"]["method"] in ("nbd_limit", "penalised")
    assert doc["fits"]["bgnbd"]["reason"] in err and doc["spend_check"]["customers"] > 1000
    assert load_model(out).bg_fit is not None


def test_evaluate_on_online_retail_says_the_baseline_needed_a_penalty(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["evaluate", str(ONLINE_RETAIL), "--cal-end", "2011-09-09", "--bootstrap", "100",
                              *RETAIL], capsys)
    assert code == 0, err
    assert "who stops buying in the 91 days after the calibration end" in out
    assert "penalised, penalizer_coef 0.1 (the unpenalised fit has no interior maximum)" in out
    rows = {(r[0], r[1]): r for r in ([c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
                                      if line.startswith("│"))}
    for segment in ("repeat", "repeat_top_value_third"):
        model = float(rows[(segment, "model")][4])
        for baseline in ("one_minus_p_alive", "recency_days"):
            assert model > float(rows[(segment, baseline)][4]), (segment, baseline, out)
    # the potential on held-out time: the high-potential cell moves up a tier more often, beyond the interval
    found = re.search(r"difference ([+-][\d.]+)% \(95% CI ([+-][\d.]+)% to ([+-][\d.]+)%\)", out)
    assert found is not None, out
    difference, low, high = map(float, found.groups())
    assert 0 < low < difference < high, out
    assert re.search(r"develop \(high potential\): [\d,]+ of [\d,]+ moved up a tier", out)


def test_three_customers_get_how_much_is_needed_not_an_optimiser_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "three.csv"
    history.write_text("customer_id,occurred_at,amount\na,2024-01-01,10\na,2024-02-01,12\nb,2024-01-05,5\n"
                       "c,2024-01-07,7\nc,2024-03-07,9\nc,2024-04-07,9\n")
    for command in (["fit", str(history), "--as-of", "2024-04-30", "--out", str(tmp_path / "m.json")],
                    ["evaluate", str(history), "--cal-end", "2024-03-01"]):
        code, _, err = run_cli(command, capsys)
        assert code == 1, err
        assert "needs at least 10 customers with a repeat purchase" in err and "this history has" in err
        assert "gradient" not in err and "[" not in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


def test_a_small_history_the_baseline_cannot_fit_is_said_to_be_too_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """12 synthetic customers: enough repeat buyers for the model, and lifetimes' baseline reports no
    convergence. Whether SciPy's BFGS converges on so small a history moves with the NumPy and SciPy versions
    (it did on those of 2026-12-03 morning, not on those of the evening), so the optimiser's failure is made
    here: the real fit raising what it raises when no penalty converges."""
    from importlib import import_module

    from scoring.valuemodel.errors import ValueModelError
    from scoring.valuemodel.penalised import LIFETIMES_PENALIZERS

    def no_convergence(*_: object) -> None:
        raise ValueModelError(f"lifetimes' penalised BG/NBD fit does not converge with penalizer_coef up to "
                              f"{LIFETIMES_PENALIZERS[-1]:g}")

    events = tmp_path / "twelve.jsonl"
    assert run_cli(["generate", "--customers", "12", "--days", "365", "--seed", "3", "--out", str(events)],
                   capsys)[0] == 0
    evaluation = import_module("scoring.valuemodel.evaluate")  # the module (the package's `evaluate` is its function)
    monkeypatch.setattr(evaluation, "fit_bgnbd_as_lifetimes", no_convergence)
    code, _, err = run_cli(["evaluate", str(events), "--cal-end", "2024-09-30", "--bootstrap", "0"], capsys)
    assert code == 1, err
    assert "the 1 - P(alive) baseline cannot be fitted: lifetimes' penalised BG/NBD fit does not converge" in err
    assert "this history is likely too small for it (12 customers, " in err and "more repeat buyers" in err
    assert "Traceback" not in err


def test_only_purchases_count_once_each_in_base_currency(tmp_path: Path) -> None:
    """A negative amount and a return row are returns; a complaint is no purchase; a repeated event id
    counts once; an amount in EUR is converted with the config's rate; one without a rate is left out."""
    from scoring.config import ScoringConfig
    from streams.offline.history import CsvLayout
    from streams.offline.purchases import read_purchases

    history = tmp_path / "mixed.csv"
    history.write_text(
        "id,customer,at,kind,amount,currency\n"
        "e1,a,2024-01-01,purchase,10.00,USD\n"
        "e1,a,2024-01-01,purchase,10.00,USD\n"  # re-sent
        "e2,a,2024-01-03,purchase,-4.00,USD\n"  # a refund in a purchases log
        "e3,a,2024-01-04,return,3.00,USD\n"
        "e4,a,2024-01-05,complaint,,USD\n"
        "e5,b,2024-01-02,purchase,20.00,EUR\n"
        "e6,b,2024-01-09,purchase,5.00,GBP\n"
        "e7,b,2024-02-09,purchase,1.00,USD\n"
    )
    layout = CsvLayout(customer="customer", time="at", amount="amount", type="kind", event_id="id",
                       currency="currency")
    config = ScoringConfig(fx_rates={"EUR": 1.1})
    read = read_purchases([history], layout, until_day=epoch_day("20240131"), config=config)
    assert read.histories == {"a": [(epoch_day("20240101"), 10.0)], "b": [(epoch_day("20240102"), 22.0)]}
    assert (read.purchases, read.duplicates, read.returns, read.not_purchases, read.no_rate, read.later) == (
        2, 1, 2, 1, 1, 1)
    assert read.left_out() == ("2 returns (negative amounts or return rows), 1 complaints and enquiries, "
                               "1 repeated event ids, 1 purchases in a currency without a rate (fx_rates in the "
                               "config)")
