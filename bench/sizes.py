"""How big each part runs: full (`python -m bench`), quick (`--quick`), tiny (`--tiny`, smoke test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    core_clones: int  # CDNOW sample copies: 10 is the full CDNOW log's size (~69k rows, ~23.6k customers)
    core_repeats: int
    pipeline_customers: int
    pipeline_events: int
    latency_seconds: float  # per offered load
    due_customers: int  # come due at once (part 6)
    table_factor: int  # the larger table holds due_customers x this
    index_due: int  # pure DeadlineIndex: entries due ...
    index_sizes: tuple[int, ...]  # ... in indexes of these sizes
    memory_sizes: tuple[int, ...]  # customers held by the memory model process
    core_exact: bool = True  # also time `replay --exact` (the slowest core figure)


FULL = Sizes("full", 10, 3, 20_000, 100_000, 10.0, 10_000, 10, 10_000, (100_000, 1_000_000),
             (100_000, 1_000_000))
# quick keeps the core part at issue 2's size (~70,000 rows, ~25,000 customers): its targets are stated for it
# quick's stream (~4,900 customers, ~50,000 events over about two years) is issue 15's: long enough for a
# worker at ~10,000 events/s to be sampled over seconds, and coalescing per flush to be what it is in a long run
# quick re-scores 2,000 due customers (tables of 2,000 and 20,000): 500 were done within one poll of /health, and
# the rate then measured the poll, not the worker
QUICK = Sizes("quick", 10, 2, 4_900, 50_000, 3.0, 2_000, 10, 10_000, (100_000, 1_000_000), (100_000, 1_000_000))
TINY = Sizes("tiny", 1, 1, 1_000, 8_000, 1.0, 200, 10, 1_000, (10_000, 100_000), (10_000,), core_exact=False)
