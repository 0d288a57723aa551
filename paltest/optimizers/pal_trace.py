"""Tracing PAL's case logic into straight-line Python for the host evaluator.

:func:`compile_traced` runs a function written against an evaluator's operations (here
:func:`paltest.optimizers.pal_cases.case_logic`) once with symbolic values
(:class:`_Sym`) and a :class:`_Tracer`, whose methods have the names of
:class:`paltest.optimizers.pal_cases.HostOps`'s and emit, inline, the statement that
method evaluates. The recorded statements become one Python function on host scalars: the
same operations on the same values as :class:`HostOps`, without a method call per
operation. ``pal_cases``'s tests hold the generated function to :class:`HostOps` and to the
array evaluator, bit for bit.

Example:
    >>> import numpy as np
    >>> from paltest.optimizers import pal_cases
    >>> f = compile_traced(lambda o, x: (o.ftz(x),), ("x",),
    ...                    pal_cases.host_ops(np.dtype("float64")), "flush")
    >>> f(1e-310), f(2.0)
    ((0.0,), (2.0,))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["compile_traced"]


class _Sym:
    """A value of :func:`case_logic` traced by :class:`_Tracer`: the name of a local of
    the generated function. Arithmetic and comparisons emit one statement each."""

    __slots__ = ("name", "tr")

    def __init__(self, tr: _Tracer, name: str) -> None:
        self.tr, self.name = tr, name

    def __bool__(self) -> bool:
        raise TypeError("case_logic must not branch on values (it is traced)")

    def _bin(self, op: str, other: Any, swap: bool = False) -> _Sym:
        a, b = self.name, self.tr.ref(other)
        return self.tr.emit(f"{b} {op} {a}" if swap else f"{a} {op} {b}")

    def __add__(self, o: Any) -> _Sym: return self._bin("+", o)
    def __radd__(self, o: Any) -> _Sym: return self._bin("+", o, True)
    def __sub__(self, o: Any) -> _Sym: return self._bin("-", o)
    def __rsub__(self, o: Any) -> _Sym: return self._bin("-", o, True)
    def __mul__(self, o: Any) -> _Sym: return self._bin("*", o)
    def __rmul__(self, o: Any) -> _Sym: return self._bin("*", o, True)
    def __truediv__(self, o: Any) -> _Sym: return self._bin("/", o)
    def __rtruediv__(self, o: Any) -> _Sym: return self._bin("/", o, True)
    def __and__(self, o: Any) -> _Sym: return self._bin("&", o)
    def __rand__(self, o: Any) -> _Sym: return self._bin("&", o, True)
    def __lt__(self, o: Any) -> _Sym: return self._bin("<", o)
    def __le__(self, o: Any) -> _Sym: return self._bin("<=", o)
    def __gt__(self, o: Any) -> _Sym: return self._bin(">", o)
    def __ge__(self, o: Any) -> _Sym: return self._bin(">=", o)
    def __neg__(self) -> _Sym: return self.tr.emit(f"-{self.name}")


class _Tracer:
    """Traces :func:`case_logic` into straight-line Python (see :func:`compiled_host_case`):
    every method emits, inline, the statement that :class:`HostOps`'s method of the same
    name evaluates, so the generated function performs :class:`HostOps`'s operations on
    the same values (tests hold the two, and the array evaluator, to the same bits)."""

    def __init__(self, dtype: Any) -> None:
        self.f32 = np.dtype(dtype) == np.float32
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}

    def ref(self, v: Any) -> str:
        if isinstance(v, _Sym):
            return v.name
        if (type(v) is float and math.isfinite(v)) or type(v) is int:
            return repr(v)
        name = f"c{len(self.consts)}"
        self.consts[name] = v
        return name

    def emit(self, expr: str) -> _Sym:
        name = f"t{len(self.lines)}"
        self.lines.append(f"    {name} = {expr}")
        return _Sym(self, name)

    def ftz(self, x: _Sym) -> _Sym:
        x = x.name
        return self.emit(f"{x} if {x} == 0.0 or not abs({x}) < TINY else {x} * 0.0")

    def maximum(self, x: _Sym, y: _Sym) -> _Sym:
        x, y = x.name, y.name
        return self.emit(f"{y} if ({y} > {x} or {y} != {y}) else {x}")

    def abs(self, x: _Sym) -> _Sym:
        return self.emit(f"abs({x.name})")

    def where(self, c: Any, x: Any, y: Any) -> _Sym:
        return self.emit(f"{self.ref(x)} if {self.ref(c)} else {self.ref(y)}")

    def ones(self, like: Any) -> _Sym:
        return self.emit("ONE")

    def zeros(self, like: Any) -> _Sym:
        return self.emit("ZERO")

    def exponent(self, m: _Sym) -> _Sym:
        k = self.emit(f"CAST(floor(log2({m.name}))) - 1.0")
        return self.emit(f"{k.name} if {k.name} >= E_MIN else E_MIN")

    def pow2(self, k: _Sym) -> _Sym:
        return self.emit(f"CAST(ldexp(1.0, int({k.name})))")

    def div(self, x: Any, y: Any) -> _Sym:
        x, y = self.ref(x), self.ref(y)
        if self.f32:
            return self.emit(f"{x} / {y}")
        return self.emit(f"{x} / {y} if {y} != 0.0 else (NAN if {x} == 0.0 or {x} != {x} "
                         f"else copysign(INF, {x}))")

    def case_code(self, case1: _Sym, case2: _Sym, finite: _Sym) -> _Sym:
        return self.emit(f"int({case1.name}) + 2 * int({case2.name}) + 3 * int(not "
                         f"{finite.name})")


def compile_traced(fn: Any, args: tuple[str, ...], ops: Any, name: str) -> Any:
    """``fn(ops, *args)`` traced into a Python function ``name(*args)`` returning the tuple
    ``fn`` returns, with the constants of ``ops`` (a
    :class:`~paltest.optimizers.pal_cases.HostOps`: ``tiny``, ``e_min``, ``cast``) bound;
    ``fn`` may not branch on its values (``TypeError``)."""
    tr = _Tracer(np.dtype(np.float32 if ops.f32 else np.float64))
    res = fn(tr, *(_Sym(tr, a) for a in args))
    env = {"TINY": ops.tiny, "E_MIN": ops.e_min, "CAST": ops.cast,
           "ONE": ops.cast(1.0), "ZERO": ops.cast(0.0), "NAN": math.nan,
           "INF": math.inf, "floor": math.floor, "log2": np.log2, "ldexp": math.ldexp,
           "copysign": math.copysign, **tr.consts}
    body = "\n".join(tr.lines) or "    pass"
    out = ", ".join(tr.ref(v) for v in res)
    src = f"def {name}({', '.join(args)}):\n{body}\n    return ({out},)\n"
    exec(compile(src, f"<paltest {name}>", "exec"), env)  # noqa: S102
    compiled = env[name]
    compiled.source = src
    return compiled
