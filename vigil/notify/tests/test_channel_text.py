"""What each HTTP channel says, as plain functions: no database, no network."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.notify.channels import _common, opsgenie, pagerduty, slack, sms, webhook
from vigil.notify.tests.receivers import OPSGENIE_CREATE, PAGERDUTY_EVENT, WEBHOOK_PAYLOAD
from vigil.notify.tests.receivers import _schema_problems as schema_problems
from vigil.notify.tests.samples import CREATED, ROUTING_KEY, item, message

HOSTILE = [
    "<script>alert(1)</script>",
    "<!channel>",
    "<!here|here> & <@U123>",
    "web-1\" onmouseover='x'",
    "&amp; already escaped &lt;",
    "line\nbreak",
]


@pytest.mark.parametrize(
    "value, text",
    [
        (None, ""),
        (97, "97"),
        (97.0, "97"),
        (97.2549, "97.25"),
        (12345.678, "12345.68"),
        (0.000123456, "0.000123"),
        (-3.5, "-3.5"),
        (float("nan"), "nan"),
        ("up", "up"),
    ],
)
def test_it_formats_values_as_people_read_them(value, text):
    assert _common.format_value(value) == text


def test_it_truncates_with_an_ellipsis_within_the_limit():
    assert _common.truncate("abcdef", 6) == "abcdef"
    assert _common.truncate("abcdefgh", 6) == "abcde…"
    assert len(_common.truncate("x" * 2000, 1024)) == 1024


# --- Slack ---------------------------------------------------------------------


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@pytest.mark.parametrize("name", HOSTILE)
def test_slack_escapes_every_user_string_and_keeps_its_meaning(name):
    msg = message(
        items=[item(1, server=name, location=name, description=name)],
        title=f"CRITICAL: {name}",
        rule=name,
    )
    doc = slack.payload(msg)
    attachment = doc["attachments"][0]
    for text in (doc["text"], attachment["fallback"], attachment["title"], attachment["text"]):
        assert "<" not in text and ">" not in text
        assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
    flat = _common.one_line(name)
    assert flat in _unescape(attachment["text"])
    assert _unescape(attachment["title"]) == flat


def test_slack_makes_a_channel_mention_inert():
    doc = slack.payload(message(items=[item(1, server="<!channel> wake up")]))
    assert "&lt;!channel&gt; wake up" in doc["attachments"][0]["text"]


@pytest.mark.parametrize(
    "kind, severity, colour",
    [
        ("firing", "critical", "#d40e0d"),
        ("firing", "warning", "#f2a100"),
        ("firing", "info", "#2f7bd9"),
        ("repeat", "critical", "#d40e0d"),
        ("acknowledged", "warning", "#f2a100"),
        ("resolved", "critical", "#2eb67d"),
        ("gone", "warning", "#8d8d8d"),
        ("test", "info", "#2f7bd9"),
    ],
)
def test_slack_colours_the_message_by_severity_and_green_once_resolved(kind, severity, colour):
    assert slack.payload(message(kind, severity=severity))["attachments"][0]["color"] == colour


def test_slack_lists_each_server_with_value_and_description_and_links_the_alerts():
    msg = message(items=2)
    attachment = slack.payload(msg)["attachments"][0]
    lines = attachment["text"].split("\n")
    assert lines == [
        "*web-1* (Paris) value 98.25 — / on web-1 is 98% full",
        "*web-2* (Paris) value 99.25 — / on web-2 is 99% full",
    ]
    assert attachment["title_link"] == msg.link
    assert attachment["ts"] == int(datetime.fromisoformat(CREATED).timestamp())


def test_slack_says_resolved_without_the_stale_value():
    msg = message("resolved", title="Resolved: disk full on web-1")
    doc = slack.payload(msg)
    assert doc["text"] == "Resolved: disk full on web-1"
    assert "value" not in doc["attachments"][0]["text"]
    assert doc["attachments"][0]["footer"] == "Vigil · resolved"


def test_slack_names_who_acknowledged_and_why():
    msg = message("acknowledged", items=[item(1, acknowledged_by="alice", comment="on <it>")])
    assert "acknowledged by alice: on &lt;it&gt;" in slack.payload(msg)["attachments"][0]["text"]


def test_slack_caps_the_list_at_twenty_servers():
    text = slack.payload(message(items=23))["attachments"][0]["text"]
    lines = text.split("\n")
    assert len(lines) == 21
    assert lines[-1] == "and 3 more"


# --- PagerDuty -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, action",
    [
        ("firing", "trigger"),
        ("repeat", "trigger"),
        ("flapping", "trigger"),
        ("acknowledged", "acknowledge"),
        ("resolved", "resolve"),
        ("gone", "resolve"),
    ],
)
def test_pagerduty_sends_one_event_per_alert_keyed_by_the_alert(kind, action):
    msg = message(kind, items=3)
    events = pagerduty.events(msg, ROUTING_KEY)
    assert [e["event_action"] for e in events] == [action] * 3
    assert [e["dedup_key"] for e in events] == [i["key"] for i in msg.items]
    for event in events:
        assert schema_problems(PAGERDUTY_EVENT, event) == []
        assert ("payload" in event) == (action == "trigger")


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
def test_pagerduty_maps_severity_and_fills_the_common_event_format(severity):
    msg = message(items=[item(1, severity=severity, predicted_at="2026-09-22T00:00:00+00:00")])
    (event,) = pagerduty.events(msg, ROUTING_KEY)
    payload = event["payload"]
    assert payload["severity"] == severity
    assert payload["source"] == "web-1"
    assert payload["group"] == "Paris"
    assert payload["class"] == "disk full"
    assert payload["timestamp"] == "2026-09-21T09:58:00+00:00"
    assert (
        payload["summary"]
        == f"{severity.upper()}: disk full on web-1 = 98.25: / on web-1 is 98% full"
    )
    details = payload["custom_details"]
    assert details["labels"] == {"mountpoint": "/"}
    assert details["value"] == 98.25
    assert details["predicted_at"] == "2026-09-22T00:00:00+00:00"
    assert event["links"] == [{"href": msg.link, "text": "Alerts in Vigil"}]


def test_pagerduty_summary_stays_within_1024_characters():
    msg = message(items=[item(1, description="x" * 5000)])
    (event,) = pagerduty.events(msg, ROUTING_KEY)
    assert len(event["payload"]["summary"]) == 1024
    assert event["payload"]["summary"].endswith("…")


def test_pagerduty_uses_the_location_as_source_for_a_location_outage():
    msg = message(items=[item(1, server="", location="Frankfurt", value=None)])
    (event,) = pagerduty.events(msg, ROUTING_KEY)
    assert event["payload"]["source"] == "Frankfurt"


def test_a_pagerduty_test_triggers_and_resolves_under_a_key_of_its_own():
    msg = message("test")
    trigger, resolve = pagerduty.events(msg, ROUTING_KEY)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == f"vigil-test-{msg.delivery_key}"
    assert schema_problems(PAGERDUTY_EVENT, trigger) == []


# --- Opsgenie ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, path",
    [
        ("firing", "/v2/alerts"),
        ("repeat", "/v2/alerts"),
        ("flapping", "/v2/alerts"),
        ("acknowledged", "/v2/alerts/vigil-1-1790000000/acknowledge?identifierType=alias"),
        ("resolved", "/v2/alerts/vigil-1-1790000000/close?identifierType=alias"),
        ("gone", "/v2/alerts/vigil-1-1790000000/close?identifierType=alias"),
    ],
)
def test_opsgenie_creates_acknowledges_and_closes_by_alias(kind, path):
    ((url, body),) = opsgenie.requests(message(kind), "https://api.eu.opsgenie.com")
    assert url == "https://api.eu.opsgenie.com" + path
    if path == "/v2/alerts":
        assert body["alias"] == "vigil-1-1790000000"
        assert schema_problems(OPSGENIE_CREATE, body) == []


@pytest.mark.parametrize(
    "severity, priority", [("critical", "P1"), ("warning", "P3"), ("info", "P5")]
)
def test_opsgenie_maps_severity_to_priority(severity, priority):
    ((_, body),) = opsgenie.requests(message(items=[item(1, severity=severity)]), "https://x")
    assert body["priority"] == priority


def test_opsgenie_keeps_the_message_within_130_characters_and_details_as_text():
    msg = message(items=[item(1, server="s" * 300, labels={"device": "sda", "n": "1"})])
    ((_, body),) = opsgenie.requests(msg, "https://x")
    assert len(body["message"]) == 130
    assert body["details"]["label:device"] == "sda"
    assert all(isinstance(v, str) for v in body["details"].values())
    assert body["entity"] == "s" * 300
    assert body["tags"] == ["vigil", "severity:critical", "rule:disk full", "location:Paris"]


def test_opsgenie_acknowledges_as_the_person_who_did_with_their_comment():
    msg = message("acknowledged", items=[item(1, acknowledged_by="alice", comment="on it")])
    ((_, body),) = opsgenie.requests(msg, "https://x")
    assert body == {"user": "alice", "source": "Vigil", "note": "on it"}


def test_opsgenie_quotes_an_alias_in_the_path():
    msg = message("resolved", items=[item(1, key="a/b c")])
    ((url, _),) = opsgenie.requests(msg, "https://x")
    assert url == "https://x/v2/alerts/a%2Fb%20c/close?identifierType=alias"


def test_opsgenie_region_chooses_the_api_and_an_override_wins():
    assert opsgenie.api_base({}) == "https://api.opsgenie.com"
    assert opsgenie.api_base({"region": "eu"}) == "https://api.eu.opsgenie.com"
    assert opsgenie.api_base({"region": "eu", "api_base": "http://127.0.0.1:9"}) == (
        "http://127.0.0.1:9"
    )


# --- Webhook -------------------------------------------------------------------


def test_the_webhook_payload_has_the_documented_fields():
    msg = message(items=2)
    doc = webhook.payload(msg)
    assert schema_problems(WEBHOOK_PAYLOAD, doc) == []
    assert doc["delivery"] == msg.delivery_key
    assert doc["test"] is False
    assert doc["items"][0]["key"] == "vigil-1-1790000000"
    assert webhook.payload(message("test"))["test"] is True


def test_the_webhook_signature_is_the_hmac_of_timestamp_and_body():
    body = b'{"kind":"firing"}'
    expected = hmac.new(b"k" * 16, b"1790000000." + body, hashlib.sha256).hexdigest()
    assert webhook.signature("k" * 16, "1790000000", body) == f"sha256={expected}"


def test_the_webhook_body_is_the_same_on_every_attempt():
    msg = message(items=2)
    first = _common.dumps(webhook.payload(msg))
    assert first == _common.dumps(webhook.payload(msg))
    headers = webhook.headers_for(msg, first, "s" * 16, {"X-Team": "ops"}, 1790000000.5)
    assert headers["X-Vigil-Delivery"] == msg.delivery_key
    assert headers["X-Vigil-Event"] == "firing"
    assert headers["X-Vigil-Timestamp"] == "1790000000"
    assert headers["X-Team"] == "ops"
    assert "X-Vigil-Signature" not in webhook.headers_for(msg, first, "", {}, 1790000000)


@pytest.mark.parametrize("name", HOSTILE)
def test_the_webhook_carries_hostile_names_exactly(name):
    doc = orjson.loads(_common.dumps(webhook.payload(message(items=[item(1, server=name)]))))
    assert doc["items"][0]["server"] == name


# --- SMS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, gsm, size",
    [
        ("web-1 97%", True, 9),
        ("wéb-1 è à ü Ö ñ ß", True, 17),  # all in the GSM alphabet
        ("{web}[1]", True, 12),  # the extension table costs two septets
        ("€5", True, 3),
        ("web`1", False, 5),  # a backtick is not GSM-7
        ("web-ç", False, 5),  # only the capital Ç is
        ("héllo 😀", False, 8),  # astral: two UTF-16 units
        ("Привет", False, 6),
    ],
)
def test_sms_counts_septets_or_utf16_units(text, gsm, size):
    assert sms.is_gsm(text) is gsm
    assert sms.length(text) == size


@pytest.mark.parametrize(
    "text, count",
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("ж" * 70, 1), ("ж" * 71, 2)],
)
def test_sms_segments_follow_the_single_and_concatenated_limits(text, count):
    assert sms.segments(text) == count


def test_sms_fit_cuts_gsm_text_to_160_with_three_dots():
    text = sms.fit("x" * 200)
    assert len(text) == 160 and text.endswith("...")


def test_sms_fit_cuts_unicode_text_to_70_with_an_ellipsis_and_never_splits_a_pair():
    text = sms.fit("😀" * 50)
    assert text.endswith("…")
    assert len(text.encode("utf-16-le")) // 2 <= 70
    assert text[:-1] == "😀" * 34


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("firing", "CRITICAL disk full: web-1 98.25 +2 more"),
        ("repeat", "STILL CRITICAL disk full: web-1 98.25 +2 more"),
        ("flapping", "FLAPPING disk full: web-1 98.25 +2 more"),
        ("resolved", "RESOLVED disk full: web-1 +2 more"),
        ("gone", "GONE disk full: web-1 +2 more"),
    ],
)
def test_sms_text_is_compact_and_links_the_alerts_when_it_fits(kind, expected):
    msg = message(kind, items=3)
    assert sms.sms_text(msg) == f"{expected} {msg.link}"


def test_sms_text_names_who_acknowledged():
    msg = message("acknowledged", items=[item(1, acknowledged_by="alice")], link="")
    assert sms.sms_text(msg) == "ACK disk full: web-1 98.25 by alice"


def test_sms_text_drops_the_link_before_cutting_the_message():
    msg = message(items=[item(1, server="db-" + "x" * 110)])
    assert sms.sms_text(msg) == f"CRITICAL disk full: db-{'x' * 110} 98.25"
    cut = sms.sms_text(message(items=[item(1, server="db-" + "x" * 200)]))
    assert cut == f"CRITICAL disk full: db-{'x' * 134}..."
    assert sms.length(cut) == 160


@settings(max_examples=300, deadline=None)
@given(server=st.text(max_size=300), rule=st.text(min_size=1, max_size=80))
def test_sms_text_is_one_segment_for_any_names(server, rule):
    msg = message(items=[item(1, server=server), item(2)], rule=rule)
    text = sms.sms_text(msg)
    assert sms.segments(text) == 1
    if sms.is_gsm(text):
        assert len(text) + sum(c in sms.GSM_EXTENDED for c in text) <= 160
    else:
        assert len(text.encode("utf-16-le")) // 2 <= 70
    assert text.startswith("CRITICAL")
    assert "\n" not in text and "\r" not in text
