"""Prometheus text exposition format 0.0.4 (node_exporter, any client library).

    # HELP node_load1 1m load average.
    # TYPE node_load1 gauge
    node_load1 0.42
    node_cpu_seconds_total{cpu="0",mode="idle"} 12345.67 1732500000000

Each sample line becomes a point of the series (name, labels); histograms and
summaries are stored as the series they are exposed as (`_bucket{le=...}`,
`_sum`, `_count`, `{quantile=...}`). Counters (TYPE counter, histogram and
summary `_sum`/`_count`/`_bucket`, and untyped names ending in `_total`) are
marked COUNTER so that the writer stores their per-second rates.

Choices (docs/node-exporter.md):
- A sample without a timestamp is stamped `now` (the scrape or push time);
  timestamps are integer milliseconds and are stored as whole seconds.
- NaN and ±Inf values cannot be stored: they are skipped and counted in
  `non_finite`, not rejected, because exporters emit them legitimately (a
  summary without observations). A number out of float range is an error.
- A label with an empty value is the same as no label, as in Prometheus.
- Bad lines are rejected one by one with their line number; the body fails as
  a whole (ParseError) only when it is empty or no line of it can be read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vigil.ingest.parsers.base import (
    COUNTER,
    GAUGE,
    MAX_FUTURE_SECONDS,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MIN_TS,
    Labels,
    ParseError,
    ParseResult,
    SeriesPoints,
)

MAX_NAME_LENGTH = 200
MAX_LABEL_NAME_LENGTH = 100
TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# One `name="value"` pair of a label set; the value may hold escaped quotes.
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL_VALUE = r'[^"\\]*(?:\\.[^"\\]*)*'
_PAIR_RE = re.compile(rf'[ \t]*({_LABEL_NAME})[ \t]*=[ \t]*"({_LABEL_VALUE})"')
# A whole label set: pairs separated by commas, a trailing comma allowed. No
# two blank runs may meet (as `"[ \t]*` then `[ \t]*,` would): that makes
# matching quadratic in the blanks of a hostile line.
_PAIR = rf'[ \t]*{_LABEL_NAME}[ \t]*=[ \t]*"{_LABEL_VALUE}"'
_LABELS_RE = re.compile(rf"(?:{_PAIR}[ \t]*,)*(?:{_PAIR})?[ \t]*")
# The same without blanks, as exporters write them: twice as fast to match.
_STRICT_PAIR_RE = re.compile(rf'({_LABEL_NAME})="({_LABEL_VALUE})"')
_STRICT_PAIR = rf'{_LABEL_NAME}="{_LABEL_VALUE}"'
_STRICT_LABELS_RE = re.compile(rf"(?:{_STRICT_PAIR},)*(?:{_STRICT_PAIR})?")
_ESCAPE_RE = re.compile(r"\\(.?)", re.DOTALL)
_LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_NON_FINITE_WORDS = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
)

# Parsed label sets by their text: exporters send the same label sets on every
# scrape and under many names, so this saves most of the label parsing. Pure
# memoization; bounded by clearing it when full.
_LABEL_CACHE: dict[str, Labels] = {}
_LABEL_CACHE_MAX = 50_000
_LABEL_CACHE_MAX_KEY = 256


@dataclass
class ExpositionResult(ParseResult):
    """A ParseResult that also counts the NaN/±Inf samples it skipped."""

    non_finite: int = 0
    first_non_finite_line: int = 0


class _LineError(ValueError):
    pass


def _unescape_label(value: str) -> str:
    def replace(match: re.Match) -> str:
        char = match.group(1)
        try:
            return _LABEL_ESCAPES[char]
        except KeyError:
            raise _LineError(
                f"invalid escape sequence '\\{char}' in a label value "
                '(only \\\\, \\" and \\n are allowed)'
            ) from None

    return _ESCAPE_RE.sub(replace, value)


def _parse_labels(text: str) -> Labels:
    """The label set of `text`, the part between the braces."""
    # The whole set is checked in one regex pass, then its pairs are taken
    # in another: both run in C, which is most of the parser's speed.
    if _STRICT_LABELS_RE.fullmatch(text):
        pairs = _STRICT_PAIR_RE.findall(text)
    elif _LABELS_RE.fullmatch(text):
        pairs = _PAIR_RE.findall(text)
    else:
        raise _LineError(f"cannot read the labels {text[:40]!r}")
    if len(pairs) > MAX_LABELS:
        raise _LineError(f"at most {MAX_LABELS} labels are allowed")
    if "\\" in text:
        pairs = [(k, _unescape_label(v) if "\\" in v else v) for k, v in pairs]
    labels = dict(pairs)
    if len(labels) < len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _LineError(f"label {name!r} appears twice")
            seen.add(name)
    if pairs and max(map(len, labels.values())) > MAX_LABEL_VALUE_LENGTH:
        name = next(k for k, v in pairs if len(v) > MAX_LABEL_VALUE_LENGTH)
        raise _LineError(f"label {name!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
    if pairs and max(map(len, labels)) > MAX_LABEL_NAME_LENGTH:
        raise _LineError(f"label name is longer than {MAX_LABEL_NAME_LENGTH} characters")
    # An empty value is the same as no label at all (Prometheus semantics).
    return tuple(sorted(item for item in labels.items() if item[1]))


def _labels(text: str) -> Labels:
    labels = _LABEL_CACHE.get(text)
    if labels is None:
        labels = _parse_labels(text)
        if len(text) <= _LABEL_CACHE_MAX_KEY:
            if len(_LABEL_CACHE) >= _LABEL_CACHE_MAX:
                _LABEL_CACHE.clear()
            _LABEL_CACHE[text] = labels
    return labels


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise _LineError(f"{name[:40]!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    if len(name) > MAX_NAME_LENGTH:
        raise _LineError(f"metric name is longer than {MAX_NAME_LENGTH} characters")
    return name


def _number(token: str) -> float:
    # float() also takes "1_000" and non-ASCII digits, which the format does not.
    if "_" in token or not token.isascii():
        raise ValueError(token)
    return float(token)


def _kind(name: str, types: dict[str, str]) -> tuple[str, str | None]:
    """How a sample's values are read, and the label its family requires."""
    declared = types.get(name)
    if declared == "counter":
        return COUNTER, None
    if declared == "gauge":
        return GAUGE, None
    if declared == "summary":
        return GAUGE, "quantile"
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix):
            family = types.get(name[: -len(suffix)])
            if family == "histogram":
                return COUNTER, "le" if suffix == "_bucket" else None
            if family == "summary" and suffix != "_bucket":
                return COUNTER, None
    if name.endswith("_total"):
        return COUNTER, None
    return GAUGE, None


