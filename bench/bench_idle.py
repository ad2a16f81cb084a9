"""Idle server CPU: `python -m dashboard serve` (gunicorn, the production lane's process layout) with no viewers and
no live simulator, on a copy of the demo store; CPU seconds of the whole process tree over a window, as a share of
one core. Writes bench/results/idle.json.

    python -m bench.bench_idle                  # 300 s window (the issue's 5 minutes)
    python -m bench.bench_idle --seconds 60
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """pid and every descendant (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICKS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=8097)
    args = ap.parse_args(argv)
    src = ROOT / "instance" / "wuxing.sqlite3"
    if not src.exists():
        print("no demo store: run `make db` first", file=sys.stderr)
        return 2
    inst = Path(tempfile.mkdtemp(prefix="wx-idle-"))
    shutil.copy(src, inst / "wuxing.sqlite3")
    env = {**os.environ, "INSTANCE_DIR": str(inst), "DEMO_LIVE": "0", "DEMO_USERS": "0", "PORT": str(args.port)}
    proc = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", "--port", str(args.port), "--workers",
                             str(args.workers)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(10)  # start-up work (imports, migrations) settles
        load0 = os.getloadavg()
        pids = tree(proc.pid)
        c0, t0 = cpu_seconds(pids), time.time()
        time.sleep(args.seconds)
        pids = tree(proc.pid)
        c1, t1 = cpu_seconds(pids), time.time()
        share = (c1 - c0) / (t1 - t0)
        out = {"bench": "idle", "seconds": round(t1 - t0, 1), "processes": len(pids),
               "cpu_seconds": round(c1 - c0, 3), "share_of_one_core": round(share, 5),
               "workers": args.workers, "machine": {"nproc": os.cpu_count(), "load_before": load0,
                                                    "load_after": os.getloadavg()},
               "when": time.strftime("%Y-%m-%d %H:%M:%S")}
        print(json.dumps(out, indent=2))
        (HERE / "results" / "idle.json").write_text(json.dumps(out, indent=2) + "\n")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(inst, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
