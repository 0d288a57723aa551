r"""RMSProp (Tieleman & Hinton, COURSERA "Neural Networks for Machine Learning", Lecture 6.5,
2012) in the form of ``torch.optim.RMSprop``.

With gradient :math:`g_t`, decay :math:`\rho`, momentum :math:`\mu` and elementwise
operations:

.. math::

    s_t &= \rho\, s_{t-1} + (1 - \rho)\, g_t^2 \qquad (s_0 = 0)\\
    \bar g_t &= \rho\, \bar g_{t-1} + (1 - \rho)\, g_t, \quad
        r_t = \sqrt{\max(s_t - \bar g_t^2,\, 0)} + \varepsilon \quad \text{(centered)}\\
    r_t &= \sqrt{s_t} + \varepsilon \quad \text{(not centered)}\\
    b_t &= \mu\, b_{t-1} + g_t / r_t, \quad \theta_t = \theta_{t-1} - \eta\, b_t
        \quad \text{(momentum)}\\
    \theta_t &= \theta_{t-1} - \eta\, g_t / r_t \quad \text{(no momentum)}

Defaults: :math:`\rho = 0.9` as in Tieleman & Hinton and TensorFlow/Keras (``torch``'s
``alpha`` is the same parameter, default 0.99 there); :math:`\eta = 10^{-2}`,
:math:`\varepsilon = 10^{-8}`, no momentum, not centered as in ``torch.optim.RMSprop``.
The clamp at 0 in the centered form only guards against rounding (the difference is
non-negative in exact arithmetic); ``torch`` has no clamp.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import (
    StepInfo,
    check_bool,
    check_in_range,
    check_on_nonfinite,
    check_positive,
    optimizer_repr,
    takes_theta_as_data,
    update_step,
)

__all__ = ["RMSProp", "RMSPropInfo", "RMSPropState"]


class RMSPropState(NamedTuple):
    """RMSProp's state.

    Attributes:
        square_avg: the running mean of squared gradients :math:`s_t` (zeros at start).
        grad_avg: the running mean of gradients :math:`\\bar g_t` (zeros at the start);
            ``None`` unless ``centered``.
        momentum_buffer: :math:`b_t` (zeros at the start); ``None`` when ``momentum``
            is 0.
    """

    square_avg: Any
    grad_avg: Any
    momentum_buffer: Any


#: RMSProp's step record; ``lr`` is the base learning rate :math:`\eta` (0 when
#: skipped); the per-coordinate steps are :math:`\eta / r_t`.
RMSPropInfo = StepInfo


@takes_theta_as_data
class RMSProp:
    r"""RMSProp, optionally with momentum and centered.

    Args:
        lr: learning rate :math:`\eta > 0`.
        rho: decay of the running averages :math:`\rho \in [0, 1)` (``alpha`` in torch).
        eps: :math:`\varepsilon > 0` added to the root mean square.
        momentum: momentum factor :math:`\mu \in [0, 1)`.
        centered: divide by an estimate of the gradient's standard deviation instead
            of its root mean square.
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` and the state unchanged
            and set ``nonfinite``) or ``"raise"`` (raise
            :class:`~paltest.optimizers.base.NonFiniteError`; one host transfer a step).

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.rmsprop import RMSProp
        >>> vg = lambda th: (0.5 * th @ th, th)   # loss 0.5 |theta|^2
        >>> opt = RMSProp(lr=0.01, rho=0.75)
        >>> theta = np.array([1.0, -2.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, None)
        >>> np.round(theta, 6).tolist()   # first step: lr * sign(g) / sqrt(1 - rho)
        [0.98, -1.98]
    """

    def __init__(
        self,
        lr: float = 1e-2,
        rho: float = 0.9,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        on_nonfinite: str = "flag",
    ) -> None:
        self.lr = check_positive("lr", lr)
        self.rho = check_in_range("rho", rho, 0.0, 1.0, hi_open=True)
        self.eps = check_positive("eps", eps)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, hi_open=True)
        self.centered = check_bool("centered", centered)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps,
                "momentum": self.momentum, "centered": self.centered}

    def init(self, theta: Any) -> RMSPropState:
        """The initial state: zero running averages (and momentum buffer)."""
        xp = backend.check_params(theta)
        return RMSPropState(
            square_avg=xp.zeros_like(theta),
            grad_avg=xp.zeros_like(theta) if self.centered else None,
            momentum_buffer=xp.zeros_like(theta) if self.momentum else None,
        )

    #: Not a line search: the step length is ``lr`` times the direction.
    is_line_search = False

    def update(self, theta: Any, state: RMSPropState, grad: Any,
               lr: float) -> tuple[Any, RMSPropState]:
        r"""The update rule: ``(u, state_next)`` with :math:`u = \eta\, b_t` (momentum)
        or :math:`\eta\, g_t / r_t` for :math:`\eta` = ``lr``, so the step is
        ``theta - u`` (see the module).

        ``state_next`` is advanced whatever the finiteness of ``grad``; :meth:`step`
        keeps the old state on a non-finite step, as PAL does along this direction.
        """
        xp = backend.namespace(grad)
        g, rho = grad, self.rho
        sq = rho * state.square_avg + (1.0 - rho) * (g * g)
        ga = state.grad_avg
        if self.centered:
            ga = rho * ga + (1.0 - rho) * g
            var = sq - ga * ga
            r = xp.sqrt(xp.where(var > 0, var, xp.zeros_like(var))) + self.eps
        else:
            r = xp.sqrt(sq) + self.eps
        if self.momentum:
            new_buf = self.momentum * state.momentum_buffer + g / r
            d = new_buf
        else:
            new_buf, d = None, g / r
        return lr * d, RMSPropState(square_avg=sq, grad_avg=ga, momentum_buffer=new_buf)

    def step(
        self, theta: Any, state: RMSPropState, value_and_grad: Any, value: Any = None
    ) -> tuple[Any, RMSPropState, RMSPropInfo]:
        """One RMSProp step: ``(theta_next, state_next, info)``; ``value`` is not used."""
        return update_step(self, theta, state, value_and_grad, RMSPropInfo)
