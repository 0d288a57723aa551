"""One step of ``paltest.torch.PAL`` on CPU networks of about a million parameters.

Compares, per network, the time of one optimizer step against its evaluations alone:

* ``evaluations``: the closure with ``backward=True`` (forward and backward) and with
  ``backward=False`` under ``torch.no_grad()`` (a forward pass): what PAL needs;
* ``paltest``: ``paltest.torch.PAL.step(closure)`` with that closure;
* ``paltest-usual``: the same with the usual closure (``zero_grad``, forward,
  ``backward()``; PAL then runs a second backward pass it discards);
* ``authors``: the authors' ``PalOptimizer.step`` (``cogsys-tuebingen/PAL``,
  ``PyTorch/pal_optimizer.py``), when its file is given with ``--authors PATH`` (it is not
  shipped here); its random-number helper reads the CUDA generator, which fails without
  a GPU, so the CPU part of it is used (the same seeding, without the CUDA calls);
* ``sgd``: ``torch.optim.SGD`` after one forward and backward pass, for scale.

Each variant trains its own copy of the network from the same start on the same batch.
The variants run interleaved in a shuffled order each round, and the medians over the
rounds are reported with the ratios to ``evaluations`` (and of ``paltest`` to
``authors``). Run ``python benchmarks/torch_step.py --authors /path/to/pal_optimizer.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import os
import random
import statistics
import time

import torch

from paltest.torch import PAL


def mlp() -> torch.nn.Module:
    """784-1024-256-10 with ReLU: 1,068,810 parameters."""
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 1024), torch.nn.ReLU(),
        torch.nn.Dropout(0.1), torch.nn.Linear(1024, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10))


def cnn() -> torch.nn.Module:
    """Three 3x3 convolutions (32, 64, 128 channels) on 3x32x32 images, two max-pools,
    and a 8192-128-10 head: 1,147,466 parameters."""
    c = torch.nn
    return c.Sequential(
        c.Conv2d(3, 32, 3, padding=1), c.ReLU(), c.Conv2d(32, 64, 3, padding=1), c.ReLU(),
        c.MaxPool2d(2), c.Conv2d(64, 128, 3, padding=1), c.ReLU(), c.MaxPool2d(2),
        c.Flatten(), c.Linear(8192, 128), c.ReLU(), c.Dropout(0.1), c.Linear(128, 10))


NETWORKS = {"mlp": (mlp, (1, 28, 28)), "cnn": (cnn, (3, 32, 32))}


def load_authors(path: str) -> type:
    """The authors' class from their file, with the CUDA calls of its random-number
    helper left out (they fail on a machine without a GPU)."""
    spec = importlib.util.spec_from_file_location("authors_pal", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = module.PalOptimizer

    @contextlib.contextmanager
    def random_seed_torch(self, seed):
        state = torch.get_rng_state()
        torch.manual_seed(seed)
        try:
            yield
        finally:
            torch.set_rng_state(state)

    cls.random_seed_torch = random_seed_torch
    return cls


def variants(name: str, batch: int, authors: type | None) -> dict:
    """``{variant: step()}``, each on its own copy of network ``name``."""
    make, shape = NETWORKS[name]
    torch.manual_seed(0)
    base = make()
    x = torch.randn(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    lossf = torch.nn.CrossEntropyLoss()
    out = {}

    def copy_of():
        return copy.deepcopy(base)

    net_e = copy_of()

    def evaluations():
        net_e.zero_grad()
        lossf(net_e(x), y).backward()
        with torch.no_grad():
            lossf(net_e(x), y)
    out["evaluations"] = evaluations

    net_p = copy_of()
    opt_p = PAL(net_p.parameters(), mu=0.1)

    def closure_kw(backward=True):
        opt_p.zero_grad()
        loss = lossf(net_p(x), y)
        if backward:
            loss.backward()
        return loss
    out["paltest"] = lambda: opt_p.step(closure_kw)

    net_u = copy_of()
    opt_u = PAL(net_u.parameters(), mu=0.1)

    def closure_usual():
        opt_u.zero_grad()
        loss = lossf(net_u(x), y)
        loss.backward()
        return loss
    out["paltest-usual"] = lambda: opt_u.step(closure_usual)

    if authors is not None:
        net_a = copy_of()
        opt_a = authors(net_a.parameters(), measuring_step_size=0.1)

        def loss_fn(backward=True):
            opt_a.zero_grad()
            out_ = net_a(x)
            loss = lossf(out_, y)
            if backward:
                loss.backward()
            return loss, out_
        out["authors"] = lambda: opt_a.step(loss_fn)

    net_s = copy_of()
    opt_s = torch.optim.SGD(net_s.parameters(), lr=0.01)

    def sgd():
        opt_s.zero_grad()
        lossf(net_s(x), y).backward()
        opt_s.step()
    out["sgd"] = sgd
    return out


def measure(name: str, batch: int, rounds: int, authors: type | None) -> dict:
    steps = variants(name, batch, authors)
    for step in steps.values():  # warm-up
        for _ in range(2):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    order = list(steps)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            t0 = time.perf_counter()
            steps[key]()
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", help="path to the authors' pal_optimizer.py")
    parser.add_argument("--networks", default="mlp,cnn")
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    authors = load_authors(args.authors) if args.authors else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}; medians of {args.rounds} interleaved "
          "rounds (ms)")
    for name in args.networks.split(","):
        n = sum(p.numel() for p in NETWORKS[name][0]().parameters())
        for batch in args.batch:
            med = measure(name, batch, args.rounds, authors)
            ev = med["evaluations"]
            cells = ", ".join(f"{k} {1e3 * v:.2f} ({v / ev:.3f}x)" for k, v in med.items())
            line = f"{name} ({n:,} parameters), batch {batch}: {cells}"
            if "authors" in med:
                line += f"; paltest/authors {med['paltest'] / med['authors']:.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
