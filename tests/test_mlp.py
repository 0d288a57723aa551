"""Tests for problems.mlp: the digits network (mlp-digits), on every namespace under test."""

from __future__ import annotations

import math

import numpy as np
import pytest

import paltest
import problems
from paltest import backend
from problems import mlp

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
LOG10 = math.log(10.0)


def _host(a):
    return backend.to_host(a)


def _reference_forward(p, theta, x):
    """A plain NumPy, loop-per-sample forward pass: per-sample losses, pre-activations."""
    theta = np.asarray(theta, dtype=np.float64)
    mats, start = [], 0
    for n_out, n_in in p.shapes:
        W = theta[start:start + n_out * n_in].reshape(n_out, n_in)
        start += n_out * n_in
        mats.append((W, theta[start:start + n_out]))
        start += n_out
    act = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh,
           "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}[p.activation]
    logits, pre = [], []
    for row in x:
        a, zs = row, []
        for k, (W, b) in enumerate(mats):
            z = W @ a + b
            zs.append(z)
            a = z if k == len(mats) - 1 else act(z)
        logits.append(a)
        pre.append(np.concatenate(zs[:-1]) if len(zs) > 1 else np.zeros(0))
    return np.array(logits), np.array(pre)


def _batch(p, size=100, epoch=0, seed=0):
    return next(iter(p.batches(epoch, seed, size)))


# -- the data ---------------------------------------------------------------------------

def test_split_is_fixed_stratified_and_scaled():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = mlp.load_data()
    assert d["x_train"].shape == (1437, 64) and d["x_test"].shape == (360, 64)
    assert d["y_train"].shape == (1437,) and d["y_test"].shape == (360,)
    X, y = load_digits(return_X_y=True)
    # the documented protocol, recomputed: the split is exactly this one
    x_tr, x_te, y_tr, y_te = train_test_split(X / 16.0, y, test_size=0.2, stratify=y,
                                              random_state=9513451)
    np.testing.assert_array_equal(d["x_train"], x_tr)
    np.testing.assert_array_equal(d["y_test"], y_te)
    # stratified: each class's test share is 20% of the class, up to rounding (1 image)
    n_class = np.bincount(y, minlength=10)
    n_test = np.bincount(d["y_test"], minlength=10)
    assert np.all(np.abs(n_test - 0.2 * n_class) <= 1.0), (n_test, n_class)
    np.testing.assert_array_equal(np.bincount(d["y_train"], minlength=10) + n_test, n_class)
    # features in [0, 1], and the whole dataset used once
    assert d["x_train"].min() == 0.0 and d["x_train"].max() == 1.0
    assert 0.0 <= d["x_test"].min() and d["x_test"].max() <= 1.0
    both = np.concatenate([d["x_train"], d["x_test"]]) * 16.0
    key = lambda a: sorted(map(bytes, a.astype(np.int8)))  # noqa: E731
    assert key(both) == key(X)
    d["x_train"][0, 0] = 7.0  # a caller's copy: the cached split is not changed
    assert mlp.load_data()["x_train"][0, 0] == x_tr[0, 0]


def test_problem_holds_the_split_on_its_namespace(xp):
    p = problems.get("mlp-digits", xp=xp)
    d = mlp.load_data()
    np.testing.assert_array_equal(_host(p._x_train), d["x_train"])
    assert p.n_train == 1437 and p.n_test == 360 and p.floor is None
    assert p.name == "mlp-digits" and p.default_batch_size == 100


# -- layout, shapes, dtypes, namespaces -------------------------------------------------

@pytest.mark.parametrize(("hidden", "n_params"), [
    ((32,), 64 * 32 + 32 + 32 * 10 + 10), ((), 64 * 10 + 10),
    ((16, 8), 64 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10), (5, 64 * 5 + 5 + 5 * 10 + 10)])
def test_parameter_count_and_layout(hidden, n_params):
    p = mlp.make(hidden=hidden)
    assert p.n_params == n_params
    theta = np.arange(p.n_params, dtype=np.float64)
    layers = p.unpack(backend.from_host(theta, p.xp))
    flat = np.concatenate([np.concatenate([_host(W).ravel(), _host(b)]) for W, b in layers])
    np.testing.assert_array_equal(flat, theta)  # [vec(W1), b1, vec(W2), b2, ...]
    assert [tuple(W.shape) for W, _ in layers] == list(p.shapes)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shapes_dtypes_and_namespace_preserved(xp, dtype):
    p = problems.get("mlp-digits", xp=xp, dtype=dtype)
    want = getattr(xp, dtype)
    theta = p.init_params(0)
    assert theta.dtype == want and tuple(theta.shape) == (2410,)
    assert backend.namespace(theta) is p.xp
    batch = _batch(p)
    loss, grad = p.value_and_grad(theta, batch)
    outs = [loss, grad, p.value(theta, batch), p.train_loss(theta),
            *p.test_metrics(theta).values()]
    for a in outs:
        assert a.dtype == want and backend.namespace(a) is p.xp
    assert tuple(grad.shape) == (2410,)
    assert all(tuple(a.shape) == () for a in outs if a is not grad)
    with pytest.raises(ValueError, match="^theta: expected shape"):
        p.value(theta[:10], batch)


