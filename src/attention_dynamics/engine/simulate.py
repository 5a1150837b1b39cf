"""Adaptive integration of SA/USA with exact collapse and local-time restarts (docs/science.md §5).

The loop
--------
1. Take one adaptive DOP853 step of the vector field :func:`dynamics.velocity` on the
   current weighted points, in *local* time (time since the last restart).
2. Detect events inside the step from the solver's dense output, by root-finding:
   merges (single-linkage clusters at angle θ_c joining), the escape of a particle from
   its doubled cap, and the log-spaced trajectory samples.
3. Collapse: every group of points closer than δ (chordal) becomes one point of the
   summed mass at the mass-weighted normalised mean. Coincident particles stay
   coincident under the flow, so this is exact up to O(δ²) in merge times.
4. Restart the solver at local time 0 after a collapse, after a merge, and whenever
   the step size has become small compared with the local time, so that O(1) steps
   stay representable at global times of 10²⁰ and beyond.

Once clusters have collapsed to points there are no fast modes left, and the adaptive
stepper crosses a plateau of length e^{cβ} in a number of steps that grows with β
and not with the plateau's length.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from .stepper import PredictiveDOP853
from scipy.optimize import brentq

from .clusters import collapse_close_points, components, min_intercluster_angle, single_linkage_labels
from .dynamics import MODELS, energy, velocity

__all__ = ["simulate", "SimulationResult", "EVENT_COLUMNS", "TRAJECTORY_COLUMNS", "LIFETIME_COLUMNS"]

EVENT_COLUMNS = {
    "event": "merge index within the run, 0-based, in time order",
    "time": "merge time t (single-linkage clusters at angle θ_c join)",
    "n_clusters_before": "cluster count just before the merge",
    "n_clusters_after": "cluster count just after the merge",
    "mass_a": "mass fraction of the heavier merging cluster",
    "mass_b": "mass fraction of the lighter merging cluster",
    "angle_at_merge": "angle (rad) between the centres of the two merging clusters at the merge time",
    "gap_at_open": "angle (rad) between the centres of the two merging clusters when the plateau opened",
    "t_open": "time the plateau closed by this merge opened (previous merge, or 0)",
}
TRAJECTORY_COLUMNS = {
    "time": "sample time t (0, then log-spaced)",
    "energy": "normalised energy Ē = (1/n²) Σ m_i m_j e^{β(⟨x_i,x_j⟩−1)}",
    "n_clusters": "single-linkage cluster count at angle θ_c",
    "min_angle": "smallest angle (rad) between points of different clusters (NaN for one cluster)",
    "n_points": "number of distinct (collapsed) points carried by the integrator",
}
LIFETIME_COLUMNS = {
    "plateau": "plateau index within the run, 0-based",
    "n_clusters": "cluster count during the plateau",
    "t_open": "time the plateau opened (previous merge, or 0)",
    "t_close": "time of the merge that closed it (or end of run if censored)",
    "lifetime": "t_close − t_open",
    "censored": "True if the run ended before the plateau closed",
    "sum_mass_sq": "Σ_a μ_a² over the clusters of the plateau (predicted energy plateau height)",
}


@dataclass
class SimulationResult:
    """Outcome of :func:`simulate`.

    ``events`` and ``trajectory`` are DataFrames (columns documented in
    ``EVENT_COLUMNS`` and ``TRAJECTORY_COLUMNS``); ``lifetimes`` lists the plateaus.
    ``escape_time`` is the first exit of a particle from its doubled cap (NaN when no
    caps were given or no escape happened before the run ended; see ``escape_censored``).
    ``censored`` is True when ``t_max`` was reached while more than one cluster remained.
    """

    events: pd.DataFrame
    trajectory: pd.DataFrame
    lifetimes: pd.DataFrame
    escape_time: float
    escape_censored: bool
    censored: bool
    status: str
    reason: str
    t_end: float
    n_clusters_final: int
    x_final: np.ndarray
    mass_final: np.ndarray
    stats: dict = field(default_factory=dict)

    @property
    def first_merge_time(self) -> float:
        return float(self.events["time"].iloc[0]) if len(self.events) else float("nan")

    @property
    def merge_times(self) -> np.ndarray:
        return self.events["time"].to_numpy()


def _as_points(x0, masses):
    x = np.array(x0, dtype=np.float64, copy=True)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"x0 must be a 2-D array (n, d) with n >= 1, got shape {np.shape(x0)}")
    n, d = x.shape
    if d < 2:
        raise ValueError(f"x0 must have d >= 2 columns (points on S^(d-1)), got d={d}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or infinite values")
    norms = np.linalg.norm(x, axis=1)
    bad = np.abs(norms - 1.0) > 1e-8
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"x0 must lie on the unit sphere (|x_i| = 1 within 1e-8); row {i} has norm {norms[i]!r}")
    x /= norms[:, None]
    if masses is None:
        m = np.ones(n)
    else:
        m = np.array(masses, dtype=np.float64, copy=True)
        if m.shape != (n,):
            raise ValueError(f"masses must have shape ({n},), got {m.shape}")
        if not np.all(np.isfinite(m)) or np.any(m <= 0):
            raise ValueError("masses must be finite and positive")
    return x, m


def _check_positive(name, value, allow_inf=False):
    if isinstance(value, (str, bytes, bool, np.bool_)):  # float("10") would pass: a number is required
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (v > 0) or (not allow_inf and not np.isfinite(v)) or np.isnan(v):
        raise ValueError(f"{name} must be a positive{'' if allow_inf else ' finite'} number, got {value!r}")
    return v


def _find(root: np.ndarray, a: int) -> int:
    while root[a] != a:
        a = root[a]
    return int(a)


def _roots(root: np.ndarray) -> np.ndarray:
    return np.array([_find(root, a) for a in range(root.size)], dtype=np.int64)


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between unit vectors, accurate for tiny angles: 2 asin(‖u − v‖/2)."""
    return float(2.0 * np.arcsin(min(np.linalg.norm(u - v) / 2.0, 1.0)))


