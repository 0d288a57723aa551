r"""Synthetic matrix factorization: the Figure 8 experiment of the PAL paper.

The data are those of the SLS reference code (Vaswani et al. 2019), reproduced exactly:
NumPy's legacy ``RandomState(42)`` draws

.. math::  A = \operatorname{diag}(\operatorname{linspace}(1, 10^{-10}, 10))\, U_{10\times 6},
           \qquad X \sim \mathcal N(0, 1)^{6\times 1000},\qquad Y = A X

(``U`` uniform on [0, 1), no noise). The samples are the 1000 columns, split 800/200 with
``train_test_split(test_size=0.2, random_state=9513451)``. The model is

.. math::  f(x) = W_2 W_1 x, \qquad W_1\in\mathbb R^{k\times 6},\ W_2\in\mathbb R^{10\times k}

with rank ``k`` in {1, 4, 10}, or the "true model" ``f(x) = W x`` with one
:math:`W\in\mathbb R^{10\times 6}` (``rank=None``). ``theta`` is the flat vector
``[vec(W1), vec(W2)]`` (row-major), ``k*6 + 10*k`` entries (60 for the true model). The
loss is the mean squared error over the batch and the 10 outputs,

.. math::  L_B(\theta) = \frac{1}{10|B|}\sum_{j\in B}\lVert W_2 W_1 x_j - y_j\rVert^2,

with the analytic gradient :math:`G = 2R/(10|B|)`, :math:`R = (W_2W_1X_B - Y_B)`,
:math:`\nabla_{W_2} = G (W_1X_B)^\top`, :math:`\nabla_{W_1} = W_2^\top G X_B^\top`.

The training-loss floor is known in closed form (Eckart-Young): with the empirical input
covariance :math:`\hat\Sigma = X^\top X/n` of the training inputs and
:math:`M = A\hat\Sigma^{1/2}`, the best rank-``k`` training loss is
:math:`\frac{1}{10}\sum_{i>k}\sigma_i(M)^2` (0 for ``k >= 6``: ``A`` has rank 6), reached
by :meth:`MatrixFactorization.svd_solution`.

Example
-------
>>> from problems import matrix_factorization
>>> p = matrix_factorization.make(rank=4)
>>> p.n_params, p.n_train, round(p.floor, 5), round(p.condition_number, 1)
(64, 800, 0.00935, 15.6)
>>> theta = p.init_params(seed=0)
>>> batch = next(iter(p.batches(epoch=0, seed=0, batch_size=100)))
>>> loss, grad = p.value_and_grad(theta, batch)
>>> tuple(grad.shape)
(64,)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import check_int
from problems import host
from problems.base import BoundValue, BoundValueWithLine, Problem
from problems.lines import MatrixFactorizationLine

__all__ = ["RANKS", "MatrixFactorization", "make", "make_data"]

#: The ranks of the Figure 8 panels (``None`` is the true linear model).
RANKS = (1, 4, 10, None)

N_IN, N_OUT, N_SAMPLES = 6, 10, 1000
DATA_SEED, SPLIT_SEED, TEST_SIZE = 42, 9513451, 0.2


def make_data() -> dict[str, np.ndarray]:
    """The seed-42 data and its 800/200 split, on the host in float64.

    Returns a dict with ``A`` (10, 6), ``x_train`` (800, 6), ``y_train`` (800, 10),
    ``x_test`` (200, 6), ``y_test`` (200, 10).
    """
    rs = np.random.RandomState(DATA_SEED)  # noqa: NPY002 - the reference's legacy generator
    A = np.linspace(1, 1e-10, N_OUT)[:, None] * rs.rand(N_OUT, N_IN)
    X = rs.randn(N_IN, N_SAMPLES)
    Y = A @ X
    train, test = split_indices()
    return {"A": A, "x_train": X.T[train], "y_train": Y.T[train], "x_test": X.T[test],
            "y_test": Y.T[test]}


def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """The reference's 800/200 split: the indices scikit-learn's
    ``train_test_split(..., test_size=0.2, random_state=SPLIT_SEED)`` uses (its
    ``ShuffleSplit``: one ``RandomState(SPLIT_SEED).permutation``, the first
    ``ceil(0.2 n)`` for the test set, the rest for training), computed here so that
    building a problem does not import scikit-learn (about a second);
    ``tests/test_matrix_factorization.py`` checks them against ``train_test_split``.
    """
    perm = np.random.RandomState(SPLIT_SEED).permutation(N_SAMPLES)  # noqa: NPY002
    n_test = math.ceil(TEST_SIZE * N_SAMPLES)
    return perm[n_test:], perm[:n_test]


def _sym_power(S: np.ndarray, power: float) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V * w**power) @ V.T


class MatrixFactorization(Problem):
    """The Figure 8 problem at one rank; build it with :func:`make`.

    Attributes besides the :mod:`problems.base` protocol: ``rank`` (``None`` for the true
    model), ``n_test``, ``A`` (the host teacher matrix), ``condition_number`` (of ``A``),
    ``floor`` (the Eckart-Young optimum of the training loss) and ``interpolation``
    (whether the model can fit the training data exactly, i.e. the floor is 0).
    ``line`` is cheap (:class:`problems.lines.MatrixFactorizationLine`: the residual is
    quadratic in the step, linear for the true model).
    """

    line_class = MatrixFactorizationLine

    def __init__(self, rank: int | None, xp: Any, device: Any, dtype: Any) -> None:
        data = make_data()
        self.rank = rank
        self.name = "mf-true" if rank is None else f"mf-rank{rank}"
        self.xp = xp
        self.dtype = dtype
        self.A = data["A"]
        self.condition_number = float(np.linalg.cond(self.A))
        self._x_train_host = data["x_train"]
        self.n_train = data["x_train"].shape[0]
        self.n_test = data["x_test"].shape[0]
        self.n_params = N_IN * N_OUT if rank is None else rank * N_IN + N_OUT * rank

        def put(a: np.ndarray) -> Any:
            return backend.from_host(a, xp, device=device, dtype=dtype)

        self._x_train, self._y_train = put(data["x_train"]), put(data["y_train"])
        self._x_test, self._y_test = put(data["x_test"]), put(data["y_test"])
        self.device = backend.device(self._x_train) if device is None else device

        sigma = np.linalg.svd(self._whitened_teacher(), compute_uv=False)
        k = N_IN if rank is None else rank
        self.floor = float(np.sum(sigma[k:] ** 2) / N_OUT)
        self.interpolation = bool(k >= np.linalg.matrix_rank(self.A))

    # -- host-side analysis -------------------------------------------------------------
    def _cov(self) -> np.ndarray:
        x = self._x_train_host
        return x.T @ x / x.shape[0]

    def _whitened_teacher(self) -> np.ndarray:
        """``M = A Sigma^{1/2}`` on the host (float64)."""
        return self.A @ _sym_power(self._cov(), 0.5)

    def svd_solution(self) -> Any:
        """The rank-``k`` minimizer of the training loss (Eckart-Young), as a device ``theta``.

        ``W = [M]_k Sigma^{-1/2}`` with ``[M]_k = U_k S_k V_k^T``, split as
        ``W2 = U_k S_k^{1/2}``, ``W1 = S_k^{1/2} V_k^T Sigma^{-1/2}`` (rows beyond rank 6
        are zero). The true model's solution is ``A`` itself.
        """
        if self.rank is None:
            theta = self.A.reshape(-1)
        else:
            U, s, Vt = np.linalg.svd(self._whitened_teacher())
            r = min(self.rank, s.size)
            root = np.sqrt(s[:r])
            W2 = np.zeros((N_OUT, self.rank))
            W2[:, :r] = U[:, :r] * root
            W1 = np.zeros((self.rank, N_IN))
            W1[:r] = (root[:, None] * Vt[:r]) @ _sym_power(self._cov(), -0.5)
            theta = np.concatenate([W1.reshape(-1), W2.reshape(-1)])
        return backend.from_host(theta, self.xp, device=self.device, dtype=self.dtype)

    # -- protocol -----------------------------------------------------------------------
    def init_params(self, seed: int) -> Any:
        """Default linear-layer init: every weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

        Drawn on the host with ``np.random.default_rng(seed)``: ``W1`` (fan-in 6) first,
        then ``W2`` (fan-in ``k``); the true model draws ``W`` (fan-in 6).
        """
        rng = np.random.default_rng(check_int("seed", seed))
        if self.rank is None:
            parts = [rng.uniform(-1, 1, N_OUT * N_IN) / np.sqrt(N_IN)]
        else:
            k = self.rank
            parts = [
                rng.uniform(-1, 1, k * N_IN) / np.sqrt(N_IN),
                rng.uniform(-1, 1, N_OUT * k) / np.sqrt(k),
            ]
        return backend.from_host(
            np.concatenate(parts), self.xp, device=self.device, dtype=self.dtype
        )

    def _weights(self, theta: Any) -> tuple[Any, Any | None]:
        """``(W1, W2)`` views of ``theta`` (``(W, None)`` for the true model)."""
        if tuple(theta.shape) != (self.n_params,):
            raise ValueError(
                f"theta: expected shape ({self.n_params},), got {tuple(theta.shape)}"
            )
        if theta.dtype != self.dtype:
            raise TypeError(f"theta: dtype {theta.dtype} differs from the problem's {self.dtype}")
        if host.enabled(self.xp) and type(theta) is np.ndarray:  # the same views
            if self.rank is None:
                return theta.reshape(N_OUT, N_IN), None
            cut = self.rank * N_IN
            return theta[:cut].reshape(self.rank, N_IN), theta[cut:].reshape(N_OUT, self.rank)
        xp = self.xp
        if self.rank is None:
            return xp.reshape(theta, (N_OUT, N_IN)), None
        k = self.rank
        cut = k * N_IN
        return xp.reshape(theta[:cut], (k, N_IN)), xp.reshape(theta[cut:], (N_OUT, k))

    def _residual(self, theta: Any, x: Any, y: Any) -> tuple[Any, Any | None, Any, Any]:
        W1, W2 = self._weights(theta)
        h = x @ W1.T  # (b, k) or, for the true model, (b, 10)
        pred = h if W2 is None else h @ W2.T
        return pred - y, h, W1, W2

    def _mean(self, sq: Any) -> Any:
        return host.mean(sq) if host.enabled(self.xp) and type(sq) is np.ndarray else \
            self.xp.mean(sq)

    def _mse(self, x: Any, y: Any, theta: Any) -> Any:
        r = self._residual(theta, x, y)[0]
        return self._mean(r * r)

    def _rows(self, batch: Any) -> tuple[Any, Any]:
        self.check_batch(batch)
        if host.enabled(self.xp) and type(batch) is np.ndarray:  # what np.take does
            return self._x_train[batch], self._y_train[batch]
        xp = self.xp
        return xp.take(self._x_train, batch, axis=0), xp.take(self._y_train, batch, axis=0)

    def value(self, theta: Any, batch: Any) -> Any:
        """Mean squared error over the rows ``batch`` (the whole set: :meth:`train_loss`)."""
        x, y = self._rows(batch)
        return self._mse(x, y, theta)

    def value_and_grad(self, theta: Any, batch: Any) -> tuple[Any, Any]:
        """The batch MSE and its analytic gradient (same layout as ``theta``)."""
        return self._value_and_grad(theta, *self._rows(batch))

    def _value_and_grad(self, theta: Any, x: Any, y: Any) -> tuple[Any, Any]:
        xp = self.xp
        r, h, W1, W2 = self._residual(theta, x, y)
        loss = self._mean(r * r)
        g = r * (2.0 / (r.shape[0] * N_OUT))  # dL/dpred, (b, 10)
        if W2 is None:
            return loss, xp.reshape(g.T @ x, (-1,))
        g_w2 = g.T @ h  # (10, k)
        g_w1 = (g @ W2).T @ x  # (k, 6)
        if host.enabled(xp) and type(g_w1) is np.ndarray:  # the same vector
            return loss, np.concatenate((g_w1.ravel(), g_w2.ravel()))
        return loss, xp.concat([xp.reshape(g_w1, (-1,)), xp.reshape(g_w2, (-1,))])

    def bind(self, batch: Any) -> tuple[Any, Any]:
        """As :meth:`problems.base.Problem.bind`; on the NumPy shortcut path
        (:mod:`problems.host`) the batch's rows are gathered once for both callables."""
        if not (host.enabled(self.xp) and type(batch) is np.ndarray):
            return super().bind(batch)
        x, y = self._rows(batch)
        bound = _BoundRowsWithLine if self.line_class.cheap else _BoundRows
        return (lambda theta: self._value_and_grad(theta, x, y), bound(self, batch, x, y))

    def train_loss(self, theta: Any) -> Any:
        """MSE over all 800 training samples."""
        return self._mse(self._x_train, self._y_train, theta)

    def test_metrics(self, theta: Any) -> dict[str, Any]:
        """``{"test_loss": MSE over the 200 test samples}``."""
        return {"test_loss": self._mse(self._x_test, self._y_test, theta)}


