"""Invariants of the flow that the engine must respect (GitHub issue 2, item 3).

* Ē is non-decreasing (docs/science.md §1: USA is a gradient ascent, SA one in another metric);
  plateaus sit at Σ μ_a², each merge raising Ē by 2 μ_a μ_b (docs/science.md §4);
* points stay on the sphere;
* coincident particles stay coincident (weighted form = particle form, docs/science.md §1);
* rotation and permutation equivariance.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from attention_dynamics import initial, simulate
from attention_dynamics.theory import twocluster as theory

MODELS = ("usa", "sa")
U = np.finfo(float).eps / 2  # unit round-off


def _triangle_caps(model, beta, seed, n=12, eps=1e-3):
    """Three caps: B, C at ±0.55 rad around e1, A at 1.3 rad towards e3 (both merges by t ≈ 200)."""
    a, g = 0.55, 1.3
    w = np.array([[np.cos(g), 0.0, np.sin(g)], [np.cos(a), np.sin(a), 0.0], [np.cos(a), -np.sin(a), 0.0]])
    data = initial.caps(n, 3, 3, eps, np.random.default_rng(seed), centres=w)
    return w, data


_RUNS: dict = {}


def _run(kind, model, collapse):
    """Cached runs shared by the energy and norm tests (each is computed once)."""
    key = (kind, model, collapse)
    if key not in _RUNS:
        if kind == "triangle":
            w, data = _triangle_caps(model, 10.0, seed=3)
            rec = np.concatenate([[0.0], np.logspace(-2, np.log10(2000.0), 400)])
            _RUNS[key] = simulate(data.x, beta=10.0, model=model, collapse=collapse, t_max=2000.0,
                                  record_times=rec)
        else:  # four caps on a circle in d = 2 at β = 30, collapse mode, very dense log samples
            w = initial.great_circle_centres(4, 2, spacing=1.0)
            data = initial.caps(32, 2, 4, 1e-3, np.random.default_rng(4), centres=w, masses=[4, 6, 10, 12])
            rec = np.concatenate([[0.0], np.logspace(-2, 20, 2000)])
            _RUNS[key] = simulate(data.x, beta=30.0, model=model, record_times=rec)
    return _RUNS[key]


_ENERGY_CASES = [("triangle", m, c) for m in MODELS for c in (True, False)] + [("circle", m, True) for m in MODELS]


@pytest.mark.parametrize("kind,model,collapse", _ENERGY_CASES)
def test_energy_non_decreasing(kind, model, collapse):
    """Ē(t_{k+1}) ≥ Ē(t_k) − tol_k with a round-off-only tolerance

        tol_k = 8 (m² + 2β) u Ē_k,

    m the number of points carried at that sample, u the unit round-off: Ē is a sum of m²
    terms (summation error ≤ m² u Ē) and each term e^{β(⟨x_i,x_j⟩−1)} inherits a relative
    error ≤ β |δ⟨x_i,x_j⟩| ≤ 2βu from the rounding of the (renormalised) positions; the
    factor 8 covers the exp and the normalisations. Integrator error is *not* tolerated:
    a decrease beyond this is an integrator bug (docs/science.md §1)."""
    res = _run(kind, model, collapse)
    assert res.status == "ok"
    tr = res.trajectory
    e = tr["energy"].to_numpy()
    m = tr["n_points"].to_numpy()
    beta = 30.0 if kind == "circle" else 10.0
    ok = np.isfinite(e)
    assert ok.sum() > 100
    e, m = e[ok], m[ok]
    tol = 8.0 * (m[:-1] ** 2 + 2 * beta) * U * e[:-1]
    drop = e[:-1] - e[1:]
    assert np.all(drop <= tol), f"energy decreased by {drop.max():.3g} (tolerance {tol[np.argmax(drop)]:.3g})"
    assert e[0] < 0.5 and e[-1] > 1.0 - 1e-8  # it did climb the whole staircase
    if collapse:  # samples on both sides of a collapse were compared, too
        assert np.any(np.diff(m) < 0)


@pytest.mark.parametrize("model", MODELS)
def test_energy_staircase_heights(model):
    """docs/science.md §4: plateau heights Σ μ_a², each merge adds 2 μ_a μ_b; Ē sits on the plateau
    value in mid-plateau (inter-cluster terms ≤ e^{-30(1 − cos 1)} ≈ 1e-6 here)."""
    res = _run("circle", model, True)
    lt, ev = res.lifetimes, res.events
    mu0 = np.array([4, 6, 10, 12]) / 32
    assert lt["sum_mass_sq"].iloc[0] == pytest.approx(float(mu0 @ mu0), rel=1e-12)
    assert len(ev) == 3
    steps = np.diff(np.append(lt["sum_mass_sq"].to_numpy(), 1.0))
    np.testing.assert_allclose(steps, 2 * ev["mass_a"] * ev["mass_b"], rtol=1e-12)
    tr = res.trajectory
    for _, p in lt.iterrows():
        lo, hi = p["t_open"] + 100.0, p["t_open"] + 0.5 * p["lifetime"]
        mid = tr[(tr["time"] > lo) & (tr["time"] < hi)]
        assert len(mid) > 0
        np.testing.assert_allclose(mid["energy"], p["sum_mass_sq"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind,model,collapse", _ENERGY_CASES)
def test_points_stay_on_sphere(kind, model, collapse):
    res = _run(kind, model, collapse)
    assert res.stats["n_steps"] > 0
    assert res.stats["max_norm_error"] < 1e-8
    np.testing.assert_allclose(np.linalg.norm(res.x_final, axis=1), 1.0, rtol=0, atol=1e-14)


def _antipodal_reference(u0, theta_c, beta, c):
    """USA merge time from D0 = π − u0 down to θ_c, for Ḋ = −c e^{β(cos D − 1)} sin D.

    Independent of ``theory``: [θ_c, π − 0.5] by quad in D, [π − 0.5, π − u0] by quad in
    s = ln(π − D), where the integrand u/(c e^{−β(1+cos u)} sin u) is smooth."""
    r = lambda D: c * np.exp(beta * (np.cos(D) - 1.0)) * np.sin(D)  # noqa: E731
    p1, _ = integrate.quad(lambda D: 1.0 / r(D), theta_c, np.pi - 0.5, epsabs=0, epsrel=1e-12, limit=500)

    def g(s):
        u = np.exp(s)
        return u / (c * np.exp(-beta * (1.0 + np.cos(u))) * np.sin(u))

    p2, _ = integrate.quad(g, np.log(u0), np.log(0.5), epsabs=0, epsrel=1e-12, limit=500)
    return p1 + p2




def test_norm_stays_small_on_near_antipodal_plateau():
    u0 = 1e-6
    x0 = np.array([[1.0, 0.0, 0.0], [np.cos(np.pi - u0), np.sin(np.pi - u0), 0.0]])
    res = simulate(x0, beta=5.0, model="usa", masses=[4.0, 4.0])
    assert res.stats["max_norm_error"] < 1e-8


def test_near_antipodal_merge_time_matches_quadrature():
    u0, beta = 1e-6, 5.0
    x0 = np.array([[1.0, 0.0, 0.0], [np.cos(np.pi - u0), np.sin(np.pi - u0), 0.0]])
    want = _antipodal_reference(u0, 0.1, beta, c=1.0)
    assert want == pytest.approx(theory.two_cluster_merge_time(np.pi - u0, 0.1, beta, 4, 4), rel=1e-8)
    res = simulate(x0, beta=beta, model="usa", masses=[4.0, 4.0])
    assert res.first_merge_time == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_coincident_particles_stay_coincident_full_system(model):
    """Duplicate particle 2 (full system, no collapse): the two copies stay equal to
    round-off at every stop of the run, and the run equals the one where the duplicate
    is replaced by a single particle of mass 2 (docs/science.md §1, weighted form)."""
    w, data = _triangle_caps(model, 10.0, seed=5, n=9)
    x = np.vstack([data.x, data.x[2]])
    kw = dict(beta=10.0, model=model, collapse=False)
    whole = simulate(x, t_max=2000.0, **kw)
    assert len(whole.events) == 2
    t1, t2 = whole.merge_times
    stops = [0.5, 5.0, 0.5 * t1, 0.99 * t1, 0.5 * (t1 + t2), 1.01 * t2]
    for t in stops:
        r = simulate(x, t_max=t, **kw)
        assert r.x_final.shape == (10, 3)
        assert np.abs(r.x_final[2] - r.x_final[9]).max() <= 1e-13, f"copies separated at t = {t}"
        # and they really moved: the copy is not simply frozen
        assert np.abs(r.x_final[2] - data.x[2]).max() > 1e-6
    assert np.abs(whole.x_final[2] - whole.x_final[9]).max() <= 1e-13
    m = np.ones(9)
    m[2] = 2.0
    weighted = simulate(data.x, masses=m, t_max=2000.0, **kw)
    np.testing.assert_allclose(whole.merge_times, weighted.merge_times, rtol=1e-9)
    np.testing.assert_allclose(whole.events["mass_a"], weighted.events["mass_a"], rtol=1e-12)
    coll = simulate(data.x, masses=m, beta=10.0, model=model)  # collapse mode, weighted
    np.testing.assert_allclose(coll.merge_times, weighted.merge_times, rtol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_rotation_equivariance(ref, model):
    d, beta, eps = 4, 12.0, 1e-3
    rng = np.random.default_rng(15)
    w = initial.random_centres(3, d, 0.9, rng)
    data = initial.caps(12, d, 3, eps, rng, centres=w, masses=[3, 4, 5])
    Q = ref.random_rotation(d, seed=3)
    kw = dict(cap_eps=eps, cap_labels=data.labels, beta=beta, model=model)
    a = simulate(data.x, cap_centres=w, **kw)
    b = simulate(data.x @ Q.T, cap_centres=w @ Q.T, **kw)
    assert len(a.events) == len(b.events) == 2
    np.testing.assert_allclose(b.merge_times, a.merge_times, rtol=1e-8)
    assert b.escape_time == pytest.approx(a.escape_time, rel=1e-8)
    np.testing.assert_allclose(b.events["angle_at_merge"], a.events["angle_at_merge"], rtol=1e-8)
    np.testing.assert_allclose(b.x_final, a.x_final @ Q.T, rtol=0, atol=1e-8)
    ea, eb = a.trajectory["energy"].to_numpy(), b.trajectory["energy"].to_numpy()
    np.testing.assert_allclose(eb, ea, rtol=0, atol=1e-9, equal_nan=True)
    # stopped between the merges: two points, the same masses, positions rotated
    t = np.sqrt(a.merge_times[0] * a.merge_times[1])
    a2 = simulate(data.x, cap_centres=w, t_max=t, **kw)
    b2 = simulate(data.x @ Q.T, cap_centres=w @ Q.T, t_max=t, **kw)
    assert a2.censored and a2.x_final.shape == (2, d)
    np.testing.assert_array_equal(a2.mass_final, b2.mass_final)
    np.testing.assert_allclose(b2.x_final, a2.x_final @ Q.T, rtol=0, atol=1e-8)


@pytest.mark.parametrize("model", MODELS)
def test_permutation_invariance(model):
    w, data = _triangle_caps(model, 10.0, seed=6)
    perm = np.random.default_rng(7).permutation(12)
    a = simulate(data.x, beta=10.0, model=model)
    b = simulate(data.x[perm], beta=10.0, model=model)
    np.testing.assert_allclose(b.merge_times, a.merge_times, rtol=1e-8)
    np.testing.assert_allclose(b.events["mass_a"], a.events["mass_a"], rtol=1e-12)
