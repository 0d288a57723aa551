"""Figure functions on small synthetic tables: files, floor line, mean line, min-max band."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from legend_check import assert_legend_matches_markers, drawn_markers  # noqa: E402

from paltest.testbed import figures, metrics  # noqa: E402

EPOCHS = 5


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


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
    # rank 4's seed 0 ends at its floor (its gap at the clip); rank 10 stays far above
    end = (table["problem"] == "mf-rank4") & (table["seed"] == 0) & (table["epoch"] == EPOCHS)
    table.loc[end, "train_loss"] = 0.01
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
    # a zero floor: the gap is the loss, no target line; its clip (1e-30) is not drawn,
    # since no gap comes within a decade of it (it would widen the axis to nothing)
    assert not [ln for ln in loss10.get_lines() if ln.get_label().startswith("target")]
    assert not [ln for ln in loss10.get_lines() if ln.get_linestyle() == ":"]
    fig, _ = figures.figure8(table, {"mf-rank10": 0.0}, problems=["mf-rank10"])
    assert "resolution C (smaller gaps drawn at C)" not in [
        t.get_text() for t in fig.legends[0].get_texts()]
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
    # the diverged cross is drawn, and so in the legend
    assert_legend_matches_markers(fig)
    assert ("x", True) in drawn_markers(fig)
    assert "diverged" not in fig._suptitle.get_text()  # the legend explains the markers
    with pytest.raises(ValueError, match="records"):
        figures.sensitivity({})


def test_sensitivity_lists_only_the_markers_it_draws():
    """Issue 28: the title promised 'x diverged' markers where none was drawn."""
    scores = {(0.1, 0.0): -2.0, (1.0, 0.0): -3.0, (0.1, 0.4): -2.5, (1.0, 0.4): -1.5}
    fig, _ = figures.sensitivity({"mf-rank4": _record(scores, (1.0, 0.0))})
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert not any("diverged" in t or "extension" in t for t in texts)
    assert not [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert_legend_matches_markers(fig)
    scores[(10.0, 0.0)] = -2.5  # an extension with a score: a ring, listed
    fig, _ = figures.sensitivity({"mf-rank4": _record(scores, (1.0, 0.0))})
    assert ("o", False) in drawn_markers(fig)
    assert "added by extension or refinement" in [t.get_text() for t in
                                                  fig.legends[0].get_texts()]
    assert_legend_matches_markers(fig)


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


def test_panels_never_merge_runs_whose_problem_options_differ():
    """Issue 28: ``paltest plot`` on the example sweep averaged interpolation = true and
    false (two problems) into one curve."""
    t = _table(problems=("batch-quadratic",), optimizers=("pal",), seeds=(0, 1))
    t = pd.concat([t.assign(po_interpolation=True, po_n=10),
                   t.assign(po_interpolation=False, po_n=10,
                            run_id=t["run_id"] + "-f", train_loss=t["train_loss"] + 1)])
    fig, _ = figures.curves(figures.label_runs(t), rows=("train_loss", "lr_mean"))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["batch-quadratic\ninterpolation=False",
                      "batch-quadratic\ninterpolation=True"]
    for ax, offset in zip(fig.axes[:2], (1.0, 0.0), strict=True):
        (line,) = _axes_lines(ax, "PAL")
        want = t[t["po_interpolation"] == (offset == 0)].groupby("epoch")["train_loss"].mean()
        np.testing.assert_allclose(line.get_ydata(), want)  # one problem's runs only
    # every panel names its quantity (the quadratic panel had no y-label)
    assert all(ax.get_ylabel() for ax in fig.axes)
    # options that do not vary make no extra panels
    fig, _ = figures.curves(t[t["po_interpolation"]], rows=("train_loss",))
    assert [ax.get_title() for ax in fig.axes] == ["batch-quadratic"]


def test_the_evaluations_axis_stays_readable():
    """Issue 28: the exact search's ~17k evaluations squeezed every other curve into the
    first tenth of a linear axis; the axis turns logarithmic and every curve spans a
    readable part of it."""
    t = _table(problems=("mf-rank4",), optimizers=("pal", "exact"), seeds=(0, 1))
    per_epoch = np.where(t["optimizer"] == "exact", 340, 16)
    t["n_fun"], t["n_grad"] = t["epoch"] * per_epoch, t["epoch"] * 8
    fig, _ = figures.figure8(t, {"mf-rank4": 0.0}, x="evaluations")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lo, hi = (np.log10(v) for v in ax.get_xlim())
    for label in ("PAL", "exact LS"):
        (line,) = _axes_lines(ax, label)
        xs = np.asarray(line.get_xdata(), float)
        xs = xs[xs > 0]
        assert (np.log10(xs.max()) - np.log10(xs.min())) / (hi - lo) > 0.25, label
    # on epochs, and where the curves end close together, the axis stays linear
    assert figures.figure8(t, {"mf-rank4": 0.0})[0].axes[0].get_xscale() == "linear"
    t["n_fun"] = t["epoch"] * 16
    fig, _ = figures.figure8(t, {"mf-rank4": 0.0}, x="evaluations")
    assert fig.axes[0].get_xscale() == "linear"


def test_every_marker_drawn_is_in_the_legend_and_every_entry_is_drawn():
    t = _table(problems=("mf-rank4",), optimizers=("pal", "sgd"), seeds=(0, 1))
    t = pd.concat([t.assign(hp_lr=lr, run_id=t["run_id"] + f"-{lr}")
                   for lr in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)])  # styles then markers
    t["n_steps"] = t["epoch"] * 8
    t["lr_zero"] = np.where((t["epoch"] == 3) & (t["optimizer"] == "sgd"), 8, 0)
    t.loc[(t["epoch"] == 4) & (t["seed"] == 0) & (t["optimizer"] == "pal"), "lr_zero"] = 3
    fig, _ = figures.curves(figures.label_runs(t), rows=("train_loss", "lr_mean"))
    assert {("v", True), ("v", False)} <= drawn_markers(fig)  # every step / some steps
    assert_legend_matches_markers(fig)
