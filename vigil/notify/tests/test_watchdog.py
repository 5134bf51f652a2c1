"""The dead man's switch: pinged while the alert engine evaluates, silent
when it does not, so that someone learns the monitoring itself is down."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from vigil.alerts.models import Rule
from vigil.notify.tasks import watchdog_ping

pytestmark = pytest.mark.django_db


@pytest.fixture
def ping_url(settings):
    pings: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            pings.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.WATCHDOG_URL = f"http://127.0.0.1:{server.server_port}/ping/abc-123"
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8"
    yield pings
    server.shutdown()
    server.server_close()


def test_it_is_off_unless_a_url_is_set(settings):
    settings.WATCHDOG_URL = ""
    assert watchdog_ping() == "off"


def test_it_pings_while_the_engine_evaluates_and_stays_silent_when_it_stalls(ping_url):
    now = timezone.now()
    Rule.objects.update(last_evaluated=now - timedelta(seconds=20))
    assert watchdog_ping(now) == "ok"
    assert ping_url == ["/ping/abc-123"]
    Rule.objects.update(last_evaluated=now - timedelta(minutes=10))
    assert watchdog_ping(now) == "unhealthy"
    assert ping_url == ["/ping/abc-123"]


def test_the_ssrf_guard_applies_to_the_ping_url(ping_url, settings):
    settings.NOTIFY_ALLOWED_NETWORKS = ""
    Rule.objects.update(last_evaluated=timezone.now())
    assert watchdog_ping().startswith("error")
    assert ping_url == []
