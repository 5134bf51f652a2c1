"""The precision of the values Vigil computes itself.

Rates from counters and canonical percentages come out of a division as
full-precision floats (3.007518796992502): noise in the last digits that no
chart or rule can use, and that costs 6-7 bytes per sample in the compressed
history instead of 1-2. Values Vigil computes are kept to SIGNIFICANT_DIGITS
significant digits, and never fewer than their integer digits (a relative
error below one part in a million, byte counts exact); values
agents send as gauges are stored exactly as sent.
"""

from __future__ import annotations

import numpy as np

SIGNIFICANT_DIGITS = 6


def significant(values: list[float], digits: int = SIGNIFICANT_DIGITS) -> list[float]:
    """Each value rounded to `digits` significant digits (or to an integer), as the nearest float
    to that decimal (so that the history codec stores it as a short integer)."""
    if not values:
        return values
    a = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(a)
    # Beyond these, powers of ten overflow: such values stay as they are.
    ok = (magnitude > 1e-290) & (magnitude < 1e290)
    if not ok.any():
        return list(values)
    v = a[ok]
    # Never round away integer digits: byte counts stay exact.
    places = np.maximum(digits - 1 - np.floor(np.log10(np.abs(v))).astype(np.int64), 0)
    scale = 10.0**places
    out = np.round(v * scale) / scale
    a[ok] = out
    return a.tolist()
