"""Linear instability of the uniform measure: Gegenbauer growth rates λ_l, l* and switch points (docs/science.md §6).

Linearising the mean-field USA flow (GLPR23 time convention, kernel e^{β⟨x,y⟩}, ρ a
probability measure on S^{d−1}) around the uniform measure, a perturbation in the
degree-l spherical harmonics grows at

    λ_l(β, d) = l(l + d − 2) · Γ(d/2) (2/β)^{(d−2)/2} I_{l+(d−2)/2}(β) / β.

Derivation (for the tests and the record): the mean-field velocity is
v(x) = ∫ e^{β⟨x,y⟩} P_x(y) ρ(dy) = ∇_x (K ∗ ρ)(x)/β with K(t) = e^{βt}; the continuity
equation linearised at ρ₀ = 1/|S^{d−1}| gives ∂_t ρ₁ = −ρ₀ Δ(K ∗ ρ₁)/β. By Funk–Hecke,
K ∗ Y_l = μ_l Y_l with μ_l = |S^{d−2}| ∫_{−1}^{1} e^{βt} P_{l,d}(t)(1 − t²)^{(d−3)/2} dt
(P_{l,d} the Gegenbauer polynomial normalised to 1 at t = 1), and −Δ Y_l = l(l+d−2) Y_l,
so λ_l = l(l + d − 2) μ_l / (β |S^{d−1}|), which evaluates to the Bessel formula above.
:func:`growth_rate_quadrature` computes exactly this quadrature, independently of the
Bessel closed form.

Conventions
-----------
``"glpr23"``  the formula above (kernel e^{β⟨x,y⟩}, BPA24's convention);
``"gkpr24"``  GKPR24's USA time, kernel e^{β(⟨x,y⟩−1)}: λ_l · e^{−β};
``"sa"``      softmax-normalised (SA): λ_l / κ₀ with κ₀ = Γ(d/2)(2/β)^{(d−2)/2} I_{(d−2)/2}(β),
              the normalisation ∫ e^{β⟨x,y⟩} ρ₀(dy) at the uniform measure.
All three share the argmax l*(β, d); only the clock differs.

Everything is computed in logarithms with ``scipy.special.ive`` (I_ν(β) e^{−β}), so
β in the thousands neither overflows nor underflows.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import integrate, optimize, special

__all__ = [
    "CONVENTIONS",
    "log_growth_rate",
    "growth_rate",
    "growth_rate_quadrature",
    "l_star",
    "switch_point",
    "switch_points",
    "formation_time",
]

CONVENTIONS = ("glpr23", "gkpr24", "sa")


def _check(beta, d, convention):
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if int(d) != d or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")
    beta = np.asarray(beta, dtype=np.float64)
    if np.any(~(beta > 0)) or np.any(~np.isfinite(beta)):
        raise ValueError(f"beta must be positive and finite, got {beta!r}")
    return beta, int(d)


def log_growth_rate(beta, l, d: int = 2, convention: str = "glpr23"):
    """ln λ_l(β, d) (broadcasting over β and l; l ≥ 1 integer).

    ln λ_l = ln(l(l+d−2)) + ln Γ(d/2) + ((d−2)/2) ln(2/β) + ln ive(l+(d−2)/2, β) + β − ln β
    in the GLPR23 convention; the GKPR24 convention drops the +β, SA subtracts ln κ₀.
    Returns −inf where ive underflows (l ≫ β), never NaN.
    """
    beta, d = _check(beta, d, convention)
    l = np.asarray(l)
    if np.any(l < 1) or np.any(l != np.round(l)):
        raise ValueError(f"l must be integers >= 1, got {l!r}")
    l = l.astype(np.float64)
    a = 0.5 * (d - 2)
    with np.errstate(divide="ignore"):
        log_ive = np.log(special.ive(l + a, beta))
        out = np.log(l * (l + d - 2)) + log_ive - np.log(beta)
        if convention == "sa":
            return out - np.log(special.ive(a, beta))
        out = out + special.gammaln(0.5 * d) + a * np.log(2.0 / beta)
    if convention == "glpr23":
        out = out + beta
    return out


def growth_rate(beta, l, d: int = 2, convention: str = "glpr23"):
    """λ_l(β, d) in the given convention (may overflow to inf for glpr23 at β ≳ 700)."""
    return np.exp(log_growth_rate(beta, l, d, convention))


def _sphere_area(k: int) -> float:
    """|S^k| = 2 π^{(k+1)/2} / Γ((k+1)/2)."""
    return 2.0 * np.pi ** (0.5 * (k + 1)) / special.gamma(0.5 * (k + 1))


def growth_rate_quadrature(beta: float, l: int, d: int = 2, convention: str = "gkpr24",
                           epsrel: float = 1e-12) -> float:
    """λ_l by Funk–Hecke quadrature of the linearised operator — no Bessel functions.

    λ_l = l(l+d−2) μ_l / (β |S^{d−1}|),
    μ_l = |S^{d−2}| ∫_{−1}^{1} e^{β t} P_{l,d}(t) (1−t²)^{(d−3)/2} dt,
    with P_{l,2} = T_l (Chebyshev) and P_{l,d} = C_l^{(d−2)/2}/C_l^{(d−2)/2}(1) for d ≥ 3.
    In d = 2 we substitute t = cos θ, which makes it l² (1/2π)∫_{−π}^{π} e^{β cos θ} cos(lθ) dθ / β;
    integrating by parts, this is l·(1/2π)∫ e^{β cos θ} sin θ sin(lθ) dθ, the growth of the mode
    cos(lθ) under the mean-field USA on the circle (see the tests). The kernel is evaluated as
    e^{β(t−1)} (GKPR24) and rescaled for the other conventions, so nothing overflows.

    Accuracy: the integrand oscillates, so the result carries an absolute error ~1e-16 times
    the kernel's size; the relative error is ~1e-13 for the modes near l* and grows for
    l ≫ √(2β), where λ_l is tiny (quad's round-off warnings are silenced for that reason).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return _growth_rate_quadrature(beta, l, d, convention, epsrel)


def _growth_rate_quadrature(beta, l, d, convention, epsrel):
    beta, d = _check(beta, d, convention)
    beta = float(beta)
    l = int(l)
    if d == 2:
        f = lambda th: np.exp(beta * (np.cos(th) - 1.0)) * np.sin(th) * np.sin(l * th)  # noqa: E731
        # integrand is even in θ: (1/2π)∫_{−π}^{π} = (1/π)∫_0^π
        val, _ = integrate.quad(f, 0.0, np.pi, epsabs=0.0, epsrel=epsrel, limit=400)
        lam = l * val / np.pi
        kappa0 = special.ive(0, beta)
    else:
        a = 0.5 * (d - 2)
        norm = special.eval_gegenbauer(l, a, 1.0)
        f = lambda t: (np.exp(beta * (t - 1.0)) * special.eval_gegenbauer(l, a, t) / norm  # noqa: E731
                       * (1.0 - t * t) ** (0.5 * (d - 3)))
        val, _ = integrate.quad(f, -1.0, 1.0, epsabs=0.0, epsrel=epsrel, limit=400)
        mu = _sphere_area(d - 2) * val
        lam = l * (l + d - 2) * mu / (beta * _sphere_area(d - 1))
        g = lambda t: np.exp(beta * (t - 1.0)) * (1.0 - t * t) ** (0.5 * (d - 3))  # noqa: E731
        k0, _ = integrate.quad(g, -1.0, 1.0, epsabs=0.0, epsrel=epsrel, limit=400)
        kappa0 = _sphere_area(d - 2) * k0 / _sphere_area(d - 1)
    if convention == "gkpr24":
        return float(lam)
    if convention == "glpr23":
        return float(lam * np.exp(beta))
    return float(lam / kappa0)  # sa: λ/κ₀, both carry the same e^{−β}


def _l_max(beta: float) -> int:
    # λ_l ∝ l² e^{−l²/(2β)} for large β: the argmax √(2β) is far inside this range
    return int(np.ceil(4.0 * np.sqrt(2.0 * beta) + 20))


def l_star(beta, d: int = 2) -> np.ndarray | int:
    """l*(β, d) = argmax_{l ≥ 1} λ_l(β, d) (convention-free). Broadcasts over β."""
    b, d = _check(beta, d, "glpr23")
    flat = np.atleast_1d(b).ravel()
    out = np.empty(flat.size, dtype=np.int64)
    for i, bi in enumerate(flat):
        ls = np.arange(1, _l_max(bi) + 1)
        out[i] = ls[int(np.argmax(log_growth_rate(bi, ls, d, "gkpr24")))]
    return int(out[0]) if b.ndim == 0 else out.reshape(b.shape)


def switch_point(l: int, d: int = 2, xtol: float = 1e-13) -> float:
    """β_c(l → l+1): the root of λ_l(β, d) = λ_{l+1}(β, d) (Brent's method on the log ratio).

    For small β, λ_{l+1}/λ_l ~ β → 0; for large β it tends to (l+1)(l+d−1)/(l(l+d−2)) > 1,
    so the root is bracketed in (1e-6, 10(l+2)²).
    """
    if int(l) != l or l < 1:
        raise ValueError(f"l must be an integer >= 1, got {l!r}")

    def f(b):
        return float(log_growth_rate(b, l, d, "gkpr24") - log_growth_rate(b, l + 1, d, "gkpr24"))

    return float(optimize.brentq(f, 1e-6, 10.0 * (l + 2) ** 2, xtol=xtol, rtol=4 * np.finfo(float).eps))


def switch_points(l_max: int = 9, d: int = 2) -> np.ndarray:
    """β_c(l → l+1) for l = 1..l_max."""
    return np.array([switch_point(l, d) for l in range(1, l_max + 1)])


def formation_time(beta, n: int, d: int = 2, convention: str = "gkpr24"):
    """t_c ≈ ln(n) / (2 λ*): the time for 1/√n fluctuations to grow to O(1) at rate λ* = λ_{l*}."""
    b, d = _check(beta, d, convention)
    ls = l_star(b, d)
    return np.log(n) / (2.0 * growth_rate(b, ls, d, convention))
