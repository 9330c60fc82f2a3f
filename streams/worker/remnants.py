"""Remnants of forgotten customers: kept until the inputs the forgotten state had applied are committed.

A forget (retention, an erasure request) deletes the customer's state, and its id memory with it. Inputs the
state had applied but the worker had not committed yet are read again after a crash (or by the worker that
takes the partition over); without the memory they would be the first events of a new customer, and a
request read again among them would erase that customer again, with other outputs under the same ids.

So the flush that writes the forgotten customer's tombstone first writes, to the same changelog partition,
a record under `REMNANT_PREFIX + customer` (`streams.kafka`): the forgotten state's id memory
(`scoring.retention.remnant`) and the input offsets the worker had handled by then. It is restored with the
table; an input it remembers is a duplicate (`scoring.retention.is_reread`). Once the commits have passed
those offsets nothing it covers can be read again, and the record is deleted (a tombstone at the next flush).

Value: b"R1" + JSON {"marks": [[topic, partition, offset], ...]} + b"\\n" + the state bytes (`scoring.codec`).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from scoring.codec import decode_state, encode_state
from scoring.dedupe import IdFilter
from scoring.state import CustomerState
from streams.kafka import REMNANT_PREFIX, is_remnant_key

__all__ = ["REMNANT_PREFIX", "Remnant", "Remnants", "decode_remnant", "encode_remnant", "is_remnant_key"]

_MAGIC = b"R1"

Mark = tuple[str, int]  # an input (topic, partition)


def _mark(tp: Hashable) -> Mark | None:
    """An input topic-partition as (topic, partition): aiokafka's and Faust's are named tuples of the two."""
    if isinstance(tp, tuple) and len(tp) == 2 and isinstance(tp[0], str) and isinstance(tp[1], int):
        return tp[0], tp[1]
    return None


@dataclass(slots=True)
class Remnant:
    partition: int
    state: CustomerState
    marks: dict[Mark, int] | None = None  # input offsets handled when written; None: not written yet


def encode_remnant(remnant: Remnant) -> bytes:
    marks = [[topic, partition, offset] for (topic, partition), offset in sorted((remnant.marks or {}).items())]
    return _MAGIC + json.dumps({"marks": marks}, separators=(",", ":")).encode() + b"\n" + encode_state(remnant.state)


def decode_remnant(partition: int, value: bytes) -> Remnant:
    """A stored remnant (ValueError, or `scoring.errors.StateDecodeError`, when it is not one)."""
    if not value.startswith(_MAGIC) or (cut := value.find(b"\n")) < 0:
        raise ValueError("not a remnant record")
    head = json.loads(value[len(_MAGIC):cut])
    marks = {(str(topic), int(part)): int(offset) for topic, part, offset in head["marks"]}
    return Remnant(partition, decode_state(value[cut + 1:]), marks)


class Remnants:
    """The remnants of the worker's partitions, and the writes they are due (see the module docstring)."""

    def __init__(self) -> None:
        self._by_customer: dict[str, Remnant] = {}
        self._deletes: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._by_customer)

    def get(self, customer: str) -> CustomerState | None:
        found = self._by_customer.get(customer) if self._by_customer else None
        return None if found is None else found.state

    def add(self, customer: str, partition: int, state: CustomerState) -> None:
        """A customer forgotten now (a later forget of the same customer replaces the record: its state had
        applied only inputs read after the earlier one's)."""
        earlier = self._by_customer.get(customer)
        if earlier is not None:  # the earlier forget's inputs may not be committed yet: remember both
            state = state._replace(seen=tuple(sorted(set(state.seen) | set(earlier.state.seen))),
                                   filters=_merged_filters(state.filters, earlier.state.filters))
        self._by_customer[customer] = Remnant(partition, state)

    def load(self, key: str, partition: int, value: bytes) -> None:
        """A record of the table (after a recovery), `key` with its prefix."""
        self._by_customer[key[len(REMNANT_PREFIX):]] = decode_remnant(partition, value)

    def take_writes(
        self, marks: Mapping[Hashable, tuple[int | None, frozenset[int]]]
    ) -> list[tuple[int, str, bytes | None]]:
        """The records a flush writes (before the states): new remnants, with the input offsets handled so far
        on their partition (`marks`: the offset book's `mark_written`), and the deletions due."""
        writes: list[tuple[int, str, bytes | None]] = [(p, REMNANT_PREFIX + c, None) for p, c in self._deletes]
        self._deletes = []
        if not any(r.marks is None for r in self._by_customer.values()):
            return writes
        handled: dict[int, dict[Mark, int]] = {}
        for tp, (done, _) in marks.items():
            if (name := _mark(tp)) is not None and done is not None:
                handled.setdefault(name[1], {})[name] = done
        for customer, remnant in self._by_customer.items():
            if remnant.marks is None:
                remnant.marks = dict(handled.get(remnant.partition, {}))
                writes.append((remnant.partition, REMNANT_PREFIX + customer, encode_remnant(remnant)))
        return writes

    def committed(self, offsets: Mapping[Hashable, int | None]) -> int:
        """The consumer committed `offsets` (input topic-partition -> next offset to read): the remnants whose
        inputs are all committed are deleted at the next flush. Returns how many."""
        if not self._by_customer:
            return 0
        done: dict[Mark, int] = {}
        for tp, offset in offsets.items():
            if (name := _mark(tp)) is not None and offset is not None:
                done[name] = offset
        ready = [c for c, r in self._by_customer.items()
                 if r.marks is not None and all(done.get(tp, -1) >= offset for tp, offset in r.marks.items())]
        for customer in ready:
            self._deletes.append((self._by_customer.pop(customer).partition, customer))
        return len(ready)

    def drop(self, unwritten_only: bool = False) -> None:
        """Forget remnants in memory: those not written yet (their steps will be read again), or all of them
        (a rebalance: the table's recovery loads the owned partitions' ones again)."""
        for customer, remnant in list(self._by_customer.items()):
            if not (unwritten_only and remnant.marks is not None):
                del self._by_customer[customer]
        if not unwritten_only:
            self._deletes = []


def _merged_filters(a: tuple[IdFilter, ...], b: tuple[IdFilter, ...]) -> tuple[IdFilter, ...]:
    """Both memories' Bloom filters, a period in both as the union of its bits."""
    merged: dict[int, IdFilter] = {f.period: f for f in a}
    for f in b:
        if (mine := merged.get(f.period)) is None:
            merged[f.period] = f
        elif len(mine.bits) == len(f.bits):
            bits = bytes(x | y for x, y in zip(mine.bits, f.bits, strict=True))
            merged[f.period] = IdFilter(f.period, mine.events + f.events, bits)
        else:  # filters of another size (a config change in between): keep the larger memory
            merged[f.period] = max(mine, f, key=lambda g: len(g.bits))
    return tuple(merged[p] for p in sorted(merged))
