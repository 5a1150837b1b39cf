"""BPA24: emergence of clusters from (near-)uniform data, measured with particles.

:func:`formation` integrates one configuration until clusters have formed and reads the
counts; :func:`emergence_run` and :func:`emergence_table` run seeds per (β, d, n) and make
the ``emergence`` table; :func:`plot_emergence` draws it against l*(β, d).
"""
from __future__ import annotations

import time as _time

import numpy as np
import pandas as pd
from scipy.integrate import DOP853, RK23, RK45

from ..engine.clusters import (FORMATION_FRACTION, FORMATION_SAMPLES, FORMATION_TIGHT_ANGLE, first_time_on_grid,
                               is_macroscopic, locate_first, tight_mass_fraction)
from ..engine.dynamics import velocity, velocity_circle
from ..theory.gegenbauer import formation_time, l_star
from ._figures import _plt, _save_and_close
from .selection import _dist_str, default_l_max, degree_power, linear_selection, potential_maxima

__all__ = ["EMERGENCE_COLUMNS", "EMERGENCE_SPECTRA_COLUMNS", "formation", "linear_prediction_columns", "emergence_run",
           "emergence_cell", "emergence_table", "emergence_figure", "plot_emergence"]

_SOLVERS = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853}


def formation(x0: np.ndarray, beta: float, *, model: str = "usa", theta_c: float = 0.1,
              tight_angle: float = FORMATION_TIGHT_ANGLE, f: float = FORMATION_FRACTION, m_min: float = 0.01, method: str = "RK23", rtol: float = 1e-3, atol: float = 1e-6,
              t_max: float | None = None, max_steps: int = 20_000, power_level: float = 0.05,
              l_max: int | None = None, samples_per_step: int | None = None, peak_angle: float = 0.5,
              spectrum_times=None) -> dict:
    """Integrate from (near-)uniform data until clusters have formed; count them.

    Definitions (the ones the emergence table uses)
    ------------------------------------------------
    * **End of the linear phase** t_lin (``t_dominant``): the first time the largest degree
      power max_{l ≤ l_max} S_l (:func:`degree_power`; E S_l = 1/n for iid uniform points)
      reaches ``power_level`` = 0.05, located by bisection on the solver's dense output.
      In d = 2, S_l = |ẑ_l|² and the density is (1 + 2 Σ_l Re ẑ_l e^{ilθ})/2π, so at
      S_l = 0.05 the leading harmonic modulates the density by ±45 %: the linear regime's
      last reliable instant (at 0.2 the harmonics 2l of forming clusters already win the
      argmax). l_max = 2⌈√(2β)⌉ + 6 (:func:`default_l_max`). In d = 3 S_l is the power per
      harmonic and degree l has 2l + 1 of them, so the same S_l is a much larger modulation;
      the pipeline reads d = 3 at 0.005 (``reproductions.emergence.power_level``): at 0.05 the
      dominant degree departs from the finite-n linear prediction (n = 2000, 16 seeds, β = 12,
      23, 38: χ² p = 0.017, 0.011, 0.004), at 0.005–0.01 it does not (p ≥ 0.07).
    * **Number of clusters** ``n_clusters_linear`` (the headline count, d = 2): the number of
      local maxima of the interaction potential φ_t(ϑ) = (1/n) Σ_j e^{β(cos(ϑ−θ_j(t))−1)}
      (:func:`potential_maxima`) at t_lin.
    * **Dominant degree** ``dominant_degree`` (any d): argmax_{l ≤ l_max} S_l at t_lin.
    * **Clusters at formation** ``n_clusters`` (d = 2 and d ≥ 3): single-linkage components at
      angle θ_c (0.1 rad) holding ≥ ``m_min`` = 1 % of the mass, counted at the formation time
      t_f, the first time a fraction ``f`` = 0.9 of the mass lies in components of angular
      diameter < ``tight_angle`` (0.25 rad). The rule is not monotone in time (a component can
      become tight, then join a wide one: a window of 0.27 time units was seen at n = 202, β = 20),
      so it is checked at 8 points of every solver step (:func:`engine.clusters.first_time_on_grid`).
      Checked at step ends only, RK23 at rtol 1e-3 and DOP853 at 1e-10 disagreed on t_f by > 1 % in
      4 of 16 runs (d = 2, n = 200 and 500, β = 10 and 20, 4 seeds); with 8 checks per step they
      agree in 16/16, and the engine's uniform-data runs give the same count in 15/16 (in one,
      the engine's finer steps found a window ≈ 4 time units earlier).
      The rule is the engine's
      (:func:`engine.clusters.tight_mass_fraction`, :func:`engine.clusters.is_macroscopic`): the
      sweep's uniform-data runs (``simulate(..., wait_for_formation=True)``) use the same code. Diagnostic ``n_clusters_peak``: the largest
      number of clusters (≥ m_min, diameter < ``peak_angle``) present at once up to t_f.

    Why the headline count is read from φ at the end of the linear phase
    ---------------------------------------------------------------------
    The theory (BPA24, docs/science.md §6) is a statement about the linear instability: each
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

    Angular power spectrum: with ``spectrum_times`` (sorted times ≥ 0), the degree powers
    S_1..S_{l_max} (:func:`degree_power`) are also read from the solver's dense output at
    those times, up to t_f (or the end of the run): ``spectrum_t`` (k,) and ``spectrum``
    (k, l_max) in the result — the data of the growth-rate fits
    (:func:`attention_dynamics.reproductions.growth.spectrum_growth_fits`).

    Returns a dict: t_formation, n_clusters (at t_f), n_clusters_peak, t_peak, n_components
    (all, at t_f), tight_mass, x (positions at t_f), dominant_degree, t_dominant (= t_lin),
    power_dominant, n_clusters_linear (−1 in d ≥ 3), n_steps, nfev, status ("ok",
    "not_formed" or "sparse"), spectrum_t, spectrum.
    """
    run = _FormationRun(x0, beta, model=model, theta_c=theta_c, tight_angle=tight_angle, f=f, m_min=m_min,
                        method=method, rtol=rtol, atol=atol, t_max=t_max, power_level=power_level, l_max=l_max,
                        samples_per_step=samples_per_step, peak_angle=peak_angle, spectrum_times=spectrum_times)
    if run.already_formed():
        # the initial data already look "formed": points so sparse that most are isolated at θ_c
        # (e.g. n = 300 in d = 3); the definition does not apply
        return run.result("sparse")
    while run.t_hit is None and run.solver.status == "running" and run.steps < max_steps:
        if not run.step():                 # 1. one solver step
            break
        run.read_linear_phase()            # 2. end of the linear phase inside the step (dominant degree, φ-count)
        t_end, at_end = run.detect_formation()   # 3. formation inside the step (8 checks per step)
        run.record_spectrum(t_end)         # 4. the angular power spectrum at the requested times
        run.track_peak_in_step(t_end, at_end)    # 5. the largest count of tight clusters so far
    return run.result("ok" if run.t_hit is not None else "not_formed")


