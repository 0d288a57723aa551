"""paltest.optimizers.pal_relative: PAL with mu relative to its previous step."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import PAL
from paltest.optimizers.base import host_reads
from paltest.optimizers.pal_relative import RelativeMuPAL
from paltest.testing import check_optimizer


def _quadratic(diag):
    a = np.asarray(diag, dtype=np.float64)

    def value(x):
        return 0.5 * float(x @ (a * x))

    return value, lambda x: (value(x), a * x)


def test_first_step_is_pals_and_mu_follows_the_rule():
    value, vg = _quadratic([1.0, 10.0, 100.0])
    x = np.array([1.0, -2.0, 0.5])
    opt = RelativeMuPAL(rho=0.5, mu=0.3, alpha=1.0, beta=0.0, s_max=100.0)
    ref = PAL(mu=0.3, alpha=1.0, beta=0.0, s_max=100.0)
    s_opt, s_ref = opt.init(x), ref.init(x)
    assert s_opt.mu == 0.3
    xa, s_opt, info = opt.step(x, s_opt, vg, value)
    xb, _, info_b = ref.step(x, s_ref, vg, value)
    assert xa.tobytes() == xb.tobytes()   # the first step is PAL's, bitwise
    assert int(info.case) == 1 and s_opt.mu == 0.5 * float(info.step)
    # the second step measures at mu = rho * s_1: the same as PAL built with that mu
    ref2 = PAL(mu=s_opt.mu, alpha=1.0, beta=0.0, s_max=100.0)
    xc, s_opt2, _ = opt.step(xa, s_opt, vg, value)
    xd, _, _ = ref2.step(xa, s_opt.pal, vg, value)
    assert xc.tobytes() == xd.tobytes()
    assert opt.pal.mu == 0.3   # the wrapped PAL itself is not changed


def test_case_2_grows_mu_and_the_bounds_hold():
    # a concave line (no minimum ahead): case 2, s = mu, mu grows by `grow` up to mu_max
    def value(x):
        return -float(x @ x)

    def vg(x):
        return value(x), -2.0 * x

    opt = RelativeMuPAL(grow=3.0, mu=1.0, mu_max=5.0, s_max=10.0)
    x = np.array([1.0, 0.0])
    state = opt.init(x)
    mus = []
    for _ in range(3):
        x, state, info = opt.step(x, state, vg, value)
        assert int(info.case) == 2
        mus.append(state.mu)
    assert mus == [3.0, 5.0, 5.0]


def test_no_move_keeps_mu():
    value, vg = _quadratic([1.0, 1.0])
    opt = RelativeMuPAL(mu=0.7)
    x = np.zeros(2)   # zero gradient: case 0, no move
    state = opt.init(x)
    x2, state2, info = opt.step(x, state, vg, value)
    assert int(info.case) == 0 and state2.mu == 0.7 and x2.tobytes() == x.tobytes()


def test_arguments_and_records():
    with pytest.raises(ValueError, match="rho"):
        RelativeMuPAL(rho=0.0)
    with pytest.raises(ValueError, match="mu_min"):
        RelativeMuPAL(mu_min=10.0, mu_max=1.0)
    with pytest.raises(ValueError, match="alpha"):
        RelativeMuPAL(alpha=-1.0)
    opt = RelativeMuPAL(beta="polak-ribiere", s_max=1e6)
    hp = opt.hyperparameters
    assert hp["beta"] == "polak-ribiere" and hp["mu_max"] == 1e6 and hp["rho"] == 1.0
    assert "host" in host_reads(opt)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_protocol_invariants(xp, dtype):
    # non-finite values leave theta unchanged, namespace/dtype kept, no mutation,
    # deterministic, descent on convex quadratics, the counts of its calls
    check_optimizer(lambda: RelativeMuPAL(beta="polak-ribiere", alpha=1.0, s_max=1e3),
                    xp=xp, dtype=dtype, max_examples=10)


def test_monotone_rejects_a_step_that_raised_the_loss():
    # The next step sees a higher loss, returns to the accepted point, restarts PAL's
    # direction and shrinks mu to shrink * s.
    # f = log(1 + x^2): at x = 1 the curvature is 0, so the parabola through a small mu
    # is nearly flat and its minimum lies far beyond the line's (at s = 1)
    def value(x):
        return float(np.sum(np.log1p(x**2)))

    def vg(x):
        return value(x), 2.0 * x / (1.0 + x**2)

    opt = RelativeMuPAL(monotone=True, shrink=0.25, mu=0.1, alpha=1.0, beta=0.0, s_max=100.0)
    x0 = np.array([1.0])
    state = opt.init(x0)
    x1, state, info = opt.step(x0, state, vg, value)
    assert int(info.case) == 1 and value(x1) > value(x0)      # the overshoot
    assert state.anchor is x0 and state.anchor_loss == value(x0)
    s1 = float(info.step)
    x2, state2, info2 = opt.step(x1, state, vg, value)
    assert x2 is x0 and int(info2.case) == 0 and float(info2.step) == 0.0
    assert state2.mu == pytest.approx(0.25 * s1) and not np.any(state2.pal.buf)
    x, state = x2, state2   # from the anchor again: mu shrinks until a step decreases
    for _ in range(13):
        x, state, info = opt.step(x, state, vg, value)
        assert value(x) <= value(x0) or state.anchor_loss <= value(x0)
    assert value(x) < 1e-12 < value(x0)


def test_monotone_counts_one_evaluation_of_the_current_point():
    calls = []
    value0, vg0 = _quadratic([1.0, 10.0])

    def vg(x):
        calls.append("vg")
        return vg0(x)

    def value(x):
        calls.append("f")
        return value0(x)

    opt = RelativeMuPAL(monotone=True, mu=0.5, alpha=1.0, beta="polak-ribiere", s_max=10.0)
    x = np.array([1.0, 1.0])
    state = opt.init(x)
    x, state, info = opt.step(x, state, vg, value)
    assert calls == ["vg", "f"] and (info.n_fun, info.n_grad) == (2, 1)


def test_monotone_shrinks_mu_after_a_nonfinite_probe():
    def value(x):
        return float(x @ x) if abs(x[0]) < 2.0 else float("inf")

    def vg(x):
        return value(x), 2.0 * x

    opt = RelativeMuPAL(monotone=True, shrink=0.5, mu=8.0, alpha=1.0, s_max=100.0)
    assert opt.recovers_from_nonfinite and not RelativeMuPAL().recovers_from_nonfinite
    x = np.array([1.0, 0.0])
    state = opt.init(x)
    x1, state, info = opt.step(x, state, vg, value)
    assert bool(info.nonfinite) and x1.tobytes() == x.tobytes() and state.mu == 4.0
    with pytest.raises(ValueError, match="shrink"):
        RelativeMuPAL(monotone=True, shrink=1.0)


def test_monotone_protocol_invariants(xp):
    # all but "nonfinite": a non-finite loss at the current point sends it back to the
    # accepted point by design (tested below)
    check_optimizer(lambda: RelativeMuPAL(monotone=True, beta="polak-ribiere", alpha=1.0),
                    xp=xp, dtype="float64", max_examples=10, skip=("nonfinite",))


def test_monotone_nonfinite_point_goes_back_to_the_anchor():
    value0, vg0 = _quadratic([1.0, 4.0])
    opt = RelativeMuPAL(monotone=True, mu=0.5, alpha=1.0, s_max=10.0)
    x0 = np.array([1.0, 1.0])
    state = opt.init(x0)
    x1, state, _ = opt.step(x0, state, vg0, value0)
    bad = np.full(2, np.nan)

    def vg(x):
        return (float("nan"), bad) if x is x1 else vg0(x)

    x2, state2, info = opt.step(x1, state, vg, value0)
    assert x2 is x0 and bool(info.nonfinite) and int(info.case) == 3
    assert state2.anchor is x0


def _rosenbrock():
    def value(x):
        return float(100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2)

    def vg(x):
        g = np.array([-400.0 * x[0] * (x[1] - x[0] ** 2) - 2.0 * (1.0 - x[0]),
                      200.0 * (x[1] - x[0] ** 2)])
        return value(x), g

    return value, vg


@pytest.mark.parametrize("monotone", [False, True])
def test_powell_restarts_exactly_when_the_test_says(monotone):
    """With ``powell=nu`` each step is the plain wrapper's step from the same state, or,
    when |g_t . g_{t-1}| >= nu ||g_t||^2, from a fresh PAL state (direction -g_t);
    bitwise, with the same evaluations."""
    value, vg = _rosenbrock()
    kw = {"beta": "hestenes-stiefel", "alpha": 1.0, "s_max": 1e6, "monotone": monotone}
    with_p, plain = RelativeMuPAL(powell=0.1, **kw), RelativeMuPAL(**kw)
    calls = []

    def counted(x):
        calls.append(1)
        return vg(x)

    x = np.array([-1.2, 1.0])
    state = with_p.init(x)
    restarts = kept = 0
    for _ in range(40):
        g, prev = vg(x)[1], state.pal.prev_grad
        restart = abs(g @ prev) >= 0.1 * (g @ g) > 0.0
        ref_state = state._replace(pal=plain.pal.init(x)) if restart else state
        xr, sr, _ = plain.step(x, ref_state, vg, value)
        calls.clear()
        x2, state2, info = with_p.step(x, state, counted, value)
        assert x2.tobytes() == xr.tobytes() and state2.mu == sr.mu
        assert len(calls) == info.n_grad  # the test reuses PAL's gradient
        restarts, kept = restarts + restart, kept + (not restart)
        x, state = x2, state2
    assert restarts > 0 and kept > 0  # both branches ran


def test_powell_arguments():
    with pytest.raises(ValueError, match="^powell: needs a conjugate-gradient beta"):
        RelativeMuPAL(powell=0.1, beta=0.4)
    with pytest.raises(ValueError, match="^powell"):
        RelativeMuPAL(powell=0.0, beta="polak-ribiere")
    opt = RelativeMuPAL(powell=0.2, beta="polak-ribiere")
    assert opt.hyperparameters["powell"] == 0.2 and "powell=0.2" in repr(opt)
    assert "powell" not in RelativeMuPAL(beta="polak-ribiere").hyperparameters


def test_powell_protocol_invariants(xp):
    check_optimizer(lambda: RelativeMuPAL(powell=0.1, beta="polak-ribiere", alpha=1.0,
                                          s_max=1e3), xp=xp, dtype="float64", max_examples=10)
