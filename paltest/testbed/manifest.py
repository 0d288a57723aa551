"""A figure's ``selection.json``: written with a checksum, read back only when intact.

``paltest plot`` redraws a figure from its ``selection.json`` (which runs were chosen,
the floors, the plan); a damaged file must not silently change the figure (one bit flip
dropped a seed from SGD's summary, another moved a floor by 0.1). So :func:`write`
stores the SHA-256 of the content (its canonical JSON, the ``sha256`` key left out)
beside it, and :func:`read` refuses, with :class:`SelectionFileError` naming the file:
text that is not JSON (or nested too deep, or with a key given twice), a checksum that
does not match (any change of a value, a key or the checksum itself), and content whose
structure or types are not what :func:`write` writes (checked field by field, so a
file edited by hand with its checksum recomputed is still refused when, e.g., its
``plan.seeds`` is ``"oops"`` or its ``plan.epochs`` is ``-5``).

Example:
    >>> import tempfile, pathlib
    >>> from paltest.testbed import experiments
    >>> p = experiments.plan(8, quick=True, optimizers=["sgd"], problems=["mf-rank4"])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "selection.json"
    >>> m = {"plan": p.to_json(), "floors": {"mf-rank4": 0.5}, "selection": {},
    ...      "final_run_ids": [], "reference_run_ids": []}
    >>> _ = write(path, m)
    >>> read(path)["floors"]
    {'mf-rank4': 0.5}
    >>> _ = path.write_text(path.read_text().replace("0.5", "0.6"))
    >>> read(path)
    Traceback (most recent call last):
    ...
    paltest.testbed.manifest.SelectionFileError: ...: its content does not match its checksum...
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "SelectionFileError", "read", "unique_keys", "write"]

#: The format of ``selection.json`` (3: with its checksum).
FORMAT = 3


class SelectionFileError(RuntimeError):
    """A figure folder's ``selection.json`` is damaged or of another format."""


def _canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()


