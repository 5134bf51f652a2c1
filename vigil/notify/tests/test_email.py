"""The e-mail channel: its formatting on its own (no database, no network),
and real SMTP sessions against aiosmtpd on 127.0.0.1, plain, with STARTTLS
and a login, and with implicit TLS, using certificates of a test CA that is
trusted through VIGIL_EMAIL_CA_FILE (verification stays on)."""

from __future__ import annotations

import email
import socket
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from urllib.parse import quote

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from vigil.alerts.dispatch import TITLES
from vigil.alerts.models import Notification, Rule
from vigil.lib import smtp
from vigil.notify import delivery
from vigil.notify.channels import email as channel
from vigil.notify.channels.email import EmailTransport
from vigil.notify.models import Attempt, Channel, Delivery
from vigil.notify.transports import REGISTRY, Message, TransportError

# aiosmtpd warns of AUTH without STARTTLS even when the session is TLS from
# the start (smtps); the tests check the session was encrypted.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

HOSTILE = "<script>alert(1)</script>"
USER = "ops@example.com"
PASSWORD = "p@ss:w/rd %20&?#"  # percent-encoded in the URL, decoded by Vigil


def item(**kw) -> dict:
    base = {
        "alert": 7,
        "key": "vigil-7-1790000000",
        "rule": "cpu",
        "severity": "critical",
        "server": "web-1",
        "location": "Paris",
        "labels": {"cpu": "total"},
        "value": 97.5,
        "description": "CPU at 97.5% on web-1",
        "fired_at": "2026-09-21T14:13:20+00:00",
        "resolved_at": None,
        "predicted_at": None,
        "acknowledged_by": None,
        "comment": "",
    }
    return {**base, **kw}


def message(kind: str = "firing", **kw) -> Message:
    base = {
        "kind": kind,
        "title": "CRITICAL: cpu on web-1",
        "severity": "critical",
        "rule": "cpu",
        "items": [item()],
        "link": "https://vigil.example.com/alerts/",
        "delivery_key": "0b7e3d0c-4bb5-4d4c-9a3e-6f1d1f6f2a10",
        "created": "2026-09-21T14:13:30+00:00",
    }
    return Message(**{**base, **kw})


def hostile_message() -> Message:
    return message(
        title=f"CRITICAL: cpu on {HOSTILE}",
        rule=f"cpu {HOSTILE}",
        items=[
            item(
                server=HOSTILE,
                location="<i>Paris</i>",
                labels={"mount": '"/&<b>'},
                description="<img src=x onerror=alert(2)>",
                acknowledged_by="<u>mallory</u>",
                comment="<a href=javascript:alert(3)>x</a>",
            )
        ],
    )


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=default_policy)


def parts(mail: EmailMessage) -> tuple[str, str]:
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


# --- Server URLs and channel settings ---------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, False, False, "", "")),
        ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525, False, False, "", "")),
        ("smtp://relay:25?starttls=true", ("relay", 25, False, True, "", "")),
        ("smtp://u:pw@mail.example.com", ("mail.example.com", 587, False, True, "u", "pw")),
        ("smtp://u:pw@mail:25?starttls=false", ("mail", 25, False, False, "u", "pw")),
        ("smtps://u:pw@mail.example.com", ("mail.example.com", 465, True, False, "u", "pw")),
        ("smtps://[::1]:4650", ("::1", 4650, True, False, "", "")),
        (
            f"smtp://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@mail",
            ("mail", 587, False, True, USER, PASSWORD),
        ),
    ],
)
def test_it_parses_the_documented_smtp_urls(url, expected):
    server = smtp.parse_url(url)
    assert (
        server.host,
        server.port,
        server.implicit_tls,
        server.starttls,
        server.user,
        server.password,
    ) == expected
    assert server.timeout == smtp.DEFAULT_TIMEOUT


def test_it_takes_the_sender_and_timeout_from_the_query():
    server = smtp.parse_url("smtp://mail?from=vigil%2Bops@example.com&timeout=2.5")
    assert server.sender == "vigil+ops@example.com"
    assert server.timeout == 2.5
    # A literal "+" is not a space here, unlike in a form.
    assert smtp.parse_url("smtp://mail?from=vigil+ops@example.com").sender == (
        "vigil+ops@example.com"
    )
    assert smtp.parse_url("smtp://ops%40example.com:x@mail").sender == "ops@example.com"
    assert smtp.parse_url("smtp://mail", "alerts@example.org").sender == "alerts@example.org"


