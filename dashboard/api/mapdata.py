"""Data layers for the map, served by URL so many viewers share one computation: ``/api/map/…``.

- ``incidents.json`` — incidents as a compact GeoJSON FeatureCollection for clustered markers; the same filters
  as ``GET /api/v1/incidents`` (default ``status=open``); each point says severity, category, state, hours
  overdue and whether it lies inside a hazardous-chemical safety ring.
- ``incident_cells.json`` — the incidents of a view counted per square cell (``bbox`` and ``zoom`` required; the
  same filters, default ``status=open``): what a multi-county map shows until few enough are in view.
- ``rings.json`` — safety rings of major hazard sites (polygons) with the open incidents inside each.
- ``hotspots.json`` — incident density on H3 hexagons for a period, with Getis-Ord Gi* hot spots.
- ``measures.json`` — values per zone or grid for the choropleth ("colour by measure").
- ``stream`` — Server-Sent Events: what changed for a page's incident layer (same filters as ``incidents.json``),
  pushed when any worker or host commits a change (:mod:`dashboard.services.live`).

The data comes from :mod:`dashboard.services.maps`. Each response is cached in the shared cache under the
request's filter and the store's change sequence (so a new or changed incident is visible on the next request,
and fifty viewers cost one query), pre-compressed.
"""
from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, request, stream_with_context

from ..context import services
from ..domain import grammar
from ..metrics.periods import PeriodError, resolve
from ..services import filters, maps
from ..store import catalogue, lifecycle
from .encoding import FAST_ENCODERS, fast_encoding
from .errors import ApiError, int_param, register_blueprint_handlers
from .incidents import MAX_DB_INT, filter_from_args

bp = Blueprint("mapdata", __name__, url_prefix="/api/map")
register_blueprint_handlers(bp)


