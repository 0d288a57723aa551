"""PAL on deterministic quadratics: the convergence cases 1-5 of the quadratic suite.

L(theta) = 1/2 (theta - theta*)' A (theta - theta*) + L*, A symmetric positive definite,
kappa = lambda_max / lambda_min, g = A e, e = theta - theta*.

1. the parabola is exact: a = 1/2 d'Ad for every mu; case 2 never occurs; with beta = 0
   the learning rate is the Cauchy step g'g / g'Ag;
2. alpha = 1, beta = 0: steepest descent with exact line search, per-step loss-gap ratio
   <= ((kappa-1)/(kappa+1))^2, attained exactly on the zig-zag start;
3. general alpha: ratio = 1 - alpha(2-alpha) (g'g)^2/((g'Ag)(g'A^-1 g))
   <= 1 - alpha(2-alpha) 4 kappa/(kappa+1)^2; alpha = 2 stalls, alpha > 2 diverges;
4. clipping: s_max binds only while ||g|| > s_max lambda_min / alpha; clipped steps still
   decrease L (alpha <= 2);
5. Fletcher-Reeves with alpha = 1 is linear conjugate gradients (finite termination);
   a constant beta keeps b < 0 because the exact line search makes g_{t+1}.d_t = 0.

All expectations come from the theory; the only tolerances are rounding bounds computed
per step by :class:`_Model` from the device precision, the dimension and the measured
magnitudes ("a few ulps times a condition"), never from numbers observed in a run.
Problems are built on the host in float64 and moved to the device precision; the host
recomputes everything in float64 from the *device's* (rounded) A and theta*.

Finite precision note for case 5: conjugate gradients in floating point lose
orthogonality, so "n steps" does not survive rounding for general spectra (even the
textbook recursion needs about 2n steps in float64 for n = 50, kappa = 1e3 with
log-spaced eigenvalues). The robust forms tested here are termination in (number of
distinct eigenvalues) + 2 steps, and n + 2 steps for small n.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from paltest import PAL, backend
from problems.quadratic import make_quadratic

EPS64 = float(np.finfo(np.float64).eps)
DTYPES = ["float64", "float32"]
BIG = 1e12  # s_max that never binds (the default 10**0.5 would clip)


def _h(x) -> np.ndarray:
    return np.asarray(backend.to_host(x), dtype=np.float64)


class _Host:
    """The device's quadratic, exactly, on the host in float64."""

    def __init__(self, p):
        dt = p.dtype_name
        self.eps = float(np.finfo(dt).eps)
        self.A = p.hessian.astype(dt).astype(np.float64)  # what from_host put on the device
        self.ts = p.theta_star.astype(dt).astype(np.float64)
        self.L_star = p.L_star
        self.absA = np.abs(self.A)
        lam = np.linalg.eigvalsh(self.A)
        self.lmin, self.lmax = float(lam[0]), float(lam[-1])
        self.kappa = self.lmax / self.lmin
        self.n = self.A.shape[0]

    def grad(self, theta):
        return self.A @ (theta - self.ts)

    def gap(self, theta):
        e = theta - self.ts
        return 0.5 * e @ self.A @ e

    def gap_eval_err(self, theta):
        """Rounding of the host's own float64 evaluation of gap(theta)."""
        e = np.abs(theta - self.ts)
        return (self.n + 4) * EPS64 * (e @ self.absA @ e)

    def kantorovich(self, g):
        """(g'g)^2 / ((g'Ag)(g'A^-1 g)), the exact-line-search decrease fraction."""
        return (g @ g) ** 2 / ((g @ self.A @ g) * (g @ np.linalg.solve(self.A, g)))


