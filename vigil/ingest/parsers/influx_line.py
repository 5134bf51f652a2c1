"""InfluxDB 1.x line protocol, as Telegraf's `outputs.influxdb` and Influx clients send it.

    <measurement>[,<tag>=<value>...] <field>=<value>[,<field>=<value>...] [<timestamp>]

Each numeric field of a line is one point of the series `<measurement>.<field>`,
labelled with the line's tags except `host`, which names the server. The syntax
is InfluxDB 1.x's (its models/points.go): `\\,` `\\ ` (and `\\=` outside the
measurement) escape in names, `\\"` and `\\\\` in quoted strings, any other
backslash is kept; `i` integers, `u` unsigned, floats with exponents, booleans
t/T/true/True/TRUE and f/F/false/False/FALSE (stored as 1 and 0); `#` comments.
A bad line is rejected alone, with its number; the others are kept.

Choices of our own (docs/telegraf.md): string fields are skipped (counted in
`strings_skipped`); names are sanitized to fit METRIC_RE and LABEL_NAME_RE
(other characters become `_`); timestamps are truncated to whole seconds;
`\\r\\n` line ends are accepted; a quoted string must end on its line, as
Telegraf escapes newlines in strings.

Most lines have no backslash and no quote: they are cut with str.split, and
only the others go through the careful scanner.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from vigil.ingest.parsers.base import (
    COUNTER,
    GAUGE,
    HOST_RE,
    MAX_FUTURE_SECONDS,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MIN_TS,
    Labels,
    ParseError,
    ParseResult,
    SeriesPoints,
)

# precision -> (multiply, divide): what turns a timestamp into unix seconds.
_PRECISIONS: dict[str, tuple[int, int]] = {
    "": (1, 1_000_000_000),
    "n": (1, 1_000_000_000),
    "ns": (1, 1_000_000_000),
    "u": (1, 1_000_000),
    "us": (1, 1_000_000),
    "µ": (1, 1_000_000),
    "µs": (1, 1_000_000),
    "ms": (1, 1_000),
    "s": (1, 1),
    "m": (60, 1),
    "h": (3600, 1),
}
_BOOLEANS = {
    "t": 1.0,
    "T": 1.0,
    "true": 1.0,
    "True": 1.0,
    "TRUE": 1.0,
    "f": 0.0,
    "F": 0.0,
    "false": 0.0,
    "False": 0.0,
    "FALSE": 0.0,
}
_FLOAT_START = "0123456789.-"
_FLOAT_END = "0123456789."
_INT64 = 2**63
_UINT64 = 2**64
# What a quoted string value becomes in the scanner's output: no number ends with '"'.
_STRING = '"'
_EQUALS = itertools.repeat("=")

# InfluxDB's rule in names: a separator preceded by a backslash is escaped.
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")
_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")
# In the field set a backslash escapes the next character, quotes open strings.
_FIELD_KEY = re.compile(r"((?:[^ ,=\\]|\\.)+)=")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_BARE_VALUE = re.compile(r"[^ ,]*")
_NOT_METRIC_CHAR = re.compile(r"[^A-Za-z0-9_:.\-/]")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")
_MAX_METRIC_LENGTH = 200
_MAX_LABEL_NAME_LENGTH = 100

# Parsed line keys and metric names are cached across requests: an agent sends
# the same ones every interval. Bounded (some 30 MB at most); cleared whole
# when full.
_CACHE_MAX = 20_000
_CACHE_MAX_KEY_LENGTH = 1_000
_MAX_NAMES_PER_KEY = 256
_MAX_NAMES = 200_000
_names_cached = 0
# (host, metric prefix, labels, metric by field key), cached across requests
_Key = tuple[str | None, str, Labels, dict[str, str]]
# _Key and the series of this request by field key
_Entry = tuple[str | None, str, Labels, dict[str, str], dict[str, SeriesPoints]]
_key_cache: dict[str, _Key | str] = {}


@dataclass(slots=True)
class InfluxResult(ParseResult):
    strings_skipped: int = 0


class _LineError(Exception):
    """One line cannot be read; the message says why."""


def parse(
    body: bytes,
    now: float,
    precision: str = "ns",
    counters: frozenset[str] = frozenset(),
) -> InfluxResult:
    """Parse one /write body; bad lines are rejected one by one, by line number.

    `precision` is the unit of the timestamps (the `precision` query parameter);
    series whose metric is in `counters` are marked COUNTER, so that the writer
    stores them as per-second rates.
    """
    try:
        multiply, divide = _PRECISIONS[precision]
    except KeyError:
        raise ParseError(
            f"invalid precision {precision[:20]!r} (use n, ns, u, us, ms, s, m or h)"
        ) from None
    try:
        text = body.decode()
        check_utf8 = False
    except UnicodeDecodeError:
        text = body.decode("utf-8", "surrogateescape")
        check_utf8 = True
    if "\r" in text:
        text = text.replace("\r\n", "\n")

    result = InfluxResult()
    series = result.series
    now_s = int(now)
    latest = now_s + MAX_FUTURE_SECONDS
    # raw key text -> (host, metric prefix, labels, series of the key by field key)
    entries: dict[str, _Entry] = {}
    by_parsed: dict[tuple[str | None, str, Labels], _Entry] = {}
    cached_raw_ts = None
    cached_ts = now_s
    skipped = 0
    new_series = series.append

    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line[0] in " \t\x00#":
            line = line.lstrip(" \t\x00")
            if not line or line[0] == "#":
                continue
        if check_utf8 and not _is_utf8(line):
            result.reject(f"line {n}: not valid UTF-8")
            continue
        # Series of earlier lines that this line added to, and where its new ones start.
        touched: list[SeriesPoints] | None = None
        first_new = len(series)
        fk = v = ""
        try:
            if "\\" in line or '"' in line:
                raw_key, pairs, raw_ts = _scan(line)
            else:
                parts = line.split(" ")
                if len(parts) == 2:
                    raw_key, field_set = parts
                    raw_ts = ""
                elif len(parts) == 3 and parts[1]:
                    raw_key, field_set, raw_ts = parts
                else:
                    raw_key, field_set, raw_ts = _spaced(parts)
                pairs = map(str.partition, field_set.split(","), _EQUALS)

            entry = entries.get(raw_key)
            if entry is None:
                entry = entries[raw_key] = _entry(raw_key, by_parsed)
            host, prefix, labels, names, by_field = entry

            if not raw_ts:
                ts = now_s
            elif raw_ts == cached_raw_ts:
                ts = cached_ts
            else:
                ts = _timestamp(raw_ts, multiply, divide, latest, precision)
                cached_raw_ts, cached_ts = raw_ts, ts

            for fk, eq, v in pairs:
                if not fk or not v:  # no '=' leaves v empty too
                    raise _LineError(_missing(fk, eq, v))
                last = v[-1]
                if last == "i":
                    digits = v[:-1]
                    if not (
                        digits.isascii()
                        and (digits.isdigit() or (digits[:1] == "-" and digits[1:].isdigit()))
                    ):
                        raise _LineError(f"invalid integer {v[:40]!r} in field {fk[:40]!r}")
                    if len(digits) > 18 and (
                        len(digits) > 20 or not -_INT64 <= int(digits) < _INT64
                    ):
                        raise _LineError(f"integer {v[:40]!r} out of range in field {fk[:40]!r}")
                    value = float(digits)
                elif last in _FLOAT_END:
                    if not (v.isascii() and v[0] in _FLOAT_START and "_" not in v):
                        raise _LineError(f"invalid number {v[:40]!r} in field {fk[:40]!r}")
                    value = float(v)  # a ValueError is caught below
                    if value - value != 0.0:
                        raise _LineError(f"number {v[:40]!r} out of range in field {fk[:40]!r}")
                elif v in _BOOLEANS:
                    value = _BOOLEANS[v]
                elif v == _STRING:
                    skipped += 1
                    continue
                else:
                    value = _unsigned_or_fail(fk, v)

                sp = by_field.get(fk)
                if sp is None:
                    # Telegraf sends one point per series and batch: this is the common case.
                    metric = names.get(fk) or _metric(prefix, fk, names)
                    kind = COUNTER if metric in counters else GAUGE
                    sp = by_field[fk] = SeriesPoints(host, metric, labels, [ts], [value], kind)
                    new_series(sp)
                else:
                    stamps = sp.timestamps
                    if stamps and stamps[-1] == ts and _seen(sp, touched, series, first_new):
                        raise _LineError(f"duplicate field {fk[:40]!r}")
                    stamps.append(ts)
                    sp.values.append(value)
                    if touched is None:
                        touched = [sp]
                    else:
                        touched.append(sp)
        except (_LineError, ValueError) as exc:
            # A line is written whole or not at all.
            if len(series) > first_new:
                _forget(series, first_new, by_field)
            for sp in touched or ():
                sp.timestamps.pop()
                sp.values.pop()
            if isinstance(exc, ValueError):
                exc = f"invalid number {v[:40]!r} in field {fk[:40]!r}"
            result.reject(f"line {n}: {exc}")

    result.strings_skipped = skipped
    return result


def _entry(raw_key: str, by_parsed: dict[tuple[str | None, str, Labels], _Entry]) -> _Entry:
    """The parsed key of a line, shared by every raw spelling of the same key."""
    parsed = _key_cache.get(raw_key)
    if parsed is None:
        try:
            parsed = (*_parse_key(raw_key), {})
        except _LineError as exc:
            parsed = str(exc)
        if len(raw_key) <= _CACHE_MAX_KEY_LENGTH:
            if len(_key_cache) >= _CACHE_MAX or _names_cached >= _MAX_NAMES:
                _clear_caches()
            _key_cache[raw_key] = parsed
    if isinstance(parsed, str):
        raise _LineError(parsed)
    host, prefix, labels, names = parsed
    entry = by_parsed.get((host, prefix, labels))
    if entry is None:
        entry = by_parsed[(host, prefix, labels)] = (*parsed, {})
    return entry


def _metric(prefix: str, fk: str, names: dict[str, str]) -> str:
    """`<measurement>.<field>`, sanitized, remembered for the key's next lines."""
    if len(prefix) + len(fk) > _MAX_METRIC_LENGTH:
        raise _LineError(
            f"metric {prefix + fk[:40]!r}... is longer than {_MAX_METRIC_LENGTH} characters"
        )
    global _names_cached
    metric = prefix + _NOT_METRIC_CHAR.sub("_", fk)
    if len(names) < _MAX_NAMES_PER_KEY:
        names[fk] = metric
        _names_cached += 1
    return metric


