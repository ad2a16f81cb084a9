"""The API's text forms (``dashboard.domain.grammar``) mean one thing to the server (Python ``re``) and to the OpenAPI
document's readers (JSON Schema validators: ``jsonschema_rs``, ECMA-262 / Rust regex), and what they admit is what
Python's own parsers take: every day of 2000-2099, Python's white space, numbers and corners."""
from __future__ import annotations

import datetime as dt
import sys

import jsonschema_rs
import pytest

from dashboard.domain import grammar
from dashboard.services import filters

SAMPLES = [
    "", " ", "\u3000", "\x1c", "a", " a ", "\x00a", "a\n", "2019-04-24", "2020-02-29", "2019-02-29", "2100-01-01",
    "1999-12-31", "2019-04-24T08:30", "2019-04-24T08:30:00.123456+08:00", "2019-04-24T08:30:00.1234567",
    "2019-04-24T24:00", "2019-04-24 08:30", "2019-04-24T08:30Z", "2019-04-24T08:30z", "2019-04-24\n",
    "\u0662019-04-24", "1,2,3,4", "180,90,-180.0,-90.00", "180.1,0,0,0", "1e2,0,0,0", "-0,-0,0,0",
    "open", "open, closed", "open,,closed", " ", "safety.fire", "safety.fire,x", "safetyXfire",
    "330502-ZL-03-07", "WX20190424-000123", "a b", "1556094600123456.42", "1.2.3", "dingtalk-0123456789",
]


@pytest.mark.parametrize("name,pattern", [
    ("DATE", grammar.DATE), ("DATE_TIME", grammar.DATE_TIME), ("BBOX", grammar.BBOX), ("TEXT", grammar.TEXT),
    ("NON_BLANK", grammar.NON_BLANK), ("CURSOR", grammar.CURSOR), ("CHANNEL", grammar.CHANNEL),
    ("status", filters.LIST_PATTERNS["status"]), ("category", filters.LIST_PATTERNS["category"]),
    ("grid", filters.LIST_PATTERNS["grid"]), ("number", f"^{grammar.NUMBER}$"),
])
def test_the_server_and_a_json_schema_validator_read_a_pattern_alike(name, pattern):
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    for text in SAMPLES:
        assert validator.is_valid(text) == grammar.matches(pattern, text), (name, text)


def test_a_date_is_a_real_calendar_day_of_2000_to_2099():
    day, admitted = dt.date(1999, 12, 1), 0
    while day < dt.date(2100, 2, 1):
        text = day.isoformat()
        assert grammar.matches(grammar.DATE, text) == (2000 <= day.year <= 2099), text
        admitted += grammar.matches(grammar.DATE, text)
        day += dt.timedelta(days=1)
    assert admitted == (dt.date(2100, 1, 1) - dt.date(2000, 1, 1)).days
    for text in ("2019-02-29", "2019-04-31", "2019-13-01", "2019-00-10", "2019-01-00", "2100-02-29"):
        assert not grammar.matches(grammar.DATE, text), text


def test_every_admitted_date_time_parses():
    for text in ("2019-04-24T08:30", "2019-04-24T23:59:59.999999-23:59", "2099-12-31T23:59+23:59",
                 "2000-01-01T00:00:00Z", "2000-01-01T00:00:00.1z"):
        assert grammar.matches(grammar.DATE_TIME, text)
        assert filters.parse_time(text, "t").tzinfo is not None


def test_non_blank_is_pythons_white_space():
    """``NON_BLANK`` refuses exactly the text ``str.strip()`` empties (one character each, every code point)."""
    for code in range(1, sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        c = chr(code)
        assert grammar.matches(grammar.NON_BLANK, c) == bool(c.strip()), hex(code)


def test_numbers_are_what_float_reads_and_corners_either_way():
    for text in ("0", "-0", "1.5", "-180", "1e-05", "2.5E+3"):
        assert grammar.matches(f"^{grammar.NUMBER}$", text) and float(text) == float(text)
    for text in ("01", "+1", "1.", ".5", "inf", "nan", "1_0", " 1", "\u0661"):
        assert not grammar.matches(f"^{grammar.NUMBER}$", text), text
    swapped = filters.incident_filter({"bbox": "120.2,30.9,120.1,30.8"}).bbox
    assert swapped == (120.1, 30.8, 120.2, 30.9)


def test_lists_ignore_spaces_and_repeats_and_refuse_empty_items():
    assert filters.incident_filter({"status": " reported , closed,reported"}).statuses == ["reported", "closed"]
    assert filters.incident_filter({"status": "  "}).statuses == []
    for bad in ("reported,,closed", "reported\n", "Reported", ",reported"):
        with pytest.raises(filters.FilterError):
            filters.incident_filter({"status": bad})
    with pytest.raises(filters.FilterError):
        filters.incident_filter({"town": ",".join(["330502-ZL"] * 101)})


def test_literal_escapes_only_what_a_pattern_would_read():
    assert grammar.literal("safety.fire") == "safety\\.fire"
    assert grammar.literal("a-b_c") == "a-b_c"
    assert grammar.matches(grammar.one_of(["a.b", "a-b"]), "a-b") and not grammar.matches(grammar.one_of(["a.b"]), "aXb")
