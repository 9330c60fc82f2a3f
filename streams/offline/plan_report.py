"""`tierstream plan-report`: what each contact-plan rule does, from ContactOutcome messages.

Reads JSONL (replay --exact --decisions-out, or a dump of the `contact-plan-outcomes` topic); lines of
other types are skipped. Outcomes are deduplicated on their `id` (the topic is at-least-once).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from pydantic import ValidationError

from schemas.outputs import ContactOutcome
from scoring.uplift import Estimate, Observation, RuleEffect

COLUMNS = ("rule", "tier", "treated", "held_out", "purchase_rate_t", "purchase_rate_h", "purchase_uplift",
           "purchase_low", "purchase_high", "revenue_t", "revenue_h", "revenue_uplift", "revenue_low",
           "revenue_high", "cost", "net_value", "net_low", "net_high", "tier_up_t", "tier_up_h", "churn_t",
           "churn_h", "flag")


class ReportInputError(ValueError):
    """A line that is not JSON, or a ContactOutcome that does not match its schema (names the line)."""


def observation(outcome: ContactOutcome) -> Observation:
    held = outcome.group == "held_out"
    return Observation(outcome.customer_id, outcome.rule, outcome.tier, held, outcome.purchases > 0,
                       outcome.revenue - outcome.returns, outcome.tier_move == "up", outcome.churned, outcome.cost)


def read_outcomes(lines: Iterable[str], name: str = "-") -> Iterator[Observation]:
    """Every distinct ContactOutcome of JSONL `lines`; raises ReportInputError on a bad line."""
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc: Any = json.loads(line)
        except ValueError:
            raise ReportInputError(f"{name}: line {number}: not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("type") != "ContactOutcome" or doc.get("id") in seen:
            continue
        try:
            outcome = ContactOutcome.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ReportInputError(f"{name}: line {number}: ContactOutcome {where}: {first['msg']}") from None
        seen.add(outcome.id)
        yield observation(outcome)


def _ci(e: Estimate) -> tuple[object, object]:
    return ("" if e.low is None else round(e.low, 4)), ("" if e.high is None else round(e.high, 4))


def row(r: RuleEffect) -> dict[str, object]:
    """One report row (rates 0-1, money in base currency)."""
    p, v, n = r.purchase, r.revenue, r.net_value
    return dict(zip(COLUMNS, (
        r.rule, r.tier, r.treated, r.held_out, round(p.treated, 4), round(p.held_out, 4), round(p.uplift, 4),
        *_ci(p), round(v.treated, 2), round(v.held_out, 2), round(v.uplift, 2), *_ci(v), round(r.cost, 2),
        round(n.uplift, 2), *_ci(n), round(r.tier_up.treated, 4), round(r.tier_up.held_out, 4),
        round(r.churn.treated, 4), round(r.churn.held_out, 4), r.flagged), strict=True))


def _interval(e: Estimate, scale: float, digits: int) -> str:
    if e.low is None or e.high is None:
        return "n/a"
    return f"[{e.low * scale:+.{digits}f}, {e.high * scale:+.{digits}f}]"


def write_text(out: IO[str], effects: list[RuleEffect]) -> None:
    """A table for people: rates in points (percent), money in base currency."""
    head = (f"{'rule':<24} {'tier':<5} {'treated':>7} {'held':>6} {'buy% t':>7} {'buy% h':>7} {'uplift pts':>10} "
            f"{'95% interval':>18} {'rev/cust':>9} {'cost':>6} {'net':>8} {'95% interval':>20} {'up% t/h':>11} "
            f"{'churn% t/h':>11}  flag")
    out.write(head + "\n")
    for r in effects:
        p, n = r.purchase, r.net_value
        out.write(
            f"{r.rule[:24]:<24} {r.tier[:5]:<5} {r.treated:>7} {r.held_out:>6} {p.treated * 100:>7.1f} "
            f"{p.held_out * 100:>7.1f} {p.uplift * 100:>+10.1f} {_interval(p, 100, 1):>18} "
            f"{r.revenue.uplift:>+9.2f} {r.cost:>6.2f} {n.uplift:>+8.2f} {_interval(n, 1, 2):>20} "
            f"{r.tier_up.treated * 100:>5.1f}/{r.tier_up.held_out * 100:<5.1f} "
            f"{r.churn.treated * 100:>5.1f}/{r.churn.held_out * 100:<5.1f}  {r.flagged}\n"
        )
