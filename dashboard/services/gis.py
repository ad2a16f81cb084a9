"""The GIS export (QGIS / ArcGIS): towns, zones and grids with their KPIs of a period, and the filtered incidents as
points, written as one GeoPackage or as one zip of Shapefiles.

- Layers ``towns`` (镇街), ``zones`` (片区), ``grids`` (网格): the committed (or imported) boundaries, each unit's
  ``code``, ``name`` (Chinese), ``name_en``, its parents' codes, the period (``per_from`` / ``per_to``) and one
  column per measure of :mod:`dashboard.metrics.registry` (its ``field`` name; rates as fractions 0–1, medians in
  hours, as ``GET /api/v1/kpis`` gives them, from the same cached bundle: ``services.kpis.every_unit``).
- Layer ``incidents``: the points of ``services.incidents.gis_points`` (``serialise.gis_point``: no phone numbers
  ever, the reporter only for the ``personal`` audience), at most ``services.incidents.EXPORT_MAX_ROWS``.
- What each column means (zh / en / unit): the non-spatial table ``fields`` in the GeoPackage; ``fields.csv`` and
  ``README.txt`` in the zip.

WGS84 (EPSG:4326) with its ``.prj``; column names are short snake_case (<= 10 characters, the Shapefile limit), the
same in both formats; Shapefiles are UTF-8 (``.cpg``). Files are written into a temporary directory which
:meth:`GisExport.chunks` removes once the bytes are sent (or :meth:`GisExport.close`, if they never are).
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Iterator

import pandas as pd

from ..domain.timefmt import FILE_STAMP, SECOND, beijing
from ..metrics import periods, registry
from ..store.incidents import IncidentFilter
from ..store.models import utcnow
from . import incidents as incident_service
from . import kpis as kpi_service
from . import units
from .serialise import GIS_INCIDENT_FIELDS, GIS_PERSONAL_FIELDS

FORMATS = ("gpkg", "shp.zip")
ALL_UNIT_LAYERS = (("cities", "city"), ("counties", "county"), ("towns", "town"), ("zones", "zone"),
                   ("grids", "grid"))
SINGLE_LEVELS = ("district", "town", "zone", "grid")  # a single county's set (metrics.views.SINGLE_LEVELS)
UNIT_LAYERS = ALL_UNIT_LAYERS[2:]  # a single county's set; a city's or province's: unit_layers_of(levels)
LAYER_NAMES = {"cities": ("市", "cities"), "counties": ("县（市、区）", "counties / county-level districts"),
               "towns": ("镇街", "towns / sub-districts"), "zones": ("片区", "management zones"),
               "grids": ("网格", "grids"), "incidents": ("案事件", "incidents")}
PARENT_FIELDS = {"city": (), "county": (), "town": ("dist_code",), "zone": ("town_code", "dist_code"),
                 "grid": ("zone_code", "town_code", "dist_code")}  # + city_code where the set has cities
TEXT = ("文本", "text")
CODE = ("编码", "code")
DAY = ("日期 YYYY-MM-DD（北京时间，含当日）", "date YYYY-MM-DD (Beijing time, inclusive)")
UNIT_FIELDS = {  # field -> (zh, en, what a value is)
    "code": ("编码", "Code", CODE),
    "name": ("名称", "Name (Chinese)", TEXT),
    "name_en": ("英文名称", "Name (English)", TEXT),
    "zone_code": ("所属片区编码", "Zone code", CODE),
    "town_code": ("所属镇街编码", "Town code", CODE),
    "dist_code": ("所属区（县）编码", "District (county) code", CODE),
    "city_code": ("所属市编码", "City code", CODE),
    "per_from": ("统计期起", "Period from", DAY),
    "per_to": ("统计期止", "Period to", DAY),
}
KPI_KEYS = registry.shown_in("api")
SHP_TEXT_BYTES = 254  # the widest text column a dBase file holds
CHUNK = 256 * 1024


@dataclass
class GisExport:
    """A written export: the file (in a temporary directory of its own), its download name and what it holds."""

    path: str
    filename: str
    mimetype: str
    counts: dict  # layer -> features written
    incidents_total: int  # incidents matching the filter (more than written when truncated)
    personal: bool
    period: periods.Period
    _dir: str = field(repr=False, default="")

    @property
    def truncated(self) -> bool:
        return self.incidents_total > self.counts["incidents"]

    @property
    def size(self) -> int:
        return os.path.getsize(self.path)

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes; the temporary directory is removed when they are read or the reader stops."""
        try:
            with open(self.path, "rb") as f:
                while True:
                    block = f.read(CHUNK)
                    if not block:
                        break
                    yield block
        finally:
            self.close()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------- fields