def test_float32_agrees_with_float64(xp):
    """float32 value/gradient vs float64 on the same start: the float32 result carries
    relative rounding of about k*eps32 with k the longest sum (64 inputs + 100 samples);
    we allow 200*eps32 of the scale (|L| for the loss, max|g| for the gradient)."""
    p32 = problems.get("mlp-digits", xp=xp, dtype="float32")
    p64 = problems.get("mlp-digits", xp=xp, dtype="float64")
    l32, g32 = p32.value_and_grad(p32.init_params(1), _batch(p32))
    l64, g64 = p64.value_and_grad(p64.init_params(1), _batch(p64))
    g64 = _host(g64)
    assert abs(float(l32) - float(l64)) <= 200 * EPS32 * abs(float(l64))
    np.testing.assert_allclose(_host(g32), g64, rtol=0, atol=200 * EPS32 * np.abs(g64).max())


def test_init_reproducible_and_identical_across_namespaces(xp):
    p = problems.get("mlp-digits", xp=xp)
    ref = mlp.make(xp="numpy")
    a = _host(p.init_params(3))
    np.testing.assert_array_equal(a, _host(p.init_params(3)))
    np.testing.assert_array_equal(a, _host(ref.init_params(3)))  # same start everywhere
    assert not np.array_equal(a, _host(p.init_params(4)))
    # the documented law: He uniform for the ReLU hidden layer, Glorot for the output,
    # zero biases
    (W1, b1), (W2, b2) = [(_host(W), _host(b)) for W, b in p.unpack(p.init_params(3))]
    assert np.all(b1 == 0) and np.all(b2 == 0)
    r1, r2 = math.sqrt(6 / 64), math.sqrt(6 / (32 + 10))
    assert np.abs(W1).max() <= r1 and np.abs(W1).max() > 0.95 * r1
    assert np.abs(W2).max() <= r2 and np.abs(W2).max() > 0.9 * r2
    t = mlp.make(activation="tanh", hidden=(20,))
    assert np.abs(_host(t.unpack(t.init_params(0))[0][0])).max() <= math.sqrt(6 / 84)


# -- the loss ---------------------------------------------------------------------------

@pytest.mark.parametrize("activation", mlp.ACTIVATIONS)
def test_value_is_the_mean_of_per_sample_losses(xp, activation):
    """Against an independent NumPy reference (one sample at a time): equal to rounding
    (relative 100*eps64), for the batch, the training set and the test loss."""
    p = problems.get("mlp-digits", xp=xp, activation=activation, hidden=(12, 7))
    theta = p.init_params(2)
    batch = _batch(p, 50)
    rows = _host(batch)
    d = mlp.load_data()
    logits, _ = _reference_forward(p, _host(theta), d["x_train"][rows])
    m = logits.max(axis=1)
    ref = m + np.log(np.exp(logits - m[:, None]).sum(axis=1)) - logits[
        np.arange(len(rows)), d["y_train"][rows]]
    tol = 100 * EPS64
    np.testing.assert_allclose(_host(p.per_sample_losses(theta, batch)), ref, rtol=tol)
    assert float(p.value(theta, batch)) == pytest.approx(ref.mean(), rel=tol)
    assert float(p.value_and_grad(theta, batch)[0]) == pytest.approx(ref.mean(), rel=tol)
    full = _host(p.per_sample_losses(theta, None))
    assert full.shape == (1437,)
    assert float(p.train_loss(theta)) == pytest.approx(full.mean(), rel=tol)
    logits_te, _ = _reference_forward(p, _host(theta), d["x_test"])
    m = logits_te.max(axis=1)
    ref_te = m + np.log(np.exp(logits_te - m[:, None]).sum(axis=1)) - logits_te[
        np.arange(360), d["y_test"]]
    metrics = p.test_metrics(theta)
    assert float(metrics["test_loss"]) == pytest.approx(ref_te.mean(), rel=tol)
    acc = np.mean(np.argmax(logits_te, axis=1) == d["y_test"])
    assert float(metrics["test_accuracy"]) == pytest.approx(acc, abs=1e-12)


