"""The pages' live parts pushed in the stream (``push=``, ``dashboard.callbacks.pushed``), on a real threaded server
over SQLite and PostgreSQL: a post reaches the duty list as changed rows, the wall as a ticker patch and new
figures, a measure counted now as the zone values that changed, the overview as new KPI cards — each part built
once per change however many streams show it; the values equal what the services give for the same state; bad
or unauthorised parts are refused before the stream opens."""
from __future__ import annotations

import json
import queue
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import authed
from tests.integration.conftest import grid_points
from tests.integration.test_live_stream import Stream, _post, _seq, server  # noqa: F401 - the server fixture

LIST = {"list": {"q": "status=open", "lang": "zh"}}
WALL = {"wall": {"lang": "zh"},
        "wallfigures": {"lang": "zh", "rank": "resolution_rate", "rank_period": "month", "rank_n": 5}}
COLOURS = {"colours": {"measure": "open_incidents", "layer": "zones", "lang": "zh"}}
CARDS = {"cards": {"state": {"level": "district", "code": None, "period": "today", "from": None, "to": None},
                   "lang": "en"}}


def _open(srv, push: dict, query: str = "") -> Stream:
    q = f"after={_seq(srv)}&push={urllib.parse.quote(json.dumps(push))}"
    return Stream(srv.url + f"/api/map/stream?{q}{query}")


def _sets(data: dict) -> dict:
    """``{component id: props}`` of an event (several entries for one id merged in order)."""
    out: dict = {}
    for cid, props in data.get("set", []):
        out.setdefault(cid, {}).update(props)
    return out


def apply_patch(value, patch: dict):
    """What the browser does with a Dash patch (the operations these parts send: Assign, Prepend, Insert,
    Delete)."""
    import copy

    value = copy.deepcopy(value)
    for op in patch["operations"]:
        *path, last = op["location"] or [None]
        target = value
        for key in path:
            target = target[key]
        if op["operation"] == "Assign":
            target[last] = op["params"]["value"]
        elif op["operation"] == "Prepend":
            (target[last] if last is not None else target).insert(0, op["params"]["value"])
        elif op["operation"] == "Insert":
            (target[last] if last is not None else target).insert(op["params"]["index"], op["params"]["value"])
        elif op["operation"] == "Delete":
            del target[last]
        else:
            raise AssertionError(f"unexpected patch operation {op}")
    return value


def fold(items: list, cid: str, prop: str, value=None):
    """What a page shows in ``cid.prop`` after applying the pushed ``items`` in order (whole values and patches)."""
    for got_id, props in items:
        if got_id == cid and prop in props:
            new = props[prop]
            is_patch = isinstance(new, dict) and new.get("__dash_patch_update") == "__dash_patch_update"
            value = apply_patch(value, new) if is_patch else new
    return value


def _with(stream: Stream, incident_id: int, key: str = "upsert"):
    """The events up to the ``parts`` event that follows the change bringing ``incident_id``, their pushed parts
    in order (a commit can reach a stream in more than one event)."""
    (_, _, change), seen = stream.until(lambda d: any(f["properties"]["id"] == incident_id for f in d.get(key, [])))
    try:
        _, more = stream.until(lambda d: "set" in d and d["seq"] >= change["seq"], timeout=5.0)
    except (AssertionError, queue.Empty):
        # none came: a part rendered just before (for the stream's opening) already read the new state, so
        # nothing moved since — the caller compares what the page now shows with the store
        more = []
    return {"set": [item for _, _, data in seen + more for item in data.get("set", [])]}


def test_the_duty_list_receives_the_changed_rows(server, geo):
    (lon, lat, *_), = grid_points(geo, 1)
    s = _open(server, LIST)
    try:
        posted = _post(server, lon, lat, severity=2)
        sets = _sets(_with(s, posted["id"]))
        delta = sets["duty-delta"]["data"]
        assert delta["q"] == "status=open"
        assert [r["id"] for r in delta["upsert"]] == [posted["id"]]
        assert delta["remove"] == [] and posted["id"] in delta["changed"]
        assert sets["duty-live"]["data"] == {"seq": delta["seq"], "q": "status=open"}
        # the same rows the list itself would show (services.duty, the list's serialiser)
        from dashboard.services import duty

        with server.app.server.test_request_context():
            rows = duty.list_rows("status=open", "zh").rows
        assert next(r for r in rows if r["id"] == posted["id"]) == delta["upsert"][0]
    finally:
        s.close()


