"""Paper reproductions: GKPR24 staircase, BPA24 emergence, GLPR23 phase diagram, summary."""
import json

import numpy as np
import pandas as pd
import pytest

from attention_dynamics import initial
from attention_dynamics.engine.clusters import single_linkage_labels
from attention_dynamics.reproductions import (
    plot_emergence,
    authors_initial_angles,
    authors_staircase,
    circle_components,
    components,
    degree_power,
    emergence_cells,
    emergence_run,
    formation,
    linear_selection,
    logtime_staircase,
    potential_maxima,
    potential_on_circle,
    phase_diagram,
    reproductions_config,
    staircase_tables,
    staircase_theory,
    summary_markdown,
    summary_rows,
    headline,
    write_summary,
)
from attention_dynamics.reproductions.staircase import _tangential_gradient
from attention_dynamics.theory.gegenbauer import l_star
from attention_dynamics.theory.twocluster import two_cluster_merge_time

# ----------------------------------------------------------------------------- staircase


def test_authors_configuration_and_closest_pair_theory():
    th = authors_initial_angles()
    u = np.log(2000) / np.sqrt(2000)
    assert th == pytest.approx(0.5 * u * np.array([0, 0.5, 2, 4, 7]), rel=1e-15)
    t = staircase_theory(th)
    assert t["merged"].tolist() == ["{1,2}", "{1,2,3}", "{4,5}", "{1,2,3,4,5}"]
    assert t["level_after"].to_numpy() * 25 == pytest.approx([7, 11, 13, 25])
    # gaps by hand: centre of {1,2} at u/8; {1,2,3} at (2·u/8 + u)/3; {4,5} at 11u/4
    c12, c123, c45 = u / 8, (2 * u / 8 + u) / 3, 11 * u / 4
    assert t["gap"].to_numpy() == pytest.approx([u / 4, u - c12, 1.5 * u, c45 - c123], rel=1e-12)
    dur = t["gap"] * np.sqrt(t["mass_a"] * t["mass_b"] / (t["mass_a"] + t["mass_b"]))
    assert t["arclength_end"].to_numpy() == pytest.approx(np.cumsum(dur))


def test_tangential_gradient_is_the_authors_grad_usa():
    """Reference: the authors' grad_USA, g_i = (1/n²) Σ_j −sin(θ_i−θ_j) e^{β(cos(θ_i−θ_j)−1)}."""
    rng = np.random.default_rng(3)
    th = rng.uniform(0, 0.6, 5)
    for beta in (3.0, 500.0):
        diff = th[:, None] - th[None, :]
        ref = (-np.sin(diff) * np.exp(beta * (np.cos(diff) - 1))).sum(axis=1) / 25
        got = _tangential_gradient(th, np.ones(5), beta)
        assert np.max(np.abs(got - ref)) < 1e-15 + 1e-12 * np.max(np.abs(ref))
    # weighted form: a point of mass 2 == two coincident particles
    th3 = np.array([0.0, 0.0, 0.3])
    g_full = _tangential_gradient(th3, np.ones(3), 50.0)
    g_w = _tangential_gradient(np.array([0.0, 0.3]), np.array([2.0, 1.0]), 50.0)
    assert g_w == pytest.approx(g_full[1:], rel=1e-13)


def test_authors_staircase_plateaus_order_and_end_times():
    curve, merges = authors_staircase(4000.0, record_every=50)
    assert merges["merged"].tolist() == ["{1,2}", "{1,2,3}", "{4,5}", "{1,2,3,4,5}"]
    assert merges["level"].to_numpy() == pytest.approx([7 / 25, 11 / 25, 13 / 25, 1.0], abs=1e-3)
    # Ē never decreases (gradient ascent with small steps)
    assert np.all(np.diff(curve["energy"].to_numpy()) > -1e-12)
    # end-times: only the merging pair moves, at combined speed ln β √((m_a+m_b)/(m_a m_b))
    th = staircase_theory(authors_initial_angles())
    pred = th["arclength_end"].to_numpy() / np.log(4000.0)
    assert merges["tau"].to_numpy() == pytest.approx(pred, rel=0.03)