def kpi_field_rows() -> list[tuple[str, str, str, tuple[str, str], str]]:
    """(field, zh, en, unit (zh, en), measure key) of each KPI column, in the registry's order."""
    out = []
    for key in KPI_KEYS:
        m = registry.MEASURES[key]
        out.append((m.field, m.zh, m.en, registry.UNITS[m.unit], key))
    return out


def unit_layers_of(levels=SINGLE_LEVELS) -> tuple[tuple[str, str], ...]:
    """(layer, level) of the unit layers of a set with ``levels`` (``Hierarchy.levels``), top down."""
    return tuple((layer, level) for layer, level in ALL_UNIT_LAYERS if level in levels)


def layers_of(levels=SINGLE_LEVELS) -> tuple[str, ...]:
    """Every layer an export of a set with ``levels`` holds, in the file's order."""
    return (*(layer for layer, _ in unit_layers_of(levels)), "incidents")


def parent_fields(level: str, levels=SINGLE_LEVELS) -> tuple[str, ...]:
    """The parent-code columns of a unit layer: its zone, town and county (``dist_code``) and, in a province's
    set, its city (``city_code``)."""
    return PARENT_FIELDS[level] + (("city_code",) if "city" in levels and level != "city" else ())


def unit_columns(level: str, levels=SINGLE_LEVELS) -> list[str]:
    return ["code", "name", "name_en", *parent_fields(level, levels), "per_from", "per_to",
            *(f for f, *_ in kpi_field_rows())]


def incident_columns(personal: bool) -> list[str]:
    return [f for f, *_ in GIS_INCIDENT_FIELDS + (GIS_PERSONAL_FIELDS if personal else ())]


def field_table(personal: bool, levels=SINGLE_LEVELS) -> pd.DataFrame:
    """What every column of every layer means: layer, field, zh, en, unit_zh, unit_en, measure (the registry key of
    a KPI column, else empty)."""
    rows = []
    kpi = {f: (zh, en, u, key) for f, zh, en, u, key in kpi_field_rows()}
    for layer, level in unit_layers_of(levels):
        for f in unit_columns(level, levels):
            if f in kpi:
                zh, en, u, key = kpi[f]
            else:
                (zh, en, u), key = UNIT_FIELDS[f], ""
            rows.append((layer, f, zh, en, u[0], u[1], key))
    for f, zh, en, u in GIS_INCIDENT_FIELDS + (GIS_PERSONAL_FIELDS if personal else ()):
        rows.append(("incidents", f, zh, en, u[0], u[1], ""))
    return pd.DataFrame(rows, columns=["layer", "field", "zh", "en", "unit_zh", "unit_en", "measure"])


# ------------------------------------------------------------------------------------------- layers
def _kpi_frame(rows: dict, codes: list[str]) -> pd.DataFrame:
    data = {}
    for f, _zh, _en, _u, key in kpi_field_rows():
        values = [(rows.get(c) or {}).get(key) for c in codes]
        if registry.unit(key) == "count":
            data[f] = pd.array([None if v is None else int(v) for v in values], dtype="Int64")
        else:
            data[f] = pd.array([None if v is None else float(v) for v in values], dtype="Float64").astype(float)
    return pd.DataFrame(data)


def _in_scope(src: pd.DataFrame, level: str, h, towns: set) -> pd.Series:
    """Which units of ``src`` (a layer's rows at ``level``) hold any of ``towns``."""
    if level in ("town", "zone", "grid"):
        return src["code" if level == "town" else "town_code"].astype(str).isin(towns)
    ups = {h.town_up[level][t] for t in towns if t in h.town_up.get(level, {})}
    return src["code"].astype(str).isin(ups)


