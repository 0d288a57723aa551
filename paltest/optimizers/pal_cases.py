r"""PAL's case logic: one definition, two evaluators.

:func:`case_logic` is written once against a tiny set of operations (``ftz``,
``maximum``, ``where``, ``log2``, ...) and run by one of two evaluators:

* :class:`ArrayOps`, the device evaluator: arrays of any array-API namespace, every
  choice a ``where``, so a step never moves data to the host (CuPy, JAX, PyTorch,
  array-api-strict; on NumPy for arrays that are not 0-d, and everywhere when
  :data:`HOST_FAST_PATH` is off);
* :class:`HostOps`, the host evaluator for one set of scalar inputs on NumPy: Python
  floats for float64 (Python's float *is* IEEE float64, so each ``+ - * /`` and
  comparison rounds as NumPy's float64 does) and ``numpy.float32`` scalars for float32
  (NumPy scalars follow the same promotion rules as 0-d arrays: a Python float operand is
  cast to float32 first), every choice a Python branch. ``log2`` is NumPy's own ufunc on
  the scalar; the power of two :math:`2^k` (:math:`k` an integer) is ``math.ldexp``,
  which is exact, as NumPy's power is for these arguments (tested for every :math:`k`).

Both perform the same IEEE operations in the same order and dtype, so their results are
bitwise identical (the tests check that with hypothesis over finite, subnormal, signed
zero, infinite and NaN inputs, in float64 and float32).

A step does not call :class:`HostOps` method by method: :func:`compiled_host_case`
traces :func:`case_logic` once per dtype (a tracer with :class:`HostOps`'s method names
records each operation) into one straight-line Python function with those operations
inline, which :func:`host_case` runs (1.5 µs against 2.6 µs per float64 step on the
project's 2-core machine). :func:`host_case_reference` runs :class:`HostOps` itself; the
tests hold the generated function to it and to the array evaluator, bit for bit.

Example:
    >>> import numpy as np
    >>> v = np.asarray([1.0]), np.asarray([0.5]), np.asarray([-1.0])
    >>> arr = array_case(np, *v, 1.0, 1.0, 10.0, np.asarray([True]))
    >>> host = host_case(1.0, 0.5, -1.0, 1.0, 1.0, 10.0, True, np.dtype("float64"))
    >>> float(arr.step[0]), host.step, int(arr.case[0]), host.case
    (1.0, 1.0, 1, 1)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.optimizers.pal_trace import _Sym, _Tracer, compile_traced  # noqa: F401

__all__ = ["ArrayOps", "HostOps", "PALCase", "case_logic", "compiled_host_case", "host_case",
           "host_case_reference", "pal_case"]


class PALCase(NamedTuple):
    """The outcome of the case logic (all arrays of the inputs' broadcast shape).

    Attributes:
        step: the update step :math:`s \\in [0, s_{max}]` along the unit direction.
        a: the parabola's leading coefficient :math:`(l_\\mu - l_0 - b\\mu)/\\mu^2`
            (NaN or infinite only when an input is, or when it overflows).
        case: int32; 0 no update, 1 parabola minimum, 2 measuring step, 3 non-finite.
        clipped: bool; whether :math:`s_{max}` cut the step.
    """

    step: Any
    a: Any
    case: Any
    clipped: Any


_TINY: dict[Any, tuple[float, float]] = {}


def _tiny(xp: Any, dtype: Any) -> tuple[float, float]:
    """``(smallest normal, its log2)`` of ``dtype`` (cached: ``finfo`` is slow)."""
    key = (xp.__name__, str(dtype))
    if key not in _TINY:
        tiny = float(xp.finfo(dtype).smallest_normal)
        _TINY[key] = (tiny, math.log2(tiny))
    return _TINY[key]


def _flush(xp: Any, host: bool, x: Any, tiny: float) -> Any:
    """``x`` with every entry of magnitude below ``tiny`` (a subnormal) made a zero of
    its sign: what a backend that flushes subnormals (FTZ/DAZ) computes.

    On NumPy (``host``) a 0-d ``x`` is read as a Python float (free on the host) and
    returned itself unless it is subnormal, so normal values cost no array operation.
    """
    if host and x.ndim == 0:
        v = float(x)
        return x if v == 0.0 or not abs(v) < tiny else x * 0.0
    return xp.where(xp.abs(x) < tiny, x * 0.0, x)


class ArrayOps:
    """The device evaluator: operations on arrays of ``xp`` (branch-free)."""

    def __init__(self, xp: Any, dtype: Any) -> None:
        self.xp = xp
        self.host = backend.on_host(xp)
        self.tiny, self.e_min = _tiny(xp, dtype)

    def ftz(self, x: Any) -> Any:
        return _flush(self.xp, self.host, x, self.tiny)

    def maximum(self, x: Any, y: Any) -> Any:
        return self.xp.maximum(x, y)

    def abs(self, x: Any) -> Any:
        return self.xp.abs(x)

    def where(self, c: Any, x: Any, y: Any) -> Any:
        return self.xp.where(c, x, y)

    def ones(self, like: Any) -> Any:
        return self.xp.ones_like(like)

    def zeros(self, like: Any) -> Any:
        return self.xp.zeros_like(like)

    def exponent(self, m: Any) -> Any:
        """:math:`\\max(\\lfloor\\log_2 m\\rfloor - 1, e_{min})` (a float)."""
        xp = self.xp
        return xp.maximum(xp.floor(xp.log2(m)) - 1.0, xp.full_like(m, self.e_min))

    def pow2(self, k: Any) -> Any:
        return 2.0 ** k

    def div(self, x: Any, y: float) -> Any:
        return x / y

    def case_code(self, case1: Any, case2: Any, finite: Any) -> Any:
        xp, i32 = self.xp, self.xp.int32
        return (xp.astype(case1, i32) + 2 * xp.astype(case2, i32)
                + 3 * xp.astype(~finite, i32))


class HostOps:
    """The host evaluator: scalar operations with Python branches (NumPy only).

    Values are Python floats for float64 and ``numpy.float32`` scalars for float32;
    booleans are Python bools and the case a Python int.
    """

    def __init__(self, dtype: Any) -> None:
        self.f32 = np.dtype(dtype) == np.float32
        self.cast = np.float32 if self.f32 else float
        self.tiny, self.e_min = _tiny(np, np.dtype(dtype))
        self.e_min = self.cast(self.e_min)

    def ftz(self, x: Any) -> Any:
        return x if x == 0.0 or not abs(x) < self.tiny else x * 0.0

    @staticmethod
    def maximum(x: Any, y: Any) -> Any:  # NaN propagates, as in np.maximum
        return y if (y > x or y != y) else x

    @staticmethod
    def abs(x: Any) -> Any:
        return abs(x)

    @staticmethod
    def where(c: bool, x: Any, y: Any) -> Any:
        return x if c else y

    def ones(self, like: Any) -> Any:
        return self.cast(1.0)

    def zeros(self, like: Any) -> Any:
        return self.cast(0.0)

    def exponent(self, m: Any) -> Any:
        # m is a positive normal number here; floor of a float is exact.
        k = self.cast(math.floor(np.log2(m))) - 1.0
        return k if k >= self.e_min else self.e_min

    def pow2(self, k: Any) -> Any:
        return self.cast(math.ldexp(1.0, int(k)))

    def div(self, x: Any, y: float) -> Any:
        if self.f32 or y != 0.0:
            return x / y
        return math.nan if x == 0.0 or x != x else math.copysign(math.inf, x)

    @staticmethod
    def case_code(case1: bool, case2: bool, finite: bool) -> int:
        return int(case1) + 2 * int(case2) + 3 * int(not finite)


def case_logic(o: Any, l0: Any, l_mu: Any, b: Any, mu: float, alpha: float, s_max: float,
               finite: Any) -> PALCase:
    """The case logic of :func:`pal_case`, for either evaluator ``o``."""
    # Subnormal inputs and intermediates count as zeros (see pal_case), so a backend that
    # flushes them (JAX on the CPU) decides every case as one that does not.
    l0, l_mu, b = o.ftz(l0), o.ftz(l_mu), o.ftz(b)
    m = o.maximum(o.maximum(o.abs(l0), o.abs(l_mu)), o.abs(b))
    m = o.where(finite & (m > 0), m, o.ones(m))
    # A power of two in [m/4, m] (log2 may round up near 2^k, hence the -1), at least the
    # smallest normal number: dividing by it is exact and never overflows.
    m = o.pow2(o.exponent(m))
    l0n, lmun, bn = o.ftz(l0 / m), o.ftz(l_mu / m), o.ftz(b / m)
    # D = a * mu^2 / m; its sign is the sign of a.
    dn = o.ftz(o.ftz(lmun - l0n) - o.ftz(bn * mu))
    a = o.ftz(dn * o.ftz(o.div(m, mu * mu)))
    descent = finite & (b < 0)  # b itself: b/m may underflow to 0
    case1 = descent & (dn > 0)
    case2 = descent & (dn <= 0)
    one = o.ones(dn)
    s1 = o.ftz(o.ftz((alpha * mu * mu) * (-bn)) / (2.0 * o.where(case1, dn, one)))
    s_raw = o.where(case1, s1, o.where(case2, mu * one, o.zeros(s1)))
    clipped = s_raw > s_max
    step = o.where(clipped, s_max * one, s_raw)
    return PALCase(step=step, a=a, case=o.case_code(case1, case2, finite), clipped=clipped)


_COMPILED: dict[Any, Any] = {}


def compiled_host_case(dtype: Any) -> Any:
    """The host evaluator for ``dtype`` as one generated function (cached)
    ``f(l0, l_mu, b, mu, alpha, s_max, finite) -> (step, a, case, clipped)``:
    :func:`case_logic` traced once (:func:`paltest.optimizers.pal_trace.compile_traced`)
    into straight-line Python, with :class:`HostOps`'s operations inline (no method
    calls). Its source is the function's ``source`` attribute."""
    dtype = np.dtype(dtype)
    fn = _COMPILED.get(dtype)
    if fn is None:
        fn = _COMPILED[dtype] = compile_traced(
            case_logic, ("l0", "l_mu", "b", "mu", "alpha", "s_max", "finite"),
            host_ops(dtype), f"host_case_{dtype.name}")
    return fn


