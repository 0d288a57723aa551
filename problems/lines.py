r"""Cheap line evaluations: the batch loss along :math:`\theta + s\,d` from one set-up.

For a fixed ``theta``, direction ``d`` and batch, every problem here is a low-degree
polynomial in :math:`s` *before* its loss's nonlinearity, so a set-up of
:math:`O(\text{batch}\times\text{parameters})` work (the same products one ``value``
does) leaves each further point :math:`O(\text{batch})` vector work:

* kernel logistic regression: the logits are linear, :math:`z(s) = K_B\theta + s K_B d`
  (two products), the loss is the same :func:`problems.kernel_math.bce_with_logits` as
  ``value`` applies to them (the problem has no regularisation term);
* quadratics: :math:`L(\theta + s d) = c_0 + s c_1 + s^2 c_2` exactly, evaluated as
  :math:`c_0 + s (c_1 + s c_2)`, with :math:`c_0` computed by ``value``'s own formula;
* least squares: the residual :math:`r(s) = r_0 + s r_1`, :math:`r_1 = A_B d`;
* matrix factorization, :math:`\theta = [W_1, W_2]`, direction :math:`[D_1, D_2]`: the
  residual :math:`r(s) = r_0 + s r_1 + s^2 r_2` with :math:`h_0 = X W_1^\top`,
  :math:`h_1 = X D_1^\top`, :math:`r_0 = h_0 W_2^\top - Y`,
  :math:`r_1 = h_1 W_2^\top + h_0 D_2^\top`, :math:`r_2 = h_1 D_2^\top`; the true model
  (:math:`f(x) = Wx`) is linear, :math:`r(s) = r_0 + s\,X D^\top`.

Many steps are evaluated at once by broadcasting (batch :math:`\times` ``len(s)``) in the
problem's namespace: no in-place writes, no host transfer (the caller reads the result).
``setup_products`` counts the matrix products of the set-up (each the cost of about one
``value``'s product), so a caller can count the set-up honestly.

Rounding. A cheap value and a direct one (``value(theta + s * d)``) are two roundings
of the same number. With :math:`u` the unit roundoff of the dtype, :math:`n` the number of
terms summed along the longest chain of sums (the products' inner dimensions plus the
batch sum) and :math:`M(s)` the loss's formula evaluated on magnitudes (every factor
replaced by its absolute value and :math:`s` by :math:`|s|`; for the kernel problem,
whose cross-entropy is 1-Lipschitz in the logit, the batch mean of
:math:`(K_B|\theta| + |s|\,K_B|d|)_i + 1`), standard forward error analysis (Higham,
*Accuracy and Stability of Numerical Algorithms*, ch. 3: a sum of :math:`n` terms is off
by at most :math:`\gamma_n = nu/(1-nu)` times the sum of their magnitudes) bounds each by
:math:`\gamma_{n+k} M(s)` with :math:`k \le 8` (the point's own rounding
:math:`\theta + s d`, the polynomial's few operations, the loss's elementwise formula),
so

.. math:: |l_{\rm cheap}(s) - l_{\rm direct}(s)| \le 2 (n + 8)\, u\, M(s)

(the factor 2 covers both roundings and the first-order approximation of
:math:`\gamma`). ``tests/test_lines.py`` checks this bound, with the magnitudes
computed on the host, for every cheap line in float32 and float64 over steps from
:math:`-10^6` to :math:`10^6`. At :math:`s = 0` the cheap value is ``value(theta)`` up to
the same bound with :math:`M(0)` (the constant term is ``value``'s own formula; only the
order of the batch sum may differ).

>>> from problems import matrix_factorization
>>> p = matrix_factorization.make(rank=4)
>>> theta, batch = p.init_params(0), next(iter(p.batches(0, 0, 100)))
>>> _, g = p.value_and_grad(theta, batch)
>>> line = p.line(theta, -g, batch)
>>> line.cheap, tuple(line([0.0, 0.5, 1.0]).shape), line.n_points
(True, (3,), 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from problems import host
from problems.base import Line
from problems.kernel_math import bce_with_logits

__all__ = ["CheapLine", "KernelLine", "LeastSquaresLine", "MatrixFactorizationLine",
           "QuadraticLine"]


class CheapLine(Line):
    """A :class:`problems.base.Line` from a set-up done once (``cheap`` true).

    Subclasses compute in :meth:`setup` what every point needs and evaluate
    :meth:`values` by broadcasting; ``setup_products`` says how many matrix products
    the set-up made.
    """

    cheap = True
    setup_products: int = 0

    def __init__(self, problem: Any, theta: Any, direction: Any, batch: Any) -> None:
        super().__init__(problem, theta, direction, batch)
        if tuple(direction.shape) != tuple(theta.shape) or direction.dtype != theta.dtype:
            raise ValueError(f"direction: expected shape {tuple(theta.shape)} "
                             f"{theta.dtype}, got {tuple(direction.shape)} {direction.dtype}")
        self.setup()

    def setup(self) -> None:
        """Compute what every point needs (called once, from ``__init__``)."""


class KernelLine(CheapLine):
    r"""Kernel logistic regression: :math:`z(s) = K_B\theta + s K_B d`, then the mean of
    ``bce_with_logits`` (``value``'s formula) over the batch at each step."""

    setup_products = 2

    def setup(self) -> None:
        p, xp = self.problem, self.problem.xp
        p._check(self.theta, self.batch)
        z0, z1, ys = [], [], []
        with p._blas_limit():
            for K, y in p._batch_blocks(self.batch):
                z0.append(xp.matmul(K, self.theta))
                z1.append(xp.matmul(K, self.direction))
                ys.append(y)
        cat = (lambda a: a[0]) if len(z0) == 1 else (lambda a: xp.concat(a, axis=0))
        self.z0, self.z1, self.y = cat(z0), cat(z1), cat(ys)

    def values(self, s: Any) -> Any:
        xp = self.problem.xp
        if host.enabled(xp) and s.dtype == self.z0.dtype:
            return host.kernel_line_values(self.z0, self.z1, self.y, s)
        z = self.z0[:, None] + s[None, :] * self.z1[:, None]  # (batch, len(s))
        return xp.sum(bce_with_logits(z, self.y[:, None]), axis=0) / self.z0.shape[0]


class QuadraticLine(CheapLine):
    r"""A quadratic: :math:`c_0 + s (c_1 + s c_2)` with :math:`c_0` = ``value(theta)``
    (its own formula), :math:`c_1 = d^\top\nabla L(\theta)`,
    :math:`c_2 = \tfrac12 d^\top H_B d` (the batch Hessian)."""

    setup_products = 2

    def setup(self) -> None:
        p, xp, d = self.problem, self.problem.xp, self.direction
        c0, g = p.value_and_grad(self.theta, self.batch)
        H = p._batch_hessian(self.batch)
        self.c0, self.c1 = c0, xp.vecdot(d, g)
        self.c2 = 0.5 * xp.vecdot(d, H @ d)

    def values(self, s: Any) -> Any:
        return self.c0 + s * (self.c1 + s * self.c2)


class LeastSquaresLine(CheapLine):
    r"""Least squares: :math:`\tfrac12\,\mathrm{mean}_i (r_{0,i} + s r_{1,i})^2`,
    :math:`r_0 = A_B\theta - y_B`, :math:`r_1 = A_B d`."""

    setup_products = 2

    def setup(self) -> None:
        p, xp = self.problem, self.problem.xp
        p._check(self.theta)
        if self.batch is None:
            a, y = p._rows, p._y
        else:
            a, y = xp.take(p._rows, self.batch, axis=0), xp.take(p._y, self.batch, axis=0)
        self.r0, self.r1 = a @ self.theta - y, a @ self.direction

    def values(self, s: Any) -> Any:
        r = self.r0[:, None] + s[None, :] * self.r1[:, None]
        return 0.5 * self.problem.xp.mean(r * r, axis=0)


class MatrixFactorizationLine(CheapLine):
    r"""Matrix factorization: the residual :math:`r_0 + s (r_1 + s r_2)` per batch row and
    output, then the mean of its square (``value``'s mean squared error).

    ``rows``: the batch's ``(x, y)`` when the caller has gathered them already (the
    problem's bound ``value`` on the NumPy shortcut path), else they are gathered here.
    """

    setup_products = 4

    def __init__(self, problem: Any, theta: Any, direction: Any, batch: Any,
                 rows: tuple[Any, Any] | None = None) -> None:
        self._given_rows = rows
        super().__init__(problem, theta, direction, batch)

    def setup(self) -> None:
        p = self.problem
        x, y = p._rows(self.batch) if self._given_rows is None else self._given_rows
        self._given_rows = None
        W1, W2 = p._weights(self.theta)
        D1, D2 = p._weights(self.direction)
        h0, h1 = x @ W1.T, x @ D1.T
        if W2 is None:  # the true model is linear in theta
            self.setup_products = 2
            self.r0, self.r1, self.r2 = h0 - y, h1, None
        else:
            self.r0 = h0 @ W2.T - y
            self.r1 = h1 @ W2.T + h0 @ D2.T
            self.r2 = h1 @ D2.T
        self._flat = self._pairs = None
        if host.enabled(p.xp) and type(self.r0) is np.ndarray:  # (batch * 10,) views
            self._flat = tuple(None if r is None else r.reshape(-1)
                               for r in (self.r0, self.r1, self.r2))

    def values(self, s: Any) -> Any:
        xp = self.problem.xp
        flat = self._flat
        if flat is not None and type(s) is np.ndarray and s.dtype == flat[0].dtype and \
                host.enabled(xp):
            # The same elementwise operations in the (n, batch * 10) layout (or, for two
            # points, interleaved), and the batch mean as np.mean sums it over
            # (batch, 10, n) (problems.host).
            if self._pairs is None and s.shape[0] == 2:
                self._pairs = host.interleave(*flat)  # kept for the line's next calls
            return host.line_values(*flat, s, pairs=self._pairs)
        s3 = s[None, None, :]
        inner = self.r1[..., None] if self.r2 is None else \
            self.r1[..., None] + s3 * self.r2[..., None]
        r = self.r0[..., None] + s3 * inner  # (batch, 10, len(s))
        return xp.mean(r * r, axis=(0, 1))
