"""The command line on the bad inputs and failures of audit 2: never a traceback; exit 2
with a message naming the argument for bad input (before anything runs), exit 1 naming
the run or file for a failure during work."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pandas")

from paltest import cli  # noqa: E402
from paltest.testbed import results  # noqa: E402

HUGE = "1" + "0" * 400
GRID = {"epochs": 1, "batch_size": 1, "seeds": 2,
        "problems": [{"name": "quadratic", "options": {"n": 3}}],
        "optimizers": [{"name": "sgd", "hyperparameters": {"lr": 0.1}}]}


def _main(argv, capsys):
    """``(exit status, stdout, stderr)`` of ``paltest argv``, whether it exits or returns."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def _must_not_run(*args, **kwargs):
    raise AssertionError("a run started for a bad input")


@pytest.fixture
def grid_file(tmp_path):
    def write(grid, name="grid.json", text=None):
        path = tmp_path / name
        path.write_text(text if text is not None else json.dumps(grid))
        return str(path)
    return write


@pytest.mark.parametrize(("argv", "words"), [
    (["run", "quadratic", "sgd", "--hp", f"lr={HUGE}"],  # N1: OverflowError
     "--hp: optimizer 'sgd': lr: must be finite, got an int of 401 digits"),
    (["run", "quadratic", "sgd", "--po", f"kappa={HUGE}"], "--po: kappa: must be finite"),
    (["run", "mushrooms", "sgd", "--po", f"blas_threads={HUGE}"],  # was a ctypes error
     "--po: blas_threads: at most 2147483647"),
    (["run", "mushrooms", "sgd", "--po", "download=no"], "--po: download: expected a bool"),
    (["run", "mushrooms", "sgd", "--po", "base_url=5"], "--po: base_url: expected a URL"),
    (["run", "quadratic", "sgd", "--epochs", "-1"], "--epochs: expected an integer >= 0"),
    (["sweep", "GRID", "--jobs", "1" + "0" * 30], "--jobs: expected an integer from 1 to"),
    (["figure", "8", "--jobs", "100000"], "--jobs: expected an integer from 1 to 1024"),
    (["figure", "8", "--seeds", "99999999999"],  # N2: MemoryError
     "--seeds: 3,999,999,999,960 runs planned, more than max_runs=10,000"),
    (["figure", "1", "--seeds", "99999999999"], "--seeds: 299,999,999,997 runs planned"),
    (["figure", "8", "--seeds", "0-99999999999"], "--seeds: a range of 100,000,000,000"),
    (["figure", "8", "--epochs", "0"], "--epochs: expected a positive integer"),
    (["sweep", "GRID", "--backend", "loky", "--scheduler", "tcp://127.0.0.1:1"],
     "--scheduler: only with --backend dask, not loky"),
])
def test_bad_input_exits_2_naming_the_argument(argv, words, grid_file, monkeypatch, capsys):
    monkeypatch.setattr("paltest.testbed.runner.run", _must_not_run)
    argv = [grid_file(GRID) if a == "GRID" else a for a in argv]
    code, _, err = _main(argv, capsys)
    assert code == 2 and words in err, err


