"""The text forms the HTTP API reads (dates and times, comma lists, bounding boxes, numbers, cursors) as regular
expressions: one definition for the server's checks and for the ``pattern`` of the OpenAPI document, so the two
cannot say different things.

Written in the subset that Python's ``re``, ECMA-262 and Rust's ``regex`` (what JSON Schema validators and test
generators use) read alike: ``[0-9]``, never ``\\d`` (Python's matches any Unicode digit); ASCII spaces only; no
look-around. A pattern is anchored ``^…$`` with ``$`` meaning the end of the text, so the server matches with
:func:`matches` (``re.fullmatch`` of the inner part): Python's own ``$`` would let a trailing newline through.
"""
from __future__ import annotations

import re
from functools import lru_cache

# ------------------------------------------------------------------------------------------ dates, times
YEAR = "20[0-9]{2}"  # 2000–2099: nothing the district records is older, and no UTC conversion overflows
_DAY_OF_MONTH = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                 "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_DATE = f"(?:{YEAR}-{_DAY_OF_MONTH}|20(?:[02468][048]|[13579][26])-02-29)"  # a real calendar day (2000 leaps)
_CLOCK = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.][0-9]{1,6})?)?"
_OFFSET = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
DATE = f"^{_DATE}$"
"""A calendar day ``YYYY-MM-DD`` (2000–2099)."""
DATE_TIME = f"^{_DATE}(?:T{_CLOCK}{_OFFSET}?)?$"
"""A day, or a day and a time ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` with an optional offset (``Z``, ``+08:00``);
without one it is Beijing time."""

# ------------------------------------------------------------------------------------------- numbers
NUMBER = "-?(?:0|[1-9][0-9]*)(?:[.][0-9]+)?(?:[eE][+-]?[0-9]+)?"
"""A JSON number (what a form field of type number carries)."""
_LON = "-?(?:180(?:[.]0+)?|(?:1[0-7][0-9]|[1-9]?[0-9])(?:[.][0-9]+)?)"  # decimal degrees in [-180, 180]
_LAT = "-?(?:90(?:[.]0+)?|[1-8]?[0-9](?:[.][0-9]+)?)"  # … in [-90, 90]
BBOX = f"^{_LON},{_LAT},{_LON},{_LAT}$"
"""``lon,lat,lon,lat``: two opposite corners in decimal WGS84 degrees (either order)."""
DIGITS = "^[0-9]+$"

# --------------------------------------------------------------------------------------------- codes
CODE = "[0-9A-Za-z_-]{1,32}"
"""A unit code (``<district>-<town>-<nn>-<nn>``, e.g. ``330521-T03-02-07``), an incident code (``WX20190424-000123``) or an id in a list."""
CURSOR = "^[0-9]{1,17}[.][0-9]{1,19}$"
"""A page cursor: microseconds since 1970 and an id (``next_cursor`` of the page before)."""
CHANNEL = "^(?:dingtalk|wecom|webhook)-[0-9a-f]{10}$"

# --------------------------------------------------------------------------------------------- text
_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
"""What Python's ``str.strip()`` and ``str.isspace()`` take for white space, spelled out: the ``\\s`` of the
regular expression engines differ on it."""
TEXT = "^[^\\x00]*$"
"""Any text without NUL characters."""
NON_BLANK = f"^[^\\x00]*[^\\x00{_SPACE}][^\\x00]*$"
"""Text without NUL characters that is not only white space."""


def literal(text: str) -> str:
    """``text`` as a pattern that matches it alone (``re.escape`` would also escape ``-``, which ECMA-262's
    Unicode mode refuses outside a class)."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\/" else c for c in text)


def _alternatives(values) -> str:
    return "(?:" + "|".join(literal(str(v)) for v in sorted(map(str, values), key=len, reverse=True)) + ")"


@lru_cache(maxsize=64)
def _list(item: str, max_items: int) -> str:
    return f"^ *(?:{item} *(?:, *{item} *){{0,{max_items - 1}}})?$"


def list_of(values, max_items: int = 100) -> str:
    """A comma-separated list of up to ``max_items`` of ``values`` (spaces around an item are ignored; an empty
    list is no filter)."""
    return _list(_alternatives(tuple(values)), max_items)


def list_of_codes(max_items: int = 100) -> str:
    """A comma-separated list of up to ``max_items`` :data:`CODE` values."""
    return _list(CODE, max_items)


def one_of(values) -> str:
    return f"^{_alternatives(tuple(values))}$"


@lru_cache(maxsize=128)
def _compiled(pattern: str) -> re.Pattern:
    if not (pattern.startswith("^") and pattern.endswith("$")):
        raise ValueError(f"not an anchored pattern: {pattern!r}")
    return re.compile(pattern[1:-1])


def matches(pattern: str, text: str) -> bool:
    """Does all of ``text`` have the form of ``pattern`` (one of this module's ``^…$`` patterns)?"""
    return isinstance(text, str) and _compiled(pattern).fullmatch(text) is not None


def items(text: str) -> list[str]:
    """The items of a comma list that :func:`matches` one of the list patterns, spaces around them dropped."""
    return [v.strip(" ") for v in text.split(",") if v.strip(" ")]
