"""The Prometheus text format parser: pure, tested without a database."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.ingest.parsers.base import COUNTER, GAUGE, ParseError
from vigil.ingest.parsers.prometheus_text import parse

NOW = 1_790_000_000.5
T = int(NOW)
FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"


def points(body: str | bytes) -> dict[tuple[str, tuple], list[tuple[int, float]]]:
    data = body.encode() if isinstance(body, str) else body
    result = parse(data, NOW)
    return {
        (s.metric, s.labels): list(zip(s.timestamps, s.values, strict=True)) for s in result.series
    }


def kinds(body: str) -> dict[str, str]:
    return {s.metric: s.kind for s in parse(body.encode(), NOW).series}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a 1", {("a", ()): [(T, 1.0)]}),
        ("a 1.5e3", {("a", ()): [(T, 1500.0)]}),
        ("a -0.25", {("a", ()): [(T, -0.25)]}),
        ("a +7", {("a", ()): [(T, 7.0)]}),
        ("a 1 1790000000123", {("a", ()): [(1_790_000_000, 1.0)]}),
        ("a:b_c 1", {("a:b_c", ()): [(T, 1.0)]}),
        ('a{x="1"} 2', {("a", (("x", "1"),)): [(T, 2.0)]}),
        ('a{y="2",x="1"} 2', {("a", (("x", "1"), ("y", "2"))): [(T, 2.0)]}),
        ('a{x="1",} 2', {("a", (("x", "1"),)): [(T, 2.0)]}),
        ('a { x = "1" , y="2" } 2', {("a", (("x", "1"), ("y", "2"))): [(T, 2.0)]}),
        ("a{} 3", {("a", ()): [(T, 3.0)]}),
        ('a{x=""} 3', {("a", ()): [(T, 3.0)]}),
        ('a{x="a\\\\b"} 1', {("a", (("x", "a\\b"),)): [(T, 1.0)]}),
        ('a{x="say \\"hi\\""} 1', {("a", (("x", 'say "hi"'),)): [(T, 1.0)]}),
        ('a{x="two\\nlines"} 1', {("a", (("x", "two\nlines"),)): [(T, 1.0)]}),
        ('a{x="}{,="} 1', {("a", (("x", "}{,="),)): [(T, 1.0)]}),
        ('a{x="ünï©ødé"} 1', {("a", (("x", "ünï©ødé"),)): [(T, 1.0)]}),
        ("\t  a   1  \t", {("a", ()): [(T, 1.0)]}),
        ("a 1\r", {("a", ()): [(T, 1.0)]}),
        ("# just a comment\na 1", {("a", ()): [(T, 1.0)]}),
        ("#no space is a comment too\na 1", {("a", ()): [(T, 1.0)]}),
        ("# EOF\na 1", {("a", ()): [(T, 1.0)]}),
        ("a 1 1790000000000\na 2 1790000001000", {("a", ()): [(T, 1.0), (T + 1, 2.0)]}),
    ],
)
def test_it_reads_every_form_of_a_sample_line(line, expected):
    assert points(line) == expected


def test_it_reads_help_and_type_lines_and_skips_comments():
    body = (
        "# HELP a The a metric, with a \\\\ backslash and a \\n newline.\n"
        "# TYPE a gauge\n"
        "# anything at all\n"
        "a 1\n"
    )
    result = parse(body.encode(), NOW)
    assert result.errors == []
    assert [(s.metric, s.kind) for s in result.series] == [("a", GAUGE)]


@pytest.mark.parametrize(
    ("body", "metric", "kind"),
    [
        ("# TYPE c counter\nc 1", "c", COUNTER),
        ("# TYPE c_total counter\nc_total 1", "c_total", COUNTER),
        ("# TYPE c counter\nc_total 1", "c_total", COUNTER),  # OpenMetrics family naming
        ("c_total 1", "c_total", COUNTER),  # untyped _total
        ("# TYPE c_total untyped\nc_total 1", "c_total", COUNTER),
        ("# TYPE g_total gauge\ng_total 1", "g_total", GAUGE),  # an explicit type wins
        ("# TYPE g gauge\ng 1", "g", GAUGE),
        ("u 1", "u", GAUGE),
        ('# TYPE h histogram\nh_bucket{le="1"} 1', "h_bucket", COUNTER),
        ("# TYPE h histogram\nh_sum 1", "h_sum", COUNTER),
        ("# TYPE h histogram\nh_count 1", "h_count", COUNTER),
        ('# TYPE s summary\ns{quantile="0.5"} 1', "s", GAUGE),
        ("# TYPE s summary\ns_sum 1", "s_sum", COUNTER),
        ("# TYPE s summary\ns_count 1", "s_count", COUNTER),
        ("x_count 1", "x_count", GAUGE),  # no family declared: a plain gauge
        ("# TYPE c COUNTER\nc 1", "c", COUNTER),
    ],
)
def test_counters_are_marked_so_that_the_writer_stores_rates(body, metric, kind):
    assert kinds(body) == {metric: kind}


def test_a_histogram_and_a_summary_are_stored_as_their_series():
    body = """\
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.05"} 24054
rpc_seconds_bucket{le="0.1"} 33444
rpc_seconds_bucket{le="+Inf"} 144320
rpc_seconds_sum 53423
rpc_seconds_count 144320
# TYPE gc summary
gc{quantile="0"} 3.1e-05
gc{quantile="1"} NaN
gc_sum 1.2
gc_count 7
"""
    result = parse(body.encode(), NOW)
    assert result.errors == []
    assert result.non_finite == 1 and result.first_non_finite_line == 10
    got = {(s.metric, s.labels): (s.values[0], s.kind) for s in result.series}
    assert got == {
        ("rpc_seconds_bucket", (("le", "0.05"),)): (24054.0, COUNTER),
        ("rpc_seconds_bucket", (("le", "0.1"),)): (33444.0, COUNTER),
        ("rpc_seconds_bucket", (("le", "+Inf"),)): (144320.0, COUNTER),
        ("rpc_seconds_sum", ()): (53423.0, COUNTER),
        ("rpc_seconds_count", ()): (144320.0, COUNTER),
        ("gc", (("quantile", "0"),)): (3.1e-05, GAUGE),
        ("gc_sum", ()): (1.2, COUNTER),
        ("gc_count", ()): (7.0, COUNTER),
    }


@pytest.mark.parametrize("value", ["NaN", "nan", "+Inf", "-Inf", "Inf", "+inf", "-infinity"])
def test_nan_and_inf_samples_are_skipped_and_counted_not_rejected(value):
    result = parse(f'a 1\nb {value}\nc{{x="1"}} {value}\n'.encode(), NOW)
    assert [s.metric for s in result.series] == ["a"]
    assert (result.non_finite, result.first_non_finite_line) == (2, 2)
    assert result.errors == [] and result.rejected == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a", "a has no value"),
        ("a x", "value 'x' is not a number"),
        ("a 1_000", "value '1_000' is not a number"),
        ("a ١٢", "value '١٢' is not a number"),
        ("a 1e999", "value '1e999' is out of range"),
        ("a 1 2 3", "unexpected '3' after the timestamp"),
        ("a 1 12.5", "timestamp '12.5' is not an integer number of milliseconds"),
        ("a 1 1790000000", "timestamp 1790000000 is before 2000-01-01"),
        ("a 1 99999999999999", "timestamp 99999999999999 is more than an hour in"),
        ("a 1 " + "9" * 5000, "timestamp '99999"),
        ("1a 1", "'1a' is not a metric name"),
        ("a.b 1", "'a.b' is not a metric name"),
        ("a" * 201 + " 1", "metric name is longer than 200 characters"),
        ('{x="1"} 1', "'' is not a metric name"),
        ('a{x="1" 1', "'{' without a closing '}'"),
        ('a{x="1} 1', "cannot read the labels"),
        ("a{x=1} 1", "cannot read the labels"),
        ('a{x="1" y="2"} 1', "cannot read the labels"),
        ('a{x="1",,} 1', "cannot read the labels"),
        ('a{1x="1"} 1', "cannot read the labels"),
        ('a{x.y="1"} 1', "cannot read the labels"),
        ('a{x="\\t"} 1', "invalid escape sequence '\\t' in a label value"),
        ('a{x="1",x="2"} 1', "label 'x' appears twice"),
        ('a{x="' + "v" * 201 + '"} 1', "label 'x' is longer than 200 characters"),
        ("a{" + ",".join(f'l{i}="v"' for i in range(33)) + "} 1", "at most 32 labels"),
        ("# TYPE a", "unknown type ''"),
        ("# TYPE a bogus", "unknown type 'bogus'"),
        ("# TYPE", "TYPE line without a metric name"),
        ("# HELP a bad \\escape", "invalid escape sequence in HELP"),
        ("# TYPE ok gauge", "second TYPE line for 'ok'"),
        ("# HELP ok again", "second HELP line for 'ok'"),
        ("ok 2", "second sample of ok at the same time"),
        ("# TYPE h histogram\nh_bucket 1", "h_bucket needs a 'le' label"),
        ('# TYPE h histogram\nh_bucket{le="x"} 1', "le='x' of h_bucket is not a number"),
        ("# TYPE s summary\ns 1", "s needs a 'quantile' label"),
    ],
)
def test_it_rejects_a_bad_line_by_its_number_and_keeps_the_others(line, message):
    body = f"# HELP ok fine\n# TYPE ok gauge\nok 1\n{line}\n"
    result = parse(body.encode(), NOW)
    number = 4 + line.count("\n")
    assert result.errors[0].startswith(f"line {number}: {message}"), result.errors
    assert result.rejected == 1
    assert [(s.metric, s.values) for s in result.series] == [("ok", [1.0])]


def test_a_type_line_after_the_samples_of_its_family_is_rejected():
    result = parse(b"h_sum 1\n# TYPE h histogram\n", NOW)
    assert result.errors == ["line 2: TYPE line for 'h' comes after its samples"]
    assert [s.kind for s in result.series] == [GAUGE]


def test_invalid_utf8_lines_are_rejected_and_valid_lines_kept():
    result = parse(b'a 1\nb{x="\xff\xfe"} 2\nc 3\n', NOW)
    assert result.errors == ["line 2: is not valid UTF-8"]
    assert [s.metric for s in result.series] == ["a", "c"]


@pytest.mark.parametrize("body", [b"", b"\n\n  \n", b"\t"])
def test_an_empty_body_cannot_be_read(body):
    with pytest.raises(ParseError, match="the body is empty"):
        parse(body, NOW)


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Not Found</body></html>", b'{"series": []}', b"a b c d\ne f g h"],
)
def test_a_body_of_which_no_line_can_be_read_is_a_parse_error(body):
    with pytest.raises(ParseError, match="no line could be read as Prometheus text format"):
        parse(body, NOW)


def test_a_body_of_only_comments_has_no_samples_and_no_errors():
    result = parse(b"# HELP a x\n# TYPE a gauge\n", NOW)
    assert (result.series, result.errors) == ([], [])


def test_a_huge_label_value_is_rejected_quickly():
    body = b'a{x="' + b"v" * 1_000_000 + b'"} 1\nb 2\n'
    result = parse(body, NOW)
    assert result.errors == ["line 1: label 'x' is longer than 200 characters"]
    assert [s.metric for s in result.series] == ["b"]


@pytest.mark.parametrize(
    "labels", ['x="1"' + " " * 2**20 + "y", 'x="1"' + " \t" * 2**19 + ",}", 'x = "1" ,' * 2**17]
)
def test_blanks_in_a_hostile_label_set_are_read_in_linear_time(labels):
    # A regex with two blank runs side by side would take minutes here.
    started = time.monotonic()
    result = parse(b"a{" + labels.encode() + b"} 1\nb 2\n", NOW)
    assert result.errors[0].startswith("line 1: ")
    assert [s.metric for s in result.series] == ["b"]
    assert time.monotonic() - started < 5


def test_many_points_of_one_series_with_timestamps_are_read_in_linear_time():
    body = "".join(f"a 1 {(T - 100_000 + i) * 1000}\n" for i in range(100_000)).encode()
    (series,) = parse(body, NOW).series
    assert len(series.timestamps) == 100_000


def test_it_reads_a_real_node_exporter_page():
    result = parse((FIXTURES / "node_exporter_1.5.0_a.txt").read_bytes(), NOW)
    assert result.errors == []
    by_name = {(s.metric, s.labels): s for s in result.series}
    assert len(result.series) > 400
    assert by_name[("node_load1", ())].kind == GAUGE
    cpu = [s for s in result.series if s.metric == "node_cpu_seconds_total"]
    assert cpu and all(s.kind == COUNTER for s in cpu)
    assert {dict(s.labels)["mode"] for s in cpu} >= {"idle", "user", "system", "iowait"}
    root = by_name[
        (
            "node_filesystem_avail_bytes",
            (("device", "/dev/vda"), ("fstype", "ext4"), ("mountpoint", "/")),
        )
    ]
    assert root.values[0] > 0 and root.timestamps == [T]


# Property tests: what serialize() writes, parse() reads back exactly.

names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,30}", fullmatch=True)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)
label_values = st.text(min_size=1, max_size=40)
values = st.floats(allow_nan=False, allow_infinity=False)
stamps = st.one_of(st.none(), st.integers(min_value=946_684_800_000, max_value=T * 1000))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serialize(samples) -> bytes:
    lines = []
    for name, labels, value, ts in samples:
        text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        line = f"{name}{{{text}}} {value!r}" if labels else f"{name} {value!r}"
        lines.append(line if ts is None else f"{line} {ts}")
    return "\n".join(lines).encode()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(names, st.dictionaries(label_names, label_values, max_size=5), values, stamps),
        min_size=1,
        max_size=20,
        unique_by=lambda s: (s[0], tuple(sorted(s[1].items()))),
    )
)
def test_what_is_serialized_is_parsed_back_exactly(samples):
    result = parse(serialize(samples), NOW)
    assert result.errors == []
    got = {(s.metric, s.labels): (s.timestamps, s.values) for s in result.series}
    expected = {
        (name, tuple(sorted(labels.items()))): ([T if ts is None else ts // 1000], [value])
        for name, labels, value, ts in samples
    }
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_no_exception_but_parse_error_escapes_for_arbitrary_bytes(body):
    try:
        result = parse(body, NOW)
    except ParseError:
        return
    for s in result.series:
        assert all(math.isfinite(v) for v in s.values)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab{}="\\,# \n\t01.eE+-_:', max_size=200))
def test_no_exception_but_parse_error_escapes_for_near_miss_text(text):
    with contextlib.suppress(ParseError):
        parse(text.encode(), NOW)
