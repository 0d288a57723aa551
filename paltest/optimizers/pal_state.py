"""PAL's state and step record (see :class:`paltest.optimizers.pal.PAL`).

Example:
    >>> import numpy as np
    >>> s = PALState(buf=np.zeros(2), prev_grad=None)
    >>> s.base is None, CASE_NAMES[1]
    (True, 'parabola minimum')
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["CASE_NAMES", "PALInfo", "PALState"]

#: Names of the cases reported in :attr:`PALInfo.case`.
CASE_NAMES = {0: "no update", 1: "parabola minimum", 2: "measuring step", 3: "non-finite"}



class PALState(NamedTuple):
    """PAL's state.

    Attributes:
        buf: the direction state :math:`\\mathrm{buf}` (the search direction is
            :math:`-\\mathrm{buf}`), zeros at the start. Along another optimizer
            (``direction=``): the base's update at unit learning rate :math:`u_t` of
            the last finite step (the search direction is :math:`-u_t`).
        prev_grad: :math:`g_{t-1}` for the conjugate-gradient formulas (zeros at the
            start); ``None`` when ``beta`` is a constant, which needs no extra vector,
            and along another optimizer.
        base: the base optimizer's own state along another optimizer (advanced as its
            ``step`` would); ``None`` for PAL's own direction.
    """

    buf: Any
    prev_grad: Any
    base: Any = None


class PALInfo(NamedTuple):
    """The record of one PAL step; numeric fields are 0-d arrays on the device.

    Attributes:
        l0: the batch loss at :math:`\\theta` (also available as ``loss``).
        l_mu: the batch loss at the measuring point :math:`\\theta + \\mu\\hat d`.
        a: the parabola's leading coefficient.
        b: the directional derivative :math:`l'(0)` along :math:`\\hat d`.
        step: the update step :math:`s` along the unit direction (0 if not moved).
        lr: the learning rate :math:`s/\\lVert d\\rVert` (Section 5.1); along another
            optimizer :math:`s/\\lVert u_t\\rVert`, the learning rate the base would
            have needed for the same step.
        case: int32; 0 no update, 1 parabola minimum, 2 measuring step, 3 non-finite
            (see :data:`CASE_NAMES`).
        clipped: bool; :math:`s_{max}` cut the step.
        beta: the :math:`\\beta_t` used for the direction (NaN along another
            optimizer's direction).
        nonfinite: bool; ``case == 3``.
        n_fun: loss evaluations (2: :math:`l_0` and :math:`l_\\mu`).
        n_grad: gradient evaluations (1).
    """

    l0: Any
    l_mu: Any
    a: Any
    b: Any
    step: Any
    lr: Any
    case: Any
    clipped: Any
    beta: Any
    nonfinite: Any
    n_fun: int
    n_grad: int

    @property
    def loss(self) -> Any:
        """The batch loss at the start of the step (:math:`l_0`)."""
        return self.l0
