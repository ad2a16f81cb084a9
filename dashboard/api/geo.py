"""Geometry for the map, served by URL: ``/api/geo/<layer>.json``.

GeoJSON FeatureCollections (RFC 7946, WGS84; shifted to GCJ-02 only when ``TILE_CRS=gcj02``), simplified for
display with ``shapely.coverage_simplify`` so neighbours keep shared edges, coordinates at 6 decimals.
Each payload is built once, stored pre-compressed in the shared cache and served with an ETag, so the
map never re-sends geometry to restyle it (styling happens client-side through ``hideout``).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
from functools import lru_cache

import brotli
import numpy as np
import pandas as pd
import shapely
from flask import Blueprint, Response, request
from shapely.geometry import mapping

from ..context import services
from ..domain import grammar
from .errors import register_blueprint_handlers

LAYERS = ("district", "cities", "counties", "towns", "zones", "grids", "hazards")
UPPER = ("cities", "counties")  # only in a multi-county set (a 404 in one county's)
# display tolerance in degrees (~11 m at this latitude): invisible at district zoom, 3-5x fewer vertices; the
# cities and counties are drawn at province and city zoom, where ~45 m is below a pixel
SIMPLIFY_TOLERANCE = {"district": 1e-4, "cities": 4e-4, "counties": 4e-4, "towns": 1e-4, "zones": 1e-4,
                      "grids": 1e-4}
# ``?bbox=``: the units whose box meets the view (the level of detail of a multi-county map). The box is snapped
# outward to a lattice of BBOX_STEP degrees, so that neighbouring views of one place share a URL and its cached
# payload; a box wider than BBOX_MAX_SPAN degrees is refused (the map asks for these layers only zoomed in).
BBOX_LAYERS = ("towns", "zones", "grids")
BBOX_STEP = 0.05
BBOX_MAX_SPAN = {"towns": 8.0, "zones": 4.0, "grids": 2.0}
PAYLOAD_VERSION = "1"

bp = Blueprint("geo", __name__, url_prefix="/api/geo")
register_blueprint_handlers(bp)  # JSON errors and the access policy (the wall and up; public with PUBLIC_OVERVIEW)


def _properties(layer: str, gd) -> list[dict]:
    """Feature properties: code, names and parent codes/names (for tooltips without extra lookups)."""
    frame = getattr(gd, layer)
    cols = [c for c in frame.columns if c != "geometry"]
    records = frame[cols].to_dict("records")
    towns = gd.towns.set_index("code")
    zones = gd.zones.set_index("code")
    for rec in records:
        for key, value in list(rec.items()):
            rec[key] = _plain(value)
        if "town_code" in rec and rec["town_code"] in towns.index:
            rec["town_name"] = _plain(towns.at[rec["town_code"], "name"])
            rec["town_name_en"] = _plain(towns.at[rec["town_code"], "name_en"])
        if "zone_code" in rec and rec["zone_code"] in zones.index:
            rec["zone_name"] = _plain(zones.at[rec["zone_code"], "name"])
            rec["zone_name_en"] = _plain(zones.at[rec["zone_code"], "name_en"])
    return records


def _plain(value):
    """A property value as JSON has it: numpy scalars as Python's, a missing value (NaN, None, pandas NA) as null —
    a county without an English name was sent as ``NaN``, which is not JSON, and the page drew no county."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _display_geometries(layer: str, gd, tile_crs: str):
    geoms = getattr(gd, layer).geometry.values
    tol = SIMPLIFY_TOLERANCE.get(layer)
    if tol:
        geoms = shapely.coverage_simplify(geoms, tol, simplify_boundary=True)
    if tile_crs == "gcj02":
        from ..geodata.crs import transform_geometry, wgs84_to_gcj02

        geoms = [transform_geometry(g, wgs84_to_gcj02) for g in geoms]
    return shapely.set_precision(geoms, 1e-6, mode="pointwise")


def build_layer(layer: str, gd, tile_crs: str = "wgs84") -> bytes:
    """The FeatureCollection for one layer as UTF-8 JSON bytes (pure: geodata in, bytes out)."""
    props = _properties(layer, gd)
    geoms = _display_geometries(layer, gd, tile_crs)
    features = [
        {"type": "Feature", "id": p.get("code"), "properties": p, "geometry": mapping(g)}
        for p, g in zip(props, geoms)
    ]
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _features(layer: str, gd, tile_crs: str) -> tuple[list[bytes], "np.ndarray"]:
    """Each feature of a layer as JSON bytes, and the boxes (minx, miny, maxx, maxy) of their display geometries
    (memoised per geodata bundle: the geodata never changes while the app runs)."""
    return _features_memo(layer, gd, tile_crs)


