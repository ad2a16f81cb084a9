"""The multi-county geodata build's curve: 1 county → a city (湖州市, 5) → the province (90).

Each build is ``python -m dashboard.geodata build … --out <tmp>`` in its own process under ``nice -n 10`` (as the
CLI runs it: both cores as workers), timed on the wall clock; CPU time and peak RSS come from ``wait4`` (the
largest single process of the build's tree: the main process or a worker), the tree's summed RSS is sampled every
0.5 s from ``/proc``. Then the written set is counted (features per level) and its files sized. The machine is
shared: the load average before and after each build is recorded; the lead re-measures absolutes on a quiet machine.

    .venv/bin/python -m bench geodata_multi                          # all three (the province: ~10-40 min)
    .venv/bin/python -m bench.bench_geodata_multi --sizes county,city # without the province
    .venv/bin/python -m bench.bench_geodata_multi --sizes province --keep /tmp/zhejiang   # keep the output

Figures are merged into ``bench/results/geodata_multi.json`` by size (a run of some sizes keeps the others).
``--manual SIZE:OUT_DIR:WALL_S:CPU_S:PEAK_ONE_MB:PEAK_TREE_MB`` (with ``--load SIZE:BEFORE:AFTER``) records a build
run by hand with the same command, its figures read off a /proc sampler.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import RESULTS, ROOT, write_results

SIZES = {"county": ["--county", "德清县"], "city": ["--city", "湖州市"], "province": ["--province"]}
LEVELS = ["cities", "counties", "towns", "zones", "grids", "hazards", "district"]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _tree_rss_mb(root_pid: int) -> float:
    """Summed RSS (MB) of ``root_pid`` and its descendants, from /proc."""
    kids: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            kids.setdefault(int(fields[1]), []).append(int(d))
            rss[int(d)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += kids.get(p, [])
    return total / 2 ** 20


def count_set(out: Path) -> dict:
    """Features per level and file sizes of a written set."""
    counts, sizes = {}, {}
    for level in LEVELS:
        path = out / f"{level}.geojson"
        if path.exists():
            text = path.read_text(encoding="utf-8")
            counts[level] = text.count('{"type":"Feature"')
            sizes[level] = round(path.stat().st_size / 2 ** 20, 2)
    sizes["total"] = round(sum(sizes.values()), 2)
    return {"counts": counts, "file_mb": sizes}


def run_one(size: str, keep: Path | None) -> dict:
    out = keep or Path(tempfile.mkdtemp(prefix=f"geodata_{size}_"))
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["nice", "-n", "10", sys.executable, "-m", "dashboard.geodata", "build", *SIZES[size], "--out", str(out),
           "-q"]
    load0 = _load()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_tree = [0.0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.5):
            peak_tree[0] = max(peak_tree[0], _tree_rss_mb(proc.pid))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    output = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    fig = {"command": "nice -n 10 python " + " ".join(cmd[4:]).replace(str(out), "OUT"),
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ok": proc.returncode == 0,
           "wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
           "peak_rss_mb_largest_process": round(ru.ru_maxrss / 1024, 1),
           "peak_rss_mb_tree": round(peak_tree[0], 1), "load_before": load0, "load_after": _load()}
    m = re.search(r"generate_seconds: ([\d.]+)", output)
    if m:
        fig["generate_s"] = float(m.group(1))
    if proc.returncode == 0:
        fig.update(count_set(out))
    else:
        fig["output_tail"] = output[-2000:]
    if keep is None:
        shutil.rmtree(out, ignore_errors=True)
    else:
        fig["kept_in"] = str(out)
    return fig


def manual(spec: str) -> tuple[str, dict]:
    """A build run by hand (the same command, niced): SIZE:OUT_DIR:WALL_S:CPU_S:PEAK_ONE_MB:PEAK_TREE_MB, the
    figures read off a /proc sampler of its process tree (CPU: the main process with its waited-for workers)."""
    size, out, wall, cpu, one, tree = spec.split(":")
    fig = {"command": "nice -n 10 python -m dashboard.geodata build " + " ".join(SIZES[size]) + " --out OUT",
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(Path(out).stat().st_mtime)),
           "ok": True, "wall_s": float(wall), "cpu_s": float(cpu), "peak_rss_mb_largest_process": float(one),
           "peak_rss_mb_tree": float(tree), "measured_by": "by hand, a /proc sampler every 2 s", "kept_in": out}
    fig.update(count_set(Path(out)))
    return size, fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="county,city,province")
    ap.add_argument("--keep", type=Path, default=None, help="write the (last) build here and keep it")
    ap.add_argument("--manual", action="append", default=[],
                    metavar="SIZE:OUT_DIR:WALL_S:CPU_S:PEAK_ONE_MB:PEAK_TREE_MB", help="record a build run by hand")
    ap.add_argument("--load", action="append", default=[], metavar="SIZE:BEFORE:AFTER",
                    help="with --manual: the load averages noted around it (e.g. 15.9,17.4,13.4)")
    args = ap.parse_args(argv)
    path = RESULTS / "geodata_multi.json"
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    runs = dict(old.get("runs", {}))
    for spec in args.manual:
        size, fig = manual(spec)
        for ld in args.load:
            s, before, after = ld.split(":")
            if s == size:
                fig["load_before"] = [float(x) for x in before.split(",")]
                fig["load_after"] = [float(x) for x in after.split(",")]
        runs[size] = fig
    if not args.manual:
        for size in [s for s in args.sizes.split(",") if s]:
            runs[size] = fig = run_one(size, args.keep)
            print(size, json.dumps(fig, ensure_ascii=False), flush=True)
    curve = [{"size": s, "counties": runs[s]["counts"].get("counties", 1), "grids": runs[s]["counts"]["grids"],
              "wall_s": runs[s]["wall_s"], "cpu_s": runs[s]["cpu_s"],
              "cpu_ms_per_grid": round(1000 * runs[s]["cpu_s"] / runs[s]["counts"]["grids"], 1)}
             for s in SIZES if s in runs and runs[s].get("ok")]
    write_results("geodata_multi", {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "note": "shared 2-core machine, builds under nice -n 10 beside other work: wall time is mostly the wait "
                "for a core; cpu_s is the work. Peak RSS: the largest single process (wait4) and, when sampled, "
                "the build's process tree summed.",
        "runs": runs, "curve": curve})
    return 0 if all(r.get("ok") for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
