"""Notification channels in headless Chromium against a real `vigil run`:
the channel list shows a failing channel's last error, the editor says a
secret is set without ever showing it, the test button reaches a receiver
on 127.0.0.1 and shows its answer, and the alerts page warns of the
notifications that could not be delivered. `vigil notify test` is run as
an operator types it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vigil.notify.tests.editing import ROUTING_KEY, SIGNING_KEY, Receiver
from vigil.testing import VigilProcess, free_port, logged_in_page, scratch_database

pytestmark = pytest.mark.e2e
EVIL = "<img src=x onerror=alert(1)>"
NEW_KEY = "typed-in-the-browser-7731"

# Runs in `vigil shell` against the running server's database. The pager
# points at a closed local port: nothing here may leave 127.0.0.1.
SEED = """
import json
from datetime import timedelta
from django.utils import timezone
from vigil.alerts.models import Notification, Rule
from vigil.notify.models import Attempt, Channel, Delivery, Route

now = timezone.now()
pager = Channel.objects.create(
    name="pager", kind="pagerduty", config={"api_base": "http://127.0.0.1:CLOSED"},
    secrets={"routing_key": "ROUTING_KEY"},
    last_success_at=now - timedelta(hours=5),
    last_error="the receiver answered 400: Invalid routing key",
    last_error_at=now - timedelta(minutes=3),
)
hook = Channel.objects.create(
    name="ops webhook", kind="webhook", config={"url": "RECEIVER/hooks/vigil",
    "headers": {"X-Team": "ops"}}, secrets={"secret": "SIGNING_KEY"}, is_fallback=True,
)
Channel.objects.create(name=EVIL, kind="email", config={"to": ["oncall@example.com"]},
                       enabled=False)
rule = Rule.objects.create(name="Data centre on fire", metric="up", enabled=False,
                           severity="critical")
route = Route.objects.create(name="fire", rule=rule, severity="critical",
                             escalate_after_minutes=15)
route.channels.set([pager])
route.escalate_to.set([hook])
failed = []
for title in ("Disk full on db-1", "Load high on web-2"):
    n = Notification.objects.create(kind="firing", rule=rule, severity="critical", title=title,
                                    items=[], routed_at=now, delivered_at=now)
    d = Delivery.objects.create(notification=n, channel=pager, status="failed", attempts=3,
                                last_error="the receiver answered 400",
                                created=now - timedelta(minutes=20))
    for k in (1, 2, 3):
        Attempt.objects.create(delivery=d, number=k, at=d.created + timedelta(seconds=30 * k),
                               duration_ms=80 + k, status_code=400 if k == 3 else 503,
                               answer='{"status":"invalid event"}' if k == 3 else "busy",
                               error="the receiver answered " + ("400" if k == 3 else "503"),
                               outcome="failed" if k == 3 else "retry")
    failed.append(d.pk)
