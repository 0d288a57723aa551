"""The Figure 8 and Figure 9 protocols of the PAL paper (Section 7) as data and functions.

A figure is run in two stages through :func:`paltest.sweep.sweep` (parallel, resumable,
one result file per run, all in ``out_dir/runs``):

1. **selection** - for every problem, the optimizers with a grid in :data:`TUNING_GRIDS`
   (PAL, SGD, Adam) run every grid configuration on ONE seed (``tune_seed``, 0); the
   configuration with the lowest final training loss (non-finite counts as +inf, ties go
   to the first in grid order) is chosen for that problem, as the paper chose PAL's;
2. **final** - every optimizer runs on all seeds with its chosen configuration (SLS and
   exact line search with their defaults). The tuning run of the chosen configuration is
   the same run as the final run on ``tune_seed``, so it is not repeated.

What was run and chosen is kept in ``out_dir/selection.json`` (the plan, the floors, the
whole grid with each configuration's final loss, the chosen configurations and the final
run ids); :func:`load_figure` reads it back for plotting.

Grids (documented choices, small on purpose, as in the paper):

* PAL: ``mu`` in {0.1, 1}, ``alpha`` in {1, 1/0.6}, ``beta`` in {0, 0.4} (8 configurations);
* SGD: ``lr`` in {0.01, 0.1, 1}; Adam: ``lr`` in {1e-3, 1e-2, 1e-1};
* SLS and exact line search: their defaults (no selection).

``quick=True`` is a smoke scale: 2 epochs, seeds 0 and 1, two configurations per grid and,
for the kernel problems, the first :data:`QUICK_N_ROWS` rows of the data file.

Example:
    >>> p = plan(8, quick=True, optimizers=["pal", "sgd"], problems=["mf-rank4"])
    >>> p.epochs, p.seeds, p.grids["pal"]
    (2, (0, 1), {'mu': [0.1, 1.0]})
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from paltest.optimizers import registry
from paltest.sweep import expand as _expand
from paltest.sweep import sweep as _run_sweep

__all__ = ["DEFAULT_OPTIMIZERS", "FIGURE9_MEMORY_BUDGET", "PROTOCOLS", "QUICK_GRIDS",
           "TUNING_GRIDS", "FigureResult", "Plan", "Protocol", "final_losses", "floors",
           "load_figure", "plan", "run_figure", "select"]


@dataclass(frozen=True)
class Protocol:
    """A figure's fixed protocol: its problems, epochs, batch size and seeds."""

    figure: int
    problems: tuple[str, ...]
    epochs: int
    batch_size: int = 100
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


PROTOCOLS: dict[int, Protocol] = {
    8: Protocol(8, ("mf-true", "mf-rank1", "mf-rank4", "mf-rank10"), epochs=50),
    9: Protocol(9, ("mushrooms", "ijcnn"), epochs=35),
}
DEFAULT_OPTIMIZERS = ("pal", "sls", "exact", "sgd", "adam")
TUNING_GRIDS: dict[str, dict[str, list]] = {
    "pal": {"mu": [0.1, 1.0], "alpha": [1.0, 1 / 0.6], "beta": [0.0, 0.4]},
    "sgd": {"lr": [0.01, 0.1, 1.0]},
    "adam": {"lr": [1e-3, 1e-2, 1e-1]},
}
QUICK_GRIDS: dict[str, dict[str, list]] = {
    "pal": {"mu": [0.1, 1.0]}, "sgd": {"lr": [0.1, 1.0]}, "adam": {"lr": [1e-2, 1e-1]},
}
QUICK_EPOCHS, QUICK_SEEDS, QUICK_N_ROWS = 2, (0, 1), 500
#: Figure 9's kernel memory per worker: both ijcnn kernels stored in float32 (3.9 GB),
#: which makes an epoch several times faster than computing them on the fly; in float64
#: they do not fit, so the kernels are computed on the fly (peak < 8 GB either way).
FIGURE9_MEMORY_BUDGET = 4.5e9
_KERNEL_PROBLEMS = {"mushrooms", "ijcnn", "w8a", "rcv1", "kernel-logreg"}


