"""``paltest profile``: solvers on a problem set, with performance and data profiles.

A thin layer over :func:`paltest.testbed.profiles.profile` (see there and the README,
section "Profiles on CUTEst"). Bad options exit with status 2 before anything runs.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from paltest.cli_args import joblib_backend, n_jobs, positive_int

__all__ = ["add_parser", "main", "out_name"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``profile`` subcommand to ``sub`` (``common``: --out, --no-progress)."""
    from paltest.testbed.profiles import experiment, solvers

    named = ", ".join([*solvers.SOLVERS, *solvers.STUDY])
    p = sub.add_parser(
        "profile", parents=[common], help="solvers on CUTEst problems: performance and "
        "data profiles", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Run a set of solvers (PAL and its beta variants, the exact line search, SLS, "
            "SciPy's CG, BFGS and L-BFGS-B by default) on a set of full-batch problems "
            "(the curated CUTEst subset by default, through sif2jax: the 'cutest' extra), "
            "each with the same budget of evaluations (value and value-and-gradient calls "
            "alike). Writes OUT/runs/ (one file per run; finished runs are reused), "
            "OUT/runs.csv (one row per run), OUT/summary.csv (solved fraction, rho(1), "
            "rho(10) per solver) and the Dolan-More performance profile and More-Wild data "
            "profile (OUT/performance_profile.png/.pdf, OUT/data_profile.png/.pdf). "
            "float64 needs JAX's 64-bit mode: JAX_ENABLE_X64=1 paltest profile ...", 88),
        epilog=textwrap.fill(f"named solvers: {named}; or a spec OPTIMIZER:key=value,... "
                             "(e.g. pal:beta=pr,alpha=1 or scipy:method=Newton-CG)", 88))
    p.add_argument("--problems", default="default", metavar="SET",
                   help="default (the curated CUTEst subset), tiny, all, or comma-separated "
                        "names such as cutest:ROSENBR,cutest:BEALE (default: %(default)s)")
    p.add_argument("--solvers", default=",".join(experiment.DEFAULT_SOLVERS), metavar="LIST",
                   help="comma-separated solver names or specs (OPTIMIZER:k=v,k=v; use ';' "
                        "between solvers when a spec holds commas) (default: %(default)s)")
    p.add_argument("--budget", type=positive_int, default=5000, metavar="N",
                   help="evaluations per run (default: %(default)s)")
    p.add_argument("--test", choices=("f", "g"), default="f",
                   help="convergence test: f (within tol of the best value any solver found,"
                        " relative to the start) or g (gradient norm <= tol times the "
                        "start's) (default: %(default)s)")
    p.add_argument("--tol", type=_positive_float, default=1e-6,
                   help="the test's tolerance (default: %(default)s)")
    p.add_argument("--xp", default="numpy", choices=("numpy", "jax"),
                   help="namespace of the problems for paltest's solvers (default: "
                        "%(default)s; SciPy's use NumPy)")
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"),
                   help="precision (default: %(default)s; needs JAX_ENABLE_X64=1)")
    p.add_argument("--time-limit", type=_positive_float, default=120.0, metavar="S",
                   help="seconds per run at most, a safety net (default: %(default)s)")
    p.add_argument("--jobs", type=n_jobs, default=1, metavar="N",
                   help="parallel problems (-1: all cores; default: %(default)s)")
    p.add_argument("--backend", default="loky", type=joblib_backend,
                   help="joblib backend (default: %(default)s)")
    return p


def _split(text: str) -> list[str]:
    sep = ";" if ";" in text else ","
    if sep == "," and ":" in text:  # specs hold commas: split before each NAME[:...]
        out: list[str] = []
        for part in text.split(","):
            if out and "=" in part and ":" not in part and ":" in out[-1]:
                out[-1] += "," + part
            else:
                out.append(part)
        return [s.strip() for s in out if s.strip()]
    return [s.strip() for s in text.split(sep) if s.strip()]


def out_name(problems: str) -> str:
    """The folder under ``--out``: ``profile-<set>`` for a named set (``default``,
    ``tiny``, ``all``), else ``profile``.

    >>> out_name("default"), out_name("cutest:ROSENBR,cutest:BEALE")
    ('profile-default', 'profile')
    """
    return f"profile-{problems}" if problems in ("default", "tiny", "all") else "profile"


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``paltest profile`` (status 2 for bad options, before any run)."""
    from paltest.testbed.profiles import experiment, problem_sets, solvers

    try:
        names = problem_sets.resolve(args.problems)
    except ValueError as err:
        parser.error(f"--{err}")
    try:
        specs = [solvers.parse(s) for s in _split(args.solvers)]
    except (TypeError, ValueError) as err:
        parser.error(f"--{err}")
    if not specs:
        parser.error("--solvers: none given")
    try:
        experiment.check_float64(args.dtype, names)
    except ValueError as err:
        parser.error(f"--{err}")
    out = Path(args.out) / out_name(args.problems)
    print(f"profile: {len(specs)} solvers x {len(names)} problems, budget {args.budget} "
          f"evaluations, {args.dtype} on {args.xp}; runs in {out / 'runs'}", flush=True)
    res = experiment.profile(names, [s.label for s in specs], out, budget=args.budget,
                             test=args.test, tol=args.tol, xp=args.xp, dtype=args.dtype,
                             time_limit=args.time_limit, n_jobs=args.jobs,
                             backend=args.backend, progress=not args.no_progress)
    print(f"{res.ran} runs done, {res.skipped} already there")
    print(res.summary.to_string(float_format=lambda v: f"{v:.3g}"))
    print("files written:\n" + "\n".join(f"  {q}" for q in res.files))
    return 0
