"""Scaling-law fits ln T = a + c·β + b·ln β per fit group, with bootstrap CIs over seeds.

A *fit group* is the set of runs of one sweep that differ only by β and the seed
(``group_id`` in the runs table: same model, init, d, n, k, geometry, solver settings).
For each group and each quantity (``escape``: the escape time from the doubled caps,
caps only; ``first_merge``: the first merge time) we fit by ordinary least squares

    ln T = a + c·β + b·ln β

over every (β, seed) with a finite time, and report the theory slope next to c
(docs/science.md §3): 1 − cos D_min for the first merge of point-like clusters (D_min the
smallest angle between centres) and 1 − α for the escape from caps (GKPR24's theorem),
with their ratio. For k = 2 caps we also report ``ode_slope``: the same fit applied to
the exact two-point-cluster merge time (reduced ODE, ``theory.two_cluster_merge_time``)
at the group's β values, i.e. what c should be at finite β including the −ln β
and O(1/β) corrections.

Censoring and failures are explicit, never silently dropped: runs with status other
than ``ok`` are counted in ``n_failed``; ok runs without the event before the end of
the run are counted in ``n_censored``. Both are excluded from the OLS (which biases c
low when the largest β are censored: check ``n_censored``).

Confidence intervals: percentile bootstrap resampling *seed indices* with replacement
(all β of a drawn seed come along, which keeps the common-random-numbers correlation
between β values: a seed index has the same initial data at every β), with a seeded
generator, so the CIs are reproducible.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

__all__ = ["FIT_COLUMNS", "QUANTITIES", "ols", "bootstrap_fit", "fit_group", "fit_runs", "main"]

QUANTITIES = {
    "escape": ("escape_time", "1 - alpha"),
    "first_merge": ("first_merge_time", "1 - cos D_min"),
}
GROUP_COLUMNS = ["sweep", "group_id", "model", "init", "d", "n", "k", "eps", "spacing", "centres", "min_angle",
                 "masses", "r", "sigma", "theta_c", "t_max"]

FIT_COLUMNS = {
    "sweep": "sweep name",
    "group_id": "fit group: runs of the sweep that differ only by β and seed (see runs.group_id)",
    "model": "sa or usa",
    "init": "caps, gaussian or uniform",
    "d": "ambient dimension",
    "n": "number of particles",
    "k": "number of caps / components",
    "eps": "cap radius ε (1 − cos units; caps only)",
    "spacing": "angle between consecutive great-circle centres (rad; NaN = 2π/k or random centres)",
    "centres": "circle or random",
    "min_angle": "random centres: minimum pairwise angle (rad)",
    "masses": "per-cluster masses (JSON; empty = equal)",
    "r": "gaussian: √r is the distance of the component means from the origin",
    "sigma": "gaussian: component standard deviation",
    "theta_c": "single-linkage angle (rad)",
    "t_max": "simulation horizon",
    "quantity": "escape (first exit from a doubled cap) or first_merge (first merge time)",
    "n_runs": "runs in the group (all β and seeds)",
    "n_failed": "runs with status failed or error (excluded from the fit)",
    "n_censored": "ok runs in which the event did not happen before the run ended (excluded from the fit)",
    "n_obs": "observations in the OLS (finite times)",
    "n_seeds": "distinct seed indices among the observations (the bootstrap resamples these)",
    "n_beta": "distinct β values among the observations",
    "beta_min": "smallest β among the observations",
    "beta_max": "largest β among the observations",
    "a": "fitted intercept of ln T = a + c·β + b·ln β",
    "b": "fitted coefficient of ln β",
    "c": "fitted coefficient of β (the exponential rate)",
    "a_lo": "lower end of the bootstrap CI of a",
    "a_hi": "upper end of the bootstrap CI of a",
    "b_lo": "lower end of the bootstrap CI of b",
    "b_hi": "upper end of the bootstrap CI of b",
    "c_lo": "lower end of the bootstrap CI of c",
    "c_hi": "upper end of the bootstrap CI of c",
    "ci_level": "confidence level of the intervals (e.g. 0.95)",
    "n_boot": "bootstrap resamples with a well-posed fit (of those requested)",
    "resid_sd": "standard deviation of the OLS residuals of ln T",
    "r2": "coefficient of determination of the OLS",
    "theory": "which theory slope: '1 - cos D_min' (first merge) or '1 - alpha' (escape, GKPR24)",
    "d_min": "median over the group's runs of the smallest angle between centres (rad)",
    "alpha": "median over the group's runs of the cap separation α(ε)",
    "theory_slope": "the theory slope: 1 − cos D_min or 1 − α (NaN when undefined, e.g. uniform data)",
    "slope_ratio": "c / theory_slope",
    "ratio_lo": "c_lo / theory_slope",
    "ratio_hi": "c_hi / theory_slope",
    "ode_slope": "k = 2 caps, first merge: c fitted to the exact two-point-cluster merge times at the same β "
                 "values (reduced ODE from D_min to θ_c); NaN otherwise",
    "status": "ok, or why no fit: too_few_beta (< 3 distinct β), too_few_obs (< 4 observations)",
}


def design(beta) -> np.ndarray:
    beta = np.asarray(beta, dtype=np.float64)
    return np.column_stack([np.ones_like(beta), beta, np.log(beta)])


def ols(beta, log_t) -> tuple[np.ndarray, float, float]:
    """OLS of ln T on (1, β, ln β): returns ([a, c, b], residual sd, r²)."""
    X = design(beta)
    y = np.asarray(log_t, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = y - X @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(res @ res) / ss_tot if ss_tot > 0 else float("nan")
    dof = max(len(y) - 3, 1)
    return coef, float(math.sqrt(float(res @ res) / dof)), r2


def bootstrap_fit(beta, log_t, seed_index, *, n_boot: int = 1000, rng=None) -> np.ndarray:
    """Bootstrap coefficient draws (n_valid, 3) = [a, c, b], resampling seed indices.

    Each resample draws the distinct seed indices with replacement; an observation
    enters the weighted least squares with weight = how often its seed was drawn.
    Resamples whose normal matrix is (near) singular are dropped.
    """
    rng = np.random.default_rng(rng)
    X = design(beta)
    y = np.asarray(log_t, dtype=np.float64)
    seeds, inv = np.unique(np.asarray(seed_index), return_inverse=True)
    if n_boot <= 0 or len(seeds) < 2:
        return np.empty((0, 3))
    draws = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    counts = np.zeros((n_boot, len(seeds)))
    np.add.at(counts, (np.repeat(np.arange(n_boot), len(seeds)), draws.ravel()), 1.0)
    W = counts[:, inv]                                   # (B, m) observation weights
    A = np.einsum("bi,ij,ik->bjk", W, X, X)              # (B, 3, 3)
    rhs = np.einsum("bi,ij,i->bj", W, X, y)              # (B, 3)
    # a resample is usable only if it keeps >= 3 distinct β values
    beta_ids = np.unique(X[:, 1], return_inverse=True)[1]
    n_distinct = np.zeros(n_boot, dtype=int)
    for j in range(beta_ids.max() + 1):
        n_distinct += (W[:, beta_ids == j].sum(axis=1) > 0)
    ok = n_distinct >= 3
    cond = np.full(n_boot, np.inf)
    if ok.any():
        cond[ok] = np.linalg.cond(A[ok])
    ok &= cond < 1e12
    if not ok.any():
        return np.empty((0, 3))
    return np.linalg.solve(A[ok], rhs[ok][..., None])[..., 0]


def _median(s: pd.Series) -> float:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else float("nan")


def _ode_slope(first: pd.Series, betas: np.ndarray, d_min: float) -> float:
    """c fitted to exact two-point-cluster merge times at the given β (k = 2 caps only)."""
    from ..theory.twocluster import two_cluster_merge_time

    if len(betas) < 3 or not (first["theta_c"] < d_min < math.pi):
        return float("nan")
    n = int(first["n"])
    masses = first.get("masses", "")
    if isinstance(masses, str) and masses:
        import json

        from ..initial import split_counts

        n_a, n_b = (float(c) for c in split_counts(n, 2, json.loads(masses)))
    else:
        n_a, n_b = float(n - n // 2), float(n // 2)
    try:
        t = [two_cluster_merge_time(d_min, float(first["theta_c"]), float(b), n_a, n_b, n, first["model"])
             for b in betas]
    except (ValueError, FloatingPointError):
        return float("nan")
    coef, *_ = ols(betas, np.log(t))
    return float(coef[1])


def fit_group(g: pd.DataFrame, quantity: str, *, n_boot: int = 1000, ci: float = 0.95, rng=None) -> dict:
    """Fit one group's runs for ``quantity`` (escape or first_merge); returns one fits row."""
    col, theory = QUANTITIES[quantity]
    first = g.iloc[0]
    row = {c: first[c] for c in GROUP_COLUMNS if c in g.columns}
    ok = g["status"] == "ok"
    t = pd.to_numeric(g[col], errors="coerce")
    good = ok & np.isfinite(t) & (t > 0)
    obs = g[good]
    y = np.log(t[good].to_numpy(dtype=float))
    betas = obs["beta"].to_numpy(dtype=float)
    row.update(quantity=quantity, n_runs=len(g), n_failed=int((~ok).sum()), n_censored=int((ok & ~good).sum()),
               n_obs=int(good.sum()), n_seeds=int(obs["seed"].nunique()), n_beta=int(np.unique(betas).size),
               beta_min=float(betas.min()) if len(betas) else float("nan"),
               beta_max=float(betas.max()) if len(betas) else float("nan"), ci_level=ci, theory=theory)
    d_min, alpha = _median(g.get("d_min", pd.Series(dtype=float))), _median(g.get("alpha", pd.Series(dtype=float)))
    row["d_min"], row["alpha"] = d_min, alpha
    if quantity == "first_merge":
        theory_slope = 1.0 - math.cos(d_min) if math.isfinite(d_min) and first["init"] != "uniform" else math.nan
    else:
        theory_slope = 1.0 - alpha if math.isfinite(alpha) else math.nan
    row["theory_slope"] = theory_slope
    nan = float("nan")
    fit = dict.fromkeys(["a", "b", "c", "a_lo", "a_hi", "b_lo", "b_hi", "c_lo", "c_hi", "resid_sd", "r2"], nan)
    fit["n_boot"] = 0
    if row["n_beta"] < 3:
        status = "too_few_beta"
    elif row["n_obs"] < 4:
        status = "too_few_obs"
    else:
        status = "ok"
        (a, c, b), sd, r2 = ols(betas, y)
        fit.update(a=float(a), b=float(b), c=float(c), resid_sd=sd, r2=r2)
        draws = bootstrap_fit(betas, y, obs["seed"].to_numpy(), n_boot=n_boot, rng=rng)
        fit["n_boot"] = int(len(draws))
        if len(draws):
            lo, hi = np.percentile(draws, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
            fit.update(a_lo=lo[0], a_hi=hi[0], c_lo=lo[1], c_hi=hi[1], b_lo=lo[2], b_hi=hi[2])
    row.update(fit)
    row["slope_ratio"] = fit["c"] / theory_slope if theory_slope and math.isfinite(theory_slope) else nan
    row["ratio_lo"] = fit["c_lo"] / theory_slope if theory_slope and math.isfinite(theory_slope) else nan
    row["ratio_hi"] = fit["c_hi"] / theory_slope if theory_slope and math.isfinite(theory_slope) else nan
    if quantity == "first_merge" and first["init"] == "caps" and int(first["k"]) == 2 and status == "ok":
        row["ode_slope"] = _ode_slope(first, np.unique(betas), d_min)
    else:
        row["ode_slope"] = nan
    row["status"] = status
    return row


def fit_runs(runs: pd.DataFrame, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """All fits of an aggregated runs table, one row per (group, quantity), in a stable order."""
    if "group_id" not in runs.columns:  # a bare per-cell table: groups from the parameters
        keys = [c for c in ["sweep", "model", "init", "d", "n", "k", "eps", "spacing", "theta_c", "t_max", "delta"]
                if c in runs.columns]
        runs = runs.assign(group_id=runs[keys].astype(str).agg("|".join, axis=1))
    rows = []
    for (_, gid), g in runs.groupby(["sweep", "group_id"], sort=True):
        quantities = ["first_merge"]
        if (g["init"] == "caps").all() and (g["k"] >= 2).all():
            quantities.insert(0, "escape")
        for q in quantities:
            # one generator per (group, quantity): adding a group never changes another's CIs
            key = int(hashlib.sha256(f"{g['sweep'].iloc[0]}/{gid}/{q}".encode()).hexdigest()[:8], 16)
            rows.append(fit_group(g, q, n_boot=n_boot, ci=ci, rng=np.random.default_rng([seed, key])))
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS)) if rows else pd.DataFrame(columns=list(FIT_COLUMNS))


