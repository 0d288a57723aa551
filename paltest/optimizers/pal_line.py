r"""PAL's step on device arrays, in the two stages every front end shares.

:class:`~paltest.optimizers.pal.PAL` (one flat vector of any array-API namespace),
:mod:`paltest.optax` (pytrees under ``jax.jit``) and :mod:`paltest.torch` (a module's
parameter tensors on a GPU) run the same two functions, so each rule is written once:

1. :func:`own_direction`, PAL's direction adaptation (Eq. 3):
   :math:`\mathrm{buf}_t = \beta_t\,\mathrm{buf}_{t-1} + g_t` with the constant or
   conjugate-gradient :math:`\beta_t` of :mod:`~paltest.optimizers.pal_beta` (along
   another optimizer's direction the caller supplies :math:`\mathrm{buf}_t = u_t`);
2. :func:`measure`, the line search along :math:`\hat d = -\mathrm{buf}/n`: the norm
   and its zero rule, the exact slope :math:`b = -g\cdot\mathrm{buf}/n` (Eq. 4), one
   loss at :math:`\theta + \mu\hat d`, the non-finite rule and the case logic of
   :func:`~paltest.optimizers.pal_cases.case_logic`, giving the step :math:`s` and the
   learning rate :math:`s/n`.

The caller makes the new parameters :math:`\theta + (-s/n)\,\mathrm{buf}` where
``moved`` (or the update :math:`(-s/n)\,\mathrm{buf}` an optax transformation returns)
and keeps its state where ``finite`` is false. Everything is a branch-free ``where``
on 0-d arrays: no value leaves the device (unless ``on_nonfinite="raise"``).
Hyperparameters are Python floats or, under JAX tracing, 0-d arrays in the
parameters' dtype. NumPy runs PAL's host evaluator instead (``PAL._host_step``),
bitwise equal to these functions.

Example:
    >>> import array_api_strict as xp
    >>> theta, g = xp.asarray([1.0, 1.0]), xp.asarray([1.0, 10.0])
    >>> value = lambda t: 0.5 * (t[0] ** 2 + 10.0 * t[1] ** 2)
    >>> from paltest.optimizers.pal_state import PALState
    >>> buf, beta = own_direction(0.4, xp, g, PALState(buf=xp.zeros(2), prev_grad=None))
    >>> line = measure(xp, theta, buf, g, value(theta), value, 0.1, 1.0, 3.0, 1e-10, "flag")
    >>> int(line.case), bool(line.moved), bool(line.finite)
    (1, True, True)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import as_loss, raise_if_nonfinite
from paltest.optimizers.pal_beta import array_beta
from paltest.optimizers.pal_cases import array_case

__all__ = ["FlatVectors", "PALLine", "measure", "own_direction"]


class PALLine(NamedTuple):
    """What :func:`measure` found along one line (0-d arrays).

    Attributes:
        n: the direction norm :math:`\\lVert\\mathrm{buf}\\rVert` (``eps`` when it is 0).
        b: the slope :math:`l'(0) = -g\\cdot\\mathrm{buf}/n`.
        l_mu: the loss at the measuring point :math:`\\theta + \\mu\\hat d`.
        a: the parabola's leading coefficient.
        step: the update step :math:`s\\in[0, s_{max}]` in the parameters' dtype.
        lr: :math:`s/n` where the step moves, else 0.
        case: int32; 0 no update, 1 parabola minimum, 2 measuring step, 3 non-finite.
        clipped: bool; :math:`s_{max}` cut the step.
        moved: bool; :math:`s > 0`.
        finite: bool; the losses, the gradient's slope and the norm were finite.
    """

    n: Any
    b: Any
    l_mu: Any
    a: Any
    step: Any
    lr: Any
    case: Any
    clipped: Any
    moved: Any
    finite: Any


class FlatVectors:
    """PAL's vectors as one flat array of ``xp`` (:class:`~paltest.PAL`'s own): the norm,
    the dot product, ``x * c + y`` (``x * c`` into a fresh array, then ``+= y``), the
    difference, and the array that gives a loss its dtype and device. Another front end
    passes its own object with these methods (the pytrees of :mod:`paltest.optax`)."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def norm(self, x: Any) -> Any:
        return self.xp.linalg.vector_norm(x)

    def dot(self, x: Any, y: Any) -> Any:
        return self.xp.vecdot(x, y)

    @staticmethod
    def axpy(x: Any, c: Any, y: Any) -> Any:
        out = x * c
        out += y
        return out

    @staticmethod
    def sub(x: Any, y: Any) -> Any:
        return x - y

    @staticmethod
    def like(x: Any) -> Any:
        return x


