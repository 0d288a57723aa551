"""Tests of the PAL step (paltest.optimizers.pal.PAL)."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import PAL, NonFiniteError, PALState, backend


def _quadratic(xp, n=6, kappa=30.0, seed=0, dtype="float64"):
    """L(theta) = 1/2 theta' A theta - c' theta on xp, and A, c on the host."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = q @ np.diag(np.geomspace(1.0, kappa, n)) @ q.T
    A = 0.5 * (A + A.T)
    c = rng.standard_normal(n)
    Ax, cx = backend.from_host(A, xp, dtype=dtype), backend.from_host(c, xp, dtype=dtype)

    def value(t):
        return 0.5 * xp.vecdot(t, Ax @ t) - xp.vecdot(cx, t)

    def value_and_grad(t):
        return value(t), Ax @ t - cx

    return value_and_grad, value, A, c


def _h(x):
    return backend.to_host(x)


def test_defaults_are_the_authors():
    opt = PAL()
    assert opt.mu == 1.0 and opt.alpha == 1 / 0.6 and opt.beta == 0.4
    assert opt.s_max == 10**0.5


def test_step_moves_along_unit_direction(xp):
    vg, f, A, c = _quadratic(xp)
    theta = backend.from_host(np.ones(6), xp)
    opt = PAL(mu=0.5, alpha=1.3, beta=0.0)
    state = opt.init(theta)
    new, state, info = opt.step(theta, state, vg, f)
    g = A @ np.ones(6) - c
    dhat = -g / np.linalg.norm(g)
    s = float(_h(info.step))
    np.testing.assert_allclose(_h(new), np.ones(6) + s * dhat, rtol=1e-14, atol=1e-14)
    assert int(_h(info.case)) == 1
    # the learning rate is s / ||d||
    np.testing.assert_allclose(float(_h(info.lr)), s / np.linalg.norm(g), rtol=1e-14)
    # b is the exact directional derivative, l_mu the loss at the measuring point
    np.testing.assert_allclose(float(_h(info.b)), -np.linalg.norm(g), rtol=1e-14)
    th_mu = np.ones(6) + 0.5 * dhat
    np.testing.assert_allclose(
        float(_h(info.l_mu)), 0.5 * th_mu @ A @ th_mu - c @ th_mu, rtol=1e-14
    )
    assert info.n_fun == 2 and info.n_grad == 1


def test_direction_state_rule_with_beta(xp):
    vg, f, A, c = _quadratic(xp)
    beta = 0.4
    opt = PAL(mu=0.3, alpha=1.0, beta=beta)
    theta0 = np.linspace(-1, 1, 6)
    theta = backend.from_host(theta0, xp)
    state = opt.init(theta)
    theta1, state, _ = opt.step(theta, state, vg, f)
    # The gradients as xp computes them (its matrix product may round differently from
    # NumPy's): the first direction state is that gradient itself, bit for bit.
    g0 = _h(vg(theta)[1])
    assert _h(state.buf).tobytes() == g0.tobytes()
    theta2, state, info = opt.step(theta1, state, vg, f)
    t1 = _h(theta1)
    g1 = _h(vg(theta1)[1])
    buf = beta * g0 + g1
    np.testing.assert_allclose(_h(state.buf), buf, rtol=1e-13)
    n = np.linalg.norm(buf)
    np.testing.assert_allclose(float(_h(info.b)), -(g1 @ buf) / n, rtol=1e-12)
    s = float(_h(info.step))
    np.testing.assert_allclose(_h(theta2), t1 - s * buf / n, rtol=1e-13, atol=1e-15)


def test_non_descent_direction_keeps_theta_and_updates_state(xp):
    """b >= 0 (possible with beta > 0): theta unchanged bitwise, direction state updated."""
    theta = backend.from_host(np.array([0.3, -0.7]), xp)
    g = backend.from_host(np.array([-1.0, 0.0]), xp)
    opt = PAL(beta=0.4)
    state = PALState(buf=backend.from_host(np.array([10.0, 0.0]), xp), prev_grad=None)
    calls = []

    def value(t):
        calls.append(1)
        return xp.sum(t * t)

    new, new_state, info = opt.step(theta, state, lambda t: (xp.sum(t * t), g), value)
    # buf = 0.4 * [10, 0] + [-1, 0] = [3, 0]; b = -g.buf/|buf| = 1 > 0
    assert float(_h(info.b)) == 1.0
    assert int(_h(info.case)) == 0
    assert float(_h(info.step)) == 0.0 and float(_h(info.lr)) == 0.0
    np.testing.assert_array_equal(_h(new), _h(theta))
    np.testing.assert_array_equal(_h(new_state.buf), [3.0, 0.0])
    assert len(calls) == 1  # the measuring point is still evaluated (branch-free)


