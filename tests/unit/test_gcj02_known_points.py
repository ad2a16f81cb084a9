"""GCJ-02 shift against published control points (the widely used eviltransform/coordtransform vector)."""
import math

import numpy as np

from dashboard.geodata.crs import gcj02_to_wgs84, wgs84_to_gcj02

# (WGS84 lon, lat) -> (GCJ-02 lon, lat): the reference pair used across coordtransform implementations
KNOWN = [((116.404, 39.915), (116.41024449916938, 39.91640428150164))]


def metres(a, b):
    dlat = (a[1] - b[1]) * 110_574
    dlon = (a[0] - b[0]) * 111_320 * math.cos(math.radians(a[1]))
    return math.hypot(dlat, dlon)


def test_forward_matches_known_pairs_within_1m():
    for wgs, gcj in KNOWN:
        got = tuple(float(v) for v in wgs84_to_gcj02(*wgs))
        assert metres(got, gcj) < 1.0
        assert metres(wgs, gcj) > 100  # the shift is real (hundreds of metres), not a no-op


def test_inverse_recovers_wgs84_within_1m():
    for wgs, gcj in KNOWN:
        back = tuple(float(v) for v in gcj02_to_wgs84(*gcj))
        assert metres(back, wgs) < 1.0


def test_wuxing_offset_and_vectorised_round_trip():
    lons = np.linspace(119.9, 120.35, 50)
    lats = np.linspace(30.62, 30.98, 50)
    glon, glat = wgs84_to_gcj02(lons, lats)
    offsets = [metres((a, b), (c, d)) for a, b, c, d in zip(lons, lats, glon, glat)]
    assert 400 < min(offsets) and max(offsets) < 650  # ~509 m in Wuxing, per the reference README
    blon, blat = gcj02_to_wgs84(glon, glat)
    assert max(metres((a, b), (c, d)) for a, b, c, d in zip(lons, lats, blon, blat)) < 0.01
