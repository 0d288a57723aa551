"""Profile runs: every solver on every problem, in parallel, resumable; the tidy table.

Each run (one solver on one problem) is identified by the hash of its config
(:func:`paltest.testbed.results.run_id`: problem, namespace, dtype, solver label and
options, budget, stop rule, time limit) and saved atomically as ``<run_id>.npz`` in
``runs/`` by :func:`paltest.testbed.results.save`; finished runs are skipped, so a
killed run simply runs again to finish, and damaged files are run again (the sweep
machinery's files and rules). In a result file the group ``epochs`` holds the best value
so far at each evaluation that improved it (``evaluation``, ``f_best``), ``steps`` the
smallest gradient norm so far (``evaluation``, ``g_best``); ``totals`` the counts, status
and start values; ``timings`` the run's seconds (``total``) and the problem's build and
compilation (``build``, shared by the runs of a problem in one worker and not part of
``total``).

The runs of one problem are one joblib task (:func:`_run_problem`), so a worker builds
and compiles each problem once; the tasks start largest problem first.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed import results
from paltest.testbed.profiles import convergence
from paltest.testbed.profiles.solvers import Solver, full_batch, run_solver

__all__ = ["TABLE", "make_config", "run_configs", "table", "write_table"]

#: The file name of the tidy table (one row per run).
TABLE = "runs.csv"


def make_config(problem: str, solver: Solver, *, budget: int, xp: str = "numpy",
                dtype: str = "float64", stop_rtol: float = 1e-12,
                time_limit: float = 600.0) -> dict[str, Any]:
    """The config of one profile run (JSON-able; its hash is the run id). SciPy's
    solvers always run on NumPy."""
    xp = "numpy" if solver.optimizer == "scipy" else xp
    cfg = {"kind": "profile", "problem": problem,
           "problem_options": {"xp": xp, "dtype": dtype},
           "solver": solver.label, "optimizer": solver.optimizer,
           "options": solver.options, "budget": int(budget),
           "stop_rtol": float(stop_rtol), "time_limit": float(time_limit)}
    return json.loads(json.dumps(cfg, sort_keys=True))


def _run_problem(configs: list[dict[str, Any]], out_dir: str | None) -> list[Any]:
    """Build the problem of ``configs`` once, then run and save each config (a worker):
    ``[(run_id, seconds), ...]``; with ``out_dir=None`` (a Dask worker, which may not
    share the client's filesystem) the results themselves, for the client to save."""
    import problems

    cfg0 = configs[0]
    done = []
    built: dict[str, Any] = {}
    for cfg in configs:
        opts = cfg["problem_options"]
        key = json.dumps(opts, sort_keys=True)
        if key not in built:
            start = time.perf_counter()
            prob = problems.get(cfg0["problem"], **opts)
            x0, batch = prob.init_params(0), full_batch(prob)
            prob.value_and_grad(x0, batch)  # compile (CUTEst) before the clock starts
            prob.value(x0, batch)
            built[key] = (prob, time.perf_counter() - start)
        prob, build_s = built[key]
        solver = Solver(cfg["solver"], cfg["optimizer"], cfg["options"])
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            hist, status, nit = run_solver(solver, prob, budget=cfg["budget"],
                                           stop_rtol=cfg["stop_rtol"],
                                           time_limit=cfg["time_limit"])
        seconds = time.perf_counter() - start
        result = results.RunResult(
            config=cfg,
            environment=results.environment(prob.xp, prob.device, prob.dtype),
            epochs={"evaluation": np.asarray(hist.f_at, dtype=np.int64),
                    "f_best": np.asarray(hist.f_best, dtype=np.float64)},
            steps={"evaluation": np.asarray(hist.g_at, dtype=np.int64),
                   "g_best": np.asarray(hist.g_best, dtype=np.float64)},
            timings={"total": seconds, "build": build_s},
            totals={"status": status, "nit": nit, "n": int(prob.n_params),
                    "n_evaluations": hist.n_evaluations, "n_value": hist.n_value,
                    "n_value_and_grad": hist.n_value_and_grad, "f0": hist.f0,
                    "g0": hist.g0, "stated_optimum": getattr(prob, "stated_optimum", None)})
        if out_dir is None:
            done.append(result)
            continue
        results.save(result, out_dir)
        done.append((result.run_id, seconds))
    return done


def run_configs(configs: list[dict[str, Any]], runs_dir: str | Path, *, n_jobs: int = 1,
                backend: str = "loky", progress: bool = False,
                sizes: dict[str, int] | None = None) -> tuple[int, int]:
    """Run the configs not yet in ``runs_dir`` (one joblib task per problem and
    namespace, largest ``sizes[problem]`` first); returns ``(ran, skipped)``."""
    import joblib

    from paltest.testbed import cluster

    cluster.check_backend(backend)
    out = Path(runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = results.completed_ids(out)
    groups: dict[str, list[dict[str, Any]]] = {}
    for cfg in configs:
        if results.run_id(cfg) not in done:
            groups.setdefault(cfg["problem"], []).append(cfg)
    sizes = sizes or {}
    order = sorted(groups, key=lambda p: -sizes.get(p, 0))
    ran = sum(len(g) for g in groups.values())
    if ran:
        remote = backend == "dask"  # the results come back, and are saved here
        tasks = [joblib.delayed(_run_problem)(groups[p], None if remote else str(out))
                 for p in order]
        with cluster.connect(backend, n_jobs), \
                joblib.parallel_config(backend=backend, n_jobs=n_jobs):
            outputs = cluster.outputs(tasks)
            if progress:
                from tqdm.auto import tqdm

                outputs = tqdm(outputs, total=len(order), desc="profile", unit="problem")
            for done in outputs:
                for result in done if remote else ():
                    results.save(result, out)
    return ran, len(configs) - ran


def table(runs_dir: str | Path, configs: list[dict[str, Any]] | None = None, *,
          tol: float = 1e-6) -> Any:
    """The tidy table: one row per run of ``runs_dir`` (only those of ``configs`` when
    given), with the references and both convergence tests at ``tol``.

    Columns: ``problem``, ``n``, ``solver``, ``optimizer``, ``options`` (JSON),
    ``xp``, ``dtype``, ``budget``, ``status``, ``nit``, ``n_evaluations``, ``n_value``,
    ``n_value_and_grad``, ``f0``, ``g0``, ``f_best`` (the smallest value found),
    ``g_best``, ``seconds``, ``build_seconds``, ``stated_optimum`` (sif2jax's, not used),
    ``f_ref`` (the smallest value any run of the table found on the problem), ``tol``,
    ``evaluations_f`` and ``evaluations_g`` (evaluations to pass test ``"f"``/``"g"``,
    ``inf``: not within the budget), ``run_id``.
    """
    import pandas as pd

    wanted = None if configs is None else {results.run_id(c) for c in configs}
    rows, records = [], {}
    for r in results._complete_runs(runs_dir, strict=False):
        c, t = r.config, r.totals
        if c.get("kind") != "profile" or (wanted is not None and r.run_id not in wanted):
            continue
        fb, gb = r.epochs["f_best"], r.steps["g_best"]
        rows.append({
            "problem": c["problem"], "n": t["n"], "solver": c["solver"],
            "optimizer": c["optimizer"], "options": json.dumps(c["options"], sort_keys=True),
            "xp": c["problem_options"]["xp"], "dtype": c["problem_options"]["dtype"],
            "budget": c["budget"], "status": t["status"], "nit": t["nit"],
            "n_evaluations": t["n_evaluations"], "n_value": t["n_value"],
            "n_value_and_grad": t["n_value_and_grad"], "f0": t["f0"], "g0": t["g0"],
            "f_best": float(fb[-1]) if fb.size else math.nan,
            "g_best": float(gb[-1]) if gb.size else math.nan,
            "seconds": r.timings.get("total", math.nan),
            "build_seconds": r.timings.get("build", math.nan),
            "stated_optimum": t.get("stated_optimum"), "run_id": r.run_id})
        records[r.run_id] = (r.epochs["evaluation"], fb, r.steps["evaluation"], gb)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.sort_values(["problem", "solver"], kind="stable").reset_index(drop=True)
    df["f_ref"] = df.groupby("problem")["f_best"].transform("min")
    df["tol"] = tol
    ef, eg = [], []
    for row in df.itertuples():
        f_at, fb, g_at, gb = records[row.run_id]
        ef.append(convergence.evaluations_to_solve(f_at, fb, f0=row.f0, f_ref=row.f_ref,
                                                   tol=tol))
        eg.append(convergence.gradient_evaluations_to_solve(g_at, gb, g0=row.g0, tol=tol))
    df["evaluations_f"], df["evaluations_g"] = ef, eg
    cols = [c for c in df.columns if c != "run_id"] + ["run_id"]
    return df[cols]


def cost(df: Any, test: str = "f") -> Any:
    """Problems x solvers DataFrame of the evaluations to pass ``test`` (``inf``:
    unsolved)."""
    if test not in convergence.TESTS:
        raise ValueError(f"test: expected one of {sorted(convergence.TESTS)}, got {test!r}")
    piv = df.pivot_table(index="problem", columns="solver", values=f"evaluations_{test}",
                         aggfunc="min")
    order = list(dict.fromkeys(df["solver"]))
    return piv.reindex(columns=order).fillna(math.inf)


def write_table(df: Any, path: str | Path) -> Path:
    """Write the table (CSV, atomically; the one place that chooses the format)."""
    return results.write_text_atomic(path, df.to_csv(index=False))