def default_record_times(t_max: float, per_decade: int = 8, t_first: float = 1e-2) -> np.ndarray:
    """t = 0, then ``per_decade`` log-spaced samples per decade from ``t_first`` to ``t_max``."""
    if t_max <= t_first:
        return np.array([0.0, t_max])
    hi, lo = np.log10(t_max), np.log10(t_first)
    k = max(int(np.ceil((hi - lo) * per_decade)), 1)
    t = np.logspace(lo, hi, k + 1)
    t[-1] = t_max
    return np.concatenate([[0.0], t])


class _Run:
    """Mutable state of one simulation (kept out of :func:`simulate` for readability)."""

    def __init__(self, x, mass, beta, model, theta_c, delta, collapse):
        self.beta, self.model, self.theta_c = beta, model, theta_c
        self.cos_c = np.cos(theta_c)
        self.delta, self.collapse = delta, collapse
        self.n_total = mass.sum()
        self.mass0 = mass.copy()
        self.x, self.mass = x, mass
        self.point_of = np.arange(x.shape[0])  # original particle -> current point
        self.t_off = 0.0
        self.relabel(x @ x.T > self.cos_c)

    def relabel(self, adj):
        """Recompute clusters from the θ_c-adjacency ``adj`` of the current points."""
        self.adj = adj
        self.count, self.labels = components(adj)
        self.cross = self.labels[:, None] != self.labels[None, :]

    def update_clusters(self, adj):
        """Clusters at a step end. Labels can only change if a pair of different clusters
        came within θ_c (merge) or an edge was lost (possible split): otherwise reuse them."""
        if adj.shape == self.adj.shape and not (adj & self.cross).any() and not (self.adj & ~adj).any():
            self.adj = adj
            return False
        self.relabel(adj)
        return True

    def fun(self, t, y):
        # Evaluate the field at x/|x|: the solver state then has no tendency to leave the
        # sphere (the projected field of an off-sphere x is not tangent, and on long
        # near-antipodal plateaus |x| − 1 would grow exponentially).
        x = y.reshape(self.mass.size, -1)
        x = x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
        return velocity(x, self.mass, self.beta, self.model, exact=not self.collapse).ravel()

    def snapshot(self):
        """Centres of the clusters (by original particle) at a plateau's opening."""
        return self.x.copy(), self.point_of.copy()


