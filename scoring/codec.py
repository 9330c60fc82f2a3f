"""Compact, versioned bytes for `CustomerState` (the table's value).

Layout (version 2): a fixed big-endian header (version byte, the cached
review day first so `peek_review_day` reads only it, then the all-time
figures and the clock; None as -2**31), then unsigned LEB128 varints;
strings are length-prefixed UTF-8. Each bucket is a day
delta, a bit mask of its non-zero counters and those counters. The exact id
memory is (8-byte id hash, 4-byte content hash, day) per entry, a filter its
period, count and bits (`scoring.dedupe`). Outbox entries (rare, short-lived)
are a cause, a time and their decisions' JSON, copied as bytes.

Version 3 appends the open outcome windows (`scoring.trial`): a count, then per window its texts
(action id, rule, action type, channel, tier) and varints (held out, start ms, days, cost, purchases,
revenue, returns). Version 2 bytes (without them) are still read, as a state with no open window.

Version 4 ends the fixed header with the latest day of any applied event (`last_seen_day`, what retention
counts idle days from; `peek_last_seen_day` reads it alone). Older bytes are read with it taken from what
they hold: the latest day in the window, else the last purchase day, else the first day seen.

Version 5 appends the categories bought (`categories`: a count, then per category its text and its latest
purchase day, a varint). Older bytes are read as a state with no category.

Version 6 holds money in 1/10,000 of the base currency (`scoring.money`) instead of cents: the header's
totals as they are (int64), and each amount in a bucket or an outcome window as one varint of
`2 * (amount // 100)` when it is whole cents, else `2 * amount + 1`, so a cent amount takes the bytes it
took in version 5 (plus one bit). Bytes of versions 1-5 hold cents: they are read times 100, exactly.

Version 1 (event hashes in the day buckets and before the window, no content
hashes) is still read: its ids become exact entries of unknown content, and
the next step moves those beyond `dedupe_exact_ids` into filters.
"""

from __future__ import annotations

import struct

from scoring.dedupe import ENTRY_BYTES, FILTER_OVERHEAD, IdFilter, entry_day
from scoring.dedupe import entry as id_entry
from scoring.errors import StateDecodeError
from scoring.money import PER_CENT
from scoring.state import Bucket, CustomerState, OutboxEntry
from scoring.trial import Trial

VERSION = 6
_READABLE = frozenset({1, 2, 3, 4, 5, VERSION})
_CENTS_UNTIL = 6  # versions before this one hold money in cents
_COUNTERS = 7
_BITS = tuple(1 << i for i in range(_COUNTERS))
# Fixed header, one struct call: version, review_day, first_day, last_day, first_seen_day, scored_day,
# tier_since (epoch days, _NONE for None), purchase_days, purchases, total_e4, first_day_e4 (cents before
# version 6), clock_ms, at_risk, score_centi (_NONE for None); version 4: then last_seen_day (_NONE for None).
_HEADER = struct.Struct(">Biiiiiiiiqqqbii")
_HEADER_V3 = struct.Struct(">Biiiiiiiiqqqbi")  # versions 1-3
_REVIEW_DAY = struct.Struct(">i")
_ENTRY = struct.Struct(">QI")  # an exact id entry: id hash, content hash (then its day, a varint)
_NONE = -(2**31)
_VARINT_MAX = 10  # bytes of a varint below 2**70
_MASK32 = 0xFFFFFFFF


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


def _packed(amount: int) -> int:
    """An amount (>= 0, 1/10,000) as the varint value version 6 writes: whole cents stay as small as cents."""
    cents, rest = divmod(amount, PER_CENT)
    return cents << 1 if rest == 0 else amount << 1 | 1


def _unpacked(value: int) -> int:
    return value >> 1 if value & 1 else (value >> 1) * PER_CENT


def _text(out: bytearray, value: str | None) -> None:
    raw = b"" if value is None else value.encode()
    _varint(out, 0 if value is None else len(raw) + 1)
    out += raw


def _bucket(out: bytearray, bucket: Bucket) -> None:
    """The mask of non-zero counters, then those counters (written out: this runs for every day of every
    state written)."""
    pc, pn, rc, rn, cs, cn, en = bucket
    out.append((pc and 1) | (pn and 2) | (rc and 4) | (rn and 8) | (cs and 16) | (cn and 32) | (en and 64))
    for value in (_packed(pc) if pc else 0, pn, _packed(rc) if rc else 0, rn, cs, cn, en):
        if value:
            if 0 < value < 0x80:
                out.append(value)
            else:
                _varint(out, value)


