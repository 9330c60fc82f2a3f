"""Calibrate: a population's percentile tables and tier thresholds, as a pure function of the population.

`calibrate(population, as_of_day, config) -> Calibration` takes the customers'
states (any order, any iterable) and gives the artefact of
`scoring.calibration`: the same population gives the same artefact, byte for
byte, whatever the order. It depends only on each customer's figures as of the
day (`customer_figures`), never on a stored tier or score, so recalibrating a
population that was tiered under a calibration gives that calibration back.

"Active" means a purchase in the `window_days` to the as-of day. The tables
and thresholds are computed over the active customers only; the others are
tiered by the same thresholds, which places them low (no recent purchase, no
window frequency or spend: their R/F/M points are 0).

It runs in two phases, each of which merges exactly, so a population spread
over partitions and workers is calibrated as if it were in one place (each
worker summarises its own partitions; one place merges and decides):

(a) `summarise(figures) -> PopulationSummary`: count maps, over the active
    customers, of recency (days), window purchase count and window net spend
    (whole cents, half to even, of the exact 1/10,000 sums), and the customer
    counts. Summaries `merge` by adding counts.
    `cut_tables(summary)` turns the merged summary into the quantile tables.
(b) `score_histogram(figures, tables, weights) -> ScoreHistogram`: how many
    active customers have each composite score (in 0.01 points) under those
    tables. Histograms `merge` by adding counts. `tier_thresholds(histogram,
    shares)` picks, for each tier, the score that puts the closest number of
    customers to its cumulative share above it.

`calibrate` = figures, (a), tables, (b), thresholds, `make_calibration`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from scoring.calibration import Calibration, make_calibration
from scoring.config import ScoringConfig
from scoring.errors import CalibrationError
from scoring.money import cents_of, money_float
from scoring.rfm import absolute_rfm, calibrated_rfm, composite_of, score_inputs
from scoring.state import CustomerState
from scoring.tiers import raw_tier

TABLE_POINTS = 100  # percentiles: each table holds the 0th, 1st, ..., 100th


class CustomerFigures(NamedTuple):
    """What calibration needs of one customer as of a day.

    `adjustments` are the composite's points after R/F/M (returns, complaints,
    tenure, enquiries, in `rfm.COMPONENT_NAMES` order): they do not depend on
    the calibration.
    """

    recency_days: int | None
    purchases: int  # in the window
    net_e4: int  # window purchases - window returns, 1/10,000 of the base currency (`scoring.money`)
    adjustments: tuple[float, ...]

    @property
    def is_active(self) -> bool:
        return self.purchases > 0


class CutTables(NamedTuple):
    """The three quantile tables of phase (a), before the thresholds exist."""

    recency_days: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary_cents: tuple[int, ...]


def customer_figures(state: CustomerState, day: int, config: ScoringConfig) -> CustomerFigures:
    """A customer's figures as of epoch day `day` (its scores' inputs; no stored tier or score)."""
    inputs = score_inputs(state, day, config)
    w = inputs.window
    return CustomerFigures(inputs.recency, w.purchases, w.purchase_e4 - w.return_e4, inputs.adjustments)


@dataclass(frozen=True)
class PopulationSummary:
    """Phase (a): count maps over the active customers, and how many customers there are in all."""

    customers: int = 0
    recency: Mapping[int, int] = field(default_factory=dict)  # days since the last purchase -> customers
    frequency: Mapping[int, int] = field(default_factory=dict)  # purchases in the window -> customers
    monetary: Mapping[int, int] = field(default_factory=dict)  # window net spend, cents -> customers

    @property
    def active(self) -> int:
        return sum(self.frequency.values())

    def merge(self, other: PopulationSummary) -> PopulationSummary:
        """The summary of both populations (exact: counts add)."""
        return PopulationSummary(
            self.customers + other.customers,
            _added(self.recency, other.recency),
            _added(self.frequency, other.frequency),
            _added(self.monetary, other.monetary),
        )


@dataclass(frozen=True)
class ScoreHistogram:
    """Phase (b): active customers per composite score in hundredths of a point (0-10000)."""

    scores: Mapping[int, int] = field(default_factory=dict)

    @property
    def active(self) -> int:
        return sum(self.scores.values())

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        return ScoreHistogram(_added(self.scores, other.scores))


def _added(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    total = Counter(a)
    total.update(b)
    return dict(total)


def summarise(figures: Iterable[CustomerFigures]) -> PopulationSummary:
    """Phase (a) for some customers (one partition, or all)."""
    customers = 0
    recency: Counter[int] = Counter()
    frequency: Counter[int] = Counter()
    monetary: Counter[int] = Counter()
    for f in figures:
        customers += 1
        if f.is_active:
            assert f.recency_days is not None  # a purchase in the window has a last purchase day
            recency[f.recency_days] += 1
            frequency[f.purchases] += 1
            monetary[cents_of(f.net_e4)] += 1  # the tables are in cents (`calibrated_rfm`)
    return PopulationSummary(customers, dict(recency), dict(frequency), dict(monetary))


def quantile_table(counts: Mapping[int, int], points: int = TABLE_POINTS) -> tuple[int, ...]:
    """The lower quantiles at 0, 1/points, ..., 1 of the values counted: `points + 1` observed values,
    the first the minimum and the last the maximum (exact integer arithmetic)."""
    total = sum(counts.values())
    table: list[int] = []
    cumulative = k = 0
    for value, n in sorted(counts.items()):
        cumulative += n
        while k <= points and cumulative * points >= k * total:
            table.append(value)
            k += 1
    return tuple(table)


def cut_tables(summary: PopulationSummary, points: int = TABLE_POINTS) -> CutTables:
    """The quantile tables of a (merged) summary; CalibrationError when no customer is active."""
    if not summary.active:
        raise CalibrationError(
            f"calibration: no active customer (a purchase in the window) among {summary.customers:,}: "
            "nothing to calibrate from"
        )
    return CutTables(
        quantile_table(summary.recency, points),
        quantile_table(summary.frequency, points),
        quantile_table(summary.monetary, points),
    )


def calibrated_composite(f: CustomerFigures, tables: CutTables | Calibration, weights: tuple[float, ...]) -> float:
    """The composite `rfm.score` gives a customer with these figures under these tables."""
    wr, wf, wm = weights
    _, rfm = calibrated_rfm(tables, (wr, wf, wm), f.recency_days, f.purchases, cents_of(f.net_e4))
    return composite_of((*rfm, *f.adjustments))


def composite_under(f: CustomerFigures, config: ScoringConfig) -> float:
    """The composite of a customer with these figures under `config` (calibrated or not)."""
    calibration = config.calibration
    if calibration is not None:
        return calibrated_composite(f, calibration, config.weights)
    _, rfm = absolute_rfm(config, f.recency_days, f.purchases, money_float(f.net_e4))
    return composite_of((*rfm, *f.adjustments))


def score_histogram(
    figures: Iterable[CustomerFigures], tables: CutTables, weights: tuple[float, ...]
) -> ScoreHistogram:
    """Phase (b) for some customers: active customers per composite (0.01 points) under `tables`."""
    scores: Counter[int] = Counter()
    for f in figures:
        if f.is_active:
            scores[round(calibrated_composite(f, tables, weights) * 100)] += 1
    return ScoreHistogram(dict(scores))


def full_shares(config: ScoringConfig) -> dict[str, float]:
    """Each tier's share of the active customers, highest first; the last tier's is the rest."""
    names = config.tier_names
    shares = {t: config.tier_shares[t] for t in names[:-1]}
    return {**shares, names[-1]: 1 - sum(shares.values())}


def tier_thresholds(histogram: ScoreHistogram, shares: Mapping[str, float]) -> dict[str, float]:
    """Each tier's entry score (0-100, highest tier first, the last 0): the score with the number of active
    customers at or above it closest to the tier's cumulative share (ties: the higher score). Monotone: a
    lower tier never has a higher threshold."""
    active = histogram.active
    options = _boundaries(histogram)
    thresholds: dict[str, float] = {}
    cumulative = 0.0
    names = list(shares)
    for tier in names[:-1]:
        cumulative += shares[tier]
        thresholds[tier] = _closest(options, cumulative * active) / 100
    thresholds[names[-1]] = 0.0
    return thresholds


def _closest(options: list[tuple[int, int]], target: float) -> int:
    """The score of the option whose customer count is closest to `target` (ties: fewer customers)."""
    return min(options, key=lambda option: (abs(option[0] - target), option[0]))[1]


def _boundaries(histogram: ScoreHistogram) -> list[tuple[int, int]]:
    """(customers at or above, score in 0.01 points) for every score seen, and for "nobody" when a score
    above the highest exists."""
    options: list[tuple[int, int]] = []
    top = max(histogram.scores, default=0)
    if top < 10_000:
        options.append((0, top + 1))
    above = 0
    for centi in sorted(histogram.scores, reverse=True):
        above += histogram.scores[centi]
        options.append((above, centi))
    return options


def calibration_of(
    summary: PopulationSummary,
    tables: CutTables,
    histogram: ScoreHistogram,
    as_of_day: int,
    config: ScoringConfig,
) -> Calibration:
    """The artefact of the two (merged) phases."""
    shares = full_shares(config)
    return make_calibration(
        as_of_day=as_of_day,
        config_version=config.version,
        window_days=config.window_days,
        customers=summary.customers,
        active=summary.active,
        shares=shares,
        thresholds=tier_thresholds(histogram, shares),
        tables=(tables.recency_days, tables.frequency, tables.monetary_cents),
    )


def calibrate_figures(
    figures: Sequence[CustomerFigures], as_of_day: int, config: ScoringConfig, points: int = TABLE_POINTS
) -> Calibration:
    """`calibrate` from the customers' figures (as of `as_of_day`)."""
    summary = summarise(figures)
    tables = cut_tables(summary, points)
    return calibration_of(summary, tables, score_histogram(figures, tables, config.weights), as_of_day, config)


