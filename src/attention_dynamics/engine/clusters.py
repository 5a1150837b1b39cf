"""Clusters by single linkage on angular distance, and exact collapse of near-coincident points."""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "components",
    "single_linkage_labels",
    "cluster_centres",
    "min_intercluster_angle",
    "collapse_close_points",
    "weighted_mean_direction",
]


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
