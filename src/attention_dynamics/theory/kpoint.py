"""Merge times of k weighted points: the collapsed-cluster reduction of SA/USA (docs/science.md §3–§4).

Once the caps (or Gaussian components) of the initial data have contracted, each is one
point of mass μ_a (its fraction of the n particles), and the dynamics is that of k
weighted points. Points on one great circle stay on it, so the system reduces to k angles
θ_a with gaps d_ab = θ_b − θ_a:

    USA:  θ̇_a = Σ_b μ_b e^{β(cos d_ab − 1)} sin d_ab
    SA:   θ̇_a = Σ_{b≠a} μ_b e^{β(cos d_ab − 1)} sin d_ab / (μ_a + Σ_{b≠a} μ_b e^{β(cos d_ab − 1)})

(for k = 2 these are the two-cluster ODEs of :mod:`.twocluster`). A *merge* is the first
time two points (single-linkage clusters) come within θ_c, as in the engine.

Integrating in the physical time t is hopeless at large β: the plateau lasts
e^{β(1 − cos D)}. We integrate in the clock s of the fastest pair instead,

    dt/ds = 1/F(θ),   F(θ) = Σ_{a<b} e^{β(cos d_ab − 1)},

in which the closest pair closes at speed O(μ sin D) whatever β, so a plateau of any length
takes a few hundred steps. The physical time is carried along as J = ∫ e^{−ln F − L₀} ds
(L₀ = −ln F at the start of the stage), so ln t = ln t₀ + L₀ + ln J never overflows. The
integrator is Dormand–Prince 5(4) with an elementary step-size controller, batched over
many systems (different β, masses, geometries) in lock step. Events are located by regula
falsi on the step length with full Runge–Kutta steps: a *merge* when two single-linkage
clusters come within θ_c, a *collapse* when two points come within δ (then one point of the
summed mass at the mass-weighted mean angle, as in the engine; a contracting pair is not
stiff in s, whose clock it sets). Measured against the engine on k = 3, 4 weighted points:
every merge time agrees to ~1e-9 relative or better (tests/test_kpoint.py).

Mirror-symmetric configurations with a cluster in the middle (e.g. k = 3 or 5 equal caps on
an arc, after the first merges) hold an unstable equilibrium: both neighbours reach the middle
cluster at the same instant in exact arithmetic, and which one comes first in floating point
decides how long the last plateau lasts. The last merge time of such systems is ill-conditioned
(ln T moved by up to 6 at β = 60 between tolerances); a run, with its own jitter, does the same.

An exactly symmetric configuration (e.g. k points equally spaced on the whole circle,
or two antipodal points) is an unstable equilibrium: its merge time is set by the
perturbation (the spread of the initial data), not by the centres. Such systems are
reported with ``equilibrium = True`` and merge times NaN.

For centres that are not on a great circle (random centres) :func:`leading_order_staircase`
gives the closed-form leading order: the closest pair merges first, after
T ≈ e^{β(1 − cos D)}/(c β sin² D) (docs/science.md §3), and is replaced by its weighted mean
direction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KPointResult", "circle_merge_log_times", "circle_merge_time", "circle_angles", "is_equilibrium",
           "leading_order_staircase", "two_cluster_log_time_leading"]

# Dormand–Prince 5(4) tableau (Dormand & Prince 1980), FSAL; the system is autonomous, so no c_i
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0])
_EQUILIBRIUM = 1e-10   # |dθ/ds| below which nothing moves
_E = _B - np.array([5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


@dataclass
class KPointResult:
    """Merge times of a batch of S systems of k points.

    ``n_initial[s]`` is the cluster count at t = 0 (points closer than θ_c are one cluster
    from the start); ``log_times[s, j]`` is ln t at which the count first dropped to
    n_initial − 1 − j or below (simultaneous merges repeat the time): column 0 is the first
    merge, column n_initial − 2 the last (one cluster left), later columns NaN. +inf: not
    reached before ``log_t_stop``; NaN: not computed (``equilibrium``, ``until="first"``, or
    ``max_steps`` reached). ``steps`` counts Runge–Kutta steps per system.
    """

    log_times: np.ndarray
    n_initial: np.ndarray
    equilibrium: np.ndarray
    steps: np.ndarray

    @property
    def log_first(self) -> np.ndarray:
        return np.where(self.n_initial >= 2, self.log_times[:, 0], np.nan)

    @property
    def log_last(self) -> np.ndarray:
        col = np.clip(self.n_initial - 2, 0, self.log_times.shape[1] - 1)
        return np.where(self.n_initial >= 2, self.log_times[np.arange(col.size), col], np.nan)


def circle_angles(k: int, spacing: float | None) -> np.ndarray:
    """Angles of k great-circle centres 0, φ, 2φ, … (φ = 2π/k by default), as in initial.great_circle_centres."""
    phi = 2.0 * np.pi / k if spacing is None else float(spacing)
    return phi * np.arange(k, dtype=np.float64)


def _wrap(d):
    """Angle difference mapped to (−π, π]."""
    return np.arctan2(np.sin(d), np.cos(d))


def _rhs(y, mu, beta, sa, L0, pair=None):
    """d(θ, J)/ds for a batch: y (A, k+1), mu (A, k) (0 = merged away), beta (A,), L0 (A,).

    Returns (dy/ds, ln F) with ln F = ln Σ_{a<b} e^{β(cos d_ab − 1)} over live pairs
    (``pair``: the live-pair mask, :func:`_pairs`).
    """
    if pair is None:
        pair = _pairs(mu)
    th = y[:, :-1]
    d = th[:, None, :] - th[:, :, None]                 # d[:, a, b] = θ_b − θ_a
    E = np.where(pair, beta[:, None, None] * (np.cos(d) - 1.0), -np.inf)
    lmax = E.max(axis=(1, 2))
    lmax = np.where(np.isfinite(lmax), lmax, 0.0)
    K = np.exp(E - lmax[:, None, None])
    Fs = 0.5 * K.sum(axis=(1, 2))
    num = np.einsum("ab,aib,aib->ai", mu, K, np.sin(d))
    if sa:
        den = mu + np.einsum("ab,aib->ai", mu, K) * np.exp(lmax)[:, None]
        num = np.divide(num, den, out=np.zeros_like(num), where=mu > 0)
    Fs = np.where(Fs > 0, Fs, np.inf)
    lnF = lmax + np.log(Fs)
    out = np.empty_like(y)
    out[:, :-1] = num / Fs[:, None]
    out[:, -1] = np.exp(np.minimum(-lnF - L0, 700.0))
    return out, lnF


def is_equilibrium(theta, mu, beta: float, model: str) -> bool:
    """True when no point of the system moves (|dθ/ds| < 1e-10 in the fastest pair's clock)."""
    y = np.zeros((1, len(theta) + 1))
    y[0, :-1] = theta
    f, _ = _rhs(y, np.asarray(mu, float)[None] / np.sum(mu), np.array([float(beta)]), model == "sa", np.zeros(1))
    return bool(np.max(np.abs(f[0, :-1])) < _EQUILIBRIUM)


def _pairs(mu):
    """Mask (A, k, k) of pairs a ≠ b of live (positive-mass) points."""
    live = mu > 0
    return live[:, :, None] & live[:, None, :] & ~np.eye(mu.shape[1], dtype=bool)[None]


def _gaps(y):
    th = y[:, :-1]
    return np.abs(_wrap(th[:, None, :] - th[:, :, None]))


def _event(y, mu, lab, theta_c, delta):
    """min( gap between different clusters − θ_c, any gap − δ ) over live pairs: ≤ 0 at a merge or a collapse."""
    g = _gaps(y)
    pair = _pairs(mu)
    other = pair & (lab[:, :, None] != lab[:, None, :])
    e_merge = np.where(other, g, np.inf).min(axis=(1, 2)) - theta_c
    e_coll = np.where(pair, g, np.inf).min(axis=(1, 2)) - delta
    return np.minimum(e_merge, e_coll)


def _dp5_step(y, f0, h, mu, beta, sa, L0):
    """One Dormand–Prince step of lengths h (A,) from y with f0 = f(y); returns (y1, f1, err_vec)."""
    ks = [f0]
    pair = _pairs(mu)
    for i in range(1, 7):
        yi = y + h[:, None] * sum(a * kk for a, kk in zip(_A[i], ks) if a != 0.0)
        ks.append(_rhs(yi, mu, beta, sa, L0, pair)[0])
    y1 = y + h[:, None] * sum(b * kk for b, kk in zip(_B, ks) if b != 0.0)
    err = h[:, None] * sum(e * kk for e, kk in zip(_E, ks) if e != 0.0)
    return y1, ks[-1], err


def _join_and_collapse(theta, mu, lab, theta_c, delta):
    """One system: join clusters closer than θ_c (single linkage), collapse points closer than δ.

    Collapse: the point of summed mass at the mass-weighted mean angle. Returns the new
    (theta, mu, lab) and the cluster count.
    """
    theta, mu, lab = theta.copy(), mu.copy(), lab.copy()
    tol = 1 + 1e-9
    while True:  # collapse the closest pair within δ, repeatedly
        live = np.flatnonzero(mu > 0)
        best = None
        for ia, a in enumerate(live):
            for b in live[ia + 1:]:
                g = abs(float(_wrap(theta[b] - theta[a])))
                if g <= delta * tol and (best is None or g < best[0]):
                    best = (g, a, b)
        if best is None:
            break
        _, a, b = best
        tb = theta[a] + float(_wrap(theta[b] - theta[a]))
        m = mu[a] + mu[b]
        theta[a] = (mu[a] * theta[a] + mu[b] * tb) / m
        mu[a], mu[b], theta[b] = m, 0.0, theta[a]
        lab[lab == lab[b]] = lab[a]
    live = np.flatnonzero(mu > 0)
    changed = True
    while changed:  # single linkage at θ_c
        changed = False
        for ia, a in enumerate(live):
            for b in live[ia + 1:]:
                if lab[a] != lab[b] and abs(float(_wrap(theta[b] - theta[a]))) <= theta_c * tol:
                    lab[lab == lab[b]] = lab[a]
                    changed = True
    return theta, mu, lab, int(np.unique(lab[live]).size)


def circle_merge_log_times(theta0, mu, beta, model: str, theta_c, *, until: str = "first", delta: float = 1e-5,
                           rtol: float = 1e-10, atol: float = 1e-12, log_t_stop: float = np.inf,
                           max_steps: int = 100_000) -> KPointResult:
    """ln of the merge times of S systems of k weighted points on a circle (batched).

    theta0 (S, k) angles, mu (S, k) masses (any positive scale; only fractions matter;
    zero-mass entries are ignored, so systems with fewer points can share a batch),
    beta (S,), theta_c scalar or (S,); model "sa" or "usa". ``until`` = "first" stops at
    the first merge, "last" follows the staircase to one cluster. A merge is recorded when
    two single-linkage clusters come within θ_c; two points closer than ``delta`` (rad; at
    least 1e3·(π·rtol + atol), so that the integrator resolves the contraction) are then
    collapsed into one weighted point, as in the engine. Systems whose ln t passes
    ``log_t_stop`` are stopped (remaining times +inf). Points closer than θ_c at t = 0 are
    one cluster from the start (as in the engine), not a merge.
    """
    if model not in ("sa", "usa"):
        raise ValueError(f"model must be 'sa' or 'usa', got {model!r}")
    if until not in ("first", "last"):
        raise ValueError(f"until must be 'first' or 'last', got {until!r}")
    theta0 = np.atleast_2d(np.asarray(theta0, dtype=np.float64))
    S, k = theta0.shape
    mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), (S, k)).copy()
    if np.any(mu < 0) or not np.all(np.isfinite(mu)) or np.any(mu.sum(axis=1) <= 0):
        raise ValueError("masses must be finite and >= 0, with a positive total per system")
    mu /= mu.sum(axis=1, keepdims=True)
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), (S,)).copy()
    tc = np.broadcast_to(np.asarray(theta_c, dtype=np.float64), (S,)).copy()
    if not (0 < delta < np.min(tc)):
        raise ValueError(f"need 0 < delta < theta_c, got delta={delta!r}")
    # a contracting pair must shrink below δ to be collapsed: that needs the angles resolved well below δ
    delta = max(delta, 1e3 * (rtol * np.pi + atol))
    gtol = max(1e-14, 1e-3 * rtol)     # event location: |gap − θ_c| (rad)
    sa = model == "sa"
    out = np.full((S, max(k - 1, 1)), np.nan)
    y = np.zeros((S, k + 1))
    y[:, :-1] = theta0
    lab = np.tile(np.arange(k), (S, 1))
    n_initial = np.zeros(S, dtype=int)
    for s in range(S):
        y[s, :-1], mu[s], lab[s], n_initial[s] = _join_and_collapse(y[s, :-1], mu[s], lab[s], tc[s], delta)
    count = n_initial.copy()
    steps = np.zeros(S, dtype=int)
    equilibrium = np.zeros(S, dtype=bool)
    done = n_initial <= 1
    L0 = np.zeros(S)
    lnt0 = np.full(S, -np.inf)           # ln t at the start of the current stage
    f = np.zeros_like(y)
    h = np.full(S, 1e-3)

    def start_stage(idx):
        y[idx, -1] = 0.0
        _, lnF = _rhs(y[idx], mu[idx], beta[idx], sa, np.zeros(idx.size))
        L0[idx] = -lnF
        f[idx] = _rhs(y[idx], mu[idx], beta[idx], sa, L0[idx])[0]
        h[idx] = 1e-3
        eq = np.max(np.abs(f[idx, :-1]), axis=1) < _EQUILIBRIUM
        if eq.any():
            equilibrium[idx[eq]] = True
            done[idx[eq]] = True

    def stop_past(idx, lnt):
        """Systems whose clock passed log_t_stop: the remaining merges are beyond it (+inf)."""
        past = lnt > log_t_stop
        for s in idx[past]:
            out[s, n_initial[s] - count[s]:n_initial[s] - 1] = np.inf
            done[s] = True
        return past

    start_stage(np.flatnonzero(~done))
    while True:
        act = np.flatnonzero(~done & (steps < max_steps))
        if act.size == 0:
            break
        ya, fa, ha, mua, ba, La = y[act], f[act], h[act], mu[act], beta[act], L0[act]
        y1, f1, err = _dp5_step(ya, fa, ha, mua, ba, sa, La)
        scale = atol + rtol * np.maximum(np.abs(ya), np.abs(y1))
        en = np.sqrt(np.mean((err / scale) ** 2, axis=1))
        en = np.where(np.isfinite(en), en, np.inf)
        acc = en <= 1.0
        steps[act] += 1
        fac = np.clip(0.9 * np.where(en > 0, en, 1e-10) ** -0.2, 0.2, 5.0)
        h[act] = ha * np.where(acc, fac, np.minimum(fac, 0.5))
        if not acc.any():
            continue
        ia = act[acc]
        ya, fa, ha, y1a, f1a = ya[acc], fa[acc], ha[acc], y1[acc], f1[acc]
        e1 = _event(y1a, mu[ia], lab[ia], tc[ia], delta)
        hit = e1 <= 0
        ok = ia[~hit]
        y[ok], f[ok] = y1a[~hit], f1a[~hit]
        stop_past(ok, np.logaddexp(lnt0[ok], L0[ok] + np.log(np.maximum(y[ok, -1], 1e-300))))
        if not hit.any():
            continue
        # locate the event: regula falsi (Illinois) on the step length, full RK steps from ya
        ih = ia[hit]
        y0h, f0h, mh, bh, Lh, labh = ya[hit], fa[hit], mu[ih], beta[ih], L0[ih], lab[ih]
        lo, hi = np.zeros(ih.size), ha[hit].copy()
        glo = _event(y0h, mh, labh, tc[ih], delta)
        ghi = e1[hit]
        ybest, fbest = y1a[hit].copy(), f1a[hit].copy()
        side = np.zeros(ih.size, dtype=int)
        for _ in range(60):
            denom = np.where(glo - ghi != 0, glo - ghi, 1.0)
            mid = np.clip(lo + (hi - lo) * glo / denom, lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo))
            ym, fm, _ = _dp5_step(y0h, f0h, mid, mh, bh, sa, Lh)
            gm = _event(ym, mh, labh, tc[ih], delta)
            below = gm <= 0
            hi = np.where(below, mid, hi)
            ghi = np.where(below, gm, ghi)
            lo = np.where(below, lo, mid)
            glo = np.where(below, glo, gm)
            ybest = np.where(below[:, None], ym, ybest)
            fbest = np.where(below[:, None], fm, fbest)
            glo = np.where(below & (side == 1), glo / 2, glo)   # Illinois: halve the stale end
            ghi = np.where(~below & (side == -1), ghi / 2, ghi)
            side = np.where(below, 1, -1)
            if np.all(np.abs(gm) < gtol) or np.all(hi - lo < 1e-15 * np.maximum(hi, 1e-300)):
                break
        y[ih], f[ih] = ybest, fbest
        lnt_e = np.logaddexp(lnt0[ih], L0[ih] + np.log(np.maximum(y[ih, -1], 1e-300)))
        past = stop_past(ih, lnt_e)
        for j in np.flatnonzero(~past):
            s = ih[j]
            th, m, lb, now = _join_and_collapse(y[s, :-1], mu[s], lab[s], tc[s], delta)
            out[s, n_initial[s] - count[s]:n_initial[s] - now] = lnt_e[j]
            first_seen = now < count[s]
            y[s, :-1], mu[s], lab[s], count[s] = th, m, lb, now
            lnt0[s] = lnt_e[j]
            if now <= 1 or (until == "first" and first_seen):
                done[s] = True
        restart = ih[~done[ih]]
        if restart.size:
            start_stage(restart)
    return KPointResult(log_times=out, n_initial=n_initial, equilibrium=equilibrium, steps=steps)


