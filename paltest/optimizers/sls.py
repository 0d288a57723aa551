r"""SLS: SGD with a stochastic Armijo line search (Vaswani et al., NeurIPS 2019).

One SLS step on the loss :math:`L` of the current batch:

.. math::

    l_0,\ g &= L(\theta),\ \nabla L(\theta)          && \text{one forward, one backward}\\
    \eta &\leftarrow \min(\operatorname{reset}(\eta_{prev}),\ \eta_{max})\\
    \text{accept } \theta - \eta g \text{ if }\ & L(\theta - \eta g) \le l_0 - c\,\eta\,
        \lVert g\rVert^2, \text{ else } \eta \leftarrow \beta_b\,\eta
        && \text{up to 100 trials, same batch}

with the resets ``reset_option`` 0: keep :math:`\eta_{prev}`; 1 (default):
:math:`\eta_{prev}\,\gamma^{1/n_b}` with :math:`n_b` = ``n_batches_per_epoch`` (so
:math:`\eta` grows by :math:`\gamma` per epoch unless the search shrinks it; when
``n_batches_per_epoch`` is not given, :math:`n_b` = 500, the reference package's
default, :data:`DEFAULT_N_BATCHES_PER_EPOCH`); 2: the initial step size :math:`\eta_0`.
When :math:`\lVert g\rVert < 10^{-8}` there is no update (and no trial). When all
trials fail, :math:`\theta \leftarrow \theta - 10^{-6}g` and :math:`\eta` keeps its last
shrunk value :math:`\beta_b^{100}\eta`, as in the authors' ``sls`` package. A trial
whose loss is not finite fails.

Backtracking is an inherent loop on the host: a step makes one device-to-host transfer
for the finiteness of :math:`l_0, g` and :math:`\lVert g\rVert^2`, then one per trial (the
Armijo test, a 0-d bool). The step size :math:`\eta` lives on the host as a Python float.

Non-finite rule (as for every optimizer in :mod:`paltest.optimizers.base`): when
:math:`l_0` or :math:`g` is not finite, :math:`\theta` is returned bitwise unchanged, the
state is not updated, and the record's ``nonfinite`` is true; ``on_nonfinite="raise"``
raises :class:`~paltest.optimizers.base.NonFiniteError` instead (at no extra cost).

This module also holds the shared machinery of the variants in
:mod:`paltest.optimizers.sls_variants` (Goldstein, Polyak momentum).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from paltest import backend
from paltest.optimizers.base import (
    as_loss,
    check_in_range,
    check_int,
    check_on_nonfinite,
    check_positive,
    evaluate,
    optimizer_repr,
    raise_if_nonfinite,
    scalar,
    takes_theta_as_data,
)

__all__ = ["DEFAULT_N_BATCHES_PER_EPOCH", "FALLBACK_LR", "GRAD_NORM_TOL", "SLS", "SLSInfo",
           "SLSState"]

#: Below this gradient norm a step does not move (no trial is made).
GRAD_NORM_TOL = 1e-8
#: The learning rate applied when every trial of a search failed.
FALLBACK_LR = 1e-6
RESET_OPTIONS = (0, 1, 2)
#: The batches per epoch that reset option 1 assumes when ``n_batches_per_epoch`` is not
#: given: 500, the default of the reference package's ``Sls``. The step size then grows
#: by ``gamma`` every 500 steps; pass the true number (the runner does) to make that
#: once per epoch.
DEFAULT_N_BATCHES_PER_EPOCH = 500


class SLSState(NamedTuple):
    """The state of :class:`SLS` and :class:`~paltest.optimizers.sls_variants.SLSGoldstein`.

    Attributes:
        step_size: the step size :math:`\\eta` carried to the next step (before its
            reset), a Python float on the host: the search needs it there anyway.
    """

    step_size: float


class SLSInfo(NamedTuple):
    """The record of one SLS-family step; numeric fields are 0-d arrays on the device
    except the counts and ``fallback``, which the host knows anyway.

    Attributes:
        loss: the batch loss :math:`l_0` at the start of the step.
        lr: the learning rate applied to :math:`-g`: the accepted :math:`\\eta`,
            :data:`FALLBACK_LR` after a failed search, 0 when not moved.
        step: the length of the update, ``lr`` times :math:`\\lVert g\\rVert` (for
            :class:`~paltest.optimizers.sls_variants.SLSPolyak`,
            :math:`\\lVert\\theta_{k+1}-\\theta_k\\rVert` including momentum).
        nonfinite: bool; :math:`l_0` or :math:`g` was not finite, :math:`\\theta` was left
            unchanged.
        n_fun: loss evaluations, ``1 + n_trials`` (Python int).
        n_grad: gradient evaluations, 1 (Python int).
        n_trials: trial points evaluated by the search (Python int, 0 to ``max_trials``).
        fallback: whether every trial failed and :data:`FALLBACK_LR` was applied
            (Python bool).
    """

    loss: Any
    lr: Any
    step: Any
    nonfinite: Any
    n_fun: int
    n_grad: int
    n_trials: int
    fallback: bool


class _Start(NamedTuple):
    """What a step knows after ``value_and_grad`` and its one host transfer."""

    xp: Any
    l0: Any
    g: Any
    gg: Any  # ||g||^2, 0-d array
    finite: bool
    grad_norm: float  # host value of ||g||


def start(theta: Any, value_and_grad: Any, on_nonfinite: str, state: Any = None) -> _Start:
    """Evaluate loss and gradient, and read finiteness and :math:`\\lVert g\\rVert^2`
    with one device-to-host transfer; raise when asked to."""
    xp, l0, g = evaluate(theta, state, value_and_grad)
    gg = xp.vecdot(g, g)
    finite = xp.isfinite(l0) & xp.all(xp.isfinite(g))
    head = backend.to_host(xp.stack([xp.astype(finite, theta.dtype), gg]))
    ok = bool(head[0])
    if on_nonfinite == "raise":
        raise_if_nonfinite(ok, "loss or gradient")
    gn = math.sqrt(float(head[1])) if ok else math.nan
    return _Start(xp=xp, l0=l0, g=g, gg=gg, finite=ok, grad_norm=gn)


def flag(xp: Any, value: bool, like: Any) -> Any:
    """A host bool as a 0-d bool array on ``like``'s device."""
    return xp.asarray(value, dtype=xp.bool, device=backend.device(like))


