"""Particles converge to the mean-field PDE on S¹ (issue 13): distance table and fitted rate.

    python benchmarks/meanfield_convergence.py            # n ∈ {1e3, 1e4, 1e5}, 16 seeds (~1 min CPU)
    python benchmarks/meanfield_convergence.py --quick    # n ∈ {1e3, 1e4}, 3 seeds

Setup: USA, GKPR24 time, β = 5 (l* = 3, λ₃ = 0.1253), initial density
ρ₀(θ) = 1 + 0.2 cos 3θ + 0.1 sin 2θ (w.r.t. dθ/2π). For each n and seed, n iid angles are drawn
from ρ₀ (exact rejection sampling) and the particle system is integrated with
``attention_dynamics.engine.dynamics.velocity_circle`` (O(nL) Fourier field) by scipy's DOP853 in the
angles (rtol 1e-10, atol 1e-12). The PDE is solved once (L = 400, rtol 1e-12). At each time,
the empirical measure μ_n(t) is compared with ρ(t) in

    ‖μ − ρ‖_{H^{-1}} = (Σ_{l∈ℤ} (1 + l²)^{-1} |μ̂_l − ρ̂_l|²)^{1/2}   (exact, no truncation), and
    W₁(μ, ρ) on the circle (arc length; min_a ∫|F_μ − F_ρ − a| dθ).

The times cover the linear phase (λ₃t ≤ 1) and the early nonlinear phase (max ρ up to ≈ 6 at
t = 15). Rate: least-squares fit of ln D = a + b ln n over all (n, seed) at each time, with
a 95 % t-interval for b; and one fit over all times of the per-run mean of ln D.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: set before numpy loads BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from attention_dynamics.engine.dynamics import velocity_circle  # noqa: E402
from attention_dynamics.theory.meanfield import solve_meanfield  # noqa: E402
from attention_dynamics.theory.meanfield_circle import (  # noqa: E402
    circle_density,
    density_from_function_circle,
    hminus_distance_circle,
    sample_circle,
    w1_distance_circle,
)

BETA = 5.0
TIMES = np.array([0.0, 3.0, 6.0, 9.0, 12.0, 15.0])


def rho0(theta):
    return 1.0 + 0.2 * np.cos(3 * theta) + 0.1 * np.sin(2 * theta)


def particles(theta0: np.ndarray, beta: float, times: np.ndarray) -> np.ndarray:
    """Angles at ``times`` of the USA particle system (GKPR24 time), DOP853 on θ̇ = ⟨ẋ, x^⊥⟩."""
    mass = np.ones(theta0.size)

    def fun(t, th):
        x = np.stack([np.cos(th), np.sin(th)], axis=1)
        v = velocity_circle(x, mass, beta, "usa")
        return -v[:, 0] * x[:, 1] + v[:, 1] * x[:, 0]

    sol = integrate.solve_ivp(fun, (0.0, times[-1]), theta0, method="DOP853", t_eval=times,
                              rtol=1e-10, atol=1e-12)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y.T


def fit_rate(n: np.ndarray, dist: np.ndarray):
    """OLS slope of ln dist on ln n with its 95 % t-interval."""
    res = stats.linregress(np.log(n), np.log(dist))
    q = stats.t.ppf(0.975, n.size - 2)
    return res.slope, res.slope - q * res.stderr, res.slope + q * res.stderr


def pooled_rate(n, seed, k, dist):
    """Slope over all times: each run (n, seed) contributes ȳ = mean over the times of ln dist, and
    ȳ = a + b ln n is fitted by OLS. The times of one run share its particles, so they are not
    independent; averaging within a run first keeps the t-interval honest (for a balanced design
    the slope equals the fit with one intercept per time)."""
    runs = sorted({(a, b) for a, b in zip(n, seed)})
    nn = np.array([r[0] for r in runs], dtype=float)
    yy = np.array([np.mean(np.log(dist[(n == r[0]) & (seed == r[1])])) for r in runs])
    return fit_rate(nn, np.exp(yy))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    args = ap.parse_args(argv)
    ns = [1000, 10000] if args.quick else [1000, 10000, 100000]
    seeds = args.seeds or (3 if args.quick else 16)

    c0 = density_from_function_circle(rho0, 8)
    cpu = time.process_time()
    pde = solve_meanfield(c0, BETA, TIMES[-1], d=2, l_max=400, t_eval=TIMES, rtol=1e-12, atol=1e-15)
    assert pde.status == "completed", pde.status
    grid = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    print(f"PDE: L = {pde.l_max}, {pde.n_steps} steps, {pde.cpu_seconds:.2f} s CPU; "
          f"mass drift {pde.mass_drift:.1e}, energy max decrease {pde.energy_max_decrease:.1e}, "
          f"min ρ {pde.min_density.min():.3f}")
    print("t      λ₃t    max ρ(t)")
    for k, t in enumerate(TIMES):
        print(f"{t:5.1f}  {0.1253 * t:5.2f}  {circle_density(pde.coefficients[k], grid).max():6.3f}")

    rows = []  # (n, seed, k, H^{-1}, W₁)
    for n in ns:
        for seed in range(seeds):
            th0 = sample_circle(c0, n, np.random.default_rng([n, seed]))
            th = particles(th0, BETA, TIMES)
            for k in range(TIMES.size):
                rows.append((n, seed, k, hminus_distance_circle(th[k], pde.coefficients[k]),
                             w1_distance_circle(th[k], pde.coefficients[k])))
    rows = np.array(rows)
    cpu = time.process_time() - cpu

    for j, name in ((3, "H^{-1}"), (4, "W1")):
        print(f"\nmean ‖μ_n − ρ‖ in {name} over {seeds} seeds (± std), and fitted exponent b in D ∝ n^b")
        head = "t      " + "".join(f"n={n:<19d}" for n in ns) + "b [95% CI]"
        print(head)
        for k, t in enumerate(TIMES):
            sel = rows[:, 2] == k
            line = f"{t:5.1f}  "
            for n in ns:
                v = rows[sel & (rows[:, 0] == n), j]
                line += f"{v.mean():.3e} ± {v.std(ddof=1):.1e}  "
            b, lo, hi = fit_rate(rows[sel, 0], rows[sel, j])
            line += f"{b:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            print(line)
        b, lo, hi = pooled_rate(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, j])
        print(f"all times (per-run mean of ln D): b = {b:+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]")
        nz = rows[:, 2] > 0
        b, lo, hi = pooled_rate(rows[nz, 0], rows[nz, 1], rows[nz, 2], rows[nz, j])
        print(f"t > 0 only:                       b = {b:+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]")
    print(f"\nCPU time {cpu:.1f} s")


if __name__ == "__main__":
    main()