def circle_merge_time(theta0, masses, beta: float, model: str, theta_c: float, until: str = "first",
                      **kwargs) -> float:
    """Merge time t (first or last) of one system of k weighted points on a circle; NaN at an equilibrium."""
    r = circle_merge_log_times(np.asarray(theta0, float)[None], np.asarray(masses, float)[None], beta, model,
                               theta_c, until=until, **kwargs)
    return float(np.exp(r.log_first[0] if until == "first" else r.log_last[0]))


def two_cluster_log_time_leading(D, beta, mu_a, mu_b, model: str):
    """ln T ≈ β(1 − cos D) − ln(c β sin² D): leading order of the two-cluster merge time (docs/science.md §3).

    c = μ_a + μ_b (USA, mass fractions) or μ_a/μ_b + μ_b/μ_a (SA).
    """
    D, beta = np.asarray(D, float), np.asarray(beta, float)
    c = (mu_a + mu_b) if model == "usa" else (mu_a / mu_b + mu_b / mu_a)
    return beta * (1.0 - np.cos(D)) - np.log(c * beta * np.sin(D) ** 2)


def leading_order_staircase(points, masses, betas, model: str, theta_c: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form (ln T_first, ln T_last) over ``betas`` for k weighted points in any dimension.

    Points within θ_c of each other are one cluster at t = 0. Then the closest pair (angle D)
    merges, after the leading-order two-cluster time counted from the moment both of its
    clusters exist, and is replaced by its mass-weighted mean direction; a cluster that comes
    within θ_c of another merges at once. Returns arrays shaped like ``betas``: NaN when there
    are fewer than two clusters at t = 0, +inf for an antipodal pair (an equilibrium).
    """
    x = np.asarray(points, dtype=np.float64)
    pts = list(x / np.linalg.norm(x, axis=1, keepdims=True))
    m = list(np.asarray(masses, dtype=np.float64) / np.sum(masses))
    betas = np.asarray(betas, dtype=np.float64)
    ready = [np.full(betas.shape, -np.inf) for _ in pts]
    first = last = np.full(betas.shape, np.nan)
    started = False
    while len(pts) > 1:
        P = np.array(pts)
        g = np.arccos(np.clip(P @ P.T, -1.0, 1.0))
        np.fill_diagonal(g, np.inf)
        a, b = np.unravel_index(np.argmin(g), g.shape)
        D = float(g[a, b])
        started = started or D > theta_c
        t_ready = np.maximum(ready[a], ready[b])
        if D <= theta_c:
            lt = t_ready
        elif D >= np.pi - 1e-9:
            lt = np.full(betas.shape, np.inf)
        else:
            lt = np.logaddexp(t_ready, two_cluster_log_time_leading(D, betas, m[a], m[b], model))
        if started:
            first = lt if np.all(np.isnan(first)) else first
            last = lt
        s = m[a] * pts[a] + m[b] * pts[b]
        new, mm = s / np.linalg.norm(s), m[a] + m[b]
        for i in sorted((a, b), reverse=True):
            del pts[i], m[i], ready[i]
        pts.append(new); m.append(mm); ready.append(lt)
    return first, last
