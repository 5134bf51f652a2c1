from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import vigil.agent
from vigil.agent.collector import Collector
from vigil.agent.main import next_tick, run_agent
from vigil.agent.spool import Spool, SpoolLocked
from vigil.agent.tests.receiver import Key, Receiver, keys_of, wait_until

AGENT_DIR = Path(vigil.agent.__file__).parent
PROJECT_DIR = AGENT_DIR.parent.parent


class RecordingCollector(Collector):
    """The real collector, remembering every point it handed to the agent."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[Key] = set()
        self.collections = 0
        self._lock = threading.Lock()

    def collect(self, now: float) -> list[dict[str, Any]]:
        series = super().collect(now)
        with self._lock:
            self.keys |= keys_of({"host": "web-1", "series": series})
            self.collections += 1
        return series

    def snapshot(self) -> tuple[int, set[Key]]:
        with self._lock:
            return self.collections, set(self.keys)


def start_agent(
    receiver: Receiver, spool_dir: Path, collector: Collector
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_agent,
        kwargs={
            "url": receiver.url,
            "token": "t",
            "interval": 0.2,
            "spool_dir": spool_dir,
            "hostname": "web-1",
            "stop_event": stop,
            "max_backoff": 0.2,
            "collector": collector,
        },
    )
    thread.start()
    return thread, stop


def test_nothing_collected_while_the_server_is_down_is_lost(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.stop()
    collector = RecordingCollector()
    with caplog.at_level(logging.INFO, logger="vigil.agent"):
        thread, stop = start_agent(receiver, tmp_path, collector)
        try:
            assert wait_until(lambda: collector.snapshot()[0] >= 5)
            _, during_outage = collector.snapshot()
            assert receiver.requests == []
            receiver.start()
            assert wait_until(lambda: during_outage <= receiver.accepted_keys())
        finally:
            stop.set()
            started = time.monotonic()
            thread.join(5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 1.5

    # Anything collected after that was either accepted or still waits on disk.
    _, collected = collector.snapshot()
    waiting: set[Key] = set()
    for path in tmp_path.glob("*.json"):
        waiting |= keys_of(orjson.loads(path.read_bytes()))
    assert collected <= receiver.accepted_keys() | waiting
    assert {k[1] for k in during_outage} >= {"cpu_usage_percent", "load1", "memory_used_percent"}
    assert any(k[1] == "network_receive_bytes_per_second" for k in during_outage)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "unavailable (ConnectionRefusedError" in m]) == 1
    assert len([m for m in messages if "accepts data again" in m]) == 1


def test_it_sends_what_a_previous_run_left_in_the_spool(tmp_path: Path, receiver: Receiver) -> None:
    series = [{"metric": "load1", "labels": {}, "points": [[1_732_500_000, 0.5]]}]
    with Spool(tmp_path) as spool:
        spool.write("web-1", series, now=1_732_500_000)
    thread, stop = start_agent(receiver, tmp_path, Collector())
    try:
        assert wait_until(lambda: ("web-1", "load1", (), 1_732_500_000) in receiver.accepted_keys())
    finally:
        stop.set()
        thread.join(5)


def test_it_refuses_to_share_a_spool_with_another_agent(tmp_path: Path) -> None:
    with Spool(tmp_path), pytest.raises(SpoolLocked):
        run_agent("http://127.0.0.1:9", "t", spool_dir=tmp_path, stop_event=threading.Event())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "vigil.example.com"}, "must be http"),
        ({"hostname": "web 1"}, "host name 'web 1' is not valid"),
        ({"interval": 0}, "interval must be a positive"),
    ],
)
def test_it_fails_at_start_on_settings_every_batch_would_fail_with(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    args = {"url": "http://127.0.0.1:9", "token": "t", "spool_dir": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_agent(**args)


def test_it_collects_on_multiples_of_the_interval() -> None:
    assert next_tick(1_732_500_003.2, 10.0) == 1_732_500_010.0
    assert next_tick(1_732_500_010.0, 10.0) == 1_732_500_020.0
    assert next_tick(1_732_500_000.05, 0.2) == pytest.approx(1_732_500_000.2)


def run_main(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    code = "import sys; from vigil.agent.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_takes_the_token_from_the_environment_and_stops_cleanly_on_sigterm(
    tmp_path: Path, receiver: Receiver
) -> None:
    process = run_main(
        "--url", receiver.url, "--interval", "0.2", "--spool-dir", str(tmp_path),
        "--hostname", "web-1",
        env={"VIGIL_AGENT_TOKEN": "from-env"},
    )  # fmt: skip
    try:
        assert wait_until(lambda: len(receiver.requests) >= 1, timeout=10)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=5)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "SIGTERM received, stopping" in stderr
    assert receiver.requests[0].headers["Authorization"] == "Bearer from-env"
    assert receiver.requests[0].doc["host"] == "web-1"


def test_the_command_exits_with_usage_when_no_token_is_given(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_AGENT_TOKEN"}
    process = subprocess.run(
        [sys.executable, "-c", "from vigil.agent.main import main; main(['--url', 'http://x'])"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert process.returncode == 2
    assert "--token or $VIGIL_AGENT_TOKEN" in process.stderr


IMPORT_CHECK = """
import sys
import vigil.agent.main
print(sorted({m.split(".")[0] for m in sys.modules} & {"django", "celery", "kombu"}))
"""


def test_vigil_agent_imports_neither_django_nor_celery() -> None:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
