"""ui.select.Select: the native <select> the overview's first paint shows instead of dcc.Dropdown (no lazy chunk)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard.ui.map_controls import map_controls
from dashboard.ui.panel import panel_layout
from dashboard.ui.select import NAMESPACE, Select

ROOT = Path(__file__).resolve().parents[2]


def _find(node, id_):
    if getattr(node, "id", None) == id_:
        return node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        found = _find(child, id_)
        if found is not None:
            return found
    return None


def test_select_is_a_dash_component_of_its_own_namespace_with_only_its_props():
    s = Select(id="x", options=[{"label": "一", "value": 1}], value=1, className="wx-select")
    assert s.to_plotly_json() == {"namespace": NAMESPACE, "type": "Select", "props": {
        "id": "x", "options": [{"label": "一", "value": 1}], "value": 1, "className": "wx-select"}}
    with pytest.raises(TypeError):
        Select(id="x", searchable=False)  # not a dropdown: no such prop


def test_the_assets_define_the_component_the_layout_names():
    js = (ROOT / "assets" / "dashboard_app.js").read_text(encoding="utf-8")
    assert re.search(r"window\.%s\s*=\s*Object\.assign\([^;]*\bSelect: Select\b" % NAMESPACE, js)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_first_paint_choice_lists_are_selects_with_the_same_values(lang):
    controls = map_controls(lang)
    measure, period = _find(controls, "map-measure"), _find(controls, "hotspot-period")
    assert isinstance(measure, Select) and isinstance(period, Select)
    assert measure.value == "open_incidents" and period.value == "30d"
    assert [o["value"] for o in measure.options][:2] == ["none", "open_incidents"]
    kpi = _find(panel_layout({"level": "district", "code": None, "period": "30d"}, lang, "detection_rate"),
                "ranking-kpi")
    assert isinstance(kpi, Select) and kpi.value == "detection_rate"
    assert "detection_rate" in [o["value"] for o in kpi.options]
