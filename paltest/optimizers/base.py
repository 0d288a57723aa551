"""The optimizer protocol shared by PAL and every baseline, and its argument checks.

An optimizer is a small immutable object holding validated hyperparameters (Python
floats). It works on a flat parameter vector ``theta`` of any array-API namespace in a
functional style (as optax and optimistix do)::

    state = opt.init(theta)
    theta, state, info = opt.step(theta, state, value_and_grad, value)

``value_and_grad(theta) -> (loss, grad)`` and ``value(theta) -> loss`` are bound to the
current batch by the caller; an optimizer may call them as often as its method needs
(PAL: once each) and must report how often it did. ``loss`` is a 0-d array (or a Python
float); ``grad`` has the shape, dtype and namespace of ``theta``.

``state`` is a documented ``NamedTuple`` of arrays. ``info`` is the step record, a
``NamedTuple`` whose numeric fields are 0-d arrays on the parameters' device (so that a
step needs no device-to-host transfer) and which has at least these fields:

``loss``
    the batch loss at the start of the step,
``lr``
    the learning rate actually applied (0 when the step did not move),
``nonfinite``
    0-d bool, a non-finite loss or gradient was met and ``theta`` was left unchanged,
``n_fun``, ``n_grad``
    loss evaluations (forward passes, including those inside ``value_and_grad``) and
    gradient evaluations the step used; Python ints when they are fixed, 0-d arrays
    when they depend on data.

Autograd (PyTorch): every optimizer class is decorated with
:func:`takes_theta_as_data`, so ``init`` and ``step`` detach a ``theta`` that requires
grad, and losses and gradients are detached when they are read: a step never records an
autograd graph, and the returned ``theta`` never has a ``grad_fn``. ``value_and_grad``
therefore receives a tensor without ``requires_grad`` and computes its gradient itself,
e.g. with ``torch.func.grad_and_value`` or ``torch.autograd.grad`` on a detached leaf
copy ``t = theta.detach().requires_grad_()``. NumPy arrays pass with one type check.

Compiled steps (JAX): the step of PAL and of every first-order optimizer is branch-free
on device values, so ``jax.jit`` of ``step`` traces it once per shape and dtype, and
``jax.lax.scan`` runs an epoch of steps in one compiled call. Steps that read values on
the host by design cannot be traced: the SLS family and the exact line search (their
trial loops decide on the host), and any optimizer with ``on_nonfinite="raise"``.
:func:`host_reads` says why for an optimizer, and tracing such a step raises
:class:`TraceError` naming the reason before any work is done.

Non-finite rule (all optimizers): when the loss or gradient at ``theta`` is not finite,
``theta`` is returned bitwise unchanged, the state is not updated with the non-finite
values, and the record says so; ``on_nonfinite="raise"`` raises
:class:`NonFiniteError` instead (that check costs one device-to-host transfer per step).

Direction protocol (first-order optimizers that can lead PAL, see
:class:`~paltest.optimizers.pal.PAL` ``direction=``): SGD, Adam and RMSProp have
``update(theta, state, grad, lr) -> (u, state_next)``, their update rule in one place:
``theta - u`` is the step at learning rate ``lr`` (a Python float) for gradient
``grad``, and ``state_next`` the advanced state, computed whatever the finiteness (the
caller keeps the old state on a non-finite step, :func:`select_state`). Their own
``step`` is ``first_order_start`` + ``update(..., self.lr)`` + the selections. Every
optimizer class says whether it is a line search (``is_line_search``: it measures the
loss along its direction to choose the step); those that cannot supply a direction
say why in ``no_direction``.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from paltest import backend
from paltest.checks import (
    check_bool,
    check_in_range,
    check_int,
    check_nonneg,
    check_positive,
)
from paltest.optimizers.selection import (  # noqa: F401 - re-exported for the optimizers
    _host_select_state,
    host_norm,
    scalar,
    select,
    select_scalar,
    select_state,
)

__all__ = [
    "NonFiniteError",
    "Optimizer",
    "StepInfo",
    "call_value_and_grad",
    "check_bool",
    "check_grad",
    "check_in_range",
    "check_int",
    "check_nonneg",
    "check_on_nonfinite",
    "check_positive",
    "check_state",
    "check_state_type",
    "evaluate",
    "first_order_start",
    "host_reads",
    "optimizer_repr",
    "raise_if_nonfinite",
    "scalar",
    "select_state",
    "takes_theta_as_data",
    "TraceError",
]

ON_NONFINITE = ("flag", "raise")

_ndarray, _np_float64, _np_float32 = np.ndarray, np.float64, np.float32
_np_asarray, _np_isfinite = np.asarray, np.isfinite
_np_sum, _np_true, _np_false, _isfinite = np.add.reduce, np.True_, np.False_, math.isfinite
_HOST_XP = backend.namespace(np.zeros(0))  # array_api_compat.numpy


class StepInfo(NamedTuple):
    """The record of a one-evaluation first-order step; numeric fields are 0-d arrays.

    Attributes:
        loss: the batch loss at the start of the step.
        lr: the learning rate applied (0 when the step was skipped); each optimizer's
            module says what it is for that method.
        nonfinite: bool; the loss or gradient was not finite and the step was skipped.
        n_fun: loss evaluations (1).
        n_grad: gradient evaluations (1).
    """

    loss: Any
    lr: Any
    nonfinite: Any
    n_fun: int
    n_grad: int


class NonFiniteError(FloatingPointError):
    """A loss or gradient was NaN or infinite and the optimizer was asked to raise."""


class TraceError(TypeError):
    """A step that reads values on the host was traced (``jax.jit``, ``lax.scan``, ...)."""


def host_reads(opt: Any) -> str | None:
    """Why ``opt.step`` reads values on the host, so that it cannot be traced; or ``None``.

    An optimizer class that is host-driven by design says why in its ``host_driven``
    attribute (the SLS family, the exact line search); ``on_nonfinite="raise"`` reads
    one flag per step on any optimizer.
    """
    why = getattr(opt, "host_driven", None)
    if why:
        return str(why)
    if getattr(opt, "on_nonfinite", "flag") == "raise":
        return ("on_nonfinite='raise' reads the finiteness of the loss and gradient on the "
                "host (on_nonfinite='flag' traces)")
    return None


@runtime_checkable
class Optimizer(Protocol):
    """What the runner and the SciPy driver need from an optimizer."""

    def init(self, theta: Any) -> NamedTuple:  # pragma: no cover - protocol
        """The initial state for parameters ``theta``."""

    def step(
        self, theta: Any, state: NamedTuple, value_and_grad: Any, value: Any
    ) -> tuple[Any, NamedTuple, NamedTuple]:  # pragma: no cover - protocol
        """One update: ``(theta_next, state_next, info)``."""


def _detaching(method: Any, step: bool = False) -> Any:
    """``method(self, theta, ...)`` called with :func:`paltest.backend.detach` (theta).

    For ``step``, a traced ``theta`` of a host-driven optimizer (:func:`host_reads`)
    raises :class:`TraceError` first.
    """
    if getattr(method, "_detaches_theta", False):
        return method
    if step and list(inspect.signature(method).parameters) == _STEP_PARAMETERS:
        return _detaching_step(method)

    @functools.wraps(method)
    def wrapper(self: Any, theta: Any, *args: Any, **kwargs: Any) -> Any:
        if step:
            check_state_type(self, args[0] if args else kwargs.get("state"))
        if type(theta) in backend.HOST_ARRAY_TYPES:  # NumPy: never traced, no autograd
            return method(self, theta, *args, **kwargs)
        return method(self, _device_theta(self, theta, step), *args, **kwargs)

    wrapper._detaches_theta = True  # type: ignore[attr-defined]
    return wrapper


def _device_theta(opt: Any, theta: Any, step: bool) -> Any:
    """A ``theta`` that is not a NumPy array, detached; for ``step`` of a host-driven
    optimizer a traced one raises :class:`TraceError` first."""
    if step and backend.is_traced(theta):
        why = host_reads(opt)
        if why is not None:
            raise TraceError(
                f"{type(opt).__name__}.step: cannot be traced (jax.jit, lax.scan, "
                f"vmap): {why}; call step eagerly, outside the traced function")
    return backend.detach(theta)


_STEP_PARAMETERS = ["self", "theta", "state", "value_and_grad", "value"]
#: The state type of each optimizer class whose ``init`` declares it (its return
#: annotation, a NamedTuple); see :func:`check_state_type`.
_STATE_TYPE: dict[type, type | None] = {}


def state_type(cls: type) -> type | None:
    """The NamedTuple type that ``cls.init`` declares it returns, or ``None`` when its
    return annotation is missing or not a NamedTuple class."""
    if cls not in _STATE_TYPE:
        init = getattr(cls, "init", None)
        try:
            kind = typing.get_type_hints(init).get("return")
        except Exception:  # no annotations, or names that do not resolve
            kind = None
        ok = isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")
        _STATE_TYPE[cls] = kind if ok else None
    return _STATE_TYPE[cls]


def check_state_type(opt: Any, state: Any) -> None:
    """``state`` must be the state type ``opt.init`` returns (:func:`state_type`), when
    it declares one: another optimizer's state, or ``None``, raises ``TypeError`` naming
    ``state``. (Its arrays are checked by :func:`check_state`, in :func:`evaluate`.)"""
    kind = state_type(type(opt))
    if kind is None or isinstance(state, kind):
        return
    got = "None" if state is None else f"a {type(state).__name__}"
    raise TypeError(f"state: expected the {kind.__name__} that {type(opt).__name__}.init(theta) "
                    f"returns, got {got}")
_MISSING = object()


def _detaching_step(method: Any) -> Any:
    """:func:`_detaching` for ``step(self, theta, state, value_and_grad, value)``, with
    that signature instead of ``*args, **kwargs`` (a quarter of the call's cost on NumPy);
    ``value`` left out is left out of the call too, so the method's own default applies."""

    @functools.wraps(method)
    def step(self: Any, theta: Any, state: Any, value_and_grad: Any,
             value: Any = _MISSING) -> Any:
        if type(state) is not _STATE_TYPE.get(type(self)):
            check_state_type(self, state)
        if type(theta) not in backend.HOST_ARRAY_TYPES:  # NumPy: never traced
            theta = _device_theta(self, theta, True)
        if value is _MISSING:
            return method(self, theta, state, value_and_grad)
        return method(self, theta, state, value_and_grad, value)

    step._detaches_theta = True  # type: ignore[attr-defined]
    return step


def takes_theta_as_data(cls: type) -> type:
    """Class decorator for optimizers: ``init`` and ``step`` never build an autograd graph.

    Both receive ``theta`` through :func:`paltest.backend.detach`: a PyTorch tensor that
    requires grad is replaced by its detached view (same memory, no history), so no
    operation of the step is recorded and the returned parameters and state carry no
    ``grad_fn`` (without it the graph would grow with every step). Every other array
    passes unchanged; the values are bitwise the same either way. ``step`` also refuses
    to be traced when the optimizer reads values on the host (:func:`host_reads`).
    """
    for name in ("init", "step"):
        setattr(cls, name, _detaching(getattr(cls, name), step=name == "step"))
    return cls


def check_on_nonfinite(value: Any) -> str:
    """``on_nonfinite`` must be the string ``"flag"`` or ``"raise"``.

    Anything else (another string, ``None``, a list, an array of names) raises
    ``ValueError`` naming ``on_nonfinite``; the value is never compared elementwise.
    """
    if not (isinstance(value, str) and value in ON_NONFINITE):
        raise ValueError(f"on_nonfinite: must be one of {ON_NONFINITE}, got {value!r}")
    return str(value)


def check_grad(theta: Any, grad: Any, xp: Any) -> None:
    """``grad`` must match ``theta`` in namespace, shape and dtype (metadata only)."""
    # The same NumPy type as theta has the same namespace (backend.namespace): skip it.
    if not (type(grad) is type(theta) and type(grad) in backend.HOST_ARRAY_TYPES):
        try:
            gxp = backend.namespace(grad)
        except TypeError as err:
            raise TypeError(
                f"grad: value_and_grad returned a {type(grad).__name__}, expected an "
                f"array of the parameters' namespace {xp.__name__}"
            ) from err
        if gxp is not xp:
            raise TypeError(
                f"grad: namespace {gxp.__name__} differs from the parameters' namespace "
                f"{xp.__name__}"
            )
    if tuple(grad.shape) != tuple(theta.shape):
        raise ValueError(
            f"grad: shape {tuple(grad.shape)} differs from the parameters' shape "
            f"{tuple(theta.shape)}"
        )
    if grad.dtype != theta.dtype:
        raise TypeError(
            f"grad: dtype {grad.dtype} differs from the parameters' dtype {theta.dtype}"
        )


def as_loss(loss: Any, xp: Any, like: Any) -> Any:
    """A loss value as a 0-d array of ``xp`` on ``like``'s device.

    Python floats and ints are placed on the device in ``like``'s dtype. Arrays must be
    0-d (a 1-element array is accepted and reshaped); float32 and float64 arrays keep
    their dtype, other real floating (e.g. float16) and integer arrays are cast to
    ``like``'s dtype, as Python ints are. Bool and complex losses are rejected, as
    Python bools and complex numbers are, never cast (a complex loss would lose its
    imaginary part, a bool would become 0 or 1). A PyTorch loss that carries autograd
    history is detached (:func:`paltest.backend.detach`).
    """
    # NumPy fast paths, with the results of the general branches below:
    cls = type(loss)
    if cls is _np_float64 and type(like) is _ndarray:  # np.float64 is a Python float
        return _np_asarray(float(loss), dtype=like.dtype)
    if cls is _np_float32 and xp is _HOST_XP:  # a real 0-d array of xp, kept as it is
        return loss
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return xp.asarray(float(loss), dtype=like.dtype, device=backend.device(like))
    try:
        lxp = backend.namespace(loss)
    except TypeError as err:
        raise TypeError(
            f"loss: expected a 0-d array or a Python float, got {type(loss).__name__}"
        ) from err
    if lxp is not xp:
        raise TypeError(
            f"loss: namespace {lxp.__name__} differs from the parameters' namespace {xp.__name__}"
        )
    if loss.ndim != 0:
        if math.prod(loss.shape) != 1:
            raise ValueError(f"loss: expected a scalar, got shape {tuple(loss.shape)}")
        loss = xp.reshape(loss, ())
    if loss.dtype not in (xp.float32, xp.float64):
        if not xp.isdtype(loss.dtype, ("real floating", "integral")):
            raise TypeError(
                f"loss: dtype {loss.dtype} is not a real number type; expected a real "
                "floating (or integer) loss, bool and complex losses are not accepted"
            )
        loss = xp.astype(loss, like.dtype)
    return backend.detach(loss)


def raise_if_nonfinite(ok: Any, what: str) -> None:
    """Raise :class:`NonFiniteError` unless the 0-d bool ``ok`` is true (one host sync)."""
    if not bool(backend.to_host(ok)):
        raise NonFiniteError(f"non-finite {what}; parameters left unchanged")


def call_value_and_grad(value_and_grad: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
    """``value_and_grad(theta)``, checked to be a ``(loss, grad)`` pair; ``grad`` checked.

    Anything but a tuple or list of two items raises ``TypeError`` naming
    ``value_and_grad``; the gradient is checked by :func:`check_grad` and, on PyTorch,
    detached from any autograd history (:func:`paltest.backend.detach`). The loss is
    returned as given (see :func:`as_loss`).
    """
    return _checked_pair(value_and_grad(theta), theta, xp)


def _checked_pair(out: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
    """:func:`call_value_and_grad` after the call: ``out`` checked to be ``(loss, grad)``,
    the gradient checked and detached."""
    if not ((type(out) is tuple or isinstance(out, (tuple, list))) and len(out) == 2):
        got = (f"a {type(out).__name__} of {len(out)} items"
               if isinstance(out, (tuple, list)) else f"a {type(out).__name__}")
        raise TypeError(f"value_and_grad: must return a (loss, grad) pair, got {got}")
    loss, g = out
    check_grad(theta, g, xp)
    return loss, backend.detach(g)


#: The NamedTuple types already seen as states (their type checked once).
_STATE_TUPLES: set[type] = set()


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and isinstance(getattr(type(value), "_fields", None),
                                                   tuple)


def _dtype_text(dtype: Any) -> str:
    """``"float32"`` for any namespace's float32 (else the dtype as text)."""
    text = str(dtype)
    return next((n for n in backend.FLOAT_DTYPES if n in text), text)


def check_state(theta: Any, state: Any, xp: Any = None, where: str = "state") -> None:
    """``state`` must be ``None`` or a NamedTuple (nested states such as PAL's ``base``
    included) whose arrays have ``theta``'s namespace and, unless 0-d, its shape; its
    real floating arrays also its dtype. Python numbers and ``None`` fields pass.

    Raises ``TypeError``/``ValueError`` naming the field: a state of another optimizer
    or of parameters of another dtype would otherwise be computed with (a float32
    state turns float64 parameters into float32 ones). Only metadata is read.
    """
    if state is None:
        return
    if not _is_namedtuple(state):
        raise TypeError(f"{where}: expected the state NamedTuple that init(theta) returns, "
                        f"got {type(state).__name__}")
    xp = backend.namespace(theta) if xp is None else xp
    for name, field in zip(state._fields, state, strict=True):
        if _is_namedtuple(field):
            check_state(theta, field, xp, f"{where}.{name}")
            continue
        shape, dtype = getattr(field, "shape", None), getattr(field, "dtype", None)
        if shape is None or dtype is None or isinstance(field, (bool, int, float)):
            continue  # Python numbers (a host step size), None
        try:
            fxp = backend.namespace(field)
        except TypeError:
            fxp = None
        if fxp is not xp:
            raise TypeError(f"{where}: {name} is a {type(field).__name__}, not an array of the "
                            f"parameters' namespace {xp.__name__}; call init(theta) first")
        if len(shape) and tuple(shape) != tuple(theta.shape):
            raise ValueError(
                f"{where}: {name} of shape {tuple(shape)} does not match theta of "
                f"shape {tuple(theta.shape)}; call init(theta) first")
        if dtype != theta.dtype and xp.isdtype(dtype, "real floating"):
            raise TypeError(
                f"{where}: {name} has dtype {_dtype_text(dtype)}, theta "
                f"{_dtype_text(theta.dtype)}; the state must be made by init(theta) for "
                "parameters of this dtype")
    if state.__class__ not in _STATE_TUPLES and where == "state":
        _STATE_TUPLES.add(state.__class__)


def evaluate(theta: Any, state: Any, value_and_grad: Any) -> tuple[Any, Any, Any]:
    """The start of every step: ``(xp, loss, grad)`` at ``theta``, validated.

    Checks ``theta`` (:func:`paltest.backend.check_params`) and ``state``
    (:func:`check_state`: a NamedTuple, or ``None``, whose arrays are of ``theta``'s
    namespace, shape and floating dtype), calls
    ``value_and_grad(theta)`` once (:func:`call_value_and_grad`: a ``(loss, grad)``
    pair, the gradient checked by :func:`check_grad`) and makes the loss a 0-d array
    (:func:`as_loss`). Only metadata is read: no host transfer.
    """
    xp = backend.check_params(theta)
    if state is not None:
        shape, dtype = theta.shape, theta.dtype
        if type(state) in _STATE_TUPLES:
            for field in state:  # the common cases, a few checks each; else the full checks
                cls = type(field)
                if field is None or cls is float:
                    continue
                if cls is _ndarray:
                    if field.dtype is dtype and (field.shape == shape or field.shape == ()):
                        continue
                elif cls is getattr(dtype, "type", None):  # a NumPy scalar (0-d arithmetic)
                    continue
                check_state(theta, state, xp)
                break
        else:
            check_state(theta, state, xp)
    if xp is _HOST_XP and type(theta) is _ndarray:
        # NumPy: call_value_and_grad's and as_loss's checks inline for the common
        # results (a pair, a gradient array like theta, an np.float64/np.float32 loss);
        # anything else takes the general checks below.
        out = value_and_grad(theta)
        if type(out) is tuple and len(out) == 2:
            loss, g = out
            if type(g) is _ndarray and g.shape == theta.shape and g.dtype == theta.dtype:
                cls = type(loss)
                if cls is _np_float64:
                    return xp, _np_asarray(float(loss), dtype=theta.dtype), g
                if cls is _np_float32:
                    return xp, loss, g
                return xp, as_loss(loss, xp, theta), g
        loss, g = _checked_pair(out, theta, xp)
    else:
        loss, g = call_value_and_grad(value_and_grad, theta, xp)
    return xp, as_loss(loss, xp, theta), g


def first_order_start(
    theta: Any, state: NamedTuple, value_and_grad: Any, on_nonfinite: str
) -> tuple[Any, Any, Any, Any]:
    """Validate, evaluate the batch once, and test finiteness: ``(xp, loss, grad, ok)``.

    ``ok`` is a 0-d bool array, true when the loss and every gradient entry are finite.
    With ``on_nonfinite="raise"`` a false ``ok`` raises
    :class:`~paltest.optimizers.base.NonFiniteError` (one device-to-host transfer);
    otherwise nothing leaves the device.
    """
    xp, loss, g = evaluate(theta, state, value_and_grad)
    if type(g) is _ndarray and xp is _HOST_XP:  # the same np.bool_, fewer passes
        # A finite sum has finite terms only (inf and NaN propagate), so the entrywise
        # test runs only when the sum is not finite (it may have overflowed).
        ok = _np_true if (_isfinite(loss) and (_isfinite(_np_sum(g))
                                                or _np_isfinite(g).all())) else _np_false
    else:
        ok = xp.isfinite(loss) & xp.all(xp.isfinite(g))
    if on_nonfinite == "raise":
        raise_if_nonfinite(ok, "loss or gradient")
    return xp, loss, g, ok


def update_step(
    opt: Any, theta: Any, state: NamedTuple, value_and_grad: Any, info_type: Any
) -> tuple[Any, Any, Any]:
    """The step of a first-order optimizer defined by its ``update``: ``theta - u``.

    Evaluates the batch once (:func:`first_order_start`), asks
    ``opt.update(theta, state, grad, opt.lr)`` for ``(u, state_next)``, and returns
    ``(theta - u, state_next, info_type(loss, lr, nonfinite, n_fun=1, n_grad=1))``, or
    ``theta`` and ``state`` themselves (and ``lr`` 0) on a non-finite loss or gradient.
    SGD, Adam and RMSProp step through it, so each update rule is written once, in its
    ``update``, which PAL also uses along that optimizer's direction.
    """
    xp, loss, g, ok = first_order_start(theta, state, value_and_grad, opt.on_nonfinite)
    u, new_state = opt.update(theta, state, g, opt.lr)
    if xp is _HOST_XP and type(u) is _ndarray and type(theta) is _ndarray:
        # select, select_scalar and select_state on NumPy without their calls: the same
        # arrays (a Python branch on ok; the learning rate made in theta's dtype).
        step = theta - u
        okb = bool(ok)
        if step.shape == theta.shape and step.dtype == theta.dtype:
            theta_next = step if okb else theta
        else:
            theta_next = xp.where(ok, step, theta)
        # info_type(loss, lr, nonfinite, n_fun, n_grad): StepInfo's field order
        info = info_type(loss, _np_asarray(opt.lr if okb else 0.0, dtype=theta.dtype),
                         ~ok, 1, 1)
        return theta_next, _host_select_state(okb, new_state, state), info
    theta_next = select(xp, ok, theta - u, theta)
    lr = select_scalar(xp, ok, opt.lr, theta)
    info = info_type(loss=loss, lr=lr, nonfinite=~ok, n_fun=1, n_grad=1)
    return theta_next, select_state(xp, ok, new_state, state), info


def optimizer_repr(opt: Any) -> str:
    """``Name(hyperparameter=value, ..., on_nonfinite=...)`` for an optimizer."""
    args = dict(opt.hyperparameters, on_nonfinite=opt.on_nonfinite)
    return f"{type(opt).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
