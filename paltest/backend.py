"""Backend layer: array namespaces, devices, dtypes, and the host edge.

Everything in :mod:`paltest` that touches arrays goes through the Python array API
standard, with the namespace found by :func:`array_api_compat.array_namespace`. This
module holds the few helpers the rest of the package shares:

* :func:`namespace` and :func:`device` - where an array lives;
* :func:`resolve_namespace` - a namespace from a name (``"numpy"``, ``"array_api_strict"``,
  ``"cupy"``, ``"torch"``, ``"jax"``) or an array-API module object, for command lines
  and test options;
* :func:`float64_unavailable` - why a namespace cannot hold float64 right now (JAX
  without 64-bit mode), or ``None``;
* :func:`from_host` - move host (NumPy) data to a namespace / device / dtype. Random
  numbers are always drawn on the host with NumPy and moved with this function, so the
  same seed gives the same numbers on every backend;
* :func:`to_host` and :func:`to_float` - pull values back to the host. They are the only
  device-to-host transfers, and are meant for the edges (logging, stopping tests);
* :func:`on_host` - whether a namespace is NumPy (a branch on a value is free);
* :func:`detach` - an array without autograd history (PyTorch tensors that require
  grad; everything else is returned as it is);
* :func:`barrier` - values that a compiled (JAX) step must compute once, not fuse into
  the vector loops that use them;
* :func:`is_traced` - whether an array is an abstract value being traced (JAX's
  ``jit``, ``lax.scan``, ``vmap``), whose value cannot be read on the host;
* :func:`copies_host_memory` - whether moving host data to a namespace makes a second
  copy in host memory (JAX on the CPU), which memory budgets must count;
* :func:`host_threads` - how many threads host-memory work may use (NumPy-backed
  namespaces: the CPUs this process may run on; others: 1);
* :func:`check_params` and :func:`float_dtype` - the dtype policy: parameters are 1-D
  real floating arrays of ``float32`` or ``float64``; anything else is rejected with an
  error that names the argument.

Example
-------
>>> import numpy as np
>>> from paltest import backend
>>> xp = backend.resolve_namespace("numpy")
>>> theta = backend.from_host(np.zeros(3), xp, dtype="float32")
>>> backend.check_params(theta).__name__
'array_api_compat.numpy'
>>> backend.to_float(xp.sum(theta + 1))
3.0
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "FLOAT_DTYPES",
    "HOST_ARRAY_TYPES",
    "barrier",
    "check_params",
    "detach",
    "device",
    "float_dtype",
    "copies_host_memory",
    "float64_unavailable",
    "from_host",
    "host_threads",
    "is_floating_array",
    "is_traced",
    "namespace",
    "on_host",
    "resolve_namespace",
    "to_float",
    "to_host",
]

#: The parameter dtypes the library supports, by name.
FLOAT_DTYPES = ("float32", "float64")

_NAMESPACE_MODULES = {
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "cupy": "cupy",
    "torch": "torch",
    "jax": "jax.numpy",
}

#: How to install each optional backend (for the error when it is missing).
_INSTALL_HINTS = {
    "cupy": "pip install 'paltest[gpu]' (and a CUDA GPU)",
    "array_api_strict": "pip install array-api-strict",
    "torch": "pip install 'paltest[torch]'",
    "jax": "pip install 'paltest[jax]'",
}

#: The instructions in the error for float64 on JAX without 64-bit mode.
JAX_X64_HINT = (
    "JAX computes in float32 unless 64-bit mode is on, and would silently make float32 "
    "arrays; enable it before any JAX array is created: set the environment variable "
    "JAX_ENABLE_X64=1, or call jax.config.update('jax_enable_x64', True) at the start "
    "of the program (paltest never changes JAX's global configuration)"
)


#: The namespace of one array, by the array's type (see :func:`namespace`).
_NS_BY_TYPE: dict[type, ModuleType] = {}
#: ``(array type, dtype)`` pairs that passed :func:`check_params`, with their namespace.
_PARAMS_OK: dict[tuple[type, Any], ModuleType] = {}
#: NumPy's array types: they never carry autograd history and are never traced, so
#: :func:`detach` and the optimizers' wrappers pass them with one type check.
HOST_ARRAY_TYPES = frozenset({np.ndarray, np.float64, np.float32})


def namespace(*arrays: Any) -> ModuleType:
    """The array-API namespace of ``arrays`` (an array-api-compat wrapper for NumPy).

    Raises ``TypeError`` when the arrays come from different namespaces.

    The namespace of a single array is cached by the array's type: array-api-compat
    resolves it from the type alone (it caches the same lookup per class itself) for
    NumPy, CuPy, PyTorch, JAX (arrays and tracers alike: every tracer class is a
    ``jax.Array``) and array-api-strict (whose ``__array_namespace__`` always answers
    the ``array_api_strict`` module). The one value-dependent case, a NumPy array of
    JAX's ``float0`` dtype (a void dtype, which array-api-compat gives to JAX), is
    never cached. Only successful lookups are cached; errors are raised every time.
    """
    if len(arrays) == 1:
        x = arrays[0]
        cls = type(x)
        xp = _NS_BY_TYPE.get(cls)
        if xp is not None and (cls is not np.ndarray or x.dtype.kind != "V"):
            return xp
        xp = array_api_compat.array_namespace(x)
        if cls is not np.ndarray or x.dtype.kind != "V":
            _NS_BY_TYPE[cls] = xp
        return xp
    return array_api_compat.array_namespace(*arrays)


def device(x: Any) -> Any:
    """The device ``x`` lives on (``"cpu"`` for NumPy)."""
    return array_api_compat.device(x)


def on_host(xp: ModuleType) -> bool:
    """Whether ``xp`` is NumPy: its arrays live in host memory, so reading a 0-d array's
    value as a Python ``bool`` costs no device synchronization.

    :func:`paltest.optimizers.selection.select` uses it to replace a whole-vector selection
    by a Python branch with the same result. array-api-strict answers ``False`` on
    purpose: the test suite runs the device code path on it, and proves that path never
    converts a value to Python.
    """
    try:
        return _ON_HOST[xp]
    except (KeyError, TypeError):
        answer = array_api_compat.is_numpy_namespace(xp)
    try:
        _ON_HOST[xp] = answer
    except TypeError:  # pragma: no cover - an unhashable namespace object
        pass
    return answer


_ON_HOST: dict[Any, bool] = {}


def host_threads(xp: ModuleType) -> int:
    """Threads worth using for independent pieces of work on arrays of ``xp``.

    NumPy and array-api-strict compute on the host and release the GIL in their kernels,
    so independent chunks can run on every CPU this process may use (the affinity
    mask, not the machine's count). A GPU namespace queues work on one device: 1.
    """
    if not (array_api_compat.is_numpy_namespace(xp)
            or array_api_compat.is_array_api_strict_namespace(xp)):
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def detach(x: Any) -> Any:
    """``x`` without autograd history: a PyTorch tensor that requires grad becomes
    ``x.detach()`` (the same memory, no graph); anything else is returned as it is.

    The optimizers pass every parameter vector, loss and gradient they compute with
    through it, so a step never records an autograd graph (see
    :func:`paltest.optimizers.base.takes_theta_as_data`). A NumPy array costs one type
    check.
    """
    if type(x) in HOST_ARRAY_TYPES or not getattr(x, "requires_grad", False):
        return x
    return x.detach()


def is_traced(x: Any) -> bool:
    """Whether ``x`` is an abstract value being traced: a JAX tracer inside ``jax.jit``,
    ``lax.scan``, ``vmap`` or ``grad``. Its value cannot be read on the host, so code
    that branches on values on the host (the SLS family's trial loops, the exact line
    search, ``on_nonfinite="raise"``) cannot be traced. Everything else answers
    ``False`` at the cost of one type check.
    """
    if not type(x).__module__.startswith("jax"):
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def barrier(xp: ModuleType, values: Any) -> Any:
    """``values`` (a tuple of arrays) unchanged; on JAX behind
    ``jax.lax.optimization_barrier``, so that a compiled step computes them once instead
    of fusing them into every element of the vector work that uses them. XLA on the CPU
    otherwise recomputed PAL's scalar case logic (logarithms, powers, divisions) inside
    the loops of the update: 4 ms per step at 10^5 parameters, eight times the
    evaluations' time. Eagerly, and on every other namespace, it does nothing."""
    if not array_api_compat.is_jax_namespace(xp):
        return values
    import jax

    return jax.lax.optimization_barrier(values)


def copies_host_memory(xp: ModuleType, device: Any = None) -> bool:
    """Whether :func:`from_host` makes a second copy *in host memory* on ``xp``/``device``.

    NumPy, array-api-strict and PyTorch on the CPU take a host array as it is (no copy);
    CuPy and GPU tensors copy it into device memory (host memory is freed when the host
    array is); JAX on the CPU copies it into its own host buffer, so while both exist
    the data is held twice. Found by moving an 8-element probe (once per call).
    """
    host = np.zeros(8, dtype=np.float32)
    moved = from_host(host, xp, device=device)
    try:
        kind = moved.__dlpack_device__()[0]
    except (AttributeError, TypeError):  # pragma: no cover - no DLPack: assume a copy
        return True
    if kind != 1:  # 1 = kDLCPU: other memory (a GPU), not host memory
        return False
    return not np.shares_memory(host, to_host(moved))


def resolve_namespace(name: str | ModuleType) -> ModuleType:
    """An array-API namespace from a name such as ``"numpy"``, ``"jax"`` or ``"torch"``.

    A module passed in (``numpy``, ``jax.numpy``, ``torch``, ``cupy``,
    ``array_api_strict``, an array-api-compat wrapper, ...) is returned as its array-API
    compatible namespace: the one :func:`namespace` finds for its arrays (``jax.numpy``
    for JAX, ``array_api_compat.torch`` for PyTorch). Unknown names raise
    ``ValueError``; a known backend that is not installed raises ``ImportError`` with the
    install hint.
    """
    if isinstance(name, ModuleType):
        mod = name
    else:
        if not isinstance(name, str) or name not in _NAMESPACE_MODULES:
            raise ValueError(
                f"xp: unknown array namespace {name!r}; choose one of "
                f"{sorted(_NAMESPACE_MODULES)} or pass an array-API module"
            )
        try:
            mod = importlib.import_module(_NAMESPACE_MODULES[name])
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"xp: backend {name!r} is not installed; "
                              f"{_INSTALL_HINTS.get(name, '')}") from err
    probe = mod.asarray(0.0) if hasattr(mod, "asarray") else None
    if probe is None:
        raise ValueError(f"xp: {mod!r} is not an array namespace (no asarray)")
    return array_api_compat.array_namespace(probe)