@dataclass(frozen=True)
class Plan:
    """Everything a figure run needs; build it with :func:`plan`."""

    figure: int
    problems: tuple[str, ...]
    optimizers: tuple[str, ...]
    epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    tune_seed: int
    grids: dict[str, dict[str, list]]
    problem_options: dict[str, Any]
    quick: bool = False

    def options(self, problem: str) -> dict[str, Any]:
        """The problem options of ``problem`` (``n_rows`` only for kernel problems)."""
        opts = dict(self.problem_options)
        if problem not in _KERNEL_PROBLEMS:
            opts.pop("n_rows", None)
        return opts


def plan(figure: int, *, optimizers: Any = None, problems: Any = None, seeds: Any = None,
         epochs: int | None = None, quick: bool = False, xp: str = "numpy",
         dtype: str = "float32", problem_options: dict[str, Any] | None = None,
         tune_seed: int | None = None) -> Plan:
    """The plan of Figure ``figure`` (8 or 9) with the given overrides.

    ``optimizers``: registry names (default :data:`DEFAULT_OPTIMIZERS`); ``problems``: a
    subset of the figure's problems (default all); ``seeds``: an int ``n`` (seeds
    ``0..n-1``) or a list; ``epochs``: overrides the protocol's. ``tune_seed`` defaults to
    the first seed. ``quick`` sets the smoke scale (see the module docstring) before the
    overrides apply.
    """
    if figure not in PROTOCOLS:
        raise ValueError(f"figure: must be one of {sorted(PROTOCOLS)}, got {figure!r}")
    proto = PROTOCOLS[figure]
    opts = list(DEFAULT_OPTIMIZERS if optimizers is None else optimizers)
    unknown = [o for o in opts if o not in registry.names()]
    if unknown or not opts:
        raise ValueError(f"optimizers: unknown {unknown}; choose from {registry.names()}")
    probs = list(proto.problems if problems is None else problems)
    bad = [p for p in probs if p not in proto.problems]
    if bad or not probs:
        raise ValueError(f"problems: {bad} not in Figure {figure}; choose from "
                         f"{list(proto.problems)}")
    seed_list = _seed_list(QUICK_SEEDS if quick and seeds is None else
                           proto.seeds if seeds is None else seeds)
    n_epochs = epochs if epochs is not None else QUICK_EPOCHS if quick else proto.epochs
    if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
        raise ValueError(f"epochs: must be a positive int, got {n_epochs!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: must be 'float32' or 'float64', got {dtype!r}")
    po = {"xp": xp, "dtype": dtype, **(problem_options or {})}
    if quick and figure == 9:
        po.setdefault("n_rows", QUICK_N_ROWS)
    elif figure == 9:
        po.setdefault("memory_budget", FIGURE9_MEMORY_BUDGET)
    source = QUICK_GRIDS if quick else TUNING_GRIDS
    grids = {o: source[o] for o in opts if o in source}
    return Plan(figure, tuple(probs), tuple(dict.fromkeys(opts)), n_epochs, proto.batch_size,
                seed_list, seed_list[0] if tune_seed is None else tune_seed, grids, po, quick)


