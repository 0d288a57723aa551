"""Tests of the cheap line evaluations (problems/lines.py): values equal direct
evaluation up to the rounding bound stated in the module docstring,

    |l_cheap(s) - l_direct(s)| <= 2 (n + 8) u M(s),

with ``u`` the unit roundoff, ``n`` the terms summed along the longest chain of sums (the
products' inner dimensions plus the batch sum) and ``M(s)`` the loss formula evaluated on
magnitudes, computed here on the host in float64 from the problem's own data.
"""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paltest import backend
from problems import kernel_logreg, lines, registry
from problems.base import DirectLine
from problems.quadratic import make_batch_quadratic, make_least_squares, make_quadratic

PROBLEMS = ("mf-rank1", "mf-rank4", "mf-rank10", "mf-true", "quadratic",
            "batch-quadratic-interp", "batch-quadratic-noise", "least-squares", "kernel")
BATCH = 20


def _toy_path() -> str:
    rng = np.random.default_rng(0)
    path = os.path.join(tempfile.mkdtemp(), "toy.txt")
    with open(path, "w") as f:
        for i in range(60):
            f.write(f"{1 + i % 2} 1:{rng.normal():.4f} 2:{rng.normal():.4f} "
                    f"3:{rng.normal():.4f}\n")
    return path


@functools.cache
def build(name: str, xp_name: str, dtype: str):
    """``(problem, theta, direction, batch)``: a random point and direction (host draws)."""
    kw = dict(xp=xp_name, dtype=dtype)
    if name.startswith("mf-"):
        p = registry.get(name, **kw)
    elif name == "quadratic":
        p = make_quadratic(n=8, kappa=50.0, L_star=0.3, **kw)
    elif name == "batch-quadratic-interp":
        p = make_batch_quadratic(n=6, n_batches=40, interpolation=True, **kw)
    elif name == "batch-quadratic-noise":
        p = make_batch_quadratic(n=6, n_batches=40, interpolation=False, **kw)
    elif name == "least-squares":
        p = make_least_squares(n_rows=60, n_cols=7, **kw)
    else:
        p = kernel_logreg.make(path=_toy_path(), sigma=1.0, **kw)
    rng = np.random.default_rng(1)
    theta = p.init_params(0)
    d = backend.from_host(rng.standard_normal(p.n_params), p.xp, device=p.device,
                          dtype=p.dtype_name)
    b = BATCH if p.n_train >= BATCH else 1
    batch = next(iter(p.batches(0, 0, b)))
    return p, theta, d, batch


def magnitude(p, theta, d, batch, s):
    """``(n, M(s))`` for the bound (host float64; ``s`` a 1-d host array)."""
    h = lambda a: np.asarray(backend.to_host(a), dtype=np.float64)  # noqa: E731
    t, dd, a_s = np.abs(h(theta)), np.abs(h(d)), np.abs(s)[None, :]
    idx = None if batch is None else h(batch).astype(int)
    if p.name.startswith("mf-"):
        x, y = (np.abs(h(a)) for a in p._rows(batch))
        if p.rank is None:
            W = (t.reshape(10, 6)[..., None] + dd.reshape(10, 6)[..., None] * a_s[None])
            P = np.einsum("bi,oik->bok", x, W)
            n = 6
        else:
            k, c = p.rank, p.rank * 6
            W1 = t[:c].reshape(k, 6)[..., None] + dd[:c].reshape(k, 6)[..., None] * a_s[None]
            W2 = t[c:].reshape(10, k)[..., None] + dd[c:].reshape(10, k)[..., None] * a_s[None]
            P = np.einsum("bi,jik,ojk->bok", x, W1, W2)
            n = 6 + k
        return n + x.shape[0], np.mean((P + y[..., None]) ** 2, axis=(0, 1))
    if isinstance(p, kernel_logreg.KernelLogReg):
        K = np.abs(h(p.xp.take(p._K_train, batch, axis=0)))
        m = (K @ t)[:, None] + (K @ dd)[:, None] * a_s + 1.0
        return p.n_train + K.shape[0], np.mean(m, axis=0)
    if p.name == "least-squares":
        A, y = np.abs(p.rows[idx]), np.abs(p.targets[idx])
        m = (A @ t)[:, None] + (A @ dd)[:, None] * a_s + y[:, None]
        return p.n_params + A.shape[0], 0.5 * np.mean(m * m, axis=0)
    if p.name == "quadratic" or p.interpolation:
        H = np.abs(p.hessian) if p.name == "quadratic" else \
            np.mean(np.abs(p.component_hessians[idx]), axis=0)
        m = (t + np.abs(p.theta_star))[:, None] + dd[:, None] * a_s
        n = 2 * p.n_params + (0 if p.name == "quadratic" else len(idx))
        return n, 0.5 * np.sum(m * (H @ m), axis=0) + abs(p.L_star)
    parts = np.abs(p.component_minimizers[idx])  # (b, n)
    m = (t[None, :, None] + parts[..., None]) + dd[None, :, None] * a_s[None]
    q = np.einsum("bis,ij,bjs->bs", m, np.abs(p.hessian), m)
    return 2 * p.n_params + len(idx), 0.5 * np.mean(q, axis=0)


