"""The claims of Sections 3 and 6 (paltest.testbed.line_claims) on small synthetic tables:
each verdict follows its number and its interval (holds or fails only when the interval
is on one side of the threshold, else inconclusive), and scale and missing runs make it
not measurable."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from paltest.testbed import line_claims as lc
from paltest.testbed.claims import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURABLE

SEEDS = range(5)


def _lines(label="pal", n=40, convex=40, pal_min=1.0, s_min=1.0, angle=90.0, seeds=SEEDS,
           full_s_min=0.8, step=1.0, problem="p", full_shape="convex"):
    """``n`` lines per seed; a value may be a list (one per line of a seed)."""
    parts = []
    for seed in seeds:
        parts.append(pd.DataFrame({
            "problem": problem, "label": label, "seed": seed, "step_index": range(n),
            "moved": True, "shape": ["convex"] * convex + ["nonconvex"] * (n - convex),
            "pal_min": pal_min, "s_min": s_min, "lsq_residual": 0.01, "angle": angle,
            "full_s_min": full_s_min, "full_shape": full_shape, "step": step}))
    return pd.concat(parts, ignore_index=True)


def _verdicts(claims):
    return {c.id.split("/")[0]: c.verdict for c in claims}


def test_figure1_convexity_and_parabola():
    ok = lc.evaluate(1, _lines(convex=36, pal_min=1.1), None, ["p"])
    assert _verdicts(ok) == {"1-convex": HOLDS, "1-parabola": HOLDS}
    convex = ok[0].tests[0]
    assert convex.interval.estimate == pytest.approx(0.9)
    assert 0.8 < convex.interval.low < 0.9 < convex.interval.high  # lines resampled
    assert convex.interval.n_seeds == 5 and convex.interval.n_items == 200
    bad = _verdicts(lc.evaluate(1, _lines(convex=28, pal_min=1.3), None, ["p"]))
    assert bad == {"1-convex": FAILS, "1-parabola": FAILS}
    # 0.8 convex, half the lines 0.1 and half 0.3 away: both intervals straddle
    mixed = lc.evaluate(1, _lines(convex=32, pal_min=[1.1, 1.3] * 20), None, ["p"])
    assert _verdicts(mixed) == {"1-convex": INCONCLUSIVE, "1-parabola": INCONCLUSIVE}
    assert "straddles >= 0.8" in mixed[0].reason
    edge = _lines().assign(shape="edge", lo=-0.5, hi=6144.0, extensions=6)
    c = lc.evaluate(1, edge, None, ["p"])
    assert {x.verdict for x in c} == {NOT_MEASURABLE}
    assert "6144" in c[0].reason and "keeps falling" in c[0].reason
    quick = lc.evaluate(1, _lines(), None, ["p"], full_scale=False)
    assert {c.verdict for c in quick} == {NOT_MEASURABLE} and "reduced" in quick[0].reason
    assert quick[0].tests  # the numbers and intervals are still given


def test_one_seed_gives_no_interval_and_no_verdict():
    c = lc.evaluate(1, _lines(seeds=[0], convex=40), None, ["p"])[0]
    assert c.verdict == INCONCLUSIVE and math.isnan(c.tests[0].interval.low)
    assert "no interval from 1 seed" in c.reason


def test_figure2_angles():
    # without alpha the parabola stops short (ratio 0.7) and the angle is above 90
    lines = pd.concat([_lines(angle=95.0), _lines("pal-no-alpha", angle=110.0, pal_min=0.7)])
    assert _verdicts(lc.evaluate(2, lines, None, ["p"])) == {
        "2-angle": HOLDS, "2-alpha": HOLDS, "2-narrow": HOLDS}
    # alpha overshoots (60: beyond the minimum) where the parabola did not stop short
    lines = pd.concat([_lines(angle=60.0), _lines("pal-no-alpha", angle=80.0, pal_min=1.1)])
    c = lc.evaluate(2, lines, None, ["p"])
    assert _verdicts(c) == {"2-angle": FAILS, "2-alpha": FAILS, "2-narrow": FAILS}
    assert c[0].numbers["median_angle_with_alpha"] == 60.0
    assert c[0].numbers["fraction_beyond_minimum_with_alpha"] == 1.0
    assert c[0].numbers["fraction_beyond_minimum_without_alpha"] == 1.0
    # the threshold is |90 - angle|: 10 degrees on either side of 90
    near = pd.concat([_lines(angle=99.0), _lines("pal-no-alpha", angle=101.0)])
    assert _verdicts(lc.evaluate(2, near, None, ["p"]))["2-angle"] == HOLDS
    far = pd.concat([_lines(angle=79.0), _lines("pal-no-alpha", angle=102.0)])
    assert _verdicts(lc.evaluate(2, far, None, ["p"])) == {
        "2-angle": FAILS, "2-alpha": HOLDS, "2-narrow": FAILS}
    # the same lines with and without alpha (every step clipped): paired, no difference
    same = pd.concat([_lines(angle=[150.0, 160.0] * 20),
                      _lines("pal-no-alpha", angle=[150.0, 160.0] * 20)])
    alpha = lc.evaluate(2, same, None, ["p"])[1]
    assert alpha.verdict == FAILS and alpha.tests[0].interval.high == 0.0
    only = _verdicts(lc.evaluate(2, _lines(angle=85.0), None, ["p"]))
    assert only == {"2-angle": HOLDS, "2-alpha": NOT_MEASURABLE, "2-narrow": NOT_MEASURABLE}


def _runs(pal_loss, exact_loss, pal_acc, exact_acc):
    n = len(pal_loss)
    return pd.DataFrame({"problem": "p", "label": ["pal"] * n + ["exact"] * n,
                         "seed": list(range(n)) * 2,
                         "final_train_loss": list(pal_loss) + list(exact_loss),
                         "final_test_accuracy": list(pal_acc) + list(exact_acc)})


def test_figure6_paired_by_seed():
    lines = pd.concat([_lines(), _lines("exact")])
    runs = _runs([0.1] * 5, [0.3, 0.2, 0.25, 0.3, 0.4], [0.9] * 5, [0.8, 0.85, 0.8, 0.8, 0.8])
    c = lc.evaluate(6, lines, runs, ["p"])
    assert _verdicts(c) == {"6-loss": HOLDS, "6-test": HOLDS}
    assert c[0].tests[0].interval.estimate == pytest.approx(
        np.mean(np.log10([3, 2, 2.5, 3, 4])))
    assert c[0].numbers["pal_better_share"] == 1.0
    # better on 3 of 5 seeds by little, worse on 2 by as much: no verdict either way
    runs = _runs([0.1] * 5, [0.11, 0.09, 0.11, 0.09, 0.11], [0.9] * 5,
                 [0.89, 0.91, 0.89, 0.91, 0.89])
    c = lc.evaluate(6, lines, runs, ["p"])
    assert _verdicts(c) == {"6-loss": INCONCLUSIVE, "6-test": INCONCLUSIVE}
    assert c[1].numbers["pal_better"] == [True, False, True, False, True]
    runs = _runs([0.3] * 5, [0.1] * 5, [0.8] * 5, [0.9] * 5)
    assert set(_verdicts(lc.evaluate(6, lines, runs, ["p"])).values()) == {FAILS}
    v = _verdicts(lc.evaluate(6, lines, runs[runs["label"] == "pal"], ["p"]))
    assert set(v.values()) == {NOT_MEASURABLE}


def test_figure7_estimator_and_smaller():
    far = _lines(n=8, convex=8, full_s_min=0.6, s_min=1.0, step=1.0)  # delta 0.4, full before batch
    assert _verdicts(lc.evaluate(7, far, None, ["p"])) == {"7-estimator": HOLDS,
                                                           "7-smaller": HOLDS}
    near = _lines(n=8, convex=8, full_s_min=1.1, s_min=1.0, step=1.0)  # delta 0.1, full after
    c = lc.evaluate(7, near, None, ["p"])
    assert _verdicts(c) == {"7-estimator": FAILS, "7-smaller": FAILS}
    assert c[0].numbers["median_rel_distance"] == pytest.approx(0.1)
    assert c[0].tests[0].interval.n_items == 40
    edge = _lines(n=8, convex=8, full_shape="edge")
    c = lc.evaluate(7, edge, None, ["p"])
    assert {x.verdict for x in c} == {NOT_MEASURABLE} and "full-loss" in c[0].reason


def test_report_markdown_and_arguments():
    claims = lc.evaluate(1, _lines(problem="mlp-digits"), None, ["mlp-digits"])
    md = lc.report_markdown(claims, "T", ["mlp-digits"])
    assert md.startswith("# T") and "mlp-digits: non-convex" in md and "1-convex" in md
    assert "| fraction of lines convex around an interior minimum | 1 [1, 1] | 5 seeds, " \
           "200 lines | >= 0.8 | holds |" in md
    with pytest.raises(ValueError, match="figure"):
        lc.evaluate(8, _lines(), None, ["p"])
