"""Small raster basemaps over Wuxing for the offline-basemap tests (issue 12): PNG/JPEG tiles drawn with Pillow
(each tile a different colour with its address written on it), as a z/x/y tree, an MBTiles file written directly
with sqlite3 (TMS rows, as the spec says; not through the code under test) and a PMTiles archive (``pmtiles``)."""
from __future__ import annotations

import io
import math
import sqlite3
from pathlib import Path

WUXING = (119.861112, 30.613609, 120.36701, 30.964271)  # district bounds (west, south, east, north)
ZOOMS = (9, 10, 11, 12)


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def addresses(zooms=ZOOMS, bounds=WUXING) -> list[tuple[int, int, int]]:
    """Every XYZ tile (z, x, y) over ``bounds`` at ``zooms``."""
    w, s, e, n = bounds
    out = []
    for z in zooms:
        x0, y0 = lonlat_to_tile(w, n, z)
        x1, y1 = lonlat_to_tile(e, s, z)
        out += [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return out


def image(z: int, x: int, y: int, fmt: str = "png") -> bytes:
    from PIL import Image, ImageDraw

    colour = ((z * 53 + x * 31) % 200 + 40, (x * 17 + y * 29) % 200 + 40, (y * 41 + z * 7) % 200 + 40)
    img = Image.new("RGB", (256, 256), colour)
    ImageDraw.Draw(img).text((10, 10), f"{z}/{x}/{y}", fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format={"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[fmt])
    return buf.getvalue()


def tiles(zooms=ZOOMS, fmt: str = "png") -> dict[tuple[int, int, int], bytes]:
    """{(z, x, y) XYZ: image bytes} over Wuxing."""
    return {a: image(*a, fmt=fmt) for a in addresses(zooms)}


def write_tree(root: Path, tile_map: dict, fmt: str = "png", scheme: str = "xyz") -> Path:
    """``root/<z>/<x>/<y>.<fmt>`` (``scheme="tms"``: rows counted from the south, like gdal2tiles)."""
    for (z, x, y), data in tile_map.items():
        row = y if scheme == "xyz" else 2 ** z - 1 - y
        path = root / str(z) / str(x) / f"{row}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_mbtiles(path: Path, tile_map: dict, fmt: str | None = "png", **metadata) -> Path:
    """An MBTiles file of ``tile_map`` (XYZ keys, stored with TMS rows) with ``metadata`` (+ format, zooms)."""
    zs = [z for z, _, _ in tile_map]
    meta = {"name": "wuxing-test", "type": "baselayer", "version": "1.0",
            "minzoom": str(min(zs)) if zs else "0", "maxzoom": str(max(zs)) if zs else "0",
            "bounds": ",".join(str(v) for v in WUXING)}
    if fmt is not None:
        meta["format"] = fmt
    meta.update({k: v for k, v in metadata.items() if v is not None})
    for k in [k for k, v in metadata.items() if v is None]:
        meta.pop(k, None)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    conn.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", meta.items())
    conn.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)",
                     [(z, x, 2 ** z - 1 - y, data) for (z, x, y), data in tile_map.items()])
    conn.commit()
    conn.close()
    return path


def write_pmtiles(path: Path, tile_map: dict, fmt: str = "png", attribution: str = "") -> Path:
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    w, s, e, n = WUXING
    with write(str(path)) as writer:
        for tid, data in sorted((zxy_to_tileid(*a), d) for a, d in tile_map.items()):
            writer.write_tile(tid, data)
        zs = [z for z, _, _ in tile_map]
        writer.finalize({
            "tile_type": {"png": TileType.PNG, "jpg": TileType.JPEG, "webp": TileType.WEBP}[fmt],
            "tile_compression": Compression.NONE, "min_zoom": min(zs), "max_zoom": max(zs),
            "min_lon_e7": int(w * 1e7), "min_lat_e7": int(s * 1e7), "max_lon_e7": int(e * 1e7),
            "max_lat_e7": int(n * 1e7), "center_zoom": min(zs), "center_lon_e7": int((w + e) / 2 * 1e7),
            "center_lat_e7": int((s + n) / 2 * 1e7),
        }, {"name": "wuxing-pm", "attribution": attribution})
    return path
