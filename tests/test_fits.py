"""The scaling-law fitter (attention_dynamics.analysis.fits) on synthetic data with known a, b, c.

References: lifelines' LogNormalAFTFitter (an independent censored-regression implementation),
closed-form least squares, the exact ODE merge times, and coverage over replicates with known truth.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attention_dynamics.analysis import fits as F
from attention_dynamics.analysis.censored import fit_censored

A, B, C = -1.5, -1.0, 0.62
BETAS = np.linspace(5, 40, 8)


def synthetic_runs(n_seeds=20, noise=0.05, seed_effect=0.05, rng=0, model="usa", d_min=1.0, alpha=0.55,
                   group="g1", sweep="s", betas=BETAS, ln_t_max=np.inf, seed_slope=0.0):
    """Runs table of one group: ln T = A + C β + B ln β + u_s + v_s β + noise, right-censored at ln_t_max."""
    rng = np.random.default_rng(rng)
    shift = rng.normal(0, seed_effect, n_seeds)
    slope = rng.normal(0, seed_slope, n_seeds) if seed_slope else np.zeros(n_seeds)
    t_max = math.exp(min(ln_t_max, 700.0))
    rows = []
    for s in range(n_seeds):
        for b in betas:
            lt = A + C * b + B * math.log(b) + shift[s] + slope[s] * b + rng.normal(0, noise)
            cens = lt > ln_t_max
            rows.append(dict(sweep=sweep, group_id=group, cell_id=f"c{b:g}", model=model, init="caps", d=3, n=64,
                             k=2, eps=1e-5, spacing=d_min, centres="circle", min_angle=np.nan, masses="", r=np.nan,
                             sigma=np.nan, theta_c=0.1, t_max=t_max, beta=b, seed=s, status="ok", reason="",
                             escape_time=np.nan if lt - 0.3 > ln_t_max else math.exp(lt - 0.3),
                             escape_censored=bool(lt - 0.3 > ln_t_max),
                             first_merge_time=np.nan if cens else math.exp(lt), censored=bool(cens),
                             t_end=t_max if cens else math.exp(lt), n_clusters_initial=2, d_min=d_min, alpha=alpha))
    return pd.DataFrame(rows)


def first_merge(out):
    return out.query("quantity == 'first_merge'").iloc[0]


# ---------------------------------------------------------------------------------------------
# the censored maximum-likelihood core
# ---------------------------------------------------------------------------------------------
def test_ols_recovers_exact_coefficients():
    y = A + C * BETAS + B * np.log(BETAS)
    (a, c, b), sd, r2 = F.ols(BETAS, y)
    assert a == pytest.approx(A, abs=1e-9) and c == pytest.approx(C, abs=1e-11) and b == pytest.approx(B, abs=1e-9)
    assert sd < 1e-9 and r2 == pytest.approx(1.0)


def test_censored_mle_matches_lifelines():
    """Coefficients, σ and log-likelihood agree with lifelines' LogNormalAFTFitter (independent code)."""
    lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(1)
    beta = np.repeat(np.linspace(5, 40, 8), 10)
    y = A + C * beta + B * np.log(beta) + rng.normal(0, 0.3, beta.size)
    for c_point in (np.inf, 18.0, 12.0):          # none, 20 % and 45 % censored
        cens = y > c_point
        yobs = np.where(cens, c_point, y)
        f = fit_censored(F.design(beta), yobs, cens)
        df = pd.DataFrame(dict(T=np.exp(yobs), E=(~cens).astype(int), beta=beta, lb=np.log(beta)))
        m = lifelines.LogNormalAFTFitter().fit(df, "T", "E")
        mu = m.params_["mu_"]
        assert f.converged[0]
        assert np.allclose(f.coef[0], [mu["Intercept"], mu["beta"], mu["lb"]], rtol=0, atol=1e-5)
        assert f.sigma[0] == pytest.approx(math.exp(m.params_["sigma_"]["Intercept"]), rel=1e-5)
        # lifelines' likelihood is that of T (density in t): add back the Jacobian Σ ln T of the exact ones
        assert f.loglik[0] == pytest.approx(m.log_likelihood_ + yobs[~cens].sum(), abs=1e-5)


