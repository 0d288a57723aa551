"""The runner: logs, counts, one host transfer per epoch, bitwise reproducibility."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest

import problems
from paltest import backend
from paltest.testbed import results
from paltest.testbed.runner import run

TIMING = results.TIMING_ARRAYS


def assert_identical(a, b):
    """Every numeric array of two results equal bit for bit (timings excepted)."""
    assert a.config == b.config and a.run_id == b.run_id
    for group in ("epochs", "steps"):
        da, db = getattr(a, group), getattr(b, group)
        assert da.keys() == db.keys()
        for k in da:
            if k in TIMING:
                continue
            assert da[k].dtype == db[k].dtype, k
            assert da[k].tobytes() == db[k].tobytes(), k
    assert a.totals == b.totals


@pytest.fixture(scope="module")
def mf_np():
    return problems.get("mf-rank10", xp="numpy")


def test_run_logs_on_every_backend(xp, xp_name):
    prob = problems.get("mf-rank10", xp=xp, dtype="float32")
    r = run(prob, "pal", epochs=3, batch_size=100, seed=1)
    ep, st = r.epochs, r.steps
    assert list(ep["epoch"]) == [0, 1, 2, 3]
    assert ep["train_loss"].dtype == np.float32 and ep["test_loss"].shape == (4,)
    assert ep["train_loss"][-1] < 0.1 * ep["train_loss"][0]
    assert np.isnan(ep["lr_mean"][0]) and np.all(ep["lr_mean"][1:] > 0)
    assert len(st["loss"]) == 24 and list(np.unique(st["epoch"])) == [1, 2, 3]
    for key in ("loss", "lr", "case", "clipped", "nonfinite", "step", "n_fun", "n_grad"):
        assert len(st[key]) == 24, key
    assert st["nonfinite"].dtype == bool and st["case"].dtype == np.int64
    assert list(ep["n_fun"]) == [0, 16, 32, 48] and list(ep["n_grad"]) == [0, 8, 16, 24]
    assert r.totals["n_fun"] == 48 and r.totals["runner_train_loss_evals"] == 4
    # the name the namespace was chosen by ("jax", not its module jax.numpy)
    assert r.config["problem_options"] == {"xp": xp_name, "dtype": "float32"}
    assert r.environment["dtype"] == "float32" and "numpy" in r.environment["versions"]
    assert np.all(np.diff(ep["wall_time"]) > 0) and r.timings["total"] > 0


def test_same_seed_is_bitwise_identical(xp):
    prob = problems.get("mf-rank10", xp=xp)
    a = run(prob, "sls", epochs=2, batch_size=50, seed=3)
    b = run(prob, "sls", epochs=2, batch_size=50, seed=3)
    assert_identical(a, b)
    c = run(prob, "sls", epochs=2, batch_size=50, seed=4)
    assert c.run_id != a.run_id
    assert not np.array_equal(c.epochs["train_loss"], a.epochs["train_loss"])


def test_by_name_equals_by_object(mf_np):
    a = run("mf-rank10", "sgd", epochs=2, batch_size=100, seed=0,
            hyperparameters={"lr": 0.05})
    from paltest.optimizers.sgd import SGD

    b = run(mf_np, SGD(lr=0.05), epochs=2, batch_size=100, seed=0)
    assert b.config["optimizer"] == "sgd" and b.run_id == a.run_id
    assert a.epochs["train_loss"].tobytes() == b.epochs["train_loss"].tobytes()


@pytest.mark.parametrize("host_path", [False, True])
@pytest.mark.parametrize("batch_size", [100, 10])
def test_one_host_transfer_per_epoch(monkeypatch, mf_np, batch_size, host_path):
    """The general path reads an epoch's records in one transfer; on NumPy the host path
    (runner.HOST_FAST_PATH) needs none, the values being on the host already."""
    from paltest.testbed import runner

    monkeypatch.setattr(runner, "HOST_FAST_PATH", host_path)
    calls = []
    real = backend.to_host

    def spy(x):
        calls.append(getattr(x, "shape", None))
        return real(x)

    monkeypatch.setattr(backend, "to_host", spy)
    epochs = 3
    r = run(mf_np, "pal", epochs=epochs, batch_size=batch_size, seed=0)
    n_steps = epochs * (800 // batch_size)
    assert r.totals["n_steps"] == n_steps
    # epoch 0, then one per epoch: not O(steps)
    assert len(calls) == (0 if host_path else epochs + 1)


class _CountInfo(NamedTuple):
    loss: Any
    lr: Any
    nonfinite: Any
    n_fun: Any  # a data-dependent 0-d array
    n_grad: int
    note: str


class _GD:
    """Gradient descent whose record has a 0-d array count and a non-numeric field."""

    def __init__(self, lr=0.1):
        self.lr = lr

    def init(self, theta):
        return ()

    def step(self, theta, state, value_and_grad, value):
        loss, g = value_and_grad(theta)
        xp = backend.namespace(theta)
        n_fun = xp.astype(loss > 0, xp.int32) + 1
        info = _CountInfo(loss=loss, lr=xp.asarray(self.lr, dtype=theta.dtype),
                          nonfinite=~xp.isfinite(loss), n_fun=n_fun, n_grad=1, note="x")
        return theta - self.lr * g, state, info


def test_custom_optimizer_object(xp):
    prob = problems.get("quadratic", xp=xp, n=3)
    r = run(prob, _GD(lr=0.2), epochs=4, batch_size=1, seed=0, optimizer_name="gd",
            config={"label": "t"})
    assert r.config["optimizer"] == "gd" and r.config["hyperparameters"] == {"lr": 0.2}
    assert r.config["extra"] == {"label": "t"}
    assert "note" not in r.steps
    assert list(r.epochs["n_fun"]) == [0, 2, 4, 6, 8] and r.totals["n_grad"] == 4
    assert r.epochs["lr_median"][1] == pytest.approx(0.2)
    assert np.all(np.diff(r.epochs["train_loss"]) < 0)


def test_zero_epochs_and_progress(mf_np, capsys):
    r = run(mf_np, "adam", epochs=0, batch_size=100, seed=0)
    assert r.epochs["train_loss"].shape == (1,) and r.steps == {}
    r = run(mf_np, "adam", epochs=1, batch_size=100, seed=0, progress=True)
    assert "adam on mf-rank10" in capsys.readouterr().err


def test_argument_errors_name_the_argument(mf_np):
    with pytest.raises(ValueError, match="epochs"):
        run(mf_np, "pal", epochs=-1, batch_size=10, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        run(mf_np, "pal", epochs=1, batch_size=801, seed=0)
    with pytest.raises(TypeError, match="seed"):
        run(mf_np, "pal", epochs=1, batch_size=10, seed=1.5)
    with pytest.raises(TypeError, match="hyperparameters"):
        run(mf_np, _GD(), epochs=1, batch_size=10, seed=0, hyperparameters={"lr": 1.0})
    with pytest.raises(TypeError, match="n_batches_per_epoch"):
        run(mf_np, "sls", epochs=1, batch_size=10, seed=0,
            hyperparameters={"n_batches_per_epoch": 3})
    with pytest.raises(TypeError, match="problem"):
        run(object(), "pal", epochs=1, batch_size=10, seed=0)
    with pytest.raises(ValueError, match="optimizer"):
        run(mf_np, "palx", epochs=1, batch_size=10, seed=0)


def test_observe_sees_every_step_and_leaves_the_run_unchanged():
    """``observe`` is called once per step with the step's inputs and outputs, in order,
    and the run's arrays are bitwise those of a run without it."""
    from paltest import PAL
    from paltest.testbed.runner import run

    seen = []

    def observe(step, batch, theta, state, theta_next, state_next, info):
        seen.append((step, int(batch.shape[0]), theta.copy(), theta_next.copy()))

    kw = dict(epochs=2, batch_size=100, seed=3)
    plain = run("mf-rank1", PAL(), **kw)
    watched = run("mf-rank1", PAL(), observe=observe, **kw)
    n = int(plain.epochs["n_steps"][-1])
    assert [s[0] for s in seen] == list(range(n))
    assert all(s[1] == 100 for s in seen)
    for (_, _, _, after), (_, _, before, _) in zip(seen, seen[1:], strict=False):
        assert after.tobytes() == before.tobytes()  # each step starts where the last ended
    for key, arr in plain.epochs.items():
        if key not in results.TIMING_ARRAYS:
            assert arr.tobytes() == watched.epochs[key].tobytes(), key
    with pytest.raises(TypeError, match="observe"):
        run("mf-rank1", PAL(), observe=1, **kw)