class _Model:
    """Rounding bounds of one PAL step theta -> theta_next along -buf (device values).

    ``rel_a``: relative error of the difference quotient a; ``rel_s``: of the update step;
    ``delta``: a bound on ||theta_next - (theta + s_exact d_hat)|| where s_exact is the
    exact PAL step along the device's own direction; ``dir_rel``: relative error of the
    device's gradient (buf - g for beta = 0).
    """

    def __init__(self, H: _Host, rec: dict, mu: float, alpha: float):
        eps, n = H.eps, H.n
        k = (n + 4) * eps  # a dot product of length n plus a few operations
        theta, buf, nxt = rec["theta"], rec["buf"], rec["theta_next"]
        e = theta - H.ts
        self.g = g = H.A @ e
        abs_ae = H.absA @ np.abs(e)
        nb = np.linalg.norm(buf)
        self.dhat = d = -buf / nb
        self.a = 0.5 * d @ H.A @ d
        self.b = g @ d
        self.s_exact = alpha * max(-self.b, 0.0) / (2 * self.a)
        e_mu = e + mu * d
        g_mu = H.A @ e_mu
        err_l0 = k * (np.abs(e) @ abs_ae) + eps * abs(H.L_star)
        err_lmu = (k * (np.abs(e_mu) @ H.absA @ np.abs(e_mu)) + eps * abs(H.L_star)
                   + 2 * eps * np.abs(g_mu) @ (np.abs(theta) + mu * np.abs(d)))
        self.err_b = k * (np.linalg.norm(abs_ae) + np.linalg.norm(g))
        l0, lmu = abs(rec["l0"]), abs(rec["l_mu"])
        num = err_l0 + err_lmu + mu * self.err_b + k * (l0 + lmu + abs(rec["b"]) * mu)
        self.rel_a = num / (self.a * mu * mu)
        self.rel_s = self.rel_a + self.err_b / max(abs(self.b), 1e-300) + 2 * k
        s = rec["step"]
        pos = 2 * eps * (np.linalg.norm(nxt) + s)
        self.delta = (eps * s if rec["clipped"] else s * self.rel_s) + pos
        self.dir_rel = (np.linalg.norm(buf - g) + k * np.linalg.norm(abs_ae)) / max(
            np.linalg.norm(g), 1e-300)

    def gap_err(self, H: _Host, theta_next) -> float:
        """Bound on |gap(theta_next) - gap(exact step)| plus the host evaluation error."""
        d = self.delta
        return (np.linalg.norm(H.grad(theta_next)) * d + 1.5 * H.lmax * d * d
                + H.gap_eval_err(theta_next))


def _trajectory(p, opt, theta0, steps):
    """Run PAL on the full quadratic; one record per step, all on the host in float64."""
    theta = backend.from_host(theta0, p.xp, dtype=p.dtype)
    state = opt.init(theta)
    vg, f = p.bind(p.full_batch())
    recs = []
    for _ in range(steps):
        before = _h(theta)
        theta, state, info = opt.step(theta, state, vg, f)
        recs.append({
            "theta": before, "theta_next": _h(theta), "buf": _h(state.buf),
            "l0": float(_h(info.l0)), "l_mu": float(_h(info.l_mu)), "a": float(_h(info.a)),
            "b": float(_h(info.b)), "step": float(_h(info.step)), "lr": float(_h(info.lr)),
            "case": int(_h(info.case)), "clipped": bool(_h(info.clipped)),
        })
    return recs


def _start(H: _Host, dtype, rng, radius):
    """theta* + radius * (random unit vector), rounded to the device precision."""
    u = rng.standard_normal(H.n)
    return (H.ts + radius * u / np.linalg.norm(u)).astype(dtype).astype(np.float64)


@st.composite
def spd_problems(draw, max_n=20, max_log_kappa=4.0):
    """(n, kappa, eigenvalues with both ends present, seed)."""
    n = draw(st.integers(2, max_n))
    log_kappa = draw(st.floats(0.0, max_log_kappa))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    lam = 10.0 ** np.concatenate([[0.0, log_kappa], rng.uniform(0, log_kappa, n - 2)])
    return lam, seed


