"""The optimizer registry: names, construction, argument errors, hyperparameter records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paltest.optimizers import registry

ALL = ["pal", "sls", "sls-goldstein", "sls-polyak", "exact", "sgd", "adam", "rmsprop",
       "sgdhd", "alig", "cocob", "pal-momentum", "pal-adam", "pal-rmsprop"]


def test_names_cover_every_optimizer():
    assert sorted(registry.names()) == sorted(ALL)
    for name in ALL:
        assert registry.describe(name)


@pytest.mark.parametrize("name", ALL)
def test_make_builds_a_working_optimizer(name):
    opt = registry.make(name, n_batches_per_epoch=4)
    theta = np.array([1.0, -2.0])
    state = opt.init(theta)
    f = lambda th: 0.5 * float(th @ th)  # noqa: E731
    theta2, _, info = opt.step(theta, state, lambda th: (f(th), th.copy()), f)
    assert theta2.shape == theta.shape
    assert float(info.loss) == 2.5
    hp = registry.hyperparameters(opt)
    json.dumps(hp)  # JSON-able
    assert registry.name_of(opt) == name
    canon = registry.canonical_hyperparameters(name)
    assert registry.NBATCHES not in canon
    for key, value in canon.items():
        if key != "on_nonfinite":
            assert hp[key] == value


def test_n_batches_per_epoch_only_reaches_optimizers_that_take_it():
    assert registry.make("sls", n_batches_per_epoch=7).n_batches_per_epoch == 7
    assert registry.make("sls-polyak", n_batches_per_epoch=3).n_batches_per_epoch == 3
    registry.make("sgd", n_batches_per_epoch=7)  # silently not passed on


def test_unknown_name_and_hyperparameter_are_named():
    with pytest.raises(ValueError, match="'nope'"):
        registry.make("nope")
    with pytest.raises(TypeError, match=r"'pal'.*\['learning_rate'\]"):
        registry.make("pal", learning_rate=0.1)
    with pytest.raises(ValueError, match=r"'sgd'.*lr"):
        registry.make("sgd", lr=-1.0)
    with pytest.raises(TypeError, match="n_batches_per_epoch"):
        registry.canonical_hyperparameters("sls", n_batches_per_epoch=3)
    with pytest.raises(ValueError, match="optimizer"):
        registry.get_class(3)


def test_canonical_hyperparameters_fill_defaults_and_normalize():
    canon = registry.canonical_hyperparameters("pal", beta="fr", mu=1)
    assert canon["beta"] == "fletcher-reeves"
    assert canon["mu"] == 1.0 and isinstance(canon["mu"], float)
    assert canon["alpha"] == pytest.approx(1 / 0.6)
    assert canon["on_nonfinite"] == "flag"
    assert canon == registry.canonical_hyperparameters("pal", beta="fletcher-reeves")
    sls = registry.canonical_hyperparameters("sls")
    assert sls["reset_option"] == 1 and "n_batches_per_epoch" not in sls


class _Plain:
    """An optimizer without a ``hyperparameters`` property."""

    def __init__(self, lr=0.5, note="x"):
        self.lr = lr

    def init(self, theta):
        return ()

    def step(self, theta, state, value_and_grad, value):  # pragma: no cover - unused
        return theta, state, None


def test_hyperparameters_of_a_plain_object_come_from_its_signature():
    hp = registry.hyperparameters(_Plain(lr=np.float64(0.25)), given={"note": "y"})
    assert hp == {"lr": 0.25, "note": "y"}
    assert registry.name_of(_Plain()) is None
    with pytest.raises(TypeError, match="'lr'"):
        registry.hyperparameters(_Plain(lr=object()))


BAD_ON_NONFINITE = [np.array(["flag", "raise"]), np.array("flag"), ["flag"], ("raise",),
                    None, 1, b"flag", "Flag"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", BAD_ON_NONFINITE, ids=repr)
def test_every_optimizer_names_a_bad_on_nonfinite(name, bad):
    """Issue 12 D1: arrays, lists and other non-strings are rejected naming the argument,
    never compared elementwise ("The truth value of an array ... is ambiguous")."""
    with pytest.raises(ValueError, match="^on_nonfinite: must be one of"):
        registry.get_class(name)(on_nonfinite=bad)


@pytest.mark.parametrize("name", ALL)
def test_every_optimizer_works_from_its_defaults(name):
    """Issue 12: ``make(name)`` and ``Class()`` work without n_batches_per_epoch (SLS:
    the reference package's 500 under reset option 1)."""
    f = lambda th: 0.5 * float(th @ th)  # noqa: E731
    for opt in (registry.make(name), registry.get_class(name)()):
        theta = np.array([1.0, -2.0])
        theta2, _, info = opt.step(theta, opt.init(theta), lambda th: (f(th), th.copy()), f)
        assert float(info.loss) == 2.5 and f(theta2) < 2.5
        json.dumps(registry.hyperparameters(opt))


def _torch_objective(torch, recipe):
    """0.5 th' A th - c' th with a gradient computed the two documented ways."""
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]], dtype=torch.float64)
    c = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)

    def f(th):
        return 0.5 * th @ A @ th - c @ th

    def value_and_grad(th):
        if recipe == "autograd":  # a detached leaf copy; the loss keeps its grad_fn
            t = th.detach().requires_grad_()
            loss = f(t)
            (g,) = torch.autograd.grad(loss, t)
            return loss, g
        g, loss = torch.func.grad_and_value(f)(th)
        return loss, g

    return value_and_grad, f


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("recipe", ["autograd", "func"])
def test_torch_steps_build_no_autograd_graph(name, recipe):
    """Issue 12: a θ with requires_grad=True came back with a grad_fn and the graph grew
    with every step. Now init and step take θ as data: no result has a grad_fn, and the
    values are bitwise those of the same run on a plain tensor."""
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    value_and_grad, f = _torch_objective(torch, recipe)
    runs = []
    for requires_grad in (True, False):
        opt = registry.make(name)
        theta = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64,
                             requires_grad=requires_grad)
        state = opt.init(theta)
        records = []
        for _ in range(4):
            theta, state, info = opt.step(theta, state, value_and_grad, f)
            tensors = [theta, *(v for v in (*state, *info) if isinstance(v, torch.Tensor))]
            assert all(t.grad_fn is None and not t.requires_grad for t in tensors)
            records.append([t.clone() for t in tensors])
        runs.append(records)
    for with_grad, plain in zip(*runs, strict=True):
        for a, b in zip(with_grad, plain, strict=True):  # bitwise (NaN angle of exact)
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def _real_hyperparameters(name):
    """The constructor arguments of ``name`` that are real numbers (default float)."""
    import inspect

    params = inspect.signature(registry.get_class(name)).parameters.values()
    return [p.name for p in params if type(p.default) is float]


@pytest.mark.parametrize("name", ALL)
def test_an_int_beyond_the_float_range_is_named(name):
    """Audit 2, N1: ``SGD(lr=10**400)`` raised OverflowError from ``float()``; every real
    hyperparameter now says it must be finite, naming itself."""
    keys = _real_hyperparameters(name)
    assert keys
    for key in keys:
        with pytest.raises(ValueError, match=f": {key}: must be finite, got an int of 401 "
                                             "digits"):
            registry.make(name, **{key: 10**400})
