"""A batch replay of inputs larger than memory: rows spilled to disk by customer, then folded part by part.

`streams.offline.batch.replay_columnar` hands its inputs here when their text is more than `CHUNK_BYTES`.
The inputs are read block by block (`columnar.read_blocks`: about `BLOCK_BYTES` of text at a time) and each
block's events are written to `parts` spill files by a hash of the customer id, so that every event of a
customer lands in one part, in file order. Each part is then folded alone (`batch.fold_population`),
evaluated by the core and its CSV rows written in customer order to a spill file of its own; the parts' rows
are merged into customer order at the end. What is held at once: a block, one part's events and states, and
a few rows of each part while merging.

A replay that calibrates from its own input folds each part once and keeps its states on disk between the
two phases of `scoring.calibrate` (as the processes of `streams.offline.parallel` keep theirs in memory):
phase (a) merges the parts' population summaries, phase (b) their score histograms, and the calibration is
the one a replay in memory makes (`calibrate_parts`, `SpilledPopulation`: what `tierstream calibrate` and the
potential check of `tierstream evaluate` use too, through `streams.offline.populations`). Output, bad-row
reports (in file order, as the blocks are read) and counts are those of the replay in memory: the property
tests run both with tiny blocks and parts.
"""

from __future__ import annotations

import csv
import heapq
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import polars as pl

from scoring.calibrate import (
    CustomerFigures,
    PopulationSummary,
    ScoreHistogram,
    calibration_of,
    customer_figures,
    cut_tables,
    score_histogram,
    summarise,
)
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.state import CustomerState
from scoring.step import evaluate
from streams.offline.columnar import BLOCK_BYTES, EVENT_SCHEMA, ColumnRead, read_blocks
from streams.offline.history import BadRow, Inputs
from streams.offline.population import count_read, fold_population
from streams.offline.replay import Profile, ReplayStats, header, no_cyclic_gc, offline, scoring_config, write_rows

if TYPE_CHECKING:
    from scoring.calibration import Calibration
    from scoring.valuemodel.model import ValueModel

CHUNK_BYTES = 64 << 20  # text per part (~2 M rows of a purchases log: a part's fold stays well under 1 GB)
MAX_PARTS = 512
ROWS_PER_PICKLE = 10_000  # output rows a part's spill file holds per record (what the merge holds per part)


