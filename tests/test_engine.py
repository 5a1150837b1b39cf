"""The simulation engine against independent references (GitHub issue 2, items 1, 2, 4, 5, 7).

References used: docs/science.md §1 formulas written as literal loops (conftest), the reduced
two-cluster ODE of docs/science.md §3 integrated by quadrature (``theory``, itself cross-checked
here against the formula exactly as printed), closed forms (cancellation test, energy
rate), a fixed-step RK4 for escape times, and the full (uncollapsed) system.
"""
from __future__ import annotations

import numpy as np
import pytest

from attention_dynamics import initial, simulate
from attention_dynamics.engine import dynamics
from attention_dynamics.theory import twocluster as theory

MODELS = ("usa", "sa")


# --------------------------------------------------------------------------------------
# Vector field (item 4)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("beta", [0.7, 3.0])
def test_velocity_matches_literal_formulas(ref, model, beta):
    rng = np.random.default_rng(40)
    x = rng.standard_normal((7, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(0.5, 3.0, size=7)
    got = dynamics.velocity(x, mass, beta, model)
    want = ref.naive_velocity(x, mass, beta, model)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14 * np.abs(want).max())


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("beta", [1e-12, 1e-3, 0.5, 10.0, 200.0])
def test_velocity_circle_matches_literal_formulas(ref, model, beta):
    """d = 2: the Fourier-mode evaluation is the same field (up to the kernel's truncation at 1e-15)."""
    rng = np.random.default_rng(44)
    th = rng.uniform(0.0, 2 * np.pi, 60)
    x = np.stack([np.cos(th), np.sin(th)], axis=1)
    mass = rng.uniform(0.5, 3.0, size=60)
    got = dynamics.velocity_circle(x, mass, beta, model)
    want = ref.naive_velocity(x, mass, beta, model)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())
    np.testing.assert_allclose(np.einsum("ij,ij->i", got, x), 0.0, atol=1e-16)  # tangent
    # the kernel's Fourier weights are its Fourier coefficients (trapezoid rule is exact here)
    assert dynamics.circle_kernel_modes(beta, relative_to=1).size >= 2  # the l = 1 term is always kept
    w = dynamics.circle_kernel_modes(beta)
    u = 2 * np.pi * np.arange(4096) / 4096
    kernel = np.exp(beta * (np.cos(u) - 1.0))
    np.testing.assert_allclose(w, [np.mean(kernel * np.cos(l * u)) for l in range(w.size)], rtol=0, atol=1e-15)
    from scipy.special import ive

    assert w[-1] >= 1e-15 * w[0] > ive(w.size, beta) or w.size == 1  # truncated at the first weight < 1e-15 w_0


def test_circle_modes_match_direct_sums():
    rng = np.random.default_rng(45)
    th = rng.uniform(0.0, 2 * np.pi, 500)
    mass = rng.uniform(0.5, 2.0, size=500)
    got = dynamics.circle_modes(np.exp(1j * th), mass, 40)
    want = np.exp(1j * np.outer(np.arange(1, 41), th)) @ mass / mass.sum()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        dynamics.velocity_circle(np.ones((3, 3)) / np.sqrt(3), np.ones(3), 1.0, "usa")
    with pytest.raises(ValueError, match="model must be one of"):
        dynamics.velocity_circle(np.array([[1.0, 0.0]]), np.ones(1), 1.0, "SA")


