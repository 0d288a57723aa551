"""The claims' intervals and verdicts (paltest.testbed.uncertainty): the three-way
decision, the paired bootstrap over seeds, the two-stage bootstrap over seeds and lines,
and that a report is the same every time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paltest.testbed import uncertainty as unc


def _iv(lo, hi, est=None):
    return unc.Interval((lo + hi) / 2 if est is None else est, lo, hi, 0.95, "seeds", 5, 5)


@pytest.mark.parametrize("op, lo, hi, verdict", [
    (">", 0.1, 0.3, unc.HOLDS), (">", -0.1, 0.3, unc.INCONCLUSIVE), (">", -0.3, 0.0, unc.FAILS),
    (">", 0.0, 0.3, unc.INCONCLUSIVE),  # the threshold itself is not above it
    (">=", 0.0, 0.3, unc.HOLDS), ("<", -0.3, -0.1, unc.HOLDS), ("<", -0.3, 0.1, unc.INCONCLUSIVE),
    ("<=", 0.1, 0.3, unc.FAILS), ("<=", math.nan, math.nan, unc.INCONCLUSIVE),
])
def test_decide_needs_the_whole_interval_on_one_side(op, lo, hi, verdict):
    assert unc.decide(_iv(lo, hi), op, 0.0) == verdict


def test_tolerance_puts_a_rounding_level_end_on_the_threshold():
    assert unc.decide(_iv(1e-8, 0.01), ">", 0.0) == unc.HOLDS
    assert unc.decide(_iv(1e-8, 0.01), ">", 0.0, tolerance=1e-7) == unc.INCONCLUSIVE
    with pytest.raises(ValueError, match="op"):
        unc.decide(_iv(0, 1), "==", 0.0)


def test_combine():
    H, F, I = unc.HOLDS, unc.FAILS, unc.INCONCLUSIVE  # noqa: N806
    assert unc.combine([H, H]) == H and unc.combine([H, F, I]) == F
    assert unc.combine([H, I]) == I and unc.combine([]) == I


def test_over_seeds_is_paired_and_reproducible():
    rng = np.random.default_rng(1)
    base = rng.normal(size=8)
    a, b = base, base + 0.1 + 0.01 * rng.normal(size=8)  # b - a small but steady
    diff = lambda x, y, axis=-1: np.mean(y - x, axis=axis)  # noqa: E731
    paired = unc.over_seeds(diff, a, b)
    assert paired.estimate == pytest.approx(np.mean(b - a))
    assert 0 < paired.low < paired.estimate < paired.high < 0.2
    # unpaired, the seed-to-seed spread of ``base`` swamps the difference
    apart = unc.over_seeds(diff, a, b, paired=False)
    assert apart.low < 0 < apart.high
    assert unc.over_seeds(diff, a, b) == paired  # a fixed generator: the same interval
    one = unc.over_seeds(np.mean, np.array([1.0]))
    assert one.estimate == 1.0 and math.isnan(one.low)  # one seed: nothing to resample
    const = unc.over_seeds(np.median, np.array([3.0, 3.0, 3.0]))
    assert (const.low, const.high) == (3.0, 3.0)


def test_over_seeds_keeps_never_reached_in_order():
    never = np.array([5.0, 6.0, np.inf, np.inf, np.inf])
    iv = unc.over_seeds(np.median, never)
    assert iv.estimate >= unc.BIG and iv.high >= unc.BIG and iv.low == 5.0


def test_two_stage_bootstrap_covers_the_seed_to_seed_variability():
    """Lines of one run are alike; seeds differ. Resampling only the pooled lines would
    give an interval far narrower than the spread of the seeds' own fractions."""
    rng = np.random.default_rng(2)
    rates = [0.70, 0.95, 0.80, 0.90, 0.75]  # each seed's share of convex lines
    groups = [(rng.random(200) < r).astype(float) for r in rates]
    iv = unc.over_seeds_and_lines(groups, "mean")
    pooled = np.concatenate(groups)
    naive = 1.96 * pooled.std() / math.sqrt(pooled.size)
    assert iv.high - iv.low > 3 * 2 * naive
    assert iv.low < np.mean(rates) < iv.high
    assert (iv.n_seeds, iv.n_items, iv.resampled) == (5, 1000, "seeds and lines")
    assert unc.over_seeds_and_lines(groups, "mean") == iv


def test_two_stage_statistics_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 30))
    x[:, 20:] = np.nan
    for q in (0.25, 0.5, 0.75, 1.0):
        np.testing.assert_allclose(unc.quantile(q)(x), np.nanquantile(x, q, axis=-1))
    groups = [rng.normal(size=n) for n in (30, 50, 40)]
    iv = unc.over_seeds_and_lines(groups, unc.quantile(0.75))
    assert iv.estimate == pytest.approx(np.quantile(np.concatenate(groups), 0.75))
    with pytest.raises(ValueError, match="q"):
        unc.quantile(1.5)


def test_paired_lines_resample_the_same_lines():
    a = [np.arange(10.0), np.arange(10.0) + 1]
    iv = unc.over_seeds_and_lines([(x, x) for x in a],
                                  lambda u, v, axis=-1: np.nanmean(u - v, axis=axis),
                                  paired=True)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="equally many"):
        unc.over_seeds_and_lines([(np.ones(3), np.ones(4))], "mean", paired=True)