@pytest.mark.parametrize(("grid", "words"), [
    (dict(GRID, seeds=10**12), "grid: 1,000,000,000,000 runs planned"),  # N2: MemoryError
    (dict(GRID, seeds=1_000_000), "1,000,000 runs planned, more than max_runs=10,000"),  # N3
    (dict(GRID, extra={"x": float("nan")}), "extra: not JSON-able"),  # N14
])
def test_grids_too_large_or_not_json_able_are_refused_up_front(grid, words, grid_file,
                                                               tmp_path, capsys):
    """N3: a million seeds expanded silently for 90 s at 2.2 GB before the first run; now
    the count is given and the grid refused unless --max-runs allows it."""
    path = grid_file(grid)
    code, _, err = _main(["sweep", path, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "paltest sweep: error: config: " in err and words in err, err
    assert "config: config:" not in err  # N14: "config: config: not JSON-able"
    assert not (tmp_path / "o" / "runs").exists()


def test_max_runs_confirms_a_larger_grid(grid_file, tmp_path, capsys):
    path = grid_file(dict(GRID, seeds=3))
    code, _, err = _main(["sweep", path, "--out", str(tmp_path), "--max-runs", "2"], capsys)
    assert code == 2 and "3 runs planned, more than max_runs=2" in err
    code, out, _ = _main(["sweep", path, "--out", str(tmp_path), "--max-runs", "3",
                          "--no-progress"], capsys)
    assert code == 0 and out.startswith("sweep: 3 runs planned")


def test_json_keys_given_twice_are_refused(grid_file, tmp_path, capsys):
    """N14: JSON kept the last of two equal keys silently (TOML refuses them)."""
    text = json.dumps(GRID)[:-1] + ', "seeds": 50}'
    code, _, err = _main(["sweep", grid_file(None, text=text), "--out", str(tmp_path)],
                         capsys)
    assert code == 2 and "the key 'seeds' is given twice in one object" in err


def test_a_diverging_run_of_a_sweep_is_named_and_the_others_complete(grid_file, tmp_path,
                                                                      capsys):
    """N12: ``on_nonfinite="raise"`` in a grid aborted the whole sweep with a traceback
    (1-2 of 4 runs saved, the failing one not named). Now every other run completes and
    is saved, the summary is written, and the failed run is named: exit 1."""
    grid = {"epochs": 3, "batch_size": 1, "seeds": 2,
            "problems": [{"name": "quadratic", "options": {"n": 3, "kappa": 10.0}}],
            "optimizers": [{"name": "sgd", "hyperparameters": {
                "lr": [0.01, 1e200], "on_nonfinite": "raise"}}]}
    code, out, err = _main(["sweep", grid_file(grid), "--out", str(tmp_path), "--backend",
                            "sequential", "--no-progress"], capsys)
    assert code == 1
    saved = results.completed_ids(tmp_path / "runs")
    assert len(saved) == 2 and "sweep: 2 runs done" in out
    assert (tmp_path / "summary.csv").is_file()
    assert "paltest: error: 2 of 4 runs failed" in err and "NonFiniteError" in err
    for line in [x for x in err.splitlines() if x.startswith("  run ")]:
        assert "sgd(lr=1e+200" in line and line.split()[1] not in saved


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy on the way to the overflow
def test_a_diverging_run_names_itself(capsys, tmp_path):
    code, _, err = _main(["run", "quadratic", "sgd", "--hp", "lr=1e200", "--hp",
                          'on_nonfinite="raise"', "--out", str(tmp_path), "--no-progress"],
                         capsys)
    assert code == 1
    assert "paltest: error: run sgd on quadratic (seed 0): NonFiniteError" in err


def test_out_of_memory_is_a_failure_not_a_traceback(capsys, tmp_path, monkeypatch):
    """N13: ``paltest run quadratic sgd --po n=100000000`` printed a MemoryError
    traceback. (The factory is made to run out of memory here: a real attempt would
    depend on the machine.)"""
    import problems

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 PiB")

    monkeypatch.setattr(problems, "get", no_memory)
    code, _, err = _main(["run", "quadratic", "sgd", "--po", "n=100000000", "--out",
                          str(tmp_path)], capsys)
    assert code == 1
    assert "problem quadratic with --po xp='numpy' dtype='float32' n=100000000: out of " \
           "memory" in err


def test_zero_epochs_is_accepted_by_run_as_by_the_library(capsys, tmp_path):
    """``--epochs 0`` was refused by ``paltest run`` while ``run(epochs=0)`` and grids
    accept it (the start alone is evaluated); ``--epochs 0`` also no longer means 10."""
    code, out, _ = _main(["run", "quadratic", "sgd", "--epochs", "0", "--out", str(tmp_path),
                          "--no-progress"], capsys)
    assert code == 0 and "after 0 epochs" in out
    (path,) = (tmp_path / "runs").glob("*.npz")
    assert results.load(path).config["epochs"] == 0
