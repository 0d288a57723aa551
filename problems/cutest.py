r"""The unconstrained CUTEst problems as testbed problems, through ``sif2jax``.

`sif2jax <https://pypi.org/project/sif2jax/>`_ carries the CUTEst collection's problems
as pure JAX functions (no Fortran build). ``problems.get("cutest:ROSENBR")`` builds one
of its unconstrained problems as a full-batch :class:`problems.base.Problem`
(``pip install "paltest[cutest]"``):

* the whole problem is one sample (``n_train = 1``, one batch per epoch, ``batch``
  ignored): ``value`` and ``value_and_grad`` are the objective :math:`f(x)` and its
  gradient, each compiled once per problem with ``jax.jit`` (on first use);
* on JAX (``xp="jax"``) the arrays stay JAX arrays; on NumPy a host wrapper hands the
  vector to the compiled function and returns NumPy arrays (any other namespace goes
  through the host the same way). float64 needs JAX's 64-bit mode on every namespace,
  since JAX computes the values (``JAX_ENABLE_X64=1``; README, "Backends"), and paltest
  never turns it on itself;
* ``init_params(seed)`` is the problem's standard start ``y0`` for every seed (CUTEst
  fixes the start); ``floor`` is ``None``: sif2jax's stated optimal values are wrong
  for many problems, so they are kept apart as ``stated_optimum`` and never used to
  judge a run (see :mod:`paltest.testbed.profiles.convergence`);
* keyword parameters go to the sif2jax class, e.g. ``problems.get("cutest:ARWHEAD",
  n=100)`` for the variable-dimension problems (a class field ``n``).

Only the module of the asked problem is imported. Importing ``sif2jax`` itself runs its
package ``__init__``, which imports every problem of the collection (about 80 s on two
cores: one constrained module builds a large matrix at import). So :func:`load` installs
the packages ``sif2jax``, ``sif2jax.cutest`` and
``sif2jax.cutest._unconstrained_minimisation`` as *deferred* packages: module objects
built by :func:`importlib.util.module_from_spec` from their real specs (their ``__path__``,
so the import system finds their submodules), whose ``__init__`` has not run yet. The
problem's own module is then imported the ordinary way (it imports ``sif2jax._problem``
and ``sif2jax._misc``, nothing else). Nothing of sif2jax is changed: the first access to
a name that a deferred package's ``__init__`` defines (``sif2jax.cutest.problems``, for
someone who imports sif2jax fully later in the same process) runs that ``__init__``
into the same module object (PEP 562's module ``__getattr__``), so the package then is
exactly what a plain ``import sif2jax`` gives; a missing name that is a submodule (``from
sif2jax import _misc``) imports just that submodule. When sif2jax is already imported nothing
is deferred. The problem names come from parsing (not running) the source of
``_unconstrained_minimisation/__init__.py``: its ``unconstrained_minimisation_problems``
tuple, and the ``from .module import NAME`` lines that say where each class lives.

Example:
    >>> import problems
    >>> p = problems.get("cutest:ROSENBR", xp="numpy", dtype="float32")  # doctest: +SKIP
    >>> x = p.init_params(0)                                             # doctest: +SKIP
    >>> float(p.value(x, None)), p.value_and_grad(x, None)[1]            # doctest: +SKIP
    (24.200010299682617, array([-215.60005,  -88.00002], dtype=float32))

(skipped as a doctest: it needs the ``cutest`` extra; ``tests/test_cutest.py`` checks
these values.)
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import check_int
from problems.base import Problem

__all__ = ["PREFIX", "CUTEstProblem", "catalog", "load", "make", "names"]

#: The registry prefix: ``problems.get(PREFIX + name)``.
PREFIX = "cutest:"
_UNCONSTRAINED = "sif2jax.cutest._unconstrained_minimisation"
_DEFERRED = ("sif2jax", "sif2jax.cutest", _UNCONSTRAINED)
_INSTALL = 'pip install "paltest[cutest]"  (sif2jax and JAX)'


def _spec(name: str) -> Any:
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        raise ImportError(f"the CUTEst problems need sif2jax: {_INSTALL}")
    return spec


def _deferred_package(name: str) -> types.ModuleType:
    """``sys.modules[name]``, or the package installed unexecuted (module docstring)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = _spec(name)
    module = importlib.util.module_from_spec(spec)

    def __getattr__(attr: str) -> Any:  # PEP 562: only for names not yet defined
        if attr.startswith("__"):
            raise AttributeError(attr)
        try:  # a submodule (``from package import submodule``): import just it
            sub = importlib.util.find_spec(f"{name}.{attr}")
        except (ImportError, ValueError):
            sub = None
        if sub is not None:
            return importlib.import_module(f"{name}.{attr}")
        module.__dict__.pop("__getattr__", None)
        spec.loader.exec_module(module)  # the package's own __init__, run once, now
        return getattr(module, attr)

    module.__getattr__ = __getattr__
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


