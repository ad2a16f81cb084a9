"""Data of the map layers (``/api/map/…``, the overview's colour-by-measure, the wall's zones): incident markers,
safety rings, hotspots and the choropleth's values per unit.

Coordinates are shifted to GCJ-02 only when ``TILE_CRS=gcj02``. Callers cache (the API per request and change
sequence; :func:`cached_live_counts` here for the live counts every viewer's recolour needs).
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import numpy as np

from .. import context
from ..domain.levels import LAYER_LEVEL
from ..metrics import registry
from ..store import hazards as hazard_repo
from ..store import lifecycle, queries, sequence
from ..store.incidents import IncidentFilter
from . import db
from .serialise import map_point

EARTH_M_PER_DEG_LAT = 110_574.0
RING_SEGMENTS = 48
MAP_LEVELS = LAYER_LEVEL  # the unit layers the map colours, top down
MEASURES = registry.shown_in("map")  # what the map can be coloured by
LIVE_MEASURES = registry.shown_in("map_live")  # of those, counted now (they follow the live feed)

__all__ = ["LIVE_MEASURES", "MEASURES", "MAP_LEVELS", "change_seq", "incident_points", "incident_cells",
           "cell_size", "cell_box", "view_config", "rings_collection",
           "hotspots_collection", "measure_payload", "live_counts", "cached_live_counts", "breaks_for"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def change_seq() -> int:
    """The store's latest change sequence (cheap: an index lookup), used to key cached layers and live ticks."""
    with db.session() as s:
        return sequence.latest(s)


def _settings():
    return context.services().settings


def shift(lons: np.ndarray, lats: np.ndarray):
    """WGS84 → what the basemap uses (GCJ-02 with ``TILE_CRS=gcj02``)."""
    if _settings().tile_crs == "gcj02":
        from ..geodata.crs import wgs84_to_gcj02

        return wgs84_to_gcj02(lons, lats)
    return lons, lats


def _hazchem_rings():
    """(lon, lat, radius_m) of the hazardous-chemical safety rings (major hazchem sites)."""
    hz = context.services().geodata().hazards
    rings = hz[(hz["kind"] == "hazchem") & hz["major"].astype(bool)]
    return rings.geometry.x.to_numpy(), rings.geometry.y.to_numpy(), rings["ring_m"].to_numpy(float)


def inside_rings(lons: np.ndarray, lats: np.ndarray, r_lon, r_lat, r_m) -> np.ndarray:
    """Boolean per point: inside any ring (local equirectangular distance; exact to < 0.1 % at 500 m)."""
    inside = np.zeros(len(lons), dtype=bool)
    for lon0, lat0, radius in zip(r_lon, r_lat, r_m):
        dx = (lons - lon0) * EARTH_M_PER_DEG_LAT * math.cos(math.radians(lat0)) * 1.00335
        dy = (lats - lat0) * EARTH_M_PER_DEG_LAT
        inside |= dx * dx + dy * dy <= radius * radius
    return inside


def _points(flt: IncidentFilter) -> list:
    """Every incident of ``flt`` as light rows (the rings' counts and the hot spots need them all)."""
    with db.session() as s:
        return queries.map_points(s, flt)


MAX_MAP_POINTS = 50_000  # markers in one payload (~1.5 MB compressed): beyond, narrow the filter or use bbox


def incident_points(flt: IncidentFilter, now: dt.datetime, limit: int = MAX_MAP_POINTS) -> dict:
    """The filtered incidents as the compact marker FeatureCollection (severity, category, state, hours overdue,
    inside a hazardous-chemical safety ring): at most ``limit``, the newest; ``truncated`` says when there were
    more (the map then shows the newest and says so; a ``bbox`` or a narrower filter shows the rest)."""
    with db.session() as s:
        rows = queries.map_points(s, flt, limit + 1)
    out = incidents_collection(rows[-limit:] if len(rows) > limit else rows, now)
    out["truncated"] = len(rows) > limit
    return out


