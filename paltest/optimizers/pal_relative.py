r"""PAL with its measuring step relative to its previous step (full-batch problems).

PAL measures the loss at :math:`\theta + \mu\hat d` with a fixed distance :math:`\mu`
(Section 4.1). That suits networks, whose steps stay within a decade or two; on classical
problems the steps shrink by many decades as the iterates converge, and a fixed
:math:`\mu` then measures the parabola far beyond the minimum along the line (where the
fit is poor) or, for a large :math:`\mu`, makes the step case 2 (:math:`s = \mu`). The
deterministic line searches PAL is placed next to (Section 2: Numerical Optimization's
parabolic interpolation, Moré–Thuente) start each search from the previous step.
:class:`RelativeMuPAL` does that with PAL's own step unchanged: before step :math:`t` it
sets

.. math::  \mu_t = \mathrm{clip}(\rho\, s_{t-1},\ \mu_{min},\ \mu_{max})

where :math:`s_{t-1}` is the step PAL took along its unit direction (``info.step``). A
step of case 2 (no minimum ahead: :math:`s = \mu`) sets :math:`\mu_{t} = \mathrm{clip}(
\rho_{grow}\,\mu_{t-1})`, so the measuring step can grow by decades; a step that did not
move (case 0, or non-finite) keeps :math:`\mu`. The first step uses ``mu`` of the wrapped
PAL. Everything else (direction, :math:`\alpha`, :math:`\beta` formula, :math:`s_{max}`,
the non-finite rule) is the wrapped :class:`~paltest.optimizers.pal.PAL`'s, which runs
unchanged with the current :math:`\mu` (a shallow copy with ``mu`` set).

With ``monotone=True`` (Numerical Optimization's line searches accept a step only with
sufficient decrease; PAL accepts whatever its parabola says) a step also keeps the last
accepted point and its loss: when the loss at the current point (known at the start of
the next step, from its one ``value_and_grad``) is above the accepted point's, or not
finite, the step returns to the accepted point, restarts PAL's direction there (a fresh
state: the next direction is :math:`-g`, the classical conjugate-gradient restart) and
sets :math:`\mu = \mathrm{clip}(\rho_{shrink}\, s)`, :math:`s` the rejected step (the
parabola overshot: the minimum along the line is nearer). A non-finite PAL step (case 3,
:math:`\theta` unchanged) then also shrinks :math:`\mu` by :math:`\rho_{shrink}`, so
the wrapper recovers from it (``recovers_from_nonfinite``); a non-finite loss at the
current point is a rejection too (reported as case 3, ``nonfinite`` set), so unlike
PAL's own rule :math:`\theta` then comes back as the accepted point, not unchanged
(``paltest.testing``'s ``"nonfinite"`` check does not apply). A rejection costs the
evaluation at the rejected point, which the step had to make anyway. Without
``monotone`` the wrapper is exactly the rule above.

With ``powell=nu`` (conjugate-gradient formulas only) the direction restarts, as in
Powell's restart test for nonlinear conjugate gradients (Nocedal & Wright, Numerical
Optimization, eq. 5.52), whenever consecutive gradients are far from orthogonal:

.. math::  |g_t^\top g_{t-1}| \ge \nu\, \|g_t\|^2

(the classical :math:`\nu = 0.1`): PAL's step then starts from a fresh state, so its
direction is :math:`-g_t`. The test uses the gradient PAL computes at :math:`\theta_t`
anyway (no extra evaluation).

The step reads ``info.step`` and ``info.case`` (and with ``monotone`` the loss) on the
host, so it is for eager use: it cannot be traced by ``jax.jit`` (its ``host_driven``
says why).

Example:
    >>> import numpy as np
    >>> from paltest.optimizers.pal_relative import RelativeMuPAL
    >>> A = np.diag([1.0, 100.0])
    >>> f = lambda x: 0.5 * x @ A @ x
    >>> vg = lambda x: (f(x), A @ x)
    >>> opt = RelativeMuPAL(mu=1.0, alpha=1.0, beta="polak-ribiere", s_max=1e3)
    >>> x = np.array([1.0, 1.0])
    >>> state = opt.init(x)
    >>> for _ in range(2):
    ...     x, state, info = opt.step(x, state, vg, f)
    >>> bool(np.linalg.norm(x) < 1e-10), state.mu > 0   # conjugate gradients in 2-D
    (True, True)
"""

from __future__ import annotations