def test_staircase_tables_summary_columns():
    steps, curves = staircase_tables([3000.0], logtime=False, record_every=100)
    assert steps["order_ok"].all()
    assert steps["level_error"].abs().max() < 1e-3
    assert steps["end_rel_error"].abs().max() < 0.01
    assert set(curves["parametrisation"]) == {"arclength"}


def test_logtime_staircase_matches_two_cluster_quadrature():
    """Independent reference: the two-point-cluster merge time (one quadrature per step)."""
    beta, theta_c = 2000.0, 0.01
    tr, ev, res = logtime_staircase(beta, theta_c=theta_c)
    assert res.status == "ok" and len(ev) == 4
    th = staircase_theory(authors_initial_angles())
    t_cum = np.cumsum([two_cluster_merge_time(r.gap, theta_c, beta, r.mass_a, r.mass_b, n=5, model="usa")
                       for r in th.itertuples()])
    # merges 2..4 are exponentially separated: the isolated-pair quadrature is accurate up to
    # the pull of the third cluster, e^{−β(cos D_k − cos D_other)} ≈ 1e-3 here
    assert ev["time"].to_numpy()[1:] == pytest.approx(t_cum[1:], rel=5e-3)
    assert (ev["mass_a"] * 5).tolist() == [1.0, 2.0, 1.0, 3.0]
    # step positions approach 1 − cos D from below, within O(ln(β)/β)
    assert np.all(np.abs(ev["s"].to_numpy() - th["s_step"].to_numpy()) < 5 * np.log(beta) / beta)
    assert tr["energy"].iloc[-1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- clusters


def test_circle_components_equal_single_linkage():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(2, 50))
        x = initial.uniform(n, 2, rng).x
        th = float(rng.uniform(0.05, 1.5))
        lab, masses, ext = circle_components(x, th)
        count, ref = single_linkage_labels(x, th)
        assert masses.size == count
        for k in range(count):  # same partition
            assert np.unique(ref[lab == k]).size == 1
            xc = x[lab == k]
            diam = np.arccos(np.clip((xc @ xc.T).min(), -1, 1))
            if ext[k] < np.pi - 1e-9:
                assert abs(diam - ext[k]) < 1e-6
        assert masses.sum() == n


def test_components_d3_extents():
    rng = np.random.default_rng(2)
    x = np.concatenate([initial.sample_cap(np.eye(3)[i], 1e-3, 30, rng) for i in range(3)])
    lab, masses, ext = components(x, 0.2)
    assert sorted(masses) == [30, 30, 30]
    assert np.all(ext < 2 * np.arccos(1 - 1e-3) + 1e-9)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_degree_power_is_the_gegenbauer_pair_average(d):
    from scipy.special import eval_chebyt, eval_gegenbauer

    rng = np.random.default_rng(d)
    x = initial.uniform(150, d, rng).x
    g = np.clip(x @ x.T, -1, 1)
    if d == 2:
        ref = [eval_chebyt(l, g).mean() for l in range(1, 8)]
    else:
        a = (d - 2) / 2
        ref = [(eval_gegenbauer(l, a, g) / eval_gegenbauer(l, a, 1.0)).mean() for l in range(1, 8)]
    assert degree_power(x, 7) == pytest.approx(ref, abs=1e-13)


# ----------------------------------------------------------------------------- emergence


def test_formation_counts_planted_clusters():
    """Five planted groups on the circle: formation is reached quickly with count 5."""
    rng = np.random.default_rng(0)
    centres = 2 * np.pi * np.arange(5) / 5
    th = np.repeat(centres, 60) + rng.normal(0, 0.15, 300)
    x = np.stack([np.cos(th), np.sin(th)], 1)
    out = formation(x, 10.0)
    assert out["status"] == "ok"
    assert out["n_clusters"] == 5 and out["n_clusters_peak"] == 5
    assert out["tight_mass"] >= 0.9
    assert 0 < out["t_formation"] < 50


def _angles_to_x(th):
    return np.stack([np.cos(th), np.sin(th)], 1)


