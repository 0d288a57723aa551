"""Each claim of Section 7 computed on hand-made run tables: when it holds, when it does
not, when it cannot be measured, and the report's files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from paltest.testbed import claims

E32 = float(np.finfo(np.float32).eps)


def _table(curves, problem, *, seeds=(0, 1, 2), role="final", accuracy=None):
    """``curves[optimizer](seed) -> per-epoch losses``; one run per optimizer and seed."""
    rows = []
    for opt, fn in curves.items():
        for s in seeds:
            loss = fn(s)
            for e, v in enumerate(loss):
                row = {"run_id": f"{problem}-{opt}-{s}-{role}", "problem": problem,
                       "optimizer": opt, "seed": s, "dtype": "float32", "epoch": e,
                       "train_loss": float(v), "role": role}
                if accuracy is not None:
                    row["test_accuracy"] = accuracy[opt](s)[e]
                rows.append(row)
    return pd.DataFrame(rows)


def _floor_curve(floor, reach):
    """Gap 1 at epoch 0, halving each epoch, within 2 % of the floor from epoch ``reach``."""
    def fn(seed):
        gaps = [max(0.5 ** e, 0.0) for e in range(12)]
        gaps = [g if e < reach else 0.01 * floor for e, g in enumerate(gaps)]
        return [floor + g for g in gaps]
    return fn


def _by_id(result):
    return {c.id: c for c in result}


def test_floor_claim_holds_when_pal_and_sls_are_faster_and_reports_final_gaps():
    fl = 0.1
    curves = {"pal": _floor_curve(fl, 3), "sls": _floor_curve(fl, 4),
              "sgd": _floor_curve(fl, 6), "adam": _floor_curve(fl, 8)}
    t = _table(curves, "mf-rank4")
    c = _by_id(claims.evaluate(8, t, {"mf-rank4": fl}))["8-floor/mf-rank4"]
    assert c.verdict == claims.HOLDS
    assert c.numbers["pal"]["epochs_to_target_median"] == 3.0
    assert c.numbers["adam"]["epochs_to_target_median"] == 8.0
    assert c.numbers["sgd"]["final_rel_gap"] == pytest.approx([0.01] * 3)
    assert c.seeds == [0, 1, 2]


def test_floor_claim_fails_when_sgd_is_as_fast():
    fl = 0.1
    curves = {"pal": _floor_curve(fl, 3), "sls": _floor_curve(fl, 4),
              "sgd": _floor_curve(fl, 4), "adam": _floor_curve(fl, 8)}
    c = _by_id(claims.evaluate(8, _table(curves, "mf-rank1"), {"mf-rank1": fl}))[
        "8-floor/mf-rank1"]
    assert c.verdict == claims.FAILS


def test_floor_claim_not_measurable_without_sgd_or_at_reduced_scale():
    fl = 0.1
    curves = {"pal": _floor_curve(fl, 3), "sls": _floor_curve(fl, 4),
              "adam": _floor_curve(fl, 8)}
    c = _by_id(claims.evaluate(8, _table(curves, "mf-rank4"), {"mf-rank4": fl}))[
        "8-floor/mf-rank4"]
    assert c.verdict == claims.NOT_MEASURABLE and "sgd" in c.reason
    curves["sgd"] = _floor_curve(fl, 6)
    c = _by_id(claims.evaluate(8, _table(curves, "mf-rank4"), {"mf-rank4": fl},
                               full_scale=False))["8-floor/mf-rank4"]
    assert c.verdict == claims.NOT_MEASURABLE and "reduced scale" in c.reason
    assert c.numbers["pal"]["epochs_to_target_median"] == 3.0  # numbers still reported
    # the problem missing entirely
    c = _by_id(claims.evaluate(8, _table(curves, "mf-rank4"), {"mf-rank4": fl}))[
        "8-floor/mf-rank1"]
    assert c.verdict == claims.NOT_MEASURABLE


def test_floor_claim_not_measurable_when_no_optimizer_gets_there():
    fl = 0.1
    never = {o: (lambda seed: [fl + 1.0] * 12) for o in ("pal", "sls", "sgd", "adam")}
    c = _by_id(claims.evaluate(8, _table(never, "mf-rank4"), {"mf-rank4": fl}))[
        "8-floor/mf-rank4"]
    assert c.verdict == claims.NOT_MEASURABLE and "no optimizer" in c.reason


def _linear(rate, floor_at=None, plateau=None):
    """10**(-rate e) until machine precision, then flat; ``plateau`` stops it early."""
    def fn(seed):
        out = []
        for e in range(40):
            v = 0.7 * 10.0 ** (-rate * e)
            if plateau is not None:
                v = max(v, plateau)
            out.append(max(v, 2e-15))
        return out
    return fn


def test_precision_claim_holds_for_linear_convergence_to_machine_precision():
    curves = {"pal": _linear(1.0), "sls": _linear(0.6), "sgd": _linear(0.3)}
    c = _by_id(claims.evaluate(8, _table(curves, "mf-rank10"), {"mf-rank10": 0.0}))[
        "8-precision/mf-rank10"]
    assert c.verdict == claims.HOLDS
    pal = c.numbers["pal"]
    # C = 10 eps^2 L0: reached when 0.7 * 10**-e <= 10 * eps^2 * 0.7, i.e. e >= 13
    assert pal["clip"][0] == pytest.approx(10 * E32**2 * 0.7)
    assert pal["epochs_to_precision_median"] == math.ceil(-math.log10(10 * E32**2))
    assert pal["slope_decades_per_epoch"][0] == pytest.approx(-1.0, rel=1e-6)
    assert pal["r2"][0] == pytest.approx(1.0)


def test_precision_claim_fails_on_a_plateau_above_precision_or_a_bent_curve():
    curves = {"pal": _linear(1.0), "sls": _linear(0.6, plateau=1e-9)}
    c = _by_id(claims.evaluate(8, _table(curves, "mf-true"), {"mf-true": 0.0}))[
        "8-precision/mf-true"]
    assert c.verdict == claims.FAILS
    assert all(math.isinf(e) for e in c.numbers["sls"]["epochs_to_target"])

    def bent(seed):  # a fast drop, a long crawl, then the last drop: not linear
        return [0.7, 1e-9, 9e-10, 8e-10, 7e-10, 6e-10, 5e-10, 4e-10, 3e-10, 2e-15, 2e-15]
    curves = {"pal": _linear(1.0), "sls": bent}
    c = _by_id(claims.evaluate(8, _table(curves, "mf-true"), {"mf-true": 0.0}))[
        "8-precision/mf-true"]
    assert c.verdict == claims.FAILS and min(c.numbers["sls"]["r2"]) < claims.LINEAR_R2


def _mushrooms(reach_loss, reach_acc):
    def loss(seed):
        return [0.7 * 10.0 ** (-4 * e / reach_loss) for e in range(36)]

    def acc(seed):
        return [0.5 if e < reach_acc else 0.995 for e in range(36)]
    return loss, acc


def test_mushrooms_claim_needs_both_the_loss_and_the_accuracy():
    pal, pal_acc = _mushrooms(10, 5)
    sls, sls_acc = _mushrooms(20, 8)
    t = _table({"pal": pal, "sls": sls}, "mushrooms",
               accuracy={"pal": pal_acc, "sls": sls_acc})
    c = _by_id(claims.evaluate(9, t, {}))["9-mushrooms/mushrooms"]
    assert c.verdict == claims.HOLDS
    # 0.7 * 10**(-0.4 e) <= 1e-3 from e = 7.1 on
    assert c.numbers["pal"]["epochs_to_loss_median"] == 8.0
    assert c.numbers["sls"]["epochs_to_accuracy_median"] == 8.0
    never, _ = _mushrooms(200, 5)
    t = _table({"pal": pal, "sls": never}, "mushrooms",
               accuracy={"pal": pal_acc, "sls": sls_acc})
    assert _by_id(claims.evaluate(9, t, {}))["9-mushrooms/mushrooms"].verdict == claims.FAILS


def test_ijcnn_claim_is_paired_by_seed_for_the_selected_and_the_default_pal():
    def final(values):
        return lambda seed: [0.7, values[seed]]
    seeds = range(5)
    selected = _table({"pal": final([0.10, 0.11, 0.12, 0.10, 0.11]),
                       "sls": final([0.12, 0.12, 0.13, 0.12, 0.12])}, "ijcnn", seeds=seeds)
    # the default PAL: above SLS on two seeds, below on three: no verdict either way
    default = _table({"pal": final([0.10, 0.13, 0.12, 0.13, 0.11])}, "ijcnn",
                     role="reference", seeds=seeds)
    by = _by_id(claims.evaluate(9, pd.concat([selected, default]), {}))
    sel, dft = by["9-ijcnn/ijcnn/selected"], by["9-ijcnn/ijcnn/default"]
    assert sel.verdict == claims.HOLDS and sel.tests[0].interval.low > 0
    assert sel.numbers["pal_below_sls"] == [True] * 5
    assert dft.verdict == claims.INCONCLUSIVE and "straddles > 0" in dft.reason
    assert dft.numbers["pal_below_sls"] == [True, False, True, False, True]
    assert dft.numbers["pal_below_sls_share"] == pytest.approx(0.6)
    worse = _table({"pal": final([0.2] * 5)}, "ijcnn", role="reference", seeds=seeds)
    by = _by_id(claims.evaluate(9, pd.concat([selected, worse]), {}))
    assert by["9-ijcnn/ijcnn/default"].verdict == claims.FAILS


def test_claims_of_problems_the_figure_did_not_run_are_left_out():
    pal, pal_acc = _mushrooms(10, 5)
    t = _table({"pal": pal, "sls": pal}, "mushrooms", accuracy={"pal": pal_acc, "sls": pal_acc})
    ids = [c.id for c in claims.evaluate(9, t, {}, problems=["mushrooms"])]
    assert ids == ["9-mushrooms/mushrooms"]  # no "9-ijcnn/..." (issue 28)
    assert len(claims.evaluate(9, t, {})) == 3


def test_verdict_needs_the_interval_on_one_side_of_the_threshold():
    """8-floor with SGD as fast as PAL on some seeds: the margin's interval straddles 0."""
    fl = 0.1
    reach = {0: 3, 1: 6, 2: 3, 3: 7, 4: 3}
    curves = {"pal": _floor_curve(fl, 4), "sls": _floor_curve(fl, 4),
              "sgd": lambda seed: _floor_curve(fl, reach[seed])(seed),
              "adam": _floor_curve(fl, 8)}
    c = _by_id(claims.evaluate(8, _table(curves, "mf-rank4", seeds=range(5)),
                               {"mf-rank4": fl}))["8-floor/mf-rank4"]
    iv = c.tests[0].interval
    assert c.verdict == claims.INCONCLUSIVE and iv.low <= 0 < iv.high
    assert iv.estimate == -1.0 and iv.resampled == "seeds" and iv.n_seeds == 5


def test_report_is_json_and_markdown():
    fl = 0.1
    curves = {"pal": _floor_curve(fl, 3), "sls": _floor_curve(fl, 4),
              "sgd": lambda seed: [fl + 1.0] * 12, "adam": _floor_curve(fl, 8)}
    result = claims.evaluate(8, _table(curves, "mf-rank4"), {"mf-rank4": fl})
    text = json.dumps([c.to_json() for c in result], allow_nan=False)  # no bare inf/nan
    assert '"inf"' in text  # sgd never comes within 2 %
    md = claims.to_markdown(result, "Figure 8")
    assert md.startswith("# Figure 8") and "## 8-floor/mf-rank4: **holds**" in md
    assert "never" in md and "| pal |" in md
    with pytest.raises(ValueError, match="figure"):
        claims.evaluate(7, _table(curves, "mf-rank4"), {})
