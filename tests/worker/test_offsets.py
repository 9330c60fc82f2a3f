"""OffsetBook without a broker: what is delivered, handled, held and committed, in offset order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.offsets import OffsetBook, Verdict

TP = ("purchases", 0)


def book_at(offset: int | None) -> OffsetBook:
    book = OffsetBook()
    book.seeked(TP, offset)
    return book


def test_nothing_committed_delivers_from_wherever_the_fetch_starts() -> None:
    book = book_at(None)
    assert book.fetched(TP, 7, 9) == Verdict(7)
    assert book.position(TP) == 10
    assert book.committable(TP) is None  # nothing written yet


def test_batches_in_sequence_are_delivered_whole() -> None:
    book = book_at(10)
    assert book.fetched(TP, 10, 14) == Verdict(10)
    assert book.fetched(TP, 15, 20) == Verdict(15)
    assert book.position(TP) == 21


def test_a_jump_seeks_back_once_then_takes_what_exists() -> None:
    book = book_at(10)
    assert book.fetched(TP, 12, 15) == Verdict(None, seek_to=10)
    assert book.position(TP) == 10
    # Fetched again from 10 and it still starts at 12: nothing exists in between (compaction, markers).
    assert book.fetched(TP, 12, 15) == Verdict(12)
    assert book.position(TP) == 16


def test_a_batch_overlapping_what_was_delivered_gives_the_rest_only() -> None:
    book = book_at(10)
    book.fetched(TP, 10, 14)
    assert book.fetched(TP, 12, 18) == Verdict(15)
    assert book.fetched(TP, 10, 14) == Verdict(None)  # all delivered already


def test_a_skipped_batch_resumes_from_the_first_unhandled_offset() -> None:
    book = book_at(10)
    book.fetched(TP, 10, 14)
    book.fetched(TP, 15, 19)
    assert book.in_sequence(TP, 10)
    book.handled(TP, 14)
    assert not book.in_sequence(TP, 20)  # 15..19 were delivered but never handled
    assert book.resume_offset(TP) == 15
    assert book.position(TP) == 15
    assert book.fetched(TP, 15, 19) == Verdict(15)


def test_only_written_offsets_are_committed() -> None:
    book = book_at(10)
    assert book.committable(TP) == 10  # the committed offset it started from
    book.fetched(TP, 10, 14)
    book.handled(TP, 14)
    assert book.committable(TP) == 10  # handled, but its effects are still in memory
    marks = book.mark_written()
    assert marks == {TP: (15, frozenset())}
    book.written(marks)
    assert book.committable(TP) == 15


def test_a_flush_commits_what_was_handled_when_it_started() -> None:
    book = book_at(0)
    book.fetched(TP, 0, 4)
    book.handled(TP, 4)
    marks = book.mark_written()
    book.fetched(TP, 5, 9)
    book.handled(TP, 9)  # handled while the flush was writing: not in it
    book.written(marks)
    assert book.committable(TP) == 5


def test_a_held_record_holds_the_commit_back_until_released() -> None:
    book = book_at(0)
    book.fetched(TP, 0, 9)
    book.hold(TP, 3)
    book.hold(TP, 6)
    book.handled(TP, 9)
    book.written(book.mark_written())
    assert book.committable(TP) == 3
    assert book.held_count(TP) == 2
    book.release(TP, 3)
    assert book.committable(TP) == 3  # stepped, but its state is written only by the next flush
    book.written(book.mark_written())
    assert book.committable(TP) == 6
    book.release(TP, 6)
    book.written(book.mark_written())
    assert book.committable(TP) == 10
    assert book.held_count() == 0


def test_an_older_flush_never_moves_the_commit_back() -> None:
    book = book_at(0)
    book.fetched(TP, 0, 9)
    book.handled(TP, 4)
    old = book.mark_written()
    book.handled(TP, 9)
    book.written(book.mark_written())
    book.written(old)
    assert book.committable(TP) == 10


def test_a_seek_forgets_what_was_delivered_and_held() -> None:
    book = book_at(0)
    book.fetched(TP, 0, 9)
    book.hold(TP, 2)
    book.seeked(TP, 5)
    assert book.position(TP) == 5
    assert book.committable(TP) == 5
    assert book.held_count(TP) == 0


def test_revoked_partitions_are_forgotten() -> None:
    book = book_at(0)
    other = ("purchases", 1)
    book.seeked(other, 3)
    book.revoke([TP])
    assert book.partitions() == [other]
    assert book.committable(TP) is None
    assert book.position(TP) is None
    book.written({TP: (8, frozenset())})  # a flush that ended after the revoke writes nothing for it
    assert book.committable(TP) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fetch", "handle", "hold", "release", "flush"]),
                          st.integers(1, 6)), max_size=40))
def test_the_commit_never_passes_an_unhandled_or_held_record(steps: list[tuple[str, int]]) -> None:
    """Whatever the order of fetches, handling, holds and flushes, the commit is the first record whose
    effects are not written: not handled, handled after the last finished flush began, held, or released
    from a hold after the last finished flush began."""
    book = book_at(0)
    delivered, handled, written_upto = 0, 0, 0
    held: set[int] = set()
    stepped: set[int] = set()  # released holds whose state no finished flush has written yet
    pending: dict[object, tuple[int | None, frozenset[int]]] | None = None
    pending_stepped: set[int] = set()
    for action, n in steps:
        if action == "fetch":
            verdict = book.fetched(TP, delivered, delivered + n - 1)
            assert verdict == Verdict(delivered)
            delivered += n
        elif action == "handle" and handled < delivered:
            last = min(handled + n, delivered) - 1
            if n % 2 and last not in held:
                book.hold(TP, last)
                held.add(last)
            book.handled(TP, last)
            handled = last + 1
        elif action == "release" and held:
            offset = min(held)
            book.release(TP, offset)
            held.discard(offset)
            stepped.add(offset)
        elif action == "flush":
            if pending is not None:
                book.written(pending)
                written_upto = max(written_upto, pending[TP][0] or 0)
                stepped -= pending_stepped
            pending, pending_stepped = book.mark_written(), set(stepped)
        commit = book.committable(TP)
        assert commit == min([written_upto, *held, *stepped])


def test_a_held_record_stepped_during_a_flush_holds_commits_until_the_next_flush_is_written() -> None:
    book = OffsetBook()
    book.seeked(TP, 0)
    book.fetched(TP, 0, 9)
    book.hold(TP, 3)  # waiting for the event clock
    book.handled(TP, 9)
    first = book.mark_written()
    book.written(first)
    assert book.committable(TP) == 3
    marks = book.mark_written()  # a flush starts ...
    book.release(TP, 3)  # ... the held record is stepped meanwhile: its state is not in this flush
    book.written(marks)
    assert book.committable(TP) == 3  # committing 10 now would lose its state at a crash
    book.written(book.mark_written())  # the next flush wrote it
    assert book.committable(TP) == 10


def test_a_failed_flush_leaves_its_releases_to_the_next_one() -> None:
    book = OffsetBook()
    book.seeked(TP, 0)
    book.fetched(TP, 0, 4)
    book.hold(TP, 2)
    book.handled(TP, 4)
    book.release(TP, 2)
    book.mark_written()  # this flush fails: written() is never called
    assert book.committable(TP) is None or book.committable(TP) <= 2
    book.written(book.mark_written())
    assert book.committable(TP) == 5


def test_a_gap_inside_a_fetch_is_fetched_again_once_then_taken_as_real() -> None:
    book = OffsetBook()
    book.seeked(TP, 0)
    assert book.fetched(TP, 0, 9).start == 0
    book.truncated(TP, 4)  # 0..3 delivered, 4.. missing from the fetch
    assert book.position(TP) == 4
    again = book.fetched(TP, 6, 9)  # the broker skips again: fetch once more from 4
    assert again.start is None and again.seek_to == 4
    assert book.fetched(TP, 6, 9).start == 6  # the same answer twice: offsets 4..5 do not exist


def test_a_dropped_last_batch_is_fetched_again_after_the_patience() -> None:
    book = book_at(10)
    book.fetched(TP, 10, 14)
    book.handled(TP, 14)
    book.fetched(TP, 15, 19)  # delivered, then dropped (a rebalance): nothing newer comes to show the gap
    assert not book.is_stuck(TP, 20, now=100.0, patience=10.0)  # starts the timer
    assert not book.is_stuck(TP, 20, now=109.0, patience=10.0)
    assert book.is_stuck(TP, 20, now=110.0, patience=10.0)
    assert book.resume_offset(TP) == 15
    assert book.fetched(TP, 15, 19) == Verdict(15)  # delivered again
    assert not book.is_stuck(TP, 20, now=111.0, patience=10.0)  # the timer restarted


def test_progress_or_a_caught_up_partition_is_never_stuck() -> None:
    book = book_at(10)
    book.fetched(TP, 10, 19)
    assert not book.is_stuck(TP, 20, now=0.0, patience=10.0)
    book.handled(TP, 14)  # progress restarts the timer
    assert not book.is_stuck(TP, 20, now=10.0, patience=10.0)
    assert not book.is_stuck(TP, 20, now=19.0, patience=10.0)
    book.handled(TP, 19)
    assert not book.is_stuck(TP, 20, now=100.0, patience=10.0)  # caught up
    assert not book.is_stuck(TP, None, now=200.0, patience=10.0)  # highwater unknown
    assert not book.is_stuck(("other", 1), 5, now=300.0, patience=10.0)  # not this book's


def test_a_batch_fetched_twice_is_handled_from_its_first_unhandled_record() -> None:
    book = book_at(10)
    book.fetched(TP, 10, 19)
    book.handled(TP, 19)
    assert book.unhandled(TP, 15) == 20
    assert book.unhandled(TP, 20) == 20
    assert book_at(None).unhandled(TP, 7) == 7
