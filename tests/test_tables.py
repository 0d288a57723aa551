"""The open tables (``<runs>/tables/*.parquet``): read by pandas, polars and DuckDB in a
process that never imports paltest; the same tables from the cache as from every file;
kept up to date with new, removed, damaged and rewritten result files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from paltest.testbed import results, tables  # noqa: E402
from paltest.testbed.sweep import sweep  # noqa: E402

GRID = {
    "epochs": 2, "batch_size": 100, "seeds": 2,
    "problems": [{"name": "mf-rank4", "options": {"dtype": ["float32", "float64"]}},
                 {"name": "least-squares", "batch_size": 10}],
    # PAL's beta is a number in one configuration and a string in another: a text column
    "optimizers": [{"name": "pal", "hyperparameters": {"beta": [0.4, "fletcher-reeves"]}},
                   {"name": "sgd", "hyperparameters": {"lr": 0.05}}, "exact"],
}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "runs"
    s = sweep(GRID, out, backend="sequential")
    return out, s


def test_a_sweep_opens_in_pandas_polars_and_duckdb_without_paltest(swept):
    out, s = swept
    table = results.load_table(out)
    expected = {
        "runs": len(s.run_ids), "rows": len(table),
        "loss": float(table["train_loss"].sum()),
        "pal_rows": int((table["optimizer"] == "pal").sum()),
        "steps": int(sum(len(v["lr"]) for v in results.load_steps(out).values())),
    }
    assert expected["runs"] == 3 * 4 * 2
    code = textwrap.dedent(f"""
        import json, sys
        import duckdb, pandas as pd, polars as pl
        d = {str(tables.tables_dir(out))!r}
        exp = json.loads({json.dumps(json.dumps(expected))})
        ep = pd.read_parquet(d + "/epochs.parquet")
        assert ep["run_id"].nunique() == exp["runs"] and len(ep) == exp["rows"]
        assert abs(ep["train_loss"].sum() - exp["loss"]) <= 1e-9 * abs(exp["loss"])
        assert set(ep["hp_beta"].dropna()) == {{"0.4", "fletcher-reeves"}}
        steps = pd.read_parquet(d + "/steps.parquet")
        assert len(steps) == exp["steps"] and steps["run_id"].nunique() == exp["runs"]
        runs = pd.read_parquet(d + "/runs.parquet")
        assert len(runs) == exp["runs"] and json.loads(runs["config"][0])["epochs"] == 2
        pal = duckdb.sql(f"SELECT count(*) FROM '{{d}}/epochs.parquet' "
                         "WHERE optimizer = 'pal'").fetchall()[0][0]
        assert pal == exp["pal_rows"]
        best = duckdb.sql(f"SELECT problem, optimizer, min(train_loss) FROM "
                          f"'{{d}}/epochs.parquet' GROUP BY ALL").df()
        assert len(best) == 2 * 3
        joined = duckdb.sql(f"SELECT count(*) FROM '{{d}}/steps.parquet' s JOIN "
                            f"'{{d}}/runs.parquet' r USING (run_id)").fetchall()[0][0]
        assert joined == exp["steps"]
        assert pl.read_parquet(d + "/epochs.parquet").height == exp["rows"]
        assert not any(m == "paltest" or m.startswith(("paltest.", "problems"))
                       for m in sys.modules)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=out)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_cached_tables_equal_a_read_of_every_file(swept):
    out, _ = swept
    cached = results.load_table(out)
    pd.testing.assert_frame_equal(cached, results.load_table(out, cache=False))
    assert cached["hp_beta"].dtype != object  # one type per column: text here
    assert cached["train_loss"].dtype == np.float64  # float32 and float64 runs
    steps = results.load_steps(out)
    for path in sorted(out.glob("*.npz")):
        r = results.load(path)
        assert list(steps[r.run_id]) == list(r.steps)
        for k, v in r.steps.items():
            got = steps[r.run_id][k]
            assert got.dtype == v.dtype and got.tobytes() == v.tobytes(), (r.run_id, k)
    assert list(cached["run_id"].unique()) == sorted(p.stem for p in out.glob("*.npz"))


def _old(path, seconds=10.0):
    """Set a file's times ``seconds`` in the past (no longer within RACY_NS of a check)."""
    t = path.stat().st_mtime_ns - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


