"""No code path outside the geodata build and the demo knows which district the app serves.

The seed district's code, names and places are read from its own source files (``geodata/source_district_wgs84.
geojson``, ``source_towns.csv``) and looked for in every source file of ``dashboard/`` and ``assets/``. Allowed:
the geodata build and its helpers that hold the default build's inputs (``EXEMPT``), the vendored third-party
libraries under ``assets/vendor/``, the demo (calibrated to the
seed district's figures and stories), and the few product identifiers that are stored or sent and so cannot change
with the district (``PRODUCT_IDS``). A hit fails with ``file:line``."""
from __future__ import annotations

import json
import re

import pandas as pd

from tests.conftest import ROOT

GEODATA = ROOT / "geodata"
EXEMPT = ("dashboard/geodata/build.py", "dashboard/geodata/inputs.py", "dashboard/geodata/county.py",
          "dashboard/geodata/names.py", "dashboard/demo/",
          "assets/vendor/")  # third-party libraries, vendored as published (plotly.js's date parser has a "BH")
SUFFIXES = {".py", ".js", ".css", ".html", ".json", ".txt", ".ini", ".cfg", ".toml", ".mako"}
# product identifiers kept when the served district changes (stored state or a documented contract)
PRODUCT_IDS = {
    ("dashboard/settings.py", "'wuxing.sqlite3'"),  # the embedded store's file name: existing instances keep their data
    ("dashboard/settings.py", '"wuxing:"'),  # the shared cache's key prefix (Redis keys of a running deployment)
    ("dashboard/services/notify.py", '"wuxing.alert"'),  # the alert webhook's event type (docs/api.md)
}


def seed_words() -> dict[str, re.Pattern]:
    feature = json.loads((GEODATA / "source_district_wgs84.geojson").read_text(encoding="utf-8"))["features"][0]
    props = feature["properties"]
    towns = pd.read_csv(GEODATA / "source_towns.csv", dtype={"code": str})
    words = {props["adcode"], props["name"], props["name"].rstrip("区县市")}
    words |= {n.rstrip("街道镇乡") for n in towns["name_zh"]} | set(towns["name_en"])
    district_en = json.loads((GEODATA / "district.geojson").read_text(encoding="utf-8"))["features"][0]
    words.add(district_en["properties"]["name_en"])
    out = {w: re.compile(re.escape(w), re.IGNORECASE) for w in words if w}
    # the towns' abbreviations matter only as string literals ("ZL"), and the seed code as a number too
    out |= {f'"{a}"': re.compile(rf"""["']{re.escape(a)}["']""") for a in towns["code"]}
    return out


def sources():
    for base in ("dashboard", "assets"):
        for path in sorted((ROOT / base).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in rel and not rel.startswith(EXEMPT):
                yield rel, path


def test_no_source_names_the_seed_district():
    words = seed_words()
    assert len(words) > 30  # the district, 17 towns in two languages, their abbreviations
    hits = []
    for rel, path in sources():
        for no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for word, pattern in words.items():
                if pattern.search(line) and not any(rel == f and ok in line for f, ok in PRODUCT_IDS):
                    hits.append(f"{rel}:{no}: {word!r} in {line.strip()[:120]}")
    assert not hits, "the served district must come from the geodata, not the code:\n" + "\n".join(hits)


def test_the_build_names_the_seed_code_once_at_most():
    """The default build takes the seed district from its source files; its code is in the county catalogue only."""
    code = json.loads((GEODATA / "source_district_wgs84.geojson").read_text(encoding="utf-8"))["features"][0][
        "properties"]["adcode"]
    hits = [f"{p.relative_to(ROOT)}:{no}" for p in sorted((ROOT / "dashboard" / "geodata").glob("*.py"))
            for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if code in line]
    assert len(hits) == 1 and hits[0].startswith("dashboard/geodata/county.py"), hits


def test_the_scan_finds_a_name():
    """The scan is not blind: a line naming the seed district in a scanned file is reported with its place."""
    words = seed_words()
    name = json.loads((GEODATA / "source_district_wgs84.geojson").read_text(encoding="utf-8"))["features"][0][
        "properties"]["name"]
    line = f'TITLE = "{name}指挥中心"'
    assert any(p.search(line) for p in words.values())
    assert not any(p.search('TITLE = "指挥中心"') for p in words.values())
