"""Plots of the line figures (1, 2, 6, 7) from a
:class:`paltest.testbed.line_figures.LineFigureResult` (matplotlib imported lazily).

* Figure 1: per problem (rows), the representative lines of seed 0 (columns, evenly
  spaced in training time): the sampled batch loss (blue), PAL's parabola (orange), the
  sampled minimum (red dot), PAL's parabola minimum (red cross) and PAL's step (dashed).
  A line whose range the sampler widened (its minimum was not inside the first range)
  gets a symmetric-log x axis, linear over the first range ``R [-0.5, 1.5]``, so that
  the first range stays readable next to the widened one (up to ``R * 6144``); a panel
  title says the line's shape and, for a line without a minimum to show, why.
* Figure 2: per problem, the angle at the update point against the step, PAL with
  alpha (red) and without (blue), every seed (points) and the median over seeds of a
  moving window (line); 90 degrees dotted.
* Figure 6: per problem (rows), PAL (red) against the exact line search (purple), one
  titled column each: the angle over steps (points and moving median, as Figure 2), the
  training loss and the test accuracy (test loss where there is none) over epochs, mean
  over seeds with a min-max band.
* Figure 7: per problem (rows), the representative lines of seed 0 (columns): the
  epoch's batch losses (quartile band and full range, blue; median black), the full
  training loss (red), the batch loss that defined the direction (green), with their
  minima (dashed).

Each figure has one legend below the panels with every kind of line and marker drawn
(and nothing that is not drawn).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed import figures

__all__ = ["draw", "representative"]

_COLORS = {"pal": "tab:red", "pal-no-alpha": "tab:blue", "exact": "tab:purple"}
_NAMES = {"pal": "PAL (alpha = 1/0.6)", "pal-no-alpha": "PAL (alpha = 1)",
          "exact": "exact line search"}


def representative(lines: Any, n: int) -> Any:
    """``n`` of ``lines`` (one problem, label and seed) evenly spaced in training time:
    the rows at positions ``round(linspace(0, len - 1, n))`` of the sorted step indices."""
    lines = lines.sort_values("step_index")
    if len(lines) <= n:
        return lines
    idx = sorted({int(round(v)) for v in np.linspace(0, len(lines) - 1, n)})
    return lines.iloc[idx]


def _note(r: Any) -> str:
    return "" if r.plan.full_scale else f" - {r.plan.scale} scale"


def _legend(fig: Any, ncol: int = 6) -> Any:
    """One legend below the panels with every labelled artist of every panel (first
    occurrence of each label)."""
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    if not handles:
        return None
    return fig.legend(list(handles.values()), list(handles), loc="lower center",
                      frameon=False, ncol=min(len(handles), ncol), fontsize=8,
                      markerscale=2.5, bbox_to_anchor=(0.5, 0.0))


def _shape_title(row: Any) -> str:
    """The line's shape for a panel title, with the reason where there is no minimum."""
    shape = str(row["shape"])
    if shape == "skipped":
        why = ("not finite" if not np.isfinite(row["step"]) else
               "the optimizer did not move" if row["step"] == 0 else "no line")
        return f"skipped: {why}"
    if shape == "edge":
        return f"edge: no minimum up to R * {row['hi']:g}"
    return shape


def _widened(row: Any, s: np.ndarray) -> float | None:
    """The first range's upper end ``R * 1.5`` of a line the sampler widened, else None."""
    ext = row.get("extensions", 0)
    lo, hi = row.get("lo", np.nan), row.get("hi", np.nan)
    if not (ext and np.isfinite(lo) and np.isfinite(hi) and hi > lo and s.size):
        return None
    from paltest.testbed.lines import DEFAULT_SPAN

    r = row.get("scale", np.nan)  # the scale R of the line
    if not (np.isfinite(r) and r > 0):
        r = (s.max() - s.min()) / (hi - lo)
    return float(r * DEFAULT_SPAN[1])


