"""The sync-free GPU path: PAL steps and runner epochs never wait for the device.

Run on a machine with a CUDA GPU with ``pytest --xp cupy tests/test_gpu.py``; without
``--xp cupy`` (or without CuPy or a GPU) the GPU tests skip with the reason. Checks:

* with ``cupyx.allow_synchronize(False)``, PAL steps on matrix factorization and on
  kernel logistic regression (stored kernel and on the fly), and whole runner epochs,
  perform no device-to-host synchronization, except the runner's one transfer per
  epoch (:func:`paltest.backend.to_host`, which is allowed and counted);
* PAL's trajectory on CuPy matches NumPy's to 1e-12 (float64).

The transfer count (one per epoch plus one for epoch 0) is also checked on every
backend chosen with ``--xp``, since it is the contract that makes the GPU path sync-free.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

from paltest import PAL, backend
from paltest.testbed import runner

GPU_ONLY = "GPU test: run with --xp cupy on a machine with a CUDA GPU"


@pytest.fixture
def cp_xp(xp, xp_name):
    if xp_name != "cupy":
        pytest.skip(GPU_ONLY)
    return xp


@contextlib.contextmanager
def no_sync():
    """Make CuPy raise ``cupyx.DeviceSynchronized`` on any device synchronization."""
    import cupyx

    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no cupyx.allow_synchronize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated since CuPy 10, still working
        with cupyx.allow_synchronize(False):
            yield


@contextlib.contextmanager
def allowed_sync():
    import cupyx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with cupyx.allow_synchronize(True):
            yield


def toy_libsvm(tmp_path, n=120):
    rng = np.random.default_rng(0)
    path = tmp_path / "toy.txt"
    with open(path, "w") as f:
        for i in range(n):
            x = rng.normal(size=3)
            f.write(f"{1 + i % 2} 1:{x[0]:.4f} 2:{x[1]:.4f} 3:{x[2]:.4f}\n")
    return path


def pal_steps(prob, n_steps, opt=None, record=None):
    opt = opt or PAL(mu=0.1, alpha=1.0)
    theta = prob.init_params(0)
    state = opt.init(theta)
    batches = [b for e in range(20) for b in prob.batches(e, 0, 10)][:n_steps]
    infos = []
    for batch in batches:
        value_and_grad, value = prob.bind(batch)
        theta, state, info = opt.step(theta, state, value_and_grad, value)
        infos.append(info)
        if record is not None:
            record.append(theta)
    return theta, infos


@pytest.mark.gpu
@pytest.mark.parametrize("beta", [0.4, 0.0, "polak-ribiere"])
def test_pal_steps_do_not_synchronize(cp_xp, beta):
    import problems

    prob = problems.get("mf-rank10", xp="cupy", dtype="float64")
    # the batches are moved to the device before the check (host -> device only)
    with no_sync():
        theta, infos = pal_steps(prob, 12, PAL(beta=beta))
    assert int(backend.to_float(infos[-1].case)) in (0, 1, 2)
    assert bool(backend.to_host(cp_xp.all(cp_xp.isfinite(theta))))


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["precompute", "onthefly"])
def test_kernel_pal_steps_do_not_synchronize(cp_xp, tmp_path, mode):
    from problems import kernel_logreg

    prob = kernel_logreg.make(path=toy_libsvm(tmp_path), sigma=1.0, xp="cupy", mode=mode)
    with no_sync():
        pal_steps(prob, 8)
        prob.train_loss(prob.init_params(0))
        prob.test_metrics(prob.init_params(0))


def _count_transfers(monkeypatch, guard):
    """Patch ``backend.to_host`` to count calls (and allow a sync inside ``guard``)."""
    calls = []
    real = backend.to_host

    def counted(x):
        calls.append(getattr(x, "shape", None))
        with guard():
            return real(x)

    monkeypatch.setattr(backend, "to_host", counted)
    return calls


@pytest.mark.gpu
@pytest.mark.parametrize("problem", ["mf-rank4", "kernel"])
def test_runner_epochs_synchronize_only_at_the_epoch_end(cp_xp, monkeypatch, tmp_path,
                                                         problem):
    import problems

    if problem == "kernel":
        from problems import kernel_logreg

        prob = kernel_logreg.make(path=toy_libsvm(tmp_path), sigma=1.0, xp="cupy",
                                  mode="onthefly")
    else:
        prob = problems.get(problem, xp="cupy", dtype="float64")
    calls = _count_transfers(monkeypatch, allowed_sync)
    epochs = 3
    with no_sync():
        result = runner.run(prob, "pal", epochs=epochs, batch_size=10, seed=0)
    assert len(calls) == epochs + 1  # epoch 0 (the start) and one per epoch
    assert result.totals["n_steps"] == epochs * (prob.n_train // 10)


@pytest.mark.parametrize("epochs", [1, 3])
def test_runner_transfers_once_per_epoch(xp, xp_name, monkeypatch, epochs):
    """The contract behind the sync-free GPU path, on every backend chosen with --xp.

    NumPy's values are on the host already: there the runner's host path
    (``runner.HOST_FAST_PATH``) reads none, so the general path is checked with it off."""
    import problems

    prob = problems.get("mf-rank4", xp=xp_name, dtype="float64")
    calls = _count_transfers(monkeypatch, contextlib.nullcontext)
    if backend.on_host(prob.xp):
        runner.run(prob, "pal", epochs=epochs, batch_size=100, seed=0)
        assert calls == []
        monkeypatch.setattr(runner, "HOST_FAST_PATH", False)
    result = runner.run(prob, "pal", epochs=epochs, batch_size=100, seed=0)
    assert len(calls) == epochs + 1
    assert all(shape is not None and len(shape) == 1 for shape in calls)  # one vector each
    assert result.totals["n_steps"] == epochs * 8


@pytest.mark.gpu
@pytest.mark.parametrize("beta", [0.4, "fletcher-reeves"])
def test_pal_trajectory_matches_numpy(cp_xp, beta):
    import problems

    thetas = {}
    cases = {}
    for name in ("numpy", "cupy"):
        prob = problems.get("mf-rank4", xp=name, dtype="float64")
        record: list = []
        _, infos = pal_steps(prob, 16, PAL(beta=beta), record)
        thetas[name] = np.stack([backend.to_host(t) for t in record])
        cases[name] = [int(backend.to_float(i.case)) for i in infos]
    assert cases["cupy"] == cases["numpy"]
    np.testing.assert_allclose(thetas["cupy"], thetas["numpy"], rtol=1e-12, atol=1e-12)
