"""What a run is: its config, the id hashed from it, and the environment it ran in.

:func:`make_config` builds the config of a run (problem and options, optimizer and
hyperparameters, epochs, batch size, seed, extra entries), normalized to JSON;
:func:`run_id` hashes it, so the same config always gets the same id and result file
name; :func:`environment` records package versions, backend, device, dtype, Python,
platform and thread counts. :mod:`paltest.testbed.results` re-exports all three.

>>> cfg = make_config("quadratic", {}, "sgd", {"lr": 0.1}, 1, 1, 0)
>>> cfg["problem_options"], len(run_id(cfg))
({'dtype': 'float64', 'xp': 'numpy'}, 16)
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import sys
from importlib import metadata
from typing import Any

from paltest.checks import check_int

__all__ = ["environment", "make_config", "run_id", "xp_name"]


def xp_name(xp: Any) -> str:
    """A short namespace name, as :func:`paltest.backend.resolve_namespace` takes it:
    ``"numpy"``, ``"array_api_strict"``, ``"cupy"``, ``"torch"``, ``"jax"``, ..."""
    name = xp if isinstance(xp, str) else getattr(xp, "__name__", str(xp))
    name = name.removeprefix("array_api_compat.")
    return "jax" if name == "jax.numpy" else name


def make_config(
    problem: str, problem_options: dict[str, Any], optimizer: str,
    hyperparameters: dict[str, Any], epochs: int, batch_size: int, seed: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config of a run: what :func:`run_id` hashes and result files record.

    ``problem_options`` get ``xp`` (default ``"numpy"``, the registry's) and ``dtype``
    (default ``"float64"``) filled in and normalized to names. ``extra`` entries (JSON-able,
    e.g. a sweep label) are recorded under ``"extra"`` and enter the id. ``epochs``
    (>= 0), ``batch_size`` (>= 1) and ``seed`` (>= 0) must be ints (NumPy integers are
    accepted; floats and bools are rejected, never rounded).
    """
    opts = dict(problem_options)
    opts["xp"] = xp_name(opts.get("xp", "numpy"))
    dtype = opts.get("dtype", "float64")
    opts["dtype"] = dtype if isinstance(dtype, str) else _dtype_name(dtype)
    cfg = {
        "problem": str(problem), "problem_options": opts,
        "optimizer": str(optimizer), "hyperparameters": dict(hyperparameters),
        "epochs": check_int("epochs", epochs, 0),
        "batch_size": check_int("batch_size", batch_size, 1),
        "seed": check_int("seed", seed, 0),
    }
    if extra:
        cfg["extra"] = dict(extra)
    for key in ("problem_options", "hyperparameters", "extra"):
        try:
            _canonical(cfg.get(key))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{key}: not JSON-able ({err})") from err
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


@functools.cache
def _version(dist: str) -> str | None:
    # Installed versions do not change within a process; reading a distribution's
    # metadata costs ~1 ms (most of environment()'s time, once per run).
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