@pytest.mark.parametrize("beta", [1.0, 17.0, 300.0])
def test_potential_on_circle_is_the_kernel_sum(beta):
    rng = np.random.default_rng(int(beta))
    th, mass = rng.uniform(0, 2 * np.pi, 300), rng.uniform(0.5, 2.0, 300)
    grid, phi = potential_on_circle(th, beta, mass)
    ref = np.exp(beta * (np.cos(grid[:, None] - th[None, :]) - 1)) @ mass / mass.sum()
    assert np.max(np.abs(phi - ref)) < 1e-13


@pytest.mark.parametrize("l", range(1, 10))
def test_potential_maxima_counts_equally_spaced_clusters_plus_noise(l):
    """l tight clusters 2π/l apart plus 20 % uniform noise, at β with l*(β) = l (kernel width ~ the
    spacing/4.4): the potential has exactly l maxima, for every random rotation and noise draw."""
    beta = max(l * l / 2.0, 1.0)
    assert l_star(beta) == l
    rng = np.random.default_rng(l)
    for _ in range(5):
        th = np.concatenate([np.repeat(2 * np.pi * np.arange(l) / l, 180) + rng.normal(0, 0.02, 180 * l)
                             + rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi, 36 * l)])
        assert potential_maxima(_angles_to_x(th), beta) == l


def test_potential_maxima_smooth_modulation_and_flat_data():
    # density ∝ 1 + a cos(lθ) (deterministic quantiles): l maxima at any β where the kernel resolves 2π/l
    m = 4000
    for l, beta in [(3, 5.0), (6, 18.0), (9, 60.0)]:
        u = (np.arange(m) + 0.5) / m
        th = u * 2 * np.pi
        for _ in range(60):  # invert the CDF θ + (a/l) sin(lθ) = 2πu by Newton
            th -= (th + 0.3 / l * np.sin(l * th) - 2 * np.pi * u) / (1 + 0.3 * np.cos(l * th))
        assert potential_maxima(_angles_to_x(th), beta) == l
    # exactly uniform points: φ is constant up to round-off: the floor keeps the count finite and small
    th = 2 * np.pi * np.arange(512) / 512
    assert potential_maxima(_angles_to_x(th), 10.0) <= 512
    with pytest.raises(ValueError):
        potential_maxima(np.ones((5, 3)) / np.sqrt(3), 10.0)


def _first_passage_probabilities(beta, n, d, level, l_max):
    """Reference for linear_selection's dominant degree: P(l first to reach the level) by quadrature.

    n S_l(0) ~ Gamma(k_l, 1/k_l), k_l = N_l/2; S_l(t) = S_l(0) e^{2λ_l t}; T_l = ln(A/(n S_l(0)))/(2λ_l),
    A = n·level; P(T_l > t) = P(n S_l(0) < A e^{−2λ_l t}) = gammainc(k_l, k_l A e^{−2λ_l t}).
    """
    from scipy import integrate, special

    from attention_dynamics.theory.gegenbauer import growth_rate
    from attention_dynamics.reproductions.selection import _degree_multiplicity

    ls = np.arange(1, l_max + 1)
    lam = growth_rate(beta, ls, d, "gkpr24")
    k = _degree_multiplicity(ls, d) / 2
    big = n * level
    t_end = 10 * np.log(big) / (2 * lam.max())
    ts = np.linspace(0, t_end, 40001)
    x = k[None, :] * big * np.exp(-2 * lam[None, :] * ts[:, None])
    surv = special.gammainc(k, x)
    dens = np.exp(k * np.log(x) - x - special.gammaln(k)) * 2 * lam  # −d/dt surv
    out = []
    for i in range(l_max):
        others = np.prod(np.delete(surv, i, axis=1), axis=1)
        out.append(integrate.trapezoid(dens[:, i] * others, ts))
    return np.array(out)