# ----------------------------------------------------------------------------- incidents counted per cell
# A multi-county map shows its incidents as counts per square cell of the view until few enough are in view
# (``/api/map/incident_cells.json``). A cell is CELL_PX pixels of the map's integer zoom (90 / 2^zoom degrees:
# a binary fraction of 90, exact in floating point), on one lattice from (0, 0): a view and a slightly moved one
# share their cells and, once the box is snapped outward to the lattice, their cache entry.
CELL_PX = 64
CELL_ZOOMS = (0, 20)  # the map's zooms (a fractional zoom counts as its integer part)
CELLS_MAX = 256  # columns (and rows) of one answer: wider is a view of another zoom, refused


def cell_size(zoom: float) -> float:
    """The side in degrees of the cells at ``zoom`` (CELL_PX pixels of the integer zoom)."""
    return 360.0 * CELL_PX / 256 / 2 ** zoom_level(zoom)


def cell_box(box: tuple[float, float, float, float], cell: float) -> tuple[float, float, float, float]:
    """``box`` (minlon, minlat, maxlon, maxlat) snapped outward to the lattice of ``cell``."""
    x1, y1, x2, y2 = box
    return (math.floor(x1 / cell) * cell, math.floor(y1 / cell) * cell,
            math.ceil(x2 / cell) * cell, math.ceil(y2 / cell) * cell)


def _to_store_box(box):
    """A box of the map's coordinates as the store's (WGS84): the corners shifted back with ``TILE_CRS=gcj02``."""
    if _settings().tile_crs != "gcj02":
        return box
    from ..geodata.crs import gcj02_to_wgs84

    lons, lats = gcj02_to_wgs84(np.array([box[0], box[2]]), np.array([box[1], box[3]]))
    return float(lons[0]), float(lats[0]), float(lons[1]), float(lats[1])


def incident_cells(flt: IncidentFilter, box: tuple[float, float, float, float], zoom: float,
                   points_max: int | None = None, now: dt.datetime | None = None) -> dict:
    """The incidents of ``flt`` inside ``box`` (the map's coordinates, already snapped with :func:`cell_box`)
    counted per cell of ``zoom``: a FeatureCollection of one point per non-empty cell at the count-weighted centre
    of its incidents, properties ``n`` (count), ``s`` ([count of severity 1, 2, 3, 4]), ``ms`` (the highest
    severity), ``hi`` (severity 3 and 4) and ``b`` (the cell: [west, south, east, north]); ``total`` the sum,
    ``cell`` the side in degrees, ``bbox`` and ``zoom`` what was counted.

    With ``points_max``: when the box holds at most that many, ``points`` is also their markers' collection
    (:func:`incident_points` of the box, aged at ``now``) — what a map zoomed in on few enough draws, in the same
    answer (the page asked for the count, then for the markers: one round trip more on every move)."""
    from dataclasses import replace

    cell = cell_size(zoom)
    store_box = _to_store_box(box)
    boxed = replace(flt, bbox=store_box)
    # the store's lattice starts at the box's south-west corner snapped to it: every row of the box lies east and
    # north of it, and column i of the answer is column i0 + i of the lattice from (0, 0)
    i0, j0 = math.floor(store_box[0] / cell), math.floor(store_box[1] / cell)
    with db.session() as s:
        rows = queries.incident_cells(s, boxed, (i0 * cell, j0 * cell), cell)
    features = []
    if rows:
        lons, lats = shift(np.fromiter((r.lon for r in rows), float, len(rows)),
                           np.fromiter((r.lat for r in rows), float, len(rows)))
        for k, r in enumerate(rows):
            counts = [int(r.n1 or 0), int(r.n2 or 0), int(r.n3 or 0), int(r.n4 or 0)]
            ix, iy = i0 + int(r.ix), j0 + int(r.iy)
            (w, e), (so, no) = shift(np.array([ix * cell, (ix + 1) * cell]), np.array([iy * cell, (iy + 1) * cell]))
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(float(lons[k]), 6), round(float(lats[k]), 6)]},
                "properties": {"n": int(r.n), "s": counts, "ms": max((i + 1 for i, c in enumerate(counts) if c),
                                                                    default=0),
                               "hi": counts[2] + counts[3], "id": f"{zoom_level(zoom)}/{ix}/{iy}",
                               "b": [round(float(w), 6), round(float(so), 6), round(float(e), 6),
                                     round(float(no), 6)]},
            })
    out = {"type": "FeatureCollection", "features": features, "total": sum(f["properties"]["n"] for f in features),
           "cell": cell, "zoom": zoom_level(zoom), "bbox": list(box)}  # exact: multiples of the cell
    if points_max is not None and out["total"] <= points_max:
        out["points"] = incident_points(boxed, now or utcnow(), points_max)
    return out


