"""The ``paltest`` command line: help, option errors (exit 2 naming the option), run,
figure 8 at the quick scale, plot and sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

import problems  # noqa: E402
from paltest import cli
from paltest.testbed import results  # noqa: E402


def _exit(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_top_level_help_lists_the_commands(capsys):
    code, out, _ = _exit(["--help"], capsys)
    assert code == 0
    for word in ("figure", "run", "sweep", "plot"):
        assert word in out


@pytest.mark.parametrize("command, words", [
    ("figure", ["--quick", "--dataset", "--seeds", "--jobs", "--xp", "--dtype", "float32",
                "--out", "--no-progress", "mu, alpha, beta"]),
    ("run", ["--hp", "KEY=VALUE", "--po", "--seed", "--epochs"]),
    ("sweep", ["config", "--jobs", "resumable"]),
    ("plot", ["RESULTS_DIR", "--out"]),
])
def test_command_help(command, words, capsys):
    code, out, _ = _exit([command, "--help"], capsys)
    assert code == 0
    for word in words:
        assert word in out


@pytest.mark.parametrize("argv, option", [
    (["figure", "5"], "FIGURE"),
    (["figure", "8", "--dtype", "float16"], "--dtype"),
    (["figure", "8", "--xp", "mxnet"], "--xp"),
    (["figure", "8", "--seeds", "abc"], "--seeds"),
    (["figure", "8", "--seeds", "0"], "--seeds"),
    (["figure", "8", "--epochs", "-3"], "--epochs"),
    (["figure", "8", "--jobs", "0"], "--jobs"),
    (["figure", "8", "--dataset", "mushrooms"], "--dataset"),
    (["figure", "8", "--optimizers", "pal,nope"], "--optimizers"),
    (["figure", "9", "--dataset", "w8a"], "--dataset"),
    (["run", "mf-rank4", "pal", "--hp", "foo=1"], "--hp"),
    (["run", "mf-rank4", "pal", "--hp", "mu"], "--hp"),
    (["run", "mf-rank4", "pal", "--hp", "mu=-1"], "--hp"),
    (["run", "nope", "pal"], "problem"),
    (["run", "mf-rank4", "nope"], "optimizer"),
    (["sweep", "does-not-exist.json"], "config"),
    (["plot", "does-not-exist"], "RESULTS_DIR"),
    (["frobnicate"], "COMMAND"),
    ([], "COMMAND"),
])
def test_bad_options_exit_2_naming_the_option(argv, option, capsys):
    code, _, err = _exit(argv, capsys)
    assert code == 2
    assert option in err
    command = argv[0] if argv and argv[0] in cli._COMMANDS else None
    # the command's own usage line, not the top-level one
    assert err.startswith(f"usage: paltest {command} " if command else "usage: paltest ")


@pytest.mark.parametrize("argv, message", [
    (["figure", "8", "--backend", "nonexistent"],
     "argument --backend: unknown joblib backend 'nonexistent' (Invalid backend: "),
    (["sweep", "grid.json", "--backend", "nonexistent"],
     "argument --backend: unknown joblib backend 'nonexistent' (Invalid backend: "),
    (["figure", "9", "--memory-budget", "-1"],
     "argument --memory-budget: expected a positive number of bytes, got '-1'"),
    (["figure", "9", "--memory-budget", "nan"], "argument --memory-budget: expected"),
    (["run", "quadratic", "sgd", "--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["run", "quadratic", "sgd", "--hp", "lr=0.1", "--hp", "lr=0.2"], "--hp: lr given twice"),
    (["run", "quadratic", "sgd", "--po", "n=2", "--po", "n=3"], "--po: n given twice"),
    (["run", "quadratic", "sgd", "--po", "xp=array_api_strict"], "--po: xp is set with --xp"),
    (["run", "quadratic", "sgd", "--po", "foo=1"], "--po: foo: unknown option(s) of problem"),
    (["run", "quadratic", "sgd", "--po", "n=abc"], "--po: n: expected an int"),
    (["run", "quadratic", "sgd", "--batch-size", "2"],
     "--batch-size: 2 exceeds the training set size 1 of quadratic"),
    (["sweep"], "config: required (paltest sweep --example prints an example grid)"),
])
def test_bad_values_are_usage_errors_before_anything_runs(argv, message, capsys, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.json").write_text(json.dumps(GOOD_GRID))
    monkeypatch.setattr("paltest.testbed.runner.run", _must_not_run)
    code, _, err = _exit(argv, capsys)
    assert code == 2
    assert err.startswith(f"usage: paltest {argv[0]} ")
    assert f"paltest {argv[0]}: error: {message}" in err
    if "--backend" in argv:
        assert "'loky'" in err and "'threading'" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "grid.json"]  # nothing ran or was written


GOOD_GRID = {"epochs": 1, "batch_size": 1, "problems": [{"name": "quadratic"}],
             "optimizers": ["sgd"]}


def _must_not_run(*args, **kwargs):
    raise AssertionError("a run started before the options were checked")


def test_float64_on_jax_without_x64_is_a_usage_error(capsys, tmp_path):
    """Issue 13: the error says how to enable x64 (the library never does)."""
    jax = pytest.importorskip("jax", reason="jax is not installed (pip install 'paltest[jax]')")
    with jax.enable_x64(False):
        code, _, err = _exit(["run", "mf-rank4", "pal", "--xp", "jax", "--dtype", "float64",
                              "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "--dtype: float64 is not available on jax.numpy" in err
    assert "JAX_ENABLE_X64=1" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", [["run", "quadratic", "sgd"], ["figure", "8", "--quick"],
                                     ["sweep", "grid.json"]])
def test_an_out_that_cannot_be_created_fails_before_anything_runs(command, tmp_path, capsys,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.json").write_text(json.dumps(GOOD_GRID))
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr("paltest.testbed.runner.run", _must_not_run)
    code, _, err = _exit([*command, "--out", "a-file/results"], capsys)
    assert code == 2
    assert (f"paltest {command[0]}: error: argument --out: cannot create 'a-file/results': "
            "'a-file' is not a directory") in err


def test_a_read_only_out_fails_before_training(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    # root may write into a 0o555 directory, so the permission is denied by the check
    # itself here, for every user: the directory is what os.access asks about
    real_access = os.access
    monkeypatch.setattr("paltest.cli_args.os.access",
                        lambda path, mode: False if Path(path) == ro else real_access(path, mode))
    monkeypatch.setattr("paltest.testbed.runner.run", _must_not_run)
    code, _, err = _exit(["run", "quadratic", "sgd", "--out", str(ro / "x")], capsys)
    assert code == 2 and "argument --out: cannot write in" in err


def test_bad_sweep_grid_exits_2_naming_every_bad_key_before_any_run(tmp_path, capsys):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({
        "epochs": 1.7, "batch_size": 0, "seeds": [-1],
        "problems": ["nonexistent", {"name": "quadratic", "options": {"dtype": "int8"}},
                     {"name": "quadratic", "options": {"foo": 1}}],
        "optimizers": ["sgd"]}))
    out = tmp_path / "out"
    code, _, err = _exit(["sweep", str(cfg), "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and err.startswith("usage: paltest sweep ")
    assert "paltest sweep: error: config: grid: 6 invalid entries:" in err
    for key in ("epochs: expected an int, got 1.7", "batch_size: must be >= 1, got 0",
                "seeds: expected a count", "problems[0]: unknown problem 'nonexistent'",
                "problems[1].options {'dtype': 'int8'}: dtype:",
                "problems[2].options {'foo': 1}: foo: unknown option"):
        assert f"\n  {key}" in err, key
    assert not out.exists()


def test_sweep_example_prints_the_shipped_grid_and_it_runs(tmp_path, capsys):
    from importlib import resources

    from paltest.testbed.sweep import example_grid, expand, load_config

    text = resources.files("paltest.testbed").joinpath("example_grid.toml").read_text()
    assert example_grid() == text
    assert cli.main(["sweep", "--example"]) == 0
    assert capsys.readouterr().out == text
    code, out, _ = _exit(["sweep", "--help"], capsys)
    assert code == 0 and "paltest sweep --example > grid.toml" in out
    assert all(line.strip() in out for line in text.splitlines())
    readme = (Path(cli.__file__).parents[1] / "README.md").read_text()
    assert f"```toml\n{text}```" in readme  # the README shows the file as it is
    path = tmp_path / "grid.toml"
    path.write_text(text)
    if sys.version_info < (3, 11):
        pytest.importorskip("tomli")
    n_runs = len(expand(load_config(path)))
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "res"), "--backend",
                     "sequential", "--no-progress"]) == 0
    assert f"{n_runs} runs done, 0 already there" in capsys.readouterr().out
    table = results.load_table(tmp_path / "res" / "runs")
    assert table["run_id"].nunique() == n_runs
    assert set(table["problem"]) == {"batch-quadratic", "mf-rank4"}


def _kernel_toy(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "toy.txt"
    path.write_text("".join(f"{1 + i % 2} 1:{rng.normal():.4f} 2:{rng.normal():.4f}\n"
                            for i in range(150)))
    return path


def _run_options(name, tmp_path):
    """The --po options `paltest run NAME` needs here (none for most problems)."""
    from problems import datasets

    if name == "kernel-logreg":  # any LIBSVM file: its path and sigma are required
        return ["--po", f"path={_kernel_toy(tmp_path)}", "--po", "sigma=1.0"]
    if name not in datasets.DATASETS:
        return []
    data = os.environ.get("PALTEST_DATA")
    files = datasets.DATASETS[name].files
    if not data or not any((Path(data) / f).exists() for f in files):
        pytest.skip(f"{name}: {files} not in PALTEST_DATA (needs a download)")
    return ["--po", "n_rows=500"]  # a small kernel: the defaults are what is tested


@pytest.mark.parametrize("name", problems.names())
def test_run_works_at_its_defaults_for_every_problem(name, tmp_path, capsys):
    po = _run_options(name, tmp_path)
    code = cli.main(["run", name, "sgd", "--epochs", "1", "--out", str(tmp_path),
                     "--no-progress", *po])
    assert code == 0, capsys.readouterr().err
    (path,) = (tmp_path / "runs").glob("*.npz")
    r = results.load(path)
    problem = problems.get(name, **r.config["problem_options"])
    assert r.config["batch_size"] == problem.default_batch_size
    assert r.config["problem"] == name and r.config["epochs"] == 1


def test_plot_skips_a_damaged_result_file_naming_it(tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["run", "least-squares", "sgd", "--epochs", "2", "--seed", "1",
                     "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["run", "least-squares", "sgd", "--epochs", "2", "--out", str(out),
                     "--no-progress"]) == 0
    victim = sorted((out / "runs").glob("*.npz"))[0]
    data = bytearray(victim.read_bytes())
    header = data.index(b"{'descr': '<U")  # the header of the metadata array
    data[data.index(b"}", header) + 1] ^= 0x08  # one bit: a padding space -> "("
    victim.write_bytes(data)
    with pytest.warns(UserWarning, match=f"skipping {victim}"):
        assert cli.main(["plot", str(out)]) == 0
    assert (out / "curves.png").exists()


def test_bad_sweep_config_names_the_problem(tmp_path, capsys):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"epochs": 1, "batch_size": 1, "problems": ["quadratic"],
                               "optimizers": [{"name": "sgd",
                                               "hyperparameters": {"lr": -1}}]}))
    code, _, err = _exit(["sweep", str(cfg)], capsys)
    assert code == 2 and "config" in err and "lr" in err


def test_run_tiny(tmp_path, capsys):
    code = cli.main(["run", "mf-rank4", "pal", "--hp", "mu=0.1", "--epochs", "2",
                     "--seed", "3", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "pal on mf-rank4" in out and "train_loss" in out
    (path,) = (tmp_path / "runs").glob("*.npz")
    r = results.load(path)
    assert r.config["hyperparameters"]["mu"] == 0.1
    assert r.config["seed"] == 3 and r.config["epochs"] == 2
    assert r.config["problem_options"]["dtype"] == "float32"
    assert r.epochs["train_loss"][-1] < r.epochs["train_loss"][0]


@pytest.fixture(scope="module")
def quick8(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig8")
    t0 = time.perf_counter()
    code = cli.main(["figure", "8", "--quick", "--out", str(out), "--no-progress"])
    return code, out / "figure8-quick", time.perf_counter() - t0


def test_figure8_quick(quick8, capsys):
    code, folder, seconds = quick8
    assert code == 0
    for name in ("figure8.png", "figure8.pdf", "sensitivity_pal.png", "sensitivity_pal.pdf",
                 "sensitivity_sgd.png", "sensitivity_adam.png", "selection.json",
                 "summary.csv", "claims.json", "claims.md"):
        assert (folder / name).stat().st_size > 0, name
    table = results.load_table(folder / "runs")
    assert set(table["problem"]) == {"mf-true", "mf-rank1", "mf-rank4", "mf-rank10"}
    assert set(table["optimizer"]) == {"pal", "sls", "exact", "sgd", "adam"}
    assert set(table["dtype"]) == {"float32"}
    assert table["epoch"].max() == 2
    manifest = json.loads((folder / "selection.json").read_text())
    assert set(manifest["selection"]["mf-rank4"]) == {"pal", "sgd", "adam"}
    pal = manifest["selection"]["mf-rank4"]["pal"]
    assert [t["stage"] for t in pal["trials"]][:2] == ["grid", "grid"]  # mu in {0.1, 1}
    assert len(pal["trials"]) <= 3  # one extension at the quick scale
    assert manifest["floors"]["mf-rank4"] == pytest.approx(0.00935, abs=1e-5)
    assert seconds < 60


def test_figure8_quick_prints_summary_and_resumes(quick8, capsys):
    _, folder, _ = quick8
    n_files = len(list((folder / "runs").glob("*.npz")))
    code = cli.main(["figure", "8", "--quick", "--out", str(folder.parent), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(list((folder / "runs").glob("*.npz"))) == n_files  # nothing re-run
    assert "final training loss" in out and "chosen pal on mf-rank4: mu=" in out
    assert "[not measurable at this scale] 8-floor/mf-rank4" in out  # the verdicts
    assert "claims.md" in out and "summary.csv" in out
    assert "figure8.png" in out and "figure8.pdf" in out
    for name in ("pal", "sls", "exact", "sgd", "adam", "mf-rank10"):
        assert name in out


def test_plot_figure_folder(quick8, tmp_path, capsys):
    _, folder, _ = quick8
    code = cli.main(["plot", str(folder), "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "figure8.png").exists() and (tmp_path / "figure8.pdf").exists()
    assert (tmp_path / "claims.md").exists() and (tmp_path / "summary.csv").exists()
    assert "chosen pal" in capsys.readouterr().out
    assert cli.main(["plot", str(folder), "--out", str(tmp_path), "--x", "seconds"]) == 0
    assert (tmp_path / "figure8_seconds.png").exists()


def test_figure_x_evaluations(tmp_path, capsys):
    code = cli.main(["figure", "8", "--quick", "--out", str(tmp_path), "--no-progress",
                     "--optimizers", "pal,sgd", "--x", "evaluations"])
    assert code == 0
    assert (tmp_path / "figure8-quick" / "figure8_evaluations.png").exists()


def test_plot_damaged_selection_exits_1(quick8, tmp_path, capsys):
    import shutil

    _, folder, _ = quick8
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "selection.json").write_text('{"format_version": 2, "plan": {')
    code = cli.main(["plot", str(copy)])
    err = capsys.readouterr().err
    assert code == 1 and "selection.json" in err and "paltest figure" in err


def test_sweep_tiny_json_then_plot(tmp_path, capsys):
    cfg = tmp_path / "grid.json"
    cfg.write_text(json.dumps({
        "epochs": 2, "batch_size": 1, "seeds": 2,
        "problems": [{"name": "quadratic", "options": {"n": 3}}],
        "optimizers": [{"name": "sgd", "hyperparameters": {"lr": [0.1, 0.2]}}, "pal"]}))
    out = tmp_path / "res"
    assert cli.main(["sweep", str(cfg), "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "6 runs done, 0 already there" in text and "quadratic" in text
    assert len(list((out / "runs").glob("*.npz"))) == 6
    assert cli.main(["sweep", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert "0 runs done, 6 already there" in capsys.readouterr().out
    assert cli.main(["plot", str(out)]) == 0
    assert (out / "curves.png").exists() and (out / "curves.pdf").exists()
    assert cli.main(["plot", str(out), "--x", "evaluations"]) == 0
    assert (out / "curves_evaluations.png").exists()


def test_sweep_summary_separates_configurations(tmp_path, capsys):
    cfg = tmp_path / "grid.json"
    cfg.write_text(json.dumps({
        "epochs": 2, "batch_size": 1, "seeds": 4,
        "problems": [{"name": "quadratic", "options": {"n": 3}}],
        "optimizers": [{"name": "pal", "hyperparameters": {"mu": [0.1, 1.0]}}]}))
    assert cli.main(["sweep", str(cfg), "--out", str(tmp_path), "--no-progress"]) == 0
    text = capsys.readouterr().out
    import pandas as pd

    summary = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(summary["hp_mu"]) == [0.1, 1.0]
    assert list(summary["n_seeds"]) == [4, 4]  # not one row of 8 seeds
    header = text.splitlines()[2]  # after the planned and the done counts
    assert "mu" in header and "n_seeds" in header


def test_figure9_quick_mushrooms(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PALTEST_DATA", data_dir)  # restored afterwards (--data-dir sets it)
    code = cli.main(["figure", "9", "--quick", "--dataset", "mushrooms", "--data-dir",
                     data_dir, "--out", str(tmp_path), "--no-progress",
                     "--optimizers", "pal,sls"])
    out = capsys.readouterr().out
    assert code == 0
    folder = tmp_path / "figure9-mushrooms-quick"
    assert (folder / "figure9.png").exists()
    table = results.load_table(folder / "runs")
    assert set(table["po_n_rows"]) == {500}
    assert "final test accuracy" in out and "9-mushrooms/mushrooms" in out
    assert "9-ijcnn" not in out.split("claims of Section 7")[0]


def test_figure9_missing_data_exits_1(tmp_path):
    # a fresh process: problems built by other tests are cached in this one
    env = {**os.environ, "PALTEST_DATA_URL": "file:///nonexistent/",
           "PALTEST_DATA": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-m", "paltest.cli", "figure", "9", "--quick",
                          "--dataset", "mushrooms", "--out", str(tmp_path), "--no-progress"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 1
    assert "paltest: error:" in out.stderr and "mushrooms" in out.stderr


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "paltest.cli", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "figure" in out.stdout
