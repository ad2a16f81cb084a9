"""Access-log records lose the values of secret query parameters, in gunicorn's form (a dict of atoms) and
werkzeug's (the request line in a tuple); other text is untouched."""
from __future__ import annotations

import logging

from dashboard.security import RedactSecrets, redact


def _record(msg, args):
    return logging.LogRecord("werkzeug", logging.INFO, __file__, 1, msg, args, None)


def test_werkzeug_request_line():
    r = _record('%s - - [%s] "%s" %s %s', ("127.0.0.1", "now", "GET /wall?token=s3cret&tour=7 HTTP/1.1", "200", "-"))
    assert RedactSecrets().filter(r)
    assert r.getMessage() == '127.0.0.1 - - [now] "GET /wall?token=***&tour=7 HTTP/1.1" 200 -'


def test_gunicorn_atoms():
    r = _record("%(r)s %(q)s", None)
    r.args = {"r": "GET /open311/v2/requests.json?jurisdiction_id=wx&api_key=K-1 HTTP/1.1",
              "q": "jurisdiction_id=wx&api_key=K-1", "s": 200}
    RedactSecrets().filter(r)
    assert "K-1" not in r.getMessage() and r.args["q"] == "jurisdiction_id=wx&api_key=***" and r.args["s"] == 200


def test_only_secret_parameters():
    assert redact("/incidents?status=open&category=order.public") == "/incidents?status=open&category=order.public"
    assert redact("/x?mytoken=1&token=2&Token=3&password=p") == "/x?mytoken=1&token=***&Token=***&password=***"
