"""The SA and USA vector fields on the sphere, written once.

Notation (SCIENCE.md §1): points ``x`` of shape ``(m, d)`` on S^{d-1}, carrying
positive masses ``mass`` (counts; a group of coincident particles is one point of
mass equal to its size), total mass ``n = mass.sum()``, inverse temperature β.

* USA (GKPR24 time convention)::

      ẋ_i = P_{x_i}( (1/n) Σ_j m_j e^{β(⟨x_i,x_j⟩−1)} (x_j − x_i) )

* SA (softmax-normalised)::

      ẋ_i = P_{x_i}( Σ_j m_j e^{β(⟨x_i,x_j⟩−1)} (x_j − x_i) / Σ_k m_k e^{β(⟨x_i,x_k⟩−1)} )

with P_x(y) = y − ⟨x,y⟩x. Because P_{x_i}(x_i) = 0 these are the usual fields, but
written in the *difference form* with the self-term removed, which avoids the
catastrophic cancellation of computing P_x(W X) for a collapsed cluster (SCIENCE §5),
and with exponents β(⟨x,y⟩−1) ≤ 0, which cannot overflow at any β.
"""
from __future__ import annotations

import numpy as np

MODELS = ("sa", "usa")

__all__ = [
    "MODELS",
    "project_tangent",
    "attention_weights",
    "velocity",
    "energy",
    "pairwise_cosines",
]


def project_tangent(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise tangent projection P_x(v) = v − ⟨x, v⟩ x."""
    return v - np.einsum("ij,ij->i", x, v)[:, None] * x


def pairwise_cosines(x: np.ndarray) -> np.ndarray:
    """Gram matrix ⟨x_i, x_j⟩, clipped to [−1, 1]."""
    g = x @ x.T
    np.clip(g, -1.0, 1.0, out=g)
    return g


def attention_weights(x: np.ndarray, mass: np.ndarray, beta: float, model: str) -> np.ndarray:
    """Interaction weights a_ij with the self-term removed (a_ii = 0), as a dense matrix.

    USA: a_ij = m_j e^{β(⟨x_i,x_j⟩−1)} / n.
    SA:  a_ij = m_j e^{β(⟨x_i,x_j⟩−1)} / Σ_k m_k e^{β(⟨x_i,x_k⟩−1)} (the self-term *is*
    part of the SA normalisation; it only drops out of the numerator).
    For inspection and tests; :func:`velocity` never forms this matrix whole.
    """
    _check_model(model)
    g = np.minimum(beta * (x @ x.T - 1.0), 0.0)
    a = np.exp(g) * mass[None, :]
    z = a.sum(axis=1) if model == "sa" else np.full(x.shape[0], mass.sum())
    np.fill_diagonal(a, 0.0)
    return a / z[:, None]


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")


# Rows per block so that one block of the n×n kernel (≈ 256 KiB) stays in cache.
_BLOCK_ELEMENTS = 32768


def velocity(x: np.ndarray, mass: np.ndarray, beta: float, model: str, exact: bool = False) -> np.ndarray:
    """The vector field ẋ_i = P_{x_i}( Σ_{j≠i} a_ij (x_j − x_i) ) for all points at once.

    With K_ij = e^{β(⟨x_i,x_j⟩−1)} and s_i = Σ_{j≠i} K_ij m_j, the bracket is
    Σ_{j≠i} K_ij m_j (x_j − x_i), divided by n (USA) or by s_i + m_i (SA: the self-term
    belongs to the normalisation), then projected with P_x(v) = v − ⟨x,v⟩x.

    ``exact=False`` (weighted points): the bracket is evaluated as Σ_{j≠i} K_ij m_j x_j − s_i x_i
    with the self-term removed. Every remaining term comes from a *distinct* point, so for
    collapsed clusters nothing of size O(1) cancels (SCIENCE §5) — but particles that
    coincide while being separate points would cancel to round-off.
    ``exact=True``: the bracket is summed from explicit differences x_j − x_i, and the
    exponent is −β‖x_j − x_i‖²/2, so coincident particles contribute exactly 0 (the full
    system without collapse uses this; it moves d times more memory).
    Rows are processed in cache-sized blocks.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    m, d = x.shape
    mx = x * mass[:, None]
    usa = model == "usa"
    inv_n = 1.0 / mass.sum()
    rows_fn = _velocity_rows_exact if exact else _velocity_rows
    rows = max(1, _BLOCK_ELEMENTS // (m * d if exact else m))
    if rows >= m:  # one block: the common case once clusters have collapsed
        return rows_fn(x, x, mx, mass, beta, usa, inv_n, 0)
    out = np.empty_like(x)
    for r0 in range(0, m, rows):
        r1 = min(m, r0 + rows)
        out[r0:r1] = rows_fn(x[r0:r1], x, mx, mass, beta, usa, inv_n, r0)
    return out


def _velocity_rows(xr, x, mx, mass, beta, usa, inv_n, r0):
    """Rows r0 … r0+len(xr)−1 of :func:`velocity` (weighted-point form)."""
    k = xr @ x.T
    k -= 1.0
    k *= beta
    np.minimum(k, 0.0, out=k)  # ⟨x,y⟩ ≤ 1 up to round-off
    np.exp(k, out=k)
    k.ravel()[r0 :: x.shape[0] + 1] = 0.0  # K_ii = 0: entries (i, r0 + i)
    v = k @ mx
    s = k @ mass
    v -= s[:, None] * xr
    if usa:
        v *= inv_n
    else:
        v /= (s + mass[r0 : r0 + xr.shape[0]])[:, None]
    v -= (xr * v).sum(axis=1)[:, None] * xr  # P_x(v) = v − ⟨x, v⟩x
    return v


def _velocity_rows_exact(xr, x, mx, mass, beta, usa, inv_n, r0):
    """Rows of :func:`velocity` from explicit differences x_j − x_i (no cancellation)."""
    diff = x[None, :, :] - xr[:, None, :]
    w = np.einsum("ijk,ijk->ij", diff, diff)
    w *= -0.5 * beta  # β(⟨x_i,x_j⟩ − 1) = −β‖x_j − x_i‖²/2 for unit vectors
    np.exp(w, out=w)
    w *= mass[None, :]
    v = np.einsum("ij,ijk->ik", w, diff)
    if usa:
        v *= inv_n
    else:
        v /= w.sum(axis=1)[:, None]  # includes the self-term m_i
    v -= (xr * v).sum(axis=1)[:, None] * xr
    return v


def energy(x: np.ndarray, mass: np.ndarray, beta: float) -> float:
    """Normalised interaction energy Ē = (1/n²) Σ_{i,j} m_i m_j e^{β(⟨x_i,x_j⟩−1)} ∈ (0, 1].

    Ē = 2β e^{−β} E_β; Ē is non-decreasing along SA and USA, Ē = Σ_a μ_a² for tight
    clusters of mass fractions μ_a, and Ē = 1 for a single point.
    """
    g = x @ x.T
    g -= 1.0
    g *= beta
    np.minimum(g, 0.0, out=g)
    e = np.exp(g, out=g)
    n = mass.sum()
    return float(mass @ e @ mass / (n * n))
