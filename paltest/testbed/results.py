"""The run record, its atomic file format, and loading runs as a tidy table.

A :class:`RunResult` holds a run's ``config`` (what was run: problem and options,
optimizer and hyperparameters, epochs, batch size, seed), its ``environment`` (package
versions, backend, device, dtype, Python, platform), per-epoch arrays (``epoch`` 0 is
before the first step), per-step arrays, timings and totals. Its ``run_id`` is a hash of
the config, so the same config always gets the same id and the same file name.

:func:`save` writes one ``<run_id>.npz`` file per run atomically: a hidden temporary file
in the same directory is written, flushed and fsynced, then renamed over the target with
:func:`os.replace`. The metadata (a JSON string inside the file) lists every array with
its shape and ends with a completeness marker; :func:`load` checks the zip CRCs before
parsing anything, then all of it, so a truncated, partial or damaged file raises
:class:`IncompleteResultError` and is never taken for a complete run.
:func:`load_table`, :func:`load_steps` and :func:`completed_ids` (what a sweep resumes
from) skip such files, and files not named after their run id (e.g. a backup
``<run_id>.bak.npz``) or that are not regular files (a FIFO would block a read forever),
with a warning naming the file; temporary files are ignored, and those of a killed
write are removed by :func:`remove_stale_temporaries`. Files are created with mode 0666
less the umask, as ``open`` creates them.
:func:`load_table` and :func:`load_steps` read the parquet tables that
:mod:`paltest.testbed.tables` keeps beside the files (``tables/``), readable without
paltest.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> r = RunResult(config=make_config("quadratic", {}, "sgd", {"lr": 0.1}, 1, 1, 0),
    ...               environment={}, epochs={"epoch": np.arange(2.0),
    ...               "train_loss": np.array([1.0, 0.5])}, steps={}, timings={}, totals={})
    >>> d = tempfile.mkdtemp()
    >>> path = save(r, d)
    >>> load(path).run_id == r.run_id
    True
"""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paltest.testbed.runconfig import environment, make_config, run_id, xp_name

__all__ = [
    "FORMAT_VERSION",
    "STALE_TEMPORARY_SECONDS",
    "IncompleteResultError",
    "RunResult",
    "TIMING_ARRAYS",
    "completed_ids",
    "environment",
    "load",
    "load_steps",
    "load_table",
    "make_config",
    "remove_stale_temporaries",
    "result_path",
    "run_id",
    "save",
    "write_text_atomic",
    "xp_name",
]

FORMAT_VERSION = 1
#: The per-epoch arrays that hold timings (they differ between two runs of one config).
TIMING_ARRAYS = ("epoch_time", "wall_time", "step_time")
_SUFFIX = ".npz"
_TMP_PREFIX = ".tmp-"
_TMP_SUFFIX = ".part"
#: Temporary files of atomic writes untouched for this long are left over from a write
#: that was killed (see :func:`remove_stale_temporaries`).
STALE_TEMPORARY_SECONDS = 3600.0


class IncompleteResultError(ValueError):
    """A result file is truncated, partial, damaged, not a paltest result, or (where a
    directory is read) not named after its run id."""


@dataclass
class RunResult:
    """One run: config, environment, per-epoch and per-step arrays, timings, totals.

    Attributes:
        config: see :func:`make_config`.
        environment: see :func:`environment`.
        epochs: 1-D host arrays of length ``epochs + 1`` (``epoch``, ``train_loss``, the
            test metrics, ``wall_time``, ``epoch_time``, ``step_time``, cumulative
            ``n_fun``/``n_grad``/``n_steps``, ``lr_mean``, ``lr_median``, ``lr_zero``,
            ``nonfinite``; files written before ``step_time`` and ``lr_zero`` existed
            lack them).
        steps: 1-D host arrays with one entry per step (``epoch`` and every numeric field
            of the optimizer's step record).
        timings: seconds (``total``, ``setup``).
        totals: evaluation counts (optimizer ``n_fun``/``n_grad``/``n_steps`` and the
            runner's own full-data evaluations).
    """

    config: dict[str, Any]
    environment: dict[str, Any]
    epochs: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """The hash of :attr:`config` (see :func:`run_id`)."""
        return run_id(self.config)


def _check_directory(directory: Any) -> Path:
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(f"directory: {str(path)!r} is not a directory")
    return path


def save(result: RunResult, directory: str | os.PathLike) -> Path:
    """Write ``result`` to ``directory/<run_id>.npz`` atomically and return the path.

    A hidden temporary file in the same directory is written, flushed and fsynced and
    then moved into place with :func:`os.replace`, so readers see either no file or the
    complete one. An existing file of the same run is replaced.
    """
    path = _check_directory(directory)
    path.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for group, data in (("epochs", result.epochs), ("steps", result.steps)):
        for key, value in data.items():
            arrays[f"{group}/{key}"] = np.asarray(value)
    meta = {
        "format_version": FORMAT_VERSION, "run_id": result.run_id, "config": result.config,
        "environment": result.environment, "timings": result.timings,
        "totals": result.totals,
        "arrays": {k: [list(v.shape), v.dtype.str] for k, v in arrays.items()},
        "complete": True,
    }
    arrays["__meta__"] = np.asarray(json.dumps(meta, allow_nan=True))
    return _replace_atomically(result_path(path, result.run_id),
                               lambda fh: np.savez(fh, **arrays))


