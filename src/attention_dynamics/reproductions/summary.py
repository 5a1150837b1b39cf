"""``results/summary.md``: claim → theory → measured → agreement, from every result table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..theory.gegenbauer import l_star
from .selection import _parse_dist

__all__ = ["summary_rows", "summary_markdown", "write_summary"]

def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(xf):
        return "—"
    return f"{xf:.{digits}g}"


def _plateau_energy_rows(lifetimes: pd.DataFrame, trajectories: pd.DataFrame) -> list[dict]:
    """Plateau heights Ē vs Σ m_a², per sweep: Ē read in the middle (in ln t) of each closed plateau."""
    rows = []
    if lifetimes is None or trajectories is None or not len(lifetimes) or not len(trajectories):
        return rows
    key = ["sweep", "cell_id", "beta", "seed"]
    tr = trajectories[np.isfinite(trajectories["energy"]) & (trajectories["time"] > 0)]
    groups = {k: g.sort_values("time") for k, g in tr.groupby(key, sort=False)}
    for sweep, lt in lifetimes.groupby("sweep", sort=True):
        errs = []
        for _, p in lt[(~lt["censored"].astype(bool)) & (lt["t_open"] > 0)].iterrows():
            g = groups.get(tuple(p[k] for k in key))
            if g is None:
                continue
            t_mid = np.sqrt(p["t_open"] * p["t_close"])
            inside = g[(g["time"] > p["t_open"]) & (g["time"] < p["t_close"])]
            if not len(inside):
                continue
            e = float(inside["energy"].iloc[int(np.argmin(np.abs(np.log(inside["time"].to_numpy() / t_mid))))])
            errs.append(e - float(p["sum_mass_sq"]))
        if errs:
            errs = np.abs(np.array(errs))
            rows.append(dict(claim=f"plateau height Ē = Σ m_a² ({sweep}; plateaus after a merge, read mid-plateau in ln t)",
                             theory="Σ m_a² of the plateau's clusters",
                             measured=f"median |Ē − Σm²| = {_fmt(np.median(errs), 3)}, max {_fmt(errs.max(), 3)} "
                                      f"over {errs.size} plateaus",
                             agreement=f"{np.mean(errs < 1e-2):.0%} within 0.01"))
    return rows


def _counts_str(s: pd.Series) -> str:
    vc = s[s >= 0].value_counts()
    return ", ".join(f"{int(k)}×{int(v)}" for k, v in sorted(vc.items())) or "—"


def _modes(s: pd.Series) -> list[int]:
    vc = s[s >= 0].value_counts()
    return sorted(int(k) for k in vc[vc == vc.max()].index) if len(vc) else []


def _emergence_n_row(pb: pd.DataFrame) -> dict:
    """d = 2, several n: how the agreement with l* changes with n, on the β swept at every n."""
    common = set.intersection(*(set(g["beta"]) for _, g in pb.groupby("n")))
    parts, rates = [], []
    for n, g in pb[pb["beta"].isin(common)].groupby("n", sort=True):
        rate = float(g["hits"].sum() / g["seeds"].sum())
        rates.append(rate)
        part = f"n = {int(n)}: {rate:.0%} of runs count l*"
        if g["p"].notna().all():
            part += f" (finite-n theory {float(np.sum(g['p'] * g['seeds']) / g['seeds'].sum()):.0%})"
        parts.append(part + f" (clusters at formation: {float(g['hits_formation'].sum() / g['seeds'].sum()):.0%} "
                            "count l*)")
    trend = "rises with n" if all(b >= a for a, b in zip(rates, rates[1:])) else "does not rise monotonically with n"
    return dict(claim=f"d = 2: agreement with l* as n grows ({len(common)} β swept at every n)",
                theory="n → ∞: the count is l* (the linear phase lasts ln n/(2λ*), so the selection sharpens like ln n)",
                measured="; ".join(parts), agreement=f"the fraction counting l* {trend}")


def _emergence_rows(emergence: pd.DataFrame) -> list[dict]:
    """Summary rows of the emergence table: one per (d, β), then the d = 2 counts against the finite-n theory."""
    from scipy.stats import binomtest

    rows = []
    em = emergence[emergence["status"].isin(["ok", "history_failed"])]
    has = lambda col: col in em.columns  # noqa: E731  (tables written before a column existed)
    head = "n_clusters_linear" if has("n_clusters_linear") else "n_clusters_formation"
    per_beta = []
    for (d, n), gd in em.groupby(["d", "n"], sort=True):
        n = int(n)
        for beta, g in gd.groupby("beta", sort=True):
            ls, seeds = int(g["l_star"].iloc[0]), len(g)
            theory = f"l* = {ls}; t_c = ln n/(2λ*) = {_fmt(g['t_c_pred'].iloc[0], 3)}"
            if d == 2:
                dist = _parse_dist(g["lin_count_dist"].iloc[0]) if has("lin_count_dist") else {}
                if dist:
                    theory += (f"; finite-n linear theory: count {ls} with P = {_fmt(dist.get(ls, 0.0), 2)}, "
                               f"most probable {max(dist, key=dist.get)}")
                meas = f"{seeds} seeds: count (maxima of φ at the end of the linear phase) {_counts_str(g[head])}"
                if head != "n_clusters_formation":
                    meas += f"; at formation {_counts_str(g['n_clusters_formation'])}"
            else:
                dist = _parse_dist(g["lin_degree_dist"].iloc[0]) if has("lin_degree_dist") else {}
                if dist:
                    theory += (f"; finite-n linear theory: dominant degree {ls} with P = {_fmt(dist.get(ls, 0.0), 2)}, "
                               f"most probable {max(dist, key=dist.get)}")
                meas = f"{seeds} seeds: clusters at formation {_counts_str(g['n_clusters_formation'])}"
            if has("dominant_degree"):
                meas += f"; dominant degree {_counts_str(g['dominant_degree'])}"
            meas += f"; median t_f/t_c = {_fmt(g['t_ratio'].median(), 3)}"
            if d == 2:
                obs = g[head]
                top = _modes(obs)
                hits = int(np.sum(obs == ls))
                agree = f"{hits / seeds:.0%} = l*"
                if dist:
                    p = dist.get(ls, 0.0)
                    pval = binomtest(hits, seeds, min(max(p, 1e-12), 1 - 1e-12)).pvalue
                    agree += f" (theory at this n {p:.0%}, binomial p = {_fmt(pval, 2)})"
                if dist:
                    pm = max(dist, key=dist.get)
                    agree += (f"; observed mode {top} = finite-n prediction" if pm in top
                              else f"; observed mode {top} ≠ finite-n prediction {pm}")
                per_beta.append(dict(beta=float(beta), l_star=ls, seeds=seeds, n=n, hits=hits, top=top, dist=dist,
                                     hits_formation=int(np.sum(g["n_clusters_formation"] == ls)),
                                     p=dist.get(ls, np.nan) if dist else np.nan))
            else:
                agree = "side by side only (d ≥ 3 selects a harmonic subspace, not a count)"
                if has("dominant_degree"):
                    agree += f"; dominant degree = l* in {np.mean(g['dominant_degree'] == ls):.0%}"
                    if dist:
                        agree += f" (theory at this n {dist.get(ls, 0.0):.0%})"
            rows.append(dict(claim=f"clusters emerging from uniform data, d={int(d)}, n={n}, β={_fmt(beta)}",
                             theory=theory, measured=meas, agreement=agree))
    for n, pb in (pd.DataFrame(per_beta).groupby("n", sort=True) if per_beta else []):
        # (the former verdict "the most frequent count is l* at every β" is not a finite-n prediction:
        # see attention_dynamics.reproductions.growth; the finite-n targets are the _finite_n_rows)
        pb = pb.reset_index(drop=True)
        have_theory = bool(pb["dist"].map(bool).all())
        if have_theory:
            expected = float(np.sum(pb["p"] * pb["seeds"]))
            sd = float(np.sqrt(np.sum(pb["p"] * (1 - pb["p"]) * pb["seeds"])))
            pvals = [binomtest(int(h), int(s), min(max(p, 1e-12), 1 - 1e-12)).pvalue
                     for h, s, p in zip(pb["hits"], pb["seeds"], pb["p"])]
            pred_mode = np.array([max(dist, key=dist.get) in top for dist, top in zip(pb["dist"], pb["top"])])
            z = (pb["hits"].sum() - expected) / sd if sd > 0 else np.nan
            rows.append(dict(
                claim=f"d = 2: counts vs the finite-n linear theory at n = {int(n)} (linear_selection: same n, "
                      "same reading rule)",
                theory="P(count = k) from Gaussian initial modes growing at λ_l, read when max_l S_l = power_level",
                measured=(f"count = l* in {int(pb['hits'].sum())} runs, theory expects {_fmt(expected, 4)} ± "
                          f"{_fmt(sd, 3)} (z = {_fmt(z, 2)}); observed mode = predicted mode at "
                          f"{int(pred_mode.sum())}/{len(pred_mode)} β; per-β binomial p < 0.01 at "
                          f"{int(np.sum(np.array(pvals) < 0.01))}/{len(pvals)} β"),
                agreement="consistent" if abs(z) < 3 and np.sum(np.array(pvals) < 0.01) <= max(1, 0.05 * len(pvals))
                else "inconsistent: see the per-β rows"))
    if per_beta and pd.DataFrame(per_beta)["n"].nunique() > 1:
        rows.append(_emergence_n_row(pd.DataFrame(per_beta)))
    bad = emergence[~emergence["status"].isin(["ok", "history_failed"])]
    if len(bad):
        rows.append(dict(claim="emergence runs without formation / errors", theory="—",
                         measured=f"{len(bad)} runs ({', '.join(sorted(bad['status'].unique()))})",
                         agreement="excluded above"))
    return rows


# --- BPA24 at finite n (targets (i)–(iii)) and with the mean-field PDE: separate row functions -------------

RATE_TARGETS = {2: 1e-6, 3: 1e-4}  # PDE growth rates: |rate/λ_l − 1| targets per dimension


def _finite_n_rows(emergence: pd.DataFrame | None, growth: pd.DataFrame | None) -> list[dict]:
    """Targets (i)–(iii) of BPA24 at finite n, per (d, n) (attention_dynamics.reproductions.growth)."""
    from .growth import ARGMAX_TIE, RATE_TOLERANCE

    rows = []
    if growth is not None and len(growth):
        for (d, n), g in growth.groupby(["d", "n"], sort=True):
            d, n = int(d), int(n)
            per_beta, fails, argmax_ok, ties = [], [], 0, 0
            for beta, gb in g.groupby("beta", sort=True):
                band = gb[gb["in_band"].astype(bool)]
                worst = float(np.nanmax(np.abs(band["rel_error"]))) if len(band) else np.nan
                ls, arg = int(gb["l_star"].iloc[0]), int(gb["argmax_measured"].iloc[0])
                ratio = float(gb["argmax_lambda_ratio"].iloc[0]) if "argmax_lambda_ratio" in gb else float(arg == ls)
                argmax_ok += int(arg == ls)
                tie = arg != ls and ratio >= ARGMAX_TIE
                ties += int(tie)
                per_beta.append(f"β = {_fmt(beta)}: ≤ {_fmt(worst, 2)} on l = {int(band['l'].min())}–"
                                f"{int(band['l'].max())}, argmax {arg} (l* = {ls}"
                                + (f"; λ_{arg}/λ* = {_fmt(ratio, 3)}" if arg != ls else "") + ")" if len(band) else
                                f"β = {_fmt(beta)}: no degree in the band")
                if not (worst <= RATE_TOLERANCE) or not (arg == ls or tie):
                    fails.append(_fmt(beta))
            first = g.iloc[0]
            nb = g["beta"].nunique()
            rows.append(dict(
                claim=f"BPA24 finite n (i), d = {d}, n = {n}: growth rates of the ensemble-averaged degree power S_l(t) "
                      f"match λ_l within {RATE_TOLERANCE:.0%} in the linear window, and their argmax is l* "
                      f"({int(g['n_seeds'].max())} seeds; window λ*t ≤ ln(n·{_fmt(first['fit_level'])})/2; "
                      f"degrees with λ_l ≥ {_fmt(first['band'])}·λ*)",
                theory="E S_l(t) = e^{2 λ_l t}/n to first order (λ_l in this model's time)",
                measured="; ".join(per_beta),
                agreement=("yes" if not fails else f"no at β = {', '.join(fails)}")
                + f" (argmax = l* at {argmax_ok}/{nb} β" + (f", a tie λ ≥ {ARGMAX_TIE:g}·λ* at {ties}" if ties else "")
                + ")"))
    if emergence is not None and len(emergence):
        from .growth import selection_tests

        em = emergence[emergence["status"].isin(["ok", "history_failed"])]
        tests = selection_tests(em) if len(em) else pd.DataFrame()
        for (d, n), t in (tests.groupby(["d", "n"], sort=True) if len(tests) else []):
            d, n = int(d), int(n)
            p = t["selection_pvalue"].to_numpy(dtype=float)
            k = int(np.sum(np.isfinite(p)))
            pmin = float(np.nanmin(p)) if k else np.nan
            bonf = min(1.0, k * pmin) if k else np.nan
            low = [_fmt(b) for b, q in zip(t["beta"], p) if q < 0.01]
            rows.append(dict(
                claim=f"BPA24 finite n (ii), d = {d}, n = {n}: the dominant degree at the end of the linear phase "
                      "(argmax_l S_l when max_l S_l first reaches power_level) follows the finite-n Gaussian "
                      "prediction, per β",
                theory="linear_selection: n S_l(0) ~ Gamma(N_l/2, 2/N_l) independent, S_l(t) = S_l(0) e^{2λ_l t}",
                measured="χ² (Monte Carlo p): " + "; ".join(
                    f"β = {_fmt(b)}: {o} vs {{{pr}}}, p = {_fmt(q, 2)}" for b, o, pr, q in
                    zip(t["beta"], t["observed"], t["predicted"], p)),
                agreement=(f"consistent: p < 0.01 at {len(low)}/{k} β, Bonferroni min p = {_fmt(bonf, 2)}"
                           if bonf >= 0.01 else f"inconsistent at β = {', '.join(low)} (Bonferroni min p = "
                                                f"{_fmt(bonf, 2)})")))
        for (d, n), gd in em.groupby(["d", "n"], sort=True):
            parts, inside, bias, per_l2 = [], [], [], []
            for beta, g in gd.groupby("beta", sort=True):
                ls = int(g["l_star"].iloc[0])
                c = g["n_clusters_formation"][g["n_clusters_formation"] >= 1]
                parts.append(f"β = {_fmt(beta)} (l* = {ls}): {_counts_str(c)}")
                inside += list(((c >= ls - 2) & (c <= ls + 1)).to_numpy())
                bias += list((c - ls).to_numpy())
                if len(c):
                    per_l2.append(float(c.mean()) / ls**2)
            setting = {k: _fmt(gd[k].iloc[0]) if k in gd else "?" for k in ("theta_c", "m_min", "f", "tight_angle")}
            rule = (f"single-linkage components at θ_c = {setting['theta_c']} rad holding ≥ {setting['m_min']} of "
                    f"the mass, at the first time ≥ {setting['f']} of the mass lies in components of diameter < "
                    f"{setting['tight_angle']} rad")
            if int(d) == 2:
                theory = "l*(β, 2); at finite n typically in [l* − 2, l* + 1], biased low (merging during formation)"
                agree = (f"side by side: {np.mean(inside):.0%} of runs in [l* − 2, l* + 1], mean count − l* = "
                         f"{_fmt(np.mean(bias), 2)}")
            else:
                theory = (f"no count prediction in d = {int(d)}: the instability selects the degree-l* harmonics, and "
                          "a combination of them has many maxima (of order l*², not l*)")
                agree = (f"side by side: mean count / l*² = {_fmt(min(per_l2), 2)}–{_fmt(max(per_l2), 2)} over the β"
                         if per_l2 else "")
            rows.append(dict(
                claim=f"BPA24 finite n (iii), d = {int(d)}, n = {int(n)}: the number of clusters at formation, a "
                      f"distribution reported next to l* (rule: {rule})",
                theory=theory, measured="; ".join(parts),
                agreement=agree if bias else "no run formed clusters"))
    return rows


def _meanfield_rows(meanfield: pd.DataFrame | None, mf_emergence: pd.DataFrame | None) -> list[dict]:
    """Mean-field PDE: solver growth rates, BPA24 Fig. 4, peaks against l*(β), the dominant degree against the
    finite-n theory at n_eff (attention_dynamics.reproductions.meanfield)."""
    from .growth import selection_tests

    rows = []
    if meanfield is not None and len(meanfield):
        for d, g in meanfield.groupby("d", sort=True):
            d = int(d)
            err = g["rel_error"].abs()
            w = g.loc[err.idxmax()] if err.notna().any() else g.iloc[0]
            tol = RATE_TARGETS.get(d, 1e-4)
            bad = int((~(err <= tol)).sum())
            rows.append(dict(
                claim=f"mean-field PDE solver, d = {d}: growth rate of ‖P_l ρ‖ from a single-mode start = λ_l(β, d) "
                      f"(models {', '.join(sorted(g['model'].unique()))}; β ∈ {{{', '.join(_fmt(b) for b in sorted(g['beta'].unique()))}}}; "
                      f"l = 1…2l* + 1 or as configured; {len(g)} rates)",
                theory="λ_l(β, d) = l(l+d−2) Γ(d/2)(2/β)^{(d−2)/2} I_{l+(d−2)/2}(β)/β (per convention)",
                measured=f"max |rate/λ_l − 1| = {_fmt(err.max(), 2)} (β = {_fmt(w['beta'])}, l = {int(w['l'])}, "
                         f"{w['model']}); median {_fmt(err.median(), 2)}",
                agreement=f"yes (≤ {tol:g})" if bad == 0 else f"NO: {bad} rates above {tol:g}"))
    if mf_emergence is not None and len(mf_emergence):
        me = mf_emergence[~mf_emergence["status"].astype(str).str.startswith(("error", "failed"))]
        two = me[me["d"] == 2]
        if not np.isclose(two["beta"], 5.0).any():
            rows.append(dict(claim="BPA24 Fig. 4 (mean-field PDE, d = 2, β = 5)", theory="l* = 3",
                             measured="β = 5 not run in d = 2 (reproductions.meanfield.betas / fig4_beta)",
                             agreement="—"))
        for beta, g in two.groupby("beta", sort=True):
            if not np.isclose(beta, 5.0):  # BPA24's Fig. 4 is β = 5
                continue
            ls = int(g["l_star"].iloc[0])
            hits = int(np.sum(g["n_peaks"] == ls))
            rows.append(dict(
                claim=f"BPA24 Fig. 4 (mean-field PDE): uniform density + white noise (σ = {_fmt(g['sigma'].iloc[0])} "
                      f"on {int(g['noise'].iloc[0])} points), β = {_fmt(beta)}, {g['convention'].iloc[0]} time, "
                      f"L = {int(g['l_max'].iloc[0])} → an l*-periodic state",
                theory=f"l*(β = {_fmt(beta)}, 2) = {ls}; finite-noise linear theory (n_eff = {_fmt(g['n_eff'].iloc[0], 3)}): "
                       f"dominant degree {{{g['lin_degree_dist'].iloc[0]}}}",
                measured=f"{len(g)} seeds at the resolution stop (median λ*t = {_fmt(g['lambda_t_stop'].median(), 3)}, "
                         f"median max ρ = {_fmt(g['max_density'].median(), 3)}): peaks (maxima of K∗ρ) "
                         f"{_counts_str(g['n_peaks'])}; arcs of ρ > {_fmt(g['peak_level'].iloc[0])} "
                         f"{_counts_str(g['n_arcs'])}; dominant degree {_counts_str(g['dominant_degree'])}; "
                         f"mass drift ≤ {_fmt(g['mass_drift'].max(), 2)}, energy decrease ≤ "
                         f"{_fmt(g['energy_max_decrease'].max(), 2)}, min ρ ≥ {_fmt(g['min_density'].min(), 3)}",
                agreement=f"{hits}/{len(g)} seeds {ls}-periodic ({hits / len(g):.0%})"))
        if len(two):
            ok = two[two["n_peaks"] >= 1]
            diff = ok["n_peaks"] - ok["l_star"]
            arcs = two[two["n_arcs"] >= 0]
            rows.append(dict(
                claim=f"mean-field PDE, d = 2: number of peaks against l*(β) for β ∈ [{_fmt(two['beta'].min())}, "
                      f"{_fmt(two['beta'].max())}] ({two['beta'].nunique()} β, {int(two.groupby('beta').size().max())} "
                      "seeds; peaks = local maxima of the potential K∗ρ at the resolution stop)",
                theory="l*(β, 2); at finite noise (n_eff) the selection is a distribution around l*",
                measured=f"peaks = l* in {np.mean(diff == 0):.0%} of runs, within ±1 in {np.mean(diff.abs() <= 1):.0%}, "
                         f"mean peaks − l* = {_fmt(diff.mean(), 2)}; arcs of ρ > {_fmt(two['peak_level'].iloc[0])}: "
                         f"= l* in {np.mean(arcs['n_arcs'] == arcs['l_star']):.0%} (undercounts at large β: clusters "
                         f"still rising at the stop)",
                agreement="side by side (figure meanfield_peaks)"))
        tests = selection_tests(me, keys=("model", "d", "beta")) if len(me) else pd.DataFrame()
        for d, t in (tests.groupby("d", sort=True) if len(tests) else []):
            p = t["selection_pvalue"].to_numpy(dtype=float)
            k = int(np.sum(np.isfinite(p)))
            bonf = min(1.0, k * float(np.nanmin(p))) if k else np.nan
            gd = me[me["d"] == d]
            hits = np.mean(gd["dominant_degree"] == gd["l_star"])
            theory_hits = float(gd.groupby("beta")["p_lin_degree_l_star"].first().mean())
            unread = int(np.sum(gd["dominant_degree"] < 1))
            rows.append(dict(
                claim=f"mean-field PDE, d = {int(d)}: dominant degree at the end of the linear phase vs l*(β, {int(d)}) "
                      f"and the finite-n theory at n_eff = {_fmt(gd['n_eff'].iloc[0], 3)} (power_level "
                      f"{_fmt(gd['power_level'].iloc[0])})",
                theory="linear_selection at n = n_eff (same reading rule)",
                measured=f"dominant degree = l* in {hits:.0%} of runs (theory {theory_hits:.0%}); χ² p < 0.01 at "
                         f"{int(np.sum(p < 0.01))}/{k} β; level not reached before the stop in {unread} runs",
                agreement=("consistent" if bonf >= 0.01 else "inconsistent") + f" (Bonferroni min p = {_fmt(bonf, 2)})"))
    return rows


def summary_rows(*, fits=None, runs=None, lifetimes=None, trajectories=None, staircase=None, emergence=None,
                 phase=None, meanfield=None, meanfield_emergence=None, emergence_growth=None) -> list[dict]:
    """The rows of ``results/summary.md``: dicts with claim, theory, measured, agreement.

    Every argument is an optional DataFrame (pipeline tables: fits, runs, lifetimes,
    trajectories; reproduction tables: staircase steps, emergence, phase diagram, meanfield,
    meanfield_emergence, emergence_growth); a missing table leaves its claims out with a row
    saying so.
    """
    rows: list[dict] = []

    def missing(what):
        rows.append(dict(claim=what, theory="—", measured="table not available", agreement="—"))

    # 1. scaling-law slopes
    if fits is not None and len(fits):
        for _, f in fits.iterrows():
            label = "first-merge time" if f["quantity"] == "first_merge" else "escape time"
            where = f"{f['sweep']}: {f['model']}, {f['init']}, d={int(f['d'])}, n={int(f['n'])}, k={int(f['k'])}"
            if f.get("status", "ok") != "ok" or not np.isfinite(f["c"]):
                rows.append(dict(claim=f"{label} slope d ln T/dβ ({where})", theory=f"{f['theory']} = "
                                 f"{_fmt(f['theory_slope'])}", measured=f"no fit ({f.get('status', '')})",
                                 agreement="—"))
                continue
            ref = f["theory_slope"]
            ode = f.get("ode_slope", np.nan)
            theory = f"{f['theory']} = {_fmt(ref)}" + (f"; exact 2-cluster ODE {_fmt(ode)}" if np.isfinite(ode) else "")
            measured = f"c = {_fmt(f['c'])} [{_fmt(f['c_lo'])}, {_fmt(f['c_hi'])}] ({int(f['n_obs'])} obs"
            measured += f", {int(f['n_censored'])} censored)" if f["n_censored"] else ")"
            if not np.isfinite(ref):
                agree = "no theory value"
            else:
                inside = f["c_lo"] <= ref <= f["c_hi"]
                agree = f"ratio {_fmt(f['slope_ratio'], 3)}; " + ("theory inside CI" if inside else "theory outside CI")
                if f["quantity"] == "escape":
                    agree += " (1 − α is the rate of a lower bound)"
                if np.isfinite(ode):
                    agree += "; ODE slope " + ("inside CI" if f["c_lo"] <= ode <= f["c_hi"] else "outside CI")
            rows.append(dict(claim=f"{label} slope d ln T/dβ ({where})", theory=theory, measured=measured,
                             agreement=agree))
    else:
        missing("escape / first-merge slopes vs 1 − cos D and 1 − α (fits table)")

    # 2. plateau heights
    plateau = _plateau_energy_rows(lifetimes, trajectories)
    if plateau:
        rows.extend(plateau)
    else:
        missing("plateau heights Ē vs Σ m_a² (lifetimes + trajectories tables)")

    # 3. escape-time lower bound
    if runs is not None and len(runs) and "escape_gamma" in runs.columns:
        r = runs[(runs["status"] == "ok") & (runs["escape_gamma"] > 0)]
        if len(r):
            esc = r[np.isfinite(r["escape_time"])]
            cens = r[~np.isfinite(r["escape_time"])]
            ok_obs = esc["escape_time"] >= esc["escape_bound"]
            ok_cens = cens["t_end"] >= cens["escape_bound"]
            ratio = (esc["escape_time"] / esc["escape_bound"]).to_numpy()
            meas = (f"{int(ok_obs.sum())}/{len(esc)} observed escapes ≥ T₂"
                    + (f" (min T_esc/T₂ = {_fmt(ratio.min(), 3)}, median {_fmt(np.median(ratio), 3)})" if len(esc) else "")
                    + (f"; {len(cens)} censored runs, {int(ok_cens.sum())} of them ran past T₂" if len(cens) else ""))
            viol = int((~ok_obs).sum())
            rows.append(dict(claim="escape time ≥ (ε/n) e^{(1−α)β} whenever γ > 0 (GKPR24 theorem)",
                             theory="T_esc ≥ T₂ (lower bound)", measured=meas,
                             agreement="holds in every run" if viol == 0 else f"VIOLATED in {viol} runs"))
        else:
            rows.append(dict(claim="escape time ≥ (ε/n) e^{(1−α)β} whenever γ > 0 (GKPR24 theorem)",
                             theory="T_esc ≥ T₂", measured="no run with γ > 0 in this configuration",
                             agreement="not tested"))
    else:
        missing("escape times vs the lower bound (runs table)")

    # 4. authors' staircase
    if staircase is not None and len(staircase):
        for par, g in staircase.groupby("parametrisation", sort=True):
            betas = ", ".join(_fmt(b) for b in sorted(g["beta"].unique()))
            lev = g["level_error"].abs()
            order = g["order_ok"].astype(bool)
            levels = " → ".join(_fmt(v, 3) for v in g[g["beta"] == g["beta"].max()]["level_theory"])
            first_txt = first_ok = ""
            if "level_plateau_0" in g.columns:
                # the first plateau is the initial configuration itself: Ē(θ₀) = 1/n + cross terms
                # e^{β(cos D − 1)} of the initial gaps, which reach 1/n = 5/25 only as β → ∞
                p0 = g.groupby("beta")["level_plateau_0"].first()
                n0 = 1.0 / 5.0
                first_txt = ("; first plateau Ē(θ₀) = " + ", ".join(f"{_fmt(v, 4)} (β = {_fmt(b)})" for b, v in p0.items())
                             + " against 5/25: the cross terms e^{β(cos D − 1)} of θ₀'s gaps, not a numerical error")
                first_ok = f"; first plateau within 1e-3 of 5/25 at {int(np.sum(np.abs(p0 - n0) < 1e-3))}/{len(p0)} β"
            rows.append(dict(claim=f"authors' staircase ({par}, β ∈ {{{betas}}}): plateau levels and merge order",
                             theory=f"5/25 → {levels}; merges " + ", ".join(g[g['beta'] == g['beta'].max()]
                                                                        ["merged_theory"]),
                             measured=f"max |Ē − Σm²| = {_fmt(lev.max(), 3)} (β = {_fmt(g.loc[lev.idxmax(), 'beta'])});"
                                      f" order as predicted in {int(order.sum())}/{len(g)} merges" + first_txt,
                             agreement=f"{np.mean(lev < 1e-3):.0%} of levels after a merge within 1e-3" + first_ok))
            if par == "arclength":
                err = g["end_rel_error"].abs()
                dev = (g["end_measured"] / g["end_theory_nominal"] - 1).abs()
                rows.append(dict(claim="authors' staircase: step end-times in rescaled time",
                                 theory="Σ_{l≤k} D_l √(m_a m_b/(m_a+m_b)) / ln β",
                                 measured=f"|rel. error| ≤ {_fmt(err.max(), 2)} with the run's gaps "
                                          f"(≤ {_fmt(dev.max(), 2)} with the nominal gaps of θ₀)",
                                 agreement=f"{np.mean(err < 0.01):.0%} within 1%"))
            else:
                err = (g["end_measured"] - g["end_theory_measured_gaps"]).abs()
                hi = g[g["beta"] == g["beta"].max()]
                nominal = (hi["end_measured"] - hi["end_theory_nominal"]).abs()
                rows.append(dict(claim="staircase in log time s = ln t/β: step positions",
                                 theory="s_k → 1 − cos D_k as β → ∞; at finite β ln(Σ T_l)/β (two-cluster quadrature)",
                                 measured=f"|s − quadrature| ≤ {_fmt(err.max(), 2)}; at β = {_fmt(hi['beta'].iloc[0])}"
                                          f" |s − (1 − cos D)| ≤ {_fmt(nominal.max(), 2)}",
                                 agreement=f"{np.mean(err < 1e-3):.0%} within 1e-3 of the quadrature"))
    else:
        missing("authors' staircase (staircase_authors table)")

    # 5. emergence
    if emergence is not None and len(emergence):
        rows.extend(_emergence_rows(emergence))
    else:
        missing("l* vs observed cluster counts (emergence table)")

    # 5b. BPA24 at finite n, targets (i)–(iii)
    if emergence_growth is not None or (emergence is not None and len(emergence)):
        rows.extend(_finite_n_rows(emergence, emergence_growth))
    if emergence_growth is None:
        missing("growth rates of the ensemble-averaged degree power (emergence_growth table)")

    # 5c. BPA24 with the mean-field PDE
    if meanfield is not None or meanfield_emergence is not None:
        rows.extend(_meanfield_rows(meanfield, meanfield_emergence))
    if meanfield is None:
        missing("mean-field PDE growth rates (meanfield table)")
    if meanfield_emergence is None:
        missing("BPA24 Fig. 4 and peaks vs l* with the mean-field PDE (meanfield_emergence table)")

    # 6. phase diagram (qualitative)
    if phase is not None and len(phase):
        t_end = phase["t"].max()
        last = phase[phase["t"] == t_end].sort_values("beta")
        below = last[last["fraction"] < 0.5]
        b_half = _fmt(below["beta"].iloc[0]) if len(below) else f"> {_fmt(last['beta'].max())}"
        rows.append(dict(claim=f"GLPR23 phase diagram ({phase['model'].iloc[0].upper()}, d={int(phase['d'].iloc[0])}, "
                               f"n={int(phase['n'].iloc[0])}): fast clustering at small β, metastable multi-cluster "
                               "states at larger β",
                         theory="qualitative (figure)",
                         measured=f"fraction of clustered pairs at t = {_fmt(t_end)}: "
                                  f"{_fmt(last['fraction'].iloc[0], 3)} at β = {_fmt(last['beta'].iloc[0])}, "
                                  f"{_fmt(last['fraction'].iloc[-1], 3)} at β = {_fmt(last['beta'].iloc[-1])}; "
                                  f"first β with < 50 %: {b_half}",
                         agreement="qualitative: see phase_diagram plot"))
    else:
        missing("GLPR23 phase diagram (phase_diagram table)")
    return rows


def summary_markdown(rows: list[dict], *, title: str = "Summary: claims vs measurements", notes=None) -> str:
    """Render :func:`summary_rows` as one Markdown table."""
    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = [f"# {title}", ""]
    if notes:
        lines += [str(n) for n in notes] + [""]
    lines += ["| claim | theory | measured | agreement |", "|---|---|---|---|"]
    lines += [f"| {cell(r['claim'])} | {cell(r['theory'])} | {cell(r['measured'])} | {cell(r['agreement'])} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def write_summary(path, **tables) -> str:
    """Write ``results/summary.md`` atomically from the given tables (see :func:`summary_rows`)."""
    from ..pipeline.io import atomic_write_text, provenance

    prov = provenance()
    notes = [f"Generated by attention_dynamics {prov['attention_dynamics_version']} "
             f"(commit {prov['git_commit'][:12] or 'unknown'}) at {prov['created_utc']}. "
             "USA times are in GKPR24's convention e^{β(⟨x,y⟩−1)}/n."]
    text = summary_markdown(summary_rows(**tables), notes=notes)
    atomic_write_text(text, path)
    return text


