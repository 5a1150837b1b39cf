"""The exact two-point flow (engine/twopoint.py) against independent references.

References: scipy's QUADPACK quadrature of the gap ODE (theory.twocluster), scipy's DOP853
(solve_ivp) on the full two-point field of dynamics.velocity, and the engine's own DOP853
stepper on the same points (``two_point=False``); invariants: unit norms, the great circle,
USA's fixed mass-weighted centre, rotation equivariance.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from attention_dynamics import initial, simulate
from attention_dynamics.engine import dynamics
from attention_dynamics.engine.twopoint import TwoPointFlow, flow_applies, gap_angle, gap_closing_time
from attention_dynamics.theory.twocluster import two_cluster_merge_time

MODELS = ("usa", "sa")
D_STOP = 2.0 * np.arcsin(0.25e-5)


def _pair(D0, d=3, rng=None):
    """Two unit vectors at angle D0, randomly rotated in R^d."""
    x = np.zeros((2, d))
    x[0, 0] = 1.0
    x[1, 0], x[1, 1] = np.cos(D0), np.sin(D0)
    if rng is not None:
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        x = x @ q.T
    return x


def test_closing_time_equals_quadpack_on_random_cases():
    """The composite Gauss–Legendre rule against scipy's adaptive quadrature: 400 random cases
    over β ∈ [0.5, 150], gaps up to 3.1 rad, end gaps down to 1e-6, unequal masses, both models."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(400):
        model = str(rng.choice(MODELS))
        beta, D0 = float(rng.uniform(0.5, 150.0)), float(rng.uniform(0.11, 3.1))
        D1 = float(rng.uniform(1e-6, 0.99 * D0))
        ma, mb = (float(v) for v in rng.integers(1, 50, 2))
        n = ma + mb + float(rng.integers(0, 10))
        got = gap_closing_time(D0, D1, beta, ma, mb, n, model)
        want = two_cluster_merge_time(D0, D1, beta, ma, mb, n, model)
        worst = max(worst, abs(got / want - 1.0))
    assert worst < 1e-12


@pytest.mark.parametrize("model", MODELS)
def test_positions_follow_the_full_two_point_field(model):
    """Positions of the flow at several times against scipy's DOP853 (rtol 1e-13) on the field of
    dynamics.velocity for the two weighted points, in d = 4 with a random rotation."""
    rng = np.random.default_rng(1)
    x0 = _pair(1.3, d=4, rng=rng)
    mass = np.array([3.0, 7.0])
    beta = 6.0
    flow = TwoPointFlow(x0.ravel(), mass, beta, model, np.inf, D_STOP)
    t_join = flow.tau_of_gap(0.1) * np.exp(flow.scale)
    ts = t_join * np.array([0.05, 0.3, 0.7, 0.95, 0.999])

    def f(t, y):
        x = y.reshape(2, -1)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return dynamics.velocity(x, mass, beta, model).ravel()
    ref = solve_ivp(f, (0.0, ts[-1]), x0.ravel(), method="DOP853", rtol=1e-13, atol=1e-15, t_eval=ts)
    got = flow.positions(flow.gap_at(ts))
    want = ref.y.T.reshape(len(ts), 2, -1)
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    assert np.max(np.abs(got - want)) < 1e-9
    # scalar and vectorised evaluation agree
    assert np.array_equal(np.array([flow.gap_at(t) for t in ts]), flow.gap_at(ts))


