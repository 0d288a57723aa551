r"""Measures of runs on a results table: the gap to the floor, its resolution, the selection
score, epochs to a target, and the per-configuration summary table (pure pandas/NumPy).

Every function takes a :func:`paltest.testbed.results.load_table` table (one row per run and
epoch; epoch 0 is before the first step) and the problems' analytic floors
(``{problem: L* or None}``, see :func:`paltest.testbed.experiments.floors`).

**Gap and resolution.** The gap of a run at epoch :math:`e` is :math:`g_e = L_e - L^*`
(the loss itself where the floor is unknown or 0). A computed loss cannot resolve a gap
below

.. math::

    \rho = \varepsilon\,L^* + \varepsilon^2 L_0,

with :math:`\varepsilon` the dtype's machine epsilon and :math:`L_0` the run's loss before
the first step: one unit of roundoff at the floor, plus the rounding floor of residuals
that vanish at the optimum (a mean of squared residuals bottoms out near
:math:`\varepsilon^2` times its start). Gaps are clipped at :data:`RESOLUTION_FACTOR`
times that, :math:`C = 10\rho` (:func:`clip_level`); plots draw :math:`C`.

**Selection score** (:func:`score`): the mean over epochs :math:`1..E` of
:math:`\log_{10}\max(g_e, C)`; lower is better, a non-finite loss anywhere is
:math:`+\infty` (diverged). It rewards reaching low gaps early, so configurations whose
final losses tie at machine precision are told apart by their speed.

**Rounding of a score** (:func:`score_rounding`): a computed loss :math:`L_e` is off by
about :math:`\delta_e = \varepsilon L_e + \varepsilon^2 L_0` (one roundoff of the loss,
plus the residual floor), so the term :math:`\log_{10}\max(g_e, C)` by at most
:math:`\log_{10}(1 + \delta_e / \max(g_e, C))`; the mean of these bounds the score's
rounding. Near the floor a term moves by at most :math:`\log_{10}(1 + 1/10)`
(:data:`MAX_ROUNDING`, since :math:`C = 10\rho`); far above it, by about
:math:`\varepsilon`. Two scores closer than the sum of their roundings are ties
(:mod:`paltest.testbed.selection` says how they are resolved).

**Targets** (:class:`Target`): where the floor is positive, 2 % above it
(:math:`L \le 1.02\,L^*`); where it is 0, machine precision (:math:`L \le C`); else none
unless a protocol states one.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"run_id": "a", "problem": "p", "optimizer": "sgd", "seed": 0,
    ...                   "dtype": "float64", "hp_lr": 0.1, "epoch": [0, 1, 2],
    ...                   "train_loss": [1.0, 0.1, 0.01]})
    >>> float(score(t["train_loss"], 0.0, "float64"))
    -1.5
    >>> s = summary_table(t, {"p": 0.0})
    >>> int(s.loc[0, "n_seeds"]), float(s.loc[0, "final_loss_mean"])
    (1, 0.01)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MAX_ROUNDING", "RESOLUTION_FACTOR", "Target", "clip_level", "config_columns",
           "config_label", "default_target", "epochs_to", "eps", "format_summary", "gap_curve",
           "log_linear_fit", "run_table", "score", "score_rounding", "stopped_epoch",
           "summary_table"]

#: The clip :math:`C` is this many times the resolution :math:`\rho`.
RESOLUTION_FACTOR = 10.0
#: The most that rounding moves a score (decades): a term at the clip :math:`10\rho`
#: moved by :math:`\rho`.
MAX_ROUNDING = math.log10(1.0 + 1.0 / RESOLUTION_FACTOR)
#: The relative gap of the default target on problems with a positive floor.
FLOOR_TARGET = 0.02


def eps(dtype: Any) -> float:
    """The machine epsilon of ``dtype`` (``"float32"``/``"float64"`` or a NumPy dtype)."""
    return float(np.finfo(np.dtype(str(dtype))).eps)


def clip_level(floor: float | None, loss0: float, dtype: Any) -> float:
    r""":math:`C = 10\,(\varepsilon L^* + \varepsilon^2 L_0)`: gaps below it are not resolved.

    >>> clip_level(0.0, 1.0, "float64") == 10 * 2.0**-104
    True
    """
    e = eps(dtype)
    fl = float(floor) if floor else 0.0
    l0 = abs(float(loss0)) if math.isfinite(float(loss0)) else 0.0
    return RESOLUTION_FACTOR * (e * abs(fl) + e * e * l0)


def gap_curve(losses: Any, floor: float | None) -> np.ndarray:
    """``losses - floor`` as a float64 array (the losses themselves without a floor)."""
    out = np.asarray(losses, dtype=np.float64)
    return out - float(floor) if floor else out.copy()


def _clipped_gaps(losses: Any, floor: float | None, dtype: Any) -> np.ndarray | None:
    r""":math:`\max(g_e, C)` for epochs ``1..E`` (float64), or ``None`` when a loss is not
    finite or there is no epoch after 0."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size < 2 or not np.all(np.isfinite(losses)):
        return None
    c = clip_level(floor, losses[0], dtype)
    # a zero start on a zero floor leaves nothing to resolve: keep the log finite
    return np.maximum(gap_curve(losses[1:], floor), c if c > 0 else np.finfo(np.float64).tiny)


