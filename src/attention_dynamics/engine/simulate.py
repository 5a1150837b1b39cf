"""Adaptive integration of SA/USA with exact collapse and local-time restarts (docs/science.md §5).

:func:`simulate` repeats four named steps until one point remains or ``t_max`` is reached:

1. **step** (:meth:`_Run.step`): one adaptive DOP853 step of :func:`dynamics.velocity` on the
   current weighted points, in *local* time (time since the last restart), by the stepper of the
   engine (:mod:`.stepper`: numpy, or numba with the field and step compiled) — or, once two
   points remain, a step of their exact flow (:mod:`.twopoint`: the gap's quadrature, one step
   to the join angle and one to the collapse, instead of ~4.5 per e-fold of the plateau). A non-finite
   field, a step-size underflow, ``max_steps`` step attempts (accepted and rejected) or
   ``max_wall_seconds`` end the run with status "failed" and the reason.
2. **detect events** (:meth:`_Run.detect_events`): from the step's dense output, by root
   finding, the escape of a particle from its doubled cap; (uniform data) the formation of
   clusters; every join of two single-linkage clusters at angle θ_c — a ``merge`` (both
   macroscopic), an ``absorption`` (a small group joins a macroscopic cluster) or a
   ``straggler`` event (two small groups) — and every ``split`` of a cluster; the trajectory
   samples.
3. **collapse** (:meth:`_Run.collapse`): every group of points closer than δ (chordal) becomes
   one point of the summed mass at the mass-weighted normalised mean. Coincident particles stay
   coincident under the flow, so this is exact up to O(δ²) in event times — *unless* a join of
   the cluster is near: single linkage reads a cluster's outermost point, which a collapse moves
   by up to δ/2, and that offset only dies out at the cluster's contraction rate λ. So a cluster
   whose next join (predicted by the reduced two-cluster ODE) is closer than ln(δ/10⁻¹²)/λ is
   not collapsed until then (:meth:`_Run.join_imminent`).
4. **restart** (:meth:`_Run.restart`): the solver restarts at local time 0 after a collapse,
   after an event, and whenever the step size has become small compared with the local time,
   so that O(1) steps stay representable at global times of 10²⁰ and beyond.

Once clusters have collapsed to points there are no fast modes left, and the adaptive
stepper crosses a plateau of length e^{cβ} in a number of steps that grows with β
and not with the plateau's length.

Macroscopic clusters
--------------------
A single-linkage cluster is *macroscopic* when it holds at least a fraction ``min_mass`` of
the mass; smaller ones (single particles or small groups that started away from their cap or
mixture component, or were left between clusters) are stragglers. First merge, cluster
counts, plateaus, lifetimes and the staircase concern macroscopic clusters only; absorptions
and straggler events stay in the events table with their kind.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from .clusters import (FORMATION_FRACTION, FORMATION_SAMPLES, FORMATION_TIGHT_ANGLE, components, first_time_on_grid,
                       gap_angle, is_macroscopic, single_linkage_labels, tight_mass_fraction)
from .dynamics import MODELS, energy, resolve_engine, velocity
from .stepper import new_stepper
from .twopoint import TwoPointFlow, flow_applies, gap_closing_time

__all__ = ["simulate", "SimulationResult", "EVENT_COLUMNS", "TRAJECTORY_COLUMNS", "LIFETIME_COLUMNS",
           "EVENT_KINDS", "default_record_times", "resolve_min_mass"]

EVENT_KINDS = ("merge", "absorption", "straggler", "split")

EVENT_COLUMNS = {
    "event": "event index within the run, 0-based, in time order",
    "kind": "merge (two macroscopic clusters join), absorption (a cluster below min_mass joins a macroscopic "
            "one), straggler (two clusters below min_mass join; the result may be macroscopic) or split (a "
            "single-linkage cluster comes apart: its closest points drift beyond θ_c)",
    "time": "event time t (two single-linkage clusters at angle θ_c join, or one comes apart)",
    "n_clusters_before": "macroscopic cluster count (mass ≥ min_mass) just before the event",
    "n_clusters_after": "macroscopic cluster count just after the event",
    "mass_a": "mass fraction of the heavier cluster taking part (split: of the heavier part)",
    "mass_b": "mass fraction of the lighter cluster taking part (split: of the lighter part)",
    "angle_at_merge": "angle (rad) between the centres of the two clusters (split: parts) at the event time",
    "gap_at_open": "angle (rad) between the centres of the two joining clusters' particles when the current "
                   "plateau opened (NaN for splits)",
    "t_open": "time the current plateau of macroscopic clusters opened (previous change of the count, or the "
              "start of the measurement)",
}
TRAJECTORY_COLUMNS = {
    "time": "sample time t (0, then log-spaced)",
    "energy": "normalised energy Ē = (1/n²) Σ m_i m_j e^{β(⟨x_i,x_j⟩−1)}",
    "n_clusters": "macroscopic cluster count: single-linkage clusters at angle θ_c holding ≥ min_mass of the mass",
    "n_components": "all single-linkage clusters at angle θ_c, stragglers included",
    "min_angle": "smallest angle (rad) between points of different macroscopic clusters (NaN for fewer than two)",
    "n_points": "number of distinct (collapsed) points carried by the integrator",
}
LIFETIME_COLUMNS = {
    "plateau": "plateau index within the run, 0-based",
    "n_clusters": "macroscopic cluster count during the plateau",
    "t_open": "time the plateau opened (previous change of the macroscopic count, or the start of the "
              "measurement: t = 0, or the formation time for uniform data)",
    "t_close": "time of the event that closed it (or end of run if censored)",
    "lifetime": "t_close − t_open",
    "censored": "True if the run ended before the plateau closed",
    "closed_by": "kind of the event that closed the plateau: merge (the staircase), straggler (small groups "
                 "joined into a new macroscopic cluster), split; empty if censored",
    "sum_mass_sq": "Σ_a μ_a² over the macroscopic clusters at the plateau's opening (predicted energy plateau "
                   "height)",
}

# collapse guard: a collapse may move a cluster's outermost point by δ/2; the offset dies out as e^{−λt}.
# A cluster is left uncollapsed while its next join is predicted within ln(δ/_GUARD_FLOOR)/λ.
_GUARD_FLOOR = 1e-12
_GUARD_NEIGHBOURS = 3  # clusters checked per candidate (the nearest ones: join times grow like e^{β(1−cos D)})


def _join_time_lower_bound(D: float, theta_c: float, beta: float, m_a: float, m_b: float, n: float,
                           model: str) -> float:
    """A lower bound on the two-cluster join time from gap D to θ_c (theory.twocluster), in closed form.

    |Ḋ| ≤ C e^{β(cos D − 1)} sin D with C = (m_a + m_b)/n (USA) or m_b/m_a + m_a/m_b (SA), so the
    time spent on the last stretch [D − w, D] alone is at least w e^{β(1 − cos(D − w))}/C (sin ≤ 1);
    w = min(D − θ_c, 1/(β sin D)) keeps the bound within a factor ~e sin D of the leading order.
    """
    C = (m_a + m_b) / n if model == "usa" else m_b / m_a + m_a / m_b
    w = min(D - theta_c, 1.0 / (beta * max(np.sin(D), 1e-300)))
    if not w > 0:
        return 0.0
    return float(w * np.exp(min(beta * (1.0 - np.cos(D - w)), 700.0)) / C)


@dataclass
class SimulationResult:
    """Outcome of :func:`simulate`.

    ``events``, ``trajectory`` and ``lifetimes`` are DataFrames (columns documented in
    ``EVENT_COLUMNS``, ``TRAJECTORY_COLUMNS``, ``LIFETIME_COLUMNS``). ``escape_time`` is the first
    exit of a particle from its doubled cap (NaN when no caps were given or no escape happened
    before the run ended; see ``escape_censored``). ``censored`` is True when ``t_max`` was reached
    while more than one macroscopic cluster remained (or, with ``wait_for_formation``, before the
    clusters formed). Cluster counts are macroscopic counts (mass ≥ ``min_mass``).
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
    n_clusters_initial: int = -1
    min_mass: float = float("nan")
    formation_time: float = float("nan")
    n_clusters_formation: int = -1
    formation_status: str = ""

    @property
    def merges(self) -> pd.DataFrame:
        """The events of kind ``merge`` (two macroscopic clusters join)."""
        return self.events[self.events["kind"] == "merge"]

    @property
    def first_merge_time(self) -> float:
        m = self.merges
        return float(m["time"].iloc[0]) if len(m) else float("nan")

    @property
    def merge_times(self) -> np.ndarray:
        return self.merges["time"].to_numpy(dtype=np.float64)  # float also when there is none


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------
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


