"""Per-line statistics of sampled lines (:mod:`paltest.testbed.lines`) for the line claims
(:mod:`paltest.testbed.line_claims`) and the line figures' summaries: the shares of line
shapes, the distance of PAL's parabola minimum from the sampled minimum, the angles at
the update point, and Figure 7's batch-against-full distances. Each takes rows of the
``lines`` table (one problem and configuration; any seeds) and returns numbers or one
value per line.

Example:
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"moved": True, "shape": ["convex", "nonconvex"],
    ...                      "pal_min": [1.1, 2.0], "s_min": [1.0, 1.0], "angle": [80.0, 95.0],
    ...                      "lsq_residual": 0.01})
    >>> shape_stats(rows)["convex_fraction"], [round(float(d), 3) for d in distance(rows)]
    (0.5, [0.1, 1.0])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["abs_angle", "angle_stats", "convex", "delta", "distance", "median",
           "parabola_stats", "ratio", "shape_stats"]


def median(v: Any) -> float:
    """The median of ``v`` as a float (NaN when empty)."""
    v = np.asarray(v, dtype=np.float64)
    return float(np.median(v)) if v.size else math.nan


def shape_stats(g: Any) -> dict[str, float]:
    """The number of lines that moved and are not flat, and the shares of their shapes."""
    moved = g[g["moved"].astype(bool) & (g["shape"] != "flat")]
    n = len(moved)
    frac = {s: float((moved["shape"] == s).mean()) if n else math.nan
            for s in ("convex", "edge", "nonconvex")}
    return {"n_lines": n, "convex_fraction": frac["convex"], "edge_fraction": frac["edge"],
            "nonconvex_fraction": frac["nonconvex"]}


def distance(g: Any) -> np.ndarray:
    """|s_PAL - s_min| / |s_min| per line with an interior minimum (inf: no parabola
    minimum)."""
    inner = g[g["moved"].astype(bool) & g["shape"].isin(["convex", "nonconvex"])]
    pal, smin = inner["pal_min"].to_numpy(float), inner["s_min"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(pal - smin) / np.abs(smin)
    return np.where(np.isfinite(d), d, np.inf)


def parabola_stats(g: Any) -> dict[str, float]:
    """The medians of :func:`distance`, of s_PAL / s_min and of the least-squares residual."""
    d = distance(g)
    inner = g[g["moved"].astype(bool) & g["shape"].isin(["convex", "nonconvex"])]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = inner["pal_min"].to_numpy(float) / inner["s_min"].to_numpy(float)
    return {"n_interior": int(d.size), "median_rel_distance": median(d),
            "median_ratio_pal_to_sampled": median(r[np.isfinite(r)]),
            "median_lsq_residual": median(inner["lsq_residual"].dropna())}


def angle_stats(g: Any) -> dict[str, float]:
    """The median |90 - angle|, the median angle and the share of angles below 90."""
    a = g["angle"].dropna().to_numpy(float)
    return {"n_angles": int(a.size), "median_abs_90_minus_angle": median(np.abs(90 - a)),
            "median_angle": median(a),
            "fraction_beyond_minimum": float(np.mean(a < 90)) if a.size else math.nan}


def convex(rows: Any) -> Any:
    """1.0 per convex line, 0.0 per other line that moved and is not flat."""
    moved = rows[rows["moved"].astype(bool) & (rows["shape"] != "flat")]
    return (moved["shape"] == "convex").to_numpy(float)


def abs_angle(rows: Any) -> Any:
    """|90 - angle| per line with an angle."""
    return np.abs(90 - rows["angle"].dropna().to_numpy(float))


def ratio(rows: Any) -> Any:
    """s_PAL / s_min per line with an interior minimum (finite ratios only)."""
    inner = rows[rows["moved"].astype(bool) & rows["shape"].isin(["convex", "nonconvex"])]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = inner["pal_min"].to_numpy(float) / inner["s_min"].to_numpy(float)
    return r[np.isfinite(r)]


def delta(rows: Any) -> Any:
    """|s_min(batch) - s_min(full)| / |step| per line."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.abs(rows["s_min"] - rows["full_s_min"]) / np.abs(rows["step"])).to_numpy(
            float)