def view_config() -> dict | None:
    """What a page's live feed needs to show the served set's incidents by view (``ui.layers.incident_view``): a
    multi-county set's map asks for the cells or the markers of its view; None for one county's."""
    from ..ui.layers import incident_view
    from . import units

    return incident_view(units.hierarchy().levels, cell_size(0))


def zoom_level(zoom: float) -> int:
    """The integer zoom the cells of ``zoom`` are made for."""
    return int(math.floor(min(max(zoom, CELL_ZOOMS[0]), CELL_ZOOMS[1])))


def incidents_collection(rows, now: dt.datetime) -> dict:
    if not rows:
        return {"type": "FeatureCollection", "features": []}
    lons = np.fromiter((r.lon for r in rows), float, len(rows))
    lats = np.fromiter((r.lat for r in rows), float, len(rows))
    ring = inside_rings(lons, lats, *_hazchem_rings())
    lons, lats = shift(lons, lats)
    return {"type": "FeatureCollection",
            "features": [map_point(r, lons[i], lats[i], ring[i], now) for i, r in enumerate(rows)]}


def circle(lon0: float, lat0: float, radius_m: float, n: int = RING_SEGMENTS) -> list[list[float]]:
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    dlat = radius_m / EARTH_M_PER_DEG_LAT * np.sin(ang)
    dlon = radius_m / (EARTH_M_PER_DEG_LAT * 1.00335 * math.cos(math.radians(lat0))) * np.cos(ang)
    ring = [[lon0 + a, lat0 + b] for a, b in zip(dlon, dlat)]
    return ring + [ring[0]]


def _ring_counts() -> tuple[list, dict[str, int]]:
    """(the major hazard sites, open incidents inside each site's safety ring by site code)."""
    open_rows = _points(IncidentFilter(statuses=list(lifecycle.OPEN_STATES)))
    # the registry is loaded from geodata at start (services.alerts.ensure_hazard_registry)
    with db.session() as s:
        sites = hazard_repo.major_sites(s)
    lons = np.fromiter((r.lon for r in open_rows), float, len(open_rows))
    lats = np.fromiter((r.lat for r in open_rows), float, len(open_rows))
    return sites, {site.code: int(inside_rings(lons, lats, [site.lon], [site.lat], [site.ring_m]).sum())
                   if len(lons) else 0 for site in sites}


def ring_counts(seq: int) -> dict[str, int]:
    """Open incidents inside each safety ring (by site code) at change ``seq``, shared through the cache: what a
    page's ring layer needs after a change (pushed: ``callbacks.pushed``, part ``rings``), without its geometry."""
    from ..cache import remember

    return remember(context.services().cache, f"ring-counts:{seq}", 300, lambda: _ring_counts()[1])


