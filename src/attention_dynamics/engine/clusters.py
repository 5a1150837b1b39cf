"""Clusters by single linkage on angular distance, and exact collapse of near-coincident points."""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "gap_angle",
    "components",
    "single_linkage_labels",
    "circle_components",
    "components_with_extents",
    "component_extents",
    "is_macroscopic",
    "tight_mass_fraction",
    "locate_first",
    "first_time_on_grid",
    "FORMATION_SAMPLES",
    "FORMATION_FRACTION",
    "FORMATION_TIGHT_ANGLE",
    "cluster_centres",
    "min_intercluster_angle",
    "collapse_close_points",
    "weighted_mean_direction",
]


def gap_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between unit vectors a and b, accurate for tiny and for near-π angles:
    2 atan2(‖a − b‖/2, ‖a + b‖/2)."""
    s = np.linalg.norm(a - b) / 2.0
    c = np.linalg.norm(a + b) / 2.0
    return float(2.0 * np.arctan2(s, c))


def components(adj: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric boolean adjacency matrix (diagonal ignored).

    Small graphs use min-label propagation with pointer jumping (numpy only, no sparse
    conversion overhead); large ones scipy's ``connected_components``. Labels are
    numbered in order of first appearance.
    """
    m = adj.shape[0]
    if m <= 128:
        lab = np.arange(m)
        big = np.int64(m)
        while True:
            new = np.minimum(np.where(adj, lab[None, :], big).min(axis=1), lab)
            new = new[new]
            if np.array_equal(new, lab):
                break
            lab = new
    else:
        _, lab = connected_components(csr_matrix(adj), directed=False)
    lab = _canonical(lab)
    return int(lab.max()) + 1, lab


def single_linkage_labels(x: np.ndarray, theta_c: float) -> tuple[int, np.ndarray]:
    """Connected components of the graph {i ~ j : angle(x_i, x_j) < θ_c}.

    Returns ``(count, labels)``; labels are numbered in order of first appearance.
    """
    if x.shape[0] == 1:
        return 1, np.zeros(1, dtype=np.int64)
    return components(x @ x.T > np.cos(theta_c))


def circle_components(x: np.ndarray, theta_c: float, mass=None):
    """Single linkage at angle θ_c for points on the circle S¹, in O(n log n).

    On the circle the components of {i ~ j : angle < θ_c} are the arcs of sorted angles
    separated by gaps ≥ θ_c (a pair spanning such a gap is at least that far apart), so
    sorting replaces the n² Gram matrix. Returns ``(labels, masses, extents)``: component
    of each point, component masses, and angular extents (sum of the gaps inside the arc;
    this is the diameter for arcs shorter than π).
    """
    n = x.shape[0]
    mass = np.ones(n) if mass is None else np.asarray(mass, float)
    phi = np.arctan2(x[:, 1], x[:, 0])
    order = np.argsort(phi)
    ps = phi[order]
    gaps = np.diff(np.concatenate([ps, [ps[0] + 2 * np.pi]]))  # gaps[i]: from ps[i] to ps[i+1] (circular)
    cut = gaps >= theta_c
    labels = np.empty(n, dtype=np.int64)
    if cut.sum() <= 1:
        labels[:] = 0
        ext = 2 * np.pi - (gaps[cut].sum() if cut.any() else 0.0)
        return labels, np.array([mass.sum()]), np.array([min(ext, 2 * np.pi)])
    # start the walk just after the first cut so that every arc is contiguous
    start = int(np.argmax(cut)) + 1
    idx = (np.arange(n) + start) % n
    comp = np.concatenate([[0], np.cumsum(cut[idx][:-1])])
    labels[order[idx]] = comp
    count = int(comp[-1]) + 1
    masses = np.bincount(comp, weights=mass[order[idx]], minlength=count)
    inner = np.where(cut[idx], 0.0, gaps[idx])  # a gap inside an arc links idx[i] to idx[i+1]
    extents = np.bincount(comp, weights=inner, minlength=count)
    return labels, masses, extents


