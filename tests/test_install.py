"""The base install (``pip install .``, no extras) runs what the base commands promise:
``paltest sweep --example``'s grid to the end, and ``paltest figure 8 --quick``'s tables,
saying in one line before any run that no figures are drawn without matplotlib.

Slow (a fresh virtual environment and its packages, about a minute): marked ``slow``,
and run by default (CI's ``pytest`` too)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paltest import cli

ROOT = Path(__file__).resolve().parents[1]


def _run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=900, **kw)


@pytest.mark.slow
def test_a_fresh_base_install_runs_the_example_sweep_and_figure_tables(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("paltest", "problems"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", venv])
    assert made.returncode == 0, made.stderr
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    pip = _run([bin_dir / "python", "-m", "pip", "install", "-q", src])
    assert pip.returncode == 0, pip.stderr[-3000:]
    no_mpl = _run([bin_dir / "python", "-c", "import matplotlib"])
    assert no_mpl.returncode != 0  # a base install: no extras
    paltest = bin_dir / "paltest"

    grid = _run([paltest, "sweep", "--example"])
    assert grid.returncode == 0, grid.stderr
    (tmp_path / "grid.toml").write_text(grid.stdout)
    sweep = _run([paltest, "sweep", tmp_path / "grid.toml", "--out", tmp_path / "example",
                  "--jobs", "2", "--no-progress"], cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "sweep: 24 runs done, 0 already there" in sweep.stdout
    assert (tmp_path / "example" / "summary.csv").is_file()
    read = _run([bin_dir / "python", "-c",  # the tables and the summary, without paltest
                 "import sys, pandas as pd; d = sys.argv[1]; "
                 "e = pd.read_parquet(d + '/runs/tables/epochs.parquet'); "
                 "s = pd.read_parquet(d + '/summary.parquet'); "
                 "assert e['run_id'].nunique() == 24 and 'paltest' not in sys.modules; "
                 "print(len(s), int(s['n_seeds'].sum()))", tmp_path / "example"])
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["12", "24"]  # 12 configurations, 2 seeds each

    fig = _run([paltest, "figure", "8", "--quick", "--optimizers", "pal,sgd", "--out",
                tmp_path / "fig", "--no-progress"], cwd=tmp_path)
    assert fig.returncode == 0, fig.stderr[-3000:]
    first = fig.stdout.splitlines()[0]
    assert first == f"paltest: {cli.NO_MATPLOTLIB} (tables and claims only)"
    out = tmp_path / "fig" / "figure8-quick"
    assert (out / "summary.csv").is_file() and (out / "claims.md").is_file()
    assert (out / "summary.parquet").is_file() and (out / "runs" / "tables").is_dir()
    assert not list(out.glob("*.png"))

    plot = _run([paltest, "plot", out])
    assert plot.returncode == 1 and cli.NO_MATPLOTLIB in plot.stderr
