"""Geodata of the command centre: the district served (the root unit) > towns > zones > grids (+ hazard sites).

Import-light: heavy modules (geopandas, shapely) are imported lazily on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load_geodata", "Geodata", "GridLocator", "validate_layers", "Report"]

if TYPE_CHECKING:  # pragma: no cover
    from .io import Geodata, load_geodata
    from .locate import GridLocator
    from .validate import Report, validate_layers

_LAZY = {"load_geodata": ".io", "Geodata": ".io", "GridLocator": ".locate",
         "validate_layers": ".validate", "Report": ".validate"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        mod = importlib.import_module(_LAZY[name], __name__)
        value = getattr(mod, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
