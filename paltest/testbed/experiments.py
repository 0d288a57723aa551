"""Running the Figure 8 and Figure 9 protocols (:mod:`paltest.testbed.protocols`): selection,
final runs, the report files and the figures.

A figure is run in two stages through :func:`paltest.testbed.sweep.run_configs` (parallel,
resumable, one result file per run, all in ``out_dir/runs``):

1. **selection** - for every problem, each optimizer with a grid (PAL, SGD, Adam) is tuned
   on ONE seed (``tune_seed``, 0) by a bracketed search (:mod:`paltest.testbed.selection`): the
   grid, then its step-size axis (SGD's and Adam's ``lr``, PAL's ``mu``) extended half a
   decade at a time beyond an edge winner until the winner has tried neighbours on both
   sides (a neighbour that diverged counts; reaching the cap on extensions is recorded),
   then refined to a quarter decade around the winner. The score is the mean over epochs
   of log10 of the gap to the floor, clipped at the dtype's resolution
   (:func:`paltest.testbed.metrics.score`), so configurations whose final losses tie at machine
   precision are ranked by speed; scores within rounding tie, and ties go to the
   configuration tried first (grid order, then extensions);
2. **final** - every optimizer runs on all seeds with its chosen configuration (SLS and
   the exact line search with their defaults), and PAL also with its default
   configuration (the *reference*, for the claims). A chosen configuration's tuning run
   is the same run as its final run on ``tune_seed``, so it is not repeated.

With more than one worker each round runs longest first, and the runs of stage 2 that do
not depend on the selection (the untuned optimizers' and the references) fill the
selection's rounds: a round takes those that fit into the idle time its own runs leave,
so that a round ending with one long run (an ijcnn extension) does not leave the other
worker waiting (:func:`paltest.testbed.schedule.order_round`; the lengths are the
measured seconds of the earlier rounds' runs; in the first round, with nothing measured,
every run counts the same). The final runs also start longest first. The runs and files
are the same; only their order changes.

What was tried and chosen is kept in ``out_dir/selection.json`` (written atomically): the
plan, the floors, and for every problem and optimizer every configuration tried (stage,
score, final loss, run id), the chosen one, whether it is bracketed and whether the cap
was reached, plus the final and reference run ids. :func:`report` writes
``summary.csv`` and ``summary.parquet`` (:func:`paltest.testbed.metrics.summary_table`),
``claims.json`` and ``claims.md`` (:mod:`paltest.testbed.claims`) beside it;
:func:`draw` the figures; :func:`load_figure` reads a figure back. Outputs of a run that
is not at the protocol's scale say so (titles, file metadata, claims).

Example:
    >>> import tempfile
    >>> p = plan(8, quick=True, optimizers=["sgd"], problems=["mf-rank4"], epochs=1)
    >>> result = run_figure(p, tempfile.mkdtemp(), backend="sequential")
    >>> sorted(result.selection["mf-rank4"]["sgd"]["chosen"])
    ['lr']
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paltest.optimizers import registry
from paltest.testbed import claims as _claims
from paltest.testbed import manifest, metrics, schedule, tables
from paltest.testbed.manifest import SelectionFileError
from paltest.testbed.protocols import (  # noqa: F401 - the protocols, as before, from here too
    DEFAULT_OPTIMIZERS,
    FIGURE9_MEMORY_BUDGET,
    MAX_EXTENSIONS,
    PROTOCOLS,
    QUICK_GRIDS,
    REFERENCES,
    REFINE,
    TUNING_GRIDS,
    Plan,
    Protocol,
    floors,
    out_name,
    plan,
    scale_note,
)
from paltest.testbed.selection import Bracket
from paltest.testbed.sweep import run_configs

__all__ = ["FigureResult", "SelectionFileError", "draw", "final_losses", "load_figure",
           "plan", "report", "run_figure", "summary", "sweep_summary"]

SELECTION_FORMAT = manifest.FORMAT


@dataclass
class FigureResult:
    """A figure run: the ``plan``, the final-run ``table``, the ``references`` table (PAL's
    default configuration on every seed), the ``grid`` table (every selection run), the
    ``selection`` records ``selection[problem][optimizer]`` (see the module), the
    ``floors``, the ``out_dir``, and after :func:`report` the ``summary`` table and the
    ``claims``."""

    plan: Plan
    table: Any
    references: Any
    grid: Any
    selection: dict[str, dict[str, dict[str, Any]]]
    floors: dict[str, float | None]
    out_dir: Path
    figure_paths: list[Path] = field(default_factory=list)
    summary: Any = None
    claims: list = field(default_factory=list)

    def chosen(self, problem: str, optimizer: str) -> dict[str, Any]:
        """The chosen hyperparameters (``{}`` for an optimizer run with its defaults)."""
        return dict(self.selection.get(problem, {}).get(optimizer, {}).get("chosen", {}))

    def labelled(self) -> Any:
        """The final and reference runs in one table with a ``role`` column."""
        import pandas as pd

        return pd.concat([self.table.assign(role="final"),
                          self.references.assign(role="reference")], ignore_index=True)


def _config(p: Plan, problem: str, optimizer: str, hp: dict[str, Any], seed: int) -> dict:
    from paltest.testbed import results

    return results.make_config(problem, p.options(problem), optimizer,
                               registry.canonical_hyperparameters(optimizer, **hp),
                               p.epochs, p.batch_size, seed,
                               extra={"start_ulps": p.start_ulps} if p.start_ulps else None)


def _label(jobs: dict[str, Any], what: str) -> dict[str, Any]:
    """``jobs`` with the progress bar, when shown, labelled ``what``."""
    return {**jobs, "progress": what if jobs.get("progress") else False}


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _select(p: Plan, runs: Path, fl: dict, jobs: dict, free: list[dict] | None = None,
            estimate: schedule.Estimates | None = None) -> dict[str, dict[str, dict]]:
    """The bracketed searches of every tuned optimizer on every problem, in rounds;
    ``free`` (configs that do not depend on the selection) fill the rounds' idle
    workers (see the module docstring; :func:`paltest.testbed.schedule.order_round`,
    with the seconds of the rounds' runs added to ``estimate``)."""
    from paltest.testbed import results

    brackets = {(q, o): Bracket(p.grids[o], max_extensions=p.max_extensions, refine=p.refine)
                for q in p.problems for o in p.optimizers if o in p.grids}
    dtype = p.problem_options["dtype"]
    free = list(free or ())
    if free and runs.is_dir():  # a resumed figure: fill with runs still to do only
        done = results.completed_ids(runs)
        free = [c for c in free if results.run_id(c) not in done]
    workers = schedule.workers(jobs)
    estimate = schedule.Estimates() if estimate is None else estimate
    rounds = 0
    while True:
        todo = [(key, hp, _config(p, *key, hp, p.tune_seed))
                for key, b in brackets.items() for hp in b.pending()]
        if not todo:
            break
        batch = schedule.order_round([c for _, _, c in todo], free, workers, estimate,
                                     prefer=todo[-1][0][0])
        rounds += 1
        seconds = run_configs(batch, runs, **_label(jobs, f"selection round {rounds}")).seconds
        for cfg in batch:  # the runs' seconds (a resumed run's: from its file, below)
            estimate.add(cfg, seconds.get(results.run_id(cfg)))
        for (q, o), hp, cfg in todo:
            rid = results.run_id(cfg)
            done = results.load(results.result_path(runs, rid))
            if rid not in seconds:
                estimate.add(cfg, done.timings.get("total"))
            loss = done.epochs["train_loss"]
            brackets[q, o].tell(hp, metrics.score(loss, fl[q], dtype),
                                metrics.score_rounding(loss, fl[q], dtype), run_id=rid,
                                final_train_loss=_finite(loss[-1]))
    out: dict[str, dict[str, dict]] = {q: {} for q in p.problems}
    for (q, o), b in brackets.items():
        w, ties = b.winner, {id(t) for t in b.tied}
        out[q][o] = {
            "chosen": b.best, "run_id": w.info["run_id"], "score": _finite(w.score),
            "bracketed": b.bracketed, "cap_reached": b.cap_reached,
            "grid": p.grids[o].to_json(), "max_extensions": p.max_extensions,
            "refine": p.refine,
            "trials": [{"hyperparameters": t.hyperparameters, "stage": t.stage,
                        "score": _finite(t.score), "rounding": t.rounding,
                        "tied_with_best": id(t) in ties,
                        "diverged": t.score is None or not math.isfinite(t.score),
                        "final_train_loss": t.info.get("final_train_loss"),
                        "run_id": t.info["run_id"]} for t in b.trials]}
    return out


def run_figure(p: Plan, out_dir: str | Path, *, n_jobs: int = 1, backend: str = "loky",
               progress: bool = False, scheduler: str | None = None) -> FigureResult:
    """Run (or resume) the plan: selection, then final and reference runs (see the
    module); writes ``selection.json`` and the :func:`report` files. ``backend`` and
    ``scheduler`` as in :func:`paltest.testbed.sweep.sweep` (one Dask client, or local
    cluster, serves every round)."""
    from paltest.testbed import cluster, results

    cluster.check_backend(backend)
    cluster.check_scheduler(scheduler, backend)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results.remove_stale_temporaries(out)
    with cluster.connect(backend, n_jobs, scheduler):
        return _run_figure(p, out, {"n_jobs": n_jobs, "backend": backend,
                                    "progress": progress})


def _run_figure(p: Plan, out: Path, jobs: dict[str, Any]) -> FigureResult:
    from paltest.testbed import results

    runs = out / "runs"
    fl = floors(p.problems, **p.options(p.problems[0]))
    refs = [_config(p, q, o, {}, s) for q in p.problems for o in p.references
            for s in p.seeds]
    untuned = [_config(p, q, o, {}, s) for q in p.problems for o in p.optimizers
               if o not in p.grids for s in p.seeds]
    estimate = schedule.Estimates()
    selection = _select(p, runs, fl, jobs, free=untuned + refs, estimate=estimate)
    final = [_config(p, q, o, selection[q].get(o, {}).get("chosen", {}), s)
             for q in p.problems for o in p.optimizers for s in p.seeds]
    manifest.write(out / "selection.json", {
        "plan": p.to_json(), "floors": fl, "selection": selection,
        "final_run_ids": list(dict.fromkeys(results.run_id(c) for c in final)),
        "reference_run_ids": list(dict.fromkeys(results.run_id(c) for c in refs))})
    todo = final + refs
    if schedule.workers(jobs) > 1:  # longest first (the last runs end close together)
        todo = schedule.longest_first(todo, estimate)
    run_configs(todo, runs, **_label(jobs, "final and reference runs"))
    result = load_figure(out)
    report(result)
    return result


def load_figure(out_dir: str | Path) -> FigureResult:
    """Read a figure run back from ``out_dir`` (its ``selection.json`` and ``runs/``).

    A missing ``selection.json`` raises ``FileNotFoundError``; a damaged one (its
    checksum, structure and types are checked: :mod:`paltest.testbed.manifest`), or one
    of another format, :class:`SelectionFileError` naming it (running the figure again
    rebuilds it, reusing every finished run).
    """
    from paltest.testbed import results

    out = Path(out_dir)
    path = out / "selection.json"
    if not os.path.lexists(path):
        raise FileNotFoundError(f"results_dir: no selection.json in {str(out)!r}; not the "
                                "output of 'paltest figure'")
    m = manifest.read(path)
    try:
        p = Plan.from_json(m["plan"])
    except (ValueError, KeyError, TypeError) as err:
        raise SelectionFileError(f"{path}: plan: {err}; run the same 'paltest figure' "
                                 "command again to rebuild it") from err
    selection, fl = dict(m["selection"]), dict(m["floors"])
    final_ids, ref_ids = set(m["final_run_ids"]), set(m["reference_run_ids"])
    trial_ids = {t["run_id"] for per in selection.values() for rec in per.values()
                 for t in rec["trials"]}
    table = results.load_table(out / "runs")
    ids = table["run_id"]
    return FigureResult(plan=p, table=table[ids.isin(final_ids)],
                        references=table[ids.isin(ref_ids)], grid=table[ids.isin(trial_ids)],
                        selection=selection, floors=fl, out_dir=out)


def final_losses(table: Any, metric: str = "train_loss") -> Any:
    """Per problem and optimizer: mean, min and max over seeds of the last epoch's
    ``metric`` (a pandas DataFrame indexed by problem and optimizer, with ``n_seeds``)."""
    last = table[table["epoch"] == table.groupby("run_id")["epoch"].transform("max")]
    g = last.groupby(["problem", "optimizer"])[metric]
    return g.agg(["mean", "min", "max"]).assign(n_seeds=g.count())


def sweep_summary(table: Any) -> Any:
    """:func:`paltest.testbed.metrics.summary_table` of any results table (e.g. a sweep's), with
    the floors of its problems; one row per configuration, seeds counted per
    configuration."""
    return metrics.summary_table(table, floors(sorted(set(table["problem"]))))


def _targets(p: Plan) -> tuple[dict, dict]:
    proto = PROTOCOLS[p.figure]
    return dict(proto.targets), dict(proto.accuracy_targets)


def report(result: FigureResult) -> FigureResult:
    """Compute the summary table and the claims and write ``summary.csv`` (and ``.parquet``),
    ``claims.json`` and ``claims.md`` into ``out_dir`` (atomically)."""
    from paltest.testbed import results

    p, out = result.plan, result.out_dir
    table = result.labelled()
    targets, acc = _targets(p)
    summ = metrics.summary_table(table, result.floors, targets, acc)
    if not summ.empty:  # the plan's order: problems, then final before reference, optimizers
        order = {q: i for i, q in enumerate(p.problems)}
        opts = {o: i for i, o in enumerate(p.optimizers)}
        key = summ["problem"].map(order).astype(float) * 1e4 + (
            summ["role"] == "reference") * 1e2 + summ["optimizer"].map(opts).astype(float)
        summ = summ.iloc[key.argsort(kind="stable")].reset_index(drop=True)
    result.summary = summ
    result.claims = _claims.evaluate(p.figure, table, result.floors, full_scale=p.full_scale,
                                     problems=p.problems)
    results.write_text_atomic(out / "summary.csv", result.summary.to_csv(index=False))
    tables.write_frame(result.summary, out / "summary.parquet")
    doc = {"figure": p.figure, "scale": p.scale, "seeds": list(p.seeds), "epochs": p.epochs,
           "dtype": p.problem_options["dtype"], "environment": results.environment(),
           "claims": [c.to_json() for c in result.claims]}
    results.write_text_atomic(out / "claims.json", json.dumps(doc, indent=1))
    title = f"Figure {p.figure}: the claims of Section 7 ({p.scale} scale, {len(p.seeds)} " \
            f"seeds, {p.epochs} epochs, {p.problem_options['dtype']})"
    results.write_text_atomic(out / "claims.md", _claims.to_markdown(result.claims, title))
    return result


def draw(result: FigureResult, formats: tuple[str, ...] = ("png", "pdf"),
         x: str = "epochs", *, n_jobs: int = 1, backend: str = "loky") -> list[Path]:
    """Draw the figure (final runs; PAL's default configuration dashed where it differs
    from the chosen one) against ``x`` (``"epochs"``, ``"evaluations"`` or
    ``"seconds"``), and the sensitivity plot of every tuned optimizer, into ``out_dir``.

    The plots are independent: with ``n_jobs`` > 1 they are drawn in parallel by joblib
    (``backend`` as in :func:`paltest.testbed.sweep.run_configs`; the files are the same
    as when drawn one after another)."""
    import joblib

    from paltest.testbed import figures

    p, out = result.plan, result.out_dir
    table = result.labelled()
    keep = (table["role"] == "final") | ~table["run_id"].isin(result.table["run_id"])
    table = table[keep]
    table = table.assign(label=[figures.NAMES.get(o, o) + (" (default)" if r == "reference"
                                                           else "")
                                for o, r in zip(table["optimizer"], table["role"],
                                                strict=True)])
    meta = {"scale": p.scale}
    suffix = "" if x == "epochs" else f"_{x}"
    tasks = []
    if p.figure == 8:
        tasks.append(("figure8", (table, result.floors, out / f"figure8{suffix}"),
                      {"problems": p.problems, "x": x}))
    else:
        tasks.append(("figure9", (table, out / f"figure9{suffix}"),
                      {"problems": p.problems, "x": x}))
    for o in p.grids:
        recs = {q: s[o] for q, s in result.selection.items() if o in s}
        if recs:
            tasks.append(("sensitivity", (recs, out / f"sensitivity_{o}"), {"optimizer": o}))
    common = {"formats": formats, "note": scale_note(p), "metadata": meta}
    calls = [joblib.delayed(_draw_one)(name, args, {**kw, **common})
             for name, args, kw in tasks]
    if n_jobs == 1 or len(calls) == 1:
        done = [c[0](*c[1], **c[2]) for c in calls]
    else:
        with joblib.parallel_config(backend=backend, n_jobs=n_jobs):
            done = joblib.Parallel()(calls)
    paths = [q for more in done for q in more]
    result.figure_paths = paths
    return paths


def _draw_one(name: str, args: tuple, kwargs: dict[str, Any]) -> list[Path]:
    """Draw one plot of :func:`draw` with ``paltest.testbed.figures.<name>``, close it,
    and return its files."""
    from paltest.testbed import figures

    fig, paths = getattr(figures, name)(*args, **kwargs)
    figures._plt().close(fig)
    return paths


def summary(result: FigureResult) -> str:
    """A text summary: final training loss, gap to the floor and epochs to the target per
    optimizer x problem, the test accuracy for Figure 9, the chosen configurations with
    their bracketing, and the claims' verdicts."""
    import pandas as pd

    if result.summary is None:
        report(result)
    s = result.summary
    s = s[s["role"] == "final"]
    lines = [f"Figure {result.plan.figure} ({result.plan.scale} scale): mean over "
             f"{len(result.plan.seeds)} seeds, epoch {result.plan.epochs}"]
    cols = [("final_loss_mean", "final training loss"),
            ("final_rel_gap_mean", "final gap to the floor, (L - L*)/L*"),
            ("epochs_to_target_median", "epochs to the target (median; inf: not on every "
             "seed)"),
            ("test_accuracy_mean", "final test accuracy")]
    for col, name in cols:
        if s[col].notna().any():
            t = s.pivot_table(index="optimizer", columns="problem", values=col,
                              aggfunc="first", dropna=False)
            t = t.reindex(index=[o for o in result.plan.optimizers if o in t.index],
                          columns=[q for q in result.plan.problems if q in t.columns])
            if col == "final_rel_gap_mean":  # no relative gap on a zero floor: left out
                zero = [q for q in t.columns if result.floors.get(q) == 0]
                t = t.drop(columns=zero)
                if zero:
                    name += (f" ({', '.join(zero)}: floor 0, so the final training loss "
                             "above is the gap)")
            with pd.option_context("display.float_format", "{:.4g}".format,
                                   "display.width", 120):
                lines += [f"{name}:", t.to_string()]
    if any(v is not None for v in result.floors.values()):
        lines.append("analytic floor: " + ", ".join(
            f"{q} {v:.4g}" for q, v in result.floors.items() if v is not None))
    for q in result.plan.problems:
        for o, rec in result.selection.get(q, {}).items():
            hp = metrics.config_label({f"hp_{k}": v for k, v in rec["chosen"].items()},
                                      rec["chosen"])
            cap = rec["cap_reached"]
            state = ("cap reached at the " + ", ".join(f"{k} {v} end" for k, v in cap.items())
                     if cap else "bracketed" if all(rec["bracketed"].values())
                     else "not bracketed")
            lines.append(f"chosen {o} on {q}: {hp} ({len(rec['trials'])} tried, {state})")
    lines.append("claims of Section 7 (claims.md has the numbers):")
    lines += [f"  [{c.verdict}] {c.id}" for c in result.claims]
    return "\n".join(lines)
