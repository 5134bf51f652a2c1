"""Lossless compressed blocks of one series' samples, and fast decoding of many at once.

Raw samples older than a couple of hours are compacted into one blob per series
per time window. A blob is a fixed 33-byte header and a body:

    header  "<BBBBBIqqIi": version, flags, k, ts_width, value_width, n,
            first ts, first value code, ts step, value step
    body    zstd frame (with checksum) of two integer streams, each byte-shuffled:
            n * ts_width bytes of timestamp codes, n * value_width bytes of value codes

Timestamps: deltas minus the block's smallest delta (its "step"): a regular
interval gives all zeros (width 0, nothing stored), jitter gives 0/1/2.

Values, the first mode that fits the whole block:
1. Decimal: the smallest k in 0..15 such that every value is exactly m / 10**k
   for an integer |m| < 2**53 (checked bit for bit, so -0.0, NaN and inf never
   qualify). Agents send decimal text (percentages with 1-2 places, byte
   counters, load averages), which this turns into small integers; their
   deltas minus the smallest delta are stored, like timestamps.
2. XOR with the previous value's IEEE bits (as Gorilla does): round-trips any
   float, NaN payloads included. Slowly changing noisy values share sign,
   exponent and top mantissa bits, which become zero bytes.

Each stream keeps only its `width` low byte planes (the planes above are zero
for the whole block), stored plane after plane ("byte shuffle") so the zeros
and repeats form runs that zstd squeezes.

Why these choices (bench/codec.py; 653 real series from the local agent,
collectd and node_exporter at 1-2 s, 233k samples):
- 0.92 B/sample overall at zstd level 3; levels 1/9/19 give 0.93/0.90/0.88 and
  zlib 6/9 on the same transform 0.89/0.88 (zstd decodes faster; the checksum
  and frame cost zstd ~4 bytes per block). zlib on raw (ts, value) gives 2.87.
- Delta minus step beat delta-of-delta with zigzag by ~2 % in size, and its
  decoding is one cumulative sum instead of zigzag plus two.
- Delta-of-delta of decimal mantissas won on 0.1 % of the bytes: dropped.
- Integer deltas of the float bits compressed the same as XOR: XOR kept.
- Full-precision floats (ratios computed at ingest) cost 5.5-7 B/sample;
  all XOR blocks together 4.2 B/sample.

Decoding many blobs is one Python loop that only decompresses and un-shuffles
bytes into one preallocated array; every arithmetic step (steps, cumulative
sums restarting per blob, decimal scaling) then runs once over all blobs with
numpy. Only XOR blobs are finished one by one (an XOR accumulate cannot restart
per blob).

zstd (de)compressor objects are not thread-safe, so each thread has its own.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence

import numpy as np
import zstandard

VERSION = 1
ZSTD_LEVEL = 3
MAX_DECIMALS = 15
MAX_SAMPLES = 1 << 24

_HEADER = struct.Struct("<BBBBBIqqIi")
HEADER_SIZE = _HEADER.size

# flags: bit 0 is the value mode; bit 2 says the body is a zstd frame (tiny
# blocks that zstd would grow are stored raw).
MODE_DECIMAL = 0
MODE_XOR = 1
_MODE_MASK = 0b1
FLAG_ZSTD = 0b100

_EXACT_LIMIT = float(2**53)
_POW10 = np.array([10.0**k for k in range(MAX_DECIMALS + 1)])


class _Local(threading.local):
    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, write_checksum=True, write_content_size=True
        )
        self.decompressor = zstandard.ZstdDecompressor()


_local = _Local()


# -- encoding ---------------------------------------------------------------


def _offset_deltas(x: np.ndarray, low: int, high: int) -> tuple[int, np.ndarray]:
    """(step, codes): x[j] - x[j-1] - step as uint64, codes[0] = 0 (x[0] lives in the header).

    step is the smallest delta (clipped to the header field's range), so the
    codes are small non-negative integers: zero for a regular interval or a
    steady counter. Any step is lossless: int64 wraps here and back when decoding.
    """
    d = _deltas(x)
    step = int(np.clip(d[1:].min(), low, high)) if len(x) > 1 else 0
    d[1:] -= step
    return step, d.view(np.uint64)


def _deltas(x: np.ndarray) -> np.ndarray:
    """x[j] - x[j-1] with a leading 0 (the first value lives in the header)."""
    d = np.zeros_like(x)
    np.subtract(x[1:], x[:-1], out=d[1:])  # int64 wraps; decoding wraps back exactly
    return d


def _width(codes: np.ndarray) -> int:
    """Bytes needed for the largest unsigned code: 0 when all are zero."""
    top = int(codes.max()) if codes.size else 0
    return (top.bit_length() + 7) // 8


def _shuffle(codes: np.ndarray, width: int) -> bytes:
    """The `width` low byte planes of uint64 codes, plane after plane."""
    planes = codes.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)[:, :width]
    return planes.T.tobytes()


def _decimal_mantissas(values: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(k, m) with values == m / 10**k bit for bit, k as small as possible; else None."""
    if not np.isfinite(values).all():
        return None
    for k in range(MAX_DECIMALS + 1):
        scaled = np.rint(values * _POW10[k])
        if np.abs(scaled).max() >= _EXACT_LIMIT:
            return None  # larger k only grows the mantissas
        # Rebuild exactly as decoding does (integer mantissa, division by an
        # exact power of ten) and compare bits, not ==, so that -0.0 (whose
        # mantissa 0 decodes to +0.0) is refused.
        mantissas = scaled.astype(np.int64)
        rebuilt = mantissas.astype(np.float64) / _POW10[k]
        if np.array_equal(rebuilt.view(np.int64), values.view(np.int64)):
            return k, mantissas
    return None


def _check_input(ts, values) -> tuple[np.ndarray, np.ndarray]:
    ts = np.asarray(ts)
    values = np.asarray(values)
    if ts.ndim != 1 or values.ndim != 1:
        raise ValueError("ts and values must be one-dimensional")
    if len(ts) != len(values):
        raise ValueError(f"{len(ts)} timestamps but {len(values)} values")
    if len(ts) == 0:
        raise ValueError("a block needs at least one sample")
    if len(ts) > MAX_SAMPLES:
        raise ValueError(f"a block holds at most {MAX_SAMPLES} samples")
    if ts.dtype.kind not in "iu":
        raise ValueError(f"timestamps must be integers, not {ts.dtype}")
    if ts.dtype.kind == "u" and ts.size and ts.max() > np.iinfo(np.int64).max:
        raise ValueError("timestamps out of the int64 range")
    if values.dtype.kind not in "fiu":
        raise ValueError(f"values must be numbers, not {values.dtype}")
    ts = ts.astype(np.int64, copy=False)
    values = values.astype(np.float64, copy=False)
    if not (ts[1:] > ts[:-1]).all():
        raise ValueError("timestamps must be strictly increasing")
    return np.ascontiguousarray(ts), np.ascontiguousarray(values)


def encode(ts: np.ndarray, values: np.ndarray) -> bytes:
    """One blob of a series' samples: ts int64 strictly increasing, values float64, n >= 1."""
    ts, values = _check_input(ts, values)
    n = len(ts)
    ts_step, ts_codes = _offset_deltas(ts, 0, 2**32 - 1)
    ts_width = _width(ts_codes)
    ts_bytes = _shuffle(ts_codes, ts_width)

    decimal = _decimal_mantissas(values)
    if decimal is not None:
        mode, (k, m) = MODE_DECIMAL, decimal
        v0 = int(m[0])
        value_step, codes = _offset_deltas(m, -(2**31), 2**31 - 1)
    else:
        mode, k, value_step = MODE_XOR, 0, 0
        bits = values.view(np.int64)
        xor = np.zeros_like(bits)
        np.bitwise_xor(bits[1:], bits[:-1], out=xor[1:])
        v0, codes = int(bits[0]), xor.view(np.uint64)
    value_width = _width(codes)

    body = ts_bytes + _shuffle(codes, value_width)
    flags = mode
    if body:
        packed = _local.compressor.compress(body)
        if len(packed) < len(body):
            flags |= FLAG_ZSTD
            body = packed
    header = (VERSION, flags, k, ts_width, value_width, n, int(ts[0]), v0, ts_step, value_step)
    return _HEADER.pack(*header) + body


# -- decoding ---------------------------------------------------------------


def _parse(blob: bytes) -> tuple:
    """The header fields and the raw (decompressed) body of one blob, validated."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ValueError(f"a blob is bytes, not {type(blob).__name__}")
    if len(blob) < HEADER_SIZE:
        raise ValueError("truncated block header")
    version, flags, k, ts_width, value_width, n, ts0, v0, ts_step, value_step = _HEADER.unpack_from(
        blob
    )
    if version != VERSION:
        raise ValueError(f"unknown block version {version}")
    mode = flags & _MODE_MASK
    if flags & ~(_MODE_MASK | FLAG_ZSTD):
        raise ValueError(f"unknown block flags {flags:#x}")
    if ts_width > 8 or value_width > 8 or k > MAX_DECIMALS or not 1 <= n <= MAX_SAMPLES:
        raise ValueError("corrupt block header")
    size = n * (ts_width + value_width)
    body = memoryview(blob)[HEADER_SIZE:]
    if flags & FLAG_ZSTD:
        # Checking the declared size first keeps a corrupt frame from
        # allocating more than the header promises.
        try:
            if zstandard.frame_content_size(body) != size:
                raise ValueError("corrupt block body: wrong size")
            body = _local.decompressor.decompress(body, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise ValueError(f"corrupt block body: {exc}") from None
    if len(body) != size:
        raise ValueError("corrupt block body: wrong size")
    return mode, k, ts_width, value_width, n, ts0, v0, ts_step, value_step, body


def _add_steps(x: np.ndarray, starts: np.ndarray, counts: np.ndarray, steps: np.ndarray) -> None:
    """In place: each blob's step added to its codes, except the first (which is 0)."""
    if steps.any():
        np.add(x, np.repeat(steps, counts), out=x)
        x[starts] = 0


def _restart_cumsum(
    x: np.ndarray, starts: np.ndarray, counts: np.ndarray, base: np.ndarray
) -> None:
    """In place: cumulative sums that restart at each blob start from that blob's base.

    One global cumsum, then each blob's offset subtracted; int64 wraps here as
    it did in the encoder, so the result is exact.
    """
    head = x[starts]
    np.cumsum(x, out=x)
    offsets = x[starts] - head - base
    np.subtract(x, np.repeat(offsets, counts), out=x)


def decode_many(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All blobs decoded and concatenated in order: (ts, values, counts per blob).

    Split with np.cumsum(counts). Raises ValueError for any corrupt blob.
    """
    parsed = [_parse(b) for b in blobs]
    if not parsed:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64)
    modes, ks, _, _, sizes, firsts_ts, firsts_value, ts_steps, value_steps, _ = zip(
        *parsed, strict=True
    )
    nblobs = len(parsed)
    counts = np.array(sizes, np.int64)
    total = int(counts.sum())
    starts = np.zeros(nblobs, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])

    # 1. Un-shuffle every body's byte planes into two (total, 8) byte arrays.
    # XOR blobs are finished here, blob by blob (an XOR accumulate cannot
    # restart per segment in one pass); the rest waits for the global passes.
    ts_planes = np.zeros((total, 8), np.uint8)
    value_planes = np.zeros((total, 8), np.uint8)
    value_codes = value_planes.view("<u8").reshape(total)
    xor_done: list[tuple[int, int, np.ndarray]] = []
    s = 0
    for mode, _, ts_width, value_width, n, _, first_value, _, _, body in parsed:
        raw = np.frombuffer(body, np.uint8)
        if ts_width:
            ts_planes[s : s + n, :ts_width] = raw[: n * ts_width].reshape(ts_width, n).T
        if value_width:
            value_planes[s : s + n, :value_width] = raw[n * ts_width :].reshape(value_width, n).T
        if mode == MODE_XOR:
            bits = np.bitwise_xor.accumulate(value_codes[s : s + n].view(np.int64))
            xor_done.append((s, n, np.bitwise_xor(bits, first_value, out=bits)))
        s += n
    ts0 = np.array(firsts_ts, np.int64)
    v0 = np.array(firsts_value, np.int64)
    scales = _POW10[np.array(ks, np.intp)]
    with np.errstate(over="ignore"):
        # 2. Timestamps: add each blob's step to its deltas, then sum them up.
        ts = ts_planes.view("<u8").reshape(total).view(np.int64)
        _add_steps(ts, starts, counts, np.array(ts_steps, np.int64))
        _restart_cumsum(ts, starts, counts, ts0)

        # 3. Decimal values the same way, all blobs in one pass (XOR blobs
        # compute garbage here and are overwritten below).
        m = value_codes.view(np.int64)
        _add_steps(m, starts, counts, np.array(value_steps, np.int64))
        _restart_cumsum(m, starts, counts, v0)
    # In place: each int64 becomes the float64 at the same address.
    values = np.divide(m, np.repeat(scales, counts), out=m.view(np.float64))
    bits = values.view(np.int64)
    for s, n, done in xor_done:
        bits[s : s + n] = done

    # 4. A corrupt body that passed the checksum (or a raw one) must not yield
    # timestamps that break the contract.
    if total > 1:
        bad = ts[1:] <= ts[:-1]
        bad[starts[1:] - 1] = False
        if bad.any():
            raise ValueError("corrupt block: timestamps not increasing")
    return ts, values, counts


def decode(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(ts int64, values float64) of one blob. Raises ValueError if it is corrupt."""
    ts, values, _ = decode_many([blob])
    return ts, values


# -- merging ----------------------------------------------------------------


def merge(
    ts_a: np.ndarray, values_a: np.ndarray, ts_b: np.ndarray, values_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Union of two sample sets sorted by ts; on equal ts the sample of b wins.

    b is meant to be the newer data (a sample re-sent after its window was
    compacted), so it replaces the stored one and each ts is kept once. Inputs
    need not be sorted; duplicates inside one input keep their last sample.
    """
    if len(ts_a) != len(values_a) or len(ts_b) != len(values_b):
        raise ValueError("timestamps and values differ in length")
    ts = np.concatenate([np.asarray(ts_a, np.int64), np.asarray(ts_b, np.int64)])
    values = np.concatenate([np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)])
    # A stable sort keeps a before b (and input order) among equal ts, so the
    # last of each run of equal ts is the one that wins.
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    values = values[order]
    keep = np.ones(len(ts), bool)
    keep[:-1] = ts[1:] != ts[:-1]
    return ts[keep], values[keep]
