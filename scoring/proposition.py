"""Next best proposition: the first `propositions.rules` entry whose filters all match, with its reason."""

from __future__ import annotations

from typing import NamedTuple

from scoring.affinity import Affinity, next_category
from scoring.config import ScoringConfig
from scoring.offering_config import PropositionRule
from scoring.state import CustomerState


class Proposition(NamedTuple):
    """What to propose (`name`), the rule that chose it ("" for the fallback) and why, in words; `category`:
    the category to offer ("" when the proposition names none, see `with_category`)."""

    name: str
    rule: str
    reason: str
    category: str = ""


class Situation(NamedTuple):
    """What proposition rules look at."""

    tier: str
    cell: str
    segment: str
    satisfaction: str
    at_risk: bool


def is_match(rule: PropositionRule, s: Situation) -> bool:
    return (
        (not rule.tiers or s.tier in rule.tiers)
        and (not rule.cells or s.cell in rule.cells)
        and (not rule.segments or s.segment in rule.segments)
        and (not rule.satisfaction or s.satisfaction in rule.satisfaction)
        and (rule.at_risk is None or rule.at_risk == s.at_risk)
    )


# (id of the rules, situation) -> (the rules, proposition): situations are few (tiers x cells x segments x
# grades x at-risk); holding the rules keeps their id from being reused
_MEMO: dict[tuple[int, Situation], tuple[object, Proposition]] = {}
_MEMO_KEPT = 4096


def propose(s: Situation, config: ScoringConfig) -> Proposition:
    """The proposition for a customer in situation `s`."""
    rules = config.propositions
    key = (id(rules), s)
    found = _MEMO.get(key)
    if found is not None and found[0] is rules:
        return found[1]
    if len(_MEMO) >= _MEMO_KEPT:
        _MEMO.clear()
    proposal = _propose(s, config)
    _MEMO[key] = (rules, proposal)
    return proposal


def _propose(s: Situation, config: ScoringConfig) -> Proposition:
    for rule in config.propositions.rules:
        if is_match(rule, s):
            return Proposition(rule.proposition, rule.name, _reason(rule, s))
    return Proposition(config.propositions.fallback, "", "no proposition rule matches")


def _reason(rule: PropositionRule, s: Situation) -> str:
    matched = [
        f"{label} {value}"
        for label, value, used in (
            ("tier", s.tier, rule.tiers),
            ("cell", s.cell, rule.cells),
            ("segment", s.segment, rule.segments),
            ("satisfaction", s.satisfaction, rule.satisfaction),
            ("at risk" if s.at_risk else "not at risk", "", rule.at_risk is not None),
        )
        if used
    ]
    why = ", ".join(m.strip() for m in matched)
    return f"{rule.reason} ({why})" if rule.reason and why else rule.reason or why


def with_category(
    proposal: Proposition, state: CustomerState, affinity: Affinity | None, config: ScoringConfig
) -> Proposition:
    """`proposal` naming the category the customer is most likely to buy next that they have not bought, when
    it is one of `affinity.propositions` and the affinity relates one of their categories to another;
    else `proposal` unchanged (the rule-based proposition)."""
    if affinity is None or not state.categories or proposal.name not in config.affinity.propositions:
        return proposal
    suggestion = next_category(_bought(state), affinity)
    if suggestion is None or suggestion.category in config.affinity.excluded:
        return proposal
    reason = f"{proposal.reason}; {suggestion.reason()}" if proposal.reason else suggestion.reason()
    return proposal._replace(reason=reason, category=suggestion.category)


def _bought(state: CustomerState) -> frozenset[str]:
    return frozenset(name for name, _ in state.categories)
