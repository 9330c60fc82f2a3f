"""Factories for the scoring-core tests.

Every factory is exposed as a (session-scoped, stateless) fixture so test
modules never import this file by name: `def test_x(purchase, fold_at): ...`.

Days are UTC epoch days; amounts are in base-currency units (dollars), the
factories convert them to the core's 1/10,000 units (`scoring.money`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import pytest

from scoring import NEW_STATE, CoreEvent, CustomerState, Kind, ScoringConfig, fold, parse_config, step
from scoring.decisions import Decision
from scoring.events import MS_PER_DAY
from scoring.money import SCALE

T0 = 20_000  # 2024-10-04, an ordinary epoch day used as "day zero" by the tests
NOON = MS_PER_DAY // 2
_ids = itertools.count()


def at_ms(day: int, hour: float = 12) -> int:
    """Epoch ms of `hour` o'clock UTC on epoch day `day`."""
    return day * MS_PER_DAY + round(hour * 3_600_000)


def _id(prefix: str, day: int, id: str | None) -> str:
    return id if id is not None else f"{prefix}-{day}-{next(_ids)}"


def make_purchase(
    day: int, amount: float = 100.0, id: str | None = None, currency: str = "USD", hour: float = 12
) -> CoreEvent:
    return CoreEvent(Kind.PURCHASE, _id("p", day, id), at_ms(day, hour), round(amount * SCALE), currency)


def make_return(
    day: int, amount: float = 10.0, id: str | None = None, currency: str = "USD", hour: float = 12
) -> CoreEvent:
    return CoreEvent(Kind.RETURN, _id("r", day, id), at_ms(day, hour), round(amount * SCALE), currency)


def make_complaint(day: int, severity: int = 3, id: str | None = None, hour: float = 12) -> CoreEvent:
    return CoreEvent(Kind.COMPLAINT, _id("c", day, id), at_ms(day, hour), 0, "", severity)


def make_enquiry(day: int, id: str | None = None, hour: float = 12) -> CoreEvent:
    return CoreEvent(Kind.ENQUIRY, _id("e", day, id), at_ms(day, hour))


def make_config(**overrides: object) -> ScoringConfig:
    return parse_config(dict(overrides))


def fold_events(
    events: Iterable[CoreEvent],
    now_day: int,
    config: ScoringConfig | None = None,
    state: CustomerState = NEW_STATE,
    hour: float = 23,
) -> CustomerState:
    """Fold events as of `hour` o'clock on `now_day`; fails the test if any event is rejected."""
    new, _, rejected = fold(state, events, at_ms(now_day, hour), config or ScoringConfig())
    assert not rejected, rejected
    return new


def step_through(
    events: Sequence[CoreEvent],
    config: ScoringConfig | None = None,
    state: CustomerState = NEW_STATE,
    customer: str = "cust-1",
) -> tuple[CustomerState, list[Decision]]:
    """Step each event in order with now = its own time; all decisions, in order."""
    config = config or ScoringConfig()
    decisions: list[Decision] = []
    for event in events:
        result = step(state, event, event.at_ms, customer, config)
        assert result.outcome in ("applied", "duplicate"), (result.outcome, result.reason)
        state = result.state
        decisions += result.decisions
    return state, decisions


def weekly_purchases(first_day: int, weeks: int, amount: float = 100.0, prefix: str = "w") -> list[CoreEvent]:
    return [make_purchase(first_day + 7 * i, amount, id=f"{prefix}-{i}") for i in range(weeks)]


@pytest.fixture(scope="session")
def cfg() -> ScoringConfig:
    return ScoringConfig()


@pytest.fixture(scope="session")
def config_with() -> Callable[..., ScoringConfig]:
    return make_config


@pytest.fixture(scope="session")
def purchase() -> Callable[..., CoreEvent]:
    return make_purchase


@pytest.fixture(scope="session")
def ret() -> Callable[..., CoreEvent]:
    return make_return


@pytest.fixture(scope="session")
def complaint() -> Callable[..., CoreEvent]:
    return make_complaint


@pytest.fixture(scope="session")
def enquiry() -> Callable[..., CoreEvent]:
    return make_enquiry


@pytest.fixture(scope="session")
def fold_at() -> Callable[..., CustomerState]:
    return fold_events


@pytest.fixture(scope="session")
def stepper() -> Callable[..., tuple[CustomerState, list[Decision]]]:
    return step_through


@pytest.fixture(scope="session")
def weekly() -> Callable[..., list[CoreEvent]]:
    return weekly_purchases


@pytest.fixture(scope="session")
def ms() -> Callable[..., int]:
    return at_ms
