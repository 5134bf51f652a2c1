from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vigil.ingest.parsers.base import COUNTER, GAUGE, METRIC_RE, ParseError
from vigil.ingest.parsers.influx_line import parse

NOW = 1_800_000_000
NS = NOW * 1_000_000_000


def points(body: bytes | str, **kw) -> dict[tuple, list[tuple[int, float]]]:
    """{(host, metric, labels): [(ts, value), ...]} of a parse that rejected nothing."""
    result = parse(body.encode() if isinstance(body, str) else body, NOW, **kw)
    assert result.errors == []
    return {
        (s.host, s.metric, s.labels): list(zip(s.timestamps, s.values, strict=True))
        for s in result.series
    }


def one(body: str, **kw) -> tuple[tuple, list[tuple[int, float]]]:
    found = points(body, **kw)
    assert len(found) == 1, found
    return next(iter(found.items()))


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        (f"cpu,host=web-1 usage_idle=12.5 {NS}", ("web-1", "cpu.usage_idle", ()), 12.5),
        ("mem used=3i", (None, "mem.used", ()), 3.0),
        ("m v=-3i", (None, "m.v", ()), -3.0),
        ("m v=9223372036854775807i", (None, "m.v", ()), 9223372036854775807.0),
        ("m v=-9223372036854775808i", (None, "m.v", ()), -9223372036854775808.0),
        ("m v=18446744073709551615u", (None, "m.v", ()), 18446744073709551615.0),
        ("m v=7u", (None, "m.v", ()), 7.0),
        ("m v=1", (None, "m.v", ()), 1.0),
        ("m v=-1.5", (None, "m.v", ()), -1.5),
        ("m v=.5", (None, "m.v", ()), 0.5),
        ("m v=5.", (None, "m.v", ()), 5.0),
        ("m v=1e3", (None, "m.v", ()), 1000.0),
        ("m v=-1.5E-2", (None, "m.v", ()), -0.015),
        ("m v=2.5e+2", (None, "m.v", ()), 250.0),
        ("m v=100000000000000000000000", (None, "m.v", ()), 1e23),
        ("m,b=2,a=1 v=1", (None, "m.v", (("a", "1"), ("b", "2"))), 1.0),
        (r"c\,p\ u v=1", (None, "c_p_u.v", ()), 1.0),
        (r"m,t\ a\,g\=x=v\ a\,l\=ue v=1", (None, "m.v", (("t_a_g_x", "v a,l=ue"),)), 1.0),
        (r"m us\ er\,x\=y=1", (None, "m.us_er_x_y", ()), 1.0),
        (r"m,path=C:\Windows v=1", (None, "m.v", (("path", "C:\\Windows"),)), 1.0),
        ('m,a=x"y v=1', (None, "m.v", (("a", 'x"y'),)), 1.0),
        ("m,my-tag=1,9lives=2 v=1", (None, "m.v", (("_9lives", "2"), ("my_tag", "1"))), 1.0),
        ("9m v=1", (None, "_9m.v", ()), 1.0),
        ("dm=x v=1", (None, "dm_x.v", ()), 1.0),
        ("wïn_cpu Percent\\ Idle=5", (None, "w_n_cpu.Percent_Idle", ()), 5.0),
        ("m,host=db-1.example.org v=1", ("db-1.example.org", "m.v", ()), 1.0),
    ],
)
def test_it_reads_every_form_of_a_line(line, key, value):
    assert one(line) == (key, [(NOW, value)])


@pytest.mark.parametrize(
    ("spelling", "value"),
    [(s, 1.0) for s in ("t", "T", "true", "True", "TRUE")]
    + [(s, 0.0) for s in ("f", "F", "false", "False", "FALSE")],
)
def test_booleans_in_every_spelling_influxdb_accepts_are_1_or_0(spelling, value):
    assert one(f"m up={spelling}") == ((None, "m.up", ()), [(NOW, value)])


