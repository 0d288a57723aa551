"""Plots of run tables: Figure 8, Figure 9, curves of any sweep, and PAL's sensitivity.

All functions take a :func:`paltest.results.load_table` table (one row per run and
epoch), draw with matplotlib (imported inside the functions, on the Agg backend when no
backend was chosen), save the figure as ``<out>.png`` and ``<out>.pdf`` when ``out`` is
given, and return ``(figure, paths)``.

Curves are grouped by the ``label`` column when the table has one, else by
``optimizer``; the line is the mean over seeds and the shaded band spans the minimum to
the maximum over seeds.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "problem": "mf-rank4",
    ...                   "optimizer": "pal", "seed": [0] * 3 + [1] * 3,
    ...                   "epoch": [0, 1, 2] * 2, "train_loss": [1, .1, .01, 1, .2, .02],
    ...                   "lr_mean": [float("nan"), 1, 1] * 2})
    >>> fig, paths = figure8(t, {"mf-rank4": 0.00935}, problems=["mf-rank4"])
    >>> paths
    []
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COLORS", "band", "curves", "figure8", "figure9", "label_runs", "save",
           "sensitivity"]

COLORS = {"pal": "tab:red", "sls": "tab:blue", "exact": "tab:purple", "sgd": "tab:green",
          "adam": "tab:orange", "rmsprop": "tab:brown", "sgdhd": "tab:pink",
          "alig": "tab:olive", "cocob": "tab:cyan", "sls-goldstein": "tab:gray",
          "sls-polyak": "black"}
NAMES = {"pal": "PAL", "sls": "SLS", "exact": "exact LS", "sgd": "SGD", "adam": "Adam",
         "rmsprop": "RMSProp", "sgdhd": "SGDHD", "alig": "ALIG", "cocob": "COCOB"}
TITLES = {"mf-true": "true model", "mf-rank1": "rank 1", "mf-rank4": "rank 4",
          "mf-rank10": "rank 10", "mushrooms": "mushrooms", "ijcnn": "ijcnn"}
YLABELS = {"train_loss": "training loss", "test_accuracy": "test accuracy",
           "lr_mean": "learning rate (mean per epoch)", "test_loss": "test loss"}
LOG_ROWS = {"train_loss", "lr_mean", "test_loss", "lr_median"}


def _plt() -> Any:
    import matplotlib

    if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(table: Any, metric: str) -> Any:
    """Per epoch over seeds: ``mean``, ``min`` and ``max`` of ``metric`` (a DataFrame)."""
    return table.groupby("epoch")[metric].agg(["mean", "min", "max"])


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


def _groups(table: Any) -> list[tuple[str, str, Any]]:
    key = "label" if "label" in table.columns else "optimizer"
    out = []
    for name, rows in table.groupby(key, sort=False):
        opt = str(rows["optimizer"].iloc[0])
        label = NAMES.get(str(name), str(name)) if key == "optimizer" else str(name)
        out.append((label, COLORS.get(opt), rows))
    order = list(COLORS)
    out.sort(key=lambda g: order.index(g[2]["optimizer"].iloc[0])
             if g[2]["optimizer"].iloc[0] in order else len(order))
    return out


def save(fig: Any, out: str | os.PathLike | None,
         formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``out.<format>`` for each format (directories created)."""
    if out is None:
        return []
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out.with_name(f"{out.name}.{fmt}")
        fig.savefig(path, dpi=150 if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    return paths


def curves(table: Any, out: str | os.PathLike | None = None, *, problems: Any = None,
           rows: tuple[str, ...] = ("train_loss", "lr_mean"),
           floors: dict[str, float | None] | None = None, title: str | None = None,
           formats: tuple[str, ...] = ("png", "pdf")) -> tuple[Any, list[Path]]:
    """A grid of panels: one column per problem, one row per metric in ``rows``, against
    epochs; mean over seeds with a min-max band; a problem's positive floor (``floors``)
    is drawn as a dashed black line on the ``train_loss`` panels."""
    plt = _plt()
    problems = list(dict.fromkeys(table["problem"]) if problems is None else problems)
    rows = tuple(r for r in rows if r in table.columns and table[r].notna().any())
    if not problems or not rows:
        raise ValueError("table: nothing to plot (no problems or no metric columns)")
    width = max(3.4 * len(problems), 6.0)
    fig, axes = plt.subplots(len(rows), len(problems), squeeze=False, sharex="col",
                             figsize=(width, 2.6 * len(rows) + 0.6))
    for j, problem in enumerate(problems):
        sub = table[table["problem"] == problem]
        for i, metric in enumerate(rows):
            ax = axes[i, j]
            for label, color, runs in _groups(sub):
                b = band(runs, metric).dropna()
                if metric in LOG_ROWS:
                    b = b[b["max"] > 0]
                ax.plot(b.index, b["mean"], color=color, label=label, lw=1.5)
                ax.fill_between(b.index, b["min"], b["max"], color=color, alpha=0.2, lw=0)
            floor = (floors or {}).get(problem)
            if metric == "train_loss" and floor is not None and floor > 0:
                ax.axhline(floor, ls="--", color="black", lw=1, label="analytic floor")
            if metric in LOG_ROWS:
                ax.set_yscale("log")
            if i == 0:
                ax.set_title(TITLES.get(problem, problem))
            if j == 0:
                ax.set_ylabel(YLABELS.get(metric, metric))
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
            ax.grid(True, which="major", alpha=0.3)
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    labels = list(handles)
    fig.legend([handles[k] for k in labels], labels, loc="lower center",
               ncol=min(len(labels), max(2, int(width / 1.5))), frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig, save(fig, out, formats)


def figure8(table: Any, floors: dict[str, float | None], out: str | os.PathLike | None = None,
            *, problems: Any = None, formats: tuple[str, ...] = ("png", "pdf")
            ) -> tuple[Any, list[Path]]:
    """Figure 8: training loss (log) of the true model and ranks 1, 4, 10 against epochs,
    the analytic floor dashed, and a row of learning rates."""
    if problems is None:
        order = ("mf-true", "mf-rank1", "mf-rank4", "mf-rank10")
        problems = [p for p in order if p in set(table["problem"])]
    return curves(table, out, problems=problems, rows=("train_loss", "lr_mean"),
                  floors=floors, formats=formats,
                  title="Figure 8: matrix factorization (mean over seeds, band = min-max)")


def figure9(table: Any, out: str | os.PathLike | None = None, *, problems: Any = None,
            formats: tuple[str, ...] = ("png", "pdf")) -> tuple[Any, list[Path]]:
    """Figure 9: training loss (log), test accuracy and learning rates of the RBF-kernel
    classifiers (mushrooms, ijcnn) against epochs."""
    if problems is None:
        problems = [p for p in ("mushrooms", "ijcnn") if p in set(table["problem"])]
    return curves(table, out, problems=problems,
                  rows=("train_loss", "test_accuracy", "lr_mean"), formats=formats,
                  title="Figure 9: RBF-kernel classification (mean over seeds, band = min-max)")


def sensitivity(grid: Any, out: str | os.PathLike | None = None, *, optimizer: str = "pal",
                chosen: dict[str, dict[str, Any]] | None = None, problems: Any = None,
                formats: tuple[str, ...] = ("png", "pdf")) -> tuple[Any, list[Path]]:
    """Box plots of the final training loss of ``optimizer``'s grid, one panel per problem.

    For every hyperparameter value (e.g. ``mu=0.1``) a box (whiskers: min to max) spans
    the configurations that share it; every configuration is drawn as a dot;
    ``chosen[problem]`` (the selected configuration) is marked with a star.
    """
    plt = _plt()
    runs = grid[grid["optimizer"] == optimizer]
    if runs.empty:
        raise ValueError(f"grid: no runs of optimizer {optimizer!r}")
    last = runs[runs["epoch"] == runs.groupby("run_id")["epoch"].transform("max")]
    keys = [c[3:] for c in last.columns if c.startswith("hp_")
            and last[c].nunique(dropna=True) > 1]
    present = list(dict.fromkeys(last["problem"]))
    problems = present if problems is None else [q for q in problems if q in present]
    fig, axes = plt.subplots(1, len(problems), squeeze=False,
                             figsize=(max(3.2, 0.75 * len(keys) * 2) * len(problems) / 1.3, 3.4))
    for ax, problem in zip(axes[0], problems, strict=True):
        sub = last[last["problem"] == problem]
        loss = sub["train_loss"].to_numpy(dtype=float)
        loss = np.where(np.isfinite(loss), loss, np.nan)
        best_mask = np.zeros(len(sub), dtype=bool)
        best = (chosen or {}).get(problem)
        if best:
            best_mask[:] = True
            for k, v in best.items():
                if f"hp_{k}" in sub.columns:
                    best_mask &= (sub[f"hp_{k}"] == v).to_numpy()
        data, names, pos = [], [], []
        for k in keys:
            for v in sorted(sub[f"hp_{k}"].dropna().unique()):
                mask = (sub[f"hp_{k}"] == v).to_numpy()
                data.append(loss[mask & np.isfinite(loss)])
                names.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
                pos.append(len(pos) + 1)
                x = np.full(int(mask.sum()), pos[-1], dtype=float)
                ax.plot(x, loss[mask], "o", color=COLORS.get(optimizer, "k"), ms=3, alpha=0.7)
                star = loss[mask & best_mask]
                ax.plot(np.full(star.size, pos[-1]), star, "*", color="black", ms=9)
        if data:
            ax.boxplot([d if d.size else [np.nan] for d in data], positions=pos,
                       widths=0.6, whis=(0, 100), showfliers=False)
        ax.set_xticks(pos, names, rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(TITLES.get(problem, problem))
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("final training loss")
    fig.suptitle(f"{NAMES.get(optimizer, optimizer)} hyperparameter sensitivity "
                 "(one seed; * = chosen)")
    fig.tight_layout()
    return fig, save(fig, out, formats)

