"""Reproductions of the papers' figures: GKPR24's staircase, BPA24's emergence, GLPR23's phase diagram.

Every vector field here is :func:`attention_dynamics.dynamics.velocity` (the difference
form of SCIENCE §5) and every energy :func:`attention_dynamics.dynamics.energy`; long
horizons go through :func:`attention_dynamics.simulate.simulate`. Nothing re-implements
the interaction.

Contents
--------
* :func:`staircase_theory`, :func:`authors_staircase`, :func:`logtime_staircase`,
  :func:`staircase_tables` — GKPR24 §6 (SCIENCE §4): the energy staircase in the authors'
  arclength parametrisation and in log time s = ln t / β.
* :func:`formation`, :func:`emergence_run`, :func:`emergence_table` — BPA24 (SCIENCE §6):
  the number of clusters that form from uniform data versus l*(β, d);
  :func:`potential_maxima` (the count) and :func:`linear_selection` (its finite-n prediction).
* :func:`phase_diagram` — GLPR23's (β, t) diagram for SA on the circle.
* :func:`write_summary` — ``results/summary.md``: claim → theory → measured → agreement.
* ``plot_*`` figures, :func:`reproductions_config` (the ``reproductions:`` config section)
  and :func:`main`, the command line the Snakemake rules call
  (``python -m attention_dynamics.reproductions {staircase,emergence,emergence-aggregate,phase,summary}``).
"""
from __future__ import annotations

import os
import time as _time

import numpy as np
import pandas as pd
from scipy.integrate import RK23, RK45, DOP853, solve_ivp

from .clusters import single_linkage_labels
from .dynamics import circle_kernel_modes, circle_modes, energy, unit_complex, velocity, velocity_circle
from .gegenbauer import formation_time, l_star

__all__ = [
    "AUTHORS_BETAS",
    "STAIRCASE_STEP_COLUMNS",
    "STAIRCASE_CURVE_COLUMNS",
    "EMERGENCE_COLUMNS",
    "PHASE_COLUMNS",
    "REPRODUCTIONS_DEFAULTS",
    "authors_initial_angles",
    "staircase_theory",
    "authors_staircase",
    "logtime_staircase",
    "staircase_tables",
    "circle_components",
    "components",
    "degree_power",
    "potential_on_circle",
    "potential_maxima",
    "default_l_max",
    "linear_selection",
    "linear_prediction_columns",
    "formation",
    "emergence_run",
    "emergence_table",
    "phase_diagram",
    "summary_rows",
    "summary_markdown",
    "write_summary",
    "plot_staircase",
    "plot_emergence",
    "plot_phase_diagram",
    "reproductions_config",
    "reproductions_schema",
    "emergence_cells",
    "main",
]

# --------------------------------------------------------------------------------------
# GKPR24 §6: the staircase
# --------------------------------------------------------------------------------------

AUTHORS_BETAS = (500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0)


def authors_initial_angles(beta_ref: float = 2000.0) -> np.ndarray:
    """θ₀ = 0.5 · (0, 0.5, 2, 4, 7) · ln(β_ref)/√β_ref — the authors' configuration.

    In the authors' script θ₀ is built once with β = 2000 and reused for every β of the
    figure, so the configuration does not depend on the β being simulated.
    """
    return 0.5 * np.array([0.0, 0.5, 2.0, 4.0, 7.0]) * np.log(beta_ref) / np.sqrt(beta_ref)


def _circle(theta: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(theta), np.sin(theta)], axis=1)


def _label(members) -> str:
    return "{" + ",".join(str(i + 1) for i in sorted(members)) + "}"


def staircase_theory(theta0, masses=None, *, configurations: bool = False):
    """The closest-pair-first merge sequence of points on the circle (SCIENCE §3–§4).

    Repeatedly merge the two points at the smallest angle into one point of the summed
    mass at their mass-weighted mean angle (no other point moves: the others are slower by
    e^{−β(cos D₁ − cos D₂)}). One row per merge k = 1, 2, …: the members (1-based, as in
    the papers), the masses (counts) m_a ≥ m_b, the gap D_k, the plateau level Σ m²/n²
    before and after, the arclength duration D_k √(m_a m_b/(m_a+m_b)) (to be divided by
    ln β) and its cumulative sum, and the log-time step position 1 − cos D_k.
    With ``configurations=True`` also returns the list of (angles, masses) after each merge.
    """
    th = np.array(theta0, dtype=float)
    m = np.ones(th.size) if masses is None else np.array(masses, dtype=float)
    n = m.sum()
    groups = [frozenset([i]) for i in range(th.size)]
    rows, cum, configs = [], 0.0, []
    while th.size > 1:
        diff = np.abs((th[:, None] - th[None, :] + np.pi) % (2 * np.pi) - np.pi)
        np.fill_diagonal(diff, np.inf)
        a, b = np.unravel_index(int(np.argmin(diff)), diff.shape)
        a, b = min(a, b), max(a, b)
        D = float(diff[a, b])
        level_before = float(m @ m) / n**2
        ma, mb = m[a], m[b]
        # mean angle on the circle, measured from θ_a so that wrap-around is harmless
        delta = (th[b] - th[a] + np.pi) % (2 * np.pi) - np.pi
        new_th = th[a] + mb * delta / (ma + mb)
        dur = D * np.sqrt(ma * mb / (ma + mb))
        cum += dur
        merged = groups[a] | groups[b]
        keep = [i for i in range(th.size) if i not in (a, b)]
        th = np.concatenate([th[keep], [new_th]])
        m = np.concatenate([m[keep], [ma + mb]])
        groups = [groups[i] for i in keep] + [merged]
        rows.append(dict(step=len(rows) + 1, merged=_label(merged), mass_a=max(ma, mb), mass_b=min(ma, mb),
                         gap=D, level_before=level_before, level_after=float(m @ m) / n**2,
                         arclength_duration=dur, arclength_end=cum, s_step=1.0 - np.cos(D)))
        configs.append((th.copy(), m.copy()))
    table = pd.DataFrame(rows)
    return (table, configs) if configurations else table


def _tangential_gradient(theta, mass, beta):
    """Per-particle USA gradient of Ē on the circle in the authors' normalisation.

    The authors' ``grad_USA`` is g_i = (1/n²) Σ_j sin(θ_j − θ_i) e^{β(cos(θ_j−θ_i) − 1)}: the
    tangential component of the USA velocity (1/n) Σ_j m_j e^{β(⟨x_i,x_j⟩−1)} P(x_j − x_i),
    divided by n. We take it from :func:`dynamics.velocity` on the weighted points.
    """
    x = _circle(theta)
    v = velocity(x, mass, beta, "usa")
    return (x[:, 0] * v[:, 1] - x[:, 1] * v[:, 0]) / mass.sum()


def _arc_components(theta: np.ndarray, mass: np.ndarray, groups, within: float):
    """Groups of points linked at angle < ``within`` on an arc (no wrap-around), as sets of members,
    with their masses and mass-weighted mean angles."""
    order = np.argsort(theta)
    comps, cur = [], [order[0]]
    for i, j in zip(order[:-1], order[1:]):
        if theta[j] - theta[i] < within:
            cur.append(j)
        else:
            comps.append(cur)
            cur = [j]
    comps.append(cur)
    out = []
    for c in comps:
        m = mass[c]
        out.append((frozenset().union(*(groups[i] for i in c)), float(m.sum()), float(m @ theta[c] / m.sum())))
    return out


def authors_staircase(beta: float, theta0=None, *, lr: float = 1e-5, snap_dist: float = 1e-3,
                      snap_grad: float = 1e-5, max_iter: int = 1_000_000, record_every: int = 1):
    """The authors' arclength-reparametrised USA gradient ascent on the circle (GKPR24 §6).

    Iteration (as in the authors' ``time_rescale_3``): g = USA gradient at θ (per particle,
    normalisation 1/n²); θ ← θ + lr · ln β · g/‖g‖ with ‖g‖ the Euclidean norm over *all n
    particles*; then, if ‖g‖ < ``snap_grad``, every particle k within ``snap_dist`` (in angle)
    of a particle j < k is set to θ_j; then Ē is recorded. Rescaled time τ = lr × iteration.

    Snapped particles coincide forever, so we carry them as one weighted point (mass =
    count; ‖g‖² = Σ_p m_p g_p² over points), which is the same iteration exactly and makes
    each step cost one 5-point field evaluation. We stop when one point remains (the
    authors' loop runs on to 10⁶ iterations, dividing 0 by 0 once everything has merged).

    A *merge* is recorded at the first iteration where two clusters come within
    ``snap_dist`` of each other (single linkage on the angles). This is not always the
    snap: at β = 500 the pair {1,2} oscillates within ~lr·ln β of itself, unsnapped,
    until particle 3 arrives, because ‖g‖ stays above ``snap_grad`` meanwhile.

    Returns ``(curve, merges)``: the curve has columns iteration, tau, energy, n_points,
    n_clusters (every ``record_every``-th iteration plus every iteration where a count
    changes); ``merges`` has one row per merge: step, iteration, tau, merged (1-based
    member set), mass_a, mass_b (counts), gap_open (angle between the two merging clusters
    when the previous merge happened) and level: the largest Ē over the 2·snap_dist/(lr ln β)
    iterations after the merge (the time the merging pair needs to cross ``snap_dist``
    twice), i.e. Ē once the pair has closed but before the next pair has moved: the
    plateau height it opens. At the merge itself the pair is still up to ``snap_dist``
    apart, a deficit ≈ 2 m_a m_b β snap_dist²/(2n²) that reaches 10⁻³ at β = 4000.
    """
    beta = float(beta)
    th = authors_initial_angles() if theta0 is None else np.array(theta0, dtype=float)
    th = th.copy()
    mass = np.ones(th.size)
    groups = [frozenset([i]) for i in range(th.size)]
    step = lr * np.log(beta)
    e = energy(_circle(th), mass, beta)
    rec = [(0, e, th.size, th.size)]
    comps = _arc_components(th, mass, groups, snap_dist)
    open_centres = {c[0]: c[2] for c in comps}
    merges = []
    settle = int(np.ceil(2.0 * snap_dist / step))
    it = 0
    while th.size > 1 and it < max_iter:
        it += 1
        g = _tangential_gradient(th, mass, beta)
        gn = float(np.sqrt(mass @ (g * g)))
        if gn == 0.0:  # exactly balanced (e.g. symmetric) configuration: nothing moves
            break
        th = th + step * g / gn
        snapped = False
        if gn < snap_grad:
            # the authors' double loop: for j < k, |θ_j − θ_k| < snap_dist ⇒ θ_k ← θ_j
            j = 0
            while j < th.size:
                k = j + 1
                while k < th.size:
                    if abs(th[j] - th[k]) < snap_dist:
                        mass[j] += mass[k]
                        groups[j] = groups[j] | groups[k]
                        th, mass = np.delete(th, k), np.delete(mass, k)
                        del groups[k]
                        snapped = True
                    else:
                        k += 1
                j += 1
        e = energy(_circle(th), mass, beta)
        for row in merges:
            if it <= row["iteration"] + settle:
                row["level"] = max(row["level"], e)
        count = 1 + int(np.count_nonzero(np.diff(np.sort(th)) >= snap_dist))
        counted = count != len(comps)
        if counted:
            new = _arc_components(th, mass, groups, snap_dist)
            old_of = {m: c for c in comps for m in c[0]}
            for members, _, _ in new:
                parts = {old_of[m] for m in members}
                if len(parts) < 2:
                    continue
                parts = sorted(parts, key=lambda c: -c[1])
                # a multiple merge in one iteration is recorded pairwise, heaviest first
                acc = parts[0]
                for p in parts[1:]:
                    merges.append(dict(step=len(merges) + 1, iteration=it, tau=lr * it,
                                       merged=_label(acc[0] | p[0]), mass_a=max(acc[1], p[1]),
                                       mass_b=min(acc[1], p[1]),
                                       gap_open=abs(open_centres[acc[0]] - open_centres[p[0]]), level=e))
                    c_new = (acc[1] * open_centres[acc[0]] + p[1] * open_centres[p[0]]) / (acc[1] + p[1])
                    acc = (acc[0] | p[0], acc[1] + p[1], c_new)
                    open_centres[acc[0]] = c_new
            comps = new
            open_centres = {c[0]: c[2] for c in comps}
        if snapped or counted or it % record_every == 0 or th.size == 1:
            rec.append((it, e, th.size, len(comps)))
    curve = pd.DataFrame(rec, columns=["iteration", "energy", "n_points", "n_clusters"])
    curve.insert(1, "tau", lr * curve["iteration"].to_numpy(float))
    mg = pd.DataFrame(merges, columns=["step", "iteration", "tau", "merged", "mass_a", "mass_b", "gap_open",
                                       "level"])
    return curve, mg


