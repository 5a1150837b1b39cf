"""Shared figure helpers of the reproductions (matplotlib with the Agg backend)."""
from __future__ import annotations

import os

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, paths) -> None:
    """Save ``fig`` to one path or several (format from each suffix), each atomically."""
    from ..pipeline.io import atomic_savefig

    for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths):
        atomic_savefig(fig, p, dpi=130)


def _save_and_close(fig, paths) -> None:
    """Save ``fig`` to ``paths`` (see :func:`_save_figure`) and close it, also when saving fails."""
    try:
        _save_figure(fig, paths)
    finally:
        _plt().close(fig)


def _fit_title(ax, text: str, fontsize: float) -> None:
    """Set the panel title and re-wrap it to the panel's width (after the layout: the figure is drawn first)."""
    from ..analysis.figstyle import fit_width

    title = ax.set_title(text, fontsize=fontsize)
    ax.figure.canvas.draw()
    fit_width(title, 0.98 * ax.get_window_extent().width)


def _frequency_scatter(ax, df, col, color, label=None, scale=260.0, marker="o"):
    """Observed values per β, marker area ∝ frequency among the seeds (values < 1 left out)."""
    g = df[df[col] >= 1]
    if not len(g):
        return
    cnt = g.groupby(["beta", col]).size().rename("k").reset_index()
    tot = g.groupby("beta").size()
    frac = cnt["k"].to_numpy() / tot.loc[cnt["beta"]].to_numpy()
    ax.scatter(cnt["beta"], cnt[col], s=scale * frac, color=color, alpha=0.55, label=label, marker=marker)


def _lstar_staircase(ax, d: int, bmax: float):
    """The l*(β, d) staircase on [0.2, bmax] with its switch points dotted."""
    from ..theory.gegenbauer import l_star, switch_points

    bs = np.linspace(0.2, bmax, 800)
    ax.plot(bs, l_star(bs, d), color="k", lw=1.1, drawstyle="steps-post")
    sp = switch_points(40, d)
    for b in sp[sp < bmax]:
        ax.axvline(b, color="0.8", ls=":", lw=0.7)