@pytest.mark.parametrize("beta,d", [(8.0, 2), (30.0, 2), (5.0, 3)])
def test_linear_selection_degree_is_the_first_passage_law(beta, d):
    n, level, l_max = 2000, 0.05, 14
    ref = _first_passage_probabilities(beta, n, d, level, l_max)
    assert ref.sum() == pytest.approx(1.0, abs=1e-3)
    pred = linear_selection(beta, n, d, power_level=level, l_max=l_max, samples=20000)
    got = pred["degree"].reindex(np.arange(1, l_max + 1), fill_value=0.0).to_numpy()
    assert np.max(np.abs(got - ref)) < 0.015  # MC standard error ≤ 0.0035
    assert (pred["count"] is None) == (d != 2)


def test_linear_selection_sharpens_with_n_and_is_deterministic():
    a = linear_selection(12.5, 2000, samples=4000)
    b = linear_selection(12.5, 2000, samples=4000)
    assert a["degree"].equals(b["degree"]) and a["count"].equals(b["count"])
    assert a["count"].sum() == pytest.approx(1.0) and a["degree"].sum() == pytest.approx(1.0)
    big = linear_selection(12.5, 10**12, samples=4000)  # ln(n·level) ≈ 24.6: selection nearly complete
    assert big["degree"].idxmax() == 5 and big["degree"][5] > 0.6 > a["degree"][5]
    assert big["count"].idxmax() == 5 and big["count"][5] > a["count"][5]
    assert big["t_mean"] > a["t_mean"]


def test_formation_reads_a_planted_linear_mode():
    """Uniform data plus a small cos(5θ) modulation at β = 12.5 (l* = 5): the linear phase ends when
    S_5 = |ẑ_5|² has grown from (a/2)² to 0.05, at t ≈ ln(0.05/(a/2)²)/(2λ_5), with 5 maxima of φ."""
    from attention_dynamics.theory.gegenbauer import growth_rate

    m, a = 1000, 0.2
    u = (np.arange(m) + 0.5) / m
    th = u * 2 * np.pi
    for _ in range(60):
        th -= (th + a / 5 * np.sin(5 * th) - 2 * np.pi * u) / (1 + a * np.cos(5 * th))
    out = formation(_angles_to_x(th), 12.5, power_level=0.05)
    assert out["dominant_degree"] == 5 and out["n_clusters_linear"] == 5
    assert out["power_dominant"] == pytest.approx(0.05, rel=2e-3)
    t_lin = np.log(0.05 / (a / 2) ** 2) / (2 * growth_rate(12.5, 5, 2, "gkpr24"))
    assert out["t_dominant"] == pytest.approx(t_lin, rel=0.05)
    assert out["status"] == "ok" and out["n_clusters"] == 5 and out["t_formation"] > out["t_dominant"]


def test_emergence_run_small_uniform_system():
    row = emergence_run(10.0, 2, 400, 0, history_t_max=1e4)
    assert row["status"] == "ok"
    assert row["l_star"] == 4
    assert 1 <= row["n_clusters_formation"] <= 12 and 1 <= row["n_clusters_peak"] <= 12
    assert 1 <= row["n_clusters_linear"] <= 12 and row["agree"] == (row["n_clusters_linear"] == 4)
    assert 0 < row["t_dominant"] < row["t_formation"] and row["power_dominant"] == pytest.approx(0.05, rel=1e-2)
    assert 0 < row["p_lin_count_l_star"] < 1 and row["lin_degree_dist"].count(":") >= 2
    assert row["t_peak"] <= row["t_formation"]
    assert 0.5 < row["t_ratio"] < 5
    counts = [int(c.split("@")[0]) for c in row["later_counts"].split(";")]
    assert counts[0] == row["n_clusters_formation"] and counts == sorted(counts, reverse=True)
    assert row["n_clusters_final"] == counts[-1]


def test_emergence_sparse_initial_data_is_flagged():
    # 300 points on S² are mostly isolated at θ_c = 0.1: the formation criterion cannot apply
    row = emergence_run(5.0, 3, 300, 0)
    assert row["status"] == "sparse" and "θ_c" in row["reason"]


def test_emergence_same_initial_data_at_every_beta():
    a = emergence_run(5.0, 2, 200, 3)
    b = emergence_run(5.0, 2, 200, 3)
    assert a["t_formation"] == b["t_formation"] and a["n_clusters_formation"] == b["n_clusters_formation"]


