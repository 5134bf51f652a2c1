"""`vigil run` alone, as on a laptop: its embedded scheduler evaluates a rule
on the local agent's data and a webhook on 127.0.0.1 receives the page."""

from __future__ import annotations

import pytest

from vigil.notify.tests import receivers
from vigil.notify.tests.samples import WEBHOOK_SECRET
from vigil.testing import VigilProcess, scratch_database, wait_for

pytestmark = pytest.mark.e2e

SETUP = """
from vigil.alerts.models import Rule
from vigil.notify.models import Channel, Route
Rule.objects.all().delete()
Rule.objects.create(name="CPU is measured", metric="cpu_usage_percent", operator=">=",
                    threshold=0, severity="critical")
channel = Channel.objects.create(name="hook", kind="webhook",
                                 config={"url": "URL/hooks/vigil"}, secrets={"secret": "SECRET"})
Route.objects.create(name="all", is_default=True).channels.add(channel)
"""


def test_an_alert_on_the_local_agent_reaches_a_webhook_through_vigil_run(tmp_path):
    with (
        receivers.running(receivers.Webhook(WEBHOOK_SECRET)) as hook,
        scratch_database() as database_url,
    ):
        proc = VigilProcess(tmp_path, database_url)
        proc.env.update(
            VIGIL_LOCAL_AGENT_INTERVAL="1",
            VIGIL_ALERT_EVALUATION_INTERVAL_SECONDS="2",
            VIGIL_ALERT_GROUP_WAIT_SECONDS="0",
            VIGIL_NOTIFY_ALLOWED_NETWORKS="127.0.0.0/8",
        )
        proc.start()
        try:
            proc.vigil(
                "shell", "-c", SETUP.replace("URL", hook.url).replace("SECRET", WEBHOOK_SECRET)
            )
            wait_for(lambda: hook.requests, timeout=45, what="the webhook's first page")
        finally:
            proc.stop()
    first = hook.requests[0]
    assert first.header("X-Vigil-Event") == "firing"
    assert first.doc["rule"] == "CPU is measured"
    assert hook.problems() == []
