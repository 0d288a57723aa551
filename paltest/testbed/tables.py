"""Open tables: a directory of result files as parquet tables that pandas, polars and
DuckDB read without paltest, and what :func:`paltest.load_table` reads fast.

The per-run result files (``<run_id>.npz``, :mod:`paltest.testbed.results`) stay the
record: written atomically, checked whole when read (damaged, partial or misnamed files
are skipped with a warning naming them), and what a sweep resumes from. Beside them,
``<dir>/tables/`` holds three parquet files derived from the intact ones:

``epochs.parquet``
    one row per run and epoch: what :func:`paltest.load_table` returns (``run_id``,
    ``problem``, ``optimizer``, ``seed``, ``dtype``, ``xp``, ``batch_size``, ``epochs``,
    ``hp_<name>``, ``po_<name>``, then the per-epoch arrays);
``steps.parquet``
    one row per step: ``run_id``, ``step`` (from 0 in the run), ``epoch`` and every field
    of the optimizer's step record (:func:`paltest.load_steps`);
``runs.parquet``
    one row per run: its configuration columns, ``time_<name>`` (seconds) and
    ``total_<name>`` (evaluation counts) columns, the JSON of its ``config``,
    ``environment``, ``timings`` and ``totals``, and the file it came from (name, size,
    modification time, when it was checked).

A column whose values mix types across runs (a hyperparameter that is a number in some
runs and a string in others, such as PAL's ``beta``) is text: strings as they are, other
values as JSON. The tables are brought up to date by :func:`refresh` (``load_table``,
``load_steps`` and :func:`paltest.sweep` call it): a result file that is new, or whose
size, modification time or inode changed, or that was modified less than
:data:`RACY_NS` before it was last checked, is read again (and checked whole); a removed
one leaves the tables. So loading a directory whose files have not changed reads three
parquet files, not thousands of result files. The three files are each written
atomically (steps, epochs, then runs) with one token in their metadata; tables whose
tokens differ, or that cannot be read (a warning names the file), are rebuilt from the
result files. A directory that cannot be written is read all the same (the tables are
then built in memory, with a warning).

Read them without paltest, e.g. ``pandas.read_parquet("runs/tables/epochs.parquet")``,
``polars.read_parquet(...)``, or in DuckDB ``SELECT optimizer, min(train_loss) FROM
'runs/tables/epochs.parquet' GROUP BY optimizer``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed import results
from paltest.testbed import table_columns as tc

__all__ = ["FORMAT", "RACY_NS", "TABLES", "Tables", "column", "frame_to_arrow",
           "read_epochs", "read_steps", "refresh", "tables_dir", "write_frame"]

column, frame_to_arrow, write_frame = tc.column, tc.frame_to_arrow, tc.write_frame

#: The folder of the tables, inside the directory of result files.
TABLES = "tables"
FORMAT = 1
#: A file modified less than this before it was checked is checked again next time (its
#: modification time could not tell a rewrite within the file system's time resolution).
RACY_NS = 2_000_000_000
_KEY = b"paltest_tables"
_STAT = ("file_size", "file_mtime_ns", "file_ino")


@dataclass
class Tables:
    """The three tables as ``pyarrow.Table`` (``steps`` is None when not read)."""

    epochs: Any
    steps: Any
    runs: Any


def tables_dir(directory: str | os.PathLike) -> Path:
    """Where the tables of a directory of result files are: ``<directory>/tables``."""
    return Path(directory) / TABLES


# --- the cache -----------------------------------------------------------------------

def _read(path: Path, token: str | None, columns: list[str] | None = None) -> Any:
    """A cached table, or None when it is missing, unreadable (warned) or of another
    write (its token differs from ``token``, when given)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        return None
    try:
        table = pq.read_table(path, columns=columns)
        meta = json.loads((table.schema.metadata or {}).get(_KEY, b"{}"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
    except Exception as err:  # damaged or foreign: rebuilt from the result files
        warnings.warn(f"rebuilding the tables: {path} cannot be read ({type(err).__name__}: "
                      f"{err})", stacklevel=4)
        return None
    if token is not None and meta.get("token") != token:
        return None
    return table


def _token(table: Any) -> str | None:
    return json.loads((table.schema.metadata or {}).get(_KEY, b"{}")).get("token")


def _scan(directory: Path) -> dict[str, os.stat_result]:
    out = {}
    for p in results._result_files(directory):
        try:
            out[p.name] = p.stat()
        except OSError:  # removed meanwhile
            continue
    return out


def _trusted(runs: Any, scan: dict[str, os.stat_result]) -> dict[str, int]:
    """``{file: row}`` of the index rows whose file is unchanged and was not racy."""
    if runs is None:
        return {}
    d = runs.select(["file", *_STAT, "checked_ns"]).to_pydict()
    out = {}
    for i, name in enumerate(d["file"]):
        st = scan.get(name)
        if st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == (
                d["file_size"][i], d["file_mtime_ns"][i], d["file_ino"][i]) and (
                d["checked_ns"][i] - st.st_mtime_ns > RACY_NS):
            out[name] = i
    return out


def refresh(directory: str | os.PathLike, *, strict: bool = False, need: str = "epochs",
            write: bool = True) -> Tables | None:
    """Bring the tables of ``directory`` up to date with its result files (see the module
    docstring) and return them; None when ``directory`` does not exist.

    ``need``: which of ``"epochs"`` and ``"steps"`` to return when nothing changed (the
    other is then not read). Damaged or misnamed result files are skipped with a warning
    naming them (``strict``: :class:`~paltest.testbed.results.IncompleteResultError`).
    ``write=False`` builds every table from the result files and writes nothing.
    """
    directory = results._check_directory(directory)
    if not directory.is_dir():
        return None
    where = tables_dir(directory)
    scan = _scan(directory)
    runs = _read(where / "runs.parquet", None) if write else None
    token = None if runs is None else _token(runs)
    trusted = _trusted(runs, scan)
    if runs is not None and len(trusted) == runs.num_rows == len(scan):
        other = _read(where / f"{need}.parquet", token)
        if other is not None:
            return Tables(**{"epochs": None, "steps": None, need: other, "runs": runs})
    return _rebuild(directory, scan, runs, trusted, strict, write)


def _rebuild(directory: Path, scan: dict[str, os.stat_result], runs: Any,
             trusted: dict[str, int], strict: bool, write: bool) -> Tables:
    where = tables_dir(directory)
    token = None if runs is None else _token(runs)
    cached = {g: _read(where / f"{g}.parquet", token) if trusted else None
              for g in ("epochs", "steps")}
    if any(t is None for t in cached.values()):
        trusted = {}
    loaded = _load_new(directory, scan, trusted, strict)
    out = None
    if trusted:  # the cached tables less the changed runs, plus the new ones
        new = _assemble(*(list(x) for x in zip(*loaded.values(), strict=True))) if loaded \
            else None
        out = _merge(Tables(cached["epochs"], cached["steps"], runs), trusted, new)
    if out is None:  # from every run's own columns (a first build, or types changed)
        index = runs.to_pydict() if trusted else {}
        offsets = {g: np.concatenate([[0], np.cumsum(index[c])]) for g, c in (
            ("epochs", "n_epochs"), ("steps", "n_steps"))} if trusted else {}
        parts = []
        for name in sorted(set(trusted) | set(loaded)):
            if name in loaded:
                parts.append(loaded[name])
                continue
            i = trusted[name]
            row = {k: index[k][i] for k in index}
            spec = json.loads(row["arrays"])
            parts.append((row, *(tc.cached_piece(cached[g], int(offsets[g][i]), row[c], spec, g)
                                 for g, c in (("epochs", "n_epochs"), ("steps", "n_steps"))),
                          json.loads(row["config"])))
        out = _assemble(*(list(x) for x in zip(*parts, strict=True))) if parts else \
            _assemble([], [], [], [])
    if write and (out.runs.num_rows or where.exists()):
        _write(where, out)
    return out


def _load_new(directory: Path, scan: dict[str, os.stat_result], trusted: dict[str, int],
              strict: bool) -> dict[str, tuple]:
    """``{file: (index row, epochs piece, steps piece, config)}`` of the result files not
    trusted from the tables, read and checked whole; damaged ones warned about."""
    checked_ns = time.time_ns()
    out = {}
    for name in sorted(scan):
        if name in trusted:
            continue
        path = directory / name
        try:
            r = results.load(path)
            if path.stem != r.run_id:
                raise results.IncompleteResultError(
                    f"{path}: the file name is not its run id {r.run_id} (a copy?)")
        except results.IncompleteResultError as err:
            if strict:
                raise
            warnings.warn(f"skipping {err}", stacklevel=5)
            continue
        out[name] = (tc.run_row(r, path, scan[name], checked_ns), tc.piece(r.epochs),
                     tc.piece(r.steps), r.config)
    return out


def _merge(old: Tables, trusted: dict[str, int], new: Tables | None) -> Tables | None:
    """``old`` without the runs not in ``trusted``, with ``new``'s runs, in the order and
    column order of a build from scratch; None when the types do not allow it.

    Both are ordered by run id, one block of rows per run, so the result is a few
    zero-copy slices of each (no sort, no copy of the unchanged rows)."""
    import pyarrow as pa

    new_runs = [] if new is None else new.runs.column("run_id").to_pylist()
    old_ids = old.runs.column("run_id").to_pylist()
    counts = {"epochs": ("n_epochs",), "steps": ("n_steps",), "runs": ()}
    kept = set(trusted.values())
    runs = sorted([(rid, 0, i) for i, rid in enumerate(old_ids) if i in kept]
                  + [(rid, 1, i) for i, rid in enumerate(new_runs)])
    out = {}
    for name, count in counts.items():
        tables = [getattr(old, name).replace_schema_metadata(None)]
        sizes = [np.asarray(old.runs.column(count[0])) if count else np.ones(len(old_ids))]
        if new is not None:
            tables.append(getattr(new, name))
            sizes.append(np.asarray(new.runs.column(count[0])) if count else
                         np.ones(len(new_runs)))
            if not tc.compatible(tables[0].schema, tables[1].schema):
                return None
        starts = [np.concatenate([[0], np.cumsum(z)]).astype(np.int64) for z in sizes]
        pieces, block = [], None  # block: [source, first row, end row]
        for _, src, i in runs:
            a, b = int(starts[src][i]), int(starts[src][i + 1])
            if block is not None and block[0] == src and block[2] == a:
                block[2] = b
                continue
            if block is not None:
                pieces.append(tables[block[0]].slice(block[1], block[2] - block[1]))
            block = [src, a, b]
        if block is not None:
            pieces.append(tables[block[0]].slice(block[1], block[2] - block[1]))
        schema_src = [t.slice(0, 0) for t in tables]  # every column, even with no rows
        out[name] = pa.concat_tables(schema_src + pieces, promote_options="permissive")
    order = tc.orders(out["runs"])
    return Tables(**{k: v.select(order[k]) for k, v in out.items()})


def _assemble(rows: list[dict], epochs: list, steps: list, configs: list[dict]) -> Tables:
    import pyarrow as pa

    n_ep = np.array([p.num_rows for p in epochs], dtype=np.int64)
    n_st = np.array([p.num_rows for p in steps], dtype=np.int64)
    consts = [tc.constants(c) for c in configs]
    ep_arrays = _concat(epochs)
    const_cols = tc.columns(consts, n_ep)
    names = list(dict.fromkeys(
        [k for c, p in zip(consts, epochs, strict=True) for k in [*c, *p.column_names]]))
    cols = {k: (ep_arrays.column(k) if k in ep_arrays.column_names else const_cols[k])
            for k in names}
    epoch_table = pa.table(cols) if names else pa.table({"run_id": pa.array([], pa.string())})
    st_arrays = _concat(steps)
    run_ids = pa.array(np.repeat(np.array([c["run_id"] for c in consts], dtype=object), n_st),
                       pa.string())
    step_index = pa.array(np.concatenate([np.arange(n) for n in n_st]) if len(n_st) else
                          np.zeros(0, dtype=np.int64), pa.int64())
    step_table = pa.table({"run_id": run_ids, "step": step_index,
                           **{k: st_arrays.column(k) for k in st_arrays.column_names}})
    if not rows:
        return Tables(epochs=epoch_table, steps=step_table,
                      runs=pa.table({"run_id": pa.array([], pa.string())}))
    runs = pa.table(tc.columns(rows))
    order = tc.orders(runs)  # one definition of the column order for builds and merges
    return Tables(epochs=epoch_table.select(order["epochs"]),
                  steps=step_table.select(order["steps"]), runs=runs.select(order["runs"]))


def _concat(pieces: list) -> Any:
    import pyarrow as pa

    pieces = [p for p in pieces if p.num_columns]
    if not pieces:
        return pa.table({})
    return pa.concat_tables(pieces, promote_options="permissive").combine_chunks()


def _write(where: Path, t: Tables) -> None:
    import pyarrow.parquet as pq

    meta = json.dumps({"format": FORMAT, "token": secrets.token_hex(8)}).encode()
    try:
        where.mkdir(parents=True, exist_ok=True)
        for name in ("steps", "epochs", "runs"):  # the index last: it names the write
            table = getattr(t, name)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   _KEY: meta})
            setattr(t, name, table)
            results._replace_atomically(where / f"{name}.parquet",
                                        lambda fh, table=table: pq.write_table(table, fh))
    except OSError as err:
        warnings.warn(f"the tables of {where.parent} could not be written ({err}); they "
                      "were built in memory", stacklevel=4)


