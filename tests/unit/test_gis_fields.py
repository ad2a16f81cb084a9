"""The GIS export's column names and descriptions (pure): short snake_case names a Shapefile holds, one per measure
of the registry, every column explained in zh and en, no personal column but for the personal audience."""
from __future__ import annotations

import re

from dashboard.metrics import registry
from dashboard.services import gis, serialise

NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def test_every_measure_has_a_short_unique_field_name():
    names = [registry.field(k) for k in registry.MEASURES]
    assert len(set(names)) == len(names) == len(registry.MEASURES)
    assert all(NAME.match(n) and len(n) <= 10 for n in names), names
    assert set(registry.shown_in("api")) == set(registry.MEASURES)  # the export carries every KPI the API has
    assert {m.unit for m in registry.MEASURES.values()} <= set(registry.UNITS)


def test_layer_columns_are_short_unique_and_explained():
    for personal in (False, True):
        table = gis.field_table(personal)
        for layer, level in gis.UNIT_LAYERS:
            cols = gis.unit_columns(level)
            assert len(set(cols)) == len(cols) and all(NAME.match(c) and len(c) <= 10 for c in cols)
            assert list(table.loc[table["layer"] == layer, "field"]) == cols
        cols = gis.incident_columns(personal)
        assert len(set(cols)) == len(cols) and all(NAME.match(c) and len(c) <= 10 for c in cols)
        assert list(table.loc[table["layer"] == "incidents", "field"]) == cols
        assert ("reporter" in cols) is personal
        assert not [c for c in cols if "phone" in c or "tel" in c]
        assert (table[["zh", "en", "unit_zh", "unit_en"]] != "").all().all()
    kpi = gis.field_table(False)
    row = kpi[(kpi["layer"] == "zones") & (kpi["field"] == registry.field("resolution_rate"))].iloc[0]
    assert (row["zh"], row["en"], row["measure"]) == (registry.label("resolution_rate", "zh"),
                                                      registry.label("resolution_rate", "en"), "resolution_rate")


def test_gis_point_leaves_out_personal_data_unless_personal():
    import datetime as dt
    from types import SimpleNamespace

    t = dt.datetime(2019, 4, 24, 0, 30)
    inc = SimpleNamespace(id=7, code="WX1", category="dispute.civil", subcategory=None, severity=2, status="reported",
                          source="hotline", level="onsite", town_code="T", zone_code="Z", grid_code="G",
                          reported_at=t, due_at=t + dt.timedelta(hours=1), closed_at=None, address="李四家",
                          description="张三与李四", reporter="赵", reporter_phone="13912345678", lon=120.1, lat=30.8,
                          persons=["张三", "李四"])
    now = t + dt.timedelta(hours=2)
    staff = serialise.gis_point(inc, now, "staff")
    assert "reporter" not in staff and "13912345678" not in repr(staff)
    assert staff["descr"] == "某某与某某" and staff["address"] == "某某家"
    assert staff["reported"] == "2019-04-24T08:30:00+08:00" and staff["closed"] is None and staff["overdue"] == 1
    assert set(staff) - {"lon", "lat"} == {f for f, *_ in serialise.GIS_INCIDENT_FIELDS}
    personal = serialise.gis_point(inc, now, "personal")
    assert personal["reporter"] == "赵" and personal["descr"] == "张三与李四" and "13912345678" not in repr(personal)


def test_text_is_cut_to_what_a_dbf_column_holds_on_a_character_boundary():
    text = "网格" * 200  # 1,200 bytes of UTF-8
    cut = gis._fit_bytes(text)
    assert len(cut.encode("utf-8")) <= gis.SHP_TEXT_BYTES and text.startswith(cut) and len(cut) == 84
    assert gis._fit_bytes("short") == "short" and gis._fit_bytes(None) is None and gis._fit_bytes(3) == 3