def test_zero_gradient_is_case_0(xp):
    theta = backend.from_host(np.array([1.0, 2.0]), xp)
    zero = xp.zeros_like(theta)
    opt = PAL(beta=0.0)
    new, state, info = opt.step(theta, opt.init(theta), lambda t: (xp.sum(t), zero), xp.sum)
    assert int(_h(info.case)) == 0
    np.testing.assert_array_equal(_h(new), _h(theta))
    assert not np.any(np.isnan(_h(state.buf)))


# Hand-computed conjugate formulas: g_prev = [1, 0], buf_prev = [1, 0] (d_prev = [-1, 0]),
# g = [0.5, 1], y = g - g_prev = [-0.5, 1]; d_prev . y = 0.5, |g|^2 = 1.25, g . y = 0.75.
CONJUGATE = {
    "fletcher-reeves": 1.25 / 1.0,
    "polak-ribiere": 0.75 / 1.0,
    "hestenes-stiefel": 0.75 / 0.5,
    "dai-yuan": 1.25 / 0.5,
}


@pytest.mark.parametrize("formula", sorted(CONJUGATE))
def test_conjugate_formulas_hand_example(xp, formula):
    theta = backend.from_host(np.array([0.0, 0.0]), xp)
    g = backend.from_host(np.array([0.5, 1.0]), xp)
    opt = PAL(beta=formula)
    prev = backend.from_host(np.array([1.0, 0.0]), xp)
    state = PALState(buf=prev, prev_grad=prev)
    _, new_state, info = opt.step(theta, state, lambda t: (xp.sum(t * t), g), xp.sum)
    beta = CONJUGATE[formula]
    assert float(_h(info.beta)) == pytest.approx(beta, rel=1e-15)
    np.testing.assert_allclose(_h(new_state.buf), beta * np.array([1.0, 0.0]) + [0.5, 1.0])
    np.testing.assert_array_equal(_h(new_state.prev_grad), [0.5, 1.0])


@pytest.mark.parametrize("formula", ["fr", "pr", "hs", "dy"])
def test_conjugate_formulas_restart_on_first_step(xp, formula):
    theta = backend.from_host(np.array([1.0, -2.0]), xp)
    opt = PAL(beta=formula)
    _, state, info = opt.step(theta, opt.init(theta), lambda t: (xp.sum(t * t), 2 * t),
                              lambda t: xp.sum(t * t))
    assert float(_h(info.beta)) == 0.0
    np.testing.assert_array_equal(_h(state.buf), [2.0, -4.0])


@pytest.mark.parametrize("formula", ["fletcher-reeves", "polak-ribiere", "hestenes-stiefel",
                                     "dai-yuan"])
def test_conjugate_gradient_terminates_on_quadratic(xp, formula):
    """With alpha = 1 PAL is linear CG: theta* within n + 2 steps (all four formulas)."""
    n = 8
    vg, f, A, c = _quadratic(xp, n=n, kappa=100.0, seed=3)
    theta_star = np.linalg.solve(A, c)
    theta = backend.from_host(np.zeros(n), xp)
    opt = PAL(mu=0.1, alpha=1.0, beta=formula, s_max=1e6)
    state = opt.init(theta)
    for _ in range(n + 2):
        theta, state, info = opt.step(theta, state, vg, f)
    g = A @ _h(theta) - c
    assert np.linalg.norm(g) <= 1e-9 * np.linalg.norm(c)
    np.testing.assert_allclose(_h(theta), theta_star, rtol=1e-8)


