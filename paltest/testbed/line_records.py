r"""The records of sampled lines (:mod:`paltest.testbed.lines`) as tables, and their files.

:data:`LINE_COLUMNS` are the per-line scalars; :class:`LineRecord` one line on the host;
:class:`LineSamples` the tidy tables (``lines``, ``points``, ``counts``, ``config``);
:func:`save_samples` / :func:`load_samples` write and read them next to a run's file.
All re-exported by :mod:`paltest.testbed.lines`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["LINE_COLUMNS", "LineRecord", "LineSamples", "load_samples", "save_samples"]

#: The scalar columns of :attr:`LineSamples.lines`, one row per sampled line.
LINE_COLUMNS = (
    "step_index", "epoch", "shape", "moved", "step", "mu", "scale", "angle",
    "l0", "l_mu", "dl0", "pal_a", "pal_b", "pal_c", "pal_min",
    "lsq_a", "lsq_b", "lsq_c", "lsq_min", "lsq_residual",
    "s_min", "l_min", "full_s_min", "full_l_min", "full_shape", "batch_l_min_at_full_min",
    "lo", "hi", "extensions")
_QUARTILES = ("q0", "q25", "q50", "q75", "q100")


class LineRecord(NamedTuple):
    """One sampled line on the host: ``row`` (the :data:`LINE_COLUMNS` values), and the
    arrays ``s`` (steps), ``loss`` (batch loss), ``full`` (full training loss or
    ``None``) and ``batches`` (the epoch's batch losses, shape (batches, points), or
    ``None``)."""

    row: dict[str, Any]
    s: np.ndarray
    loss: np.ndarray
    full: np.ndarray | None
    batches: np.ndarray | None


@dataclass
class LineSamples:
    """Sampled lines as two tidy tables.

    Attributes:
        lines: one row per sampled line (:data:`LINE_COLUMNS`).
        points: one row per line and sample: ``step_index``, ``s``, ``loss`` (the batch
            loss that defined the direction), ``full_loss`` (when sampled), and, with
            batch quartiles, ``q0``, ``q25``, ``q50``, ``q75``, ``q100`` and
            ``batch_mean`` over the epoch's batches.
        counts: the sampler's own evaluation counts.
        config: the sampler's settings.
    """

    lines: Any
    points: Any
    counts: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: list[LineRecord], counts: dict[str, int],
                     config: dict[str, Any]) -> LineSamples:
        """Build the tables from :class:`LineRecord` s."""
        import pandas as pd

        lines = pd.DataFrame([r.row for r in records], columns=list(LINE_COLUMNS))
        frames = []
        for r in records:
            cols: dict[str, Any] = {"step_index": np.full(len(r.s), r.row["step_index"]),
                                    "s": r.s, "loss": r.loss}
            if r.full is not None:
                cols["full_loss"] = r.full
            if r.batches is not None and r.batches.size:
                qs = np.percentile(r.batches, [0, 25, 50, 75, 100], axis=0)
                cols.update(zip(_QUARTILES, qs, strict=True))
                cols["batch_mean"] = np.mean(r.batches, axis=0)
            frames.append(pd.DataFrame(cols))
        points = (pd.concat(frames, ignore_index=True) if frames
                  else pd.DataFrame(columns=["step_index", "s", "loss"]))
        return cls(lines, points, counts, config)


def save_samples(samples: LineSamples, directory: str | Path, stem: str) -> list[Path]:
    """Write ``<stem>.lines.csv``, ``<stem>.points.csv`` and ``<stem>.lines.json``
    (counts and settings) into ``directory`` atomically (``stem``: the run id, so the
    files sit next to the run's result file)."""
    from paltest.testbed import results

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = {"counts": samples.counts, "config": samples.config}
    return [results.write_text_atomic(d / f"{stem}.lines.csv", samples.lines.to_csv(index=False)),
            results.write_text_atomic(d / f"{stem}.points.csv",
                                      samples.points.to_csv(index=False)),
            results.write_text_atomic(d / f"{stem}.lines.json", json.dumps(meta, indent=1))]


def load_samples(directory: str | Path, stem: str) -> LineSamples:
    """Read what :func:`save_samples` wrote (``FileNotFoundError`` when absent)."""
    import pandas as pd

    d = Path(directory)
    meta = json.loads((d / f"{stem}.lines.json").read_text(encoding="utf-8"))
    lines = pd.read_csv(d / f"{stem}.lines.csv")
    return LineSamples(lines, pd.read_csv(d / f"{stem}.points.csv"), meta["counts"],
                       meta["config"])
