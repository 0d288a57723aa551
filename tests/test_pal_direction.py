"""PAL along another optimizer's direction: the exact equivalences with PAL's own
direction, the base state advancing as in the base's own step, the exact line search on
quadratics, the non-finite rule, line_direction, the errors, and the registry names."""

from __future__ import annotations

import hashlib
import math
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paltest import backend
from paltest.optimizers import pal_cases, registry
from paltest.optimizers.adam import Adam
from paltest.optimizers.pal import PAL
from paltest.optimizers.rmsprop import RMSProp
from paltest.optimizers.sgd import SGD
from paltest.testbed.runner import run
from paltest.testing.strategies import quadratic


def _h(x: Any) -> np.ndarray:
    return np.asarray(backend.to_host(x))


def _fingerprint(opt: Any, xp_name: str, dtype: str, problem: str, skip=("beta",)) -> str:
    """A hash of every step's theta_next and record (but ``skip``) and the epoch logs."""
    h = hashlib.sha256()

    def observe(step, batch, theta, state, theta_next, state_next, info):
        h.update(_h(theta_next).tobytes())
        for name, v in zip(info._fields, info, strict=True):
            if name not in skip:
                h.update(_h(v).tobytes())

    r = run(problem, opt, epochs=1, batch_size=50, seed=3, observe=observe,
            problem_options={"xp": xp_name, "dtype": dtype})
    for k in ("train_loss", "lr_mean", "n_fun"):
        h.update(np.asarray(r.epochs[k]).tobytes())
    return h.hexdigest()


@pytest.fixture(params=[True, False], ids=["host-fast-path", "array-path"])
def fast_path(request, monkeypatch, xp_name):
    if not request.param and xp_name != "numpy":
        pytest.skip("the array path is the only one off NumPy")
    monkeypatch.setattr(pal_cases, "HOST_FAST_PATH", request.param)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("problem", ["mf-rank4", "least-squares"])
@pytest.mark.parametrize("beta", [0.0, 0.4, 0.9])
def test_along_sgd_momentum_is_pal_beta_bitwise(beta, problem, dtype, xp, xp_name,
                                                 fast_path):
    """Bitwise, not only to rounding: SGD's buffer momentum*buf + g is PAL's
    buf*beta + g (the same IEEE operations; momentum 0 gives g itself, as PAL's beta=0
    does), and PAL asks for the update at unit learning rate, 1.0*buf == buf exactly;
    the rest of the step is the same code. SGD's own lr (0.1 here) is not used."""
    want = _fingerprint(PAL(beta=beta), xp_name, dtype, problem)
    base = SGD(lr=0.1, momentum=beta)
    assert _fingerprint(PAL(direction=base), xp_name, dtype, problem) == want
    via_name = registry.make("pal-momentum", **{"direction.momentum": beta})
    assert _fingerprint(via_name, xp_name, dtype, problem) == want


def test_sgd_without_momentum_is_pal_beta_zero_stepwise(xp):
    """Step by step, with the states: buf is the same array values, the base keeps no
    vector, and the record's beta is NaN along another optimizer."""
    q = quadratic(4, 30.0, 1, xp)
    theta = backend.from_host(np.array([1.0, -2.0, 0.5, 3.0]), xp)
    a, b = PAL(beta=0.0, mu=0.3), PAL(direction=SGD(), mu=0.3)
    sa, sb = a.init(theta), b.init(theta)
    ta = tb = theta
    for _ in range(5):
        ta, sa, ia = a.step(ta, sa, q.value_and_grad, q.value)
        tb, sb, ib = b.step(tb, sb, q.value_and_grad, q.value)
        assert _h(ta).tobytes() == _h(tb).tobytes()
        assert _h(sa.buf).tobytes() == _h(sb.buf).tobytes()
        assert sb.base.momentum_buffer is None and sb.prev_grad is None
        assert float(ia.beta) == 0.0 and math.isnan(float(ib.beta))
        for f in ("l0", "l_mu", "a", "b", "step", "lr", "case", "clipped"):
            assert _h(getattr(ia, f)).tobytes() == _h(getattr(ib, f)).tobytes(), f


