"""Point -> grid lookup (vectorised with a shapely STRtree)."""
from __future__ import annotations

import numpy as np
import shapely

__all__ = ["GridLocator"]


class GridLocator:
    """Locate WGS84 points in grids.

    ``grids_gdf`` needs ``code`` and, for :meth:`zone_of` / :meth:`town_of`, ``zone_code`` and
    ``town_code`` columns.  Points on a shared edge go to the grid with the lowest row index
    (deterministic); points outside every grid give ``None``.
    """

    def __init__(self, grids_gdf):
        self._geoms = np.asarray(grids_gdf.geometry.values, dtype=object)
        self._codes = np.asarray(grids_gdf["code"].astype(str).to_numpy(), dtype=object)
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)
        cols = grids_gdf.columns
        self._zone = (dict(zip(self._codes, grids_gdf["zone_code"].astype(str)))
                      if "zone_code" in cols else {})
        self._town = (dict(zip(self._codes, grids_gdf["town_code"].astype(str)))
                      if "town_code" in cols else {})

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def codes(self) -> np.ndarray:
        return self._codes.copy()

    def locate_indices(self, lons, lats) -> np.ndarray:
        """Row index of the containing grid for each point, -1 outside."""
        lons = np.atleast_1d(np.asarray(lons, dtype=float))
        lats = np.atleast_1d(np.asarray(lats, dtype=float))
        lons, lats = np.broadcast_arrays(lons, lats)
        lons = lons.ravel()
        lats = lats.ravel()
        out = np.full(lons.shape[0], -1, dtype=np.int64)
        if lons.size == 0:
            return out
        ok = np.isfinite(lons) & np.isfinite(lats)
        pts = shapely.points(lons[ok], lats[ok])
        # tree geometries are prepared polygons; predicate evaluated as intersects(tree_geom, pt)
        idx_pt, idx_grid = self._tree.query(pts, predicate="within")
        # "within" excludes points exactly on a boundary; add those with "intersects"
        # on the (few) points not found.
        found = np.zeros(pts.shape[0], dtype=bool)
        found[idx_pt] = True
        if not found.all():
            rest = np.nonzero(~found)[0]
            i2, g2 = self._tree.query(pts[rest], predicate="intersects")
            idx_pt = np.concatenate([idx_pt, rest[i2]])
            idx_grid = np.concatenate([idx_grid, g2])
        best = np.full(pts.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, idx_pt, idx_grid)
        best[best == np.iinfo(np.int64).max] = -1
        out[np.nonzero(ok)[0]] = best
        return out

    def locate_many(self, lons, lats) -> np.ndarray:
        """Grid code (object dtype) per point, ``None`` outside."""
        idx = self.locate_indices(lons, lats)
        res = np.empty(idx.shape[0], dtype=object)
        hit = idx >= 0
        res[hit] = self._codes[idx[hit]]
        return res

    def locate(self, lon, lat) -> str | None:
        return self.locate_many([lon], [lat])[0]

    def zone_of(self, grid_code: str) -> str | None:
        return self._zone.get(grid_code)

    def town_of(self, grid_code: str) -> str | None:
        return self._town.get(grid_code)
