"""Mean-field PDE solver (issue 13): growth-rate errors, speed, stiffness, transform libraries.

    python benchmarks/meanfield_speed.py                 # growth, speed, stiffness (~2–3 min, one core)
    python benchmarks/meanfield_speed.py --only growth   # one section: growth | speed | stiffness | libraries
    python benchmarks/meanfield_speed.py --only libraries  # needs shtns and/or pyshtools importable

All times are CPU seconds (time.process_time) on one thread (BLAS/OpenMP threads pinned to 1).

growth     λ_l measured from the solver (start 1 + ε·Y_l, ε = 1e-7, integrate to t = 1/λ_l, rate
           ln(a(T)/a(0))/T of ‖P_l ρ‖) against attention_dynamics.theory.gegenbauer.growth_rate.
speed      CPU per right-hand side and per DOP853 step at the default resolution; one run from
           uniform + noise (σ = 0.01) to t = 6/λ* (GKPR24 time) or until unresolved.
stiffness  dominant eigenvalue of the Jacobian of the semi-discrete system (Arnoldi on
           finite-difference Jacobian-vector products) along a nonlinear run, against the step
           DOP853 actually took and DOP853's stability region; step counts of RK45, DOP853,
           LSODA and Radau on the same problem.
libraries  one USA right-hand side on S² written with ducc0.sht, with SHTns, and the scalar
           transforms of pyshtools (it has no spin-1 analysis): CPU time and agreement.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.sparse.linalg import LinearOperator, eigs  # noqa: E402

from attention_dynamics.theory.gegenbauer import growth_rate, l_star  # noqa: E402
from attention_dynamics.theory.meanfield import make_discretisation, solve_meanfield  # noqa: E402
from attention_dynamics.theory.meanfield_circle import uniform_plus_noise_circle  # noqa: E402
from attention_dynamics.theory.meanfield_sphere import alm_index, uniform_plus_noise_sphere  # noqa: E402

CASES = [("usa", "gkpr24"), ("usa", "glpr23"), ("sa", "gkpr24")]


def cpu_per_call(f, min_time=0.3):
    n, t0 = 0, time.process_time()
    while True:
        f()
        n += 1
        dt = time.process_time() - t0
        if dt > min_time and n >= 3:
            return dt / n


# --- growth ----------------------------------------------------------------------------------

def growth_section():
    print("== growth rates from the solver: |λ_measured/λ_theory − 1| ==")
    print("d  β     l   usa/gkpr24  usa/glpr23  sa")
    worst = {2: 0.0, 3: 0.0}
    for d in (2, 3):
        for beta in (1.0, 5.0, 12.0, 30.0):
            ls_ = int(l_star(beta, d))
            for l in sorted({1, ls_, ls_ + 1, 2 * ls_}):
                errs = []
                for model, conv in CASES:
                    lam = float(growth_rate(beta, l, d, "sa" if model == "sa" else conv))
                    eps = 1e-7
                    if d == 2:
                        c = np.zeros(l + 1, complex)
                        c[0], c[l] = 1.0, eps * (0.6 - 0.8j)
                        l_max = None
                    else:
                        c = np.zeros((l + 1) * (l + 2) // 2, complex)
                        c[0] = np.sqrt(4 * np.pi)
                        c[alm_index(l, 0, l)] = eps
                        c[alm_index(l, 1, l)] = eps * (0.3 + 0.4j)
                        c[alm_index(l, l, l)] += eps * (-0.5 + 0.2j)
                        l_max = 2 * l + 2
                    r = solve_meanfield(c, beta, 1 / lam, d=d, model=model, convention=conv, l_max=l_max,
                                        rtol=1e-13, atol=1e-20, t_eval=[], max_tail=None)
                    a = r.mode_amplitudes[:, l]
                    errs.append(abs(np.log(a[-1] / a[0]) / r.step_times[-1] / lam - 1))
                worst[d] = max(worst[d], max(errs))
                star = "*" if l == ls_ else " "
                print(f"{d}  {beta:4.0f}  {l:2d}{star}  " + "  ".join(f"{e:9.1e} " for e in errs))
    print(f"worst: d = 2 {worst[2]:.1e}, d = 3 {worst[3]:.1e}   (* = l*)\n")


# --- speed -----------------------------------------------------------------------------------

def noise_data(d, sigma=0.01):
    rng = np.random.default_rng(0)
    return uniform_plus_noise_circle(sigma, 64, rng) if d == 2 else uniform_plus_noise_sphere(sigma, 8, rng)


def speed_section():
    print("== speed (default resolution, USA, GKPR24 time, DOP853 rtol 1e-10 atol 1e-14) ==")
    print("d  β    L    grid        CPU/RHS     CPU/step   run: t_end·λ*  status       steps  RHS    CPU s   "
          "mass drift  max ΔE<0  min ρ")
    for d in (2, 3):
        for beta in (5.0, 30.0):
            disc = make_discretisation(d, beta)
            c = disc.coefficients_from(noise_data(d))
            y = disc.pack(c)
            t_rhs = cpu_per_call(lambda: disc.rhs(0.0, y))
            lam = float(growth_rate(beta, int(l_star(beta, d)), d, "gkpr24"))
            r = solve_meanfield(noise_data(d), beta, 6.0 / lam, d=d, t_eval=[])
            grid = (f"{disc.n_grid}" if d == 2 else f"{disc.n_theta}×{disc.n_phi}")
            print(f"{d}  {beta:3.0f}  {disc.l_max:3d}  {grid:10s}  {t_rhs * 1e3:8.3f} ms  "
                  f"{r.cpu_seconds / max(r.n_steps, 1) * 1e3:7.2f} ms  {r.final_time * lam:5.2f}          "
                  f"{r.status:11s}  {r.n_steps:5d}  {r.n_rhs:5d}  {r.cpu_seconds:6.2f}  {r.mass_drift:9.1e}  "
                  f"{r.energy_max_decrease:8.1e}  {r.min_density.min():.3f}")
    print()


# --- stiffness -------------------------------------------------------------------------------

def dop853_stability():
    from scipy.integrate._ivp import dop853_coefficients as dc

    a = dc.A[:12, :12]
    b = dc.B
    one = np.ones(12)

    def R(z):
        return 1 + z * b @ np.linalg.solve(np.eye(12) - z * a, one)

    def extent(direction):
        r = np.linspace(1e-3, 12, 6000)
        bad = [abs(R(x * direction)) > 1 + 1e-6 for x in r]
        return float(r[int(np.argmax(bad))]) if any(bad) else np.inf

    return R, extent


def dominant_eigenvalue(disc, y):
    """Largest-modulus eigenvalue of the Jacobian at y (ARPACK on central-difference JVPs)."""
    f = lambda v: disc.rhs(0.0, v)  # noqa: E731
    scale = np.linalg.norm(y)

    def jvp(v):
        v = np.ravel(v)
        h = 1e-6 * scale / max(np.linalg.norm(v), 1e-300)
        return (f(y + h * v) - f(y - h * v)) / (2 * h)

    op = LinearOperator((y.size, y.size), matvec=jvp, dtype=np.float64)
    ev = eigs(op, k=1, which="LM", tol=1e-6, maxiter=5000, return_eigenvectors=False)
    return complex(ev[0])


def stiffness_run(d, beta, l_max, convention, t_max, noise):
    _, extent = dop853_stability()
    lam = float(growth_rate(beta, int(l_star(beta, d)), d, convention))
    r = solve_meanfield(noise, beta, t_max, d=d, l_max=l_max, convention=convention,
                        t_eval=np.linspace(0, t_max, 7), max_tail=1e-6)
    disc = make_discretisation(d, beta, l_max, "usa", convention)
    print(f"d = {d}, β = {beta}, {convention}, L = {disc.l_max}: DOP853 {r.n_steps} steps, {r.n_rhs} RHS, "
          f"status {r.status} at t = {r.final_time:.4g} (λ* = {lam:.4g})")
    print("  t         max ρ    dominant ev             h          h·|ev|   stability extent along ev")
    for k, t in enumerate(r.times):
        y = disc.pack(r.coefficients[k])
        ev = dominant_eigenvalue(disc, y)
        i = min(int(np.searchsorted(r.step_times, t, side="right")), r.n_steps)
        h = r.step_times[i] - r.step_times[i - 1]
        direction = ev / abs(ev)
        ext = extent(direction) if ev.real <= 1e-6 * abs(ev) else float("nan")
        print(f"  {t:8.4g}  {r.density[k].max():6.2f}  {ev.real:+9.3g}{ev.imag:+9.3g}j  {h:9.3g}  {h * abs(ev):6.3f}"
              f"   {ext:6.2f}")
    return r


def stiffness_section():
    print("== stiffness ==")
    _, extent = dop853_stability()
    print(f"DOP853 stability region: extends to {extent(-1.0):.2f} on the negative real axis, "
          f"{extent(1j):.2f} on the imaginary axis")
    beta = 5.0
    noise2 = uniform_plus_noise_circle(0.01, 32, np.random.default_rng(0))
    for L in (100, 400):
        r = stiffness_run(2, beta, L, "glpr23", 0.4, noise2)
        t_end = r.final_time
        print(f"  same problem to t = {t_end:.4g}, other solvers (RHS evaluations, CPU s):")
        for method in ("RK45", "DOP853", "LSODA") + (("Radau",) if L <= 100 else ()):
            rr = solve_meanfield(noise2, beta, t_end, d=2, l_max=L, convention="glpr23", t_eval=[],
                                 max_tail=None, method=method)
            print(f"    {method:7s} {rr.n_steps:5d} steps  {rr.n_rhs:6d} RHS  {rr.cpu_seconds:7.2f} s  {rr.status}")
    lam3 = float(growth_rate(beta, 3, 3, "gkpr24"))
    stiffness_run(3, beta, 48, "gkpr24", 5.0 / lam3, uniform_plus_noise_sphere(0.01, 8, np.random.default_rng(0)))
    print()


# --- transform libraries ----------------------------------------------------------------------

def libraries_section():
    import ducc0

    from attention_dynamics.theory.meanfield_sphere import SphereSpectral

    try:
        import shtns
    except ImportError:
        shtns = None
    try:
        import pyshtools
    except ImportError:
        pyshtools = None
    print("== transform libraries: one USA right-hand side on S² (β = 5), dealiased GL grid ==")
    print(f"ducc0 {ducc0.__version__}; shtns {'absent' if shtns is None else 'present'}; "
          f"pyshtools {'absent' if pyshtools is None else pyshtools.__version__}")
    for L in (48, 100):
        disc = SphereSpectral(5.0, L)
        rng = np.random.default_rng(0)
        a = disc.coefficients_from(uniform_plus_noise_sphere(0.2, min(L, 20), rng))
        ref = disc.rhs_coefficients(a)
        nt, nph = disc.n_theta, disc.n_phi
        t_ducc = cpu_per_call(lambda: disc.rhs_coefficients(a))
        mp = disc.to_grid(a)
        t_s0 = cpu_per_call(lambda: disc.to_grid(a))
        t_a0 = cpu_per_call(lambda: disc.from_grid(mp))
        t_g = cpu_per_call(lambda: disc.gradient_grid(a))
        fl = disc.gradient_grid(a)
        t_d = cpu_per_call(lambda: disc.divergence_coefficients(fl))
        rt = np.abs(disc.from_grid(mp) - a).max() / np.abs(a).max()
        print(f"L = {L}, grid {nt}×{nph}")
        print(f"  ducc0     RHS {t_ducc * 1e3:7.3f} ms | synth0 {t_s0 * 1e3:.3f}, analysis0 {t_a0 * 1e3:.3f}, "
              f"grad (spin-1 synth) {t_g * 1e3:.3f}, div (spin-1 analysis) {t_d * 1e3:.3f} ms | "
              f"round trip {rt:.1e}")
        if shtns is not None:
            sh = shtns.sht(L, L, 1, shtns.sht_orthonormal)
            sh.set_grid(nt, nph, shtns.sht_gauss | shtns.SHT_PHI_CONTIGUOUS, 1e-14)
            # map the healpy-ordered a_lm into shtns' order (both m-major; shtns: idx(l, m))
            ls_, ms_ = disc.ls, disc.ms
            perm = np.array([sh.idx(int(l), int(m)) for l, m in zip(ls_, ms_)])
            a_sh = np.zeros(sh.nlm, complex)
            a_sh[perm] = a
            mu = disc.mu[sh.l]
            ll = sh.l * (sh.l + 1.0)
            vt = np.zeros(sh.spat_shape)
            vp = np.zeros(sh.spat_shape)
            s_lm = np.zeros(sh.nlm, complex)
            t_lm = np.zeros(sh.nlm, complex)

            def rhs_shtns():
                rho = sh.synth(a_sh)
                sh.SHsph_to_spat(mu * a_sh, vt, vp)  # ∇G = (∂_ϑ G, ∂_φ G / sin ϑ)
                sh.spat_to_SHsphtor(rho * vt / 5.0, rho * vp / 5.0, s_lm, t_lm)  # F = ∇S + …: div F = −l(l+1)S
                return ll * s_lm

            out = rhs_shtns()
            diff = np.abs(out[perm] - ref).max() / np.abs(ref).max()
            t_sh = cpu_per_call(rhs_shtns)
            rt_sh = np.abs(sh.analys(sh.synth(a_sh)) - a_sh).max() / np.abs(a_sh).max()
            t_s0 = cpu_per_call(lambda: sh.synth(a_sh))
            sp = sh.synth(a_sh)
            t_a0 = cpu_per_call(lambda: sh.analys(sp))
            print(f"  shtns     RHS {t_sh * 1e3:7.3f} ms | synth0 {t_s0 * 1e3:.3f}, analysis0 {t_a0 * 1e3:.3f} ms | "
                  f"round trip {rt_sh:.1e} | RHS vs ducc0 {diff:.1e} (relative, max)")
        if pyshtools is not None:
            lg = (2 * nt) // 2 - 1  # pyshtools' GLQ grid of degree lg has lg+1 rings and 2lg+1 longitudes
            zero, w = pyshtools.expand.SHGLQ(lg)
            cilm = np.zeros((2, lg + 1, lg + 1))
            rng = np.random.default_rng(1)
            cilm[:, : L + 1, : L + 1] = rng.standard_normal((2, L + 1, L + 1))
            cilm[1, :, 0] = 0
            for l in range(L + 1):
                cilm[:, l, l + 1:] = 0
            t_s0 = cpu_per_call(lambda: pyshtools.expand.MakeGridGLQ(cilm, zero, lmax_calc=L, norm=4))
            gr = pyshtools.expand.MakeGridGLQ(cilm, zero, lmax_calc=L, norm=4)
            t_a0 = cpu_per_call(lambda: pyshtools.expand.SHExpandGLQ(gr, w, zero, lmax_calc=L, norm=4))
            back = pyshtools.expand.SHExpandGLQ(gr, w, zero, lmax_calc=L, norm=4)
            rt_py = np.abs(back[:, : L + 1, : L + 1] - cilm[:, : L + 1, : L + 1]).max() / np.abs(cilm).max()
            print(f"  pyshtools scalar only (no spin-1 analysis): synth0 {t_s0 * 1e3:.3f}, "
                  f"analysis0 {t_a0 * 1e3:.3f} ms on {gr.shape[0]}×{gr.shape[1]} | round trip {rt_py:.1e}")
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["growth", "speed", "stiffness", "libraries"])
    args = ap.parse_args(argv)
    sections = {"growth": growth_section, "speed": speed_section, "stiffness": stiffness_section,
                "libraries": libraries_section}
    todo = [args.only] if args.only else ["growth", "speed", "stiffness"]
    for name in todo:
        t0 = time.process_time()
        sections[name]()
        print(f"[{name}: {time.process_time() - t0:.1f} s CPU]\n")


if __name__ == "__main__":
    main()
