"""Closed forms and quadratures from the theory (docs/science.md §3, §6), independent of the integrator."""
from __future__ import annotations

import numpy as np
from scipy import integrate

__all__ = [
    "two_cluster_gap_rate",
    "two_cluster_scaled_inverse_rate",
    "two_cluster_share",
    "two_cluster_merge_time",
    "escape_time_lower_bound",
    "escape_theorem_gamma",
]


def two_cluster_gap_rate(D, beta: float, n_a: float, n_b: float, n: float, model: str):
    """dD/dt for two point clusters of masses n_a, n_b (counts) at angle D (docs/science.md §3).

    USA: Ḋ = −((n_a + n_b)/n) e^{β(cos D − 1)} sin D.
    SA:  Ḋ = −sin D e^{β(cos D−1)} [ n_b/(n_a + n_b e^{β(cos D−1)}) + n_a/(n_b + n_a e^{β(cos D−1)}) ]
    (the SA form is the two-cluster one: n = n_a + n_b).
    """
    D = np.asarray(D, dtype=np.float64)
    e = np.exp(beta * (np.cos(D) - 1.0))
    if model == "usa":
        return -((n_a + n_b) / n) * e * np.sin(D)
    if model == "sa":
        return -np.sin(D) * e * (n_b / (n_a + n_b * e) + n_a / (n_b + n_a * e))
    raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")


def two_cluster_scaled_inverse_rate(D, D0: float, beta: float, n_a: float, n_b: float, n: float, model: str):
    """1/|Ḋ(D)| of :func:`two_cluster_gap_rate`, times e^{−β(1 − cos D0)} (so that it stays finite).

    USA: e^{β(cos D0 − cos D)} / (((n_a + n_b)/n) sin D);
    SA:  e^{β(cos D0 − cos D)} / (sin D [n_b/(n_a + n_b K) + n_a/(n_b + n_a K)]),  K = e^{β(cos D − 1)}.
    The time for the gap to close from D0 to D1 is e^{β(1 − cos D0)} ∫_{D1}^{D0} of this.
    """
    D = np.asarray(D, dtype=np.float64)
    e_rel = np.exp(beta * (np.cos(D0) - np.cos(D)))  # e^{β(1−cos D)}·e^{−β(1−cos D0)}
    if model == "usa":
        return e_rel / (((n_a + n_b) / n) * np.sin(D))
    if model == "sa":
        K = np.exp(beta * (np.cos(D) - 1.0))
        return e_rel / (np.sin(D) * (n_b / (n_a + n_b * K) + n_a / (n_b + n_a * K)))
    raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")


def two_cluster_share(D, beta: float, n_a: float, n_b: float, model: str):
    """The share of the gap's closing made by cluster a: |θ̇_a| / |Ḋ| at gap D.

    Both clusters move towards each other along the great circle through them, a with angular
    speed s_a and b with s_b, Ḋ = −(s_a + s_b). USA: s_a = (n_b/n) K sin D, so the share is
    n_b/(n_a + n_b) at every D; SA: s_a = n_b K sin D/(n_a + n_b K) and
    s_b = n_a K sin D/(n_b + n_a K), K = e^{β(cos D − 1)}.
    """
    D = np.asarray(D, dtype=np.float64)
    if model == "usa":
        return np.full(D.shape, n_b / (n_a + n_b))
    if model == "sa":
        K = np.exp(beta * (np.cos(D) - 1.0))
        s_a, s_b = n_b / (n_a + n_b * K), n_a / (n_b + n_a * K)
        return s_a / (s_a + s_b)
    raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")


def two_cluster_merge_time(D0: float, D1: float, beta: float, n_a: float, n_b: float,
                           n: float | None = None, model: str = "usa", epsrel: float = 1e-13) -> float:
    """Time for the gap to shrink from D0 to D1 < D0: ∫_{D1}^{D0} dD / |Ḋ(D)|, by adaptive quadrature.

    The integrand is e^{β(1−cos D)}/(c sin D)-like; we integrate
    :func:`two_cluster_scaled_inverse_rate` (the exponential factored out at D0, ≤ O(1/sin D)
    on [D1, D0]) to keep the quadrature well scaled. ``epsrel`` is the quadrature's relative
    tolerance (the engine's collapse guard, which only compares the time with its guard time,
    asks for 1e-8).
    """
    n = n_a + n_b if n is None else n
    if not (0 < D1 < D0 < np.pi):
        raise ValueError(f"need 0 < D1 < D0 < π, got D0={D0}, D1={D1}")
    if model not in ("sa", "usa"):
        raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")

    def stable(D):
        return float(two_cluster_scaled_inverse_rate(D, D0, beta, n_a, n_b, n, model))

    val, err = integrate.quad(stable, D1, D0, epsabs=0.0, epsrel=epsrel, limit=500,
                              points=[D0 - min(1.0 / beta, 0.5 * (D0 - D1))])
    return float(val * np.exp(beta * (1.0 - np.cos(D0))))


def escape_theorem_gamma(alpha: float, eps: float, n: int, beta: float) -> float:
    """γ = 1 − α − 8ε − β^{-1} log(2n²/ε) (GKPR24): the escape bound holds when γ > 0."""
    return 1.0 - alpha - 8.0 * eps - np.log(2.0 * n * n / eps) / beta


def escape_time_lower_bound(alpha: float, eps: float, n: int, beta: float) -> float:
    """T₂ = (ε/n) e^{(1−α)β}: GKPR24's lower bound on the escape time (when γ > 0)."""
    return eps / n * np.exp((1.0 - alpha) * beta)
