"""``paltest.torch.PAL`` against the authors' ``PalOptimizer``, step by step.

The authors' class is not shipped here: give its file (``cogsys-tuebingen/PAL``,
``PyTorch/pal_optimizer.py``) with ``--authors PATH``. Apart from its defects (README,
"PAL in a PyTorch training loop"), each of its steps should equal paltest's to rounding:
from the same parameters and direction state, the script runs one step of each on the
digits MLP and CNN of ``tests/test_torch.py`` (float64; the authors' hyperparameters as
float64 tensors, its random-number helper without the CUDA calls that fail on a machine
without a GPU) and checks the parameters against the first-order rounding bound of
``tests/step_bounds.py``, for ``--steps`` steps. It prints, per network, the steps
checked, the ill-conditioned ones (a case decided within rounding) and the largest
ratio of the difference to its bound (at most 1 when they agree).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_bounds import step_bound  # noqa: E402
from test_torch import LOSS_TERMS, FlatProblem, batch, closures, flat_params, make  # noqa: E402
from torch_step import load_authors  # noqa: E402

from paltest.torch import PAL  # noqa: E402


def compare(kind: str, authors: type, steps: int, mu: float) -> tuple[int, int, float]:
    model = make(kind)
    opt = PAL(model.parameters(), mu=mu)
    ill, worst = 0, 0.0
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    for i in range(steps):
        ref = make(kind)
        ref.load_state_dict(model.state_dict())
        theirs = authors(ref.parameters(), measuring_step_size=f64(mu),
                         max_step_size=f64(10**0.5), direction_adaptation_factor=f64(0.4),
                         update_step_adaptation=f64(1 / 0.6))
        for p, q in zip(model.parameters(), ref.parameters(), strict=True):
            if "buf" in opt.state[p]:
                theirs.state[q]["cg_buffer"] = opt.state[p]["buf"].clone()
        theta = flat_params(model).numpy()

        def loss_fn(backward=True, ref=ref, i=i):  # their protocol: no zero_grad inside
            x, y = batch(i)
            loss = torch.nn.functional.cross_entropy(ref(x), y)
            if backward:
                loss.backward()
            return loss, None
        theirs.zero_grad()
        theirs.step(loss_fn)
        opt.step(closures(model, opt, i))
        info = opt.read_info()
        buf = torch.cat([opt.state[p]["buf"].reshape(-1) for p in model.parameters()])
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
        probe = theta - mu * buf.numpy() / np.linalg.norm(buf.numpy())
        _, gp = FlatProblem(make(kind)).funcs(i)[0](probe)
        bound = step_bound(theta, buf.numpy(), g, info["l0"], info["l_mu"],
                           float(np.linalg.norm(gp)), mu, 1 / 0.6, 10**0.5, "float64",
                           LOSS_TERMS[kind], via_probe=True)
        if bound is None:
            ill += 1
            continue
        err = np.abs(flat_params(model).numpy() - flat_params(ref).numpy())
        worst = max(worst, float(np.max(np.where(bound > 0, err / np.maximum(bound, 1e-300),
                                                 np.where(err > 0, np.inf, 0.0)))))
    return steps - ill, ill, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", required=True, help="path to their pal_optimizer.py")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--mu", type=float, default=0.3)
    args = parser.parse_args()
    authors = load_authors(args.authors)
    for kind in ("mlp", "cnn"):
        checked, ill, worst = compare(kind, authors, args.steps, args.mu)
        print(f"{kind}: {checked} steps checked, {ill} ill-conditioned, largest "
              f"difference / bound {worst:.3g} ({'within' if worst <= 1 else 'OUTSIDE'} "
              "the bound)")


if __name__ == "__main__":
    main()
