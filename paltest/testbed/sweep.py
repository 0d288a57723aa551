"""Sweeps: problems × optimizers × hyperparameter grids × seeds, in parallel, resumable.

A grid is a JSON-able dict (or a JSON/TOML file, see :func:`load_config`)::

    {
      "epochs": 50, "batch_size": 100, "seeds": [0, 1, 2, 3, 4],   # or "seeds": 5
      "problems": ["mf-rank10", {"name": "mf-rank4", "options": {"dtype": "float32"},
                                 "epochs": 20}],
      "optimizers": ["sgd", {"name": "pal", "hyperparameters": {"mu": [0.1, 1.0],
                                                               "beta": 0.4}}],
    }

A list value of a hyperparameter (or a problem option) is a grid axis; a scalar is fixed.
A problem entry may override ``epochs``, ``batch_size`` and ``seeds``; ``"extra"`` (a
dict) is recorded in every run's config. ``seeds`` is a count (``5``: seeds 0-4) or a
list. paltest ships a commented example grid in TOML, :func:`example_grid` (``paltest
sweep --example`` prints it).

The whole grid is validated before any run starts (:func:`expand`): every bad entry is
reported at once in a :class:`GridError`, each message starting with its key. Each run
is identified by the hash of its config (:func:`paltest.testbed.results.run_id`) and written to
``out_dir/<run_id>.npz`` atomically; runs whose intact file is already there are
skipped, so a sweep that was killed simply runs again to finish (a damaged file is
skipped with a warning and its run is run again).

Runs are spread with joblib over any registered backend: ``"loky"`` (processes, the
default), ``"threading"``, ``"sequential"``, ``"multiprocessing"``, ``"dask"`` (a
scheduler given by ``scheduler=``, a current ``distributed.Client``,
``$DASK_SCHEDULER_ADDRESS``, or else a local cluster started for the sweep: see
:mod:`paltest.testbed.cluster`), or ``"ray"`` after ``ray.util.joblib.register_ray()``.
Every worker returns its run's result to this process, which writes it into
``out_dir``: the workers need not share its working directory or filesystem. A run
that fails (e.g. ``on_nonfinite="raise"`` met a NaN) does not stop the others: they
all run and are saved, then :class:`SweepError` names each failed run. Each worker keeps
the last two problems it built for its next runs (a kernel problem's stored kernels
included), and raises loky's leak allowance by what they keep, so that loky does not
replace it as leaking (see :func:`_allow_kept_memory`).

A grid of more than ``max_runs`` runs (default :data:`MAX_RUNS`) is refused before
anything is expanded, with the count (``"seeds": 1000000`` would otherwise take minutes
and gigabytes before the first run): pass a larger ``max_runs`` (``paltest sweep
--max-runs N``) to run it.

Example:
    >>> import tempfile
    >>> grid = {"epochs": 2, "batch_size": 1, "seeds": 2,
    ...         "problems": [{"name": "quadratic", "options": {"n": 3}}],
    ...         "optimizers": [{"name": "sgd", "hyperparameters": {"lr": [0.1, 0.2]}}]}
    >>> d = tempfile.mkdtemp()
    >>> sweep(grid, d, backend="sequential").ran
    4
    >>> sweep(grid, d, backend="sequential").skipped
    4
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paltest.testbed import cluster, results
from paltest.testbed.cluster import backends, check_backend
from paltest.testbed.grid import (
    EXAMPLE_GRID,
    MAX_RUNS,
    GridError,
    check_max_runs,
    example_grid,
    expand,
    load_config,
    planned_runs,
)

__all__ = ["EXAMPLE_GRID", "MAX_RUNS", "GridError", "SweepError", "SweepSummary", "backends",
           "check_backend", "check_max_runs", "example_grid", "expand", "load_config",
           "planned_runs", "run_configs", "sweep"]


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: all its ``run_ids`` (grid order), how many it ``ran`` and how
    many it ``skipped`` because their results were already in ``out_dir``, and the
    ``seconds`` of each run it ran (its ``timings["total"]``, by run id)."""

    run_ids: list[str]
    ran: int
    skipped: int
    out_dir: str
    seconds: dict[str, float] = field(default_factory=dict)


