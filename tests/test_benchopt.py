"""The benchopt benchmark shipped in ``benchmarks/benchopt``: ``benchopt run`` on a tiny
instance (offline), its parquet read back: PAL's beta variants, the exact line search and
SGD on Figure 8's rank-4 factorization (suboptimality against the analytic floor, test
metrics) and on a problem of your own registered by a plugin."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("benchopt")
pd = pytest.importorskip("pandas")

import problems  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = ROOT / "benchmarks" / "benchopt"


def benchopt(*args, env=None, cwd=None):
    cmd = [sys.executable, "-m", "benchopt", "run", str(BENCHMARK), *args, "--no-plot",
           "--no-html", "--no-display", "--no-cache"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.mark.slow
def test_benchopt_run_writes_its_parquet_with_the_testbed_metrics(tmp_path):
    out = tmp_path / "run.parquet"
    done = benchopt("-d", "matrix-factorization[problem=mf-rank4]",
                    "-d", "problem[problem=logreg-cancer]", "-s", "PAL", "-s", "SGD",
                    "-s", "exact-line-search", "-n", "6", "--output", str(out),
                    env={"PALTEST_PLUGINS": str(ROOT / "examples" / "logreg_problems.py")},
                    cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    df = pd.read_parquet(out)
    assert set(df["p_solver_beta"].dropna()) == {  # benchopt writes parameters as text
        "0.4", "fletcher-reeves", "polak-ribiere", "hestenes-stiefel", "dai-yuan"}
    names = set(df["solver_name"].str.split("[").str[0])
    assert names == {"PAL", "SGD", "exact-line-search"}
    assert set(df["p_dataset_problem"]) == {"mf-rank4", "logreg-cancer"}
    mf = df[df["p_dataset_problem"] == "mf-rank4"]
    floor = problems.get("mf-rank4").floor
    gap = mf["objective_value"] - floor
    assert (abs(mf["objective_suboptimality"] - gap) <= 1e-12 * mf["objective_value"]).all()
    assert mf["objective_test_loss"].notna().all()
    lr = df[df["p_dataset_problem"] == "logreg-cancer"]
    assert lr["objective_suboptimality"].isna().all()  # no known floor: not reported
    assert lr["objective_test_accuracy"].between(0, 1).all()
    for (_, solver), curve in df.groupby(["dataset_name", "solver_name"]):
        curve = curve.sort_values("stop_val")
        first, last = curve["objective_value"].iloc[[0, -1]]
        assert curve["stop_val"].iloc[0] == 0 and math.isfinite(first)
        if solver.startswith(("PAL[alpha=1.6666666666666667,beta=0.4", "exact")):
            assert last < first, solver  # trains
    # every solver starts from the same point (the repetition's seed, not the solver's)
    starts = df[df["stop_val"] == 0].groupby("dataset_name")["objective_value"].nunique()
    assert (starts == 1).all()


def test_a_dataset_that_cannot_be_built_is_skipped_saying_why(tmp_path):
    done = benchopt("-d", "problem", "-s", "SGD", "-n", "2", "--output",
                    str(tmp_path / "none.parquet"), env={"PALTEST_PLUGINS": ""}, cwd=tmp_path)
    assert "logreg-cancer is not a registered problem: set PALTEST_PLUGINS" in done.stdout
