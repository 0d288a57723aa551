"""paltest.optax.pal: PAL as an optax transformation on pytrees (JAX leg: ``--xp jax``).

Two models: ``mlp-digits`` written as a pytree (a list of per-layer ``{"w", "b"}``, the
problem's own start and data) and a small pure-JAX regression network with nested
dicts and a 0-d leaf. Eagerly the transformation is :class:`paltest.PAL`'s step on the
raveled pytree, bit for bit; under ``jax.jit``, ``vmap`` and ``inject_hyperparams``
each step is held to the first-order rounding bound of ``tests/step_bounds.py`` against
the eager flat step from the same state.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
optax = pytest.importorskip("optax")
from jax.flatten_util import ravel_pytree  # noqa: E402
from readme import run_section_example  # noqa: E402
from step_bounds import step_bound  # noqa: E402

import paltest  # noqa: E402
from paltest.optax import PALOptaxState, pal  # noqa: E402
from problems import mlp  # noqa: E402

N_STEPS = 100


@pytest.fixture(autouse=True)
def _jax_leg(request):
    names = request.config.getoption("--xp")
    if "jax" not in names.split(","):
        pytest.skip("the optax tests run with --xp jax (JAX's 64-bit mode for float64)")


# --- the two models ---------------------------------------------------------------------

def digits(dtype):
    """mlp-digits (64-32-10, ReLU) as a pytree, its start, and 100-row batches."""
    prob = mlp.make(xp="numpy", dtype=dtype)
    flat = prob.init_params(seed=0)
    params = [{"w": jnp.asarray(w), "b": jnp.asarray(b)} for w, b in prob.unpack(flat)]
    data = mlp.load_data()
    x, y = data["x_train"].astype(dtype), data["y_train"]
    rng = np.random.default_rng(0)
    batches = []
    while len(batches) < N_STEPS:
        order = rng.permutation(len(y))
        batches += [(jnp.asarray(x[i]), jnp.asarray(y[i]))
                    for i in order[:1400].reshape(14, 100)]

    def loss_fn(params, x, y):
        h = x
        for layer in params[:-1]:
            h = jax.nn.relu(h @ layer["w"].T + layer["b"])
        logits = h @ params[-1]["w"].T + params[-1]["b"]
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    return params, loss_fn, batches[:N_STEPS], 100 + 64 + 32 + 10


def regression(dtype):
    """A tanh network 3-16-2 with a learned output scale, on synthetic data."""
    rng = np.random.default_rng(1)
    params = {"enc": {"w": jnp.asarray(rng.normal(size=(3, 16)) / 2, dtype=dtype),
                      "b": jnp.zeros(16, dtype)},
              "dec": {"w": jnp.asarray(rng.normal(size=(16, 2)) / 4, dtype=dtype)},
              "scale": jnp.asarray(1.0, dtype)}
    x = rng.normal(size=(N_STEPS, 32, 3)).astype(dtype)
    y = np.stack([np.sin(x[..., 0]) * x[..., 1], np.cos(x[..., 2])], axis=-1).astype(dtype)

    def loss_fn(params, x, y):
        h = jnp.tanh(x @ params["enc"]["w"] + params["enc"]["b"])
        return jnp.mean((params["scale"] * (h @ params["dec"]["w"]) - y) ** 2)

    batches = [(jnp.asarray(a), jnp.asarray(b)) for a, b in zip(x, y, strict=True)]
    return params, loss_fn, batches, 32 * 2 + 16 + 3


MODELS = {"digits": digits, "regression": regression}


def flat_step(core, params, state, loss_fn, batch, grads=None):
    """``paltest.PAL`` on the raveled pytree from optax state ``state``: the reference."""
    theta, unravel = ravel_pytree(params)
    value = lambda t: loss_fn(unravel(t), *batch)  # noqa: E731
    loss, g = jax.value_and_grad(loss_fn)(params, *batch)
    prev = None if state.prev_grad is None else ravel_pytree(state.prev_grad)[0]
    flat_state = paltest.PALState(buf=ravel_pytree(state.buf)[0], prev_grad=prev)
    new, flat_state, info = core.step(theta, flat_state, lambda t: (loss, ravel_pytree(g)[0]),
                                      value)
    return new, flat_state, info, unravel


def jitted_step(opt, loss_fn):
    """A jitted ``opt_step`` and the list its traces append to."""
    traces = []

    @jax.jit
    def step(params, state, x, y):
        traces.append(1)
        return opt_step(opt, params, state, loss_fn, (x, y))
    return step, traces


def opt_step(opt, params, state, loss_fn, batch):
    loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
    updates, state = opt.update(grads, state, params, value=loss, grad=grads,
                                value_fn=loss_fn, x=batch[0], y=batch[1])
    return optax.apply_updates(params, updates), state


# --- eagerly: PAL's own step, bit for bit on one array, to rounding on a pytree --------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("beta", [0.4, 0.0, "polak-ribiere", "hestenes-stiefel"])
def test_eager_updates_on_one_array_are_pal_bit_for_bit(dtype, beta):
    """Parameters that are one 1-D array: the updates are paltest.PAL's steps exactly."""
    params, loss_fn, batches, _ = regression(dtype)
    theta0, unravel = ravel_pytree(params)
    flat_loss = lambda t, x, y: loss_fn(unravel(t), x, y)  # noqa: E731
    opt, core = pal(mu=0.2, beta=beta), paltest.PAL(mu=0.2, beta=beta)
    theta, state = theta0, opt.init(theta0)
    ref, ref_state = theta0, core.init(theta0)
    for batch in batches:
        value = lambda t, b=batch: flat_loss(t, *b)  # noqa: E731
        ref, ref_state, info = core.step(ref, ref_state, jax.value_and_grad(value), value)
        theta, state = opt_step(opt, theta, state, flat_loss, batch)
        assert np.asarray(theta).tobytes() == np.asarray(ref).tobytes()
        assert int(state.info.case) == int(info.case)
    assert int(state.count) == N_STEPS


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_eager_steps_within_rounding_of_pal_on_the_raveled_vector(model, dtype):
    """A pytree of several leaves: the norm and dot products sum leaf by leaf, so each
    step equals paltest.PAL's on the raveled vector within the rounding bound."""
    params, loss_fn, batches, k = MODELS[model](dtype)
    opt, core = pal(mu=0.2), paltest.PAL(mu=0.2)
    state = opt.init(params)
    cases, ill = set(), 0
    for batch in batches:
        new, new_state = opt_step(opt, params, state, loss_fn, batch)
        ill += check_step(core, params, state, new, loss_fn, batch, dtype, k, 0.2)
        cases.add(int(new_state.info.case))
        params, state = new, new_state
    assert ill <= N_STEPS // 20 and cases & {1, 2}
    assert jax.tree_util.tree_structure(state.buf) == jax.tree_util.tree_structure(params)


