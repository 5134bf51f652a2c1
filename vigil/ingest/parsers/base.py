"""What every protocol parser returns: plain data, no ORM.

A parser turns a request body into series of points and a list of messages
about what it had to reject. It keeps the valid part of a batch, as InfluxDB
does, and raises only ParseError, when nothing of the body can be read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

METRIC_RE = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:.\-/]{0,199}$")
LABEL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}$")
MAX_LABELS = 32
MAX_LABEL_VALUE_LENGTH = 200
# Samples older than 2000-01-01 or far in the future are mistakes (a clock or
# a unit), not history.
MIN_TS = 946_684_800
MAX_FUTURE_SECONDS = 3600
MAX_ERRORS_KEPT = 20

Labels = tuple[tuple[str, str], ...]

# How the values of a series are to be read. Counters are stored as per-second
# rates, computed on ingest from the previous reading kept per series.
GAUGE = "gauge"
COUNTER = "counter"  # cumulative; going down means a reset (Prometheus, collectd derive)
WRAPPING_COUNTER = "wrapping"  # going down means a wrap at 2**32 or 2**64 (collectd counter)


class ParseError(Exception):
    """Nothing of the body can be read; the message says why."""


@dataclass(slots=True)
class SeriesPoints:
    host: str | None
    metric: str
    labels: Labels
    timestamps: list[int]
    values: list[float]
    kind: str = GAUGE


@dataclass(slots=True)
class ParseResult:
    series: list[SeriesPoints] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rejected: int = 0

    def reject(self, message: str, count: int = 1) -> None:
        self.rejected += count
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)

    @property
    def points(self) -> int:
        return sum(len(s.timestamps) for s in self.series)


def check_host(host: object) -> str:
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise ValueError("host must be a host name (letters, digits, '.', '-', '_')")
    return host


def check_metric(name: object) -> str:
    if not isinstance(name, str) or not METRIC_RE.match(name):
        raise ValueError(
            "metric must start with a letter, '_' or ':' and hold only letters, digits "
            "and _ : . - / (at most 200 characters)"
        )
    return name


def check_labels(labels: object) -> Labels:
    if labels is None:
        return ()
    if not isinstance(labels, dict):
        raise ValueError("labels must be an object of names to strings")
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels are allowed")
    out = []
    for name, value in labels.items():
        if not LABEL_NAME_RE.match(name):
            raise ValueError(f"label name {name[:40]!r} is not valid ([A-Za-z_][A-Za-z0-9_]*)")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"label {name!r} must be a string")
        text = str(value)
        if len(text) > MAX_LABEL_VALUE_LENGTH:
            raise ValueError(f"label {name!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
        out.append((name, text))
    return tuple(sorted(out))


def check_ts(ts: object, now: float) -> int:
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise ValueError("timestamp must be a number of unix seconds")
    if ts < MIN_TS:
        raise ValueError("timestamp is before 2000-01-01: is it in seconds?")
    if ts > now + MAX_FUTURE_SECONDS:
        raise ValueError("timestamp is more than an hour in the future: is it in seconds?")
    return int(ts)


def check_value(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("value must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("value must be finite")
    return value
