"""Live by push: one :class:`Hub` per server process watches the store's change sequence and wakes every open
stream (``GET /api/map/stream``, Server-Sent Events) when something was committed — by any worker or host.

- **Waking.** A single thread per process waits on :class:`dashboard.store.live.ChangeWaiter` (PostgreSQL
  ``LISTEN``: woken at commit; SQLite: a look-up every ``LIVE_POLL_S``) and then reads the head: the incident
  change sequence and the alert sequence. Viewers cost nothing while nothing changes (a heartbeat comment every
  ``HEARTBEAT_S``).
- **Only what changed.** A stream that knows sequence ``after`` receives the incidents changed since then that
  match its filter (map features, the same serialiser as ``/api/map/incidents.json``), the ids that no longer
  match, whether a safety ring's count may have moved, and the new sequences. Each payload is built once per
  (after, head, filter) and shared by every stream at that point (:meth:`Hub.shared`) — with Redis once between
  all the workers and hosts: the first to need it builds it under a build lock and stores it, the others read it
  (``dashboard.cache.remember``).
- **No gap, no duplicate.** Every event carries ``id: <seq>.<aseq>``; a stream that reconnects (its own ``after``
  or the browser's ``Last-Event-ID``) gets everything after what it had, once: features are upserted by id.
  Beyond ``MAX_DELTA`` changes it is told to reload the layer instead.
- **What the page shows, pushed.** A page names its live parts (``push``: ``{name: params}``, e.g. the duty
  list of its filter, the alert banner, the zone colours of its measure, the wall's ticker and header, the
  overview's KPI cards); each :class:`Feed` (registered by the callbacks layer at start-up, see
  ``dashboard.callbacks.pushed``) renders that part's new props once per change for every page that shows the
  same thing (with Redis once between the workers), and the event carries them (``set``: ``[[component id,
  {prop: value}], …]``, applied in the browser by ``dash_clientside.set_props``) — no callback request per page
  and change.
- **Bounded.** At most ``slots`` open streams per process (``STREAM_SLOTS``; the server gives each worker that
  many threads on top of the ones for ordinary requests, so streams never hold up a page load); a stream ends
  after ``lifetime_s`` and the page reconnects seamlessly, so a restart or a deploy never waits on old streams.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from ..cache import SingleFlight
from ..store import live as store_live
from ..store import queries, sequence
from ..store.queries import IncidentFilter
from . import db

log = logging.getLogger("dashboard.live")

HEARTBEAT_S = 15.0  # a comment line: keeps proxies from closing the stream, finds closed pages
LIFETIME_S = 300.0  # a stream then ends; the page reconnects from where it was
MAX_DELTA = 2000  # changes in one event; beyond, the page reloads its layer
MEMO = 128  # shared payloads kept (events, deltas, pushed parts)
FEED_STATES = 256  # feed states kept (what a part showed at a head: the base of the next change's patch)


@dataclass(frozen=True)
class Head:
    seq: int  # newest committed incident change (store.sequence.latest)
    aseq: int  # newest alert change

    @property
    def event_id(self) -> str:
        return f"{self.seq}.{self.aseq}"


def parse_event_id(value: str | None) -> Head | None:
    """``"<seq>.<aseq>"`` (a stream's ``Last-Event-ID``) or None when it is not one."""
    if not value:
        return None
    parts = value.strip().split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) < 19 for p in parts):
        return None
    return Head(int(parts[0]), int(parts[1]))


class Feed(Protocol):
    """One live part of a page, pushed in the stream's events instead of a callback run per page and change.
    ``heavy`` (KPI figures: a bundle per rendering) parts are rendered at most once per ``Hub.figures_s`` seconds
    while changes come (in windows of the wall clock, the same in every worker, so that all of them render at the
    same head and share one rendering), and once more after the last. An optional ``version`` (int) moves when the
    part's props change shape, so that workers of two versions never share a rendering through the cache."""

    heavy: bool

    def parse(self, raw: Any) -> tuple | None:
        """The page's parameters (JSON, from the stream URL) checked and made hashable, with what the asking user
        may see (their audience) folded in; None: nothing to push for these; ValueError: refused (a 400)."""

    def render(self, params: tuple, head: "Head", before: "Head", prior: Any) -> tuple[list, Any]:
        """``([[component id, {prop: value}], …], state)`` taking a page that showed ``before`` to ``head``;
        ``prior``: this feed's state at ``before`` when this process rendered it (then a patch of what changed
        suffices), else None (send it whole)."""


def read_head() -> Head:
    with db.session() as s:
        return Head(*sequence.heads(s))


