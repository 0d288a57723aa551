"""The ``paltest`` command: reproduce Figures 8 and 9, run one optimizer, sweep, plot, profile.

Examples::

    paltest figure 1 --quick              # lines and PAL's parabolas (Section 3)
    paltest figure 8                      # full scale: 4 panels x 5 optimizers x 5 seeds
    paltest figure 8 --quick --out /tmp/r # smoke scale, a few seconds
    paltest figure 9 --dataset mushrooms --jobs 2
    paltest run mf-rank4 pal --hp mu=0.1 --epochs 10
    paltest sweep grid.json --jobs 4
    paltest sweep --example > grid.toml   # a commented example grid to start from
    paltest sweep grid.toml --plugin my_problems.py   # with problems of your own
    paltest plot results/figure8
    paltest profile --problems tiny --jobs 2   # solvers on CUTEst: performance profiles

Every command is a thin layer over the library (:mod:`paltest.testbed.experiments`,
:mod:`paltest.testbed.figures`, :func:`paltest.testbed.runner.run`,
:func:`paltest.testbed.sweep.sweep`). Bad
options exit with status 2, before anything runs, with the command's usage line and a
message naming the option (an unwritable ``--out``, an unknown ``--backend``, every bad
entry of a sweep grid); failures while running (e.g. a data file that cannot be found or
is damaged) exit with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

from paltest import cli_profile
from paltest.cli_args import (
    key_value,
    max_runs_of,
    nonneg_int,
    out_dir,
    parallel_options,
    parse_seeds,
    plugin,
    positive_bytes,
    positive_int,
    resolve_backend,
    scheduler_errors,
    shown_options,
)

__all__ = ["build_parser", "main", "parse_seeds"]

XP_CHOICES = ("numpy", "array_api_strict", "jax", "torch", "cupy")
X_CHOICES = ("epochs", "evaluations", "seconds")


def _common(out_default: str = "results") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--out", default=out_default, metavar="DIR", type=out_dir,
                   help="directory for results and figures, checked to be writable "
                        "(default: %(default)s/)")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    g.add_argument("--plugin", type=plugin, action="append", default=[], metavar="MODULE",
                   help="a module (name or .py file) that registers problems of your own "
                        "with problems.registry.register (repeatable; added to "
                        "PALTEST_PLUGINS for the worker processes)")
    return p


def _scale(jobs: bool = True, epochs: str = "the protocol's") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("scale and backend")
    g.add_argument("--xp", default="numpy", choices=XP_CHOICES,
                   help="array namespace (default: %(default)s)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="floating-point precision (default: %(default)s, as the reference)")
    g.add_argument("--epochs", type=positive_int if jobs else nonneg_int, metavar="N",
                   help=f"epochs (default: {epochs}" + ("" if jobs else "; 0: only the "
                                                        "start is evaluated") + ")")
    if not jobs:
        return p
    parallel_options(g)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``paltest`` (subcommands figure, run, sweep, plot).

    Each subcommand's parser is in its namespace as ``command_parser``.
    """
    from paltest.testbed.sweep import example_grid

    top = argparse.ArgumentParser(
        prog="paltest", description=__doc__.split("\n\n")[0],
        epilog="Run 'paltest COMMAND --help' for the options of a command.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common, scale = _common(), _scale()

    f = sub.add_parser(
        "figure", parents=[common, scale], help="reproduce Figure 1, 2, 6, 7, 8 or 9",
        description="Figures 1, 2, 6 and 7 (the line analyses of Sections 3 and 6: "
        "representative lines with PAL's parabola, the angle at the update point with and "
        "without alpha, PAL against the exact line search, batch against full loss along "
        "lines) run on mlp-digits, mf-rank4 and mushrooms (--problem for others); their "
        "sampled runs go to OUT/line-runs/, their tables, claims and figure to "
        "OUT/figure<N>[-problems][-quick]/. "
        "Figure 8 (matrix factorization, no download) or Figure 9 "
        "(RBF-kernel classification on mushrooms and ijcnn): PAL's (mu, alpha, beta) and "
        "SGD's and Adam's learning rates are chosen on one seed per problem by a bracketed "
        "search (step sizes extended beyond an edge winner, scored by the mean log gap to "
        "the floor), then all seeds run. The runs, selection.json, summary.csv, the claims "
        "report (claims.json, claims.md) and the PNG/PDF figures go to "
        "OUT/figure<N>[-dataset][-quick]/; the verdicts are printed at the end.")
    f.add_argument("number", type=int, choices=(1, 2, 6, 7, 8, 9), metavar="FIGURE",
                   help="the figure: 1, 2, 6, 7, 8 or 9")
    f.add_argument("--problem", nargs="+", metavar="NAME",
                   help="Figures 1, 2, 6, 7 only: the registered problems to run (default: "
                        "mlp-digits mf-rank4 mushrooms)")
    f.add_argument("--seeds", type=parse_seeds, metavar="SEEDS",
                   help="a count (5: seeds 0-4), a list (0,1,2) or a range (0-4) "
                        "(default: the protocol's, Figure 8 0-4, Figures 1, 2, 7 and 9 "
                        "0-9, Figure 6 0-19; --quick: 0,1)")
    f.add_argument("--optimizers", metavar="NAMES",
                   help="comma-separated optimizer names (default: pal,sls,exact,sgd,adam)")
    f.add_argument("--dataset", nargs="+", choices=("mushrooms", "ijcnn"),
                   help="Figure 9 only: the datasets to run (default: both)")
    f.add_argument("--data-dir", metavar="DIR",
                   help="Figure 9 only: the LIBSVM data directory (default: $PALTEST_DATA)")
    f.add_argument("--memory-budget", type=positive_bytes, metavar="BYTES",
                   help="Figure 9 only: memory for stored kernels per worker (default "
                        "4.5e9: both ijcnn kernels stored in float32; in float64 they are "
                        "computed on the fly)")
    f.add_argument("--quick", action="store_true",
                   help="smoke scale: 2 epochs, seeds 0 and 1, 2-point grids with one "
                        "extension, and 500 data rows for Figure 9 and the kernel problems "
                        "of Figures 1-7 (outputs say 'quick scale')")
    f.add_argument("--x", default="epochs", choices=X_CHOICES,
                   help="x-axis of the curves: epochs, evaluations (forward + backward "
                        "passes) or seconds in steps (default: %(default)s)")

    r = sub.add_parser("run", parents=[common, _scale(jobs=False, epochs="10")],
                       help="one problem x one optimizer",
                       description="Train one optimizer on one problem and save the result "
                       "file to OUT/runs/.")
    r.add_argument("problem", help="problem name (e.g. mf-rank4, mushrooms, quadratic)")
    r.add_argument("optimizer", help="optimizer name (e.g. pal, sls, exact, sgd, adam)")
    r.add_argument("--hp", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="an optimizer hyperparameter (repeatable), e.g. --hp mu=0.1")
    r.add_argument("--po", type=key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="a problem option (repeatable), e.g. --po n_rows=500")
    r.add_argument("--seed", type=nonneg_int, default=0, help="the run's seed (default: 0)")
    r.add_argument("--batch-size", type=positive_int, metavar="B",
                   help="mini-batch size (default: the problem's default_batch_size: 100, "
                        "or the training set when smaller; 1 for quadratic, a tenth of "
                        "the training set for batch-quadratic and least-squares)")

    s = sub.add_parser(
        "sweep", parents=[common], help="run a grid from a JSON/TOML file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Run a grid of problems x problem options x optimizers x hyperparameters x "
            "seeds from a JSON or TOML file, in parallel with joblib. The whole grid is "
            "checked first: every bad entry is reported with its key, and nothing runs. It "
            "is resumable: finished runs in OUT/runs/ are skipped, damaged result files "
            "are run again. The runs' tables are also parquet files for pandas, polars or "
            "DuckDB (OUT/runs/tables/), and OUT/summary.csv and .parquet summarize them.",
            88),
        epilog="example grid ('paltest sweep --example > grid.toml' writes it):\n\n"
               + textwrap.indent(example_grid(), "  "))
    s.add_argument("config", nargs="?", help="the grid file (.json or .toml)")
    s.add_argument("--example", action="store_true",
                   help="print the example grid (TOML, shown below) and exit")
    parallel_options(s.add_argument_group("parallel runs"))

    pl = sub.add_parser("plot", help="plot a results directory",
                        description="Draw the figures of a results directory: the Figure 8/9 "
                        "layout and sensitivity plots for 'paltest figure' output, else loss, "
                        "accuracy and step-size curves of every run.")
    pl.add_argument("results_dir", metavar="RESULTS_DIR",
                    help="a 'paltest figure' output folder, or a folder of result files")
    pl.add_argument("--out", metavar="DIR", type=out_dir,
                    help="where to write (default: RESULTS_DIR)")
    pl.add_argument("--x", default="epochs", choices=X_CHOICES,
                    help="x-axis: epochs, evaluations or seconds (default: %(default)s)")
    cli_profile.add_parser(sub, common)
    for p in sub.choices.values():
        p.set_defaults(command_parser=p)  # errors print under the command's usage line
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``paltest`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args, args.command_parser)
    except MemoryError as err:
        print(f"paltest: error: out of memory ({type(err).__name__}: {err}); a smaller "
              "problem, fewer --jobs or a larger machine may do", file=sys.stderr)
        return 1
    except Exception as err:
        if not _is_failure(err):
            raise
        print(f"paltest: error: {err}", file=sys.stderr)
        return 1


def _is_failure(err: BaseException) -> bool:
    """A failure while running (exit status 1): a file that cannot be found, read or
    written, a damaged data file, a failed download, a plugin that cannot be imported
    (``PALTEST_PLUGINS``), runs of a sweep that failed."""
    from paltest.optimizers.base import NonFiniteError
    from problems import datasets, plugins

    return isinstance(err, (FileNotFoundError, RuntimeError, OSError, NonFiniteError,
                            plugins.PluginError,
                            datasets.ChecksumError, datasets.MalformedDataError))


def _options(pairs: list[tuple[str, Any]], option: str,
             parser: argparse.ArgumentParser) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            parser.error(f"{option}: {key} given twice")
        out[key] = value
    return out


def _check_xp(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``--xp`` installed and ``--dtype`` available on it (float64 on JAX needs x64)."""
    from paltest import backend

    try:
        xp = backend.resolve_namespace(args.xp)
    except (ImportError, ValueError) as err:
        parser.error(f"--xp: {err}")
    try:
        backend.float_dtype(xp, args.dtype)
    except (TypeError, ValueError) as err:
        parser.error(f"--dtype: {str(err).removeprefix('dtype: ')}")


#: The one line the drawing commands print (before running anything) without matplotlib.
NO_MATPLOTLIB = ("matplotlib is not installed, so no figures are drawn; to draw them: "
                 "pip install 'paltest[plot]'")


def _can_draw() -> bool:
    """Whether matplotlib is installed (the ``plot`` extra)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _line_figure(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from paltest.testbed import line_figures as lf

    for opt in ("optimizers", "dataset", "memory_budget"):
        if getattr(args, opt) is not None:
            parser.error(f"--{opt.replace('_', '-')}: only for figures 8 and 9")
    if args.x != "epochs":
        parser.error("--x: only for figures 8 and 9")
    _check_xp(args, parser)
    resolve_backend(args, parser)
    try:
        p = lf.line_plan(args.number, problems=args.problem, seeds=args.seeds,
                         epochs=args.epochs, quick=args.quick, xp=args.xp, dtype=args.dtype,
                         max_runs=max_runs_of(args))
    except ValueError as err:
        parser.error(f"--{err}")
    if args.data_dir is not None:
        os.environ["PALTEST_DATA"] = str(Path(args.data_dir).expanduser().resolve())
    draw = _can_draw()
    if not draw:
        print(f"paltest: {NO_MATPLOTLIB} (tables and claims only)", flush=True)
    print(f"Figure {args.number} ({p.scale} scale): {', '.join(p.problems)}, seeds "
          f"{list(p.seeds)}, {args.dtype} on {args.xp}; runs in {Path(args.out) / 'line-runs'}",
          flush=True)
    with scheduler_errors(parser):
        result = lf.run_line_figure(p, args.out, n_jobs=args.jobs, backend=args.backend,
                                    progress=not args.no_progress, scheduler=args.scheduler)
    paths = lf.draw_line_figure(result) if draw else []
    print("\n" + lf.line_summary(result))
    if draw:
        print("\nfigures written:\n" + "\n".join(f"  {q}" for q in paths))
    print("tables: " + ", ".join(str(result.out_dir / f) for f in (
        "lines.csv", "runs.csv", "summary.csv", "claims.json", "claims.md")))
    return 0


def _figure(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from paltest.testbed import experiments

    if args.number in (1, 2, 6, 7):
        return _line_figure(args, parser)
    if args.problem is not None:
        parser.error("--problem: only for figures 1, 2, 6 and 7 (figure 9: --dataset)")
    for opt in ("dataset", "data_dir", "memory_budget"):
        if args.number == 8 and getattr(args, opt) is not None:
            parser.error(f"--{opt.replace('_', '-')}: only for figure 9")
    _check_xp(args, parser)
    resolve_backend(args, parser)
    optimizers = None if args.optimizers is None else [
        o.strip() for o in args.optimizers.split(",") if o.strip()]
    po = {} if args.memory_budget is None else {"memory_budget": args.memory_budget}
    try:
        p = experiments.plan(args.number, optimizers=optimizers, problems=args.dataset,
                             seeds=args.seeds, epochs=args.epochs, quick=args.quick,
                             xp=args.xp, dtype=args.dtype, problem_options=po,
                             max_runs=max_runs_of(args))
    except ValueError as err:
        parser.error(f"--{str(err)}" if str(err).startswith(("optimizers", "seeds")) else
                     str(err))
    if args.data_dir is not None:
        os.environ["PALTEST_DATA"] = str(Path(args.data_dir).expanduser().resolve())
    out = Path(args.out) / experiments.out_name(p)
    n_grid = len(p.problems) * sum(len(g.points()) for g in p.grids.values())
    draw = _can_draw()
    if not draw:
        print(f"paltest: {NO_MATPLOTLIB} (tables and claims only)", flush=True)
    print(f"Figure {args.number} ({p.scale} scale): {len(p.problems)} problems x "
          f"{len(p.optimizers)} optimizers x {len(p.seeds)} seeds, {p.epochs} epochs, "
          f"{args.dtype} on {args.xp}; {n_grid} selection runs plus their extensions, then "
          f"the final runs, into {out}/runs", flush=True)
    with scheduler_errors(parser):
        result = experiments.run_figure(p, out, n_jobs=args.jobs, backend=args.backend,
                                        progress=not args.no_progress,
                                        scheduler=args.scheduler)
    # The plots are drawn here (their files go to --out), in parallel only on this machine.
    local = args.backend in ("loky", "threading", "sequential")
    paths = (experiments.draw(result, x=args.x, n_jobs=args.jobs if local else 1,
                              backend=args.backend if local else "loky") if draw else [])
    print("\n" + experiments.summary(result))
    if draw:
        print("\nfigures written:\n" + "\n".join(f"  {q}" for q in paths))
    print("tables: " + ", ".join(str(out / f) for f in ("selection.json", "summary.csv",
                                                        "claims.json", "claims.md")))
    return 0


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import problems
    from paltest.optimizers import registry
    from paltest.optimizers.base import NonFiniteError
    from paltest.testbed import results
    from paltest.testbed.runner import run

    _check_xp(args, parser)
    if not problems.known(args.problem):
        parser.error(f"problem: unknown {args.problem!r}; choose one of {problems.names()} "
                     "or cutest:NAME")
    if args.optimizer not in registry.names():
        parser.error(f"optimizer: unknown {args.optimizer!r}; choose one of "
                     f"{registry.names()}")
    hps = _options(args.hp, "--hp", parser)
    try:
        registry.canonical_hyperparameters(args.optimizer, **hps)
    except (TypeError, ValueError) as err:
        parser.error(f"--hp: {err}")
    po = _options(args.po, "--po", parser)
    for key in ("xp", "dtype"):
        if key in po:
            parser.error(f"--po: {key} is set with --{key}, not --po")
    po = {"xp": args.xp, "dtype": args.dtype, **po}
    try:
        problem = problems.get(args.problem, **po)
    except (TypeError, ValueError) as err:
        if _is_failure(err):
            raise
        # a family's unknown member (cutest:NOPE) is the problem argument's error
        parser.error(str(err) if str(err).startswith("problem:") else f"--po: {err}")
    except MemoryError as err:
        raise RuntimeError(f"problem {args.problem} with --po {shown_options(po)}: out of memory "
                           f"({err})") from err
    batch_size = problem.default_batch_size if args.batch_size is None else args.batch_size
    if batch_size > problem.n_train:
        parser.error(f"--batch-size: {batch_size} exceeds the training set size "
                     f"{problem.n_train} of {args.problem}")
    epochs = 10 if args.epochs is None else args.epochs
    try:
        result = run(problem, args.optimizer, epochs=epochs, batch_size=batch_size,
                     seed=args.seed, problem_options=po, problem_name=args.problem,
                     hyperparameters=hps, progress=not args.no_progress)
    except (NonFiniteError, MemoryError) as err:  # a failure of this run: exit status 1
        raise RuntimeError(f"run {args.optimizer} on {args.problem} (seed {args.seed}): "
                           f"{type(err).__name__}: {err}") from err
    path = results.save(result, Path(args.out) / "runs")
    ep = result.epochs
    extra = "".join(f", {k} {float(ep[k][-1]):.4g}" for k in ep if k.startswith("test_"))
    print(f"{args.optimizer} on {args.problem}: train_loss {float(ep['train_loss'][0]):.4g}"
          f" -> {float(ep['train_loss'][-1]):.4g} after {len(ep['epoch']) - 1} epochs{extra}"
          f" ({result.timings['total']:.2f} s)")
    print(f"result: {path}")
    return 0


def _sweep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from paltest.testbed import experiments, metrics, results, tables
    from paltest.testbed.sweep import SweepError, example_grid, expand, load_config, run_configs

    if args.example:
        if args.config is not None:
            parser.error("--example: prints the example grid; give no config file")
        print(example_grid(), end="")
        return 0
    if args.config is None:
        parser.error("config: required (paltest sweep --example prints an example grid)")
    if not Path(args.config).is_file():
        parser.error(f"config: no such file {args.config!r}")
    resolve_backend(args, parser)
    try:
        grid = load_config(args.config)
        configs = expand(grid, max_runs=max_runs_of(args))  # every bad entry, before any run
    except (TypeError, ValueError, ImportError) as err:
        if _is_failure(err):
            raise
        parser.error(f"config: {err}")
    except RecursionError:
        parser.error("config: nested too deep to be a grid")
    out = Path(args.out) / "runs"
    print(f"sweep: {len(configs)} runs planned (those already in {out} are skipped), "
          f"backend {args.backend}", flush=True)
    failed = None
    with scheduler_errors(parser):
        try:
            s = run_configs(configs, out, n_jobs=args.jobs, backend=args.backend,
                            progress=not args.no_progress, scheduler=args.scheduler)
        except SweepError as err:  # the others ran: summarize them, then exit 1
            s, failed = err.summary, err
    tables.refresh(out)  # out/tables/*.parquet, for pandas, polars, DuckDB (as sweep())
    print(f"sweep: {s.ran - len(failed.failures if failed else ())} runs done, "
          f"{s.skipped} already there; results in {out}")
    table = results.load_table(out)
    table = table[table["run_id"].isin(s.run_ids)]
    summ = experiments.sweep_summary(table)
    path = results.write_text_atomic(Path(args.out) / "summary.csv", summ.to_csv(index=False))
    tables.write_frame(summ, Path(args.out) / "summary.parquet")
    print(metrics.format_summary(summ))
    print(f"summary: {path} (and summary.parquet); tables: {tables.tables_dir(out)}")
    if failed is not None:
        print(f"paltest: error: {failed}", file=sys.stderr)
        return 1
    return 0


def _plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from paltest.testbed import experiments, figures, results

    src = Path(args.results_dir)
    if not _can_draw():
        print(f"paltest plot: error: {NO_MATPLOTLIB}", file=sys.stderr)
        return 1
    if not src.is_dir():
        parser.error(f"RESULTS_DIR: not a directory: {str(src)!r}")
    out = Path(args.out) if args.out else src
    if (src / "selection.json").is_file():
        result = experiments.load_figure(src)
        result.out_dir = out
        experiments.report(result)
        paths = experiments.draw(result, x=args.x)
        print(experiments.summary(result))
    else:
        runs = src / "runs" if (src / "runs").is_dir() else src
        table = results.load_table(runs)
        if table.empty:
            parser.error(f"RESULTS_DIR: no result files in {str(runs)!r}")
        rows = ("train_loss", "test_accuracy", "lr_mean")
        suffix = "" if args.x == "epochs" else f"_{args.x}"
        fig, paths = figures.curves(figures.label_runs(table), out / f"curves{suffix}",
                                    rows=rows, x=args.x,
                                    floors=experiments.floors(sorted(set(table["problem"]))))
    print("figures written:\n" + "\n".join(f"  {q}" for q in paths))
    return 0


_COMMANDS = {"figure": _figure, "run": _run, "sweep": _sweep, "plot": _plot,
             "profile": cli_profile.main}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
