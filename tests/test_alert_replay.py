"""A week of 50 servers replayed through ingest, update_up and the alert engine:
every injected incident pages exactly as an operator would want, and nothing
else does. The scenario lives in vigil/alerts/replay.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection, transaction

from vigil.alerts import replay
from vigil.alerts.defaults import create_default_rules
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule
from vigil.alerts.replay import DAY, START, TICK, label
from vigil.alerts.tasks import evaluate_alerts
from vigil.ingest import writer
from vigil.ingest.parsers.base import SeriesPoints
from vigil.metrics.models import Sample
from vigil.servers.models import Location
from vigil.servers.tasks import update_up
from vigil.testing import make_server, store

CPU = "CPU above 90%"
FS = "File system above 90%"
FORECAST = "File system full within 24 h"
DOWN = "Server down"
LOAD = "Load per core above 2"
FLAP = replay.FLAP_RULE
NO_DATA = replay.NO_DATA_RULE


def t(day: int, hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return START + day * DAY + int(hours) * 3600 + int(minutes) * 60


# Why each line is due. Rules run every 10 min (:00, :10, ...) with the
# default group wait of 30 s, so a notification goes out at the evaluation
# after the one where its alert fired or resolved.
EXPECTED = [
    # cpu_spike (ams-02, 0 10:00): one 5-min sample above 90%: pending at
    # 10:00, back to ok at 10:10 without a word.
    # cpu_sustained: above 90% from 09:00 to 09:30: pending 09:00, fires at
    # 09:10 (held 5 min), resolves 09:30.
    (t(1, "09:20"), "firing", CPU, ("fra-03",)),
    (t(1, "09:40"), "resolved", CPU, ("fra-03",)),
    # cpu_group: three servers cross in the same minute: one message each way.
    (t(1, "14:20"), "firing", CPU, ("ams-04", "lon-05", "sfo-06")),
    (t(1, "14:40"), "resolved", CPU, ("ams-04", "lon-05", "sfo-06")),
    # disk_filling: the 6 h trend reaches 100% within 24 h from 2 12:02, so
    # it breaches at 12:10 and fires at 12:20 after its 10 min hold; the
    # operator acknowledges it at 12:40, so no reminders in the 21 h it fires.
    # Above 90% from 3 06:02: breaches 06:10, fires 06:20 (2 min hold). The
    # clean-up at 09:00 resolves the threshold at once, the trend at 09:10.
    (t(2, "12:30"), "firing", FORECAST, ("nyc-07",)),
    (t(2, "12:40"), "acknowledged", FORECAST, ("nyc-07",)),
    (t(3, "06:30"), "firing", FS, ("nyc-07",)),
    (t(3, "09:10"), "resolved", FS, ("nyc-07",)),
    (t(3, "09:20"), "resolved", FORECAST, ("nyc-07",)),
    # server_down: silent from 4 03:00, down at 03:05 (its second missed
    # report), pending 03:10, fires 03:20; back with its spool at 04:00.
    (t(4, "03:30"), "firing", DOWN, ("lon-02",)),
    (t(4, "04:10"), "resolved", DOWN, ("lon-02",)),
    # location_outage: 8 of fra's 10 silent from 19:55, down at 20:00: the
    # location fires at 20:10 and pages; its servers' own host-down alerts
    # fire too, suppressed. All back at 20:25, resolved at 20:30.
    (t(4, "20:20"), "firing", DOWN, ("location fra",)),
    (t(4, "20:40"), "resolved", DOWN, ("location fra",)),
    # flapping: fires and resolves at every evaluation from 5 08:00 to 10:00;
    # at the 6th, 30% of the last 21 evaluations changed state: "flapping",
    # said once, while it flaps. Calm again, it settles (under 25%) at 12:30
    # and says it resolved.
    (t(5, "08:50"), "flapping", FLAP, ("sfo-09",)),
    (t(5, "12:30"), "resolved", FLAP, ("sfo-09",)),
    # load_long: fires 18:10 (10 min hold), a reminder every 4 h after the
    # page, resolves 03:00.
    (t(5, "18:20"), "firing", LOAD, ("ams-08",)),
    (t(5, "22:20"), "repeat", LOAD, ("ams-08",)),
    (t(6, "02:20"), "repeat", LOAD, ("ams-08",)),
    (t(6, "03:10"), "resolved", LOAD, ("ams-08",)),
    # cpu_missing: the last CPU sample is from 11:55 less its agent's phase:
    # more than 10 min old at 12:10, when it fires; readings back at 12:40.
    (t(6, "12:20"), "firing", NO_DATA, ("ams-09",)),
    (t(6, "12:50"), "resolved", NO_DATA, ("ams-09",)),
]


def table(rows) -> str:
    return "\n".join(
        f"  {label(at)}  {kind:<12} {rule:<28} {', '.join(who)}" for at, kind, rule, who in rows
    )


def events(alert: Alert) -> list[tuple[str, str]]:
    return [(label(e.at.timestamp()), e.kind) for e in alert.events.order_by("at", "id")]


# One test: replaying the week takes most of a minute, and every assertion
# reads the same replay.
@pytest.mark.django_db(transaction=True)
def test_it_pages_each_incident_of_a_week_once_and_nothing_else(settings):
    # Agents report every 5 min here, not every 10 s: a server is down once
    # it missed two reports, not 60 s after its last one.
    settings.SERVER_DOWN_AFTER_SECONDS = 420
    if connection.vendor == "postgresql":
        # Thousands of commits to a throwaway database need not wait for the disk.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
    replay.setup()
    began, cpu_began = time.perf_counter(), time.process_time()
    spent = replay.run()
    elapsed, cpu_time = time.perf_counter() - began, time.process_time() - cpu_began
    got = replay.sent()

    # 1. Exactly the expected notifications, each within a tick of its time.
    actual = [(n.at, n.kind, n.rule, n.subjects) for n in got]
    message = f"expected:\n{table(EXPECTED)}\nactual:\n{table(actual)}"
    assert [row[1:] for row in actual] == [row[1:] for row in EXPECTED], message
    for (at, *_), (due, *_) in zip(actual, EXPECTED, strict=True):
        assert abs(at - due) < TICK, message

    # 2. The forecast says when the disk fills: 36 h 150 s after it began to grow.
    full = replay.moment(replay.DISK_GROWTH) + replay.DISK_FULL_SECONDS
    (forecast,) = [n for n in got if n.rule == FORECAST and n.kind == "firing"]
    (item,) = forecast.items
    predicted = datetime.fromisoformat(item["predicted_at"]).timestamp()
    assert abs(predicted - full) < TICK, label(predicted)
    assert "will be full at" in item["description"]

    (ack,) = [n for n in got if n.kind == "acknowledged"]
    assert [(i["acknowledged_by"], i["comment"]) for i in ack.items] == [
        ("oncall", "cleaning up the logs")
    ]

    # 3. The history of one incident, as the alerts page shows it.
    disk = Alert.objects.get(rule__name=FORECAST, server__name="nyc-07")
    assert events(disk) == [
        ("2 12:20", "firing"),
        ("2 12:40", "acknowledged"),
        ("3 09:10", "resolved"),
    ]
    cpu = Alert.objects.get(rule__name=CPU, server__name="fra-03")
    assert events(cpu) == [("1 09:10", "firing"), ("1 09:30", "resolved")]

    # 4. The server that was down had only its host-down alert, and its spool
    # (CPU at 99%) filled the hour it was away without waking any rule.
    assert set(
        AlertEvent.objects.filter(server__name="lon-02").values_list("rule__name", flat=True)
    ) == {DOWN}
    gap = Sample.objects.filter(
        series__server__name="lon-02",
        series__metric="cpu_usage_percent",
        ts__gte=t(4, "03:00") - 60,
        ts__lt=t(4, "04:00") - 60,
    )
    assert gap.count() == 12
    # Meanwhile update_up said it was down from its second missed report on.
    up = Sample.objects.filter(
        series__server__name="lon-02",
        series__metric="up",
        ts__gte=t(4, "02:55"),
        ts__lte=t(4, "04:05"),
    ).order_by("ts")
    assert list(up.values_list("value", flat=True)) == [1, 1, *[0] * 11, 1, 1]

    # 5. In the location outage each server's host-down alert fired, and was
    # suppressed: the location spoke for them.
    fra = Alert.objects.filter(rule__name=DOWN, server__location__name="fra")
    assert sorted(fra.values_list("server__name", flat=True)) == [
        f"fra-{i:02d}" for i in range(1, 9)
    ]
    assert all(events(a) == [("4 20:10", "firing"), ("4 20:30", "resolved")] for a in fra)
    assert all(a.notifications.count() == 0 for a in fra)

    # 6. No other alert even fired (suppressed or not): not the short spike,
    # not a "no data" of a server that was down. Nothing is left firing.
    fired = set(AlertEvent.objects.filter(kind="firing").values_list("rule__name", "server__name"))
    assert fired == {
        (CPU, "fra-03"),
        (CPU, "ams-04"),
        (CPU, "lon-05"),
        (CPU, "sfo-06"),
        (FORECAST, "nyc-07"),
        (FS, "nyc-07"),
        (DOWN, "lon-02"),
        *((DOWN, f"fra-{i:02d}") for i in range(1, 9)),
        (DOWN, None),  # the location's alert
        (FLAP, "sfo-09"),
        (LOAD, "ams-08"),
        (NO_DATA, "ams-09"),
    }
    assert not Alert.objects.exclude(state=Alert.State.OK).exists()

    print(f"\n{replay.summary(got)}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())
    print(
        f"replayed {replay.TICKS} ticks on {connection.vendor} in {elapsed:.1f} s "
        f"({timing}; this process used {cpu_time:.1f} s of CPU)"
    )


@pytest.mark.django_db
def test_it_says_an_alert_flaps_while_it_is_still_flapping():
    # An alert that changes at every evaluation never has a quiet moment: the
    # group wait must not hold its "flapping" back until it calms down.
    Rule.objects.all().delete()
    replay.add_rules()
    server = make_server("web-1")
    for i in range(10):
        now = START + 30 * i
        store(server, "memory_used_percent", [(now, 95.0 if i % 2 == 0 else 80.0)])
        evaluate_alerts(now)
    flapping = Notification.objects.filter(kind="flapping")
    assert list(flapping.values_list("created", flat=True)) == [
        datetime.fromtimestamp(START + 30 * 5, tz=UTC)
    ]
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_it_does_not_page_servers_still_booting_when_a_location_outage_ends(settings):
    settings.SERVER_DOWN_AFTER_SECONDS = 90
    create_default_rules(apps, None)
    Rule.objects.exclude(name=DOWN).delete()
    paris = Location.objects.create(name="paris")
    servers = [make_server(f"p{i}", location=paris) for i in range(10)]
    # Agents every minute; 8 servers silent from minute 5; five are back at
    # minute 15, the three slower to boot at minute 17.
    away = {i: range(5, 15 if i < 5 else 17) for i in range(8)}
    clock = {"now": float(START)}
    with replay.writer_clock(lambda: clock["now"]):
        for minute in range(25):
            now = START + 60 * minute
            clock["now"] = now
            items = [
                (s.pk, SeriesPoints(None, "load1", (), [now], [0.5]))
                for i, s in enumerate(servers)
                if minute not in away.get(i, ())
            ]
            with transaction.atomic():
                writer.write_now(items)
            update_up(now)
            evaluate_alerts(now)
    kinds = list(Notification.objects.order_by("created", "id").values_list("kind", "title"))
    assert kinds == [
        ("firing", "CRITICAL: Server down on location paris"),
        ("resolved", "Resolved: Server down on location paris"),
    ]


@pytest.mark.django_db
def test_it_does_not_call_series_gone_while_a_returning_agent_sends_its_spool(settings):
    settings.SERVER_DOWN_AFTER_SECONDS = 90
    settings.ALERT_SERIES_GONE_AFTER_SECONDS = 600
    Rule.objects.all().delete()
    replay.add_rules()  # among them, a no-data rule on cpu_usage_percent
    server = make_server("web-1")

    def cpu(timestamps: list[int]) -> list:
        return [
            (
                server.pk,
                SeriesPoints(None, "cpu_usage_percent", (), timestamps, [20.0] * len(timestamps)),
            )
        ]

    # Silent from minute 5 to 25 (longer than the 10 min after which a series
    # is gone); back at minute 25, its agent sends the spool oldest first: the
    # first request holds minutes 5 to 9 only, and an evaluation runs before
    # the rest arrives.
    sent_at = {m: [START + 60 * m] for m in range(35) if not 5 <= m < 26}
    sent_at[25] = [START + 60 * k for k in range(5, 10)]
    sent_at[26] = [START + 60 * k for k in range(10, 27)]
    clock = {"now": float(START)}
    with replay.writer_clock(lambda: clock["now"]):
        for minute in range(35):
            now = START + 60 * minute
            clock["now"] = now
            if minute in sent_at:
                with transaction.atomic():
                    writer.write_now(cpu(sent_at[minute]))
            update_up(now)
            evaluate_alerts(now)
    assert not Notification.objects.filter(kind="gone").exists()
