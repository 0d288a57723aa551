r"""The statements of the PAL paper's Section 7 about Figures 8 and 9, evaluated on runs.

:func:`evaluate` takes a :func:`paltest.testbed.results.load_table` table of a figure's runs (a
``role`` column says ``"final"`` for the chosen configurations and ``"reference"`` for
PAL's default configuration, which may repeat final runs; without it every run is final),
the problems' floors and the
dtype, and returns one :class:`Claim` per statement and panel. Each claim carries the
paper's words, the test that makes them measurable, the verdict (:data:`HOLDS`,
:data:`FAILS`, :data:`INCONCLUSIVE` or :data:`NOT_MEASURABLE`), the numbers per
optimizer and the seeds they
rest on, and its :class:`~paltest.testbed.uncertainty.Test`\ s (statistic, interval,
threshold). Nothing here runs or plots; :func:`to_markdown` renders a report.

The tests (thresholds stated before the runs, in this module's constants). Each is a
statistic over seeds with its bootstrap interval (:mod:`paltest.testbed.uncertainty`:
the seeds resampled, paired across the optimizers, which share seeds), and a test holds
or fails only when its whole 95 % interval lies on one side of the threshold; otherwise
it is *inconclusive*. A claim holds when all its tests hold and fails when one fails.
An epoch never reached counts as infinitely late.

* **8-floor** (``mf-rank1``, ``mf-rank4``; no interpolation): PAL and SLS come within
  :data:`FLOOR_GAP` (2 %) of the analytic floor in fewer epochs than SGD and Adam: the
  statistic is :math:`\min(m_{SGD}, m_{Adam}) - \max(m_{PAL}, m_{SLS})`, :math:`m` the
  median over seeds of the epochs to the target, and it must be :math:`> 0`. Every
  optimizer's final relative gap is reported beside.
* **8-precision** (``mf-rank10``, ``mf-true``; interpolation): PAL and SLS reach machine
  precision, :math:`L \le C = 10\,\varepsilon^2 L_0` (:mod:`paltest.testbed.metrics`: the
  relative residual :math:`\sqrt{L/L_0} \le \sqrt{10}\,\varepsilon`), within the
  protocol (the median over seeds of the epochs to precision at most the protocol's
  epochs), and decrease linearly until then: the least-squares line of
  :math:`\log_{10} L` against the epoch, from epoch 0 to the first epoch at precision,
  has a median :math:`R^2 \ge` :data:`LINEAR_R2` over seeds.
* **9-mushrooms**: PAL and SLS reach a training loss of :data:`MUSHROOMS_LOSS` and a test
  accuracy of :data:`MUSHROOMS_ACCURACY` within the protocol (the medians over seeds of
  the epochs to them at most the protocol's epochs).
* **9-ijcnn**: PAL ends with a lower training loss than SLS: the mean over seeds of
  :math:`\log_{10}(L_{SLS}/L_{PAL})` (paired by seed) is :math:`> 0`, for the selected
  PAL configuration and for PAL's default configuration (the share of seeds on which
  PAL ends lower is reported).

A claim is *not measurable at this scale* when the figure was not run at the protocol's
scale (fewer epochs, seeds or rows, e.g. ``--quick``; its numbers are still reported), or
when a needed optimizer or problem is missing.

Example:
    >>> import pandas as pd
    >>> rows = [{"run_id": f"{o}{s}", "problem": "ijcnn", "optimizer": o, "seed": s,
    ...          "dtype": "float32", "epoch": e, "train_loss": [0.7, l + s / 100][e]}
    ...         for o, l in (("pal", 0.10), ("sls", 0.12)) for s in range(5)
    ...         for e in (0, 1)]
    >>> for c in evaluate(9, pd.DataFrame(rows), {}):
    ...     print(f"{c.id}: {c.verdict}")
    9-mushrooms/mushrooms: not measurable at this scale
    9-ijcnn/ijcnn/selected: holds
    9-ijcnn/ijcnn/default: not measurable at this scale
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from paltest.testbed import metrics
from paltest.testbed import uncertainty as unc
from paltest.testbed.claim_records import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURABLE,
    Claim,
    median,
    to_markdown,
    verdict_of,
)

__all__ = ["FAILS", "FLOOR_GAP", "HOLDS", "INCONCLUSIVE", "LINEAR_R2", "MUSHROOMS_ACCURACY",
           "MUSHROOMS_LOSS", "NOT_MEASURABLE", "Claim", "evaluate", "to_markdown"]

#: 8-floor: the distance from the floor to reach, relative to the floor.
FLOOR_GAP = 0.02
#: 8-precision: the least R^2 of the log-linear fit over the decreasing stretch.
LINEAR_R2 = 0.9
#: 9-mushrooms: the training loss and test accuracy to reach within the protocol.
MUSHROOMS_LOSS, MUSHROOMS_ACCURACY = 1e-3, 0.99

_QUOTES = {
    "8-floor": "Figure 8 shows that PAL such as SLS converge faster to an artificial "
               "optimization floor on non-over-parameterized models (k=4) of the matrix "
               "factorization problem",
    "8-precision": "In the interpolation case PAL and SLS converge linearly to machine "
                   "precision.",
    "9-mushrooms": "we observe that PAL and SLS converge fast on the mushrooms task, for "
                   "which the interpolation condition holds (Figure 9)",
    "9-ijcnn": "However, PAL converges faster on the ijcnn task, for which the "
               "interpolation condition does not hold.",
}


_ORDER = ("pal", "sls", "exact", "sgd", "adam")


def _per_optimizer(runs: Any, problem: str, columns: list[str]) -> dict[str, dict]:
    out = {}
    sub = runs[runs["problem"] == problem]
    names = sorted(dict.fromkeys(sub["optimizer"]), key=lambda o: (
        _ORDER.index(o) if o in _ORDER else len(_ORDER), o))
    for opt, g in ((o, sub[sub["optimizer"] == o]) for o in names):
        g = g.sort_values("seed")
        rec: dict[str, Any] = {"seeds": [int(s) for s in g["seed"]]}
        for c in columns:
            rec[c] = [float(v) for v in g[c]]
        out[str(opt)] = rec
    return out


def _missing(numbers: dict, needed: tuple[str, ...]) -> list[str]:
    return [o for o in needed if o not in numbers]


def _verdict(tests: list[unc.Test], full_scale: bool, missing: list[str],
             problem_present: bool) -> tuple:
    if not problem_present:
        return NOT_MEASURABLE, "the problem was not run"
    if missing:
        return NOT_MEASURABLE, f"not run: {', '.join(missing)}"
    if not full_scale:
        return NOT_MEASURABLE, "reduced scale (the protocol's epochs, seeds and rows " \
                               "were not all run); the numbers are shown for reference"
    return verdict_of(tests)


def _epochs(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)  # inf: never (kept in order by the bootstrap)


def _paired(nums: dict, names: tuple[str, ...], key: str) -> list[np.ndarray]:
    """``nums[o][key]`` of each optimizer ``o`` on the seeds all of them ran, in order."""
    common = sorted(set.intersection(*(set(nums[o]["seeds"]) for o in names)))
    return [_epochs([dict(zip(nums[o]["seeds"], nums[o][key], strict=True))[s]
                     for s in common]) for o in names]


def _median_stat(x: Any, axis: int = -1) -> Any:
    return np.median(x, axis=axis)


def _within(name: str, values: list[float], epochs: int) -> unc.Test:
    """``name``: the median over seeds of ``values`` (epochs to a level) is at most
    ``epochs`` (reached within the protocol)."""
    return unc.test(name, unc.over_seeds(_median_stat, _epochs(values)), "<=", epochs)


def _n_epochs(runs: Any, problem: str) -> int:
    sub = runs[runs["problem"] == problem]
    return int(sub["n_epochs"].max()) if "n_epochs" in sub and len(sub) else 0


def _floor_claim(runs: Any, problem: str, full_scale: bool) -> Claim:
    nums = _per_optimizer(runs, problem, ["epochs_to_target", "final_rel_gap"])
    for rec in nums.values():
        rec["epochs_to_target_median"] = median(rec["epochs_to_target"])
        rec["final_rel_gap_mean"] = sum(rec["final_rel_gap"]) / len(rec["final_rel_gap"])
    four = ("pal", "sls", "sgd", "adam")
    miss = _missing(nums, four)
    tests = []
    if not miss:
        def margin(pal: Any, sls: Any, sgd: Any, adam: Any, axis: int = -1) -> Any:
            m = [np.median(v, axis=axis) for v in (pal, sls, sgd, adam)]
            return np.minimum(m[2], m[3]) - np.maximum(m[0], m[1])
        iv = unc.over_seeds(margin, *_paired(nums, four, "epochs_to_target"))
        tests.append(unc.test("median epochs to the target: min(SGD, Adam) - max(PAL, SLS)",
                              iv, ">", 0.0))
    verdict, reason = _verdict(tests, full_scale, miss, bool(nums))
    if verdict in (FAILS, INCONCLUSIVE) and all(
            math.isinf(nums[o]["epochs_to_target_median"]) for o in four):
        verdict, reason = NOT_MEASURABLE, "no optimizer came within the distance"
    return Claim(f"8-floor/{problem}", 8, problem, _QUOTES["8-floor"],
                 f"median epochs to L <= (1 + {FLOOR_GAP:g}) L* of PAL and of SLS both below "
                 "those of SGD and of Adam (the margin's 95% interval over seeds above 0); "
                 "final relative gaps (L - L*)/L* reported", verdict, reason, nums,
                 _seeds(nums), tests)


def _precision_claim(table: Any, runs: Any, problem: str, full_scale: bool) -> Claim:
    nums = _per_optimizer(runs, problem, ["epochs_to_target", "final_loss", "clip", "loss0"])
    for opt, rec in nums.items():
        slopes, r2s = [], []
        for rid in runs[(runs["problem"] == problem) & (runs["optimizer"] == opt)] \
                .sort_values("seed")["run_id"]:
            loss = table[table["run_id"] == rid].sort_values("epoch")["train_loss"]
            hit = runs.loc[runs["run_id"] == rid, "epochs_to_target"].iloc[0]
            stop = int(hit) if math.isfinite(hit) else len(loss) - 1
            s, r2 = metrics.log_linear_fit(loss.to_numpy(), 0, stop)
            slopes.append(s)
            r2s.append(r2)
        rec["slope_decades_per_epoch"], rec["r2"] = slopes, r2s
        rec["epochs_to_precision_median"] = median(rec["epochs_to_target"])
    miss = _missing(nums, ("pal", "sls"))
    tests = []
    for o in () if miss else ("pal", "sls"):
        tests.append(_within(f"{o}: median epochs to precision", nums[o]["epochs_to_target"],
                             _n_epochs(runs, problem)))
        r2 = np.nan_to_num(np.asarray(nums[o]["r2"], dtype=np.float64), nan=-np.inf)
        tests.append(unc.test(f"{o}: median R^2 of the log-linear fit",
                              unc.over_seeds(_median_stat, r2), ">=", LINEAR_R2))
    verdict, reason = _verdict(tests, full_scale, miss, bool(nums))
    return Claim(f"8-precision/{problem}", 8, problem, _QUOTES["8-precision"],
                 "PAL and SLS reach L <= C = 10 eps^2 L0 (relative residual <= sqrt(10) eps) "
                 "within the protocol (median epochs over seeds), and log10 L is linear in "
                 f"the epoch until then (median R^2 over seeds >= {LINEAR_R2:g}); 95% "
                 "intervals over seeds", verdict, reason, nums, _seeds(nums), tests)


def _mushrooms_claim(runs: Any, full_scale: bool) -> Claim:
    problem = "mushrooms"
    nums = _per_optimizer(runs, problem, ["final_loss", "test_accuracy", "epochs_to_target",
                                          "epochs_to_accuracy"])
    for rec in nums.values():
        rec["epochs_to_loss_median"] = median(rec["epochs_to_target"])
        rec["epochs_to_accuracy_median"] = median(rec["epochs_to_accuracy"])
    miss = _missing(nums, ("pal", "sls"))
    tests = []
    for o in () if miss else ("pal", "sls"):
        e = _n_epochs(runs, problem)
        tests += [_within(f"{o}: median epochs to the loss", nums[o]["epochs_to_target"], e),
                  _within(f"{o}: median epochs to the accuracy",
                          nums[o]["epochs_to_accuracy"], e)]
    verdict, reason = _verdict(tests, full_scale, miss, bool(nums))
    return Claim(f"9-mushrooms/{problem}", 9, problem, _QUOTES["9-mushrooms"],
                 f"PAL and SLS reach training loss <= {MUSHROOMS_LOSS:g} and test accuracy "
                 f">= {MUSHROOMS_ACCURACY:g} within the protocol (median epochs over seeds; "
                 "95% intervals over seeds)", verdict, reason, nums, _seeds(nums), tests)


def _ijcnn_claims(runs: Any, full_scale: bool) -> list[Claim]:
    problem = "ijcnn"
    out = []
    sub = runs[runs["problem"] == problem]
    sls = sub[(sub["optimizer"] == "sls") & (sub["role"] == "final")]
    for which, role in (("selected", "final"), ("default", "reference")):
        pal = sub[(sub["optimizer"] == "pal") & (sub["role"] == role)]
        nums: dict[str, Any] = {}
        for name, g in (("pal", pal), ("sls", sls)):
            g = g.sort_values("seed").drop_duplicates("seed")
            if len(g):
                nums[name] = {"seeds": [int(s) for s in g["seed"]],
                              "final_loss": [float(v) for v in g["final_loss"]],
                              "score": [float(v) for v in g["score"]]}
        miss = _missing(nums, ("pal", "sls"))
        tests = []
        if not miss:
            a = dict(zip(nums["pal"]["seeds"], nums["pal"]["final_loss"], strict=True))
            b = dict(zip(nums["sls"]["seeds"], nums["sls"]["final_loss"], strict=True))
            common = sorted(set(a) & set(b))
            nums["paired_seeds"] = common
            nums["pal_below_sls"] = [a[s] < b[s] for s in common]
            nums["pal_below_sls_share"] = (float(np.mean(nums["pal_below_sls"])) if common
                                           else math.nan)
            if not common:
                miss = ["seeds shared by PAL and SLS"]
            else:
                d = log_ratio([b[s] for s in common], [a[s] for s in common])
                tests.append(unc.test("mean log10(L_SLS / L_PAL) over seeds",
                                      unc.over_seeds(_mean_stat, d), ">", 0.0))
        elif "pal" not in nums and role == "reference":
            miss = ["PAL's default configuration on every seed"]
        verdict, reason = _verdict(tests, full_scale, miss, len(sub) > 0)
        out.append(Claim(f"9-ijcnn/{problem}/{which}", 9, problem, _QUOTES["9-ijcnn"],
                         f"PAL ({which} configuration) ends with a lower training loss than "
                         "SLS: the mean over seeds of log10(L_SLS / L_PAL), paired by seed, "
                         "above 0 (95% interval over seeds)", verdict, reason, nums,
                         nums.get("paired_seeds", []), tests))
    return out


def _mean_stat(x: Any, axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


def log_ratio(num: Any, den: Any) -> np.ndarray:
    """``log10(num / den)`` per seed, both floored at float64's smallest normal (a loss of
    exactly 0 stays finite and ordered)."""
    tiny = np.finfo(np.float64).tiny
    return (np.log10(np.maximum(np.asarray(num, dtype=np.float64), tiny))
            - np.log10(np.maximum(np.asarray(den, dtype=np.float64), tiny)))


def _seeds(nums: dict) -> list[int]:
    return sorted({s for rec in nums.values() if isinstance(rec, dict)
                   for s in rec.get("seeds", [])})


def evaluate(figure: int, table: Any, floors: dict[str, float | None], *,
             full_scale: bool = True, problems: Any = None) -> list[Claim]:
    """The claims of Figure ``figure`` (8 or 9) on ``table`` (see the module).

    ``floors``: ``{problem: L*}``; ``full_scale``: whether the runs follow the protocol's
    scale (else every verdict is :data:`NOT_MEASURABLE`, with the numbers);
    ``problems``: the problems the figure ran (default: all of the figure's): claims
    about other problems are left out, not reported as missing.
    """
    if figure not in (8, 9):
        raise ValueError(f"figure: 8 or 9, got {figure!r}")
    if "role" not in table.columns:
        table = table.assign(role="final")
    targets = {"mushrooms": metrics.Target("loss", MUSHROOMS_LOSS)}
    for q, fl in floors.items():
        if fl is not None:
            targets[q] = (metrics.Target("floor", FLOOR_GAP) if fl > 0
                          else metrics.Target("precision"))
    runs = metrics.run_table(table, floors, targets, {"mushrooms": MUSHROOMS_ACCURACY})
    if runs.empty:
        runs = runs.reindex(columns=["problem", "optimizer", "role", "seed", "run_id"])
    final = runs[runs["role"] == "final"]
    ran = None if problems is None else set(problems)
    out = []
    if figure == 8:
        out += [_floor_claim(final, q, full_scale) for q in ("mf-rank1", "mf-rank4")]
        out += [_precision_claim(table, final, q, full_scale) for q in ("mf-rank10", "mf-true")]
    else:
        out += [_mushrooms_claim(final, full_scale), *_ijcnn_claims(runs, full_scale)]
    return [c for c in out if ran is None or c.problem in ran]