def rings_collection() -> dict:
    """Safety rings of the major hazard sites (polygons) with the open incidents inside each."""
    sites, counts = _ring_counts()
    features = []
    for site in sites:
        count = counts[site.code]
        ring = np.array(circle(site.lon, site.lat, site.ring_m))
        x, y = shift(ring[:, 0], ring[:, 1])
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[round(a, 6), round(b, 6)] for a, b in zip(x, y)]]},
            "properties": {"code": site.code, "name": site.name, "kind": site.kind, "risk": site.risk,
                           "ring_m": site.ring_m, "open_incidents": count, "zone_code": site.zone_code,
                           "town_code": site.town_code},
        })
    return {"type": "FeatureCollection", "features": features}


def hotspots_collection(per, categories: list[str]) -> dict:
    """Incident density on H3 hexagons for a period, with Getis-Ord Gi* hot spots (``meta`` says how)."""
    from ..metrics import hotspots

    flt = IncidentFilter(categories=categories, reported_from=per.start.to_pydatetime(),
                         reported_to=per.end.to_pydatetime())
    rows = _points(flt)
    counts = hotspots.count_points([r.lon for r in rows], [r.lat for r in rows])
    result = hotspots.gi_star(_district_cells(), counts)
    fc = hotspots.to_feature_collection(result)
    if _settings().tile_crs == "gcj02":
        for f in fc["features"]:
            ring = np.array(f["geometry"]["coordinates"][0])
            x, y = shift(ring[:, 0], ring[:, 1])
            f["geometry"]["coordinates"] = [[[round(a, 6), round(b, 6)] for a, b in zip(x, y)]]
    top = max((f["properties"]["count"] for f in fc["features"]), default=0) or 1
    for f in fc["features"]:
        f["properties"]["n"] = round(f["properties"]["count"] / top, 4)
    fc["meta"] = {"period": per.key, "from": per.first_day, "to": per.last_day, "incidents": len(rows),
                  "cells": len(result.cells), "hot": int(result.significant.sum()),
                  "max": int(result.counts.max()) if len(result.counts) else 0,
                  "method": "Getis-Ord Gi* on H3 res 8, Anscombe-stabilised counts, BH FDR q=0.05"}
    return fc


def _district_cells() -> list[str]:
    from shapely.geometry import mapping

    from ..metrics import hotspots

    svc = context.services()
    key = f"map:cells:{hotspots.RESOLUTION}"
    cells = svc.cache.get(key)
    if cells is None:
        district = svc.geodata().district.geometry.union_all()
        cells = hotspots.cells_for_area(mapping(district))
        svc.cache.set(key, cells, timeout=0)
    return cells


# ------------------------------------------------------------------------------------- choropleth
def map_layers() -> tuple[str, ...]:
    """The unit layers the served set can be coloured on (a single county's has no counties or cities)."""
    from . import units

    levels = units.hierarchy().levels
    return tuple(layer for layer, level in MAP_LEVELS.items() if level in levels)


