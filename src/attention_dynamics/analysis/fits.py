"""Scaling-law fits ln T = a + c·β + b·ln β per fit group, with censoring, seed-bootstrap CIs and flags.

A *fit group* is the set of runs of one sweep that differ only by β and the seed
(``group_id`` in the runs table). For each group and each quantity (``escape``: the escape
time from the doubled caps, caps only; ``first_merge``: the first merge time) we fit

    ln T = a + c·β + b·ln β + σ·ε,   ε ~ N(0, 1)

Method: censored maximum likelihood
-----------------------------------
A run in which the event did not happen before the horizon is **right-censored** at its
``t_end``: we know T > t_end, and that is what enters the likelihood (Tobit / log-normal
accelerated-failure-time model; :mod:`.censored`). Dropping such runs (what an OLS on the
observed times does) keeps only the fastest seeds at the largest β and biases c low;
treating t_end as a time does the same. Failed runs (status failed/error) are excluded and
counted in ``n_failed``; ok runs without the event that did not reach the horizon (e.g. the
caps started as one cluster) are excluded and counted in ``n_no_event``.

Why our own maximum likelihood rather than lifelines' ``LogNormalAFTFitter``: the two give
the same estimates (tests/test_fits.py checks coefficients, σ and log-likelihood agree to
1e-6), but lifelines takes ~50–300 ms per fit and the intervals need one fit per bootstrap
resample (1000–2000 per group, ~140 fits in config/paper.yaml: hours), while the batched
Newton solver of :mod:`.censored` (Olsen's concave parametrisation, so Newton cannot go
astray) fits all resamples of a group at once: ~50 ms per group with 1000 resamples.

Confidence intervals: the seed-cluster bootstrap with a few-cluster t correction
-------------------------------------------------------------------------------
A seed index has the same initial data at every β (common random numbers), so the
observations of one seed are correlated across β: the resampling unit is the seed.
``scipy.stats.bootstrap`` fits this design exactly: its data are the distinct seed indices
and the (vectorised) statistic refits the censored model with each observation weighted by
how often its seed was drawn. Its percentile and BCa intervals, however, undercover with the
seed counts of a sweep: on synthetic censored data with known (a, b, c), 200 replicates each,
95 % intervals covered c in 84 % (5 seeds), 89–91 % (10 seeds) and 90 % (20 seeds) of the
replicates — the bootstrap variance of a G-cluster mean is low by (G − 1)/G and the normal
quantile ignores that the spread is estimated from G clusters. We therefore report

    c ± t_{G−1, (1+ci)/2} · SD*(c) · √(G/(G − 1))

(SD* the standard deviation of the bootstrap draws, G the number of seeds), which covered in
93–97 % of the replicates for G = 2 … 30, 0–50 % censored, with and without per-seed random
intercepts and slopes; the censored estimate of c was unbiased within ±0.003 (1/6 of its SD)
in all of them (``tests/test_fits.py::test_censored_fit_coverage_slow``). A resample in which the
fit is not identified (fewer than ``MIN_EXACT_BETA`` β values with an observed time, or no
maximum of the likelihood) is left out; if more than 5 % are, the row is flagged
``unstable_ci``.

Status: ``ok`` only when nothing below applies
----------------------------------------------
No estimate (c is NaN):
  ``no_runs`` (no ok run), ``all_censored`` (no observed time), ``too_few_beta`` (fewer than
  ``MIN_EXACT_BETA`` = 3 distinct β with an observed time: a, b, c are not identified),
  ``too_few_obs`` (fewer than ``MIN_EXACT_OBS`` = 4 observed times), ``no_convergence``.
Estimate given, but do not use it as is (comma-separated when several apply):
  ``slope_not_positive`` (c ≤ 0: no exponential growth), ``ci_contains_zero`` (the interval of c
  reaches 0), ``no_ci`` (no interval: n_boot = 0 or a single seed), ``unstable_ci`` (above),
  ``lack_of_fit`` (the β-wise means depart from the law: likelihood-ratio test against one free
  mean per β, p < ``LOF_ALPHA`` = 0.01 *and* a departure larger than ``LOF_TOL`` = 0.25 in ln T
  at some β; the law's own finite-β curvature, at most 0.1 on the exact two-cluster times for
  β from 5 to 80, stays below the tolerance), ``outlier_seeds`` (one seed's mean residual departs
  from the other seeds' beyond chance: leave-one-seed-out Student t test, Bonferroni over the
  G ≥ 4 seeds, p < ``OUTLIER_ALPHA`` = 0.01, exact under normal seed effects; e.g. an event of
  another kind such as a straggler absorbed at t ≈ 0.05 at every β; the likelihood-ratio test
  cannot see it, because a seed's offset that is linear in β is absorbed by the law),
  ``extra_clusters`` (first merge of caps/gaussian data: some runs of the fit start with more
  macroscopic clusters than centres, ``n_clusters_initial > k``: a wide cap or component split
  in two, and the first merge may join its parts rather than two of the k clusters),
  ``no_event_runs`` (ok runs that ended without the event and without reaching the horizon
  were left out), ``partial_failures`` (a run failed although other seeds ran at its β and its
  seed ran at other β: the missing time may be selective, e.g. only the slowest seeds fail; a
  seed or a β that failed entirely is simply absent).

Theory next to c (docs/science.md §3): ``theory_slope`` = 1 − cos D_min (first merge of
point-like clusters) or 1 − α (escape, GKPR24's bound), the β → ∞ limit; and ``ode_slope``,
the *exact finite-β slope*: the same law fitted (least squares) to the exact first-merge times
of the fit's (seed, β) pairs, each computed from that seed's own k collapsed clusters (the mean
directions of its caps, drawn again from the seed's stream) integrated as a k-point system
(:mod:`attention_dynamics.theory.kpoint`). At finite β it differs from 1 − cos D by the −ln β
and O(1/β) terms: for caps 0.8 rad apart on an arc, over β = 10–40, by +2 % to +13 %.
``ode_slope_nominal`` is the same from the nominal centres and counts. Why per seed: for
mirror-symmetric arcs (k ≥ 3 equal gaps) the middle cluster is pulled equally from both sides,
and the first merge depends on which side wins — decided by the seeds' jitter (cap means off
their centres by ~radius/√(n/k)) or by unequal counts (22/21/21). Measured on the default
config's staircase sweep (k = 3, 4, ε = 1e-3, n = 64, 10 seeds, β = 10–40): the per-seed
centres predict every run's first-merge time to 0.1–0.2 % (at most 1 %), their slope is within
0.0006 of c (inside every CI), while the nominal-centre slope is 2.5 % above c (outside).
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings

import numpy as np
import pandas as pd

from .censored import fit_censored

__all__ = ["FIT_COLUMNS", "QUANTITIES", "STATUSES", "MIN_EXACT_BETA", "MIN_EXACT_OBS", "LOF_ALPHA",
           "LOF_TOL", "OUTLIER_ALPHA", "design", "ols", "observations", "censored_fit", "bootstrap_fit", "lack_of_fit",
           "exact_slope", "fit_group", "fit_runs", "main"]

QUANTITIES = {
    "escape": ("escape_time", "1 - alpha"),
    "first_merge": ("first_merge_time", "1 - cos D_min"),
}
GROUP_COLUMNS = ["sweep", "group_id", "model", "init", "d", "n", "k", "eps", "spacing", "centres", "min_angle",
                 "masses", "r", "sigma", "theta_c", "t_max"]

MIN_EXACT_BETA = 3    # distinct β with an observed time: a, c, b must be identified by observed times
MIN_EXACT_OBS = 4     # observed times: one more than the coefficients
LOF_ALPHA = 0.01      # lack-of-fit test level
LOF_TOL = 0.25        # smallest departure (ln T) of a β-wise mean from the law that we flag
OUTLIER_ALPHA = 0.01  # level of the (Bonferroni-adjusted) outlying-seed test
MAX_INVALID_BOOT = 0.05

STATUSES = {
    "ok": "fit and interval usable: none of the flags below applies",
    "no_runs": "no ok run in the group (all failed): no fit",
    "all_censored": "the event happened in no run before its horizon: no fit (raise t_max)",
    "too_few_beta": f"fewer than {MIN_EXACT_BETA} distinct β with an observed time: no fit",
    "too_few_obs": f"fewer than {MIN_EXACT_OBS} observed times: no fit",
    "no_convergence": "the censored maximum likelihood did not converge: no fit",
    "slope_not_positive": "c ≤ 0: no exponential growth of T with β",
    "ci_contains_zero": "the confidence interval of c contains 0",
    "no_ci": "no confidence interval (n_boot = 0 or a single seed)",
    "unstable_ci": f"more than {MAX_INVALID_BOOT:.0%} of the bootstrap resamples gave no fit; the interval uses "
                   "the others",
    "lack_of_fit": f"β-wise means depart from the law (likelihood-ratio p < {LOF_ALPHA} and a departure > "
                   f"{LOF_TOL} in ln T)",
    "outlier_seeds": f"one seed's observed ln T lie off the fit far more than the other seeds' (outlier_p < "
                     f"{OUTLIER_ALPHA}): an event of another kind, e.g. a straggler absorption?",
    "extra_clusters": "some runs start with more macroscopic clusters than centres (n_extra_cluster_runs > 0): their "
                      "first merge may join the parts of a split cap or component, not two of the k clusters",
    "no_event_runs": "ok runs that ended without the event and before the horizon were left out",
    "partial_failures": "a run failed although its seed ran at other β and other seeds ran at its β (the missing "
                        "times may be selective)",
}

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
    "n_censored": "ok runs in which the event did not happen before the horizon: in the fit as right-censored at "
                  "t_end (T > t_end)",
    "n_no_event": "ok runs without the event that stopped before the horizon (e.g. caps that start as one "
                  "cluster; excluded)",
    "n_extra_cluster_runs": "first merge, caps/gaussian: runs in the fit that start with more macroscopic clusters "
                            "than centres (n_clusters_initial > k), so their first merge may join the parts of a "
                            "split cap or component",
    "n_obs": "observed event times in the fit (the censored runs come in addition)",
    "n_seeds": "distinct seed indices among the observed times (the bootstrap resamples the seeds of the fit)",
    "n_beta": "distinct β values among the observed times",
    "beta_min": "smallest β with an observed time",
    "beta_max": "largest β with an observed time",
    "beta_max_fit": "largest β in the fit (observed or censored)",
    "a": "fitted intercept of ln T = a + c·β + b·ln β (censored maximum likelihood)",
    "b": "fitted coefficient of ln β",
    "c": "fitted coefficient of β (the exponential rate)",
    "a_lo": "lower end of the bootstrap CI of a",
    "a_hi": "upper end of the bootstrap CI of a",
    "b_lo": "lower end of the bootstrap CI of b",
    "b_hi": "upper end of the bootstrap CI of b",
    "c_lo": "lower end of the bootstrap CI of c",
    "c_hi": "upper end of the bootstrap CI of c",
    "ci_level": "confidence level of the intervals (e.g. 0.95)",
    "ci_method": "how the intervals were computed: t (estimate ± Student t_{G−1} × the seed-bootstrap standard "
                 "deviation × √(G/(G−1)), G seeds), or empty (no interval)",
    "n_boot": "bootstrap resamples with a fit (of those requested; a resample drawing too few distinct β with an "
              "observed time has none)",
    "resid_sd": "maximum-likelihood σ: spread of ln T around the fitted law (seed-to-seed and β-to-β)",
    "lof_p": "p-value of the lack-of-fit likelihood-ratio test (law vs one free mean per β; needs ≥ 4 β with an "
             "observed time and replicate seeds; NaN otherwise)",
    "lof_dev": "largest departure (ln T) of a β-wise mean from the fitted law (for a β with only censored runs: "
               "how far the law falls below their smallest horizon)",
    "outlier_p": "Bonferroni-adjusted p-value of the most outlying seed: its mean residual (observed times) "
                 "against the other seeds' by a leave-one-out Student t test (G − 2 degrees of freedom); NaN with "
                 "fewer than 4 seeds",
    "theory": "which theory slope: '1 - cos D_min' (first merge) or '1 - alpha' (escape, GKPR24)",
    "d_min": "median over the group's runs of the smallest angle between centres (rad)",
    "alpha": "median over the group's runs of the cap separation α(ε)",
    "theory_slope": "the β → ∞ theory slope: 1 − cos D_min or 1 − α (NaN when undefined, e.g. uniform data)",
    "slope_ratio": "c / theory_slope",
    "ratio_lo": "c_lo / theory_slope",
    "ratio_hi": "c_hi / theory_slope",
    "ode_slope": "exact finite-β slope, what c should be: the law fitted (least squares) to the exact first-merge "
                 "times of the fit's (seed, β) pairs, each from its seed's own k collapsed clusters (the mean "
                 "directions of its caps/components, integrated as k weighted points on the great circle); caps/"
                 "gaussian with circle centres; NaN otherwise (random centres, uniform, escape, equilibria, < 3 β)",
    "ode_slope_nominal": "the same from the nominal centres and counts, without the seeds' jitter (k = 2: the "
                         "two-cluster quadrature); for mirror-symmetric arcs (k ≥ 3 equal gaps) the first merge of "
                         "the nominal centres is ill-conditioned and this differs from ode_slope by a few %",
    "status": "ok, or the comma-separated flags that apply: " + "; ".join(
        f"{k}: {v}" for k, v in STATUSES.items() if k != "ok"),
}


def design(beta) -> np.ndarray:
    """Design matrix (1, β, ln β)."""
    beta = np.asarray(beta, dtype=np.float64)
    return np.column_stack([np.ones_like(beta), beta, np.log(beta)])


def ols(beta, log_t) -> tuple[np.ndarray, float, float]:
    """Least squares of ln T on (1, β, ln β): returns ([a, c, b], residual sd, r²) (exact data, e.g. ODE times)."""
    X = design(beta)
    y = np.asarray(log_t, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = y - X @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(res @ res) / ss_tot if ss_tot > 0 else float("nan")
    dof = max(len(y) - 3, 1)
    return coef, float(math.sqrt(float(res @ res) / dof)), r2


# ---------------------------------------------------------------------------------------------
# observations
# ---------------------------------------------------------------------------------------------
def observations(g: pd.DataFrame, quantity: str) -> tuple[pd.DataFrame, dict]:
    """The fit's observations of one group: columns beta, seed, y (ln T or ln t_end), censored; and counts.

    Observed: status ok and a finite time > 0. Censored: status ok, no event, and the run
    reached its horizon (escape: ``escape_censored``; first merge: ``censored``, i.e. t_max was
    reached with more than one cluster), with a finite t_end > 0. Anything else ok is a
    run without the event that stopped early (``n_no_event``).
    """
    col = QUANTITIES[quantity][0]
    ok = (g["status"] == "ok").to_numpy()
    t = pd.to_numeric(g[col], errors="coerce").to_numpy(dtype=float)
    t_end = pd.to_numeric(g.get("t_end", pd.Series(np.nan, index=g.index)), errors="coerce").to_numpy(dtype=float)
    flag_col = "escape_censored" if quantity == "escape" else "censored"
    reached = g.get(flag_col, pd.Series(False, index=g.index)).fillna(False).astype(bool).to_numpy()
    exact = ok & np.isfinite(t) & (t > 0)
    cens = ok & ~exact & ~(np.isfinite(t)) & reached & np.isfinite(t_end) & (t_end > 0)
    no_event = ok & ~exact & ~cens
    keep = exact | cens
    obs = pd.DataFrame({
        "beta": g["beta"].to_numpy(dtype=float)[keep],
        "seed": g["seed"].to_numpy()[keep],
        "y": np.log(np.where(exact, t, t_end)[keep]),
        "censored": cens[keep],
    })
    # a failure is selective when neither its whole seed nor its whole β failed
    beta_all, seed_all = g["beta"].to_numpy(dtype=float), g["seed"].to_numpy()
    ok_beta = {b for b, o in zip(beta_all, ok) if o}
    ok_seed = {s for s, o in zip(seed_all, ok) if o}
    partial = any((b in ok_beta) and (s in ok_seed) for b, s, o in zip(beta_all, seed_all, ok) if not o)
    # runs with more macroscopic clusters at t = 0 than centres: a cap or component split, and the
    # first merge may join its parts rather than two of the k clusters
    extra = np.zeros(len(g), dtype=bool)
    if quantity == "first_merge" and "n_clusters_initial" in g.columns:
        k = pd.to_numeric(g["k"], errors="coerce").to_numpy(dtype=float)
        n0 = pd.to_numeric(g["n_clusters_initial"], errors="coerce").to_numpy(dtype=float)
        extra = (g["init"] != "uniform").to_numpy() & (n0 > k)
    counts = dict(n_runs=len(g), n_failed=int((~ok).sum()), n_censored=int(cens.sum()),
                  n_no_event=int(no_event.sum()), n_extra_cluster_runs=int((extra & keep).sum()),
                  partial_failures=partial)
    return obs, counts


def _identified(beta, cens, w) -> np.ndarray:
    """Per weight row (a bootstrap resample): at least MIN_EXACT_BETA distinct β with an observed time."""
    W = np.atleast_2d(w)
    exact = ~cens
    n_lev = np.zeros(W.shape[0], dtype=int)
    for b in np.unique(beta[exact]):
        n_lev += W[:, exact & (beta == b)].sum(axis=1) > 0
    return n_lev >= MIN_EXACT_BETA


def censored_fit(obs: pd.DataFrame, weights=None):
    """Censored ML fit of ln T = a + cβ + b ln β on ``observations`` output; returns a censored.CensoredFit."""
    return fit_censored(design(obs["beta"]), obs["y"].to_numpy(float), obs["censored"].to_numpy(bool), weights)


def bootstrap_fit(obs: pd.DataFrame, coef, *, n_boot: int = 1000, ci: float = 0.95, rng=None,
                  method: str = "t"):
    """Seed-cluster bootstrap interval of (a, c, b); returns (lo, hi, n_valid, how, n_invalid).

    scipy.stats.bootstrap resamples the distinct seed indices; the statistic refits the
    censored model with observation weights = multiplicity of their seed in the resample
    (a resample whose fit is not identified gives NaN and is left out). ``method``:

    * ``"t"`` (default): coef ± t_{G−1, (1+ci)/2} · SD* · √(G/(G−1)), with SD* the standard
      deviation of the bootstrap draws and G the number of seeds: the cluster bootstrap's
      variance is low by (G−1)/G, and with G estimated clusters the quantile is Student's;
    * ``"BCa"``, ``"percentile"``: scipy's intervals (measured to undercover with few seeds;
      kept for comparison).
    """
    from scipy.stats import bootstrap
    from scipy.stats import t as student

    seeds, inv = np.unique(obs["seed"].to_numpy(), return_inverse=True)
    nan3 = np.full(3, np.nan)
    G = len(seeds)
    if n_boot <= 0 or G < 2:
        return nan3, nan3, 0, "", 0
    beta = obs["beta"].to_numpy(float)
    cens = obs["censored"].to_numpy(bool)

    def statistic(idx, axis=-1):
        idx = np.asarray(idx)
        flat = idx.reshape(-1, idx.shape[-1])
        counts = np.zeros((flat.shape[0], G))
        np.add.at(counts, (np.repeat(np.arange(flat.shape[0]), flat.shape[1]), flat.ravel()), 1.0)
        W = counts[:, inv]
        out = np.full((flat.shape[0], 3), np.nan)
        good = _identified(beta, cens, W)
        if good.any():
            f = censored_fit(obs, W[good])
            out[good] = np.where(f.converged[:, None], f.coef, np.nan)
        return np.moveaxis(out.reshape(*idx.shape[:-1], 3), -1, 0)   # (3, ...)

    scipy_method = "percentile" if method == "t" else method
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # scipy warns about NaN intervals; we handle them below
        res = bootstrap((np.arange(G),), statistic, vectorized=True, n_resamples=n_boot,
                        batch=min(n_boot, 500), confidence_level=ci, method=scipy_method, rng=rng)
    dist = np.asarray(res.bootstrap_distribution)            # (3, n_boot)
    valid = np.all(np.isfinite(dist), axis=0)
    n_valid, n_invalid = int(valid.sum()), int((~valid).sum())
    if n_valid < 2:
        return nan3, nan3, n_valid, "", n_invalid
    if method == "t":
        half = student.ppf(0.5 + ci / 2, G - 1) * dist[:, valid].std(axis=1, ddof=1) * math.sqrt(G / (G - 1))
        coef = np.asarray(coef, float)
        return coef - half, coef + half, n_valid, "t", n_invalid
    lo, hi = np.asarray(res.confidence_interval.low, float), np.asarray(res.confidence_interval.high, float)
    if n_invalid == 0 and np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
        return lo, hi, n_valid, method.lower(), 0
    q = np.percentile(dist[:, valid], [50 * (1 - ci), 50 * (1 + ci)], axis=1)
    return q[0], q[1], n_valid, "percentile", n_invalid


def lack_of_fit(obs: pd.DataFrame, fit) -> tuple[float, float]:
    """Likelihood-ratio lack-of-fit test of the law against one free mean per β (common σ).

    Returns (p-value, largest departure of a β-wise mean from the law in ln T). Needs at
    least 4 β levels with an observed time and a β level with two observed times (pure
    error); (NaN, NaN) otherwise. A β level whose runs are all censored has an unbounded
    free mean (it contributes 0 to the saturated likelihood); its departure is how far the
    law falls below the smallest horizon there.
    """
    beta = obs["beta"].to_numpy(float)
    cens = obs["censored"].to_numpy(bool)
    y = obs["y"].to_numpy(float)
    levels = np.unique(beta)
    exact_lv = [b for b in levels if np.any(~cens & (beta == b))]
    rep = any(np.count_nonzero(~cens & (beta == b)) >= 2 for b in levels)
    if len(exact_lv) < 4 or not rep:
        return float("nan"), float("nan")
    from scipy.stats import chi2

    a, c, b = fit.coef[0]
    pred = a + c * levels + b * np.log(levels)
    sel = np.isin(beta, exact_lv)
    onehot = (beta[sel][:, None] == np.array(exact_lv)[None, :]).astype(float)
    sat = fit_censored(onehot, y[sel], cens[sel])
    if not sat.converged[0]:
        return float("nan"), float("nan")
    lr = max(2.0 * (float(sat.loglik[0]) - float(fit.loglik[0])), 0.0)
    dof = len(levels) - 3
    dev = 0.0
    means = dict(zip(exact_lv, sat.coef[0]))
    for lv, pr in zip(levels, pred):
        if lv in means:
            dev = max(dev, abs(means[lv] - pr))
        else:
            dev = max(dev, float(np.min(y[beta == lv])) - pr)
    return float(chi2.sf(lr, dof)), float(dev)


def outlier_seed_p(obs: pd.DataFrame, fit) -> float:
    """Bonferroni-adjusted p-value of the most outlying seed (leave-one-seed-out t test).

    m_s is the mean residual of seed s over its observed times. If the seeds' m_s are
    normal, (m_s − mean of the others)/(SD of the others · √(1 + 1/(G−1))) is Student t with
    G − 2 degrees of freedom exactly; the seed with the smallest two-sided p is reported,
    times G. Leaving the tested seed out keeps one wild seed from inflating the spread it is
    judged against. NaN with fewer than 4 seeds.
    """
    from scipy.stats import t as student

    ex = obs[~obs["censored"]]
    a, c, b = fit.coef[0]
    beta = ex["beta"].to_numpy()
    res = ex["y"].to_numpy() - (a + c * beta + b * np.log(beta))
    m = pd.Series(res).groupby(ex["seed"].to_numpy()).mean().to_numpy()
    G = m.size
    if G < 4:
        return float("nan")
    p_min = 1.0
    for s in range(G):
        others = np.delete(m, s)
        sd = float(others.std(ddof=1))
        dev = abs(m[s] - others.mean())
        if sd == 0.0:
            p = 0.0 if dev > 0 else 1.0
        else:
            p = 2.0 * float(student.sf(dev / (sd * math.sqrt(1.0 + 1.0 / (G - 1))), G - 2))
        p_min = min(p_min, p)
    return min(1.0, G * p_min)


# ---------------------------------------------------------------------------------------------
# the exact finite-β slope
# ---------------------------------------------------------------------------------------------
_SEED_KEY_COLUMNS = ("init", "d", "n", "k", "eps", "centres", "spacing", "min_angle", "masses", "r", "sigma")


def _on_circle(first: pd.Series) -> bool:
    """Caps or gaussian data with k ≥ 2 great-circle centres (the k-point reduction applies)."""
    if first["init"] not in ("caps", "gaussian") or int(first["k"]) < 2:
        return False
    if str(first.get("centres", "circle") or "circle") != "circle":
        return False
    return not (first["init"] == "gaussian" and not float(first.get("r", 1.0)) > 0)


def _cell_of(first: pd.Series) -> dict:
    """The cell parameters of an aggregated runs row as the sweep expanded them (NaN: the key's default)."""
    from ..pipeline.cell import CELL_DEFAULTS

    cellp = {}
    for key, default in CELL_DEFAULTS.items():
        v = first.get(key, None)
        if key == "masses":
            v = json.loads(v) if isinstance(v, str) and v else None
        elif isinstance(default, str):
            v = v if isinstance(v, str) and v else default
        elif v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
            v = default
        elif isinstance(default, int) and not isinstance(default, bool):
            v = int(v)
        else:
            v = float(v)
        cellp[key] = v
    return cellp


def collapsed_centres(first: pd.Series, seeds, base_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Angles (S, k) on the centres' great circle and particle counts (S, k) of each seed's k clusters.

    Each seed's initial data are drawn again from its own stream (pipeline.cell.seed_sequence,
    which needs the config's ``base_seed``); a cluster's collapsed position is the mean direction
    of its particles (the intra-cluster contraction conserves it to O(radius²)), projected on the
    plane of the great circle (the out-of-plane offsets change the gaps at second order).
    """
    from ..pipeline.cell import make_initial_data, seed_sequence

    cellp = _cell_of(first)
    k = int(cellp["k"])
    angles, counts = [], []
    for s in seeds:
        data = make_initial_data(cellp, np.random.default_rng(seed_sequence(cellp, int(s), base_seed)))
        sums = np.zeros((k, data.x.shape[1]))
        np.add.at(sums, data.labels, data.x)
        angles.append(np.arctan2(sums[:, 1], sums[:, 0]))
        counts.append(np.bincount(data.labels, minlength=k).astype(float))
    return np.array(angles), np.array(counts)


def exact_first_merge_log_times(first: pd.Series, seeds, betas, base_seed: int = 0) -> np.ndarray:
    """ln of the exact first-merge time of each (seed, β) pair from that seed's collapsed centres (k-point ODE).

    NaN where not defined (see :func:`exact_slope`) or where the centres are an equilibrium.
    """
    from ..theory.kpoint import circle_merge_log_times

    seeds, betas = np.asarray(seeds), np.asarray(betas, dtype=float)
    if not _on_circle(first) or not set(_SEED_KEY_COLUMNS) <= set(first.index):
        return np.full(betas.shape, np.nan)
    uniq, inv = np.unique(seeds, return_inverse=True)
    ang, cnt = collapsed_centres(first, uniq, base_seed)
    r = circle_merge_log_times(ang[inv], cnt[inv], betas, first["model"], float(first["theta_c"]))
    return np.where(r.equilibrium, np.nan, r.log_first)


def exact_slope(first: pd.Series, seeds, betas, base_seed: int = 0) -> float:
    """``ode_slope``: c of the law fitted by least squares to the exact first-merge times of the fit's
    (seed, β) pairs, each from its seed's own collapsed centres (:func:`exact_first_merge_log_times`).

    Caps or gaussian data with great-circle centres, k ≥ 2, at least 3 β; NaN otherwise, or when
    the runs table lacks the columns that fix the seeds' initial data (a bare per-cell table).
    """
    betas = np.asarray(betas, dtype=float)
    if np.unique(betas).size < 3:
        return float("nan")
    t = exact_first_merge_log_times(first, seeds, betas, base_seed)
    if not np.all(np.isfinite(t)):
        return float("nan")
    return float(ols(betas, t)[0][1])


def exact_slope_nominal(first: pd.Series, betas) -> float:
    """``ode_slope_nominal``: the same from the nominal centres w_q with the nominal counts (no jitter).

    k = 2: the two-cluster quadrature (theory.twocluster); k ≥ 3: the k-point ODE (theory.kpoint).
    NaN as for :func:`exact_slope`, and for centres that are an equilibrium (e.g. spacing 2π/k).
    """
    from ..initial import split_counts
    from ..theory.kpoint import circle_angles, circle_merge_log_times
    from ..theory.twocluster import two_cluster_merge_time

    betas = np.unique(np.asarray(betas, dtype=float))
    if len(betas) < 3 or not _on_circle(first):
        return float("nan")
    k, n = int(first["k"]), int(first["n"])
    spacing = first.get("spacing", np.nan)
    spacing = None if spacing is None or not np.isfinite(float(spacing)) else float(spacing)
    masses = first.get("masses", "")
    counts = split_counts(n, k, json.loads(masses) if isinstance(masses, str) and masses else None).astype(float)
    theta = circle_angles(k, spacing)
    theta_c = float(first["theta_c"])
    try:
        if k == 2:
            gap = abs(float(np.angle(np.exp(1j * (theta[1] - theta[0])))))
            if not (theta_c < gap < math.pi - 1e-9):
                return float("nan")
            t = np.log([two_cluster_merge_time(gap, theta_c, float(b), counts[0], counts[1], n, first["model"])
                        for b in betas])
        else:
            r = circle_merge_log_times(np.tile(theta, (len(betas), 1)), counts, betas, first["model"], theta_c)
            if r.equilibrium.any():
                return float("nan")
            t = r.log_first
    except (ValueError, FloatingPointError):
        return float("nan")
    if not np.all(np.isfinite(t)):
        return float("nan")
    return float(ols(betas, t)[0][1])


# ---------------------------------------------------------------------------------------------
# one group
# ---------------------------------------------------------------------------------------------
def _median(s: pd.Series) -> float:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else float("nan")


def fit_group(g: pd.DataFrame, quantity: str, *, n_boot: int = 1000, ci: float = 0.95, rng=None,
              ci_method: str = "t", base_seed: int = 0) -> dict:
    """Fit one group's runs for ``quantity`` (escape or first_merge); returns one fits row."""
    _, theory = QUANTITIES[quantity]
    first = g.iloc[0]
    row = {c: first[c] for c in GROUP_COLUMNS if c in g.columns}
    obs, counts = observations(g, quantity)
    exact = obs[~obs["censored"]]
    betas = exact["beta"].to_numpy(float)
    row.update(quantity=quantity, n_runs=counts["n_runs"], n_failed=counts["n_failed"],
               n_censored=counts["n_censored"], n_no_event=counts["n_no_event"],
               n_extra_cluster_runs=counts["n_extra_cluster_runs"], n_obs=len(exact),
               n_seeds=int(exact["seed"].nunique()), n_beta=int(np.unique(betas).size),
               beta_min=float(betas.min()) if len(betas) else float("nan"),
               beta_max=float(betas.max()) if len(betas) else float("nan"),
               beta_max_fit=float(obs["beta"].max()) if len(obs) else float("nan"), ci_level=ci, theory=theory)
    d_min, alpha = _median(g.get("d_min", pd.Series(dtype=float))), _median(g.get("alpha", pd.Series(dtype=float)))
    row["d_min"], row["alpha"] = d_min, alpha
    if quantity == "first_merge":
        theory_slope = 1.0 - math.cos(d_min) if math.isfinite(d_min) and first["init"] != "uniform" else math.nan
    else:
        theory_slope = 1.0 - alpha if math.isfinite(alpha) else math.nan
    row["theory_slope"] = theory_slope
    nan = float("nan")
    fit = dict.fromkeys(["a", "b", "c", "a_lo", "a_hi", "b_lo", "b_hi", "c_lo", "c_hi", "resid_sd", "lof_p", "lof_dev",
                         "outlier_p"], nan)
    fit.update(n_boot=0, ci_method="")
    flags: list[str] = []
    if counts["n_runs"] == counts["n_failed"]:
        flags.append("no_runs")
    elif len(exact) == 0:
        flags.append("all_censored")
    elif row["n_beta"] < MIN_EXACT_BETA:
        flags.append("too_few_beta")
    elif row["n_obs"] < MIN_EXACT_OBS:
        flags.append("too_few_obs")
    else:
        f = censored_fit(obs)
        if not f.converged[0]:
            flags.append("no_convergence")
        else:
            a, c, b = f.coef[0]
            fit.update(a=float(a), b=float(b), c=float(c), resid_sd=float(f.sigma[0]))
            lo, hi, nb, how, n_bad = bootstrap_fit(obs, f.coef[0], n_boot=n_boot, ci=ci, rng=rng, method=ci_method)
            fit.update(a_lo=lo[0], a_hi=hi[0], c_lo=lo[1], c_hi=hi[1], b_lo=lo[2], b_hi=hi[2], n_boot=nb,
                       ci_method=how)
            fit["lof_p"], fit["lof_dev"] = lack_of_fit(obs, f)
            fit["outlier_p"] = outlier_seed_p(obs, f)
            if not c > 0:
                flags.append("slope_not_positive")
            if how == "":
                flags.append("no_ci")
            elif not (fit["c_lo"] > 0 or fit["c_hi"] < 0):
                flags.append("ci_contains_zero")
            if how and n_bad > MAX_INVALID_BOOT * n_boot:
                flags.append("unstable_ci")
            if fit["lof_p"] < LOF_ALPHA and fit["lof_dev"] > LOF_TOL:
                flags.append("lack_of_fit")
            if fit["outlier_p"] < OUTLIER_ALPHA:
                flags.append("outlier_seeds")
    if counts["n_extra_cluster_runs"]:
        flags.append("extra_clusters")
    if counts["n_no_event"]:
        flags.append("no_event_runs")
    if counts["partial_failures"]:
        flags.append("partial_failures")
    row.update(fit)
    finite = theory_slope and math.isfinite(theory_slope)
    row["slope_ratio"] = fit["c"] / theory_slope if finite else nan
    row["ratio_lo"] = fit["c_lo"] / theory_slope if finite else nan
    row["ratio_hi"] = fit["c_hi"] / theory_slope if finite else nan
    if quantity == "first_merge" and math.isfinite(fit["c"]):
        row["ode_slope"] = exact_slope(first, obs["seed"].to_numpy(), obs["beta"].to_numpy(float), base_seed)
        row["ode_slope_nominal"] = exact_slope_nominal(first, obs["beta"].to_numpy(float))
    else:
        row["ode_slope"] = row["ode_slope_nominal"] = nan
    row["status"] = ",".join(flags) if flags else "ok"
    return row


def fit_runs(runs: pd.DataFrame, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
             ci_method: str = "t", base_seed: int = 0) -> pd.DataFrame:
    """All fits of an aggregated runs table, one row per (group, quantity), in a stable order.

    ``base_seed`` is the config's (it fixes each seed's initial data, which ``ode_slope`` redraws).
    """
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
            rows.append(fit_group(g, q, n_boot=n_boot, ci=ci, rng=np.random.default_rng([seed, key]),
                                  ci_method=ci_method, base_seed=base_seed))
    return pd.DataFrame(rows, columns=list(FIT_COLUMNS)) if rows else pd.DataFrame(columns=list(FIT_COLUMNS))


def main(argv=None) -> int:
    import argparse
    import sys

    import pyarrow.parquet as pq

    from ..pipeline.io import provenance, read_provenance, write_table

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.analysis.fits", description="scaling-law fits")
    p.add_argument("--runs", required=True, help="aggregated runs.parquet")
    p.add_argument("--out", required=True, help="fits.parquet to write")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--ci", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-seed", type=int, default=0, help="the config's base_seed (initial data of each seed)")
    args = p.parse_args(argv)
    runs = pq.read_table(args.runs).to_pandas()
    fits = fit_runs(runs, n_boot=args.n_boot, ci=args.ci, seed=args.seed, base_seed=args.base_seed)
    src = read_provenance(args.runs)
    prov = provenance(config_hash=src.get("config_hash", ""), sweeps=src.get("sweeps", ""),
                      fit_settings={"n_boot": args.n_boot, "ci": args.ci, "seed": args.seed,
                                    "base_seed": args.base_seed},
                      model="ln T = a + c*beta + b*ln(beta) + sigma*N(0,1), right-censored at t_end; maximum "
                            "likelihood; t interval on the seed-bootstrap SD (scipy.stats.bootstrap over seed indices)")
    for c in ("n_runs", "n_failed", "n_censored", "n_no_event", "n_extra_cluster_runs", "n_obs", "n_seeds", "n_beta", "n_boot", "d", "n", "k"):
        fits[c] = pd.to_numeric(fits[c]).astype("int64")
    write_table(fits, args.out, columns_doc=FIT_COLUMNS, meta=prov)
    with pd.option_context("display.width", 220, "display.max_columns", 30):
        show = ["sweep", "model", "init", "d", "n", "k", "quantity", "n_obs", "n_censored", "n_failed", "c", "c_lo",
                "c_hi", "theory_slope", "ode_slope", "status"]
        print(fits[show].to_string(index=False), file=sys.stdout)
    print(json.dumps({"fits": len(fits), "ok": int((fits["status"] == "ok").sum())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
