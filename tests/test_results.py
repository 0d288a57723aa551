"""Result files: run ids, atomic save, validated load, the tidy table and step arrays."""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
import zipfile

import numpy as np
import pytest

import problems
from paltest.testbed import results
from paltest.testbed.results import IncompleteResultError, load, load_steps, load_table, save
from paltest.testbed.runner import run

EPOCHS = 2


@pytest.fixture(scope="module")
def runs():
    prob = problems.get("mf-rank10", xp="numpy")
    out = [run(prob, "pal", epochs=EPOCHS, batch_size=100, seed=s) for s in (0, 1)]
    out.append(run(prob, "sgd", epochs=EPOCHS, batch_size=200, seed=0,
                   hyperparameters={"lr": 0.3, "momentum": 0.5}))
    return out


def test_run_id_is_a_stable_hash_of_the_config():
    cfg = results.make_config("mf-rank10", {"dtype": "float64"}, "sgd", {"lr": 0.1}, 3, 10, 0)
    same = results.make_config("mf-rank10", {"xp": "numpy"}, "sgd", {"lr": 0.1}, 3, 10, 0)
    assert cfg == same  # xp/dtype defaults filled in, key order irrelevant
    rid = results.run_id(cfg)
    assert len(rid) == 16 and rid == results.run_id(dict(reversed(list(cfg.items()))))
    other = results.make_config("mf-rank10", {}, "sgd", {"lr": 0.1}, 3, 10, 1)
    assert results.run_id(other) != rid
    with pytest.raises(TypeError, match="^problem_options: not JSON-able"):
        results.make_config("p", {"x": object()}, "sgd", {}, 1, 1, 0)


def assert_identical(a, b):
    assert a.config == b.config and a.environment == b.environment
    assert a.timings == b.timings and a.totals == b.totals
    for group in ("epochs", "steps"):
        x, y = getattr(a, group), getattr(b, group)
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, (group, k)
            assert x[k].tobytes() == y[k].tobytes(), (group, k)


def test_save_load_roundtrip(runs, tmp_path):
    r = runs[0]
    path = save(r, tmp_path)
    assert path.name == f"{r.run_id}.npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    back = load(path)
    assert back.run_id == r.run_id
    assert_identical(back, r)
    save(r, tmp_path)  # saving again replaces, one file per run
    assert len(list(tmp_path.iterdir())) == 1


