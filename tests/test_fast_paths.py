"""The NumPy fast paths around a step change no bit of any trajectory.

:mod:`paltest.backend` caches namespaces per array type (and accepted parameter types
per ``(type, dtype)``), and :mod:`paltest.optimizers.base` passes NumPy arrays through
the detach wrapper, ``check_grad``, ``as_loss`` and ``scalar`` on shortcuts. Each
shortcut must return what the general code returns: the same values *and* the same
types and dtypes (e.g. ``as_loss`` of an ``np.float64`` loss with float32 parameters
must still be a float32 0-d array, since ``np.float64`` is a Python float). Here every
first-order optimizer and PAL runs on ``mf-rank4`` (float32 and float64, 3 epochs) once
as it is and once with every shortcut and cache switched off (the forced slow path:
the general code for every array), and every non-timing array of the two results is
compared bitwise (dtype, shape and ``tobytes``).

The forced slow path also switches off PAL's host case logic
(``paltest.optimizers.pal_cases.HOST_FAST_PATH``) and the problems' NumPy shortcuts
(``problems.host.HOST_FAST_PATH``: matrix factorization's views, rows, means and cheap
line), and the runner's host collection of step records
(``paltest.testbed.runner.HOST_FAST_PATH``), and the exact line search's direct reads
(``paltest.optimizers.exact.HOST_FAST_PATH``). The Figure 8 problems (matrix
factorization at ranks 1, 4, 10 and the true model) run with PAL, SLS and its
variants, the exact line search and every first-order optimizer; the Figure 9 code
path (the kernel logistic regression with its cheap line) runs on a 300-row subset of
mushrooms, with its kernels stored and computed in every step.

The fast paths exist on NumPy only, so this test builds NumPy problems whatever
``--xp`` is.
"""

from __future__ import annotations

import numpy as np
import pytest

import problems
from paltest import backend, run
from paltest.optimizers import base, exact, pal_cases, selection
from paltest.testbed import runner
from paltest.testbed.results import TIMING_ARRAYS
from problems import host

FIRST_ORDER_AND_PAL = ["sgd", "adam", "rmsprop", "sgdhd", "alig", "cocob", "pal"]
LINE_SEARCHES = ["sls", "sls-goldstein", "sls-polyak", "exact"]
FIGURE8 = ["mf-true", "mf-rank1", "mf-rank4", "mf-rank10"]


class _NoCache(dict):
    """A dict that never stores: every lookup misses, so the general code runs."""

    def __setitem__(self, key, value):
        pass


class _Never:
    """A type no array has."""


def force_slow_path(monkeypatch):
    monkeypatch.setattr(backend, "_NS_BY_TYPE", _NoCache())
    monkeypatch.setattr(backend, "_PARAMS_OK", _NoCache())
    monkeypatch.setattr(backend, "_ON_HOST", _NoCache())
    monkeypatch.setattr(backend, "HOST_ARRAY_TYPES", frozenset())
    for name in ("_ndarray", "_np_float64", "_np_float32"):
        monkeypatch.setattr(base, name, _Never)
    monkeypatch.setattr(base, "_HOST_XP", _Never)
    monkeypatch.setattr(selection, "_ndarray", _Never)
    monkeypatch.setattr(selection, "_HOST_XP", _Never)
    monkeypatch.setattr(pal_cases, "HOST_FAST_PATH", False)
    monkeypatch.setattr(host, "HOST_FAST_PATH", False)
    monkeypatch.setattr(runner, "HOST_FAST_PATH", False)
    monkeypatch.setattr(exact, "HOST_FAST_PATH", False)


def _arrays(result):
    out = {}
    for part in ("epochs", "steps"):
        for key, value in getattr(result, part).items():
            if key not in TIMING_ARRAYS:
                out[f"{part}.{key}"] = np.asarray(value)
    return out


def _run(name, dtype, problem="mf-rank4", epochs=3, **options):
    prob = problems.get(problem, xp="numpy", dtype=dtype, **options)
    return _arrays(run(prob, name, epochs=epochs, batch_size=100, seed=0))


