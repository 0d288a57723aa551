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

The step reads ``info.step`` and ``info.case`` on the host (one transfer per step), so it
is for eager use: it cannot be traced by ``jax.jit`` (its ``host_driven`` says why).

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
from paltest.checks import check_positive
from paltest.optimizers.pal import PAL

__all__ = ["RelativeMuPAL", "RelativeMuState"]


class RelativeMuState(NamedTuple):
    """The wrapped PAL's state (``pal``) and the measuring step of the next step (``mu``,
    a Python float)."""

    pal: Any
    mu: float


class RelativeMuPAL:
    r"""PAL whose measuring step follows its previous step (module docstring).

    Args:
        rho: :math:`\rho > 0`, the next :math:`\mu` as a multiple of the last step.
        grow: :math:`\rho_{grow} > 0`, the factor on :math:`\mu` after a case-2 step.
        mu_min, mu_max: bounds of :math:`\mu` (``mu_max=None``: ``s_max``).
        **pal_options: the wrapped :class:`~paltest.optimizers.pal.PAL`'s arguments
            (``mu`` is the first step's measuring step).
    """

    is_line_search = True
    no_direction = "it is a line search itself; give its direction optimizer instead"
    #: Why this optimizer cannot be traced (see :func:`paltest.optimizers.base.host_reads`).
    host_driven = "it reads each step's length on the host to set the next measuring step"

    def __init__(self, rho: float = 1.0, grow: float = 2.0, mu_min: float = 1e-12,
                 mu_max: float | None = None, **pal_options: Any) -> None:
        self.pal = PAL(**pal_options)
        self.rho = check_positive("rho", rho)
        self.grow = check_positive("grow", grow)
        self.mu_min = check_positive("mu_min", mu_min)
        self.mu_max = check_positive("mu_max", self.pal.s_max if mu_max is None else mu_max)
        if self.mu_min > self.mu_max:
            raise ValueError(f"mu_min: {mu_min!r} exceeds mu_max {self.mu_max!r}")

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The wrapped PAL's hyperparameters and ``rho``, ``grow``, ``mu_min``, ``mu_max``."""
        return {**self.pal.hyperparameters, "rho": self.rho, "grow": self.grow,
                "mu_min": self.mu_min, "mu_max": self.mu_max}

    def __repr__(self) -> str:
        return (f"RelativeMuPAL(rho={self.rho!r}, grow={self.grow!r}, mu_min={self.mu_min!r}, "
                f"mu_max={self.mu_max!r}, pal={self.pal!r})")

    def init(self, theta: Any) -> RelativeMuState:
        """The wrapped PAL's state and the first measuring step ``mu``."""
        return RelativeMuState(self.pal.init(theta), float(self.pal.mu))

    def _clip(self, mu: float) -> float:
        return min(max(mu, self.mu_min), self.mu_max)

    def step(self, theta: Any, state: RelativeMuState, value_and_grad: Any,
             value: Any) -> tuple[Any, RelativeMuState, Any]:
        """One PAL step with ``mu = state.mu``; returns PAL's ``(theta, state, info)``
        with the state's ``mu`` set for the next step."""
        pal = copy.copy(self.pal)
        pal.mu = state.mu
        theta_next, pal_state, info = pal.step(theta, state.pal, value_and_grad, value)
        s = backend.to_float(info.step)
        case = int(backend.to_host(info.case))
        if case == 1 and s > 0.0 and math.isfinite(s):
            mu = self._clip(self.rho * s)
        elif case == 2:
            mu = self._clip(self.grow * state.mu)
        else:
            mu = state.mu
        return theta_next, RelativeMuState(pal_state, mu), info