def test_curvature_independent_of_mu_and_cauchy_step(xp):
    """On a quadratic a = 1/2 d'Ad for every mu; beta = 0, alpha = 1 is the Cauchy step."""
    vg, f, A, c = _quadratic(xp, n=10, kappa=50.0, seed=1)
    theta0 = np.random.default_rng(7).standard_normal(10)
    theta = backend.from_host(theta0, xp)
    g = A @ theta0 - c
    dhat = -g / np.linalg.norm(g)
    a_true = 0.5 * dhat @ A @ dhat
    for mu in (1e-3, 1e-2, 0.1, 1.0, 10.0):
        opt = PAL(mu=mu, alpha=1.0, beta=0.0, s_max=1e6)
        new, _, info = opt.step(theta, opt.init(theta), vg, f)
        # a is a difference quotient: rounding ~ eps * |l| / mu^2
        tol = 1e-12 * (1 + abs(float(_h(info.l0)))) / mu**2
        assert abs(float(_h(info.a)) - a_true) <= tol * abs(a_true) + tol
        cauchy_lr = (g @ g) / (g @ A @ g)
        assert float(_h(info.lr)) == pytest.approx(cauchy_lr, rel=1e-9)
        np.testing.assert_allclose(_h(new), theta0 - cauchy_lr * g, rtol=1e-9, atol=1e-12)


def test_clipping_after_alpha(xp):
    vg, f, A, c = _quadratic(xp, n=4, kappa=2.0)
    theta = backend.from_host(np.full(4, 100.0), xp)
    opt = PAL(mu=1.0, alpha=1.5, beta=0.0, s_max=0.5)
    new, _, info = opt.step(theta, opt.init(theta), vg, f)
    assert bool(_h(info.clipped)) and float(_h(info.step)) == 0.5
    assert np.linalg.norm(_h(new) - _h(theta)) == pytest.approx(0.5, rel=1e-14)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns about the NaNs/Infs
@pytest.mark.parametrize("where", ["l0", "grad", "l_mu", "grad_overflow"])
def test_nonfinite_rule(xp, where):
    theta = backend.from_host(np.array([1.0, -2.0, 3.0]), xp)
    prev = backend.from_host(np.array([0.1, 0.2, 0.3]), xp)
    opt = PAL(beta=0.4)
    state = PALState(buf=prev, prev_grad=None)
    nan = float("nan")

    def vg(t):
        loss = xp.sum(t * t)
        g = 2 * t
        if where == "l0":
            loss = loss * nan
        elif where == "grad":
            g = xp.where(t > 2, xp.full_like(t, float("inf")), g)
        elif where == "grad_overflow":
            g = g * 1e300  # finite, but its norm overflows
        return loss, g

    def value(t):
        return xp.sum(t * t) * (nan if where == "l_mu" else 1.0)

    new, new_state, info = opt.step(theta, state, vg, value)
    assert int(_h(info.case)) == 3 and bool(_h(info.nonfinite))
    np.testing.assert_array_equal(_h(new), _h(theta))  # bitwise unchanged
    np.testing.assert_array_equal(_h(new_state.buf), _h(prev))  # state not poisoned
    for field in ("step", "lr"):
        assert float(_h(getattr(info, field))) == 0.0
    raising = PAL(beta=0.4, on_nonfinite="raise")
    with pytest.raises(NonFiniteError):
        raising.step(theta, state, vg, value)


def test_nonfinite_keeps_conjugate_state(xp):
    theta = backend.from_host(np.array([1.0, 2.0]), xp)
    opt = PAL(beta="fr")
    state = opt.init(theta)
    _, state, _ = opt.step(theta, state, lambda t: (xp.sum(t * t), 2 * t),
                           lambda t: xp.sum(t * t))
    def bad(t):
        return xp.sum(t * t), 2 * t * float("nan")

    _, state2, info = opt.step(theta, state, bad, lambda t: xp.sum(t * t))
    np.testing.assert_array_equal(_h(state2.prev_grad), _h(state.prev_grad))
    np.testing.assert_array_equal(_h(state2.buf), _h(state.buf))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mu": 0.0}, "mu"), ({"mu": -1.0}, "mu"), ({"mu": float("nan")}, "mu"),
        ({"mu": float("inf")}, "mu"), ({"alpha": 0.0}, "alpha"), ({"alpha": -2}, "alpha"),
        ({"alpha": float("inf")}, "alpha"), ({"s_max": 0.0}, "s_max"),
        ({"s_max": float("nan")}, "s_max"), ({"beta": 1.5}, "beta"), ({"beta": -0.1}, "beta"),
        ({"beta": "newton"}, "beta"), ({"beta": float("nan")}, "beta"),
        ({"eps": 0.0}, "eps"), ({"on_nonfinite": "ignore"}, "on_nonfinite"),
    ],
)
def test_invalid_hyperparameters_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        PAL(**kwargs)


