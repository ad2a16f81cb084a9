"""Configuration from the environment, with documented defaults (see README "Configuration").

Everything the app needs to know about its surroundings is here; nothing else reads ``os.environ``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "&copy; OpenStreetMap contributors"
CARTO_DARK_TILES = "https://basemaps.cartocdn.com/dark_all/{z}/{x}/{y}.png"  # TILE_URL_DARK=none to drop


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8050
    instance_dir: Path = ROOT / "instance"
    geodata_dir: Path = ROOT / "geodata"
    database_url: str = ""  # empty -> sqlite file under instance_dir
    cache_url: str = ""  # empty -> file-system cache under instance_dir/cache; redis://... -> Redis
    cache_timeout: int = 300
    secret_key: str = ""  # empty -> a random key kept in instance_dir/secret_key (SQLite); required on PostgreSQL
    api_tokens: tuple[str, ...] = ("demo-token",)
    wall_tokens: tuple[str, ...] = ("wall-demo",)
    tile_url: str = OSM_TILES  # "" or "none" -> no basemap
    tile_url_dark: str = CARTO_DARK_TILES
    tile_attribution: str = OSM_ATTRIBUTION
    tile_crs: str = "wgs84"  # "gcj02" for Amap-style tiles: drawn geometry is shifted to match
    # a local MBTiles/PMTiles file served by the app itself (/tiles/base/…): replaces TILE_URL and TILE_URL_DARK,
    # nothing is fetched from a tile host (intranet); TILE_FILE_DARK: the dark basemap's file
    tile_file: str = ""
    tile_file_dark: str = ""
    demo_live: bool = True
    demo_users: bool = False  # DEMO_USERS=1: create demo sign-ins duty/duty-demo and leader/leader-demo
    session_cookie_secure: bool = False  # SESSION_COOKIE_SECURE=1 behind HTTPS: the cookie is never sent in clear
    rate_limits_on: bool = True  # RATE_LIMITS=0 turns the rate limits off (dashboard/ratelimit.py)
    rate_limits: dict = field(default_factory=dict)  # RATE_LIMIT_<RULE>="20/minute" overrides a rule
    trusted_proxies: int = 0  # TRUSTED_PROXIES=1 behind one reverse proxy: client address from X-Forwarded-For
    public_url: str = ""  # PUBLIC_URL=https://zhihui.example.gov.cn: absolute links (OpenAPI, Open311, alert push)
    public_overview: bool = False  # PUBLIC_OVERVIEW=1: the overview map (aggregates, anonymised markers) for anyone
    stream_slots: int = 100  # STREAM_SLOTS: open live streams per worker (each worker gets that many more threads)
    live_poll_s: float = 0.5  # LIVE_POLL: SQLite only — how often each process looks for a change (PostgreSQL pushes)
    # LIVE_FIGURES: the pushed KPI figures (overview cards, the wall's header, ranking and tour cards) are computed at
    # most this often (seconds) while changes come; markers, lists, tickers, alerts and live colours follow each change
    live_figures_s: float = 5.0
    wall_tour_s: int = 20  # seconds per zone on the wall's automatic tour
    wall_tour_order: str = "rank"  # rank | code
    wall_rank_kpi: str = "resolution_rate"
    wall_alert_pause_s: int = 30
    login_max_failures: int = 5  # wrong passwords in a row that lock an account …
    login_lock_minutes: int = 15  # … for this long (``users unlock`` lifts it)
    duty_window_step_s: int = 60  # relative duty-desk windows (last hour, 24 h …) slide in steps of this
    map_points_max: int = 50_000  # markers in one map payload (the newest of the filter; ~1.5 MB compressed)
    # a multi-county map shows markers only for a view of at most this many incidents (zoomed in); else counts per cell
    map_view_markers: int = 2_000
    # alert push to group robots (services.notify): each entry names a robot; URLs and secrets are secrets
    notify_dingtalk: tuple[str, ...] = field(default=(), repr=False)  # NOTIFY_DINGTALK=<webhook url>|<secret>,…
    notify_wecom: tuple[str, ...] = field(default=(), repr=False)  # NOTIFY_WECOM=<webhook url>,…
    notify_webhook: tuple[str, ...] = field(default=(), repr=False)  # NOTIFY_WEBHOOK=<url>,… (generic JSON)
    notify_min_severity: int = 3  # a high-severity alert is pushed from this severity on (ring alerts always)
    notify_max_attempts: int = 8  # attempts before a message is given up (dead; an admin may requeue it)
    notify_backoff_s: float = 5.0  # first retry after about this long, doubling each time (with jitter) …
    notify_backoff_max_s: float = 900.0  # … up to this
    notify_timeout_s: float = 5.0  # one POST's connect / read timeout
    notify_lease_s: float = 60.0  # how long a dispatcher holds the rows it is sending
    notify_poll_s: float = 2.0  # how often an idle dispatcher looks for due messages
    notify_dispatch: bool = True  # NOTIFY_DISPATCH=0: `serve` starts no dispatcher (run `notify run` yourself)
    language: str = "zh"
    debug: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://"):]
            elif url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            return url
        return f"sqlite:///{self.instance_dir / 'wuxing.sqlite3'}"

    @property
    def rate_limit_storage(self) -> str:
        """Where the rate limits count: the cache's Redis when there is one (shared by every worker and host),
        else this process's memory."""
        if self.cache_url.startswith(("redis://", "rediss://")):
            return self.cache_url
        if self.cache_url.startswith("unix://"):
            return "redis+unix://" + self.cache_url[len("unix://"):]
        return "memory://"

    @property
    def cache_config(self) -> dict:
        if self.cache_url.startswith(("redis://", "rediss://", "unix://")):
            return {
                "CACHE_TYPE": "RedisCache",
                "CACHE_REDIS_URL": self.cache_url,
                "CACHE_KEY_PREFIX": "wuxing:",
                # a Redis that stops answering costs each request at most a second, not a hung worker
                "CACHE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
                "CACHE_DEFAULT_TIMEOUT": self.cache_timeout,
            }
        if self.cache_url == "null":
            return {"CACHE_TYPE": "NullCache"}
        if "://" in self.cache_url and not self.cache_url.startswith("file://"):  # not a folder named "null:" …
            raise ValueError(f"CACHE_URL {self.cache_url!r}: use redis://, rediss://, unix://, file://FOLDER or null")
        directory = self.cache_url.removeprefix("file://") if self.cache_url else str(self.instance_dir / "cache")
        return {
            "CACHE_TYPE": "FileSystemCache",
            "CACHE_DIR": directory,
            "CACHE_DEFAULT_TIMEOUT": self.cache_timeout,
            "CACHE_THRESHOLD": 5000,
        }

    @property
    def tiles_enabled(self) -> bool:
        return bool(self.tile_file) or (bool(self.tile_url) and self.tile_url.lower() != "none")

    @property
    def external_tile_urls(self) -> tuple[str, ...]:
        """The tile URL templates the browser fetches from other hosts (the CSP allows their origins): none when
        the app serves a local basemap file (``TILE_FILE``)."""
        if self.tile_file:
            return ()
        return tuple(u for u in (self.tile_url, self.tile_url_dark) if u and u.lower() != "none")

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            host=env.get("HOST", d.host),
            port=int(env.get("PORT", d.port)),
            instance_dir=Path(env.get("INSTANCE_DIR", d.instance_dir)),
            geodata_dir=Path(env.get("GEODATA_DIR", d.geodata_dir)),
            database_url=env.get("DATABASE_URL", d.database_url),
            cache_url=env.get("CACHE_URL") or env.get("REDIS_URL") or d.cache_url,
            cache_timeout=int(env.get("CACHE_TIMEOUT", d.cache_timeout)),
            secret_key=env.get("SECRET_KEY", d.secret_key),
            api_tokens=_split(env["API_TOKENS"]) if "API_TOKENS" in env else d.api_tokens,
            wall_tokens=_split(env["WALL_TOKENS"]) if "WALL_TOKENS" in env else d.wall_tokens,
            tile_url=env.get("TILE_URL", d.tile_url),
            tile_url_dark=env.get("TILE_URL_DARK", d.tile_url_dark),
            tile_attribution=env.get("TILE_ATTRIBUTION", d.tile_attribution),
            tile_crs=env.get("TILE_CRS", d.tile_crs).lower(),
            tile_file=env.get("TILE_FILE", d.tile_file).strip(),
            tile_file_dark=env.get("TILE_FILE_DARK", d.tile_file_dark).strip(),
            demo_live=_bool(env.get("DEMO_LIVE", "1")),
            demo_users=_bool(env.get("DEMO_USERS", "0")),
            public_overview=_bool(env.get("PUBLIC_OVERVIEW", "0")),
            session_cookie_secure=_bool(env.get("SESSION_COOKIE_SECURE", "0")),
            rate_limits_on=_bool(env.get("RATE_LIMITS", "1")),
            rate_limits={k[len("RATE_LIMIT_"):].lower(): v for k, v in env.items()
                         if k.startswith("RATE_LIMIT_") and v.strip()},
            trusted_proxies=max(0, int(env.get("TRUSTED_PROXIES", d.trusted_proxies))),
            public_url=env.get("PUBLIC_URL", d.public_url).rstrip("/"),
            stream_slots=max(1, int(env.get("STREAM_SLOTS", d.stream_slots))),
            live_poll_s=min(5.0, max(0.05, float(env.get("LIVE_POLL", d.live_poll_s)))),
            live_figures_s=min(300.0, max(0.0, float(env.get("LIVE_FIGURES", d.live_figures_s)))),
            wall_tour_s=int(env.get("WALL_TOUR", d.wall_tour_s)),
            wall_tour_order=env.get("WALL_TOUR_ORDER", d.wall_tour_order),
            wall_rank_kpi=env.get("WALL_RANK_KPI", d.wall_rank_kpi),
            wall_alert_pause_s=int(env.get("WALL_ALERT_PAUSE", d.wall_alert_pause_s)),
            login_max_failures=max(1, int(env.get("LOGIN_MAX_FAILURES", d.login_max_failures))),
            login_lock_minutes=max(1, int(env.get("LOGIN_LOCK_MINUTES", d.login_lock_minutes))),
            duty_window_step_s=max(1, int(env.get("DUTY_WINDOW_STEP", d.duty_window_step_s))),
            map_points_max=min(500_000, max(1, int(env.get("MAP_POINTS_MAX", d.map_points_max)))),
            map_view_markers=min(50_000, max(1, int(env.get("MAP_VIEW_MARKERS", d.map_view_markers)))),
            notify_dingtalk=_split(env.get("NOTIFY_DINGTALK", "")),
            notify_wecom=_split(env.get("NOTIFY_WECOM", "")),
            notify_webhook=_split(env.get("NOTIFY_WEBHOOK", "")),
            notify_min_severity=min(4, max(1, int(env.get("NOTIFY_MIN_SEVERITY", d.notify_min_severity)))),
            notify_max_attempts=max(1, int(env.get("NOTIFY_MAX_ATTEMPTS", d.notify_max_attempts))),
            notify_backoff_s=max(0.01, float(env.get("NOTIFY_BACKOFF", d.notify_backoff_s))),
            notify_backoff_max_s=max(0.01, float(env.get("NOTIFY_BACKOFF_MAX", d.notify_backoff_max_s))),
            notify_timeout_s=max(0.1, float(env.get("NOTIFY_TIMEOUT", d.notify_timeout_s))),
            notify_lease_s=max(1.0, float(env.get("NOTIFY_LEASE", d.notify_lease_s))),
            notify_poll_s=max(0.05, float(env.get("NOTIFY_POLL", d.notify_poll_s))),
            notify_dispatch=_bool(env.get("NOTIFY_DISPATCH", "1")),
            language=env.get("DASH_LANG", d.language),
            debug=_bool(env.get("DEBUG", "0")),
        )
