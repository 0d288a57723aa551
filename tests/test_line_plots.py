"""The line figures' drawings (paltest.testbed.line_plots) on hand-made results: a widened
line stays readable, a panel without a line says why, every figure's legend explains
what it draws (issue 28)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from legend_check import assert_legend_matches_markers  # noqa: E402

from paltest.testbed import line_figures as lf  # noqa: E402
from paltest.testbed import line_plots  # noqa: E402


def _line(step_index, shape, *, step=0.8, scale=1.0, lo=-0.5, hi=1.5, extensions=0,
          seed=0, label="pal", problem="p"):
    return {"problem": problem, "label": label, "seed": seed, "run_id": f"{label}{seed}",
            "step_index": step_index, "shape": shape, "moved": step != 0, "step": step,
            "scale": scale, "mu": 1.0, "angle": 80.0 + step_index % 20, "pal_a": 0.5,
            "pal_b": -1.0, "pal_c": 1.0, "pal_min": 1.0, "s_min": 1.0, "l_min": 0.5,
            "full_s_min": 0.9, "full_shape": shape, "lo": lo, "hi": hi,
            "extensions": extensions}


def _result(figure, rows):
    lines = pd.DataFrame(rows)
    points = []
    for r in rows:
        s = np.linspace(r["lo"] * r["scale"], r["hi"] * r["scale"], 50)
        pts = pd.DataFrame({"run_id": r["run_id"], "step_index": r["step_index"], "s": s,
                            "loss": 0.5 * (s - 1) ** 2 + 0.5, "full_loss": 0.5 * s**2,
                            "q0": s * 0, "q25": s * 0 + 0.2, "q50": s * 0 + 0.3,
                            "q75": s * 0 + 0.4, "q100": s * 0 + 1})
        points.append(pts)
    epochs = pd.DataFrame([{"problem": "p", "label": lab, "seed": sd, "epoch": e,
                            "train_loss": 1.0 / (e + 1), "test_accuracy": 0.9}
                           for lab in ("pal", "exact") for sd in (0, 1) for e in range(3)])
    plan = lf.LinePlan(figure, ("p",), (0, 1), {"p": 2})
    return lf.LineFigureResult(plan, None, lines, pd.concat(points), None, epochs)


def test_figure1_widened_lines_and_panels_without_a_minimum_say_why():
    rows = [_line(0, "convex"), _line(10, "edge", lo=-0.5, hi=6144.0, extensions=6),
            _line(20, "skipped", step=0.0), _line(30, "convex")]
    fig, _ = line_plots.draw(_result(1, rows))
    axes = fig.axes
    assert axes[0].get_xscale() == "linear"
    # the widened line: linear over the first range R [-0.5, 1.5], logarithmic beyond
    assert axes[1].get_xscale() == "symlog"
    assert axes[1].xaxis.get_transform().linthresh == pytest.approx(1.5)
    assert "edge: no minimum up to R * 6144" in axes[1].get_title()
    assert "skipped: the optimizer did not move" in axes[2].get_title()
    assert_legend_matches_markers(fig)


@pytest.mark.parametrize("figure", [2, 6, 7])
def test_line_figures_explain_what_they_draw(figure):
    labels = {2: ("pal", "pal-no-alpha"), 6: ("pal", "exact"), 7: ("pal",)}[figure]
    rows = [_line(k, "convex", seed=sd, label=lab) for lab in labels for sd in (0, 1)
            for k in range(0, 40, 5)]
    fig, _ = line_plots.draw(_result(figure, rows))
    assert_legend_matches_markers(fig)
    texts = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    if figure in (2, 6):  # the dots and the line of the angle panels
        assert any("sampled step" in t for t in texts)
        assert any("moving median" in t for t in texts)
    if figure == 6:  # titled columns (they had none)
        assert [ax.get_title() for ax in fig.axes[:3]] == [
            "angle at the update point", "training loss", "test metric"]
    if figure == 7:  # seed 0's representative lines only
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert len(titles) == lf.N_REPRESENTATIVE_7
