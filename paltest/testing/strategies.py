r"""Hypothesis strategies for testing optimizers: quadratics, line functions, arrays.

Every random number is drawn on the host with NumPy from a seed that Hypothesis draws,
then moved to the namespace under test with :func:`paltest.backend.from_host`, so a
falsifying example is reproduced from its printed seed on any backend.

* :func:`spd_quadratics` -
  :math:`f(\theta) = \tfrac12 (\theta - \theta^*)^\top A (\theta - \theta^*)` with
  :math:`A = Q\,\mathrm{diag}(\lambda)\,Q^\top`, :math:`Q` a random orthogonal matrix
  and the eigenvalues :math:`\lambda_i` log-spaced from 1 to the condition number
  :math:`\kappa = \lambda_{max}/\lambda_{min}`;
* :func:`line_functions` - one-dimensional
  :math:`l(t) = l_0 + s\,t + \tfrac12 c\,t^2 + \sigma\,\nu(t)` with slope :math:`s`,
  curvature :math:`c` and a fixed smooth perturbation :math:`|\nu(t)| \le 1` of
  amplitude :math:`\sigma` (the noise), a Python-float function;
* :func:`arrays` - finite arrays of a namespace and dtype.

Hypothesis is imported when a strategy is built; without it ``ImportError`` names the
extra to install.

Example
-------
>>> from hypothesis import given, settings
>>> from paltest.testing import spd_quadratics
>>> @settings(max_examples=5, database=None)
... @given(spd_quadratics(n=3, condition=10.0))
... def test(q):
...     loss, grad = q.value_and_grad(q.minimiser)
...     assert float(loss) == 0.0
>>> test()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.testing._hyp import hypothesis, resolve

__all__ = ["LineFunction", "Quadratic", "arrays", "line_functions", "quadratic",
           "spd_quadratics"]


class Quadratic(NamedTuple):
    r"""An SPD quadratic :math:`\tfrac12 (\theta-\theta^*)^\top A (\theta-\theta^*)`.

    Attributes:
        value_and_grad: ``theta -> (loss, grad)``, loss a 0-d array of the namespace.
        value: ``theta -> loss``.
        minimiser: :math:`\theta^*`, an array of the namespace (the loss there is 0).
        matrix: :math:`A` on the host (NumPy float64).
        condition: :math:`\kappa`, the ratio of the largest to the smallest eigenvalue.
        seed: the NumPy seed :math:`A` and :math:`\theta^*` were drawn from.
    """

    value_and_grad: Callable[[Any], tuple[Any, Any]]
    value: Callable[[Any], Any]
    minimiser: Any
    matrix: np.ndarray
    condition: float
    seed: int

    def __repr__(self) -> str:  # what Hypothesis prints in a falsifying example
        return (f"quadratic(n={self.matrix.shape[0]}, condition={self.condition!r}, "
                f"seed={self.seed})")


def quadratic(n: int, condition: float, seed: int, xp: Any = "numpy",
              dtype: str = "float64") -> Quadratic:
    """The SPD quadratic of dimension ``n`` and condition ``condition`` drawn from ``seed``.

    ``xp`` is a namespace or its name, ``dtype`` ``"float32"`` or ``"float64"``.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: must be an int >= 1, got {n!r}")
    if not (isinstance(condition, (int, float)) and math.isfinite(condition)
            and condition >= 1):
        raise ValueError(f"condition: must be a finite number >= 1, got {condition!r}")
    xp = backend.resolve_namespace(xp)
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.sign(np.diag(r))
    eig = np.logspace(0.0, math.log10(condition), n) if n > 1 else np.ones(1)
    a = (q * eig) @ q.T
    a = 0.5 * (a + a.T)
    star = rng.standard_normal(n)
    return from_matrix(a, star, xp, dtype, condition, int(seed))


def spd_quadratics(xp: Any = "numpy", dtype: str = "float64", *, n: Any = None,
                   condition: Any = None) -> Any:
    """A strategy of :class:`Quadratic` problems on namespace ``xp`` in ``dtype``.

    ``n`` (dimension) and ``condition`` (:math:`\\kappa \\ge 1`) are values or
    strategies; by default ``n`` in 1..6 and ``condition`` in [1, 100].
    """
    _, st = hypothesis()
    ns = resolve(n, st) if n is not None else st.integers(1, 6)
    conds = (resolve(condition, st) if condition is not None
             else st.floats(1.0, 100.0, allow_nan=False))
    return st.builds(quadratic, ns, conds, st.integers(0, 2**32 - 1), st.just(xp),
                     st.just(dtype))