BASES = {
    "sgd-nesterov-wd": lambda: SGD(lr=0.3, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda: Adam(lr=0.05),
    "rmsprop-centered-momentum": lambda: RMSProp(momentum=0.5, centered=True),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(BASES))
def test_the_base_state_advances_as_in_its_own_step(name, dtype, xp, fast_path):
    """At every step, PAL's base state is what the base's own step gives from the same
    state and gradient (bitwise), and PAL's buf is the base's update at lr=1; PAL moves
    along -buf."""
    q = quadratic(5, 50.0, 2, xp, dtype)
    theta = backend.from_host(np.linspace(-1.0, 2.0, 5), xp, dtype=dtype)
    base = BASES[name]()
    opt = PAL(mu=0.2, direction=base)
    state = opt.init(theta)
    for _ in range(6):
        _, own_state, _ = base.step(theta, state.base, q.value_and_grad)
        u, _ = base.update(theta, state.base, q.value_and_grad(theta)[1], 1.0)
        theta_next, state_next, info = opt.step(theta, state, q.value_and_grad, q.value)
        assert not bool(info.nonfinite)
        for f, own, pal in zip(own_state._fields, own_state, state_next.base, strict=True):
            assert (own is None) == (pal is None), f
            if own is not None:
                assert _h(own).tobytes() == _h(pal).tobytes(), f
        assert _h(state_next.buf).tobytes() == _h(u).tobytes()
        move = _h(theta_next).astype(np.float64) - _h(theta)
        d_hat = _h(opt.line_direction(state_next)).astype(np.float64)
        s = float(info.step)
        eps = float(np.finfo(dtype).eps)
        scale = np.abs(_h(theta)).max() + s
        assert np.abs(move - s * d_hat).max() <= 4 * eps * scale
        theta, state = theta_next, state_next


class _NoState(NamedTuple):
    pass


class _Fixed:
    """A user's direction: always ``d`` (the protocol is open to any object)."""

    def __init__(self, d: Any) -> None:
        self.d = d

    def init(self, theta: Any) -> _NoState:
        return _NoState()

    def update(self, theta: Any, state: _NoState, grad: Any, lr: float) -> tuple:
        return lr * -self.d, state  # the step theta - u moves along +d


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=60)
@given(n=st.integers(1, 6), cond=st.floats(1.0, 100.0), seed=st.integers(0, 2**31),
       log_mu=st.floats(-1.5, 1.0), ascent=st.booleans())
def test_alpha_one_on_a_quadratic_is_the_exact_line_search(n, cond, seed, log_mu, ascent,
                                                           dtype, xp):
    """On f = (t-t*)'A(t-t*)/2 the parabola through l(0), l'(0), l(mu) is f on the line,
    so with alpha=1 (and no s_max cut) PAL's step along any fixed d is
    t* = -g.d^/(d^'A d^); along an ascent direction it does not move. The tolerance is a
    first-order rounding bound: loss errors E <= 2(n+2)eps |A|_F |t-t*|^2 at theta and
    at the probe, slope error db <= 2(n+2)eps |A|_F |t-t*|, through a = (l_mu-l0-b mu)/mu^2
    and s = -b/2a."""
    q = quadratic(n, cond, seed, xp, dtype)
    rng = np.random.default_rng(seed + 1)
    star = _h(q.minimiser).astype(np.float64)
    theta0 = (star + rng.standard_normal(n)).astype(dtype)
    d = rng.standard_normal(n)
    r = theta0.astype(np.float64) - star
    g = q.matrix @ r
    if (g @ d > 0) != ascent:
        d = -d
    d = d.astype(dtype)
    mu = 10.0**log_mu
    theta = backend.from_host(theta0, xp)
    opt = PAL(mu=mu, alpha=1.0, s_max=1e30, direction=_Fixed(backend.from_host(d, xp)))
    theta1, state, info = opt.step(theta, opt.init(theta), q.value_and_grad, q.value)
    d_hat = d.astype(np.float64) / np.linalg.norm(d.astype(np.float64))
    eps, norm_a = float(np.finfo(dtype).eps), float(np.linalg.norm(q.matrix))
    slope, curv = float(g @ d_hat), float(d_hat @ q.matrix @ d_hat)
    k = 2 * (n + 2) * eps * norm_a
    e_loss = k * (r @ r + float(np.sum((r + mu * d_hat) ** 2)) + mu * mu)
    e_slope = k * (np.linalg.norm(r) + 1.0)
    if ascent:
        if slope > e_slope:  # clearly an ascent direction: no move
            assert int(info.case) == 0 and _h(theta1).tobytes() == theta0.tobytes()
        return
    e_a = (e_loss + mu * e_slope) / mu**2
    if not (-slope > 2 * e_slope and curv / 2 > 4 * e_a):
        return  # the rounding bound is not first order here (a flat line or tiny slope)
    t_star = -slope / curv
    tol = t_star * (2 * e_a / (curv / 2) + 2 * e_slope / -slope + 16 * eps)
    assert int(info.case) == 1
    assert abs(float(info.step) - t_star) <= tol, (float(info.step), t_star, tol)