def test_hyperparameter_types():
    with pytest.raises(TypeError, match="^mu:"):
        PAL(mu="1")
    with pytest.raises(TypeError, match="^alpha:"):
        PAL(alpha=True)


def test_bad_gradients_and_parameters(xp):
    theta = backend.from_host(np.ones(3), xp)
    opt = PAL()
    state = opt.init(theta)
    f = lambda t: xp.sum(t)  # noqa: E731
    with pytest.raises(ValueError, match="^grad: shape"):
        opt.step(theta, state, lambda t: (f(t), xp.ones(4, dtype=t.dtype)), f)
    with pytest.raises(TypeError, match="^grad: dtype"):
        opt.step(theta, state, lambda t: (f(t), xp.astype(t, xp.float32)), f)
    with pytest.raises(TypeError, match="^grad:"):
        opt.step(theta, state, lambda t: (f(t), [1.0, 1.0, 1.0]), f)
    with pytest.raises(TypeError, match="^theta: dtype"):
        opt.init(xp.ones(3, dtype=xp.int64))
    with pytest.raises(ValueError, match="^theta: must be a 1-D"):
        opt.init(xp.ones((3, 1), dtype=xp.float64))
    with pytest.raises(ValueError, match="^state:"):
        opt.step(theta, opt.init(xp.ones(2, dtype=xp.float64)), lambda t: (f(t), t), f)


def test_gradient_from_another_namespace_is_rejected():
    import array_api_strict as xs

    theta = np.ones(3)
    opt = PAL()
    with pytest.raises(TypeError, match="^grad:"):
        opt.step(theta, opt.init(theta), lambda t: (1.0, xs.ones(3, dtype=xs.float64)),
                 lambda t: 1.0)


def test_complex_parameters_rejected():
    with pytest.raises(TypeError, match="^theta: dtype"):
        PAL().init(np.ones(3, dtype=np.complex128))


def test_float32_stays_float32(xp):
    vg, f, _, _ = _quadratic(xp, dtype="float32")
    theta = backend.from_host(np.ones(6), xp, dtype="float32")
    opt = PAL(beta="pr")
    state = opt.init(theta)
    for _ in range(5):
        theta, state, info = opt.step(theta, state, vg, f)
    assert theta.dtype == xp.float32 and state.buf.dtype == xp.float32
    for field in ("l0", "l_mu", "a", "b", "step", "lr", "beta"):
        assert getattr(info, field).dtype == xp.float32, field


def test_python_float_losses_accepted(xp):
    theta = backend.from_host(np.array([3.0, 4.0]), xp)
    opt = PAL(beta=0.0, alpha=1.0, mu=0.5, s_max=10.0)
    h = lambda t: float(backend.to_host(xp.sum(t * t)))  # noqa: E731
    new, _, info = opt.step(theta, opt.init(theta), lambda t: (h(t), 2 * t), h)
    np.testing.assert_allclose(_h(new), [0.0, 0.0], atol=1e-14)  # exact for |x|^2
    assert info.l0.dtype == xp.float64


