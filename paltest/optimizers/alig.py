r"""ALI-G: Adaptive Learning-rates for Interpolation with Gradients (Berrada, Zisserman &
Kumar, "Training Neural Networks for and by Interpolation", ICML 2020), as in the authors'
PyTorch class ``alig.th.AliG`` (standard, non-"adjusted" momentum).

With batch loss :math:`l_t` and gradient :math:`g_t` at :math:`\theta_t`, maximal learning
rate :math:`\eta_{max}`, momentum :math:`\mu` and :math:`\delta > 0`:

.. math::

    \gamma_t &= \min\!\Big(\frac{l_t}{\lVert g_t\rVert^2 + \delta},\ \eta_{max}\Big)\\
    v_t &= \mu\, v_{t-1} - \gamma_t\, g_t \qquad (v_{-1} = 0)\\
    \theta_{t+1} &= \theta_t - \gamma_t\, g_t + \mu\, v_t

(a Nesterov-type momentum; with :math:`\mu = 0`, :math:`\theta_{t+1} = \theta_t -
\gamma_t g_t`). ALI-G assumes the loss is non-negative with minimum near 0
(interpolation); as in the reference, a negative loss is not clipped and gives a negative
step.

Defaults: :math:`\eta_{max} = 0.1` (the reference README's example and most of its
CIFAR configurations), :math:`\mu = 0.9` (the paper's experiments), :math:`\delta =
10^{-5}` (the reference ``eps``). ``max_lr=None`` disables the cap, as in the reference.
"""

from __future__ import annotations

import types
from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.optimizers.base import (
    check_in_range,
    check_on_nonfinite,
    check_positive,
    first_order_start,
    optimizer_repr,
    select,
    takes_theta_as_data,
)

__all__ = ["ALIG", "ALIGInfo", "ALIGState"]

#: ``astype``, ``zeros_like`` and ``full_like`` for NumPy arrays (see :meth:`ALIG.step`).
_NP_FUNCS = types.SimpleNamespace(astype=lambda x, dtype: x.astype(dtype),
                                  zeros_like=np.zeros_like, full_like=np.full_like)


class ALIGState(NamedTuple):
    """ALI-G's state.

    Attributes:
        momentum_buffer: :math:`v_t` (zeros at the start); ``None`` when ``momentum``
            is 0.
    """

    momentum_buffer: Any


class ALIGInfo(NamedTuple):
    """The record of one ALI-G step; numeric fields are 0-d arrays on the device.

    Attributes:
        loss: the batch loss at the start of the step.
        lr: the adapted step size :math:`\\gamma_t` (0 when the step was skipped).
        clipped: bool; :math:`\\eta_{max}` cut the step size.
        nonfinite: bool; the loss or gradient was not finite and the step was skipped.
        n_fun: loss evaluations (1).
        n_grad: gradient evaluations (1).
    """

    loss: Any
    lr: Any
    clipped: Any
    nonfinite: Any
    n_fun: int
    n_grad: int


@takes_theta_as_data
class ALIG:
    r"""ALI-G with momentum.

    Args:
        max_lr: maximal learning rate :math:`\eta_{max} > 0`, or ``None`` for no cap.
        momentum: momentum factor :math:`\mu \in [0, 1)`.
        delta: :math:`\delta > 0` added to :math:`\lVert g\rVert^2` (``eps`` in the
            reference).
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` and the state unchanged
            and set ``nonfinite``) or ``"raise"`` (raise
            :class:`~paltest.optimizers.base.NonFiniteError`; one host transfer a step).

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.alig import ALIG
        >>> vg = lambda th: (0.5 * th @ th, th)   # loss 0.5 |theta|^2
        >>> opt = ALIG()                         # gamma = min(2.5 / (5 + 1e-5), 0.1)
        >>> theta = np.array([1.0, -2.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, None)
        >>> float(info.lr), np.round(theta, 12).tolist()
        (0.1, [0.81, -1.62])
    """

    #: Not a line search: it sets its step without measuring the loss along the direction.
    is_line_search = False
    #: Why it cannot supply PAL's direction (``PAL(direction=...)``).
    no_direction = ("it only sets a Polyak-type learning rate for SGD's (momentum) direction, which"
                    " PAL replaces; use direction='sgd' (with momentum)")

    def __init__(
        self,
        max_lr: float | None = 0.1,
        momentum: float = 0.9,
        delta: float = 1e-5,
        on_nonfinite: str = "flag",
    ) -> None:
        self.max_lr = None if max_lr is None else check_positive("max_lr", max_lr)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, hi_open=True)
        self.delta = check_positive("delta", delta)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"max_lr": self.max_lr, "momentum": self.momentum, "delta": self.delta}

    def init(self, theta: Any) -> ALIGState:
        """The initial state: a zero momentum buffer (none without momentum)."""
        xp = backend.check_params(theta)
        return ALIGState(momentum_buffer=xp.zeros_like(theta) if self.momentum else None)

    def step(
        self, theta: Any, state: ALIGState, value_and_grad: Any, value: Any = None
    ) -> tuple[Any, ALIGState, ALIGInfo]:
        """One ALI-G step: ``(theta_next, state_next, info)``; ``value`` is not used."""
        xp, loss, g, ok = first_order_start(theta, state, value_and_grad, self.on_nonfinite)
        # On NumPy, NumPy's own astype, zeros_like and full_like: what the namespace's
        # wrappers call, without their argument handling (the same values and types).
        fx = _NP_FUNCS if type(g) is np.ndarray else xp
        gamma = fx.astype(loss, theta.dtype) / (xp.vecdot(g, g) + self.delta)
        if self.max_lr is None:
            clipped = fx.zeros_like(ok)
        else:
            clipped = gamma > self.max_lr
            gamma = xp.where(clipped, fx.full_like(gamma, self.max_lr), gamma)
        theta_new = theta - gamma * g
        buf = state.momentum_buffer
        if self.momentum:
            new_buf = self.momentum * buf - gamma * g
            theta_new = theta_new + self.momentum * new_buf
            buf = select(xp, ok, new_buf, buf)
        theta_next = select(xp, ok, theta_new, theta)
        info = ALIGInfo(loss=loss, lr=select(xp, ok, gamma, fx.zeros_like(gamma)),
                        clipped=clipped & ok, nonfinite=~ok, n_fun=1, n_grad=1)
        return theta_next, ALIGState(momentum_buffer=buf), info
