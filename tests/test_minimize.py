"""Tests of the SciPy-style driver (paltest.minimize, paltest.scipy_method)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from paltest import PAL, SGD, backend, minimize, scipy_method


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
    with pytest.raises(ValueError, match="^jac: 'cs' is not supported"):
        minimize(f, np.ones(2), jac="cs")
    with pytest.raises(ValueError, match="^gtol:"):
        minimize(f, np.ones(2), gtol=-1.0)
    with pytest.raises(ValueError, match="^maxiter:"):
        minimize(f, np.ones(2), maxiter=-1)
    with pytest.raises(TypeError, match="^pal_options:"):
        minimize(f, np.ones(2), optimizer=PAL(), mu=0.1)
    strict = backend.resolve_namespace("array_api_strict")
    with pytest.raises(TypeError, match="^x0: dtype"):  # another namespace: not converted
        minimize(f, strict.ones(2, dtype=strict.int64))
    with pytest.raises(TypeError, match="^x0: expected real numbers"):
        minimize(f, [True, False])
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


# --------------------------------------------------------------- issue 12 regressions


def test_one_element_loss_is_accepted_as_a_step_accepts_it():
    """D4: a 1-element loss crashed in backend.to_float although step() accepts it."""
    res = minimize(lambda x: (np.array([x @ x]), 2 * x), np.ones(2), gtol=1e-10)
    ref = minimize(lambda x: (x @ x, 2 * x), np.ones(2), gtol=1e-10)
    assert res.success and isinstance(res.fun, float)
    assert res.fun == ref.fun and np.array_equal(res.x, ref.x) and res.nit == ref.nit


@pytest.mark.parametrize("bad", [np.asarray(1 + 2j), np.asarray(True)])
def test_bool_or_complex_loss_names_fun(bad):
    with pytest.raises(TypeError, match="^fun: returned an invalid loss; loss: dtype"):
        minimize(lambda x: (bad, 2 * x), np.ones(2))


def test_zero_d_x0_works_as_in_scipy():
    """D4: a 0-d x0 through scipy.optimize.minimize (SciPy hands over shape (1,), so fun
    returns a 1-element loss) and directly: treated as shape (1,), x returned 1-D."""
    def fun(x):
        return (x - 3.0) ** 2, 2.0 * (x - 3.0)

    res = scipy.optimize.minimize(fun, np.array(1.0), jac=True, method=scipy_method,
                                  options={"gtol": 1e-10, "beta": 0.0, "alpha": 1.0})
    bfgs = scipy.optimize.minimize(fun, np.array(1.0), jac=True, method="BFGS")
    assert res.success and res.x.shape == bfgs.x.shape == (1,)
    np.testing.assert_allclose(res.x, [3.0], rtol=1e-12)
    direct = minimize(fun, np.array(1.0), gtol=1e-10, beta=0.0, alpha=1.0)
    assert direct.success and direct.x.shape == (1,) and np.array_equal(direct.x, res.x)


def test_nonfinite_returns_the_last_finite_iterate_and_its_value():
    """D5: fun is NaN for x[0] < 0.95; SGD(lr=0.1) from ones(2) steps to 0.8: the result
    is the last finite iterate ones(2) with its value and gradient, not x = 0.8, fun NaN."""
    def fun(x):
        if x[0] < 0.95:
            return np.nan, np.full_like(x, np.nan)
        return x @ x, 2 * x

    res = minimize(fun, np.ones(2), optimizer=SGD(lr=0.1), maxiter=10)
    assert res.status == 3 and not res.success
    assert np.array_equal(res.x, np.ones(2)) and res.fun == 2.0
    assert np.array_equal(res.jac, 2 * np.ones(2))
    assert res.nit == 1 and res.nfev == 2 and "last finite iterate" in res.message


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_fun_at_x0_takes_no_step(bad):
    """D6: an infinite fun at x0 took a step (nit=1) while NaN did not."""
    res = minimize(lambda x: (bad, 2 * x), np.ones(2))
    assert res.status == 3 and res.nit == 0 and res.nfev == 1
    assert np.array_equal(res.x, np.ones(2)) and "x0" in res.message
    res = minimize(lambda x: (x @ x, np.full_like(x, bad)), np.ones(2))
    assert res.status == 3 and res.nit == 0


def test_callback_must_be_callable_up_front():
    """D6: callback=5 failed only after the first step ("'int' object is not callable")."""
    calls = []

    def fun(x):
        calls.append(1)
        return x @ x, 2 * x

    with pytest.raises(TypeError, match="^callback: expected a callable"):
        minimize(fun, np.ones(2), callback=5)
    assert calls == []


def test_optimizer_by_registry_name():
    """D6: optimizer="pal" (a registry name) gave AttributeError ('str' has no 'init')."""
    fun = lambda x: (x @ x, 2 * x)  # noqa: E731
    by_name = minimize(fun, np.ones(2), optimizer="pal", mu=0.5, gtol=1e-10)
    by_object = minimize(fun, np.ones(2), optimizer=PAL(mu=0.5), gtol=1e-10)
    assert by_name.success and np.array_equal(by_name.x, by_object.x)
    assert minimize(fun, np.ones(2), optimizer="sls", gtol=1e-8).success  # SLS defaults
    sgd = minimize(fun, np.ones(2), optimizer="sgd", lr=0.25, maxiter=3, gtol=0.0)
    assert np.allclose(sgd.x, 0.5**3)
    with pytest.raises(ValueError, match="^optimizer: unknown name 'nope'"):
        minimize(fun, np.ones(2), optimizer="nope")
    with pytest.raises(TypeError, match="^optimizer 'sgd': unknown hyperparameter"):
        minimize(fun, np.ones(2), optimizer="sgd", mu=0.1)
    for bad in (5, object(), PAL):
        with pytest.raises(TypeError, match="^optimizer: expected a registry name"):
            minimize(fun, np.ones(2), optimizer=bad)


# ------------------------------------------------- audit 2: SciPy's conventions


def _bowl(x):
    return float((x[0] - 1.0) ** 2 + 3.0 * (x[1] + 2.0) ** 2)


@pytest.mark.parametrize("x0", [[0, 0], (0.0, 0), np.array([0, 0])])
def test_a_list_or_int_start_is_taken_as_scipy_takes_it(x0):
    """``paltest.minimize`` refused a list or an int x0, which SciPy accepts (a float64
    array); the result is then a 1-D float64 NumPy array, as from SciPy."""
    res = minimize(lambda x: (_bowl(x), np.array([2 * (x[0] - 1), 6 * (x[1] + 2)])), x0,
                   gtol=1e-8, alpha=1.0, beta=0.0)
    assert res.success and res.x.dtype == np.float64 and res.x.shape == (2,)
    np.testing.assert_allclose(res.x, [1.0, -2.0], atol=1e-7)
    one = minimize(lambda x: (float((x[0] - 3) ** 2), 2 * (x - 3)), 1, gtol=1e-8)
    assert one.x.shape == (1,) and abs(one.x[0] - 3) < 1e-6


@pytest.mark.parametrize(("jac", "calls"), [(None, 1), (False, 1), ("2-point", 1),
                                            ("3-point", 2)])
def test_finite_difference_gradients_as_in_scipy(jac, calls):
    """``jac=None``/``"2-point"`` raised (PAL needs a gradient); they are estimated by
    finite differences with SciPy's steps, each gradient counting 1 + n (or 1 + 2n)
    evaluations of fun, as SciPy counts them."""
    res = minimize(_bowl, [0.0, 0.0], jac=jac, tol=1e-6, alpha=1.0, beta=0.0)
    assert res.success
    np.testing.assert_allclose(res.x, [1.0, -2.0], atol=1e-6)
    assert res.nfev == res.njev * (1 + calls * 2) + res.nit  # + PAL's measuring point


def test_scipy_options_disp_and_tol(capsys):
    """``options={"disp": True}`` was a TypeError from PAL's constructor and ``tol=`` was
    unknown to paltest.minimize; disp prints SciPy's summary, tol sets gtol."""
    res = scipy.optimize.minimize(_bowl, [0, 0], method=scipy_method, tol=1e-6,
                                  options={"disp": True, "alpha": 1.0, "beta": 0.0})
    out = capsys.readouterr().out
    assert res.success and out.startswith("Optimization terminated successfully")
    assert f"Iterations: {res.nit}" in out and f"Function evaluations: {res.nfev}" in out
    loose = minimize(_bowl, [0.0, 0.0], jac="3-point", tol=1e-1, alpha=1.0, beta=0.0)
    tight = minimize(_bowl, [0.0, 0.0], jac="3-point", tol=1e-8, alpha=1.0, beta=0.0)
    assert loose.nit < tight.nit and np.linalg.norm(loose.jac) <= 1e-1
    first = minimize(_bowl, [0.0, 0.0], jac="3-point", tol=1e-8, gtol=1e-1, alpha=1.0,
                     beta=0.0)
    assert first.nit == loose.nit  # gtol wins over tol, as options do in SciPy
    with pytest.raises(TypeError, match=r"^options: \['bogus'\] are neither options of "):
        minimize(_bowl, [0.0, 0.0], jac="2-point", bogus=1)
    with pytest.raises(TypeError, match="^disp: expected a bool"):
        minimize(_bowl, [0.0, 0.0], jac="2-point", disp="yes")
