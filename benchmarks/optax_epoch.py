"""A jitted ``lax.scan`` epoch of ``paltest.optax.pal`` against its evaluations alone.

The model: a 784-128-10 ReLU network (101,770 parameters, a pytree of two layers) with
softmax cross-entropy, float32 on the CPU, on random data (batches of 128). Two epochs
are compiled, each one ``jax.lax.scan`` over the batches:

* ``evaluations``: per batch ``jax.value_and_grad`` at the parameters and one loss at a
  moved point (what a PAL step evaluates), the parameters moved by a plain gradient step
  so that nothing is constant-folded;
* ``pal``: per batch ``jax.value_and_grad`` and ``pal().update`` (which evaluates the
  loss once at its measuring point) and ``optax.apply_updates``.

They run interleaved; the script prints the median seconds per epoch, the steps per
second and the ratio pal / evaluations. Run ``python benchmarks/optax_epoch.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from paltest.optax import pal


def setup(n_batches: int, batch: int):
    rng = np.random.default_rng(0)
    params = {"hidden": {"w": jnp.asarray(rng.normal(0, 0.05, (784, 128)), jnp.float32),
                         "b": jnp.zeros(128, jnp.float32)},
              "out": {"w": jnp.asarray(rng.normal(0, 0.05, (128, 10)), jnp.float32),
                      "b": jnp.zeros(10, jnp.float32)}}
    xs = jnp.asarray(rng.normal(size=(n_batches, batch, 784)), jnp.float32)
    ys = jnp.asarray(rng.integers(0, 10, (n_batches, batch)))

    def loss_fn(params, x, y):
        h = jax.nn.relu(x @ params["hidden"]["w"] + params["hidden"]["b"])
        logits = h @ params["out"]["w"] + params["out"]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return params, xs, ys, loss_fn


def epochs(loss_fn):
    opt = pal(mu=0.1)

    @jax.jit
    def evaluations(params, xs, ys):
        def body(params, batch):
            loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
            params = jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
            return params, loss + loss_fn(params, *batch)
        return jax.lax.scan(body, params, (xs, ys))

    @jax.jit
    def pal_epoch(params, state, xs, ys):
        def body(carry, batch):
            params, state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
            updates, state = opt.update(grads, state, params, value=loss, grad=grads,
                                        value_fn=loss_fn, x=batch[0], y=batch[1])
            return (optax.apply_updates(params, updates), state), loss
        return jax.lax.scan(body, (params, state), (xs, ys))

    return opt, evaluations, pal_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    params, xs, ys, loss_fn = setup(args.batches, args.batch)
    opt, evaluations, pal_epoch = epochs(loss_fn)
    state = opt.init(params)
    runs = {"evaluations": lambda: evaluations(params, xs, ys),
            "pal": lambda: pal_epoch(params, state, xs, ys)}
    for run in runs.values():  # compile
        jax.block_until_ready(run())
    times = {k: [] for k in runs}
    for r in range(args.rounds):
        for key in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            t0 = time.perf_counter()
            jax.block_until_ready(runs[key]())
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    n = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(f"jax {jax.__version__}, {n:,} parameters, {args.batches} batches of "
          f"{args.batch}, load average {os.getloadavg()[0]:.2f}; medians of "
          f"{args.rounds} interleaved rounds")
    for k, v in med.items():
        print(f"{k}: {v * 1e3:.1f} ms per epoch, {args.batches / v:.0f} steps/s")
    print(f"pal / evaluations: {med['pal'] / med['evaluations']:.3f}")


if __name__ == "__main__":
    main()
