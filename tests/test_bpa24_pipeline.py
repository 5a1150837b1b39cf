"""BPA24 in the pipeline: the mean-field experiments (reproductions.meanfield), the finite-n targets with
particles (reproductions.growth), the d = 3 degree power, config, summary rows and figures.

References are computed another way: the d = 3 degree power against scipy's spherical harmonics and
the Legendre sum over the Gram matrix; the PDE's potential count against the particles' FFT of the
kernel sum; growth fits against synthetic spectra with known rates; the multinomial test against
the asymptotic χ² law; the noise's n_eff against Monte Carlo.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from attention_dynamics import initial
from attention_dynamics.reproductions import reproductions_config
from attention_dynamics.reproductions.config import meanfield_cells
from attention_dynamics.reproductions.emergence import emergence_cell, formation
from attention_dynamics.reproductions.growth import (EMERGENCE_GROWTH_COLUMNS, emergence_growth_table,
                                                     multinomial_gof, selection_tests, spectrum_growth_fits)
from attention_dynamics.reproductions.meanfield import (MEANFIELD_COLUMNS, MEANFIELD_EMERGENCE_COLUMNS,
                                                        MEANFIELD_PROFILE_COLUMNS, count_arcs_above, degree_powers,
                                                        effective_n, linear_phase_end, meanfield_noise_run,
                                                        meanfield_noise_table, meanfield_rates_table,
                                                        noise_initial_data, potential_peaks_circle,
                                                        single_mode_growth_rate)
from attention_dynamics.reproductions.selection import degree_power, potential_maxima, sphere_degree_power
from attention_dynamics.reproductions.summary import summary_rows
from attention_dynamics.theory.gegenbauer import growth_rate, l_star

# ----------------------------------------------------------------------------------------------
# d = 3 degree power: Legendre recurrence vs scipy's sph_harm_y (the previous implementation)
# ----------------------------------------------------------------------------------------------


def _degree_power_sph_harm_y(x, l_max):
    """The former d = 3 path of degree_power: S_l = 4π/(2l+1) Σ_m |(1/n) Σ_i Y_lm(x_i)|² with scipy."""
    polar = np.arccos(np.clip(x[:, 2], -1.0, 1.0))
    azim = np.arctan2(x[:, 1], x[:, 0])
    out = np.empty(l_max)
    for l in range(1, l_max + 1):
        ms = np.arange(-l, l + 1)
        y = special.sph_harm_y(l, ms[:, None], polar[None, :], azim[None, :])
        out[l - 1] = 4.0 * np.pi / (2 * l + 1) * float(np.sum(np.abs(y.mean(axis=1)) ** 2))
    return out


def _sphere_points(kind, n, rng):
    x = rng.standard_normal((n, 3))
    if kind == "clustered":
        x = x * 0.15 + np.array([0.3, -0.2, 1.0])
    if kind == "poles":
        x[: n // 3] = [0.0, 0.0, 1.0]
        x[n // 3: 2 * n // 3] = [0.0, 0.0, -1.0]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["uniform", "clustered", "poles"])
def test_sphere_degree_power_against_sph_harm_y_and_gram_legendre(kind):
    rng = np.random.default_rng(3)
    x = _sphere_points(kind, 400, rng)
    l_max = 24
    got = sphere_degree_power(x, l_max)
    ref = _degree_power_sph_harm_y(x, l_max)
    g = np.clip(x @ x.T, -1, 1)
    gram = np.array([special.eval_legendre(l, g).mean() for l in range(1, l_max + 1)])
    scale = ref.max()
    assert np.abs(got - ref).max() < 2e-14 * scale, np.abs(got - ref).max() / scale
    assert np.abs(got - gram).max() < 2e-13 * scale
    np.testing.assert_allclose(degree_power(x, l_max), got, rtol=0, atol=0)  # degree_power's d = 3 path
    # chunking over points does not change the sums beyond round-off
    np.testing.assert_allclose(sphere_degree_power(x, l_max, chunk=37), got, rtol=1e-12, atol=1e-17)


def test_sphere_degree_power_exact_values():
    """One point: S_l = P_l(1) = 1; two antipodal points: S_l = (1 + (−1)^l)/2; rotation invariance."""
    e = np.array([[0.6, 0.0, 0.8]])
    np.testing.assert_allclose(sphere_degree_power(e, 10), np.ones(10), atol=1e-14)
    a = np.array([[0.0, 0.6, 0.8], [0.0, -0.6, -0.8]])
    np.testing.assert_allclose(sphere_degree_power(a, 9), [(1 + (-1) ** l) / 2 for l in range(1, 10)], atol=1e-14)
    rng = np.random.default_rng(0)
    x = _sphere_points("clustered", 50, rng)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    np.testing.assert_allclose(sphere_degree_power(x @ q.T, 12), sphere_degree_power(x, 12), atol=1e-13)


# ----------------------------------------------------------------------------------------------
# Mean-field counting rules, initial data, linear phase
# ----------------------------------------------------------------------------------------------


def test_count_arcs_above():
    th = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    assert count_arcs_above(1 + 3 * np.cos(5 * th)) == 5
    assert count_arcs_above(1 + 0.5 * np.cos(5 * th)) == 0
    assert count_arcs_above(np.where(np.abs(th - 0.01) < 0.2, 5.0, 0.5)) == 1  # an arc across θ = 0


@pytest.mark.parametrize("beta,k", [(5.0, 3), (30.0, 7)])
def test_potential_peaks_of_an_empirical_measure_equal_the_particle_count(beta, k):
    """For the empirical measure of particles, K∗ρ is the particles' potential φ: the PDE rule (coefficients
    ive(l, β) ρ̂_l through our FFT) and potential_maxima (the particles' code path) give the same count."""
    from attention_dynamics.engine.dynamics import circle_kernel_modes
    from attention_dynamics.theory.meanfield_circle import empirical_modes_circle

    rng = np.random.default_rng(1)
    th = (2 * np.pi * rng.integers(0, k, 600) / k + 0.12 * rng.standard_normal(600)) % (2 * np.pi)
    c = empirical_modes_circle(th, circle_kernel_modes(beta).size - 1)
    x = np.stack([np.cos(th), np.sin(th)], axis=1)
    assert potential_peaks_circle(c, beta) == potential_maxima(x, beta) == k


def test_effective_n_is_the_inverse_initial_degree_power():
    """E S_l(0) = 1/n_eff for the seeded degrees (Monte Carlo over 400 noise draws, 5σ)."""
    rng = np.random.default_rng(0)
    for d, noise in [(2, 64), (3, 16)]:
        draws = 400
        p = np.array([degree_powers(_amplitudes(noise_initial_data(d, 0.01, noise, rng), d), d)[[1, 4, 9]]
                      for _ in range(draws)])
        mean = p.mean(axis=0) * effective_n(d, 0.01, noise)
        sd = p.std(axis=0) * effective_n(d, 0.01, noise) / np.sqrt(draws)
        assert np.all(np.abs(mean - 1) < 5 * sd), (d, mean, sd)


def _amplitudes(c, d):
    from attention_dynamics.theory.meanfield import make_discretisation

    disc = make_discretisation(d, 5.0, 40 if d == 2 else 32, "usa", "glpr23")
    return disc.mode_amplitudes(disc.coefficients_from(c))


def test_linear_phase_end_interpolates_and_flags_never():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([[1e-4, 2e-4], [1e-3, 5e-4], [1e-2, 2e-3], [0.1, 4e-3]])
    t_lin, deg, pw = linear_phase_end(t, p, 3e-3)
    assert deg == 1 and pw == 1e-2 and t_lin == pytest.approx(1 + np.log(3) / np.log(10), rel=1e-12)  # ln-linear
    assert linear_phase_end(t, p, 0.5)[1] == -1


# ----------------------------------------------------------------------------------------------
# Mean-field runs: growth rates, Fig. 4, d = 3
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d,tol", [(2, 1e-6), (3, 1e-4)])
def test_single_mode_growth_rate_rows(d, tol):
    df = meanfield_rates_table(d, [5.0], ["usa", "sa"], degrees=4)
    assert list(df.columns) == list(MEANFIELD_COLUMNS) and len(df) == 8
    assert (df["status"] == "completed").all() and (df["rel_error"].abs() < tol).all(), df
    for _, r in df.iterrows():
        conv = "sa" if r["model"] == "sa" else "glpr23"
        assert r["growth_rate_theory"] == pytest.approx(float(growth_rate(5.0, r["l"], d, conv)), rel=1e-15)
        assert r["t1"] == pytest.approx(1 / r["growth_rate_theory"])
    # gkpr24 time: the same flow slower by e^β
    r = single_mode_growth_rate(d, 5.0, 3, "usa", "gkpr24")
    assert abs(r["rel_error"]) < tol and r["growth_rate"] == pytest.approx(df.loc[2, "growth_rate"] * np.exp(-5.0),
                                                                           rel=10 * tol)


def test_bpa24_fig4_run_and_profiles():
    """β = 5, σ = 0.01 on 64 points, L = 512, GLPR23 time: three peaks by both rules at the resolution stop."""
    row, prof = meanfield_noise_run(5.0, 2, 0, profile=True, n_times=31, profile_theta=128)
    assert set(row) == set(MEANFIELD_EMERGENCE_COLUMNS)
    assert row["status"] == "unresolved" and row["l_star"] == 3
    assert row["n_peaks"] == 3 and row["n_arcs"] == 3 and row["max_density"] > 4
    assert row["mass_drift"] < 1e-14 and row["energy_max_decrease"] < 1e-15 and row["min_density"] > 0
    assert 0 < row["t_dominant"] < row["t_stop"] and row["dominant_degree"] in (2, 3, 4)
    assert row["n_eff"] == pytest.approx(64 / 1e-4)
    assert list(prof.columns) == list(MEANFIELD_PROFILE_COLUMNS)
    fin = prof[prof["final"]]
    assert len(fin) == 128 and fin["t"].iloc[0] == pytest.approx(row["t_stop"])
    assert prof["t"].max() == pytest.approx(row["t_stop"]) and prof["phi"].isna().all()
    # snapshots of band < 128 integrate to the mass on the 128-point grid (trapezoidal rule: exact)
    early = prof[prof["t"] < 0.5 * row["t_stop"]]
    assert np.allclose(early.groupby("t")["density"].mean(), 1.0, atol=1e-12)
    # the same noise at every β (common random numbers), a different one per seed
    r2, _ = meanfield_noise_run(8.0, 2, 0, n_times=2)
    assert np.isfinite(r2["t_stop"])
    a = noise_initial_data(2, 0.01, 64, np.random.default_rng(0))
    assert a.shape == (32,)


def test_meanfield_noise_d3_reads_the_dominant_degree():
    df, prof = meanfield_noise_table([5.0], 2, 3, profile_betas=[5.0], profile_seeds=1, n_times=11, profile_lat=6)
    assert (df["status"] == "unresolved").all() and (df["dominant_degree"] >= 1).all()
    assert (df["n_peaks"] == -1).all() and (df["mass_drift"] < 1e-13).all()
    assert df["n_eff"].iloc[0] == pytest.approx((17**2 - 1) / 1e-4)
    assert set(prof["seed"]) == {0} and prof["phi"].notna().all() and len(prof[prof["final"]]) == 6 * 12
    assert df["lin_degree_dist"].iloc[0].startswith("2:")  # linear theory at n_eff: degrees 2 and 3 (l* = 3)


# ----------------------------------------------------------------------------------------------
# Finite-n targets: growth fits, multinomial test
# ----------------------------------------------------------------------------------------------


def _synthetic_spectra(d, n, beta, seeds, l_max=10, times=41, model="usa"):
    """S_l(t) = S_l(0) e^{2λ_l t} exactly, n S_l(0) ~ Exp(1): the fit must return λ_l to round-off."""
    rng = np.random.default_rng(7)
    lam = growth_rate(beta, np.arange(1, l_max + 1), d, "gkpr24")
    t = np.linspace(0, np.log(n) / (2 * lam.max()), times)
    rows = []
    for s in range(seeds):
        s0 = rng.exponential(1.0, l_max) / n
        p = s0[None, :] * np.exp(2 * lam[None, :] * t[:, None])
        rows.append(pd.DataFrame({"model": model, "d": d, "n": n, "beta": beta, "seed": s, "t": np.repeat(t, l_max),
                                  "l": np.tile(np.arange(1, l_max + 1), times), "power": p.ravel()}))
    return pd.concat(rows, ignore_index=True), lam


def test_spectrum_growth_fits_recover_exact_rates_and_window():
    sp, lam = _synthetic_spectra(2, 2000, 12.0, 5)
    fits = spectrum_growth_fits(sp, fit_level=0.0025, band=0.5)
    assert np.allclose(fits["growth_rate"], lam, rtol=1e-9)
    assert (fits["argmax_measured"] == l_star(12.0, 2)).all() and (fits["n_seeds"] == 5).all()
    assert fits["t1"].iloc[0] == pytest.approx(np.log(2000 * 0.0025) / (2 * lam.max()))
    assert list(fits["in_band"]) == list(lam >= 0.5 * lam.max())
    # a seed that stops before the window ends (formation) is left out of the ensemble
    cut = sp[~((sp["seed"] == 4) & (sp["t"] > 1.0))]
    assert (spectrum_growth_fits(cut)["n_seeds"] == 4).all()
    # n·q ≤ 1: no window, no fit (flagged by NaN and n_times = 0)
    tiny = spectrum_growth_fits(sp.assign(n=300), fit_level=0.002)
    assert tiny["growth_rate"].isna().all() and (tiny["n_times"] == 0).all()


def test_growth_rate_jackknife_se_matches_the_scatter_of_per_seed_rates():
    """growth_rate_se: exact exponentials give 0; with per-seed rates λ + δ_i and equal initial powers the
    ensemble fit is λ + mean δ to first order, so the jackknife s.e. is std(δ)/√k (sample std)."""
    sp, lam = _synthetic_spectra(2, 2000, 12.0, 8)
    fits = spectrum_growth_fits(sp)
    assert (fits["growth_rate_se"] < 1e-12).all()
    rng = np.random.default_rng(3)
    k, l_max = 12, 10
    delta = rng.normal(0.0, 1e-4, (k, l_max))
    t = np.linspace(0, np.log(2000) / (2 * lam.max()), 41)
    rows = [pd.DataFrame({"model": "usa", "d": 2, "n": 2000, "beta": 12.0, "seed": s, "t": np.repeat(t, l_max),
                          "l": np.tile(np.arange(1, l_max + 1), t.size),
                          "power": (np.exp(2 * (lam + delta[s])[None, :] * t[:, None]) / 2000).ravel()})
            for s in range(k)]
    fits = spectrum_growth_fits(pd.concat(rows, ignore_index=True))
    ref = delta.std(axis=0, ddof=1) / np.sqrt(k)
    np.testing.assert_allclose(fits["growth_rate_se"], ref, rtol=0.02)
    np.testing.assert_allclose(fits["growth_rate"], lam + delta.mean(axis=0), rtol=1e-4)  # 2nd order: δ²t
    # two seeds: no standard error
    assert spectrum_growth_fits(sp[sp["seed"] < 2])["growth_rate_se"].isna().all()


def test_multinomial_gof_against_chi2_law():
    pred = {1: 0.2, 2: 0.5, 3: 0.3}
    # exactly the expected counts: χ² ≈ 0 (only the 'other' category, probability 5e-4, is off), p ≈ 1
    stat, p, k = multinomial_gof({1: 20, 2: 50, 3: 30}, pred)
    assert stat < 0.06 and p > 0.99 and k == 4
    # large sample: the Monte Carlo p-value follows the asymptotic χ² law with 2 degrees of freedom
    # (an 'other' category of negligible probability: other_floor 1e-12)
    obs = {1: 230, 2: 480, 3: 290}
    stat, p, _ = multinomial_gof(obs, pred, draws=40_000, other_floor=1e-12)
    e = np.array([200, 500, 300.0])
    ref = stats.chisquare([230, 480, 290], e).pvalue
    assert abs(p - ref) < 0.03, (p, ref)
    # a value the theory gives < 0.5 % lands in 'other': tiny p
    assert multinomial_gof({1: 5, 7: 3}, pred)[1] < 1e-3


def test_selection_tests_and_growth_table_join():
    sp, lam = _synthetic_spectra(2, 2000, 12.0, 4)
    em = pd.DataFrame([dict(model="usa", d=2, n=2000, beta=12.0, seed=s, status="ok", dominant_degree=dd,
                            n_clusters_formation=cf, lin_degree_dist="4:0.300;5:0.400;6:0.300")
                       for s, dd, cf in [(0, 5, 5), (1, 5, 4), (2, 4, 4), (3, 9, -1)]])
    tests = selection_tests(em)
    assert tests["observed"].iloc[0] == "4×1, 5×2, 9×1" and tests["selection_categories"].iloc[0] == 4
    g = emergence_growth_table(sp, em)
    assert list(g.columns) == list(EMERGENCE_GROWTH_COLUMNS)
    at = g.set_index("l")
    assert at.loc[5, "seeds_dominant"] == 2 and at.loc[9, "seeds_dominant"] == 1 and at.loc[4, "seeds_formation"] == 2
    assert at.loc[5, "p_dominant_theory"] == 0.4 and at.loc[9, "p_dominant_theory"] == 0.0
    assert (g["seeds_ok"] == 4).all() and g["selection_pvalue"].nunique() == 1
    assert g["selection_pvalue"].iloc[0] < 0.05  # degree 9 has probability < 0.005 under the prediction


def test_formation_records_the_spectrum_on_request():
    x0 = initial.uniform(400, 2, np.random.default_rng(2)).x
    times = np.linspace(0, 40, 9)
    fo = formation(x0, 8.0, spectrum_times=times, l_max=10)
    assert fo["spectrum"].shape == (fo["spectrum_t"].size, 10) and fo["spectrum_t"].size >= 5
    np.testing.assert_allclose(fo["spectrum"][0], degree_power(x0, 10), rtol=1e-12)
    np.testing.assert_array_equal(fo["spectrum_t"], times[: fo["spectrum_t"].size])
    assert fo["spectrum_t"][-1] <= fo["t_formation"]
    plain = formation(x0, 8.0, l_max=10)
    assert plain["spectrum"].shape == (0, 10) and plain["n_clusters"] == fo["n_clusters"]
    with pytest.raises(ValueError, match="sorted"):
        formation(x0, 8.0, spectrum_times=[1.0, 0.5])


def test_particle_ensemble_growth_rates_d2():
    """(i): d = 2, n = 2000, 16 seeds, β = 8 (l* = 4), ≈ 1 s: the degrees in the band within 10 % (measured
    2.4 %; with 8 seeds the band's edge l = 6, λ_6/λ* = 0.5, is off by 12 %: the second-order terms
    average out over seeds only), argmax = l*."""
    em, sp = emergence_cell([8.0], 16, d=2, n=2000, spectrum_points=41, spectrum_span=1.0)
    assert (em["status"] == "ok").all() and sp["seed"].nunique() == 16
    fits = spectrum_growth_fits(sp)
    band = fits[fits["in_band"]]
    assert (band["rel_error"].abs() < 0.10).all(), band[["l", "growth_rate", "growth_rate_theory", "rel_error"]]
    assert (fits["argmax_measured"] == 4).all()


@pytest.mark.slow
def test_particle_ensemble_growth_rates_and_selection_d3():
    """(i) and (ii) in d = 3: n = 2000, 10 seeds, β = 12 (l* = 4): growth rates in the band within 10 %,
    argmax = l*; the dominant degree (power_level 0.005) not rejected by the χ² test. Measured: 65 s wall,
    123 s CPU on two BLAS threads (16 seeds: 260 s wall on a loaded machine)."""
    em, sp = emergence_cell([12.0], 10, d=3, n=2000, spectrum_points=41, spectrum_span=1.0, power_level=0.005)
    assert (em["status"] == "ok").all()
    g = emergence_growth_table(sp, em)
    band = g[g["in_band"]]
    assert (band["rel_error"].abs() < 0.10).all(), band[["l", "growth_rate", "growth_rate_theory", "rel_error"]]
    assert (g["argmax_measured"] == 4).all() and g["selection_pvalue"].iloc[0] > 0.001


# ----------------------------------------------------------------------------------------------
# Config, summary, figures
# ----------------------------------------------------------------------------------------------


def test_meanfield_config_defaults_cells_and_errors():
    cfg = reproductions_config({"meanfield": {"betas": [3, 8], "d": [2, 3]}})["meanfield"]
    assert cfg["rate_betas"] == [1.0, 5.0, 12.0, 30.0] and cfg["fig4_beta"] == 5.0
    cells = meanfield_cells({"meanfield": {"betas": [3, 8], "d": [2, 3]}})
    # d = 2 also runs fig4_beta (β = 5) for BPA24's Fig. 4
    assert [c["path"] for c in cells] == ["d2/beta3", "d2/beta5", "d2/beta8", "d3/beta3", "d3/beta8"]
    for bad, key in [({"d": [4]}, r"reproductions\.meanfield\.d: invalid value \[4\]; allowed"),
                     ({"seeds": 0}, r"reproductions\.meanfield\.seeds: invalid value 0; allowed: an integer ≥ 1"),
                     ({"convention": "bpa"}, r"reproductions\.meanfield\.convention"),
                     ({"sigma": -1}, r"reproductions\.meanfield\.sigma"),
                     ({"max_tail_sphere": 2.0}, r"reproductions\.meanfield\.max_tail_sphere"),
                     ({"l_max_circle": 10}, r"reproductions\.meanfield\.l_max_circle: .*highest degree of the noise"),
                     ({"profile_betas": [7]}, r"reproductions\.meanfield\.profile_betas: .*7 is not run"),
                     ({"rate_models": ["usa", "usa"]}, r"reproductions\.meanfield\.rate_models"),
                     ({"bogus": 1}, r"reproductions\.meanfield\.bogus: unknown key")]:
        with pytest.raises(ValueError, match=key):
            reproductions_config({"meanfield": bad})
    em = reproductions_config({"emergence": {"d": [2, 3]}})["emergence"]
    assert em["power_level"] == {2: 0.05, 3: 0.005} and em["fit_level"] == 0.0025
    with pytest.raises(ValueError, match=r"reproductions\.emergence\.power_level\.4: missing"):
        reproductions_config({"emergence": {"d": [4]}})
    assert reproductions_config({"emergence": {"d": [4], "power_level": 0.01}})["emergence"]["power_level"] == {4: 0.01}


def _fake_meanfield_tables():
    rates = pd.concat([meanfield_rates_table(d, [5.0], degrees=3) for d in (2, 3)], ignore_index=True)
    em = pd.DataFrame([dict(model="usa", convention="glpr23", d=2, beta=5.0, seed=s, l_star=3, lambda_star=6.0,
                            sigma=0.01, noise=64, n_eff=6.4e5, l_max=512, status="unresolved", lambda_t_stop=6.1,
                            n_peaks=p, n_arcs=p, peak_level=2.0, max_density=6.5, min_density=0.2, mass_drift=0.0,
                            energy_max_decrease=0.0, dominant_degree=p, power_level=0.002,
                            p_lin_degree_l_star=0.7, lin_degree_dist="2:0.045;3:0.701;4:0.254")
                       for s, p in enumerate([3, 3, 3, 4])])
    return rates, em


def test_summary_meanfield_and_finite_n_rows():
    from attention_dynamics.reproductions.summary import headline, summary_markdown

    rates, mfe = _fake_meanfield_tables()
    rows = summary_rows(meanfield=rates, meanfield_emergence=mfe)
    assert {r["topic"] for r in rows} == {"meanfield"}
    r2 = next(r for r in rows if r["claim"].startswith("d = 2: the solver's growth rate"))
    r3 = next(r for r in rows if r["claim"].startswith("d = 3: the solver's growth rate"))
    assert r2["verdict"] == r3["verdict"] == "agrees" and "target 1e-06" in r2["theory"] and "1e-04" not in r2["theory"]
    fig4 = next(r for r in rows if r["claim"].startswith("BPA24 Fig. 4"))
    assert fig4["agreement"] == "3/4 seeds 3-periodic" and fig4["measured"].startswith("peaks 3×3, 4×1")
    assert fig4["verdict"] == "agrees" and "cross-correlation" in fig4["note"]
    sel = next(r for r in rows if r["claim"].startswith("d = 2: the dominant degree"))
    assert "= l* in 75% of runs (theory 70%)" in sel["measured"] and sel["verdict"] == "agrees"
    details = [r for r in rows if not r.get("headline", True)]
    assert len(details) == 1 and details[0]["cells"]["peaks (K∗ρ)"] == "3×3, 4×1"
    text = summary_markdown(rows)
    assert "BPA24 with the mean-field PDE" in text and max(len(line) for line in text.splitlines()
                                                          if line.startswith("|")) < 300
    assert dict((t[:25], v) for t, v, _ in headline(rows))["BPA24 with the mean-field"] == "agrees"
    # a rate off its target: "disagrees" (a solver fault, not a finite-size effect)
    bad = rates.assign(rel_error=rates["rel_error"].where(rates["l"] != 2, 1e-3))
    assert next(r for r in summary_rows(meanfield=bad) if r["claim"].startswith("d = 2"))["verdict"] == "disagrees"
    # the particle rows (i): a failing β is named
    sp, _ = _synthetic_spectra(3, 2000, 12.0, 4)
    growth = spectrum_growth_fits(sp)
    growth.loc[growth["l"] == 4, "growth_rate"] *= 1.2  # 20 % off at l* = 4 ...
    growth["rel_error"] = growth["growth_rate"] / growth["growth_rate_theory"] - 1
    rows = summary_rows(emergence_growth=growth)
    r = next(r for r in rows if r["claim"].startswith("(i) d = 3"))
    assert r["agreement"] == "no at β = 12" and r["verdict"] == "differs"
    assert r["measured"] == "worst 0.2 (β = 12, l = 4); argmax = l* at 1/1 β"
    # the same miss within twice the seed scatter: not a failure, too few seeds ("expected")
    growth["growth_rate_se"] = 0.06 * growth["growth_rate_theory"]
    r = next(r for r in summary_rows(emergence_growth=growth) if r["claim"].startswith("(i) d = 3"))
    assert r["verdict"] == "expected" and r["agreement"].startswith("within the seed scatter (2 s.e.) at β = 12")
    growth["growth_rate_se"] = 0.04 * growth["growth_rate_theory"]  # 0.2 − 2·0.04 > 0.1: a failure
    assert next(r for r in summary_rows(emergence_growth=growth)
                if r["claim"].startswith("(i) d = 3"))["verdict"] == "differs"
    det = next(r for r in rows if r["claim"] == "finite n, d = 3, n = 2000, β = 12")
    assert det["cells"]["max |rate/λ_l − 1| in the band"] == "0.2 (l = 3–7)" and det["headline"] is False