def _clear_caches() -> None:
    global _names_cached
    _key_cache.clear()
    _names_cached = 0


def _seen(
    sp: SeriesPoints, touched: list[SeriesPoints] | None, series: list[SeriesPoints], first_new: int
) -> bool:
    """Whether the current line already wrote to sp (a duplicate field)."""
    return any(t is sp for t in touched or ()) or any(t is sp for t in series[first_new:])


def _forget(series: list[SeriesPoints], first_new: int, by_field: dict[str, SeriesPoints]) -> None:
    """Drop the series that a rejected line created."""
    created = {id(sp) for sp in series[first_new:]}
    del series[first_new:]
    for fk in [fk for fk, sp in by_field.items() if id(sp) in created]:
        del by_field[fk]


def _spaced(parts: list[str]) -> tuple[str, str, str]:
    """Key, field set and timestamp of a line with repeated spaces (InfluxDB allows them)."""
    parts = [p for p in parts if p]
    if len(parts) == 2:
        return parts[0], parts[1], ""
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) < 2:
        raise _LineError("missing fields")
    raise _LineError("unexpected text after the timestamp")


def _scan(line: str) -> tuple[str, list[tuple[str, str, str]], str]:
    """The careful path, for lines with escapes or quoted strings.

    Returns the raw key, (field key, '=', raw value) triples with field keys
    unescaped and quoted strings replaced by _STRING, and the raw timestamp.
    """
    space = _UNESCAPED_SPACE.search(line)
    if space is None:
        raise _LineError("missing fields")
    raw_key = line[: space.start()]
    end = len(line)
    pos = space.end()
    while pos < end and line[pos] == " ":
        pos += 1
    pairs: list[tuple[str, str, str]] = []
    while True:
        key = _FIELD_KEY.match(line, pos)
        if key is None:
            raise _LineError("invalid field set: expected <field>=<value>")
        fk = key.group(1)
        if "\\" in fk:
            fk = _unescape(fk)
        pos = key.end()
        if pos < end and line[pos] == '"':
            quoted = _QUOTED.match(line, pos)
            if quoted is None:
                raise _LineError(f"unterminated string in field {fk[:40]!r}")
            value = _STRING
            pos = quoted.end()
        else:
            bare = _BARE_VALUE.match(line, pos)
            value = bare.group()
            pos = bare.end()
        pairs.append((fk, "=", value))
        if pos >= end:
            return raw_key, pairs, ""
        if line[pos] == ",":
            pos += 1
            continue
        if line[pos] != " ":
            raise _LineError(f"unexpected text after the string in field {fk[:40]!r}")
        raw_ts = line[pos:].strip(" ")
        if " " in raw_ts:
            raise _LineError("unexpected text after the timestamp")
        return raw_key, pairs, raw_ts


