"""Figures of a sweep, from the aggregated tables (PNG and PDF; matplotlib Agg backend).

Four figures per sweep, one panel per fit group (model, init, d, n, k, geometry; the
``times`` figure puts groups that differ only by n in one panel):

* ``staircase``: median normalised energy Ē over seeds against log time s = ln t / β,
  one line per β; dashed horizontal lines: the plateau heights Σ_a m_a² (lifetimes table)
  found in at least a fifth of the seeds (and two seeds), labelled once each (levels closer
  than the line width are one level; labels that would collide are dropped; heights of
  fewer seeds are short ticks on the right edge); dotted vertical lines: the predicted step
  positions s_k = max_{l≤k} (1 − cos D_l) (D_l the gap between the clusters of merge l when
  their plateau opened, events table; D_min for runs that never merged), which the steps
  approach as β grows (docs/science.md §4).
* ``clusters``: mean single-linkage cluster count against t (log axis), one line per β;
  for k = 2 caps the exact two-cluster merge time (reduced ODE), for k ≥ 3 caps on a circle the
  k-point ODE's, as a triangle on the top
  edge, in the colour of its β.
* ``times``: escape and first-merge times against β (log axis), every seed a point,
  censored runs as open triangles at the end of the run (lower bounds), the fitted
  ln T = a + c·β + b·ln β (only where the fit's status is ``ok``; otherwise the status is
  written in the panel), and theory: the exact two-point-cluster merge time (k = 2 caps)
  and GKPR24's escape lower bound T₂ = (ε/n) e^{(1−α)β} (where γ > 0). Groups that differ
  only by n share a panel, coloured by n (the slope c must not depend on n).
* ``lifetimes``: each plateau's lifetime (log10) against its cluster count, every seed a
  dot and the median over seeds a line per β; censored plateaus (the run ended first) as
  open triangles at their lower bound.

Scaling (1 to thousands of cells, 1 to 30 β, k up to 12):

* at most ``max_panels`` panels per page (``plots.max_panels``); the PNG is the first page
  and says which groups it shows, the PDF holds every page (at most ``MAX_PAGES``; groups
  beyond are named as left out in the title);
* parameters shared by every group go in the figure title, the panel titles name only
  what varies;
* a colour scale of more than ``LEGEND_MAX`` values is a colour bar, fewer are legend
  entries; every legend sits outside the panels (below them), never on data;
* panels without data say why (no ok runs, all failed, no closed plateau, no fit).

Columns added by later versions of the tables are used when present: events ``kind``
(only ``merge`` events mark step positions), fits ``status`` (any value other than ``ok``
is printed in the panel instead of a fitted line), ``exact_slope``/``ode_slope``.

Command line::

    python -m attention_dynamics.analysis.plots KIND --sweep NAME --tables results/tables --outdir DIR
"""
from __future__ import annotations

import json
import math
import os
import textwrap

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .figstyle import LEGEND_MAX, Scale, fit_width, legend_below, suptitle  # noqa: E402

__all__ = ["KINDS", "MAX_PAGES", "LEGEND_MAX", "figures", "plot", "main", "plot_staircase", "plot_clusters",
           "plot_times", "plot_lifetimes"]

KINDS = ("staircase", "clusters", "times", "lifetimes")
MAX_PAGES = 25          # pages of one PDF; groups beyond MAX_PAGES × max_panels are left out (said in the title)
COMMON_FRACTION = 0.2   # a plateau level / step position is a line when at least this fraction of seeds has it
MAX_LINES = 8           # most dashed level lines (and dotted step lines) per panel
LEVEL_TOL = 0.004       # Ē levels (and s positions) closer than this coincide (< line width at panel size)
PANEL_W, PANEL_H, NCOLS = 4.2, 3.3, 3
DPI = 110
GROUP_KEYS = ["model", "init", "d", "n", "k", "eps", "spacing", "centres", "min_angle", "masses", "r", "sigma",
              "theta_c", "t_max", "min_mass", "delta", "rtol", "atol", "per_decade", "max_steps", "max_wall_seconds"]
_NAMES = {"eps": "ε", "theta_c": "θ_c", "min_angle": "min angle", "per_decade": "samples/decade",
          "max_steps": "max steps", "sigma": "σ", "min_mass": "min mass", "max_wall_seconds": "max wall s"}
_QUANTITY = {"escape": ("escape_time", "o", "C0", "escape"), "first_merge": ("first_merge_time", "s", "C3",
                                                                               "first merge")}


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------
def _read(tables: str, name: str, sweep: str, columns=None) -> pd.DataFrame:
    """Rows of ``sweep`` in ``<tables>/<name>.parquet`` (only the listed columns that exist)."""
    import pyarrow.parquet as pq

    path = os.path.join(tables, f"{name}.parquet")
    if not os.path.exists(path):
        return pd.DataFrame(columns=list(columns or []))
    names = pq.read_schema(path).names
    cols = None if columns is None else [c for c in columns if c in names]
    df = pq.read_table(path, columns=cols).to_pandas()
    if "sweep" in df.columns:
        df = df[df["sweep"].astype(str) == sweep]
    return df.reset_index(drop=True)


