"""The peers' simple job (bench.peers.simple_job) and the check of a peer's outputs against its reference."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bench.data import mixed_messages, records_of
from bench.peers.run import check
from bench.peers.simple_job import by_customer, cents_of, day_of, reference, step

START = date(2025, 1, 1)


def event(kind: str, day: int, amount: str | None = None, customer: str = "C1") -> bytes:
    doc: dict[str, Any] = {"type": kind, "event_id": f"{customer}-{kind}-{day}", "customer_id": customer,
                           "occurred_at": f"{START + timedelta(days=day)}T10:00:00Z"}
    if amount is not None:
        doc["amount"] = amount
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("text", "cents"), [("27.45", 2745), ("500", 50_000), ("5.5", 550), ("-3.10", -310),
                                             ("0.07", 7)])
def test_amounts_in_cents(text: str, cents: int) -> None:
    assert cents_of(text) == cents


def test_day_is_the_utc_calendar_day() -> None:
    assert day_of("2025-01-02T23:59:59Z") - day_of("2025-01-01T00:00:00+00:00") == 1


def test_tiers_follow_recency_frequency_spend_and_the_window() -> None:
    changes = reference([
        event("purchase", 0, "27.45"),  # R 5 + F 1 + M 1 = 7: silver
        event("purchase", 1, "500.00"),  # 5 + 2 + 4 (527.45) = 11: gold
        event("enquiry", 101),  # 100 days since: R 3, 9: still gold, no output
        event("enquiry", 201),  # 200 days: R 2, 8: silver
        event("return", 202, "500.00"),  # spend 27.45: M 1, 5: bronze
        event("complaint", 366),  # the purchases of days 0 and 1 left the 365-day window: no tier
    ])
    assert [(c["event_id"], c["previous"], c["tier"]) for c in changes] == [
        ("C1-purchase-0", None, "silver"), ("C1-purchase-1", "silver", "gold"), ("C1-enquiry-201", "gold", "silver"),
        ("C1-return-202", "silver", "bronze"), ("C1-complaint-366", "bronze", None)]


def test_many_purchases_reach_platinum() -> None:
    # 30.00 every 10 days: R 5; F 1, 2, 3, 3, 4; M 1, 2, 2, 2, 3 (150.00): 7, 9, 10, 10, 12
    changes = reference([event("purchase", d, "30.00") for d in range(0, 50, 10)])
    assert [c["tier"] for c in changes] == ["silver", "gold", "platinum"]


def test_a_prospect_has_no_tier_and_no_output() -> None:
    state, change = step(None, json.loads(event("enquiry", 3)))
    assert change is None
    assert state["tier"] is None


def test_customers_do_not_share_state_on_the_generated_stream() -> None:
    """What lets a partitioned engine be compared with the one-process reference: each customer's changes
    depend on that customer's events alone, in their order."""
    records = records_of(mixed_messages(7, 200, 400, datetime(2026, 6, 1, tzinfo=UTC)))
    together = by_customer(reference([r.value for r in records]))
    alone: dict[str, list[Any]] = {}
    for customer in {r.key.decode() for r in records}:
        alone.update(by_customer(reference([r.value for r in records if r.key.decode() == customer])))
    assert together == alone
    assert sum(map(len, together.values())) > len(together)  # tiers do change after the first purchase


def test_check_finds_missing_and_reordered_outputs() -> None:
    expected = reference([event("purchase", 0, "27.45"), event("purchase", 1, "500.00"),
                          event("purchase", 0, "90.00", customer="C2")])
    assert check(expected, list(expected))["correct"] is True
    missing = check(expected, expected[1:])
    assert (missing["correct"], missing["customers_differing"], missing["first_differing"]) == (False, 1, ["C1"])
    assert check(expected, [expected[1], expected[0], expected[2]])["correct"] is False
    assert check(expected, [*expected, expected[2]])["customers_differing"] == 1  # a duplicate is a difference


def test_peer_rows_show_the_check_and_a_peer_that_did_not_run() -> None:
    from bench.report import _peer_rows

    quix = {"events_per_s": 9_000.0, "cpu_us_per_event": 100.0, "tier_changes": 10, "expected_tier_changes": 11,
            "correct": False}
    pipeline = {"events_per_s": 2_000.0, "cpu_us_per_event": 400.0,
                "peers": {"quix": quix, "bytewax": {"error": "bytewax exited with 1:"}}}
    measured = {row.measure: row for row in _peer_rows(pipeline)}
    assert measured["peer: Quix Streams, the simple job (10 tier changes)"].met is False
    assert measured["  CPU per event, worker / Quix Streams"].value == 4.0
    assert measured["peer: bytewax, the simple job: not run (bytewax exited with 1:)"].value is None