class LineFunction(NamedTuple):
    r"""A one-dimensional line :math:`l(t) = l_0 + s t + \tfrac12 c t^2 + \sigma\nu(t)`.

    Attributes:
        value: ``t -> l(t)``, Python floats (as PAL's case logic reads them).
        curvature: :math:`c`.
        slope: :math:`s = l'(0)` without noise.
        noise: :math:`\sigma`, the amplitude of the perturbation :math:`\nu`.
        l0: :math:`l_0`.
        seed: the NumPy seed of :math:`\nu`.
    """

    value: Callable[[float], float]
    curvature: float
    slope: float
    noise: float
    l0: float
    seed: int

    def __repr__(self) -> str:
        return (f"line(curvature={self.curvature!r}, slope={self.slope!r}, "
                f"noise={self.noise!r}, l0={self.l0!r}, seed={self.seed})")


def _line(curvature: float, slope: float, noise: float, l0: float, seed: int) -> LineFunction:
    rng = np.random.default_rng(seed)
    amp = rng.dirichlet(np.ones(4))  # sum 1, so |nu(t)| <= 1
    freq, phase = rng.uniform(0.5, 4.0, 4), rng.uniform(0.0, 2 * math.pi, 4)

    def value(t: float) -> float:
        t = float(t)
        nu = sum(a * math.sin(w * t + p) for a, w, p in zip(amp, freq, phase, strict=True))
        return float(l0 + slope * t + 0.5 * curvature * t * t + noise * nu)

    return LineFunction(value, float(curvature), float(slope), float(noise), float(l0),
                        int(seed))


def line_functions(*, curvature: Any = None, slope: Any = None, noise: Any = 0.0,
                   l0: Any = None) -> Any:
    """A strategy of :class:`LineFunction` with prescribed curvature, slope and noise.

    Each argument is a value or a strategy; by default curvature in [-10, 10], slope in
    [-10, 10], no noise and :math:`l_0` in [-10, 10].

    >>> line = _line(2.0, -1.0, 0.0, 0.5, 0)
    >>> line.value(0.0), line.value(1.0)
    (0.5, 0.5)
    """
    _, st = hypothesis()
    num = st.floats(-10.0, 10.0, allow_nan=False)
    return st.builds(
        _line,
        resolve(curvature, st) if curvature is not None else num,
        resolve(slope, st) if slope is not None else num,
        resolve(noise, st),
        resolve(l0, st) if l0 is not None else num,
        st.integers(0, 2**32 - 1),
    )


def arrays(xp: Any = "numpy", dtype: str = "float64", shape: Any = 3, *,
           bound: float = 10.0) -> Any:
    """A strategy of finite arrays of namespace ``xp``, ``dtype`` and ``shape``.

    ``shape`` is an int, a tuple or a strategy of either; entries lie in
    ``[-bound, bound]``. Drawn on the host and moved with
    :func:`paltest.backend.from_host`.
    """
    _, st = hypothesis()
    from hypothesis.extra import numpy as hnp

    if dtype not in backend.FLOAT_DTYPES:
        raise ValueError(f"dtype: must be one of {backend.FLOAT_DTYPES}, got {dtype!r}")
    width = 32 if dtype == "float32" else 64
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)
    space = backend.resolve_namespace(xp)
    host = hnp.arrays(np.dtype(dtype), resolve(shape, st), elements=elements)
    return host.map(lambda a: backend.from_host(a, space, dtype=dtype))


def from_matrix(a: np.ndarray, star: np.ndarray, xp: Any, dtype: str, condition: float,
             seed: int) -> Quadratic:
    """The quadratic :math:`\\tfrac12 (\\theta-\\theta^*)^\\top A (\\theta-\\theta^*)` of the host
    matrix ``a`` and minimiser ``star``, moved to ``xp`` in ``dtype``."""
    a_x = backend.from_host(a, xp, dtype=dtype)
    star_x = backend.from_host(star, xp, dtype=dtype)

    def value_and_grad(theta: Any) -> tuple[Any, Any]:
        d = theta - star_x
        ad = a_x @ d
        return 0.5 * xp.sum(d * ad), ad

    def value(theta: Any) -> Any:
        d = theta - star_x
        return 0.5 * xp.sum(d * (a_x @ d))

    return Quadratic(value_and_grad, value, star_x, a, float(condition), seed)
