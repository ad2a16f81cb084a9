"""The live parts of the pages, pushed (:class:`dashboard.services.live.Feed`): what a callback would compute for
each open page after each change, computed once per change for every page that shows the same thing and sent in
the live stream's event (``set``: ``[[component id, {prop: value}], …]``, applied by ``assets/live.js`` with
``dash_clientside.set_props``). No page sends a request because something changed.

A page names its parts in the stream URL (``push``, a JSON object, kept current by a clientside callback of the
page as its view changes):

- ``list`` (duty desk) ``{"q": <the list's filter query>, "lang"}``: the rows that changed, as
  ``duty-delta`` (applied to the grid by ``wx_duty.applyDelta``) and ``duty-live``; too many changes:
  ``duty-reload`` (the list callback reloads the list).
- ``alerts`` (duty desk) ``{"lang", "ack"}``: when an alert was raised or acknowledged, the snapshot
  (``alert-store``), the banner and the alert list; the acknowledge buttons only for a user who may act.
- ``colours`` (overview, duty desk) ``{"measure", "layer", "lang"}``: a measure counted now (open, overdue)
  colours the map anew: the values that changed (a patch of the layer's ``hideout``), breaks, colours and
  legend only when they moved. Period measures do not move with a single change: nothing is pushed.
- ``rings`` (every page with the ring layer) ``{}``: the open incidents inside each safety ring that moved (a
  patch of the ring layer's ``hideout``), instead of every page refetching the rings' geometry.
- ``cards`` (overview) ``{"state": <view-state>, "lang"}``: the KPI cards of the view.
- ``wall`` (wall) ``{"lang"}``: ticker (``wall-ticks``: new reports slide in, a patch of values that
  ``assets/wall.js`` builds into list items), alerts (the markers pulse through the stream's own ``alerts``), the
  toured units' colours (zones, or a city's counties, a province's cities).
- ``wallfigures`` (wall) ``{"lang", "rank", "rank_period", "rank_n"}``: the KPI header (``wall-header``: the rows
  whose figures moved), ranking (``wall-rank``: the rows that moved) and tour cards (``wall-zones``: the figures of
  the units that moved, the rank order as the units that moved in it), each only when it moved — values, built
  into elements in the browser (``ui.wall`` ``header_data`` / ``ranking_data`` / ``tour_data``).

The KPI figures (``cards``, ``wallfigures``: a KPI bundle per rendering) are *heavy*: rendered at most every
``LIVE_FIGURES`` seconds (5) while changes come, and once more after the last (``services.live.Hub.pushed``);
the rest follow each change. Every part comes in the ``parts`` event that follows the markers' ``change`` event, so
no rendering holds the markers up.

Each part checks its parameters as strictly as a callback checks its inputs (a bad one refuses the stream with a
400), refuses a viewer who may not see it (403: the duty list and the alerts are for readers, not for the wall's
kiosk or the public overview) and folds in what the asking user may see (their audience).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dash import Patch

from ..services import alerts as alert_service
from ..services import drill, maps, units
from ..services import duty as duty_data
from ..services import wall as wall_data
from ..services.filters import FilterError, query_filter
from ..ui import cards as ui_cards
from ..ui import wall as wall_ui
from ..ui.alerts import banner_body, feed_items
from ..ui.map_controls import legend

LANGS = ("zh", "en")
CHORO_LAYERS = ("zones", "grids", "towns", "counties", "cities")


def _obj(raw, keys: set[str]) -> dict:
    if not isinstance(raw, dict) or not set(raw) <= keys:
        raise ValueError(f"expected an object with keys {', '.join(sorted(keys))}")
    return raw


def _lang(raw: dict) -> str:
    lang = raw.get("lang", "zh")
    if lang not in LANGS:
        raise ValueError("lang must be zh or en")
    return lang


def _digest(value) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _audience() -> str:
    from ..auth import audience, current_principal

    return audience(current_principal())


def _reader() -> None:
    """Parts with personal data or the duty desk's working list: readers only (the wall's kiosk and the public
    overview are refused with a 403)."""
    from ..auth import current_principal

    who = current_principal()
    if who is None or not who.can_read:
        raise PermissionError("this live part is for signed-in readers")


# ------------------------------------------------------------------------------------------------ duty list
@dataclass(frozen=True)
class ListFeed:
    heavy = False
    def parse(self, raw):
        raw = _obj(raw, {"q", "lang"})
        _reader()
        q = raw.get("q")
        if not isinstance(q, str) or len(q) > 2000:
            raise ValueError("q must be the list's filter query")
        try:
            query_filter(q)
        except FilterError as e:
            raise ValueError(f"q: {e.message}") from None
        return (q, _lang(raw), _audience())

    def render(self, params, head, before, prior):
        q, lang, who = params
        if head.seq <= before.seq:
            return [], None
        d = duty_data.delta(q, lang, before.seq, who)
        if d is None:  # too many changes: the list reloads itself (callbacks.duty, Input duty-reload)
            return [["duty-reload", {"data": head.seq}]], None
        d["q"] = q
        return [["duty-delta", {"data": d}], ["duty-live", {"data": {"seq": d["seq"], "q": q}}]], None


# ------------------------------------------------------------------------------------------------ alerts
@dataclass(frozen=True)
class AlertsFeed:
    heavy = False
    def parse(self, raw):
        raw = _obj(raw, {"lang", "ack"})
        _reader()
        from ..auth import current_user

        user = current_user()
        return (_lang(raw), bool(raw.get("ack")) and user is not None and bool(user.can_act))

    def render(self, params, head, before, prior):
        lang, ack = params
        if head.aseq == before.aseq and prior is not None:
            return [], prior
        snap = alert_service.snapshot(head.aseq)
        count = snap.get("count") or 0
        sets = [["alert-banner-body", {"children": banner_body(snap, lang, ack=ack)}],
                ["alert-banner", {"hidden": not count}],
                ["alert-feed-count", {"children": str(count) if count else ""}]]
        items = snap.get("items") or []
        old = (prior or {}).get("items")
        ops = list_change([a["id"] for a in old], [a["id"] for a in items]) if old and items else None
        if ops is None:  # whole: a first sending, or the list changed otherwise than by new and closed alerts
            return [["alert-store", {"data": snap}],
                    ["alert-feed", {"children": feed_items(snap, lang, can_ack=ack)}]] + sets, snap
        store, feed = Patch(), Patch()
        removed, added = ops
        for i in removed:  # from the bottom up: the indexes stay right
            del store["items"][i]
            del feed[i]
        by_id = {a["id"]: a for a in items}
        for aid in reversed(added):
            store["items"].prepend(by_id[aid])
            feed.prepend(feed_items({"items": [by_id[aid]]}, lang, can_ack=ack)[0])
        store["seq"] = snap["seq"]
        store["count"] = count
        return [["alert-store", {"data": store}], ["alert-feed", {"children": feed}]] + sets, snap


def list_change(old: list, new: list) -> tuple[list, list] | None:
    """How ``new`` (ids, newest first) comes from ``old`` by dropping some and putting new ones on top:
    ``(indexes of ``old`` to delete, highest first; ids to put on top, in order)``; None when it does not (the
    order changed): then send it whole."""
    kept = [i for i in old if i in set(new)]
    added = [i for i in new if i not in set(old)]
    if new != added + kept or not kept:
        return None
    gone = set(old) - set(new)
    return [k for k in range(len(old) - 1, -1, -1) if old[k] in gone], added


# ------------------------------------------------------------------------------------------------ map colours
def colour_sets(layer: str, payload: dict, prior: dict | None, lang: str) -> list:
    """The props that take a layer coloured as ``prior`` (a payload) to ``payload``: only the values that
    changed when the classes stayed, else the whole colouring and its legend."""
    p = Patch()
    out = [[f"geo-{layer}", {"hideout": p}]]
    same_classes = prior is not None and all(prior.get(k) == payload.get(k) for k in
                                             ("breaks", "colors", "label", "format"))
    if same_classes:
        moved = {c: v for c, v in payload["values"].items() if prior["values"].get(c, 0) != v}
        if not moved:
            return []
        for code, value in moved.items():
            p["values"][code] = value
        return out
    p["values"] = payload["values"]
    p["breaks"] = payload["breaks"]
    p["colors"] = payload["colors"]
    p["measureLabel"] = payload["label"]
    p["format"] = payload["format"]
    out.append(["map-legend", {"children": legend(payload, lang)}])
    return out


@dataclass(frozen=True)
class ColoursFeed:
    heavy = False
    def parse(self, raw):
        raw = _obj(raw, {"measure", "layer", "lang"})
        measure, layer = raw.get("measure"), raw.get("layer") or "zones"
        if layer not in CHORO_LAYERS or layer not in maps.map_layers():
            raise ValueError(f"layer must be one of {', '.join(maps.map_layers())}")
        if not isinstance(measure, str) or (measure != "none" and measure not in maps.MEASURES):
            raise ValueError("unknown measure")
        if measure not in maps.LIVE_MEASURES:  # a period measure does not move with one change
            return None
        return (measure, layer, _lang(raw))

    def render(self, params, head, before, prior):
        measure, layer, lang = params
        if head.seq == before.seq:
            return [], prior
        payload = maps.measure_payload(layer, measure, drill.period_of({}), lang)
        return colour_sets(layer, payload, prior, lang), payload


# ------------------------------------------------------------------------------------------------ safety rings
@dataclass(frozen=True)
class RingsFeed:
    """The open incidents inside each major hazard site's safety ring: the counts that moved, into the ring
    layer's ``hideout`` (``counts``; ``wx.map.ringStyle`` and the ring popup read them) — no refetch of the
    layer's geometry by every page."""

    heavy = False

    def parse(self, raw):
        _obj(raw, set())
        return ()

    def render(self, params, head, before, prior):
        if head.seq == before.seq and prior is not None:
            return [], prior
        counts = maps.ring_counts(head.seq)
        p = Patch()
        if prior is None:
            p["counts"] = counts
        else:
            moved = {code: n for code, n in counts.items() if prior.get(code) != n}
            if not moved:
                return [], counts
            for code, n in moved.items():
                p["counts"][code] = n
        return [["geo-rings", {"hideout": p}]], counts


