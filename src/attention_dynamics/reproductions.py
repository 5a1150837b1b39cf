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
  the number of clusters that form from uniform data versus l*(β, d).
* :func:`phase_diagram` — GLPR23's (β, t) diagram for SA on the circle.
* :func:`write_summary` — ``results/summary.md``: claim → theory → measured → agreement.
"""
from __future__ import annotations

import time as _time

import numpy as np
import pandas as pd
from scipy.integrate import RK23, RK45, DOP853, solve_ivp

from .clusters import single_linkage_labels
from .dynamics import energy, velocity
from .gegenbauer import formation_time, l_star

__all__ = [
    "AUTHORS_BETAS",
    "authors_initial_angles",
    "staircase_theory",
    "authors_staircase",
    "logtime_staircase",
    "staircase_tables",
    "circle_components",
    "components",
    "formation",
    "emergence_run",
    "emergence_table",
    "phase_diagram",
    "write_summary",
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


_SOLVERS = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853}


def formation(x0: np.ndarray, beta: float, *, model: str = "usa", theta_c: float = 0.1, tight_angle: float = 0.25,
              f: float = 0.9, m_min: float = 0.01, method: str = "RK23", rtol: float = 1e-3, atol: float = 1e-6,
              t_max: float | None = None, max_steps: int = 20_000) -> dict:
    """Integrate from (near-)uniform data until clusters have formed; count them.

    Definition (the one the emergence table uses)
    ----------------------------------------------
    Clusters are single-linkage components at angle θ_c (0.1 rad, as everywhere in the
    pipeline). A component is *tight* when its angular diameter is below ``tight_angle``
    (0.25 rad). The **formation time** t_f is the first time a fraction ``f`` = 0.9 of the
    mass lies in tight components; the **count at formation** is the number of components
    at t_f holding at least ``m_min`` = 1 % of the mass.

    Why this and not a raw single-linkage count:
    * At t = 0 the n = 2000 uniform points form one component (largest spacing
      ≈ 2π ln n / n ≈ 0.024 ≪ θ_c), and a raw count only rises as gaps open — first at
      random places where the 1/√n fluctuations are deepest — so it passes through values
      that say nothing about the unstable mode. Requiring 90 % of the mass to be tight
      waits until the linear instability has saturated everywhere.
    * Particles left near the unstable equilibria between clusters form singletons for a
      long time (≈ 15 at n = 2000, β = 10); they are real components but not clusters
      selected by the instability, so components below 1 % of the mass are not counted
      (a cluster of a 2000-particle l*-mode holds ≈ 1/l* ≥ 7 % at β ≤ 40).
    * Once formed, clusters merge only after times ∝ e^{β(1−cos D)}, much longer than t_f,
      so the count is a plateau and insensitive to the exact f, θ_c, tight_angle
      (tight_angle must stay below the cluster spacing 2π/l*: 0.70 rad at β = 40).
    * t_f is compared with the linear prediction t_c = ln(n)/(2λ*) (the time for 1/√n
      fluctuations to grow by √n); t_f/t_c ≈ 2 is expected because tightening the
      clusters takes a few more e-folds after the modulation reaches O(1).

    Integration: an explicit Runge–Kutta method of :mod:`scipy.integrate` on
    :func:`dynamics.velocity` (no collapse, no event detection: before formation there
    are no fast modes, all rates are ≤ O(1)); the crossing is located by bisection on the
    solver's dense output. RK23 at rtol 1e-3 takes ~60 field evaluations at n = 2000 and
    gave the same counts as DOP853 at rtol 1e-8 (see the report / tests).

    Returns a dict: t_formation, n_clusters (≥ m_min), n_components (all), tight_mass,
    x (positions at t_formation), n_steps, nfev, status ("ok" or "not_formed").
    """
    x0 = np.asarray(x0, dtype=np.float64)
    n, d = x0.shape
    mass = np.ones(n)
    if t_max is None:
        t_max = 20.0 * float(formation_time(beta, n, d, "gkpr24" if model == "usa" else "sa"))

    def fun(t, y):
        return velocity(y.reshape(n, d), mass, beta, model).ravel()

    def measure(y):
        x = y.reshape(n, d)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        _, masses, extents = components(x, theta_c)
        tight = float(masses[extents < tight_angle].sum()) / n
        return x, tight, masses, extents

    solver = _SOLVERS[method](fun, 0.0, x0.ravel(), t_max, rtol=rtol, atol=atol)
    out = dict(status="not_formed", t_formation=np.nan, n_clusters=-1, n_components=-1, tight_mass=np.nan, x=None)
    x, tight, masses, extents = measure(solver.y)
    steps = 0
    if tight >= f:
        t_hit, y_hit = 0.0, solver.y
    else:
        t_hit = None
        while solver.status == "running" and steps < max_steps:
            solver.step()
            steps += 1
            if solver.status == "failed":
                break
            if measure(solver.y)[1] >= f:
                dense = solver.dense_output()
                lo, hi = solver.t_old, solver.t
                while hi - lo > 1e-4 * max(hi, 1.0):
                    mid = 0.5 * (lo + hi)
                    if measure(dense(mid))[1] >= f:
                        hi = mid
                    else:
                        lo = mid
                t_hit, y_hit = hi, (dense(hi) if hi < solver.t else solver.y)
                break
    if t_hit is not None:
        x, tight, masses, extents = measure(y_hit)
        out.update(status="ok", t_formation=float(t_hit), n_clusters=int(np.sum(masses >= m_min * n)),
                   n_components=int(masses.size), tight_mass=tight, x=x)
    out.update(n_steps=steps, nfev=int(solver.nfev))
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
    "t_formation": "first time ≥ f of the mass lies in single-linkage components of diameter < tight_angle",
    "t_ratio": "t_formation / t_c_pred",
    "n_clusters_formation": "components holding ≥ m_min of the mass at t_formation",
    "n_components_formation": "all single-linkage components at t_formation (stragglers included)",
    "tight_mass_formation": "mass fraction in tight components at t_formation",
    "agree": "n_clusters_formation == l_star (meaningful in d = 2 only; d ≥ 3 selects a harmonic subspace)",
    "later_counts": "history after formation: 'k@t;…' = count of components ≥ m_min and the time it started",
    "first_merge_time": "time of the first merge of two components ≥ m_min (NaN if none before t_history)",
    "n_clusters_final": "count of components ≥ m_min at t_history",
    "t_history": "end of the simulated history (t_max, or the time one point remained)",
    "status": "ok | not_formed (no formation before t_max of the formation stage) | history_failed | error",
    "reason": "why, when status is not ok",
    "theta_c": "single-linkage angle (rad)",
    "tight_angle": "diameter below which a component counts as tight (rad)",
    "f": "mass fraction in tight components that defines formation",
    "m_min": "minimum mass fraction of a counted cluster",
    "nfev_formation": "vector-field evaluations of the formation stage",
    "wall_formation": "wall-clock seconds of the formation stage",
    "wall_history": "wall-clock seconds of the history stage (simulate)",
}


def emergence_run(beta: float, d: int, n: int, seed: int, *, model: str = "usa", base_seed: int = 0,
                  theta_c: float = 0.1, tight_angle: float = 0.25, f: float = 0.9, m_min: float = 0.01,
                  method: str = "RK23", rtol: float = 1e-3, history_t_max: float = 0.0,
                  history_rtol: float = 1e-8) -> dict:
    """One row of the emergence table: uniform data → formation (:func:`formation`) → history.

    The history (when ``history_t_max`` > t_formation) continues from the positions at
    formation with :func:`simulate.simulate` (collapse, merge detection) up to the global
    time ``history_t_max``; a merge counts when both merging components hold ≥ m_min.
    """
    from .cell import seed_sequence
    from . import initial
    from .gegenbauer import growth_rate

    conv = "gkpr24" if model == "usa" else "sa"
    ls = int(l_star(beta, d))
    lam = float(growth_rate(beta, ls, d, conv))
    row = dict(model=model, beta=float(beta), d=int(d), n=int(n), seed=int(seed), l_star=ls, lambda_star=lam,
               t_c_pred=float(np.log(n) / (2 * lam)), theta_c=theta_c, tight_angle=tight_angle, f=f, m_min=m_min,
               status="ok", reason="", later_counts="", first_merge_time=np.nan, n_clusters_final=-1,
               t_history=np.nan, wall_history=0.0)
    rng = np.random.default_rng(seed_sequence({"init": "uniform", "d": int(d), "n": int(n)}, seed, base_seed))
    x0 = initial.uniform(int(n), int(d), rng).x
    t0 = _time.perf_counter()
    try:
        fo = formation(x0, beta, model=model, theta_c=theta_c, tight_angle=tight_angle, f=f, m_min=m_min,
                       method=method, rtol=rtol)
    except Exception as exc:  # recorded, never fatal for the sweep
        row.update(status="error", reason=f"{type(exc).__name__}: {exc}", t_formation=np.nan,
                   n_clusters_formation=-1, n_components_formation=-1, tight_mass_formation=np.nan,
                   nfev_formation=0, wall_formation=_time.perf_counter() - t0, t_ratio=np.nan, agree=False)
        return row
    row.update(t_formation=fo["t_formation"], n_clusters_formation=fo["n_clusters"],
               n_components_formation=fo["n_components"], tight_mass_formation=fo["tight_mass"],
               nfev_formation=fo["nfev"], wall_formation=_time.perf_counter() - t0,
               t_ratio=fo["t_formation"] / row["t_c_pred"], agree=bool(fo["n_clusters"] == ls))
    if fo["status"] != "ok":
        row.update(status=fo["status"], reason="no formation before 20 t_c")
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
    """:func:`emergence_run` for every (β, seed); ``seeds`` is a count or a list of indices."""
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    rows = []
    for beta in betas:
        for s in seeds:
            row = emergence_run(float(beta), d, n, s, **kwargs)
            rows.append(row)
            if log is not None:
                print(f"beta={beta:g} d={d} n={n} seed={s} l*={row['l_star']} count={row['n_clusters_formation']} "
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
            return velocity(y.reshape(n, d), mass, beta, model).ravel()

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
