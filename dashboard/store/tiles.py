"""Local raster basemap files (issue 12, "offline basemap"): MBTiles (SQLite) and PMTiles, read-only.

On an intranet without internet the map's tiles come from a file the operator names (``TILE_FILE``,
``TILE_FILE_DARK``); the app serves them from its own origin (``dashboard/api/tiles.py``).

- :func:`open_tiles` opens a file by its content (``SQLite format 3`` → MBTiles, ``PMTiles`` → PMTiles) and
  checks it at once: a missing, unreadable or foreign file raises :class:`TileFileError` with a message that
  names the file and the fault, so the app refuses to start instead of drawing a blank map.
- A reader's :attr:`~MBTilesReader.info` (format, zooms, bounds, attribution …) is read once; ``get(z, x, y)``
  returns the tile's bytes in the XYZ scheme Leaflet asks in (MBTiles stores TMS rows: the row is flipped here), or
  ``None`` when the file has no such tile.
- MBTiles is opened ``file:…?mode=ro`` (never written), one connection per thread and process (a gunicorn worker
  forked after start opens its own); PMTiles through a read-only memory map (``pmtiles``, pure Python).
- :func:`pack_directory` packs a ``z/x/y.png`` tree (tile downloaders, ``gdal2tiles``, a 天地图 intranet mirror)
  into a new MBTiles file (``python -m dashboard tiles pack``); :func:`count_tiles` counts a file's tiles
  (``tiles info``).
"""
from __future__ import annotations

import functools
import math
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

FORMATS = ("png", "jpg", "webp")  # raster formats served (the MBTiles metadata ``format``; ``jpeg`` is ``jpg``)
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
MAX_ZOOM = 30  # deeper than any raster basemap; keeps 2**z within an SQLite integer
WEB_MERCATOR_LAT = 85.0511287798
SQLITE_MAGIC = b"SQLite format 3\x00"
PMTILES_MAGIC = b"PMTiles"


class TileFileError(ValueError):
    """A basemap file that cannot be served: missing, unreadable, not MBTiles/PMTiles, vector tiles, no tiles …"""


@dataclass(frozen=True)
class TileInfo:
    """What a basemap file says about itself (read once when it is opened)."""

    path: str
    kind: str  # "mbtiles" | "pmtiles"
    format: str  # one of FORMATS
    name: str
    attribution: str  # as written in the file (may be empty); the service cleans it and falls back to settings
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float] | None  # (west, south, east, north) in degrees, WGS84
    signature: str  # changes when the file changes (size and modification time): the tile URLs' version

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def valid_address(z: int, x: int, y: int) -> bool:
    """Is ``z/x/y`` a tile of the XYZ pyramid (0 <= z <= MAX_ZOOM, 0 <= x, y < 2**z)?"""
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


