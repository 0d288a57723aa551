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