def float64_unavailable(xp: ModuleType) -> str | None:
    """Why ``xp`` cannot hold float64 arrays right now, or ``None`` when it can.

    Only JAX without 64-bit mode (``jax_enable_x64``) answers: it would silently make
    float32 arrays from float64 data. The answer is read from JAX's configuration at
    each call (the mode can be switched at run time), and is the instruction to give.
    """
    if array_api_compat.is_jax_namespace(xp):
        import jax

        if not jax.config.jax_enable_x64:
            return JAX_X64_HINT
    return None


def float_dtype(xp: ModuleType, dtype: Any) -> Any:
    """The namespace's dtype for ``dtype`` (a name like ``"float32"`` or a dtype object).

    Only ``float32`` and ``float64`` are accepted; anything else raises ``TypeError``.
    ``float64`` on a namespace that cannot hold it now (JAX without 64-bit mode, see
    :func:`float64_unavailable`) raises ``ValueError`` saying how to enable it.
    """
    if isinstance(dtype, str):
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype: must be one of {FLOAT_DTYPES}, got {dtype!r}")
        return _available(xp, dtype, getattr(xp, dtype))
    for name in FLOAT_DTYPES:
        try:
            same = dtype == getattr(xp, name)
        except Exception:  # e.g. an array of names: no elementwise comparison
            same = False
        if same is True:
            return _available(xp, name, dtype)
    raise TypeError(f"dtype: must be float32 or float64, got {dtype!r}")