def test_failed_write_leaves_nothing(runs, tmp_path, monkeypatch):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save(runs[0], tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert len(load_table(tmp_path)) == 0


def test_partial_and_temporary_files_are_never_read_as_complete(runs, tmp_path):
    good = save(runs[0], tmp_path)
    data = good.read_bytes()
    # A leftover temporary file (a killed writer) with complete contents is ignored.
    (tmp_path / f".tmp-{runs[1].run_id}-x.part").write_bytes(data)
    # A truncated file under a final name is rejected.
    bad = tmp_path / f"{runs[1].run_id}.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(IncompleteResultError):
        load(bad)
    # A well-formed file without the completeness marker is rejected.
    nomark = tmp_path / f"{runs[2].run_id}.npz"
    with np.load(good) as z:
        arrays = dict(z)
    meta = json.loads(str(arrays["__meta__"]))
    meta["complete"] = False
    arrays["__meta__"] = np.asarray(json.dumps(meta))
    np.savez(nomark, **arrays)
    with pytest.raises(IncompleteResultError, match="completeness"):
        load(nomark)
    # A file missing an array listed in its metadata is rejected.
    missing = tmp_path / f"{runs[2].run_id}-copy.npz"
    shutil.copy(good, missing)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(missing, "w") as dst:
        for item in src.infolist():
            if item.filename != "epochs/train_loss.npy":
                dst.writestr(item, src.read(item))
    with pytest.raises(IncompleteResultError):
        load(missing)
    with pytest.warns(UserWarning, match="skipping"):
        table = load_table(tmp_path)
    assert set(table["run_id"]) == {runs[0].run_id}
    with pytest.warns(UserWarning, match="skipping"):
        assert results.completed_ids(tmp_path) == {runs[0].run_id}
    with pytest.raises(IncompleteResultError):
        load_table(tmp_path, strict=True)


def test_a_renamed_file_is_not_counted_for_another_run(runs, tmp_path):
    good = save(runs[0], tmp_path)
    renamed = tmp_path / f"{runs[1].run_id}.npz"
    os.rename(good, renamed)
    with pytest.warns(UserWarning, match=f"skipping {renamed}: the file name is not"):
        assert results.completed_ids(tmp_path) == set()


def test_a_copy_beside_its_run_is_skipped_by_every_reader(runs, tmp_path):
    good = save(runs[0], tmp_path)
    backup = tmp_path / f"{runs[0].run_id}.bak.npz"
    shutil.copy(good, backup)
    for read in (results.completed_ids, load_steps, load_table):
        with pytest.warns(UserWarning, match=f"skipping {backup}: the file name is not"):
            out = read(tmp_path)
        ids = set(out["run_id"]) if read is load_table else set(out)
        assert ids == {runs[0].run_id}, read.__name__
    with pytest.warns(UserWarning):
        assert load_table(tmp_path).shape[0] == EPOCHS + 1  # the run counted once
    with pytest.raises(IncompleteResultError, match="bak.npz"):
        load_table(tmp_path, strict=True)


@pytest.fixture(scope="module")
def tiny():
    """A small real result (about 10 kB): one epoch of SGD on a 2-D quadratic."""
    return run("quadratic", "sgd", epochs=1, batch_size=1, seed=0,
               problem_options={"n": 2}, hyperparameters={"lr": 0.1})


@pytest.mark.slow  # namespace-free: CI's JAX and PyTorch legs leave it to the first leg
def test_every_flipped_bit_is_caught_or_harmless(tiny, tmp_path):
    """Flip one bit of every byte of a result file in turn (bit i mod 8 of byte i).

    Each load either gives back exactly the original run, or raises
    IncompleteResultError, and then load_table skips the file with a warning naming it.
    """
    data = save(tiny, tmp_path / "src").read_bytes()
    target = tmp_path / "runs" / f"{tiny.run_id}.npz"
    target.parent.mkdir()
    damaged = []
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        target.write_bytes(flipped)
        try:
            back = load(target)
        except IncompleteResultError:
            damaged.append(i)
        else:
            assert_identical(back, tiny)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = load_table(target.parent)
        assert table.empty, i
        assert [str(w.message).split(":")[0] for w in caught] == [f"skipping {target}"], i
    # Most bytes are under a CRC; the others are zip fields zipfile does not use.
    assert 0.8 * len(data) < len(damaged) < len(data)


def test_damage_to_a_listed_array_or_the_metadata_is_caught(tiny, tmp_path):
    path = save(tiny, tmp_path)
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    meta = json.loads(str(np.load(path)["__meta__"]))

    def rewrite(arrays_meta=None, **changes):
        m = dict(meta, **changes)
        if arrays_meta is not None:
            m["arrays"] = arrays_meta
        out = dict(members)
        with zipfile.ZipFile(path, "w") as z:
            for name, data in out.items():
                if name == "__meta__.npy":
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, np.asarray(json.dumps(m)))
                    data = buf.getvalue()
                z.writestr(name, data)

    for arrays_meta, changes, words in [
        (None, {"config": "x"}, "'config' is not a dict"),
        (None, {"timings": [1.0]}, "'timings' is not a dict"),
        ({**meta["arrays"], "other/x": [[2], "<f8"]}, {}, "missing or not listed"),
        ({k: ([[1, 2], v[1]] if k == "epochs/epoch" else v)
          for k, v in meta["arrays"].items()}, {}, "'epochs/epoch' does not match"),
    ]:
        rewrite(arrays_meta, **changes)
        with pytest.raises(IncompleteResultError, match=words):
            load(path)


def test_load_table_has_one_row_per_run_and_epoch(runs, tmp_path):
    for r in runs:
        save(r, tmp_path)
    table = load_table(tmp_path)
    assert table.shape[0] == len(runs) * (EPOCHS + 1)
    for col in ("run_id", "problem", "optimizer", "seed", "dtype", "xp", "batch_size",
                "epoch", "train_loss", "test_loss", "lr_mean", "lr_median", "n_fun",
                "n_grad", "wall_time", "hp_mu", "hp_lr", "hp_momentum"):
        assert col in table.columns, col
    sgd = table[table.optimizer == "sgd"].sort_values("epoch")
    assert list(sgd["hp_lr"]) == [0.3] * (EPOCHS + 1)
    assert list(sgd["n_grad"]) == [0, 4, 8] and sgd["batch_size"].iloc[0] == 200
    assert np.isnan(sgd["lr_mean"].iloc[0]) and sgd["lr_mean"].iloc[1] == pytest.approx(0.3)
    pal = table[(table.optimizer == "pal") & (table.seed == 1)].sort_values("epoch")
    np.testing.assert_array_equal(pal["train_loss"], runs[1].epochs["train_loss"])
    assert pal["hp_lr"].isna().all()
    steps = load_steps(tmp_path)
    assert set(steps) == {r.run_id for r in runs}
    assert len(steps[runs[0].run_id]["lr"]) == EPOCHS * 8
    assert load_table(tmp_path / "missing").shape[0] == 0


def test_environment_records_versions():
    import array_api_strict

    env = results.environment(array_api_strict, "cpu", "float32")
    assert env["backend"] == "array_api_strict" and env["dtype"] == "float32"
    assert env["versions"]["array_api_strict"] == array_api_strict.__version__
    for key in ("paltest", "numpy", "scipy", "array-api-compat"):
        assert env["versions"][key]
    assert env["python"] and env["platform"]