def _with_group(df: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    cell_group = runs.drop_duplicates("cell_id").set_index("cell_id")["group_id"]
    return df.assign(group_id=df["cell_id"].map(cell_group)) if len(df) else df.assign(group_id=pd.Series(dtype=str))


def _merge_events(ev: pd.DataFrame) -> pd.DataFrame:
    """Merge events only (a ``kind`` column, when the table has one, also lists absorptions, stragglers)."""
    if "kind" in ev.columns:
        return ev[ev["kind"].astype(str) == "merge"]
    return ev


def _ok(runs: pd.DataFrame) -> pd.Series:
    return runs["status"].astype(str) == "ok"


def _is_set(v) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and not math.isfinite(v):
        return False
    return str(v) not in ("", "nan", "None", "<NA>")


def _fmt(col: str, v) -> str:
    if col == "model":
        return str(v).upper()
    if col == "init":
        return str(v)
    name = _NAMES.get(col, col)
    if col == "masses":
        try:
            v = ",".join(f"{x:g}" for x in json.loads(v))
        except (TypeError, ValueError):
            pass
        return f"masses=({v})"
    if isinstance(v, (float, np.floating)):
        return f"{name}={float(v):.3g}"
    return f"{name}={v}"


def _key(v) -> str:
    return f"{float(v):.12g}" if isinstance(v, (float, np.floating, int, np.integer)) else str(v)


class _Groups:
    """The fit groups of a sweep: sorted, with the parameters that vary between them."""

    def __init__(self, runs: pd.DataFrame):
        if "group_id" not in runs.columns:
            keys = [c for c in GROUP_KEYS if c in runs.columns]
            runs = runs.assign(group_id=runs[keys].astype(str).agg("|".join, axis=1) if keys else "all")
        self.runs = runs
        self.keys = [c for c in GROUP_KEYS if c in runs.columns]
        g = runs.drop_duplicates("group_id")
        if len(g):
            g = g.sort_values(self.keys, kind="stable") if self.keys else g
        self.table = g.reset_index(drop=True)
        self.varying = [c for c in self.keys if self.table[c].map(_key).nunique() > 1]

    def __len__(self) -> int:
        return len(self.table)

    def label(self, row, exclude=()) -> str:
        """What distinguishes this group from the others of the sweep."""
        parts = [_fmt(c, row[c]) for c in self.varying if c not in exclude and _is_set(row[c]) and _applies(c, row)]
        return " ".join(parts)

    def shared(self, exclude=()) -> str:
        """The parameters every group of the sweep shares (the solver settings left out)."""
        if not len(self.table):
            return ""
        row = self.table.iloc[0]
        skip = {"delta", "rtol", "atol", "per_decade", "max_steps", "max_wall_seconds", "min_mass", "centres",
                *exclude}
        return " ".join(_fmt(c, row[c]) for c in self.keys
                        if c not in self.varying and c not in skip and _is_set(row[c]) and _applies(c, row))


def _applies(key: str, row) -> bool:
    """Whether ``key`` means anything for this group (k is not a parameter of uniform data)."""
    return not (key == "k" and row.get("init") == "uniform")


# --------------------------------------------------------------------------------------
# colours, pages, titles, legends
# --------------------------------------------------------------------------------------
def _pick(values, m: int) -> list[float]:
    """At most ``m`` of the distinct values, spread evenly over their range (ends included)."""
    u = np.unique(np.asarray(values, dtype=float))
    u = u[np.isfinite(u)]
    if len(u) <= m:
        return list(u)
    idx = np.unique(np.round(np.linspace(0, len(u) - 1, m)).astype(int))
    return list(u[idx])


def _chunks(n_items: int, per_page: int) -> list[range]:
    per_page = max(int(per_page), 1)
    pages = [range(i, min(i + per_page, n_items)) for i in range(0, n_items, per_page)]
    return pages[:MAX_PAGES] or [range(0, 0)]


def _page(n_panels: int, panel_h: float = PANEL_H):
    ncols = min(NCOLS, max(n_panels, 1))
    nrows = max(math.ceil(n_panels / ncols), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL_W * ncols, panel_h * nrows + 0.6), squeeze=False,
                             layout="constrained", dpi=DPI)
    for ax in axes.ravel()[max(n_panels, 1):]:
        ax.set_visible(False)
    return fig, list(axes.ravel()[:max(n_panels, 1)])


def _pages(n_items: int, max_panels: int, panel_h: float = PANEL_H):
    """Yield (page index, all pages, figure, [(axes, item index)]) for items drawn max_panels per page."""
    pages = _chunks(n_items, max_panels)
    for p, rows in enumerate(pages):
        fig, axes = _page(len(rows), panel_h)
        yield p, pages, fig, axes, list(zip(axes, rows))


def _betas_per_group(G: "_Groups", n_betas: int):
    """The β drawn in each group's panel (n_betas spread over its range) and their colour scale."""
    runs = G.runs
    betas_of = {gid: _pick(runs.loc[runs["group_id"] == gid, "beta"], n_betas) for gid in G.table["group_id"]}
    return betas_of, Scale("β", [b for bs in betas_of.values() for b in bs])


def _panel_title(ax, text: str, fontsize: float = 8) -> None:
    ax.set_title(text, fontsize=fontsize)  # wrapped to the axes width in _finish, once the layout is known


def _log_ticks(axis, lo: float, hi: float) -> None:
    """Major ticks at a few decades; no minor ticks past 6 decades (hundreds of unlabelled ticks cost seconds)."""
    from matplotlib.ticker import LogLocator, NullLocator

    axis.set_major_locator(LogLocator(base=10.0, numticks=7))
    if lo > 0 and hi > 0 and math.log10(hi / lo) > 6:
        axis.set_minor_locator(NullLocator())


