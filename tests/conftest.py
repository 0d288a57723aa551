"""Shared test configuration: the ``--xp`` backend option and the Hypothesis profiles.

``xp`` is a fixture parametrized over the namespaces chosen with ``--xp`` (a
comma-separated list; default ``numpy,array_api_strict``). ``--xp cupy`` runs the
backend-aware tests on the GPU; without CuPy or without a GPU those tests are skipped
with the reason. Tests that need the shared LIBSVM files read them from the data
directory (``PALTEST_DATA``) and are skipped, with the reason, when a file is absent.
"""

from __future__ import annotations

import importlib
import os

import pytest
from hypothesis import HealthCheck, settings

from paltest import backend

DEFAULT_XP = "numpy,array_api_strict"
KNOWN_XP = ("numpy", "array_api_strict", "cupy", "torch")

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


def _unavailable(name: str) -> str | None:
    """Why backend ``name`` can't run here, or None."""
    try:
        mod = importlib.import_module(name)
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
def xp_module(xp, xp_name):
    """The raw module of the namespace under test (for hypothesis.extra.array_api)."""
    return importlib.import_module(xp_name)


@pytest.fixture(scope="session")
def data_dir():
    """The LIBSVM data directory (``PALTEST_DATA``); tests needing a file skip without it."""
    path = os.environ.get("PALTEST_DATA")
    if not path or not os.path.isdir(path):
        pytest.skip("PALTEST_DATA is not set to a directory with the LIBSVM files")
    return path