# ------------------------------------------------------------------------------------------------ overview cards
@dataclass(frozen=True)
class CardsFeed:
    heavy = True  # two KPI bundles (the period, last year's)
    def parse(self, raw):
        raw = _obj(raw, {"state", "lang"})
        state = raw.get("state")
        if not isinstance(state, dict) or not set(state) <= {"level", "code", "period", "from", "to"}:
            raise ValueError("state must be the overview's view")
        if not all(v is None or (isinstance(v, str) and len(v) <= 40) for v in state.values()):
            raise ValueError("state values must be short strings")
        clean = drill.state_from_params({k: v for k, v in state.items() if v}, units.hierarchy())
        return (tuple(sorted((k, clean.get(k)) for k in ("level", "code", "period", "from", "to"))), _lang(raw))

    def render(self, params, head, before, prior):
        state, lang = dict(params[0]), params[1]
        v = drill.card_values(state, lang)
        cards = ui_cards.cards(v["values"], v["parent_values"], v["parent_name"], v["previous"], lang)
        digest = _digest(v)
        if prior == digest:
            return [], prior
        return [["kpi-cards", {"children": cards}]], digest


# ------------------------------------------------------------------------------------------------ wall
@dataclass(frozen=True)
class WallFeed:
    """Ticker, alerts and the toured units' colours: each change."""

    heavy = False
    version = 3  # the ticker as values (wall-ticks); 3: the toured units' layer (zones, counties or cities)

    def parse(self, raw):
        return (_lang(_obj(raw, {"lang"})),)

    def render(self, params, head, before, prior):
        lang, = params
        prior = prior or {}
        state = dict(prior)
        sets = []
        if prior.get("seq") != head.seq:
            items = wall_data.ticker_items(lang, head.seq)
            if "ticks" in prior:
                change, state["fresh"] = ticker_change(prior["ticks"], prior.get("fresh", []), items, lang)
            else:  # what the walls showed at ``before`` (the ticker is cached per change; else: nothing slides)
                shown = [it["id"] for it in wall_data.ticker_items(lang, before.seq)]
                change = wall_ui.ticker_data(items, lang, shown)
                state["fresh"] = change["fresh"]
            if change is not None:
                sets.append(["wall-ticks", {"data": change}])
            state["ticks"] = [wall_ui.tick(it) for it in items]
            payload = wall_data.unit_choropleth(lang, head.seq)
            sets += colour_sets(payload["layer"], payload, prior.get("choro"), lang)
            state["choro"] = payload
        if prior.get("aseq") != head.aseq:
            alerts = wall_data.active_alerts(lang, head.aseq)
            old = prior.get("alerts")
            ops = list_change([a["id"] for a in old], [a["id"] for a in alerts["items"]]) if old else None
            if ops is None:
                sets.append(["wall-alerts", {"data": alerts["items"]}])
            else:  # new alerts on top, closed ones out
                p, by_id = Patch(), {a["id"]: a for a in alerts["items"]}
                for i in ops[0]:
                    del p[i]
                for aid in reversed(ops[1]):
                    p.prepend(by_id[aid])
                sets.append(["wall-alerts", {"data": p}])
            state["alerts"] = alerts["items"]
            sets.append(["wall-alert-count", {"children": wall_ui.alert_count(alerts["count"], lang)}])
        state.update(seq=head.seq, aseq=head.aseq)
        return sets, state


