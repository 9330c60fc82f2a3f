"""The synthetic stream: deterministic by seed, and shaped like real customers."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from schemas.inputs import INPUT_MODELS
from streams.local.generator import (
    DEFAULT_START,
    LiveClock,
    customer_drafts,
    draw_persona,
    generate,
    personas,
    speed_for_rate,
    to_json,
)

SEED, CUSTOMERS, DAYS = 11, 600, 365


@pytest.fixture(scope="module")
def stream() -> list:
    return list(generate(SEED, CUSTOMERS, DAYS))


def test_same_seed_same_stream(stream: list) -> None:
    again = [to_json(m) for m in generate(SEED, CUSTOMERS, DAYS)]
    assert again == [to_json(m) for m in stream]


def test_other_seed_other_stream(stream: list) -> None:
    other = [to_json(m) for m in generate(SEED + 1, CUSTOMERS, DAYS)]
    assert other[:100] != [to_json(m) for m in stream][:100]


def test_a_customer_does_not_depend_on_the_population_size() -> None:
    assert draw_persona(SEED, 5) == personas(SEED, 50)[4] == personas(SEED, 5000)[4]
    small = [to_json(m) for m in generate(SEED, 10, 60) if m.customer_id == "C000003"]
    large = [to_json(m) for m in generate(SEED, 200, 60) if m.customer_id == "C000003"]
    assert small == large


def test_messages_are_valid_typed_events_in_time_order(stream: list) -> None:
    # Every kind of customer activity; erasure requests are an operator's input, not a shopper's.
    assert {m.type for m in stream} == set(INPUT_MODELS) - {"erasure"}
    for message in stream[:2000]:
        model = INPUT_MODELS[message.type]
        assert model.model_validate_json(to_json(message)) == message
        assert message.occurred_at.tzinfo is not None
    times = [m.occurred_at for m in stream]
    assert times == sorted(times)
    assert times[0] >= DEFAULT_START and times[-1] < DEFAULT_START + timedelta(days=DAYS)


def test_event_ids_are_unique(stream: list) -> None:
    ids = [m.event_id for m in stream]
    assert len(ids) == len(set(ids))


def test_spend_is_skewed(stream: list) -> None:
    amounts = [float(m.amount) for m in stream if m.type == "purchase"]
    assert statistics.mean(amounts) > 1.3 * statistics.median(amounts)  # lognormal: long right tail
    spend: dict[str, float] = defaultdict(float)
    for m in stream:
        if m.type == "purchase":
            spend[m.customer_id] += float(m.amount)
    ranked = sorted(spend.values(), reverse=True)
    top_tenth = sum(ranked[: len(ranked) // 10]) / sum(ranked)
    assert top_tenth > 0.4  # the best 10 % of customers bring in well over 10 % of revenue


def test_activity_is_skewed_and_customers_have_their_own_rhythm(stream: list) -> None:
    orders = Counter(m.customer_id for m in stream if m.type == "purchase")
    counts = sorted(orders.values())
    assert counts[-1] > 8 * statistics.median(counts)
    gaps = sorted(p.gap_days for p in personas(SEED, CUSTOMERS))
    assert gaps[0] < 10 and gaps[-1] > 100


def test_lapsing_customers_stop_buying(stream: list) -> None:
    last: dict[str, datetime] = {}
    for m in stream:
        if m.type == "purchase":
            last[m.customer_id] = m.occurred_at
    end = DEFAULT_START + timedelta(days=DAYS)
    lapsing = [p for p in personas(SEED, CUSTOMERS) if p.lapse_day is not None and p.lapse_day < DAYS - 60]
    assert len(lapsing) > CUSTOMERS // 10
    for p in lapsing:
        if p.customer_id in last:
            assert last[p.customer_id] < DEFAULT_START + timedelta(days=p.lapse_day)
    quiet = [c for c, t in last.items() if end - t > timedelta(days=120)]
    assert len(quiet) > CUSTOMERS // 20


def test_returns_complaints_and_enquiries(stream: list) -> None:
    kinds = Counter(m.type for m in stream)
    assert 0.03 < kinds["return"] / kinds["purchase"] < 0.25
    assert kinds["complaint"] > 0 and kinds["enquiry"] > 0
    assert {m.severity for m in stream if m.type == "complaint"} == {1, 2, 3, 4, 5}
    returned: dict[str, float] = defaultdict(float)
    bought: dict[str, float] = defaultdict(float)
    for m in stream:
        if m.type == "purchase":
            bought[m.customer_id] += float(m.amount)
        elif m.type == "return":
            returned[m.customer_id] += float(m.amount)
    heavy = [c for c in bought if returned[c] > 0.3 * bought[c]]
    assert len(heavy) > CUSTOMERS // 50  # serial returners: bad business


def test_returns_refer_to_an_earlier_order_of_the_same_customer(stream: list) -> None:
    orders = {m.order_id: m for m in stream if m.type == "purchase"}
    for m in stream:
        if m.type == "return" and m.order_id in orders:
            bought = orders[m.order_id]
            assert bought.customer_id == m.customer_id
            assert bought.occurred_at < m.occurred_at and m.amount <= bought.amount


def test_drafts_stay_inside_the_period() -> None:
    p = draw_persona(3, 1)
    drafts = customer_drafts(p, 3, 30)
    assert all(0 <= d.at_ms < 30 * 86_400_000 for d in drafts)


def test_live_clock_runs_fast_and_only_catches_up_forward() -> None:
    clock = LiveClock(virtual_ms=1_000_000, real_s=100.0, speed=86_400)  # a day per second
    assert clock.virtual_ms(101.0) == 1_000_000 + 86_400_000
    assert clock.real_s(1_000_000 + 43_200_000) == pytest.approx(100.5)
    assert not clock.catch_up(1_000_000, 101.0)  # behind us: ignored
    assert clock.catch_up(1_000_000 + 100 * 86_400_000, 101.0)
    assert clock.virtual_ms(101.0) == 1_000_000 + 100 * 86_400_000
    with pytest.raises(ValueError):
        LiveClock(0, 0.0, 0)


@pytest.mark.parametrize(("per_day", "rate", "speed"), [(86_400, 1, 1.0), (10, 10, 86_400.0), (0, 5, 1.0)])
def test_speed_for_rate(per_day: float, rate: float, speed: float) -> None:
    assert speed_for_rate(per_day, rate) == speed


def test_start_shifts_times_only() -> None:
    later = datetime(2030, 6, 1, tzinfo=UTC)
    a, b = list(generate(2, 20, 30)), list(generate(2, 20, 30, start=later))
    assert [m.event_id for m in a] == [m.event_id for m in b]
    assert all(y.occurred_at - x.occurred_at == later - DEFAULT_START for x, y in zip(a, b, strict=True))


def test_purchases_carry_items_mostly_of_the_customer_s_taste(stream: list) -> None:
    from streams.local.generator import TASTES

    taste = {p.customer_id: set(TASTES[p.taste]) for p in personas(SEED, CUSTOMERS)}
    buys = [m for m in stream if m.type == "purchase"]
    assert all(m.items and all(i.category for i in m.items) for m in buys)
    assert all(sum(i.unit_price * i.quantity for i in m.items) == m.amount for m in buys)
    items = [(m.customer_id, i.category) for m in buys for i in m.items]
    within = sum(category in taste[customer] for customer, category in items) / len(items)
    assert 0.8 < within < 0.95  # mostly their taste, sometimes anything
    assert len({p.taste for p in personas(SEED, CUSTOMERS)}) == len(TASTES)


def test_a_latent_potential_buys_more_often_after_its_day(stream: list) -> None:
    growers = {p.customer_id: p for p in personas(SEED, CUSTOMERS) if p.growth_day is not None and not p.is_lapsing}
    assert 0.1 * CUSTOMERS < len(growers) < 0.3 * CUSTOMERS
    days: dict[str, list[float]] = defaultdict(list)
    for m in stream:
        if m.type == "purchase" and m.customer_id in growers:
            days[m.customer_id].append((m.occurred_at - DEFAULT_START).total_seconds() / 86_400)
    faster = total = 0
    for customer, bought in days.items():
        p = growers[customer]
        before = [d for d in bought if d < p.growth_day]
        after = [d for d in bought if d >= p.growth_day]
        if len(before) >= 2 and len(after) >= 2:
            total += 1
            faster += (after[-1] - after[0]) / (len(after) - 1) < (before[-1] - before[0]) / (len(before) - 1)
    assert total > 10 and faster / total > 0.7


def test_customers_without_a_latent_potential_keep_their_purchases() -> None:
    """The tastes and the potential have random streams of their own: a customer without growth buys on the same
    days the same amounts as a persona drawn without them would."""
    from dataclasses import replace

    p = next(p for p in personas(SEED, 50) if p.growth_day is None and not p.is_lapsing)
    plain = replace(p, taste=0)
    assert [(d.at_ms, d.kind, d.cents) for d in customer_drafts(p, SEED, DAYS)] == [
        (d.at_ms, d.kind, d.cents) for d in customer_drafts(plain, SEED, DAYS)
    ]
