"""The unit levels and the map layer of each — one table the services, the callbacks and the ui import.

A set's own levels are ``metrics.views.Hierarchy.levels`` (the root first); the map names a level's polygon layer
in the plural (``/api/geo/<layer>.json``, the ``geo-<layer>`` components).
"""
from __future__ import annotations

LEVEL_LAYER = {"city": "cities", "county": "counties", "town": "towns", "zone": "zones", "grid": "grids"}
LAYER_LEVEL = {layer: level for level, layer in LEVEL_LAYER.items()}
UPPER_LAYERS = ("cities", "counties")  # only a city's or province's set has them
