"""The worker's Handler without Faust or a broker: records in, Effects and Flushes out (a DictStore table)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.inputs import ComplaintFiled, PurchaseCompleted
from schemas.outputs import CustomerScore, DeadLetter
from scoring.codec import decode_state
from scoring.config import ScoringConfig
from scoring.events import to_ms
from streams.convert import InputMessage
from streams.kafka import REMNANT_PREFIX
from streams.partitioning import canonical_partition
from streams.profile import stored_profile
from streams.settings import TopicNames
from streams.worker.handler import Handler, Record
from streams.worker.states import StateCache
from streams.worker.store import DictStore

TOPICS = TopicNames()
START = datetime(2024, 1, 5, 12, tzinfo=UTC)
WALL_MS = to_ms(START + timedelta(days=60))  # every event within the scoring window


def make_handler(store: DictStore | None = None, partitions: int = 1) -> Handler:
    return Handler(ScoringConfig(), TOPICS, partitions, StateCache(store or DictStore()))


def purchase(customer: str, n: int, amount: str = "120.00", days: int = 0) -> PurchaseCompleted:
    return PurchaseCompleted(event_id=f"{customer}-{n}", customer_id=customer, occurred_at=START + timedelta(days=days),
                             amount=Decimal(amount), currency="USD", order_id=f"o-{customer}-{n}")


def records(*messages: InputMessage | bytes, topic: str = TOPICS.events, partition: int = 0) -> list[Record]:
    out = []
    for offset, message in enumerate(messages):
        value = message if isinstance(message, bytes) else message.model_dump_json().encode()
        key = None if isinstance(message, bytes) else message.customer_id.encode()
        out.append(Record(topic, partition, offset, key, value))
    return out


def by_topic(effects_outputs: list, topic: str) -> list:
    return [out for out in effects_outputs if out.topic == topic]


@pytest.mark.parametrize(("value", "topic", "error_type", "words"), [
    (b"not json", TOPICS.events, "decode", "not valid JSON"),
    (b"\xff\xfe", TOPICS.events, "decode", "not valid JSON"),
    (b'{"type": "purchase"}', TOPICS.events, "schema", "event_id"),
    (json.dumps({**json.loads(purchase("A", 1).model_dump_json()), "amount": "abc"}).encode(), TOPICS.events,
     "schema", "amount"),
    (json.dumps({**json.loads(purchase("A", 1).model_dump_json()), "amount": "-5"}).encode(), TOPICS.events,
     "schema", "amount"),
    (ComplaintFiled(event_id="x", customer_id="A", occurred_at=START, severity=2, category="delivery")
     .model_dump_json().encode(), TOPICS.purchases, "schema", "does not belong on topic"),
])
def test_malformed_input_becomes_one_dead_letter_with_the_reason(value: bytes, topic: str, error_type: str,
                                                                 words: str) -> None:
    handler = make_handler()
    effects = handler.on_batch((topic, 0), records(value, topic=topic), WALL_MS)
    [out] = effects.outputs
    assert out.topic == TOPICS.dlq
    letter = DeadLetter.model_validate_json(out.value)
    assert letter.error_type == error_type and words in letter.reason, letter.reason
    assert letter.source_topic == topic and letter.offset == 0
    assert handler.counters.dead_lettered == 1 and handler.counters.scored == 0
    assert handler.take_flush().states == []


def test_an_event_far_in_the_future_is_refused() -> None:
    handler = make_handler()
    effects = handler.on_batch((TOPICS.events, 0), records(purchase("A", 1, days=5)), to_ms(START))
    [out] = effects.outputs
    assert DeadLetter.model_validate_json(out.value).error_type == "rejected"


def test_a_batch_writes_one_state_and_one_snapshot_per_customer() -> None:
    store = DictStore()
    handler = make_handler(store)
    # Growing amounts: every step changes the score, so every step asks for a snapshot.
    batch = records(purchase("A", 1, "20"), purchase("B", 1, "20"), purchase("A", 2, "900", days=20),
                    purchase("A", 3, "9000", days=40), purchase("B", 2, "5000", days=50))
    effects = handler.on_batch((TOPICS.events, 0), batch, WALL_MS)
    assert handler.counters.scored == 5
    assert by_topic(effects.outputs, TOPICS.tier_changes)  # sent at once, never coalesced
    flush = handler.take_flush()
    assert sorted(customer for _, customer, _ in flush.states) == ["A", "B"]
    snapshots = {out.key: CustomerScore.model_validate_json(out.value) for out in flush.snapshots}
    assert sorted(snapshots) == ["A", "B"]
    assert (snapshots["A"].frequency, snapshots["B"].frequency) == (3, 2)  # each customer's latest step
    assert sorted(customer for customer, _ in flush.profiles) == ["A", "B"]
    assert handler.take_flush().states == []  # nothing dirty until the next event


def test_the_flushed_state_is_what_a_new_handler_reads_back() -> None:
    store = DictStore()
    handler = make_handler(store)
    handler.on_batch((TOPICS.events, 0), records(purchase("A", 1, "20"), purchase("A", 2, "4000", days=30)), WALL_MS)
    flush = handler.take_flush()
    for partition, customer, value in flush.states:
        store.put(partition, customer, value)
    again = make_handler(store)
    profile = again.profile("A")
    assert profile is not None
    published = dict(flush.profiles)["A"]
    assert published == profile.redis_fields()
    assert decode_state(store.data["A"]) == handler.cache.get("A")


def test_a_redelivered_event_is_a_duplicate_that_sends_nothing() -> None:
    handler = make_handler()
    handler.on_batch((TOPICS.events, 0), records(purchase("A", 1)), WALL_MS)
    handler.take_flush()
    effects = handler.on_batch((TOPICS.events, 0), records(purchase("A", 1)), WALL_MS)
    assert effects.outputs == []
    assert handler.counters.duplicates == 1
    assert handler.take_flush().snapshots == []


def test_an_event_on_another_partition_is_forwarded_to_its_canonical_one() -> None:
    handler = make_handler(partitions=8)
    home = canonical_partition("A", 8)
    elsewhere = (home + 1) % 8
    effects = handler.on_batch((TOPICS.events, elsewhere), records(purchase("A", 1), partition=elsewhere), WALL_MS)
    [out] = effects.outputs
    assert (out.topic, out.key, out.partition) == (TOPICS.events, "A", home)
    assert PurchaseCompleted.model_validate_json(out.value) == purchase("A", 1)
    assert handler.counters.forwarded == 1 and handler.take_flush().states == []


def test_the_worker_profile_path_and_stored_profile_agree() -> None:
    """The profile a flush publishes is `stored_profile` of the state it writes (what redis-resync uses)."""
    handler = make_handler()
    handler.on_batch((TOPICS.events, 0), records(purchase("A", 1, "20"), purchase("A", 2, "4000.50", days=45)),
                     WALL_MS)
    flush = handler.take_flush()
    state = handler.cache.get("A")
    assert state is not None
    expected = stored_profile("A", state, handler.config)
    assert expected is not None
    assert dict(flush.profiles)["A"] == expected.redis_fields()


def test_held_out_actions_go_to_their_own_topic_never_to_the_action_topic() -> None:
    hello = {"name": "hello", "on": "tier_changed", "direction": "new", "holdout_share": 0.5,
             "action": {"type": "welcome_mail", "channel": "email"}}
    config = ScoringConfig.model_validate({"tiering": "absolute", "contact_rules": [hello]})
    handler = Handler(config, TOPICS, 1, StateCache(DictStore()))
    big = [purchase(f"H{i}", 1) for i in range(40)]  # a first tier: the rule fires for each
    outputs = handler.on_batch((TOPICS.events, 0), records(*big), WALL_MS).outputs
    sent = [json.loads(o.value) for o in by_topic(outputs, TOPICS.actions)]
    held = [json.loads(o.value) for o in by_topic(outputs, TOPICS.holdouts)]
    assert sent and held
    assert all(a["roi_decision"] != "held_out" for a in sent)
    assert all(a["roi_decision"] == "held_out" and a["cost"] == 0 for a in held)


def written(store: DictStore, states: list[tuple[int, str, bytes | None]]) -> None:
    """What the app does with a flush's states."""
    for partition, customer, value in states:
        store.put(partition, customer, value)


