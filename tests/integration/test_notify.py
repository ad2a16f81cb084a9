"""Alert push (告警推送) end to end on SQLite and PostgreSQL: the outbox rows are written with the alert (one
transaction, never twice), dispatchers deliver through a local receiver that checks the DingTalk signature, the
WeCom body and the webhook's Idempotency-Key — while it refuses connections, then answers 503, then comes back —
exactly once per alert and channel; racing dispatchers never send a row twice; dead after N attempts, requeue;
no secret in the logs; the admins' JSON read."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from dashboard.services import notify
from dashboard.settings import Settings
from dashboard.store import incidents as repo
from dashboard.store import outbox
from dashboard.store import session_factory
from dashboard.store.alerts import Alert
from dashboard.store.hazards import load_hazard_sites
from dashboard.store.models import utcnow
from tests.notify_receiver import Receiver

PERSONAL = ("张三丰", "13800138000", "李小四")  # reporter, phone, resident named in the text: never in a message


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def notify_settings(receiver, tmp_path, geodata_dir, url="", **kw) -> Settings:
    base = dict(instance_dir=tmp_path, database_url=url, geodata_dir=geodata_dir, cache_url="null",
                notify_dingtalk=(f"{receiver.dingtalk_url}|{receiver.secret}",), notify_wecom=(receiver.wecom_url,),
                notify_webhook=(receiver.webhook_url,), notify_backoff_s=0.05, notify_backoff_max_s=0.2,
                notify_timeout_s=2.0, notify_lease_s=30.0, notify_max_attempts=10, notify_poll_s=0.05,
                public_url="https://zhihui.example.gov.cn")
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def names(geo):
    from dashboard.services import units

    return units.names(geo), dict(zip(geo.hazards["code"], geo.hazards["name"]))


def _new(geo, lon, lat, **kw):
    grid = geo.locator.locate(lon, lat)
    base = dict(category="safety.fire", description="李小四 家门口起火", lon=lon, lat=lat, grid_code=grid,
                zone_code=geo.locator.zone_of(grid), town_code=geo.locator.town_of(grid), severity=3,
                reporter="张三丰", reporter_phone="13800138000", persons=["李小四"], address="某路 1 号")
    base.update(kw)
    return repo.NewIncident(**base)


def _rows(sessions):
    with sessions() as s:
        return list(s.execute(select(outbox.OutboxRow).order_by(outbox.OutboxRow.id)).scalars())


def _alert_keys(sessions) -> set[str]:
    with sessions() as s:
        return {outbox.alert_key(code) for code in s.execute(text(
            "SELECT i.code FROM alerts a JOIN incidents i ON i.id = a.incident_id")).scalars()}


def _drive(dispatchers, until, timeout: float = 30.0):
    """Run the dispatchers' rounds until ``until()`` holds (a condition, not a fixed wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in dispatchers:
            d.run_once()
        if until():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _make_alerts(sessions, geo, points, hazards_rows, count: int = 4) -> dict:
    """``count`` single high-severity alerts, a ring alert of severity 1, a batch with two alerts among quiet
    incidents, and quiet incidents: ``{"alerts": n, "quiet": incident ids without alert}``."""
    quiet = []
    with sessions() as s:
        for i in range(count):
            lon, lat, *_ = points[i]
            repo.create_incident(s, _new(geo, lon, lat, severity=3 + i % 2))
        site = hazards_rows.iloc[0]
        lon, lat = site.geometry.x + 0.0005, site.geometry.y
        if geo.locator.locate(lon, lat) is None:
            lon = site.geometry.x - 0.0005
        repo.create_incident(s, _new(geo, lon, lat, severity=1, category="safety.hazchem"))
        items = [_new(geo, *points[10 + i][:2], severity=(4 if i in (1, 3) else 1), client_ref=f"b-{i}",
                      persons=None) for i in range(5)]  # (the batch path does not store persons on SQLite yet)
        repo.create_incidents_batch(s, items)
        inc, _ = repo.create_incident(s, _new(geo, *points[20][:2], severity=2))  # (points: outside the rings)
        quiet.append(inc.id)
    return {"alerts": count + 1 + 2, "quiet": quiet}


@pytest.fixture
def hazards(db, geo):
    with session_factory(db)() as s:
        load_hazard_sites(s, geo.hazards)
    hz = geo.hazards
    return hz[(hz["kind"] == "hazchem") & hz["major"].astype(bool)]