def logtime_staircase(beta: float, theta0=None, *, s_grid=None, theta_c: float = 0.01, rtol: float = 1e-10,
                      atol: float = 1e-12, delta: float = 1e-4):
    """The same configuration under the ordinary USA dynamics, in log time s = ln t / β.

    Runs :func:`simulate.simulate` (d = 2, model "usa", GKPR24 time) from θ₀ with trajectory
    samples at t = e^{β s} for s on ``s_grid``. θ_c must be below the first gap
    (0.0425 rad) and is 0.01 rad by default. Returns ``(curve, events, result)`` with curve
    columns s, time, energy, n_clusters and the simulator's merge events plus
    s = ln(time)/β.
    """
    from .simulate import simulate

    beta = float(beta)
    th = authors_initial_angles() if theta0 is None else np.array(theta0, dtype=float)
    theory = staircase_theory(th)
    s_last = float(theory["s_step"].iloc[-1])
    if s_grid is None:
        s_grid = np.linspace(-0.02, 1.6 * s_last, 481)
    s_grid = np.asarray(s_grid, float)
    rec = np.concatenate([[0.0], np.exp(beta * s_grid)])
    t_max = float(rec[-1])
    res = simulate(_circle(th), beta=beta, model="usa", t_max=t_max, theta_c=theta_c, rtol=rtol, atol=atol,
                   delta=delta, record_times=rec)
    tr = res.trajectory
    tr = tr[tr["time"] > 0].copy()
    tr.insert(0, "s", np.log(tr["time"].to_numpy()) / beta)
    ev = res.events.copy()
    ev["s"] = np.log(ev["time"].to_numpy()) / beta
    return tr.reset_index(drop=True), ev, res


STAIRCASE_STEP_COLUMNS = {
    "parametrisation": "arclength (the authors' figure: τ = lr × iteration) or logtime (s = ln t / β, ordinary USA)",
    "beta": "inverse temperature β",
    "step": "merge index k = 1, 2, … (closest pair first)",
    "merged_theory": "members of the cluster formed by merge k, predicted by closest-pair-first (1-based)",
    "merged": "members of the cluster formed by merge k in the run (arclength only; logtime: by masses)",
    "mass_a": "larger merging mass (counts)",
    "mass_b": "smaller merging mass (counts)",
    "order_ok": "the k-th merge joins the predicted clusters (arclength: same members; logtime: same masses)",
    "level_theory": "Σ m_a²/n² of the clusters after merge k (plateau height)",
    "level_measured": "Ē on the plateau opened by merge k (arclength: max over the 2·snap_dist/(lr ln β) "
                      "iterations after the merge; logtime: at the sample nearest the plateau's middle in s)",
    "level_theory_beta": "Ē of the closest-pair model's configuration after merge k at this β (Σ m² plus the "
                         "residual cross terms e^{−β(1−cos D)} of the clusters still apart)",
    "level_error": "level_measured − level_theory",
    "end_theory_nominal": "arclength: Σ_{l≤k} D_l √(m_a m_b/(m_a+m_b)) / ln β with D_l from the closest-pair "
                          "model started at θ₀; logtime: 1 − cos D_k",
    "end_theory_measured_gaps": "arclength: Σ_{l≤k} (D_l − snap_dist) √(m_a m_b/(m_a+m_b)) / ln β with D_l the "
                                "gap measured in the run when plateau l opened (a merge is counted at snap_dist); "
                                "logtime: ln(Σ_{l≤k} T_l)/β with T_l the two-cluster quadrature time from D_l to θ_c",
    "end_measured": "arclength: τ of the snap; logtime: s = ln t/β of the merge event",
    "end_rel_error": "end_measured / end_theory_measured_gaps − 1",
    "level_plateau_0": "Ē at τ = 0 / s → −∞ (the first plateau, theory Σ m²/n² = 1/n before any merge)",
}


STAIRCASE_CURVE_COLUMNS = {
    "parametrisation": "arclength (x = rescaled time τ = lr × iteration) or logtime (x = s = ln t / β)",
    "beta": "inverse temperature β",
    "x": "τ (arclength) or s (logtime)",
    "energy": "normalised energy Ē",
    "n_points": "distinct points carried (snapped/collapsed groups count once)",
}


def staircase_tables(betas=AUTHORS_BETAS, *, lr: float = 1e-5, snap_dist: float = 1e-3, logtime: bool = True,
                     record_every: int = 10, theta_c: float = 0.01):
    """Run both parametrisations for every β; return ``(steps, curves)`` DataFrames.

    ``steps`` (columns ``STAIRCASE_STEP_COLUMNS``) compares plateau levels, merge order and
    step end-times with the predictions; ``curves`` has columns parametrisation, beta, x
    (τ or s), energy, n_points.
    """
    from .theory import two_cluster_merge_time

    th0 = authors_initial_angles()
    theory, configs = staircase_theory(th0, configurations=True)
    n = th0.size
    steps, curves = [], []
    for beta in betas:
        beta = float(beta)
        curve, merges = authors_staircase(beta, th0, lr=lr, snap_dist=snap_dist, record_every=record_every)
        curves.append(pd.DataFrame({"parametrisation": "arclength", "beta": beta, "x": curve["tau"],
                                    "energy": curve["energy"], "n_points": curve["n_points"]}))
        cum = 0.0
        for k, th_row in theory.iterrows():
            row = dict(parametrisation="arclength", beta=beta, step=int(th_row["step"]),
                       merged_theory=th_row["merged"], level_theory=th_row["level_after"],
                       level_theory_beta=energy(_circle(configs[k][0]), configs[k][1], beta),
                       end_theory_nominal=th_row["arclength_end"] / np.log(beta),
                       level_plateau_0=float(curve["energy"].iloc[0]))
            if k < len(merges):
                mr = merges.iloc[k]
                cum += (mr["gap_open"] - snap_dist) * np.sqrt(mr["mass_a"] * mr["mass_b"] / (mr["mass_a"] + mr["mass_b"]))
                row.update(merged=mr["merged"], mass_a=mr["mass_a"], mass_b=mr["mass_b"],
                           order_ok=mr["merged"] == th_row["merged"], level_measured=mr["level"],
                           end_measured=mr["tau"], end_theory_measured_gaps=cum / np.log(beta))
            else:
                row.update(merged="", order_ok=False, level_measured=np.nan, end_measured=np.nan,
                           end_theory_measured_gaps=np.nan, mass_a=np.nan, mass_b=np.nan)
            steps.append(row)
        if not logtime:
            continue
        tr, ev, _ = logtime_staircase(beta, th0, theta_c=theta_c)
        curves.append(pd.DataFrame({"parametrisation": "logtime", "beta": beta, "x": tr["s"],
                                    "energy": tr["energy"], "n_points": tr["n_points"]}))
        t_cum = 0.0
        e0 = energy(_circle(th0), np.ones(n), beta)
        for k, th_row in theory.iterrows():
            ma, mb = th_row["mass_a"], th_row["mass_b"]
            t_cum += two_cluster_merge_time(th_row["gap"], theta_c, beta, ma, mb, n=n, model="usa") \
                if th_row["gap"] > theta_c else 0.0
            row = dict(parametrisation="logtime", beta=beta, step=int(th_row["step"]),
                       merged_theory=th_row["merged"], level_theory=th_row["level_after"],
                       level_theory_beta=energy(_circle(configs[k][0]), configs[k][1], beta),
                       end_theory_nominal=th_row["s_step"], end_theory_measured_gaps=np.log(t_cum) / beta,
                       level_plateau_0=e0, merged="")
            if k < len(ev):
                e = ev.iloc[k]
                # the plateau opened by merge k, read in its middle (in s): the merged pair has
                # long contracted and the next pair has not moved yet
                s_next = float(ev["s"].iloc[k + 1]) if k + 1 < len(ev) else float(tr["s"].iloc[-1])
                s_mid = 0.5 * (float(e["s"]) + s_next)
                mid = tr.iloc[int(np.argmin(np.abs(tr["s"].to_numpy() - s_mid)))]
                row.update(mass_a=e["mass_a"] * n, mass_b=e["mass_b"] * n,
                           order_ok=bool(np.isclose(e["mass_a"] * n, ma) and np.isclose(e["mass_b"] * n, mb)),
                           level_measured=float(mid["energy"]), end_measured=float(e["s"]))
            else:
                row.update(order_ok=False, level_measured=np.nan, end_measured=np.nan, mass_a=np.nan,
                           mass_b=np.nan)
            steps.append(row)
    steps = pd.DataFrame(steps)
    steps["level_error"] = steps["level_measured"] - steps["level_theory"]
    steps["end_rel_error"] = steps["end_measured"] / steps["end_theory_measured_gaps"] - 1.0
    return steps.reindex(columns=list(STAIRCASE_STEP_COLUMNS)), pd.concat(curves, ignore_index=True)


# --------------------------------------------------------------------------------------
# BPA24: emergence of l* clusters from uniform data
# --------------------------------------------------------------------------------------

def circle_components(x: np.ndarray, theta_c: float, mass=None):
    """Single linkage at angle θ_c for points on the circle S¹, in O(n log n).

    On the circle the components of {i ~ j : angle < θ_c} are the arcs of sorted angles
    separated by gaps ≥ θ_c (a pair spanning such a gap is at least that far apart), so
    sorting replaces the n² Gram matrix. Returns ``(labels, masses, extents)``: component
    of each point, component masses, and angular extents (sum of the gaps inside the arc;
    this is the diameter for arcs shorter than π).
    """
    n = x.shape[0]
    mass = np.ones(n) if mass is None else np.asarray(mass, float)
    phi = np.arctan2(x[:, 1], x[:, 0])
    order = np.argsort(phi)
    ps = phi[order]
    gaps = np.diff(np.concatenate([ps, [ps[0] + 2 * np.pi]]))  # gaps[i]: from ps[i] to ps[i+1] (circular)
    cut = gaps >= theta_c
    labels = np.empty(n, dtype=np.int64)
    if cut.sum() <= 1:
        labels[:] = 0
        ext = 2 * np.pi - (gaps[cut].sum() if cut.any() else 0.0)
        return labels, np.array([mass.sum()]), np.array([min(ext, 2 * np.pi)])
    # start the walk just after the first cut so that every arc is contiguous
    start = int(np.argmax(cut)) + 1
    idx = (np.arange(n) + start) % n
    comp = np.concatenate([[0], np.cumsum(cut[idx][:-1])])
    labels[order[idx]] = comp
    count = int(comp[-1]) + 1
    masses = np.bincount(comp, weights=mass[order[idx]], minlength=count)
    inner = np.where(cut[idx], 0.0, gaps[idx])  # a gap inside an arc links idx[i] to idx[i+1]
    extents = np.bincount(comp, weights=inner, minlength=count)
    return labels, masses, extents


