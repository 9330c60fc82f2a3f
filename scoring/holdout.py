"""Control groups of the contact plan: who is held out of a rule, decided by a stable hash.

A customer is held out of a rule when the hash of (salt, customer, rule) falls below the rule's
`holdout_share`, or the hash of (salt, customer) below `global_holdout_share` (held out of every rule).
The hash is blake2b, so the stream, `replay --exact` and every worker agree, whatever the process,
and a customer stays in the same group of a rule for as long as the salt is unchanged. Groups of
different rules are drawn independently (the rule's name is in the hash).
"""

from __future__ import annotations

from scoring.config import ContactRule, ScoringConfig
from scoring.ids import hash64

_SCALE = float(2**64)
GLOBAL = "\x00global"  # the rule slot of the global holdout's hash (no rule can have this name in YAML)


def position(salt: str, customer_id: str, rule: str) -> float:
    """The customer's place in [0, 1) for a rule's draw (uniform over customers)."""
    return hash64(f"{salt}\x1f{customer_id}\x1f{rule}") / _SCALE


def is_held_out(customer_id: str, rule: ContactRule, config: ScoringConfig) -> bool:
    """True when the customer is in the rule's control group (or in the global one)."""
    salt = config.holdout_salt
    if rule.holdout_share > 0 and position(salt, customer_id, rule.name) < rule.holdout_share:
        return True
    share = config.global_holdout_share
    return share > 0 and position(salt, customer_id, GLOBAL) < share


def is_measured(rule: ContactRule, config: ScoringConfig) -> bool:
    """True when the rule has a control group, so its decisions' outcomes are tracked."""
    return rule.holdout_share > 0 or config.global_holdout_share > 0
