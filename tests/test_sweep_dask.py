"""Sweeps and figures on Dask as users run them (issue 29): a local cluster of worker
processes started for the sweep, and a ``dask scheduler`` with ``dask worker`` processes
started in other directories, reached with ``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``.
Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("pandas")

#: Namespace-free (about 10 s): CI's JAX and PyTorch legs leave them to the first leg.
pytestmark = pytest.mark.slow

from paltest import cli  # noqa: E402
from paltest.testbed import experiments, results  # noqa: E402
from paltest.testbed.sweep import expand, sweep  # noqa: E402

GRID = {
    "epochs": 2, "batch_size": 10, "seeds": [0, 1],
    "problems": [{"name": "batch-quadratic", "options": {"n": 5, "n_batches": 40}}],
    "optimizers": [{"name": "pal", "hyperparameters": {"mu": [0.1, 1.0]}}, {"name": "sgd"}],
}
N_RUNS = 6
ENV = "DASK_SCHEDULER_ADDRESS"


def _numbers(path):
    r = results.load(path)
    out = {f"e/{k}": v.tobytes() for k, v in r.epochs.items() if k not in results.TIMING_ARRAYS}
    return out | {f"s/{k}": v.tobytes() for k, v in r.steps.items()}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential")
    assert sweep(GRID, out, backend="sequential").ran == N_RUNS
    return out


def _assert_same_runs(a, b):
    names = sorted(p.name for p in Path(a).glob("*.npz"))
    assert len(names) == N_RUNS and names == sorted(p.name for p in Path(b).glob("*.npz"))
    for name in names:
        assert _numbers(Path(a) / name) == _numbers(Path(b) / name), name


def test_without_a_scheduler_a_local_cluster_of_processes_runs_the_sweep(sequential,
                                                                          tmp_path,
                                                                          monkeypatch):
    """``backend="dask"`` with no scheduler, no client and no DASK_SCHEDULER_ADDRESS used
    to fail ("To use Joblib with Dask first create a Dask Client"); it now starts a
    ``LocalCluster(processes=True)`` of ``n_jobs`` workers, closed at the end. The runs
    are bitwise those of a sequential sweep."""
    monkeypatch.delenv(ENV, raising=False)
    summary = sweep(GRID, tmp_path, backend="dask", n_jobs=2)
    assert summary.ran == N_RUNS
    _assert_same_runs(sequential, tmp_path)
    with pytest.raises(ValueError):
        distributed.default_client()  # the cluster and its client were closed


# -- a scheduler and workers started elsewhere ------------------------------------------


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """A ``dask scheduler`` and a ``dask worker`` (2 processes, 1 thread each), each
    started in a directory of its own; yields the scheduler's address and the workers'
    directory. Both exit with the module (and on their own when left idle)."""
    sched_dir = tmp_path_factory.mktemp("scheduler")
    worker_dir = tmp_path_factory.mktemp("workers")
    info = sched_dir / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop(ENV, None)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(info), "--idle-timeout", "120s"],
        cwd=sched_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_for(info, procs[0])
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--host", "127.0.0.1",
             "--nworkers", "2", "--nthreads", "1", "--no-dashboard", "--death-timeout", "30",
             "--local-directory", str(worker_dir)],
            cwd=worker_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, worker_dir
        with distributed.Client(address, timeout=20) as client:
            client.shutdown()  # the scheduler and the workers, at once
        for proc in procs:
            proc.wait(timeout=20)
    finally:
        for proc in reversed(procs):  # only if something above failed
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_a_sweep_on_workers_in_another_directory_lands_in_the_clients_out(
        remote, sequential, tmp_path, monkeypatch, capsys):
    """The workers used to save each result where they stood: the sweep said "ran 24",
    the client saw 0 files, and a rerun computed all again. Now the results come back
    and are written into the client's (relative) --out; the rerun, through
    DASK_SCHEDULER_ADDRESS, skips them all."""
    address, worker_dir = remote
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV, raising=False)
    Path("grid.json").write_text(json.dumps(GRID))
    argv = ["sweep", "grid.json", "--out", "res", "--no-progress"]
    assert cli.main([*argv, "--scheduler", address]) == 0
    out = capsys.readouterr().out
    assert f"sweep: {N_RUNS} runs done, 0 already there" in out
    assert {p.stem for p in Path("res/runs").glob("*.npz")} == \
        {results.run_id(c) for c in expand(GRID)}
    assert not any(worker_dir.rglob("*.npz"))
    _assert_same_runs(sequential, tmp_path / "res" / "runs")
    monkeypatch.setenv(ENV, address)
    assert cli.main([*argv, "--backend", "dask"]) == 0
    assert f"sweep: 0 runs done, {N_RUNS} already there" in capsys.readouterr().out


def test_a_figure_on_workers_in_another_directory(remote, tmp_path, monkeypatch):
    """run_figure on such workers failed with IncompleteResultError (its selection read
    files the workers had written elsewhere); now it completes and reloads."""
    address, worker_dir = remote
    monkeypatch.chdir(tmp_path)
    p = experiments.plan(8, problems=["mf-rank4"], optimizers=["sgd", "sls"], seeds=2,
                         epochs=1, quick=True)
    result = experiments.run_figure(p, "fig", backend="dask", scheduler=address)
    assert len(result.table["run_id"].unique()) == 4  # 2 optimizers x 2 seeds
    assert experiments.load_figure("fig").selection == result.selection
    assert not any(worker_dir.rglob("*.npz"))


def test_a_line_figure_on_workers_in_another_directory(remote, tmp_path, monkeypatch):
    """A line figure (Figure 1, quick, two problems) on the remote workers: the sampled
    runs and their lines come back and are saved in the client's directory, and its
    tables are those of the same figure run sequentially."""
    import pandas as pd

    from paltest.testbed import line_figures as lf

    address, worker_dir = remote
    monkeypatch.chdir(tmp_path)
    p = lf.line_plan(1, quick=True, problems=["mlp-digits", "mf-rank4"], epochs=1)
    here = lf.run_line_figure(p, "seq", backend="sequential")
    there = lf.run_line_figure(p, "dask", backend="dask", scheduler=address)
    assert sorted(q.name for q in Path("dask/line-runs").iterdir()) == \
        sorted(q.name for q in Path("seq/line-runs").iterdir())
    assert not any(worker_dir.rglob("*.npz"))
    for name in ("lines", "points", "epochs"):
        a, b = getattr(here, name), getattr(there, name)
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_an_unreachable_scheduler_is_a_usage_error(tmp_path, monkeypatch, capsys):
    import dask

    monkeypatch.chdir(tmp_path)
    Path("grid.json").write_text(json.dumps(GRID))
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(SystemExit) as info:
        cli.main(["sweep", "grid.json", "--scheduler", "tcp://127.0.0.1:9", "--no-progress"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "paltest sweep: error: --scheduler: cannot connect to the Dask scheduler " \
           "'tcp://127.0.0.1:9'" in err
    assert not Path("results/runs").exists() or not any(Path("results/runs").iterdir())


def test_paltest_profile_on_dask_saves_on_the_client(tmp_path, monkeypatch, capsys):
    """``paltest profile --backend dask`` (merged with the same traceback as sweep and
    figure) runs on a local cluster and saves the runs on the client."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    argv = ["profile", "--problems", "quadratic,least-squares", "--solvers", "pal,sgd",
            "--out", "prof", "--no-progress"]
    assert cli.main([*argv, "--backend", "dask", "--jobs", "2"]) == 0
    files = sorted(p.name for p in Path("prof").rglob("*.npz"))
    assert files
    capsys.readouterr()
    assert cli.main([*argv, "--backend", "sequential"]) == 0  # resumes: nothing to run
    assert sorted(p.name for p in Path("prof").rglob("*.npz")) == files