def result_path(directory: str | os.PathLike, run_id: str) -> Path:
    """Where :func:`save` puts the run ``run_id`` in ``directory``: ``<run_id>.npz``."""
    return Path(directory) / f"{run_id}{_SUFFIX}"


def _new_temporary(target: Path) -> tuple[int, str]:
    """A new hidden ``.tmp-<stem>-<random>.part`` file beside ``target``, opened for
    writing; created with mode 0666 less the umask, as ``open`` would create ``target``
    (``tempfile.mkstemp`` makes it 0600, unreadable to collaborators)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = target.parent / f"{_TMP_PREFIX}{target.stem}-{secrets.token_hex(6)}{_TMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def remove_stale_temporaries(directory: str | os.PathLike,
                             max_age: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
    """Remove the temporary files (``.tmp-*.part``) of writes into ``directory`` untouched
    for ``max_age`` seconds, and return them.

    A write that is killed (SIGKILL, a power cut) cannot remove its temporary file; a
    live write finishes within seconds, so one untouched for an hour is left over.
    Sweeps and figures call this on their folders before they start.
    """
    path = Path(directory)
    removed = []
    now = time.time()
    try:
        candidates = list(path.glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"))
    except OSError:
        return removed
    for tmp in candidates:
        try:
            st = tmp.lstat()
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > max_age:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # removed meanwhile (another sweep), or not ours to remove
            continue
    return removed


def _replace_atomically(target: Path, write: Any) -> Path:
    """Call ``write(binary file)`` on a hidden temporary file beside ``target``, flush and
    fsync it, and rename it over ``target`` (then fsync the directory); on any failure
    the temporary file is removed and ``target`` is left as it was."""
    fd, tmp = _new_temporary(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def load(path: str | os.PathLike) -> RunResult:
    """Read one result file; :class:`IncompleteResultError` unless it is complete and intact.

    Every zip member is read through :mod:`zipfile`, which checks its CRC-32, before
    NumPy parses any array header or the metadata is decoded; then the metadata's
    structure, the completeness marker and format version, the list of arrays (names,
    shapes, dtypes, one dimension, one length per group) and the run id (the hash of
    the config) are checked. Any damage, whatever it hits (an array header, the JSON
    metadata, the zip directory, a truncation), raises :class:`IncompleteResultError`
    naming the file; only :class:`MemoryError` (and ``KeyboardInterrupt``) pass through.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise IncompleteResultError(
            f"{path}: not a complete result file ({type(err).__name__}: {err})") from err
    if not stat.S_ISREG(mode):  # a FIFO would block the read forever
        raise IncompleteResultError(f"{path}: not a regular file (a FIFO, a device or a "
                                    "folder), not a result file")
    try:
        members = _read_members(path)
        meta = _parse_meta(members.pop(_META, None), path)
        arrays = _parse_arrays(members, meta, path)
        groups: dict[str, dict[str, np.ndarray]] = {"epochs": {}, "steps": {}}
        for key, value in arrays.items():
            group, name = key.split("/", 1)
            groups[group][name] = value
        result = RunResult(config=meta["config"], environment=meta["environment"],
                           epochs=groups["epochs"], steps=groups["steps"],
                           timings=meta["timings"], totals=meta["totals"])
        if result.run_id != meta["run_id"]:
            raise IncompleteResultError(f"{path}: run id does not match its config")
    except (IncompleteResultError, MemoryError):
        raise
    except Exception as err:  # whatever a damaged file makes the parsers raise
        raise IncompleteResultError(
            f"{path}: not a complete result file ({type(err).__name__}: {err})") from err
    return result


_META = "__meta__"
_NPY = ".npy"
_GROUPS = ("epochs", "steps")


def _read_members(path: Path) -> dict[str, bytes]:
    """The bytes of every member, each checked against its CRC-32 by :mod:`zipfile`."""
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            key = info.filename.removesuffix(_NPY)
            if key == info.filename or key in members:
                raise IncompleteResultError(
                    f"{path}: unexpected or repeated member {info.filename!r}")
            members[key] = zf.read(info)  # raises BadZipFile on a CRC mismatch
    return members


def _npy(data: bytes) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)


