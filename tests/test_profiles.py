"""paltest.testbed.profiles: convergence tests, profiles, solvers, runs, table, drawing.

These run on the testbed's own full-batch problems (the quadratic, least squares), so
they need neither JAX nor sif2jax; tests/test_cutest.py covers the CUTEst problems and
tests/test_cli_profile.py the command.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import problems
from paltest.testbed.profiles import convergence, experiment, problem_sets, runs, solvers
from paltest.testbed.profiles import profiles as prof

# --- convergence tests ------------------------------------------------------------------


def test_f_test_threshold_and_first_evaluation():
    # f_L + tol (f0 - f_L) = 1 + 0.01 * 99 = 1.99: reached at the evaluation where the
    # best value first drops to or below it (1.99 itself counts).
    assert convergence.threshold(100.0, 1.0, 0.01) == pytest.approx(1.99)
    assert convergence.evaluations_to_solve([1, 5, 8], [100.0, 1.99, 1.0], f0=100.0,
                                            f_ref=1.0, tol=0.01) == 5.0
    assert convergence.evaluations_to_solve([1, 5], [100.0, 2.0], f0=100.0, f_ref=1.0,
                                            tol=0.01) == math.inf
    # nothing to reach (no solver decreased f) or a non-finite start: solved by nobody
    for f0, f_ref in ((1.0, 1.0), (math.nan, 0.0), (math.inf, 0.0)):
        assert math.isnan(convergence.threshold(f0, f_ref, 0.1))
        assert convergence.evaluations_to_solve([1], [f0], f0=f0, f_ref=f_ref,
                                                tol=0.1) == math.inf


def test_g_test():
    # tol * g0 = 1e-4: 2e-4 is not enough, 1e-4 itself is
    assert convergence.gradient_evaluations_to_solve([1, 3, 7], [10.0, 2e-4, 1e-4], g0=10.0,
                                                     tol=1e-5) == 7.0
    assert convergence.gradient_evaluations_to_solve([1], [0.0], g0=0.0, tol=1e-5) == 1.0
    assert convergence.gradient_evaluations_to_solve([1], [1.0], g0=math.nan,
                                                     tol=1e-5) == math.inf


# --- profiles -----------------------------------------------------------------------------


@pytest.fixture
def cost():
    inf = math.inf
    # p1: a fastest, b 2x; p2: b fastest, a 4x; p3: only a; p4: nobody
    return pd.DataFrame({"a": [10.0, 40.0, 5.0, inf], "b": [20.0, 10.0, inf, inf]},
                        index=["p1", "p2", "p3", "p4"])


def test_performance_profile_by_hand(cost):
    r = prof.ratios(cost)
    assert r.loc["p1"].tolist() == [1.0, 2.0] and r.loc["p2"].tolist() == [4.0, 1.0]
    assert r.loc["p3"].tolist() == [1.0, math.inf] and np.isinf(r.loc["p4"]).all()
    rho = prof.performance_profile(cost, [1.0, 2.0, 4.0, 1e9])
    assert rho["a"].tolist() == [0.5, 0.5, 0.75, 0.75]   # p4 counts against everyone
    assert rho["b"].tolist() == [0.25, 0.5, 0.5, 0.5]


def test_data_profile_by_hand(cost):
    d = prof.data_profile(cost, [5.0, 10.0, 40.0])
    assert d["a"].tolist() == [0.25, 0.5, 0.75] and d["b"].tolist() == [0.0, 0.25, 0.5]
    dims = pd.Series({"p1": 4, "p2": 9, "p3": 4, "p4": 1})
    d = prof.data_profile(cost, [1.0, 2.0], dims=dims)   # cost / (n + 1)
    assert d["a"].tolist() == [0.25, 0.5] and d["b"].tolist() == [0.25, 0.25]


def test_summary(cost):
    s = prof.summary(cost)
    assert s.index.tolist() == ["a", "b"]
    assert s.loc["a"].tolist() == [0.75, 0.5, 0.75, 10.0]
    assert s.loc["b"].tolist() == [0.5, 0.25, 0.5, 15.0]


# --- solvers --------------------------------------------------------------------------------


def test_parse_named_and_specs():
    assert solvers.parse("cg") == solvers.Solver("cg", "scipy", {"method": "CG"})
    s = solvers.parse("pal:beta=hs,alpha=1.5,s_max=100")
    assert s.optimizer == "pal" and s.options == {"beta": "hestenes-stiefel",
                                                  "alpha": 1.5, "s_max": 100}
    assert solvers.parse("pal-relative:rho=0.5").build().rho == 0.5
    assert solvers.parse("scipy:method=Newton-CG").options == {"method": "Newton-CG"}
    for bad, match in (("nope", "unknown solver 'nope'"), ("pal:alpha=-1", "alpha"),
                       ("scipy:gtol=1", "scipy takes method"), ("pal:alpha", "key=value")):
        with pytest.raises(ValueError, match=match):
            solvers.parse(bad)


def _quadratic():
    return problems.get("quadratic", n=20, kappa=100.0)


def test_pal_counts_two_evaluations_per_step_and_stops_at_the_budget():
    p = _quadratic()
    h, status, nit = solvers.run_solver(solvers.parse("pal"), p, budget=101)
    # PAL: one value_and_grad (the gradient at the new point, reused by the next step)
    # and one value (the measuring point) per step.
    assert status == "budget" and h.n_evaluations == 101
    assert h.n_value_and_grad == 51 and h.n_value == 50 and nit == 50  # steps completed
    assert h.f_at[0] == 1 and h.f0 == h.f_best[0] and h.g_at[0] == 1
    assert all(np.diff(h.f_best) < 0) and all(np.diff(h.f_at) > 0)
    assert all(np.diff(h.g_best) < 0)


def test_scipy_counts_its_calls_and_stops_at_the_gradient_rule():
    from scipy.optimize import minimize

    p = _quadratic()
    h, status, nit = solvers.run_solver(solvers.parse("cg"), p, budget=10_000,
                                        stop_rtol=1e-10)
    assert status == "gradient" and h.n_value == 0
    assert h.g_best[-1] <= 1e-10 * h.g0 and h.g_best[-2] > 1e-10 * h.g0
    # SciPy's own run to the same point makes the same calls
    x0 = np.asarray(p.init_params(0))
    calls = []

    def fun(x):
        v, g = p.value_and_grad(x, p.full_batch())  # (batch=None is refused)
        calls.append(float(np.linalg.norm(g)))
        if calls[-1] <= 1e-10 * calls[0]:
            raise StopIteration
        return float(v), np.asarray(g)

    with pytest.raises(StopIteration):
        minimize(fun, x0, jac=True, method="CG", options={"gtol": 0.0, "maxiter": 10**9})
    assert len(calls) == h.n_evaluations


def test_every_solver_stops_at_the_budget_and_records_consistently():
    p = problems.get("least-squares", n_rows=40, n_cols=8)
    for label in (*experiment.DEFAULT_SOLVERS, "pal-pr-rel"):
        h, status, _ = solvers.run_solver(solvers.parse(label), p, budget=37)
        assert h.n_evaluations <= 37, label
        assert status in ("budget", "gradient", "stopped", "stalled"), (label, status)
        assert h.n_evaluations == h.n_value + h.n_value_and_grad
        # the full batch: the first value is the training loss at the start
        assert h.f0 == pytest.approx(float(p.train_loss(p.init_params(0))), rel=1e-12)


def test_a_step_that_neither_evaluates_nor_moves_ends_the_run():
    # SLS below its gradient tolerance returns theta without evaluating anything: the
    # run ends as "stalled" instead of looping forever.
    p = problems.get("quadratic", eigenvalues=[1.0, 2.0], minimizer=[0.0, 0.0])
    h, status, nit = solvers.run_solver(solvers.parse("sls"), p, budget=10_000,
                                        stop_rtol=0.0)
    assert status == "stalled" and h.n_evaluations < 10_000


# --- runs, table, profile ---------------------------------------------------------------


def test_profile_writes_the_table_and_resumes(tmp_path):
    names = ["quadratic", "least-squares"]
    res = experiment.profile(names, ["pal", "pal-pr", "cg"], tmp_path, budget=300,
                             backend="sequential", tol=1e-6, draw=True)
    assert (res.ran, res.skipped) == (6, 0)
    t = res.table
    assert len(t) == 6 and set(t["problem"]) == set(names)
    assert (t["n_evaluations"] <= 300).all()
    # the reference is the best value found by any solver of the problem
    for _, g in t.groupby("problem"):
        assert (g["f_ref"] == g["f_best"].min()).all()
    assert res.cost.shape == (2, 3) and list(res.cost.columns) == ["pal", "pal-pr", "cg"]
    saved = pd.read_csv(tmp_path / runs.TABLE)
    assert saved["run_id"].tolist() == t["run_id"].tolist()
    for name in ("performance_profile.png", "data_profile.pdf", "summary.csv"):
        assert (tmp_path / name).stat().st_size > 0
    # resumed: nothing runs again, the table is the same
    again = experiment.profile(names, ["pal", "pal-pr", "cg"], tmp_path, budget=300,
                               backend="sequential", draw=False)
    assert (again.ran, again.skipped) == (0, 6)
    pd.testing.assert_frame_equal(again.table, t)
    # a damaged result file is run again
    victim = next((tmp_path / "runs").glob("*.npz"))
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.warns(UserWarning, match="skipping"):
        third = experiment.profile(names, ["pal", "pal-pr", "cg"], tmp_path, budget=300,
                                   backend="sequential", draw=False)
    assert (third.ran, third.skipped) == (1, 5)


def test_profile_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="problems: unknown"):
        experiment.profile(["no-such"], ["pal"], tmp_path)
    with pytest.raises(ValueError, match="given more than once"):
        experiment.profile(["quadratic"], ["pal", "pal"], tmp_path)
    with pytest.raises(ValueError, match="test"):
        experiment.profile(["quadratic"], ["pal"], tmp_path, test="h")
    with pytest.raises(ValueError, match="budget"):
        experiment.profile(["quadratic"], ["pal"], tmp_path, budget=0)
    assert not any(tmp_path.iterdir())


# --- problem sets ------------------------------------------------------------------------


def test_default_set_is_the_rules_applied_to_the_shipped_catalog():
    assert list(problem_sets.DEFAULT) == problem_sets.select()
    rows = {f"cutest:{r['name']}": r for r in problem_sets.catalog()}
    for name in problem_sets.DEFAULT:
        r = rows[name]
        assert r["status"] == "ok" and r["finite_start"]
        assert 2 <= r["n"] <= 1000 and r["vg_us"] <= 1000.0
    left_out = set(rows) - set(problem_sets.DEFAULT)
    assert all(rows[n]["n"] > 1000 for n in left_out)
    assert set(problem_sets.TINY) <= set(problem_sets.DEFAULT)
    assert problem_sets.resolve("cutest:ROSENBR, quadratic") == ["cutest:ROSENBR",
                                                                 "quadratic"]
    with pytest.raises(ValueError, match="more than once"):
        problem_sets.resolve(["quadratic", "quadratic"])
