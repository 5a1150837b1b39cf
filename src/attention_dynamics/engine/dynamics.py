"""The SA and USA vector fields on the sphere, written once.

Notation (docs/science.md §1): points ``x`` of shape ``(m, d)`` on S^{d-1}, carrying
positive masses ``mass`` (counts; a group of coincident particles is one point of
mass equal to its size), total mass ``n = mass.sum()``, inverse temperature β.

* USA (GKPR24 time convention)::

      ẋ_i = P_{x_i}( (1/n) Σ_j m_j e^{β(⟨x_i,x_j⟩−1)} (x_j − x_i) )

* SA (softmax-normalised)::

      ẋ_i = P_{x_i}( Σ_j m_j e^{β(⟨x_i,x_j⟩−1)} (x_j − x_i) / Σ_k m_k e^{β(⟨x_i,x_k⟩−1)} )

with P_x(y) = y − ⟨x,y⟩x. Because P_{x_i}(x_i) = 0 these are the usual fields, but
written in the *difference form* with the self-term removed, which avoids the
catastrophic cancellation of computing P_x(W X) for a collapsed cluster (docs/science.md §5),
and with exponents β(⟨x,y⟩−1) ≤ 0, which cannot overflow at any β.
"""
from __future__ import annotations

import importlib.util

import numpy as np

MODELS = ("sa", "usa")
# Implementations of the field and the integrator: numpy, numba (compiled, :mod:`.kernels`),
# or auto = numba when it is installed (the faster one at every size measured).
ENGINES = ("auto", "numpy", "numba")

__all__ = [
    "MODELS",
    "ENGINES",
    "resolve_engine",
    "numba_available",
    "project_tangent",
    "attention_weights",
    "velocity",
    "circle_kernel_modes",
    "circle_modes",
    "unit_complex",
    "velocity_circle",
    "energy",
    "pairwise_cosines",
]


def numba_available() -> bool:
    """Whether numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def resolve_engine(engine: str) -> str:
    """``"numpy"`` or ``"numba"`` for an engine name of ``ENGINES`` (``"auto"``: numba when installed)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "numba" if numba_available() else "numpy"
    if engine == "numba" and not numba_available():
        raise ValueError("engine='numba' needs the numba package (pip install numba); or use engine='numpy'")
    return engine


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