def _assert_same(fast, slow):
    assert sorted(fast) == sorted(slow)
    for key in fast:
        assert fast[key].dtype == slow[key].dtype, key
        assert fast[key].shape == slow[key].shape, key
        assert fast[key].tobytes() == slow[key].tobytes(), key


def _fast_and_slow(monkeypatch, *args, **kwargs):
    fast = _run(*args, **kwargs)
    with monkeypatch.context() as m:
        force_slow_path(m)
        assert backend.namespace(np.zeros(2)) is not None  # the general code still works
        slow = _run(*args, **kwargs)
    return fast, slow


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("problem", FIGURE8)
@pytest.mark.parametrize("name", FIRST_ORDER_AND_PAL + LINE_SEARCHES)
def test_figure8_problems_fast_paths_are_bitwise_the_slow_path(monkeypatch, name, problem,
                                                               dtype):
    fast, slow = _fast_and_slow(monkeypatch, name, dtype, problem, epochs=2)
    assert fast["steps.loss"].size == 2 * 8
    _assert_same(fast, slow)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["pal", "sls", "exact", "sgd", "adam"])
def test_kernel_problem_fast_paths_are_bitwise_the_slow_path(monkeypatch, data_dir, name,
                                                             dtype):
    fast, slow = _fast_and_slow(monkeypatch, name, dtype, "mushrooms", epochs=1,
                                n_rows=300)
    assert fast["steps.loss"].size >= 2
    _assert_same(fast, slow)


