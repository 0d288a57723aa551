"""Selections on a 0-d condition, the recorded scalars, and NumPy's vector norm.

Every optimizer keeps :math:`\theta` and its state on a non-finite step with
:func:`select` (one array) and :func:`select_state` (every field of a state); on NumPy
these are Python branches that return one of the two arrays itself, elsewhere
``where`` (no device synchronization). :func:`scalar` and :func:`select_scalar` make the
0-d arrays a record holds, and :func:`host_norm` is ``numpy.linalg.vector_norm`` without
its Python layers (PAL's and COCOB's host paths).

Example:
    >>> import numpy as np
    >>> from paltest import backend
    >>> xp = backend.namespace(np.zeros(1))
    >>> new, old = np.ones(2), np.zeros(2)
    >>> select(xp, np.True_, new, old) is new, float(select_scalar(xp, False, 0.1, new))
    (True, 0.0)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from paltest import backend

__all__ = ["host_norm", "scalar", "select", "select_scalar", "select_state"]

_ndarray = np.ndarray
_np_full, _np_sum, _np_sqrt = np.full, np.add.reduce, np.sqrt
_np_true, _np_false = np.True_, np.False_
_HOST_XP = backend.namespace(np.zeros(0))  # array_api_compat.numpy


def host_norm(x: Any) -> Any:
    """``numpy.linalg.vector_norm(x)`` of a 1-D real NumPy array, without its Python
    layers: NumPy computes that norm as ``sqrt(add.reduce(x * x))`` (``numpy.linalg.norm``
    along one axis, ord 2), and this makes the same two ufunc calls on the same values, so
    the same bits (a NumPy scalar of ``x``'s dtype; tests/test_pal_evaluators.py checks
    it against ``vector_norm``)."""
    return _np_sqrt(_np_sum(x * x))


def select(xp: Any, ok: Any, new: Any, old: Any) -> Any:
    """``xp.where(ok, new, old)`` for a 0-d ``ok``: all of ``new`` or all of ``old``.

    This is how every optimizer keeps :math:`\theta` and its state on a non-finite
    step. On NumPy (:func:`paltest.backend.on_host`) reading ``ok`` costs nothing, so it
    is a Python branch that returns one of the two arrays itself: the same values, with
    no pass over the vector and no fresh array. Elsewhere it is ``xp.where``, so a GPU
    step never synchronizes. Returning ``old`` itself is safe because the optimizers
    never modify an array in place once it has been returned.
    """
    if backend.on_host(xp) and new.shape == old.shape and new.dtype == old.dtype:
        return new if bool(ok) else old
    return xp.where(ok, new, old)


def _host_select_state(ok: bool, new: NamedTuple, old: NamedTuple) -> NamedTuple:
    """:func:`select_state` on NumPy for a Python bool ``ok``: ``new`` or ``old`` itself
    when every field is ``None`` in both or a NumPy array of one shape and dtype in both
    (what :func:`select` returns field by field then), else :func:`select_state`."""
    for n, o in zip(new, old, strict=True):
        if n is None:
            if o is not None:
                break
        elif not (type(n) is _ndarray and type(o) is _ndarray and n.shape == o.shape
                  and n.dtype == o.dtype):
            break
    else:
        if type(new) is type(old):
            return new if ok else old
    return select_state(_HOST_XP, _np_true if ok else _np_false, new, old)


def select_state(xp: Any, ok: Any, new: NamedTuple, old: NamedTuple) -> NamedTuple:
    """:func:`select` on every field of a state: ``new`` where the 0-d ``ok`` is true.

    Fields that are ``None`` in ``new`` (vectors an optimizer does not keep) stay
    ``None``. Used by the first-order optimizers' ``step`` and by PAL along their
    direction (the direction protocol: ``update(theta, state, grad, lr)`` returns the
    update and the advanced state, and the caller keeps the old state on a non-finite
    step).
    """
    return type(old)(*(_select_field(xp, ok, n, o) for n, o in zip(new, old, strict=True)))


def _select_field(xp: Any, ok: Any, new: Any, old: Any) -> Any:
    """:func:`select` on one field of a state; a field that is itself a container (the
    state of an optax transformation along which PAL searches: tuples, NamedTuples,
    lists, dicts of arrays) is selected leaf by leaf."""
    if new is None:
        return old
    if isinstance(new, tuple):
        items = (_select_field(xp, ok, n, o) for n, o in zip(new, old, strict=True))
        return type(old)(*items) if hasattr(old, "_fields") else tuple(items)
    if isinstance(new, list):
        return [_select_field(xp, ok, n, o) for n, o in zip(new, old, strict=True)]
    if isinstance(new, dict):
        return {k: _select_field(xp, ok, new[k], old[k]) for k in old}
    return select(xp, ok, new, old)


def scalar(xp: Any, value: float, like: Any) -> Any:
    """A 0-d array holding ``value`` in ``like``'s dtype, on its device."""
    if type(like) is _ndarray and backend.on_host(xp):
        return _np_full((), value, dtype=like.dtype)  # what xp.full does on NumPy
    return xp.full((), value, dtype=like.dtype, device=backend.device(like))


def select_scalar(xp: Any, ok: Any, value: float, like: Any) -> Any:
    """``select(xp, ok, scalar(xp, value, like), scalar(xp, 0.0, like))``: ``value`` where
    the 0-d ``ok`` is true, else 0, as a 0-d array in ``like``'s dtype on its device (the
    learning rate a step records). On NumPy only the chosen one is made."""
    if type(like) is _ndarray and backend.on_host(xp):
        return _np_full((), value if bool(ok) else 0.0, dtype=like.dtype)
    return select(xp, ok, scalar(xp, value, like), scalar(xp, 0.0, like))
