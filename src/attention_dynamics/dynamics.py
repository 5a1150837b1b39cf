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
    """Interaction weights a_ij with the self-term removed (a_ii = 0).

    USA: a_ij = m_j e^{β(⟨x_i,x_j⟩−1)} / n.
    SA:  a_ij = m_j e^{β(⟨x_i,x_j⟩−1)} / Σ_k m_k e^{β(⟨x_i,x_k⟩−1)} (the self-term *is*
    part of the SA normalisation; it only drops out of the numerator).
    """
    g = x @ x.T
    g -= 1.0
    g *= beta
    np.minimum(g, 0.0, out=g)  # ⟨x,y⟩ ≤ 1: clip round-off above 1
    a = np.exp(g, out=g)
    a *= mass[None, :]
    if model == "usa":
        np.fill_diagonal(a, 0.0)
        a *= 1.0 / mass.sum()
    elif model == "sa":
        z = a.sum(axis=1)
        np.fill_diagonal(a, 0.0)
        a /= z[:, None]
    else:  # pragma: no cover - validated upstream
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    return a


def velocity(x: np.ndarray, mass: np.ndarray, beta: float, model: str) -> np.ndarray:
    """The vector field ẋ = P_x( Σ_j a_ij (x_j − x_i) ) for all points at once.

    Computed as Σ_j a_ij x_j − (Σ_j a_ij) x_i with a_ii = 0: every term that remains
    comes from a *distinct* point, so there is no O(1) self-contribution to cancel.
    """
    a = attention_weights(x, mass, beta, model)
    v = a @ x
    v -= a.sum(axis=1)[:, None] * x
    return project_tangent(x, v)


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