def velocity(x: np.ndarray, mass: np.ndarray, beta: float, model: str, exact: bool = False,
             engine: str = "numpy") -> np.ndarray:
    """The vector field ẋ_i = P_{x_i}( Σ_{j≠i} a_ij (x_j − x_i) ) for all points at once.

    With K_ij = e^{β(⟨x_i,x_j⟩−1)} and s_i = Σ_{j≠i} K_ij m_j, the bracket is
    Σ_{j≠i} K_ij m_j (x_j − x_i), divided by n (USA) or by s_i + m_i (SA: the self-term
    belongs to the normalisation), then projected with P_x(v) = v − ⟨x,v⟩x.

    ``exact=False`` (weighted points): the bracket is evaluated as Σ_{j≠i} K_ij m_j x_j − s_i x_i
    with the self-term removed. Every remaining term comes from a *distinct* point, so for
    collapsed clusters nothing of size O(1) cancels (docs/science.md §5) — but particles that
    coincide while being separate points would cancel to round-off.
    ``exact=True``: the bracket is summed from explicit differences x_j − x_i, and the
    exponent is −β‖x_j − x_i‖²/2, so coincident particles contribute exactly 0 (the full
    system without collapse uses this; it moves d times more memory).
    Rows are processed in cache-sized blocks. ``engine="numba"`` (or ``"auto"`` with numba
    installed) evaluates the same sums in one compiled pass per row (:func:`.kernels.velocity`).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if engine != "numpy" and resolve_engine(engine) == "numba":
        from . import kernels

        return kernels.velocity(x, mass, beta, model, exact)
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


def circle_kernel_modes(beta: float, tol: float = 1e-15, relative_to: int = 0) -> np.ndarray:
    """Fourier weights w_l = ive(l, β), l = 0..L, of the kernel K(u) = e^{β(cos u − 1)} on S¹.

    K(u) = Σ_{l∈ℤ} w_|l| e^{ilu}, since (1/2π) ∫ e^{β(cos u − 1)} e^{−ilu} du = I_l(β) e^{−β}.
    Truncated at the first l > ``relative_to`` with w_l < tol · w_relative_to (w_l/w_0 ≈ e^{−l²/2β}
    for large β: L ≈ √(2β ln(1/tol)) ≈ 8.3√β). The kernel itself needs ``relative_to = 0``; its
    derivative (the field, weights l w_l/β) needs 1: as β → 0, w_1/w_0 ≈ β/2 → 0 while the
    l = 1 term of the field stays O(1).
    """
    from scipy.special import ive

    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    l_cap = int(np.ceil(10.0 * np.sqrt(beta) + 30))
    w = ive(np.arange(l_cap + 1), beta)
    small = relative_to + 1 + np.flatnonzero(w[relative_to + 1:] < tol * w[relative_to])
    return w[: (int(small[0]) if small.size else l_cap + 1)]


def unit_complex(x: np.ndarray) -> np.ndarray:
    """Points of S¹ given as rows (cos θ, sin θ) → e^{iθ} (renormalised to modulus 1)."""
    u = x[:, 0] + 1j * x[:, 1]
    return u / np.abs(u)


def circle_modes(u: np.ndarray, mass: np.ndarray | None, l_max: int) -> np.ndarray:
    """Empirical Fourier modes ẑ_l = Σ_j m_j e^{ilθ_j} / Σ_j m_j for l = 1..l_max (u_j = e^{iθ_j}).

    Computed from the running powers u_j^l (l_max contiguous length-m vector products, O(m)
    memory; relative error ≲ l·1e-16 since |u_j| = 1).
    """
    mc = (np.full(u.size, 1.0 / u.size) if mass is None else np.asarray(mass, np.float64) / np.sum(mass))
    mc = mc.astype(np.complex128)
    z = np.empty(int(l_max), dtype=np.complex128)
    p = np.array(u, dtype=np.complex128)
    for l in range(int(l_max)):
        z[l] = mc @ p
        if l + 1 < l_max:
            p *= u
    return z


def velocity_circle(x: np.ndarray, mass: np.ndarray, beta: float, model: str, tol: float = 1e-15) -> np.ndarray:
    """The field of :func:`velocity` in d = 2, summed over Fourier modes: O(m L) instead of O(m²).

    On S¹, x_i = (cos θ_i, sin θ_i), and the tangential component of Σ_j m_j K_ij (x_j − x_i) is
    Σ_j m_j K(θ_j − θ_i) sin(θ_j − θ_i) with K(u) = e^{β(cos u − 1)}. Since sin u K(u) = −K'(u)/β,
    with the kernel's Fourier weights w_l (:func:`circle_kernel_modes`) and the empirical
    modes ẑ_l = (1/n) Σ_j m_j e^{ilθ_j},

        USA:  θ̇_i = (2/β) Σ_{l≥1} l w_l Im(ẑ_l e^{−ilθ_i}),
        SA:   θ̇_i = that, divided by φ(θ_i) = w_0 + 2 Σ_{l≥1} w_l Re(ẑ_l e^{−ilθ_i})
              (= (1/n) Σ_k m_k K_ik, the self-term included as in :func:`velocity`),

    and ẋ_i = θ̇_i (−sin θ_i, cos θ_i). The self-term contributes sin 0 = 0 to both forms. The
    only approximation is the truncation of the kernel at w_l < tol·w_1 (l ≥ 2). Unlike :func:`velocity`
    this is *not* cancellation-free: a drift that is small against the O(1) mode sums is lost
    to round-off (≈ 1e-16 × Σ_l l w_l), so use it for spread-out data (the emergence of clusters
    from near-uniform data, :func:`attention_dynamics.reproductions.formation`), never for
    collapsed clusters on exponentially slow plateaus.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"velocity_circle needs points on S¹ (shape (m, 2)), got {x.shape}")
    mass = np.asarray(mass, dtype=np.float64)
    w = circle_kernel_modes(beta, tol, relative_to=1)
    ls = np.arange(1, w.size)
    u = unit_complex(x)
    m = u.size

    zhat = circle_modes(u, mass, ls.size)
    # Σ_{l=1}^{L} c_l e^{−ilθ_i} by Horner's rule in e^{−iθ_i} (|e^{−iθ}| = 1: error ≲ L·1e-16), for
    # c_l = (2/β) l w_l ẑ_l (USA numerator: its imaginary part) and, for SA, c_l = 2 w_l ẑ_l (the
    # real part is φ(θ_i) − w_0)
    coef = np.stack([(2.0 / beta) * ls * w[1:] * zhat, 2.0 * w[1:] * zhat])
    rows = 1 if model == "usa" else 2
    ubar = np.conj(u)
    acc = np.empty((rows, m), dtype=np.complex128)
    acc[:] = coef[:rows, -1, None]
    for l in range(ls.size - 2, -1, -1):
        acc *= ubar
        acc += coef[:rows, l, None]
    acc *= ubar
    theta_dot = acc[0].imag if model == "usa" else acc[0].imag / (w[0] + acc[1].real)
    return theta_dot[:, None] * np.stack([-u.imag, u.real], axis=1)


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