def components(x: np.ndarray, theta_c: float, mass=None):
    """Single-linkage components at θ_c with masses and angular diameters (any d).

    d = 2 uses :func:`circle_components`; d ≥ 3 uses :func:`clusters.single_linkage_labels`
    and the largest pairwise angle inside each component.
    """
    if x.shape[1] == 2:
        return circle_components(x, theta_c, mass)
    mass = np.ones(x.shape[0]) if mass is None else np.asarray(mass, float)
    count, labels = single_linkage_labels(x, theta_c)
    masses = np.bincount(labels, weights=mass, minlength=count)
    extents = np.zeros(count)
    for c in np.flatnonzero(np.bincount(labels, minlength=count) > 1):
        xc = x[labels == c]
        extents[c] = float(np.arccos(np.clip((xc @ xc.T).min(), -1.0, 1.0)))
    return labels, masses, extents


def degree_power(x: np.ndarray, l_max: int) -> np.ndarray:
    """S_l = (1/n²) Σ_{i,j} P_{l,d}(⟨x_i, x_j⟩) for l = 1..l_max (P_{l,d} Gegenbauer, P(1) = 1).

    By the addition theorem S_l = (|S^{d−1}|/N_l) Σ_m |(1/n) Σ_i Y_lm(x_i)|²: the mean power
    per degree-l harmonic of the empirical measure. For iid uniform points E S_l = 1/n at
    every l, and in the linear regime S_l grows like e^{2 λ_l t}, so argmax_l S_l is the
    degree the instability selects — in any d (in d = 2, S_l = |(1/n) Σ_i e^{ilθ_i}|²).
    """
    n, d = x.shape
    if d == 2:
        return np.abs(circle_modes(unit_complex(x), None, l_max)) ** 2
    if d == 3:  # O(n l_max²): S_l = 4π/(2l+1) Σ_m |(1/n) Σ_i Y_lm(x_i)|²
        from scipy.special import sph_harm_y

        polar = np.arccos(np.clip(x[:, 2], -1.0, 1.0))
        azim = np.arctan2(x[:, 1], x[:, 0])
        out = np.empty(l_max)
        for l in range(1, l_max + 1):
            ms = np.arange(-l, l + 1)
            y = sph_harm_y(l, ms[:, None], polar[None, :], azim[None, :])
            out[l - 1] = 4.0 * np.pi / (2 * l + 1) * float(np.sum(np.abs(y.mean(axis=1)) ** 2))
        return out
    a = 0.5 * (d - 2)
    g = np.clip(x @ x.T, -1.0, 1.0)
    prev, cur = np.ones_like(g), 2.0 * a * g           # C_0, C_1 (α = (d−2)/2)
    prev1, cur1 = 1.0, 2.0 * a                          # their values at t = 1
    out = np.empty(l_max)
    for l in range(1, l_max + 1):
        out[l - 1] = cur.mean() / cur1
        nxt = (2.0 * (l + a) * g * cur - (l + 2.0 * a - 1.0) * prev) / (l + 1.0)
        nxt1 = (2.0 * (l + a) * cur1 - (l + 2.0 * a - 1.0) * prev1) / (l + 1.0)
        prev, cur, prev1, cur1 = cur, nxt, cur1, nxt1
    return out


def _grid_size(n_modes: int) -> int:
    # ≥ 16 grid points per period of the highest retained mode, a power of 2 for the FFT
    return max(256, 1 << int(np.ceil(np.log2(16 * max(n_modes, 1)))))


def _count_circle_maxima(f: np.ndarray, floor: float) -> np.ndarray:
    """Local maxima of periodic samples f[..., k] (rising into k, not rising out of it) with f ≥ floor."""
    rising = np.roll(f, -1, axis=-1) > f  # f[k+1] > f[k]
    return np.sum(np.roll(rising, 1, axis=-1) & ~rising & (f >= floor), axis=-1)


