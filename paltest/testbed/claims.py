r"""The statements of the PAL paper's Section 7 about Figures 8 and 9, evaluated on runs.

:func:`evaluate` takes a :func:`paltest.testbed.results.load_table` table of a figure's runs (a
``role`` column says ``"final"`` for the chosen configurations and ``"reference"`` for
PAL's default configuration, which may repeat final runs; without it every run is final),
the problems' floors and the
dtype, and returns one :class:`Claim` per statement and panel. Each claim carries the
paper's words, the test that makes them measurable, the verdict (:data:`HOLDS`,
:data:`FAILS` or :data:`NOT_MEASURABLE`), the numbers per optimizer and the seeds they
rest on. Nothing here runs or plots; :func:`to_markdown` renders a report.

The tests (thresholds stated before the runs, in this module's constants):

* **8-floor** (``mf-rank1``, ``mf-rank4``; no interpolation): the median over seeds of
  the epochs PAL needs to come within :data:`FLOOR_GAP` (2 %) of the analytic floor, and
  the same for SLS, are both below the medians of SGD and of Adam (a seed that never
  gets there counts as never). Every optimizer's final relative gap is reported beside.
* **8-precision** (``mf-rank10``, ``mf-true``; interpolation): PAL and SLS reach machine
  precision, :math:`L \le C = 10\,\varepsilon^2 L_0` (:mod:`paltest.testbed.metrics`: the
  relative residual :math:`\sqrt{L/L_0} \le \sqrt{10}\,\varepsilon`), on every seed within
  the protocol, and decrease linearly until then: the least-squares line of
  :math:`\log_{10} L` against the epoch, from epoch 0 to the first epoch at precision,
  has :math:`R^2 \ge` :data:`LINEAR_R2` on every seed.
* **9-mushrooms**: PAL and SLS reach a training loss of :data:`MUSHROOMS_LOSS` and a test
  accuracy of :data:`MUSHROOMS_ACCURACY` within the protocol, on every seed.
* **9-ijcnn**: PAL ends with a lower training loss than SLS on every seed (paired by
  seed), for the selected PAL configuration and for PAL's default configuration.

A claim is *not measurable at this scale* when the figure was not run at the protocol's
scale (fewer epochs, seeds or rows, e.g. ``--quick``; its numbers are still reported), or
when a needed optimizer or problem is missing.

Example:
    >>> import pandas as pd
    >>> rows = [{"run_id": f"{o}{s}", "problem": "ijcnn", "optimizer": o, "seed": s,
    ...          "dtype": "float32", "epoch": e, "train_loss": [0.7, l][e]}
    ...         for o, l in (("pal", 0.10), ("sls", 0.12)) for s in (0, 1) for e in (0, 1)]
    >>> for c in evaluate(9, pd.DataFrame(rows), {}):
    ...     print(f"{c.id}: {c.verdict}")
    9-mushrooms/mushrooms: not measurable at this scale
    9-ijcnn/ijcnn/selected: holds
    9-ijcnn/ijcnn/default: not measurable at this scale
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from paltest.testbed import metrics

__all__ = ["FAILS", "FLOOR_GAP", "HOLDS", "LINEAR_R2", "MUSHROOMS_ACCURACY",
           "MUSHROOMS_LOSS", "NOT_MEASURABLE", "Claim", "evaluate", "to_markdown"]

HOLDS, FAILS, NOT_MEASURABLE = "holds", "does not hold", "not measurable at this scale"
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


@dataclass
class Claim:
    """One statement on one panel: ``id`` (e.g. ``"8-floor/mf-rank4"``), ``figure``,
    ``problem``, the paper's ``statement``, the ``test`` applied, the ``verdict``, a
    ``reason`` when not measurable, the ``numbers`` per optimizer and the ``seeds``."""

    id: str
    figure: int
    problem: str
    statement: str
    test: str
    verdict: str
    reason: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite numbers as strings ``"inf"``/``"nan"``)."""
        return _jsonable(asdict(self))


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and getattr(v, "shape", None) == ():
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _median(values: Any) -> float:
    vals = sorted(float(v) for v in values)
    if not vals:
        return math.nan
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


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


