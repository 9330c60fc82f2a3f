"""Alerts on the stream: a complaint from a top-tier customer, and at-risk by time alone.

The worker runs a wall clock that tests shift with POST /clock (clock_control) and
sweeps due customers every 0.2 s, so an at-risk alert appears with no new event.
Event times are taken from the worker's own (shifted) clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from scoring.ids import output_id
from tests.kits.stream import StartStream, StreamGroup, Upstream, complaint, purchase, uid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("alerts", clock="wall", clock_control=True, review_interval_seconds=0.2) as group:
        yield group


async def test_complaint_from_a_top_tier_customer_alerts(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    now = await stream.clock_now()
    customer = uid("top")
    buys = [purchase(customer, 1000, now - timedelta(days=1, minutes=10 - i)) for i in range(4)]
    early = complaint(customer, 1, now - timedelta(days=1, minutes=8))  # after one purchase: tier A, no alert
    late = complaint(customer, 2, now - timedelta(days=1, minutes=2))   # tier AAA (score 83 before): alert
    for event in [buys[0], early, *buys[1:], late]:  # the mixed topic keeps their order
        await upstream.send(t.events, event)

    alert = (await out.wait_for(lambda: out.alerts(customer), "the top-tier complaint alert"))[0]
    assert alert["kind"] == "top_tier_complaint"
    assert alert["cause"] == late["event_id"]
    assert alert["id"] == output_id(customer, str(late["event_id"]), "alert", 0)
    assert (alert["tier"], alert["score"], alert["value_at_stake"]) == ("AAA", 79.0, 4000.0)
    assert alert["reason"] == "severity 2 complaint from tier AAA"
    # The alert topic is ordered per customer: no alert came before it (the tier-A complaint raised none).
    assert [a["cause"] for a in out.alerts(customer)] == [late["event_id"]]
    call = await out.wait_for(lambda: out.actions(customer, rule="top-tier-complaint"), "the recovery call")
    assert (call[0]["action_type"], call[0]["priority"], call[0]["roi_decision"]) == (
        "service_recovery_call", "urgent", "approved")


async def test_at_risk_by_time_alone_once_per_episode(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    customer = uid("risk")
    now = await stream.clock_now()
    first = purchase(customer, 1000, now - timedelta(days=1))  # M 1,000: valuable; typical gap 60 days
    await upstream.send(t.purchases, first)
    assert not (await out.wait_score(customer, str(first["event_id"])))["at_risk"]

    await stream.advance_clock(125)  # > 2 x 60 days since the purchase; no event arrives
    alert = (await out.wait_for(lambda: out.alerts(customer, kind="at_risk"), "the at-risk alert"))[0]
    assert alert["cause"].startswith("review@")
    assert alert["reason"] == "121 days since last purchase, typical gap 60.0 days"
    assert alert["value_at_stake"] == 1000.0
    assert 0.5 <= alert["at_risk_score"] <= 1

    await stream.advance_clock(60)  # still at risk, reviewed again (recency passes 180 days): no new alert
    await out.wait_for(lambda: any(s["r_score"] == 2 for s in out.scores(customer)), "the 181-day review")

    # A new episode: the customer buys again (no longer at risk), then lapses again.
    now = await stream.clock_now()
    again = [purchase(customer, 400, now - timedelta(days=d)) for d in (3, 2, 1)]
    for event in again:
        await upstream.send(t.purchases, event)
    assert not (await out.wait_score(customer, str(again[-1]["event_id"])))["at_risk"]
    await stream.advance_clock(130)  # typical gap now ~62 days: at risk after ~124 days
    alerts = await out.wait_for(lambda: len(out.alerts(customer, kind="at_risk")) >= 2 and
                                out.alerts(customer, kind="at_risk"), "the second episode's alert")
    # Alerts of one customer share a partition: a repeat in the first episode would sit between these two.
    assert len(alerts) == 2
    assert alerts[0]["id"] != alerts[1]["id"]
    assert all(a["cause"].startswith("review@") for a in alerts)
    assert len(out.alerts(customer)) == 2