def test_it_sends_from_the_domain_of_the_base_url_by_default(settings):
    settings.BASE_URL = "https://vigil.example.com"
    assert channel.parse_smtp_url("smtp://mail").sender == "vigil@vigil.example.com"
    settings.BASE_URL = "http://127.0.0.1:8000"
    assert channel.parse_smtp_url("smtp://mail").sender == "vigil@localhost"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail", "smtp:// or smtps://"),
        ("smtp://", "no host"),
        ("smtp://mail:99999", "invalid port"),
        ("smtp://mail?form=vigil@example.com", "unknown SMTP URL parameter 'form'"),
        ("smtp://mail?starttls=maybe", "true or false"),
        ("smtps://mail?starttls=true", "does not apply"),
        ("smtp://mail?timeout=soon", "number of seconds"),
        ("smtp://mail?timeout=0", "more than 0"),
        ("smtp://mail?from=not-an-address", "not an e-mail address"),
        ("smtp://mail?from=a@example.com%0D%0ABcc:%20b@example.com", "not an e-mail address"),
    ],
)
def test_it_refuses_smtp_urls_that_are_wrong(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        smtp.parse_url(url)


def test_it_never_repeats_the_password_of_a_wrong_url():
    with pytest.raises(ValueError) as caught:
        smtp.parse_url("smtp://u:hunter2@mail?bogus=1")
    assert "hunter2" not in str(caught.value)


def test_it_validates_the_addresses_and_the_server_of_a_channel(settings):
    settings.EMAIL_URL = "smtp://127.0.0.1:25"
    validate = EmailTransport.validate
    assert validate({"to": ["a@example.com", "b@example.org"]}, {}) == {}
    assert validate({"to": []}, {}) == {"to": "give at least one e-mail address"}
    assert "not an e-mail address" in validate({"to": ["nobody"]}, {})["to"]
    injected = validate({"to": ["a@example.com\r\nBcc: x@example.com"]}, {})
    assert "not an e-mail address" in injected["to"]
    assert "list" in validate({"to": {"a": 1}}, {})["to"]
    assert validate({"to": ["a@example.com"]}, {"smtp_url": "smtps://u:p@mail?x=1"}) == {
        "smtp_url": "unknown SMTP URL parameter 'x' (from, starttls, timeout)"
    }
    settings.EMAIL_URL = ""
    assert "VIGIL_EMAIL_URL is not set" in validate({"to": ["a@example.com"]}, {})["smtp_url"]
    assert validate({"to": ["a@example.com"]}, {"smtp_url": "smtp://mail"}) == {}


def test_it_sends_once_to_each_address():
    assert channel.recipients({"to": ["a@example.com", "A@example.com", " b@example.com "]}) == [
        "a@example.com",
        "b@example.com",
    ]
    assert channel.recipients({"to": "a@example.com, b@example.com\nc@example.com"}) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


def test_it_registers_the_email_channel():
    assert REGISTRY["email"] is EmailTransport
    assert EmailTransport.secret_fields == ("smtp_url",)


# --- Formatting (no database, no network) ------------------------------------------


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        ("firing", "[Vigil] CRITICAL: cpu on web-1"),
        ("repeat", "[Vigil] Still firing, CRITICAL: cpu on web-1"),
        ("resolved", "[Vigil] Resolved: cpu on web-1"),
        ("gone", "[Vigil] Stopped reporting: cpu on web-1"),
        ("flapping", "[Vigil] Flapping: cpu on web-1"),
        ("acknowledged", "[Vigil] Acknowledged: cpu on web-1 (by alice)"),
    ],
)
def test_it_writes_a_subject_line_per_kind(kind, subject):
    title = TITLES[kind].format(severity="CRITICAL", rule="cpu") + " on web-1"
    items = [item(acknowledged_by="alice" if kind == "acknowledged" else None)]
    assert channel.render(message(kind, title=title, items=items)).subject == subject


def test_it_names_the_channel_in_the_subject_of_a_test():
    test = message("test", title="Test notification from Vigil to ops mail", items=[])
    rendered = channel.render(test)
    assert rendered.subject == "[Vigil] Test notification from Vigil to ops mail"
    assert "This is a test notification from Vigil" in rendered.text
    assert "This is a test notification from Vigil" in rendered.html


