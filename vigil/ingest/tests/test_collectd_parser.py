from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.ingest.parsers.base import COUNTER, GAUGE, MIN_TS, WRAPPING_COUNTER, ParseError
from vigil.ingest.parsers.collectd_json import native_name, parse

NOW = 1_800_000_000
FIXTURES = Path(__file__).parent / "fixtures" / "collectd"


def value_list(
    plugin: str = "cpu",
    type_: str = "cpu",
    values: list | None = None,
    dstypes: list | None = None,
    dsnames: list | None = None,
    **fields,
) -> dict:
    """One value list as collectd's format_json writes it."""
    values = [1] if values is None else values
    doc = {
        "values": values,
        "dstypes": dstypes if dstypes is not None else ["gauge"] * len(values),
        "dsnames": dsnames if dsnames is not None else ["value"] * len(values),
        "time": NOW - 5.25,
        "interval": 10.0,
        "host": "web-1",
        "plugin": plugin,
        "plugin_instance": "",
        "type": type_,
        "type_instance": "",
    }
    doc.update(fields)
    return doc


def body(*value_lists: dict) -> bytes:
    return orjson.dumps(list(value_lists))


def points(result) -> list[tuple]:
    return sorted(
        (s.host, s.metric, s.labels, s.kind, t, v)
        for s in result.series
        for t, v in zip(s.timestamps, s.values, strict=True)
    )


@pytest.mark.parametrize(
    ("plugin", "type_", "type_instance", "dsnames", "names"),
    [
        ("cpu", "cpu", "idle", ["value"], ["cpu/cpu-idle"]),
        ("cpu", "percent", "idle", ["value"], ["cpu/percent-idle"]),
        ("memory", "memory", "slab_recl", ["value"], ["memory/memory-slab_recl"]),
        ("df", "df_complex", "used", ["value"], ["df/df_complex-used"]),
        ("interface", "if_octets", "", ["rx", "tx"],
         ["interface/if_octets.rx", "interface/if_octets.tx"]),
        ("load", "load", "", ["shortterm", "midterm", "longterm"],
         ["load/load.shortterm", "load/load.midterm", "load/load.longterm"]),
        ("uptime", "uptime", "", ["value"], ["uptime/uptime"]),
        ("entropy", "entropy", "", ["available"], ["entropy/entropy.available"]),
        ("ping", "ping", "8.8.8.8", ["value"], ["ping/ping-8.8.8.8"]),
        ("exec", "gauge", "a b/c", ["value"], ["exec/gauge-a_b_c"]),
        ("exec", "gauge", "caf\u00e9", ["value"], ["exec/gauge-caf_"]),
        ("exec", "gauge", "", ["v@lue"], ["exec/gauge.v_lue"]),
        ("9lives", "gauge", "", ["value"], ["_9lives/gauge"]),
        ("p/q", "t", "", ["value"], ["p_q/t"]),
    ],
)  # fmt: skip
def test_native_names_follow_plugin_type_instance_and_data_source(
    plugin, type_, type_instance, dsnames, names
):
    several = len(dsnames) > 1
    assert [native_name(plugin, type_, type_instance, ds, several) for ds in dsnames] == names


def test_a_value_list_with_several_data_sources_gives_one_series_each():
    result = parse(
        body(
            value_list(
                "load",
                "load",
                [0.5, 0.25, 0.125],
                dsnames=["shortterm", "midterm", "longterm"],
            )
        ),
        NOW,
    )
    assert [(s.metric, s.values) for s in result.series] == [
        ("load/load.shortterm", [0.5]),
        ("load/load.midterm", [0.25]),
        ("load/load.longterm", [0.125]),
    ]


def test_the_plugin_instance_is_the_instance_label_and_time_drops_its_fraction():
    result = parse(body(value_list(plugin_instance="3", type_instance="idle", time=NOW - 0.9)), NOW)
    (series,) = result.series
    assert (series.host, series.metric, series.labels) == (
        "web-1",
        "cpu/cpu-idle",
        (("instance", "3"),),
    )
    assert series.timestamps == [NOW - 1]