def test_the_wall_gets_a_ticker_patch_and_its_figures_once_per_change(server, geo):
    hub = server.app.server.extensions["dashboard"].hub
    pts = grid_points(geo, 3)
    walls = [_open(server, WALL) for _ in range(3)]
    try:
        first = _post(server, *pts[0][:2])
        raw = [_with(w, first["id"])["set"] for w in walls]
        sets = [_sets({"set": r}) for r in raw]
        assert sets[0] == sets[1] == sets[2]  # one rendering for every wall
        assert {"wall-ticks", "wall-header", "geo-zones"} <= set(sets[0])
        built = dict(hub.feed_builds)
        second = _post(server, *pts[1][:2])
        raw2 = [_with(w, second["id"])["set"] for w in walls]
        got = [_sets({"set": r}) for r in raw2]
        assert hub.feed_builds["wall"] - built["wall"] == 1, hub.feed_builds  # one rendering for three walls
        assert hub.feed_builds["wallfigures"] - built["wallfigures"] == 1, hub.feed_builds
        ticker = got[0]["wall-ticks"]["data"]
        # the wall already shows the first report: only the new one slides in (a patch of values, not the list)
        assert ticker.get("__dash_patch_update") == "__dash_patch_update", ticker
        ops = ticker["operations"]
        assert [op["operation"] for op in ops][0] == "Prepend"
        assert second["code"] in json.dumps(ops[0], ensure_ascii=False)
        assert first["code"] not in json.dumps(ops, ensure_ascii=False)
        from dashboard.services import wall
        from dashboard.ui import wall as wall_ui

        # every part folded from its first (whole) sending through the patches gives what a fresh rendering of
        # the store as it is now gives: the ticker's reports, the header, the ranking and the tour's zone cards
        with server.app.server.app_context():
            items = wall.ticker_items("zh")
            k = wall.kpi_payload("zh", "resolution_rate", "month")
        ticks = fold(raw[0] + raw2[0], "wall-ticks", "data")
        assert ticks["items"] == json.loads(json.dumps([wall_ui.tick(it) for it in items]))
        assert ticks["fresh"] == [second["id"]]  # the new report slides in, the first one stands still
        shown = fold(raw[0], "wall-header", "data")
        change = got[0]["wall-header"]["data"]
        assert change.get("__dash_patch_update") == "__dash_patch_update"
        assert {op["operation"] for op in change["operations"]} == {"Assign"}
        assert fold(raw2[0], "wall-header", "data", shown) == json.loads(json.dumps(wall_ui.header_data(k["header"],
                                                                                                       "zh")))
        assert fold(raw[0] + raw2[0], "wall-rank", "data") == json.loads(json.dumps(
            wall_ui.ranking_data(k["ranking"], "zh", 5)))
        tour = fold(raw[0] + raw2[0], "wall-zones", "data")
        assert tour == json.loads(json.dumps(wall_ui.tour_data(k)))
        zone_change = [props["data"] for cid, props in raw2[0] if cid == "wall-zones"]
        assert zone_change and len(json.dumps(zone_change[-1])) < len(json.dumps(tour)) / 4  # what moved only
    finally:
        for w in walls:
            w.close()


def test_a_live_measure_sends_only_the_zone_values_that_moved(server, geo):
    (lon, lat, grid, *_), (lon2, lat2, *_rest) = grid_points(geo, 2)
    s = _open(server, COLOURS)
    try:
        a = _post(server, lon, lat)
        zones = [props["hideout"] for cid, props in _with(s, a["id"])["set"] if cid == "geo-zones"]
        # this process had not coloured the zones before: the first colouring is whole (values, breaks, colours)
        assert {tuple(op["location"]) for op in zones[0]["operations"]} >= {("values",), ("breaks",), ("colors",)}
        b = _post(server, lon2, lat2)
        patch = _sets(_with(s, b["id"]))["geo-zones"]["hideout"]["operations"]
        from dashboard.services import maps
        from dashboard.metrics.periods import resolve

        with server.app.server.app_context():
            now = maps.measure_payload("zones", "open_incidents", resolve(None), "zh")["values"]
        moved = {op["location"][1]: op["params"]["value"] for op in patch if op["location"][0] == "values"}
        assert moved, patch
        assert len(moved) <= 2  # one zone gained an open incident (the zone of b; the rest stayed)
        assert all(now[code] == value for code, value in moved.items())
        assert len(json.dumps(patch)) < 2048
    finally:
        s.close()


