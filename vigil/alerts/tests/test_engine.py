"""Each kind of condition through the database, with exact state timelines.

A timeline is a list of (seconds after T0, value written at that time,
expected state after evaluating at that time). Samples go through the real
writer, evaluations through the real task, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import pytest

from vigil.alerts.models import Alert, AlertEvent, Notification, Rule
from vigil.alerts.tasks import evaluate_alerts
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db

T0 = 1_790_000_040
ok, pending, firing, gone = "ok", "pending", "firing", "gone"


@pytest.fixture(autouse=True)
def only_our_rules():
    Rule.objects.all().delete()


def rule(**kw) -> Rule:
    fields = {"name": "test rule", "metric": "cpu_usage_percent", "operator": ">"}
    fields.update(kw)
    obj = Rule(**fields)
    obj.full_clean()
    obj.save()
    return obj


def state_of(r: Rule, server=None) -> str:
    alert = Alert.objects.filter(rule=r, **({"server": server} if server else {})).first()
    return alert.get_state_display() if alert else ok


def run_timeline(r: Rule, timeline, metric: str | None = None, labels=None, server=None):
    server = server or make_server("web-1")
    for offset, value, expected in timeline:
        t = T0 + offset
        if value is not None:
            store(server, metric or r.metric, [(t, value)], labels)
        evaluate_alerts(t)
        assert state_of(r, server) == expected, f"at +{offset}s after writing {value}"
    return server


def kinds(r: Rule) -> list[str]:
    return list(
        Notification.objects.filter(rule=r).order_by("created", "id").values_list("kind", flat=True)
    )


THRESHOLDS = {
    "fires after holding for the duration": (
        {"threshold": 90, "for_seconds": 60},
        [(0, 95, pending), (30, 95, pending), (60, 95, firing), (90, 50, ok)],
    ),
    "a spike shorter than the duration never fires": (
        {"threshold": 90, "for_seconds": 60},
        [(0, 95, pending), (30, 95, pending), (45, 50, ok), (75, 50, ok)],
    ),
    "fires after N evaluations in a row": (
        {"threshold": 90, "for_evaluations": 3},
        [
            (0, 95, pending),
            (30, 95, pending),
            (60, 50, ok),
            (90, 95, pending),
            (120, 95, pending),
            (150, 95, firing),
        ],
    ),
    "hysteresis: fires above 90, resolves only below 80": (
        {"threshold": 90, "recovery_threshold": 80},
        [(0, 95, firing), (30, 85, firing), (60, 91, firing), (90, 79, ok), (120, 85, ok)],
    ),
    "below a limit": (
        {"operator": "<", "threshold": 10, "recovery_threshold": 20},
        [(0, 15, ok), (30, 5, firing), (60, 15, firing), (90, 25, ok)],
    ),
    ">= fires at the limit itself": (
        {"operator": ">=", "threshold": 90},
        [(0, 89.9, ok), (30, 90, firing), (60, 89, ok)],
    ),
    "no data holds the state instead of resolving": (
        {"threshold": 90},
        [(0, 95, firing), (200, None, firing), (230, 50, ok)],
    ),
}


@pytest.mark.parametrize("fields, timeline", THRESHOLDS.values(), ids=THRESHOLDS.keys())
def test_thresholds_follow_their_timeline(fields, timeline):
    run_timeline(rule(**fields), timeline)


AGGREGATIONS = {
    # Values every 30 s; the window holds the last three (60 s back, inclusive).
    "avg": ([80, 100, 95, 60, 60], [ok, ok, firing, ok, ok]),  # 80, 90, 91.7, 85, 71.7
    "max": ([80, 100, 80, 80, 80], [ok, firing, firing, firing, ok]),
    "min": ([95, 80, 95, 95, 95], [firing, ok, ok, ok, firing]),
    "p50": ([95, 80, 95, 80, 80], [firing, firing, firing, ok, ok]),  # 95, 87.5, 95, 80, 80
}


@pytest.mark.parametrize("how", AGGREGATIONS)
def test_aggregations_look_back_over_their_window(how):
    values, states = AGGREGATIONS[how]
    threshold = {"avg": 90, "max": 90, "min": 90, "p50": 85}[how]
    r = rule(aggregation=how, window_seconds=60, threshold=threshold)
    run_timeline(r, [(k * 30, v, s) for k, (v, s) in enumerate(zip(values, states, strict=True))])


def test_a_rate_of_change_fires_while_memory_climbs_fast():
    r = rule(kind="rate", metric="memory_used_percent", window_seconds=120, threshold=1.0)
    # +0.5 %/min, then +3 %/min, then flat.
    timeline = [(k * 30, 50 + 0.25 * k, ok) for k in range(5)]
    timeline += [(150 + k * 30, 51 + 1.5 * k, s) for k, s in enumerate([ok, ok, firing, firing])]
    timeline += [(270 + k * 30, 56, s) for k, s in enumerate([firing, firing, ok])]
    run_timeline(r, timeline)
    assert Alert.objects.get(rule=r).fired_at.timestamp() == T0 + 210


def test_a_forecast_fires_when_the_disk_fills_within_the_horizon_and_says_when():
    r = rule(
        kind="forecast",
        metric="filesystem_used_percent",
        window_seconds=3600,
        operator=">=",
        threshold=100,
        forecast_seconds=24 * 3600,
    )
    server = make_server("db-1")
    # 1 % per hour from 60 %: full in 40 h, no alert; then 4 % per hour: full in < 24 h.
    slow = [(T0 + t, 60 + t / 3600) for t in range(0, 3601, 300)]
    store(server, "filesystem_used_percent", slow, {"mountpoint": "/"})
    evaluate_alerts(T0 + 3600)
    assert state_of(r) == ok
    fast = [(T0 + 3600 + t, 61 + 4 * t / 3600) for t in range(300, 3601, 300)]
    store(server, "filesystem_used_percent", fast, {"mountpoint": "/"})
    evaluate_alerts(T0 + 7200)
    alert = Alert.objects.get(rule=r)
    assert alert.get_state_display() == firing
    # The line fitted over the last hour passes 65 % now, rising 4 %/h:
    # 100 % in 8.75 h.
    assert alert.value == pytest.approx(65, abs=0.5)
    assert alert.predicted_at.timestamp() == pytest.approx(T0 + 7200 + 8.75 * 3600, abs=600)
    assert alert.labels == {"mountpoint": "/"}


def test_a_forecast_ignores_a_disk_that_empties():
    r = rule(
        kind="forecast",
        metric="filesystem_used_percent",
        window_seconds=3600,
        operator=">=",
        threshold=100,
        forecast_seconds=86400,
    )
    server = make_server("db-1")
    store(server, "filesystem_used_percent", [(T0 + t, 95 - t / 360) for t in range(0, 3601, 300)])
    evaluate_alerts(T0 + 3600)
    assert state_of(r) == ok
    assert Alert.objects.filter(rule=r).count() == 0


def test_no_data_fires_for_a_silent_series_of_a_live_server_only():
    r = rule(kind="no_data", metric="disk_read_bytes_per_second", no_data_seconds=120)
    live, dead = make_server("live"), make_server("dead")
    for s in (live, dead):
        store(s, "disk_read_bytes_per_second", [(T0, 1.0)], {"device": "sda"})
    from vigil.servers.models import Server

    Server.objects.filter(pk=dead.pk).update(status=Server.Status.DOWN)
    evaluate_alerts(T0 + 60)
    assert state_of(r, live) == ok
    evaluate_alerts(T0 + 150)
    assert state_of(r, live) == firing
    assert state_of(r, dead) == ok  # its server is down: the host-down rule speaks
    store(live, "disk_read_bytes_per_second", [(T0 + 170, 2.0)], {"device": "sda"})
    evaluate_alerts(T0 + 180)
    assert state_of(r, live) == ok


def test_a_series_that_disappears_is_reported_gone_once(settings):
    settings.ALERT_SERIES_GONE_AFTER_SECONDS = 600
    settings.ALERT_GROUP_WAIT_SECONDS = 0
    r = rule(metric="filesystem_used_percent", threshold=90, repeat_seconds=300)
    server = make_server("web-1")
    store(server, "filesystem_used_percent", [(T0, 95)], {"mountpoint": "/mnt/backup"})
    evaluate_alerts(T0)
    assert state_of(r) == firing
    # The file system is unmounted; the server keeps reporting other metrics.
    for k in range(1, 40):
        t = T0 + k * 60
        store(server, "cpu_usage_percent", [(t, 10)])
        evaluate_alerts(t)
    assert state_of(r) == gone
    # Reminded every 5 min while it could still come back, then said gone once.
    assert kinds(r) == ["firing", "repeat", "repeat", "gone"]
    assert list(
        AlertEvent.objects.filter(rule=r).order_by("at").values_list("kind", flat=True)
    ) == [
        "firing",
        "gone",
    ]


def test_host_down_follows_the_up_samples_and_resolves_once(settings):
    settings.ALERT_GROUP_WAIT_SECONDS = 0
    settings.SERVER_DOWN_AFTER_SECONDS = 60
    from vigil.alerts.engine import at
    from vigil.servers.models import Server
    from vigil.servers.tasks import update_up

    r = rule(name="down", kind="host_down", metric="up", for_seconds=120)
    server = make_server("web-1")
    states = []
    for k in range(0, 30):
        t = T0 + k * 30
        reporting = not 4 <= k < 16
        if reporting:
            store(server, "cpu_usage_percent", [(t, 10)])
            # The writer marks a server seen at the wall clock's time.
            Server.objects.filter(pk=server.pk).update(last_seen=at(t), status="up")
        update_up(t)
        evaluate_alerts(t)
        states.append(state_of(r)[0])
    # Last report at +90 s: down at +180 (over 60 s overdue), firing 120 s
    # later, resolved by the first report at +480.
    assert "".join(states) == "oooooo" + "pppp" + "ffffff" + "o" * 14
    assert kinds(r) == ["firing", "resolved"]


def test_per_core_divides_by_the_servers_cores():
    r = rule(metric="load1", per_core=True, threshold=2)
    big, small = make_server("big"), make_server("small")
    store(big, "cpu_cores", [(T0, 16)])
    store(small, "cpu_cores", [(T0, 2)])
    for s in (big, small):
        store(s, "load1", [(T0, 8.0)])
    evaluate_alerts(T0)
    assert (state_of(r, big), state_of(r, small)) == (ok, firing)
    assert Alert.objects.get(rule=r).value == pytest.approx(4.0)


def test_scope_and_label_matchers_choose_the_series():
    from vigil.servers.models import Location, Server, Tag

    paris = Location.objects.create(name="paris")
    db = Tag.objects.create(name="db")
    a, b, c = make_server("a", location=paris), make_server("b"), make_server("c")
    a.tags.add(db)
    retired = make_server("old", location=paris)
    for s in (a, b, c, retired):
        for mount in ("/", "/boot", "/run/user"):
            store(s, "filesystem_used_percent", [(T0, 95)], {"mountpoint": mount})
    Server.objects.filter(pk=retired.pk).update(status=Server.Status.RETIRED)
    by_location = rule(
        name="paris",
        metric="filesystem_used_percent",
        threshold=90,
        scope="location",
        location=paris,
        matchers="mountpoint!~/run/.*",
    )
    by_tag = rule(
        name="db",
        metric="filesystem_used_percent",
        threshold=90,
        scope="tag",
        tag=db,
        matchers="mountpoint=/",
    )
    one = rule(
        name="b",
        metric="filesystem_used_percent",
        threshold=90,
        scope="server",
        server=b,
        matchers="mountpoint=~/|/boot",
    )
    evaluate_alerts(T0)

    def firing_on(r):
        return sorted(
            (a.server.name, a.labels["mountpoint"])
            for a in Alert.objects.filter(rule=r, state=Alert.State.FIRING)
        )

    assert firing_on(by_location) == [("a", "/"), ("a", "/boot")]
    assert firing_on(by_tag) == [("a", "/")]
    assert firing_on(one) == [("b", "/"), ("b", "/boot")]


def test_evaluating_twice_at_once_changes_nothing():
    r = rule(threshold=90)
    server = make_server("web-1")
    store(server, "cpu_usage_percent", [(T0, 95)])
    first = evaluate_alerts(T0)
    second = evaluate_alerts(T0 + 1)
    assert first["fired"] == 1 and second.get("fired", 0) == 0 and second["skipped"] == 1
    assert Alert.objects.filter(rule=r).count() == 1
    assert AlertEvent.objects.filter(rule=r).count() == 1


def test_a_broken_rule_keeps_its_error_and_the_others_run():
    good = rule(threshold=90)
    bad = rule(name="bad", threshold=90)
    Rule.objects.filter(pk=bad.pk).update(matchers="mountpoint=~(")
    store(make_server("web-1"), "cpu_usage_percent", [(T0, 95)])
    out = evaluate_alerts(T0)
    assert out["errors"] == 1 and state_of(good) == firing
    assert "regular expression" in Rule.objects.get(pk=bad.pk).last_error


def test_the_description_names_the_server_labels_and_value(settings):
    settings.ALERT_GROUP_WAIT_SECONDS = 0
    r = rule(
        metric="filesystem_used_percent",
        threshold=90,
        description="{label:mountpoint} on {server} is {value}% full ({nope})",
    )
    store(make_server("<b>db</b>"), "filesystem_used_percent", [(T0, 95.5)], {"mountpoint": "/var"})
    evaluate_alerts(T0)
    (n,) = Notification.objects.filter(rule=r)
    assert n.items[0]["description"] == "/var on <b>db</b> is 95.5% full ({nope})"
    assert n.items[0]["server"] == "<b>db</b>" and n.items[0]["key"].startswith("vigil-")
