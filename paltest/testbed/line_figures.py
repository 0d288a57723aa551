"""The line analyses of the PAL paper (Sections 3 and 6: Figures 1, 2, 6, 7) as protocols,
runs, reports and figures.

Every figure trains with a :class:`paltest.testbed.lines.LineSampler` attached (the runs
are bitwise those without it) on each problem of :data:`DEFAULT_PROBLEMS` (or any
registered problem), and reads the sampled lines:

* **Figure 1** - PAL (default configuration) on every seed, lines sampled about
  :data:`LINES_PER_RUN` times per run (every ``N`` steps, ``N`` from the run's length),
  :data:`POINTS` samples each. Drawn: :data:`N_REPRESENTATIVE` representative lines of
  seed 0 with PAL's parabola and the minima, chosen **evenly spaced in training time**
  (the sampled lines at positions ``round(linspace(0, n - 1, 6))``, no look at their
  shapes). Claims ``1-convex``, ``1-parabola`` (all seeds' lines).
* **Figure 2** - the angle at the update point over training, PAL with update step
  adaptation (``alpha`` default 1/0.6) and without (``alpha = 1``), same sampling.
  Claims ``2-angle``, ``2-alpha``, ``2-narrow``.
* **Figure 6** - PAL against the exact binary line search
  (:class:`~paltest.optimizers.exact.ExactLineSearch`, defaults), same sampling: the
  angle, the training loss and the test accuracy (test loss where there is none) over
  seeds. Claims ``6-loss``, ``6-test``.
* **Figure 7** - PAL on every seed with :data:`LINES_PER_RUN_7` lines per run evenly
  spaced in training time, each with the full training loss and the losses of all the
  epoch's batches along it: their quartiles, the empirical (full) loss and the batch loss
  that defined the direction (drawn: :data:`N_REPRESENTATIVE_7` of seed 0's lines,
  evenly spaced). Claims ``7-estimator``, ``7-smaller`` (all seeds' lines; 8 lines of one
  seed, as before, left their verdicts to chance, :mod:`paltest.testbed.line_claims`).

The protocol (:func:`line_plan`): :data:`EPOCHS` per problem (10 for others), batch size
the problem's default, seeds :data:`SEEDS` (0-9; Figure 6: :data:`SEEDS_6`, 0-19, since
its claims compare one number per seed), float32 on NumPy. ``quick=True``:
2 epochs, seeds 0 and 1, the kernel problems on their first 500 rows.

Runs with the same problem, configuration, seed and sampler settings are the same run
(the settings enter the run id): they are kept in ``OUT/line-runs/`` (``<run_id>.npz``
and the :func:`paltest.testbed.lines.save_samples` files beside it), shared by the four
figures and reused when present (Figure 2's and Figure 6's PAL runs are Figure 1's).
Each figure writes ``OUT/figure<N>[-problems][-quick]/`` with ``lines.csv`` (every
sampled line of its runs), ``runs.csv`` (one row per run, final metrics),
``summary.csv`` (per problem and configuration), ``claims.json``, ``claims.md`` and the
figure (``figure<N>.png``/``.pdf``; Figure 7 also ``points.csv``, the sampled points of
its lines).

Example:
    >>> import tempfile
    >>> p = line_plan(1, quick=True, problems=["mf-rank4"], seeds=[0], epochs=1)
    >>> r = run_line_figure(p, tempfile.mkdtemp())
    >>> sorted(set(r.lines["label"])), [c.id for c in r.claims]
    (['pal'], ['1-convex/mf-rank4', '1-parabola/mf-rank4'])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paltest.optimizers import registry
from paltest.testbed import line_claims, line_stats, protocols

__all__ = ["DEFAULT_PROBLEMS", "EPOCHS", "FIGURES", "LABELS", "LINES_PER_RUN_7", "SEEDS_6",
           "LineFigureResult",
           "LinePlan", "Task", "draw_line_figure", "line_plan", "line_summary",
           "run_line_figure", "tasks"]

FIGURES = (1, 2, 6, 7)
DEFAULT_PROBLEMS = ("mlp-digits", "mf-rank4", "mushrooms")
EPOCHS = {"mlp-digits": 30, "mf-rank4": 30, "mushrooms": 10}
OTHER_EPOCHS, SEEDS, QUICK_EPOCHS, QUICK_SEEDS, QUICK_N_ROWS = 10, tuple(range(10)), 2, (0, 1), 500
LINES_PER_RUN, POINTS, N_REPRESENTATIVE, N_REPRESENTATIVE_7 = 100, 50, 6, 8
#: Figure 7's sampled lines per run (each with the full loss and every batch along it).
LINES_PER_RUN_7 = 20
#: Figure 6's seeds: its claims rest on one final loss and accuracy per seed.
SEEDS_6 = tuple(range(20))
#: The configurations: label -> (optimizer, hyperparameters).
LABELS = {"pal": ("pal", {}), "pal-no-alpha": ("pal", {"alpha": 1.0}), "exact": ("exact", {})}
_WHO = {1: ("pal",), 2: ("pal", "pal-no-alpha"), 6: ("pal", "exact"), 7: ("pal",)}


@dataclass(frozen=True)
class LinePlan:
    """What a line figure runs; build it with :func:`line_plan`."""

    figure: int
    problems: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: dict[str, int]
    quick: bool = False
    xp: str = "numpy"
    dtype: str = "float32"
    full_scale: bool = True
    start_ulps: int = 0

    @property
    def scale(self) -> str:
        """``"full"``, ``"quick"`` or ``"reduced"``."""
        return "full" if self.full_scale else "quick" if self.quick else "reduced"

    def options(self, problem: str) -> dict[str, Any]:
        """The problem options (``xp``, ``dtype``; 500 rows for kernel problems when quick)."""
        opts: dict[str, Any] = {"xp": self.xp, "dtype": self.dtype}
        if self.quick and problem in protocols.KERNEL_PROBLEMS:
            opts["n_rows"] = QUICK_N_ROWS
        return opts

    def out_name(self) -> str:
        """``figure<N>``, then the problems when not the defaults, then ``-quick``, then
        ``-ulps<k>`` for a start moved by ``k`` ulps."""
        sub = set(self.problems) != set(DEFAULT_PROBLEMS)
        return f"figure{self.figure}" + ("-" + "-".join(self.problems) if sub else "") + (
            "-quick" if self.quick else "") + (
            f"-ulps{self.start_ulps}" if self.start_ulps else "")


def line_plan(figure: int, *, problems: Any = None, seeds: Any = None,
              epochs: int | None = None, quick: bool = False, xp: str = "numpy",
              dtype: str = "float32", max_runs: int = protocols.MAX_RUNS,
              start_ulps: int = 0) -> LinePlan:
    """The plan of line Figure ``figure`` (1, 2, 6 or 7); ``problems``: registered names
    (default :data:`DEFAULT_PROBLEMS`); ``seeds``: a count or a list; ``epochs``: for
    every problem; ``start_ulps``: every run's start moved by that many ulps
    (:func:`paltest.testbed.runner.run`; the robustness check of the claims). Full scale
    means the protocol's epochs and seeds, not quick. More runs than ``max_runs`` raise
    ``ValueError`` naming ``seeds``."""
    import problems as registry_of_problems

    if figure not in FIGURES:
        raise ValueError(f"figure: must be one of {FIGURES}, got {figure!r}")
    probs = tuple(DEFAULT_PROBLEMS if problems is None else problems)
    bad = [q for q in probs if q not in registry_of_problems.names()]
    if bad or not probs:
        raise ValueError(f"problem: unknown {bad}; choose from {registry_of_problems.names()}")
    n_seeds = seeds if isinstance(seeds, int) and not isinstance(seeds, bool) else (
        len(seeds) if isinstance(seeds, (list, tuple)) else 0)
    protocols.check_max_runs(len(probs) * len(_WHO[figure]) * n_seeds, max_runs, "seeds")
    protocol_seeds = SEEDS_6 if figure == 6 else SEEDS
    if seeds is None:
        seed_list = QUICK_SEEDS if quick else protocol_seeds
    elif isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        seed_list = tuple(range(seeds))
    elif isinstance(seeds, (list, tuple)) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        seed_list = tuple(dict.fromkeys(seeds))
    else:
        raise ValueError(f"seeds: a positive count or a list of seeds >= 0, got {seeds!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                               or epochs < 1):
        raise ValueError(f"epochs: must be a positive int, got {epochs!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: must be 'float32' or 'float64', got {dtype!r}")
    ep = {q: epochs if epochs is not None else QUICK_EPOCHS if quick
          else EPOCHS.get(q, OTHER_EPOCHS) for q in probs}
    full = (not quick and all(ep[q] >= EPOCHS.get(q, OTHER_EPOCHS) for q in probs)
            and set(protocol_seeds) <= set(seed_list))
    if isinstance(start_ulps, bool) or not isinstance(start_ulps, int):
        raise ValueError(f"start_ulps: an int, got {start_ulps!r}")
    return LinePlan(figure, probs, seed_list, ep, quick, xp, dtype, full, start_ulps)


@dataclass(frozen=True)
class Task:
    """One sampled run: problem, configuration label, seed, epochs, batch size, sampler
    settings (:func:`paltest.testbed.lines.sampler_settings` arguments)."""

    problem: str
    label: str
    seed: int
    epochs: int
    batch_size: int
    options: dict[str, Any]
    sampler: dict[str, Any]
    start_ulps: int = 0

    def run_id(self) -> str:
        """The run id :func:`paltest.testbed.lines.sample_run` gives this run."""
        from paltest.testbed import lines, results

        opt, hp = LABELS[self.label]
        settings = lines.sampler_settings(registry.make(opt, **hp), **self.sampler)
        extra = {"line_sampler": settings, **(
            {"start_ulps": self.start_ulps} if self.start_ulps else {})}
        return results.run_id(results.make_config(
            self.problem, self.options, opt, registry.canonical_hyperparameters(opt, **hp),
            self.epochs, self.batch_size, self.seed, extra=extra))


def _n_train(problem: str, options: dict) -> int:
    from problems import registry as problem_registry

    return int(problem_registry.validate(problem, **options))


def tasks(p: LinePlan) -> list[Task]:
    """The runs of plan ``p`` (batch size 100, or the training set when smaller)."""
    out = []
    for q in p.problems:
        n = _n_train(q, p.options(q))
        bs = min(100, n)
        n_steps = p.epochs[q] * (n // bs)
        if p.figure == 7:
            at = sorted({int(round(v)) for v in np.linspace(0, n_steps - 1, LINES_PER_RUN_7)})
            sampler = {"at": at, "points": POINTS, "full_loss": True, "batch_quartiles": True}
        else:
            sampler = {"every": max(1, round(n_steps / LINES_PER_RUN)), "points": POINTS}
        out += [Task(q, lab, s, p.epochs[q], bs, p.options(q), sampler, p.start_ulps)
                for lab in _WHO[p.figure] for s in p.seeds]
    return out


def _done(t: Task, runs: Path) -> bool:
    rid = t.run_id()
    return (runs / f"{rid}.npz").is_file() and (runs / f"{rid}.lines.json").is_file()


def _sample_task(t: Task) -> tuple[str, Any, Any]:
    """One sampled run (executed by the workers): ``(run_id, result, samples)``; the
    client saves them, so workers need not share its filesystem."""
    from paltest.testbed import lines

    rid = t.run_id()
    opt, hp = LABELS[t.label]
    result, samples = lines.sample_run(t.problem, opt, epochs=t.epochs,
                                       batch_size=t.batch_size, seed=t.seed,
                                       hyperparameters=hp or None,
                                       problem_options=t.options,
                                       start_ulps=t.start_ulps, **t.sampler)
    if result.run_id != rid:  # pragma: no cover - a bug in Task.run_id
        raise RuntimeError(f"run id {result.run_id} differs from the planned {rid}")
    return rid, result, samples


@dataclass
class LineFigureResult:
    """A line figure run: ``plan``, ``out_dir``, ``lines`` (every sampled line, with
    ``problem``, ``label``, ``seed``, ``run_id``), ``points`` (their samples), ``runs``
    (one row per run), ``epochs`` (per run and epoch: ``train_loss`` and test metrics),
    ``summary`` and ``claims``, and the ``figure_paths`` after :func:`draw_line_figure`."""

    plan: LinePlan
    out_dir: Path
    lines: Any
    points: Any
    runs: Any
    epochs: Any
    summary: Any = None
    claims: list = field(default_factory=list)
    figure_paths: list[Path] = field(default_factory=list)


def _load(p: LinePlan, todo: list[Task], ids: list[str], runs: Path) -> tuple:
    import pandas as pd

    from paltest.testbed import lines, results

    L, P, R, E = [], [], [], []
    for t, rid in zip(todo, ids, strict=True):
        key = {"problem": t.problem, "label": t.label, "seed": t.seed, "run_id": rid}
        s = lines.load_samples(runs, rid)
        L.append(s.lines.assign(**key))
        P.append(s.points.assign(**key))
        r = results.load(runs / f"{rid}.npz")
        ep = {k: v for k, v in r.epochs.items() if k == "epoch" or k == "train_loss"
              or k.startswith("test_")}
        E.append(pd.DataFrame(ep).assign(**key))
        R.append({**key, "epochs": t.epochs, "batch_size": t.batch_size,
                  **{f"final_{k}": float(v[-1]) for k, v in ep.items() if k != "epoch"},
                  **{f"sampler_{k}": v for k, v in s.counts.items()},
                  "seconds": float(r.timings.get("total", np.nan))})
    return (pd.concat(L, ignore_index=True), pd.concat(P, ignore_index=True),
            pd.DataFrame(R), pd.concat(E, ignore_index=True))


def run_line_figure(p: LinePlan, out_dir: str | Path, *, n_jobs: int = 1,
                    backend: str = "loky", progress: bool = False,
                    scheduler: str | None = None) -> LineFigureResult:
    """Run (or reuse) the plan's sampled runs in ``out_dir/line-runs`` (``n_jobs`` in
    parallel with joblib's ``backend``; ``"dask"`` and ``scheduler`` as in
    :func:`paltest.testbed.sweep.sweep`: the results are saved here, as they arrive),
    then write the figure's tables and claims into ``out_dir/<plan.out_name()>`` (see
    the module); the figure is drawn by :func:`draw_line_figure`."""
    from joblib import delayed, parallel_config

    from paltest.testbed import cluster, lines, results

    cluster.check_backend(backend)
    cluster.check_scheduler(scheduler, backend)
    base = Path(out_dir)
    runs = base / "line-runs"
    runs.mkdir(parents=True, exist_ok=True)
    results.remove_stale_temporaries(runs)
    todo = tasks(p)
    missing = [t for t in todo if not _done(t, runs)]
    if missing:
        n = n_jobs if n_jobs < 1 else min(n_jobs, len(missing))
        with cluster.connect(backend, n_jobs, scheduler), \
                parallel_config(backend=backend, n_jobs=n):
            calls = [delayed(_sample_task)(t) for t in missing]
            out = cluster.outputs(calls)
            if progress:  # a labelled bar (not joblib's "[Parallel(n_jobs=1)]: Done" lines)
                from tqdm.auto import tqdm

                out = tqdm(out, total=len(missing), unit="run",
                           desc=f"Figure {p.figure}: sampled runs")
            for rid, result, samples in out:
                lines.save_samples(samples, runs, rid)  # first: the .npz marks completion
                results.save(result, runs)
    ids = [t.run_id() for t in todo]
    lines_, points, run_table, epochs = _load(p, todo, ids, runs)
    result = LineFigureResult(p, base / p.out_name(), lines_, points, run_table, epochs)
    _report(result)
    return result


def _summary(r: LineFigureResult) -> Any:
    import pandas as pd

    rows = []
    for (q, lab), g in r.lines.groupby(["problem", "label"], sort=False):
        runs = r.runs[(r.runs["problem"] == q) & (r.runs["label"] == lab)]
        rows.append({"problem": q, "label": lab, "n_seeds": len(runs),
                     **line_stats.shape_stats(g), **line_stats.parabola_stats(g),
                     **line_stats.angle_stats(g),
                     **{f"{c}_mean": float(runs[c].mean()) for c in runs
                        if c.startswith("final_")}})
    return pd.DataFrame(rows)


def _report(r: LineFigureResult) -> None:
    from paltest.testbed import results

    p, out = r.plan, r.out_dir
    out.mkdir(parents=True, exist_ok=True)
    r.summary = _summary(r)
    r.claims = line_claims.evaluate(p.figure, r.lines, r.runs, p.problems,
                                    full_scale=p.full_scale)
    for name, table in (("lines.csv", r.lines), ("runs.csv", r.runs),
                        ("summary.csv", r.summary)):
        results.write_text_atomic(out / name, table.to_csv(index=False))
    if p.figure == 7:
        results.write_text_atomic(out / "points.csv", r.points.to_csv(index=False))
    doc = {"figure": p.figure, "scale": p.scale, "plan": asdict(p),
           "environment": results.environment(), "claims": [c.to_json() for c in r.claims]}
    results.write_text_atomic(out / "claims.json", json.dumps(doc, indent=1))
    title = (f"Figure {p.figure}: the claims of Sections 3 and 6 ({p.scale} scale, "
             f"{len(p.seeds)} seeds, {p.dtype})")
    results.write_text_atomic(out / "claims.md",
                              line_claims.report_markdown(r.claims, title, p.problems))


def draw_line_figure(r: LineFigureResult, formats: tuple[str, ...] = ("png", "pdf")
                     ) -> list[Path]:
    """Draw ``figure<N>`` into ``r.out_dir`` (:mod:`paltest.testbed.line_plots`)."""
    import matplotlib.pyplot as plt

    from paltest.testbed import line_plots

    fig, paths = line_plots.draw(r, r.out_dir / f"figure{r.plan.figure}", formats=formats)
    plt.close(fig)
    r.figure_paths = paths
    return paths


def line_summary(r: LineFigureResult) -> str:
    """A text summary: the summary table's main columns and the claims' verdicts."""
    import pandas as pd

    cols = [c for c in ("problem", "label", "n_seeds", "n_lines", "convex_fraction",
                        "edge_fraction", "median_rel_distance", "median_abs_90_minus_angle",
                        "final_train_loss_mean", "final_test_accuracy_mean")
            if c in r.summary]
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 160):
        table = r.summary[cols].to_string(index=False)
    lines = [f"Figure {r.plan.figure} ({r.plan.scale} scale): {len(r.plan.seeds)} seeds",
             table, "claims (claims.md has the numbers):"]
    lines += [f"  [{c.verdict}] {c.id}" for c in r.claims]
    return "\n".join(lines)
