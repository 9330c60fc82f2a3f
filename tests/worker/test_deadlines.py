"""DeadlineIndex without a worker: who is due, once, earliest first, per partition."""

from __future__ import annotations

from streams.worker.deadlines import DeadlineIndex, stored_due_day


def index_with(*entries: tuple[int, str, int | None]) -> DeadlineIndex:
    index = DeadlineIndex()
    for partition, customer, day in entries:
        index.set(partition, customer, day)
    return index


def test_due_customers_come_earliest_first_and_only_once() -> None:
    index = index_with((0, "c", 12), (0, "a", 10), (0, "b", 11), (0, "late", 30))
    assert index.pop_due(0, today=12, limit=10) == ["a", "b", "c"]
    assert index.pop_due(0, today=12, limit=10) == []  # they left the index
    assert index.size(0) == 1


def test_the_limit_leaves_the_rest_for_the_next_sweep() -> None:
    index = index_with((0, "a", 1), (0, "b", 2), (0, "c", 3))
    assert index.pop_due(0, today=5, limit=2) == ["a", "b"]
    assert index.pop_due(0, today=5, limit=2) == ["c"]


def test_a_moved_deadline_supersedes_the_old_one() -> None:
    index = index_with((0, "a", 5), (0, "a", 9))
    assert index.pop_due(0, today=6, limit=10) == []  # the stale day-5 entry is skipped
    assert index.pop_due(0, today=9, limit=10) == ["a"]


def test_a_deadline_moved_earlier_fires_once() -> None:
    index = index_with((0, "a", 9), (0, "a", 5))
    assert index.pop_due(0, today=20, limit=10) == ["a"]
    assert index.size() == 0


def test_setting_the_same_day_twice_is_one_entry() -> None:
    index = index_with((0, "a", 5), (0, "a", 5))
    assert index.pop_due(0, today=5, limit=10) == ["a"]
    assert index.pop_due(0, today=5, limit=10) == []


def test_none_clears_a_deadline() -> None:
    index = index_with((0, "a", 5), (0, "a", None))
    assert index.size(0) == 0
    assert index.pop_due(0, today=99, limit=10) == []


def test_partitions_are_separate() -> None:
    index = index_with((0, "a", 1), (1, "b", 1))
    assert index.partitions() == [0, 1]
    assert index.pop_due(1, today=1, limit=10) == ["b"]
    assert index.size(0) == 1
    index.drop(0)
    assert index.partitions() == [1]
    assert index.pop_due(0, today=1, limit=10) == []


def test_rebuild_replaces_a_partition_from_the_table() -> None:
    index = index_with((0, "old", 1))
    assert index.rebuild(0, [("a", 3), ("b", None), ("c", 2)]) == 2
    assert index.next_due(0) == 2
    assert index.pop_due(0, today=10, limit=10) == ["c", "a"]


def test_next_due_is_a_lower_bound() -> None:
    index = index_with((0, "a", 5), (0, "a", 8))
    assert index.next_due(0) == 5  # the stale entry still shows until popped
    assert index.next_due(3) is None


def test_a_stored_state_is_due_by_its_forget_day_when_retention_is_set() -> None:
    from scoring.codec import encode_state
    from scoring.state import NEW_STATE

    raw = encode_state(NEW_STATE._replace(review_day=500, last_seen_day=100))
    assert stored_due_day(raw, None) == 500
    assert stored_due_day(raw, 600) == 500  # its review comes first
    assert stored_due_day(raw, 366) == 466  # cached before retention was set: the forget day is earlier
    never = encode_state(NEW_STATE._replace(review_day=None, last_seen_day=100))
    assert stored_due_day(never, 366) == 466  # nothing else would ever review it
    assert stored_due_day(encode_state(NEW_STATE), 366) is None
