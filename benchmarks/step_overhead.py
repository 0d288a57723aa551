"""Overhead of one optimizer step over the evaluations it needs.

For PAL the floor of one step is one ``value_and_grad`` plus one ``value`` call; the
ratio ``time(PAL step) / (time(value_and_grad) + time(value))`` is the overhead this
library adds. The objective is a dense least-squares problem
``L(theta) = ||A theta - y||^2 / (2m)`` with ``m`` rows and ``n`` parameters.

Usage::

    python benchmarks/step_overhead.py --sizes 1000 100000 1000000 --rows 16 --repeat 30

Prints one JSON line per size with the medians (seconds) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from paltest import PAL, backend


def least_squares(xp, n, m, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    A = backend.from_host(rng.standard_normal((m, n)) / np.sqrt(n), xp, dtype=dtype)
    y = backend.from_host(rng.standard_normal(m), xp, dtype=dtype)

    def value(theta):
        r = A @ theta - y
        return xp.vecdot(r, r) / (2 * m)

    def value_and_grad(theta):
        r = A @ theta - y
        return xp.vecdot(r, r) / (2 * m), (r @ A) / m

    return value_and_grad, value


def _median_time(fn, repeat, sync):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync(out)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(xp_name, n, m, repeat, dtype):
    xp = backend.resolve_namespace(xp_name)
    vg, f = least_squares(xp, n, m, dtype=dtype)
    theta = backend.from_host(np.zeros(n), xp, dtype=dtype)
    opt = PAL()
    state = opt.init(theta)

    def sync(out):  # wait for the device (a no-op on the CPU)
        leaf = out[0] if isinstance(out, tuple) else out
        backend.to_host(xp.reshape(leaf, (-1,))[:1])

    for _ in range(3):  # warm up
        theta, state, _ = opt.step(theta, state, vg, f)
    t_vg = _median_time(lambda: vg(theta), repeat, sync)
    t_f = _median_time(lambda: f(theta), repeat, sync)
    t_pal = _median_time(lambda: opt.step(theta, state, vg, f), repeat, sync)
    return {"xp": xp_name, "dtype": dtype, "n_params": n, "rows": m,
            "value_and_grad_s": t_vg, "value_s": t_f, "pal_step_s": t_pal,
            "ratio": t_pal / (t_vg + t_f)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000, 1_000_000])
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--xp", default="numpy")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    args = p.parse_args(argv)
    for n in args.sizes:
        print(json.dumps(measure(args.xp, n, args.rows, args.repeat, args.dtype)), flush=True)


if __name__ == "__main__":
    main()