def _caps_arg(cap_centres, cap_eps, cap_labels, n, d):
    """(centres, cos of the doubled cap radius 1 − 2ε, particle labels; −1 = not tracked) or None."""
    if cap_centres is None:
        return None
    w = np.asarray(cap_centres, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != d:
        raise ValueError(f"cap_centres must have shape (k, {d})")
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    cap_eps = _check_positive("cap_eps", cap_eps)
    if cap_labels is None:
        raise ValueError("cap_labels (the cap index of every particle) must be given with cap_centres")
    lab = np.asarray(cap_labels, dtype=np.int64)
    if lab.shape != (n,) or lab.min() < -1 or lab.max() >= w.shape[0] or lab.max() < 0:
        raise ValueError(f"cap_labels must be {n} integers in [0, {w.shape[0]}) (or -1: a particle whose exit "
                         "is not tracked), at least one tracked")
    return w, 1.0 - 2.0 * cap_eps, lab


def resolve_min_mass(min_mass, mass: np.ndarray, labels=None) -> float:
    """The macroscopic threshold as a mass fraction, checked.

    ``None`` (automatic): half the mass fraction of the smallest labelled group (cap or mixture
    component; ``labels`` ≥ 0) — every cap/component is macroscopic, a piece of one only if it
    holds more than half of it, single particles and small groups are not; without labels, half
    the smallest particle's mass fraction, i.e. every cluster is macroscopic.
    A given value must be in (0, 1) and, with labels, not above the largest group's fraction
    (else no cluster would be macroscopic at t = 0).
    """
    total = float(mass.sum())
    groups = None
    if labels is not None:
        lab = np.asarray(labels)
        groups = np.bincount(lab[lab >= 0], weights=mass[lab >= 0]) / total
        groups = groups[groups > 0]
    if min_mass is None:
        return 0.5 * float(groups.min() if groups is not None else mass.min() / total)
    try:
        v = float(min_mass)
    except (TypeError, ValueError):
        raise ValueError(f"min_mass must be a number in (0, 1), got {min_mass!r}") from None
    if not (0.0 < v < 1.0):
        raise ValueError(f"min_mass must be in (0, 1) (a fraction of the total mass), got {min_mass!r}")
    if groups is not None and not is_macroscopic(groups, v, 1.0).any():
        raise ValueError(f"min_mass={v!r} exceeds the largest cap/component mass fraction {groups.max():.6g}: "
                         "no cluster would be macroscopic")
    return v


def _find(root: np.ndarray, a: int) -> int:
    while root[a] != a:
        a = root[a]
    return int(a)


def default_record_times(t_max: float, per_decade: int = 8, t_first: float = 1e-2) -> np.ndarray:
    """t = 0, then ``per_decade`` log-spaced samples per decade from ``t_first`` to ``t_max``."""
    if t_max <= t_first:
        return np.array([0.0, t_max])
    hi, lo = np.log10(t_max), np.log10(t_first)
    k = max(int(np.ceil((hi - lo) * per_decade)), 1)
    t = np.logspace(lo, hi, k + 1)
    t[-1] = t_max
    return np.concatenate([[0.0], t])


class _Fault(Exception):
    """Raised before a field evaluation to end a run (wall-clock limit): from a solver step, its
    dense output or a solver's start (numpy engine: in the right-hand side; numba engine: before
    each compiled step or dense output, see :class:`.stepper.CompiledDOP853`)."""


# --------------------------------------------------------------------------------------
# one solver step
# --------------------------------------------------------------------------------------
class _Step:
    """An accepted step (t0, t1] in local time, with the positions at its end and its dense output."""

    def __init__(self, solver, m: int, d: int):
        self.solver, self.m, self.d = solver, m, d
        self.t0, self.t1 = solver.t_old, solver.t
        y1 = solver.y.reshape(m, d)
        self.norms = np.linalg.norm(y1, axis=1)
        self.x1 = y1 / self.norms[:, None]
        self._dense = None
        self.xtol = 1e-13 * max(abs(self.t1), 1e-300)

    def at(self, t: float) -> np.ndarray:
        """Normalised positions at local time t ∈ [t0, t1]."""
        if t >= self.t1:
            return self.x1
        if self._dense is None:
            self._dense = self.solver.dense_output()
        z = self._dense(t).reshape(self.m, self.d)
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    def at_many(self, ts: np.ndarray):
        """Normalised positions at several local times in [t0, t1]: one vectorised evaluation for the
        exact pair flow (:mod:`.twopoint`), one :meth:`at` each for a DOP853 step."""
        if not isinstance(self.solver, TwoPointFlow):
            return [self.at(t) for t in ts]
        z = self.solver.positions(self.solver.gap_at(np.minimum(ts, self.t1)))
        return z / np.linalg.norm(z, axis=-1, keepdims=True)

    def root(self, f, lo: float | None = None, hi: float | None = None) -> float:
        """The zero of f in [lo, hi] (default the step; f(hi) ≥ 0), or lo itself if f(lo) ≥ 0 already."""
        lo = self.t0 if lo is None else lo
        hi = self.t1 if hi is None else hi
        return brentq(f, lo, hi, xtol=self.xtol, rtol=1e-14) if f(lo) < 0 else lo


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------
class _Run:
    """State of one simulation; :func:`simulate` drives it through its four steps."""

    def __init__(self, x, mass, *, beta, model, t_max, theta_c, delta, collapse, rtol, atol, caps, rec,
                 max_steps, max_wall_seconds, restart_ratio, min_mass, wait_for_formation, engine, two_point=True):
        self.beta, self.model, self.t_max = beta, model, t_max
        self.two_point = two_point and collapse
        self.D_stop = 2.0 * np.arcsin(delta / 4.0)  # the exact pair flow ends at chord δ/2: then it collapses
        self.theta_c, self.cos_c = theta_c, np.cos(theta_c)
        self.delta, self.collapse_on = delta, collapse
        self.rtol, self.atol = rtol, atol
        self.engine = engine
        self.max_steps, self.max_wall, self.restart_ratio = max_steps, max_wall_seconds, restart_ratio
        self.caps, self.rec, self.rec_i = caps, rec, 0
        self.n_total = float(mass.sum())
        self.min_mass = min_mass
        self.threshold = min_mass * self.n_total
        self.mass0 = mass.copy()
        self.x, self.mass = x, mass
        self.d = x.shape[1]
        self.point_of = np.arange(x.shape[0])  # original particle -> current point
        self.t_off = 0.0
        self.wall0 = _time.perf_counter()
        self.stats = dict(n_steps=0, n_rejected=0, n_rhs=0, n_restarts=0, n_collapses=0, n_guarded=0,
                          n_pair_flows=0, max_norm_error=0.0, engine=engine)
        self.status, self.reason = "ok", ""
        self.events: list[dict] = []
        self.traj: list[tuple] = []
        self.plateaus: list[dict] = []
        self.escape_time = np.nan
        self.formation_time, self.n_clusters_formation = np.nan, -1
        self.formation_status = "not_formed" if wait_for_formation else ""
        self.n_clusters_initial = -1
        self.relabel(self.x @ self.x.T > self.cos_c)
        self.point_caps = self.caps_of_points()
        if caps is not None and self.cap_margin(self.x) < 0:
            self.escape_time = 0.0
        while self.rec_i < rec.size and rec[self.rec_i] <= 0.0:
            self.sample(self.x, rec[self.rec_i])
            self.rec_i += 1
        self.tracking = False  # are events and plateaus being recorded?
        if not wait_for_formation:
            self.start_tracking(0.0, self.x)
        elif tight_mass_fraction(self.x, theta_c, FORMATION_TIGHT_ANGLE, self.mass)[0] >= FORMATION_FRACTION:
            # the rule holds already: most particles are isolated at θ_c (too few for θ_c), and the rule
            # does not apply (reproductions.formation calls this "sparse"); measure from t = 0
            self.formation_status = "sparse"
            self.start_tracking(0.0, self.x)
        self.solver = None
        self.attempts_done = 0  # step attempts of the solvers already replaced
        self.new_solver()
        self.finished = self.status == "ok" and self.done()

    # ----- clusters of the current points ------------------------------------------------
    def relabel(self, adj):
        """Clusters (single linkage at θ_c) from the adjacency ``adj`` of the current points."""
        self.adj = adj
        self.count, self.labels = components(adj)
        self.cross = self.labels[:, None] != self.labels[None, :]
        self.imminent = set()  # clusters whose join was found imminent (valid until the next relabel)
        self.recheck = {}      # cluster -> global time before which its join cannot become imminent

    def update_clusters(self, adj) -> bool:
        """Clusters at a step end. Labels can only change if a pair of different clusters came
        within θ_c (join) or an edge was lost (possible split): otherwise reuse them."""
        if adj.shape == self.adj.shape and not (adj & self.cross).any() and not (self.adj & ~adj).any():
            self.adj = adj
            return False
        self.relabel(adj)
        return True

    def cluster_masses(self, labels, count) -> np.ndarray:
        return np.bincount(labels, weights=self.mass, minlength=count)

    def n_macroscopic(self, cluster_masses) -> int:
        return int(is_macroscopic(cluster_masses, self.min_mass, self.n_total).sum())

    def centre(self, particles, xs, point_of) -> np.ndarray:
        """Mass-weighted normalised mean of original particles, from point positions ``xs``."""
        s = self.mass0[particles] @ xs[point_of[particles]]
        return s / np.linalg.norm(s)

    def particles_of(self, points_mask) -> np.ndarray:
        return np.flatnonzero(points_mask[self.point_of])

    # ----- caps (escape) -----------------------------------------------------------------
    def caps_of_points(self):
        """Cap of each current point: its particles' common cap; −2 if none of its particles is
        tracked; −1 once it holds particles of several caps (no longer checked)."""
        if self.caps is None:
            return None
        lab = self.caps[2]
        pc = np.full(self.mass.size, -2, dtype=np.int64)
        for i, p in enumerate(self.point_of):
            if lab[i] >= 0:
                pc[p] = lab[i] if pc[p] in (-2, lab[i]) else -1
        return pc

    def cap_margin(self, xs) -> float:
        """min over tracked points of ⟨x, w_q⟩ − (1 − 2ε): negative once a point has left its doubled cap."""
        pc = self.point_caps
        ok = pc >= 0
        if not ok.any():
            return np.inf
        return float(np.min(np.einsum("ij,ij->i", xs[ok], self.caps[0][pc[ok]])) - self.caps[1])

    # ----- trajectory and plateaus -------------------------------------------------------
    def sample(self, xs, t_global, clusters=None):
        """One trajectory row at global time ``t_global`` (positions ``xs``); ``clusters`` = (count,
        labels) when they are known to be those of ``xs`` (a step without a join or split)."""
        cnt, lab = single_linkage_labels(xs, self.theta_c) if clusters is None else clusters
        macro = is_macroscopic(self.cluster_masses(lab, cnt), self.min_mass, self.n_total)
        n_macro = int(macro.sum())
        ang = float("nan")
        if n_macro > 1:
            keep = macro[lab]
            g = xs[keep] @ xs[keep].T
            diff = lab[keep][:, None] != lab[keep][None, :]
            ang = float(np.arccos(np.clip(g[diff].max(), -1.0, 1.0)))
        self.traj.append((t_global, energy(xs, self.mass, self.beta), n_macro, cnt, ang, xs.shape[0]))

    def open_plateau(self, t_open, xs, cluster_masses):
        macro = cluster_masses[is_macroscopic(cluster_masses, self.min_mass, self.n_total)] / self.n_total
        self.plateaus.append(dict(n_clusters=int(macro.size), t_open=t_open, sum_mass_sq=float(macro @ macro),
                                  snap=(xs.copy(), self.point_of.copy())))

    def close_plateau(self, t_close, kind):
        self.plateaus[-1].update(t_close=t_close, closed_by=kind)

    def start_tracking(self, t_local, xs, formation=False):
        """Begin recording events and plateaus at local time ``t_local`` (positions ``xs``)."""
        cnt, lab = components(xs @ xs.T > self.cos_c)
        cm = self.cluster_masses(lab, cnt)
        self.tracking = True
        self.n_clusters_initial = self.n_macroscopic(cm)
        if formation:
            self.formation_time = self.t_off + t_local
            self.n_clusters_formation = self.n_clusters_initial
            self.formation_status = "ok"
        self.open_plateau(self.t_off + t_local, xs, cm)
        return lab, cnt

    # ----- 1. step -----------------------------------------------------------------------
    def check_wall(self):
        """Raise :class:`_Fault` once the run has used ``max_wall_seconds``."""
        if _time.perf_counter() - self.wall0 > self.max_wall:
            raise _Fault(f"max_wall_seconds={self.max_wall:g} exceeded")

    def fun(self, t, y):
        # Evaluate the field at x/|x|: the solver state then has no tendency to leave the
        # sphere (the projected field of an off-sphere x is not tangent, and on long
        # near-antipodal plateaus |x| − 1 would grow exponentially).
        self.check_wall()
        x = y.reshape(self.mass.size, -1)
        x = x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
        return velocity(x, self.mass, self.beta, self.model, exact=not self.collapse_on).ravel()

    def fail(self, why: str, detail: str = ""):
        t = self.t_off + (self.solver.t if self.solver is not None else 0.0)
        self.status, self.reason = "failed", f"{why} at t={t:.6g}" + (f": {detail}" if detail else "")
        return None

    def count_solver(self):
        """Add the counters of the current solver to the run's (before it is replaced, and at the end)."""
        s = self.solver
        if s is None:
            return
        self.attempts_done += s.n_attempts
        self.stats["n_rhs"] += s.nfev
        self.stats["n_steps"] += s.n_accepted
        self.stats["n_rejected"] += s.n_rejected

    def new_solver(self, first_step=None):
        self.count_solver()
        self.solver = None
        if self.two_point and flow_applies(self.x, self.D_stop):
            # two points left: their exact flow, one step to θ_c (or t_max), after a restart one to the collapse
            self.solver = TwoPointFlow(self.x.ravel(), self.mass, self.beta, self.model, self.t_max - self.t_off,
                                       self.D_stop, D_pause=self.theta_c * (1.0 + 1e-9), check=self.check_wall)
            self.stats["n_pair_flows"] = 1  # the pair's flow, in one or two stretches (to θ_c, to the collapse)
            return self.solver
        try:
            solver = new_stepper(self.engine, self.fun, self.mass, self.beta, self.model, not self.collapse_on, 0.0,
                                 self.x.ravel().copy(), self.t_max - self.t_off, rtol=self.rtol, atol=self.atol,
                                 first_step=first_step, max_attempts=max(self.max_steps - self.attempts_done, 0),
                                 check=self.check_wall)
        except _Fault as exc:
            return self.fail(str(exc))
        self.solver = solver
        if not np.all(np.isfinite(solver.f)):
            return self.fail("non-finite field")
        return solver

    def attempts(self) -> int:
        return self.attempts_done + (self.solver.n_attempts if self.solver is not None else 0)

    def step(self) -> _Step | None:
        """One accepted solver step; None (and status failed) on any fault."""
        if self.attempts() >= self.max_steps:
            return self.fail(f"max_steps={self.max_steps} reached")
        msg = self.solver.step()
        if self.solver.status == "failed":
            if self.attempts() >= self.max_steps:
                return self.fail(f"max_steps={self.max_steps} reached")
            return self.fail("step failed", msg)
        y1 = self.solver.y
        if not np.all(np.isfinite(y1)):
            return self.fail("non-finite state")
        st = _Step(self.solver, self.mass.size, self.d)
        self.stats["max_norm_error"] = max(self.stats["max_norm_error"], float(np.max(np.abs(st.norms - 1.0))))
        return st

    # ----- 2. detect events --------------------------------------------------------------
    def detect_events(self, st: _Step) -> bool:
        """Escape, formation, joins and splits inside the step, and trajectory samples.
        Returns True if an event (join or split) was recorded."""
        self.detect_escape(st)
        old_labels, old_count = self.labels, self.count
        changed = self.update_clusters(st.x1 @ st.x1.T > self.cos_c)
        n_events = len(self.events)
        if not self.tracking:
            t_f = self.detect_formation(st)
            if t_f is not None:
                old_labels, old_count = self.start_tracking(t_f, st.at(t_f), formation=True)
                self.scan(st, t_f, old_labels, old_count)
        elif changed:
            self.scan(st, st.t0, old_labels, old_count)
        # without a change of the θ_c-components over the step, every sample inside it has the same ones
        self.sample_step(st, None if changed else (self.count, self.labels))
        return len(self.events) > n_events

    def detect_escape(self, st: _Step):
        if self.caps is None or not np.isnan(self.escape_time) or self.cap_margin(st.x1) >= 0:
            return
        te = st.root(lambda t: -self.cap_margin(st.at(t)))
        self.escape_time = self.t_off + te

    def detect_formation(self, st: _Step) -> float | None:
        """Local time at which the formation rule first holds inside the step (None if not yet):
        a fraction FORMATION_FRACTION of the mass in θ_c-clusters of diameter < FORMATION_TIGHT_ANGLE
        (checked FORMATION_SAMPLES times per step: the rule is not monotone in time)."""
        def formed(t):
            return tight_mass_fraction(st.at(t), self.theta_c, FORMATION_TIGHT_ANGLE, self.mass)[0] \
                >= FORMATION_FRACTION
        return first_time_on_grid(formed, st.t0, st.t1, FORMATION_SAMPLES, 1e-10)

    def scan(self, st: _Step, ta: float, labels_a, count_a):
        """Record the joins and splits in (ta, t1], given the clusters ``labels_a`` at ta."""
        labels_b, count_b = self.labels, self.count
        parts = [np.unique(labels_b[labels_a == c]) for c in range(count_a)]
        split = [c for c in range(count_a) if parts[c].size > 1]
        if not split:
            self.record_joins(st, ta, st.t1, labels_a, count_a, labels_b, count_b)
            return

        def disconnected(t):
            xs = st.at(t)
            return any(components(xs[labels_a == c] @ xs[labels_a == c].T > self.cos_c)[0] > 1 for c in split)
        lo, hi = ta, st.t1
        while hi - lo > st.xtol:
            mid = 0.5 * (lo + hi)
            if disconnected(mid):
                hi = mid
            else:
                lo = mid
        x_lo, x_hi = st.at(lo), st.at(hi)
        count_lo, labels_lo = components(x_lo @ x_lo.T > self.cos_c)
        self.record_joins(st, ta, lo, labels_a, count_a, labels_lo, count_lo)
        count_hi, labels_hi = components(x_hi @ x_hi.T > self.cos_c)
        self.record_splits(st, hi, labels_lo, count_lo, labels_hi, count_hi)
        if hi < st.t1:
            self.scan(st, hi, labels_hi, count_hi)

    def record_joins(self, st: _Step, ta, tb, labels_a, count_a, labels_b, count_b):
        """Joins in (ta, tb]: pairs of clusters at ta that are within θ_c at tb, located by root
        finding on their closest points and taken in time order (union-find over the clusters at ta)."""
        joins = []
        for c in range(count_b):
            comps = np.unique(labels_a[labels_b == c])
            for ia in range(comps.size):
                for ib in range(ia + 1, comps.size):
                    A, B = np.flatnonzero(labels_a == comps[ia]), np.flatnonzero(labels_a == comps[ib])

                    def f(t, A=A, B=B):
                        z = st.at(t)
                        return float(np.max(z[A] @ z[B].T)) - self.cos_c
                    if f(tb) < 0:
                        continue  # joined only through a third cluster
                    joins.append((st.root(f, ta, tb), int(comps[ia]), int(comps[ib])))
        if not joins:
            return
        joins.sort()
        root = np.arange(count_a)
        cm = self.cluster_masses(labels_a, count_a)  # masses of the union-find roots
        for tm, a, b in joins:
            ra, rb = _find(root, a), _find(root, b)
            if ra == rb:
                continue
            xs = st.at(tm)
            roots = np.array([_find(root, c) for c in range(count_a)])
            pa = self.particles_of(roots[labels_a] == ra)
            pb = self.particles_of(roots[labels_a] == rb)
            before = self.n_macroscopic(cm[roots == np.arange(count_a)])
            big_a, big_b = is_macroscopic(np.array([cm[ra], cm[rb]]), self.min_mass, self.n_total)
            kind = "merge" if big_a and big_b else ("absorption" if big_a or big_b else "straggler")
            root[ra] = rb
            cm[rb] += cm[ra]
            after = self.n_macroscopic(cm[[c for c in range(count_a) if _find(root, c) == c]])
            snap_x, snap_pt = self.plateaus[-1]["snap"]
            ma, mb = self.mass0[pa].sum() / self.n_total, self.mass0[pb].sum() / self.n_total
            self.record(dict(kind=kind, time=self.t_off + tm, n_clusters_before=before, n_clusters_after=after,
                             mass_a=max(ma, mb), mass_b=min(ma, mb),
                             angle_at_merge=gap_angle(self.centre(pa, xs, self.point_of),
                                                   self.centre(pb, xs, self.point_of)),
                             gap_at_open=gap_angle(self.centre(pa, snap_x, snap_pt), self.centre(pb, snap_x, snap_pt))),
                        xs, lambda: np.array([cm[c] for c in range(count_a) if _find(root, c) == c]))

    def record_splits(self, st: _Step, t, labels_lo, count_lo, labels_hi, count_hi):
        """Clusters at ``t``⁻ (``labels_lo``) that come apart at ``t`` (``labels_hi``)."""
        xs = st.at(t)
        cm_lo = self.cluster_masses(labels_lo, count_lo)
        cm_hi = self.cluster_masses(labels_hi, count_hi)
        now = {("lo", c): cm_lo[c] for c in range(count_lo)}  # the partition, one split at a time
        for c in range(count_lo):
            parts = np.unique(labels_hi[labels_lo == c])
            if parts.size < 2:
                continue
            order = parts[np.argsort(-cm_hi[parts], kind="stable")]
            a, b = order[0], order[1]
            pa, pb = self.particles_of(labels_hi == a), self.particles_of(labels_hi == b)
            before = self.n_macroscopic(np.array(list(now.values())))
            del now[("lo", c)]
            now.update({("hi", p): cm_hi[p] for p in parts})
            after = self.n_macroscopic(np.array(list(now.values())))
            self.record(dict(kind="split", time=self.t_off + t, n_clusters_before=before, n_clusters_after=after,
                             mass_a=float(cm_hi[a] / self.n_total), mass_b=float(cm_hi[b] / self.n_total),
                             angle_at_merge=gap_angle(self.centre(pa, xs, self.point_of),
                                                   self.centre(pb, xs, self.point_of)),
                             gap_at_open=float("nan")),
                        xs, lambda cur=tuple(now.values()): np.array(cur))

    def record(self, row: dict, xs, cluster_masses):
        """Append an event; if it changed the macroscopic count, close the plateau and open the next."""
        row = dict(event=len(self.events), **row, t_open=self.plateaus[-1]["t_open"])
        self.events.append(row)
        if row["n_clusters_after"] != row["n_clusters_before"]:
            self.close_plateau(row["time"], row["kind"])
            self.open_plateau(row["time"], xs, cluster_masses())

    def sample_step(self, st: _Step, clusters=None):
        """Trajectory samples inside (t0, t1]."""
        rec, i0 = self.rec, self.rec_i
        while self.rec_i < rec.size and rec[self.rec_i] - self.t_off <= st.t1:
            self.rec_i += 1
        if self.rec_i > i0:
            for t_global, xs in zip(rec[i0:self.rec_i], st.at_many(np.maximum(rec[i0:self.rec_i] - self.t_off, st.t0))):
                self.sample(xs, t_global, clusters)

    # ----- 3. collapse -------------------------------------------------------------------
    def join_imminent(self, c: int, g: np.ndarray) -> bool:
        """Is a join of cluster c with another cluster predicted sooner than the guard time
        ln(δ/10⁻¹²)/λ_c, λ_c the contraction rate of c (USA: m_c/n; SA: m_c/Σ_b m_b e^{β(cos D_cb − 1)})?
        The prediction is the reduced two-cluster ODE (theory.twocluster) from the closest-point
        angle D_cb, which is below the centres' angle, so the prediction errs early (safe side).

        Cheap before exact: a "yes" stays valid until the clusters change (gaps only close while
        the labels stay the same), and a pair whose join time is provably later than the guard time
        (:func:`_join_time_lower_bound`) needs no quadrature."""
        if self.count < 2:
            return False
        if c in self.imminent:
            return True
        now = self.t_off + self.solver.t
        if self.recheck.get(c, -np.inf) > now:
            return False
        in_c = self.labels == c
        best = np.full(self.count, -1.0)
        np.maximum.at(best, self.labels, g[in_c].max(axis=0))
        best[c] = -np.inf
        cm = self.cluster_masses(self.labels, self.count)
        gap = np.arccos(np.clip(best, -1.0, 1.0))
        if self.model == "usa":
            rate = cm[c] / self.n_total
        else:
            kern = np.where(np.isfinite(best), np.exp(self.beta * (np.clip(best, -1.0, 1.0) - 1.0)), 0.0)
            rate = cm[c] / (cm[c] + float(kern @ cm))
        guard = np.log(self.delta / _GUARD_FLOOR) / rate
        slack = np.inf  # smallest (predicted join time − guard time) over the neighbours checked
        for b in np.argsort(gap)[:_GUARD_NEIGHBOURS]:
            if b == c or not np.isfinite(best[b]):
                continue
            if gap[b] <= self.theta_c * (1 + 1e-12):
                self.imminent.add(c)
                return True
            if gap[b] >= np.pi - 1e-9:
                continue  # antipodal: no join on any horizon the guard cares about
            args = (float(gap[b]), self.theta_c, self.beta, float(cm[c]), float(cm[b]), self.n_total, self.model)
            t_join = _join_time_lower_bound(*args)
            if t_join < guard:
                t_join = gap_closing_time(*args)
            if t_join < guard:
                self.imminent.add(c)
                return True
            slack = min(slack, t_join - guard)
        # the predicted join comes nearer at most as fast as time passes (the gaps follow the reduced
        # ODE): half the slack is a safe time before the verdict can change
        self.recheck[c] = now + 0.5 * slack
        return False

    def collapse(self) -> bool:
        """Replace every group of points within δ by one weighted point, except in clusters with an
        imminent join. Returns True if anything was collapsed."""
        m = self.mass.size
        if not self.collapse_on or m < 2:
            return False
        g = self.x @ self.x.T
        np.fill_diagonal(g, -2.0)
        close = g > 1.0 - 0.5 * self.delta * self.delta
        if not close.any():
            return False
        for c in np.unique(self.labels[close.any(axis=1)]):
            if self.join_imminent(int(c), g):
                inside = self.labels == c
                close[inside, :] = False
                close[:, inside] = False
                self.stats["n_guarded"] += 1
        if not close.any():
            return False
        count, group = components(close)
        sums = np.zeros((count, self.d))
        np.add.at(sums, group, self.mass[:, None] * self.x)
        self.mass = np.bincount(group, weights=self.mass, minlength=count)
        self.x = sums / np.linalg.norm(sums, axis=1, keepdims=True)
        self.point_of = group[self.point_of]
        self.relabel(self.x @ self.x.T > self.cos_c)
        self.point_caps = self.caps_of_points()
        self.stats["n_collapses"] += 1
        return True

    # ----- 4. restart --------------------------------------------------------------------
    def done(self) -> bool:
        """One cluster, all of whose points lie within δ of each other."""
        if self.count != 1:
            return False
        return bool((self.x @ self.x.T).min() > 1.0 - 0.5 * self.delta * self.delta)

    def restart(self, st: _Step, force: bool):
        """Move the time origin to the step's end and start a new solver there, if needed. The new
        solver's first step is the one the controller proposed next (not the last step taken: on a
        closing plateau that one is already too large, and every restart would cost a rejection)."""
        self.finished = self.done()
        if self.solver.status == "finished" or self.finished:
            self.t_off += st.t1
            return
        h = self.solver.step_size
        # after a step of the pair flow always: the join is then located in a step that starts at local
        # time 0 near θ_c, not at the end of a plateau of length e^{β(1−cos D)} (root in local time, §5)
        force = force or isinstance(self.solver, TwoPointFlow)
        if not force and not (h is not None and h < self.restart_ratio * st.t1):
            return
        h_next = self.solver.next_step
        self.t_off += st.t1
        self.x = self.x / np.linalg.norm(self.x, axis=1, keepdims=True)
        self.stats["n_restarts"] += 1
        self.new_solver(first_step=min(h_next, 0.5 * (self.t_max - self.t_off)) if h_next else None)

    @property
    def running(self) -> bool:
        return self.status == "ok" and not self.finished and self.solver is not None \
            and self.solver.status == "running"

    # ----- result ------------------------------------------------------------------------
    def result(self) -> SimulationResult:
        self.count_solver()
        if self.status == "ok":
            t_end = min(self.t_off, self.t_max)
        else:
            t_end = self.t_off + (self.solver.t if self.solver is not None else 0.0)
        n_final = self.n_macroscopic(self.cluster_masses(self.labels, self.count))
        censored = self.status == "ok" and not self.finished and (n_final > 1 or not self.tracking)
        # the remaining samples: after the end nothing moves (one point: the sample of the final
        # state, computed once) or nothing is known
        final = None
        while self.rec_i < self.rec.size:
            if self.finished and final is None:
                self.sample(self.x, self.rec[self.rec_i])
                final = self.traj[-1][1:]
            elif self.finished:
                self.traj.append((self.rec[self.rec_i], *final))
            else:
                self.traj.append((self.rec[self.rec_i], np.nan, -1, -1, np.nan, self.mass.size))
            self.rec_i += 1
        self.stats["wall_seconds"] = _time.perf_counter() - self.wall0
        lt_rows = []
        for i, p in enumerate(self.plateaus):
            closed = "t_close" in p
            if not closed and p["n_clusters"] <= 1:
                continue  # one macroscopic cluster left: nothing to close
            t_close = p.get("t_close", t_end)
            lt_rows.append(dict(plateau=i, n_clusters=p["n_clusters"], t_open=p["t_open"], t_close=t_close,
                                lifetime=t_close - p["t_open"], censored=not closed,
                                closed_by=p.get("closed_by", ""), sum_mass_sq=p["sum_mass_sq"]))
        return SimulationResult(
            events=pd.DataFrame(self.events, columns=list(EVENT_COLUMNS)),
            trajectory=pd.DataFrame(self.traj, columns=list(TRAJECTORY_COLUMNS)),
            lifetimes=pd.DataFrame(lt_rows, columns=list(LIFETIME_COLUMNS)),
            escape_time=self.escape_time, escape_censored=self.caps is not None and np.isnan(self.escape_time),
            censored=censored, status=self.status, reason=self.reason, t_end=t_end,
            n_clusters_final=n_final if self.tracking else -1, x_final=self.x, mass_final=self.mass,
            stats=self.stats, n_clusters_initial=self.n_clusters_initial, min_mass=self.min_mass,
            formation_time=self.formation_time, n_clusters_formation=self.n_clusters_formation,
            formation_status=self.formation_status)


def simulate(x0, *, beta: float, model: str = "usa", t_max: float = 1e20, masses=None,
             collapse: bool = True, delta: float = 1e-5, theta_c: float = 0.1,
             rtol: float = 1e-10, atol: float = 1e-12, cap_centres=None, cap_eps: float | None = None,
             cap_labels=None, record_times=None, max_steps: int = 200_000,
             restart_ratio: float = 1e-4, min_mass: float | None = None, wait_for_formation: bool = False,
             max_wall_seconds: float = 3600.0, engine: str = "auto", two_point: bool = True) -> SimulationResult:
    """Integrate SA or USA from ``x0`` until one point remains or ``t_max`` is reached.

    Parameters
    ----------
    x0 : (n, d) array of unit vectors; ``masses`` : optional (n,) positive weights.
    beta : inverse temperature β > 0.  model : ``"sa"`` or ``"usa"`` (GKPR24 time).
    t_max : horizon (may be 1e20 or more).
    collapse : merge points closer than ``delta`` (chordal) into weighted points; with
        ``collapse=False`` the full system is integrated (validation mode).
    delta : collapse radius. Event times do not depend on it beyond O(δ²) (measured ≤ 1e-10
        relative at the default 1e-5 against ``collapse=False``), including joins while clusters
        still contract: a cluster whose next join is near is not collapsed (module docstring).
    rtol, atol : DOP853 tolerances; at the defaults merge times agree with a rtol = 1e-13,
        δ = 1e-6 reference to ≤ 6e-10 relative (n = 64, k = 4, β ≤ 40, SA and USA).
    theta_c : single-linkage angle (rad) defining clusters and their joins.
    min_mass : a cluster is macroscopic when it holds at least this fraction of the mass
        (:func:`resolve_min_mass`; default: half the smallest cap's mass fraction when
        ``cap_labels`` are given, else every cluster is macroscopic).
    wait_for_formation : record events and plateaus only from the formation time on (the rule of
        :func:`attention_dynamics.reproductions.formation`: a fraction 0.9 of the mass in θ_c-clusters
        of diameter < 0.25 rad); for uniform initial data, whose clusters emerge. ``formation_status``
        says "ok", "not_formed" (not before the run ended) or "sparse" (the rule holds at t = 0: most
        particles are isolated at θ_c, the rule does not apply, and events are recorded from t = 0).
    cap_centres, cap_eps, cap_labels : caps S_q(ε) the particles start in; the escape
        time is the first exit of a particle from its doubled cap S_q(2ε). Particles with label
        −1 are not tracked.
    record_times : global times at which the trajectory is sampled (default: 0 and 8
        per decade from 1e-2 to t_max).
    max_steps : most step attempts (accepted and rejected, over all restarts); max_wall_seconds :
        most wall-clock seconds. A run that exceeds either, or meets a non-finite field or a
        step-size underflow, ends with status "failed" and the reason.
    engine : ``"numpy"`` (scipy's DOP853 calling the numpy field), ``"numba"`` (the same
        stepper, controller, fault checks and field compiled, :mod:`.kernels`; equal merge times
        to ~1e-13 relative) or ``"auto"`` (numba when installed). See :mod:`.stepper`.
    two_point : once two points remain (collapse on), follow their exact flow
        (:mod:`.twopoint`: the gap's quadrature; one step to θ_c, one to the collapse) instead of
        integrating them; ``False`` integrates them with the DOP853 stepper (validation).

    ``stats`` (the solver counters of the run): ``n_steps`` accepted steps, ``n_rejected``
    rejected attempts (``n_steps + n_rejected ≤ max_steps``), ``n_rhs`` field evaluations,
    ``n_restarts``, ``n_collapses``, ``n_guarded``, ``n_pair_flows`` (1 if the last two
    points followed their exact flow; each of its one or two stretches counts as a step),
    ``max_norm_error``, ``wall_seconds`` and ``engine`` (the one that ran: numpy or numba).
    """
    beta = _check_positive("beta", beta)
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    t_max = _check_positive("t_max", t_max)
    theta_c = _check_positive("theta_c", theta_c)
    delta = _check_positive("delta", delta)
    max_wall_seconds = _check_positive("max_wall_seconds", max_wall_seconds, allow_inf=True)
    if int(max_steps) != max_steps or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    if not theta_c < np.pi:
        raise ValueError(f"theta_c must be in (0, π), got {theta_c!r}")
    if not delta < 2 * np.sin(theta_c / 2):
        raise ValueError(f"delta (chordal) must be smaller than the chord of theta_c; got delta={delta!r}")
    engine = resolve_engine(engine)
    x, mass = _as_points(x0, masses)
    caps = _caps_arg(cap_centres, cap_eps, cap_labels, *x.shape)
    min_mass = resolve_min_mass(min_mass, mass, None if caps is None else caps[2])
    rec = default_record_times(t_max) if record_times is None else np.asarray(record_times, float)
    rec = np.sort(rec[(rec >= 0) & (rec <= t_max)])

    run = _Run(x, mass, beta=beta, model=model, t_max=t_max, theta_c=theta_c, delta=delta, collapse=collapse,
               rtol=rtol, atol=atol, caps=caps, rec=rec, max_steps=int(max_steps),
               max_wall_seconds=max_wall_seconds, restart_ratio=restart_ratio, min_mass=min_mass,
               wait_for_formation=bool(wait_for_formation), engine=engine, two_point=bool(two_point))
    while run.running:
        try:
            st = run.step()                           # 1. one adaptive step
            if st is None:
                break
            had_event = run.detect_events(st)         # 2. escape, formation, joins, splits, samples
            run.x = st.x1
            collapsed = run.collapse()                # 3. collapse points within δ
            run.restart(st, had_event or collapsed)   # 4. restart in local time
        except _Fault as exc:  # raised by the field evaluation (wall-clock limit), wherever it happens
            run.fail(str(exc))
    return run.result()