def _verdict(ok: bool, full_scale: bool, missing: list[str], problem_present: bool) -> tuple:
    if not problem_present:
        return NOT_MEASURABLE, "the problem was not run"
    if missing:
        return NOT_MEASURABLE, f"not run: {', '.join(missing)}"
    if not full_scale:
        return NOT_MEASURABLE, "reduced scale (the protocol's epochs, seeds and rows " \
                               "were not all run); the numbers are shown for reference"
    return (HOLDS if ok else FAILS), ""


def _floor_claim(runs: Any, problem: str, full_scale: bool) -> Claim:
    nums = _per_optimizer(runs, problem, ["epochs_to_target", "final_rel_gap"])
    for rec in nums.values():
        rec["epochs_to_target_median"] = _median(rec["epochs_to_target"])
        rec["final_rel_gap_mean"] = sum(rec["final_rel_gap"]) / len(rec["final_rel_gap"])
    four = ("pal", "sls", "sgd", "adam")
    miss = _missing(nums, four)
    ok = not miss and (max(nums[o]["epochs_to_target_median"] for o in ("pal", "sls"))
                       < min(nums[o]["epochs_to_target_median"] for o in ("sgd", "adam")))
    verdict, reason = _verdict(ok, full_scale, miss, bool(nums))
    if verdict == FAILS and all(math.isinf(nums[o]["epochs_to_target_median"]) for o in four):
        verdict, reason = NOT_MEASURABLE, "no optimizer came within the distance"
    return Claim(f"8-floor/{problem}", 8, problem, _QUOTES["8-floor"],
                 f"median epochs to L <= (1 + {FLOOR_GAP:g}) L* of PAL and of SLS both below "
                 "those of SGD and of Adam; final relative gaps (L - L*)/L* reported",
                 verdict, reason, nums, _seeds(nums))


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
        rec["epochs_to_precision_median"] = _median(rec["epochs_to_target"])
    miss = _missing(nums, ("pal", "sls"))
    ok = not miss and all(
        all(math.isfinite(e) for e in nums[o]["epochs_to_target"])
        and all(r >= LINEAR_R2 for r in nums[o]["r2"]) for o in ("pal", "sls"))
    verdict, reason = _verdict(ok, full_scale, miss, bool(nums))
    return Claim(f"8-precision/{problem}", 8, problem, _QUOTES["8-precision"],
                 "PAL and SLS reach L <= C = 10 eps^2 L0 (relative residual <= sqrt(10) eps) "
                 f"on every seed, and log10 L is linear in the epoch until then (R^2 >= "
                 f"{LINEAR_R2:g} on every seed)", verdict, reason, nums, _seeds(nums))


def _mushrooms_claim(runs: Any, full_scale: bool) -> Claim:
    problem = "mushrooms"
    nums = _per_optimizer(runs, problem, ["final_loss", "test_accuracy", "epochs_to_target",
                                          "epochs_to_accuracy"])
    for rec in nums.values():
        rec["epochs_to_loss_median"] = _median(rec["epochs_to_target"])
        rec["epochs_to_accuracy_median"] = _median(rec["epochs_to_accuracy"])
    miss = _missing(nums, ("pal", "sls"))
    ok = not miss and all(
        all(math.isfinite(e) for e in nums[o]["epochs_to_target"] + nums[o]["epochs_to_accuracy"])
        for o in ("pal", "sls"))
    verdict, reason = _verdict(ok, full_scale, miss, bool(nums))
    return Claim(f"9-mushrooms/{problem}", 9, problem, _QUOTES["9-mushrooms"],
                 f"PAL and SLS reach training loss <= {MUSHROOMS_LOSS:g} and test accuracy "
                 f">= {MUSHROOMS_ACCURACY:g} within the protocol on every seed", verdict,
                 reason, nums, _seeds(nums))


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
        ok = False
        if not miss:
            a = dict(zip(nums["pal"]["seeds"], nums["pal"]["final_loss"], strict=True))
            b = dict(zip(nums["sls"]["seeds"], nums["sls"]["final_loss"], strict=True))
            common = sorted(set(a) & set(b))
            nums["paired_seeds"] = common
            nums["pal_below_sls"] = [a[s] < b[s] for s in common]
            ok = bool(common) and all(nums["pal_below_sls"])
            if not common:
                miss = ["seeds shared by PAL and SLS"]
        elif "pal" not in nums and role == "reference":
            miss = ["PAL's default configuration on every seed"]
        verdict, reason = _verdict(ok, full_scale, miss, len(sub) > 0)
        out.append(Claim(f"9-ijcnn/{problem}/{which}", 9, problem, _QUOTES["9-ijcnn"],
                         f"PAL ({which} configuration) ends with a lower training loss than "
                         "SLS on every seed", verdict, reason, nums,
                         nums.get("paired_seeds", [])))
    return out


