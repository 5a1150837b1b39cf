"""One grid cell of a sweep: all its seeds, run in one process, written as Parquet tables.

This is what a Snakemake job calls. A *cell* is a dict of parameters (see
``CELL_DEFAULTS``); the simulations of a cell differ only by their seed index.

Seeds
-----
The random stream of simulation (cell, seed index s) is
``numpy.random.SeedSequence(entropy=base_seed, spawn_key=(h, s))`` where ``h`` is the first
8 bytes of the SHA-256 of the cell's canonical JSON *without β and without the solver
settings* (``seed_key``). Hence the same seed index gives the same initial data at every
β of a sweep (common random numbers, which sharpens fits in β), and adding a β value, a
seed or another cell never changes the numbers of the others.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import initial
from ..engine.clusters import is_macroscopic, single_linkage_labels
from ..engine.dynamics import ENGINES
from ..engine.simulate import EVENT_COLUMNS, LIFETIME_COLUMNS, TRAJECTORY_COLUMNS, default_record_times, simulate
from ..theory.twocluster import escape_theorem_gamma, escape_time_lower_bound

__all__ = [
    "CELL_DEFAULTS", "PARAM_COLUMNS", "RUN_COLUMNS", "canonical_cell", "validate_cell", "cell_id", "seed_sequence",
    "make_initial_data", "default_min_mass", "mixture_escape_caps", "run_one", "run_cell", "cell_tables",
    "write_cell", "seed_list", "seed_log_line", "TABLES",
]

CELL_DEFAULTS: dict = {
    "model": "usa",          # "sa" | "usa" (GKPR24 time convention)
    "init": "caps",          # "caps" | "gaussian" | "uniform"
    "d": 3,
    "n": 64,
    "k": 4,
    "beta": 10.0,
    "eps": 1e-3,             # caps: radius in 1 − cos units
    "centres": "circle",     # caps/gaussian: "circle" (great circle) | "random"
    "spacing": None,         # circle: angle between consecutive centres (rad); None = 2π/k
    "min_angle": 0.5,        # random centres: minimum pairwise angle (rad)
    "masses": None,          # per-cluster masses (counts or fractions); None = equal
    "r": 1.0,                # gaussian: centre radius √r
    "sigma": 0.05,           # gaussian: standard deviation
    "t_max": 1e20,
    "theta_c": 0.1,
    "delta": 1e-5,
    "rtol": 1e-10,
    "atol": 1e-12,
    "per_decade": 8,
    "max_steps": 200_000,    # solver step attempts (accepted + rejected) per simulation; more: the run fails
    "min_mass": None,        # macroscopic threshold (fraction of the mass); None = the family default
    "max_wall_seconds": 3600.0,  # wall-clock limit per simulation; more: the run is recorded as failed
    "engine": "auto",        # "numpy" | "numba" | "auto" (numba when installed): same merge times to ~1e-13
}
# keys that do not change the initial data, hence are left out of the seed key
_NOT_IN_SEED = {"beta", "model", "t_max", "theta_c", "delta", "rtol", "atol", "per_decade", "max_steps", "min_mass",
                "max_wall_seconds", "engine"}

PARAM_COLUMNS = {
    "sweep": "sweep name from the config",
    "cell_id": "hash of the cell's parameters (12 hex digits)",
    "model": "sa or usa (usa in GKPR24's time convention e^{β(⟨x,y⟩−1)}/n)",
    "init": "initial data: caps, gaussian or uniform",
    "d": "ambient dimension (points on S^{d−1})",
    "n": "number of particles",
    "k": "number of caps / mixture components (1 for uniform)",
    "beta": "inverse temperature β",
    "eps": "cap radius ε in 1 − cos units (caps only)",
    "spacing": "angle between consecutive great-circle centres (rad; NaN = 2π/k)",
    "t_max": "horizon of the simulation",
    "theta_c": "single-linkage angle defining clusters (rad)",
    "delta": "collapse radius δ (chordal)",
    "min_mass": "macroscopic threshold used: a cluster counts when it holds ≥ this fraction of the mass (the "
                "config's min_mass, or the family default: caps/gaussian half the smallest cap/component's mass "
                "fraction, uniform max(0.01, 3/n))",
    "seed": "seed index within the cell",
}
RUN_COLUMNS = {
    **PARAM_COLUMNS,
    "status": "ok, failed (numerical fault, see reason) or error (exception, see reason)",
    "reason": "why the run failed; empty when status is ok",
    "escape_time": "first exit of a tracked particle from its doubled cap S_q(2ε) (caps: every particle, the "
                   "cap centres w_q, ε = eps; gaussian: the particles of the macroscopic clusters at t = 0, caps "
                   "around their components' means with ε = escape_eps; uniform: NaN, no reference centres). NaN "
                   "if no exit before t_end",
    "escape_censored": "True if escape caps were defined but no tracked particle left its doubled cap before the run "
                       "ended",
    "escape_eps": "ε of the escape caps: eps (caps); gaussian: ε̂ = max over the tracked particles of "
                  "1 − ⟨x_i(0), w̄_q⟩, w̄_q the normalised mean of component q's tracked particles (the smallest "
                  "common cap holding them); NaN for uniform data",
    "first_merge_time": "time of the first merge of two macroscopic clusters (NaN if none)",
    "n_merges": "merges of two macroscopic clusters (events of kind merge)",
    "n_absorptions": "absorptions of a cluster below min_mass by a macroscopic one (stragglers joining)",
    "censored": "True if t_max was reached while more than one macroscopic cluster remained (uniform: or before "
                "the clusters formed)",
    "t_end": "time the run stopped (all mass in one point, or t_max)",
    "n_clusters_initial": "macroscopic clusters (single linkage at θ_c, mass ≥ min_mass) when the measurement "
                          "starts: t = 0 (caps, gaussian, sparse uniform) or the formation time (uniform); −1 if "
                          "never formed",
    "n_clusters_final": "macroscopic clusters at t_end (−1 if the clusters never formed)",
    "formation_status": "uniform data: ok (clusters formed at formation_time; measurement starts there), "
                        "not_formed (not before t_end), sparse (the formation rule holds at t = 0 because most "
                        "particles are isolated at θ_c — too few particles for θ_c; the rule does not apply and "
                        "the measurement starts at t = 0, as reproductions.formation's status sparse); empty for "
                        "caps and gaussian data",
    "formation_time": "uniform data: the first time a fraction 0.9 of the mass lies in θ_c-clusters of angular "
                      "diameter < 0.25 rad (the rule of reproductions.formation, shared code); NaN unless "
                      "formation_status is ok",
    "n_clusters_formation": "uniform data: macroscopic clusters (mass ≥ min_mass) at formation_time; −1 unless "
                            "formation_status is ok",
    "d_min": "smallest angle between centres (rad; NaN for uniform data)",
    "alpha": "cap separation α(ε) = cos(max(D_min − 2 arccos(1−2ε), 0)) of the escape caps (caps: centres w_q, "
             "ε = eps; gaussian: means w̄_q, ε = escape_eps; NaN for uniform)",
    "escape_gamma": "γ = 1 − α − 8ε − log(2n²/ε)/β; the escape lower bound holds when γ > 0 (caps only: mixture "
                    "stragglers start outside every cap, outside the theorem's hypothesis)",
    "escape_bound": "GKPR24 lower bound T₂ = (ε/n) e^{(1−α)β} on the escape time (caps only)",
    "wall_seconds": "wall-clock seconds of this simulation",
    "n_steps": "accepted solver steps (an exact two-point flow counts as one step per stretch: up to the join "
               "angle, then to the collapse)",
    "n_rejected": "rejected step attempts (each costs 12 vector-field evaluations); n_steps + n_rejected is "
                  "bounded by max_steps",
    "n_rhs": "vector-field evaluations",
    "n_restarts": "solver restarts (collapses, merges, local-time resets)",
    "n_collapses": "collapse operations (groups within δ replaced by weighted points)",
    "n_guarded": "times a cluster within δ was left uncollapsed because a join of it was imminent (the collapse "
                 "guard that keeps event times independent of δ)",
    "n_pair_flows": "1 if the last two points were followed by their exact flow (the quadrature of their gap, "
                    "engine/twopoint.py) instead of the stepper, else 0",
    "max_norm_error": "largest | |x| − 1 | seen at a step end before renormalisation",
    "engine": "integrator implementation that ran: numpy or numba (empty if the run raised)",
}
KEY_COLUMNS = {"sweep": PARAM_COLUMNS["sweep"], "cell_id": PARAM_COLUMNS["cell_id"],
               "beta": PARAM_COLUMNS["beta"], "seed": PARAM_COLUMNS["seed"]}
TABLES = {
    "runs": RUN_COLUMNS,
    "events": {**KEY_COLUMNS, **EVENT_COLUMNS},
    "lifetimes": {**KEY_COLUMNS, **LIFETIME_COLUMNS},
    "trajectories": {**KEY_COLUMNS, **TRAJECTORY_COLUMNS},
}


def _number(cell: dict, key: str, kind, lo=None, hi=None, lo_open=True, hi_open=True, what=""):
    val = cell[key]
    if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
        raise ValueError(f"{key} must be a {kind.__name__} {what}, got {val!r}")
    if kind is int and float(val) != int(val):
        raise ValueError(f"{key} must be an integer {what}, got {val!r}")
    val = kind(val)
    if not np.isfinite(val):
        raise ValueError(f"{key} must be finite, got {val!r}")
    bad_lo = lo is not None and (val <= lo if lo_open else val < lo)
    bad_hi = hi is not None and (val >= hi if hi_open else val > hi)
    if bad_lo or bad_hi:
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        rng = f"{'(' if lo_open else '['}{lo_s}, {hi_s}{')' if hi_open else ']'}"
        raise ValueError(f"{key} must be in {rng}{' ' + what if what else ''}, got {val!r}")
    return val


def validate_cell(cell: dict) -> dict:
    """Check every parameter of a cell; raise ValueError naming the key and what is allowed.

    Returns the cell with defaults filled in and values converted to plain types.
    """
    unknown = set(cell) - set(CELL_DEFAULTS) - {"sweep"}
    if unknown:
        raise ValueError(f"unknown cell key(s) {sorted(unknown)}; allowed keys: {sorted(CELL_DEFAULTS)}")
    c = {**CELL_DEFAULTS, **cell}
    if c["model"] not in ("sa", "usa"):
        raise ValueError(f"model must be one of ['sa', 'usa'], got {c['model']!r}")
    if c["init"] not in ("caps", "gaussian", "uniform"):
        raise ValueError(f"init must be one of ['caps', 'gaussian', 'uniform'], got {c['init']!r}")
    if c["centres"] not in ("circle", "random"):
        raise ValueError(f"centres must be one of ['circle', 'random'], got {c['centres']!r}")
    if c["engine"] not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {c['engine']!r}")
    c["d"] = _number(c, "d", int, 2, lo_open=False, what="(points on S^(d-1))")
    c["n"] = _number(c, "n", int, 1, lo_open=False)
    c["k"] = 1 if c["init"] == "uniform" else _number(c, "k", int, 1, lo_open=False)
    if c["n"] < c["k"]:
        raise ValueError(f"n must be >= k (each cap needs a particle), got n={c['n']}, k={c['k']}")
    c["beta"] = _number(c, "beta", float, 0.0)
    c["eps"] = _number(c, "eps", float, 0.0, 1.0, what="(cap radius in 1 - cos units)")
    c["min_angle"] = _number(c, "min_angle", float, 0.0, np.pi, hi_open=False)
    c["r"] = _number(c, "r", float, 0.0, lo_open=False)
    c["sigma"] = _number(c, "sigma", float, 0.0)
    c["t_max"] = _number(c, "t_max", float, 0.0)
    c["theta_c"] = _number(c, "theta_c", float, 0.0, np.pi, what="(radians)")
    c["delta"] = _number(c, "delta", float, 0.0, 2 * np.sin(c["theta_c"] / 2),
                         what="(chordal collapse radius, below the chord of theta_c)")
    c["rtol"] = _number(c, "rtol", float, 0.0, 1.0)
    c["atol"] = _number(c, "atol", float, 0.0)
    c["per_decade"] = _number(c, "per_decade", int, 1, lo_open=False)
    c["max_steps"] = _number(c, "max_steps", int, 1, lo_open=False, what="(solver steps per simulation)")
    c["max_wall_seconds"] = _number(c, "max_wall_seconds", float, 0.0, what="(wall-clock seconds per simulation)")
    if c["spacing"] is not None:
        c["spacing"] = _number(c, "spacing", float, 0.0, what="(radians)")
    if c["masses"] is not None:
        ms = c["masses"]
        if not isinstance(ms, (list, tuple)) or len(ms) != c["k"]:
            raise ValueError(f"masses must be a list of k={c['k']} positive numbers, got {ms!r}")
        c["masses"] = [_number({"masses": v}, "masses", float, 0.0) for v in ms]
    if c["min_mass"] is not None:
        c["min_mass"] = _number(c, "min_mass", float, 0.0, 1.0, what="(fraction of the total mass)")
        if c["init"] != "uniform":
            largest = float(initial.split_counts(c["n"], c["k"], c["masses"]).max()) / c["n"]
            if not is_macroscopic([largest], c["min_mass"], 1.0)[0]:
                raise ValueError(f"min_mass={c['min_mass']!r} exceeds the largest cap/component mass fraction "
                                 f"{largest:.6g} (n={c['n']}, k={c['k']}): no cluster would be macroscopic")
    return c


def default_min_mass(cell: dict) -> float:
    """The macroscopic threshold of a cell: its ``min_mass``, or the family default.

    * caps and gaussian: half the mass fraction of the smallest cap/component. Every cap or
      component is macroscopic; a piece of one only if it holds more than half of it (so one
      component is never counted twice); single particles and groups of fewer than n_q/2
      particles (stragglers) are not. k = 12 equal caps: 1/24.
    * uniform: max(0.01, 3/n). The clusters that emerge hold ≈ 1/l*(β) each (l* ≈ √(2β) in d = 2),
      while particles left between them stay single or in pairs (measured at formation, d = 2,
      n = 512–2000, β = 5–40: clusters ≥ 29 particles, stragglers ≤ 15 at n = 2000); 1 % is the
      emergence table's m_min (so at n ≥ 300 the count at formation is that table's count), and
      3 particles keeps single particles and pairs out at small n.
    """
    c = canonical_cell(cell)
    if c["min_mass"] is not None:
        return float(c["min_mass"])
    if c["init"] == "uniform":
        return max(0.01, 3.0 / c["n"])
    return 0.5 * float(initial.split_counts(c["n"], c["k"], c["masses"]).min()) / c["n"]


def canonical_cell(cell: dict) -> dict:
    """The validated cell with defaults filled in, values normalised to plain JSON types."""
    return validate_cell(cell)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cell_id(cell: dict) -> str:
    c = canonical_cell(cell)
    c.pop("sweep", None)
    return _digest(c)[:12]


def seed_sequence(cell: dict, seed: int, base_seed: int = 0) -> np.random.SeedSequence:
    """The random stream of (cell, seed index): independent of β and solver settings."""
    c = canonical_cell(cell)
    key = {k: v for k, v in c.items() if k not in _NOT_IN_SEED and k != "sweep"}
    h = int(_digest(key)[:16], 16)
    return np.random.SeedSequence(entropy=int(base_seed), spawn_key=(h, int(seed)))


def make_initial_data(cell: dict, rng: np.random.Generator) -> initial.InitialData:
    c = canonical_cell(cell)
    n, d, k = c["n"], c["d"], c["k"]
    if c["init"] == "uniform":
        return initial.uniform(n, d, rng)
    if c["centres"] == "random":
        centres = initial.random_centres(k, d, c["min_angle"], rng)
    elif c["centres"] == "circle":
        centres = initial.great_circle_centres(k, d, c["spacing"])
    else:
        raise ValueError(f"centres must be 'circle' or 'random', got {c['centres']!r}")
    if c["init"] == "caps":
        return initial.caps(n, d, k, c["eps"], rng, centres=centres, masses=c["masses"])
    if c["init"] == "gaussian":
        return initial.gaussian_mixture(n, d, k, c["r"], c["sigma"], rng, centres=centres, masses=c["masses"])
    raise ValueError(f"init must be one of caps, gaussian, uniform; got {c['init']!r}")


def _min_centre_angle(centres) -> float:
    if centres is None or len(centres) < 2:
        return float("nan")
    g = np.clip(centres @ centres.T, -1.0, 1.0)
    np.fill_diagonal(g, -1.0)
    return float(np.arccos(g.max()))


def mixture_escape_caps(x: np.ndarray, labels: np.ndarray, theta_c: float, min_mass: float):
    """Escape caps of Gaussian-mixture data: ``(centres, eps, tracked_labels)``.

    The tracked particles are those in macroscopic clusters at t = 0 (single linkage at θ_c,
    mass ≥ min_mass); stragglers are not tracked (they start away from their component and
    move *towards* it). The cap of component q is centred at w̄_q, the normalised mean of q's
    tracked particles, with the common radius ε̂ = max over tracked particles of
    1 − ⟨x_i, w̄_{q(i)}⟩: the smallest caps S_q(ε̂) holding every tracked particle. The escape
    is then the caps' definition: the first exit of a tracked particle from S_q(2ε̂).
    ``tracked_labels`` is the component label of tracked particles and −1 for the others; None
    when no particle starts in a macroscopic cluster.
    """
    n = x.shape[0]
    count, comp = single_linkage_labels(x, theta_c)
    big = is_macroscopic(np.bincount(comp, minlength=count), min_mass, n)
    tracked = big[comp]
    if not tracked.any():
        return None
    lab = np.where(tracked, labels, -1)
    k = int(labels.max()) + 1
    centres = np.zeros((k, x.shape[1]))
    np.add.at(centres, lab[tracked], x[tracked])
    norms = np.linalg.norm(centres, axis=1)
    centres[norms > 0] /= norms[norms > 0][:, None]
    centres[norms == 0, 0] = 1.0  # a component without tracked particles: never read
    eps = float(np.max(1.0 - np.einsum("ij,ij->i", x[tracked], centres[lab[tracked]])))
    return centres, max(eps, np.finfo(float).tiny), lab


def _escape_columns(c: dict, data, min_mass: float) -> tuple[dict, dict]:
    """(run-row columns about the escape caps, simulate() keyword arguments for them) of a cell."""
    nan = np.nan
    cols = dict(escape_eps=nan, alpha=nan, escape_gamma=nan, escape_bound=nan)
    if c["init"] == "uniform":
        return cols, {}
    if c["init"] == "caps":
        centres, eps, labels = data.centres, c["eps"], data.labels
    else:
        caps = mixture_escape_caps(data.x, data.labels, c["theta_c"], min_mass)
        if caps is None:
            return cols, {}
        centres, eps, labels = caps
    cols["escape_eps"] = eps
    if c["k"] >= 2:
        used = np.unique(labels[labels >= 0])
        cols["alpha"] = initial.cap_separation(centres[used], eps) if used.size >= 2 else nan
        if c["init"] == "caps":
            cols["escape_gamma"] = float(escape_theorem_gamma(cols["alpha"], eps, c["n"], c["beta"]))
            cols["escape_bound"] = float(escape_time_lower_bound(cols["alpha"], eps, c["n"], c["beta"]))
    return cols, dict(cap_centres=centres, cap_eps=eps, cap_labels=labels)


def run_one(cell: dict, seed: int, base_seed: int = 0):
    """Run simulation ``seed`` of ``cell``; returns (run row, events, lifetimes, trajectory).

    Invalid parameters raise ValueError before any compute. A numerical fault or an
    exception inside the integration does not raise: the run is returned with status
    "failed"/"error" and the reason.
    """
    c = canonical_cell(cell)  # bad parameters raise here, before any compute
    rng = np.random.default_rng(seed_sequence(c, seed, base_seed))
    data = make_initial_data(c, rng)
    min_mass = default_min_mass(c)
    params = {
        "sweep": c.get("sweep", ""), "cell_id": cell_id(c), "model": c["model"], "init": c["init"],
        "d": c["d"], "n": c["n"], "k": c["k"], "beta": c["beta"],
        "eps": c["eps"] if c["init"] == "caps" else float("nan"),
        "spacing": float("nan") if c["spacing"] is None else c["spacing"],
        "t_max": c["t_max"], "theta_c": c["theta_c"], "delta": c["delta"], "min_mass": min_mass, "seed": int(seed),
    }
    row = dict(params)
    row["d_min"] = _min_centre_angle(data.centres)
    t0 = time.perf_counter()
    try:
        esc_cols, esc_kwargs = _escape_columns(c, data, min_mass)
        row.update(esc_cols)
        res = simulate(data.x, beta=c["beta"], model=c["model"], t_max=c["t_max"], theta_c=c["theta_c"],
                       delta=c["delta"], rtol=c["rtol"], atol=c["atol"], max_steps=c["max_steps"],
                       max_wall_seconds=c["max_wall_seconds"], min_mass=min_mass,
                       wait_for_formation=c["init"] == "uniform", engine=c["engine"],
                       record_times=default_record_times(c["t_max"], c["per_decade"]), **esc_kwargs)
    except Exception as exc:  # recorded, never fatal for the sweep
        nan = np.nan
        row.update({k: nan for k in ("escape_eps", "alpha", "escape_gamma", "escape_bound") if k not in row})
        row.update(status="error", reason=f"{type(exc).__name__}: {exc}", escape_time=nan,
                   escape_censored=False, first_merge_time=nan, n_merges=0, n_absorptions=0, censored=False,
                   t_end=nan, n_clusters_initial=-1, n_clusters_final=-1, formation_status="", formation_time=nan,
                   n_clusters_formation=-1, wall_seconds=time.perf_counter() - t0, n_steps=0, n_rejected=0,
                   n_rhs=0, n_restarts=0, n_collapses=0, n_guarded=0, n_pair_flows=0, max_norm_error=nan, engine="")
        empty = {name: pd.DataFrame(columns=list(cols)) for name, cols in TABLES.items() if name != "runs"}
        return row, empty["events"], empty["lifetimes"], empty["trajectories"]
    st = res.stats
    kinds = res.events["kind"]
    row.update(
        status=res.status, reason=res.reason, escape_time=res.escape_time, escape_censored=res.escape_censored,
        first_merge_time=res.first_merge_time, n_merges=int((kinds == "merge").sum()),
        n_absorptions=int((kinds == "absorption").sum()), censored=res.censored, t_end=res.t_end,
        n_clusters_initial=res.n_clusters_initial, n_clusters_final=res.n_clusters_final,
        formation_status=res.formation_status, formation_time=res.formation_time,
        n_clusters_formation=res.n_clusters_formation,
        wall_seconds=time.perf_counter() - t0, n_steps=st["n_steps"], n_rejected=st["n_rejected"],
        n_rhs=st["n_rhs"], n_restarts=st["n_restarts"], n_collapses=st["n_collapses"], n_guarded=st["n_guarded"],
        n_pair_flows=st["n_pair_flows"], max_norm_error=st["max_norm_error"], engine=st["engine"])
    key = {k: params[k] for k in KEY_COLUMNS}

    def keyed(df):
        return pd.concat([pd.DataFrame({k: [v] * len(df) for k, v in key.items()}), df.reset_index(drop=True)],
                         axis=1)

    return row, keyed(res.events), keyed(res.lifetimes), keyed(res.trajectory)


def _typed(df: pd.DataFrame, columns: dict) -> pd.DataFrame:
    df = df.reindex(columns=list(columns))
    for col in df.columns:
        if df[col].dtype == object and col not in ("sweep", "cell_id", "model", "init", "status", "reason", "kind",
                                                    "closed_by", "formation_status", "engine"):
            df[col] = pd.to_numeric(df[col])
    return df


def seed_list(seeds) -> list[int]:
    """Seed indices from a count (``0 … seeds−1``) or an explicit list; ValueError for none or a
    negative index (no table without a row: an empty cell would pass unnoticed)."""
    out = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not out or min(out) < 0:
        raise ValueError(f"seeds must be a count >= 1 or a non-empty list of seed indices >= 0, got {seeds!r}")
    return out


def seed_log_line(seed: int, row: dict) -> str:
    """The one-line summary of a finished simulation written to a cell's log."""
    return (f"seed={seed} status={row['status']} first_merge={row['first_merge_time']:.6g} "
            f"escape={row['escape_time']:.6g} wall={row['wall_seconds']:.3f}s {row['reason']}")


