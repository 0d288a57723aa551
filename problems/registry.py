"""Registry of the testbed problems: ``get(name, **options)`` and ``names()``.

Every entry is a factory ``f(*, xp="numpy", device=None, dtype="float64", **options)``
that builds a :class:`problems.base.Problem` on the given namespace (a name such as
``"numpy"``, ``"array_api_strict"``, ``"cupy"``, or a namespace module), device and dtype.
Modules are imported only when a problem is asked for, so the registry is cheap to load.
:func:`validate` checks a name and options without the expensive part of the build (what
a sweep does for its whole grid before any run starts).

Problems of your own: :func:`register` adds a factory under a new name (see its
docstring); :mod:`problems.plugins` says how the command line and worker processes learn
of it (the ``paltest.problems`` entry point group, or ``PALTEST_PLUGINS``). A name that is
not known yet loads the plugins first, in every process, so a sweep's workers find the
same problems as the process that started it.

>>> from problems import registry
>>> "mf-rank10" in registry.names()
True
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["describe", "get", "known", "names", "register", "registered", "unregister",
           "validate"]

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


# Problems registered at run time (:func:`register`, plugins): name -> (factory, description).
# A factory may also be a zero-argument loader (an entry point not loaded yet): see
# :func:`_factory`.
_USER: dict[str, tuple[Any, str]] = {}
#: What a factory must accept (by name, or through ``**options``).
_FACTORY_KEYWORDS = ("xp", "device", "dtype")
#: What :func:`get` checks a user factory's result for (the protocol of problems.base).
_PROTOCOL = ("n_params", "n_train", "xp", "dtype", "init_params", "batches", "value",
             "value_and_grad", "train_loss", "test_metrics", "bind", "default_batch_size")


def names() -> list[str]:
    """The problem names: the built-in ones, then those registered (plugins included).
    The families of :data:`_PREFIXES` (``cutest:NAME``) are not listed: see their
    modules."""
    _load_plugins()
    return list(_ENTRIES) + [n for n in _USER if n not in _ENTRIES]


def known(name: Any) -> bool:
    """Whether ``name`` is a problem :func:`get` can build: a built-in or registered one
    (plugins included), or a name of a family of :data:`_PREFIXES` (``cutest:NAME``:
    whether that problem exists is known only when it is built).

    >>> known("mf-rank4"), known("cutest:ROSENBR"), known("nope")
    (True, True, False)
    """
    return _prefixed(name) is not None or (isinstance(name, str) and name in names())


def registered() -> list[str]:
    """The names added with :func:`register` (plugins included), in registration order."""
    _load_plugins()
    return list(_USER)


def describe(name: str) -> str:
    """The one-line description of a problem."""
    if (fam := _prefixed(name)) is not None:
        return f"{_PREFIXES[fam[0]][2]}: {fam[1]}"
    _check(name)
    return _ENTRIES[name][3] if name in _ENTRIES else _USER[name][1]


def register(name: str, factory: Callable[..., Any], description: str | None = None, *,
             replace: bool = False) -> None:
    """Add a problem of your own: ``get(name, **options)`` then calls ``factory(**options)``.

    ``factory(*, xp="numpy", device=None, dtype="float64", **options)`` builds a problem
    that follows the protocol of :mod:`problems.base` (subclass
    :class:`problems.base.Problem`) on the namespace ``xp`` (a name or a module; resolve
    it with :func:`paltest.backend.resolve_namespace`), ``device`` and ``dtype``. Its other
    keyword options become the problem's options (``--po`` on the command line, a grid's
    ``options``), checked against its signature like a built-in problem's. From then on
    :func:`get`, :func:`validate`, ``paltest run``, ``paltest sweep``, the line figures'
    ``--problem`` and the benchopt benchmark accept ``name``. ``description`` (default:
    the first line of the factory's docstring) is what :func:`describe` says.

    Registering the same factory again (a plugin module imported twice) does nothing;
    another factory under a registered name raises ``ValueError`` unless ``replace``; a
    built-in name is never replaced. This process knows the problem from now on
    (``paltest.run``, a sweep with ``n_jobs=1`` or the ``threading`` backend); for worker
    processes (``n_jobs > 1`` with loky or Dask) and the command line to know it,
    register it from a plugin module (:mod:`problems.plugins`).

    >>> import problems
    >>> from problems.quadratic import make_least_squares
    >>> register("tiny-lsq", lambda **o: make_least_squares(n_rows=20, n_cols=3, **o),
    ...          "a 20 x 3 least-squares system")
    >>> problems.get("tiny-lsq").n_train, describe("tiny-lsq")
    (20, 'a 20 x 3 least-squares system')
    >>> unregister("tiny-lsq")
    """
    if not isinstance(name, str) or not name or name != name.strip() or any(
            c.isspace() for c in name):
        raise ValueError(f"name: expected a non-empty problem name without spaces, got "
                         f"{name!r}")
    if name in _ENTRIES:
        raise ValueError(f"name: {name!r} is a built-in problem; choose another name")
    if _prefixed(name) is not None:
        raise ValueError(f"name: {name!r} starts with a family's prefix "
                         f"({', '.join(_PREFIXES)}); choose another name")
    if not callable(factory):
        raise TypeError(f"factory: expected a callable that builds the problem, got "
                        f"{factory!r}")
    _check_factory(name, factory)
    if description is None:
        doc = inspect.getdoc(factory) or ""
        description = doc.strip().splitlines()[0] if doc.strip() else f"user problem {name}"
    if not isinstance(description, str):
        raise TypeError(f"description: expected a str, got {description!r}")
    old = _USER.get(name)
    if old is not None and not replace and not _same_factory(old[0], factory):
        raise ValueError(f"name: {name!r} is already registered (to {old[0]!r}); pass "
                         "replace=True to replace it")
    _USER[name] = (factory, description)


def unregister(name: str) -> None:
    """Remove a problem added with :func:`register` (``KeyError`` if there is none)."""
    if name not in _USER:
        raise KeyError(f"name: {name!r} was not registered with register()")
    del _USER[name]


def _add_loader(name: str, loader: Callable[[], Any], description: str) -> None:
    """Register an entry point: ``loader()`` gives the factory when it is first built.
    A name already taken (built in, or registered by code) keeps its problem."""
    if name not in _ENTRIES and name not in _USER:
        _USER[name] = (loader, description)


def _same_factory(a: Any, b: Any) -> bool:
    """The same function, or the same function of a module imported again."""
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", 0)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", 0)
        and "<lambda>" not in getattr(a, "__qualname__", "<lambda>"))


def _check_factory(name: str, factory: Any) -> None:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: checked when called
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = {p.name for p in params if p.kind in (
        inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    missing = [k for k in _FACTORY_KEYWORDS if k not in accepted]
    if missing:
        raise TypeError(f"factory: the factory of problem {name!r} must accept the "
                        f"keywords {list(_FACTORY_KEYWORDS)} (or **options); it lacks "
                        f"{missing}")


def _load_plugins() -> None:
    from problems import plugins

    plugins.load()


def _check(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"problem: expected a problem name (a str), got {name!r}; "
                        f"choose one of {names()}")
    if name not in _ENTRIES and name not in _USER:
        _load_plugins()
        if name not in _USER:
            raise ValueError(f"problem: unknown name {name!r}; choose one of {names()}, or "
                             f"{' '.join(p + 'NAME' for p in _PREFIXES)} (a "
                             "problem of your own is known to other processes, such as a "
                             "sweep's workers, when a plugin registers it: --plugin, "
                             "PALTEST_PLUGINS or the paltest.problems entry points)")


def _factory(name: str) -> tuple[Any, dict[str, Any]]:
    """The factory of ``name`` (checked) and its fixed options."""
    if name in _ENTRIES:
        module, factory, fixed, _ = _ENTRIES[name]
        return getattr(importlib.import_module(module), factory), fixed
    make, description = _USER[name]
    if getattr(make, "paltest_loader", False):  # an entry point, loaded on first use
        make = make()
        _check_factory(name, make)
        _USER[name] = (make, description)
    return make, {}


def get(name: str, **options: Any) -> Any:
    """Build problem ``name`` with ``options`` (``xp``, ``device``, ``dtype``, ...)."""
    if (fam := _prefixed(name)) is not None:
        module, factory, _ = _PREFIXES[fam[0]]
        return getattr(importlib.import_module(module), factory)(fam[1], **options)
    _check(name)
    make, fixed = _factory(name)
    clash = set(fixed) & set(options)
    if clash:
        raise ValueError(f"problem {name!r} fixes {sorted(clash)}; use another name to change it")
    _check_options(name, make, fixed, options)
    problem = make(**fixed, **options)
    if name not in _ENTRIES:
        missing = [a for a in _PROTOCOL if not hasattr(problem, a)]
        if missing:
            raise TypeError(f"problem {name!r}: its factory returned {type(problem).__name__}"
                            f", which lacks {missing} of the problem protocol "
                            "(problems.base.Problem)")
    return problem


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
    if name not in _ENTRIES or _ENTRIES[name][0] != "problems.kernel_logreg":
        return int(get(name, **options).n_train)
    from problems.kernel_logreg import plan_storage

    prob = get(name, **{**options, "mode": "onthefly"})
    itemsize = 4 if prob.dtype_name == "float32" else 8
    plan_storage(prob.n_train, prob.n_test, itemsize, prob.memory_budget,
                 options.get("mode", "auto"), prob.staged)
    return int(prob.n_train)