def component_extents(x: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Angular diameter (largest pairwise angle) of every component; 0 for single points."""
    extents = np.zeros(count)
    for c in np.flatnonzero(np.bincount(labels, minlength=count) > 1):
        xc = x[labels == c]
        extents[c] = float(np.arccos(np.clip((xc @ xc.T).min(), -1.0, 1.0)))
    return extents


def components_with_extents(x: np.ndarray, theta_c: float, mass=None):
    """Single-linkage components at θ_c with masses and angular diameters (any d).

    d = 2 uses :func:`circle_components` (O(n log n)); d ≥ 3 uses :func:`single_linkage_labels`
    and the largest pairwise angle inside each component. Returns ``(labels, masses, extents)``.
    """
    if x.shape[1] == 2:
        return circle_components(x, theta_c, mass)
    mass = np.ones(x.shape[0]) if mass is None else np.asarray(mass, float)
    count, labels = single_linkage_labels(x, theta_c)
    masses = np.bincount(labels, weights=mass, minlength=count)
    return labels, masses, component_extents(x, labels, count)


# The formation rule (BPA24 emergence; attention_dynamics.reproductions.formation and the engine's
# uniform-data runs use it alike): clusters have formed at the first time t_f at which a fraction
# FORMATION_FRACTION of the mass lies in θ_c-components of angular diameter < FORMATION_TIGHT_ANGLE;
# the clusters at formation are the components holding at least a fraction m_min of the mass.
FORMATION_FRACTION = 0.9
FORMATION_TIGHT_ANGLE = 0.25


def is_macroscopic(masses, min_mass: float, total: float) -> np.ndarray:
    """Which clusters are macroscopic: mass ≥ min_mass · total (relative slack 1e-9 for round-off,
    so that a cluster of exactly the threshold mass counts)."""
    return np.asarray(masses, dtype=np.float64) >= min_mass * total * (1.0 - 1e-9)


def tight_mass_fraction(x: np.ndarray, theta_c: float, tight_angle: float = FORMATION_TIGHT_ANGLE, mass=None):
    """The formation rule's measure: the fraction of the mass in θ_c-components of angular diameter
    < ``tight_angle``. Returns ``(fraction, labels, masses, extents)`` (see :func:`components_with_extents`)."""
    labels, masses, extents = components_with_extents(x, theta_c, mass)
    return float(masses[extents < tight_angle].sum() / masses.sum()), labels, masses, extents


def locate_first(holds, lo: float, hi: float, rel_tol: float) -> float:
    """Smallest t in (lo, hi] with ``holds(t)`` (given ``holds(hi)`` and not ``holds(lo)``), by bisection
    to ``hi − lo ≤ rel_tol · max(hi, 1)``; returns the upper end of the final bracket."""
    while hi - lo > rel_tol * max(hi, 1.0):
        mid = 0.5 * (lo + hi)
        if holds(mid):
            hi = mid
        else:
            lo = mid
    return hi


FORMATION_SAMPLES = 8  # checks of the formation rule per solver step (see first_time_on_grid)


def first_time_on_grid(holds, t0: float, t1: float, samples: int, rel_tol: float):
    """First t in (t0, t1] with ``holds(t)`` for a criterion that need not be monotone (the formation
    rule: a cluster can become tight, then join a wide one): checked at ``samples`` equally spaced
    points, the last one t1, and located by :func:`locate_first` before the first point where it
    holds. None if it holds at none of them."""
    grid = t0 + (t1 - t0) * np.arange(1, samples + 1) / samples
    grid[-1] = t1
    lo = t0
    for hi in grid:
        if holds(hi):
            return locate_first(holds, lo, hi, rel_tol)
        lo = hi
    return None


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel arbitrary integer labels as 0, 1, … in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse.ravel()]


def weighted_mean_direction(x: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Normalised mass-weighted mean Σ m_i x_i / ‖Σ m_i x_i‖."""
    s = mass @ x
    return s / np.linalg.norm(s)


def cluster_centres(x: np.ndarray, mass: np.ndarray, labels: np.ndarray, count: int):
    """Mass-weighted mean directions and total masses of the clusters."""
    sums = np.zeros((count, x.shape[1]))
    np.add.at(sums, labels, mass[:, None] * x)
    masses = np.bincount(labels, weights=mass, minlength=count)
    centres = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return centres, masses


def min_intercluster_angle(x: np.ndarray, labels: np.ndarray) -> float:
    """Smallest angle between two points in different clusters (NaN for one cluster)."""
    g = x @ x.T
    diff = labels[:, None] != labels[None, :]
    if not diff.any():
        return float("nan")
    return float(np.arccos(np.clip(g[diff].max(), -1.0, 1.0)))


def collapse_close_points(x: np.ndarray, mass: np.ndarray, delta: float):
    """Replace every group of points linked at chordal distance < δ by one weighted point.

    ‖x_i − x_j‖ < δ is tested as ⟨x_i, x_j⟩ > 1 − δ²/2. Each group becomes its
    mass-weighted normalised mean carrying the group's total mass (docs/science.md §5: the
    error this causes in merge times scales as δ²).

    Returns ``(x_new, mass_new, group)`` where ``group[i]`` is the new index of old
    point i, or ``None`` when nothing is within δ.
    """
    m = x.shape[0]
    if m < 2:
        return None
    g = x @ x.T
    np.fill_diagonal(g, -2.0)
    close = g > 1.0 - 0.5 * delta * delta
    if not close.any():
        return None
    count, group = components(close)
    sums = np.zeros((count, x.shape[1]))
    np.add.at(sums, group, mass[:, None] * x)
    new_mass = np.bincount(group, weights=mass, minlength=count)
    new_x = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return new_x, new_mass, group
