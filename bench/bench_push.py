"""Push drill (issue 12): how many dashboard pages one server holds now that pages are live by push, what a change
costs, and what open streams cost while nothing happens; against real gunicorn workers.

A page is one open Server-Sent Events stream (``GET /api/map/stream`` with its kind's default filter) plus the
callbacks its kind runs after each change. What a kind runs after a change is recorded from a real headless
Chromium page of that kind (duty desk signed in as the demo duty officer, the wall through its kiosk token, the
overview as the demo leader): once the page has drawn and gone quiet (with push an idle page sends nothing),
``--record-changes`` (4) reports are posted one by one (the second raises an alert) and every request the page
makes between the post and the moment it has gone quiet again is kept, timed from the moment the change arrived.

Virtual pages (``requests``: one thread reading the stream line by line, one replaying the callbacks) in a
centre's mix (60 % duty desks, 20 % walls, 20 % overviews) then live on the server: on each event the replay
thread sends the recorded callbacks of a change of the same sort (alert or not) at their recorded offsets, the
way the browser would: the values the server gave back (``duty-live``, ``wall-live-state``, ``alert-store`` …)
are carried into the next request, ``map-seq`` / ``live-aseq`` / ``live-tick`` take the event's sequences, and
the ring layer is refetched when the event says a ring may have moved (``assets/live.js``). Pages are added in
steps (``--steps`` 25,50,100,200: the earlier pages stay open), each step measured for ``--seconds`` (180)
while one report a second is posted (one in ten severe: an alert). Then ``--idle`` (60) seconds with every
stream open and no post.

Per step: pages held (stream connected throughout, every posted incident received, ≥ 99 % of its callbacks 2xx
/ 204 / 304 with p95 ≤ 2 s), errors, POST → event latency (from the POST's response to each page's event
carrying that incident: p50 / p95 / max over every page and post), bytes of an event for one changed incident,
stream bytes per page per change (on the wire: the stream comes gzip-compressed, as a browser asks for it; and
the events' text before compression, per part: each component id's props), callback bytes per page per change,
server CPU (utime + stime of the gunicorn master and workers from ``/proc``): % of a core, per request
(callbacks, ring refetches, posts) and per change, each worker's seconds (``worker_cpu_s``, largest first: how
evenly the work is spread, or whether every worker repeats it), and the bench client's own CPU (it shares the
machine's two cores with the server).

    python -m bench.bench_push [--lane embedded|production] [--steps 25,50,100,200] [--seconds 180] [--idle 60]

``embedded``: 2 gunicorn workers on SQLite with the file cache (``make run``); ``production``: 4 workers on a
scratch PostgreSQL database with Redis (db 12; ``BENCH_PG_URL``: a scratch schema in that database instead,
``BENCH_REDIS_URL``: that Redis database, flushed). Both run as ``python -m dashboard serve`` does: ``--threads
4+STREAM_SLOTS`` and ``-c python:dashboard.gunicorn_conf``. Every virtual page comes from 127.0.0.1 and shares
one of two accounts: the drill raises the rate limits (it measures the service, not the limiter). Results:
bench/results/push-<lane>.json with the machine and its load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from bench.common import ROOT, chromium, write_results

KINDS = {"duty": 0.6, "wall": 0.2, "overview": 0.2}
ORDER = ("duty", "wall", "duty", "overview", "duty")  # every 5 pages: the mix, so each step keeps it
TOKEN, WALL_TOKEN = "push-token", "push-wall"
LIMITS = {"RATE_LIMIT_CALLBACKS": "10000000/minute", "RATE_LIMIT_READ": "10000000/minute",
          "RATE_LIMIT_EXPENSIVE": "10000000/minute", "RATE_LIMIT_LOGIN_NAME": "10000/minute",
          "RATE_LIMIT_LOGIN_ADDRESS": "10000/minute", "RATE_LIMIT_INGEST": "10000000/minute"}
PAGE = {"duty": "/incidents", "wall": f"/wall?token={WALL_TOKEN}&tour=3600", "overview": "/"}
READY = {"duty": "#duty-grid .ag-row", "wall": "path.wx-layer-grids", "overview": "path.wx-layer-grids"}
REDIS_DB = 12
STREAM_SLOTS = 150  # per worker: slots × workers ≥ 1.3 × the 200 pages of the last step (embedded: 2 workers)
OK = (200, 204, 304)
STATIC = ("/assets/", "/_favicon", "/_dash-component-suites/", "/_dash-layout", "/_dash-dependencies")
CLK = os.sysconf("SC_CLK_TCK")


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else None


def _ms(x):
    return None if x is None else round(x * 1000, 1)


# ------------------------------------------------------------------------------------------------ server
def serve(lane: str, folder: Path):
    from tests.integration.test_production_path import Gunicorn

    env = {"API_TOKENS": TOKEN, "WALL_TOKENS": WALL_TOKEN, "DEMO_USERS": "1", "INSTANCE_DIR": str(folder / "inst"),
           "STREAM_SLOTS": str(STREAM_SLOTS), **LIMITS}
    cleanup = []
    if lane == "production":
        import psycopg
        import redis

        name = f"wx_push_{uuid.uuid4().hex[:8]}"
        redis_url = os.environ.get("BENCH_REDIS_URL") or f"redis://127.0.0.1:6379/{REDIS_DB}"
        given = os.environ.get("BENCH_PG_URL")  # a database to use (a scratch schema in it), not to create one in
        admin = psycopg.connect(given or "postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        if given:
            admin.execute(f'CREATE SCHEMA "{name}"')
            url = f"{given}?options=-csearch_path%3D{name}"
        else:
            admin.execute(f'CREATE DATABASE "{name}"')
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        redis.Redis.from_url(redis_url).flushdb()
        env.update(DATABASE_URL=url, REDIS_URL=redis_url)

        def drop():
            if given:
                admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            else:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.close()
            redis.Redis.from_url(redis_url).flushdb()
        cleanup.append(drop)
        workers = 4
    else:
        url = f"sqlite:///{folder / 'inst' / 'wuxing.sqlite3'}"
        (folder / "inst").mkdir(parents=True, exist_ok=True)
        env.update(DATABASE_URL=url, CACHE_URL=f"file://{folder / 'cache'}")
        workers = 2
    args = ["--threads", str(4 + STREAM_SLOTS), "-c", "python:dashboard.gunicorn_conf", "--graceful-timeout", "10"]
    try:
        subprocess.run([sys.executable, "-m", "dashboard.demo", "history", "--db", url, "--scale", "0.05", "--quiet"],
                       cwd=ROOT, check=True, capture_output=True)
        server = Gunicorn(env, workers=workers, args=args, log_path=str(folder / "gunicorn.log")).start()
    except BaseException:  # the scratch database (or schema) goes with a server that did not start
        for f in cleanup:
            f()
        raise
    return server, cleanup


def _ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


class CpuMeter:
    """CPU seconds of the gunicorn master and its workers (and of this client) between two marks."""

    def __init__(self, master: int):
        self.master = master

    def sample(self) -> dict:
        pids = [self.master, *_children(self.master)]
        t = os.times()
        return {"at": time.monotonic(), "master": self.master, "server": {p: _ticks(p) for p in pids},
                "client": t.user + t.system}

    @staticmethod
    def between(a: dict, b: dict) -> dict:
        wall = b["at"] - a["at"]
        common = [p for p in b["server"] if p in a["server"] and a["server"][p] is not None and b["server"][p]]
        server_s = sum(b["server"][p] - a["server"][p] for p in common) / CLK
        by_process = sorted((round((b["server"][p] - a["server"][p]) / CLK, 2) for p in common if p != a["master"]),
                            reverse=True)
        return {"wall_s": round(wall, 1), "server_cpu_s": round(server_s, 2),
                "master_cpu_s": round(sum(b["server"][p] - a["server"][p] for p in common
                                          if p == a["master"]) / CLK, 2),
                "worker_cpu_s": by_process,
                "server_pct_of_core": round(100 * server_s / wall, 1) if wall else None,
                "client_pct_of_core": round(100 * (b["client"] - a["client"]) / wall, 1) if wall else None,
                "workers_changed": sorted(set(a["server"]) ^ set(b["server"]))}


# ------------------------------------------------------------------------------------------------ ingest
class Ingest(threading.Thread):
    """One report a second through the API (the grid app's back end); one in ten severe (an alert)."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        from dashboard.geodata import load_geodata

        grids = load_geodata(ROOT / "geodata").grids
        self.points = [(p.x, p.y) for p in grids.geometry.representative_point()]
        self.base, self.stop, self.posts, self.i = base, threading.Event(), [], 0
        self.paused = threading.Event()

    def post(self, severity: int = 2) -> dict:
        i = self.i
        self.i += 1
        lon, lat = self.points[(i * 37) % len(self.points)]
        t0 = time.monotonic()
        try:
            r = requests.post(self.base + "/api/v1/incidents", timeout=30,
                              headers={"Authorization": f"Bearer {TOKEN}"},
                              json={"category": "city.appearance", "lon": lon, "lat": lat, "severity": severity,
                                    "description": f"推送演练 {i}", "client_ref": f"push-{uuid.uuid4().hex}"})
            status = r.status_code
            inc_id = r.json().get("id") if status == 201 else None
        except (requests.RequestException, ValueError):
            status, inc_id = 0, None
        rec = {"sent": t0, "done": time.monotonic(), "status": status, "id": inc_id, "severity": severity}
        self.posts.append(rec)
        return rec

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            if not self.paused.is_set():
                self.post(4 if self.i % 10 == 5 else 2)
            self.stop.wait(max(0.0, 1 - (time.monotonic() - t0)))


# ------------------------------------------------------------------------------------------------ recording
def _quiet(seen: list, page, secs: float = 1.5, timeout: float = 30.0) -> None:
    """Wait until the page has sent nothing (but its stream) for ``secs``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = max([t for t, _, u, *_ in seen if "/api/map/stream" not in u] or [0])
        if time.monotonic() - last >= secs:
            return
        page.wait_for_timeout(200)


def _stream_open(page) -> None:
    page.wait_for_function("() => window.wx && window.wx.live && window.wx.live.state().connected "
                           "&& window.wx.live.size() !== null", timeout=120_000)


def record(base: str, ingest: Ingest, changes: int) -> dict:
    """Per kind: its stream's filter, its ring layer's url and, per recorded change, what the page sent after it
    (offset from the change's arrival, method, path, body, content type) and whether the alerts moved."""
    out = {}
    with chromium() as browser:
        for kind in KINDS:
            ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
            page = ctx.new_page()
            if kind != "wall":
                user, pw = ("duty", "duty-demo") if kind == "duty" else ("leader", "leader-demo")
                page.request.post(base + "/login", form={"username": user, "password": pw, "next": "/"},
                                  headers={"Origin": base}, max_redirects=0)
            seen: list = []
            page.on("request", lambda r, seen=seen: seen.append((time.monotonic(), r.method, r.url, r.post_data,
                                                                 r.headers.get("content-type"))))
            page.goto(base + PAGE[kind])
            page.wait_for_selector(READY[kind], timeout=120_000)
            _stream_open(page)
            _quiet(seen, page, 2.0, 60)
            streams = [u for _, _, u, *_ in seen if "/api/map/stream" in u]
            rings = [u for _, _, u, *_ in seen if "/api/map/rings.json" in u]
            query = [(k, v) for k, v in parse_qsl(urlsplit(streams[0]).query) if k not in ("after", "aseq", "v")]
            rec = {"stream_query": urlencode(query), "rings": None, "changes": [], "idle_requests": 0}
            if rings:
                rq = [(k, v) for k, v in parse_qsl(urlsplit(rings[0]).query) if k != "v"]
                rec["rings"] = urlsplit(rings[0]).path + ("?" + urlencode(rq) if rq else "")
            t_idle = time.monotonic()
            page.wait_for_timeout(3000)
            rec["idle_requests"] = sum(1 for t, _, u, *_ in seen if t >= t_idle and "/api/map/stream" not in u)
            for k in range(changes):
                before = page.evaluate("() => window.wx.live.state()")
                t_post = time.monotonic()
                post = ingest.post(4 if k == 1 else 2)
                if post["status"] != 201:
                    raise RuntimeError(f"recording post failed: {post}")
                page.wait_for_function("id => window.wx.live.ids().indexOf(id) >= 0", arg=post["id"],
                                       timeout=30_000)
                state = page.evaluate("() => window.wx.live.state()")
                t_evt = time.monotonic() - (time.time() - state["lastEventAt"] / 1000)
                _quiet(seen, page, 2.0, 30)
                sent = [(max(0.0, t - t_evt), m, u[len(base):], b, ct) for t, m, u, b, ct in seen
                        if t >= t_post and u.startswith(base) and "/api/map/stream" not in u]
                rec["changes"].append({"alert": state["aseq"] != before["aseq"], "sent": sent,
                                       "arrived_after_post_ms": round((t_evt - post["done"]) * 1000, 1)})
            out[kind] = rec
            ctx.close()
    return out


def _callback_key(body: str | None) -> str:
    try:
        return "callback " + json.loads(body).get("output", "")[:70]
    except (TypeError, ValueError, AttributeError):
        return "callback ?"


def scripts_of(rec: dict) -> dict:
    """Per sort of change ("alert" / "plain"): the list of request scripts a page replays. Left out: ring
    refetches (a page refetches its ring layer when the event says so, whichever the change) and static files
    (the alert sound, the favicon: the browser has them cached)."""
    out: dict = {"alert": [], "plain": []}
    for ch in rec["changes"]:
        script = [s for s in ch["sent"] if not s[2].startswith(("/api/map/rings.json",) + STATIC)]
        out["alert" if ch["alert"] else "plain"].append(script)
    if not out["alert"]:
        out["alert"] = out["plain"]
    if not out["plain"]:
        out["plain"] = out["alert"]
    return out


# ------------------------------------------------------------------------------------------------ a virtual page
def _part_sizes(data: str) -> dict:
    """{component id: bytes of its props' JSON} of a ``parts`` event (its text, before compression)."""
    try:
        sets = json.loads(data).get("set", [])
    except ValueError:
        return {}
    out: dict = {}
    for cid, props in sets:
        key = cid if isinstance(cid, str) else json.dumps(cid, sort_keys=True)
        out[key] = out.get(key, 0) + len(json.dumps(props, ensure_ascii=False, separators=(",", ":")).encode())
    return out


def _dash_key(cid) -> str:
    return cid if isinstance(cid, str) else json.dumps(cid, sort_keys=True, separators=(",", ":"))


class VirtualPage:
    def __init__(self, idx: int, kind: str, base: str, rec: dict, scripts: dict, quiet: threading.Event):
        self.idx, self.kind, self.base, self.rec, self.scripts = idx, kind, base, rec, scripts
        self.quiet = quiet  # set: streams only, no callbacks (what the push path alone costs)
        self.sess = requests.Session()
        self.stream_sess = requests.Session()
        self.store: dict = {}  # "<id>.<prop>" -> value, as the browser holds it
        # (t, bytes on the wire, seq, aseq, upsert ids, remove ids, rings, n upsert, bytes of its text)
        self.events: list = []
        self.parts: list = []  # (t, bytes on the wire, bytes of its text, {component id: bytes of its props})
        self.answers: list = []  # (t, key, status, seconds, bytes)
        self.breaks: list = []  # (t, what): a stream that ended, failed to open, or a refused open
        self.opened_at: float | None = None
        self.head: tuple | None = None
        self.last_id: str | None = None
        self.stop = threading.Event()
        self.q: queue.Queue = queue.Queue()
        self.n_changes = 0
        self.coalesced = 0
        self.busy = False

    def sign_in(self) -> None:
        for attempt in range(3):
            try:
                return self._sign_in()
            except requests.RequestException:
                if attempt == 2:
                    raise
                time.sleep(2)

    def _sign_in(self) -> None:
        for sess in (self.sess, self.stream_sess):
            if self.kind == "wall":
                r = sess.get(f"{self.base}{PAGE['wall']}", timeout=60)
            else:
                user, pw = ("duty", "duty-demo") if self.kind == "duty" else ("leader", "leader-demo")
                r = sess.post(self.base + "/login", data={"username": user, "password": pw, "next": "/"},
                              headers={"Origin": self.base}, timeout=60)
            r.raise_for_status()

    def start(self) -> None:
        threading.Thread(target=self._stream, daemon=True, name=f"stream-{self.idx}").start()
        threading.Thread(target=self._replay, daemon=True, name=f"replay-{self.idx}").start()

    def close(self) -> None:
        """Stop replaying; the stream ends when the server stops (closing it here would wait on the reader)."""
        self.stop.set()
        self.q.put(None)

    # ---- the stream (as EventSource: reconnects with Last-Event-ID)
    def _stream(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            headers = {"Accept": "text/event-stream", "Referer": self.base + PAGE[self.kind]}
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                r = self.stream_sess.get(f"{self.base}/api/map/stream?{self.rec['stream_query']}", headers=headers,
                                         stream=True, timeout=(10, 60))
            except requests.RequestException as exc:
                self.breaks.append((time.monotonic(), f"open: {type(exc).__name__}"))
                self.stop.wait(backoff)
                backoff = min(15.0, backoff * 2)
                continue
            if r.status_code != 200:
                self.breaks.append((time.monotonic(), f"open: {r.status_code}"))
                r.close()
                self.stop.wait(backoff)
                backoff = min(15.0, backoff * 2)
                continue
            backoff = 1.0
            buf, wire = b"", 0
            # as a browser: the stream comes gzip-compressed (requests asks for it); an event's bytes are the
            # compressed bytes on the wire that carried it (each event is flushed on its own), its text beside
            unzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if r.headers.get("Content-Encoding") == "gzip" else None
            try:
                for chunk in r.raw.read_chunked(None, decode_content=False):
                    now = time.monotonic()
                    wire += len(chunk)
                    buf += unzip.decompress(chunk) if unzip else chunk
                    while b"\n\n" in buf:
                        block, buf = buf.split(b"\n\n", 1)
                        self._block(block, now, wire if unzip else len(block) + 2)
                        wire = 0
                    if self.stop.is_set():
                        break
            except Exception as exc:  # noqa: BLE001
                if not self.stop.is_set():
                    self.breaks.append((time.monotonic(), f"read: {type(exc).__name__}"))
            else:
                if not self.stop.is_set():
                    self.breaks.append((time.monotonic(), "ended"))
            finally:
                r.close()

    def _block(self, block: bytes, now: float, wire: int) -> None:
        fields: dict = {}
        for line in block.decode("utf-8").split("\n"):
            if line.startswith(":"):
                comment = line[1:].strip()
                if "." in comment and comment.replace(".", "").isdigit() and self.head is None:
                    seq, aseq = comment.split(".")
                    self.head = (int(seq), int(aseq))
                    if self.opened_at is None:
                        self.opened_at = now
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if fields.get("event") == "parts" and "data" in fields:  # the page's live parts (callbacks.pushed)
            self.parts.append((now, wire, len(block) + 2, _part_sizes(fields["data"])))
            return
        if fields.get("event") != "change" or "data" not in fields:
            return
        self.last_id = fields.get("id") or self.last_id
        d = json.loads(fields["data"])
        prev = self.head
        self.head = (d["seq"], d["aseq"])
        ups = [f["properties"]["id"] for f in d.get("upsert", [])]
        self.events.append((now, wire, d["seq"], d["aseq"], set(ups), d.get("remove", []),
                            bool(d.get("rings")), len(ups), len(block) + 2))
        self.q.put((now, d, prev))

    # ---- the callbacks after a change
    def _seed(self, key: str, value, head: tuple):
        """A recorded value the page would hold now: the sequences it was built at are the head it opened at."""
        seq, aseq = head
        if key == "duty-live.data" and isinstance(value, dict):
            return {**value, "seq": seq}
        if key == "wall-live-state.data" and isinstance(value, dict):
            return {**value, "seq": seq, "aseq": aseq}
        if key == "alert-store.data" and isinstance(value, dict):
            return {**value, "seq": aseq}
        return value

    def _rebase(self, entries, head: tuple):
        if isinstance(entries, list):
            return [self._rebase(e, head) for e in entries]
        if not isinstance(entries, dict) or "id" not in entries:
            return entries
        key = f"{_dash_key(entries['id'])}.{entries.get('property')}"
        if key not in self.store:
            self.store[key] = self._seed(key, entries.get("value"), head)
        return {**entries, "value": self.store[key]}

    def _replay(self) -> None:
        counters = {"alert": 0, "plain": 0}
        while not self.stop.is_set():
            self.busy = False
            item = self.q.get()
            if item is None:
                return
            self.busy = True
            pending = [item]
            while not self.q.empty():  # busy: the page would run once for the newest sequences
                nxt = self.q.get()
                if nxt is None:
                    return
                pending.append(nxt)
            self.coalesced += len(pending) - 1
            t_evt, d, prev = pending[-1]
            first_prev = pending[0][2] or prev
            alert = any(p[1].get("aseq") != (p[2] or (None, None))[1] for p in pending)
            rings = any(p[1].get("rings") for p in pending)
            self.n_changes += 1
            seq, aseq = d["seq"], d["aseq"]
            base_head = first_prev or (seq, aseq)
            self.store["map-seq.data"] = seq
            self.store["live-aseq.data"] = aseq
            self.store["live-tick.data"] = {"seq": seq, "aseq": aseq}
            sort = "alert" if alert else "plain"
            choices = self.scripts[sort]
            script = choices[counters[sort] % len(choices)] if choices else []
            counters[sort] += 1
            steps = [] if self.quiet.is_set() else list(script)
            # live.js refetches the ring layer only on a page whose ring counts are not pushed (part "rings")
            pushed_rings = '"rings"' in dict(parse_qsl(self.rec["stream_query"])).get("push", "")
            if rings and self.rec.get("rings") and not pushed_rings and not self.quiet.is_set():
                sep = "&" if "?" in self.rec["rings"] else "?"
                steps.append((0.15, "GET", f"{self.rec['rings']}{sep}v={seq}", None, None))
                steps.sort(key=lambda s: s[0])
            for offset, method, path, body, ctype in steps:
                if self.stop.is_set():
                    return
                wait = t_evt + offset - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                key = path.split("?")[0]
                data = None
                if key == "/_dash-update-component" and body:
                    key = _callback_key(body)
                    try:
                        b = json.loads(body)
                        for part in ("inputs", "state"):
                            if part in b:
                                b[part] = self._rebase(b[part], base_head)
                        data = json.dumps(b, separators=(",", ":")).encode()
                    except ValueError:
                        data = body.encode()
                elif body:
                    data = body.encode()
                t0 = time.monotonic()
                nbytes = 0
                try:
                    r = self.sess.request(method, self.base + path, data=data, timeout=60,
                                          headers={"Content-Type": ctype or "application/json", "Origin": self.base,
                                                   "Referer": self.base + PAGE[self.kind]})
                    status = r.status_code
                    nbytes = int(r.headers.get("Content-Length") or len(r.content))
                    if status == 200 and key.startswith("callback"):
                        self._absorb(r)
                except requests.RequestException:
                    status = 0
                self.answers.append((t_evt, key, status, time.monotonic() - t0, nbytes))

    def _absorb(self, r) -> None:
        try:
            response = r.json().get("response") or {}
        except ValueError:
            return
        for cid, props in response.items():
            if not isinstance(props, dict):
                continue
            for prop, value in props.items():
                if isinstance(value, dict) and "__dash_patch_update" in value:
                    continue
                key = f"{cid}.{prop}"
                if key in self.store or key.endswith(".data"):
                    self.store[key] = value


# ------------------------------------------------------------------------------------------------ figures
def step_figures(pages: list, posts: list, t0: float, t1: float, cpu: dict) -> dict:
    window_posts = [p for p in posts if p["status"] == 201 and t0 <= p["done"] <= t1]
    post_errors = sum(1 for p in posts if p["status"] != 201 and t0 <= p["done"] <= t1)
    lat_all, held, details = [], 0, {k: [0, 0] for k in KINDS}
    missed_total, breaks_total, answers_all, reopened = 0, 0, [], 0
    one_change_bytes, one_change_text, cb_bytes_per_change = [], [], []
    stream_bytes: dict = {k: [] for k in KINDS}  # per page: change + parts events' bytes per posted change
    text_bytes: dict = {k: [] for k in KINDS}  # the same, the events' text before compression
    part_bytes: dict = {k: {} for k in KINDS}  # per kind and component id: text bytes per page per change
    for pg in pages:
        if window_posts:
            n = len(window_posts)
            evs = [e for e in pg.events if t0 <= e[0] <= t1]
            parts = [p for p in pg.parts if t0 <= p[0] <= t1]
            stream_bytes[pg.kind].append((sum(e[1] for e in evs) + sum(p[1] for p in parts)) / n)
            text_bytes[pg.kind].append((sum(e[8] for e in evs) + sum(p[2] for p in parts)) / n)
            mine: dict = {"change": sum(e[8] for e in evs)}
            for p in parts:
                for cid, b in p[3].items():
                    mine[cid] = mine.get(cid, 0) + b
            for cid, b in mine.items():
                part_bytes[pg.kind].setdefault(cid, []).append(b / n)
        first_seen: dict = {}
        for t, nbytes, _seq, _aseq, ups, _rem, _rings, n_up, text in pg.events:
            for i in ups:
                first_seen.setdefault(i, t)
            if t0 <= t <= t1 + 15 and n_up == 1:
                one_change_bytes.append(nbytes)
                one_change_text.append(text)
        lats = []
        missed = 0
        for p in window_posts:
            got = first_seen.get(p["id"])
            if got is None:
                missed += 1
            else:
                lats.append(got - p["done"])
        # a stream that ended after its lifetime (LIFETIME_S) and reopened is the design, not a break
        brk = [b for b in pg.breaks if t0 <= b[0] <= t1 and b[1] != "ended"]
        reopened += sum(1 for b in pg.breaks if t0 <= b[0] <= t1 and b[1] == "ended")
        mine = [a for a in pg.answers if t0 <= a[0] <= t1]
        good = sum(1 for a in mine if a[2] in OK)
        p95 = _pct([a[3] for a in mine], 0.95)
        ok = (not brk and missed == 0 and pg.opened_at is not None and pg.opened_at <= t0
              and (not mine or (good >= 0.99 * len(mine) and p95 <= 2.0)))
        held += ok
        details[pg.kind][0] += ok
        details[pg.kind][1] += 1
        missed_total += missed
        breaks_total += len(brk)
        lat_all += lats
        answers_all += mine
        per_change: dict = {}
        for a in mine:
            per_change[a[0]] = per_change.get(a[0], 0) + a[4]
        cb_bytes_per_change += list(per_change.values())
    errors = [a for a in answers_all if a[2] not in OK]
    by_key: dict = {}
    for a in answers_all:
        by_key.setdefault(a[1], []).append(a)
    requests_n = len(answers_all) + len(window_posts) + post_errors
    cpu_s = cpu["server_cpu_s"]
    return {
        "pages": len(pages), "by_kind": {k: v[1] for k, v in details.items()},
        "held": held, "held_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in details.items()},
        "posts": len(window_posts), "post_errors": post_errors,
        "post_p95_ms": _ms(_pct([p["done"] - p["sent"] for p in posts if t0 <= p["done"] <= t1], 0.95)),
        "events_missed": missed_total, "stream_breaks": breaks_total, "streams_reopened_after_lifetime": reopened,
        "pages_missing_events": sum(1 for pg in pages if any(p["id"] not in {i for e in pg.events for i in e[4]}
                                                             for p in window_posts)),
        "breaks_seen": sorted({b[1] for pg in pages for b in pg.breaks if t0 <= b[0] <= t1})[:10],
        "post_to_event_ms": {"n": len(lat_all), "p50": _ms(_pct(lat_all, 0.5)), "p95": _ms(_pct(lat_all, 0.95)),
                             "max": _ms(max(lat_all) if lat_all else None)},
        "callbacks": {"n": len(answers_all), "per_s": round(len(answers_all) / (t1 - t0), 1),
                      "errors": len(errors),
                      "errors_by_status": {str(s): sum(1 for a in errors if a[2] == s)
                                           for s in sorted({a[2] for a in errors})},
                      "p50_ms": _ms(_pct([a[3] for a in answers_all], 0.5)),
                      "p95_ms": _ms(_pct([a[3] for a in answers_all], 0.95)),
                      "by_endpoint": sorted(({"endpoint": k, "n": len(v), "p95_ms": _ms(_pct([a[3] for a in v], 0.95)),
                                              "errors": sum(1 for a in v if a[2] not in OK)}
                                             for k, v in by_key.items()), key=lambda e: -e["n"])[:12]},
        "event_bytes_one_change": {"median": _pct(one_change_bytes, 0.5), "max": max(one_change_bytes, default=None),
                                   "n": len(one_change_bytes)},
        "event_text_bytes_one_change": {"median": _pct(one_change_text, 0.5),
                                        "max": max(one_change_text, default=None)},
        "stream_bytes_per_page_per_change": {k: {"median": round(_pct(v, 0.5)), "max": round(max(v))}
                                             for k, v in stream_bytes.items() if v},
        "stream_text_bytes_per_page_per_change": {k: {"median": round(_pct(v, 0.5)), "max": round(max(v))}
                                                  for k, v in text_bytes.items() if v},
        "part_text_bytes_per_page_per_change": {k: {cid: round(_pct(v, 0.5)) for cid, v in sorted(parts.items())}
                                                for k, parts in part_bytes.items() if parts},
        "callback_bytes_per_page_per_change": {"median": _pct(cb_bytes_per_change, 0.5),
                                               "p95": _pct(cb_bytes_per_change, 0.95)},
        "cpu": {**cpu, "requests": requests_n,
                "server_cpu_ms_per_request": round(1000 * cpu_s / requests_n, 1) if requests_n else None,
                "server_cpu_ms_per_change": round(1000 * cpu_s / len(window_posts), 1) if window_posts else None},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lane", choices=["embedded", "production"], default="embedded")
    ap.add_argument("--steps", default="25,50,100,200", help="pages open in each step (cumulative)")
    ap.add_argument("--seconds", type=float, default=180, help="measured seconds per step")
    ap.add_argument("--idle", type=float, default=60, help="seconds with every stream open and no post (0: skip)")
    ap.add_argument("--record-changes", type=int, default=4)
    ap.add_argument("--streams-only", type=int, default=0,
                    help="steps of at least this many pages replay no callbacks: the push path alone")
    ap.add_argument("--tag", default="", help="results file push-<lane>[-<tag>].json")
    args = ap.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",") if s]
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo", encoding="ascii", errors="replace")
                  if ln.startswith("model name")), platform.processor())
    machine = {"cores": os.cpu_count(), "model": model, "python": platform.python_version(),
               "load_before": [round(x, 2) for x in os.getloadavg()]}
    started = time.monotonic()
    results: list = []
    idle = None
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        server, cleanup = serve(args.lane, Path(tmp))
        ingest = Ingest(server.url)
        pages: list[VirtualPage] = []
        try:
            print("recording real pages …", flush=True)
            recs = record(server.url, ingest, args.record_changes)
            scripts = {k: scripts_of(v) for k, v in recs.items()}
            for k, v in recs.items():
                print(k, v["stream_query"], [len(c["sent"]) for c in v["changes"]], flush=True)
            meter = CpuMeter(server.proc.pid)
            quiet = threading.Event()
            ingest.start()
            for n in steps:
                if args.streams_only and n >= args.streams_only:
                    quiet.set()
                new = []
                for i in range(len(pages), n):
                    kind = ORDER[i % len(ORDER)]
                    new.append(VirtualPage(i, kind, server.url, recs[kind], scripts[kind], quiet))
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda p: p.sign_in(), new))
                for p in new:
                    p.start()
                pages += new
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(p.opened_at is None for p in pages):
                    time.sleep(0.2)
                time.sleep(2)  # the openings' own work settles
                load0 = os.getloadavg()
                a = meter.sample()
                t0 = a["at"]
                time.sleep(args.seconds)
                b = meter.sample()
                t1 = b["at"]
                time.sleep(5)  # events of the last posts arrive, their callbacks run
                fig = step_figures(pages, ingest.posts, t0, t1, CpuMeter.between(a, b))
                fig["opened"] = sum(1 for p in pages if p.opened_at is not None)
                fig["streams_only"] = quiet.is_set()
                fig["load_avg"] = {"start": [round(x, 2) for x in load0],
                                   "end": [round(x, 2) for x in os.getloadavg()]}
                fig["coalesced_changes"] = sum(p.coalesced for p in pages)
                results.append(fig)
                print(json.dumps({k: fig[k] for k in ("pages", "held", "events_missed", "stream_breaks",
                                                      "post_to_event_ms", "cpu")}, ensure_ascii=False), flush=True)
            if args.idle:
                ingest.paused.set()
                deadline = time.monotonic() + 90  # the replays still running finish first
                time.sleep(3)
                while time.monotonic() < deadline and any(p.busy or not p.q.empty() for p in pages):
                    time.sleep(0.5)
                # the KPI figures' last rendering after the last change (LIVE_FIGURES, 5 s) is not idle time
                time.sleep(3 + 5 + 2)
                a = meter.sample()
                time.sleep(args.idle)
                b = meter.sample()
                connected = sum(1 for p in pages if p.opened_at is not None
                                and not [x for x in p.breaks if x[0] >= a["at"]])
                idle = {"streams": len(pages), "connected_throughout": connected, **CpuMeter.between(a, b),
                        "requests_in_idle": sum(1 for p in pages for x in p.answers if x[0] >= a["at"]),
                        "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
                print(json.dumps(idle), flush=True)
        finally:
            ingest.stop.set()
            for p in pages:
                p.close()
            log_tail = server.log()
            server.stop()
            for f in cleanup:
                f()
    figures = {
        "lane": args.lane, "workers": 4 if args.lane == "production" else 2,
        "threads_per_worker": 4 + STREAM_SLOTS, "stream_slots_per_worker": STREAM_SLOTS,
        "seconds_per_step": args.seconds, "mix": KINDS,
        "held_rule": ("a page is held when its stream stayed connected (no failed open or read error; ending after "
                      "its lifetime and reopening is the design), it received every incident posted in the step, "
                      "and ≥ 99 % of its callback requests answered 2xx/304 with p95 ≤ 2 s"),
        "recorded": {k: {"stream_query": v["stream_query"], "rings": v["rings"],
                         "replayed_per_change": {sort: [len(x) for x in lst] for sort, lst in scripts[k].items()},
                         "idle_requests_in_3s": v["idle_requests"],
                         "after_change": [{"alert": c["alert"], "requests": [(round(s[0], 2), s[1],
                                                                              _callback_key(s[3]) if s[3] else s[2][:60])
                                                                             for s in c["sent"]]}
                                          for c in v["changes"]]} for k, v in recs.items()},
        "steps": results, "idle": idle,
        "targets": {"pages_held": 200, "errors": 0, "post_to_event_p95_ms": 1000, "idle_cpu_pct": 5},
        "wall_minutes": round((time.monotonic() - started) / 60, 1),
        "machine": {**machine, "load_after": [round(x, 2) for x in os.getloadavg()]},
    }
    if "Traceback" in log_tail:
        figures["server_log_tail"] = log_tail[-2000:]
    write_results(f"push-{args.lane}" + (f"-{args.tag}" if args.tag else ""), figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
