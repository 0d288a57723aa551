"""Compiled steps on JAX (issue 13): ``jax.jit`` and ``jax.lax.scan`` of the optimizers.

* ``jax.jit`` of PAL's step and of every first-order optimizer's step traces once per
  shape and dtype, and equals the eager step to rounding, at every step of a short
  trajectory on ``mf-rank10`` (float32 and float64);
* a ``lax.scan`` over a PAL epoch equals the runner's (eager) trajectory;
* the host-driven steps (the SLS family, the exact line search, ``on_nonfinite="raise"``)
  raise :class:`paltest.TraceError` naming the reason when traced, and say so through
  :func:`paltest.optimizers.base.host_reads`.

Run with ``pytest --xp jax`` (the session then turns on JAX's 64-bit mode); on other
namespaces these tests skip with that reason.

Tolerances. Eager JAX runs one XLA computation per operation; a compiled step is one
fused computation, in which XLA may contract ``a * b + c`` into a fused multiply-add and
sum a reduction of ``n`` terms in another order. Each of those changes a result by at
most the summation bound ``n * eps * sum(|terms|)`` (``n`` = 160 parameters here), so
one step's update ``theta_next - theta`` may differ by a relative ``c * n * eps`` with a
small ``c`` for the few dependent reductions of a step (norm, dot product, losses):
``STEP_RTOL = 8 n eps``. Over the 8 steps of an epoch, with PAL's step a smooth function
of its inputs away from the case boundaries, the trajectories stay within
``EPOCH_RTOL = 8 * STEP_RTOL``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import problems
from paltest import PAL, TraceError, backend, run
from paltest.optimizers import registry
from paltest.optimizers.base import host_reads

JAX_ONLY = "compiled steps are JAX's: run with --xp jax"
N_PARAMS = 160  # mf-rank10: 10 * 6 + 10 * 10

#: The branch-free optimizers: (registry name, hyperparameters).
TRACEABLE = [
    ("pal", {}),
    ("pal", {"beta": 0.0}),
    ("pal", {"beta": "fletcher-reeves"}),
    ("pal", {"beta": "polak-ribiere", "mu": 0.1}),
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", {}),
    ("rmsprop", {"momentum": 0.5, "centered": True}),
    ("sgdhd", {}),
    ("alig", {"momentum": 0.9}),
    ("cocob", {}),
    ("pal-momentum", {}),
    ("pal-adam", {}),
    ("pal-rmsprop", {"direction.momentum": 0.5, "direction.centered": True}),
]
#: The host-driven ones.
HOST_DRIVEN = [("sls", {}), ("sls-goldstein", {}), ("sls-polyak", {}), ("exact", {}),
               ("pal", {"on_nonfinite": "raise"}), ("adam", {"on_nonfinite": "raise"})]


@pytest.fixture
def jax(xp, xp_name):
    if xp_name != "jax":
        pytest.skip(JAX_ONLY)
    import jax

    assert jax.config.jax_enable_x64  # conftest turns it on for --xp jax
    return jax


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _leaves(tree):
    import jax

    return [np.asarray(v) for v in jax.tree_util.tree_leaves(tree)]


def _close(got, want, rtol, what):
    """``|got - want| <= rtol * max|want|`` (elementwise against the vector's scale)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} > {rtol:.3g} * {scale:.3g}"


@pytest.mark.parametrize(("name", "hps"), TRACEABLE,
                         ids=[f"{n}-{'-'.join(map(str, h.values())) or 'default'}"
                              for n, h in TRACEABLE])
def test_jit_step_traces_once_and_equals_the_eager_step(jax, name, hps):
    traces = []
    for dtype in ("float32", "float64"):
        prob = problems.get("mf-rank10", xp="jax", dtype=dtype)
        opt = registry.make(name, **hps)
        assert host_reads(opt) is None

        @jax.jit
        def step(theta, state, batch, opt=opt, prob=prob, dtype=dtype):
            traces.append(dtype)  # runs only while JAX traces
            return opt.step(theta, state, *prob.bind(batch))

        theta = prob.init_params(0)
        state = opt.init(theta)
        batches = [b for e in range(2) for b in prob.batches(e, 0, 100)][:10]
        rtol = 8 * N_PARAMS * _eps(dtype)
        for k, batch in enumerate(batches):
            t_jit, s_jit, i_jit = step(theta, state, batch)
            theta_next, state, info = opt.step(theta, state, *prob.bind(batch))
            assert t_jit.dtype == theta.dtype and t_jit.shape == theta.shape
            _close(t_jit - theta, theta_next - theta, rtol, f"{dtype} step {k}: update")
            for a, b in zip(_leaves(s_jit), _leaves(state), strict=True):
                _close(a, b, rtol, f"{dtype} step {k}: state")
            _close(i_jit.loss, info.loss, 4 * N_PARAMS * _eps(dtype), f"step {k}: loss")
            if name == "pal":
                assert int(i_jit.case) == int(info.case)
            theta = theta_next
    assert traces == ["float32", "float64"]  # once per dtype, for 10 steps each


def test_scan_over_a_pal_epoch_equals_the_runner(jax):
    """One compiled call runs the epoch's 8 steps; losses, learning rates, cases and the
    epoch's training loss equal those of ``paltest.run`` (eager, step by step)."""
    xp = backend.resolve_namespace("jax")
    prob = problems.get("mf-rank10", xp="jax", dtype="float64")
    opt = PAL(beta="fletcher-reeves")
    want = run(prob, opt, epochs=1, batch_size=100, seed=0)
    theta = prob.init_params(0)
    batches = xp.stack(list(prob.batches(0, 0, 100)))  # epoch 1 shuffles with epoch=0

    def body(carry, batch):
        theta, state = carry
        theta, state, info = opt.step(theta, state, *prob.bind(batch))
        return (theta, state), (info.loss, info.lr, info.case)

    epoch = jax.jit(lambda t, s, b: jax.lax.scan(body, (t, s), b))
    (theta, _), (loss, lr, case) = epoch(theta, opt.init(theta), batches)
    rtol = 64 * N_PARAMS * _eps("float64")
    assert np.asarray(case).tolist() == want.steps["case"].tolist()
    _close(loss, want.steps["loss"], rtol, "losses")
    _close(lr, want.steps["lr"], rtol, "learning rates")
    _close(prob.train_loss(theta), want.epochs["train_loss"][-1], rtol, "train loss")
    assert want.epochs["train_loss"][-1] < 0.5 * want.epochs["train_loss"][0]  # it trained


@pytest.mark.parametrize(("name", "hps"), HOST_DRIVEN,
                         ids=[f"{n}-{'-'.join(map(str, h.values())) or 'default'}"
                              for n, h in HOST_DRIVEN])
def test_host_driven_steps_refuse_to_be_traced(jax, name, hps):
    """Issue 13: they failed with a tracer-conversion error from deep inside."""
    prob = problems.get("mf-rank10", xp="jax", dtype="float64")
    opt = registry.make(name, **hps)
    why = host_reads(opt)
    assert why and ("host" in why)
    theta = prob.init_params(0)
    state = opt.init(theta)
    batch = next(iter(prob.batches(0, 0, 100)))
    cls = type(opt).__name__
    message = rf"^{cls}\.step: cannot be traced \(jax\.jit, lax\.scan, vmap\): "
    with pytest.raises(TraceError, match=message + ".*host"):
        jax.jit(lambda t, s, b: opt.step(t, s, *prob.bind(b)))(theta, state, batch)
    with pytest.raises(TraceError, match=message):
        jax.lax.scan(lambda c, b: (opt.step(c, state, *prob.bind(b))[0], None), theta,
                     batch[None, :])
    out, _, info = opt.step(theta, state, *prob.bind(batch))  # eagerly it runs
    assert math.isfinite(float(info.loss)) and out.shape == theta.shape


def test_host_reads_names_every_registered_optimizer():
    """No JAX needed: which steps are host-driven, from the optimizers themselves."""
    traceable = {n for n, _ in TRACEABLE}
    for name in registry.names():
        opt = registry.make(name)
        assert (host_reads(opt) is None) == (name in traceable), name
        raising = host_reads(registry.make(name, on_nonfinite="raise"))
        assert raising is not None, name  # raising reads a flag on the host, on any of them
        if name in traceable:
            assert raising.startswith("on_nonfinite='raise' reads"), name
