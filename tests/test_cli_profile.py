"""``paltest profile`` (paltest.cli_profile): the table and plots, and bad options."""

from __future__ import annotations

import pandas as pd
import pytest

from paltest.cli import main
from paltest.cli_profile import _split


def test_profile_command_writes_table_summary_and_plots(tmp_path, capsys):
    rc = main(["profile", "--problems", "quadratic,least-squares", "--solvers",
               "pal,pal:beta=pr,alpha=1,cg", "--budget", "200", "--out", str(tmp_path),
               "--backend", "sequential", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "3 solvers x 2 problems" in out and "6 runs done, 0 already there" in out
    tmp_path = tmp_path / "profile"   # a list of names: OUT/profile/
    table = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(set(table["solver"])) == ["cg", "pal", "pal:beta=pr,alpha=1"]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns[:4]) == ["solver", "solved", "rho_1", "rho_10"]
    for name in ("performance_profile", "data_profile"):
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--problems", "nope"], "--problems: unknown"),
    (["--solvers", "pal,nope"], "--solvers: unknown solver 'nope'"),
    (["--solvers", "pal:alpha=-1"], "--solvers: 'pal:alpha=-1': optimizer 'pal': alpha"),
    (["--budget", "0"], "--budget"),
    (["--tol", "-1"], "--tol"),
])
def test_bad_options_exit_2_before_running(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["profile", "--out", str(tmp_path / "o"), "--problems", "quadratic", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_solver_list_splitting():
    assert _split("pal,cg") == ["pal", "cg"]
    assert _split("pal:beta=pr,alpha=1,cg,pal-relative:rho=0.5") == [
        "pal:beta=pr,alpha=1", "cg", "pal-relative:rho=0.5"]
    assert _split("pal:beta=pr,alpha=1;cg") == ["pal:beta=pr,alpha=1", "cg"]
