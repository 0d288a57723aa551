"""PAL's two evaluators (paltest.optimizers.pal_cases) agree bitwise.

The host evaluator (NumPy scalars, Python branches) and the array evaluator (``where`` on
arrays) run one case function; these tests hold them to the same bits over the wide input
ranges of tests/test_pal_case.py, in float64 and float32, and hold whole PAL runs with the
host fast path to the bits of runs with it switched off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import paltest
from paltest import PAL, backend
from paltest.optimizers import pal_cases
from paltest.testbed import results

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

HYPER = st.one_of(
    st.floats(min_value=1e-4, max_value=1e4),
    st.floats(min_value=1e-300, max_value=1e300),  # mu * mu under- and overflows
)


def _elements(dtype):
    width = 32 if dtype == "float32" else 64
    tiny = float(np.finfo(dtype).smallest_normal)
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=width),
        st.floats(-2 * tiny, 2 * tiny, width=width),  # subnormals, both zeros
        st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, tiny, -tiny,
                         float(np.finfo(dtype).max), -float(np.finfo(dtype).max)]),
    )


def _host_scalar(v, dtype):
    return np.float32(v) if dtype == "float32" else float(v)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(data=st.data())
def test_host_evaluator_equals_array_evaluator(xp, dtype, data):
    """Elementwise host results are bitwise the array evaluator's (on ``xp``)."""
    n = data.draw(st.integers(1, 12))
    el = _elements(dtype)
    h0, hmu, hb = (np.asarray(data.draw(st.lists(el, min_size=n, max_size=n)), dtype=dtype)
                   for _ in range(3))
    mu, alpha, s_max = data.draw(HYPER), data.draw(HYPER), data.draw(HYPER)
    l0, l_mu, b = (backend.from_host(v, xp) for v in (h0, hmu, hb))
    finite = xp.isfinite(l0) & xp.isfinite(l_mu) & xp.isfinite(b)
    arr = [backend.to_host(v) for v in
           pal_cases.array_case(xp, l0, l_mu, b, mu, alpha, s_max, finite)]
    assert arr[0].dtype == arr[1].dtype == np.dtype(dtype)
    for i in range(n):
        v = [_host_scalar(x[i], dtype) for x in (h0, hmu, hb)]
        ok = all(math.isfinite(x) for x in v)
        got = pal_cases.host_case(*v, mu, alpha, s_max, ok, np.dtype(dtype))
        assert np.asarray(got.step, dtype).tobytes() == arr[0][i].tobytes()
        a = np.asarray(got.a, dtype)
        # a is NaN where an input is; a NaN's sign bit is not defined by IEEE 754
        # (PyTorch's CPU kernels give -nan where NumPy gives nan), every other bit counts
        assert (np.isnan(a) and np.isnan(arr[1][i])) or a.tobytes() == arr[1][i].tobytes()
        assert got.case == int(arr[2][i]) and bool(got.clipped) == bool(arr[3][i])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_power_of_two_is_exact_for_every_exponent(dtype):
    """The host evaluator's 2^k (math.ldexp) equals NumPy's ``2.0 ** k`` for every k
    the case logic can make (from the smallest normal's exponent up)."""
    info = np.finfo(dtype)
    ks = np.arange(int(math.log2(float(info.smallest_normal))), info.maxexp, dtype=dtype)
    ops = pal_cases.host_ops(np.dtype(dtype))
    want = 2.0 ** ks
    got = np.asarray([ops.pow2(k) for k in ks], dtype=dtype)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_clip_at_a_rounded_s_max(dtype):
    """s_max not representable in float32: the comparison rounds it as NumPy does."""
    f = lambda v: np.asarray(v, dtype=dtype)  # noqa: E731
    s_max = 10**0.5
    for mu in (s_max, np.nextafter(np.float32(s_max), np.float32(4)).item(), 1.0):
        a = pal_cases.array_case(np, f([1.0]), f([0.5]), f([-1.0]), mu, 1.0, s_max,
                                 np.asarray([True]))
        h = pal_cases.host_case(_host_scalar(1.0, dtype), _host_scalar(0.5, dtype),
                                _host_scalar(-1.0, dtype), mu, 1.0, s_max, True,
                                np.dtype(dtype))
        assert np.asarray(h.step, dtype).tobytes() == a.step[0].tobytes()
        assert bool(h.clipped) == bool(a.clipped[0])


