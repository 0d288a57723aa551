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
  ``np.cumsum`` along a point's contiguous row does, at a third of the cost;
* :func:`line_values` is the matrix-factorization line's losses at the steps ``s``
  (``r = r0 + s (r1 + s r2)``, then :func:`line_means` of ``r * r``) with the same
  elementwise operations written into preallocated arrays; for two points (a bisection
  level of the exact line search) both points are computed interleaved, entry by entry
  (the coefficients repeated, :func:`interleave`, once per line), into a complex array
  whose real parts belong to the first point and imaginary parts to the second, and
  ``np.add.accumulate`` of it adds both sequences in order (complex addition adds the
  real and the imaginary parts separately, each rounded to the dtype), in one pass
  instead of two;
* :func:`kernel_line_values` is the kernel logistic regression's line
  (:class:`problems.lines.KernelLine`): ``bce_with_logits`` of the logits
  ``z0 + s z1`` summed over the batch, the same ufuncs in the same order on the same
  ``(batch, len(s))`` arrays, written into two of them instead of eight new ones;
* :func:`rbf_rows` is :func:`problems.kernel_math.rbf_kernel` (the RBF kernel rows of
  the kernel logistic regression, its whole stored kernels and, without them, every
  batch's rows) with each elementwise operation written into the product's own array
  and the result cast straight into the problem's buffer, instead of four new arrays
  of its size a chunk (each of whose pages the system hands over zeroed);
* :func:`take_rows` is ``np.take(x, idx, axis=0)`` written into a kept buffer: the
  kernel logistic regression gathers a batch's rows of its stored kernel (11 MB per
  ijcnn batch in float32) into the same memory at every step instead of a fresh array
  (whose pages the system hands over zeroed), the same entries (a copy).

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
from problems.kernel_math import EXP_FLOOR, LOG_FLOOR

__all__ = ["HOST_FAST_PATH", "enabled", "interleave", "kernel_line_values", "line_means",
           "line_values", "mean", "rbf_rows", "take_rows"]

#: Switch for every shortcut of this module (read at each call).
HOST_FAST_PATH = True

_add_reduce = np.add.reduce
_intp = np.intp
_add, _multiply, _accumulate = np.add, np.multiply, np.add.accumulate
_maximum, _subtract, _absolute, _negative = np.maximum, np.subtract, np.absolute, np.negative
_minimum = np.minimum
_exp, _log1p = np.exp, np.log1p
_empty, _copyto, _take = np.empty, np.copyto, np.take
#: The complex dtype whose real and imaginary parts are two lanes of a real dtype.
_LANES = {np.dtype(np.float32): np.dtype(np.complex64),
          np.dtype(np.float64): np.dtype(np.complex128)}


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


def interleave(*coefficients: np.ndarray | None) -> tuple[np.ndarray | None, ...]:
    """Each 1-d array with every entry twice in a row (``np.repeat(r, 2)``; ``None``
    stays ``None``): the two-point layout of :func:`line_values`."""
    return tuple(None if r is None else np.repeat(r, 2) for r in coefficients)


def line_values(r0: np.ndarray, r1: np.ndarray, r2: np.ndarray | None, s: np.ndarray,
                pairs: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
                ) -> np.ndarray:
    """``line_means(r * r)`` with ``r = r0 + S * (r1 + S * r2)`` (``r0 + S * r1`` when
    ``r2`` is ``None``) and ``S = s[:, None]``: the mean squared residual at each of the
    steps ``s`` (1-d, of ``r0``'s dtype) of the C-contiguous 1-d residual coefficients
    ``r0``, ``r1``, ``r2`` (one batch's ``(batch, outputs)`` entries, flattened).

    Two points are computed in the interleaved layout (entry ``i`` of point 0, then of
    point 1, ...): ``pairs`` is :func:`interleave` of the coefficients (made here when
    not given; a line that is called many times keeps it), the steps alternate in the
    same layout, every operation is one pass over contiguous memory, and the squares are
    already the complex pairs whose accumulation sums both points in order.
    """
    n, m, dt = s.shape[0], r0.shape[0], r0.dtype
    if n == 2 and dt in _LANES and s.dtype == dt and s.flags.c_contiguous:
        return _two_points(*(interleave(r0, r1, r2) if pairs is None else pairs), s)
    r = _squares(s[:, None], r0, r1, r2, _empty((n, m), dt))
    return line_means(r.reshape(n, m, 1))


