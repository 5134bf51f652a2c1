"""collectd's `write_http` plugin with `Format "JSON"` (docs/collectd.md).

The body is a JSON array of value lists, as collectd 5 writes them:

    [{"values": [1901474177], "dstypes": ["derive"], "dsnames": ["value"],
      "time": 1732500000.123, "interval": 10.000, "host": "web-1",
      "plugin": "cpu", "plugin_instance": "0", "type": "cpu", "type_instance": "idle"}]

Each data source of a value list becomes one series named
`<plugin>/<type>[-<type_instance>][.<dsname>]` with the plugin instance as the
`instance` label. `derive` and `counter` values are raw counters unless the
sender converts them to rates (`StoreRates true`), which the caller says, or
which a fractional counter value reveals: collectd prints raw counters as
integers. `null` is how collectd writes NaN (an unknown value, or the first
rate of a counter): it is skipped and counted, not an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import orjson

from vigil.ingest.parsers.base import (
    COUNTER,
    GAUGE,
    HOST_RE,
    METRIC_RE,
    WRAPPING_COUNTER,
    Labels,
    ParseError,
    ParseResult,
    SeriesPoints,
    check_ts,
)

# collectd's identifiers are at most DATA_MAX_NAME_LEN (128) bytes with the NUL.
MAX_PART_LENGTH = 127
# No type in collectd's types.db has more than a handful of data sources.
MAX_DATA_SOURCES = 64
DS_TYPES = frozenset({"gauge", "derive", "counter", "absolute"})
# Characters of a name part that are not allowed in a metric name, and `/`,
# which separates the plugin from the type.
_UNSAFE = re.compile(r"[^A-Za-z0-9_:.\-]")


@dataclass
class CollectdParseResult(ParseResult):
    # Values that were null (NaN in collectd): nothing to store, nothing wrong.
    skipped: int = 0
    # The interval of each (host, plugin), for the canonical mapping to know
    # how far apart two readings of one series are.
    intervals: dict[tuple[str, str], float] = field(default_factory=dict)


def _clean(part: str) -> str:
    return _UNSAFE.sub("_", part)


@lru_cache(maxsize=8192)
def native_name(plugin: str, type_: str, type_instance: str, dsname: str, several: bool) -> str:
    """`cpu/cpu-idle`, `interface/if_octets.rx`, `load/load.shortterm`, ...

    The data source name is appended when the type has several of them or when
    it is not the usual `value`, so that every data source has its own series.
    """
    name = f"{_clean(plugin)}/{_clean(type_)}"
    if type_instance:
        name += "-" + _clean(type_instance)
    if several or dsname != "value":
        name += "." + _clean(dsname)
    if not name[0].isalpha() and name[0] not in "_:":
        name = "_" + name
    if not METRIC_RE.match(name):
        raise ValueError("plugin, type, type_instance and dsname make a name over 200 characters")
    return name


def _part(vl: dict, key: str, required: bool) -> str:
    value = vl.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f'"{key}" must be a string')
    if required and not value:
        raise ValueError(f'"{key}" must not be empty')
    if len(value) > MAX_PART_LENGTH:
        raise ValueError(f'"{key}" is longer than {MAX_PART_LENGTH} characters')
    return value


def _load(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = exc
    # collectd copies host names, mount points and instances byte for byte,
    # so a Latin-1 name gives invalid UTF-8: read it with replacement
    # characters rather than losing the whole buffer.
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return orjson.loads(body.decode("utf-8", "replace"))
        except orjson.JSONDecodeError as exc:
            error = exc
    raise ParseError(f"body is not valid JSON: {error}") from None


def _sends_rates(doc: list) -> bool:
    """Whether the sender has StoreRates on: only rates of counters have fractions."""
    for vl in doc:
        if type(vl) is not dict:
            continue
        values, dstypes = vl.get("values"), vl.get("dstypes")
        if type(values) is not list or type(dstypes) is not list:
            continue
        for value, dstype in zip(values, dstypes, strict=False):
            if type(value) is float and dstype != "gauge" and not value.is_integer():
                return True
    return False


def parse(body: bytes, now: float, store_rates: bool | None = None) -> CollectdParseResult:
    """Parse one write_http body; each bad value list is rejected alone, by its index.

    store_rates: whether derive/counter/absolute values are rates already
    (collectd's `StoreRates true`); None tells it from the values.
    """
    doc = _load(body)
    if not isinstance(doc, list):
        raise ParseError('body must be a JSON array of value lists (write_http Format "JSON")')
    if store_rates is None:
        store_rates = _sends_rates(doc)

    result = CollectdParseResult()
    grouped: dict[tuple[str, str, Labels, str], SeriesPoints] = {}
    hosts: set[str] = set()
    for i, vl in enumerate(doc):
        try:
            points = _read_value_list(vl, now, store_rates, hosts, result)
        except ValueError as exc:
            count = len(vl["values"]) if type(vl) is dict and type(vl.get("values")) is list else 1
            result.reject(f"value list {i}: {exc}", max(count, 1))
            continue
        for host, metric, labels, kind, ts, value in points:
            key = (host, metric, labels, kind)
            series = grouped.get(key)
            if series is None:
                grouped[key] = SeriesPoints(host, metric, labels, [ts], [value], kind)
            else:
                series.timestamps.append(ts)
                series.values.append(value)
    result.series = list(grouped.values())
    return result


Point = tuple[str, str, Labels, str, int, float]


def _read_value_list(
    vl: object, now: float, store_rates: bool, hosts: set[str], result: CollectdParseResult
) -> list[Point]:
    """The points of one value list; raises ValueError naming its first fault."""
    if type(vl) is not dict:
        raise ValueError("must be an object")
    values = vl.get("values")
    dstypes = vl.get("dstypes")
    dsnames = vl.get("dsnames")
    if type(values) is not list or not values:
        raise ValueError('"values" must be a non-empty list')
    count = len(values)
    if count > MAX_DATA_SOURCES:
        raise ValueError(f"at most {MAX_DATA_SOURCES} values are allowed")
    if type(dstypes) is not list or len(dstypes) != count:
        raise ValueError('"dstypes" must be a list as long as "values"')
    if type(dsnames) is not list or len(dsnames) != count:
        raise ValueError('"dsnames" must be a list as long as "values"')
    ts = check_ts(vl.get("time"), now)
    host = vl.get("host")
    if type(host) is not str or host not in hosts:
        if not isinstance(host, str) or not HOST_RE.match(host):
            raise ValueError('"host" must be a host name (letters, digits, ".", "-", "_")')
        hosts.add(host)
    plugin, type_ = vl.get("plugin"), vl.get("type")
    plugin_instance, type_instance = vl.get("plugin_instance", ""), vl.get("type_instance", "")
    if not (
        type(plugin) is str
        and type(type_) is str
        and type(plugin_instance) is str
        and type(type_instance) is str
        and 0 < len(plugin) <= MAX_PART_LENGTH
        and 0 < len(type_) <= MAX_PART_LENGTH
        and len(plugin_instance) <= MAX_PART_LENGTH
        and len(type_instance) <= MAX_PART_LENGTH
    ):
        # The slow path, which names the fault.
        plugin = _part(vl, "plugin", required=True)
        plugin_instance = _part(vl, "plugin_instance", required=False)
        type_ = _part(vl, "type", required=True)
        type_instance = _part(vl, "type_instance", required=False)
    interval = vl.get("interval")
    if interval is not None and (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not 0 < interval < 1e9
    ):
        raise ValueError('"interval" must be a positive number of seconds')

    labels: Labels = (("instance", plugin_instance),) if plugin_instance else ()
    several = count > 1
    points: list[Point] = []
    for j in range(count):
        dstype = dstypes[j]
        dsname = dsnames[j]
        if type(dstype) is not str or dstype not in DS_TYPES:
            raise ValueError(f"dstypes[{j}] must be gauge, derive, counter or absolute")
        if type(dsname) is not str or not dsname or len(dsname) > MAX_PART_LENGTH:
            raise ValueError(f"dsnames[{j}] must be a name of at most {MAX_PART_LENGTH} characters")
        value = values[j]
        if value is None:
            result.skipped += 1
            continue
        if type(value) is not int and type(value) is not float:
            raise ValueError(f"values[{j}] must be a number or null")
        if dstype == "gauge" or store_rates:
            kind = GAUGE
        elif dstype == "derive":
            kind = COUNTER
        elif value < 0:
            raise ValueError(f"values[{j}] must not be negative for a {dstype}")
        elif dstype == "counter":
            kind = WRAPPING_COUNTER
        else:
            # An absolute value counts what happened since the previous read.
            if interval is None:
                raise ValueError('"interval" is required for an absolute value')
            kind = GAUGE
            value = value / interval
            if not math.isfinite(value):
                raise ValueError(f"values[{j}] divided by the interval is not a finite number")
        name = native_name(plugin, type_, type_instance, dsname, several)
        points.append((host, name, labels, kind, ts, float(value)))
    if interval is not None:
        result.intervals[(host, plugin)] = float(interval)
    return points
