"""The scaling-law fitter (attention_dynamics.analysis.fits) on synthetic data with known a, b, c."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attention_dynamics.analysis import fits as F

A, B, C = -1.5, -1.0, 0.62
BETAS = np.linspace(5, 40, 8)


def synthetic_runs(n_seeds=20, noise=0.05, seed_effect=0.05, rng=0, model="usa", d_min=1.0, alpha=0.55,
                   group="g1", sweep="s"):
    """Runs table of one group: ln T = A + C β + B ln β + seed effect + noise, for both quantities."""
    rng = np.random.default_rng(rng)
    shift = rng.normal(0, seed_effect, n_seeds)
    rows = []
    for s in range(n_seeds):
        for b in BETAS:
            lt = A + C * b + B * math.log(b) + shift[s] + rng.normal(0, noise)
            rows.append(dict(sweep=sweep, group_id=group, cell_id=f"c{b:g}", model=model, init="caps", d=3, n=64,
                             k=2, eps=1e-5, spacing=d_min, centres="circle", min_angle=np.nan, masses="", r=np.nan,
                             sigma=np.nan, theta_c=0.1, t_max=1e25, beta=b, seed=s, status="ok", reason="",
                             escape_time=math.exp(lt - 0.3), escape_censored=False, first_merge_time=math.exp(lt),
                             censored=False, t_end=math.exp(lt), d_min=d_min, alpha=alpha))
    return pd.DataFrame(rows)


def test_ols_recovers_exact_coefficients():
    y = A + C * BETAS + B * np.log(BETAS)
    (a, c, b), sd, r2 = F.ols(BETAS, y)
    assert a == pytest.approx(A, abs=1e-9) and c == pytest.approx(C, abs=1e-11) and b == pytest.approx(B, abs=1e-9)
    assert sd < 1e-9 and r2 == pytest.approx(1.0)


def test_fit_recovers_known_coefficients_with_covering_cis():
    runs = synthetic_runs(rng=1)  # one fixed data set (coverage over many is tested below)
    out = F.fit_runs(runs, n_boot=500, seed=1)
    fm = out[out["quantity"] == "first_merge"].iloc[0]
    assert fm["status"] == "ok" and fm["n_obs"] == 160 and fm["n_seeds"] == 20 and fm["n_beta"] == 8
    assert fm["c"] == pytest.approx(C, abs=0.01)
    assert fm["b"] == pytest.approx(B, abs=0.3)
    assert fm["c_lo"] < C < fm["c_hi"]
    assert fm["b_lo"] < B < fm["b_hi"]
    assert fm["a_lo"] < A < fm["a_hi"]
    assert 0.0 < fm["c_hi"] - fm["c_lo"] < 0.02
    assert fm["theory_slope"] == pytest.approx(1 - math.cos(1.0))
    assert fm["slope_ratio"] == pytest.approx(fm["c"] / (1 - math.cos(1.0)))
    assert fm["ratio_lo"] == pytest.approx(fm["c_lo"] / (1 - math.cos(1.0)))
    esc = out[out["quantity"] == "escape"].iloc[0]
    assert esc["c"] == pytest.approx(C, abs=0.01)
    assert esc["a"] == pytest.approx(A - 0.3, abs=0.3)
    assert esc["theory_slope"] == pytest.approx(1 - 0.55) and esc["theory"] == "1 - alpha"


def test_bootstrap_coverage_is_roughly_nominal():
    """Over repeated synthetic data sets, the 90% CI of c covers the truth about 90% of the time."""
    hits = 0
    trials = 40
    for r in range(trials):
        runs = synthetic_runs(n_seeds=15, rng=100 + r)
        fm = F.fit_runs(runs, n_boot=300, ci=0.90, seed=r).query("quantity == 'first_merge'").iloc[0]
        hits += fm["c_lo"] < C < fm["c_hi"]
    assert 0.7 <= hits / trials <= 1.0


def test_bootstrap_resamples_seeds_not_rows():
    """A per-seed random effect is common to all β of a seed: resampling seeds keeps it, so the CI of a
    reflects the seed-to-seed spread (a row bootstrap would treat the 8 β of a seed as independent)."""
    runs = synthetic_runs(n_seeds=12, noise=0.0, seed_effect=0.3, rng=3)
    fm = F.fit_runs(runs, n_boot=1000, seed=0).query("quantity == 'first_merge'").iloc[0]
    # c is exact (the seed effect is constant in β), a is uncertain by ~0.3/sqrt(12)
    assert fm["c_hi"] - fm["c_lo"] < 1e-9
    assert 0.15 < fm["a_hi"] - fm["a_lo"] < 0.7


def test_bootstrap_is_reproducible_and_seeded():
    runs = synthetic_runs()
    a = F.fit_runs(runs, n_boot=200, seed=7)
    b = F.fit_runs(runs, n_boot=200, seed=7)
    c = F.fit_runs(runs, n_boot=200, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["c_lo"], c["c_lo"])
    # adding another group does not change this group's intervals
    both = F.fit_runs(pd.concat([runs, synthetic_runs(group="g2", rng=5)]), n_boot=200, seed=7)
    same = both[both["group_id"] == "g1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(same, a)


def test_censored_and_failed_runs_are_counted_and_excluded():
    runs = synthetic_runs()
    high = runs["beta"] == BETAS[-1]
    runs.loc[high & (runs["seed"] < 5), ["first_merge_time", "escape_time"]] = np.nan
    runs.loc[high & (runs["seed"] < 5), ["censored", "escape_censored"]] = True
    runs.loc[runs["seed"] == 19, "status"] = "failed"
    runs.loc[runs["seed"] == 19, "reason"] = "step size underflow"
    out = F.fit_runs(runs, n_boot=100, seed=0)
    for _, row in out.iterrows():
        assert row["n_runs"] == 160
        assert row["n_failed"] == 8
        assert row["n_censored"] == 5
        assert row["n_obs"] == 160 - 8 - 5
        assert row["n_seeds"] == 19
        assert row["status"] == "ok"
        assert row["c"] == pytest.approx(C, abs=0.015)


def test_too_few_beta_values_is_reported_not_dropped():
    runs = synthetic_runs()
    runs = runs[runs["beta"].isin(BETAS[:2])]
    out = F.fit_runs(runs, n_boot=100)
    assert len(out) == 2 and (out["status"] == "too_few_beta").all()
    assert out["c"].isna().all() and (out["n_obs"] == 40).all()


def test_all_censored_group():
    runs = synthetic_runs(n_seeds=3)
    runs["first_merge_time"] = np.nan
    runs["censored"] = True
    out = F.fit_runs(runs, n_boot=50).query("quantity == 'first_merge'").iloc[0]
    assert out["status"] == "too_few_beta" and out["n_censored"] == 24 and out["n_obs"] == 0


def test_uniform_data_has_no_escape_fit_and_no_theory():
    runs = synthetic_runs()
    runs["init"] = "uniform"
    runs["k"] = 1
    runs["d_min"] = np.nan
    runs["alpha"] = np.nan
    out = F.fit_runs(runs, n_boot=50)
    assert list(out["quantity"]) == ["first_merge"]
    assert math.isnan(out["theory_slope"].iloc[0]) and math.isnan(out["slope_ratio"].iloc[0])


def test_ode_slope_matches_fit_of_exact_merge_times():
    """For two point clusters, fitting the exact ODE merge times gives ode_slope; our fit on those
    same times must agree to round-off."""
    from attention_dynamics.theory.twocluster import two_cluster_merge_time

    runs = synthetic_runs(n_seeds=3, d_min=math.pi / 2)
    for model in ("usa", "sa"):
        r = runs.assign(model=model)
        t = r["beta"].map(lambda b: two_cluster_merge_time(math.pi / 2, 0.1, b, 32.0, 32.0, 64, model))
        r = r.assign(first_merge_time=t)
        fm = F.fit_runs(r, n_boot=0).query("quantity == 'first_merge'").iloc[0]
        assert fm["c"] == pytest.approx(fm["ode_slope"], rel=1e-9)
        assert abs(fm["slope_ratio"] - 1) < 0.02  # at D = π/2 the finite-β bias is ~1%
        assert fm["n_boot"] == 0 and math.isnan(fm["c_lo"])


def test_fit_columns_are_documented():
    out = F.fit_runs(synthetic_runs(n_seeds=3), n_boot=10)
    assert list(out.columns) == list(F.FIT_COLUMNS)