@pytest.fixture(scope="session")
def quiet_points(geo, points):
    """Grid points outside every major hazardous-chemical ring (only the severity rule applies there)."""
    from dashboard.store.alerts import Ring, ring_containing

    hz = geo.hazards[(geo.hazards["kind"] == "hazchem") & geo.hazards["major"].astype(bool)]
    rings = [Ring(r.code, r.name, r.kind, r.geometry.x, r.geometry.y, float(r.ring_m)) for r in hz.itertuples()]
    out = [p for p in points if ring_containing(p[0], p[1], rings) is None]
    assert len(out) >= 25
    return out


def _routed(db, settings):
    return session_factory(db, notify=notify.routes(settings))


# ------------------------------------------------------------------------------------------- queueing
def test_rows_are_queued_with_the_alert_once_per_channel(db, geo, quiet_points, hazards, receiver, tmp_path, geodata_dir):
    settings = notify_settings(receiver, tmp_path, geodata_dir)
    sessions = _routed(db, settings)
    made = _make_alerts(sessions, geo, quiet_points, hazards)
    rows = _rows(sessions)
    keys = _alert_keys(sessions)
    assert len(keys) == made["alerts"]
    assert Counter((r.channel, r.alert_key) for r in rows) == {(c.key, k): 1 for c in notify.channels(settings)
                                                               for k in keys}
    assert {r.state for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}
    with sessions() as s:  # nothing is queued twice: (channel, alert key) is unique
        r = rows[0]
        s.add(outbox.OutboxRow(alert_id=r.alert_id, alert_key=r.alert_key, channel=r.channel, state="pending",
                               attempts=0, next_attempt_at=utcnow(), created_at=utcnow()))
        with pytest.raises(IntegrityError):
            s.commit()


def test_the_incident_and_its_rows_commit_together(db, geo, points, receiver, tmp_path, geodata_dir, monkeypatch):
    from dashboard.store import aggregates

    settings = notify_settings(receiver, tmp_path, geodata_dir)
    sessions = _routed(db, settings)
    queued = []
    real_enqueue = outbox.enqueue

    def enqueue(*args, **kw):
        queued.extend(real_enqueue(*args, **kw))
        return queued

    def aggregates_fail(*args, **kw):  # a step after the rows were queued fails: nothing of the write stays
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox, "enqueue", enqueue)
    monkeypatch.setattr(aggregates, "apply_change", aggregates_fail)
    with sessions() as s, pytest.raises(RuntimeError):
        repo.create_incident(s, _new(geo, *points[0][:2], severity=4))
    assert len(queued) == 3
    with sessions() as s:
        assert s.execute(text("SELECT count(*) FROM incidents")).scalar_one() == 0
        assert s.execute(text("SELECT count(*) FROM notify_outbox")).scalar_one() == 0


def test_min_severity_and_no_channels(db, geo, quiet_points, hazards, receiver, tmp_path, geodata_dir):
    settings = notify_settings(receiver, tmp_path, geodata_dir, notify_min_severity=4)
    sessions = _routed(db, settings)
    with sessions() as s:
        sev3, _ = repo.create_incident(s, _new(geo, *quiet_points[0][:2], severity=3))
        sev4, _ = repo.create_incident(s, _new(geo, *quiet_points[1][:2], severity=4))
    queued = {r.alert_key for r in _rows(sessions)}
    assert queued == {outbox.alert_key(sev4.code)}  # the severity-3 alert is on the desk, not pushed
    plain = session_factory(db)  # a factory without routes (CLI tools): alerts, no rows
    with plain() as s:
        repo.create_incident(s, _new(geo, *quiet_points[2][:2], severity=4))
        assert len(s.execute(select(Alert)).scalars().all()) == 3
    assert len(_rows(sessions)) == 3  # one alert x 3 channels


