"""Figures of a sweep, from the aggregated tables (PNG and PDF; matplotlib Agg backend).

One figure per (sweep, kind), one panel per fit group (model, init, d, n, k, geometry):

* ``staircase``: median normalised energy Ē over seeds against log time s = ln t / β,
  one line per β, with the predicted plateau heights Σ_a m_a² (from the lifetimes
  table) as dashed horizontal lines (docs/science.md §4).
* ``clusters``: mean single-linkage cluster count against t (log axis), one line per β.
* ``times``: escape and first-merge times against β (log axis), every seed as a point,
  censored runs as open triangles at the end of the run (lower bounds), the fitted
  ln T = a + c·β + b·ln β, and theory: the exact two-point-cluster merge time (k = 2
  caps) and GKPR24's escape lower bound T₂ = (ε/n) e^{(1−α)β}.
* ``lifetimes``: distribution over seeds of each plateau's lifetime (log10), per
  cluster count and β; censored plateaus are left out and counted in the panel title.

Command line::

    python -m attention_dynamics.analysis.plots KIND --sweep NAME --tables results/tables --png F.png --pdf F.pdf
"""
from __future__ import annotations

import math
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["KINDS", "plot", "main"]

KINDS = ("staircase", "clusters", "times", "lifetimes")
_GROUP_ORDER = ["model", "init", "d", "n", "k", "eps", "spacing", "centres", "theta_c"]


def _read(tables: str, name: str, sweep: str, columns=None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(tables, f"{name}.parquet"), columns=columns, filters=[("sweep", "==", sweep)])
    return t.to_pandas()


