r"""Quadratic problems with known optimum, Hessian and condition number.

Three families, all following the :mod:`problems.base` protocol:

:func:`make_quadratic` - one deterministic quadratic
    .. math::  L(\theta) = \tfrac12 (\theta-\theta^*)^\top A(\theta-\theta^*) + L^*,
               \qquad \nabla L = A(\theta-\theta^*),

    ``A`` symmetric positive definite, from its eigenvalues (``A = Q diag(lambda) Q^T``
    with a random orthogonal ``Q``, or ``diag(lambda)`` when ``rotate=False``), from an
    explicit matrix, or from ``(n, kappa)`` (eigenvalues log-spaced in ``[1, kappa]``).
    It has one "sample" (``n_train = 1``): its only batch is the whole problem.
:func:`make_batch_quadratic` - stochastic batch quadratics, the mean of ``n_batches``
    component quadratics ``f_i`` (a sample is one component; a batch's loss is the mean
    over its components; the training loss is the mean over all of them):

    * ``interpolation=True``: :math:`f_i(\theta) = \tfrac12 e^\top H_i e`,
      :math:`e = \theta-\theta^*`, with PSD :math:`H_i` that differ per component and
      average exactly to ``A``; every batch shares the minimizer :math:`\theta^*`, L* = 0.
    * ``interpolation=False``: :math:`f_i(\theta) = \tfrac12 (\theta-\theta_i)^\top
      A(\theta-\theta_i)`, one Hessian ``A`` but per-component minimizers
      :math:`\theta_i = \theta^* + \delta_i` with :math:`\sum_i\delta_i = 0`, so the
      training loss is minimized at :math:`\theta^*` with
      :math:`L^* = \frac{1}{2N}\sum_i \delta_i^\top A\delta_i > 0`.
:func:`make_least_squares` - a consistent least-squares system
    :math:`f_i(\theta) = \tfrac12 (a_i^\top\theta - y_i)^2`, :math:`y = A_{\rm rows}\theta^*`;
    a sample is one row (batch size 1 is the randomized-Kaczmarz setting), the training
    loss :math:`\frac{1}{2m}\lVert A_{\rm rows}\theta - y\rVert^2` has Hessian
    :math:`A_{\rm rows}^\top A_{\rm rows}/m` and L* = 0.

Each problem exposes on the host (NumPy, float64): ``theta_star``, ``hessian`` (of the
training loss), ``eigenvalues``, ``lambda_min``, ``lambda_max``, ``kappa``, ``L_star``
(= ``floor``), and ``solution()`` gives ``theta_star`` on the device. Random numbers are
drawn on the host with ``np.random.default_rng(seed)``.

Example
-------
>>> import numpy as np
>>> from problems.quadratic import make_quadratic
>>> p = make_quadratic(eigenvalues=[1.0, 10.0], minimizer=[0.0, 0.0], rotate=False)
>>> p.kappa, p.floor
(10.0, 0.0)
>>> theta = p.xp.asarray([1.0, 0.1])
>>> batch = next(iter(p.batches(epoch=0, seed=0, batch_size=1)))  # its one sample
>>> loss, grad = p.value_and_grad(theta, batch)
>>> round(float(loss), 6), np.asarray(grad).tolist()
(0.55, [1.0, 1.0])
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import (
    check_bool,
    check_int,
    check_memory,
    check_nonneg,
    check_positive,
    check_real,
    shown,
)
from problems.base import Problem
from problems.lines import LeastSquaresLine, QuadraticLine

__all__ = [
    "BatchQuadratic",
    "LeastSquares",
    "Quadratic",
    "make_batch_quadratic",
    "make_least_squares",
    "make_quadratic",
]


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _host_floats(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 host array; strings, bools, complex numbers and other
    non-numbers raise ``TypeError``, an int beyond the float range ``ValueError``, each
    naming ``name`` (NumPy would parse ``"0.5"`` and cast ``True``)."""
    try:
        kind = "U" if isinstance(value, str) else np.asarray(value).dtype.kind
    except (TypeError, ValueError):  # ragged nesting, ...
        kind = "?"
    if kind not in "iufO":
        raise TypeError(f"{name}: expected real numbers, got {shown(value)}")
    try:
        return np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ValueError(f"{name}: must be finite (an int beyond the float range)") from None
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected real numbers, got {shown(value)}") from None


def _vector(name: str, value: Any, n: int | None = None) -> np.ndarray:
    out = _host_floats(name, value)
    if out.ndim != 1 or out.size == 0 or (n is not None and out.size != n):
        want = "a non-empty 1-D array" if n is None else f"shape ({n},)"
        raise ValueError(f"{name}: expected {want}, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name}: must be finite")
    return out


