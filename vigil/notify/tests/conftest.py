"""Receivers of the HTTP channels on 127.0.0.1, started and stopped per test
(vigil/notify/tests/receivers.py), and the setting that lets channels reach them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigil.notify.tests import receivers
from vigil.notify.tests.samples import (
    OPSGENIE_KEY,
    ROUTING_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
)
from vigil.notify.transports import HttpTransport


@pytest.fixture
def loopback_allowed(settings) -> None:
    """The SSRF guard lets channels reach receivers on 127.0.0.1, and only there."""
    settings.NOTIFY_ALLOW_PRIVATE = False
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"


@pytest.fixture
def quick_timeout(monkeypatch) -> float:
    """HTTP channels give up after 0.3 s, so a slow receiver test stays short."""
    monkeypatch.setattr(HttpTransport, "timeout", 0.3)
    return 0.3


@pytest.fixture
def pagerduty(loopback_allowed) -> Iterator[receivers.Receiver]:
    with receivers.running(receivers.PagerDuty(ROUTING_KEY)) as receiver:
        yield receiver


@pytest.fixture
def opsgenie(loopback_allowed) -> Iterator[receivers.Receiver]:
    with receivers.running(receivers.Opsgenie(OPSGENIE_KEY)) as receiver:
        yield receiver


@pytest.fixture
def slack(loopback_allowed) -> Iterator[receivers.Receiver]:
    with receivers.running(receivers.Slack()) as receiver:
        yield receiver


@pytest.fixture
def twilio(loopback_allowed) -> Iterator[receivers.Receiver]:
    with receivers.running(receivers.Twilio(TWILIO_SID, TWILIO_TOKEN)) as receiver:
        yield receiver


@pytest.fixture
def webhook(loopback_allowed) -> Iterator[receivers.Receiver]:
    with receivers.running(receivers.Webhook(WEBHOOK_SECRET)) as receiver:
        yield receiver
