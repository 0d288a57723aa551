"""The figure protocols as data: plans, the one-seed selection rule, final losses."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from paltest import experiments


def test_figure8_protocol():
    p = experiments.plan(8)
    assert p.problems == ("mf-true", "mf-rank1", "mf-rank4", "mf-rank10")
    assert (p.epochs, p.batch_size, p.seeds, p.tune_seed) == (50, 100, (0, 1, 2, 3, 4), 0)
    assert p.optimizers == ("pal", "sls", "exact", "sgd", "adam")
    assert p.grids["pal"] == {"mu": [0.1, 1.0], "alpha": [1.0, 1 / 0.6], "beta": [0.0, 0.4]}
    assert p.grids["sgd"] == {"lr": [0.01, 0.1, 1.0]}
    assert p.grids["adam"] == {"lr": [1e-3, 1e-2, 1e-1]}
    assert "sls" not in p.grids and "exact" not in p.grids
    assert p.problem_options == {"xp": "numpy", "dtype": "float32"}


def test_figure9_protocol_and_quick_subset():
    p = experiments.plan(9)
    assert p.problems == ("mushrooms", "ijcnn") and p.epochs == 35
    q = experiments.plan(9, quick=True, problems=["mushrooms"], dtype="float64")
    assert q.epochs == 2 and q.seeds == (0, 1)
    assert q.options("mushrooms") == {"xp": "numpy", "dtype": "float64", "n_rows": 500}
    assert "n_rows" not in experiments.plan(8, quick=True).options("mf-rank4")
    # full scale stores ijcnn's float32 kernels: budget above 3.9 GB, below 8 GB
    budget = p.options("ijcnn")["memory_budget"]
    assert 28_000**2 * 4 + 7_000 * 28_000 * 4 < budget < 8e9
    assert "memory_budget" not in experiments.plan(8).options("mf-rank4")
    mine = experiments.plan(9, problem_options={"memory_budget": 1e9})
    assert mine.options("ijcnn")["memory_budget"] == 1e9


def test_overrides_and_other_optimizers():
    p = experiments.plan(8, optimizers=["pal", "rmsprop"], seeds=[3, 1], epochs=7)
    assert p.optimizers == ("pal", "rmsprop") and p.seeds == (3, 1) and p.tune_seed == 3
    assert set(p.grids) == {"pal"} and p.epochs == 7
    assert experiments.plan(8, seeds=2).seeds == (0, 1)


@pytest.mark.parametrize("kwargs, word", [
    ({"figure": 7}, "figure"), ({"optimizers": ["nope"]}, "optimizers"),
    ({"problems": ["mushrooms"]}, "problems"), ({"seeds": 0}, "seeds"),
    ({"seeds": [-1]}, "seeds"), ({"epochs": 0}, "epochs"), ({"dtype": "float16"}, "dtype"),
])
def test_plan_errors_name_the_argument(kwargs, word):
    kwargs = {"figure": 8, **kwargs}
    with pytest.raises(ValueError, match=word):
        experiments.plan(kwargs.pop("figure"), **kwargs)


def _grid(losses):
    rows = []
    for i, loss in enumerate(losses):
        for e, value in ((0, 1.0), (3, loss)):
            rows.append({"run_id": f"r{i}", "epoch": e, "train_loss": value,
                         "hp_lr": [0.01, 0.1, 1.0][i]})
    return pd.DataFrame(rows)


def test_select_lowest_final_loss_nonfinite_is_worst():
    best, outcome = experiments.select(_grid([0.5, float("nan"), 0.2]), ["lr"])
    assert best == {"lr": 1.0}
    assert [o["final_train_loss"] for o in outcome] == [0.5, None, 0.2]
    best, _ = experiments.select(_grid([float("inf"), 0.3, 0.3]), ["lr"])
    assert best == {"lr": 0.1}  # ties: first in grid order
    with pytest.raises(ValueError, match="grid_runs"):
        experiments.select(_grid([0.1]).iloc[:0], ["lr"])


def test_final_losses_mean_min_max_over_seeds():
    rows = [{"run_id": f"{s}", "problem": "p", "optimizer": "pal", "seed": s, "epoch": e,
             "train_loss": float(s + 1) if e == 2 else 9.0} for s in range(3) for e in (0, 2)]
    fl = experiments.final_losses(pd.DataFrame(rows)).loc[("p", "pal")]
    assert (fl["mean"], fl["min"], fl["max"], fl["n_seeds"]) == (2.0, 1.0, 3.0, 3)


def test_floors_of_the_matrix_factorization_panels():
    fl = experiments.floors(["mf-rank1", "mf-rank4", "mf-rank10", "mushrooms"])
    assert fl["mf-rank1"] == pytest.approx(0.1318, abs=1e-4)
    assert fl["mf-rank4"] == pytest.approx(0.00935, abs=1e-5)
    assert math.isclose(fl["mf-rank10"], 0.0, abs_tol=1e-20) and fl["mushrooms"] is None
