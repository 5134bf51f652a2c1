"""The interface every channel implements, and the registry of channels.

A transport turns one notification into the channel's own messages and sends
them. It raises TransportError when that fails: `permanent` when trying again
cannot help (a 4xx other than 429, a refused address), `retry_after` when the
receiver said how long to wait (HTTP 429 or 503 with Retry-After).

Adding a channel: a module under vigil/notify/channels/ with a Transport
subclass, registered with @register; docs/channels.md lists what each needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from django.conf import settings

from vigil.lib import http


class TransportError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        answer: str = "",
        done: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        # Parts that went out before the failure (SMS recipients reached).
        self.done = list(done or [])
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status
        self.answer = answer


@dataclass
class Sent:
    """What the receiver answered: HTTP status or SMTP code, and its text."""

    status: int | None = None
    answer: str = ""


@dataclass
class Message:
    """One notification as channels see it."""

    kind: str  # firing, resolved, repeat, acknowledged, flapping, gone, test
    title: str
    severity: str
    rule: str
    items: list[dict] = field(default_factory=list)
    link: str = ""  # the alerts page
    delivery_key: str = ""  # the same on every retry of one delivery
    created: str = ""  # ISO 8601
    done: tuple[str, ...] = ()  # parts an earlier attempt delivered: skip them

    @property
    def is_test(self) -> bool:
        return self.kind == "test"


class Transport:
    """Base of every channel. `secret_fields` name the keys of
    Channel.secrets; they are written, never shown back."""

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict, secrets: dict) -> None:
        self.config = config or {}
        self.secrets = secrets or {}

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        """Field errors of a channel's settings; empty when valid."""
        return {}

    def notify(self, message: Message) -> Sent:
        raise NotImplementedError


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from django.utils import timezone

    return max(0.0, (when - timezone.now()).total_seconds())


class HttpTransport(Transport):
    """A channel that POSTs JSON: timeouts, the SSRF guard and the mapping of
    answers to retries live here, once."""

    timeout: ClassVar[float] = 10.0

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
    ) -> Sent:
        """POST `body` (JSON unless `content_type` says otherwise, e.g. a form)."""
        allowed = _allowed_networks()
        try:
            response = http.request(
                "POST",
                url,
                body=body,
                headers={"Content-Type": content_type, **headers},
                timeout=self.timeout,
                max_bytes=1024 * 1024,
                allowed_networks=allowed,
            )
        except http.BlockedAddress as exc:
            raise TransportError(str(exc), permanent=True) from None
        except http.HttpError as exc:
            raise TransportError(str(exc)) from None
        answer = response.body[:500].decode("utf-8", "replace")
        if 200 <= response.status < 300:
            return Sent(response.status, answer)
        retryable = response.status == 429 or response.status >= 500
        raise TransportError(
            f"the receiver answered {response.status}",
            permanent=not retryable,
            retry_after=retry_after_seconds(response.headers.get("retry-after"))
            if retryable
            else None,
            status=response.status,
            answer=answer,
        )


def _allowed_networks() -> list:
    if settings.NOTIFY_ALLOW_PRIVATE:
        return list(http.ALL_NETWORKS)
    return http.parse_networks(settings.NOTIFY_ALLOWED_NETWORKS)


REGISTRY: dict[str, type[Transport]] = {}


def register(cls: type[Transport]) -> type[Transport]:
    REGISTRY[cls.kind] = cls
    return cls


def transport_for(kind: str) -> type[Transport]:
    from vigil.notify import channels  # noqa: F401 (registers every channel)

    try:
        return REGISTRY[kind]
    except KeyError:
        raise TransportError(f"no channel of kind {kind!r}", permanent=True) from None
