"""Helpers for the test suite: small builders and real processes, no mocks."""

from __future__ import annotations

import base64
import gzip
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import orjson

from vigil.servers.models import IngestToken, Server


def make_server(name: str = "web-1", **kw) -> Server:
    kw.setdefault("host_name", name)
    return Server.objects.create(name=name, **kw)


def make_token(server: Server | None = None, name: str = "test") -> str:
    return IngestToken.issue(name, server)[1]


def batch(host: str | None, *series: tuple[str, dict, list]) -> bytes:
    """A body in Vigil's JSON format from (metric, labels, points) tuples."""
    doc: dict = {"series": [{"metric": m, "labels": lb, "points": p} for m, lb, p in series]}
    if host is not None:
        doc["host"] = host
    return orjson.dumps(doc)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {encoded}"}


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def _postgres_url_for(database: str) -> str:
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    return f"{base}/{database}"


@contextmanager
def scratch_database():
    """A DATABASE_URL of its own for a `vigil run` subprocess.

    SQLite: None (the process uses its data dir). PostgreSQL: a new database,
    dropped afterwards, so that runs never see each other's rows.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield None
        return
    import psycopg

    name = f"vigil_e2e_{secrets.token_hex(4)}"
    admin = _postgres_url_for("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _postgres_url_for(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class VigilProcess:
    """`vigil run` as a subprocess on a free port with its own data dir."""

    def __init__(self, data_dir: Path, database_url: str | None, *args: str, port: int = 0):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VIGIL_", "CELERY_", "DJANGO_")) and k != "DATABASE_URL"
        }
        self.env["VIGIL_DATA_DIR"] = str(data_dir)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.log_path = data_dir / "vigil-run.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> VigilProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "run", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"vigil run exited:\n{self.log()}")
            try:
                return http_get(self.url + "/healthz", timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(healthy, timeout, what="vigil run to answer /healthz")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    @property
    def admin_password(self) -> str:
        return (self.data_dir / "admin-password").read_text().strip()

    def vigil(self, *args: str) -> str:
        """Run another `vigil` command against the same data dir and database."""
        out = subprocess.run(
            [sys.executable, "-m", "vigil.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return out.stdout


def store(server: Server, metric: str, points, labels: dict[str, str] | None = None) -> None:
    """Write points for a server through the real writer."""
    from django.db import transaction

    from vigil.ingest import writer
    from vigil.ingest.parsers.base import SeriesPoints

    ts = [int(t) for t, _ in points]
    values = [float(v) for _, v in points]
    sp = SeriesPoints(server.host_name, metric, tuple(sorted((labels or {}).items())), ts, values)
    with transaction.atomic():
        writer.write_now([(server.pk, sp)])


@contextmanager
def celery_worker(database_settings: dict, **env: str):
    """A real `celery -A vigil worker` (two processes) on the test database."""
    from vigil.celery import app

    app.control.purge()
    s = database_settings
    database_url = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "vigil", "worker", "--concurrency=2", "-l", "info"],
        env={
            **os.environ,
            "DATABASE_URL": database_url,
            "VIGIL_TESTING": "1",
            "DJANGO_SETTINGS_MODULE": "vigil.settings",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the Celery worker did not start:\n{proc.stdout.read()}")
        yield app
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class hold_write_lock:
    """Take the database's write lock from another connection, as a long job would."""

    def __enter__(self):
        from django.db import connection

        settings_dict = connection.settings_dict
        if connection.vendor == "sqlite":
            import sqlite3

            self.conn = sqlite3.connect(settings_dict["NAME"], isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(
                dbname=settings_dict["NAME"],
                user=settings_dict["USER"],
                host=settings_dict["HOST"],
                port=settings_dict["PORT"] or 5432,
            )
            self.conn.execute("LOCK TABLE metrics_sample IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


@contextmanager
def ingest_blocked_by_a_lock(settings):
    """Group-committed ingest whose writer cannot get the write lock: a request
    waits 1 s, then is answered 503. On exit the lock is released and the
    waiting batch is written before the test's database is cleaned."""
    from vigil.ingest import writer

    settings.INGEST_GROUP_COMMIT = True
    committer = writer.GroupCommitter(max_rows=1000, queue_max_rows=1000, timeout=1.0)
    writer._committer, saved = committer, writer._committer
    try:
        with hold_write_lock():
            yield
    finally:
        committer.close()
        writer._committer = saved


def requires_celery_worker() -> list:
    """Marks of tests that start a worker: a broker, and PostgreSQL shared with it."""
    import pytest

    return [
        pytest.mark.e2e,
        pytest.mark.skipif(
            not os.environ.get("CELERY_BROKER_URL"), reason="CELERY_BROKER_URL is not set"
        ),
        pytest.mark.skipif(
            not os.environ.get("DATABASE_URL", "").startswith("postgres"),
            reason="a worker process shares the test database on PostgreSQL only",
        ),
    ]


@contextmanager
def logged_in_page(browser, vigil_server, height: int = 1400):
    """A page logged in as the admin of `vigil_server`; script dialogs are
    dismissed and kept in `page.dialogs`, so a test can assert none opened."""
    context = browser.new_context(viewport={"width": 1280, "height": height})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.goto(vigil_server.url + "/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", vigil_server.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(vigil_server.url + "/")
    try:
        yield page
    finally:
        context.close()