def test_log_sum_exp_is_stable(xp):
    """Logits of 1e4 would overflow exp in float32 and float64; the shifted
    log-sum-exp keeps the loss finite and equal to the margin."""
    p = problems.get("mlp-digits", xp=xp, hidden=())
    theta = np.zeros(p.n_params)
    theta[640:650] = np.arange(10) * 1e4  # biases only: logit k = 1e4 k for every image
    theta = backend.from_host(theta, p.xp)
    loss = _host(p.per_sample_losses(theta, None))
    y = mlp.load_data()["y_train"]
    np.testing.assert_allclose(loss, (9 - y) * 1e4, rtol=1e-12)
    _, g = p.value_and_grad(theta, _batch(p))
    assert np.all(np.isfinite(_host(g)))
    s = problems.get("mlp-digits", xp=xp, activation="sigmoid")
    big = backend.from_host(np.full(s.n_params, 50.0), s.xp)  # z ~ +-3000: exp(-z) overflows
    assert np.isfinite(float(s.value(big, _batch(s))))


@pytest.mark.parametrize("seed", range(5))
def test_loss_at_init_is_near_log10(seed):
    """At the start the logits are small (biases 0; Glorot output layer: logit variance
    about 32 * (2/42) * E[relu(z1)^2] ~ 0.3), so the loss is log(10) plus about
    (9/10) * var / 2 ~ 0.15: we ask |L - log 10| < 0.5. It must also lie between the
    exact bounds log 10 + mean_j(mean_k z_jk - z_jy) <= L <= log 10 + mean_j(max_k z_jk
    - z_jy) (Jensen and the max bound on log-sum-exp)."""
    p = mlp.make()
    theta = p.init_params(seed)
    loss = float(p.train_loss(theta))
    assert abs(loss - LOG10) < 0.5
    d = mlp.load_data()
    z, _ = _reference_forward(p, _host(theta), d["x_train"])
    zy = z[np.arange(p.n_train), d["y_train"]]
    lo, hi = LOG10 + np.mean(z.mean(axis=1) - zy), LOG10 + np.mean(z.max(axis=1) - zy)
    assert lo - 1e-12 <= loss <= hi + 1e-12


# -- the gradient: central finite differences -------------------------------------------

def _fd_tolerance(loss: float, h: float) -> float:
    """The central-difference error bound: truncation h^2/6 * |f'''| (|f'''| <= 10 here:
    the softmax's third derivatives are below 1 and |dz/ds| <= ~2 on unit directions)
    plus rounding 2 * k * eps * |f| / (2h) with k = 200 (the longest sums); times 10."""
    return 10 * (h * h / 6 * 10 + 200 * EPS64 * abs(loss) / h)


def _same_pattern(p, theta_host, others, x) -> bool:
    """Whether the ReLU activation pattern is the same at every point (no kink between)."""
    ref = _reference_forward(p, theta_host, x)[1] > 0
    return all(np.array_equal(ref, _reference_forward(p, o, x)[1] > 0) for o in others)


@pytest.mark.parametrize("activation", mlp.ACTIVATIONS)
def test_gradient_matches_central_differences(xp, activation):
    """On 8 random coordinates and a random unit direction, float64, h = 1e-5: the
    analytic gradient matches (f(t + h e) - f(t - h e)) / 2h within the bound of
    :func:`_fd_tolerance` (1.1e-7 at loss 2.4; measured errors are below 4e-11).
    For ReLU we first check that no pre-activation changes sign within the step (else
    the difference straddles a kink and is not a test of the gradient); with the fixed
    seeds none does."""
    p = problems.get("mlp-digits", xp=xp, activation=activation, hidden=(16, 8))
    rng = np.random.default_rng(11)
    theta_h = p.init_params(5)
    theta_host = _host(theta_h) + rng.normal(0, 0.05, p.n_params)  # biases nonzero too
    theta = backend.from_host(theta_host, p.xp)
    batch = _batch(p, 40)
    x = mlp.load_data()["x_train"][_host(batch)]
    loss, grad = p.value_and_grad(theta, batch)
    grad = _host(grad)
    h = 1e-5
    tol = _fd_tolerance(float(loss), h)
    coords = rng.choice(p.n_params, size=8, replace=False)
    direction = rng.normal(size=p.n_params)
    direction /= np.linalg.norm(direction)
    units = [np.eye(1, p.n_params, int(c))[0] for c in coords]
    for e in [*units, direction]:
        plus, minus = theta_host + h * e, theta_host - h * e
        if activation == "relu":
            assert _same_pattern(p, theta_host, [plus, minus], x)
        fd = (float(p.value(backend.from_host(plus, p.xp), batch))
              - float(p.value(backend.from_host(minus, p.xp), batch))) / (2 * h)
        assert abs(fd - float(grad @ e)) <= tol, (fd, float(grad @ e), tol)
    assert np.abs(grad).max() > 1e3 * tol  # the test sees the gradient, not just noise