# ----------------------------------------------------------------------------- phase diagram


def test_phase_diagram_small():
    from attention_dynamics.pipeline.cell import seed_sequence

    times = np.linspace(0, 30, 7)
    df = phase_diagram([0.5, 6.0], times, n=8, n_systems=3)
    assert len(df) == 14 and df["fraction"].between(0, 1).all()
    # t = 0 equals the direct count on the same initial data
    frac0 = []
    for s in range(3):
        x = initial.uniform(8, 2, np.random.default_rng(seed_sequence({"init": "uniform", "d": 2, "n": 8}, s))).x
        g = (x @ x.T)[np.triu_indices(8, 1)]
        frac0.append(np.mean(g > 0.999))
    assert df[(df["t"] == 0)]["fraction"].to_numpy() == pytest.approx([np.mean(frac0)] * 2)
    # small β: SA clusters fully by t = 30 (GLPR23: fast global clustering)
    assert df[(df["beta"] == 0.5) & (df["t"] == 30)]["fraction"].iloc[0] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- config / summary


def test_reproductions_config_defaults_and_errors():
    cfg = reproductions_config(None)
    assert cfg["staircase"]["betas"] == [500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0]
    assert len(cfg["phase_diagram"]["betas"]) == 30
    with pytest.raises(ValueError, match="reproductions.emergence.seedz"):
        reproductions_config({"emergence": {"seedz": 3}})
    with pytest.raises(ValueError, match="reproductions.emergence.power_level"):
        reproductions_config({"emergence": {"power_level": 0.0}})
    with pytest.raises(ValueError, match="reproductions.phase_diagram.n_systems"):
        reproductions_config({"phase_diagram": {"n_systems": 0}})
    cells = emergence_cells({"emergence": {"d": [2, 3], "betas": [0.3, 5.0]}})
    assert [c["path"] for c in cells] == ["d2/n2000/beta0.3", "d2/n2000/beta5", "d3/n2000/beta0.3",
                                          "d3/n2000/beta5"]
    # n per dimension: a convergence study in d = 2 next to d = 3 at one n; the JSON round trip
    # of the rules (string keys) gives the same cells
    spec = {"emergence": {"d": [2, 3], "n": {2: [2000, 20000], 3: 500}, "betas": [5.0]}}
    cells = emergence_cells(spec)
    assert [(c["d"], c["n"], c["path"]) for c in cells] == [(2, 2000, "d2/n2000/beta5"), (2, 20000, "d2/n20000/beta5"),
                                                           (3, 500, "d3/n500/beta5")]
    assert emergence_cells(json.loads(json.dumps(reproductions_config(spec)))) == cells
    assert reproductions_config({"emergence": {"d": [2, 3], "n": [300, 600]}})["emergence"]["n"] == {
        2: [300, 600], 3: [300, 600]}
    for bad, key in [({"n": {4: 2000}}, r"reproductions\.emergence\.n\.4: not one of the dimensions"),
                     ({"d": [2, 3], "n": {2: 2000}}, r"reproductions\.emergence\.n\.3: missing"),
                     ({"n": [2000, 2000]}, r"reproductions\.emergence\.n: repeated"),
                     ({"n": 1.5}, r"reproductions\.emergence\.n: invalid value 1\.5"),
                     ({"n": {2: [True]}}, r"reproductions\.emergence\.n\.2: invalid value")]:
        with pytest.raises(ValueError, match=key):
            reproductions_config({"emergence": bad})