@dataclass(frozen=True)
class WallFiguresFeed:
    """The KPI header, the ranking and the tour's unit cards (heavy: at most every ``LIVE_FIGURES`` s)."""

    heavy = True
    version = 3  # header, ranking and the tour's figures as values (wall-header, wall-rank, wall-zones); 3: units

    def parse(self, raw):
        raw = _obj(raw, {"lang", "rank", "rank_period", "rank_n"})
        rank, per, n = raw.get("rank"), raw.get("rank_period"), raw.get("rank_n")
        if rank not in wall_data.RANK_KPIS or per not in ("today", "month"):
            raise ValueError("rank must be a ranking measure and rank_period today or month")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 23:
            raise ValueError("rank_n must be 1 to 23")
        return (_lang(raw), rank, per, n)

    def render(self, params, head, before, prior):
        lang, rank, per, n = params
        prior = prior or {}
        version = wall_data.kpi_version()
        if prior.get("kv") == version:
            return [], prior
        state = dict(prior, kv=version)
        sets = []
        k = wall_data.kpi_payload(lang, rank, per)
        values = wall_ui.header_values(k["header"])
        if prior.get("header") is None:
            sets.append(["wall-header", {"data": wall_ui.header_data(k["header"], lang)}])
        elif prior["header"] != values:  # the rows whose figures moved
            p = Patch()
            for row, texts in values.items():
                if prior["header"].get(row) != texts:
                    p["values"][row] = texts
            sets.append(["wall-header", {"data": p}])
        state["header"] = values
        ranking = wall_ui.ranking_data(k["ranking"], lang, n)
        change = ranking_change(prior.get("ranking"), ranking) if "ranking" in prior else ranking
        if change is not None:
            sets.append(["wall-rank", {"data": change}])
        state["ranking"] = ranking
        tour = wall_ui.tour_data(k)
        change = tour_change(prior.get("tour"), tour)
        if change is not None:
            sets.append(["wall-zones", {"data": change}])
        state["tour"] = tour
        sets.append(["wall-updated", {"children": k["as_of"]}])
        return sets, state