def own_direction(formula: Any, xp: Any, g: Any, state: Any,
                  vectors: Any = None) -> tuple[Any, Any]:
    r"""PAL's direction state :math:`\mathrm{buf}_t = \beta_t\,\mathrm{buf}_{t-1} + g_t`
    and :math:`\beta_t` (a Python float for a constant ``formula``, else a 0-d array).

    ``state`` holds ``buf`` (:math:`\mathrm{buf}_{t-1}`) and, for a conjugate formula,
    ``prev_grad`` (:math:`g_{t-1}`). A constant 0 returns ``g`` itself (``0 * buf + g``
    equals ``g`` but for the sign of a zero); otherwise a fresh array, ``buf * beta``
    then ``+= g``.
    """
    beta = array_beta(formula, xp, g, state, vectors)
    if isinstance(beta, float) and beta == 0.0:
        return g, beta
    return (vectors or FlatVectors).axpy(state.buf, beta, g), beta


def measure(xp: Any, theta: Any, buf: Any, g: Any, l0: Any, value: Any, mu: Any,
            alpha: Any, s_max: Any, eps: Any, on_nonfinite: str,
            vectors: Any = None) -> PALLine:
    r"""PAL's line search along :math:`\hat d = -\mathrm{buf}/\lVert\mathrm{buf}\rVert`
    from ``theta`` (one flat vector, or what ``vectors`` works on: see
    :class:`FlatVectors`), with the slope from the gradient ``g`` and the loss ``l0`` at
    ``theta`` (a 0-d array): one call ``value(theta + mu * d_hat)``.

    Vector work: the norm and the dot product (one pass each) and the measuring point
    (one multiply-add, ``buf * (-mu/n)`` then ``+= theta``). The case logic runs in the
    widest of the loss and parameter dtypes. The scalars pass
    :func:`paltest.backend.barrier` (a compiled JAX step computes them once, not inside
    every element's loop). With ``on_nonfinite="raise"`` a non-finite loss, slope or
    norm raises :class:`~paltest.NonFiniteError` (one device-to-host transfer).
    """
    v = vectors or FlatVectors(xp)
    like = v.like(theta)
    n = v.norm(buf)
    n = xp.where(n == 0, xp.full_like(n, eps), n)  # NaN stays NaN
    b = -v.dot(g, buf) / n
    n, b, c = backend.barrier(xp, (n, b, -(mu / n)))  # scalars: computed once
    probe = v.axpy(buf, c, theta)
    l_mu = as_loss(value(probe), xp, like)
    del probe

    ct = xp.result_type(l0.dtype, l_mu.dtype, like.dtype)
    l0c, lmuc, bc = (xp.astype(v, ct, copy=False) for v in (l0, l_mu, b))
    n_ok = xp.isfinite(n)  # a non-finite gradient, or a norm that overflowed
    bc = xp.where(n_ok, bc, xp.full_like(bc, float("nan")))
    finite = n_ok & xp.isfinite(l0c) & xp.isfinite(lmuc) & xp.isfinite(bc)
    if on_nonfinite == "raise":
        raise_if_nonfinite(finite, "loss, gradient or measured loss")
    res = array_case(xp, l0c, lmuc, bc, mu, alpha, s_max, finite)
    step = xp.astype(res.step, like.dtype, copy=False)
    moved = res.step > 0
    lr = xp.where(moved, step / n, xp.zeros_like(step))
    res, step, moved, lr, finite = backend.barrier(xp, (res, step, moved, lr, finite))
    return PALLine(n=n, b=b, l_mu=l_mu, a=res.a, step=step, lr=lr, case=res.case,
                   clipped=res.clipped, moved=moved, finite=finite)
