"""Tests for problems.base (batches, the protocol) and problems.registry."""

from __future__ import annotations

import os

import numpy as np
import pytest

from paltest import backend
from problems import base, registry


class Toy(base.Problem):
    """A minimal problem: L(theta) = mean over the batch of 1/2 ||theta - c_i||^2."""

    name = "toy"

    def __init__(self, n_train, xp="numpy", dtype="float64"):
        self.xp = backend.resolve_namespace(xp)
        self.dtype = backend.float_dtype(self.xp, dtype)
        self.device = None
        self.n_train, self.n_params = n_train, 2
        self._c = backend.from_host(
            np.arange(2.0 * n_train).reshape(n_train, 2), self.xp, dtype=self.dtype
        )

    def init_params(self, seed):
        return backend.from_host(np.zeros(2), self.xp, dtype=self.dtype)

    def value_and_grad(self, theta, batch):
        e = theta - self.xp.take(self._c, batch, axis=0)
        return 0.5 * self.xp.mean(self.xp.sum(e * e, axis=1)), self.xp.mean(e, axis=0)

    def value(self, theta, batch):
        return self.value_and_grad(theta, batch)[0]

    def train_loss(self, theta):
        return self.value(theta, self.xp.arange(self.n_train))


def _epoch(p, epoch, seed, size):
    return [backend.to_host(b).tolist() for b in p.batches(epoch, seed, size)]


def test_epoch_permutation_is_a_pure_function():
    a = base.epoch_permutation(50, 3, 7)
    np.testing.assert_array_equal(a, base.epoch_permutation(50, 3, 7))
    assert sorted(a.tolist()) == list(range(50))
    assert not np.array_equal(a, base.epoch_permutation(50, 4, 7))
    assert not np.array_equal(a, base.epoch_permutation(50, 3, 8))


def test_batches_drop_last_and_reshuffle(xp):
    p = Toy(10, xp=xp)
    assert p.n_batches(3) == 3
    ep0 = _epoch(p, 0, 1, 3)
    assert [len(b) for b in ep0] == [3, 3, 3]
    flat = [i for b in ep0 for i in b]
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))
    assert flat == base.epoch_permutation(10, 0, 1)[:9].tolist()
    assert _epoch(p, 0, 1, 3) == ep0  # deterministic
    assert _epoch(p, 1, 1, 3) != ep0  # reshuffled every epoch
    assert _epoch(p, 0, 2, 3) != ep0  # and per seed
    assert _epoch(p, 0, 1, 10) == [base.epoch_permutation(10, 0, 1).tolist()]
    b = next(iter(p.batches(0, 1, 3)))
    assert backend.namespace(b) is p.xp


def test_batches_identical_on_numpy_and_array_api_strict():
    pytest.importorskip("array_api_strict")
    a, s = Toy(37, xp="numpy"), Toy(37, xp="array_api_strict")
    for epoch in range(3):
        assert _epoch(a, epoch, 5, 4) == _epoch(s, epoch, 5, 4)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, 11, None, float("inf"), "3"])
def test_batch_size_validation(bad):
    with pytest.raises((TypeError, ValueError), match="^batch_size"):
        list(Toy(10).batches(0, 0, bad))


def test_bind_and_repr(xp):
    p = Toy(4, xp=xp)
    b = next(iter(p.batches(0, 0, 2)))
    vg, v = p.bind(b)
    theta = p.init_params(0)
    assert backend.to_float(vg(theta)[0]) == backend.to_float(v(theta))
    assert "Toy(name='toy', n_params=2, n_train=4, dtype=float64" in repr(p)
    assert p.test_metrics(theta) == {} and p.floor is None


# -- registry -----------------------------------------------------------------------------

MINE = {
    "mf-true": 60, "mf-rank1": 16, "mf-rank4": 64, "mf-rank10": 160,
    "quadratic": 10, "batch-quadratic": 10, "least-squares": 10,
}


def test_registry_names_and_describe():
    names = registry.names()
    assert set(MINE) <= set(names)
    assert {"mushrooms", "ijcnn"} <= set(names)
    assert len(names) == len(set(names))
    assert "rank-4" in registry.describe("mf-rank4")


@pytest.mark.parametrize("name", sorted(MINE))
def test_registry_builds_problems(name, xp):
    p = registry.get(name, xp=xp, dtype="float32")
    assert isinstance(p, base.Problem)
    assert p.n_params == MINE[name] and p.dtype == xp.float32
    assert p.name == name


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown name"):
        registry.get("nope")
    with pytest.raises(ValueError, match="unknown name"):
        registry.describe("nope")
    with pytest.raises(ValueError, match="fixes"):
        registry.get("mf-rank1", rank=4)
    with pytest.raises(TypeError):
        registry.get("least-squares", no_such_option=1)


