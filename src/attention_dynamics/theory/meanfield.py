"""Mean-field self-attention PDE on S¹ and S²: an adaptive pseudo-spectral solver.

The equation
------------
ρ(t) is a probability density on S^{d−1} with respect to the normalised surface measure σ
(uniform ρ ≡ 1), and

    ∂_t ρ + div_S(ρ X[ρ]) = 0,

    USA (GKPR24 time, the default):  X[ρ](x) = P_x ∫ e^{β(⟨x,y⟩−1)} y ρ(y) dσ(y) = (1/β) ∇_S (K∗ρ)(x),
    USA (GLPR23/BPA24 time):         the same without the e^{−β} (time sped up by e^β),
    SA:                              X[ρ](x) = P_x ∫ e^{β⟨x,y⟩} y ρ dσ / ∫ e^{β⟨x,y⟩} ρ dσ
                                             = (1/β) ∇_S log (K∗ρ)(x)   (no time convention),

with K(t) = e^{β(t−1)} and P_x(y) = y − ⟨x,y⟩x. Linearised at ρ ≡ 1, a degree-l
perturbation grows at λ_l(β, d) (:func:`attention_dynamics.theory.gegenbauer.growth_rate`).
USA is the gradient ascent of E(ρ) = ∫∫ e^{β(⟨x,y⟩−1)} ρ(x)ρ(y) dσ dσ, so E(t) is
non-decreasing (for SA too: dE/dt = 2∫ρ|∇G|²/(βG) dσ ≥ 0).

Space: :class:`~attention_dynamics.theory.meanfield_circle.CircleSpectral` (d = 2, Fourier)
and :class:`~attention_dynamics.theory.meanfield_sphere.SphereSpectral` (d = 3, spherical
harmonics through ducc0.sht); both are the exact Galerkin truncation for USA (3/2-rule
dealiasing), so mass is conserved to round-off and dE/dt ≥ 0 holds for the semi-discrete
system. Time: an adaptive explicit Runge–Kutta method of scipy (DOP853 by default) on the
real-packed spectral coefficients.

Stiffness (measured with ``benchmarks/meanfield_speed.py --only stiffness``): the dominant
eigenvalue of the Jacobian of the semi-discrete system is +λ* (real) near the uniform state
and, once the perturbation has grown, purely imaginary (transport, ≈ i·l·max|X| over the
excited modes l). DOP853's stability region reaches 5.96 along the imaginary axis. In d = 2,
β = 5 (GLPR23 time, white noise σ = 0.01 on 32 points, run to the resolution stop) the step
DOP853 chose gave h·|ev| ≤ 1.7 at L = 100 (accuracy-limited) but 5.4–6.1 at L = 400 once
max ρ ≳ 1.2 (stability-limited: a transport CFL condition, h ≈ 6/(L max|X|)); in d = 3
(β = 5, L = 48) h·|ev| ≤ 0.64. An implicit method does not pay: on the L = 100 problem Radau
took 729 steps / 5183 RHS (0.64 s) against DOP853's 23 / 302 (0.01 s), RK45 932 RHS, LSODA
341 RHS; at L = 400 DOP853 782 RHS, RK45 1766, LSODA 1340. The stiff part is nonlinear
transport with variable coefficients, not a fixed linear operator, so an exponential or IMEX
splitting has no constant-coefficient part to absorb it. Hence explicit DOP853 by default.

Diagnostics recorded at every accepted step: mass ∫ρ dσ, the minimum of ρ on the
dealiasing grid (positivity is monitored, not enforced), the energy E, the spectral tail
‖P_{l>2L/3}ρ‖/‖ρ‖ (resolution), and the mode amplitudes ‖P_l ρ‖_{L²(σ)} for every l.
The run stops early (status ``"unresolved"``) once the tail exceeds ``max_tail``:
clusters contract exponentially, so every truncation is eventually outrun.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import integrate

from .meanfield_circle import CircleSpectral
from .meanfield_sphere import SphereSpectral

__all__ = ["MeanFieldResult", "make_discretisation", "solve_meanfield", "measured_growth_rate"]

_METHODS = {
    "DOP853": integrate.DOP853,
    "RK45": integrate.RK45,
    "RK23": integrate.RK23,
    "Radau": integrate.Radau,
    "BDF": integrate.BDF,
    "LSODA": integrate.LSODA,
}


@dataclass
class MeanFieldResult:
    """Output of :func:`solve_meanfield`.

    Per snapshot (the requested ``t_eval``, from the solver's dense output):
      ``times`` (n_snap,), ``density`` (n_snap, *grid shape) — ρ on the dealiasing grid
      (d = 2: θ_j = 2πj/M; d = 3: GL colatitudes × longitudes, see ``grid``),
      ``coefficients`` (n_snap, n_coef) complex — ρ̂_l (d = 2) or a_lm (d = 3, healpy order).
    Per accepted step (including t = 0):
      ``step_times``, ``mass``, ``min_density``, ``energy``, ``tail``,
      ``mode_amplitudes`` (n_steps + 1, L + 1) — ‖P_l ρ‖_{L²(σ)}.
    ``final_coefficients``: the state at the last accepted step (t = ``final_time``).
    Run: ``status`` ("completed", "unresolved" — tail above ``max_tail`` —, or "failed: …"),
    ``n_steps``, ``n_rhs``, ``cpu_seconds`` (process time), and the setup
    (d, beta, model, convention, l_max, kernel_band, grid shape, method, rtol, atol).
    """

    d: int
    beta: float
    model: str
    convention: str
    l_max: int
    kernel_band: int
    grid: dict
    method: str
    rtol: float
    atol: float
    times: np.ndarray
    density: np.ndarray
    coefficients: np.ndarray
    step_times: np.ndarray
    mass: np.ndarray
    min_density: np.ndarray
    energy: np.ndarray
    tail: np.ndarray
    mode_amplitudes: np.ndarray
    status: str
    n_steps: int
    n_rhs: int
    cpu_seconds: float
    final_coefficients: np.ndarray

    @property
    def final_time(self) -> float:
        return float(self.step_times[-1])

    @property
    def mass_drift(self) -> float:
        """max_t |mass(t) − mass(0)|."""
        return float(np.max(np.abs(self.mass - self.mass[0])))

    @property
    def energy_max_decrease(self) -> float:
        """max(0, −min_k (E_{k+1} − E_k)) over accepted steps: 0 for a non-decreasing energy."""
        return float(max(0.0, -np.min(np.diff(self.energy)))) if self.energy.size > 1 else 0.0


def make_discretisation(d: int, beta: float, l_max: int | None = None, model: str = "usa",
                        convention: str = "gkpr24", nthreads: int = 1):
    """:class:`CircleSpectral` for d = 2, :class:`SphereSpectral` for d = 3."""
    if d == 2:
        return CircleSpectral(beta, l_max, model, convention)
    if d == 3:
        return SphereSpectral(beta, l_max, model, convention, nthreads=nthreads)
    raise ValueError(f"the mean-field solver supports d = 2 and d = 3, got d = {d!r}")


def solve_meanfield(rho0: np.ndarray, beta: float, t_max: float, *, d: int = 2, model: str = "usa",
                    convention: str = "gkpr24", l_max: int | None = None, t_eval=None,
                    method: str = "DOP853", rtol: float = 1e-10, atol: float = 1e-14,
                    max_tail: float | None = 1e-6, max_steps: int = 1_000_000, nthreads: int = 1,
                    first_step: float | None = None) -> MeanFieldResult:
    """Integrate ∂_t ρ + div(ρ X[ρ]) = 0 from ρ(0) = ρ0 to t_max (or until unresolved).

    ``rho0``: spectral coefficients — d = 2: ρ̂_0..ρ̂_K (complex, ρ̂_l = ∫ρ e^{−ilθ} dσ, e.g. from
    :func:`~attention_dynamics.theory.meanfield_circle.uniform_plus_noise_circle`); d = 3: a_lm of
    degree ≤ K in healpy order (e.g. from :func:`~attention_dynamics.theory.meanfield_sphere.
    uniform_plus_noise_sphere`). Modes above ``l_max`` must be zero; the mass is not renormalised.
    ``model``: "usa" or "sa"; ``convention``: "gkpr24" (kernel e^{β(⟨x,y⟩−1)}) or "glpr23" (e^{β⟨x,y⟩},
    time × e^β) for USA — SA is the same flow in both papers' time, so the switch does not act on it.
    ``l_max``: truncation (default from β: see the discretisation modules). ``t_eval``: snapshot
    times (default 101 equispaced in [0, t_max]); those past an early stop are dropped.
    ``method``: a scipy ODE solver name (DOP853, RK45, RK23, Radau, BDF, LSODA); ``rtol``, ``atol``
    act on the real-packed coefficients (the mass coefficient is O(1)). ``max_tail``: stop once the
    spectral tail exceeds it (None: never). ``first_step``: passed to the solver.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")
    t_max = float(t_max)
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got {t_max!r}")
    disc = make_discretisation(d, beta, l_max, model, convention, nthreads)
    c0 = disc.coefficients_from(rho0)
    y0 = disc.pack(c0)
    t_eval = np.linspace(0.0, t_max, 101) if t_eval is None else np.asarray(t_eval, dtype=np.float64)
    if t_eval.size and (np.any(np.diff(t_eval) < 0) or t_eval[0] < 0 or t_eval[-1] > t_max):
        raise ValueError("t_eval must be sorted and lie in [0, t_max]")

    cpu0 = time.process_time()
    kw = {} if first_step is None else {"first_step": first_step}
    solver = _METHODS[method](disc.rhs, 0.0, y0, t_max, rtol=rtol, atol=atol, **kw)

    steps: dict[str, list] = {k: [] for k in ("t", "mass", "min", "energy", "tail", "amp")}

    def record(t, y):
        c = disc.unpack(y)
        steps["t"].append(t)
        steps["mass"].append(disc.mass(c))
        steps["min"].append(disc.min_density(c))
        steps["energy"].append(disc.energy(c))
        steps["tail"].append(disc.spectral_tail(c))
        steps["amp"].append(disc.mode_amplitudes(c))

    snaps_t, snaps_c = [], []
    k_eval = 0

    def snapshot(t, y):
        snaps_t.append(float(t))
        snaps_c.append(disc.unpack(np.asarray(y, dtype=np.float64)))

    record(0.0, y0)
    while k_eval < t_eval.size and t_eval[k_eval] <= 0.0:
        snapshot(t_eval[k_eval], y0)
        k_eval += 1
    status = "completed"
    n_steps = 0
    while solver.status == "running":
        msg = solver.step()
        if solver.status == "failed":
            status = f"failed: {msg}"
            break
        n_steps += 1
        t, y = solver.t, solver.y
        record(t, y)
        if k_eval < t_eval.size and t_eval[k_eval] <= t:
            dense = solver.dense_output()
            while k_eval < t_eval.size and t_eval[k_eval] <= t:
                te = t_eval[k_eval]
                snapshot(te, y if te == t else dense(te))
                k_eval += 1
        if max_tail is not None and steps["tail"][-1] > max_tail:
            status = "unresolved"
            break
        if n_steps >= max_steps:
            status = "failed: max_steps reached"
            break
    cpu = time.process_time() - cpu0

    coefs = np.array(snaps_c) if snaps_c else np.zeros((0, c0.size), dtype=np.complex128)
    dens = np.array([disc.to_grid(c) for c in snaps_c]) if snaps_c else np.zeros((0, *disc.to_grid(c0).shape))
    return MeanFieldResult(
        d=d, beta=float(beta), model=model, convention=convention, l_max=disc.l_max,
        kernel_band=disc.kernel_band, grid=disc.grid_coordinates(), method=method, rtol=rtol, atol=atol,
        times=np.array(snaps_t), density=dens, coefficients=coefs,
        step_times=np.array(steps["t"]), mass=np.array(steps["mass"]), min_density=np.array(steps["min"]),
        energy=np.array(steps["energy"]), tail=np.array(steps["tail"]),
        mode_amplitudes=np.array(steps["amp"]), status=status, n_steps=n_steps, n_rhs=int(solver.nfev),
        cpu_seconds=float(cpu), final_coefficients=disc.unpack(np.asarray(solver.y, dtype=np.float64)),
    )


def measured_growth_rate(result: MeanFieldResult, l: int, t0: float | None = None, t1: float | None = None) -> float:
    """d ln ‖P_l ρ‖ / dt measured from a solution: the least-squares slope of ln ‖P_l ρ(t)‖ over the
    accepted steps with t0 ≤ t ≤ t1 (default: the whole run)."""
    t = result.step_times
    a = result.mode_amplitudes[:, l]
    sel = np.ones(t.size, bool)
    if t0 is not None:
        sel &= t >= t0
    if t1 is not None:
        sel &= t <= t1
    slope = np.polyfit(t[sel], np.log(a[sel]), 1)[0]
    return float(slope)
