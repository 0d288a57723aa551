"""Tests of the backend layer (paltest.backend)."""

from __future__ import annotations

import numpy as np
import pytest

from paltest import backend


def test_from_host_and_back(xp):
    host = np.arange(6.0).reshape(2, 3).T  # a non-contiguous view
    x = backend.from_host(host, xp, dtype="float32")
    assert x.dtype == xp.float32 and tuple(x.shape) == (3, 2)
    assert backend.namespace(x) is xp
    np.testing.assert_array_equal(backend.to_host(x), host.astype(np.float32))
    y = backend.from_host(host, xp, device=backend.device(x), dtype=xp.float64)
    assert y.dtype == xp.float64
    idx = backend.from_host([2, 0], xp, dtype="int64")
    assert idx.dtype == xp.int64


def test_to_float_reads_0d(xp):
    x = backend.from_host(np.array(2.5), xp)
    assert backend.to_float(x) == 2.5
    assert backend.to_float(3) == 3.0


def test_check_params_policy(xp):
    assert backend.check_params(xp.zeros(3, dtype=xp.float32)) is xp
    assert backend.check_params(xp.zeros(3, dtype=xp.float64)) is xp
    with pytest.raises(TypeError, match="^theta: dtype"):
        backend.check_params(xp.zeros(3, dtype=xp.int32))
    with pytest.raises(ValueError, match="^x0: must be a 1-D"):
        backend.check_params(xp.zeros((2, 2), dtype=xp.float64), "x0")
    with pytest.raises(ValueError, match="^theta: must be a 1-D"):
        backend.check_params(xp.asarray(1.0, dtype=xp.float64))
    with pytest.raises(TypeError, match="^theta: expected an array"):
        backend.check_params([1.0, 2.0])


def test_check_params_rejects_half_and_complex():
    with pytest.raises(TypeError, match="^theta: dtype"):
        backend.check_params(np.zeros(3, dtype=np.float16))
    with pytest.raises(TypeError, match="^theta: dtype"):
        backend.check_params(np.zeros(3, dtype=np.complex64))


def test_float_dtype(xp):
    assert backend.float_dtype(xp, "float32") == xp.float32
    assert backend.float_dtype(xp, xp.float64) == xp.float64
    assert backend.dtype_name(xp.float32) == "float32"
    with pytest.raises(TypeError, match="^dtype:"):
        backend.float_dtype(xp, "float16")
    with pytest.raises(TypeError, match="^dtype:"):
        backend.float_dtype(xp, xp.int64)


def test_resolve_namespace():
    xp = backend.resolve_namespace("numpy")
    assert backend.namespace(xp.zeros(1)) is xp
    assert backend.resolve_namespace(np) is xp
    with pytest.raises(ValueError, match="^xp: unknown"):
        backend.resolve_namespace("jax-but-misspelt")


def test_mixed_namespaces_are_an_error():
    import array_api_strict as xs

    with pytest.raises(TypeError):
        backend.namespace(np.zeros(2), xs.zeros(2))


def test_on_host_only_for_numpy():
    import types

    assert backend.on_host(backend.resolve_namespace("numpy"))
    # array-api-strict runs the device code path (the no-transfer tests rely on it)
    assert not backend.on_host(backend.resolve_namespace("array_api_strict"))
    assert not backend.on_host(types.ModuleType("cupy"))


def test_host_threads_follow_the_affinity_mask():
    import os
    import types

    cpus = len(os.sched_getaffinity(0))
    assert backend.host_threads(backend.resolve_namespace("numpy")) == cpus
    assert backend.host_threads(backend.resolve_namespace("array_api_strict")) == cpus
    assert backend.host_threads(types.ModuleType("cupy")) == 1


def test_detach_passes_arrays_through(xp):
    x = xp.asarray([1.0, 2.0])
    assert backend.detach(x) is x
    assert backend.detach(2.5) == 2.5


def test_detach_removes_torch_autograd_history():
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    leaf = torch.ones(3, dtype=torch.float64, requires_grad=True)
    derived = 2 * leaf
    for t in (leaf, derived):
        d = backend.detach(t)
        assert d.grad_fn is None and not d.requires_grad
        assert d.data_ptr() == t.data_ptr()  # the same memory, no copy
    plain = torch.ones(3)
    assert backend.detach(plain) is plain
