from __future__ import annotations

import pytest

from vigil.ingest.parsers.base import COUNTER, WRAPPING_COUNTER
from vigil.ingest.rates import counter_rates

T = 1_790_000_000


@pytest.mark.parametrize(
    ("previous", "points", "kind", "rates", "kept"),
    [
        (None, [(T, 100)], COUNTER, [], (T, 100)),
        (None, [(T, 100), (T + 10, 150)], COUNTER, [(T + 10, 5.0)], (T + 10, 150)),
        ((T, 100), [(T + 10, 300)], COUNTER, [(T + 10, 20.0)], (T + 10, 300)),
        ((T, 100), [(T + 20, 300), (T + 10, 200)], COUNTER, [(T + 10, 10.0), (T + 20, 10.0)], (T + 20, 300)),  # noqa: E501
        ((T, 100), [(T + 10, 40)], COUNTER, [], (T + 10, 40)),
        ((T, 100), [(T, 100)], COUNTER, [], (T, 100)),
        ((T, 100), [(T - 10, 50)], COUNTER, [], (T, 100)),
        ((T, 2**32 - 10), [(T + 10, 90)], WRAPPING_COUNTER, [(T + 10, 10.0)], (T + 10, 90)),
        ((T, 2**40), [(T + 1, 5)], WRAPPING_COUNTER, [(T + 1, 2.0**64 - 2**40 + 5)], (T + 1, 5)),
        ((T, 7), [(T + 2, 7)], COUNTER, [(T + 2, 0.0)], (T + 2, 7)),
    ],
    ids=[
        "first-reading", "two-readings", "from-previous", "unsorted", "reset",
        "repeated", "late", "wrap-32", "wrap-64", "idle",
    ],
)  # fmt: skip
def test_counter_rates(previous, points, kind, rates, kept):
    ts, values = [t for t, _ in points], [float(v) for _, v in points]
    out_ts, out_values, last = counter_rates(previous, ts, values, kind)
    assert out_ts == [t for t, _ in rates]
    assert out_values == pytest.approx([r for _, r in rates])
    assert last == kept
