"""The columns of the open tables (:mod:`paltest.testbed.tables`): one type per column,
one run's rows and pieces, the column order, and data frames written as parquet.

A column's type comes from its Python values across runs (:func:`column`): bools, ints,
floats (ints and floats together: floats) or strings; any other mix is text, strings as
they are and other values as JSON. The column order of a table is the order of first
appearance, run by run (:func:`orders`), whether the table is built from scratch or
merged.

>>> column([0.4, "fletcher-reeves", None]).to_pylist()
['0.4', 'fletcher-reeves', None]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed import results

__all__ = ["arrays_spec", "cached_piece", "column", "columns", "compatible", "constants",
           "frame_to_arrow", "orders", "piece", "run_row", "write_frame"]


def constants(config: dict[str, Any]) -> dict[str, Any]:
    """A run's columns that hold one value for the run (as ``load_table`` always had them)."""
    po = config["problem_options"]
    cols: dict[str, Any] = {
        "run_id": results.run_id(config), "problem": config["problem"],
        "optimizer": config["optimizer"], "seed": config["seed"], "dtype": po.get("dtype"),
        "xp": po.get("xp"), "batch_size": config["batch_size"], "epochs": config["epochs"],
    }
    for k, v in po.items():
        if k not in ("xp", "dtype"):
            cols[f"po_{k}"] = v if not isinstance(v, (list, dict)) else json.dumps(v)
    for k, v in config["hyperparameters"].items():
        cols[f"hp_{k}"] = v if not isinstance(v, (list, dict)) else json.dumps(v)
    return cols


def _kind(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "float"
    if isinstance(v, str):
        return "str"
    return "other"


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, np.generic):
        v = v.item()
    return json.dumps(v)


def column(values: list[Any]) -> Any:
    """One typed ``pyarrow`` array for Python values of one column (None: missing):
    bools, ints, floats (ints and floats: floats) or strings; any other mix is text
    (strings as they are, other values as JSON)."""
    import pyarrow as pa

    kinds = {_kind(v) for v in values} - {"none"}
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {"bool"}:
        return pa.array([None if v is None else bool(v) for v in values], pa.bool_())
    if kinds == {"int"}:
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    if kinds <= {"int", "float"}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    if kinds == {"str"}:
        return pa.array(values, pa.string())
    return pa.array([_text(v) for v in values], pa.string())


def columns(rows: list[dict[str, Any]], counts: np.ndarray | None = None) -> dict[str, Any]:
    """``rows`` (one dict per run) as typed columns, each value repeated ``counts[i]``
    times; columns in order of first appearance."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    out = {}
    for name in names:
        arr = column([row.get(name) for row in rows])
        if counts is not None:
            arr = arr.take(np.repeat(np.arange(len(rows)), counts))
        out[name] = arr
    return out


def arrays_spec(r: results.RunResult) -> dict[str, str]:
    return {**{f"epochs/{k}": np.asarray(v).dtype.str for k, v in r.epochs.items()},
            **{f"steps/{k}": np.asarray(v).dtype.str for k, v in r.steps.items()}}


def run_row(r: results.RunResult, path: Path, st: os.stat_result, checked_ns: int
             ) -> dict[str, Any]:
    row = {"run_id": r.run_id, "file": path.name, "file_size": st.st_size,
           "file_mtime_ns": st.st_mtime_ns, "file_ino": st.st_ino, "checked_ns": checked_ns,
           "n_epochs": len(r.epochs.get("epoch", ())),
           "n_steps": len(next(iter(r.steps.values()), ()))}
    row.update({k: v for k, v in constants(r.config).items() if k != "run_id"})
    row.update({f"time_{k}": v for k, v in r.timings.items()})
    row.update({f"total_{k}": v for k, v in r.totals.items() if not isinstance(v, (
        dict, list))})
    for key in ("config", "environment", "timings", "totals"):
        row[key] = json.dumps(getattr(r, key), sort_keys=True, allow_nan=True)
    row["arrays"] = json.dumps(arrays_spec(r))
    return row


def piece(arrays: dict[str, np.ndarray]) -> Any:
    import pyarrow as pa

    return pa.table({k: pa.array(np.asarray(v)) for k, v in arrays.items()})


def cached_piece(table: Any, offset: int, n: int, spec: dict[str, str], group: str) -> Any:
    """A run's own columns of a cached table, in its own dtypes (as when first built)."""
    import pyarrow as pa

    part = table.slice(offset, n)
    cols = {}
    for key, dtype in spec.items():
        g, _, name = key.partition("/")
        if g == group:
            cols[name] = part.column(name).cast(pa.from_numpy_dtype(np.dtype(dtype)))
    return pa.table(cols) if cols else pa.table({"_": pa.nulls(n)}).drop(["_"])


_NUMERIC = {"int64", "float", "double"}


def compatible(a: Any, b: Any) -> bool:
    """Whether two schemas concatenate to the types a build from scratch gives: equal
    types, nulls, or numbers (promoted to double)."""
    for field in a:
        if field.name in b.names:
            x, y = str(field.type), str(b.field(field.name).type)
            if x != y and "null" not in (x, y) and not {x, y} <= _NUMERIC:
                return False
    return True


def orders(runs: Any) -> dict[str, list[str]]:
    """The column order of each table built from scratch (first appearance, by run)."""
    d = runs.select(["config", "arrays", "timings", "totals"]).to_pydict()
    ep, st = {}, {"run_id": None, "step": None}
    rn = dict.fromkeys(runs.column_names[:8])  # run_id, file, stat, checked, counts
    for config, arrays, timings, totals in zip(d["config"], d["arrays"], d["timings"],
                                               d["totals"], strict=True):
        consts = list(constants(json.loads(config)))
        spec = list(json.loads(arrays))
        ep.update(dict.fromkeys(consts))
        ep.update(dict.fromkeys(k[7:] for k in spec if k.startswith("epochs/")))
        st.update(dict.fromkeys(k[6:] for k in spec if k.startswith("steps/")))
        rn.update(dict.fromkeys(consts[1:]))
        rn.update(dict.fromkeys(f"time_{k}" for k in json.loads(timings)))
        rn.update(dict.fromkeys(f"total_{k}" for k, v in json.loads(totals).items()
                                if not isinstance(v, (dict, list))))
    rn.update(dict.fromkeys(("config", "environment", "timings", "totals", "arrays")))
    return {"epochs": list(ep), "steps": list(st), "runs": list(rn)}


def frame_to_arrow(frame: Any) -> Any:
    """A pandas DataFrame as a ``pyarrow.Table``, object columns typed by :func:`column`
    (a column that mixes numbers and strings becomes text)."""
    import pyarrow as pa

    cols = {}
    for name in frame.columns:
        s = frame[name]
        if s.dtype == object:
            cols[str(name)] = column([None if (v is None or (isinstance(v, float) and v != v))
                                      else v for v in s.tolist()])
        else:
            cols[str(name)] = pa.array(s.to_numpy(), from_pandas=True)
    return pa.table(cols)


def write_frame(frame: Any, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame (e.g. a summary table) to a parquet file atomically."""
    import pyarrow.parquet as pq

    table = frame_to_arrow(frame)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return results._replace_atomically(path, lambda fh: pq.write_table(table, fh))