def test_censored_mle_weights_are_replications_and_batches_are_independent():
    rng = np.random.default_rng(2)
    beta = np.repeat([6.0, 10.0, 15.0, 20.0], 5)
    y = 0.3 + 0.5 * beta - np.log(beta) + rng.normal(0, 0.4, beta.size)
    cens = y > 8.0
    y = np.where(cens, 8.0, y)
    w = rng.integers(0, 3, size=(4, beta.size)).astype(float)
    w[:, :4] = 1.0                                    # keep every β level
    batch = fit_censored(F.design(beta), y, cens, w)
    for j in range(4):
        rep = np.repeat(np.arange(beta.size), w[j].astype(int))
        one = fit_censored(F.design(beta[rep]), y[rep], cens[rep])
        assert np.allclose(batch.coef[j], one.coef[0], atol=1e-8) and batch.sigma[j] == pytest.approx(one.sigma[0])


def test_censored_mle_noise_free_limit_is_least_squares():
    """Exact data on the law (σ → 0) with consistent censoring: the limit is the least-squares fit."""
    beta = np.array([5.0, 10.0, 20.0, 30.0, 40.0])
    y = A + C * beta + B * np.log(beta)
    cens = y > 13.0
    f = fit_censored(F.design(beta), np.where(cens, 13.0, y), cens)
    assert f.converged[0] and cens.sum() == 2 and np.allclose(f.coef[0], [A, C, B], atol=1e-8)


def test_censoring_enters_the_fit_and_removes_the_bias():
    """~36 % censored, partly within β levels: OLS on the observed times is biased low (measured −0.076);
    the censored fit is not (+0.002 ± 0.016 over these 20 data sets)."""
    est_cens, est_ols = [], []
    for r in range(20):
        runs = synthetic_runs(n_seeds=10, noise=1.0, seed_effect=0.0, rng=50 + r, ln_t_max=12.0)
        fm = first_merge(F.fit_runs(runs, n_boot=0))
        assert fm["n_censored"] > 20 and fm["n_obs"] + fm["n_censored"] == 80
        est_cens.append(fm["c"])
        obs = runs[~runs["censored"]]
        est_ols.append(F.ols(obs["beta"], np.log(obs["first_merge_time"]))[0][1])
    assert abs(np.mean(est_cens) - C) < 0.04
    assert np.mean(est_ols) < C - 0.05


# ---------------------------------------------------------------------------------------------
# fits and intervals
# ---------------------------------------------------------------------------------------------
def test_fit_recovers_known_coefficients_with_covering_cis():
    runs = synthetic_runs(rng=1)
    out = F.fit_runs(runs, n_boot=500, seed=1)
    fm = first_merge(out)
    assert fm["status"] == "ok" and fm["n_obs"] == 160 and fm["n_seeds"] == 20 and fm["n_beta"] == 8
    assert fm["c"] == pytest.approx(C, abs=0.01) and fm["b"] == pytest.approx(B, abs=0.3)
    assert fm["c_lo"] < C < fm["c_hi"] and fm["b_lo"] < B < fm["b_hi"] and fm["a_lo"] < A < fm["a_hi"]
    assert 0.0 < fm["c_hi"] - fm["c_lo"] < 0.02 and fm["ci_method"] == "t" and fm["n_boot"] == 500
    assert fm["theory_slope"] == pytest.approx(1 - math.cos(1.0))
    assert fm["slope_ratio"] == pytest.approx(fm["c"] / (1 - math.cos(1.0)))
    assert fm["ratio_lo"] == pytest.approx(fm["c_lo"] / (1 - math.cos(1.0)))
    esc = out[out["quantity"] == "escape"].iloc[0]
    assert esc["c"] == pytest.approx(C, abs=0.01) and esc["a"] == pytest.approx(A - 0.3, abs=0.3)
    assert esc["theory_slope"] == pytest.approx(1 - 0.55) and esc["theory"] == "1 - alpha"


def _coverage(trials, n_seeds, ln_t_max, seed_slope=0.0, level=0.95):
    hits, est, ok = 0, [], 0
    for r in range(trials):
        runs = synthetic_runs(n_seeds=n_seeds, noise=0.3, seed_effect=0.1, seed_slope=seed_slope, rng=1000 + r,
                              ln_t_max=ln_t_max)
        fm = first_merge(F.fit_runs(runs, n_boot=400, ci=level, seed=r))
        hits += fm["c_lo"] <= C <= fm["c_hi"]
        est.append(fm["c"])
        ok += fm["status"] == "ok"
    assert ok >= 0.9 * trials   # the flags rarely fire on data that follow the law
    return hits / trials, np.mean(est) - C, np.std(est)


def test_censored_fit_coverage():
    """40 replicates, 10 seeds, ~25 % censored: the 95 % interval covers c about 95 % of the time."""
    cov, bias, sd = _coverage(40, 10, 15.0)
    assert 0.85 <= cov <= 1.0 and abs(bias) < 0.5 * sd


