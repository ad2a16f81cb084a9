"""What a map's basemap layer is, as plain values (the services build them, ``ui.map`` draws them)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Basemap:
    """One raster basemap: ``key`` ``"base"`` (the standard map) or ``"dark"``; ``url`` a Leaflet URL template
    (another host's, or this app's ``/tiles/<key>/{z}/{x}/{y}.<ext>`` for a local file); ``max_native_zoom``: the
    deepest zoom the source has (Leaflet scales its tiles up beyond); ``bounds`` ``[[south, west], [north, east]]``:
    no tile is asked outside; ``None``: no limit."""

    key: str
    url: str
    attribution: str
    min_zoom: int = 0
    max_zoom: int = 19
    max_native_zoom: int = 18
    min_native_zoom: int | None = None
    bounds: tuple | None = None
