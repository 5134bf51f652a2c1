"""Turning monotonic counters (bytes read, bytes received) into per-second rates."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def counter_rate(previous: float | None, current: float, elapsed: float) -> float | None:
    """Per-second rate of a counter between two readings `elapsed` seconds apart.

    None when there is no previous reading, when no time passed, or when the
    counter went backwards: after a reset (reboot, driver reload, interface
    re-created) or a wrap, any number for that interval would be invented.
    """
    if previous is None or elapsed <= 0 or current < previous:
        return None
    return (current - previous) / elapsed


def counter_rates(
    previous: Mapping[K, float], current: Mapping[K, float], elapsed: float
) -> dict[K, float]:
    """Rates of every counter read both times; new, vanished or reset counters have none."""
    rates: dict[K, float] = {}
    for key, value in current.items():
        rate = counter_rate(previous.get(key), value, elapsed)
        if rate is not None:
            rates[key] = rate
    return rates
