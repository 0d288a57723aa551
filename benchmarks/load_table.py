"""How long ``paltest.load_table`` takes on a 4,500-run sweep of the Figure 8 problems.

Runs (or resumes) the sweep: the four matrix-factorization problems of Figure 8 (float32,
NumPy, batch 100, 50 epochs), 24 optimizer configurations each (PAL mu x alpha x beta,
SGD and Adam over five learning rates, SLS, the exact line search) and 47 seeds: 4,512
runs, one result file each, as ``paltest sweep`` writes them. Then times, each in this
process unless said otherwise (medians of ``--repeat``):

* ``per-file``: the way ``load_table`` read before the parquet tables (every result
  file read and checked, one DataFrame per run, concatenated by pandas), once;
* ``cache=False``: ``load_table(..., cache=False)`` (every file read and checked, the
  table built with pyarrow, nothing written), once;
* ``rebuild``: ``load_table`` with ``tables/`` removed (what the first load of a
  directory written without tables costs: it builds and writes them), once;
* ``load_table``: the tables up to date (after a sweep, or any earlier load);
* ``3 files changed``: ``load_table`` after three result files changed (read again and
  merged into the tables, which are written again), once;
* ``new process``: ``python -c "import paltest; paltest.load_table(DIR)"``, wall time
  with the imports;
* and, for comparison, the epochs table read by pandas, polars and DuckDB directly.

    python benchmarks/load_table.py --out results/bench-load-table --jobs 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def grid(seeds: int, epochs: int) -> dict:
    return {
        "epochs": epochs, "batch_size": 100, "seeds": seeds,
        "problems": [{"name": n, "options": {"dtype": "float32"}}
                     for n in ("mf-true", "mf-rank1", "mf-rank4", "mf-rank10")],
        "optimizers": [
            {"name": "pal", "hyperparameters": {"mu": [0.1, 0.316, 1.0],
                                                "alpha": [1.0, 1 / 0.6], "beta": [0.0, 0.4]}},
            {"name": "sgd", "hyperparameters": {"lr": [0.01, 0.0316, 0.1, 0.316, 1.0]}},
            {"name": "adam", "hyperparameters": {"lr": [0.001, 0.00316, 0.01, 0.0316, 0.1]}},
            "sls", "exact"],
    }


def per_file(runs: Path):
    """The reading of load_table before the parquet tables, for reference."""
    import json

    import pandas as pd

    from paltest.testbed import results

    frames = []
    for r in results._complete_runs(runs, strict=False):
        c = r.config
        cols = {"run_id": r.run_id, "problem": c["problem"], "optimizer": c["optimizer"],
                "seed": c["seed"], "dtype": c["problem_options"].get("dtype"),
                "xp": c["problem_options"].get("xp"), "batch_size": c["batch_size"],
                "epochs": c["epochs"]}
        for k, v in c["hyperparameters"].items():
            cols[f"hp_{k}"] = v if not isinstance(v, (list, dict)) else json.dumps(v)
        n = len(r.epochs["epoch"])
        frames.append(pd.DataFrame({**{k: [v] * n for k, v in cols.items()}, **r.epochs}))
    return pd.concat(frames, ignore_index=True)


def timed(f, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/bench-load-table")
    ap.add_argument("--seeds", type=int, default=47)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import paltest
    from paltest.testbed import tables

    runs = Path(args.out) / "runs"
    t = time.perf_counter()
    s = paltest.sweep(grid(args.seeds, args.epochs), runs, n_jobs=args.jobs)
    print(f"sweep: {len(s.run_ids)} runs ({s.ran} run now, {s.skipped} there) in "
          f"{time.perf_counter() - t:.1f} s")
    print(f"load average: {os.getloadavg()}")
    rows = {}
    rows["per-file (before the tables)"], old = timed(lambda: per_file(runs), 1)
    rows["load_table(cache=False)"], _ = timed(
        lambda: paltest.load_table(runs, cache=False), 1)
    shutil.rmtree(tables.tables_dir(runs), ignore_errors=True)
    rows["rebuild (no tables/ yet)"], _ = timed(lambda: paltest.load_table(runs), 1)
    rows["load_table"], table = timed(lambda: paltest.load_table(runs), args.repeat)
    for path in sorted(runs.glob("*.npz"))[:3]:  # three rewritten files (as a resumed run)
        t_ns = time.time_ns() - 10**10
        os.utime(path, ns=(t_ns, t_ns))
    rows["load_table, 3 files changed"], _ = timed(lambda: paltest.load_table(runs), 1)
    code = f"import paltest; paltest.load_table({str(runs)!r})"
    rows["new process (imports included)"], _ = timed(
        lambda: subprocess.run([sys.executable, "-c", code], check=True), 3)
    epochs = str(tables.tables_dir(runs) / "epochs.parquet")
    import pandas as pd

    rows["pandas.read_parquet"], _ = timed(lambda: pd.read_parquet(epochs), args.repeat)
    try:
        import polars as pl

        rows["polars.read_parquet"], _ = timed(lambda: pl.read_parquet(epochs), args.repeat)
    except ImportError:
        pass
    try:
        import duckdb

        rows["duckdb (to pandas)"], _ = timed(
            lambda: duckdb.sql(f"SELECT * FROM '{epochs}'").df(), args.repeat)
    except ImportError:
        pass
    print(f"table: {table.shape[0]} rows x {table.shape[1]} columns, "
          f"{table['run_id'].nunique()} runs (per-file: {old.shape[0]} rows)")
    for name, sec in rows.items():
        print(f"{name:34s} {sec:8.3f} s")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
