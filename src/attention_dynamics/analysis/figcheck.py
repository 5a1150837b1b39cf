"""Layout checks of a matplotlib figure: overlapping text, text cut by the figure edge, legends on data.

Used by the gallery test (tests/test_gallery.py) on every figure of the package, and handy
when changing a figure::

    from attention_dynamics.analysis.figcheck import layout_problems
    print(layout_problems(fig))          # [] when the layout is clean

Every check works on window extents after a draw (``fig.canvas.get_renderer()``), in
display pixels, so it sees the figure exactly as it is saved at the figure's dpi.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["visible_texts", "text_overlaps", "clipped_texts", "texts_on_data", "layout_problems", "Problem"]

TOL_PX = 0.5  # boxes that share less than this (in both directions) do not count as overlapping


@dataclass(frozen=True)
class Problem:
    kind: str        # "overlap", "clipped" or "covers data"
    what: str        # the text(s) involved

    def __str__(self) -> str:
        return f"{self.kind}: {self.what}"


def _tick_labels(ax):
    """The tick labels the axes draws (ticks inside the view interval, non-empty)."""
    out = []
    for axis in (ax.xaxis, ax.yaxis):
        if not axis.get_visible():
            continue
        for tick in axis._update_ticks():  # exactly the ticks Axis.draw draws
            for lab in (tick.label1, tick.label2):
                if tick.get_visible() and lab.get_visible() and lab.get_text().strip():
                    out.append(lab)
    return out


def visible_texts(fig) -> list:
    """Every drawn, non-empty Text of ``fig``: tick labels, axis labels, titles, texts, legends, suptitle."""
    fig.canvas.draw()
    texts = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += _tick_labels(ax)
        texts += [ax.xaxis.label, ax.yaxis.label, ax.title, ax._left_title, ax._right_title]
        texts += list(ax.texts)
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            texts += list(leg.get_texts()) + [leg.get_title()]
        # offset texts (×10^k) of the axes
        texts += [ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text()]
    for leg in fig.legends:
        if leg.get_visible():
            texts += list(leg.get_texts()) + [leg.get_title()]
    texts += list(fig.texts)
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        t = getattr(fig, name, None)
        if t is not None:
            texts.append(t)
    seen, out = set(), []
    for t in texts:
        if id(t) in seen or not t.get_visible() or not t.get_text().strip():
            continue
        ax = t.axes
        if ax is not None and not ax.get_visible():
            continue
        seen.add(id(t))
        out.append(t)
    return out


def _box(t, renderer):
    return t.get_window_extent(renderer)


def _label(t) -> str:
    s = t.get_text().replace("\n", " ⏎ ")
    return repr(s[:60] + ("…" if len(s) > 60 else ""))


def text_overlaps(fig, texts=None) -> list[Problem]:
    """Pairs of visible texts whose boxes overlap by more than TOL_PX in both directions."""
    texts = visible_texts(fig) if texts is None else texts
    r = fig.canvas.get_renderer()
    boxes = [_box(t, r) for t in texts]
    out = []
    for i in range(len(texts)):
        a = boxes[i]
        if a.width <= 0 or a.height <= 0:
            continue
        for j in range(i + 1, len(texts)):
            b = boxes[j]
            if b.width <= 0 or b.height <= 0:
                continue
            dx = min(a.x1, b.x1) - max(a.x0, b.x0)
            dy = min(a.y1, b.y1) - max(a.y0, b.y0)
            if dx > TOL_PX and dy > TOL_PX:
                out.append(Problem("overlap", f"{_label(texts[i])} × {_label(texts[j])}"))
    return out


def clipped_texts(fig, texts=None) -> list[Problem]:
    """Visible texts that reach beyond the figure edge (cut off when saved)."""
    texts = visible_texts(fig) if texts is None else texts
    r = fig.canvas.get_renderer()
    W, H = fig.bbox.width, fig.bbox.height
    out = []
    for t in texts:
        b = _box(t, r)
        if b.x0 < -TOL_PX or b.y0 < -TOL_PX or b.x1 > W + TOL_PX or b.y1 > H + TOL_PX:
            out.append(Problem("clipped", f"{_label(t)} at [{b.x0:.0f}, {b.x1:.0f}]×[{b.y0:.0f}, {b.y1:.0f}] "
                                          f"in {W:.0f}×{H:.0f}"))
    return out


def _data_points(ax):
    """Display coordinates of the data drawn in ``ax`` (line vertices, scatter offsets)."""
    import numpy as np

    pts = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_xydata()
        if not len(xy):
            continue
        # lines spanning the whole axes (axhline/axvline) are reference lines, not data
        tr = line.get_transform()
        if tr != ax.transData:
            continue
        pts.append(ax.transData.transform(np.asarray(xy, dtype=float)))
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offs = coll.get_offsets()
        if len(offs) and coll.get_offset_transform() == ax.transData:
            pts.append(ax.transData.transform(np.asarray(offs, dtype=float)))
    if not pts:
        return np.empty((0, 2))
    p = np.concatenate(pts)
    b = ax.bbox  # only what is inside the axes is drawn
    inside = (p[:, 0] >= b.x0) & (p[:, 0] <= b.x1) & (p[:, 1] >= b.y0) & (p[:, 1] <= b.y1)
    return p[np.isfinite(p).all(axis=1) & inside]


def texts_on_data(fig, *, drawn: bool = False) -> list[Problem]:
    """Legends and in-axes texts that sit on data points of an axes (they would hide them)."""
    if not drawn:
        fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = []
    data_axes = [ax for ax in fig.axes if ax.get_visible() and (ax.get_lines() or ax.collections)]
    legends = [leg for leg in fig.legends if leg.get_visible()]
    legends += [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None and ax.get_legend().get_visible()]
    for leg in legends:
        b = leg.get_window_extent(r)
        for ax in data_axes:
            p = _data_points(ax)
            inside = ((p[:, 0] > b.x0) & (p[:, 0] < b.x1) & (p[:, 1] > b.y0) & (p[:, 1] < b.y1))
            if inside.any():
                out.append(Problem("covers data", f"legend over {int(inside.sum())} data points"))
    for ax in data_axes:
        p = _data_points(ax)
        for t in ax.texts:
            if not t.get_visible() or not t.get_text().strip():
                continue
            b = t.get_window_extent(r)
            inside = ((p[:, 0] > b.x0) & (p[:, 0] < b.x1) & (p[:, 1] > b.y0) & (p[:, 1] < b.y1))
            if inside.any():
                out.append(Problem("covers data", f"{_label(t)} over {int(inside.sum())} data points"))
    return out


def layout_problems(fig) -> list[Problem]:
    """All layout problems of ``fig``: overlapping texts, texts cut by the edge, legends/texts on data."""
    texts = visible_texts(fig)
    return text_overlaps(fig, texts) + clipped_texts(fig, texts) + texts_on_data(fig, drawn=True)