@pytest.mark.parametrize("threads", [1, 2])
def test_environment_records_the_thread_counts(threads):
    """Issue 12 D14: results can differ in the last bits between BLAS thread counts
    (mushrooms' gradient), so every result file says which counts produced it."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from paltest import backend

    if not any(lib["user_api"] == "blas" for lib in threadpool_info()):
        pytest.skip("no BLAS library visible to threadpoolctl")
    xp = backend.resolve_namespace("numpy")
    with threadpool_limits(threads, user_api="blas"):
        env = results.environment(xp, "cpu", "float64")
    blas = [pool for pool in env["threadpools"] if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == threads and pool["internal_api"]
                        for pool in blas)
    assert env["host_threads"] == backend.host_threads(xp) >= 1
    json.dumps(env)


def test_run_result_files_record_the_thread_counts(tmp_path):
    r = run("quadratic", "sgd", epochs=1, batch_size=1, seed=0)
    env = load(save(r, tmp_path)).environment
    assert env["threadpools"] == results.environment()["threadpools"]
    assert env["host_threads"] >= 1


# -- audit 2: permissions (N9), FIFOs (N10), temporary files of killed writes (N16) -----


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_mode_open_would_give(runs, tmp_path, umask):
    """Result files and the text files (selection.json, summary.csv, claims.json) were
    created 0600 whatever the umask (mkstemp): collaborators could not read them."""
    old = os.umask(umask)
    try:
        paths = [save(runs[0], tmp_path),
                 results.write_text_atomic(tmp_path / "summary.csv", "a,b\n")]
    finally:
        os.umask(old)
    for path in paths:
        assert (path.stat().st_mode & 0o777) == 0o666 & ~umask, path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_a_result_is_skipped_not_read(runs, tmp_path):
    """A FIFO named ``*.npz`` used to hang load_table, completed_ids, load_steps (and
    paltest plot) forever: it is skipped with a warning naming it."""
    import threading

    save(runs[0], tmp_path)
    fifo = tmp_path / "0123456789abcdef.npz"
    os.mkfifo(fifo)
    done = []

    def read_all():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            done.append((results.completed_ids(tmp_path), len(load_table(tmp_path)),
                         len(load_steps(tmp_path)), [str(w.message) for w in seen]))

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # unblock the reader (open the FIFO for writing), then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a folder with a FIFO blocked")
    ids, n_rows, n_steps, messages = done[0]
    assert ids == {runs[0].run_id} and n_rows == EPOCHS + 1 and n_steps == 1
    assert all("not a regular file" in m and str(fifo) in m for m in messages)
    assert len(messages) == 3
    with pytest.raises(IncompleteResultError, match="not a regular file"):
        load(fifo)


def test_temporary_files_of_killed_writes_are_removed(tmp_path):
    """A write killed between its temporary file and the rename left ``.tmp-*.part``
    for ever; those untouched for STALE_TEMPORARY_SECONDS are removed (fresh ones, of a
    write in progress, are kept)."""
    old = tmp_path / ".tmp-0123456789abcdef-x1y2.part"
    fresh = tmp_path / ".tmp-fedcba9876543210-z3w4.part"
    other = tmp_path / ".tmp-notes.txt"
    for p in (old, fresh, other):
        p.write_bytes(b"PK\x03\x04partial")
    stale = results.STALE_TEMPORARY_SECONDS + 60
    os.utime(old, (os.path.getatime(old) - stale, os.path.getmtime(old) - stale))
    os.utime(other, (os.path.getatime(other) - stale, os.path.getmtime(other) - stale))
    assert results.remove_stale_temporaries(tmp_path) == [old]
    assert not old.exists() and fresh.exists() and other.exists()


def test_environment_records_versions_blas_kernel_cpu_and_commit():
    """Issue 28: the notebooks' numbers moved between machines because OpenBLAS chose
    another kernel; every result file says which kernel, versions and commit it ran with."""
    import subprocess
    from pathlib import Path

    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS loaded
    env = results.environment()
    assert env["versions"]["numpy"] == np.__version__ and env["versions"]["scipy"]
    blas = [p for p in env["threadpools"] if p["user_api"] == "blas"]
    info = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert [p["architecture"] for p in blas] == [p.get("architecture") for p in info]
    assert env["cpu"]["machine"] and isinstance(env["cpu"]["numpy_simd"], list)
    root = Path(__file__).resolve().parents[1]
    assert env["paltest"]["version"]
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], text=True,
                              capture_output=True).stdout.strip()
        assert env["paltest"]["commit"] == head and isinstance(env["paltest"]["dirty"], bool)
    json.dumps(env)
