"""How fast the collectd JSON parser reads value lists, on one core.

    .venv/bin/python bench/parse_collectd.py [--seconds 3]

The value lists are those of real collectd 5.12 bodies (the test fixtures),
re-stamped and repeated:
1. 4 KiB bodies, as write_http sends with its default BufferSize;
2. 1 MiB bodies (BufferSize 1048576), where per-body costs vanish;
3. 1 MiB bodies whose every value list has a new name (no name cache hits);
4. the same 1 MiB bodies from StoreRates true (rates, nulls).
It prints value lists and data source values per second for each. It is not a test.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import orjson

from vigil.ingest.parsers.collectd_json import parse

FIXTURES = Path(__file__).parent.parent / "vigil" / "ingest" / "tests" / "fixtures" / "collectd"
NOW = time.time()


def value_lists(scenario: str) -> list[dict]:
    docs = [orjson.loads(p.read_bytes()) for p in sorted((FIXTURES / scenario).glob("*.json"))]
    lists = [vl for doc in docs for vl in doc]
    shift = int(NOW - 60 - max(vl["time"] for vl in lists))
    return [vl | {"time": round(vl["time"] + shift, 3)} for vl in lists]


def bodies(lists: list[dict], size: int, total: int, unique_names: bool = False) -> list[bytes]:
    """Bodies of about `size` bytes holding `total` value lists in all."""
    out: list[bytes] = []
    batch: list[bytes] = []
    length = 2
    for i in range(total):
        vl = lists[i % len(lists)]
        if unique_names:
            vl = vl | {"type_instance": f"{vl['type_instance']}{i}"}
        encoded = orjson.dumps(vl)
        if batch and length + len(encoded) + 1 > size:
            out.append(b"[" + b",".join(batch) + b"]")
            batch, length = [], 2
        batch.append(encoded)
        length += len(encoded) + 1
    if batch:
        out.append(b"[" + b",".join(batch) + b"]")
    return out


def measure(name: str, payloads: list[bytes], seconds: float, store_rates: bool | None) -> None:
    lists = sum(len(orjson.loads(b)) for b in payloads)
    values = sum(len(vl["values"]) for b in payloads for vl in orjson.loads(b))
    size = sum(len(b) for b in payloads)
    rounds = 0
    started = time.perf_counter()
    while True:
        for payload in payloads:
            result = parse(payload, NOW, store_rates)
            assert not result.errors, result.errors[:1]
        rounds += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
    rate = rounds * lists / elapsed
    print(
        f"{name:<44} {rate:>12,.0f} {rounds * values / elapsed:>12,.0f} "
        f"{rounds * size / elapsed / 2**20:>8.1f} {rounds * len(payloads) / elapsed:>10,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    args = parser.parse_args()
    default = value_lists("default")
    rates = value_lists("store-rates")
    print(f"collectd JSON parser, one core: {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"{'':<44} {'lists/s':>12} {'values/s':>12} {'MiB/s':>8} {'bodies/s':>10}")
    measure("4 KiB bodies (default BufferSize)", bodies(default, 4096, 20_000), args.seconds, None)
    big = bodies(default, 2**20, 40_000)
    measure("1 MiB bodies", big, args.seconds, None)
    measure(
        "1 MiB bodies, every name new", bodies(default, 2**20, 40_000, True), args.seconds, None
    )
    measure("1 MiB bodies, StoreRates true", bodies(rates, 2**20, 40_000), args.seconds, True)


if __name__ == "__main__":
    main()