def test_an_erasure_request_forgets_the_customer_in_table_score_topic_and_redis() -> None:
    from schemas.inputs import ErasureRequested
    from schemas.outputs import CustomerForgotten

    handler = make_handler()
    store = handler.cache.store
    assert isinstance(store, DictStore)
    handler.owned = {0}
    handler.on_batch((TOPICS.events, 0), records(purchase("A", 1), purchase("B", 1)), WALL_MS)
    written(store, handler.take_flush().states)
    assert set(store.data) == {"A", "B"}
    erase = ErasureRequested(event_id="er-1", customer_id="A", requested_at=START + timedelta(days=59))
    effects = handler.on_batch((TOPICS.events, 0), records(erase), WALL_MS)
    [out] = by_topic(effects.outputs, TOPICS.tier_changes)
    gone = CustomerForgotten.model_validate_json(out.value or b"")
    assert (gone.reason, gone.cause, gone.customer_id, gone.last_activity_day) == ("erasure", "er-1", "A", START.date())
    assert effects.deadlines == [(0, "A", None)]
    flush = handler.take_flush()
    left = REMNANT_PREFIX + "A"  # the id memory of A's inputs, until they are committed (below)
    assert [(p, c, v is None) for p, c, v in flush.states] == [(0, left, False), (0, "A", True)]  # then a tombstone
    assert flush.profiles == [("A", None)]  # Redis keys deleted
    assert [(s.topic, s.key, s.value) for s in flush.snapshots] == [(TOPICS.scores, "A", None)]
    # until the app has written the tombstone the store holds A's old state: a step or read must not see it
    assert "A" in store.data and handler.profile("A") is None
    written(store, flush.states)
    assert set(store.data) == {"B", left}
    handler.remnants.committed({(TOPICS.events, 0): 2})  # A's inputs are committed: the remnant goes
    written(store, handler.take_flush().states)
    assert set(store.data) == {"B"}
    assert handler.profile("A") is None and handler.profile("B") is not None
    assert handler.counters.forgotten == {"erasure": 1}
    assert handler.review(0, ["A"], WALL_MS).outputs == []  # nothing left to review


