"""The value model in the stream: figures on every score, a new model file picked up live, ROI on CLV.

A worker runs with `model_path` (polled every 0.5 s) and the event clock, so
each purchase is scored as of its own time, as `tierstream replay` does:

- CustomerScore outputs carry p_alive, expected purchases, CLV and the model
  version, and they equal `tierstream replay --model` for the same customer;
- contact-plan actions are ROI-checked on the model's CLV (`value_basis: clv`);
- a new model file (another version) written while the worker runs is used by
  later outputs, without a restart.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY
from scoring.money import SCALE
from scoring.valuemodel import ValueModel, fit_value_model
from scoring.valuemodel.scalar import customer_value
from streams.modelfile import save_model
from tests.kits.stream import StartStream, StreamGroup, Upstream, purchase, run_cli, uid

pytestmark = pytest.mark.integration

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "CDNOW_sample.txt"
BASE = datetime(2024, 1, 5, 12, tzinfo=UTC)
# Four growing purchases: tier B, then up to A (rule thank-upgrade), then AAA (welcome-top-tier).
PURCHASES = [(0, 900.0), (36, 1200.0), (75, 1500.0), (118, 2000.0)]


def epoch_day(yyyymmdd: str) -> int:
    return (date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])) - date(1970, 1, 1)).days


def cdnow_model(as_of: str, version: str) -> ValueModel:
    histories: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in CDNOW.read_text().splitlines():
        customer, _, day, _, amount = line.split()
        histories[customer].append((epoch_day(day), float(amount)))
    return fit_value_model(histories, epoch_day(as_of), version=version)


@pytest.fixture(scope="module")
def models() -> dict[str, ValueModel]:
    return {"A": cdnow_model("19980630", "stream-model-A"), "B": cdnow_model("19971231", "stream-model-B")}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory, models: dict[str, ValueModel]) -> Path:
    path = tmp_path_factory.mktemp("stream-model") / "model.json"
    save_model(models["A"], path)
    return path


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream, model_path: Path) -> AsyncIterator[StreamGroup]:
    async with start_stream("model", clock="event", model_path=str(model_path), model_poll_seconds=0.5,
                            producer_max_batch_size=1) as group:
        yield group


def expected_fields(model: ValueModel, days: list[int], amounts: list[float], today: int) -> dict[str, float]:
    """The value model's output fields for purchases on `days` as of `today` (rounded as outputs are)."""
    first, distinct = min(days), sorted(set(days))
    x = len(distinct) - 1
    first_e4 = sum(round(a * SCALE) for d, a in zip(days, amounts, strict=True) if d == first)
    repeat = (sum(round(a * SCALE) for a in amounts) - first_e4) / (SCALE * x) if x else 0.0  # as scoring.btyd
    config = ScoringConfig()
    v = customer_value(model, x, distinct[-1] - first, today - first, repeat,
                       config.clv_horizon_months, config.clv_monthly_discount)
    return {"p_alive": round(v.p_alive, 6), "expected_purchases_90": round(v.expected_90, 4),
            "expected_purchases_365": round(v.expected_365, 4), "clv": round(v.clv, 2)}


