r"""PAL's own direction adaptation: the constant :math:`\beta` or a conjugate-gradient
formula (:class:`~paltest.optimizers.pal.PAL`'s ``beta``), on device arrays and, on
NumPy, on host scalars (bitwise the same results)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from paltest.optimizers.base import check_in_range

__all__ = ["CONJUGATE_FORMULAS", "array_beta", "check_beta", "host_beta"]

#: Formulas accepted for ``beta`` besides a constant.
CONJUGATE_FORMULAS = ("fletcher-reeves", "polak-ribiere", "hestenes-stiefel", "dai-yuan")
_ALIASES = {"fr": "fletcher-reeves", "pr": "polak-ribiere", "hs": "hestenes-stiefel",
            "dy": "dai-yuan"}


def check_beta(beta: Any) -> float | str:
    """``beta``: a float in [0, 1] or a formula's name (aliases resolved)."""
    if isinstance(beta, str):
        key = _ALIASES.get(beta.lower(), beta.lower())
        if key not in CONJUGATE_FORMULAS:
            raise ValueError(
                f"beta: must be a float in [0, 1] or one of {CONJUGATE_FORMULAS} "
                f"(or {sorted(_ALIASES)}), got {beta!r}"
            )
        return key
    return check_in_range("beta", beta, 0.0, 1.0)


def array_beta(formula: float | str, xp: Any, g: Any, state: Any,
               vectors: Any = None) -> Any:
    """:math:`\beta_t` of ``formula`` (PAL's ``beta``) as a 0-d array (or a Python float
    for a constant). ``vectors`` (:class:`~paltest.optimizers.pal_line.FlatVectors` by
    default: flat arrays of ``xp``) supplies the dot product and the difference of the
    gradients (the pytrees of :mod:`paltest.optax` bring their own)."""
    if not isinstance(formula, str):
        return formula
    dot = xp.vecdot if vectors is None else vectors.dot
    g_prev, buf_prev = state.prev_grad, state.buf
    y = None if formula == "fletcher-reeves" else (
        g - g_prev if vectors is None else vectors.sub(g, g_prev))
    if formula in ("polak-ribiere", "hestenes-stiefel"):
        num = dot(g, y)
    else:
        num = dot(g, g)
    if formula in ("fletcher-reeves", "polak-ribiere"):
        den = dot(g_prev, g_prev)
    else:
        den = -dot(buf_prev, y)  # d_{t-1} . y
    ok = den > 0
    beta = num / xp.where(ok, den, xp.ones_like(den))
    ok = ok & xp.isfinite(beta)
    return xp.where(ok, beta, xp.zeros_like(beta))


def host_beta(formula: str, g: Any, state: Any, cast: Any) -> Any:
    """:func:`array_beta` on NumPy: the formula's scalar parts on host scalars."""
    g_prev, buf_prev = state.prev_grad, state.buf
    y = g - g_prev if formula != "fletcher-reeves" else None
    num = cast(np.vecdot(g, y) if formula in ("polak-ribiere", "hestenes-stiefel")
               else np.vecdot(g, g))
    if formula in ("fletcher-reeves", "polak-ribiere"):
        den = cast(np.vecdot(g_prev, g_prev))
    else:
        den = cast(-np.vecdot(buf_prev, y))  # d_{t-1} . y
    if den > 0:
        beta = num / den
        if math.isfinite(beta):
            return beta
    return cast(0.0)
