"""Mean-field self-attention on the sphere S² (d = 3): spherical-harmonic pseudo-spectral discretisation.

Notation
--------
x ∈ S² with colatitude ϑ ∈ [0, π] and longitude φ; σ = dA/4π is the normalised surface
measure and a density ρ is taken with respect to σ (uniform ρ ≡ 1). ρ = Σ_{l,m} a_lm Y_lm
with the orthonormal (∫ |Y_lm|² dA = 1) complex spherical harmonics of ducc0/healpy
(coefficients stored for m ≥ 0 only, a_{l,−m} = (−1)^m conj(a_lm)); then the mass is
∫ ρ dσ = a_00/√(4π) and ‖P_l ρ‖²_{L²(σ)} = (|a_l0|² + 2 Σ_{m>0} |a_lm|²)/4π.

Funk–Hecke: the convolution G = K∗ρ, G(x) = ∫ e^{β(⟨x,y⟩−1)} ρ(y) dσ(y), is diagonal,
G_lm = μ_l a_lm with

    μ_l = (1/2) ∫_{−1}^{1} e^{β(t−1)} P_l(t) dt = e^{−β} √(π/(2β)) I_{l+1/2}(β)
        = √(π/(2β)) ive(l + 1/2, β)

(P_l the Legendre polynomial; the tests check this against quadrature).

The equation
------------
∂_t ρ + div_S(ρ X) = 0 with X = (s/β) ∇_S G for USA (s = 1 in GKPR24's time, e^β in
GLPR23's) and X = ∇_S G/(β G) for SA. With the spin-1 (gradient/curl, "E/B") transforms
of ducc0: a tangent field F = ∇_S f + curl has E-coefficients E_lm = √(l(l+1)) f_lm, so

    ∇_S G  = spin-1 synthesis of E = √(l(l+1)) μ_l a_lm  (components ∂_ϑ G, ∂_φ G / sin ϑ),
    div_S F = −√(l(l+1)) E_lm(F)                          (E_lm(F) from spin-1 analysis),
    da_lm/dt = √(l(l+1)) E_lm(ρ X).

Linearised at ρ ≡ 1: da_lm/dt = (s/β) l(l+1) μ_l a_lm, i.e. λ_l = s l(l+1) μ_l/β (SA: / μ_0),
which is :func:`attention_dynamics.theory.gegenbauer.growth_rate` for d = 3.

Discretisation
--------------
ρ is truncated to degree L; the kernel to its band L_K(β) (the smallest l ≥ 2 with
μ_l < 10⁻¹⁶ μ_0 and √(l(l+1)) μ_l < 10⁻¹⁶ max; 26 at β = 5, 53 at β = 30), so ∇G has
band L_v = min(L, L_K). Products are formed on a Gauss–Legendre grid of
n_ϑ = ⌈(2L + L_v + 1)/2⌉ rings × n_φ ≥ 2L + L_v + 1 longitudes (the 3/2 rule when L_v = L):
GL quadrature on it integrates the degree-(2L + L_v) integrands of the spin-1 analysis
exactly, so for USA the semi-discrete system is the exact Galerkin truncation — mass
a_00 is constant (the spin-1 analysis has no l = 0 part) and dE/dt ≥ 0 whenever ρ ≥ 0,
both to round-off. For SA the quotient ∇G/G is not band-limited (aliasing reduced, not
removed). Default resolution L = max(32, 2 L_K(β)) (52 at β = 5, 106 at β = 30).

Transform library (measured with ``benchmarks/meanfield_speed.py --only libraries``, one core,
CPU time per call, the dealiased GL grid above, β = 5)
-----------------------------------------------------------------------------------------
                     L = 48 (grid 62×125)            L = 100 (grid 114×240)
    ducc0 0.42       RHS 0.30 ms, round trip 1e-15   RHS 1.37 ms, round trip 4e-15
    SHTns 3.7.5      RHS 0.27 ms, round trip 6e-17   RHS 0.62 ms, round trip 3e-16
    pyshtools 4.14   scalar synthesis + analysis alone 0.68 ms (L = 48), 2.1 ms (L = 100)

(RHS = one USA right-hand side: spin-0 synthesis, spin-1 synthesis, spin-1 analysis; round
trip = max relative error of analysis∘synthesis on random coefficients.) The SHTns right-hand
side agrees with this module's to 3e-14 (L = 48) and 9e-14 (L = 100) relative. SHTns is up to
2.2× faster at L = 100, but on PyPI it is a source distribution that needs a C compiler and
the FFTW 3 development files to install; ducc0 ships binary wheels and needs nothing else.
pyshtools has no spin-1 (vector) analysis, so the conservative flux form cannot be written
with it, and its scalar transforms were the slowest. We use ducc0.
"""
from __future__ import annotations

