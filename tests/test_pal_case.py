"""Property tests of PAL's case function (paltest.optimizers.pal.pal_case).

The reference is computed exactly with rational arithmetic (fractions.Fraction) from
the same floating inputs, with subnormal inputs read as zeros (the documented rule), so
the only tolerance is the rounding of the library's own float computation, whose size
follows from the cancellation in l_mu - l0 - b*mu. Every test runs on each namespace
chosen with ``--xp``; the subnormal tests hold the result to the same numbers on
backends that flush subnormals in hardware (JAX on the CPU) and on those that do not.
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


TINY64 = float(np.finfo(np.float64).smallest_normal)


def _ftz(v, tiny=TINY64):
    """A subnormal Python float as a zero of its sign; anything else unchanged."""
    return math.copysign(0.0, v) if abs(v) < tiny else v


def _reference(l0, l_mu, b, mu, alpha, s_max):
    """Exact case, step and unclipped step; the relative rounding tolerance; ambiguity."""
    if not (math.isfinite(l0) and math.isfinite(l_mu) and math.isfinite(b)):
        return 3, 0.0, 0.0, 0.0, False
    l0, l_mu, b = _ftz(l0), _ftz(l_mu), _ftz(b)  # subnormal inputs are zeros
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
    # exact only while the values stay normal (subnormals count as zeros), before and after
    for v, w in zip((h0, hmu, hb), scaled, strict=True):
        assume(np.all(np.ldexp(w, -k) == v))
        assume(np.all((w == 0) | (np.abs(w) >= TINY64)))
        assume(np.all((v == 0) | (np.abs(v) >= TINY64)))
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
        assume(np.all((v == 0) | (np.abs(w) >= TINY64)))
        assume(np.all((v == 0) | (np.abs(v) >= TINY64)))  # subnormals count as zeros
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


# -- subnormals: one rule on every backend ----------------------------------------------
# Issue 13: JAX on the CPU flushes subnormals, so b = -2.2e-309 gave case 0 / step 0 on
# JAX and case 1 / step 0.5 on NumPy. The rule: subnormal inputs and intermediates count
# as zeros of their sign, on every backend.
SUB64 = -2.2250738585072014e-309  # a tenth of the smallest normal float64
SUB32 = -1.1754943508222875e-39  # a tenth of the smallest normal float32


@pytest.mark.parametrize(("dtype", "sub"), [("float64", SUB64), ("float32", SUB32)])
def test_subnormal_slope_is_no_descent(xp, dtype, sub):
    """|b| below the smallest normal is b = 0: case 0, step 0 (whatever l0 and l_mu)."""
    f = lambda *v: backend.from_host(np.array(v, dtype=dtype), xp)  # noqa: E731
    r = pal_case(f(0.0, 1.0, sub), f(0.0, 0.5, sub / 2), f(sub, sub, sub),
                 mu=1.0, alpha=1.0, s_max=10.0)
    np.testing.assert_array_equal(backend.to_host(r.case), [0, 0, 0])
    np.testing.assert_array_equal(backend.to_host(r.step), [0.0, 0.0, 0.0])
    assert not np.any(backend.to_host(r.clipped))


@pytest.mark.parametrize(("dtype", "b"), [("float64", -1e-300), ("float32", -1e-30)])
def test_subnormal_intermediate_counts_as_zero(xp, dtype, b):
    """An exactly linear l_mu = l0 whose b*mu/m is subnormal is case 2 (D = 0).

    l0 = l_mu = 1 scale by m = 1/2; with mu = 1e-10 (float64; 1e-9 float32) b*mu/m is
    subnormal (2e-310, 2e-39): without the rule D = -b*mu/m > 0 gave case 1 on NumPy,
    while JAX on the CPU (flushing it) gave case 2.
    """
    mu = 1e-10 if dtype == "float64" else 1e-9
    tiny = float(np.finfo(dtype).smallest_normal)
    m = 0.5
    assert 0 < abs(np.asarray(b, dtype) / m * np.asarray(mu, dtype)) < tiny  # subnormal
    f = lambda v: backend.from_host(np.array([v], dtype=dtype), xp)  # noqa: E731
    r = pal_case(f(1.0), f(1.0), f(b), mu=mu, alpha=1.0, s_max=10.0)
    assert int(backend.to_host(r.case)[0]) == 2
    assert backend.to_host(r.step)[0] == np.asarray(mu, dtype)
    assert backend.to_host(r.a)[0] == 0.0


@given(data=st.data())
def test_subnormal_inputs_are_zeros(xp, xps, data):
    """Flushing the inputs beforehand (on the host) changes no output bit, on every
    backend: drawn from a mix of subnormal, normal and special values."""
    el = st.one_of(st.floats(-1e-307, 1e-307), ANY_FLOAT, st.sampled_from([SUB64, -SUB64]))
    l0, l_mu, b, mu, alpha, s_max = data.draw(case_inputs(xps, el))
    (h0, hmu, hb), got = _run(xp, l0, l_mu, b, mu, alpha, s_max)
    flushed = [np.where(np.abs(v) < TINY64, v * 0.0, v) for v in (h0, hmu, hb)]
    want = pal_case(*(backend.from_host(v, xp) for v in flushed), mu, alpha, s_max)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, backend.to_host(w))
        assert g.tobytes() == backend.to_host(w).tobytes()  # zeros keep their sign too


@given(data=st.data())
def test_scalar_calls_equal_the_vector_call(xp, xps, data):
    """pal_case on 0-d arrays (what a PAL step passes; NumPy then flushes with a host
    read) equals the vectorised call bitwise, subnormals included."""
    el = st.one_of(st.floats(-1e-300, 1e-300), ANY_FLOAT)
    l0, l_mu, b, mu, alpha, s_max = data.draw(case_inputs(xps, el))
    (h0, hmu, hb), vec = _run(xp, l0, l_mu, b, mu, alpha, s_max)
    for i in range(h0.shape[0]):
        one = pal_case(*(backend.from_host(v[i], xp) for v in (h0, hmu, hb)),
                       mu, alpha, s_max)
        for whole, part in zip(vec, one, strict=True):
            assert whole[i].tobytes() == backend.to_host(part).tobytes()
