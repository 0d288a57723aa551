"""PAL steps per second on ``mf-rank10`` (batch 100): eager NumPy against compiled JAX.

Four ways to run the same PAL steps (the default PAL, the runner's batches of epoch
``k``; float32 and float64):

``numpy eager``
    ``opt.step`` on NumPy arrays, one Python call per step (what ``paltest.run`` does);
``jax eager``
    the same loop on JAX arrays (every operation is dispatched on its own);
``jax jit step``
    ``jax.jit`` of one step (``opt.step`` with the problem's ``bind``), called per batch;
``jax scan epoch``
    ``jax.jit`` of a ``lax.scan`` over the epoch's 8 batches: one call per epoch.

Each repeat times one epoch of every variant in turn (interleaved, after a warm-up that
compiles), and the medians over repeats give the steps per second. The epochs' batches
are made before the clock runs, and the first epoch (with compilation) is reported
separately. The runner's bookkeeping (records, full-set losses) is not included: these
are the optimizer steps and their evaluations only. All four follow the same
trajectory: the final training losses agree to rounding.

JAX's 64-bit mode is needed for float64; this script turns it on at its start (a
program may do that; the library never does). Usage::

    python benchmarks/compiled.py --repeat 30          # prints one JSON line per dtype
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _variants(dtype: str):
    import jax

    import problems
    from paltest import PAL

    opt = PAL()
    out = {}
    for name in ("numpy", "jax"):
        prob = problems.get("mf-rank10", xp=name, dtype=dtype)
        out[name] = prob

    def eager(prob):
        def run(theta, state, batches):
            for batch in batches:
                theta, state, _ = opt.step(theta, state, *prob.bind(batch))
            return theta, state
        return run

    pj = out["jax"]
    step = jax.jit(lambda t, s, b: opt.step(t, s, *pj.bind(b))[:2])

    def jit_step(theta, state, batches):
        for batch in batches:
            theta, state = step(theta, state, batch)
        return theta, state

    def body(carry, batch):
        theta, state, _ = opt.step(*carry, *pj.bind(batch))
        return (theta, state), None

    scan_epoch = jax.jit(lambda t, s, b: jax.lax.scan(body, (t, s), b)[0])

    def stacked(prob, epoch):  # the scan takes the epoch's batches as one array
        return jax.numpy.stack(list(prob.batches(epoch, 0, 100)))

    def listed(prob, epoch):
        return list(prob.batches(epoch, 0, 100))

    return opt, {
        "numpy eager": (out["numpy"], eager(out["numpy"]), listed),
        "jax eager": (pj, eager(pj), listed),
        "jax jit step": (pj, jit_step, listed),
        "jax scan epoch": (pj, scan_epoch, stacked),
    }


def _block(x):
    """Wait for ``x`` (JAX dispatches asynchronously; NumPy is done)."""
    leaf = x[0]
    if hasattr(leaf, "block_until_ready"):
        leaf.block_until_ready()


def measure(dtype: str, repeat: int) -> dict:
    opt, variants = _variants(dtype)
    n_steps = variants["numpy eager"][0].n_batches(100)
    # the batches of every epoch, made before the clock runs (the problem's work)
    batches = {name: [batch(prob, e) for e in range(repeat + 1)]
               for name, (prob, _, batch) in variants.items()}
    carry = {}
    compile_s = {}
    for name, (prob, fn, _) in variants.items():
        theta = prob.init_params(0)
        state = opt.init(theta)
        t0 = time.perf_counter()
        out = fn(theta, state, batches[name][0])  # warm-up: traces and compiles
        _block(out)
        compile_s[name] = time.perf_counter() - t0
        carry[name] = out
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeat):
        for name, (_, fn, _) in variants.items():
            theta, state = carry[name]
            t0 = time.perf_counter()
            out = fn(theta, state, batches[name][1 + r])
            _block(out)
            times[name].append(time.perf_counter() - t0)
            carry[name] = out
    med = {name: statistics.median(t) for name, t in times.items()}
    losses = {name: float(variants[name][0].train_loss(carry[name][0])) for name in variants}
    return {
        "problem": "mf-rank10", "batch_size": 100, "dtype": dtype, "steps_per_epoch": n_steps,
        "repeats": repeat, "load_average": os.getloadavg(),
        "steps_per_s": {k: n_steps / v for k, v in med.items()},
        "median_epoch_s": med,
        "first_epoch_s (with compilation)": compile_s,
        "speedup_vs_numpy_eager": {k: med["numpy eager"] / v for k, v in med.items()},
        "train_loss_after": losses,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=30, help="epochs timed per variant")
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"],
                   choices=["float32", "float64"])
    args = p.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)  # this program's choice (float64 runs)
    for dtype in args.dtype:
        print(json.dumps(measure(dtype, args.repeat)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