@pytest.mark.slow
def test_censored_fit_coverage_slow():
    """200 replicates per design (measured: 0.925–0.97 for 3–20 seeds, 0–50 % censored)."""
    for n_seeds, ln_t_max, seed_slope in [(10, np.inf, 0.0), (10, 15.0, 0.0), (5, 15.0, 0.0), (20, 12.0, 0.01),
                                          (3, 15.0, 0.0)]:
        cov, bias, sd = _coverage(200, n_seeds, ln_t_max, seed_slope)
        assert 0.91 <= cov <= 0.985, (n_seeds, ln_t_max, cov)
        assert abs(bias) < 0.25 * sd, (n_seeds, ln_t_max, bias, sd)


def test_bootstrap_resamples_seeds_not_rows():
    """A per-seed random effect is common to all β of a seed: resampling seeds keeps it, so the CI of a
    reflects the seed-to-seed spread (a row bootstrap would treat the 8 β of a seed as independent)."""
    runs = synthetic_runs(n_seeds=12, noise=0.0, seed_effect=0.3, rng=3)
    fm = first_merge(F.fit_runs(runs, n_boot=1000, seed=0))
    assert fm["c_hi"] - fm["c_lo"] < 1e-8      # c is exact (the seed effect is constant in β)
    assert 0.15 < fm["a_hi"] - fm["a_lo"] < 0.9  # a is uncertain by ~0.3/sqrt(12)


