"""Drawing the profiles with matplotlib: performance profile and data profile.

Each is a step plot of one curve per solver (:mod:`.profiles`): the performance profile
over :math:`\\log_2\\tau` up to the largest finite ratio (curves then stay at the solved
fraction), the data profile over evaluations on a log axis up to the budget. The title
names the convergence test and its tolerance and the number of problems. Files are saved
as PNG and PDF by :func:`paltest.testbed.figure_files.save` (each rendered once).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed import figure_files
from paltest.testbed.profiles import profiles as prof

__all__ = ["draw_data_profile", "draw_performance_profile"]

_STYLES = ("-", "--", "-.", ":")


def _style(i: int, label: str) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 2.2 if label.startswith("pal") else 1.4
    return {"color": colors[i % len(colors)], "linestyle": _STYLES[(i // len(colors)) % 4],
            "linewidth": width}


def _finish(fig: Any, ax: Any, out: str | Path | None) -> list[Path]:
    legend = fig.legend(*ax.get_legend_handles_labels(), loc="lower center",
                        ncol=min(5, len(ax.lines)), fontsize="small", frameon=False)
    figure_files.layout(fig, legend)
    return figure_files.save(fig, out) if out is not None else []


def draw_performance_profile(cost: Any, *, title: str = "", out: str | Path | None = None,
                             ax: Any = None) -> tuple[Any, list[Path]]:
    """The Dolan–Moré profile of ``cost`` (problems x solvers); returns the figure and the
    files written to ``out`` (+ ``.png``/``.pdf``; none when ``out`` is ``None``)."""
    import matplotlib.pyplot as plt

    r = prof.ratios(cost).to_numpy()
    finite = r[np.isfinite(r)]
    top = max(2.0, float(finite.max()) * 1.5 if finite.size else 2.0)
    taus = np.unique(np.concatenate([[1.0], finite, [top]]))
    curve = prof.performance_profile(cost, taus)
    fig, ax = (plt.subplots(figsize=(7.5, 4.8)) if ax is None else (ax.figure, ax))
    for i, s in enumerate(cost.columns):
        ax.step(np.log2(taus), curve[s].to_numpy(), where="post", label=s, **_style(i, s))
    ax.set_xlim(0.0, math.log2(top))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"$\log_2 \tau$ (within a factor $\tau$ of the best solver's evaluations)")
    ax.set_ylabel(r"fraction of problems $\rho_s(\tau)$")
    ax.set_title(title or f"performance profile ({len(cost)} problems)")
    ax.grid(alpha=0.3)
    return fig, _finish(fig, ax, out)


def draw_data_profile(cost: Any, *, budget: float, title: str = "",
                      out: str | Path | None = None, ax: Any = None) -> tuple[Any, list[Path]]:
    """The Moré–Wild data profile of ``cost`` over evaluations up to ``budget``."""
    import matplotlib.pyplot as plt

    c = cost.to_numpy()
    kappas = np.unique(np.concatenate([[1.0], c[np.isfinite(c)], [float(budget)]]))
    curve = prof.data_profile(cost, kappas)
    fig, ax = (plt.subplots(figsize=(7.5, 4.8)) if ax is None else (ax.figure, ax))
    for i, s in enumerate(cost.columns):
        ax.step(kappas, curve[s].to_numpy(), where="post", label=s, **_style(i, s))
    ax.set_xscale("log")
    ax.set_xlim(1.0, float(budget))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"evaluations $\kappa$ (value or value-and-gradient calls)")
    ax.set_ylabel(r"fraction of problems solved $d_s(\kappa)$")
    ax.set_title(title or f"data profile ({len(cost)} problems)")
    ax.grid(alpha=0.3, which="both")
    return fig, _finish(fig, ax, out)
