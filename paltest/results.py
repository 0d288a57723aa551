"""The run record, its atomic file format, and loading runs as a tidy table.

A :class:`RunResult` holds a run's ``config`` (what was run: problem and options,
optimizer and hyperparameters, epochs, batch size, seed), its ``environment`` (package
versions, backend, device, dtype, Python, platform), per-epoch arrays (``epoch`` 0 is
before the first step), per-step arrays, timings and totals. Its ``run_id`` is a hash of
the config, so the same config always gets the same id and the same file name.

:func:`save` writes one ``<run_id>.npz`` file per run atomically: a hidden temporary file
in the same directory is written, flushed and fsynced, then renamed over the target with
:func:`os.replace`. The metadata (a JSON string inside the file) lists every array with
its shape and ends with a completeness marker; :func:`load` checks all of it (and the zip
CRCs), so a truncated or partial file raises :class:`IncompleteResultError` and is never
taken for a complete run. :func:`load_table` and :func:`load_steps` skip such files and
temporary files.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> r = RunResult(config=make_config("quadratic", {}, "sgd", {"lr": 0.1}, 1, 1, 0),
    ...               environment={}, epochs={"epoch": np.arange(2.0),
    ...               "train_loss": np.array([1.0, 0.5])}, steps={}, timings={}, totals={})
    >>> d = tempfile.mkdtemp()
    >>> path = save(r, d)
    >>> load(path).run_id == r.run_id
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "IncompleteResultError",
    "RunResult",
    "completed_ids",
    "environment",
    "load",
    "load_steps",
    "load_table",
    "make_config",
    "run_id",
    "save",
]

FORMAT_VERSION = 1
_SUFFIX = ".npz"
_TMP_PREFIX = ".tmp-"


class IncompleteResultError(ValueError):
    """A result file is truncated, partial or not a paltest result."""


def xp_name(xp: Any) -> str:
    """A short namespace name: ``"numpy"``, ``"array_api_strict"``, ``"cupy"``, ..."""
    name = xp if isinstance(xp, str) else getattr(xp, "__name__", str(xp))
    return name.removeprefix("array_api_compat.")


def make_config(
    problem: str, problem_options: dict[str, Any], optimizer: str,
    hyperparameters: dict[str, Any], epochs: int, batch_size: int, seed: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config of a run: what :func:`run_id` hashes and result files record.

    ``problem_options`` get ``xp`` (default ``"numpy"``, the registry's) and ``dtype``
    (default ``"float64"``) filled in and normalized to names. ``extra`` entries (JSON-able,
    e.g. a sweep label) are recorded under ``"extra"`` and enter the id.
    """
    opts = dict(problem_options)
    opts["xp"] = xp_name(opts.get("xp", "numpy"))
    dtype = opts.get("dtype", "float64")
    opts["dtype"] = dtype if isinstance(dtype, str) else _dtype_name(dtype)
    cfg = {
        "problem": str(problem), "problem_options": opts,
        "optimizer": str(optimizer), "hyperparameters": dict(hyperparameters),
        "epochs": int(epochs), "batch_size": int(batch_size), "seed": int(seed),
    }
    if extra:
        cfg["extra"] = dict(extra)
    try:
        return json.loads(_canonical(cfg))
    except (TypeError, ValueError) as err:
        raise TypeError(f"config: not JSON-able ({err})") from err


def _dtype_name(dtype: Any) -> str:
    from paltest import backend

    return backend.dtype_name(dtype)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_id(config: dict[str, Any]) -> str:
    """A stable 16-hex-digit id: the SHA-256 of the canonical JSON of ``config``."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()[:16]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(xp: Any = None, device: Any = None, dtype: Any = None) -> dict[str, Any]:
    """Package versions, backend, device, dtype, Python and platform, as a JSON-able dict.

    It also records the thread counts, which may change results in the last bits (a
    multithreaded BLAS can split a product differently): ``threadpools``, every native
    thread pool loaded (threadpoolctl: ``user_api`` such as ``"blas"``/``"openmp"``,
    ``internal_api``, ``version``, ``num_threads``), and, with ``xp``, ``host_threads``
    (:func:`paltest.backend.host_threads`). Runs with equal counts (and versions) are
    bitwise comparable.
    """
    versions = {d: _version(d) for d in ("paltest", "numpy", "scipy", "array-api-compat")}
    env: dict[str, Any] = {"versions": versions, "python": sys.version.split()[0],
                           "platform": platform.platform(), "threadpools": _threadpools()}
    if xp is not None:
        name = xp_name(xp)
        root = name.split(".")[0]
        mod = sys.modules.get(root)
        versions[root] = _version(root.replace("_", "-")) or getattr(mod, "__version__", None)
        env["backend"] = name
        from paltest import backend

        env["host_threads"] = backend.host_threads(xp)
    if device is not None:
        env["device"] = str(device)
    if dtype is not None:
        env["dtype"] = dtype if isinstance(dtype, str) else _dtype_name(dtype)
    return env


def _threadpools() -> list[dict[str, Any]]:
    """The loaded native thread pools and their thread counts (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "num_threads")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


@dataclass
class RunResult:
    """One run: config, environment, per-epoch and per-step arrays, timings, totals.

    Attributes:
        config: see :func:`make_config`.
        environment: see :func:`environment`.
        epochs: 1-D host arrays of length ``epochs + 1`` (``epoch``, ``train_loss``, the
            test metrics, ``wall_time``, ``epoch_time``, cumulative ``n_fun``/``n_grad``/
            ``n_steps``, ``lr_mean``, ``lr_median``, ``nonfinite``).
        steps: 1-D host arrays with one entry per step (``epoch`` and every numeric field
            of the optimizer's step record).
        timings: seconds (``total``, ``setup``).
        totals: evaluation counts (optimizer ``n_fun``/``n_grad``/``n_steps`` and the
            runner's own full-data evaluations).
    """

    config: dict[str, Any]
    environment: dict[str, Any]
    epochs: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """The hash of :attr:`config` (see :func:`run_id`)."""
        return run_id(self.config)