def test_overview_cards_follow_each_change(server, geo):
    (lon, lat, *_), = grid_points(geo, 1)
    s = _open(server, CARDS)
    try:
        posted = _post(server, lon, lat)
        cards = json.dumps(_sets(_with(s, posted["id"]))["kpi-cards"]["children"], ensure_ascii=False)
        from dashboard.services import drill

        with server.app.server.app_context():
            v = drill.card_values({"level": "district", "code": None, "period": "today"}, "en")
        from plotly.io.json import to_json_plotly

        from dashboard.ui import cards as ui_cards

        expected = ui_cards.cards(v["values"], v["parent_values"], v["parent_name"], v["previous"], "en")
        assert json.loads(to_json_plotly(expected)) == json.loads(cards)
    finally:
        s.close()


BAD_PUSH = ["{", "[]", '{"nope":{}}', '{"list":{"q":"severity=9"}}', '{"list":{"q":1}}',
            '{"wall":{"lang":"fr"}}', '{"wall":{"lang":"zh","rank":"resolution_rate"}}',
            '{"wallfigures":{"lang":"zh","rank":"resolution_rate","rank_period":"month","rank_n":true}}',
            '{"wallfigures":{"lang":"zh","rank":"nope","rank_period":"month","rank_n":5}}',
            '{"colours":{"measure":"nope","layer":"zones"}}', '{"colours":{"measure":"open_incidents","layer":"x"}}',
            '{"cards":{"state":{"level":{"a":1}}}}', '{"cards":{"state":"x"}}', '{"alerts":{"lang":"zh","x":1}}',
            "x" * 5000]


def test_bad_parts_are_refused_before_the_stream_opens(server):
    for push in BAD_PUSH:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(authed(server.url + "/api/map/stream?push=" + urllib.parse.quote(push)),
                                   timeout=10)
        assert err.value.code == 400, push
        assert json.loads(err.value.read())["error"]["field"] == "push", push
    assert server.app.server.extensions["dashboard"].hub.open_streams == 0


def test_ring_counts_that_moved_reach_the_ring_layer(server, geo):
    from dashboard.services import maps

    with server.app.server.app_context():
        sites = maps.rings_collection()["features"]
    site = sites[0]["properties"]
    inside = [c for c in sites[0]["geometry"]["coordinates"][0][:1]]  # a point of the ring itself
    lon = (inside[0][0] * 0.02 + _site_lon(sites[0]) * 0.98)  # just inside, near the site
    lat = (inside[0][1] * 0.02 + _site_lat(sites[0]) * 0.98)
    s = _open(server, {"rings": {}})
    try:
        posted = _post(server, lon, lat)
        items = _with(s, posted["id"])["set"]
        counts = fold(items, "geo-rings", "hideout", {})
        with server.app.server.app_context():
            now = {f["properties"]["code"]: f["properties"]["open_incidents"] for f in maps.rings_collection()["features"]}
        assert counts["counts"] == now  # whole at first on this stream: every ring's count, as the layer says
        assert now[site["code"]] >= 1
    finally:
        s.close()


def _site_lon(feature) -> float:
    ring = feature["geometry"]["coordinates"][0]
    return sum(p[0] for p in ring) / len(ring)


def _site_lat(feature) -> float:
    ring = feature["geometry"]["coordinates"][0]
    return sum(p[1] for p in ring) / len(ring)


def test_alerts_come_as_what_changed(server, geo):
    """A new alert puts itself on top of the alert list and the snapshot (a patch of a few hundred bytes, not the
    whole list of active alerts); applied to what the page had, they equal the current snapshot."""
    from dashboard.services import alerts

    pts = grid_points(geo, 3)
    s = _open(server, {"alerts": {"lang": "zh", "ack": True}})
    try:
        a = _post(server, *pts[0][:2], severity=4)
        first = _with(s, a["id"])["set"]
        b = _post(server, *pts[1][:2], severity=4)
        second = _with(s, b["id"])["set"]
        store = fold(first + second, "alert-store", "data")
        with server.app.server.app_context():
            snap = alerts.snapshot()
        assert store == json.loads(json.dumps(snap))
        assert store["items"][0]["incident"]["id"] == b["id"]
        change = [props["data"] for cid, props in second if cid == "alert-store"][-1]
        assert change.get("__dash_patch_update") == "__dash_patch_update"
        assert len(json.dumps(change)) < 2048
        feed = fold(first + second, "alert-feed", "children")
        assert len(feed) == len(snap["items"]) and str(b["code"]) in json.dumps(feed[0], ensure_ascii=False)
    finally:
        s.close()


