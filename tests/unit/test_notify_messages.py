"""Alert push without a store: channel settings (secrets masked, kept out of reprs and errors), the DingTalk
signature, each robot's request, the message (who may read a group chat: no personal data), back-off, and what a
failed post reports (refused, timed out, redirected)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboard.services import notify
from dashboard.settings import Settings
from dashboard.store import catalogue
from dashboard.store.outbox import Claimed

DT_URL = "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef0123456789abcdef"
DT_SECRET = "SECa1b2c3d4e5f60718293a4b5c6d7e8f9"
WC_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
HOOK_URL = "https://hooks.example.org/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX"
SECRETS = ("0123456789abcdef0123456789abcdef", DT_SECRET, "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
           "XXXXXXXXXXXXXXXXXXXXXXXX")


def settings(**kw) -> Settings:
    return Settings(notify_dingtalk=(f"{DT_URL}|{DT_SECRET}",), notify_wecom=(WC_URL,), notify_webhook=(HOOK_URL,),
                    **kw)


def test_channels_from_the_environment_are_masked_everywhere():
    s = Settings.from_env({"NOTIFY_DINGTALK": f"{DT_URL}|{DT_SECRET}, {DT_URL}|{DT_SECRET}",
                           "NOTIFY_WECOM": WC_URL, "NOTIFY_WEBHOOK": HOOK_URL, "NOTIFY_MIN_SEVERITY": "4"})
    chans = notify.channels(s)
    assert [c.kind for c in chans] == ["dingtalk", "wecom", "webhook"]  # the repeated robot is one channel
    assert s.notify_min_severity == 4 and notify.routes(s).min_severity == 4
    assert notify.routes(s).channels == tuple(c.key for c in chans)
    assert chans[0].secret == DT_SECRET and chans[0].key.startswith("dingtalk-")
    assert chans[0].key == notify.channels(settings())[0].key  # stable: the same URL, the same key
    shown = repr(s) + repr(chans) + json.dumps(notify.channel_rows(s))
    for secret in SECRETS:
        assert secret not in shown
    targets = [c.target for c in chans]
    assert targets == ["https://oapi.dingtalk.com/robot/…?access_token=***",
                       "https://qyapi.weixin.qq.com/cgi-bin/…?key=***", "https://hooks.example.org/services/…"]
    assert notify.routes(Settings()) is None and notify.channels(Settings()) == ()


@pytest.mark.parametrize("env,words", [
    ({"NOTIFY_WEBHOOK": "ftp://files.example.org/secret-path-123"}, "NOTIFY_WEBHOOK entry 1"),
    ({"NOTIFY_WECOM": f"{WC_URL},not a url secret-path-123"}, "NOTIFY_WECOM entry 2"),
    ({"NOTIFY_DINGTALK": f"{DT_URL}|"}, "NOTIFY_DINGTALK entry 1"),
])
def test_a_bad_channel_is_refused_without_echoing_it(env, words):
    with pytest.raises(notify.ConfigError) as exc:
        notify.channels(Settings.from_env(env))
    assert words in str(exc.value)
    assert "secret-path-123" not in str(exc.value) and SECRETS[0] not in str(exc.value)


def test_dingtalk_is_signed_as_its_documentation_says():
    ts = 1_700_000_000_123
    ch = notify.channels(settings())[0]
    req = notify.request_for(ch, _message(), now_ms=ts)
    query = urllib.parse.urlsplit(req.full_url).query
    raw = dict(p.split("=", 1) for p in query.split("&"))
    assert raw["access_token"] == SECRETS[0] and raw["timestamp"] == str(ts)
    mac = hmac.new(DT_SECRET.encode(), f"{ts}\n{DT_SECRET}".encode(), hashlib.sha256).digest()
    assert urllib.parse.unquote(raw["sign"]) == base64.b64encode(mac).decode()
    assert "%3D" in raw["sign"]  # URL-encoded (base64 of 32 bytes ends in '=')
    body = json.loads(req.data)
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
    unsigned = notify.Channel("dingtalk-x", "dingtalk", DT_URL, None)
    assert "sign=" not in notify.request_for(unsigned, _message()).full_url


def test_wecom_and_webhook_requests():
    _, wc, hook = notify.channels(settings())
    msg = _message()
    body = json.loads(notify.request_for(wc, msg).data)
    assert body == {"msgtype": "markdown", "markdown": {"content": msg.markdown}}
    req = notify.request_for(hook, msg)
    assert req.get_header("Idempotency-key") == msg.id == json.loads(req.data)["id"]
    assert req.get_header("Content-type").startswith("application/json") and req.get_method() == "POST"


def _claimed(**kw) -> Claimed:
    base = dict(id=7, channel="webhook-0000000000", alert_key="alert-WX20261202-000123", attempts=1, token="t",
                alert_id=5, kind="high_severity", hazard_code=None,
                alert_created_at=dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.timezone.utc), incident_id=123,
                code="WX20261202-000123", category="safety.fire", subcategory=None, severity=4,
                town_code="330502-ZL", zone_code="330502-ZL-03", grid_code="330502-ZL-03-07",
                reported_at=dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.timezone.utc))
    base.update(kw)
    return Claimed(**base)


UNITS = {"330502-ZL": ("织里镇", "Zhili"), "330502-ZL-03": ("晟舍片区", "Shengshe"),
         "330502-ZL-03-07": ("晟舍七网格", "晟舍七网格")}


def _message(lang="zh", **kw):
    s = settings(public_url="https://zhihui.example.gov.cn")
    return notify.build_message(_claimed(**kw), s, UNITS, {"HZ-0007": "长兴化工仓储有限公司"}, lang)


def test_the_message_names_incident_place_severity_reason_and_link():
    cat = catalogue.get("safety.fire")
    msg = _message()
    assert msg.id == "alert-WX20261202-000123"
    for part in ("WX20261202-000123", "#123", cat.name_zh, catalogue.SEVERITY_NAMES[4][0], "织里镇", "晟舍片区",
                 "晟舍七网格", "2026-12-02 09:00",
                 "(https://zhihui.example.gov.cn/incidents?incident=123)"):
        assert part in msg.markdown, part
    assert msg.data["incident"]["zone"] == {"code": "330502-ZL-03", "name": "晟舍片区"}
    assert msg.data["url"] == "https://zhihui.example.gov.cn/incidents?incident=123"
    ring = _message(kind="hazchem_ring", hazard_code="HZ-0007", severity=1)
    assert "长兴化工仓储有限公司" in ring.markdown and "HZ-0007" in ring.markdown
    en = _message("en")
    assert cat.name_en in en.markdown and "Zhili" in en.markdown and "incident=123&lang=en" in en.markdown
    relative = notify.build_message(_claimed(), settings(), UNITS, {}, "zh")
    assert "](" not in relative.markdown and "/incidents?incident=123" in relative.markdown
    # a group chat is no audience for personal data: the message is built from fields that hold none
    assert not {"reporter", "reporter_phone", "persons", "description", "address"} & set(Claimed.__dataclass_fields__)


def test_back_off_doubles_with_jitter_up_to_the_cap():
    rng = random.Random(1)
    for attempts, full in ((1, 5.0), (2, 10.0), (3, 20.0), (8, 640.0), (9, 900.0), (30, 900.0)):
        waits = [notify.backoff_s(attempts, 5.0, 900.0, rng) for _ in range(200)]
        assert all(full / 2 <= w <= full for w in waits), attempts
        assert max(waits) - min(waits) > full / 10  # spread, not one value


# ----------------------------------------------------------------------------------- failed posts
def _channel_at(url: str) -> notify.Channel:
    return notify.Channel("webhook-test", "webhook", url)


def test_refused_and_timed_out_posts_report_without_secrets():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: refused
    out = notify.post(_channel_at(f"http://127.0.0.1:{port}/in/secret-path-123?token=abcdef123"), _message(),
                      timeout=2)
    assert out == notify.Outcome(False, "connection refused")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        out = notify.post(_channel_at(f"http://127.0.0.1:{silent.getsockname()[1]}/in/secret-path-123"),
                          _message(), timeout=0.3)
    finally:
        silent.close()
    assert out == notify.Outcome(False, "timeout")


def test_redirects_are_not_followed_and_robot_errors_fail():
    answers = {"/moved": (302, {}), "/robot": (200, {"errcode": 310000, "errmsg": "sign not match key abcdef123"}),
               "/text": (200, None)}
    hits = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            hits.append(self.path)
            status, body = answers[urllib.parse.urlsplit(self.path).path]
            data = b"plain" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/robot")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        assert notify.post(_channel_at(base + "/moved"), _message(), timeout=2) == notify.Outcome(False, "HTTP 302")
        assert hits == ["/moved"]
        robot = notify.Channel("wecom-test", "wecom", base + "/robot?key=abcdef123")
        out = notify.post(robot, _message(), timeout=2)
        assert not out.ok and out.error == "errcode 310000: sign not match key ***"
        text = notify.Channel("wecom-test", "wecom", base + "/text?key=abcdef123")
        assert notify.post(text, _message(), timeout=2) == notify.Outcome(False, "answer is not JSON")
        assert notify.post(_channel_at(base + "/text"), _message(), timeout=2).ok  # a webhook: 2xx is enough
    finally:
        server.shutdown()
        server.server_close()


def test_only_admins_get_the_link_beside_the_audit_log():
    from types import SimpleNamespace

    from dashboard.ui.duty import user_box

    def links(role, lang="zh"):
        box = user_box(lang, SimpleNamespace(name="x", role=role))
        return {c.id: c.href for c in box._traverse() if getattr(c, "href", None)}

    assert links("admin") == {"audit-link": "/audit", "notify-link": "/notify"}
    assert links("admin", "en")["notify-link"] == "/notify?lang=en"
    assert "notify-link" not in links("leader") and "notify-link" not in links("duty_officer")


@pytest.mark.parametrize("url,shown,hidden", [
    ("https://hooks.example.org/services/T0001/B0002/XXXX", "https://hooks.example.org/services/…", ["T0001"]),
    ("https://ops.example.org/7f3a9c51e2d04b8f", "https://ops.example.org/…", ["7f3a9c51e2d04b8f"]),
    ("https://user:pa55word@ops.example.org/in?sig=abcdef", "https://ops.example.org/in?sig=***", ["pa55word", "abcdef"]),
    ("http://10.0.0.5:8080", "http://10.0.0.5:8080", []),
])
def test_masks_show_host_and_plain_path_only(url, shown, hidden):
    ch = notify.Channel("webhook-x", "webhook", url)
    assert ch.target == shown
    for part in hidden:
        assert part not in ch.target and part in ch.secrets()
        assert part not in notify.scrub(f"failed at {url}: {part}", ch)
