"""Signing in while another worker writes (the live feed never stops) must not fail on SQLite."""
from __future__ import annotations

import threading

from dashboard.auth.users import add_user, authenticate
from dashboard.store import init_db, make_engine, session_factory, sequence


def test_sign_in_while_another_connection_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'auth.sqlite3'}"
    init_db(make_engine(url))
    Sessions = session_factory(make_engine(url))  # this "worker"
    Writer = session_factory(make_engine(url))  # another "worker"
    with Sessions() as s:
        add_user(s, "duty", "duty-demo-pass", "duty_officer")
    stop, errors, signed_in = threading.Event(), [], []

    def writer():
        while not stop.is_set():
            try:
                with Writer() as s:
                    sequence.allocate_one(s)
                    s.commit()
            except Exception as exc:  # noqa: BLE001
                errors.append(("writer", repr(exc)))

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(25):
            with Sessions() as s:
                try:
                    user = authenticate(s, "duty", "duty-demo-pass")
                    signed_in.append(user is not None and user.last_login_at is not None)
                except Exception as exc:  # noqa: BLE001
                    errors.append(("sign-in", repr(exc)))
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert signed_in == [True] * 25
