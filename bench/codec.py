"""Block codec figures: bytes per sample, encode and decode rates, decode_many of 2,400 blocks.

    .venv/bin/python bench/codec.py                     # synthetic agent-like series
    .venv/bin/python bench/codec.py --sqlite PATH       # every series of a Vigil SQLite DB

With --sqlite, every series in metrics_sample is cut into blocks of --window
seconds (as compaction does) and encoded; bytes per sample are printed overall,
per metric family (node_exporter's native node_*, collectd's native plugin/type
names, canonical names) and per metric, with zstd levels, zlib for comparison,
and what rounding the values that need the XOR fallback would give.

It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vigil.metrics import codec  # noqa: E402

Block = tuple[np.ndarray, np.ndarray]


# -- data -------------------------------------------------------------------


def load_sqlite(path: str, window: int) -> dict[tuple[str, int], list[Block]]:
    """{(metric, series_id): blocks} of every series in the database, cut per window."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = dict(db.execute("SELECT id, metric FROM metrics_series"))
    rows = db.execute("SELECT series_id, ts, value FROM metrics_sample ORDER BY series_id, ts")
    data = np.array(rows.fetchall(), dtype=object)
    db.close()
    out: dict[tuple[str, int], list[Block]] = {}
    if not len(data):
        return out
    ids = data[:, 0].astype(np.int64)
    ts = data[:, 1].astype(np.int64)
    values = data[:, 2].astype(np.float64)
    for sid in np.unique(ids):
        sel = ids == sid
        s_ts, s_values = ts[sel], values[sel]
        cuts = np.flatnonzero(np.diff(s_ts // window)) + 1
        blocks = list(zip(np.split(s_ts, cuts), np.split(s_values, cuts), strict=True))
        out[(names.get(int(sid), "?"), int(sid))] = blocks
    return out


def synthetic(series: int = 200, blocks: int = 12, n: int = 720, seed: int = 1):
    """Agent-like series: percentages and load with 2 places, byte counters, byte rates."""
    rng = np.random.default_rng(seed)
    out: dict[tuple[str, int], list[Block]] = {}
    for sid in range(series):
        kind = ("cpu_usage_percent", "load1", "node_network_receive_bytes_total", "rate")[sid % 4]
        level = rng.uniform(1, 90)
        counter = float(rng.integers(10**9, 10**12))
        out[(kind, sid)] = []
        for b in range(blocks):
            steps = np.where(rng.random(n) < 0.02, 11, 10)
            ts = 1_700_000_000 + b * n * 10 + np.cumsum(steps) - steps[0]
            if kind == "cpu_usage_percent":
                values = np.round(np.clip(level + np.cumsum(rng.normal(0, 1, n)), 0, 100), 2)
            elif kind == "load1":
                values = np.round(np.abs(level / 30 + np.cumsum(rng.normal(0, 0.02, n))), 2)
            elif kind == "node_network_receive_bytes_total":
                values = counter + np.cumsum(rng.integers(0, 200_000, n)).astype(float)
                counter = values[-1]
            else:  # a rate from counter deltas over the exact time between scrapes
                values = rng.integers(0, 200_000, n) / rng.normal(10, 0.01, n)
            out[(kind, sid)].append((ts.astype(np.int64), values))
    return out


def family(metric: str) -> str:
    if metric.startswith("node_"):
        return "node_exporter native (node_*)"
    if "/" in metric:
        return "collectd native (plugin/type)"
    return "canonical"


# -- measuring --------------------------------------------------------------


def use_level(level: int) -> None:
    codec._local.compressor = zstandard.ZstdCompressor(
        level=level, write_checksum=True, write_content_size=True
    )


def mode_of(blob: bytes) -> str:
    return "xor" if blob[1] & 1 == codec.MODE_XOR else "decimal"


def raw_body(blob: bytes) -> bytes:
    body = blob[codec.HEADER_SIZE :]
    if blob[1] & codec.FLAG_ZSTD:
        body = zstandard.ZstdDecompressor().decompress(body)
    return body


def round_sig(values: np.ndarray, digits: int) -> np.ndarray:
    """values rounded to `digits` significant digits, as parsing "%.{digits}g" text gives."""
    return np.array([float(f"{v:.{digits}g}") for v in values.tolist()])


def size_table(data, label: str) -> list[Block]:
    """Print bytes/sample tables; return the xor-mode blocks."""
    per_family = defaultdict(lambda: [0, 0])
    per_metric = defaultdict(lambda: [0, 0, 0, defaultdict(int)])
    total_bytes = total_samples = 0
    xor_blocks: list[Block] = []
    for (metric, _sid), blocks in data.items():
        per_metric[metric][2] += 1
        for ts, values in blocks:
            blob = codec.encode(ts, values)
            per_family[family(metric)][0] += len(blob)
            per_family[family(metric)][1] += len(ts)
            per_metric[metric][0] += len(blob)
            per_metric[metric][1] += len(ts)
            per_metric[metric][3][mode_of(blob)] += len(ts)
            total_bytes += len(blob)
            total_samples += len(ts)
            if mode_of(blob) == "xor":
                xor_blocks.append((ts, values))
    nblocks = sum(len(b) for b in data.values())
    print(
        f"\n{label}: {len(data)} series, {nblocks} blocks, {total_samples} samples, "
        f"{total_samples / max(nblocks, 1):.0f} samples/block"
    )
    print(f"  all: {total_bytes / total_samples:.3f} B/sample (zstd level {codec.ZSTD_LEVEL})")
    for name, (b, n) in sorted(per_family.items()):
        print(f"  {name:34} {b / n:6.3f} B/sample  ({n} samples)")
    print("\n  per metric (B/sample, series, samples, share of samples by value mode):")
    rows = sorted(per_metric.items(), key=lambda kv: -kv[1][0] / kv[1][1])
    for metric, (b, n, series, modes) in rows:
        share = " ".join(f"{m}={c / n:.0%}" for m, c in sorted(modes.items()))
        print(f"    {metric[:52]:52} {b / n:6.2f}  {series:4d} {n:7d}  {share}")
    return xor_blocks


def compare_coders(data) -> None:
    blocks = [b for bs in data.values() for b in bs]
    samples = sum(len(t) for t, _ in blocks)
    print("\ncoders over all blocks (B/sample):")
    for level in (1, 3, 9, 19):
        use_level(level)
        size = sum(len(codec.encode(t, v)) for t, v in blocks)
        print(f"  codec + zstd level {level:2d}:            {size / samples:6.3f}")
    use_level(codec.ZSTD_LEVEL)
    blobs = [codec.encode(t, v) for t, v in blocks]
    for level in (6, 9):
        size = sum(codec.HEADER_SIZE + len(zlib.compress(raw_body(b), level)) for b in blobs)
        print(f"  codec transform + zlib level {level}:    {size / samples:6.3f}")
    for level in (6, 9):
        size = sum(len(zlib.compress(t.tobytes() + v.tobytes(), level)) for t, v in blocks)
        print(f"  raw int64+float64 + zlib level {level}:  {size / samples:6.3f}")
    size = sum(len(zstandard.ZstdCompressor(level=19).compress(t.tobytes() + v.tobytes()))
               for t, v in blocks)  # fmt: skip
    print(f"  raw int64+float64 + zstd level 19:  {size / samples:6.3f}")
    print("  raw:                                16.000")


def rounding(xor_blocks: list[Block]) -> None:
    """What rounding the values that need the XOR fallback would give, if ingest did it."""
    if not xor_blocks:
        print("\nno block needed the XOR fallback")
        return
    samples = sum(len(t) for t, _ in xor_blocks)
    lossless = sum(len(codec.encode(t, v)) for t, v in xor_blocks)
    print(f"\nblocks that need the XOR fallback: {len(xor_blocks)}, {samples} samples")
    print(f"  lossless:                  {lossless / samples:6.3f} B/sample")
    for digits in (4, 6, 8):
        size = sum(len(codec.encode(t, round_sig(v, digits))) for t, v in xor_blocks)
        print(f"  {digits} significant digits:     {size / samples:6.3f} B/sample")
    for places in (0, 1, 2, 3):
        size = sum(len(codec.encode(t, np.round(v, places))) for t, v in xor_blocks)
        print(f"  {places} decimal places:         {size / samples:6.3f} B/sample")


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def speed(data, repeat: int) -> None:
    blocks = [b for bs in data.values() for b in bs]
    full = [b for b in blocks if len(b[0]) >= 500] or blocks
    samples = sum(len(t) for t, _ in full)
    blobs = [codec.encode(t, v) for t, v in full]
    enc = best(lambda: [codec.encode(t, v) for t, v in full], repeat)
    dec = best(lambda: [codec.decode(b) for b in blobs], repeat)
    print(f"\nspeed on {len(full)} blocks of {samples / len(full):.0f} samples on average:")
    print(f"  encode:           {samples / enc / 1e6:6.2f} M samples/s")
    print(f"  decode one by one:{samples / dec / 1e6:6.2f} M samples/s")
    many = [blobs[i % len(blobs)] for i in range(2400)]
    n = sum(len(full[i % len(full)][0]) for i in range(2400))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        codec.decode_many(many)
        times.append(time.perf_counter() - start)
    print(
        f"  decode_many of 2,400 blocks ({n} samples): best {min(times) * 1e3:.1f} ms, "
        f"median {statistics.median(times) * 1e3:.1f} ms "
        f"({n / min(times) / 1e6:.1f} M samples/s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", help="a Vigil SQLite database to read every series from")
    parser.add_argument("--window", type=int, default=7200, help="block window in seconds")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"zstandard {zstandard.__version__}, {platform.machine()}")  # fmt: skip
    if args.sqlite:
        data = load_sqlite(args.sqlite, args.window)
        label = f"{args.sqlite} (window {args.window} s)"
    else:
        data = synthetic()
        label = "synthetic (200 series, 12 blocks of 720 samples each)"
    xor_blocks = size_table(data, label)
    compare_coders(data)
    rounding(xor_blocks)
    speed(data, args.repeat)
    if args.sqlite:
        speed(synthetic(), args.repeat)


if __name__ == "__main__":
    main()
