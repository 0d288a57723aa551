"""PAL's trajectories on every namespace chosen with ``--xp`` equal NumPy's to rounding.

The same operations run on every backend; what may differ is the order in which a
backend's BLAS or XLA sums a reduction (a matrix product, a dot product, a norm), which
changes a result of ``n`` terms by at most ``n * eps`` relative to the sum of their
magnitudes. With the problems' 64-160 parameters (and 100-row batches) that is at most
about 1e-13 per step in float64, and PAL's step is a smooth function of its inputs away
from the case boundaries, so over the 16 steps below (two epochs on mushrooms) the
trajectories stay within ``RTOL = 1e-12``, and every step takes the same case.
"""

from __future__ import annotations

import numpy as np
import pytest

import problems
from paltest import PAL, backend, run

RTOL = 1e-12


def _trajectory(prob, opt, n_steps):
    theta = prob.init_params(0)
    state = opt.init(theta)
    batches = [b for e in range(20) for b in prob.batches(e, 0, 100)][:n_steps]
    thetas, cases = [], []
    for batch in batches:
        theta, state, info = opt.step(theta, state, *prob.bind(batch))
        thetas.append(backend.to_host(theta))
        cases.append(int(backend.to_float(info.case)))
    return np.stack(thetas), cases


@pytest.mark.parametrize("beta", [0.4, 0.0, "fletcher-reeves"])
def test_pal_trajectory_matches_numpy(xp, xp_name, beta):
    """Issue 13: PAL on JAX and PyTorch matched NumPy (max |dtheta| 1.4e-16 at beta 0.4,
    2.4e-13 with Fletcher-Reeves over 30 steps), and nothing tested it."""
    got = _trajectory(problems.get("mf-rank4", xp=xp_name, dtype="float64"),
                      PAL(beta=beta), 16)
    want = _trajectory(problems.get("mf-rank4", xp="numpy", dtype="float64"),
                       PAL(beta=beta), 16)
    assert got[1] == want[1]
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL, atol=RTOL * np.abs(want[0]).max())


def test_kernel_training_losses_match_numpy(xp, xp_name, data_dir):
    """``paltest run mushrooms pal --xp jax --dtype float64`` (the issue's check) on a
    2,000-row subset: the per-epoch training losses and every step's loss and case of
    two epochs equal NumPy's to RTOL."""
    opts = dict(n_rows=2000, data_dir=data_dir, download=False, dtype="float64")
    got = run(problems.get("mushrooms", xp=xp_name, **opts), "pal", epochs=2,
              batch_size=100, seed=0)
    want = run(problems.get("mushrooms", xp="numpy", **opts), "pal", epochs=2,
               batch_size=100, seed=0)
    assert got.steps["case"].tolist() == want.steps["case"].tolist()
    np.testing.assert_allclose(got.epochs["train_loss"], want.epochs["train_loss"], rtol=RTOL)
    np.testing.assert_allclose(got.steps["loss"], want.steps["loss"], rtol=RTOL)