def _fake_tables():
    fits = pd.DataFrame([dict(sweep="pairs", model="usa", init="caps", d=2, n=8, k=2, quantity="first_merge",
                              status="ok", c=0.45, c_lo=0.44, c_hi=0.47, theory="1 - cos D_min",
                              theory_slope=1 - np.cos(1.0), slope_ratio=0.45 / (1 - np.cos(1.0)),
                              ode_slope=0.455, n_obs=9, n_censored=0)])
    runs = pd.DataFrame(dict(sweep="pairs", censored=False, t_max=1e12, status=["ok", "ok", "ok"],
                             escape_gamma=[0.1, 0.2, -0.1],
                             escape_time=[10.0, np.nan, 0.1], escape_bound=[5.0, 3.0, 1.0], t_end=[20, 100, 1]))
    key = dict(sweep="s", cell_id="c", beta=10.0, seed=0)
    lifetimes = pd.DataFrame([dict(**key, plateau=1, n_clusters=2, t_open=10.0, t_close=1000.0, lifetime=990.0,
                                   censored=False, sum_mass_sq=0.5)])
    trajectories = pd.DataFrame([dict(**key, time=t, energy=e) for t, e in [(1, 0.3), (50, 0.49), (100, 0.495),
                                                                            (5000, 1.0)]])
    emergence = pd.DataFrame([dict(d=2, n=2000, beta=10.0, seed=s, l_star=4, n_clusters_linear=c,
                                   n_clusters_formation=c, n_clusters_peak=c, dominant_degree=4, t_c_pred=42.0,
                                   t_ratio=1.6, status="ok", agree=c == 4, lin_count_dist="3:0.2;4:0.6;5:0.2",
                                   lin_degree_dist="4:0.5;5:0.5") for s, c in enumerate([4, 4, 5])])
    return dict(fits=fits, runs=runs, lifetimes=lifetimes, trajectories=trajectories, emergence=emergence)


def test_summary_rows_and_markdown(tmp_path):
    rows = summary_rows(**_fake_tables())
    text = summary_markdown(rows)

    def row(prefix):
        return next(r for r in rows if r["claim"].startswith(prefix))

    assert "theory inside CI" in row("first-merge time slope")["agreement"]  # 1 − cos 1 = 0.4597 ∈ CI
    assert "1/1 observed escapes ≥ T₂" in row("escape time ≥")["measured"]
    assert "1 censored runs, 1 of them ran past T₂" in row("escape time ≥")["measured"]
    assert "holds in every run" in row("escape time ≥")["agreement"]
    em = [r for r in rows if r["claim"].startswith("clusters emerging")][0]
    assert "67% = l* (theory at this n 60%" in em["agreement"] and "most frequent" not in em["agreement"]
    assert "observed mode [4] = finite-n prediction" in em["agreement"] and "most probable 4" in em["theory"]
    assert not any("most frequent count" in r["claim"] for r in rows)  # that verdict is gone (docs/science.md §6)
    # finite-n target (iii): the count at formation as a distribution next to l*, with its rule
    f3 = row("(iii) d = 2, n = 2000")
    assert "100% of runs in [l* − 2, l* + 1]" in f3["measured"] and f3["verdict"] == "qualitative"
    assert "count = l* in 2 runs, theory expects 1.8" in row("d = 2, n = 2000: counts against the finite-n")["measured"]
    pl = [r for r in rows if r["claim"].startswith("plateau height")][0]
    assert "= 0.005" in pl["measured"] and "100% within 0.01" in pl["agreement"]
    # staircase and phase tables were not given: not part of this run, no rows for them
    assert {r["topic"] for r in rows} == {"runs", "first_merge", "plateau", "escape_bound", "emergence", "finite_n"}
    # layout: the headline (one line per claim with its verdict), then the details, every row in them
    head = text.split("## Headline\n\n")[1].split("\n\n")[0].splitlines()
    assert head == [
        "- **Simulations**: all finished. 3 simulations in 1 sweep: 3 ok, 0 failed, 0 censored at t_max",
        "- **First-merge time T ∝ exp(cβ): rate c against 1 − cos D (D the smallest gap)**: agrees. ratio 0.979; "
        "theory inside CI; ODE slope inside CI",
        "- **Energy plateaus at Ē = Σ m² (the sum of the clusters' squared masses)**: agrees. 100% within 0.01",
        "- **Escape time above GKPR24's lower bound T₂ = (ε/n)·exp((1 − α)β) when γ > 0**: agrees. holds in every run",
        "- **BPA24: l* clusters emerge from uniform data**: agrees. consistent",
        "- **BPA24 at finite n: growth rates λ_l, the dominant degree against the finite-n theory, the count at "
        "formation**: agrees. 2 checks: 1 agree, 1 qualitative (see the figure)"]
    details = text.split("## Details")[1]
    for r in rows:
        assert (r["claim"] if "cells" not in r else str(list(r["cells"].values())[-1])) in details, r
    assert max(len(line) for line in text.splitlines() if line.startswith("|")) < 300  # table rows stay short
    out, html = tmp_path / "summary.md", tmp_path / "summary.html"
    write_summary(out, html, **_fake_tables())
    assert out.read_text().startswith("# Summary")
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<table") == 8 and "<h2>Headline</h2>" in page