def _figure1(plt: Any, r: Any) -> Any:
    from paltest.testbed.line_figures import N_REPRESENTATIVE

    probs = r.plan.problems
    fig, axes = plt.subplots(len(probs), N_REPRESENTATIVE, squeeze=False,
                             figsize=(2.6 * N_REPRESENTATIVE, 2.3 * len(probs)))
    for i, q in enumerate(probs):
        sel = r.lines[(r.lines["problem"] == q) & (r.lines["label"] == "pal")
                      & (r.lines["seed"] == min(r.plan.seeds))]
        for j, (_, row) in enumerate(representative(sel, N_REPRESENTATIVE).iterrows()):
            ax = axes[i, j]
            pts = r.points[(r.points["run_id"] == row["run_id"])
                           & (r.points["step_index"] == row["step_index"])]
            s = pts["s"].to_numpy()
            ax.plot(s, pts["loss"], color="tab:blue", lw=1.2, label="batch loss")
            ax.plot(s, row["pal_a"] * s**2 + row["pal_b"] * s + row["pal_c"],
                    color="tab:orange", lw=1, label="PAL's parabola")
            ax.plot(row["s_min"], row["l_min"], "o", color="red", ms=4, label="sampled min")
            if np.isfinite(row["pal_min"]):
                ax.plot(row["pal_min"], row["pal_a"] * row["pal_min"] ** 2 + row["pal_b"]
                        * row["pal_min"] + row["pal_c"], "x", color="red", ms=6,
                        label="parabola min")
            ax.axvline(row["step"], color="gray", ls="--", lw=0.8, label="PAL's step")
            lo, hi = np.nanmin(pts["loss"]), np.nanmax(pts["loss"])
            ax.set_ylim(lo - 0.1 * (hi - lo + 1e-12), hi + 0.1 * (hi - lo + 1e-12))
            ax.set_xlim(s.min(), s.max())  # the sampled range (a far parabola minimum is off)
            first = _widened(row, s)
            if first is not None:  # linear over the first range, logarithmic beyond
                ax.set_xscale("symlog", linthresh=first, linscale=1.0)
            ax.set_title(f"{q}, step {int(row['step_index'])}\n({_shape_title(row)})",
                         fontsize=8)
            ax.tick_params(labelsize=7)
        axes[i, 0].set_ylabel("batch loss")
    for ax in axes[-1]:
        ax.set_xlabel("step s along the unit direction", fontsize=8)
    fig.suptitle("Figure 1: batch losses along PAL's lines, PAL's parabolas and minima "
                 "(seed 0, evenly spaced in training; widened lines on a symmetric-log "
                 "axis)" + _note(r), fontsize=10)
    return fig


