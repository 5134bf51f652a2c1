"""Lossless compressed blocks of one series' samples, and fast decoding of many at once.

Raw samples older than a couple of hours are compacted into one blob per series
per time window. A blob is a fixed 25-byte header and a body:

    header  "<BBBBBIqq": version, flags, k, ts_width, value_width, n, ts0, v0
    body    zstd frame (with checksum) of two integer streams, each byte-shuffled:
            n * ts_width bytes of timestamp codes, n * value_width bytes of value codes

Timestamps: delta-of-delta, zigzagged. A regular interval gives all zeros, so
jitter and gaps are all that cost anything.

Values, the first mode that fits the whole block:
1. Decimal: the smallest k in 0..15 such that every value is exactly m / 10**k
   for an integer |m| < 2**53 (bit-exact, so -0.0, NaN and inf never qualify).
   Agents send decimal text (percentages with 2 places, byte counters, load
   averages), and this turns those values into small integers. The mantissas
   are then delta or delta-of-delta coded (whichever compresses smaller:
   delta-of-delta wins on counters growing at a steady rate), zigzagged.
2. XOR with the previous value's IEEE bits (as Gorilla does): round-trips any
   float, NaN payloads included. Slowly changing noisy values share their
   sign, exponent and top mantissa bits, which become zero bytes.

Each stream is stored as its `width` low byte planes only (the planes above
are zero for the whole block), plane after plane ("byte shuffle"): the zeros of
the high bytes and the repeats of low bytes form long runs that zstd squeezes.
We measured this layout against the alternatives; figures are in
docs/benchmarks.md and `bench/codec.py` reproduces them.

Decoding many blobs is one Python loop that only decompresses and un-shuffles
bytes into one preallocated array; every arithmetic step (zigzag, the
segmented cumulative sums and XORs, the decimal scaling) then runs once over
the concatenation of all blobs with numpy.

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

_HEADER = struct.Struct("<BBBBBIqq")
HEADER_SIZE = _HEADER.size

# flags: the low 2 bits are the value mode; bit 2 says the body is a zstd frame
# (tiny blocks that zstd would grow are stored raw).
MODE_DECIMAL_DELTA = 0
MODE_DECIMAL_DOD = 1
MODE_XOR = 2
_MODE_MASK = 0b11
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


def _zigzag(x: np.ndarray) -> np.ndarray:
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    """Inverse of _zigzag on uint64 codes (returned as int64)."""
    return (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)


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
    ts_codes = _zigzag(_deltas(_deltas(ts)))
    ts_width = _width(ts_codes)
    ts_bytes = _shuffle(ts_codes, ts_width)

    candidates: list[tuple[int, int, int, np.ndarray]] = []  # (mode, k, v0, codes)
    decimal = _decimal_mantissas(values)
    if decimal is not None:
        k, m = decimal
        first = _deltas(m)
        candidates.append((MODE_DECIMAL_DELTA, k, int(m[0]), _zigzag(first)))
        if n > 2:
            candidates.append((MODE_DECIMAL_DOD, k, int(m[0]), _zigzag(_deltas(first))))
    else:
        bits = values.view(np.int64)
        xor = np.zeros_like(bits)
        np.bitwise_xor(bits[1:], bits[:-1], out=xor[1:])
        candidates.append((MODE_XOR, 0, int(bits[0]), xor.view(np.uint64)))

    best = b""
    for mode, k, v0, codes in candidates:
        value_width = _width(codes)
        raw = ts_bytes + _shuffle(codes, value_width)
        flags = mode
        body = raw
        if raw:
            packed = _local.compressor.compress(raw)
            if len(packed) < len(raw):
                flags |= FLAG_ZSTD
                body = packed
        blob = _HEADER.pack(VERSION, flags, k, ts_width, value_width, n, int(ts[0]), v0) + body
        if not best or len(blob) < len(best):
            best = blob
    return best


# -- decoding ---------------------------------------------------------------


def _parse(blob: bytes) -> tuple[int, int, int, int, int, int, int, bytes]:
    """The header fields and the raw (decompressed) body of one blob, validated."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise ValueError(f"a blob is bytes, not {type(blob).__name__}")
    if len(blob) < HEADER_SIZE:
        raise ValueError("truncated block header")
    version, flags, k, ts_width, value_width, n, ts0, v0 = _HEADER.unpack_from(blob)
    if version != VERSION:
        raise ValueError(f"unknown block version {version}")
    mode = flags & _MODE_MASK
    if flags & ~(_MODE_MASK | FLAG_ZSTD) or mode > MODE_XOR:
        raise ValueError(f"unknown block flags {flags:#x}")
    if ts_width > 8 or value_width > 8 or k > MAX_DECIMALS or not 1 <= n <= MAX_SAMPLES:
        raise ValueError("corrupt block header")
    size = n * (ts_width + value_width)
    body = bytes(blob[HEADER_SIZE:])
    if flags & FLAG_ZSTD:
        # Checking the declared size first keeps a corrupt frame from
        # allocating more than the header promises.
        try:
            declared = zstandard.frame_content_size(body)
        except zstandard.ZstdError as exc:
            raise ValueError(f"corrupt block body: {exc}") from None
        if declared != size:
            raise ValueError("corrupt block body: wrong size")
        try:
            body = _local.decompressor.decompress(body, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise ValueError(f"corrupt block body: {exc}") from None
    if len(body) != size:
        raise ValueError("corrupt block body: wrong size")
    return mode, k, ts_width, value_width, n, ts0, v0, body


def _unzigzag_inplace(codes: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Zigzag codes (uint64) turned into the int64 they encode, in the same memory."""
    x = codes.view(np.int64)
    np.bitwise_and(x, 1, out=scratch)
    np.negative(scratch, out=scratch)
    np.right_shift(codes, np.uint64(1), out=codes)
    np.bitwise_xor(x, scratch, out=x)
    return x


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
    nblobs = len(parsed)
    counts = np.fromiter((p[4] for p in parsed), np.int64, nblobs)
    total = int(counts.sum())
    starts = np.zeros(nblobs, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), counts

    # 1. Un-shuffle every body's byte planes into two (total, 8) byte arrays.
    # XOR blobs are finished here, blob by blob (an XOR accumulate cannot
    # restart per segment in one pass); the rest waits for the global passes.
    ts_planes = np.zeros((total, 8), np.uint8)
    value_planes = np.zeros((total, 8), np.uint8)
    value_codes = value_planes.view("<u8").reshape(total)
    ts0 = np.empty(nblobs, np.int64)
    v0 = np.zeros(nblobs, np.int64)
    ks = np.zeros(nblobs, np.intp)
    xor_done: list[tuple[int, int, np.ndarray]] = []
    for i, (mode, k, ts_width, value_width, n, first_ts, first_value, body) in enumerate(parsed):
        s = int(starts[i])
        raw = np.frombuffer(body, np.uint8)
        if ts_width:
            ts_planes[s : s + n, :ts_width] = raw[: n * ts_width].reshape(ts_width, n).T
        if value_width:
            value_planes[s : s + n, :value_width] = raw[n * ts_width :].reshape(value_width, n).T
        ts0[i] = first_ts
        if mode == MODE_XOR:
            bits = np.bitwise_xor.accumulate(value_codes[s : s + n].view(np.int64))
            xor_done.append((s, n, bits ^ first_value))
        else:
            v0[i] = first_value
            ks[i] = k
    scratch = np.empty(total, np.int64)
    no_base = np.zeros(nblobs, np.int64)

    with np.errstate(over="ignore"):
        # 2. Timestamps: two cumulative sums undo the delta-of-delta.
        ts = _unzigzag_inplace(ts_planes.view("<u8").reshape(total), scratch)
        _restart_cumsum(ts, starts, counts, no_base)
        _restart_cumsum(ts, starts, counts, ts0)

        # 3. Decimal values, all blobs in one pass (XOR blobs compute garbage
        # here and are overwritten below).
        m = _unzigzag_inplace(value_codes, scratch)
        dod = np.array([p[0] == MODE_DECIMAL_DOD for p in parsed])
        if dod.any():
            # Delta-of-delta blobs take a second sum; the others keep the first.
            _restart_cumsum(m, starts, counts, no_base)
            first = m.copy()
            _restart_cumsum(m, starts, counts, v0)
            delta_samples = np.repeat(~dod, counts)
            np.add(first, np.repeat(v0, counts), out=first)
            np.copyto(m, first, where=delta_samples)
        else:
            _restart_cumsum(m, starts, counts, v0)
    values = m.astype(np.float64)
    np.divide(values, np.repeat(_POW10[ks], counts), out=values)
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
