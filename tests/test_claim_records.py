"""Claims as records (paltest.testbed.claim_records): JSON both ways, the verdict with its
reason, and the comparison of committed claims with a rerun's."""

from __future__ import annotations

import json
import math

import pytest

from paltest.testbed import claim_records as cr
from paltest.testbed import uncertainty as unc


def _claim(est, lo, hi, threshold=0.0, op=">", cid="6-test/p"):
    t = unc.test("stat", unc.Interval(est, lo, hi, 0.95, "seeds", 20, 20), op, threshold)
    verdict, reason = cr.verdict_of([t])
    return cr.Claim(cid, 6, "p", "words", "test", verdict, reason, {"pal": {"seeds": [0]}},
                    [0], [t])


def test_json_round_trip_keeps_infinities_and_nan():
    c = _claim(unc.BIG * 2, 3.0, math.inf)
    doc = json.loads(json.dumps(c.to_json(), allow_nan=False))
    assert doc["tests"][0]["estimate"] == "inf" and doc["tests"][0]["high"] == "inf"
    back = cr.from_json(doc)
    assert back.tests[0].interval.estimate == math.inf and back.verdict == cr.HOLDS
    assert cr.from_json(_claim(1.0, 0.5, 1.5).to_json()) == _claim(1.0, 0.5, 1.5)


def test_a_rerun_within_its_expected_range_agrees():
    committed = [_claim(0.004, 0.001, 0.007)]
    assert cr.compare(committed, committed) == []
    lo, hi = cr.rerun_range(committed[0].tests[0])
    assert lo == pytest.approx(0.004 - math.sqrt(2) * 0.003)
    assert hi == pytest.approx(0.004 + math.sqrt(2) * 0.003)
    # holds, but the threshold 0 is within 1 + sqrt(2) half-widths: borderline, and the
    # report says so
    assert cr.borderline(committed[0].tests[0]) and committed[0].verdict == cr.HOLDS
    assert committed[0].reason.startswith("borderline")
    assert "Note: borderline" in cr.to_markdown(committed)
    # a rerun estimate inside the range, its interval now across 0: holds -> inconclusive
    # on a borderline test is not a disagreement
    rerun = [_claim(0.0035, -0.0005, 0.007)]
    assert rerun[0].verdict == cr.INCONCLUSIVE and cr.compare(committed, rerun) == []
    far = _claim(0.5, 0.4, 0.6)
    assert not cr.borderline(far.tests[0]) and far.reason == ""


def test_disagreements_beyond_a_rerun():
    committed = [_claim(0.5, 0.4, 0.6)]
    far = cr.compare(committed, [_claim(0.8, 0.7, 0.9)])
    assert len(far) == 1 and "outside the range" in far[0]
    # the threshold 0 is far outside [0.36, 0.64]: a change of verdict is a disagreement
    moved = cr.compare(committed, [_claim(0.5, -0.1, 0.6)])
    assert moved and "no committed test was borderline" in moved[-1]
    reversed_ = cr.compare([_claim(0.004, 0.001, 0.007)], [_claim(-0.001, -0.002, -0.0005)])
    assert any("reversed" in m for m in reversed_)
    assert cr.compare(committed, []) == ["6-test/p: only in the committed claims"]


def test_verdict_reason_names_the_straddled_threshold():
    c = _claim(0.1, -0.1, 0.3)
    assert c.verdict == cr.INCONCLUSIVE and "straddles > 0" in c.reason
    assert "[-0.1, 0.3]" in c.reason and cr.interval_text(c.tests[0].interval) == \
        "0.1 [-0.1, 0.3]"