class _BoundRows(BoundValue):
    """The ``value`` of :meth:`MatrixFactorization.bind` on the shortcut path: the batch's
    rows gathered once (``value(theta)`` equals ``problem.value(theta, batch)``)."""

    __slots__ = ("x", "y")

    def __init__(self, problem: MatrixFactorization, batch: Any, x: Any, y: Any) -> None:
        super().__init__(problem, batch)
        self.x, self.y = x, y

    def __call__(self, theta: Any) -> Any:
        return self.problem._mse(self.x, self.y, theta)


class _BoundRowsWithLine(_BoundRows, BoundValueWithLine):
    """:class:`_BoundRows` with ``line`` (the problem's line is cheap; its set-up takes
    the rows gathered here)."""

    __slots__ = ()

    def line(self, theta: Any, direction: Any) -> MatrixFactorizationLine:
        """The problem's cheap line through ``theta`` along ``direction`` on this batch."""
        problem = self.problem
        if problem.line_class is not MatrixFactorizationLine or \
                type(problem).line is not Problem.line:  # a subclass's own line
            return problem.line(theta, direction, self.batch)
        return MatrixFactorizationLine(problem, theta, direction, self.batch,
                                       rows=(self.x, self.y))


def make(
    *, rank: int | None, xp: Any = "numpy", device: Any = None, dtype: Any = "float64"
) -> MatrixFactorization:
    """The Figure 8 matrix-factorization problem at ``rank`` (1, 4, 10, or ``None``).

    ``xp`` is a namespace or its name (``"numpy"``, ``"array_api_strict"``, ``"cupy"``),
    ``dtype`` ``"float32"`` or ``"float64"`` (or the namespace's dtype object).
    """
    if rank is not None and (
        isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank not in RANKS
    ):
        raise ValueError(f"rank: must be 1, 4, 10 or None, got {rank!r}")
    rank = None if rank is None else int(rank)
    ns = backend.resolve_namespace(xp)
    return MatrixFactorization(rank, ns, device, backend.float_dtype(ns, dtype))
