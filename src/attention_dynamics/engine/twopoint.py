"""The exact flow of two weighted points, with the stepper interface (docs/science.md §5).

Once every cluster but one pair has collapsed — the last plateau of every staircase, the
whole measurement of a k = 2 sweep — the system is two points x_a, x_b of masses m_a, m_b.
Each moves along its tangent towards the other, so both stay on the great circle through
them, and the motion is the gap D(t) alone (:mod:`attention_dynamics.theory.twocluster`):

    Ḋ = −(s_a + s_b),   t(D) = ∫_D^{D0} du / |Ḋ(u)|,   θ_a(D) = ∫_D^{D0} σ_a(u) du,

with σ_a = s_a/(s_a + s_b) the share of the closing made by a (USA: m_b/(m_a + m_b)),
θ_a the angle a has travelled, θ_b = D0 − D − θ_a. :class:`TwoPointFlow` evaluates these
integrals by composite 20-point Gauss–Legendre quadrature on panels of D small enough that
the integrand, e^{β(1−cos u)}/sin u-like, changes by at most a factor ~e in each (width
≤ 1/(1 + 2β sin D) and ≤ half the distance to 0 and π, where it is singular): the error per
panel is then far below rounding. The time stays scaled by e^{−β(1−cos D0)} inside, so that
plateaus beyond 10³⁰⁸ do not overflow.

A DOP853 stepper crosses such a plateau in ~4.5 steps per e-fold of the gap's speed — about
β(1 − cos D0) e-folds, 186 steps for the last merge of the benchmark staircase at β = 40 —
and this flow in two (to θ_c; after a restart of the local time, to the collapse).
Its dense output is the exact position at any local time (D(t) by safeguarded Newton on t(D)),
so escape, join and trajectory samples are found by the engine's root finding as for any step.
"""
from __future__ import annotations

import math

import numpy as np

from ..theory.twocluster import two_cluster_scaled_inverse_rate, two_cluster_share
from .clusters import gap_angle

__all__ = ["TwoPointFlow", "flow_applies", "gap_closing_time", "gap_angle"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)
_ANTIPODAL_MARGIN = 1e-6  # nearer to π than this the gap hardly moves: the DOP853 stepper takes it


def flow_applies(x: np.ndarray, D_stop: float) -> bool:
    """Two points whose gap is between the stop angle and (almost) π."""
    if x.shape[0] != 2:
        return False
    D0 = gap_angle(x[0], x[1])
    return D_stop < D0 < np.pi - _ANTIPODAL_MARGIN


def _panels(D0: float, D_stop: float, beta: float) -> np.ndarray:
    """Panel edges from D0 down to D_stop (decreasing), each narrow enough for 20-point Gauss–Legendre."""
    edges = [D0]
    D = D0
    while D > D_stop:
        h = min(1.0 / (1.0 + 2.0 * beta * math.sin(D)), 0.5 * D, 0.5 * (math.pi - D), 0.5)
        D = max(D - h, D_stop)
        if D - D_stop < 1e-3 * h:
            D = D_stop
        edges.append(D)
    return np.array(edges)