def _message(ax, text: str) -> None:
    """A panel without data: say why, in the middle of the empty axes."""
    ax.text(0.5, 0.5, textwrap.fill(text, 40), ha="center", va="center", transform=ax.transAxes, color="0.35",
            fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _finish(fig, axes, title: str, page_note: str, handles=(), scales=()) -> None:
    """Figure title (wrapped to the figure width), legend below the panels, colour bars on the right."""
    for scale, label in scales:
        scale.colourbar(fig, axes, label)
        handles = [*handles, *scale.handles()]
    legend_below(fig, handles)
    suptitle(fig, title + (f"\n{page_note}" if page_note else ""))
    fig.canvas.draw()  # lay out once with the long titles, then wrap each title to its axes' width
    r = fig.canvas.get_renderer()
    for ax in axes:
        if ax.get_visible() and ax.get_title():
            fit_width(ax.title, 0.98 * ax.get_window_extent(r).width, r)


def _page_note(page: int, pages: list[range], total: int, what: str, pdf_name: str | None) -> str:
    if total <= len(pages[page]) and len(pages) == 1:
        return ""
    shown = pages[page]
    s = f"{what} {shown.start + 1}–{shown.stop} of {total} (page {page + 1} of {len(pages)}"
    s += f"; all pages in {pdf_name})" if pdf_name and len(pages) > 1 else ")"
    drawn = pages[-1].stop
    if drawn < total:
        s += f"; {what} {drawn + 1}–{total} not drawn (at most {MAX_PAGES} pages of plots.max_panels): see the tables"
    return s


# --------------------------------------------------------------------------------------
# values common to many runs (plateau levels, step positions)
# --------------------------------------------------------------------------------------
def _common_values(per_run: list[tuple[int, np.ndarray]], tol: float) -> tuple[list[tuple[float, float]],
                                                                                 np.ndarray]:
    """Cluster values closer than ``tol``; return ([(value, fraction of seeds having it)] common, rare values).

    ``per_run``: (seed index, values) per run. Seeds, not runs, are counted: a seed has the same
    initial data at every β, so its values recur at every β. Common: at least COMMON_FRACTION of
    the seeds and two seeds (one if there is one) have it; at most MAX_LINES, most frequent first.
    """
    seeds = [int(sd) for sd, _ in per_run]
    n_seeds = max(len(set(seeds)), 1)
    vals = [np.unique(np.asarray(v, dtype=float)[np.isfinite(v)]) for _, v in per_run]
    allv = np.concatenate([v for v in vals if len(v)] or [np.empty(0)])
    owner = np.concatenate([np.full(len(v), sd) for sd, v in zip(seeds, vals) if len(v)] or [np.empty(0, int)])
    if not len(allv):
        return [], np.empty(0)
    order = np.argsort(allv, kind="stable")
    allv, owner = allv[order], owner[order]
    cuts = np.nonzero(np.diff(allv) > tol)[0] + 1
    common, rare = [], []
    need = min(2, n_seeds)  # a value of one seed among many is that seed's, not the group's
    for v, who in zip(np.split(allv, cuts), np.split(owner, cuts)):
        k = len(np.unique(who))
        (common if k / n_seeds >= COMMON_FRACTION and k >= need else rare).append((float(np.median(v)), k / n_seeds))
    common.sort(key=lambda p: -p[1])
    rare += common[MAX_LINES:]
    return common[:MAX_LINES], np.array([v for v, _ in rare])


def _label_levels(ax, levels: list[tuple[float, float]], ylim: tuple[float, float], fontsize: float = 7) -> None:
    """Label horizontal levels on the right edge, most frequent first, skipping labels that would collide."""
    axes_h_pt = (PANEL_H - 1.2) * 72.0  # panel height less title and x label
    gap = 1.35 * fontsize / axes_h_pt * (ylim[1] - ylim[0])
    done: list[float] = []
    for lev, _ in sorted(levels, key=lambda p: (abs(p[0] - 1.0) > LEVEL_TOL, -p[1])):
        if all(abs(lev - d) >= gap for d in done) and ylim[0] <= lev <= ylim[1]:
            ax.text(1.01, lev, f"{lev:.3g}", transform=ax.get_yaxis_transform(), va="center", ha="left",
                    fontsize=fontsize, color="0.3", clip_on=False)
            done.append(lev)


def _rug(ax, values, axis: str) -> None:
    for v in values:
        if axis == "y":
            ax.axhline(v, xmin=0.975, xmax=1.0, color="0.55", lw=0.7, zorder=1)
        else:
            ax.axvline(v, ymin=0.965, ymax=1.0, color="0.55", lw=0.7, zorder=1)


def _end_marker(ax, x, y, colour, x_view_max=None) -> str:
    """Open marker at the end of a censored curve; '>' on the right edge if the end lies beyond the view."""
    if x_view_max is not None and x > x_view_max:
        ax.plot([x_view_max], [y], ">", mfc="white", mec=colour, ms=6, mew=1.2, clip_on=False, zorder=5)
        return "beyond"
    ax.plot([x], [y], "o", mfc="white", mec=colour, ms=6, mew=1.2, clip_on=False, zorder=5)
    return "end"


_END_HANDLES = {
    "end": Line2D([], [], ls="", marker="o", mfc="white", mec="0.2", label="run ended at t_max, > 1 cluster left "
                  "(censored seeds at this β)"),
    "beyond": Line2D([], [], ls="", marker=">", mfc="white", mec="0.2", label="censored curve continues flat "
                     "beyond the view"),
}


def _status_note(runs_g: pd.DataFrame) -> str:
    ok = _ok(runs_g)
    parts = []
    cens = int((ok & runs_g["censored"].astype(bool)).sum()) if "censored" in runs_g else 0
    if cens:
        parts.append(f"{cens}/{len(runs_g)} runs censored")
    if (~ok).any():
        bad = runs_g.loc[~ok, "status"].astype(str).value_counts()
        parts.append(", ".join(f"{v} {k}" for k, v in bad.items()))
    if "formation_status" in runs_g:  # uniform data: say where the formation rule gave no formation time
        fs = runs_g.loc[ok, "formation_status"].astype(str)
        if (fs == "sparse").any():
            parts.append(f"{int((fs == 'sparse').sum())}/{len(runs_g)} sparse at t=0 (counted from t=0)")
        if (fs == "not_formed").any():
            parts.append(f"{int((fs == 'not_formed').sum())}/{len(runs_g)} not formed")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------
# theory
# --------------------------------------------------------------------------------------
def _cluster_counts(row: pd.Series) -> tuple[float, float]:
    n = int(row["n"])
    masses = row.get("masses", "")
    if isinstance(masses, str) and masses:
        from ..initial import split_counts

        a, b = split_counts(n, 2, json.loads(masses))
        return float(a), float(b)
    return float(n - n // 2), float(n // 2)


def merge_time_theory(runs_g: pd.DataFrame, betas) -> np.ndarray | None:
    """Exact first-merge time of a group at ``betas`` where the package has the theory, else None.

    k = 2 caps: the reduced two-point-cluster ODE from D_min to θ_c
    (``theory.twocluster.two_cluster_merge_time``), the same call as ``fits.ode_slope``.
    k ≥ 3 caps on a great circle: the k-point ODE of the nominal collapsed centres
    (``theory.kpoint.circle_merge_log_times``; NaN where the centres are an equilibrium, e.g.
    spacing 2π/k). Not for Gaussian mixtures: their collapsed centres scatter by ~σ, and the closest
    pair of each seed merges measurably earlier than the nominal one (σ = 0.05, k = 3: about 2×);
    the fits table's ``ode_slope`` uses each seed's own centres instead.
    """
    if not len(runs_g) or str(runs_g["init"].iloc[0]) != "caps":
        return None
    row = runs_g.iloc[0]
    k = int(row["k"])
    betas = np.asarray(betas, dtype=float)
    if k >= 3:
        return _kpoint_merge_times(row, betas)
    if k != 2:
        return None
    from ..theory.twocluster import two_cluster_merge_time

    d_min = float(pd.to_numeric(runs_g["d_min"], errors="coerce").median())
    theta_c = float(row["theta_c"])
    if not (math.isfinite(d_min) and theta_c < d_min < math.pi):
        return None
    n_a, n_b = _cluster_counts(row)
    try:
        return np.array([two_cluster_merge_time(d_min, theta_c, float(b), n_a, n_b, int(row["n"]), str(row["model"]))
                         for b in betas])
    except (ValueError, FloatingPointError):
        return None


def _kpoint_merge_times(row: pd.Series, betas: np.ndarray) -> np.ndarray | None:
    """First-merge times of the k nominal collapsed centres (k-point ODE on the great circle), or None."""
    from ..initial import split_counts
    from ..theory.kpoint import circle_angles, circle_merge_log_times

    if str(row.get("centres", "circle") or "circle") != "circle" or int(row["k"]) > 64:
        return None
    spacing = pd.to_numeric(pd.Series([row.get("spacing", np.nan)]), errors="coerce").iloc[0]
    spacing = float(spacing) if np.isfinite(spacing) else None
    masses = row.get("masses", "")
    counts = split_counts(int(row["n"]), int(row["k"]), json.loads(masses) if isinstance(masses, str) and masses
                          else None).astype(float)
    theta = circle_angles(int(row["k"]), spacing)
    try:
        r = circle_merge_log_times(np.tile(theta, (len(betas), 1)), np.tile(counts, (len(betas), 1)), betas,
                                   str(row["model"]), float(row["theta_c"]))
    except (ValueError, FloatingPointError):
        return None
    t = np.where(r.equilibrium, np.nan, np.exp(r.log_first))
    return t if np.isfinite(t).any() else None


# --------------------------------------------------------------------------------------
# staircase and cluster count
# --------------------------------------------------------------------------------------
def _median_curve(tr_b: pd.DataFrame, value: str, how: str = "median") -> pd.Series:
    piv = tr_b.pivot_table(index="time", columns="seed", values=value, aggfunc="first")
    s = piv.median(axis=1) if how == "median" else piv.mean(axis=1)
    return s.dropna()


def _last_change(x: np.ndarray, y: np.ndarray) -> float:
    ch = np.nonzero(np.abs(np.diff(y)) > 1e-9)[0]
    return float(x[ch[-1] + 1]) if len(ch) else float(x[0])


def _staircase_panel(ax, g, runs_g, tr_g, lt_g, ev_g, betas, bscale, used: set) -> None:
    tr_g = tr_g[tr_g["time"] > 0]
    if not len(tr_g.dropna(subset=["energy"])):
        _message(ax, "no energy samples for this group" + (f" ({_status_note(runs_g)})" if len(runs_g) else ""))
        return
    ok = _ok(runs_g)
    curves = []
    for b in betas:
        med = _median_curve(tr_g[tr_g["beta"] == b], "energy")
        if not len(med):
            continue
        x = np.log(med.index.to_numpy(dtype=float)) / b
        y = med.to_numpy(dtype=float)
        ax.plot(x, y, color=bscale(b), lw=1.4)
        at_b = runs_g[(runs_g["beta"] == b) & ok]
        cens = bool(at_b["censored"].astype(bool).any()) if "censored" in at_b else False
        curves.append((b, x, y, cens))
    # predicted step positions (per run): s_k = max_{l≤k} (1 − cos D_l), D_l the gap between the clusters of
    # merge l when their plateau opened; a merge cannot come before the one that opened its plateau
    ev_m = _merge_events(ev_g)
    if len(ev_m):
        ev_m = ev_m.sort_values(["beta", "seed", "time"] if "time" in ev_m else ["beta", "seed"], kind="stable")
    steps_of = {k: np.maximum.accumulate(1.0 - np.cos(v.to_numpy(dtype=float)))
                for k, v in ev_m.groupby(["beta", "seed"])["gap_at_open"]} if len(ev_m) else {}
    d_min = runs_g.set_index(["beta", "seed"])["d_min"] if "d_min" in runs_g else pd.Series(dtype=float)
    per_run = [(s, steps_of.get((b, s), 1.0 - np.cos(np.array([d_min.get((b, s), np.nan)], dtype=float))))
               for b, s in zip(runs_g["beta"], runs_g["seed"])]
    # positions closer than 3% of the s range are one line (the measured gaps jitter between seeds and β)
    s_range = max([_last_change(x, y) for _, x, y, _ in curves] + [0.05]
                  + [float(np.nanmax(v)) for _, v in per_run if np.isfinite(v).any()])
    steps, _ = _common_values(per_run, max(LEVEL_TOL, 0.03 * s_range))
    # plateau levels Σ m_a² (per run), always with 1 (one cluster)
    per_run = [(s, grp["sum_mass_sq"].to_numpy(dtype=float)) for (_, s), grp in lt_g.groupby(["beta", "seed"])] \
        if len(lt_g) else []
    levels, levels_rare = _common_values(per_run, LEVEL_TOL)
    if not any(abs(v - 1.0) <= LEVEL_TOL for v, _ in levels):
        levels.append((1.0, 1.0))
    ylim = (0.0, 1.05)
    for lev, _ in levels:
        ax.axhline(lev, color="0.5", ls="--", lw=0.8, zorder=0)
    _rug(ax, levels_rare, "y")
    _label_levels(ax, levels, ylim)
    ends = [_last_change(x, y) for _, x, y, _ in curves]
    x_hi = max([*ends, *(v for v, _ in steps), 0.05]) * 1.15 + 0.02
    for v, _ in steps:
        ax.axvline(v, color="0.3", ls=":", lw=0.9, zorder=0)
    for b, x, y, cens in curves:
        if cens:
            used.add(_end_marker(ax, x[-1], y[-1], bscale(b), x_hi))
    if levels_rare.size:
        used.add("rare_levels")
    if steps:
        used.add("steps")
    ax.set_xlim(-0.04 * x_hi, x_hi)
    ax.set_ylim(*ylim)
    ax.set_xlabel("s = ln t / β", fontsize=8)
    ax.set_ylabel("Ē (median over seeds)", fontsize=8)


def _clusters_panel(ax, g, runs_g, tr_g, betas, bscale, used: set) -> None:
    tr_g = tr_g[(tr_g["time"] > 0)]
    tr_g = tr_g.assign(n_clusters=tr_g["n_clusters"].where(tr_g["n_clusters"] >= 0))
    if not len(tr_g.dropna(subset=["n_clusters"])):
        _message(ax, "no cluster counts for this group" + (f" ({_status_note(runs_g)})" if len(runs_g) else ""))
        return
    ok = _ok(runs_g)
    curves = []
    for b in betas:
        m = _median_curve(tr_g[tr_g["beta"] == b], "n_clusters", how="mean")
        if not len(m):
            continue
        t, y = m.index.to_numpy(dtype=float), m.to_numpy(dtype=float)
        ax.step(t, y, where="post", color=bscale(b), lw=1.4)
        at_b = runs_g[(runs_g["beta"] == b) & ok]
        cens = bool(at_b["censored"].astype(bool).any()) if "censored" in at_b else False
        curves.append((b, t, y, cens))
    if not curves:
        _message(ax, "no samples at the drawn β")
        return
    t_lo = min(t[0] for _, t, _, _ in curves)
    t_hi = max(t[-1] for _, t, _, _ in curves)
    theory = merge_time_theory(runs_g, [b for b, *_ in curves])
    ends = [_last_change(t, y) for _, t, y, _ in curves]
    if theory is not None:
        ends += [float(v) for v in theory if np.isfinite(v)]
    view_hi = min(t_hi, 30.0 * max(ends)) if ends else t_hi
    view_hi = max(view_hi, t_lo * 10)
    ax.set_xscale("log")
    ax.set_xlim(t_lo, view_hi)
    _log_ticks(ax.xaxis, t_lo, view_hi)
    if theory is not None:
        for (b, *_), T in zip(curves, theory):
            if np.isfinite(T) and t_lo <= T <= view_hi:
                ax.plot([T], [1.0], "v", color=bscale(b), ms=6, transform=ax.get_xaxis_transform(), clip_on=False,
                        zorder=6)
                used.add("ode_tick")
    for b, t, y, cens in curves:
        if cens:
            used.add(_end_marker(ax, t[-1], y[-1], bscale(b), view_hi))
    if "formation_time" in runs_g:  # uniform data: before formation the counts are components, not clusters
        for b, *_ in curves:
            tf = runs_g.loc[(runs_g["beta"] == b) & ok, "formation_time"].astype(float)
            tf = float(np.nanmedian(tf)) if np.isfinite(tf).any() else np.nan
            if np.isfinite(tf) and t_lo <= tf <= view_hi:
                ax.plot([tf], [0.0], "^", color=bscale(b), ms=6, transform=ax.get_xaxis_transform(), clip_on=False,
                        zorder=6)
                used.add("formation_tick")
    lo = min(float(np.nanmin(y)) for _, _, y, _ in curves)
    hi = max(float(np.nanmax(y)) for _, _, y, _ in curves)
    ax.set_ylim(max(lo - 0.3, 0.0), hi + 0.3)  # at least one count of range, also when nothing merged
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=1))
    ax.set_xlabel("t", fontsize=8)
    ax.set_ylabel("clusters (mean over seeds)", fontsize=8)