@pytest.mark.parametrize(
    ("precision", "stamp", "seconds"),
    [
        ("ns", NS + 999_999_999, NOW),
        ("n", NS, NOW),
        ("", NS, NOW),
        ("u", NS // 1000, NOW),
        ("us", NS // 1000, NOW),
        ("µs", NS // 1000, NOW),
        ("ms", NS // 1_000_000 + 999, NOW),
        ("s", NOW, NOW),
        ("m", NOW // 60, NOW // 60 * 60),
        ("h", NOW // 3600, NOW // 3600 * 3600),
    ],
)
def test_timestamps_are_read_in_the_precision_given_and_truncated_to_seconds(
    precision, stamp, seconds
):
    assert one(f"m v=1 {stamp}", precision=precision) == ((None, "m.v", ()), [(seconds, 1.0)])


def test_an_unknown_precision_is_refused_whole():
    with pytest.raises(ParseError, match="invalid precision 'd'"):
        parse(b"m v=1", NOW, precision="d")


def test_string_fields_are_skipped_and_counted():
    body = (
        'system,host=tyrion uptime_format="14 days, 11:07" 1483964144000000000\n'
        'm msg="he said \\"hi\\", a=b \\\\ ok",v=1,s="",t="x\\y"\n'
    )
    result = parse(body.encode(), NOW)
    assert result.errors == []
    assert result.strings_skipped == 4
    assert [(s.metric, s.values) for s in result.series] == [("m.v", [1.0])]


def test_comments_blank_lines_crlf_and_extra_spaces_are_accepted():
    body = (
        f"# a comment\r\n\r\n   \t\n  # an indented comment\n  m v=1\r\nm  w=2   {NS}  \r\nm x=3 \n"
    )
    assert points(body) == {
        (None, "m.v", ()): [(NOW, 1.0)],
        (None, "m.w", ()): [(NOW, 2.0)],
        (None, "m.x", ()): [(NOW, 3.0)],
    }


def test_the_points_of_one_series_are_gathered_in_order():
    body = "\n".join(
        f"cpu,host=a,cpu=cpu-total usage_idle={i} {NS - (5 - i) * 10**10}" for i in range(5)
    )
    result = parse(body.encode(), NOW)
    [series] = result.series
    assert series.timestamps == [NOW - 50, NOW - 40, NOW - 30, NOW - 20, NOW - 10]
    assert series.values == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert series.labels == (("cpu", "cpu-total"),)


def test_tags_in_another_order_are_the_same_series():
    result = parse(f"m,a=1,b=2 v=1 {NS}\nm,b=2,a=1 v=2 {NS + 10**10}".encode(), NOW)
    assert [(s.labels, s.values) for s in result.series] == [((("a", "1"), ("b", "2")), [1.0, 2.0])]


def test_counters_are_marked_as_counters():
    result = parse(
        b"net,interface=eth0 bytes_recv=5i,speed=1000i", NOW, counters=frozenset({"net.bytes_recv"})
    )
    assert {s.metric: s.kind for s in result.series} == {
        "net.bytes_recv": COUNTER,
        "net.speed": GAUGE,
    }


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("cpu", "missing fields"),
        ("cpu,host=web-1", "missing fields"),
        (",a=b v=1", "missing measurement"),
        ("cpu,=b v=1", "missing tag key"),
        ("cpu,a v=1", "missing tag value"),
        ("cpu,a= v=1", "missing tag value"),
        ("cpu,a=b=c v=1", "unescaped '='"),
        ("cpu,a=1,a=2 v=1", "duplicate tag 'a'"),
        ("cpu,a-b=1,a_b=2 v=1", "duplicate tag 'a_b'"),
        ("cpu,host=a,host=b v=1", "duplicate tag 'host'"),
        (r"cpu,host=a\ b v=1", "host tag 'a b' is not a host name"),
        ("cpu v=", "missing value of field 'v'"),
        ("cpu v", "missing '=' after field 'v'"),
        ("cpu =1", "missing field key"),
        ("cpu v=1,", "missing field key"),
        ("cpu v=1,,w=2", "missing field key"),
        ("cpu v=1,v=2", "duplicate field 'v'"),
        ("cpu v=yes", "invalid value 'yes'"),
        ("cpu v=tru", "invalid boolean 'tru'"),
        ("cpu v=truE", "invalid boolean 'truE'"),
        ("cpu v=NaN", "invalid value 'NaN'"),
        ("cpu v=nan", "invalid value 'nan'"),
        ("cpu v=Inf", "invalid value 'Inf'"),
        ("cpu v=-Inf", "invalid value '-Inf'"),
        ("cpu v=1e999", "out of range"),
        ("cpu v=-1e999", "out of range"),
        ("cpu v=9223372036854775808i", "out of range"),
        ("cpu v=18446744073709551616u", "out of range"),
        ("cpu v=-1u", "invalid unsigned '-1u'"),
        ("cpu v=1.5i", "invalid integer '1.5i'"),
        ("cpu v=0x10", "invalid number '0x10'"),
        ("cpu v=+1", "invalid number '+1'"),
        ("cpu v=1_000", "invalid number '1_000'"),
        ("cpu v=١٢", "invalid value"),
        ("cpu v=1.2.3", "invalid number '1.2.3'"),
        ("cpu v=1e", "invalid value '1e'"),
        ("cpu v=-", "invalid value '-'"),
        ("cpu v=.", "invalid number '.'"),
        ('cpu v="abc', "unterminated string in field 'v'"),
        ('cpu v="abc\\"', "unterminated string in field 'v'"),
        ('cpu v="abc"x', "unexpected text after the string"),
        ("cpu v=1 12ab", "invalid timestamp '12ab'"),
        ("cpu v=1 1", "before 2000-01-01"),
        ("cpu v=1 -1", "before 2000-01-01"),
        (f"cpu v=1 {NS * 10}", "more than an hour in the future"),
        ("cpu v=1 " + "9" * 1000, "invalid timestamp"),
        (f"cpu v=1 {NS} 5", "unexpected text after the timestamp"),
        (f'cpu s="x" {NS} 5', "unexpected text after the timestamp"),
        ("m" * 200 + " v=1", "measurement is longer than"),
        ("m " + "v" * 199 + "=1", "is longer than 200"),
        ("m," + "t" * 101 + "=1 v=1", "tag key 'ttt"),
        ("m,t=" + "x" * 201 + " v=1", "tag 't' is longer than 200"),
        ("m," + ",".join(f"t{i}=1" for i in range(33)) + " v=1", "more than 32 tags"),
    ],
)
def test_a_bad_line_is_rejected_alone_naming_its_number_and_reason(line, error):
    body = f"# first line is a comment\nok v=1\n{line}\nok w=2\n".encode()
    result = parse(body, NOW)
    assert result.rejected == 1
    assert result.errors[0].startswith("line 3: ")
    assert error in result.errors[0]
    assert sorted(s.metric for s in result.series) == ["ok.v", "ok.w"]


def test_a_line_is_written_whole_or_not_at_all():
    result = parse(b"m a=1,b=2,c=oops\nm a=3", NOW)
    assert result.rejected == 1
    assert {s.metric: s.values for s in result.series} == {"m.a": [3.0]}


def test_a_rejected_line_takes_back_what_it_added_to_earlier_series():
    result = parse(f"m a=1 {NS}\nm a=2,b=oops {NS + 10**10}\nm a=3 {NS + 2 * 10**10}".encode(), NOW)
    assert result.rejected == 1
    assert [(s.metric, s.timestamps, s.values) for s in result.series] == [
        ("m.a", [NOW, NOW + 20], [1.0, 3.0])
    ]


def test_a_field_repeated_in_a_line_is_a_duplicate_even_for_a_known_series():
    result = parse(f"m a=1 {NS}\nm a=2,a=3 {NS}\nm,t=x b=1,b=2".encode(), NOW)
    assert [e.split(": ", 1)[1] for e in result.errors] == [
        "duplicate field 'a'",
        "duplicate field 'b'",
    ]
    assert [(s.metric, s.values) for s in result.series] == [("m.a", [1.0])]


def test_the_same_point_on_two_lines_is_kept_for_the_writer_to_store_once():
    result = parse(f"m a=1 {NS}\nm a=1 {NS}".encode(), NOW)
    assert result.errors == []
    assert [(s.timestamps, s.values) for s in result.series] == [([NOW, NOW], [1.0, 1.0])]


def test_invalid_utf8_costs_only_its_line():
    result = parse(b"m,t=\xff\xfe v=1\nm v=2\n", NOW)
    assert result.errors == ["line 1: not valid UTF-8"]
    assert [(s.metric, s.labels, s.values) for s in result.series] == [("m.v", (), [2.0])]


def test_only_the_first_twenty_messages_are_kept_but_every_rejection_is_counted():
    result = parse(b"bad\n" * 1000 + b"ok v=1", NOW)
    assert result.rejected == 1000
    assert len(result.errors) == 20
    assert result.errors[19].startswith("line 20: ")
    assert result.points == 1


def test_a_hundred_thousand_lines_are_read():
    body = "".join(
        f"m,host=h{i % 100},n={i // 100 % 10} v={i}i {NS - i // 1000 * 10**9}\n"
        for i in range(100_000)
    )
    result = parse(body.encode(), NOW)
    assert result.errors == []
    assert result.points == 100_000
    assert len(result.series) == 1000
    assert len({s.host for s in result.series}) == 100


def test_the_caches_of_keys_and_names_stay_bounded(monkeypatch):
    from vigil.ingest.parsers import influx_line

    monkeypatch.setattr(influx_line, "_CACHE_MAX", 500)
    monkeypatch.setattr(influx_line, "_MAX_NAMES", 2000)
    influx_line._clear_caches()
    parse("".join(f"m,n={i} v=1\n" for i in range(2000)).encode(), NOW)
    assert len(influx_line._key_cache) <= 500
    fields = ",".join(f"f{i}=1" for i in range(300))
    for i in range(20):
        parse(f"k,n={i} {fields}".encode(), NOW)
        assert influx_line._names_cached <= 2000 + 256
    assert all(
        len(key[3]) <= influx_line._MAX_NAMES_PER_KEY
        for key in influx_line._key_cache.values()
        if isinstance(key, tuple)
    )
    influx_line._clear_caches()


# Property tests --------------------------------------------------------------

_NAME_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\\\n\r"
)
_names = st.text(_NAME_CHARS, min_size=1, max_size=20)


def _escape(text: str, chars: str) -> str:
    for c in chars:
        text = text.replace(c, "\\" + c)
    return text


def _metric_part(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "_:.-/") else "_" for c in text)


def _label(text: str) -> str:
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text)
    return "_" + name if name[0].isdigit() else name


_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1).map(lambda u: ("u", u)),
    st.booleans(),
)


