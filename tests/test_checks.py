"""Tests of the shared argument checks (paltest.checks)."""

from __future__ import annotations

import numpy as np
import pytest

from paltest.checks import check_bool, check_in_range, check_int, check_nonneg, check_positive


def test_values_come_back_as_python_numbers():
    assert check_positive("mu", np.float32(0.5)) == 0.5
    assert type(check_positive("mu", 2)) is float
    assert check_nonneg("gtol", 0) == 0.0
    assert check_in_range("beta", 1, 0.0, 1.0) == 1.0
    assert check_int("epochs", np.int64(3)) == 3 and type(check_int("epochs", 3)) is int
    assert check_bool("flag", True) is True


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda: check_positive("mu", 0.0), ValueError, "^mu: must be > 0"),
        (lambda: check_positive("mu", float("inf")), ValueError, "^mu: must be finite"),
        (lambda: check_positive("mu", "1"), TypeError, "^mu: expected a real number"),
        (lambda: check_positive("mu", True), TypeError, "^mu: expected a real number"),
        (lambda: check_nonneg("gtol", -1e-9), ValueError, "^gtol: must be >= 0"),
        (lambda: check_in_range("beta", 1.5, 0.0, 1.0), ValueError, r"^beta: must be in \[0"),
        (lambda: check_in_range("c", 1.0, 0.0, 1.0, hi_open=True), ValueError,
         r"^c: must be in \[0.0, 1.0\)"),
        (lambda: check_int("epochs", 1.5), TypeError, "^epochs: expected an int"),
        (lambda: check_int("epochs", True), TypeError, "^epochs: expected an int"),
        (lambda: check_int("epochs", -1), ValueError, "^epochs: must be >= 0"),
        (lambda: check_bool("flag", 1), TypeError, "^flag: expected a bool"),
    ],
)
def test_errors_name_the_argument(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize("value", [np.True_, np.complex128(1.0), 1 + 0j, np.array(1 + 1j),
                                   np.array([True]), np.array([0.5, 0.6])], ids=repr)
def test_bool_complex_and_array_values_are_not_cast(value):
    """Issue 12 D1 (same class): ``float()`` would turn these into a number silently
    (np.True_ -> 1.0, complex -> its real part with a warning)."""
    for check in (lambda v: check_positive("mu", v), lambda v: check_nonneg("gtol", v),
                  lambda v: check_in_range("beta", v, 0.0, 1.0)):
        with pytest.raises(TypeError, match="^(mu|gtol|beta): expected a real number"):
            check(value)


def test_huge_ints_are_not_finite_and_messages_stay_short():
    """Audit 2, N1: an int beyond the float range is a ValueError naming the argument
    (not OverflowError), and an int too long for repr does not break the message."""
    from paltest.checks import check_int, check_real, shown

    for check in (check_positive, check_nonneg, check_real):
        with pytest.raises(ValueError, match=r"^mu: must be finite, got an int of 401 digits$"):
            check("mu", 10**400)
    with pytest.raises(ValueError, match=r"^n: must be >= 1, got an int of about \d+ digits"):
        check_int("n", -(10**6000), 1)
    assert shown(10**400) == "an int of 401 digits" and shown(7) == "7"
