"""Sweeps: grid expansion, joblib backends (incl. Dask), resume after SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paltest.testbed import results
from paltest.testbed.results import load, load_table
from paltest.testbed.runner import run
from paltest.testbed.sweep import GridError, backends, expand, load_config, sweep

TIMING = results.TIMING_ARRAYS

GRID = {
    "epochs": 3, "batch_size": 10, "seeds": [0, 1],
    "problems": [{"name": "batch-quadratic", "options": {"n": 5, "n_batches": 40}}],
    "optimizers": [{"name": "pal", "hyperparameters": {"mu": [0.1, 1.0]}},
                   {"name": "sls"}],
}
N_RUNS = 6  # (2 PAL settings + SLS) x 2 seeds


def numbers(result):
    """Every logged number of a run except the timings."""
    out = {f"e/{k}": v for k, v in result.epochs.items() if k not in TIMING}
    out.update({f"s/{k}": v for k, v in result.steps.items()})
    return out


def assert_same_numbers(dir_a, dir_b):
    files_a = sorted(p.name for p in Path(dir_a).glob("*.npz"))
    assert files_a == sorted(p.name for p in Path(dir_b).glob("*.npz"))
    for name in files_a:
        a, b = numbers(load(Path(dir_a) / name)), numbers(load(Path(dir_b) / name))
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), (name, k)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential")
    summary = sweep(GRID, out, backend="sequential")
    assert summary.ran == N_RUNS and summary.skipped == 0
    return out


def test_expand_counts_and_validates():
    configs = expand(GRID)
    assert len(configs) == N_RUNS
    assert len({results.run_id(c) for c in configs}) == N_RUNS
    assert {c["optimizer"] for c in configs} == {"pal", "sls"}
    assert all(c["problem_options"]["xp"] == "numpy" for c in configs)
    grid = dict(GRID, seeds=3, batch_size=1,
                problems=["quadratic", {"name": "quadratic", "epochs": 1}])
    assert len(expand(grid)) == 2 * 3 * 3
    with pytest.raises(GridError, match="epoch: unknown key"):
        expand(dict(GRID, epoch=3))
    with pytest.raises(GridError, match="'pal'.*learning_rate"):
        expand(dict(GRID, optimizers=[{"name": "pal", "hyperparameters": {"learning_rate": 1}}]))
    with pytest.raises(GridError, match=r"problems\[0\]\.epochs: not given"):
        expand({"problems": ["quadratic"], "optimizers": ["sgd"], "batch_size": 1})
    with pytest.raises(GridError, match="seeds"):
        expand(dict(GRID, seeds=[]))
    with pytest.raises(GridError, match="optimizers"):
        expand(dict(GRID, optimizers=[]))


BAD_GRID = {
    "epochs": -1, "batch_size": 10, "seeds": [-1],
    "problems": ["nonexistent",
                 {"name": "batch-quadratic", "options": {"dtype": "int8"}},
                 {"name": "batch-quadratic", "options": {"foo": 1}},
                 {"name": "least-squares", "batch_size": 0},
                 {"name": "least-squares", "batch_size": 101, "epochs": 1},
                 {"name": "quadratic", "epochs": 2}],
    "optimizers": ["nope", {"name": "sgd", "hyperparameters": {"lr": [0.1, -1.0]}}],
}


def test_every_bad_entry_of_a_grid_is_reported_at_once():
    with pytest.raises(GridError) as info:
        expand(BAD_GRID)
    errors = info.value.errors
    expected = [  # (key the message starts with, words it contains), in grid order
        ("epochs:", "must be >= 0, got -1"),
        ("seeds:", "got [-1]"),
        ("problems[0]:", "unknown problem 'nonexistent'"),
        ("problems[1].options {'dtype': 'int8'}:", "dtype: must be one of"),
        ("problems[2].options {'foo': 1}:", "foo: unknown option(s) of problem"),
        ("problems[3].batch_size:", "must be >= 1, got 0"),
        ("problems[4].batch_size:", "101 exceeds the training set size 100"),
        ("batch_size:", "10 exceeds the training set size 1 of problems[5] 'quadratic'"),
        ("optimizers[0]:", "unknown optimizer 'nope'"),
        ("optimizers[1].hyperparameters {'lr': -1.0}:", "lr: must be > 0"),
    ]
    assert len(errors) == len(expected), errors
    for message, (key, words) in zip(errors, expected, strict=True):
        assert message.startswith(key) and words in message, message
    assert str(info.value).startswith(f"grid: {len(expected)} invalid entries:")


@pytest.mark.parametrize("key, value, words", [
    ("epochs", 1.7, "epochs: expected an int, got 1.7"),
    ("epochs", True, "epochs: expected an int, got True"),
    ("epochs", "abc", "epochs: expected an int, got 'abc'"),
    ("batch_size", 99.5, "batch_size: expected an int, got 99.5"),
    ("batch_size", 2.0, "batch_size: expected an int, got 2.0"),
    ("seeds", 0, "seeds: expected a count >= 1"),
    ("seeds", -3, "seeds: expected a count >= 1"),
    ("seeds", 1.5, "seeds: expected a count >= 1"),
    ("extra", "label", "extra: must be a dict"),
])
def test_grid_values_are_never_rounded(key, value, words):
    grid = {"epochs": 2, "batch_size": 1, "problems": [{"name": "least-squares"}],
            "optimizers": ["sgd"], key: value}
    with pytest.raises(GridError) as info:
        expand(grid)
    assert len(info.value.errors) == 1 and info.value.errors[0].startswith(words)


def test_make_config_rejects_non_integers():
    for key, value in (("epochs", 1.7), ("batch_size", True), ("seed", "3")):
        args = {"epochs": 1, "batch_size": 1, "seed": 0, key: value}
        with pytest.raises(TypeError, match=f"^{key}: expected an int"):
            results.make_config("quadratic", {}, "sgd", {}, **args)


def test_a_bad_grid_fails_before_anything_runs(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(GridError):
        sweep(dict(GRID, seeds=0), out, backend="sequential")
    assert not out.exists()
    with pytest.raises(ValueError, match=r"backend: unknown joblib backend 'nope' "
                                         r"\(Invalid backend: nope, .*'loky'"):
        sweep(GRID, out, backend="nope")
    assert not out.exists()
    assert {"loky", "threading", "sequential", "dask"} <= set(backends())


def test_kernel_problem_options_and_batch_size_are_checked_without_a_kernel(
        data_dir, monkeypatch):
    from problems import kernel_logreg

    monkeypatch.setenv("PALTEST_DATA", data_dir)

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was computed to validate a grid")

    monkeypatch.setattr(kernel_logreg, "rbf_kernel", no_kernel)
    grid = {"epochs": 1, "batch_size": 200, "optimizers": ["sgd"], "problems": [
        {"name": "mushrooms", "options": {"n_rows": 1000}},
        {"name": "mushrooms", "options": {"n_rows": 200}},
        {"name": "mushrooms", "options": {"mode": "precompute", "memory_budget": 1e6}},
        {"name": "mushrooms", "options": {"mode": "nope"}}]}
    with pytest.raises(GridError) as info:
        expand(grid)
    errors = info.value.errors
    assert len(errors) == 3, errors
    assert errors[0].startswith("batch_size: 200 exceeds the training set size 160 of "
                                "problems[1] 'mushrooms'")
    assert errors[1].startswith("problems[2].options") and "memory_budget:" in errors[1]
    assert errors[2].startswith("problems[3].options {'mode': 'nope'}: mode: must be one of")


def test_sweep_matches_run_and_resumes(sequential, tmp_path):
    table = load_table(sequential)
    assert table.shape[0] == N_RUNS * (GRID["epochs"] + 1)
    assert set(table["hp_mu"].dropna()) == {0.1, 1.0}
    # A result of the sweep equals a direct run of the same config, bit for bit.
    cfg = expand(GRID)[0]
    direct = run(cfg["problem"], cfg["optimizer"], epochs=cfg["epochs"],
                 batch_size=cfg["batch_size"], seed=cfg["seed"],
                 problem_options={"n": 5, "n_batches": 40}, hyperparameters={"mu": 0.1})
    assert direct.run_id == results.run_id(cfg)
    swept = load(Path(sequential) / f"{direct.run_id}.npz")
    assert swept.config == direct.config
    for k, v in numbers(direct).items():
        assert v.tobytes() == numbers(swept)[k].tobytes(), k
    again = sweep(GRID, sequential, backend="sequential")
    assert again.ran == 0 and again.skipped == N_RUNS and again.seconds == {}


def test_summary_has_the_seconds_of_the_runs_it_ran(tmp_path):
    summary = sweep(GRID, tmp_path, n_jobs=2, backend="threading")
    assert sorted(summary.seconds) == sorted(summary.run_ids)
    for rid, sec in summary.seconds.items():
        assert sec == load(tmp_path / f"{rid}.npz").timings["total"] and sec > 0


def test_a_damaged_result_file_is_skipped_and_run_again(sequential, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(sequential, out)
    victim = sorted(out.glob("*.npz"))[0]
    data = bytearray(victim.read_bytes())
    header = data.index(b"{'descr': '<U")  # the header of the metadata array
    data[data.index(b"}", header) + 1] ^= 0x08  # one bit: a padding space -> "("
    victim.write_bytes(data)
    with pytest.warns(UserWarning, match=f"skipping {victim}: not a complete result file"):
        summary = sweep(GRID, out, backend="sequential")
    assert summary.ran == 1 and summary.skipped == N_RUNS - 1
    assert_same_numbers(sequential, out)  # the rerun wrote the same numbers


def test_threading_backend_and_config_file(sequential, tmp_path):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(GRID))
    assert load_config(path) == GRID
    out = tmp_path / "out"
    summary = sweep(path, out, n_jobs=2, backend="threading", progress=True)
    assert summary.ran == N_RUNS
    assert_same_numbers(sequential, out)


def test_load_config_toml(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('epochs = 2\nbatch_size = 1\nseeds = [0]\n'
                    'problems = ["quadratic"]\n'
                    '[[optimizers]]\nname = "sgd"\nhyperparameters = { lr = [0.1, 0.2] }\n')
    if sys.version_info < (3, 11):
        pytest.importorskip("tomli")
    grid = load_config(path)
    assert grid["optimizers"][0]["hyperparameters"]["lr"] == [0.1, 0.2]
    assert len(expand(grid)) == 2
    with pytest.raises(ValueError, match="path"):
        load_config(tmp_path / "grid.yaml")


def test_dask_backend_matches_sequential(sequential, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        summary = sweep(GRID, tmp_path, n_jobs=2, backend="dask")
    assert summary.ran == N_RUNS
    assert_same_numbers(sequential, tmp_path)


SCRIPT = """
import sys
from paltest.testbed.sweep import sweep
sweep(sys.argv[1], sys.argv[2], backend="sequential")
"""

SLOW_GRID = {
    "epochs": 12, "batch_size": 1, "seeds": 4,
    "problems": [{"name": "batch-quadratic", "options": {"n": 5, "n_batches": 200}}],
    "optimizers": [{"name": "pal", "hyperparameters": {"mu": [0.1, 1.0]}}],
}


def test_sweep_killed_with_sigkill_finishes_on_restart(tmp_path):
    grid_path = tmp_path / "grid.json"
    grid_path.write_text(json.dumps(SLOW_GRID))
    out = tmp_path / "out"
    expected = {results.run_id(c) for c in expand(SLOW_GRID)}
    assert len(expected) == 8
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(grid_path), str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and any(out.glob("*.npz"))):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no result appeared within 60 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    before = results.completed_ids(out)
    assert 1 <= len(before) < len(expected), "the kill came too late to test resuming"
    # What a killed writer may leave: a temp file and a truncated file of a missing run.
    missing = sorted(expected - before)
    (out / f".tmp-{missing[0]}-dead.part").write_bytes(b"PK\x03\x04partial")
    (out / f"{missing[1]}.npz").write_bytes(b"PK\x03\x04partial")
    with pytest.warns(UserWarning, match=f"skipping {out / missing[1]}.npz"):
        summary = sweep(grid_path, out, backend="sequential")
    assert summary.skipped == len(before) and summary.ran == len(expected) - len(before)
    finals = sorted(p.stem for p in out.glob("*.npz") if not p.name.startswith("."))
    assert finals == sorted(expected)  # every run exactly once
    for rid in finals:
        r = load(out / f"{rid}.npz")
        assert r.run_id == rid and len(r.epochs["train_loss"]) == SLOW_GRID["epochs"] + 1
        assert np.all(np.isfinite(r.epochs["train_loss"]))
    assert load_table(out).shape[0] == len(expected) * (SLOW_GRID["epochs"] + 1)


def test_loky_default_backend(sequential, tmp_path):
    grid = dict(GRID, optimizers=[{"name": "sls"}])
    summary = sweep(grid, tmp_path, n_jobs=2)  # the default backend: loky processes
    assert summary.ran == 2
    for rid in summary.run_ids:
        a, b = numbers(load(tmp_path / f"{rid}.npz")), numbers(load(sequential / f"{rid}.npz"))
        assert all(a[k].tobytes() == b[k].tobytes() for k in a)


def _libsvm_file(path, n, d=3, seed=0):
    from sklearn.datasets import dump_svmlight_file

    X = np.random.default_rng(seed).normal(size=(n, d))
    dump_svmlight_file(X, 1 + np.arange(n) % 2, str(path))
    return path


def test_loky_workers_keep_a_big_problem_they_built(tmp_path):
    """loky exits a worker whose memory grew 300 MB since its first task (a "leak"): a
    worker that ran a small problem first and then built a kernel problem (here 410 MB of
    kernels) was replaced after its first kernel run, and the kernels built again. The
    workers now allow what their kept problems hold: no worker stops."""
    import warnings

    path = _libsvm_file(tmp_path / "big.txt", 8000)
    grid = {"epochs": 1, "batch_size": 3200, "seeds": 6,
            "problems": [{"name": "quadratic", "options": {"n": 3}, "seeds": 2,
                          "batch_size": 1},
                         {"name": "kernel-logreg", "options": {
                             "path": str(path), "sigma": 1.0, "mode": "precompute",
                             "memory_budget": 2e9}}],
            "optimizers": [{"name": "sgd", "hyperparameters": {"lr": 0.1}}]}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert sweep(grid, tmp_path / "runs", n_jobs=2).ran == 8
    stopped = [str(w.message) for w in seen if "worker stopped" in str(w.message)]
    assert not stopped


def test_kept_memory_allowance_grows_by_the_kept_kernels(monkeypatch, tmp_path):
    from joblib.externals.loky import process_executor

    from paltest.testbed import sweep as sweep_module

    monkeypatch.setattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", 300_000_000)
    sweep_module._problem.cache_clear()
    path = _libsvm_file(tmp_path / "toy.txt", 50)
    prob = sweep_module._problem("kernel-logreg", json.dumps({"path": str(path),
                                                              "sigma": 1.0}))
    assert prob.kernel_bytes > 0
    assert process_executor._MAX_MEMORY_LEAK_SIZE == 300_000_000 + prob.kernel_bytes
    sweep_module._problem("quadratic", json.dumps({"n": 3}))  # keeps no kernel
    assert process_executor._MAX_MEMORY_LEAK_SIZE == 300_000_000 + prob.kernel_bytes
    sweep_module._problem.cache_clear()


def test_the_installed_loky_still_has_the_leak_limit_paltest_raises():
    """loky has no public setting for its worker leak check; paltest raises its
    module-level limit (guarded). If a joblib upgrade renames or drops it, this fails in
    CI rather than the workers silently rebuilding their kernels again."""
    from joblib.externals.loky import process_executor

    from paltest.testbed import sweep as sweep_module

    assert type(getattr(process_executor, sweep_module._LOKY_LIMIT)) is int
    assert sweep_module._LOKY_WORKER == process_executor.__name__


def test_without_the_leak_limit_a_warning_says_what_is_lost(monkeypatch):
    """The guarded fallback: no (integer) limit in loky, no change and one clear warning;
    no loky loaded (another backend), nothing at all."""
    import sys
    import types

    from paltest.testbed import sweep as sweep_module

    fake = types.ModuleType(sweep_module._LOKY_WORKER)
    monkeypatch.setitem(sys.modules, sweep_module._LOKY_WORKER, fake)
    with pytest.warns(RuntimeWarning, match="may take the kernels they keep for a leak"):
        assert sweep_module._allow_kept_memory(10**9) is False
    fake._MAX_MEMORY_LEAK_SIZE = "300MB"  # another type: left alone
    with pytest.warns(RuntimeWarning):
        assert sweep_module._allow_kept_memory(10**9) is False
    assert fake._MAX_MEMORY_LEAK_SIZE == "300MB"
    fake._MAX_MEMORY_LEAK_SIZE = 3 * 10**8
    assert sweep_module._allow_kept_memory(10**9) is True
    assert fake._MAX_MEMORY_LEAK_SIZE == 13 * 10**8
    assert sweep_module._allow_kept_memory(0) is False
    monkeypatch.delitem(sys.modules, sweep_module._LOKY_WORKER)
    assert sweep_module._allow_kept_memory(10**9) is False
