"""`vigil agent`: collect this machine's metrics into the spool and send them.

Two threads: the collection loop writes one batch per interval to the spool,
and the sender drains the spool whenever the server takes data. Neither waits
for the other, so a slow or absent server never delays a collection.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

from vigil.agent.backoff import Backoff
from vigil.agent.collector import Collector
from vigil.agent.sender import TIMEOUT, Sender, ingest_url
from vigil.agent.spool import DEFAULT_MAX_BYTES, Spool, SpoolLocked

log = logging.getLogger(__name__)

# What the server accepts as a host name (vigil/ingest/parsers/base.py HOST_RE);
# checked here so that a bad name fails at start instead of on every batch.
HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}$")


def default_spool_dir() -> Path:
    return Path(os.environ.get("VIGIL_AGENT_SPOOL_DIR") or "var/agent-spool")


def next_tick(now: float, interval: float) -> float:
    """The next multiple of `interval` after `now`: agents on all servers collect in step."""
    return (math.floor(now / interval) + 1) * interval


def run_agent(
    url: str,
    token: str,
    interval: float = 10.0,
    spool_dir: str | os.PathLike[str] | None = None,
    max_spool_bytes: int = DEFAULT_MAX_BYTES,
    hostname: str | None = None,
    stop_event: threading.Event | None = None,
    *,
    max_backoff: float = 60.0,
    collector: Collector | None = None,
) -> None:
    """Collect every `interval` seconds and send, until `stop_event` is set.

    Raises ValueError for a bad URL or host name and SpoolLocked when another
    agent uses the spool directory, before anything starts.
    """
    stop = stop_event if stop_event is not None else threading.Event()
    host = hostname or socket.gethostname()
    if not HOST_RE.match(host):
        raise ValueError(f"host name {host!r} is not valid for Vigil; set one with --hostname")
    if interval <= 0:
        raise ValueError("the interval must be a positive number of seconds")
    ingest_url(url)  # fail before taking the spool
    spool = Spool(spool_dir or default_spool_dir(), max_spool_bytes)
    sender_stop = threading.Event()
    thread: threading.Thread | None = None
    try:
        sender = Sender(spool, url, token, backoff=Backoff(maximum=max_backoff))
        thread = threading.Thread(
            target=sender.run, args=(sender_stop,), name="vigil-agent-sender", daemon=True
        )
        collector = collector or Collector()
        log.info(
            "vigil agent: host %s, every %gs, sending to %s, spool %s",
            host,
            interval,
            url,
            spool.directory,
        )
        thread.start()
        _collect_until(stop, collector, spool, host, interval)
    finally:
        sender_stop.set()
        spool.wake()
        if thread is not None and thread.is_alive():
            # A request in flight ends within its timeout; its batches stay spooled.
            thread.join(TIMEOUT + 5)
        spool.close()
        log.info("vigil agent stopped; %d batches wait in the spool", len(spool))


def _collect_until(
    stop: threading.Event, collector: Collector, spool: Spool, host: str, interval: float
) -> None:
    scheduled = next_tick(time.time(), interval)
    failing = False
    while not stop.wait(max(0.0, scheduled - time.time())):
        # A wait may end a hair before its deadline: stamp the scheduled time then.
        now = max(time.time(), scheduled)
        try:
            spool.write(host, collector.collect(now), now)
        except Exception:
            # A full disk or a psutil bug: keep trying every interval, say it once.
            if not failing:
                log.exception("agent: cannot collect or spool a batch; retrying every interval")
            failing = True
        else:
            if failing:
                log.info("agent: collecting and spooling again")
            failing = False
        scheduled = next_tick(now, interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vigil agent",
        description="Collect this machine's metrics and send them to a Vigil server. "
        "Batches are spooled on disk until the server has stored them.",
    )
    parser.add_argument(
        "--url", required=True, help="the Vigil server, e.g. https://vigil.example.com"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("VIGIL_AGENT_TOKEN"),
        help="ingest token (default: $VIGIL_AGENT_TOKEN, which keeps it out of `ps`)",
    )
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between collections")
    parser.add_argument(
        "--spool-dir",
        type=Path,
        default=default_spool_dir(),
        help="where batches wait for the server "
        "(default: $VIGIL_AGENT_SPOOL_DIR or ./var/agent-spool)",
    )
    parser.add_argument(
        "--max-spool-mb",
        type=float,
        default=DEFAULT_MAX_BYTES / (1024 * 1024),
        help="spool size limit; past it the oldest batches are dropped (default: 200)",
    )
    parser.add_argument("--hostname", help="host name to report (default: this machine's)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("an ingest token is required: --token or $VIGIL_AGENT_TOKEN")
    if args.interval <= 0:
        parser.error("--interval must be a positive number of seconds")
    if args.max_spool_mb <= 0:
        parser.error("--max-spool-mb must be positive")
    try:
        ingest_url(args.url)
    except ValueError as exc:
        parser.error(str(exc))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("vigil agent: %s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        run_agent(
            args.url,
            args.token,
            interval=args.interval,
            spool_dir=args.spool_dir,
            max_spool_bytes=int(args.max_spool_mb * 1024 * 1024),
            hostname=args.hostname,
            stop_event=stop,
        )
    except (SpoolLocked, ValueError) as exc:
        log.error("vigil agent: %s", exc)
        return 1
    return 0