def _check_directory(directory: Any) -> Path:
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(f"directory: {str(path)!r} is not a directory")
    return path


def save(result: RunResult, directory: str | os.PathLike) -> Path:
    """Write ``result`` to ``directory/<run_id>.npz`` atomically and return the path.

    A hidden temporary file in the same directory is written, flushed and fsynced and
    then moved into place with :func:`os.replace`, so readers see either no file or the
    complete one. An existing file of the same run is replaced.
    """
    path = _check_directory(directory)
    path.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for group, data in (("epochs", result.epochs), ("steps", result.steps)):
        for key, value in data.items():
            arrays[f"{group}/{key}"] = np.asarray(value)
    meta = {
        "format_version": FORMAT_VERSION, "run_id": result.run_id, "config": result.config,
        "environment": result.environment, "timings": result.timings,
        "totals": result.totals,
        "arrays": {k: [list(v.shape), v.dtype.str] for k, v in arrays.items()},
        "complete": True,
    }
    arrays["__meta__"] = np.asarray(json.dumps(meta, allow_nan=True))
    target = path / f"{result.run_id}{_SUFFIX}"
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{result.run_id}-", suffix=".part",
                               dir=path)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path)
    return target


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike) -> RunResult:
    """Read one result file; :class:`IncompleteResultError` unless it is complete."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            if not (isinstance(meta, dict) and meta.get("complete") is True
                    and meta.get("format_version") == FORMAT_VERSION):
                raise IncompleteResultError(f"{path}: no completeness marker")
            arrays = {}
            for key, (shape, dtype) in meta["arrays"].items():
                value = data[key]
                if list(value.shape) != shape or value.dtype.str != dtype:
                    raise IncompleteResultError(f"{path}: array {key!r} does not match")
                arrays[key] = value
    except IncompleteResultError:
        raise
    except (OSError, EOFError, KeyError, ValueError, TypeError, zipfile.BadZipFile,
            zipfile.LargeZipFile) as err:
        raise IncompleteResultError(
            f"{path}: not a complete result file ({type(err).__name__}: {err})") from err
    groups: dict[str, dict[str, np.ndarray]] = {"epochs": {}, "steps": {}}
    for key, value in arrays.items():
        group, name = key.split("/", 1)
        groups[group][name] = value
    result = RunResult(config=meta["config"], environment=meta["environment"],
                       epochs=groups["epochs"], steps=groups["steps"],
                       timings=meta["timings"], totals=meta["totals"])
    if result.run_id != meta["run_id"]:
        raise IncompleteResultError(f"{path}: run id does not match its config")
    return result


def _result_files(directory: str | os.PathLike) -> list[Path]:
    path = _check_directory(directory)
    if not path.exists():
        return []
    return sorted(p for p in path.glob(f"*{_SUFFIX}") if not p.name.startswith("."))


def _load_all(directory: str | os.PathLike, strict: bool) -> list[RunResult]:
    out = []
    for p in _result_files(directory):
        try:
            out.append(load(p))
        except IncompleteResultError as err:
            if strict:
                raise
            warnings.warn(f"skipping {err}", stacklevel=3)
    return out


def completed_ids(directory: str | os.PathLike) -> set[str]:
    """The run ids with a complete result file in ``directory`` (others are ignored)."""
    ids = set()
    for p in _result_files(directory):
        try:
            r = load(p)
        except IncompleteResultError:
            continue
        if p.stem == r.run_id:
            ids.add(r.run_id)
    return ids


def load_table(directory: str | os.PathLike, *, strict: bool = False) -> Any:
    """A pandas DataFrame with one row per run and epoch (epoch 0 = before training).

    Columns: ``run_id``, ``problem``, ``optimizer``, ``seed``, ``dtype``, ``xp``,
    ``batch_size``, ``epochs``, one ``hp_<name>`` column per hyperparameter, one
    ``po_<name>`` column per other problem option, then the per-epoch arrays (``epoch``,
    ``train_loss``, test metrics, ``lr_mean``, ``lr_median``, cumulative ``n_fun``,
    ``n_grad``, ``n_steps``, ``wall_time``, ...). Incomplete files are skipped with a
    warning (``strict=True`` raises instead).
    """
    import pandas as pd

    frames = []
    for r in _load_all(directory, strict):
        c = r.config
        cols: dict[str, Any] = {
            "run_id": r.run_id, "problem": c["problem"], "optimizer": c["optimizer"],
            "seed": c["seed"], "dtype": c["problem_options"].get("dtype"),
            "xp": c["problem_options"].get("xp"), "batch_size": c["batch_size"],
            "epochs": c["epochs"],
        }
        for k, v in c["problem_options"].items():
            if k not in ("xp", "dtype"):
                cols[f"po_{k}"] = v if not isinstance(v, (list, dict)) else json.dumps(v)
        for k, v in c["hyperparameters"].items():
            cols[f"hp_{k}"] = v if not isinstance(v, (list, dict)) else json.dumps(v)
        n = len(r.epochs["epoch"])
        frame = pd.DataFrame({k: [v] * n for k, v in cols.items()})
        for k, v in r.epochs.items():
            frame[k] = v
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["run_id", "problem", "optimizer", "seed", "epoch"])
    return pd.concat(frames, ignore_index=True)


def load_steps(directory: str | os.PathLike, *,
               strict: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """``{run_id: {field: per-step array}}`` for the complete runs in ``directory``."""
    return {r.run_id: r.steps for r in _load_all(directory, strict)}
