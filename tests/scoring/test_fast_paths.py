"""The step's fast paths equal their specifications, value for value (floats exactly): the inlined `score`
against `score_inputs` + the R/F/M points + `composite_of`, and the tier ladder memo against the tier list."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scoring import NEW_STATE, Score, ScoringConfig, fold, parse_config, score
from scoring.events import MS_PER_DAY
from scoring.money import cents_of, money_float
from scoring.rfm import absolute_rfm, calibrated_rfm, composite_of, score_inputs
from scoring.tiers import assign_tier, raw_tier, tier_rank
from tests.scoring.test_properties import CALIBRATED, CONFIG, PROPS, histories


def _reference_score(state, today: int, config: ScoringConfig) -> Score:
    """`score` as composed before it was inlined."""
    w, recency, tenure, rate, c_weight, e_weight, adjusted = score_inputs(state, today, config)
    net_e4 = w.purchase_e4 - w.return_e4
    net = money_float(net_e4)
    calibration = config.calibration
    if calibration is None:
        (r, f, m), rfm = absolute_rfm(config, recency, w.purchases, net)
    else:
        (r, f, m), rfm = calibrated_rfm(calibration, config.weights, recency, w.purchases, cents_of(net_e4))
    points = (*rfm, *adjusted)
    annual = max(0.0, net) * config.value_margin * 365 / config.window_days
    return Score(
        today,
        composite_of(points),
        r,
        f,
        m,
        recency,
        w.purchases,
        money_float(w.purchase_e4),
        money_float(w.return_e4),
        round(rate, 4) if rate else 0.0,
        w.complaints,
        c_weight,
        e_weight,
        tenure,
        round(annual, 2) if annual else 0.0,
        money_float(w.recent_e4),
        points,
        money_float(w.previous_e4),
    )


@PROPS
@given(histories(), st.integers(-30, 900), st.booleans())
def test_score_equals_its_specification(history, offset, calibrated):
    events, now = history
    config = CALIBRATED if calibrated else CONFIG
    assert (config.calibration is not None) == calibrated
    state = fold(NEW_STATE, events, now, config)[0]
    today = now // MS_PER_DAY + offset
    got, want = score(state, today, config), _reference_score(state, today, config)
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]


def _reference_rank(name: str, config: ScoringConfig) -> int:
    names = config.tier_names
    return names.index(name) if name in names else len(names)


def _reference_assign(score_: float, current: str | None, since: int | None, today: int, c: ScoringConfig) -> str:
    """`assign_tier` as written over the tier list, before the ladder memo."""
    candidate = next((t.name for t in c.tiers if score_ >= t.min_score), c.tiers[-1].name)
    if current is None or current not in c.tier_names:
        return candidate
    if _reference_rank(candidate, c) <= _reference_rank(current, c):
        return candidate
    if since is not None and today - since < c.min_dwell_days:
        return current
    for tier in c.tiers[_reference_rank(current, c) :]:
        if score_ >= tier.min_score - c.hysteresis_margin:
            return tier.name
    return c.tiers[-1].name


_LADDERS = [
    CONFIG,
    CONFIG.model_copy(update={"min_dwell_days": 30, "hysteresis_margin": 7.5}),
    parse_config(
        {
            "tiers": [
                {"name": "gold", "min_score": 70},
                {"name": "silver", "min_score": 35.5},
                {"name": "bronze", "min_score": 0},
            ],
            "hysteresis_margin": 4,
        }
    ),
]


@PROPS
@given(
    st.sampled_from(range(len(_LADDERS))),
    st.floats(0, 100),
    st.sampled_from([None, "AAA", "A", "B", "C", "gold", "silver", "bronze", "unknown"]),
    st.one_of(st.none(), st.integers(0, 100)),
    st.integers(0, 100),
)
def test_tier_ladder_equals_the_tier_list(which, score_, current, since, today):
    config = _LADDERS[which]
    assert assign_tier(score_, current, since, today, config) == _reference_assign(
        score_, current, since, today, config
    )
    assert raw_tier(score_, config) == _reference_assign(score_, None, None, today, config)
    if current is not None:
        assert tier_rank(current, config) == _reference_rank(current, config)
