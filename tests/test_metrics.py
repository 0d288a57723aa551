"""Run measures on hand-made tables: resolution clip, selection score, targets, epochs to
a level, stopped optimizers, the log-linear fit, and the per-configuration summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from paltest.testbed import metrics


def test_clip_level_is_ten_resolutions():
    e32 = float(np.finfo(np.float32).eps)
    assert metrics.clip_level(0.5, 2.0, "float32") == pytest.approx(
        10 * (e32 * 0.5 + e32**2 * 2.0), rel=1e-15)
    assert metrics.clip_level(None, 1.0, "float64") == 10 * 2.0**-104
    assert metrics.clip_level(0.0, float("nan"), "float64") == 0.0


def test_score_is_the_mean_log_gap_clipped_and_inf_when_diverged():
    fl = 0.01
    c = metrics.clip_level(fl, 1.0, "float32")
    losses = [1.0, fl + 0.1, fl + 1e-3, fl + c / 7]  # the last gap is below the clip
    expected = np.mean(np.log10([0.1, 1e-3, c]))
    assert metrics.score(losses, fl, "float32") == pytest.approx(expected, rel=1e-12)
    assert metrics.score([1.0, float("nan"), 0.1], None, "float64") == math.inf
    assert metrics.score([1.0, 0.5, float("inf")], None, "float64") == math.inf
    assert metrics.score([1.0], None, "float64") == math.inf  # no epoch after 0


def test_final_losses_that_tie_at_machine_precision_give_equal_scores():
    # two runs that reach the float32 rounding floor at different values (2.85e-15 and
    # 3.08e-15, as PAL's rank-10 configurations do) and took the same path there
    path = [0.7, 1e-3, 1e-8, 1e-12]
    a = metrics.score(path + [2.85e-15] * 20, 0.0, "float32")
    b = metrics.score(path + [3.08e-15] * 20, 0.0, "float32")
    assert a == b
    # a run that gets there two epochs earlier scores lower, by more than a tie
    quick = [0.7, 1e-6, 2.9e-15, 2.9e-15] + [2.9e-15] * 20
    fast = metrics.score(quick, 0.0, "float32")
    rounding = (metrics.score_rounding(quick, 0.0, "float32")
                + metrics.score_rounding(path + [2.85e-15] * 20, 0.0, "float32"))
    assert fast < a - rounding


def test_score_rounding_is_tiny_far_from_the_floor_and_bounded_near_it():
    far = [0.7, 0.69, 0.68, 0.67]
    assert 0 < metrics.score_rounding(far, None, "float32") < 1e-6
    at_floor = [0.7] + [1e-20] * 10  # every term at the clip
    assert metrics.score_rounding(at_floor, 0.0, "float32") == pytest.approx(
        metrics.MAX_ROUNDING, rel=1e-6)
    assert metrics.score_rounding([1.0, float("nan")], None, "float64") == 0.0
    # two runs whose scores differ by less than their roundings: only rounding apart
    a = [0.7, 1e-3] + [2.85e-15] * 10
    b = [0.7, 1e-3 * (1 + 1e-7)] + [3.08e-15] * 10
    sa, sb = (metrics.score(x, 0.0, "float32") for x in (a, b))
    ra, rb = (metrics.score_rounding(x, 0.0, "float32") for x in (a, b))
    assert abs(sa - sb) <= ra + rb


def test_targets():
    assert metrics.default_target(0.1) == metrics.Target("floor", 0.02)
    assert metrics.default_target(0.0) == metrics.Target("precision")
    assert metrics.default_target(None) is None
    assert metrics.Target("floor", 0.02).threshold(0.5, 1e-9) == pytest.approx(0.51)
    assert metrics.Target("precision").threshold(0.0, 1e-13) == 1e-13
    assert metrics.Target("loss", 1e-3).threshold(None, 0.0) == 1e-3
    with pytest.raises(ValueError, match="kind"):
        metrics.Target("speed", 1.0)
    with pytest.raises(ValueError, match="value"):
        metrics.Target("loss")
    with pytest.raises(ValueError, match="floor"):
        metrics.Target("floor", 0.02).threshold(0.0, 1.0)


def test_epochs_to_and_stopped_epoch():
    assert metrics.epochs_to([1.0, 0.5, 0.2, 0.1], 0.2) == 2.0
    assert metrics.epochs_to([1.0, float("nan"), 0.1], 0.5) == 2.0
    assert metrics.epochs_to([0.2, 0.5, 0.9], 0.9, above=True) == 2.0
    assert metrics.epochs_to([1.0, 0.9], 0.1) == math.inf
    nan = float("nan")
    assert metrics.stopped_epoch([nan, 1.0, 0.0, 0.0]) == 2.0
    assert math.isnan(metrics.stopped_epoch([nan, 0.0, 1.0]))
    # with per-step counts: epoch 2 has some zero steps only, so it still moved
    assert metrics.stopped_epoch([nan, 1.0, 0.5, 0.0], lr_zero=[0, 0, 4, 8],
                                 n_steps=[0, 8, 16, 24]) == 3.0


def test_log_linear_fit():
    slope, r2 = metrics.log_linear_fit(10.0 ** -np.arange(6.0), 0, 5)
    assert slope == pytest.approx(-1.0) and r2 == pytest.approx(1.0)
    slope, r2 = metrics.log_linear_fit([1.0, 1e-8, 1e-8, 1e-8, 1e-8], 0, 4)
    assert r2 < 0.6  # a drop then a plateau is not linear
    assert math.isnan(metrics.log_linear_fit([1.0, 0.1], 0, 1)[1])


def _runs(configs, seeds, epochs=3):
    rows = []
    for i, (opt, hp) in enumerate(configs):
        for s in seeds:
            for e in range(epochs + 1):
                rows.append({"run_id": f"{i}-{s}", "problem": "mf-rank4", "optimizer": opt,
                             "seed": s, "dtype": "float64", "xp": "numpy", "batch_size": 100,
                             "epochs": epochs, "epoch": e, **{f"hp_{k}": v for k, v in hp.items()},
                             "train_loss": 0.01 * (1 + 10.0 ** -(e * (i + 1)) + 0.01 * s),
                             "lr_mean": nan if e == 0 else 1.0, "n_fun": 2 * 8 * e,
                             "n_grad": 8 * e, "n_steps": 8 * e, "lr_zero": 0,
                             "nonfinite": 0, "step_time": 0.0 if e == 0 else 0.5})
    return pd.DataFrame(rows)


nan = float("nan")


def test_summary_counts_seeds_per_configuration_not_per_optimizer():
    table = _runs([("pal", {"mu": 0.1}), ("pal", {"mu": 1.0}), ("sgd", {"lr": 0.1})],
                  seeds=(0, 1, 2, 3))
    s = metrics.summary_table(table, {"mf-rank4": 0.01})
    assert len(s) == 3
    assert list(s["n_seeds"]) == [4, 4, 4]
    pal = s[s["optimizer"] == "pal"].set_index("hp_mu")
    # the means are over one configuration's seeds only
    for mu, i in ((0.1, 0), (1.0, 1)):
        expected = np.mean([0.01 * (1 + 10.0 ** -(3 * (i + 1)) + 0.01 * sd) for sd in range(4)])
        assert pal.loc[mu, "final_loss_mean"] == pytest.approx(expected, rel=1e-12)
    assert s["evaluations_mean"].tolist() == [72.0] * 3 and s["seconds_mean"].tolist() == [1.5] * 3
    assert (s["target"] == "L <= (1 + 0.02) L*").all()
    text = metrics.format_summary(s)
    assert "mu" in text.splitlines()[0] and "lr" in text.splitlines()[0]
    assert text.count("\n") == 3  # a header and one line per configuration


def test_run_table_gap_target_and_accuracy():
    table = _runs([("pal", {"mu": 1.0})], seeds=(0,)).assign(
        test_accuracy=[0.5, 0.9, 0.99, 0.995])
    r = metrics.run_table(table, {"mf-rank4": 0.01}, accuracy_targets={"mf-rank4": 0.99})
    row = r.iloc[0]
    assert row["final_gap"] == pytest.approx(0.01 * 1e-3, rel=1e-9)
    assert row["final_rel_gap"] == pytest.approx(1e-3, rel=1e-9)
    assert row["epochs_to_target"] == 2.0  # 1.1 L* at epoch 1, 1.01 L* <= 1.02 L* at 2
    assert row["epochs_to_accuracy"] == 2.0 and row["test_accuracy"] == 0.995
    assert math.isnan(row["stopped_epoch"]) and row["nonfinite"] == 0


def test_config_label():
    assert metrics.config_label({"hp_mu": 0.1, "hp_beta": 0.4}, ["mu", "beta"]) == \
        "mu=0.1, beta=0.4"
    assert metrics.config_label({"hp_mu": nan}, ["mu"]) == ""
