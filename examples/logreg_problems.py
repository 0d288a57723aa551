"""A problem of your own: L2-regularized logistic regression on scikit-learn's bundled
breast-cancer data (569 samples, 30 features, no download), registered as
``logreg-cancer``.

Use it from the command line with ``--plugin`` (or list it in ``PALTEST_PLUGINS``)::

    paltest run logreg-cancer pal --plugin examples/logreg_problems.py
    paltest sweep grid.toml --plugin examples/logreg_problems.py

or in Python after importing this module: ``problems.get("logreg-cancer", lam=1e-3)``.
The loss of a batch ``B`` is the mean of ``log(1 + exp(-y_i x_i^T theta))`` over ``B``
(``y_i`` in {-1, 1}) plus ``lam/2 ||theta||^2``; the features are standardized on the
training split (80 %, stratified), the last column is a constant 1 (the intercept).
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from paltest import backend
from paltest.checks import check_int
from paltest.problems import Problem, register


class LogReg(Problem):
    name = "logreg-cancer"

    def __init__(self, *, lam: float = 1e-3, xp="numpy", device=None, dtype="float64"):
        if not lam >= 0:
            raise ValueError(f"lam: must be >= 0, got {lam!r}")
        x, y = load_breast_cancer(return_X_y=True)
        xtr, xte, ytr, yte = train_test_split(x, 2.0 * y - 1.0, test_size=0.2,
                                              stratify=y, random_state=0)
        mean, std = xtr.mean(axis=0), xtr.std(axis=0)
        xtr, xte = ((a - mean) / std for a in (xtr, xte))
        xtr, xte = (np.hstack([a, np.ones((len(a), 1))]) for a in (xtr, xte))
        self.xp = backend.resolve_namespace(xp)
        self.dtype = backend.float_dtype(self.xp, dtype)
        self.device, self.lam = device, float(lam)
        self.n_train, self.n_params = xtr.shape
        self._x, self._y, self._xte, self._yte = (
            backend.from_host(a, self.xp, device=device, dtype=self.dtype_name)
            for a in (xtr, ytr, xte, yte))

    def init_params(self, seed):
        rng = np.random.default_rng(check_int("seed", seed))
        return backend.from_host(0.01 * rng.standard_normal(self.n_params), self.xp,
                                 device=self.device, dtype=self.dtype_name)

    def _loss(self, theta, x, y):
        xp = self.xp
        margin = y * (x @ theta)
        # log(1 + exp(-m)) without overflow: max(-m, 0) + log1p(exp(-|m|))
        terms = xp.maximum(-margin, 0.0) + xp.log1p(xp.exp(-xp.abs(margin)))
        return xp.mean(terms) + 0.5 * self.lam * xp.sum(theta * theta), margin

    def value(self, theta, batch):
        return self._loss(theta, *self._batch(batch))[0]

    def value_and_grad(self, theta, batch):
        x, y = self._batch(batch)
        loss, margin = self._loss(theta, x, y)
        weight = -0.5 * y * (1.0 - self.xp.tanh(0.5 * margin))  # -y / (1 + exp(m))
        return loss, (weight @ x) / x.shape[0] + self.lam * theta

    def _batch(self, batch):
        return (self.xp.take(self._x, batch, axis=0), self.xp.take(self._y, batch, axis=0))

    def train_loss(self, theta):
        return self._loss(theta, self._x, self._y)[0]

    def test_metrics(self, theta):
        xp = self.xp
        loss, margin = self._loss(theta, self._xte, self._yte)
        accuracy = xp.mean(xp.astype(margin > 0, self.dtype))
        return {"test_loss": loss, "test_accuracy": accuracy}


def make_logreg(*, lam: float = 1e-3, xp="numpy", device=None, dtype="float64") -> LogReg:
    """L2-regularized logistic regression on the breast-cancer data (sklearn)."""
    return LogReg(lam=lam, xp=xp, device=device, dtype=dtype)


register("logreg-cancer", make_logreg)