@functools.cache
def catalog() -> dict[str, str]:
    """``{problem name: module}`` of sif2jax's unconstrained problems (source parsed, not
    run; in the order of ``unconstrained_minimisation_problems``)."""
    if "sif2jax" in sys.modules:
        origin = sys.modules["sif2jax"].__spec__.submodule_search_locations[0]
        path = f"{origin}/cutest/_unconstrained_minimisation/__init__.py"
    else:
        _deferred_package("sif2jax")
        _deferred_package("sif2jax.cutest")
        path = _spec(_UNCONSTRAINED).origin
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), filename=path)
    where: dict[str, str] = {}
    listed: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                where[alias.asname or alias.name] = node.module
        elif (isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List))
              and any(getattr(t, "id", None) == "unconstrained_minimisation_problems"
                      for t in node.targets)):
            listed = [e.func.id for e in node.value.elts if isinstance(e, ast.Call)
                      and isinstance(e.func, ast.Name) and not e.args and not e.keywords]
    if not listed:
        raise ImportError(f"{path}: no 'unconstrained_minimisation_problems' tuple found; "
                          "this sif2jax version is not supported")
    return {n: where[n] for n in dict.fromkeys(listed) if n in where}


def names() -> list[str]:
    """The unconstrained problem names (without the prefix), e.g. ``"ROSENBR"``."""
    return list(catalog())


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"problem: expected a CUTEst problem name (a str), got {name!r}")
    known = catalog()
    if name not in known:
        close = [n for n in known if n.startswith(name[:3].upper())][:8]
        raise ValueError(f"problem: unknown CUTEst problem {name!r} (sif2jax's unconstrained "
                         f"problems: cutest.names()){'; similar: ' + str(close) if close else ''}")
    return name


def load(name: str) -> type:
    """The sif2jax class of problem ``name``, importing only its module."""
    module = catalog()[_check_name(name)]
    for pkg in _DEFERRED:
        _deferred_package(pkg)
    return getattr(importlib.import_module(f"{_UNCONSTRAINED}.{module}"), name)


def _jax() -> Any:
    try:
        import jax
    except ImportError as err:
        raise ImportError(f"the CUTEst problems need JAX: {_INSTALL}") from err
    return jax


