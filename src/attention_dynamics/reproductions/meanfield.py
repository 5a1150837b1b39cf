"""BPA24 with the mean-field PDE: Fig. 4 (uniform + white noise → an l*-periodic state), its β sweep,
the dominant degree of the linear phase in d = 2 and d = 3, and the solver's growth rates against λ_l.

The PDE is :func:`attention_dynamics.theory.meanfield.solve_meanfield` (Fourier on S¹, spherical
harmonics on S²); nothing here re-implements it. Three tables:

* ``meanfield`` (:data:`MEANFIELD_COLUMNS`, :func:`meanfield_rates_table`): one row per (model,
  convention, d, β, l): the growth rate of ‖P_l ρ‖ measured from the solver, started at
  1 + ε·(degree-l harmonic), against λ_l(β, d) (:func:`attention_dynamics.theory.gegenbauer.growth_rate`).
* ``meanfield_emergence`` (:data:`MEANFIELD_EMERGENCE_COLUMNS`, :func:`meanfield_noise_table`): one row
  per (d, β, seed) of BPA24's experiment — uniform density plus white noise, integrated until the
  resolution stop — with the number of peaks (d = 2) and the dominant degree at the end of the
  linear phase, next to l*(β, d) and the finite-n linear prediction.
* ``meanfield_profiles`` (:data:`MEANFIELD_PROFILE_COLUMNS`): density snapshots of some of those runs
  (long format), the data of the θ × t heat map.

Counting rules (stated in the table docs and in the figure captions)
--------------------------------------------------------------------
* ``n_peaks`` (the headline count, d = 2): the number of local maxima of the interaction potential
  φ = K∗ρ, K(u) = e^{β(cos u − 1)}, at the resolution stop — the same parameter-free rule as the
  particles' count (:func:`attention_dynamics.reproductions.selection.potential_maxima`): the
  kernel of the model does the smoothing and no level is chosen.
* ``n_arcs`` (d = 2): the number of connected arcs of {θ : ρ(θ) > ``peak_level``} (2: twice the
  uniform density) at the resolution stop (:func:`count_arcs_above`), the rule under which
  BPA24's Fig. 4 (β = 5) shows three peaks. At large β it undercounts: the resolution stop comes
  when the first cluster has contracted, and slower ones have not yet risen above the level
  (measured, L = 512, 20 seeds: the mode of ``n_arcs`` is 3–6 for l* = 7–9 at β = 25–40, while the
  mode of ``n_peaks`` is l* at β = 2, 5, 8, 12, 18, 25, 32, 40).
* ``dominant_degree``: argmax_l S_l at the first time max_{1≤l≤l_scan} S_l reaches ``power_level``,
  with S_l = ‖P_l ρ‖²/N_l the power per degree-l harmonic (N_l = 2 in d = 2, 2l + 1 in d = 3): the
  particles' definition (:func:`attention_dynamics.reproductions.emergence.formation`) applied to
  the density. The noise has E S_l(0) = 1/n_eff for every seeded degree (n_eff = noise_points/σ²
  in d = 2, ((noise_degree + 1)² − 1)/σ² in d = 3) and the PDE is exactly linear to first order,
  so :func:`attention_dynamics.reproductions.selection.linear_selection` at n = n_eff predicts its
  distribution over seeds with no free parameter.

Resolution: clusters contract exponentially, so every truncation L is eventually outrun; runs stop
when the spectral tail exceeds ``max_tail`` (status "unresolved": the expected end, not a failure).
In d = 3 the harmonics of the pattern fill the spectrum quickly (at β = 40, L = 120 a tail of 1e-6
is reached while max_l S_l ≈ 1e-3), hence a looser ``max_tail_sphere`` (1e-3: a relative truncation
effect of that order, irrelevant for an argmax over degrees) and a ``power_level`` of 0.002 (in
d = 2 a ±9 % modulation of the density; reached before the stop in every run we made).

The authors' notebook evaluates the interaction integral as a cross-correlation where the
equation has a convolution; we use the convolution, so the positions of the peaks in our heat
map differ from their figure while the selected mode (three peaks at β = 5) agrees.
"""
from __future__ import annotations

import time as _time

import numpy as np
import pandas as pd

from ..theory.gegenbauer import growth_rate, l_star
from ._figures import _fit_title, _frequency_scatter, _lstar_staircase, _plt, _save_and_close
from .selection import _count_circle_maxima, _degree_multiplicity, _dist_str, _grid_size, default_l_max

__all__ = ["MEANFIELD_COLUMNS", "MEANFIELD_EMERGENCE_COLUMNS", "MEANFIELD_PROFILE_COLUMNS",
           "count_arcs_above", "potential_peaks_circle", "noise_initial_data", "effective_n", "degree_powers",
           "linear_phase_end", "single_mode_growth_rate", "meanfield_rates_table", "meanfield_noise_run",
           "meanfield_noise_table", "meanfield_heatmap_figure", "plot_meanfield_heatmap", "meanfield_peaks_figure",
           "plot_meanfield_peaks"]


