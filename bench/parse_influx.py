"""Line protocol parse rate on one core: fields per second through influx_line.parse.

    .venv/bin/python bench/parse_influx.py [--seconds 3] [--json]

Bodies are what Telegraf sends with its default inputs (cpu per core and total,
mem, swap, disk, diskio, net, system, kernel, processes): batches of 1,000
lines (Telegraf's default metric_batch_size) over 100 hosts. Measured cases:

- telegraf:  the default inputs, as sent (almost all lines take the fast path)
- escaped:   the same with an escaped space in every measurement and a quoted
             string field on every line (every line takes the careful scanner)
- cold:      telegraf with the key cache emptied before every body, as on the
             first request of each agent

It prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vigil.ingest.canonical.telegraf import COUNTERS  # noqa: E402
from vigil.ingest.parsers import influx_line  # noqa: E402

LINES_PER_BODY = 1000
NOW = int(time.time())


def _host_lines(host: str, ts: int, cores: int = 8) -> list[str]:
    t = f"{ts * 1_000_000_000}"
    lines = []
    for cpu in [f"cpu{i}" for i in range(cores)] + ["cpu-total"]:
        lines.append(
            f"cpu,cpu={cpu},host={host} usage_active=17.616580305880305,"
            "usage_guest=1.036269430422946,usage_guest_nice=0,usage_idle=82.3834196941197,"
            "usage_iowait=0,usage_irq=0,usage_nice=0,usage_softirq=1.0362694300459534,"
            f"usage_steal=0,usage_system=4.145077721691784,usage_user=11.398963731636465 {t}"
        )
    lines += [
        f"mem,host={host} active=9299595264i,available=16818249728i,"
        "available_percent=80.41654254645131,buffered=2383761408i,cached=13316689920i,"
        "free=1877688320i,inactive=7549939712i,total=20913917952i,used=3335778304i,"
        f"used_percent=15.95004011996231 {t}",
        f"swap,host={host} free=1715331072i,total=20855394304i,used=9476448256i,"
        f"used_percent=45.43883523785713 {t}",
        f"swap,host={host} in=0i,out=0i {t}",
        f"disk,device=sda1,fstype=ext4,host={host},mode=rw,path=/ free=398407520256i,"
        "inodes_free=97267461i,inodes_total=121847806i,inodes_used=24580345i,"
        f"total=499088621568i,used=100418957312i,used_percent=20.131039916242397 {t}",
        f"disk,device=sdb1,fstype=xfs,host={host},mode=rw,path=/var/lib free=98407520256i,"
        "inodes_free=9726746i,inodes_total=12184780i,inodes_used=2458034i,"
        f"total=199088621568i,used=100418957312i,used_percent=50.5 {t}",
        f"diskio,host={host},name=sda io_time=1317i,iops_in_progress=0i,merged_reads=0i,"
        "merged_writes=0i,read_bytes=38956544i,read_time=1357i,reads=2495i,"
        f"weighted_io_time=1404i,write_bytes=2117632i,write_time=49i,writes=10i {t}",
        f"net,host={host},interface=eth0 bytes_recv=3284081640i,bytes_sent=451838509i,"
        "drop_in=4i,drop_out=0i,err_in=0i,err_out=0i,packets_recv=3585442i,"
        f"packets_sent=2663590i {t}",
        f"system,host={host} load1=3.72,load15=2.1,load5=2.4,n_cpus=8i,n_users=3i {t}",
        f"system,host={host} uptime=1249632i {t}",
        f"kernel,host={host} boot_time=1482712049i,context_switches=1304089616i,"
        f"entropy_avail=3594i,interrupts=660452373i,processes_forked=4315786i {t}",
        f"processes,host={host} blocked=0i,dead=0i,idle=40i,paging=0i,running=1i,"
        f"sleeping=293i,stopped=0i,total=334i,total_threads=1157i,unknown=0i,zombies=0i {t}",
    ]
    return lines


def _escaped(line: str) -> str:
    """The line with an escaped space in its measurement and a quoted string field."""
    measurement, rest = line.split(",", 1)
    head, ts = f"{measurement}\\ x,{rest}".rsplit(" ", 1)
    return f'{head},note="a \\"quoted\\", string" {ts}'


def bodies(escaped: bool = False) -> list[bytes]:
    lines: list[str] = []
    for step in range(3):
        for h in range(100):
            lines += _host_lines(f"web-{h:03d}.example.org", NOW - 60 + step * 10)
    if escaped:
        lines = [_escaped(line) for line in lines]
    return [
        ("\n".join(lines[i : i + LINES_PER_BODY]) + "\n").encode()
        for i in range(0, len(lines), LINES_PER_BODY)
    ]


def measure(name: str, data: list[bytes], seconds: float, cold: bool = False) -> dict:
    """Rounds of one pass over every body, timed in CPU time of this process.

    The best round is what the parser does on a quiet core; the median shows
    the noise of a shared machine. Both include the garbage collector.
    """
    for body in data:  # warm up, and check that everything parses
        result = influx_line.parse(body, NOW, counters=COUNTERS)
        assert not result.errors, result.errors[:3]
    fields = sum(influx_line.parse(b, NOW, counters=COUNTERS).points for b in data)
    strings = sum(influx_line.parse(b, NOW, counters=COUNTERS).strings_skipped for b in data)
    lines = sum(b.count(b"\n") for b in data)
    size = sum(map(len, data))
    rounds: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(rounds) < 5:
        started = time.process_time()
        for body in data:
            if cold:
                influx_line._clear_caches()
            influx_line.parse(body, NOW, counters=COUNTERS)
        rounds.append(time.process_time() - started)
    best, median = min(rounds), statistics.median(rounds)
    return {
        "case": name,
        "fields_per_second_best": round((fields + strings) / best),
        "fields_per_second_median": round((fields + strings) / median),
        "lines_per_second_best": round(lines / best),
        "mb_per_second_best": round(size / best / 1e6, 1),
        "fields_per_line": round((fields + strings) / lines, 1),
        "rounds": len(rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    results = [
        measure("telegraf", bodies(), args.seconds),
        measure("escaped", bodies(escaped=True), args.seconds),
        measure("cold", bodies(), args.seconds, cold=True),
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"python {platform.python_version()} on {platform.machine()}, one core")
    print(
        f"{'case':<10} {'fields/s best':>14} {'fields/s median':>16} {'lines/s best':>13} "
        f"{'MB/s best':>10} {'fields/line':>12}"
    )
    for r in results:
        print(
            f"{r['case']:<10} {r['fields_per_second_best']:>14,} "
            f"{r['fields_per_second_median']:>16,} {r['lines_per_second_best']:>13,} "
            f"{r['mb_per_second_best']:>10} {r['fields_per_line']:>12}"
        )


if __name__ == "__main__":
    main()
