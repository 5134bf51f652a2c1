"""A real HTTP ingest receiver on 127.0.0.1 for the agent's tests.

It records every request, answers 204 unless told otherwise, and can be
stopped and started again on the same port to play an unreachable server.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

Key = tuple[str, str, tuple[tuple[str, str], ...], int]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    doc: dict[str, Any]
    at: float
    status: int

    @property
    def points(self) -> int:
        return sum(len(s["points"]) for s in self.doc["series"])


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def keys_of(doc: dict[str, Any]) -> set[Key]:
    """(host, metric, labels, ts) of every point of an ingest body."""
    return {
        (doc["host"], s["metric"], tuple(sorted(s["labels"].items())), int(ts))
        for s in doc["series"]
        for ts, _ in s["points"]
    }


class Receiver:
    def __init__(self) -> None:
        self.port = 0
        self.requests: list[Request] = []
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: bytes = b"", times: int = 1, **headers: str) -> None:
        """Answer the next `times` requests with `status` instead of 204."""
        with self._lock:
            for _ in range(times):
                self._answers.append(
                    Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
                )

    def accepted_keys(self) -> set[Key]:
        with self._lock:
            requests = list(self.requests)
        keys: set[Key] = set()
        for request in requests:
            if request.status == 204:
                keys |= keys_of(request.doc)
        return keys

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                with receiver._lock:
                    answer = receiver._answers.popleft() if receiver._answers else Answer(204)
                    receiver.requests.append(
                        Request(
                            self.path,
                            dict(self.headers),
                            orjson.loads(data),
                            time.monotonic(),
                            answer.status,
                        )
                    )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
