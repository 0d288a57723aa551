"""Figure functions on small synthetic tables: files, floor line, mean line, min-max band."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from paltest.testbed import figures, metrics  # noqa: E402

EPOCHS = 5


def _table(problems=("mf-rank4", "mf-rank10"), optimizers=("pal", "sgd"), seeds=(0, 1, 2),
           accuracy=False):
    rows = []
    rng = np.random.default_rng(0)
    for p in problems:
        for o in optimizers:
            for s in seeds:
                rate = rng.uniform(0.2, 0.6)
                for e in range(EPOCHS + 1):
                    row = {"run_id": f"{p}-{o}-{s}", "problem": p, "optimizer": o, "seed": s,
                           "epoch": e, "train_loss": float(rate**e),
                           "lr_mean": float("nan") if e == 0 else float(rng.uniform(0.5, 2)),
                           "hp_lr": 0.1}
                    if accuracy:
                        row["test_accuracy"] = float(1 - 0.5 * rate**e)
                    rows.append(row)
    return pd.DataFrame(rows)


def _axes_lines(ax, label):
    return [line for line in ax.get_lines() if line.get_label() == label]


def test_figure8_writes_png_and_pdf(tmp_path):
    fig, paths = figures.figure8(_table(), {"mf-rank4": 0.01, "mf-rank10": 0.0},
                                 tmp_path / "sub" / "fig8")
    assert sorted(p.name for p in paths) == ["fig8.pdf", "fig8.png"]
    for p in paths:
        assert p.stat().st_size > 1000
    assert (tmp_path / "sub" / "fig8.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "sub" / "fig8.pdf").read_bytes()[:4] == b"%PDF"
    axes = np.asarray(fig.axes).reshape(2, 2)  # rows: loss, lr; columns: rank 4, rank 10
    assert axes[0, 0].get_yscale() == "log" and axes[1, 0].get_yscale() == "log"
    assert axes[0, 0].get_title() == "rank 4"


def test_floor_problems_plot_the_gap_with_its_clip_and_target():
    table = _table()
    fig, _ = figures.figure8(table, {"mf-rank4": 0.01, "mf-rank10": 0.0})
    loss4, loss10 = fig.axes[0], fig.axes[1]
    assert loss4.get_ylabel() == "training loss gap L - L*"
    (line,) = _axes_lines(loss4, "PAL")
    per_seed = table[(table["problem"] == "mf-rank4") & (table["optimizer"] == "pal")]
    gaps = per_seed.assign(g=[max(v - 0.01, metrics.clip_level(0.01, 1.0, "float64"))
                              for v in per_seed["train_loss"]])
    np.testing.assert_allclose(line.get_ydata(), gaps.groupby("epoch")["g"].mean(), rtol=1e-12)
    (target,) = [ln for ln in loss4.get_lines() if ln.get_linestyle() == "--"
                 and ln.get_label().startswith("target")]
    assert np.all(np.asarray(target.get_ydata(), dtype=float) == 0.02 * 0.01)
    (clip,) = [ln for ln in loss4.get_lines() if ln.get_linestyle() == ":"]
    assert float(clip.get_ydata()[0]) == pytest.approx(metrics.clip_level(0.01, 1.0, "float64"))
    # a zero floor: the gap is the loss, no target line, the clip drawn
    assert not [ln for ln in loss10.get_lines() if ln.get_label().startswith("target")]
    assert [ln for ln in loss10.get_lines() if ln.get_linestyle() == ":"]
    # no floor at all (None): the loss, no clip
    fig, _ = figures.figure8(table, {"mf-rank4": None})
    assert fig.axes[0].get_ylabel() == "training loss"
    assert not [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == ":"]


def test_gap_below_the_clip_is_drawn_at_the_clip():
    table = _table(problems=("mf-rank10",), optimizers=("pal",), seeds=(0,))
    table.loc[table["epoch"] == EPOCHS, "train_loss"] = 1e-40
    fig, _ = figures.figure8(table, {"mf-rank10": 0.0})
    (line,) = _axes_lines(fig.axes[0], "PAL")
    assert line.get_ydata()[-1] == pytest.approx(metrics.clip_level(0.0, 1.0, "float64"))


def test_zero_learning_rates_are_marked_on_the_axis_floor():
    table = _table(problems=("mf-true",), optimizers=("exact",), seeds=(0, 1))
    steps = 8
    table["n_steps"] = table["epoch"] * steps
    table["lr_zero"] = 0
    table.loc[table["epoch"] >= 3, "lr_mean"] = 0.0  # stopped from epoch 3, both seeds
    table.loc[table["epoch"] >= 3, "lr_zero"] = steps
    table.loc[(table["epoch"] == 2) & (table["seed"] == 0), "lr_zero"] = 3  # some steps
    fig, _ = figures.figure8(table, {"mf-true": 0.0})
    lr_ax = fig.axes[1]
    marks = [ln for ln in lr_ax.get_lines() if ln.get_marker() == "v"]
    filled = [ln for ln in marks if ln.get_markerfacecolor() != "none"]
    hollow = [ln for ln in marks if ln.get_markerfacecolor() == "none"]
    assert [list(ln.get_xdata()) for ln in filled] == [[3.0, 4.0, 5.0]]
    assert [list(ln.get_xdata()) for ln in hollow] == [[2.0]]
    assert figures.ZERO_LR in [t.get_text() for t in fig.legends[0].get_texts()]
    # no zero learning rate: no marks, no legend entry
    fig, _ = figures.figure8(_table(), {})
    assert not [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "v"]
    assert figures.ZERO_LR not in [t.get_text() for t in fig.legends[0].get_texts()]


@pytest.mark.parametrize("x, column", [("evaluations", None), ("seconds", "step_time")])
def test_x_axis_evaluations_and_seconds(x, column):
    table = _table(problems=("mf-rank4",), optimizers=("pal",), seeds=(0, 1))
    table["n_fun"] = table["epoch"] * 16 + table["seed"] * 2
    table["n_grad"] = table["epoch"] * 8
    table["step_time"] = np.where(table["epoch"] == 0, 0.0, 0.25)
    fig, _ = figures.figure8(table, {"mf-rank4": 0.0}, x=x)
    (line,) = _axes_lines(fig.axes[0], "PAL")
    if x == "evaluations":  # the mean over seeds of n_fun + n_grad per epoch
        expected = [24.0 * e + 1.0 for e in range(EPOCHS + 1)]
    else:
        expected = [0.25 * e for e in range(EPOCHS + 1)]
    np.testing.assert_allclose(line.get_xdata(), expected)
    assert fig.axes[-1].get_xlabel() == figures.XAXES[x]
    with pytest.raises(ValueError, match="x:"):
        figures.figure8(table, {}, x="iterations")


def test_sweep_curves_colour_per_optimizer_style_per_configuration():
    t = _table(problems=("mf-rank4",), optimizers=("pal", "sgd"), seeds=(0,))
    t = pd.concat([t, t[t["optimizer"] == "pal"].assign(run_id="pal-mu1", hp_lr=float("nan"),
                                                        hp_mu=1.0)])
    t.loc[t["optimizer"] == "pal", "hp_mu"] = t.loc[t["optimizer"] == "pal", "hp_mu"].fillna(0.1)
    fig, _ = figures.curves(figures.label_runs(t), rows=("train_loss",))
    ax = fig.axes[0]
    pal = [ln for ln in ax.get_lines() if ln.get_label().startswith("PAL")]
    sgd = [ln for ln in ax.get_lines() if ln.get_label().startswith("SGD")]
    assert sorted(ln.get_label() for ln in pal) == ["PAL mu=0.1", "PAL mu=1"]
    assert len({ln.get_color() for ln in pal}) == 1  # one colour for the optimizer
    assert len({ln.get_linestyle() for ln in pal}) == 2  # a style per configuration
    assert sgd[0].get_color() != pal[0].get_color()


def test_quick_scale_is_in_the_title_and_the_file_metadata(tmp_path):
    from PIL import Image

    fig, paths = figures.figure8(_table(), {}, tmp_path / "f", note=" - quick scale",
                                 metadata={"scale": "quick"})
    assert fig._suptitle.get_text().endswith("quick scale")
    info = Image.open(tmp_path / "f.png").text
    assert info["Scale"] == "quick" and "quick scale" in info["Title"]
    assert b"quick" in (tmp_path / "f.pdf").read_bytes()


def test_mean_line_and_min_max_band():
    table = _table(problems=("mf-rank4",), optimizers=("pal",))
    fig, _ = figures.figure8(table, {"mf-rank4": 0.0})
    ax = fig.axes[0]
    per_seed = table.pivot(index="epoch", columns="seed", values="train_loss")
    (line,) = _axes_lines(ax, "PAL")
    np.testing.assert_allclose(line.get_ydata(), per_seed.mean(axis=1))
    (band,) = ax.collections
    verts = band.get_paths()[0].vertices
    for epoch in range(EPOCHS + 1):
        ys = verts[np.isclose(verts[:, 0], epoch), 1]
        lo, hi = per_seed.loc[epoch].min(), per_seed.loc[epoch].max()
        assert lo < hi or epoch == 0
        np.testing.assert_allclose([ys.min(), ys.max()], [lo, hi])
    b = figures.band(table, "train_loss")
    np.testing.assert_allclose(b["min"], per_seed.min(axis=1))
    np.testing.assert_allclose(b["max"], per_seed.max(axis=1))


def test_figure9_has_loss_accuracy_and_lr_rows(tmp_path):
    table = _table(problems=("mushrooms", "ijcnn"), accuracy=True)
    fig, paths = figures.figure9(table, tmp_path / "fig9")
    assert len(paths) == 2 and all(p.exists() for p in paths)
    axes = np.asarray(fig.axes).reshape(3, 2)
    assert [axes[0, j].get_title() for j in range(2)] == ["mushrooms", "ijcnn"]
    assert axes[1, 0].get_yscale() == "linear"
    assert "accuracy" in axes[1, 0].get_ylabel()
    assert axes[2, 0].get_yscale() == "log"


def _record(scores, chosen, cap=None):
    trials = []
    for i, ((mu, beta), score) in enumerate(scores.items()):
        trials.append({"hyperparameters": {"mu": mu, "beta": beta}, "score": score,
                       "stage": "grid" if mu <= 1 else "extension", "run_id": f"r{i}",
                       "diverged": score is None, "final_train_loss": None,
                       "rounding": 0.01, "tied_with_best": score in (-3.0, -2.99)})
    return {"grid": {"mu": {"scale": True, "lo": -1, "hi": 0, "per_decade": 1,
                            "values": [0.1, 1.0]}, "beta": [0.0, 0.4]},
            "trials": trials, "run_id": f"r{list(scores).index(chosen)}",
            "chosen": {"mu": chosen[0], "beta": chosen[1]}, "cap_reached": cap or {}}


def test_sensitivity_shows_every_tried_configuration(tmp_path):
    scores = {(0.1, 0.0): -2.0, (1.0, 0.0): -3.0, (10.0, 0.0): None, (0.1, 0.4): -2.99,
              (1.0, 0.4): -1.5}
    recs = {"mf-rank4": _record(scores, (1.0, 0.0)),
            "mf-rank10": _record(scores, (1.0, 0.0), cap={"mu": "upper"})}
    fig, paths = figures.sensitivity(recs, tmp_path / "sens")
    assert len(paths) == 2 and all(p.exists() for p in paths)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_label().startswith("beta")}
    assert set(lines) == {"beta=0", "beta=0.4"}
    assert list(lines["beta=0"].get_xdata()) == [0.1, 1.0, 10.0]  # the extension too
    (star,) = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (1.0, -3.0)
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == 10.0  # the diverged one
    (ties,) = [ln for ln in ax.get_lines() if ln.get_marker() == "s"]
    pts = sorted(zip(ties.get_xdata(), ties.get_ydata(), strict=True))
    assert pts == [(0.1, -2.99), (1.0, -3.0)]
    assert ax.get_xscale() == "log"
    assert "cap" in fig.axes[1].get_title()
    with pytest.raises(ValueError, match="records"):
        figures.sensitivity({})


def test_label_runs_names_varying_hyperparameters():
    t = _table(problems=("mf-rank4",), optimizers=("sgd", "pal"), seeds=(0,))
    t.loc[t["run_id"].str.contains("sgd"), "hp_lr"] = 0.5
    t2 = pd.concat([t, t[t["optimizer"] == "sgd"].assign(run_id="x", hp_lr=0.01)])
    labels = set(figures.label_runs(t2)["label"])
    assert labels == {"SGD lr=0.5", "SGD lr=0.01", "PAL"}


def test_empty_table_is_an_error():
    with pytest.raises(ValueError, match="nothing to plot"):
        figures.curves(_table().assign(train_loss=np.nan, lr_mean=np.nan))


def test_importing_figures_does_not_import_matplotlib():
    code = "import sys, paltest.testbed.figures; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