class _Parser:
    def __init__(self, now: float) -> None:
        self.now = now
        self.default_ts = int(now)
        self.max_ts_ms = (now + MAX_FUTURE_SECONDS) * 1000
        self.result = ExpositionResult()
        self.series: dict[tuple[str, Labels], SeriesPoints] = {}
        self.types: dict[str, str] = {}
        self.helped: set[str] = set()
        self.kinds: dict[str, tuple[str, str | None]] = {}
        # Timestamps of the series that have more than one point (explicit
        # timestamps), so that a repeated sample is found in constant time.
        self.stamps: dict[tuple[str, Labels], set[int]] = {}
        self.sample_lines = 0

    def comment(self, line: str) -> None:
        """HELP and TYPE lines; any other line starting with '#' is a comment."""
        if len(line) < 2 or line[1] not in " \t":
            return
        parts = line[2:].split(None, 2)
        if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
            if parts and parts[0] in ("HELP", "TYPE"):
                raise _LineError(f"{parts[0]} line without a metric name")
            return
        keyword, name = parts[0], _check_name(parts[1])
        rest = parts[2] if len(parts) > 2 else ""
        if keyword == "HELP":
            if name in self.helped:
                raise _LineError(f"second HELP line for {name!r}")
            if "\\" in rest and any(
                m.group(1) not in ("\\", "n") for m in _ESCAPE_RE.finditer(rest)
            ):
                raise _LineError("invalid escape sequence in HELP (only \\\\ and \\n are allowed)")
            self.helped.add(name)
            return
        kind = rest.strip().lower()
        if kind not in TYPES:
            raise _LineError(
                f"unknown type {rest.strip()[:30]!r} "
                "(counter, gauge, histogram, summary or untyped)"
            )
        if name in self.types:
            raise _LineError(f"second TYPE line for {name!r}")
        related = (name, name + "_bucket", name + "_sum", name + "_count", name + "_total")
        if any(n in self.kinds for n in related):
            raise _LineError(f"TYPE line for {name!r} comes after its samples")
        self.types[name] = kind

    def sample(self, line: str, number: int) -> None:
        brace = line.find("{")
        if brace < 0:
            parts = line.split()
            name = parts[0]
            labels: Labels = ()
            rest = parts[1:]
        else:
            close = line.rfind("}")
            if close < brace:
                raise _LineError("'{' without a closing '}'")
            name = line[:brace].rstrip(" \t")
            labels = _labels(line[brace + 1 : close])
            rest = line[close + 1 :].split()
        kind_required = self.kinds.get(name)
        if kind_required is None:
            _check_name(name)
            kind_required = self.kinds[name] = _kind(name, self.types)
        kind, required = kind_required
        if required is not None:
            self._check_required(name, labels, required)
        if not rest:
            raise _LineError(f"{name} has no value")
        if len(rest) > 2:
            raise _LineError(f"unexpected {rest[2][:30]!r} after the timestamp")
        try:
            value = _number(rest[0])
        except ValueError:
            raise _LineError(f"value {rest[0][:30]!r} is not a number") from None
        ts = self._timestamp(rest[1]) if len(rest) == 2 else self.default_ts
        if not math.isfinite(value):
            if rest[0].lower() not in _NON_FINITE_WORDS:
                raise _LineError(f"value {rest[0][:30]!r} is out of range")
            if not self.result.non_finite:
                self.result.first_non_finite_line = number
            self.result.non_finite += 1
            return
        key = (name, labels)
        sp = self.series.get(key)
        if sp is None:
            self.series[key] = SeriesPoints(None, name, labels, [ts], [value], kind)
            return
        seen = self.stamps.get(key)
        if seen is None:
            seen = self.stamps[key] = set(sp.timestamps)
        if ts in seen:
            raise _LineError(f"second sample of {name}{_show(labels)} at the same time")
        seen.add(ts)
        sp.timestamps.append(ts)
        sp.values.append(value)

    def _check_required(self, name: str, labels: Labels, required: str) -> None:
        value = dict(labels).get(required)
        if value is None:
            raise _LineError(f"{name} needs a {required!r} label")
        try:
            _number(value)
        except ValueError:
            raise _LineError(f"{required}={value[:30]!r} of {name} is not a number") from None

    def _timestamp(self, token: str) -> int:
        try:
            if "_" in token or not token.isascii():
                raise ValueError(token)
            ms = int(token)
        except ValueError:
            raise _LineError(
                f"timestamp {token[:30]!r} is not an integer number of milliseconds"
            ) from None
        if ms < MIN_TS * 1000:
            raise _LineError(
                f"timestamp {token[:30]} is before 2000-01-01: timestamps are in milliseconds"
            )
        if ms > self.max_ts_ms:
            raise _LineError(
                f"timestamp {token[:30]} is more than an hour in the future "
                f"(timestamps are in milliseconds)"
            )
        return ms // 1000

    def run(self, text: str, check_utf8: bool) -> ExpositionResult:
        result = self.result
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line:
                continue
            try:
                if check_utf8 and not line.isascii():
                    _check_utf8(line)
                if line[0] == "#":
                    self.comment(line)
                else:
                    self.sample_lines += 1
                    self.sample(line, number)
            except _LineError as exc:
                result.reject(f"line {number}: {exc}")
        result.series = list(self.series.values())
        return result


def _check_utf8(line: str) -> None:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        raise _LineError("is not valid UTF-8") from None


def _show(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f"{k}={v[:40]!r}" for k, v in labels) + "}"


def parse(body: bytes, now: float) -> ExpositionResult:
    """Parse an exposition; bad lines are rejected one by one with their line number."""
    try:
        text = body.decode("utf-8")
        check_utf8 = False
    except UnicodeDecodeError:
        # Keep the valid lines: undecodable bytes become surrogates, and the
        # lines that hold one are rejected.
        text = body.decode("utf-8", "surrogateescape")
        check_utf8 = True
    if not text.strip():
        raise ParseError("the body is empty: expected Prometheus text format (version 0.0.4)")
    parser = _Parser(now)
    result = parser.run(text, check_utf8)
    if parser.sample_lines and not result.series and not result.non_finite:
        first = result.errors[0] if result.errors else "no samples"
        raise ParseError(f"no line could be read as Prometheus text format 0.0.4: {first}")
    return result
