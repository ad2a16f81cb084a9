"""Incident hotspots on H3 hexagons, with the Getis-Ord Gi* statistic (pure: points in, cells out).

Method (documented in docs/kpis.md):
- Study area: every H3 cell (resolution 8, ~0.74 km²) whose centre lies in the district, plus any cell that
  holds an incident; empty cells count as zero (they are part of the "expected" background).
- Counts are variance-stabilised first (Anscombe: √(x + 3/8)): raw Poisson counts have a heavy right tail that
  makes the normal z-score over-confident on sparse data.
- Weights: binary contiguity, w_ij = 1 for j in the cell's k-ring (k=1: itself and its 6 neighbours).
- Gi*_i = (Σ_j w_ij x_j − x̄ Σ_j w_ij) / (S √((n Σ_j w_ij² − (Σ_j w_ij)²) / (n − 1))), with x̄ the mean and
  S = √(Σ x_j² / n − x̄²) over all n cells (Getis & Ord 1992; Ord & Getis 1995). Gi* is a z-score.
- Significance: one-sided p = 1 − Φ(z); hot spots are cells whose p passes the Benjamini–Hochberg false-discovery
  control at q = 0.05 (so uniform random data gives none, where a plain z > 1.96 would flag ~5 % of cells by chance).
  A hot spot also needs at least 5 incidents in its neighbourhood (sparse maps otherwise flag single events).
  Confidence classes 99 % (z ≥ 2.576), 95 % (z ≥ 1.960), 90 % (z ≥ 1.645) among the significant cells.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import h3
import numpy as np

RESOLUTION = 8
FDR_Q = 0.05
MIN_LOCAL = 5  # a hot spot needs at least this many incidents in its neighbourhood


@dataclass(frozen=True)
class HotspotResult:
    cells: list[str]
    counts: np.ndarray
    z: np.ndarray
    p: np.ndarray
    significant: np.ndarray  # bool
    confidence: np.ndarray  # 0, 90, 95, 99


def cells_for_area(polygon_geojson: dict, resolution: int = RESOLUTION) -> list[str]:
    """H3 cells whose centres fall inside a (Multi)Polygon given as a GeoJSON geometry mapping."""
    shape = h3.geo_to_h3shape(polygon_geojson)
    return sorted(h3.h3shape_to_cells(shape, resolution))


def count_points(lons, lats, resolution: int = RESOLUTION) -> dict[str, int]:
    counts: dict[str, int] = {}
    for lon, lat in zip(lons, lats):
        cell = h3.latlng_to_cell(float(lat), float(lon), resolution)
        counts[cell] = counts.get(cell, 0) + 1
    return counts


def _norm_sf(z: np.ndarray) -> np.ndarray:
    return np.array([0.5 * math.erfc(v / math.sqrt(2)) for v in z], dtype=float)


def benjamini_hochberg(p: np.ndarray, q: float = FDR_Q) -> np.ndarray:
    """Boolean mask of discoveries under the Benjamini–Hochberg procedure."""
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    thresholds = q * (np.arange(1, n + 1) / n)
    passed = p[order] <= thresholds
    mask = np.zeros(n, dtype=bool)
    if passed.any():
        k = np.nonzero(passed)[0].max()
        mask[order[: k + 1]] = True
    return mask


def gi_star(cells: list[str], counts: dict[str, int], k: int = 1, q: float = FDR_Q,
            min_local: int = MIN_LOCAL) -> HotspotResult:
    """Getis-Ord Gi* for every cell of the study area (``cells`` ∪ cells with counts)."""
    universe = sorted(set(cells) | set(counts))
    n = len(universe)
    raw = np.array([counts.get(c, 0) for c in universe], dtype=float)
    x = np.sqrt(raw + 3.0 / 8.0)  # Anscombe transform: Poisson counts -> ~normal, so z has normal tails
    if n < 3:
        zeros = np.zeros(n)
        return HotspotResult(universe, raw, zeros, np.ones(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=int))
    index = {c: i for i, c in enumerate(universe)}
    mean = x.mean()
    s = float(np.sqrt(((x - mean) ** 2).mean()))
    z = np.zeros(n)
    local_raw = np.zeros(n)
    if s > 1e-9:
        for i, cell in enumerate(universe):
            neighbours = [index[c] for c in h3.grid_disk(cell, k) if c in index]
            w_sum = len(neighbours)  # binary weights: Σw = Σw² = number of neighbours in the area
            local = x[neighbours].sum()
            local_raw[i] = raw[neighbours].sum()
            denom = s * math.sqrt((n * w_sum - w_sum ** 2) / (n - 1))
            z[i] = (local - mean * w_sum) / denom if denom > 0 else 0.0
    p = _norm_sf(z)
    significant = benjamini_hochberg(p, q) & (z > 0) & (local_raw >= min_local)
    confidence = np.where(~significant, 0, np.where(z >= 2.576, 99, np.where(z >= 1.960, 95, 90)))
    return HotspotResult(universe, raw, z, p, significant, confidence)


def to_feature_collection(result: HotspotResult, min_count: int = 1) -> dict:
    """Cells with incidents (and every significant cell) as GeoJSON polygons with count, z, p, confidence."""
    features = []
    for i, cell in enumerate(result.cells):
        if result.counts[i] < min_count and not result.significant[i]:
            continue
        ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(cell)]
        ring.append(ring[0])
        features.append({
            "type": "Feature",
            "id": cell,
            "properties": {"cell": cell, "count": int(result.counts[i]), "z": round(float(result.z[i]), 3),
                           "p": float(result.p[i]), "hot": bool(result.significant[i]),
                           "confidence": int(result.confidence[i])},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })
    return {"type": "FeatureCollection", "features": features}
