"""Horizon pre-flight: predict every fit group's merge times from theory before any job runs.

A sweep whose ``t_max`` cannot reach the merges produces censored runs, and a fit over
them says little. Before scheduling, :func:`predict` estimates for each fit group (the
cells of a sweep that differ only by β) and each β

* the **first merge** time (what ``fits.parquet``'s ``first_merge`` measures), and
* the **last merge** time (one cluster left: the end of the staircase),

from the k collapsed centres of the initial data (docs/science.md §3–§4):

* circle centres (caps, Gaussian mixtures): the exact k-point ODE on the circle
  (:func:`attention_dynamics.theory.kpoint.circle_merge_log_times`, batched over every
  distinct (model, k, spacing, mass fractions, θ_c, β) of the config, at rtol 1e-5, which
  gives ln T to ~1e-4);
* random centres: the closed-form leading order ln T ≈ β(1 − cos D) − ln(cβ sin² D),
  closest pair first (:func:`~attention_dynamics.theory.kpoint.leading_order_staircase`), on
  each seed's own centres (drawn exactly as the run will draw them);
* mirror-symmetric arcs with an odd number of clusters at some stage (e.g. k = 5 caps on an
  arc): the middle cluster is an unstable equilibrium, both neighbours reach it at once in the
  ODE, while in a run one of them comes first and the other needs one more plateau; the
  predicted last merge is then the earliest possible (measured: up to ~6 units of ln T early
  at β = 60);
* symmetric centres (an unstable equilibrium, e.g. k points spaced 2π/k): the leading order,
  which is a lower bound there (the real merge waits for the spread of the data to grow);
* uniform data: no prediction;
* more than :data:`MAX_K` centres: no prediction (the k-point system costs k² per field call
  and k − 1 merges; the check must stay well under a second).

The real runs scatter around the prediction by δ ln T ≈ β sin D · δD (δD the jitter of a
collapsed cluster's position, ~ cap radius/√(n/k)). :func:`horizon_warnings` warns, naming
the sweep, the groups and the β values, wherever the predicted time reaches t_max/10.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GroupHorizon", "predict", "horizon_warnings", "horizon_report", "MARGIN", "MAX_K"]

MAX_K = 64                # no pre-flight beyond this many centres (cost ~k³ per β)
MARGIN = math.log(10.0)   # warn when ln T_pred > ln t_max − MARGIN (the prediction reaches t_max/10)
_RTOL = 1e-5


@dataclass
class GroupHorizon:
    """Predicted merge times of one fit group (``ln_first``/``ln_last`` per β; worst seed for random centres)."""

    sweep: str
    group: str
    label: str
    t_max: float
    betas: list[float]
    method: str
    ln_first: np.ndarray = field(default_factory=lambda: np.empty(0))
    ln_last: np.ndarray = field(default_factory=lambda: np.empty(0))

    def late(self, which: str) -> list[float]:
        """β values at which the predicted first/last merge is at or beyond t_max/10."""
        ln = self.ln_first if which == "first" else self.ln_last
        if ln.size == 0:
            return []
        lim = math.log(self.t_max) - MARGIN
        return [b for b, v in zip(self.betas, ln) if not (v <= lim)]   # NaN/inf count as late


def _fractions(p: dict) -> tuple[float, ...]:
    from ..initial import split_counts

    counts = split_counts(int(p["n"]), int(p["k"]), p["masses"])
    return tuple(float(c) / float(p["n"]) for c in counts)


def _label(p: dict) -> str:
    out = f"{p['model']} {p['init']} d={p['d']} n={p['n']} k={p['k']}"
    if p["init"] != "uniform":
        out += f" spacing={p['spacing']:g}" if p["centres"] == "circle" and p["spacing"] is not None else ""
        out += f" random(min_angle={p['min_angle']:g})" if p["centres"] == "random" else ""
        out += f" masses={p['masses']}" if p["masses"] else ""
        out += f" sigma={p['sigma']:g} r={p['r']:g}" if p["init"] == "gaussian" else f" eps={p['eps']:g}"
    return out


def _circle_groups(todo: dict) -> dict:
    """Solve every distinct circle system once: key (model, k, spacing, fractions, θ_c, β) -> (ln first, ln last).

    One batch per model; systems with fewer points are padded with zero-mass points.
    """
    from ..theory.kpoint import circle_angles, circle_merge_log_times

    out = {}
    by_model: dict = {}
    for key, log_stop in todo.items():
        by_model.setdefault(key[0], []).append((key, log_stop))
    for model, items in by_model.items():
        kmax = max(key[1] for key, _ in items)
        theta = np.zeros((len(items), kmax))
        mu = np.zeros((len(items), kmax))
        for j, (key, _) in enumerate(items):
            theta[j, :key[1]] = circle_angles(key[1], key[2])
            mu[j, :key[1]] = key[3]
        res = circle_merge_log_times(theta, mu, np.array([key[5] for key, _ in items]), model,
                                     np.array([key[4] for key, _ in items]), until="last", rtol=_RTOL,
                                     atol=1e-3 * _RTOL, log_t_stop=max(s for _, s in items))
        for j, (key, _) in enumerate(items):
            out[key] = (float(res.log_first[j]), float(res.log_last[j]), bool(res.equilibrium[j]))
    return out


def predict(cells, base_seed: int = 0) -> list[GroupHorizon]:
    """One :class:`GroupHorizon` per fit group of ``cells`` (sweep.Cell objects), in plan order."""
    from ..theory.kpoint import circle_angles, is_equilibrium, leading_order_staircase

    groups: dict[tuple[str, str], list] = {}
    for c in cells:
        groups.setdefault((c.sweep, c.group), []).append(c)
    todo: dict = {}
    plans = []
    for (sweep, gid), cs in groups.items():
        p = cs[0].params
        betas = sorted({float(c.params["beta"]) for c in cs})
        h = GroupHorizon(sweep=sweep, group=gid, label=_label(p), t_max=float(p["t_max"]), betas=betas, method="")
        kind = None
        if p["init"] == "uniform":
            h.method = "none (uniform data: no centres)"
        elif int(p["k"]) < 2:
            h.method = "none (k = 1: nothing to merge)"
        elif int(p["k"]) > MAX_K:
            h.method = f"none (k > {MAX_K}: too many centres for the pre-flight)"
        elif p["init"] == "gaussian" and float(p["r"]) == 0.0:
            h.method = "none (gaussian with r = 0: no centres)"
        elif p["centres"] == "random":
            kind = "random"
            h.method = "leading order, per seed's random centres (worst seed)"
        else:
            mu = _fractions(p)
            ang = circle_angles(int(p["k"]), p["spacing"])
            if is_equilibrium(ang, mu, betas[0], p["model"]):
                kind = "equilibrium"
                h.method = "leading order (symmetric centres: an unstable equilibrium; a lower bound)"
            else:
                kind = "circle"
                h.method = "k-point ODE of the collapsed centres"
                stop = math.log(h.t_max) + 5.0
                for b in betas:
                    key = (p["model"], int(p["k"]), p["spacing"], mu, float(p["theta_c"]), b)
                    todo[key] = max(todo.get(key, -np.inf), stop)
        plans.append((h, cs, kind))
    solved = _circle_groups(todo) if todo else {}
    out = []
    for h, cs, kind in plans:
        p = cs[0].params
        b = np.array(h.betas)
        if kind == "circle":
            vals = [solved[(p["model"], int(p["k"]), p["spacing"], _fractions(p), float(p["theta_c"]), x)]
                    for x in h.betas]
            h.ln_first = np.array([v[0] for v in vals])
            h.ln_last = np.array([v[1] for v in vals])
        elif kind == "equilibrium":
            k = int(p["k"])
            ang = circle_angles(k, p["spacing"])
            pts = np.column_stack([np.cos(ang), np.sin(ang)])
            h.ln_first, h.ln_last = leading_order_staircase(pts, _fractions(p), b, p["model"], float(p["theta_c"]))
        elif kind == "random":
            h.ln_first, h.ln_last = _random_centres_worst(cs[0], b, base_seed)
        out.append(h)
    return out


def _random_centres_worst(cell, betas: np.ndarray, base_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Leading-order merge times on each seed's own random centres; the latest seed per β."""
    from ..theory.kpoint import leading_order_staircase

    p = dict(cell.params)
    first, last = [], []
    for s in range(cell.seeds):
        centres, counts = _seed_centres(json.dumps(p, sort_keys=True), s, base_seed)
        f, l_ = leading_order_staircase(centres, counts, betas, p["model"], float(p["theta_c"]))
        first.append(f)
        last.append(l_)
    return np.nanmax(np.array(first), axis=0), np.nanmax(np.array(last), axis=0)


