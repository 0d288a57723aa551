"""Problem options of the wrong type or beyond the float range (audit 2, N1 and N7): each
raises ``TypeError``/``ValueError`` naming the option, before any data is read or
downloaded; a string is never parsed as a number or taken as a truth value."""

from __future__ import annotations

import os

import pytest

import problems
from problems import datasets

HUGE = 10**400


@pytest.fixture
def no_fetch(monkeypatch):
    """Any attempt to find or download a data file fails the test."""
    def fetch(*args, **kwargs):
        raise AssertionError("a data file was looked up for a bad option")

    monkeypatch.setattr(datasets, "fetch", fetch)


@pytest.mark.parametrize(("option", "value", "error"), [
    ("download", "no", TypeError),  # a non-empty string is true: it used to download
    ("download", 0, TypeError),
    ("sigma", "0.5", TypeError),  # was converted by float()
    ("sigma", "abc", TypeError),  # was float()'s "could not convert string to float"
    ("sigma", [0.5], TypeError),
    ("sigma", HUGE, ValueError),  # OverflowError
    ("base_url", 5, TypeError),  # AttributeError: 'int' object has no attribute 'endswith'
    ("data_dir", 5, TypeError),
    ("memory_budget", HUGE, ValueError),
    ("memory_budget", "2e9", TypeError),
    ("blas_threads", HUGE, ValueError),  # accepted, then a ctypes error mid-run
    ("blas_threads", 2**31, ValueError),
])
@pytest.mark.parametrize("name", ["mushrooms", "kernel-logreg"])
def test_kernel_problem_options(name, option, value, error, no_fetch):
    opts = {"path": "data.txt", "sigma": 1.0} if name == "kernel-logreg" else {}
    with pytest.raises(error, match=f"^{option}: "):
        problems.get(name, **{**opts, option: value})


@pytest.mark.parametrize("option", ["path", "test_path"])
def test_kernel_problem_paths(option, no_fetch):
    with pytest.raises(TypeError, match=f"^{option}: expected a path"):
        problems.get("kernel-logreg", **{"path": "x.txt", "sigma": 1.0, option: 5})


def test_blas_threads_at_its_limit_is_accepted(data_dir):
    p = problems.get("kernel-logreg", path=os.path.join(data_dir, "mushrooms.bz2"),
                     sigma=0.5, n_rows=50, blas_threads=2**31 - 1)
    assert p.blas_threads == 2**31 - 1


@pytest.mark.parametrize(("name", "options", "error", "key"), [
    ("quadratic", {"eigenvalues": [1.0, HUGE]}, ValueError, "eigenvalues"),
    ("quadratic", {"eigenvalues": "1 2"}, TypeError, "eigenvalues"),
    ("quadratic", {"eigenvalues": ["1", "2"]}, TypeError, "eigenvalues"),
    ("quadratic", {"matrix": [[HUGE]]}, ValueError, "matrix"),
    ("quadratic", {"matrix": "abc"}, TypeError, "matrix"),
    ("quadratic", {"minimizer": [HUGE] * 10}, ValueError, "minimizer"),
    ("quadratic", {"L_star": HUGE}, ValueError, "L_star"),
    ("quadratic", {"kappa": HUGE}, ValueError, "kappa"),
    ("batch-quadratic", {"noise": HUGE}, ValueError, "noise"),
    ("batch-quadratic", {"kappa": "10"}, TypeError, "kappa"),
])
def test_quadratic_options(name, options, error, key):
    with pytest.raises(error, match=f"^{key}: "):
        problems.get(name, **options)


@pytest.mark.parametrize(("name", "options", "key"), [
    ("quadratic", {"n": 10**9}, "n"),  # used to be NumPy's MemoryError, naming no option
    ("quadratic", {"n": HUGE}, "n"),
    ("batch-quadratic", {"n": 10**6}, "n"),
    ("batch-quadratic", {"n": 1000, "n_batches": 10**6}, "n_batches"),
    ("batch-quadratic", {"n": 1000, "n_batches": 10**9, "interpolation": False},
     "n_batches"),
    ("least-squares", {"n_rows": 10**12}, "n_rows"),
    ("mlp-digits", {"hidden": HUGE}, "hidden"),  # used to build a problem of 10**402 params
    ("mlp-digits", {"hidden": (64, 10**6, 10**6)}, "hidden"),
])
def test_sizes_beyond_the_machines_memory(name, options, key):
    """A size whose largest array alone exceeds the machine's physical memory is refused
    before anything is allocated, naming the option and the bytes it asks for."""
    if os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") > 2**60:
        pytest.skip("this machine has more than an exbibyte of memory")
    with pytest.raises(ValueError, match=f"^{key}: .* bytes, more than this machine's memory"):
        problems.get(name, **options)


def test_sizes_within_the_machines_memory_are_built():
    assert problems.get("quadratic", n=300).n_params == 300
    assert problems.get("mlp-digits", hidden=(256, 256)).n_params == 85002
