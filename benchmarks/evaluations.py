"""Evaluations per step of every optimizer (default hyperparameters).

Runs each registered optimizer on a problem (default: rank-10 matrix factorization,
50 epochs, batch 100, seed 0, float64) and prints, per optimizer, the mean / median /
max loss evaluations (forward passes, including those inside ``value_and_grad``) and
gradient evaluations per step, and the final training loss, as a markdown table.

Usage::

    python benchmarks/evaluations.py [--problem mf-rank10] [--epochs 50] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

import problems
from paltest import optimizers, run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problem", default="mf-rank10")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = p.parse_args(argv)
    problem = problems.get(args.problem, dtype=args.dtype)
    print(f"{args.problem}, {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, "
          f"{args.dtype}, default hyperparameters\n")
    print("| optimizer | loss evals / step (mean, median, max) | gradient evals / step "
          "(mean, max) | final training loss |")
    print("|---|---|---|---:|")
    for name in optimizers.names():
        res = run(problem, name, epochs=args.epochs, batch_size=args.batch_size,
                  seed=args.seed)
        f, g = res.steps["n_fun"], res.steps["n_grad"]
        print(f"| {name} | {np.mean(f):.2f}, {np.median(f):g}, {np.max(f):g} | "
              f"{np.mean(g):.2f}, {np.max(g):g} | {res.epochs['train_loss'][-1]:.3g} |",
              flush=True)


if __name__ == "__main__":
    main()
