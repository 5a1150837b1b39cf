"""Shared figure helpers of the reproductions (matplotlib with the Agg backend)."""
from __future__ import annotations

import os

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
