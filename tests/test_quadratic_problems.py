"""Tests for problems.quadratic: deterministic, batch and least-squares quadratics."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import backend
from problems import quadratic as q

FACTORIES = {
    "quadratic": lambda **kw: q.make_quadratic(n=6, kappa=50.0, L_star=0.5, seed=1, **kw),
    "batch-interp": lambda **kw: q.make_batch_quadratic(n=5, n_batches=12, kappa=20.0, **kw),
    "batch-lowrank": lambda **kw: q.make_batch_quadratic(n=5, n_batches=12, rank=1, **kw),
    "batch-noise": lambda **kw: q.make_batch_quadratic(
        n=5, n_batches=12, interpolation=False, **kw
    ),
    "least-squares": lambda **kw: q.make_least_squares(n_rows=30, n_cols=4, **kw),
}


def _host(x):
    return np.asarray(backend.to_host(x), dtype=np.float64)


def _put(p, v):
    return backend.from_host(v, p.xp, dtype=p.dtype)


def _fd_rel_error(problem, theta_host, batch, h=1e-5):
    """Relative error of the analytic gradient against central differences."""
    loss, grad = problem.value_and_grad(_put(problem, theta_host), batch)
    assert backend.to_float(loss) == backend.to_float(
        problem.value(_put(problem, theta_host), batch)
    )
    fd = np.empty(theta_host.size)
    for i in range(theta_host.size):
        step = np.zeros(theta_host.size)
        step[i] = h
        up = backend.to_float(problem.value(_put(problem, theta_host + step), batch))
        down = backend.to_float(problem.value(_put(problem, theta_host - step), batch))
        fd[i] = (up - down) / (2 * h)
    return np.linalg.norm(fd - _host(grad)) / np.linalg.norm(fd)


def _all(p):
    """Every training index as one batch (the whole training set)."""
    return backend.from_host(np.arange(p.n_train), p.xp, dtype="int64")


def _first_batch(p, size):
    return next(iter(p.batches(epoch=0, seed=0, batch_size=size)))


# -- every problem ------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
def test_gradient_matches_finite_differences(name, xp):
    p = FACTORIES[name](xp=xp)
    theta = _host(p.init_params(seed=4))
    for batch in [_first_batch(p, min(3, p.n_train)), _all(p)]:
        assert _fd_rel_error(p, theta, batch) < 1e-6


@pytest.mark.parametrize("name", FACTORIES)
def test_training_loss_is_quadratic_around_theta_star(name, xp):
    """L(theta* + v) = L* + 1/2 v^T H v with the reported Hessian and floor."""
    p = FACTORIES[name](xp=xp)
    v = np.random.default_rng(7).standard_normal(p.n_params)
    expected = p.L_star + 0.5 * v @ p.hessian @ v
    got = backend.to_float(p.train_loss(_put(p, p.theta_star + v)))
    assert got == pytest.approx(expected, rel=1e-12)
    assert backend.to_float(p.train_loss(p.solution())) == pytest.approx(p.floor, abs=1e-12)
    assert p.floor == p.L_star
    g = _host(p.value_and_grad(p.solution(), _all(p))[1])
    assert np.linalg.norm(g) < 1e-12


@pytest.mark.parametrize("name", FACTORIES)
def test_spectrum_attributes(name):
    p = FACTORIES[name]()
    lam = np.linalg.eigvalsh(p.hessian)
    np.testing.assert_allclose(p.hessian, p.hessian.T, rtol=0, atol=1e-12)
    assert p.lambda_min == pytest.approx(lam[0], rel=1e-10)
    assert p.lambda_max == pytest.approx(lam[-1], rel=1e-10)
    assert p.kappa == pytest.approx(lam[-1] / lam[0], rel=1e-9)
    assert p.lambda_min > 0
    assert p.theta_star.shape == (p.n_params,)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", FACTORIES)
def test_dtype(name, dtype, xp):
    p = FACTORIES[name](xp=xp, dtype=dtype)
    want = getattr(xp, dtype)
    assert p.dtype == want and p.dtype_name == dtype
    theta = p.init_params(0)
    loss, grad = p.value_and_grad(theta, _first_batch(p, 1))
    assert theta.dtype == want and grad.dtype == want and loss.dtype == want
    assert p.train_loss(theta).dtype == want and p.solution().dtype == want
    assert p.test_metrics(theta) == {}


@pytest.mark.parametrize("name", FACTORIES)
def test_same_numbers_on_every_backend(name, xp):
    ref, p = FACTORIES[name](), FACTORIES[name](xp=xp)
    np.testing.assert_array_equal(_host(p.init_params(3)), _host(ref.init_params(3)))
    b = _first_batch(p, 1)
    np.testing.assert_array_equal(backend.to_host(b), backend.to_host(_first_batch(ref, 1)))
    loss, grad = p.value_and_grad(p.init_params(3), b)
    loss_ref, grad_ref = ref.value_and_grad(ref.init_params(3), _first_batch(ref, 1))
    assert backend.to_float(loss) == pytest.approx(backend.to_float(loss_ref), rel=1e-13)
    np.testing.assert_allclose(_host(grad), _host(grad_ref), rtol=1e-12, atol=1e-14)


# -- deterministic quadratic ---------------------------------------------------------------


def test_quadratic_from_eigenvalues():
    lam = [0.5, 2.0, 40.0]
    p = q.make_quadratic(eigenvalues=lam, seed=3)
    np.testing.assert_allclose(p.eigenvalues, sorted(lam), rtol=1e-12)
    assert p.kappa == pytest.approx(80.0, rel=1e-12)
    assert not np.allclose(p.hessian, np.diag(np.diag(p.hessian)))  # rotated
    again = q.make_quadratic(eigenvalues=lam, seed=3)
    np.testing.assert_array_equal(p.hessian, again.hessian)
    np.testing.assert_array_equal(p.theta_star, again.theta_star)


def test_quadratic_zigzag_setup():
    """The spec's worst case: A = diag(lmin, lmax), e0 = (1/lmin, 1/lmax)."""
    p = q.make_quadratic(eigenvalues=[1.0, 10.0], minimizer=[0.0, 0.0], rotate=False)
    np.testing.assert_array_equal(p.hessian, np.diag([1.0, 10.0]))
    loss, grad = p.value_and_grad(_put(p, np.array([1.0, 0.1])), _all(p))
    assert backend.to_float(loss) == pytest.approx(0.55, rel=1e-15)
    np.testing.assert_allclose(_host(grad), [1.0, 1.0], rtol=1e-15)