def _beta_pages(kind: str, tables: str, sweep: str, max_panels: int, n_betas: int, pdf_name=None) -> list:
    G = _Groups(_read(tables, "runs", sweep))
    runs = G.runs
    what = {"staircase": "energy staircase", "clusters": "cluster count"}[kind]
    if not len(G):
        return [_no_data_page(sweep, what)]
    tr = _with_group(_read(tables, "trajectories", sweep, ["sweep", "cell_id", "beta", "seed", "time",
                                                           "energy" if kind == "staircase" else "n_clusters"]), runs)
    if kind == "staircase":
        lt = _with_group(_read(tables, "lifetimes", sweep, ["sweep", "cell_id", "beta", "seed", "sum_mass_sq"]), runs)
        ev = _with_group(_read(tables, "events", sweep, ["sweep", "cell_id", "beta", "seed", "time", "gap_at_open",
                                                          "kind"]),
                         runs)
    betas_of, bscale = _betas_per_group(G, n_betas)
    figs = []
    for p, pages, fig, axes, panels in _pages(len(G), max_panels):
        used: set = set()
        for ax, g in ((ax, G.table.iloc[i]) for ax, i in panels):
            gid = g["group_id"]
            runs_g = runs[runs["group_id"] == gid]
            tr_g = tr[tr["group_id"] == gid]
            if kind == "staircase":
                _staircase_panel(ax, g, runs_g, tr_g, lt[lt["group_id"] == gid], ev[ev["group_id"] == gid],
                                 betas_of[gid], bscale, used)
            else:
                _clusters_panel(ax, g, runs_g, tr_g, betas_of[gid], bscale, used)
            note = _status_note(runs_g)
            _panel_title(ax, "\n".join(x for x in (G.label(g), note) if x))
            ax.tick_params(which="both", labelsize=7)
        handles = []
        if kind == "staircase":
            handles += [Line2D([], [], color="0.5", ls="--", lw=0.8, label="plateau height Σ m_a² (lifetimes)")]
            if "steps" in used:
                handles.append(Line2D([], [], color="0.3", ls=":", lw=0.9,
                                      label="predicted step s = 1 − cos D (gap D at plateau opening)"))
            if "rare_levels" in used:
                handles.append(Line2D([], [], color="0.55", lw=0.7,
                                      label=f"right-edge ticks: heights of fewer seeds (< {COMMON_FRACTION:.0%} or 1)"))
        else:
            if "ode_tick" in used:
                handles.append(Line2D([], [], ls="", marker="v", color="0.3", label="exact first-merge time of the collapsed clusters (ODE)"))
            if "formation_tick" in used:
                handles.append(Line2D([], [], ls="", marker="^", color="0.3",
                                      label="median formation time (earlier counts: components, not yet clusters)"))
        handles += [_END_HANDLES[k] for k in ("end", "beyond") if k in used]
        title = f"{sweep}: {what}" + (f" — {G.shared()}" if G.shared() else "")
        _finish(fig, axes, title, _page_note(p, pages, len(G), "groups", pdf_name), handles,
                [(bscale, "β")])
        figs.append(fig)
    return figs


