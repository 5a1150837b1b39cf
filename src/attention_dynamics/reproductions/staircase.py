"""GKPR24 §6: the energy staircase of n = 5 particles on the circle.

In the authors' arclength parametrisation (:func:`authors_staircase`) and in log time
s = ln t / β (:func:`logtime_staircase`), with the plateau levels and step positions of
the point-cluster theory (:func:`staircase_theory`); :func:`staircase_tables` makes the
``staircase_authors`` tables and :func:`plot_staircase` the figure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine.dynamics import energy, velocity
from ._figures import _plt, _save_and_close

__all__ = ["AUTHORS_BETAS", "STAIRCASE_STEP_COLUMNS", "STAIRCASE_CURVE_COLUMNS", "authors_initial_angles",
           "staircase_theory", "authors_staircase", "logtime_staircase", "staircase_tables", "staircase_figure", "plot_staircase"]

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
    """The closest-pair-first merge sequence of points on the circle (docs/science.md §3–§4).

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
    from ..engine.simulate import simulate

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
    from ..theory.twocluster import two_cluster_merge_time

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



def staircase_figure(steps: pd.DataFrame, curves: pd.DataFrame):
    """GKPR24 §6 staircase: Ē vs rescaled time (authors) and vs s = ln t/β, with the predictions.

    Returns the matplotlib figure. One line per β (a colour bar instead of legend entries
    past ``figstyle.LEGEND_MAX`` values); every key is in one legend below the panels.
    """
    from matplotlib.lines import Line2D

    from ..analysis.figstyle import Scale, legend_below, suptitle

    plt = _plt()
    pars = [p for p in ("arclength", "logtime") if (curves["parametrisation"] == p).any()] or ["logtime"]
    fig, axes = plt.subplots(1, len(pars), figsize=(6.2 * len(pars), 4.8), squeeze=False, layout="constrained",
                             dpi=130)
    betas = sorted(curves["beta"].unique())
    scale = Scale("β", betas)
    theory = staircase_theory(authors_initial_angles())
    levels = [1 / 5] + theory["level_after"].tolist()
    for ax, par in zip(axes[0], pars):
        for b in betas:
            c = curves[(curves["parametrisation"] == par) & (curves["beta"] == b)]
            ax.plot(c["x"], c["energy"], color=scale(b), lw=1.3)
            st = steps[(steps["parametrisation"] == par) & (steps["beta"] == b)]
            if par == "arclength":  # predicted end-times (nominal gaps) as ticks on each level
                ax.plot(st["end_theory_nominal"], st["level_theory"], "|", color=scale(b), ms=14, mew=1.5)
        for lv in levels:
            ax.axhline(lv, color="0.6", ls="--", lw=0.7)
        if par == "logtime":
            for s_k in theory["s_step"]:
                ax.axvline(s_k, color="0.3", ls=":", lw=0.9)
            ax.set_xlabel("log time s = ln t / β")
            ax.set_title("ordinary USA dynamics, log time", fontsize=10)
        else:
            ax.set_xlabel("rescaled time τ = lr × iteration")
            ax.set_title("authors' arclength parametrisation (GKPR24 §6)", fontsize=10)
        ax.set_ylabel("energy Ē")
        ax.set_ylim(0.15, 1.03)
        xs = curves.loc[curves["parametrisation"] == par, "x"]
        if len(xs):
            ax.set_xlim(left=min(0.0, float(xs.min())))
        else:
            ax.text(0.5, 0.5, "no curves", transform=ax.transAxes, ha="center", color="0.4")
    handles = [Line2D([], [], color="0.6", ls="--", lw=0.7, label="plateau heights Σ m_a² = 5/25, 7/25, 11/25, "
                      "13/25, 1")]
    if "arclength" in pars:
        handles.append(Line2D([], [], ls="", marker="|", color="0.3", ms=10, mew=1.5,
                              label="predicted step end Σ_{l≤k} D_l √(m_a m_b/(m_a+m_b)) / ln β"))
    if "logtime" in pars:
        handles.append(Line2D([], [], color="0.3", ls=":", lw=0.9, label="s = 1 − cos D_k (steps as β → ∞)"))
    scale.colourbar(fig, list(axes[0]), "β")
    legend_below(fig, handles + scale.handles(), fontsize=8)
    suptitle(fig, "Energy staircase, n = 5 on the circle, θ₀ = 0.5·(0, 0.5, 2, 4, 7)·ln 2000/√2000")
    return fig


def plot_staircase(steps: pd.DataFrame, curves: pd.DataFrame, paths) -> None:
    """Save :func:`staircase_figure` to ``paths`` (one path or several; format from the suffix)."""
    _save_and_close(staircase_figure(steps, curves), paths)