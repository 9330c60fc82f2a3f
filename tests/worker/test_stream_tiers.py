"""Tiers on the stream: first assignment, upgrades, and downgrades with hysteresis.

Default rules with absolute tiering (no calibration): AAA >= 80, A >= 60, B >= 35, C; leaving a tier
needs a score below its threshold minus 3. Scores here (R5 = 35 points, M 1,000+ = 26.25, M 3,000+ = 35,
F 2+ = 7.5, F 4+ = 15; a complaint costs 2 points per severity, an enquiry adds 1)
are worked out by hand from those rules.

Score snapshots are "latest per customer": events sent in a burst may share one. Where a test checks
the score after every event, it sends the next one once the previous one's snapshot is out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.kits.stream import Out, StreamGroup, Upstream, complaint, enquiry, http_json, purchase, uid

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stream(default_stream: StreamGroup) -> StreamGroup:
    return default_stream  # the shared worker with the default settings


def yesterday(minutes: int = 0) -> datetime:
    return datetime.now(UTC) - timedelta(days=1) + timedelta(minutes=minutes)


async def send_scored(stream: StreamGroup, upstream: Upstream, topic: str, event: dict[str, object]) -> Out:
    """Send one event and wait for the score snapshot it caused."""
    await upstream.send(topic, event)
    return await stream.outputs.wait_score(str(event["customer_id"]), str(event["event_id"]))


async def test_first_tier_then_upgrade(stream: StreamGroup, upstream: Upstream) -> None:
    out, topic = stream.outputs, stream.topics.purchases
    customer = uid("up")
    events = [purchase(customer, 1000, yesterday(i)) for i in range(4)]  # scores 61.25, 68.75, 77.5, 85
    snapshots = [await send_scored(stream, upstream, topic, event) for event in events]

    await out.wait_for(lambda: out.tiers(customer, to_tier="AAA"), "the upgrade to AAA")
    first, second = out.tiers(customer)  # one partition: the new-tier record was read before the upgrade

    assert first["cause"] == events[0]["event_id"]
    assert (first["from_tier"], first["to_tier"], first["direction"]) == (None, "A", "new")
    assert (first["score"], first["previous_score"]) == (61.25, None)
    assert first["touch_plan"] == {"channel": "email", "cadence_days": 30, "owner": "crm"}

    assert second["cause"] == events[3]["event_id"]
    assert (second["from_tier"], second["to_tier"], second["direction"]) == ("A", "AAA", "up")
    assert (second["score"], second["previous_score"]) == (85.0, 77.5)
    assert second["touch_plan"] == {"channel": "phone", "cadence_days": 30, "owner": "account_manager"}

    assert [(s["cause"], s["tier"], s["score"]) for s in snapshots] == [
        (events[0]["event_id"], "A", 61.25), (events[1]["event_id"], "A", 68.75),
        (events[2]["event_id"], "A", 77.5), (events[3]["event_id"], "AAA", 85.0)]


async def test_hysteresis_keeps_the_tier_inside_the_margin_then_downgrades(
        stream: StreamGroup, upstream: Upstream) -> None:
    out = stream.outputs
    customer = uid("hy")
    steps = [
        (purchase(customer, 1000, yesterday(0)), "A", 61.25),
        (complaint(customer, 1, yesterday(1)), "A", 59.25),  # below 60, above 57: stays A
        (enquiry(customer, yesterday(2)), "A", 60.25),
        (complaint(customer, 1, yesterday(3)), "A", 58.25),  # still inside the margin
        (complaint(customer, 1, yesterday(4)), "B", 56.25),  # below 57: down to B
    ]
    scored = [await send_scored(stream, upstream, stream.topics.events, event) for event, _, _ in steps]

    down = (await out.wait_for(lambda: out.tiers(customer, direction="down"), "the downgrade"))[0]
    assert down["cause"] == steps[4][0]["event_id"]
    assert (down["from_tier"], down["to_tier"]) == ("A", "B")
    assert (down["score"], down["previous_score"]) == (56.25, 58.25)
    assert down["touch_plan"] == {"channel": "email", "cadence_days": 60, "owner": "crm"}
    # Same topic and partition, so any tier change of the events in between would come first:
    assert [r["cause"] for r in out.tiers(customer)] == [steps[0][0]["event_id"], steps[4][0]["event_id"]]

    for (event, tier, score), snapshot in zip(steps, scored, strict=True):
        assert (snapshot["tier"], snapshot["score"]) == (tier, score), event

    # The downgrade from A triggers the default win-back rule.
    win_back = await out.wait_for(lambda: out.actions(customer, rule="win-back-downgrade"), "the win-back action")
    assert win_back[0]["cause"] == steps[4][0]["event_id"]
    assert win_back[0]["action_type"] == "win_back_offer"


async def test_reentering_a_tier_needs_its_full_threshold(stream: StreamGroup, upstream: Upstream) -> None:
    out = stream.outputs
    customer = uid("re")
    first = purchase(customer, 1000, yesterday(0))               # 61.25 A
    drop = complaint(customer, 3, yesterday(1))                  # 55.25 B (below 57)
    near = enquiry(customer, yesterday(2))                       # 56.25: above 57 - 3 but below 60: stays B
    back = purchase(customer, 1000, yesterday(3))                # F 2, M 2,000: 68.75 - 6 = 62.75: A again
    for event in (first, drop):
        await upstream.send(stream.topics.events, event)
    snapshot = await send_scored(stream, upstream, stream.topics.events, near)
    assert (snapshot["tier"], snapshot["score"]) == ("B", 56.25)
    await upstream.send(stream.topics.events, back)

    await out.wait_for(lambda: out.tiers(customer, cause=back["event_id"]), "the way back up")
    moves = [(r["cause"], r["from_tier"], r["to_tier"], r["direction"]) for r in out.tiers(customer)]
    assert moves == [(first["event_id"], None, "A", "new"), (drop["event_id"], "A", "B", "down"),
                     (back["event_id"], "B", "A", "up")]


async def test_outputs_only_on_change_and_a_redelivery_sends_nothing(stream: StreamGroup, upstream: Upstream) -> None:
    out, t = stream.outputs, stream.topics
    send = lambda event: upstream.send(t.events, event)  # one ordered topic for the whole story
    customer = uid("once")
    events = [purchase(customer, 1000, yesterday(i)) for i in range(4)]
    for event in events:
        await send(event)
    await out.wait_for(lambda: out.actions(customer, rule="welcome-top-tier"), "the VIP welcome")
    await out.wait_score(customer, str(events[3]["event_id"]))
    before = {r["id"] for r in out.for_customer(customer)}
    upgrade = str(events[3]["event_id"])
    assert len(out.tiers(customer, cause=upgrade)) == len(out.actions(customer, cause=upgrade)) == 1

    unchanged = purchase(customer, "0.01", yesterday(5))  # F and M ranks stay: score 85, no tier change, no action
    barrier = enquiry(customer, yesterday(6))             # +1 point: a new snapshot, after all the others
    for event in (events[1], events[3], unchanged, events[0], barrier):  # 1, 3 and 0 are redelivered
        await send(event)

    snapshot = await out.wait_score(customer, str(barrier["event_id"]))  # on the same partition, after the others
    assert snapshot["score"] == 86.0
    # A redelivered event changes nothing and sends nothing: its outputs went out before its state was written.
    for topic in (t.tier_changes, t.actions, t.scores):
        assert len(out.of(topic, customer, cause=upgrade)) <= 1, topic

    # What is new is score snapshots only: the barrier's, and the unchanged purchase's own snapshot of its
    # figures (frequency and spend moved) unless both steps fell in one flush, which keeps the latest only.
    fresh = [r for r in out.for_customer(customer) if r["id"] not in before]
    assert snapshot["id"] in {r["id"] for r in fresh}
    assert {r.topic for r in fresh} == {t.scores}, [(r.topic, r.get("type")) for r in fresh]
    assert {r["cause"] for r in fresh} <= {unchanged["event_id"], barrier["event_id"]}
    assert not [r for r in out.for_customer(customer) if r["cause"] == unchanged["event_id"] and r.topic != t.scores]
    status, profile = await http_json("GET", f"{stream.worker.web_url}/customers/{customer}")
    assert (status, profile["frequency"], profile["monetary"]) == (200, 5, 4000.01)
