"""The layering rules of docs/architecture.md, checked on the source (every module parsed with ``ast``):

(a) only ``dashboard/store`` builds SQL or touches a connection: no other module imports SQLAlchemy's statement
    builders (``select``, ``text``, ``insert``, ``update``, ``delete``, ``func``) or calls ``.execute`` /
    ``.connect`` / ``.begin`` (or the other connection and result methods below);
(b) ``dashboard/ui`` imports no module that reads data: no store module (the pure vocabularies
    ``store.catalogue`` and ``store.lifecycle`` excepted; ``store.frames`` included), no metric loader
    (``metrics.views``), no service, no API blueprint, nor ``auth`` / ``context`` (they read users, the store and
    the cache);
(c) ``dashboard/api`` and ``dashboard/callbacks`` do not import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import dashboard

PACKAGE_DIR = Path(dashboard.__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent

# Rule (a) exceptions still being moved into the store (the KPI loaders). Empty it as they move; it may only shrink.
PENDING_LEAD: set[str] = set()

SQL_BUILDERS = {"select", "text", "insert", "update", "delete", "func"}
CONNECTION_CALLS = {"execute", "exec_driver_sql", "connect", "begin", "scalar", "scalars"}
UI_ALLOWED_STORE = {"dashboard.store.catalogue", "dashboard.store.lifecycle"}
UI_FORBIDDEN = ("dashboard.store", "dashboard.store.frames", "dashboard.metrics.views", "dashboard.services",
                "dashboard.api", "dashboard.auth", "dashboard.context")


# ------------------------------------------------------------------------------------------ parsing
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = REPO_DIR.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _sources() -> list[tuple[str, str, ast.AST]]:
    """(repo-relative path, dotted module name, tree) of every module of the package."""
    out = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(REPO_DIR).as_posix()
        out.append((rel, _module_name(path), ast.parse(path.read_text(encoding="utf-8"), filename=rel)))
    return out


def imported_modules(tree: ast.AST, module: str, is_package: bool = False) -> set[str]:
    """Every module ``tree`` imports (anywhere, also inside functions), as absolute dotted names; ``from pkg
    import sub`` counts as ``pkg.sub`` when ``sub`` is a module of this repository, else as ``pkg``."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if _is_module(sub) else target)
    return found


def sql_violations(tree: ast.AST) -> list[str]:
    """What in ``tree`` builds SQL or touches a connection (rule a), as readable strings with line numbers."""
    out = []
    sa_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy" and not node.level:
            for alias in node.names:
                if alias.name in SQL_BUILDERS or alias.name == "*":
                    out.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    sa_aliases.add(alias.asname or "sqlalchemy")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in SQL_BUILDERS and isinstance(node.value, ast.Name) \
                and node.value.id in sa_aliases:
            out.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CONNECTION_CALLS:
            out.append(f"line {node.lineno}: .{node.func.attr}(…)")
    return out


SOURCES = _sources()


def _in(rel: str, *dirs: str) -> bool:
    return any(rel.startswith(f"dashboard/{d}/") for d in dirs)


# ------------------------------------------------------------------------------------------- rules
def test_the_whole_package_is_read():
    names = {mod for _, mod, _ in SOURCES}
    assert {"dashboard.store.incidents", "dashboard.services.filters", "dashboard.ui.panel", "dashboard.api.incidents",
            "dashboard.callbacks.duty"} <= names
    assert len(SOURCES) > 60


def test_only_the_store_builds_sql_or_touches_a_connection():
    bad = {rel: v for rel, _, tree in SOURCES
           if not _in(rel, "store") and rel not in PENDING_LEAD and (v := sql_violations(tree))}
    assert bad == {}, "SQL outside dashboard/store (move it into a store repository):\n" + "\n".join(
        f"{rel}: {'; '.join(v)}" for rel, v in sorted(bad.items()))


def test_pending_exceptions_are_real_and_still_pending():
    """Every allow-listed module exists and still needs the exception (else: take it off the list)."""
    by_rel = {rel: tree for rel, _, tree in SOURCES}
    for rel in PENDING_LEAD:
        assert rel in by_rel, f"{rel} is gone: remove it from PENDING_LEAD"
        assert sql_violations(by_rel[rel]), f"{rel} has no SQL left: remove it from PENDING_LEAD"


def test_ui_imports_nothing_that_reads_data():
    bad = {}
    for rel, mod, tree in SOURCES:
        if not _in(rel, "ui"):
            continue
        for name in imported_modules(tree, mod, rel.endswith("__init__.py")):
            if name in UI_ALLOWED_STORE:
                continue
            if any(name == f or name.startswith(f + ".") for f in UI_FORBIDDEN):
                bad.setdefault(rel, []).append(name)
    assert bad == {}, "ui modules import data readers (pass them values instead):\n" + "\n".join(
        f"{rel}: {', '.join(sorted(v))}" for rel, v in sorted(bad.items()))


@pytest.mark.parametrize("side,other", [("api", "callbacks"), ("callbacks", "api")])
def test_api_and_callbacks_do_not_import_each_other(side, other):
    bad = {}
    for rel, mod, tree in SOURCES:
        if not _in(rel, side):
            continue
        hits = [n for n in imported_modules(tree, mod, rel.endswith("__init__.py"))
                if n == f"dashboard.{other}" or n.startswith(f"dashboard.{other}.")]
        if hits:
            bad[rel] = hits
    assert bad == {}, f"dashboard/{side} imports dashboard/{other} (share a service instead): {bad}"


# ------------------------------------------------------------------------------ the checks themselves
@pytest.mark.parametrize("source", [
    "from sqlalchemy import select\n",
    "from sqlalchemy.sql import text\n",
    "import sqlalchemy as sa\nq = sa.func.max(1)\n",
    "def f(engine):\n    with engine.connect() as c:\n        return c.execute(q)\n",
    "def f(engine):\n    with engine.begin() as c:\n        pass\n",
    "def f(s):\n    return s.scalars(q)\n",
])
def test_sql_check_sees_sql(source):
    assert sql_violations(ast.parse(source))


@pytest.mark.parametrize("source", [
    "from sqlalchemy.orm import Session\nfrom sqlalchemy.exc import IntegrityError\n",
    "from ..store import incidents as repo\ndef f(s, flt):\n    return repo.list_incidents(s, flt)\n",
])
def test_sql_check_leaves_repository_calls_alone(source):
    assert sql_violations(ast.parse(source)) == []


def test_import_check_resolves_relative_imports():
    tree = ast.parse("from ..store import catalogue, make_engine\nfrom ..services import duty\n"
                     "def f():\n    from ..metrics.views import hierarchy\n    from . import cards\n")
    assert imported_modules(tree, "dashboard.ui.panel") == {
        "dashboard.store.catalogue", "dashboard.store", "dashboard.services.duty", "dashboard.metrics.views",
        "dashboard.ui.cards"}
