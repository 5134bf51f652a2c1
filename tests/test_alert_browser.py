"""The alert pages in headless Chromium: a firing alert on this machine is
seen, acknowledged and muted until it resolves, a rule is backtested on
a week of history, and the server page shows the alert."""

from __future__ import annotations

import json

import pytest

from vigil.testing import logged_in_page, wait_for

pytestmark = pytest.mark.e2e
EVIL = "<script>alert(1)</script>"

# Runs in `vigil shell` against the running server's database: waits for the
# local agent's server, gives it and a second server a /srv/data file system
# with a week of 5-minute history that crosses 90 % now and then, makes a
# rule on it and evaluates the rules once, so that the alert fires now.
SEED = """
import json, math, socket, time
from vigil.alerts.models import Alert, Rule
from vigil.alerts.tasks import evaluate_alerts
from vigil.metrics import state
from vigil.metrics.models import Rollup5m, Series
from vigil.servers.models import Server
from vigil.testing import store

deadline = time.monotonic() + 30
while not Server.objects.filter(host_name=socket.gethostname()).exists():
    if time.monotonic() > deadline:
        raise SystemExit("the local agent never reported")
    time.sleep(0.3)
local = Server.objects.get(host_name=socket.gethostname())
other = Server.objects.create(name=EVIL, host_name="evil-e2e")
now = int(time.time())
watermark = state.get(state.ROLLUP_5M)
if watermark is None:
    watermark = now // 300 * 300 - 300
    state.put(state.ROLLUP_5M, watermark)
labels = {"mountpoint": "/srv/data"}
for server, phase, current in ((local, 0.0, 96.5), (other, 2.5, 61.0)):
    store(server, "filesystem_used_percent", [(now - 40, current), (now - 10, current)], labels)
    series = Series.objects.get(server=server, metric="filesystem_used_percent",
                                labels_key="mountpoint=/srv/data")
    rows = []
    for k in range(1, 7 * 288):
        v = 72 + 14 * math.sin(k / 35 + phase) + (9 if (k + int(phase * 40)) % 170 < 8 else 0)
        rows.append(Rollup5m(series=series, ts=watermark - k * 300, min=v - 1.5, max=v + 1.5,
                             sum=v * 30, count=30, last=v))
    Rollup5m.objects.bulk_create(rows)
rule = Rule.objects.create(
    name="Data disk above 90%", severity="critical", metric="filesystem_used_percent",
    matchers="mountpoint=/srv/data", operator=">", threshold=90, recovery_threshold=85,
    description="{label:mountpoint} on {server} is {value}% full",
)
evaluate_alerts()
alert = Alert.objects.get(rule=rule, server=local)
assert alert.state == Alert.State.FIRING, alert.state
print(json.dumps({"alert": alert.pk, "rule": rule.pk, "server": local.pk}))
""".replace("EVIL", repr(EVIL))


@pytest.fixture(scope="module")
def seeded(vigil_server) -> dict:
    out = vigil_server.vigil("shell", "-c", SEED)
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def page(browser, vigil_server):
    with logged_in_page(browser, vigil_server, height=900) as page:
        yield page


def test_an_operator_sees_acknowledges_silences_and_backtests_an_alert(
    page, vigil_server, seeded, output_dir
):
    url = vigil_server.url
    row = f"tr[data-alert='{seeded['alert']}']"
    # The navigation counts it on every page.
    assert int(page.locator(".nav-alerts .count").inner_text()) >= 1
    page.click(".nav-alerts")
    page.wait_for_selector(row)
    assert "Data disk above 90%" in page.locator(row).inner_text()
    assert "mountpoint=/srv/data" in page.locator(row).inner_text()
    page.screenshot(path=output_dir / "alerts-firing.png", full_page=True)

    page.locator(row).locator("input[name=comment]").fill("replacing the disk tonight")
    page.locator(row).get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(".messages li.success")
    page.click("a[data-tab=acknowledged]")
    page.wait_for_selector(row)
    assert "replacing the disk tonight" in page.locator(row).inner_text()
    page.screenshot(path=output_dir / "alerts-acknowledged.png", full_page=True)

    page.locator(row).get_by_role("link", name="Silence…").click()
    page.wait_for_url(f"{url}/alerts/silences/new?alert={seeded['alert']}")
    assert page.locator("input[name=duration][value=resolved]").is_checked()
    assert page.locator("[data-field=ends_at]").is_hidden()
    page.fill("input[name=comment]", "disk swap on the data volume")
    page.screenshot(path=output_dir / "alerts-silence-until-resolved.png", full_page=True)
    page.get_by_role("button", name="Create silence").click()
    page.wait_for_url(f"{url}/alerts/silences/")
    active = page.locator("section[data-state=active]")
    assert "until it resolves" in active.inner_text()
    page.screenshot(path=output_dir / "alerts-silences.png", full_page=True)

    page.goto(f"{url}/alerts/rules/{seeded['rule']}/")
    page.fill("input[name=threshold]", "88")
    page.click("#backtest-button")
    page.wait_for_selector("#backtest-chart[data-drawn=true] canvas", timeout=20_000)
    summary = page.locator("#backtest-summary").inner_text()
    assert "Over the last 7 days this rule would have fired" in summary, summary
    assert EVIL in summary
    assert page.locator("#backtest-episodes tbody tr").count() > 0
    page.locator("#backtest").scroll_into_view_if_needed()
    page.screenshot(path=output_dir / "alerts-rule-backtest.png", full_page=True)

    page.click(".subnav >> text=Rules")
    page.wait_for_selector(f"tr[data-rule='{seeded['rule']}']")
    page.screenshot(path=output_dir / "alerts-rules.png", full_page=True)
    page.goto(f"{url}/alerts/?tab=history")
    assert page.locator("table.history tbody tr").count() >= 2
    page.screenshot(path=output_dir / "alerts-history.png", full_page=True)
    assert page.dialogs == []


def test_the_server_page_shows_its_active_alert(page, vigil_server, seeded, output_dir):
    page.goto(f"{vigil_server.url}/servers/{seeded['server']}/")
    section = page.locator(".server-alerts")
    section.wait_for()
    assert "Data disk above 90%" in section.inner_text()
    assert "firing" in section.inner_text()
    page.wait_for_selector("#charts[data-drawn=true]", timeout=20_000)
    wait_for(
        lambda: page.locator(".chart canvas").count() > 0, timeout=10, what="the server's charts"
    )
    page.screenshot(path=output_dir / "alerts-server-page.png")
    assert page.dialogs == []