# --- compiled: each step within the rounding bound of the eager flat step ---------------

def check_step(core, params, state, new_params, loss_fn, batch, dtype, k, mu):
    """One compiled step against the eager flat step from the same state: within the
    bound, or ill-conditioned (returns whether it was)."""
    want, fstate, info, unravel = flat_step(core, params, state, loss_fn, batch)
    theta = ravel_pytree(params)[0]
    g = ravel_pytree(jax.grad(loss_fn)(params, *batch))[0]
    probe = theta - (mu / jnp.linalg.norm(fstate.buf)) * fstate.buf
    gp = float(jnp.linalg.norm(ravel_pytree(jax.grad(loss_fn)(unravel(probe), *batch))[0]))
    bound = step_bound(theta, fstate.buf, g, float(info.l0), float(info.l_mu), gp, mu,
                       core.alpha, core.s_max, dtype, k)
    if bound is None:
        return True
    got = np.asarray(ravel_pytree(new_params)[0], dtype=np.float64)
    err = np.abs(got - np.asarray(want, dtype=np.float64))
    assert (err <= bound).all(), (float(err.max()), float(bound[np.argmax(err - bound)]))
    return False


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jitted_steps_within_rounding_bound(model, dtype):
    params, loss_fn, batches, k = MODELS[model](dtype)
    opt, core = pal(mu=0.2), paltest.PAL(mu=0.2)
    step, traces = jitted_step(opt, loss_fn)
    state = opt.init(params)
    ill = 0
    for batch in batches:
        new, new_state = step(params, state, *batch)
        ill += check_step(core, params, state, new, loss_fn, batch, dtype, k, 0.2)
        params, state = new, new_state
    assert len(traces) == 1  # traced once for the structure and dtype
    assert ill <= N_STEPS // 20


def test_the_bound_can_fail():
    """A step with alpha off by one part in a million is outside the bound."""
    params, loss_fn, batches, k = digits("float64")
    opt, core = pal(mu=0.2, alpha=(1 / 0.6) * (1 + 1e-6)), paltest.PAL(mu=0.2)
    state = opt.init(params)
    failures = 0
    for batch in batches[:10]:
        new, new_state = opt_step(opt, params, state, loss_fn, batch)
        try:
            check_step(core, params, state, new, loss_fn, batch, "float64", k, 0.2)
        except AssertionError:
            failures += 1
        params, state = new, new_state
    assert failures >= 5


