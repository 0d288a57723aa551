"""Tests of the exact (binary) line search baseline of the PAL paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_lines import magnitude

from paltest import backend
from paltest.optimizers.base import NonFiniteError
from paltest.optimizers.exact import ExactLineSearch, ExactLineSearchInfo, ExactLineSearchState


def host(x):
    return np.asarray(backend.to_host(x), dtype=np.float64)


def quadratic(xp, seed=0, d=5):
    """f = 0.5 th^T A th - b^T th with a random SPD A; ``value`` counts its calls."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((d, d))
    A_h = Q @ Q.T / d + np.diag(rng.uniform(0.5, 2.0, d))
    b_h = rng.standard_normal(d)
    A = backend.from_host(A_h, xp, dtype="float64")
    b = backend.from_host(b_h, xp, dtype="float64")

    def f(th):
        return 0.5 * xp.vecdot(th, A @ th) - xp.vecdot(b, th)

    def vg(th):
        return f(th), A @ th - b

    calls = []

    def value(th):
        calls.append(1)
        return f(th)

    theta0 = backend.from_host(rng.standard_normal(d) * 2, xp, dtype="float64")
    return theta0, vg, value, calls, A_h, b_h


def line_minimum(theta_h, A_h, b_h):
    """The exact minimizer s* of f(theta - s u), u = g / ||g||, and ||g||."""
    g = A_h @ theta_h - b_h
    gn = np.linalg.norm(g)
    u = g / gn
    return gn / (u @ A_h @ u), gn


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("h0", [1.0, 0.3])
def test_quadratic_step_is_exact_and_angle_is_90(xp, seed, h0):
    theta, vg, value, calls, A_h, b_h = quadratic(xp, seed)
    opt = ExactLineSearch(initial_step=h0, report_angle=True)
    state = opt.init(theta)
    assert isinstance(state, ExactLineSearchState)
    for _ in range(3):
        s_star, gn = line_minimum(host(theta), A_h, b_h)
        assert s_star < opt.max_extrapolation * h0
        del calls[:]
        theta_next, state, info = opt.step(theta, state, vg, value)
        assert isinstance(info, ExactLineSearchInfo)
        s = float(host(info.step))
        assert abs(s - s_star) <= h0 * 2.0**-19
        assert float(host(info.lr)) == pytest.approx(s / gn, rel=1e-12)
        assert abs(float(host(info.angle)) - 90.0) <= 0.01
        g = host(vg(theta)[1])
        np.testing.assert_allclose(host(theta_next), host(theta) - s * g / gn, atol=1e-14)
        assert float(host(info.loss_next)) == pytest.approx(float(host(vg(theta_next)[0])))
        assert float(host(info.loss_next)) < float(host(info.loss))
        # counts: one value_and_grad, n_extrapolation + 2 * 20 probes, one for the angle
        assert len(calls) == info.n_extrapolation + 40
        assert info.n_fun == 2 + len(calls) and info.n_grad == 2
        assert info.n_fun <= opt.max_evaluations
        theta = theta_next


def test_evaluation_count_never_exceeds_bound(xp):
    # Unbounded below along the line: extrapolation runs to its bound.
    ones = backend.from_host(-np.ones(3), xp)

    def f(th):
        return xp.sum(ones * th)

    def vg(th):
        return f(th), ones

    calls = []

    def value(th):
        calls.append(1)
        return f(th)

    theta = backend.from_host(np.zeros(3), xp)
    for kwargs in ({}, {"max_extrapolation": 7, "max_steps": 3, "report_angle": True},
                   {"max_extrapolation": 0, "max_steps": 0}):
        opt = ExactLineSearch(**kwargs)
        del calls[:]
        theta_next, _, info = opt.step(theta, opt.init(theta), vg, value)
        assert info.n_extrapolation == opt.max_extrapolation
        assert info.n_fun == opt.max_evaluations
        assert len(calls) == opt.max_extrapolation + 2 * opt.max_steps
        # the search went as far as it could: the extrapolation plus the bisection
        want = opt.max_extrapolation + (1 - 2.0**-opt.max_steps if opt.max_steps else 0.0)
        assert float(host(info.step)) == pytest.approx(want)
    assert opt.max_evaluations == 1  # nothing but value_and_grad

    # A flat line: the first extrapolation probe fails, the search stays put.
    def flat(th):
        calls.append(1)
        return xp.asarray(3.0, dtype=xp.float64)

    del calls[:]
    opt = ExactLineSearch(max_steps=4, report_angle=True)
    theta_next, _, info = opt.step(theta, opt.init(theta), lambda th: (3.0, ones), flat)
    assert theta_next is theta and len(calls) == 1 + 8 and info.n_fun == 10
    assert float(host(info.angle)) == pytest.approx(180.0) and info.n_grad == 1
    assert float(host(info.lr)) == 0.0


