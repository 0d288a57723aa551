"""Measure every unconstrained CUTEst problem of sif2jax: dimension and costs.

For each problem (at its default parameters, float64 on NumPy through the host wrapper,
one fresh process per problem so that imports and compilations are not shared), it
records the dimension ``n``, whether the class has a dimension field ``n``, the seconds
to import and build it, to compile and run ``value_and_grad`` and ``value`` once, the
median microseconds of a further ``value_and_grad`` call, and whether the start's value
and gradient are finite. A problem that takes longer than ``--timeout`` seconds in all
is recorded as such; run it again to measure only the problems not yet measured (e.g.
after a timeout on a busy machine). The default problem set of ``paltest profile``
(:mod:`paltest.testbed.profiles.problem_sets`) is chosen from this table by stated rules.
The shipped table is ``paltest/testbed/profiles/cutest_catalog.csv``.

    JAX_ENABLE_X64=1 python benchmarks/cutest_catalog.py --out catalog.csv

Needs the ``cutest`` extra. One problem at a time (a single worker), a few minutes in all.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

_CHILD = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from problems import cutest
name = sys.argv[1]
cls = cutest.load(name)
p = cutest.make(name, dtype="float64")
t1 = time.perf_counter()
x = p.init_params(0)
v, g = p.value_and_grad(x)
t2 = time.perf_counter()
p.value(x)
t3 = time.perf_counter()
calls = []
for _ in range(7):
    s = time.perf_counter(); p.value_and_grad(x); calls.append(time.perf_counter() - s)
fields = getattr(cls, "__dataclass_fields__", {})
print(json.dumps({"name": name, "n": p.n_params, "variable_n": "n" in fields,
                  "build_s": t1 - t0, "compile_vg_s": t2 - t1, "compile_f_s": t3 - t2,
                  "vg_us": float(np.median(calls)) * 1e6,
                  "finite_start": bool(np.isfinite(float(v)) and np.isfinite(g).all()),
                  "stated_optimum": p.stated_optimum}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="cutest_catalog.csv")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("names", nargs="*", help="problems (default: all unconstrained)")
    args = ap.parse_args()
    from problems import cutest

    names = args.names or cutest.names()
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    cols = ["name", "n", "variable_n", "build_s", "compile_vg_s", "compile_f_s", "vg_us",
            "finite_start", "stated_optimum", "status"]
    rows = []
    if os.path.exists(args.out):  # resume: keep the problems already measured
        with open(args.out, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    seen = {r["name"] for r in rows}
    for i, name in enumerate(names):
        if name in seen:
            continue
        start = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-c", _CHILD, name], env=env,
                                 capture_output=True, text=True, timeout=args.timeout)
            if out.returncode == 0:
                row = {**json.loads(out.stdout.strip().splitlines()[-1]), "status": "ok"}
            else:
                err = (out.stderr.strip().splitlines() or ["?"])[-1][:120]
                row = {"name": name, "status": f"error: {err}"}
        except subprocess.TimeoutExpired:
            row = {"name": name, "status": f"timeout > {args.timeout:g} s"}
        rows.append(row)
        print(f"[{i + 1}/{len(names)}] {name}: {row.get('n')} "
              f"{time.perf_counter() - start:.1f} s {row['status']}", flush=True)
        with open(args.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
