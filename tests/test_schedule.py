"""paltest.testbed.schedule: rounds longest first, fillers only into idle time."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paltest.testbed import schedule


def cfg(problem, optimizer="sgd", i=0):
    return {"problem": problem, "optimizer": optimizer, "i": i}


def test_estimates_fall_back_from_the_pair_to_the_problem_to_all_to_one_unit():
    est = schedule.Estimates()
    assert est(cfg("a")) == 1.0
    est.add(cfg("a", "sgd"), 2.0)
    est.add(cfg("a", "sgd"), 4.0)
    est.add(cfg("a", "adam"), 6.0)
    est.add(cfg("b", "sgd"), 30.0)
    for bad in (None, True, float("nan"), float("inf"), -1.0, "3"):
        est.add(cfg("c"), bad)  # ignored: no timing, or not a duration
    assert est(cfg("a", "sgd")) == 3.0
    assert est(cfg("a", "sls")) == 4.0  # the problem's mean
    assert est(cfg("c", "sls")) == 10.5  # every measured run's
    est.add(cfg("a", "sls"), 1.0)  # a new measurement replaces the memo
    assert est(cfg("a", "sls")) == 1.0


def test_makespan_is_list_scheduling():
    assert schedule.makespan([], 2) == 0.0
    assert schedule.makespan([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert schedule.makespan([1.0, 1.0, 1.0, 3.0], 2) == 4.0  # the long one started last
    assert schedule.makespan([1.0, 2.0], 1) == 3.0


def test_with_nothing_measured_a_round_takes_one_filler_per_idle_worker():
    est = schedule.Estimates()
    free = [cfg("a", "sls", 0), cfg("b", "sls", 1), cfg("a", "sls", 2)]
    out = schedule.order_round([cfg("b"), cfg("b"), cfg("b")], free, 2, est, prefer="b")
    assert out[-1] == cfg("b", "sls", 1) and len(out) == 4  # the round's problem first
    assert free == [cfg("a", "sls", 0), cfg("a", "sls", 2)]
    out = schedule.order_round([cfg("a"), cfg("a")], free, 2, est)
    assert len(out) == 2 and len(free) == 2  # no idle worker: nothing taken
    assert schedule.order_round([cfg("a")] * 3, free, 1, est) == [cfg("a")] * 3
    assert len(free) == 2  # one worker: nothing taken, the order kept


def test_a_long_filler_fills_the_gap_a_long_run_leaves():
    """Figure 9's case: three ijcnn runs and three mushrooms runs leave one worker idle
    for most of an ijcnn run; an ijcnn filler fits there, the short runs go last."""
    est = schedule.Estimates()
    for o, t in (("pal", 20.0), ("sgd", 15.0), ("adam", 18.0)):
        est.add(cfg("ijcnn", o), t)
        est.add(cfg("mushrooms", o), t / 15)
    todo = [cfg("mushrooms", o) for o in ("pal", "sgd", "adam")] + \
        [cfg("ijcnn", o) for o in ("pal", "sgd", "adam")]
    free = [cfg("mushrooms", "sls", i) for i in range(5)] + [cfg("ijcnn", "sls", 9)]
    out = schedule.order_round(todo, free, 2, est)
    assert cfg("ijcnn", "sls", 9) in out
    assert [c["problem"] for c in out[:4]] == ["ijcnn"] * 4
    in_order = schedule.makespan([est(c) for c in todo], 2)  # problem order: 35.2 s
    lpt = schedule.makespan([est(c) for c in schedule.longest_first(todo, est)], 2)
    with_filler = schedule.makespan([est(c) for c in out], 2)
    later = est(cfg("ijcnn", "sls")) / 2  # the filler run afterwards, perfectly packed
    assert lpt < in_order and with_filler < lpt + later


@given(todo=st.lists(st.integers(1, 50), min_size=1, max_size=8),
       free=st.lists(st.integers(0, 50), max_size=8), n=st.integers(1, 4))
def test_order_round_keeps_every_run_and_each_filler_costs_less_than_later(todo, free, n):
    """Each filler taken lengthens the round by less than its length / workers (what it
    would cost later, perfectly packed); none is lost; the round is longest first."""
    est = schedule.Estimates()
    runs = [cfg(f"p{t}", "x", i) for i, t in enumerate(todo)]
    fill = [cfg(f"p{t}", "y", 100 + i) for i, t in enumerate(free)]
    for c, t in zip(runs + fill, todo + free, strict=True):
        est.add(c, float(t))
    left = list(fill)
    out = schedule.order_round(runs, left, n, est)
    taken = [c for c in out if c["optimizer"] == "y"]
    assert [c for c in out if c["optimizer"] == "x"] == (
        runs if n == 1 else schedule.longest_first(runs, est))
    assert sorted(c["i"] for c in taken + left) == [c["i"] for c in fill]
    assert n > 1 or not taken
    times = [est(c) for c in out]
    assert n == 1 or times == sorted(times, reverse=True)
    before = schedule.makespan([est(c) for c in schedule.longest_first(runs, est)], n)
    after = schedule.makespan(times, n)
    assert after - before <= sum(est(c) for c in taken) / n + 1e-9
    assert not taken or after - before < sum(est(c) for c in taken) / n or after <= before


def test_workers_of_a_joblib_backend():
    assert schedule.workers({"backend": "sequential", "n_jobs": 4}) == 1
    assert schedule.workers({"backend": "threading", "n_jobs": 2}) == 2
    assert schedule.workers({"backend": "no-such-backend", "n_jobs": 2}) == 1


@pytest.mark.parametrize("n", [2, 3])
def test_longest_first_is_stable(n):
    est = schedule.Estimates()
    est.add(cfg("a"), 1.0)
    est.add(cfg("b"), 2.0)
    configs = [cfg(p, "sgd", i) for i, p in enumerate(itertools.islice(
        itertools.cycle("ab"), 2 * n))]
    out = schedule.longest_first(configs, est)
    assert [c["i"] for c in out] == [i for i in range(2 * n) if i % 2] + \
        [i for i in range(2 * n) if not i % 2]