def plot_staircase(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4, pdf_name=None) -> list:
    """Pages of the energy-staircase figure (list of matplotlib figures)."""
    return _beta_pages("staircase", tables, sweep, max_panels, n_betas, pdf_name)


def plot_clusters(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4, pdf_name=None) -> list:
    """Pages of the cluster-count figure."""
    return _beta_pages("clusters", tables, sweep, max_panels, n_betas, pdf_name)


def _no_data_page(sweep: str, what: str):
    fig, axes = _page(1)
    _message(axes[0], f"no runs of sweep {sweep!r} in the tables")
    fig.suptitle(f"{sweep}: {what}", fontsize=10)
    return fig


# --------------------------------------------------------------------------------------
# times
# --------------------------------------------------------------------------------------
_FIT_STATUS = {"too_few_beta": "no fit: fewer than 3 β values with a finite time",
               "too_few_obs": "no fit: fewer than 4 finite times"}


def _slope_text(f: pd.Series) -> str:
    status = str(f.get("status", "ok"))
    c = f.get("c", np.nan)
    if status != "ok":  # any other status (the fits table may grow new ones): say it, draw no line
        s = _FIT_STATUS.get(status, f"fit status {status}, no line drawn")
        return s + (f" (c = {c:.3f})" if c is not None and np.isfinite(c) else "")
    s = f"c = {c:.3f}"
    if np.isfinite(f.get("c_lo", np.nan)) and np.isfinite(f.get("c_hi", np.nan)):
        s += f" [{f['c_lo']:.3f}, {f['c_hi']:.3f}]"
    for col, name in (("exact_slope", "exact"), ("ode_slope", "ODE")):
        v = f.get(col, np.nan)
        if v is not None and np.isfinite(v):
            s += f", {name} {v:.3f}"
            break
    return s


