"""Argument types of the ``paltest`` command: each checks one command-line value.

Each returns the value converted, or raises :class:`argparse.ArgumentTypeError`, which
argparse reports as a usage error (exit status 2) naming the option under the
subcommand's usage line, before anything runs.

>>> positive_int("3"), key_value("mu=0.1"), joblib_backend("loky")
(3, ('mu', 0.1), 'loky')
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["joblib_backend", "key_value", "n_jobs", "nonneg_int", "out_dir", "plugin",
           "positive_bytes", "positive_int"]


def _int_at_least(minimum: int, expected: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
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


def n_jobs(text: str) -> int:
    """A positive number of parallel jobs, or -1 for all cores (``--jobs``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or -1 (all cores), "
                                         f"got {text!r}")
    return value


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