def test_it_keeps_the_subject_on_one_line():
    title = "CRITICAL: cpu on web-1\r\nBcc: victim@example.com\u2028X-Evil: 1\n"
    mail = channel.build(message(title=title), "vigil@example.com", ["ops@example.com"])
    back = parsed(mail.as_bytes())
    assert back["Subject"] == "[Vigil] CRITICAL: cpu on web-1 Bcc: victim@example.com X-Evil: 1"
    assert back["Bcc"] is None and back["X-Evil"] is None


@hypothesis_settings(max_examples=60, deadline=None)
@given(title=st.text(max_size=300), server=st.text(max_size=100))
def test_it_never_lets_a_user_string_start_a_header_of_its_own(title, server):
    mail = channel.build(
        message(title=title, items=[item(server=server)]), "vigil@example.com", ["a@example.com"]
    )
    back = parsed(mail.as_bytes())
    assert "\n" not in back["Subject"] and "\r" not in back["Subject"]
    assert sorted(set(back.keys())) == sorted(
        {
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Auto-Submitted",
            "X-Vigil-Kind",
            "X-Vigil-Severity",
            "MIME-Version",
            "Content-Type",
        }
    )


def test_it_writes_the_plain_text_body():
    forecast = item(
        server="db-1",
        location="",
        labels={"mount": "/var", "device": "sda1"},
        value=1234567.8,
        description="Disk /var full in 3 hours\nclean the logs",
        predicted_at="2026-09-21T17:13:20+00:00",
        acknowledged_by="alice",
        comment="on it",
    )
    text = channel.render(message(items=[item(), forecast])).text
    lines = text.splitlines()
    assert lines[0] == "CRITICAL: cpu on web-1"
    assert "Status:   Firing" in lines
    assert "Rule:     cpu" in lines
    assert "Severity: critical" in lines
    assert "* web-1 (Paris)" in lines
    assert "  Value:              97.5" in lines
    assert "  Labels:             cpu=total" in lines
    assert "  Fired:              2026-09-21 14:13:20 UTC" in lines
    assert "* db-1" in lines
    assert "  Value:              1,234,568" in lines
    assert "  Labels:             device=sda1, mount=/var" in lines
    assert "  Predicted crossing: 2026-09-21 17:13:20 UTC" in lines
    assert "  Acknowledged by:    alice (on it)" in lines
    # A description of several lines stays under its server.
    assert "  Disk /var full in 3 hours" in lines and "  clean the logs" in lines
    assert "Alerts: https://vigil.example.com/alerts/" in lines


def test_it_keeps_each_field_of_the_text_body_on_its_line():
    text = channel.render(message(rule="cpu\r\nSeverity: info", items=[item(server="a\nb")])).text
    assert "Rule:     cpu Severity: info" in text.splitlines()
    assert "* a b (Paris)" in text.splitlines()


def test_it_shows_times_in_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    assert "  Fired:              2026-09-21 16:13:20 CEST" in channel.render(message()).text


