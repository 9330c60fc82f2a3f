"""A purchase's items are part of its content for dedupe (issue 18), in the worker's Handler (no broker): the
same order resent is a duplicate, the same id and amount with other items a `rejected` dead letter."""

from __future__ import annotations

from decimal import Decimal

from schemas.inputs import LineItem
from schemas.outputs import DeadLetter
from tests.worker.test_handler import TOPICS, WALL_MS, by_topic, make_handler, purchase, records


def with_items(*categories: str) -> object:
    items = [LineItem(sku=f"{c}-1", quantity=1, unit_price=Decimal("60.00"), category=c) for c in categories]
    return purchase("A", 1).model_copy(update={"items": items})


def test_the_same_id_and_amount_with_other_items_is_a_rejected_dead_letter() -> None:
    handler = make_handler()
    first, resent, other = with_items("tea", "cups"), with_items("cups", "tea"), with_items("tea", "plates")
    effects = handler.on_batch((TOPICS.events, 0), records(first, resent, other), WALL_MS)
    [out] = by_topic(effects.outputs, TOPICS.dlq)
    letter = DeadLetter.model_validate_json(out.value)
    assert (letter.error_type, letter.reason) == ("rejected", "event_id reused with different content")
    assert letter.offset == 2  # the third record: the second is the same order, its items in another order
    counters = handler.counters
    assert (counters.scored, counters.duplicates, counters.dead_lettered) == (1, 1, 1)
