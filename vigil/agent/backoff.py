"""How long the sender waits after a failed attempt."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A server that asks for more than this is misconfigured; we would rather ask again.
MAX_RETRY_AFTER = 600.0


class Backoff:
    """Exponential backoff with jitter: initial, 2x, 4x ... up to maximum.

    Jitter spreads a fleet of agents that lost the server at the same moment,
    so that they do not all come back in the same second when it returns.
    """

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 60.0,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self._random = random_fraction

    def next_delay(self, retry_after: float | None = None) -> float:
        """Seconds to wait after one more failure; the server's Retry-After wins when given."""
        self.failures += 1
        if retry_after is not None:
            # The server knows its own load better than our doubling does; the
            # small jitter still keeps agents from arriving together.
            return min(retry_after, MAX_RETRY_AFTER) * (1 + 0.1 * self._random())
        base = min(self.maximum, self.initial * 2 ** (self.failures - 1))
        return base * (0.5 + 0.5 * self._random())

    def reset(self) -> None:
        self.failures = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = datetime.now(UTC).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