def test_it_escapes_every_user_string_in_the_html_part():
    rendered = channel.render(hostile_message())
    html = rendered.html
    for raw in (HOSTILE, "<i>Paris</i>", "<img", "<b>", "<u>mallory</u>", "<a href=javascript"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "mount=&quot;/&amp;&lt;b&gt;" in html
    assert "&lt;u&gt;mallory&lt;/u&gt;" in html
    # The text part shows the same strings as they are: text, not markup.
    assert f"* {HOSTILE} (<i>Paris</i>)" in rendered.text


def test_it_builds_the_html_table_with_colour_link_and_forecast():
    forecast = item(predicted_at="2026-09-21T17:13:20+00:00", acknowledged_by="alice")
    html = channel.render(message(items=[forecast])).html
    assert "<th>Predicted crossing</th>" in html and "2026-09-21 17:13:20 UTC" in html
    assert "<th>Acknowledged by</th>" in html and ">alice<" in html
    assert 'href="https://vigil.example.com/alerts/"' in html
    assert channel.SEVERITY_COLOURS["critical"] in html
    plain = channel.render(message()).html
    assert "Predicted crossing" not in plain and "Acknowledged by" not in plain


@pytest.mark.parametrize(
    ("kind", "severity", "colour"),
    [
        ("firing", "critical", "#c62828"),
        ("firing", "warning", "#e65100"),
        ("repeat", "info", "#1565c0"),
        ("resolved", "critical", "#2e7d32"),
        ("test", "info", "#546e7a"),
    ],
)
def test_it_colours_by_severity_and_green_once_resolved(kind, severity, colour):
    assert channel.context(message(kind, severity=severity))["colour"] == colour


@pytest.mark.parametrize(
    ("value", "shown"),
    [(97.5, "97.5"), (3.0, "3"), (0.00123, "0.00123"), (12.3456, "12.35"), (2.5e9, "2,500,000,000")]
    + [(None, ""), (float("nan"), "nan"), (42, "42")],
)
def test_it_formats_values_for_people(value, shown):
    assert channel.format_value(value) == shown


def test_it_derives_the_message_id_from_the_delivery_key_and_threads_by_alert():
    firing = channel.build(message(), "vigil@example.com", ["ops@example.com"])
    again = channel.build(message(), "vigil@example.com", ["ops@example.com"])
    resolved = channel.build(
        message("resolved", delivery_key="5f1c7a8e-0000-4000-8000-000000000001"),
        "vigil@example.com",
        ["ops@example.com"],
    )
    assert firing["Message-ID"] == "<0b7e3d0c-4bb5-4d4c-9a3e-6f1d1f6f2a10.vigil@example.com>"
    assert again["Message-ID"] == firing["Message-ID"] and again["Date"] == firing["Date"]
    assert resolved["Message-ID"] != firing["Message-ID"]
    thread = "<vigil-7-1790000000@example.com>"
    assert firing["References"] == resolved["References"] == thread
    assert firing["In-Reply-To"] == resolved["In-Reply-To"] == thread
    assert firing["Auto-Submitted"] == "auto-generated"
    assert (
        channel.build(message("test", items=[]), "v@example.com", ["a@example.com"])["References"]
        is None
    )


# --- Real SMTP sessions ---------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    authenticated: bool

    @property
    def mail(self) -> EmailMessage:
        return parsed(self.data)


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.rcpt_answers: dict[str, str] = {}
        self.data_answer = "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_answers:
            return self.rcpt_answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content or envelope.content,
                server.transport.get_extra_info("ssl_object") is not None,
                bool(session.authenticated),
            )
        )
        return self.data_answer


def check_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Tls:
    server: ssl.SSLContext
    ca_file: str


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Tls:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Tls(context, str(path))


@pytest.fixture
def smtp_server(tls, settings):
    """Starts aiosmtpd on a free port of 127.0.0.1: "plain", "starttls"
    (TLS and a login required) or "smtps" (TLS from the start, login required)."""
    settings.EMAIL_CA_FILE = tls.ca_file
    settings.BASE_URL = "https://vigil.example.com"
    running: list[Controller] = []

    def start(mode: str = "plain") -> tuple[Mailbox, int]:
        box, port = Mailbox(), free_port()
        if mode == "plain":
            options: dict = {}
        elif mode == "starttls":
            options = {
                "tls_context": tls.server,
                "require_starttls": True,
                "auth_required": True,
                "authenticator": check_login,
            }
        else:
            # aiosmtpd does not count implicit TLS as TLS for AUTH; the
            # handler checks that the session was encrypted.
            options = {
                "ssl_context": tls.server,
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": check_login,
            }
        controller = Controller(box, hostname="127.0.0.1", port=port, **options)
        controller.start()
        running.append(controller)
        return box, port

    yield start
    for controller in running:
        controller.stop()


def transport(settings, url: str, to=("ops@example.com",), secrets=None) -> EmailTransport:
    settings.EMAIL_URL = url
    return EmailTransport({"to": list(to)}, secrets or {})


CREDENTIALS = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"


def test_it_delivers_over_plain_smtp(smtp_server, settings):
    box, port = smtp_server("plain")
    sent = transport(
        settings,
        f"smtp://127.0.0.1:{port}?from=vigil%2Balerts@example.com",
        to=["ops@example.com", "oncall@example.org"],
    ).notify(hostile_message())
    assert (sent.status, sent.answer) == (250, "OK")
    [got] = box.received
    assert got.mail_from == "vigil+alerts@example.com"
    assert got.rcpt_tos == ["ops@example.com", "oncall@example.org"]
    assert not got.tls
    mail = got.mail
    assert mail["From"] == "vigil+alerts@example.com"
    assert mail["To"] == "ops@example.com, oncall@example.org"
    assert mail["Subject"] == f"[Vigil] CRITICAL: cpu on {HOSTILE}"
    assert mail["Message-ID"] == "<0b7e3d0c-4bb5-4d4c-9a3e-6f1d1f6f2a10.vigil@example.com>"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = parts(mail)
    assert f"* {HOSTILE} (<i>Paris</i>)" in text
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "https://vigil.example.com/alerts/" in text
    assert 'href="https://vigil.example.com/alerts/"' in html


