"""The exact line search with and without the cheap line: seconds and evaluations per step.

For each problem and dtype the search steps along one run (batch 100, seed 0); at every
step it is timed on both paths from the same ``theta`` (the direct path's), interleaved
(the order alternates step by step), each path with its own copy of the batch array so
that neither reuses kernel rows the other computed:

* direct: ``value`` without a ``line`` method, one ``problem.value`` per probe;
* cheap: ``problem.bind(batch)``'s ``value``, whose ``value.line`` gives the probes
  (``problems/lines.py``).

It prints medians of the seconds per step, their ratio, the evaluations per step
(``n_fun``, the same on both paths; ``n_line`` of them cheap on the cheap path) and the
load average. A second table runs whole epochs on each path and gives the largest
relative difference of the final training losses (the trajectories may differ by
rounding only).

ijcnn: float32 stores both kernels (``memory_budget=4.5e9``, the Figure 9 setting, about
4 GB, built in about 15 s); float64 stores none (``mode="onthefly"``: each step computes
the batch's kernel rows once, in ``value_and_grad``, on both paths).

Usage::

    PALTEST_DATA=... python benchmarks/line_evaluations.py [--steps 200] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import problems
from paltest import backend
from paltest.optimizers.exact import ExactLineSearch

CASES = [  # (problem, dtype, options)
    ("ijcnn", "float32", {"memory_budget": 4.5e9}),
    ("ijcnn", "float64", {"mode": "onthefly"}),
    ("mushrooms", "float32", {}),
    ("mushrooms", "float64", {}),
    ("mf-rank4", "float64", {}),
]
AGREEMENT = [("mushrooms", 2), ("mf-rank4", 10)]  # (problem, epochs)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _direct(value):
    return lambda theta: value(theta)  # hides value.line: one value per probe


def step_times(prob, n_steps: int, batch_size: int = 100):
    """Per-step seconds and counts of both paths, interleaved, from the same thetas."""
    xp, opt = prob.xp, ExactLineSearch()
    theta = prob.init_params(0)
    t = {"direct": [], "cheap": []}
    n_fun, n_line = [], []
    epoch = 0
    while len(n_fun) < n_steps:
        for batch in prob.batches(epoch, 0, batch_size):
            if len(n_fun) == n_steps:
                break
            out = {}
            order = ("direct", "cheap") if len(n_fun) % 2 == 0 else ("cheap", "direct")
            for mode in order:
                vg, value = prob.bind(xp.asarray(batch, copy=True))
                f = value if mode == "cheap" else _direct(value)
                t0 = time.perf_counter()
                th, _, info = opt.step(theta, opt.init(theta), vg, f)
                backend.to_host(th)  # the step is done
                t[mode].append(time.perf_counter() - t0)
                out[mode] = (th, info)
            assert out["cheap"][1].n_fun == out["direct"][1].n_fun
            n_fun.append(out["direct"][1].n_fun)
            n_line.append(out["cheap"][1].n_line)
            theta = out["direct"][0]
        epoch += 1
    return {k: np.asarray(v) for k, v in t.items()}, np.asarray(n_fun), np.asarray(n_line)


def final_losses(prob, epochs: int, batch_size: int = 100) -> dict[str, float]:
    """The training loss after ``epochs`` epochs of each path (separate trajectories)."""
    opt, out = ExactLineSearch(), {}
    for mode in ("direct", "cheap"):
        theta = prob.init_params(0)
        for e in range(epochs):
            for batch in prob.batches(e, 0, batch_size):
                vg, value = prob.bind(batch)
                theta, _, _ = opt.step(theta, opt.init(theta), vg,
                                       value if mode == "cheap" else _direct(value))
        out[mode] = backend.to_float(prob.train_loss(theta))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="mushrooms and mf-rank4 only")
    args = p.parse_args(argv)
    cases = [c for c in CASES if not (args.quick and c[0] == "ijcnn")]
    print(f"exact line search (default hyperparameters), batch 100, seed 0, "
          f"{args.steps} steps; load average at start {loadavg()}\n")
    print("| problem | dtype | direct ms/step | cheap ms/step | speed-up (ratio of medians) "
          "| median per-step ratio | n_fun/step (median, max) | n_line/step (median) | "
          "load average |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name, dtype, opts in cases:
        prob = problems.get(name, dtype=dtype, **opts)
        t, n_fun, n_line = step_times(prob, args.steps)
        d, c = np.median(t["direct"]), np.median(t["cheap"])
        ratio = np.median(t["direct"] / t["cheap"])
        print(f"| {name} | {dtype} | {1e3 * d:.3g} | {1e3 * c:.3g} | {d / c:.1f}x | "
              f"{ratio:.1f}x | {np.median(n_fun):.0f}, {n_fun.max()} | "
              f"{np.median(n_line):.0f} | {loadavg()} |", flush=True)
        del prob
    print("\n| problem | dtype | epochs | final loss direct | final loss cheap | "
          "relative difference |")
    print("|---|---|---:|---:|---:|---:|")
    for name, epochs in AGREEMENT:
        for dtype in ("float32", "float64"):
            out = final_losses(problems.get(name, dtype=dtype), epochs)
            rel = abs(out["cheap"] - out["direct"]) / abs(out["direct"])
            print(f"| {name} | {dtype} | {epochs} | {out['direct']:.10g} | "
                  f"{out['cheap']:.10g} | {rel:.2g} |", flush=True)


if __name__ == "__main__":
    main()