print(json.dumps({"pager": pager.pk, "hook": hook.pk, "failed": failed}))
"""


@pytest.fixture(scope="module")
def receiver():
    with Receiver(202, b'{"received":true,"by":"the ops receiver"}') as r:
        yield r


@pytest.fixture(scope="module")
def vigil_server(tmp_path_factory):
    """`vigil run` allowed to send to 127.0.0.1, where the test receivers are."""
    with scratch_database() as database_url:
        proc = VigilProcess(tmp_path_factory.mktemp("vigil-data"), database_url)
        proc.env["VIGIL_NOTIFY_ALLOWED_NETWORKS"] = "127.0.0.0/8"
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def seeded(vigil_server, receiver) -> dict:
    script = (
        SEED.replace("CLOSED", str(free_port()))
        .replace("RECEIVER", receiver.url)
        .replace("ROUTING_KEY", ROUTING_KEY)
        .replace("SIGNING_KEY", SIGNING_KEY)
        .replace("EVIL", repr(EVIL))
    )
    return json.loads(vigil_server.vigil("shell", "-c", script).strip().splitlines()[-1])


@pytest.fixture
def page(browser, vigil_server):
    with logged_in_page(browser, vigil_server, height=900) as page:
        yield page


def no_secret_in(page) -> None:
    html = page.content()
    for secret in (ROUTING_KEY, SIGNING_KEY, NEW_KEY):
        assert secret not in html


def test_an_operator_sees_a_failing_channel_and_its_secret_only_as_set(
    page, vigil_server, seeded, output_dir
):
    url = vigil_server.url
    page.goto(f"{url}/alerts/")
    page.click(".subnav >> text=Channels")
    page.wait_for_url(f"{url}/alerts/channels/")
    row = page.locator(f"tr[data-channel='{seeded['pager']}']")
    assert "failing" in row.get_attribute("class")
    assert "Invalid routing key" in row.locator(".last-error").inner_text()
    assert "3 min ago" in row.locator(".last-error").inner_text()
    assert "routing_key: set" in row.inner_text()
    assert EVIL in page.locator("table.channels").inner_text()
    no_secret_in(page)
    page.screenshot(path=output_dir / "notify-channels.png", full_page=True)

    row.get_by_role("link", name="pager").click()
    page.wait_for_url(f"{url}/alerts/channels/{seeded['pager']}/")
    secret = page.locator("[data-field=secret__routing_key]")
    assert secret.get_attribute("data-state") == "set"
    assert page.locator("input[name=secret__routing_key]").input_value() == ""
    assert "Invalid routing key" in page.locator("p.last-error").inner_text()
    no_secret_in(page)
    page.screenshot(path=output_dir / "notify-channel-editor.png", full_page=True)

    # A new signing key typed in the browser is stored, and not shown either.
    page.goto(f"{url}/alerts/channels/{seeded['hook']}/")
    page.fill("input[name=secret__secret]", NEW_KEY)
    page.get_by_role("button", name="Save channel").click()
    page.wait_for_selector(".messages li.success")
    assert page.locator("[data-field=secret__secret]").get_attribute("data-state") == "set"
    assert page.locator("input[name=config__headers]").count() == 0
    assert "X-Team: ops" in page.locator("textarea[name=config__headers]").input_value()
    no_secret_in(page)
    assert page.dialogs == []


def test_the_test_button_shows_the_receivers_answer(
    page, vigil_server, seeded, receiver, output_dir
):
    before = len(receiver.requests)
    page.goto(f"{vigil_server.url}/alerts/channels/{seeded['hook']}/")
    page.get_by_role("button", name="Send test notification").click()
    result = page.locator("#test-result")
    result.wait_for()
    text = result.inner_text()
    assert "Test notification: sent" in text and "202" in text
    assert "the ops receiver" in text
    assert len(receiver.requests) == before + 1
    request = receiver.requests[-1]
    assert request["path"] == "/hooks/vigil" and request["headers"]["X-Team"] == "ops"
    assert request["headers"]["X-Vigil-Signature"].startswith("sha256=")
    assert json.loads(request["body"])["test"] is True
    no_secret_in(page)
    result.scroll_into_view_if_needed()
    page.screenshot(path=output_dir / "notify-test-result.png", full_page=True)
    assert page.dialogs == []


def test_the_alerts_page_warns_of_failed_deliveries(page, vigil_server, seeded, output_dir):
    url = vigil_server.url
    page.goto(f"{url}/alerts/")
    banner = page.locator(".banner.failed-deliveries")
    assert "2 notifications could not be delivered" in banner.inner_text()
    page.screenshot(path=output_dir / "notify-alerts-banner.png", full_page=True)

    banner.get_by_role("link", name="See the failed deliveries").click()
    page.wait_for_selector("table.deliveries")
    rows = page.locator("tr.delivery-row.status-failed")
    assert rows.count() == 2
    assert "Disk full on db-1" in page.locator("table.deliveries").inner_text()
    page.screenshot(path=output_dir / "notify-deliveries.png", full_page=True)

    page.locator(f"tr[data-delivery='{seeded['failed'][0]}'] a").click()
    page.wait_for_selector("table.attempts")
    assert page.locator("table.attempts tbody tr").count() == 3
    assert "the receiver answered 400" in page.locator("table.attempts").inner_text()
    page.screenshot(path=output_dir / "notify-delivery.png", full_page=True)

    page.goto(f"{url}/alerts/routes/")
    assert "after 15 min to ops webhook" in page.locator("table.routes").inner_text()
    page.screenshot(path=output_dir / "notify-routes.png", full_page=True)
    page.get_by_role("link", name="fire").click()
    page.wait_for_selector("form.route-editor")
    assert page.locator("[data-field=escalate_to] input:checked").count() == 1
    assert page.locator("input[name=escalate_after_minutes]").input_value() == "15"
    page.screenshot(path=output_dir / "notify-route-editor.png", full_page=True)
    no_secret_in(page)
    assert page.dialogs == []


def test_vigil_notify_test_exits_0_when_sent_and_1_when_not(vigil_server, seeded, receiver):
    def notify_test(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "vigil.cli", "notify", "test", name],
            env=vigil_server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    sent = notify_test("ops webhook")
    assert sent.returncode == 0, sent.stderr
    assert "ops webhook (Webhook): sent" in sent.stdout and "the ops receiver" in sent.stdout
    refused = notify_test(str(seeded["pager"]))
    assert refused.returncode == 1
    assert "pager (PagerDuty): failed" in refused.stdout
    assert "connection refused" in refused.stdout
    assert "vigil notify test pager" in refused.stderr
    for out in (sent.stdout, sent.stderr, refused.stdout, refused.stderr):
        assert ROUTING_KEY not in out and SIGNING_KEY not in out
