"""Compact, versioned bytes for `CustomerState` (the table's value).

Layout (version 1): a fixed big-endian header (version byte, the cached
review day first so `peek_review_day` reads only it, then the all-time
figures and the clock; None as -2**31), then unsigned LEB128 varints;
strings are length-prefixed UTF-8. Each bucket is a day
delta, a bit mask of its non-zero counters, those counters, and its event
hashes as 8-byte big-endian integers. Outbox entries (rare, short-lived)
are a cause, a time and their decisions' JSON, copied as bytes.
"""

from __future__ import annotations

import struct

from scoring.errors import StateDecodeError
from scoring.state import IDS, Bucket, CustomerState, OutboxEntry

VERSION = 1
_COUNTERS = 7
_BITS = tuple(1 << i for i in range(_COUNTERS))
# Fixed header, one struct call: version, review_day, first_day, last_day, first_seen_day, scored_day,
# tier_since (epoch days, _NONE for None), purchase_days, purchases, total_cents, first_day_cents,
# clock_ms, at_risk, score_centi (_NONE for None).
_HEADER = struct.Struct(">Biiiiiiiiqqqbi")
_REVIEW_DAY = struct.Struct(">i")
_NONE = -(2**31)


def _varint(out: bytearray, value: int) -> None:
    if 0 <= value < 0x80:  # most counters, deltas and lengths: one byte
        out.append(value)
        return
    if value < 0:
        raise ValueError("varint: negative value")
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _text(out: bytearray, value: str | None) -> None:
    raw = b"" if value is None else value.encode()
    _varint(out, 0 if value is None else len(raw) + 1)
    out += raw


def _bucket(out: bytearray, bucket: Bucket) -> None:
    counters = bucket[:_COUNTERS]
    mask = 0
    for i, value in enumerate(counters):
        if value:
            mask |= 1 << i
    out.append(mask)
    for value in counters:
        if value:
            _varint(out, value)  # type: ignore[arg-type]
    ids = bucket[IDS]
    _varint(out, len(ids))
    out += struct.pack(f">{len(ids)}Q", *ids)


def _day(value: int | None) -> int:
    return _NONE if value is None else value


def _or_none(value: int) -> int | None:
    return None if value == _NONE else value


def encode_state(state: CustomerState) -> bytes:
    """Serialise a state; `decode_state(encode_state(s)) == s` for every state."""
    s = state
    out = bytearray(
        _HEADER.pack(
            VERSION,
            _day(s.review_day),
            _day(s.first_day),
            _day(s.last_day),
            _day(s.first_seen_day),
            _day(s.scored_day),
            _day(s.tier_since),
            s.purchase_days,
            s.purchases,
            s.total_cents,
            s.first_day_cents,
            s.clock_ms,
            1 if s.at_risk else 0,
            _day(s.score_centi),
        )
    )
    _varint(out, len(s.buckets))
    previous = 0
    for day in sorted(s.buckets):
        _varint(out, day - previous)
        previous = day
        _bucket(out, s.buckets[day])
    _varint(out, len(s.old_ids))
    previous = 0
    for day, h in s.old_ids:  # sorted by day: deltas
        _varint(out, day - previous)
        previous = day
        out += h.to_bytes(8, "big")
    _varint(out, len(s.old_days))
    previous = 0
    for day in s.old_days:  # sorted: deltas are small, mostly one byte
        _varint(out, day - previous)
        previous = day
    _text(out, s.tier)
    _text(out, s.segment)
    _outbox(out, s.outbox)
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
        data = self.data
        byte = data[self.pos]
        if byte < 0x80:  # the common one-byte case
            self.pos += 1
            return byte
        result = shift = 0
        while True:
            byte = data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def raw(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        if len(chunk) != size:
            raise IndexError("truncated")
        self.pos += size
        return chunk

    def text(self) -> str | None:
        size = self.varint()
        return None if size == 0 else self.raw(size - 1).decode()

    def hashes(self) -> tuple[int, ...]:
        count = self.varint()
        return struct.unpack(f">{count}Q", self.raw(8 * count))

    def bucket(self) -> Bucket:
        mask = self.data[self.pos]
        self.pos += 1
        varint = self.varint
        counters = [varint() if mask & bit else 0 for bit in _BITS]
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
    try:
        return _or_none(_REVIEW_DAY.unpack_from(data, 1)[0])
    except struct.error:
        raise StateDecodeError("damaged state: truncated header") from None


def _decode(r: _Reader) -> CustomerState:
    try:
        (
            _,
            review_day,
            first_day,
            last_day,
            first_seen_day,
            scored_day,
            tier_since,
            purchase_days,
            purchases,
            total_cents,
            first_day_cents,
            clock_ms,
            at_risk,
            score_centi,
        ) = _HEADER.unpack_from(r.data, 0)
    except struct.error:
        raise ValueError("truncated header") from None
    r.pos = _HEADER.size
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
    return CustomerState(
        buckets=buckets,
        old_ids=tuple(old_ids),
        old_days=tuple(old_days),
        first_day=_or_none(first_day),
        last_day=_or_none(last_day),
        purchase_days=purchase_days,
        total_cents=total_cents,
        first_day_cents=first_day_cents,
        purchases=purchases,
        first_seen_day=_or_none(first_seen_day),
        clock_ms=clock_ms,
        scored_day=_or_none(scored_day),
        tier=r.text(),
        tier_since=_or_none(tier_since),
        segment=r.text(),
        at_risk=bool(at_risk),
        score_centi=_or_none(score_centi),
        outbox=_read_outbox(r),
        review_day=_or_none(review_day),
    )


def _read_outbox(r: _Reader) -> tuple[OutboxEntry, ...]:
    entries = []
    for _ in range(r.varint()):
        cause = r.text() or ""
        emitted = r.varint()
        entries.append(OutboxEntry(cause, emitted, r.raw(r.varint())))
    return tuple(entries)