def still_info(xp: Any, theta: Any, l0: Any, nonfinite: bool) -> SLSInfo:
    """The record of a step that did not move (non-finite start or a tiny gradient)."""
    zero = scalar(xp, 0.0, theta)
    return SLSInfo(loss=l0, lr=zero, step=zero, nonfinite=flag(xp, nonfinite, theta),
                   n_fun=1, n_grad=1, n_trials=0, fallback=False)


def armijo_search(
    xp: Any, theta: Any, g: Any, l0: Any, gg: Any, eta: float, value: Any, c: float,
    beta_b: float, max_trials: int,
) -> tuple[Any, float, int, bool]:
    """Backtrack from ``eta`` until :math:`L(\\theta-\\eta g)\\le l_0-c\\eta\\lVert g\\rVert^2`.

    Returns ``(theta_next, eta, n_trials, found)``; ``theta_next`` is the accepted trial
    point (``None`` when not found) and ``eta`` the accepted step size, or
    :math:`\\beta_b^{\\text{max\\_trials}}` times the start when not found. One host
    transfer per trial.
    """
    for trial in range(1, max_trials + 1):
        cand = theta - eta * g
        ln = as_loss(value(cand), xp, theta)
        ok = xp.isfinite(ln) & (ln <= l0 - (c * eta) * gg)
        if bool(backend.to_host(ok)):
            return cand, eta, trial, True
        eta = eta * beta_b
    return None, eta, max_trials, False


class _SLSBase:
    """Hyperparameter checks and the step-size reset shared by the SLS family."""

    #: Why a step cannot be traced (see :func:`paltest.optimizers.base.host_reads`).
    #: A line search: it measures the loss along its direction to choose the step.
    is_line_search = True
    #: Why it cannot supply PAL's direction (``PAL(direction=...)``).
    no_direction = ("it is a line search itself (along the negative gradient: use direction='sgd')")

    host_driven = ("its backtracking line search reads each trial's loss on the host to "
                   "decide whether to try a smaller step size")

    _c_hi = 1.0

    def __init__(
        self, n_batches_per_epoch: int | None, init_step_size: float, c: float,
        beta_b: float, gamma: float, reset_option: int, eta_max: float | None,
        max_trials: int, on_nonfinite: str,
    ) -> None:
        self.init_step_size = check_positive("init_step_size", init_step_size)
        self.c = check_in_range("c", c, 0.0, self._c_hi, lo_open=True, hi_open=True)
        self.beta_b = check_in_range("beta_b", beta_b, 0.0, 1.0, lo_open=True, hi_open=True)
        self.gamma = check_positive("gamma", gamma)
        option = check_int("reset_option", reset_option)
        if option not in RESET_OPTIONS:
            raise ValueError(f"reset_option: must be one of {RESET_OPTIONS}, got {reset_option!r}")
        self.reset_option = option
        if n_batches_per_epoch is None:
            # Reset option 1 needs a number: the reference package's default. Other
            # options ignore it, and record None.
            self.n_batches_per_epoch = DEFAULT_N_BATCHES_PER_EPOCH if option == 1 else None
        else:
            self.n_batches_per_epoch = check_int("n_batches_per_epoch", n_batches_per_epoch, 1)
        self.eta_max = None if eta_max is None else check_positive("eta_max", eta_max)
        self.max_trials = check_int("max_trials", max_trials, 1)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        keys = ("n_batches_per_epoch", "init_step_size", "c", "beta_b", "gamma",
                "reset_option", "eta_max", "max_trials") + self._extra_keys
        return {k: getattr(self, k) for k in keys}

    _extra_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return optimizer_repr(self)

    def reset(self, eta: float) -> float:
        """The trial step size at the start of a step, from the previous one."""
        if self.reset_option == 1:
            eta = eta * self.gamma ** (1.0 / self.n_batches_per_epoch)
        elif self.reset_option == 2:
            eta = self.init_step_size
        if self.eta_max is not None:
            eta = min(eta, self.eta_max)
        return eta

    def init(self, theta: Any) -> SLSState:
        """The initial state: :math:`\\eta = \\eta_0` (``init_step_size``)."""
        backend.check_params(theta)
        return SLSState(step_size=self.init_step_size)


