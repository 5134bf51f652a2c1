from __future__ import annotations

import contextlib
from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.ingest.parsers.base import ParseError
from vigil.ingest.parsers.vigil_json import parse

NOW = 1_800_000_000


def body(series, host="web-1") -> bytes:
    doc = {"series": series}
    if host is not None:
        doc["host"] = host
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"{}", '"series" must be a list'),
        (b'{"series": {}}', '"series" must be a list'),
        (b'{"host": 5, "series": []}', "host must be a host name"),
        (b'{"host": "bad host", "series": []}', "host must be a host name"),
        (b'{"host": "' + b"a" * 300 + b'", "series": []}', "host must be a host name"),
    ],
)
def test_it_rejects_a_body_it_cannot_read_with_a_reason(raw, message):
    with pytest.raises(ParseError, match=message):
        parse(raw, NOW)


@pytest.mark.parametrize(
    ("series", "error"),
    [
        (["x"], "series[0]: must be an object"),
        ([{"metric": "m"}], 'series[0]: "points" must be a list'),
        ([{"metric": "9bad", "points": [[NOW, 1]]}], "series[0]: metric must start"),
        ([{"metric": "", "points": [[NOW, 1]]}], "series[0]: metric must start"),
        ([{"metric": "m", "labels": [], "points": [[NOW, 1]]}], "labels must be an object"),
        ([{"metric": "m", "labels": {"a-b": "x"}, "points": [[NOW, 1]]}], "label name 'a-b'"),
        ([{"metric": "m", "labels": {"a": None}, "points": [[NOW, 1]]}], "must be a string"),
        ([{"metric": "m", "labels": {"a": "x" * 201}, "points": [[NOW, 1]]}], "longer than"),
        ([{"metric": "m", "points": [1]}], "points[0]: must be [timestamp, value]"),
        ([{"metric": "m", "points": [[NOW]]}], "points[0]: must be [timestamp, value]"),
        ([{"metric": "m", "points": [[NOW, "1"]]}], "points[0]: value must be a number"),
        ([{"metric": "m", "points": [[NOW, True]]}], "points[0]: value must be a number"),
        ([{"metric": "m", "points": [["now", 1]]}], "timestamp must be a number"),
        ([{"metric": "m", "points": [[NOW * 1000, 1]]}], "more than an hour in the future"),
        ([{"metric": "m", "points": [[12, 1]]}], "before 2000-01-01"),
    ],
)
def test_it_names_the_bad_part_of_a_batch(series, error):
    result = parse(body(series), NOW)
    assert result.series == []
    assert error in result.errors[0]
    assert result.rejected >= 1


def test_it_keeps_the_valid_part_of_a_batch():
    result = parse(
        body(
            [
                {"metric": "cpu_usage_percent", "points": [[NOW, 12.5], [NOW + 10, "x"]]},
                {"metric": "bad metric", "points": [[NOW, 1], [NOW, 2]]},
                {"metric": "load1", "labels": {}, "points": [[NOW, 0.5]]},
            ]
        ),
        NOW,
    )
    assert [(s.metric, s.timestamps, s.values) for s in result.series] == [
        ("cpu_usage_percent", [NOW], [12.5]),
        ("load1", [NOW], [0.5]),
    ]
    assert result.rejected == 3
    assert result.errors[0].startswith("series[0].points[1]")


def test_it_reads_labels_sorted_and_as_text():
    result = parse(
        body([{"metric": "m", "labels": {"z": "1", "a": 2}, "points": [[NOW + 0.7, 3]]}]), NOW
    )
    (s,) = result.series
    assert s.labels == (("a", "2"), ("z", "1"))
    assert s.timestamps == [NOW]
    assert s.values == [3.0]
    assert s.host == "web-1"


def test_a_missing_host_is_left_to_the_token():
    result = parse(body([{"metric": "m", "points": [[NOW, 1]]}], host=None), NOW)
    assert result.series[0].host is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_no_bytes_make_it_raise_anything_but_its_own_error(raw):
    with contextlib.suppress(ParseError):
        parse(raw, NOW)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_no_json_document_makes_it_raise_anything_but_its_own_error(doc):
    try:
        raw = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return
    with contextlib.suppress(ParseError):
        parse(raw, NOW)


valid_point = st.tuples(
    st.integers(min_value=NOW - 10**6, max_value=NOW),
    st.floats(allow_nan=False, allow_infinity=False),
)
bad_point = st.one_of(json_values, st.tuples(st.text(max_size=3), st.integers()))


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_point, max_size=20), st.lists(bad_point, max_size=20), st.randoms())
def test_every_valid_point_is_kept_whatever_surrounds_it(good, bad, rnd):
    points = [list(p) for p in good] + [b if not isinstance(b, tuple) else list(b) for b in bad]
    rnd.shuffle(points)
    try:
        raw = orjson.dumps({"series": [{"metric": "m", "points": points}]})
    except (TypeError, orjson.JSONEncodeError):
        return
    result = parse(raw, NOW)
    kept = (
        Counter(zip(result.series[0].timestamps, result.series[0].values, strict=True))
        if result.series
        else Counter()
    )
    assert Counter((t, float(v)) for t, v in good) <= kept
