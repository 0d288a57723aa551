r"""Batch quadratics: a finite sum of SPD quadratics, with or without a common minimiser.

Batch :math:`b` of :math:`B` is
:math:`f_b(\theta) = \tfrac12 (\theta - \theta_b)^\top A_b (\theta - \theta_b)`, each
:math:`A_b` drawn as in :func:`~paltest.testing.strategies.quadratic` (condition
:math:`\kappa`, its own rotation), and the full objective is the mean
:math:`F = \tfrac1B \sum_b f_b`, minimised at
:math:`\theta^* = (\sum_b A_b)^{-1} \sum_b A_b \theta_b` (solved on the host in float64).

With a common minimiser (``interpolation=True``) every :math:`\theta_b` is the same
point, so each batch is minimised at :math:`\theta^*` and :math:`F(\theta^*) = 0`, the
interpolation setting of SLS and ALIG. Without it the :math:`\theta_b` are spread
around, each batch's gradient at :math:`\theta^*` is non-zero and only their mean
vanishes; :math:`F(\theta^*) > 0`.

>>> from hypothesis import given, settings
>>> from paltest.testing import batch_quadratics
>>> @settings(max_examples=5, database=None)
... @given(batch_quadratics(n=2, n_batches=3, interpolation=True))
... def test(p):
...     assert all(float(b.value(p.minimiser)) == 0.0 for b in p.batches)
>>> test()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.testing._hyp import hypothesis, resolve
from paltest.testing.strategies import Quadratic, from_matrix, quadratic

__all__ = ["BatchQuadratics", "batch_quadratic", "batch_quadratics"]


class BatchQuadratics(NamedTuple):
    r"""A mean of batch quadratics :math:`F = \tfrac1B \sum_b f_b`.

    Attributes:
        batches: the :class:`~paltest.testing.strategies.Quadratic` of each batch (its
            ``minimiser`` is :math:`\theta_b`).
        value_and_grad: ``theta -> (F, grad F)``, of the namespace.
        value: ``theta -> F``.
        minimiser: :math:`\theta^*`, an array of the namespace.
        min_value: :math:`F(\theta^*)` (host float64; 0 with interpolation).
        interpolation: whether all batches share the minimiser.
        seed: the NumPy seed everything was drawn from.
    """

    batches: tuple[Quadratic, ...]
    value_and_grad: Callable[[Any], tuple[Any, Any]]
    value: Callable[[Any], Any]
    minimiser: Any
    min_value: float
    interpolation: bool
    seed: int

    def __repr__(self) -> str:
        b = self.batches[0]
        return (f"batch_quadratic(n={b.matrix.shape[0]}, n_batches={len(self.batches)}, "
                f"condition={b.condition!r}, interpolation={self.interpolation}, "
                f"seed={self.seed})")


def batch_quadratic(n: int, n_batches: int, condition: float, interpolation: bool,
                    seed: int, xp: Any = "numpy", dtype: str = "float64",
                    spread: float = 1.0) -> BatchQuadratics:
    """The batch quadratics drawn from ``seed``; ``spread`` scales the batch minimisers'
    distance from each other when ``interpolation`` is false."""
    if not isinstance(n_batches, int) or isinstance(n_batches, bool) or n_batches < 1:
        raise ValueError(f"n_batches: must be an int >= 1, got {n_batches!r}")
    if not (math.isfinite(spread) and spread > 0):
        raise ValueError(f"spread: must be a finite number > 0, got {spread!r}")
    space = backend.resolve_namespace(xp)
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**32 - 1, size=n_batches)
    centre = rng.standard_normal(n)
    stars = [centre if interpolation else centre + spread * rng.standard_normal(n)
             for _ in range(n_batches)]
    batches = []
    for s, star in zip(seeds, stars, strict=True):
        a = quadratic(n, condition, int(s)).matrix  # (its own rotation, on the host)
        batches.append(from_matrix(a, star, space, dtype, condition, int(s)))
    total = sum(q.matrix for q in batches)
    opt = centre if interpolation else np.linalg.solve(
        total, sum(q.matrix @ st for q, st in zip(batches, stars, strict=True)))
    min_value = 0.0 if interpolation else float(np.mean(
        [0.5 * (opt - st) @ q.matrix @ (opt - st) for q, st in zip(batches, stars,
                                                                    strict=True)]))
    inv = 1.0 / n_batches

    def value_and_grad(theta: Any) -> tuple[Any, Any]:
        outs = [q.value_and_grad(theta) for q in batches]
        return inv * sum(o[0] for o in outs), inv * sum(o[1] for o in outs)

    def value(theta: Any) -> Any:
        return inv * sum(q.value(theta) for q in batches)

    return BatchQuadratics(tuple(batches), value_and_grad, value,
                           backend.from_host(opt, space, dtype=dtype), min_value,
                           bool(interpolation), int(seed))


def batch_quadratics(xp: Any = "numpy", dtype: str = "float64", *, n: Any = None,
                     n_batches: Any = None, condition: Any = None,
                     interpolation: Any = None) -> Any:
    """A strategy of :class:`BatchQuadratics` on namespace ``xp`` in ``dtype``.

    Each argument is a value or a strategy; by default ``n`` in 1..6, ``n_batches`` in
    1..5, ``condition`` in [1, 100] and ``interpolation`` either.
    """
    _, st = hypothesis()

    def pick(v: Any, default: Any) -> Any:
        return resolve(v, st) if v is not None else default

    return st.builds(
        batch_quadratic, pick(n, st.integers(1, 6)), pick(n_batches, st.integers(1, 5)),
        pick(condition, st.floats(1.0, 100.0, allow_nan=False)),
        pick(interpolation, st.booleans()), st.integers(0, 2**32 - 1), st.just(xp),
        st.just(dtype))