def unit_layers(p: periods.Period, figures: dict, gd=None, town_scope=None) -> dict:
    """``{"cities"|"counties"|"towns"|"zones"|"grids": GeoDataFrame}`` (the layers the set has) in EPSG:4326 with
    the KPIs of period ``p`` (``figures``: ``{level: {code: {kpi: value}}}`` as ``services.kpis.every_unit`` gives
    them). ``town_scope`` (a county or city asked for: the filter's towns): only the units holding those towns."""
    import geopandas as gpd

    gd = units.geodata(gd)
    h = units.hierarchy(gd)
    city_of = h.town_up.get("city", {})
    out = {}
    for layer, level in unit_layers_of(h.levels):
        src = getattr(gd, layer).sort_values("code", kind="stable").reset_index(drop=True)
        if town_scope is not None:
            src = src[_in_scope(src, level, h, set(town_scope))].reset_index(drop=True)
        codes = [str(c) for c in src["code"]]
        base = {
            "code": codes,
            "name": [h.name(level, c, "zh") for c in codes],
            "name_en": [h.name(level, c, "en") for c in codes],
        }
        for f in parent_fields(level, h.levels):
            if f == "city_code" and level != "county":  # a town's, zone's or grid's city: its town's
                towns = codes if level == "town" else [str(v) for v in src["town_code"]]
                base[f] = [city_of.get(t) for t in towns]
                continue
            col = "district_code" if f == "dist_code" else f
            base[f] = [str(v) for v in src[col]] if col in src.columns else h.root.code
        base["per_from"], base["per_to"] = p.first_day, p.last_day
        frame = pd.concat([pd.DataFrame(base), _kpi_frame(figures.get(level, {}), codes)], axis=1)
        out[layer] = gpd.GeoDataFrame(frame[unit_columns(level, h.levels)], geometry=src.geometry.values,
                                      crs="EPSG:4326")
    return out


def incident_layer(points: list[dict], personal: bool):
    """The incident points (``serialise.gis_point`` rows) as a GeoDataFrame in EPSG:4326."""
    import geopandas as gpd

    cols = incident_columns(personal)
    frame = pd.DataFrame(points, columns=cols + ["lon", "lat"])
    for c in cols:
        frame[c] = frame[c].astype("int64") if c in ("id", "severity", "overdue") else frame[c].astype(object)
    geometry = gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float), crs="EPSG:4326")
    return gpd.GeoDataFrame(frame[cols], geometry=geometry, crs="EPSG:4326")


# ------------------------------------------------------------------------------------------- README
def readme_text(p: periods.Period, counts: dict, total: int, personal: bool, filter_text: str, at: str,
                fields: pd.DataFrame, root) -> str:
    """README.txt of the zip (and the GeoPackage's description): what the files hold and what each column means.
    ``root``: the district served (``units.root()``)."""
    now = beijing(utcnow(), SECOND)
    lines = [
        f"{root.name}基层社会治理指挥中心 · GIS 导出 / {root.title('en')} command centre · GIS export "
        f"({root.code})",
        "",
        f"导出时间 Exported: {now} (北京时间 Beijing time)",
        f"统计期 Period: {p.key} · {p.first_day} – {p.last_day} (含首尾日 inclusive, 北京时间 Beijing time)",
        f"在办/超期按此时刻计 Open / overdue counted at: {beijing(at, SECOND)} (北京时间 Beijing time)",
        "坐标系 CRS: WGS84 (EPSG:4326)，经纬度 longitude / latitude",
        f"案事件筛选 Incident filter: {filter_text or '（全部 all）'}",
        "个人信息 Personal data: " + ("含上报人姓名（无电话）/ reporter names included (never phone numbers)"
                                     if personal else "无 / none"),
        "",
        "图层 Layers:",
    ]
    for layer in counts:
        zh, en = LAYER_NAMES[layer]
        lines.append(f"  {layer:<10} {zh} / {en}: {counts[layer]}")
    if total > counts["incidents"]:
        lines.append(f"  注意 NOTE: 共 {total} 条案事件符合筛选，仅导出最新 {counts['incidents']} 条 / {total} incidents match "
                     f"the filter; only the newest {counts['incidents']} are exported — narrow the filter.")
    lines += ["", "字段 Fields (layer · field · 中文 · English · 单位 unit):"]
    for r in fields.itertuples(index=False):
        lines.append(f"  {r.layer:<10} {r.field:<10} {r.zh} · {r.en} · {r.unit_zh} / {r.unit_en}")
    lines += ["", "Shapefile 文本列最长 254 字节，较长的地址 / 描述被截断 / Shapefile text columns hold at most 254 "
                  "bytes: longer addresses / descriptions are cut.", ""]
    return "\r\n".join(lines)


