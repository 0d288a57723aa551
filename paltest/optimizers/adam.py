r"""Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015), Algorithm 1.

With gradient :math:`g_t` of the batch loss at :math:`\theta_{t-1}`, step count
:math:`t = 1, 2, \dots` and elementwise operations:

.. math::

    m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
    v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \qquad (m_0 = v_0 = 0)\\
    \hat m_t &= m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t)\\
    \theta_t &= \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\hat v_t} + \varepsilon)

Defaults are the paper's (and ``torch.optim.Adam``'s): :math:`\eta = 10^{-3}`,
:math:`\beta_1 = 0.9`, :math:`\beta_2 = 0.999`, :math:`\varepsilon = 10^{-8}`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import (
    StepInfo,
    check_in_range,
    check_on_nonfinite,
    check_positive,
    optimizer_repr,
    scalar,
    takes_theta_as_data,
    update_step,
)

__all__ = ["Adam", "AdamInfo", "AdamState"]


class AdamState(NamedTuple):
    """Adam's state.

    Attributes:
        count: the number of steps taken, :math:`t`, a 0-d array in the parameters'
            dtype (so the bias corrections stay on the device). Skipped (non-finite)
            steps are not counted.
        m: the first-moment estimate :math:`m_t` (zeros at the start).
        v: the second-moment estimate :math:`v_t` (zeros at the start).
    """

    count: Any
    m: Any
    v: Any


#: Adam's step record; ``lr`` is the base learning rate :math:`\eta` (0 when
#: skipped); the per-coordinate steps are :math:`\eta/(\sqrt{\hat v_t}+\varepsilon)`.
AdamInfo = StepInfo


@takes_theta_as_data
class Adam:
    r"""Adam with bias correction.

    Args:
        lr: learning rate :math:`\eta > 0`.
        beta1: first-moment decay :math:`\beta_1 \in [0, 1)`.
        beta2: second-moment decay :math:`\beta_2 \in [0, 1)`.
        eps: :math:`\varepsilon > 0` added to :math:`\sqrt{\hat v_t}`.
        on_nonfinite: ``"flag"`` (default: leave :math:`\theta` and the state unchanged
            and set ``nonfinite``) or ``"raise"`` (raise
            :class:`~paltest.optimizers.base.NonFiniteError`; one host transfer a step).

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.adam import Adam
        >>> vg = lambda th: (0.5 * th @ th, th)   # loss 0.5 |theta|^2
        >>> opt = Adam(lr=0.1)
        >>> theta = np.array([1.0, -2.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, None)
        >>> np.round(theta, 6).tolist(), float(info.lr)   # first step: lr * sign(g)
        ([0.9, -1.9], 0.1)
    """

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        on_nonfinite: str = "flag",
    ) -> None:
        self.lr = check_positive("lr", lr)
        self.beta1 = check_in_range("beta1", beta1, 0.0, 1.0, hi_open=True)
        self.beta2 = check_in_range("beta2", beta2, 0.0, 1.0, hi_open=True)
        self.eps = check_positive("eps", eps)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def init(self, theta: Any) -> AdamState:
        """The initial state: step count 0 and zero moment estimates."""
        xp = backend.check_params(theta)
        return AdamState(count=scalar(xp, 0.0, theta), m=xp.zeros_like(theta),
                         v=xp.zeros_like(theta))

    #: Not a line search: the step length is ``lr`` times the direction.
    is_line_search = False

    def update(self, theta: Any, state: AdamState, grad: Any,
               lr: float) -> tuple[Any, AdamState]:
        r"""The update rule: ``(u, state_next)`` with
        :math:`u = \eta\,\hat m_t / (\sqrt{\hat v_t} + \varepsilon)` for :math:`\eta` =
        ``lr``, so the step is ``theta - u`` (see the module).

        ``state_next`` (count, moments) is advanced whatever the finiteness of
        ``grad``; :meth:`step` keeps the old state on a non-finite step, as PAL does
        along this direction.
        """
        xp = backend.namespace(grad)
        b1, b2 = self.beta1, self.beta2
        t = state.count + 1.0
        m = b1 * state.m + (1.0 - b1) * grad
        v = b2 * state.v + (1.0 - b2) * (grad * grad)
        m_hat = m / (1.0 - b1**t)
        v_hat = v / (1.0 - b2**t)
        return lr * m_hat / (xp.sqrt(v_hat) + self.eps), AdamState(count=t, m=m, v=v)

    def step(
        self, theta: Any, state: AdamState, value_and_grad: Any, value: Any = None
    ) -> tuple[Any, AdamState, AdamInfo]:
        """One Adam step: ``(theta_next, state_next, info)``; ``value`` is not used."""
        return update_step(self, theta, state, value_and_grad, AdamInfo)