def _seeds(nums: dict) -> list[int]:
    return sorted({s for rec in nums.values() if isinstance(rec, dict)
                   for s in rec.get("seeds", [])})


def evaluate(figure: int, table: Any, floors: dict[str, float | None], *,
             full_scale: bool = True) -> list[Claim]:
    """The claims of Figure ``figure`` (8 or 9) on ``table`` (see the module).

    ``floors``: ``{problem: L*}``; ``full_scale``: whether the runs follow the protocol's
    scale (else every verdict is :data:`NOT_MEASURABLE`, with the numbers).
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
    if figure == 8:
        return ([_floor_claim(final, q, full_scale) for q in ("mf-rank1", "mf-rank4")]
                + [_precision_claim(table, final, q, full_scale)
                   for q in ("mf-rank10", "mf-true")])
    return [_mushrooms_claim(final, full_scale), *_ijcnn_claims(runs, full_scale)]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "never"
        return f"{v:.3g}"
    return str(v)


def to_markdown(claims: list[Claim], title: str = "Claims of Section 7") -> str:
    """A Markdown report: per claim, the statement, the test, the verdict and a table of
    the numbers per optimizer (medians and ranges over seeds)."""
    lines = [f"# {title}", ""]
    for c in claims:
        lines += [f"## {c.id}: **{c.verdict}**", "", f"> {c.statement}", "",
                  f"Test: {c.test}.", ""]
        if c.reason:
            lines += [f"Why not measurable: {c.reason}.", ""]
        opts = {k: v for k, v in c.numbers.items() if isinstance(v, dict)}
        if opts:
            # the per-seed lists (their medians are shown; the summary values derived
            # from them are in claims.json)
            first = next(iter(opts.values()))
            cols = [k for k, v in first.items() if k != "seeds" and isinstance(v, list)]
            lines.append("| optimizer | seeds | " + " | ".join(cols) + " |")
            lines.append("|---" * (len(cols) + 2) + "|")
            for o, rec in opts.items():
                cells = []
                for k in cols:
                    v = rec.get(k)
                    if isinstance(v, list) and v:
                        lo, hi = min(v), max(v)
                        cells.append(f"{_fmt(_median(v))} [{_fmt(lo)}, {_fmt(hi)}]"
                                     if len(v) > 1 else _fmt(v[0]))
                    else:
                        cells.append(_fmt(v))
                lines.append(f"| {o} | {' '.join(map(str, rec.get('seeds', [])))} | "
                             + " | ".join(cells) + " |")
            lines.append("")
        extra = {k: v for k, v in c.numbers.items() if not isinstance(v, dict)}
        for k, v in extra.items():
            lines.append(f"- {k}: {v}")
        if extra:
            lines.append("")
    lines.append("Lists show the median over seeds and [min, max]; 'never' means the level "
                 "was not reached within the run.")
    return "\n".join(lines) + "\n"