# --------------------------------------------------------------------------------------------------
# Counting rules
# --------------------------------------------------------------------------------------------------

def count_arcs_above(rho: np.ndarray, level: float = 2.0) -> int:
    """Number of connected arcs (circularly) of {θ : ρ(θ) > level} for samples ρ on a uniform grid of S¹.

    0 when ρ ≤ level everywhere, 1 when ρ > level everywhere."""
    above = np.asarray(rho) > level
    if not above.any():
        return 0
    if above.all():
        return 1
    a = np.roll(above, -int(np.argmin(above)))  # start on a point below the level
    return int(np.sum(a[1:] & ~a[:-1]))


def potential_on_circle_from_coefficients(c: np.ndarray, beta: float, m: int | None = None):
    """φ = K∗ρ on a uniform grid of m points: φ̂_l = ive(l, β) ρ̂_l (kernel K(u) = e^{β(cos u − 1)}).

    ``c`` = ρ̂_0..ρ̂_L. The kernel is truncated where ive(l, β) < 1e-15 ive(0, β)
    (:func:`attention_dynamics.engine.dynamics.circle_kernel_modes`); m ≥ 16 points per period of
    its highest mode (the grid of :func:`attention_dynamics.reproductions.selection.potential_on_circle`).
    Returns ``(grid, phi)``."""
    from ..engine.dynamics import circle_kernel_modes

    w = circle_kernel_modes(beta)
    c = np.asarray(c, dtype=np.complex128)
    k = min(w.size, c.size)
    m = _grid_size(w.size) if m is None else int(m)
    h = np.zeros(m // 2 + 1, dtype=np.complex128)
    h[:k] = w[:k] * c[:k]
    return 2 * np.pi * np.arange(m) / m, np.fft.irfft(h, m) * m


def potential_peaks_circle(c: np.ndarray, beta: float, floor: float = 1e-9) -> int:
    """Number of local maxima of φ = K∗ρ (:func:`potential_on_circle_from_coefficients`) above
    ``floor``·max φ: the particles' count rule (:func:`~.selection.potential_maxima`) for a density."""
    _, phi = potential_on_circle_from_coefficients(c, beta)
    return int(_count_circle_maxima(phi, floor * phi.max()))


# --------------------------------------------------------------------------------------------------
# Initial data, degree powers, end of the linear phase
# --------------------------------------------------------------------------------------------------

def noise_initial_data(d: int, sigma: float, noise: int, rng: np.random.Generator) -> np.ndarray:
    """BPA24's initial density 1 + white noise of standard deviation σ.

    d = 2: iid N(0, σ²) on ``noise`` equispaced points, trigonometric interpolant (modes ≤ ⌊(noise−1)/2⌋;
    :func:`~attention_dynamics.theory.meanfield_circle.uniform_plus_noise_circle`). d = 3: isotropic
    noise of pointwise variance σ² band-limited to degree ``noise``
    (:func:`~attention_dynamics.theory.meanfield_sphere.uniform_plus_noise_sphere`)."""
    if d == 2:
        from ..theory.meanfield_circle import uniform_plus_noise_circle

        return uniform_plus_noise_circle(sigma, noise, rng)
    if d == 3:
        from ..theory.meanfield_sphere import uniform_plus_noise_sphere

        return uniform_plus_noise_sphere(sigma, noise, rng)
    raise ValueError(f"the mean-field solver supports d = 2 and 3, got {d!r}")


def effective_n(d: int, sigma: float, noise: int) -> float:
    """n_eff = 1/E S_l(0) for the seeded degrees: noise/σ² (d = 2), ((noise + 1)² − 1)/σ² (d = 3).

    With this n the initial degree powers have the law of n iid uniform particles' (Exp(1)/n in
    d = 2, Gamma(N_l/2, 2/N_l)/n in d = 3), so :func:`~.selection.linear_selection` applies."""
    if d == 2:
        return float(noise) / sigma**2
    return float((noise + 1) ** 2 - 1) / sigma**2


def seeded_degrees(d: int, noise: int) -> int:
    """Highest degree carrying initial noise: ⌊(noise − 1)/2⌋ (d = 2), noise (d = 3)."""
    return (int(noise) - 1) // 2 if d == 2 else int(noise)


def degree_powers(mode_amplitudes: np.ndarray, d: int) -> np.ndarray:
    """S_l = ‖P_l ρ‖²/N_l for l = 1..L from ``mode_amplitudes`` (…, L + 1) = ‖P_l ρ‖ (l = 0..L).

    The mean power per degree-l harmonic, the density version of the particles' S_l
    (:func:`~.selection.degree_power`): |ρ̂_l|² in d = 2, Σ_m |a_lm|²/(4π(2l + 1)) in d = 3."""
    a = np.asarray(mode_amplitudes, dtype=np.float64)
    ls = np.arange(1, a.shape[-1])
    return a[..., 1:] ** 2 / _degree_multiplicity(ls, d)


def linear_phase_end(t: np.ndarray, power: np.ndarray, level: float) -> tuple[float, int, float]:
    """End of the linear phase: the first time max_l S_l reaches ``level``.

    ``t`` (k,) accepted-step times, ``power`` (k, L) = S_1..S_L at those times. The crossing is
    located by linear interpolation of ln max_l S_l between the two steps around it; the dominant
    degree is argmax_l S_l at the first step at or above the level. Returns ``(t_lin, degree, power)``,
    or ``(nan, −1, nan)`` when the level is never reached."""
    top = power.max(axis=1)
    hit = np.flatnonzero(top >= level)
    if not hit.size:
        return float("nan"), -1, float("nan")
    k = int(hit[0])
    if k == 0:
        t_lin = float(t[0])
    else:
        a, b = np.log(top[k - 1]), np.log(top[k])
        t_lin = float(t[k - 1] + (t[k] - t[k - 1]) * (np.log(level) - a) / (b - a))
    return t_lin, int(np.argmax(power[k])) + 1, float(top[k])


def _rate_convention(model: str, convention: str) -> str:
    return "sa" if model == "sa" else convention


# --------------------------------------------------------------------------------------------------
# Growth rates from the solver
# --------------------------------------------------------------------------------------------------

MEANFIELD_COLUMNS = {
    "model": "usa or sa (the PDE of that particle model)",
    "convention": "time convention of the rates: glpr23 (kernel e^{β⟨x,y⟩}, BPA24) or gkpr24 (e^{β(⟨x,y⟩−1)}); "
                  "sa for the SA model (no convention)",
    "d": "dimension: densities on S^{d−1} (2: circle, Fourier; 3: sphere, spherical harmonics)",
    "beta": "inverse temperature β",
    "l": "degree of the initial perturbation and of the measured mode",
    "l_star": "l*(β, d) = argmax_l λ_l(β, d)",
    "growth_rate": "measured: least-squares slope of ln ‖P_l ρ(t)‖ over the solver's accepted steps in [t0, t1], "
                   "started at ρ = 1 + ε·(degree-l harmonic) (d = 2: ε e^{ilθ} + c.c.; d = 3: m = 0, 1, l components)",
    "growth_rate_theory": "λ_l(β, d) in this convention (Bessel closed form, attention_dynamics.theory.gegenbauer)",
    "rel_error": "growth_rate / growth_rate_theory − 1",
    "t0": "start of the fit window (0)",
    "t1": "end of the fit window: 1/λ_l (the mode grows by a factor e)",
    "epsilon": "amplitude ε of the initial perturbation (nonlinear corrections are O(ε) relative in d = 3 for even "
               "l, O(ε²) otherwise)",
    "l_max": "truncation degree of the solver (d = 2: the default max(64, 4 L_K(β)); d = 3: 2l + 2)",
    "rtol": "relative tolerance of DOP853 (absolute tolerance 1e-20)",
    "n_steps": "accepted solver steps",
    "status": "completed, or the solver's failure message",
    "cpu_seconds": "CPU seconds of the solve",
}


def single_mode_growth_rate(d: int, beta: float, l: int, model: str = "usa", convention: str = "glpr23", *,
                            epsilon: float = 1e-7, rtol: float = 1e-13) -> dict:
    """One row of the ``meanfield`` table: start at 1 + ε·(degree-l harmonic), integrate to t1 = 1/λ_l,
    fit the slope of ln ‖P_l ρ‖ (:func:`~attention_dynamics.theory.meanfield.measured_growth_rate`).

    Measured (``benchmarks/meanfield_speed.py``; β ∈ {1, 5, 12, 30}, l ∈ {1, l*, l*+1, 2l*}, three
    model/convention pairs): |rel_error| ≤ 3e-13 in d = 2, ≤ 1.8e-8 in d = 3 (the O(ε) Gaunt term)."""
    from ..theory.meanfield import measured_growth_rate, solve_meanfield
    from ..theory.meanfield_sphere import alm_index

    beta, l = float(beta), int(l)
    lam = float(growth_rate(beta, l, d, _rate_convention(model, convention)))
    if d == 2:
        c = np.zeros(l + 1, dtype=np.complex128)
        c[0], c[l] = 1.0, epsilon * (0.6 - 0.8j)
        l_max = None
    elif d == 3:
        c = np.zeros((l + 1) * (l + 2) // 2, dtype=np.complex128)
        c[0] = np.sqrt(4 * np.pi)
        c[alm_index(l, 0, l)] = epsilon
        c[alm_index(l, 1, l)] = epsilon * (0.3 + 0.4j)
        c[alm_index(l, l, l)] += epsilon * (-0.5 + 0.2j)
        l_max = 2 * l + 2
    else:
        raise ValueError(f"the mean-field solver supports d = 2 and 3, got {d!r}")
    t1 = 1.0 / lam
    r = solve_meanfield(c, beta, t1, d=d, model=model, convention=convention, l_max=l_max, rtol=rtol,
                        atol=1e-20, t_eval=[], max_tail=None)
    meas = measured_growth_rate(r, l, 0.0, t1) if r.status == "completed" else float("nan")
    return dict(model=model, convention=_rate_convention(model, convention), d=int(d), beta=beta, l=l,
                l_star=int(l_star(beta, d)), growth_rate=meas, growth_rate_theory=lam, rel_error=meas / lam - 1.0,
                t0=0.0, t1=t1, epsilon=float(epsilon), l_max=int(r.l_max), rtol=float(rtol), n_steps=int(r.n_steps),
                status=r.status, cpu_seconds=float(r.cpu_seconds))


def rate_degrees(beta: float, d: int, degrees: int = 0) -> list[int]:
    """Degrees of the rates table: 1..``degrees``, or 1..2l*(β, d) + 1 when ``degrees`` is 0."""
    top = int(degrees) if degrees else 2 * int(l_star(beta, d)) + 1
    return list(range(1, top + 1))


def meanfield_rates_table(d: int, betas, models=("usa",), *, convention: str = "glpr23", degrees: int = 0,
                          epsilon: float = 1e-7, rtol: float = 1e-13, log=None) -> pd.DataFrame:
    """:func:`single_mode_growth_rate` for every (model, β, l) of one dimension."""
    rows = []
    for model in models:
        for beta in betas:
            for l in rate_degrees(beta, d, degrees):
                row = single_mode_growth_rate(d, beta, l, model, convention, epsilon=epsilon, rtol=rtol)
                rows.append(row)
                if log is not None:
                    print(f"d={d} {model}/{row['convention']} beta={beta:g} l={l}: measured {row['growth_rate']:.12g} "
                          f"theory {row['growth_rate_theory']:.12g} rel {row['rel_error']:.2e} "
                          f"({row['n_steps']} steps, {row['cpu_seconds']:.2f} s)", file=log, flush=True)
    return pd.DataFrame(rows).reindex(columns=list(MEANFIELD_COLUMNS))


# --------------------------------------------------------------------------------------------------
# BPA24 Fig. 4 and its β sweep: uniform + noise → resolution stop
# --------------------------------------------------------------------------------------------------

MEANFIELD_EMERGENCE_COLUMNS = {
    "model": "usa or sa",
    "convention": "time convention of t (glpr23: BPA24's; gkpr24; sa)",
    "d": "dimension (2: circle, 3: sphere)",
    "beta": "inverse temperature β",
    "seed": "seed index of the noise (stream of {d, sigma, noise}: the same noise at every β)",
    "l_star": "l*(β, d) = argmax_l λ_l(β, d)",
    "lambda_star": "λ_{l*} in this convention",
    "sigma": "standard deviation σ of the white noise",
    "noise": "d = 2: number of grid points carrying iid noise; d = 3: highest degree of the isotropic noise",
    "n_eff": "1/E S_l(0) for the seeded degrees (noise/σ² in d = 2, ((noise+1)²−1)/σ² in d = 3): the number of "
             "iid uniform particles whose initial degree powers have the same law",
    "l_max": "truncation degree of the solver",
    "max_tail": "the run stops once the spectral tail ‖P_{l>2L/3} ρ‖/‖ρ‖ exceeds this",
    "t_max": "horizon: horizon/λ* (reached only if the tail never exceeds max_tail)",
    "status": "unresolved (stopped by the tail: the expected end, clusters outrun every truncation), "
              "completed (t_max reached), or failed: … / error: …",
    "t_stop": "time of the last accepted step (the resolution stop)",
    "lambda_t_stop": "λ* · t_stop",
    "n_peaks": "d = 2: number of local maxima of the potential φ = K∗ρ (K = e^{β(cos−1)}) at t_stop — the particles' "
               "count rule; −1 in d = 3",
    "n_arcs": "d = 2: number of connected arcs of {ρ > peak_level} at t_stop (ρ on 4096 points); −1 in d = 3",
    "peak_level": "density level of n_arcs (in units of the uniform density)",
    "max_density": "max ρ at t_stop (d = 2: on 4096 points; d = 3: on the solver's grid)",
    "min_density": "min over the run of min ρ on the solver's grid (positivity is monitored, not enforced)",
    "mass_drift": "max_t |∫ρ − ∫ρ(0)|",
    "energy_max_decrease": "largest decrease of the energy between accepted steps (0 for a non-decreasing energy)",
    "power_level": "max_l S_l that ends the linear phase",
    "t_dominant": "end of the linear phase: first time max_{1≤l≤l_scan} S_l reaches power_level (NaN if never)",
    "lambda_t_dominant": "λ* · t_dominant",
    "dominant_degree": "argmax_l S_l at t_dominant (S_l = ‖P_l ρ‖²/N_l, power per degree-l harmonic); −1 if the "
                       "level was not reached before t_stop",
    "power_dominant": "max_l S_l at the step that first reached the level",
    "l_scan": "degrees scanned for the dominant degree: 1..min(2⌈√(2β)⌉ + 6, highest seeded degree)",
    "p_lin_degree_l_star": "finite-n linear theory at n = n_eff (linear_selection): P(dominant_degree = l*)",
    "lin_degree_mode": "finite-n linear theory at n = n_eff: the most probable dominant degree",
    "lin_degree_dist": "finite-n linear theory at n = n_eff: distribution of dominant_degree, 'l:p;…' (p ≥ 0.005)",
    "n_steps": "accepted solver steps",
    "cpu_seconds": "CPU seconds of the solve",
}

MEANFIELD_PROFILE_COLUMNS = {
    "model": "usa or sa",
    "convention": "time convention of t",
    "d": "dimension (2: circle, 3: sphere)",
    "beta": "inverse temperature β",
    "seed": "seed index of the noise",
    "t": "time (the snapshots t_k = k·t_max/(n_times − 1) before the stop, then t_stop itself)",
    "final": "True for the snapshot at t_stop",
    "theta": "d = 2: angle θ ∈ [0, 2π) (profile_theta equispaced points); d = 3: colatitude ϑ ∈ (0, π) "
             "(profile_lat midpoints)",
    "phi": "d = 3: longitude φ ∈ [0, 2π) (2·profile_lat equispaced); NaN in d = 2",
    "density": "ρ(t, θ[, φ]) with respect to the normalised surface measure (uniform density 1)",
}


def _noise_rng(d: int, sigma: float, noise: int, seed: int, base_seed: int) -> np.random.Generator:
    """Stream of (noise law, seed index): independent of β, model and solver settings."""
    from ..pipeline.config import digest

    key = {"experiment": "meanfield_noise", "d": int(d), "sigma": float(sigma), "noise": int(noise)}
    h = int(digest(key)[:16], 16)
    return np.random.default_rng(np.random.SeedSequence(entropy=int(base_seed), spawn_key=(h, int(seed))))


def _profile_frame(result, times, coefs, d: int, n_theta: int, n_lat: int, final_flags) -> pd.DataFrame:
    """Long-format density snapshots (theta[, phi], density) at the given coefficient vectors."""
    if d == 2:
        from ..theory.meanfield_circle import circle_density

        th = 2 * np.pi * np.arange(int(n_theta)) / int(n_theta)
        dens = np.array([circle_density(c, th) for c in coefs]).reshape(len(coefs), -1)
        theta = np.tile(th, len(coefs))
        phi = np.full(theta.size, np.nan)
    else:
        from ..theory.meanfield_sphere import sphere_density

        lat = (np.arange(int(n_lat)) + 0.5) * np.pi / int(n_lat)
        lon = 2 * np.pi * np.arange(2 * int(n_lat)) / (2 * int(n_lat))
        tt, pp = np.meshgrid(lat, lon, indexing="ij")
        pts = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), np.cos(tt)], axis=-1).reshape(-1, 3)
        dens = np.array([sphere_density(c, result.l_max, pts) for c in coefs]).reshape(len(coefs), -1)
        theta = np.tile(tt.ravel(), len(coefs))
        phi = np.tile(pp.ravel(), len(coefs))
    per = dens.shape[1]
    return pd.DataFrame({"t": np.repeat(np.asarray(times, np.float64), per),
                         "final": np.repeat(np.asarray(final_flags, bool), per),
                         "theta": theta, "phi": phi, "density": dens.ravel()})


