"""paltest.optimizers.pal_trace: tracing a function of an evaluator into straight-line code."""

from __future__ import annotations

import numpy as np
import pytest

from paltest.optimizers import pal_cases
from paltest.optimizers.pal_trace import _Sym, _Tracer, compile_traced


def test_compiled_host_case_is_straight_line_code():
    """The generated source has no call of HostOps (its operations are inline) and
    tracing refuses a Python branch on a traced value."""
    src = pal_cases.compiled_host_case(np.dtype("float64")).source
    assert "ops." not in src and src.count("\n") > 40
    tr = _Tracer(np.dtype("float64"))
    with pytest.raises(TypeError, match="branch"):
        bool(_Sym(tr, "x") > 0.0)




@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compile_traced_runs_the_evaluators_operations(dtype):
    """A small function of the evaluator's operations compiles to one that returns what
    HostOps computes on the same inputs, in its types (float or numpy.float32)."""
    ops = pal_cases.host_ops(np.dtype(dtype))
    cast = np.float32 if dtype == "float32" else float

    def fn(o, x, y, c):
        m = o.maximum(o.abs(x), o.abs(y))
        return o.where(c, o.ftz(x / m), o.zeros(x)), o.pow2(o.exponent(m)), o.div(x, 2.0)

    f = compile_traced(fn, ("x", "y", "c"), ops, "toy")
    tiny = float(np.finfo(dtype).smallest_normal)
    for x, y in [(3.0, -5.0), (tiny, 1.0), (-0.0, 2.0), (tiny / 4, -1e30), (7.5, 0.25)]:
        for c in (True, False):
            args = (cast(x), cast(y), c)
            got, want = f(*args), fn(ops, *args)
            assert [type(v) for v in got] == [type(v) for v in want]
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    assert "def toy(x, y, c):" in f.source
