"""What the worker does with records, without Faust: decode, route, step, and say what to send.

The agent (`streams.worker.app`) hands each fetched batch of one input partition here and carries
out the `Effects` that come back; a flush takes what is due for the table, the score topic and
Redis. Everything here is deterministic given the records, the stored states and `now`:

    record bytes -> decode (schemas) -> CoreEvent -> scoring.step -> decisions -> output messages

- An event that arrives on another partition than its customer's canonical one (murmur2 of the
  id) is forwarded once to that partition of the mixed events topic.
- Anything unscorable becomes a DeadLetter with the reason (decode, schema, rejected, internal).
- A forgotten customer (retention, an erasure request: `scoring.retention`) has its CustomerForgotten sent
  at once; the flush then deletes its state (a changelog tombstone), its Redis keys, and sends a tombstone
  to the score topic; its deadline is cleared. Until the inputs its state had applied are committed, an
  input read again among them is a duplicate (`streams.worker.remnants`), not a new customer's first.
- Tier changes, actions and alerts are sent at once and never coalesced. A customer's score
  snapshot and Redis profile are "latest wins": one per customer per flush (its latest step's).
- Clock `event`: events wait in `EventOrder` and are stepped in event-time order (see
  `streams.worker.clock`); clock `wall`: as they come, as of now.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from schemas.inputs import INPUT_MODELS, DuplicateKeyError, load_json, parse_input
from schemas.outputs import DeadLetter
from scoring.codec import encode_state
from scoring.config import ScoringConfig
from scoring.decisions import ActionRequest, Alert, Decision, Forgotten, OutcomeObserved, ScoreChanged, TierChange
from scoring.events import MS_PER_DAY, CoreEvent, from_ms
from scoring.ids import output_id
from scoring.retention import is_reread, remnant
from scoring.state import NEW_STATE, CustomerState
from scoring.step import StepResult, due_day, due_reviews, step, value_of
from scoring.uplift import Arm, observation_of
from streams.convert import InputMessage, OutputContext, decision_json, to_core
from streams.partitioning import canonical_partition
from streams.profile import CustomerProfile, profile_of, stored_profile
from streams.settings import TopicNames
from streams.worker.clock import EventOrder, Held
from streams.worker.remnants import Remnants, is_remnant_key
from streams.worker.states import Dirty, Published, StateCache, StoredStateError

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel

log = logging.getLogger("tierstream.worker")
DLQ_PAYLOAD_LIMIT = 256 * 1024


class WrongTopicError(ValueError):
    """A typed event on another type's topic."""


@dataclass(frozen=True, slots=True)
class Record:
    """One input record as fetched."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: topic, key (customer id), value bytes, optional fixed partition.

    `decision` is the core's decision behind it (frequency caps, the dashboard's feed)."""

    topic: str
    key: str | None
    value: bytes | None  # None: a tombstone (the score topic's record of a forgotten customer)
    partition: int | None = None
    decision: Decision | None = None


@dataclass
class Effects:
    """What a batch (or a review sweep) asks the agent to do."""

    outputs: list[Outgoing] = field(default_factory=list)
    deadlines: list[tuple[int, str, int | None]] = field(default_factory=list)  # (partition, customer, due day)
    held: list[tuple[Hashable, int]] = field(default_factory=list)  # (input tp, offset) waiting in EventOrder
    released: list[tuple[Hashable, int]] = field(default_factory=list)  # (input tp, offset) stepped since

    def extend(self, other: Effects) -> None:
        self.outputs += other.outputs
        self.deadlines += other.deadlines
        self.held += other.held
        self.released += other.released