def test_list_change_finds_new_on_top_and_gone():
    from dashboard.callbacks.pushed import list_change

    assert list_change([3, 2, 1], [5, 4, 3, 1]) == ([1], [5, 4])
    assert list_change([3, 2, 1], [3, 2, 1]) == ([], [])
    assert list_change([3, 2, 1], [2, 3, 1]) is None  # reordered: whole
    assert list_change([3, 2, 1], [6, 5]) is None  # nothing kept: whole


def test_list_moves_rebuild_the_new_order():
    """A rank order that changed by a few zones moving is sent as those moves (deletes, then inserts): applied in
    order they give the new order; more moves, or other items: None (the list goes whole)."""
    import random

    from dashboard.callbacks.pushed import list_moves

    rng = random.Random(7)
    for _ in range(300):
        old = [f"z{i}" for i in range(rng.randint(1, 46))]
        new = list(old)
        for _ in range(rng.randint(0, 3)):  # a few zones move up or down
            item = new.pop(rng.randrange(len(new)))
            new.insert(rng.randrange(len(new) + 1), item)
        moves = list_moves(old, new)
        assert moves is not None and len(moves[0]) == len(moves[1]) <= 3, (old, new, moves)
        cur = list(old)
        for i in moves[0]:
            del cur[i]
        for i, item in moves[1]:
            cur.insert(i, item)
        assert cur == new
    old = [f"z{i}" for i in range(20)]
    assert list_moves(old, list(reversed(old))) is None  # too many moves: whole
    assert list_moves(old, old[:-1] + ["other"]) is None
    assert list_moves(old, old) == ([], [])


def _assert_folds(old, new, change) -> None:
    """``change`` (a Patch, the whole value, or None when nothing moved) brings ``old`` to ``new``."""
    if new == old:
        assert change is None
        return
    from plotly.io.json import to_json_plotly

    change = json.loads(to_json_plotly(change))  # as the stream sends it
    got = apply_patch(old, change) if change.get("__dash_patch_update") else change
    assert got == new


def test_tour_and_ranking_patches_fold_to_the_new_values():
    """Whatever moved between two renderings of the tour's data and the ranking (values, rank order, zones ranked
    anew, headings), the patch applied to the old values gives the new ones."""
    import copy
    import random

    from dashboard.callbacks.pushed import ranking_change, tour_change

    rng = random.Random(11)
    codes = [f"330502-ZL-{i:02d}" for i in range(30)]
    base = {"units": {c: {"name": c, "bounds": [[1, 2], [3, 4]]} for c in codes}, "district": {"name": "d"},
            "level": "zone", "layer": "zones",
            "cards": {"today": [["new_incidents", "新增"]], "month": [["resolution_rate", "办结率"]]},
            "values": {**{c: ["1", "2.0%"] for c in codes}, "district": ["30", "40.0%"]},
            "order": {"rank": list(codes), "code": list(codes)}, "ranked": 25}
    for _ in range(200):
        new = copy.deepcopy(base)
        for c in rng.sample(codes, rng.randint(0, 3)):
            new["values"][c] = [str(rng.randint(0, 9)), f"{rng.random() * 100:.1f}%"]
        rank = new["order"]["rank"]
        for _ in range(rng.randint(0, 6)):
            rank.insert(rng.randrange(len(rank)), rank.pop(rng.randrange(len(rank))))
        if rng.random() < 0.2:
            new["ranked"] += 1
        if rng.random() < 0.1:
            new["units"][codes[0]]["name"] = "x"
        _assert_folds(base, new, tour_change(base, new))
    rows = [[c, c, "t", "1.0%", "1.0%"] for c in codes[:10]]
    ranking = {"title": "r", "sub": "s", "top": "前5名", "bottom": "后5名", "total": 25, "rows_top": rows[:5],
               "rows_bottom": rows[5:]}
    for _ in range(100):
        new = copy.deepcopy(ranking)
        for i in rng.sample(range(5), rng.randint(0, 2)):
            new["rows_top"][i] = [codes[rng.randrange(30)], "n", "t", "5.0%", "5.0%"]
        if rng.random() < 0.3:
            new["total"] += 1
        if rng.random() < 0.1:
            new["rows_bottom"] = new["rows_bottom"][:3]
        _assert_folds(ranking, new, ranking_change(ranking, new))


