"""The words that name the root unit's kind follow the geodata: 全区 for a 区, 全县 for a 县, 全市 for a county-level 市
(the averages, ranks, the briefing's year title and the wall's tour card), in both languages."""
from __future__ import annotations

import json

import pytest

from dashboard.i18n import kind_words
from dashboard.metrics.views import Root
from dashboard.ui import briefing, profile, wall_text

ROOTS = [("330521", "德清县", "County"), ("330681", "诸暨市", "City"), ("330102", "上城区", "District")]


def _text(component) -> str:
    return json.dumps(component.to_plotly_json(), ensure_ascii=False, default=lambda c: c.to_plotly_json())


@pytest.mark.parametrize(("code", "name", "kind_en"), ROOTS)
def test_the_kind_is_the_last_character_of_the_root_units_name(code, name, kind_en):
    root = Root(code, name, None)
    assert root.kind == name[-1] and root.kind_en == kind_en
    assert root.title("en") == f"{kind_en} {code}"


def test_an_unknown_kind_reads_as_a_district():
    assert Root("330000", "某地", None).kind == "区"
    assert kind_words("X", "en") == {"kind": "District", "kind_l": "district"}


@pytest.mark.parametrize(("code", "name", "kind_en"), ROOTS)
def test_every_whole_unit_word_follows_the_kind(code, name, kind_en):
    kind = Root(code, name, None).kind
    others = {k for _c, n, _e in ROOTS for k in n[-1]} - {kind}
    year = {"year": 2019, "previous": 2018, "kind": kind}
    zh = [wall_text.client_table("zh", kind)["tour_district"], briefing.year_title(year, "zh"),
          _text(profile._ranks({}, "zh", kind))]
    for text in zh:
        assert f"全{kind}" in text, text
        assert not any(f"全{o}" in text for o in others), text
    en = [wall_text.client_table("en", kind)["tour_district"], briefing.year_title(year, "en"),
          _text(profile._ranks({}, "en", kind))]
    assert en[0] == f"{kind_en} overview"
    assert f"· {kind_en.lower()}, 2019 against 2018" in en[1]
    assert f"Rank in the {kind_en.lower()}" in en[2]