async def test_scores_carry_the_model_figures_and_equal_replay(
    stream: StreamGroup, upstream: Upstream, models: dict[str, ValueModel], model_path: Path, tmp_path: Path,
) -> None:
    customer = uid("vm")
    events = [purchase(customer, amount, BASE + timedelta(days=d)) for d, amount in PURCHASES]
    await upstream.send_all(stream.topics.events, events)  # the mixed topic keeps their order
    last = await stream.outputs.wait_score(customer, events[-1]["event_id"])
    today = int((BASE + timedelta(days=PURCHASES[-1][0])).timestamp() * 1000) // MS_PER_DAY
    days = [today - PURCHASES[-1][0] + d for d, _ in PURCHASES]
    want = expected_fields(models["A"], days, [a for _, a in PURCHASES], today)
    assert last["model_version"] == "stream-model-A"
    for name, value in want.items():
        assert last[name] == value, (name, last.value)
    assert 0.0 < last["p_alive"] <= 1.0 and last["clv"] > 0.0

    # Every score snapshot of this customer carries the model's figures and version.
    snapshots = stream.outputs.scores(customer)
    assert snapshots and all(s["model_version"] == "stream-model-A" and s["clv"] is not None
                             and s["p_alive"] is not None for s in snapshots)

    # `tierstream replay --model` on the same purchases, as of the same day, gives the same figures.
    history = tmp_path / "history.csv"
    with history.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["customer_id", "occurred_at", "amount", "event_id"])
        for e in events:
            writer.writerow([customer, e["occurred_at"], e["amount"], e["event_id"]])
    out = tmp_path / "replay.csv"
    as_of = (BASE + timedelta(days=PURCHASES[-1][0])).date().isoformat()
    result = await run_cli("replay", str(history), "--as-of", as_of, "--model", str(model_path), "--id-col",
                           "event_id", "--config", str(stream.config_path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    row = next(r for r in csv.DictReader(out.open()) if r["customer_id"] == customer)
    for name in ("p_alive", "expected_purchases_90", "expected_purchases_365", "clv"):
        assert float(row[name]) == last[name], (name, row[name], last[name])
    assert float(row["at_risk_score"]) == last["at_risk_score"]


async def test_actions_are_roi_checked_on_clv(stream: StreamGroup, upstream: Upstream) -> None:
    customer = uid("vm-roi")
    # The module's tests share the worker's partitions, and an event-clock partition is read in time order:
    # each test's events come after every earlier test's (a customer on the same partition as an earlier
    # test's would otherwise be reviewed ahead of its own, older, events).
    events = [purchase(customer, amount, BASE + timedelta(days=150 + d)) for d, amount in PURCHASES]
    for event in events:  # one at a time, so each step publishes its own snapshot (snapshots are latest-wins)
        await upstream.send(stream.topics.events, event)
        await stream.outputs.wait_score(customer, str(event["event_id"]))
    actions = await stream.outputs.wait_for(lambda: stream.outputs.actions(customer, rule="welcome-top-tier"),
                                            f"the welcome-top-tier action of {customer}")
    every = stream.outputs.actions(customer)
    assert {a["rule"] for a in every} >= {"thank-upgrade", "welcome-top-tier"}
    for action in every:
        assert action["value_basis"] == "clv", action.value
        assert action["model_version"] == "stream-model-A"
        assert action["roi_decision"] in ("approved", "downgraded", "skipped")
        # The worth the ROI guard weighed is the CLV the score snapshot of the same cause publishes (an
        # action of a review caught up inside an event's step has no snapshot of its own: checked > 0 below).
        if str(action["cause"]).startswith("review@"):
            continue
        score = await stream.outputs.wait_score(customer, action["cause"])
        assert action["annual_value"] == score["clv"], (action.value, score.value)
    assert actions[-1]["annual_value"] > 0


async def test_a_new_model_file_is_used_without_a_restart(
    stream: StreamGroup, upstream: Upstream, models: dict[str, ValueModel], model_path: Path,
) -> None:
    pid = stream.worker.pid
    save_model(models["B"], model_path)  # what `tierstream fit --out model.json` does
    seen: list[dict[str, Any]] = []

    async def score_with_new_model() -> dict[str, Any] | None:
        """A fresh customer's first purchase; its score, once the worker has picked up model B."""
        customer = uid("vm-new")
        event = purchase(customer, 250.0, BASE + timedelta(days=300))
        await upstream.send(stream.topics.purchases, event)
        out = await stream.outputs.wait_score(customer, event["event_id"])
        seen.append(out.value)
        return out.value if out["model_version"] == "stream-model-B" else None

    found = None
    for _ in range(40):  # each try waits for its own output; the model is polled every 0.5 s
        found = await score_with_new_model()
        if found is not None:
            break
    assert found is not None, [s["model_version"] for s in seen]
    print(f"model B seen on try {len(seen)}")
    assert {s["model_version"] for s in seen} <= {"stream-model-A", "stream-model-B"}
    today = int((BASE + timedelta(days=300)).timestamp() * 1000) // MS_PER_DAY
    want = expected_fields(models["B"], [today], [250.0], today)
    for name, value in want.items():
        assert found[name] == value, (name, found)
    assert want != expected_fields(models["A"], [today], [250.0], today)  # the figures moved with the model
    assert stream.worker.alive() and stream.worker.pid == pid  # no restart
    # Later outputs of an earlier customer carry the new version too.
    customer = uid("vm-later")
    events = [purchase(customer, amount, BASE + timedelta(days=400 + d)) for d, amount in PURCHASES[:2]]
    await upstream.send_all(stream.topics.events, events)
    later = await stream.outputs.wait_score(customer, events[-1]["event_id"])
    assert later["model_version"] == "stream-model-B"
