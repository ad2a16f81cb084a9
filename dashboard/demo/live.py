"""Live simulator (实时模拟): new incidents through the real HTTP API, and open cases moved along the loop.

``python -m dashboard.demo live --url http://127.0.0.1:8050 --rate 6/min --token demo-token [--duration S]``

- Arrivals are a Poisson process at ``rate_per_min`` (exponential gaps), placed at random points inside
  grids (population weighted, Zhili heavy), with the categories, sources and descriptions of the demo year.
- Each case the simulator posted (and, at start, a sample of the open cases already in the store) is moved
  along the allowed steps of ``docs/data-model.md`` with the demo year's waits compressed ``speed`` times
  (default 60×: an hour of real handling takes a minute), capped at ``max_wait_s``.
- Only standard library HTTP (urllib). Connection errors and 5xx are retried with exponential backoff and
  logged; the pending action is kept, so a server restart loses nothing. A 409 (someone else moved the case)
  re-reads the case and continues from its current state.
- Stops when ``stop_event`` is set (SIGTERM / SIGINT in the CLI) or after ``duration`` seconds.

The app can run it in a thread: ``threading.Thread(target=run_live, args=(url, token, rate, stop_event),
daemon=True).start()``.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from . import history, texts

log = logging.getLogger("dashboard.demo.live")

OPEN_STATES = ("reported", "onsite_handled", "routed", "escalated", "assigned", "in_progress", "handled", "verified")
LEVEL_SHARE = {"onsite": 0.44, "town": 0.50, "district": 0.06}
CATEGORY_MIX = {"safety.fire": 18, "dispute.civil": 30, "dispute.labour": 6, "population.migrant": 8,
                "service.ebike_plate": 6, "city.appearance": 8, "city.sanitation": 6, "safety.production": 5,
                "environment.pollution": 4, "order.public": 4, "facility.road": 3, "market.regulation": 2,
                "safety.hazchem": 0.5, "construction.illegal": 2}
SOURCE_MIX = {"patrol": 40, "app": 35, "citizen": 12, "hotline": 10, "department": 3}


class Unavailable(RuntimeError):
    """The server could not be reached or answered 5xx (retry later)."""


@dataclass
class Case:
    id: int
    level: str
    path: tuple[str, ...]
    step: int  # index of the current state in path
    grid: str | None
    worker: str
    category: str
    department: str | None = None


@dataclass
class Stats:
    posted: int = 0
    transitions: int = 0
    retries: int = 0
    conflicts: int = 0
    errors: int = 0
    adopted: int = 0
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("posted", "transitions", "retries", "conflicts", "errors", "adopted")}


class Api:
    """Tiny JSON client over urllib with Bearer auth."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0):
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json; charset=utf-8")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as e:
            payload = _json(e.read())
            if e.code >= 500:
                raise Unavailable(f"{method} {path}: HTTP {e.code}") from None
            return e.code, payload
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            raise Unavailable(f"{method} {path}: {e}") from None


def _json(raw: bytes) -> dict:
    try:
        out = json.loads(raw.decode("utf-8") or "{}")
        return out if isinstance(out, dict) else {"data": out}
    except ValueError:
        return {}


