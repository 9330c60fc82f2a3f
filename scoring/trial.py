"""An open outcome window: what the state keeps of one measured contact-plan decision until it closes."""

from __future__ import annotations

from typing import NamedTuple

from scoring.events import MS_PER_DAY


class Trial(NamedTuple):
    """A treated or held-out decision and what happened since, over `[start_ms, start_ms + days)`.

    Money is in base-currency cents; `cost_e4` is what the action cost (0 when held out).
    """

    action_id: str
    rule: str
    action_type: str
    channel: str
    held_out: bool
    tier: str
    start_ms: int
    days: int
    cost_e4: int
    purchases: int = 0
    revenue_e4: int = 0
    return_e4: int = 0

    @property
    def end_ms(self) -> int:
        """The first millisecond after the window."""
        return self.start_ms + self.days * MS_PER_DAY

    @property
    def close_day(self) -> int:
        """The epoch day whose evaluation closes the window: the first day starting at or after its end."""
        return -(-self.end_ms // MS_PER_DAY)