def _ids(out: bytearray, seen: tuple[int, ...], filters: tuple[IdFilter, ...]) -> None:
    _varint(out, len(seen))
    for value in seen:
        out += _ENTRY.pack(value >> 64, value & _MASK32)
        _varint(out, entry_day(value))
    _varint(out, len(filters))
    for f in filters:
        _varint(out, f.period)
        _varint(out, f.events)
        _varint(out, len(f.bits))
        out += f.bits


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
            s.total_e4,
            s.first_day_e4,
            s.clock_ms,
            1 if s.at_risk else 0,
            _day(s.score_centi),
            _day(s.last_seen_day),
        )
    )
    _varint(out, len(s.buckets))
    previous = 0
    for day in sorted(s.buckets):
        _varint(out, day - previous)
        previous = day
        _bucket(out, s.buckets[day])
    _ids(out, s.seen, s.filters)
    _varint(out, len(s.old_days))
    previous = 0
    for day in s.old_days:  # sorted: deltas are small, mostly one byte
        _varint(out, day - previous)
        previous = day
    _text(out, s.tier)
    _text(out, s.segment)
    _outbox(out, s.outbox)
    _trials(out, s.trials)
    _varint(out, len(s.categories))
    for name, day in s.categories:
        _text(out, name)
        _varint(out, day)
    return bytes(out)


def size_bound(state: CustomerState) -> int:
    """An upper bound of `len(encode_state(state))`, from the sizes of its parts (no encoding)."""
    s, v = state, _VARINT_MAX
    # (this runs on every step: the empty parts, the common case, are skipped, the sums are the same)
    text = 4 * len(s.tier or "") + v + 4 * len(s.segment or "") + v
    outbox = 0
    for e in s.outbox:
        outbox += 4 * len(e.cause) + 3 * v + len(e.payload)
    trials = (
        sum(4 * sum(map(len, (t.action_id, t.rule, t.action_type, t.channel, t.tier))) + 12 * v for t in s.trials)
        if s.trials
        else 0
    )
    filters = sum(FILTER_OVERHEAD + len(f.bits) for f in s.filters) if s.filters else 0
    categories = sum(4 * len(name) + 2 * v for name, _ in s.categories) if s.categories else 0
    counts = 7 * v  # buckets, entries, filters, old days, outbox entries, trials, categories
    return (
        _HEADER.size
        + counts
        + len(s.buckets) * (2 + 8 * v)
        + len(s.seen) * ENTRY_BYTES
        + filters
        + len(s.old_days) * v
        + text
        + outbox
        + trials
        + categories
    )


def _outbox(out: bytearray, outbox: tuple[OutboxEntry, ...]) -> None:
    _varint(out, len(outbox))
    for kept in outbox:
        _text(out, kept.cause)
        _varint(out, kept.emitted_ms)
        _varint(out, len(kept.payload))
        out += kept.payload


def _trials(out: bytearray, trials: tuple[Trial, ...]) -> None:
    _varint(out, len(trials))
    for t in trials:
        for text in (t.action_id, t.rule, t.action_type, t.channel, t.tier):
            _text(out, text)
        for number in (
            int(t.held_out),
            t.start_ms,
            t.days,
            _packed(t.cost_e4),
            t.purchases,
            _packed(t.revenue_e4),
            _packed(t.return_e4),
        ):
            _varint(out, number)


def _read_trials(r: _Reader, version: int) -> tuple[Trial, ...]:
    trials = []
    money = _unpacked if version >= _CENTS_UNTIL else _from_cents
    for _ in range(r.varint()):
        action_id, rule, action_type, channel, tier = (r.text() or "" for _ in range(5))
        held, start, days, cost, purchases, revenue, returns = (r.varint() for _ in range(7))
        cost, revenue, returns = money(cost), money(revenue), money(returns)
        trials.append(
            Trial(
                action_id, rule, action_type, channel, bool(held), tier, start, days, cost, purchases, revenue, returns
            )
        )
    return tuple(trials)


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

    def bucket(self, version: int) -> Bucket:
        mask = self.data[self.pos]
        self.pos += 1
        varint = self.varint
        pc, pn, rc, rn, cs, cn, en = (varint() if mask & bit else 0 for bit in _BITS)
        if version >= _CENTS_UNTIL:
            return (_unpacked(pc) if pc else 0, pn, _unpacked(rc) if rc else 0, rn, cs, cn, en)
        return (pc * PER_CENT, pn, rc * PER_CENT, rn, cs, cn, en)

    def ids(self) -> tuple[tuple[int, ...], tuple[IdFilter, ...]]:
        seen = []
        for _ in range(self.varint()):
            key, content = _ENTRY.unpack(self.raw(_ENTRY.size))
            seen.append(id_entry(key, self.varint(), content))
        filters = []
        for _ in range(self.varint()):
            period, count = self.varint(), self.varint()
            filters.append(IdFilter(period, count, self.raw(self.varint())))
        return tuple(seen), tuple(filters)


