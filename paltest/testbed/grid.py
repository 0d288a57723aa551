"""Sweep grids: reading them (JSON/TOML), counting and validating their runs, expanding
them into run configs (the format is described in :mod:`paltest.testbed.sweep`, which
re-exports everything here).

Example:
    >>> configs = expand({"epochs": 1, "batch_size": 1, "seeds": 2,
    ...                   "problems": [{"name": "quadratic", "options": {"n": 3}}],
    ...                   "optimizers": [{"name": "sgd", "hyperparameters": {"lr": [0.1, 0.2]}}]})
    >>> len(configs), planned_runs({"seeds": 3, "problems": ["quadratic"],
    ...                             "optimizers": ["sgd", "adam"]})
    (4, 6)
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from paltest.checks import check_int
from paltest.optimizers import registry
from paltest.testbed import results
from paltest.testbed.manifest import unique_keys

__all__ = ["EXAMPLE_GRID", "MAX_RUNS", "GridError", "check_max_runs", "example_grid", "expand",
           "load_config", "planned_runs"]

#: The largest grid :func:`expand` expands unless given a larger ``max_runs``.
MAX_RUNS = 10_000

#: The example grid shipped in the package (see :func:`example_grid`).
EXAMPLE_GRID = "example_grid.toml"
_GRID_KEYS = {"epochs", "batch_size", "seeds", "problems", "optimizers", "extra"}


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
        return json.loads(path.read_text(), object_pairs_hook=_no_duplicates(path))
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


def _no_duplicates(path: Path) -> Any:
    """A ``json`` ``object_pairs_hook`` refusing a key given twice in one object (JSON
    would keep the last silently; TOML refuses them too)."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        try:
            return unique_keys(items)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    return pairs


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


def _n_combos(axes: Any) -> int:
    """How many entries :func:`_product` makes of ``axes`` (0 when it would refuse them)."""
    if not isinstance(axes, dict):
        return 0
    return math.prod(len(v) if isinstance(v, list) else 1 for v in axes.values())


def _n_seeds(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return len(value) if isinstance(value, list) else 0


def planned_runs(grid: dict[str, Any]) -> int:
    """How many runs ``grid`` plans (before duplicates are dropped), counted from its
    entries without expanding them: sum over problem entries of their option combinations
    times their seeds, times the sum over optimizer entries of their hyperparameter
    combinations. Entries that are not well formed count 0 (:func:`expand` reports them).

    >>> planned_runs({"seeds": 10**12, "problems": ["quadratic"], "optimizers": ["sgd"]})
    1000000000000
    """
    if not isinstance(grid, dict):
        return 0
    top = _n_seeds(grid.get("seeds", 1))
    per_problem = 0
    for item in grid.get("problems") or [] if isinstance(grid.get("problems"), list) else []:
        if isinstance(item, str):
            per_problem += top
        elif isinstance(item, dict):
            seeds = _n_seeds(item["seeds"]) if "seeds" in item else top
            per_problem += _n_combos(item.get("options", {})) * seeds
    per_optimizer = 0
    for item in grid.get("optimizers") or [] if isinstance(grid.get("optimizers"), list) else []:
        if isinstance(item, str):
            per_optimizer += 1
        elif isinstance(item, dict):
            per_optimizer += _n_combos(item.get("hyperparameters", {}))
    return per_problem * per_optimizer


def check_max_runs(n_runs: int, max_runs: Any, what: str = "grid") -> None:
    """``ValueError`` when ``n_runs`` exceeds ``max_runs`` (an int >= 1), saying how to
    run it anyway."""
    limit = check_int("max_runs", max_runs, 1)
    if n_runs > limit:
        raise ValueError(f"{what}: {n_runs:,} runs planned, more than max_runs={limit:,}; "
                         f"check the seeds and the lists of the grid, or raise max_runs "
                         f"(paltest: --max-runs {n_runs}) to run them all")


def _int(value: Any, where: str, minimum: int, errors: list[str]) -> int | None:
    try:
        return check_int(where, value, minimum)
    except (TypeError, ValueError) as err:
        errors.append(str(err))
        return None


def _seeds(value: Any, where: str, errors: list[str]) -> range | list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 1:
            return range(value)  # (checked against max_runs before it is iterated)
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


def expand(grid: dict[str, Any], *, max_runs: int = MAX_RUNS) -> list[dict[str, Any]]:
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
    Duplicates are dropped. A grid of more than ``max_runs`` runs (:func:`planned_runs`)
    is refused first, before any entry is expanded.
    """
    if not isinstance(grid, dict):
        raise TypeError(f"grid: expected a dict, got {type(grid).__name__}")
    try:
        check_max_runs(planned_runs(grid), max_runs)
    except ValueError as err:
        raise GridError([str(err)]) from None
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
    elif extra is not None:
        try:
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as err:
            errors.append(f"extra: not JSON-able ({err})")
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
    if not problems.known(name):
        errors.append(f"{where}: unknown problem {name!r}; choose one of {problems.names()} "
                      "or cutest:NAME")
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
    if len(errors) > n_errors or not problems.known(name):
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