@pytest.mark.parametrize(
    ("dstype", "value", "kind", "stored"),
    [
        ("gauge", 42.5, GAUGE, 42.5),
        ("derive", 1_234_567, COUNTER, 1_234_567.0),
        ("derive", -5, COUNTER, -5.0),
        ("counter", 2**64 - 1, WRAPPING_COUNTER, float(2**64 - 1)),
        # An absolute value counts what happened since the previous read.
        ("absolute", 500, GAUGE, 50.0),
    ],
)
def test_each_data_source_type_becomes_the_right_kind(dstype, value, kind, stored):
    result = parse(body(value_list(values=[value], dstypes=[dstype])), NOW)
    (series,) = result.series
    assert (series.kind, series.values) == (kind, [stored])


@pytest.mark.parametrize("dstype", ["derive", "counter", "absolute"])
def test_with_store_rates_on_counters_are_already_rates(dstype):
    result = parse(body(value_list(values=[12], dstypes=[dstype])), NOW, store_rates=True)
    assert [(s.kind, s.values) for s in result.series] == [(GAUGE, [12.0])]


def test_a_fractional_counter_value_reveals_store_rates_for_the_whole_body():
    result = parse(
        body(
            value_list(values=[3], dstypes=["derive"], type_instance="user"),
            value_list(values=[41.5], dstypes=["derive"], type_instance="idle"),
        ),
        NOW,
    )
    assert {s.kind for s in result.series} == {GAUGE}
    assert parse(body(value_list(values=[3], dstypes=["derive"])), NOW).series[0].kind == COUNTER


def test_store_rates_off_is_kept_when_said_so():
    result = parse(body(value_list(values=[41.5], dstypes=["derive"])), NOW, store_rates=False)
    assert result.series[0].kind == COUNTER


def test_null_values_are_skipped_and_counted_without_an_error():
    result = parse(
        body(
            value_list("interface", "if_octets", [None, 7], ["derive"] * 2, ["rx", "tx"]),
            value_list(values=[None]),
        ),
        NOW,
    )
    assert [(s.metric, s.values) for s in result.series] == [("interface/if_octets.tx", [7.0])]
    assert (result.skipped, result.rejected, result.errors) == (2, 0, [])


def test_points_of_one_series_in_one_body_make_one_series():
    result = parse(body(value_list(values=[1], time=NOW - 20), value_list(values=[2])), NOW)
    (series,) = result.series
    assert (series.timestamps, series.values) == ([NOW - 20, NOW - 6], [1.0, 2.0])


def test_it_records_the_interval_of_each_host_and_plugin():
    result = parse(body(value_list(interval=60.0), value_list("load", "load", interval=10)), NOW)
    assert result.intervals == {("web-1", "cpu"): 60.0, ("web-1", "load"): 10.0}


