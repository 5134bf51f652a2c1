"""The web UI in headless Chromium: log in, see this machine's live charts."""

from __future__ import annotations

import socket

import pytest

from vigil.testing import logged_in_page, wait_for

pytestmark = pytest.mark.e2e
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def page(browser, vigil_server):
    with logged_in_page(browser, vigil_server, height=1400) as page:
        yield page


def test_a_user_logs_in_and_sees_this_machine_live(page, vigil_server, output_dir):
    host = socket.gethostname()
    link = page.get_by_role("link", name=host, exact=True)
    # The server list refreshes itself: wait for the local agent's first report.
    wait_for(lambda: link.count() == 1, timeout=30, what="this machine in the server list")
    page.screenshot(path=output_dir / "server-list.png", full_page=True)

    link.click()
    page.wait_for_selector("#charts[data-drawn=true]", timeout=30_000)
    # Charts refresh every 10 s; rates need two reports: wait for the charts
    # the issue names (CPU, memory, file systems, network, load) to have data.
    for title in ("CPU", "Memory", "File systems used", "Network received", "Load"):
        chart = page.locator(".chart", has=page.locator("h2", has_text=title))
        chart.locator("canvas").wait_for(timeout=30_000)
        wait_for(
            lambda chart=chart: "no-data" not in chart.get_attribute("class"),
            timeout=30,
            what=f"data in the {title} chart",
        )
    page.screenshot(path=output_dir / "server-page-1h.png", full_page=True)
    page.click("button[data-range='86400']")
    assert page.locator("button.active").inner_text() == "24h"
    page.wait_for_timeout(1500)
    page.screenshot(path=output_dir / "server-page-24h.png", full_page=True)
    assert page.dialogs == []


def test_a_server_named_like_a_script_is_shown_as_text(page, vigil_server, output_dir):
    page.goto(vigil_server.url + "/admin/servers/server/add/")
    page.fill("input[name=name]", EVIL)
    page.fill("input[name=host_name]", "evil-host")
    page.click("input[name=_save]")
    page.goto(vigil_server.url + "/")
    assert page.get_by_text(EVIL, exact=True).count() == 1
    page.get_by_text(EVIL, exact=True).click()
    page.wait_for_selector("h1")
    assert EVIL in page.locator("h1").inner_text()
    page.screenshot(path=output_dir / "escaped-server.png", full_page=True)
    assert page.dialogs == []


SEED_HISTORY = """
import math
from vigil.metrics import state
from vigil.metrics.models import Rollup1h, Series
from vigil.servers.models import Server
import time
server = Server.objects.create(name="history-demo", host_name="history-demo")
series = Series.objects.create(server=server, metric="cpu_usage_percent", labels={})
hour = int(time.time()) // 3600 * 3600
rows = []
for h in range(1, 30 * 24):
    avg = 40 + 20 * math.sin(h / 20)
    spike = 95 if h % 97 == 0 else avg + 8 + 6 * math.sin(h / 3)
    rows.append(Rollup1h(series=series, ts=hour - h * 3600, min=max(0, avg - 15), max=spike,
                         sum=avg * 360, count=360, last=avg))
Rollup1h.objects.bulk_create(rows)
state.put(state.ROLLUP_1H, hour)
print(server.pk)
"""


def test_a_thirty_day_chart_draws_the_envelope_behind_the_average(page, vigil_server, output_dir):
    server_id = vigil_server.vigil("shell", "-c", SEED_HISTORY).strip().splitlines()[-1]
    page.goto(f"{vigil_server.url}/servers/{server_id}/")
    page.click("button[data-range='2592000']")
    assert page.locator("button.active").inner_text() == "30d"
    cpu = page.locator(".chart", has=page.locator("h2", has_text="CPU"))
    wait_for(
        lambda: "has-envelope" in (cpu.get_attribute("class") or ""),
        timeout=15,
        what="the CPU chart's envelope",
    )
    page.wait_for_timeout(300)
    cpu.screenshot(path=output_dir / "server-page-30d-envelope.png")
    assert page.dialogs == []
