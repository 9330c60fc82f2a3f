"""The id memory of customers beyond `dedupe_exact_ids`, decided in columns (`streams.offline.batchmemory`),
against the core's fold of the same events (`scoring.fold.fold`): the same states, the same counts.

The filters here are the smallest the config allows (64 bytes: full after 53 ids, a false yes now and then),
the exact memory a few ids, so that every branch is taken: exact duplicates, ids reused with other content,
filter duplicates (true and false), full filters, events refused by the checks. With the offline config, as
replay, calibrate and fit fold (`batch_states` is theirs)."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY, CoreEvent, Kind
from scoring.fold import fold
from scoring.state import NEW_STATE, CustomerState
from streams.offline import batchmemory
from streams.offline.batchfold import batch_states
from streams.offline.columnar import EVENT_SCHEMA
from streams.offline.replay import offline

NOW_MS = 20_000 * MS_PER_DAY + 12 * 3_600_000
KINDS = [Kind.PURCHASE] * 6 + [Kind.RETURN, Kind.COMPLAINT, Kind.ENQUIRY]


@st.composite
def customer_events(draw: st.DrawFn, customer: str) -> list[CoreEvent]:
    ids = st.integers(0, draw(st.sampled_from([40, 400, 4000])))  # few distinct ids: many redeliveries
    spread = draw(st.sampled_from([[0, 1, 5], [0, 1, 5, 29, 30, 61, 200, 400, 1200]]))  # few periods: full filters
    events = []
    for _ in range(draw(st.integers(0, 260))):
        kind = draw(st.sampled_from(KINDS))
        day = 20_000 - draw(st.sampled_from(spread))
        events.append(CoreEvent(
            kind, f"{customer}-{draw(ids)}", day * MS_PER_DAY + draw(st.sampled_from([0, 3_600_000])),
            draw(st.sampled_from([0, 125_000, 5_000_000, -1])), draw(st.sampled_from(["", "", "EUR", "XXX"])),
            draw(st.sampled_from([1, 3, 9])) if kind is Kind.COMPLAINT else 0,
            draw(st.sampled_from([(), ("a",), ("a", "b")])) if kind is Kind.PURCHASE else ()))
    return events


def table(by_customer: dict[str, list[CoreEvent]]) -> pl.DataFrame:
    rows = [{"src": 0, "line": n, "customer": c, "kind": int(e.kind), "eid": e.event_id, "at_ms": e.at_ms,
             "amount_e4": e.amount_e4, "currency": e.currency, "severity": e.severity,
             "categories": list(e.categories) or None}
            for c, events in by_customer.items() for n, e in enumerate(events)]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def without_memory(state: CustomerState) -> CustomerState:
    return state._replace(seen=(), filters=())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), exact=st.sampled_from([0, 1, 3, 8]))
def test_batch_states_of_customers_beyond_the_exact_memory_are_the_folds(data: st.DataObject, exact: int) -> None:
    # as replay and calibrate fold (`offline`: every id remembered, however old)
    config = offline(ScoringConfig(fx_rates={"EUR": 1.0837}, dedupe_exact_ids=exact, dedupe_filter_bytes=64))
    by_customer = {c: data.draw(customer_events(c)) for c in ["a", "b", "c"]}
    states, rejected, duplicates = batch_states(table(by_customer), NOW_MS, config)
    want: dict[str, CustomerState] = {}
    want_rejected = want_duplicates = 0
    for customer, events in by_customer.items():
        state, applied, refused = fold(NEW_STATE, events, NOW_MS, config)
        want_rejected += len(refused)
        want_duplicates += len(events) - applied - len(refused)
        if applied:
            want[customer] = without_memory(state)
    assert {c: without_memory(s) for c, s in states.items()} == want
    assert (rejected, duplicates) == (want_rejected, want_duplicates)


@pytest.mark.parametrize(("block", "redelivered"), [(batchmemory._BLOCK, True), (100, True), (100, False)])
def test_a_wholesale_customer_fills_its_filters_and_the_decisions_are_the_cores(
    block: int, redelivered: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One customer, 3,000 distinct ids in 4 periods of 30 days, 64-byte filters (53 ids each): false yeses
    and full filters, every decision as the core's (its candidates checked in one block, and in 30; with
    redeliveries, and with every id once)."""
    monkeypatch.setattr(batchmemory, "_BLOCK", block)
    config = offline(ScoringConfig(dedupe_exact_ids=16, dedupe_filter_bytes=64))
    events = [CoreEvent(Kind.PURCHASE, f"w{i}", (20_000 - i % 120) * MS_PER_DAY, 10_000 + i) for i in range(3_000)]
    if redelivered:
        events += events[:50] + events[2_000:2_050]  # redeliveries, of exact entries and of filtered ids
    states, rejected, duplicates = batch_states(table({"w": events}), NOW_MS, config)
    state, count, refused = fold(NEW_STATE, events, NOW_MS, config)
    assert (rejected, duplicates) == (len(refused), len(events) - count - len(refused))
    assert states == {"w": without_memory(state)}
    assert 16 < count < 3_000 and rejected > 0  # the filters were full
    assert duplicates > (100 if redelivered else 0)  # and answered yes (falsely, for ids never seen before)


def test_ids_are_distinct_by_their_hashes_or_else_by_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    """`_distinct`: a repeated id is found; distinct ids whose hashes collide are still distinct (the ids
    themselves are compared when two hashes are equal)."""
    from streams.offline import batchfold

    distinct, repeated = pl.Series(["a:1", "a:2", "b:1"]), pl.Series(["a:1", "a:2", "a:1"])
    assert batchfold._distinct(distinct) and not batchfold._distinct(repeated)
    monkeypatch.setattr(pl.Series, "hash", lambda self, *a, **k: pl.Series([7] * self.len(), dtype=pl.UInt64))
    assert batchfold._distinct(distinct) and not batchfold._distinct(repeated)