class _FormationRun:
    """The state of one :func:`formation` integration and its steps, each a method."""

    def __init__(self, x0, beta, *, model, theta_c, tight_angle, f, m_min, method, rtol, atol, t_max, power_level,
                 l_max, samples_per_step, peak_angle, spectrum_times):
        x0 = np.asarray(x0, dtype=np.float64)
        self.n, self.d = x0.shape
        self.beta, self.model, self.theta_c, self.tight_angle = beta, model, theta_c, tight_angle
        self.f, self.m_min, self.power_level, self.peak_angle = f, m_min, power_level, peak_angle
        self.mass = np.ones(self.n)
        if t_max is None:
            t_max = 20.0 * float(formation_time(beta, self.n, self.d, "gkpr24" if model == "usa" else "sa"))
        # d = 2: the same field by Fourier modes, O(nL) not O(n²)
        self.field = velocity_circle if self.d == 2 else velocity
        self.solver = _SOLVERS[method](self.fun, 0.0, x0.ravel(), t_max, rtol=rtol, atol=atol)
        # components cost O(n log n) in d = 2, O(n²) otherwise
        self.samples_per_step = (4 if self.d == 2 else 1) if samples_per_step is None else samples_per_step
        self.l_max = default_l_max(beta) if l_max is None else l_max
        self.dom = dict(dominant_degree=-1, t_dominant=np.nan, power_dominant=np.nan, n_clusters_linear=-1)
        self.peak = dict(n_clusters_peak=0, t_peak=np.nan)
        self.rec_t = np.empty(0) if spectrum_times is None else np.asarray(spectrum_times, dtype=np.float64)
        if self.rec_t.size and (np.any(np.diff(self.rec_t) < 0) or self.rec_t[0] < 0):
            raise ValueError("spectrum_times must be sorted and >= 0")
        self.spec_t, self.spec = [], []
        self.steps = 0
        self.t_hit = self.y_hit = None
        self.dense = None

    # ----- the field and the measurements ------------------------------------------------
    def unit(self, y):
        x = y.reshape(self.n, self.d)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def fun(self, t, y):
        # the field assumes unit vectors (e^{β(⟨x,y⟩−1)} ≤ 1): project the state back first
        return self.field(self.unit(y), self.mass, self.beta, self.model).ravel()

    def measure(self, y):
        x = self.unit(y)
        tight, _, masses, extents = tight_mass_fraction(x, self.theta_c, self.tight_angle)
        return x, tight, masses, extents

    def power(self, y):
        return degree_power(self.unit(y), self.l_max)

    def dense_output(self):
        if self.dense is None:
            self.dense = self.solver.dense_output()
        return self.dense

    # ----- t = 0 ----------------------------------------------------------------------------
    def already_formed(self) -> bool:
        """Measure t = 0 (spectrum, linear level, peak count); True when the formation rule holds already."""
        y0 = self.solver.y
        measured = self.measure(y0)
        self.record_spectrum(0.0)
        sp0 = self.power(y0)
        if sp0.max() >= self.power_level:  # tiny n: the noise alone reaches the level
            self.read_linear(0.0, y0, sp0)
        self.track_peak(0.0, y0, measured)
        return measured[1] >= self.f

    # ----- the steps -------------------------------------------------------------------------
    def step(self) -> bool:
        self.solver.step()
        self.steps += 1
        self.dense = None
        return self.solver.status != "failed"

    def read_linear(self, t, y, sp):
        self.dom.update(dominant_degree=int(np.argmax(sp)) + 1, t_dominant=float(t), power_dominant=float(sp.max()),
                        n_clusters_linear=potential_maxima(self.unit(y), self.beta) if self.d == 2 else -1)

    def read_linear_phase(self):
        """The first crossing of max_l S_l = power_level inside the step, located by bisection."""
        if self.dom["dominant_degree"] >= 0:
            return
        y = self.solver.y
        sp = self.power(y)
        if sp.max() < self.power_level:
            return
        dense = self.dense_output()
        hi = locate_first(lambda t: self.power(dense(t)).max() >= self.power_level, self.solver.t_old,
                          self.solver.t, 1e-4)
        y_hi = dense(hi) if hi < self.solver.t else y
        self.read_linear(hi, y_hi, self.power(y_hi))

    def detect_formation(self):
        """The first of FORMATION_SAMPLES checks inside the step at which the rule holds (bisected);
        returns the end of the step's measured part and the measurement at the step's end."""
        s = self.solver
        t_end, at_end = s.t, self.measure(s.y)
        dense = self.dense_output()
        hi = first_time_on_grid(lambda t: (at_end if t >= s.t else self.measure(dense(t)))[1] >= self.f, s.t_old,
                                s.t, FORMATION_SAMPLES, 1e-3)
        if hi is not None:
            self.t_hit, self.y_hit = hi, (dense(hi) if hi < s.t else s.y)
            t_end = hi
        return t_end, at_end

    def record_spectrum(self, t_upto):
        """Degree powers at the requested times ≤ t_upto (dense output inside the last step)."""
        while len(self.spec_t) < self.rec_t.size and self.rec_t[len(self.spec_t)] <= t_upto:
            tk = float(self.rec_t[len(self.spec_t)])
            yk = self.solver.y if tk == self.solver.t or self.steps == 0 else self.dense_output()(tk)
            self.spec_t.append(tk)
            self.spec.append(self.power(yk))

    def track_peak(self, t, y, measured=None):
        """The most clusters (≥ m_min, diameter < peak_angle) present at once up to formation."""
        _, _, masses_k, extents_k = self.measure(y) if measured is None else measured
        k = int(np.sum(is_macroscopic(masses_k, self.m_min, self.n) & (extents_k < self.peak_angle)))
        if k > self.peak["n_clusters_peak"]:
            self.peak.update(n_clusters_peak=k, t_peak=float(t))

    def track_peak_in_step(self, t_end, at_end):
        s = self.solver
        if self.samples_per_step > 1:
            dense = self.dense_output()
            for tk in s.t_old + (s.t - s.t_old) * np.arange(1, self.samples_per_step) / self.samples_per_step:
                if tk < t_end:
                    self.track_peak(tk, dense(tk))
        if self.t_hit is None:
            self.track_peak(t_end, s.y, at_end)
        else:
            self.track_peak(t_end, self.y_hit)

    # ----- the result ------------------------------------------------------------------------
    def result(self, status: str) -> dict:
        out = dict(status=status, t_formation=np.nan, n_clusters=-1, n_components=-1, tight_mass=np.nan, x=None)
        if status == "ok":
            x, tight, masses, extents = self.measure(self.y_hit)
            out.update(t_formation=float(self.t_hit), n_clusters=int(is_macroscopic(masses, self.m_min, self.n).sum()),
                       n_components=int(masses.size), tight_mass=tight, x=x)
        out.update(n_steps=self.steps, nfev=int(self.solver.nfev), spectrum_t=np.array(self.spec_t),
                   spectrum=np.array(self.spec).reshape(len(self.spec_t), self.l_max), **self.dom, **self.peak)
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
    "first_merge_time": "time of the first merge of two components ≥ m_min (NaN if none before t_history; the "
                        "engine's kind merge with min_mass = m_min)",
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
                  history_t_max: float = 0.0, history_rtol: float = 1e-8, prediction: dict | None = None,
                  spectrum_points: int = 0, spectrum_span: float = 1.0) -> dict:
    """One row of the emergence table: uniform data → formation (:func:`formation`) → history.

    ``spectrum_points`` > 0: the angular power spectrum S_l(t) is also read at that many equispaced
    times in [0, ``spectrum_span``·t_c_pred] (up to formation) and returned under the keys
    ``spectrum_t`` and ``spectrum`` (not columns of the table: :func:`emergence_cell` makes them
    the ``emergence_spectra`` table).

    The history (when ``history_t_max`` > t_formation) continues from the positions at
    formation with :func:`simulate.simulate` (collapse, merge detection) up to the global
    time ``history_t_max``; a merge counts when both merging components hold ≥ m_min.
    ``prediction``: the columns of :func:`linear_prediction_columns` for this (β, d, n),
    computed here when not given (≈ 1 s; :func:`emergence_table` computes them once per β).
    """
    from ..pipeline.cell import seed_sequence
    from .. import initial
    from ..theory.gegenbauer import growth_rate

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
        rec = (np.linspace(0.0, spectrum_span * row["t_c_pred"], int(spectrum_points)) if spectrum_points > 0
               else None)
        fo = formation(x0, beta, model=model, theta_c=theta_c, tight_angle=tight_angle, f=f, m_min=m_min,
                       method=method, rtol=rtol, peak_angle=peak_angle, power_level=power_level, spectrum_times=rec)
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
    if spectrum_points > 0:
        row.update(spectrum_t=fo["spectrum_t"], spectrum=fo["spectrum"])
    if fo["status"] != "ok":
        row.update(status=fo["status"], reason="no formation before 20 t_c" if fo["status"] == "not_formed" else
                   f"already ≥ f of the mass in tight components at t = 0: θ_c = {theta_c} is below the typical "
                   f"spacing of {n} points in d = {d}")
        return row
    tf = fo["t_formation"]
    counts = [(fo["n_clusters"], tf)]
    if history_t_max > tf:
        from ..engine.simulate import simulate

        t1 = _time.perf_counter()
        try:
            res = simulate(fo["x"], beta=beta, model=model, t_max=history_t_max - tf, theta_c=theta_c,
                           rtol=history_rtol, atol=history_rtol * 1e-2, record_times=np.array([0.0]),
                           min_mass=m_min)
            ev = res.events
            for _, e in ev[ev["n_clusters_after"] != ev["n_clusters_before"]].iterrows():
                counts.append((int(e["n_clusters_after"]), tf + e["time"]))
            row.update(first_merge_time=tf + res.first_merge_time, n_clusters_final=res.n_clusters_final,
                       t_history=tf + res.t_end)
            if res.status != "ok":
                row.update(status="history_failed", reason=res.reason)
        except Exception as exc:
            row.update(status="history_failed", reason=f"{type(exc).__name__}: {exc}")
        row["wall_history"] = _time.perf_counter() - t1
    else:
        row.update(n_clusters_final=fo["n_clusters"], t_history=tf)
    row["later_counts"] = ";".join(f"{k}@{t:.6g}" for k, t in counts)
    return row