def _run(problem, opt, dtype, batch_size, fast, monkeypatch):
    monkeypatch.setattr(pal_cases, "HOST_FAST_PATH", fast)
    return paltest.run(problem, opt, epochs=3, batch_size=batch_size, seed=4,
                       problem_options={"dtype": dtype})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("problem", "batch_size"), [("mf-rank4", 100),
                                                     ("batch-quadratic", 10)])
@pytest.mark.parametrize("kwargs", [
    {}, {"beta": 0.0}, {"beta": "fletcher-reeves"}, {"beta": "polak-ribiere"},
    {"beta": "hestenes-stiefel", "mu": 0.1}, {"beta": "dai-yuan", "alpha": 1.0},
    {"mu": 1e-3, "s_max": 0.01},
])
def test_runs_bitwise_equal_with_and_without_the_fast_path(problem, batch_size, dtype,
                                                           kwargs, monkeypatch):
    """Every non-timing array of a PAL run is bitwise the same on either evaluator."""
    fast = _run(problem, PAL(**kwargs), dtype, batch_size, True, monkeypatch)
    slow = _run(problem, PAL(**kwargs), dtype, batch_size, False, monkeypatch)
    assert fast.steps.keys() == slow.steps.keys()
    for key, arr in slow.steps.items():
        assert arr.dtype == fast.steps[key].dtype, key
        assert arr.tobytes() == fast.steps[key].tobytes(), key
    for key, arr in slow.epochs.items():
        if key not in results.TIMING_ARRAYS:
            assert arr.tobytes() == fast.epochs[key].tobytes(), key
    assert len(set(fast.steps["case"].tolist())) >= 1


@pytest.mark.parametrize("loss_dtype", ["float32", "float64"])
@pytest.mark.parametrize("beta", [0.4, "polak-ribiere", "dai-yuan"])
def test_step_record_types_on_numpy(beta, loss_dtype, monkeypatch):
    """The fast path's record has the documented types: 0-d NumPy arrays, and the same
    dtypes (and bits) as the array evaluator's; theta and state too. float32 parameters
    with a float64 loss run the case logic in float64 on both paths."""
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(0)
    A = np.diag(np.geomspace(1, 30, 5)).astype("float32")
    loss = lambda t: xp.astype(0.5 * xp.vecdot(t, A @ t), loss_dtype) * 1.1  # noqa: E731
    vg = lambda t: (loss(t), A @ t)  # noqa: E731
    f = loss
    theta0 = rng.standard_normal(5).astype("float32")
    out = {}
    for fast in (True, False):
        monkeypatch.setattr(pal_cases, "HOST_FAST_PATH", fast)
        opt = PAL(beta=beta, mu=0.3)
        theta, state = theta0, opt.init(theta0)
        recs = []
        for _ in range(4):
            theta, state, info = opt.step(theta, state, vg, f)
            recs.append(info)
        out[fast] = theta, state, recs
    for info_f, info_s in zip(out[True][2], out[False][2], strict=True):
        for key in ("l0", "l_mu", "a", "b", "step", "lr", "case", "clipped", "beta",
                    "nonfinite"):
            v, w = getattr(info_f, key), getattr(info_s, key)
            if key not in ("l0", "l_mu"):  # the losses are passed through as given
                assert isinstance(v, np.ndarray) and v.shape == (), key
            assert v.dtype == np.asarray(w).dtype, key
            assert v.tobytes() == np.asarray(w).tobytes(), key
    assert out[True][0].tobytes() == out[False][0].tobytes()
    assert out[True][1].buf.tobytes() == out[False][1].buf.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(data=st.data())
def test_compiled_host_case_equals_the_reference(dtype, data):
    """The generated host function (``compiled_host_case``: the case logic traced into
    straight-line code) returns the bits, case and clip flag of :class:`HostOps` run
    method by method, over the same wide inputs."""
    el = _elements(dtype)
    v = [_host_scalar(data.draw(el), dtype) for _ in range(3)]
    mu, alpha, s_max = data.draw(HYPER), data.draw(HYPER), data.draw(HYPER)
    ok = all(math.isfinite(x) for x in v)
    got = pal_cases.host_case(*v, mu, alpha, s_max, ok, np.dtype(dtype))
    ref = pal_cases.host_case_reference(*v, mu, alpha, s_max, ok, np.dtype(dtype))
    for g, r in zip(got, ref, strict=True):
        assert type(g) is type(r)
        assert np.asarray(g).tobytes() == np.asarray(r).tobytes()