def test_may_end_behind_start_only_if_lower(xp):
    # 1-D f(t) = (t + 0.3)^2 / 2 at t = 0 with a wrong gradient pointing away (g = -1):
    # the direction is +1, the minimum is behind the start at s = -0.3.
    def f(th):
        return 0.5 * xp.sum((th + 0.3) ** 2)

    g_wrong = backend.from_host(np.array([-1.0]), xp)
    theta = backend.from_host(np.array([0.0]), xp)
    opt = ExactLineSearch()
    theta_next, _, info = opt.step(theta, opt.init(theta), lambda th: (f(th), g_wrong), f)
    s = float(host(info.step))
    assert s < 0 and abs(s + 0.3) <= 2.0**-19
    assert float(host(info.loss_next)) < float(host(info.loss))
    assert float(host(info.lr)) == pytest.approx(s)

    # minimum exactly at the start: no probe is lower, theta comes back as is
    def g_at_min(th):
        return f(th), backend.from_host(np.array([1.0]), xp)

    start = backend.from_host(np.array([-0.3]), xp)
    theta_next, _, info = opt.step(start, opt.init(start), g_at_min, f)
    assert theta_next is start and float(host(info.step)) == 0.0


def test_nonfinite_rule(xp):
    theta, vg, value, calls, *_ = quadratic(xp)

    def bad_loss(th):
        return xp.asarray(math.nan, dtype=xp.float64), vg(th)[1]

    def bad_grad(th):
        return vg(th)[0], vg(th)[1] * math.inf

    for bad in (bad_loss, bad_grad):
        opt = ExactLineSearch(report_angle=True)
        state = opt.init(theta)
        theta_next, state_next, info = opt.step(theta, state, bad, value)
        np.testing.assert_array_equal(host(theta_next), host(theta))
        assert bool(info.nonfinite) and info.n_fun == 1 and not calls
        assert math.isnan(float(host(info.angle)))
        with pytest.raises(NonFiniteError):
            ExactLineSearch(on_nonfinite="raise").step(theta, state, bad, value)

    # non-finite probes are never moved to: f is NaN or -inf beyond t = 0.7 (minimum at 1)
    for bad in (math.nan, -math.inf):
        def f(th, bad=bad):
            v = 0.5 * xp.sum((th - 1.0) ** 2)
            return xp.where(th[0] > 0.7, xp.asarray(bad, dtype=xp.float64), v)

        def vg1(th, f=f):
            return f(th), th - 1.0

        t0 = backend.from_host(np.array([0.0]), xp)
        opt = ExactLineSearch()
        theta_next, _, info = opt.step(t0, opt.init(t0), vg1, f)
        assert not bool(info.nonfinite)
        assert abs(float(host(theta_next)[0]) - 0.7) <= 2.0**-19
        assert math.isfinite(float(host(info.loss_next)))


def test_zero_gradient(xp):
    zero = backend.from_host(np.zeros(2), xp)
    calls = []
    opt = ExactLineSearch(report_angle=True)
    theta_next, _, info = opt.step(zero, opt.init(zero), lambda th: (1.0, zero),
                                   lambda th: calls.append(1))
    assert theta_next is zero and not calls and info.n_fun == 1
    assert not bool(info.nonfinite) and math.isnan(float(host(info.angle)))


@pytest.mark.parametrize(("kwargs", "name", "err"), [
    ({"initial_step": 0}, "initial_step", ValueError),
    ({"initial_step": math.inf}, "initial_step", ValueError),
    ({"max_steps": -1}, "max_steps", ValueError),
    ({"max_steps": 2.0}, "max_steps", TypeError),
    ({"max_extrapolation": -3}, "max_extrapolation", ValueError),
    ({"report_angle": 1}, "report_angle", TypeError),
    ({"on_nonfinite": "warn"}, "on_nonfinite", ValueError),
])
def test_argument_errors_name_the_argument(kwargs, name, err):
    with pytest.raises(err, match=f"^{name}:"):
        ExactLineSearch(**kwargs)


def test_float32(xp):
    theta, vg, value, *_ = quadratic(xp)

    def vg32(th):
        loss, g = vg(xp.astype(th, xp.float64))
        return xp.astype(loss, xp.float32), xp.astype(g, xp.float32)

    def value32(th):
        return xp.astype(value(xp.astype(th, xp.float64)), xp.float32)

    theta32 = xp.astype(theta, xp.float32)
    opt = ExactLineSearch(report_angle=True)
    theta_next, _, info = opt.step(theta32, opt.init(theta32), vg32, value32)
    assert theta_next.dtype == xp.float32 and info.angle.dtype == xp.float32
    assert float(host(info.loss_next)) < float(host(info.loss))
    assert "ExactLineSearch(initial_step=1.0" in repr(opt)