def _squares(S: np.ndarray, r0: np.ndarray, r1: np.ndarray, r2: np.ndarray | None,
             r: np.ndarray) -> np.ndarray:
    """``(r0 + S * (r1 + S * r2)) ** 2`` (``r0 + S * r1`` without ``r2``), written into
    ``r`` operation by operation."""
    if r2 is None:
        _multiply(S, r1, out=r)
    else:
        _multiply(S, r2, out=r)
        _add(r1, r, out=r)
        _multiply(S, r, out=r)
    _add(r0, r, out=r)
    _multiply(r, r, out=r)
    return r


def _two_points(R0: np.ndarray, R1: np.ndarray, R2: np.ndarray | None,
                s: np.ndarray) -> np.ndarray:
    """:func:`line_values` at the two steps ``s`` from the interleaved coefficients."""
    dt = R0.dtype
    lanes = _LANES[dt]
    m = R0.shape[0] // 2
    steps = _empty(m, lanes)
    _copyto(steps, s.view(lanes))  # s[0], s[1], s[0], s[1], ...
    S = steps.view(dt)
    pairs = _empty(m, lanes)  # entry i: point 0's i-th square + 1j * point 1's
    _squares(S, R0, R1, R2, pairs.view(dt))
    _accumulate(pairs, out=pairs)  # both running sums, each in order
    total = pairs[-1:].view(dt)
    return np.true_divide(total, _intp(m), out=total, casting="unsafe")


def kernel_line_values(z0: np.ndarray, z1: np.ndarray, y: np.ndarray, s: np.ndarray
                       ) -> np.ndarray:
    """``np.sum(bce_with_logits(z, y[:, None]), axis=0) / len(z0)`` with
    ``z = z0[:, None] + s[None, :] * z1[:, None]`` (:class:`problems.lines.KernelLine`'s
    ``values``) for 1-d float arrays of one dtype: ``max(z, 0) - z y + log1p(exp(-|z|))``
    operation by operation into two ``(batch, len(s))`` arrays."""
    Y = y[:, None]
    z = _multiply(s[None, :], z1[:, None])
    _add(z0[:, None], z, out=z)
    a = _maximum(z, 0.0)
    b = _multiply(z, Y)
    _subtract(a, b, out=a)
    _absolute(z, out=b)
    _negative(b, out=b)
    _exp(b, out=b)
    _log1p(b, out=b)
    _add(a, b, out=b)  # into the second operand: written into the first, NumPy's
    return _add_reduce(b, axis=0) / z0.shape[0]  # loop would return b's NaN, not a's


def rbf_rows(A: np.ndarray, B: np.ndarray, sigma: float, sq_b: np.ndarray,
             out: np.ndarray | None = None) -> np.ndarray:
    """:func:`problems.kernel_math.rbf_kernel` ``(A, B, sigma, sq_b=sq_b)`` of float64
    ``ndarray`` s: the same operations in the same order, each elementwise one written
    into the product's own array (no new arrays of its size), the result cast into
    ``out`` (float32 or float64, of the result's shape; as ``astype`` casts) and
    returned (the float64 result when ``out`` is ``None``)."""
    g = 0.5 / (sigma * sigma)
    sq_a = np.sum(A * A, axis=1)
    e = np.matmul(A * (2.0 * g), B.T)
    e -= (sq_a * g)[:, None]
    e -= (sq_b * g)[None, :]
    _minimum(e, 0.0, out=e)
    _maximum(e, LOG_FLOOR, out=e)
    _exp(e, out=e)
    e -= EXP_FLOOR
    if out is None:
        return e
    _copyto(out, e, casting="same_kind")
    return out


def take_rows(x: np.ndarray, idx: np.ndarray, buf: np.ndarray | None
              ) -> np.ndarray | None:
    """``np.take(x, idx, axis=0)`` of a 2-d ``x`` written into ``buf`` (a new buffer
    when ``buf`` is ``None`` or of another shape or dtype), returned; ``None`` when
    ``idx`` is not a non-empty 1-d integer ``ndarray`` of indices in ``0..len(x)-1``:
    then the caller takes the rows itself (negative indices, errors as ``np.take``)."""
    if (type(idx) is not np.ndarray or idx.ndim != 1 or idx.dtype.kind not in "iu"
            or not idx.shape[0] or idx.min() < 0 or idx.max() >= x.shape[0]):
        return None
    shape = (idx.shape[0], x.shape[1])
    if buf is None or buf.shape != shape or buf.dtype != x.dtype:
        buf = _empty(shape, x.dtype)
    return _take(x, idx, axis=0, out=buf, mode="clip")  # in range: "clip" clips nothing
