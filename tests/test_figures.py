"""Figure functions on small synthetic tables: files, floor line, mean line, min-max band."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from paltest import figures  # noqa: E402

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


def test_floor_line_is_drawn_only_for_a_positive_floor():
    fig, _ = figures.figure8(_table(), {"mf-rank4": 0.01, "mf-rank10": 0.0})
    loss4, loss10 = fig.axes[0], fig.axes[1]
    dashed = [ln for ln in loss4.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 1
    assert np.all(np.asarray(dashed[0].get_ydata(), dtype=float) == 0.01)
    assert not [ln for ln in loss10.get_lines() if ln.get_linestyle() == "--"]
    lr_axes = fig.axes[2:]
    assert all(not [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
               for ax in lr_axes)


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


def test_sensitivity_boxes_per_value_and_star(tmp_path):
    rows = []
    for p in ("mf-rank4", "mf-rank10"):
        for i, (mu, beta) in enumerate([(0.1, 0.0), (0.1, 0.4), (1.0, 0.0), (1.0, 0.4)]):
            for e in (0, 1):
                rows.append({"run_id": f"{p}{i}", "problem": p, "optimizer": "pal",
                             "epoch": e, "train_loss": 1.0 if e == 0 else 10.0 ** -(i + 1),
                             "hp_mu": mu, "hp_beta": beta, "hp_alpha": 1.0})
    grid = pd.DataFrame(rows)
    chosen = {"mf-rank4": {"mu": 1.0, "beta": 0.4, "alpha": 1.0}}
    fig, paths = figures.sensitivity(grid, tmp_path / "sens", chosen=chosen)
    assert len(paths) == 2 and all(p.exists() for p in paths)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["mu=0.1", "mu=1", "beta=0", "beta=0.4"]  # alpha is fixed: no box
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*" and len(ln.get_ydata())]
    assert len(stars) == 2  # the chosen config sits in the mu=1 and beta=0.4 boxes
    assert all(np.allclose(s.get_ydata(), 1e-4) for s in stars)
    with pytest.raises(ValueError, match="optimizer"):
        figures.sensitivity(grid, optimizer="sgd")


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
    code = "import sys, paltest.figures; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
