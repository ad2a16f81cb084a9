"""Shared fixtures: settings on a temporary instance dir, a live server in a thread, a real headless Chromium.

In CI (``CI=true``) a missing browser or service is a failure, never a skip.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(reason: str):
    """Fail in CI, skip on a developer machine that lacks a service or the browser."""
    if IN_CI:
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def settings(tmp_path):
    from dashboard.settings import Settings

    return Settings(instance_dir=tmp_path / "instance", tile_url="", demo_live=False,
                    api_tokens=("test-token",), wall_tokens=("wall-test",), cache_url="null")


TOKEN = "test-token"  # the test servers' API token: a bare entry in API_TOKENS has every scope
# browser suites sign in before nearly every test: the sign-in limits of a real centre (10 a minute per name) would
# refuse them; every other limit stays at its default (tests/integration/test_rate_limits.py tests the limits)
SUITE_LIMITS = {"login_name": "600/minute", "login_address": "600/minute"}


def authed(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """A ``urllib`` request of ``url`` with the test token (the API is private by default)."""
    import urllib.request

    return urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})},
                                  method=method)


def reading_client(flask_app):
    """A test client of ``flask_app`` whose GET and HEAD requests carry the test token unless the test sends its own
    ``Authorization`` (the API is private by default; tests of anonymous refusals use ``flask_app.test_client()``)."""
    from flask.testing import FlaskClient

    class ReadingClient(FlaskClient):
        def open(self, *args, **kwargs):
            if str(kwargs.get("method", "GET")).upper() in ("GET", "HEAD"):
                headers = dict(kwargs.pop("headers", None) or {})
                if not any(k.lower() == "authorization" for k in headers):
                    headers["Authorization"] = f"Bearer {TOKEN}"
                kwargs["headers"] = headers
            return super().open(*args, **kwargs)

    return ReadingClient(flask_app, flask_app.response_class, use_cookies=True)


def ensure_user(flask_app, role: str) -> tuple[str, str]:
    """(user name, password) of a user with ``role`` in the store of ``flask_app``, created on first use."""
    from dashboard.auth.users import add_user, get_user

    name, password = f"t-{role}".replace("_", "-"), f"t-{role}-password"
    with flask_app.extensions["dashboard"].sessions() as s:
        if get_user(s, name) is None:
            add_user(s, name, password, role)
    return name, password


def signed_in_client(flask_app, role: str = "leader"):
    """A Flask test client signed in (through ``POST /login``) as a user with ``role``."""
    name, password = ensure_user(flask_app, role)
    client = flask_app.test_client()
    r = client.post("/login", data={"username": name, "password": password, "next": "/"},
                    headers={"Origin": "http://localhost"})
    assert r.status_code == 303 and "error" not in r.headers["Location"], r.headers
    return client


class LiveServer:
    def __init__(self, app, port: int = 0):
        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", port, app.server, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        hub = getattr(self.app.server.extensions.get("dashboard"), "hub", None)
        if hub is not None:  # end the open live streams: their threads would outlive the server
            hub.stop()
        self._server.shutdown()
        self._server.server_close()  # the port is free again (a test can restart a server on it)
        self._thread.join(timeout=5)

    def sign_in(self, page, role: str = "leader") -> None:
        """Sign ``page``'s browser context in as a user with ``role`` (the app is private by default)."""
        name, password = ensure_user(self.app.server, role)
        r = page.request.post(self.url + "/login", form={"username": name, "password": password, "next": "/"},
                              headers={"Origin": self.url}, max_redirects=0)
        assert r.status == 303 and "error" not in (r.headers.get("location") or ""), r.headers

    def auth_header(self) -> dict:
        """The header a machine client sends (the test servers' token has every scope)."""
        return {"Authorization": "Bearer test-token"}


@pytest.fixture(scope="session")
def session_instance(tmp_path_factory):
    return tmp_path_factory.mktemp("instance")


def serve_instance(instance):
    """The dashboard on ``instance`` (SQLite + file-system cache, no tiles: offline), served in a thread."""
    from dashboard import create_app
    from dashboard.settings import Settings

    settings = Settings(instance_dir=instance, tile_url="", demo_live=False,
                        api_tokens=("test-token",), wall_tokens=("wall-test",), rate_limits=SUITE_LIMITS)
    return LiveServer(create_app(settings))