def test_summary_verdicts_say_when_a_deviation_is_the_expected_finite_beta_one():
    """Theory outside the CI but the exact finite-β ODE slope inside it: 'expected', and the headline says so;
    outside both: 'differs'; an escape slope above 1 − α (the rate of a lower bound): 'expected'."""
    base = _fake_tables()["fits"].iloc[0].to_dict()
    fits = pd.DataFrame([{**base, "c": 1.02, "c_lo": 1.015, "c_hi": 1.025, "theory_slope": 1.0, "ode_slope": 1.019,
                          "slope_ratio": 1.02},
                         {**base, "c": 1.05, "c_lo": 1.045, "c_hi": 1.055, "theory_slope": 1.0, "ode_slope": 1.019,
                          "slope_ratio": 1.05},
                         {**base, "quantity": "escape", "theory": "1 - alpha", "c": 1.0, "c_lo": 0.995, "c_hi": 1.005,
                          "theory_slope": 0.98, "ode_slope": np.nan, "slope_ratio": 1.02}])
    rows = summary_rows(fits=fits)
    assert [r["verdict"] for r in rows] == ["expected", "differs", "expected"]
    assert rows[0]["agreement"].endswith("ODE slope inside CI: the finite-β correction, expected")
    assert rows[2]["agreement"].endswith("c above it, as a lower bound allows")
    head = dict((t.split(":")[0], (v, d)) for t, v, d in headline(rows))
    assert head["First-merge time T ∝ exp(cβ)"] == (
        "differs", "2 fit groups: 1 differ (see the details), 1 differ only as expected at finite β or finite n")
    assert head["Escape time T ∝ exp(cβ)"][0] == "agrees up to the expected finite-β / finite-n deviation"
    # no fit: reported, not dropped
    nofit = summary_rows(fits=fits.assign(status="too_few_beta", c=np.nan))
    assert {r["verdict"] for r in nofit} == {"no fit"} and all("no fit (too_few_beta)" in r["measured"] for r in nofit)


def _fake_emergence(counts_by_beta, seeds=16, dist="7:0.3;8:0.4;9:0.3"):
    rows = []
    for beta, (ls, counts) in counts_by_beta.items():
        for s, c in enumerate(counts):
            rows.append(dict(d=2, n=2000, beta=beta, seed=s, l_star=ls, n_clusters_linear=c, n_clusters_formation=c,
                             n_clusters_peak=c, dominant_degree=ls, t_c_pred=50.0, t_ratio=1.6, status="ok",
                             lin_count_dist=dist, lin_degree_dist=dist))
    return pd.DataFrame(rows)


def test_summary_emergence_per_beta_rows_report_distributions_not_a_mode_verdict():
    """At finite n l* need not be the most frequent count (docs/science.md): the per-β rows compare the
    observed mode with the finite-n prediction, and no row claims "l* most frequent at every β"."""
    em = _fake_emergence({32.0: (8, [8] * 6 + [7] * 5 + [9] * 5),
                          33.0: (8, [7] * 8 + [8] * 4 + [9] * 4),
                          28.5: (8, [7] * 10 + [8] * 6)})
    rows = summary_rows(emergence=em)
    assert not any("most frequent" in r["claim"] + r["measured"] + r["agreement"] for r in rows)
    fin = next(r for r in rows if r["claim"].startswith("d = 2, n = 2000: counts against the finite-n"))
    assert "count = l* in 16 runs, theory expects 19.2" in fin["measured"]
    per = {r["claim"].split("β=")[1]: r for r in rows if r["claim"].startswith("clusters emerging")}
    assert "observed mode [7] ≠ finite-n prediction 8" in per["33"]["agreement"]
    assert "observed mode [8] = finite-n prediction" in per["32"]["agreement"]
    # a table written before the linear-phase columns existed still gives a summary (formation counts)
    old = em.drop(columns=["n_clusters_linear", "lin_count_dist", "lin_degree_dist"])
    rows_old = summary_rows(emergence=old)
    assert not any("counts against the finite-n" in r["claim"] for r in rows_old)
    assert any(r["claim"].startswith("(iii) d = 2") for r in rows_old)