def live_counts(level: str, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Open and overdue incidents per unit of ``level`` (county / city: their towns' together; town / zone /
    grid) right now."""
    from . import units

    up = units.hierarchy().town_up.get(level) if level in ("city", "county") else None
    with db.session() as s:
        rows = queries.open_due_by_unit(s, "town" if up is not None else level)
    if up is not None:
        rows = [(up.get(code), due) for code, due in rows]
    naive_now = now.replace(tzinfo=None)
    open_n, overdue_n = Counter(), Counter()
    for code, due in rows:
        open_n[code] += 1
        if (due.replace(tzinfo=None) if due.tzinfo is None else due.astimezone(dt.timezone.utc).replace(tzinfo=None)) < naive_now:
            overdue_n[code] += 1
    return {"open_incidents": dict(open_n), "overdue_incidents": dict(overdue_n)}


def cached_live_counts(level: str, now: dt.datetime) -> dict[str, dict[str, int]]:
    """:func:`live_counts` shared through the cache per store change and minute: every viewer's map recolours
    on each change (``map-seq``), and they all need the same counts (overdue is counted to the minute)."""
    cache = context.services().cache
    key = f"live-counts:{level}:{change_seq()}:{now.strftime('%Y%m%d%H%M')}"
    counts = cache.get(key)
    if counts is None:
        counts = live_counts(level, now)
        cache.set(key, counts, timeout=120)
    return counts


def period_kpis(level: str, per, measure: str | None = None) -> "dict[str, dict[str, float | None]]":
    """Every KPI per unit of ``level`` for a period (only ``measure``'s when given): read from the period's cached
    KPI bundle (the same numbers
    the cards and /api/v1/kpis show; computed once per period by dashboard.metrics.views). Grids' medians are
    read only when ``measure`` is one of them (or None: every KPI) — they cost as many histogram values as the
    period has closes."""
    from ..metrics import views

    svc = context.services()
    medians = level == "grid" and (measure is None or measure in views.GRID_MEDIAN_KPIS)
    bundle = views.kpi_bundle(svc.engine, svc.geodata(), svc.cache, per, grid_medians="all" if medians else None)
    rows = bundle["kpis"][level]
    if measure is not None:  # one measure's column (a province's grids: 67,000 values, not 18 × 67,000)
        return {measure: dict(zip(rows, rows.column(measure)))}
    return rows.table()


def breaks_for(values: list[float], n: int = 5) -> list[float]:
    """Quantile class breaks (upper bounds of the first n-1 classes), unique and increasing."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return []
    qs = np.unique(np.round(np.quantile(vals, np.linspace(0, 1, n + 1)[1:-1]), 6))
    return [float(q) for q in qs]


def good_when_high(measure: str, kind: str) -> bool:
    """A rate that is better high gets the light-to-blue ramp; counts and hours (workload, delay) the red one."""
    return kind == "rate" and not registry.lower_is_better(measure)


def measure_payload_key(layer: str, measure: str, per, lang: str = "zh") -> str:
    """What :func:`measure_payload` is cached by: a live measure's per change and minute (as its counts), a period
    measure's by its bundle's key (``views.bundle_key``: the store's version, or a current period's next report and
    due time)."""
    from ..metrics import views

    head = f"map:measure:v1:{layer}:{measure}:{lang}:{per.key}:{per.first_day}:{per.last_day}"
    if measure in LIVE_MEASURES:
        return f"{head}:{change_seq()}:{utcnow().strftime('%Y%m%d%H%M')}"
    return f"{head}:{views.bundle_key(context.services().engine, per)[0]}"


def measure_payload(layer: str, measure: str, per, lang: str = "zh") -> dict:
    """What colouring ``layer`` (towns / zones / grids) by ``measure`` needs: values per unit, quantile breaks,
    colours, label and format (``/api/map/measures.json``)."""
    from ..metrics.kpis import KPIS
    from ..ui.palette import SEQUENTIAL, SEQUENTIAL_BAD

    level = MAP_LEVELS[layer]
    if measure in LIVE_MEASURES:
        values = cached_live_counts(level, utcnow())[measure]
        codes = getattr(context.services().geodata(), layer)["code"].tolist()
        values = {c: values.get(c, 0) for c in codes}
    else:
        values = period_kpis(level, per, measure)[measure]
    zh, en, kind = KPIS[measure]
    digits = 4 if kind == "rate" else 1  # rates as fractions (shown as 12.3 %), counts and hours to 0.1
    values = {k: (None if v is None else round(float(v), digits)) for k, v in values.items()}
    brks = sorted({round(b, digits) for b in breaks_for(list(values.values()))})
    colors = (SEQUENTIAL if good_when_high(measure, kind) else SEQUENTIAL_BAD)[: len(brks) + 1]
    return {"layer": layer, "measure": measure, "label": zh if lang == "zh" else en,
            "format": "pct" if kind == "rate" else "num", "values": values, "breaks": brks, "colors": colors,
            "period": {"key": per.key, "from": per.first_day, "to": per.last_day},
            "live": measure in LIVE_MEASURES}
