"""vigil.lib.http against real HTTP servers on 127.0.0.1: guard, limits, deadline."""

from __future__ import annotations

import gzip
import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vigil.lib import http
from vigil.testing import free_port

LOOPBACK = http.parse_networks("127.0.0.1/32")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def answer(self, body: bytes, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        path = self.path
        if path == "/ok":
            self.answer(b"hello", Content_Type="text/plain")
        elif path == "/big":
            self.answer(b"x" * 5000)
        elif path == "/chunked-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"64\r\n" + b"x" * 100 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/slow":
            time.sleep(3)
            self.answer(b"late")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.trickle(b"x" * 1000)
        elif path == "/trickle-headers":
            self.trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 500)
        elif path == "/gzip":
            self.answer(gzip.compress(b"a 1\n" * 100), Content_Encoding="gzip")
        elif path == "/bomb":
            self.answer(gzip.compress(b"\0" * 10_000_000), Content_Encoding="gzip")
        elif path == "/redirect":
            self.answer(b"", 302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/auth":
            self.answer(self.headers.get("Authorization", "").encode())
        elif path == "/host":
            self.answer(self.headers.get("Host", "").encode())
        elif path == "/close":
            self.close_connection = True
        else:
            self.answer(b"not found", 404)

    def trickle(self, data: bytes) -> None:
        try:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a slow answer is what these tests do


@pytest.fixture(scope="module")
def server():
    httpd = QuietServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def get(url: str, **kw) -> http.Response:
    kw.setdefault("allowed_networks", LOOPBACK)
    kw.setdefault("timeout", 2.0)
    return http.get(url, **kw)


def test_it_gets_an_answer_from_an_allowed_address(server):
    response = get(server + "/ok")
    assert (response.status, response.body) == (200, b"hello")
    assert response.header("Content-Type") == "text/plain"


@pytest.mark.parametrize("path", ["/ok", "/big"])
def test_loopback_is_refused_unless_allowed(server, path):
    with pytest.raises(http.BlockedAddress, match="127.0.0.1, a private, loopback"):
        http.get(server + path, timeout=2)


def test_localhost_by_name_is_refused_too(server):
    port = server.rsplit(":", 1)[1]
    with pytest.raises(http.BlockedAddress):
        http.get(f"http://localhost:{port}/ok", timeout=2)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not to bind)
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_the_guard_refuses_non_public_addresses(address):
    assert not http.is_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_the_guard_lets_public_addresses_through(address):
    assert http.is_allowed(ipaddress.ip_address(address))


def test_an_allow_list_opens_exactly_its_networks():
    allowed = http.parse_networks("10.0.0.0/8, 127.0.0.1")
    assert http.is_allowed(ipaddress.ip_address("10.200.0.1"), allowed)
    assert http.is_allowed(ipaddress.ip_address("127.0.0.1"), allowed)
    assert http.is_allowed(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert not http.is_allowed(ipaddress.ip_address("127.0.0.2"), allowed)
    assert not http.is_allowed(ipaddress.ip_address("169.254.169.254"), allowed)


def test_a_bad_allow_list_entry_is_reported():
    with pytest.raises(ValueError, match="'10.0.0.0/33' is not an IP address"):
        http.parse_networks("10.0.0.0/33")


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[::1]:1/", "http://10.0.0.1/"]
)
def test_a_refused_address_is_never_connected_to(url):
    started = time.monotonic()
    with pytest.raises(http.BlockedAddress):
        http.get(url, timeout=5)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://127.0.0.1/", "only http:// and https://"),
        ("http:///nohost", "has no host"),
        ("http://127.0.0.1:99999/", "invalid port"),
    ],
)
def test_only_http_urls_with_a_host_are_requested(url, message):
    with pytest.raises(http.HttpError, match=message):
        get(url)


def test_an_answer_larger_than_the_limit_is_refused(server):
    with pytest.raises(http.TooLarge, match="larger than 1000 bytes"):
        get(server + "/big", max_bytes=1000)
    assert len(get(server + "/big", max_bytes=5000).body) == 5000


def test_a_chunked_answer_without_length_is_cut_at_the_limit(server):
    with pytest.raises(http.TooLarge):
        get(server + "/chunked-big", max_bytes=1000)
    assert get(server + "/chunked-big", max_bytes=5000).body == b"x" * 5000


def test_a_gzip_answer_is_decoded_and_a_gzip_bomb_is_refused(server):
    assert get(server + "/gzip").body == b"a 1\n" * 100
    with pytest.raises(http.TooLarge, match="decompressed answer is larger"):
        get(server + "/bomb", max_bytes=100_000)


def test_a_server_that_answers_late_times_out(server):
    started = time.monotonic()
    with pytest.raises(http.Timeout, match="within 0.5 s"):
        get(server + "/slow", timeout=0.5)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline(server, path):
    # Every byte arrives well within the socket timeout; only the deadline stops it.
    started = time.monotonic()
    with pytest.raises(http.Timeout):
        get(server + path, timeout=0.8)
    assert time.monotonic() - started < 1.8


def test_a_closed_port_is_reported_as_refused():
    with pytest.raises(http.HttpError, match="connection refused"):
        get(f"http://127.0.0.1:{free_port()}/")


def test_a_connection_closed_without_answer_is_reported(server):
    with pytest.raises(http.HttpError, match="the connection failed"):
        get(server + "/close")


def test_redirects_are_not_followed(server):
    response = get(server + "/redirect")
    assert response.status == 302
    assert response.header("Location").startswith("http://169.254.169.254/")


def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_messages(server):
    url = server.replace("http://", "http://scraper:s3cr%40t@")
    assert get(url + "/auth").body == b"Basic c2NyYXBlcjpzM2NyQHQ="  # scraper:s3cr@t
    with pytest.raises(http.HttpError) as failure:
        get(url + "/slow", timeout=0.3)
    assert "s3cr" not in str(failure.value)


def test_it_sends_the_host_header_of_the_url(server):
    assert get(server + "/host").body == server.removeprefix("http://").encode()


def test_https_to_a_plain_http_port_is_a_tls_error(server):
    with pytest.raises(http.HttpError, match="TLS error"):
        get(server.replace("http://", "https://") + "/ok")
