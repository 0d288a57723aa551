"""The cost of a profile run: wall time, evaluations, seconds per evaluation by solver.

Runs :func:`paltest.testbed.profiles.profile` on a problem set into a fresh temporary
directory (nothing reused) and reports the wall time of the whole call (runs, table,
plots), the runs' own seconds and evaluations summed per solver, the microseconds per
evaluation of each solver (its overhead over the compiled objective shows here), and the
problems' build and compilation seconds. ``--table`` summarizes the ``runs.csv`` of a run
made before (e.g. the full default run) instead of running anything.

    JAX_ENABLE_X64=1 python benchmarks/profile_cost.py --problems tiny --jobs 2
    JAX_ENABLE_X64=1 python benchmarks/profile_cost.py --problems default --jobs 2 \\
        --solvers pal,pal-pr,cg,lbfgsb
    python benchmarks/profile_cost.py --table results/profile-cutest/runs.csv

Needs the ``cutest`` extra. Say how loaded the machine was (``uptime``) with the numbers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def per_solver(table) -> object:
    """Seconds, evaluations and microseconds per evaluation, summed per solver."""
    g = table.groupby("solver", sort=False)
    out = g.agg(runs=("run_id", "size"), seconds=("seconds", "sum"),
                evaluations=("n_evaluations", "sum"))
    out["us_per_evaluation"] = 1e6 * out["seconds"] / out["evaluations"]
    return out.sort_values("seconds", ascending=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", default="tiny")
    ap.add_argument("--solvers", default=None, help="comma-separated (default: the "
                    "default solvers of paltest profile)")
    ap.add_argument("--budget", type=int, default=5000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--table", default=None, help="summarize this runs.csv instead")
    args = ap.parse_args()
    import pandas as pd

    if args.table:
        table = pd.read_csv(args.table)
        wall = None
    else:
        from paltest.testbed.profiles import DEFAULT_SOLVERS, profile

        solvers = args.solvers.split(",") if args.solvers else list(DEFAULT_SOLVERS)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            res = profile(args.problems, solvers, out, budget=args.budget,
                          n_jobs=args.jobs)
            wall = time.perf_counter() - start
        table = res.table
    print(f"load average: {os.getloadavg()}")
    print(f"{len(table)} runs, {table['problem'].nunique()} problems, "
          f"{table['solver'].nunique()} solvers, {int(table['n_evaluations'].sum())} "
          f"evaluations")
    if wall is not None:
        print(f"wall time of profile(), {args.jobs} workers: {wall:.1f} s")
    builds = table.groupby("problem")["build_seconds"].first()
    print(f"runs' own seconds: {table['seconds'].sum():.1f}; problems' build and "
          f"compilation (once per problem and worker): {builds.sum():.1f} s, median "
          f"{builds.median():.2f} s")
    print(per_solver(table).to_string(float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
