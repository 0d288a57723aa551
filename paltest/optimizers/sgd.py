r"""SGD with a constant learning rate, heavy-ball momentum and optional Nesterov momentum.

The update follows ``torch.optim.SGD`` with dampening 0. With gradient :math:`g_t` of the
batch loss at :math:`\theta_t`, weight decay :math:`\lambda`, momentum :math:`\mu` and
learning rate :math:`\eta`:

.. math::

    \tilde g_t &= g_t + \lambda\,\theta_t\\
    b_t &= \mu\, b_{t-1} + \tilde g_t \qquad (b_{-1} = 0)\\
    d_t &= \tilde g_t + \mu\, b_t \ \text{(Nesterov)}\quad\text{or}\quad d_t = b_t\\
    \theta_{t+1} &= \theta_t - \eta\, d_t

With :math:`\mu = 0` this is plain SGD, :math:`d_t = \tilde g_t`, and no buffer is kept.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import (
    StepInfo,
    check_bool,
    check_in_range,
    check_nonneg,
    check_on_nonfinite,
    check_positive,
    optimizer_repr,
    takes_theta_as_data,
    update_step,
)

__all__ = ["SGD", "SGDInfo", "SGDState"]


class SGDState(NamedTuple):
    """SGD's state.

    Attributes:
        momentum_buffer: the momentum buffer :math:`b_t` (zeros at the start);
            ``None`` when ``momentum`` is 0.
    """

    momentum_buffer: Any


#: SGD's step record; ``lr`` is :math:`\eta` (0 when the step was skipped).
SGDInfo = StepInfo


@takes_theta_as_data
class SGD:
    r"""Stochastic gradient descent with heavy-ball or Nesterov momentum.

    Args:
        lr: learning rate :math:`\eta > 0`.
        momentum: momentum factor :math:`\mu \in [0, 1)`.
        nesterov: use Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty :math:`\lambda \ge 0` added to the gradient.
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` and the state unchanged
            and set ``nonfinite``) or ``"raise"`` (raise
            :class:`~paltest.optimizers.base.NonFiniteError`; one host transfer a step).

    Defaults: ``lr=0.1`` (a common starting value; ``torch.optim.SGD`` has none),
    ``momentum=0``, ``nesterov=False``, ``weight_decay=0`` as in ``torch.optim.SGD``
    (dampening is always 0). Reference: Polyak (1964) for heavy ball; Sutskever et al.
    (ICML 2013) for Nesterov momentum in this form.

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.sgd import SGD
        >>> vg = lambda th: (0.5 * th @ th, th)   # loss 0.5 |theta|^2
        >>> opt = SGD(lr=0.5, momentum=0.5)
        >>> theta = np.array([1.0, -2.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, None)
        >>> theta.tolist(), float(info.loss), float(info.lr)
        ([0.5, -1.0], 2.5, 0.5)
    """

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        on_nonfinite: str = "flag",
    ) -> None:
        self.lr = check_positive("lr", lr)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, hi_open=True)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
        self.weight_decay = check_nonneg("weight_decay", weight_decay)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def init(self, theta: Any) -> SGDState:
        """The initial state: a zero momentum buffer (none without momentum)."""
        xp = backend.check_params(theta)
        return SGDState(momentum_buffer=xp.zeros_like(theta) if self.momentum else None)

    #: Not a line search: the step length is ``lr`` times the direction.
    is_line_search = False

    def update(self, theta: Any, state: SGDState, grad: Any, lr: float) -> tuple[Any, SGDState]:
        r"""The update rule: ``(u, state_next)`` with :math:`u = \eta\, d_t` for
        :math:`\eta` = ``lr``, so the step is ``theta - u`` (see the module).

        ``state_next`` is advanced whatever the finiteness of ``grad``; :meth:`step`
        keeps the old state on a non-finite step, as PAL does along this direction.
        """
        g = grad
        if self.weight_decay:
            g = g + self.weight_decay * theta
        if self.momentum:
            new_buf = self.momentum * state.momentum_buffer + g
            d = g + self.momentum * new_buf if self.nesterov else new_buf
        else:
            new_buf, d = None, g
        return lr * d, SGDState(new_buf)

    def step(
        self, theta: Any, state: SGDState, value_and_grad: Any, value: Any = None
    ) -> tuple[Any, SGDState, SGDInfo]:
        """One SGD step: ``(theta_next, state_next, info)``; ``value`` is not used."""
        return update_step(self, theta, state, value_and_grad, SGDInfo)
