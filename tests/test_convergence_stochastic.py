"""PAL on stochastic quadratics: cases 6 (interpolation) and 7 (no interpolation).

6. Batch losses L_B = 1/2 e' H_B e share the minimizer theta* (e = theta - theta*). One
   PAL step on batch B (beta = 0, any mu, 0 < alpha < 2, no clipping) satisfies

       ||e_{t+1}||^2 <= ||e_t||^2 - alpha (2 - alpha) e_t' H_B e_t / lambda_max(H_B),

   so with B drawn uniformly, E ||e_{t+1}||^2 <= (1 - alpha(2-alpha) lambda_min(M))
   ||e_t||^2 with M = E[H_B / lambda_max(H_B)]. On consistent least squares with batch
   size 1 and alpha = 1 the PAL step is the randomized Kaczmarz projection onto
   {theta : a_i' theta = y_i}.
7. Shared Hessian A, different minimizers theta_i = theta* + delta_i: from any theta with
   ||e|| < r = alpha m / (2 kappa + alpha), m = min_i ||delta_i||, the next step lands
   at ||e|| > r (its length is at least alpha ||A(theta - theta_i)|| / lambda_max), so
   the error never stays below r for two consecutive steps: a noise floor.

Tolerances are rounding bounds computed per step from the device precision, the
dimension and the measured magnitudes; the number of steps for convergence comes from the
rate with Markov's inequality (failure probability 1e-3 for the fixed seed).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from paltest import PAL, backend
from problems.quadratic import make_batch_quadratic, make_least_squares

EPS64 = float(np.finfo(np.float64).eps)
BIG = 1e12  # s_max that never binds


def _h(x) -> np.ndarray:
    return np.asarray(backend.to_host(x), dtype=np.float64)


def _index(xp, idx):
    return backend.from_host(np.asarray(idx, dtype=np.int64), xp, dtype="int64")


def _dev(p, host):
    """Host data as the device holds it (from_host casts on the host)."""
    return np.asarray(host).astype(p.dtype_name).astype(np.float64)


def _step(p, opt, theta, state, idx):
    """One PAL step on the batch ``idx``; the host record of it."""
    vg, f = p.bind(_index(p.xp, idx))
    before = _h(theta)
    theta, state, info = opt.step(theta, state, vg, f)
    rec = {"theta": before, "theta_next": _h(theta), "buf": _h(state.buf),
           "l0": float(_h(info.l0)), "l_mu": float(_h(info.l_mu)), "b": float(_h(info.b)),
           "step": float(_h(info.step)), "case": int(_h(info.case)),
           "clipped": bool(_h(info.clipped))}
    return theta, state, rec


def _batch_step_bound(H, absH, ts, eps, kdim, rec, mu, alpha):
    """The rounding analysis of one PAL step on L_B = 1/2 e'He (beta = 0).

    Returns (delta, grad_err): delta bounds ||theta_next - (theta + s_exact d_hat)||,
    s_exact the exact PAL step along the device's direction d_hat = -buf/||buf||;
    grad_err bounds ||buf - H e|| (the device's mean of the component Hessians and its
    product with e: kdim = n + batch size terms).
    """
    k = (kdim + 4) * eps
    theta, buf, nxt = rec["theta"], rec["buf"], rec["theta_next"]
    e = theta - ts
    g = H @ e
    abs_he = absH @ np.abs(e)
    d = -buf / np.linalg.norm(buf)
    a = 0.5 * d @ H @ d
    b = g @ d
    e_mu = e + mu * d
    err_l0 = k * (np.abs(e) @ abs_he)
    err_lmu = (k * (np.abs(e_mu) @ absH @ np.abs(e_mu))
               + 2 * eps * np.abs(H @ e_mu) @ (np.abs(theta) + mu * np.abs(d)))
    grad_err = k * (np.linalg.norm(abs_he) + np.linalg.norm(g))
    num = (err_l0 + err_lmu + mu * grad_err
           + k * (abs(rec["l0"]) + abs(rec["l_mu"]) + abs(rec["b"]) * mu))
    rel_s = num / (a * mu * mu) + grad_err / abs(b) + 2 * k
    s = rec["step"]
    delta = s * rel_s + 2 * eps * (np.linalg.norm(nxt) + s)
    s_exact = alpha * (-b) / (2 * a)
    return delta, grad_err, s_exact, d, g


def _checked_step(parts, ts, eps, rec, idx, mu, alpha):
    """(||e_{t+1}||^2 measured, ||e||^2 after the exact step along the exact gradient,
    rounding margin between the two, e'H_B e / lambda_max(H_B)); None if no move."""
    if not np.any(rec["buf"]):
        return None
    n = ts.size
    e0, e1 = rec["theta"] - ts, rec["theta_next"] - ts
    H = parts[idx].mean(axis=0)
    absH = np.abs(parts[idx]).mean(axis=0)
    lmax = float(np.linalg.eigvalsh(H)[-1])
    delta, grad_err, s_ex, d, g = _batch_step_bound(
        H, absH, ts, eps, n + len(idx), rec, mu, alpha)
    # the device's direction is the batch gradient, to rounding
    assert np.linalg.norm(rec["buf"] - g) <= grad_err + n * EPS64 * np.linalg.norm(g)
    e_g = e0 - alpha * (g @ g) / (g @ H @ g) * g  # exact step, exact gradient
    e_d = e0 + s_ex * d  # exact step along the device's direction (differs by rounding)
    host = 4 * n * EPS64 * (e0 @ e0 + e1 @ e1)
    margin = abs(e_d @ e_d - e_g @ e_g) + 2 * np.linalg.norm(e1) * delta + delta**2 + host
    return e1 @ e1, e_g @ e_g, margin, (e0 @ H @ e0) / lmax


# --------------------------------------------------------------------------- case 6


@settings(max_examples=12)
@given(n=st.integers(2, 12), n_batches=st.integers(4, 30), log_kappa=st.floats(0, 3),
       rank=st.integers(1, 12), batch_size=st.integers(1, 4), alpha=st.floats(0.1, 1.9),
       log_mu=st.floats(-3, 1), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(["float64", "float32"]))
def test_case6_per_step_inequality(xp, n, n_batches, log_kappa, rank, batch_size, alpha,
                                   log_mu, seed, dtype):
    """||e_{t+1}||^2 <= ||e_t||^2 - alpha(2-alpha) e'H_B e / lambda_max(H_B), every step."""
    rank = min(rank, n)
    n_batches = max(n_batches, -(-n // rank), batch_size)
    p = make_batch_quadratic(n=n, n_batches=n_batches, kappa=10.0**log_kappa, rank=rank,
                             seed=seed, xp=xp, dtype=dtype)
    eps = float(np.finfo(dtype).eps)
    parts, ts = _dev(p, p.component_hessians), _dev(p, p.theta_star)
    if dtype == "float32":  # mu of the order of ||e|| keeps the parabola fit resolvable
        log_mu = max(log_mu, 0.0)
    mu, w = 10.0**log_mu, alpha * (2 - alpha)
    opt = PAL(mu=mu, alpha=alpha, beta=0.0, s_max=BIG)
    theta = p.init_params(seed)
    state = opt.init(theta)
    rng = np.random.default_rng(seed)
    first_margin = None
    for t in range(40):
        idx = rng.choice(n_batches, batch_size, replace=False)
        theta, state, rec = _step(p, opt, theta, state, idx)
        e0 = rec["theta"] - ts
        out = _checked_step(parts, ts, eps, rec, idx, mu, alpha)
        if out is None:  # g == 0 exactly (e in the null space of H_B): no move
            assert rec["case"] == 0 and np.array_equal(rec["theta_next"], rec["theta"])
            continue
        e1_sq, _, margin, curv = out
        rhs = e0 @ e0 - w * curv
        note(f"step {t}: |e1|^2={e1_sq!r} rhs={rhs!r} margin={margin!r}")
        assert e1_sq <= rhs + margin
        if first_margin is None:
            first_margin = margin / (w * curv)
            # not vacuous: the margin is small against the guaranteed decrease
            assert first_margin < (1e-6 if dtype == "float64" else 1e-1)


def _interpolating(xp, n, n_batches, kappa, rank, seed):
    p = make_batch_quadratic(n=n, n_batches=n_batches, kappa=kappa, rank=rank, seed=seed,
                             xp=xp)
    Hs = p.component_hessians
    M = np.mean([h / np.linalg.eigvalsh(h)[-1] for h in Hs], axis=0)
    return p, float(np.linalg.eigvalsh(M)[0])


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_case6_linear_rate_of_the_mean(xp, alpha):
    """E_i ||e_{t+1}||^2 <= (1 - alpha(2-alpha) lambda_min(M)) ||e_t||^2, the expectation
    over a uniform component i taken exactly (one PAL step per component)."""
    p, lmin_M = _interpolating(xp, n=6, n_batches=12, kappa=20.0, rank=3, seed=5)
    rho = 1 - alpha * (2 - alpha) * lmin_M
    assert 0 < lmin_M and rho < 1
    ts = p.theta_star
    opt = PAL(mu=0.1, alpha=alpha, beta=0.0, s_max=BIG)  # mu: see the loop
    theta = p.init_params(1)
    state = opt.init(theta)
    rng = np.random.default_rng(0)
    parts, eps, mu = p.component_hessians, EPS64, 0.1
    for t in range(30):
        e_now = _h(theta) - ts
        outs = []
        for i in range(p.n_train):
            rec = _step(p, opt, theta, opt.init(theta), [i])[2]
            outs.append(_checked_step(parts, ts, eps, rec, [i], mu, alpha) or (
                e_now @ e_now, e_now @ e_now, 0.0, 0.0))
        mean_sq = np.mean([o[0] for o in outs])
        margin = np.mean([o[2] for o in outs])
        assert mean_sq <= rho * (e_now @ e_now) + margin, (t, mean_sq / (e_now @ e_now), rho)
        assert margin < 1e-6 * (1 - rho) * (e_now @ e_now)  # not vacuous
        theta, state, _ = _step(p, opt, theta, state, [int(rng.integers(p.n_train))])


def _markov_steps(rho, target_sq, delta=1e-3):
    """Steps T with P(||e_T||^2 > target_sq ||e_0||^2) <= delta when E-rate is rho."""
    return math.ceil(math.log(target_sq * delta) / math.log(rho))


def _run_iid(p, opt, theta, steps, seed):
    """``steps`` PAL steps, each on one uniformly drawn component; ||e_t|| per step."""
    ts = p.theta_star
    state = opt.init(theta)
    rng = np.random.default_rng(seed)
    errs = [np.linalg.norm(_h(theta) - ts)]
    for i in rng.integers(p.n_train, size=steps):
        vg, f = p.bind(_index(p.xp, [int(i)]))
        theta, state, _ = opt.step(theta, state, vg, f)
        errs.append(np.linalg.norm(_h(theta) - ts))
    return np.array(errs)


def test_case6_converges_case7_stalls(xp):
    """Same sizes, kappa, alpha: with interpolation ||e|| reaches 1e-12 ||e_0|| within the
    Markov bound on the steps; without it ||e|| never stays below the floor r."""
    n, N, kappa, alpha = 5, 10, 5.0, 1.0
    p6, lmin_M = _interpolating(xp, n=n, n_batches=N, kappa=kappa, rank=n, seed=2)
    rho = 1 - alpha * (2 - alpha) * lmin_M
    steps = _markov_steps(rho, 1e-24)
    assert steps < 3000  # keeps the test fast; a property of the problem, not of PAL
    opt = PAL(mu=0.1, alpha=alpha, beta=0.0, s_max=BIG)
    errs6 = _run_iid(p6, opt, p6.init_params(0), steps, seed=1)
    assert errs6[-1] <= 1e-12 * errs6[0]

    p7 = make_batch_quadratic(n=n, n_batches=N, interpolation=False, kappa=kappa,
                              noise=1.0, seed=2, xp=xp)
    m = np.linalg.norm(p7.component_minimizers - p7.theta_star, axis=1).min()
    r = alpha * m / (2 * p7.kappa + alpha)
    errs7 = _run_iid(p7, opt, p7.init_params(0), steps, seed=1)
    pair_max = np.maximum(errs7[:-1], errs7[1:])
    assert r > 1e-6 * errs7[0]  # the floor is far above rounding
    assert pair_max.min() >= r * (1 - 1e-9)
    # the error stops decreasing: the second half is no better than the floor allows
    assert errs7[steps // 2:].min() > 1e3 * 1e-12 * errs7[0]


@settings(max_examples=8)
@given(alpha=st.floats(0.1, 1.9), log_kappa=st.floats(0, 2), seed=st.integers(0, 2**16),
       noise=st.floats(0.1, 10.0))
def test_case7_noise_floor(xp, alpha, log_kappa, seed, noise):
    """No interpolation: max(||e_t||, ||e_{t+1}||) >= alpha m / (2 kappa + alpha)."""
    p = make_batch_quadratic(n=4, n_batches=8, interpolation=False, kappa=10.0**log_kappa,
                             noise=noise, seed=seed, xp=xp)
    m = np.linalg.norm(p.component_minimizers - p.theta_star, axis=1).min()
    r = alpha * m / (2 * p.kappa + alpha)
    opt = PAL(mu=1.0, alpha=alpha, beta=0.0, s_max=BIG)
    # start at theta* itself: the floor is reached at once
    errs = _run_iid(p, opt, p.solution(), 200, seed=seed)
    pair_max = np.maximum(errs[:-1], errs[1:])
    assert pair_max[1:].min() >= r * (1 - 1e-9)
    assert errs[1] >= r * (1 - 1e-9)  # the first step from theta* leaves the floor's ball


# ------------------------------------------------------------------ Kaczmarz (case 6)


def _exact_residual(a, y, theta):
    return float(sum(Fraction(float(ai)) * Fraction(float(ti)) for ai, ti in zip(
        a, theta, strict=True)) - Fraction(float(y)))


@settings(max_examples=10)
@given(n_rows=st.integers(1, 40), n_cols=st.integers(1, 12), log_mu=st.floats(-3, 1),
       seed=st.integers(0, 2**16), dtype=st.sampled_from(["float64", "float32"]))
def test_case6_kaczmarz_equivalence(xp, n_rows, n_cols, log_mu, seed, dtype):
    """Batch size 1, alpha = 1, beta = 0: theta_next = theta - (a'theta - y)/||a||^2 a."""
    n_rows = max(n_rows, n_cols)
    p = make_least_squares(n_rows=n_rows, n_cols=n_cols, seed=seed, xp=xp, dtype=dtype)
    eps, n = float(np.finfo(dtype).eps), n_cols
    k = (n + 4) * eps
    rows, ys = _dev(p, p.rows), _dev(p, p.targets)
    if dtype == "float32":  # the difference quotient needs mu of order ||e|| in float32
        log_mu = max(log_mu, 0.0)
    mu = 10.0**log_mu
    opt = PAL(mu=mu, alpha=1.0, beta=0.0, s_max=BIG)
    theta = p.init_params(seed)
    state = opt.init(theta)
    rng = np.random.default_rng(seed)
    for t in range(30):
        i = int(rng.integers(n_rows))
        theta, state, rec = _step(p, opt, theta, state, [i])
        a, y, th = rows[i], ys[i], rec["theta"]
        r = _exact_residual(a, y, th)
        if not np.any(rec["buf"]):  # on the hyperplane exactly
            assert r == 0 or abs(r) <= k * (np.abs(a) @ np.abs(th) + abs(y))
            continue
        na = np.linalg.norm(a)
        proj = th - r / (na * na) * a
        # rounding: the residual (|a|'|theta| + |y|), the measured parabola and the update
        err_r = k * (np.abs(a) @ np.abs(th) + abs(y))
        th_mu = th + mu * np.abs(a) / na
        err_rmu = k * (np.abs(a) @ np.abs(th_mu) + abs(y))
        s = abs(r) / na
        r_mu = abs(r) + mu * na
        num = (abs(r) * err_r + r_mu * err_rmu + mu * na * err_r
               + k * (rec["l0"] + rec["l_mu"] + abs(rec["b"]) * mu))
        rel_s = num / (0.5 * na * na * mu * mu) + err_r / abs(r) + 2 * k
        tol = s * rel_s + 4 * eps * (np.linalg.norm(th) + s) + 2 * EPS64 * np.linalg.norm(th)
        note(f"step {t}: |theta_next - proj|={np.linalg.norm(rec['theta_next'] - proj)!r} "
             f"tol={tol!r} s={s!r}")
        assert np.linalg.norm(rec["theta_next"] - proj) <= tol
        if t == 0:
            assert tol <= (1e-6 if dtype == "float64" else 0.1) * s  # not vacuous
