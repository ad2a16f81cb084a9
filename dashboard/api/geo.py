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

import brotli
import shapely
from flask import Blueprint, Response, request
from shapely.geometry import mapping

from ..context import services
from .errors import register_blueprint_handlers

LAYERS = ("district", "towns", "zones", "grids", "hazards")
# display tolerance in degrees (~11 m at this latitude): invisible at district zoom, 3-5x fewer vertices
SIMPLIFY_TOLERANCE = {"district": 1e-4, "towns": 1e-4, "zones": 1e-4, "grids": 1e-4}
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
            if hasattr(value, "item"):  # numpy scalar -> python
                rec[key] = value.item()
        if "town_code" in rec and rec["town_code"] in towns.index:
            rec["town_name"] = towns.at[rec["town_code"], "name"]
            rec["town_name_en"] = towns.at[rec["town_code"], "name_en"]
        if "zone_code" in rec and rec["zone_code"] in zones.index:
            rec["zone_name"] = zones.at[rec["zone_code"], "name"]
            rec["zone_name_en"] = zones.at[rec["zone_code"], "name_en"]
    return records


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


def _payload(layer: str) -> dict:
    svc = services()
    crs = svc.settings.tile_crs
    key = f"geo:{PAYLOAD_VERSION}:{svc.settings.geodata_dir}:{layer}:{crs}"
    cached = svc.cache.get(key)
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


@bp.get("/<layer>.json")
def layer_json(layer: str):
    if layer not in LAYERS:
        return {"error": {"code": "unknown_layer", "field": "layer",
                          "message": f"unknown layer {layer!r}; one of {', '.join(LAYERS)}"}}, 404
    payload = _payload(layer)
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


