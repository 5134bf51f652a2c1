"""The one module that speaks SMTP: server URLs, TLS and one sending session.

A server is named by a URL (docs/channels.md, "E-mail"):

- smtp://host:25: plain SMTP, for a relay on the machine or a trusted
  network; ?starttls=true requires STARTTLS anyway.
- smtp://user:password@host:587: STARTTLS is required before the password
  is sent, and the session fails if the server does not offer it. Only an
  explicit ?starttls=false sends the password in clear.
- smtps://user:password@host:465: TLS from the first byte.
- ?from=vigil@example.com sets the sender, ?timeout=10 the seconds each
  network operation may take. User and password are percent-decoded.

Certificates are always verified; a CA file adds a private CA to the
system's. With `allowed_networks`, the connection is held to the same SSRF
guard as vigil.lib.http (resolved once, connected to the checked address).

Errors are SmtpError: `permanent` for 5xx replies, refused logins, untrusted
certificates and blocked addresses; retryable for 4xx replies, timeouts and
lost connections. Messages never contain the password.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from vigil.lib import http

DEFAULT_TIMEOUT = 10.0
PARAMETERS = ("from", "starttls", "timeout")


class SmtpError(Exception):
    """Sending failed; `code` and `reply` are the server's, when it answered."""

    def __init__(
        self, message: str, *, permanent: bool = False, code: int | None = None, reply: str = ""
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.reply = reply


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool  # required before anything else is sent
    user: str
    password: str
    sender: str
    timeout: float

    @property
    def where(self) -> str:
        """host:port for messages; never the credentials."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Reply:
    """The server's answer to the message (DATA), and the recipients it refused."""

    code: int
    text: str
    refused: dict[str, tuple[int, str]]


def valid_address(address: object) -> bool:
    """A plain ASCII address (local@domain), as headers and RCPT TO take it."""
    if not isinstance(address, str) or not address.isascii() or len(address) > 254:
        return False
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def _query(text: str) -> dict[str, str]:
    # Not parse_qs: it turns "+" into a space, and vigil+ops@example.com is an address.
    out: dict[str, str] = {}
    for pair in filter(None, text.split("&")):
        name, _, value = pair.partition("=")
        out[unquote(name).lower()] = unquote(value)
    return out


def parse_url(url: str, default_sender: str = "vigil@localhost") -> SmtpServer:
    """The SMTP server a URL names; ValueError with a readable message if it
    is not one (never repeating the URL: it may hold a password).

    The sender is ?from=, else the user name when it is an address, else
    `default_sender`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("the SMTP URL must start with smtp:// or smtps://")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("the SMTP URL has an invalid port") from None
    if not host:
        raise ValueError("the SMTP URL has no host")
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    query = _query(parts.query)
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown SMTP URL parameter {unknown[0][:30]!r} (from, starttls, timeout)"
        )
    implicit = parts.scheme == "smtps"
    flag = query.get("starttls", "").lower()
    if flag not in ("", "true", "false"):
        raise ValueError("starttls must be true or false")
    if implicit and flag:
        raise ValueError("smtps:// is TLS from the start: starttls does not apply")
    try:
        timeout = float(query.get("timeout") or DEFAULT_TIMEOUT)
    except ValueError:
        raise ValueError("timeout must be a number of seconds") from None
    if not 0 < timeout <= 300:
        raise ValueError("timeout must be more than 0 and at most 300 seconds")
    sender = query.get("from") or (user if "@" in user else default_sender)
    if not valid_address(sender):
        raise ValueError(f"the sender {sender[:100]!r} is not an e-mail address")
    return SmtpServer(
        host=host,
        port=port or (465 if implicit else 587 if user else 25),
        implicit_tls=implicit,
        starttls=not implicit and (flag == "true" or (flag == "" and bool(user))),
        user=user,
        password=password,
        sender=sender,
        timeout=timeout,
    )


def tls_context(cafile: str = "") -> ssl.SSLContext:
    """The system's CAs plus `cafile`; certificate and host name checks stay on."""
    context = ssl.create_default_context()
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except OSError as exc:  # ssl.SSLError too: a file that is not PEM
            raise SmtpError(
                f"the CA file {cafile!r} cannot be read: {getattr(exc, 'strerror', None) or exc}",
                permanent=True,
            ) from None
    return context


Opener = Callable[[str, int, float], socket.socket]


def _opener(allowed: Sequence[http.Network] | None) -> Opener:
    def open_socket(host: str, port: int, timeout: float) -> socket.socket:
        if allowed is None:
            return socket.create_connection((host, port), timeout)
        usable = [
            (family, sockaddr)
            for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            if http.is_allowed(ipaddress.ip_address(sockaddr[0].split("%", 1)[0]), allowed)
        ]
        if not usable:
            raise SmtpError(
                f"the SMTP host {host!r} is at a private, loopback or link-local address "
                "that is not allowed",
                permanent=True,
            )
        last: OSError = ConnectionRefusedError("connection refused")
        for family, sockaddr in usable:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return sock
        raise last

    return open_socket


class _Client(smtplib.SMTP):
    def __init__(self, opener: Opener, **kwargs) -> None:
        self._opener = opener
        super().__init__(**kwargs)

    def _get_socket(self, host, port, timeout):
        # smtplib keeps the name only when given to the constructor; STARTTLS checks it.
        self._host = host
        return self._opener(host, port, timeout)


class _TlsClient(smtplib.SMTP_SSL):
    def __init__(self, opener: Opener, **kwargs) -> None:
        self._opener = opener
        super().__init__(**kwargs)

    def _get_socket(self, host, port, timeout):
        # The name (or address) in the URL is what the certificate must name.
        self._host = host
        return self.context.wrap_socket(
            self._opener(host, port, timeout), server_hostname=self._host
        )


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:500]