# ----------------------------------------------------------------------------------------- delivering
def test_delivered_exactly_once_through_an_outage(db, geo, quiet_points, hazards, receiver, tmp_path, geodata_dir, names,
                                                  caplog):
    caplog.set_level(logging.DEBUG)
    settings = notify_settings(receiver, tmp_path, geodata_dir)
    sessions = _routed(db, settings)
    receiver.stop()  # down: connections refused
    made = _make_alerts(sessions, geo, quiet_points, hazards)
    d = notify.Dispatcher(settings, session_factory(db), names=names, owner="host-a:1")
    n_rows = made["alerts"] * 3

    _drive([d], lambda: all(r.attempts >= 2 and r.last_error == "connection refused" for r in _rows(sessions)))
    assert not any(receiver.requests.values())
    receiver.mode = "503"
    receiver.start()  # same port, answering 503
    _drive([d], lambda: all(r.last_error == "HTTP 503" for r in _rows(sessions)))
    assert {r.state for r in _rows(sessions)} == {"pending"}
    receiver.mode = "ok"
    _drive([d], lambda: all(r.state == "sent" for r in _rows(sessions)))

    keys = _alert_keys(sessions)
    assert receiver.problems == []
    for kind in ("dingtalk", "wecom", "webhook"):
        assert receiver.received[kind] == Counter({k: 1 for k in keys}), kind
    rows = _rows(sessions)
    assert len(rows) == n_rows
    assert all(r.attempts >= 3 and r.sent_at is not None and r.last_error == "HTTP 503" for r in rows)
    # more runs change nothing
    d.run_once()
    assert sum(sum(c.values()) for c in receiver.received.values()) == n_rows
    # what a group chat reads: the incident, place, severity, reason and link; nobody's personal data
    for body in receiver.bodies:
        assert not any(p in body for p in PERSONAL), body
        assert "https://zhihui.example.gov.cn/incidents?incident=" in body
    ring = [b for b in receiver.bodies if "危化品重大危险源" in b]
    assert len(ring) == 3  # the ring alert, once per channel, names its site
    assert made["quiet"] and all(f"incident={i}" not in "".join(receiver.bodies) for i in made["quiet"])
    # no secret in the log (URLs are masked), but the log does tell what happened
    log_text = caplog.text
    assert "connection refused" in log_text and "HTTP 503" in log_text and "sent to" in log_text
    assert "access_token=***" in log_text
    for secret in receiver.secrets():
        assert secret not in log_text
        assert not any(secret in (r.last_error or "") for r in rows)


def test_a_robot_error_code_is_a_failure(db, geo, points, receiver, tmp_path, geodata_dir, names):
    settings = notify_settings(receiver, tmp_path, geodata_dir)
    sessions = _routed(db, settings)
    with sessions() as s:
        repo.create_incident(s, _new(geo, *points[0][:2], severity=4))
    receiver.mode = "errcode"
    d = notify.Dispatcher(settings, session_factory(db), names=names)
    _drive([d], lambda: {r.state for r in _rows(sessions)} == {"sent", "pending"}
           and all(r.attempts >= 2 for r in _rows(sessions) if r.state == "pending"))
    by_kind = {r.channel.split("-")[0]: r for r in _rows(sessions)}
    assert by_kind["webhook"].state == "sent"
    for kind in ("dingtalk", "wecom"):
        assert by_kind[kind].state == "pending" and by_kind[kind].last_error.startswith("errcode 130101")
    receiver.mode = "ok"
    _drive([d], lambda: all(r.state == "sent" for r in _rows(sessions)))
    assert [sum(receiver.received[k].values()) for k in ("dingtalk", "wecom", "webhook")] == [1, 1, 1]


def test_a_wrong_secret_is_refused_by_the_robot(db, geo, points, receiver, tmp_path, geodata_dir, names):
    settings = notify_settings(receiver, tmp_path, geodata_dir,
                               notify_dingtalk=(f"{receiver.dingtalk_url}|not-the-secret",), notify_wecom=(),
                               notify_webhook=(), notify_max_attempts=1)
    sessions = _routed(db, settings)
    with sessions() as s:
        repo.create_incident(s, _new(geo, *points[0][:2], severity=4))
    d = notify.Dispatcher(settings, session_factory(db), names=names)
    _drive([d], lambda: all(r.state == "dead" for r in _rows(sessions)))
    (row,) = _rows(sessions)
    assert row.last_error.startswith("errcode 310000") and receiver.problems == ["dingtalk: sign not match"]
    assert not receiver.received["dingtalk"]