def potential_on_circle(theta: np.ndarray, beta: float, mass=None, m: int | None = None):
    """φ(ϑ) = Σ_j m_j e^{β(cos(ϑ − θ_j) − 1)} / Σ_j m_j on a uniform grid of S¹ (by FFT).

    φ is the interaction potential of the flow: in d = 2 (equal masses) a particle at ϑ moves
    at φ'(ϑ)/β under USA (GKPR24 time) and at φ'(ϑ)/(β φ(ϑ)) under SA, so the particles climb
    φ and the maxima of φ are where they go. Fourier coefficients: φ̂_l = ive(|l|, β) ẑ_l with
    ẑ_l = Σ m_j e^{−ilθ_j}/Σ m_j, truncated where ive(l, β)/ive(0, β) < 1e-15. Returns ``(grid, phi)``.
    """
    theta = np.asarray(theta, dtype=np.float64)
    mass = np.ones(theta.size) if mass is None else np.asarray(mass, dtype=np.float64)
    w = circle_kernel_modes(beta)
    m = _grid_size(w.size) if m is None else int(m)
    z = np.conj(circle_modes(np.exp(1j * theta), mass, w.size - 1))
    c = np.zeros(m // 2 + 1, dtype=complex)
    c[0] = w[0]
    # φ(ϑ) = Σ_{l∈ℤ} w_|l| ẑ_l e^{ilϑ} = w_0 + 2 Re Σ_{l≥1} w_l ẑ_l e^{ilϑ}, and irfft(c, m)_k is
    # (1/m)(c_0 + 2 Re Σ_l c_l e^{2πi lk/m}): c_l = w_l ẑ_l, times m
    c[1:w.size] = w[1:] * z
    return 2 * np.pi * np.arange(m) / m, np.fft.irfft(c, m) * m


def potential_maxima(x: np.ndarray, beta: float, mass=None, *, floor: float = 1e-9) -> int:
    """Number of local maxima of the interaction potential φ (:func:`potential_on_circle`), d = 2.

    The count has no free scale: the kernel e^{β(cos−1)} of the model itself sets the smoothing
    (angular width 1/√β). Maxima below ``floor`` × max φ (round-off level of the FFT in the empty
    stretches between collapsed clusters at large β) are not counted. Every local maximum counts,
    however small: read it while the density is still smooth on the kernel scale (the linear
    phase); after collapse a lone particle far from every cluster makes its own maximum.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"potential_maxima needs points on S¹ (shape (n, 2)), got {x.shape}")
    _, phi = potential_on_circle(np.arctan2(x[:, 1], x[:, 0]), beta, mass)
    return int(_count_circle_maxima(phi, floor * phi.max()))


def _degree_multiplicity(l: np.ndarray, d: int) -> np.ndarray:
    """N_l: dimension of the degree-l spherical harmonics on S^{d−1} (2 in d = 2, 2l+1 in d = 3)."""
    from scipy.special import gammaln

    l = np.asarray(l, dtype=np.float64)
    if d == 2:
        return np.full(l.shape, 2.0)
    return np.round(np.exp(np.log(2 * l + d - 2) + gammaln(l + d - 2) - gammaln(d - 1) - gammaln(l + 1)))


def default_l_max(beta: float) -> int:
    """Degrees scanned for the dominant degree: 2⌈√(2β)⌉ + 6 (l* ≈ √(2β); beyond, λ_l → 0 fast)."""
    return 2 * int(np.ceil(np.sqrt(2.0 * beta))) + 6


def linear_selection(beta: float, n: int, d: int = 2, *, power_level: float = 0.05, l_max: int | None = None,
                     samples: int = 20_000, seed: int = 0, chunk: int = 2000) -> dict:
    """Finite-n prediction of the linear theory for what :func:`formation` reads at the end of the linear phase.

    Model (exact for the linearised flow, SCIENCE §6): n iid uniform points give degree powers
    S_l(0) with n S_l(0) ~ Gamma(N_l/2, scale 2/N_l) (mean 1; Exp(1) in d = 2), independent
    across l; each harmonic grows as e^{λ_l t} (GKPR24 time, any model: only the clock differs),
    so S_l(t) = S_l(0) e^{2 λ_l t}. :func:`formation` reads the *dominant degree* at the first
    time max_{l ≤ l_max} S_l = ``power_level``, i.e. the degree whose first-passage time
    ln(n·level / (n S_l(0)))/(2λ_l) is smallest, and (d = 2) the *number of maxima of the
    potential* φ at that time, whose coefficients are ive(l, β) z_l(0) e^{λ_l t}.

    Monte Carlo over ``samples`` draws of the initial noise (complex Gaussian z_l(0), all modes
    up to the kernel's truncation; fixed ``seed``: the prediction is deterministic; the standard
    error of a probability p is √(p(1−p)/samples) ≤ 0.004 at the default).

    Returns dict(degree=pd.Series P(dominant degree = l) indexed by l, count=pd.Series
    P(number of maxima = k) indexed by k (None for d ≥ 3), t_mean=mean reading time).
    """
    from .gegenbauer import growth_rate

    if l_max is None:
        l_max = default_l_max(beta)
    rng = np.random.default_rng(seed)
    big = n * power_level
    if d == 2:
        w = circle_kernel_modes(beta)
        L = max(w.size - 1, l_max)
        w = np.concatenate([w, np.zeros(L + 1 - w.size)]) if w.size < L + 1 else w
        lam = growth_rate(beta, np.arange(1, L + 1), 2, "gkpr24")
        m = _grid_size(w.size)
        chunk = max(64, min(chunk, 4_000_000 // m))  # bounds the (chunk × m) grids to ~64 MB
        degs, counts, times = [], [], []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            z = (rng.standard_normal((k, L)) + 1j * rng.standard_normal((k, L))) / np.sqrt(2.0 * n)
            e = n * np.abs(z[:, :l_max]) ** 2
            tpass = np.log(np.maximum(big / e, 1.0)) / (2.0 * lam[:l_max])
            t = tpass.min(axis=1)
            degs.append(np.argmin(tpass, axis=1) + 1)
            times.append(t)
            c = np.zeros((k, m // 2 + 1), dtype=complex)
            c[:, 0] = w[0]
            c[:, 1:L + 1] = w[1:] * z * np.exp(lam[None, :] * t[:, None])
            phi = np.fft.irfft(c, m, axis=1) * m
            counts.append(_count_circle_maxima(phi, 0.0))
        deg, cnt, t = np.concatenate(degs), np.concatenate(counts), np.concatenate(times)
        count = pd.Series(cnt).value_counts(normalize=True).sort_index()
    else:
        ls = np.arange(1, l_max + 1)
        lam = growth_rate(beta, ls, d, "gkpr24")
        shape = _degree_multiplicity(ls, d) / 2.0
        e = rng.gamma(shape, 1.0 / shape, size=(samples, l_max))
        tpass = np.log(np.maximum(big / e, 1.0)) / (2.0 * lam)
        deg, t = np.argmin(tpass, axis=1) + 1, tpass.min(axis=1)
        count = None
    degree = pd.Series(deg).value_counts(normalize=True).sort_index()
    return dict(degree=degree, count=count, t_mean=float(np.mean(t)))


def _dist_str(p: pd.Series | None, cut: float = 0.005) -> str:
    """'k:p;…' for the probabilities ≥ cut (rounded to 3 decimals); '' for None."""
    if p is None:
        return ""
    return ";".join(f"{int(k)}:{v:.3f}" for k, v in p.items() if v >= cut)


def _parse_dist(s) -> dict:
    if not isinstance(s, str) or not s:
        return {}
    return {int(k): float(v) for k, v in (item.split(":") for item in s.split(";"))}


_SOLVERS = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853}


def formation(x0: np.ndarray, beta: float, *, model: str = "usa", theta_c: float = 0.1, tight_angle: float = 0.25,
              f: float = 0.9, m_min: float = 0.01, method: str = "RK23", rtol: float = 1e-3, atol: float = 1e-6,
              t_max: float | None = None, max_steps: int = 20_000, power_level: float = 0.05,
              l_max: int | None = None, samples_per_step: int | None = None, peak_angle: float = 0.5) -> dict:
    """Integrate from (near-)uniform data until clusters have formed; count them.

    Definitions (the ones the emergence table uses)
    ------------------------------------------------
    * **End of the linear phase** t_lin (``t_dominant``): the first time the largest degree
      power max_{l ≤ l_max} S_l (:func:`degree_power`; E S_l = 1/n for iid uniform points)
      reaches ``power_level`` = 0.05, located by bisection on the solver's dense output.
      In d = 2, S_l = |ẑ_l|² and the density is (1 + 2 Σ_l Re ẑ_l e^{ilθ})/2π, so at
      S_l = 0.05 the leading harmonic modulates the density by ±45 %: the linear regime's
      last reliable instant (at 0.2 the harmonics 2l of forming clusters already win the
      argmax). l_max = 2⌈√(2β)⌉ + 6 (:func:`default_l_max`).
    * **Number of clusters** ``n_clusters_linear`` (the headline count, d = 2): the number of
      local maxima of the interaction potential φ_t(ϑ) = (1/n) Σ_j e^{β(cos(ϑ−θ_j(t))−1)}
      (:func:`potential_maxima`) at t_lin.
    * **Dominant degree** ``dominant_degree`` (any d): argmax_{l ≤ l_max} S_l at t_lin.
    * **Clusters at formation** ``n_clusters`` (d = 2 and d ≥ 3): single-linkage components at
      angle θ_c (0.1 rad) holding ≥ ``m_min`` = 1 % of the mass, counted at the formation time
      t_f, the first time a fraction ``f`` = 0.9 of the mass lies in components of angular
      diameter < ``tight_angle`` (0.25 rad). Diagnostic ``n_clusters_peak``: the largest
      number of clusters (≥ m_min, diameter < ``peak_angle``) present at once up to t_f.

    Why the headline count is read from φ at the end of the linear phase
    ---------------------------------------------------------------------
    The theory (BPA24, SCIENCE §6) is a statement about the linear instability: each
    harmonic grows at λ_l, the most unstable degree l* wins, and the pattern present when
    the linear phase ends seeds the clusters. In d = 2 the particles move up the gradient
    of φ (USA: θ̇ = φ'(θ)/β; SA: θ̇ = φ'(θ)/(β φ(θ))), so the clusters that form are the basins
    of the maxima of φ: counting those maxima at t_lin counts the clusters the linear phase
    has set, with no free scale (the model's own kernel, width 1/√β, does the smoothing: no
    θ_c, diameter or mass cut) and before any nonlinear merging. The same rule applies at
    every β. It also has an exact finite-n prediction (:func:`linear_selection`): the
    initial noise ẑ_l(0) is complex Gaussian with variance 1/n, each mode grows as
    e^{λ_l t}, and the reading rule is applied to the linear solution, so the observed
    distribution of counts can be compared with a parameter-free distribution and not only
    with its n → ∞ limit l*.

    What this implies at n = 2000 (d = 2, β = 1, 2, …, 40, 32 seeds per β, RK23 at rtol 1e-3;
    numbers in the emergence rows of ``results/summary.md``): the selection is weak, because
    λ_{l*±1}/λ_{l*} → 1 as β grows (≈ 0.97 at β = 32) while the linear phase lasts only
    ≈ 0.55 t_c (the growth factor from the noise to the level is n·level = 100), so the count
    spreads over l* − 1, l*, l* + 1. Counted through φ it is also pulled *down*: the kernel
    weights ive(l, β) ≈ e^{−l²/2β} filter the growing spectrum e^{2λ_l t}, whose filtered peak
    sits near l*·G/(G + 1), G = ln(n·level) ≈ 4.6, i.e. about one below l* once l* ≳ 7 (the
    shift decays like 1/ln n). Among the β farther than 1 from a switch point, the finite-n
    prediction therefore makes l* − 1 the most probable count at β = 23, 30, 31 and 38–40
    (e.g. β = 40: P(8) = 0.41, P(9) = 0.38) and a tie at β = 17, and the simulation follows
    it: the observed mode equals the predicted one at 39/40 β (all but the tie), the number
    of runs counting l* is 692 against 661 ± 17 predicted, and no β deviates at binomial
    p < 0.01. Consequently l* is the most frequent count at 18 of the 24 β farther
    than 1 from a switch point — the 6 others are exactly those where the finite-n theory
    predicts l* − 1 — and the issue-5 target "most frequent count = l* at every such β"
    cannot hold at n = 2000 for this count (of n = 2·10³, 2·10⁴, 2·10⁵, 2·10⁶, the theory
    makes the φ-count's most probable value l* at all of them only at 2·10⁶). The dominant
    degree is not pulled down (its predicted mode is l* at every such β) but it is broad:
    P(l*) ≈ 0.25 at β ≥ 35, so 32 seeds cannot tell l* from l* ± 1 by their frequencies.

    Alternatives measured before choosing (same sweep unless stated): the count at formation
    has l* as its mode at only 11/24 of those β (it reads l* − 1 more often than the φ-count
    because clusters keep merging during the collapse; median t_f/t_c = 1.7); the largest
    count of well-separated clusters up to t_f and the φ-count at t_c have the same
    distributions within ±1 and read l* − 1 most often at β = 32 and 40 (16 seeds at β = 8,
    16, 25, 32, 40, RK45 at rtol 1e-6); so does the formation count for SA (β = 32, 40, 16
    seeds: 7 and 8 in 10/16 and 13/16 runs) and at n = 8000 (USA, β = 32, 40, 12 seeds: 7 and
    8 in 6/12 and 9/12): the l* − 1 is not an artefact of the formation criterion, of the
    width 0.25, of the solver, of the model or of n = 2000 alone.

    Larger n (d = 2, USA, the Fourier-mode field; same reading rules; 32 seeds at every
    integer β for n = 2·10⁴, 16 seeds at 20 of the 24 β farther than 1 from a switch point
    for n = 2·10⁵, 6–7 s per run): the φ-count approaches l* slowly, as the finite-n theory
    says. On those 20 β the fraction of runs counting l* is 51 % → 57 % → 64 % for n = 2·10³,
    2·10⁴, 2·10⁵ (theory 49 %, 55 %, 60 %; z = 1.7 at 2·10⁵, no β with binomial p < 0.01),
    and l* is the most frequent count at 14, 15 and 18 of them. The target still fails at
    n = 2·10⁴ (β = 12, 30, 38, 39, 40) and at n = 2·10⁵ (β = 23, 24: mode 6 = l* − 1). The
    count at formation does *not* improve with n (46 %, 43 %, 44 % count l*; median t_f/t_c
    1.7, 2.0, 2.2): the clusters the linear phase seeds keep merging while they collapse.
    The Fourier-mode field reproduces the direct field's counts in 96/96 runs at n = 2000
    (β = 12, 30, 40; t_f within 6e-13) at 0.09 s per run instead of 1 s.
    RK23 at rtol 1e-3 and DOP853 at rtol 1e-8 give the same φ-count and dominant degree in
    32/32 runs (β = 8, 20, 32, 40) and t_lin within 0.5 %.

    Other choices (formation count): at t = 0 the n = 2000 uniform points form one
    single-linkage component (largest spacing ≈ 2π ln n/n ≈ 0.024 ≪ θ_c) and components
    appear first where the noise is deepest, hence the global 90 % criterion. θ_c = 0.1 and
    0.05 give the same formation counts within ±1; θ_c = 0.03 fragments forming clusters;
    ``tight_angle`` and ``peak_angle`` must stay below the spacing 2π/l* (0.70 rad at β = 40).
    Particles left near the unstable equilibria between clusters stay singletons for a long
    time (≈ 15 at n = 2000, β = 10): hence ``m_min`` for the formation count. Requiring 90 %
    of the mass to be tight waits until the instability has saturated everywhere:
    t_f/t_c ≈ 1.5–2.

    Integration: an explicit Runge–Kutta method of :mod:`scipy.integrate` on
    :func:`dynamics.velocity` — in d = 2 on the same field summed over the kernel's Fourier
    modes, :func:`dynamics.velocity_circle` (O(nL) with L ≈ 8.3√β instead of O(n²): 0.03 s
    per evaluation at n = 2·10⁴ against 3.6 s, so n = 10⁵–10⁶ are affordable) — with no
    collapse and no event detection: before formation there are no fast modes, all rates
    are ≤ O(1). t_lin and t_f are located by bisection on the solver's dense output. RK23 at
    rtol 1e-3 takes 50–120 field evaluations at n = 2000.

    Returns a dict: t_formation, n_clusters (at t_f), n_clusters_peak, t_peak, n_components
    (all, at t_f), tight_mass, x (positions at t_f), dominant_degree, t_dominant (= t_lin),
    power_dominant, n_clusters_linear (−1 in d ≥ 3), n_steps, nfev, status ("ok",
    "not_formed" or "sparse").
    """
    x0 = np.asarray(x0, dtype=np.float64)
    n, d = x0.shape
    mass = np.ones(n)
    if t_max is None:
        t_max = 20.0 * float(formation_time(beta, n, d, "gkpr24" if model == "usa" else "sa"))

    field = velocity_circle if d == 2 else velocity  # d = 2: the same field by Fourier modes, O(nL) not O(n²)

    def fun(t, y):
        # the field assumes unit vectors (e^{β(⟨x,y⟩−1)} ≤ 1): project the state back first
        x = y.reshape(n, d)
        return field(x / np.linalg.norm(x, axis=1, keepdims=True), mass, beta, model).ravel()

    def unit(y):
        x = y.reshape(n, d)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def measure(y):
        x = unit(y)
        _, masses, extents = components(x, theta_c)
        tight = float(masses[extents < tight_angle].sum()) / n
        return x, tight, masses, extents

    solver = _SOLVERS[method](fun, 0.0, x0.ravel(), t_max, rtol=rtol, atol=atol)
    out = dict(status="not_formed", t_formation=np.nan, n_clusters=-1, n_components=-1, tight_mass=np.nan, x=None)
    x, tight, masses, extents = measure(solver.y)
    if samples_per_step is None:  # components cost O(n log n) in d = 2, O(n²) otherwise
        samples_per_step = 4 if d == 2 else 1
    if l_max is None:
        l_max = default_l_max(beta)
    dom = dict(dominant_degree=-1, t_dominant=np.nan, power_dominant=np.nan, n_clusters_linear=-1)

    def power(y):
        return degree_power(unit(y), l_max)

    def read_linear(t, y, sp):
        dom.update(dominant_degree=int(np.argmax(sp)) + 1, t_dominant=float(t), power_dominant=float(sp.max()),
                   n_clusters_linear=potential_maxima(unit(y), beta) if d == 2 else -1)

    def check_power(y):
        # after a step: locate the first crossing of max_l S_l = power_level inside it
        if dom["dominant_degree"] >= 0:
            return
        sp = power(y)
        if sp.max() < power_level:
            return
        dense = solver.dense_output()
        lo, hi = solver.t_old, solver.t
        while hi - lo > 1e-4 * max(hi, 1.0):
            mid = 0.5 * (lo + hi)
            if power(dense(mid)).max() >= power_level:
                hi = mid
            else:
                lo = mid
        y_hi = dense(hi) if hi < solver.t else y
        read_linear(hi, y_hi, power(y_hi))

    peak = dict(n_clusters_peak=0, t_peak=np.nan)

    def track_peak(t, y, measured=None):
        # the most clusters (≥ m_min, diameter < peak_angle) present at once up to formation
        _, _, masses_k, extents_k = measure(y) if measured is None else measured
        k = int(np.sum((masses_k >= m_min * n) & (extents_k < peak_angle)))
        if k > peak["n_clusters_peak"]:
            peak.update(n_clusters_peak=k, t_peak=float(t))

    steps = 0
    t_hit = y_hit = None
    sp0 = power(solver.y)
    if sp0.max() >= power_level:  # tiny n: the noise alone reaches the level
        read_linear(0.0, solver.y, sp0)
    track_peak(0.0, solver.y, (x, tight, masses, extents))
    if tight >= f:
        # the initial data already look "formed": points so sparse that most are isolated at θ_c
        # (e.g. n = 300 in d = 3); the definition does not apply
        out.update(status="sparse", n_steps=0, nfev=int(solver.nfev), **dom, **peak)
        return out
    while t_hit is None and solver.status == "running" and steps < max_steps:
        solver.step()
        steps += 1
        if solver.status == "failed":
            break
        check_power(solver.y)
        dense = None
        t_end = solver.t
        at_end = measure(solver.y)
        if at_end[1] >= f:
            dense = solver.dense_output()
            lo, hi = solver.t_old, solver.t
            while hi - lo > 1e-3 * max(hi, 1.0):
                mid = 0.5 * (lo + hi)
                if measure(dense(mid))[1] >= f:
                    hi = mid
                else:
                    lo = mid
            t_hit, y_hit = hi, (dense(hi) if hi < solver.t else solver.y)
            t_end = hi
        if samples_per_step > 1:
            dense = dense or solver.dense_output()
            for tk in solver.t_old + (solver.t - solver.t_old) * np.arange(1, samples_per_step) / samples_per_step:
                if tk < t_end:
                    track_peak(tk, dense(tk))
        if t_hit is None:
            track_peak(t_end, solver.y, at_end)
        else:
            track_peak(t_end, y_hit)
    if t_hit is not None:
        x, tight, masses, extents = measure(y_hit)
        out.update(status="ok", t_formation=float(t_hit), n_clusters=int(np.sum(masses >= m_min * n)),
                   n_components=int(masses.size), tight_mass=tight, x=x)
    out.update(n_steps=steps, nfev=int(solver.nfev), **dom, **peak)
    return out


EMERGENCE_COLUMNS = {
    "model": "usa (GKPR24 time) or sa",
    "beta": "inverse temperature β",
    "d": "ambient dimension (uniform points on S^{d−1})",
    "n": "number of particles",
    "seed": "seed index (stream of cell {init: uniform, d, n}: the same initial data at every β)",
    "l_star": "l*(β, d) = argmax_l λ_l(β, d) (Gegenbauer growth rates)",
    "lambda_star": "λ_{l*} in this model's time convention (GKPR24 USA: × e^{−β}; SA: ÷ κ₀)",
    "t_c_pred": "predicted formation time ln(n)/(2 λ*) in this model's time",
    "n_clusters_linear": "headline count (d = 2): number of local maxima of the interaction potential "
                         "φ(ϑ) = (1/n) Σ_j e^{β(cos(ϑ−θ_j)−1)} at the end of the linear phase t_dominant; −1 in d ≥ 3",
    "agree": "n_clusters_linear == l_star (d = 2 only; d ≥ 3 selects a harmonic subspace, not a count)",
    "dominant_degree": "argmax_{l ≤ l_max} S_l (mean power per degree-l harmonic of the empirical measure) at "
                       "t_dominant: the degree the linear instability selected (any d)",
    "t_dominant": "end of the linear phase: first time max_l S_l reaches power_level (bisection on dense output)",
    "power_dominant": "max_l S_l at t_dominant (= power_level up to the bisection tolerance)",
    "agree_degree": "dominant_degree == l_star",
    "p_lin_count_l_star": "finite-n linear theory (linear_selection, same n, β, reading rule): "
                          "P(n_clusters_linear = l*) (d = 2; NaN otherwise)",
    "lin_count_mode": "finite-n linear theory: the most probable n_clusters_linear (d = 2; −1 otherwise)",
    "lin_count_dist": "finite-n linear theory: distribution of n_clusters_linear, 'k:p;…' (p ≥ 0.005)",
    "p_lin_degree_l_star": "finite-n linear theory: P(dominant_degree = l*)",
    "lin_degree_mode": "finite-n linear theory: the most probable dominant_degree",
    "lin_degree_dist": "finite-n linear theory: distribution of dominant_degree, 'l:p;…' (p ≥ 0.005)",
    "t_formation": "first time ≥ f of the mass lies in single-linkage components of diameter < tight_angle",
    "t_ratio": "t_formation / t_c_pred",
    "n_clusters_formation": "number of clusters at formation: components holding ≥ m_min of the mass at t_formation",
    "agree_formation": "n_clusters_formation == l_star",
    "n_clusters_peak": "largest number of clusters (≥ m_min, diameter < peak_angle) present at once up to "
                       "t_formation (sampled 4× per solver step in d = 2, once per step otherwise)",
    "t_peak": "first time n_clusters_peak clusters were present",
    "agree_peak": "n_clusters_peak == l_star",
    "n_components_formation": "all single-linkage components at t_formation (stragglers included)",
    "tight_mass_formation": "mass fraction in tight components at t_formation",
    "later_counts": "history from t_formation on: 'k@t;…' = number of components ≥ m_min and the time it started "
                    "(starts with n_clusters_formation@t_formation)",
    "first_merge_time": "time of the first merge of two components ≥ m_min (NaN if none before t_history)",
    "n_clusters_final": "count of components ≥ m_min at t_history",
    "t_history": "end of the simulated history (t_max, or the time one point remained)",
    "status": "ok | not_formed (no formation before 20 t_c) | sparse (the initial data already meet the "
              "formation criterion: too few points for θ_c) | history_failed | error",
    "reason": "why, when status is not ok",
    "theta_c": "single-linkage angle (rad)",
    "method": "Runge–Kutta method of the formation stage (scipy.integrate: RK23, RK45 or DOP853)",
    "rtol": "its relative tolerance",
    "power_level": "max_l S_l that ends the linear phase",
    "tight_angle": "diameter below which a component counts as tight (rad)",
    "peak_angle": "diameter below which a cluster enters n_clusters_peak (rad)",
    "f": "mass fraction in tight components that defines formation",
    "m_min": "minimum mass fraction of a counted cluster",
    "nfev_formation": "vector-field evaluations of the formation stage",
    "wall_formation": "wall-clock seconds of the formation stage",
    "wall_history": "wall-clock seconds of the history stage (simulate)",
}


def linear_prediction_columns(beta: float, d: int, n: int, power_level: float = 0.05) -> dict:
    """The ``p_lin_*``/``lin_*`` columns of the emergence table (:func:`linear_selection`, once per (β, d, n))."""
    ls = int(l_star(beta, d))
    pred = linear_selection(beta, n, d, power_level=power_level)
    deg, cnt = pred["degree"], pred["count"]
    return dict(p_lin_degree_l_star=float(deg.get(ls, 0.0)), lin_degree_mode=int(deg.idxmax()),
                lin_degree_dist=_dist_str(deg),
                p_lin_count_l_star=float(cnt.get(ls, 0.0)) if cnt is not None else np.nan,
                lin_count_mode=int(cnt.idxmax()) if cnt is not None else -1, lin_count_dist=_dist_str(cnt))


def emergence_run(beta: float, d: int, n: int, seed: int, *, model: str = "usa", base_seed: int = 0,
                  theta_c: float = 0.1, tight_angle: float = 0.25, peak_angle: float = 0.5, f: float = 0.9,
                  m_min: float = 0.01, method: str = "RK23", rtol: float = 1e-3, power_level: float = 0.05,
                  history_t_max: float = 0.0, history_rtol: float = 1e-8, prediction: dict | None = None) -> dict:
    """One row of the emergence table: uniform data → formation (:func:`formation`) → history.

    The history (when ``history_t_max`` > t_formation) continues from the positions at
    formation with :func:`simulate.simulate` (collapse, merge detection) up to the global
    time ``history_t_max``; a merge counts when both merging components hold ≥ m_min.
    ``prediction``: the columns of :func:`linear_prediction_columns` for this (β, d, n),
    computed here when not given (≈ 1 s; :func:`emergence_table` computes them once per β).
    """
    from .cell import seed_sequence
    from . import initial
    from .gegenbauer import growth_rate

    conv = "gkpr24" if model == "usa" else "sa"
    ls = int(l_star(beta, d))
    lam = float(growth_rate(beta, ls, d, conv))
    if prediction is None:
        prediction = linear_prediction_columns(beta, d, n, power_level)
    row = dict(model=model, beta=float(beta), d=int(d), n=int(n), seed=int(seed), l_star=ls, lambda_star=lam,
               t_c_pred=float(np.log(n) / (2 * lam)), theta_c=theta_c, tight_angle=tight_angle,
               peak_angle=peak_angle, f=f, m_min=m_min, method=method, rtol=rtol, power_level=power_level,
               status="ok", reason="", later_counts="", first_merge_time=np.nan, n_clusters_final=-1,
               t_history=np.nan, wall_history=0.0, **prediction)
    rng = np.random.default_rng(seed_sequence({"init": "uniform", "d": int(d), "n": int(n)}, seed, base_seed))
    x0 = initial.uniform(int(n), int(d), rng).x
    t0 = _time.perf_counter()
    try:
        fo = formation(x0, beta, model=model, theta_c=theta_c, tight_angle=tight_angle, f=f, m_min=m_min,
                       method=method, rtol=rtol, peak_angle=peak_angle, power_level=power_level)
    except Exception as exc:  # recorded, never fatal for the sweep
        row.update(status="error", reason=f"{type(exc).__name__}: {exc}", t_formation=np.nan,
                   n_clusters_formation=-1, n_components_formation=-1, tight_mass_formation=np.nan,
                   nfev_formation=0, wall_formation=_time.perf_counter() - t0, t_ratio=np.nan, agree=False,
                   agree_formation=False, dominant_degree=-1, t_dominant=np.nan, power_dominant=np.nan,
                   n_clusters_linear=-1, agree_degree=False, n_clusters_peak=-1, t_peak=np.nan, agree_peak=False)
        return row
    row.update(t_formation=fo["t_formation"], n_clusters_formation=fo["n_clusters"], t_peak=fo["t_peak"],
               n_clusters_peak=fo["n_clusters_peak"], agree_peak=bool(fo["n_clusters_peak"] == ls),
               n_components_formation=fo["n_components"], tight_mass_formation=fo["tight_mass"],
               nfev_formation=fo["nfev"], wall_formation=_time.perf_counter() - t0,
               t_ratio=fo["t_formation"] / row["t_c_pred"], agree_formation=bool(fo["n_clusters"] == ls),
               n_clusters_linear=fo["n_clusters_linear"], agree=bool(d == 2 and fo["n_clusters_linear"] == ls),
               dominant_degree=fo["dominant_degree"], t_dominant=fo["t_dominant"],
               power_dominant=fo["power_dominant"], agree_degree=bool(fo["dominant_degree"] == ls))
    if fo["status"] != "ok":
        row.update(status=fo["status"], reason="no formation before 20 t_c" if fo["status"] == "not_formed" else
                   f"already ≥ f of the mass in tight components at t = 0: θ_c = {theta_c} is below the typical "
                   f"spacing of {n} points in d = {d}")
        return row
    tf = fo["t_formation"]
    counts = [(fo["n_clusters"], tf)]
    if history_t_max > tf:
        from .simulate import simulate

        t1 = _time.perf_counter()
        try:
            res = simulate(fo["x"], beta=beta, model=model, t_max=history_t_max - tf, theta_c=theta_c,
                           rtol=history_rtol, atol=history_rtol * 1e-2, record_times=np.array([0.0]))
            k = fo["n_clusters"]
            for _, e in res.events.iterrows():
                a, b = e["mass_a"] >= m_min, e["mass_b"] >= m_min
                change = int(e["mass_a"] + e["mass_b"] >= m_min) - int(a) - int(b)
                if change:
                    k += change
                    counts.append((k, tf + e["time"]))
                    if a and b and np.isnan(row["first_merge_time"]):
                        row["first_merge_time"] = tf + float(e["time"])
            row.update(n_clusters_final=int(k), t_history=tf + res.t_end)
            if res.status != "ok":
                row.update(status="history_failed", reason=res.reason)
        except Exception as exc:
            row.update(status="history_failed", reason=f"{type(exc).__name__}: {exc}")
        row["wall_history"] = _time.perf_counter() - t1
    else:
        row.update(n_clusters_final=fo["n_clusters"], t_history=tf)
    row["later_counts"] = ";".join(f"{k}@{t:.6g}" for k, t in counts)
    return row


def emergence_table(betas, seeds, *, d: int = 2, n: int = 2000, log=None, **kwargs) -> pd.DataFrame:
    """:func:`emergence_run` for every (β, seed); ``seeds`` is a count or a list of indices.

    The finite-n linear prediction (:func:`linear_prediction_columns`) is computed once per β.
    """
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    rows = []
    for beta in betas:
        pred = linear_prediction_columns(float(beta), d, n, kwargs.get("power_level", 0.05))
        if log is not None:
            print(f"beta={beta:g} d={d} n={n}: finite-n linear theory: count {pred['lin_count_dist'] or '—'}; "
                  f"dominant degree {pred['lin_degree_dist']}", file=log, flush=True)
        for s in seeds:
            row = emergence_run(float(beta), d, n, s, prediction=pred, **kwargs)
            rows.append(row)
            if log is not None:
                print(f"beta={beta:g} d={d} n={n} seed={s} l*={row['l_star']} count={row['n_clusters_linear']} "
                      f"formation={row['n_clusters_formation']} peak={row['n_clusters_peak']} "
                      f"degree={row['dominant_degree']} t_lin={row['t_dominant']:.4g} "
                      f"t_f={row['t_formation']:.4g} (t_c={row['t_c_pred']:.4g}) later={row['later_counts']} "
                      f"status={row['status']} wall={row['wall_formation'] + row['wall_history']:.2f}s",
                      file=log, flush=True)
    return pd.DataFrame(rows).reindex(columns=list(EMERGENCE_COLUMNS))


# --------------------------------------------------------------------------------------
# GLPR23: the (β, t) phase diagram
# --------------------------------------------------------------------------------------

PHASE_COLUMNS = {
    "model": "sa or usa (usa in GKPR24 time)",
    "d": "ambient dimension",
    "n": "particles per system",
    "beta": "inverse temperature β",
    "t": "time",
    "fraction": "mean over systems of the fraction of pairs i < j with ⟨x_i(t), x_j(t)⟩ > threshold",
    "fraction_sem": "standard error of that mean over systems",
    "n_systems": "number of independent uniform initial conditions",
    "threshold": "inner-product threshold defining a clustered pair",
}


def phase_diagram(betas, times, *, n: int = 32, d: int = 2, n_systems: int = 16, model: str = "sa",
                  threshold: float = 0.999, base_seed: int = 0, method: str = "RK45", rtol: float = 1e-7,
                  atol: float = 1e-9) -> pd.DataFrame:
    """GLPR23's phase diagram: the fraction of clustered pairs as a function of (β, t).

    For each β, ``n_systems`` independent uniform initial conditions (the same ones at
    every β: stream of the cell {init: uniform, d, n}) are integrated with
    :func:`scipy.integrate.solve_ivp` on :func:`dynamics.velocity`, sampled at ``times``.
    A pair is clustered when ⟨x_i, x_j⟩ > ``threshold`` (0.999, i.e. an angle < 0.045 rad).
    One row per (β, t).
    """
    from .cell import seed_sequence
    from . import initial

    times = np.asarray(times, dtype=float)
    if np.any(np.diff(times) <= 0) or times[0] < 0:
        raise ValueError("times must be increasing and non-negative")
    x0s = [initial.uniform(n, d, np.random.default_rng(seed_sequence({"init": "uniform", "d": d, "n": n}, s,
                                                                       base_seed))).x for s in range(n_systems)]
    mass = np.ones(n)
    iu = np.triu_indices(n, 1)
    rows = []
    for beta in betas:
        beta = float(beta)
        fr = np.empty((n_systems, times.size))

        def fun(t, y):
            x = y.reshape(n, d)
            return velocity(x / np.linalg.norm(x, axis=1, keepdims=True), mass, beta, model).ravel()

        for s, x0 in enumerate(x0s):
            sol = solve_ivp(fun, (0.0, float(times[-1])), x0.ravel(), method=method, t_eval=times, rtol=rtol,
                            atol=atol)
            if not sol.success:
                raise RuntimeError(f"phase diagram integration failed at beta={beta}, system {s}: {sol.message}")
            for k in range(times.size):
                x = sol.y[:, k].reshape(n, d)
                x = x / np.linalg.norm(x, axis=1, keepdims=True)
                fr[s, k] = np.mean((x @ x.T)[iu] > threshold)
        sem = fr.std(axis=0, ddof=1) / np.sqrt(n_systems) if n_systems > 1 else np.full(times.size, np.nan)
        for k, t in enumerate(times):
            rows.append(dict(model=model, d=d, n=n, beta=beta, t=float(t), fraction=float(fr[:, k].mean()),
                             fraction_sem=float(sem[k]), n_systems=n_systems, threshold=threshold))
    return pd.DataFrame(rows, columns=list(PHASE_COLUMNS))


# --------------------------------------------------------------------------------------
# results/summary.md
# --------------------------------------------------------------------------------------

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


def _p_sample_mode(dist: dict, k: int, seeds: int, draws: int = 4000) -> float:
    """P(k is among the most frequent values of `seeds` iid draws from `dist`) (Monte Carlo, fixed seed)."""
    if not dist or seeds < 1:
        return float("nan")
    keys = np.array(sorted(dist))
    p = np.array([dist[q] for q in keys])
    if k not in dist:
        return 0.0
    c = np.random.default_rng(0).multinomial(seeds, p / p.sum(), size=draws)
    return float(np.mean(c[:, int(np.flatnonzero(keys == k)[0])] == c.max(axis=1)))


def _emergence_n_row(pb: pd.DataFrame, bc: np.ndarray) -> dict:
    """d = 2, several n: how the agreement with l* changes with n, on the β swept at every n."""
    common = set.intersection(*(set(g["beta"]) for _, g in pb.groupby("n")))
    parts, rates = [], []
    for n, g in pb[pb["beta"].isin(common)].groupby("n", sort=True):
        far = np.array([np.min(np.abs(b - bc)) > 1.0 for b in g["beta"]])
        ok = np.array([ls in top for ls, top in zip(g["l_star"], g["top"])])
        rate = float(g["hits"].sum() / g["seeds"].sum())
        rates.append(rate)
        part = f"n = {int(n)}: {rate:.0%} of runs count l*"
        if g["p"].notna().all():
            part += f" (finite-n theory {float(np.sum(g['p'] * g['seeds']) / g['seeds'].sum()):.0%})"
        parts.append(part + f", l* most frequent at {int(ok[far].sum())}/{int(far.sum())} β far from a switch point"
                     f" (clusters at formation: {float(g['hits_formation'].sum() / g['seeds'].sum()):.0%} count l*)")
    trend = "rises with n" if all(b >= a for a, b in zip(rates, rates[1:])) else "does not rise monotonically with n"
    return dict(claim=f"d = 2: agreement with l* as n grows ({len(common)} β swept at every n)",
                theory="n → ∞: the count is l* (the linear phase lasts ln n/(2λ*), so the selection sharpens like ln n)",
                measured="; ".join(parts), agreement=f"the fraction counting l* {trend}")


def _emergence_rows(emergence: pd.DataFrame) -> list[dict]:
    """Summary rows of the emergence table: one per (d, β), then the d = 2 verdicts (issue 5)."""
    from scipy.stats import binomtest

    from .gegenbauer import switch_points

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
                agree += "; " + ("l* most frequent" if ls in top else f"l* NOT most frequent (mode {top})")
                if dist:
                    pm = max(dist, key=dist.get)
                    agree += "; mode = finite-n prediction" if pm in top else f"; mode ≠ finite-n prediction {pm}"
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
        pb = pb.reset_index(drop=True)
        bc = switch_points(30, 2)
        far = np.array([np.min(np.abs(b - bc)) > 1.0 for b in pb["beta"]])
        ok = np.array([ls in top for ls, top in zip(pb["l_star"], pb["top"])])
        fails = ", ".join(f"{_fmt(b)} (mode {t})" for b, t, f_, o in zip(pb["beta"], pb["top"], far, ok)
                          if f_ and not o)
        em2 = em[(em["d"] == 2) & (em["n"] == n)]
        within = np.mean((em2[head] - em2["l_star"]).abs() <= 1)
        meas = (f"l* most frequent at {int(ok[far].sum())}/{int(far.sum())} β farther than 1 from a switch point"
                + (f" (not at β = {fails})" if fails else "") + f"; {int(ok.sum())}/{len(ok)} β in all; "
                f"{np.mean(em2[head] == em2['l_star']):.0%} of runs count exactly l*, {within:.0%} within ±1")
        have_theory = bool(pb["dist"].map(bool).all())
        if have_theory:
            q = np.array([_p_sample_mode(dist, ls, s) for dist, ls, s in zip(pb["dist"], pb["l_star"], pb["seeds"])])
            below = [_fmt(b) for b, dist, ls, f_ in zip(pb["beta"], pb["dist"], pb["l_star"], far)
                     if f_ and max(dist, key=dist.get) != ls]
            meas += ("; the finite-n linear theory's most probable count is "
                     + (f"not l* at β = {', '.join(below)}" if below else "l* at all of them")
                     + f"; if the counts followed that theory exactly, l* would be most frequent at "
                     f"{_fmt(q[far].sum(), 3)} of those {int(far.sum())} β on average "
                     f"(probability that it is at all of them: {_fmt(np.prod(q[far]), 2)})")
        lo, hi = int(pb["seeds"].min()), int(pb["seeds"].max())
        rows.append(dict(
            claim=f"d = 2 (issue 5): the most frequent count equals l* at every β farther than 1 from a switch point "
                  f"(n = {int(pb['n'].iloc[0])}, {lo if lo == hi else f'{lo}–{hi}'} seeds per β; seed k is the "
                  "same initial data at every β, so neighbouring β are not independent)",
            theory="l*(β) = argmax_l λ_l(β, 2)", measured=meas,
            agreement="yes" if ok[far].all() else "no: see the per-β rows"))
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
        rows.append(_emergence_n_row(pd.DataFrame(per_beta), switch_points(30, 2)))
    bad = emergence[~emergence["status"].isin(["ok", "history_failed"])]
    if len(bad):
        rows.append(dict(claim="emergence runs without formation / errors", theory="—",
                         measured=f"{len(bad)} runs ({', '.join(sorted(bad['status'].unique()))})",
                         agreement="excluded above"))
    return rows


def summary_rows(*, fits=None, runs=None, lifetimes=None, trajectories=None, staircase=None, emergence=None,
                 phase=None) -> list[dict]:
    """The rows of ``results/summary.md``: dicts with claim, theory, measured, agreement.

    Every argument is an optional DataFrame (pipeline tables: fits, runs, lifetimes,
    trajectories; reproduction tables: staircase steps, emergence, phase diagram); a
    missing table leaves its claims out with a row saying so.
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
    from .io import atomic_write_text, provenance

    prov = provenance()
    notes = [f"Generated by attention_dynamics {prov['attention_dynamics_version']} "
             f"(commit {prov['git_commit'][:12] or 'unknown'}) at {prov['created_utc']}. "
             "USA times are in GKPR24's convention e^{β(⟨x,y⟩−1)}/n."]
    text = summary_markdown(summary_rows(**tables), notes=notes)
    atomic_write_text(text, path)
    return text


# --------------------------------------------------------------------------------------
# Figures (matplotlib, Agg)
# --------------------------------------------------------------------------------------

def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, paths) -> None:
    """Save ``fig`` to one path or several (format from each suffix), each atomically."""
    from .io import atomic_savefig

    for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths):
        atomic_savefig(fig, p, dpi=130)