@pytest.mark.parametrize("where", ["loss", "grad", "l_mu"])
@pytest.mark.parametrize("name", list(BASES))
def test_a_nonfinite_step_leaves_theta_and_the_base_state_unchanged(name, where, xp):
    q = quadratic(3, 10.0, 4, xp)
    opt = PAL(direction=BASES[name]())
    theta = backend.from_host(np.array([1.0, 2.0, -1.0]), xp)
    state = opt.init(theta)
    theta, state, _ = opt.step(theta, state, q.value_and_grad, q.value)  # a real state
    nan = float("nan")

    def vg(t):
        loss, g = q.value_and_grad(t)
        if where == "grad":
            g = g * nan
        return (loss * nan if where == "loss" else loss), g

    def value(t):
        return q.value(t) * nan if where == "l_mu" else q.value(t)

    theta2, state2, info = opt.step(theta, state, vg, value)
    assert bool(info.nonfinite) and int(info.case) == 3
    assert _h(theta2).tobytes() == _h(theta).tobytes()
    for old, new in zip(state.base, state2.base, strict=True):
        assert (old is None and new is None) or _h(old).tobytes() == _h(new).tobytes()
    assert _h(state2.buf).tobytes() == _h(state.buf).tobytes()


def test_line_direction(xp):
    q = quadratic(3, 5.0, 0, xp)
    theta = backend.from_host(np.array([1.0, 0.0, -1.0]), xp)
    for opt in (PAL(), PAL(beta="fr"), PAL(direction="adam")):
        state = opt.init(theta)
        assert np.all(_h(opt.line_direction(state)) == 0.0)  # zero-norm rule: zeros
        theta1, state1, info = opt.step(theta, state, q.value_and_grad, q.value)
        d_hat = _h(opt.line_direction(state1))
        buf = _h(state1.buf)
        np.testing.assert_allclose(d_hat, -buf / np.linalg.norm(buf), rtol=4e-16)
        np.testing.assert_allclose(_h(theta1) - _h(theta), float(info.step) * d_hat,
                                   atol=8e-16 * (1 + float(info.step)))


def test_unsupported_directions_and_beta_are_named():
    for name in ("sgdhd", "alig", "cocob", "sls", "sls-goldstein", "sls-polyak", "exact",
                 "pal"):
        with pytest.raises(ValueError, match="^direction: .* cannot supply a direction: "):
            PAL(direction=name)
        assert registry.get_class(name).no_direction
    with pytest.raises(ValueError, match="^direction: unknown optimizer 'nope'"):
        PAL(direction="nope")
    with pytest.raises(TypeError, match="^direction: must be an optimizer"):
        PAL(direction=3)
    with pytest.raises(ValueError, match="^beta: "):
        PAL(beta=0.4, direction="sgd")
    with pytest.raises(TypeError, match=r"'pal-adam'.*\['direction.lr'\]"):
        registry.make("pal-adam", **{"direction.lr": 0.1})
    with pytest.raises(TypeError, match=r"'pal-adam'.*\['beta'\]"):
        registry.make("pal-adam", beta=0.4)
    with pytest.raises(ValueError, match="'pal-adam': direction.beta1"):
        registry.make("pal-adam", **{"direction.beta1": 1.5})
    with pytest.raises(ValueError, match="'pal-adam': direction: is 'adam'"):
        registry.make("pal-adam", direction="sgd")


def test_registry_records_round_trip():
    plain = registry.canonical_hyperparameters("pal")
    assert plain == {"mu": 1.0, "alpha": 1 / 0.6, "beta": 0.4, "s_max": 10**0.5,
                     "eps": 1e-10, "on_nonfinite": "flag"}  # as before direction existed
    for name, base in (("pal-momentum", "sgd"), ("pal-adam", "adam"),
                       ("pal-rmsprop", "rmsprop")):
        canon = registry.canonical_hyperparameters(name, mu=0.3)
        assert canon["direction"] == base and "beta" not in canon
        assert not any(k.endswith(".lr") for k in canon)
        opt = registry.make(name, **canon)
        assert registry.name_of(opt) == name
        assert registry.canonical_hyperparameters(name, **canon) == canon
    assert registry.canonical_hyperparameters("pal-momentum")["direction.momentum"] == 0.9
    assert registry.name_of(PAL(direction=SGD())) == "pal-momentum"
    assert "direction=Adam(" in repr(PAL(direction="adam"))


def test_sweep_grids_and_figure_plans_reach_the_variants():
    from paltest.testbed import protocols, sweep

    grid = {"epochs": 1, "batch_size": 10, "problems": ["mf-rank4"],
            "optimizers": [{"name": "pal-momentum", "hyperparameters": {
                "mu": 0.5, "direction.momentum": [0.4, 0.9]}}]}
    configs = sweep.expand(grid)
    assert [c["hyperparameters"]["direction.momentum"] for c in configs] == [0.4, 0.9]
    assert all(c["optimizer"] == "pal-momentum" for c in configs)
    with pytest.raises(sweep.GridError, match=r"direction\.lr"):
        sweep.expand({**grid, "optimizers": [{"name": "pal-adam", "hyperparameters": {
            "direction.lr": 0.1}}]})
    p = protocols.plan(8, optimizers=["pal", "pal-adam", "pal-momentum"])
    for name in ("pal-adam", "pal-momentum"):
        assert list(p.grids[name].axes) == ["mu", "alpha"]
