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


# -- every namespace by name or module (issue 13) ---------------------------------------
def test_names_round_trip(xp, xp_name):
    """The name under test resolves to the namespace of its arrays, and results record
    that name (so a run's config rebuilds its problem on the same backend)."""
    from paltest.testbed import results

    assert backend.namespace(xp.zeros(2)) is xp
    assert results.xp_name(xp) == xp_name
    assert backend.resolve_namespace(results.xp_name(xp)) is xp


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_jax_and_torch_by_name_and_by_module(name):
    import importlib

    pytest.importorskip(name, reason=f"{name} is not installed (pip install 'paltest[{name}]')")
    xp = backend.resolve_namespace(name)
    module = importlib.import_module("jax.numpy" if name == "jax" else name)
    assert backend.resolve_namespace(module) is xp
    assert backend.resolve_namespace(xp) is xp  # the array-API namespace itself
    assert backend.namespace(backend.from_host(np.zeros(2, np.float32), xp)) is xp


def test_a_module_that_is_not_an_array_namespace_is_named():
    import math

    with pytest.raises(ValueError, match="^xp: <module 'math'.* is not an array namespace"):
        backend.resolve_namespace(math)


def test_float64_on_jax_needs_x64_and_says_how():
    """Issue 13: a float64 problem on JAX without x64 silently got float32 data, then
    failed with "theta: dtype float32 differs from the problem's float64"."""
    jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'paltest[jax]')")
    import problems

    xp = backend.resolve_namespace("jax")
    hint = r"float64 is not available on jax\.numpy: .*JAX_ENABLE_X64=1.*jax_enable_x64"
    with jax.enable_x64(False):
        assert backend.float64_unavailable(xp) is not None
        for call in (lambda: backend.float_dtype(xp, "float64"),
                     lambda: backend.float_dtype(xp, xp.float64),
                     lambda: problems.get("mf-rank4", xp="jax", dtype="float64")):
            with pytest.raises(ValueError, match="^dtype: " + hint):
                call()
        with pytest.raises(ValueError, match="^dtype: " + hint):
            backend.from_host(np.zeros(2), xp)  # float64 data would become float32
        assert backend.float_dtype(xp, "float32") == xp.float32
        assert problems.get("mf-rank4", xp="jax", dtype="float32").dtype == xp.float32
        assert not jax.config.jax_enable_x64  # the library left the mode alone
    with jax.enable_x64(True):
        assert backend.float64_unavailable(xp) is None
        p = problems.get("mf-rank4", xp="jax", dtype="float64")
        assert p.init_params(0).dtype == xp.float64


def test_is_traced_only_inside_jax_transformations():
    jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'paltest[jax]')")
    seen = []

    def f(x):
        seen.append(backend.is_traced(x))
        return x * 2

    x = jax.numpy.ones(3, dtype=jax.numpy.float32)
    f(x)
    jax.jit(f)(x)
    jax.lax.scan(lambda c, _: (f(c), None), x, None, length=2)
    assert seen == [False, True, True]
    assert not backend.is_traced(np.ones(3)) and not backend.is_traced(1.0)
    with pytest.raises(TypeError, match="^to_host: the value is being traced"):
        jax.jit(lambda v: backend.to_host(v))(x)


def test_copies_host_memory(xp, xp_name):
    """Only a namespace that copies host arrays into other host memory answers True."""
    copies = backend.copies_host_memory(xp)
    if xp_name in ("numpy", "array_api_strict", "torch"):  # they share the host buffer
        assert not copies
    elif xp_name == "jax":  # JAX on the CPU keeps its own copy
        assert copies == all(d.platform == "cpu" for d in __import__("jax").devices())
    else:  # device memory: the host copy is not in the same memory
        assert not copies