def score(losses: Any, floor: float | None, dtype: Any) -> float:
    """The selection score of one run's per-epoch losses (epoch 0 first); see the module.

    ``+inf`` when any loss is not finite or there is no epoch after 0.
    """
    g = _clipped_gaps(losses, floor, dtype)
    return math.inf if g is None else float(np.mean(np.log10(g)))


def score_rounding(losses: Any, floor: float | None, dtype: Any) -> float:
    r"""The most that rounding of the losses moves :func:`score` (decades; see the module):
    the mean over epochs :math:`1..E` of :math:`\log_{10}(1 + \delta_e/\max(g_e, C))`,
    at most :data:`MAX_ROUNDING`; 0 for a diverged run (its score is :math:`+\infty`).

    >>> score_rounding([1.0, 0.5], None, "float64") < 1e-15
    True
    """
    g = _clipped_gaps(losses, floor, dtype)
    if g is None:
        return 0.0
    losses = np.asarray(losses, dtype=np.float64)
    e = eps(dtype)
    delta = e * np.abs(losses[1:]) + e * e * abs(losses[0])
    return float(min(np.mean(np.log10(1.0 + delta / g)), MAX_ROUNDING))


@dataclass(frozen=True)
class Target:
    """A loss level to reach: ``kind`` ``"floor"`` (``value`` = the relative gap, the
    threshold is :math:`(1 + v)L^*`), ``"precision"`` (the clip :math:`C`) or ``"loss"``
    (``value`` = the loss itself)."""

    kind: str
    value: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("floor", "precision", "loss"):
            raise ValueError(f"kind: 'floor', 'precision' or 'loss', got {self.kind!r}")
        if self.kind != "precision" and not (isinstance(self.value, (int, float))
                                             and self.value > 0):
            raise ValueError(f"value: a positive number for kind {self.kind!r}, "
                             f"got {self.value!r}")

    def threshold(self, floor: float | None, clip: float) -> float:
        """The loss at or below which the target is reached."""
        if self.kind == "floor":
            if not floor:
                raise ValueError("floor: a 'floor' target needs a positive floor")
            return (1.0 + float(self.value)) * float(floor)
        if self.kind == "precision":
            return (float(floor) if floor else 0.0) + clip
        return float(self.value)

    def describe(self) -> str:
        """A short text such as ``"L <= 1.02 L*"``."""
        if self.kind == "floor":
            return f"L <= (1 + {self.value:g}) L*"
        if self.kind == "precision":
            return "L - L* <= C (machine precision)"
        return f"L <= {self.value:g}"


def default_target(floor: float | None) -> Target | None:
    """2 % above a positive floor, machine precision on a zero floor, else ``None``."""
    if floor is None or not math.isfinite(floor):
        return None
    return Target("floor", FLOOR_TARGET) if floor > 0 else Target("precision")


def epochs_to(values: Any, threshold: float, *, above: bool = False) -> float:
    """The first epoch (index) whose value is ``<= threshold`` (``>=`` with ``above``);
    ``inf`` when never reached. NaN values never reach.

    >>> epochs_to([1.0, 0.5, 0.2], 0.5), epochs_to([1.0], 0.1)
    (1.0, inf)
    """
    v = np.asarray(values, dtype=np.float64)
    hit = (v >= threshold) if above else (v <= threshold)
    idx = np.flatnonzero(hit & np.isfinite(v))
    return float(idx[0]) if idx.size else math.inf


def stopped_epoch(lr_mean: Any, lr_zero: Any = None, n_steps: Any = None) -> float:
    """The epoch from which the run never moved again (every step's lr exactly 0 in it and
    in every later epoch); NaN when it moved in its last epoch.

    ``lr_zero``/``n_steps`` are the per-epoch count of zero-lr steps and the cumulative
    step count; without them an epoch with ``lr_mean == 0`` counts as stopped.
    """
    lr = np.asarray(lr_mean, dtype=np.float64)
    if lr_zero is not None and n_steps is not None:
        steps = np.diff(np.asarray(n_steps, dtype=np.float64), prepend=0.0)
        zero = (np.asarray(lr_zero, dtype=np.float64) == steps) & (steps > 0)
    else:
        zero = lr == 0
    zero[0] = False
    if not zero.size or not zero[-1]:
        return math.nan
    moving = np.flatnonzero(~zero)
    return float(moving[-1] + 1)