def cell_tables(results) -> dict[str, pd.DataFrame]:
    """The four tables of a cell from its simulations' :func:`run_one` results, in seed order."""
    results = list(results)
    tables = {"runs": _typed(pd.DataFrame([r[0] for r in results]), RUN_COLUMNS)}
    for i, name in enumerate(("events", "lifetimes", "trajectories"), start=1):
        dfs = [r[i] for r in results if len(r[i])]
        tables[name] = _typed(pd.concat(dfs, ignore_index=True) if dfs else pd.DataFrame(), TABLES[name])
    return tables


def write_cell(cell: dict, tables: dict[str, pd.DataFrame], out: dict[str, str] | str, meta: dict | None = None):
    """Write a cell's four tables atomically as a set (``io.write_tables``) with provenance.

    ``out`` is a folder (files named ``<table>.parquet``) or a dict table -> path.
    """
    from .io import provenance, write_tables

    paths = {name: str(Path(out) / f"{name}.parquet") for name in TABLES} if isinstance(out, (str, Path)) else out
    extra = dict(meta or {})
    extra.setdefault("cell", canonical_cell(cell))
    prov = provenance(**extra)
    write_tables((df, paths[name], TABLES[name], prov) for name, df in tables.items())


def run_cell(cell: dict, seeds, out: dict[str, str] | str, *, base_seed: int = 0, meta: dict | None = None,
             log=None) -> dict[str, pd.DataFrame]:
    """Run every seed of ``cell`` and write runs/events/lifetimes/trajectories Parquet tables.

    ``seeds`` is a count or a list of seed indices; ``out`` is a folder (files named
    ``<table>.parquet``) or a dict table -> path. The four files are written atomically
    as a set: all to temporary files first, then renamed (``io.write_tables``), so a
    failure or kill leaves either all of the previous files or all of the new ones
    (up to the instant of the four renames).
    """
    results = []
    for s in seed_list(seeds):
        results.append(run_one(cell, s, base_seed))
        if log is not None:
            print(seed_log_line(s, results[-1][0]), file=log, flush=True)
    tables = cell_tables(results)
    write_cell(cell, tables, out, meta)
    return tables
