"""What the agent does with one message, without Faust: decode, route, step, emit.

The agent stays thin: it hands raw bytes here and performs the effects that
come back (table write, sends, Redis, deadline index). Everything here is
deterministic given the message, the stored state and `now`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from schemas.base import Message
from schemas.inputs import INPUT_MODELS, InputEvent
from schemas.outputs import DeadLetter
from scoring.codec import decode_state, encode_state
from scoring.config import ScoringConfig
from scoring.decisions import ActionRequest, Alert, Decision, ScoreChanged, TierChange
from scoring.errors import StateDecodeError
from scoring.events import from_ms
from scoring.ids import output_id
from scoring.state import NEW_STATE, CustomerState
from scoring.step import Evaluation, StepResult, evaluate, step, value_of
from streams.convert import (
    InputMessage,
    OutputContext,
    decision_message,
    model_fields,
    snapshot_message,
    to_core,
)
from streams.partitioning import canonical_partition
from streams.settings import TopicNames

if TYPE_CHECKING:
    from scoring.valuemodel.model import ValueModel
    from scoring.valuemodel.scalar import CustomerValue

DLQ_PAYLOAD_LIMIT = 256 * 1024
_ANY_INPUT: TypeAdapter[InputMessage] = TypeAdapter(InputEvent)


class WrongTopicError(ValueError):
    """A typed event on another type's topic."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send: topic, key (customer id), value bytes, optional fixed partition."""

    topic: str
    key: str | None
    value: bytes
    partition: int | None = None
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    customer: str
    message: InputMessage


