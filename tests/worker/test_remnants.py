"""The worker's remnants of forgotten customers: written before the tombstone, deleted once committed."""

from __future__ import annotations

from scoring.dedupe import IdFilter, entry
from scoring.state import NEW_STATE
from streams.kafka import REMNANT_PREFIX
from streams.worker.remnants import Remnant, Remnants, decode_remnant, encode_remnant

A = NEW_STATE._replace(seen=(entry(1, 10, 5), entry(7, 11, 6)))
B = NEW_STATE._replace(seen=(entry(3, 12, 9),), filters=(IdFilter(0, 1, b"\x01\x00"),))


def test_the_record_round_trips_with_its_marks() -> None:
    remnant = Remnant(2, B, {("events", 2): 40, ("purchases", 2): 7})
    assert decode_remnant(2, encode_remnant(remnant)) == remnant


def test_a_new_remnant_is_written_with_the_offsets_handled_on_its_partition_only() -> None:
    remnants = Remnants()
    remnants.add("a", 1, A)
    marks = {("events", 1): (15, frozenset()), ("events", 0): (99, frozenset()), ("purchases", 1): (None, frozenset())}
    [(partition, key, value)] = remnants.take_writes(marks)
    assert (partition, key) == (1, REMNANT_PREFIX + "a")
    assert value is not None and decode_remnant(1, value).marks == {("events", 1): 15}
    assert remnants.take_writes(marks) == []  # written once
    assert remnants.get("a") == A


def test_it_is_deleted_only_once_every_input_it_covers_is_committed() -> None:
    remnants = Remnants()
    remnants.add("a", 1, A)
    remnants.take_writes({("events", 1): (15, frozenset()), ("purchases", 1): (4, frozenset())})
    assert remnants.committed({("events", 1): 15, ("purchases", 1): 3}) == 0
    assert remnants.committed({("events", 1): 15}) == 0  # a partition not known committed: kept
    assert remnants.committed({("events", 1): 16, ("purchases", 1): 4}) == 1
    assert remnants.get("a") is None
    assert remnants.take_writes({}) == [(1, REMNANT_PREFIX + "a", None)]


def test_an_unwritten_remnant_is_never_deleted_by_a_commit() -> None:
    remnants = Remnants()
    remnants.add("a", 1, A)
    assert remnants.committed({("events", 1): 10**9}) == 0 and remnants.get("a") == A


def test_a_second_forget_before_the_first_is_committed_remembers_both() -> None:
    remnants = Remnants()
    remnants.add("a", 0, A)
    remnants.take_writes({})
    remnants.add("a", 0, B._replace(filters=(IdFilter(0, 2, b"\x00\x02"),)))
    both = remnants.get("a")
    assert both is not None and set(both.seen) == set(A.seen) | set(B.seen)
    assert both.filters == (IdFilter(0, 2, b"\x00\x02"),)
    remnants.add("a", 0, B)
    merged = remnants.get("a")
    assert merged is not None and merged.filters == (IdFilter(0, 3, b"\x01\x02"),)  # a period in both: the union


def test_a_rebalance_drops_them_and_a_read_again_only_the_unwritten() -> None:
    remnants = Remnants()
    remnants.add("a", 0, A)
    remnants.take_writes({})
    remnants.add("b", 1, B)
    remnants.drop(unwritten_only=True)
    assert remnants.get("a") == A and remnants.get("b") is None
    remnants.drop()
    assert len(remnants) == 0