def simulate(x0, *, beta: float, model: str = "usa", t_max: float = 1e20, masses=None,
             collapse: bool = True, delta: float = 1e-5, theta_c: float = 0.1,
             rtol: float = 1e-10, atol: float = 1e-12, cap_centres=None, cap_eps: float | None = None,
             cap_labels=None, record_times=None, max_steps: int = 200_000,
             restart_ratio: float = 1e-4) -> SimulationResult:
    """Integrate SA or USA from ``x0`` until one point remains or ``t_max`` is reached.

    Parameters
    ----------
    x0 : (n, d) array of unit vectors; ``masses`` : optional (n,) positive weights.
    beta : inverse temperature β > 0.  model : ``"sa"`` or ``"usa"`` (GKPR24 time).
    t_max : horizon (may be 1e20 or more).
    collapse : merge points closer than ``delta`` (chordal) into weighted points; with
        ``collapse=False`` the full system is integrated (validation mode).
    delta : collapse radius. The error it causes in merge times of collapsed clusters
        scales as δ² (measured: ≤ 3e-10 relative at the default 1e-5, 8e-8 at 1e-4). A
        merge that happens while its clusters are still contracting (t = O(1)) is located
        by their outermost points, which a collapse moves by up to δ/2: O(δ) there.
    rtol, atol : DOP853 tolerances; at the defaults merge times agree with a rtol = 1e-13,
        δ = 1e-6 reference to ≤ 6e-10 relative (n = 64, k = 4, β ≤ 40, SA and USA).
    theta_c : single-linkage angle (rad) defining clusters and merges.
    cap_centres, cap_eps, cap_labels : caps S_q(ε) the particles start in; the escape
        time is the first exit of a particle from its doubled cap S_q(2ε).
    record_times : global times at which the trajectory is sampled (default: 0 and 8
        per decade from 1e-2 to t_max).
    """
    beta = _check_positive("beta", beta)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    t_max = _check_positive("t_max", t_max)
    theta_c = _check_positive("theta_c", theta_c)
    delta = _check_positive("delta", delta)
    if not theta_c < np.pi:
        raise ValueError(f"theta_c must be in (0, π), got {theta_c!r}")
    if not delta < 2 * np.sin(theta_c / 2):
        raise ValueError(f"delta (chordal) must be smaller than the chord of theta_c; got delta={delta!r}")
    x, mass = _as_points(x0, masses)
    n, d = x.shape

    caps = None
    if cap_centres is not None:
        w = np.asarray(cap_centres, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != d:
            raise ValueError(f"cap_centres must have shape (k, {d})")
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        cap_eps = _check_positive("cap_eps", cap_eps)
        if cap_labels is None:
            raise ValueError("cap_labels (the cap index of every particle) must be given with cap_centres")
        lab = np.asarray(cap_labels, dtype=np.int64)
        if lab.shape != (n,) or lab.min() < 0 or lab.max() >= w.shape[0]:
            raise ValueError(f"cap_labels must be {n} integers in [0, {w.shape[0]})")
        caps = (w, 1.0 - 2.0 * cap_eps, lab)

    rec = default_record_times(t_max) if record_times is None else np.asarray(record_times, float)
    rec = np.sort(rec[(rec >= 0) & (rec <= t_max)])

    wall0 = _time.perf_counter()
    run = _Run(x, mass, beta, model, theta_c, delta, collapse)
    stats = dict(n_steps=0, n_rhs=0, n_restarts=0, n_collapses=0, max_norm_error=0.0)
    events: list[dict] = []
    traj: list[tuple] = []
    plateaus: list[dict] = []
    escape_time = float("nan")
    status, reason = "ok", ""

    # cap label of each current point (-1 once a point mixes particles of several caps)
    def point_caps():
        if caps is None:
            return None
        lab = caps[2]
        pc = np.full(run.mass.size, -2, dtype=np.int64)
        for i, p in enumerate(run.point_of):
            pc[p] = lab[i] if pc[p] in (-2, lab[i]) else -1
        return pc

    def cap_margin(xs, pc):
        ok = pc >= 0
        if not ok.any():
            return np.inf
        return float(np.min(np.einsum("ij,ij->i", xs[ok], caps[0][pc[ok]])) - caps[1])

    def sample(xs, t_global):
        cnt, lab = single_linkage_labels(xs, theta_c)
        ang = min_intercluster_angle(xs, lab) if cnt > 1 else float("nan")
        traj.append((t_global, energy(xs, run.mass, beta), cnt, ang, xs.shape[0]))

    def open_plateau(t_open):
        cm = np.bincount(run.labels, weights=run.mass, minlength=run.count) / run.n_total
        plateaus.append(dict(n_clusters=run.count, t_open=t_open, sum_mass_sq=float(cm @ cm),
                             snap=run.snapshot()))

    def centre_of(particles, xs, point_of):
        s = run.mass0[particles] @ xs[point_of[particles]]
        return s / np.linalg.norm(s)

    pc = point_caps()
    if caps is not None and cap_margin(run.x, pc) < 0:
        escape_time = 0.0
    rec_i = 0
    while rec_i < rec.size and rec[rec_i] <= 0.0:
        sample(run.x, rec[rec_i]); rec_i += 1
    open_plateau(0.0)

    def done(xs):
        if run.count != 1:
            return False
        g = xs @ xs.T
        return bool(g.min() > 1.0 - 0.5 * delta * delta)

    def new_solver(first_step=None):
        return PredictiveDOP853(run.fun, 0.0, run.x.ravel().copy(), t_max - run.t_off, rtol=rtol, atol=atol,
                      first_step=first_step)

    solver = new_solver()
    finished = done(run.x)
    while not finished:
        if stats["n_steps"] >= max_steps:
            status, reason = "failed", f"max_steps={max_steps} reached at t={run.t_off + solver.t:.6g}"
            break
        msg = solver.step()
        stats["n_steps"] += 1
        if solver.status == "failed":
            status, reason = "failed", f"step failed at t={run.t_off + solver.t:.6g}: {msg}"
            break
        m = run.mass.size
        y1 = solver.y.reshape(m, d)
        if not np.all(np.isfinite(y1)):
            status, reason = "failed", f"non-finite state at t={run.t_off + solver.t:.6g}"
            break
        norms = np.linalg.norm(y1, axis=1)
        stats["max_norm_error"] = max(stats["max_norm_error"], float(np.max(np.abs(norms - 1.0))))
        t0, t1 = solver.t_old, solver.t
        x1 = y1 / norms[:, None]
        dense = None

        def at(t):
            nonlocal dense
            if dense is None:
                dense = solver.dense_output()
            if t >= t1:
                return x1
            z = dense(t).reshape(m, d)
            return z / np.linalg.norm(z, axis=1, keepdims=True)

        xtol = 1e-13 * max(abs(t1), 1e-300)
        # --- escape from the doubled cap
        if caps is not None and np.isnan(escape_time):
            if cap_margin(x1, pc) < 0:
                te = brentq(lambda t: cap_margin(at(t), pc), t0, t1, xtol=xtol, rtol=1e-14) \
                    if cap_margin(at(t0), pc) > 0 else t0
                escape_time = run.t_off + te
        # --- merges
        old, old_count = run.labels, run.count
        run.update_clusters(x1 @ x1.T > run.cos_c)
        count1, labels1 = run.count, run.labels
        merged_any = False
        merges = []
        for c in range(count1 if labels1 is not old else 0):
            comps = np.unique(old[labels1 == c])
            if comps.size < 2:
                continue
            for ia in range(comps.size):
                for ib in range(ia + 1, comps.size):
                    A = np.flatnonzero(old == comps[ia]); B = np.flatnonzero(old == comps[ib])

                    def f(t, A=A, B=B):
                        z = at(t)
                        return float(np.max(z[A] @ z[B].T)) - run.cos_c
                    if f(t1) < 0:
                        continue
                    tm = brentq(f, t0, t1, xtol=xtol, rtol=1e-14) if f(t0) < 0 else t0
                    merges.append((tm, int(comps[ia]), int(comps[ib])))
        if merges:
            merged_any = True
            merges.sort()
            root = np.arange(old_count)  # union-find over the clusters at t0
            lab_p = old[run.point_of]  # cluster at t0 of every original particle
            count_now = old_count
            for tm, a, b in merges:
                ra, rb = _find(root, a), _find(root, b)
                if ra == rb:
                    continue
                xs = at(tm)
                pa = np.flatnonzero(_roots(root)[lab_p] == ra)
                pb = np.flatnonzero(_roots(root)[lab_p] == rb)
                ma, mb = run.mass0[pa].sum() / run.n_total, run.mass0[pb].sum() / run.n_total
                ca, cb = centre_of(pa, xs, run.point_of), centre_of(pb, xs, run.point_of)
                snap_x, snap_pt = plateaus[-1]["snap"]
                sa, sb = centre_of(pa, snap_x, snap_pt), centre_of(pb, snap_x, snap_pt)
                tg = run.t_off + tm
                events.append(dict(
                    event=len(events), time=tg, n_clusters_before=count_now,
                    n_clusters_after=count_now - 1, mass_a=max(ma, mb), mass_b=min(ma, mb),
                    angle_at_merge=_angle(ca, cb), gap_at_open=_angle(sa, sb),
                    t_open=plateaus[-1]["t_open"]))
                plateaus[-1]["t_close"] = tg
                root[ra] = rb
                count_now -= 1
                cm = np.bincount(_roots(root)[lab_p], weights=run.mass0) / run.n_total
                plateaus.append(dict(n_clusters=count_now, t_open=tg, sum_mass_sq=float(cm @ cm),
                                     snap=(xs.copy(), run.point_of.copy())))
        # --- trajectory samples inside (t0, t1]
        while rec_i < rec.size and rec[rec_i] - run.t_off <= t1:
            sample(at(max(rec[rec_i] - run.t_off, t0)), rec[rec_i]); rec_i += 1
        # --- collapse, stopping and restarts
        restart = merged_any
        run.x = x1
        if collapse:
            res = collapse_close_points(x1, run.mass, delta)
            if res is not None:
                run.x, run.mass, group = res
                run.point_of = group[run.point_of]
                run.relabel(run.x @ run.x.T > run.cos_c)
                stats["n_collapses"] += 1
                pc = point_caps()
                restart = True
        finished = done(run.x)
        if solver.status == "finished" or finished:
            run.t_off += t1
            break
        if solver.step_size is not None and solver.step_size < restart_ratio * t1:
            restart = True
        if restart:
            h = solver.step_size
            stats["n_rhs"] += solver.nfev
            run.t_off += t1
            run.x = run.x / np.linalg.norm(run.x, axis=1, keepdims=True)
            stats["n_restarts"] += 1
            solver = new_solver(first_step=min(h, 0.5 * (t_max - run.t_off)) if h else None)
    stats["n_rhs"] += solver.nfev
    t_end = min(run.t_off, t_max) if status == "ok" else run.t_off + (solver.t if solver else 0.0)
    censored = status == "ok" and not finished and run.count > 1
    # fill the remaining samples: after the end nothing moves (one point) or nothing is known
    while rec_i < rec.size:
        if finished:
            sample(run.x, rec[rec_i])
        else:
            traj.append((rec[rec_i], np.nan, -1, np.nan, run.mass.size))
        rec_i += 1
    stats["wall_seconds"] = _time.perf_counter() - wall0

    ev = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    tr = pd.DataFrame(traj, columns=list(TRAJECTORY_COLUMNS))
    lt_rows = []
    for i, p in enumerate(plateaus):
        closed = "t_close" in p
        if not closed and p["n_clusters"] == 1:
            continue  # the final single cluster is not a plateau that can close
        t_close = p.get("t_close", t_end)
        lt_rows.append(dict(plateau=i, n_clusters=p["n_clusters"], t_open=p["t_open"], t_close=t_close,
                            lifetime=t_close - p["t_open"], censored=not closed,
                            sum_mass_sq=p["sum_mass_sq"]))
    lt = pd.DataFrame(lt_rows, columns=list(LIFETIME_COLUMNS))
    esc_cens = caps is not None and np.isnan(escape_time)
    return SimulationResult(
        events=ev, trajectory=tr, lifetimes=lt, escape_time=escape_time, escape_censored=esc_cens,
        censored=censored, status=status, reason=reason, t_end=t_end,
        n_clusters_final=int(run.count), x_final=run.x, mass_final=run.mass, stats=stats)