def _normal_format(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return "jpg" if value == "jpeg" else value or None


def _signature(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size:x}{int(st.st_mtime):x}"


def _parse_bounds(value) -> tuple[float, float, float, float] | None:
    try:
        parts = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        return None
    if len(parts) != 4 or not all(math.isfinite(v) for v in parts):
        return None
    w, s, e, n = parts
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        return None
    return w, s, e, n


def sniff_format(data: bytes) -> str | None:
    """The raster format of a tile by its first bytes (``png`` / ``jpg`` / ``webp``), or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def open_tiles(path: str | os.PathLike):
    """A reader of the basemap file ``path`` (:class:`MBTilesReader` or :class:`PMTilesReader`), checked now."""
    p = Path(path).expanduser()
    if not p.exists():
        raise TileFileError(f"basemap file {p} does not exist / 底图文件不存在")
    if not p.is_file():
        raise TileFileError(f"basemap file {p} is not a file / 底图路径不是文件")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise TileFileError(f"basemap file {p} cannot be read ({e.strerror or e}) / 底图文件无法读取") from None
    if head.startswith(SQLITE_MAGIC):
        return MBTilesReader(p)
    if head.startswith(PMTILES_MAGIC):
        return PMTilesReader(p)
    raise TileFileError(f"basemap file {p} is neither MBTiles (SQLite) nor PMTiles / 底图文件不是 MBTiles 或 PMTiles")


# ------------------------------------------------------------------------------------------ MBTiles
class MBTilesReader:
    """An MBTiles file (https://github.com/mapbox/mbtiles-spec), read-only: ``tiles(zoom_level, tile_column,
    tile_row, tile_data)`` with TMS rows (row 0 at the south), ``metadata(name, value)``."""

    kind = "mbtiles"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        self._local = threading.local()  # one connection per thread (sqlite3 connections are not shared)
        try:
            self.info = self._read_info()
        except sqlite3.DatabaseError as e:
            raise TileFileError(f"basemap file {self.path} is not a readable MBTiles file ({e}) / 底图文件无法读取"
                                ) from None

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # a forked worker never reuses its parent's connection
            local.conn = sqlite3.connect(self._uri, uri=True, check_same_thread=True)
            local.pid = os.getpid()
        return local.conn

    def _read_info(self) -> TileInfo:
        conn = sqlite3.connect(self._uri, uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
            missing = {"tiles", "metadata"} - names
            if missing:
                raise TileFileError(f"basemap file {self.path} is not MBTiles: no {' or '.join(sorted(missing))} "
                                    "table / 底图文件不是 MBTiles")
            meta = {str(k): ("" if v is None else str(v)) for k, v in conn.execute("SELECT name, value FROM metadata")}
            fmt = _normal_format(meta.get("format"))
            first = conn.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
            if first is None:
                raise TileFileError(f"basemap file {self.path} holds no tiles / 底图文件中没有瓦片")
            if fmt is None:  # the spec requires it; some tools leave it out: the tiles tell
                fmt = sniff_format(bytes(first[0] or b""))
            if fmt == "pbf" or fmt not in FORMATS:
                raise TileFileError(f"basemap file {self.path} holds {fmt or 'unknown'} tiles; only raster "
                                    f"{'/'.join(FORMATS)} tiles can be served / 仅支持栅格瓦片 (png/jpg/webp)")
            min_zoom, max_zoom = self._zoom_range(meta, conn)
            return TileInfo(path=str(self.path), kind=self.kind, format=fmt, name=meta.get("name", "").strip(),
                            attribution=meta.get("attribution", "").strip(), min_zoom=min_zoom, max_zoom=max_zoom,
                            bounds=_parse_bounds(meta.get("bounds")), signature=_signature(self.path))
        finally:
            conn.close()

    def _zoom_range(self, meta: dict, conn: sqlite3.Connection) -> tuple[int, int]:
        """minzoom/maxzoom of the metadata, or (optional in the spec) of the tiles themselves."""
        try:
            lo, hi = int(meta["minzoom"]), int(meta["maxzoom"])
            if 0 <= lo <= hi <= MAX_ZOOM:
                return lo, hi
        except (KeyError, ValueError):
            pass
        lo, hi = conn.execute("SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles").fetchone()
        try:
            lo, hi = int(lo), int(hi)
        except (TypeError, ValueError):
            lo = hi = -1
        if not 0 <= lo <= hi <= MAX_ZOOM:
            raise TileFileError(f"basemap file {self.path} has no usable zoom levels / 底图缩放级别无效")
        return lo, hi

    def get(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ ``z/x/y`` (row flipped to TMS), or None."""
        if not valid_address(z, x, y):
            return None
        row = self._conn().execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y)).fetchone()
        return bytes(row[0]) if row is not None and row[0] is not None else None

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM tiles").fetchone()[0]


