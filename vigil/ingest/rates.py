"""Counters become per-second rates on ingest (pure; no ORM).

A counter's previous reading is kept per series (in the Series row), so the
first reading of a series gives no rate, and each later one gives the rate
since the reading before it, also across requests.
"""

from __future__ import annotations

from vigil.ingest.parsers.base import WRAPPING_COUNTER

Reading = tuple[int, float]  # (unix seconds, raw counter value)


def counter_rates(
    previous: Reading | None, timestamps: list[int], values: list[float], kind: str
) -> tuple[list[int], list[float], Reading | None]:
    """Rates between consecutive readings, and the reading to keep for next time.

    Readings at or before the previous one are late or repeated: they give no
    rate and leave the state alone. A counter that goes down was reset (no rate
    for that interval) unless it is a wrapping counter, which wrapped at 2**32
    or 2**64 as collectd's `counter` type does.
    """
    out_ts: list[int] = []
    out_values: list[float] = []
    last = previous
    for ts, value in sorted(zip(timestamps, values, strict=True)):
        if last is not None and ts <= last[0]:
            continue
        if last is not None:
            delta = value - last[1]
            if delta < 0 and kind == WRAPPING_COUNTER:
                delta += 2.0**32 if last[1] < 2.0**32 else 2.0**64
            if delta >= 0:
                out_ts.append(ts)
                out_values.append(delta / (ts - last[0]))
        last = (ts, value)
    return out_ts, out_values, last