def test_gradient_test_can_fail():
    """A wrong backward pass (ReLU' replaced by 1) is caught by the same comparison."""
    p = mlp.make(hidden=(16,))
    theta = p.init_params(0)
    batch = _batch(p, 40)
    loss, grad = p.value_and_grad(theta, batch)
    p._act_backward = lambda delta, z, a: delta  # the bug
    _, wrong = p.value_and_grad(theta, batch)
    h = 1e-5
    tol = _fd_tolerance(float(loss), h)
    diff = _host(wrong) - _host(grad)
    e = diff / np.linalg.norm(diff)
    th = _host(theta)
    x = mlp.load_data()["x_train"][_host(batch)]
    assert _same_pattern(p, th, [th + h * e, th - h * e], x)
    fd = (float(p.value(backend.from_host(th + h * e, p.xp), batch))
          - float(p.value(backend.from_host(th - h * e, p.xp), batch))) / (2 * h)
    assert abs(fd - float(_host(grad) @ e)) <= tol
    assert abs(fd - float(_host(wrong) @ e)) > 100 * tol


# -- options ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [(0,), (-3,), (32, 0), (2.5,), (True,), "32", None, 3.0,
                                 {32}, (32, "8")], ids=repr)
def test_bad_hidden_is_named(bad):
    with pytest.raises(ValueError, match="^hidden:"):
        problems.get("mlp-digits", hidden=bad)


@pytest.mark.parametrize("bad", ["ReLU", "gelu", "", None, 1])
def test_bad_activation_is_named(bad):
    with pytest.raises(ValueError, match="^activation:"):
        problems.get("mlp-digits", activation=bad)


def test_registry_entry_and_options():
    assert "mlp-digits" in problems.names()
    assert "digits" in problems.registry.describe("mlp-digits")
    p = problems.get("mlp-digits", hidden=[20, 10], activation="tanh")
    assert p.layer_sizes == (64, 20, 10, 10) and p.activation == "tanh"
    assert problems.registry.validate("mlp-digits", hidden=[8]) == 1437
    with pytest.raises(TypeError, match="^width: unknown option"):
        problems.get("mlp-digits", width=3)


# -- training ---------------------------------------------------------------------------

def test_pal_trains_it(xp, xp_name):
    """Three epochs of default PAL (batch 100, seed 0): measured on NumPy float64, the
    training loss falls from 2.42 to 0.27 and the test accuracy reaches 0.894 (chance:
    0.1). We ask for a loss below half the start and an accuracy above 0.7."""
    r = paltest.run("mlp-digits", paltest.PAL(), epochs=3, batch_size=100, seed=0,
                    problem_options={"xp": xp_name})
    loss, acc = r.epochs["train_loss"], r.epochs["test_accuracy"]
    assert np.all(np.diff(loss) < 0) and loss[-1] < 0.5 * loss[0]
    assert acc[0] < 0.2 and acc[-1] > 0.7
    assert np.all(r.epochs["nonfinite"] == 0)


# -- device discipline ------------------------------------------------------------------

@pytest.mark.parametrize("activation", mlp.ACTIVATIONS)
def test_no_host_transfer_and_no_in_place_write(monkeypatch, forbid_value_reads,
                                                activation):
    """On array-api-strict (a stand-in for a device, with item assignment refused) PAL
    steps, ``value``, ``train_loss`` and ``test_metrics`` neither read a value back to
    Python nor write an array in place; the result equals NumPy's to rounding."""
    pytest.importorskip("array_api_strict")
    xs = backend.resolve_namespace("array_api_strict")

    def refuse(self, key, value):
        raise AssertionError("__setitem__: an array of the namespace written in place")

    want = mlp.make(activation=activation)
    monkeypatch.setattr(type(xs.asarray(0.0)), "__setitem__", refuse)
    p = mlp.make(activation=activation, xp=xs)
    out = []
    for q, strict in ((want, False), (p, True)):
        theta, opt = q.init_params(0), paltest.PAL()
        state = opt.init(theta)
        batches = list(q.batches(0, 0, 100))[:4]
        if strict:
            forbid_value_reads()
        for batch in batches:
            theta, state, _ = opt.step(theta, state, *q.bind(batch))
        vals = [theta, q.value(theta, batches[0]), q.train_loss(theta),
                *q.test_metrics(theta).values()]
        if strict:
            monkeypatch.undo()
        out.append([_host(v) for v in vals])
    for a, b in zip(*out, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
