"""Engine benchmarks (issue 2). Prints ratios measured in one run, on one core.

    python benchmarks/bench_engine.py            # full run (~1–2 min)
    python benchmarks/bench_engine.py --quick    # fewer repeats, smaller baseline

1. cost(β = 40) / cost(β = 10) for n = 64, d = 3, k = 4 caps, to the last merge  (goal ≤ 3)
2. speed-up over the naive baseline (fixed-step Euler, dt = 0.1, projection and
   renormalisation, full system) at β = 15 to the first merge, with both errors against a
   tight-tolerance reference                                                       (goal ≥ 100×)
3. seconds per full staircase, n = 64 and n = 1024, d = 3, k = 4, β = 20        (goal ≤ 0.5 s at n = 64)
4. vector-field throughput in pair-interactions/s against the estimated limit of
   docs/science.md §5 (880 M/s, d = 3, one core)                                      (goal ≥ 30 % at n ≥ 512)
5. horizon independence: solver steps with t_max = 1e20 and 1e40 (same run otherwise)
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # "one core": set before numpy loads BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from attention_dynamics import simulate  # noqa: E402
from attention_dynamics.engine.dynamics import velocity  # noqa: E402
from attention_dynamics.initial import caps  # noqa: E402

LIMIT_PAIRS_PER_S = 880e6


def staircase_data(n, beta_seed=0, k=4, d=3, eps=1e-3, spacing=np.pi / 4):
    """k caps on a half great circle (all merges reachable), fixed seed."""
    return caps(n, d, k, eps, np.random.default_rng(beta_seed), spacing=spacing)


def run_engine(data, beta, t_max=1e40, **kw):
    return simulate(data.x, beta=beta, model="usa", t_max=t_max, cap_centres=data.centres,
                    cap_eps=data.eps, cap_labels=data.labels, **kw)


def best_time(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def euler_first_merge(x, beta, dt, theta_c, labels, t_cap):
    """Naive baseline: x ← normalise(x + dt·v(x)) on the full system until two caps come
    within θ_c (the first merge of single-linkage clusters starting from the caps)."""
    m = np.ones(x.shape[0])
    cross = labels[:, None] != labels[None, :]
    cos_c = np.cos(theta_c)
    t, prev_gap = 0.0, None
    steps = int(t_cap / dt)
    for _ in range(steps):
        x_new = x + dt * velocity(x, m, beta, "usa")
        x_new /= np.linalg.norm(x_new, axis=1, keepdims=True)
        gap = (x_new @ x_new.T)[cross].max() - cos_c
        if gap >= 0:  # linear interpolation inside the last step
            frac = -prev_gap / (gap - prev_gap) if prev_gap is not None else 1.0
            return t + frac * dt
        prev_gap, x, t = gap, x_new, t + dt
    return np.nan


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    a = ap.parse_args()
    rep = 2 if a.quick else 5
    res = {}

    print("1. cost ratio, n=64 d=3 k=4 caps (eps=1e-3, spacing pi/4), USA, to the last merge")
    data = staircase_data(64)
    costs = {}
    for beta in (10.0, 40.0):
        t, r = best_time(lambda: run_engine(data, beta), rep)
        costs[beta] = (t, r.stats["n_rhs"], r.stats["n_steps"], len(r.events), r.merge_times[-1])
        print(f"   beta={beta:4.0f}: {t:.3f} s, {r.stats['n_steps']} steps, {r.stats['n_rhs']} field evals, "
              f"{len(r.events)} merges, last at t={r.merge_times[-1]:.3e}")
    ratio_t = costs[40.0][0] / costs[10.0][0]
    ratio_f = costs[40.0][1] / costs[10.0][1]
    print(f"   cost(40)/cost(10) = {ratio_t:.2f} (wall), {ratio_f:.2f} (field evaluations)   goal <= 3")
    res["cost_ratio_wall"], res["cost_ratio_rhs"] = ratio_t, ratio_f

    print("2. speed-up over fixed-step Euler (dt=0.1, projected, renormalised, full system), beta=15, first merge")
    n_e, gap = 32, (1.25 if a.quick else 1.5)  # first merge near T = 2.5e3 (quick) or 6e4
    ed = caps(n_e, 3, 2, 1e-3, np.random.default_rng(1), spacing=gap)
    ref = run_engine(ed, 15.0, rtol=1e-13, atol=1e-15, delta=1e-6).first_merge_time
    t_eng, r_eng = best_time(lambda: run_engine(ed, 15.0), rep)
    t0 = time.perf_counter()
    t_eul = euler_first_merge(ed.x.copy(), 15.0, 0.1, 0.1, ed.labels, 5 * ref)
    wall_eul = time.perf_counter() - t0
    err_eng = abs(r_eng.first_merge_time / ref - 1)
    err_eul = abs(t_eul / ref - 1)
    print(f"   n = {n_e}, k = 2 caps {gap} rad apart; reference T = {ref:.10g} (rtol 1e-13, delta 1e-6)")
    print(f"   engine: {t_eng:.3f} s, T = {r_eng.first_merge_time:.10g}, rel. error {err_eng:.1e}")
    print(f"   Euler : {wall_eul:.2f} s, T = {t_eul:.6g}, rel. error {err_eul:.1e}")
    print(f"   speed-up = {wall_eul / t_eng:.0f}x at {'better' if err_eng <= err_eul else 'WORSE'} accuracy   goal >= 100x")
    res.update(speedup_vs_euler=wall_eul / t_eng, err_engine=err_eng, err_euler=err_eul)

    print("3. seconds per full staircase, d=3 k=4 caps, beta=20, USA")
    for n in (64, 1024):
        dn = staircase_data(n)
        t, r = best_time(lambda: run_engine(dn, 20.0), rep if n == 64 else 1)
        print(f"   n={n:5d}: {t:.3f} s ({len(r.events)} merges, {r.stats['n_steps']} steps, "
              f"{r.stats['n_collapses']} collapses)" + ("   goal <= 0.5 s" if n == 64 else ""))
        res[f"staircase_seconds_n{n}"] = t

    print("4. vector-field throughput (d=3, USA and SA), against 880 M pair-interactions/s")
    rng = np.random.default_rng(0)
    for n in (128, 512, 1024, 2048):
        x = rng.standard_normal((n, 3))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        m = np.ones(n)
        for model in ("usa", "sa"):
            k = max(3, int(3e7 / (n * n)))
            t, _ = best_time(lambda: [velocity(x, m, 20.0, model) for _ in range(k)], 3)
            rate = n * n * k / t
            print(f"   n={n:5d} {model:3s}: {rate / 1e6:6.0f} M/s = {100 * rate / LIMIT_PAIRS_PER_S:4.0f} % of limit")
            res[f"throughput_{model}_n{n}"] = rate

    print("5. horizon independence (n=64 k=4 beta=20): steps to the end with t_max = 1e20 and 1e40")
    s = [run_engine(data, 20.0, t_max=tm).stats["n_steps"] for tm in (1e20, 1e40)]
    print(f"   steps: {s[0]} and {s[1]}")
    res["steps_tmax_1e20"], res["steps_tmax_1e40"] = s
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
