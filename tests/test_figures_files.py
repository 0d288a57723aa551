"""The saved files of the plots: every file written, PNG and PDF of the same area, each file
rendered once, nothing cut off at the edges, the figure legend clear of the panels; the
grouped band and zero-lr marks of several curves in one panel."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from PIL import Image  # noqa: E402
from test_figures import _record, _table  # noqa: E402

from paltest.testbed import figures  # noqa: E402

BORDER = 3  # pixels along each edge of a PNG that must be background (PAD_INCHES is 15)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test made (pyplot keeps them open otherwise)."""
    yield
    figures._plt().close("all")


def assert_saved_whole(png, pdf) -> tuple[float, float]:
    """The PNG has only background along its edges (nothing cut off there) and the PDF's
    page is the same area; returns the area in inches."""
    im = np.asarray(Image.open(png).convert("RGB"))
    h, w = im.shape[:2]
    edges = np.concatenate([im[:BORDER].reshape(-1, 3), im[-BORDER:].reshape(-1, 3),
                            im[:, :BORDER].reshape(-1, 3), im[:, -BORDER:].reshape(-1, 3)])
    assert (edges == 255).all(), f"{png}: something drawn on the edge of the image"
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
    assert box is not None
    # the PNG's size is the area in pixels, rounded: within a pixel of the PDF's page
    page = np.array([float(box[1]), float(box[2])]) / 72
    np.testing.assert_allclose(page, [w / figures.DPI, h / figures.DPI],
                               atol=1.01 / figures.DPI)
    return w / figures.DPI, h / figures.DPI


def _drawn_texts(monkeypatch) -> list:
    """Records ``(extent, page width, page height)`` of every text drawn from now on, in
    the coordinates of the page being rendered (pixels of a PNG, points of a PDF)."""
    from matplotlib.text import Text

    seen = []
    draw = Text.draw

    def recording(self, renderer):
        if self.get_visible() and self.get_text().strip():
            seen.append((self.get_text(), self.get_window_extent(renderer),
                         *renderer.get_canvas_width_height()))
        return draw(self, renderer)

    monkeypatch.setattr(Text, "draw", recording)
    return seen


def _plots(tmp_path):
    scores = {(0.1, 0.0): -2.0, (1.0, 0.0): -3.0, (10.0, 0.0): None, (0.1, 0.4): -2.99}
    long = " - quick scale, a note long enough to be wider than the panels"
    yield "figure8", figures.figure8(_table(), {"mf-rank4": 0.01, "mf-rank10": 0.0},
                                     tmp_path / "f8")
    yield "figure9", figures.figure9(_table(problems=("mushrooms",), accuracy=True),
                                     tmp_path / "f9", note=long)
    yield "sensitivity", figures.sensitivity({"mf-rank4": _record(scores, (1.0, 0.0))},
                                             tmp_path / "sens", note=long)


def test_every_file_is_written_whole(tmp_path, monkeypatch):
    texts = _drawn_texts(monkeypatch)
    for name, (fig, paths) in _plots(tmp_path):
        assert [p.suffix for p in paths] == [".png", ".pdf"], name
        assert all(p.is_file() for p in paths), name
        width, _ = assert_saved_whole(*paths)
        # the narrow plots' titles are wider than the figure: the saved area grows
        if name != "figure8":
            assert width > fig.get_figwidth(), name
        figures._plt().close(fig)
    assert {"PAL", "epoch", "chosen"} <= {t[0] for t in texts}  # legends, labels: drawn
    for text, box, w, h in texts:  # every text drawn lies on its page (within rounding)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= w + 1 and box.y1 <= h + 1, text


def test_each_file_is_rendered_once(tmp_path, monkeypatch):
    fig, _ = figures.figure8(_table(), {})
    draws = []
    draw = fig.draw
    monkeypatch.setattr(fig, "draw", lambda renderer: draws.append(renderer) or draw(renderer))
    paths = figures.save(fig, tmp_path / "once")
    assert len(draws) == len(paths) == 2
    # a figure laid out by the caller (tight_layout leaves a placeholder engine) too
    fig.tight_layout()
    draws.clear()
    figures.save(fig, tmp_path / "again")
    assert len(draws) == 2
    assert fig.get_layout_engine() is not None  # the caller's figure is left as it was


def test_the_figure_legend_is_clear_of_the_panels():
    for fig, _ in (figures.figure8(_table(), {"mf-rank4": 0.01}),
                   figures.sensitivity({"mf-rank4": _record({(0.1, 0.0): -2.0, (1.0, 0.0):
                                                             -3.0}, (1.0, 0.0))})):
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        top = legend.get_window_extent(renderer).y1
        lowest = min(ax.get_tightbbox(renderer).y0 for ax in fig.axes)  # tick labels too
        assert top <= lowest + 0.5
        assert legend.get_window_extent(renderer).y0 >= -0.5  # inside the figure


def test_band_by_a_column_is_one_band_per_value():
    t = _table(problems=("mf-rank4",), optimizers=("pal", "sgd"))
    both = figures.band(t, "train_loss", by="optimizer")
    for o in ("pal", "sgd"):
        pd.testing.assert_frame_equal(both.loc[o], figures.band(t[t["optimizer"] == o],
                                                                "train_loss"))


def test_curves_of_one_panel_get_their_own_band_and_zero_lr_marks():
    table = _table(problems=("mf-true",), optimizers=("exact", "sgd"), seeds=(0, 1))
    table["n_steps"] = table["epoch"] * 8
    table["lr_zero"] = 0
    stopped = (table["optimizer"] == "exact") & (table["epoch"] >= 3)
    table.loc[stopped, ["lr_mean", "lr_zero"]] = [0.0, 8]
    fig, _ = figures.figure8(table, {"mf-true": 0.0})
    loss_ax, lr_ax = fig.axes
    for o, name in (("exact", "exact LS"), ("sgd", "SGD")):
        per_seed = table[table["optimizer"] == o].pivot(index="epoch", columns="seed",
                                                        values="lr_mean")
        (line,) = [ln for ln in lr_ax.get_lines() if ln.get_label() == name]
        mean = per_seed.mean(axis=1).dropna()
        np.testing.assert_allclose(line.get_ydata(), mean[mean > 0])  # log axis: 0 not drawn
    marks = [ln for ln in lr_ax.get_lines() if ln.get_marker() == "v"]
    assert [list(ln.get_xdata()) for ln in marks] == [[3.0, 4.0, 5.0]]
    assert marks[0].get_color() == figures.COLORS["exact"]
    assert not [ln for ln in loss_ax.get_lines() if ln.get_marker() == "v"]