def plot_staircase(steps: pd.DataFrame, curves: pd.DataFrame, paths) -> None:
    """GKPR24 §6 staircase: Ē vs rescaled time (authors) and vs s = ln t/β, with predictions."""
    plt = _plt()
    pars = [p for p in ("arclength", "logtime") if (curves["parametrisation"] == p).any()]
    fig, axes = plt.subplots(1, len(pars), figsize=(6.2 * len(pars), 4.4), squeeze=False)
    betas = sorted(curves["beta"].unique())
    cmap = plt.get_cmap("viridis")
    theory = staircase_theory(authors_initial_angles())
    levels = [1 / 5] + theory["level_after"].tolist()
    for ax, par in zip(axes[0], pars):
        for i, b in enumerate(betas):
            col = cmap(i / max(len(betas) - 1, 1))
            c = curves[(curves["parametrisation"] == par) & (curves["beta"] == b)]
            ax.plot(c["x"], c["energy"], color=col, lw=1.3, label=f"β = {b:g}")
            st = steps[(steps["parametrisation"] == par) & (steps["beta"] == b)]
            if par == "arclength":  # predicted end-times (nominal gaps) as ticks on each level
                ax.plot(st["end_theory_nominal"], st["level_theory"], "|", color=col, ms=14, mew=1.5)
        for lv in levels:
            ax.axhline(lv, color="0.6", ls="--", lw=0.7)
        if par == "logtime":
            for s_k in theory["s_step"]:
                ax.axvline(s_k, color="0.3", ls=":", lw=0.9)
            ax.set_xlabel("log time s = ln t / β  (dotted: 1 − cos D_k)")
            ax.set_title("ordinary USA dynamics, log time")
        else:
            ax.set_xlabel("rescaled time τ = lr × iteration  (ticks: Σ D√(m_a m_b/(m_a+m_b))/ln β)")
            ax.set_title("authors' arclength parametrisation (GKPR24 §6)")
        ax.set_ylabel("energy Ē")
        ax.set_ylim(0.15, 1.03)
        ax.set_xlim(left=min(0.0, float(curves[curves["parametrisation"] == par]["x"].min())))
        ax.text(0.99, 0.02, "dashed: Σ m_a² = 5/25, 7/25, 11/25, 13/25, 1", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="0.4")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Energy staircase, n = 5 on the circle, θ₀ = 0.5·(0, 0.5, 2, 4, 7)·ln 2000/√2000", fontsize=10)
    fig.tight_layout()
    _save_figure(fig, paths)
    plt.close(fig)


