"""Recalibration documents: each partition's phases as JSON text, merged anywhere, give the calibration of
the whole population; bad documents are one-line errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.calibrate import calibrate, calibration_of, customer_figures, cut_tables
from scoring.errors import CalibrationError
from scoring.recalibrate import histogram_doc, merged_histogram, merged_summary, round_of, summary_doc
from tests.scoring.test_calibrate import AS_OF, CONFIG, PROPS, has_active, populations


@PROPS
@given(populations(max_customers=30), st.integers(1, 6), st.randoms(use_true_random=False))
def test_partition_documents_merged_in_any_order_give_the_whole_populations_calibration(
        states: list, partitions: int, rng: random.Random) -> None:
    if not has_active(states):
        return
    split: dict[int, list] = {p: [] for p in range(partitions)}
    for s in states:
        split[rng.randrange(partitions)].append(customer_figures(s, AS_OF, CONFIG))
    summaries = {p: summary_doc(f) for p, f in split.items()}
    shuffled = dict(rng.sample(sorted(summaries.items()), k=partitions))  # arrival order does not matter
    summary = merged_summary(shuffled)
    tables = cut_tables(summary)
    histograms = {p: histogram_doc(f, tables, CONFIG.weights).encode() for p, f in split.items()}  # Redis: bytes
    calibration = calibration_of(summary, tables, merged_histogram(histograms), AS_OF, CONFIG)
    assert calibration == calibrate(states, AS_OF, CONFIG)
    assert calibration.version == calibrate(reversed(states), AS_OF, CONFIG).version


@pytest.mark.parametrize(("doc", "message"), [
    ("not json", "partition 3 summary: not valid JSON"),
    ("[]", "partition 3 summary: expected a JSON object"),
    ('{"customers": -1}', "partition 3 summary: customers: expected a count"),
    ('{"customers": 2, "recency": [[1, 2]], "frequency": [[1, 0]], "monetary": []}', "partition 3 frequency"),
    ('{"customers": 2, "recency": [[1.5, 2]], "frequency": [], "monetary": []}', "partition 3 recency"),
])
def test_a_bad_summary_is_a_one_line_error_naming_the_partition(doc: str, message: str) -> None:
    with pytest.raises(CalibrationError, match=message) as caught:
        merged_summary({3: doc})
    assert "\n" not in str(caught.value)


def test_a_bad_histogram_is_a_one_line_error() -> None:
    with pytest.raises(CalibrationError, match="partition 0 scores"):
        merged_histogram({0: '{"scores": {"1": 2}}'})


def test_rounds_are_intervals_counted_from_the_epoch() -> None:
    assert [round_of(t, 60) for t in (0, 59.9, 60, 3_600)] == [0, 0, 1, 60]
