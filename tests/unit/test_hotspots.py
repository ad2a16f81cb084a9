"""Gi* hotspot statistic on hand-made patterns: a planted cluster is found, uniform data gives none."""
from __future__ import annotations

import h3
import numpy as np

from dashboard.metrics.hotspots import benjamini_hochberg, gi_star, to_feature_collection

CENTRE = h3.latlng_to_cell(30.80, 120.10, 8)
AREA = sorted(h3.grid_disk(CENTRE, 12))  # ~470 cells


def _poisson_counts(rng, lam):
    return {c: int(v) for c, v in zip(AREA, rng.poisson(lam, len(AREA))) if v}


def test_planted_cluster_is_found_and_nothing_else():
    rng = np.random.default_rng(7)
    counts = _poisson_counts(rng, 2.0)
    far = h3.grid_disk(CENTRE, 12)
    planted_centre = sorted(h3.grid_ring(CENTRE, 6))[0]
    planted = set(h3.grid_disk(planted_centre, 1))
    for c in planted:
        counts[c] = counts.get(c, 0) + 12
    res = gi_star(AREA, counts)
    hot = {c for c, s in zip(res.cells, res.significant) if s}
    assert planted_centre in hot
    assert hot, "planted cluster not found"
    # every flagged cell touches the planted cluster (is within one ring of it)
    near = {n for c in planted for n in h3.grid_disk(c, 1)}
    assert hot <= near
    assert len(far) == len(AREA)


def test_uniform_random_data_gives_no_hotspot():
    """Under the null (uniform Poisson) the FDR-controlled rule almost never fires (BH bounds the chance of
    any false hotspot by q = 5 % per map); a plain z > 1.96 rule would flag cells on every map."""
    maps_with_false_hotspots = 0
    naive = 0
    for seed in range(20):
        res = gi_star(AREA, _poisson_counts(np.random.default_rng(seed), 3.0))
        maps_with_false_hotspots += bool(res.significant.any())
        naive += int((res.z > 1.96).sum() > 0)
    assert maps_with_false_hotspots <= 1
    assert naive == 20
    assert not gi_star(AREA, _poisson_counts(np.random.default_rng(0), 3.0)).significant.any()


def test_constant_counts_have_zero_z():
    res = gi_star(AREA, {c: 4 for c in AREA})
    assert np.allclose(res.z, 0) and not res.significant.any()


def test_gi_star_matches_direct_formula_for_one_cell():
    rng = np.random.default_rng(3)
    counts = _poisson_counts(rng, 2.5)
    res = gi_star(AREA, counts)
    x = np.sqrt(np.array([counts.get(c, 0) for c in res.cells], float) + 3 / 8)
    n = len(x)
    i = res.cells.index(CENTRE)
    nb = [res.cells.index(c) for c in h3.grid_disk(CENTRE, 1)]
    w = len(nb)
    s = np.sqrt((x ** 2).mean() - x.mean() ** 2)
    expected = (x[nb].sum() - x.mean() * w) / (s * np.sqrt((n * w - w ** 2) / (n - 1)))
    assert abs(res.z[i] - expected) < 1e-9


def test_benjamini_hochberg():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 8


def test_feature_collection_polygons_are_closed_lon_lat():
    res = gi_star(AREA, {CENTRE: 9})
    fc = to_feature_collection(res)
    by_cell = {f["id"]: f for f in fc["features"]}
    assert by_cell[CENTRE]["properties"]["count"] == 9
    # only the cell with incidents and significant cells are drawn, never the whole empty area
    assert set(by_cell) <= set(h3.grid_disk(CENTRE, 1))
    for f in fc["features"]:
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == 7
        assert 119 < ring[0][0] < 121 and 30 < ring[0][1] < 31