def _theory_text(fits_q: pd.DataFrame) -> str:
    ts = pd.to_numeric(fits_q.get("theory_slope", pd.Series(dtype=float)), errors="coerce").dropna()
    if not len(ts):
        return "no theory slope for this group"
    name = str(fits_q["theory"].iloc[0]).replace("-", "−").replace("alpha", "α") if "theory" in fits_q else "theory"
    if ts.max() - ts.min() > 5e-4:
        return f"{name} = {ts.min():.3f}…{ts.max():.3f}"
    return f"{name} = {ts.iloc[0]:.3f}"


def _times_notes(fits_fam: pd.DataFrame, ns: list[int]) -> list[str]:
    """Fitted slopes with their CIs next to the theory slope, per quantity (and per n when n varies)."""
    notes = []
    for q, (_, _, _, qname) in _QUANTITY.items():
        fq = fits_fam[fits_fam["quantity"] == q] if len(fits_fam) else fits_fam
        if not len(fq):
            continue
        fq = fq.sort_values("n")
        if len(ns) == 1:
            notes.append(f"{qname}: {_slope_text(fq.iloc[0])}; {_theory_text(fq)}")
        elif len(fq) <= 3:
            notes.append(f"{qname}: {_theory_text(fq)}")
            notes += [f"n={int(f['n'])}: {_slope_text(f)}" for _, f in fq.iterrows()]
        else:
            okf = fq[(fq["status"].astype(str) == "ok") & np.isfinite(fq["c"])]
            bad = len(fq) - len(okf)
            s = f"{qname}: c = {okf['c'].min():.3f}…{okf['c'].max():.3f} over {len(okf)} n" if len(okf) else \
                f"{qname}: no fit"
            notes.append(s + (f" ({bad} without fit)" if bad else "") + f"; {_theory_text(fq)}")
    return notes


def plot_times(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4, pdf_name=None) -> list:
    """Pages of the escape/first-merge-time figure; groups that differ only by n share a panel."""
    G = _Groups(_read(tables, "runs", sweep))
    runs = G.runs
    if not len(G):
        return [_no_data_page(sweep, "escape and first-merge times")]
    fits = _read(tables, "fits", sweep)
    fam_keys = [c for c in G.keys if c != "n"]
    fam_of = G.table[fam_keys].map(_key).agg("|".join, axis=1) if fam_keys else pd.Series("all", index=G.table.index)
    families = list(dict.fromkeys(fam_of))
    by_n = any(G.table.loc[fam_of == f, "n"].nunique() > 1 for f in families)
    nscale = Scale("n", G.table["n"].astype(float), log=True) if by_n else None
    figs = []
    # PANEL_H + 0.8: room for the slopes in the panel titles
    for p, pages, fig, axes, panels in _pages(len(families), max_panels, PANEL_H + 0.8):
        used: set = set()
        for ax, i in panels:
            members = G.table[fam_of == families[i]].sort_values("n")
            fam_runs = runs[runs["group_id"].isin(members["group_id"])]
            fam_fits = fits[fits["group_id"].isin(members["group_id"])] if len(fits) else fits
            ns = [int(v) for v in members["n"]]
            drew = _times_panel(ax, members, fam_runs, fam_fits, nscale, used)
            notes = _times_notes(fam_fits, ns) if len(fam_fits) else ["no fits for this group"]
            status = _status_note(fam_runs)
            label = G.label(members.iloc[0], exclude=("n",) if by_n else ())
            if by_n:
                label += f" (n = {', '.join(map(str, ns))})" if len(ns) <= 4 else f" ({len(ns)} values of n)"
            _panel_title(ax, "\n".join(x for x in (label.strip(), *notes, status) if x), fontsize=7)
            if not drew:
                _message(ax, "no ok runs" + (f" ({status})" if status else ""))
            ax.tick_params(which="both", labelsize=7)
        handles = [Line2D([], [], ls="", marker=m, color=("0.3" if by_n else col), label=name)
                   for q, (_, m, col, name) in _QUANTITY.items() if q in used]
        handles += [Line2D([], [], ls="", marker="^", mfc="white", mec="0.3",
                           label="censored: time the run ended (lower bound)")] if "censored" in used else []
        handles += [Line2D([], [], color="0.3", lw=1.2, label="fit ln T = a + cβ + b ln β")] if "fit" in used else []
        handles += [Line2D([], [], color="k", ls="--", lw=1.0, label="exact first-merge time of the collapsed clusters (ODE)")] \
            if "ode" in used else []
        handles += [Line2D([], [], color="0.3", ls=":", lw=1.2, label="escape lower bound T₂ (where γ > 0)")] \
            if "bound" in used else []
        title = f"{sweep}: escape and first-merge times" + (f" — {G.shared(('n',) if by_n else ())}"
                                                           if G.shared(('n',) if by_n else ()) else "")
        _finish(fig, axes, title, _page_note(p, pages, len(families), "panels", pdf_name), handles,
                [(nscale, "n (particles)")] if nscale else [])
        figs.append(fig)
    return figs


