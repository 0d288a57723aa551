"""paltest.optimizers.selection: selections on a 0-d condition and the host norm (the testbed's
bracketed selection is tests/test_selection.py)."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import backend
from paltest.optimizers import selection
from paltest.optimizers.sgd import SGDState

XP = backend.namespace(np.zeros(1))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflowing scales
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_host_norm_is_numpys_vector_norm(dtype):
    """``selection.host_norm`` (PAL's host path) is bitwise ``numpy.linalg.vector_norm`` over
    lengths across NumPy's pairwise-summation blocks, tiny and huge scales (overflow to
    inf), and vectors with inf and NaN entries."""
    rng = np.random.default_rng(3)
    big = float(np.finfo(dtype).max) ** 0.5 * 4
    for n in [*range(0, 140), 255, 256, 257, 1000, 4097, 6499]:
        for scale in (1.0, 1e-20, 1e20, big):
            x = (rng.standard_normal(n) * scale).astype(dtype)
            if n > 3 and scale == 1.0:
                x[n // 2] = rng.choice([np.inf, -np.inf, np.nan])
            want = np.linalg.vector_norm(x)
            got = selection.host_norm(x)
            assert got.dtype == want.dtype
            assert got.tobytes() == want.tobytes(), (n, scale)


def test_host_select_state_is_select_state():
    """The NumPy shortcut returns the chosen state itself, and whatever ``select_state``
    returns when a field is not a matching NumPy array."""
    from paltest.optimizers.adam import AdamState

    new = AdamState(count=np.asarray(1.0), m=np.ones(3), v=np.ones(3))
    old = AdamState(count=np.asarray(0.0), m=np.zeros(3), v=np.zeros(3))
    assert selection._host_select_state(True, new, old) is new
    assert selection._host_select_state(False, new, old) is old
    for ok in (True, False):
        ref = selection.select_state(XP, np.bool_(ok), new, old)
        got = selection._host_select_state(ok, new, old)
        assert all(a is b for a, b in zip(got, ref, strict=True))
    wide = AdamState(count=np.asarray(1.0), m=np.ones(3, dtype=np.float32), v=np.ones(3))
    got = selection._host_select_state(False, wide, old)  # a dtype that differs: where
    assert got.m.dtype == np.float64 and got.m.tobytes() == old.m.tobytes()
    assert selection._host_select_state(True, SGDState(None), SGDState(None)) == (None,)