def plot_emergence(emergence: pd.DataFrame, paths) -> None:
    """Observed counts per β (marker area ∝ frequency) over the l*(β) staircase and the finite-n prediction.

    d = 2: the headline count (maxima of φ at the end of the linear phase), the mean count at
    formation and the most probable count of the finite-n linear theory; any d: the median
    dominant degree.
    """
    from .gegenbauer import switch_points

    plt = _plt()
    panels = (sorted({(int(d), int(n)) for d, n in zip(emergence["d"], emergence["n"])}) if len(emergence)
              else [(2, 0)])
    cols = min(len(panels), 3)
    rows_ = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(6.0 * cols, 4.4 * rows_), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (d, n) in zip(axes.ravel(), panels):
        g = emergence[(emergence["d"] == d) & (emergence["n"] == n) & emergence["status"].isin(["ok", "history_failed"])]
        bmax = float(g["beta"].max()) * 1.05 if len(g) else 40.0
        bs = np.linspace(0.2, bmax, 800)
        ax.plot(bs, l_star(bs, int(d)), color="k", lw=1.2, drawstyle="steps-post", label="l*(β, d) = argmax λ_l")
        sp = switch_points(30, int(d))
        for b in sp[sp < bmax]:
            ax.axvline(b, color="0.75", ls=":", lw=0.8)
        head = "n_clusters_linear" if d == 2 and "n_clusters_linear" in g else "n_clusters_formation"
        h = g[g[head] >= 1]
        if len(h):
            cnt = h.groupby(["beta", head]).size().rename("k").reset_index()
            tot = h.groupby("beta").size()
            frac = cnt["k"] / tot.loc[cnt["beta"]].to_numpy()
            label = ("count: maxima of φ at the end of the linear phase" if head == "n_clusters_linear"
                     else "clusters at formation") + " (area ∝ frequency)"
            ax.scatter(cnt["beta"], cnt[head], s=300 * frac, color="tab:red", alpha=0.6, label=label)
            if head == "n_clusters_linear":
                at = h[h["n_clusters_formation"] >= 1].groupby("beta")["n_clusters_formation"].mean()
                ax.plot(at.index, at.to_numpy(), "_", color="tab:green", ms=12, mew=2, label="mean count at formation")
            if "lin_count_mode" in g and (g["lin_count_mode"] > 0).any():
                pm = g[g["lin_count_mode"] > 0].groupby("beta")["lin_count_mode"].first()
                ax.plot(pm.index, pm.to_numpy(), "s", mfc="none", color="0.3", ms=7,
                        label="most probable count, finite-n linear theory")
            ax.set_title(f"d = {d}, n = {int(h['n'].iloc[0])}, {int(tot.max())} seeds per β"
                         + (" (count ≠ selected object)" if d > 2 else ""))
        if "dominant_degree" in g and (g["dominant_degree"] > 0).any():
            dd = g[g["dominant_degree"] > 0].groupby("beta")["dominant_degree"].median()
            ax.plot(dd.index, dd.to_numpy(), "x", color="tab:blue", label="median dominant degree")
        ax.set_xlabel("β  (dotted: switch points β_c(l → l+1))")
        ax.set_ylabel("number of clusters / degree l")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Emergence of clusters from uniform data (BPA24): counts vs l*(β)", fontsize=10)
    fig.tight_layout()
    _save_figure(fig, paths)
    plt.close(fig)