class CUTEstProblem(Problem):
    """One unconstrained CUTEst problem of sif2jax (module docstring).

    Attributes:
        sif: the sif2jax problem instance.
        stated_optimum: sif2jax's ``expected_objective_value`` as a float, or ``None``
            (not trusted: see the module docstring).
        n_value, n_value_and_grad: how many calls of each compiled function were made.
    """

    n_train = 1

    def __init__(self, name: str, *, xp: Any = "numpy", device: Any = None,
                 dtype: Any = "float64", **parameters: Any) -> None:
        jax = _jax()
        from jax.flatten_util import ravel_pytree

        self.xp = backend.resolve_namespace(xp)
        self.device = device
        self.dtype = backend.float_dtype(self.xp, dtype)
        if self.dtype_name == "float64":
            missing = backend.float64_unavailable(jax.numpy)
            if missing:
                raise ValueError(f"dtype: float64 CUTEst problems are computed by JAX; "
                                 f"{missing}")
        cls = load(name)
        try:
            self.sif = cls(**parameters)
        except TypeError as err:
            raise TypeError(f"{', '.join(sorted(parameters))}: not accepted by CUTEst problem "
                            f"{name!r} ({err})") from None
        self.name = PREFIX + name
        flat, unravel = ravel_pytree(self.sif.y0)
        self.n_params = int(flat.size)
        self._y0 = np.asarray(flat, dtype=self.dtype_name)
        jdtype = jax.numpy.dtype(self.dtype_name)
        sif, args = self.sif, self.sif.args

        def f(x):
            return jax.numpy.asarray(sif.objective(unravel(x), args), dtype=jdtype)

        self._f, self._vg = jax.jit(f), jax.jit(jax.value_and_grad(f))
        self._on_jax = self.xp is jax.numpy or getattr(self.xp, "__name__", "") in (
            "jax.numpy", "array_api_compat.jax")
        self._numpy = self.xp is np or getattr(self.xp, "__name__", "") in (
            "numpy", "array_api_compat.numpy")
        stated = self.sif.expected_objective_value
        self.stated_optimum = None if stated is None else float(np.asarray(stated))
        self.n_value = self.n_value_and_grad = 0

    @property
    def default_batch_size(self) -> int:
        """1: the only batch is the whole problem."""
        return 1

    def batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Any]:
        """One batch per epoch (the whole problem); ``batch_size`` must be 1."""
        check_int("seed", seed)
        check_int("epoch", epoch)
        if isinstance(batch_size, bool) or batch_size != 1:
            raise ValueError(f"batch_size: a CUTEst problem is one sample, got {batch_size!r}")
        return iter([None])

    def check_batch(self, batch: Any) -> None:
        """Any ``batch`` passes: the problem is one sample, its only batch is ``None``
        (:meth:`batches`), and the batch methods ignore it."""

    def init_params(self, seed: int) -> Any:
        """The problem's standard start ``y0`` (the same for every ``seed``)."""
        check_int("seed", seed)
        return self._to_xp(self._y0.copy())

    def _to_xp(self, host: np.ndarray) -> Any:
        if self._numpy:
            return host
        return backend.from_host(host, self.xp, device=self.device, dtype=self.dtype_name)

    def _call(self, fn: Any, theta: Any) -> Any:
        if self._on_jax:
            return fn(theta)
        return fn(np.asarray(backend.to_host(theta), dtype=self.dtype_name))

    def value(self, theta: Any, batch: Any = None) -> Any:
        """:math:`f(\\theta)` (0-d array of the problem's namespace)."""
        self.n_value += 1
        v = self._call(self._f, theta)
        return v if self._on_jax else self._to_xp(np.asarray(v))

    def value_and_grad(self, theta: Any, batch: Any = None) -> tuple[Any, Any]:
        """:math:`f(\\theta)` and :math:`\\nabla f(\\theta)`."""
        self.n_value_and_grad += 1
        v, g = self._call(self._vg, theta)
        if self._on_jax:
            return v, g
        return self._to_xp(np.asarray(v)), self._to_xp(np.array(g))

    def train_loss(self, theta: Any) -> Any:
        """:math:`f(\\theta)` (the whole problem)."""
        return self.value(theta)


def make(name: str, *, xp: Any = "numpy", device: Any = None, dtype: Any = "float64",
         **parameters: Any) -> CUTEstProblem:
    """Build CUTEst problem ``name`` (without the prefix); see :class:`CUTEstProblem`."""
    return CUTEstProblem(name, xp=xp, device=device, dtype=dtype, **parameters)