def ticker_change(before: list, fresh: list, items: list, lang: str) -> tuple[object, list]:
    """(the ticker's new values — ``wall_ui.ticker_data`` — or a patch of them, None: nothing moved; the ids now
    sliding in). ``before``: the reports shown (``wall_ui.tick``), ``fresh``: the ids that slid in last time. A
    patch when the new reports came in at the top (the usual change): they slide in (a few values each), the ones
    that slid in last time stand still, the oldest drop off, a report shown whose values moved is replaced."""
    old = [t[0] for t in before]
    ticks = [wall_ui.tick(it) for it in items]
    k = 0
    while k < len(ticks) and ticks[k][0] not in old:
        k += 1
    kept = ticks[k:]
    if not before or k == len(ticks) or [t[0] for t in kept] != old[: len(kept)]:
        data = wall_ui.ticker_data(items, lang, old)
        return data, data["fresh"]
    p, moved = Patch(), False
    for t in reversed(ticks[:k]):
        p["items"].prepend(t)
        moved = True
    for _ in range(len(old) - len(kept)):
        del p["items"][-1]
        moved = True
    for i, t in enumerate(kept):
        if t != before[i]:
            p["items"][k + i] = t
            moved = True
    new_ids = [t[0] for t in ticks[:k]]
    if new_ids != fresh:
        p["fresh"] = new_ids
        moved = True
    return (p if moved else None), new_ids


