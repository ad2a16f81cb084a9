"""Fixtures shared by the unit tests that generate demo histories."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def geodata_dir(tmp_path_factory):
    """The committed geodata, or a fresh build when a checkout lacks it."""
    committed = ROOT / "geodata"
    if (committed / "grids.geojson").exists():
        return committed
    from dashboard.geodata.build import build

    out = tmp_path_factory.mktemp("geodata")
    assert build(out).ok
    return out


@pytest.fixture(scope="module")
def gd(geodata_dir):
    from dashboard.geodata import load_geodata

    return load_geodata(geodata_dir)