# --- argument types (audit 2, N5 and N18) ----------------------------------------------


def test_a_class_instead_of_an_instance_is_named():
    """``run(p, paltest.PAL)`` used to fail with "'property' object is not iterable"."""
    import paltest
    from problems.quadratic import Quadratic

    for kwargs, name in ((dict(optimizer=paltest.PAL), "optimizer"),
                         (dict(optimizer="sgd", problem=Quadratic),
                          "problem")):
        args = {"problem": "quadratic", **kwargs}
        with pytest.raises(TypeError, match=f"^{name}: got the class "):
            run(args.pop("problem"), args.pop("optimizer"), epochs=1, batch_size=1, seed=0)
    with pytest.raises(TypeError, match=r"^direction: got the class Adam; pass an instance"):
        paltest.PAL(direction=paltest.Adam)  # used to be accepted, and fail at init


@pytest.mark.parametrize("key", ["problem_options", "config", "hyperparameters"])
@pytest.mark.parametrize("value", [5, [("n", 3)], "n=3", {3: "n"}])
def test_the_dict_arguments_are_checked(key, value):
    """``run(problem_options=5)`` used to fail with "'int' object is not iterable"."""
    with pytest.raises(TypeError, match=f"^{key}: expected a dict with string keys"):
        run("quadratic", "sgd", epochs=1, batch_size=1, seed=0, **{key: value})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_start_ulps_moves_every_entry_of_the_start_by_one_ulp(xp, dtype):
    """The smallest change of a run (issue 28's robustness check): the start moved one
    ulp toward +inf in every entry, recorded in the config and so in the run id; 0 leaves
    the run bitwise as it was."""
    if dtype == "float64" and backend.float64_unavailable(xp):
        pytest.skip(backend.float64_unavailable(xp))
    opts = {"xp": xp, "dtype": dtype}
    start = backend.to_host(problems.get("mf-rank4", **opts).init_params(0))
    seen = {}

    def first(step, batch, theta, *rest):
        if step == 0:
            seen["theta"] = backend.to_host(theta)

    base = run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, problem_options=opts)
    moved = run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, problem_options=opts,
                start_ulps=1, observe=first)
    assert np.array_equal(seen["theta"], np.nextafter(start, np.inf))
    assert moved.config["extra"] == {"start_ulps": 1} and moved.run_id != base.run_id
    again = run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, problem_options=opts,
                start_ulps=0)
    assert again.run_id == base.run_id and "extra" not in again.config
    for k in ("train_loss", "n_fun"):
        assert again.epochs[k].tobytes() == base.epochs[k].tobytes()
    with pytest.raises(TypeError, match="start_ulps"):
        run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, start_ulps=0.5)


def test_a_config_recording_start_ulps_moves_the_start():
    """A sweep's or a figure's config carries start_ulps in its extra entries; passing
    those entries on is enough (the same run as start_ulps=)."""
    a = run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, start_ulps=1)
    b = run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, config={"start_ulps": 1})
    assert a.run_id == b.run_id and a.config == b.config
    assert a.steps["loss"].tobytes() == b.steps["loss"].tobytes()
    assert a.run_id != run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0).run_id
    with pytest.raises(ValueError, match="start_ulps"):
        run("mf-rank4", "pal", epochs=1, batch_size=100, seed=0, start_ulps=2,
            config={"start_ulps": 1})
