"""Recalibration from a population spread over partitions: the two phases of `scoring.calibrate` as
exchangeable documents, and their deterministic merge.

Each partition's owner publishes its phase (a) summary (`summary_doc`); once every partition's is there,
anyone merges them (`merged_summary`) into the same cut tables; each owner then publishes its partition's
phase (b) histogram under those tables (`histogram_doc`); once all are there, anyone merges them
(`merged_histogram`) and `scoring.calibrate.calibration_of` gives the same artefact, with the same
content version, wherever it is computed. Documents are plain JSON-able lists; merging sorts by partition
and adds counts, so the result depends only on the set of documents. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from scoring.calibrate import CustomerFigures, CutTables, PopulationSummary, ScoreHistogram, score_histogram, summarise
from scoring.errors import CalibrationError


def round_of(now_seconds: float, interval_seconds: float) -> int:
    """The recalibration round a moment falls in: rounds are `interval_seconds` long, counted from the epoch."""
    return int(now_seconds // interval_seconds)


def _pairs(counts: Mapping[int, int]) -> list[list[int]]:
    return [[value, n] for value, n in sorted(counts.items())]


def _counts(pairs: Any, what: str) -> dict[int, int]:
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(type(x) is int for x in p) and p[1] > 0 for p in pairs
    ):
        raise CalibrationError(f"recalibration: {what}: expected a list of [value, count] integer pairs")
    return dict(pairs)


def summary_doc(figures: Iterable[CustomerFigures]) -> str:
    """Phase (a) of some customers (one partition's), as JSON text."""
    s = summarise(figures)
    return json.dumps(
        {
            "customers": s.customers,
            "recency": _pairs(s.recency),
            "frequency": _pairs(s.frequency),
            "monetary": _pairs(s.monetary),
        },
        separators=(",", ":"),
    )


def histogram_doc(figures: Iterable[CustomerFigures], tables: CutTables, weights: tuple[float, ...]) -> str:
    """Phase (b) of some customers under the merged tables, as JSON text."""
    return json.dumps({"scores": _pairs(score_histogram(figures, tables, weights).scores)}, separators=(",", ":"))


def _parsed(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise CalibrationError(f"recalibration: {what}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise CalibrationError(f"recalibration: {what}: expected a JSON object")
    return doc


def merged_summary(docs: Mapping[int, str | bytes]) -> PopulationSummary:
    """The summary of every partition's phase (a) document (partition -> text); CalibrationError when one is bad."""
    total = PopulationSummary()
    for partition in sorted(docs):
        doc = _parsed(docs[partition], f"partition {partition} summary")
        customers = doc.get("customers")
        if type(customers) is not int or customers < 0:
            raise CalibrationError(f"recalibration: partition {partition} summary: customers: expected a count")
        total = total.merge(
            PopulationSummary(
                customers,
                *(_counts(doc.get(k), f"partition {partition} {k}") for k in ("recency", "frequency", "monetary")),
            )
        )
    return total


def merged_histogram(docs: Mapping[int, str | bytes]) -> ScoreHistogram:
    """The histogram of every partition's phase (b) document; CalibrationError when one is bad."""
    total = ScoreHistogram()
    for partition in sorted(docs):
        doc = _parsed(docs[partition], f"partition {partition} histogram")
        total = total.merge(ScoreHistogram(_counts(doc.get("scores"), f"partition {partition} scores")))
    return total