def test_it_sends_over_starttls_with_a_login(smtp_server, settings):
    box, port = smtp_server("starttls")
    sent = transport(settings, f"smtp://{CREDENTIALS}@127.0.0.1:{port}").notify(message())
    assert sent.status == 250
    [got] = box.received
    assert got.tls and got.authenticated
    assert got.mail_from == USER  # the login is an address: it is the sender
    assert got.mail["Subject"] == "[Vigil] CRITICAL: cpu on web-1"


def test_it_sends_over_implicit_tls(smtp_server, settings):
    box, port = smtp_server("smtps")
    sent = transport(
        settings, f"smtps://{CREDENTIALS}@127.0.0.1:{port}?from=vigil@example.com"
    ).notify(message())
    assert (sent.status, sent.answer) == (250, "OK")
    [got] = box.received
    assert got.tls and got.authenticated


def test_it_verifies_the_certificate_unless_its_ca_is_trusted(smtp_server, settings):
    box, port = smtp_server("smtps")
    settings.EMAIL_CA_FILE = ""
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtps://{CREDENTIALS}@127.0.0.1:{port}").notify(message())
    assert caught.value.permanent
    assert "is not trusted" in str(caught.value)
    assert box.received == []


def test_it_fails_for_good_when_the_ca_file_is_missing(smtp_server, settings, tmp_path):
    box, port = smtp_server("starttls")
    settings.EMAIL_CA_FILE = str(tmp_path / "missing.pem")
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtp://{CREDENTIALS}@127.0.0.1:{port}").notify(message())
    assert caught.value.permanent
    assert "missing.pem' cannot be read" in str(caught.value)
    assert box.received == []


def test_it_never_sends_the_password_without_starttls(smtp_server, settings):
    box, port = smtp_server("plain")
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtp://{CREDENTIALS}@127.0.0.1:{port}").notify(message())
    assert caught.value.permanent
    assert "does not offer STARTTLS" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert box.received == []


def test_it_fails_for_good_on_a_wrong_password(smtp_server, settings):
    box, port = smtp_server("starttls")
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtp://{quote(USER, safe='')}:wrong@127.0.0.1:{port}").notify(
            message()
        )
    error = caught.value
    assert error.permanent and error.status == 535
    assert "Authentication credentials invalid" in error.answer
    assert "refused the login: 535" in str(error)
    assert box.received == []


def test_it_retries_when_the_server_answers_451(smtp_server, settings):
    box, port = smtp_server("plain")
    box.data_answer = "451 4.3.0 Try again later"
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtp://127.0.0.1:{port}").notify(message())
    error = caught.value
    assert not error.permanent
    assert (error.status, error.answer) == (451, "4.3.0 Try again later")


def test_it_fails_without_retry_when_the_mailbox_is_unavailable(smtp_server, settings):
    box, port = smtp_server("plain")
    box.rcpt_answers["gone@example.com"] = "550 5.1.1 Mailbox unavailable"
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtp://127.0.0.1:{port}", to=["gone@example.com"]).notify(message())
    error = caught.value
    assert error.permanent
    assert (error.status, error.answer) == (550, "5.1.1 Mailbox unavailable")
    assert box.received == []


def test_it_sends_to_the_others_when_one_recipient_is_refused(smtp_server, settings):
    box, port = smtp_server("plain")
    box.rcpt_answers["gone@example.com"] = "550 5.1.1 Mailbox unavailable"
    sent = transport(
        settings, f"smtp://127.0.0.1:{port}", to=["gone@example.com", "ops@example.com"]
    ).notify(message())
    assert sent.status == 250
    assert sent.answer == "OK; refused: gone@example.com (550 5.1.1 Mailbox unavailable)"
    assert [r.rcpt_tos for r in box.received] == [["ops@example.com"]]


def test_it_retries_when_the_server_is_down(settings):
    with pytest.raises(TransportError) as caught:
        transport(settings, f"smtp://127.0.0.1:{free_port()}").notify(message())
    assert not caught.value.permanent
    assert caught.value.status is None
    assert "Connection refused" in str(caught.value)