def test_bootstrap_is_reproducible_and_seeded():
    runs = synthetic_runs()
    a = F.fit_runs(runs, n_boot=200, seed=7)
    b = F.fit_runs(runs, n_boot=200, seed=7)
    c = F.fit_runs(runs, n_boot=200, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["c_lo"], c["c_lo"])
    both = F.fit_runs(pd.concat([runs, synthetic_runs(group="g2", rng=5)]), n_boot=200, seed=7)
    same = both[both["group_id"] == "g1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(same, a)   # adding another group does not change this group's intervals


# ---------------------------------------------------------------------------------------------
# counting and the status vocabulary
# ---------------------------------------------------------------------------------------------
def test_censored_and_failed_runs_are_counted():
    runs = synthetic_runs()
    high = runs["beta"] == BETAS[-1]
    runs.loc[high & (runs["seed"] < 5), ["first_merge_time", "escape_time"]] = np.nan
    runs.loc[high & (runs["seed"] < 5), ["censored", "escape_censored"]] = True
    runs.loc[runs["seed"] == 19, "status"] = "failed"   # a whole seed failed: it is simply absent
    out = F.fit_runs(runs, n_boot=100, seed=0)
    for _, row in out.iterrows():
        assert (row["n_runs"], row["n_failed"], row["n_censored"], row["n_obs"]) == (160, 8, 5, 147)
        assert row["n_seeds"] == 19 and row["status"] == "ok" and row["c"] == pytest.approx(C, abs=0.015)
        assert row["beta_max_fit"] == BETAS[-1]


def statuses(row) -> set:
    return set(row["status"].split(","))


def test_every_status_is_documented():
    for col in F.FIT_COLUMNS:
        assert F.FIT_COLUMNS[col]
    out = F.fit_runs(synthetic_runs(n_seeds=4), n_boot=20)
    assert list(out.columns) == list(F.FIT_COLUMNS)
    for name in F.STATUSES:
        if name != "ok":
            assert f"{name}: " in F.FIT_COLUMNS["status"] and name in F.__doc__


def test_no_fit_statuses():
    runs = synthetic_runs(n_seeds=3)
    assert statuses(first_merge(F.fit_runs(runs[runs["beta"].isin(BETAS[:2])], n_boot=10))) == {"too_few_beta"}
    r = runs[runs["seed"] == 0]
    assert statuses(first_merge(F.fit_runs(r[r["beta"].isin(BETAS[:3])], n_boot=10))) == {"too_few_obs"}
    cens = runs.assign(first_merge_time=np.nan, censored=True)
    fm = first_merge(F.fit_runs(cens, n_boot=10))
    assert statuses(fm) == {"all_censored"} and fm["n_censored"] == 24 and fm["n_obs"] == 0 and np.isnan(fm["c"])
    fm = first_merge(F.fit_runs(runs.assign(status="error"), n_boot=10))
    assert statuses(fm) == {"no_runs"} and fm["n_failed"] == 24


def test_flags_with_an_estimate():
    # no interval
    assert statuses(first_merge(F.fit_runs(synthetic_runs(n_seeds=4), n_boot=0))) == {"no_ci"}
    # T does not grow with β
    flat = synthetic_runs(n_seeds=6, noise=0.3)
    flat["first_merge_time"] = np.exp(np.random.default_rng(0).normal(0, 0.3, len(flat)))
    assert {"ci_contains_zero"} <= statuses(first_merge(F.fit_runs(flat, n_boot=200)))
    dec = flat.assign(first_merge_time=flat["first_merge_time"] * np.exp(-0.2 * flat["beta"]))
    assert {"slope_not_positive"} <= statuses(first_merge(F.fit_runs(dec, n_boot=200)))
    # curvature the law cannot follow: ln T quadratic in β
    curved = synthetic_runs(n_seeds=8)
    curved["first_merge_time"] *= np.exp(0.01 * (curved["beta"] - 20) ** 2)
    fm = first_merge(F.fit_runs(curved, n_boot=100))
    assert statuses(fm) == {"lack_of_fit"} and fm["lof_p"] < 1e-6 and fm["lof_dev"] > F.LOF_TOL
    # a run that ended without the event before the horizon (started as one cluster)
    r = synthetic_runs(n_seeds=6)
    r.loc[0, ["first_merge_time", "censored"]] = [np.nan, False]
    fm = first_merge(F.fit_runs(r, n_boot=50))
    assert statuses(fm) == {"no_event_runs"} and fm["n_no_event"] == 1
    # a selective failure: seed 0 fails at the top β only
    r = synthetic_runs(n_seeds=6)
    r.loc[(r["seed"] == 0) & (r["beta"] == BETAS[-1]), "status"] = "failed"
    assert statuses(first_merge(F.fit_runs(r, n_boot=50))) == {"partial_failures"}
    # runs with more macroscopic clusters at t = 0 than centres (a cap split in two)
    r = synthetic_runs(n_seeds=6)
    r.loc[r["seed"] == 2, "n_clusters_initial"] = 3
    fm = first_merge(F.fit_runs(r, n_boot=50))
    assert statuses(fm) == {"extra_clusters"} and fm["n_extra_cluster_runs"] == 8


def test_straggler_seed_of_the_report_is_flagged():
    """The reported sweep: 8 seeds, β 10–50, one seed's 'first merge' is a straggler at t ≈ 0.05 at every β,
    most runs censored. OLS gave c = −3.3 with status ok; every variant here must come out flagged (the
    engine now counts merges of macroscopic clusters only; the fit must be robust to such data anyway)."""
    for ln_t_max in (12.0, 15.0, 20.0, np.inf):
        for n_beta in (5, 15):
            runs = synthetic_runs(n_seeds=8, noise=0.1, seed_effect=0.0, seed_slope=0.005, rng=3,
                                  betas=np.linspace(10, 50, n_beta), ln_t_max=ln_t_max)
            s = runs["seed"] == 2
            runs.loc[s, "first_merge_time"] = 0.05 * np.exp(np.random.default_rng(1).normal(0, 0.01, s.sum()))
            runs.loc[s, ["censored", "t_end"]] = [False, 0.05]
            fm = first_merge(F.fit_runs(runs, n_boot=300))
            assert fm["status"] != "ok", (ln_t_max, n_beta, fm[["c", "c_lo", "c_hi", "outlier_p"]].to_dict())


def test_uniform_data_has_no_escape_fit_and_no_theory():
    runs = synthetic_runs()
    runs["init"], runs["k"], runs["d_min"], runs["alpha"] = "uniform", 1, np.nan, np.nan
    out = F.fit_runs(runs, n_boot=50)
    assert list(out["quantity"]) == ["first_merge"]
    assert math.isnan(out["theory_slope"].iloc[0]) and math.isnan(out["slope_ratio"].iloc[0])
    assert math.isnan(out["ode_slope"].iloc[0])


# ---------------------------------------------------------------------------------------------
# the exact finite-β slope
# ---------------------------------------------------------------------------------------------
def test_ode_slope_matches_fit_of_exact_merge_times():
    """k = 2: the fit of the two-cluster quadrature times gives ode_slope_nominal (to round-off)."""
    from attention_dynamics.theory.twocluster import two_cluster_merge_time

    runs = synthetic_runs(n_seeds=3, d_min=math.pi / 2)
    for model in ("usa", "sa"):
        r = runs.assign(model=model)
        t = r["beta"].map(lambda b: two_cluster_merge_time(math.pi / 2, 0.1, b, 32.0, 32.0, 64, model))
        fm = first_merge(F.fit_runs(r.assign(first_merge_time=t), n_boot=0))
        assert fm["c"] == pytest.approx(fm["ode_slope_nominal"], rel=1e-9)


def test_ode_slope_for_k_caps_is_the_k_point_slope():
    """k = 3 caps on an arc: ode_slope_nominal is the slope of the 3-point first-merge times of the nominal
    centres (Radau-checked in test_kpoint), above 1 − cos D (equal masses, β = 10–40: SA 7.5 %, USA 1.6 %)."""
    from attention_dynamics.theory.kpoint import circle_merge_log_times

    betas = np.array([10.0, 20.0, 30.0, 40.0])
    runs = synthetic_runs(n_seeds=3, d_min=0.8, betas=betas).assign(k=3, n=63, spacing=0.8, n_clusters_initial=3)
    for model, ratio in (("usa", 1.016), ("sa", 1.075)):
        lt = circle_merge_log_times(np.tile([0.0, 0.8, 1.6], (4, 1)), [21, 21, 21], betas, model, 0.1).log_first
        r = runs.assign(model=model, first_merge_time=runs["beta"].map(dict(zip(betas, np.exp(lt)))))
        fm = first_merge(F.fit_runs(r, n_boot=0))
        assert fm["c"] == pytest.approx(fm["ode_slope_nominal"], rel=1e-7)
        assert fm["ode_slope_nominal"] / (1 - math.cos(0.8)) == pytest.approx(ratio, abs=0.002)


def test_summary_verdict_uses_the_exact_slope_and_skips_flagged_fits():
    """reproductions.summary: an ok fit is judged against the exact finite-β slope; a flagged one gets no
    verdict (the reported sweep printed 'ratio −2.2' for a straggler fit with status ok)."""
    from attention_dynamics.reproductions.summary import summary_rows

    base = dict(sweep="staircase", model="sa", init="caps", d=3, n=64, k=3, quantity="first_merge",
                theory="1 - cos D_min", theory_slope=0.3033, n_obs=40, n_censored=3)
    ok = dict(base, status="ok", c=0.326, c_lo=0.320, c_hi=0.332, slope_ratio=0.326 / 0.3033, ode_slope=0.3260)
    flagged = dict(base, status="ci_contains_zero,outlier_seeds", c=-3.3, c_lo=-3.32, c_hi=1.49,
                   slope_ratio=-3.3 / 0.3033, ode_slope=np.nan)
    rows = [r for r in summary_rows(fits=pd.DataFrame([ok, flagged])) if r["topic"] == "first_merge"]
    assert rows[0]["verdict"] == "expected" and "exact finite-β slope 0.326" in rows[0]["theory"]
    assert rows[0]["agreement"].endswith("theory outside CI; ODE slope inside CI: the finite-β correction, expected")
    assert rows[1]["verdict"] == "no fit"
    assert rows[1]["agreement"] == "no verdict: fit flagged ci_contains_zero,outlier_seeds"
    assert "c = -3.3" in rows[1]["measured"] and "3 censored" in rows[1]["measured"]


def test_each_seeds_collapsed_centres_predict_its_runs(tmp_path):
    """Real runs (k = 3 caps on an arc, ε = 1e-3): the exact first-merge time of each seed's own collapsed
    clusters matches the run within 2 % (median 0.5 %); the fit's c is inside the CI of ode_slope."""
    from attention_dynamics.pipeline import aggregate, cell
    from attention_dynamics.pipeline import sweep as sw

    plan = sw.check_config(dict(sweeps=dict(arc=dict(model="sa", init="caps", d=2, n=30, k=3, eps=1e-3,
                                                          spacing=0.8, beta=[10, 14, 18, 22], t_max=1e12,
                                                          seeds=5))), check_results=False)
    cells, files = [], {t: [] for t in sw.TABLE_NAMES}
    for c in plan.cells:
        cell.run_cell({"sweep": c.sweep, **c.params}, c.seeds, tmp_path / c.path)
        cells.append(dict(sweep=c.sweep, path=c.path, group=c.group, seeds=c.seeds, params=c.params))
        for t in sw.TABLE_NAMES:
            files[t].append(str(tmp_path / c.path / f"{t}.parquet"))
    runs = aggregate.aggregate(cells, files, {"runs": str(tmp_path / "runs.parquet")})["runs"]
    assert (runs["status"] == "ok").all() and runs["first_merge_time"].notna().all()
    pred = F.exact_first_merge_log_times(runs.iloc[0], runs["seed"], runs["beta"])
    rel = np.abs(np.exp(pred) / runs["first_merge_time"].to_numpy() - 1)
    assert rel.max() < 0.02 and np.median(rel) < 0.005, rel
    fm = first_merge(F.fit_runs(runs, n_boot=400))
    assert fm["status"] == "ok" and fm["c_lo"] <= fm["ode_slope"] <= fm["c_hi"], fm[["c", "c_lo", "c_hi", "ode_slope"]]
