"""The selection plot (:func:`sensitivity`): every configuration an optimizer's bracketed
search tried (:mod:`paltest.testbed.selection`), one panel per problem.

The score is drawn against the step-size axis (log), one line per setting of the other
hyperparameters. Markers: the trials (filled dots, on their line), trials added by
extension or refinement (a ring around the dot), diverged trials (a cross at the top of
the panel, their score being +inf), the chosen configuration (a star) and the trials
whose score ties with the best within rounding (grey squares). The legend holds exactly
the kinds of marker the plot draws (a kind that does not occur is neither drawn nor
listed), and a panel whose winner stayed at the end of its axis says so in its title.

Example:
    >>> rec = {"grid": {"lr": {"scale": True}}, "run_id": "b", "cap_reached": {},
    ...        "trials": [{"hyperparameters": {"lr": 0.1}, "stage": "grid", "score": -1.0,
    ...                    "run_id": "a"},
    ...                   {"hyperparameters": {"lr": 1.0}, "stage": "grid", "score": -2.0,
    ...                    "run_id": "b", "tied_with_best": True},
    ...                   {"hyperparameters": {"lr": 10.0}, "stage": "extension",
    ...                    "score": None, "run_id": "c"}]}
    >>> fig, _ = sensitivity({"mf-rank4": rec}, optimizer="sgd")
    >>> [t.get_text()[:8] for t in fig.legends[0].get_texts()]  # no ring: none was drawn
    ['SGD', 'diverged', 'chosen', 'ties wit']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed.figures import LINESTYLES, NAMES, TITLES, _fmt, _plt, layout, save

__all__ = ["ADDED", "CHOSEN", "DIVERGED", "TIES", "sensitivity"]

ADDED = "added by extension or refinement"
DIVERGED = "diverged (score +inf, drawn at the top)"
CHOSEN = "chosen"
TIES = "ties with the best score (within rounding)"


def sensitivity(records: dict[str, dict[str, Any]], out: str | os.PathLike | None = None, *,
                optimizer: str = "pal", formats: tuple[str, ...] = ("png", "pdf"),
                note: str = "", metadata: dict[str, str] | None = None
                ) -> tuple[Any, list[Path]]:
    """The whole tried grid of ``optimizer``'s selection, one panel per problem (see the
    module).

    ``records[problem]`` is a selection record of :mod:`paltest.testbed.experiments` (its
    ``trials`` with hyperparameters, stage and score, its ``chosen`` configuration and
    ``grid``).
    """
    plt = _plt()
    from matplotlib.lines import Line2D

    if not records:
        raise ValueError(f"records: no selection of optimizer {optimizer!r}")
    problems = list(records)
    fig, axes = plt.subplots(1, len(problems), squeeze=False,
                             figsize=(max(3.4 * len(problems), 5.0), 3.9))
    kinds: dict[str, Any] = {}  # the marker kinds drawn, with their legend handles
    for ax, problem in zip(axes[0], problems, strict=True):
        rec = records[problem]
        scale = [k for k, v in rec["grid"].items() if isinstance(v, dict)]
        axis = scale[0] if scale else next(iter(rec["grid"]))
        others = [k for k in rec["grid"] if k != axis]
        trials = rec["trials"]
        finite = [t["score"] for t in trials if t["score"] is not None]
        top = max(finite) if finite else 0.0
        lines: dict[tuple, list] = {}
        for t in trials:
            lines.setdefault(tuple(t["hyperparameters"].get(k) for k in others), []).append(t)
        for k, (key, ts) in enumerate(lines.items()):
            ts = sorted(ts, key=lambda t: t["hyperparameters"][axis])
            xs = [t["hyperparameters"][axis] for t in ts]
            ys = [t["score"] if t["score"] is not None else np.nan for t in ts]
            name = ", ".join(f"{o}={_fmt(v)}" for o, v in zip(others, key, strict=True))
            (line,) = ax.plot(xs, ys, ls=LINESTYLES[k % 4], marker="o", ms=4,
                              label=name or NAMES.get(optimizer, optimizer))
            for t in ts:
                if t["stage"] != "grid" and t["score"] is not None:
                    ax.plot(t["hyperparameters"][axis], t["score"], "o", ms=7,
                            markerfacecolor="none", color=line.get_color())
                    kinds[ADDED] = Line2D([], [], marker="o", ms=7, ls="none",
                                          markerfacecolor="none", color="black")
                if t["score"] is None:
                    ax.plot(t["hyperparameters"][axis], top, "x", ms=8,
                            color=line.get_color())
                    kinds[DIVERGED] = Line2D([], [], marker="x", ms=8, ls="none",
                                             color="black")
        best = [t for t in trials if t["run_id"] == rec["run_id"]]
        if best and best[0]["score"] is not None:
            ax.plot(best[0]["hyperparameters"][axis], best[0]["score"], "*", color="black",
                    ms=12, label=CHOSEN, ls="none")
        ties = [t for t in trials if t.get("tied_with_best") and t["score"] is not None]
        if ties:  # within rounding of the best score
            ax.plot([t["hyperparameters"][axis] for t in ties], [t["score"] for t in ties],
                    "s", ms=10, markerfacecolor="none", color="gray", ls="none",
                    label=TIES)
        ax.set_xscale("log")
        ax.set_xlabel(axis)
        cap = rec.get("cap_reached") or {}
        ax.set_title(TITLES.get(problem, problem) + (
            f" (cap reached: {', '.join(f'{a} {v} end' for a, v in cap.items())})"
            if cap else ""))
        ax.grid(True, alpha=0.3)
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    for lab in (ADDED, DIVERGED):  # the kinds of marker that were drawn, and only those
        if lab in kinds:
            handles[lab] = kinds[lab]
    order = [k for k in handles if k not in (CHOSEN, TIES)] + [
        k for k in (CHOSEN, TIES) if k in handles]
    legend = fig.legend([handles[k] for k in order], order, loc="lower center",
                        frameon=False, ncol=min(len(order), 4), fontsize=8,
                        bbox_to_anchor=(0.5, 0.0))
    axes[0, 0].set_ylabel("score: mean log10 gap")
    fig.suptitle(f"{NAMES.get(optimizer, optimizer)} selection on one seed "
                 f"(lower is better){note}", fontsize=10)
    layout(fig, legend)
    return fig, save(fig, out, formats, metadata)
