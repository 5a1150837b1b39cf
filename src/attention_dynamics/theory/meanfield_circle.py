"""Mean-field self-attention on the circle S¹ (d = 2): Fourier pseudo-spectral discretisation.

Notation
--------
A point of S¹ is x = (cos θ, sin θ); σ = dθ/2π is the normalised arc-length measure and a
density ρ is taken with respect to σ, so the uniform density is ρ ≡ 1 and ∫ ρ dσ = 1. Its
Fourier coefficients are ρ̂_l = ∫ ρ e^{−ilθ} dσ, so ρ(θ) = Σ_{l∈ℤ} ρ̂_l e^{ilθ}, ρ̂_{−l} = conj(ρ̂_l)
and ρ̂_0 is the mass. The kernel K(u) = e^{β(cos u − 1)} has the coefficients

    w_l = (1/2π) ∫ e^{β(cos u − 1)} e^{−ilu} du = I_l(β) e^{−β} = ive(l, β),

so the convolution G = K∗ρ, G(θ) = ∫ K(θ − φ) ρ(φ) dσ(φ), is diagonal: Ĝ_l = w_l ρ̂_l.

The equation
------------
∂_t ρ + ∂_θ(ρ v) = 0 with the tangential velocity v (X[ρ](x) = v(θ) (−sin θ, cos θ)):

    USA, GKPR24 time:  v = (1/β) ∂_θ G              (P_x ∫ e^{β(⟨x,y⟩−1)} y ρ(dy), since
                                                     sin u K(u) = −K'(u)/β),
    USA, GLPR23 time:  v = (e^β/β) ∂_θ G            (the kernel e^{β⟨x,y⟩}),
    SA:                v = ∂_θ G / (β G)            (= (1/β) ∂_θ log K∗ρ; no convention).

In Fourier variables, with F = ρ v,

    dρ̂_l/dt = −i l F̂_l,     v̂_l = (s/β) i l w_l ρ̂_l  (USA, s = 1 or e^β).

Linearised at ρ ≡ 1: dρ̂_l/dt = (s/β) l² w_l ρ̂_l, i.e. the growth rate λ_l = s l² ive(l, β)/β
(SA: l² w_l / (β w_0)), as in :func:`attention_dynamics.theory.gegenbauer.growth_rate`.

Discretisation
--------------
ρ is truncated to |l| ≤ L (the state: ρ̂_0 … ρ̂_L). The kernel is truncated at its band
L_K(β), the smallest l ≥ 2 with w_l < 10⁻¹⁶ w_0 and l w_l < 10⁻¹⁶ max_k k w_k (both the
potential and the field are then exact to round-off; L_K ≈ √(2β ln 10¹⁶) ≈ 8.6 √β for
large β: 26 at β = 5, 53 at β = 30), and v has band L_v = min(L, L_K). The product ρ v is
formed on an equispaced grid of M ≥ 2L + L_v + 1 points (the 3/2 rule, M ≥ 3L + 1, when
L_v = L), which is free of aliasing for the retained modes |l| ≤ L: for USA the
semi-discrete system is the exact Galerkin truncation of the PDE. Consequences, exact up
to round-off: ρ̂_0 is constant (dρ̂_0/dt = 0), and dE/dt = 2β s⁻¹ ∫ ρ v² dσ ≥ 0 for the
energy E = ∫∫ K ρ ρ dσ dσ = Σ_l w_|l| |ρ̂_l|² whenever ρ ≥ 0. For SA the quotient
∂_θG/G is not band-limited and the 3/2 rule reduces, not removes, aliasing.

Default resolution: L = max(64, 4 L_K(β)) (104 at β = 5, 212 at β = 30). Clusters contract
exponentially in the nonlinear phase, so no fixed L resolves all times: the solver
(:mod:`attention_dynamics.theory.meanfield`) monitors the spectral tail and stops when it
exceeds a threshold.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import special

__all__ = [
    "circle_kernel_coefficients",
    "circle_kernel_band",
    "default_circle_l_max",
    "CircleSpectral",
    "circle_density",
    "circle_cdf",
    "uniform_plus_noise_circle",
    "density_from_function_circle",
    "kde_circle",
    "empirical_modes_circle",
    "sample_circle",
    "hminus_distance_circle",
    "w1_distance_circle",
]

_KERNEL_TOL = 1e-16


def circle_kernel_coefficients(beta: float, l_max: int) -> np.ndarray:
    """w_l = (1/2π) ∫ e^{β(cos u − 1)} e^{−ilu} du = I_l(β) e^{−β} = ive(l, β) for l = 0..l_max (float64)."""
    return special.ive(np.arange(int(l_max) + 1, dtype=np.float64), float(beta))


def circle_kernel_band(beta: float, tol: float = _KERNEL_TOL) -> int:
    """L_K(β): the smallest l ≥ 2 with w_l < tol·w_0 and l w_l < tol·max_k k w_k.

    Beyond it the kernel (weights w_l) and the field (weights l w_l) are below round-off
    relative to their largest terms. L_K ≈ √(2β ln(1/tol)) for large β; 2 as β → 0.
    """
    beta = float(beta)
    if not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be positive and finite, got {beta!r}")
    cap = int(np.ceil(10.0 * np.sqrt(beta) + 30))
    w = circle_kernel_coefficients(beta, cap)
    lw = np.arange(cap + 1) * w
    small = (w < tol * w[0]) & (lw < tol * lw.max())
    small[:2] = False
    idx = np.flatnonzero(small)
    return int(idx[0]) if idx.size else cap


def default_circle_l_max(beta: float) -> int:
    """Default truncation L = max(64, 4 L_K(β)) of the density's Fourier series."""
    return max(64, 4 * circle_kernel_band(beta))