def _serialize_value(value) -> str:
    if isinstance(value, tuple):
        return f"{value[1]}u"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    return repr(value)


def _number(value) -> float:
    if isinstance(value, tuple):
        return float(value[1])
    return float(value)


@settings(max_examples=300, deadline=None)
@given(
    measurement=_names.filter(lambda m: not m.lstrip(" \t\x00").startswith("#")),
    tags=st.dictionaries(_names, _names, max_size=5),
    fields=st.dictionaries(_names, _values, min_size=1, max_size=5),
    seconds=st.integers(946_684_800, NOW),
    strings=st.lists(st.text(_NAME_CHARS, max_size=10), max_size=2),
)
def test_parse_reads_back_what_line_protocol_serialization_wrote(
    measurement, tags, fields, seconds, strings
):
    tags = {k: v for k, v in tags.items() if k != "host"}
    assume(len({_label(k) for k in tags}) == len(tags))
    assume(len(_metric_part(measurement)) < 100)
    key = _escape(measurement, ", ") + "".join(
        f",{_escape(k, ', =')}={_escape(v, ', =')}" for k, v in sorted(tags.items())
    )
    pairs = [f"{_escape(k, ', =')}={_serialize_value(v)}" for k, v in fields.items()]
    string_fields = {f"s{i}_{_label(k or 'x')}" for i, k in enumerate(strings)}
    pairs += [
        f'{name}="{s.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for name, s in zip(sorted(string_fields), strings, strict=False)
    ]
    assume(not ({_escape(k, ", =") for k in fields} & string_fields))
    line = f"{key} {','.join(pairs)} {seconds * 1_000_000_000 + 123}"

    result = parse(line.encode(), NOW)

    assert result.errors == []
    assert result.strings_skipped == len(strings)
    prefix = _metric_part(measurement)
    if not (prefix[0].isascii() and (prefix[0].isalpha() or prefix[0] in "_:")):
        prefix = "_" + prefix
    expected_labels = tuple(sorted((_label(k), v) for k, v in tags.items()))
    expected: dict[str, float] = {}
    for k, v in fields.items():
        expected.setdefault(f"{prefix}.{_metric_part(k)}", _number(v))
    got = {}
    for s in result.series:
        assert METRIC_RE.match(s.metric)
        assert s.labels == expected_labels
        assert s.timestamps[0] == seconds
        got.setdefault(s.metric, s.values[0])
    assert got.keys() == expected.keys()
    for metric, value in expected.items():
        assert got[metric] == value or (math.isclose(got[metric], value))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data):
    result = parse(data, NOW)
    assert result.rejected >= len(result.errors)


_LP_ALPHABET = st.sampled_from(list(' ,="\\\n\r\t#0123456789.-+eEiutTfFaxyz=\x00é'))


@settings(max_examples=500, deadline=None)
@given(st.lists(_LP_ALPHABET, max_size=200).map("".join))
def test_line_protocol_shaped_garbage_never_raises(text):
    result = parse(text.encode(), NOW)
    for series in result.series:
        assert METRIC_RE.match(series.metric)
        assert len(series.timestamps) == len(series.values)
        assert all(math.isfinite(v) for v in series.values)
