"""Figure helpers shared by the sweep figures (analysis.plots) and the reproduction figures.

Rules that keep a figure readable from 1 to 30 lines and 1 to 100 panels:

* a colour scale of more than ``LEGEND_MAX`` values is a colour bar, fewer are legend entries;
* legends sit outside the panels (below them), in as many columns as fit the figure width;
* titles are re-wrapped (at '; ' first, then at spaces) to the width they have.
"""
from __future__ import annotations

import textwrap

import numpy as np

__all__ = ["LEGEND_MAX", "TRUNC_VIRIDIS", "Scale", "fit_width", "legend_below", "suptitle"]

LEGEND_MAX = 5  # more distinct values than this: a colour bar instead of legend entries


def _viridis_0_09():
    import matplotlib
    from matplotlib.colors import ListedColormap

    # the top 10% of viridis (pale yellow) is hard to see on white
    return ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, 256)), name="viridis_0_0.9")


TRUNC_VIRIDIS = _viridis_0_09()


class Scale:
    """Colours of a numeric parameter (β, n): legend entries up to LEGEND_MAX values, else a colour bar.

    >>> s = Scale("β", [10, 20, 40]); s(10) == s.cmap(0.0)
    True
    """

    def __init__(self, name: str, values, *, log: bool = False):
        from matplotlib.colors import LogNorm, Normalize

        self.name = name
        self.values = sorted({float(v) for v in values if np.isfinite(v)})
        lo, hi = (self.values[0], self.values[-1]) if self.values else (1.0, 1.0)
        if hi <= lo:
            lo, hi = (lo / 2, lo * 2) if log and lo > 0 else (lo - 1.0, lo + 1.0)
        self.norm = LogNorm(lo, hi) if log and lo > 0 else Normalize(lo, hi)
        self.cmap = TRUNC_VIRIDIS

    def __call__(self, v):
        if len(self.values) == 1:
            return self.cmap(0.0)
        return self.cmap(float(self.norm(float(v))))

    @property
    def as_colourbar(self) -> bool:
        return len(self.values) > LEGEND_MAX

    def handles(self) -> list:
        """Legend entries (none when the scale is a colour bar)."""
        from matplotlib.lines import Line2D

        if self.as_colourbar:
            return []
        return [Line2D([], [], color=self(v), lw=2, label=f"{self.name} = {v:g}") for v in self.values]

    def colourbar(self, fig, axes, label: str):
        """A colour bar right of ``axes`` when the scale has more than LEGEND_MAX values, else None."""
        from matplotlib.cm import ScalarMappable

        if not self.as_colourbar:
            return None
        sm = ScalarMappable(norm=self.norm, cmap=self.cmap)
        cb = fig.colorbar(sm, ax=axes, location="right", shrink=min(0.9, 0.35 + 0.15 * len(axes)), aspect=25,
                          pad=0.02)
        cb.set_label(label, fontsize=8)
        if len(self.values) <= 8:  # ticks at the values drawn (e.g. n = 8, 16, …, 256 on a log scale)
            from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

            cb.ax.yaxis.set_major_locator(FixedLocator(self.values))
            cb.ax.yaxis.set_major_formatter(FixedFormatter([f"{v:.4g}" for v in self.values]))
            cb.ax.yaxis.set_minor_locator(NullLocator())
        cb.ax.tick_params(labelsize=7)
        return cb


def fit_width(text, max_px: float, renderer=None) -> None:
    """Re-wrap a Text artist until it is at most ``max_px`` wide: first at '; ', then at spaces."""
    renderer = renderer or text.figure.canvas.get_renderer()

    def too_wide(s: str) -> bool:
        text.set_text(s)
        return text.get_window_extent(renderer).width > max_px

    lines = text.get_text().split("\n")
    if not too_wide("\n".join(lines)):
        return
    base = []
    for line in lines:
        base += line.replace("; ", ";\n").split("\n") if too_wide(line) else [line]
    width = max(len(line) for line in base)
    while too_wide("\n".join(out := [w for line in base for w in (textwrap.wrap(line, width, break_on_hyphens=False)
                                                               or [line])])) and width > 12:
        width = int(width * 0.93)
    text.set_text("\n".join(out))


def legend_below(fig, handles, fontsize: float = 7):
    """One legend for the whole figure, below the panels (constrained layout), in as many columns as fit."""
    handles = [h for h in handles if h is not None]
    if not handles:
        return None
    r = fig.canvas.get_renderer()
    width_px = fig.get_figwidth() * fig.dpi
    ncol = len(handles)
    while True:
        leg = fig.legend(handles=handles, loc="outside lower center", ncols=ncol, fontsize=fontsize, frameon=False)
        if leg.get_window_extent(r).width <= 0.97 * width_px or ncol == 1:
            return leg
        leg.remove()
        ncol = max(1, ncol - 1 if ncol <= 4 else int(ncol * 0.75))


def suptitle(fig, text: str, fontsize: float = 10):
    """Figure title wrapped to the figure width."""
    st = fig.suptitle(text, fontsize=fontsize)
    fit_width(st, 0.97 * fig.get_figwidth() * fig.dpi)
    return st
