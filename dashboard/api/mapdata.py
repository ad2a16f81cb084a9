"""Data layers for the map, served by URL so many viewers share one computation: ``/api/map/…``.

- ``incidents.json`` — incidents as a compact GeoJSON FeatureCollection for clustered markers; the same filters
  as ``GET /api/v1/incidents`` (default ``status=open``); each point says severity, category, state, hours
  overdue and whether it lies inside a hazardous-chemical safety ring.
- ``rings.json`` — safety rings of major hazard sites (polygons) with the open incidents inside each.
- ``hotspots.json`` — incident density on H3 hexagons for a period, with Getis-Ord Gi* hot spots.
- ``measures.json`` — values per zone or grid for the choropleth ("colour by measure").

Each response is cached in the shared cache under the request's filter and the store's change sequence (so a new
or changed incident is visible on the next request, and fifty viewers cost one query), pre-compressed.
Coordinates are shifted to GCJ-02 only when ``TILE_CRS=gcj02``.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math

import numpy as np
from flask import Blueprint, Response, request
from sqlalchemy import func, select

from ..context import services
from ..store.models import HazardSite, Incident
from .errors import ApiError, register_blueprint_handlers

bp = Blueprint("mapdata", __name__, url_prefix="/api/map")
register_blueprint_handlers(bp)

EARTH_M_PER_DEG_LAT = 110_574.0
RING_SEGMENTS = 48


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def change_seq() -> int:
    """The store's latest change sequence (cheap: an index lookup), used to key cached layers."""
    with services().sessions() as s:
        return int(s.execute(select(func.coalesce(func.max(Incident.seq), 0))).scalar_one())


def _json_response(key: str, build) -> Response:
    """Serve ``build()`` (a JSON-able object) cached under ``key``, gzip pre-compressed, with an ETag."""
    cache = services().cache
    payload = cache.get(key)
    if payload is None:
        raw = json.dumps(build(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        payload = {"raw": raw, "gzip": gzip.compress(raw, 5, mtime=0), "etag": hashlib.sha1(raw).hexdigest()[:20]}
        cache.set(key, payload, timeout=120)
    if request.if_none_match and payload["etag"] in request.if_none_match:
        resp = Response(status=304)
    elif request.accept_encodings["gzip"]:
        resp = Response(payload["gzip"], mimetype="application/json")
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = Response(payload["raw"], mimetype="application/json")
    resp.set_etag(payload["etag"])
    resp.headers["Vary"] = "Accept-Encoding"
    resp.headers["Cache-Control"] = "no-cache"  # revalidate: the ETag makes that cheap
    return resp


def _shift(lons: np.ndarray, lats: np.ndarray):
    if services().settings.tile_crs == "gcj02":
        from ..geodata.crs import wgs84_to_gcj02

        return wgs84_to_gcj02(lons, lats)
    return lons, lats


def _hazchem_rings():
    """(lon, lat, radius_m) of the hazardous-chemical safety rings (major hazchem sites)."""
    hz = services().geodata().hazards
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


def _incident_rows(flt):
    cols = (Incident.id, Incident.category, Incident.severity, Incident.status, Incident.level,
            Incident.lon, Incident.lat, Incident.due_at)
    with services().sessions() as s:
        return s.execute(select(*cols).where(*flt.conditions()).order_by(Incident.id)).all()


def incidents_collection(rows, now: dt.datetime) -> dict:
    if not rows:
        return {"type": "FeatureCollection", "features": []}
    lons = np.fromiter((r.lon for r in rows), float, len(rows))
    lats = np.fromiter((r.lat for r in rows), float, len(rows))
    ring = inside_rings(lons, lats, *_hazchem_rings())
    lons, lats = _shift(lons, lats)
    features = []
    for i, r in enumerate(rows):
        due = r.due_at if r.due_at.tzinfo else r.due_at.replace(tzinfo=dt.timezone.utc)
        overdue_h = (now - due).total_seconds() / 3600 if r.status != "closed" and due < now else 0
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(float(lons[i]), 6), round(float(lats[i]), 6)]},
            "properties": {"id": r.id, "k": r.category, "s": r.severity, "t": r.status, "l": r.level,
                           "od": round(overdue_h, 1), "hz": bool(ring[i])},
        })
    return {"type": "FeatureCollection", "features": features}


@bp.get("/incidents.json")
def incidents_json():
    from .incidents import filter_from_args

    flt = filter_from_args()
    if not request.args.get("status"):
        from ..store import lifecycle

        flt.statuses = list(lifecycle.OPEN_STATES)
    now = utcnow()
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)) if k != "v")
    # keyed by the change sequence and the minute (overdue hours age with time)
    key = f"map:inc:{services().settings.tile_crs}:{change_seq()}:{int(now.timestamp() // 60)}:{query}"
    return _json_response(key, lambda: incidents_collection(_incident_rows(flt), now))


