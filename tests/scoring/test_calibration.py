"""The calibration artefact: positions, quantile tables, thresholds, the file format and its loader's errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scoring import ConfigError, parse_config
from scoring.calibrate import ScoreHistogram, quantile_table, tier_thresholds
from scoring.calibration import (
    Calibration,
    calibration_from_json,
    content_version,
    make_calibration,
    parse_calibration,
    position,
    quintile_rank,
)
from scoring.errors import CalibrationError

SHARES = {"AAA": 0.05, "A": 0.15, "B": 0.3, "C": 0.5}


def sample(**overrides: Any) -> Calibration:
    fields: dict[str, Any] = {
        "as_of_day": 15_317, "config_version": "rules-1", "window_days": 365, "customers": 120, "active": 100,
        "shares": SHARES, "thresholds": {"AAA": 91.5, "A": 75.25, "B": 50.0, "C": 0.0},
        "tables": ((0, 3, 20, 90, 364), (1, 1, 2, 5, 40), (-500, 1_000, 5_000, 20_000, 900_000)),
    }
    return make_calibration(**{**fields, **overrides})


# --- position and ranks ----------------------------------------------------------------------------

TABLE = (1, 1, 1, 2, 4, 10)  # 5 steps: 0, 0.2, ..., 1


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0.0),            # below every point
    (1, 0.2),            # a run of points 0-2: its middle, 1/5
    (1.5, 0.5),          # halfway between point 2 (value 1) and point 3 (value 2)
    (2, 0.6),            # a point on its own
    (3, 0.7),            # halfway from 2 (0.6) to 4 (0.8)
    (4, 0.8),
    (7, 0.9),
    (10, 1.0),           # the last point
    (11, 1.0),           # above every point
])
def test_position_interpolates_and_gives_ties_the_middle_of_their_run(value: float, expected: float) -> None:
    assert position(TABLE, value) == pytest.approx(expected)


def test_position_never_decreases() -> None:
    values = [v / 4 for v in range(-4, 48)]
    positions = [position(TABLE, v) for v in values]
    assert positions == sorted(positions)
    assert position((5, 5, 5), 5) == 0.5  # a population that all has one value: the middle


@pytest.mark.parametrize(("share", "rank"), [(0, 1), (0.199, 1), (0.2, 2), (0.5, 3), (0.79, 4), (0.8, 5), (1, 5)])
def test_quintile_rank(share: float, rank: int) -> None:
    assert quintile_rank(share) == rank


# --- quantile tables -------------------------------------------------------------------------------

def test_quantile_table_holds_lower_quantiles_of_observed_values() -> None:
    counts = {10: 1, 20: 1, 30: 1, 40: 1}  # four customers
    assert quantile_table(counts, points=4) == (10, 10, 20, 30, 40)
    assert quantile_table({7: 3}, points=4) == (7, 7, 7, 7, 7)
    assert quantile_table({1: 60, 2: 30, 9: 10}, points=10) == (1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 9)


def test_quantile_table_is_that_of_the_expanded_values() -> None:
    counts = {3: 5, -2: 2, 11: 1, 4: 7}
    values = sorted(v for v, n in counts.items() for _ in range(n))
    points = 7
    expected = tuple(values[max(0, -(-k * len(values) // points) - 1)] for k in range(points + 1))
    assert quantile_table(counts, points) == expected


# --- thresholds ------------------------------------------------------------------------------------

def test_thresholds_put_the_closest_count_above_each_cumulative_share() -> None:
    # 100 customers with scores 1.00 ... 100.00: the top 5 are 96-100, the top 20 from 81, the top 50 from 51
    histogram = ScoreHistogram({s * 100: 1 for s in range(1, 101)})
    assert tier_thresholds(histogram, SHARES) == {"AAA": 96.0, "A": 81.0, "B": 51.0, "C": 0.0}


def test_thresholds_with_ties_take_the_closest_boundary() -> None:
    # 10 customers at 90, 90 at 50: AAA (5 wanted) is nearer 0 (5 away) than 10 (5 away, more): nobody
    histogram = ScoreHistogram({9000: 10, 5000: 90})
    thresholds = tier_thresholds(histogram, SHARES)
    assert thresholds["AAA"] == 90.01 and thresholds["A"] == 90.0  # A: 10 above is nearer 20 than 100 is
    assert thresholds["B"] == 90.0 and thresholds["C"] == 0.0  # B: 50 wanted, 10 (40 away) beats 100 (50 away)


def test_thresholds_never_increase_down_the_ladder() -> None:
    histogram = ScoreHistogram({10_000: 3, 7000: 1})
    values = list(tier_thresholds(histogram, SHARES).values())
    assert values == sorted(values, reverse=True) and values[-1] == 0


# --- the artefact and its file ---------------------------------------------------------------------

def test_the_version_is_the_content_hash_and_the_file_round_trips() -> None:
    cal = sample()
    assert cal.version == content_version(cal) and cal.version.startswith("cal-") and len(cal.version) == 16
    text = cal.to_json()
    assert calibration_from_json(text) == cal
    assert calibration_from_json(text).to_json() == text
    assert json.loads(text)["format"] == 1 and json.loads(text)["as_of"] == "2011-12-09"
    assert cal.as_of_day == 15_317 and cal.points == 4 and cal.tier_names == ("AAA", "A", "B", "C")
    assert sample(customers=121).version != cal.version  # any change in content changes the version
    assert sample().version == cal.version


def _doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(sample().to_json())
    for key, value in changes.items():
        if value is _DELETE:
            del doc[key]
        else:
            doc[key] = value
    return doc


_DELETE = object()


def _resealed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with the version its (changed) content would have: the error must be about the field."""
    try:
        model = Calibration.model_validate({**doc, "version": "cal-000000000000"})
    except Exception:
        return doc  # invalid content: the version check never runs
    return {**doc, "version": content_version(model)}


