"""`vigil notify test CHANNEL` against a real receiver on 127.0.0.1: it
prints the outcome and the answer, and exits 1 with advice when the test
was not sent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from vigil.notify.models import Delivery
from vigil.notify.tests.editing import (
    ROUTING_KEY,
    SIGNING_KEY,
    Receiver,
    assert_no_secret,
    pagerduty,
    webhook,
)
from vigil.testing import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local(settings):
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8"


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("notify", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_sends_a_test_by_channel_name_and_prints_the_answer():
    with Receiver(202, b'{"status":"success","message":"Event processed"}') as receiver:
        pagerduty("pager", api_base=receiver.url)
        out, _ = run("test", "pager")
    assert out.splitlines()[0] == "pager (PagerDuty): sent"
    assert "status: 202" in out and "Event processed" in out
    assert len(receiver.requests) == 2  # PagerDuty's test: a trigger and its resolve
    assert_no_secret(out)
    assert Delivery.objects.get().purpose == "test"


def test_it_finds_a_channel_by_id_too():
    with Receiver(200, b"ok") as receiver:
        channel = webhook("hook", url=receiver.url)
        out, _ = run("test", str(channel.pk))
    assert out.startswith("hook (Webhook): sent") and len(receiver.requests) == 1


def test_it_exits_1_with_the_error_and_advice_when_the_receiver_refuses():
    with Receiver(400, b'{"status":"invalid event","errors":["Event object is invalid"]}') as r:
        pagerduty("pager", api_base=r.url)
        out = StringIO()
        with pytest.raises(CommandError) as failure:
            call_command("notify", "test", "pager", stdout=out, stderr=StringIO())
    assert failure.value.returncode == 1
    assert "not sent" in str(failure.value) and "vigil notify test pager" in str(failure.value)
    text = out.getvalue()
    assert "pager (PagerDuty): failed" in text and "status: 400" in text
    assert "Event object is invalid" in text and "error: the receiver answered 400" in text
    assert_no_secret(text + str(failure.value))


def test_it_exits_1_when_the_receiver_cannot_be_reached():
    webhook("hook", url=f"http://127.0.0.1:{free_port()}/")
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("notify", "test", "hook", stdout=out, stderr=StringIO())
    assert failure.value.returncode == 1
    assert "connection refused" in out.getvalue()


def test_a_disabled_channel_is_not_tested_and_says_so():
    webhook("hook", enabled=False)
    with pytest.raises(CommandError) as failure:
        run("test", "hook")
    assert failure.value.returncode == 1 and "hook is disabled" in str(failure.value)
    assert not Delivery.objects.exists()


def test_an_unknown_channel_is_named_with_the_channels_there_are():
    webhook("hook")
    with pytest.raises(CommandError) as failure:
        run("test", "nope")
    assert "no channel named 'nope'" in str(failure.value) and "hook" in str(failure.value)
    assert not Delivery.objects.exists()


def test_the_list_says_which_secrets_are_set_and_the_last_error():
    from django.utils import timezone

    pagerduty("pager", last_error=f"refused {ROUTING_KEY}", last_error_at=timezone.now())
    webhook("hook", secrets={"secret": SIGNING_KEY})
    out, _ = run("list")
    assert "pager  (pagerduty, enabled; routing_key set)" in out
    assert "refused ••••••" in out
    assert "hook  (webhook, enabled; secret set, url not set)" in out
    assert_no_secret(out)


def test_the_vigil_command_exits_0_when_sent_and_1_otherwise(capsys, monkeypatch):
    """Through vigil.cli.main, as `vigil notify test ...` runs it."""
    from django.db import connections

    from vigil.cli import main

    # A command closes its connections when done; the test's must stay open.
    monkeypatch.setattr(connections, "close_all", lambda: None)

    with Receiver(202, b"accepted") as receiver:
        webhook("hook", url=receiver.url)
        with pytest.raises(SystemExit) as done:
            main(["vigil", "notify", "test", "hook"])
            raise SystemExit(0)
    assert done.value.code in (0, None)
    assert "hook (Webhook): sent" in capsys.readouterr().out
    webhook("down", url=f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(SystemExit) as done:
        main(["vigil", "notify", "test", "down"])
    assert done.value.code == 1
    captured = capsys.readouterr()
    assert "down (Webhook): failed" in captured.out
    assert "the test notification was not sent" in captured.err
