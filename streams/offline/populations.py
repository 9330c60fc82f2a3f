"""A population of customers read whole into memory, or spilled to disk in parts by customer when the inputs
are larger than a part (`streams.offline.spill`): what `tierstream calibrate` and the potential check of
`tierstream evaluate` fold, calibrate and count, part by part.

Each part holds every event of its customers, so whatever adds up over customers (the two phases of a
calibration, tier moves, the potential check's tallies) is merged exactly: the answers are those of the
population in memory (one part). What is held at once: one part's states (and a block while reading).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from scoring.calibrate import tier_moves
from scoring.potential_check import PotentialCheck, check_potential, merge_checks
from streams.offline import columnar, spill
from streams.offline.columnar import ColumnRead, read_columns
from streams.offline.history import BadRow, Inputs
from streams.offline.population import count_read, fold_population

if TYPE_CHECKING:
    from scoring.calibration import Calibration
    from scoring.config import ScoringConfig
    from scoring.state import CustomerState
    from streams.offline.replay import ReplayStats


class Population(spill.Parts, Protocol):
    """Customers in `parts` parts (every event of a customer in one part), folded under one config; `kept`
    folds a part's states at a day once for every call with that day."""

    def states(self, part: int, as_of_day: int) -> dict[str, CustomerState]:
        """The part's states at the end of `as_of_day` (kept ones, or folded anew)."""
        ...


class InMemory:
    """The inputs read in columns at once: one part, each day's states folded once and held."""

    parts = 1

    def __init__(self, read: ColumnRead, config: ScoringConfig, stats: ReplayStats) -> None:
        self.read, self.config, self.stats = read, config, stats
        self._days: dict[int, dict[str, CustomerState]] = {}

    def kept(self, part: int, as_of_day: int) -> dict[str, CustomerState]:
        if as_of_day not in self._days:
            self._days[as_of_day] = fold_population(self.read.events, as_of_day, self.config, self.stats)
        return self._days[as_of_day]

    states = kept


@contextmanager
def population(
    inputs: Inputs, config: ScoringConfig, stats: ReplayStats, on_bad: Callable[[BadRow], None] = lambda _: None,
    on_progress: Callable[[int], None] | None = None, chunk_bytes: int | None = None,
    block_bytes: int | None = None,
) -> Iterator[Population]:
    """The customers of `inputs`, read (counted in `stats`, bad rows reported to `on_bad`, grouped reasons
    counted) and folded under `config`: in memory up to `chunk_bytes` of text (default `spill.CHUNK_BYTES`),
    else spilled in parts read `block_bytes` at a time (default `columnar.BLOCK_BYTES`; both looked up at
    each call, which the tests patch). Raises HistoryError as the readers do."""
    parts = spill.parts_for(inputs, spill.CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    if parts > 1:
        block = columnar.BLOCK_BYTES if block_bytes is None else block_bytes
        with spill.spilled(inputs, parts, config, stats, on_bad, on_progress, block) as spilled:
            yield spilled
        return
    read = read_columns(inputs, on_progress)
    count_read(read, stats, on_bad)
    yield InMemory(read, config, stats)


def calibrate(people: Population, as_of_day: int, config: ScoringConfig) -> Calibration:
    """The population's calibration at the end of `as_of_day` under `config`: `scoring.calibrate`'s, merged
    over the parts (`spill.calibrate_population`). CalibrationError when no customer is active."""
    return spill.calibrate_population(people, as_of_day, config)


def moves(
    people: Population, as_of_day: int, config: ScoringConfig, old: ScoringConfig, new: ScoringConfig,
) -> Counter[tuple[str, str]]:
    """`scoring.calibrate.tier_moves` over the population (figures under `config`), added over the parts."""
    total: Counter[tuple[str, str]] = Counter()
    for part in range(people.parts):
        total.update(tier_moves(spill.part_figures(people, part, as_of_day, config), old, new))
    return total


def potential(people: Population, cut_day: int, days: int, config: ScoringConfig) -> PotentialCheck:
    """`scoring.potential_check.check_potential` over the population (states at the end of `cut_day` and
    `days` later), its tallies added over the parts."""
    checks = [check_potential(people.kept(part, cut_day), people.states(part, cut_day + days), cut_day, days,
                              config) for part in range(people.parts)]
    return merge_checks(checks, days)
