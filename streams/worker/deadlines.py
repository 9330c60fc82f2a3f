"""Deadline index: which customers of a partition are due for time-driven re-scoring.

A heap per partition with lazy deletion plus the current due day per
customer. Popping the due customers costs O(due x log n), never a scan of
the table; the index is rebuilt from the table when partitions are assigned.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from scoring.codec import peek_last_seen_day, peek_review_day


class DeadlineIndex:
    """Due epoch day per customer, per partition."""

    def __init__(self) -> None:
        self._due: dict[int, dict[str, int]] = {}
        self._heaps: dict[int, list[tuple[int, str]]] = {}

    def set(self, partition: int, customer: str, due_day: int | None) -> None:
        """Record (or clear, with None) when a customer is next due."""
        due = self._due.setdefault(partition, {})
        if due_day is None:
            due.pop(customer, None)
            return
        if due.get(customer) == due_day:
            return
        due[customer] = due_day
        heapq.heappush(self._heaps.setdefault(partition, []), (due_day, customer))

    def pop_due(self, partition: int, today: int, limit: int) -> list[str]:
        """Up to `limit` customers due on or before `today`; they leave the index until set again."""
        heap, due = self._heaps.get(partition), self._due.get(partition)
        found: list[str] = []
        while heap and due is not None and len(found) < limit and heap[0][0] <= today:
            day, customer = heapq.heappop(heap)
            if due.get(customer) == day:  # else a stale entry, superseded or cleared
                del due[customer]
                found.append(customer)
        return found

    def rebuild(self, partition: int, entries: Iterable[tuple[str, int | None]]) -> int:
        """Replace a partition's index; returns how many customers have a deadline."""
        due = {customer: day for customer, day in entries if day is not None}
        self._due[partition] = due
        heap = [(day, customer) for customer, day in due.items()]
        heapq.heapify(heap)
        self._heaps[partition] = heap
        return len(due)

    def drop(self, partition: int) -> None:
        """Forget a partition (revoked)."""
        self._due.pop(partition, None)
        self._heaps.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._due)

    def size(self, partition: int | None = None) -> int:
        if partition is not None:
            return len(self._due.get(partition, {}))
        return sum(len(d) for d in self._due.values())

    def next_due(self, partition: int) -> int | None:
        """Earliest due day of a partition (may be a stale entry's: a lower bound)."""
        heap = self._heaps.get(partition)
        return heap[0][0] if heap else None


def stored_due_day(raw: bytes, forget_after_days: int | None) -> int | None:
    """A stored state's due day: its cached review day, or its retention forget day when earlier (a state
    written before retention was set cached a review day that did not know of it)."""
    due = peek_review_day(raw)
    if forget_after_days is None:
        return due
    seen = peek_last_seen_day(raw)
    if seen is None:
        return due
    return seen + forget_after_days if due is None else min(due, seen + forget_after_days)