def _parse_key(raw: str) -> tuple[str | None, str, Labels]:
    """(host, metric prefix, labels) of a line's measurement and tag set."""
    escaped = "\\" in raw
    parts = _UNESCAPED_COMMA.split(raw) if escaped else raw.split(",")
    measurement = parts[0]
    if not measurement:
        raise _LineError("missing measurement")
    if escaped:
        measurement = measurement.replace("\\,", ",").replace("\\ ", " ")
    host = None
    labels: dict[str, str] = {}
    for tag in parts[1:]:
        pair = _UNESCAPED_EQUALS.split(tag) if escaped else tag.split("=")
        if len(pair) > 2:
            raise _LineError(f"unescaped '=' in tag {tag[:40]!r}")
        if len(pair) < 2 or not pair[1]:
            raise _LineError(f"missing tag value in {tag[:40]!r}")
        name, value = pair
        if not name:
            raise _LineError("missing tag key")
        if escaped:
            name, value = _unescape(name), _unescape(value)
        if name == "host":
            if host is not None:
                raise _LineError("duplicate tag 'host'")
            if not HOST_RE.match(value):
                raise _LineError(
                    f"host tag {value[:60]!r} is not a host name (letters, digits, '.', '-', '_')"
                )
            host = value
            continue
        label = _label_name(name)
        if label in labels:
            raise _LineError(f"duplicate tag {name[:40]!r}")
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            raise _LineError(
                f"tag {name[:40]!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters"
            )
        labels[label] = value
    if len(labels) > MAX_LABELS:
        raise _LineError(f"more than {MAX_LABELS} tags")
    prefix = _NOT_METRIC_CHAR.sub("_", measurement)
    if not (prefix[0].isascii() and (prefix[0].isalpha() or prefix[0] in "_:")):
        prefix = "_" + prefix
    if len(prefix) >= _MAX_METRIC_LENGTH - 1:
        raise _LineError(f"measurement is longer than {_MAX_METRIC_LENGTH - 2} characters")
    return host, prefix + ".", tuple(sorted(labels.items()))


