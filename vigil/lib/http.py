"""The one module that makes outbound HTTP requests (scrapes, webhooks).

Every request here is bounded and guarded:
1. The URL must be http or https; user:password in it becomes basic auth.
2. The host name is resolved once, and only addresses that are public, or
   inside the caller's allowed networks, are connected to: loopback,
   private, link-local (cloud metadata at 169.254.169.254), shared,
   multicast and reserved addresses are refused (the SSRF guard). The
   connection goes to the checked address itself, so a DNS answer that
   changes in between (rebinding) cannot redirect it.
3. One deadline covers connecting, sending and reading the whole answer: a
   server that trickles bytes is cut off when it passes.
4. The answer is read up to `max_bytes`, before and after gzip decoding.
5. Redirects are not followed: the caller sees the 3xx answer.

Name resolution itself cannot be interrupted; callers that must bound it too
(the scrape pool) stop waiting for the request instead.

Errors are HttpError with a message for an operator, which never contains the
URL (it may hold credentials).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_AGENT = "Vigil/0.1"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
ALL_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)
_CHUNK = 64 * 1024


class HttpError(Exception):
    """The request failed; the message says why, for an operator."""


class BlockedAddress(HttpError):
    """The host is, or resolves to, an address that is not allowed."""


class TooLarge(HttpError):
    """The answer is larger than the limit."""


class Timeout(HttpError):
    """The whole request did not finish in time."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def parse_networks(spec: str | Iterable[str]) -> list[Network]:
    """Networks from "10.0.0.0/8, 127.0.0.1" or a list; an address is a /32 or /128."""
    items = spec.split(",") if isinstance(spec, str) else spec
    networks: list[Network] = []
    for item in items:
        item = item.strip()
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return networks


def is_allowed(address: IPAddress, allowed: Sequence[Network] = ()) -> bool:
    """Whether a connection to `address` may be made: public, or in `allowed`."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == net.version and address in net for net in allowed):
        return True
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int, allowed: Sequence[Network]) -> list[tuple]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HttpError(f"cannot resolve host {host!r}: {exc}") from None
    usable = []
    refused: list[str] = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if is_allowed(address, allowed):
            usable.append((family, sockaddr))
        else:
            refused.append(str(address))
    if not usable:
        raise BlockedAddress(
            f"host {host!r} is at {refused[0]}, a private, loopback or link-local address "
            f"that is not allowed"
        )
    return usable


def _connect(host: str, port: int, timeout: float, allowed: Sequence[Network]) -> socket.socket:
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    for family, sockaddr in _resolve(host, port, allowed):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    if isinstance(last, TimeoutError) or last is None:
        raise Timeout(f"could not connect within {timeout:g} s")
    if isinstance(last, ConnectionRefusedError):
        raise HttpError("connection refused")
    raise HttpError(f"cannot connect: {last.strerror or last}")


def _decode_gzip(data: bytes, max_bytes: int) -> bytes:
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise HttpError(f"the answer is not valid gzip: {exc}") from None
    if len(out) > max_bytes or decoder.unconsumed_tail:
        raise TooLarge(f"the decompressed answer is larger than {max_bytes} bytes")
    return out


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_networks: Sequence[Network] = (),
) -> Response:
    """Make one request within `timeout` seconds in all; see the module docstring."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise HttpError("only http:// and https:// URLs can be requested")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise HttpError("the URL has an invalid port") from None
    if not host:
        raise HttpError("the URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    send = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", **(headers or {})}
    shown_host = f"[{host}]" if ":" in host else host
    default_port = 443 if parts.scheme == "https" else 80
    send["Host"] = shown_host if port == default_port else f"{shown_host}:{port}"
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        send["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    started = time.monotonic()
    sock = _connect(host, port, timeout, allowed_networks)
    expired = threading.Event()

    def cut_off() -> None:
        # Unblocks a read that waits on a server trickling its answer.
        expired.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, timeout - (time.monotonic() - started)), cut_off)
    timer.daemon = True
    timer.start()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if parts.scheme == "https":
            context = ssl.create_default_context()
            conn.sock = context.wrap_socket(sock, server_hostname=host)
        else:
            conn.sock = sock
        conn.request(method, target, body=body, headers=send)
        response = conn.getresponse()
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"the answer is larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"the answer is larger than {max_bytes} bytes")
            chunks.append(chunk)
        # A cut-off connection reads as an early end of the answer.
        if expired.is_set():
            raise Timeout(f"no complete answer within {timeout:g} s")
        if response.length:
            raise HttpError(f"the answer ended {response.length} bytes short of its length")
        data = b"".join(chunks)
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            data = _decode_gzip(data, max_bytes)
        elif encoding not in ("", "identity"):
            raise HttpError(f"the answer has an unsupported Content-Encoding {encoding[:30]!r}")
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except HttpError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise Timeout(f"no complete answer within {timeout:g} s") from None
        if isinstance(exc, ssl.SSLError):
            raise HttpError(f"TLS error: {exc.reason or exc}") from None
        raise HttpError(f"the connection failed: {exc or type(exc).__name__}") from None
    finally:
        timer.cancel()
        conn.close()
        sock.close()


def get(url: str, **kwargs) -> Response:
    return request("GET", url, **kwargs)


def post(url: str, body: bytes, **kwargs) -> Response:
    return request("POST", url, body=body, **kwargs)
