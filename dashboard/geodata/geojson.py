"""Stable GeoJSON writing: RFC 7946 (WGS84, no ``crs`` member, exterior rings CCW),
coordinates rounded to 6 decimals, one feature per line, ``ensure_ascii=False``,
atomic replace."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping

PRECISION = 6
GRID_SIZE = 10.0 ** -PRECISION


def _round_coords(obj):
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(v), PRECISION) + 0.0 for v in obj]
        return [_round_coords(o) for o in obj]
    return obj


def geometry_dict(geom) -> dict:
    if shapely.get_type_id(geom) in (3, 6):
        # canonical ring start / part order (so re-imports are byte-identical), CCW shells
        geom = shapely.orient_polygons(shapely.normalize(geom), exterior_cw=False)
    m = mapping(geom)
    return {"type": m["type"], "coordinates": _round_coords(m["coordinates"])}


def _clean(v):
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        v = float(v)
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return round(v, PRECISION) + 0.0
    if v is None:
        return None
    try:
        import pandas as pd
        if v is pd.NA or v is pd.NaT:
            return None
    except Exception:  # pragma: no cover
        pass
    return v


def feature_collection_text(features: list[tuple[dict, object]]) -> str:
    """features: list of (properties, shapely geometry) in the order to write."""
    lines = []
    for props, geom in features:
        feat = {"type": "Feature",
                "properties": {k: _clean(v) for k, v in props.items()},
                "geometry": geometry_dict(geom)}
        lines.append(json.dumps(feat, ensure_ascii=False, separators=(",", ":")))
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def gdf_to_text(gdf, columns: list[str] | None = None, sort_by: str | None = "code") -> str:
    if sort_by and sort_by in gdf.columns:
        gdf = gdf.sort_values(sort_by, kind="mergesort")
    cols = columns or [c for c in gdf.columns if c != gdf.geometry.name]
    feats = []
    for row, geom in zip(gdf[cols].to_dict("records"), gdf.geometry.values):
        feats.append((row, geom))
    return feature_collection_text(feats)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_text_gdf(text: str):
    """Parse a FeatureCollection string into a GeoDataFrame (EPSG:4326)."""
    import geopandas as gpd
    data = json.loads(text)
    return gpd.GeoDataFrame.from_features(data["features"], crs="EPSG:4326")