def test_racing_dispatchers_never_send_a_row_twice(db, geo, points, receiver, tmp_path, geodata_dir, names):
    settings = notify_settings(receiver, tmp_path, geodata_dir, notify_dingtalk=(), notify_lease_s=12.0)
    sessions = _routed(db, settings)
    with sessions() as s:
        repo.create_incidents_batch(s, [_new(geo, *points[i % len(points)][:2], severity=4, client_ref=f"r-{i}",
                                             persons=None) for i in range(30)])
    receiver.delay_s = 0.01  # each post takes a moment: the dispatchers overlap
    dispatchers = [notify.Dispatcher(settings, session_factory(db), names=names, owner=f"host-{i}:1")
                   for i in range(3)]
    sent = Counter()
    start = threading.Barrier(len(dispatchers))
    errors = []

    def work(d):
        start.wait()
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                done = d.run_once()
                sent[d.owner] += done["sent"]
                if not done["claimed"] and all(r.state == "sent" for r in _rows(sessions)):
                    return
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=90)
    assert errors == []
    keys = _alert_keys(sessions)
    assert len(keys) == 30
    for kind in ("wecom", "webhook"):
        assert receiver.received[kind] == Counter({k: 1 for k in keys}), kind
    assert sum(sent.values()) == 60 and len([o for o, n in sent.items() if n]) >= 2, sent  # they did share
    assert all(r.state == "sent" and r.attempts == 1 for r in _rows(sessions))


def test_a_lease_keeps_others_off_until_it_runs_out(db, backend, geo, points, receiver, tmp_path, geodata_dir):
    settings = notify_settings(receiver, tmp_path, geodata_dir, notify_wecom=(), notify_dingtalk=())
    sessions = _routed(db, settings)
    with sessions() as s:
        for i in range(3):
            repo.create_incident(s, _new(geo, *points[i][:2], severity=4))
    keys = [c.key for c in notify.channels(settings)]
    now = utcnow() + dt.timedelta(seconds=1)
    plain = session_factory(db)
    with plain() as s:
        a = outbox.claim(s, keys, owner="a", now=now, lease_s=30, limit=2)
    with plain() as s:
        b = outbox.claim(s, keys, owner="b", now=now + dt.timedelta(seconds=1), lease_s=30, limit=10)
    assert len(a) == 2 and len(b) == 1 and not {r.id for r in a} & {r.id for r in b}
    with plain() as s:  # everything is leased: nothing more to claim until the leases run out
        assert outbox.claim(s, keys, owner="c", now=now + dt.timedelta(seconds=29), lease_s=30) == []
    with plain() as s:
        c = outbox.claim(s, keys, owner="c", now=now + dt.timedelta(seconds=31), lease_s=30)
    assert {r.id for r in c} == {r.id for r in a} and {r.attempts for r in c} == {2}
    with plain() as s:
        assert outbox.mark_sent(s, a[0].id, a[0].token) is False  # a's lease is gone: c's is the one that counts
        assert outbox.mark_sent(s, c[0].id, c[0].token) is True
    if backend[0] == "postgresql":  # rows locked by another transaction are skipped, not waited for
        later = now + dt.timedelta(seconds=120)
        with plain() as holder:
            locked = holder.execute(text("SELECT id FROM notify_outbox WHERE state = 'pending' ORDER BY id LIMIT 1 "
                                         "FOR UPDATE")).scalar_one()
            t0 = time.monotonic()
            with plain() as s:
                got = outbox.claim(s, keys, owner="d", now=later, lease_s=30)
            assert time.monotonic() - t0 < 5
            assert locked not in {r.id for r in got} and len(got) == 1
            holder.rollback()


def test_dead_after_n_attempts_and_requeue(db, backend, geo, points, receiver, tmp_path, geodata_dir, names,
                                          capsys):
    settings = notify_settings(receiver, tmp_path, geodata_dir, notify_dingtalk=(), notify_wecom=(),
                               notify_max_attempts=3)
    sessions = _routed(db, settings)
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(geo, *points[0][:2], severity=4))
    receiver.mode = "503"
    d = notify.Dispatcher(settings, session_factory(db), names=names)
    _drive([d], lambda: all(r.state == "dead" for r in _rows(sessions)))
    (row,) = _rows(sessions)
    assert row.attempts == 3 and row.last_error == "HTTP 503" and receiver.requests["webhook"] == 3
    d.run_once()
    assert receiver.requests["webhook"] == 3  # dead rows are left alone

    # an admin puts it back (audited in the same transaction) — with the command line here
    from dashboard.__main__ import main

    _, url, _ = backend
    assert main(["notify", "--db", url, "requeue", str(row.id)]) == 0
    assert "requeued" in capsys.readouterr().out
    (row,) = _rows(sessions)
    assert row.state == "pending" and row.attempts == 0
    with sessions() as s:
        audit = s.execute(text("SELECT actor, action, target FROM audit_log WHERE action = 'notify_requeue' "
                               "ORDER BY id DESC")).first()
    assert audit.actor.startswith("cli:") and audit.target == outbox.alert_key(inc.code)
    assert main(["notify", "--db", url, "requeue", str(row.id)]) == 2  # not dead: nothing changed
    assert "not dead" in capsys.readouterr().err
    receiver.mode = "ok"
    _drive([d], lambda: all(r.state == "sent" for r in _rows(sessions)))
    assert receiver.received["webhook"] == Counter({outbox.alert_key(inc.code): 1})
    with sessions() as s, pytest.raises(outbox.OutboxRowNotFound):
        outbox.requeue(s, 10**9)


