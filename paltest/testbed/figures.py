"""Plots of run tables: Figure 8, Figure 9, curves of any sweep, and the selection plots.

All functions take a :func:`paltest.testbed.results.load_table` table (one row per run and
epoch), draw with matplotlib (imported inside the functions, on the Agg backend when no
backend was chosen), save the figure as ``<out>.png`` and ``<out>.pdf`` when ``out`` is
given (with ``metadata`` such as the scale in the files' metadata; both files show the
same area, everything drawn plus a margin, measured once, so each file is rendered once),
and return ``(figure, paths)``.

What the panels show:

* **training loss** - on problems with a known floor :math:`L^*` the gap
  :math:`L - L^*` (log axis), clipped at the resolution :math:`C` of
  :func:`paltest.testbed.metrics.clip_level` (the clip is drawn dotted where the gaps come
  within a decade of it; gaps below it are drawn
  on it), with the target 2 % above a positive floor dashed; elsewhere the loss itself;
* **learning rate** (mean per epoch, log axis) - an epoch in which every step of every
  seed had learning rate exactly 0 is a filled triangle on the axis floor, one in which
  some steps had it a hollow triangle (each kind in the legend when drawn), so an
  optimizer that stopped moving is visible;
* the x-axis (``x``): ``"epochs"``, ``"evaluations"`` (cumulative forward + backward
  passes of the optimizer on batches, the cost unit of the paper's Appendix D.2) or
  ``"seconds"`` (time spent in steps; files without ``step_time`` use the wall time);
  the x of an epoch is the mean over seeds. Evaluations and seconds go on a log axis
  when a column's curves end more than :data:`LOG_X_SPREAD` times apart.

Each problem is a column, and each setting of the problem options that differ between
a problem's runs its own column (:func:`panels`): a curve never averages runs of
different problems.

Curves are grouped by the ``label`` column when the table has one, else by
``optimizer``: one colour per optimizer, one line style (and marker, after four) per
configuration of it; the line is the mean over seeds and the band spans the minimum to
the maximum over seeds.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "problem": "mf-rank4",
    ...                   "optimizer": "pal", "seed": [0] * 3 + [1] * 3, "dtype": "float32",
    ...                   "epoch": [0, 1, 2] * 2, "train_loss": [1, .1, .01, 1, .2, .02],
    ...                   "lr_mean": [float("nan"), 1, 1] * 2})
    >>> fig, paths = figure8(t, {"mf-rank4": 0.00935}, problems=["mf-rank4"])
    >>> paths, fig.axes[0].get_ylabel()
    ([], 'training loss gap L - L*')
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed import metrics
from paltest.testbed.figure_files import DPI, PAD_INCHES, layout, save  # noqa: F401

__all__ = ["COLORS", "LOG_X_SPREAD", "XAXES", "band", "curves", "figure8", "figure9",
           "label_runs", "layout", "panels", "save", "sensitivity"]

COLORS = {"pal": "tab:red", "sls": "tab:blue", "exact": "tab:purple", "sgd": "tab:green",
          "adam": "tab:orange", "rmsprop": "tab:brown", "sgdhd": "tab:pink",
          "alig": "tab:olive", "cocob": "tab:cyan", "sls-goldstein": "tab:gray",
          "sls-polyak": "black", "pal-momentum": "darkred", "pal-adam": "gold",
          "pal-rmsprop": "sienna"}
NAMES = {"pal": "PAL", "sls": "SLS", "exact": "exact LS", "sgd": "SGD", "adam": "Adam",
         "rmsprop": "RMSProp", "sgdhd": "SGDHD", "alig": "ALIG", "cocob": "COCOB",
         "pal-momentum": "PAL-momentum", "pal-adam": "PAL-Adam", "pal-rmsprop": "PAL-RMSProp"}
TITLES = {"mf-true": "true model", "mf-rank1": "rank 1", "mf-rank4": "rank 4",
          "mf-rank10": "rank 10", "mushrooms": "mushrooms", "ijcnn": "ijcnn"}
YLABELS = {"train_loss": "training loss", "test_accuracy": "test accuracy",
           "lr_mean": "learning rate (mean per epoch)", "test_loss": "test loss"}
LOG_ROWS = {"train_loss", "lr_mean", "test_loss", "lr_median"}
XAXES = {"epochs": "epoch", "evaluations": "evaluations (forward + backward passes)",
         "seconds": "seconds in steps"}
#: A column's x axis (evaluations, seconds) turns logarithmic when its curves end more
#: than this many times apart.
LOG_X_SPREAD = 10.0
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = (None, "o", "s", "^", "D", "v")
ZERO_LR = "lr = 0 in every step of every seed in the epoch"
ZERO_LR_SOME = "lr = 0 in some steps of the epoch"


def _plt() -> Any:
    import matplotlib

    if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_x(x: str) -> str:
    if x not in XAXES:
        raise ValueError(f"x: one of {sorted(XAXES)}, got {x!r}")
    return x


def _x_column(runs: Any, x: str) -> np.ndarray:
    """The x value of every row of ``runs`` (one or more runs, any order)."""
    if x == "epochs":
        return runs["epoch"].to_numpy(dtype=float)
    if x == "evaluations":
        missing = [c for c in ("n_fun", "n_grad") if c not in runs.columns]
        if missing:
            raise ValueError(f"x: 'evaluations' needs the columns {missing}")
        return runs["n_fun"].to_numpy(dtype=float) + runs["n_grad"].to_numpy(dtype=float)
    col = "step_time" if "step_time" in runs.columns else "wall_time"
    if col == "wall_time":
        return runs[col].to_numpy(dtype=float)
    order = runs.sort_values(["run_id", "epoch"])
    cum = order.groupby("run_id")[col].cumsum()
    return cum.reindex(runs.index).to_numpy(dtype=float)


def band(table: Any, metric: str, x: str = "epochs", by: str | None = None) -> Any:
    """Per epoch over seeds: ``mean``, ``min`` and ``max`` of ``metric`` and the mean
    ``x`` (a DataFrame indexed by epoch; by ``(by, epoch)`` when ``by`` names a column,
    one band per value of it)."""
    keys = ["epoch"] if by is None else [by, "epoch"]
    t = table.assign(_x=_x_column(table, _check_x(x)))
    out = t.groupby(keys)[metric].agg(["mean", "min", "max"])
    out["x"] = t.groupby(keys)["_x"].mean()
    return out


def label_runs(table: Any) -> Any:
    """A copy of ``table`` with a ``label`` column: the optimizer's display name plus the
    hyperparameters that differ between its runs (e.g. ``"SGD lr=0.1"``)."""
    table = table.reset_index(drop=True)
    table["label"] = ""
    for opt, rows in table.groupby("optimizer", sort=False):
        hp = [c for c in rows.columns if c.startswith("hp_")
              and rows[c].astype(str).nunique() > 1]
        base = NAMES.get(str(opt), str(opt))
        labels = rows[hp].apply(lambda r, b=base: " ".join(
            [b] + [f"{k[3:]}={_fmt(v)}" for k, v in r.items()]), axis=1) if hp else base
        table.loc[rows.index, "label"] = labels
    return table


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _groups(table: Any) -> tuple[str, list[tuple[str, str, str | None, dict]]]:
    """The grouping column and ``(key, label, colour, line style)`` per curve: a colour per
    optimizer and a line style (then a marker) per label of that optimizer."""
    key = "label" if "label" in table.columns else "optimizer"
    first = table.drop_duplicates(key).dropna(subset=[key])  # as groupby: no NaN key
    out = []
    seen: dict[str, int] = {}
    for name, opt in zip(first[key], first["optimizer"].astype(str), strict=True):
        label = NAMES.get(str(name), str(name)) if key == "optimizer" else str(name)
        k = seen.get(opt, 0)
        seen[opt] = k + 1
        style = {"ls": LINESTYLES[k % len(LINESTYLES)],
                 "marker": MARKERS[(k // len(LINESTYLES)) % len(MARKERS)], "markevery": 0.1}
        out.append((opt, name, label, COLORS.get(opt), style))
    order = list(COLORS)
    out.sort(key=lambda g: order.index(g[0]) if g[0] in order else len(order))
    return key, [g[1:] for g in out]


def _gap_rows(sub: Any, floor: float | None) -> tuple[Any, float]:
    """``sub`` with ``train_loss`` replaced by the gap clipped at each run's resolution,
    and the median clip."""
    loss = sub["train_loss"].astype(np.float64)
    first = sub.assign(train_loss=loss).sort_values("epoch", kind="stable").drop_duplicates(
        "run_id")
    dtypes = first["dtype"] if "dtype" in first.columns else ["float64"] * len(first)
    clips = {r: metrics.clip_level(floor, float(v), d)
             for r, v, d in zip(first["run_id"], first["train_loss"], dtypes, strict=True)}
    c = sub["run_id"].map(clips).to_numpy(dtype=np.float64)
    gap = metrics.gap_curve(loss, floor)
    sub = sub.assign(train_loss=np.where(np.isfinite(gap), np.maximum(gap, c), gap))
    return sub, float(np.median(list(clips.values()))) if clips else math.nan


def _zero_lr(sub: Any, key: str) -> tuple[Any, Any]:
    """Per ``(key, epoch)``: whether every step of every seed had learning rate exactly 0,
    and whether some step had."""
    r = sub.sort_values(["run_id", "epoch"])
    if "lr_zero" in r.columns and "n_steps" in r.columns:
        steps = r.groupby("run_id")["n_steps"].diff().fillna(0)
        all_zero = (r["lr_zero"] == steps) & (steps > 0)
        any_zero = r["lr_zero"] > 0
    else:  # files written before lr_zero was recorded
        all_zero = any_zero = r["lr_mean"] == 0
    keys = [r[key], r["epoch"]]
    return all_zero.groupby(keys).all(), any_zero.groupby(keys).any()


def _zero_lr_marks(ax: Any, every: Any, some: Any, xs: Any, color: str | None) -> set[str]:
    """Triangles on the axis floor at epochs where the learning rate was exactly 0
    (``every``, ``some``: one curve's part of :func:`_zero_lr`, indexed by epoch);
    returns the legend entries of the kinds drawn (:data:`ZERO_LR`, :data:`ZERO_LR_SOME`)."""
    full = every[every].index
    part = some[some & ~every].index
    drawn = set()
    trans = ax.get_xaxis_transform()
    for idx, face, kind in ((full, color, ZERO_LR), (part, "none", ZERO_LR_SOME)):
        if len(idx):
            ax.plot(xs.reindex(idx).to_numpy(), np.full(len(idx), 0.025), "v", ms=6, mew=1.2,
                    transform=trans, color=color, markerfacecolor=face, clip_on=False,
                    ls="none")
            drawn.add(kind)
    return drawn


def _panel(ax: Any, sub: Any, metric: str, x: str, floor: float | None) -> set[str]:
    """Draw one panel; returns the kinds of zero-lr marks drawn (their legend entries)."""
    zero: set[str] = set()
    clip = math.nan
    if metric == "train_loss" and floor is not None:
        sub, clip = _gap_rows(sub, floor)
    key, groups = _groups(sub)
    bands = band(sub, metric, x, by=key)
    if metric == "lr_mean":
        every, some = _zero_lr(sub, key)
    log = metric in LOG_ROWS
    lowest = math.inf  # the lowest value drawn (its band's lower edge)
    for name, label, color, style in groups:
        b = bands.loc[name]
        xs, mean, lo, hi = (b[c].to_numpy(dtype=np.float64) for c in ("x", "mean", "min", "max"))
        keep = ~np.isnan(mean) & (hi > 0) if log else ~np.isnan(mean)
        xs, mean, lo, hi = xs[keep], mean[keep], lo[keep], hi[keep]
        # on a log axis: a mean <= 0 is a gap in the line, a minimum <= 0 the mean
        ax.plot(xs, np.where(mean > 0, mean, np.nan) if log else mean, color=color,
                label=label, lw=1.5, **style)
        ax.fill_between(xs, np.where(lo > 0, lo, mean) if log else
                        np.where(np.isnan(lo), mean, lo), hi, color=color, alpha=0.15, lw=0)
        low = lo[np.isfinite(lo) & (lo > 0)] if log else lo[np.isfinite(lo)]
        lowest = min(lowest, float(low.min())) if low.size else lowest
        if metric == "lr_mean":
            zero |= _zero_lr_marks(ax, every.loc[name], some.loc[name], b["x"], color)
    if metric == "train_loss" and floor is not None:
        if floor > 0:
            ax.axhline(metrics.FLOOR_TARGET * floor, ls="--", color="black", lw=1,
                       label=f"target: {metrics.FLOOR_TARGET:.0%} above the floor")
        if math.isfinite(clip) and clip * 10 >= lowest:  # only where the gaps come near it
            ax.axhline(clip, ls=":", color="gray", lw=1,
                       label="resolution C (smaller gaps drawn at C)")
    if metric in LOG_ROWS:
        ax.set_yscale("log")
    return zero


def _log_x(axes: Any, x: str) -> None:
    """On the ``evaluations`` and ``seconds`` axes, a log scale when the curves of a
    column end more than :data:`LOG_X_SPREAD` times apart (the exact line search's ~17k
    evaluations would squeeze every other curve into the first tenth of a linear axis);
    epoch 0 (x = 0) then has no place on the axis and the curves start at epoch 1."""
    if x == "epochs":
        return
    for ax in axes:
        curves = [ln for ln in ax.get_lines() if ln.get_label()[:1] != "_"
                  and ln.get_transform() == ax.transData]  # not the floor's axhlines
        ends = [np.nanmax(xs) for ln in curves
                for xs in [np.asarray(ln.get_xdata(), dtype=float)]
                if xs.size and np.any(xs > 0)]
        if ends and max(ends) > LOG_X_SPREAD * min(ends):
            ax.set_xscale("log")


def panels(table: Any, problems: Any) -> list[tuple[str, str, Any]]:
    """The panels of ``table``: ``(problem, title, rows)``, one per problem, and one per
    setting of the problem options (``po_`` columns) that differ between its runs, so
    that no curve averages runs of different problems (e.g. a sweep over
    ``interpolation = [true, false]`` gets two panels)."""
    out = []
    for problem in problems:
        sub = table[table["problem"] == problem]
        name = TITLES.get(problem, problem)
        varying = [c for c in sub.columns if c.startswith("po_")
                   and sub[c].astype(str).nunique() > 1]
        if not varying:
            out.append((problem, name, sub))
            continue
        keys = sub[varying].astype(str)
        for combo, rows in sub.groupby([keys[c] for c in varying], sort=True):
            combo = combo if isinstance(combo, tuple) else (combo,)
            opts = ", ".join(f"{c[3:]}={v}" for c, v in zip(varying, combo, strict=True))
            out.append((problem, f"{name}\n{opts}", rows))
    return out


def curves(table: Any, out: str | os.PathLike | None = None, *, problems: Any = None,
           rows: tuple[str, ...] = ("train_loss", "lr_mean"),
           floors: dict[str, float | None] | None = None, title: str | None = None,
           formats: tuple[str, ...] = ("png", "pdf"), x: str = "epochs", note: str = "",
           metadata: dict[str, str] | None = None) -> tuple[Any, list[Path]]:
    """A grid of panels: one column per problem, one row per metric in ``rows``, against
    ``x``; mean over seeds with a min-max band. On ``train_loss`` panels of problems in
    ``floors`` (value not None) the gap to the floor is drawn (see the module). ``note``
    is appended to the title (e.g. ``" - quick scale"``)."""
    plt = _plt()
    _check_x(x)
    floors = floors or {}
    problems = list(dict.fromkeys(table["problem"]) if problems is None else problems)
    rows = tuple(r for r in rows if r in table.columns and table[r].notna().any())
    if not problems or not rows:
        raise ValueError("table: nothing to plot (no problems or no metric columns)")
    cols = panels(table, problems)
    width = max(3.4 * len(cols), 6.0)
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False, sharex="col",
                             figsize=(width, 2.6 * len(rows) + 0.8))
    zero: set[str] = set()
    for j, (problem, name, sub) in enumerate(cols):
        floor = floors.get(problem)
        for i, metric in enumerate(rows):
            ax = axes[i, j]
            zero |= _panel(ax, sub, metric, x, floor)
            if i == 0:
                ax.set_title(name)
            # every panel names its quantity: the columns' problems may differ in it
            ax.set_ylabel("training loss gap L - L*" if metric == "train_loss"
                          and floor is not None else YLABELS.get(metric, metric))
            if i == len(rows) - 1:
                ax.set_xlabel(XAXES[x])
            ax.grid(True, which="major", alpha=0.3)
        _log_x(axes[:, j], x)
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    if zero:
        from matplotlib.lines import Line2D

        for kind, face in ((ZERO_LR, "black"), (ZERO_LR_SOME, "none")):
            if kind in zero:  # only the kinds drawn
                handles[kind] = Line2D([], [], marker="v", ls="none", color="black",
                                       markerfacecolor=face)
    labels = list(handles)
    ncol = min(len(labels), max(2, int(width / 2.2)))
    legend = fig.legend([handles[k] for k in labels], labels, loc="lower center", ncol=ncol,
                        frameon=False, bbox_to_anchor=(0.5, 0.0), fontsize=8)
    if title or note:
        fig.suptitle((title or "") + note)
    layout(fig, legend)
    return fig, save(fig, out, formats, metadata)


def figure8(table: Any, floors: dict[str, float | None], out: str | os.PathLike | None = None,
            *, problems: Any = None, formats: tuple[str, ...] = ("png", "pdf"),
            x: str = "epochs", note: str = "", metadata: dict[str, str] | None = None
            ) -> tuple[Any, list[Path]]:
    """Figure 8: the training-loss gap to the analytic floor (log) of the true model and
    ranks 1, 4, 10, and a row of learning rates."""
    if problems is None:
        order = ("mf-true", "mf-rank1", "mf-rank4", "mf-rank10")
        problems = [p for p in order if p in set(table["problem"])]
    return curves(table, out, problems=problems, rows=("train_loss", "lr_mean"),
                  floors=floors, formats=formats, x=x, note=note, metadata=metadata,
                  title="Figure 8: matrix factorization (mean over seeds, band = min-max)")


def figure9(table: Any, out: str | os.PathLike | None = None, *, problems: Any = None,
            formats: tuple[str, ...] = ("png", "pdf"), x: str = "epochs", note: str = "",
            metadata: dict[str, str] | None = None) -> tuple[Any, list[Path]]:
    """Figure 9: training loss (log), test accuracy and learning rates of the RBF-kernel
    classifiers (mushrooms, ijcnn)."""
    if problems is None:
        problems = [p for p in ("mushrooms", "ijcnn") if p in set(table["problem"])]
    return curves(table, out, problems=problems, x=x, note=note, metadata=metadata,
                  rows=("train_loss", "test_accuracy", "lr_mean"), formats=formats,
                  title="Figure 9: RBF-kernel classification (mean over seeds, band = min-max)")


def sensitivity(records: dict[str, dict[str, Any]], out: str | os.PathLike | None = None,
                **kwargs: Any) -> tuple[Any, list[Path]]:
    """The selection plot of one optimizer
    (:func:`paltest.testbed.selection_plots.sensitivity`)."""
    from paltest.testbed.selection_plots import sensitivity as draw

    return draw(records, out, **kwargs)
