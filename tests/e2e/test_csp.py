"""Every page under the app's Content-Security-Policy (no bypass): it renders — map, charts, grid, wall — and the
browser refuses nothing (no CSP violation in the console, no uncaught error). Waits use selectors only (Playwright's
wait_for_function needs eval, which the policy forbids)."""
from __future__ import annotations

import pytest

from tests.conftest import watch

PAGES = [
    ("/", ["path.wx-layer-grids", "#chart-ranking .main-svg", "#kpi-cards .wx-card"]),
    ("/incidents", ["path.wx-layer-zones", ".ag-row", "#alert-feed"]),
    ("/briefing", ["#briefing-sheet"]),
    ("/audit", ["#audit-rows tbody tr"]),
    ("/notify", ["#notify-no-channels", "#notify-none"]),
    ("/login", ["#login-form"]),
]


@pytest.mark.parametrize("path,ready", PAGES, ids=[p for p, _ in PAGES])
def test_page_runs_under_the_policy(demo_app, browser, path, ready):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, bypass_csp=False)
    page = ctx.new_page()
    errors = watch(page)
    demo_app.sign_in(page, "admin")
    response = page.goto(demo_app.url + path)
    policy = response.headers["content-security-policy"]
    assert "'unsafe-eval'" not in policy and "script-src 'self' 'sha256-" in policy
    for selector in ready:
        page.wait_for_selector(selector, timeout=60_000)
    ctx.close()
    assert errors == [], errors[:3]


def test_the_wall_runs_under_the_policy(demo_app, browser):
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=False)
    page = ctx.new_page()
    errors = watch(page)
    page.goto(demo_app.url + "/wall?token=wall-test")
    for selector in ("path.wx-layer-grids", "#wall-clock", "#wall-kpis .wx-wall-kpi"):
        page.wait_for_selector(selector, timeout=60_000)
    ctx.close()
    assert errors == [], errors[:3]