import numpy as np
from scipy import special

import ducc0

__all__ = [
    "sphere_kernel_eigenvalues",
    "sphere_kernel_band",
    "default_sphere_l_max",
    "SphereSpectral",
    "alm_index",
    "alm_degrees",
    "uniform_plus_noise_sphere",
    "density_from_function_sphere",
    "kde_sphere",
    "sphere_density",
    "gl_grid",
]

_KERNEL_TOL = 1e-16

def sphere_kernel_eigenvalues(beta: float, l_max: int) -> np.ndarray:
    """μ_l = (1/2) ∫_{−1}^{1} e^{β(t−1)} P_l(t) dt = √(π/(2β)) ive(l + 1/2, β), l = 0..l_max (float64)."""
    beta = float(beta)
    l = np.arange(int(l_max) + 1, dtype=np.float64)
    return np.sqrt(np.pi / (2.0 * beta)) * special.ive(l + 0.5, beta)


def sphere_kernel_band(beta: float, tol: float = _KERNEL_TOL) -> int:
    """L_K(β): smallest l ≥ 2 with μ_l < tol·μ_0 and √(l(l+1)) μ_l < tol·max_k √(k(k+1)) μ_k."""
    beta = float(beta)
    if not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be positive and finite, got {beta!r}")
    cap = int(np.ceil(10.0 * np.sqrt(beta) + 30))
    mu = sphere_kernel_eigenvalues(beta, cap)
    l = np.arange(cap + 1, dtype=np.float64)
    g = np.sqrt(l * (l + 1.0)) * mu
    small = (mu < tol * mu[0]) & (g < tol * g.max())
    small[:2] = False
    idx = np.flatnonzero(small)
    return int(idx[0]) if idx.size else cap


def default_sphere_l_max(beta: float) -> int:
    """Default truncation L = max(32, 2 L_K(β))."""
    return max(32, 2 * sphere_kernel_band(beta))


def alm_index(l, m, l_max: int):
    """Position of a_lm (m ≥ 0) in ducc0/healpy storage: m(2L + 1 − m)/2 + l."""
    return np.asarray(m) * (2 * int(l_max) + 1 - np.asarray(m)) // 2 + np.asarray(l)


def alm_degrees(l_max: int) -> tuple[np.ndarray, np.ndarray]:
    """(l, m) of every stored coefficient, in storage order (int64 arrays)."""
    L = int(l_max)
    ls = np.concatenate([np.arange(m, L + 1) for m in range(L + 1)])
    ms = np.concatenate([np.full(L + 1 - m, m) for m in range(L + 1)])
    return ls.astype(np.int64), ms.astype(np.int64)


def _check_model(model: str, convention: str) -> None:
    if model not in ("usa", "sa"):
        raise ValueError(f"model must be 'usa' or 'sa', got {model!r}")
    if convention not in ("gkpr24", "glpr23"):
        raise ValueError(f"convention must be 'gkpr24' or 'glpr23', got {convention!r}")


