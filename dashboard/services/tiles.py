"""The map's basemap (issue 12): which raster layers the pages draw, and the tiles of a local basemap file.

Two ways to a basemap, chosen by the settings:

- ``TILE_URL`` / ``TILE_URL_DARK``: URL templates of tile hosts the browser fetches from (the default, OSM/CARTO);
- ``TILE_FILE`` / ``TILE_FILE_DARK``: an MBTiles or PMTiles file that this app serves from its own origin at
  ``/tiles/base|dark/{z}/{x}/{y}.<ext>`` (the intranet case). Then no tile host is ever named to the browser.

:func:`open_files` (start-up) opens the files and refuses a bad one; :func:`basemaps` gives the pages their layers
(:class:`dashboard.domain.basemap.Basemap`); :func:`tile` answers one tile request for ``api/tiles``.
"""
from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..domain.basemap import Basemap
from ..store import tiles as tile_store
from ..store.tiles import TileFileError

NAMES = ("base", "dark")
MAP_MAX_ZOOM = 19  # dashboard.ui.map's map: beyond a file's deepest zoom Leaflet scales that zoom's tiles up
URL_MAX_NATIVE_ZOOM = 18  # what the public tile hosts (OSM, CARTO) serve
MAX_COORD_DIGITS = 10  # 2**30 has 10 digits: a longer number is no tile of any zoom we serve
EXTENSIONS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp"}

__all__ = ["NAMES", "Tile", "TileRequestError", "TileFileError", "open_files", "basemaps", "tile"]


class TileRequestError(ValueError):
    """A malformed tile address (``status`` 400) or one the basemap does not have (404)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class Tile:
    data: bytes | None  # None: the file has no tile there
    content_type: str
    etag: str


def open_files(settings) -> Mapping[str, object]:
    """``{"base": reader, "dark": reader}`` for ``TILE_FILE`` / ``TILE_FILE_DARK`` (empty without them); a file that
    cannot be served raises :class:`TileFileError` naming the setting, so the app does not start with a blank map."""
    if settings.tile_file_dark and not settings.tile_file:
        raise TileFileError("TILE_FILE_DARK is set without TILE_FILE: give the standard basemap file too "
                            "/ 设置了 TILE_FILE_DARK 但未设置 TILE_FILE")
    readers = {}
    for name, setting, path in (("base", "TILE_FILE", settings.tile_file),
                                ("dark", "TILE_FILE_DARK", settings.tile_file_dark)):
        if not path:
            continue
        try:
            readers[name] = tile_store.open_tiles(path)
        except TileFileError as e:
            raise TileFileError(f"{setting}: {e}") from None
    return MappingProxyType(readers)


def _readers() -> Mapping[str, object]:
    from ..context import services

    return services().tiles


def clean_attribution(text: str) -> str:
    """A file's attribution as safe text for Leaflet's attribution control (which sets HTML): entities decoded,
    tags dropped, the rest escaped."""
    text = re.sub(r"<[^>]*>", "", html.unescape(text or ""))
    return html.escape(" ".join(text.split()), quote=False)


def _file_basemap(name: str, reader, fallback_attribution: str) -> Basemap:
    info = reader.info
    bounds = None
    if info.bounds is not None:
        w, s, e, n = info.bounds
        bounds = ((s, w), (n, e))
    return Basemap(key=name, url=f"/tiles/{name}/{{z}}/{{x}}/{{y}}.{info.format}?v={info.signature}",
                   attribution=clean_attribution(info.attribution) or fallback_attribution,
                   min_zoom=info.min_zoom, max_zoom=max(MAP_MAX_ZOOM, info.max_zoom), max_native_zoom=info.max_zoom,
                   bounds=bounds)


def basemaps(settings, readers: Mapping[str, object] | None = None) -> tuple[Basemap, ...]:
    """The raster basemaps a map offers (the standard one first; none when tiles are off). With ``TILE_FILE`` only
    this app's ``/tiles/…`` URLs, whatever ``TILE_URL`` says."""
    if settings.tile_file:
        readers = _readers() if readers is None else readers
        return tuple(_file_basemap(name, readers[name], settings.tile_attribution)
                     for name in NAMES if name in readers)
    if not settings.tiles_enabled:
        return ()
    out = [Basemap(key="base", url=settings.tile_url, attribution=settings.tile_attribution,
                   max_zoom=MAP_MAX_ZOOM, max_native_zoom=URL_MAX_NATIVE_ZOOM)]
    if settings.tile_url_dark and settings.tile_url_dark.lower() != "none":
        out.append(Basemap(key="dark", url=settings.tile_url_dark, attribution=settings.tile_attribution,
                           max_zoom=MAP_MAX_ZOOM, max_native_zoom=URL_MAX_NATIVE_ZOOM))
    return tuple(out)


def _coordinate(value: str, field: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > MAX_COORD_DIGITS:
        raise TileRequestError(400, "invalid_value", f"{field} must be a non-negative integer of at most "
                               f"{MAX_COORD_DIGITS} digits, not {value[:20]!r}", field)
    return int(value)


def tile(name: str, z: str, x: str, y: str, ext: str) -> Tile:
    """The tile ``name/z/x/y.ext`` of the local basemap (XYZ scheme, as Leaflet asks). A malformed address is a
    400; an unknown basemap, a wrong extension or an address outside the pyramid a 404; a tile the file lacks comes
    back with ``data=None`` (the route answers 404)."""
    readers = _readers()
    if name not in readers:
        known = ", ".join(n for n in NAMES if n in readers) or "none: TILE_FILE is not set"
        raise TileRequestError(404, "not_found", f"no basemap file {name[:20]!r} (served: {known})", "name")
    zi, xi, yi = _coordinate(z, "z"), _coordinate(x, "x"), _coordinate(y, "y")
    info = readers[name].info
    if EXTENSIONS.get(ext.lower()) != info.format:
        raise TileRequestError(404, "not_found", f"this basemap's tiles are .{info.format}", "ext")
    if not tile_store.valid_address(zi, xi, yi):
        raise TileRequestError(404, "not_found", f"{zi}/{xi}/{yi} is no tile of the pyramid "
                               f"(z <= {tile_store.MAX_ZOOM}, x and y below 2^z)", "z")
    data = readers[name].get(zi, xi, yi)
    # the ETag names the content (so a replaced file's changed tiles are fetched again) or its absence in this file
    tag = hashlib.sha1(data).hexdigest()[:24] if data is not None else f"none-{info.signature}"
    # a mixed tree (ocean png, land jpg) is typed tile by tile
    kind = tile_store.sniff_format(data) if data is not None else None
    return Tile(data=data, content_type=tile_store.CONTENT_TYPES.get(kind, info.content_type), etag=tag)
