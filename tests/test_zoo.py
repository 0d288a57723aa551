"""Every optimizer on every problem of the testbed, on every namespace under test.

A shared zoo in the style of optimistix: each (problem, optimizer) pair runs one epoch
through :func:`paltest.run`; the run must stay finite, report its evaluations, and keep
the problem's namespace and dtype. PAL must also decrease the training loss on every
problem.
"""

from __future__ import annotations

import numpy as np
import pytest

import problems
from paltest import PAL, backend, optimizers, run

# Small instances of every registered problem kind (the registry's names).
ZOO = {
    "mf-true": {},
    "mf-rank1": {},
    "mf-rank4": {},
    "mf-rank10": {},
    "quadratic": {"n": 8, "kappa": 20.0},
    "batch-quadratic": {"n": 6, "n_batches": 40},
    "batch-quadratic-noninterpolating": {"n": 6, "n_batches": 40, "interpolation": False},
    "least-squares": {"n_rows": 60, "n_cols": 8},
    "kernel-logreg": {"sigma": 1.0},
    "mlp-digits": {"hidden": (8,)},
}
BATCH = {"quadratic": 1, "kernel-logreg": 10, "batch-quadratic": 5,
         "batch-quadratic-noninterpolating": 5, "least-squares": 5}


@pytest.fixture(scope="module")
def libsvm_file(tmp_path_factory):
    """A small synthetic LIBSVM binary file (no download needed)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("zoo") / "toy.libsvm"
    with open(path, "w") as f:
        for i in range(80):
            x = rng.normal(size=4) + (1.0 if i % 2 else -1.0)
            f.write(f"{1 if i % 2 else -1} " + " ".join(f"{j + 1}:{v:.6f}"
                                                     for j, v in enumerate(x)) + "\n")
    return path


def _problem(name, xp_name, libsvm_file):
    opts = dict(ZOO[name], xp=xp_name, dtype="float64")
    if name == "kernel-logreg":
        opts["path"] = libsvm_file
    registry_name = "batch-quadratic" if name.startswith("batch-quadratic") else name
    return problems.get(registry_name, **opts)


@pytest.mark.parametrize("problem_name", sorted(ZOO))
@pytest.mark.parametrize("optimizer_name", optimizers.names())
def test_every_optimizer_on_every_problem(xp, xp_name, problem_name, optimizer_name,
                                          libsvm_file):
    problem = _problem(problem_name, xp_name, libsvm_file)
    batch_size = BATCH.get(problem_name, 100)
    result = run(problem, optimizer_name, epochs=1, batch_size=batch_size, seed=0)
    losses = result.epochs["train_loss"]
    assert losses.shape == (2,) and np.all(np.isfinite(losses))
    steps = result.steps
    n_steps = problem.n_batches(batch_size)
    assert steps["loss"].shape == (n_steps,)
    assert np.all(steps["n_fun"] >= 1) and np.all(steps["n_grad"] >= 1)
    assert not np.any(steps["nonfinite"])
    theta = problem.init_params(0)
    assert backend.namespace(theta) is xp and theta.dtype == xp.float64


@pytest.mark.parametrize("problem_name", sorted(ZOO))
def test_pal_decreases_every_problem(xp, xp_name, problem_name, libsvm_file):
    problem = _problem(problem_name, xp_name, libsvm_file)
    batch_size = BATCH.get(problem_name, 100)
    result = run(problem, PAL(mu=0.1, alpha=1.0, beta=0.0), epochs=3,
                 batch_size=batch_size, seed=1)
    losses = result.epochs["train_loss"]
    assert losses[-1] < losses[0], losses
    assert set(np.unique(result.steps["case"])) <= {0, 1, 2}


#: The optimizers whose steps queue device work without reading a value back (the line
#: searches read one loss per trial by design).
SYNC_FREE = ("pal", "sgd", "adam", "rmsprop", "sgdhd", "alig", "cocob")

@pytest.mark.parametrize("problem_name", sorted(ZOO))
@pytest.mark.parametrize("optimizer_name", SYNC_FREE)
def test_one_host_transfer_per_epoch(problem_name, optimizer_name, libsvm_file, monkeypatch,
                                     forbid_value_reads):
    """On array-api-strict (the device code path) a whole run reads values back only in
    the runner's one :func:`paltest.backend.to_host` per epoch (epoch 0 included)."""
    problem = _problem(problem_name, "array_api_strict", libsvm_file)
    transfers = forbid_value_reads(allow_to_host=True)
    result = run(problem, optimizer_name, epochs=2, batch_size=BATCH.get(problem_name, 100),
                 seed=0)
    monkeypatch.undo()
    assert len(transfers) == 3
    assert np.all(np.isfinite(result.epochs["train_loss"]))
