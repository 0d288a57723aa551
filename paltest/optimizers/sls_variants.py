r"""Variants of SLS used in the same comparisons: a Goldstein line search, and the Armijo
search with Polyak (heavy-ball) momentum (Vaswani et al., NeurIPS 2019, and the authors'
``sls`` package).

Both share :class:`~paltest.optimizers.sls.SLS`'s machinery, record
(:class:`~paltest.optimizers.sls.SLSInfo`), fallback (:math:`\theta - 10^{-6}g` after
``max_trials`` failed trials), no-update rule (:math:`\lVert g\rVert < 10^{-8}`),
host transfers (one at the start of a step, one per trial) and non-finite rule.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import (
    as_loss,
    check_in_range,
    check_positive,
    scalar,
    takes_theta_as_data,
)
from paltest.optimizers.sls import (
    FALLBACK_LR,
    GRAD_NORM_TOL,
    SLSInfo,
    SLSState,
    _SLSBase,
    armijo_search,
    flag,
    start,
    still_info,
)

__all__ = ["ETA_MIN", "SLSGoldstein", "SLSPolyak", "SLSPolyakState"]

#: The Goldstein search never shrinks the step size below this.
ETA_MIN = 1e-8


@takes_theta_as_data
class SLSGoldstein(_SLSBase):
    r"""SGD with a stochastic Goldstein line search.

    A trial :math:`\eta` on the current batch is accepted when both

    .. math::

        l_0 - (1-c)\,\eta\lVert g\rVert^2 \;\le\; L(\theta - \eta g) \;\le\;
        l_0 - c\,\eta\lVert g\rVert^2 .

    If only the right inequality (Armijo) holds the step is too small:
    :math:`\eta \leftarrow \min(\beta_f\eta, \eta_{max})`; otherwise it is too large:
    :math:`\eta \leftarrow \max(\beta_b\eta, 10^{-8})`. A trial whose loss is not finite
    counts as too large (the reference raises there). The accepted :math:`\eta` (or the
    last one after ``max_trials`` failures and the fallback step) is carried to the next
    step, with the reset of :class:`~paltest.optimizers.sls.SLS`.

    Args:
        n_batches_per_epoch: batches per epoch, used by reset option 1 only (``None``:
            500, as for :class:`~paltest.optimizers.sls.SLS`).
        init_step_size: :math:`\eta_0 > 0`.
        c: Goldstein constant in :math:`(0, 1/2)` (so that the band is not empty).
        beta_b: shrink factor in :math:`(0, 1)`.
        beta_f: growth factor :math:`\beta_f > 0` for a too small step.
        gamma: growth per epoch of reset option 1.
        reset_option: 0 (default) keep, 1 grow by :math:`\gamma^{1/n_b}`, 2 restart.
        eta_max: upper bound on :math:`\eta` (default 10, the reference's), or ``None``.
        max_trials: trials per step before the fallback.
        on_nonfinite: ``"flag"`` (default) or ``"raise"``.

    Cost per step: one ``value_and_grad``, ``n_trials`` ``value`` calls, ``1 + n_trials``
    device-to-host transfers.

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.sls_variants import SLSGoldstein
        >>> A = np.diag([1.0, 10.0])
        >>> f = lambda th: 0.5 * th @ A @ th
        >>> vg = lambda th: (f(th), A @ th)
        >>> opt = SLSGoldstein()
        >>> theta = np.array([1.0, 1.0])
        >>> state = opt.init(theta)
        >>> for _ in range(60):
        ...     theta, state, info = opt.step(theta, state, vg, f)
        >>> bool(f(theta) < 1e-8)
        True
    """

    _c_hi = 0.5
    _extra_keys = ("beta_f",)

    def __init__(
        self,
        n_batches_per_epoch: int | None = None,
        init_step_size: float = 1.0,
        c: float = 0.1,
        beta_b: float = 0.9,
        beta_f: float = 2.0,
        gamma: float = 2.0,
        reset_option: int = 0,
        eta_max: float | None = 10.0,
        max_trials: int = 100,
        on_nonfinite: str = "flag",
    ) -> None:
        super().__init__(n_batches_per_epoch, init_step_size, c, beta_b, gamma,
                         reset_option, eta_max, max_trials, on_nonfinite)
        self.beta_f = check_positive("beta_f", beta_f)

    def step(
        self, theta: Any, state: SLSState, value_and_grad: Any, value: Any
    ) -> tuple[Any, SLSState, SLSInfo]:
        """One step: ``(theta_next, state_next, info)`` (same batch for both callables)."""
        st = start(theta, value_and_grad, self.on_nonfinite, state)
        xp, g, l0, gg = st.xp, st.g, st.l0, st.gg
        if not st.finite:
            return theta, state, still_info(xp, theta, l0, True)
        eta = self.reset(state.step_size)
        if not st.grad_norm >= GRAD_NORM_TOL:
            return theta, SLSState(step_size=eta), still_info(xp, theta, l0, False)
        found, theta_next, n_trials = False, None, 0
        for n_trials in range(1, self.max_trials + 1):  # noqa: B007 - used after the loop
            cand = theta - eta * g
            ln = as_loss(value(cand), xp, theta)
            fin = xp.isfinite(ln)
            armijo = fin & (ln <= l0 - (self.c * eta) * gg)
            curvature = fin & (ln >= l0 - ((1.0 - self.c) * eta) * gg)
            small, large_ok = (bool(v) for v in backend.to_host(xp.stack([armijo, curvature])))
            if small and large_ok:
                found, theta_next = True, cand
                break
            if small:  # only the Armijo side holds: the step is too small
                eta = self.beta_f * eta
                if self.eta_max is not None:
                    eta = min(eta, self.eta_max)
            else:  # too large (or not finite)
                eta = max(self.beta_b * eta, ETA_MIN)
        lr = eta if found else FALLBACK_LR
        if not found:
            theta_next = theta - FALLBACK_LR * g
        info = SLSInfo(
            loss=l0, lr=scalar(xp, lr, theta), step=scalar(xp, lr * st.grad_norm, theta),
            nonfinite=flag(xp, False, theta), n_fun=1 + n_trials, n_grad=1,
            n_trials=n_trials, fallback=not found,
        )
        return theta_next, SLSState(step_size=eta), info


class SLSPolyakState(NamedTuple):
    """The state of :class:`SLSPolyak`.

    Attributes:
        step_size: :math:`\\eta` carried to the next step (a Python float on the host).
        theta_prev: :math:`\\theta_{k-1}`, the parameters at the start of the previous
            step (:math:`\\theta_0` at the start, so the first momentum term is zero).
    """

    step_size: float
    theta_prev: Any


@takes_theta_as_data
class SLSPolyak(_SLSBase):
    r"""SGD with the stochastic Armijo line search and Polyak (heavy-ball) momentum.

    .. math::

        \theta_{k+1} = \theta_k - \eta_k g_k + m\,(\theta_k - \theta_{k-1})

    where :math:`\eta_k g_k` is the step of :class:`~paltest.optimizers.sls.SLS`'s Armijo
    search on the current batch (or :math:`10^{-6}g_k` after a failed search, or 0 when
    :math:`\lVert g_k\rVert < 10^{-8}`; the momentum term is added in every case, as in
    the reference's ``SlsAcc(acceleration_method="polyak")``).

    Args:
        n_batches_per_epoch: batches per epoch, used by reset option 1 only (``None``:
            500, as for :class:`~paltest.optimizers.sls.SLS`).
        init_step_size: :math:`\eta_0 > 0`.
        c: Armijo constant in :math:`(0, 1)`.
        beta_b: backtracking factor in :math:`(0, 1)`.
        gamma: growth per epoch of reset option 1.
        momentum: :math:`m \in [0, 1)`, default 0.6.
        reset_option: 0 (default) keep, 1 grow by :math:`\gamma^{1/n_b}`, 2 restart.
        eta_max: optional upper bound on :math:`\eta` after the reset.
        max_trials: trials per step before the fallback.
        on_nonfinite: ``"flag"`` (default) or ``"raise"``.

    The record's ``step`` is :math:`\lVert\theta_{k+1} - \theta_k\rVert`, momentum
    included; ``lr`` is the Armijo part's :math:`\eta_k`. One extra vector of state.

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.sls_variants import SLSPolyak
        >>> A = np.diag([1.0, 10.0])
        >>> f = lambda th: 0.5 * th @ A @ th
        >>> vg = lambda th: (f(th), A @ th)
        >>> opt = SLSPolyak()
        >>> theta = np.array([1.0, 1.0])
        >>> state = opt.init(theta)
        >>> for _ in range(60):
        ...     theta, state, info = opt.step(theta, state, vg, f)
        >>> bool(f(theta) < 1e-8)
        True
    """

    _extra_keys = ("momentum",)
    #: Why :func:`paltest.testing.check_optimizer`'s ``"descent"`` does not apply.
    no_descent = ("its Armijo search is on the gradient step; the momentum term added "
                  "after it may raise the loss")

    def __init__(
        self,
        n_batches_per_epoch: int | None = None,
        init_step_size: float = 1.0,
        c: float = 0.1,
        beta_b: float = 0.9,
        gamma: float = 2.0,
        momentum: float = 0.6,
        reset_option: int = 0,
        eta_max: float | None = None,
        max_trials: int = 100,
        on_nonfinite: str = "flag",
    ) -> None:
        super().__init__(n_batches_per_epoch, init_step_size, c, beta_b, gamma,
                         reset_option, eta_max, max_trials, on_nonfinite)
        self.momentum = check_in_range("momentum", momentum, 0.0, 1.0, hi_open=True)

    def init(self, theta: Any) -> SLSPolyakState:
        """The initial state: :math:`\\eta_0` and :math:`\\theta_{-1} = \\theta_0`."""
        xp = backend.check_params(theta)
        return SLSPolyakState(step_size=self.init_step_size,
                              theta_prev=xp.asarray(theta, copy=True))

    def step(
        self, theta: Any, state: SLSPolyakState, value_and_grad: Any, value: Any
    ) -> tuple[Any, SLSPolyakState, SLSInfo]:
        """One step: ``(theta_next, state_next, info)`` (same batch for both callables)."""
        st = start(theta, value_and_grad, self.on_nonfinite, state)
        xp = st.xp
        if not st.finite:
            return theta, state, still_info(xp, theta, st.l0, True)
        eta = self.reset(state.step_size)
        heavy_ball = self.momentum * (theta - state.theta_prev)
        n_trials, found = 0, True
        if st.grad_norm >= GRAD_NORM_TOL:
            cand, eta, n_trials, found = armijo_search(
                xp, theta, st.g, st.l0, st.gg, eta, value, self.c, self.beta_b,
                self.max_trials)
            lr = eta if found else FALLBACK_LR
            base = cand if found else theta - FALLBACK_LR * st.g
        else:
            lr, base = 0.0, theta
        theta_next = base + heavy_ball
        info = SLSInfo(
            loss=st.l0, lr=scalar(xp, lr, theta),
            step=xp.linalg.vector_norm(theta_next - theta),
            nonfinite=flag(xp, False, theta), n_fun=1 + n_trials, n_grad=1,
            n_trials=n_trials, fallback=not found,
        )
        return theta_next, SLSPolyakState(step_size=eta, theta_prev=theta), info
