"""The block codec: lossless round trips, batch decoding, merging, and refusing bad bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vigil.metrics import codec

T0 = 1_700_000_000
rng = np.random.default_rng(20240601)


def regular(n: int, step: int = 10) -> np.ndarray:
    return T0 + np.arange(n, dtype=np.int64) * step


def assert_same(ts, values, expected_ts, expected_values) -> None:
    """Bit-exact: -0.0 differs from 0.0 and NaN payloads count."""
    assert ts.dtype == np.int64 and values.dtype == np.float64
    np.testing.assert_array_equal(ts, np.asarray(expected_ts, np.int64))
    got = values.view(np.int64)
    want = np.asarray(expected_values, np.float64).view(np.int64)
    np.testing.assert_array_equal(got, want)


def _irregular(n: int) -> np.ndarray:
    steps = rng.choice([1, 9, 10, 10, 10, 11, 600, 3600], size=n)
    return T0 + np.cumsum(steps).astype(np.int64)


CASES = {
    "one sample": ([T0], [42.5]),
    "two samples": ([T0, T0 + 10], [1.0, 2.0]),
    "constant": (regular(720), np.full(720, 37.25)),
    "integers": (regular(720), rng.integers(0, 100, 720).astype(float)),
    "counter": (regular(720), np.cumsum(rng.integers(0, 10**6, 720)).astype(float)),
    "one decimal": (regular(720), np.round(rng.random(720) * 100, 1)),
    "two decimals": (regular(720), np.round(rng.random(720) * 100, 2)),
    "three decimals": (regular(720), np.round(rng.normal(1, 0.5, 720), 3)),
    "full-precision noise": (regular(720), rng.random(720) * 1e6),
    "negative": (regular(720), -np.round(rng.random(720) * 50, 2)),
    "negative zero": (regular(4), [-0.0, 0.0, -0.0, 1.5]),
    "all negative zero": (regular(100), np.full(100, -0.0)),
    "huge": (regular(5), [1e300, -1e308, 1.7976931348623157e308, 2.0**60, 9.007199254740993e15]),
    "tiny": (regular(5), [5e-324, -1e-310, 1e-300, 2.2250738585072014e-308, 0.0]),
    "mixed magnitudes": (regular(4), [1e-12, 1e12, 0.1, 123456789.125]),
    "non-finite": (regular(5), [np.nan, np.inf, -np.inf, 1.0, -np.nan]),
    "irregular with gaps": (_irregular(720), np.round(rng.random(720), 4)),
    "large ts jumps": (
        np.array([-(2**62), -5, 0, 10, 2**40, 2**62, 2**63 - 1], np.int64),
        np.arange(7, dtype=float),
    ),
    "50,000 samples": (regular(50_000, 1), np.round(np.sin(np.arange(50_000) / 300) * 100, 2)),
}


@pytest.mark.parametrize("ts, values", CASES.values(), ids=CASES.keys())
def test_it_round_trips_every_kind_of_block_bit_exact(ts, values):
    blob = codec.encode(np.asarray(ts, np.int64), np.asarray(values, np.float64))
    assert_same(*codec.decode(blob), ts, values)


def test_it_stores_agent_like_series_in_well_under_four_bytes_per_sample():
    ts = regular(720)
    percent = np.round(np.clip(rng.normal(30, 5, 720), 0, 100), 2)
    counter = np.cumsum(rng.integers(4000, 6000, 720)).astype(float)
    assert len(codec.encode(ts, percent)) / 720 < 2.5
    assert len(codec.encode(ts, counter)) / 720 < 2.5
    assert len(codec.encode(ts, np.full(720, 1.0))) < 60


def test_it_keeps_a_noise_series_near_its_raw_size():
    values = rng.random(720)
    assert len(codec.encode(regular(720), values)) / 720 < 8


@pytest.mark.parametrize(
    "ts, values, message",
    [
        ([], [], "at least one"),
        ([T0, T0 + 1], [1.0], "values"),
        ([T0, T0], [1.0, 2.0], "increasing"),
        ([T0 + 10, T0], [1.0, 2.0], "increasing"),
        ([[T0]], [[1.0]], "one-dimensional"),
        ([1.5, 2.5], [1.0, 2.0], "integers"),
        ([T0], ["x"], "numbers"),
    ],
)
def test_it_refuses_bad_input_to_encode(ts, values, message):
    with pytest.raises(ValueError, match=message):
        codec.encode(np.asarray(ts), np.asarray(values))


def test_it_decodes_many_blobs_into_one_concatenation_with_counts():
    blocks = [(np.asarray(t, np.int64), np.asarray(v, np.float64)) for t, v in CASES.values()]
    ts, values, counts = codec.decode_many([codec.encode(t, v) for t, v in blocks])
    assert counts.tolist() == [len(t) for t, _ in blocks]
    parts = np.split(np.arange(len(ts)), np.cumsum(counts)[:-1])
    for (t, v), part in zip(blocks, parts, strict=True):
        assert_same(ts[part], values[part], t, v)


def test_it_decodes_no_blobs_into_empty_arrays():
    ts, values, counts = codec.decode_many([])
    assert len(ts) == len(values) == len(counts) == 0
    assert ts.dtype == np.int64 and values.dtype == np.float64


def test_it_merges_with_the_second_set_winning_on_equal_timestamps():
    ts, values = codec.merge([10, 20, 30], [1.0, 2.0, 3.0], [20, 25], [-2.0, 2.5])
    assert ts.tolist() == [10, 20, 25, 30]
    assert values.tolist() == [1.0, -2.0, 2.5, 3.0]


def test_it_merges_a_resent_sample_into_a_single_one():
    ts, values = codec.merge([10, 20], [1.0, 2.0], [20], [2.0])
    assert ts.tolist() == [10, 20] and values.tolist() == [1.0, 2.0]


def test_it_refuses_merge_input_of_mismatched_lengths():
    with pytest.raises(ValueError):
        codec.merge([10, 20], [1.0], [30], [3.0, 4.0])


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01",
        b"\x02" + bytes(40),
        "not bytes",
        None,
    ],
)
def test_it_refuses_what_is_not_a_block(blob):
    with pytest.raises(ValueError):
        codec.decode(blob)


def test_it_refuses_a_header_that_promises_more_than_the_body_holds():
    blob = bytearray(codec.encode(regular(720), rng.random(720)))
    struct.pack_into("<I", blob, 5, 10**6)
    with pytest.raises(ValueError):
        codec.decode(bytes(blob))


def test_it_refuses_every_truncation_of_a_block():
    blob = codec.encode(regular(300), np.round(rng.random(300) * 100, 2))
    for cut in range(len(blob)):
        with pytest.raises(ValueError):
            codec.decode(blob[:cut])


# -- properties -------------------------------------------------------------

finite_or_not = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
agent_like = st.one_of(
    st.integers(-(10**12), 10**12).map(float),
    st.decimals(-(10**6), 10**6, places=2, allow_nan=False, allow_infinity=False).map(float),
    st.sampled_from([0.0, -0.0, 0.1, 100.0]),
    finite_or_not,
)


@st.composite
def blocks(draw, max_size: int = 200):
    n = draw(st.integers(1, max_size))
    steps = draw(
        hnp.arrays(np.int64, n - 1, elements=st.one_of(st.integers(1, 20), st.integers(1, 2**40)))
    )
    start = draw(st.integers(-(2**45), 2**45))
    ts = start + np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)
    values = draw(hnp.arrays(np.float64, n, elements=agent_like))
    return ts, values


@given(blocks())
@settings(max_examples=150, deadline=None)
def test_property_decode_undoes_encode_bit_exact(block):
    ts, values = block
    assert_same(*codec.decode(codec.encode(ts, values)), ts, values)


@given(st.lists(blocks(max_size=50), max_size=8))
@settings(max_examples=100, deadline=None)
def test_property_decode_many_equals_concatenated_decodes(block_list):
    blobs = [codec.encode(t, v) for t, v in block_list]
    ts, values, counts = codec.decode_many(blobs)
    singles = [codec.decode(b) for b in blobs]
    assert counts.tolist() == [len(t) for t, _ in singles]
    if singles:
        assert_same(
            ts,
            values,
            np.concatenate([t for t, _ in singles]),
            np.concatenate([v for _, v in singles]),
        )


@given(blocks(max_size=40), blocks(max_size=40))
@settings(max_examples=100, deadline=None)
def test_property_merge_keeps_each_timestamp_once_and_b_wins(a, b):
    ts, values = codec.merge(a[0], a[1], b[0], b[1])
    assert (np.diff(ts) > 0).all()
    assert set(ts.tolist()) == set(a[0].tolist()) | set(b[0].tolist())
    expected = dict(zip(a[0].tolist(), a[1].view(np.int64).tolist(), strict=True))
    expected.update(zip(b[0].tolist(), b[1].view(np.int64).tolist(), strict=True))
    assert values.view(np.int64).tolist() == [expected[t] for t in ts.tolist()]


@given(blocks(max_size=60), st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_corrupt_bytes_raise_value_error_or_decode(block, data):
    blob = bytearray(codec.encode(*block))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(blob) - 1))
        blob[where] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        ts, values = codec.decode(bytes(blob[:cut]))
    except ValueError:
        return
    # Bytes that still decode must still honour the contract.
    assert len(ts) == len(values) >= 1
    assert (np.diff(ts) > 0).all()


@given(st.binary(max_size=200))
@settings(max_examples=150, deadline=None)
def test_property_random_bytes_raise_value_error_or_decode(blob):
    try:
        ts, values = codec.decode(blob)
    except ValueError:
        return
    assert len(ts) == len(values) >= 1
    assert (np.diff(ts) > 0).all()