def test_scan_epoch_and_vmap_over_starts():
    """Each step of an epoch under lax.scan, and of a vmap over three starting points,
    is within the rounding bound of the eager flat step from the same state."""
    params, loss_fn, batches, k = regression("float64")
    opt, core = pal(mu=0.2), paltest.PAL(mu=0.2)
    xs = jnp.stack([b[0] for b in batches[:20]])
    ys = jnp.stack([b[1] for b in batches[:20]])

    def epoch(params, state):
        def body(carry, batch):
            return opt_step(opt, *carry, loss_fn, batch), carry
        return jax.lax.scan(body, (params, state), (xs, ys))

    (end, state), (starts, states) = jax.jit(epoch)(params, opt.init(params))
    assert int(state.count) == 20
    pick = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)  # noqa: E731
    for i in range(20):
        new = pick(starts, i + 1) if i < 19 else end
        check_step(core, pick(starts, i), pick(states, i), new, loss_fn, batches[i],
                   "float64", k, 0.2)

    shifts = jnp.asarray([0.0, 0.1, -0.2])
    many = jax.vmap(lambda d: jax.tree_util.tree_map(lambda a: a + d, params))(shifts)
    step = jax.jit(jax.vmap(lambda p, s: opt_step(opt, p, s, loss_fn, batches[0])))
    got, got_states = step(many, jax.vmap(opt.init)(many))
    assert got_states.count.shape == (3,)
    for i in range(3):
        one = pick(many, i)
        check_step(core, one, opt.init(one), pick(got, i), loss_fn, batches[0], "float64",
                   k, 0.2)


def test_inject_hyperparams_schedule_without_recompiling():
    """mu from a schedule: one trace for all steps; each step equals pal(mu=that value)
    within the rounding bound (the traced hyperparameters compute in float32 here)."""
    params, loss_fn, batches, k = regression("float32")
    sched = optax.exponential_decay(0.5, transition_steps=1, decay_rate=0.9)
    opt = optax.inject_hyperparams(pal)(mu=sched, alpha=1.2)
    step, traces = jitted_step(opt, loss_fn)
    state = opt.init(params)
    for i, batch in enumerate(batches[:30]):
        mu = float(np.float32(sched(i)))
        inner = state.inner_state
        new, state = step(params, state, *batch)
        check_step(paltest.PAL(mu=mu, alpha=float(np.float32(1.2))), params, inner, new,
                   loss_fn, batch, "float32", k, mu)
        params = new
    assert len(traces) == 1
    assert float(state.hyperparams["mu"]) == pytest.approx(0.5 * 0.9**29, rel=1e-6)  # last used


def test_traced_hyperparameters_in_the_functional_api():
    """paltest.PAL(mu=<traced>) inside jit: one trace for several values of mu."""
    params, loss_fn, batches, _ = regression("float64")
    theta, unravel = ravel_pytree(params)
    traces = []

    @jax.jit
    def step(theta, mu, x, y):
        traces.append(1)
        opt = paltest.PAL(mu=mu)
        value = lambda t: loss_fn(unravel(t), x, y)  # noqa: E731
        vg = lambda t: jax.value_and_grad(value)(t)  # noqa: E731
        return opt.step(theta, opt.init(theta), vg, value)[0]

    for mu in (0.1, 0.3):
        got = step(theta, jnp.asarray(mu), *batches[0])
        value = lambda t: loss_fn(unravel(t), *batches[0])  # noqa: E731
        want = paltest.PAL(mu=mu).step(theta, paltest.PAL(mu=mu).init(theta),
                                       jax.value_and_grad(value), value)[0]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert len(traces) == 1
    with pytest.raises(TypeError, match="mu: a traced hyperparameter must be a 0-d"):
        jax.jit(lambda m: paltest.PAL(mu=m).mu)(jnp.ones(2))


# --- composition -------------------------------------------------------------------------

def test_chain_after_clipping_keeps_the_exact_slope():
    """chain(clip_by_global_norm, pal(beta=0)): the clipped gradient has the gradient's
    direction, and with grad= the slope is the true one, so each step is pal's own
    within the rounding bound; without grad= the slope comes from the clipped updates."""
    params, loss_fn, batches, k = digits("float64")
    chained = optax.chain(optax.clip_by_global_norm(0.05), pal(mu=0.2, beta=0.0))
    core = paltest.PAL(mu=0.2, beta=0.0)
    plain = pal(mu=0.2, beta=0.0)
    cs, ps = chained.init(params), plain.init(params)
    for batch in batches[:10]:
        got, cs = opt_step(chained, params, cs, loss_fn, batch)
        check_step(core, params, ps, got, loss_fn, batch, "float64", k, 0.2)
        params, ps = opt_step(plain, params, ps, loss_fn, batch)
    loss, grads = jax.value_and_grad(loss_fn)(params, *batches[0])
    updates, state = chained.update(grads, cs, params, value=loss, value_fn=loss_fn,
                                    x=batches[0][0], y=batches[0][1])
    norm = float(optax.tree.norm(grads))
    assert float(state[1].info.b) == pytest.approx(-min(norm, 0.05), rel=1e-10)


