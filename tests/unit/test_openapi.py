"""The OpenAPI document names exactly the routes the app serves under ``/api/v1`` and ``/open311/v2`` (path and
methods, both ways), and it holds together: unique operation ids, every ``$ref`` and link resolves, every operation
says who may call it and answers in JSON errors, every pattern is one the server's checks use."""
from __future__ import annotations

import json
import re

import pytest

from dashboard.api.openapi import openapi_document

PREFIXES = ("/api/v1/", "/open311/v2/")
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, geodata_dir) -> dict[str, set[str]]:
    """``{path with {…} parameters: {methods}}`` of the app's own rules under the documented prefixes."""
    from dashboard import create_app
    from dashboard.settings import Settings

    base = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(instance_dir=base, database_url=f"sqlite:///{base / 'db.sqlite3'}", tile_url="",
                              demo_live=False, cache_url="null", geodata_dir=geodata_dir, api_tokens=("t",)))
    out: dict[str, set[str]] = {}
    for rule in app.server.url_map.iter_rules():
        if rule.rule.startswith(PREFIXES):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            out.setdefault(path, set()).update(m.lower() for m in rule.methods if m.lower() in METHODS)
    return out


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(json.dumps(openapi_document()))  # what is served: JSON, nothing Python-only


def test_every_served_route_is_documented_and_every_documented_one_served(served, doc):
    documented = {_shape(p): {m for m in ops if m in METHODS} for p, ops in doc["paths"].items()}
    serving = {_shape(p): ms for p, ms in served.items()}
    assert len(serving) >= 20 and set(serving) == set(documented), (
        set(serving) ^ set(documented))
    for path, methods in serving.items():
        assert methods == documented[path], (path, methods, documented[path])
    assert all(p.startswith(PREFIXES) for p in doc["paths"])


def test_path_parameters_are_declared(doc):
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            assert declared == names, (method, path)


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_references_links_and_operation_ids_resolve(doc):
    for ref in set(_refs(doc)):
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) and all(ids)
    for ops in doc["paths"].values():
        for op in ops.values():
            for answer in op["responses"].values():
                for link in answer.get("links", {}).values():
                    assert link["operationId"] in ids


def test_every_operation_says_who_and_answers_errors_as_documented(doc):
    schemes = set(doc["components"]["securitySchemes"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "security" in op, (method, path)
            for requirement in op["security"]:
                assert set(requirement) <= schemes
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (method, path)
            assert "503" in codes and "401" in codes, (method, path)  # the store; a token that is not valid
            if op["security"]:
                # Open311's POST: an api_key without the ingest scope is "not valid" (401), as the spec has it
                assert {"401", "403"} <= codes or (method, path) == ("post", "/open311/v2/requests.json"), path
                assert "429" in codes, (method, path)
            if op.get("parameters") or op.get("requestBody"):
                assert codes & {"400", "404"}, (method, path)


def test_query_parameters_may_be_empty_and_patterns_are_anchored(doc):
    params = [p for ops in doc["paths"].values() for op in ops.values() for p in op.get("parameters", [])]
    params += list(doc["components"]["parameters"].values())
    for p in params:
        if "$ref" in p:
            continue
        if p["in"] == "query":
            assert p["allowEmptyValue"] is True and p["required"] is False, p["name"]

    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for v in node.values():
                yield from patterns(v)
        elif isinstance(node, list):
            for v in node:
                yield from patterns(v)

    found = list(patterns(doc))
    assert len(found) > 30
    for p in found:
        assert p.startswith("^") and p.endswith("$") and "\\d" not in p and "\\s" not in p, p
        re.compile(p)
