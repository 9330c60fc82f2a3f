"""One computation in a forked process while the caller does another: two cores for `tierstream fit` and replay.

`fit` fits the value model (NumPy and SciPy only) and folds the calibration's population (Polars group-bys and
the core's fold) from the same history; neither reads the other. Its child is forked before the history is read
(`given_later`): it imports SciPy while the parent reads, then fits the purchase log the parent sends it
(pickled), while the parent folds. A replay's child (`in_background`) is forked once its states are computed and
inherits them (nothing is pickled in). A child sends back its answer (pickled). It must not call Polars:
Polars' thread pool does not survive a fork (the parent keeps it).

One process (the call made when its input is there, before the caller's own work, as without this module) when
the platform cannot fork or `enabled` is false; the answer is the same either way (the same calls on the same
data).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

A = TypeVar("A")
T = TypeVar("T")

_CALL: list[Callable[[], Any]] = []  # set in the parent just before the fork (the child inherits it), then cleared


class Pending(Generic[T]):
    """The answer of a call made on entry (one process) or in a forked child."""

    def __init__(self, get: Callable[[], T], failed: bool = False) -> None:
        self._get = get
        self.failed = failed  # known to have raised (only a call made on entry is known before `result`)

    def result(self) -> T:
        """The call's answer, or its exception raised again (an `expected` one with its type and message)."""
        return self._get()


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


@contextmanager
def in_background(
    call: Callable[[], T], enabled: bool = True, expected: tuple[type[Exception], ...] = (),
) -> Iterator[Pending[T]]:
    """`call()` in a forked child while the body runs (`enabled` and the platform forks), else on entry.

    An exception of a type in `expected` (or a subclass) comes back as that listed type with the same message
    (nothing else of it is kept); others as the executor carries them. Leaving the block waits for the child.
    """
    with given_later(lambda _: call(), enabled=enabled, expected=expected) as give:
        yield give(None)


@contextmanager
def given_later(
    call: Callable[[A], T], warm: Callable[[], object] = lambda: None, enabled: bool = True,
    expected: tuple[type[Exception], ...] = (),
) -> Iterator[Callable[[A], Pending[T]]]:
    """A child forked on entry that runs `warm()` (imports, say) at once, then `call(value)` when the body gives
    it a value: `give(value)` sends it (pickled) and answers the call's `Pending`. The body reads its input
    while the child warms up, and the child does not inherit that input. Not forked (`enabled` false, or no
    fork): `give` makes the call there and then, in this process. A body that leaves without giving stops the
    child (it sees the pipe closed); leaving the block waits for the child. Errors as `in_background`."""
    if not (enabled and can_fork()):
        yield lambda value: _here(lambda: call(value))
        return
    receive, send = mp.get_context("fork").Pipe(duplex=False)

    def run() -> T | None:
        send.close()  # this process's copy of the parent's end: the parent's closing it must read as EOF here
        warm()
        try:
            value = receive.recv()
        except EOFError:  # the body left without giving a value: no answer is asked for
            return None
        return call(value)

    _CALL[:] = [run]
    try:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            future = pool.submit(_child, expected)

            def get() -> T:
                kind, value = future.result()
                if kind == "failed":  # an expected exception, as its listed type and its message
                    error_type, message = value
                    raise error_type(message)
                return value  # type: ignore[no-any-return]

            def give(value: A) -> Pending[T]:
                send.send(value)
                send.close()
                return Pending(get)

            try:
                yield give
            finally:
                send.close()  # given or not: the child never waits on this end
    finally:
        _CALL.clear()
        receive.close()


def _here(call: Callable[[], T]) -> Pending[T]:
    try:
        value = call()
    except Exception as exc:  # raised again when the answer is asked for, as from a child
        error = exc

        def fail() -> T:
            raise error

        return Pending(fail, failed=True)
    return Pending(lambda: value)


def _child(expected: tuple[type[Exception], ...]) -> tuple[str, Any]:
    try:
        return "ok", _CALL[0]()
    except expected as exc:  # as the listed type it is an instance of: a subclass may need more arguments
        return "failed", (next(kind for kind in expected if isinstance(exc, kind)), str(exc))
