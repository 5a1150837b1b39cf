"""Initial data on S^{d-1} (docs/science.md §2). Every random draw uses a seeded Generator."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaincinv

__all__ = [
    "InitialData",
    "great_circle_centres",
    "random_centres",
    "sample_cap",
    "caps",
    "gaussian_mixture",
    "uniform",
    "split_counts",
    "cap_separation",
]


@dataclass(frozen=True)
class InitialData:
    """Points ``x`` (n, d), the cap/component label of each point, and the centres used."""

    x: np.ndarray
    labels: np.ndarray
    centres: np.ndarray | None = None
    eps: float | None = None


def _check_d(d: int) -> None:
    if int(d) != d or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")


def great_circle_centres(k: int, d: int, spacing: float | None = None) -> np.ndarray:
    """k centres on the great circle spanned by e_1, e_2, at angles 0, φ, 2φ, …

    φ defaults to 2π/k (equally spaced around the whole circle). For k = 2 that gives
    antipodal centres, an unstable equilibrium; choose a smaller ``spacing`` for merges.
    """
    _check_d(d)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    phi = 2.0 * np.pi / k if spacing is None else float(spacing)
    if not (phi > 0 and np.isfinite(phi)):
        raise ValueError(f"spacing must be a positive angle in radians, got {spacing!r}")
    ang = phi * np.arange(k)
    w = np.zeros((k, d))
    w[:, 0] = np.cos(ang)
    w[:, 1] = np.sin(ang)
    return w


def _uniform_directions(rng: np.random.Generator, m: int, d: int) -> np.ndarray:
    z = rng.standard_normal((m, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def random_centres(k: int, d: int, min_angle: float, rng: np.random.Generator,
                   max_tries: int = 100_000) -> np.ndarray:
    """k iid uniform centres, redrawn one by one until all pairwise angles ≥ ``min_angle``."""
    _check_d(d)
    out: list[np.ndarray] = []
    cos_min = np.cos(min_angle)
    for _ in range(max_tries):
        c = _uniform_directions(rng, 1, d)[0]
        if all(float(c @ w) <= cos_min for w in out):
            out.append(c)
            if len(out) == k:
                return np.array(out)
    raise ValueError(f"could not place k={k} centres with min_angle={min_angle} in d={d}")


def sample_cap(centre: np.ndarray, eps: float, m: int, rng: np.random.Generator) -> np.ndarray:
    """m points uniform (surface measure) in the cap {x : ⟨x, w⟩ ≥ 1 − ε}.

    On S^{d-1}, r = (1 − ⟨x,w⟩)/2 ~ Beta((d−1)/2, (d−1)/2); we draw r from that law
    conditioned on r ≤ ε/2 by inversion, so tiny ε loses no precision, then
    x = (1 − 2r) w + 2√(r(1−r)) u with u uniform on the unit sphere of w^⊥.
    """
    d = centre.shape[0]
    a = 0.5 * (d - 1)
    u = rng.uniform(0.0, 1.0, size=m)
    r = betaincinv(a, a, u * betainc(a, a, 0.5 * eps))  # Beta(a, a) quantile, conditioned
    z = rng.standard_normal((m, d))
    z -= (z @ centre)[:, None] * centre[None, :]
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    x = (1.0 - 2.0 * r)[:, None] * centre[None, :] + (2.0 * np.sqrt(r * (1.0 - r)))[:, None] * z
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def split_counts(n: int, k: int, masses=None) -> np.ndarray:
    """Particle counts per cap: equal (remainder to the first caps) or proportional to ``masses``."""
    if k < 1 or n < k:
        raise ValueError(f"need 1 <= k <= n, got n={n!r}, k={k!r}")
    if masses is None:
        base = np.full(k, n // k, dtype=np.int64)
        base[: n % k] += 1
        return base
    w = np.asarray(masses, dtype=np.float64)
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"masses must be {k} positive numbers, got {masses!r}")
    if np.allclose(w, np.round(w)) and int(round(w.sum())) == n:
        return np.round(w).astype(np.int64)
    raw = w / w.sum() * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    if np.any(counts < 1):
        raise ValueError(f"masses {masses!r} leave an empty cap with n={n}")
    return counts


def caps(n: int, d: int, k: int, eps: float, rng: np.random.Generator, *,
         centres: np.ndarray | None = None, spacing: float | None = None,
         min_angle: float | None = None, masses=None) -> InitialData:
    """n particles in k caps S_q(ε) = {⟨x, w_q⟩ ≥ 1 − ε}.

    Centres: ``centres`` if given; else random with pairwise angle ≥ ``min_angle`` if
    that is given; else on a great circle with the given ``spacing``.
    """
    _check_d(d)
    if not (0.0 < eps < 1.0):
        raise ValueError(f"eps (cap radius, 1 − cos units) must be in (0, 1), got {eps!r}")
    if centres is not None:
        w = np.asarray(centres, dtype=np.float64)
        if w.shape != (k, d):
            raise ValueError(f"centres must have shape ({k}, {d}), got {w.shape}")
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
    elif min_angle is not None:
        w = random_centres(k, d, min_angle, rng)
    else:
        w = great_circle_centres(k, d, spacing)
    counts = split_counts(n, k, masses)
    xs = [sample_cap(w[q], eps, int(c), rng) for q, c in enumerate(counts)]
    labels = np.repeat(np.arange(k), counts)
    return InitialData(np.concatenate(xs), labels, w, float(eps))


def gaussian_mixture(n: int, d: int, k: int, r: float, sigma: float, rng: np.random.Generator, *,
                     centres: np.ndarray | None = None, spacing: float | None = None,
                     masses=None) -> InitialData:
    """X_i ~ N(√r w_q, σ² I) in R^d with q the component of i, then normalised."""
    _check_d(d)
    if not (r >= 0 and sigma > 0):
        raise ValueError(f"need r >= 0 and sigma > 0, got r={r!r}, sigma={sigma!r}")
    w = great_circle_centres(k, d, spacing) if centres is None else np.asarray(centres, float)
    counts = split_counts(n, k, masses)
    labels = np.repeat(np.arange(k), counts)
    z = np.sqrt(r) * w[labels] + sigma * rng.standard_normal((n, d))
    return InitialData(z / np.linalg.norm(z, axis=1, keepdims=True), labels, w, None)


def uniform(n: int, d: int, rng: np.random.Generator) -> InitialData:
    """n iid uniform points on S^{d-1}."""
    _check_d(d)
    return InitialData(_uniform_directions(rng, n, d), np.zeros(n, dtype=np.int64), None, None)


def cap_separation(centres: np.ndarray, eps: float) -> float:
    """α(ε) = max{⟨x,y⟩ : x ∈ S_i(2ε), y ∈ S_j(2ε), i ≠ j} (docs/science.md §2).

    Two caps of angular radius ρ = arccos(1 − 2ε) around centres at angle D reach
    within max(D − 2ρ, 0) of each other, so α = cos(max(D_min − 2ρ, 0)).
    """
    g = np.clip(centres @ centres.T, -1.0, 1.0)
    np.fill_diagonal(g, -1.0)
    dmin = float(np.arccos(g.max()))
    rho = float(np.arccos(1.0 - 2.0 * eps))
    return float(np.cos(max(dmin - 2.0 * rho, 0.0)))