def test_it_retries_when_the_server_does_not_answer_in_time(settings):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts the connection, never greets
        port = silent.getsockname()[1]
        with pytest.raises(TransportError) as caught:
            transport(settings, f"smtp://127.0.0.1:{port}?timeout=0.3").notify(message())
    assert not caught.value.permanent
    assert "no answer from the SMTP server at 127.0.0.1:" in str(caught.value)


def test_it_holds_a_channels_own_server_to_the_ssrf_guard(smtp_server, settings):
    box, port = smtp_server("plain")
    own = {"smtp_url": f"smtp://127.0.0.1:{port}?from=vigil@example.com"}
    settings.NOTIFY_ALLOWED_NETWORKS = ""
    settings.NOTIFY_ALLOW_PRIVATE = False
    with pytest.raises(TransportError) as caught:
        transport(settings, "", secrets=own).notify(message())
    assert caught.value.permanent and "not allowed" in str(caught.value)
    assert box.received == []
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128"
    assert transport(settings, "", secrets=own).notify(message()).status == 250
    assert len(box.received) == 1


def test_it_fails_for_good_without_a_server(settings):
    with pytest.raises(TransportError) as caught:
        transport(settings, "").notify(message())
    assert caught.value.permanent and "VIGIL_EMAIL_URL is not set" in str(caught.value)


# --- Through the delivery log ---------------------------------------------------------


@pytest.mark.django_db
def test_it_logs_the_smtp_answer_of_each_attempt_and_keeps_the_message_id(smtp_server, settings):
    box, port = smtp_server("starttls")
    settings.EMAIL_URL = f"smtp://{CREDENTIALS}@127.0.0.1:{port}?from=vigil@example.com"
    settings.NOTIFY_MAX_ATTEMPTS = 3
    rule = Rule.objects.create(name="disk full", metric="disk_used_percent", severity="critical")
    now = timezone.now()
    notification = Notification.objects.create(
        kind=Notification.Kind.FIRING,
        rule=rule,
        severity="critical",
        title=f"CRITICAL: disk full on {HOSTILE}",
        items=[item(rule="disk full", server=HOSTILE)],
        created=now,
    )
    mail = Channel.objects.create(name="ops mail", kind="email", config={"to": ["ops@example.com"]})
    pending = Delivery.objects.create(notification=notification, channel=mail, next_attempt_at=now)

    box.data_answer = "451 4.3.0 Try again later"
    assert delivery.deliver(pending.pk, now) == "retry"
    box.data_answer = "250 2.0.0 Ok: queued as 4F2C1"
    assert delivery.deliver(pending.pk, now + timedelta(hours=2)) == "sent"

    log = list(Attempt.objects.filter(delivery=pending).order_by("number"))
    assert [(a.number, a.status_code, a.answer, a.outcome) for a in log] == [
        (1, 451, "4.3.0 Try again later", "retry"),
        (2, 250, "2.0.0 Ok: queued as 4F2C1", "sent"),
    ]
    assert "refused the message: 451" in log[0].error
    pending.refresh_from_db()
    assert pending.status == Delivery.Status.SENT
    # Both attempts reached the server: one Message-ID, so its copy can be dropped.
    first, second = (r.mail for r in box.received)
    assert first["Message-ID"] == second["Message-ID"] == f"<{pending.key}.vigil@example.com>"
    assert first["Subject"] == second["Subject"] == f"[Vigil] CRITICAL: disk full on {HOSTILE}"
    assert "&lt;script&gt;" in parts(second)[1]


@pytest.mark.django_db
def test_it_fails_a_delivery_to_an_unavailable_mailbox_at_once(smtp_server, settings):
    box, port = smtp_server("plain")
    settings.EMAIL_URL = f"smtp://127.0.0.1:{port}"
    box.rcpt_answers["gone@example.com"] = "550 5.1.1 Mailbox unavailable"
    mail = Channel.objects.create(name="gone", kind="email", config={"to": ["gone@example.com"]})
    outcome, attempt = delivery.send_test(mail)
    assert outcome == "failed"
    assert (attempt.number, attempt.status_code, attempt.answer) == (
        1,
        550,
        "5.1.1 Mailbox unavailable",
    )
    mail.refresh_from_db()
    assert "550 5.1.1 Mailbox unavailable" in mail.last_error
