"""Tests of the SciPy-style driver (paltest.minimize, paltest.scipy_method)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from paltest import PAL, backend, minimize, scipy_method


def _problem(xp, n=5, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    A = m @ m.T + n * np.eye(n)
    c = rng.standard_normal(n)
    Ax, cx = backend.from_host(A, xp), backend.from_host(c, xp)
    calls = {"fun": 0}

    def fun(x):
        calls["fun"] += 1
        g = Ax @ x - cx
        return 0.5 * xp.vecdot(x, Ax @ x) - xp.vecdot(cx, x), g

    return fun, A, c, calls


def test_converges_and_counts_honestly(xp):
    fun, A, c, calls = _problem(xp)
    x0 = backend.from_host(np.zeros(5), xp)
    res = minimize(fun, x0, jac=True, gtol=1e-10, maxiter=500, mu=0.1, beta=0.0, alpha=1.0,
                   s_max=1e3)
    assert res.success and res.status == 0
    np.testing.assert_allclose(backend.to_host(res.x), np.linalg.solve(A, c), rtol=1e-8)
    assert np.linalg.norm(backend.to_host(res.jac)) <= 1e-10
    assert backend.namespace(res.x) is xp
    # one evaluation at the start, then per step: l_mu and (l, g) at the new point
    assert res.nfev == calls["fun"] == 1 + 2 * res.nit
    assert res.njev == 1 + res.nit
    assert isinstance(res.fun, float)


def test_maxiter_and_callback_styles(xp):
    fun, *_ = _problem(xp)
    x0 = backend.from_host(np.zeros(5), xp)
    res = minimize(fun, x0, gtol=0.0, maxiter=3)
    assert not res.success and res.status == 1 and res.nit == 3
    seen = []
    res = minimize(fun, x0, gtol=0.0, maxiter=10, callback=lambda xk: seen.append(xk))
    assert len(seen) == 10
    res = minimize(fun, x0, gtol=0.0, maxiter=10,
                   callback=lambda intermediate_result: intermediate_result.nit >= 4)
    assert res.status == 99 and res.nit == 4

    def stop(intermediate_result):
        raise StopIteration

    assert minimize(fun, x0, gtol=0.0, maxiter=10, callback=stop).nit == 1


def test_separate_jac_and_args():
    A = np.diag([1.0, 2.0])
    res = minimize(lambda x, s: s * 0.5 * x @ A @ x, np.ones(2), (2.0,),
                   jac=lambda x, s: s * (A @ x), gtol=1e-12, beta="fr", alpha=1.0, mu=0.1)
    assert res.success and res.nit <= 4


def test_nonfinite_stops_with_last_finite_iterate():
    def fun(x):
        if x[0] < 0.5:
            return float("nan"), np.full_like(x, np.nan)
        return 0.5 * x @ x, x

    x0 = np.array([2.0, 1.0])
    res = minimize(fun, x0, gtol=1e-12, maxiter=50, alpha=1.0, beta=0.0)
    assert res.status == 3 and not res.success
    assert np.all(np.isfinite(res.x))


def test_argument_errors():
    f = lambda x: (0.0, x)  # noqa: E731
    with pytest.raises(ValueError, match="^jac:"):
        minimize(f, np.ones(2), jac=None)
    with pytest.raises(ValueError, match="^gtol:"):
        minimize(f, np.ones(2), gtol=-1.0)
    with pytest.raises(ValueError, match="^maxiter:"):
        minimize(f, np.ones(2), maxiter=-1)
    with pytest.raises(TypeError, match="^pal_options:"):
        minimize(f, np.ones(2), optimizer=PAL(), mu=0.1)
    with pytest.raises(TypeError, match="^x0: dtype"):
        minimize(f, np.ones(2, dtype=np.int64))
    with pytest.raises(TypeError, match="^fun:"):
        minimize(lambda x: 0.0, np.ones(2))
    with pytest.raises(ValueError, match="^mu:"):
        minimize(f, np.ones(2), mu=0.0)


def test_scipy_custom_method():
    rosen = scipy.optimize.rosen
    res = scipy.optimize.minimize(
        lambda x: (rosen(x), scipy.optimize.rosen_der(x)), np.array([-1.2, 1.0]), jac=True,
        method=scipy_method, tol=1e-6, options={"maxiter": 20000, "mu": 0.1},
    )
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-4)
    assert res.nfev > 0 and res.njev > 0
    with pytest.raises(ValueError, match="^bounds:"):
        scipy.optimize.minimize(rosen, np.zeros(2), jac=scipy.optimize.rosen_der,
                                method=scipy_method, bounds=[(0, 1), (0, 1)])
