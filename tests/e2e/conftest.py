"""The full default demo year, built ONCE per test session into a temporary SQLite file, and the dashboard
served on it (LiveServer, file-system cache shared by every test of the session).

The database lives under pytest's session base temp dir with a marker file, so any suite that imports
:func:`full_demo_url` (e.g. ``tests/integration/test_demo_figures_ui.py``) reuses the same file.
"""
from __future__ import annotations

import pytest

from tests.conftest import SUITE_LIMITS, LiveServer, build_full_demo  # noqa: F401 (re-exported)


@pytest.fixture(scope="session")
def full_demo_url(tmp_path_factory) -> str:
    return build_full_demo(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def demo_server(full_demo_url, tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    base = tmp_path_factory.getbasetemp() / "full-demo"
    settings = Settings(instance_dir=base / "instance", database_url=full_demo_url, tile_url="", demo_live=False,
                        cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",), rate_limits=SUITE_LIMITS)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()