def test_invalid_utf8_in_names_is_replaced_rather_than_losing_the_body():
    raw = body(value_list("df", "df_complex", plugin_instance="m\u00e9dia")).replace(
        "m\u00e9dia".encode(), b"m\xe9dia"
    )
    (series,) = parse(raw, NOW).series
    assert series.labels == (("instance", "m\ufffddia"),)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"[", "not valid JSON"),
        (b"[1.0e400]", "not valid JSON"),
        (b"[NaN]", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"{}", "must be a JSON array"),
        (b'"text"', "must be a JSON array"),
        (b"null", "must be a JSON array"),
        (b"[" * 2000 + b"]" * 2000, "not valid JSON"),
    ],
)
def test_it_rejects_a_body_it_cannot_read_with_a_reason(raw, message):
    with pytest.raises(ParseError, match=message):
        parse(raw, NOW)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"values": None}, '"values" must be a non-empty list'),
        ({"values": []}, '"values" must be a non-empty list'),
        ({"values": 5}, '"values" must be a non-empty list'),
        ({"values": [1] * 65, "dstypes": ["gauge"] * 65}, "at most 64 values"),
        ({"dstypes": []}, '"dstypes" must be a list as long as "values"'),
        ({"dstypes": "gauge"}, '"dstypes" must be a list as long as "values"'),
        ({"dsnames": ["a", "b"]}, '"dsnames" must be a list as long as "values"'),
        ({"time": None}, "timestamp must be a number"),
        ({"time": "1800000000"}, "timestamp must be a number"),
        ({"time": True}, "timestamp must be a number"),
        ({"time": NOW * 1000.0}, "more than an hour in the future"),
        ({"time": 12.5}, "before 2000-01-01"),
        ({"host": None}, '"host" must be a host name'),
        ({"host": "bad host"}, '"host" must be a host name'),
        ({"host": "h" * 300}, '"host" must be a host name'),
        ({"plugin": ""}, '"plugin" must not be empty'),
        ({"plugin": 7}, '"plugin" must be a string'),
        ({"type": None}, '"type" must not be empty'),
        ({"type_instance": ["idle"]}, '"type_instance" must be a string'),
        ({"plugin_instance": "x" * 128}, '"plugin_instance" is longer than 127'),
        ({"plugin": "p" * 127, "type": "t" * 127}, "over 200 characters"),
        ({"dstypes": ["gauge2"]}, "dstypes[0] must be gauge, derive, counter or absolute"),
        ({"dstypes": [["gauge"]]}, "dstypes[0] must be gauge, derive, counter or absolute"),
        ({"plugin_instance": None, "type_instance": None}, None),
        ({"dsnames": [""]}, "dsnames[0] must be a name"),
        ({"dsnames": [5]}, "dsnames[0] must be a name"),
        ({"values": ["1"]}, "values[0] must be a number or null"),
        ({"values": [True]}, "values[0] must be a number or null"),
        ({"values": [[1]]}, "values[0] must be a number or null"),
        ({"values": [-1], "dstypes": ["counter"]}, "must not be negative for a counter"),
        ({"values": [5], "dstypes": ["absolute"], "interval": None}, '"interval" is required'),
        ({"interval": 0}, '"interval" must be a positive number'),
        ({"values": [1e300], "dstypes": ["absolute"], "interval": 1e-300}, "not a finite number"),
        ({"interval": "10"}, '"interval" must be a positive number'),
    ],
)
def test_it_names_the_bad_value_list_and_keeps_the_others(fields, error):
    good = value_list("load", "load", [0.5])
    result = parse(body(good, value_list() | fields, good | {"time": NOW - 1}), NOW)
    if error is None:  # collectd leaves out nothing, but null is as good as empty
        assert result.errors == [] and len(result.series) == 2
        return
    assert result.errors[0].startswith("value list 1: ")
    assert error in result.errors[0]
    assert [(s.metric, s.timestamps) for s in result.series] == [("load/load", [NOW - 6, NOW - 1])]
    assert result.rejected >= 1


def test_a_value_list_that_is_not_an_object_is_rejected_by_index():
    result = parse(body(value_list(), "x", 5), NOW)  # type: ignore[arg-type]
    assert result.errors == ["value list 1: must be an object", "value list 2: must be an object"]
    assert len(result.series) == 1


def test_meta_data_is_accepted_and_ignored():
    result = parse(body(value_list(meta={"network:received": True, "x": 1.5})), NOW)
    assert len(result.series) == 1 and result.errors == []


@pytest.mark.parametrize("scenario", ["default", "store-rates", "percent", "aggregated", "active"])
def test_every_value_list_of_real_collectd_bodies_is_read(scenario):
    files = sorted((FIXTURES / scenario).glob("*.json"))
    assert len(files) >= 10
    for path in files:
        raw = path.read_bytes()
        doc = orjson.loads(raw)
        result = parse(raw, doc[0]["time"] + 5)
        assert (result.errors, result.rejected) == ([], 0), path
        values = sum(len(vl["values"]) for vl in doc)
        assert result.points + result.skipped == values
        assert {s.host for s in result.series} == {"collectd-fixture"}