def test_quadratic_from_matrix_and_n_kappa():
    M = np.array([[4.0, 1.0], [1.0, 3.0]])
    p = q.make_quadratic(matrix=M, minimizer=[1.0, -1.0], L_star=-2.0)
    np.testing.assert_array_equal(p.hessian, M)
    assert p.floor == -2.0 and p.n_params == 2
    r = q.make_quadratic(n=7, kappa=1e3)
    np.testing.assert_allclose(r.eigenvalues, np.logspace(0, 3, 7), rtol=1e-10)
    assert r.kappa == pytest.approx(1e3, rel=1e-10)
    assert q.make_quadratic().n_params == 10  # defaults n=10, kappa=10


def test_quadratic_single_batch():
    p = q.make_quadratic(n=3, kappa=2.0)
    assert p.n_train == 1 and p.n_batches(1) == 1
    for epoch in range(3):
        (b,) = list(p.batches(epoch=epoch, seed=0, batch_size=1))
        assert backend.to_host(b).tolist() == [0]


def test_quadratic_errors():
    with pytest.raises(ValueError, match="only one"):
        q.make_quadratic(eigenvalues=[1.0], n=3)
    with pytest.raises(ValueError, match="eigenvalues"):
        q.make_quadratic(eigenvalues=[1.0, 0.0])
    with pytest.raises(ValueError, match="matrix"):
        q.make_quadratic(matrix=[[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="matrix"):
        q.make_quadratic(matrix=[[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="minimizer"):
        q.make_quadratic(n=3, minimizer=[1.0, 2.0])
    with pytest.raises(ValueError, match="kappa"):
        q.make_quadratic(n=3, kappa=0.5)
    with pytest.raises(ValueError, match="n"):
        q.make_quadratic(n=0)
    with pytest.raises(TypeError, match="L_star"):
        q.make_quadratic(L_star="1")
    with pytest.raises(TypeError, match="dtype"):
        q.make_quadratic(dtype="int32")
    p = q.make_quadratic(n=3)
    with pytest.raises(ValueError, match="theta"):
        p.value(p.xp.zeros(4, dtype=p.dtype), _all(p))
    with pytest.raises(ValueError, match="batch_size"):
        list(p.batches(0, 0, 2))


# -- batch quadratics -------------------------------------------------------------------


def test_batch_quadratic_interpolation():
    p = q.make_batch_quadratic(n=6, n_batches=20, kappa=30.0, seed=2)
    H = p.component_hessians
    assert H.shape == (20, 6, 6) and p.n_train == 20 and p.L_star == 0.0
    np.testing.assert_allclose(H.mean(axis=0), p.hessian, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(p.eigenvalues, np.logspace(0, np.log10(30), 6), rtol=1e-10)
    assert np.linalg.eigvalsh(H).min() > -1e-10  # every component PSD
    assert not np.allclose(H[0], H[1])
    # Interpolation: every single-sample batch is minimized at theta*.
    for i in range(20):
        b = backend.from_host(np.array([i]), p.xp, dtype="int64")
        loss, grad = p.value_and_grad(p.solution(), b)
        assert backend.to_float(loss) == 0.0 and np.abs(_host(grad)).max() == 0.0


def test_batch_quadratic_low_rank_components():
    p = q.make_batch_quadratic(n=5, n_batches=12, rank=1)
    ranks = [np.linalg.matrix_rank(h, tol=1e-8) for h in p.component_hessians]
    assert ranks == [1] * 12
    with pytest.raises(ValueError, match="rank"):
        q.make_batch_quadratic(n=5, n_batches=2, rank=2)


def test_batch_quadratic_without_interpolation():
    p = q.make_batch_quadratic(n=4, n_batches=10, interpolation=False, noise=0.5, seed=1)
    m = p.component_minimizers
    np.testing.assert_allclose(m.mean(axis=0), p.theta_star, atol=1e-14)
    d = m - p.theta_star
    assert p.floor == pytest.approx(0.5 * np.mean(np.einsum("ij,jk,ik->i", d, p.hessian, d)))
    assert p.floor > 0
    # A single component is not minimized at theta*, but at its own minimizer.
    b = backend.from_host(np.array([3]), p.xp, dtype="int64")
    assert np.linalg.norm(_host(p.value_and_grad(p.solution(), b)[1])) > 1e-3
    loss, grad = p.value_and_grad(_put(p, m[3]), b)
    assert backend.to_float(loss) == pytest.approx(0.0, abs=1e-14)
    assert np.linalg.norm(_host(grad)) < 1e-12


def test_batch_quadratic_errors():
    with pytest.raises(ValueError, match="n_batches"):
        q.make_batch_quadratic(n_batches=0)
    with pytest.raises(TypeError, match="interpolation"):
        q.make_batch_quadratic(interpolation=1)
    with pytest.raises(ValueError, match="noise"):
        q.make_batch_quadratic(interpolation=False, noise=-1.0)


# -- least squares ------------------------------------------------------------------------


def test_least_squares_rows():
    p = q.make_least_squares(n_rows=20, n_cols=5, seed=4)
    np.testing.assert_allclose(p.rows @ p.theta_star, p.targets, rtol=1e-14)
    np.testing.assert_allclose(p.hessian, p.rows.T @ p.rows / 20, rtol=1e-14)
    theta = np.random.default_rng(0).standard_normal(5)
    batches = list(p.batches(epoch=0, seed=0, batch_size=1))
    assert len(batches) == 20
    seen = []
    for b in batches:
        (i,) = backend.to_host(b).tolist()
        seen.append(i)
        loss, grad = p.value_and_grad(_put(p, theta), b)
        r = p.rows[i] @ theta - p.targets[i]
        assert backend.to_float(loss) == pytest.approx(0.5 * r * r, rel=1e-12)
        np.testing.assert_allclose(_host(grad), r * p.rows[i], rtol=1e-12)
    assert sorted(seen) == list(range(20))


def test_least_squares_errors():
    with pytest.raises(ValueError, match="n_rows"):
        q.make_least_squares(n_rows=3, n_cols=4)
    with pytest.raises(TypeError, match="n_cols"):
        q.make_least_squares(n_cols=2.5)
