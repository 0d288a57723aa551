r"""Bracketed hyperparameter selection: grids whose step-size axes grow until the winner is
interior, refined around it, with scores compared up to rounding (pure; no runs here).

A grid (:class:`Grid`) has *scale axes* (step-size-like hyperparameters such as SGD's and
Adam's ``lr`` or PAL's ``mu``), each a geometric sequence :math:`10^{j/d}` for integer
:math:`j` between two exponents at ``per_decade`` = :math:`d` points per decade, and
*fixed axes* (bounded hyperparameters such as :math:`\beta \in [0, 1]` or
:math:`\alpha \in (0, 2)`) with a list of values. :class:`Bracket` drives the search:

1. **grid** - every configuration of the product is tried;
2. **extension** - while the winner (the best score, ties resolved below) sits at the
   upper or lower end of a scale axis along its own line (the other hyperparameters at
   the winner's values), the next point beyond that end, one grid step
   (:math:`10^{1/d}`) further, is tried; a neighbour that diverged or went non-finite
   (score :math:`+\infty`) counts as tried. At most ``max_extensions`` points are added
   per end of every line; when the winner is still at an end after that, the cap is
   recorded (``cap_reached``);
3. **refinement** - ``refine`` times, the winner gets the two midpoints to its neighbours
   on each scale axis (half the log spacing: :math:`10^{\pm 1/(2d)}`, then a quarter, ...),
   so a half-decade grid chooses to a quarter decade with one refinement. A refined
   winner always lies between tried points.

**Scores and ties.** Lower scores win (:func:`paltest.testbed.metrics.score`). Each score comes
with its rounding (:func:`paltest.testbed.metrics.score_rounding`, at most
:data:`paltest.testbed.metrics.MAX_ROUNDING`): a trial whose score exceeds the best one by no more
than the two roundings together ties with it. Ties are resolved by taking the tied
configuration that was tried first: the grid in its order (the product of the axes, the
first axis varying slowest, each axis increasing), then the extensions and refinements
in the order they were proposed. So a flat stretch of scores never pulls the choice
outward: a tied extension cannot displace the grid point it extends.

Example:
    >>> g = Grid({"lr": Scale(-2, 0, per_decade=1)})          # lr in {0.01, 0.1, 1}
    >>> b = Bracket(g, max_extensions=3, refine=0)
    >>> surface = lambda hp: (math.log10(hp["lr"]) - 1.2) ** 2  # best lr near 16
    >>> while b.pending():
    ...     for hp in b.pending():
    ...         b.tell(hp, surface(hp))
    >>> b.best, b.cap_reached
    ({'lr': 10.0}, {})
    >>> [t.hyperparameters["lr"] for t in b.trials]
    [0.01, 0.1, 1.0, 10.0, 100.0]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = ["Bracket", "Grid", "Scale", "Trial", "choose", "tied"]


@dataclass(frozen=True)
class Scale:
    """A scale axis: :math:`10^{j/d}` for the integers :math:`j` from ``lo * d`` to
    ``hi * d`` (``lo``/``hi`` are decade exponents), ``d`` = ``per_decade``."""

    lo: float
    hi: float
    per_decade: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.per_decade, bool) or not isinstance(self.per_decade, int) or (
                self.per_decade < 1):
            raise ValueError(f"per_decade: a positive int, got {self.per_decade!r}")
        if not self.lo <= self.hi:
            raise ValueError(f"lo: must be <= hi, got {self.lo!r} > {self.hi!r}")
        for name in ("lo", "hi"):
            steps = getattr(self, name) * self.per_decade
            if abs(steps - round(steps)) > 1e-9:
                raise ValueError(f"{name}: {getattr(self, name)!r} is not a multiple of "
                                 f"1/{self.per_decade} decade")

    @property
    def step(self) -> Fraction:
        """The grid step in decades."""
        return Fraction(1, self.per_decade)

    def exponents(self) -> list[Fraction]:
        """The decade exponents of the grid, increasing."""
        d = self.per_decade
        return [Fraction(j, d) for j in range(round(self.lo * d), round(self.hi * d) + 1)]

    def values(self) -> list[float]:
        """The grid values, increasing."""
        return [value(e) for e in self.exponents()]


def value(exponent: Fraction) -> float:
    """:math:`10^{e}` computed the same way for every point (so run ids are stable)."""
    return float(10.0 ** (exponent.numerator / exponent.denominator))


@dataclass(frozen=True)
class Grid:
    """The axes of a search: ``{name: Scale | list}`` in axis order (scale axes are
    geometric and may grow; lists are fixed)."""

    axes: dict[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.axes, dict) or not self.axes:
            raise ValueError(f"axes: a non-empty dict of Scale or lists, got {self.axes!r}")
        for k, v in self.axes.items():
            if not isinstance(v, (Scale, list)) or (isinstance(v, list) and not v):
                raise ValueError(f"axes[{k!r}]: a Scale or a non-empty list, got {v!r}")

    @property
    def scale_axes(self) -> list[str]:
        return [k for k, v in self.axes.items() if isinstance(v, Scale)]

    def points(self) -> list[dict[str, Any]]:
        """The product of the axes' initial values, in grid order."""
        lists = [v.exponents() if isinstance(v, Scale) else list(v)
                 for v in self.axes.values()]
        return [dict(zip(self.axes, combo, strict=True)) for combo in itertools.product(*lists)]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able description (scale axes as lo/hi/per_decade and their values)."""
        return {k: ({"scale": True, "lo": v.lo, "hi": v.hi, "per_decade": v.per_decade,
                     "values": v.values()} if isinstance(v, Scale) else list(v))
                for k, v in self.axes.items()}


@dataclass
class Trial:
    """One tried configuration: its ``hyperparameters``, ``score`` (``None`` until told)
    and the score's ``rounding`` (decades), the ``stage`` that proposed it (``"grid"``,
    ``"extension"``, ``"refinement"``) and whatever ``info`` the caller attached (run id,
    final loss, ...)."""

    hyperparameters: dict[str, Any]
    stage: str
    score: float | None = None
    rounding: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def _s(t: Trial) -> float:
    return math.inf if t.score is None or math.isnan(t.score) else t.score


def tied(trials: list[Trial]) -> list[Trial]:
    """The trials whose score ties with the lowest (within the two roundings), in order.
    Untold or NaN scores count as ``+inf``."""
    if not trials:
        raise ValueError("trials: nothing to choose from")
    best = min(trials, key=_s)
    return [t for t in trials if _s(t) == _s(best)
            or _s(t) <= _s(best) + t.rounding + best.rounding]


def choose(trials: list[Trial]) -> Trial:
    """The winner among ``trials`` (in the order tried): the earliest of the trials that
    tie with the lowest score (:func:`tied`)."""
    return tied(trials)[0]


class Bracket:
    """The search over ``grid`` (see the module): ask :meth:`pending`, :meth:`tell` each
    score, repeat until nothing is pending; then :attr:`best`, :attr:`trials`,
    :attr:`cap_reached` and :attr:`bracketed` describe the outcome.

    Args:
        grid: the axes.
        max_extensions: points added at most per end of every line (>= 0).
        refine: refinement rounds around the winner (>= 0).
    """

    def __init__(self, grid: Grid, *, max_extensions: int = 4, refine: int = 1) -> None:
        for name, v in (("max_extensions", max_extensions), ("refine", refine)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: a non-negative int, got {v!r}")
        self.grid, self.max_extensions, self.refine = grid, max_extensions, refine
        self._scale = grid.scale_axes
        self._trials: list[Trial] = []
        self._index: dict[tuple, Trial] = {}
        self._extensions: dict[tuple, int] = {}  # (axis, line key, side) -> points added
        self._refined = 0
        self._cap: dict[str, str] = {}
        self._add(grid.points(), "grid")

    # -- bookkeeping on exponents (scale axes) and values (fixed axes) --------------------
    def _key(self, point: dict[str, Any]) -> tuple:
        return tuple(point[k] for k in self.grid.axes)

    def _public(self, point: dict[str, Any]) -> dict[str, Any]:
        return {k: value(v) if k in self._scale else v for k, v in point.items()}

    def _add(self, points: list[dict[str, Any]], stage: str) -> None:
        for p in points:
            key = self._key(p)
            if key not in self._index:
                t = Trial(self._public(p), stage)
                t.info["_point"] = p
                self._index[key] = t
                self._trials.append(t)

    def pending(self) -> list[dict[str, Any]]:
        """Configurations to score next (``[]`` when the search is over)."""
        todo = [t.hyperparameters for t in self._trials if t.score is None]
        if todo:
            return todo
        self._advance()
        return [t.hyperparameters for t in self._trials if t.score is None]

    def tell(self, hyperparameters: dict[str, Any], score: float, rounding: float = 0.0,
             **info: Any) -> None:
        """Record the ``score`` of a pending configuration, its ``rounding`` (decades, see
        the module) and any ``info``."""
        t = self._find(hyperparameters)
        if t is None:
            raise KeyError(f"hyperparameters: {hyperparameters!r} is not a trial")
        if not (isinstance(rounding, (int, float)) and rounding >= 0):
            raise ValueError(f"rounding: a number >= 0, got {rounding!r}")
        t.score, t.rounding = float(score), float(rounding)
        t.info.update(info)

    def _find(self, hyperparameters: dict[str, Any]) -> Trial | None:
        for t in self._trials:
            if t.hyperparameters == hyperparameters:
                return t
        return None

    def _line(self, point: dict[str, Any], axis: str) -> list[Fraction]:
        """The tried exponents of ``axis`` with the other axes at ``point``'s values."""
        others = [k for k in self.grid.axes if k != axis]
        return sorted(t.info["_point"][axis] for t in self._trials
                      if all(t.info["_point"][k] == point[k] for k in others))

    def _advance(self) -> None:
        """Propose the next points: an extension if the winner is at an end, else a
        refinement, else nothing."""
        best = self._winner()
        point = best.info["_point"]
        new = []
        self._cap = {}
        for axis in self._scale:
            line = self._line(point, axis)
            e = point[axis]
            line_key = tuple(point[k] for k in self.grid.axes if k != axis)
            for side, at_end, step in (("upper", e == line[-1], 1), ("lower", e == line[0], -1)):
                if not at_end:
                    continue
                used = self._extensions.get((axis, line_key, side), 0)
                if used >= self.max_extensions:
                    self._cap[axis] = side
                    continue
                self._extensions[axis, line_key, side] = used + 1
                new.append({**point, axis: e + step * self.grid.axes[axis].step})
        if new:
            self._add(new, "extension")
            return
        if self._refined < self.refine:
            self._refined += 1
            for axis in self._scale:
                half = self.grid.axes[axis].step / 2 ** self._refined
                line = self._line(point, axis)
                e = point[axis]
                # midpoints toward tried neighbours only (not past a capped end)
                new += [{**point, axis: e + s * half} for s in (-1, 1)
                        if (line[0] < e if s < 0 else e < line[-1])]
            self._add(new, "refinement")

    def _winner(self) -> Trial:
        return choose(self._trials)

    @property
    def trials(self) -> list[Trial]:
        """Every configuration tried, in the order proposed."""
        return list(self._trials)

    @property
    def best(self) -> dict[str, Any]:
        """The winner's hyperparameters."""
        return dict(self._winner().hyperparameters)

    @property
    def winner(self) -> Trial:
        """The winning trial."""
        return self._winner()

    @property
    def tied(self) -> list[Trial]:
        """The trials that tie with the best score (the winner is the first)."""
        return tied(self._trials)

    @property
    def cap_reached(self) -> dict[str, str]:
        """``{axis: "upper" | "lower"}`` where the winner is still at an end of its line
        after ``max_extensions`` points were added there."""
        return dict(self._cap)

    @property
    def bracketed(self) -> dict[str, bool]:
        """Per scale axis: the winner has a tried neighbour on both sides."""
        point = self._winner().info["_point"]
        out = {}
        for axis in self._scale:
            line = self._line(point, axis)
            out[axis] = line[0] < point[axis] < line[-1]
        return out