def main(argv=None) -> int:
    import argparse
    import json
    import sys

    import pyarrow.parquet as pq

    from ..pipeline.io import provenance, read_provenance, write_table

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.analysis.fits", description="scaling-law fits")
    p.add_argument("--runs", required=True, help="aggregated runs.parquet")
    p.add_argument("--out", required=True, help="fits.parquet to write")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--ci", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    runs = pq.read_table(args.runs).to_pandas()
    fits = fit_runs(runs, n_boot=args.n_boot, ci=args.ci, seed=args.seed)
    src = read_provenance(args.runs)
    prov = provenance(config_hash=src.get("config_hash", ""), sweeps=src.get("sweeps", ""),
                      fit_settings={"n_boot": args.n_boot, "ci": args.ci, "seed": args.seed},
                      model="ln T = a + c*beta + b*ln(beta), OLS; bootstrap over seed indices")
    for c in ("n_runs", "n_failed", "n_censored", "n_obs", "n_seeds", "n_beta", "n_boot", "d", "n", "k"):
        fits[c] = pd.to_numeric(fits[c]).astype("int64")
    write_table(fits, args.out, columns_doc=FIT_COLUMNS, meta=prov)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        show = ["sweep", "model", "init", "d", "n", "k", "quantity", "n_obs", "n_censored", "n_failed", "c", "c_lo",
                "c_hi", "theory_slope", "slope_ratio", "ode_slope", "status"]
        print(fits[show].to_string(index=False), file=sys.stdout)
    print(json.dumps({"fits": len(fits)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
