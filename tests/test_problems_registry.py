"""Problems of your own: ``problems.registry.register`` and what accepts the name after."""

from __future__ import annotations

import pytest

import problems
from paltest.testbed import protocols
from problems import registry
from problems.quadratic import make_least_squares


def small_lsq(*, n_rows=30, xp="numpy", device=None, dtype="float64"):
    """A 30 x 4 consistent least-squares system."""
    return make_least_squares(n_rows=n_rows, n_cols=4, xp=xp, device=device, dtype=dtype)


@pytest.fixture
def user_problem():
    registry.register("my-lsq", small_lsq)
    yield "my-lsq"
    registry.unregister("my-lsq")


def test_a_registered_problem_is_built_listed_described_and_validated(user_problem):
    assert user_problem in problems.names() and user_problem in registry.registered()
    assert registry.describe(user_problem) == "A 30 x 4 consistent least-squares system."
    p = problems.get(user_problem, xp="array_api_strict", dtype="float32", n_rows=40)
    assert p.n_train == 40 and p.dtype_name == "float32"
    assert registry.validate(user_problem, n_rows=12) == 12
    with pytest.raises(TypeError, match="n_cols: unknown option.*'my-lsq'"):
        problems.get(user_problem, n_cols=3)
    assert protocols.floors([user_problem, "mushrooms"]) == {user_problem: 0.0,
                                                             "mushrooms": None}


def test_registering_again_is_idempotent_and_replacing_needs_consent(user_problem):
    registry.register(user_problem, small_lsq)  # a plugin imported twice: nothing happens
    with pytest.raises(ValueError, match="already registered.*replace=True"):
        registry.register(user_problem, lambda **o: small_lsq(n_rows=5, **o))
    registry.register(user_problem, lambda **o: small_lsq(n_rows=5, **o), "five rows",
                      replace=True)
    assert problems.get(user_problem).n_train == 5
    assert registry.describe(user_problem) == "five rows"


@pytest.mark.parametrize("name, factory, error, words", [
    ("mf-rank4", small_lsq, ValueError, "built-in"),
    ("my problem", small_lsq, ValueError, "without spaces"),
    ("", small_lsq, ValueError, "name"),
    (3, small_lsq, ValueError, "name"),
    ("p", "not callable", TypeError, "factory: expected a callable"),
    ("p", lambda *, n=1: None, TypeError, r"factory: .*lacks \['xp', 'device', 'dtype'\]"),
])
def test_bad_registrations_name_the_argument(name, factory, error, words):
    with pytest.raises(error, match=words):
        registry.register(name, factory)
    assert "p" not in registry.registered()


def test_a_factory_that_returns_no_problem_is_named():
    registry.register("not-a-problem", lambda **o: object())
    try:
        with pytest.raises(TypeError, match="'not-a-problem'.*lacks.*n_params"):
            problems.get("not-a-problem")
    finally:
        registry.unregister("not-a-problem")
    with pytest.raises(KeyError, match="not-a-problem"):
        registry.unregister("not-a-problem")


def test_the_line_figures_accept_a_registered_problem(user_problem):
    from paltest.testbed import line_figures

    p = line_figures.line_plan(1, problems=[user_problem], quick=True, seeds=[0])
    assert p.problems == (user_problem,)
    with pytest.raises(ValueError, match="unknown"):
        line_figures.line_plan(1, problems=["no-such-problem"], quick=True)


def test_known_names(user_problem):
    """Built-in, registered and family names (``cutest:NAME``, checked only when built:
    no sif2jax needed here) are known; others, and non-strings, are not."""
    assert registry.known("mf-rank4") and registry.known(user_problem)
    assert registry.known("cutest:ROSENBR") and problems.known("cutest:ANYTHING")
    assert not registry.known("nope") and not registry.known(None)
    assert not registry.known("mf-rank4 ")