def _spd(name: str, value: Any) -> np.ndarray:
    A = _host_floats(name, value)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.size == 0:
        raise ValueError(f"{name}: expected a square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name}: must be finite")
    if not np.allclose(A, A.T, rtol=1e-12, atol=1e-12 * np.abs(A).max()):
        raise ValueError(f"{name}: must be symmetric")
    A = (A + A.T) / 2
    if np.linalg.eigvalsh(A)[0] <= 0:
        raise ValueError(f"{name}: must be positive definite")
    return A


class _QuadraticBase(Problem):
    """Shared host analysis, device placement, init and training loss of the quadratics."""

    def _setup(self, xp: Any, device: Any, dtype: Any, hessian: np.ndarray,
               theta_star: np.ndarray, L_star: float) -> None:
        self.xp, self.dtype = xp, dtype
        self.hessian = hessian
        self.theta_star = theta_star
        self.n_params = theta_star.size
        self.L_star = float(L_star)
        self.floor = self.L_star
        self.eigenvalues = np.linalg.eigvalsh(hessian)
        self.lambda_min = float(self.eigenvalues[0])
        self.lambda_max = float(self.eigenvalues[-1])
        self.kappa = self.lambda_max / self.lambda_min
        self._theta_star = self._put(theta_star, device)
        self.device = backend.device(self._theta_star) if device is None else device

    def _put(self, a: np.ndarray, device: Any = None) -> Any:
        device = getattr(self, "device", None) if device is None else device
        return backend.from_host(a, self.xp, device=device, dtype=self.dtype)

    def _check(self, theta: Any) -> None:
        if tuple(theta.shape) != (self.n_params,):
            raise ValueError(f"theta: expected shape ({self.n_params},), got {tuple(theta.shape)}")
        if theta.dtype != self.dtype:
            raise TypeError(f"theta: dtype {theta.dtype} differs from the problem's {self.dtype}")

    @property
    def default_batch_size(self) -> int:
        """Ten batches per epoch (``n_train // 10``); 1 for the one-sample quadratic."""
        return max(1, self.n_train // 10)

    def solution(self) -> Any:
        """``theta_star`` on the device, in the problem's dtype."""
        return self._theta_star

    def init_params(self, seed: int) -> Any:
        """``theta_star + z`` with ``z ~ N(0, I)`` drawn by ``np.random.default_rng(seed)``."""
        z = np.random.default_rng(check_int("seed", seed)).standard_normal(self.n_params)
        return self._put(self.theta_star + z)

    def value(self, theta: Any, batch: Any) -> Any:
        """Mean loss over the samples ``batch`` (all of them: :meth:`train_loss`)."""
        return self.value_and_grad(theta, batch)[0]

    def value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        """Mean loss over the samples ``batch`` and its gradient."""
        self.check_batch(batch)
        return self._value_and_grad(theta, batch)

    def train_loss(self, theta: Any) -> Any:
        """The loss over all samples (the mean of the components)."""
        return self._value_and_grad(theta, None)[0]


class Quadratic(_QuadraticBase):
    """``L(theta) = 1/2 (theta - theta*)^T A (theta - theta*) + L*``; see :func:`make_quadratic`.

    ``batches`` yields the single index ``[0]``; ``value`` ignores its ``batch``.
    ``line`` is cheap (:class:`problems.lines.QuadraticLine`).
    """

    name = "quadratic"
    n_train = 1
    line_class = QuadraticLine

    def __init__(self, A: np.ndarray, theta_star: np.ndarray, L_star: float,
                 xp: Any, device: Any, dtype: Any) -> None:
        self._setup(xp, device, dtype, A, theta_star, L_star)
        self._A = self._put(A)

    def batches(self, epoch: int, seed: int, batch_size: int = 1) -> Iterator[Any]:
        """One batch per epoch, the whole problem (``batch_size`` must be 1)."""
        return super().batches(epoch, seed, batch_size)

    def _batch_hessian(self, batch: Any) -> Any:
        """The Hessian of the loss (``A``; for :class:`problems.lines.QuadraticLine`)."""
        return self._A

    def _value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        self._check(theta)
        e = theta - self._theta_star
        g = self._A @ e
        return 0.5 * self.xp.sum(e * g) + self.L_star, g


class BatchQuadratic(_QuadraticBase):
    """The mean of ``n_train`` component quadratics; see :func:`make_batch_quadratic`.

    Host attributes: ``component_hessians`` (N, n, n) when interpolating, else
    ``component_minimizers`` (N, n). ``line`` is cheap
    (:class:`problems.lines.QuadraticLine`).
    """

    name = "batch-quadratic"
    line_class = QuadraticLine

    def __init__(self, interpolation: bool, A: np.ndarray, theta_star: np.ndarray,
                 parts: np.ndarray, xp: Any, device: Any, dtype: Any) -> None:
        self.interpolation = interpolation
        self.n_train = parts.shape[0]
        if interpolation:
            self.component_hessians = parts
            L_star = 0.0
        else:
            self.component_minimizers = parts
            d = parts - theta_star
            L_star = 0.5 * float(np.mean(np.sum((d @ A) * d, axis=1)))
        self._setup(xp, device, dtype, A, theta_star, L_star)
        self._A = self._put(A)
        self._parts = self._put(parts)

    def _batch_hessian(self, batch: Any) -> Any:
        """The Hessian of the batch's loss (for :class:`problems.lines.QuadraticLine`)."""
        if not self.interpolation or batch is None:
            return self._A
        return self.xp.mean(self.xp.take(self._parts, batch, axis=0), axis=0)

    def _value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        self._check(theta)
        xp = self.xp
        if self.interpolation:
            e = theta - self._theta_star
            H = self._A if batch is None else xp.mean(xp.take(self._parts, batch, axis=0), axis=0)
            g = H @ e
            return 0.5 * xp.sum(e * g), g
        parts = self._parts if batch is None else xp.take(self._parts, batch, axis=0)
        e = theta - parts  # (b, n): theta minus each component's minimizer
        ge = e @ self._A  # rows A e_i (A symmetric)
        return 0.5 * xp.mean(xp.sum(e * ge, axis=1)), xp.mean(ge, axis=0)


class LeastSquares(_QuadraticBase):
    """Consistent least squares, one sample per row; see :func:`make_least_squares`.

    Host attributes: ``rows`` (m, n) and ``targets`` (m,). ``line`` is cheap
    (:class:`problems.lines.LeastSquaresLine`).
    """

    name = "least-squares"
    line_class = LeastSquaresLine

    def __init__(self, rows: np.ndarray, targets: np.ndarray, theta_star: np.ndarray,
                 xp: Any, device: Any, dtype: Any) -> None:
        self.rows, self.targets = rows, targets
        self.n_train = rows.shape[0]
        self._setup(xp, device, dtype, rows.T @ rows / rows.shape[0], theta_star, 0.0)
        self._rows, self._y = self._put(rows), self._put(targets)

    def _value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        self._check(theta)
        xp = self.xp
        if batch is None:
            a, y = self._rows, self._y
        else:
            a, y = xp.take(self._rows, batch, axis=0), xp.take(self._y, batch, axis=0)
        r = a @ theta - y
        return 0.5 * xp.mean(r * r), (r @ a) / r.shape[0]


def _namespace(xp: Any, dtype: Any) -> tuple[Any, Any]:
    ns = backend.resolve_namespace(xp)
    return ns, backend.float_dtype(ns, dtype)


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    return check_real(name, value)


def _log_spaced(n: int, kappa: float) -> np.ndarray:
    return np.logspace(0.0, np.log10(kappa), n)


def make_quadratic(
    *, eigenvalues: Any = None, matrix: Any = None, minimizer: Any = None,
    L_star: float = 0.0, n: int | None = None, kappa: float | None = None,
    rotate: bool = True, seed: int = 0, xp: Any = "numpy", device: Any = None,
    dtype: Any = "float64",
) -> Quadratic:
    """A deterministic quadratic ``1/2 (theta-theta*)^T A (theta-theta*) + L_star``.

    Give at most one of ``eigenvalues`` (positive; ``A = Q diag(eigenvalues) Q^T`` with a
    random orthogonal ``Q`` from ``seed``, or ``A = diag(eigenvalues)`` if ``rotate`` is
    False), ``matrix`` (symmetric positive definite) or ``n``/``kappa`` (eigenvalues
    ``logspace(0, log10(kappa), n)``; defaults ``n=10``, ``kappa=10``). ``minimizer``
    defaults to a standard normal vector drawn after ``Q``.
    """
    sources = [eigenvalues is not None, matrix is not None, n is not None or kappa is not None]
    if sum(sources) > 1:
        raise ValueError("eigenvalues, matrix, n/kappa: give only one way to build A")
    rotate = check_bool("rotate", rotate)
    rng = np.random.default_rng(check_int("seed", seed))
    if matrix is not None:
        A = _spd("matrix", matrix)
    else:
        if eigenvalues is not None:
            lam = _vector("eigenvalues", eigenvalues)
            if np.any(lam <= 0):
                raise ValueError("eigenvalues: must all be > 0")
            check_memory("eigenvalues", f"{lam.size} values", 8 * lam.size**2,
                         f"a {lam.size} x {lam.size} Hessian")
        else:
            n = 10 if n is None else check_int("n", n, minimum=1)
            check_memory("n", n, 8 * n * n, f"an {n} x {n} Hessian")
            kappa = 10.0 if kappa is None else check_positive("kappa", kappa)
            if kappa < 1:
                raise ValueError(f"kappa: must be >= 1, got {kappa!r}")
            lam = _log_spaced(n, kappa)
        if rotate:
            Q = _orthogonal(rng, lam.size)
            A = (Q * lam) @ Q.T
            A = (A + A.T) / 2
        else:
            A = np.diag(lam)
    dim = A.shape[0]
    if minimizer is None:
        theta_star = rng.standard_normal(dim)
    else:
        theta_star = _vector("minimizer", minimizer, dim)
    L_star = _finite("L_star", L_star)
    ns, dt = _namespace(xp, dtype)
    return Quadratic(A, theta_star, L_star, ns, device, dt)


def make_batch_quadratic(
    *, n: int = 10, n_batches: int = 100, interpolation: bool = True, kappa: float = 10.0,
    rank: int | None = None, noise: float = 1.0, seed: int = 0, xp: Any = "numpy",
    device: Any = None, dtype: Any = "float64",
) -> BatchQuadratic:
    """``n_batches`` component quadratics in dimension ``n`` whose mean has condition ``kappa``.

    The mean Hessian is ``A = Q diag(logspace(0, log10(kappa), n)) Q^T``. With
    ``interpolation=True`` the components are ``H_i = A^{1/2} C^{-1/2} G_i^T G_i
    C^{-1/2} A^{1/2}`` with Gaussian ``G_i`` of ``rank`` rows (default ``n``) and
    ``C = mean_i G_i^T G_i``, so ``mean_i H_i = A`` exactly and every ``H_i`` is PSD.
    With ``interpolation=False`` the minimizers are ``theta* + noise * (z_i - mean z)``.
    """
    n = check_int("n", n, minimum=1)
    n_batches = check_int("n_batches", n_batches, minimum=1)
    interpolation = check_bool("interpolation", interpolation)
    kappa = check_positive("kappa", kappa)
    if kappa < 1:
        raise ValueError(f"kappa: must be >= 1, got {kappa!r}")
    rank = n if rank is None else check_int("rank", rank, minimum=1)
    noise = check_nonneg("noise", noise)
    check_memory("n", n, 8 * n * n, f"an {n} x {n} Hessian")
    if interpolation:
        check_memory("n_batches", n_batches, 8 * n_batches * n * max(n, rank),
                     f"{n_batches} component Hessians of size {n} x {n}")
    else:
        check_memory("n_batches", n_batches, 8 * n_batches * n,
                     f"{n_batches} component minimizers of size {n}")
    rng = np.random.default_rng(check_int("seed", seed))
    Q = _orthogonal(rng, n)
    lam = _log_spaced(n, kappa)
    A = (Q * lam) @ Q.T
    A = (A + A.T) / 2
    theta_star = rng.standard_normal(n)
    if interpolation:
        if rank * n_batches < n:
            raise ValueError(
                f"rank: rank * n_batches = {rank * n_batches} must be >= n = {n} "
                "for the components to average to a positive definite Hessian"
            )
        G = rng.standard_normal((n_batches, rank, n))
        T = np.einsum("irj,irk->ijk", G, G)
        C = T.mean(axis=0)
        w, V = np.linalg.eigh(C)
        # S = A^{1/2} C^{-1/2}: S C S^T = A, so the components average to A.
        S = ((Q * np.sqrt(lam)) @ Q.T) @ ((V / np.sqrt(w)) @ V.T)
        parts = S @ T @ S.T
        parts = (parts + np.swapaxes(parts, 1, 2)) / 2
    else:
        z = rng.standard_normal((n_batches, n))
        parts = theta_star + noise * (z - z.mean(axis=0))
    ns, dt = _namespace(xp, dtype)
    return BatchQuadratic(interpolation, A, theta_star, parts, ns, device, dt)


def make_least_squares(
    *, n_rows: int = 100, n_cols: int = 10, seed: int = 0, xp: Any = "numpy",
    device: Any = None, dtype: Any = "float64",
) -> LeastSquares:
    """A consistent system ``rows @ theta* = targets`` with standard normal rows and ``theta*``.

    ``n_rows >= n_cols`` so that ``theta*`` is the unique minimizer (rows are drawn
    first, then ``theta*``).
    """
    n_rows = check_int("n_rows", n_rows, minimum=1)
    n_cols = check_int("n_cols", n_cols, minimum=1)
    if n_rows < n_cols:
        raise ValueError(f"n_rows: must be >= n_cols = {n_cols}, got {n_rows}")
    check_memory("n_rows", n_rows, 8 * n_rows * n_cols, f"a {n_rows} x {n_cols} matrix")
    rng = np.random.default_rng(check_int("seed", seed))
    rows = rng.standard_normal((n_rows, n_cols))
    theta_star = rng.standard_normal(n_cols)
    ns, dt = _namespace(xp, dtype)
    return LeastSquares(rows, rows @ theta_star, theta_star, ns, device, dt)
