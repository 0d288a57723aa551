"""Where a sweep's runs execute: joblib backends by name, and a Dask cluster for ``"dask"``.

:func:`check_backend` accepts any backend joblib knows now (``"loky"``, ``"threading"``,
``"sequential"``, ``"multiprocessing"``, ``"dask"``, ``"ray"`` after
``ray.util.joblib.register_ray()``, ...), asking joblib through its public
``parallel_config`` (no private tables).

:func:`connect` opens the place where the runs execute for the duration of a sweep or a
figure. For every backend but ``"dask"`` it does nothing (joblib starts its workers). For
``"dask"`` it finds the scheduler, in this order:

1. ``scheduler`` (``--scheduler ADDRESS`` on the command line), e.g.
   ``"tcp://10.0.0.5:8786"`` or a scheduler file's address;
2. a ``distributed.Client`` already current in this process (from Python);
3. the environment variable ``DASK_SCHEDULER_ADDRESS`` (or Dask's own
   ``scheduler-address`` setting, which that variable sets);
4. none of these: a ``distributed.LocalCluster`` is started for the sweep, ``n_jobs``
   worker processes (``-1``: one per core) of one thread each, on 127.0.0.1, and closed
   at its end.

The runs' results come back to this process (the client), which writes them, so the
workers need not share its working directory or filesystem (see
:func:`paltest.testbed.sweep.run_configs`). What the workers do need: paltest installed
(the same version), and the data of the problems they run (their own ``PALTEST_DATA``
or cache folder; the README, "Running sweeps on a cluster").

Example:
    >>> with connect("sequential", 1) as where:
    ...     where is None
    True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["ENV_SCHEDULER", "KNOWN_BACKENDS", "SchedulerError", "backends", "check_backend",
           "check_scheduler", "connect", "outputs", "scheduler_address"]

#: The environment variable Dask users set to name their scheduler.
ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
#: The joblib backends :func:`backends` looks for (others registered with joblib work too).
KNOWN_BACKENDS = ("loky", "threading", "sequential", "multiprocessing", "dask", "ray")


class SchedulerError(ConnectionError):
    """The Dask scheduler could not be reached."""


def check_backend(backend: Any) -> str:
    """``backend`` if joblib can use it now, else ``TypeError``/``ValueError`` naming
    ``backend`` (with joblib's own list of the registered ones). ``"dask"`` needs
    ``distributed`` installed (its client is made by :func:`connect`).

    >>> check_backend("loky")
    'loky'
    """
    import joblib

    if not isinstance(backend, str):
        raise TypeError(f"backend: expected a joblib backend name, got {backend!r}")
    if backend == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ValueError("backend: 'dask' needs Dask's distributed scheduler: "
                             "pip install 'dask[distributed]'") from None
        return backend
    try:
        with joblib.parallel_config(backend=backend):
            pass
    except ValueError as err:
        raise ValueError(f"backend: unknown joblib backend {backend!r} ({err})") from None
    return backend


def backends() -> list[str]:
    """The names of :data:`KNOWN_BACKENDS` that :func:`check_backend` accepts now (a
    backend registered under another name works too)."""
    out = []
    for name in KNOWN_BACKENDS:
        try:
            out.append(check_backend(name))
        except ValueError:
            continue
    return sorted(out)


def check_scheduler(scheduler: Any, backend: str) -> str | None:
    """``scheduler`` (``None`` or a non-empty address string), allowed only with
    ``backend="dask"``; errors name ``scheduler``."""
    if scheduler is None:
        return None
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise TypeError(f"scheduler: expected a Dask scheduler address (a str such as "
                        f"'tcp://127.0.0.1:8786'), got {scheduler!r}")
    if backend != "dask":
        raise ValueError(f"scheduler: only with backend 'dask', got backend {backend!r}")
    return scheduler.strip()


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The address :func:`connect` connects to: ``scheduler``, else
    ``$DASK_SCHEDULER_ADDRESS``, else Dask's ``scheduler-address`` setting; ``None``."""
    if scheduler:
        return scheduler
    env = os.environ.get(ENV_SCHEDULER, "").strip()
    if env:
        return env
    try:
        import dask
    except ImportError:  # pragma: no cover - distributed needs dask
        return None
    return dask.config.get("scheduler-address", None) or None


def outputs(tasks: list[Any], **parallel: Any) -> Any:
    """The outputs of joblib ``tasks`` (``delayed`` calls) under the current
    ``parallel_config``, as they finish (``return_as="generator_unordered"``), or all
    at the end for a backend without generators (``"multiprocessing"``)."""
    import joblib

    try:
        return joblib.Parallel(return_as="generator_unordered", **parallel)(tasks)
    except ValueError as err:  # raised before any task starts
        if "return_as" not in str(err):
            raise
        return joblib.Parallel(return_as="list", **parallel)(tasks)


def _workers(n_jobs: int) -> int:
    return (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))


@contextlib.contextmanager
def connect(backend: str, n_jobs: int, scheduler: str | None = None) -> Iterator[Any]:
    """Yield the ``distributed.Client`` the runs go to (``backend="dask"``), else ``None``.

    See the module for the order in which the scheduler is found. A client or local
    cluster made here is closed on exit; one that was current already is left open.
    An address that cannot be reached raises :class:`SchedulerError` naming it (after
    Dask's connect timeout, ``distributed.comm.timeouts.connect``).
    """
    if backend != "dask":
        yield None
        return
    import distributed

    if scheduler is None:
        try:
            yield distributed.default_client()
            return
        except ValueError:  # no client current in this process
            pass
    address = scheduler_address(scheduler)
    if address is None:
        with distributed.LocalCluster(n_workers=_workers(n_jobs), threads_per_worker=1,
                                      processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(address)
    except (OSError, TimeoutError, ValueError) as err:
        where = "scheduler" if scheduler else ENV_SCHEDULER
        raise SchedulerError(f"{where}: cannot connect to the Dask scheduler {address!r} "
                             f"({type(err).__name__}: {err})") from None
    with client:
        yield client
