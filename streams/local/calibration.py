"""The demo's calibration: what `tierstream calibrate` gives for the history the demo generates.

The demo sends `history_days` of synthetic history at once before going live. Under calibrated tiering it
calibrates from that history before its worker starts (the customers' states folded as `replay` and
`calibrate` fold them, then `scoring.calibrate.calibrate`), writes the file and gives it to the worker as
`calibration_path`, as a calibration file is given to a worker in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import takewhile

from scoring.calibrate import calibrate
from scoring.calibration import Calibration
from scoring.config import ScoringConfig
from scoring.events import MS_PER_DAY
from streams.convert import to_core
from streams.local.generator import Draft, to_message
from streams.offline.history import Row
from streams.offline.replay import ReplayStats, population


def history_of(drafts: Iterable[Draft], history_days: int) -> Iterator[Draft]:
    """The drafts of the first `history_days` days (drafts in time order, days counted from the start)."""
    return takewhile(lambda d: d.at_ms < history_days * MS_PER_DAY, drafts)


def history_rows(history: Iterable[Draft], seed: int, start_ms: int) -> Iterator[Row]:
    """The drafts as the rows a history file of their messages reads as."""
    for line, draft in enumerate(history, 1):
        message = to_message(draft, seed, start_ms)
        yield Row(line, message.customer_id, to_core(message))


def calibrate_history(history: Iterable[Draft], seed: int, start_ms: int, as_of_day: int,
                      config: ScoringConfig) -> Calibration:
    """The calibration, as of the end of epoch day `as_of_day`, of the customers of `history` (drafts of
    `seed` placed from `start_ms`); CalibrationError when no customer is active."""
    states = population(history_rows(history, seed, start_ms), as_of_day, config, ReplayStats())
    return calibrate(states.values(), as_of_day, config)
