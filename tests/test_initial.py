"""Initial data (docs/science.md §2; GitHub issue 2, item 6)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, stats

from attention_dynamics import initial


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("d", [2, 3, 7])
@pytest.mark.parametrize("eps", [1e-12, 1e-3, 0.5, 0.99])
def test_sample_cap_inside_cap_and_on_sphere(d, eps):
    rng = np.random.default_rng(100 + d)
    w = _unit(rng.standard_normal(d))
    x = initial.sample_cap(w, eps, 500, rng)
    assert x.shape == (500, d)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=0, atol=4 * np.finfo(float).eps)
    # 1 − ⟨x, w⟩ ≤ ε, up to the rounding of ⟨x, w⟩ ≈ 1 (a few ulps)
    assert np.all(1.0 - x @ w <= eps + 8 * np.finfo(float).eps)
    # and the cap is filled, not just its centre: some points near the rim
    assert np.max(1.0 - x @ w) > 0.9 * eps - 8 * np.finfo(float).eps


def test_sample_cap_d3_uniform_in_surface_measure():
    """Archimedes: on S², 1 − ⟨x, w⟩ of a uniform point of the cap is uniform on [0, ε];
    the azimuth around w is uniform on [0, 2π)."""
    rng = np.random.default_rng(2024)
    w = _unit([0.3, -0.5, 0.8])
    eps = 0.05
    x = initial.sample_cap(w, eps, 4000, rng)
    s = 1.0 - x @ w
    assert stats.kstest(s / eps, "uniform").pvalue > 0.01
    e1 = _unit(np.cross(w, [1.0, 0.0, 0.0]))
    e2 = np.cross(w, e1)
    phi = np.mod(np.arctan2(x @ e2, x @ e1), 2 * np.pi)
    assert stats.kstest(phi / (2 * np.pi), "uniform").pvalue > 0.01


def test_sample_cap_d5_matches_surface_measure_law():
    """In S^{d−1} the height t = ⟨x, w⟩ has density ∝ (1 − t²)^{(d−3)/2}; compare the
    sampled law on the cap [1 − ε, 1] with that density integrated by quadrature."""
    d, eps = 5, 0.4
    rng = np.random.default_rng(77)
    w = _unit(rng.standard_normal(d))
    x = initial.sample_cap(w, eps, 3000, rng)
    dens = lambda t: (1.0 - t * t) ** ((d - 3) / 2)  # noqa: E731
    z, _ = integrate.quad(dens, 1.0 - eps, 1.0)

    def cdf(t):
        t = np.atleast_1d(t)
        return np.array([integrate.quad(dens, 1.0 - eps, min(max(ti, 1 - eps), 1.0))[0] / z for ti in t])

    assert stats.kstest(x @ w, cdf).pvalue > 0.01


def test_caps_particles_in_their_caps_with_labels():
    rng = np.random.default_rng(5)
    data = initial.caps(23, 4, 3, 1e-3, rng, min_angle=0.7, masses=[2, 3, 5])
    assert data.x.shape == (23, 4)
    counts = np.bincount(data.labels)
    assert counts.sum() == 23 and counts.tolist() == initial.split_counts(23, 3, [2, 3, 5]).tolist()
    dots = np.sum(data.x * data.centres[data.labels], axis=1)
    assert np.all(1.0 - dots <= 1e-3 + 1e-15)
    np.testing.assert_allclose(np.linalg.norm(data.centres, axis=1), 1.0, atol=1e-15)
    assert data.eps == 1e-3


@pytest.mark.parametrize("kw", [dict(eps=0.0), dict(eps=1.0), dict(eps=-1e-3), dict(d=1)])
def test_caps_rejects_bad_arguments(kw):
    args = dict(n=10, d=3, k=2, eps=1e-3) | kw
    with pytest.raises(ValueError):
        initial.caps(args["n"], args["d"], args["k"], args["eps"], np.random.default_rng(0))


def test_great_circle_centres():
    w = initial.great_circle_centres(5, 4, spacing=0.3)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-15)
    ang = np.arccos(np.clip(np.sum(w[1:] * w[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(ang, 0.3, rtol=1e-12)
    assert np.all(w[:, 2:] == 0)
    w = initial.great_circle_centres(4, 3)  # default spacing 2π/k
    np.testing.assert_allclose(w @ w[0], [1.0, 0.0, -1.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("k,d,min_angle", [(6, 3, 0.8), (4, 2, 1.2), (10, 5, 1.0)])
def test_random_centres_respect_min_angle(k, d, min_angle):
    w = initial.random_centres(k, d, min_angle, np.random.default_rng(k + d))
    assert w.shape == (k, d)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-15)
    for i, j in itertools.combinations(range(k), 2):
        assert np.arccos(np.clip(w[i] @ w[j], -1, 1)) >= min_angle - 1e-12


def test_random_centres_impossible_raises():
    # at most 2 points on the circle can be ≥ 3 rad apart
    with pytest.raises(ValueError, match="could not place"):
        initial.random_centres(3, 2, 3.0, np.random.default_rng(0), max_tries=2000)


def test_split_counts_equal():
    assert initial.split_counts(10, 3).tolist() == [4, 3, 3]
    assert initial.split_counts(9, 3).tolist() == [3, 3, 3]
    assert initial.split_counts(5, 5).tolist() == [1] * 5


def test_split_counts_masses():
    assert initial.split_counts(10, 2, [3, 7]).tolist() == [3, 7]        # counts as given
    assert initial.split_counts(20, 2, [0.3, 0.7]).tolist() == [6, 14]   # fractions
    assert initial.split_counts(10, 3, [1, 1, 1]).tolist() == [4, 3, 3]  # largest remainder
    rng = np.random.default_rng(8)
    for _ in range(50):
        k = int(rng.integers(1, 6))
        n = int(rng.integers(k * 20, 200))
        w = rng.uniform(0.2, 1.0, size=k)
        c = initial.split_counts(n, k, w)
        assert c.sum() == n and np.all(c >= 1)
        assert np.all(np.abs(c - w / w.sum() * n) < 1.0)  # within one of the exact share


@pytest.mark.parametrize("args", [
    (2, 3, None),                 # n < k
    (10, 0, None),                # k < 1
    (10, 2, [1.0]),               # wrong length
    (10, 2, [1.0, -1.0]),         # non-positive
    (10, 2, [1.0, float("nan")]),
    (5, 2, [1.0, 1000.0]),        # leaves an empty cap
])
def test_split_counts_rejects(args):
    with pytest.raises(ValueError):
        initial.split_counts(*args)


def test_gaussian_mixture_normalised_and_distributed_as_defined():
    """X ~ N(√r w_q, σ² I) then normalised: compare ⟨x, w_q⟩ with an independent sampler
    of the same definition (two-sample KS), per component."""
    n, d, k, r, sigma = 3000, 3, 2, 2.0, 0.4
    w = initial.great_circle_centres(k, d, spacing=1.0)
    data = initial.gaussian_mixture(n, d, k, r, sigma, np.random.default_rng(9), centres=w, masses=[1, 2])
    np.testing.assert_allclose(np.linalg.norm(data.x, axis=1), 1.0, atol=1e-15)
    counts = np.bincount(data.labels)
    assert counts.tolist() == [1000, 2000]
    rng = np.random.default_rng(12345)
    for q in range(k):
        z = np.sqrt(r) * w[q] + sigma * rng.standard_normal((counts[q], d))
        mine = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ w[q]
        theirs = data.x[data.labels == q] @ w[q]
        assert stats.ks_2samp(mine, theirs).pvalue > 0.01


def test_gaussian_mixture_rejects_bad_arguments():
    with pytest.raises(ValueError):
        initial.gaussian_mixture(10, 3, 2, 1.0, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError):
        initial.gaussian_mixture(10, 3, 2, -1.0, 0.1, np.random.default_rng(0))


def test_uniform_on_sphere():
    data = initial.uniform(4000, 3, np.random.default_rng(10))
    np.testing.assert_allclose(np.linalg.norm(data.x, axis=1), 1.0, atol=1e-15)
    # Archimedes again: each coordinate of a uniform point on S² is uniform on [−1, 1]
    assert stats.kstest((data.x[:, 2] + 1) / 2, "uniform").pvalue > 0.01


def _cap_boundary(w, eps2, m):
    """m points on the boundary {⟨x, w⟩ = 1 − eps2} of a cap on S² (a circle)."""
    e1 = _unit(np.cross(w, [0.3, 0.1, 1.0]))
    e2 = np.cross(w, e1)
    c, s = 1.0 - eps2, np.sqrt(1.0 - (1.0 - eps2) ** 2)
    phi = np.linspace(0.0, 2 * np.pi, m, endpoint=False)
    return c * w[None, :] + s * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)


@pytest.mark.parametrize("eps", [1e-3, 0.02])
def test_cap_separation_brute_force(eps):
    """α = max ⟨x, y⟩ over x, y in *different* doubled caps S_q(2ε), by brute force over
    dense grids of the boundary circles (the maximum of a linear function over a cap
    lies on its boundary unless the caps overlap) and over sampled interior points."""
    rng = np.random.default_rng(11)
    w = initial.random_centres(3, 3, 0.6, rng)
    best = -1.0
    for i, j in itertools.combinations(range(3), 2):
        bi, bj = _cap_boundary(w[i], 2 * eps, 1500), _cap_boundary(w[j], 2 * eps, 1500)
        best = max(best, float((bi @ bj.T).max()))
        xi, xj = initial.sample_cap(w[i], 2 * eps, 300, rng), initial.sample_cap(w[j], 2 * eps, 300, rng)
        assert float((xi @ xj.T).max()) <= initial.cap_separation(w, eps) + 1e-12
    got = initial.cap_separation(w, eps)
    assert got >= best - 1e-12
    assert got == pytest.approx(best, abs=2e-6)  # grid spacing 2π/1500 on circles of radius ≈ 2√ε


def test_cap_separation_overlapping_caps_is_one():
    w = initial.great_circle_centres(2, 3, spacing=0.05)  # doubled caps of radius ≈ 0.2 overlap
    assert initial.cap_separation(w, 0.01) == 1.0


def test_cap_separation_closed_form_any_dimension():
    """Two centres at angle D, doubled caps of angular radius ρ = arccos(1 − 2ε): the
    closest points lie on the great circle through the centres, at angle D − 2ρ."""
    d, D, eps = 6, 1.3, 4e-3
    rng = np.random.default_rng(12)
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    w = np.vstack([q[:, 0], np.cos(D) * q[:, 0] + np.sin(D) * q[:, 1]])
    rho = np.arccos(1 - 2 * eps)
    assert initial.cap_separation(w, eps) == pytest.approx(np.cos(D - 2 * rho), rel=1e-12)
    # the two extreme points realise it and lie on the doubled caps' boundaries
    x = np.cos(rho) * q[:, 0] + np.sin(rho) * q[:, 1]
    y = np.cos(D - rho) * q[:, 0] + np.sin(D - rho) * q[:, 1]
    assert x @ w[0] == pytest.approx(1 - 2 * eps, rel=1e-13) and y @ w[1] == pytest.approx(1 - 2 * eps, rel=1e-13)
    assert x @ y == pytest.approx(initial.cap_separation(w, eps), rel=1e-12)