def test_new_removed_and_damaged_files_are_seen(swept, tmp_path):
    out, _ = swept
    runs = tmp_path / "runs"
    runs.mkdir()
    files = sorted(out.glob("*.npz"))
    for p in files[:3]:
        (runs / p.name).write_bytes(p.read_bytes())
        _old(runs / p.name)
    assert results.load_table(runs)["run_id"].nunique() == 3
    (runs / files[3].name).write_bytes(files[3].read_bytes())  # new
    (runs / files[0].name).unlink()  # removed
    damaged = runs / files[1].name
    damaged.write_bytes(damaged.read_bytes()[:-50])  # truncated: a new size
    with pytest.warns(UserWarning, match=f"skipping {damaged}"):
        table = results.load_table(runs)
    assert set(table["run_id"]) == {files[2].stem, files[3].stem}
    with pytest.warns(UserWarning, match=f"skipping {damaged}"):  # said at every load
        assert set(results.load_steps(runs)) == {files[2].stem, files[3].stem}
    with pytest.raises(results.IncompleteResultError):
        results.load_table(runs, strict=True)


def test_a_rewrite_within_the_time_resolution_is_read_again(swept, tmp_path):
    """Same size, same modification time, same inode: a file checked less than RACY_NS
    after its last change is not trusted from the tables."""
    out, _ = swept
    runs = tmp_path / "runs"
    runs.mkdir()
    src = sorted(out.glob("*.npz"))[0]
    target = runs / src.name
    target.write_bytes(src.read_bytes())
    st = target.stat()
    results.load_table(runs)  # checked right after the write: racy
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(target, "r+b") as fh:  # in place: same inode and size
        fh.write(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_ino == st.st_ino
    with pytest.warns(UserWarning, match=f"skipping {target}"):
        assert results.load_table(runs).empty


def test_damaged_or_mismatched_tables_are_rebuilt(swept, tmp_path):
    out, _ = swept
    runs = tmp_path / "runs"
    runs.mkdir()
    for p in sorted(out.glob("*.npz"))[:4]:
        (runs / p.name).write_bytes(p.read_bytes())
        _old(runs / p.name)
    good = results.load_table(runs)
    where = tables.tables_dir(runs)
    (where / "epochs.parquet").write_bytes(b"PAR1 not a parquet file")
    with pytest.warns(UserWarning, match="rebuilding the tables: .*epochs.parquet"):
        pd.testing.assert_frame_equal(results.load_table(runs), good)
    # the steps table of an earlier write (two writers at once): rebuilt, no warning
    steps = where / "steps.parquet"
    earlier = steps.read_bytes()
    tables._write(where, tables.refresh(runs, write=False))  # a new write, a new token
    steps.write_bytes(earlier)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(results.load_steps(runs)) == 4
    assert steps.read_bytes() != earlier  # rewritten with the index's token


def test_a_directory_that_cannot_be_written_is_read_all_the_same(swept, tmp_path,
                                                                  monkeypatch):
    out, _ = swept
    runs = tmp_path / "runs"
    runs.mkdir()
    for p in sorted(out.glob("*.npz"))[:2]:
        (runs / p.name).write_bytes(p.read_bytes())

    def refuse(target, write):
        raise PermissionError(f"read-only: {target}")

    monkeypatch.setattr(results, "_replace_atomically", refuse)
    with pytest.warns(UserWarning, match="could not be written"):
        assert results.load_table(runs)["run_id"].nunique() == 2
    assert not tables.tables_dir(runs).exists() or not any(
        tables.tables_dir(runs).iterdir())


def test_columns_that_mix_types_become_text():
    arr = tables.column([0.4, "fletcher-reeves", None, True])
    assert arr.to_pylist() == ["0.4", "fletcher-reeves", None, "true"]
    assert tables.column([1, 2.5, None]).to_pylist() == [1.0, 2.5, None]
    assert str(tables.column([1, None]).type) == "int64"
    assert str(tables.column([True, None]).type) == "bool"
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": [0.4, "x"], "c": ["u", None]})
    t = tables.frame_to_arrow(frame)
    assert t.column("b").to_pylist() == ["0.4", "x"] and t.column("c").to_pylist() == ["u", None]
