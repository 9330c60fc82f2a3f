"""A population spilled to disk in parts (`streams.offline.populations`) against the one read in memory.

Over random logs (many customers, bad rows of every kind, ids, currencies, several files) spilled in parts of
64 bytes of text read in blocks of 40, the calibration (or its error), the tier moves against another config,
the potential check, the bad rows reported and the counts are those of the population in memory; and those
are the answers of the commands' former path (`batch_population`, then `calibrate_figures`, `tier_moves`,
`check_potential` over every customer at once).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from scoring.calibrate import calibrate_figures, customer_figures, tier_moves
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.potential_check import check_potential
from streams.offline import populations, spill
from streams.offline.batch import batch_population
from streams.offline.history import BadRow, CsvLayout, Inputs
from streams.offline.replay import ReplayStats
from tests.offline.test_replay_columnar import AS_OF, PROPS, config, general_line, write

CUT, DAYS = AS_OF - 60, 60
HEADER = "customer_id,occurred_at,amount,type,event_id,currency,severity"
LAYOUT = CsvLayout(type="type", event_id="event_id", currency="currency", severity="severity")


@st.composite
def customer_line(draw: st.DrawFn) -> str:
    """A readable typed row of one of 40 customers, on a day of the year before the as-of day (or after)."""
    month, day = draw(st.integers(1, 7)), draw(st.integers(10, 28))
    return ",".join([
        f"k{draw(st.integers(0, 39))}", f"2024-0{month}-{day}", draw(st.sampled_from(["12.5", "3", "70.25", "-4"])),
        draw(st.sampled_from(["purchase"] * 4 + ["return", "complaint"])),
        draw(st.sampled_from(["", "", "e1", "e2"])), draw(st.sampled_from(["", "EUR", "GBP"])), "",
    ])


def reference(inputs: Inputs, scoring: ScoringConfig, old: ScoringConfig) -> tuple[object, ...]:
    """What the commands computed before the populations: every customer's state at once."""
    bad: list[BadRow] = []
    stats = ReplayStats()
    states = batch_population(inputs, AS_OF, scoring, stats, bad.append)
    figures = [customer_figures(s, AS_OF, scoring) for s in states.values()]
    try:
        calibration = calibrate_figures(figures, AS_OF, scoring)
    except CalibrationError as exc:
        return str(exc), None, None, bad, stats.rows, stats.bad, stats.grouped
    moves = tier_moves(figures, old, scoring.calibrated(calibration))
    at_cut = batch_population(inputs, CUT, scoring, ReplayStats())
    after = batch_population(inputs, CUT + DAYS, scoring, ReplayStats())
    check = check_potential(at_cut, after, CUT, DAYS, scoring.calibrated(calibration))
    return calibration, moves, check, bad, stats.rows, stats.bad, stats.grouped


def answers(
    inputs: Inputs, scoring: ScoringConfig, old: ScoringConfig, chunk_bytes: int | None = None,
) -> tuple[int, tuple[object, ...]]:
    """(parts, what `populations` computes): in memory, or spilled in parts of `chunk_bytes` of text."""
    bad: list[BadRow] = []
    stats = ReplayStats()
    with populations.population(inputs, scoring, stats, bad.append, chunk_bytes=chunk_bytes, block_bytes=40) as people:
        try:
            calibration = populations.calibrate(people, AS_OF, scoring)
        except CalibrationError as exc:
            return people.parts, (str(exc), None, None, bad, stats.rows, stats.bad, stats.grouped)
        moves = populations.moves(people, AS_OF, scoring, old, scoring.calibrated(calibration))
        check = populations.potential(people, CUT, DAYS, scoring.calibrated(calibration))
        return people.parts, (calibration, moves, check, bad, stats.rows, stats.bad, stats.grouped)


def alike(inputs: Inputs, exact_ids: int) -> int:
    """Assert in memory, spilled in 64-byte parts and the former path agree; how many parts were spilled."""
    scoring = config(exact_ids, "calibrated")
    old = config(exact_ids, "absolute")
    whole, in_memory = answers(inputs, scoring, old)
    parts, spilled = answers(inputs, scoring, old, chunk_bytes=64)
    assert whole == 1
    assert in_memory == reference(inputs, scoring, old)
    assert spilled == in_memory
    assert parts == spill.parts_for(inputs, 64)
    return parts


@PROPS
@given(lines=st.lists(st.one_of(customer_line(), customer_line(), general_line()), max_size=80),
       exact_ids=st.sampled_from([1, 2048]), twice=st.booleans())
@example(lines=[], exact_ids=2048, twice=False)
@example(lines=["c1,2024-06-01,5,complaint,,,"], exact_ids=2048, twice=False)  # no one active: the same error
def test_spilled_populations_calibrate_and_check_as_in_memory(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], exact_ids: int, twice: bool,
) -> None:
    path = write(tmp_path_factory.mktemp("spilled") / "p.csv", "\n".join([HEADER, *lines]))
    inputs = Inputs((path, path) if twice else (path,), LAYOUT)  # the same file twice: every id again
    alike(inputs, exact_ids)


def test_many_customers_spilled_in_many_parts(tmp_path: Path) -> None:
    """300 customers over the year in about 90 parts: every part holds some, the answers are the same."""
    rows = [f"k{n % 300},2024-0{n % 6 + 1}-{n % 19 + 10},{n % 97}.25,purchase,,," for n in range(2000)]
    rows += [f"k{n},2024-06-{n % 20 + 10},5,return,,," for n in range(0, 300, 7)]
    inputs = Inputs((write(tmp_path / "many.csv", "\n".join([HEADER, *rows])),), LAYOUT)
    assert alike(inputs, 2048) > 50