def _available(xp: ModuleType, name: str, dtype: Any) -> Any:
    if name == "float64":
        why = float64_unavailable(xp)
        if why is not None:
            raise ValueError(f"dtype: float64 is not available on {xp.__name__}: {why}")
    return dtype


def dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` for a floating dtype of any namespace."""
    text = str(dtype)
    for name in FLOAT_DTYPES:
        if name in text:
            return name
    raise TypeError(f"dtype: must be float32 or float64, got {dtype!r}")


def from_host(data: Any, xp: ModuleType, *, device: Any = None, dtype: Any = None) -> Any:
    """Move host data (NumPy arrays, Python scalars or sequences) to ``xp`` on ``device``.

    ``dtype`` may be a NumPy dtype name (``"float32"``, ``"int64"``), a floating dtype of
    ``xp``, or ``None`` to keep the host dtype. The host array is made contiguous first,
    so views and transposes move correctly on every backend. float64 data for a
    namespace that would silently make it float32 (JAX without 64-bit mode) raises
    ``ValueError`` with the instructions (:func:`float64_unavailable`).
    """
    host = np.asarray(data)
    if not host.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d arrays 1-d)
        host = np.ascontiguousarray(host)
    if dtype is not None:
        # Cast on the host, so the final bytes cross to the device once. A dtype object
        # of the namespace must be a supported float; names may be any NumPy dtype name
        # (e.g. "int64" for index arrays).
        name = dtype if isinstance(dtype, str) else dtype_name(dtype)
        host = host.astype(name, copy=False)
    if host.dtype == np.float64 and not on_host(xp):
        _available(xp, "float64", None)
    if device is None:
        return xp.asarray(host)
    return xp.asarray(host, device=device)


def to_host(x: Any) -> np.ndarray:
    """Copy an array of any namespace to a NumPy array on the host (one transfer).

    A traced value (:func:`is_traced`) has no value to copy: ``TypeError`` says so.
    """
    if isinstance(x, np.ndarray):
        return x
    if is_traced(x):
        raise TypeError(
            "to_host: the value is being traced (jax.jit, lax.scan, vmap, grad) and has no "
            "value to read on the host; read it outside the traced function")
    if isinstance(x, (int, float, bool, np.generic)):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.from_dlpack(x)
    except (TypeError, BufferError, RuntimeError, AttributeError):
        return np.asarray(x)


def to_float(x: Any) -> float:
    """The value of a 0-d array (or Python number) as a Python float, on the host."""
    if isinstance(x, (int, float)):
        return float(x)
    return float(to_host(x))


def is_floating_array(x: Any) -> bool:
    """Whether ``x`` is an array of a supported floating dtype (float32 or float64)."""
    try:
        xp = namespace(x)
    except TypeError:
        return False
    return x.dtype in (xp.float32, xp.float64)


def check_params(theta: Any, name: str = "theta") -> ModuleType:
    """Validate a parameter vector and return its namespace.

    The policy: a 1-D array of an array-API namespace with dtype ``float32`` or
    ``float64``. Integer, complex, half precision and 0-d or multi-dimensional arrays
    raise ``TypeError``/``ValueError`` naming ``name``. Only metadata is read: no
    device-to-host transfer happens.

    The namespace and dtype verdict of an accepted ``(array type, dtype)`` pair is
    cached (both are functions of the pair, see :func:`namespace`); the shape is
    checked at every call.
    """
    try:
        xp = _PARAMS_OK.get((type(theta), theta.dtype))
    except (AttributeError, TypeError):  # no dtype, or an unhashable one: the full checks
        xp = None
    if xp is not None and theta.ndim == 1:
        return xp
    try:
        xp = namespace(theta)
    except TypeError as err:
        raise TypeError(
            f"{name}: expected an array of an array-API namespace, got {type(theta).__name__}"
        ) from err
    if theta.dtype not in (xp.float32, xp.float64):
        raise TypeError(
            f"{name}: dtype must be float32 or float64, got {theta.dtype}; "
            "integer, complex and half-precision parameters are not supported"
        )
    if theta.ndim != 1:
        raise ValueError(
            f"{name}: must be a 1-D (flat) parameter vector, got shape {tuple(theta.shape)}"
        )
    try:
        _PARAMS_OK[(type(theta), theta.dtype)] = xp
    except TypeError:  # pragma: no cover - an unhashable dtype: not cached
        pass
    return xp
