"""Line sampling during a run (paltest.testbed.lines, paltest.testbed.line_shapes):
the trajectory is bitwise unchanged, the parabolas, fits, minima and angles against closed
forms, the counts, the shape classes, one host transfer per line, and the argument checks.

(``tests/test_lines.py`` tests the problems' cheap line evaluations, problems/lines.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pandas")

import problems  # noqa: E402
from paltest.optimizers import registry  # noqa: E402
from paltest.optimizers.pal import PAL  # noqa: E402
from paltest.optimizers.sgd import SGD  # noqa: E402
from paltest.testbed import line_shapes as shapes  # noqa: E402
from paltest.testbed import results  # noqa: E402
from paltest.testbed.lines import (  # noqa: E402
    LINE_COLUMNS,
    LineSampler,
    line_direction,
    load_samples,
    sample_run,
    save_samples,
)
from paltest.testbed.runner import run  # noqa: E402

U64 = np.finfo(np.float64).eps / 2


def _problem(name, xp_name, dtype):
    opts = {"hidden": (8,)} if name == "mlp-digits" else {}
    return problems.get(name, xp=xp_name, dtype=dtype, **opts)


def _same(a, b):
    for group in ("epochs", "steps"):
        da, db = getattr(a, group), getattr(b, group)
        assert sorted(da) == sorted(db)
        for k in da:
            if k in results.TIMING_ARRAYS:
                continue
            assert da[k].dtype == db[k].dtype, k
            assert da[k].tobytes() == db[k].tobytes(), (group, k)
    assert a.totals == b.totals


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", ["pal", "sgd", "exact"])
@pytest.mark.parametrize("name", ["mf-rank4", "mlp-digits"])  # a cheap and a direct line
def test_sampling_leaves_the_run_bitwise_unchanged(xp, xp_name, name, opt, dtype):
    p = _problem(name, xp_name, dtype)
    hp = {"lr": 0.1} if opt == "sgd" else {}
    plain = run(p, registry.make(opt, **hp), epochs=1, batch_size=100, seed=3)
    o = registry.make(opt, **hp)
    sampler = LineSampler(p, o, every=3, points=6, full_loss=True, batch_quartiles=True,
                          seed=3)
    sampled = run(p, o, epochs=1, batch_size=100, seed=3, observe=sampler)
    _same(plain, sampled)
    n_steps = p.n_train // 100
    assert sampler.counts["lines"] == len(range(0, n_steps, 3)) > 0
    assert sampler.samples().lines["shape"].isin(shapes.SHAPES).all()


def test_sample_run_records_its_settings_and_matches_a_plain_run():
    r1, s = sample_run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, every=2,
                       points=5, problem_options={"dtype": "float64"})
    r2 = run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0,
             problem_options={"dtype": "float64"})
    assert r1.config["extra"]["line_sampler"] == s.config and s.config["points"] == 5
    assert r1.run_id != r2.run_id  # the sampler's settings enter the run id
    for k in ("train_loss", "n_fun"):
        assert r1.epochs[k].tobytes() == r2.epochs[k].tobytes()
    assert list(s.lines.columns) == list(LINE_COLUMNS)


# --- closed forms on a quadratic -------------------------------------------------------

def _quadratic():
    return problems.get("quadratic", eigenvalues=[0.5, 1.0, 3.0, 7.0], seed=1)


@pytest.mark.parametrize("alpha", [1.0, 1.5, 1 / 0.6])
def test_angle_parabola_and_minimum_are_exact_on_a_quadratic(alpha):
    p = _quadratic()
    A, star = p.hessian, p.theta_star
    opt = PAL(mu=0.3, alpha=alpha, beta=0.0, s_max=1e6)
    sampler = LineSampler(p, opt, every=1, points=41, span=(-0.5, 2.0))
    run(p, opt, epochs=1, batch_size=1, seed=0, observe=sampler)
    row = sampler.samples().lines.iloc[0]
    theta0 = np.asarray(p.init_params(0), dtype=np.float64)
    g0 = A @ (theta0 - star)
    d = -g0 / np.linalg.norm(g0)
    a, b = 0.5 * d @ A @ d, d @ g0  # l(s) = a s^2 + b s + c exactly
    s_star = -b / (2 * a)
    g1 = g0 + alpha * s_star * (A @ d)
    angle = math.degrees(math.acos(d @ g1 / np.linalg.norm(g1)))
    tol = 64 * U64 * (abs(a) + abs(b) + 1)
    assert row["pal_a"] == pytest.approx(a, abs=tol / 0.3**2)
    assert row["pal_b"] == pytest.approx(b, abs=tol)
    assert row["pal_min"] == pytest.approx(s_star, rel=1e-12)
    assert row["lsq_a"] == pytest.approx(a, rel=1e-10)
    assert row["lsq_min"] == pytest.approx(s_star, rel=1e-10)
    assert row["lsq_residual"] < 1e-12
    assert row["s_min"] == pytest.approx(s_star, rel=1e-10)  # refinement exact on a parabola
    assert row["step"] == pytest.approx(alpha * s_star, rel=1e-12)
    assert row["angle"] == pytest.approx(angle, abs=1e-9)
    if alpha == 1.0:
        assert row["angle"] == pytest.approx(90.0, abs=1e-9)
    assert row["shape"] == "convex"


def test_the_sampled_parabola_is_pals_own():
    p = problems.get("mlp-digits", hidden=(8,), dtype="float64")
    opt = PAL()
    sampler = LineSampler(p, opt, every=1, points=4)
    r = run(p, opt, epochs=1, batch_size=100, seed=0, observe=sampler)
    lines = sampler.samples().lines
    # l(0), l(mu) and l'(0) are PAL's up to rounding of O(n u) with n < 10^4 terms
    for ours, pals in (("l0", "l0"), ("l_mu", "l_mu"), ("dl0", "b"), ("pal_a", "a"),
                       ("step", "step")):
        np.testing.assert_allclose(lines[ours], r.steps[pals], rtol=1e-9, atol=1e-12)


def test_lsq_parabola_and_pal_parabola_closed_forms():
    s = np.linspace(-2.0, 3.0, 17)
    l = -0.7 * s**2 + 0.2 * s + 4.0
    a, b, c, res = shapes.lsq_parabola(s, l)
    assert (a, b, c) == pytest.approx((-0.7, 0.2, 4.0), rel=1e-12)
    assert res < 1e-13
    assert math.isnan(shapes.parabola_minimum(a, b))  # a maximum
    # PAL's formula: l(0) = c, l'(0) = b, l(mu) on the parabola
    for mu in (0.1, 1.0, 5.0):
        got = shapes.pal_parabola(4.0, 0.2, -0.7 * mu**2 + 0.2 * mu + 4.0, mu)
        assert got == pytest.approx((-0.7, 0.2, 4.0), rel=1e-12)
    noisy = l + np.where(np.arange(17) % 2, 1e-3, -1e-3)
    assert shapes.lsq_parabola(s, noisy)[3] > 1e-5
    assert all(math.isnan(v) for v in shapes.lsq_parabola([1.0, 1.0, 2.0], [0, 1, 2]))


# --- shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("f, shape", [
    (lambda s: (s - 0.3) ** 2, "convex"),
    (lambda s: np.abs(s - 0.3), "convex"),
    (lambda s: -s, "edge"),
    (lambda s: np.exp(-s), "edge"),
    (lambda s: np.maximum(0.0, 0.5 - s), "edge"),  # falls to 0 and stays: not bracketed
    (lambda s: np.maximum(0.0, s + 0.2), "edge"),  # the same on the left
    (lambda s: 0.0 * s + 2.0, "flat"),
    (lambda s: (s**2 - 0.25) ** 2 + 0.05 * s, "nonconvex"),  # a double well, max at 0
    (lambda s: np.where(np.abs(s - 0.3) < 0.05, np.nan, (s - 0.3) ** 2), "nonconvex"),
])
def test_classify(f, shape):
    s = np.linspace(-1.0, 1.5, 51)
    assert shapes.classify(s, f(s), window=0.8) == shape


def test_classify_rounding_allowance_and_window():
    s = np.linspace(-1.0, 1.0, 41)
    l = s**2 + 1.0
    bumped = l.copy()
    bumped[30] -= 1e-15  # below float64 rounding of values near 1
    assert shapes.classify(s, bumped) == "convex"
    bumped[30] -= 1e-2  # more than the second difference 2 h^2 = 5e-3
    assert shapes.classify(s, bumped, window=0.8) == "nonconvex"
    assert shapes.classify(s, bumped, window=0.2) == "convex"  # outside the window
    assert shapes.rounding_tolerance([1.0, -3.0], "float32") == 64 * 2**-24 * 3.0


def test_sampled_minimum_refines_within_half_a_spacing():
    s = np.linspace(0.0, 1.0, 11)
    sm, lm, i = shapes.sampled_minimum(s, np.abs(s - 0.33))
    assert i == 3 and lm == pytest.approx(0.03) and abs(sm - s[3]) <= 0.05
    assert shapes.sampled_minimum(s, np.full(11, np.nan))[2] == -1
    assert shapes.sampled_minimum(s, -s)[:2] == (1.0, -1.0)  # edge: not refined


def test_angle_degrees():
    assert shapes.angle_degrees(0.0) == 90.0
    assert shapes.angle_degrees(-1.0 - 1e-15) == 180.0
    assert math.isnan(shapes.angle_degrees(float("nan")))


# --- counts, transfers, directions ------------------------------------------------------

def test_counts_are_the_samplers_own():
    p = problems.get("mf-rank4", dtype="float64")
    opt = PAL()
    sampler = LineSampler(p, opt, at=[0, 5, 7], points=7, full_loss=True,
                          batch_quartiles=True, seed=0)
    r = run(p, opt, epochs=2, batch_size=200, seed=0, observe=sampler)
    c = sampler.counts
    n_batches = p.n_train // 200
    assert c["lines"] == 3 and c["host_transfers"] == 3 and c["cheap_lines"] == 3
    assert c["points"] == 3 * (7 + 2)
    assert c["full_points"] == 3 * 7
    assert c["batch_points"] == 3 * 7 * n_batches
    assert c["grads"] == 3 * 2  # at theta (l'(0)) and at the update point (the angle)
    assert r.totals["n_fun"] == 2 * 2 * n_batches  # PAL's own: untouched
    pts = sampler.samples().points
    assert len(pts) == 3 * 7
    assert {"full_loss", "q0", "q25", "q50", "q75", "q100", "batch_mean"} <= set(pts)
    assert (pts["q0"] <= pts["q50"]).all() and (pts["q50"] <= pts["q100"]).all()
    lines = sampler.samples().lines
    assert list(lines["step_index"]) == [0, 5, 7]
    assert list(lines["epoch"]) == [1, 2, 2]
    assert lines["full_shape"].isin(shapes.SHAPES).all()
    assert np.isfinite(lines["full_s_min"]).all()


def test_full_loss_along_the_line_is_the_training_loss():
    p = problems.get("mlp-digits", hidden=(8,), dtype="float64")
    _, s = sample_run(p, "pal", epochs=1, batch_size=100, seed=0, at=[0], points=5,
                      full_loss=True)
    pts = s.points
    theta = p.init_params(0)
    batch = next(iter(p.batches(0, 0, 100)))
    _, g = p.value_and_grad(theta, batch)
    d = -g / np.linalg.norm(g)
    for si, fl in zip(pts["s"], pts["full_loss"], strict=True):
        assert fl == pytest.approx(float(p.train_loss(theta + si * d)), rel=1e-12)


def test_one_host_transfer_per_line_on_a_device_namespace(forbid_value_reads):
    p = problems.get("mf-rank4", xp="array_api_strict", dtype="float32")
    opt = PAL()
    sampler = LineSampler(p, opt, every=3, points=8, full_loss=True)
    transfers = forbid_value_reads(allow_to_host=True)
    run(p, opt, epochs=1, batch_size=100, seed=0, observe=sampler)
    n_lines = sampler.counts["lines"]
    assert n_lines == 3
    assert len(transfers) == n_lines + 2  # the runner's: one at epoch 0, one per epoch


def test_line_direction_rules():
    xp = problems.get("quadratic", n=3).xp
    theta = xp.asarray([1.0, 2.0, 3.0])
    d, step = line_direction(SGD(), theta, theta, None, None)
    assert float(step) == 0.0 and float(xp.sum(xp.abs(d))) == 0.0
    nxt = theta + xp.asarray([0.0, 3.0, 4.0])
    d, step = line_direction(SGD(), theta, nxt, None, None)
    assert float(step) == 5.0 and d.tolist() == [0.0, 0.6, 0.8]

    class WithMethod:
        def line_direction(self, state):
            return state * 2.0

    class Info:
        step = 7.0

    d, step = line_direction(WithMethod(), theta, nxt, xp.asarray([0.0, 0.0, -2.0]), Info())
    assert d.tolist() == [0.0, 0.0, -1.0] and step == 7.0
    with pytest.raises(ValueError, match="grad"):
        line_direction(registry.make("exact"), theta, nxt, None, Info())


def test_a_zero_step_is_skipped():
    p = _quadratic()
    theta = p.init_params(0)
    sampler = LineSampler(p, SGD(), every=1, points=5)
    batch = next(iter(p.batches(0, 0, 1)))
    sampler(0, batch, theta, None, theta, None, None)
    row = sampler.samples().lines.iloc[0]
    assert row["shape"] == "skipped" and not row["moved"]


def test_save_and_load(tmp_path):
    _, s = sample_run("mf-rank4", "sgd", epochs=1, batch_size=100, seed=0, every=4,
                      points=5, hyperparameters={"lr": 0.1})
    paths = save_samples(s, tmp_path, "abc")
    assert [q.name for q in paths] == ["abc.lines.csv", "abc.points.csv", "abc.lines.json"]
    back = load_samples(tmp_path, "abc")
    assert back.counts == s.counts and back.config == s.config
    np.testing.assert_array_equal(back.points["loss"], s.points["loss"])
    np.testing.assert_array_equal(back.lines["angle"], s.lines["angle"])


@pytest.mark.parametrize("kwargs, name", [
    ({"every": 0}, "every"), ({"every": 1.5}, "every"), ({"points": 2}, "points"),
    ({"points": -1}, "points"), ({"span": (0.1, 2.0)}, "span"), ({"span": (-1, 0.5)}, "span"),
    ({"span": "wide"}, "span"), ({"mu": -1.0}, "mu"), ({"mu": float("inf")}, "mu"),
    ({"window": 0}, "window"), ({"full_loss": "yes"}, "full_loss"),
    ({"batch_quartiles": True}, "seed"), ({"points": 0, "full_loss": True}, "points"),
    ({"at": [-1]}, "at"), ({"seed": -2}, "seed"),
])
def test_argument_checks_name_the_argument(kwargs, name):
    p = _quadratic()
    with pytest.raises((TypeError, ValueError), match=name):
        LineSampler(p, PAL(), **kwargs)


def test_problem_and_optimizer_are_checked():
    with pytest.raises(TypeError, match="problem"):
        LineSampler(object(), PAL())
    with pytest.raises(TypeError, match="optimizer"):
        LineSampler(_quadratic(), object())
    with pytest.raises(ValueError, match="s, l"):
        shapes.classify([0.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="mu"):
        shapes.pal_parabola(0.0, -1.0, 0.0, 0.0)


# --- bracketing: the range is widened until the minimum is inside -----------------------

def _far_quadratic(xp_name):
    """A 1-d quadratic and a sampler scale ``mu`` that puts its minimum about 100 ``mu``
    beyond the start along the descent line (the initial range is ``mu * [-0.5, 1.5]``)."""
    p = problems.get("quadratic", eigenvalues=[0.01], minimizer=[0.0], rotate=False,
                     xp=xp_name)
    return p, abs(float(np.asarray(p.init_params(0))[0])) / 100.0


@pytest.mark.parametrize("extend", [0, 2, 6])
def test_the_range_is_widened_until_the_minimum_is_bracketed(xp, xp_name, extend):
    p, mu = _far_quadratic(xp_name)
    opt = SGD(lr=1e-6)  # a tiny step: R = max(|step|, mu) = mu, range mu * [-0.5, 1.5]
    plain = run(p, SGD(lr=1e-6), epochs=2, batch_size=1, seed=0)
    sampler = LineSampler(p, opt, every=1, points=50, mu=mu, extend=extend)
    sampled = run(p, opt, epochs=2, batch_size=1, seed=0, observe=sampler)
    _same(plain, sampled)  # widening reads nothing the run uses
    row = sampler.samples().lines.iloc[0]
    # hi: 1.5, 6, 24, 96, 384: the minimum (~100) is first inside after 4 widenings
    need = 4
    j = min(extend, need)
    assert row["extensions"] == j and row["hi"] == 1.5 * 4.0**j and row["lo"] == -0.5
    c = sampler.counts
    n_lines = c["lines"]
    assert n_lines == 2
    assert c["extensions"] == n_lines * j
    assert c["host_transfers"] == n_lines * (1 + j)
    assert c["points"] == n_lines * (1 + j) * (50 + 2)
    if extend >= need:
        assert row["shape"] == "convex"
        # a parabola: the refined sampled minimum is the exact one, |theta_0 - theta*|
        assert row["s_min"] / mu == pytest.approx(100.0, rel=1e-9)
    else:
        assert row["shape"] == "edge"  # still not bracketed: kept as 'edge'


def test_open_side():
    s = np.linspace(-0.5, 1.5, 21)
    assert shapes.open_side(s, (s - 0.3) ** 2) == 0
    assert shapes.open_side(s, -s) == 1 and shapes.open_side(s, s) == -1
    assert shapes.open_side(s, np.maximum(0.0, 0.5 - s)) == 1  # a plateau at its minimum
    assert shapes.open_side(s, np.maximum(0.0, s + 0.2)) == -1


def test_extend_is_checked():
    p = _quadratic()
    with pytest.raises(ValueError, match="extend"):
        LineSampler(p, PAL(), extend=-1)


# --- the sampler's direction is the optimizer's own line_direction -----------------------

class _Spy:
    """A problem whose ``line`` records the direction it is given."""

    def __init__(self, p):
        self._p, self.directions = p, []

    def __getattr__(self, name):
        return getattr(self._p, name)

    def line(self, theta, d, batch):
        self.directions.append(d)
        return self._p.line(theta, d, batch)


@pytest.mark.parametrize("opt_name", ["pal", "pal-adam"])
def test_the_samplers_direction_is_pal_line_direction_bitwise(xp, xp_name, opt_name):
    from paltest import backend

    p = problems.get("mf-rank4", xp=xp_name, dtype="float32")
    spy = _Spy(p)
    n_b = p.n_batches(100)
    opt = registry.make(opt_name, n_batches_per_epoch=n_b)
    assert hasattr(opt, "line_direction")
    sampler = LineSampler(spy, opt, at=[0, 3, 7], points=5, extend=0)
    wanted = []

    def observe(step, batch, theta, state, theta_next, state_next, info):
        if sampler.due(step):
            wanted.append(opt.line_direction(state_next))
        sampler(step, batch, theta, state, theta_next, state_next, info)

    run(p, opt, epochs=1, batch_size=100, seed=0, observe=observe)
    assert len(spy.directions) == len(wanted) == 3
    for got, want in zip(spy.directions, wanted, strict=True):
        g, w = backend.to_host(got), backend.to_host(want)
        assert g.dtype == w.dtype and g.tobytes() == w.tobytes()