def check_line(name, xp_name, dtype, steps):
    p, theta, d, batch = build(name, xp_name, dtype)
    keep = (backend.to_host(theta).tobytes(), backend.to_host(d).tobytes())
    line = p.line(theta, d, batch)
    assert line.cheap and isinstance(line, lines.CheapLine)
    s = line.steps(steps)  # the steps in the problem's dtype: both evaluate these
    cheap = np.asarray(backend.to_host(line(s)), dtype=np.float64)
    direct = np.asarray(backend.to_host(DirectLine(p, theta, d, batch)(s)), dtype=np.float64)
    u = float(np.finfo(dtype).eps) / 2
    n, M = magnitude(p, theta, d, batch, np.asarray(backend.to_host(s), dtype=np.float64))
    bound = 2 * (n + 8) * u * M
    assert cheap.shape == (len(steps),) and line.n_points == len(steps)
    assert np.all(np.abs(cheap - direct) <= bound), (name, dtype, steps, cheap - direct, bound)
    assert (backend.to_host(theta).tobytes(), backend.to_host(d).tobytes()) == keep
    return p, theta, batch, line, u, n


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", PROBLEMS)
@given(steps=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6))
@example(steps=[0.0, -0.0, 1e-30, -3.5, 1e6, -1e6])
def test_cheap_line_equals_direct_within_bound(xp, xp_name, name, dtype, steps):
    check_line(name, xp_name, dtype, steps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", PROBLEMS)
def test_line_at_zero_is_value(xp, xp_name, name, dtype):
    p, theta, batch, line, u, n = check_line(name, xp_name, dtype, [0.0])
    got = float(backend.to_host(line([0.0]))[0])
    want = backend.to_float(p.value(theta, batch))
    _, M = magnitude(p, theta, theta * 0.0, batch, np.zeros(1))
    assert abs(got - want) <= 2 * (n + 8) * u * float(M[0])


def test_bound_can_fail():
    """The check is not vacuous: a line off by a relative 1e-6 fails it in float64."""
    p, theta, d, batch = build("mf-rank4", "numpy", "float64")
    n, M = magnitude(p, theta, d, batch, np.array([0.5]))
    got = float(p.line(theta, d, batch)([0.5])[0]) * (1 + 1e-6)
    want = float(p.value(theta + 0.5 * d, batch))
    assert abs(got - want) > 2 * (n + 8) * (np.finfo("float64").eps / 2) * M[0]


def test_bind_offers_the_line_only_when_cheap(xp, xp_name):
    p, theta, d, batch = build("mf-rank4", xp_name, "float64")
    vg, value = p.bind(batch)
    assert backend.to_float(value(theta)) == backend.to_float(p.value(theta, batch))
    line = value.line(theta, d)
    assert line.cheap and line.batch is batch
    assert line.setup_products == 4
    q = registry.get("mf-true", xp=xp)
    assert q.line(q.init_params(0), q.init_params(1), batch).setup_products == 2


def test_direction_is_checked(xp, xp_name):
    p, theta, _, batch = build("mf-rank4", xp_name, "float64")
    with pytest.raises(ValueError, match="^direction: expected shape"):
        p.line(theta, theta[:3], batch)


def test_bind_without_a_cheap_line_has_no_line_method(xp, xp_name):
    """A problem on the base class's direct line binds a plain ``value`` (no ``line``)."""
    p, theta, _, batch = build("mf-rank4", xp_name, "float64")
    direct = type("DirectMF", (type(p),), {"line_class": DirectLine})
    q = direct.__new__(direct)
    q.__dict__.update(p.__dict__)
    _, value = q.bind(batch)
    assert getattr(value, "line", None) is None
    assert backend.to_float(value(theta)) == backend.to_float(p.value(theta, batch))


@pytest.mark.parametrize("name", PROBLEMS)
def test_no_host_read_in_set_up_or_evaluation(name, forbid_value_reads, monkeypatch):
    """On array-api-strict (a stand-in for a device) neither the set-up nor the
    evaluation of many steps at once reads a value back: the caller reads the result."""
    p, theta, d, batch = build(name, "array_api_strict", "float64")
    s = backend.from_host(np.array([0.0, -2.0, 1e3]), p.xp, device=p.device,
                          dtype="float64")
    forbid_value_reads()
    line = p.line(theta, d, batch)
    out = line(s)
    monkeypatch.undo()
    assert tuple(out.shape) == (3,)
