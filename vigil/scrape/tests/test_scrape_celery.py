"""scrape_due through a real broker and a real Celery worker process.

Runs when CELERY_BROKER_URL is set and the database is PostgreSQL (CI's second pass).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from vigil.metrics.models import Sample
from vigil.scrape.models import ScrapeTarget
from vigil.testing import celery_worker, free_port, make_server, requires_celery_worker

pytestmark = requires_celery_worker()


class Exporter(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        body = b"# TYPE node_load1 gauge\nnode_load1 0.75\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def exporter():
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Exporter)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def worker(transactional_db):
    with celery_worker(
        connection.settings_dict, VIGIL_SCRAPE_ALLOWED_NETWORKS="127.0.0.1/32"
    ) as app:
        yield app


def test_workers_scrape_each_due_target_once_through_the_broker(worker, exporter):
    from vigil.scrape.celery_tasks import scrape_due

    server = make_server("node-1")
    for i in range(3):
        ScrapeTarget.objects.create(server=server, url=f"{exporter}?{i}")
    results = [scrape_due.delay(time.time()) for _ in range(4)]
    counts = [r.get(timeout=30) for r in results]
    assert sum(c["scraped"] for c in counts) == 3
    assert sum(c["failed"] for c in counts) == 0
    assert Sample.objects.filter(series__metric="load1").count() >= 1
    assert not ScrapeTarget.objects.exclude(last_error="").exists()
