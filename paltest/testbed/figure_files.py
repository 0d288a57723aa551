"""Saving plots: the layout fixed once, and the PNG and PDF files of one area, each file
rendered once (used by :mod:`paltest.testbed.figures` and
:mod:`paltest.testbed.line_plots`; matplotlib imported inside the functions).

``bbox_inches="tight"`` in ``savefig`` renders a file twice (once to measure what is
drawn), and a figure left with a layout engine (``tight_layout`` leaves a placeholder) is
drawn once more before each file. Here the layout is done once (:func:`layout`) and the
area ``"tight"`` would keep, everything drawn plus ``PAD_INCHES``, is measured once
(:func:`save`) and given to every file.

Example:
    >>> import tempfile, matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2], label="a line")
    >>> layout(fig, fig.legend(loc="lower center"))
    >>> [p.suffix for p in save(fig, tempfile.mkdtemp() + "/plot")]
    ['.png', '.pdf']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DPI", "PAD_INCHES", "layout", "save"]

DPI = 150  # of the PNG files
PAD_INCHES = 0.1  # around what is drawn, in the saved files (matplotlib's default)


def layout(fig: Any, legend: Any = None) -> None:
    """Fix the layout of ``fig`` once: matplotlib's tight layout (as
    ``Figure.tight_layout``; the height of ``legend``, a figure legend at the bottom,
    measured and kept free), leaving no layout engine on the figure, so that :func:`save`
    renders each file once."""
    from matplotlib.layout_engine import TightLayoutEngine

    bottom = 0.0
    if legend is not None:
        bottom = legend.get_window_extent(_renderer(fig)).height / fig.bbox.height
    TightLayoutEngine(rect=(0, bottom, 1, 1)).execute(fig)


def _renderer(fig: Any) -> Any:
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()


def save(fig: Any, out: str | os.PathLike | None, formats: tuple[str, ...] = ("png", "pdf"),
         metadata: dict[str, str] | None = None) -> list[Path]:
    """Save ``fig`` as ``out.<format>`` for each format (directories created; PNG at
    ``DPI`` dots per inch); the figure's title and ``metadata`` (e.g. ``{"scale":
    "quick"}``) go into the files' metadata (PNG text chunks; the PDF's Title and Subject).

    Every file shows the same area: the bounding box of everything drawn, padded by
    ``PAD_INCHES`` (what ``bbox_inches="tight"`` saves), measured once here, so that each
    file is rendered once (``"tight"`` renders every file twice)."""
    if out is None:
        return []
    import matplotlib
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else out.name
    info = "; ".join(f"{k}: {v}" for k, v in (metadata or {}).items())
    engine = fig.get_layout_engine()
    if isinstance(engine, PlaceHolderLayoutEngine):  # a layout already done: keep it fixed
        with matplotlib.rc_context({"figure.autolayout": False}):
            fig.set_layout_engine(None)  # (with one left, savefig renders every file twice)
    elif engine is not None:
        engine.execute(fig)
    try:
        dpi = fig.dpi  # measured at the PNG's resolution (text extents depend a little on it)
        fig.dpi = DPI
        try:
            area = fig.get_tightbbox(_renderer(fig)).padded(PAD_INCHES)
        finally:
            fig.dpi = dpi
        paths = []
        for fmt in formats:
            path = out.with_name(f"{out.name}.{fmt}")
            meta = ({"Title": title, "Description": info or title,
                     **{k.capitalize(): str(v) for k, v in (metadata or {}).items()}}
                    if fmt == "png" else {"Title": title, "Subject": info or title}
                    if fmt == "pdf" else None)
            fig.savefig(path, dpi=DPI if fmt == "png" else None, bbox_inches=area,
                        metadata=meta)
            paths.append(path)
    finally:
        if isinstance(engine, PlaceHolderLayoutEngine):
            fig.set_layout_engine(engine)
    return paths
