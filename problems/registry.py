"""Registry of the testbed problems: ``get(name, **options)`` and ``names()``.

Every entry is a factory ``f(*, xp="numpy", device=None, dtype="float64", **options)``
that builds a :class:`problems.base.Problem` on the given namespace (a name such as
``"numpy"``, ``"array_api_strict"``, ``"cupy"``, or a namespace module), device and dtype.
Modules are imported only when a problem is asked for, so the registry is cheap to load.
:func:`validate` checks a name and options without the expensive part of the build (what
a sweep does for its whole grid before any run starts).

>>> from problems import registry
>>> "mf-rank10" in registry.names()
True
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = ["describe", "get", "names", "validate"]

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
    "mlp-digits": ("problems.mlp", "make", {},
                   "non-convex: a 64-32-10 ReLU network on sklearn's 8x8 digits (hidden, "
                   "activation)"),
}


#: Families of problems named ``"<prefix><name>"`` (the prefix ends with ``:``):
#: prefix -> (module, factory ``f(name, **options)``, one-line description).
_PREFIXES: dict[str, tuple[str, str, str]] = {
    "cutest:": ("problems.cutest", "make",
                "an unconstrained CUTEst problem through sif2jax, e.g. cutest:ROSENBR "
                "(the cutest extra)"),
}


def _prefixed(name: str) -> tuple[str, str] | None:
    """``(prefix, rest)`` when ``name`` starts with a registered prefix, else ``None``."""
    if isinstance(name, str):
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                return prefix, name[len(prefix):]
    return None


def names() -> list[str]:
    """The registered problem names (the families of :data:`_PREFIXES`, such as
    ``cutest:NAME``, are not listed: see their modules)."""
    return list(_ENTRIES)


def describe(name: str) -> str:
    """The one-line description of a problem."""
    if (fam := _prefixed(name)) is not None:
        return f"{_PREFIXES[fam[0]][2]}: {fam[1]}"
    _check(name)
    return _ENTRIES[name][3]


def _check(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"problem: expected a problem name (a str), got {name!r}; "
                        f"choose one of {names()}")
    if name not in _ENTRIES:
        raise ValueError(f"problem: unknown name {name!r}; choose one of {names()}, or "
                         f"{' '.join(p + 'NAME' for p in _PREFIXES)}")


def get(name: str, **options: Any) -> Any:
    """Build problem ``name`` with ``options`` (``xp``, ``device``, ``dtype``, ...)."""
    if (fam := _prefixed(name)) is not None:
        module, factory, _ = _PREFIXES[fam[0]]
        return getattr(importlib.import_module(module), factory)(fam[1], **options)
    _check(name)
    module, factory, fixed, _ = _ENTRIES[name]
    clash = set(fixed) & set(options)
    if clash:
        raise ValueError(f"problem {name!r} fixes {sorted(clash)}; use another name to change it")
    make = getattr(importlib.import_module(module), factory)
    _check_options(name, make, fixed, options)
    return make(**fixed, **options)


def _check_options(name: str, make: Any, fixed: dict[str, Any], options: dict) -> None:
    params = inspect.signature(make).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = sorted(p.name for p in params if p.name not in fixed and p.kind in (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD))
    unknown = sorted(set(options) - set(accepted) - set(fixed))
    if unknown:
        raise TypeError(f"{', '.join(unknown)}: unknown option(s) of problem {name!r}; "
                        f"accepted: {accepted}")


def validate(name: str, **options: Any) -> int:
    """Check that ``get(name, **options)`` builds, cheaply; return the training-set size.

    Raises what :func:`get` would raise (unknown names and options, bad values, a
    missing or damaged data file). The problem is built and dropped: the quadratics and
    the matrix factorizations as asked (milliseconds); the kernel problems in mode
    ``"onthefly"``, which reads, verifies and splits the data file (about a second for
    mushrooms or ijcnn) but computes no kernel, and the requested ``mode`` is then
    checked against ``memory_budget`` by the constructor's own
    :func:`problems.kernel_logreg.plan_storage`.

    >>> validate("least-squares", n_rows=50)
    50
    """
    if _prefixed(name) is not None:
        return int(get(name, **options).n_train)
    _check(name)
    if _ENTRIES[name][0] != "problems.kernel_logreg":
        return int(get(name, **options).n_train)
    from problems.kernel_logreg import plan_storage

    prob = get(name, **{**options, "mode": "onthefly"})
    itemsize = 4 if prob.dtype_name == "float32" else 8
    plan_storage(prob.n_train, prob.n_test, itemsize, prob.memory_budget,
                 options.get("mode", "auto"), prob.staged)
    return int(prob.n_train)