@dataclass(frozen=True, slots=True)
class Flush:
    """What a flush writes: snapshots first, then states (so a state is durable only after its
    outputs), and the Redis profiles (None: delete the customer's keys)."""

    snapshots: list[Outgoing]
    states: list[tuple[int, str, bytes | None]]  # (partition, customer, state bytes or None: tombstone)
    profiles: list[tuple[str, dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Pending:
    """A flush's work as taken: the remnants' records (written first) and the dirty customers."""

    remnants: list[tuple[int, str, bytes | None]]
    dirty: list[Dirty]


MAX_OUTCOME_GROUPS = 4096  # (rule, tier, group) keys the outcome tally keeps; more only after a config change


@dataclass
class Counters:
    """Running totals of what the handler saw (for /metrics, /health and the heartbeat)."""

    by_topic: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    forwarded: int = 0
    reviewed: int = 0
    tier_changes: dict[tuple[str, str], int] = field(default_factory=dict)
    actions: dict[tuple[str, str], int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    forgotten: dict[str, int] = field(default_factory=dict)  # reason -> customers forgotten
    outputs: int = 0
    capped: int = 0
    snapshots: int = 0
    states_written: int = 0
    # (rule, tier at the decision, held out) -> moments of the ContactOutcome messages published (the
    # dashboard's contact-plan panel); bounded by the config's rules x tiers x 2 (MAX_OUTCOME_GROUPS at most)
    outcomes: dict[tuple[str, str, bool], Arm] = field(default_factory=dict)

    def tally(self, customer: str, outcome: OutcomeObserved) -> None:
        o = observation_of(customer, outcome)
        key = (o.rule, o.tier, o.held_out)
        if key in self.outcomes or len(self.outcomes) < MAX_OUTCOME_GROUPS:
            self.outcomes[key] = self.outcomes.get(key, Arm()).add(o)


class Handler:
    """One worker's scoring logic around `scoring.step` (see the module docstring)."""

    def __init__(self, config: ScoringConfig, topics: TopicNames, partitions: int, cache: StateCache,
                 model: ValueModel | None = None, order: EventOrder | None = None,
                 max_future_ms: int = 86_400_000, max_jump_ms: int | None = None) -> None:
        self.config, self.topics, self.partitions = config, topics, partitions
        self.cache = cache
        self.remnants = Remnants()  # forgotten customers' id memories until their inputs are committed
        self.model = model  # swapped in place when a new model file is picked up
        self.order = order  # None: wall clock
        self.max_future_ms, self.max_jump_ms = max_future_ms, max_jump_ms
        self.input_types = {name: kind for kind, name in topics.inputs().items()}
        self.owned: set[int] = set()  # canonical partitions this worker owns (kept current by the app)
        self._topic_of = {"tier_change": topics.tier_changes, "potential_change": topics.tier_changes,
                          "forgotten": topics.tier_changes,
                          "action": topics.actions, "alert": topics.alerts, "outcome": topics.outcomes,
                          "held_out": topics.holdouts}
        self.counters = Counters()

    # -- one batch of one input partition ----------------------------------------------------------
    def on_batch(self, tp: Hashable, records: Iterable[Record], wall_ms: int) -> Effects:
        """Decode and route every record; step events now (wall clock) or hold them (event clock)."""
        effects = Effects()
        for record in records:
            try:
                self._on_record(tp, record, wall_ms, effects)
            except StoredStateError as exc:
                log.error("%s", exc)
                effects.outputs.append(self.dead_letter(record, str(exc), "internal"))
            except Exception as exc:  # a bug, or an input the core cannot take: dead-letter it, keep going
                log.exception("internal error on %s[%d]@%d", record.topic, record.partition, record.offset)
                effects.outputs.append(self.dead_letter(record, f"internal error: {type(exc).__name__}: {exc}",
                                                        "internal"))
        return effects

    def _on_record(self, tp: Hashable, record: Record, wall_ms: int, effects: Effects) -> None:
        decoded = self.decode(record)
        if isinstance(decoded, Outgoing):
            effects.outputs.append(decoded)
            return
        message = decoded
        event = to_core(message)
        home = canonical_partition(message.customer_id, self.partitions)
        if self.order is not None and record.partition == home and (source := self.order.arrived(event.event_id)):
            effects.released.append(source)  # a copy this worker forwarded is back: its source may be committed
        if reason := self.refusal(event, wall_ms):
            effects.outputs.append(self.dead_letter(record, reason, "rejected"))
            return
        if record.partition != home:  # not keyed by murmur2(customer id): one hop to its partition
            self.counters.forwarded += 1
            effects.outputs.append(Outgoing(self.topics.events, message.customer_id,
                                            message.model_dump_json().encode(), home))
            if self.order is not None:
                self.order.saw(tp, event.at_ms)
                source = (tp, record.offset) if home in self.owned else None
                self.order.forwarded(event.event_id, event.at_ms, source)
                if source is not None:
                    effects.held.append(source)  # committed once its copy is read back here
            return
        if self.order is None:
            self._step_event(message.customer_id, home, event, wall_ms, record, effects)
            return
        self.order.saw(tp, event.at_ms)
        self.order.hold(home, event.at_ms, event.event_id, (message.customer_id, event, record), tp, record.offset)
        effects.held.append((tp, record.offset))

    def refusal(self, event: CoreEvent, wall_ms: int) -> str:
        """Why the shell refuses an event before it can move any clock ("" when it is acceptable)."""
        if event.at_ms > wall_ms + self.max_future_ms:
            return f"occurred_at is more than {self.max_future_ms / 1000:g}s after the wall clock"
        if self.order is not None and self.max_jump_ms is not None:
            latest = self.order.latest_seen()
            if latest is not None and event.at_ms > latest + self.max_jump_ms:
                days = self.max_jump_ms / 86_400_000
                return f"occurred_at is more than {days:g} days after the latest event time seen (event clock)"
        return ""

    def release(self, inputs: Iterable[Hashable], quiet: set[Hashable]) -> Effects:
        """Event clock: step the held events the safe watermark lets through, in event-time order."""
        effects = Effects()
        if self.order is None:
            return effects
        for held in self.order.release(self.order.safe_watermark(inputs, quiet)):
            self._step_held(held, effects)
        return effects

    def _step_held(self, held: Held, effects: Effects) -> None:
        customer, event, record = held.item
        try:
            self._step_event(customer, canonical_partition(customer, self.partitions), event, event.at_ms, record,
                             effects)
        except Exception as exc:
            log.exception("internal error on %s[%d]@%d", record.topic, record.partition, record.offset)
            effects.outputs.append(self.dead_letter(record, f"internal error: {type(exc).__name__}: {exc}",
                                                    "internal"))
        effects.released.append((held.tp, held.offset))

    # -- decoding ----------------------------------------------------------------------------------------
    def decode(self, record: Record) -> InputMessage | Outgoing:
        """The input message, or the Outgoing that dead-letters it."""
        self.counters.by_topic[record.topic] = self.counters.by_topic.get(record.topic, 0) + 1
        try:
            return self._validate(record)
        except ValidationError as exc:  # on the mixed topic, JSON that does not parse is a ValidationError too
            if exc.errors()[0]["type"] == "json_invalid":
                return self.dead_letter(record, f"not valid JSON: {_validation_reason(exc)[:200]}", "decode")
            return self.dead_letter(record, _validation_reason(exc), "schema")
        except (WrongTopicError, DuplicateKeyError) as exc:  # valid JSON, but not a message: not a decode error
            return self.dead_letter(record, str(exc), "schema")
        except (ValueError, RecursionError) as exc:  # includes invalid UTF-8 and JSON errors
            return self.dead_letter(record, f"not valid JSON: {str(exc)[:200]}", "decode")

    def _validate(self, record: Record) -> InputMessage:
        kind = self.input_types.get(record.topic)
        if kind is None:  # the mixed events topic: any typed event
            return parse_input(record.value)
        doc = load_json(record.value)
        if isinstance(doc, dict) and doc.get("type", kind) != kind:
            raise WrongTopicError(f"type {doc.get('type')!r} does not belong on topic {record.topic}")
        message: InputMessage = INPUT_MODELS[kind].model_validate(doc)  # type: ignore[assignment]
        return message

    def dead_letter(self, record: Record, reason: str, error_type: str) -> Outgoing:
        """A DeadLetter for the DLQ topic, holding the original bytes (first 256 KiB)."""
        self.counters.dead_lettered += 1
        head = record.value[:DLQ_PAYLOAD_LIMIT]
        letter = DeadLetter(
            id=output_id(record.topic, str(record.partition), "dead_letter", record.offset),
            source_topic=record.topic, partition=record.partition, offset=record.offset,
            key_b64=None if record.key is None else base64.b64encode(record.key).decode(),
            payload_b64=base64.b64encode(head).decode(), payload_size=len(record.value),
            payload_sha256=hashlib.sha256(record.value).hexdigest(), truncated=len(head) < len(record.value),
            reason=reason[:1000], error_type=error_type, emitted_at=datetime.now(UTC),
            config_version=self.config.version,
        )
        key = None if record.key is None else record.key.decode("utf-8", "replace")[:200]
        return Outgoing(self.topics.dlq, key, letter.model_dump_json().encode())

    # -- stepping --------------------------------------------------------------------------------------
    def _step_event(self, customer: str, partition: int, event: CoreEvent, now_ms: int, record: Record,
                    effects: Effects) -> None:
        if (left := self.remnants.get(customer)) is not None and is_reread(left, event):
            self.counters.duplicates += 1  # applied before the customer was forgotten, read again
            return
        state = self.cache.state_or_new(customer)
        result = step(state, event, now_ms, customer, self.config, model=self.model)
        if result.outcome == "rejected":
            effects.outputs.append(self.dead_letter(record, result.reason, "rejected"))
            return
        if result.outcome == "duplicate":  # its outputs went out before its state was written
            self.counters.duplicates += 1
            if state is not NEW_STATE:
                self.cache.touch(customer, partition, state)
            return
        self.counters.scored += 1
        self._apply(customer, partition, state, result, now_ms, effects)

    def review(self, partition: int, customers: Iterable[str], now_ms: int) -> Effects:
        """Re-score customers on time alone (they were due); unknown ones are skipped."""
        effects = Effects()
        if partition not in self.owned:  # moved away by a rebalance: its new owner reviews it
            return effects
        for customer in customers:
            try:
                state = self.cache.get(customer)
            except StoredStateError as exc:
                log.error("%s; not reviewed", exc)
                continue
            if state is None:
                continue
            if self.order is None:  # wall clock: as of now
                results = [step(state, None, now_ms, customer, self.config, model=self.model)]
            else:  # event clock: each due day as of its own end, as replay does (whenever the sweep runs)
                results = due_reviews(state, now_ms // MS_PER_DAY, customer, self.config, model=self.model)
                if not results:  # not due (any more): keep its deadline
                    effects.deadlines.append((partition, customer, due_day(state, self.config)))
            for result in results:
                self._reviewed(customer, partition, state, result, now_ms if self.order is None else
                               result.clock_ms, effects)
                if result.state is None:
                    break
                state = result.state
        return effects

    def _reviewed(self, customer: str, partition: int, before: CustomerState, result: StepResult, now_ms: int,
                  effects: Effects) -> None:
        self.counters.reviewed += 1
        if not result.decisions and result.state is not None and result.state.figures == before.figures:
            # Nothing to publish and no day left the window: keep it in memory, write nothing; should the
            # worker restart first, the stored review day re-runs this no-op.
            self.cache.replace_clean(customer, partition, result.state)
            effects.deadlines.append((partition, customer, result.state.review_day))
            return
        self._apply(customer, partition, before, result, now_ms, effects)

    def _apply(self, customer: str, partition: int, before: CustomerState, result: StepResult, now_ms: int,
               effects: Effects) -> None:
        model = self.model
        config = self.config
        ctx = OutputContext(customer, config.version, from_ms(now_ms), model.version if model else None,
                            config.calibration.version if config.calibration else None)
        published = None
        for decision in result.decisions:
            if isinstance(decision, ScoreChanged):
                if result.evaluation is not None and result.state is not None:
                    published = Published(decision, result.state, result.evaluation)
                continue
            value = decision_json(decision, ctx)
            if value is None:
                continue
            self.counters.outputs += 1
            self._count(decision)
            if isinstance(decision, OutcomeObserved) and not result.resent:  # a resend was counted already
                self.counters.tally(customer, decision)
            effects.outputs.append(Outgoing(self._topic_of[route(decision)], customer, value, decision=decision))
        if (not result.resent and (before.seen or before.filters)
                and (result.state is None or any(isinstance(d, Forgotten) for d in result.decisions))):
            self.remnants.add(customer, partition, remnant(before))  # (or forgotten, then a new customer's first)
        self.cache.put(customer, partition, result.state, published)
        effects.deadlines.append((partition, customer, None if result.state is None else result.state.review_day))

    def capped(self, out: Outgoing, why: str) -> Outgoing:
        """The action message re-issued as skipped by a frequency cap (same id)."""
        action = out.decision
        assert isinstance(action, ActionRequest)
        assert out.value is not None
        doc = json.loads(out.value)
        doc.update(roi_decision="skipped", reason=f"frequency cap: {why}; {action.reason}")
        self.counters.capped += 1
        return Outgoing(out.topic, out.key, json.dumps(doc, separators=(",", ":")).encode(), out.partition)

    def _count(self, d: Decision) -> None:
        c = self.counters
        if isinstance(d, TierChange):
            key = (d.from_tier or "none", d.to_tier)
            c.tier_changes[key] = c.tier_changes.get(key, 0) + 1
        elif isinstance(d, ActionRequest):
            akey = (d.action_type, d.roi_decision)
            c.actions[akey] = c.actions.get(akey, 0) + 1
        elif isinstance(d, Alert):
            c.alerts[d.alert_kind] = c.alerts.get(d.alert_kind, 0) + 1
        elif isinstance(d, Forgotten):
            c.forgotten[d.reason] = c.forgotten.get(d.reason, 0) + 1

    # -- flushing -----------------------------------------------------------------------------------------
    def take_flush(self, marks: Mapping[Hashable, tuple[int | None, frozenset[int]]] | None = None) -> Flush:
        """Every dirty customer's snapshot, state bytes and Redis profile (latest per customer); before the
        states, the remnants of forgotten customers (`marks`: the input offsets handled so far, by the offset
        book's `mark_written`). All at once: the caller writes the states before its next step."""
        pending = self.take_pending(marks)
        flush = Flush([], list(pending.remnants), [])
        self.render(pending.dirty, flush)
        self.cache.stored(dirty.customer for dirty in pending.dirty)
        return flush

    def take_pending(self, marks: Mapping[Hashable, tuple[int | None, frozenset[int]]] | None = None) -> Pending:
        """What a flush writes, taken at once: the remnants' records and the dirty customers, to `render`
        (outside the worker's lock, in chunks: the values are immutable) and then mark `cache.stored`."""
        return Pending(self.remnants.take_writes(marks or {}), self.cache.take_dirty())

    def render(self, dirties: Sequence[Dirty], into: Flush) -> None:
        """Append `dirties`' snapshots, state bytes and Redis profiles to `into`."""
        snapshots, states, profiles = into.snapshots, into.states, into.profiles
        sent = 0
        for dirty in dirties:
            if dirty.state is None:  # forgotten: tombstones, and no Redis keys left
                states.append((dirty.partition, dirty.customer, None))
                profiles.append((dirty.customer, None))
                snapshots.append(Outgoing(self.topics.scores, dirty.customer, None))
                continue
            states.append((dirty.partition, dirty.customer, encode_state(dirty.state)))
            if dirty.published is not None:
                profile, message = self._snapshot(dirty.customer, dirty.published)
                snapshots.append(Outgoing(self.topics.scores, dirty.customer, message))
                profiles.append((dirty.customer, profile.redis_fields()))
                sent += 1
        self.counters.snapshots += sent
        self.counters.states_written += len(dirties)

    def _snapshot(self, customer: str, published: Published) -> tuple[CustomerProfile, bytes]:
        state, ev, decision = published.state, published.evaluation, published.decision
        model = self.model
        value = value_of(state, ev.score.day, self.config, model)
        profile = profile_of(customer, state, ev, self.config, model.version if model else None, value,
                             model.affinity if model else None)
        return profile, profile.message_json(decision.id, decision.cause, decision.at_ms, from_ms(state.clock_ms))

    # -- reading ---------------------------------------------------------------------------------------------
    def profile(self, customer: str, today: int | None = None) -> CustomerProfile | None:
        """A customer's profile as of `today` (default: its last evaluation); None when unknown."""
        if is_remnant_key(customer):
            return None
        state = self.cache.get(customer)
        return None if state is None else stored_profile(customer, state, self.config, self.model, today)


def route(decision: Decision) -> str:
    """The topic key of a decision: a held-out action has its own topic, never the action topic."""
    if isinstance(decision, ActionRequest) and decision.roi_decision == "held_out":
        return "held_out"
    return decision.kind


def _validation_reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}" if where else f"{err['msg']}{more}"
