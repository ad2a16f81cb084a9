"""The local basemap files (issue 12, dashboard/store/tiles.py): MBTiles rows flipped from TMS, metadata read once,
missing tiles, refusals with a clear message, read-only and thread-safe reading, PMTiles through the same interface,
and packing a z/x/y tree into MBTiles."""
from __future__ import annotations

import sqlite3
import struct
import threading

import pytest

from dashboard.store import tiles as st
from tests import tiles_fixture as tf


@pytest.fixture(scope="module")
def tile_map():
    return tf.tiles()


@pytest.fixture(scope="module")
def mbtiles(tmp_path_factory, tile_map):
    return tf.write_mbtiles(tmp_path_factory.mktemp("mb") / "wuxing.mbtiles", tile_map, attribution="© 测试底图")


# ------------------------------------------------------------------------------------------ MBTiles
def test_tms_rows_are_flipped_to_xyz(tmp_path):
    """One tile stored at TMS row 1 of zoom 3 (row 0 = south) is XYZ row 8 - 1 - 1 = 6 (row 0 = north)."""
    path = tmp_path / "one.mbtiles"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE metadata (name TEXT, value TEXT);"
                       "CREATE TABLE tiles (zoom_level INT, tile_column INT, tile_row INT, tile_data BLOB);"
                       "INSERT INTO metadata VALUES ('format', 'png');")
    png = tf.image(3, 5, 6)
    conn.execute("INSERT INTO tiles VALUES (3, 5, 1, ?)", (png,))
    conn.commit()
    conn.close()
    reader = st.open_tiles(path)
    assert reader.get(3, 5, 6) == png
    assert reader.get(3, 5, 1) is None  # the TMS row read as if it were XYZ: not there
    assert reader.get(3, 4, 6) is None


def test_every_fixture_tile_comes_back_at_its_xyz_address(mbtiles, tile_map):
    reader = st.open_tiles(mbtiles)
    assert reader.kind == "mbtiles"
    for address, data in tile_map.items():
        assert reader.get(*address) == data, address
    assert st.count_tiles(reader) == len(tile_map)


def test_metadata_is_read_once_at_open(mbtiles):
    info = st.open_tiles(mbtiles).info
    assert (info.kind, info.format, info.content_type) == ("mbtiles", "png", "image/png")
    assert (info.min_zoom, info.max_zoom) == (min(tf.ZOOMS), max(tf.ZOOMS))
    assert info.name == "wuxing-test" and info.attribution == "© 测试底图"
    assert info.bounds == pytest.approx(tf.WUXING)
    assert info.signature


def test_missing_tiles_and_addresses_outside_the_pyramid_are_none(mbtiles):
    reader = st.open_tiles(mbtiles)
    assert reader.get(12, 0, 0) is None  # a real tile, but not over Wuxing
    assert reader.get(5, 40, 3) is None  # x beyond 2**5
    assert reader.get(-1, 0, 0) is None
    assert reader.get(st.MAX_ZOOM + 1, 0, 0) is None
    assert reader.get(3, 0, 2 ** 62) is None


def test_jpeg_format_missing_zooms_and_bad_bounds(tmp_path):
    jpg = {(10, 855, 423): tf.image(10, 855, 423, "jpg"), (11, 1710, 846): tf.image(11, 1710, 846, "jpg")}
    path = tf.write_mbtiles(tmp_path / "j.mbtiles", jpg, fmt="jpeg", minzoom=None, maxzoom=None, bounds="a,b,c,d")
    info = st.open_tiles(path).info
    assert (info.format, info.content_type) == ("jpg", "image/jpeg")
    assert (info.min_zoom, info.max_zoom) == (10, 11)  # from the tiles when the metadata has none
    assert info.bounds is None


def test_a_file_without_format_is_typed_by_its_tiles(tmp_path):
    path = tf.write_mbtiles(tmp_path / "f.mbtiles", {(9, 427, 211): tf.image(9, 427, 211, "webp")}, fmt=None)
    assert st.open_tiles(path).info.format == "webp"


def test_reading_is_read_only(mbtiles):
    before = mbtiles.read_bytes()
    reader = st.open_tiles(mbtiles)
    reader.get(*next(iter(tf.addresses())))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader._conn().execute("DELETE FROM tiles")
    assert mbtiles.read_bytes() == before


