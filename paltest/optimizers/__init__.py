"""Optimizers: PAL and the baselines, all with ``init`` / ``step`` (see :mod:`.base`).

``make(name, **hyperparameters)`` and ``names()`` build them by name (see :mod:`.registry`).
"""

from paltest.optimizers.registry import make, names

__all__ = ["make", "names"]