def _groups(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per fit group, sorted, with a readable label."""
    keys = [c for c in _GROUP_ORDER if c in runs.columns]
    g = runs.drop_duplicates("group_id").sort_values(keys, kind="stable")
    varying = [c for c in ("eps", "spacing", "centres", "theta_c", "masses", "sigma", "r")
               if c in runs.columns and runs[c].astype(str).nunique() > 1]

    def label(r):
        s = f"{r['model'].upper()} {r['init']} d={r['d']} n={r['n']} k={r['k']}"
        for c in varying:
            v = r[c]
            s += f" {c}={v:.3g}" if isinstance(v, float) else f" {c}={v}"
        return s

    g = g.assign(label=g.apply(label, axis=1))
    return g[["group_id", "label", *keys]].reset_index(drop=True)


def _pick_betas(betas, m: int) -> list[float]:
    u = np.unique(np.asarray(betas, dtype=float))
    if len(u) <= m:
        return list(u)
    idx = np.unique(np.round(np.linspace(0, len(u) - 1, m)).astype(int))
    return list(u[idx])


def _figure(n_panels: int, ncols: int = 3, w: float = 4.2, h: float = 3.3):
    ncols = min(ncols, max(n_panels, 1))
    nrows = max(math.ceil(n_panels / ncols), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, constrained_layout=True)
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _title(fig, kind: str, sweep: str, shown: int, total: int, extra: str = ""):
    s = f"{sweep}: {kind}"
    if shown < total:
        s += f" (first {shown} of {total} groups; plots.max_panels)"
    fig.suptitle(s + (f"\n{extra}" if extra else ""), fontsize=11)


def _empty(ax, text="no data"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _beta_colours(betas):
    cmap = plt.get_cmap("viridis")
    n = max(len(betas) - 1, 1)
    return {b: cmap(0.9 * i / n) for i, b in enumerate(betas)}


def plot_staircase(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4):
    runs = _read(tables, "runs", sweep)
    groups = _groups(runs)
    shown = groups.head(max_panels)
    tr = _read(tables, "trajectories", sweep, ["sweep", "cell_id", "beta", "seed", "time", "energy"])
    lt = _read(tables, "lifetimes", sweep, ["sweep", "cell_id", "beta", "seed", "sum_mass_sq"])
    cell_group = runs.drop_duplicates("cell_id").set_index("cell_id")["group_id"]
    tr["group_id"] = tr["cell_id"].map(cell_group)
    lt["group_id"] = lt["cell_id"].map(cell_group)
    fig, axes = _figure(len(shown))
    for ax, (_, g) in zip(axes, shown.iterrows()):
        sub = tr[(tr["group_id"] == g["group_id"]) & (tr["time"] > 0)]
        betas = _pick_betas(sub["beta"], n_betas)
        col = _beta_colours(betas)
        s_ends = []
        for b in betas:
            s = sub[sub["beta"] == b].groupby("time")["energy"].median()
            x = np.log(s.index.to_numpy()) / b
            ax.plot(x, s.to_numpy(), color=col[b], lw=1.4, label=f"β={b:g}")
            done = np.nonzero(s.to_numpy() >= 1 - 1e-9)[0]
            s_ends.append(x[done[0]] if len(done) else x[-1])
        levels = np.unique(np.round(lt.loc[lt["group_id"] == g["group_id"], "sum_mass_sq"].dropna(), 4))
        labelled = []
        for lev in sorted(set(levels) | {1.0}):
            ax.axhline(lev, color="0.5", ls="--", lw=0.8, zorder=0)
            if all(abs(lev - m) > 0.03 for m in labelled):  # no overlapping labels (e.g. 0.549, 0.559)
                ax.text(1.0, lev, f" {lev:.3g}", transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                        color="0.3")
                labelled.append(lev)
        if not len(sub):
            _empty(ax)
        if s_ends:
            ax.set_xlim(-0.05, 1.3 * max(s_ends) + 0.05)
        else:
            ax.set_xlim(left=-0.05)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("s = ln t / β")
        ax.set_ylabel("Ē (median over seeds)")
        ax.set_title(g["label"], fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    _title(fig, "energy staircase", sweep, len(shown), len(groups), "dashed: predicted plateaus Σ m_a² (lifetimes table)")
    return fig


def plot_clusters(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4):
    runs = _read(tables, "runs", sweep)
    groups = _groups(runs)
    shown = groups.head(max_panels)
    tr = _read(tables, "trajectories", sweep, ["sweep", "cell_id", "beta", "seed", "time", "n_clusters"])
    tr["group_id"] = tr["cell_id"].map(runs.drop_duplicates("cell_id").set_index("cell_id")["group_id"])
    tr.loc[tr["n_clusters"] < 0, "n_clusters"] = np.nan
    fig, axes = _figure(len(shown))
    for ax, (_, g) in zip(axes, shown.iterrows()):
        sub = tr[(tr["group_id"] == g["group_id"]) & (tr["time"] > 0)]
        betas = _pick_betas(sub["beta"], n_betas)
        col = _beta_colours(betas)
        t_ends = []
        for b in betas:
            s = sub[sub["beta"] == b].groupby("time")["n_clusters"].mean()
            ax.step(s.index.to_numpy(), s.to_numpy(), where="post", color=col[b], lw=1.4, label=f"β={b:g}")
            final = np.nonzero(np.isclose(s.to_numpy(), np.nanmin(s.to_numpy())))[0] if len(s) else []
            if len(final):
                t_ends.append(s.index[final[0]])
        if not len(sub):
            _empty(ax)
        ax.set_xscale("log")
        if t_ends and len(sub):
            ax.set_xlim(sub["time"].min(), min(sub["time"].max(), 100 * max(t_ends)))
        ax.set_xlabel("t")
        ax.set_ylabel("clusters (mean over seeds)")
        ax.set_title(g["label"], fontsize=9)
        ax.legend(fontsize=7)
    _title(fig, "cluster count", sweep, len(shown), len(groups))
    return fig


def _theory_merge_curve(g: pd.Series, runs: pd.DataFrame, betas: np.ndarray):
    from ..theory.twocluster import two_cluster_merge_time

    d_min = float(runs["d_min"].median())
    n = int(g["n"])
    theta_c = float(runs["theta_c"].iloc[0])
    if not (theta_c < d_min < math.pi):
        return None
    n_a, n_b = n - n // 2, n // 2
    if isinstance(runs["masses"].iloc[0], str) and runs["masses"].iloc[0]:
        import json

        from ..initial import split_counts

        n_a, n_b = split_counts(n, 2, json.loads(runs["masses"].iloc[0]))
    try:
        return np.array([two_cluster_merge_time(d_min, theta_c, float(b), float(n_a), float(n_b), n, g["model"])
                         for b in betas])
    except ValueError:
        return None


def plot_times(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4):
    runs = _read(tables, "runs", sweep)
    fits = _read(tables, "fits", sweep)
    groups = _groups(runs)
    shown = groups.head(max_panels)
    fig, axes = _figure(len(shown))
    styles = {"escape": ("escape_time", "escape_censored", "C0", "o"),
              "first_merge": ("first_merge_time", None, "C3", "s")}
    for ax, (_, g) in zip(axes, shown.iterrows()):
        r = runs[runs["group_id"] == g["group_id"]]
        ok = r["status"] == "ok"
        bgrid = np.linspace(r["beta"].min(), r["beta"].max(), 60)
        notes = []
        for q, (col, cens_col, colour, marker) in styles.items():
            f = fits[(fits["group_id"] == g["group_id"]) & (fits["quantity"] == q)]
            if q == "escape" and not len(f):
                continue
            t = r[col]
            good = ok & np.isfinite(t) & (t > 0)
            ax.scatter(r.loc[good, "beta"], t[good], s=9, color=colour, marker=marker, alpha=0.5, lw=0,
                       label=q.replace("_", " "))
            cens = ok & ~good
            if cens.any():
                ax.scatter(r.loc[cens, "beta"], r.loc[cens, "t_end"], s=18, marker="^", facecolors="none",
                           edgecolors=colour, label=f"{q.replace('_', ' ')} censored (t_end)")
            if len(f) and f["status"].iloc[0] == "ok":
                f = f.iloc[0]
                ax.plot(bgrid, np.exp(f["a"] + f["c"] * bgrid + f["b"] * np.log(bgrid)), color=colour, lw=1.2)
                notes.append(f"{q.replace('_', ' ')}: c={f['c']:.3f} [{f['c_lo']:.3f}, {f['c_hi']:.3f}], "
                             f"theory {f['theory_slope']:.3f}")
        if g["init"] == "caps" and int(g["k"]) == 2:
            tm = _theory_merge_curve(g, r, bgrid)
            if tm is not None:
                ax.plot(bgrid, tm, color="k", ls="--", lw=1.0, label="two-cluster ODE")
        if g["init"] == "caps" and int(g["k"]) >= 2 and "escape_bound" in r:
            eb = r.groupby("beta")["escape_bound"].median()
            eg = r.groupby("beta")["escape_gamma"].median()
            eb = eb[eg > 0]
            if len(eb):
                ax.plot(eb.index, eb.to_numpy(), color="C0", ls=":", lw=1.2, label="escape bound T₂ (γ>0)")
        if not ok.any():
            _empty(ax, "no ok runs")
        ax.set_yscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel("time")
        ax.set_title(g["label"] + ("\n" + "\n".join(notes) if notes else ""), fontsize=8)
        ax.legend(fontsize=6, loc="upper left")
    _title(fig, "escape and first-merge times", sweep, len(shown), len(groups),
           "lines: fitted ln T = a + cβ + b ln β; c with bootstrap 95% CI; theory slope 1 − cos D_min / 1 − α")
    return fig


def plot_lifetimes(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4):
    import seaborn as sns

    runs = _read(tables, "runs", sweep)
    groups = _groups(runs)
    shown = groups.head(max_panels)
    lt = _read(tables, "lifetimes", sweep)
    lt["group_id"] = lt["cell_id"].map(runs.drop_duplicates("cell_id").set_index("cell_id")["group_id"])
    fig, axes = _figure(len(shown))
    for ax, (_, g) in zip(axes, shown.iterrows()):
        sub = lt[lt["group_id"] == g["group_id"]]
        betas = _pick_betas(sub["beta"], n_betas)
        sub = sub[sub["beta"].isin(betas)]
        n_cens = int(sub["censored"].sum())
        sub = sub[~sub["censored"] & (sub["lifetime"] > 0)].copy()
        if not len(sub):
            _empty(ax, "no closed plateaus")
        else:
            sub["log10 lifetime"] = np.log10(sub["lifetime"])
            sub["plateau (clusters)"] = sub["n_clusters"].astype(int)
            sub["β"] = sub["beta"].map(lambda b: f"{b:g}")
            order = sorted(sub["plateau (clusters)"].unique(), reverse=True)
            hue_order = [f"{b:g}" for b in betas if f"{b:g}" in set(sub["β"])]
            sns.boxplot(data=sub, x="plateau (clusters)", y="log10 lifetime", hue="β", order=order,
                        hue_order=hue_order, palette="viridis", ax=ax, fliersize=0, linewidth=0.8)
            sns.stripplot(data=sub, x="plateau (clusters)", y="log10 lifetime", hue="β", order=order,
                          hue_order=hue_order, palette="viridis", dodge=True, size=2.5, ax=ax, legend=False,
                          edgecolor="0.2", linewidth=0.3)
            ax.legend(fontsize=7, title="β", title_fontsize=7)
        ax.set_title(g["label"] + (f"\n{n_cens} censored plateaus left out" if n_cens else ""), fontsize=9)
    _title(fig, "plateau lifetimes", sweep, len(shown), len(groups))
    return fig


PLOTTERS = {"staircase": plot_staircase, "clusters": plot_clusters, "times": plot_times,
            "lifetimes": plot_lifetimes}


def plot(kind: str, tables: str, sweep: str, outputs, *, max_panels: int = 12, n_betas: int = 4) -> None:
    """Draw figure ``kind`` of ``sweep`` and save it to every path in ``outputs`` (format from the suffix)."""
    from ..pipeline.io import atomic_savefig

    fig = PLOTTERS[kind](tables, sweep, max_panels=max_panels, n_betas=n_betas)
    try:
        for out in outputs:  # temporary file + rename: a reader never sees half a figure
            atomic_savefig(fig, out, dpi=110)
    finally:
        plt.close(fig)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.analysis.plots", description="figures of a sweep")
    p.add_argument("kind", choices=(*KINDS, "all"), help="which figure ('all': every kind)")
    p.add_argument("--sweep", required=True)
    p.add_argument("--tables", required=True, help="folder with the aggregated Parquet tables")
    p.add_argument("--outdir", help="write <outdir>/<kind>.<format> for every format")
    p.add_argument("--formats", nargs="+", default=["png", "pdf"])
    p.add_argument("--out", nargs="+", help="explicit output files (one kind only; format from the suffix)")
    p.add_argument("--max-panels", type=int, default=12)
    p.add_argument("--n-betas", type=int, default=4)
    args = p.parse_args(argv)
    kinds = KINDS if args.kind == "all" else (args.kind,)
    if args.out and len(kinds) > 1:
        p.error("--out needs a single kind; use --outdir with 'all'")
    if not args.out and not args.outdir:
        p.error("give --outdir or --out")
    for kind in kinds:
        outs = args.out or [os.path.join(args.outdir, f"{kind}.{fmt}") for fmt in args.formats]
        plot(kind, args.tables, args.sweep, outs, max_panels=args.max_panels, n_betas=args.n_betas)
        print(f"{kind} {args.sweep} -> {' '.join(outs)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
