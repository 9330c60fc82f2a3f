"""The adversarial review's inputs (issue "Reliability and security"), each sent through the worker's Handler
as raw bytes on its topic: what happens now is measured here and written to docs/attacks.md, which this test
checks (regenerate it with `PYTHONPATH=. python -m tests.worker.test_attacks`). "Before" is what the review
found; "now" is what this run measured. Every attack must end in a clean dead letter or a harmless,
documented outcome: never an internal error, never a silent drop."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.outputs import DeadLetter
from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.settings import TopicNames
from streams.worker.handler import Handler, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore

TOPICS = TopicNames()
DOC = Path(__file__).resolve().parents[2] / "docs" / "attacks.md"
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)
WALL_MS = to_ms(NOW)


def purchase(event_id: str = "a-1", customer: str = "C1", when: str | None = None, **fields: object) -> bytes:
    doc: dict[str, object] = {"type": "purchase", "event_id": event_id, "customer_id": customer,
                              "occurred_at": when or (NOW - timedelta(days=3)).isoformat(), "amount": "12.00",
                              "currency": "USD", "order_id": "o-1"}
    doc.update(fields)
    return json.dumps(doc).encode()


@dataclass(frozen=True)
class Attack:
    name: str
    before: str  # what the review found before the fix
    payloads: Callable[[], list[bytes]]
    shown: str  # the input, briefly


def _many_one_day(n: int) -> list[bytes]:
    day = (NOW - timedelta(days=3)).replace(hour=0)
    return [purchase(f"busy-{i}", "guest", (day + timedelta(seconds=i)).isoformat()) for i in range(n)]


ATTACKS = [
    Attack("purchase dated 1969", "internal-error dead letter (varint: negative value)",
           lambda: [purchase(when="1969-07-20T20:17:00+00:00")], '`occurred_at: "1969-07-20T20:17:00+00:00"`'),
    Attack("year 1 at +14:00", "internal-error dead letter (year 0)",
           lambda: [purchase(when="0001-01-01T00:00:00+14:00")], '`occurred_at: "0001-01-01T00:00:00+14:00"`'),
    Attack("event a century in the future", "with clock: event, moved the partition's clock: its customers "
           "reviewed as of 2125", lambda: [purchase(when="2125-01-01T00:00:00+00:00")], '`occurred_at: 2125-01-01`'),
    Attack("amount with spaces", "accepted silently", lambda: [purchase(amount=" 12 ")], '`amount: " 12 "`'),
    Attack("amount in Arabic-Indic digits", "accepted silently as 12", lambda: [purchase(amount="\u0661\u0662")],
           '`amount: "١٢"`'),
    Attack("amount in exponent notation", "accepted silently as 100,000,000", lambda: [purchase(amount="1E+8")],
           '`amount: "1E+8"`'),
    Attack("duplicate JSON keys", "the last wins: scored 1,000,000,000",
           lambda: [purchase()[:-1] + b', "amount": "1000000000"}'], '`"amount":"12.00", ..., "amount":"1000000000"`'),
    Attack("complaint severity true", "accepted as severity 1",
           lambda: [json.dumps({"type": "complaint", "event_id": "k-1", "customer_id": "C1",
                                "occurred_at": (NOW - timedelta(days=1)).isoformat(), "severity": True,
                                "category": "delivery"}).encode()], "`severity: true`"),
    Attack("customer id of spaces", "accepted as a customer", lambda: [purchase(customer="   ")],
           '`customer_id: "   "`'),
    Attack("customer id with U+2028", "accepted as a customer", lambda: [purchase(customer="C\u20281")],
           '`customer_id: "C\\u20281"`'),
    Attack("event id reused with other content", "the second dropped silently as a duplicate",
           lambda: [purchase(), purchase(amount="999.00")], "same `event_id`, amount 12.00 then 999.00"),
    Attack("an event older than the dedupe horizon", "applied; a redelivery of it later counted twice",
           lambda: [purchase(when="2020-01-01T00:00:00+00:00")], '`occurred_at: 2020-01-01` (horizon 1095 days)'),
    Attack("20,000 purchases of one customer id on one day", "17 s (quadratic fold); near 124k ids the state "
           "passed the changelog's 1 MB record limit and crash-looped every worker", lambda: _many_one_day(20_000),
           '`customer_id: "guest"` x 20,000'),
]


@functools.cache
def outcome(attack: Attack) -> tuple[str, bool]:
    """What the handler does with the attack's payloads now (in words), and whether that is clean."""
    handler = Handler(ScoringConfig(), TOPICS, 1, StateCache(DictStore()))
    payloads = attack.payloads()
    records = [Record(TOPICS.events, 0, offset, b"k", value) for offset, value in enumerate(payloads)]
    effects = handler.on_batch((TOPICS.events, 0), records, WALL_MS)
    letters = [DeadLetter.model_validate_json(out.value) for out in effects.outputs if out.topic == TOPICS.dlq]
    clean = all(letter.error_type != "internal" for letter in letters)
    counters = handler.counters
    clean = clean and counters.scored + counters.dead_lettered + counters.duplicates == len(payloads)  # none lost
    words = []
    if counters.scored:
        words.append(f"{counters.scored:,} scored")
    if counters.duplicates:
        words.append(f"{counters.duplicates:,} duplicate")
    for letter in letters[:1]:
        words.append(f"dead letter `{letter.error_type}`: {letter.reason}")
    if len(letters) > 1:
        words.append(f"({len(letters):,} dead letters)")
    flush = handler.take_flush()
    if len(payloads) > 1000:
        sizes = [len(value) for _, _, value in flush.states if value is not None]
        words.append(f"state {max(sizes):,} bytes (bounded by scoring.max_state_bytes "
                     f"{ScoringConfig().max_state_bytes:,})")
        clean = clean and max(sizes) <= ScoringConfig().max_state_bytes
    return "; ".join(words).replace("|", "\\|").replace("\n", " "), clean


HEADER = """# Attacks: what tierstream does with hostile input

Each row is sent as raw bytes on the mixed events topic through the worker's Handler (no Faust) by
`tests/worker/test_attacks.py`, which checks this file (regenerate it with
`PYTHONPATH=. python -m tests.worker.test_attacks`). "Before" is what the adversarial review found;
"now" is what the test measured. The wall clock is {now}.

Attacks on the running worker are proven by integration tests instead: 50,000 events of one customer id
through a real worker (`tests/worker/test_stream_busy_customer.py`: the worker keeps scoring everyone);
every registered web route answers 401 without the token, except `/health` and the static dashboard files
(`tests/worker/test_security.py`); an event dated far ahead cannot move the event clock
(`tests/worker/test_stream_time.py`).

| attack | input | before | now |
|---|---|---|---|
"""


def render() -> str:
    rows = []
    for attack in ATTACKS:
        words, _ = outcome(attack)
        rows.append(f"| {attack.name} | {attack.shown} | {attack.before} | {words} |")
    return HEADER.format(now=NOW.isoformat()) + "\n".join(rows) + "\n"


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_every_attack_ends_clean(attack: Attack) -> None:
    words, clean = outcome(attack)
    assert clean, words


def test_the_attack_table_is_what_the_code_does() -> None:
    assert DOC.read_text() == render(), "docs/attacks.md is stale: PYTHONPATH=. python -m tests.worker.test_attacks"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