@pytest.mark.parametrize("model", MODELS)
def test_invariants_of_the_flow(model):
    rng = np.random.default_rng(2)
    x0 = _pair(2.2, d=3, rng=rng)
    mass = np.array([2.0, 9.0])
    flow = TwoPointFlow(x0.ravel(), mass, 15.0, model, np.inf, D_STOP)
    t_end = flow.t_stop
    ts = t_end * np.sort(rng.uniform(0, 1, 200))
    D = flow.gap_at(ts)
    assert np.all(np.diff(D) <= 0) and D[0] <= 2.2 and D[-1] >= D_STOP  # the gap only closes
    P = flow.positions(D)
    assert np.max(np.abs(np.linalg.norm(P, axis=-1) - 1.0)) < 1e-15
    gaps = np.array([gap_angle(p[0], p[1]) for p in P])
    assert np.max(np.abs(gaps - D)) < 1e-13
    normal = np.cross(x0[0], x0[1])  # both stay on the great circle through them
    assert np.max(np.abs(P @ normal)) < 1e-14
    th_a = np.array([gap_angle(p[0], x0[0]) for p in P])
    th_b = np.array([gap_angle(p[1], x0[1]) for p in P])
    if model == "usa":  # the mass-weighted position along the circle does not move
        np.testing.assert_allclose(mass[0] * th_a, mass[1] * th_b, rtol=1e-12, atol=1e-15)
    else:  # SA: the lighter point moves more, both move
        assert np.all(th_a[1:] > th_b[1:]) and np.all(th_b[1:] > 0)
    # rotation equivariance
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rot = TwoPointFlow((x0 @ q.T).ravel(), mass, 15.0, model, np.inf, D_STOP)
    np.testing.assert_allclose(rot.positions(rot.gap_at(ts)), P @ q.T, atol=1e-13)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("beta", [3.0, 20.0, 60.0])
def test_simulate_pair_merge_equals_quadrature_and_the_stepper(model, beta):
    """Two particles: the merge time of simulate() with the flow against QUADPACK (1e-12) and against
    the engine's DOP853 (two_point=False, 1e-9); one flow, a handful of steps instead of ~4.5 per e-fold."""
    x0 = _pair(1.4)
    kw = dict(beta=beta, model=model, masses=[3.0, 5.0], t_max=1e60)
    a = simulate(x0, **kw)
    b = simulate(x0, two_point=False, **kw)
    want = two_cluster_merge_time(1.4, 0.1, beta, 3.0, 5.0, 8.0, model)
    assert a.status == b.status == "ok" and a.stats["n_pair_flows"] == 1 and b.stats["n_pair_flows"] == 0
    assert a.merge_times.size == b.merge_times.size == 1
    assert a.first_merge_time == pytest.approx(want, rel=1e-12)
    assert a.first_merge_time == pytest.approx(b.first_merge_time, rel=1e-9)
    assert a.stats["n_steps"] <= 3 and a.stats["n_rhs"] == 0 and a.n_clusters_final == 1 and not a.censored
    assert b.stats["n_steps"] > 10
    np.testing.assert_allclose(a.trajectory["energy"], b.trajectory["energy"], rtol=1e-8)
    assert (a.trajectory["n_clusters"] == b.trajectory["n_clusters"]).all()


@pytest.mark.parametrize("engine", ["numpy", "numba"])
@pytest.mark.parametrize("model,d,k,beta", [("usa", 3, 4, 20.0), ("sa", 3, 3, 30.0), ("usa", 2, 2, 40.0),
                                            ("sa", 2, 2, 12.0)])
def test_staircases_with_and_without_the_flow_agree(engine, model, d, k, beta):
    """Caps to the last merge: the flow takes the last plateau; merge times, escape, plateaus and
    trajectories agree with the stepper integrating it (differences = the stepper's error, ≤ 1e-9)."""
    if engine == "numba":
        pytest.importorskip("numba")
    w = initial.great_circle_centres(k, d, spacing=0.8 if k > 2 else 1.1)
    data = initial.caps(8 * k, d, k, 1e-3, np.random.default_rng(k * 7 + d), centres=w)
    kw = dict(beta=beta, model=model, t_max=1e40, cap_centres=data.centres, cap_eps=data.eps,
              cap_labels=data.labels, engine=engine)
    a = simulate(data.x, **kw)
    b = simulate(data.x, two_point=False, **kw)
    assert a.status == b.status == "ok" and a.stats["n_pair_flows"] == 1
    assert a.events["kind"].tolist() == b.events["kind"].tolist() and len(a.merges) == k - 1
    np.testing.assert_allclose(a.merge_times, b.merge_times, rtol=1e-9)
    assert a.escape_time == pytest.approx(b.escape_time, rel=1e-9)
    np.testing.assert_allclose(a.lifetimes["lifetime"], b.lifetimes["lifetime"], rtol=1e-9)
    ta, tb = a.trajectory, b.trajectory
    assert (ta["n_clusters"] == tb["n_clusters"]).all() and (ta["n_points"] == tb["n_points"]).all()
    np.testing.assert_allclose(ta["energy"], tb["energy"], rtol=1e-9)
    assert a.stats["n_steps"] < b.stats["n_steps"]