class SweepError(RuntimeError):
    """Runs of a sweep failed; every other run ran and was saved. ``failures`` maps each
    failed run id to its error, ``summary`` is the :class:`SweepSummary` of the sweep."""

    def __init__(self, failures: dict[str, str], configs: dict[str, dict[str, Any]],
                 summary: SweepSummary) -> None:
        self.failures, self.summary = dict(failures), summary
        lines = [f"  run {rid} ({_describe(configs[rid])}): {why}"
                 for rid, why in failures.items()]
        n_ok = summary.ran - len(failures)
        super().__init__(
            f"{len(failures)} of {len(summary.run_ids)} runs failed ({n_ok} ran and "
            f"{summary.skipped} were already there, in {summary.out_dir}):\n"
            + "\n".join(lines))


def _describe(cfg: dict[str, Any]) -> str:
    hp = ", ".join(f"{k}={v}" for k, v in cfg["hyperparameters"].items())
    return f"{cfg['optimizer']}({hp}) on {cfg['problem']}, seed {cfg['seed']}"


@functools.lru_cache(maxsize=2)
def _problem(name: str, options_json: str) -> Any:
    import problems

    problem = problems.get(name, **json.loads(options_json))
    _allow_kept_memory(getattr(problem, "kernel_bytes", 0))
    return problem


#: The module of loky (joblib's process pool) whose workers check themselves for leaks.
_LOKY_WORKER = "joblib.externals.loky.process_executor"
#: loky's allowance: the one private name paltest uses (guarded; tests/test_sweep.py
#: checks that the installed joblib still has it, so an upgrade that drops it fails CI).
_LOKY_LIMIT = "_MAX_MEMORY_LEAK_SIZE"


def _allow_kept_memory(nbytes: int) -> bool:
    """Tell this process's loky worker check that ``nbytes`` more are kept on purpose;
    whether the allowance was raised.

    A loky worker measures its memory after its first task and exits when it has grown
    by more than 300 MB since, taking the growth for a leak. The problems a worker keeps
    for its next runs (:func:`_problem`; ijcnn's stored kernels are 3.9 GB) are no leak:
    in Figure 9 each worker ran mushrooms first, then exited after its first ijcnn run,
    and its successor built the kernels again (about 15 s). So the allowance is raised
    by what a new problem keeps (its ``kernel_bytes``); a real leak beyond it is still
    caught. loky offers no public setting for it: its module-level limit is raised, only
    where it is an int. Outside a loky worker nothing changes; where loky no longer has
    that limit (a joblib upgrade), a warning says that workers may rebuild kept problems.
    """
    if nbytes <= 0:
        return False
    mod = sys.modules.get(_LOKY_WORKER)
    if mod is None:
        return False
    limit = getattr(mod, _LOKY_LIMIT, None)
    if type(limit) is not int:
        warnings.warn(f"joblib's loky has no integer {_LOKY_LIMIT} any more: its workers may "
                      "take the kernels they keep for a leak and be replaced (the kernels "
                      "are then built again)", RuntimeWarning, stacklevel=2)
        return False
    setattr(mod, _LOKY_LIMIT, limit + int(nbytes))
    return True


def _run_one(cfg: dict[str, Any], plugins: tuple[str, ...] = ()) -> tuple[str, str, Any]:
    """Run one config (executed by the workers): ``("ok", run_id, result)``, or
    ``("failed", run_id, "<error type>: <message>")`` when the run raised (the sweep goes
    on without it). ``plugins``: the client's ``PALTEST_PLUGINS``, imported here first
    when this worker does not have them (a reused loky worker started before a
    ``--plugin``, a Dask worker started elsewhere)."""
    import numpy as np

    from paltest.testbed.runner import run

    rid = results.run_id(cfg)
    try:
        _load_plugins(plugins)
        opts = cfg["problem_options"]
        prob = _problem(cfg["problem"], json.dumps(opts, sort_keys=True))
        # A run that diverges is recorded as such (its non-finite steps and losses);
        # NumPy's overflow warnings from inside it would only repeat that on the console.
        with np.errstate(over="ignore", invalid="ignore"):
            result = run(prob, cfg["optimizer"], epochs=cfg["epochs"],
                         batch_size=cfg["batch_size"], seed=cfg["seed"],
                         problem_options=opts, problem_name=cfg["problem"],
                         hyperparameters=cfg["hyperparameters"], config=cfg.get("extra"))
        if result.run_id != rid:
            raise RuntimeError(f"run id mismatch for config {cfg!r}: got {result.config!r}")
    except Exception as err:  # reported with the run's id by run_configs
        return "failed", rid, f"{type(err).__name__}: {err}"
    return "ok", rid, result


def _load_plugins(specs: tuple[str, ...]) -> None:
    if specs:
        from problems import plugins

        for spec in specs:
            if spec not in plugins.specs():
                plugins.add(spec)


