"""One computation in a forked process while the caller does another: two cores for `tierstream fit`.

`fit` fits the value model (NumPy and SciPy only) and folds the calibration's population (Polars group-bys and
the core's fold) from the same history; neither reads the other, so the model is fitted in a child forked
after the history is read, and the parent folds meanwhile. The child inherits what it needs (nothing is
pickled in) and sends back its answer (pickled). It must not call Polars: Polars' thread pool does not survive
a fork (the parent keeps it).

One process (the call made on entry, before the caller's own work, as without this module) when the platform
cannot fork or `enabled` is false; the answer is the same either way (the same calls on the same data).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

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
    if not (enabled and can_fork()):
        yield _here(call)
        return
    _CALL[:] = [call]
    try:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            future = pool.submit(_child, expected)

            def get() -> T:
                kind, value = future.result()
                if kind == "failed":  # an expected exception, as its listed type and its message
                    error_type, message = value
                    raise error_type(message)
                return value  # type: ignore[no-any-return]

            yield Pending(get)
    finally:
        _CALL.clear()


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