@pytest.mark.parametrize("name", ["pal", "exact"])
def test_kernel_rows_computed_in_the_steps_are_bitwise_the_slow_path(monkeypatch, data_dir,
                                                                     name):
    """Nothing stored (``mode="onthefly"``): every step and full-set loss computes its
    kernel rows (``problems.host.rbf_rows`` on the fast path, only there)."""
    calls, real = [], host.rbf_rows
    monkeypatch.setattr(host, "rbf_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    options = dict(epochs=1, n_rows=300, mode="onthefly")
    fast = _run(name, "float32", "mushrooms", **options)
    n_fast = len(calls)
    with monkeypatch.context() as m:
        force_slow_path(m)
        slow = _run(name, "float32", "mushrooms", **options)
    assert n_fast > 0 and len(calls) == n_fast
    _assert_same(fast, slow)


def test_the_problem_shortcuts_are_taken_and_switch_off(monkeypatch):
    """The comparisons above test something only if the problems' shortcuts run."""
    prob = problems.get("mf-rank4", xp="numpy", dtype="float32")
    batch = next(iter(prob.batches(0, 0, 100)))
    calls = []
    real = host.line_values
    monkeypatch.setattr(host, "line_values", lambda *a, **k: calls.append(1) or real(*a, **k))
    theta = prob.init_params(0)
    _, value = prob.bind(batch)
    value.line(theta, -theta)([0.5, 0.25])
    assert type(value).__name__ == "_BoundRowsWithLine" and calls == [1]
    monkeypatch.setattr(host, "HOST_FAST_PATH", False)
    _, value = prob.bind(batch)
    value.line(theta, -theta)([0.5, 0.25])
    assert type(value).__name__ != "_BoundRowsWithLine" and calls == [1]


def test_the_forced_slow_path_bypasses_the_shortcuts(monkeypatch):
    """The comparison above is only meaningful if the switch reaches the shortcuts."""
    theta = np.zeros(3)
    backend.check_params(theta)
    assert (np.ndarray, theta.dtype) in backend._PARAMS_OK
    with monkeypatch.context() as m:
        force_slow_path(m)
        backend.check_params(theta)
        assert len(backend._PARAMS_OK) == 0
        loss = base.as_loss(np.float64(1.5), backend.namespace(theta),
                            np.zeros(3, dtype=np.float32))
    assert loss.dtype == np.float32 and float(loss) == 1.5


def test_namespace_cache_is_per_type_and_skips_void_arrays():
    """A NumPy array of a void dtype (JAX's float0 is one) is never cached by type."""
    x = np.zeros(2, dtype="V1")
    backend._NS_BY_TYPE.pop(np.ndarray, None)
    with pytest.raises(TypeError):
        backend.check_params(x)
    assert np.ndarray not in backend._NS_BY_TYPE or backend._NS_BY_TYPE[np.ndarray] is (
        backend.namespace(np.zeros(2)))
    assert backend.namespace(np.zeros(2)) is backend._NS_BY_TYPE[np.ndarray]


LOSSES = [np.float64(1.0 / 3.0), np.float32(1.0 / 3.0), np.asarray(1.0 / 3.0),
          np.asarray(1.0 / 3.0, dtype=np.float32), 1.0 / 3.0, 3, np.int64(3),
          np.asarray([0.25])]


@pytest.mark.parametrize("like_dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda v: f"{type(v).__name__}")
def test_as_loss_and_scalar_shortcuts_return_what_the_general_code_returns(
        monkeypatch, loss, like_dtype):
    like = np.zeros(3, dtype=like_dtype)
    xp = backend.namespace(like)
    fast = (base.as_loss(loss, xp, like), base.scalar(xp, 0.1, like))
    with monkeypatch.context() as m:
        force_slow_path(m)
        slow = (base.as_loss(loss, xp, like), base.scalar(xp, 0.1, like))
    for f, s in zip(fast, slow, strict=True):
        assert type(f) is type(s)
        assert f.dtype == s.dtype and f.shape == s.shape
        assert np.asarray(f).tobytes() == np.asarray(s).tobytes()


def _records(xp=None):
    from typing import NamedTuple

    xp = backend.namespace(np.zeros(1)) if xp is None else xp

    class Info(NamedTuple):
        loss: object
        lr: object
        case: object
        note: object
        vec: object
        n_fun: int

    def put(value, dtype):
        return xp.asarray(value, dtype=getattr(xp, dtype))

    return Info, [Info(loss=put(float(i), "float64"), lr=put(i / 3, "float32"),
                       case=put(i, "int32"), note="x", vec=xp.zeros(3), n_fun=2)
                  for i in range(5)]


def _flush(records, fast, monkeypatch, by_column=True, xp=None):
    """``flush`` of an epoch of ``records``: ``fast`` is the runner's NumPy host path,
    ``by_column`` its column-wise sorting (else record by record, the general logic)."""
    with monkeypatch.context() as m:
        m.setattr(runner, "HOST_FAST_PATH", fast)
        if not by_column:
            m.setattr(runner._EpochBuffer, "_columns", lambda self: None)
        xp = backend.namespace(np.zeros(1)) if xp is None else xp
        buf = runner._EpochBuffer(xp)
        for r in records:
            buf.add(r)
        return buf.flush([xp.asarray(1.5)])


def _same(a, b):
    assert list(a[0]) == list(b[0])  # the same fields in the same order
    for key in a[0]:
        assert a[0][key].dtype == b[0][key].dtype, key
        assert a[0][key].tobytes() == b[0][key].tobytes(), key
    assert a[1].tobytes() == b[1].tobytes()


def _all_ways(records, monkeypatch, xp):
    """The flush of ``records`` by column and record by record, on ``xp``'s device code
    and (for NumPy) the host path: all equal; returns the by-column device-code one."""
    ways = [(False, True), (False, False)]
    if backend.on_host(xp):
        ways += [(True, True), (True, False)]
    outs = [_flush(records, fast, monkeypatch, by_column, xp) for fast, by_column in ways]
    for out in outs[1:]:
        _same(outs[0], out)
    return outs[0]


def test_step_records_by_column_equal_records_by_step(monkeypatch, xp):
    """The runner's column-wise collection of an epoch's records gives the arrays, dtypes
    and field order of the record-by-record collection, on the device code (every
    namespace) and NumPy's host path: for uniform records and for those it hands back
    (mixed dtypes, a field None in some steps, mixed types, mixed record types)."""
    Info, recs = _records(xp)
    out = _all_ways(recs, monkeypatch, xp)
    assert list(out[0]) == ["loss", "lr", "case", "n_fun"]  # no str, no vector field
    assert out[0]["lr"].dtype == np.float32 and out[0]["case"].dtype == np.int64
    assert out[0]["loss"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert out[0]["n_fun"].dtype == np.asarray(2).dtype
    mixed_dtype = [*recs[:2], recs[2]._replace(lr=xp.asarray(0.5, dtype=xp.float64)),
                   *recs[3:]]
    assert _all_ways(mixed_dtype, monkeypatch, xp)[0]["lr"].dtype == np.float64
    for bad in ([*recs[:3], recs[3]._replace(case=None), recs[4]],
                [*recs[:3], recs[3]._replace(lr=0.5), recs[4]]):  # a Python float
        for fast in (True, False) if backend.on_host(xp) else (False,):
            for by_column in (True, False):
                with pytest.raises(ValueError, match="missing in some steps"):
                    _flush(bad, fast, monkeypatch, by_column, xp)
    all_none = [r._replace(case=None) for r in recs]  # None in every step: no field
    assert "case" not in _all_ways(all_none, monkeypatch, xp)[0]
    two_types = [*recs[:2], _records(xp)[1][2], *recs[3:]]  # another Info class
    assert list(_all_ways(two_types, monkeypatch, xp)[0]) == list(out[0])
    host_and_0d = [*recs[:2], recs[2]._replace(n_fun=xp.asarray(2)), *recs[3:]]
    with pytest.raises(ValueError, match="missing in some steps"):
        _flush(host_and_0d, False, monkeypatch, True, xp)
    vec_and_0d = [*recs[:2], recs[2]._replace(vec=xp.asarray(1.0)), *recs[3:]]
    with pytest.raises(ValueError, match="missing in some steps"):
        _flush(vec_and_0d, False, monkeypatch, True, xp)
    assert _flush([], False, monkeypatch, True, xp)[0] == {}
    buf = runner._EpochBuffer(xp)
    for r in recs:
        buf.add(r)
    assert buf._columns() is not None  # the uniform epoch is taken column by column
    for odd in (two_types, host_and_0d, [*recs[:3], recs[3]._replace(case=None), recs[4]]):
        buf.records = list(odd)
        assert buf._columns() is None


def test_numpy_scalars_and_arrays_in_one_column(monkeypatch):
    """NumPy's 0-d arrays and scalars of one field (two types): record by record, as
    before; a NumPy float64 scalar is a Python float (a host value)."""
    Info, recs = _records()
    mixed_kind = [*recs[:2], recs[2]._replace(case=np.int32(2)), *recs[3:]]
    out = _all_ways(mixed_kind, monkeypatch, backend.namespace(np.zeros(1)))
    assert out[0]["case"].dtype == np.int64
    f64 = [r._replace(lr=np.float64(0.25)) for r in recs]
    out = _all_ways(f64, monkeypatch, backend.namespace(np.zeros(1)))
    assert list(out[0]) == ["loss", "case", "lr", "n_fun"]  # lr now among host values


def test_pal_record_loss_property_comes_first(monkeypatch, xp):
    """PAL's record has ``loss`` as a property (its ``l0``): still the first field."""
    prob = problems.get("mf-rank4", xp=xp, dtype="float32")
    r = run(prob, "pal", epochs=1, batch_size=400, seed=0)
    assert list(r.steps)[:2] == ["loss", "l0"] and r.steps["loss"].dtype == np.float32
    assert r.steps["loss"].tobytes() == r.steps["l0"].tobytes()


@pytest.mark.parametrize("name", ["pal", "sls", "exact", "sgd"])
def test_runs_collected_by_column_equal_runs_collected_by_record(monkeypatch, xp, name):
    """Whole runs: the step arrays (and every other non-timing array) are the same with
    the column-wise sorting of step records switched off, on every namespace."""
    def go():
        prob = problems.get("mf-rank4", xp=xp, dtype="float32")
        return _arrays(run(prob, name, epochs=2, batch_size=100, seed=0))

    by_column = go()
    with monkeypatch.context() as m:
        m.setattr(runner._EpochBuffer, "_columns", lambda self: None)
        by_record = go()
    assert list(by_column) == list(by_record)  # the same keys in the same order
    _assert_same(by_column, by_record)
