"""Compact, versioned bytes for `CustomerState` (the table's value).

Layout (version 1): a version byte, then unsigned LEB128 varints. Optional
integers are stored as 0 for None else value+1 (days and ms are never
negative here); strings are length-prefixed UTF-8. Each bucket is a day
delta, a bit mask of its non-zero counters, those counters, and its event
hashes as 8-byte big-endian integers. Outbox entries (rare, short-lived)
are a cause, a time and their decisions' JSON, copied as bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from scoring.errors import StateDecodeError
from scoring.state import IDS, Bucket, CustomerState, OutboxEntry

VERSION = 1
_COUNTERS = 7


def _varint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varint: negative value")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _opt(out: bytearray, value: int | None) -> None:
    _varint(out, 0 if value is None else value + 1)


def _text(out: bytearray, value: str | None) -> None:
    raw = b"" if value is None else value.encode()
    _varint(out, 0 if value is None else len(raw) + 1)
    out += raw


def _bucket(out: bytearray, bucket: Bucket) -> None:
    mask = 0
    for i in range(_COUNTERS):
        if bucket[i]:
            mask |= 1 << i
    out.append(mask)
    for i in range(_COUNTERS):
        if bucket[i]:
            _varint(out, bucket[i])  # type: ignore[arg-type]
    ids = bucket[IDS]
    _varint(out, len(ids))
    for h in ids:
        out += h.to_bytes(8, "big")


def encode_state(state: CustomerState) -> bytes:
    """Serialise a state; `decode_state(encode_state(s)) == s` for every state."""
    out = bytearray((VERSION,))
    _opt(out, state.review_day)  # first, so `peek_review_day` reads it without decoding the rest
    _varint(out, len(state.buckets))
    previous = 0
    for day in sorted(state.buckets):
        _varint(out, day - previous)
        previous = day
        _bucket(out, state.buckets[day])
    _varint(out, len(state.old_ids))
    previous = 0
    for day, h in state.old_ids:  # sorted by day: deltas
        _varint(out, day - previous)
        previous = day
        out += h.to_bytes(8, "big")
    _varint(out, len(state.old_days))
    previous = 0
    for day in state.old_days:  # sorted: deltas are small, mostly one byte
        _varint(out, day - previous)
        previous = day
    for value in (state.first_day, state.last_day):
        _opt(out, value)
    for count in (state.purchase_days, state.total_cents, state.first_day_cents, state.purchases):
        _varint(out, count)
    _opt(out, state.first_seen_day)
    _varint(out, state.clock_ms)
    _opt(out, state.scored_day)
    _text(out, state.tier)
    _opt(out, state.tier_since)
    _text(out, state.segment)
    out.append(1 if state.at_risk else 0)
    _opt(out, state.score_centi)
    _outbox(out, state.outbox)
    return bytes(out)


def _outbox(out: bytearray, outbox: tuple[OutboxEntry, ...]) -> None:
    _varint(out, len(outbox))
    for entry in outbox:
        _text(out, entry.cause)
        _varint(out, entry.emitted_ms)
        _varint(out, len(entry.payload))
        out += entry.payload


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        result = shift = 0
        data = self.data
        while True:
            byte = data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def opt(self) -> int | None:
        value = self.varint()
        return None if value == 0 else value - 1

    def raw(self, size: int) -> bytes:
        chunk = self.data[self.pos:self.pos + size]
        if len(chunk) != size:
            raise IndexError("truncated")
        self.pos += size
        return chunk

    def text(self) -> str | None:
        size = self.varint()
        return None if size == 0 else self.raw(size - 1).decode()

    def hashes(self) -> tuple[int, ...]:
        return tuple(int.from_bytes(self.raw(8), "big") for _ in range(self.varint()))

    def bucket(self) -> Bucket:
        mask = self.data[self.pos]
        self.pos += 1
        counters = [self.varint() if mask & (1 << i) else 0 for i in range(_COUNTERS)]
        return (*counters, self.hashes())  # type: ignore[return-value]


def decode_state(data: bytes) -> CustomerState:
    """Inverse of `encode_state`; raises StateDecodeError on foreign or damaged bytes."""
    if not data or data[0] != VERSION:
        raise StateDecodeError(f"unknown state version {data[:1]!r}")
    reader = _Reader(data)
    try:
        state = _decode(reader)
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise StateDecodeError(f"damaged state: {exc}") from None
    if reader.pos != len(data):
        raise StateDecodeError(f"damaged state: {len(data) - reader.pos} trailing bytes")
    return state


def peek_review_day(data: bytes) -> int | None:
    """The cached next review day of a serialised state, reading only its first field."""
    if not data or data[0] != VERSION:
        raise StateDecodeError(f"unknown state version {data[:1]!r}")
    reader = _Reader(data)
    reader.pos = 1
    return reader.opt()


def _decode(r: _Reader) -> CustomerState:
    r.pos = 1
    review_day = r.opt()
    buckets: dict[int, Bucket] = {}
    day = 0
    for _ in range(r.varint()):
        day += r.varint()
        buckets[day] = r.bucket()
    old_ids, day = [], 0
    for _ in range(r.varint()):
        day += r.varint()
        old_ids.append((day, int.from_bytes(r.raw(8), "big")))
    old_days, day = [], 0
    for _ in range(r.varint()):
        day += r.varint()
        old_days.append(day)
    first_day, last_day = r.opt(), r.opt()
    nums: list[Callable[[], int]] = [r.varint] * 4
    purchase_days, total_cents, first_day_cents, purchases = (f() for f in nums)
    return CustomerState(
        buckets=buckets, old_ids=tuple(old_ids), old_days=tuple(old_days), first_day=first_day, last_day=last_day,
        purchase_days=purchase_days, total_cents=total_cents, first_day_cents=first_day_cents,
        purchases=purchases, first_seen_day=r.opt(), clock_ms=r.varint(), scored_day=r.opt(),
        tier=r.text(), tier_since=r.opt(), segment=r.text(), at_risk=bool(r.raw(1)[0]),
        score_centi=r.opt(), outbox=_read_outbox(r), review_day=review_day,
    )


def _read_outbox(r: _Reader) -> tuple[OutboxEntry, ...]:
    entries = []
    for _ in range(r.varint()):
        cause = r.text() or ""
        emitted = r.varint()
        entries.append(OutboxEntry(cause, emitted, r.raw(r.varint())))
    return tuple(entries)
