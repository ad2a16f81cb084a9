"""Run the benchmarks: every ``bench/bench_*.py`` in turn, each in its own process with its defaults.

    python -m bench                 # all of them (make bench)
    python -m bench live map        # only bench_live.py and bench_map.py
    python -m bench --list          # what there is

Each script prints its figures and writes ``bench/results/<name>.json``; this runner prints a summary line per
script (exit status and minutes taken) and fails when any script failed. Extra arguments after ``--`` are
passed to every script, e.g. ``python -m bench wall_memory -- --minutes 2``.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def scripts() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    known = scripts()
    if "--list" in argv or "-l" in argv:
        print("\n".join(known))
        return 0
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"unknown bench: {', '.join(unknown)} (have: {', '.join(known)})", file=sys.stderr)
        return 2
    chosen = argv or known
    results = []
    for name in chosen:
        print(f"\n=== bench_{name} ===", flush=True)
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"bench.bench_{name}", *extra], cwd=ROOT)
        results.append((name, code, (time.monotonic() - t0) / 60))
    print("\n=== summary ===")
    for name, code, minutes in results:
        print(f"bench_{name:<16} {'ok' if code == 0 else f'FAILED ({code})':<12} {minutes:6.1f} min")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
