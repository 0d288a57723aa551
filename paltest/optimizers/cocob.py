r"""COCOB-Backprop: learning-rate-free training by coin betting (Orabona & Tommasi,
"Training Deep Networks without Learning Rates Through Coin Betting", NeurIPS 2017,
Algorithm 2), as in the authors' TensorFlow optimizer (``bremen79/cocob``).

Per coordinate, with gradient :math:`g_t`, :math:`\theta_t = \theta_0 + w_t` and all
operations elementwise:

.. math::

    L_t &= \max(L_{t-1}, |g_t|) \qquad (L_0 = \epsilon)\\
    G_t &= G_{t-1} + g_t, \qquad A_t = A_{t-1} + |g_t| \qquad (G_0 = A_0 = 0)\\
    R_t &= \max(R_{t-1} - g_t\, w_t,\ 0) \qquad (R_0 = 0,\ w_0 = 0)\\
    w_{t+1} &= -\frac{G_t}{L_t \max(A_t + L_t,\ \alpha L_t)}\,(R_t + L_t)\\
    \theta_{t+1} &= \theta_t - w_t + w_{t+1}

:math:`R_t` is the reward (wealth minus the initial :math:`L_t`), :math:`G_t` the sum of
gradients (the negated sum of coin outcomes), :math:`A_t` the sum of their magnitudes. The
first step is :math:`\theta_1 = \theta_0 - \mathrm{sign}(g_1)/\alpha` (up to
:math:`\epsilon`).

Defaults: :math:`\alpha = 100` (paper and reference), :math:`\epsilon = 10^{-8}` (the
reference's initial :math:`L`).

COCOB has no learning rate. The record's ``lr`` is the learning rate of the gradient step
of the same length, :math:`\lVert\theta_{t+1}-\theta_t\rVert/\lVert g_t\rVert` (0 when
:math:`g_t = 0` or the step was skipped); the update is generally not along
:math:`-g_t`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.optimizers.base import (
    StepInfo,
    check_on_nonfinite,
    check_positive,
    first_order_start,
    host_norm,
    optimizer_repr,
    select,
    takes_theta_as_data,
)

__all__ = ["COCOBBackprop", "COCOBInfo", "COCOBState"]


class COCOBState(NamedTuple):
    """COCOB-Backprop's state (vectors of the parameters' shape).

    Attributes:
        grad_sum: :math:`G_t`, the sum of gradients (zeros at the start).
        abs_grad_sum: :math:`A_t`, the sum of absolute gradients (zeros at the start).
        max_abs_grad: :math:`L_t`, the largest absolute gradient seen (``eps`` at start).
        reward: :math:`R_t` (zeros at the start).
        offset: :math:`w_t = \\theta_t - \\theta_0` (zeros at the start).
    """

    grad_sum: Any
    abs_grad_sum: Any
    max_abs_grad: Any
    reward: Any
    offset: Any


#: COCOB-Backprop's step record; ``lr`` is
#: :math:`\lVert\theta_{t+1}-\theta_t\rVert/\lVert g_t\rVert`, the learning rate of a
#: gradient step of the same length (0 when skipped or :math:`g_t = 0`).
COCOBInfo = StepInfo


@takes_theta_as_data
class COCOBBackprop:
    r"""COCOB-Backprop (per-coordinate coin betting, no learning rate).

    Args:
        alpha: :math:`\alpha > 0`; bounds the first steps to about :math:`1/\alpha` per
            coordinate.
        eps: :math:`\epsilon > 0`, the initial :math:`L` (guards the first division).
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` and the state unchanged
            and set ``nonfinite``) or ``"raise"`` (raise
            :class:`~paltest.optimizers.base.NonFiniteError`; one host transfer a step).

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.cocob import COCOBBackprop
        >>> vg = lambda th: (0.5 * th @ th, th)   # loss 0.5 |theta|^2
        >>> opt = COCOBBackprop()
        >>> theta = np.array([1.0, -2.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, None)
        >>> np.round(theta, 8).tolist()   # theta - sign(g) / alpha
        [0.99, -1.99]
    """

    #: Not a line search: it sets its step without measuring the loss along the direction.
    is_line_search = False
    #: Why it cannot supply PAL's direction (``PAL(direction=...)``).
    no_direction = ('its coin-betting iterate is computed from its starting point and wealth, not '
                    'as an update of the current parameters, so it has no update direction to '
                    'follow')

    def __init__(
        self, alpha: float = 100.0, eps: float = 1e-8, on_nonfinite: str = "flag"
    ) -> None:
        self.alpha = check_positive("alpha", alpha)
        self.eps = check_positive("eps", eps)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"alpha": self.alpha, "eps": self.eps}

    def init(self, theta: Any) -> COCOBState:
        """The initial state: zero sums, reward and offset; :math:`L_0 = \\epsilon`."""
        xp = backend.check_params(theta)
        zeros = xp.zeros_like(theta)
        return COCOBState(grad_sum=zeros, abs_grad_sum=zeros,
                          max_abs_grad=xp.full_like(theta, self.eps), reward=zeros,
                          offset=zeros)

    def step(
        self, theta: Any, state: COCOBState, value_and_grad: Any, value: Any = None
    ) -> tuple[Any, COCOBState, COCOBInfo]:
        """One COCOB-Backprop step: ``(theta_next, state_next, info)``; ``value`` unused."""
        xp, loss, g, ok = first_order_start(theta, state, value_and_grad, self.on_nonfinite)
        abs_g = xp.abs(g)
        big_l = xp.maximum(state.max_abs_grad, abs_g)
        g_sum = state.grad_sum + g
        a_sum = state.abs_grad_sum + abs_g
        reward = state.reward - g * state.offset
        reward = xp.where(reward > 0, reward, xp.zeros_like(reward))
        w = -g_sum / (big_l * xp.maximum(a_sum + big_l, self.alpha * big_l)) * (reward + big_l)
        theta_new = theta - state.offset + w
        theta_next = select(xp, ok, theta_new, theta)
        new_state = COCOBState(*(
            select(xp, ok, new, old)
            for new, old in zip((g_sum, a_sum, big_l, reward, w), state, strict=True)
        ))
        norm = host_norm if type(g) is np.ndarray else xp.linalg.vector_norm  # same bits
        g_norm = norm(g)
        moved = ok & (g_norm > 0)
        one = xp.ones_like(g_norm)
        lr = norm(theta_next - theta) / xp.where(moved, g_norm, one)
        info = COCOBInfo(loss=loss, lr=xp.where(moved, lr, xp.zeros_like(lr)),
                         nonfinite=~ok, n_fun=1, n_grad=1)
        return theta_next, new_state, info
