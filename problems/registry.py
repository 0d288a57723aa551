"""Registry of the testbed problems: ``get(name, **options)`` and ``names()``.

Every entry is a factory ``f(*, xp="numpy", device=None, dtype="float64", **options)``
that builds a :class:`problems.base.Problem` on the given namespace (a name such as
``"numpy"``, ``"array_api_strict"``, ``"cupy"``, or a namespace module), device and dtype.
Modules are imported only when a problem is asked for, so the registry is cheap to load.

>>> from problems import registry
>>> "mf-rank10" in registry.names()
True
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["describe", "get", "names"]

# name -> (module, factory, fixed options, one-line description)
_ENTRIES: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "mf-true": ("problems.matrix_factorization", "make", {"rank": None},
                "Figure 8: the true linear model W (10x6) on the seed-42 data"),
    "mf-rank1": ("problems.matrix_factorization", "make", {"rank": 1},
                 "Figure 8: rank-1 factorization W2 W1 (no interpolation)"),
    "mf-rank4": ("problems.matrix_factorization", "make", {"rank": 4},
                 "Figure 8: rank-4 factorization W2 W1 (no interpolation)"),
    "mf-rank10": ("problems.matrix_factorization", "make", {"rank": 10},
                  "Figure 8: rank-10 factorization W2 W1 (interpolation)"),
    "mushrooms": ("problems.kernel_logreg", "make", {"dataset": "mushrooms"},
                  "Figure 9: RBF-kernel logistic regression on mushrooms (sigma 0.5)"),
    "ijcnn": ("problems.kernel_logreg", "make", {"dataset": "ijcnn"},
              "Figure 9: RBF-kernel logistic regression on ijcnn1.tr (sigma 0.05)"),
    "w8a": ("problems.kernel_logreg", "make", {"dataset": "w8a"},
            "RBF-kernel logistic regression on w8a (download needed)"),
    "rcv1": ("problems.kernel_logreg", "make", {"dataset": "rcv1"},
             "RBF-kernel logistic regression on rcv1 (download needed)"),
    "kernel-logreg": ("problems.kernel_logreg", "make", {},
                      "RBF-kernel logistic regression on any LIBSVM binary file (path, sigma)"),
    "quadratic": ("problems.quadratic", "make_quadratic", {},
                  "deterministic quadratic from eigenvalues or a matrix, and a minimizer"),
    "batch-quadratic": ("problems.quadratic", "make_batch_quadratic", {},
                        "stochastic batch quadratics (interpolating or not)"),
    "least-squares": ("problems.quadratic", "make_least_squares", {},
                      "consistent least-squares system, batches are rows"),
}


def names() -> list[str]:
    """The registered problem names."""
    return list(_ENTRIES)


def describe(name: str) -> str:
    """The one-line description of a problem."""
    _check(name)
    return _ENTRIES[name][3]


def _check(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"problem: expected a problem name (a str), got {name!r}; "
                        f"choose one of {names()}")
    if name not in _ENTRIES:
        raise ValueError(f"problem: unknown name {name!r}; choose one of {names()}")


def get(name: str, **options: Any) -> Any:
    """Build problem ``name`` with ``options`` (``xp``, ``device``, ``dtype``, ...)."""
    _check(name)
    module, factory, fixed, _ = _ENTRIES[name]
    clash = set(fixed) & set(options)
    if clash:
        raise ValueError(f"problem {name!r} fixes {sorted(clash)}; use another name to change it")
    make = getattr(importlib.import_module(module), factory)
    return make(**fixed, **options)
