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
import subprocess
import sys
from importlib import metadata
from pathlib import Path
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

    It also records what may change results in the last bits: ``threadpools``, every
    native thread pool loaded (threadpoolctl: ``user_api`` such as ``"blas"``/
    ``"openmp"``, ``internal_api``, ``version``, ``num_threads``, and the kernel
    ``architecture`` OpenBLAS chose for this CPU, e.g. ``"Haswell"`` or ``"SkylakeX"``:
    its dot and matrix products round differently from one kernel to another, and a
    chaotic training carries that difference as far as another seed would, which is
    what moved the committed notebooks' numbers between machines; a multithreaded BLAS
    can also split a product differently), ``cpu`` (the processor's model name and the
    SIMD extensions NumPy dispatches to on it), ``paltest`` (the version and, in a git
    checkout, the ``commit`` and whether the work tree had changes, ``dirty``), and, with
    ``xp``, ``host_threads`` (:func:`paltest.backend.host_threads`). Runs with equal
    versions, kernels and counts are bitwise comparable.
    """
    versions = {d: _version(d) for d in ("paltest", "numpy", "scipy", "array-api-compat")}
    env: dict[str, Any] = {"versions": versions, "python": sys.version.split()[0],
                           "platform": platform.platform(), "threadpools": _threadpools(),
                           "cpu": _cpu(), "paltest": _source()}
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

    keys = ("user_api", "internal_api", "version", "num_threads", "architecture",
            "threading_layer")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


@functools.cache
def _cpu() -> dict[str, Any]:
    """The processor's model name (Linux: ``/proc/cpuinfo``; else ``platform``) and the
    SIMD targets NumPy dispatches to on it (their results may differ in the last bits)."""
    model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    simd = None
    try:
        import numpy as np

        umath = getattr(np, "_core", None) or np.core
        mod = umath._multiarray_umath
        simd = [f for f in mod.__cpu_dispatch__ if mod.__cpu_features__.get(f)]
    except (AttributeError, ImportError):
        pass
    return {"model": model, "machine": platform.machine(), "numpy_simd": simd}


@functools.cache
def _source() -> dict[str, Any]:
    """paltest's version and, when imported from a git checkout, its commit and whether
    the work tree had changes (``git`` asked once per process; ``None`` without it)."""
    here = Path(__file__).resolve().parents[2]
    out: dict[str, Any] = {"version": _version("paltest"), "commit": None, "dirty": None}
    if not (here / ".git").exists():
        return out
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return out
    out.update(commit=head or None, dirty=bool(status.strip()))
    return out
