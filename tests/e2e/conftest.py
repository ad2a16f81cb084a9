"""The full default demo year, built ONCE per test run into a temporary SQLite file (each pytest-xdist worker
serves its own copy: :func:`tests.conftest.build_full_demo`), and the dashboard served on it (LiveServer,
file-system cache shared by every test of the worker).
"""
from __future__ import annotations

import pytest

from tests.conftest import SUITE_LIMITS, LiveServer, build_full_demo, full_demo_dir  # noqa: F401 (re-exported)


@pytest.fixture(scope="session")
def full_demo_url(tmp_path_factory) -> str:
    return build_full_demo(tmp_path_factory)


@pytest.fixture(scope="session")
def demo_server(full_demo_url, tmp_path_factory):
    from dashboard import create_app
    from dashboard.settings import Settings

    base = full_demo_dir(tmp_path_factory)
    settings = Settings(instance_dir=base / "instance", database_url=full_demo_url, tile_url="", demo_live=False,
                        cache_url=f"file://{base / 'cache'}", api_tokens=("test-token",), rate_limits=SUITE_LIMITS)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()
