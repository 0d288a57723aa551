r"""SGD-HD: SGD with hypergradient descent on the learning rate (Baydin, Cornish, Martínez
Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient Descent",
ICLR 2018), as in the authors' reference class ``hypergrad.SGDHD``.

With gradient :math:`g_t`, the previous update direction :math:`d_{t-1}` (:math:`d_{-1}=0`)
and hypergradient learning rate :math:`\beta`:

.. math::

    h_t &= g_t \cdot d_{t-1}, \qquad \eta_t = \eta_{t-1} + \beta\, h_t\\
    d_t &= g_t \quad\text{(no momentum)}, \qquad
        b_t = \mu\, b_{t-1} + g_t,\ d_t = b_t \text{ or } g_t + \mu b_t
        \text{ (Nesterov)}\\
    \theta_{t+1} &= \theta_t - \eta_t\, d_t

Without momentum this is the paper's SGD-HD, :math:`\eta_t = \eta_{t-1} + \beta\,
g_t\cdot g_{t-1}`; with momentum the reference (and the paper's SGDN-HD) use the
previous update direction in the hypergradient. The learning rate is not clipped, so it
may become negative, as in the reference.

Defaults: :math:`\eta_0 = 10^{-3}` and :math:`\beta = 10^{-3}`, the values of the paper's
SGD-HD and SGDN-HD experiments (Section 5; the reference class has no default for
:math:`\eta_0` and uses :math:`\beta = 10^{-6}`), no momentum.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.optimizers.base import (
    check_bool,
    check_in_range,
    check_nonneg,
    check_on_nonfinite,
    check_positive,
    first_order_start,
    optimizer_repr,
    scalar,
    select,
    takes_theta_as_data,
)

__all__ = ["SGDHD", "SGDHDInfo", "SGDHDState"]


class SGDHDState(NamedTuple):
    """SGD-HD's state.

    Attributes:
        lr: the current learning rate :math:`\\eta_{t-1}`, a 0-d array in the
            parameters' dtype (starts at ``lr``).
        prev_direction: the previous update direction :math:`d_{t-1}` (zeros at start).
        momentum_buffer: :math:`b_t` (zeros at the start); ``None`` when ``momentum``
            is 0.
    """

    lr: Any
    prev_direction: Any
    momentum_buffer: Any


class SGDHDInfo(NamedTuple):
    """The record of one SGD-HD step; numeric fields are 0-d arrays on the device.

    Attributes:
        loss: the batch loss at the start of the step.
        lr: the adapted learning rate :math:`\\eta_t` applied (0 when skipped).
        hypergradient: :math:`h_t = g_t\\cdot d_{t-1}` (0 when skipped).
        nonfinite: bool; the loss or gradient was not finite and the step was skipped.
        n_fun: loss evaluations (1).
        n_grad: gradient evaluations (1).
    """

    loss: Any
    lr: Any
    hypergradient: Any
    nonfinite: Any
    n_fun: int
    n_grad: int


@takes_theta_as_data
class SGDHD:
    r"""SGD with hypergradient descent on a global learning rate.

    Args:
        lr: initial learning rate :math:`\eta_0 > 0`.
        hypergrad_lr: hypergradient learning rate :math:`\beta \ge 0` (0 gives SGD).
        momentum: momentum factor :math:`\mu \in [0, 1)`.
        nesterov: use Nesterov momentum (needs ``momentum > 0``).
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` and the state unchanged
            and set ``nonfinite``) or ``"raise"`` (raise
            :class:`~paltest.optimizers.base.NonFiniteError`; one host transfer a step).

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.sgdhd import SGDHD
        >>> vg = lambda th: (0.5 * th @ th, th)   # loss 0.5 |theta|^2
        >>> opt = SGDHD(lr=0.5, hypergrad_lr=0.1)
        >>> theta = np.array([1.0, -2.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, None)  # h = 0
        >>> theta, state, info = opt.step(theta, state, vg, None)  # h = g1 . g0 = 2.5
        >>> float(info.lr), theta.tolist()
        (0.75, [0.125, -0.25])
    """

    #: Not a line search: it sets its step without measuring the loss along the direction.
    is_line_search = False
    #: Why it cannot supply PAL's direction (``PAL(direction=...)``).
    no_direction = ("it only adapts the learning rate of SGD's gradient direction, which PAL "
                    "replaces; use direction='sgd'")

    def __init__(
        self,
        lr: float = 1e-3,
        hypergrad_lr: float = 1e-3,
        momentum: float = 0.0,
        nesterov: bool = False,
        on_nonfinite: str = "flag",
    ) -> None:
        self.lr = check_positive("lr", lr)
        self.hypergrad_lr = check_nonneg("hypergrad_lr", hypergrad_lr)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, hi_open=True)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"lr": self.lr, "hypergrad_lr": self.hypergrad_lr,
                "momentum": self.momentum, "nesterov": self.nesterov}

    def init(self, theta: Any) -> SGDHDState:
        """The initial state: learning rate ``lr``, zero previous direction and buffer."""
        xp = backend.check_params(theta)
        return SGDHDState(
            lr=scalar(xp, self.lr, theta),
            prev_direction=xp.zeros_like(theta),
            momentum_buffer=xp.zeros_like(theta) if self.momentum else None,
        )

    def step(
        self, theta: Any, state: SGDHDState, value_and_grad: Any, value: Any = None
    ) -> tuple[Any, SGDHDState, SGDHDInfo]:
        """One SGD-HD step: ``(theta_next, state_next, info)``; ``value`` is not used."""
        xp, loss, g, ok = first_order_start(theta, state, value_and_grad, self.on_nonfinite)
        h = xp.vecdot(g, state.prev_direction)
        lr = state.lr + self.hypergrad_lr * h
        buf = state.momentum_buffer
        if self.momentum:
            new_buf = self.momentum * buf + g
            d = g + self.momentum * new_buf if self.nesterov else new_buf
            buf = select(xp, ok, new_buf, buf)
        else:
            d = g
        theta_next = select(xp, ok, theta - lr * d, theta)
        zero = (np.zeros_like if type(g) is np.ndarray else xp.zeros_like)(lr)  # same array
        new_state = SGDHDState(
            lr=select(xp, ok, lr, state.lr),
            prev_direction=select(xp, ok, d, state.prev_direction),
            momentum_buffer=buf,
        )
        info = SGDHDInfo(loss=loss, lr=select(xp, ok, lr, zero),
                         hypergradient=select(xp, ok, h, zero),
                         nonfinite=~ok, n_fun=1, n_grad=1)
        return theta_next, new_state, info