class RawStream(Stream):
    """A stream asked as a browser asks it (``Accept-Encoding: gzip``): events as ``(name, bytes on the wire,
    data)`` — the compressed bytes that carried each event (a chunk's bytes to the event it completes)."""

    def __init__(self, url: str):
        super().__init__(url, headers={"Accept-Encoding": "gzip, deflate, br"})

    def _read(self):
        import zlib

        assert self.resp.headers.get("Content-Encoding") == "gzip"
        unzip, buf, wire = zlib.decompressobj(16 + zlib.MAX_WBITS), b"", 0
        try:
            while True:
                chunk = self.resp.read1(65536)
                if not chunk:
                    return
                wire += len(chunk)
                buf += unzip.decompress(chunk)
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    lines = block.decode("utf-8").split("\n")
                    name = next((ln[7:] for ln in lines if ln.startswith("event: ")), None)
                    data = [ln[6:] for ln in lines if ln.startswith("data: ")]
                    if name and data:
                        self.events.put((name, wire, json.loads("\n".join(data))))
                    else:
                        self.comments += 1
                    wire = 0
        except Exception:  # noqa: BLE001 - closed by the test
            pass


WALL_BUDGET = 2048  # bytes a wall receives for one changed incident (issue target: ≤ 2 KB per page per change)


@pytest.fixture
def demo_server(small_demo_instance, geodata_dir, tmp_path):
    """The app on a copy of the small demo history (every zone with figures to rank and to move), the KPI
    figures rendered after every change (``live_figures_s=0``: the most one change can cost)."""
    import shutil

    from dashboard import create_app
    from dashboard.settings import Settings
    from tests.conftest import TOKEN, LiveServer

    inst = tmp_path / "inst"
    inst.mkdir()
    shutil.copy(small_demo_instance / "wuxing.sqlite3", inst / "wuxing.sqlite3")
    app = create_app(Settings(instance_dir=inst, tile_url="", demo_live=False, api_tokens=(TOKEN,),
                              geodata_dir=geodata_dir, rate_limits_on=False, stream_slots=4, live_poll_s=0.1,
                              live_figures_s=0.0, secret_key="live-stream-test-key-" + "x" * 24))
    app.server.extensions["dashboard"].hub.heartbeat_s = 0.3
    srv = LiveServer(app)
    yield srv
    srv.stop()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_wall_receives_at_most_2_kb_for_one_changed_incident(demo_server, geo, lang):
    """What a wall (its own live parts, as its page names them) receives on the wire (gzip, as a browser asks) for
    one new report once it shows the state before: the change event and the parts (ticker, zone colours, header,
    ranking, tour cards — every figure rendered for this change) within the budget; and the parts do carry the
    change (the new report, the figures)."""
    from dashboard.pages import wall as wall_page
    from dashboard.services import live
    from dashboard.ui import wall as wall_ui

    cfg = wall_ui.wall_config(demo_server.app.server.extensions["dashboard"].settings, lang, {}, "区")
    push = next(c.data for c in wall_page.map_inputs(0, 0, cfg).children[-1].children
                if getattr(c, "id", None) == "live-push")
    assert set(push) == {"wall", "wallfigures", "rings"}
    pts = grid_points(geo, 6)
    with demo_server.app.server.app_context():
        head = live.read_head()  # as the page: the stream starts where its layers were built (nothing due yet)
    s = RawStream(demo_server.url + f"/api/map/stream?after={head.seq}&aseq={head.aseq}"
                  f"&push={urllib.parse.quote(json.dumps(push))}")
    try:
        sizes = []
        for i, (lon, lat, *_rest) in enumerate(pts):
            posted = _post(demo_server, lon, lat, severity=2)
            (_, size, change), _ = s.until(lambda d: any(f["properties"]["id"] == posted["id"]
                                                         for f in d.get("upsert", [])))
            names, total, parts = [], size, {"change": size}
            while "wall-updated" not in names:  # the parts of this change, up to the figures
                try:
                    name, size, data = s.next(60.0)  # a first KPI bundle on a busy machine
                except queue.Empty:
                    raise AssertionError(f"no figures for change {i} ({change['seq']}): {names}; before: {sizes}; "
                                         f"{s.comments} comments, {s.events.qsize()} events") from None
                assert name == "parts" and data["seq"] == change["seq"], (name, data)
                names += [cid for cid, _ in data["set"]]
                parts.update({cid: len(json.dumps(props, ensure_ascii=False)) for cid, props in data["set"]})
                total += size
            if i == 0:
                continue  # the first sending on a stream is whole (the page may show anything)
            assert "wall-ticks" in names and "wall-header" in names, names
            sizes.append((total, parts))
        assert max(total for total, _ in sizes) <= WALL_BUDGET, sizes
    finally:
        s.close()
