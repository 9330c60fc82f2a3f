"""EventOrder (the event clock's reorder buffer and safe watermark), without a broker."""

from __future__ import annotations

from streams.worker.clock import NO_WATERMARK, EventOrder, day_before_ms

DAY = 86_400_000


def test_events_are_released_in_time_then_id_order_once_every_input_has_passed_them() -> None:
    order = EventOrder()
    a, b = ("t", 0), ("t", 1)
    order.saw(a, 5 * DAY)
    order.hold(0, 5 * DAY, "e2", None, a, 1)
    order.hold(1, 5 * DAY, "e1", None, a, 2)
    assert order.safe_watermark([a, b], set()) == -NO_WATERMARK  # b never read: holds everything
    assert order.release(order.safe_watermark([a, b], set())) == []
    order.saw(b, 6 * DAY)
    released = order.release(order.safe_watermark([a, b], set()))
    assert [h.event_id for h in released] == ["e1", "e2"]


def test_a_forwarded_event_holds_the_watermark_until_it_is_read_back() -> None:
    order, a = EventOrder(), ("t", 0)
    order.saw(a, 9 * DAY)
    order.forwarded("e", 3 * DAY, source=(a, 7))
    assert order.safe_watermark([a], set()) == 3 * DAY - 1
    assert order.arrived("e") == (a, 7)
    assert order.safe_watermark([a], set()) == 9 * DAY


def test_reviews_resume_from_the_recovered_states_clock_without_a_new_event() -> None:
    order = EventOrder()
    assert order.sweep_now_ms(2, NO_WATERMARK) is None  # nothing released, nothing recovered
    order.recovered(2, 40 * DAY + 5)
    order.recovered(2, 30 * DAY)  # an older state does not move it back
    assert order.sweep_now_ms(2, NO_WATERMARK) == day_before_ms(40 * DAY + 5)
    assert order.sweep_now_ms(2, 35 * DAY) == day_before_ms(35 * DAY)  # never past the watermark
    order.drop()
    assert order.sweep_now_ms(2, NO_WATERMARK) is None


def test_a_partition_in_backlog_holds_everything_back_whatever_it_has_shown() -> None:
    order, mixed, typed = EventOrder(), ("events", 0), ("purchases", 0)
    order.saw(mixed, 20 * DAY)  # a newer record read first: a predecessor's older copy may still follow
    order.saw(typed, 30 * DAY)
    order.hold(0, 15 * DAY, "e", None, mixed, 4)
    order.backlog = {mixed}
    assert order.release(order.safe_watermark([mixed, typed], set())) == []
    order.backlog = set()  # read up to where it stood when assigned
    assert [h.event_id for h in order.release(order.safe_watermark([mixed, typed], set()))] == ["e"]