def _ratio_checks(H, recs, mu, alpha):
    """(ratio, margin, kantorovich factor, model) per step, for the loss gap."""
    out = []
    for rec in recs:
        gap0, gap1 = H.gap(rec["theta"]), H.gap(rec["theta_next"])
        if gap0 == 0 or not np.any(rec["buf"]):  # at theta* exactly: nothing to measure
            break
        m = _Model(H, rec, mu, alpha)
        c = H.kantorovich(m.g)
        w = abs(alpha * (2 - alpha))
        # gap errors of both ends, plus the direction error: c changes by at most
        # 2 (1 + sqrt(kappa)) ||dg||/||g|| (relative, first order; doubled for 2nd).
        margin = ((m.gap_err(H, rec["theta_next"]) + H.gap_eval_err(rec["theta"])) / gap0
                  + w * 4 * (1 + math.sqrt(H.kappa)) * m.dir_rel * c)
        out.append((gap1 / gap0, margin, c, m))
    return out


# --------------------------------------------------------------------------- case 1


@settings(max_examples=15)
@given(prob=spd_problems(), log_mu=st.floats(-3, 1), radius=st.floats(0.1, 3.0),
       L_star=st.floats(-10, 10), dtype=st.sampled_from(DTYPES))
def test_case1_curvature_is_exact_for_every_mu(xp, prob, log_mu, radius, L_star, dtype):
    """a = 1/2 d'Ad over mu in [1e-3, 10] (float32: [0.1, 10], kappa <= 100)."""
    lam, seed = prob
    if dtype == "float32":  # keep the difference quotient resolvable in float32
        log_mu = max(log_mu, -1.0)
        lam = lam ** min(1.0, 2.0 / max(math.log10(lam.max()), 1e-300))
    p = make_quadratic(eigenvalues=lam, seed=seed, L_star=L_star, xp=xp, dtype=dtype)
    H = _Host(p)
    theta0 = _start(H, dtype, np.random.default_rng(seed + 1), radius)
    a_values, rel = [], []
    for mu in (10.0 ** log_mu, 1e-3 if dtype == "float64" else 0.1, 1.0, 10.0):
        opt = PAL(mu=mu, alpha=1.0, beta=0.0, s_max=BIG)
        (rec,) = _trajectory(p, opt, theta0, 1)
        m = _Model(H, rec, mu, 1.0)
        note(f"mu={mu} a={rec['a']!r} exact={m.a!r} rel_a={m.rel_a!r}")
        assert m.rel_a < (1e-6 if dtype == "float64" else 0.1)  # the check is not vacuous
        assert abs(rec["a"] - m.a) <= m.rel_a * m.a
        a_values.append(rec["a"])
        rel.append(m.rel_a)
    # so a does not depend on mu: the same gradient direction for every mu
    assert max(a_values) - min(a_values) <= 2 * max(rel) * m.a


@settings(max_examples=15)
@given(prob=spd_problems(), log_mu=st.floats(-3, 1), radius=st.floats(0.1, 3.0),
       L_star=st.floats(-1, 1), dtype=st.sampled_from(DTYPES))
def test_case1_cauchy_step_and_no_case_2(xp, prob, log_mu, radius, L_star, dtype):
    """beta = 0: lr = g'g/g'Ag in [1/lambda_max, 1/lambda_min]; a > 0, never case 2."""
    lam, seed = prob
    if dtype == "float32":
        log_mu = max(log_mu, -0.5)
        lam = np.minimum(lam, 100.0)
    p = make_quadratic(eigenvalues=lam, seed=seed, L_star=L_star, xp=xp, dtype=dtype)
    H = _Host(p)
    mu = 10.0**log_mu
    theta0 = _start(H, dtype, np.random.default_rng(seed + 1), radius)
    recs = _trajectory(p, PAL(mu=mu, alpha=1.0, beta=0.0, s_max=BIG), theta0, 30)
    for t, rec in enumerate(recs):
        note(f"step {t}: {rec['case']=} {rec['a']=} {rec['lr']=}")
        assert rec["case"] != 2 and rec["case"] != 3
        if not np.any(rec["buf"]):  # g == 0 exactly: case 0, no move
            assert rec["case"] == 0 and rec["step"] == 0
            continue
        m = _Model(H, rec, mu, 1.0)
        assert m.rel_a < 1, "a is resolvable, so its sign is the parabola's"
        assert rec["case"] == 1 and rec["a"] > 0
        g = m.g
        cauchy = (g @ g) / (g @ H.A @ g)
        assert 1 / H.lmax * (1 - 4 * H.eps) <= cauchy <= 1 / H.lmin * (1 + 4 * H.eps)
        tol = m.rel_s + (H.n + 4) * H.eps + 4 * (1 + math.sqrt(H.kappa)) * m.dir_rel
        if t == 0:
            assert tol < (1e-6 if dtype == "float64" else 0.1)  # not vacuous
        assert abs(rec["lr"] - cauchy) <= tol * cauchy