def _refused(code: int, reply: bytes | str, what: str) -> SmtpError:
    """A negative reply: 4xx is worth another try, anything else is not."""
    text = _text(reply)
    return SmtpError(
        f"the SMTP server refused {what}: {code} {text}",
        permanent=not 400 <= code < 500,
        code=code,
        reply=text,
    )


def _what(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "the login"
    if isinstance(exc, smtplib.SMTPConnectError):
        return "the connection"
    if isinstance(exc, smtplib.SMTPHeloError):
        return "the greeting"
    return "a command"


def _session(client: smtplib.SMTP, server: SmtpServer, to: list[str], data: bytes, ca: str):
    """1. Greeting and EHLO (TLS first for smtps).
    2. STARTTLS when required, then EHLO again inside it.
    3. AUTH when the URL has a user.
    4. MAIL FROM, RCPT TO each address, DATA: its reply is the answer."""
    client.connect(server.host, server.port)
    client.ehlo_or_helo_if_needed()
    if server.starttls:
        if not client.has_extn("starttls"):
            raise SmtpError(
                f"the SMTP server at {server.where} does not offer STARTTLS, which is "
                "required (?starttls=false in the URL sends in clear)",
                permanent=True,
            )
        client.starttls(context=tls_context(ca))
        client.ehlo()
    if server.user:
        client.login(server.user, server.password)
    code, reply = client.mail(server.sender)
    if code != 250:
        raise _refused(code, reply, "the sender")
    refused: dict[str, tuple[int, str]] = {}
    for address in to:
        code, reply = client.rcpt(address)
        if code not in (250, 251):
            refused[address] = (code, _text(reply))
    if len(refused) == len(to):
        # The mildest refusal decides: one 4xx means a later try may reach someone.
        code, text = min(refused.values())
        raise _refused(code, text, "every recipient")
    code, reply = client.data(data)
    if code != 250:
        raise _refused(code, reply, "the message")
    return Reply(code, _text(reply), refused)


def send(
    server: SmtpServer,
    to: list[str],
    data: bytes,
    *,
    cafile: str = "",
    allowed_networks: Sequence[http.Network] | None = None,
) -> Reply:
    """Deliver one message (bytes with CRLF line ends) in one session;
    `allowed_networks` None means any address may be connected to."""
    kwargs = {"local_hostname": socket.gethostname() or "localhost", "timeout": server.timeout}
    opener = _opener(allowed_networks)
    client: smtplib.SMTP
    if server.implicit_tls:
        client = _TlsClient(opener, context=tls_context(cafile), **kwargs)
    else:
        client = _Client(opener, **kwargs)
    try:
        return _session(client, server, to, data, cafile)
    except smtplib.SMTPNotSupportedError as exc:
        raise SmtpError(f"the SMTP server at {server.where}: {exc}", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        raise _refused(exc.smtp_code, exc.smtp_error, _what(exc)) from None
    except ssl.SSLCertVerificationError as exc:
        client.close()
        raise SmtpError(
            f"the certificate of the SMTP server at {server.where} is not trusted: "
            f"{exc.verify_message}",
            permanent=True,
        ) from None
    except TimeoutError:
        client.close()
        raise SmtpError(
            f"no answer from the SMTP server at {server.where} within {server.timeout:g} s"
        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        client.close()
        # smtplib reports a read that timed out as a closed connection.
        if isinstance(exc.__context__, TimeoutError):
            raise SmtpError(
                f"no answer from the SMTP server at {server.where} within {server.timeout:g} s"
            ) from None
        raise SmtpError(f"the SMTP server at {server.where} closed the connection") from None
    except smtplib.SMTPException as exc:
        # What is left needs the operator: e.g. no login method both sides know.
        raise SmtpError(f"the SMTP server at {server.where}: {exc}", permanent=True) from None
    except socket.gaierror as exc:
        raise SmtpError(f"cannot resolve the SMTP host {server.host!r}: {exc}") from None
    except OSError as exc:
        client.close()
        raise SmtpError(
            f"cannot talk to the SMTP server at {server.where}: {exc.strerror or exc}"
        ) from None
    finally:
        if client.sock is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
