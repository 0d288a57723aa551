r"""When a run has solved a problem: the convergence tests of the profiles.

Two tests, on the records of :class:`~paltest.testbed.profiles.solvers.History`
(the best value and the smallest gradient norm so far, at the evaluations that improved
them):

``"f"`` (default; Moré & Wild 2009)
    the first evaluation :math:`k` with

    .. math::  f_{best}(k) \le f_L + \mathrm{tol}\,\bigl(f(x_0) - f_L\bigr),

    where :math:`f_L` is the smallest value **any** solver of the table found on the
    problem. sif2jax's stated optimal values are wrong for many problems, so they are
    never used; a problem on which every solver failed to decrease :math:`f` counts as
    solved by none of them (:math:`f(x_0) = f_L`, no decrease to measure).
``"g"``
    the first evaluation with :math:`\lVert\nabla f(x_k)\rVert_2 \le \mathrm{tol}\,
    \lVert\nabla f(x_0)\rVert_2` (no reference needed; a start with zero gradient is
    solved at the first evaluation).

Example:
    >>> import numpy as np
    >>> evaluations_to_solve([1, 4, 9], [10.0, 1.0, 0.5], f0=10.0, f_ref=0.5, tol=1e-1)
    4.0
    >>> evaluations_to_solve([1, 4], [10.0, 2.0], f0=10.0, f_ref=0.5, tol=1e-1)
    inf
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["TESTS", "evaluations_to_solve", "gradient_evaluations_to_solve", "threshold"]

#: The convergence tests: name -> what it compares.
TESTS = {"f": "f within tol of the best value found, relative to the start (Moré-Wild)",
         "g": "gradient norm at most tol times the start's"}


def threshold(f0: float, f_ref: float, tol: float) -> float:
    """:math:`f_L + \\mathrm{tol}(f(x_0) - f_L)`, or NaN when there is nothing to reach
    (``f0`` not above ``f_ref``, or either not finite)."""
    if not (math.isfinite(f0) and math.isfinite(f_ref)) or f0 <= f_ref:
        return math.nan
    return f_ref + tol * (f0 - f_ref)


def evaluations_to_solve(at: Sequence[int], best: Sequence[float], *, f0: float,
                         f_ref: float, tol: float) -> float:
    """The first evaluation at which the best value so far passes test ``"f"``
    (a float: ``inf`` when it never does)."""
    target = threshold(f0, f_ref, tol)
    if math.isnan(target):
        return math.inf
    best_arr = np.asarray(best, dtype=np.float64)
    hit = np.flatnonzero(best_arr <= target)
    return float(np.asarray(at)[hit[0]]) if hit.size else math.inf


def gradient_evaluations_to_solve(at: Sequence[int], best: Sequence[float], *, g0: float,
                                  tol: float) -> float:
    """The first evaluation at which the gradient norm passes test ``"g"`` (``inf``: never).

    >>> gradient_evaluations_to_solve([1, 3], [2.0, 1e-7], g0=2.0, tol=1e-6)
    3.0
    """
    if not math.isfinite(g0):
        return math.inf
    best_arr = np.asarray(best, dtype=np.float64)
    hit = np.flatnonzero(best_arr <= tol * g0)
    return float(np.asarray(at)[hit[0]]) if hit.size else math.inf
