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


def test_the_switch_turns_the_shortcuts_off(monkeypatch):
    assert host.enabled(np)
    monkeypatch.setattr(host, "HOST_FAST_PATH", False)
    assert not host.enabled(np)
