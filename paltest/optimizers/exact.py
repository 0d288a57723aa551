r"""An expensive "exact" line search along the unit negative gradient (the PAL paper's
baseline, Mutschler & Zell, NeurIPS 2020, Section 6 and Appendix E).

It minimizes the batch loss along the line :math:`l(s) = L(\theta - s\,g/\lVert g\rVert)`
by a binary search, to show that exact line searches train worse than PAL. With
:math:`l_0 = l(0)`, stride :math:`h = h_0` (``initial_step``) and :math:`s = 0`:

1. extrapolate: while :math:`l(s + h) < l(s)`, move :math:`s \leftarrow s + h`
   (constant stride; at most ``max_extrapolation`` probes);
2. bisect ``max_steps`` times: :math:`h \leftarrow h/2`, probe :math:`l(s+h)` and
   :math:`l(s-h)`, move to the lower probe if it is lower than :math:`l(s)`, else stay;
3. :math:`\theta \leftarrow \theta - s\,g/\lVert g\rVert`.

:math:`s` only ever moves to a strictly lower loss, so the search ends behind the start
(:math:`s < 0`) only when that point is lower. For a unimodal :math:`l` (e.g. a convex
quadratic) with its minimum :math:`s^*` inside the reached range, the result satisfies
:math:`|s - s^*| \le h_0 2^{-\text{max\_steps}}`. Probes whose loss is not finite are never
moved to.

Deviation from the authors' code: where neither probe is lower, their code carries the
left probe's loss forward as the current loss; this implementation keeps the centre's
(the loss at :math:`s`, where the search stays), so the reported loss is the loss at the
returned point.

Evaluation bound: a step calls ``value_and_grad`` once and ``value`` at most
``max_extrapolation + 2 * max_steps`` times (exactly ``n_extrapolation + 2 * max_steps``),
so ``n_fun <= 1 + max_extrapolation + 2 * max_steps`` (+1 with ``report_angle``), see
:attr:`ExactLineSearch.max_evaluations`. With the defaults: at most 141 (typically about 42).

Cheap lines: when the bound ``value`` callable offers ``value.line(theta, direction)``
(``problems.base.Problem.bind`` gives it to problems whose line is cheap, see
``problems.lines``), the probes are read from that line, built once per step along
:math:`-g/\lVert g\rVert` (the two bisection probes of a level in one call), instead of
one ``value`` per probe; otherwise every probe is ``value(theta - s * u)`` as before. The
line's values equal direct evaluation up to rounding, so the trajectory may differ from the
direct one by rounding only (and a bisection branch can flip where two probes tie within
rounding). The search visits the same trial points either way, and ``n_fun`` counts each
of them as one loss evaluation on both paths (the bound above holds unchanged); ``n_line``
says how many of them came from the cheap line (0 on the direct path). The line's set-up
(a few products of the batch, about one or two ``value`` calls of work) is not in
``n_fun``.

Host transfers: the search is a loop on the host; a step makes one device-to-host
transfer at its start (finiteness, :math:`l_0`, :math:`\lVert g\rVert`) and one per probe
(its loss; on a cheap line one per extrapolation probe and one per bisection level).
The angle stays on the device. On NumPy (``HOST_FAST_PATH``) there is nothing to
transfer: the start values are read from the arrays directly, and the cheap line gets
its steps as an array of the parameters' dtype (the float64 steps rounded to it, as
the line itself would round a list) and gives its losses back with ``tolist``; the
numbers, trial points and decisions are those of the general code.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from paltest import backend
from paltest.optimizers.base import (
    as_loss,
    call_value_and_grad,
    check_bool,
    check_int,
    check_on_nonfinite,
    check_positive,
    evaluate,
    optimizer_repr,
    raise_if_nonfinite,
    scalar,
    takes_theta_as_data,
)

__all__ = ["HOST_FAST_PATH", "ExactLineSearch", "ExactLineSearchInfo", "ExactLineSearchState"]

#: Whether a step on NumPy reads its start values and the cheap line's losses directly
#: (the same numbers as the general code, which runs when this is false; see the module
#: docstring, tests/test_fast_paths.py).
HOST_FAST_PATH = True

_isfinite = math.isfinite


def _flag(xp: Any, value: bool, device: Any) -> Any:
    """A 0-d bool array of ``xp`` (``device`` ``None``: NumPy's own, as ``xp.asarray``
    makes it there)."""
    if device is None:
        return np.asarray(value, dtype=np.bool_)
    return xp.asarray(value, dtype=xp.bool, device=device)


class ExactLineSearchState(NamedTuple):
    """The search keeps no state between steps (an empty ``NamedTuple``)."""


class ExactLineSearchInfo(NamedTuple):
    """The record of one step; numeric fields are 0-d arrays on the device except the
    counts (Python ints, known on the host).

    Attributes:
        loss: the batch loss :math:`l_0` at the start of the step.
        loss_next: the batch loss at the returned point (:math:`l_0` if not moved).
        lr: the equivalent learning rate :math:`s/\\lVert g\\rVert`
            (:math:`\\theta_{next} = \\theta - \\mathrm{lr}\\,g`; negative if the search
            ended behind the start, 0 if not moved).
        step: :math:`s`, the signed distance moved along the unit direction.
        angle: the angle in degrees between the direction :math:`-g/\\lVert g\\rVert` and
            the gradient at the returned point (90 at the exact minimum along the line,
            180 when not moved); NaN unless ``report_angle`` (and when undefined: a zero
            gradient, a non-finite step).
        nonfinite: bool; :math:`l_0` or :math:`g` was not finite, :math:`\\theta` was left
            unchanged.
        n_fun: loss evaluations (including ``value_and_grad`` calls); every trial point
            counts as one, whether evaluated directly or on a cheap line.
        n_grad: gradient evaluations (1, or 2 when the angle needed a new gradient).
        n_extrapolation: the extrapolation probes made (0 to ``max_extrapolation``).
        n_line: how many of the ``n_fun`` evaluations were points of a cheap line
            (``value.line``; 0 when ``value`` has none).
    """

    loss: Any
    loss_next: Any
    lr: Any
    step: Any
    angle: Any
    nonfinite: Any
    n_fun: int
    n_grad: int
    n_extrapolation: int
    n_line: int = 0


@takes_theta_as_data
class ExactLineSearch:
    r"""Binary line search for the minimum of the batch loss along the negative gradient.

    Args:
        initial_step: the extrapolation stride :math:`h_0 > 0` (a distance along the
            unit direction), default 1.
        max_steps: bisection levels, default 20 (resolution :math:`h_0 2^{-20}`).
        max_extrapolation: the most extrapolation probes per step, default 100 (the
            authors' code has no bound; this caps a step at a distance of
            ``max_extrapolation * initial_step`` before bisection, and makes the cost
            bounded on a loss unbounded below along the line).
        report_angle: also compute the angle between the direction and the gradient at
            the new point (one extra ``value_and_grad`` call when the step moved; when it
            did not the start gradient is reused and the angle is 180).
        on_nonfinite: ``"flag"`` (default) or ``"raise"``.

    Example:
        >>> import numpy as np
        >>> from paltest.optimizers.exact import ExactLineSearch
        >>> A = np.diag([1.0, 10.0])
        >>> f = lambda th: 0.5 * th @ A @ th
        >>> vg = lambda th: (f(th), A @ th)
        >>> opt = ExactLineSearch(report_angle=True)
        >>> theta = np.array([1.0, 1.0])
        >>> state = opt.init(theta)
        >>> theta, state, info = opt.step(theta, state, vg, f)
        >>> round(float(info.angle), 3), info.n_fun <= opt.max_evaluations
        (90.0, True)
    """

    #: Why a step cannot be traced (see :func:`paltest.optimizers.base.host_reads`).
    host_driven = ("its line search reads each trial loss on the host to choose the next "
                   "trial point")

    #: A line search: it measures the loss along its direction to choose the step.
    is_line_search = True
    #: Why it cannot supply PAL's direction (``PAL(direction=...)``).
    no_direction = ("it is a line search itself (along the negative gradient: use direction='sgd')")

    def __init__(
        self,
        initial_step: float = 1.0,
        max_steps: int = 20,
        max_extrapolation: int = 100,
        report_angle: bool = False,
        on_nonfinite: str = "flag",
    ) -> None:
        self.initial_step = check_positive("initial_step", initial_step)
        self.max_steps = check_int("max_steps", max_steps, 0)
        self.max_extrapolation = check_int("max_extrapolation", max_extrapolation, 0)
        self.report_angle = check_bool("report_angle", report_angle)
        self.on_nonfinite = check_on_nonfinite(on_nonfinite)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a dict (for result files)."""
        return {"initial_step": self.initial_step, "max_steps": self.max_steps,
                "max_extrapolation": self.max_extrapolation,
                "report_angle": self.report_angle}

    def __repr__(self) -> str:
        return optimizer_repr(self)

    @property
    def max_evaluations(self) -> int:
        """The most loss evaluations one step makes (``n_fun`` never exceeds it)."""
        return 1 + self.max_extrapolation + 2 * self.max_steps + int(self.report_angle)

    def init(self, theta: Any) -> ExactLineSearchState:
        """The (empty) state."""
        backend.check_params(theta)
        return ExactLineSearchState()

    def step(
        self, theta: Any, state: ExactLineSearchState, value_and_grad: Any, value: Any
    ) -> tuple[Any, ExactLineSearchState, ExactLineSearchInfo]:
        """One step: ``(theta_next, state, info)`` (same batch for both callables)."""
        xp, l0, g = evaluate(theta, state, value_and_grad)
        on_host = HOST_FAST_PATH and type(theta) is np.ndarray and backend.on_host(xp)
        gn = xp.linalg.vector_norm(g)
        if on_host and type(g) is np.ndarray:  # the same numbers, read without the stack
            ct = np.result_type(l0.dtype, theta.dtype)
            ok = bool(np.isfinite(l0) & np.isfinite(g).all() & np.isfinite(gn))
            l0_host, gn_host = float(l0.astype(ct)), float(gn.astype(ct))
        else:
            finite = xp.isfinite(l0) & xp.all(xp.isfinite(g)) & xp.isfinite(gn)
            ct = xp.result_type(l0.dtype, theta.dtype)
            head = backend.to_host(
                xp.stack([xp.astype(finite, ct), xp.astype(l0, ct), xp.astype(gn, ct)]))
            ok, l0_host, gn_host = bool(head[0]), float(head[1]), float(head[2])
        dev = None if on_host else backend.device(theta)
        if self.on_nonfinite == "raise":
            raise_if_nonfinite(ok, "loss or gradient")

        nan = scalar(xp, math.nan, theta)
        if not ok or gn_host == 0.0:
            zero = scalar(xp, 0.0, theta)
            info = ExactLineSearchInfo(
                loss=l0, loss_next=l0, lr=zero, step=zero, angle=nan,
                nonfinite=_flag(xp, not ok, dev),
                n_fun=1, n_grad=1, n_extrapolation=0)
            return theta, state, info

        u = g / gn  # the direction is -u

        def point(s: float) -> Any:
            return theta - s * u

        def finite(v: float) -> float:
            return v if math.isfinite(v) else math.inf  # never moved to

        make_line = getattr(value, "line", None)
        if make_line is None:
            def losses(*steps: float) -> list[float]:
                return [finite(backend.to_float(as_loss(value(point(t)), xp, theta)))
                        for t in steps]
        else:
            line = make_line(theta, -u)
            if on_host:
                dtype = theta.dtype

                def losses(*steps: float) -> list[float]:
                    # the steps as Line.steps makes them (float64 numbers cast to the
                    # dtype), the losses as Python floats (tolist: float() of each)
                    vals = line(np.array(steps, dtype=dtype))
                    vals = vals.tolist() if type(vals) is np.ndarray else \
                        backend.to_host(vals).tolist()
                    return [v if _isfinite(v) else math.inf for v in vals]
            else:
                def losses(*steps: float) -> list[float]:
                    return [finite(float(v)) for v in backend.to_host(line(list(steps)))]

        s, cur, h = 0.0, l0_host, self.initial_step
        n_ext = 0
        while n_ext < self.max_extrapolation:
            n_ext += 1
            (trial,) = losses(s + h)
            if not trial < cur:
                break
            s, cur = s + h, trial
        for _ in range(self.max_steps):
            h *= 0.5
            right, left = losses(s + h, s - h)
            best_s, best = s, cur
            if right < best:
                best_s, best = s + h, right
            if left < best:
                best_s, best = s - h, left
            s, cur = best_s, best
        n_fun, n_grad = 1 + n_ext + 2 * self.max_steps, 1
        n_line = 0 if make_line is None else n_ext + 2 * self.max_steps

        theta_next = theta if s == 0.0 else point(s)
        angle = nan
        if self.report_angle:
            if s == 0.0:
                g_new = g
            else:
                _, g_new = call_value_and_grad(value_and_grad, theta_next, xp)
                n_fun, n_grad = n_fun + 1, n_grad + 1
            cos = -xp.vecdot(u, g_new) / xp.linalg.vector_norm(g_new)
            cos = xp.clip(cos, -1.0, 1.0)
            angle = xp.acos(cos) * (180.0 / math.pi)
        info = ExactLineSearchInfo(
            loss=l0, loss_next=scalar(xp, cur, theta), lr=scalar(xp, s / gn_host, theta),
            step=scalar(xp, s, theta),
            angle=angle, nonfinite=_flag(xp, False, dev),
            n_fun=n_fun, n_grad=n_grad, n_extrapolation=n_ext, n_line=n_line)
        return theta_next, state, info
