"""A check for drawn figures: every kind of marker drawn is in a legend, and every legend
entry is drawn (issue 28: the selection plots' title promised markers that were not
drawn, and markers were drawn that no legend explained)."""

from __future__ import annotations

from typing import Any

from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D

NO_MARKER = {None, "None", "none", "", " "}


def _kind(line: Line2D) -> tuple[str, bool]:
    """A marker kind: its symbol and whether it is filled."""
    face = line.get_markerfacecolor()
    filled = not (isinstance(face, str) and face.lower() == "none") and to_rgba(face)[3] > 0
    return str(line.get_marker()), filled


def drawn_markers(fig: Any) -> set[tuple[str, bool]]:
    """The marker kinds of the data lines of every panel (lines with points only)."""
    return {_kind(ln) for ax in fig.axes for ln in ax.get_lines()
            if ln.get_marker() not in NO_MARKER and len(ln.get_xdata())}


def legend_entries(fig: Any) -> list[tuple[str, Any]]:
    """``(text, handle)`` of every legend of the figure and of its panels."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [(t.get_text(), h) for lg in legends
            for t, h in zip(lg.get_texts(), lg.legend_handles, strict=True)]


def assert_legend_matches_markers(fig: Any) -> None:
    """Every drawn marker kind has a legend entry with that marker, and every legend
    entry is drawn: an artist of a panel carries its label, or (a proxy) its marker kind
    is drawn."""
    entries = legend_entries(fig)
    listed = {_kind(h) for _, h in entries
              if isinstance(h, Line2D) and h.get_marker() not in NO_MARKER}
    drawn = drawn_markers(fig)
    assert drawn <= listed, f"markers drawn without a legend entry: {drawn - listed}"
    labels = {a.get_label() for ax in fig.axes for a in ax.get_children()}
    for text, h in entries:
        proxy_drawn = (isinstance(h, Line2D) and h.get_marker() not in NO_MARKER
                       and _kind(h) in drawn)
        assert text in labels or proxy_drawn, f"legend entry {text!r} is not drawn"