def _forget_and_crash(messages: list[InputMessage]) -> tuple[DictStore, list, Handler]:
    """A worker steps `messages` (offsets 0..), flushes, and dies before committing; another worker restores
    the table (its remnants too, as the app's recovery does) and reads the same inputs again."""
    from streams.worker.remnants import decode_remnant

    store = DictStore()
    first = make_handler(store)
    first.owned = {0}
    tp = (TOPICS.events, 0)
    sent = first.on_batch(tp, records(*messages), WALL_MS).outputs
    written(store, first.take_flush({tp: (len(messages), frozenset())}).states)
    again = make_handler(store)
    again.owned = {0}
    for key, value in store.items():
        if key.startswith(REMNANT_PREFIX):
            again.remnants.load(key, 0, value)
            assert decode_remnant(0, value).marks == {tp: len(messages)}
    return store, sent, again


def test_inputs_read_again_after_an_erasure_and_a_crash_send_nothing_new() -> None:
    """The customer is erased and comes back; the worker dies before committing. Its successor reads the
    pre-erasure events again: they are not the new relationship's, and the request read again finds nothing of
    its own to erase (without the remnant: a new customer, erased again, with other outputs under the same ids)."""
    from schemas.inputs import ErasureRequested

    erase = ErasureRequested(event_id="er-1", customer_id="A", requested_at=START + timedelta(days=20))
    history = [purchase("A", 1), purchase("A", 2, days=10), erase, purchase("A", 3, days=30),
               purchase("A", 4, "900", days=40)]
    store, sent, again = _forget_and_crash(history)
    assert any(out.topic == TOPICS.tier_changes for out in sent)
    state = store.data["A"]
    effects = again.on_batch((TOPICS.events, 0), records(*history), WALL_MS)
    assert effects.outputs == []  # each input was a duplicate: nothing sent again, nothing different
    assert again.counters.duplicates == len(history) and again.counters.forgotten == {}
    assert again.take_flush().states == []
    assert store.data["A"] == state


def test_inputs_read_again_after_a_forget_are_no_new_customer() -> None:
    from schemas.inputs import ErasureRequested

    erase = ErasureRequested(event_id="er-1", customer_id="A", requested_at=START + timedelta(days=20))
    history = [purchase("A", 1), purchase("A", 2, days=10), erase]
    store, _, again = _forget_and_crash(history)
    assert "A" not in store.data
    effects = again.on_batch((TOPICS.events, 0), records(*history), WALL_MS)
    assert effects.outputs == [] and again.profile("A") is None
    # a new event of the customer is a new customer's first, as without the remnant
    effects = again.on_batch((TOPICS.events, 0), records(purchase("A", 5, days=50)), WALL_MS)
    assert again.profile("A") is not None and again.counters.scored == 1
