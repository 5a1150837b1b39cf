"""theory.kpoint: merge times of k weighted points, against independent references.

References: the two-cluster quadrature (theory.twocluster, itself checked against SCIENCE's
literal rate in test_engine), scipy's implicit Radau integrator on the angle ODE written out
here in physical time, and the engine's own integrator (general-d vector field, DOP853,
collapse) on k weighted points.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from attention_dynamics.engine.simulate import simulate
from attention_dynamics.theory.kpoint import (circle_angles, circle_merge_log_times, circle_merge_time,
                                              leading_order_staircase, two_cluster_log_time_leading)
from attention_dynamics.theory.twocluster import two_cluster_merge_time


def radau_first_merge(theta, masses, beta, model, theta_c, t_end=1e9):
    """First time two of the k points come within θ_c: Radau on θ̇ in physical time (written independently)."""
    m = np.asarray(masses, float)
    mu = m / m.sum()

    def rhs(t, th):
        diff = th[None, :] - th[:, None]                      # θ_j − θ_i
        w = mu[None, :] * np.exp(beta * (np.cos(diff) - 1.0))
        num = (w * np.sin(diff)).sum(axis=1)
        return num if model == "usa" else num / w.sum(axis=1)  # SA: the self term is in the denominator

    def gap(t, th):
        z = np.exp(1j * th)
        g = np.abs(np.angle(z[None, :] * np.conj(z[:, None])))
        np.fill_diagonal(g, np.inf)
        return g.min() - theta_c
    gap.terminal = True
    sol = solve_ivp(rhs, (0.0, t_end), np.asarray(theta, float), method="Radau", events=gap, rtol=1e-12, atol=1e-14)
    return float(sol.t_events[0][0])


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_two_points_match_the_two_cluster_quadrature(model):
    betas = np.array([5.0, 10.0, 20.0, 40.0, 80.0, 150.0])
    for D, na, nb in [(math.pi / 2, 32, 32), (0.8, 16, 48), (2.0, 10, 54)]:
        r = circle_merge_log_times(np.tile([0.0, D], (betas.size, 1)), [na, nb], betas, model, 0.1)
        ref = np.log([two_cluster_merge_time(D, 0.1, b, na, nb, na + nb, model) for b in betas])
        assert np.max(np.abs(r.log_first - ref)) < 2e-9, (D, r.log_first - ref)
        assert r.steps.max() < 200   # a plateau of length e^{βD} costs O(100) steps at any β


@pytest.mark.parametrize("model", ["usa", "sa"])
@pytest.mark.parametrize("theta, masses", [([0.0, 0.8, 1.6], [1, 1, 1]), ([0.0, 0.7, 1.5, 2.4], [3, 1, 2, 2])])
def test_first_merge_matches_radau(model, theta, masses):
    for beta in (3.0, 12.0):
        t = circle_merge_time(theta, masses, beta, model, 0.1)
        ref = radau_first_merge(theta, masses, beta, model, 0.1)
        assert t == pytest.approx(ref, rel=1e-8), (beta, t, ref)


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_whole_staircase_matches_the_engine(model):
    """Every merge time of k weighted points, against the engine's integrator (collapse at δ = 1e-5)."""
    for theta, masses, beta in [([0.0, 0.7, 1.5, 2.4], [3, 1, 2, 2], 8.0), ([0.0, 0.5, 1.9], [1, 2, 1], 12.0)]:
        r = circle_merge_log_times(np.array(theta)[None], np.array(masses, float)[None], beta, model, 0.1,
                                   until="last")
        x = np.column_stack([np.cos(theta), np.sin(theta)])
        sim = simulate(x, beta=beta, model=model, masses=np.array(masses, float), theta_c=0.1, t_max=1e12)
        assert len(sim.merge_times) == len(theta) - 1
        assert np.allclose(np.exp(r.log_times[0]), sim.merge_times, rtol=1e-8, atol=0), \
            (np.exp(r.log_times[0]), sim.merge_times)


def test_batched_equals_one_by_one_and_padding_is_ignored():
    theta = np.array([[0.0, 0.7, 1.5, 2.4], [0.0, 0.9, 1.7, 2.2]])
    mu = np.array([[1.0, 1, 1, 1], [2.0, 1, 1, 3]])
    betas = np.array([9.0, 15.0])
    both = circle_merge_log_times(theta, mu, betas, "usa", 0.1, until="last")
    for j in range(2):
        one = circle_merge_log_times(theta[j:j + 1], mu[j:j + 1], betas[j], "usa", 0.1, until="last")
        assert np.allclose(both.log_times[j], one.log_times[0], rtol=0, atol=1e-9)
    # a three-point system padded with a zero-mass point is the three-point system
    pad = circle_merge_log_times([[0.0, 0.8, 1.6, 3.0]], [[1.0, 1.0, 1.0, 0.0]], 10.0, "sa", 0.1, until="last")
    ref = circle_merge_log_times([[0.0, 0.8, 1.6]], [[1.0, 1.0, 1.0]], 10.0, "sa", 0.1, until="last")
    assert pad.n_initial[0] == 3 and np.allclose(pad.log_times[0, :2], ref.log_times[0], atol=1e-12)


def test_equilibrium_initial_clusters_and_stop():
    # k equally spaced equal masses: an unstable equilibrium, reported as such (times NaN)
    r = circle_merge_log_times([circle_angles(3, None)], [1, 1, 1], 10.0, "usa", 0.1)
    assert r.equilibrium[0] and np.isnan(r.log_first[0])
    # two points closer than θ_c are one cluster at t = 0, not a merge
    r = circle_merge_log_times([[0.0, 0.05, 1.0]], [1, 1, 2], 10.0, "usa", 0.1, until="last")
    assert r.n_initial[0] == 2 and np.isfinite(r.log_first[0]) and r.log_first[0] == r.log_last[0]
    # a horizon stop: the times beyond it are +inf
    r = circle_merge_log_times([[0.0, math.pi / 2]], [1, 1], 60.0, "usa", 0.1, log_t_stop=20.0)
    assert r.log_first[0] == np.inf


def test_leading_order_approaches_the_exact_times():
    """ln T_exact − ln T_leading = O(1/β) for two points; the staircase closes the closest pair first."""
    betas = np.array([20.0, 40.0, 80.0, 160.0])
    D = 1.1
    exact = np.log([two_cluster_merge_time(D, 0.1, b, 1.0, 3.0, 4.0, "usa") for b in betas])
    lead = two_cluster_log_time_leading(D, betas, 0.25, 0.75, "usa")
    err = np.abs(exact - lead)
    assert np.all(np.diff(err) < 0) and err[-1] < 0.02 and np.all(err * betas < 3.0)
    pts = np.column_stack([np.cos([0.0, 0.6, 2.0]), np.sin([0.0, 0.6, 2.0])])
    first, last = leading_order_staircase(pts, [1, 1, 2], betas, "usa", 0.1)
    assert np.allclose(first, two_cluster_log_time_leading(0.6, betas, 0.25, 0.25, "usa"))
    assert np.all(last > first)