def gl_grid(n_theta: int, n_phi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colatitudes (north to south), longitudes 2πk/n_φ and per-pixel σ-weights of ducc0's GL grid."""
    x, wq = np.polynomial.legendre.leggauss(int(n_theta))
    theta = np.arccos(x[::-1])
    phi = 2.0 * np.pi * np.arange(int(n_phi), dtype=np.float64) / n_phi
    # σ-weights: (1/4π) · (GL weight in cos ϑ) · (2π/n_φ), summing to 1
    wpix = (wq[::-1] / (2.0 * n_phi))[:, None] * np.ones((1, int(n_phi)))
    return theta, phi, wpix


class SphereSpectral:
    """The pseudo-spectral right-hand side on S² (ducc0.sht transforms) and its diagnostics.

    State: a_lm for 0 ≤ m ≤ l ≤ L (complex128, healpy order), packed into the real float64
    vector y = (Re a, Im a). Attributes: ``l_max`` (L), ``kernel_band`` (L_K), ``n_theta``,
    ``n_phi`` (the dealiased GL grid), ``theta``, ``phi``, ``mu`` (μ_l, zero beyond L_v),
    ``time_factor`` (s), ``nthreads`` (ducc0 threads; default 1).
    """

    def __init__(self, beta: float, l_max: int | None = None, model: str = "usa",
                 convention: str = "gkpr24", nthreads: int = 1):
        _check_model(model, convention)
        beta = float(beta)
        if not beta > 0 or not np.isfinite(beta):
            raise ValueError(f"beta must be positive and finite, got {beta!r}")
        self.beta, self.model, self.convention, self.d = beta, model, convention, 3
        self.nthreads = int(nthreads)
        self.kernel_band = sphere_kernel_band(beta)
        self.l_max = L = int(default_sphere_l_max(beta) if l_max is None else l_max)
        if L < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max!r}")
        l_v = min(L, self.kernel_band)
        band = 2 * L + l_v  # degree of the integrands of the spin-1 analysis
        self.n_theta = (band + 2) // 2  # 2 n_ϑ − 1 ≥ band
        self.n_phi = int(ducc0.fft.good_size(band + 1, True))
        self.theta, self.phi, self.pixel_weights = gl_grid(self.n_theta, self.n_phi)
        self.ls, self.ms = alm_degrees(L)
        self.n_alm = self.ls.size
        mu = sphere_kernel_eigenvalues(beta, L)
        mu[l_v + 1:] = 0.0
        self.mu = mu
        self._mu_alm = mu[self.ls]
        self._sqrt_ll = np.sqrt(self.ls * (self.ls + 1.0))
        self._grad_alm = self._sqrt_ll * self._mu_alm
        self._mult = np.where(self.ms == 0, 1.0, 2.0)  # |a_l0|² + 2 Σ_{m>0} |a_lm|²
        self.time_factor = float(np.exp(beta)) if (model == "usa" and convention == "glpr23") else 1.0
        self._usa_factor = self.time_factor / beta
        self.n_state = 2 * self.n_alm
        self._geom = dict(lmax=L, geometry="GL", nthreads=self.nthreads)

    # --- packing -------------------------------------------------------------------------
    def pack(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.complex128)
        return np.concatenate([a.real, a.imag])

    def unpack(self, y: np.ndarray) -> np.ndarray:
        return y[: self.n_alm] + 1j * y[self.n_alm:]

    def coefficients_from(self, a: np.ndarray, l_in: int | None = None) -> np.ndarray:
        """Copy coefficients of degree ≤ l_in (healpy order for lmax = l_in) into this truncation."""
        a = np.asarray(a, dtype=np.complex128)
        if l_in is None:
            l_in = int(round((np.sqrt(8 * a.size + 1) - 3) / 2))
        if (l_in + 1) * (l_in + 2) // 2 != a.size:
            raise ValueError(f"{a.size} coefficients do not form a triangle of degree {l_in}")
        li, mi = alm_degrees(l_in)
        keep = li <= self.l_max
        if np.any(a[~keep] != 0):
            raise ValueError(f"initial data has degrees above l_max = {self.l_max}")
        out = np.zeros(self.n_alm, dtype=np.complex128)
        out[alm_index(li[keep], mi[keep], self.l_max)] = a[keep]
        out[self.ms == 0] = out[self.ms == 0].real
        return out

    # --- transforms ----------------------------------------------------------------------
    def to_grid(self, a: np.ndarray) -> np.ndarray:
        """f(ϑ_i, φ_k) = Σ a_lm Y_lm on the (n_ϑ, n_φ) GL grid (spin-0 synthesis)."""
        return ducc0.sht.synthesis_2d(alm=a[None, :], spin=0, ntheta=self.n_theta, nphi=self.n_phi,
                                      **self._geom)[0]

    def gradient_grid(self, a: np.ndarray) -> np.ndarray:
        """(∂_ϑ f, ∂_φ f / sin ϑ) of f = Σ a_lm Y_lm on the grid: spin-1 synthesis of E = √(l(l+1)) a_lm."""
        e = np.zeros((2, self.n_alm), dtype=np.complex128)
        e[0] = self._sqrt_ll * a
        return ducc0.sht.synthesis_2d(alm=e, spin=1, ntheta=self.n_theta, nphi=self.n_phi, **self._geom)

    def divergence_coefficients(self, f: np.ndarray) -> np.ndarray:
        """(div_S F)_lm = −√(l(l+1)) E_lm(F) for a tangent field F = (F_ϑ, F_φ) on the grid (exact for
        band ≤ 2n_ϑ − 1 − L)."""
        e = ducc0.sht.analysis_2d(map=f, spin=1, **self._geom)
        return -self._sqrt_ll * e[0]

    def from_grid(self, f: np.ndarray) -> np.ndarray:
        """a_lm of a scalar grid function (GL quadrature: the L² projection if f has band ≤ 2n_ϑ − 1 − L)."""
        return ducc0.sht.analysis_2d(map=f[None], spin=0, **self._geom)[0]

    # --- the equation ----------------------------------------------------------------------
    def velocity_grid(self, a: np.ndarray) -> np.ndarray:
        """X on the grid: (s/β) ∇_S G (USA) or ∇_S G/(β G) (SA), G = K∗ρ; shape (2, n_ϑ, n_φ)."""
        e = np.zeros((2, self.n_alm), dtype=np.complex128)
        e[0] = self._grad_alm * a
        grad = ducc0.sht.synthesis_2d(alm=e, spin=1, ntheta=self.n_theta, nphi=self.n_phi, **self._geom)
        if self.model == "usa":
            grad *= self._usa_factor
            return grad
        g = self.to_grid(self._mu_alm * a)
        return grad / (self.beta * g)

    def rhs_coefficients(self, a: np.ndarray) -> np.ndarray:
        """da_lm/dt = −(div_S(ρ X))_lm = √(l(l+1)) E_lm(ρ X)."""
        flux = self.velocity_grid(a)
        flux *= self.to_grid(a)[None]
        return -self.divergence_coefficients(flux)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        return self.pack(self.rhs_coefficients(self.unpack(y)))

    # --- diagnostics -----------------------------------------------------------------------
    def mass(self, a: np.ndarray) -> float:
        """∫ ρ dσ = a_00/√(4π)."""
        return float(a[0].real / np.sqrt(4.0 * np.pi))

    def energy(self, a: np.ndarray) -> float:
        """E = ∫∫ e^{β(⟨x,y⟩−1)} ρρ dσ dσ = (1/4π) Σ_l μ_l (|a_l0|² + 2 Σ_{m>0} |a_lm|²)."""
        return float((self._mu_alm * self._mult) @ (np.abs(a) ** 2) / (4.0 * np.pi))

    def mode_amplitudes(self, a: np.ndarray) -> np.ndarray:
        """‖P_l ρ‖_{L²(σ)}, l = 0..L."""
        p = np.bincount(self.ls, weights=self._mult * np.abs(a) ** 2, minlength=self.l_max + 1)
        return np.sqrt(p / (4.0 * np.pi))

    def min_density(self, a: np.ndarray) -> float:
        return float(self.to_grid(a).min())

    def spectral_tail(self, a: np.ndarray) -> float:
        """‖P_{l>2L/3} ρ‖ / ‖ρ‖ in L²(σ)."""
        amp2 = self.mode_amplitudes(a) ** 2
        return float(np.sqrt(amp2[2 * self.l_max // 3 + 1:].sum() / amp2.sum()))

    def grid_coordinates(self) -> dict:
        return {"theta": self.theta, "phi": self.phi}


# --- evaluation and initial data ------------------------------------------------------------------

def sphere_density(a: np.ndarray, l_max: int, points: np.ndarray, nthreads: int = 1,
                   epsilon: float = 1e-13) -> np.ndarray:
    """ρ at arbitrary unit vectors ``points`` (m, 3) (ducc0.sht.synthesis_general, relative accuracy
    ``epsilon``)."""
    p = np.asarray(points, dtype=np.float64)
    loc = np.stack([np.arccos(np.clip(p[:, 2], -1.0, 1.0)), np.mod(np.arctan2(p[:, 1], p[:, 0]), 2 * np.pi)],
                   axis=1)
    return ducc0.sht.synthesis_general(alm=np.asarray(a, np.complex128)[None], spin=0, lmax=int(l_max),
                                       loc=loc, epsilon=epsilon, nthreads=nthreads)[0]


def uniform_plus_noise_sphere(sigma: float, l_noise: int, rng: np.random.Generator) -> np.ndarray:
    """1 + band-limited isotropic white noise: a_lm (degree ≤ l_noise) with ρ(x) − 1 of variance σ².

    a_00 = √(4π) (mass 1); for 1 ≤ l ≤ l_noise, a_l0 ~ N(0, s²) and Re a_lm, Im a_lm ~ N(0, s²/2)
    (m > 0) with s² = 4π σ²/((l_noise + 1)² − 1), so that Var ρ(x) = Σ_l (2l+1) s²/4π = σ² at every
    x (the law is rotation invariant). This is what white noise of std σ on an equal-area grid of
    (l_noise + 1)² cells looks like after projection onto degrees ≤ l_noise.
    """
    L = int(l_noise)
    ls, ms = alm_degrees(L)
    s2 = 4.0 * np.pi * float(sigma) ** 2 / ((L + 1) ** 2 - 1)
    re = rng.standard_normal(ls.size)
    im = rng.standard_normal(ls.size)
    a = np.where(ms == 0, np.sqrt(s2) * re, np.sqrt(s2 / 2) * (re + 1j * im)).astype(np.complex128)
    a[0] = np.sqrt(4.0 * np.pi)
    return a


def density_from_function_sphere(f, l_max: int, oversample: int = 2, nthreads: int = 1) -> np.ndarray:
    """a_lm (degree ≤ L) of f/∫f dσ for a callable f(x) on unit vectors x of shape (..., 3).

    By GL quadrature on (oversample·(L+1)) × (2·oversample·(L+1)) points: exact for f of
    band ≤ (2·oversample − 1)(L + 1) − 1, spectrally accurate for smooth f."""
    L = int(l_max)
    nt, nph = oversample * (L + 1), 2 * oversample * (L + 1)
    theta, phi, _ = gl_grid(nt, nph)
    st = np.sin(theta)[:, None]
    x = np.stack([st * np.cos(phi)[None], st * np.sin(phi)[None], np.cos(theta)[:, None] * np.ones((1, nph))],
                 axis=-1)
    vals = np.asarray(f(x), dtype=np.float64)
    a = ducc0.sht.analysis_2d(map=vals[None], spin=0, lmax=L, geometry="GL", nthreads=nthreads)[0]
    if not a[0].real > 0:
        raise ValueError("f must have positive mass")
    return a * (np.sqrt(4.0 * np.pi) / a[0].real)


def kde_sphere(points: np.ndarray, l_max: int, kappa: float, nthreads: int = 1,
               epsilon: float = 1e-13) -> np.ndarray:
    """a_lm of the von Mises–Fisher kernel-density estimate of a particle sample on S².

    The empirical measure μ = (1/n) Σ δ_{x_j} has σ-density coefficients 4π (1/n) Σ_j conj(Y_lm(x_j))
    (ducc0.sht.adjoint_synthesis_general); the kernel k_κ(⟨x,y⟩) = e^{κ(⟨x,y⟩−1)}/μ_0(κ) (a σ-probability
    density) acts by Funk–Hecke with the factors μ_l(κ)/μ_0(κ) = ive(l+½, κ)/ive(½, κ). The sum over
    particles is ducc0's non-uniform transform, relative accuracy ``epsilon``.
    """
    p = np.asarray(points, dtype=np.float64)
    n = p.shape[0]
    loc = np.stack([np.arccos(np.clip(p[:, 2], -1.0, 1.0)), np.mod(np.arctan2(p[:, 1], p[:, 0]), 2 * np.pi)],
                   axis=1)
    vals = np.full((1, n), 4.0 * np.pi / n, dtype=np.float64)
    a = ducc0.sht.adjoint_synthesis_general(map=vals, spin=0, lmax=int(l_max), loc=loc,
                                                epsilon=epsilon, nthreads=nthreads)[0]
    ls, _ = alm_degrees(int(l_max))
    mu = sphere_kernel_eigenvalues(kappa, int(l_max))
    return a * (mu / mu[0])[ls]