def _moving_median(x: np.ndarray, y: np.ndarray, width: int = 9) -> tuple:
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    med = np.array([np.nanmedian(y[max(0, k - width // 2):k + width // 2 + 1])
                    for k in range(len(y))])
    return x, med


def _figure2(plt: Any, r: Any) -> Any:
    probs = r.plan.problems
    fig, axes = plt.subplots(1, len(probs), squeeze=False, figsize=(4.2 * len(probs), 3.2))
    for i, q in enumerate(probs):
        ax = axes[0, i]
        for lab in ("pal", "pal-no-alpha"):
            g = r.lines[(r.lines["problem"] == q) & (r.lines["label"] == lab)]
            if not len(g):
                continue
            x, y = g["step_index"].to_numpy(float), g["angle"].to_numpy(float)
            ax.plot(x, y, ".", ms=2, alpha=0.35, color=_COLORS[lab],
                    label=f"{_NAMES[lab]}: a sampled step (every seed)")
            ax.plot(*_moving_median(x, y, 5 * len(set(g["seed"])) + 1), color=_COLORS[lab],
                    lw=1.4, label=f"{_NAMES[lab]}: moving median")
        ax.axhline(90, color="black", ls=":", lw=0.8, label="90 degrees: a minimum on the line")
        ax.set_title(q, fontsize=9)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("angle between direction and gradient at the update point (deg)",
                          fontsize=8)
    fig.suptitle("Figure 2: the angle at PAL's update point, measured on the same batch"
                 + _note(r), fontsize=10)
    return fig


def _band(ax: Any, table: Any, x: str, y: str, color: str, label: str) -> None:
    g = table.groupby(x)[y]
    xs = np.asarray(sorted(table[x].unique()), dtype=float)
    ax.plot(xs, g.mean().to_numpy(), color=color, lw=1.3, label=label)
    ax.fill_between(xs, g.min().to_numpy(), g.max().to_numpy(), color=color, alpha=0.2)


def _figure6(plt: Any, r: Any) -> Any:
    probs = r.plan.problems
    fig, axes = plt.subplots(len(probs), 3, squeeze=False, figsize=(12, 2.8 * len(probs)))
    for i, q in enumerate(probs):
        ep = r.epochs[r.epochs["problem"] == q]
        metric = ("test_accuracy" if "test_accuracy" in ep and ep["test_accuracy"].notna().any()
                  else "test_loss")
        for lab in ("pal", "exact"):
            g = r.lines[(r.lines["problem"] == q) & (r.lines["label"] == lab)]
            x, y = g["step_index"].to_numpy(float), g["angle"].to_numpy(float)
            axes[i, 0].plot(x, y, ".", ms=2, alpha=0.3, color=_COLORS[lab],
                            label=f"{_NAMES[lab]}: angle at a sampled step (every seed)")
            axes[i, 0].plot(*_moving_median(x, y, 5 * max(1, len(set(g["seed"]))) + 1),
                            color=_COLORS[lab],
                            label=f"{_NAMES[lab]}: moving median of the angle")
            e = ep[ep["label"] == lab]
            if len(e):
                name = f"{_NAMES[lab]}: mean over seeds, band min-max"
                _band(axes[i, 1], e, "epoch", "train_loss", _COLORS[lab], name)
                if metric in e:
                    _band(axes[i, 2], e, "epoch", metric, _COLORS[lab], name)
        axes[i, 0].axhline(90, color="black", ls=":", lw=0.8,
                           label="90 degrees: a minimum on the line")
        axes[i, 0].set_ylabel(f"{q}\nangle (deg)", fontsize=8)
        axes[i, 1].set_yscale("log")
        axes[i, 1].set_ylabel("training loss", fontsize=8)
        axes[i, 2].set_ylabel(figures.YLABELS.get(metric, metric), fontsize=8)
    for j, title in enumerate(("angle at the update point", "training loss",
                               "test metric")):
        axes[0, j].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("step")
    axes[-1, 1].set_xlabel("epoch")
    axes[-1, 2].set_xlabel("epoch")
    fig.suptitle(f"Figure 6: PAL against the exact line search ({len(r.plan.seeds)} seeds)"
                 + _note(r), fontsize=10)
    return fig


def _figure7(plt: Any, r: Any) -> Any:
    from paltest.testbed.line_figures import N_REPRESENTATIVE_7

    probs = r.plan.problems
    fig, axes = plt.subplots(len(probs), N_REPRESENTATIVE_7, squeeze=False,
                             figsize=(2.3 * N_REPRESENTATIVE_7, 2.3 * len(probs)))
    for i, q in enumerate(probs):
        sel = representative(r.lines[(r.lines["problem"] == q)
                                     & (r.lines["seed"] == min(r.plan.seeds))],
                             N_REPRESENTATIVE_7)
        for j, (_, row) in enumerate(sel.iterrows()):
            ax = axes[i, j]
            pts = r.points[(r.points["run_id"] == row["run_id"])
                           & (r.points["step_index"] == row["step_index"])]
            s = pts["s"].to_numpy()
            if "q0" in pts:
                ax.fill_between(s, pts["q0"], pts["q100"], color="tab:blue", alpha=0.15,
                                label="the epoch's batch losses: full range")
                ax.fill_between(s, pts["q25"], pts["q75"], color="tab:blue", alpha=0.35,
                                label="the epoch's batch losses: quartiles")
                ax.plot(s, pts["q50"], color="black", lw=0.8,
                        label="the epoch's batch losses: median")
            ax.plot(s, pts["full_loss"], color="red", lw=1.2, label="full training loss")
            ax.plot(s, pts["loss"], color="green", lw=1.2, label="direction's batch loss")
            ax.axvline(row["s_min"], color="green", ls="--", lw=0.7,
                       label="minimum of the direction's batch loss")
            ax.axvline(row["full_s_min"], color="red", ls="--", lw=0.7,
                       label="minimum of the full training loss")
            ax.set_title(f"{q}, step {int(row['step_index'])}", fontsize=8)
            ax.tick_params(labelsize=7)
        for j in range(len(sel), N_REPRESENTATIVE_7):
            axes[i, j].set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel("step s along the unit direction", fontsize=8)
    fig.suptitle("Figure 7: the epoch's batch losses, the full training loss and the "
                 "direction's batch loss along PAL's lines (seed 0)" + _note(r), fontsize=10)
    return fig


def draw(r: Any, out: str | os.PathLike | None = None,
         formats: tuple[str, ...] = ("png", "pdf")) -> tuple[Any, list[Path]]:
    """Draw the figure of ``r`` and save it as ``out.<format>``; ``(figure, paths)``."""
    plt = figures._plt()
    fig = {1: _figure1, 2: _figure2, 6: _figure6, 7: _figure7}[r.plan.figure](plt, r)
    figures.layout(fig, _legend(fig, ncol=3 if r.plan.figure in (2, 6, 7) else 6))
    return fig, figures.save(fig, out, formats, metadata={"scale": r.plan.scale})