# --------------------------------------------------------------------------- case 2


@settings(max_examples=20)
@given(prob=spd_problems(max_n=30), mu_rel=st.floats(0.1, 10.0),
       dtype=st.sampled_from(DTYPES))
def test_case2_steepest_descent_rate_bound(xp, prob, mu_rel, dtype):
    """alpha = 1, beta = 0: gap ratio <= ((kappa-1)/(kappa+1))^2 every step."""
    lam, seed = prob
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp, dtype=dtype)
    H = _Host(p)
    q2 = ((H.kappa - 1) / (H.kappa + 1)) ** 2
    theta0 = _start(H, dtype, np.random.default_rng(seed + 1), 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    recs = _trajectory(p, PAL(mu=mu, alpha=1.0, beta=0.0, s_max=BIG), theta0, 40)
    checks = _ratio_checks(H, recs, mu, 1.0)
    assert checks[0][1] < (1e-6 if dtype == "float64" else 1e-2)  # not vacuous
    for t, (ratio, margin, _, _) in enumerate(checks):
        note(f"step {t}: ratio={ratio!r} bound={q2!r} margin={margin!r}")
        assert ratio <= q2 + margin


@pytest.mark.parametrize("kappa", [10.0, 100.0, 4.0])
def test_case2_worst_case_attains_the_bound(xp, kappa):
    """A = diag(1, kappa), theta0 - theta* = (1, 1/kappa): ratio = bound for 50 steps."""
    p = make_quadratic(eigenvalues=[1.0, kappa], minimizer=[0.0, 0.0], rotate=False, xp=xp)
    H = _Host(p)
    q2 = ((kappa - 1) / (kappa + 1)) ** 2
    if kappa == 10.0:
        assert q2 == pytest.approx(0.669421, abs=1e-6)  # the spec's number
    recs = _trajectory(p, PAL(mu=1.0, alpha=1.0, beta=0.0, s_max=BIG),
                       np.array([1.0, 1.0 / kappa]), 50)
    ratios = [H.gap(r["theta_next"]) / H.gap(r["theta"]) for r in recs]
    np.testing.assert_allclose(ratios, q2, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- case 3


@settings(max_examples=20)
@given(prob=spd_problems(max_log_kappa=3.0), alpha=st.floats(0.05, 1.95),
       mu_rel=st.floats(0.1, 10.0), dtype=st.sampled_from(DTYPES))
def test_case3_alpha_family_identity_and_bound(xp, prob, alpha, mu_rel, dtype):
    """0 < alpha < 2: ratio = 1 - alpha(2-alpha) c_t <= 1 - alpha(2-alpha) 4k/(k+1)^2."""
    lam, seed = prob
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp, dtype=dtype)
    H = _Host(p)
    w = alpha * (2 - alpha)
    bound = 1 - w * 4 * H.kappa / (H.kappa + 1) ** 2
    theta0 = _start(H, dtype, np.random.default_rng(seed + 1), 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    recs = _trajectory(p, PAL(mu=mu, alpha=alpha, beta=0.0, s_max=BIG), theta0, 30)
    checks = _ratio_checks(H, recs, mu, alpha)
    # the step error now enters to first order: d ratio = 2 alpha |1 - alpha| c rel_s
    extra = [2 * alpha * abs(1 - alpha) * c * m.rel_s + alpha**2 * m.rel_s**2
             for (_, _, c, m) in checks]
    assert checks[0][1] + extra[0] < (1e-6 if dtype == "float64" else 5e-2)  # not vacuous
    for t, ((ratio, margin, c, _), x) in enumerate(zip(checks, extra, strict=True)):
        note(f"step {t}: ratio={ratio!r} identity={1 - w * c!r} bound={bound!r}")
        assert abs(ratio - (1 - w * c)) <= margin + x
        assert ratio <= bound + margin + x


@settings(max_examples=10)
@given(prob=spd_problems(max_log_kappa=3.0), mu_rel=st.floats(0.1, 10.0),
       unit=st.booleans())
def test_case3_alpha_two_makes_no_progress(xp, prob, mu_rel, unit):
    """alpha = 2: the step reflects through the line minimum, the gap stays (any kappa)."""
    lam, seed = prob
    if unit:  # kappa = 1: the step is the reflection theta -> 2 theta* - theta
        lam = np.full_like(lam, lam[-1])
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp)
    H = _Host(p)
    theta0 = _start(H, "float64", np.random.default_rng(seed + 1), 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    recs = _trajectory(p, PAL(mu=mu, alpha=2.0, beta=0.0, s_max=BIG), theta0, 20)
    for ratio, margin, c, m in _ratio_checks(H, recs, mu, 2.0):
        assert abs(ratio - 1) <= margin + 2 * 2 * c * m.rel_s + 4 * m.rel_s**2
        assert margin < 1e-6
    if unit:
        np.testing.assert_allclose(recs[0]["theta_next"], 2 * H.ts - theta0,
                                   rtol=0, atol=1e-12 * (1 + np.abs(H.ts).max()))


@settings(max_examples=10)
@given(prob=spd_problems(max_log_kappa=2.0), alpha=st.floats(2.05, 3.5),
       mu_rel=st.floats(0.1, 10.0))
def test_case3_alpha_above_two_diverges(xp, prob, alpha, mu_rel):
    """alpha > 2: ratio >= 1 + alpha(alpha-2) 4k/(k+1)^2 > 1, the gap grows."""
    lam, seed = prob
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp)
    H = _Host(p)
    grow = 1 + alpha * (alpha - 2) * 4 * H.kappa / (H.kappa + 1) ** 2
    theta0 = _start(H, "float64", np.random.default_rng(seed + 1), 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    # few steps: a's rounding grows like ||e||^2/mu^2 as the iterates fly away
    recs = _trajectory(p, PAL(mu=mu, alpha=alpha, beta=0.0, s_max=BIG), theta0, 8)
    checks = _ratio_checks(H, recs, mu, alpha)
    for t, (ratio, margin, c, m) in enumerate(checks):
        x = 2 * alpha * abs(1 - alpha) * c * m.rel_s + alpha**2 * m.rel_s**2
        note(f"step {t}: ratio={ratio!r} >= {grow!r} - {margin + x!r}")
        assert grow - margin - x > 1  # resolvable: the test is not vacuous
        assert ratio >= grow - margin - x
    assert H.gap(recs[-1]["theta_next"]) > H.gap(theta0)


# --------------------------------------------------------------------------- case 4


@settings(max_examples=20)
@given(prob=spd_problems(max_n=10, max_log_kappa=1.0), alpha=st.floats(0.3, 1.7),
       frac=st.floats(0.05, 0.95), dtype=st.sampled_from(DTYPES))
def test_case4_clipping_threshold_and_monotone_decrease(xp, prob, alpha, frac, dtype):
    """Clipped iff alpha ||g||^3/g'Ag > s_max, hence only while ||g|| > s_max l_min/alpha;
    clipped steps still decrease L; unclipped steps obey the rate of case 3."""
    lam, seed = prob
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp, dtype=dtype)
    H = _Host(p)
    theta0 = _start(H, dtype, np.random.default_rng(seed + 1), 1.0)
    g0 = H.grad(theta0)
    s_raw0 = alpha * (g0 @ g0) ** 1.5 / (g0 @ H.A @ g0)
    gap0 = H.gap(theta0)
    # A clipped step (s_max < alpha s* <= 2 s*) lowers the gap by at least
    # s_max^2 l_min (1 - alpha/2)/alpha, so at most n_clip = gap0 alpha /
    # (s_max^2 l_min (1 - alpha/2)) steps are clipped. Choose s_max between that and s_raw0.
    lo = math.sqrt(gap0 * alpha / (60 * H.lmin * (1 - alpha / 2)))
    assume(lo < s_raw0)
    s_max = lo + frac * (s_raw0 - lo)
    n_clip = gap0 * alpha / (s_max**2 * H.lmin * (1 - alpha / 2))
    mu = np.linalg.norm(theta0 - H.ts)
    opt = PAL(mu=mu, alpha=alpha, beta=0.0, s_max=s_max)
    recs = _trajectory(p, opt, theta0, math.ceil(n_clip) + 10)
    bound = 1 - alpha * (2 - alpha) * 4 * H.kappa / (H.kappa + 1) ** 2
    s_max_dev = float(np.asarray(s_max, dtype=dtype))  # the clipped step in device precision
    assert recs[0]["clipped"]  # by construction s_max < s_raw0
    n_clipped = 0
    for t, rec in enumerate(recs):
        if not np.any(rec["buf"]):  # theta* reached exactly (g == 0): case 0
            assert rec["case"] == 0 and not rec["clipped"]
            continue
        m = _Model(H, rec, mu, alpha)
        g = m.g
        gn = np.linalg.norm(g)
        s_raw = alpha * gn**3 / (g @ H.A @ g)  # alpha times the exact line minimum
        band = m.rel_s + 4 * (1 + math.sqrt(H.kappa)) * m.dir_rel + 2 * H.eps
        note(f"step {t}: clipped={rec['clipped']} s_raw/s_max={s_raw / s_max!r}")
        assert rec["step"] <= s_max_dev
        if rec["clipped"]:
            n_clipped += 1
            assert rec["step"] == s_max_dev
            assert s_raw >= s_max * (1 - band)
            assert gn * (1 + m.dir_rel) > s_max * H.lmin / alpha * (1 - band)
            gap0_t, gap1_t = H.gap(rec["theta"]), H.gap(rec["theta_next"])
            # along the line: f(s) = gap - s |b| + a s^2 < gap for 0 < s < 2 s*
            f_smax = gap0_t + m.b * s_max + m.a * s_max**2
            err = m.gap_err(H, rec["theta_next"]) + H.gap_eval_err(rec["theta"])
            assert f_smax < gap0_t
            assert abs(gap1_t - f_smax) <= err + gap0_t * 4 * (1 + math.sqrt(H.kappa)) * (
                m.dir_rel)
            assert gap1_t < gap0_t + err
        else:
            assert s_raw <= s_max * (1 + band)
            assert abs(rec["step"] - s_raw) <= band * s_raw + H.eps * rec["step"]
        if gn * (1 + m.dir_rel) < s_max * H.lmin / alpha * (1 - band):
            assert not rec["clipped"]  # below the threshold, s_max never binds
    assert n_clipped <= n_clip
    assert n_clipped < len(recs)
    for ratio, margin, c, m in _ratio_checks(H, recs[n_clipped:], mu, alpha):
        x = 2 * alpha * abs(1 - alpha) * c * m.rel_s + alpha**2 * m.rel_s**2
        assert ratio <= bound + margin + x


# --------------------------------------------------------------------------- case 5


def _grad_norms(H, recs):
    return [np.linalg.norm(H.grad(recs[0]["theta"]))] + [
        np.linalg.norm(H.grad(r["theta_next"])) for r in recs]


@settings(max_examples=25)
@given(m=st.integers(1, 8), extra=st.integers(0, 42), log_kappa=st.floats(0.0, 3.0),
       seed=st.integers(0, 2**16), mu_rel=st.floats(0.1, 10.0),
       formula=st.sampled_from(["fletcher-reeves", "fr"]))
def test_case5_fletcher_reeves_terminates(xp, m, extra, log_kappa, seed, mu_rel, formula):
    """alpha = 1, FR: theta* (||g|| <= 1e-10 ||g0||) within m + 2 steps, m the number of
    distinct eigenvalues (n = m + extra <= 50, kappa <= 1e3)."""
    rng = np.random.default_rng(seed)
    distinct = np.logspace(0.0, log_kappa, m) if m > 1 else np.ones(1)
    lam = np.concatenate([distinct, rng.choice(distinct, extra)])
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp)
    H = _Host(p)
    theta0 = _start(H, "float64", rng, 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    recs = _trajectory(p, PAL(mu=mu, alpha=1.0, beta=formula, s_max=BIG), theta0, m + 2)
    norms = _grad_norms(H, recs)
    note(f"relative gradient norms {np.array(norms) / norms[0]}")
    assert min(norms[1:]) <= 1e-10 * norms[0]


@settings(max_examples=20)
@given(n=st.integers(1, 5), log_kappa=st.floats(0.0, 3.0), seed=st.integers(0, 2**16),
       mu_rel=st.floats(0.1, 10.0))
def test_case5_fletcher_reeves_terminates_in_n_plus_2(xp, n, log_kappa, seed, mu_rel):
    """General spectrum, small n: theta* within n + 2 steps."""
    rng = np.random.default_rng(seed)
    lam = 10.0 ** np.concatenate([[0.0, log_kappa], rng.uniform(0, log_kappa, n)])[:n]
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp)
    H = _Host(p)
    theta0 = _start(H, "float64", rng, 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    recs = _trajectory(p, PAL(mu=mu, alpha=1.0, beta="fletcher-reeves", s_max=BIG),
                       theta0, n + 2)
    norms = _grad_norms(H, recs)
    assert min(norms[1:]) <= 1e-10 * norms[0]


@settings(max_examples=20)
@given(prob=spd_problems(max_log_kappa=3.0).filter(lambda p: p[0].max() > 2.0),
       beta=st.floats(0.05, 1.0),
       mu_rel=st.floats(0.1, 10.0), dtype=st.sampled_from(DTYPES))
def test_case5_constant_beta_keeps_descent(xp, prob, beta, mu_rel, dtype):
    """alpha = 1, constant beta: g_{t+1}.d_t = 0, so b_{t+1} = -||g||^2/sqrt(||g||^2 +
    beta^2 ||buf_t||^2) < 0 (buf_{t+1} = beta buf_t + g_{t+1}, Pythagoras)."""
    lam, seed = prob
    p = make_quadratic(eigenvalues=lam, seed=seed, xp=xp, dtype=dtype)
    H = _Host(p)
    theta0 = _start(H, dtype, np.random.default_rng(seed + 1), 1.0)
    mu = mu_rel * np.linalg.norm(theta0 - H.ts)
    recs = _trajectory(p, PAL(mu=mu, alpha=1.0, beta=beta, s_max=BIG), theta0, 25)
    k = (H.n + 4) * H.eps
    resolved = 0
    for t in range(1, len(recs)):
        prev, rec = recs[t - 1], recs[t]
        if prev["case"] != 1:  # orthogonality needs a line search in the previous step
            continue
        mp = _Model(H, prev, mu, 1.0)
        # |g_{t+1}.d_t| <= |b_t| rel_s (line-search error) + l_max * (position rounding)
        ortho = abs(mp.b) * mp.rel_s + H.lmax * 2 * H.eps * (
            np.linalg.norm(prev["theta_next"]) + prev["step"])
        g = H.grad(rec["theta"])
        gg = g @ g
        nb = np.linalg.norm(prev["buf"])
        N = math.sqrt(gg + beta**2 * nb**2)
        pred = -gg / N
        r = k * (np.linalg.norm(H.absA @ np.abs(rec["theta"] - H.ts)) + math.sqrt(gg))
        tol = 2 * (beta * nb * (ortho + r) + 3 * math.sqrt(gg) * r) / N + k * abs(pred)
        note(f"step {t}: b={rec['b']!r} predicted={pred!r} tol={tol!r}")
        assert abs(rec["b"] - pred) <= tol
        if -pred > tol:  # b's sign is resolvable above rounding
            resolved += 1
            assert rec["b"] < 0 and rec["case"] == 1
    assert resolved >= 1  # not vacuous
