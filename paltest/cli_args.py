"""Argument types of the ``paltest`` command: each checks one command-line value.

Each returns the value converted, or raises :class:`argparse.ArgumentTypeError`, which
argparse reports as a usage error (exit status 2) naming the option under the
subcommand's usage line, before anything runs. The option groups several commands share
(``--jobs``, ``--backend``, ``--scheduler``, ``--max-runs``: :func:`parallel_options`)
and their resolution are here too.

>>> positive_int("3"), key_value("mu=0.1"), joblib_backend("loky")
(3, ('mu', 0.1), 'loky')
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["MAX_JOBS", "MAX_SEEDS", "joblib_backend", "key_value", "max_runs", "max_runs_of",
           "n_jobs", "nonneg_int", "out_dir", "parallel_options", "parse_seeds", "plugin",
           "positive_bytes", "positive_int", "resolve_backend", "scheduler", "scheduler_errors",
           "shown_options"]


#: The longest range of seeds ``--seeds`` accepts (``0-99999999999`` would be listed).
MAX_SEEDS = 1_000_000


def parse_seeds(text: str) -> int | list[int]:
    """``"5"`` -> 5 (seeds 0..4); ``"0,2,7"`` -> [0, 2, 7]; ``"1-3"`` -> [1, 2, 3] (a range
    of at most :data:`MAX_SEEDS`; a count is checked against ``--max-runs`` by the plan).

    >>> parse_seeds("5"), parse_seeds("0,2"), parse_seeds("1-3")
    (5, [0, 2], [1, 2, 3])
    """
    try:
        if "," in text:
            seeds: int | list[int] = [int(s) for s in text.split(",") if s.strip()]
        elif "-" in text.strip()[1:]:
            lo, hi = (int(s) for s in text.split("-", 1))
            if hi - lo >= MAX_SEEDS:
                raise argparse.ArgumentTypeError(
                    f"a range of {hi - lo + 1:,} seeds; at most {MAX_SEEDS:,}, got {text!r}")
            seeds = list(range(lo, hi + 1))
        else:
            seeds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a count (5), a list (0,1,2) or a range (0-4), got {text!r}") from None
    if (isinstance(seeds, int) and seeds < 1) or (isinstance(seeds, list) and (
            not seeds or min(seeds) < 0)):
        raise argparse.ArgumentTypeError(f"need at least one seed, all >= 0, got {text!r}")
    return seeds


def _int_at_least(minimum: int, expected: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text[:40]!r}")
        return value
    return parse


#: An integer >= 1 (``--epochs``, ``--batch-size``).
positive_int = _int_at_least(1, "a positive integer")
#: An integer >= 0 (``--seed``).
nonneg_int = _int_at_least(0, "an integer >= 0")


def positive_bytes(text: str) -> float:
    """A finite number of bytes > 0 (``--memory-budget``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value


def joblib_backend(text: str) -> str:
    """A registered joblib backend name (see :func:`paltest.testbed.sweep.backends`)."""
    from paltest.testbed.sweep import check_backend

    try:
        return check_backend(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("backend: ")) from None


def out_dir(text: str) -> str:
    """``text`` if that directory exists and is writable, or can be created (``--out``).

    Checked before anything runs, so a run never trains only to fail saving its result.
    """
    probe = Path(text).expanduser()
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent  # the nearest existing ancestor
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot create {text!r}: {str(probe)!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {str(probe)!r} (for {text!r})")
    return text


#: The largest ``--jobs`` (more workers than this on one machine is a typo).
MAX_JOBS = 1024


def n_jobs(text: str) -> int:
    """A number of parallel jobs from 1 to :data:`MAX_JOBS`, or -1 for all cores
    (``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0 or value < -1 or value > MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_JOBS}, or -1 "
                                         f"(all cores), got {text[:40]!r}")
    return value


def max_runs(text: str) -> int:
    """A positive number of runs (``--max-runs``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text[:40]!r}")
    return value


def scheduler(text: str) -> str:
    """A Dask scheduler address (``--scheduler``), e.g. ``tcp://10.0.0.5:8786``."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a Dask scheduler address such as "
                                         "tcp://127.0.0.1:8786, got ''")
    return text.strip()


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as JSON when it is JSON, else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def plugin(text: str) -> str:
    """A plugin module that registers problems (``--plugin``): a module name or a ``.py``
    file, imported now and added to ``PALTEST_PLUGINS`` for the worker processes (see
    :mod:`problems.plugins`)."""
    from problems import plugins

    try:
        plugins.add(text)
    except ImportError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


# -- option groups and checks shared by the commands --------------------------------


def parallel_options(g: Any) -> None:
    """``--jobs``, ``--backend``, ``--scheduler`` and ``--max-runs`` (figure, sweep)."""
    g.add_argument("--jobs", type=n_jobs, default=1, metavar="N",
                   help="parallel runs (-1: all cores; with --backend dask and no "
                        "scheduler, the local cluster's workers; default: %(default)s)")
    g.add_argument("--backend", default=None, type=joblib_backend,
                   help="joblib backend: loky, threading, sequential, multiprocessing, dask, "
                        "... (default: loky; dask with --scheduler)")
    g.add_argument("--scheduler", type=scheduler, metavar="ADDRESS",
                   help="the Dask scheduler to run on (implies --backend dask; default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster of --jobs workers)")
    g.add_argument("--max-runs", type=max_runs, default=None, metavar="N",
                   help="run a grid of more than 10,000 runs (refused unless N allows it)")


def resolve_backend(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """``--backend`` resolved: dask with ``--scheduler``, else loky by default."""
    if args.scheduler is not None:
        if args.backend not in (None, "dask"):
            parser.error(f"--scheduler: only with --backend dask, not {args.backend}")
        args.backend = "dask"
    elif args.backend is None:
        args.backend = "loky"
    return args.backend


def max_runs_of(args: argparse.Namespace) -> int:
    from paltest.testbed.sweep import MAX_RUNS

    return MAX_RUNS if args.max_runs is None else args.max_runs


@contextlib.contextmanager
def scheduler_errors(parser: argparse.ArgumentParser) -> Any:
    """A Dask scheduler that cannot be reached (nothing ran): a usage error naming
    ``--scheduler`` or ``DASK_SCHEDULER_ADDRESS`` (exit status 2)."""
    from paltest.testbed.cluster import SchedulerError

    try:
        yield
    except SchedulerError as err:
        text = str(err)
        parser.error(f"--{text}" if text.startswith("scheduler:") else text)


def shown_options(options: dict[str, Any]) -> str:
    from paltest.checks import shown

    return " ".join(f"{k}={shown(v)}" for k, v in options.items())