def write(path: str | os.PathLike, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` (the keys :func:`read` checks, without ``format_version``)
    to ``path`` atomically, with ``format_version`` and its ``sha256``."""
    from paltest.testbed import results

    content = {"format_version": FORMAT, **manifest}
    _check_content(content)  # never write what read() would refuse
    doc = {**content, "sha256": _digest(content)}
    return results.write_text_atomic(path, json.dumps(doc, indent=1, allow_nan=False))


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest in ``path`` (``format_version`` and ``sha256`` removed), checked; a
    file that is not intact or not as :func:`write` writes it raises
    :class:`SelectionFileError` naming it. A missing file raises ``FileNotFoundError``."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as err:
        raise _error(path, f"cannot be read ({err})") from err
    if not stat.S_ISREG(mode):  # a FIFO would block the read forever
        raise _error(path, "not a regular file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=unique_keys)
    except RecursionError:
        raise _error(path, "nested too deep to be a selection file") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise _error(path, f"not JSON ({type(err).__name__}: {err})") from None
    if not isinstance(doc, dict):
        raise _error(path, "not a JSON object")
    version = doc.get("format_version")
    if version != FORMAT:
        raise _error(path, f"format_version {version!r}, expected {FORMAT}")
    content = {k: v for k, v in doc.items() if k != "sha256"}
    try:
        digest = _digest(content)
    except ValueError as err:  # NaN or infinity: never written
        raise _error(path, f"not JSON as written ({err})") from None
    if doc.get("sha256") != digest:
        raise _error(path, "its content does not match its checksum (sha256): the file "
                     "is damaged or was edited")
    try:
        _check_content(content)
    except (TypeError, ValueError) as err:
        raise _error(path, str(err)) from None
    return {k: v for k, v in content.items() if k != "format_version"}


def _error(path: Path, why: str) -> SelectionFileError:
    return SelectionFileError(
        f"{path}: {why}; run the same 'paltest figure' command again to rebuild it (the "
        "finished runs are reused)")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``json`` ``object_pairs_hook`` refusing a key given twice in one object (JSON
    would keep the last silently); also used for sweep grids."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} is given twice in one object")
        out[key] = value
    return out


# -- the structure and types write() writes ---------------------------------------------


def _need(ok: bool, where: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{where}: expected {what}, got {value!r}"[:300])


def _int(value: Any, where: str, minimum: int) -> None:
    _need(type(value) is int and value >= minimum, where, f"an int >= {minimum}", value)


def _number(value: Any, where: str, none: bool = True) -> None:
    ok = (value is None and none) or (type(value) in (int, float) and math.isfinite(value))
    _need(ok, where, "a finite number" + (" or null" if none else ""), value)


def _strings(value: Any, where: str, nonempty: bool = True) -> None:
    _need(isinstance(value, list) and (value or not nonempty)
          and all(isinstance(v, str) and v for v in value), where,
          "a list of names" + (" (not empty)" if nonempty else ""), value)


def _dict(value: Any, where: str) -> None:
    _need(isinstance(value, dict) and all(isinstance(k, str) for k in value), where,
          "an object", value)


_KEYS = {"format_version", "plan", "floors", "selection", "final_run_ids",
         "reference_run_ids"}
_PLAN = {"figure", "problems", "optimizers", "epochs", "batch_size", "seeds", "tune_seed",
         "grids", "problem_options", "quick", "max_extensions", "refine", "references"}
#: Plan keys that files written before they existed lack (``Plan`` supplies the default).
_PLAN_OPTIONAL = frozenset({"start_ulps"})
_RECORD = {"chosen", "run_id", "score", "bracketed", "cap_reached", "grid",
           "max_extensions", "refine", "trials"}
_TRIAL = {"hyperparameters", "stage", "score", "rounding", "tied_with_best", "diverged",
          "final_train_loss", "run_id"}


def _keys(value: Any, where: str, keys: set[str], optional: frozenset[str] = frozenset()
          ) -> None:
    _dict(value, where)
    missing, extra = sorted(keys - set(value)), sorted(set(value) - keys - optional)
    if missing or extra:  # name the keys that differ (the full lists can be long)
        raise ValueError(f"{where}: missing the keys {missing}, unexpected keys {extra}"[:300])


def _run_id(value: Any, where: str) -> None:
    _need(isinstance(value, str) and len(value) == 16
          and all(c in "0123456789abcdef" for c in value), where, "a run id", value)


def _check_plan(plan: Any) -> None:
    from paltest.testbed.protocols import PROTOCOLS

    _keys(plan, "plan", _PLAN, _PLAN_OPTIONAL)
    _need(plan["figure"] in PROTOCOLS and type(plan["figure"]) is int, "plan.figure",
          f"one of {sorted(PROTOCOLS)}", plan["figure"])
    for key in ("problems", "optimizers"):
        _strings(plan[key], f"plan.{key}")
    _strings(plan["references"], "plan.references", nonempty=False)
    _int(plan["epochs"], "plan.epochs", 1)
    _int(plan["batch_size"], "plan.batch_size", 1)
    seeds = plan["seeds"]
    _need(isinstance(seeds, list) and seeds and all(type(s) is int and s >= 0 for s in seeds),
          "plan.seeds", "a non-empty list of ints >= 0", seeds)
    _int(plan["tune_seed"], "plan.tune_seed", 0)
    _dict(plan["grids"], "plan.grids")
    for o, grid in plan["grids"].items():
        _dict(grid, f"plan.grids.{o}")
    _dict(plan["problem_options"], "plan.problem_options")
    _need(type(plan["quick"]) is bool, "plan.quick", "true or false", plan["quick"])
    _int(plan["max_extensions"], "plan.max_extensions", 0)
    _int(plan["refine"], "plan.refine", 0)
    if "start_ulps" in plan:  # any int (negative: the start moved down)
        _need(type(plan["start_ulps"]) is int, "plan.start_ulps", "an int",
              plan["start_ulps"])


def _check_record(rec: Any, where: str) -> None:
    _keys(rec, where, _RECORD)
    _dict(rec["chosen"], f"{where}.chosen")
    _run_id(rec["run_id"], f"{where}.run_id")
    _number(rec["score"], f"{where}.score")
    _dict(rec["bracketed"], f"{where}.bracketed")
    _need(all(type(v) is bool for v in rec["bracketed"].values()), f"{where}.bracketed",
          "true or false per axis", rec["bracketed"])
    _dict(rec["cap_reached"], f"{where}.cap_reached")
    _need(all(v in ("upper", "lower") for v in rec["cap_reached"].values()),
          f"{where}.cap_reached", "'upper' or 'lower' per axis", rec["cap_reached"])
    _dict(rec["grid"], f"{where}.grid")
    _int(rec["max_extensions"], f"{where}.max_extensions", 0)
    _int(rec["refine"], f"{where}.refine", 0)
    _need(isinstance(rec["trials"], list) and rec["trials"], f"{where}.trials",
          "a non-empty list", rec["trials"])
    for i, t in enumerate(rec["trials"]):
        w = f"{where}.trials[{i}]"
        _keys(t, w, _TRIAL)
        _dict(t["hyperparameters"], f"{w}.hyperparameters")
        _need(isinstance(t["stage"], str), f"{w}.stage", "a name", t["stage"])
        _number(t["score"], f"{w}.score")
        _number(t["rounding"], f"{w}.rounding", none=False)
        _number(t["final_train_loss"], f"{w}.final_train_loss")
        for key in ("tied_with_best", "diverged"):
            _need(type(t[key]) is bool, f"{w}.{key}", "true or false", t[key])
        _run_id(t["run_id"], f"{w}.run_id")


def _check_content(content: dict[str, Any]) -> None:
    """``ValueError`` naming the first field that is not as :func:`write` writes it."""
    _keys(content, "selection.json", _KEYS)
    _check_plan(content["plan"])
    problems = content["plan"]["problems"]
    _keys(content["floors"], "floors", set(problems))
    for q, floor in content["floors"].items():
        _number(floor, f"floors.{q}")
    _dict(content["selection"], "selection")
    _need(set(content["selection"]) <= set(problems), "selection", "the plan's problems",
          sorted(content["selection"]))
    for q, per in content["selection"].items():
        _dict(per, f"selection.{q}")
        for o, rec in per.items():
            _check_record(rec, f"selection.{q}.{o}")
    for key in ("final_run_ids", "reference_run_ids"):
        _need(isinstance(content[key], list), key, "a list of run ids", content[key])
        for i, rid in enumerate(content[key]):
            _run_id(rid, f"{key}[{i}]")
