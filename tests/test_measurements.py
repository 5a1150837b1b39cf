"""Measurements that hold for every initial-data family (issue 10) and engine faults (issue 15.4).

References, each independent of the code under test: the full system without collapse
(``collapse=False``), the reduced two-cluster ODE (``theory.twocluster``, by quadrature), planted
stragglers whose absorption and the following merge have closed-form reduced dynamics, the
trajectory itself (a split time is where the two parts are θ_c apart), the reproduction's
``formation()`` run with another integrator, and vector fields built to fail. The collapse and
fault tests run both engines (numpy and the compiled numba stepper).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from attention_dynamics import initial, simulate
from attention_dynamics.engine.simulate import EVENT_KINDS
from attention_dynamics.engine.dynamics import numba_available
from attention_dynamics.engine.stepper import NON_FINITE_ERROR, NON_FINITE_STEP, CompiledDOP853, PredictiveDOP853
from attention_dynamics.pipeline import cell
from attention_dynamics.reproductions.emergence import formation
from attention_dynamics.theory.twocluster import two_cluster_merge_time

MODELS = ("usa", "sa")
SIM = sys.modules["attention_dynamics.engine.simulate"]
ENGINES = ("numpy", pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="needs numba")))


def _ols_slope(betas, log_t):
    """c of ln T = a + c β + b ln β (ordinary least squares)."""
    b = np.asarray(betas, float)
    return float(np.linalg.lstsq(np.stack([np.ones_like(b), b, np.log(b)], 1), np.asarray(log_t), rcond=None)[0][1])


# --------------------------------------------------------------------------------------
# merge times do not depend on the collapse radius (item 2)
# --------------------------------------------------------------------------------------

def _three_caps(seed=0, n=24):
    w = initial.great_circle_centres(3, 3, spacing=0.8)
    return initial.caps(n, 3, 3, 1e-3, np.random.default_rng(seed), centres=w, masses=[6, 8, 10])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("beta", [4.0, 8.0, 12.0])
def test_merge_times_independent_of_collapse(model, beta, engine):
    """n = 24 in 3 caps (ε = 1e-3, 0.8 rad apart, masses 6/8/10): these merges happen while the caps
    still contract (t ≈ 3–100). Without the collapse guard the error was O(δ): 2.2e-6 (USA, β = 8)."""
    data = _three_caps()
    ref = simulate(data.x, beta=beta, model=model, collapse=False, t_max=1e6, engine=engine)
    out = simulate(data.x, beta=beta, model=model, t_max=1e6, engine=engine)
    assert ref.status == out.status == "ok"
    assert len(ref.merge_times) == len(out.merge_times) == 2
    np.testing.assert_allclose(out.merge_times, ref.merge_times, rtol=1e-8, atol=0)
    assert out.stats["n_collapses"] > 0  # the collapse run did collapse


def test_steps_independent_of_horizon():
    """Long horizons stay cheap: the same run to t_max = 1e20 and 1e40 takes the same steps."""
    w = initial.great_circle_centres(4, 3, spacing=0.8)
    data = initial.caps(64, 3, 4, 1e-3, np.random.default_rng(5), centres=w)
    a, b = (simulate(data.x, beta=20.0, t_max=t) for t in (1e20, 1e40))
    assert a.status == b.status == "ok" and not a.censored and not b.censored
    np.testing.assert_allclose(a.merge_times, b.merge_times, rtol=1e-12)
    assert abs(a.stats["n_steps"] - b.stats["n_steps"]) <= 2


# --------------------------------------------------------------------------------------
# planted stragglers: absorptions, not merges (item 1)
# --------------------------------------------------------------------------------------

def _assert_kinds(res):
    assert set(res.events["kind"]) <= set(EVENT_KINDS)
    m = res.merges
    assert (m[["mass_a", "mass_b"]].to_numpy() >= res.min_mass * (1 - 1e-9)).all()


def test_planted_straggler_point_clusters_exact():
    """Points A, B (mass 10 each, 1 rad apart) and a straggler s (mass 1) 0.3 rad from A, perpendicular
    to the plane of A and B (USA, β = 30). Reduced dynamics: s is absorbed at the two-cluster time
    T(0.3 → θ_c; 10, 1); A and s move along their arc with m_A θ̇_A = m_s θ̇_s, so their arc centre
    A' stays at b = 0.3/11 from A along e3, at the gap G = arccos(cos D cos b) from B, and from
    t = 0 on it is pulled by B like a point of mass 11 (the pair's spread enters at second order):
    the merge is at T(G → θ_c; 11, 10). B's pull during the absorption is O(e^{−β(1−cos D)}) ≈ 1e-6.
    (Reporting the absorption as the merge — the old behaviour — is off by a factor 1e4.)"""
    beta, D, a = 30.0, 1.0, 0.3
    x = np.array([[1.0, 0, 0], [np.cos(D), np.sin(D), 0], [np.cos(a), 0, np.sin(a)]])
    res = simulate(x, beta=beta, model="usa", masses=[10.0, 10.0, 1.0], min_mass=0.2)
    assert res.status == "ok" and res.n_clusters_initial == 2 and res.n_clusters_final == 1
    assert res.events["kind"].tolist() == ["absorption", "merge"]
    t_abs = two_cluster_merge_time(a, 0.1, beta, 10, 1, 21, "usa")
    gap = np.arccos(np.cos(D) * np.cos(a / 11))
    t_merge = two_cluster_merge_time(gap, 0.1, beta, 11, 10, 21, "usa")
    assert res.events["time"].iloc[0] == pytest.approx(t_abs, rel=1e-5)
    assert res.first_merge_time == pytest.approx(t_merge, rel=1e-5)
    ab, mg = res.events.iloc[0], res.events.iloc[1]
    assert (ab["mass_a"], ab["mass_b"], ab["n_clusters_before"], ab["n_clusters_after"]) == \
        pytest.approx((10 / 21, 1 / 21, 2, 2))
    assert (mg["mass_a"], mg["mass_b"], mg["n_clusters_before"], mg["n_clusters_after"]) == \
        pytest.approx((11 / 21, 10 / 21, 2, 1))
    tr = res.trajectory
    assert (tr["n_clusters"].iloc[0], tr["n_components"].iloc[0]) == (2, 3)
    lt = res.lifetimes  # one plateau of 2 macroscopic clusters, closed by the merge (not by the absorption)
    assert lt["n_clusters"].tolist() == [2] and lt["closed_by"].tolist() == ["merge"]
    assert lt["t_close"].iloc[0] == res.first_merge_time
    assert lt["sum_mass_sq"].iloc[0] == pytest.approx(2 * (10 / 21) ** 2, rel=1e-12)


def _plant(x, i, centre, angle, axis):
    """Put particle i at ``angle`` from ``centre`` towards the unit vector ``axis`` ⟂ centre."""
    x = x.copy()
    x[i] = np.cos(angle) * centre + np.sin(angle) * axis
    return x


@pytest.mark.parametrize("model", MODELS)
def test_planted_straggler_in_caps(model):
    """k = 3 caps; one particle of cap 0 moved 0.15 rad out of it (⟂ to the caps' plane, beyond
    θ_c). Counts and merges are those of the unplanted data within 1 % (the moved mass 1/n shifts
    cap 0's centre by b = 0.15/8 rad out of the plane, which lengthens the gap by
    (1 − cos b) cot D ≈ 1.4e-4 rad: ≈ 0.2 % in T at β = 20); the straggler is an absorption."""
    beta = 20.0
    w = initial.great_circle_centres(3, 3, spacing=0.9)
    data = initial.caps(24, 3, 3, 1e-3, np.random.default_rng(7), centres=w)
    e3 = np.array([0.0, 0.0, 1.0])
    x = _plant(data.x, 0, w[0], 0.15, e3)
    kw = dict(beta=beta, model=model, cap_centres=w, cap_eps=1e-3, cap_labels=data.labels)
    ref = simulate(_plant(data.x, 0, w[0], 0.0, e3), **kw)
    res = simulate(x, **kw)
    assert res.min_mass == pytest.approx(0.5 * 8 / 24)
    assert res.n_clusters_initial == ref.n_clusters_initial == 3
    assert res.trajectory["n_components"].iloc[0] == 4
    _assert_kinds(res)
    ab = res.events[res.events["kind"] == "absorption"]
    assert len(ab) == 1 and ab["mass_b"].iloc[0] == pytest.approx(1 / 24)
    assert ab["time"].iloc[0] < 0.05 * res.first_merge_time
    assert len(res.merge_times) == len(ref.merge_times) == 2
    np.testing.assert_allclose(res.merge_times, ref.merge_times, rtol=1e-2)


def test_planted_straggler_in_gaussian_mixture():
    """k = 2 mixture (1.2 rad apart, σ = 0.05, n = 64, d = 3); one particle moved 0.3 rad out of its
    component. It is not tracked for the escape, not counted, and absorbed; the first merge is that
    of the unplanted data within 1 %."""
    beta = 20.0
    data = initial.gaussian_mixture(64, 3, 2, 1.0, 0.05, np.random.default_rng(0), spacing=1.2)
    w = data.centres
    e3 = np.array([0.0, 0.0, 1.0])
    i = int(np.flatnonzero(data.labels == 1)[0])
    x, x_ref = _plant(data.x, i, w[1], 0.3, e3), _plant(data.x, i, w[1], 0.0, e3)
    min_mass = cell.default_min_mass(dict(init="gaussian", n=64, k=2))
    assert min_mass == 0.25
    centres, eps, tracked = cell.mixture_escape_caps(x, data.labels, 0.1, min_mass)
    assert tracked[i] == -1 and (tracked[np.arange(64) != i] == data.labels[np.arange(64) != i]).all()
    cos = np.einsum("ij,ij->i", x[tracked >= 0], centres[tracked[tracked >= 0]])
    assert cos.min() == pytest.approx(1 - eps, abs=1e-15) and eps < 0.03  # the core's spread, not 0.3 rad
    kw = dict(beta=beta, model="usa", min_mass=min_mass, t_max=1e30)
    res = simulate(x, cap_centres=centres, cap_eps=eps, cap_labels=tracked, **kw)
    ref = simulate(x_ref, **kw)
    assert res.n_clusters_initial == ref.n_clusters_initial == 2
    _assert_kinds(res)
    ab = res.events[res.events["kind"] == "absorption"]
    assert (np.isclose(ab["mass_b"], 1 / 64) & (ab["time"] < 10.0)).sum() == 1
    assert res.first_merge_time == pytest.approx(ref.first_merge_time, rel=1e-2)
    assert 0 < res.escape_time <= res.first_merge_time


def _circle(th):
    return np.stack([np.cos(th), np.sin(th)], axis=1)


def _uniform_with_planted_pair(seed):
    """200 iid uniform points on S¹ outside an arc of ±0.7 rad around π, and a pair of particles
    1e-3 apart at π (a small group between forming clusters)."""
    th = np.random.default_rng(seed).uniform(0.0, 2 * np.pi, 300)
    th = th[np.abs(np.angle(np.exp(1j * (th - np.pi)))) > 0.7][:200]
    return _circle(th), _circle(np.array([np.pi, np.pi + 1e-3]))


def test_planted_pair_in_uniform_data():
    """Uniform data (d = 2, β = 20): measurement starts at formation; the planted pair (mass 2/n <
    min_mass = 3/n) is not counted, joins a cluster as an absorption, and the count at formation and
    the first merge are those of the data without it (first merge within 5 %: the pair's mass 1 %
    shifts the clusters)."""
    base, pair = _uniform_with_planted_pair(0)
    x = np.vstack([base, pair])
    n = x.shape[0]
    min_mass = cell.default_min_mass(dict(init="uniform", n=n))
    assert min_mass == pytest.approx(3 / n)
    kw = dict(beta=20.0, min_mass=min_mass, wait_for_formation=True, t_max=1e30)
    res, ref = simulate(x, **kw), simulate(base, **kw)
    assert res.formation_status == ref.formation_status == "ok"
    assert res.n_clusters_formation == ref.n_clusters_formation == res.n_clusters_initial >= 4
    assert res.events["time"].min() >= res.formation_time  # nothing recorded before formation
    _assert_kinds(res)
    ab = res.events[res.events["kind"] == "absorption"]
    assert (np.isclose(ab["mass_b"], 2 / n) & (ab["time"] < res.first_merge_time)).any()
    assert res.first_merge_time == pytest.approx(ref.first_merge_time, rel=0.05)
    assert res.trajectory.loc[res.trajectory["time"] < res.formation_time, "n_clusters"].notna().all()


def test_split_is_located_on_the_trajectory():
    """A (mass 50) at 0, Q (1) at 0.095, C (100) at 0.175 on a circle, β = 200 (USA): one cluster at
    t = 0; C pulls Q away from A faster than A follows, so A splits off (macroscopic count 1 → 2),
    then merges back. At the split time the full system has A and Q exactly θ_c apart."""
    th = np.array([0.0, 0.095, 0.175])
    x = np.stack([np.cos(th), np.sin(th), 0 * th], 1)
    kw = dict(beta=200.0, model="usa", masses=[50.0, 1.0, 100.0], min_mass=0.05)
    res = simulate(x, **kw)
    full = simulate(x, collapse=False, **kw)
    assert res.events["kind"].tolist() == full.events["kind"].tolist() == ["split", "merge"]
    sp = res.events.iloc[0]
    assert (sp["n_clusters_before"], sp["n_clusters_after"]) == (1, 2)
    assert (sp["mass_a"], sp["mass_b"]) == pytest.approx((101 / 151, 50 / 151))
    np.testing.assert_allclose(res.events["time"], full.events["time"], rtol=1e-8)
    ts = full.events["time"].iloc[0]
    for f, sign in ((1 - 1e-6, -1), (1 + 1e-6, 1)):
        xf = simulate(x, collapse=False, t_max=ts * f, **kw).x_final
        assert sign * (np.arccos(np.clip(xf[0] @ xf[1], -1, 1)) - 0.1) > 0
    assert res.lifetimes["closed_by"].tolist() == ["split", "merge"]


# --------------------------------------------------------------------------------------
# every family measured (item 3)
# --------------------------------------------------------------------------------------

def test_uniform_formation_is_the_reproductions_rule():
    """The engine's formation time and count (uniform data, d = 2) equal those of
    reproductions.formation() run with another integrator (DOP853 at rtol 1e-10, no collapse, the
    Fourier-mode field); sparse data (d = 3, n = 300) are 'sparse' for both."""
    for seed in (0, 1):
        x = initial.uniform(200, 2, np.random.default_rng(seed)).x
        res = simulate(x, beta=20.0, min_mass=0.015, wait_for_formation=True, t_max=1e3,
                       record_times=np.array([0.0]))
        fo = formation(x, 20.0, m_min=0.015, method="DOP853", rtol=1e-10, atol=1e-12)
        assert res.formation_status == fo["status"] == "ok"
        assert res.n_clusters_formation == fo["n_clusters"]
        assert res.formation_time == pytest.approx(fo["t_formation"], rel=2e-3)  # formation(): bisection to 1e-3
    x = initial.uniform(300, 3, np.random.default_rng(0)).x
    res = simulate(x, beta=10.0, min_mass=0.01, wait_for_formation=True, t_max=1.0)
    assert res.formation_status == formation(x, 10.0)["status"] == "sparse"
    assert np.isnan(res.formation_time) and res.n_clusters_initial >= 0


def test_gaussian_escape_time_is_first_exit():
    """Gaussian mixture: the escape time read by the engine is where a tracked particle of the full
    system leaves its doubled cap S_q(2ε̂) (stop the full system just before and just after)."""
    c = cell.canonical_cell(dict(init="gaussian", model="usa", k=2, n=16, d=3, sigma=0.05, spacing=1.2, beta=10.0))
    data = cell.make_initial_data(c, np.random.default_rng(cell.seed_sequence(c, 0)))
    centres, eps, tracked = cell.mixture_escape_caps(data.x, data.labels, 0.1, cell.default_min_mass(c))
    caps = dict(cap_centres=centres, cap_eps=eps, cap_labels=tracked)
    kw = dict(beta=10.0, model="usa", collapse=False, min_mass=cell.default_min_mass(c))
    te = simulate(data.x, t_max=1e4, **kw, **caps).escape_time
    assert 1.0 < te < 1e4
    ok = tracked >= 0

    def margin(t):
        xf = simulate(data.x, t_max=t, **kw, **caps).x_final
        return np.min(np.einsum("ij,ij->i", xf[ok], centres[tracked[ok]])) - (1 - 2 * eps)
    assert margin(te * (1 - 1e-5)) > 0 > margin(te * (1 + 1e-5))
    row = cell.run_one({**c, "t_max": 1e4}, 0)[0]  # the pipeline's collapse run reads the same time
    assert row["escape_eps"] == eps and row["escape_time"] == pytest.approx(te, rel=1e-6)


def test_gaussian_k2_first_merge_slope_matches_reduced_ode():
    """The user's k = 2 mixture (components 1.2 rad apart, σ = 0.05, n = 64, d = 3, USA, β = 10–30,
    8 seeds): the fitted slope c of ln T_first = a + cβ + b ln β is the reduced two-cluster ODE's
    for D = 1.2 → θ_c within 5 % (stragglers reported as first merges had given 0.50 against 0.65)."""
    base = dict(init="gaussian", model="usa", k=2, sigma=0.05, d=3, n=64, spacing=1.2, t_max=1e30)
    betas = [10.0, 15.0, 20.0, 25.0, 30.0]
    b_obs, log_t = [], []
    for b in betas:
        for s in range(8):
            row = cell.run_one({**base, "beta": b}, s)[0]
            assert row["status"] == "ok" and row["n_clusters_initial"] == 2 and row["n_merges"] == 1
            b_obs.append(b)
            log_t.append(np.log(row["first_merge_time"]))
    ode = _ols_slope(betas, np.log([two_cluster_merge_time(1.2, 0.1, b, 32, 32, 64, "usa") for b in betas]))
    assert _ols_slope(b_obs, log_t) == pytest.approx(ode, rel=0.05)


@pytest.mark.parametrize("d", [2, 3])
def test_paper_gaussian_sweep_starts_with_k_clusters(d):
    """config/paper.yaml's gaussian sweep (σ = 0.1, n = 128, k = 4, spacing 0.8): 6–15 single-linkage
    clusters at t = 0, but exactly k macroscopic ones; the stragglers show up as absorptions."""
    base = dict(init="gaussian", k=4, n=128, d=d, sigma=0.1, spacing=0.8, r=1.0, t_max=1e60)
    absorbed = 0
    for beta in (10.0, 20.0):
        for s in range(2):
            row, ev, lt, tr = cell.run_one({**base, "beta": beta}, s)
            assert row["status"] == "ok" and row["n_clusters_initial"] == 4, row
            assert row["n_merges"] == 3 and not row["censored"]
            assert (ev.loc[ev["kind"] == "merge", ["mass_a", "mass_b"]].to_numpy() >= row["min_mass"]).all()
            assert tr["n_clusters"].iloc[0] == 4 and tr["n_components"].iloc[0] >= 4
            absorbed += row["n_absorptions"]
    assert absorbed > 0


def test_default_min_mass_per_family_and_bad_values():
    d = cell.default_min_mass
    assert d(dict(init="caps", n=120, k=12)) == pytest.approx(1 / 24)
    assert d(dict(init="gaussian", n=64, k=2, masses=[1, 3])) == pytest.approx(8 / 64)
    assert d(dict(init="uniform", n=64)) == pytest.approx(3 / 64)
    assert d(dict(init="uniform", n=2000)) == pytest.approx(0.01)
    assert d(dict(init="caps", n=64, k=4, min_mass=0.2)) == 0.2
    for bad, match in [(0.0, r"min_mass must be in \(0, 1\)"), (1.0, r"min_mass must be in \(0, 1\)"),
                       (0.3, "exceeds the largest cap/component mass fraction 0.25")]:
        with pytest.raises(ValueError, match=match):
            cell.validate_cell(dict(init="caps", n=64, k=4, min_mass=bad))


@pytest.mark.parametrize("kwargs,match", [
    (dict(min_mass=0.0), "min_mass must be in"),
    (dict(min_mass=1.0), "min_mass must be in"),
    (dict(min_mass="x"), "min_mass must be a number"),
    (dict(min_mass=0.6, cap_centres=np.eye(3)[:2], cap_eps=0.1, cap_labels=[0, 1]), "exceeds the largest"),
    (dict(max_wall_seconds=0.0), "max_wall_seconds"),
    (dict(max_steps=0), "max_steps"),
])
def test_simulate_rejects_bad_measurement_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(np.eye(3)[:2], beta=1.0, **kwargs)


# --------------------------------------------------------------------------------------
# engine faults end the run (issue 15.4)
# --------------------------------------------------------------------------------------

def _two_caps():
    w = initial.great_circle_centres(2, 3, spacing=1.0)
    return initial.caps(8, 3, 2, 1e-5, np.random.default_rng(3), centres=w).x


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mass", [1e-320, 1e308])
def test_non_finite_field_at_t0_fails_fast(mass, engine):
    """Masses 1e-320 (1/n overflows) or 1e308 (n overflows): the field is NaN at t = 0. This hung
    (> 100 s) in the rejection loop; now it stops at once."""
    simulate(_two_caps(), beta=10.0, t_max=1.0, engine=engine)  # compile (or load) outside the timing
    cpu = time.process_time()
    res = simulate(_two_caps(), beta=10.0, masses=np.full(8, mass), max_steps=100, engine=engine)
    assert time.process_time() - cpu < 2.0
    assert res.status == "failed" and res.reason.startswith("non-finite field at t=0"), res.reason
    assert res.stats["n_steps"] + res.stats["n_rejected"] <= 1


@pytest.fixture
def faulty_field(monkeypatch):
    """``inject(engine, n_calls, change)``: the engine's field as is for its first n_calls evaluations
    inside steps, then ``change(v)``. numpy: ``simulate.velocity`` is replaced. numba: the compiled
    step cannot call Python, so its source runs in the interpreter (``dop853_step.py_func``: the
    same code, checks and controller) with the compiled field wrapped; the compiled fault checks
    themselves are tested without wrapping (the tests above and below, and the stepper tests)."""
    def inject(engine, n_calls, change):
        calls = {"n": 0}
        if engine == "numpy":
            original = SIM.velocity

            def velocity(*args, **kwargs):
                calls["n"] += 1
                v = original(*args, **kwargs)
                return change(v) if calls["n"] > n_calls else v
            monkeypatch.setattr(SIM, "velocity", velocity)
            return
        from attention_dynamics.engine import kernels

        kernels.warm_up()  # every compiled caller of the field is compiled before the field is wrapped
        original = kernels.field

        def field(y, m, d, mass, beta, usa, exact, normalise, out, *work):
            calls["n"] += 1
            original(y, m, d, mass, beta, usa, exact, normalise, out, *work)
            if calls["n"] > n_calls:
                out[:] = change(out)
        monkeypatch.setattr(kernels, "field", field)
        monkeypatch.setattr(kernels, "dop853_step", kernels.dop853_step.py_func)
    return inject


@pytest.mark.parametrize("engine", ENGINES)
def test_non_finite_field_later_fails(faulty_field, engine):
    faulty_field(engine, 200, lambda v: v * np.nan)
    res = simulate(_two_caps(), beta=10.0, engine=engine)
    assert res.status == "failed" and "non-finite" in res.reason, res.reason
    assert res.t_end > 0 and len(res.trajectory) >= 1


@pytest.mark.parametrize("engine", ENGINES)
def test_step_size_underflow_fails(faulty_field, engine):
    """A field that jumps by 1e12 at random from some step on: no step size passes the error test
    before it drops below the float spacing of t."""
    rng = np.random.default_rng(0)
    faulty_field(engine, 200, lambda v: v + 1e12 * rng.standard_normal(v.shape))
    res = simulate(_two_caps(), beta=10.0, engine=engine)
    assert res.status == "failed" and "Required step size is less than spacing" in res.reason, res.reason


@pytest.mark.parametrize("engine", ENGINES)
def test_max_steps_counts_rejected_attempts(faulty_field, monkeypatch, engine):
    """max_steps bounds accepted + rejected attempts over all restarts; n_steps counts the accepted
    ones (counted here independently, at the stepper) and n_rejected the others."""
    rng = np.random.default_rng(1)
    faulty_field(engine, 200, lambda v: v + 1e-2 * rng.standard_normal(v.shape))
    accepted = {"n": 0}
    stepper = PredictiveDOP853 if engine == "numpy" else CompiledDOP853
    step = stepper.step

    def counting_step(self):
        msg = step(self)
        accepted["n"] += self.status != "failed"
        return msg
    monkeypatch.setattr(stepper, "step", counting_step)
    res = simulate(_two_caps(), beta=10.0, max_steps=60, engine=engine)
    st = res.stats
    assert res.status == "failed" and res.reason.startswith("max_steps=60 reached at t="), res.reason
    assert st["n_steps"] == accepted["n"] and st["n_rejected"] > 0  # rejected attempts counted
    assert st["n_steps"] + st["n_rejected"] == 60


@pytest.mark.parametrize("engine", ENGINES)
def test_wall_clock_limit(faulty_field, engine):
    faulty_field(engine, 0, lambda v: (time.sleep(0.005), v)[1])
    t0 = time.perf_counter()
    res = simulate(_two_caps(), beta=10.0, max_wall_seconds=0.2, engine=engine)
    assert time.perf_counter() - t0 < 1.5
    assert res.status == "failed" and res.reason.startswith("max_wall_seconds=0.2 exceeded at t="), res.reason


def test_stepper_stops_on_a_non_finite_field():
    """The solver itself: a NaN field gives a NaN initial step, on which the rejection loop never
    reached h < min_step; now step() fails at once."""
    solver = PredictiveDOP853(lambda t, y: y * np.nan, 0.0, np.ones(3), 10.0)
    assert solver.step() == NON_FINITE_STEP
    assert solver.status == "failed" and solver.n_attempts == 0
    solver = PredictiveDOP853(lambda t, y: np.where(t > 0, np.nan, -y), 0.0, np.ones(3), 10.0)
    assert solver.step() == NON_FINITE_ERROR and solver.n_attempts == 1


@pytest.mark.skipif(not numba_available(), reason="needs numba")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_compiled_stepper_stops_on_a_non_finite_field():
    """The same checks compiled: a NaN field at the start (masses 1e-320: 1/n overflows) gives a NaN
    initial step; a state that turns NaN (the field is then NaN inside the attempt) fails the attempt."""
    x = _two_caps()
    solver = CompiledDOP853(x.shape, np.full(8, 1e-320), 10.0, "usa", False, 0.0, x.ravel(), 10.0)
    assert not np.isfinite(solver.f).all()
    assert solver.step() == NON_FINITE_STEP
    assert solver.status == "failed" and solver.n_attempts == 0
    solver = CompiledDOP853(x.shape, np.ones(8), 10.0, "usa", False, 0.0, x.ravel(), 10.0, first_step=0.1)
    solver.y[0] = np.nan
    assert solver.step() == NON_FINITE_ERROR and solver.n_attempts == 1 and solver.n_rejected == 0


@pytest.mark.parametrize("model", ["usa", "sa"])
def test_guard_lower_bound_never_exceeds_the_join_time(model):
    """The collapse guard skips the quadrature when a closed-form lower bound already exceeds the
    guard time: that bound must lie below the reduced-ODE join time for every gap, β and masses."""
    from attention_dynamics.engine.simulate import _join_time_lower_bound
    from attention_dynamics.theory.twocluster import two_cluster_merge_time

    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(200):
        beta = float(rng.uniform(0.5, 80.0))
        D = float(rng.uniform(0.11, 3.0))
        m_a, m_b = (float(v) for v in rng.integers(1, 40, size=2))
        n = m_a + m_b + float(rng.integers(0, 40))
        args = (D, 0.1, beta, m_a, m_b, n if model == "usa" else m_a + m_b, model)
        with np.errstate(over="ignore"):
            exact = two_cluster_merge_time(*args)
        lb = _join_time_lower_bound(*args)
        assert lb <= exact * (1 + 1e-12), (args, lb, exact)
        ratios.append(lb / exact)
    assert np.median(ratios) > 0.05  # and it is not vacuous: typically within a small factor
