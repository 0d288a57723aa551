r"""Line sampling during a run (the PAL paper's Sections 3 and 6): pure records.

A :class:`LineSampler` is passed to :func:`paltest.testbed.runner.run` as ``observe=``.
At the steps it is due (every ``every`` steps from step 0, or the steps listed in
``at``), on **the same batch and the same unit direction** :math:`\hat d` the optimizer
used (:func:`line_direction`), it samples the batch loss

.. math::  l(s) = L_B(\theta + s\,\hat d)

at ``points`` evenly spaced steps :math:`s \in R\,[\mathrm{lo}, \mathrm{hi}]`
(``span``, default :data:`DEFAULT_SPAN` = (-0.5, 1.5)) with the scale
:math:`R = \max(|s_{\rm opt}|, \mu)`, where :math:`s_{\rm opt}` is the optimizer's step
along :math:`\hat d` and :math:`\mu` PAL's measuring step (``mu``: the optimizer's own
``mu`` when it has one, else :data:`DEFAULT_MU` = 1, PAL's default). So the range always
holds :math:`0`, the measuring point and the step. It also evaluates :math:`l(0)`,
:math:`l(\mu)` and :math:`l'(0) = \nabla L_B(\theta)\cdot\hat d` and records, per line
(:data:`LINE_COLUMNS`): the samples; PAL's parabola from :math:`l(0), l'(0), l(\mu)`
and its minimum; the least-squares parabola of the samples and its relative residual;
the sampled minimum (refined between grid points) and the line's shape around it
(:func:`paltest.testbed.line_shapes.classify`; ``full_shape`` that of the full loss);
the optimizer's step; and the angle
between :math:`\hat d` and the gradient at the update point :math:`\theta_{next}`,
measured on the same batch (90 degrees exactly at a minimum along the line; the paper's
Figures 2-3). Optionally (Figure 7) the full training loss along the same line
(``full_loss``) and the quartiles, mean and extremes of the losses of all the epoch's
batches along it (``batch_quartiles``; needs the run's ``seed``).

Bracketing (``extend``, default :data:`DEFAULT_EXTEND` = 6): when a moved step's batch
line (or, with ``full_loss``, its full-loss line) is not bracketed (shape ``"edge"``:
the lowest sample at an end of the range, or an end sample within the rounding allowance
of the lowest, :func:`paltest.testbed.line_shapes.open_side`), the range is widened by
:data:`EXTEND_FACTOR` = 4 at that end (``hi`` times 4; ``lo`` times 4, or -0.5 when it is
0) and the line is sampled again with the same number of evenly spaced points over the
whole new range, at most ``extend`` times. The row's ``lo``, ``hi`` (in units of
:math:`R`) and ``extensions`` say which range was kept; the extra evaluations and
transfers are in :attr:`LineSampler.counts` (``extensions``, ``points``, ...). A line
still ``"edge"`` after that (e.g. a separable logistic loss that keeps falling toward
:math:`s\to\infty`) stays ``"edge"``. A line whose first range brackets its minimum
costs exactly what it did without ``extend``.

``points=0`` records only the angle and the step (cheap: one gradient per due step).

Cost and counting: the sampler calls the problem directly (``problem.line``, which is a
cheap line where the problem has one, and ``problem.value_and_grad``), never the
optimizer's bound functions, so the optimizer's ``n_fun``/``n_grad`` are unchanged; its
own evaluations are in :attr:`LineSampler.counts`. It reads its arguments only, so the
run's trajectory is bitwise the one without it (``tests/test_lines_sampling.py``).

Host transfers: everything a line yields (samples, :math:`l(0)`, :math:`l(\mu)`,
:math:`l'(0)`, the angle's cosine, the step, the optional full-loss and batch samples) is
stacked on the device and moved to the host **once per sampled line**
(:func:`paltest.backend.to_host`), outside the optimizer's step; a direct line
(:class:`problems.base.DirectLine`) also reads its steps on the host. The analysis
(parabolas, fits, shapes) then runs on host floats (:mod:`~paltest.testbed.line_shapes`).

Example:
    >>> from paltest.testbed.lines import sample_run
    >>> result, samples = sample_run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0,
    ...                              every=4, points=20)
    >>> len(samples.lines), samples.counts["lines"], samples.lines["shape"].iloc[0]
    (2, 2, 'convex')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from paltest import backend
from paltest.checks import check_int
from paltest.optimizers.exact import ExactLineSearch
from paltest.optimizers.pal import PAL
from paltest.testbed import line_shapes as shapes
from paltest.testbed.line_records import (
    LINE_COLUMNS,
    LineRecord,
    LineSamples,
    load_samples,
    save_samples,
)

__all__ = ["DEFAULT_EXTEND", "DEFAULT_MU", "DEFAULT_SPAN", "EXTEND_FACTOR", "LINE_COLUMNS",
           "LineRecord", "LineSampler", "LineSamples", "line_direction", "load_samples",
           "sample_run", "sampler_settings", "save_samples"]

DEFAULT_MU = 1.0
DEFAULT_SPAN = (-0.5, 1.5)
#: The most times a line's range is widened (by :data:`EXTEND_FACTOR` at the end where it
#: is not bracketed, :func:`~paltest.testbed.line_shapes.open_side`); up to ``4**6 = 4096`` times
#: the first range's reach on that side.
DEFAULT_EXTEND = 6
EXTEND_FACTOR = 4.0


def _unit(xp: Any, v: Any, eps: float) -> tuple[Any, Any]:
    n = xp.linalg.vector_norm(v)
    n = xp.where(n == 0, xp.full_like(n, eps), n)
    return v / n, n


def line_direction(optimizer: Any, theta: Any, theta_next: Any, state_next: Any,
                   info: Any, grad: Any = None) -> tuple[Any, Any]:
    r"""The unit direction :math:`\hat d` of the step just made and the step along it,
    ``(d, step)`` (an array like ``theta`` and a 0-d array).

    * an optimizer with a ``line_direction(state_next)`` method: that direction,
      normalised (a zero direction stays zero); for
      :class:`~paltest.optimizers.pal.PAL` (along its own or another optimizer's
      direction) :meth:`~paltest.optimizers.pal.PAL.line_direction` is unit already and
      is used as it is (the sampler's direction is bitwise that array); and
      ``info.step`` when the record has a ``step``, else
      :math:`(\theta_{next}-\theta)\cdot\hat d`;
    * :class:`~paltest.optimizers.exact.ExactLineSearch`: :math:`-g/\lVert g\rVert` with
      ``grad`` the gradient at ``theta`` on the batch (needed), and ``info.step``;
    * any other optimizer: :math:`(\theta_{next}-\theta)/\lVert\theta_{next}-\theta\rVert`
      and the step :math:`\lVert\theta_{next}-\theta\rVert` (a zero step gives a zero
      direction; the sampler records such a line as ``"skipped"``).
    """
    xp = backend.namespace(theta)
    if hasattr(optimizer, "line_direction"):
        d = optimizer.line_direction(state_next)
        if not isinstance(optimizer, PAL):  # PAL's is unit already: used bitwise as is
            d, _ = _unit(xp, d, 1.0)
        step = info.step if hasattr(info, "step") else xp.vecdot(theta_next - theta, d)
        return d, step
    if isinstance(optimizer, ExactLineSearch):
        if grad is None:
            raise ValueError("grad: the exact line search's direction needs the gradient "
                             "at theta")
        d, _ = _unit(xp, grad, 1.0)
        return -d, info.step
    delta = theta_next - theta
    n = xp.linalg.vector_norm(delta)
    return delta / xp.where(n == 0, xp.ones_like(n), n), n


def _check_span(span: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in span)
    except (TypeError, ValueError):
        raise ValueError(f"span: expected two numbers (lo, hi), got {span!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= 0 < 1 <= hi):
        raise ValueError(f"span: need lo <= 0 and hi >= 1 (the range R*[lo, hi] must hold "
                         f"0, mu and the step), got {span!r}")
    return lo, hi


def sampler_settings(optimizer: Any, *, every: int = 10, at: Iterable[int] | None = None,
                     points: int = 50, span: Any = DEFAULT_SPAN, mu: float | None = None,
                     window: float = 0.5, full_loss: bool = False,
                     batch_quartiles: bool = False,
                     extend: int = DEFAULT_EXTEND) -> dict[str, Any]:
    """The checked, JSON-able settings of a :class:`LineSampler` for ``optimizer`` (its
    ``config``; errors name the argument). ``mu`` defaults to ``optimizer.mu``, else
    :data:`DEFAULT_MU`."""
    every = check_int("every", every, 1)
    at = None if at is None else sorted({check_int("at", a, 0) for a in at})
    points = check_int("points", points, 0)
    if 0 < points < 3:
        raise ValueError(f"points: must be 0 or at least 3, got {points!r}")
    lo, hi = _check_span(span)
    mu = getattr(optimizer, "mu", DEFAULT_MU) if mu is None else mu
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not (
            math.isfinite(mu) and mu > 0):
        raise ValueError(f"mu: must be a finite number > 0, got {mu!r}")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
        raise ValueError(f"window: must be a number > 0, got {window!r}")
    for name, flag in (("full_loss", full_loss), ("batch_quartiles", batch_quartiles)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name}: must be a bool, got {flag!r}")
    if (full_loss or batch_quartiles) and not points:
        raise ValueError("points: full_loss and batch_quartiles need points >= 3")
    extend = check_int("extend", extend, 0)
    return {"every": every, "at": at, "points": points, "span": [lo, hi], "mu": float(mu),
            "window": float(window), "full_loss": full_loss,
            "batch_quartiles": batch_quartiles, "extend": extend}


class LineSampler:
    r"""An observer for :func:`~paltest.testbed.runner.run` that samples lines (see the
    module).

    Args:
        problem: the run's problem object.
        optimizer: the run's optimizer object (the direction is read from its state).
        every: sample at steps 0, every, 2*every, ... (ignored when ``at`` is given).
        at: the step indices to sample (counted from 0 over the whole run), instead.
        points: the number of samples per line (0: only the angle and the step; else
            at least 3).
        span: ``(lo, hi)`` with lo <= 0 and hi >= 1: the samples span ``R * [lo, hi]``.
        mu: the measuring step of the parabola (default: ``optimizer.mu``, else 1).
        window: the neighbourhood of the minimum, in units of :math:`R`, in which the
            shape is judged (:func:`~paltest.testbed.line_shapes.classify`).
        full_loss: also sample the full training loss along the line.
        batch_quartiles: also sample every batch of the step's epoch along the line.
        extend: the most times the range is widened while a line's minimum is not
            bracketed (see the module; 0: never).
        seed: the run's seed (needed by ``batch_quartiles`` to rebuild the epoch's
            batches with ``problem.batches(epoch, seed, batch_size)``).

    After the run, :meth:`samples` gives the records as tables; :attr:`counts` the
    sampler's own evaluations (``lines``, ``points`` on batch lines, ``cheap_lines``,
    ``grads``, ``full_points``, ``batch_points``, ``host_transfers``, ``extensions``;
    the points of widened ranges are included in ``points``, ``full_points`` and
    ``batch_points``).
    """

    def __init__(self, problem: Any, optimizer: Any, *, every: int = 10,
                 at: Iterable[int] | None = None, points: int = 50,
                 span: Any = DEFAULT_SPAN, mu: float | None = None, window: float = 0.5,
                 full_loss: bool = False, batch_quartiles: bool = False,
                 extend: int = DEFAULT_EXTEND, seed: int | None = None) -> None:
        for attr in ("line", "value_and_grad", "batches", "xp", "dtype", "n_train"):
            if not hasattr(problem, attr):
                raise TypeError(f"problem: expected a Problem, got {problem!r} (no {attr!r})")
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "step")):
            raise TypeError(f"optimizer: expected an optimizer object, got {optimizer!r}")
        self.problem, self.optimizer = problem, optimizer
        cfg = sampler_settings(optimizer, every=every, at=at, points=points, span=span, mu=mu,
                               window=window, full_loss=full_loss,
                               batch_quartiles=batch_quartiles, extend=extend)
        self.every, self.points, self.mu, self.window = (cfg["every"], cfg["points"],
                                                         cfg["mu"], cfg["window"])
        self.at = None if cfg["at"] is None else frozenset(cfg["at"])
        self.span = tuple(cfg["span"])
        self.full_loss, self.batch_quartiles = cfg["full_loss"], cfg["batch_quartiles"]
        self.extend = cfg["extend"]
        self._config = cfg
        if batch_quartiles and seed is None:
            raise ValueError("seed: batch_quartiles needs the run's seed (to rebuild the "
                             "epoch's batches)")
        self.seed = None if seed is None else check_int("seed", seed, 0)
        self.records: list[LineRecord] = []
        self.counts = dict.fromkeys(("lines", "points", "cheap_lines", "grads",
                                     "full_points", "batch_points", "host_transfers",
                                     "extensions"), 0)
        xp, p = problem.xp, problem
        self._base = self._grid(*self.span)
        self._extra = backend.from_host(np.array([0.0, self.mu]), xp, device=p.device,
                                        dtype=p.dtype_name)
        self._all = None

    @property
    def config(self) -> dict[str, Any]:
        """The sampler's settings (:func:`sampler_settings`; recorded in the run's config)."""
        return dict(self._config)

    def due(self, step: int) -> bool:
        """Whether step ``step`` (from 0) is sampled."""
        return step in self.at if self.at is not None else step % self.every == 0

    def __call__(self, step: int, batch: Any, theta: Any, state: Any, theta_next: Any,
                 state_next: Any, info: Any) -> None:
        if not self.due(step):
            return
        p, xp = self.problem, self.problem.xp
        c = self.counts
        need_g0 = self.points > 0 or isinstance(self.optimizer, ExactLineSearch)
        g0 = None
        if need_g0:
            _, g0 = p.value_and_grad(theta, batch)
            c["grads"] += 1
        d, s_opt = line_direction(self.optimizer, theta, theta_next, state_next, info, g0)
        if theta_next is theta and g0 is not None:
            g1 = g0
        else:
            _, g1 = p.value_and_grad(theta_next, batch)
            c["grads"] += 1
        cos = xp.vecdot(d, g1) / xp.linalg.vector_norm(g1)
        nonfinite = getattr(info, "nonfinite", False)
        head = [s_opt, cos, xp.astype(xp.asarray(nonfinite, device=p.device), p.dtype)]
        k = self.points
        n_batches = 0
        lo, hi, j = self.span[0], self.span[1], 0
        if k:
            scale = xp.maximum(xp.abs(xp.astype(s_opt, p.dtype)), xp.asarray(
                self.mu, dtype=p.dtype, device=p.device))
            head += [scale, xp.vecdot(g0, d)]
            line = p.line(theta, d, batch)
            parts, n_batches = self._sample(step, theta, d, batch, line, scale, self._base)
        else:
            parts = []
        host = self._transfer(head + parts)
        while k and j < self.extend:
            side = self._edge(host, n_batches)
            if side == 0:
                break
            j += 1
            if side < 0:
                lo = lo * EXTEND_FACTOR if lo < 0 else -0.5
            else:
                hi *= EXTEND_FACTOR
            c["extensions"] += 1
            parts, n_batches = self._sample(step, theta, d, batch, line, scale,
                                            self._grid(lo, hi))
            host = self._transfer(head + parts)
        c["lines"] += 1
        self.records.append(self._record(step, int(batch.shape[0]), host, n_batches,
                                         (lo, hi, j)))

    def _grid(self, lo: float, hi: float) -> Any:
        p = self.problem
        base = np.linspace(lo, hi, max(self.points, 1))
        return backend.from_host(base, p.xp, device=p.device, dtype=p.dtype_name)

    def _sample(self, step: int, theta: Any, d: Any, batch: Any, line: Any, scale: Any,
                base: Any) -> tuple[list[Any], int]:
        """The device arrays of one range: steps, batch losses (and l(0), l(mu)), the
        full loss and the epoch's batch losses when asked; counted."""
        p, xp, c, k = self.problem, self.problem.xp, self.counts, self.points
        s = scale * base
        vals = line(xp.concat([s, self._extra]))
        c["points"] += k + 2
        c["cheap_lines"] += int(line.cheap)
        parts = [s, vals]
        n_batches = 0
        if self.full_loss:
            if self._all is None:
                self._all = backend.from_host(np.arange(p.n_train), xp, device=p.device,
                                              dtype="int64")
            parts.append(p.line(theta, d, self._all)(s))
            c["full_points"] += k
        if self.batch_quartiles:
            epoch = step // max(1, p.n_train // int(batch.shape[0]))
            for b in p.batches(epoch, self.seed, int(batch.shape[0])):
                parts.append(p.line(theta, d, b)(s))
                n_batches += 1
            c["batch_points"] += k * n_batches
        return parts, n_batches

    def _transfer(self, arrays: list[Any]) -> np.ndarray:
        xp = self.problem.xp
        flat = xp.concat([xp.reshape(xp.astype(v, xp.float64), (-1,)) for v in arrays])
        self.counts["host_transfers"] += 1
        return backend.to_host(flat)

    def _edge(self, host: np.ndarray, n_batches: int) -> int:
        """-1 / +1 when the batch line (or the full-loss line) of a moved step has its
        lowest sample at the first / last point of the range (not bracketed), else 0."""
        k = self.points
        s_opt, nonfinite = float(host[0]), float(host[2])
        if not (s_opt != 0 and math.isfinite(s_opt) and not nonfinite):
            return 0
        s = host[5:5 + k]
        curves = [host[5 + k:5 + 2 * k]]
        if self.full_loss:
            curves.append(host[5 + 2 * k + 2:5 + 3 * k + 2])
        for loss in curves:
            if shapes.classify(s, loss, window=self.window,
                               dtype=self.problem.dtype_name) == "edge":
                return shapes.open_side(s, loss, dtype=self.problem.dtype_name) or 1
        return 0

    def _record(self, step: int, batch_size: int, host: np.ndarray, n_batches: int,
                span: tuple[float, float, int]) -> LineRecord:
        k = self.points
        s_opt, cos, nonfinite = (float(v) for v in host[:3])
        n_per_epoch = max(1, self.problem.n_train // batch_size)
        row: dict[str, Any] = dict.fromkeys(LINE_COLUMNS, math.nan)
        row.update(step_index=step, epoch=step // n_per_epoch + 1, step=s_opt, mu=self.mu,
                   angle=shapes.angle_degrees(cos),
                   moved=bool(s_opt != 0 and math.isfinite(s_opt) and not nonfinite),
                   shape="skipped", lo=span[0], hi=span[1],
                   extensions=span[2])
        if not k:
            return LineRecord(row, np.zeros(0), np.zeros(0), None, None)
        scale, dl0 = float(host[3]), float(host[4])
        at = 5
        s = host[at:at + k]
        vals = host[at + k:at + 2 * k + 2]
        loss, l0, l_mu = vals[:k], float(vals[k]), float(vals[k + 1])
        at += 2 * k + 2
        full = batches = None
        if self.full_loss:
            full, at = host[at:at + k], at + k
        if self.batch_quartiles:
            batches = host[at:at + k * n_batches].reshape(n_batches, k)
        a, b, c = shapes.pal_parabola(l0, dl0, l_mu, self.mu)
        la, lb, lc, res = shapes.lsq_parabola(s, loss)
        s_min, l_min, _ = shapes.sampled_minimum(s, loss)
        row.update(scale=scale, l0=l0, l_mu=l_mu, dl0=dl0, pal_a=a, pal_b=b, pal_c=c,
                   pal_min=shapes.parabola_minimum(a, b), lsq_a=la, lsq_b=lb, lsq_c=lc,
                   lsq_min=shapes.parabola_minimum(la, lb), lsq_residual=res,
                   s_min=s_min, l_min=l_min)
        if row["moved"]:
            row["shape"] = shapes.classify(s, loss, window=self.window,
                                           dtype=self.problem.dtype_name)
        if full is not None:
            fs, fl, fi = shapes.sampled_minimum(s, full)
            row.update(full_s_min=fs, full_l_min=fl,
                       full_shape=shapes.classify(s, full, window=self.window,
                                                  dtype=self.problem.dtype_name),
                       batch_l_min_at_full_min=float(loss[fi]) if fi >= 0 else math.nan)
        return LineRecord(row, s.copy(), loss.copy(), None if full is None else full.copy(),
                          batches)

    def samples(self) -> LineSamples:
        """The records so far as :class:`LineSamples` (tables, counts, settings)."""
        return LineSamples.from_records(self.records, dict(self.counts), self.config)


def sample_run(problem: Any, optimizer: Any, *, epochs: int, batch_size: int, seed: int,
               hyperparameters: dict[str, Any] | None = None,
               problem_options: dict[str, Any] | None = None, progress: bool = False,
               start_ulps: int = 0, **sampler_options: Any) -> tuple[Any, LineSamples]:
    """Run ``optimizer`` on ``problem`` with a :class:`LineSampler`; return
    ``(RunResult, LineSamples)``.

    ``problem`` and ``optimizer`` are objects or registry names (built with
    ``problem_options`` and ``hyperparameters``); ``sampler_options`` go to
    :class:`LineSampler` (``seed`` is the run's). The sampler's settings enter the run's
    config (and so its run id) as ``line_sampler``; ``start_ulps`` goes to
    :func:`paltest.testbed.runner.run` (the start moved by that many ulps).
    """
    from paltest.optimizers import registry
    from paltest.testbed.runner import run

    name = None
    if isinstance(problem, str):
        import problems

        name, problem = problem, problems.get(problem, **(problem_options or {}))
    run_opt, opt_obj = optimizer, optimizer
    if isinstance(optimizer, str):  # the runner builds its own (equal) optimizer by name
        opt_obj = registry.make(optimizer, **(hyperparameters or {}),
                                n_batches_per_epoch=problem.n_batches(batch_size))
    elif hyperparameters:
        raise TypeError("hyperparameters: only allowed when optimizer is given by name")
    sampler = LineSampler(problem, opt_obj, seed=seed, **sampler_options)
    result = run(problem, run_opt, epochs=epochs, batch_size=batch_size, seed=seed,
                 observe=sampler, problem_name=name, hyperparameters=hyperparameters,
                 problem_options=problem_options, progress=progress,
                 config={"line_sampler": sampler.config}, start_ulps=start_ulps)
    return result, sampler.samples()