def log_linear_fit(losses: Any, start: int, stop: int) -> tuple[float, float]:
    """Least-squares line of :math:`\\log_{10} L_e` against :math:`e` for
    ``start <= e <= stop``: ``(slope in decades per epoch, R^2)``; NaNs when fewer than 3
    positive points.

    >>> slope, r2 = log_linear_fit([1.0, 0.1, 0.01, 0.001], 0, 3)
    >>> round(slope, 12), round(r2, 12)
    (-1.0, 1.0)
    """
    y = np.asarray(losses, dtype=np.float64)[start:stop + 1]
    x = np.arange(start, start + y.size, dtype=np.float64)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 3:
        return math.nan, math.nan
    x, y = x[ok], np.log10(y[ok])
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (slope * x + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return float(slope), (1.0 - ss_res / ss_tot) if ss_tot > 0 else math.nan


def config_columns(table: Any) -> list[str]:
    """The columns that identify a configuration: everything of the config except the
    seed (problem, its options, dtype, namespace, batch size, epochs, optimizer, its
    hyperparameters, and ``role`` when present)."""
    lead = ["problem", "optimizer", "role", "dtype", "xp", "batch_size", "epochs"]
    cols = [c for c in lead if c in table.columns]
    cols += sorted(c for c in table.columns if c.startswith("po_"))
    cols += sorted(c for c in table.columns if c.startswith("hp_"))
    return cols


def config_label(row: Any, keys: Any) -> str:
    """``"mu=1, beta=0.4"`` from a row's ``hp_<key>`` values (missing ones left out)."""
    parts = []
    for k in keys:
        v = row.get(f"hp_{k}") if hasattr(row, "get") else row[f"hp_{k}"]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def _last(rows: Any, column: str) -> float:
    if column not in rows.columns:
        return math.nan
    return float(rows[column].iloc[-1])


def run_table(table: Any, floors: dict[str, float | None] | None = None,
              targets: dict[str, Target | None] | None = None,
              accuracy_targets: dict[str, float] | None = None) -> Any:
    """One row per run: its config columns, ``seed``, ``run_id``, the start ``loss0``, the
    final loss, ``floor``, ``clip``, final gap (absolute and relative to the floor),
    ``score``, the ``target`` and ``epochs_to_target``, final ``test_accuracy`` and
    ``epochs_to_accuracy``, the final ``evaluations`` (optimizer forward + backward
    passes) and ``seconds`` (time in steps), ``stopped_epoch`` and ``nonfinite`` steps.

    ``targets[problem]`` overrides :func:`default_target`; ``accuracy_targets[problem]``
    is a test accuracy to reach.
    """
    import pandas as pd

    floors, targets, acc_t = floors or {}, targets or {}, accuracy_targets or {}
    keys = config_columns(table)
    out = []
    for rid, rows in table.groupby("run_id", sort=False):
        rows = rows.sort_values("epoch")
        first = rows.iloc[0]
        problem, dtype = first["problem"], first.get("dtype", "float64")
        floor = floors.get(problem)
        loss = rows["train_loss"].to_numpy(dtype=np.float64)
        c = clip_level(floor, loss[0], dtype)
        target = targets.get(problem, default_target(floor))
        thr = target.threshold(floor, c) if target is not None else math.nan
        final_gap = float(gap_curve(loss[-1:], floor)[0])
        rec = {k: first[k] for k in keys}
        rec.update(
            seed=first.get("seed"), run_id=rid, n_epochs=int(rows["epoch"].iloc[-1]),
            loss0=float(loss[0]), final_loss=float(loss[-1]), floor=floor, clip=c,
            final_gap=final_gap,
            final_rel_gap=final_gap / floor if floor else math.nan,
            score=score(loss, floor, dtype),
            target=target.describe() if target is not None else None,
            target_loss=thr,
            epochs_to_target=epochs_to(loss, thr) if target is not None else math.nan)
        acc = rows["test_accuracy"].to_numpy(dtype=np.float64) if (
            "test_accuracy" in rows.columns) else None
        rec["test_accuracy"] = float(acc[-1]) if acc is not None else math.nan
        a_t = acc_t.get(problem)
        rec["accuracy_target"] = a_t if a_t is not None else math.nan
        rec["epochs_to_accuracy"] = (epochs_to(acc, a_t, above=True)
                                     if acc is not None and a_t is not None else math.nan)
        n_eval = sum(_last(rows, k) for k in ("n_fun", "n_grad"))
        rec["evaluations"] = n_eval
        rec["seconds"] = (float(rows["step_time"].sum()) if "step_time" in rows.columns
                          else _last(rows, "wall_time"))
        rec["stopped_epoch"] = stopped_epoch(
            rows["lr_mean"] if "lr_mean" in rows.columns else np.zeros(len(rows)) + np.nan,
            rows["lr_zero"] if "lr_zero" in rows.columns else None,
            rows["n_steps"] if "n_steps" in rows.columns else None)
        rec["nonfinite"] = (int(np.nansum(rows["nonfinite"])) if "nonfinite" in rows.columns
                            else 0)
        out.append(rec)
    return pd.DataFrame(out)


def summary_table(table: Any, floors: dict[str, float | None] | None = None,
                  targets: dict[str, Target | None] | None = None,
                  accuracy_targets: dict[str, float] | None = None) -> Any:
    """One row per configuration (:func:`config_columns`): ``n_seeds``, ``seeds``, final
    loss mean/min/max, ``floor``, final gap and relative gap (mean, max), ``score`` (mean),
    ``epochs_to_target`` (median, min, max; ``inf``: some seed never reached it), final
    test accuracy mean/min/max and epochs to the accuracy target, mean ``evaluations`` and
    ``seconds``, ``stopped_epoch`` (median over the seeds that stopped, and how many did)
    and the non-finite steps. Rows keep the table's order of first appearance.
    """
    import pandas as pd

    runs = run_table(table, floors, targets, accuracy_targets)
    if runs.empty:
        return runs
    keys = config_columns(runs)
    rows = []
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        rec = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        stopped = g["stopped_epoch"].dropna()
        rec.update(
            n_seeds=int(g["seed"].nunique()),
            seeds=" ".join(str(int(s)) for s in sorted(g["seed"].unique())),
            final_loss_mean=g["final_loss"].mean(), final_loss_min=g["final_loss"].min(),
            final_loss_max=g["final_loss"].max(), floor=g["floor"].iloc[0],
            final_gap_mean=g["final_gap"].mean(), final_rel_gap_mean=g["final_rel_gap"].mean(),
            final_rel_gap_max=g["final_rel_gap"].max(), score_mean=g["score"].mean(),
            target=g["target"].iloc[0],
            epochs_to_target_median=g["epochs_to_target"].median(),
            epochs_to_target_min=g["epochs_to_target"].min(),
            epochs_to_target_max=g["epochs_to_target"].max(),
            test_accuracy_mean=g["test_accuracy"].mean(),
            test_accuracy_min=g["test_accuracy"].min(),
            test_accuracy_max=g["test_accuracy"].max(),
            epochs_to_accuracy_median=g["epochs_to_accuracy"].median(),
            evaluations_mean=g["evaluations"].mean(), seconds_mean=g["seconds"].mean(),
            stopped_epoch_median=stopped.median() if len(stopped) else math.nan,
            n_stopped=int(len(stopped)), nonfinite=int(g["nonfinite"].sum()))
        rows.append(rec)
    return pd.DataFrame(rows)


_SHOWN = (("n_seeds", "n_seeds"), ("final_loss_mean", "final loss (mean)"),
          ("final_loss_min", "min"), ("final_loss_max", "max"),
          ("final_rel_gap_mean", "gap/L* (mean)"), ("epochs_to_target_median",
                                                    "epochs to target (median)"),
          ("test_accuracy_mean", "test accuracy (mean)"), ("stopped_epoch_median",
                                                           "stopped at epoch"))


def format_summary(summary: Any) -> str:
    """The summary table as text: one line per configuration, the configuration columns
    that vary (problem, optimizer and every hyperparameter or option with more than one
    value) and the main measures (columns that are empty everywhere are left out)."""
    import pandas as pd

    if summary.empty:
        return "(no runs)"
    keys = [c for c in config_columns(summary)
            if c in ("problem", "optimizer") or summary[c].astype(str).nunique(dropna=False) > 1]
    shown = [(c, name) for c, name in _SHOWN if c in summary and summary[c].notna().any()]
    t = summary[keys + [c for c, _ in shown]].rename(
        columns={**{c: name for c, name in shown},
                 **{k: k[3:] for k in keys if k.startswith(("hp_", "po_"))}})
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 160,
                           "display.max_columns", 40):
        return t.to_string(index=False, na_rep="")