import copy
import math
from typing import Any, NamedTuple

from paltest import backend
from paltest.checks import check_bool, check_positive
from paltest.optimizers.pal import PAL
from paltest.optimizers.pal_state import PALInfo

__all__ = ["RelativeMuPAL", "RelativeMuState"]


class RelativeMuState(NamedTuple):
    """The wrapped PAL's state (``pal``) and the measuring step of the next step (``mu``,
    a Python float); with ``monotone``, the last accepted point (``anchor``), its loss
    (``anchor_loss``, a float) and the last step's length (``last_step``)."""

    pal: Any
    mu: float
    anchor: Any = None
    anchor_loss: float = math.inf
    last_step: float = 0.0


class RelativeMuPAL:
    r"""PAL whose measuring step follows its previous step (module docstring).

    Args:
        rho: :math:`\rho > 0`, the next :math:`\mu` as a multiple of the last step.
        grow: :math:`\rho_{grow} > 0`, the factor on :math:`\mu` after a case-2 step.
        mu_min, mu_max: bounds of :math:`\mu` (``mu_max=None``: ``s_max``).
        monotone: reject a step whose point has a higher (or non-finite) loss than the
            last accepted point (module docstring).
        shrink: :math:`\rho_{shrink} \in (0, 1)`, the next :math:`\mu` as a multiple of
            a rejected step (and of :math:`\mu` after a non-finite step), with
            ``monotone``.
        powell: :math:`\nu > 0`, restart the direction when :math:`|g_t^\top g_{t-1}|
            \ge \nu \|g_t\|^2` (module docstring); ``None``: never. Needs a
            conjugate-gradient ``beta`` formula (PAL keeps :math:`g_{t-1}` only then).
        **pal_options: the wrapped :class:`~paltest.optimizers.pal.PAL`'s arguments
            (``mu`` is the first step's measuring step).
    """

    is_line_search = True
    no_direction = "it is a line search itself; give its direction optimizer instead"
    #: Why this optimizer cannot be traced (see :func:`paltest.optimizers.base.host_reads`).
    host_driven = "it reads each step's length on the host to set the next measuring step"

    def __init__(self, rho: float = 1.0, grow: float = 2.0, mu_min: float = 1e-12,
                 mu_max: float | None = None, monotone: bool = False, shrink: float = 0.25,
                 powell: float | None = None, **pal_options: Any) -> None:
        self.pal = PAL(**pal_options)
        self.powell = None if powell is None else check_positive("powell", powell)
        if self.powell is not None and (self.pal.direction is not None
                                        or not isinstance(self.pal.beta, str)):
            raise ValueError(f"powell: needs a conjugate-gradient beta formula (PAL keeps "
                             f"the previous gradient only then), got beta={self.pal.beta!r}")
        self.monotone = check_bool("monotone", monotone)
        self.shrink = check_positive("shrink", shrink)
        if self.shrink >= 1.0:
            raise ValueError(f"shrink: must be < 1, got {shrink!r}")
        #: With ``monotone`` a non-finite step shrinks mu: the next step differs.
        self.recovers_from_nonfinite = self.monotone
        self.rho = check_positive("rho", rho)
        self.grow = check_positive("grow", grow)
        self.mu_min = check_positive("mu_min", mu_min)
        self.mu_max = check_positive("mu_max", self.pal.s_max if mu_max is None else mu_max)
        if self.mu_min > self.mu_max:
            raise ValueError(f"mu_min: {mu_min!r} exceeds mu_max {self.mu_max!r}")

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The wrapped PAL's hyperparameters and ``rho``, ``grow``, ``mu_min``, ``mu_max``
        (and ``monotone``, ``shrink`` when ``monotone``)."""
        hp = {**self.pal.hyperparameters, "rho": self.rho, "grow": self.grow,
              "mu_min": self.mu_min, "mu_max": self.mu_max}
        if self.monotone:
            hp.update(monotone=True, shrink=self.shrink)
        if self.powell is not None:
            hp["powell"] = self.powell
        return hp

    def __repr__(self) -> str:
        extra = f", monotone=True, shrink={self.shrink!r}" if self.monotone else ""
        extra += f", powell={self.powell!r}" if self.powell is not None else ""
        return (f"RelativeMuPAL(rho={self.rho!r}, grow={self.grow!r}, mu_min={self.mu_min!r}, "
                f"mu_max={self.mu_max!r}{extra}, pal={self.pal!r})")

    def init(self, theta: Any) -> RelativeMuState:
        """The wrapped PAL's state and the first measuring step ``mu``."""
        return RelativeMuState(self.pal.init(theta), float(self.pal.mu))

    def _clip(self, mu: float) -> float:
        return min(max(mu, self.mu_min), self.mu_max)

    def step(self, theta: Any, state: RelativeMuState, value_and_grad: Any,
             value: Any) -> tuple[Any, RelativeMuState, Any]:
        """One PAL step with ``mu = state.mu``; returns PAL's ``(theta, state, info)``
        with the state's ``mu`` set for the next step."""
        if self.powell is not None:
            here = value_and_grad(theta)  # PAL's own l0 and g (and the monotone test's)
            state = self._powell_restart(theta, state, here[1])

            def cached(x: Any) -> Any:
                return here if x is theta else value_and_grad(x)

            value_and_grad = cached
        if self.monotone:
            return self._monotone_step(theta, state, value_and_grad, value)
        theta_next, pal_state, info, mu, _ = self._pal_step(theta, state, value_and_grad,
                                                            value)
        return theta_next, RelativeMuState(pal_state, mu), info

    def _powell_restart(self, theta: Any, state: RelativeMuState, g: Any) -> RelativeMuState:
        """``state`` with a fresh PAL state when Powell's test says restart."""
        prev = state.pal.prev_grad
        xp = backend.namespace(g)
        gg = backend.to_float(xp.sum(g * g))
        if abs(backend.to_float(xp.sum(g * prev))) >= self.powell * gg > 0.0:
            return state._replace(pal=self.pal.init(theta))
        return state

    def _pal_step(self, theta: Any, state: RelativeMuState, value_and_grad: Any,
                  value: Any) -> tuple[Any, Any, Any, float, float]:
        """PAL's step with ``mu = state.mu``; also the next ``mu`` and the step ``s``."""
        pal = copy.copy(self.pal)
        pal.mu = state.mu
        theta_next, pal_state, info = pal.step(theta, state.pal, value_and_grad, value)
        s = backend.to_float(info.step)
        case = int(backend.to_host(info.case))
        if case == 1 and s > 0.0 and math.isfinite(s):
            mu = self._clip(self.rho * s)
        elif case == 2:
            mu = self._clip(self.grow * state.mu)
        elif case == 3 and self.monotone:
            mu = self._clip(self.shrink * state.mu)
        else:
            mu = state.mu
        return theta_next, pal_state, info, mu, s

    def _monotone_step(self, theta: Any, state: RelativeMuState, value_and_grad: Any,
                       value: Any) -> tuple[Any, RelativeMuState, Any]:
        here = value_and_grad(theta)  # PAL's own l0 and g: handed to it below, not redone
        l0 = backend.to_float(here[0])
        if state.anchor is not None and not l0 <= state.anchor_loss:
            mu = self._clip(self.shrink * state.last_step) if state.last_step > 0 else (
                self._clip(self.shrink * state.mu))
            info = self._rejected(theta, here[0], nonfinite=not math.isfinite(l0))
            fresh = RelativeMuState(self.pal.init(state.anchor), mu, state.anchor,
                                    state.anchor_loss, 0.0)
            return state.anchor, fresh, info

        def cached(x: Any) -> Any:
            return here if x is theta else value_and_grad(x)

        theta_next, pal_state, info, mu, s = self._pal_step(theta, state, cached, value)
        return theta_next, RelativeMuState(pal_state, mu, theta, l0, s), info

    def _rejected(self, theta: Any, l0: Any, nonfinite: bool) -> PALInfo:
        """The record of a rejected step: back to the anchor, case 0 (3 when the loss
        was not finite, ``nonfinite`` then set), one ``value_and_grad``."""
        xp = backend.namespace(theta)

        def scalar(v: float) -> Any:
            return xp.asarray(v, dtype=theta.dtype, device=backend.device(theta))

        nan = scalar(math.nan)
        return PALInfo(l0=l0, l_mu=nan, a=nan, b=nan, step=scalar(0.0), lr=scalar(0.0),
                       case=xp.asarray(3 if nonfinite else 0, dtype=xp.int32,
                                       device=backend.device(theta)),
                       clipped=xp.asarray(False, device=backend.device(theta)), beta=nan,
                       nonfinite=xp.asarray(nonfinite, device=backend.device(theta)),
                       n_fun=1, n_grad=1)
