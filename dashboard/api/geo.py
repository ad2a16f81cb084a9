"""Geometry for the map, served by URL: ``/api/geo/<layer>.json``.

GeoJSON FeatureCollections (RFC 7946, WGS84; shifted to GCJ-02 only when ``TILE_CRS=gcj02``), simplified for
display with ``shapely.coverage_simplify`` so neighbours keep shared edges, coordinates at 6 decimals.
The outlines a city's or province's map draws at low zoom (``district``, ``cities``, ``counties``) also come coarse,
``?lod=1|2`` (:func:`lod_geometries`). Each payload is built once, stored pre-compressed in the shared cache and served with an ETag, so the
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
from .encoding import FAST_ENCODERS, fast_encoding
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
# The outlines (root, cities, counties) come by box too once zoomed in past the coarse levels
# (``ui.layers.OUTLINE_BBOX``): a county's page drew the full outlines of the whole province (1 MB) for the few in its
# view. Their lattice is
# coarser (a pan at zoom 10 crosses it seldom) and the root, one polygon meeting every view, comes as its boundary
# cut to the box (lines: no edge of the cut is drawn).
BBOX_LAYERS = ("district", "cities", "counties", "towns", "zones", "grids")
BBOX_STEP = 0.05
OUTLINE_BBOX_STEP = 0.5
BBOX_STEPS = {"district": OUTLINE_BBOX_STEP, "cities": OUTLINE_BBOX_STEP, "counties": OUTLINE_BBOX_STEP}
BBOX_MAX_SPAN = {"district": 8.0, "cities": 8.0, "counties": 8.0, "towns": 8.0, "zones": 4.0, "grids": 2.0}
# ``?lod=``: coarse outlines of the layers a multi-county map shows at province and city zoom (``ui.layers.LOD_ZOOMS``:
# lod 1 below zoom 8.5, lod 2 up to 10, the full layer from 10). Each is simplified as a coverage (shared borders stay
# shared) by about ¾ of a pixel at the highest zoom it is drawn at (a pixel is 0.0039° at zoom 8.5, 0.0014° at 10),
# its coordinates rounded to LOD_GRID degrees (~11 m) and made valid again; at lod 1 the parts smaller than
# LOD_MIN_PART (~1 km², under 3 × 3 pixels at zoom 8.5: islets) are dropped, each unit keeping its largest part.
# Zhejiang's 90 counties: 429 KB brotli in full, 187 KB at lod 2, 76 KB at lod 1 (cities 228 / 96 / 35 KB).
LOD_LAYERS = ("district", "cities", "counties")
LOD_TOLERANCE = {1: 3e-3, 2: 1e-3}
LOD_GRID = 1e-4
LOD_MIN_PART = {1: 1e-4}  # square degrees
PAYLOAD_VERSION = "2"  # 2: the outlines of a view cut to it (CLIPPED_LAYERS)

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


def _display_geometries(layer: str, gd, tile_crs: str, lod: int | None = None):
    geoms = getattr(gd, layer).geometry.values
    if lod is not None:
        return lod_geometries(geoms, lod, tile_crs)
    tol = SIMPLIFY_TOLERANCE.get(layer)
    if tol:
        geoms = shapely.coverage_simplify(geoms, tol, simplify_boundary=True)
    if tile_crs == "gcj02":
        from ..geodata.crs import transform_geometry, wgs84_to_gcj02

        geoms = [transform_geometry(g, wgs84_to_gcj02) for g in geoms]
    return shapely.set_precision(geoms, 1e-6, mode="pointwise")


def _polygonal(g):
    """The polygons of ``g`` (a repaired geometry may hold lines or points beside them), or None."""
    if g is None or g.is_empty:
        return None
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
    if not parts:
        return None
    return shapely.union_all(parts) if len(parts) > 1 else parts[0]


def _drop_small_parts(g, min_area: float):
    """``g`` without its parts smaller than ``min_area`` (its largest part is always kept)."""
    if g is None or g.geom_type != "MultiPolygon":
        return g
    parts = list(shapely.get_parts(g))
    areas = shapely.area(parts)
    keep = [p for p, a in zip(parts, areas) if a >= min_area] or [parts[int(np.argmax(areas))]]
    return keep[0] if len(keep) == 1 else shapely.MultiPolygon(keep)


def lod_geometries(geoms, lod: int, tile_crs: str = "wgs84") -> list:
    """Coarse display outlines of a coverage (``geoms``: a layer's polygons) at level of detail ``lod`` (1 or 2): see
    :data:`LOD_TOLERANCE`. Every output is a valid, non-empty (multi)polygon: rounding can fold a thin spot of a
    simplified outline onto itself, so the rounding is topology-preserving (``set_precision``'s valid output) and
    whatever is still invalid is repaired (``make_valid``, its polygons kept); a unit the rounding would empty keeps
    its simplified outline at the full layer's precision."""
    geoms = shapely.coverage_simplify(np.asarray(geoms), LOD_TOLERANCE[lod], simplify_boundary=True)
    if lod in LOD_MIN_PART:
        geoms = [_drop_small_parts(g, LOD_MIN_PART[lod]) for g in geoms]
    if tile_crs == "gcj02":
        from ..geodata.crs import transform_geometry, wgs84_to_gcj02

        geoms = [transform_geometry(g, wgs84_to_gcj02) for g in geoms]
    rounded = shapely.set_precision(np.asarray(geoms), LOD_GRID)
    out = []
    for simplified, g in zip(geoms, rounded):
        if g is not None and not g.is_empty and not g.is_valid:
            g = shapely.make_valid(g)
        g = _polygonal(g)
        if g is None:
            g = shapely.set_precision(simplified, 1e-6)
        out.append(g)
    return out


def parse_lod(layer: str, raw: str | None) -> tuple[int | None, tuple | None]:
    """``?lod=``: (the level of detail, or None for the full layer; a refusal: (status, body) for :func:`_refuse`)."""
    if raw is None or raw == "":
        return None, None
    if layer not in LOD_LAYERS:
        return None, (400, "invalid_value", "lod", f"lod is for the layers {', '.join(LOD_LAYERS)}")
    if raw not in {str(k) for k in LOD_TOLERANCE}:
        return None, (400, "invalid_value", "lod", f"lod must be {' or '.join(str(k) for k in LOD_TOLERANCE)} "
                                                   "(1 the coarsest); leave it out for the full outlines")
    return int(raw), None


def build_layer(layer: str, gd, tile_crs: str = "wgs84", lod: int | None = None) -> bytes:
    """The FeatureCollection for one layer as UTF-8 JSON bytes (pure: geodata in, bytes out); ``lod``: its coarse
    outlines (:data:`LOD_LAYERS` only)."""
    props = _properties(layer, gd)
    geoms = _display_geometries(layer, gd, tile_crs, lod)
    features = [
        {"type": "Feature", "id": p.get("code"), "properties": p, "geometry": mapping(g)}
        for p, g in zip(props, geoms)
    ]
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def layer_features(layer: str, gd, tile_crs: str) -> tuple[list[bytes], "np.ndarray"]:
    """Each feature of a layer as JSON bytes, and the boxes (minx, miny, maxx, maxy) of their display geometries
    (memoised per geodata bundle: the geodata never changes while the app runs; ``dashboard.warm`` builds them when
    a worker starts)."""
    return _features_memo(layer, gd, tile_crs)


@lru_cache(maxsize=16)
def _features_memo(layer: str, gd, tile_crs: str):
    if layer in CLIPPED_LAYERS:  # their polygons are kept for the cuts of a view: made once
        props, geoms = _geometry_memo(layer, gd, tile_crs)
    else:
        props, geoms = _properties(layer, gd), _display_geometries(layer, gd, tile_crs)
    texts = [json.dumps({"type": "Feature", "id": p.get("code"), "properties": p, "geometry": mapping(g)},
                        ensure_ascii=False, separators=(",", ":")).encode("utf-8") for p, g in zip(props, geoms)]
    return texts, shapely.bounds(np.asarray(geoms))


def snap_bbox(box: tuple[float, float, float, float], step: float = BBOX_STEP) -> tuple[float, float, float, float]:
    """The box snapped outward to the lattice of ``step`` degrees (what the payload is built and cached for)."""
    x1, y1, x2, y2 = box
    f = 1 / step
    return (math.floor(x1 * f + 1e-9) / f, math.floor(y1 * f + 1e-9) / f, math.ceil(x2 * f - 1e-9) / f,
            math.ceil(y2 * f - 1e-9) / f)


# The cities and counties of a view (``?bbox=``, zoom 10 and more) are cut to the box and OUTLINE_CLIP_MARGIN degrees
# around it: a city meeting the view was sent whole — its whole coast — and a zoom-11 view's seven cities held 23,000
# vertices, 3,900 of them in the box, every one projected and clipped by the browser on each move. The margin (the
# box's own lattice step: the box is already the view snapped outward to it) keeps the cut edges out of sight until
# the view has moved that far, when the next box comes.
CLIPPED_LAYERS = ("cities", "counties")
OUTLINE_CLIP_MARGIN = OUTLINE_BBOX_STEP


def build_in_box(layer: str, gd, box, tile_crs: str = "wgs84") -> bytes:
    """The FeatureCollection of the layer's units whose box meets ``box`` (pure: geodata in, bytes out); the root
    (``district``) as its boundary cut to the box, the cities and counties cut to the box and its margin
    (:data:`OUTLINE_CLIP_MARGIN`)."""
    if layer == "district":
        return _outline_in_box(gd, box, tile_crs)
    texts, b = layer_features(layer, gd, tile_crs)
    x1, y1, x2, y2 = box
    hit = np.flatnonzero((b[:, 0] <= x2) & (b[:, 2] >= x1) & (b[:, 1] <= y2) & (b[:, 3] >= y1))
    if layer in CLIPPED_LAYERS:
        parts = _clipped(layer, gd, tile_crs, hit, box)
    else:
        parts = [texts[i] for i in hit]
    return b'{"type":"FeatureCollection","features":[' + b",".join(parts) + b"]}"


def _clipped(layer: str, gd, tile_crs: str, hit, box) -> list[bytes]:
    """The features ``hit`` of an outline layer as JSON, each cut to ``box`` and its margin (kept as the layer's own
    text when it lies inside)."""
    texts, b = layer_features(layer, gd, tile_crs)
    props, geoms = _geometry_memo(layer, gd, tile_crs)
    m = OUTLINE_CLIP_MARGIN
    cx1, cy1, cx2, cy2 = box[0] - m, box[1] - m, box[2] + m, box[3] + m
    out = []
    for i in hit:
        if b[i, 0] >= cx1 and b[i, 1] >= cy1 and b[i, 2] <= cx2 and b[i, 3] <= cy2:
            out.append(texts[i])
            continue
        cut = _polygonal(shapely.transform(shapely.clip_by_rect(geoms[i], cx1, cy1, cx2, cy2),
                                           lambda xy: np.round(xy, 6)))  # 6 decimals, as all
        if cut is not None:
            p = props[i]
            out.append(json.dumps({"type": "Feature", "id": p.get("code"), "properties": p, "geometry": mapping(cut)},
                                  ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return out


@lru_cache(maxsize=8)
def _geometry_memo(layer: str, gd, tile_crs: str):
    """An outline layer's properties and display polygons (memoised per geodata bundle): its features' texts
    (:func:`_features_memo`) and the cuts of a view are made from them."""
    return _properties(layer, gd), list(_display_geometries(layer, gd, tile_crs))


def warm_layer(layer: str, gd, tile_crs: str) -> None:
    """Build what a layer's ``?bbox=`` answers are cut from (``dashboard.warm``)."""
    if layer == "district":
        _outline_memo(gd, tile_crs)
    else:
        layer_features(layer, gd, tile_crs)


@lru_cache(maxsize=4)
def _outline_memo(gd, tile_crs: str):
    """The root's properties and the boundaries of its display polygons (memoised per geodata bundle)."""
    return _properties("district", gd), shapely.boundary(np.asarray(_display_geometries("district", gd, tile_crs)))


def _outline_in_box(gd, box, tile_crs: str) -> bytes:
    props, lines = _outline_memo(gd, tile_crs)
    features = []
    for p, line in zip(props, lines):
        cut = shapely.transform(shapely.clip_by_rect(line, *box), lambda xy: np.round(xy, 6))  # 6 decimals, as all
        if not cut.is_empty:
            features.append({"type": "Feature", "id": p.get("code"), "properties": p, "geometry": mapping(cut)})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _compressed(raw: bytes) -> dict:
    return {"raw": raw, "gzip": gzip.compress(raw, 6, mtime=0), "br": brotli.compress(raw, quality=9),
            "etag": hashlib.sha1(raw).hexdigest()[:20]}


# a view's box is asked for once or twice and on the critical path of a pan: compressed fast (api/encoding.py), in
# the one encoding asked for, when first asked for
BOX_ENCODERS = FAST_ENCODERS


def _payload(layer: str, box=None, lod: int | None = None, enc: str | None = None) -> dict:
    """A layer's payload ``{"raw", "etag", encoding: bytes}``: a whole layer (or its ``lod``) with both encodings at
    their best, a view's ``box`` with ``enc``'s."""
    svc = services()
    crs = svc.settings.tile_crs
    key = f"geo:{PAYLOAD_VERSION}:{svc.settings.geodata_dir}:{layer}:{crs}" + (
        "" if box is None else ":" + ",".join(f"{v:.2f}" for v in box)) + ("" if lod is None else f":lod{lod}")
    cached, changed = svc.cache.get(key), False
    if cached is None and box is not None:
        raw = build_in_box(layer, svc.geodata(), box, crs)
        cached, changed = {"raw": raw, "etag": hashlib.sha1(raw).hexdigest()[:20]}, True
    if cached is None:
        cached, changed = _compressed(build_layer(layer, svc.geodata(), crs, lod)), True
    if enc is not None and enc not in cached:
        cached, changed = {**cached, enc: BOX_ENCODERS[enc](cached["raw"])}, True
    if changed:
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
    lod, refusal = parse_lod(layer, request.args.get("lod"))
    if refusal:
        return _refuse(*refusal)
    box = None
    if request.args.get("bbox"):
        if layer not in BBOX_LAYERS:
            return _refuse(400, "invalid_value", "bbox", f"bbox is for the layers {', '.join(BBOX_LAYERS)}")
        raw = request.args["bbox"]
        if not grammar.matches(grammar.BBOX, raw):
            return _refuse(400, "invalid_value", "bbox",
                           "bbox must be minlon,minlat,maxlon,maxlat (decimal degrees of the map)")
        x1, y1, x2, y2 = (float(v) for v in raw.split(","))
        box = snap_bbox((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), BBOX_STEPS.get(layer, BBOX_STEP))
        if max(box[2] - box[0], box[3] - box[1]) > BBOX_MAX_SPAN[layer]:
            return _refuse(400, "invalid_value", "bbox", f"bbox is wider than {BBOX_MAX_SPAN[layer]:g}° for {layer}: "
                                                         "zoom in, or ask for the whole layer without bbox")
    enc = fast_encoding(request.accept_encodings)
    payload = _payload(layer, box, lod, enc)
    etag = payload["etag"]
    if request.if_none_match and etag in request.if_none_match:
        resp = Response(status=304)
    else:
        if enc is not None:
            resp = Response(payload[enc], mimetype="application/json")
            resp.headers["Content-Encoding"] = enc
        else:
            resp = Response(payload["raw"], mimetype="application/json")
        resp.headers["Vary"] = "Accept-Encoding"
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "private, max-age=300"  # behind sign-in: no shared cache
    return resp


