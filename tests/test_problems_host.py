"""problems.host: the NumPy shortcuts return np.mean's bits, dtype and type.

The arrays are drawn with magnitudes over many decades (and signs), so a different
summation order or a float32 division instead of np.mean's float64 one would show in
the last bits. The shortcuts are NumPy-only, so these tests use NumPy whatever --xp is.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from problems import host

DTYPES = [np.float32, np.float64]


def _draw(seed, shape, dtype, decades):
    rng = np.random.default_rng(seed)
    mag = 10.0 ** rng.uniform(-decades, decades, shape)
    return (rng.standard_normal(shape) * mag).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 1200),
       cols=st.sampled_from([1, 3, 10]), decades=st.integers(0, 12))
def test_mean_is_np_mean(dtype, seed, rows, cols, decades):
    x = _draw(seed, (rows, cols), dtype, decades)
    ref, got = np.mean(x), host.mean(x)
    assert type(got) is type(ref)
    assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 1000),
       outputs=st.sampled_from([1, 10]), n=st.sampled_from([1, 2, 3, 7, 60]),
       decades=st.integers(0, 12))
def test_line_means_is_np_mean_over_batch_and_outputs(dtype, seed, batch, outputs, n,
                                                      decades):
    sq = _draw(seed, (n, batch, outputs), dtype, decades) ** 2
    ref = np.mean(np.ascontiguousarray(sq.transpose(1, 2, 0)), axis=(0, 1))
    got = host.line_means(sq)
    assert got.dtype == ref.dtype and got.shape == ref.shape == (n,)
    assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("linear", [False, True])
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 300),
       outputs=st.sampled_from([1, 10]), n=st.sampled_from([1, 2, 3, 5]),
       decades=st.integers(0, 12), nonfinite=st.sampled_from([None, np.inf, np.nan]))
def test_line_values_is_the_general_line_formula(dtype, linear, seed, batch, outputs, n,
                                                 decades, nonfinite):
    """The matrix-factorization line's losses: ``np.mean(r * r, axis=(0, 1))`` of
    ``r = r0 + s (r1 + s r2)`` in the ``(batch, outputs, n)`` layout (lines.py's general
    code), bit for bit, also where a residual is not finite."""
    r0, r1, r2 = (_draw(seed + i, (batch, outputs), dtype, decades) for i in range(3))
    if nonfinite is not None:
        r1[batch // 2, 0] = nonfinite
    r2 = None if linear else r2
    s = _draw(seed + 3, (n,), dtype, decades)
    s3 = s[None, None, :]
    inner = r1[..., None] if r2 is None else r1[..., None] + s3 * r2[..., None]
    r = r0[..., None] + s3 * inner
    with np.errstate(all="ignore"):
        ref = np.mean(r * r, axis=(0, 1))
        flat = (r0.reshape(-1), r1.reshape(-1), None if r2 is None else r2.reshape(-1))
        strided = np.repeat(s, 2)[::2]  # the same steps, not contiguous
        gots = [host.line_values(*flat, s), host.line_values(*flat, strided),
                host.line_values(*flat, s, pairs=host.interleave(*flat))]
    for got in gots:
        assert got.dtype == ref.dtype and got.shape == ref.shape == (n,)
        assert got.tobytes() == ref.tobytes()


def test_line_values_sums_two_points_in_one_complex_pass(monkeypatch):
    """Two points take the interleaved path (the test above then checks its bits), and
    the matrix-factorization line keeps its interleaved coefficients."""
    seen = []
    real = np.add.accumulate
    monkeypatch.setattr(host, "_accumulate", lambda x, out: seen.append(x.dtype) or
                        real(x, out=out))
    r = np.ones(6, dtype=np.float32)
    assert host.line_values(r, r, r, np.array([1.0, 2.0], np.float32)).tolist() == [9, 49]
    assert seen == [np.complex64]
    host.line_values(r, r, None, np.array([1.0, 2.0, 3.0], np.float32))
    assert seen == [np.complex64]
    import problems

    prob = problems.get("mf-rank4", xp="numpy", dtype="float64")
    theta = prob.init_params(0)
    line = prob.line(theta, -theta, np.arange(100))
    made = []
    real_interleave = host.interleave
    monkeypatch.setattr(host, "interleave", lambda *a: made.append(1) or real_interleave(*a))
    first, again = line([0.5, 0.25]), line([0.5, 0.25])
    assert made == [1] and first.tobytes() == again.tobytes()
    assert seen == [np.complex64, np.complex128, np.complex128]
    assert line(np.array([0.5, 0.25], np.float32)).dtype == np.float64  # the general code


@pytest.mark.parametrize("dtype", DTYPES)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 300),
       n=st.sampled_from([1, 2, 3, 17]), decades=st.integers(0, 8),
       nonfinite=st.sampled_from([None, np.inf, -np.inf, np.nan]))
def test_kernel_line_values_is_the_general_line_formula(dtype, seed, batch, n, decades,
                                                         nonfinite):
    """The kernel line's losses: ``KernelLine``'s general code (``bce_with_logits`` of
    the broadcast logits, summed over the batch, divided by its size), bit for bit,
    also for huge logits and where a logit is not finite."""
    from problems.kernel_math import bce_with_logits

    z0, z1 = (_draw(seed + i, (batch,), dtype, decades) for i in range(2))
    if nonfinite is not None:
        z1[batch // 2] = nonfinite
    y = (np.random.default_rng(seed).random(batch) < 0.5).astype(dtype)
    s = _draw(seed + 3, (n,), dtype, decades)
    with np.errstate(all="ignore"):
        z = z0[:, None] + s[None, :] * z1[:, None]
        ref = np.sum(bce_with_logits(z, y[:, None]), axis=0) / batch
        got = host.kernel_line_values(z0, z1, y, s)
    assert got.dtype == ref.dtype and got.shape == ref.shape == (n,)
    assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("out_dtype", [None, np.float32, np.float64])
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 40), n=st.integers(1, 300),
       features=st.integers(1, 30), sigma=st.sampled_from([0.05, 0.5, 3.0]),
       repeat=st.booleans(), far=st.booleans())
def test_rbf_rows_is_rbf_kernel(out_dtype, seed, rows, n, features, sigma, repeat, far):
    """The kernel rows in place are ``kernel_math.rbf_kernel``'s bits (then ``astype``),
    with points equal to a training point (the clamp at 0) and far ones (the floor)."""
    from problems.kernel_math import rbf_kernel

    rng = np.random.default_rng(seed)
    B = rng.random((n, features)) * (30.0 if far else 1.0)
    A = B[rng.integers(0, n, rows)] if repeat else rng.random((rows, features))
    sq_b = np.sum(B * B, axis=1)
    ref = rbf_kernel(A, B, sigma, sq_b=sq_b)
    if out_dtype is None:
        got = host.rbf_rows(A, B, sigma, sq_b)
    else:
        buf = np.full((rows + 2, n), np.nan, dtype=out_dtype)
        got = host.rbf_rows(A, B, sigma, sq_b, out=buf[1:-1])
        assert np.isnan(buf[[0, -1]]).all()  # only its rows written
        ref = ref.astype(out_dtype)
    assert got.dtype == ref.dtype and got.shape == ref.shape == (rows, n)
    assert got.tobytes() == ref.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_take_rows_is_np_take_into_a_kept_buffer(dtype):
    x = _draw(0, (30, 7), dtype, 6)
    idx = np.array([3, 0, 29, 3])
    rows = host.take_rows(x, idx, None)
    assert rows.dtype == x.dtype and rows.tobytes() == np.take(x, idx, axis=0).tobytes()
    again = host.take_rows(x, idx[::-1].copy(), rows)
    assert again is rows and again.tobytes() == x[idx[::-1]].tobytes()  # written over
    assert host.take_rows(x, idx[:2], rows) is not rows  # another shape: a new buffer
    assert host.take_rows(x, idx, np.empty((4, 7), np.float16)).dtype == x.dtype
    small = host.take_rows(x, idx.astype(np.uint8), None)
    assert small.tobytes() == np.take(x, idx, axis=0).tobytes()
    for bad in (np.array([-1]), np.array([30]), np.zeros(0, int), np.array([[1]]),
                np.array([1.0]), [1, 2]):  # left to the caller's np.take (wrap or raise)
        assert host.take_rows(x, bad, rows) is None


def test_the_switch_turns_the_shortcuts_off(monkeypatch):
    assert host.enabled(np)
    monkeypatch.setattr(host, "HOST_FAST_PATH", False)
    assert not host.enabled(np)
