"""Mean-field PDE solver on S¹ and S² (attention_dynamics.theory.meanfield*).

Every check compares the solver with something computed another way: growth rates with the
Bessel closed form of attention_dynamics.theory.gegenbauer; right-hand sides with direct O(N²)
quadrature of the velocity field and its divergence using the literal kernel e^{β(⟨x,y⟩−1)}
(no Fourier/Bessel coefficients); the S² operator with ducc0's rotation of coefficients; the
Funk–Hecke eigenvalues with scipy quadrature; the PDE with the particle system
(attention_dynamics.engine.dynamics.velocity_circle) as n grows.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

import ducc0
from attention_dynamics.reproductions.meanfield import count_arcs_above as count_peaks
from attention_dynamics.theory.gegenbauer import growth_rate, l_star
from attention_dynamics.theory.meanfield import make_discretisation, measured_growth_rate, solve_meanfield
from attention_dynamics.theory.meanfield_circle import (
    CircleSpectral,
    circle_cdf,
    circle_density,
    circle_kernel_coefficients,
    density_from_function_circle,
    empirical_modes_circle,
    hminus_distance_circle,
    kde_circle,
    sample_circle,
    uniform_plus_noise_circle,
    w1_distance_circle,
)
from attention_dynamics.theory.meanfield_sphere import (
    SphereSpectral,
    alm_degrees,
    alm_index,
    density_from_function_sphere,
    kde_sphere,
    sphere_density,
    sphere_kernel_eigenvalues,
    uniform_plus_noise_sphere,
)

CASES = [("usa", "gkpr24"), ("usa", "glpr23"), ("sa", "gkpr24")]


def _rate_convention(model, convention):
    return "sa" if model == "sa" else convention


# ----------------------------------------------------------------------------------------------
# Linear growth rates measured from the solver
# ----------------------------------------------------------------------------------------------

def _growth_rate_from_solver(d, beta, l, model, convention, eps=1e-7):
    """Start from 1 + ε·(degree-l mode), integrate to t = 1/λ_l, return ln(a(T)/a(0))/T and λ_l.

    The nonlinear correction to the mode-l amplitude is O(ε) relative (d = 3, even l: the
    Gaunt coefficient (l, l, l) ≠ 0) or O(ε²) (d = 2, odd l in d = 3).
    """
    lam = float(growth_rate(beta, l, d, _rate_convention(model, convention)))
    if d == 2:
        c = np.zeros(l + 1, dtype=np.complex128)
        c[0], c[l] = 1.0, eps * (0.6 - 0.8j)
        l_max = None
    else:
        l_max = 2 * l + 2
        c = np.zeros((l + 1) * (l + 2) // 2, dtype=np.complex128)
        c[0] = np.sqrt(4 * np.pi)
        c[alm_index(l, 0, l)] = eps
        c[alm_index(l, 1, l)] = eps * (0.3 + 0.4j)
        c[alm_index(l, l, l)] += eps * (-0.5 + 0.2j)
    r = solve_meanfield(c, beta, 1.0 / lam, d=d, model=model, convention=convention, l_max=l_max,
                        rtol=1e-13, atol=1e-20, t_eval=[], max_tail=None)
    assert r.status == "completed"
    a = r.mode_amplitudes[:, l]
    return np.log(a[-1] / a[0]) / r.step_times[-1], lam


@pytest.mark.parametrize("beta", [1.0, 5.0, 12.0, 30.0])
@pytest.mark.parametrize("d,tol", [(2, 1e-6), (3, 1e-4)])
def test_growth_rates_from_solver(beta, d, tol):
    ls_ = int(l_star(beta, d))
    for model, convention in CASES:
        for l in sorted({1, ls_, ls_ + 1, 2 * ls_}):
            meas, lam = _growth_rate_from_solver(d, beta, l, model, convention)
            assert abs(meas / lam - 1) < tol, (d, beta, l, model, convention, meas, lam)


def test_measured_growth_rate_helper():
    beta, l = 5.0, 3
    c = np.zeros(l + 1, dtype=np.complex128)
    c[0], c[l] = 1.0, 1e-8
    lam = float(growth_rate(beta, l, 2, "gkpr24"))
    r = solve_meanfield(c, beta, 2.0 / lam, rtol=1e-13, atol=1e-21, t_eval=[], max_tail=None)
    assert abs(measured_growth_rate(r, l) / lam - 1) < 1e-8


# ----------------------------------------------------------------------------------------------
# Kernel coefficients (Fourier / Funk–Hecke) against quadrature
# ----------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("beta", [0.5, 5.0, 30.0])
def test_circle_kernel_coefficients_by_quadrature(beta):
    w = circle_kernel_coefficients(beta, 12)
    for l in range(13):
        q, _ = integrate.quad(lambda u: np.exp(beta * (np.cos(u) - 1)) * np.cos(l * u), 0, np.pi,
                              epsabs=1e-15, epsrel=1e-13, limit=200)
        assert abs(q / np.pi - w[l]) < 1e-12 * w[0] + 1e-10 * w[l]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("beta", [0.5, 5.0, 30.0])
def test_funk_hecke_eigenvalues_by_quadrature(beta):
    """μ_l = (1/2)∫_{−1}^{1} e^{β(t−1)} P_l(t) dt = e^{−β}√(π/(2β)) I_{l+1/2}(β)."""
    mu = sphere_kernel_eigenvalues(beta, 12)
    for l in range(13):
        q, _ = integrate.quad(lambda t: np.exp(beta * (t - 1)) * special.eval_legendre(l, t), -1, 1,
                              epsabs=1e-16, epsrel=1e-13, limit=200)
        assert abs(q / 2 - mu[l]) < 1e-12 * mu[0] + 1e-10 * mu[l]
    # the two closed forms agree
    ref = np.exp(-beta) * np.sqrt(np.pi / (2 * beta)) * special.iv(np.arange(13) + 0.5, beta)
    np.testing.assert_allclose(mu, ref, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Right-hand sides against direct quadrature of the velocity field
# ----------------------------------------------------------------------------------------------

def _circle_test_density(theta):
    """An entire (non-band-limited) positive density and its derivative, not normalised."""
    f = np.exp(0.7 * np.cos(theta - 0.3) + 0.4 * np.sin(2 * theta) + 0.2 * np.cos(5 * theta))
    df = f * (-0.7 * np.sin(theta - 0.3) + 0.8 * np.cos(2 * theta) - 1.0 * np.sin(5 * theta))
    return f, df


def _circle_direct_rhs(beta, model, convention, n_quad=512):
    """−∂_θ(ρ v) at the grid points θ_i = 2πi/N by O(N²) trapezoidal sums with the literal kernel."""
    th = 2 * np.pi * np.arange(n_quad) / n_quad
    f, df = _circle_test_density(th)
    z = f.mean()
    rho, drho = f / z, df / z
    u = th[:, None] - th[None, :]  # θ_i − φ_j
    k = np.exp(beta * (np.cos(u) - 1))
    g = k @ rho / n_quad
    dg = (-beta * np.sin(u) * k) @ rho / n_quad
    ddg = ((beta**2 * np.sin(u) ** 2 - beta * np.cos(u)) * k) @ rho / n_quad
    if model == "usa":
        s = np.exp(beta) if convention == "glpr23" else 1.0
        v, dv = s * dg / beta, s * ddg / beta
    else:
        v, dv = dg / (beta * g), (ddg * g - dg**2) / (beta * g**2)
    return th, -(drho * v + rho * dv), (k @ rho / n_quad) @ rho / n_quad


@pytest.mark.parametrize("beta", [1.0, 5.0, 30.0])
@pytest.mark.parametrize("model,convention", CASES)
def test_circle_rhs_against_direct_quadrature(beta, model, convention):
    th, ref, energy_ref = _circle_direct_rhs(beta, model, convention)
    disc = CircleSpectral(beta, 160, model, convention)
    c = density_from_function_circle(lambda t: _circle_test_density(t)[0], 160)
    rhs = circle_density(disc.rhs_coefficients(c), th)
    scale = np.abs(ref).max()
    assert np.abs(rhs - ref).max() < 1e-12 * scale, np.abs(rhs - ref).max() / scale
    assert abs(disc.energy(c) - energy_ref) < 1e-13
    assert abs(disc.mass(c) - 1) < 1e-15


def _sphere_test_density(x):
    """A smooth positive function on S² (rows of unit vectors) and its tangential gradient."""
    a = np.array([0.3, -0.5, 0.8])
    b = np.array([[0.2, 0.5, 0.0], [0.5, -0.3, 0.1], [0.0, 0.1, 0.4]])
    f = np.exp(x @ a + np.einsum("...i,ij,...j->...", x, b, x))
    grad = f[..., None] * (a + 2 * x @ b)
    grad = grad - np.sum(grad * x, axis=-1, keepdims=True) * x
    return f, grad


def _sphere_direct_rhs(x, beta, model, convention, n_quad=96):
    """−div_S(ρ X) at points x by direct GL quadrature with the literal kernel e^{β(⟨x,y⟩−1)}:
    ∇_S G = β ∫ K P_x(y) ρ dσ, Δ_S G = ∫ K [β²(1 − t²) − 2βt] ρ dσ (t = ⟨x,y⟩)."""
    xg, wg = np.polynomial.legendre.leggauss(n_quad)
    nphi = 2 * n_quad
    phi = 2 * np.pi * np.arange(nphi) / nphi
    st = np.sqrt(1 - xg**2)
    y = np.stack([np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)), np.outer(xg, np.ones(nphi))],
                 axis=-1).reshape(-1, 3)
    w = np.repeat(wg / (2 * nphi), nphi)  # σ-weights (sum 1)
    fy, _ = _sphere_test_density(y)
    z = w @ fy
    rho_y = fy / z
    fx, gx = _sphere_test_density(x)
    rho_x, grad_rho = fx / z, gx / z
    t = x @ y.T
    k = np.exp(beta * (t - 1)) * (w * rho_y)[None, :]
    g = k.sum(axis=1)
    a = k @ y
    grad_g = beta * (a - np.sum(a * x, axis=1, keepdims=True) * x)
    lap_g = (k * (beta**2 * (1 - t**2) - 2 * beta * t)).sum(axis=1)
    if model == "usa":
        s = np.exp(beta) if convention == "glpr23" else 1.0
        vel, div = s * grad_g / beta, s * lap_g / beta
    else:
        vel = grad_g / (beta * g[:, None])
        div = lap_g / (beta * g) - np.sum(grad_g**2, axis=1) / (beta * g**2)
    energy = w @ (np.exp(beta * (y @ y.T - 1)) @ (w * rho_y) * rho_y) if y.shape[0] <= 4000 else None
    return -(np.sum(grad_rho * vel, axis=1) + rho_x * div), energy


@pytest.mark.parametrize("beta", [1.0, 5.0, 20.0])
@pytest.mark.parametrize("model,convention", CASES)
def test_sphere_rhs_against_direct_quadrature(beta, model, convention):
    L = 40
    disc = SphereSpectral(beta, L, model, convention)
    a = density_from_function_sphere(lambda x: _sphere_test_density(x)[0], L)
    rhs_grid = disc.to_grid(disc.rhs_coefficients(a))
    rng = np.random.default_rng(1)
    it = rng.integers(0, disc.n_theta, 150)
    ip = rng.integers(0, disc.n_phi, 150)
    th, ph = disc.theta[it], disc.phi[ip]
    x = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=1)
    ref, _ = _sphere_direct_rhs(x, beta, model, convention)
    got = rhs_grid[it, ip]
    scale = np.abs(ref).max()
    assert np.abs(got - ref).max() < 1e-11 * scale, np.abs(got - ref).max() / scale
    assert abs(disc.mass(a) - 1) < 1e-14


def test_sphere_energy_against_direct_quadrature():
    beta, L = 5.0, 40
    disc = SphereSpectral(beta, L)
    a = density_from_function_sphere(lambda x: _sphere_test_density(x)[0], L)
    _, energy = _sphere_direct_rhs(np.array([[0.0, 0.0, 1.0]]), beta, "usa", "gkpr24", n_quad=40)
    assert abs(disc.energy(a) - energy) < 1e-12


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_sphere_rotation_equivariance(model):
    """RHS(R·ρ) = R·RHS(ρ) with R applied to the coefficients by ducc0.sht.rotate_alm."""
    beta, L = 8.0, 36
    disc = SphereSpectral(beta, L, model)
    rng = np.random.default_rng(3)
    a = uniform_plus_noise_sphere(0.15, 8, rng)
    a = disc.coefficients_from(a)
    angles = (0.7, 1.1, -0.4)
    lhs = disc.rhs_coefficients(ducc0.sht.rotate_alm(a, L, *angles))
    rhs = ducc0.sht.rotate_alm(disc.rhs_coefficients(a), L, *angles)
    assert np.abs(lhs - rhs).max() < 1e-12 * np.abs(rhs).max()


def test_sphere_gradient_convention():
    """spin-1 synthesis of √(l(l+1)) f_lm is (∂_ϑ f, ∂_φ f / sin ϑ): check on f = x₁ x₃ + x₂."""
    L = 4
    disc = SphereSpectral(5.0, L)
    f = density_from_function_sphere(lambda x: 2.0 + x[..., 0] * x[..., 2] + x[..., 1], L)
    th, ph = np.meshgrid(disc.theta, disc.phi, indexing="ij")
    # f/∫f with ∫f dσ = 2
    dth = (np.cos(2 * th) * np.cos(ph) + np.cos(th) * np.sin(ph)) / 2
    dph = (-np.cos(th) * np.sin(ph) + np.cos(ph)) / 2
    g = disc.gradient_grid(f)
    assert np.abs(g[0] - dth).max() < 1e-13 and np.abs(g[1] - dph).max() < 1e-13


# ----------------------------------------------------------------------------------------------
# Nonlinear runs: mass, energy, positivity
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["usa", "sa"])
def test_circle_nonlinear_invariants(model):
    c = uniform_plus_noise_circle(0.05, 32, np.random.default_rng(7))
    t_max = 0.3 if model == "usa" else 8.0
    r = solve_meanfield(c, 5.0, t_max, d=2, model=model, convention="glpr23", l_max=256,
                        t_eval=np.linspace(0, t_max, 10))
    assert r.final_time > 0.5 * t_max
    assert r.mass_drift < 1e-14
    # non-decreasing energy over every accepted step (up to round-off of E ≈ 0.2)
    assert r.energy_max_decrease < 1e-15
    assert r.energy[-1] > 1.1 * r.energy[0]
    assert r.min_density.min() > 0
    assert r.density.shape == (r.times.size, r.grid["theta"].size)


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_sphere_nonlinear_invariants(model):
    beta = 5.0
    a = uniform_plus_noise_sphere(0.02, 4, np.random.default_rng(2))
    lam = float(growth_rate(beta, int(l_star(beta, 3)), 3, "sa" if model == "sa" else "gkpr24"))
    r = solve_meanfield(a, beta, 3.0 / lam, d=3, model=model, l_max=32, t_eval=np.linspace(0, 3 / lam, 4),
                        max_tail=1e-3)
    assert r.status == "completed"
    assert r.mode_amplitudes[-1, 3] > 10 * r.mode_amplitudes[0, 3]  # nonlinear: l = 3 grew from 0.014 to 0.27
    assert r.mass_drift < 1e-13
    assert r.energy_max_decrease < 1e-15
    assert r.energy[-1] > r.energy[0]
    assert r.min_density.min() > 0
    assert r.density.shape == (4, r.grid["theta"].size, r.grid["phi"].size)
    assert r.mode_amplitudes.shape == (r.n_steps + 1, 33)


def test_unresolved_run_stops():
    c = uniform_plus_noise_circle(0.01, 32, np.random.default_rng(0))
    r = solve_meanfield(c, 5.0, 5.0, d=2, convention="glpr23", l_max=64, max_tail=1e-6)
    assert r.status == "unresolved" and r.final_time < 5.0 and r.tail[-1] > 1e-6 >= r.tail[-2]
    disc = make_discretisation(2, 5.0, 64, "usa", "glpr23")
    np.testing.assert_allclose(disc.mode_amplitudes(r.final_coefficients), r.mode_amplitudes[-1], rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------
# BPA24 Fig. 4: uniform + white noise, σ = 0.01, β = 5, d = 2 → 3 peaks (l*(5) = 3)
# ----------------------------------------------------------------------------------------------

def test_count_peaks_rule():
    """Connected arcs of {ρ > 2} (attention_dynamics.reproductions.meanfield.count_arcs_above)."""
    th = np.linspace(0, 2 * np.pi, 1000, endpoint=False)
    assert count_peaks(1 + 3 * np.cos(3 * th)) == 3
    assert count_peaks(1 + 3 * np.cos(3 * th - 0.01)) == 3  # a peak across θ = 0
    assert count_peaks(np.ones_like(th)) == 0
    assert count_peaks(np.full(th.shape, 3.0)) == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bpa24_fig4_three_peaks(seed):
    """White noise of std 0.01 on a 64-point grid; L = 512; GLPR23 time (BPA24's); run until the
    spectral tail passes 1e-6 (clusters outrun the resolution), then count peaks above 2."""
    c = uniform_plus_noise_circle(0.01, 64, np.random.default_rng(seed))
    r = solve_meanfield(c, 5.0, 3.0, d=2, convention="glpr23", l_max=512, t_eval=np.linspace(0, 3.0, 301))
    assert r.status == "unresolved"
    rho = circle_density(r.final_coefficients, np.linspace(0, 2 * np.pi, 4096, endpoint=False))
    assert rho.max() > 4
    assert count_peaks(rho) == 3 == l_star(5.0, 2)
    assert r.min_density.min() > 0 and r.mass_drift < 1e-14 and r.energy_max_decrease < 1e-15


# ----------------------------------------------------------------------------------------------
# Helpers: densities, sampling, distances
# ----------------------------------------------------------------------------------------------

def test_circle_cdf_and_density():
    c = density_from_function_circle(lambda t: 1 + 0.5 * np.cos(3 * t) + 0.2 * np.sin(2 * t), 8)
    th = np.linspace(0, 2 * np.pi, 7)
    for t in th:
        q, _ = integrate.quad(lambda s: circle_density(c, np.array([s]))[0] / (2 * np.pi), 0, t)
        assert abs(circle_cdf(c, np.array([t]))[0] - q) < 1e-13
    np.testing.assert_allclose(circle_density(c, th), 1 + 0.5 * np.cos(3 * th) + 0.2 * np.sin(2 * th), atol=1e-14)


def test_sample_circle_matches_density():
    c = density_from_function_circle(lambda t: 1 + 0.5 * np.cos(3 * t), 4)
    th = sample_circle(c, 200_000, np.random.default_rng(0))
    z = empirical_modes_circle(th, 4)
    # E ẑ_3 = ρ̂_3 conj… : μ̂_l = mean e^{−ilθ} estimates ρ̂_l = 0.25 (ρ = 1 + 0.5 cos 3θ)
    assert abs(z[3] - 0.25) < 5 / np.sqrt(2e5) and abs(z[1]) < 5 / np.sqrt(2e5)


def test_kde_circle_and_sphere_have_mass_one():
    rng = np.random.default_rng(0)
    c = kde_circle(rng.uniform(0, 2 * np.pi, 100), 30, 50.0)
    assert abs(c[0] - 1) < 1e-15
    x = rng.standard_normal((100, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = kde_sphere(x, 20, 50.0)
    assert abs(a[0].real / np.sqrt(4 * np.pi) - 1) < 1e-13
    # the vMF KDE is positive and peaks near the particles
    vals = sphere_density(a, 20, x)
    assert np.all(vals > 1)


def test_hminus_distance_against_fourier_sum_and_direct_kernel_sum():
    """The O(n log n) closed form equals (i) the Fourier series Σ_{|l|≤Λ}(1+l²)^{-1}|μ̂_l − ρ̂_l|² up to
    its tail (≈ 2/(Λn) in expectation: E|μ̂_l|² = 1/n for l beyond ρ's band) and (ii) the O(n²) double
    sum with k(u) = π cosh(π − u)/sinh π (u = θ_j − θ_i mod 2π) — which checks the sorting and
    prefix-sum evaluation."""
    rng = np.random.default_rng(1)
    n = 300
    th = rng.uniform(0, 2 * np.pi, n)
    c = density_from_function_circle(lambda t: 1 + 0.5 * np.cos(3 * t) + 0.2 * np.sin(2 * t), 6)
    got = hminus_distance_circle(th, c) ** 2
    lam = 50_000
    mu = empirical_modes_circle(th, lam)
    rc = np.zeros(lam + 1, complex)
    rc[:7] = c
    kl = 1 / (1 + np.arange(lam + 1) ** 2.0)
    trunc = 2 * kl[1:] @ np.abs(mu[1:] - rc[1:]) ** 2
    tail = 2.0 / (lam * n)
    assert abs(got - trunc) < 3 * tail and abs(got - trunc) < 1e-4 * got
    u = np.mod(th[None, :] - th[:, None], 2 * np.pi)
    mm = np.mean(np.pi * np.cosh(np.pi - u) / np.sinh(np.pi))
    kl6 = kl[:7]
    mr = (kl6[0] + 2 * kl6[1:] @ (mu[1:7] * np.conj(c[1:])).real)
    rr = (kl6[0] + 2 * kl6[1:] @ np.abs(c[1:]) ** 2)
    assert abs(got - (mm - 2 * mr + rr)) < 1e-13


def test_w1_circle_known_values():
    uniform = np.array([1.0 + 0j])
    assert abs(w1_distance_circle([0.3], uniform) - np.pi / 2) < 1e-8  # Dirac vs uniform: ∫|x|dx/2π
    assert abs(w1_distance_circle([0.0, np.pi], uniform) - np.pi / 4) < 1e-8
    th = np.random.default_rng(0).uniform(0, 2 * np.pi, 20000)
    assert w1_distance_circle(th, uniform) < 3 / np.sqrt(th.size)


# ----------------------------------------------------------------------------------------------
# Particles converge to the PDE (d = 2)
# ----------------------------------------------------------------------------------------------

def smooth_initial_density(l_max: int = 8) -> np.ndarray:
    """ρ₀(θ) = 1 + 0.2 cos 3θ + 0.1 sin 2θ (coefficients ρ̂_0..ρ̂_8)."""
    return density_from_function_circle(lambda t: 1 + 0.2 * np.cos(3 * t) + 0.1 * np.sin(2 * t), l_max)


def particle_angles(theta0, beta, times, rtol=1e-10, atol=1e-12):
    """USA particle system (GKPR24 time) through dynamics.velocity_circle, DOP853, in angles."""
    from attention_dynamics.engine.dynamics import velocity_circle

    mass = np.ones(theta0.size)

    def fun(t, th):
        x = np.stack([np.cos(th), np.sin(th)], axis=1)
        v = velocity_circle(x, mass, beta, "usa")
        return -v[:, 0] * x[:, 1] + v[:, 1] * x[:, 0]

    sol = integrate.solve_ivp(fun, (0.0, times[-1]), theta0, method="DOP853", t_eval=times, rtol=rtol, atol=atol)
    assert sol.success
    return sol.y.T


def test_particles_converge_to_pde():
    beta, times = 5.0, np.array([0.0, 6.0, 12.0])  # λ₃ t = 0, 0.75, 1.5: max ρ from 1.3 to 3.4
    c0 = smooth_initial_density()
    pde = solve_meanfield(c0, beta, times[-1], d=2, l_max=200, t_eval=times, rtol=1e-11, atol=1e-14)
    assert pde.status == "completed"
    dist = {}
    for n in (1000, 10000):
        dist[n] = []
        for seed in range(3):
            th0 = sample_circle(c0, n, np.random.default_rng(seed))
            th = particle_angles(th0, beta, times, rtol=1e-8, atol=1e-10)
            dist[n].append([hminus_distance_circle(th[k], pde.coefficients[k]) for k in range(times.size)])
    d1, d2 = np.mean(dist[1000], axis=0), np.mean(dist[10000], axis=0)
    slope = np.log(d2 / d1) / np.log(10)
    print("H^-1 distances n=1e3:", d1, "n=1e4:", d2, "slopes:", slope)
    assert np.all((slope > -0.75) & (slope < -0.3)), slope


@pytest.mark.slow
def test_particles_converge_to_pde_rate_with_ci():
    """n ∈ {1e3, 1e4, 1e5}, 8 seeds, times 0–15 (max ρ up to 6): the exponent b of ‖μ_n − ρ‖_{H^{-1}} ∝ n^b,
    fitted to the per-run mean of ln D over the times, has a 95 % interval containing −1/2 and |b + ½| < 0.08
    (measured with 16 seeds: b = −0.501 [−0.543, −0.460], benchmarks/meanfield_convergence.py)."""
    from scipy import stats

    beta, times = 5.0, np.array([0.0, 3.0, 6.0, 9.0, 12.0, 15.0])
    c0 = smooth_initial_density()
    pde = solve_meanfield(c0, beta, times[-1], d=2, l_max=400, t_eval=times, rtol=1e-12, atol=1e-15)
    assert pde.status == "completed"
    ns, ys = [], []
    for n in (1000, 10000, 100000):
        for seed in range(8):
            th = particle_angles(sample_circle(c0, n, np.random.default_rng([n, seed])), beta, times)
            ys.append(np.mean([np.log(hminus_distance_circle(th[k], pde.coefficients[k])) for k in range(times.size)]))
            ns.append(n)
    fit = stats.linregress(np.log(ns), ys)
    q = stats.t.ppf(0.975, len(ns) - 2)
    assert fit.slope - q * fit.stderr < -0.5 < fit.slope + q * fit.stderr, fit
    assert abs(fit.slope + 0.5) < 0.08, fit