def _times_panel(ax, members, fam_runs, fam_fits, nscale, used: set) -> bool:
    drew = False
    ok_all = _ok(fam_runs)
    if ok_all.any():
        bmin, bmax = float(fam_runs.loc[ok_all, "beta"].min()), float(fam_runs.loc[ok_all, "beta"].max())
    else:
        bmin = bmax = float("nan")
    bgrid = np.linspace(bmin, bmax, 60) if np.isfinite(bmin) and bmax > bmin else np.array([bmin])
    # groups that differ by n only: points side by side (dodged in β), thinner lines on top
    span = (bmax - bmin) if np.isfinite(bmin) and bmax > bmin else 1.0
    m = len(members)
    for j, (_, g) in enumerate(members.iterrows()):
        dodge = (j - (m - 1) / 2) * min(0.012 * span, 0.3 * span / max(m, 1)) if m > 1 else 0.0
        lw = 1.2 + 1.2 * (m - 1 - j) / max(m - 1, 1) if m > 1 else 1.2
        r = fam_runs[fam_runs["group_id"] == g["group_id"]]
        ok = _ok(r)
        f_g = fam_fits[fam_fits["group_id"] == g["group_id"]] if len(fam_fits) else fam_fits
        for iq, (q, (col, marker, qcol, _)) in enumerate(_QUANTITY.items()):
            qd = dodge + (iq - 0.5) * 0.008 * span  # escape a little left of first merge (same t_end if censored)
            if q == "escape" and not (len(f_g) and (f_g["quantity"] == "escape").any()) and \
                    not (r[col].notna().any() if col in r else False):
                continue
            colour = nscale(float(g["n"])) if nscale else qcol
            t = pd.to_numeric(r[col], errors="coerce")
            good = ok & np.isfinite(t) & (t > 0)
            if good.any():
                ax.scatter(r.loc[good, "beta"] + qd, t[good], s=10, color=colour, marker=marker, alpha=0.6, lw=0,
                           zorder=3)
                used.add(q)
                drew = True
            cens = ok & ~good
            t_end = pd.to_numeric(r.loc[cens, "t_end"], errors="coerce")
            if cens.any() and np.isfinite(t_end).any():
                ax.scatter(r.loc[cens, "beta"] + qd, t_end, s=22, marker="^", facecolors="white", edgecolors=colour,
                           lw=0.9, zorder=4)
                used.update({"censored", q})
                drew = True
            f = f_g[f_g["quantity"] == q] if len(f_g) else f_g
            if len(f) and str(f["status"].iloc[0]) == "ok" and len(bgrid) > 1:
                f = f.iloc[0]
                ax.plot(bgrid, np.exp(f["a"] + f["c"] * bgrid + f["b"] * np.log(bgrid)), color=colour, lw=lw,
                        zorder=2)
                used.add("fit")
        if len(bgrid) > 1 and ok.any():
            tm = merge_time_theory(r[ok], bgrid)
            if tm is not None:
                ax.plot(bgrid, tm, color="k" if nscale is None else nscale(float(g["n"])), ls="--", lw=1.0,
                        zorder=2)
                used.add("ode")
        if "escape_bound" in r and "escape_gamma" in r and ok.any():
            eb = r[ok].groupby("beta")[["escape_bound", "escape_gamma"]].median()
            eb = eb[(eb["escape_gamma"] > 0) & np.isfinite(eb["escape_bound"]) & (eb["escape_bound"] > 0)]
            if len(eb):
                ax.plot(eb.index, eb["escape_bound"], color="C0" if nscale is None else nscale(float(g["n"])),
                        ls=":", lw=1.2, marker="." if len(eb) == 1 else None, zorder=2)
                used.add("bound")
    if drew:
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        _log_ticks(ax.yaxis, lo, hi)
        if np.isfinite(bmin) and bmax == bmin:  # one β: a tick at it, not an offset axis of ±0.004
            ax.set_xlim(bmin - 0.5, bmin + 0.5)
            ax.set_xticks([bmin], [f"{bmin:g}"])
        ax.set_xlabel("β", fontsize=8)
        ax.set_ylabel("time", fontsize=8)
    return drew


