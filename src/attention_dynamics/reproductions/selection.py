"""BPA24: how clusters and selected degrees are counted, and what the linear theory predicts at finite n.

Counting rules (single-linkage components, the degree power S_l of the empirical measure,
the maxima of the interaction potential φ on the circle) and :func:`linear_selection`, the
finite-n prediction of the linearised flow for the dominant degree and the count.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine.clusters import circle_components
from ..engine.clusters import components_with_extents as components
from ..engine.dynamics import circle_kernel_modes, circle_modes, unit_complex

__all__ = ["circle_components", "components", "degree_power", "sphere_degree_power", "potential_on_circle",
           "potential_maxima", "default_l_max", "linear_selection"]

def degree_power(x: np.ndarray, l_max: int) -> np.ndarray:
    """S_l = (1/n²) Σ_{i,j} P_{l,d}(⟨x_i, x_j⟩) for l = 1..l_max (P_{l,d} Gegenbauer, P(1) = 1).

    By the addition theorem S_l = (|S^{d−1}|/N_l) Σ_m |(1/n) Σ_i Y_lm(x_i)|²: the mean power
    per degree-l harmonic of the empirical measure. For iid uniform points E S_l = 1/n at
    every l, and in the linear regime S_l grows like e^{2 λ_l t}, so argmax_l S_l is the
    degree the instability selects — in any d (in d = 2, S_l = |(1/n) Σ_i e^{ilθ_i}|²; in
    d = 3, :func:`sphere_degree_power`, O(n l_max²); d ≥ 4: the Gegenbauer recurrence on the
    Gram matrix, O(n² l_max)).
    """
    n, d = x.shape
    if d == 2:
        return np.abs(circle_modes(unit_complex(x), None, l_max)) ** 2
    if d == 3:
        return sphere_degree_power(x, l_max)
    a = 0.5 * (d - 2)
    g = np.clip(x @ x.T, -1.0, 1.0)
    prev, cur = np.ones_like(g), 2.0 * a * g           # C_0, C_1 (α = (d−2)/2)
    prev1, cur1 = 1.0, 2.0 * a                          # their values at t = 1
    out = np.empty(l_max)
    for l in range(1, l_max + 1):
        out[l - 1] = cur.mean() / cur1
        nxt = (2.0 * (l + a) * g * cur - (l + 2.0 * a - 1.0) * prev) / (l + 1.0)
        nxt1 = (2.0 * (l + a) * cur1 - (l + 2.0 * a - 1.0) * prev1) / (l + 1.0)
        prev, cur, prev1, cur1 = cur, nxt, cur1, nxt1
    return out


def sphere_degree_power(x: np.ndarray, l_max: int, chunk: int = 8192) -> np.ndarray:
    """S_l = (1/n²) Σ_{i,j} P_l(⟨x_i, x_j⟩), l = 1..l_max, for points on S² in O(n l_max²) time.

    The addition theorem with the 4π-normalised associated Legendre functions P̄_l^m
    (∫ P̄_l^m(cos ϑ)² cos² mφ dσ = 1 for m > 0, P̄_l^0 = √(2l+1) P_l) gives

        Σ_m Ȳ_lm(x) Ȳ_lm(y) = (2l + 1) P_l(⟨x, y⟩),   so   S_l = (|A_l0|² + Σ_{m=1}^{l} |A_lm|²)/(2l + 1),

    A_lm = (1/n) Σ_i P̄_l^m(z_i) e^{imφ_i}. Per point, W_l^m = P̄_l^m(z) e^{imφ} follows the
    three-term recurrence in l (Holmes & Featherstone 2002) started from the sectoral terms
    W_m^m = c_m (x + iy)^m (c_0 = 1, c_1 = √3, c_m = c_{m−1} √((2m+1)/(2m))) — no angles, no
    division by sin ϑ at the poles:

        W_{m+1}^m = √(2m+3) z W_m^m,
        W_l^m = a_lm z W_{l−1}^m − b_lm W_{l−2}^m,  a_lm = √((2l−1)(2l+1)/((l−m)(l+m))),
                b_lm = √((2l+1)(l+m−1)(l−m−1)/((l−m)(l+m)(2l−3))).

    All m are advanced together (arrays of shape (l_max + 1, points)), the points in chunks
    of ``chunk`` (memory O(l_max · chunk)). Agrees with the O(n² l_max) Legendre sum over the
    Gram matrix and with scipy's ``sph_harm_y`` to ~1e-15 (tests/test_reproductions.py).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"sphere_degree_power needs points on S² (shape (n, 3)), got {x.shape}")
    L, n = int(l_max), x.shape[0]
    if L < 1:
        return np.empty(0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    m = np.arange(L + 1, dtype=np.float64)
    c = np.ones(L + 1)
    if L >= 1:
        c[1] = np.sqrt(3.0)
        c[2:] = np.sqrt(3.0) * np.cumprod(np.sqrt((2.0 * m[2:] + 1.0) / (2.0 * m[2:])))
    acc = np.zeros((L + 1, L + 1), dtype=np.complex128)  # acc[l, m] = Σ_i W_l^m(x_i)
    for start in range(0, n, int(chunk)):
        xc = x[start:start + int(chunk)]
        z = xc[:, 2]
        w = xc[:, 0] + 1j * xc[:, 1]
        sect = np.empty((L + 1, z.size), dtype=np.complex128)  # W_m^m
        sect[0] = 1.0
        for k in range(1, L + 1):
            sect[k] = sect[k - 1] * w
        sect *= c[:, None]
        prev2 = np.zeros_like(sect)  # W_{l−2}^m
        prev1 = np.zeros_like(sect)  # W_{l−1}^m
        prev1[0] = 1.0
        acc[0, 0] += z.size
        for l in range(1, L + 1):
            cur = np.zeros_like(sect)
            if l >= 2:
                mm = m[: l - 1]
                a = np.sqrt((2 * l - 1.0) * (2 * l + 1.0) / ((l - mm) * (l + mm)))
                b = np.sqrt((2 * l + 1.0) * (l + mm - 1.0) * (l - mm - 1.0) / ((l - mm) * (l + mm) * (2 * l - 3.0)))
                cur[: l - 1] = a[:, None] * z[None, :] * prev1[: l - 1] - b[:, None] * prev2[: l - 1]
            cur[l - 1] = np.sqrt(2.0 * l + 1.0) * z * sect[l - 1]
            cur[l] = sect[l]
            acc[l, : l + 1] += cur[: l + 1].sum(axis=1)
            prev2, prev1 = prev1, cur
    amp = np.abs(acc / n) ** 2
    return amp[1:].sum(axis=1) / (2.0 * np.arange(1, L + 1) + 1.0)


def _grid_size(n_modes: int) -> int:
    # ≥ 16 grid points per period of the highest retained mode, a power of 2 for the FFT
    return max(256, 1 << int(np.ceil(np.log2(16 * max(n_modes, 1)))))


def _count_circle_maxima(f: np.ndarray, floor: float) -> np.ndarray:
    """Local maxima of periodic samples f[..., k] (rising into k, not rising out of it) with f ≥ floor."""
    rising = np.roll(f, -1, axis=-1) > f  # f[k+1] > f[k]
    return np.sum(np.roll(rising, 1, axis=-1) & ~rising & (f >= floor), axis=-1)


def potential_on_circle(theta: np.ndarray, beta: float, mass=None, m: int | None = None):
    """φ(ϑ) = Σ_j m_j e^{β(cos(ϑ − θ_j) − 1)} / Σ_j m_j on a uniform grid of S¹ (by FFT).

    φ is the interaction potential of the flow: in d = 2 (equal masses) a particle at ϑ moves
    at φ'(ϑ)/β under USA (GKPR24 time) and at φ'(ϑ)/(β φ(ϑ)) under SA, so the particles climb
    φ and the maxima of φ are where they go. Fourier coefficients: φ̂_l = ive(|l|, β) ẑ_l with
    ẑ_l = Σ m_j e^{−ilθ_j}/Σ m_j, truncated where ive(l, β)/ive(0, β) < 1e-15. Returns ``(grid, phi)``.
    """
    theta = np.asarray(theta, dtype=np.float64)
    mass = np.ones(theta.size) if mass is None else np.asarray(mass, dtype=np.float64)
    w = circle_kernel_modes(beta)
    m = _grid_size(w.size) if m is None else int(m)
    z = np.conj(circle_modes(np.exp(1j * theta), mass, w.size - 1))
    c = np.zeros(m // 2 + 1, dtype=complex)
    c[0] = w[0]
    # φ(ϑ) = Σ_{l∈ℤ} w_|l| ẑ_l e^{ilϑ} = w_0 + 2 Re Σ_{l≥1} w_l ẑ_l e^{ilϑ}, and irfft(c, m)_k is
    # (1/m)(c_0 + 2 Re Σ_l c_l e^{2πi lk/m}): c_l = w_l ẑ_l, times m
    c[1:w.size] = w[1:] * z
    return 2 * np.pi * np.arange(m) / m, np.fft.irfft(c, m) * m


def potential_maxima(x: np.ndarray, beta: float, mass=None, *, floor: float = 1e-9) -> int:
    """Number of local maxima of the interaction potential φ (:func:`potential_on_circle`), d = 2.

    The count has no free scale: the kernel e^{β(cos−1)} of the model itself sets the smoothing
    (angular width 1/√β). Maxima below ``floor`` × max φ (round-off level of the FFT in the empty
    stretches between collapsed clusters at large β) are not counted. Every local maximum counts,
    however small: read it while the density is still smooth on the kernel scale (the linear
    phase); after collapse a lone particle far from every cluster makes its own maximum.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"potential_maxima needs points on S¹ (shape (n, 2)), got {x.shape}")
    _, phi = potential_on_circle(np.arctan2(x[:, 1], x[:, 0]), beta, mass)
    return int(_count_circle_maxima(phi, floor * phi.max()))


def _degree_multiplicity(l: np.ndarray, d: int) -> np.ndarray:
    """N_l: dimension of the degree-l spherical harmonics on S^{d−1} (2 in d = 2, 2l+1 in d = 3)."""
    from scipy.special import gammaln

    l = np.asarray(l, dtype=np.float64)
    if d == 2:
        return np.full(l.shape, 2.0)
    return np.round(np.exp(np.log(2 * l + d - 2) + gammaln(l + d - 2) - gammaln(d - 1) - gammaln(l + 1)))


def default_l_max(beta: float) -> int:
    """Degrees scanned for the dominant degree: 2⌈√(2β)⌉ + 6 (l* ≈ √(2β); beyond, λ_l → 0 fast)."""
    return 2 * int(np.ceil(np.sqrt(2.0 * beta))) + 6


def linear_selection(beta: float, n: int, d: int = 2, *, power_level: float = 0.05, l_max: int | None = None,
                     samples: int = 20_000, seed: int = 0, chunk: int = 2000) -> dict:
    """Finite-n prediction of the linear theory for what :func:`formation` reads at the end of the linear phase.

    Model (exact for the linearised flow, docs/science.md §6): n iid uniform points give degree powers
    S_l(0) with n S_l(0) ~ Gamma(N_l/2, scale 2/N_l) (mean 1; Exp(1) in d = 2), independent
    across l; each harmonic grows as e^{λ_l t} (GKPR24 time, any model: only the clock differs),
    so S_l(t) = S_l(0) e^{2 λ_l t}. :func:`formation` reads the *dominant degree* at the first
    time max_{l ≤ l_max} S_l = ``power_level``, i.e. the degree whose first-passage time
    ln(n·level / (n S_l(0)))/(2λ_l) is smallest, and (d = 2) the *number of maxima of the
    potential* φ at that time, whose coefficients are ive(l, β) z_l(0) e^{λ_l t}.

    Monte Carlo over ``samples`` draws of the initial noise (complex Gaussian z_l(0), all modes
    up to the kernel's truncation; fixed ``seed``: the prediction is deterministic; the standard
    error of a probability p is √(p(1−p)/samples) ≤ 0.004 at the default).

    Returns dict(degree=pd.Series P(dominant degree = l) indexed by l, count=pd.Series
    P(number of maxima = k) indexed by k (None for d ≥ 3), t_mean=mean reading time).
    """
    from ..theory.gegenbauer import growth_rate

    if l_max is None:
        l_max = default_l_max(beta)
    rng = np.random.default_rng(seed)
    big = n * power_level
    if d == 2:
        w = circle_kernel_modes(beta)
        L = max(w.size - 1, l_max)
        w = np.concatenate([w, np.zeros(L + 1 - w.size)]) if w.size < L + 1 else w
        lam = growth_rate(beta, np.arange(1, L + 1), 2, "gkpr24")
        m = _grid_size(w.size)
        chunk = max(64, min(chunk, 4_000_000 // m))  # bounds the (chunk × m) grids to ~64 MB
        degs, counts, times = [], [], []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            z = (rng.standard_normal((k, L)) + 1j * rng.standard_normal((k, L))) / np.sqrt(2.0 * n)
            e = n * np.abs(z[:, :l_max]) ** 2
            tpass = np.log(np.maximum(big / e, 1.0)) / (2.0 * lam[:l_max])
            t = tpass.min(axis=1)
            degs.append(np.argmin(tpass, axis=1) + 1)
            times.append(t)
            c = np.zeros((k, m // 2 + 1), dtype=complex)
            c[:, 0] = w[0]
            c[:, 1:L + 1] = w[1:] * z * np.exp(lam[None, :] * t[:, None])
            phi = np.fft.irfft(c, m, axis=1) * m
            counts.append(_count_circle_maxima(phi, 0.0))
        deg, cnt, t = np.concatenate(degs), np.concatenate(counts), np.concatenate(times)
        count = pd.Series(cnt).value_counts(normalize=True).sort_index()
    else:
        ls = np.arange(1, l_max + 1)
        lam = growth_rate(beta, ls, d, "gkpr24")
        shape = _degree_multiplicity(ls, d) / 2.0
        e = rng.gamma(shape, 1.0 / shape, size=(samples, l_max))
        tpass = np.log(np.maximum(big / e, 1.0)) / (2.0 * lam)
        deg, t = np.argmin(tpass, axis=1) + 1, tpass.min(axis=1)
        count = None
    degree = pd.Series(deg).value_counts(normalize=True).sort_index()
    return dict(degree=degree, count=count, t_mean=float(np.mean(t)))


def _dist_str(p: pd.Series | None, cut: float = 0.005) -> str:
    """'k:p;…' for the probabilities ≥ cut (rounded to 3 decimals); '' for None."""
    if p is None:
        return ""
    return ";".join(f"{int(k)}:{v:.3f}" for k, v in p.items() if v >= cut)


def _parse_dist(s) -> dict:
    if not isinstance(s, str) or not s:
        return {}
    return {int(k): float(v) for k, v in (item.split(":") for item in s.split(";"))}