def _logistic_problem(xp, n=40, d=5, seed=0):
    """Mini-batch logistic regression: a non-quadratic objective for trajectory parity."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0).astype(np.float64)
    Xx, yx = backend.from_host(X, xp), backend.from_host(y, xp)
    batches = [backend.from_host(rng.permutation(n)[:10], xp, dtype="int64")
               for _ in range(200)]

    def bound(idx):
        Xb, yb = xp.take(Xx, idx, axis=0), xp.take(yx, idx, axis=0)

        def value(t):
            z = Xb @ t
            return xp.mean(xp.logaddexp(xp.zeros_like(z), z) - yb * z)

        def value_and_grad(t):
            z = Xb @ t
            p = 1.0 / (1.0 + xp.exp(-z))
            return value(t), (Xb.T @ (p - yb)) / Xb.shape[0]

        return value_and_grad, value

    return batches, bound


@pytest.mark.parametrize("beta", [0.4, "pr"])
def test_parity_numpy_array_api_strict(beta):
    """The same 200-step trajectory on NumPy and array-api-strict (1e-12 relative)."""
    trajectories = []
    for name in ("numpy", "array_api_strict"):
        xp = backend.resolve_namespace(name)
        batches, bound = _logistic_problem(xp)
        theta = backend.from_host(np.zeros(5), xp)
        opt = PAL(mu=0.5, beta=beta)
        state = opt.init(theta)
        traj = []
        for idx in batches:
            theta, state, info = opt.step(theta, state, *bound(idx))
            traj.append(backend.to_host(theta).copy())
        trajectories.append(np.array(traj))
    a, b = trajectories
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(a).max())


@pytest.mark.parametrize("beta", [0.0, 0.4, "fr", "hs"])
def test_no_host_transfer_on_the_device_path(beta, monkeypatch, forbid_value_reads):
    """On array-api-strict (the device code path) a step never converts a value to Python.

    Includes a step with a non-finite loss, where the selections keep theta and the state.
    """
    xp = backend.resolve_namespace("array_api_strict")
    assert not backend.on_host(xp)
    vg, f, _, _ = _quadratic(xp)
    calls = iter(range(10**6))

    def flaky_vg(t):  # the third evaluation is non-finite
        loss, grad = vg(t)
        return (loss * float("nan"), grad) if next(calls) == 2 else (loss, grad)

    opt = PAL(mu=0.5, beta=beta)
    theta = xp.ones(6, dtype=xp.float64)
    state = opt.init(theta)
    forbid_value_reads()
    for _ in range(5):
        theta, state, info = opt.step(theta, state, flaky_vg, f)
    monkeypatch.undo()
    assert np.all(np.isfinite(_h(theta)))


# --------------------------------------------------------------- issue 12 regressions


@pytest.mark.parametrize("bad", [np.array(["flag", "raise"]), ["flag"], None])
def test_on_nonfinite_array_is_named(bad):
    """Issue 12 D1: not "The truth value of an array ... is ambiguous"."""
    with pytest.raises(ValueError, match="^on_nonfinite: must be one of"):
        PAL(on_nonfinite=bad)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"beta": np.array(["fr", "pr"])}, "beta"), ({"beta": ["fr"]}, "beta"),
    ({"beta": np.complex128(0.4 + 1j)}, "beta"), ({"mu": np.complex128(1.0)}, "mu"),
    ({"alpha": np.array([1.0, 2.0])}, "alpha"), ({"s_max": np.True_}, "s_max"),
])
def test_array_complex_and_bool_hyperparameters_are_named(kwargs, name):
    """Issue 12 D1 (the same class of bug in the other arguments): never cast silently."""
    with pytest.raises(TypeError, match=rf"^{name}: expected a real number"):
        PAL(**kwargs)


@pytest.mark.parametrize("bad", [1.0, (1.0,), (1.0, np.ones(2), 0)])
def test_value_and_grad_that_is_not_a_pair_is_named(bad):
    """Issue 12 D3: an error naming ``value_and_grad``, not "cannot unpack ..."."""
    theta = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="^value_and_grad: must return a .loss, grad. pair"):
        PAL().step(theta, PAL().init(theta), lambda t: bad, lambda t: 0.0)


@pytest.mark.parametrize("bad", [np.asarray(1.0 + 2.0j), np.asarray(True), np.bool_(True)])
def test_bool_or_complex_measured_loss_is_rejected(bad):
    """Issue 12 D2: ``l_mu`` from ``value`` is checked like ``l_0``."""
    theta = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="^loss: dtype"):
        PAL().step(theta, PAL().init(theta), lambda t: (float(t @ t), 2 * t), lambda t: bad)
    with pytest.raises(TypeError, match="^loss: dtype"):
        PAL().step(theta, PAL().init(theta), lambda t: (bad, 2 * t), lambda t: 1.0)
