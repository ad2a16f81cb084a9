"""The alert push page in a real browser: alerts posted through the API are queued for three robots; after the
dispatchers' rounds the admin reads each row's state (sent / dead / pending with its error and next attempt),
requeues the dead one (audited), and never sees a secret; a leader is sent away from the page and gets 403 from
the JSON read."""
from __future__ import annotations

import json
import urllib.request

import pytest

from tests.conftest import SUITE_LIMITS, LiveServer, authed
from tests.notify_receiver import Receiver


@pytest.fixture(scope="module")
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def down_url():
    """A WeCom robot that is down (its port refuses connections)."""
    r = Receiver().start()
    url = r.wecom_url
    r.stop()
    return url


@pytest.fixture(scope="module")
def notify_server(tmp_path_factory, receiver, down_url):
    from dashboard import create_app
    from dashboard.settings import Settings

    settings = Settings(instance_dir=tmp_path_factory.mktemp("notify-instance"), tile_url="", demo_live=False,
                        api_tokens=("test-token",), wall_tokens=("wall-test",), rate_limits=SUITE_LIMITS,
                        notify_dingtalk=(f"{receiver.dingtalk_url}|wrong-secret-for-this-robot",),
                        notify_wecom=(down_url,), notify_webhook=(receiver.webhook_url,),
                        public_url="https://zhihui.example.gov.cn")
    server = LiveServer(create_app(settings))
    yield server
    server.stop()


def _post(server, body: dict) -> dict:
    req = authed(server.url + "/api/v1/incidents", json.dumps(body).encode(),
                 {"Content-Type": "application/json"}, "POST")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def _dispatch(server, only: str, **kw):
    """One dispatcher for the channels of kind ``only`` (so each robot ends in a state of its own), run until it
    claims nothing more."""
    from dashboard.services import notify

    app_settings = server.app.server.extensions["dashboard"].settings
    keep = {k: () for k in ("notify_dingtalk", "notify_wecom", "notify_webhook") if k != f"notify_{only}"}
    settings = app_settings.with_(notify_backoff_s=300.0, notify_timeout_s=2.0, **keep, **kw)
    d = notify.Dispatcher(settings, server.app.server.extensions["dashboard"].sessions)
    while d.run_once()["claimed"]:
        pass


def test_admin_sees_delivery_states_and_requeues(notify_server, receiver, page):
    created = [_post(notify_server, {"category": "safety.fire", "description": "李小四 家门口起火", "lon": 120.0943,
                                     "lat": 30.8676, "severity": sev, "reporter": "张三丰",
                                     "reporter_phone": "13800138000", "persons": ["李小四"]})
               for sev in (4, 2)]
    code = created[0]["code"]
    _dispatch(notify_server, "webhook")  # delivered
    _dispatch(notify_server, "dingtalk", notify_max_attempts=1)  # the robot refuses the signature: dead
    _dispatch(notify_server, "wecom")  # refused connection: pending, next attempt in minutes
    assert sum(receiver.received["webhook"].values()) == 1 and not receiver.received["dingtalk"]

    notify_server.sign_in(page, "admin")
    page.goto(notify_server.url + "/incidents")
    page.click("#notify-link")
    page.wait_for_url("**/notify")
    page.wait_for_selector("#notify-rows tbody tr", timeout=30_000)
    rows = page.locator("#notify-rows tbody tr")
    assert rows.count() == 3  # one alert (the severity-2 incident raised none) x three robots
    states = {}
    for i in range(3):
        cells = rows.nth(i).locator("td").all_inner_texts()
        states[cells[1].split("-")[0]] = cells
        assert code in cells[0]
    assert states["webhook"][2] == "已送达" and states["webhook"][6]
    assert states["dingtalk"][2] == "已放弃" and states["dingtalk"][3] == "1"
    assert states["dingtalk"][5].startswith("errcode 310000")
    assert states["wecom"][2] == "待发送" and states["wecom"][5] == "connection refused" and states["wecom"][4]
    channels = page.locator("#notify-channels").inner_text()
    assert "access_token=***" in channels and "key=***" in channels
    html = page.content()
    for secret in receiver.secrets() + ["wrong-secret-for-this-robot"]:
        assert secret not in html
    assert not any(p in html for p in ("张三丰", "13800138000", "李小四"))

    # requeue the dead message: it is pending again, the audit log says who did it
    assert page.locator(".wx-notify-requeue").count() == 1
    page.click(".wx-notify-requeue")
    page.wait_for_selector("#notify-msg.wx-msg-ok", timeout=15_000)
    assert code in page.locator("#notify-msg").inner_text()
    page.wait_for_function("() => document.querySelectorAll('.wx-notify-requeue').length === 0", timeout=15_000)
    row = page.locator("#notify-rows tbody tr", has_text="dingtalk-")
    assert row.locator("td").nth(2).inner_text() == "待发送" and row.locator("td").nth(3).inner_text() == "0"
    audit = page.request.get(notify_server.url + "/api/v1/audit?action=notify_requeue").json()["items"]
    assert audit and audit[0]["actor"] == "t-admin" and audit[0]["target"] == f"alert-{code}"

    # the state filter, and the page in English
    page.goto(notify_server.url + "/notify?lang=en")
    page.wait_for_selector("#notify-rows tbody tr", timeout=30_000)
    assert "sent" in page.locator("#notify-rows").inner_text()
    body = page.request.get(notify_server.url + "/api/v1/notify/outbox?state=sent").json()
    assert [i["channel"].split("-")[0] for i in body["items"]] == ["webhook"]


def test_a_leader_cannot_open_the_alert_push_page(notify_server, page):
    notify_server.sign_in(page, "leader")
    assert page.request.get(notify_server.url + "/api/v1/notify/outbox").status == 403
    page.goto(notify_server.url + "/notify")
    page.wait_for_url("**/login?**denied=1**")
    page.wait_for_selector("#login-denied", timeout=15_000)
    assert page.locator("#notify-rows").count() == 0
