r"""NumPy shortcuts of the problems' small evaluations, bitwise equal to the general code.

On small problems (matrix factorization: a 100 x 10 residual) a batch loss is a few
microseconds of arithmetic inside tens of microseconds of Python: ``np.mean``'s wrapper,
``np.take``, ``np.reshape`` and ``np.concat`` cost more than the products. When
:func:`enabled` (``HOST_FAST_PATH`` and a NumPy namespace), the problems call the same
NumPy operations with less around them:

* :func:`mean` is ``np.mean(x)`` of a float array as NumPy computes it
  (``numpy._core._methods._mean``): ``np.add.reduce`` over all entries, then the
  scalar's type of ``sum / np.intp(size)`` (for float32 that division happens in
  float64 and is rounded back, exactly as ``np.mean`` does);
* :func:`line_means` is ``np.mean(r * r, axis=(0, 1))`` of the ``(batch, outputs,
  n)`` residuals of one or two points of a line, computed from the ``(n, batch,
  outputs)`` layout: with one point NumPy sums the contiguous entries pairwise (so does
  ``np.add.reduce`` of the point's contiguous row); with two or more it adds the
  ``batch * outputs`` entries of each point one after another (the reduced axes
  coalesce into one outer axis over an inner axis of length ``n``), which is what
  ``np.cumsum`` along a point's contiguous row does, at a third of the cost.

Every shortcut can be switched off (``problems.host.HOST_FAST_PATH = False``) and
``tests/test_fast_paths.py`` compares whole trajectories with it on and off, bitwise;
``tests/test_problems_host.py`` compares :func:`mean` and :func:`line_means` with
``np.mean`` over many shapes and magnitudes in float32 and float64.

>>> import numpy as np
>>> x = np.linspace(0.0, 1.0, 7, dtype=np.float32)
>>> bool(mean(x) == np.mean(x)), type(mean(x)).__name__
(True, 'float32')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from paltest import backend

__all__ = ["HOST_FAST_PATH", "enabled", "line_means", "mean"]

#: Switch for every shortcut of this module (read at each call).
HOST_FAST_PATH = True

_add_reduce = np.add.reduce
_intp = np.intp


def enabled(xp: Any) -> bool:
    """Whether the problems of namespace ``xp`` take the NumPy shortcuts."""
    return HOST_FAST_PATH and backend.on_host(xp)


def mean(x: np.ndarray) -> Any:
    """``np.mean(x)`` of a float32/float64 ``ndarray`` (a NumPy scalar of its dtype)."""
    total = _add_reduce(x, axis=None)
    return total.dtype.type(total / _intp(x.size))


def line_means(sq: np.ndarray) -> np.ndarray:
    """``np.mean(sq.transpose(1, 2, 0), axis=(0, 1))`` for a C-contiguous ``(n, b, k)``
    float array ``sq`` (the squared residuals of ``n`` points), as a 1-d array of ``n``."""
    n = sq.shape[0]
    rows = sq.reshape(n, -1)
    if n == 1:
        total = _add_reduce(rows, axis=1)  # pairwise, as over the contiguous (b, k, 1)
    else:
        total = np.cumsum(rows, axis=1)[:, -1]  # in order, as over the strided (b, k, n)
    return np.true_divide(total, _intp(rows.shape[1]), out=total, casting="unsafe")