@dataclass
class Counters:
    """Running totals of what the pipeline saw (for /metrics and the monitoring topic)."""

    by_topic: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    forwarded: int = 0
    reviewed: int = 0
    tier_changes: dict[tuple[str, str], int] = field(default_factory=dict)
    actions: dict[tuple[str, str], int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    outputs: int = 0
    capped: int = 0


@dataclass
class Result:
    """Effects of one customer step for the agent to carry out."""

    customer: str
    state: bytes | None  # None: unchanged
    outputs: list[Outgoing]
    profile: dict[str, Any] | None
    due_day: int | None
    step: StepResult


class Pipeline:
    """The shell's logic around `scoring.step`, one instance per worker."""

    def __init__(self, config: ScoringConfig, topics: TopicNames, partitions: int,
                 model: ValueModel | None = None) -> None:
        self.config, self.topics, self.partitions = config, topics, partitions
        self.model = model  # swapped in place when a new model file is picked up
        self.input_types = {name: kind for kind, name in topics.inputs().items()}
        self.counters = Counters()

    # -- decoding and routing -------------------------------------------------
    def decode(self, src: Source) -> Decoded | Outgoing:
        """The input message, or the Outgoing that dead-letters or forwards it."""
        self.counters.by_topic[src.topic] = self.counters.by_topic.get(src.topic, 0) + 1
        try:
            message = self._validate(src)
        except ValidationError as exc:
            return self.dead_letter(src, _validation_reason(exc), "schema")
        except WrongTopicError as exc:  # valid JSON, another event type: not a decode error
            return self.dead_letter(src, str(exc), "schema")
        except (ValueError, RecursionError) as exc:  # includes invalid UTF-8 and JSON errors
            return self.dead_letter(src, f"not valid JSON: {str(exc)[:200]}", "decode")
        home = canonical_partition(message.customer_id, self.partitions)
        if src.partition != home:  # not keyed by murmur2(customer id): one hop to its partition
            self.counters.forwarded += 1
            value = message.model_dump_json().encode()
            return Outgoing(self.topics.events, message.customer_id, value, home)
        return Decoded(message.customer_id, message)

    def _validate(self, src: Source) -> InputMessage:
        kind = self.input_types.get(src.topic)
        if kind is None:  # the mixed events topic: any typed event
            return _ANY_INPUT.validate_json(src.value)
        doc = json.loads(src.value)
        if isinstance(doc, dict) and doc.get("type", kind) != kind:
            raise WrongTopicError(f"type {doc.get('type')!r} does not belong on topic {src.topic}")
        message: InputMessage = INPUT_MODELS[kind].model_validate(doc)  # type: ignore[assignment]
        return message

    def dead_letter(self, src: Source, reason: str, error_type: str) -> Outgoing:
        """A DeadLetter for the DLQ topic, holding the original bytes (first 256 KiB)."""
        self.counters.dead_lettered += 1
        head = src.value[:DLQ_PAYLOAD_LIMIT]
        letter = DeadLetter(
            id=output_id(src.topic, str(src.partition), "dead_letter", src.offset),
            source_topic=src.topic, partition=src.partition, offset=src.offset,
            key_b64=None if src.key is None else base64.b64encode(src.key).decode(),
            payload_b64=base64.b64encode(head).decode(), payload_size=len(src.value),
            payload_sha256=hashlib.sha256(src.value).hexdigest(), truncated=len(head) < len(src.value),
            reason=reason[:1000], error_type=error_type, emitted_at=datetime.now(UTC),
            config_version=self.config.version,
        )
        key = None if src.key is None else src.key.decode("utf-8", "replace")[:200]
        return Outgoing(self.topics.dlq, key, letter.model_dump_json().encode())

    # -- scoring ----------------------------------------------------------------
    def load(self, raw: bytes | None) -> CustomerState:
        """A stored state; an unreadable one is an internal error, never silently reset."""
        if raw is None:
            return NEW_STATE
        try:
            return decode_state(raw)
        except StateDecodeError as exc:
            raise RuntimeError(f"stored state cannot be decoded: {exc}") from exc

    def on_event(self, decoded: Decoded, raw_state: bytes | None, now_ms: int, src: Source) -> Result | Outgoing:
        """Step a customer by an event; a core rejection becomes a dead letter."""
        state = self.load(raw_state)
        result = step(state, to_core(decoded.message), now_ms, decoded.customer, self.config, model=self.model)
        if result.outcome == "rejected":
            return self.dead_letter(src, result.reason, "rejected")
        self.counters.scored += result.outcome == "applied"
        self.counters.duplicates += result.outcome == "duplicate"
        if result.resent:
            result = without_stale_snapshots(state, decoded.message.event_id, result)
        return self._result(decoded.customer, state, result, now_ms)

    def on_review(self, customer: str, raw_state: bytes | None, now_ms: int) -> Result | None:
        """Re-score a customer on time alone; None when there is no such customer."""
        if raw_state is None:
            return None
        state = self.load(raw_state)
        result = step(state, None, now_ms, customer, self.config, model=self.model)
        self.counters.reviewed += 1
        if not result.decisions and result.state.outbox == state.outbox and result.state.figures == state.figures:
            # Nothing to publish and no day left the window: skip the table write. The index gets the
            # new due day; should the worker restart first, the stored review day re-runs this no-op.
            return Result(customer, None, [], None, result.state.review_day, result)
        return self._result(customer, state, result, now_ms)

    def profile(self, customer: str, raw_state: bytes) -> dict[str, Any] | None:
        """A stored customer's Redis profile as of its last evaluation (None before the first one)."""
        state, model = self.load(raw_state), self.model
        if state.scored_day is None:
            return None
        ev = evaluate(state, state.scored_day, self.config, model)
        value = value_of(state, state.scored_day, self.config, model)
        ctx = OutputContext(customer, self.config.version, from_ms(state.clock_ms), model.version if model else None)
        return profile_of(ev, state, ctx, value)

    def _result(self, customer: str, before: CustomerState, result: StepResult, now_ms: int) -> Result:
        after, model = result.state, self.model
        ctx = OutputContext(customer, self.config.version, from_ms(now_ms), model.version if model else None)
        day = after.scored_day if after.scored_day is not None else now_ms // 86_400_000
        evaluation = result.evaluation or evaluate(after, day, self.config, model)
        snapshot = any(d.kind == "score" for d in result.decisions)
        value = value_of(after, day, self.config, model) if snapshot else None
        outputs = list(self._outputs(result, evaluation, after, ctx, value))
        if not result.resent:
            self._count(result.decisions)
        profile = profile_of(evaluation, after, ctx, value) if snapshot else None
        state = None if after is before else encode_state(after)
        return Result(customer, state, outputs, profile, after.review_day, result)

    def _outputs(self, result: StepResult, ev: Evaluation, state: CustomerState,
                 ctx: OutputContext, value: CustomerValue | None) -> Iterator[Outgoing]:
        customer = str(ctx.common["customer_id"])
        for decision in result.decisions:
            message: Message | None = decision_message(decision, ctx)
            if isinstance(decision, ScoreChanged):
                message = snapshot_message(decision, result, ev, state, ctx, value, self.config, self.model)
            if message is not None:
                self.counters.outputs += 1
                yield Outgoing(self._topic_of(decision), customer, message.model_dump_json().encode(),
                               decision=decision)

    def capped(self, out: Outgoing, action: ActionRequest, why: str) -> Outgoing:
        """The action message re-issued as skipped by a frequency cap (same id)."""
        doc = json.loads(out.value)
        doc.update(roi_decision="skipped", reason=f"frequency cap: {why}; {action.reason}")
        self.counters.capped += 1
        return replace(out, value=json.dumps(doc, separators=(",", ":")).encode())

    def _topic_of(self, decision: Decision) -> str:
        t = self.topics
        return {"tier_change": t.tier_changes, "action": t.actions, "alert": t.alerts,
                "score": t.scores}[decision.kind]

    def _count(self, decisions: tuple[Decision, ...]) -> None:
        c = self.counters
        for d in decisions:
            if isinstance(d, TierChange):
                key = (d.from_tier or "none", d.to_tier)
                c.tier_changes[key] = c.tier_changes.get(key, 0) + 1
            elif isinstance(d, ActionRequest):
                akey = (d.action_type, d.roi_decision)
                c.actions[akey] = c.actions.get(akey, 0) + 1
            elif isinstance(d, Alert):
                c.alerts[d.alert_kind] = c.alerts.get(d.alert_kind, 0) + 1


def without_stale_snapshots(state: CustomerState, cause: str, result: StepResult) -> StepResult:
    """A resend without the score snapshots that could not be repeated exactly.

    A snapshot is rebuilt from the state (the outbox keeps decisions, not profiles), so once later
    events are in the state it would carry their figures under the old snapshot's id. The same holds
    for the snapshot of a review caught up inside the event's step (it showed its own day). Such a
    snapshot went out when it was made, and the later snapshots supersede it anyway.
    """
    last = state.outbox[-1] if state.outbox else None
    current = last is not None and last.cause == cause and last.emitted_ms == state.clock_ms
    # A catch-up review's snapshot (another cause in the same entry) showed the state of its own day: gone now.
    kept = tuple(d for d in result.decisions if d.kind != "score" or (current and d.cause == cause))
    return result if kept == result.decisions else replace(result, decisions=kept)


def profile_of(ev: Evaluation, state: CustomerState, ctx: OutputContext,
               value: CustomerValue | None = None) -> dict[str, Any]:
    """The Redis profile of a customer (see `streams.redis_store` for the layout)."""
    s = ev.score
    return {
        "tier": ev.tier, "score": s.composite, "r": s.r, "f": s.f, "m": s.m, "segment": ev.segment,
        "at_risk": ev.risk.is_at_risk, "at_risk_score": ev.risk.score, "annual_value": s.annual_value,
        "recency_days": s.recency_days, "frequency": s.frequency, "monetary": s.monetary,
        "returns_amount": s.returns_amount, "complaints": s.complaints, "tenure_days": s.tenure_days,
        "components": [{"name": c.name, "value": c.value, "points": round(c.points, 4)} for c in s.components],
        "updated_at": from_ms(state.clock_ms).isoformat(), "version": ctx.common["config_version"],
        "model_version": ctx.common["model_version"], **model_fields(value),
    }


def _validation_reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}" if where else f"{err['msg']}{more}"