def plot_phase_diagram(phase: pd.DataFrame, paths) -> None:
    """GLPR23's (β, t) heat map of the fraction of clustered pairs."""
    plt = _plt()
    tab = phase.pivot(index="t", columns="beta", values="fraction").sort_index()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    b, t = tab.columns.to_numpy(float), tab.index.to_numpy(float)
    mesh = ax.pcolormesh(b, t, tab.to_numpy(), shading="nearest", cmap="magma", vmin=0.0, vmax=1.0)
    fig.colorbar(mesh, ax=ax, label=f"fraction of pairs with ⟨x_i, x_j⟩ > {phase['threshold'].iloc[0]:g}")
    ax.set_xlabel("β")
    ax.set_ylabel("t")
    ax.set_title(f"{phase['model'].iloc[0].upper()}, d = {int(phase['d'].iloc[0])}, n = {int(phase['n'].iloc[0])}, "
                 f"{int(phase['n_systems'].iloc[0])} systems per β (GLPR23 phase diagram)", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, paths)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# Configuration (the ``reproductions:`` section of config.yaml) and command line
# --------------------------------------------------------------------------------------

REPRODUCTIONS_DEFAULTS: dict = {
    "staircase": {"betas": list(AUTHORS_BETAS), "lr": 1e-5, "logtime": True, "record_every": 10},
    "emergence": {"d": [2], "n": 2000, "betas": [2.0, 5.0, 8.0, 12.5, 18.0, 25.0, 32.0, 40.0], "seeds": 6,
                  "model": "usa", "theta_c": 0.1, "tight_angle": 0.25, "peak_angle": 0.5, "f": 0.9, "m_min": 0.01,
                  "method": "RK23", "rtol": 1e-3, "power_level": 0.05, "history_t_max": 0.0},
    "phase_diagram": {"betas": {"start": 0.3, "stop": 9.0, "num": 30}, "t_max": 30.0, "n_times": 61, "n": 32,
                      "d": 2, "n_systems": 8, "model": "sa", "threshold": 0.999},
}


def _beta_list(path: str, spec) -> list[float]:
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "num", "scale"}
        if unknown or not {"start", "stop", "num"} <= set(spec):
            raise ValueError(f"{path}: a β range needs start, stop, num[, scale]; got keys {sorted(spec)}")
        start, stop, num = float(spec["start"]), float(spec["stop"]), int(spec["num"])
        if not (0 < start <= stop) or num < 1:
            raise ValueError(f"{path}: need 0 < start <= stop and num >= 1, got {spec}")
        if spec.get("scale", "linear") == "log":
            vals = np.geomspace(start, stop, num)
        else:
            vals = np.linspace(start, stop, num)
    else:
        vals = np.atleast_1d(np.asarray(spec, dtype=float))
    vals = [float(f"{v:.12g}") for v in vals]
    if not vals or any(not (v > 0 and np.isfinite(v)) for v in vals):
        raise ValueError(f"{path}: β values must be positive and finite, got {spec!r}")
    if len(set(vals)) != len(vals):
        raise ValueError(f"{path}: repeated β values {vals}")
    return vals


