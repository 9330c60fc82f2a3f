"""The offering answers on held-out time of the synthetic stream: its latent potential and its tastes are found.

(a) low-value customers in the high-potential cell at a cut-off move up a tier more often in the next 90 days
than the other low-value ones; (b) the category the affinity proposes is bought in the next 90 days more often
than the best seller proposed to everyone, and than the most popular category not yet bought. Both beyond
their 95 % intervals, on 2,000 customers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring import NEW_STATE, ScoringConfig, fold
from scoring.affinity import fit_affinity
from scoring.affinity_check import check_affinity
from scoring.calibrate import calibrate_figures, customer_figures
from scoring.events import MS_PER_DAY, day_of
from scoring.potential_check import check_potential
from streams.convert import to_core
from streams.local.generator import DEFAULT_START, generate, to_json
from streams.offline.baskets import read_baskets
from streams.offline.history import CsvLayout, Inputs

SEED, CUSTOMERS, DAYS, CUT_DAY, HORIZON = 7, 2000, 450, 290, 90  # the held-out days end before the stream


@pytest.fixture(scope="module")
def stream() -> list:
    return list(generate(SEED, CUSTOMERS, DAYS))


def test_affinity_proposal_beats_the_best_seller_on_held_out_days(stream: list, tmp_path: Path) -> None:
    history = tmp_path / "stream.jsonl"
    history.write_text("".join(to_json(m) + "\n" for m in stream))
    cut = day_of(DEFAULT_START) + CUT_DAY
    config = ScoringConfig()
    baskets = read_baskets(Inputs((history,), CsvLayout()), cut, HORIZON, config)
    affinity = fit_affinity(baskets.before.values(), config.affinity.min_support, config.affinity.related_kept)
    kept = {customer: [name for name, _ in pairs] for customer, pairs in baskets.kept.items()}
    check = check_affinity(kept, baskets.after, affinity, HORIZON)
    assert check.covered > 0.9 * CUSTOMERS
    assert check.proposed.rate > check.everyone.rate > check.popular.rate
    assert check.holds, check  # both differences' intervals above 0
    assert check.versus_everyone[1] > 0 and check.versus_popular[1] > 0


def test_high_potential_moves_up_more_often_on_held_out_days(stream: list) -> None:
    """As `tierstream evaluate` checks it: tiers calibrated on the population at the cut-off."""
    config = ScoringConfig()
    cut = day_of(DEFAULT_START) + CUT_DAY
    events: dict[str, list] = {}
    for message in stream:
        events.setdefault(message.customer_id, []).append(to_core(message))

    def states(day: int) -> dict:
        end = (day + 1) * MS_PER_DAY - 1
        return {c: fold(NEW_STATE, [e for e in es if e.at_ms <= end], end, config)[0] for c, es in events.items()}

    at_cut = states(cut)
    calibrated = config.calibrated(calibrate_figures([customer_figures(s, cut, config) for s in at_cut.values()],
                                                     cut, config))
    check = check_potential(at_cut, states(cut + HORIZON), cut, HORIZON, calibrated)
    assert check.high_potential.customers > 100 and check.others.customers > 100
    assert check.low > 0, check  # the difference's interval is above 0