def test_numpy_and_array_api_strict_agree():
    pytest.importorskip("array_api_strict")
    trajectories = []
    for name in ("numpy", "array_api_strict"):
        xp = backend.resolve_namespace(name)
        theta, vg, value, *_ = quadratic(xp, seed=7)
        opt = ExactLineSearch(report_angle=True)
        state = opt.init(theta)
        traj = []
        for _ in range(5):
            theta, state, info = opt.step(theta, state, vg, value)
            traj.append((host(theta), float(host(info.step)), float(host(info.angle)),
                         info.n_fun))
        trajectories.append(traj)
    for (ta, sa, aa, na), (tb, sb, ab, nb) in zip(*trajectories, strict=True):
        np.testing.assert_allclose(ta, tb, rtol=1e-13, atol=1e-15)
        assert sa == sb and na == nb and aa == pytest.approx(ab, abs=1e-9)


# --------------------------------------------------------------- issue 12 regressions


@pytest.mark.parametrize("bad", [1.0, (1.0,), (1.0, np.ones(2), 0)])
def test_value_and_grad_that_is_not_a_pair_is_named(bad):
    """Issue 12 D3, at the start of the step and at the angle's second evaluation."""
    theta = np.array([1.0, 2.0])
    opt = ExactLineSearch(report_angle=True, max_steps=3)
    f = lambda t: float(t @ t)  # noqa: E731
    with pytest.raises(TypeError, match="^value_and_grad: must return a .loss, grad. pair"):
        opt.step(theta, opt.init(theta), lambda t: bad, f)
    calls = []

    def second_call_bad(t):
        calls.append(1)
        return (f(t), 2 * t) if len(calls) == 1 else bad

    with pytest.raises(TypeError, match="^value_and_grad: must return a .loss, grad. pair"):
        opt.step(theta, opt.init(theta), second_call_bad, f)
    assert len(calls) == 2


def test_complex_probe_loss_is_rejected():
    """Issue 12 D2: a probe's loss from ``value`` is checked like the start loss."""
    theta = np.array([1.0, 2.0])
    opt = ExactLineSearch(max_steps=2)
    with pytest.raises(TypeError, match="^loss: dtype"):
        opt.step(theta, opt.init(theta), lambda t: (float(t @ t), 2 * t),
                 lambda t: np.asarray(float(t @ t) + 0j))


@pytest.mark.parametrize(("name", "dtype"), [("mf-rank4", "float32"), ("mf-rank4", "float64"),
                                             ("least-squares", "float64")])
def test_cheap_line_takes_the_direct_steps(xp, name, dtype):
    """With ``value.line`` (a cheap line) the search ends where the direct path does.

    Each step starts both paths from the same ``theta`` (the direct path's). The probes
    differ by rounding only (tests/test_lines.py bounds it: ``2 (n + 8) u M``) and the
    trial points are the same grid, so the paths take the same branches unless two probes
    tie within that rounding; where a branch flips, both points lie within the probes'
    rounding of each other in loss. So the returned losses are asserted to agree within
    twice the probe bound at the two returned points plus ``64 u |l0|`` (the loss's own
    rounding near a flat minimum). Whether the steps are bitwise equal depends on the
    BLAS's summation order and is not asserted. ``n_fun`` is the same on both paths and
    ``n_line`` counts the cheap probes.
    """
    from problems import registry
    from problems.quadratic import make_least_squares

    p = (registry.get(name, xp=xp, dtype=dtype) if name.startswith("mf-")
         else make_least_squares(n_rows=60, n_cols=7, xp=xp, dtype=dtype))
    opt = ExactLineSearch()
    theta = p.init_params(3)
    batches = [b for e in range(5) for b in p.batches(e, 0, max(1, p.n_train // 4))][:10]
    u = float(np.finfo(dtype).eps) / 2
    for batch in batches:
        vg, value = p.bind(batch)
        assert callable(getattr(value, "line", None))
        th_c, _, ic = opt.step(theta, opt.init(theta), vg, value)
        th_d, _, idr = opt.step(theta, opt.init(theta), vg, lambda t, v=value: v(t))
        assert ic.n_fun == idr.n_fun and ic.n_line == ic.n_fun - 1 and idr.n_line == 0
        l0 = abs(float(host(idr.loss)))
        zero, s0 = p.xp.zeros_like(theta), np.zeros(1)
        (n, m_c), (_, m_d) = (magnitude(p, th, zero, batch, s0) for th in (th_c, th_d))
        bound = 4 * (n + 8) * u * max(float(m_c[0]), float(m_d[0])) + 64 * u * l0
        assert abs(float(host(ic.loss_next)) - float(host(idr.loss_next))) <= bound
        assert host(theta).tobytes() != host(th_d).tobytes()  # it moved
        theta = th_d
