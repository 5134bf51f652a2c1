from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.ingest.precision import significant
from vigil.metrics import codec


@pytest.mark.parametrize(
    "value, expected",
    [
        (3.007518796992502, 3.00752),
        (96.99248120300751, 96.9925),
        (0.0001234567891, 0.000123457),
        (123456789.123, 123456789.0),
        (6174015488.0, 6174015488.0),
        (1234.5, 1234.5),
        (0.0, 0.0),
        (-42.4242424242, -42.4242),
        (1e300, 1e300),
        (5e-324, 5e-324),
    ],
)
def test_it_keeps_six_significant_digits(value, expected):
    assert significant([value]) == [expected]


def test_it_leaves_an_empty_list_and_non_finite_values_alone():
    assert significant([]) == []
    out = significant([math.inf, -math.inf])
    assert out == [math.inf, -math.inf]


@given(st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=1))
def test_rounding_changes_a_value_by_less_than_a_part_in_a_million(values):
    for v, r in zip(values, significant(values), strict=True):
        assert abs(r - v) <= max(abs(v) * 5.01e-6, 0.5)


def test_rounded_rates_compress_to_a_couple_of_bytes_per_sample():
    rng = np.random.default_rng(3)
    noisy = (rng.normal(5e6, 1e6, 720) / 10.0003).tolist()
    ts = np.arange(0, 7200, 10, dtype=np.int64)
    exact = len(codec.encode(ts, np.array(noisy))) / 720
    rounded = len(codec.encode(ts, np.array(significant(noisy)))) / 720
    assert rounded < 4 < exact