BAD_FILES = {
    "unknown format": (_doc(format=2), "format", "reads calibration format 1, not 2"),
    "no format": (_doc(format=_DELETE), "format", "required"),
    "not a calibration": (_doc(kind="tierstream.valuemodel/3"), "kind", ""),
    "edited by hand": ({**_doc(), "thresholds": {"AAA": 80.0, "A": 75.25, "B": 50.0, "C": 0.0}}, "version",
                       "does not match the content"),
    "malformed version": (_doc(version="v1"), "version", "pattern"),
    "thresholds up the ladder": (_doc(thresholds={"AAA": 50.0, "A": 75.0, "B": 20.0, "C": 0.0}), "thresholds",
                                 "must not increase"),
    "last threshold not 0": (_doc(thresholds={"AAA": 90.0, "A": 75.0, "B": 50.0, "C": 10.0}), "thresholds",
                             "last tier"),
    "threshold above 100": (_doc(thresholds={"AAA": 190.0, "A": 75.0, "B": 50.0, "C": 0.0}), "thresholds",
                            "[0, 100]"),
    "threshold not a number": (_doc(thresholds={"AAA": "high", "A": 75.0, "B": 50.0, "C": 0.0}),
                               "thresholds.AAA", ""),
    "shares not adding up": (_doc(shares={"AAA": 0.1, "A": 0.15, "B": 0.3, "C": 0.5}), "shares", "add up to 1"),
    "share out of range": (_doc(shares={"AAA": -0.05, "A": 0.2, "B": 0.35, "C": 0.5}), "shares", "> 0"),
    "other tiers in shares": (_doc(shares={"gold": 0.5, "rest": 0.5}), "shares", "same tiers"),
    "table not ascending": (_doc(frequency=[1, 3, 2, 5, 40]), "frequency", "ascending"),
    "table too short": (_doc(recency_days=[4]), "recency_days", "at least 2"),
    "tables of other lengths": (_doc(monetary_cents=[1, 2, 3]), "frequency", "as many points"),
    "negative recency": (_doc(recency_days=[-3, 3, 20, 90, 364]), "recency_days", "negative"),
    "more active than customers": (_doc(active=500), "active", "cannot be more"),
    "no customers": (_doc(customers=0), "customers", ""),
    "bad day": (_doc(as_of="2011-13-45"), "as_of", ""),
    "unknown field": ({**_doc(), "points": 100}, "points", "not permitted"),
    "table of words": (_doc(recency_days="0 3 20"), "recency_days", ""),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_is_a_one_line_error_naming_the_field(case: str) -> None:
    doc, field, words = BAD_FILES[case]
    data = doc if case in ("edited by hand", "malformed version") else _resealed(doc)
    with pytest.raises(CalibrationError) as err:
        parse_calibration(data)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"calibration: {field}: "), message
    assert words in message, message
    with pytest.raises(CalibrationError, match=f"^calibration: {field}: "):  # the same from the file's text
        calibration_from_json(json.dumps(data))