@pytest.mark.parametrize("model", MODELS)
def test_velocity_blocked_path_matches_reference(ref, model):
    # m = 300 points exceeds one cache block (32768 // 300 = 109 rows): the diagonal
    # K_ii = 0 has to be placed correctly in every block.
    rng = np.random.default_rng(41)
    x = rng.standard_normal((300, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(0.5, 2.0, size=300)
    got = dynamics.velocity(x, mass, 2.0, model)
    want = ref.fast_naive_velocity(x, mass, 2.0, model)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("model", MODELS)
def test_velocity_is_tangent(model):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((50, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    v = dynamics.velocity(x, np.ones(50), 20.0, model)
    radial = np.abs(np.einsum("ij,ij->i", x, v))
    assert radial.max() <= 1e-15 * max(1.0, np.abs(v).max())
    assert np.abs(v).max() > 0


@pytest.mark.parametrize("model", MODELS)
def test_attention_weights_match_literal_weights(model):
    rng = np.random.default_rng(43)
    x = rng.standard_normal((6, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(1.0, 4.0, size=6)
    beta = 2.5
    a = dynamics.attention_weights(x, mass, beta, model)
    e = mass[None, :] * np.exp(beta * (x @ x.T))
    want = e / e.sum(axis=1, keepdims=True) if model == "sa" else e * np.exp(-beta) / mass.sum()
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(a, want, rtol=1e-13, atol=0)


def _heavy_light(model, beta=40.0, D=np.pi / 2, seed=44):
    """One point of mass 63 and one of mass 1 at angle D, in a random orientation of R^3
    (so that no coordinate is exactly 0 or 1 and round-off is generic)."""
    q = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))[0]
    xa = q[:, 0]
    xb = np.cos(D) * q[:, 0] + np.sin(D) * q[:, 1]
    return xa, xb


@pytest.mark.parametrize("model", MODELS)
def test_cancellation_collapsed_cluster_drift(model):
    """docs/science.md §5: P_x(W X) loses this drift (56% error); the difference form keeps it."""
    beta, D = 40.0, np.pi / 2
    xa, xb = _heavy_light(model, beta, D)
    v = dynamics.velocity(np.vstack([xa, xb]), np.array([63.0, 1.0]), beta, model)
    k = np.exp(beta * (np.cos(D) - 1.0))
    if model == "usa":
        rate_a, rate_b = 1.0 / 64.0 * k, 63.0 / 64.0 * k
    else:
        rate_a, rate_b = k / (63.0 + k), 63.0 * k / (1.0 + 63.0 * k)
    # unit tangent at xa pointing to xb and vice versa
    ta = (xb - np.cos(D) * xa) / np.sin(D)
    tb = (xa - np.cos(D) * xb) / np.sin(D)
    want_a = rate_a * np.sin(D) * ta
    want_b = rate_b * np.sin(D) * tb
    assert np.linalg.norm(v[0] - want_a) <= 1e-12 * np.linalg.norm(want_a)
    assert np.linalg.norm(v[1] - want_b) <= 1e-12 * np.linalg.norm(want_b)


def test_cancellation_coincident_particles_full_system():
    beta, D = 40.0, np.pi / 2
    xa, xb = _heavy_light("usa", beta, D)
    x = np.vstack([np.tile(xa, (63, 1)), xb])  # 63 coincident unit-mass particles + 1
    # The full system (collapse=False) evaluates the field from explicit differences
    # (exact=True); the weighted-point form would cancel the coincident copies to round-off.
    v = dynamics.velocity(x, np.ones(64), beta, "usa", exact=True)
    want = (1.0 / 64.0) * np.exp(beta * (np.cos(D) - 1.0)) * xb  # P_xa(xb) = xb at 90°
    err = np.linalg.norm(v[:63] - want, axis=1).max()
    assert err <= 1e-12 * np.linalg.norm(want)


def test_energy_matches_literal_double_sum(ref):
    rng = np.random.default_rng(45)
    x = rng.standard_normal((9, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(0.5, 3.0, size=9)
    for beta in (0.5, 4.0):
        assert dynamics.energy(x, mass, beta) == pytest.approx(ref.naive_energy(x, mass, beta), rel=1e-13)


def test_energy_limits_single_point_and_tight_clusters():
    x = np.array([[1.0, 0.0, 0.0]])
    assert dynamics.energy(x, np.array([7.0]), 30.0) == 1.0
    # three tight clusters far apart at large β: Ē = Σ μ_a² up to e^{-β(1−cos D)}
    w = initial.great_circle_centres(3, 3)  # 120° apart
    rng = np.random.default_rng(46)
    xs = np.concatenate([initial.sample_cap(w[q], 1e-14, c, rng) for q, c in enumerate([2, 3, 5])])
    mu = np.array([2, 3, 5]) / 10
    assert dynamics.energy(xs, np.ones(10), 50.0) == pytest.approx(float(mu @ mu), rel=1e-10)


@pytest.mark.parametrize("model", MODELS)
def test_energy_rate_closed_form(model):
    """dĒ/dt = (2β/n²) Σ_i m_i ⟨ẋ_i, Σ_j m_j K_ij x_j⟩, which the field turns into
    (2β/n) Σ m_i |ẋ_i|² (USA) and (2β/n²) Σ m_i Z_i |ẋ_i|² with Z_i = Σ_k m_k K_ik (SA):
    derived from docs/science.md §1 (ẋ_i is the tangent part of Σ_j m_j K_ij x_j scaled by 1/n or
    1/Z_i). Checked by a central difference along the curve normalise(x + h ẋ)."""
    rng = np.random.default_rng(47)
    x = rng.standard_normal((6, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mass = rng.uniform(0.5, 3.0, size=6)
    beta, n = 3.0, mass.sum()
    v = dynamics.velocity(x, mass, beta, model)
    if model == "usa":
        rate = 2 * beta / n * np.sum(mass * np.sum(v * v, axis=1))
    else:
        z = (np.exp(beta * (x @ x.T - 1.0)) * mass[None, :]).sum(axis=1)
        rate = 2 * beta / n**2 * np.sum(mass * z * np.sum(v * v, axis=1))

    def e_at(h):
        y = x + h * v
        return dynamics.energy(y / np.linalg.norm(y, axis=1, keepdims=True), mass, beta)

    h = 1e-4
    fd = (e_at(h) - e_at(-h)) / (2 * h)
    assert rate > 0
    assert fd == pytest.approx(rate, rel=1e-6)


# --------------------------------------------------------------------------------------
# Two point clusters: merge time = quadrature of the reduced ODE (item 1)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("beta", [5.0, 20.0, 50.0, 500.0])
def test_theory_quadrature_matches_science_formula(ref, model, beta):
    """The reference itself: theory's quadrature vs docs/science.md §3's rate as printed."""
    D0 = 0.25 if beta == 500.0 else 1.0
    for n_a, n_b in [(3, 7), (5, 11)]:
        got = theory.two_cluster_merge_time(D0, 0.1, beta, n_a, n_b, model=model)
        want = ref.science_merge_time(D0, 0.1, beta, n_a, n_b, n_a + n_b, model)
        assert got == pytest.approx(want, rel=1e-9)
        D = np.linspace(0.1, D0, 7)
        np.testing.assert_allclose(-theory.two_cluster_gap_rate(D, beta, n_a, n_b, n_a + n_b, model),
                                   ref.science_gap_rate(D, beta, n_a, n_b, n_a + n_b, model), rtol=1e-12)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("beta", [5.0, 20.0, 50.0])
@pytest.mark.parametrize("two_point", [False, True])
def test_two_point_clusters_merge_time(ref, model, d, beta, two_point):
    """The DOP853 stepper (two_point=False: independent of the quadrature) and the exact pair flow
    (engine/twopoint.py: its own Gauss–Legendre quadrature) against theory's QUADPACK quadrature."""
    D0, theta_c = 1.0, 0.1
    x0 = ref.two_points(D0, d, seed=int(beta) + d)
    res = simulate(x0, beta=beta, model=model, masses=[3.0, 7.0], theta_c=theta_c, two_point=two_point)
    want = theory.two_cluster_merge_time(D0, theta_c, beta, 3, 7, model=model)
    assert res.status == "ok" and not res.censored
    assert len(res.events) == 1 and res.stats["n_pair_flows"] == int(two_point)
    ev = res.events.iloc[0]
    assert ev["time"] == pytest.approx(want, rel=2e-10 if two_point is False else 1e-12)
    assert (ev["n_clusters_before"], ev["n_clusters_after"]) == (2, 1)
    assert (ev["mass_a"], ev["mass_b"]) == pytest.approx((0.7, 0.3), rel=1e-12)
    assert ev["angle_at_merge"] == pytest.approx(theta_c, rel=1e-6)
    assert ev["gap_at_open"] == pytest.approx(D0, rel=1e-12)
    assert res.n_clusters_final == 1 and res.mass_final.tolist() == [10.0]


@pytest.mark.parametrize("model", MODELS)
def test_groups_of_particles_equal_weighted_points(ref, model):
    """5 and 11 particles in tiny caps (contracted, then collapsed) merge like two points
    of masses 5 and 11 placed at the groups' weighted mean directions."""
    beta, D, eps = 20.0, 1.0, 1e-9
    rng = np.random.default_rng(50)
    w = initial.great_circle_centres(2, 3, spacing=D)
    data = initial.caps(16, 3, 2, eps, rng, centres=w, masses=[5, 11])
    res = simulate(data.x, beta=beta, model=model)
    ca = ref.weighted_direction(data.x[:5], np.ones(5))
    cb = ref.weighted_direction(data.x[5:], np.ones(11))
    pts = simulate(np.vstack([ca, cb]), beta=beta, model=model, masses=[5.0, 11.0])
    D0 = ref.angle(ca, cb)
    want = theory.two_cluster_merge_time(D0, 0.1, beta, 5, 11, model=model)
    assert len(res.events) == 1
    t = res.first_merge_time
    assert t == pytest.approx(pts.first_merge_time, rel=1e-8)
    assert t == pytest.approx(want, rel=1e-6)
    assert res.events["mass_a"].iloc[0] == pytest.approx(11 / 16)
    # the groups really were collapsed to two points before the merge
    tr = res.trajectory
    assert (tr.loc[tr["time"] < t, "n_points"] == 2).any()


@pytest.mark.parametrize("model", MODELS)
def test_third_far_mass(ref, model):
    """Masses 3 and 7 at angle D0 in the (e1, e2) plane and a mass 5 at e3 (orthogonal to
    both, d = 5): the far mass pulls both points out of the plane equally, which changes
    their angle only at second order (~1e-12 here). USA's rate carries (n_a + n_b)/n with
    n = 15 including the far mass; SA's normalisation changes only by O(e^{-β})."""
    beta, D0 = 20.0, 1.0
    x0 = np.zeros((3, 5))
    x0[0, 0] = 1.0
    x0[1, :2] = np.cos(D0), np.sin(D0)
    x0[2, 2] = 1.0
    res = simulate(x0, beta=beta, model=model, masses=[3.0, 7.0, 5.0])
    ev = res.events.iloc[0]
    assert (ev["n_clusters_before"], ev["n_clusters_after"]) == (3, 2)
    assert (ev["mass_a"], ev["mass_b"]) == pytest.approx((7 / 15, 3 / 15))
    if model == "usa":
        want = theory.two_cluster_merge_time(D0, 0.1, beta, 3, 7, n=15, model="usa")
        wrong = theory.two_cluster_merge_time(D0, 0.1, beta, 3, 7, n=10, model="usa")
        assert abs(ev["time"] / wrong - 1) > 0.1  # the far mass does count in n
    else:
        want = theory.two_cluster_merge_time(D0, 0.1, beta, 3, 7, model="sa")
    assert ev["time"] == pytest.approx(want, rel=1e-6)


# --------------------------------------------------------------------------------------
# Collapse mode vs the full system (item 2)
# --------------------------------------------------------------------------------------

def _triangle_centres(a, g):
    """B, C at ±a around e1 in the (e1, e2) plane, A at angle g from e1 towards e3.

    With equal masses B and C merge first (gap 2a), their merged centre is e1, so the
    second gap is exactly g: both plateaus stay short enough for the full system."""
    return np.array([[np.cos(g), 0.0, np.sin(g)], [np.cos(a), np.sin(a), 0.0], [np.cos(a), -np.sin(a), 0.0]])


_FULL_CASES = [  # (model, beta, a, g): merges at t ≈ 19–490, after every cap has collapsed
    ("usa", 10.0, 0.55, 1.3),
    ("sa", 10.0, 0.55, 1.3),
    ("usa", 15.0, 0.475, 1.1),
    ("sa", 15.0, 0.475, 1.1),
]


@pytest.mark.parametrize("model,beta,a,g", _FULL_CASES)
def test_collapse_mode_matches_full_system(model, beta, a, g):
    """Merge times of the collapsed integration equal the full system's (docs/science.md §5:
    error O(δ²) once clusters are collapsed, δ = 1e-5 here; a pair about to merge is not
    collapsed, so merges during contraction are exact too)."""
    w = _triangle_centres(a, g)
    rng = np.random.default_rng(int(beta) + len(model))
    data = initial.caps(12, 3, 3, 1e-3, rng, centres=w)
    rec = np.concatenate([[0.0], np.logspace(-1, np.log10(3000.0), 60)])
    kw = dict(beta=beta, model=model, t_max=3000.0, record_times=rec)
    coll = simulate(data.x, **kw)
    full = simulate(data.x, collapse=False, **kw)
    assert coll.status == full.status == "ok"
    assert len(coll.events) == len(full.events) == 2, "both merges must happen before t_max"
    np.testing.assert_allclose(coll.merge_times, full.merge_times, rtol=1e-8)
    for col in ("mass_a", "mass_b", "n_clusters_before"):
        np.testing.assert_allclose(coll.events[col], full.events[col], rtol=1e-12)
    # the comparison is not vacuous: the collapse run had reduced every cluster to one point
    # before the second merge (at β = 15 every cap before the first), while the full run never
    # collapsed (at β = 10 the first pair merges at t ≈ 19–57, within the collapse guard, so
    # those two caps are integrated uncollapsed until they merge)
    tr = coll.trajectory
    assert (tr.loc[tr["time"] < coll.merge_times[1], "n_points"] == 2).any()
    if beta == 15.0:
        assert (tr.loc[tr["time"] < coll.merge_times[0], "n_points"] == 3).any()
    assert (full.trajectory["n_points"] == 12).all()
    # energies at common sample times (both defined): collapse moves points by O(δ)
    e1, e2 = coll.trajectory["energy"].to_numpy(), full.trajectory["energy"].to_numpy()
    ok = np.isfinite(e1) & np.isfinite(e2)
    assert ok.sum() > 20
    np.testing.assert_allclose(e1[ok], e2[ok], rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------
# Large β and argument validation (item 5)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_beta_500_two_points_no_overflow(ref, model):
    D0 = 0.25
    with np.errstate(over="raise", invalid="raise"):
        res = simulate(ref.two_points(D0, 3, seed=9), beta=500.0, model=model, masses=[2.0, 5.0])
    want = theory.two_cluster_merge_time(D0, 0.1, 500.0, 2, 5, model=model)
    assert res.status == "ok"
    assert np.isfinite(res.first_merge_time)
    assert res.first_merge_time == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_beta_500_caps_run_finite(model):
    rng = np.random.default_rng(51)
    w = initial.great_circle_centres(3, 3, spacing=0.3)
    data = initial.caps(24, 3, 3, 1e-4, rng, centres=w)
    with np.errstate(over="raise", invalid="raise"):
        res = simulate(data.x, beta=500.0, model=model, cap_centres=w, cap_eps=1e-4, cap_labels=data.labels)
    assert res.status == "ok", res.reason
    assert not res.censored and res.n_clusters_final == 1
    assert len(res.events) == 2 and np.all(np.isfinite(res.merge_times)) and np.all(np.diff(res.merge_times) > 0)
    assert np.isfinite(res.escape_time) and 0 < res.escape_time < res.merge_times[0]
    e = res.trajectory["energy"].to_numpy()
    assert np.all(np.isfinite(e)) and np.all((e > 0) & (e <= 1.0))
    assert np.all(np.isfinite(res.x_final))


_X2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize("kwargs,match", [
    (dict(beta=0.0), "beta"),
    (dict(beta=-1.0), "beta"),
    (dict(beta=float("nan")), "beta"),
    (dict(beta=float("inf")), "beta"),
    (dict(beta="abc"), "beta"),
    (dict(beta=1.0, model="softmax"), "model"),
    (dict(beta=1.0, t_max=0.0), "t_max"),
    (dict(beta=1.0, t_max=-3.0), "t_max"),
    (dict(beta=1.0, t_max=float("nan")), "t_max"),
    (dict(beta=1.0, masses=[1.0, 0.0]), "masses"),
    (dict(beta=1.0, masses=[1.0, -2.0]), "masses"),
    (dict(beta=1.0, masses=[1.0, float("nan")]), "masses"),
    (dict(beta=1.0, masses=[1.0, 1.0, 1.0]), "masses"),
    (dict(beta=1.0, masses=[[1.0, 1.0]]), "masses"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(_X2, **kwargs)


@pytest.mark.parametrize("x0,match", [
    (np.ones((3, 1)), "d >= 2"),
    (np.array([[1.0, 0.0], [0.0, 1.1]]), "unit sphere"),
    (np.array([[1.0, 0.0], [0.5, 0.5]]), "unit sphere"),
    (np.array([[1.0, 0.0], [np.nan, 1.0]]), "NaN"),
    (np.array([[1.0, 0.0], [np.inf, 0.0]]), "NaN or infinite"),
    (np.array([1.0, 0.0]), "2-D"),
    (np.zeros((0, 3)), "n >= 1"),
])
def test_bad_points_raise(x0, match):
    with pytest.raises(ValueError, match=match):
        simulate(x0, beta=1.0)


def test_velocity_unknown_model_raises():
    with pytest.raises(ValueError, match="model"):
        dynamics.velocity(_X2, np.ones(2), 1.0, "softmax")


# --------------------------------------------------------------------------------------
# Censoring semantics
# --------------------------------------------------------------------------------------

def test_censored_means_more_than_one_cluster_left(ref):
    x0 = ref.two_points(0.8, 3)
    full = simulate(x0, beta=10.0, model="usa")
    T = full.first_merge_time
    res = simulate(x0, beta=10.0, model="usa", t_max=T + 0.5)  # merged, not yet within δ
    assert len(res.events) == 1 and res.n_clusters_final == 1
    assert res.censored is False
    assert (res.lifetimes["n_clusters"] > 1).all()


# --------------------------------------------------------------------------------------
# Escape time (item 7)
# --------------------------------------------------------------------------------------

def _escape_setup(model):
    beta, D, eps = 10.0, 1.2, 1e-3
    rng = np.random.default_rng(70 + len(model))
    w = initial.great_circle_centres(2, 3, spacing=D)
    data = initial.caps(6, 3, 2, eps, rng, centres=w)
    caps = dict(cap_centres=w, cap_eps=eps, cap_labels=data.labels)
    return beta, eps, w, data, caps


def _doubled_cap_margin(x, w, labels, eps):
    return float(np.min(np.sum(x * w[labels], axis=1)) - (1.0 - 2.0 * eps))


@pytest.mark.parametrize("model", MODELS)
def test_escape_time_matches_rk4_reference(ref, model):
    beta, eps, w, data, caps = _escape_setup(model)
    want = ref.rk4_escape_time(data.x, np.ones(6), beta, model, w, data.labels, eps, dt=0.05, t_max=500.0)
    full = simulate(data.x, beta=beta, model=model, collapse=False, t_max=500.0, **caps)
    coll = simulate(data.x, beta=beta, model=model, **caps)
    assert np.isfinite(want) and 10.0 < want < full.first_merge_time  # escape well inside the plateau
    assert full.escape_time == pytest.approx(want, rel=1e-7)
    # in collapse mode the caps have already collapsed (points within δ = 1e-5 chordal):
    # the escape is read on the weighted point, O(δ·ρ) off in margin
    assert coll.stats["n_collapses"] > 0
    assert coll.escape_time == pytest.approx(want, rel=1e-6)
    assert not coll.escape_censored


@pytest.mark.parametrize("model", MODELS)
def test_escape_time_is_first_exit_on_trajectory(model):
    """Stop the full system just before / just after the reported escape time: all
    particles are inside their doubled caps before, one is outside after."""
    beta, eps, w, data, caps = _escape_setup(model)
    te = simulate(data.x, beta=beta, model=model, collapse=False, t_max=500.0, **caps).escape_time
    before = simulate(data.x, beta=beta, model=model, collapse=False, t_max=te * (1 - 1e-4), **caps)
    after = simulate(data.x, beta=beta, model=model, collapse=False, t_max=te * (1 + 1e-4), **caps)
    assert before.x_final.shape == (6, 3)  # full mode: particles in their original order
    assert _doubled_cap_margin(before.x_final, w, data.labels, eps) > 0
    assert _doubled_cap_margin(after.x_final, w, data.labels, eps) < 0
    assert np.isnan(before.escape_time) and before.escape_censored
    assert after.escape_time == pytest.approx(te, rel=1e-9)
    # and at every earlier stop no particle had left (coarse scan of the whole run up to te)
    for frac in (0.1, 0.5, 0.9):
        r = simulate(data.x, beta=beta, model=model, collapse=False, t_max=te * frac, **caps)
        assert _doubled_cap_margin(r.x_final, w, data.labels, eps) > 0


@pytest.mark.parametrize("model", MODELS)
def test_escape_time_respects_theorem_bound(model):
    """GKPR24: γ = 1 − α − 8ε − log(2n²/ε)/β > 0 implies T_esc ≥ (ε/n) e^{(1−α)β}."""
    beta, D, eps, n = 12.0, 2.0, 1e-3, 4
    rho = np.arccos(1 - 2 * eps)
    alpha = np.cos(max(D - 2 * rho, 0.0))
    gamma = 1 - alpha - 8 * eps - np.log(2 * n * n / eps) / beta
    bound = eps / n * np.exp((1 - alpha) * beta)
    assert gamma > 0.3
    w = initial.great_circle_centres(2, 3, spacing=D)
    assert initial.cap_separation(w, eps) == pytest.approx(alpha, rel=1e-12)
    assert theory.escape_theorem_gamma(alpha, eps, n, beta) == pytest.approx(gamma, rel=1e-12)
    assert theory.escape_time_lower_bound(alpha, eps, n, beta) == pytest.approx(bound, rel=1e-12)
    data = initial.caps(n, 3, 2, eps, np.random.default_rng(72), centres=w)
    res = simulate(data.x, beta=beta, model=model, cap_centres=w, cap_eps=eps, cap_labels=data.labels)
    assert np.isfinite(res.escape_time)
    assert res.escape_time >= bound
    assert res.escape_time <= res.first_merge_time


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_full_system_coincident_copies_merge_like_weighted_points(model):
    """Groups of coincident copies in the full system (collapse=False) must merge at the
    time of the two weighted points: their O(1) mutual terms are exactly zero, not
    cancelled to round-off (which would erase the e^{-β(1−cos D)} drift at β = 40)."""
    beta, D = 40.0, 1.2
    xa, xb = np.array([1.0, 0.0, 0.0]), np.array([np.cos(D), np.sin(D), 0.0])
    x_full = np.vstack([np.tile(xa, (3, 1)), np.tile(xb, (5, 1))])
    want = theory.two_cluster_merge_time(D, 0.1, beta, 3, 5, model=model)
    full = simulate(x_full, beta=beta, model=model, collapse=False, t_max=1e3 * want)
    assert full.status == "ok" and len(full.events) == 1
    assert full.first_merge_time == pytest.approx(want, rel=1e-6)
