"""``profile()``: solvers on a problem set, the table, the summary and both profiles.

``paltest profile`` calls :func:`profile`. Everything lands in ``out_dir``: ``runs/``
(one result file per run, reused when the same run is asked for again), ``runs.csv``
(the tidy table, :func:`paltest.testbed.profiles.runs.table`), ``summary.csv`` (per
solver: solved fraction, :math:`\\rho(1)`, :math:`\\rho(10)`, median evaluations),
``performance_profile.png``/``.pdf`` and ``data_profile.png``/``.pdf``.

Example (a tiny set; needs the ``cutest`` extra, float32 needs no 64-bit JAX)::

    from paltest.testbed.profiles import profile
    res = profile(["cutest:ROSENBR", "cutest:BEALE"], ["pal", "pal-pr", "cg"],
                  "results/tiny", budget=500, dtype="float32")
    print(res.summary)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paltest.checks import check_int, check_positive
from paltest.testbed.profiles import convergence, drawing, problem_sets, runs
from paltest.testbed.profiles import profiles as prof
from paltest.testbed.profiles import solvers as specs

__all__ = ["DEFAULT_SOLVERS", "ProfileResult", "profile"]

#: The solvers of ``paltest profile`` by default: PAL and its beta variants, the exact
#: line search, SLS, SciPy's CG, BFGS and L-BFGS-B.
DEFAULT_SOLVERS = ("pal", "pal-b0", "pal-fr", "pal-pr", "pal-hs", "pal-dy", "exact", "sls",
                   "cg", "bfgs", "lbfgsb")


@dataclass
class ProfileResult:
    """What :func:`profile` made: the ``table`` (one row per run), the ``cost`` matrix
    (problems x solvers, evaluations to pass ``test``), the ``summary`` (per solver), the
    ``files`` written, and how many runs it ``ran`` and ``skipped`` (already done)."""

    out_dir: Path
    table: Any
    cost: Any
    summary: Any
    test: str
    tol: float
    budget: int
    ran: int = 0
    skipped: int = 0
    files: list[Path] = field(default_factory=list)


def profile(problems: Any = "default", solvers: Any = DEFAULT_SOLVERS,
            out_dir: str | os.PathLike = "results/profile", *, budget: int = 5000,
            test: str = "f", tol: float = 1e-6, xp: str = "numpy", dtype: str = "float64",
            time_limit: float = 120.0, stop_rtol: float = 1e-12, n_jobs: int = 1,
            backend: str = "loky", progress: bool = False, draw: bool = True,
            title: str = "") -> ProfileResult:
    """Run ``solvers`` on ``problems`` and write the table, summary and profiles.

    Args:
        problems: a problem set name (``"default"``, ``"tiny"``, ``"all"``;
            :mod:`.problem_sets`) or a list of problem names (``"cutest:ROSENBR"`` or
            any registered full-batch problem).
        solvers: solver labels or specs (:func:`paltest.testbed.profiles.solvers.parse`).
        out_dir: the output directory.
        budget: evaluations per run (value and value-and-gradient calls alike).
        test: ``"f"`` (within ``tol`` of the best value found, relative to the start) or
            ``"g"`` (gradient norm at most ``tol`` times the start's); both are columns
            of the table, ``test`` chooses the profiles and the summary.
        tol: the tolerance of the convergence test.
        xp, dtype: the namespace and dtype of the problems (SciPy's solvers use NumPy);
            float64 needs JAX's 64-bit mode (``JAX_ENABLE_X64=1``).
        time_limit: seconds per run at most (a safety net; the status says ``"time"``).
        stop_rtol: every run stops once the gradient norm is this times the start's.
        n_jobs, backend: joblib's (one task per problem).
        progress: a tqdm bar over the problems.
        draw: write the two profile plots (needs matplotlib).
    """
    budget = check_int("budget", budget, 1)
    tol = check_positive("tol", tol)
    time_limit = check_positive("time_limit", time_limit)
    if test not in convergence.TESTS:
        raise ValueError(f"test: expected one of {sorted(convergence.TESTS)}, got {test!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    names = problem_sets.resolve(problems)
    parsed = [specs.parse(s) for s in ([solvers] if isinstance(solvers, str)
                                       else list(solvers))]
    labels = [s.label for s in parsed]
    if len(set(labels)) != len(labels):
        twice = sorted({x for x in labels if labels.count(x) > 1})
        raise ValueError(f"solvers: given more than once: {twice}")
    if not parsed:
        raise ValueError("solvers: none given")
    check_float64(dtype, names)
    configs = [runs.make_config(p, s, budget=budget, xp=xp, dtype=dtype,
                                stop_rtol=stop_rtol, time_limit=time_limit)
               for p in names for s in parsed]
    out = Path(out_dir)
    ran, skipped = runs.run_configs(configs, out / "runs", n_jobs=n_jobs, backend=backend,
                                    progress=progress, sizes=problem_sets.sizes(names))
    df = runs.table(out / "runs", configs, tol=tol)
    cost = runs.cost(df, test).reindex(columns=labels).reindex(names).fillna(math.inf)
    summ = prof.summary(cost)
    files = [runs.write_table(df, out / runs.TABLE),
             runs.write_table(summ.reset_index(), out / "summary.csv")]
    res = ProfileResult(out, df, cost, summ, test, tol, budget, ran, skipped, files)
    if draw:
        res.files += draw_profiles(res, title=title)
    return res


def draw_profiles(res: ProfileResult, title: str = "") -> list[Path]:
    """Write ``performance_profile`` and ``data_profile`` (.png, .pdf) of ``res``."""
    import matplotlib.pyplot as plt

    what = (f"test {res.test!r}, tol {res.tol:g}, {len(res.cost)} problems, "
            f"budget {res.budget} evaluations")
    head = f"{title}: " if title else ""
    files = []
    fig, paths = drawing.draw_performance_profile(
        res.cost, title=f"{head}performance profile\n{what}",
        out=res.out_dir / "performance_profile")
    plt.close(fig)
    files += paths
    fig, paths = drawing.draw_data_profile(
        res.cost, budget=res.budget, title=f"{head}data profile\n{what}",
        out=res.out_dir / "data_profile")
    plt.close(fig)
    return files + paths


def check_float64(dtype: str, names: list[str]) -> None:
    """Raise ``ValueError`` (naming ``dtype`` and the fix) when float64 CUTEst problems
    are asked for and JAX's 64-bit mode is off."""
    if dtype != "float64" or not any(n.startswith("cutest:") for n in names):
        return
    try:
        import jax.numpy as jnp
    except ImportError:
        return  # the problems say what to install
    from paltest import backend

    missing = backend.float64_unavailable(jnp)
    if missing:
        raise ValueError(f"dtype: float64 problems are computed by JAX; {missing}")