def decode_state(data: bytes) -> CustomerState:
    """Inverse of `encode_state` (and reads version 1); raises StateDecodeError on foreign or damaged bytes."""
    _check_version(data)
    reader = _Reader(data)
    try:
        state = _decode(reader, data[0])
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise StateDecodeError(f"damaged state: {exc}") from None
    if reader.pos != len(data):
        raise StateDecodeError(f"damaged state: {len(data) - reader.pos} trailing bytes")
    return state


def peek_review_day(data: bytes) -> int | None:
    """The cached next review day of a serialised state, reading only its first field."""
    _check_version(data)
    try:
        return _or_none(_REVIEW_DAY.unpack_from(data, 1)[0])
    except struct.error:
        raise StateDecodeError("damaged state: truncated header") from None


def peek_clock_ms(data: bytes) -> int:
    """The time (ms) of the latest event a serialised state has applied, reading only its header."""
    _check_version(data)
    try:
        return int(_HEADER_V3.unpack_from(data, 0)[11])  # the same place in every version
    except struct.error:
        raise StateDecodeError("damaged state: truncated header") from None


def peek_last_seen_day(data: bytes) -> int | None:
    """The latest activity day of a serialised state (`scoring.retention`): from the header of version 4
    bytes on; older ones are decoded (they did not keep it)."""
    _check_version(data)
    if data[0] < 4:
        return decode_state(data).last_seen_day
    try:
        return _or_none(_HEADER.unpack_from(data, 0)[14])
    except struct.error:
        raise StateDecodeError("damaged state: truncated header") from None


def _check_version(data: bytes) -> None:
    if not data or data[0] not in _READABLE:
        raise StateDecodeError(f"unknown state version {data[:1]!r}")


def _decode(r: _Reader, version: int) -> CustomerState:
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
            total_e4,
            first_day_e4,
            clock_ms,
            at_risk,
            score_centi,
            *seen_day,
        ) = (_HEADER if version >= 4 else _HEADER_V3).unpack_from(r.data, 0)
    except struct.error:
        raise ValueError("truncated header") from None
    r.pos = (_HEADER if version >= 4 else _HEADER_V3).size
    buckets: dict[int, Bucket] = {}
    day = 0
    v1_ids: list[int] = []
    for _ in range(r.varint()):
        day += r.varint()
        buckets[day] = r.bucket(version)
        if version == 1:
            v1_ids += (id_entry(h, day, 0) for h in r.hashes())
    filters: tuple[IdFilter, ...] = ()
    if version == 1:
        seen = _v1_old_ids(r, v1_ids)
    else:
        seen, filters = r.ids()
    old_days, day = [], 0
    for _ in range(r.varint()):
        day += r.varint()
        old_days.append(day)
    if version < _CENTS_UNTIL:
        total_e4, first_day_e4 = total_e4 * PER_CENT, first_day_e4 * PER_CENT
    state = CustomerState(
        buckets=buckets,
        seen=seen,
        filters=filters,
        old_days=tuple(old_days),
        first_day=_or_none(first_day),
        last_day=_or_none(last_day),
        purchase_days=purchase_days,
        total_e4=total_e4,
        first_day_e4=first_day_e4,
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
        trials=_read_trials(r, version) if version >= 3 else (),
        categories=_read_categories(r) if version >= 5 else (),
    )
    if version >= 4:
        return state._replace(last_seen_day=_or_none(seen_day[0]))
    return state._replace(last_seen_day=_latest_day(state))


def _from_cents(cents: int) -> int:
    return cents * PER_CENT


def _read_categories(r: _Reader) -> tuple[tuple[str, int], ...]:
    return tuple((r.text() or "", r.varint()) for _ in range(r.varint()))


def _latest_day(state: CustomerState) -> int | None:
    """The latest activity day bytes before version 4 still show (they did not keep it)."""
    days = [d for d in (max(state.buckets, default=None), state.last_day) if d is not None]
    return max(days) if days else state.first_seen_day


def _v1_old_ids(r: _Reader, ids: list[int]) -> tuple[int, ...]:
    """Version 1's ids (the buckets' and those before the window) as exact entries of unknown content."""
    day = 0
    for _ in range(r.varint()):
        day += r.varint()
        ids.append(id_entry(int.from_bytes(r.raw(8), "big"), day, 0))
    return tuple(sorted({value >> 64: value for value in ids}.values()))


def _read_outbox(r: _Reader) -> tuple[OutboxEntry, ...]:
    entries = []
    for _ in range(r.varint()):
        cause = r.text() or ""
        emitted = r.varint()
        entries.append(OutboxEntry(cause, emitted, r.raw(r.varint())))
    return tuple(entries)