def test_escape_during_the_flow():
    """k = 2 caps far apart: both caps collapse long before either point leaves its doubled cap,
    so the escape is found inside the flow; it equals the stepper's escape time."""
    w = initial.great_circle_centres(2, 3, spacing=1.5)
    data = initial.caps(16, 3, 2, 1e-3, np.random.default_rng(3), centres=w)
    kw = dict(beta=25.0, model="usa", t_max=1e30, cap_centres=data.centres, cap_eps=data.eps,
              cap_labels=data.labels)
    a, b = simulate(data.x, **kw), simulate(data.x, two_point=False, **kw)
    assert a.stats["n_pair_flows"] == 1 and np.isfinite(a.escape_time)
    collapsed_at = a.trajectory.loc[a.trajectory["n_points"] == 2, "time"].min()
    assert a.escape_time > collapsed_at
    assert a.escape_time == pytest.approx(b.escape_time, rel=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_horizon_inside_the_flow_censors(model):
    x0 = _pair(1.2)
    t_join = two_cluster_merge_time(1.2, 0.1, 30.0, 4.0, 4.0, 8.0, model)
    res = simulate(x0, beta=30.0, model=model, masses=[4.0, 4.0], t_max=0.5 * t_join)
    ref = simulate(x0, beta=30.0, model=model, masses=[4.0, 4.0], t_max=0.5 * t_join, two_point=False)
    assert res.status == "ok" and res.censored and res.n_clusters_final == 2 and len(res.events) == 0
    assert res.t_end == 0.5 * t_join
    assert gap_angle(*res.x_final) == pytest.approx(gap_angle(*ref.x_final), rel=1e-9)
    assert res.lifetimes["censored"].tolist() == [True]


def test_near_antipodal_and_collapsed_pairs_are_left_to_the_stepper():
    assert not flow_applies(_pair(np.pi - 1e-8), D_STOP)
    assert not flow_applies(_pair(0.5 * D_STOP), D_STOP)
    assert flow_applies(_pair(1.0), D_STOP) and not flow_applies(np.eye(3), D_STOP)
    res = simulate(_pair(np.pi - 1e-8), beta=5.0, masses=[1.0, 1.0], t_max=1e3)
    assert res.status == "ok" and res.stats["n_pair_flows"] == 0


def test_wall_clock_limit_reaches_the_flow():
    """A run that has used its wall-clock budget fails in the flow's step as in a stepper's."""
    res = simulate(_pair(1.0), beta=5.0, masses=[1.0, 1.0], max_wall_seconds=1e-12)
    assert res.status == "failed" and "max_wall_seconds" in res.reason


def test_fuzz_pairs_against_the_stepper():
    """Random pairs (d = 2–6, masses 1–60, β 0.5–80, gaps 0.05–3.1 rad, SA and USA, some horizons
    inside the plateau): the same events, merge time, final state and trajectory as the stepper."""
    rng = np.random.default_rng(7)
    n_censored = 0
    for _ in range(60):
        d = int(rng.integers(2, 7))
        model = str(rng.choice(MODELS))
        beta, D0 = float(rng.uniform(0.5, 80.0)), float(rng.uniform(0.05, 3.1))
        mass = rng.uniform(1.0, 60.0, 2)
        x0 = _pair(D0, d=d, rng=rng)
        t_max = 1e60 if rng.uniform() < 0.7 else float(np.exp(rng.uniform(0.0, 0.9) * beta * (1 - np.cos(D0))))
        kw = dict(beta=beta, model=model, masses=mass, t_max=t_max)
        a, b = simulate(x0, **kw), simulate(x0, two_point=False, **kw)
        case = (d, model, beta, D0, mass.tolist(), t_max)
        assert a.status == b.status == "ok", case
        assert a.censored == b.censored and a.n_clusters_final == b.n_clusters_final, case
        assert a.events["kind"].tolist() == b.events["kind"].tolist(), case
        np.testing.assert_allclose(a.merge_times, b.merge_times, rtol=1e-9, err_msg=str(case))
        assert (a.trajectory["n_clusters"] == b.trajectory["n_clusters"]).all(), case
        np.testing.assert_allclose(a.trajectory["energy"], b.trajectory["energy"], rtol=1e-8, err_msg=str(case))
        if a.censored:
            n_censored += 1
            assert gap_angle(*a.x_final) == pytest.approx(gap_angle(*b.x_final), rel=1e-7, abs=1e-12), case
    assert 5 <= n_censored <= 30  # both kinds of ending were tried


@pytest.mark.parametrize("beta,D0,masses,model,rel", [
    (3.0, 1.0, [1.0, 1e4], "sa", 1e-13),          # extreme mass ratio
    (0.01, 2.0, [1.0, 1.0], "usa", 1e-13),        # almost no attraction
    (60.0, np.pi - 2e-6, [2.0, 3.0], "sa", 1e-10),  # starts next to the antipode (the gap is known to ~1e-16 abs.)
    (150.0, 1.5, [5.0, 3.0], "usa", 1e-12),       # a merge at t ~ 1e63
])
def test_extreme_pairs_merge_at_the_quadrature_time(beta, D0, masses, model, rel):
    """Where the stepper is least accurate (it is off by 1.6e-10, 6e-10 and 1.1e-8 relative in the first
    three cases), the flow equals QUADPACK's quadrature of the gap ODE."""
    x0 = _pair(D0)
    res = simulate(x0, beta=beta, masses=masses, model=model, t_max=1e300)
    D = gap_angle(x0[0], x0[1])
    want = two_cluster_merge_time(D, 0.1, beta, *masses, sum(masses), model)
    assert res.stats["n_pair_flows"] == 1 and res.first_merge_time == pytest.approx(want, rel=rel)


def test_a_pair_beyond_float_range_stays_put():
    """β(1 − cos D0) > 709: the plateau is longer than any float horizon; the run is censored at
    t_max with the points where they started."""
    x0 = _pair(2.5)
    res = simulate(x0, beta=400.0, masses=[1.0, 1.0], t_max=1e300)
    assert res.status == "ok" and res.censored and res.t_end == 1e300
    assert gap_angle(*res.x_final) == pytest.approx(2.5, rel=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_join_angle_is_theta_c_after_a_long_plateau(model):
    """A merge at t ~ 1e11: the join is located in local time after a restart at θ_c(1 + 1e-9), so the
    centres' angle at the recorded time is θ_c to 1e-9 — in global time the root would be ~0.04 time
    units wide, in which the gap runs from θ_c almost to the collapse."""
    x0 = _pair(np.pi / 2)
    res = simulate(x0, beta=30.0, model=model, masses=[32.0, 32.0], t_max=1e25)
    ev = res.events.iloc[0]
    assert ev["time"] > 1e10 and ev["angle_at_merge"] == pytest.approx(0.1, rel=1e-9)
    want = two_cluster_merge_time(np.pi / 2, 0.1, 30.0, 32.0, 32.0, 64.0, model)
    assert ev["time"] == pytest.approx(want, rel=1e-13)
    assert res.stats["n_pair_flows"] == 1 and res.stats["n_steps"] == 2
