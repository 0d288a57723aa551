r"""PAL along another optimizer's update direction: which optimizers can lead, and how.

:class:`~paltest.optimizers.pal.PAL` with ``direction=`` takes its search line from a
first-order optimizer of the library. That optimizer supplies its update through the
direction protocol (:mod:`paltest.optimizers.base`): ``update(theta, state, grad, lr)``
returns ``(u, state_next)`` with ``theta - u`` its step at learning rate ``lr``. PAL calls
it with ``lr = 1.0`` on the gradient of the batch, so

.. math::

    u_t = \text{the base's update at unit learning rate}, \qquad
    \hat d_t = -u_t / \lVert u_t\rVert,

and PAL measures :math:`l(\mu)` along :math:`\hat d_t`, fits its parabola and moves
:math:`\theta_{t+1} = \theta_t + s_t \hat d_t` (its cases, :math:`\alpha`, :math:`s_{max}`
and non-finite rule unchanged). The base's state advances exactly as in its own
``step`` (moments, buffers, counters; kept unchanged on a non-finite step). The base's
learning rate is not used: :math:`\hat d_t` does not depend on it (PAL records the
learning rate :math:`s_t/\lVert u_t\rVert` that the base would have needed for the same
step).

Which optimizers can lead (:data:`SUPPORTED`): SGD (with or without momentum, Nesterov,
weight decay), Adam and RMSProp. The others say why not in their ``no_direction``
attribute: SGD-HD and ALI-G only adapt the learning rate of SGD's direction, which PAL
replaces (use ``direction="sgd"``, with ``momentum`` for ALI-G's); COCOB's
coin-betting iterate is not an update of the current :math:`\theta`; the SLS family,
the exact search and PAL are line searches themselves.

Example:
    >>> from paltest.optimizers.pal_direction import resolve
    >>> resolve("adam")
    Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, on_nonfinite='flag')
    >>> resolve("sgdhd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: direction: SGDHD cannot supply a direction: it only adapts the learning ...
"""

from __future__ import annotations

from typing import Any

__all__ = ["SUPPORTED", "VARIANTS", "check_state", "record", "resolve"]

#: Registry names of the optimizers that can supply PAL's direction.
SUPPORTED = ("sgd", "adam", "rmsprop")

#: The registry names of PAL along a direction: ``name -> (base name, base defaults)``.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "pal-momentum": ("sgd", {"momentum": 0.9}),
    "pal-adam": ("adam", {}),
    "pal-rmsprop": ("rmsprop", {}),
}

#: Base hyperparameters that PAL does not use (not recorded, not accepted by name).
UNUSED = ("lr", "on_nonfinite")


def resolve(direction: Any) -> Any:
    """The base optimizer of ``direction``: an optimizer instance or a registry name.

    Raises ``ValueError`` naming ``direction`` for an unknown name or an optimizer that
    cannot supply a direction (its ``no_direction`` reason), ``TypeError`` for an object
    without the direction protocol.
    """
    from paltest.optimizers import registry

    if isinstance(direction, type):
        raise TypeError(f"direction: got the class {direction.__name__}; pass an instance "
                        f"({direction.__name__}(...)) or a registry name")
    if isinstance(direction, str):
        if direction not in registry.names():
            raise ValueError(f"direction: unknown optimizer {direction!r}; choose one of "
                             f"{list(SUPPORTED)}")
        direction = registry.make(direction)
    why = getattr(direction, "no_direction", None)
    if why:
        raise ValueError(f"direction: {type(direction).__name__} cannot supply a "
                         f"direction: {why}")
    if not (callable(getattr(direction, "update", None)) and callable(
            getattr(direction, "init", None))):
        raise TypeError(
            "direction: must be an optimizer with init(theta) and update(theta, state, "
            f"grad, lr) (one of {list(SUPPORTED)}) or its name, got "
            f"{type(direction).__name__}")
    return direction


def record(base: Any) -> dict[str, Any]:
    """``{"direction": name, "direction.<hyperparameter>": value, ...}`` of ``base`` for
    result files (without :data:`UNUSED`); the name is the registry's or the class's."""
    from paltest.optimizers import registry

    name = registry.name_of(base) or type(base).__name__.lower()
    hp = registry.hyperparameters(base)
    return {"direction": name, **{f"direction.{k}": v for k, v in hp.items()
                                  if k not in UNUSED}}


def check_state(theta: Any, state: Any) -> None:
    """Every vector of the base's ``state`` has ``theta``'s shape (metadata only)."""
    if state is None:
        return
    names = getattr(state, "_fields", None) or [str(i) for i in range(len(state))]
    for name, field in zip(names, state, strict=True):
        if getattr(field, "ndim", None) == 1 and tuple(field.shape) != tuple(theta.shape):
            raise ValueError(
                f"state: base.{name} of shape {tuple(field.shape)} does not match theta "
                f"of shape {tuple(theta.shape)}; call init(theta) first"
            )