_HOST_OPS: dict[Any, HostOps] = {}


def host_ops(dtype: Any) -> HostOps:
    """The (cached) host evaluator for ``dtype`` (float32 or float64)."""
    ops = _HOST_OPS.get(dtype)
    if ops is None:
        ops = _HOST_OPS[dtype] = HostOps(dtype)
    return ops


def host_case(l0: Any, l_mu: Any, b: Any, mu: float, alpha: float, s_max: float,
              finite: bool, dtype: Any) -> PALCase:
    """:func:`case_logic` on host scalars of ``dtype``: :class:`HostOps`'s operations, run
    by :func:`compiled_host_case` (``host_case_reference`` runs :class:`HostOps` itself)."""
    fn = _COMPILED.get(dtype) or compiled_host_case(dtype)
    return PALCase(*fn(l0, l_mu, b, mu, alpha, s_max, finite))


def host_case_reference(l0: Any, l_mu: Any, b: Any, mu: float, alpha: float, s_max: float,
                        finite: bool, dtype: Any) -> PALCase:
    """:func:`case_logic` run by :class:`HostOps` method by method (the definition that
    :func:`compiled_host_case` inlines; the tests hold the two to the same bits)."""
    return case_logic(host_ops(dtype), l0, l_mu, b, mu, alpha, s_max, finite)