def _check_model(model: str, convention: str) -> None:
    if model not in ("usa", "sa"):
        raise ValueError(f"model must be 'usa' or 'sa', got {model!r}")
    if convention not in ("gkpr24", "glpr23"):
        raise ValueError(f"convention must be 'gkpr24' or 'glpr23', got {convention!r}")


class CircleSpectral:
    """The Galerkin/pseudo-spectral right-hand side on S¹ and the quantities read off a state.

    State: ρ̂_0 … ρ̂_L (complex128), packed into a real float64 vector
    y = (Re ρ̂_0, …, Re ρ̂_L, Im ρ̂_1, …, Im ρ̂_L) of length 2L + 1.

    Attributes: ``l_max`` (L), ``kernel_band`` (L_K), ``n_grid`` (M), ``theta`` (the grid
    2πj/M, float64), ``w`` (kernel coefficients w_l, zero beyond L_v), ``time_factor``
    (s = 1 for GKPR24, e^β for GLPR23; 1 for SA).
    """

    def __init__(self, beta: float, l_max: int | None = None, model: str = "usa",
                 convention: str = "gkpr24"):
        _check_model(model, convention)
        beta = float(beta)
        if not beta > 0 or not np.isfinite(beta):
            raise ValueError(f"beta must be positive and finite, got {beta!r}")
        self.beta, self.model, self.convention, self.d = beta, model, convention, 2
        self.kernel_band = circle_kernel_band(beta)
        self.l_max = L = int(default_circle_l_max(beta) if l_max is None else l_max)
        if L < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max!r}")
        l_v = min(L, self.kernel_band)
        self.n_grid = M = int(sfft.next_fast_len(2 * L + l_v + 1, real=True))
        self.theta = 2.0 * np.pi * np.arange(M, dtype=np.float64) / M
        self.l = np.arange(L + 1, dtype=np.float64)
        w = circle_kernel_coefficients(beta, L)
        w[l_v + 1:] = 0.0
        self.w = w
        self.time_factor = float(np.exp(beta)) if (model == "usa" and convention == "glpr23") else 1.0
        # v̂_l = i l w_l ρ̂_l · s/β (USA) or ∂_θG coefficients i l w_l ρ̂_l (SA)
        self._grad_factor = 1j * self.l * w
        self._usa_factor = self.time_factor / beta
        self.n_state = 2 * L + 1

    # --- packing -------------------------------------------------------------------------
    def pack(self, c: np.ndarray) -> np.ndarray:
        """Complex coefficients ρ̂_0..ρ̂_L → real state vector (Im ρ̂_0 is dropped)."""
        c = np.asarray(c, dtype=np.complex128)
        return np.concatenate([c.real, c.imag[1:]])

    def unpack(self, y: np.ndarray) -> np.ndarray:
        """Real state vector → complex coefficients ρ̂_0..ρ̂_L."""
        L = self.l_max
        c = np.empty(L + 1, dtype=np.complex128)
        c.real = y[: L + 1]
        c.imag[0] = 0.0
        c.imag[1:] = y[L + 1:]
        return c

    def coefficients_from(self, c: np.ndarray) -> np.ndarray:
        """Zero-pad or check a coefficient vector ρ̂_0..ρ̂_k to length L + 1 (raises if k > L
        and the dropped modes are not zero)."""
        c = np.asarray(c, dtype=np.complex128)
        L = self.l_max
        if c.size > L + 1:
            if np.any(c[L + 1:] != 0):
                raise ValueError(f"initial data has modes up to {c.size - 1} > l_max = {L}")
            c = c[: L + 1]
        out = np.zeros(L + 1, dtype=np.complex128)
        out[: c.size] = c
        out[0] = out[0].real
        return out

    # --- grids ---------------------------------------------------------------------------
    def to_grid(self, c: np.ndarray) -> np.ndarray:
        """f(θ_j) = Σ_{|l|≤L} f̂_l e^{ilθ_j} on the M-point grid (real, float64)."""
        return sfft.irfft(c, n=self.n_grid, norm="forward")

    def from_grid(self, f: np.ndarray) -> np.ndarray:
        """f̂_l = (1/M) Σ_j f(θ_j) e^{−ilθ_j} for l = 0..L (exact for band ≤ M − L − 1)."""
        return sfft.rfft(f, norm="forward")[: self.l_max + 1]

    # --- the equation ----------------------------------------------------------------------
    def velocity_grid(self, c: np.ndarray) -> np.ndarray:
        """v(θ_j): (s/β) ∂_θ(K∗ρ) for USA, ∂_θ(K∗ρ)/(β K∗ρ) for SA."""
        dg = self.to_grid(self._grad_factor * c)
        if self.model == "usa":
            return self._usa_factor * dg
        return dg / (self.beta * self.to_grid(self.w * c))

    def rhs_coefficients(self, c: np.ndarray) -> np.ndarray:
        """dρ̂_l/dt = −i l (ρ v)^_l for l = 0..L (the product formed on the dealiased grid)."""
        flux = self.to_grid(c) * self.velocity_grid(c)
        return -1j * self.l * self.from_grid(flux)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """Right-hand side on the packed real state (the signature of scipy's ODE solvers)."""
        return self.pack(self.rhs_coefficients(self.unpack(y)))

    # --- diagnostics -----------------------------------------------------------------------
    def mass(self, c: np.ndarray) -> float:
        """∫ ρ dσ = ρ̂_0."""
        return float(c[0].real)

    def energy(self, c: np.ndarray) -> float:
        """E = ∫∫ e^{β(⟨x,y⟩−1)} ρ(x) ρ(y) dσ dσ = w_0 ρ̂_0² + 2 Σ_{l≥1} w_l |ρ̂_l|² (the kernel
        truncated at L_K, as in the equation); E ∈ (0, 1] for a probability density."""
        a = np.abs(c) ** 2
        return float(self.w[0] * a[0] + 2.0 * (self.w[1:] @ a[1:]))

    def mode_amplitudes(self, c: np.ndarray) -> np.ndarray:
        """‖P_l ρ‖_{L²(σ)} for l = 0..L: |ρ̂_0| and √2 |ρ̂_l| (l ≥ 1)."""
        a = np.abs(c)
        a[1:] *= np.sqrt(2.0)
        return a

    def min_density(self, c: np.ndarray) -> float:
        """min_j ρ(θ_j) over the M-point grid."""
        return float(self.to_grid(c).min())

    def spectral_tail(self, c: np.ndarray) -> float:
        """‖P_{l>2L/3} ρ‖ / ‖ρ‖ in L²(σ): the resolution indicator."""
        amp2 = self.mode_amplitudes(c) ** 2
        return float(np.sqrt(amp2[2 * self.l_max // 3 + 1:].sum() / amp2.sum()))

    def grid_coordinates(self) -> dict:
        return {"theta": self.theta}


# --- densities, CDFs ---------------------------------------------------------------------------

def _trig_sum(coef: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Σ_{l=1}^{K} coef_l e^{ilθ} (coef[0] is ignored) by Horner's rule in z = e^{iθ}.

    O(len(θ)·K) time, O(len(θ)) memory; |z| = 1, so the error is ≲ K·1e-16·Σ|coef_l|."""
    z = np.exp(1j * theta)
    acc = np.full(theta.shape, coef[-1], dtype=np.complex128)
    for l in range(coef.size - 2, 0, -1):
        acc *= z
        acc += coef[l]
    return acc * z


def _trim(c: np.ndarray) -> np.ndarray:
    """Drop trailing coefficients that are exactly zero or below 1e-18·|ρ̂_0|."""
    big = np.flatnonzero(np.abs(c) > 1e-18 * abs(c[0]))
    return c[: (int(big[-1]) + 1 if big.size else 1)]


def circle_density(c: np.ndarray, theta) -> np.ndarray:
    """ρ(θ) = ρ̂_0 + 2 Re Σ_{l≥1} ρ̂_l e^{ilθ} at arbitrary angles (O(len(θ)·L), Horner's rule)."""
    c = _trim(np.asarray(c, dtype=np.complex128))
    th = np.asarray(theta, dtype=np.float64)
    if c.size == 1:
        return np.full(th.shape, c[0].real)
    return c[0].real + 2.0 * _trig_sum(c, th).real


def circle_cdf(c: np.ndarray, theta) -> np.ndarray:
    """F(θ) = ∫_0^θ ρ dσ = ρ̂_0 θ/2π + 2 Re Σ_{l≥1} ρ̂_l (e^{ilθ} − 1)/(2π i l), for θ ∈ [0, 2π]."""
    c = _trim(np.asarray(c, dtype=np.complex128))
    th = np.asarray(theta, dtype=np.float64)
    base = c[0].real * th / (2.0 * np.pi)
    if c.size == 1:
        return base
    l = np.arange(c.size, dtype=np.float64)
    b = np.zeros(c.size, dtype=np.complex128)
    b[1:] = c[1:] / (2j * np.pi * l[1:])
    return base + 2.0 * (_trig_sum(b, th) - b[1:].sum()).real


# --- initial data ------------------------------------------------------------------------------

def uniform_plus_noise_circle(sigma: float, n_grid: int, rng: np.random.Generator) -> np.ndarray:
    """ρ(θ_j) = 1 + σ ξ_j on the grid θ_j = 2πj/n_grid, ξ_j iid N(0, 1) from the seeded ``rng``.

    Returns the Fourier coefficients ρ̂_0..ρ̂_K, K = ⌊(n_grid − 1)/2⌋, of the trigonometric
    interpolant (the Nyquist mode of an even grid is dropped) with the mass reset to ρ̂_0 = 1
    (i.e. the sample mean of the noise is removed). Each ρ̂_l, l ≥ 1, is then complex Gaussian
    with E|ρ̂_l|² = σ²/n_grid. BPA24 Fig. 4 uses σ = 0.01 (β = 5).
    """
    n_grid = int(n_grid)
    if n_grid < 3:
        raise ValueError(f"n_grid must be >= 3, got {n_grid!r}")
    vals = 1.0 + float(sigma) * rng.standard_normal(n_grid)
    c = sfft.rfft(vals, norm="forward")[: (n_grid - 1) // 2 + 1]
    c[0] = 1.0
    return c


def density_from_function_circle(f, l_max: int, n_quad: int | None = None) -> np.ndarray:
    """ρ̂_0..ρ̂_L of f/∫f dσ, for a callable positive f(θ) (vectorised over float64 angles).

    Coefficients by the trapezoidal rule on n_quad ≥ 4(L + 1) points (spectrally accurate for
    smooth periodic f; exact when f has band < n_quad − L)."""
    L = int(l_max)
    n_quad = max(4 * (L + 1), 256) if n_quad is None else int(n_quad)
    th = 2.0 * np.pi * np.arange(n_quad, dtype=np.float64) / n_quad
    c = sfft.rfft(np.asarray(f(th), dtype=np.float64), norm="forward")[: L + 1]
    if not c[0].real > 0:
        raise ValueError("f must have positive mass")
    return c / c[0].real


def empirical_modes_circle(theta, l_max: int, weights=None) -> np.ndarray:
    """μ̂_l = Σ_j m_j e^{−ilθ_j} / Σ_j m_j for l = 0..L (running powers, O(nL), |error| ≲ l·1e-16)."""
    th = np.asarray(theta, dtype=np.float64)
    m = np.full(th.size, 1.0 / th.size) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    u = np.exp(-1j * th)
    out = np.empty(int(l_max) + 1, dtype=np.complex128)
    p = np.ones(th.size, dtype=np.complex128)
    for l in range(int(l_max) + 1):
        out[l] = m @ p
        p *= u
    return out


def kde_circle(theta, l_max: int, kappa: float) -> np.ndarray:
    """Coefficients of the von Mises kernel-density estimate of a particle sample.

    ρ_κ = μ ∗ k_κ with k_κ(u) = e^{κ(cos u − 1)}/ive(0, κ) (a probability density for σ), whose
    coefficients are ive(l, κ)/ive(0, κ): ρ̂_l = μ̂_l ive(l, κ)/ive(0, κ). (Angular bandwidth ≈ 1/√κ.)
    """
    l = np.arange(int(l_max) + 1, dtype=np.float64)
    return empirical_modes_circle(theta, l_max) * special.ive(l, kappa) / special.ive(0.0, kappa)


def sample_circle(c: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n iid angles in [0, 2π) from the density ρ (coefficients ρ̂_0..ρ̂_L, ρ ≥ 0), by rejection
    from the uniform law under the bound ρ ≤ ρ̂_0 + 2 Σ_l |ρ̂_l| (exact sampling)."""
    c = np.asarray(c, dtype=np.complex128) / c[0].real
    bound = 1.0 + 2.0 * np.abs(c[1:]).sum()
    out = np.empty(0, dtype=np.float64)
    while out.size < n:
        m = int(1.2 * (n - out.size) * bound) + 16
        th = rng.uniform(0.0, 2.0 * np.pi, m)
        rho = circle_density(c, th)
        if np.any(rho < -1e-12):
            raise ValueError("density is negative somewhere")
        keep = th[rng.uniform(0.0, bound, m) < rho]
        out = np.concatenate([out, keep])
    return out[:n]


# --- distances between a particle sample and a density -------------------------------------------

def hminus_distance_circle(theta, c: np.ndarray) -> float:
    """‖μ − ρ‖_{H^{-1}} = (Σ_{l∈ℤ} (1 + l²)^{-1} |μ̂_l − ρ̂_l|²)^{1/2}, exactly (no truncation in l).

    μ = (1/n) Σ_j δ_{θ_j} is the empirical measure, ρ a density with coefficients ρ̂_0..ρ̂_L
    (ρ̂_l = 0 beyond L). With the kernel k(u) = Σ_l e^{ilu}/(1 + l²) = π cosh(π − u)/sinh π
    (0 ≤ u ≤ 2π), the squared distance is ⟨μ,μ⟩_k − 2⟨μ,ρ⟩_k + ⟨ρ,ρ⟩_k with
    ⟨μ,μ⟩_k = (1/n²) Σ_{i,j} k(θ_j − θ_i), summed in O(n log n) after sorting (k(θ_j − θ_i) for
    θ_i ≤ θ_j splits into e^{±(θ_j − θ_i)} terms, accumulated by prefix sums), and the other two
    from the n L Fourier modes.
    """
    th = np.sort(np.mod(np.asarray(theta, dtype=np.float64), 2.0 * np.pi))
    n = th.size
    c = _trim(np.asarray(c, dtype=np.complex128))
    L = c.size - 1
    pref = np.pi / np.sinh(np.pi)
    ep, em = np.exp(th), np.exp(-th)
    # Σ_{i<j} cosh(π − θ_j + θ_i) = ½ Σ_j [e^{π} e^{−θ_j} Σ_{i<j} e^{θ_i} + e^{−π} e^{θ_j} Σ_{i<j} e^{−θ_i}]
    cp = np.concatenate([[0.0], np.cumsum(ep)[:-1]])
    cm = np.concatenate([[0.0], np.cumsum(em)[:-1]])
    pair = 0.5 * (np.exp(np.pi) * (em @ cp) + np.exp(-np.pi) * (ep @ cm))
    mm = pref * (n * np.cosh(np.pi) + 2.0 * pair) / n**2
    mu = empirical_modes_circle(th, L)
    kl = 1.0 / (1.0 + np.arange(L + 1, dtype=np.float64) ** 2)
    mr = kl[0] * (mu[0] * np.conj(c[0])).real + 2.0 * (kl[1:] @ (mu[1:] * np.conj(c[1:])).real)
    rr = kl[0] * abs(c[0]) ** 2 + 2.0 * (kl[1:] @ np.abs(c[1:]) ** 2)
    return float(np.sqrt(max(mm - 2.0 * mr + rr, 0.0)))


def w1_distance_circle(theta, c: np.ndarray, n_quad: int = 1 << 15) -> float:
    """W₁(μ, ρ) on S¹ with the arc-length metric: min_a ∫_0^{2π} |F_μ(θ) − F_ρ(θ) − a| dθ.

    (The circle formula of Cabrelli–Molter / Rabin–Delon–Gousseau; F are the CDFs from θ = 0.)
    D = F_μ − F_ρ is evaluated at the particles (both one-sided limits) and on a uniform grid
    of n_quad points; between nodes F_μ is constant and F_ρ smooth, and |D − a| is integrated
    piecewise-linearly with its zero crossings located (error O(n_quad⁻²)). The minimising a
    is the weighted median of D.
    """
    th = np.sort(np.mod(np.asarray(theta, dtype=np.float64), 2.0 * np.pi))
    n = th.size
    grid = 2.0 * np.pi * np.arange(n_quad + 1, dtype=np.float64) / n_quad
    nodes = np.concatenate([grid, th])
    order = np.argsort(nodes, kind="stable")
    nodes = nodes[order]
    # F_μ just right of each node (counts of particles ≤ node), and just left of it
    right = np.searchsorted(th, nodes, side="right") / n
    fr = circle_cdf(c, nodes)
    # on each segment [nodes[k], nodes[k+1]] F_μ equals `right[k]`
    d0 = right[:-1] - fr[:-1]
    d1 = right[:-1] - fr[1:]
    h = np.diff(nodes)
    # weighted median of D over the segments (piecewise linear, approximated by midpoints)
    mid = 0.5 * (d0 + d1)
    o = np.argsort(mid)
    cw = np.cumsum(h[o])
    a = mid[o][np.searchsorted(cw, 0.5 * cw[-1])]

    def objective(a):
        p, q = d0 - a, d1 - a
        same = p * q >= 0
        val = np.where(same, 0.5 * h * (np.abs(p) + np.abs(q)),
                       0.5 * h * (p * p + q * q) / np.maximum(np.abs(p) + np.abs(q), 1e-300))
        return float(val.sum())

    # the objective is convex in a; refine the median by a few golden-section steps
    from scipy.optimize import minimize_scalar

    span = 4.0 / n + 1e-9
    res = minimize_scalar(objective, bounds=(a - span, a + span), method="bounded",
                          options={"xatol": 1e-13})
    return min(objective(a), float(res.fun))
