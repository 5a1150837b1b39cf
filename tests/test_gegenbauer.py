"""Gegenbauer growth rates λ_l(β, d), l* and the d = 2 switch points (docs/science.md §6)."""
import numpy as np
import pytest

from attention_dynamics.engine.dynamics import velocity
from attention_dynamics.theory.gegenbauer import (
    CONVENTIONS,
    formation_time,
    growth_rate,
    growth_rate_quadrature,
    l_star,
    log_growth_rate,
    switch_point,
    switch_points,
)

# docs/science.md §6, printed to 4 decimals
PRINTED_SWITCH_POINTS = [1.0445, 3.1654, 6.2113, 10.2285, 15.2363, 21.2405, 28.2430, 36.2446, 45.2457]


def test_switch_points_d2_match_printed_values():
    got = switch_points(9, d=2)
    assert np.round(got, 4).tolist() == PRINTED_SWITCH_POINTS


def test_switch_point_is_a_crossing_of_growth_rates():
    for l in (1, 4, 9):
        b = switch_point(l, 2)
        lo, hi = growth_rate([b - 1e-3, b + 1e-3], l, 2), growth_rate([b - 1e-3, b + 1e-3], l + 1, 2)
        assert lo[0] > hi[0] and lo[1] < hi[1]
        assert l_star(b - 1e-3) == l and l_star(b + 1e-3) == l + 1


def test_l_star_staircase_between_switch_points():
    sp = switch_points(9)
    mids = 0.5 * (sp[:-1] + sp[1:])
    assert l_star(mids, 2).tolist() == list(range(2, 10))
    assert l_star(0.5) == 1


@pytest.mark.parametrize("beta", [50.0, 200.0, 1000.0, 1e4, 1e5])
def test_l_star_asymptotically_sqrt_2beta(beta):
    # λ_l ∝ l² e^{−l²/(2β)}(1 + O(1/β)) for large β: argmax √(2β)
    assert abs(l_star(beta, 2) - np.sqrt(2 * beta)) <= 1.0


def test_l_star_does_not_depend_on_convention():
    ls = np.arange(1, 40)
    for beta in (0.7, 5.0, 33.0, 800.0):
        for d in (2, 3, 5):
            args = [np.argmax(log_growth_rate(beta, ls, d, c)) for c in CONVENTIONS]
            assert len(set(args)) == 1


def test_large_beta_is_finite_in_logs():
    v = log_growth_rate(5000.0, np.arange(1, 200), 2, "gkpr24")
    assert np.all(np.isfinite(v))
    assert l_star(5000.0) == 100  # √(2·5000) = 100


def _well_conditioned(beta, d):
    """(l) whose λ_l is not tiny compared with the largest rate (quadrature cancellation)."""
    ls = np.arange(1, 30)
    lg = log_growth_rate(beta, ls, d, "gkpr24")
    return ls[lg > lg.max() - np.log(1e3)]


@pytest.mark.parametrize("beta", [0.5, 2.0, 7.0, 20.0, 40.0])
def test_bessel_formula_matches_circle_quadrature(beta):
    # d = 2: growth of cos(lθ) under the mean-field USA on the circle,
    # l·(1/2π)∫ e^{β(cos θ−1)} sin θ sin(lθ) dθ (derivation in gegenbauer.py / the test below)
    for l in _well_conditioned(beta, 2):
        q = growth_rate_quadrature(beta, int(l), 2, "gkpr24")
        assert q == pytest.approx(float(growth_rate(beta, l, 2, "gkpr24")), rel=1e-10, abs=0)


@pytest.mark.parametrize("d", [3, 4, 6])
@pytest.mark.parametrize("beta", [1.0, 9.0, 30.0])
def test_bessel_formula_matches_funk_hecke_quadrature(d, beta):
    for l in _well_conditioned(beta, d)[:8]:
        for conv in CONVENTIONS:
            q = growth_rate_quadrature(beta, int(l), d, conv)
            assert q == pytest.approx(float(growth_rate(beta, l, d, conv)), rel=1e-9, abs=0)


@pytest.mark.parametrize("beta,l", [(3.0, 2), (10.0, 4), (25.0, 7), (10.0, 9)])
def test_growth_rate_from_the_particle_field(beta, l):
    """Independent of the Bessel algebra: linearise the project's own USA field.

    n equally spaced particles (a lattice is a uniform measure integrated by the trapezoid
    rule, exponentially accurate for a periodic analytic integrand) displaced by
    u(θ) = ε sin(lθ). The velocity field of dynamics.velocity (GKPR24 USA) must be λ_l u
    to first order: v(ε) − v(−ε) = 2 λ_l ε sin(lθ) + O(ε³).
    """
    n, eps = 512, 1e-6
    th0 = 2 * np.pi * np.arange(n) / n
    u = np.sin(l * th0)

    def tangential(e):
        th = th0 + e * u
        x = np.stack([np.cos(th), np.sin(th)], 1)
        v = velocity(x, np.ones(n), beta, "usa")
        return x[:, 0] * v[:, 1] - x[:, 1] * v[:, 0]

    rate = (tangential(eps) - tangential(-eps)) / (2 * eps)
    lam = float(growth_rate(beta, l, 2, "gkpr24"))
    assert np.max(np.abs(rate - lam * u)) < 1e-6 * lam


def test_sa_rate_from_the_particle_field():
    """Same with SA: the rate is λ_l / κ₀ (κ₀ = I_0(β) e^{−β} in d = 2, GKPR24 units)."""
    n, eps, beta, l = 512, 1e-6, 8.0, 3
    th0 = 2 * np.pi * np.arange(n) / n
    u = np.sin(l * th0)

    def tangential(e):
        th = th0 + e * u
        x = np.stack([np.cos(th), np.sin(th)], 1)
        v = velocity(x, np.ones(n), beta, "sa")
        return x[:, 0] * v[:, 1] - x[:, 1] * v[:, 0]

    rate = (tangential(eps) - tangential(-eps)) / (2 * eps)
    lam = float(growth_rate(beta, l, 2, "sa"))
    assert np.max(np.abs(rate - lam * u)) < 1e-6 * lam


def test_conventions_relations():
    beta, l, d = 12.0, 3, 3
    g = growth_rate(beta, l, d, "glpr23")
    assert growth_rate(beta, l, d, "gkpr24") == pytest.approx(g * np.exp(-beta), rel=1e-13)
    from scipy.special import gamma, iv

    kappa0 = gamma(d / 2) * (2 / beta) ** ((d - 2) / 2) * iv((d - 2) / 2, beta)
    assert growth_rate(beta, l, d, "sa") == pytest.approx(g / kappa0, rel=1e-12)
    # the closed form with plain Bessel functions where they do not overflow
    closed = l * (l + d - 2) * gamma(d / 2) * (2 / beta) ** ((d - 2) / 2) * iv(l + (d - 2) / 2, beta) / beta
    assert g == pytest.approx(closed, rel=1e-12)


def test_formation_time_formula():
    beta, n = 10.0, 2000
    ls = l_star(beta)
    assert formation_time(beta, n) == pytest.approx(np.log(n) / (2 * growth_rate(beta, ls, 2, "gkpr24")))
    assert formation_time(beta, n, convention="glpr23") == pytest.approx(formation_time(beta, n) * np.exp(-beta))


def test_bad_arguments():
    with pytest.raises(ValueError):
        growth_rate(-1.0, 1)
    with pytest.raises(ValueError):
        growth_rate(1.0, 0)
    with pytest.raises(ValueError):
        growth_rate(1.0, 1, d=1)
    with pytest.raises(ValueError):
        growth_rate(1.0, 1, convention="nope")