def test_unknown_options_are_named_with_the_accepted_ones():
    with pytest.raises(TypeError, match=r"^foo, zap: unknown option\(s\) of problem "
                                        r"'mf-rank4'; accepted: \['device', 'dtype', 'xp'\]"):
        registry.get("mf-rank4", foo=1, zap=2)
    with pytest.raises(TypeError, match="^foo: unknown option"):
        registry.validate("quadratic", foo=1)


@pytest.mark.parametrize("name", sorted(MINE))
def test_validate_returns_the_training_set_size(name):
    p = registry.get(name)
    assert registry.validate(name) == p.n_train
    with pytest.raises(TypeError, match="^dtype: must be one of"):
        registry.validate(name, dtype="int8")
    with pytest.raises(ValueError, match="^xp: unknown array namespace"):
        registry.validate(name, xp="nonexistent")


@pytest.mark.parametrize("name, expected", [
    ("mf-rank4", 100), ("mf-true", 100), ("quadratic", 1), ("batch-quadratic", 10),
    ("least-squares", 10)])
def test_default_batch_size_fits_the_training_set(name, expected):
    p = registry.get(name)
    assert p.default_batch_size == expected <= p.n_train
    assert len(list(p.batches(0, 0, p.default_batch_size))) >= 1
    assert Toy(7).default_batch_size == 7 and Toy(300).default_batch_size == 100


# -- issue 12 D7: seeds, epochs and names are checked where they enter --------------------

BAD_INTS = [(None, TypeError), (1.5, TypeError), (-1, ValueError), ("0", TypeError),
            (True, TypeError), (np.float64(2.0), TypeError), ([0], TypeError)]


@pytest.mark.parametrize(("bad", "err"), BAD_INTS, ids=repr)
def test_epoch_permutation_names_a_bad_seed_or_epoch(bad, err):
    with pytest.raises(err, match="^seed:"):
        base.epoch_permutation(10, 0, bad)
    with pytest.raises(err, match="^epoch:"):
        base.epoch_permutation(10, bad, 0)


@pytest.mark.parametrize(("bad", "err"), BAD_INTS, ids=repr)
def test_batches_names_a_bad_seed_or_epoch_when_called(bad, err):
    """``batches(0, 1.5, 400)`` ran as seed 1; seed or epoch -1 surfaced NumPy's message.
    The check happens at the call, not at the first batch."""
    p = Toy(10)
    with pytest.raises(err, match="^seed:"):
        p.batches(0, bad, 2)
    with pytest.raises(err, match="^epoch:"):
        p.batches(bad, 0, 2)


def test_numpy_int_seeds_are_the_same_seeds():
    """The normal path draws exactly what it drew before: NumPy ints are ints."""
    p = Toy(10)
    assert _epoch(p, np.int64(3), np.int32(7), 2) == _epoch(p, 3, 7, 2)
    assert base.epoch_permutation(10, 3, 7).tolist() == \
        np.random.default_rng([7, 3]).permutation(10).tolist()


@pytest.mark.parametrize("name", sorted(MINE))
@pytest.mark.parametrize(("bad", "err"), BAD_INTS, ids=repr)
def test_init_params_rejects_a_bad_seed(name, bad, err):
    """``init_params(None)`` gave a different start on every call (silently
    non-deterministic); -1 and 1.5 surfaced NumPy's messages."""
    p = registry.get(name)
    with pytest.raises(err, match="^seed:"):
        p.init_params(bad)
    np.testing.assert_array_equal(backend.to_host(p.init_params(np.int64(3))),
                                  backend.to_host(p.init_params(3)))


@pytest.mark.parametrize("bad", [["mf-rank10"], np.array(["mf-rank10", "x"]), None, 3])
def test_registry_names_a_non_string_problem(bad):
    """``problems.get(["mf-rank10"])`` was "unhashable type: 'list'"."""
    with pytest.raises(TypeError, match="^problem: expected a problem name"):
        registry.get(bad)
    with pytest.raises(TypeError, match="^problem: expected a problem name"):
        registry.describe(bad)


