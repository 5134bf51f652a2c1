"""One server fed by collectd, one by node_exporter, one by line protocol: the
same charts, with data, on each server page (real binaries, real Chromium)."""

from __future__ import annotations

import base64
import threading
import time
import urllib.request
from urllib.parse import urlencode

import orjson
import pytest

from tests.test_collectd_real import Collectd
from tests.test_node_exporter_real import node_exporter  # noqa: F401 (a fixture)
from vigil.testing import VigilProcess, http_get, scratch_database, wait_for

pytestmark = pytest.mark.e2e
SERVERS = {
    "collectd": "via-collectd",
    "node_exporter": "via-node-exporter",
    "telegraf": "via-telegraf",
}
CHARTS = ("CPU", "Memory", "File systems used", "Network received", "Network sent", "Load")
CANONICAL = (
    "cpu_usage_percent",
    "memory_used_percent",
    "filesystem_used_percent",
    "network_receive_bytes_per_second",
    "network_transmit_bytes_per_second",
    "load1",
)


def telegraf_lines(host: str, at: int, step: int) -> bytes:
    """Telegraf's default inputs for one interval, as its serializer writes them."""
    t = at * 1_000_000_000
    lines = [
        f"cpu,cpu=cpu-total,host={host} usage_idle={70 + step % 5},usage_user=20 {t}",
        f"mem,host={host} available=6442450944i,total=8589934592i,used_percent=25.5 {t}",
        f"swap,host={host} free=1073741824i,total=1073741824i,used_percent=0 {t}",
        f"disk,device=sda1,fstype=ext4,host={host},mode=rw,path=/ free=53687091200i,"
        f"used_percent=50.25 {t}",
        f"diskio,host={host},name=sda read_bytes={step * 40960}i,write_bytes={step * 8192}i {t}",
        f"net,host={host},interface=eth0 bytes_recv={step * 20000}i,bytes_sent={step * 5000}i {t}",
        f"system,host={host} load1=0.25,load15=0.75,load5=0.5,n_cpus=2i {t}",
    ]
    return ("\n".join(lines) + "\n").encode()


def run_telegraf(url: str, token: str, stop: threading.Event) -> None:
    auth = base64.b64encode(f"telegraf:{token}".encode()).decode()
    step = 0
    while not stop.wait(1.0 if step else 0):
        step += 1
        request = urllib.request.Request(
            f"{url}/write?db=telegraf&precision=ns",
            data=telegraf_lines(SERVERS["telegraf"], int(time.time()), step),
            headers={"Authorization": f"Basic {auth}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204


def has_data(vigil: VigilProcess, server: str, metric: str) -> bool:
    auth = base64.b64encode(f"admin:{vigil.admin_password}".encode()).decode()
    now = int(time.time())
    params = {"metric": metric, "server": server, "start": now - 300, "end": now + 5}
    url = f"{vigil.url}/api/v1/query?{urlencode(params)}"
    body = orjson.loads(http_get(url, timeout=5, headers={"Authorization": f"Basic {auth}"})[1])
    return any(s["points"] for s in body["series"])


def test_every_agent_fills_the_same_charts(tmp_path, node_exporter, browser, output_dir):  # noqa: F811
    _, exporter_url = node_exporter
    with scratch_database() as database_url:
        vigil = VigilProcess(tmp_path / "data", database_url, "--no-local-agent")
        vigil.env["VIGIL_SCRAPE_ALLOWED_NETWORKS"] = "127.0.0.1/32"
        vigil.env["VIGIL_SCRAPE_TICK_SECONDS"] = "0.5"
        vigil.start()
        token = vigil.vigil("token", "create", "--name", "agents").strip().splitlines()[-1]
        vigil.vigil(
            "scrape", "add", "--server", SERVERS["node_exporter"], "--url", exporter_url,
            "--interval", "1",
        )  # fmt: skip
        auth = f'    User "collectd"\n    Password "{token}"'
        collectd = Collectd(tmp_path / "collectd", SERVERS["collectd"], vigil.url, auth)
        stop = threading.Event()
        telegraf = threading.Thread(target=run_telegraf, args=(vigil.url, token, stop))
        telegraf.start()
        try:
            for server in SERVERS.values():
                wait_for(
                    lambda server=server: all(has_data(vigil, server, m) for m in CANONICAL),
                    30,
                    interval=0.5,
                    what=f"the canonical metrics of {server}",
                )
            titles = check_pages(browser, vigil, output_dir)
        finally:
            stop.set()
            telegraf.join(timeout=10)
            collectd.stop()
            vigil.stop()
    assert len(set(titles.values())) == 1, titles


def check_pages(browser, vigil: VigilProcess, output_dir) -> dict[str, tuple[str, ...]]:
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.goto(vigil.url + "/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", vigil.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(vigil.url + "/")
    page.screenshot(path=output_dir / "agents-server-list.png", full_page=True)
    titles = {}
    for agent, server in SERVERS.items():
        page.get_by_role("link", name=server, exact=True).click()
        page.wait_for_selector("#charts[data-drawn=true]", timeout=20_000)
        for title in CHARTS:
            chart = page.locator(".chart", has=page.locator("h2", has_text=title)).first
            wait_for(
                lambda chart=chart: "no-data" not in (chart.get_attribute("class") or ""),
                30,
                what=f"data in the {title} chart of {server}",
            )
        titles[server] = tuple(page.locator(".chart h2").all_inner_texts())
        page.screenshot(path=output_dir / f"agent-{agent}.png", full_page=True)
        page.goto(vigil.url + "/")
    context.close()
    return titles
