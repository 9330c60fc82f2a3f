"""StateCache: a flush's taken states are never evicted before they are in the store (the worker renders and
writes a flush outside its lock, while the agent keeps stepping and reading)."""

from __future__ import annotations

from scoring.config import ScoringConfig
from scoring.events import CoreEvent, Kind
from scoring.state import NEW_STATE, CustomerState
from scoring.step import step
from streams.worker.states import StateCache
from streams.worker.store import DictStore

AT = 1_700_000_000_000


def bought(customer: str) -> CustomerState:
    state = step(NEW_STATE, CoreEvent(Kind.PURCHASE, f"{customer}-1", AT, 42_0000, "USD"), AT, customer,
                 ScoringConfig()).state
    assert state is not None
    return state


def test_a_taken_state_is_read_from_the_cache_until_it_is_stored() -> None:
    store = DictStore()
    cache = StateCache(store, max_clean=2)
    new = bought("c0")
    cache.put("c0", 0, new)
    (taken,) = cache.take_dirty()
    assert taken.state is new
    for i in range(1, 20):  # other customers' reads fill the cache far past max_clean meanwhile
        cache.touch(f"o{i}", 0, bought(f"o{i}"))
    assert cache.get("c0") is new  # the store has nothing yet: an eviction would have lost the step
    store.put(0, "c0", b"stored")
    cache.stored(["c0"])
    cache.touch("o99", 0, bought("o99"))
    assert len(cache) == 2  # evictable again once stored


def test_a_dropped_cache_forgets_what_a_flush_had_taken() -> None:
    cache = StateCache(DictStore(), max_clean=0)
    cache.put("c0", 0, bought("c0"))
    cache.take_dirty()
    assert cache.drop() == 0  # taken: no longer dirty
    cache.touch("o1", 0, bought("o1"))
    assert len(cache) == 0  # nothing pinned is left behind