def parts_for(inputs: Inputs, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many parts a batch replay of `inputs` folds apart: 1 (all in memory) up to `chunk_bytes` of text."""
    return max(1, min(MAX_PARTS, -(-inputs.text_bytes() // max(1, chunk_bytes))))


def replay_spilled(
    inputs: Inputs, as_of_day: int, config: ScoringConfig, out: IO[str], parts: int, *,
    on_bad: Callable[[BadRow], None] = lambda _: None, model: ValueModel | None = None,
    on_progress: Callable[[int], None] | None = None, calibration: Calibration | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> ReplayStats:
    """`replay_columnar`'s answer, with `parts` parts spilled to a temporary folder (see the module doc)."""
    stats = ReplayStats()
    started = time.perf_counter()
    base = offline(config)
    with no_cyclic_gc(), spilled(inputs, parts, base, stats, on_bad, on_progress, block_bytes) as population:
        if calibration is None and base.tiering == "calibrated":
            scoring = _calibrated(population, as_of_day, base, stats)
        else:
            scoring = scoring_config(base, calibration, stats, lambda: (), as_of_day)
        rows = []
        for part in range(parts):
            states = population.states(part, as_of_day)
            profiles = (Profile(c, s, evaluate(s, as_of_day, scoring, model)) for c, s in states.items())
            path = population.folder / f"rows-{part}.pickle"
            rows.append(_write_part(path, profiles, as_of_day, stats, scoring, model))
            del states
        csv.writer(out, lineterminator="\n").writerow(header(model))
        out.writelines(line for _, line in heapq.merge(*(_rows_of(path) for path in rows)))
    stats.seconds = time.perf_counter() - started
    return stats


class SpilledPopulation:
    """Inputs spilled by customer to the parts of `folder` (`spill`): each part's states under `config`,
    folded on demand.

    `kept` folds a part once per as-of day and keeps its states on disk for the next calls (`states` loads
    them from there, or folds without keeping): what is held is one part's events or states."""

    def __init__(self, folder: Path, files: list[list[Path]], config: ScoringConfig, stats: ReplayStats) -> None:
        self.folder, self.files, self.config, self.stats = folder, files, config, stats
        self.parts = len(files)
        self._kept: dict[tuple[int, int], Path] = {}  # (part, as-of day) -> its states' file

    def fold(self, part: int, as_of_day: int) -> dict[str, CustomerState]:
        """The part's customers' states at the end of `as_of_day` (in customer order; counted in `stats`)."""
        return fold_population(part_events(self.files[part]), as_of_day, self.config, self.stats)

    def kept(self, part: int, as_of_day: int) -> dict[str, CustomerState]:
        """`fold`'s answer, folded at the first call only (kept on disk for the next ones)."""
        if (part, as_of_day) in self._kept:
            return _load(self._kept[part, as_of_day])
        states = self.fold(part, as_of_day)
        path = self.folder / f"states-{part}-{as_of_day}.pickle"
        _dump(path, states)
        self._kept[part, as_of_day] = path
        return states

    def states(self, part: int, as_of_day: int) -> dict[str, CustomerState]:
        """The part's states: those kept on disk, else folded (and not kept)."""
        path = self._kept.get((part, as_of_day))
        return _load(path) if path is not None else self.fold(part, as_of_day)


@contextmanager
def spilled(
    inputs: Inputs, parts: int, config: ScoringConfig, stats: ReplayStats,
    on_bad: Callable[[BadRow], None] = lambda _: None, on_progress: Callable[[int], None] | None = None,
    block_bytes: int = BLOCK_BYTES, on_read: Callable[[ColumnRead], None] | None = None,
) -> Iterator[SpilledPopulation]:
    """`inputs` read block by block (counted in `stats`, bad rows reported, each block shown to `on_read`) and
    spilled to `parts` parts of a temporary folder, removed on exit; folded under `config`. Raises HistoryError
    as the readers do."""
    with tempfile.TemporaryDirectory(prefix="tierstream-spill-") as tmp:
        folder = Path(tmp)
        files = spill(inputs, parts, folder, block_bytes, stats, on_bad, on_progress, on_read)
        yield SpilledPopulation(folder, files, config, stats)


def calibrate_parts(
    parts: int, figures_of: Callable[[int], Iterable[CustomerFigures]], as_of_day: int, config: ScoringConfig,
) -> Calibration:
    """`scoring.calibrate.calibrate_figures`' answer for customers held in `parts` parts, never all at once:
    phase (a) merges the parts' population summaries, phase (b) their score histograms (exact: counts add).
    `figures_of(part)` is called twice per part, once per phase. CalibrationError when no one is active."""
    summary = PopulationSummary()
    for part in range(parts):
        summary = summary.merge(summarise(figures_of(part)))
    tables = cut_tables(summary)
    histogram = ScoreHistogram()
    for part in range(parts):
        histogram = histogram.merge(score_histogram(figures_of(part), tables, config.weights))
    return calibration_of(summary, tables, histogram, as_of_day, config)


class Parts(Protocol):
    """Customers in `parts` parts, each part's states at a day folded once (`SpilledPopulation`, and the
    one-part population of `streams.offline.populations`)."""

    parts: int

    def kept(self, part: int, as_of_day: int) -> dict[str, CustomerState]: ...


def part_figures(population: Parts, part: int, as_of_day: int, config: ScoringConfig) -> Iterator[CustomerFigures]:
    """The calibration figures of a part's customers at the end of `as_of_day` (its states kept: `kept`)."""
    return (customer_figures(s, as_of_day, config) for s in population.kept(part, as_of_day).values())


def calibrate_population(population: Parts, as_of_day: int, config: ScoringConfig) -> Calibration:
    """The calibration of a population in parts at the end of `as_of_day` under `config` (`calibrate_parts`):
    each part folded once, its states kept; CalibrationError when no customer is active."""
    return calibrate_parts(population.parts, lambda part: part_figures(population, part, as_of_day, config),
                           as_of_day, config)


def spill(
    inputs: Inputs, parts: int, folder: Path, block_bytes: int, stats: ReplayStats,
    on_bad: Callable[[BadRow], None], on_progress: Callable[[int], None] | None,
    on_read: Callable[[ColumnRead], None] | None = None,
) -> list[list[Path]]:
    """Read `inputs` block by block (counted in `stats`, bad rows reported, each block shown to `on_read`) and
    write each block's events to the files of their parts (by a hash of the customer id): each part's files,
    in file order."""
    files: list[list[Path]] = [[] for _ in range(parts)]
    for number, read in enumerate(read_blocks(inputs, block_bytes, on_progress)):
        count_read(read, stats, on_bad)
        if on_read is not None:
            on_read(read)
        if read.events.height == 0:
            continue
        keyed = read.events.with_columns(part=(pl.col("customer").hash(seed=16) % parts).cast(pl.UInt32))
        for key, piece in keyed.partition_by("part", as_dict=True, include_key=False).items():
            part = int(key[0])
            path = folder / f"events-{part}-{number}.arrow"
            piece.write_ipc(path)
            files[part].append(path)
    return files


def part_events(files: list[Path]) -> pl.DataFrame:
    """A part's events (`EVENT_SCHEMA`), in file order."""
    if not files:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.concat([pl.read_ipc(path) for path in files], how="vertical")


def _calibrated(
    population: SpilledPopulation, as_of_day: int, base: ScoringConfig, stats: ReplayStats,
) -> ScoringConfig:
    """Calibrate from the whole population (`calibrate_population`): the config to score with."""
    try:
        calibration = calibrate_population(population, as_of_day, base)
    except CalibrationError:  # nothing to calibrate from: the config as it is (as `scoring_config` says it)
        stats.calibrated_from = "none"
        return base
    stats.calibration, stats.calibrated_from = calibration, "history"
    return base.calibrated(calibration)


def _dump(path: Path, value: object) -> None:
    with path.open("wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: Path) -> dict[str, CustomerState]:
    with path.open("rb") as handle:
        states: dict[str, CustomerState] = pickle.load(handle)  # our own file, of this run
    return states


def _write_part(
    path: Path, profiles: Iterator[Profile], as_of_day: int, stats: ReplayStats, config: ScoringConfig,
    model: ValueModel | None,
) -> Path:
    """A part's CSV rows (customer order) to `path`, `ROWS_PER_PICKLE` (customers, lines) at a time."""
    with path.open("wb") as handle:
        while True:
            customers: list[str] = []
            lines: list[str] = []
            batch = (p for _, p in zip(range(ROWS_PER_PICKLE), profiles, strict=False))
            write_rows(_Lines(lines), batch, as_of_day, stats, config, model, customers)
            if not customers:
                return path
            pickle.dump((customers, lines), handle, protocol=pickle.HIGHEST_PROTOCOL)


def _rows_of(path: Path) -> Iterator[tuple[str, str]]:
    """A part's (customer, CSV line) pairs, in customer order."""
    with path.open("rb") as handle:
        while True:
            try:
                customers, lines = pickle.load(handle)  # our own file, of this run
            except EOFError:
                return
            yield from zip(customers, lines, strict=True)


class _Lines:
    """A text sink that keeps each write (the csv writer writes one row per call)."""

    def __init__(self, lines: list[str]) -> None:
        self.write = lines.append