def _parse_meta(data: bytes | None, path: Path) -> dict[str, Any]:
    if data is None:
        raise IncompleteResultError(f"{path}: no metadata")
    raw = _npy(data)
    if raw.shape != () or raw.dtype.kind != "U":
        raise IncompleteResultError(f"{path}: the metadata is not a string")
    meta = json.loads(str(raw))
    if not (isinstance(meta, dict) and meta.get("complete") is True
            and meta.get("format_version") == FORMAT_VERSION):
        raise IncompleteResultError(f"{path}: no completeness marker")
    kinds = {"run_id": str, "config": dict, "environment": dict, "timings": dict,
             "totals": dict, "arrays": dict}
    for key, kind in kinds.items():
        if not isinstance(meta.get(key), kind):
            raise IncompleteResultError(f"{path}: metadata {key!r} is not a {kind.__name__}")
    return meta


def _parse_arrays(members: dict[str, bytes], meta: dict[str, Any],
                  path: Path) -> dict[str, np.ndarray]:
    listed = meta["arrays"]
    if set(listed) != set(members):
        raise IncompleteResultError(
            f"{path}: arrays {sorted(set(listed) ^ set(members))} missing or not listed")
    arrays, lengths = {}, {}
    for key, spec in listed.items():
        group, sep, name = key.partition("/")
        if group not in _GROUPS or not sep or not name:
            raise IncompleteResultError(f"{path}: unexpected array {key!r}")
        value = _npy(members[key])
        if [list(value.shape), value.dtype.str] != spec or value.ndim != 1:
            raise IncompleteResultError(f"{path}: array {key!r} does not match")
        if lengths.setdefault(group, value.shape[0]) != value.shape[0]:
            raise IncompleteResultError(f"{path}: the {group} arrays differ in length")
        arrays[key] = value
    return arrays


def _result_files(directory: str | os.PathLike) -> list[Path]:
    path = _check_directory(directory)
    if not path.exists():
        return []
    return sorted(p for p in path.glob(f"*{_SUFFIX}") if not p.name.startswith("."))


def _complete_runs(directory: str | os.PathLike, strict: bool) -> list[RunResult]:
    """The runs of the intact result files of ``directory`` named after their run id.

    The one check behind :func:`load_table`, :func:`load_steps` and
    :func:`completed_ids`: any other ``.npz`` file (damaged, partial, or a copy such as
    ``<run_id>.bak.npz``) is skipped with a warning naming it (``strict``: raised).
    """
    out = []
    for p in _result_files(directory):
        try:
            r = load(p)
            if p.stem != r.run_id:
                raise IncompleteResultError(
                    f"{p}: the file name is not its run id {r.run_id} (a copy?)")
        except IncompleteResultError as err:
            if strict:
                raise
            warnings.warn(f"skipping {err}", stacklevel=3)
            continue
        out.append(r)
    return out


def completed_ids(directory: str | os.PathLike) -> set[str]:
    """The run ids with an intact result file ``<run_id>.npz`` in ``directory``.

    Other ``.npz`` files are skipped with a warning naming them (a sweep reruns them).
    """
    return {r.run_id for r in _complete_runs(directory, strict=False)}


def load_table(directory: str | os.PathLike, *, strict: bool = False,
               cache: bool = True) -> Any:
    """A pandas DataFrame with one row per run and epoch (epoch 0 = before training).

    Columns: ``run_id``, ``problem``, ``optimizer``, ``seed``, ``dtype``, ``xp``,
    ``batch_size``, ``epochs``, one ``hp_<name>`` column per hyperparameter, one
    ``po_<name>`` column per other problem option, then the per-epoch arrays (``epoch``,
    ``train_loss``, test metrics, ``lr_mean``, ``lr_median``, cumulative ``n_fun``,
    ``n_grad``, ``n_steps``, ``wall_time``, ...); rows ordered by run id, then epoch. A
    column whose values mix numbers and strings across runs is text. Incomplete or
    damaged files and files not named ``<run_id>.npz`` are skipped with a warning naming
    them (``strict=True`` raises :class:`IncompleteResultError` instead).

    It is read from ``directory/tables/epochs.parquet``, brought up to date first with
    the result files that are new or changed (:mod:`paltest.testbed.tables`); ``cache=False``
    reads and checks every result file and writes nothing.
    """
    from paltest.testbed import tables

    return tables.read_epochs(directory, strict=strict, cache=cache)


def load_steps(directory: str | os.PathLike, *, strict: bool = False,
               cache: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """``{run_id: {field: per-step array}}`` for the complete runs in ``directory``.

    Files are skipped (or, with ``strict``, raise) as in :func:`load_table`; read from
    ``directory/tables/steps.parquet`` likewise (each array in its run's own dtype).
    """
    from paltest.testbed import tables

    return tables.read_steps(directory, strict=strict, cache=cache)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, like :func:`save`: a hidden temporary file
    beside it is written, fsynced and renamed over ``path``, so a reader sees the old
    file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _replace_atomically(path, lambda fh: fh.write(text.encode("utf-8")))