# ------------------------------------------------------------------------------------------ PMTiles
class PMTilesReader:
    """A PMTiles v3 archive (https://github.com/protomaps/PMTiles), raster tiles, through a read-only memory map.
    The root directory is parsed once; leaf directories are kept in a small LRU."""

    kind = "pmtiles"
    _TYPES = {2: "png", 3: "jpg", 4: "webp"}  # pmtiles.tile.TileType values

    def __init__(self, path: Path):
        import mmap

        from pmtiles.tile import Compression, deserialize_directory, deserialize_header

        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self.header = deserialize_header(self._map[0:127])
        except Exception as e:  # noqa: BLE001 - OSError, an empty file (mmap), the library's own exception classes
            raise TileFileError(f"basemap file {self.path} is not a readable PMTiles v3 archive "
                                f"({type(e).__name__}) / 底图文件无法读取") from None
        h = self.header
        fmt = self._TYPES.get(h["tile_type"].value)
        if fmt is None:
            raise TileFileError(f"basemap file {self.path} holds {h['tile_type'].name} tiles; only raster "
                                f"{'/'.join(FORMATS)} tiles can be served / 仅支持栅格瓦片 (png/jpg/webp)")
        if h["internal_compression"] not in (Compression.GZIP, Compression.NONE):
            raise TileFileError(f"basemap file {self.path}: directory compression {h['internal_compression'].name} "
                                "is not supported (gzip only) / 不支持的压缩方式")
        if h["tile_compression"] not in (Compression.NONE, Compression.UNKNOWN, Compression.GZIP):
            raise TileFileError(f"basemap file {self.path}: tile compression {h['tile_compression'].name} is not "
                                "supported / 不支持的瓦片压缩方式")
        self._gzip_tiles = h["tile_compression"] == Compression.GZIP
        self._deserialize = deserialize_directory
        try:
            self._root = deserialize_directory(self._bytes(h["root_offset"], h["root_length"]))
            meta = self._metadata()
        except Exception as e:  # noqa: BLE001 - a truncated or corrupt archive
            raise TileFileError(f"basemap file {self.path} is a damaged PMTiles archive ({type(e).__name__}) "
                                "/ 底图文件已损坏") from None
        if not self._root:
            raise TileFileError(f"basemap file {self.path} holds no tiles / 底图文件中没有瓦片")
        self._leaf = functools.lru_cache(maxsize=64)(self._read_leaf)
        bounds = _parse_bounds([h["min_lon_e7"] / 1e7, h["min_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7,
                                h["max_lat_e7"] / 1e7])
        self.info = TileInfo(path=str(self.path), kind=self.kind, format=fmt, name=str(meta.get("name") or "").strip(),
                             attribution=str(meta.get("attribution") or "").strip(),
                             min_zoom=min(h["min_zoom"], MAX_ZOOM), max_zoom=min(h["max_zoom"], MAX_ZOOM),
                             bounds=bounds, signature=_signature(self.path))

    def _bytes(self, offset: int, length: int) -> bytes:
        return self._map[offset:offset + length]

    def _metadata(self) -> dict:
        import gzip
        import json

        from pmtiles.tile import Compression

        raw = self._bytes(self.header["metadata_offset"], self.header["metadata_length"])
        if not raw:
            return {}
        if self.header["internal_compression"] == Compression.GZIP:
            raw = gzip.decompress(raw)
        meta = json.loads(raw)
        return meta if isinstance(meta, dict) else {}

    def _read_leaf(self, offset: int, length: int):
        return self._deserialize(self._bytes(self.header["leaf_directory_offset"] + offset, length))

    def get(self, z: int, x: int, y: int) -> bytes | None:
        from pmtiles.tile import find_tile, zxy_to_tileid

        if not valid_address(z, x, y):
            return None
        tile_id = zxy_to_tileid(z, x, y)
        directory = self._root
        for _ in range(4):  # the spec's maximum directory depth
            entry = find_tile(directory, tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                data = self._bytes(self.header["tile_data_offset"] + entry.offset, entry.length)
                if self._gzip_tiles:
                    import gzip

                    data = gzip.decompress(data)
                return data
            directory = self._leaf(entry.offset, entry.length)
        return None

    def count(self) -> int:
        return int(self.header["addressed_tiles_count"])


def count_tiles(reader) -> int:
    """How many tiles the file holds (MBTiles: counted, which reads the whole index; PMTiles: its header)."""
    return reader.count()


# ------------------------------------------------------------------------------------------ packing
TILE_PATH = re.compile(r"^(\d{1,2})/(\d{1,10})/(\d{1,10})(?:\.(png|jpe?g|webp))?$", re.I)


@dataclass(frozen=True)
class PackReport:
    out: str
    tiles: int
    ignored: int  # other files in the tree (gdal2tiles' html/xml, thumbnails …)
    format: str
    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float]


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the XYZ tile ``z/x/y`` in degrees (Web Mercator pyramid)."""
    n = 1 << z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def pack_directory(src: str | os.PathLike, out: str | os.PathLike, *, name: str = "", attribution: str = "",
                   scheme: str = "xyz", force: bool = False) -> PackReport:
    """Pack the tiles of the tree ``src/<z>/<x>/<y>.<png|jpg|jpeg|webp>`` into a new MBTiles file ``out``.

    ``scheme``: how the tree counts rows — ``xyz`` (row 0 at the north: OSM/Google/天地图 style, most downloaders,
    ``gdal2tiles --xyz``) or ``tms`` (row 0 at the south: ``gdal2tiles`` without ``--xyz``). The file is written to a
    temporary name beside ``out`` and renamed at the end, so a failure leaves nothing half-written. Files that are no
    tile path are ignored and counted; a tile path whose content is no PNG/JPEG/WebP image is refused."""
    if scheme not in ("xyz", "tms"):
        raise TileFileError(f"scheme must be xyz or tms, not {scheme!r}")
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise TileFileError(f"{src} is not a directory of z/x/y tiles")
    if out.exists() and not force:
        raise TileFileError(f"{out} exists (give --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    if tmp.exists():
        tmp.unlink()
    formats: dict[str, int] = {}
    ignored = 0
    zooms: dict[int, list[int]] = {}  # z -> [min x, max x, min y, max y] (XYZ)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript("""
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
            CREATE TABLE metadata (name TEXT, value TEXT);
            CREATE UNIQUE INDEX name ON metadata (name);
            CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
            CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
        """)
        n = 0
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for fname in sorted(files):
                rel = Path(root, fname).relative_to(src).as_posix()
                m = TILE_PATH.match(rel)
                if m is None:
                    ignored += 1
                    continue
                z, x, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
                if not valid_address(z, x, y):
                    raise TileFileError(f"{rel}: not a tile of zoom {z} (x and y must be below 2^z)")
                data = Path(root, fname).read_bytes()
                fmt = sniff_format(data)
                if fmt is None:
                    raise TileFileError(f"{rel}: not a PNG, JPEG or WebP image")
                formats[fmt] = formats.get(fmt, 0) + 1
                xyz_y = y if scheme == "xyz" else (1 << z) - 1 - y
                box = zooms.setdefault(z, [x, x, xyz_y, xyz_y])
                box[:] = [min(box[0], x), max(box[1], x), min(box[2], xyz_y), max(box[3], xyz_y)]
                conn.execute("INSERT OR REPLACE INTO tiles VALUES (?, ?, ?, ?)",
                             (z, x, (1 << z) - 1 - xyz_y, sqlite3.Binary(data)))
                n += 1
        if n == 0:
            raise TileFileError(f"no tiles under {src} (expected <z>/<x>/<y>.png|jpg|webp)")
        fmt = max(formats, key=formats.get)  # a mixed tree (ocean png, land jpg) is served by content sniffing
        lo, hi = min(zooms), max(zooms)
        boxes = []
        for z, (x0, x1, y0, y1) in zooms.items():  # the union of every zoom's extent (never cut a coarse zoom off)
            w, _, _, n_ = tile_bounds(z, x0, y0)
            _, s, e, _ = tile_bounds(z, x1, y1)
            boxes.append((w, s, e, n_))
        bounds = (round(min(b[0] for b in boxes), 6), round(max(min(b[1] for b in boxes), -WEB_MERCATOR_LAT), 6),
                  round(max(b[2] for b in boxes), 6), round(min(max(b[3] for b in boxes), WEB_MERCATOR_LAT), 6))
        centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
        meta = {"name": name or src.name, "format": fmt, "type": "baselayer", "version": "1.0",
                "description": f"packed from {src.name} ({scheme})", "minzoom": str(lo), "maxzoom": str(hi),
                "bounds": ",".join(f"{v:.6f}" for v in bounds),
                "center": f"{centre[0]:.6f},{centre[1]:.6f},{lo}"}
        if attribution:
            meta["attribution"] = attribution
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(meta.items()))
        conn.commit()
        conn.close()
        os.replace(tmp, out)
    except BaseException:
        conn.close()
        if tmp.exists():
            tmp.unlink()
        raise
    return PackReport(out=str(out), tiles=n, ignored=ignored, format=fmt, min_zoom=lo, max_zoom=hi, bounds=bounds)