def test_threads_read_the_same_reader_at_once(mbtiles, tile_map):
    reader = st.open_tiles(mbtiles)
    items = list(tile_map.items())
    bad: list = []

    def work(offset: int):
        for i in range(200):
            address, data = items[(i + offset) % len(items)]
            if reader.get(*address) != data:
                bad.append(address)

    threads = [threading.Thread(target=work, args=(k * 7,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


@pytest.mark.parametrize("kind", ["missing", "directory", "text", "other_sqlite", "vector", "empty", "corrupt"])
def test_files_that_cannot_be_served_are_refused_with_a_reason(tmp_path, kind):
    path = tmp_path / f"{kind}.mbtiles"
    expected = {"missing": "does not exist", "directory": "not a file", "text": "neither MBTiles",
                "other_sqlite": "not MBTiles: no metadata or tiles", "vector": "pbf tiles", "empty": "no tiles",
                "corrupt": "not a readable MBTiles"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("<html>not tiles</html>")
    elif kind == "other_sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE incidents (id INT)")
        conn.commit()
        conn.close()
    elif kind == "vector":
        tf.write_mbtiles(path, {(9, 427, 211): b"\x1a\x00"}, fmt="pbf")
    elif kind == "empty":
        tf.write_mbtiles(path, {})
    elif kind == "corrupt":
        path.write_bytes(st.SQLITE_MAGIC + b"\x00" * 200)
    with pytest.raises(st.TileFileError, match=expected) as err:
        st.open_tiles(path)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------------------------------ PMTiles
def test_pmtiles_serves_the_same_tiles(tmp_path, tile_map):
    reader = st.open_tiles(tf.write_pmtiles(tmp_path / "w.pmtiles", tile_map, attribution="© PM"))
    assert reader.kind == "pmtiles"
    info = reader.info
    assert (info.format, info.min_zoom, info.max_zoom, info.attribution) == ("png", 9, 12, "© PM")
    assert info.bounds == pytest.approx(tf.WUXING, abs=1e-6)
    for address, data in tile_map.items():
        assert reader.get(*address) == data
    assert reader.get(12, 0, 0) is None
    assert st.count_tiles(reader) == len(tile_map)


def test_pmtiles_leaf_directories_are_followed(tmp_path):
    """Enough tiles of uneven sizes (a random third of zooms 0-8) that the archive needs leaf directories."""
    import random

    rnd = random.Random(12)
    everything = {(z, x, y): b"\x89PNG\r\n\x1a\n" + struct.pack(">III", z, x, y) + rnd.randbytes(rnd.randint(0, 300))
                  for z in range(9) for x in range(2 ** z) for y in range(2 ** z) if z < 3 or rnd.random() < 0.33}
    reader = st.open_tiles(tf.write_pmtiles(tmp_path / "big.pmtiles", everything))
    assert reader.header["leaf_directory_length"] > 0, "the fixture should need leaf directories"
    for address in [(0, 0, 0), *rnd.sample(sorted(everything), 300)]:
        assert reader.get(*address) == everything[address], address
    absent = [(8, x, y) for x in range(256) for y in range(0, 256, 37) if (8, x, y) not in everything][:50]
    assert [reader.get(*a) for a in absent] == [None] * len(absent)


def test_vector_pmtiles_are_refused(tmp_path):
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    path = tmp_path / "v.pmtiles"
    with write(str(path)) as w:
        w.write_tile(zxy_to_tileid(0, 0, 0), b"\x1a\x00")
        w.finalize({"tile_type": TileType.MVT, "tile_compression": Compression.NONE, "min_lon_e7": 0,
                    "min_lat_e7": 0, "max_lon_e7": 10, "max_lat_e7": 10, "center_zoom": 0, "center_lon_e7": 0,
                    "center_lat_e7": 0}, {})
    with pytest.raises(st.TileFileError, match="MVT tiles"):
        st.open_tiles(path)


# ------------------------------------------------------------------------------------------ packing
@pytest.mark.parametrize("scheme", ["xyz", "tms"])
def test_pack_a_tree_round_trips(tmp_path, tile_map, scheme):
    tree = tf.write_tree(tmp_path / "tree", tile_map, scheme=scheme)
    (tree / "tilemapresource.xml").write_text("<TileMap/>")  # gdal2tiles leaves such files beside the zooms
    (tree / "9" / "notes.txt").write_text("x")
    report = st.pack_directory(tree, tmp_path / "out.mbtiles", name="吴兴", attribution="© 天地图", scheme=scheme)
    assert (report.tiles, report.ignored, report.format) == (len(tile_map), 2, "png")
    assert (report.min_zoom, report.max_zoom) == (9, 12)
    w, s, e, n = report.bounds
    assert w <= tf.WUXING[0] and s <= tf.WUXING[1] and e >= tf.WUXING[2] and n >= tf.WUXING[3]
    assert e - w < 3 and n - s < 3  # the tiles' extent, not the world
    reader = st.open_tiles(tmp_path / "out.mbtiles")
    assert (reader.info.name, reader.info.attribution) == ("吴兴", "© 天地图")
    for address, data in tile_map.items():
        assert reader.get(*address) == data, address


def test_pack_refuses_and_leaves_nothing_half_written(tmp_path, tile_map):
    tree = tf.write_tree(tmp_path / "tree", dict(list(tile_map.items())[:5]))
    bad = tree / "10" / "855" / "999.png"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("404 Not Found")  # a downloader saved an error page as a tile
    out = tmp_path / "out.mbtiles"
    with pytest.raises(st.TileFileError, match="not a PNG, JPEG or WebP"):
        st.pack_directory(tree, out)
    assert list(tmp_path.glob("*mbtiles*")) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(st.TileFileError, match="no tiles"):
        st.pack_directory(empty, out)
    with pytest.raises(st.TileFileError, match="not a tile of zoom 2"):
        st.pack_directory(tf.write_tree(tmp_path / "t2", {(2, 9, 0): tf.image(2, 9, 0)}), out)
    bad.unlink()
    st.pack_directory(tree, out)
    with pytest.raises(st.TileFileError, match="exists"):
        st.pack_directory(tree, out)
    assert st.pack_directory(tree, out, force=True).tiles == 5


def test_tile_bounds_of_known_tiles():
    assert st.tile_bounds(0, 0, 0) == pytest.approx((-180, -st.WEB_MERCATOR_LAT, 180, st.WEB_MERCATOR_LAT))
    w, s, e, n = st.tile_bounds(1, 1, 0)  # the north-east quarter
    assert (w, e) == (0, 180) and s == pytest.approx(0, abs=1e-9) and n > 85