class Hub:
    """The process's live watcher and the open streams' meeting point (one per app, on ``Services.hub``)."""

    def __init__(self, app, engine, *, slots: int = 100, poll_s: float = 0.5, heartbeat_s: float = HEARTBEAT_S,
                 lifetime_s: float = LIFETIME_S, feeds: Mapping[str, Feed] | None = None, figures_s: float = 5.0,
                 cache=None):
        self._app = app
        self._engine = engine
        self.slots = slots
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.lifetime_s = lifetime_s
        self._cond = threading.Condition()
        self._head: Head | None = None
        self._thread: threading.Thread | None = None
        self._waiter: store_live.ChangeWaiter | None = None
        self._stopping = False
        self._open = 0
        self._memo: OrderedDict = OrderedDict()
        self._memo_lock = threading.Lock()
        self._flight = SingleFlight()
        self.builds = 0  # shared payloads built or fetched for this process (for tests and the bench)
        self.computed = 0  # change events computed here (not read from another worker's build through the cache)
        self.feeds: Mapping[str, Feed] = dict(feeds or {})
        self._states: OrderedDict = OrderedDict()
        self.feed_builds: dict[str, int] = {}  # pushed parts rendered, by part (tests and the bench)
        self.figures_s = figures_s  # a heavy part (KPI figures) is rendered at most this often per parameters
        self._rendered: dict = {}  # (part, params) -> when it was last rendered (time.time: windows shared by workers)
        # the shared cache (Redis in production, files embedded): a part rendered by one worker serves the others
        self._cache = cache

    # ---------------------------------------------------------------- the watcher
    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            self._waiter = store_live.ChangeWaiter(self._engine, self.poll_s)
            self._thread = threading.Thread(target=self._run, name="live-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        waiter = self._waiter
        # with notifications a look-up every 2 s only covers a lost one; without, every poll_s
        fallback = 2.0 if waiter.pushes else self.poll_s
        with self._app.app_context():
            while not self._stopping:
                try:
                    # PostgreSQL: one query on the listening connection (no pool checkout, ping, begin, rollback)
                    heads = waiter.heads()
                    head = Head(*heads) if heads is not None else read_head()
                except Exception as exc:  # noqa: BLE001 - the store is down: keep the last head, try again
                    log.warning("live hub cannot read the store (%s)", type(exc).__name__)
                    waiter.wait(1.0)
                    continue
                with self._cond:
                    if head != self._head:
                        self._head = head
                        self._cond.notify_all()
                waiter.wait(fallback)
        waiter.close()

    def head(self) -> Head:
        """The current head (read directly the first time, so a new stream never waits for the thread)."""
        if self._head is None:
            head = read_head()
            with self._cond:
                if self._head is None:
                    self._head = head
        self._start()
        return self._head

    def wait_beyond(self, known: Head, timeout: float) -> Head | None:
        """The head once it differs from ``known``; None after ``timeout`` or when stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping or (self._head is not None and self._head != known),
                                timeout)
            if self._stopping or self._head is None or self._head == known:
                return None
            return self._head

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """End every stream of this process now (a worker shutting down) and the watcher."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._waiter is not None:
            self._waiter.stop()

    # ---------------------------------------------------------------- stream slots
    def enter(self) -> bool:
        with self._cond:
            if self._stopping or self._open >= self.slots:
                return False
            self._open += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._open -= 1

    @property
    def open_streams(self) -> int:
        return self._open

    # ---------------------------------------------------------------- shared payloads
    def shared(self, key: tuple, build, across: bool = True):
        """``build()`` once per ``key`` however many streams ask at the same time (:class:`dashboard.cache.
        SingleFlight`); later askers get the kept copy (the newest :data:`MEMO`). ``across``: with a cache shared
        between the workers under build locks (Redis, ``cache.wx_locks``), once between all of them (the value must
        be plain: it goes through the cache)."""
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]

        def build_and_keep():
            with self._memo_lock:
                if key in self._memo:  # kept by a flight that ended just before this one began
                    return self._memo[key]
            locks = getattr(self._cache, "wx_locks", None) if across else None
            if locks is not None:
                from ..cache import remember_built

                digest = hashlib.sha1(repr(key).encode()).hexdigest()
                value, here = remember_built(self._cache, "live-shared:" + digest, 120, build)
            else:
                value, here = build(), True
            with self._memo_lock:
                self.builds += 1
                self.computed += bool(across and here)
                self._memo[key] = value
                while len(self._memo) > MEMO:
                    self._memo.popitem(last=False)
            return value

        return self._flight.run(key, build_and_keep)

    # ---------------------------------------------------------------- pushed parts
    def parse_push(self, raw: str | None) -> tuple:
        """``((name, params), …)`` from a stream's ``push`` parameter (a JSON object ``{name: params}``); unknown
        names and bad parameters raise ValueError, a part the asking user may not see PermissionError."""
        if not raw:
            return ()
        if len(raw) > 4000:
            raise ValueError("push is too long")
        try:
            asked = json.loads(raw)
        except ValueError:
            raise ValueError("push must be a JSON object") from None
        if not isinstance(asked, dict) or len(asked) > len(self.feeds):
            raise ValueError("push must be a JSON object of live parts")
        out = []
        for name in sorted(asked):
            feed = self.feeds.get(name)
            if feed is None:
                raise ValueError(f"unknown live part {name!r}")
            params = feed.parse(asked[name])
            if params is not None:
                out.append((name, params))
        return tuple(out)

    def pushed(self, due: tuple, parts_at: Mapping[str, Head], head: Head, whole: set) -> tuple[list, list, float | None]:
        """The props that bring each due part (``(name, params)``) from where this stream has it (``parts_at``)
        to ``head``: ``(sets, the parts brought, seconds until a deferred one may be rendered, or None)``.
        A part in ``whole`` (its first rendering on this stream) is sent whole, else as what changed since the
        part's state at its ``before`` (when this process rendered it). Each (part, params, before, head, whole)
        is rendered once however many streams ask (with Redis: once between the workers); a heavy part waits for
        the next window of ``figures_s`` seconds of the wall clock after its last rendering (at least half of it
        later), so that every worker renders it at the same moment, hence at the same head."""
        import time

        out: list = []
        done: list = []
        wait: float | None = None
        for name, params in due:
            before, is_whole = parts_at[name], name in whole
            key = ("feed", name, params, before, head, is_whole)
            feed = self.feeds[name]
            with self._memo_lock:
                kept = key in self._memo
                last = self._rendered.get((name, params))
            now = time.time()  # the wall clock: the same windows in every worker (and host)
            if not kept and getattr(feed, "heavy", False) and last is not None and self.figures_s > 0:
                span = self.figures_s
                due_at = max(last + span / 2, (last // span + 1) * span)
                if now < due_at:
                    left = due_at - now
                    wait = left if wait is None else min(wait, left)
                    continue

            def build(name=name, params=params, before=before, is_whole=is_whole, feed=feed, key=key):
                from ..cache import remember_built

                with self._memo_lock:
                    self._rendered[(name, params)] = time.time()
                    prior = None if is_whole else self._states.get((name, params, before))

                def render():
                    from plotly.io.json import to_json_plotly

                    sets, state = feed.render(params, head, before, prior)
                    return json.loads(to_json_plotly(sets)), state  # plain JSON: any worker can read it

                # a part's ``version`` moves when its props change shape: a worker of another version (a rolling
                # deploy) never takes this one's rendering or state. Another worker's rendering for the same point
                # (read from the cache, or waited for under its build lock): the same props for every page.
                shared_key = "live-part:" + hashlib.sha1(repr((key, getattr(feed, "version", 0))).encode()).hexdigest()
                (sets, state), here = remember_built(self._cache, shared_key, 120, render)
                with self._memo_lock:
                    if here:
                        self.feed_builds[name] = self.feed_builds.get(name, 0) + 1
                    self._states[(name, params, head)] = state
                    self._states.move_to_end((name, params, head))
                    while len(self._states) > FEED_STATES:
                        self._states.popitem(last=False)
                return sets

            try:
                out.extend(self.shared(key, build, across=False))  # shared between workers in build()
            except Exception:  # noqa: BLE001 - one part failing must not end the stream: the page keeps it
                log.exception("live part %s failed", name)
            done.append(name)
        return out, done, wait


def delta(after: int, head: Head, flt: IncidentFilter, now: dt.datetime, aseq_known: int | None = None) -> dict:
    """What a stream filtered by ``flt`` that has seen sequence ``after`` needs to reach ``head``:
    ``{"seq", "aseq", "upsert": [map features], "remove": [ids], "rings": bool}`` or ``{"seq", "aseq",
    "reload": true}`` when more than :data:`MAX_DELTA` incidents changed; with ``"alerts"``: the incidents whose
    alert is active (their markers pulse) when the alert sequence moved since ``aseq_known``."""
    from . import maps

    out = {"seq": head.seq, "aseq": head.aseq}
    if aseq_known != head.aseq:
        from . import alerts as alert_service

        out["alerts"] = sorted({a["incident"]["id"] for a in alert_service.snapshot(head.aseq)["items"]})
    if head.seq <= after:
        return {**out, "upsert": [], "remove": [], "rings": False}
    with db.session() as s:
        rows = queries.changed_points(s, after, head.seq, MAX_DELTA + 1)
        if len(rows) > MAX_DELTA:
            return {**out, "reload": True}
        match = queries.matching_ids(s, flt, [r.id for r in rows])
    shown = [r for r in rows if r.id in match]
    features = maps.incidents_collection(shown, now)["features"]
    touched = maps.incidents_collection(rows, now)["features"] if len(shown) != len(rows) else features
    return {**out, "upsert": features, "remove": [r.id for r in rows if r.id not in match],
            "rings": any(f["properties"]["hz"] for f in touched)}


class GzipStream:
    """One stream's gzip encoder: each event compressed and flushed at once (``Z_SYNC_FLUSH``: the browser can
    decode it on arrival), with the stream's earlier events as the dictionary — a parts event repeats the key
    names, patch operations and often whole values of the ones before it, so it costs a fraction of its text.
    A 32 KB window (it holds a whole wall's first sending) and ``memLevel`` 6: about 170 KB per open stream."""

    def __init__(self):
        self._z = zlib.compressobj(6, zlib.DEFLATED, 16 + 15, 6)

    def __call__(self, text: str) -> bytes:
        return self._z.compress(text.encode("utf-8")) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


def event(head: Head, body: dict, name: str = "change") -> str:
    """One Server-Sent Event (pushed parts are plain JSON already: :meth:`Hub.pushed` stores them so)."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return f"id: {head.event_id}\nevent: {name}\ndata: {data}\n\n"
