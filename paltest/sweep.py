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
dict) is recorded in every run's config. Each run is identified by the hash of its
config (:func:`paltest.results.run_id`) and written to ``out_dir/<run_id>.npz``
atomically; runs whose complete file is already there are skipped, so a sweep that was
killed simply runs again to finish.

Runs are spread with joblib over any registered backend: ``"loky"`` (processes, the
default), ``"threading"``, ``"sequential"``, or ``"dask"`` (create a
``distributed.Client`` first, as usual with joblib's Dask backend; Ray registers its
own with ``ray.util.joblib.register_ray()``).

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
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paltest import results
from paltest.optimizers import registry

__all__ = ["SweepSummary", "expand", "load_config", "run_configs", "sweep"]

_GRID_KEYS = {"epochs", "batch_size", "seeds", "problems", "optimizers", "extra"}


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: all its ``run_ids`` (grid order), how many it ``ran`` and how
    many it ``skipped`` because their results were already in ``out_dir``."""

    run_ids: list[str]
    ran: int
    skipped: int
    out_dir: str


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


def _entries(grid: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = grid.get(key)
    if not isinstance(items, list) or not items:
        raise ValueError(f"grid[{key!r}]: must be a non-empty list of names or dicts")
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"grid[{key!r}]: entry {item!r} needs a 'name'")
        out.append(item)
    return out


def _product(axes: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if not isinstance(axes, dict):
        raise ValueError(f"{where}: must be a dict, got {axes!r}")
    keys = list(axes)
    values = [v if isinstance(v, list) else [v] for v in axes.values()]
    for k, v in zip(keys, values, strict=True):
        if not v:
            raise ValueError(f"{where}[{k!r}]: empty list")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected an int or a list of ints, got {value!r}")
    if isinstance(value, int):
        return list(range(value))
    if isinstance(value, list) and value and all(
            isinstance(s, int) and not isinstance(s, bool) for s in value):
        return list(value)
    raise ValueError(f"{where}: expected an int or a non-empty list of ints, got {value!r}")


def expand(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The run configs of ``grid`` (see :func:`paltest.results.make_config`), in order.

    Hyperparameters are validated and completed with the optimizers' defaults here, so a
    bad grid fails before anything runs. Duplicates are dropped.
    """
    if not isinstance(grid, dict):
        raise TypeError(f"grid: expected a dict, got {type(grid).__name__}")
    unknown = set(grid) - _GRID_KEYS
    if unknown:
        raise ValueError(f"grid: unknown key(s) {sorted(unknown)}; known: {sorted(_GRID_KEYS)}")
    opt_runs = []
    for entry in _entries(grid, "optimizers"):
        for hp in _product(entry.get("hyperparameters", {}), f"optimizer {entry['name']!r}"):
            opt_runs.append((entry["name"], registry.canonical_hyperparameters(
                entry["name"], **hp)))
    configs, seen = [], set()
    for entry in _entries(grid, "problems"):
        where = f"problem {entry['name']!r}"
        epochs = entry.get("epochs", grid.get("epochs"))
        batch_size = entry.get("batch_size", grid.get("batch_size"))
        if epochs is None or batch_size is None:
            raise ValueError(f"{where}: 'epochs' and 'batch_size' must be given")
        seeds = _seeds(entry.get("seeds", grid.get("seeds", 1)), f"{where}: seeds")
        for opts in _product(entry.get("options", {}), f"{where} options"):
            for (opt, hp), seed in itertools.product(opt_runs, seeds):
                cfg = results.make_config(entry["name"], opts, opt, hp, epochs, batch_size,
                                          seed, extra=grid.get("extra"))
                rid = results.run_id(cfg)
                if rid not in seen:
                    seen.add(rid)
                    configs.append(cfg)
    return configs


@functools.lru_cache(maxsize=2)
def _problem(name: str, options_json: str) -> Any:
    import problems

    return problems.get(name, **json.loads(options_json))


def _run_one(cfg: dict[str, Any], out_dir: str) -> str:
    """Run one config and save it; returns its run id. (Executed by the workers.)"""
    import numpy as np

    from paltest.runner import run

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
    return result.run_id


def sweep(grid: dict[str, Any] | str | os.PathLike, out_dir: str | os.PathLike, *,
          n_jobs: int = 1, backend: str = "loky", progress: bool = False) -> SweepSummary:
    """Run every config of ``grid`` not yet in ``out_dir``, with joblib.

    Args:
        grid: a grid dict (module docstring) or the path of a JSON/TOML grid file.
        out_dir: where the ``<run_id>.npz`` files go (created if needed).
        n_jobs: joblib's ``n_jobs`` (``-1``: all cores).
        backend: any joblib backend name: ``"loky"``, ``"threading"``, ``"sequential"``,
            ``"dask"`` (needs a ``distributed.Client``), ``"ray"`` (after registering).
        progress: show a tqdm bar over the runs.
    """
    if not isinstance(grid, dict):
        grid = load_config(grid)
    return run_configs(expand(grid), out_dir, n_jobs=n_jobs, backend=backend,
                       progress=progress)


def run_configs(configs: list[dict[str, Any]], out_dir: str | os.PathLike, *,
                n_jobs: int = 1, backend: str = "loky",
                progress: bool = False) -> SweepSummary:
    """Run the given run configs (:func:`paltest.results.make_config`, e.g. from
    :func:`expand`) that are not yet in ``out_dir``, in parallel; see :func:`sweep`."""
    import joblib

    if not isinstance(backend, str):
        raise TypeError(f"backend: expected a joblib backend name, got {backend!r}")
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

                outputs = tqdm(outputs, total=len(todo), desc="sweep", unit="run")
            for _ in outputs:
                pass
    return SweepSummary(run_ids=ids, ran=len(todo), skipped=len(ids) - len(todo),
                        out_dir=str(out))