def _emergence_n(spec, ds: list[int]) -> dict:
    """``reproductions.emergence.n`` → {d: [n, …]}: an integer, a list (the same for every d),
    or a mapping d → integer or list (e.g. ``{2: [2000, 20000, 200000], 3: 2000}``)."""
    def as_list(key, v):
        vals = v if isinstance(v, (list, tuple)) else [v]
        if not vals or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 2 for x in vals):
            raise ValueError(f"{key}: invalid value {v!r}; allowed: an integer ≥ 2 or a list of them")
        if len(set(vals)) != len(vals):
            raise ValueError(f"{key}: repeated value in {v!r}")
        return [int(x) for x in vals]

    if isinstance(spec, dict):
        given = {}
        for k, v in spec.items():
            try:
                d = int(k)
            except (TypeError, ValueError):
                d = None
            if d is None or str(k) != str(d) or d not in ds:
                raise ValueError(f"reproductions.emergence.n.{k}: not one of the dimensions "
                                 f"reproductions.emergence.d = {ds}")
            given[d] = as_list(f"reproductions.emergence.n.{k}", v)
        missing = [d for d in ds if d not in given]
        if missing:
            raise ValueError(f"reproductions.emergence.n.{missing[0]}: missing; a mapping needs one entry per "
                             f"dimension in reproductions.emergence.d = {ds}")
        return {d: given[d] for d in ds}
    vals = as_list("reproductions.emergence.n", spec)
    return {d: list(vals) for d in ds}


def reproductions_config(cfg: dict | None) -> dict:
    """The ``reproductions:`` config section with defaults filled in and values checked.

    Raises ValueError naming the offending key (``reproductions.<part>.<key>``).
    """
    cfg = {} if cfg is None else cfg
    if not isinstance(cfg, dict):
        raise ValueError("reproductions: must be a mapping")
    unknown = set(cfg) - set(REPRODUCTIONS_DEFAULTS)
    if unknown:
        raise ValueError(f"reproductions.{sorted(unknown)[0]}: unknown key; allowed: {sorted(REPRODUCTIONS_DEFAULTS)}")
    out = {}
    for part, defaults in REPRODUCTIONS_DEFAULTS.items():
        given = cfg.get(part) or {}
        if not isinstance(given, dict):
            raise ValueError(f"reproductions.{part}: must be a mapping")
        bad = set(given) - set(defaults)
        if bad:
            raise ValueError(f"reproductions.{part}.{sorted(bad)[0]}: unknown key; allowed: {sorted(defaults)}")
        out[part] = {**defaults, **given}
    st, em, ph = out["staircase"], out["emergence"], out["phase_diagram"]
    st["betas"] = _beta_list("reproductions.staircase.betas", st["betas"])
    em["betas"] = _beta_list("reproductions.emergence.betas", em["betas"])
    ph["betas"] = _beta_list("reproductions.phase_diagram.betas", ph["betas"])
    em["d"] = [int(v) for v in np.atleast_1d(em["d"])]
    em["n"] = _emergence_n(em["n"], em["d"])
    checks = [
        ("staircase.lr", st["lr"] > 0), ("staircase.record_every", int(st["record_every"]) >= 1),
        ("emergence.d", all(v >= 2 for v in em["d"])),
        ("emergence.seeds", int(em["seeds"]) >= 1), ("emergence.model", em["model"] in ("sa", "usa")),
        ("emergence.theta_c", 0 < em["theta_c"] < np.pi), ("emergence.tight_angle", em["tight_angle"] > 0),
        ("emergence.peak_angle", em["peak_angle"] > 0),
        ("emergence.f", 0 < em["f"] <= 1), ("emergence.m_min", 0 < em["m_min"] < 1),
        ("emergence.history_t_max", em["history_t_max"] >= 0),
        ("emergence.method", em["method"] in _SOLVERS), ("emergence.rtol", 0 < em["rtol"] < 1),
        ("emergence.power_level", 0 < em["power_level"] < 1),
        ("phase_diagram.t_max", ph["t_max"] > 0), ("phase_diagram.n_times", int(ph["n_times"]) >= 2),
        ("phase_diagram.n", int(ph["n"]) >= 2), ("phase_diagram.d", int(ph["d"]) >= 2),
        ("phase_diagram.n_systems", int(ph["n_systems"]) >= 1), ("phase_diagram.model", ph["model"] in ("sa", "usa")),
        ("phase_diagram.threshold", -1 < ph["threshold"] < 1),
    ]
    for key, ok in checks:
        if not ok:
            part, name = key.split(".")
            raise ValueError(f"reproductions.{key}: invalid value {out[part][name]!r}")
    return out


def reproductions_schema() -> dict:
    """JSON schema (draft 2020-12 compatible) of the ``reproductions:`` config section.

    Mirrors :func:`reproductions_config` (which remains the authority: it also checks
    ranges that JSON schema cannot express, e.g. repeated β values).
    """
    num = {"type": "number"}
    pos = {"type": "number", "exclusiveMinimum": 0}
    beta_range = {"type": "object", "additionalProperties": False, "required": ["start", "stop", "num"],
                  "properties": {"start": pos, "stop": pos, "num": {"type": "integer", "minimum": 1},
                                 "scale": {"enum": ["linear", "log"]}}}
    betas = {"oneOf": [{"type": "array", "items": pos, "minItems": 1}, pos, beta_range]}
    n_int = {"type": "integer", "minimum": 2}
    n_list = {"type": "array", "items": n_int, "minItems": 1, "uniqueItems": True}

    def section(props, doc):
        return {"type": "object", "additionalProperties": False, "description": doc, "properties": props}

    return section({
        "staircase": section({"betas": betas, "lr": pos, "logtime": {"type": "boolean"},
                              "record_every": {"type": "integer", "minimum": 1}},
                             "GKPR24 §6 staircase, the authors' configuration (n = 5 on the circle)"),
        "emergence": section({"d": {"oneOf": [{"type": "integer", "minimum": 2},
                                              {"type": "array", "items": {"type": "integer", "minimum": 2},
                                               "minItems": 1}]},
                              "n": {"oneOf": [n_int, n_list, {"type": "object", "minProperties": 1,
                                                              "additionalProperties": False,
                                                              "patternProperties": {"^[0-9]+$": {
                                                                  "oneOf": [n_int, n_list]}}}]},
                              "betas": betas,
                              "seeds": {"type": "integer", "minimum": 1}, "model": {"enum": ["sa", "usa"]},
                              "theta_c": pos, "tight_angle": pos, "peak_angle": pos, "f": pos, "m_min": pos,
                              "method": {"enum": sorted(_SOLVERS)}, "rtol": pos, "power_level": pos,
                              "history_t_max": {"type": "number", "minimum": 0}},
                             "BPA24 emergence of l* clusters from uniform data; one job per (d, β)"),
        "phase_diagram": section({"betas": betas, "t_max": pos, "n_times": {"type": "integer", "minimum": 2},
                                  "n": {"type": "integer", "minimum": 2}, "d": {"type": "integer", "minimum": 2},
                                  "n_systems": {"type": "integer", "minimum": 1}, "model": {"enum": ["sa", "usa"]},
                                  "threshold": num},
                                 "GLPR23 (β, t) phase diagram"),
    }, "paper reproductions (attention_dynamics.reproductions; defaults in REPRODUCTIONS_DEFAULTS)")


def emergence_cells(cfg: dict) -> list[dict]:
    """One Snakemake job per (d, n, β): all seeds inside. Path-safe names via sweep.format_value."""
    from .sweep import format_value

    em = reproductions_config(cfg)["emergence"]
    return [dict(d=d, n=n, beta=b, path=f"d{d}/n{n}/beta{format_value(b)}")
            for d in em["d"] for n in em["n"][d] for b in em["betas"]]


def main(argv=None) -> int:
    """``python -m attention_dynamics.reproductions {staircase,emergence,phase,summary} …``"""
    import argparse
    import json
    import sys

    from .io import provenance, write_table

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.reproductions",
                                description="paper reproductions: staircase, emergence, phase diagram, summary")
    p.add_argument("--config", default=None, help="JSON of the reproductions: config section (default: defaults)")
    p.add_argument("--config-hash", default="")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("staircase")
    a.add_argument("--steps", required=True)
    a.add_argument("--curves", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("emergence")
    a.add_argument("--d", type=int, required=True)
    a.add_argument("--n", type=int, required=True)
    a.add_argument("--beta", type=float, required=True)
    a.add_argument("--base-seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a = sub.add_parser("emergence-aggregate")
    a.add_argument("--inputs", nargs="+", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("phase")
    a.add_argument("--base-seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("summary")
    for t in ("runs", "lifetimes", "trajectories", "fits", "staircase", "emergence", "phase"):
        a.add_argument(f"--{t}", default=None)
    a.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cfg = reproductions_config(json.loads(args.config) if args.config else None)
    prov = provenance(config_hash=args.config_hash, reproductions=cfg)

    if args.cmd == "staircase":
        c = cfg["staircase"]
        steps, curves = staircase_tables(c["betas"], lr=c["lr"], logtime=bool(c["logtime"]),
                                         record_every=int(c["record_every"]))
        write_table(steps, args.steps, columns_doc=STAIRCASE_STEP_COLUMNS, meta=prov)
        write_table(curves, args.curves, columns_doc=STAIRCASE_CURVE_COLUMNS, meta=prov)
        if args.plot:
            plot_staircase(steps, curves, args.plot)
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(steps.to_string(index=False))
    elif args.cmd == "emergence":
        c = dict(cfg["emergence"])
        betas_, seeds, ns = c.pop("betas"), int(c.pop("seeds")), c.pop("n")
        c.pop("d")
        if args.d not in ns or args.n not in ns[args.d]:
            p.error(f"--d {args.d} --n {args.n}: not in the configured reproductions.emergence.n = {ns}")
        df = emergence_table([args.beta], seeds, d=args.d, n=args.n, log=sys.stdout, base_seed=args.base_seed, **c)
        write_table(df, args.out, columns_doc=EMERGENCE_COLUMNS, meta=prov)
    elif args.cmd == "emergence-aggregate":
        import pyarrow.parquet as pq

        df = pd.concat([pq.read_table(f).to_pandas() for f in args.inputs], ignore_index=True)
        df = df.sort_values(["d", "n", "beta", "seed"], kind="stable").reset_index(drop=True)
        write_table(df, args.out, columns_doc=EMERGENCE_COLUMNS, meta=prov)
        if args.plot:
            plot_emergence(df, args.plot)
        summary = df.groupby(["d", "n", "beta"]).agg(l_star=("l_star", "first"), agree=("agree", "mean"),
                                                p_lin=("p_lin_count_l_star", "first"),
                                                agree_formation=("agree_formation", "mean"),
                                                agree_degree=("agree_degree", "mean"),
                                                p_lin_degree=("p_lin_degree_l_star", "first"),
                                                wall=("wall_formation", "mean"))
        print(summary.to_string())
    elif args.cmd == "phase":
        c = cfg["phase_diagram"]
        times = np.linspace(0.0, float(c["t_max"]), int(c["n_times"]))
        df = phase_diagram(c["betas"], times, n=int(c["n"]), d=int(c["d"]), n_systems=int(c["n_systems"]),
                           model=c["model"], threshold=float(c["threshold"]), base_seed=args.base_seed)
        write_table(df, args.out, columns_doc=PHASE_COLUMNS, meta=prov)
        if args.plot:
            plot_phase_diagram(df, args.plot)
    elif args.cmd == "summary":
        import pyarrow.parquet as pq

        tables = {}
        for t in ("runs", "lifetimes", "trajectories", "fits", "staircase", "emergence", "phase"):
            path = getattr(args, t)
            tables[t] = pq.read_table(path).to_pandas() if path else None
        print(write_summary(args.out, **tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
