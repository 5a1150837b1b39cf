"""Tables for the figure gallery (tests/test_gallery.py): tiny real sweeps and synthetic big ones.

``real_tables`` runs a tiny config through the package (pipeline.sweep → pipeline.cell.run_cell
→ pipeline.aggregate → analysis.fits), exactly as the workflow does. ``synthetic_tables``
writes tables with the same columns for sweeps too big to simulate in a test (30 β, k = 12,
40 groups): a closest-pair-first toy model of points on a circle (the gaps, masses and
merge order of ``reproductions.staircase.staircase_theory``) with merge times
e^{β(1−cos D)}/(β sin² D) × a log-normal factor, censored at t_max. The numbers are
only plausible; the gallery checks layout, not science.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attention_dynamics.analysis.fits import FIT_COLUMNS, fit_runs
from attention_dynamics.engine.simulate import default_record_times
from attention_dynamics.pipeline.aggregate import aggregate, table_columns
from attention_dynamics.pipeline.cell import run_cell
from attention_dynamics.pipeline.io import write_table
from attention_dynamics.pipeline.sweep import TABLE_NAMES, check_config
from attention_dynamics.theory.twocluster import escape_theorem_gamma, escape_time_lower_bound

CELL_TABLES = ("runs", "events", "lifetimes", "trajectories")


def real_tables(config: dict, folder: Path, *, n_boot: int = 50) -> Path:
    """Run every cell of ``config`` (tiny!) and write the five aggregated tables to ``folder``."""
    plan = check_config(config)
    files = {t: [] for t in CELL_TABLES}
    cells = []
    for c in plan.cells:
        out = folder / "cells" / c.sweep / c.path
        run_cell({"sweep": c.sweep, **c.params}, c.seeds, str(out), base_seed=plan.config["base_seed"])
        cells.append({"sweep": c.sweep, "path": c.path, "group": c.group, "seeds": c.seeds, "params": c.params})
        for t in CELL_TABLES:
            files[t].append(str(out / f"{t}.parquet"))
    out = {t: str(folder / f"{t}.parquet") for t in CELL_TABLES}
    res = aggregate(cells, files, out)
    fits = fit_runs(res["runs"], n_boot=n_boot)
    write_table(fits, folder / "fits.parquet", columns_doc=FIT_COLUMNS)
    return folder


def _digest(*parts) -> int:
    return int(hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12], 16)


def _toy_run(g: dict, beta: float, seed: int, t_max: float, rec: np.ndarray):
    """Closest-pair-first merges of k points on a circle: (runs row extras, events, lifetimes, trajectory)."""
    rng = np.random.default_rng(_digest(g, seed))  # same initial data at every β (common random numbers)
    n = int(g["n"])
    if g["init"] == "uniform":
        k0 = int(rng.integers(4, g.get("max_clusters", 12) + 1))
        theta = np.sort(rng.uniform(0, 1.6 * np.pi, k0))
        w = rng.dirichlet(np.ones(k0))
    else:
        k0 = int(g["k"])
        sp = float(g.get("spacing", 0.8))
        theta = sp * np.arange(k0) + rng.normal(0, 0.01, k0)
        w = np.ones(k0) + (rng.uniform(-0.2, 0.2, k0) if g["init"] == "gaussian" else 0.0)
    counts = np.maximum(np.round(w / w.sum() * n), 1.0)
    counts[0] += n - counts.sum()
    m = counts / n
    th = theta.copy()
    t, events, plateaus = 0.0, [], []
    jit = np.random.default_rng(_digest(g, seed, beta))
    level = float(m @ m)
    plateaus.append(dict(n_clusters=len(m), t_open=0.0, sum_mass_sq=level))
    censored = False
    while len(m) > 1:
        diff = np.abs(th[:, None] - th[None, :])
        np.fill_diagonal(diff, np.inf)
        a, b = np.unravel_index(int(np.argmin(diff)), diff.shape)
        D = float(diff[a, b])
        dt = np.exp(beta * (1 - np.cos(D))) / (beta * np.sin(D) ** 2) * float(jit.lognormal(0.0, 0.3))
        if t + dt > t_max:
            censored = True
            break
        t += dt
        events.append(dict(event=len(events), time=t, n_clusters_before=len(m), n_clusters_after=len(m) - 1,
                           mass_a=max(m[a], m[b]), mass_b=min(m[a], m[b]), angle_at_merge=float(g["theta_c"]),
                           gap_at_open=D, t_open=plateaus[-1]["t_open"]))
        plateaus[-1]["t_close"] = t
        keep = [i for i in range(len(m)) if i not in (a, b)]
        new = (m[a] * th[a] + m[b] * th[b]) / (m[a] + m[b])
        th, m = np.append(th[keep], new), np.append(m[keep], m[a] + m[b])
        plateaus.append(dict(n_clusters=len(m), t_open=t, sum_mass_sq=float(m @ m)))
    t_end = t_max if censored else t
    lts = [dict(plateau=i, n_clusters=p["n_clusters"], t_open=p["t_open"], t_close=p.get("t_close", t_end),
                lifetime=p.get("t_close", t_end) - p["t_open"], censored="t_close" not in p,
                sum_mass_sq=p["sum_mass_sq"]) for i, p in enumerate(plateaus)
           if "t_close" in p or p["n_clusters"] > 1]
    opens = np.array([p["t_open"] for p in plateaus])
    idx = np.searchsorted(opens, rec, side="right") - 1
    energy = np.array([plateaus[i]["sum_mass_sq"] for i in idx])
    ncl = np.array([plateaus[i]["n_clusters"] for i in idx])
    # the initial plateau sits a little above Σ m² (cross terms), as in real runs
    energy = np.where(idx == 0, energy + 0.02 * np.exp(-rec), energy)
    tr = pd.DataFrame(dict(time=rec, energy=np.minimum(energy, 1.0), n_clusters=ncl,
                           min_angle=np.nan, n_points=ncl))
    first = events[0]["time"] if events else np.nan
    extras = dict(first_merge_time=first, n_merges=len(events), censored=censored and len(m) > 1, t_end=t_end,
                  n_clusters_initial=len(theta), n_clusters_final=len(m))
    return extras, pd.DataFrame(events), pd.DataFrame(lts), tr


def synthetic_tables(folder: Path, sweep: str, groups: list[dict], *, seeds: int = 4, fail_every: int = 0,
                     event_kinds: bool = False, fit_status: str | None = None, n_boot: int = 30) -> Path:
    """Write runs/events/lifetimes/trajectories/fits for ``groups`` (dicts of cell keys + ``betas``).

    ``fail_every``: every such run is recorded as failed (status failed, no samples);
    ``event_kinds``: add the ``kind`` column to events (every 3rd event a straggler);
    ``fit_status``: overwrite the status of every other fit with this value (new vocabulary).
    """
    folder.mkdir(parents=True, exist_ok=True)
    parts = {t: [] for t in CELL_TABLES}
    i_run = 0
    for g in groups:
        g = {"model": "usa", "init": "caps", "d": 3, "n": 64, "k": 4, "eps": 1e-3, "spacing": 0.8,
             "theta_c": 0.1, "t_max": 1e25, **g}
        betas = [float(b) for b in g.pop("betas")]
        gid = f"{_digest(sweep, g):012x}"
        t_max = float(g["t_max"])
        rec = default_record_times(t_max, 8)[1:]
        for beta in betas:
            cid = f"{_digest(sweep, g, beta):012x}"
            for s in range(seeds):
                i_run += 1
                key = dict(sweep=sweep, cell_id=cid, beta=beta, seed=s)
                caps = g["init"] == "caps"
                row = dict(key, model=g["model"], init=g["init"], d=g["d"], n=g["n"],
                           k=g["k"] if g["init"] != "uniform" else 1, eps=g["eps"] if caps else np.nan,
                           spacing=g["spacing"] if g["init"] != "uniform" else np.nan, t_max=t_max,
                           theta_c=g["theta_c"], delta=1e-5, group_id=gid, cell_path=f"{gid}/beta~{beta:g}",
                           centres="circle" if g["init"] != "uniform" else "", masses="",
                           r=1.0 if g["init"] == "gaussian" else np.nan,
                           sigma=0.05 if g["init"] == "gaussian" else np.nan, min_angle=np.nan,
                           rtol=1e-10, atol=1e-12, per_decade=8, max_steps=200000, n_seeds_cell=seeds)
                if g.get("fail_all") or (fail_every and i_run % fail_every == 0):
                    row.update(status="failed", reason="synthetic failure", escape_time=np.nan,
                               escape_censored=False, first_merge_time=np.nan, n_merges=0, censored=False,
                               t_end=np.nan)
                    parts["runs"].append(row)
                    continue
                extras, ev, lt, tr = _toy_run(g, beta, s, t_max, rec)
                d_min = float(g["spacing"]) if g["init"] != "uniform" else np.nan
                row.update(status="ok", reason="", d_min=d_min, **extras)
                if caps and g["k"] >= 2:
                    alpha = float(np.cos(max(d_min - 2 * np.arccos(1 - 2 * g["eps"]), 0.0)))
                    esc = 0.3 * extras["first_merge_time"]
                    row.update(alpha=alpha, escape_time=esc, escape_censored=not np.isfinite(esc),
                               escape_gamma=float(escape_theorem_gamma(alpha, g["eps"], g["n"], beta)),
                               escape_bound=float(escape_time_lower_bound(alpha, g["eps"], g["n"], beta)))
                else:
                    row.update(alpha=np.nan, escape_time=np.nan, escape_censored=False, escape_gamma=np.nan,
                               escape_bound=np.nan)
                parts["runs"].append(row)
                for name, df in (("events", ev), ("lifetimes", lt), ("trajectories", tr)):
                    if len(df):
                        parts[name].append(df.assign(**key)[[*key, *df.columns]])
    out = {}
    for name in CELL_TABLES:
        cols = table_columns(name)
        df = pd.DataFrame(parts[name]) if name == "runs" else (
            pd.concat(parts[name], ignore_index=True) if parts[name] else pd.DataFrame(columns=list(cols)))
        df = df.reindex(columns=list(cols))
        if name == "events" and event_kinds and len(df):
            df["kind"] = np.where(np.arange(len(df)) % 3 == 2, "straggler", "merge")
        text = ("sweep", "cell_id", "model", "init", "status", "reason", "group_id", "cell_path", "centres",
                "masses", "kind")
        for c in text:
            if c in df:
                df[c] = df[c].fillna("").astype(str)
        for c in ("censored", "escape_censored"):
            if c in df:
                df[c] = df[c].astype("boolean").fillna(False).astype(bool)
        for c in df.columns:
            if df[c].dtype == object and c not in text:
                df[c] = pd.to_numeric(df[c])
        write_table(df, folder / f"{name}.parquet")
        out[name] = df
    fits = fit_runs(out["runs"], n_boot=n_boot)
    if fit_status and len(fits):
        fits.loc[fits.index[::2], "status"] = fit_status
    write_table(fits, folder / "fits.parquet")
    assert set(TABLE_NAMES) >= set(CELL_TABLES)
    return folder


# --------------------------------------------------------------------------------------
# reproduction tables (same columns as the package writes; values shaped like the real ones)
# --------------------------------------------------------------------------------------
def staircase_reproduction_tables(betas, *, parametrisations=("arclength", "logtime")):
    """(steps, curves) like ``reproductions.staircase.staircase_tables``: smoothed steps at the predictions."""
    from attention_dynamics.reproductions.staircase import authors_initial_angles, staircase_theory

    th = staircase_theory(authors_initial_angles())
    steps, curves = [], []
    for b in betas:
        b = float(b)
        for par in parametrisations:
            if par == "arclength":
                ends = th["arclength_end"].to_numpy() / np.log(b)
                x = np.linspace(0.0, 1.25 * ends.max(), 300)
            else:
                ends = th["s_step"].to_numpy() - np.log(b) / b * 0.2
                x = np.linspace(-0.02, 1.3 * ends.max(), 300)
            w = 0.01 * ends.max()
            e = np.full_like(x, 1 / 5 + 0.05 * 500 / b)
            for k, row in th.iterrows():
                e = e + (row["level_after"] - row["level_before"]) / (1 + np.exp(-(x - ends[k]) / w))
            curves.append(pd.DataFrame(dict(parametrisation=par, beta=b, x=x, energy=np.minimum(e, 1.0),
                                            n_points=5)))
            for k, row in th.iterrows():
                steps.append(dict(parametrisation=par, beta=b, step=int(row["step"]), level_theory=row["level_after"],
                                  end_theory_nominal=ends[k] if par == "arclength" else row["s_step"]))
    return pd.DataFrame(steps), pd.concat(curves, ignore_index=True)


def emergence_reproduction_table(panels: dict, betas, seeds: int = 6) -> pd.DataFrame:
    """Rows like the ``emergence`` table for every (d, n) in ``panels`` = {d: [n, ...]}, β and seed."""
    from attention_dynamics.theory.gegenbauer import l_star

    rows = []
    rng = np.random.default_rng(0)
    for d, ns in panels.items():
        for n in ns:
            for b in betas:
                ls = int(l_star(float(b), int(d)))
                for s in range(seeds):
                    cnt = max(1, ls + int(rng.integers(-2, 2)))
                    rows.append(dict(model="usa", d=d, n=n, beta=float(b), seed=s, status="ok", l_star=ls,
                                     n_clusters_linear=cnt if d == 2 else -1,
                                     n_clusters_formation=max(1, cnt - int(rng.integers(0, 2))),
                                     lin_count_mode=max(1, ls - 1) if d == 2 else -1,
                                     dominant_degree=max(1, ls + int(rng.integers(-1, 2)))))
    return pd.DataFrame(rows)


def phase_reproduction_table(betas, times) -> pd.DataFrame:
    """Rows like the ``phase_diagram`` table: fraction of clustered pairs rising earlier at small β."""
    rows = []
    for b in betas:
        for t in times:
            f = 1.0 - np.exp(-float(t) / (1.0 + float(b) ** 2))
            rows.append(dict(model="sa", d=2, n=32, beta=float(b), t=float(t), fraction=f, fraction_sem=0.01,
                             n_systems=8, threshold=0.999))
    return pd.DataFrame(rows)


def meanfield_reproduction_tables(betas, ds=(2, 3), seeds: int = 6):
    """(rates, meanfield_emergence, profiles) like ``reproductions.meanfield``: rates and one profile from the
    solver itself (cheap), the per-seed counts synthetic around l*."""
    from attention_dynamics.reproductions.meanfield import meanfield_noise_run, meanfield_rates_table
    from attention_dynamics.theory.gegenbauer import l_star

    rates = pd.concat([meanfield_rates_table(d, [1.0, 5.0, 12.0, 30.0], ["usa", "sa"]) for d in ds],
                      ignore_index=True)
    row, prof = meanfield_noise_run(5.0, 2, 0, profile=True, n_times=41, profile_theta=128)
    rng = np.random.default_rng(1)
    rows = []
    for d in ds:
        for b in betas:
            ls = int(l_star(float(b), int(d)))
            for s in range(seeds):
                k = max(1, ls + int(rng.integers(-1, 2)))
                rows.append({**row, "d": d, "beta": float(b), "seed": s, "l_star": ls, "n_peaks": k if d == 2 else -1,
                             "n_arcs": max(0, k - int(rng.integers(0, 4))) if d == 2 else -1,
                             "dominant_degree": max(1, ls + int(rng.integers(-1, 2))), "lin_degree_mode": ls})
    return rates, pd.DataFrame(rows), prof


def emergence_growth_reproduction_tables(panels: dict, betas, seeds: int = 6):
    """(emergence, emergence_growth) for every (d, n) in ``panels``: spectra growing exactly at λ_l with
    Exp(1)/n initial powers, the growth table made by the package from them."""
    from attention_dynamics.reproductions.growth import emergence_growth_table
    from attention_dynamics.theory.gegenbauer import growth_rate

    em = emergence_reproduction_table(panels, betas, seeds).assign(lin_degree_dist="")
    rng = np.random.default_rng(2)
    spectra = []
    for (d, n, b), g in em.groupby(["d", "n", "beta"]):
        ls = int(g["l_star"].iloc[0])
        em.loc[g.index, "lin_degree_dist"] = f"{max(1, ls - 1)}:0.250;{ls}:0.500;{ls + 1}:0.250"
        lm = 2 * ls + 6
        lam = growth_rate(b, np.arange(1, lm + 1), d, "gkpr24")
        t = np.linspace(0, np.log(n) / (2 * lam.max()), 41)
        for s in range(seeds):
            p = rng.exponential(1.0, lm)[None, :] / n * np.exp(2 * lam[None, :] * t[:, None])
            spectra.append(pd.DataFrame({"model": "usa", "d": d, "n": n, "beta": b, "seed": s,
                                         "t": np.repeat(t, lm), "l": np.tile(np.arange(1, lm + 1), t.size),
                                         "power": p.ravel()}))
    return em, emergence_growth_table(pd.concat(spectra, ignore_index=True), em)