def circle(lon0: float, lat0: float, radius_m: float, n: int = RING_SEGMENTS) -> list[list[float]]:
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    dlat = radius_m / EARTH_M_PER_DEG_LAT * np.sin(ang)
    dlon = radius_m / (EARTH_M_PER_DEG_LAT * 1.00335 * math.cos(math.radians(lat0))) * np.cos(ang)
    ring = [[lon0 + a, lat0 + b] for a, b in zip(dlon, dlat)]
    return ring + [ring[0]]


def rings_collection(open_rows) -> dict:
    # the registry is loaded from geodata at start (api.alerts.register), whenever the store is on
    with services().sessions() as s:
        sites = s.execute(select(HazardSite).where(HazardSite.major.is_(True)).order_by(HazardSite.code)).scalars().all()
    lons = np.fromiter((r.lon for r in open_rows), float, len(open_rows))
    lats = np.fromiter((r.lat for r in open_rows), float, len(open_rows))
    features = []
    for site in sites:
        count = int(inside_rings(lons, lats, [site.lon], [site.lat], [site.ring_m]).sum()) if len(lons) else 0
        ring = np.array(circle(site.lon, site.lat, site.ring_m))
        x, y = _shift(ring[:, 0], ring[:, 1])
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[round(a, 6), round(b, 6)] for a, b in zip(x, y)]]},
            "properties": {"code": site.code, "name": site.name, "kind": site.kind, "risk": site.risk,
                           "ring_m": site.ring_m, "open_incidents": count, "zone_code": site.zone_code,
                           "town_code": site.town_code},
        })
    return {"type": "FeatureCollection", "features": features}


@bp.get("/rings.json")
def rings_json():
    from ..store import lifecycle
    from ..store.incidents import IncidentFilter

    key = f"map:rings:{services().settings.tile_crs}:{change_seq()}"
    flt = IncidentFilter(statuses=list(lifecycle.OPEN_STATES))
    return _json_response(key, lambda: rings_collection(_incident_rows(flt)))


def _period_from_args():
    from ..metrics.periods import PeriodError, resolve

    try:
        return resolve(request.args.get("period"), request.args.get("from"), request.args.get("to"))
    except PeriodError as exc:
        raise ApiError(400, "invalid_value", str(exc), exc.field) from None


@bp.get("/hotspots.json")
def hotspots_json():
    from ..metrics import hotspots
    from ..store.incidents import IncidentFilter

    per = _period_from_args()
    categories = [c for c in request.args.get("category", "").split(",") if c]
    from ..store import catalogue

    unknown = [c for c in categories if c not in catalogue.CATEGORIES]
    if unknown:
        raise ApiError(400, "invalid_value", f"unknown category {unknown[0]!r}", "category")
    now = utcnow()
    key = (f"map:hot:{services().settings.tile_crs}:{per.key}:{per.first_day}:{per.last_day}:"
           f"{','.join(sorted(categories))}:{change_seq() // 50}:{int(now.timestamp() // 300)}")

    def build():
        flt = IncidentFilter(categories=categories, reported_from=per.start.to_pydatetime(),
                             reported_to=per.end.to_pydatetime())
        rows = _incident_rows(flt)
        counts = hotspots.count_points([r.lon for r in rows], [r.lat for r in rows])
        result = hotspots.gi_star(_district_cells(), counts)
        fc = hotspots.to_feature_collection(result)
        if services().settings.tile_crs == "gcj02":
            for f in fc["features"]:
                ring = np.array(f["geometry"]["coordinates"][0])
                x, y = _shift(ring[:, 0], ring[:, 1])
                f["geometry"]["coordinates"] = [[[round(a, 6), round(b, 6)] for a, b in zip(x, y)]]
        top = max((f["properties"]["count"] for f in fc["features"]), default=0) or 1
        for f in fc["features"]:
            f["properties"]["n"] = round(f["properties"]["count"] / top, 4)
        fc["meta"] = {"period": per.key, "from": per.first_day, "to": per.last_day, "incidents": len(rows),
                      "cells": len(result.cells), "hot": int(result.significant.sum()),
                      "max": int(result.counts.max()) if len(result.counts) else 0,
                      "method": "Getis-Ord Gi* on H3 res 8, Anscombe-stabilised counts, BH FDR q=0.05"}
        return fc

    return _json_response(key, build)


