"""What a customer's state remembers of the events it applied, to recognise a redelivery: bounded.

Dedupe keys on the event id alone (not its day): the same id is the same event.
- Exact memory: up to `dedupe_exact_ids` entries per customer, each the 64-bit hash of an event id,
  a 32-bit hash of the event's content (kind, time, amount, currency, severity and a purchase's item
  categories) and its day. A redelivery is recognised exactly; an id reused with other content is refused.
  Categories entered the hash after ids were remembered without them (`content_hash`): an entry also
  matches the hash of the event without its categories, so an entry remembered before still recognises
  its redelivery (and, as then, takes the same id with other items for one); an event remembered with
  categories refuses the same id with other categories.
- Beyond that: one Bloom filter of `dedupe_filter_bytes` per period of `FILTER_DAYS` days, with
  `HASHES` hash functions, filled to at most `filter_capacity` events (its false-positive rate is then
  `FALSE_POSITIVE`); further events of a full period are refused. A filter cannot tell content: an
  id reused with other content is taken for a duplicate.
- An entry is forgotten when its day (a filter: its period's last day) is more than `dedupe_days`
  before the customer's clock; events that old are refused (too old to deduplicate).
So the memory never holds more than `worst_case_bytes(...)` of the dedupe settings, whatever the number of events.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from functools import lru_cache
from hashlib import blake2b
from typing import TYPE_CHECKING, Final, NamedTuple

from scoring.events import day_start
from scoring.money import PER_CENT

if TYPE_CHECKING:
    from scoring.events import CoreEvent

FILTER_DAYS: Final = 30
HASHES: Final = 7
FALSE_POSITIVE: Final = 0.01  # a full filter's false-positive rate
ENTRY_BYTES: Final = 17  # an exact entry's encoded size, at most (hash, content, day varint)
FILTER_OVERHEAD: Final = 15  # a filter's encoded size beyond its bits, at most
DUPLICATE: Final = "already applied"
_MASK32: Final = 0xFFFFFFFF


class IdFilter(NamedTuple):
    """The Bloom filter of the events of days [period * FILTER_DAYS, (period + 1) * FILTER_DAYS)."""

    period: int
    events: int  # events added
    bits: bytes


def entry(key: int, day: int, content: int) -> int:
    """An exact entry: ordered by id hash first, so a sorted tuple of them is searched with bisect."""
    return key << 64 | day << 32 | content


def entry_key(value: int) -> int:
    return value >> 64


def entry_day(value: int) -> int:
    return (value >> 32) & _MASK32


def content_hash(event: CoreEvent) -> int:
    """A 32-bit hash of what an event says (never 0: 0 marks an entry whose content is unknown).

    A whole-cent amount enters as its cents, the text hashed when the core kept cents, so an entry remembered
    before money went to 1/10,000 (codec version 6) still recognises the redelivery of its event; another
    amount enters exactly ("12345e-4"). (An event with a sub-cent amount applied before the upgrade, and
    redelivered after it, is refused as an id reused with other content: its figures are not counted twice.)

    A purchase's item categories enter as a set (their order is not content: the state keeps a set), each
    with its length, after the other fields; an event without categories hashes the text it always did
    (`bare_hash`), so every entry of such an event remembered before categories entered still matches.
    """
    text = _text(event)
    if event.categories:
        text += "\x1fc" + "".join(f"\x1f{len(c)}:{c}" for c in sorted(set(event.categories)))
    return _hash32(text)


def bare_hash(event: CoreEvent) -> int:
    """`content_hash` of the event without its categories: what an entry remembered before categories entered
    the hash holds (`Memory.admit` also accepts it; the same as `content_hash` for an event without any)."""
    return _hash32(_text(event))


def _text(event: CoreEvent) -> str:
    e4 = event.amount_e4
    amount = str(e4 // PER_CENT) if e4 % PER_CENT == 0 else f"{e4}e-4"
    return f"{event.kind}\x1f{event.at_ms}\x1f{amount}\x1f{event.currency}\x1f{event.severity}"


def _hash32(text: str) -> int:
    # surrogatepass: a lone surrogate (JSON allows "\ud800" in a product code) hashes instead of raising
    return int.from_bytes(blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "big") or 1


@lru_cache(maxsize=64)  # a pure function of the configured size, on every step that fills a filter
def filter_capacity(size_bytes: int) -> int:
    """Events a filter of `size_bytes` takes before its false-positive rate passes FALSE_POSITIVE."""
    return int(-8 * size_bytes / HASHES * math.log(1 - FALSE_POSITIVE ** (1 / HASHES)))


def false_positive_rate(count: int, size_bytes: int) -> float:
    """The chance that a new id is taken for one of `count` ids in a filter of `size_bytes`."""
    return (1 - math.exp(-HASHES * count / (8 * size_bytes))) ** HASHES


def worst_case_bytes(dedupe_days: int, exact_ids: int, filter_bytes: int) -> int:
    """The most a customer's id memory takes in its encoded state (the config's dedupe settings)."""
    periods = dedupe_days // FILTER_DAYS + 2
    return exact_ids * ENTRY_BYTES + periods * (filter_bytes + FILTER_OVERHEAD)


def _positions(key: int, bits: int) -> list[int]:
    h1, h2 = key & _MASK32, (key >> 32) | 1
    return [(h1 + i * h2) % bits for i in range(HASHES)]


def _has(bits: bytes | bytearray, key: int) -> bool:
    return all(bits[p >> 3] >> (p & 7) & 1 for p in _positions(key, 8 * len(bits)))


def _set(bits: bytearray, key: int) -> None:
    for p in _positions(key, 8 * len(bits)):
        bits[p >> 3] |= 1 << (p & 7)


class Memory:
    """A private, mutable working copy of a state's id memory (see the module docstring)."""

    __slots__ = ("_given", "changed", "entries", "filters", "limit", "size")

    def __init__(
        self, entries: tuple[int, ...], filters: tuple[IdFilter, ...], horizon: int, moved: bool, limit: int, size: int
    ) -> None:
        self.entries: tuple[int, ...] | list[int] = entries
        self.filters: dict[int, tuple[int, bytes | bytearray]] = (
            {f.period: (f.events, f.bits) for f in filters} if filters else {}
        )
        self._given = filters  # frozen again as they are when unchanged
        self.limit, self.size = limit, size  # exact entries kept; bytes per filter
        self.changed = False
        if moved:  # the clock's day moved on: forget what is older than the horizon
            self._forget(horizon)
        if len(self.entries) > self.limit:  # a lower limit, or a state of codec version 1
            self._spill()

    def _forget(self, horizon: int) -> None:
        kept = [e for e in self.entries if (e >> 32) & _MASK32 >= horizon]  # entry_day, inlined (every new day)
        if len(kept) != len(self.entries):
            self.entries, self.changed = kept, True
        gone = [p for p in self.filters if (p + 1) * FILTER_DAYS - 1 < horizon]
        for period in gone:
            del self.filters[period]
        self.changed |= bool(gone)

    def _spill(self) -> None:
        """Move the oldest exact entries into the filters (those that find no room are forgotten)."""
        by_day = sorted(self.entries, key=entry_day)
        cut = len(by_day) - self.limit
        for value in by_day[:cut]:
            self._into_filter(entry_key(value), entry_day(value))
        self.entries, self.changed = sorted(by_day[cut:]), True

    def admit(self, key: int, day: int, content: int, bare: int | None = None) -> str:
        """Remember a new event: "" when remembered, DUPLICATE when already applied, else why it is refused.

        `content`: its `content_hash`; `bare`: its `bare_hash` (what an entry remembered before categories
        entered the hash holds), also taken for the same content; None: `content`."""
        entries = self.entries
        i = bisect_left(entries, key << 64)
        if i < len(entries) and entries[i] >> 64 == key:
            known = entries[i] & _MASK32
            same = known in (content, 0) or known == bare
            return DUPLICATE if same else "event_id reused with different content"
        if self.filters:  # `any(_has(bits, key) ...)`, the positions computed once per filter size
            size, positions = -1, []
            for _, bits in self.filters.values():
                if 8 * len(bits) != size:
                    size = 8 * len(bits)
                    positions = _positions(key, size)
                if all(bits[p >> 3] >> (p & 7) & 1 for p in positions):
                    return DUPLICATE
        self.changed = True
        if len(entries) < self.limit:
            if isinstance(entries, tuple):
                self.entries = entries = list(entries)
            entries.insert(i, entry(key, day, content))  # where `insort` puts it: no entry has this key
            return ""
        if not self._into_filter(key, day):
            first = day_start(day // FILTER_DAYS * FILTER_DAYS).date()
            return (
                f"too many events to deduplicate: the customer has {len(entries)} event ids kept exactly and "
                f"its filter for the {FILTER_DAYS} days from {first} is full (scoring.dedupe_exact_ids, "
                "dedupe_filter_bytes)"
            )
        return ""

    def _into_filter(self, key: int, day: int) -> bool:
        period = day // FILTER_DAYS
        count, bits = self.filters.get(period, (0, b""))
        if not bits:
            bits = bytes(self.size)
        if count >= filter_capacity(len(bits)):
            return False
        if not isinstance(bits, bytearray):
            bits = bytearray(bits)
        _set(bits, key)
        self.filters[period] = (count + 1, bits)
        self.changed = True
        return True

    def frozen(self) -> tuple[tuple[int, ...], tuple[IdFilter, ...]]:
        """(exact entries sorted, filters by period) as immutable values."""
        given = {f.period: f for f in self._given} if self._given else {}
        filters = tuple(
            f if (f := given.get(p)) is not None and f.events == c and f.bits is b else IdFilter(p, c, bytes(b))
            for p, (c, b) in sorted(self.filters.items())
        )
        return tuple(self.entries), filters