# --- readers -------------------------------------------------------------------------

def read_epochs(directory: str | os.PathLike, *, strict: bool = False,
                cache: bool = True) -> Any:
    """The per-epoch table as a pandas DataFrame (see :func:`paltest.load_table`)."""
    import pandas as pd

    t = refresh(directory, strict=strict, need="epochs", write=cache)
    if t is None or t.epochs.num_rows == 0:
        return pd.DataFrame(columns=["run_id", "problem", "optimizer", "seed", "epoch"])
    return t.epochs.replace_schema_metadata(None).to_pandas()


def read_steps(directory: str | os.PathLike, *, strict: bool = False,
               cache: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """``{run_id: {field: array}}`` in each run's own dtypes (see :func:`paltest.load_steps`)."""
    t = refresh(directory, strict=strict, need="steps", write=cache)
    if t is None or t.runs.num_rows == 0:
        return {}
    index = t.runs.select(["run_id", "n_steps", "arrays"]).to_pydict()
    offsets = np.concatenate([[0], np.cumsum(index["n_steps"])])
    out = {}
    for i, rid in enumerate(index["run_id"]):
        spec = json.loads(index["arrays"][i])
        part = tc.cached_piece(t.steps, int(offsets[i]), index["n_steps"][i], spec, "steps")
        out[rid] = {k: part.column(k).to_numpy(zero_copy_only=False).astype(
            np.dtype(spec[f"steps/{k}"]), copy=False) for k in part.column_names}
    return out
