"""The audit log page in a real browser: an admin reads who signed in and filters the entries; the export link
carries the filter; a leader is sent away."""
from __future__ import annotations

import urllib.parse


def test_admin_reads_and_filters_the_audit_log(live_app, page):
    live_app.sign_in(page, "leader")  # something to find: a leader's sign-in …
    live_app.sign_in(page, "admin")
    page.goto(live_app.url + "/audit")
    page.wait_for_selector("#audit-rows tbody tr", timeout=30_000)
    text = page.locator("#audit-rows").inner_text()
    assert "t-leader" in text and "t-admin" in text and "登录" in text
    # filter by the actor: only the admin's rows remain
    page.fill("#audit-actor", "t-admin")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('#audit-rows').innerText.includes('t-leader')",
                           timeout=15_000)
    actors = page.locator("#audit-rows tbody tr td:nth-child(2)").all_inner_texts()
    assert actors and set(actors) == {"t-admin"}
    href = page.locator("#audit-export").get_attribute("href")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["actor"] == ["t-admin"]
    r = page.request.get(live_app.url + href)
    assert r.status == 200 and "t-admin" in r.text() and "t-leader" not in r.text()


def test_a_leader_cannot_open_the_audit_log(live_app, page):
    live_app.sign_in(page, "leader")
    page.goto(live_app.url + "/audit")
    page.wait_for_url("**/login?**denied=1**")
    page.wait_for_selector("#login-denied", timeout=15_000)
    assert page.locator("#audit-rows").count() == 0
