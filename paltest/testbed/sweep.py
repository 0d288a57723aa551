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
default), ``"threading"``, ``"sequential"``, or ``"dask"`` (create a
``distributed.Client`` first, as usual with joblib's Dask backend; Ray registers its
own with ``ray.util.joblib.register_ray()``). Each worker keeps the last two problems it
built for its next runs (a kernel problem's stored kernels included), and raises loky's
leak allowance by what they keep, so that loky does not replace it as leaking (see
:func:`_allow_kept_memory`).

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
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from paltest.checks import check_int
from paltest.optimizers import registry
from paltest.testbed import results

__all__ = ["EXAMPLE_GRID", "GridError", "SweepSummary", "backends", "check_backend",
           "example_grid", "expand", "load_config", "run_configs", "sweep"]

#: The example grid shipped in the package (see :func:`example_grid`).
EXAMPLE_GRID = "example_grid.toml"
_GRID_KEYS = {"epochs", "batch_size", "seeds", "problems", "optimizers", "extra"}


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


def example_grid() -> str:
    """The text of the example grid file shipped with paltest (TOML, commented).

    >>> print(example_grid().splitlines()[0])
    # An example grid for `paltest sweep` (print it with `paltest sweep --example`).
    """
    return resources.files("paltest.testbed").joinpath(EXAMPLE_GRID).read_text(encoding="utf-8")


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a grid from a ``.json`` or ``.toml`` file (TOML needs Python 3.11+ or tomli)."""
    path = Path(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError as err:
                raise ImportError("path: reading TOML on Python 3.10 needs 'tomli'; "
                                  "use a .json file or pip install tomli") from err
        with path.open("rb") as fh:
            return tomllib.load(fh)
    raise ValueError(f"path: expected a .json or .toml file, got {str(path)!r}")


class GridError(ValueError):
    """An invalid grid. ``errors`` lists every bad entry; each message starts with its key
    (``epochs``, ``seeds``, ``problems[1].options``, ``optimizers[0].hyperparameters``...).
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        n = len(self.errors)
        super().__init__(f"grid: {n} invalid entr{'y' if n == 1 else 'ies'}:\n"
                         + "\n".join(f"  {e}" for e in self.errors))


_PROBLEM_KEYS = {"name", "options", "epochs", "batch_size", "seeds"}
_OPTIMIZER_KEYS = {"name", "hyperparameters"}


def _entries(grid: dict[str, Any], key: str, allowed: set[str],
             errors: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(key, entry)`` of the valid-looking entries of ``grid[key]``; the rest -> errors."""
    items = grid.get(key)
    if not isinstance(items, list) or not items:
        errors.append(f"{key}: must be a non-empty list of names or dicts, got {items!r}")
        return []
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            errors.append(f"{where}: needs a 'name' (a string), got {item!r}")
            continue
        unknown = sorted(set(item) - allowed)
        if unknown:
            errors.append(f"{where}: unknown key(s) {unknown}; known: {sorted(allowed)}")
            continue
        out.append((where, item))
    return out


def _product(axes: Any, where: str, errors: list[str]) -> list[dict[str, Any]]:
    if not isinstance(axes, dict):
        errors.append(f"{where}: must be a dict, got {axes!r}")
        return []
    keys = list(axes)
    values = [v if isinstance(v, list) else [v] for v in axes.values()]
    empty = [k for k, v in zip(keys, values, strict=True) if not v]
    if empty:
        errors.extend(f"{where}.{k}: empty list" for k in empty)
        return []
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def _int(value: Any, where: str, minimum: int, errors: list[str]) -> int | None:
    try:
        return check_int(where, value, minimum)
    except (TypeError, ValueError) as err:
        errors.append(str(err))
        return None


def _seeds(value: Any, where: str, errors: list[str]) -> list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 1:
            return list(range(value))
    elif isinstance(value, list) and value and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        return list(value)
    errors.append(f"{where}: expected a count >= 1 (seeds 0..count-1) or a non-empty list "
                  f"of ints >= 0, got {value!r}")
    return None


def _is_data_error(err: Exception) -> bool:
    """A data file that is damaged or unreadable: a failure, not a bad grid entry."""
    from problems import datasets

    return isinstance(err, (datasets.ChecksumError, datasets.MalformedDataError))


@functools.cache
def _train_size(name: str, options_json: str, data_dir: str | None) -> int:
    import problems

    return problems.registry.validate(name, **json.loads(options_json))


def expand(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The run configs of ``grid`` (see :func:`paltest.testbed.results.make_config`), in order.

    The whole grid is validated before anything runs, and every bad entry is reported at
    once in a :class:`GridError` naming its key: unknown keys, problem and optimizer
    names; ``epochs`` (an int >= 0), ``batch_size`` (an int >= 1, at most the training
    set of each problem) and ``seeds`` that are not ints (``1.7``, ``true`` and ``"3"``
    are rejected, never rounded); problem options (checked by
    :func:`problems.registry.validate`, which builds each problem cheaply: a kernel
    problem reads and splits its data file, about a second, but computes no kernel);
    hyperparameters (validated and completed with the optimizers' defaults). A data file
    that cannot be found or is damaged is not a grid error: its error is raised as is.
    Duplicates are dropped.
    """
    if not isinstance(grid, dict):
        raise TypeError(f"grid: expected a dict, got {type(grid).__name__}")
    errors: list[str] = []
    errors.extend(f"{k}: unknown key; known keys: {sorted(_GRID_KEYS)}"
                  for k in sorted(set(grid) - _GRID_KEYS, key=str))
    top = {"epochs": None, "batch_size": None}
    for key, minimum in (("epochs", 0), ("batch_size", 1)):
        if key in grid:
            top[key] = _int(grid[key], key, minimum, errors)
    top_seeds = _seeds(grid.get("seeds", 1), "seeds", errors)
    extra = grid.get("extra")
    if extra is not None and not isinstance(extra, dict):
        errors.append(f"extra: must be a dict, got {extra!r}")
    runs = []
    for where, entry in _entries(grid, "problems", _PROBLEM_KEYS, errors):
        runs.extend(_problem_runs(where, entry, top, top_seeds, grid, errors))
    opt_runs = []
    for where, entry in _entries(grid, "optimizers", _OPTIMIZER_KEYS, errors):
        name = entry["name"]
        if name not in registry.names():
            errors.append(f"{where}: unknown optimizer {name!r}; choose one of "
                          f"{registry.names()}")
            continue
        for hp in _product(entry.get("hyperparameters", {}), f"{where}.hyperparameters",
                           errors):
            try:
                opt_runs.append((name, registry.canonical_hyperparameters(name, **hp)))
            except (TypeError, ValueError) as err:
                errors.append(f"{where}.hyperparameters {hp}: {err}")
    if errors:
        raise GridError(errors)
    configs, seen = [], set()
    for name, opts, epochs, batch_size, seeds in runs:
        for (opt, hp), seed in itertools.product(opt_runs, seeds):
            cfg = results.make_config(name, opts, opt, hp, epochs, batch_size, seed,
                                      extra=extra)
            rid = results.run_id(cfg)
            if rid not in seen:
                seen.add(rid)
                configs.append(cfg)
    return configs


def _problem_runs(where: str, entry: dict[str, Any], top: dict[str, int | None],
                  top_seeds: list[int] | None, grid: dict[str, Any],
                  errors: list[str]) -> list[tuple]:
    """``(name, options, epochs, batch_size, seeds)`` of one problem entry; or errors."""
    import problems

    n_errors = len(errors)
    name = entry["name"]
    if name not in problems.names():
        errors.append(f"{where}: unknown problem {name!r}; choose one of {problems.names()}")
    sizes: dict[str, int | None] = {}
    for key, minimum in (("epochs", 0), ("batch_size", 1)):
        if key in entry:
            sizes[key] = _int(entry[key], f"{where}.{key}", minimum, errors)
        elif key in grid:
            sizes[key] = top[key]
        else:
            errors.append(f"{where}.{key}: not given (set '{key}' in the grid or the entry)")
    seeds = _seeds(entry["seeds"], f"{where}.seeds", errors) if "seeds" in entry else top_seeds
    combos = _product(entry.get("options", {}), f"{where}.options", errors)
    if len(errors) > n_errors or name not in problems.names():
        return []
    batch_key = f"{where}.batch_size" if "batch_size" in entry else "batch_size"
    out = []
    for opts in combos:
        try:
            n_train = _train_size(name, json.dumps(opts, sort_keys=True),
                                  os.environ.get("PALTEST_DATA"))
        except (TypeError, ValueError, ImportError) as err:
            if _is_data_error(err):
                raise
            errors.append(f"{where}.options {opts}: {err}" if opts else f"{where}: {err}")
            continue
        if sizes["batch_size"] is not None and sizes["batch_size"] > n_train:
            errors.append(f"{batch_key}: {sizes['batch_size']} exceeds the training set size "
                          f"{n_train} of {where} {name!r}" + (f" {opts}" if opts else ""))
            continue
        out.append((name, opts, sizes["epochs"], sizes["batch_size"], seeds))
    return out


@functools.lru_cache(maxsize=2)
def _problem(name: str, options_json: str) -> Any:
    import problems

    problem = problems.get(name, **json.loads(options_json))
    _allow_kept_memory(getattr(problem, "kernel_bytes", 0))
    return problem


#: The module of loky (joblib's process pool) whose workers check themselves for leaks.
_LOKY_WORKER = "joblib.externals.loky.process_executor"


def _allow_kept_memory(nbytes: int) -> None:
    """Tell this process's loky worker check that ``nbytes`` more are kept on purpose.

    A loky worker measures its memory after its first task and exits when it has grown
    by more than 300 MB since (``_MAX_MEMORY_LEAK_SIZE``), taking the growth for a leak.
    The problems a worker keeps for its next runs (:func:`_problem`; ijcnn's stored
    kernels are 3.9 GB) are no leak: in Figure 9 each worker ran mushrooms first, then
    exited after its first ijcnn run, and its successor built the kernels again (about
    15 s). So the allowance is raised by what a new problem keeps (its
    ``kernel_bytes``); a real leak beyond it is still caught. Outside a loky worker (or
    in a loky without that check) nothing changes.
    """
    mod = sys.modules.get(_LOKY_WORKER)
    limit = getattr(mod, "_MAX_MEMORY_LEAK_SIZE", None)
    if nbytes > 0 and type(limit) is int:
        mod._MAX_MEMORY_LEAK_SIZE = limit + int(nbytes)


def _run_one(cfg: dict[str, Any], out_dir: str) -> tuple[str, float]:
    """Run one config and save it; returns its run id and seconds. (Executed by the
    workers.)"""
    import numpy as np

    from paltest.testbed.runner import run

    opts = cfg["problem_options"]
    prob = _problem(cfg["problem"], json.dumps(opts, sort_keys=True))
    # A run that diverges is recorded as such (its non-finite steps and losses); NumPy's
    # overflow warnings from inside it would only repeat that on the console.
    with np.errstate(over="ignore", invalid="ignore"):
        result = run(prob, cfg["optimizer"], epochs=cfg["epochs"],
                     batch_size=cfg["batch_size"], seed=cfg["seed"], problem_options=opts,
                     problem_name=cfg["problem"], hyperparameters=cfg["hyperparameters"],
                     config=cfg.get("extra"))
    if result.run_id != results.run_id(cfg):
        raise RuntimeError(f"run id mismatch for config {cfg!r}: got {result.config!r}")
    results.save(result, out_dir)
    return result.run_id, float(result.timings.get("total", math.nan))


def backends() -> list[str]:
    """The joblib backend names usable now: those registered with joblib (``loky``,
    ``threading``, ``sequential``, ``multiprocessing``, ``ray`` after
    ``register_ray()``, ...) and those joblib registers on first use (``dask``)."""
    from joblib import parallel

    return sorted(set(parallel.BACKENDS) | set(getattr(parallel, "EXTERNAL_BACKENDS", ())))


def check_backend(backend: Any) -> str:
    """``backend`` if it names a joblib backend (see :func:`backends`), else an error.

    >>> check_backend("loky")
    'loky'
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend: expected a joblib backend name, got {backend!r}")
    known = backends()
    if backend not in known:
        raise ValueError(f"backend: unknown joblib backend {backend!r}; registered: {known}")
    return backend


def sweep(grid: dict[str, Any] | str | os.PathLike, out_dir: str | os.PathLike, *,
          n_jobs: int = 1, backend: str = "loky", progress: bool = False) -> SweepSummary:
    """Run every config of ``grid`` not yet in ``out_dir``, with joblib.

    The backend and the whole grid are checked first (:func:`check_backend`,
    :func:`expand`), so a bad grid raises :class:`GridError` before any run starts. Files
    in ``out_dir`` that are damaged, partial or not named after their run id are skipped
    with a warning, and their runs are run again. At the end the parquet tables of
    ``out_dir`` are brought up to date (:mod:`paltest.testbed.tables`).

    Args:
        grid: a grid dict (module docstring) or the path of a JSON/TOML grid file.
        out_dir: where the ``<run_id>.npz`` files go (created if needed).
        n_jobs: joblib's ``n_jobs`` (``-1``: all cores).
        backend: any joblib backend name: ``"loky"``, ``"threading"``, ``"sequential"``,
            ``"dask"`` (needs a ``distributed.Client``), ``"ray"`` (after registering).
        progress: show a tqdm bar over the runs.
    """
    check_backend(backend)
    if not isinstance(grid, dict):
        grid = load_config(grid)
    summary = run_configs(expand(grid), out_dir, n_jobs=n_jobs, backend=backend,
                          progress=progress)
    from paltest.testbed import tables

    tables.refresh(out_dir)  # out_dir/tables/*.parquet, for pandas, polars, DuckDB
    return summary


def run_configs(configs: list[dict[str, Any]], out_dir: str | os.PathLike, *,
                n_jobs: int = 1, backend: str = "loky",
                progress: bool | str = False) -> SweepSummary:
    """Run the given run configs (:func:`paltest.testbed.results.make_config`, e.g. from
    :func:`expand`, already validated) that are not yet in ``out_dir``, in parallel; see
    :func:`sweep` (``progress`` may be the progress bar's label)."""
    import joblib

    check_backend(backend)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = results.completed_ids(out)
    ids = list(dict.fromkeys(results.run_id(c) for c in configs))
    todo = list({results.run_id(c): c for c in configs
                 if results.run_id(c) not in done}.values())
    if todo:
        tasks = (joblib.delayed(_run_one)(c, str(out)) for c in todo)
        with joblib.parallel_config(backend=backend, n_jobs=n_jobs):
            outputs = joblib.Parallel(return_as="generator")(tasks)
            if progress:
                from tqdm.auto import tqdm

                outputs = tqdm(outputs, total=len(todo), unit="run",
                               desc=progress if isinstance(progress, str) else "sweep")
            seconds = dict(outputs)
    else:
        seconds = {}
    return SweepSummary(run_ids=ids, ran=len(todo), skipped=len(ids) - len(todo),
                        out_dir=str(out), seconds=seconds)