def calibrate(
    population: Iterable[CustomerState], as_of_day: int, config: ScoringConfig, points: int = TABLE_POINTS
) -> Calibration:
    """The calibration of a population as of the end of epoch day `as_of_day` under `config`.

    Pure and order-independent; raises CalibrationError when no customer is active.
    """
    figures = [customer_figures(state, as_of_day, config) for state in population]
    return calibrate_figures(figures, as_of_day, config, points)


def apply_calibration(config: ScoringConfig, calibration: Calibration) -> ScoringConfig:
    """The effective config under `calibration` (see `ScoringConfig.calibrated`)."""
    return config.calibrated(calibration)


def tier_moves(figures: Iterable[CustomerFigures], old: ScoringConfig, new: ScoringConfig) -> Counter[tuple[str, str]]:
    """How many customers would move from each tier to each tier, old config against new (fresh tiers, as a
    batch assigns them: no hysteresis)."""
    moves: Counter[tuple[str, str]] = Counter()
    for f in figures:
        moves[raw_tier(composite_under(f, old), old), raw_tier(composite_under(f, new), new)] += 1
    return moves


def stale_reasons(config: ScoringConfig, calibration: Calibration) -> list[str]:
    """Why `calibration` may not give `config`'s intended tiers (it still applies): another config version,
    or other tier shares. Empty when it fits."""
    reasons = []
    if calibration.config_version != config.version:
        reasons.append(f"made under config version {calibration.config_version!r}, this config is {config.version!r}")
    wanted = full_shares(config)
    if any(abs(wanted[t] - calibration.shares.get(t, -1.0)) > 1e-9 for t in wanted):
        shares = ", ".join(f"{t} {s:g}" for t, s in calibration.shares.items())
        reasons.append(f"made for tier shares {shares}, this config asks for others")
    return reasons