def _n_jobs(n_jobs: int, n_tasks: int) -> int:
    """joblib's ``n_jobs``, at most one worker per run (``-1`` stays all cores)."""
    return n_jobs if n_jobs < 1 else max(1, min(n_jobs, n_tasks))


def sweep(grid: dict[str, Any] | str | os.PathLike, out_dir: str | os.PathLike, *,
          n_jobs: int = 1, backend: str = "loky", progress: bool = False,
          scheduler: str | None = None, max_runs: int = MAX_RUNS) -> SweepSummary:
    """Run every config of ``grid`` not yet in ``out_dir``, with joblib.

    The backend and the whole grid are checked first (:func:`check_backend`,
    :func:`expand`), so a bad grid raises :class:`GridError` before any run starts. Files
    in ``out_dir`` that are damaged, partial or not named after their run id are skipped
    with a warning, and their runs are run again. At the end the parquet tables of
    ``out_dir`` are brought up to date (:mod:`paltest.testbed.tables`).

    Args:
        grid: a grid dict (module docstring) or the path of a JSON/TOML grid file.
        out_dir: where the ``<run_id>.npz`` files go (created if needed).
        n_jobs: joblib's ``n_jobs`` (``-1``: all cores); for ``"dask"`` without a
            scheduler, the workers of the local cluster.
        backend: any joblib backend name: ``"loky"``, ``"threading"``, ``"sequential"``,
            ``"multiprocessing"``, ``"dask"`` (:mod:`paltest.testbed.cluster`),
            ``"ray"`` (after registering).
        progress: show a tqdm bar over the runs.
        scheduler: the Dask scheduler's address (``backend="dask"`` only).
        max_runs: the largest grid run without complaint (:func:`check_max_runs`).

    Raises:
        GridError: a bad grid (nothing ran).
        SweepError: runs that failed, each named; the others ran and were saved.
    """
    check_backend(backend)
    cluster.check_scheduler(scheduler, backend)
    if not isinstance(grid, dict):
        grid = load_config(grid)
    from paltest.testbed import tables

    try:
        summary = run_configs(expand(grid, max_runs=max_runs), out_dir, n_jobs=n_jobs,
                              backend=backend, progress=progress, scheduler=scheduler)
    except SweepError:
        tables.refresh(out_dir)  # the runs that were saved
        raise
    tables.refresh(out_dir)  # out_dir/tables/*.parquet, for pandas, polars, DuckDB
    return summary


def run_configs(configs: list[dict[str, Any]], out_dir: str | os.PathLike, *,
                n_jobs: int = 1, backend: str = "loky", progress: bool | str = False,
                scheduler: str | None = None) -> SweepSummary:
    """Run the given run configs (:func:`paltest.testbed.results.make_config`, e.g. from
    :func:`expand`, already validated) that are not yet in ``out_dir``, in parallel; see
    :func:`sweep` (``progress`` may be the progress bar's label). Each result is written
    into ``out_dir`` here, as it arrives from its worker; runs that failed are named in a
    :class:`SweepError` once all others ran."""
    import joblib

    check_backend(backend)
    cluster.check_scheduler(scheduler, backend)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results.remove_stale_temporaries(out)
    results.remove_stale_temporaries(out / "tables")
    done = results.completed_ids(out)
    by_id = {results.run_id(c): c for c in configs}
    ids = list(by_id)
    todo = [c for rid, c in by_id.items() if rid not in done]
    seconds: dict[str, float] = {}
    failures: dict[str, str] = {}
    if todo:
        from problems import plugins

        specs = tuple(plugins.specs())
        tasks = [joblib.delayed(_run_one)(c, specs) for c in todo]
        with cluster.connect(backend, n_jobs, scheduler), \
                joblib.parallel_config(backend=backend, n_jobs=_n_jobs(n_jobs, len(todo))):
            outputs = cluster.outputs(tasks)
            if progress:
                from tqdm.auto import tqdm

                outputs = tqdm(outputs, total=len(todo), unit="run",
                               desc=progress if isinstance(progress, str) else "sweep")
            for status, rid, value in outputs:
                if status == "ok" and value.run_id == rid:
                    results.save(value, out)
                    seconds[rid] = float(value.timings.get("total", math.nan))
                else:
                    failures[rid] = value if status != "ok" else "the worker returned " \
                        f"the result of another run ({value.run_id})"
    summary = SweepSummary(run_ids=ids, ran=len(todo), skipped=len(ids) - len(todo),
                           out_dir=str(out), seconds=seconds)
    if failures:
        raise SweepError(failures, by_id, summary)
    return summary