class Simulator:
    def __init__(self, base_url: str, token: str, rate_per_min: float, *, speed: float = 60.0,
                 max_wait_s: float = 600.0, min_wait_s: float = 2.0, seed: int | None = None, geodata_dir=None,
                 adopt: int = 200):
        from dashboard.geodata import load_geodata
        from dashboard.settings import Settings

        self.api = Api(base_url, token)
        self.rate = max(float(rate_per_min), 0.0)
        self.speed = max(float(speed), 1e-6)
        self.max_wait = max_wait_s
        self.min_wait = min_wait_s
        self.rng = np.random.default_rng(seed)
        gd = load_geodata(geodata_dir if geodata_dir is not None else Settings.from_env().geodata_dir)
        self.geo = history.Geo(gd)
        w = self.geo.population * np.where(self.geo.town_abbr[self.geo.town_i] == "ZL", 1.6, 1.0)
        self.grid_p = w / w.sum()
        self.heap: list[tuple[float, int, str, object]] = []
        self.counter = itertools.count()
        self.cases: dict[int, Case] = {}
        self.stats = Stats()
        self.adopt_n = adopt
        self.backoff = 1.0

    # ------------------------------------------------------------------------------- scheduling
    def schedule(self, delay: float, kind: str, payload) -> None:
        heapq.heappush(self.heap, (time.monotonic() + delay, next(self.counter), kind, payload))

    def wait_for(self, state_index: int, case: Case) -> float:
        steps = history.STEP_HOURS[case.level]
        k = min(state_index, len(steps) - 1)
        med, sd = steps[k]
        hours = med * float(np.exp(self.rng.standard_normal() * sd))
        return float(min(max(hours * 3600.0 / self.speed, self.min_wait), self.max_wait))

    def next_arrival(self) -> float:
        if self.rate <= 0:
            return float("inf")
        return float(self.rng.exponential(60.0 / self.rate))

    # ----------------------------------------------------------------------------------- actions
    def new_incident_body(self) -> tuple[dict, str, str]:
        from dashboard.store import catalogue

        g = int(self.rng.choice(len(self.grid_p), p=self.grid_p))
        lon, lat = self.geo.points_in(self.rng, np.array([g]))
        cat = str(history.pick(self.rng, 1, CATEGORY_MIX)[0])
        c = catalogue.get(cat)
        subs = list(c.subcategories)
        sub = subs[int(self.rng.integers(len(subs)))] if subs else None
        source = str(history.pick(self.rng, 1, SOURCE_MIX)[0])
        addr = history.addresses(self.rng, self.geo, np.array([g]))[0]
        tpl = texts.TEMPLATES.get((cat, sub or "")) or texts.TEMPLATES.get((cat, "*")) or ("{addr}发现问题，需处置",)
        desc = tpl[int(self.rng.integers(len(tpl)))].format(
            addr=addr, shop=texts.SHOPS[int(self.rng.integers(len(texts.SHOPS)))], n=int(self.rng.integers(2, 30)),
            m=int(self.rng.integers(1, 20)))
        worker = str(self.geo.worker[g])
        sev = int(np.clip(c.default_severity + self.rng.choice([-1, 0, 1], p=[0.35, 0.55, 0.10]), 1, 4))
        body = {"category": cat, "subcategory": sub, "severity": sev, "source": source, "description": desc,
                "address": addr, "lon": float(lon[0]), "lat": float(lat[0]),
                "reporter": worker if source in ("patrol", "app") else {"hotline": "12345热线"}.get(source, "群众"),
                "client_ref": f"live-{int(time.time() * 1000)}-{int(self.rng.integers(1 << 30))}"}
        return body, worker, cat

    def post_new(self) -> None:
        body, worker, cat = self.new_incident_body()
        status, resp = self.api.call("POST", "/api/v1/incidents", body)
        if status not in (200, 201) or "id" not in resp:
            self.stats.errors += 1
            log.warning("post refused: HTTP %s %s", status, resp.get("error") or resp)
            return
        self.stats.posted += 1
        level = str(history.pick(self.rng, 1, LEVEL_SHARE)[0])
        if cat == "safety.hazchem" and level == "onsite":
            level = "district"
        from dashboard.store import catalogue

        case = Case(id=int(resp["id"]), level=level, path=history.STATES_BY_LEVEL[level], step=0,
                    grid=resp.get("grid") or resp.get("grid_code"), worker=worker, category=cat,
                    department=catalogue.get(cat).department if level == "district" else None)
        self.cases[case.id] = case
        log.info("posted #%s %s (%s) → plan %s", case.id, cat, resp.get("code"), level)
        self.schedule(self.wait_for(0, case), "advance", case.id)

    def _actor(self, case: Case, to: str) -> tuple[str, str]:
        gi = self.geo.code_index.get(case.grid or "", None)
        town = str(self.geo.town_name[self.geo.town_i[gi]]) + "综治中心" if gi is not None else "镇街综治中心"
        station = str(self.geo.station[self.geo.zone_i[gi]]) if gi is not None else "片区工作站"
        from dashboard.store.catalogue import DEPARTMENTS

        dept = DEPARTMENTS.get(case.department or "", ("区级部门",))[0]
        return {
            "onsite_handled": (case.worker, "grid_worker"),
            "routed": (town, "town"),
            "escalated": (town, "town"),
            "assigned": ("区信息中心", "district"),
            "in_progress": (dept, "department") if case.level == "district" else (station, "station"),
            "handled": (dept, "department") if case.level == "district" else (station, "station"),
            "verified": (case.worker, "grid_worker"),
            "closed": ("区信息中心", "district") if case.level == "district" else (
                (station, "station") if case.level == "onsite" else (town, "town")),
        }[to]

    def advance(self, case_id: int) -> None:
        case = self.cases.get(case_id)
        if case is None or case.step >= len(case.path) - 1:
            self.cases.pop(case_id, None)
            return
        to = case.path[case.step + 1]
        actor, role = self._actor(case, to)
        notes = texts.NOTES.get(to, ("",))
        body = {"to": to, "actor": actor, "actor_role": role, "note": notes[int(self.rng.integers(len(notes)))]}
        if to == "assigned":
            body["department"] = case.department or "emergency"
        if to == "closed" and case.category.startswith("dispute."):
            body["outcome"] = "resolved" if self.rng.random() < 0.99 else "unresolved"
        status, resp = self.api.call("POST", f"/api/v1/incidents/{case_id}/transitions", body)
        if status == 200:
            self.stats.transitions += 1
            case.step += 1
            if to != "closed":
                self.schedule(self.wait_for(case.step, case), "advance", case_id)
            else:
                self.cases.pop(case_id, None)
            return
        if status == 404:
            self.cases.pop(case_id, None)
            return
        # 409 (moved by someone else) or another refusal: re-read the case and continue from where it is
        self.stats.conflicts += 1
        log.info("transition #%s → %s refused (HTTP %s: %s); re-reading", case_id, to, status,
                 resp.get("error") or resp.get("message") or resp)
        self.resync(case)

    def resync(self, case: Case) -> None:
        status, resp = self.api.call("GET", f"/api/v1/incidents/{case.id}")
        if status != 200:
            self.cases.pop(case.id, None)
            return
        self._adopt_from_json(resp, case)

    def _adopt_from_json(self, item: dict, case: Case | None = None) -> None:
        st = item.get("status")
        if st not in OPEN_STATES:
            self.cases.pop(int(item.get("id", -1)), None)
            return
        level = item.get("level") or "onsite"
        if st == "reported":
            plan = str(history.pick(self.rng, 1, LEVEL_SHARE)[0])
        elif level in history.STATES_BY_LEVEL and st in history.STATES_BY_LEVEL[level]:
            plan = level
        else:
            plan = next(p for p in ("onsite", "town", "district") if st in history.STATES_BY_LEVEL[p])
        path = history.STATES_BY_LEVEL[plan]
        gi = self.geo.code_index.get(item.get("grid_code") or item.get("grid") or "")
        c = case or Case(id=int(item["id"]), level=plan, path=path, step=0, grid=None, worker="",
                         category=item.get("category", ""))
        c.level, c.path, c.step = plan, path, path.index(st)
        c.grid = item.get("grid_code") or item.get("grid") or c.grid
        c.worker = c.worker or (str(self.geo.worker[gi]) if gi is not None else "网格员")
        c.category = item.get("category", c.category)
        c.department = item.get("department") or c.department
        if plan == "district" and not c.department:
            from dashboard.store import catalogue

            cat = catalogue.CATEGORIES.get(c.category)
            c.department = cat.department if cat else "emergency"
        self.cases[c.id] = c
        self.schedule(self.wait_for(c.step, c), "advance", c.id)

    def adopt_open(self) -> None:
        """Pick up a sample of the open cases already in the store (best effort)."""
        if self.adopt_n <= 0:
            return
        status, resp = self.api.call("GET", f"/api/v1/incidents?status={','.join(OPEN_STATES)}&limit="
                                            f"{min(self.adopt_n, 500)}")
        if status != 200:
            log.info("could not list open cases (HTTP %s); only new cases will move", status)
            return
        for item in resp.get("items", [])[: self.adopt_n]:
            try:
                self._adopt_from_json(item)
                self.stats.adopted += 1
            except (KeyError, ValueError, TypeError):
                continue
        log.info("adopted %d open cases", self.stats.adopted)

    # ----------------------------------------------------------------------------------------- loop
    def run(self, stop_event: threading.Event, duration: float | None = None) -> Stats:
        deadline = time.monotonic() + duration if duration else float("inf")
        adopted = False
        self.schedule(self.next_arrival(), "new", None)
        log.info("live simulator: %s, %.2f incidents/min, waits compressed %.0f×", self.api.base, self.rate,
                 self.speed)
        while not stop_event.is_set() and time.monotonic() < deadline:
            if not adopted:
                try:
                    self.adopt_open()
                    adopted = True
                except Unavailable as e:
                    if not self._backoff(stop_event, e):
                        break
                    continue
            if not self.heap:
                self.schedule(self.next_arrival(), "new", None)
            due, n, kind, payload = self.heap[0]
            delay = due - time.monotonic()
            if delay > 0:
                stop_event.wait(min(delay, deadline - time.monotonic(), 1.0))
                continue
            heapq.heappop(self.heap)
            try:
                if kind == "new":
                    self.post_new()
                    self.schedule(self.next_arrival(), "new", None)
                else:
                    self.advance(int(payload))
                self.backoff = 1.0
            except Unavailable as e:
                heapq.heappush(self.heap, (time.monotonic(), n, kind, payload))  # keep it, retry later
                if not self._backoff(stop_event, e):
                    break
            except Exception:  # never die on one bad case
                self.stats.errors += 1
                log.exception("live simulator step failed (%s %s)", kind, payload)
        log.info("live simulator stopped: %s", self.stats.as_dict())
        return self.stats

    def _backoff(self, stop_event: threading.Event, err: Exception) -> bool:
        self.stats.retries += 1
        log.warning("server unavailable (%s); retrying in %.0f s", err, self.backoff)
        stopped = stop_event.wait(self.backoff)
        self.backoff = min(self.backoff * 2, 30.0)
        return not stopped


def run_live(base_url: str, token: str, rate_per_min: float, stop_event: threading.Event, *,
             duration: float | None = None, speed: float = 60.0, seed: int | None = None, geodata_dir=None,
             **kwargs) -> dict:
    """Run the simulator until ``stop_event`` is set (or ``duration`` s). Returns counters."""
    sim = Simulator(base_url, token, rate_per_min, speed=speed, seed=seed, geodata_dir=geodata_dir, **kwargs)
    return sim.run(stop_event, duration).as_dict()


def main_live(args) -> int:
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    out = run_live(args.url, args.token, args.rate, stop, duration=args.duration, speed=args.speed, seed=args.seed,
                   geodata_dir=args.geodata)
    print(json.dumps(out))
    return 0
