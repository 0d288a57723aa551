"""Argument checks shared by the optimizers, the drivers and the problems.

Each returns the value as a plain Python number and raises ``TypeError``/``ValueError``
with a message that starts with the argument's name, e.g. ``"mu: must be > 0, got 0"``.
Real numbers are Python or NumPy ints and floats (and 0-d arrays of them); bools,
strings, complex numbers and arrays of more than one element are rejected, never cast.

>>> from paltest.checks import check_positive
>>> check_positive("mu", 1)
1.0
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any

__all__ = ["check_bool", "check_in_range", "check_int", "check_memory", "check_nonneg",
           "check_path", "check_positive", "check_real", "shown"]


def _not_real(value: Any) -> bool:
    """Whether ``value`` is a bool, a string, a complex number, or a bool/complex array
    (``float()`` would cast those silently: ``float(np.True_)`` is 1.0, and
    ``float(np.complex128(1 + 2j))`` drops the imaginary part with only a warning)."""
    if isinstance(value, (bool, str, bytes, complex)):
        return True
    return getattr(getattr(value, "dtype", None), "kind", None) in ("b", "c")


def shown(value: Any) -> str:
    """``repr(value)`` for a message, short for a huge int (``repr`` of an int of more
    than 4300 digits even raises): ``"an int of 401 digits"``.

    >>> shown(0.5), shown(10**400)
    ('0.5', 'an int of 401 digits')
    """
    if isinstance(value, int) and abs(value).bit_length() > 64:
        bits = abs(value).bit_length()
        digits = len(str(abs(value))) if bits < 14000 else f"about {int(bits * 0.30103)}"
        return f"an int of {digits} digits"
    return repr(value)


def _as_float(name: str, value: Any) -> float:
    if _not_real(value):
        raise TypeError(f"{name}: expected a real number, got {shown(value)}")
    try:
        out = float(value)
    except OverflowError:  # an int beyond the float range (10**400): not finite
        raise ValueError(f"{name}: must be finite, got {shown(value)}") from None
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a real number, got {shown(value)}") from err
    if not math.isfinite(out):
        raise ValueError(f"{name}: must be finite, got {shown(value)}")
    return out


def check_real(name: str, value: Any) -> float:
    """``value`` as a finite Python float (``TypeError``/``ValueError`` naming ``name``)."""
    return _as_float(name, value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a Python float; ``ValueError`` naming ``name`` unless finite and > 0."""
    out = _as_float(name, value)
    if not out > 0:
        raise ValueError(f"{name}: must be > 0, got {shown(value)}")
    return out


def check_nonneg(name: str, value: Any) -> float:
    """``value`` as a Python float; ``ValueError`` naming ``name`` unless finite and >= 0."""
    out = _as_float(name, value)
    if not out >= 0:
        raise ValueError(f"{name}: must be >= 0, got {shown(value)}")
    return out


def check_in_range(
    name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    """``value`` as a Python float inside ``[lo, hi]`` (ends open when asked)."""
    out = _as_float(name, value)
    ok_lo = out > lo if lo_open else out >= lo
    ok_hi = out < hi if hi_open else out <= hi
    if not (ok_lo and ok_hi):
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError(f"{name}: must be in {left}{lo}, {hi}{right}, got {shown(value)}")
    return out


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as a Python int >= ``minimum`` (NumPy integers accepted, bools not)."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {shown(value)}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {shown(value)}") from None
    if out < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {shown(value)}")
    return out


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {shown(value)}")
    return value


def check_path(name: str, value: Any) -> str:
    """``value`` as a path string: a non-empty ``str`` or an ``os.PathLike`` (``TypeError``
    naming ``name`` for anything else, e.g. a number, a list or bytes)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name}: expected a path (a non-empty str or os.PathLike), "
                        f"got {shown(value)}")
    return value


def _physical_memory() -> int | None:
    """This machine's physical memory in bytes (``None`` where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _magnitude(n: int) -> str:
    """``n`` as ``"8e+18"``; ``"about 1e+400"`` beyond the float range."""
    try:
        return f"{float(n):.3g}"
    except OverflowError:
        return f"about 1e+{math.floor((n.bit_length() - 1) * math.log10(2))}"


def check_memory(name: str, value: Any, n_bytes: int, what: str) -> None:
    """``ValueError`` naming ``name`` when building ``what`` takes ``n_bytes``, more than
    this machine's physical memory (an allocation that could only fail, or swap for
    hours, after minutes of work). ``value`` is shown as :func:`shown` shows it (a ``str``
    as it is). No check where the OS does not report its memory.

    >>> check_memory("n", 10, 800, "the matrix")
    >>> check_memory("n", 10**9, 8 * 10**18, "the 1e9 x 1e9 matrix")
    Traceback (most recent call last):
    ...
    ValueError: n: 1000000000 makes the 1e9 x 1e9 matrix, 8e+18 bytes, more than ...
    """
    memory = _physical_memory()
    if memory is not None and n_bytes > memory:
        text = value if isinstance(value, str) else shown(value)
        raise ValueError(f"{name}: {text} makes {what}, {_magnitude(n_bytes)} bytes, "
                         f"more than this machine's memory ({memory:.3g} bytes)")