@takes_theta_as_data
class SLS(_SLSBase):
    r"""SGD with the stochastic Armijo line search ("Painless SGD", Vaswani et al. 2019).

    Args:
        n_batches_per_epoch: batches per epoch :math:`n_b` of reset option 1; ``None``
            (default) means :data:`DEFAULT_N_BATCHES_PER_EPOCH` (500, the reference
            package's default) under reset option 1 and is ignored otherwise. Pass the
            true number of batches per epoch (the runner, :func:`paltest.run`, does),
            so that :math:`\eta` grows by :math:`\gamma` once per epoch.
        init_step_size: initial step size :math:`\eta_0 > 0`.
        c: Armijo constant in :math:`(0, 1)`.
        beta_b: backtracking factor :math:`\beta_b \in (0, 1)`.
        gamma: growth per epoch :math:`\gamma > 0` of reset option 1.
        reset_option: 0 keep, 1 grow by :math:`\gamma^{1/n_b}`, 2 restart at
            :math:`\eta_0`.
        eta_max: optional upper bound on :math:`\eta` after the reset (the reference
            package has none; its published step sizes reach 1e5-1e6).
        max_trials: trials per step before the fallback :math:`\theta - 10^{-6}g`.
        on_nonfinite: ``"flag"`` (default) or ``"raise"``.

    Defaults are the reference package's: :math:`\eta_0 = 1`, :math:`c = 0.1`,
    :math:`\beta_b = 0.9`, :math:`\gamma = 2`, reset option 1 with :math:`n_b = 500`,
    100 trials, so ``SLS()`` works as it is. (Its published
    configs ask for :math:`\gamma = 1.5`, a value that never reached the optimizer.)

    Cost per step: one ``value_and_grad`` call and ``n_trials`` ``value`` calls (at most
    ``max_trials``); ``1 + n_trials`` device-to-host transfers.

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.sls import SLS
        >>> A = np.diag([1.0, 10.0])
        >>> f = lambda th: 0.5 * th @ A @ th
        >>> vg = lambda th: (f(th), A @ th)
        >>> opt = SLS(n_batches_per_epoch=10)
        >>> theta = np.array([1.0, 1.0])
        >>> state = opt.init(theta)
        >>> for _ in range(60):
        ...     theta, state, info = opt.step(theta, state, vg, f)
        >>> bool(f(theta) < 1e-8), info.n_fun == 1 + info.n_trials
        (True, True)
        >>> SLS().n_batches_per_epoch   # the reference package's default
        500
    """

    def __init__(
        self,
        n_batches_per_epoch: int | None = None,
        init_step_size: float = 1.0,
        c: float = 0.1,
        beta_b: float = 0.9,
        gamma: float = 2.0,
        reset_option: int = 1,
        eta_max: float | None = None,
        max_trials: int = 100,
        on_nonfinite: str = "flag",
    ) -> None:
        super().__init__(n_batches_per_epoch, init_step_size, c, beta_b, gamma,
                         reset_option, eta_max, max_trials, on_nonfinite)

    def step(
        self, theta: Any, state: SLSState, value_and_grad: Any, value: Any
    ) -> tuple[Any, SLSState, SLSInfo]:
        """One SLS step: ``(theta_next, state_next, info)``.

        ``value_and_grad`` and ``value`` must be bound to the same batch (and the same
        random numbers); the trials re-evaluate that batch.
        """
        st = start(theta, value_and_grad, self.on_nonfinite, state)
        xp = st.xp
        if not st.finite:
            return theta, state, still_info(xp, theta, st.l0, True)
        eta = self.reset(state.step_size)
        if not st.grad_norm >= GRAD_NORM_TOL:
            return theta, SLSState(step_size=eta), still_info(xp, theta, st.l0, False)
        cand, eta, n_trials, found = armijo_search(
            xp, theta, st.g, st.l0, st.gg, eta, value, self.c, self.beta_b, self.max_trials)
        if found:
            theta_next, lr = cand, eta
        else:
            theta_next, lr = theta - FALLBACK_LR * st.g, FALLBACK_LR
        info = SLSInfo(
            loss=st.l0, lr=scalar(xp, lr, theta), step=scalar(xp, lr * st.grad_norm, theta),
            nonfinite=flag(xp, False, theta), n_fun=1 + n_trials, n_grad=1, n_trials=n_trials,
            fallback=not found,
        )
        return theta_next, SLSState(step_size=eta), info
