"""Property tests of PAL's case function (paltest.optimizers.pal.pal_case).

The reference is computed exactly with rational arithmetic (fractions.Fraction) from
the same floating inputs, so the only tolerance is the rounding of the library's own
float computation, whose size follows from the cancellation in l_mu - l0 - b*mu.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from paltest import backend, pal_case

# NumPy warns about the overflows and NaNs these inputs make on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# Elements: every float64 (tiny, huge, subnormal, zero, NaN, +-Inf) ...
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=64)
# ... and finite magnitudes spread over the whole exponent range.
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
HYPER = st.floats(min_value=1e-4, max_value=1e4, allow_nan=False, allow_infinity=False)


def _arrays(xps, elements, shape):
    return xps.arrays(dtype="float64", shape=shape, elements=elements)


@st.composite
def case_inputs(draw, xps, elements=ANY_FLOAT):
    n = draw(st.integers(1, 12))
    l0 = draw(_arrays(xps, elements, n))
    l_mu = draw(_arrays(xps, elements, n))
    b = draw(_arrays(xps, elements, n))
    mu, alpha, s_max = draw(HYPER), draw(HYPER), draw(HYPER)
    return l0, l_mu, b, mu, alpha, s_max


def _run(xp, l0, l_mu, b, mu, alpha, s_max):
    # The drawn arrays belong to the raw module; route them through the compat namespace.
    l0, l_mu, b = (backend.from_host(backend.to_host(v), xp) for v in (l0, l_mu, b))
    r = pal_case(l0, l_mu, b, mu, alpha, s_max)
    return tuple(backend.to_host(v) for v in (l0, l_mu, b)), tuple(
        backend.to_host(v) for v in r
    )


def _reference(l0, l_mu, b, mu, alpha, s_max):
    """Exact case, step and unclipped step; the relative rounding tolerance; ambiguity."""
    if not (math.isfinite(l0) and math.isfinite(l_mu) and math.isfinite(b)):
        return 3, 0.0, 0.0, 0.0, False
    if b >= 0:
        return 0, 0.0, 0.0, 0.0, False
    F = Fraction
    d = F(l_mu) - F(l0) - F(b) * F(mu)  # a * mu^2, exactly
    scale = abs(F(l_mu)) + abs(F(l0)) + abs(F(b)) * F(mu)
    # condition of the float D = l_mu - l0 - b*mu: its relative error in units of eps
    cond = scale / abs(d) if d != 0 else math.inf
    cond = float(cond) if cond < F(1e300) else math.inf
    tol = 16 * np.finfo(np.float64).eps * (1 + cond)
    ambiguous = cond > 1e12  # sign of D not determined by float arithmetic
    if d > 0:
        raw = F(alpha) * (-F(b)) * F(mu) * F(mu) / (2 * d)
        raw = float(raw) if raw < F(1e300) else math.inf
        return 1, min(raw, s_max), raw, tol, ambiguous
    return 2, min(mu, s_max), mu, tol, ambiguous


def test_case_examples(xp):
    """One hand-worked example of each case."""
    f = lambda *v: backend.from_host(np.array(v, dtype=np.float64), xp)  # noqa: E731
    # l(s) = 0.5 s^2 - s + 1: a = 0.5, b = -1, minimum at s = 1 -> case 1, s = alpha * 1
    # a <= 0 with b < 0 -> case 2, s = mu; b = 0 -> case 0; b > 0 -> case 0; NaN -> case 3
    l0 = f(1.0, 1.0, 1.0, 1.0, np.nan, 1.0)
    lmu = f(0.5, 0.0, 1.0, 2.0, 1.0, np.inf)
    b = f(-1.0, -1.0, 0.0, 1.0, -1.0, -1.0)
    r = pal_case(l0, lmu, b, mu=1.0, alpha=1.5, s_max=10.0)
    np.testing.assert_array_equal(backend.to_host(r.case), [1, 2, 0, 0, 3, 3])
    np.testing.assert_allclose(backend.to_host(r.step), [1.5, 1.0, 0, 0, 0, 0])
    np.testing.assert_allclose(backend.to_host(r.a)[:4], [0.5, 0.0, 0.0, 0.0])
    # clipping happens after alpha: 1.5 * 1 = 1.5 > s_max = 1.2
    r = pal_case(l0, lmu, b, mu=1.0, alpha=1.5, s_max=1.2)
    np.testing.assert_allclose(backend.to_host(r.step), [1.2, 1.0, 0, 0, 0, 0])
    np.testing.assert_array_equal(backend.to_host(r.clipped), [1, 0, 0, 0, 0, 0])
    # alpha is not applied in case 2, only the clip: mu = 2 > s_max = 1.2
    lmu2 = f(0.5, -1.5, 1.0, 2.0, 1.0, np.inf)  # l0 + b*mu = -1 > -1.5: a < 0
    r = pal_case(l0, lmu2, b, mu=2.0, alpha=1.5, s_max=1.2)
    assert backend.to_host(r.case)[1] == 2
    assert backend.to_host(r.step)[1] == 1.2


@given(data=st.data())
def test_step_in_range_and_never_nan(xp, xps, data):
    l0, l_mu, b, mu, alpha, s_max = data.draw(case_inputs(xps))
    _, (step, a, case, clipped) = _run(xp, l0, l_mu, b, mu, alpha, s_max)
    assert not np.any(np.isnan(step))
    assert np.all(step >= 0) and np.all(step <= s_max)
    assert set(np.unique(case)) <= {0, 1, 2, 3}
    assert np.all(~clipped | (step == s_max))  # clipped implies s = s_max
    assert case.dtype == np.int32 and step.dtype == np.float64


@given(data=st.data())
def test_each_case_formula(xp, xps, data):
    elements = data.draw(st.sampled_from([ANY_FLOAT, FINITE]))
    l0, l_mu, b, mu, alpha, s_max = data.draw(case_inputs(xps, elements))
    (l0, l_mu, b), (step, a, case, clipped) = _run(xp, l0, l_mu, b, mu, alpha, s_max)
    for i in range(l0.shape[0]):
        ref_case, ref_s, raw, tol, ambiguous = _reference(
            float(l0[i]), float(l_mu[i]), float(b[i]), mu, alpha, s_max
        )
        note(f"i={i} l0={l0[i]!r} l_mu={l_mu[i]!r} b={b[i]!r} -> ref {ref_case}, {ref_s}")
        if ambiguous:
            assert case[i] in (1, 2)
            continue
        assert case[i] == ref_case
        if ref_case == 1:
            # abs: a step of 1e-300 along a unit direction is no step at all; below it,
            # quotients of subnormals lose relative precision.
            assert step[i] == pytest.approx(ref_s, rel=tol, abs=1e-300)
        else:
            assert step[i] == ref_s
        if abs(raw - s_max) > tol * s_max:  # clearly on one side of s_max
            assert bool(clipped[i]) == (raw > s_max)


@given(data=st.data())
def test_degenerate_curvatures(xp, xps, data):
    """Zero curvature (l_mu on the tangent line) and negative curvature give case 2."""
    l0 = data.draw(st.floats(-1e6, 1e6))
    b = data.draw(st.floats(-1e6, -1e-6))
    mu = data.draw(st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    bump = data.draw(st.floats(0, 1e6))
    l_line = l0 + b * mu
    assume(math.isfinite(l_line) and (l_line - l0) == b * mu)  # exact tangent point
    f = lambda v: backend.from_host(np.array([v]), xp)  # noqa: E731
    for l_mu in (l_line, l_line - bump):
        r = pal_case(f(l0), f(l_mu), f(b), mu=mu, alpha=1.7, s_max=1e9)
        assert int(backend.to_host(r.case)[0]) == 2
        assert float(backend.to_host(r.step)[0]) == mu


@given(data=st.data())
def test_scale_invariance_power_of_two_is_exact(xp, xps, data):
    """Scaling the loss by 2^k (no overflow or underflow) leaves s bitwise unchanged."""
    l0, l_mu, b, mu, alpha, s_max = data.draw(
        case_inputs(xps, st.floats(-1e100, 1e100))
    )
    k = data.draw(st.integers(-200, 200))
    (h0, hmu, hb), (s, _, case, _) = _run(xp, l0, l_mu, b, mu, alpha, s_max)
    scaled = [np.ldexp(v, k) for v in (h0, hmu, hb)]
    # exact only while the scaled values stay normal
    for v, w in zip((h0, hmu, hb), scaled, strict=True):
        assume(np.all(np.ldexp(w, -k) == v))
        assume(np.all((w == 0) | (np.abs(w) >= np.finfo(np.float64).tiny)))
    r = pal_case(*(backend.from_host(w, xp) for w in scaled), mu, alpha, s_max)
    np.testing.assert_array_equal(backend.to_host(r.step), s)
    np.testing.assert_array_equal(backend.to_host(r.case), case)


@given(data=st.data())
def test_scale_invariance_any_factor(xp, xps, data):
    """Scaling l0, l_mu and b by any c > 0 changes s only by rounding."""
    l0, l_mu, b, mu, alpha, s_max = data.draw(
        case_inputs(xps, st.floats(-1e100, 1e100))
    )
    c = data.draw(st.floats(1e-100, 1e100))
    (h0, hmu, hb), (s, _, case, _) = _run(xp, l0, l_mu, b, mu, alpha, s_max)
    scaled = [v * c for v in (h0, hmu, hb)]
    for v, w in zip((h0, hmu, hb), scaled, strict=True):
        # no underflow to zero or subnormals, no overflow
        assume(np.all((v == 0) | (np.abs(w) >= np.finfo(np.float64).tiny)))
        assume(np.all(np.isfinite(w)))
    r = pal_case(*(backend.from_host(w, xp) for w in scaled), mu, alpha, s_max)
    s2, case2 = backend.to_host(r.step), backend.to_host(r.case)
    for i in range(s.shape[0]):
        ref_case, _, _, tol, ambiguous = _reference(
            float(h0[i]), float(hmu[i]), float(hb[i]), mu, alpha, s_max
        )
        if ambiguous or tol > 1e-3:
            continue
        assert case2[i] == case[i]
        assert s2[i] == pytest.approx(s[i], rel=4 * tol, abs=1e-300)


@given(data=st.data())
def test_float32_inputs(xp, xps, data):
    """float32 inputs give float32 steps in [0, s_max], never NaN."""
    xps = xps
    n = data.draw(st.integers(1, 8))
    el = st.floats(allow_nan=True, allow_infinity=True, width=32)
    arrs = [data.draw(xps.arrays("float32", n, elements=el)) for _ in range(3)]
    arrs = [backend.from_host(backend.to_host(v), xp) for v in arrs]
    r = pal_case(*arrs, mu=0.1, alpha=1 / 0.6, s_max=10**0.5)
    step = backend.to_host(r.step)
    assert step.dtype == np.float32
    assert not np.any(np.isnan(step))
    assert np.all((step >= 0) & (step <= np.float32(10**0.5)))