def test_the_serve_thread_dispatches_and_stops(db, backend, geo, points, receiver, tmp_path, geodata_dir):
    _, url, engine = backend
    settings = notify_settings(receiver, tmp_path, geodata_dir, url=url, notify_dingtalk=(), notify_wecom=())
    sessions = _routed(db, settings)
    with sessions() as s:
        inc, _ = repo.create_incident(s, _new(geo, *points[0][:2], severity=4))
    assert notify.start_dispatcher(settings.with_(notify_dispatch=False), engine=engine) is None
    thread, stop = notify.start_dispatcher(settings, engine=engine)
    try:
        deadline = time.monotonic() + 60  # the thread loads the geodata names first
        while time.monotonic() < deadline and not receiver.received["webhook"]:
            time.sleep(0.05)
        assert receiver.received["webhook"] == Counter({outbox.alert_key(inc.code): 1})
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


# ------------------------------------------------------------------------------------------ admins' read
@pytest.fixture
def notify_site(backend, db, tmp_path, geodata_dir, receiver):
    import flask

    from dashboard.api.notify import bp
    from dashboard.auth.users import add_user
    from dashboard.auth.views import setup
    from dashboard.cache import init_cache
    from dashboard.context import Services

    _, url, engine = backend
    settings = notify_settings(receiver, tmp_path, geodata_dir, url=url)
    with engine.begin() as c:
        c.execute(text("DELETE FROM user_sessions"))
        c.execute(text("DELETE FROM users"))
    server = flask.Flask(__name__)
    server.config["SECRET_KEY"] = "test-secret-0123456789abcdef0123"
    sessions = session_factory(engine, notify=notify.routes(settings))
    server.extensions["dashboard"] = Services(settings=settings, cache=init_cache(server, settings.cache_config),
                                           engine=engine, sessions=sessions)
    setup(server)
    server.register_blueprint(bp)
    for name, role in (("root", "admin"), ("boss", "leader"), ("duty", "duty_officer")):
        with sessions() as s:
            add_user(s, name, f"{name}-password", role)
    return server


def _login(client, name):
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "next": "/"},
                    headers={"Origin": "http://localhost"})
    assert r.status_code == 303


def test_only_admins_read_the_outbox(notify_site, geo, points, receiver):
    sessions = notify_site.extensions["dashboard"].sessions
    with sessions() as s:
        repo.create_incident(s, _new(geo, *points[0][:2], severity=4))
    for name in ("boss", "duty"):
        c = notify_site.test_client()
        _login(c, name)
        assert c.get("/api/v1/notify/outbox").status_code == 403, name
    assert notify_site.test_client().get("/api/v1/notify/outbox").status_code == 401
    admin = notify_site.test_client()
    _login(admin, "root")
    r = admin.get("/api/v1/notify/outbox")
    assert r.status_code == 200
    body = r.get_json()
    assert {c["kind"] for c in body["channels"]} == {"dingtalk", "wecom", "webhook"}
    assert len(body["items"]) == 3 and {i["state"] for i in body["items"]} == {"pending"}
    assert {k: v["pending"] for k, v in body["counts"].items()} == {c["key"]: 1 for c in body["channels"]}
    raw = r.get_data(as_text=True)
    for secret in receiver.secrets():
        assert secret not in raw
    assert not any(p in raw for p in PERSONAL)
    assert admin.get("/api/v1/notify/outbox?state=sent").get_json()["items"] == []
    assert admin.get("/api/v1/notify/outbox?state=bogus").status_code == 400
    assert admin.get("/api/v1/notify/outbox?limit=0").status_code == 400
    assert admin.get("/api/v1/notify/outbox?limit=%C2%B2").status_code == 400  # "²": a digit int() refuses
    assert admin.get("/api/v1/notify/outbox?channel=x').--").status_code == 400