@pytest.mark.parametrize(("text", "message"), [
    ("{", "calibration: not valid JSON (line 1"),
    ("[1, 2]", "calibration: the top level must be a JSON object"),
    ("", "calibration: not valid JSON"),
])
def test_text_that_is_not_a_calibration_is_one_line(text: str, message: str) -> None:
    with pytest.raises(CalibrationError) as err:
        calibration_from_json(text)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# --- the config: applying a calibration ------------------------------------------------------------

def test_calibrated_config_takes_the_thresholds_and_keeps_everything_else() -> None:
    config = parse_config({})
    cal = sample()
    effective = config.calibrated(cal)
    assert effective.calibration == cal and config.calibration is None
    assert [t.min_score for t in effective.tiers] == [91.5, 75.25, 50.0, 0.0]
    assert effective.model_dump(exclude={"tiers"}) == config.model_dump(exclude={"tiers"})
    assert effective.model_copy(update={"dedupe_days": 5000}).calibration == cal  # copies keep it


def test_absolute_tiering_ignores_a_calibration() -> None:
    config = parse_config({"tiering": "absolute"})
    assert config.calibrated(sample()) is config and config.calibration is None


@pytest.mark.parametrize(("config", "field"), [
    ({"window_days": 180}, "window_days"),
    ({"tiers": [{"name": "gold", "min_score": 50}, {"name": "rest", "min_score": 0}], "contact_rules": []},
     "thresholds"),
])
def test_a_calibration_for_other_tiers_or_another_window_is_refused(config: dict[str, Any], field: str) -> None:
    with pytest.raises(CalibrationError, match=f"^calibration: {field}: "):
        parse_config(config).calibrated(sample())


# --- config fields of calibrated tiering -----------------------------------------------------------

def test_calibrated_tiering_is_the_default_with_the_documented_shares() -> None:
    config = parse_config({})
    assert config.tiering == "calibrated"
    assert config.tier_shares == {"AAA": 0.05, "A": 0.15, "B": 0.30}


def test_a_custom_ladder_gets_the_default_shares_by_position() -> None:
    config = parse_config({"tiers": [{"name": "gold", "min_score": 70}, {"name": "silver", "min_score": 40},
                                     {"name": "rest", "min_score": 0}], "contact_rules": []})
    assert config.tier_shares == {"gold": 0.05, "silver": 0.15}


@pytest.mark.parametrize(("shares", "words"), [
    ({"AAA": 0.05, "A": 0.15, "Q": 0.3}, "unknown tier 'Q'"),
    ({"AAA": 0.05, "A": 0.15}, "tier 'B' has no share"),
    ({"AAA": 0.5, "A": 0.3, "B": 0.3}, "leave some for the last tier 'C'"),
    ({"AAA": 0, "A": 0.15, "B": 0.3}, "share of AAA must be > 0 and < 1"),
    ({"AAA": 1.5, "A": 0.15, "B": 0.3}, "share of AAA"),
    ({"A": 0.15, "AAA": 0.05, "B": 0.3}, "order of `tiers`"),
    ({"AAA": 0.05, "A": 0.15, "B": 0.3, "C": 0.4}, "it takes the rest"),
])
def test_bad_tier_shares_are_one_line_naming_the_field(shares: dict[str, float], words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"tier_shares": shares})
    assert "tier_shares" in str(err.value) and words in str(err.value) and "\n" not in str(err.value)


def test_tier_shares_may_name_the_last_tier_when_they_add_up_to_one() -> None:
    config = parse_config({"tier_shares": {"AAA": 0.1, "A": 0.2, "B": 0.3, "C": 0.4}})
    assert config.tier_shares["AAA"] == 0.1


def test_absolute_tiering_needs_no_share_for_every_tier() -> None:
    ladder = [{"name": f"t{i}", "min_score": 100 - 20 * i} for i in range(6)]
    touch = {f"t{i}": {"channel": "email", "cadence_days": 30, "owner": "crm"} for i in range(6)}
    with pytest.raises(ConfigError, match="tier_shares: tier 't3' has no share"):
        parse_config({"tiers": ladder, "touch_patterns": touch, "contact_rules": []})
    assert parse_config({"tiers": ladder, "touch_patterns": touch, "contact_rules": [],
                         "tiering": "absolute"}).tier_names == tuple(f"t{i}" for i in range(6))