@lru_cache(maxsize=16)
def _features_memo(layer: str, gd, tile_crs: str):
    props = _properties(layer, gd)
    geoms = _display_geometries(layer, gd, tile_crs)
    texts = [json.dumps({"type": "Feature", "id": p.get("code"), "properties": p, "geometry": mapping(g)},
                        ensure_ascii=False, separators=(",", ":")).encode("utf-8") for p, g in zip(props, geoms)]
    return texts, shapely.bounds(np.asarray(geoms))


def snap_bbox(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The box snapped outward to the BBOX_STEP lattice (what the payload is built and cached for)."""
    x1, y1, x2, y2 = box
    f = 1 / BBOX_STEP
    return (math.floor(x1 * f) / f, math.floor(y1 * f) / f, math.ceil(x2 * f) / f, math.ceil(y2 * f) / f)


def build_in_box(layer: str, gd, box, tile_crs: str = "wgs84") -> bytes:
    """The FeatureCollection of the layer's units whose box meets ``box`` (pure: geodata in, bytes out)."""
    texts, b = _features(layer, gd, tile_crs)
    x1, y1, x2, y2 = box
    hit = np.flatnonzero((b[:, 0] <= x2) & (b[:, 2] >= x1) & (b[:, 1] <= y2) & (b[:, 3] >= y1))
    return b'{"type":"FeatureCollection","features":[' + b",".join(texts[i] for i in hit) + b"]}"


def _compressed(raw: bytes) -> dict:
    return {"raw": raw, "gzip": gzip.compress(raw, 6, mtime=0), "br": brotli.compress(raw, quality=9),
            "etag": hashlib.sha1(raw).hexdigest()[:20]}


def _payload(layer: str, box=None) -> dict:
    svc = services()
    crs = svc.settings.tile_crs
    key = f"geo:{PAYLOAD_VERSION}:{svc.settings.geodata_dir}:{layer}:{crs}" + (
        "" if box is None else ":" + ",".join(f"{v:.2f}" for v in box))
    cached = svc.cache.get(key)
    if cached is None and box is not None:
        cached = _compressed(build_in_box(layer, svc.geodata(), box, crs))
        svc.cache.set(key, cached, timeout=0)
    if cached is None:
        raw = build_layer(layer, svc.geodata(), crs)
        cached = {
            "raw": raw,
            "gzip": gzip.compress(raw, 6, mtime=0),
            "br": brotli.compress(raw, quality=9),
            "etag": hashlib.sha1(raw).hexdigest()[:20],
        }
        svc.cache.set(key, cached, timeout=0)
    return cached


def _refuse(status: int, code: str, field: str, message: str):
    return {"error": {"code": code, "field": field, "message": message}}, status


@bp.get("/<layer>.json")
def layer_json(layer: str):
    gd = services().geodata()
    if layer not in LAYERS or (layer in UPPER and getattr(gd, layer, None) is None):
        have = [name for name in LAYERS if name not in UPPER or getattr(gd, name, None) is not None]
        return _refuse(404, "unknown_layer", "layer", f"unknown layer {layer!r}; one of {', '.join(have)}")
    box = None
    if request.args.get("bbox"):
        if layer not in BBOX_LAYERS:
            return _refuse(400, "invalid_value", "bbox", f"bbox is for the layers {', '.join(BBOX_LAYERS)}")
        raw = request.args["bbox"]
        if not grammar.matches(grammar.BBOX, raw):
            return _refuse(400, "invalid_value", "bbox",
                           "bbox must be minlon,minlat,maxlon,maxlat (decimal degrees of the map)")
        x1, y1, x2, y2 = (float(v) for v in raw.split(","))
        box = snap_bbox((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
        if max(box[2] - box[0], box[3] - box[1]) > BBOX_MAX_SPAN[layer]:
            return _refuse(400, "invalid_value", "bbox", f"bbox is wider than {BBOX_MAX_SPAN[layer]:g}° for {layer}: "
                                                         "zoom in, or ask for the whole layer without bbox")
    payload = _payload(layer, box)
    etag = payload["etag"]
    if request.if_none_match and etag in request.if_none_match:
        resp = Response(status=304)
    else:
        accept = request.accept_encodings
        if accept["br"]:
            resp = Response(payload["br"], mimetype="application/json")
            resp.headers["Content-Encoding"] = "br"
        elif accept["gzip"]:
            resp = Response(payload["gzip"], mimetype="application/json")
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp = Response(payload["raw"], mimetype="application/json")
        resp.headers["Vary"] = "Accept-Encoding"
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "private, max-age=300"  # behind sign-in: no shared cache
    return resp