def _district_cells() -> list[str]:
    from shapely.geometry import mapping

    from ..metrics import hotspots

    cache = services().cache
    key = f"map:cells:{hotspots.RESOLUTION}"
    cells = cache.get(key)
    if cells is None:
        district = services().geodata().district.geometry.union_all()
        cells = hotspots.cells_for_area(mapping(district))
        cache.set(key, cells, timeout=0)
    return cells


# ------------------------------------------------------------------------------------- choropleth
LIVE_MEASURES = ("open_incidents", "overdue_incidents")
MEASURES = ("open_incidents", "overdue_incidents", "new_incidents", "onsite_handling_rate", "resolution_rate",
            "detection_rate", "inspection_coverage", "in_zone_resolution_rate", "median_hours_to_close")
GOOD_WHEN_HIGH = {"onsite_handling_rate", "resolution_rate", "detection_rate", "inspection_coverage",
                  "in_zone_resolution_rate"}
MAP_LEVELS = {"towns": "town", "zones": "zone", "grids": "grid"}


def live_counts(level: str, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Open and overdue incidents per unit right now.

    Reads the open rows through the (status, reported_at) index and counts here: a GROUP BY lets SQLite pick the
    unit-code index and scan every closed case too (0.6 s on the demo year instead of a few ms).
    """
    from collections import Counter

    col = getattr(Incident, f"{level}_code")
    with services().sessions() as s:
        rows = s.execute(select(col, Incident.due_at).where(Incident.status != "closed")).all()
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
    svc = services()
    key = f"live-counts:{level}:{change_seq()}:{now.strftime('%Y%m%d%H%M')}"
    counts = svc.cache.get(key)
    if counts is None:
        counts = live_counts(level, now)
        svc.cache.set(key, counts, timeout=120)
    return counts


def period_kpis(level: str, per) -> "dict[str, dict[str, float | None]]":
    """Every KPI per unit of ``level`` for a period: read from the period's cached KPI bundle (the same numbers
    the cards and /api/v1/kpis show; computed once per period by dashboard.metrics.views)."""
    from ..metrics import views

    svc = services()
    bundle = views.kpi_bundle(svc.engine, svc.geodata(), svc.cache, per)
    table: dict[str, dict] = {}
    for code, row in bundle["kpis"][level].items():
        for kpi, value in row.items():
            table.setdefault(kpi, {})[code] = value
    return table


def breaks_for(values: list[float], n: int = 5) -> list[float]:
    """Quantile class breaks (upper bounds of the first n-1 classes), unique and increasing."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if len(vals) == 0:
        return []
    qs = np.unique(np.round(np.quantile(vals, np.linspace(0, 1, n + 1)[1:-1]), 6))
    return [float(q) for q in qs]


def measure_payload(layer: str, measure: str, per, lang: str = "zh") -> dict:
    from ..metrics.kpis import KPIS
    from ..ui.palette import SEQUENTIAL, SEQUENTIAL_BAD

    level = MAP_LEVELS[layer]
    if measure in LIVE_MEASURES:
        values = cached_live_counts(level, utcnow())[measure]
        codes = getattr(services().geodata(), layer)["code"].tolist()
        values = {c: values.get(c, 0) for c in codes}
    else:
        values = period_kpis(level, per)[measure]
    zh, en, kind = KPIS[measure]
    digits = 4 if kind == "rate" else 1  # rates as fractions (shown as 12.3 %), counts and hours to 0.1
    values = {k: (None if v is None else round(float(v), digits)) for k, v in values.items()}
    brks = sorted({round(b, digits) for b in breaks_for(list(values.values()))})
    colors = (SEQUENTIAL if measure in GOOD_WHEN_HIGH else SEQUENTIAL_BAD)[: len(brks) + 1]
    return {"layer": layer, "measure": measure, "label": zh if lang == "zh" else en,
            "format": "pct" if kind == "rate" else "num", "values": values, "breaks": brks, "colors": colors,
            "period": {"key": per.key, "from": per.first_day, "to": per.last_day},
            "live": measure in LIVE_MEASURES}


@bp.get("/measures.json")
def measures_json():
    layer = request.args.get("layer", "zones")
    if layer not in MAP_LEVELS:
        raise ApiError(400, "invalid_value", f"layer must be one of {', '.join(MAP_LEVELS)}", "layer")
    measure = request.args.get("measure", "open_incidents")
    if measure not in MEASURES:
        raise ApiError(400, "invalid_value", f"measure must be one of {', '.join(MEASURES)}", "measure")
    per = _period_from_args()
    lang = "en" if request.args.get("lang") == "en" else "zh"
    from flask import jsonify

    return jsonify(measure_payload(layer, measure, per, lang))
