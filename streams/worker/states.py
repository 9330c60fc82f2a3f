"""Customer states in memory between flushes: decoded once, written once per flush.

A step reads the customer's state from here (decoding the table's bytes only on a miss) and puts
the new state back, marked dirty with the latest profile to publish. A flush takes every dirty
customer at once: one state encode and one changelog record per customer, one score snapshot and
one Redis profile per customer (the latest), however many events it saw since the last flush.
Clean entries are kept as a bounded cache of decoded states (least recently stepped go first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scoring.codec import decode_state
from scoring.decisions import ScoreChanged
from scoring.errors import StateDecodeError
from scoring.state import NEW_STATE, CustomerState
from scoring.step import Evaluation
from streams.worker.store import TableStore

DEFAULT_CACHED = 200_000  # clean decoded states kept (a few KB each)


class StoredStateError(RuntimeError):
    """A stored state cannot be decoded (never silently reset: the event is dead-lettered)."""


@dataclass(frozen=True, slots=True)
class Published:
    """What a customer's latest snapshot shows: the decision that asked for it, the state and evaluation."""

    decision: ScoreChanged
    state: CustomerState
    evaluation: Evaluation


@dataclass(slots=True)
class Entry:
    state: CustomerState | None  # None: forgotten (a tombstone is due)
    partition: int
    dirty: bool = False
    published: Published | None = None  # a snapshot and Redis profile are due


@dataclass(frozen=True, slots=True)
class Dirty:
    """One customer's due writes, taken by a flush."""

    customer: str
    partition: int
    state: CustomerState | None  # None: delete (tombstone)
    published: Published | None


class StateCache:
    """Decoded states of the worker's customers; dirty ones until the next flush."""

    def __init__(self, store: TableStore, max_clean: int = DEFAULT_CACHED) -> None:
        self.store = store
        self.max_clean = max_clean
        self._entries: dict[str, Entry] = {}
        self._dirty: set[str] = set()
        self._unstored: set[str] = set()  # taken by a flush, not yet in the store: never evicted (see take_dirty)

    def get(self, customer: str) -> CustomerState | None:
        """The customer's current state, or None when there is none (never seen, or forgotten)."""
        entry = self._entries.get(customer)
        if entry is not None:
            return entry.state
        raw = self.store.get(customer)
        if raw is None:
            return None
        try:
            state = decode_state(raw)
        except StateDecodeError as exc:
            raise StoredStateError(f"stored state of {customer!r} cannot be decoded: {exc}") from None
        return state

    def state_or_new(self, customer: str) -> CustomerState:
        state = self.get(customer)
        return NEW_STATE if state is None else state

    def put(self, customer: str, partition: int, state: CustomerState | None,
            published: Published | None = None) -> None:
        """The customer's new state (None: forget it); `published`: the latest snapshot to send."""
        entry = self._entries.pop(customer, None)  # re-inserted last: the most recently used
        if entry is None:
            entry = Entry(state, partition)
        entry.state, entry.dirty = state, True
        if published is not None:
            entry.published = published
        elif state is None:
            entry.published = None
        self._entries[customer] = entry
        self._dirty.add(customer)

    def touch(self, customer: str, partition: int, state: CustomerState) -> None:
        """Keep a decoded state read from the table (a step that changed nothing) for the next read."""
        if customer not in self._entries:
            self._entries[customer] = Entry(state, partition)
            self._evict()

    def replace_clean(self, customer: str, partition: int, state: CustomerState) -> None:
        """A newer state that need not be written (a no-op review moved its review day): keep it in
        memory; a dirty entry stays dirty."""
        entry = self._entries.get(customer)
        if entry is None:
            self._entries[customer] = Entry(state, partition)
            self._evict()
        else:
            entry.state = state

    def take_dirty(self) -> list[Dirty]:
        """Every dirty customer's writes; they are clean from now on (the caller writes them, then calls
        `stored`). Until then they are never evicted: the store still holds their older states, and a step in
        between (the flush writes outside the worker's lock) must not read one back. A forgotten customer's
        entry stays (clean, None) like any other, for the same reason."""
        taken: list[Dirty] = []
        for customer in self._dirty:
            entry = self._entries[customer]
            taken.append(Dirty(customer, entry.partition, entry.state, entry.published))
            entry.dirty, entry.published = False, None
        self._unstored |= self._dirty
        self._dirty = set()
        return taken

    def stored(self, customers: Iterable[str]) -> None:
        """`customers`' taken states are in the store now: their entries may be evicted again."""
        self._unstored.difference_update(customers)
        self._evict()

    def dirty_count(self) -> int:
        return len(self._dirty)

    def drop(self, partitions: set[int] | None = None) -> int:
        """Forget cached states (of `partitions`, or all), dirty ones included: their records will be
        read again from the committed offsets. Returns how many were dirty."""
        lost = 0
        for customer in list(self._entries):
            entry = self._entries[customer]
            if partitions is None or entry.partition in partitions:
                lost += entry.dirty
                del self._entries[customer]
                self._dirty.discard(customer)
                self._unstored.discard(customer)
        return lost

    def _evict(self) -> None:
        if len(self._entries) - len(self._dirty) <= self.max_clean:  # the usual case, without building a set
            return
        pinned = self._dirty | self._unstored if self._unstored else self._dirty
        excess = len(self._entries) - len(pinned) - self.max_clean
        if excess <= 0:
            return
        for customer in list(self._entries):
            if excess <= 0:
                break
            if customer not in pinned:
                del self._entries[customer]
                excess -= 1

    def __len__(self) -> int:
        return len(self._entries)