# -------------------------------------------------------------------------------------------- write
def _fit_bytes(v, limit: int = SHP_TEXT_BYTES):
    if not isinstance(v, str):
        return v
    raw = v.encode("utf-8")
    if len(raw) <= limit:
        return v
    return raw[:limit].decode("utf-8", errors="ignore")  # cut on a character boundary


def _write_gpkg(path: str, layers: dict, fields: pd.DataFrame, p: periods.Period, readme: str) -> None:
    import pyogrio

    for name in layers:
        zh, en = LAYER_NAMES[name]
        desc = (f"{zh} / {en}; period {p.first_day} – {p.last_day}" if name != "incidents"
                else f"{zh} / {en}; see the fields table")
        pyogrio.write_dataframe(layers[name], path, layer=name, driver="GPKG",
                                geometry_type="Point" if name == "incidents" else None,
                                layer_metadata={"IDENTIFIER": f"{zh} {name}", "DESCRIPTION": desc})
    pyogrio.write_dataframe(fields, path, layer="fields", driver="GPKG",
                            layer_metadata={"IDENTIFIER": "字段说明 fields", "DESCRIPTION": readme[:4000]})


def _write_shp_zip(path: str, work: str, layers: dict, fields: pd.DataFrame, readme: str) -> None:
    import pyogrio

    shp_dir = os.path.join(work, "shp")
    os.mkdir(shp_dir)
    for name in layers:
        gdf = layers[name].copy()
        for c in gdf.columns:
            if c != gdf.geometry.name and gdf[c].dtype == object:
                gdf[c] = gdf[c].map(_fit_bytes)
        pyogrio.write_dataframe(gdf, os.path.join(shp_dir, f"{name}.shp"), driver="ESRI Shapefile",
                                encoding="UTF-8", geometry_type="Point" if name == "incidents" else None,
                                layer_options={"RESIZE": "YES"})
    buf = io.StringIO()
    buf.write("\ufeff")  # BOM: spreadsheet programs and QGIS read the Chinese text as UTF-8
    fields.to_csv(buf, index=False, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in layers:
            for ext in ("shp", "shx", "dbf", "prj", "cpg"):
                z.write(os.path.join(shp_dir, f"{name}.{ext}"), f"{name}.{ext}")
        z.writestr("fields.csv", buf.getvalue().encode("utf-8"))
        z.writestr("README.txt", ("\ufeff" + readme).encode("utf-8"))


def export(fmt: str, p: periods.Period, flt: IncidentFilter, audience: str, filter_text: str = "") -> GisExport:
    """Write the export in ``fmt`` (``gpkg`` or ``shp.zip``) for period ``p`` and incident filter ``flt``, with what
    ``audience`` may see; the caller streams :meth:`GisExport.chunks` (which removes the temporary files)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    personal = audience == "personal"
    figures = kpi_service.every_unit(p)
    layers = unit_layers(p, figures["kpis"], town_scope=flt.town_scope)
    points, total = incident_service.gis_points(flt, audience)
    layers["incidents"] = incident_layer(points, personal)
    counts = {name: int(len(layers[name])) for name in layers}
    fields = field_table(personal, units.hierarchy().levels)
    root = units.root()
    readme = readme_text(p, counts, total, personal, filter_text, figures["at"], fields, root)
    stamp = beijing(utcnow(), FILE_STAMP)
    filename = f"{root.code}-gis-{p.first_day.replace('-', '')}-{p.last_day.replace('-', '')}-{stamp}.{fmt}"
    work = tempfile.mkdtemp(prefix="wx-gis-")
    path = os.path.join(work, filename)
    try:
        if fmt == "gpkg":
            _write_gpkg(path, layers, fields, p, readme)
            mimetype = "application/geopackage+sqlite3"
        else:
            _write_shp_zip(path, work, layers, fields, readme)
            mimetype = "application/zip"
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return GisExport(path=path, filename=filename, mimetype=mimetype, counts=counts, incidents_total=total,
                     personal=personal, period=p, _dir=work)
