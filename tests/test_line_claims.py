"""The claims of Sections 3 and 6 (paltest.testbed.line_claims) on small synthetic tables:
each verdict flips with its number, and scale and missing runs make it not measurable."""

from __future__ import annotations

import pandas as pd
import pytest

from paltest.testbed import line_claims as lc
from paltest.testbed.claims import FAILS, HOLDS, NOT_MEASURABLE


def _lines(label="pal", n=10, convex=10, pal_min=1.0, s_min=1.0, angle=90.0, seed=0,
           full_s_min=0.8, step=1.0, problem="p", full_shape="convex"):
    return pd.DataFrame({
        "problem": problem, "label": label, "seed": seed, "step_index": range(n),
        "moved": True, "shape": ["convex"] * convex + ["nonconvex"] * (n - convex),
        "pal_min": pal_min, "s_min": s_min, "lsq_residual": 0.01, "angle": angle,
        "full_s_min": full_s_min, "full_shape": full_shape, "step": step})


def _verdicts(claims):
    return {c.id.split("/")[0]: c.verdict for c in claims}


def test_figure1_convexity_and_parabola():
    ok = _verdicts(lc.evaluate(1, _lines(convex=9, pal_min=1.1), None, ["p"]))
    assert ok == {"1-convex": HOLDS, "1-parabola": HOLDS}
    bad = _verdicts(lc.evaluate(1, _lines(convex=7, pal_min=1.3), None, ["p"]))
    assert bad == {"1-convex": FAILS, "1-parabola": FAILS}
    edge = _lines().assign(shape="edge", lo=-0.5, hi=6144.0, extensions=6)
    c = lc.evaluate(1, edge, None, ["p"])
    assert {x.verdict for x in c} == {NOT_MEASURABLE}
    assert "6144" in c[0].reason and "keeps falling" in c[0].reason
    quick = lc.evaluate(1, _lines(), None, ["p"], full_scale=False)
    assert {c.verdict for c in quick} == {NOT_MEASURABLE} and "reduced" in quick[0].reason


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
    only = _verdicts(lc.evaluate(2, _lines(angle=85.0), None, ["p"]))
    assert only == {"2-angle": HOLDS, "2-alpha": NOT_MEASURABLE, "2-narrow": NOT_MEASURABLE}


def test_figure6_paired_by_seed():
    runs = pd.DataFrame({"problem": "p", "label": ["pal", "pal", "exact", "exact"],
                         "seed": [0, 1, 0, 1], "final_train_loss": [0.1, 0.2, 0.3, 0.15],
                         "final_test_accuracy": [0.9, 0.9, 0.8, 0.8]})
    lines = pd.concat([_lines(), _lines("exact")])
    v = _verdicts(lc.evaluate(6, lines, runs, ["p"]))
    assert v == {"6-loss": FAILS, "6-test": HOLDS}  # seed 1: 0.2 > 0.15
    runs.loc[1, "final_train_loss"] = 0.1
    assert _verdicts(lc.evaluate(6, lines, runs, ["p"]))["6-loss"] == HOLDS
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
    edge = _lines(n=8, convex=8, full_shape="edge")
    c = lc.evaluate(7, edge, None, ["p"])
    assert {x.verdict for x in c} == {NOT_MEASURABLE} and "full-loss" in c[0].reason


def test_report_markdown_and_arguments():
    claims = lc.evaluate(1, _lines(problem="mlp-digits"), None, ["mlp-digits"])
    md = lc.report_markdown(claims, "T", ["mlp-digits"])
    assert md.startswith("# T") and "mlp-digits: non-convex" in md and "1-convex" in md
    with pytest.raises(ValueError, match="figure"):
        lc.evaluate(8, _lines(), None, ["p"])