def test_summary_staircase_reports_first_plateau():
    """The first plateau is Ē(θ₀) (cross terms included): reported against 5/25 β by β, not hidden."""
    rows = []
    for beta, p0 in [(500.0, 0.2524), (4000.0, 0.2005)]:
        for k, (lev, merged) in enumerate([(0.28, "{1,2}"), (1.0, "{1,2,3,4,5}")], start=1):
            rows.append(dict(parametrisation="arclength", beta=beta, step=k, merged_theory=merged, order_ok=True,
                             level_theory=lev, level_error=1e-6, level_plateau_0=p0, end_rel_error=0.001,
                             end_measured=1.0, end_theory_nominal=1.0))
    out = summary_rows(staircase=pd.DataFrame(rows))
    levels = next(r for r in out if r["claim"].startswith("arclength: plateau levels"))
    assert levels["agreement"] == "100% of levels after a merge within 1e-3" and levels["verdict"] == "agrees"
    first = next(r for r in out if r["claim"] == "first plateau Ē(θ₀)")
    assert first["measured"] == "0.2524 (β = 500), 0.2005 (β = 4000)"
    assert first["agreement"] == "within 1e-3 of 5/25 at 1/2 β" and first["verdict"] == "expected"
    assert "cross terms" in first["note"]


def test_summary_emergence_several_n(tmp_path):
    """Several n in d = 2: per-n rows and a row on how the agreement with l* changes with n."""
    small = _fake_emergence({32.0: (8, [7] * 8 + [8] * 4 + [9] * 4), 33.0: (8, [7] * 9 + [8] * 7)})
    big = _fake_emergence({32.0: (8, [8] * 10 + [7] * 6), 33.0: (8, [8] * 12 + [9] * 4)}).assign(n=200000)
    em = pd.concat([small, big], ignore_index=True)
    rows = summary_rows(emergence=em)
    assert not any("most frequent count" in r["claim"] for r in rows)
    trend = next(r for r in rows if r["claim"].startswith("d = 2: agreement with l* as n grows"))
    assert "n = 2000: 34% of runs count l* (finite-n theory 40%)" in trend["measured"]  # 11/32
    assert "n = 200000: 69% of runs count l*" in trend["measured"]  # 22/32
    assert "(clusters at formation: 69% count l*)" in trend["measured"]
    assert trend["agreement"] == "the fraction counting l* rises with n"
    per = [r["claim"] for r in rows if r["claim"].startswith("clusters emerging")]
    assert per == [f"clusters emerging from uniform data, d=2, n={n}, β={b}" for n in (2000, 200000) for b in (32, 33)]
    out = [tmp_path / "e.png"]
    plot_emergence(em.assign(lin_count_mode=8, n_clusters_formation=em["n_clusters_linear"]), out)
    assert out[0].stat().st_size > 1000


def test_reproductions_schema_accepts_defaults_and_rejects_typos():
    import jsonschema

    from attention_dynamics.reproductions import REPRODUCTIONS_DEFAULTS, reproductions_schema

    schema = reproductions_schema()
    jsonschema.validate(REPRODUCTIONS_DEFAULTS, schema)
    jsonschema.validate({"emergence": {"d": 2, "betas": {"start": 1, "stop": 40, "num": 40}}}, schema)
    jsonschema.validate({"emergence": {"d": [2, 3], "n": {"2": [2000, 200000], "3": 2000}}}, schema)
    for bad in ({"n": 1}, {"n": {"two": 2000}}, {"n": [2000, 2000]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"emergence": bad}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"emergence": {"seedz": 3}}, schema)
