"""The OpenAPI document is the contract: schemathesis, with all its checks, finds nothing between it and the server.

The real app (``create_app``, SQLite in a temp dir, the committed geodata) is served in a thread with a few stored
incidents, inspections, alerts and push rows; schemathesis (``requirements-dev.txt``) runs its CLI against the
document the app serves at ``/api/v1/openapi.json`` — every operation, every phase (examples, coverage, fuzzing,
stateful), ``--checks all`` — authenticated as the document says: a bearer token with every scope, an admin's session
cookie for the admin operations, Open311's ``api_key``. Examples are bounded so the run takes a minute or so on
two cores (one worker; the server is a thread of this process). The rate limits are off here (their 429s, which
the document names, are ``test_rate_limits.py``'s). What no JSON Schema can say (an order between two parameters,
a point inside the district, a stored inspection …) is kept true for the positive cases by ``contract_hooks.py``
and written in the document's words.

``test_a_document_that_promises_less_fails`` shows the run can fail: a document that says ``/api/v1/changes``
takes ``limit`` up to 10 (the server takes 1,000) is reported.

``WX_CONTRACT_SEED`` replaces the fixed seed (a run is reproducible with the seed it prints).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer, ensure_user
from tests.integration.conftest import ROOT, grid_points

TOKEN = "contract-token"  # every scope
SEED = int(os.environ.get("WX_CONTRACT_SEED", "20261125"))
MAX_EXAMPLES = 10  # per operation and phase (fuzzing); the coverage phase is bounded by the document itself
SLOW_OPERATIONS = "^/api/v1/(gis/|incidents/export[.]xlsx|briefing[.]pdf)"  # a second or so per answered request
SLOW_MAX_EXAMPLES = 3
# the statuses that refuse a request; 413 is this API's answer to a batch over its maximum (maxItems) and to a body
# over the size limit: schemathesis' default list omits it
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]


@pytest.fixture(scope="module")
def site(tmp_path_factory, geodata_dir):
    """The served app with data to find, the admin's session cookie and the hooks' context file."""
    from dashboard import create_app
    from dashboard.geodata import load_geodata
    from dashboard.settings import Settings
    from dashboard.store.models import Inspection

    base = tmp_path_factory.mktemp("contract")
    app = create_app(Settings(
        instance_dir=base / "instance", database_url=f"sqlite:///{base / 'store.sqlite3'}", tile_url="",
        demo_live=False, geodata_dir=geodata_dir, rate_limits_on=False, api_tokens=(TOKEN, "reader:read"),
        notify_webhook=("http://127.0.0.1:9/alerts",)))  # push rows stay pending: no dispatcher runs here
    server = app.server
    geo = load_geodata(geodata_dir)
    points = grid_points(geo, 24)
    with server.extensions["dashboard"].sessions() as s:
        rows = [Inspection(unit_id=f"U{i}", grid_code=p[2], zone_code=p[3], town_code=p[4],
                           inspected_on=dt.date(2026, 1, 2), inspector="李", problems_found=1)
                for i, p in enumerate(points[:3])]
        s.add_all(rows)
        s.commit()
        inspections = [r.id for r in rows]
    client, auth = server.test_client(), {"Authorization": f"Bearer {TOKEN}"}
    for i, (lon, lat, *_) in enumerate(points[:12]):
        r = client.post("/api/v1/incidents", headers=auth, json={
            "category": "safety.fire", "description": f"张三 家门口 {i}", "lon": lon, "lat": lat,
            "severity": 1 + i % 4, "reporter": "李四", "persons": ["张三"], "client_ref": f"seed-{i}",
            "inspection_id": inspections[0] if i == 0 else None})
        assert r.status_code == 201, r.json
        if i % 3 == 0:
            step = {"to": "routed", "actor": "王", "actor_role": "station"}
            assert client.post(f"/api/v1/incidents/{r.json['id']}/transitions", json=step,
                               headers=auth).status_code == 200
    name, password = ensure_user(server, "admin")
    r = client.post("/login", data={"username": name, "password": password, "next": "/"},
                    headers={"Origin": "http://localhost"})
    assert r.status_code == 303 and "error" not in r.headers["Location"]
    cookie = client.get_cookie("wx_session").value
    context = base / "context.json"
    context.write_text(json.dumps({
        "points": [[p[0], p[1]] for p in points], "inspections": inspections,
        "codes": {"town": points[0][4], "zone": points[0][3], "grid": points[0][2]}}), encoding="utf-8")
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # thousands of request lines
    live = LiveServer(app)
    yield {"url": live.url, "cookie": cookie, "context": context, "base": base}
    live.stop()
    quiet.setLevel(level)


def _config(site, path: Path, **extra) -> Path:
    lines = [
        'hooks = "tests.integration.contract_hooks"',
        f"seed = {SEED}",
        "[cache]", "enabled = false",  # no replay of an earlier run's failures: each run stands on its own
        "[checks.negative_data_rejection]",
        f"expected-statuses = {json.dumps(REFUSALS)}",
        "[generation]",
        f"max-examples = {extra.get('max_examples', MAX_EXAMPLES)}",
        'database = "none"',  # no example database in the checkout either
        "[auth.openapi.bearer]", f'bearer = "{TOKEN}"',
        "[auth.openapi.session]", f'api_key = "{site["cookie"]}"',
        "[auth.openapi.open311_api_key]", f'api_key = "{TOKEN}"',
        "[[operations]]", f'include-path-regex = "{SLOW_OPERATIONS}"',
        "[operations.generation]", f"max-examples = {SLOW_MAX_EXAMPLES}",
        # the GIS files take a second each: their boundary cases are the refusals (fast); what they accept is the
        # incident filter and the KPI period, whose accepted boundaries the list and /api/v1/kpis cover
        "[[operations]]", 'include-path-regex = "^/api/v1/gis/"',
        "[operations.generation]", f"max-examples = {SLOW_MAX_EXAMPLES}",
        "[operations.phases.coverage.generation]", 'mode = "negative"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_schemathesis(site, out: Path, *args: str, **config) -> tuple[dict, str]:
    """Run the schemathesis CLI against the served document; (its JSON report, its output)."""
    out.mkdir(parents=True, exist_ok=True)
    config_file = _config(site, out / "schemathesis.toml", **config)
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run",
           site["url"] + "/api/v1/openapi.json", "--checks", "all", "--workers", "1", "--report", "json,ndjson",
           "--report-dir", str(out), "--output-truncate", "true", *args]
    env = {**os.environ, "WX_CONTRACT_CONTEXT": str(site["context"]), "PYTHONPATH": str(ROOT),
           "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=600)  # nothing in the checkout
    reports = sorted(out.glob("*.json"))
    assert reports, f"no report ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return json.loads(reports[-1].read_text(encoding="utf-8")), proc.stdout + proc.stderr


def checks_run(out: Path) -> int:
    """How many check results schemathesis recorded (its ndjson events: one per check and response)."""
    n = 0
    for report in out.glob("*.ndjson"):
        for line in report.read_text(encoding="utf-8").splitlines():
            event = json.loads(line).get("ScenarioFinished")
            if event:
                n += sum(len(results) for results in event["recorder"].get("checks", {}).values())
    return n


def test_schemathesis_finds_nothing_between_the_document_and_the_server(site, tmp_path):
    report, output = run_schemathesis(site, tmp_path / "run")
    tail = output[-12000:]
    assert report["operations"]["tested"] == report["operations"]["total"] >= 24, tail
    assert report["failures"] == [] and report["errors"] == [], tail
    warned = {k: v for k, v in report["warnings"].items() if v}
    assert warned == {}, f"{warned}\n{tail}"  # every operation reached its own logic, auth worked
    assert report["exit_code"] == 0 and report["stop_reason"] == "completed", tail
    phases = {k: v["status"] for k, v in report["phases"].items()}
    assert phases == {"examples": "success", "coverage": "success", "fuzzing": "success",
                      "stateful": "success"}, phases
    cases = report["test_cases"]["generated"]
    print(f"\nschemathesis {report['schemathesis_version']}: {report['operations']['tested']} operations, {cases} "
          f"cases, {checks_run(tmp_path / 'run')} check results, {report['running_time']:.1f} s, seed {SEED}")


def test_a_document_that_promises_less_fails(site, tmp_path, monkeypatch):
    """The same run on a document whose ``GET /api/v1/changes`` says ``limit`` ≤ 10: the server takes 11 …
    1,000, and schemathesis says so (a schema-violating request accepted)."""
    from dashboard.api import openapi

    real = openapi.openapi_document

    def promising_less(*args, **kwargs):
        doc = real(*args, **kwargs)
        for p in doc["paths"]["/api/v1/changes"]["get"]["parameters"]:
            if p["name"] == "limit":
                p["schema"]["maximum"] = 10
        return doc

    monkeypatch.setattr(openapi, "openapi_document", promising_less)
    report, output = run_schemathesis(site, tmp_path / "run", "--include-path", "/api/v1/changes",
                                      "--phases", "coverage")
    found = {f["code"]: f["operations"] for f in report["failures"]}
    assert report["exit_code"] != 0 and "GET /api/v1/changes" in found.get("ST201", []), output[-6000:]
