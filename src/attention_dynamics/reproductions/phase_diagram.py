"""GLPR23: the (β, t) phase diagram of SA on the circle (fraction of clustered pairs)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

from ..engine.dynamics import velocity
from ._figures import _plt, _save_and_close

__all__ = ["PHASE_COLUMNS", "phase_diagram", "phase_figure", "plot_phase_diagram"]

PHASE_COLUMNS = {
    "model": "sa or usa (usa in GKPR24 time)",
    "d": "ambient dimension",
    "n": "particles per system",
    "beta": "inverse temperature β",
    "t": "time",
    "fraction": "mean over systems of the fraction of pairs i < j with ⟨x_i(t), x_j(t)⟩ > threshold",
    "fraction_sem": "standard error of that mean over systems",
    "n_systems": "number of independent uniform initial conditions",
    "threshold": "inner-product threshold defining a clustered pair",
}


def phase_diagram(betas, times, *, n: int = 32, d: int = 2, n_systems: int = 16, model: str = "sa",
                  threshold: float = 0.999, base_seed: int = 0, method: str = "RK45", rtol: float = 1e-7,
                  atol: float = 1e-9) -> pd.DataFrame:
    """GLPR23's phase diagram: the fraction of clustered pairs as a function of (β, t).

    For each β, ``n_systems`` independent uniform initial conditions (the same ones at
    every β: stream of the cell {init: uniform, d, n}) are integrated with
    :func:`scipy.integrate.solve_ivp` on :func:`dynamics.velocity`, sampled at ``times``.
    A pair is clustered when ⟨x_i, x_j⟩ > ``threshold`` (0.999, i.e. an angle < 0.045 rad).
    One row per (β, t).
    """
    from ..pipeline.cell import seed_sequence
    from .. import initial

    times = np.asarray(times, dtype=float)
    if np.any(np.diff(times) <= 0) or times[0] < 0:
        raise ValueError("times must be increasing and non-negative")
    x0s = [initial.uniform(n, d, np.random.default_rng(seed_sequence({"init": "uniform", "d": d, "n": n}, s,
                                                                       base_seed))).x for s in range(n_systems)]
    mass = np.ones(n)
    iu = np.triu_indices(n, 1)
    rows = []
    for beta in betas:
        beta = float(beta)
        fr = np.empty((n_systems, times.size))

        def fun(t, y):
            x = y.reshape(n, d)
            return velocity(x / np.linalg.norm(x, axis=1, keepdims=True), mass, beta, model).ravel()

        for s, x0 in enumerate(x0s):
            sol = solve_ivp(fun, (0.0, float(times[-1])), x0.ravel(), method=method, t_eval=times, rtol=rtol,
                            atol=atol)
            if not sol.success:
                raise RuntimeError(f"phase diagram integration failed at beta={beta}, system {s}: {sol.message}")
            for k in range(times.size):
                x = sol.y[:, k].reshape(n, d)
                x = x / np.linalg.norm(x, axis=1, keepdims=True)
                fr[s, k] = np.mean((x @ x.T)[iu] > threshold)
        sem = fr.std(axis=0, ddof=1) / np.sqrt(n_systems) if n_systems > 1 else np.full(times.size, np.nan)
        for k, t in enumerate(times):
            rows.append(dict(model=model, d=d, n=n, beta=beta, t=float(t), fraction=float(fr[:, k].mean()),
                             fraction_sem=float(sem[k]), n_systems=n_systems, threshold=threshold))
    return pd.DataFrame(rows, columns=list(PHASE_COLUMNS))



def _cell_edges(v: np.ndarray) -> np.ndarray:
    """Edges of cells centred on the sorted values ``v`` (midpoints; a single value gets width 1 or 20%)."""
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        h = 0.1 * abs(v[0]) if v[0] != 0 else 0.5
        return np.array([v[0] - h, v[0] + h])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def phase_figure(phase: pd.DataFrame):
    """GLPR23's (β, t) heat map of the fraction of clustered pairs (returns the matplotlib figure)."""
    from ..analysis.figstyle import fit_width

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained", dpi=130)
    if not len(phase):
        ax.text(0.5, 0.5, "no phase-diagram rows", transform=ax.transAxes, ha="center", color="0.4")
        return fig
    tab = phase.pivot(index="t", columns="beta", values="fraction").sort_index()
    b, t = tab.columns.to_numpy(float), tab.index.to_numpy(float)
    # cells centred on the sampled (β, t), also with a single β or t (shading="nearest" draws nothing then)
    mesh = ax.pcolormesh(_cell_edges(b), _cell_edges(t), tab.to_numpy(), shading="flat", cmap="magma", vmin=0.0,
                         vmax=1.0)
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(f"fraction of pairs with ⟨x_i, x_j⟩ > {phase['threshold'].iloc[0]:g}", fontsize=9)
    if len(b) == 1:
        ax.set_xticks(b)
    ax.set_xlabel("β")
    ax.set_ylabel("t")
    title = ax.set_title(f"{phase['model'].iloc[0].upper()}, d = {int(phase['d'].iloc[0])}, "
                         f"n = {int(phase['n'].iloc[0])}, {int(phase['n_systems'].iloc[0])} systems per β "
                         "(GLPR23 phase diagram)", fontsize=9)
    fig.canvas.draw()
    fit_width(title, 0.98 * ax.get_window_extent().width)
    return fig


def plot_phase_diagram(phase: pd.DataFrame, paths) -> None:
    """Save :func:`phase_figure` to ``paths`` (one path or several; format from the suffix)."""
    _save_and_close(phase_figure(phase), paths)