def _label_name(tag: str) -> str:
    name = _NOT_LABEL_CHAR.sub("_", tag)
    if name[0].isdigit():
        name = "_" + name
    if len(name) > _MAX_LABEL_NAME_LENGTH:
        raise _LineError(f"tag key {tag[:40]!r} is longer than {_MAX_LABEL_NAME_LENGTH} characters")
    return name


def _unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")


def _timestamp(raw: str, multiply: int, divide: int, latest: int, precision: str) -> int:
    if not (
        raw.isascii()
        and len(raw) <= 20
        and (raw.isdigit() or (raw[0] == "-" and raw[1:].isdigit()))
    ):
        raise _LineError(f"invalid timestamp {raw[:40]!r}")
    seconds = int(raw) * multiply // divide
    if seconds < MIN_TS:
        raise _LineError(
            f"timestamp {raw} is before 2000-01-01 with precision {precision or 'ns'!r}"
        )
    if seconds > latest:
        raise _LineError(
            f"timestamp {raw} is more than an hour in the future with precision "
            f"{precision or 'ns'!r}"
        )
    return seconds


def _unsigned_or_fail(fk: str, v: str) -> float:
    """The value of an unsigned field (`7u`), or the reason the value is not valid."""
    if v[0] in "tTfF":
        raise _LineError(f"invalid boolean {v[:40]!r} in field {fk[:40]!r}")
    if v[-1] != "u":
        raise _LineError(f"invalid value {v[:40]!r} in field {fk[:40]!r}")
    digits = v[:-1]
    if not (digits.isascii() and digits.isdigit()):
        raise _LineError(f"invalid unsigned {v[:40]!r} in field {fk[:40]!r}")
    if len(digits) > 20 or int(digits) >= _UINT64:
        raise _LineError(f"unsigned {v[:40]!r} out of range in field {fk[:40]!r}")
    return float(int(digits))


def _missing(fk: str, eq: str, v: str) -> str:
    if not fk:
        return "missing field key"
    if not eq:
        return f"missing '=' after field {fk[:40]!r}"
    return f"missing value of field {fk[:40]!r}"


def _is_utf8(line: str) -> bool:
    try:
        line.encode()
    except UnicodeEncodeError:
        return False
    return True