def meanfield_noise_run(beta: float, d: int, seed: int, *, base_seed: int = 0, model: str = "usa",
                        convention: str = "glpr23", sigma: float = 0.01, noise: int | None = None,
                        l_max: int | None = None, max_tail: float | None = None, horizon: float = 10.0,
                        power_level: float = 0.002, peak_level: float = 2.0, n_times: int = 101,
                        profile: bool = False, profile_theta: int = 256, profile_lat: int = 24,
                        prediction: dict | None = None) -> tuple[dict, pd.DataFrame | None]:
    """One row of ``meanfield_emergence`` (and, with ``profile``, its density snapshots).

    Initial data :func:`noise_initial_data` (``noise`` default: 64 grid points in d = 2, degree 16 in
    d = 3), integrated with :func:`~attention_dynamics.theory.meanfield.solve_meanfield` up to
    t_max = horizon/λ* or the resolution stop (``max_tail``; default 1e-6 in d = 2, 1e-3 in d = 3;
    ``l_max`` default 512 in d = 2 — BPA24's —, the solver's max(32, 2 L_K(β)) in d = 3, raised to
    ⌈3·noise/2⌉ + 1 so that the initial noise lies below the tail band). The counts are read as the
    module docstring states. ``prediction``: the ``p_lin_*``/``lin_*`` columns at n_eff (computed here
    when not given)."""
    from ..theory.meanfield import solve_meanfield

    d, beta = int(d), float(beta)
    noise = (64 if d == 2 else 16) if noise is None else int(noise)
    if max_tail is None:
        max_tail = 1e-6 if d == 2 else 1e-3
    if d == 2:
        l_max = 512 if not l_max else int(l_max)
    else:
        from ..theory.meanfield_sphere import default_sphere_l_max

        l_max = int(l_max) if l_max else max(default_sphere_l_max(beta), -(-3 * noise // 2) + 1)
    conv = _rate_convention(model, convention)
    ls = int(l_star(beta, d))
    lam = float(growth_rate(beta, ls, d, conv))
    n_eff = effective_n(d, sigma, noise)
    l_scan = min(default_l_max(beta), seeded_degrees(d, noise))
    if prediction is None:
        prediction = noise_prediction_columns(beta, d, n_eff, power_level, l_scan)
    t_max = float(horizon) / lam
    row = dict(model=model, convention=conv, d=d, beta=beta, seed=int(seed), l_star=ls, lambda_star=lam,
               sigma=float(sigma), noise=noise, n_eff=n_eff, l_max=l_max, max_tail=float(max_tail), t_max=t_max,
               peak_level=float(peak_level), power_level=float(power_level), l_scan=int(l_scan), **prediction)
    rho0 = noise_initial_data(d, sigma, noise, _noise_rng(d, sigma, noise, seed, base_seed))
    t_eval = np.linspace(0.0, t_max, int(n_times)) if profile else []
    try:
        r = solve_meanfield(rho0, beta, t_max, d=d, model=model, convention=convention, l_max=l_max,
                            t_eval=t_eval, max_tail=max_tail)
    except Exception as exc:  # recorded, never fatal for the sweep
        row.update(status=f"error: {type(exc).__name__}: {exc}", t_stop=np.nan, lambda_t_stop=np.nan, n_peaks=-1,
                   n_arcs=-1, max_density=np.nan, min_density=np.nan, mass_drift=np.nan, energy_max_decrease=np.nan,
                   t_dominant=np.nan, lambda_t_dominant=np.nan, dominant_degree=-1, power_dominant=np.nan,
                   n_steps=0, cpu_seconds=0.0)
        return row, None
    power = degree_powers(r.mode_amplitudes, d)[:, :l_scan]
    t_lin, dom, p_dom = linear_phase_end(r.step_times, power, power_level)
    cf = r.final_coefficients
    if d == 2:
        from ..theory.meanfield_circle import circle_density

        rho = circle_density(cf, 2 * np.pi * np.arange(4096) / 4096)
        n_peaks, n_arcs, rho_max = potential_peaks_circle(cf, beta), count_arcs_above(rho, peak_level), rho.max()
    else:
        from ..theory.meanfield import make_discretisation

        n_peaks, n_arcs = -1, -1
        rho_max = float(make_discretisation(3, beta, l_max, model, convention).to_grid(cf).max())
    row.update(status=r.status, t_stop=r.final_time, lambda_t_stop=lam * r.final_time, n_peaks=int(n_peaks),
               n_arcs=int(n_arcs), max_density=float(rho_max), min_density=float(r.min_density.min()),
               mass_drift=r.mass_drift, energy_max_decrease=r.energy_max_decrease, t_dominant=t_lin,
               lambda_t_dominant=lam * t_lin, dominant_degree=int(dom), power_dominant=p_dom,
               n_steps=int(r.n_steps), cpu_seconds=float(r.cpu_seconds))
    prof = None
    if profile:
        keep = r.times < r.final_time
        times = np.concatenate([r.times[keep], [r.final_time]])
        coefs = list(r.coefficients[keep]) + [cf]
        prof = _profile_frame(r, times, coefs, d, profile_theta, profile_lat, [False] * int(keep.sum()) + [True])
        for k, v in dict(model=model, convention=conv, d=d, beta=beta, seed=int(seed)).items():
            prof.insert(0, k, v)
        prof = prof.reindex(columns=list(MEANFIELD_PROFILE_COLUMNS))
    return row, prof


def noise_prediction_columns(beta: float, d: int, n_eff: float, power_level: float, l_scan: int) -> dict:
    """``p_lin_degree_l_star``, ``lin_degree_mode``, ``lin_degree_dist``: :func:`~.selection.linear_selection`
    at n = n_eff, reading rule max_{l ≤ l_scan} S_l = power_level (fixed seed: deterministic)."""
    from .selection import linear_selection

    deg = linear_selection(beta, n_eff, d, power_level=power_level, l_max=int(l_scan))["degree"]
    ls = int(l_star(beta, d))
    return dict(p_lin_degree_l_star=float(deg.get(ls, 0.0)), lin_degree_mode=int(deg.idxmax()),
                lin_degree_dist=_dist_str(deg))


def meanfield_noise_table(betas, seeds, d: int, *, profile_betas=(), profile_seeds: int = 0, log=None,
                          **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`meanfield_noise_run` for every (β, seed) of one dimension; ``seeds`` is a count or a list.

    Density snapshots are kept for β in ``profile_betas`` and the first ``profile_seeds`` seed
    indices. Returns ``(meanfield_emergence rows, meanfield_profiles rows)``."""
    seeds = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    rows, profs = [], []
    keep_b = {float(b) for b in profile_betas}
    for beta in betas:
        beta = float(beta)
        first = None
        for s in seeds:
            pred = None if first is None else {k: first[k] for k in
                                               ("p_lin_degree_l_star", "lin_degree_mode", "lin_degree_dist")}
            row, prof = meanfield_noise_run(beta, d, s, profile=(beta in keep_b and s < profile_seeds),
                                            prediction=pred, **kwargs)
            first = first or row
            rows.append(row)
            if prof is not None:
                profs.append(prof)
            if log is not None:
                print(f"d={d} beta={beta:g} seed={s} l*={row['l_star']}: {row['status']} at λ*t = "
                      f"{row['lambda_t_stop']:.3g}, peaks {row['n_peaks']} (arcs above {row['peak_level']:g}: "
                      f"{row['n_arcs']}), dominant degree {row['dominant_degree']} at λ*t = "
                      f"{row['lambda_t_dominant']:.3g} (theory at n_eff: {row['lin_degree_dist']}), "
                      f"{row['n_steps']} steps, {row['cpu_seconds']:.2f} s", file=log, flush=True)
    df = pd.DataFrame(rows).reindex(columns=list(MEANFIELD_EMERGENCE_COLUMNS))
    pr = (pd.concat(profs, ignore_index=True) if profs else
          pd.DataFrame({c: pd.Series(dtype="float64") for c in MEANFIELD_PROFILE_COLUMNS}))
    return df, pr.reindex(columns=list(MEANFIELD_PROFILE_COLUMNS))


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------

def meanfield_heatmap_figure(profiles: pd.DataFrame, emergence: pd.DataFrame, *, beta: float, seed: int = 0):
    """θ × t heat map of ρ (d = 2, one (β, seed): BPA24's Fig. 4) and the profile at the resolution stop, with
    l* and both peak counts (returns the matplotlib figure)."""
    from .phase_diagram import _cell_edges

    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11.0, 4.6), width_ratios=[2.2, 1.0], layout="constrained", dpi=130)
    p = (profiles[(profiles["d"] == 2) & np.isclose(profiles["beta"], beta) & (profiles["seed"] == seed)]
         if len(profiles) else profiles)
    snaps = p[~p["final"].astype(bool)] if len(p) else p
    if not len(snaps):
        ax.text(0.5, 0.5, f"no d = 2 density snapshots at β = {beta:g}, seed {seed}", ha="center",
                transform=ax.transAxes, color="0.4")
        ax2.set_visible(False)
        return fig
    grid = snaps.pivot_table(index="t", columns="theta", values="density")
    th, ts = grid.columns.to_numpy(float), grid.index.to_numpy(float)
    mesh = ax.pcolormesh(_cell_edges(th), _cell_edges(ts), grid.to_numpy(), shading="flat", cmap="magma")
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label("density ρ (uniform = 1)", fontsize=9)
    ax.set_xlabel("θ")
    ax.set_ylabel(f"t ({p['convention'].iloc[0]} time)")
    ax.set_xticks(np.pi * np.array([0, 0.5, 1, 1.5, 2]), ["0", "π/2", "π", "3π/2", "2π"])
    fin = p[p["final"].astype(bool)].sort_values("theta")
    ax2.plot(fin["theta"], fin["density"], color="k", lw=1)
    ax2.set_xlabel("θ")
    ax2.set_ylabel("ρ at the resolution stop")
    ax2.set_xticks(np.pi * np.array([0, 1, 2]), ["0", "π", "2π"])
    e = (emergence[(emergence["d"] == 2) & np.isclose(emergence["beta"], beta) & (emergence["seed"] == seed)]
         if len(emergence) else emergence)
    title = f"d = 2, β = {beta:g}, seed {seed}: density against angle and time"
    if len(e):
        r = e.iloc[0]
        ax2.axhline(r["peak_level"], color="tab:red", ls=":", lw=1)
        ax2.text(0.02, r["peak_level"], f" ρ = {r['peak_level']:g}", color="tab:red", fontsize=7, va="bottom",
                 transform=ax2.get_yaxis_transform())
        _fit_title(ax2, f"t = {r['t_stop']:.3g}: {int(r['n_peaks'])} peaks (maxima of K∗ρ); "
                        f"{int(r['n_arcs'])} arcs of ρ > {r['peak_level']:g}; l* = {int(r['l_star'])}", 8)
        title = (f"BPA24 Fig. 4: d = 2, β = {beta:g}, σ = {r['sigma']:g} on {int(r['noise'])} points, "
                 f"L = {int(r['l_max'])}, seed {seed}")
    _fit_title(ax, title, 9)
    return fig


def plot_meanfield_heatmap(profiles: pd.DataFrame, emergence: pd.DataFrame, paths, *, beta: float,
                           seed: int = 0) -> None:
    """Save :func:`meanfield_heatmap_figure` to ``paths`` (one path or several; format from the suffix)."""
    _save_and_close(meanfield_heatmap_figure(profiles, emergence, beta=beta, seed=seed), paths)


def meanfield_peaks_figure(emergence: pd.DataFrame):
    """Peaks (d = 2) and dominant degrees (each d) of the noise runs over the l*(β) staircase, marker area ∝
    frequency over the seeds; one legend below the panels (returns the matplotlib figure)."""
    from matplotlib.lines import Line2D

    from ..analysis.figstyle import legend_below, suptitle

    plt = _plt()
    ds = sorted(int(d) for d in emergence["d"].unique()) if len(emergence) else [2]
    panels = ([("peaks", 2)] if 2 in ds else []) + [("degree", d) for d in ds]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False, layout="constrained",
                             dpi=130)
    used: dict[str, Line2D] = {}
    for ax, (kind, d) in zip(axes[0], panels):
        g = emergence[emergence["d"] == d] if len(emergence) else emergence
        bmax = float(g["beta"].max()) * 1.05 if len(g) else 40.0
        _lstar_staircase(ax, d, bmax)
        used["l*"] = Line2D([], [], color="k", lw=1.1, label="l*(β, d) = argmax λ_l")
        used["switch"] = Line2D([], [], color="0.7", ls=":", lw=0.8, label="switch points of l*")
        seeds = int(g.groupby("beta").size().max()) if len(g) else 0
        if kind == "peaks":
            _frequency_scatter(ax, g, "n_peaks", "tab:red", None)
            used["peaks"] = Line2D([], [], ls="", marker="o", color="tab:red", alpha=0.55, ms=8,
                                   label="peaks: maxima of K∗ρ at the resolution stop (area ∝ frequency)")
            arcs = g[g["n_arcs"] >= 0].groupby("beta")["n_arcs"].mean() if len(g) else []
            if len(arcs):
                ax.plot(arcs.index, arcs.to_numpy(), "_", color="tab:green", ms=9, mew=1.8)
                used["arcs"] = Line2D([], [], ls="", marker="_", color="tab:green", ms=9, mew=1.8,
                                      label=f"mean number of arcs of ρ > {g['peak_level'].iloc[0]:g}")
            title, ylabel = f"d = 2: peaks at the resolution stop ({seeds} seeds per β)", "number of peaks"
        else:
            _frequency_scatter(ax, g, "dominant_degree", "tab:blue", None)
            used["degree"] = Line2D([], [], ls="", marker="o", color="tab:blue", alpha=0.55, ms=8,
                                    label="dominant degree at the end of the linear phase (area ∝ frequency)")
            pm = g[g["lin_degree_mode"] > 0].groupby("beta")["lin_degree_mode"].first() if len(g) else []
            if len(pm):
                ax.plot(pm.index, pm.to_numpy(), "s", mfc="none", color="0.3", ms=6)
                used["mode"] = Line2D([], [], ls="", marker="s", mfc="none", color="0.3", ms=6,
                                      label="most probable degree, linear theory at n_eff")
            title, ylabel = f"d = {d}: dominant degree ({seeds} seeds per β)", "degree l"
        if not len(g):
            title = f"d = {d}: no runs"
        ax.set_xlabel("β")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
        _fit_title(ax, title, 9)
    legend_below(fig, list(used.values()), fontsize=8)
    suptitle(fig, "BPA24 with the mean-field PDE: uniform density + white noise, counts against l*(β)")
    return fig


def plot_meanfield_peaks(emergence: pd.DataFrame, paths) -> None:
    """Save :func:`meanfield_peaks_figure` to ``paths`` (one path or several; format from the suffix)."""
    _save_and_close(meanfield_peaks_figure(emergence), paths)
