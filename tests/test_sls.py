"""Tests of SLS (stochastic Armijo line search) and its Goldstein and Polyak variants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paltest import backend
from paltest.optimizers.base import NonFiniteError
from paltest.optimizers.sls import FALLBACK_LR, SLS, SLSInfo, SLSState
from paltest.optimizers.sls_variants import SLSGoldstein, SLSPolyak, SLSPolyakState


def least_squares(xp, seed=0, n=40, d=6):
    """A small least-squares objective 0.5/n ||X theta - y||^2 with a counting ``value``."""
    rng = np.random.default_rng(seed)
    X = backend.from_host(rng.standard_normal((n, d)), xp, dtype="float64")
    y = backend.from_host(rng.standard_normal(n), xp, dtype="float64")

    def f(theta):
        r = X @ theta - y
        return 0.5 * xp.vecdot(r, r) / n

    def value_and_grad(theta):
        r = X @ theta - y
        return 0.5 * xp.vecdot(r, r) / n, (r @ X) / n

    calls = []

    def value(theta):
        loss = f(theta)
        calls.append((backend.to_host(theta).copy(), float(backend.to_host(loss))))
        return loss

    theta0 = backend.from_host(rng.standard_normal(d) * 3, xp, dtype="float64")
    return theta0, value_and_grad, value, calls


def host(x):
    return np.asarray(backend.to_host(x), dtype=np.float64)


def rigged(xp, g_host, loss0=1.0, trial_loss=None):
    """``value_and_grad`` returning (loss0, g) everywhere and ``value`` returning
    ``trial_loss(theta)`` (counting its calls)."""
    g = backend.from_host(np.asarray(g_host, dtype=np.float64), xp)
    calls = []

    def value_and_grad(theta):
        return xp.asarray(loss0, dtype=xp.float64), g

    def value(theta):
        calls.append(host(theta))
        return xp.asarray(trial_loss(theta), dtype=xp.float64)

    return value_and_grad, value, calls


def run(opt, theta, vg, value, steps):
    state = opt.init(theta)
    out = []
    for _ in range(steps):
        theta_next, state, info = opt.step(theta, state, vg, value)
        out.append((theta, theta_next, state, info))
        theta = theta_next
    return out


# --------------------------------------------------------------------------- SLS


def test_every_accepted_step_satisfies_armijo(xp):
    theta, vg, value, calls = least_squares(xp)
    opt = SLS(n_batches_per_epoch=5)
    c, beta_b = opt.c, opt.beta_b
    eta = opt.init_step_size
    n_calls = 0
    for th, th_next, state, info in run(opt, theta, vg, value, 25):
        assert isinstance(state, SLSState) and isinstance(info, SLSInfo)
        assert not bool(info.nonfinite) and not info.fallback
        l0, g = vg(th)
        l0, g = float(host(l0)), host(g)
        gg = float(g @ g)
        lr = float(host(info.lr))
        # The search starts at the reset step size and shrinks by beta_b per trial.
        eta = eta * opt.gamma ** (1 / 5)
        assert info.n_trials >= 1
        assert lr == pytest.approx(eta * beta_b ** (info.n_trials - 1), rel=1e-12)
        trials = calls[n_calls:n_calls + info.n_trials]
        n_calls += info.n_trials
        assert info.n_fun == 1 + info.n_trials and info.n_grad == 1
        for j, (_, lt) in enumerate(trials):
            eta_j = eta * beta_b**j
            armijo = lt <= l0 - c * eta_j * gg
            assert armijo == (j == info.n_trials - 1)  # only the last trial is accepted
        # the accepted point is theta - lr g, and satisfies Armijo
        np.testing.assert_allclose(host(th_next), host(th) - lr * g, rtol=0, atol=1e-14)
        assert float(host(value(th_next))) <= l0 - c * lr * gg
        calls.pop()
        assert float(host(info.step)) == pytest.approx(lr * math.sqrt(gg), rel=1e-12)
        eta = state.step_size
        assert eta == lr
    assert n_calls == len(calls)
    assert float(host(vg(th_next)[0])) < float(host(vg(theta)[0]))


def test_reset_grows_by_gamma_per_epoch(xp):
    vg, value, calls = rigged(xp, [3.0, 4.0], loss0=1.0, trial_loss=lambda th: -1e9)
    theta = backend.from_host(np.zeros(2), xp)
    n_b = 4
    opt = SLS(n_batches_per_epoch=n_b, gamma=2.0, init_step_size=0.5)
    lrs = [float(host(info.lr)) for *_, info in run(opt, theta, vg, value, 3 * n_b)]
    for k, lr in enumerate(lrs, start=1):  # the reset happens before every step
        assert lr == pytest.approx(0.5 * 2.0 ** (k / n_b), rel=1e-12)
    assert lrs[2 * n_b - 1] / lrs[n_b - 1] == pytest.approx(2.0, rel=1e-12)  # x gamma per epoch
    assert len(calls) == 3 * n_b  # one trial each


def test_reset_options_and_eta_max(xp):
    vg, value, _ = rigged(xp, [1.0], trial_loss=lambda th: -1e9)
    theta = backend.from_host(np.zeros(1), xp)
    for option, expected in [(0, 0.3), (2, 0.3)]:
        opt = SLS(reset_option=option, init_step_size=0.3)
        assert [float(host(i.lr)) for *_, i in run(opt, theta, vg, value, 3)] == [expected] * 3
    opt = SLS(n_batches_per_epoch=1, gamma=10.0, eta_max=50.0)
    assert [float(host(i.lr)) for *_, i in run(opt, theta, vg, value, 3)] == [10.0, 50.0, 50.0]

    # Option 2 restarts at eta_0 after a shrink; option 0 keeps the shrunk value.
    def shrinking(th):  # accept only step sizes <= 0.5
        return -1.0 if float(host(th)[0]) >= -0.5 else 2.0

    vg, value, _ = rigged(xp, [1.0], trial_loss=shrinking)
    for option in (0, 2):
        opt = SLS(reset_option=option)
        state = opt.init(theta)
        _, state, info = opt.step(theta, state, vg, value)
        assert float(host(info.lr)) == pytest.approx(0.9**7, rel=1e-12)  # 0.478 <= 0.5
        assert info.n_trials == 8
        _, state, info = opt.step(theta, state, vg, value)
        assert info.n_trials == (1 if option == 0 else 8)


def test_fallback_when_armijo_never_holds(xp):
    g_host = [0.5, -2.0, 1.0]
    vg, value, calls = rigged(xp, g_host, loss0=1.0, trial_loss=lambda th: 2.0)
    theta = backend.from_host(np.array([1.0, 2.0, 3.0]), xp)
    opt = SLS(n_batches_per_epoch=3)
    state = opt.init(theta)
    theta_next, state, info = opt.step(theta, state, vg, value)
    assert info.fallback and info.n_trials == 100
    assert info.n_fun == 101 and info.n_grad == 1 and len(calls) == 100
    g = backend.from_host(np.asarray(g_host), xp)
    np.testing.assert_array_equal(host(theta_next), host(theta - 1e-6 * g))
    assert float(host(info.lr)) == FALLBACK_LR
    eta_reset = 2.0 ** (1 / 3)
    assert state.step_size == pytest.approx(eta_reset * 0.9**100, rel=1e-12)
    # the trials were theta - eta_reset * 0.9**j * g
    np.testing.assert_allclose(calls[-1], host(theta) - eta_reset * 0.9**99 * np.asarray(g_host),
                               rtol=1e-12)
    # a non-finite trial loss fails too (even -inf, which would pass the comparison)
    for bad in (math.nan, -math.inf):
        vg, value, calls = rigged(xp, g_host, trial_loss=lambda th, bad=bad: bad)
        _, _, info = SLS(n_batches_per_epoch=3, max_trials=7).step(theta, state, vg, value)
        assert info.fallback and info.n_trials == 7 and info.n_fun == 8


def test_tiny_gradient_no_update(xp):
    vg, value, calls = rigged(xp, [1e-9, 0.0], trial_loss=lambda th: -1e9)
    theta = backend.from_host(np.array([1.0, 1.0]), xp)
    opt = SLS(n_batches_per_epoch=2)
    theta_next, state, info = opt.step(theta, opt.init(theta), vg, value)
    assert theta_next is theta and not calls
    assert info.n_fun == 1 and info.n_trials == 0 and float(host(info.lr)) == 0.0
    assert state.step_size == pytest.approx(2.0**0.5)  # the reset still applies


@pytest.mark.parametrize("make", [
    lambda: SLS(n_batches_per_epoch=2),
    lambda: SLSGoldstein(),
    lambda: SLSPolyak(),
])
@pytest.mark.parametrize("bad", ["loss", "grad"])
def test_nonfinite_rule(xp, make, bad):
    g_host = [1.0, math.inf] if bad == "grad" else [1.0, 2.0]
    loss0 = math.nan if bad == "loss" else 1.0
    vg, value, calls = rigged(xp, g_host, loss0=loss0, trial_loss=lambda th: -1e9)
    theta = backend.from_host(np.array([0.25, -1.5]), xp)
    opt = make()
    state = opt.init(theta)
    theta_next, state_next, info = opt.step(theta, state, vg, value)
    np.testing.assert_array_equal(host(theta_next), host(theta))
    assert bool(info.nonfinite) and float(host(info.lr)) == 0.0 and not calls
    assert state_next is state
    opt.on_nonfinite = "raise"
    with pytest.raises(NonFiniteError):
        opt.step(theta, state, vg, value)


# --------------------------------------------------------------------- Goldstein


def test_goldstein_accepted_steps_satisfy_both_conditions(xp):
    theta, vg, value, calls = least_squares(xp, seed=1)
    opt = SLSGoldstein()
    c = opt.c
    for th, th_next, _, info in run(opt, theta, vg, value, 25):
        assert not info.fallback
        l0, g = vg(th)
        l0, g = float(host(l0)), host(g)
        gg, lr = float(g @ g), float(host(info.lr))
        ln = float(host(value(th_next)))
        assert l0 - (1 - c) * lr * gg <= ln <= l0 - c * lr * gg
        assert info.n_fun == 1 + info.n_trials


def test_goldstein_step_size_updates(xp):
    # f(t) = t^2 / 2 at t = 1 (g = 1): Armijo iff eta <= 1.8, curvature iff eta >= 0.2
    theta = backend.from_host(np.array([1.0]), xp)

    def f(th):
        return 0.5 * xp.sum(th * th)

    def vg(th):
        return f(th), th

    opt = SLSGoldstein(init_step_size=0.03)  # too small: doubled 0.03 0.06 0.12 0.24
    _, state, info = opt.step(theta, opt.init(theta), vg, f)
    assert info.n_trials == 4 and float(host(info.lr)) == pytest.approx(0.24)
    assert state.step_size == float(host(info.lr))
    opt = SLSGoldstein(init_step_size=5.0)  # too large: x0.9 until <= 1.8
    _, _, info = opt.step(theta, opt.init(theta), vg, f)
    assert info.n_trials == 11 and float(host(info.lr)) == pytest.approx(5 * 0.9**10)
    opt = SLSGoldstein(init_step_size=0.03, eta_max=0.1, max_trials=5)  # capped below 0.2
    theta_next, state, info = opt.step(theta, opt.init(theta), vg, f)
    assert info.fallback and info.n_trials == 5 and state.step_size == 0.1
    np.testing.assert_array_equal(host(theta_next), [1.0 - 1e-6])
    for bad in (math.nan, -math.inf):  # a non-finite trial counts as too large
        vg_r, value, _ = rigged(xp, [1.0], loss0=0.5, trial_loss=lambda th, bad=bad: bad)
        opt = SLSGoldstein(max_trials=3)
        _, state, info = opt.step(theta, opt.init(theta), vg_r, value)
        assert info.fallback and state.step_size == pytest.approx(0.9**3)


# ------------------------------------------------------------------------ Polyak


def test_polyak_momentum_hand_computed(xp):
    # f = 0.5 theta^T diag(1, 2) theta from (1, 1), eta = 0.25 always accepted:
    # theta1 = (0.75, 0.5); theta2 = theta1 - 0.25 g1 + 0.6 (theta1 - theta0)
    #        = (0.5625, 0.25) + 0.6 (-0.25, -0.5) = (0.4125, -0.05)
    a = backend.from_host(np.array([1.0, 2.0]), xp)

    def f(th):
        return 0.5 * xp.sum(a * th * th)

    def vg(th):
        return f(th), a * th

    opt = SLSPolyak(init_step_size=0.25)
    theta0 = backend.from_host(np.array([1.0, 1.0]), xp)
    state = opt.init(theta0)
    assert isinstance(state, SLSPolyakState)
    theta1, state, info1 = opt.step(theta0, state, vg, f)
    np.testing.assert_allclose(host(theta1), [0.75, 0.5], rtol=0, atol=1e-15)
    theta2, state, info2 = opt.step(theta1, state, vg, f)
    np.testing.assert_allclose(host(theta2), [0.4125, -0.05], rtol=0, atol=1e-15)
    assert info2.n_trials == 1 and float(host(info2.lr)) == 0.25
    assert float(host(info2.step)) == pytest.approx(math.hypot(0.4125 - 0.75, -0.05 - 0.5))
    np.testing.assert_array_equal(host(state.theta_prev), host(theta1))
    # with momentum 0 it is plain SLS (reset option 0)
    p = run(SLSPolyak(momentum=0.0), theta0, vg, f, 5)
    s = run(SLS(reset_option=0), theta0, vg, f, 5)
    for (_, tp, _, _), (_, ts, _, _) in zip(p, s, strict=True):
        np.testing.assert_array_equal(host(tp), host(ts))


# ------------------------------------------------------------- checks and parity


@pytest.mark.parametrize(("cls", "kwargs", "name"), [
    (SLS, {"c": 2}, "c"),
    (SLS, {"c": 0}, "c"),
    (SLS, {"beta_b": 1.0}, "beta_b"),
    (SLS, {"gamma": 0}, "gamma"),
    (SLS, {"init_step_size": -1}, "init_step_size"),
    (SLS, {"reset_option": 3, "n_batches_per_epoch": 2}, "reset_option"),
    (SLS, {"n_batches_per_epoch": 0}, "n_batches_per_epoch"),
    (SLS, {"n_batches_per_epoch": 2, "eta_max": 0}, "eta_max"),
    (SLS, {"n_batches_per_epoch": 2, "max_trials": 0}, "max_trials"),
    (SLS, {"n_batches_per_epoch": 2, "on_nonfinite": "ignore"}, "on_nonfinite"),
    (SLSGoldstein, {"c": 0.6}, "c"),
    (SLSGoldstein, {"beta_f": -2}, "beta_f"),
    (SLSPolyak, {"momentum": 1.0}, "momentum"),
])
def test_argument_errors_name_the_argument(cls, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        cls(**kwargs)


def test_types_and_dtype(xp):
    with pytest.raises(TypeError, match="^c:"):
        SLS(n_batches_per_epoch=1, c="big")
    with pytest.raises(TypeError, match="^max_trials:"):
        SLS(n_batches_per_epoch=1, max_trials=2.5)
    theta, vg, value, _ = least_squares(xp)
    theta32 = xp.astype(theta, xp.float32)

    def vg32(th):
        loss, g = vg(xp.astype(th, xp.float64))
        return xp.astype(loss, xp.float32), xp.astype(g, xp.float32)

    def value32(th):
        return xp.astype(value(xp.astype(th, xp.float64)), xp.float32)

    for opt in (SLS(n_batches_per_epoch=2), SLSGoldstein(), SLSPolyak()):
        out = run(opt, theta32, vg32, value32, 3)
        assert all(o[1].dtype == xp.float32 and o[3].lr.dtype == xp.float32 for o in out)
    assert "SLSGoldstein(" in repr(SLSGoldstein())


@pytest.mark.parametrize("make", [
    lambda: SLS(n_batches_per_epoch=3),
    lambda: SLSGoldstein(),
    lambda: SLSPolyak(),
])
def test_numpy_and_array_api_strict_agree(make):
    pytest.importorskip("array_api_strict")
    trajectories = []
    for name in ("numpy", "array_api_strict"):
        xp = backend.resolve_namespace(name)
        theta, vg, value, _ = least_squares(xp, seed=2)
        out = run(make(), theta, vg, value, 10)
        trajectories.append([(host(o[1]), o[3].n_trials, float(host(o[3].lr))) for o in out])
    for (ta, na, la), (tb, nb, lb) in zip(*trajectories, strict=True):
        np.testing.assert_allclose(ta, tb, rtol=1e-13, atol=1e-15)
        assert na == nb and la == lb


# --------------------------------------------------------------- issue 12 regressions


def test_default_n_batches_per_epoch_is_the_reference_packages(xp):
    """``SLS()`` works: reset option 1 assumes 500 batches per epoch (the authors' ``Sls``
    default), i.e. it is ``SLS(n_batches_per_epoch=500)`` step for step."""
    from paltest.optimizers.sls import DEFAULT_N_BATCHES_PER_EPOCH

    assert DEFAULT_N_BATCHES_PER_EPOCH == 500
    assert SLS().n_batches_per_epoch == 500 and SLS().hyperparameters["n_batches_per_epoch"] == 500
    assert SLSGoldstein(reset_option=1).n_batches_per_epoch == 500
    assert SLSPolyak(reset_option=1).n_batches_per_epoch == 500
    assert SLSGoldstein().n_batches_per_epoch is None  # reset option 0 does not use it
    theta, vg, value, _ = least_squares(xp)
    a = run(SLS(), theta, vg, value, 8)
    b = run(SLS(n_batches_per_epoch=500), theta, vg, value, 8)
    for (_, ta, sa, ia), (_, tb, sb, ib) in zip(a, b, strict=True):
        assert np.array_equal(host(ta), host(tb)) and sa == sb
        assert float(host(ia.lr)) == float(host(ib.lr))


@pytest.mark.parametrize("make", [lambda: SLS(), lambda: SLSGoldstein(), lambda: SLSPolyak()])
@pytest.mark.parametrize("bad", [1.0, (1.0,), (1.0, 2.0, 3.0), [1.0]])
def test_value_and_grad_that_is_not_a_pair_is_named(make, bad):
    """Issue 12 D3: not "cannot unpack non-iterable float" but an error naming it."""
    theta = np.array([1.0, 2.0])
    opt = make()
    with pytest.raises(TypeError, match="^value_and_grad: must return a .loss, grad. pair"):
        opt.step(theta, opt.init(theta), lambda th: bad, lambda th: 0.0)


@pytest.mark.parametrize("bad", [np.asarray(1.0 + 2.0j), np.asarray(True), np.bool_(False)])
def test_bool_or_complex_trial_loss_is_rejected(bad):
    """Issue 12 D2: a trial loss from ``value`` is checked like the start loss."""
    theta = np.array([1.0, 2.0])
    opt = SLS()
    with pytest.raises(TypeError, match="^loss: dtype"):
        opt.step(theta, opt.init(theta), lambda th: (float(th @ th), 2 * th), lambda th: bad)