def array_case(xp: Any, l0: Any, l_mu: Any, b: Any, mu: float, alpha: float,
               s_max: float, finite: Any) -> PALCase:
    """:func:`case_logic` on arrays of ``xp`` (:class:`ArrayOps`)."""
    return case_logic(ArrayOps(xp, l0.dtype), l0, l_mu, b, mu, alpha, s_max, finite)


#: Set to False to force the array evaluator on NumPy too (for the bitwise tests).
HOST_FAST_PATH = True

CASE_ARRAYS = tuple(np.asarray(i, dtype=np.int32) for i in range(4))
BOOL_ARRAYS = (np.asarray(False), np.asarray(True))
for _a in (*CASE_ARRAYS, *BOOL_ARRAYS):
    _a.flags.writeable = False


def host_record(res: PALCase, dtype: Any) -> PALCase:
    """A host result as 0-d NumPy arrays (``case`` int32, ``clipped`` bool)."""
    return PALCase(step=np.asarray(res.step, dtype=dtype), a=np.asarray(res.a, dtype=dtype),
                   case=CASE_ARRAYS[res.case], clipped=BOOL_ARRAYS[bool(res.clipped)])


def pal_case(l0: Any, l_mu: Any, b: Any, mu: float, alpha: float, s_max: float) -> PALCase:
    r"""PAL's case discrimination (Section 4.2 with the additions of Section 4.3).

    For the parabola :math:`\hat l(s) = a s^2 + b s + l_0` through :math:`l_0`,
    :math:`l'(0) = b` and :math:`l_\mu = \hat l(\mu)`:

    * case 1, :math:`a > 0` and :math:`b < 0`: :math:`s = \alpha\cdot(-b / 2a)`, the
      parabola's minimum times :math:`\alpha`;
    * case 2, :math:`a \le 0` and :math:`b < 0`: :math:`s = \mu`, the measured point
      (:math:`\alpha` is not applied);
    * case 0, :math:`b \ge 0`: :math:`s = 0`, no descent along the direction;
    * case 3, any input not finite: :math:`s = 0`.

    Then :math:`s \leftarrow \min(s, s_{max})`, after :math:`\alpha`.

    The function is pure and elementwise: the inputs are arrays of one namespace (any
    broadcastable shapes, real floating dtype); ``mu``, ``alpha`` and ``s_max`` are
    positive Python floats. It has no branches on device data, so it never moves data to
    the host; on NumPy, 0-d inputs of one dtype run the host evaluator (see the module
    docstring), with bitwise the same results. The returned step is never NaN.

    To be robust for tiny and huge loss magnitudes, the inputs are first divided by the
    power of two :math:`m` within a factor 4 below :math:`\max(|l_0|, |l_\mu|, |b|)`. That
    division is exact, so no intermediate overflows, an exactly linear
    :math:`l_\mu = l_0 + b\mu` is recognised as such (case 2), scaling
    :math:`l_0, l_\mu, b` by a power of two leaves ``step`` bitwise unchanged, and
    scaling by any :math:`c > 0` changes it only by rounding.

    Example:
        >>> import array_api_compat.numpy as xp
        >>> r = pal_case(xp.asarray(1.0), xp.asarray(0.5), xp.asarray(-1.0),
        ...              mu=1.0, alpha=1.0, s_max=10.0)
        >>> float(r.a), float(r.step), int(r.case)   # l(s) = 0.5 s^2 - s + 1
        (0.5, 1.0, 1)
    """
    xp = backend.namespace(l0, l_mu, b)
    dt = l0.dtype
    if (HOST_FAST_PATH and backend.on_host(xp) and l0.ndim == l_mu.ndim == b.ndim == 0
            and dt == l_mu.dtype == b.dtype and dt in (np.float32, np.float64)):
        v0, vmu, vb = (x[()] if dt == np.float32 else float(x) for x in (l0, l_mu, b))
        finite = math.isfinite(v0) and math.isfinite(vmu) and math.isfinite(vb)
        return host_record(host_case(v0, vmu, vb, mu, alpha, s_max, finite, dt), dt)
    finite = xp.isfinite(l0) & xp.isfinite(l_mu) & xp.isfinite(b)
    return array_case(xp, l0, l_mu, b, mu, alpha, s_max, finite)
