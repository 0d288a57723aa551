"""paltest.testing: check_optimizer passes on every shipped optimizer and fails, naming
the check, on deliberately broken ones; the strategies draw what they promise."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paltest import backend
from paltest.optimizers import registry
from paltest.optimizers.adam import Adam
from paltest.optimizers.base import StepInfo
from paltest.optimizers.pal import PAL
from paltest.optimizers.rmsprop import RMSProp
from paltest.optimizers.sgd import SGD
from paltest.testing import (
    CHECKS,
    arrays,
    batch_quadratics,
    check_optimizer,
    line_functions,
    spd_quadratics,
)

#: The shipped optimizers that are line searches promising descent (``is_line_search``
#: and no ``no_descent``: the "descent" check applies at check_optimizer's defaults). Not
#: "sls-polyak": its Armijo search is on the gradient step, then Polyak momentum is
#: added, so a step may raise the loss (the check finds it: from the minimum, 0.0 ->
#: 3.1e-3); the class says so in ``no_descent``.
NOT_DESCENT = {"sls-polyak"}
LINE_SEARCHES = {n for n in registry.names() if registry.get_class(n).is_line_search
                 and not getattr(registry.get_class(n), "no_descent", None)}


def test_line_searches_are_the_classes_that_say_so():
    assert LINE_SEARCHES == {"pal", "sls", "sls-goldstein", "exact", "pal-momentum",
                             "pal-adam", "pal-rmsprop"}
    assert registry.get_class("sls-polyak").is_line_search
    assert {n for n in registry.names()
            if getattr(registry.get_class(n), "no_descent", None)} == NOT_DESCENT
    for n in ("sgd", "adam", "rmsprop", "sgdhd", "alig", "cocob"):
        assert registry.get_class(n).is_line_search is False


#: PAL along each direction it supports (instances, not only the registry's defaults).
DIRECTIONS = {
    "sgd": lambda: SGD(),
    "sgd-nesterov-wd": lambda: SGD(momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda: Adam(),
    "rmsprop-centered-momentum": lambda: RMSProp(momentum=0.5, centered=True),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_pal_along_every_direction_passes(direction, dtype, xp):
    report = check_optimizer(lambda: PAL(mu=0.5, direction=DIRECTIONS[direction]()), xp=xp,
                             dtype=dtype, max_examples=6)  # is_line_search: descent runs
    assert set(report.values()) == {"passed"}


@pytest.mark.parametrize("name", registry.names())
def test_every_shipped_optimizer_passes(name, xp):
    report = check_optimizer(lambda: registry.make(name, n_batches_per_epoch=4), xp=xp,
                             max_examples=8)  # the defaults, as the README says
    assert list(report) == list(CHECKS)
    assert all(v == "passed" for v in report.values()) or (
        name not in LINE_SEARCHES and report["descent"].startswith("skipped"))


@pytest.mark.parametrize("name", registry.names())
def test_every_shipped_optimizer_passes_in_float32(name, xp):
    report = check_optimizer(lambda: registry.make(name, n_batches_per_epoch=4), xp=xp,
                             dtype="float32", max_examples=4)
    assert report["descent"] == ("passed" if name in LINE_SEARCHES else
                                 "skipped: SLSPolyak may not descend: its Armijo search is "
                                 "on the gradient step; the momentum term added after it "
                                 "may raise the loss" if name in NOT_DESCENT else
                                 "skipped: not a line search (is_line_search / line_search)")


def test_without_hypothesis_the_error_names_the_extra(monkeypatch):
    for mod in ("hypothesis", "hypothesis.strategies"):
        monkeypatch.setitem(sys.modules, mod, None)  # import hypothesis now fails
    with pytest.raises(ImportError, match=r'pip install "paltest\[test\]"'):
        check_optimizer(lambda: _GD("none"))
    with pytest.raises(ImportError, match="pip install hypothesis"):
        spd_quadratics()


class _State(NamedTuple):
    pass


class _GD:
    """Plain gradient descent, broken in one of three ways."""

    def __init__(self, broken: str) -> None:
        self.broken = broken

    def init(self, theta: Any) -> _State:
        return _State()

    def step(self, theta, state, value_and_grad, value):
        xp = backend.namespace(theta)
        loss, g = value_and_grad(theta)
        ok = xp.isfinite(loss) & xp.all(xp.isfinite(g))
        if self.broken == "mutates":  # NumPy only: writes into the caller's theta
            theta -= 0.1 * g
            new = theta
        else:
            new = theta - 0.1 * g
        if self.broken == "dtype":
            new = xp.astype(new, xp.float64)
        elif self.broken != "nan":  # the non-finite rule, unless broken
            new = xp.where(ok, new, theta)
        return new, state, StepInfo(loss, 0.1, ~ok, 1, 1)


@pytest.mark.parametrize(("broken", "check", "xp_name", "dtype"), [
    ("mutates", "no_mutation", "numpy", "float64"),
    ("nan", "nonfinite", "numpy", "float64"),
    ("nan", "nonfinite", "array_api_strict", "float64"),
    ("dtype", "preserves", "numpy", "float32"),
    ("dtype", "preserves", "array_api_strict", "float32"),
])
def test_broken_optimizers_fail_naming_the_check(broken, check, xp_name, dtype, capsys):
    with pytest.raises(AssertionError, match=f"check {check!r} failed") as err:
        with np.errstate(all="ignore"):
            check_optimizer(lambda: _GD(broken), xp=xp_name, dtype=dtype,
                            checks=[check], max_examples=20)
    shown = "\n".join(getattr(err.value, "__notes__", [])) + capsys.readouterr().out
    assert f"check_{check}(" in shown  # Hypothesis shows the example it found...
    assert "quadratic(n=1" in shown  # ...shrunk to the smallest dimension


def test_unbroken_reference_passes():
    """The same optimizer, unbroken, passes every check (so the failures above are
    the breakage, not the harness)."""
    report = check_optimizer(lambda: _GD("none"), max_examples=10, skip=["descent"])
    assert set(report.values()) == {"passed"}


def test_the_mutator_also_fails_the_full_run():
    with pytest.raises(AssertionError, match="check 'no_mutation' failed"):
        check_optimizer(lambda: _GD("mutates"), max_examples=10, skip=["nonfinite"])


class _Overcounting(_GD):
    def step(self, theta, state, value_and_grad, value):
        theta, state, info = super().step(theta, state, value_and_grad, value)
        return theta, state, info._replace(n_fun=2)


class _Ascent(_GD):
    is_line_search = True

    def step(self, theta, state, value_and_grad, value):
        loss, g = value_and_grad(theta)
        return theta + g, state, StepInfo(loss, 1.0, False, 1, 1)


class _Drifting(_GD):
    """Each call steps a little further: not deterministic."""

    calls = 0

    def step(self, theta, state, value_and_grad, value):
        _Drifting.calls += 1
        loss, g = value_and_grad(theta)
        return theta - (0.1 + 1e-3 * _Drifting.calls) * g, state, StepInfo(
            loss, 0.1, False, 1, 1)


def test_determinism_fails_on_a_drifting_step():
    with pytest.raises(AssertionError, match="check 'deterministic' failed: theta differs"):
        check_optimizer(lambda: _Drifting("none"), checks=["deterministic"], max_examples=5)


def test_counts_and_descent_fail_on_liars():
    with pytest.raises(AssertionError, match="check 'counts' failed.*n_fun=2"):
        check_optimizer(lambda: _Overcounting("none"), checks=["counts"], max_examples=5)
    with pytest.raises(AssertionError, match="check 'descent' failed"):
        check_optimizer(lambda: _Ascent("none"), checks=["descent"], max_examples=20)


def test_selection_and_argument_errors():
    report = check_optimizer(lambda: _GD("none"), checks=["counts", "preserves"],
                             skip=["preserves"], max_examples=3)
    assert report == {"counts": "passed"}
    with pytest.raises(ValueError, match="checks: unknown check"):
        check_optimizer(lambda: _GD("none"), checks=["speed"])
    with pytest.raises(ValueError, match="skip: unknown check"):
        check_optimizer(lambda: _GD("none"), skip=["speed"])
    with pytest.raises(TypeError, match="make_optimizer"):
        check_optimizer(_GD("none"))
    with pytest.raises(ValueError, match="dtype"):
        check_optimizer(lambda: _GD("none"), dtype="float16")


@settings(max_examples=30)
@given(spd_quadratics(n=4, condition=50.0))
def test_spd_quadratics_have_the_condition_and_minimiser(q):
    eig = np.linalg.eigvalsh(q.matrix)
    assert eig[0] > 0
    assert abs(eig[-1] / eig[0] - 50.0) <= 1e3 * np.finfo(float).eps * 50.0
    loss, grad = q.value_and_grad(q.minimiser)
    assert float(loss) == 0.0 and not np.any(backend.to_host(grad))
    theta = q.minimiser + 1.0
    d = np.ones(4)
    assert float(q.value(theta)) == pytest.approx(0.5 * d @ q.matrix @ d, rel=1e-12)


def test_quadratics_on_the_namespace(xp):
    @settings(max_examples=10)
    @given(spd_quadratics(xp, "float32"), arrays(xp, "float32", 3))
    def check(q, a):
        assert backend.namespace(q.minimiser) is xp and q.minimiser.dtype == xp.float32
        assert backend.namespace(a) is xp and a.dtype == xp.float32 and a.shape == (3,)
        assert bool(xp.all(xp.abs(a) <= 10.0))
    check()


@settings(max_examples=30)
@given(line_functions(noise=0.1))
def test_line_functions_have_the_curvature_slope_and_noise(line):
    c, s, l0 = line.curvature, line.slope, line.l0
    for t in (-1.0, 0.5, 2.0):
        exact = l0 + s * t + 0.5 * c * t * t
        assert abs(line.value(t) - exact) <= 0.1 * (1 + 1e-12) + 1e-12 * abs(exact)


def test_noiseless_line_is_the_parabola():
    @settings(max_examples=20)
    @given(line_functions(curvature=3.0, slope=-2.0, l0=1.0))
    def check(line):
        assert line.value(0.0) == 1.0
        assert line.value(2.0) == pytest.approx(1.0 - 4.0 + 6.0, abs=1e-12)
    check()


def test_batch_quadratics_with_and_without_a_common_minimiser(xp):
    @settings(max_examples=20)
    @given(batch_quadratics(xp, n=3, n_batches=st.integers(2, 4), condition=10.0))
    def check(p):
        eps = np.finfo(np.float64).eps
        star = p.minimiser
        loss, grad = p.value_and_grad(star)
        scale = max(float(np.linalg.eigvalsh(b.matrix)[-1]) * float(
            np.sum((backend.to_host(b.minimiser) - backend.to_host(star)) ** 2)) + 1.0
            for b in p.batches)
        assert float(np.max(np.abs(backend.to_host(grad)))) <= 1e3 * eps * scale
        batch_grads = [backend.to_host(b.value_and_grad(star)[1]) for b in p.batches]
        if p.interpolation:
            assert p.min_value == 0.0 and float(loss) == 0.0
            assert all(not np.any(g) for g in batch_grads)
        else:
            assert p.min_value > 0.0
            assert float(loss) == pytest.approx(p.min_value, rel=1e-9)
            assert any(np.any(np.abs(g) > 1e3 * eps * scale) for g in batch_grads)
        assert backend.namespace(star) is xp
    check()


# -- audit 2, N17 -------------------------------------------------------------------------


def test_sls_polyak_at_the_defaults_skips_descent_with_its_reason():
    """``check_optimizer(SLSPolyak)`` failed "descent" at its defaults although the
    README says a line search (``is_line_search``) gets that check: the class now says
    why it may not descend (``no_descent``); ``line_search=True`` still forces it."""
    from paltest.optimizers.sls_variants import SLSPolyak

    report = check_optimizer(SLSPolyak, max_examples=5)
    assert report["descent"].startswith("skipped: SLSPolyak may not descend: ")
    assert [k for k, v in report.items() if v != "passed"] == ["descent"]
    with pytest.raises(AssertionError, match="'descent' failed"):
        check_optimizer(SLSPolyak, checks=["descent"], line_search=True, max_examples=50)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"make_optimizer": lambda: 5}, TypeError, "^make_optimizer: must return an optimizer"),
    ({"make_optimizer": lambda: SGD}, TypeError, "^make_optimizer: must return an optimizer"),
    ({"checks": 5}, TypeError, "^checks: must be a sequence of check names, got 5"),
    ({"skip": 5}, TypeError, "^skip: must be a sequence of check names"),
    ({"line_search": "yes"}, TypeError, "^line_search: expected True, False or None"),
    ({"line_search": 1}, TypeError, "^line_search: expected True, False or None"),
])
def test_bad_arguments_are_named(kwargs, error, words):
    """A factory returning a non-optimizer (AttributeError), ``checks=5`` ("not
    iterable"), ``line_search="yes"`` (accepted) are errors naming the argument."""
    args = {"make_optimizer": lambda: SGD(lr=0.1), **kwargs}
    with pytest.raises(error, match=words):
        check_optimizer(args.pop("make_optimizer"), max_examples=1, **args)
