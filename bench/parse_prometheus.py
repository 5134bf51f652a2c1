"""Prometheus text parser benchmark: samples per second on one core.

    .venv/bin/python bench/parse_prometheus.py [--seconds 3]

Parses a real node_exporter page (the test fixture, saved from Debian's
node_exporter 1.5.0) over and over, pinned to one CPU:
- warm: as on every scrape after the first, with the label sets of the page
  in the parser's cache;
- cold: the cache emptied before each parse (a first scrape, or pushes of
  label sets never seen);
- a synthetic page of 100,000 distinct series (cold by construction);
- node_exporter's canonical mapping (`derive`) on the parsed page;
- prometheus_client's parser on the same page, when it is importable, for
  comparison (it is not a dependency of Vigil).
Rates are per CPU second of this process (time.process_time), so that other
work on the machine does not skew them. It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vigil.ingest.canonical import node_exporter  # noqa: E402
from vigil.ingest.parsers import prometheus_text  # noqa: E402

FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "vigil/ingest/tests/fixtures/prometheus/node_exporter_1.5.0_a.txt"
)


def rate(label: str, samples_per_run: int, run, seconds: float) -> None:
    run()  # warm-up
    runs = 0
    # CPU time of this process: the figure holds on a machine shared with other work.
    started = time.process_time()
    while (elapsed := time.process_time() - started) < seconds:
        run()
        runs += 1
    per_second = samples_per_run * runs / elapsed
    print(f"{label:<44} {per_second:>12,.0f} samples/s  {elapsed / runs * 1e3:>8.2f} ms/run")


def synthetic(series: int) -> bytes:
    lines = ["# TYPE bench_requests_total counter"]
    for i in range(series):
        lines.append(
            f'bench_requests_total{{instance="host-{i % 500}",path="/api/v{i % 7}/items/{i}",'
            f'code="{200 + i % 5}"}} {i * 1.5}'
        )
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    page = FIXTURE.read_bytes()
    now = time.time()
    result = prometheus_text.parse(page, now)
    samples = result.points + result.non_finite
    print(f"Python {platform.python_version()} on {platform.processor() or platform.machine()}")
    lines = page.count(b"\n")
    print(f"page: {FIXTURE.name}, {len(page):,} bytes, {lines:,} lines, {samples} samples\n")

    def warm() -> None:
        prometheus_text.parse(page, now)

    rate("node_exporter page, warm label cache", samples, warm, args.seconds)

    def cold() -> None:
        prometheus_text._LABEL_CACHE.clear()
        prometheus_text.parse(page, now)

    rate("node_exporter page, cold label cache", samples, cold, args.seconds)

    big = synthetic(100_000)

    def cold_big() -> None:
        prometheus_text._LABEL_CACHE.clear()
        prometheus_text.parse(big, now)

    rate("100,000 distinct series (cold)", 100_000, cold_big, args.seconds)

    items = [(1, sp) for sp in result.series]
    rate("canonical derive on the parsed page", samples, lambda: node_exporter.derive(items), 1)

    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        print("\nprometheus_client is not installed: no comparison")
        return
    text = page.decode()

    def client() -> None:
        for family in text_string_to_metric_families(text):
            for _ in family.samples:
                pass

    rate("prometheus_client.parser (comparison)", samples, client, args.seconds)


if __name__ == "__main__":
    main()
