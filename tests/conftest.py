"""Shared test configuration: the ``--xp`` backend option and the Hypothesis profiles.

``xp`` is a fixture parametrized over the namespaces chosen with ``--xp`` (a
comma-separated list from numpy, array_api_strict, jax, torch, cupy; default
``numpy,array_api_strict``). ``--xp cupy`` runs the backend-aware tests on the GPU;
without CuPy or without a GPU those tests are skipped with the reason, as are the tests
of any chosen backend that is not installed. ``xps`` is the Hypothesis strategies
namespace (``hypothesis.extra.array_api``) of the backend under test, so property tests
draw their arrays through its array-API namespace.

JAX: when ``jax`` is among the chosen namespaces, the test session turns on JAX's 64-bit
mode (``jax_enable_x64``) before any test runs, since most tests work in float64. The
library itself never changes it: a float64 problem on JAX without it is an error that
says how to enable it (``tests/test_backend.py`` checks that error with the mode
switched off for the test).

Tests that need the shared LIBSVM files read them from the data directory
(``PALTEST_DATA``) and are skipped, with the reason, when a file is absent.
"""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

from paltest import backend

DEFAULT_XP = "numpy,array_api_strict"
KNOWN_XP = ("numpy", "array_api_strict", "jax", "torch", "cupy")

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=150,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption(
        "--xp",
        action="store",
        default=DEFAULT_XP,
        help=f"comma-separated array namespaces to test on, from {KNOWN_XP} "
        f"(default: {DEFAULT_XP})",
    )


def _xp_names(config) -> list[str]:
    names = [n.strip() for n in config.getoption("--xp").split(",") if n.strip()]
    bad = [n for n in names if n not in KNOWN_XP]
    if bad:
        raise pytest.UsageError(f"--xp: unknown namespace(s) {bad}; choose from {KNOWN_XP}")
    return names


def pytest_configure(config):
    if "jax" in _xp_names(config) and _unavailable("jax") is None:
        import jax

        jax.config.update("jax_enable_x64", True)  # the tests work in float64


def _unavailable(name: str) -> str | None:
    """Why backend ``name`` can't run here, or None."""
    try:
        mod = importlib.import_module("jax.numpy" if name == "jax" else name)
    except ImportError as err:
        return f"{name} is not installed ({err})"
    if name == "cupy":
        try:
            if mod.cuda.runtime.getDeviceCount() < 1:
                return "cupy: no CUDA GPU present"
        except Exception as err:  # CUDA driver missing, etc.
            return f"cupy: no usable CUDA GPU ({type(err).__name__}: {err})"
    return None


def pytest_generate_tests(metafunc):
    if "xp" in metafunc.fixturenames:
        metafunc.parametrize("xp_name", _xp_names(metafunc.config), scope="session")


@pytest.fixture(scope="session")
def xp(xp_name):
    """The array namespace under test (array-api-compat wrapped)."""
    reason = _unavailable(xp_name)
    if reason is not None:
        pytest.skip(reason)
    return backend.resolve_namespace(xp_name)


@pytest.fixture(scope="session")
def xps(xp):
    """Hypothesis strategies (``hypothesis.extra.array_api``) drawing arrays of ``xp``.

    Built on the array-API namespace itself (array-api-compat's wrapper for NumPy,
    PyTorch and CuPy), with the standard's 2023.12 version named explicitly, since the
    wrappers do not all declare one that Hypothesis recognises.
    """
    import warnings

    from hypothesis.errors import HypothesisWarning
    from hypothesis.extra.array_api import make_strategies_namespace

    with warnings.catch_warnings():  # "could not determine whether ... is an Array API"
        warnings.simplefilter("ignore", HypothesisWarning)
        return make_strategies_namespace(xp, api_version="2023.12")


@pytest.fixture(scope="session")
def data_dir():
    """The LIBSVM data directory (``PALTEST_DATA``); tests needing a file skip without it."""
    path = os.environ.get("PALTEST_DATA")
    if not path or not os.path.isdir(path):
        pytest.skip("PALTEST_DATA is not set to a directory with the LIBSVM files")
    return path


#: The ways an array's value reaches Python (on a GPU, each one synchronizes).
VALUE_READS = ("__bool__", "__float__", "__int__", "__index__", "__complex__", "__array__",
               "__dlpack__")


@pytest.fixture
def forbid_value_reads(monkeypatch):
    """``forbid(allow_to_host=False) -> transfers``: from then on, reading the value of an
    array-api-strict array (a stand-in for a device array) raises ``AssertionError``.

    With ``allow_to_host`` the reads inside :func:`paltest.backend.to_host` are allowed
    and each call is appended to the returned list; otherwise ``to_host`` raises too.
    ``monkeypatch.undo()`` ends the ban (before the test reads its results).
    """
    def forbid(allow_to_host: bool = False) -> list:
        arr = type(backend.resolve_namespace("array_api_strict").asarray(0.0))
        inside, transfers = [False], []
        real_to_host = backend.to_host

        def guarded(name):
            original = getattr(arr, name)

            def read(self, *args, **kwargs):
                if not inside[0]:
                    raise AssertionError(f"{name}: a device value read back")
                return original(self, *args, **kwargs)
            return read

        def to_host(x):
            if not allow_to_host:
                raise AssertionError("to_host: a device-to-host transfer")
            transfers.append(x)
            inside[0] = True
            try:
                return real_to_host(x)
            finally:
                inside[0] = False

        for name in VALUE_READS:
            if hasattr(arr, name):
                monkeypatch.setattr(arr, name, guarded(name))
        monkeypatch.setattr(backend, "to_host", to_host)
        return transfers

    return forbid
