"""The dashboard's contact-plan panel: the worker tallies the ContactOutcome messages it publishes (bounded:
rule x tier x group) and /dashboard/summary's `plan` holds `tierstream plan-report`'s rows over them (the same
core function, the window as the unit). The Handler runs without Faust or a broker; the page is drawn by
the dashboard's browser test."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from scoring.config import ScoringConfig
from scoring.events import to_ms
from scoring.uplift import effects
from streams.offline.plan_report import read_outcomes, row
from streams.settings import Settings
from streams.worker.handler import Handler
from streams.worker.ops import Ops
from streams.worker.states import StateCache
from streams.worker.store import DictStore
from tests.worker.test_handler import START, TOPICS, by_topic, purchase, records

HELLO = {"name": "hello", "on": "tier_changed", "direction": "new", "holdout_share": 0.5, "outcome_days": 30,
         "action": {"type": "welcome_voucher", "channel": "voucher"}}  # costs 40 and changes nothing
CONFIG = ScoringConfig.model_validate({"tiering": "absolute", "contact_rules": [HELLO], "roi_max_share": 100,
                                       "channel_costs": {"email": 0.1, "phone": 15, "mail": 3, "online": 0,
                                                         "voucher": 40}})

LATER = to_ms(START + timedelta(days=45))  # every 30-day window closed


def published_plan() -> tuple[Handler, list[str], list[str]]:
    """A handler that published the outcomes of 60 customers' welcome vouchers (half held out): (the handler,
    the customers, the ContactOutcome messages)."""
    config = CONFIG
    handler = Handler(config, TOPICS, 1, StateCache(DictStore()))
    handler.owned = {0}
    customers = [f"P{i}" for i in range(60)]
    first = [purchase(c, 1) for c in customers]
    again = [purchase(c, 2, days=10) for c in customers[::3]]  # a third buy again inside the window
    wall = to_ms(START + timedelta(days=12))
    handler.on_batch((TOPICS.events, 0), records(*first, *again), wall)
    assert handler.counters.outcomes == {}  # no window closed yet
    published = handler.review(0, customers, LATER).outputs
    outcomes = [o.value.decode() for o in by_topic(published, TOPICS.outcomes)]
    return handler, customers, outcomes


def panel(handler: Handler) -> dict:
    """What /dashboard/summary holds as `plan` (`Ops.plan` over the handler's counters)."""
    status = SimpleNamespace(settings=Settings(), counters=handler.counters)
    return Ops(status, lambda: False).plan()  # type: ignore[arg-type]


def test_the_summary_shows_plan_reports_rows_over_the_published_outcomes() -> None:
    handler, customers, outcomes = published_plan()
    config = CONFIG
    assert len(outcomes) == len(customers)
    keys = set(handler.counters.outcomes)
    assert {held for _, _, held in keys} == {True, False} and len(keys) <= 2 * len(config.tier_names)

    plan = panel(handler)
    expected = [row(e) for e in effects(read_outcomes(io.StringIO("\n".join(outcomes))))]
    assert plan["unit"] == "outcome window" and plan["outcomes"] == len(customers)
    assert [(r["rule"], r["tier"], r["treated"], r["held_out"]) for r in plan["rows"]] == \
        [(r["rule"], r["tier"], r["treated"], r["held_out"]) for r in expected]
    for got, want in zip(plan["rows"], expected, strict=True):  # one window per customer: the same figures
        for column, value in want.items():
            assert got[column] == (pytest.approx(value, abs=1e-3) if isinstance(value, float) else value), column
    whole = next(r for r in plan["rows"] if r["tier"] == "*")
    assert whole["purchase_rate_t"] + whole["purchase_rate_h"] > 0
    assert whole["flag"] == "costs more than it brings"  # a 40.00 voucher that changes nothing
    json.dumps(plan)  # what /dashboard/summary serialises

    # the windows are closed and forgotten: reviewing again counts nothing twice
    before = dict(handler.counters.outcomes)
    handler.review(0, customers, LATER)
    assert handler.counters.outcomes == before
