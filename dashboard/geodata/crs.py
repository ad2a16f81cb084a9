"""WGS84 <-> GCJ-02 ("Mars" coordinates of Chinese web maps) conversion.

Standard published GCJ-02 obfuscation formulas (Krasovsky 1940 ellipsoid constants
a = 6378245.0, ee = 0.00669342162296594323).  The inverse has no closed form; it is
solved by fixed-point iteration until the forward transform of the estimate
reproduces the input to better than ~1e-9 degrees (< 1 mm).

All functions accept scalars or numpy arrays (broadcast) and return the same shape
(floats for scalar input).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

A = 6378245.0
EE = 0.00669342162296594323
_PI = np.pi

__all__ = [
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_wgs84_approx",
    "transform_geometry",
    "transform_gdf",
    "A",
    "EE",
]


def _transform_lat(x, y):
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * _PI) + 40.0 * np.sin(y / 3.0 * _PI)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * _PI) + 320.0 * np.sin(y * _PI / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x, y):
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * _PI) + 40.0 * np.sin(x / 3.0 * _PI)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * _PI) + 300.0 * np.sin(x / 30.0 * _PI)) * 2.0 / 3.0
    return ret


def _delta(lon, lat):
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * _PI
    magic = np.sin(radlat)
    magic = 1 - EE * magic * magic
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtmagic) * _PI)
    dlon = (dlon * 180.0) / (A / sqrtmagic * np.cos(radlat) * _PI)
    return dlon, dlat


def _out(lon, lat, scalar):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def wgs84_to_gcj02(lon, lat):
    """Forward WGS84 -> GCJ-02. Scalars or arrays. (Applied everywhere; the
    'outside China' shortcut of some implementations is deliberately not used so the
    transform is smooth and invertible.)"""
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return _out(lon + dlon, lat + dlat, scalar)


def gcj02_to_wgs84(lon, lat, tol_deg: float = 1e-10, max_iter: int = 30):
    """Inverse GCJ-02 -> WGS84 by fixed-point iteration: w <- w - (f(w) - g).

    Converges to far below 1 cm (tol 1e-10 deg ~ 0.01 mm) in a handful of iterations."""
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon = glon.copy()
    wlat = glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon = flon - glon
        elat = flat - glat
        wlon = wlon - elon
        wlat = wlat - elat
        if np.size(elon) == 0 or max(np.nanmax(np.abs(elon)), np.nanmax(np.abs(elat))) < tol_deg:
            break
    return _out(wlon, wlat, scalar)


def gcj02_to_wgs84_approx(lon, lat):
    """One-step approximate inverse ``w = g - delta(g)`` (what cnmaps' ``gcj02_to_wgs84`` and
    many web snippets do).  Error up to ~2 m around Huzhou; kept only to reproduce the
    provenance of ``source_district_wgs84.geojson``.  Use :func:`gcj02_to_wgs84`."""
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(glon, glat)
    return _out(glon - dlon, glat - dlat, scalar)


def transform_geometry(geom, fn: Callable):
    """Apply ``fn(lon_array, lat_array) -> (lon_array, lat_array)`` to every vertex of a
    shapely geometry (or array of geometries) using ``shapely.transform``."""
    import shapely

    def _xy(coords):
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])

    return shapely.transform(geom, _xy)


def transform_gdf(gdf, fn: Callable):
    """Return a copy of a GeoDataFrame with ``fn`` applied to every vertex (CRS unchanged,
    EPSG:4326 expected)."""
    out = gdf.copy()
    out[out.geometry.name] = transform_geometry(out.geometry.values, fn)
    return out