@functools.lru_cache(maxsize=4096)
def _seed_centres(cell_json: str, seed: int, base_seed: int):
    """The centres and cluster counts seed ``seed`` of the cell will start from (the run's own draw)."""
    from .cell import make_initial_data, seed_sequence

    p = json.loads(cell_json)
    p["model"], p["beta"] = "usa", 1.0          # not in the seed key: one draw serves every model and β
    data = make_initial_data(p, np.random.default_rng(seed_sequence(p, seed, base_seed)))
    return data.centres, np.bincount(data.labels, minlength=data.centres.shape[0]).astype(float)


def _ln(v: float, t_max: float) -> str:
    """ln T for printing: +inf means the integration stopped past ln t_max + 5."""
    if v == np.inf:
        return f"> {math.log(t_max) + 5:.0f}"
    return f"{v:.1f}"


def _betas(bs: list[float]) -> str:
    return ", ".join(f"{b:g}" for b in bs)


def horizon_warnings(horizons: list[GroupHorizon]) -> list[str]:
    """One warning per (sweep, first/last merge) where some group's prediction reaches t_max/10."""
    out = []
    sweeps: dict[str, list[GroupHorizon]] = {}
    for h in horizons:
        sweeps.setdefault(h.sweep, []).append(h)
    for sweep, hs in sweeps.items():
        for which in ("first", "last"):
            late = [(h, h.late(which)) for h in hs]
            late = [(h, bs) for h, bs in late if bs]
            if not late:
                continue
            parts = []
            for h, bs in late[:4]:
                ln = h.ln_first if which == "first" else h.ln_last
                worst = max((v for b, v in zip(h.betas, ln) if b in bs), default=float("nan"))
                parts.append(f"{h.label}: β = {_betas(bs)} (predicted ln T up to {_ln(worst, h.t_max)})")
            more = f"; and {len(late) - 4} more group(s)" if len(late) > 4 else ""
            what = "the first merge (the fitted time: those runs will be censored)" if which == "first" else \
                "the last merge (one cluster left: the staircase stays unfinished)"
            t_max = sorted({h.t_max for h, _ in late})
            out.append(f"sweeps.{sweep}: t_max = {', '.join(f'{t:g}' for t in t_max)} (ln {math.log(t_max[0]):.1f}) "
                       f"does not reach {what} with a factor 10 to spare in {len(late)} of {len(hs)} fit group(s): "
                       + "; ".join(parts) + more + ". Raise t_max (it costs no steps) or lower β.")
    return out


def horizon_report(horizons: list[GroupHorizon]) -> str:
    """Predicted vs chosen horizons per sweep and fit group (``sweep check`` prints it)."""
    lines = ["horizons: predicted merge times ln T (first merge / last merge) vs ln t_max, per fit group"]
    for h in horizons:
        head = f"  {h.sweep}: {h.label}: t_max {h.t_max:g} (ln {math.log(h.t_max):.1f})"
        if h.ln_first.size == 0:
            lines.append(f"{head}; {h.method}")
            continue

        def rng(ln):
            first = f"{_ln(ln[0], h.t_max)} (β={h.betas[0]:g})"
            return f"{first} … {_ln(ln[-1], h.t_max)} (β={h.betas[-1]:g})" if len(ln) > 1 else first
        late_f, late_l = h.late("first"), h.late("last")
        verdict = "reached at every β" if not late_l else (
            f"LAST merge not reached at β = {_betas(late_l)}" if not late_f else
            f"FIRST merge not reached at β = {_betas(late_f)}; last merge not at β = {_betas(late_l)}")
        lines.append(f"{head}; first {rng(h.ln_first)}; last {rng(h.ln_last)}; {verdict} [{h.method}]")
    return "\n".join(lines)
