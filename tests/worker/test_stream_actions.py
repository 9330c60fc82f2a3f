"""Contact-plan actions on the stream: rules, the ROI guard's verdicts, frequency caps in Redis.

The worker runs the default rules plus `intro-call` (a phone call to customers
entering B or C), and caps: `service_recovery_call` at most once per 7 days,
`intro_call` with a 3-day cooldown. Action ids are deterministic:
`output_id(customer, cause event id, "action", n)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from scoring.config import ScoringConfig
from scoring.ids import output_id
from tests.kits.stream import StartStream, StreamGroup, Upstream, complaint, purchase, refund, uid

pytestmark = pytest.mark.integration

INTRO_RULE = {"name": "intro-call", "on": "tier_changed", "to_tiers": ["B", "C"],
              "action": {"type": "intro_call", "channel": "phone", "priority": "normal", "due_in_days": 1,
                         "owner": "sales"}}
SCORING = {
    "contact_rules": [r.model_dump(mode="json") for r in ScoringConfig().contact_rules] + [INTRO_RULE],
    "frequency_caps": {"service_recovery_call": {"max_count": 1, "per_days": 7},
                       "intro_call": {"max_count": 5, "per_days": 30, "cooldown_days": 3}},
}


@pytest.fixture(scope="module")
async def stream(start_stream: StartStream) -> AsyncIterator[StreamGroup]:
    async with start_stream("actions", scoring=SCORING) as group:
        yield group


def yesterday(minutes: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(days=1) + timedelta(minutes=minutes)


async def make_aaa(stream: StreamGroup, upstream: Upstream, customer: str) -> list[dict[str, object]]:
    """Four purchases of 1,000 yesterday: score 85, tier AAA, annual value 4,000 (waits for the tier)."""
    events = [purchase(customer, 1000, yesterday(i)) for i in range(4)]
    for event in events:
        await upstream.send(stream.topics.purchases, event)
    await stream.outputs.wait_for(lambda: stream.outputs.tiers(customer, to_tier="AAA"), f"{customer} in AAA")
    return events


async def test_rule_match_is_approved_within_budget(stream: StreamGroup, upstream: Upstream) -> None:
    out = stream.outputs
    customer = uid("vip")
    events = await make_aaa(stream, upstream, customer)
    cause = str(events[3]["event_id"])

    welcome = (await out.wait_for(lambda: out.actions(customer, rule="welcome-top-tier"), "the VIP welcome"))[0]
    assert welcome["id"] == output_id(customer, cause, "action", 0)
    assert welcome["cause"] == cause
    assert (welcome["trigger"], welcome["action_type"], welcome["tier"]) == ("tier_changed", "vip_welcome", "AAA")
    assert (welcome["channel"], welcome["requested_channel"]) == ("phone", "phone")
    assert (welcome["priority"], welcome["owner"]) == ("high", "account_manager")
    assert (welcome["roi_decision"], welcome["cost"], welcome["annual_value"]) == ("approved", 15.0, 4000.0)
    assert welcome["reason"] == "phone costs 15.00 <= budget 400.00"
    event_time = datetime.fromisoformat(welcome["event_time"])
    assert datetime.fromisoformat(welcome["due_at"]) - event_time == timedelta(days=2)


@pytest.mark.parametrize(("amount", "channel", "cost"), [(50, "mail", 3.0), (20, "email", 0.1),
                                                         (0.5, "online", 0.0)])
async def test_roi_guard_downgrades_an_action_worth_more_than_the_customer(
        stream: StreamGroup, upstream: Upstream, amount: float, channel: str, cost: float) -> None:
    """One small purchase: score 35 (tier B); a phone call (15.00) exceeds 10% of the annual value."""
    out = stream.outputs
    customer = uid("roi")
    event = purchase(customer, amount, yesterday())
    await upstream.send(stream.topics.purchases, event)

    action = (await out.wait_for(lambda: out.actions(customer, rule="intro-call"), "the intro call"))[0]
    assert action["id"] == output_id(customer, str(event["event_id"]), "action", 0)
    assert action["tier"] == "B"
    assert (action["requested_channel"], action["channel"]) == ("phone", channel)
    assert (action["roi_decision"], action["cost"], action["annual_value"]) == ("downgraded", cost, amount)
    assert action["reason"] == (f"phone costs 15.00 > 10% of annual value {amount:.2f}; "
                                f"downgraded to {channel} ({cost:.2f})")


async def test_frequency_cap_skips_the_second_call_with_the_same_id(
        stream: StreamGroup, upstream: Upstream, redis_url: str) -> None:
    out, t = stream.outputs, stream.topics
    customer = uid("cap")
    await make_aaa(stream, upstream, customer)
    first = complaint(customer, 1, yesterday(10))   # 83: still AAA -> alert + service recovery call
    second = complaint(customer, 1, yesterday(11))  # 81: again, within the 7-day cap window
    await upstream.send(t.complaints, first)
    await upstream.send(t.complaints, second)
    first_id = output_id(customer, str(first["event_id"]), "action", 0)
    second_id = output_id(customer, str(second["event_id"]), "action", 0)

    await out.wait_for(lambda: out.actions(customer, id=second_id), "the second recovery call")
    approved = out.actions(customer, id=first_id)
    assert [(a["rule"], a["roi_decision"]) for a in approved] == [("top-tier-complaint", "approved")]
    skipped = out.actions(customer, id=second_id)[0]
    assert (skipped["rule"], skipped["action_type"]) == ("top-tier-complaint", "service_recovery_call")
    assert skipped["roi_decision"] == "skipped"
    assert skipped["reason"].startswith("frequency cap: cap; ")
    assert skipped["cause"] == second["event_id"]
    assert len(out.alerts(customer, kind="top_tier_complaint")) == 2  # the alerts themselves are not capped

    # Redelivered complaints change nothing and send nothing (their outputs went out before their state).
    await upstream.send(t.complaints, second)
    await upstream.send(t.complaints, first)
    barrier = complaint(customer, 1, yesterday(12))  # the third within the window: capped too
    await upstream.send(t.complaints, barrier)
    barrier_id = output_id(customer, str(barrier["event_id"]), "action", 0)
    third = (await out.wait_for(lambda: out.actions(customer, id=barrier_id), "the third recovery call"))[0]
    assert third["roi_decision"] == "skipped"
    assert len(out.actions(customer, id=first_id)) == len(out.actions(customer, id=second_id)) == 1
    assert {a["id"] for a in out.actions(customer)} == {
        output_id(customer, str(c), "action", 0) for c in (out.tiers(customer, to_tier="AAA")[0]["cause"],
                                                           first["event_id"], second["event_id"],
                                                           barrier["event_id"])}

    client = aioredis.Redis.from_url(redis_url)
    try:
        sent = await client.zrange(f"{stream.prefix}cap:{customer}:service_recovery_call", 0, -1)
    finally:
        await client.aclose()
    assert [s.decode() for s in sent] == [first_id]  # only the call that went out is recorded


async def test_cooldown_skips_an_action_too_soon_after_the_last(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    customer = uid("cool")
    buy = purchase(customer, 50, yesterday(0))         # score 35: new in B -> intro call (downgraded to mail)
    back = refund(customer, 50, yesterday(1))          # all returned: score 5, down to C -> intro call again
    await upstream.send(t.events, buy)  # the mixed topic keeps their order
    await upstream.send(t.events, back)

    calls = await out.wait_for(lambda: len(out.actions(customer, rule="intro-call")) >= 2 and
                               out.actions(customer, rule="intro-call"), "two intro calls")
    assert [c["cause"] for c in calls] == [buy["event_id"], back["event_id"]]
    assert (calls[0]["roi_decision"], calls[0]["channel"]) == ("downgraded", "mail")
    assert calls[1]["roi_decision"] == "skipped"
    assert calls[1]["reason"].startswith("frequency cap: cooldown; ")
    assert calls[1]["id"] == output_id(customer, str(back["event_id"]), "action", 0)
    down = await out.wait_for(lambda: out.tiers(customer, direction="down"), "the downgrade to C")
    assert (down[0]["from_tier"], down[0]["to_tier"]) == ("B", "C")