@pytest.mark.parametrize(("option", "bad", "match"), [
    ("xp", ["numpy"], "^xp: unknown array namespace"),
    ("dtype", np.array(["float32", "float64"]), "^dtype: must be"),
])
def test_registry_names_array_and_list_options(option, bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        registry.get("mf-rank10", **{option: bad})


def test_direct_line_equals_value_at_each_step(xp):
    """The base class's line is one direct evaluation per step, in order, bitwise
    (mf-rank1's own line is cheap, problems/lines.py; this is the direct one)."""
    from problems.base import DirectLine

    p = registry.get("mf-rank1", xp=xp)
    theta = p.init_params(0)
    batch = next(iter(p.batches(0, 0, 50)))
    _, g = p.value_and_grad(theta, batch)
    line = DirectLine(p, theta, -g, batch)
    assert not line.cheap
    steps = [0.0, 0.25, -1.0, 3.0]
    got = backend.to_host(line(steps))
    want = [backend.to_float(p.value(theta + s * (-g), batch)) for s in steps]
    assert got.tolist() == want
    assert line.n_points == 4
    assert line(0.5).shape == (1,)
    with pytest.raises(ValueError, match="s: must be 1-d"):
        line(xp.zeros((2, 2), dtype=p.dtype))


def test_epoch_permutation_is_cached_but_returned_fresh():
    """The permutation is computed once per (n, epoch, seed) and shared read-only by
    ``batches``; ``epoch_permutation`` hands out a writeable copy each time."""
    a = base.epoch_permutation(40, 2, 5)
    a[0] = -1  # the caller's own array
    b = base.epoch_permutation(40, 2, 5)
    assert b[0] != -1 and b.flags.writeable
    shared = base._permutation(40, 5, 2)
    assert not shared.flags.writeable
    np.testing.assert_array_equal(b, shared)
    assert base._permutation(40, 5, 2) is shared


# -- batches() and batch arguments of every registered problem (audit 2, N6) ----------


#: Every registered problem but w8a and rcv1 (downloads; their class is kernel-logreg's).
LOCAL_PROBLEMS = [n for n in registry.names() if n not in ("w8a", "rcv1")]


def _registered(name, xp, data_dir):
    opts = {"xp": xp}
    if name in ("mushrooms", "ijcnn"):
        opts["n_rows"] = 300 if name == "mushrooms" else 2000  # ijcnn's first rows: 1 label
    if name == "kernel-logreg":
        opts.update(path=os.path.join(data_dir, "mushrooms.bz2"), sigma=0.5, n_rows=300)
    return registry.get(name, **opts)


@pytest.fixture
def registered(request, xp, data_dir):
    return _registered(request.param, xp, data_dir)


@pytest.mark.parametrize("registered", LOCAL_PROBLEMS, indirect=True)
@pytest.mark.parametrize("bad", [None, float("inf"), 2.0, "1", True, 0])
def test_batches_names_batch_size(registered, bad):
    with pytest.raises((TypeError, ValueError), match="^batch_size: "):
        registered.batches(0, 0, bad)


@pytest.mark.parametrize("registered", LOCAL_PROBLEMS, indirect=True)
def test_the_batch_methods_refuse_what_is_not_an_index_batch(registered):
    """``None`` (it used to evaluate the whole training set silently), an empty batch (a
    NaN mean with a RuntimeWarning, or ZeroDivisionError), 2-D, float, bool and list
    batches all raise an error naming ``batch``; a real batch still works."""
    p, xp = registered, registered.xp
    theta = p.init_params(0)
    idx = backend.from_host(np.array([0, 1]), xp, dtype="int64")
    bad = {
        "None": None,
        "empty": backend.from_host(np.zeros(0, dtype=np.int64), xp, dtype="int64"),
        "2-D": xp.reshape(backend.from_host(np.array([0, 1]), xp, dtype="int64"), (1, 2)),
        "float": backend.from_host(np.array([0.0, 1.0]), xp, dtype="float64"),
        "bool": xp.asarray([True, False]),
        "list": [0, 1],
    }
    if p.n_train == 1:  # the one-sample quadratic: its only batch is [0]
        idx = idx[:1]
    for what, batch in bad.items():
        for call in (lambda b: p.value(theta, b), lambda b: p.value_and_grad(theta, b),
                     lambda b: p.bind(b)[0](theta), lambda b: p.line(theta, theta, b)):
            with pytest.raises((TypeError, ValueError), match="^batch: ") as info:
                call(batch)
            assert "batch" in str(info.value), what
    assert np.isfinite(backend.to_float(p.value(theta, idx)))


def test_numpy_index_batches_take_the_shortcut(monkeypatch):
    """The NumPy index arrays that batches() yields pass with four checks (the per-step
    cost); the full checks run only for anything else."""
    def slow(xp, batch):
        raise AssertionError("the full batch checks ran for a NumPy index batch")

    p = registry.get("mf-rank10")
    batch = next(iter(p.batches(0, 0, 100)))
    monkeypatch.setattr(base, "_check_batch", slow)
    vg, value = p.bind(batch)
    vg(p.init_params(0))
    p.value(p.init_params(0), batch)
    with pytest.raises(AssertionError, match="full batch checks"):
        p.value(p.init_params(0), batch.astype(np.int32))


def test_full_batch_is_every_training_index(xp):
    p = registry.get("least-squares", xp=xp, n_rows=30)
    batch = p.full_batch()
    p.check_batch(batch)
    assert backend.to_host(batch).tolist() == list(range(30))
    theta = p.init_params(0)
    assert backend.to_float(p.value(theta, batch)) == pytest.approx(
        backend.to_float(p.train_loss(theta)), rel=1e-14)