def _gauss(f, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """∫_lo^hi f for arrays of intervals, by 20-point Gauss–Legendre on each."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    half = 0.5 * (hi - lo)
    u = (0.5 * (hi + lo))[..., None] + half[..., None] * _NODES
    return half * (f(u) @ _WEIGHTS)


def gap_closing_time(D0: float, D1: float, beta: float, m_a: float, m_b: float, n: float, model: str) -> float:
    """Time for the gap of two point clusters to close from D0 to D1 < D0 (the quadrature of
    :func:`attention_dynamics.theory.twocluster.two_cluster_merge_time`, by the composite
    Gauss–Legendre rule of this module: one vectorised evaluation instead of QUADPACK's scalar calls)."""
    edges = _panels(D0, D1, beta)
    tau = float(np.sum(_gauss(lambda u: two_cluster_scaled_inverse_rate(u, D0, beta, m_a, m_b, n, model),
                              edges[1:], edges[:-1])))
    with np.errstate(over="ignore"):
        return tau * float(np.exp(beta * (1.0 - np.cos(D0))))


class TwoPointFlow:
    """The exact two-point flow from y0 (two rows of length d, flattened), as a one-step stepper.

    ``step()`` goes in one step to the first of ``t_bound`` (status "finished") and the local time
    at which the gap reaches ``D_stop`` (status stays "running": the engine collapses the pair and
    restarts);
    with ``D_pause`` (D_stop < D_pause < D0, the join angle θ_c(1 + 10⁻⁹)) the first step ends
    where the gap reaches it: the clusters are the same all along that step (cheap samples). The
    engine restarts its local time there and follows the pair with a new flow, so the join is
    located in a step of O(1) local length: its time to ~1e-13 of the time since the restart,
    not of the whole plateau (the gap's angle at the join time is ill-conditioned in global time).
    Same attributes as the DOP853 steppers (:mod:`.stepper`); ``nfev`` is 0 (no field
    evaluations), ``n_accepted`` 1 after the step.
    """

    RUNNING, FINISHED, FAILED = "running", "finished", "failed"

    def __init__(self, y0, mass, beta: float, model: str, t_bound: float, D_stop: float, D_pause=None, check=None):
        x = np.asarray(y0, dtype=np.float64).reshape(2, -1)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        self._x0 = x
        self.d = x.shape[1]
        self.beta, self.model = float(beta), model
        self.m_a, self.m_b = (float(v) for v in mass)
        self.n_total = self.m_a + self.m_b
        self.D0 = gap_angle(x[0], x[1])
        if not D_stop < self.D0 < np.pi - _ANTIPODAL_MARGIN:
            raise ValueError(f"the two-point flow needs D_stop < D0 < π − {_ANTIPODAL_MARGIN:g}; got D0={self.D0!r}")
        self.D_stop = float(D_stop)
        self._check = check
        # unit tangents at a towards b and at b towards a (the great circle through both)
        ta = x[1] - np.dot(x[0], x[1]) * x[0]
        tb = x[0] - np.dot(x[0], x[1]) * x[1]
        self._ua, self._ub = ta / np.linalg.norm(ta), tb / np.linalg.norm(tb)
        self.scale = self.beta * (1.0 - np.cos(self.D0))  # t = e^{scale} τ
        self.nfev = 0  # no field evaluations
        edges = _panels(self.D0, self.D_stop, self.beta)
        lo, hi = edges[1:], edges[:-1]
        self._edges = edges
        self._tau_edges = np.concatenate([[0.0], np.cumsum(_gauss(self._inv_rate, lo, hi))])
        self._share_edges = np.concatenate([[0.0], np.cumsum(_gauss(self._share, lo, hi))])
        with np.errstate(over="ignore"):
            self.t_stop = float(self._tau_edges[-1] * np.exp(self.scale))  # inf beyond float range
        self.t_bound = float(t_bound)
        # where the step ends (unless t_bound comes first): the pause, or the collapse
        self._t_end, self._D_end = self.t_stop, self.D_stop
        if D_pause is not None and D_stop < D_pause < self.D0 * (1.0 - 1e-12):  # not again right after a pause
            with np.errstate(over="ignore"):
                self._t_end, self._D_end = float(self.tau_of_gap(D_pause) * np.exp(self.scale)), float(D_pause)
        self.t_old = None
        self.t = 0.0
        self.y = x.ravel().copy()
        self.f = np.zeros_like(self.y)  # not used: the engine checks it is finite
        self.status = self.RUNNING
        self.n_accepted = self.n_rejected = self.n_attempts = 0
        self.step_size = None
        self.next_step = None

    # ----- the integrands ------------------------------------------------------------------
    def _inv_rate(self, u):
        return two_cluster_scaled_inverse_rate(u, self.D0, self.beta, self.m_a, self.m_b, self.n_total, self.model)

    def _share(self, u):
        return two_cluster_share(u, self.beta, self.m_a, self.m_b, self.model)

    # ----- t ↔ D -----------------------------------------------------------------------------
    def _panel_of_gap(self, D: np.ndarray) -> np.ndarray:
        """Index k of the panel [edges[k+1], edges[k]] holding each D (edges decrease)."""
        k = np.searchsorted(-self._edges, -D, side="right") - 1
        return np.clip(k, 0, self._edges.size - 2)

    def tau_of_gap(self, D):
        """Scaled time τ = t e^{−β(1−cos D0)} at which the gap is D (D_stop ≤ D ≤ D0)."""
        D = np.asarray(D, dtype=np.float64)
        k = self._panel_of_gap(D)
        return self._tau_edges[k] + _gauss(self._inv_rate, D, self._edges[k])

    def gap_at(self, t):
        """The gap D at local times t (0 ≤ t ≤ t_stop; scalar or array): Newton on τ(D) = τ inside
        each one's panel, kept in the bracket by bisection; converged to rounding in τ or 1e-15
        relative in D."""
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(under="ignore"):
            tau = t * np.exp(-self.scale)
        if tau.ndim == 0:  # one time (root finding): the scalar iteration, without array bookkeeping
            if tau <= 0.0:
                return self.D0
            return self.D_stop if tau >= self._tau_edges[-1] else self._newton_one(float(tau))
        D = np.where(tau <= 0.0, self.D0, self.D_stop)
        todo = np.flatnonzero((tau > 0.0) & (tau < self._tau_edges[-1]))
        if todo.size:
            D = D.copy() if D.ndim else D.reshape(1)
            D[todo] = self._newton(tau.reshape(-1)[todo])
            D = D.reshape(t.shape)
        return float(D) if D.ndim == 0 else D

    def _newton_one(self, tau: float) -> float:
        """:meth:`_newton` for one τ."""
        k = int(np.searchsorted(self._tau_edges, tau, side="right")) - 1
        top, tau_top = float(self._edges[k]), float(self._tau_edges[k])
        lo, hi = float(self._edges[k + 1]), top
        D = hi - (tau - tau_top) / (float(self._tau_edges[k + 1]) - tau_top) * (hi - lo)
        for _ in range(100):
            r = tau_top + float(_gauss(self._inv_rate, D, top)) - tau
            if abs(r) <= 2e-16 * tau:
                return D
            if r > 0:
                lo = D
            else:
                hi = D
            D_new = D + r / float(self._inv_rate(D))
            if abs(D_new - D) <= 1e-15 * D or hi - lo <= 1e-15 * D:
                return D_new if lo <= D_new <= hi else D
            D = D_new if lo < D_new < hi else 0.5 * (lo + hi)
        return D

    def _newton(self, tau: np.ndarray) -> np.ndarray:
        """D with τ(D) = τ for scaled times 0 < τ < τ(D_stop), all at once (the iteration of
        :meth:`_newton_one`, the converged ones dropped after each round)."""
        k = np.searchsorted(self._tau_edges, tau, side="right") - 1
        top, tau_top = self._edges[k], self._tau_edges[k]
        lo, hi = self._edges[k + 1].copy(), top.copy()  # τ decreases in D: τ(hi) ≤ τ ≤ τ(lo)
        D = hi - (tau - tau_top) / (self._tau_edges[k + 1] - tau_top) * (hi - lo)
        out = np.empty_like(tau)
        act = np.arange(tau.size)
        for _ in range(100):
            r = tau_top[act] + _gauss(self._inv_rate, D, top[act]) - tau[act]  # τ(D) − τ
            lo = np.where(r > 0, D, lo)  # τ(D) > τ: the gap at τ is wider
            hi = np.where(r < 0, D, hi)
            D_new = D + r / self._inv_rate(D)  # dτ/dD = −(scaled 1/|Ḋ|)
            inside = (lo < D_new) & (D_new < hi)
            exact = np.abs(r) <= 2e-16 * tau[act]  # τ(D) = τ to rounding
            done = exact | (np.abs(D_new - D) <= 1e-15 * D) | (hi - lo <= 1e-15 * D)
            out[act[done]] = np.where(exact | ~((lo <= D_new) & (D_new <= hi)), D, D_new)[done]
            keep = ~done
            if not keep.any():
                return out
            D = np.where(inside, D_new, 0.5 * (lo + hi))[keep]
            lo, hi, act = lo[keep], hi[keep], act[keep]
        out[act] = D
        return out

    def positions(self, D):
        """Both points at gap D, shape (2, d) (or (len(D), 2, d)): a has travelled θ_a(D) towards b,
        b the rest of D0 − D."""
        D = np.asarray(D, dtype=np.float64)
        k = self._panel_of_gap(D)
        th_a = (self._share_edges[k] + _gauss(self._share, D, self._edges[k]))[..., None]
        th_b = (self.D0 - D)[..., None] - th_a
        xa = np.cos(th_a) * self._x0[0] + np.sin(th_a) * self._ua
        xb = np.cos(th_b) * self._x0[1] + np.sin(th_b) * self._ub
        return np.stack([xa, xb], axis=-2)

    # ----- stepper interface ----------------------------------------------------------------
    def step(self):
        """The step: to t_bound or to the pause (or, without one, the gap D_stop), whichever comes first.
        The engine restarts after it (:meth:`.simulate._Run.restart`): a flow takes one step."""
        if self.status != self.RUNNING or self.t_old is not None:
            raise RuntimeError("Attempt to step on a finished solver (a pair flow takes one step).")
        if self._check is not None:
            self._check()
        self.n_attempts = self.n_accepted = 1
        self.t_old = self.t
        if self._t_end >= self.t_bound:
            self.t = self.t_bound
            self.status = self.FINISHED
            self.y = self.positions(self.gap_at(self.t)).ravel()
        else:
            self.t = self._t_end
            self.y = self.positions(self._D_end).ravel()
        self.step_size = self.next_step = self.t - self.t_old
        return None

    def dense_output(self):
        """Positions at any local time in the step (flattened), exact up to the quadrature."""
        if self.t_old is None:
            raise RuntimeError("Dense output is available after a successful step was made.")
        def dense(t):  # scipy's convention: (2d,) for a scalar t, (2d, len(t)) for an array
            z = self.positions(self.gap_at(t))
            return z.ravel() if z.ndim == 2 else z.reshape(z.shape[0], -1).T
        return dense
