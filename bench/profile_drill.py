"""Profile the server side of drill clicks on a multi-county set (issue 10; not a ``bench_*`` script, so
``python -m bench`` leaves it out): the service calls of the drill callbacks (``callbacks.drill``: ``from_url`` ->
``drill.state_from_query`` and the text, ``drill.panel_text_values`` + ``ui.panel.render_text``; ``show`` -> the charts,
``drill.panel_chart_values`` + ``ui.panel.render_charts``; ``show_lifecycle`` ->
``drill.lifecycle_values`` + ``panel.render_lifecycle``), each under cProfile in one process on a fresh instance (file
cache cold): the hierarchy, the root's panel, then a county -> town -> zone -> grid, then the county and a sibling town
again. Writes wall / CPU ms and the top functions of each step to OUT (JSON).

    python -m bench.profile_drill /tmp/zhejiang-bench prov_zhejiang /tmp/profile_zj.json
"""
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

gdir, db = sys.argv[1], sys.argv[2]
out = Path(sys.argv[3])
from bench.bench_province import _sa_url, SECRET, TOKEN  # noqa: E402
from dashboard import create_app
from dashboard.settings import Settings

tmp = tempfile.mkdtemp(prefix="provprof-")
app = create_app(Settings(instance_dir=Path(tmp), tile_url="", demo_live=False, demo_users=True,
                          geodata_dir=Path(gdir), database_url=_sa_url(db), secret_key=SECRET, api_tokens=(TOKEN,)))
from dashboard.services import drill, units
from dashboard.ui import panel

result = {"geodata": gdir, "database": db, "steps": []}


def top(prof, n=25):
    s = io.StringIO()
    st = pstats.Stats(prof, stream=s)
    rows = []
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        rows.append({"fn": fn, "function": f"{Path(fn).name}:{line}:{name}" if fn != "~" else name,
                     "file": fn.split("/dashboard/", 1)[-1] if "/dashboard/" in fn else fn, "calls": nc,
                     "tottime_ms": round(tt * 1000, 1), "cumtime_ms": round(ct * 1000, 1)})
    own = [r for r in rows if "/dashboard/" in r["fn"]]
    for r in rows:
        r.pop("fn")
    return {"by_cumtime": sorted(rows, key=lambda r: -r["cumtime_ms"])[:n],
            "dashboard_by_cumtime": sorted(own, key=lambda r: -r["cumtime_ms"])[:n],
            "by_tottime": sorted(rows, key=lambda r: -r["tottime_ms"])[:n]}


def step(name, fn):
    prof = cProfile.Profile()
    t0, c0 = time.perf_counter(), time.process_time()
    prof.enable()
    v = fn()
    prof.disable()
    wall, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
    print(f"{name}: {wall:.0f} ms wall, {cpu:.0f} ms cpu", flush=True)
    result["steps"].append({"step": name, "wall_ms": round(wall, 1), "cpu_ms": round(cpu, 1), "profile": top(prof)})
    return v


def click(level, code, label):
    state = {"level": level, "code": code, "period": "30d", "from": None, "to": None}
    q = drill.query_for(state, "zh")
    def text():  # callbacks.drill.from_url: the view and the panel's text (the drill's critical path)
        s = drill.state_from_query(q, units.hierarchy())
        drill.map_target(s)
        panel.render_text(drill.panel_text_values(s, "zh", panel.RANK_KPIS), "zh")
        return s
    s = step(f"{label}: text ({level} {code})", text)
    step(f"{label}: charts ({level} {code})",
         lambda: panel.render_charts(drill.panel_chart_values(s, "zh", None, None), "zh"))
    step(f"{label}: lifecycle ({level} {code})",
         lambda: panel.render_lifecycle(drill.lifecycle_values(s), "zh"))


with app.server.app_context():
    result["loadavg_start"] = open("/proc/loadavg").read().strip()
    h = step("hierarchy (cold, once per process)", lambda: units.hierarchy())
    click("district", None, "root (the page's first panel, cold)")
    county = "330502" if h.exists("county", "330502") else sorted(c for lv, c in h.names if lv == "county")[0]
    town = h.children[("county", county)][0]
    zone = h.children[("town", town)][0]
    grid = h.children[("zone", zone)][0]
    for lv, c in [("county", county), ("town", town), ("zone", zone), ("grid", grid)]:
        click(lv, c, f"click {lv}")
    # again: the same county (its caches warm) and a sibling town
    for lv, c in [("county", county), ("town", h.children[("county", county)][1])]:
        click(lv, c, f"again {lv}")
    result["loadavg_end"] = open("/proc/loadavg").read().strip()
out.write_text(json.dumps(result, ensure_ascii=False, indent=1))
print("written", out)
__import__("shutil").rmtree(tmp, ignore_errors=True)
