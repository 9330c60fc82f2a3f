"""The core's id memory (`scoring.dedupe.Memory`) decided for all of a customer's events at once.

`streams.offline.batchfold` folds in columns the customers whose distinct ids the core keeps exactly. A customer
with more (a wholesale buyer: thousands of line items) used to be folded event by event by `scoring.fold.fold`,
because beyond `dedupe_exact_ids` the core remembers ids in Bloom filters, whose false positives a table cannot
foresee. Here those decisions are computed, the same ones, from the events in file order; the events applied are
then folded in columns with everyone else's.

A fold from a new state, as of one `now_ms`, with the offline config (every id remembered, however old: no
dedupe horizon), decides an event:
- refused when the core's checks refuse it (`scoring.fold.check_event`: the caller's `ok`, in columns);
- else, when its id's 64-bit hash is among the exact entries: a duplicate when its content is the entry's
  (`content_hash`, or `bare_hash`), else refused (an id reused with other content);
- else, while fewer than `dedupe_exact_ids` entries are kept: applied, and kept exactly (nothing is forgotten
  within one fold, so the exact entries are the first ids applied);
- else (a filter candidate): a duplicate when every bit of its key is set in one of the filters (set by a
  candidate applied before it, in any period), else refused when its period's filter is full
  (`filter_capacity`), else applied and its bits set in its period's filter.

The candidates' decisions depend on the ones before them. They are found by a fixpoint: start from "all
applied", compute every candidate's decision from the earlier candidates' current ones (vectorised: the
first candidate to set each bit of each filter, and each period's running count), repeat until nothing
changes. A candidate whose earlier candidates are all decided right is decided right in the next round, so
the rounds end (at most one per candidate; in practice two or three, as a filter rarely answers a false yes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from scoring.config import ScoringConfig
from scoring.dedupe import FILTER_DAYS, HASHES, bare_hash, content_hash, filter_capacity
from scoring.events import CoreEvent
from scoring.ids import hash64

_MASK32 = 0xFFFFFFFF
_BLOCK = 4096  # candidates checked against every filter at once
Flags = npt.NDArray[np.bool_]


def decide(
    ids: Sequence[str], days: npt.NDArray[np.int64], ok: Flags, event: Callable[[int], CoreEvent],
    config: ScoringConfig,
) -> tuple[Flags, int, int]:
    """One customer's events in file order (their ids, days, whether the core's checks accept them, and the
    event itself, asked for only when its id is remembered exactly): (applied, rejected, duplicates) of a fold
    from a new state."""
    n = len(ids)
    applied = np.zeros(n, dtype=np.bool_)
    limit = config.dedupe_exact_ids
    rows = np.flatnonzero(ok)
    keys = np.fromiter((hash64(ids[i]) for i in rows.tolist()), dtype=np.uint64, count=rows.size)
    rejected, duplicates = n - rows.size, 0
    if np.unique(keys).size == keys.size:  # no id twice (the common log): the first `limit` are kept exactly
        applied[rows[:limit]] = True
        candidates, wanting = rows[limit:], keys[limit:]
    else:
        exact: dict[int, int] = {}  # key -> the row whose event it remembers
        later: list[int] = []
        for i, key in zip(rows.tolist(), keys.tolist(), strict=True):
            first = exact.get(key)
            if first is not None:
                mine = event(i)
                known, content = content_hash(event(first)), content_hash(mine)
                if known == content or known == (bare_hash(mine) if mine.categories else content):
                    duplicates += 1
                else:
                    rejected += 1
            elif len(exact) < limit:
                exact[key] = i
                applied[i] = True
            else:
                later.append(i)
        candidates = np.asarray(later, dtype=np.int64)
        wanting = keys[np.searchsorted(rows, candidates)]
    if candidates.size:
        taken, duplicate = _filtered(wanting, days[candidates] // FILTER_DAYS, config.dedupe_filter_bytes)
        applied[candidates[taken]] = True
        duplicates += int(duplicate.sum())
        rejected += int((~taken & ~duplicate).sum())
    return applied, rejected, duplicates


def _filtered(packed: npt.NDArray[np.uint64], periods: npt.NDArray[np.int64], size: int) -> tuple[Flags, Flags]:
    """The filter candidates' decisions, in order (their keys, periods): (applied, duplicate); neither is
    refused (filter full)."""
    n = packed.size
    bits = 8 * size
    capacity = filter_capacity(size)
    h1 = (packed & np.uint64(_MASK32)).astype(np.int64)
    h2 = ((packed >> np.uint64(32)) | np.uint64(1)).astype(np.int64)
    positions = (h1[:, None] + np.arange(HASHES, dtype=np.int64)[None, :] * h2[:, None]) % bits  # `_positions`
    filters, slot = np.unique(periods, return_inverse=True)
    by_filter = np.argsort(slot, kind="stable")  # each filter's candidates together, in order
    starts = np.searchsorted(slot[by_filter], np.arange(filters.size))
    order = np.arange(n, dtype=np.int64)
    taken = np.ones(n, dtype=np.bool_)
    while True:
        first_set = np.full((filters.size, bits), n, dtype=np.int64)  # the first applied candidate to set it
        mine = np.flatnonzero(taken)
        np.minimum.at(first_set, (np.repeat(slot[mine], HASHES), positions[mine].ravel()),
                      np.repeat(order[mine], HASHES))
        # a duplicate when, in some filter, every bit of its key was set before it (in blocks: F x block x 7)
        duplicate = np.zeros(n, dtype=np.bool_)
        for lo in range(0, n, _BLOCK):
            hi = min(n, lo + _BLOCK)
            duplicate[lo:hi] = (first_set[:, positions[lo:hi]].max(axis=2) < order[None, lo:hi]).any(axis=0)
        # the applied candidates of its period before it: the filter's count when it comes
        counted = taken[by_filter].astype(np.int64)
        running = np.cumsum(counted) - counted
        before = np.empty(n, dtype=np.int64)
        before[by_filter] = running - running[starts][slot[by_filter]]
        now = ~duplicate & (before < capacity)
        if np.array_equal(now, taken):
            return taken, duplicate
        taken = now
