"""What the tests of the operator's side (pages, API, admin, CLI) share: a
real HTTP receiver on 127.0.0.1, users with given permissions, channels
with secrets that must never be seen again, and failed deliveries."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.contrib.auth.models import Permission, User
from django.utils import timezone

from vigil.alerts.models import Notification, Rule
from vigil.notify.models import Attempt, Channel, Delivery

# Secrets of the test channels: none of them may appear in any answer.
ROUTING_KEY = "Zq7RoutingKey0000000000000000Xy9"  # 32 letters and digits
SIGNING_KEY = "sig-key-never-shown-4f2a9"
SECRET_URL_TOKEN = "tok-in-url-8c1d7e"
SECRETS = (ROUTING_KEY, SIGNING_KEY, SECRET_URL_TOKEN)
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


class Receiver:
    """A ThreadingHTTPServer on 127.0.0.1 that records each request and
    answers `status` with `body` (use as a context manager)."""

    def __init__(self, status: int = 202, body: bytes = b'{"status":"success"}') -> None:
        self.status, self.body = status, body
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length),
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def user_with(name: str, *codenames: str) -> User:
    """A user (not staff) with these permissions of the notify app."""
    user = User.objects.create_user(name, password="secret-pass-1")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="notify", codename__in=codenames)
    )
    return user


def webhook(name: str = "ops hook", url: str = "https://hooks.example.com/vigil", **kw) -> Channel:
    kw.setdefault("config", {"url": url})
    kw.setdefault("secrets", {"secret": SIGNING_KEY})
    return Channel.objects.create(name=name, kind="webhook", **kw)


def pagerduty(name: str = "pager", api_base: str = "", **kw) -> Channel:
    kw.setdefault("config", {"api_base": api_base} if api_base else {})
    kw.setdefault("secrets", {"routing_key": ROUTING_KEY})
    return Channel.objects.create(name=name, kind="pagerduty", **kw)


def notification(title: str = "CPU high on web-1", rule: Rule | None = None) -> Notification:
    if rule is None:
        rule, _ = Rule.objects.get_or_create(
            name=f"rule for {title}"[:200], defaults={"metric": "cpu_usage_percent"}
        )
    return Notification.objects.create(
        kind="firing", rule=rule, severity="critical", title=title, items=[]
    )


def failed_delivery(
    channel: Channel,
    n: Notification | None = None,
    error: str = "the receiver answered 500",
    age: timedelta = timedelta(minutes=5),
    attempts: int = 3,
) -> Delivery:
    """A delivery that finally failed after `attempts` tries, with its log."""
    created = timezone.now() - age
    delivery = Delivery.objects.create(
        notification=n or notification(),
        channel=channel,
        status=Delivery.Status.FAILED,
        attempts=attempts,
        created=created,
        last_error=error,
    )
    Attempt.objects.bulk_create(
        Attempt(
            delivery=delivery,
            number=k,
            at=created + timedelta(seconds=10 * k),
            duration_ms=40 + k,
            status_code=500,
            answer='{"error":"upstream down"}',
            error=error,
            outcome="failed" if k == attempts else "retry",
        )
        for k in range(1, attempts + 1)
    )
    return delivery


def assert_no_secret(content: bytes | str, secrets: tuple[str, ...] = SECRETS) -> None:
    text = content.decode() if isinstance(content, bytes) else content
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:4]}…) is in the answer"
