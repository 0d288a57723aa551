r"""Intervals for the claims' statistics and the three-way verdict (pure NumPy/SciPy).

A claim's statistic (:mod:`paltest.testbed.claims`, :mod:`paltest.testbed.line_claims`)
rests on runs that vary with their seed (the start and the batch order) and, where the
training is chaotic (a network, a search at machine precision), with any change at the
level of rounding: a one-ulp change of the start, another BLAS kernel or another thread
count moves such a trajectory as far as another seed does. A verdict that such a change
can flip is not a finding. So every statistic comes with a bootstrap interval over what
varies from run to run, and a verdict is only given where the interval lies on one side
of the threshold:

* :func:`over_seeds` - statistics of per-seed values (final losses, epochs to a target,
  paired differences between optimizers run on the same seeds): the seeds are resampled
  with replacement, the optimizers' values of one seed together (a paired bootstrap,
  :func:`scipy.stats.bootstrap` with ``paired=True``), percentile interval;
* :func:`over_seeds_and_lines` - statistics of the lines sampled in runs (fractions,
  medians, quartiles over every line of every seed): a two-stage bootstrap, the seeds
  resampled with replacement and then, within each drawn seed, its lines (so the interval
  holds both the seed-to-seed and the line-to-line variability; lines of one run are not
  independent, and a one-stage bootstrap over lines would be too narrow). SciPy has no
  clustered bootstrap, so this one is written here, vectorized over the resamples.

Both are percentile intervals at :data:`CONFIDENCE` (95 %) from :data:`N_RESAMPLES`
resamples drawn from a generator seeded with :data:`RNG_SEED`, so a report is the same
every time it is computed from the same runs.

:func:`decide` turns an interval and a threshold into :data:`HOLDS`,
:data:`FAILS` or :data:`INCONCLUSIVE`: ``">"`` holds when the whole interval is above
the threshold and fails when the whole interval is at or below it, and so on for the
other comparisons; an interval that straddles the threshold (or is NaN: fewer than two
seeds, nothing measured) is inconclusive. :func:`combine` is the verdict of a claim made
of several tests (all hold: holds; one fails: fails; else inconclusive).

Example:
    >>> import numpy as np
    >>> pal = np.array([2.0, 2, 3, 2, 2]); sgd = np.array([7.0, 6, 8, 7, 9])
    >>> iv = over_seeds(lambda a, b, axis=-1: np.median(b, axis) - np.median(a, axis),
    ...                 pal, sgd)
    >>> iv.estimate, iv.low > 0, decide(iv, ">", 0.0)
    (5.0, True, 'holds')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["BIG", "CONFIDENCE", "FAILS", "HOLDS", "INCONCLUSIVE", "N_RESAMPLES", "OPS", "RNG_SEED",
           "Interval", "Test", "combine", "decide", "over_seeds", "over_seeds_and_lines",
           "quantile", "test"]

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
#: The intervals' confidence level, resamples and the seed of their generator.
CONFIDENCE, N_RESAMPLES, RNG_SEED = 0.95, 4999, 20201206
#: The comparisons :func:`decide` knows, as ``(statistic op threshold)``.
OPS = (">", ">=", "<", "<=")


@dataclass(frozen=True)
class Interval:
    """A statistic's ``estimate`` (on the data as they are) and its percentile bootstrap
    interval ``[low, high]`` at ``confidence``; ``resampled`` says over what (``"seeds"``,
    ``"seeds and lines"``), ``n_seeds`` and ``n_items`` (lines, or seeds) how much."""

    estimate: float
    low: float
    high: float
    confidence: float
    resampled: str
    n_seeds: int
    n_items: int


def _percentiles(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    boot = np.asarray(boot, dtype=np.float64)
    if boot.size == 0 or np.isnan(boot).any():
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail], method="linear")
    return float(lo), float(hi)


#: Where infinite values are put (sums of squares of 10**4 of them stay finite).
BIG = 1e150


def _finite_for_percentiles(x: np.ndarray) -> np.ndarray:
    # infinities (never reached, no parabola minimum) as the largest float: order kept,
    # and no inf - inf = NaN in the interpolation of medians and percentiles
    big = BIG
    return np.clip(np.asarray(x, dtype=np.float64), -big, big)


def over_seeds(statistic: Callable[..., Any], *samples: Any, paired: bool = True,
               confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES) -> Interval:
    """The percentile bootstrap interval of ``statistic(*samples, axis=-1)`` over seeds.

    ``samples``: one 1-D array per optimizer (or quantity), one value per seed; with
    ``paired`` (the default) they hold the same seeds in the same order and a resample
    draws the seeds once for all of them (:func:`scipy.stats.bootstrap`,
    ``paired=True``, ``method="percentile"``). ``statistic`` must accept ``axis`` and
    reduce along it (vectorized). Infinite values (an epoch never reached) keep their
    order; fewer than two seeds give a NaN interval (nothing to resample).
    """
    from scipy import stats

    data = [_finite_for_percentiles(s) for s in samples]
    n = min(len(d) for d in data) if data else 0
    est = float(statistic(*data, axis=-1)) if n else math.nan
    if n < 2 or any(np.isnan(d).any() for d in data):
        return Interval(est, math.nan, math.nan, confidence, "seeds", n, n)
    if all(np.all(d == d[0]) for d in data):  # nothing varies: the interval is the point
        return Interval(est, est, est, confidence, "seeds", n, n)
    res = stats.bootstrap(tuple(data), statistic, n_resamples=n_resamples, paired=paired,
                          vectorized=True, confidence_level=confidence,
                          method="percentile", rng=np.random.default_rng(RNG_SEED))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(est, lo, hi, confidence, "seeds", n, n)


def quantile(q: float) -> Callable[..., Any]:
    """The ``q``-quantile along the last axis, ignoring NaN (NumPy's ``"linear"``
    method, as :func:`numpy.nanquantile`; computed by one sort, NaN sorting last, which
    is several times faster than ``nanquantile`` on the resamples' padded rows)."""
    if not 0 <= q <= 1:
        raise ValueError(f"q: in [0, 1], got {q!r}")

    def stat(x: np.ndarray, axis: int = -1) -> Any:
        x = np.sort(np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1), axis=-1)
        n = np.sum(~np.isnan(x), axis=-1)
        pos = q * np.maximum(n - 1, 0)
        i = np.floor(pos).astype(np.int64)
        j = np.minimum(i + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(x, i[..., None], -1)[..., 0]
        b = np.take_along_axis(x, j[..., None], -1)[..., 0]
        out = a + (b - a) * (pos - i)
        return np.where(n > 0, np.where(a == b, a, out), np.nan)
    stat.__name__ = f"quantile({q:g})"
    return stat


def _nanmean(x: np.ndarray, axis: int = -1) -> Any:
    x = np.asarray(x, dtype=np.float64)
    n = np.sum(~np.isnan(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.nansum(x, axis=axis) / n, np.nan)


def over_seeds_and_lines(groups: Sequence[Any], statistic: Callable[..., Any] | str, *,
                         paired: bool = False, confidence: float = CONFIDENCE,
                         n_resamples: int = N_RESAMPLES) -> Interval:
    """The two-stage bootstrap interval of a statistic of lines pooled over seeds.

    ``groups``: one entry per seed, each a 1-D array of per-line values, or a tuple of
    such arrays (one per configuration run on that seed, e.g. PAL with and without
    alpha; the seed is drawn once for all of them, their lines separately, or, with
    ``paired``, the same lines of each, which then hold the same number of lines per
    seed, e.g. the lines sampled at the same steps). ``statistic(*pooled, axis=-1)``
    reduces the pooled values of each configuration and
    must ignore NaN (the padding of the vectorized resamples); ``"median"``,
    ``"mean"`` (a fraction, for 0/1 values) or a callable such as :func:`quantile`.
    """
    stat = {"median": quantile(0.5), "mean": _nanmean}.get(statistic, statistic) \
        if isinstance(statistic, str) else statistic
    seeds = [tuple(_finite_for_percentiles(a) for a in (g if isinstance(g, tuple) else (g,)))
             for g in groups]
    if paired:
        if any(len({a.size for a in g}) > 1 for g in seeds):
            raise ValueError("groups: paired configurations need equally many lines per seed")
        seeds = [tuple(a[np.all([~np.isnan(b) for b in g], axis=0)] for a in g)
                 for g in seeds]
    else:
        seeds = [tuple(a[~np.isnan(a)] for a in g) for g in seeds]
    k = len(seeds[0]) if seeds else 1
    pooled = [np.concatenate([g[j] for g in seeds]) if seeds else np.zeros(0)
              for j in range(k)]
    n_lines = int(sum(p.size for p in pooled))
    if any(p.size == 0 for p in pooled):
        return Interval(math.nan, math.nan, math.nan, confidence, "seeds and lines",
                        len(seeds), n_lines)
    with np.errstate(all="ignore"):
        est = float(stat(*[p[None, :] for p in pooled], axis=-1)[0])
    if len(seeds) < 2:
        return Interval(est, math.nan, math.nan, confidence, "seeds and lines", len(seeds),
                        n_lines)
    rng = np.random.default_rng(RNG_SEED)
    s = len(seeds)
    pick = rng.integers(0, s, size=(n_resamples, s))  # stage 1: the seeds
    resampled = []
    u = None
    for j in range(k):
        sizes = np.array([g[j].size for g in seeds])
        width = int(sizes.max())
        table = np.full((s, max(width, 1)), np.nan)
        for i, g in enumerate(seeds):
            table[i, :g[j].size] = g[j]
        n = sizes[pick]  # (B, s): the lines of each drawn seed
        if u is None or not paired:
            u = rng.random((n_resamples, s, max(width, 1)))
        idx = np.minimum((u * n[..., None]).astype(np.int64), np.maximum(n[..., None] - 1, 0))
        vals = table[pick[..., None], idx]  # stage 2: its lines, with replacement
        vals[np.arange(max(width, 1))[None, None, :] >= n[..., None]] = np.nan
        resampled.append(vals.reshape(n_resamples, -1))
    with np.errstate(all="ignore"):
        boot = np.asarray(stat(*resampled, axis=-1), dtype=np.float64)
    lo, hi = _percentiles(boot, confidence)
    return Interval(est, lo, hi, confidence, "seeds and lines", s, n_lines)


def decide(interval: Interval, op: str, threshold: float, tolerance: float = 0.0) -> str:
    """:data:`HOLDS` when the whole interval satisfies ``statistic op threshold``,
    :data:`FAILS` when the whole interval violates it, else :data:`INCONCLUSIVE`.

    ``tolerance``: the statistic's rounding (e.g. of accuracies stored in float32); an
    end of the interval within it of the threshold counts as the threshold itself.
    """
    if op not in OPS:
        raise ValueError(f"op: one of {OPS}, got {op!r}")
    lo, hi = interval.low, interval.high
    if math.isnan(lo) or math.isnan(hi):
        return INCONCLUSIVE
    lo, hi = (threshold if abs(v - threshold) <= tolerance else v for v in (lo, hi))
    ok = {">": lambda v: v > threshold, ">=": lambda v: v >= threshold,
          "<": lambda v: v < threshold, "<=": lambda v: v <= threshold}[op]
    if ok(lo) and ok(hi):
        return HOLDS
    if not ok(lo) and not ok(hi):
        return FAILS
    return INCONCLUSIVE


@dataclass(frozen=True)
class Test:
    """One measurable part of a claim: ``statistic op threshold`` with the statistic's
    interval and the resulting ``verdict`` (:func:`decide`)."""

    __test__ = False  # not a pytest test class

    statistic: str
    op: str
    threshold: float
    interval: Interval
    verdict: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (the interval's fields inline)."""
        d = asdict(self)
        d.update(d.pop("interval"))
        return d


def test(statistic: str, interval: Interval, op: str, threshold: float,
         tolerance: float = 0.0) -> Test:
    """A :class:`Test` with its verdict (:func:`decide`)."""
    return Test(statistic, op, float(threshold), interval,
                decide(interval, op, threshold, tolerance))


test.__test__ = False  # not a pytest test function when imported into a test module


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its tests': all hold -> holds, one fails -> does not hold,
    else inconclusive (nothing to test: inconclusive)."""
    v = list(verdicts)
    if v and all(x == HOLDS for x in v):
        return HOLDS
    if FAILS in v:
        return FAILS
    return INCONCLUSIVE
