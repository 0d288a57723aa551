"""The README's timings of the figure commands, measured the way a user runs them.

Usage::

    python benchmarks/figure_times.py                  # Figure 8 (--jobs 1 and 2), 3 times
    python benchmarks/figure_times.py --only lines     # Figures 1, 2, 6, 7 (--jobs 2)
    python benchmarks/figure_times.py --repeat 5 --only figure8
    PALTEST_DATA=/path python benchmarks/figure_times.py --only figure9 --repeat 1

Each measurement is a fresh ``paltest figure ...`` child process into a new empty folder
(nothing reused: what the README's first command does on a fresh clone, imports and all),
the commands interleaved (``figure 8 --jobs 1``, ``figure 8 --jobs 2``, then the next
repeat), timed by the wall clock. It prints, per command, every time, the median and the
range, with the machine's core count and the 1-minute load average before and after each
run (``os.getloadavg``: on a machine shared with other work a run takes longer, so the
README quotes ranges with the load they were measured at), and writes them to
``benchmarks/results/figure_times.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMANDS = {
    "figure8": [["figure", "8", "--jobs", "1"], ["figure", "8", "--jobs", "2"]],
    # the four line figures one after another into one folder (they share their runs)
    "lines": [[["figure", n, "--jobs", "2"] for n in ("1", "2", "6", "7")]],
    "figure9": [["figure", "9", "--jobs", "2"]],
}


def _paltest() -> list[str]:
    exe = shutil.which("paltest", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "paltest.cli"]


def _once(steps: list[list[str]]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        for argv in steps:
            subprocess.run([*_paltest(), *argv, "--out", out, "--no-progress"], check=True,
                           stdout=subprocess.DEVNULL, env={**os.environ, "MPLBACKEND": "Agg"})
        seconds = time.perf_counter() - t0
        return {"seconds": round(seconds, 2), "load_before": load0,
                "load_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(COMMANDS), default=["figure8"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cases = [(name, c if isinstance(c[0], list) else [c]) for name in args.only
             for c in COMMANDS[name]]
    times: dict[str, list[dict]] = {}
    for _ in range(args.repeat):  # interleaved: one of each, then the next repeat
        for _name, steps in cases:
            label = " && ".join("paltest " + " ".join(s) for s in steps)
            times.setdefault(label, []).append(_once(steps))
            r = times[label][-1]
            print(f"{label}: {r['seconds']:.1f} s (load {r['load_before']:.1f} -> "
                  f"{r['load_after']:.1f})", flush=True)
    summary = {}
    print(f"\n{os.cpu_count()} cores, {platform.platform()}")
    for label, runs in times.items():
        s = [r["seconds"] for r in runs]
        loads = [r[k] for r in runs for k in ("load_before", "load_after")]
        summary[label] = {"runs": runs, "median": statistics.median(s), "min": min(s),
                          "max": max(s), "load_min": min(loads), "load_max": max(loads)}
        print(f"{label}: median {statistics.median(s):.1f} s, range {min(s):.1f}-{max(s):.1f} "
              f"s over {len(s)} runs, load average {min(loads):.1f}-{max(loads):.1f}")
    (HERE / "results").mkdir(exist_ok=True)
    path = HERE / "results" / "figure_times.json"
    path.write_text(json.dumps({"cores": os.cpu_count(), "platform": platform.platform(),
                                "commands": summary}, indent=1))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