def test_real_default_bodies_give_the_documented_native_names():
    metrics: Counter = Counter()
    kinds = {}
    for path in sorted((FIXTURES / "default").glob("*.json")):
        raw = path.read_bytes()
        for s in parse(raw, orjson.loads(raw)[0]["time"] + 5).series:
            metrics[s.metric] += 1
            kinds[s.metric] = s.kind
    for name in (
        "cpu/cpu-idle",
        "cpu/cpu-user",
        "memory/memory-used",
        "memory/memory-slab_recl",
        "swap/swap-cached",
        "swap/swap_io-in",
        "df/df_complex-free",
        "disk/disk_octets.read",
        "interface/if_octets.tx",
        "load/load.shortterm",
    ):
        assert name in metrics, name
    assert kinds["cpu/cpu-idle"] == COUNTER
    assert kinds["memory/memory-used"] == GAUGE


# Property tests: a generated batch comes back point for point, and no bytes
# or JSON make the parser raise anything but ParseError.
name_part = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
value_lists = st.builds(
    lambda plugin, type_, ti, pi, ds, ts, host: {
        "values": [v for _, v in ds],
        "dstypes": ["gauge"] * len(ds),
        "dsnames": [n for n, _ in ds],
        "time": ts,
        "interval": 10.0,
        "host": host,
        "plugin": "p" + plugin,
        "plugin_instance": pi,
        "type": type_,
        "type_instance": ti,
    },
    name_part,
    name_part,
    st.one_of(st.just(""), name_part),
    st.text(max_size=20),
    st.lists(
        st.tuples(name_part, st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=4,
        unique_by=lambda d: d[0],
    ),
    st.floats(min_value=MIN_TS, max_value=NOW),
    st.sampled_from(["web-1", "db.example.com", "x"]),
)


def expected_points(doc: list[dict]) -> list[tuple]:
    out = []
    for vl in doc:
        several = len(vl["values"]) > 1
        for ds, value in zip(vl["dsnames"], vl["values"], strict=True):
            name = f"{vl['plugin']}/{vl['type']}"
            name += f"-{vl['type_instance']}" if vl["type_instance"] else ""
            name += f".{ds}" if several or ds != "value" else ""
            labels = (("instance", vl["plugin_instance"]),) if vl["plugin_instance"] else ()
            out.append((vl["host"], name, labels, GAUGE, int(vl["time"]), value))
    return sorted(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(value_lists, max_size=20))
def test_a_generated_batch_is_read_back_point_for_point(doc):
    result = parse(orjson.dumps(doc), NOW)
    assert result.errors == []
    assert points(result) == expected_points(doc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["values", "dstypes", "dsnames", "time", "interval", "host", "plugin", "plugin_instance",
     "type", "type_instance", "meta"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_no_bytes_make_it_raise_anything_but_its_own_error(raw):
    with contextlib.suppress(ParseError):
        parse(raw, NOW)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(field_names, json_values, max_size=11), max_size=5) | json_values)
def test_no_json_makes_it_raise_anything_but_its_own_error(doc):
    # The standard library writes what orjson will not: NaN, integers past 64 bits.
    with contextlib.suppress(ParseError):
        parse(json.dumps(doc).encode(), NOW)


@settings(max_examples=200, deadline=None)
@given(st.lists(value_lists, min_size=1, max_size=5), st.data())
def test_a_valid_value_list_with_one_field_broken_is_rejected_alone(doc, data):
    index = data.draw(st.integers(0, len(doc) - 1))
    broken = dict(doc[index])
    broken[data.draw(field_names.filter(lambda f: f != "meta"))] = data.draw(
        st.sampled_from([None, [], {}, "", -1, "x" * 300, [None, "a"]])
    )
    doc = doc[:index] + [broken] + doc[index + 1 :]
    result = parse(orjson.dumps(doc), NOW)
    kept = expected_points([vl for i, vl in enumerate(doc) if i != index])
    assert set(kept) <= set(points(result))
