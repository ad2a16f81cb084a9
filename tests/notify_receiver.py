"""A local stand-in for the group robots the alert push posts to: DingTalk (checks the signature with the secret),
WeCom (checks the body format) and a JSON webhook (checks the Idempotency-Key) on one ``http.server`` in a thread
on 127.0.0.1 — and it can be down: ``stop()`` closes the port (connections refused), ``mode = "503"`` answers
503, ``mode = "errcode"`` answers 200 with a robot error code.

Every accepted message is counted by its message id (``alert-<incident code>``) per channel kind: a message sent
twice shows as a count of 2. What the receiver finds wrong with a request is kept in ``problems``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CODE = re.compile(r"WX\d{8}-\d{6,}")


class Receiver:
    def __init__(self, *, dingtalk_secret: str = "SEC-dingtalk-0123456789abcdef", token: str = "dt-token-7f3a9c51",
                 wecom_key: str = "wc-key-4be1d2c8", hook_path: str = "hook-5d6e7f80"):
        self.secret = dingtalk_secret
        self.token = token
        self.wecom_key = wecom_key
        self.hook_path = hook_path
        self.mode = "ok"  # ok | 503 | errcode
        self.delay_s = 0.0
        self.lock = threading.Lock()
        self.received = {"dingtalk": Counter(), "wecom": Counter(), "webhook": Counter()}
        self.requests = Counter()  # every request per kind, whatever the answer
        self.bodies: list[str] = []
        self.problems: list[str] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------- urls
    @property
    def dingtalk_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send?access_token={self.token}"

    @property
    def wecom_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/webhook/send?key={self.wecom_key}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts/{self.hook_path}"

    def secrets(self) -> list[str]:
        return [self.secret, self.token, self.wecom_key, self.hook_path]

    # ------------------------------------------------------------------------------------ up / down
    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                receiver.handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until :meth:`start` listens on it again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    # -------------------------------------------------------------------------------------- handling
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        kind = ("dingtalk" if url.path == "/robot/send" else "wecom" if url.path == "/cgi-bin/webhook/send"
                else "webhook" if url.path == f"/alerts/{self.hook_path}" else None)
        with self.lock:
            self.requests[kind] += 1
            mode, delay = self.mode, self.delay_s
        if delay:
            time.sleep(delay)
        if kind is None:
            return self._answer(h, 404, {"error": "no such robot"})
        if mode == "503":
            return self._answer(h, 503, {"error": "unavailable"})
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return self._problem(h, kind, "body is not JSON")
        if kind == "dingtalk":
            if query.get("access_token") != [self.token]:
                return self._problem(h, kind, "wrong access_token", errcode=300001)
            ts, sign = (query.get("timestamp") or [""])[0], (query.get("sign") or [""])[0]
            if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3_600_000:
                return self._problem(h, kind, "timestamp missing or more than an hour off", errcode=310000)
            expected = base64.b64encode(hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(),
                                                 hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(sign, expected):
                return self._problem(h, kind, "sign not match", errcode=310000)
            md = body.get("markdown") or {}
            if body.get("msgtype") != "markdown" or not md.get("title") or not md.get("text"):
                return self._problem(h, kind, f"not a markdown message: {sorted(body)}", errcode=40035)
            msg_id = self._id_of(md["title"])
        elif kind == "wecom":
            if query.get("key") != [self.wecom_key]:
                return self._problem(h, kind, "wrong key", errcode=93000)
            if set(body) != {"msgtype", "markdown"} or body["msgtype"] != "markdown" or \
                    set(body["markdown"]) != {"content"} or not isinstance(body["markdown"]["content"], str):
                return self._problem(h, kind, f"not a WeCom markdown body: {body}", errcode=40008)
            if len(body["markdown"]["content"].encode("utf-8")) > 4096:
                return self._problem(h, kind, "content over 4096 bytes", errcode=40058)
            msg_id = self._id_of(body["markdown"]["content"])
        else:
            key = h.headers.get("Idempotency-Key")
            if not key or key != body.get("id"):
                return self._problem(h, kind, "Idempotency-Key missing or not the message id")
            if not h.headers.get("Content-Type", "").startswith("application/json"):
                return self._problem(h, kind, "not JSON")
            msg_id = body["id"]
        if mode == "errcode" and kind != "webhook":
            return self._answer(h, 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        with self.lock:
            self.received[kind][msg_id] += 1
            self.bodies.append(raw.decode("utf-8"))
        if kind == "webhook":
            return self._answer(h, 202, {"accepted": msg_id})
        return self._answer(h, 200, {"errcode": 0, "errmsg": "ok"})

    def _id_of(self, text: str) -> str:
        found = CODE.search(text)
        return f"alert-{found.group(0)}" if found else "?"

    def _problem(self, h, kind: str, what: str, errcode: int | None = None):
        with self.lock:
            self.problems.append(f"{kind}: {what}")
        if errcode is None:
            return self._answer(h, 400, {"error": what})
        return self._answer(h, 200, {"errcode": errcode, "errmsg": what})

    @staticmethod
    def _answer(h, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
