"""Tests for problems.matrix_factorization: the Figure 8 data, model, loss and floors."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import backend
from problems import matrix_factorization as mf

RANKS = [1, 4, 10, None]
N_PARAMS = {1: 16, 4: 64, 10: 160, None: 60}


@pytest.fixture(scope="module")
def data():
    return mf.make_data()


def _host(x):
    return np.asarray(backend.to_host(x), dtype=np.float64)


def _fd_rel_error(problem, theta_host, batch, h=1e-5):
    """Relative error of the analytic gradient against central differences."""
    xp = problem.xp

    def put(v):
        return backend.from_host(v, xp, dtype=problem.dtype)

    loss, grad = problem.value_and_grad(put(theta_host), batch)
    assert backend.to_float(loss) == pytest.approx(
        backend.to_float(problem.value(put(theta_host), batch)), rel=1e-14, abs=1e-300
    )
    fd = np.empty(theta_host.size)
    for i in range(theta_host.size):
        step = np.zeros(theta_host.size)
        step[i] = h
        up = backend.to_float(problem.value(put(theta_host + step), batch))
        down = backend.to_float(problem.value(put(theta_host - step), batch))
        fd[i] = (up - down) / (2 * h)
    g = _host(grad)
    return np.linalg.norm(fd - g) / np.linalg.norm(fd)


# -- data -------------------------------------------------------------------------------


def test_data_is_the_seed42_reference(data):
    # RandomState(42).rand() starts with 0.3745401188473625 (NumPy's documented stream);
    # the first row of A is scaled by linspace(1, 1e-10, 10)[0] = 1.
    assert data["A"][0, 0] == pytest.approx(0.3745401188473625, rel=1e-15)
    assert data["A"].shape == (10, 6)
    assert np.abs(data["A"][-1]).max() < 1e-10
    for x, y in [("x_train", "y_train"), ("x_test", "y_test")]:
        np.testing.assert_allclose(data[y], data[x] @ data["A"].T, rtol=0, atol=1e-13)


def test_split_sizes(data):
    assert data["x_train"].shape == (800, 6) and data["y_train"].shape == (800, 10)
    assert data["x_test"].shape == (200, 6) and data["y_test"].shape == (200, 10)
    both = np.concatenate([data["x_train"], data["x_test"]])
    assert np.unique(both, axis=0).shape[0] == 1000


def test_condition_number():
    assert mf.make(rank=4).condition_number == pytest.approx(15.6, abs=0.05)


@pytest.mark.parametrize(("rank", "floor"), [(1, 0.1318), (4, 0.00935)])
def test_floor_values_from_spec(rank, floor):
    p = mf.make(rank=rank)
    assert p.floor == pytest.approx(floor, rel=5e-4)
    assert p.interpolation is False


@pytest.mark.parametrize("rank", [10, None])
def test_floor_zero_when_interpolating(rank):
    p = mf.make(rank=rank)
    assert p.floor == 0.0
    assert p.interpolation is True


# -- model --------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", RANKS)
def test_shapes(rank, xp):
    p = mf.make(rank=rank, xp=xp)
    assert p.n_params == N_PARAMS[rank]
    assert (p.n_train, p.n_test) == (800, 200)
    assert p.n_batches(100) == 8
    batches = list(p.batches(epoch=0, seed=0, batch_size=100))
    assert len(batches) == 8 and all(tuple(b.shape) == (100,) for b in batches)
    assert tuple(p.init_params(0).shape) == (N_PARAMS[rank],)


@pytest.mark.parametrize("rank", RANKS)
def test_loss_matches_host_formula(rank, xp, data):
    """theta = [vec W1, vec W2] row-major; MSE over batch and the 10 outputs."""
    p = mf.make(rank=rank, xp=xp)
    theta = np.random.default_rng(3).standard_normal(p.n_params)
    if rank is None:
        W = theta.reshape(10, 6)
    else:
        W = theta[6 * rank:].reshape(10, rank) @ theta[: 6 * rank].reshape(rank, 6)
    idx = np.arange(0, 800, 7)
    batch = backend.from_host(idx, p.xp, dtype="int64")
    t = backend.from_host(theta, p.xp)

    def mse(x, y):
        return np.mean((x @ W.T - y) ** 2)

    expected = mse(data["x_train"][idx], data["y_train"][idx])
    assert backend.to_float(p.value(t, batch)) == pytest.approx(expected, rel=1e-12)
    full = mse(data["x_train"], data["y_train"])
    assert backend.to_float(p.train_loss(t)) == pytest.approx(full, rel=1e-12)
    test = p.test_metrics(t)
    assert set(test) == {"test_loss"}
    assert backend.to_float(test["test_loss"]) == pytest.approx(
        mse(data["x_test"], data["y_test"]), rel=1e-12
    )


@pytest.mark.parametrize("rank", RANKS)
def test_gradient_matches_finite_differences(rank, xp):
    p = mf.make(rank=rank, xp=xp)
    theta = _host(p.init_params(seed=1))
    batch = next(iter(p.batches(epoch=0, seed=0, batch_size=100)))
    assert _fd_rel_error(p, theta, batch) < 1e-6


@pytest.mark.parametrize("rank", RANKS)
def test_svd_solution_reaches_floor(rank, xp):
    p = mf.make(rank=rank, xp=xp)
    theta = p.svd_solution()
    loss = backend.to_float(p.train_loss(theta))
    assert loss == pytest.approx(p.floor, rel=1e-9, abs=1e-20)
    # The Eckart-Young point is stationary: the full-batch gradient vanishes there,
    # while it does not at the initialization.
    every = backend.from_host(np.arange(p.n_train), p.xp, dtype="int64")
    g = _host(p.value_and_grad(theta, every)[1])
    g0 = _host(p.value_and_grad(p.init_params(0), every)[1])
    assert np.linalg.norm(g) < 1e-10 * max(1.0, np.linalg.norm(g0))
    assert backend.to_float(p.train_loss(p.init_params(0))) > p.floor + 1e-3


@pytest.mark.parametrize("rank", RANKS)
def test_init_is_default_linear_layer(rank):
    p = mf.make(rank=rank)
    a = _host(p.init_params(seed=5))
    np.testing.assert_array_equal(a, _host(p.init_params(seed=5)))
    assert not np.array_equal(a, _host(p.init_params(seed=6)))
    cut = 60 if rank is None else 6 * rank
    assert np.abs(a[:cut]).max() <= 1 / np.sqrt(6)
    assert np.abs(a[:cut]).max() > 0.5 / np.sqrt(6)
    if rank is not None:
        assert np.abs(a[cut:]).max() <= 1 / np.sqrt(rank)


@pytest.mark.parametrize("rank", [1, None])
def test_same_numbers_on_every_backend(rank, xp):
    ref = mf.make(rank=rank)
    p = mf.make(rank=rank, xp=xp)
    np.testing.assert_array_equal(_host(p.init_params(2)), _host(ref.init_params(2)))
    b, b_ref = (next(iter(q.batches(epoch=3, seed=1, batch_size=100))) for q in (p, ref))
    np.testing.assert_array_equal(backend.to_host(b), backend.to_host(b_ref))
    loss, grad = p.value_and_grad(p.init_params(2), b)
    loss_ref, grad_ref = ref.value_and_grad(ref.init_params(2), b_ref)
    assert backend.to_float(loss) == pytest.approx(backend.to_float(loss_ref), rel=1e-13)
    np.testing.assert_allclose(_host(grad), _host(grad_ref), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rank", [4, None])
def test_dtype(rank, dtype, xp):
    p = mf.make(rank=rank, xp=xp, dtype=dtype)
    want = getattr(xp, dtype)
    assert p.dtype == want and p.dtype_name == dtype
    theta = p.init_params(0)
    batch = next(iter(p.batches(epoch=0, seed=0, batch_size=100)))
    loss, grad = p.value_and_grad(theta, batch)
    assert theta.dtype == want and grad.dtype == want and loss.dtype == want
    assert p.train_loss(theta).dtype == want
    assert p.test_metrics(theta)["test_loss"].dtype == want
    sol = backend.to_float(p.train_loss(p.svd_solution()))
    assert sol == pytest.approx(p.floor, rel=1e-4, abs=1e-10 if dtype == "float32" else 1e-20)


def test_errors():
    with pytest.raises(ValueError, match="rank"):
        mf.make(rank=3)
    with pytest.raises(ValueError, match="rank"):
        mf.make(rank=True)
    with pytest.raises(ValueError, match="rank"):
        mf.make(rank=4.0)
    with pytest.raises(TypeError, match="dtype"):
        mf.make(rank=1, dtype="float16")
    with pytest.raises(ValueError, match="xp"):
        mf.make(rank=1, xp="nope")
    p = mf.make(rank=1)
    with pytest.raises(ValueError, match="theta"):
        p.value(p.xp.zeros(5, dtype=p.dtype), np.arange(3))
    with pytest.raises(TypeError, match="theta"):
        p.value(p.xp.zeros(16, dtype=p.xp.float32), np.arange(3))


def test_split_indices_are_scikit_learns():
    # make_data splits without importing scikit-learn; the reference uses train_test_split.
    from sklearn.model_selection import train_test_split

    X = np.arange(mf.N_SAMPLES * 2, dtype=np.float64).reshape(mf.N_SAMPLES, 2)
    x_train, x_test = train_test_split(X, test_size=mf.TEST_SIZE,
                                       random_state=mf.SPLIT_SEED)
    train, test = mf.split_indices()
    assert np.array_equal(X[train], x_train) and np.array_equal(X[test], x_test)
    d = mf.make_data()
    assert d["x_train"].shape == (800, 6) and d["x_test"].shape == (200, 6)
