"""Frequency-cap counters in Python: what the worker's cap check does to a customer's `cap:{id}:{type}` set.

A worker with `scoring.frequency_caps` checks each action it is about to send (`streams.worker.app.Tierstream
._capped`) with the cap script of `streams.serving.redis_view` (`_CAP_SCRIPT`), which records the sends it
allows. `tierstream bootstrap` sends nothing, so it plays the same checks here, in the order a worker makes
them, to leave the sets a backfill leaves (`streams.offline.bootstrap`, written by `streams.serving.bootstrap`).
`cap_check` is the script line by line (the tests hold the two equal on the real Redis): keep them together.

Times are epoch seconds as the worker passes them, the action's own time (`at_ms / 1000`: event time under
`clock: event`), never the wall clock; only the key's expiry runs on Redis' clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from scoring.config import FrequencyCap
from scoring.decisions import ActionRequest, Decision

CapSet = dict[str, float]  # the sorted set: action id -> epoch seconds it was sent
CHECKED = ("approved", "downgraded")  # the ROI verdicts of actions that would be sent (skipped and held out: not)


def checked_cap(decision: Decision | None, caps: Mapping[str, FrequencyCap]) -> FrequencyCap | None:
    """The cap a worker checks `decision` against before sending it (None: not an action it checks)."""
    if not isinstance(decision, ActionRequest) or decision.roi_decision not in CHECKED:
        return None
    return caps.get(decision.action_type)


def cap_check(sent: CapSet, action_id: str, now_s: float, cap: FrequencyCap) -> tuple[bool, str]:
    """The cap script on `sent`, in place: (allowed, why). A resend (the id recorded already) passes; else the
    sends at or before `now_s - window` leave the set, the latest left blocks within the cooldown, a full set
    blocks, and an allowed send is recorded at `now_s`. A refused one is not recorded."""
    if action_id in sent:
        return True, "resend"
    floor = now_s - cap.per_days * 86_400  # ZREMRANGEBYSCORE -inf floor: inclusive
    for gone in [i for i, at in sent.items() if at <= floor]:
        del sent[gone]
    if sent and now_s - max(sent.values()) < cap.cooldown_days * 86_400:
        return False, "cooldown"
    if len(sent) >= cap.max_count:
        return False, "cap"
    sent[action_id] = now_s
    return True, "ok"


def cap_ttl_seconds(cap: FrequencyCap) -> int:
    """The expiry the script gives a cap key at each recorded send (seconds): the longer of the window and the
    cooldown, and a minute."""
    return math.ceil(max(cap.per_days * 86_400, cap.cooldown_days * 86_400)) + 60