# --------------------------------------------------------------------------------------
# lifetimes
# --------------------------------------------------------------------------------------
def plot_lifetimes(tables: str, sweep: str, max_panels: int = 12, n_betas: int = 4, pdf_name=None) -> list:
    """Pages of the plateau-lifetime figure."""
    G = _Groups(_read(tables, "runs", sweep))
    runs = G.runs
    if not len(G):
        return [_no_data_page(sweep, "plateau lifetimes")]
    lt = _with_group(_read(tables, "lifetimes", sweep), runs)
    betas_of, bscale = _betas_per_group(G, n_betas)
    figs = []
    for p, pages, fig, axes, panels in _pages(len(G), max_panels):
        used: set = set()
        for ax, g in ((ax, G.table.iloc[i]) for ax, i in panels):
            gid = g["group_id"]
            sub = lt[(lt["group_id"] == gid) & lt["beta"].isin(betas_of[gid]) & (lt["lifetime"] > 0)]
            n_cens = _lifetimes_panel(ax, sub, betas_of[gid], bscale, used)
            note = _status_note(runs[runs["group_id"] == gid])
            extra = [f"{n_cens} censored plateaus (open triangles)"] if n_cens else []
            _panel_title(ax, "\n".join(x for x in (G.label(g), *extra, note) if x))
            ax.tick_params(which="both", labelsize=7)
        handles = [Line2D([], [], ls="", marker="o", color="0.3", ms=3, label="one seed"),
                   Line2D([], [], color="0.3", marker="D", ms=4, label="median over seeds")]
        if "censored" in used:
            handles.append(Line2D([], [], ls="", marker="^", mfc="white", mec="0.3",
                                  label="censored plateau (lower bound)"))
        title = f"{sweep}: plateau lifetimes" + (f" — {G.shared()}" if G.shared() else "")
        _finish(fig, axes, title, _page_note(p, pages, len(G), "groups", pdf_name), handles,
                [(bscale, "β")])
        figs.append(fig)
    return figs


def _lifetimes_panel(ax, sub: pd.DataFrame, betas, bscale, used: set) -> int:
    """Dots per seed, median line per β, open triangles for censored plateaus; returns the censored count."""
    if not len(sub):
        _message(ax, "no plateaus at the drawn β (all runs failed, or nothing recorded)")
        return 0
    cens_mask = sub["censored"].astype(bool)
    counts = sorted(sub["n_clusters"].astype(int).unique())
    nb = len(betas)
    width = 0.7 if nb <= LEGEND_MAX else 0.2  # many β: stacked by colour rather than spread sideways
    rng = np.random.default_rng(0)
    for j, b in enumerate(betas):
        off = -(j - (nb - 1) / 2) * width / max(nb, 1)  # the x axis is inverted: β grows left to right
        col = bscale(b)
        sb = sub[sub["beta"] == b]
        closed = sb[~cens_mask.loc[sb.index]]
        if len(closed):
            x = closed["n_clusters"].to_numpy(dtype=float) + off
            jitter = rng.uniform(-0.3, 0.3, len(x)) * width / max(nb, 1)
            ax.plot(x + jitter, np.log10(closed["lifetime"]), "o", color=col, ms=2.5, alpha=0.6, mew=0)
            med = closed.groupby("n_clusters")["lifetime"].median()
            ax.plot(med.index.to_numpy(dtype=float) + off, np.log10(med.to_numpy()), "-D", color=col, ms=3.5,
                    lw=1.0)
        cs = sb[cens_mask.loc[sb.index]]
        if len(cs):
            ax.plot(cs["n_clusters"].to_numpy(dtype=float) + off, np.log10(cs["lifetime"]), "^", mfc="white",
                    mec=col, ms=5, mew=1.0)
            used.add("censored")
    ax.set_xlim(max(counts) + 0.6, min(counts) - 0.6)  # time runs left to right: many clusters first
    lo, hi = ax.get_ylim()
    if hi - lo < 1.0:  # one lifetime (or all equal): a decade of room instead of ±0.04
        mid = 0.5 * (lo + hi)
        ax.set_ylim(mid - 0.5, mid + 0.5)
    if len(counts) <= 10:
        ax.set_xticks(counts)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax.set_xlabel("plateau (number of clusters)", fontsize=8)
    ax.set_ylabel("log10 lifetime", fontsize=8)
    return int(cens_mask.sum())


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------
PLOTTERS = {"staircase": plot_staircase, "clusters": plot_clusters, "times": plot_times,
            "lifetimes": plot_lifetimes}


def figures(kind: str, tables: str, sweep: str, *, max_panels: int = 12, n_betas: int = 4, pdf_name=None) -> list:
    """The pages of figure ``kind`` of ``sweep`` (matplotlib figures; close them when done)."""
    return PLOTTERS[kind](tables, sweep, max_panels=max_panels, n_betas=n_betas, pdf_name=pdf_name)


def plot(kind: str, tables: str, sweep: str, outputs, *, max_panels: int = 12, n_betas: int = 4) -> None:
    """Draw figure ``kind`` of ``sweep``; a PDF output gets every page, any other format the first page."""
    from matplotlib.backends.backend_pdf import PdfPages

    from ..pipeline.io import atomic_path, atomic_savefig

    pdfs = [o for o in outputs if str(o).lower().endswith(".pdf")]
    figs = figures(kind, tables, sweep, max_panels=max_panels, n_betas=n_betas,
                   pdf_name=os.path.basename(pdfs[0]) if pdfs else None)
    try:
        for out in outputs:  # temporary file + rename: a reader never sees half a figure
            if str(out).lower().endswith(".pdf"):
                with atomic_path(out) as tmp, PdfPages(tmp) as pdf:
                    for f in figs:
                        pdf.savefig(f, dpi=DPI)
            else:
                atomic_savefig(figs[0], out, dpi=DPI)
    finally:
        for f in figs:
            plt.close(f)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.analysis.plots", description="figures of a sweep")
    p.add_argument("kind", choices=(*KINDS, "all"), help="which figure ('all': every kind)")
    p.add_argument("--sweep", required=True)
    p.add_argument("--tables", required=True, help="folder with the aggregated Parquet tables")
    p.add_argument("--outdir", help="write <outdir>/<kind>.<format> for every format")
    p.add_argument("--formats", nargs="+", default=["png", "pdf"])
    p.add_argument("--out", nargs="+", help="explicit output files (one kind only; format from the suffix)")
    p.add_argument("--max-panels", type=int, default=12, help="panels per page (the PDF has every page)")
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
