"""Loading the committed geodata files (read-only, memoised per directory)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

FILES = {"district": "district.geojson", "towns": "towns.geojson", "zones": "zones.geojson",
         "grids": "grids.geojson", "hazards": "hazards.geojson"}
MULTI_FILES = {"cities": "cities.geojson", "counties": "counties.geojson"}  # only in a multi-county set
DEFAULT_GEODATA_DIR = Path(__file__).resolve().parents[2] / "geodata"


@dataclass(frozen=True, eq=False)
class Geodata:
    """Read-only bundle of the geodata layers (GeoDataFrames in EPSG:4326).

    The instance is shared by every caller of :func:`load_geodata` for the same directory:
    treat the frames as read-only (``.copy()`` before modifying).

    A multi-county set (``build --counties / --city / --province``) also has ``cities`` and ``counties``
    (``district`` is then its root: the city or the province); a single county's set has them ``None``."""
    directory: str
    district: object
    towns: object
    zones: object
    grids: object
    hazards: object
    cities: object = None
    counties: object = None

    @property
    def multi(self) -> bool:
        return self.counties is not None

    @cached_property
    def locator(self):
        from .locate import GridLocator
        return GridLocator(self.grids)


def read_layer(path: str | os.PathLike):
    import geopandas as gpd
    gdf = gpd.read_file(path)
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    elif gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs("EPSG:4326")
    return gdf


def read_layers(geodata_dir: str | os.PathLike) -> dict:
    d = Path(geodata_dir)
    out = {}
    for key, name in FILES.items():
        path = d / name
        if not path.exists():
            raise FileNotFoundError(f"geodata file missing: {path} (run `python -m dashboard.geodata build`)")
        out[key] = read_layer(path)
    return out


def read_multi_layers(geodata_dir: str | os.PathLike) -> dict:
    """The layers of ``geodata_dir`` with, when present (a multi-county set), ``cities`` and ``counties``."""
    out = read_layers(geodata_dir)
    for key, name in MULTI_FILES.items():
        path = Path(geodata_dir) / name
        if path.exists():
            out[key] = read_layer(path)
    return out


@lru_cache(maxsize=8)
def _load(abs_dir: str) -> Geodata:
    return Geodata(directory=abs_dir, **read_multi_layers(abs_dir))


def load_geodata(geodata_dir: str | os.PathLike | None = None) -> Geodata:
    """Load (once per absolute directory) the five layers of ``geodata_dir``
    (default: the repository's ``geodata/``)."""
    d = Path(geodata_dir) if geodata_dir is not None else DEFAULT_GEODATA_DIR
    return _load(str(d.resolve()))


def clear_cache() -> None:
    """Forget memoised layers (after an import rewrote the files)."""
    _load.cache_clear()