def ranking_change(before: dict | None, ranking: dict):
    """The ranking's new values (``wall_ui.ranking_data``), or a patch of the rows and headings that moved (None:
    none did)."""
    if before == ranking:
        return None
    if not before or not ranking or set(before) != set(ranking):
        return ranking
    p = Patch()
    for key, value in ranking.items():
        if before[key] == value:
            continue
        if key.startswith("rows_") and len(before[key]) == len(value):
            for i, row in enumerate(value):
                if row != before[key][i]:
                    p[key][i] = row
        else:
            p[key] = value
    return p


def list_moves(old: list, new: list, limit: int = 4) -> tuple[list, list] | None:
    """How ``new`` comes from ``old`` (the same distinct items) by moving a few items: ``(indexes to delete, in
    order; [(index, item), …] to insert then, in order)``. The items that stay are the longest run of ``old`` whose
    order ``new`` keeps; None when more than ``limit`` items move (send the list whole) or the items differ."""
    if len(old) != len(new) or set(old) != set(new) or len(set(new)) != len(new):
        return None
    at = {item: i for i, item in enumerate(new)}
    seq = [at[item] for item in old]
    best: list = []  # best[i]: the longest increasing run of seq ending at i (as indexes of old)
    for i, v in enumerate(seq):
        run = max((best[j] for j in range(i) if seq[j] < v), key=len, default=[])
        best.append(run + [i])
    stay = set(max(best, key=len, default=[]))
    movers = [old[i] for i in range(len(old)) if i not in stay]
    if len(movers) > limit:
        return None
    cur, deletes = list(old), []
    for item in movers:
        deletes.append(cur.index(item))
        cur.remove(item)
    # then each in the order of its place in ``new``: everything before that place is already there
    return deletes, [(at[item], item) for item in sorted(movers, key=at.get)]


def tour_change(before: dict | None, tour: dict):
    """The tour's unit cards data (``wall_ui.tour_data``), or a patch of what moved (None: nothing did): the values
    of the units (and the district) whose figures moved, the rank order as the few units that moved in it."""
    if before is None or set(before) != set(tour):
        return tour
    p, moved = Patch(), False
    for key in ("units", "values"):  # by unit
        old, new = before[key] or {}, tour[key] or {}
        if set(old) != set(new):
            p[key] = tour[key]
            moved = True
            continue
        for code, value in new.items():
            if old[code] != value:
                p[key][code] = value
                moved = True
    for key in ("level", "layer", "district", "cards", "ranked"):
        if before[key] != tour[key]:
            p[key] = tour[key]
            moved = True
    old_order, order = before["order"] or {}, tour["order"] or {}
    if set(old_order) != set(order):
        p["order"] = order
        return p
    for key, new in order.items():
        if old_order[key] == new:
            continue
        moved = True
        moves = list_moves(old_order[key], new)
        if moves is None:
            p["order"][key] = new
            continue
        for i in moves[0]:
            del p["order"][key][i]
        for i, item in moves[1]:
            p["order"][key].insert(i, item)
    return p if moved else None


FEEDS = {"list": ListFeed(), "alerts": AlertsFeed(), "colours": ColoursFeed(), "cards": CardsFeed(),
         "wall": WallFeed(), "wallfigures": WallFiguresFeed(), "rings": RingsFeed()}