EMERGENCE_SPECTRA_COLUMNS = {
    "model": "usa (GKPR24 time) or sa",
    "d": "ambient dimension",
    "n": "number of particles",
    "beta": "inverse temperature β",
    "seed": "seed index (the same initial data as the emergence table's row with this seed)",
    "t": "time (this model's clock; equispaced in [0, spectrum_span·t_c_pred], up to the formation time)",
    "l": "degree l = 1..l_max (l_max = 2⌈√(2β)⌉ + 6)",
    "power": "S_l(t) = (1/n²) Σ_{i,j} P_{l,d}(⟨x_i, x_j⟩): mean power per degree-l harmonic of the empirical "
             "measure (E S_l = 1/n for iid uniform points; d = 2: |ẑ_l|², d = 3: 4π/(2l+1) Σ_m |(1/n) Σ_i Y_lm(x_i)|²)",
}


def emergence_cell(betas, seeds, *, d: int = 2, n: int = 2000, log=None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`emergence_run` for every (β, seed); ``seeds`` is a count or a list of indices.

    Returns ``(emergence, spectra)``: the emergence rows (:data:`EMERGENCE_COLUMNS`) and, when
    ``spectrum_points`` > 0 is among the keyword arguments, the angular power spectra S_l(t) in long
    format (:data:`EMERGENCE_SPECTRA_COLUMNS`; empty otherwise). The finite-n linear prediction
    (:func:`linear_prediction_columns`) is computed once per β.
    """
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    rows, spectra = [], []
    for beta in betas:
        pred = linear_prediction_columns(float(beta), d, n, kwargs.get("power_level", 0.05))
        if log is not None:
            print(f"beta={beta:g} d={d} n={n}: finite-n linear theory: count {pred['lin_count_dist'] or '—'}; "
                  f"dominant degree {pred['lin_degree_dist']}", file=log, flush=True)
        for s in seeds:
            row = emergence_run(float(beta), d, n, s, prediction=pred, **kwargs)
            t_sp, sp = row.pop("spectrum_t", None), row.pop("spectrum", None)
            if t_sp is not None and len(t_sp):
                k, lm = sp.shape
                spectra.append(pd.DataFrame({
                    "model": row["model"], "d": int(d), "n": int(n), "beta": float(beta), "seed": int(s),
                    "t": np.repeat(t_sp, lm), "l": np.tile(np.arange(1, lm + 1), k), "power": sp.ravel()}))
            rows.append(row)
            if log is not None:
                print(f"beta={beta:g} d={d} n={n} seed={s} l*={row['l_star']} count={row['n_clusters_linear']} "
                      f"formation={row['n_clusters_formation']} peak={row['n_clusters_peak']} "
                      f"degree={row['dominant_degree']} t_lin={row['t_dominant']:.4g} "
                      f"t_f={row['t_formation']:.4g} (t_c={row['t_c_pred']:.4g}) later={row['later_counts']} "
                      f"status={row['status']} wall={row['wall_formation'] + row['wall_history']:.2f}s",
                      file=log, flush=True)
    spec = (pd.concat(spectra, ignore_index=True) if spectra else pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in EMERGENCE_SPECTRA_COLUMNS}))
    rows = pd.DataFrame(rows).reindex(columns=list(EMERGENCE_COLUMNS))
    return rows, spec.reindex(columns=list(EMERGENCE_SPECTRA_COLUMNS))


def emergence_table(betas, seeds, *, d: int = 2, n: int = 2000, log=None, **kwargs) -> pd.DataFrame:
    """The emergence rows of :func:`emergence_cell` (no spectra)."""
    kwargs.pop("spectrum_points", None)
    return emergence_cell(betas, seeds, d=d, n=n, log=log, **kwargs)[0]


def emergence_figure(emergence: pd.DataFrame):
    """Observed counts per β (marker area ∝ frequency) over the l*(β) staircase and the finite-n prediction.

    d = 2: the headline count (maxima of φ at the end of the linear phase), the mean count at
    formation and the most probable count of the finite-n linear theory; any d: the median
    dominant degree. One panel per (d, n); one legend for all panels, below them (it never
    covers data). Returns the matplotlib figure.
    """
    from matplotlib.lines import Line2D

    from ..analysis.figstyle import legend_below, suptitle
    from ..theory.gegenbauer import switch_points

    plt = _plt()
    panels = (sorted({(int(d), int(n)) for d, n in zip(emergence["d"], emergence["n"])}) if len(emergence)
              else [(2, 0)])
    cols = min(len(panels), 3)
    rows_ = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(6.0 * cols, 4.2 * rows_ + 1.0), squeeze=False,
                             layout="constrained", dpi=130)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    used: dict[str, Line2D] = {}
    for ax, (d, n) in zip(axes.ravel(), panels):
        g = emergence[(emergence["d"] == d) & (emergence["n"] == n) & emergence["status"].isin(["ok", "history_failed"])] \
            if len(emergence) else emergence
        bmax = float(g["beta"].max()) * 1.05 if len(g) else 40.0
        bs = np.linspace(0.2, bmax, 800)
        ax.plot(bs, l_star(bs, int(d)), color="k", lw=1.2, drawstyle="steps-post")
        used["l*"] = Line2D([], [], color="k", lw=1.2, label="l*(β, d) = argmax λ_l")
        sp = switch_points(30, int(d))
        for b in sp[sp < bmax]:
            ax.axvline(b, color="0.75", ls=":", lw=0.8)
        used["switch"] = Line2D([], [], color="0.6", ls=":", lw=0.8, label="switch points β_c(l → l+1)")
        title = f"d = {d}, n = {n}" if len(emergence) else "no emergence runs in the table"
        head = "n_clusters_linear" if d == 2 and "n_clusters_linear" in g else "n_clusters_formation"
        h = g[g[head] >= 1] if len(g) else g
        if len(h):
            cnt = h.groupby(["beta", head]).size().rename("k").reset_index()
            tot = h.groupby("beta").size()
            frac = cnt["k"] / tot.loc[cnt["beta"]].to_numpy()
            label = ("count: maxima of φ at the end of the linear phase" if head == "n_clusters_linear"
                     else "clusters at formation") + " (area ∝ frequency)"
            ax.scatter(cnt["beta"], cnt[head], s=300 * frac, color="tab:red", alpha=0.6)
            used[head] = Line2D([], [], ls="", marker="o", color="tab:red", alpha=0.6, ms=9, label=label)
            if head == "n_clusters_linear":
                at = h[h["n_clusters_formation"] >= 1].groupby("beta")["n_clusters_formation"].mean()
                ax.plot(at.index, at.to_numpy(), "_", color="tab:green", ms=12, mew=2)
                used["formation"] = Line2D([], [], ls="", marker="_", color="tab:green", ms=12, mew=2,
                                           label="mean count at formation")
            if "lin_count_mode" in g and (g["lin_count_mode"] > 0).any():
                pm = g[g["lin_count_mode"] > 0].groupby("beta")["lin_count_mode"].first()
                ax.plot(pm.index, pm.to_numpy(), "s", mfc="none", color="0.3", ms=7)
                used["lin"] = Line2D([], [], ls="", marker="s", mfc="none", color="0.3", ms=7,
                                     label="most probable count, finite-n linear theory")
            title += f", {int(tot.max())} seeds per β" + (" (count ≠ selected object)" if d > 2 else "")
        elif len(emergence):
            title += ": no runs with a count"
        if "dominant_degree" in g and (g["dominant_degree"] > 0).any():
            dd = g[g["dominant_degree"] > 0].groupby("beta")["dominant_degree"].median()
            ax.plot(dd.index, dd.to_numpy(), "x", color="tab:blue")
            used["degree"] = Line2D([], [], ls="", marker="x", color="tab:blue", label="median dominant degree")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("β")
        ax.set_ylabel("number of clusters / degree l")
    legend_below(fig, list(used.values()), fontsize=8)
    suptitle(fig, "Emergence of clusters from uniform data (BPA24): counts vs l*(β)")
    return fig


def plot_emergence(emergence: pd.DataFrame, paths) -> None:
    """Save :func:`emergence_figure` to ``paths`` (one path or several; format from the suffix)."""
    _save_and_close(emergence_figure(emergence), paths)