@pytest.fixture(scope="session")
def live_app(session_instance):
    """One dashboard served for the browser tests, with an empty store."""
    server = serve_instance(session_instance)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        # Playwright's wait_for_function evaluates its predicate with eval(), which the app's Content-Security-
        # Policy refuses: test contexts bypass the CSP by default; tests/e2e/test_csp.py opens every page under
        # the policy (bypass_csp=False) and fails on anything it refuses
        new_context = b.new_context

        def context_for_tests(**kwargs):
            kwargs.setdefault("bypass_csp", True)
            return new_context(**kwargs)

        b.new_context = context_for_tests
        yield b
        b.close()


def watch(pg) -> list[str]:
    """The uncaught errors of page ``pg`` as they happen, and what its Content-Security-Policy refused (a test
    asserts the list is empty at its end)."""
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append("CSP: " + msg.text)
          if msg.type == "error" and "Content Security Policy" in msg.text else None)
    return errors


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    pg = context.new_page()
    errors = watch(pg)
    pg.js_errors = errors
    yield pg
    context.close()
    # no test passes with an uncaught error in the page, whether or not it looked at js_errors itself
    assert errors == [], f"uncaught errors in the page: {errors[:5]}"


@pytest.fixture(scope="session")
def small_demo_instance(tmp_path_factory):
    """An instance dir whose SQLite store holds a small (5 %) deterministic demo history."""
    import subprocess
    import sys

    inst = tmp_path_factory.mktemp("small-demo")
    subprocess.run([sys.executable, "-m", "dashboard.demo", "history", "--db",
                    f"sqlite:///{inst / 'wuxing.sqlite3'}", "--scale", "0.05", "--quiet"],
                   check=True, cwd=ROOT, capture_output=True)
    return inst


@pytest.fixture(scope="session")
def demo_app(small_demo_instance):
    """The dashboard served on the small demo history."""
    server = serve_instance(small_demo_instance)
    yield server
    server.stop()


def shared_base(tmp_path_factory) -> Path:
    """The test run's base temp dir, shared by every pytest-xdist worker (a worker's own is a child of it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_full_demo(tmp_path_factory) -> str:
    """sqlite URL of the full default demo under this worker's ``full-demo/`` folder (see :func:`full_demo_dir`).

    The demo (~60-80 s) is generated ONCE per test run, under an exclusive file lock in the run's shared temp dir,
    whichever pytest-xdist worker asks first; every worker then reads its own copy (SQLite's backup API: a
    consistent file whatever the journal mode), so one worker's sign-ins never lock another's reads."""
    import fcntl
    import json
    import sqlite3

    from dashboard.demo.history import run_history

    shared = shared_base(tmp_path_factory) / "full-demo-source"
    shared.mkdir(exist_ok=True)
    source, source_marker = shared / "demo.sqlite3", shared / "done.json"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the build fails
        if not source_marker.exists():
            out = run_history(f"sqlite:///{source}", progress=False, reset=True)
            source_marker.write_text(json.dumps(out))
    folder = full_demo_dir(tmp_path_factory)
    db, marker = folder / "demo.sqlite3", folder / "done.json"
    if folder == shared:
        return f"sqlite:///{db}"
    if not marker.exists():
        with sqlite3.connect(source) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        marker.write_text(source_marker.read_text())
    return f"sqlite:///{db}"


def full_demo_dir(tmp_path_factory) -> Path:
    """This worker's folder of the full demo: ``demo.sqlite3``, ``done.json`` (what the generator reported), and
    room for an ``instance/`` and a ``cache/`` of the apps served on it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp() / "full-demo-source"
    else:
        folder = tmp_path_factory.getbasetemp() / "full-demo"
    folder.mkdir(exist_ok=True)
    return folder


# ------------------------------------------------------------------------------------- another county
# A small county of the province file other than the seed district (杭州市上城区, ~120 km²: 2 towns, 6 zones,
# 75 grids; its build takes ~2 s here) — for the tests that the product serves any district its geodata names.
OTHER_COUNTY = "330102"


def build_county(out: Path, county: str = OTHER_COUNTY) -> dict:
    """``python -m dashboard.geodata build --county`` into ``out``; the build's report stats (with seconds)."""
    import time

    from dashboard.geodata.build import build

    t0 = time.perf_counter()
    report = build(out, ROOT / "geodata", county=county)
    assert report.ok, report.format()
    return {**report.stats, "wall_seconds": time.perf_counter() - t0}