def test_along_optax_sgd_momentum_is_pal_beta_and_adam_state_advances():
    params, loss_fn, batches, _ = regression("float64")
    a, b = pal(mu=0.2, beta=0.4), pal(mu=0.2, direction=optax.sgd(1.0, momentum=0.4))
    pa = pb = params
    sa, sb = a.init(params), b.init(params)
    for batch in batches[:20]:
        pa, sa = opt_step(a, pa, sa, loss_fn, batch)
        pb, sb = opt_step(b, pb, sb, loss_fn, batch)
        assert np.asarray(ravel_pytree(pa)[0]).tobytes() == \
            np.asarray(ravel_pytree(pb)[0]).tobytes()

    adam = optax.adam(1e-3)
    opt = pal(mu=0.2, direction=adam)
    state, p = opt.init(params), params
    for batch in batches[:5]:
        loss, grads = jax.value_and_grad(loss_fn)(p, *batch)
        _, want = adam.update(grads, state.base, p)
        new, state = opt_step(opt, p, state, loss_fn, batch)
        assert jax.tree_util.tree_all(jax.tree_util.tree_map(
            lambda x, y: bool(jnp.all(x == y)), state.base, want))
        p = new
    assert int(state.base[0].count) == 5


def test_has_aux_and_refusals():
    params, loss_fn, batches, _ = regression("float64")
    x, y = batches[0]
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    with_aux = lambda p, x, y: (loss_fn(p, x, y), {"state": 1})  # noqa: E731
    opt = pal(mu=0.2, has_aux=True)
    u1, _ = opt.update(grads, opt.init(params), params, value=loss, grad=grads,
                       value_fn=with_aux, x=x, y=y)
    u2, _ = pal(mu=0.2).update(grads, opt.init(params), params, value=loss, grad=grads,
                               value_fn=loss_fn, x=x, y=y)
    assert np.asarray(ravel_pytree(u1)[0]).tobytes() == np.asarray(ravel_pytree(u2)[0]).tobytes()
    plain = pal()
    s = plain.init(params)
    with pytest.raises(TypeError, match="pass has_aux=True"):
        plain.update(grads, s, params, value=loss, value_fn=with_aux, x=x, y=y)
    with pytest.raises(ValueError, match="value_fn"):
        plain.update(grads, s, params, value=loss)
    with pytest.raises(ValueError, match="value: pal.update needs"):
        plain.update(grads, s, params, value_fn=loss_fn)
    with pytest.raises(TypeError, match=r"extra arguments \['z'\]"):
        plain.update(grads, s, params, value=loss, value_fn=loss_fn, x=x, y=y, z=1)
    with pytest.raises(TypeError, match="params: pal needs every leaf in one floating"):
        plain.init({"a": jnp.zeros(2, jnp.float32), "b": jnp.zeros(2, jnp.float64)})
    with pytest.raises(ValueError, match="params: an empty pytree"):
        plain.init({})
    with pytest.raises(ValueError, match="beta: PAL's own direction"):
        pal(beta=0.4, direction=optax.adam(1.0))
    with pytest.raises(TypeError, match="direction: must be an optax"):
        pal(direction="adam")
    with pytest.raises(ValueError, match="mu: must be > 0"):
        pal(mu=0.0)
    with pytest.raises(TypeError, match="state: expected the PALOptaxState"):
        plain.update(grads, (), params, value=loss, value_fn=loss_fn, x=x, y=y)


def test_nonfinite_probe_leaves_params_and_direction():
    params, loss_fn, batches, _ = regression("float64")
    opt = pal(mu=0.2)
    state = opt.init(params)
    params, state = opt_step(opt, params, state, loss_fn, batches[0])
    x, y = batches[1]
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    nan_fn = lambda p, x, y: loss_fn(p, x, y) * jnp.nan  # noqa: E731
    updates, new = opt.update(grads, state, params, value=loss, grad=grads,
                              value_fn=nan_fn, x=x, y=y)
    assert isinstance(new, PALOptaxState)
    assert not np.any(np.asarray(ravel_pytree(updates)[0]))
    assert int(new.info.case) == 3 and bool(new.info.nonfinite)
    assert np.asarray(ravel_pytree(new.buf)[0]).tobytes() == \
        np.asarray(ravel_pytree(state.buf)[0]).tobytes()


def test_readme_example_runs_verbatim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    printed = run_section_example("## PAL in a JAX/optax training loop", capsys)
    losses = [float(v) for v in printed]
    assert losses[2] < losses[1] < losses[0]  # three epochs, then mu
    assert 0.2 < losses[3] < 0.3  # 0.5 * 0.8 ** (50 / 17)