def _json_response(key: str, build) -> Response:
    """Serve ``build()`` (a JSON-able object) cached under ``key`` with an ETag, compressed as the browser accepts
    (``api/encoding``: zstd, else brotli, else gzip): each encoding made once, when first asked for, and kept with the
    payload."""
    cache = services().cache
    payload, changed = cache.get(key), False
    if payload is None:
        raw = json.dumps(build(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        payload, changed = {"raw": raw, "etag": hashlib.sha1(raw).hexdigest()[:20]}, True
    enc = fast_encoding(request.accept_encodings)
    if enc is not None and enc not in payload:
        payload, changed = {**payload, enc: FAST_ENCODERS[enc](payload["raw"])}, True
    if changed:
        cache.set(key, payload, timeout=120)
    if request.if_none_match and payload["etag"] in request.if_none_match:
        resp = Response(status=304)
    elif enc is not None:
        resp = Response(payload[enc], mimetype="application/json")
        resp.headers["Content-Encoding"] = enc
    else:
        resp = Response(payload["raw"], mimetype="application/json")
    resp.set_etag(payload["etag"])
    resp.headers["Vary"] = "Accept-Encoding"
    resp.headers["Cache-Control"] = "no-cache"  # revalidate: the ETag makes that cheap
    return resp


def _crs() -> str:
    return services().settings.tile_crs


@bp.get("/incidents.json")
def incidents_json():
    flt = filter_from_args()
    if not request.args.get("status"):
        flt.statuses = list(lifecycle.OPEN_STATES)
    now = maps.utcnow()
    # known parameters only, in one order, the default state spelled out: equal queries share one cache entry
    query = filters.canonical_query({**request.args.to_dict(), "status": request.args.get("status") or "open"})
    # keyed by the change sequence and the minute (overdue hours age with time)
    cap = services().settings.map_points_max
    key = f"map:inc:{_crs()}:{cap}:{maps.change_seq()}:{int(now.timestamp() // 60)}:{query}"
    return _json_response(key, lambda: maps.incident_points(flt, now, cap))


def _cells_view() -> tuple[tuple[float, float, float, float], float]:
    """(the box snapped outward to the cells' lattice, zoom) of an ``incident_cells.json`` request; a 400 naming
    ``bbox`` or ``zoom`` otherwise."""
    raw_zoom = request.args.get("zoom")
    if raw_zoom in (None, ""):
        raise ApiError(400, "missing_field", "zoom is required: the map's zoom (a number from 0 to 20)", "zoom")
    lo, hi = maps.CELL_ZOOMS
    if not grammar.matches(f"^{grammar.NUMBER}$", raw_zoom) or not lo <= float(raw_zoom) <= hi:
        raise ApiError(400, "invalid_value", f"zoom must be a number from {lo} to {hi}", "zoom")
    zoom = float(raw_zoom)
    raw = request.args.get("bbox")
    if raw in (None, ""):
        raise ApiError(400, "missing_field", "bbox is required: minlon,minlat,maxlon,maxlat of the view", "bbox")
    if not grammar.matches(grammar.BBOX, raw):
        raise ApiError(400, "invalid_value", "bbox must be minlon,minlat,maxlon,maxlat (decimal degrees of the map)",
                       "bbox")
    x1, y1, x2, y2 = (float(v) for v in raw.split(","))
    cell = maps.cell_size(zoom)
    box = maps.cell_box((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), cell)
    if max(box[2] - box[0], box[3] - box[1]) > maps.CELLS_MAX * cell + cell / 2:
        raise ApiError(400, "invalid_value", f"bbox spans more than {maps.CELLS_MAX} cells at zoom "
                       f"{maps.zoom_level(zoom)} ({maps.CELLS_MAX * cell:g}°): ask with the view's own zoom", "bbox")
    return box, zoom


@bp.get("/incident_cells.json")
def incident_cells_json():
    """The view's incidents counted per cell (:func:`services.maps.incident_cells`), cached per change sequence,
    minute, filter, zoom and the box snapped to the cells' lattice: views that differ by less than a cell share
    one entry. ``points=1``: with the box's markers (``points``) when it holds at most ``MAP_VIEW_MARKERS``."""
    box, zoom = _cells_view()
    points = request.args.get("points", "0")
    if points not in ("0", "1"):
        raise ApiError(400, "invalid_value", "points must be 0 or 1 (1: the markers too when few enough)", "points")
    args = {k: v for k, v in request.args.to_dict().items() if k not in ("bbox", "points")}
    try:  # the filter's own bbox is the view's (set by the service, in the store's coordinates)
        flt = filters.incident_filter(args)
    except filters.FilterError as e:
        raise ApiError(400, e.reason, e.message, e.field) from None
    if not request.args.get("status"):
        flt.statuses = list(lifecycle.OPEN_STATES)
    now = maps.utcnow()
    query = filters.canonical_query({**args, "status": request.args.get("status") or "open"})
    cap = services().settings.map_view_markers if points == "1" else None
    key = (f"map:cells:{_crs()}:{maps.change_seq()}:{int(now.timestamp() // 60)}:{maps.zoom_level(zoom)}:"
           f"{','.join(repr(v) for v in box)}:{cap}:{query}")
    return _json_response(key, lambda: maps.incident_cells(flt, box, zoom, cap, now))


@bp.get("/rings.json")
def rings_json():
    key = f"map:rings:{_crs()}:{maps.change_seq()}"
    return _json_response(key, maps.rings_collection)


def _period_from_args():
    try:
        return resolve(request.args.get("period"), request.args.get("from"), request.args.get("to"))
    except PeriodError as exc:
        raise ApiError(400, "invalid_value", str(exc), exc.field) from None


@bp.get("/hotspots.json")
def hotspots_json():
    per = _period_from_args()
    categories = [c for c in request.args.get("category", "").split(",") if c]
    unknown = [c for c in categories if c not in catalogue.CATEGORIES]
    if unknown:
        raise ApiError(400, "invalid_value", f"unknown category {unknown[0]!r}", "category")
    now = maps.utcnow()
    key = (f"map:hot:{_crs()}:{per.key}:{per.first_day}:{per.last_day}:"
           f"{','.join(sorted(categories))}:{maps.change_seq() // 50}:{int(now.timestamp() // 300)}")
    return _json_response(key, lambda: maps.hotspots_collection(per, categories))


@bp.get("/measures.json")
def measures_json():
    layer = request.args.get("layer", "zones")
    if layer not in maps.map_layers():
        raise ApiError(400, "invalid_value", f"layer must be one of {', '.join(maps.map_layers())}", "layer")
    measure = request.args.get("measure", "open_incidents")
    if measure not in maps.MEASURES:
        raise ApiError(400, "invalid_value", f"measure must be one of {', '.join(maps.MEASURES)}", "measure")
    per = _period_from_args()
    lang = "en" if request.args.get("lang") == "en" else "zh"
    return _json_response(maps.measure_payload_key(layer, measure, per, lang),
                          lambda: maps.measure_payload(layer, measure, per, lang))


def _gzipped(events):
    """The stream's events gzip-compressed one by one (``services.live.GzipStream``), the trailer at its end."""
    from ..services import live

    gz = live.GzipStream()
    try:
        for text in events:
            yield gz(text)
        yield gz.end()
    finally:
        events.close()  # a page gone: the stream's own ending (its slot) at once


def _stream_start():
    """Where a stream starts: ``Last-Event-ID`` (the browser reconnecting by itself) or ``after``/``aseq`` (the
    page: the sequences its layers were built at); neither: now."""
    from ..services import live

    head = live.parse_event_id(request.headers.get("Last-Event-ID"))
    if head is not None:
        return head
    after = int_param("after", None, 0, MAX_DB_INT)
    aseq = int_param("aseq", None, 0, MAX_DB_INT)
    if after is None:
        return None
    return live.Head(after, -1 if aseq is None else aseq)  # -1: the alert state is unknown, send it


@bp.get("/stream")
def stream():
    """``text/event-stream``: an event ``change`` (``id: <seq>.<aseq>``, data: :func:`services.live.delta`) after
    each commit that moved either sequence, then an event ``parts`` with the props of the page's live parts
    (``push``: ``{part: params}``, see ``dashboard.callbacks.pushed``; a bad part is a 400, one the viewer may not
    see a 403), a comment every ``HEARTBEAT_S``; the stream ends after ``LIFETIME_S``
    (the page reconnects with ``Last-Event-ID``). 503 with ``Retry-After`` when this worker's stream slots are
    taken. Filters as ``incidents.json`` (default ``status=open``). Gzip-compressed when the client accepts it
    (browsers do): each event flushed on its own, so it arrives at once. Who asks is checked again every
    ``HEARTBEAT_S`` while the stream is open: once the session has ended (sign-out, password change, a disabled
    user, a role change) the stream sends an event ``end`` (``{"reason": "signed_out"}``) and closes."""
    from ..auth import current_principal, session_hash, still_valid
    from ..services import live

    flt = filter_from_args()  # a bad filter: 400 before the stream opens
    if not request.args.get("status"):
        flt.statuses = list(lifecycle.OPEN_STATES)
    args = {k: v for k, v in request.args.to_dict().items() if k != "push"}
    query = filters.canonical_query({**args, "status": request.args.get("status") or "open"})
    start = _stream_start()
    hub = services().hub
    try:  # the page's live parts (services.live.Feed): checked before the stream opens
        asks = hub.parse_push(request.args.get("push")) if hub is not None else ()
    except ValueError as e:
        raise ApiError(400, "invalid_parameter", str(e), "push") from None
    except PermissionError as e:
        raise ApiError(403, "forbidden", str(e), "push") from None
    if hub is None or not hub.enter():
        raise ApiError(503, "unavailable", "no free stream slot on this server; retry shortly", None,
                       retry_after=3)
    crs = _crs()
    who = current_principal()
    sid_hash = session_hash()  # its session is re-read with the other streams of this process (auth.SessionChecks)

    def events():
        import time

        try:
            known = hub.head()
            if start is not None and start.seq > known.seq:  # a sequence from another store: start afresh
                yield live.event(known, {"seq": known.seq, "aseq": known.aseq, "reload": True})
            elif start is not None:
                known = live.Head(start.seq, start.aseq)
            yield f"retry: 2000\n: {hub.head().event_id}\n\n"
            # the page's live parts: the head each was last brought to on this page (the page's own at the start),
            # and which have not been sent on this stream yet (their first sending is whole, never a patch)
            parts_at = {name: known for name, _ in asks}
            whole = set(parts_at)
            ends = time.monotonic() + hub.lifetime_s
            wrote = checked = time.monotonic()
            while not hub.stopping and time.monotonic() < ends:
                if time.monotonic() - checked >= hub.heartbeat_s:  # who asks, again: a session may have ended
                    if not still_valid(who, sid_hash, hub.heartbeat_s / 2):
                        yield live.event(known, {"reason": "signed_out"}, "end")
                        return
                    checked = time.monotonic()
                head = hub.head()
                if head != known:  # the markers first: a part's rendering never holds them up
                    now = maps.utcnow()
                    key = (known.seq, known.aseq, head.seq, head.aseq, crs, query, int(now.timestamp() // 60))
                    yield hub.shared(key, lambda known=known, head=head, now=now: live.event(
                        head, live.delta(known.seq, head, flt, now, known.aseq)))
                    known, wrote = head, time.monotonic()
                    continue
                wait = hub.heartbeat_s
                due = tuple((name, params) for name, params in asks if parts_at[name] != known)
                if due:
                    sets, done, later = hub.pushed(due, parts_at, known, whole)
                    for name in done:
                        parts_at[name] = known
                        whole.discard(name)
                    if sets:
                        yield live.event(known, {"seq": known.seq, "aseq": known.aseq, "set": sets}, "parts")
                        wrote = time.monotonic()
                    if later is not None:  # a heavy part waits its turn: wake for it even if nothing changes
                        wait = min(wait, later + 0.05)
                wait = min(wait, max(0.0, ends - time.monotonic()))
                if hub.wait_beyond(known, wait) is None and time.monotonic() - wrote >= hub.heartbeat_s:
                    yield ": ping\n\n"
                    wrote = time.monotonic()
        finally:
            hub.leave()

    body = events()
    resp = Response(stream_with_context(_gzipped(body) if request.accept_encodings["gzip"] else body),
                    mimetype="text/event-stream")
    if request.accept_encodings["gzip"]:  # what the browser receives: each event compressed as it goes
        resp.headers["Content-Encoding"] = "gzip"
    resp.headers["Vary"] = "Accept-Encoding"
    resp.headers["Cache-Control"] = "no-cache, no-transform"
    resp.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event at once
    return resp