def _seed_list(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        return tuple(range(seeds))
    if isinstance(seeds, (list, tuple)) and seeds and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        return tuple(dict.fromkeys(seeds))
    raise ValueError(f"seeds: expected a positive count or a list of seeds >= 0, got {seeds!r}")


def floors(names: Any, **options: Any) -> dict[str, float | None]:
    """The analytic training-loss floor of each problem (``None`` where unknown).

    Only the matrix-factorization problems (cheap to build) are asked; others get None.
    """
    import problems

    out: dict[str, float | None] = {}
    for name in names:
        out[name] = (problems.get(name, **{k: v for k, v in options.items() if k != "n_rows"})
                     .floor if name.startswith("mf-") else None)
    return out


def select(grid_runs: Any, keys: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The configuration with the lowest final training loss, and every configuration.

    ``grid_runs``: rows of a :func:`paltest.results.load_table` table (one run per
    configuration, any epochs); ``keys``: the hyperparameters of the grid. Returns
    ``(best, outcome)`` where ``outcome`` lists ``{"hyperparameters", "final_train_loss",
    "run_id"}`` in table order. Non-finite losses count as +inf.
    """
    outcome = []
    for rid, rows in grid_runs.groupby("run_id", sort=False):
        last = rows.loc[rows["epoch"].idxmax()]
        loss = float(last["train_loss"])
        outcome.append({"hyperparameters": {k: _py(last[f"hp_{k}"]) for k in keys},
                        "final_train_loss": loss if math.isfinite(loss) else None,
                        "run_id": rid})
    if not outcome:
        raise ValueError("grid_runs: no runs to select from")
    best = min(outcome, key=lambda o: math.inf if o["final_train_loss"] is None
               else o["final_train_loss"])
    return best["hyperparameters"], outcome


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass
class FigureResult:
    """A figure run: the ``plan``, the final-run ``table``, the ``grid`` table (selection
    runs on the tuning seed), the chosen configurations ``selection[problem][optimizer]``,
    the ``floors`` and the ``out_dir``."""

    plan: Plan
    table: Any
    grid: Any
    selection: dict[str, dict[str, dict[str, Any]]]
    outcome: dict[str, dict[str, list]]
    floors: dict[str, float | None]
    out_dir: Path
    figure_paths: list[Path] = field(default_factory=list)


def _grid(p: Plan, problem: str, optimizers: list[dict[str, Any]], seeds: list[int]) -> dict:
    return {"epochs": p.epochs, "batch_size": p.batch_size, "seeds": seeds,
            "problems": [{"name": problem, "options": p.options(problem)}],
            "optimizers": optimizers}


def run_figure(p: Plan, out_dir: str | Path, *, n_jobs: int = 1, backend: str = "loky",
               progress: bool = False) -> FigureResult:
    """Run (or resume) the plan: selection stage, then final runs; see the module."""
    from paltest import results

    out = Path(out_dir)
    runs = out / "runs"
    tuned = [o for o in p.optimizers if o in p.grids]
    tune_ids: dict[tuple[str, str], list[str]] = {}
    for problem in p.problems:
        for o in tuned:
            g = _grid(p, problem, [{"name": o, "hyperparameters": p.grids[o]}], [p.tune_seed])
            tune_ids[problem, o] = [results.run_id(c) for c in _expand(g)]
    if tuned:  # one sweep over all problems, for parallelism
        grid = {"epochs": p.epochs, "batch_size": p.batch_size, "seeds": [p.tune_seed],
                "problems": [{"name": q, "options": p.options(q)} for q in p.problems],
                "optimizers": [{"name": o, "hyperparameters": p.grids[o]} for o in tuned]}
        _run_sweep(grid, runs, n_jobs=n_jobs, backend=backend, progress=progress)
    table = results.load_table(runs)
    selection: dict[str, dict[str, dict]] = {q: {} for q in p.problems}
    outcome: dict[str, dict[str, list]] = {q: {} for q in p.problems}
    for (problem, o), ids in tune_ids.items():
        best, out_o = select(table[table["run_id"].isin(ids)], list(p.grids[o]))
        selection[problem][o], outcome[problem][o] = best, out_o
    final_ids = []
    for problem in p.problems:
        entries = [{"name": o, "hyperparameters": selection[problem].get(o, {})}
                   for o in p.optimizers]
        s = _run_sweep(_grid(p, problem, entries, list(p.seeds)), runs, n_jobs=n_jobs,
                         backend=backend, progress=progress)
        final_ids += s.run_ids
    fl = floors(p.problems, **p.options(p.problems[0]))
    manifest = {"plan": asdict(p), "floors": fl, "selection": selection, "grid": outcome,
                "final_run_ids": final_ids}
    (out / "selection.json").write_text(json.dumps(manifest, indent=1))
    return load_figure(out)


def load_figure(out_dir: str | Path) -> FigureResult:
    """Read a figure run back from ``out_dir`` (its ``selection.json`` and ``runs/``)."""
    from paltest import results

    out = Path(out_dir)
    path = out / "selection.json"
    if not path.is_file():
        raise FileNotFoundError(f"results_dir: no selection.json in {str(out)!r}; not the "
                                "output of 'paltest figure'")
    m = json.loads(path.read_text())
    pd_ = dict(m["plan"])
    for key in ("problems", "optimizers", "seeds"):
        pd_[key] = tuple(pd_[key])
    p = Plan(**pd_)
    table = results.load_table(out / "runs")
    grid_ids = {o["run_id"] for per in m["grid"].values() for lst in per.values() for o in lst}
    return FigureResult(plan=p, table=table[table["run_id"].isin(m["final_run_ids"])],
                        grid=table[table["run_id"].isin(grid_ids)], selection=m["selection"],
                        outcome=m["grid"], floors=m["floors"], out_dir=out)


def final_losses(table: Any, metric: str = "train_loss") -> Any:
    """Per problem and optimizer: mean, min and max over seeds of the last epoch's
    ``metric`` (a pandas DataFrame indexed by problem and optimizer, with ``n_seeds``)."""
    last = table[table["epoch"] == table.groupby("run_id")["epoch"].transform("max")]
    g = last.groupby(["problem", "optimizer"])[metric]
    return g.agg(["mean", "min", "max"]).assign(n_seeds=g.count())


def draw(result: FigureResult, formats: tuple[str, ...] = ("png", "pdf"),
         sensitivity: tuple[str, ...] = ("pal",)) -> list[Path]:
    """Draw the figure, and a sensitivity plot of each grid in ``sensitivity`` (PAL's by
    default; every grid's outcome is in ``selection.json``), into ``out_dir``."""
    import matplotlib.pyplot as plt

    from paltest import figures

    p, out = result.plan, result.out_dir
    if p.figure == 8:
        fig, paths = figures.figure8(result.table, result.floors, out / "figure8",
                                     problems=p.problems, formats=formats)
    else:
        fig, paths = figures.figure9(result.table, out / "figure9", problems=p.problems,
                                     formats=formats)
    plt.close(fig)
    for o in sensitivity:
        if o in p.grids and o in set(result.grid["optimizer"]):
            chosen = {q: s[o] for q, s in result.selection.items() if o in s}
            fig, more = figures.sensitivity(result.grid, out / f"sensitivity_{o}",
                                            optimizer=o, chosen=chosen, formats=formats,
                                            problems=p.problems)
            plt.close(fig)
            paths += more
    result.figure_paths = paths
    return paths


def summary(result: FigureResult) -> str:
    """A text summary: final training loss (mean over seeds) per optimizer x problem, the
    test accuracy for Figure 9, the floors, and the chosen configurations."""
    import pandas as pd

    lines = []
    metrics = ["train_loss"] + (["test_accuracy"] if result.plan.figure == 9 else [])
    for metric in metrics:
        fl = final_losses(result.table, metric)["mean"].unstack("problem")
        fl = fl.reindex(columns=[q for q in result.plan.problems if q in fl.columns],
                        index=[o for o in result.plan.optimizers if o in fl.index])
        lines.append(f"final {metric} (mean over {len(result.plan.seeds)} seeds, "
                     f"epoch {result.plan.epochs}):")
        with pd.option_context("display.float_format", "{:.4g}".format,
                               "display.width", 120):
            lines.append(fl.to_string())
    if any(v is not None for v in result.floors.values()):
        lines.append("analytic floor: " + ", ".join(
            f"{q} {v:.4g}" for q, v in result.floors.items() if v is not None))
    for o in result.plan.grids:
        for q in result.plan.problems:
            if o in result.selection.get(q, {}):
                hp = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in result.selection[q][o].items())
                lines.append(f"chosen {o} on {q}: {hp}")
    return "\n".join(lines)
