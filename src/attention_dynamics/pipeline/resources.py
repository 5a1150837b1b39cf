"""What a grid cell costs, how cells are packed into jobs, and what each job asks SLURM for.

The model
---------
The CPU time of one simulation (one seed of a cell) is modelled as log-linear in the cell's
parameters,

    ln t_seed = Σ_j a_j · φ_j(cell),      φ = (1, ln n, ln β, ln k, ln d, [usa], [gaussian], [uniform],
                                              [random centres], ln spacing, ln ln t_max),

fitted by least squares on measured CPU seconds per seed (:func:`calibrate`); ``sigma`` is the
residual standard deviation of ln t. The peak resident memory of a worker process is
``mem_base_mb + mem_per_n2_mb · (n/1000)²`` (the interpreter with numpy/scipy/pandas dominates;
n × n Gram matrices are the part that grows). :data:`DEFAULT_MODEL` was calibrated on this
repository's machines (docs/slurm.md, "Requests that fit"); ``python -m
attention_dynamics.pipeline.resources calibrate results/benchmarks`` refits it on a user's own
runs and prints a model file for the config key ``jobs.model``.

Packing (:func:`plan_chunks`)
-----------------------------
Cells, in plan order (sweep, fit group, then β), are packed greedily into chunks of at most
``jobs.cpu_minutes`` predicted CPU-minutes and ``jobs.cells_per_job`` cells, across sweeps (small
sweeps share a job: the job's fixed start-up is paid once). Chunks are named ``000``, ``001``, ...
and recorded in ``<results>/cache/chunks.json`` (the registry): a chunk never changes once
created, so cells added later (a new β, a new sweep, changed parameters) go to new chunks and
nothing that exists runs again. Packing does not depend on ``--cores`` or the executor, so
switching between a laptop and SLURM does not rerun anything.

Requests (:class:`Chunk`)
-------------------------
A chunk job runs its simulations on ``threads`` worker processes, longest cell first: as many as
the chunk has simulations, at most one per ``MIN_WORKER_SECONDS`` predicted CPU-seconds (a small
chunk asks for fewer CPUs than ``--cores``, which caps it, so that its CPUs are not left idle while
the job starts). Its
predicted wall time is the LPT (longest-processing-time) makespan of its seeds on ``threads``
workers; it asks for

    runtime = ⌈(runtime_factor · makespan + START_SECONDS) · growth^(attempt−1) / 60⌉ minutes,
    mem_mb  = ⌈(PARENT_MB + threads · worker_mb) · growth^(attempt−1)⌉,

so that a job that hits its time limit (TIMEOUT) or memory limit (OUT_OF_MEMORY) is resubmitted
by Snakemake (``retries`` in the profile) with ``jobs.attempt_growth`` times more; the second
attempt reuses the cells the first one finished (:mod:`attention_dynamics.pipeline.cellcache`).
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ResourceModel", "DEFAULT_MODEL", "JOBS_DEFAULTS", "jobs_config", "Chunk", "plan_chunks", "cell_pkey",
           "chunk_of_cells", "read_registry", "write_registry", "lpt_makespan", "calibrate", "read_benchmarks",
           "main"]

FEATURES = ("const", "log_n", "log_beta", "log_k", "log_d", "usa", "gaussian", "uniform", "random_centres",
            "log_spacing", "loglog_tmax")
START_SECONDS = 60.0   # Snakemake start-up (twice on SLURM), imports, table writes, manifest
# Predicted CPU-seconds of simulations a worker must get before a chunk job asks for one more CPU:
# a job's start (two Snakemake start-ups on SLURM, the imports: ~6-8 CPU-s on one CPU while the
# others wait) is paid per job, so a chunk of S predicted CPU-s runs on ≤ S / MIN_WORKER_SECONDS
# workers (≥ 1) and its CPUs stay ≥ 80 % busy (docs/slurm.md §4).
MIN_WORKER_SECONDS = 30.0
PARENT_MB = 400.0      # the chunk's parent process (tables of finished cells, Snakemake around it)
MAX_CELLS_JSON = 100_000  # bytes of --cells on one command line (Linux: 128 KiB per argument)

JOBS_DEFAULTS = {
    "cpu_minutes": 10.0,     # predicted CPU-minutes of simulations packed into one simulate_chunk job
    "cells_per_job": 200,    # most cells per chunk
    "runtime_factor": 2.0,   # requested time = runtime_factor × predicted + START_SECONDS
    "attempt_growth": 3.0,   # a resubmitted job asks for this many times more time and memory
    "model": None,           # a model file written by `... resources calibrate` (null: DEFAULT_MODEL)
}
JOBS_DOCS = {
    "cpu_minutes": "predicted CPU-minutes of simulations packed into one simulate_chunk job (> 0)",
    "cells_per_job": "most grid cells in one simulate_chunk job (>= 1)",
    "runtime_factor": "requested runtime = runtime_factor × predicted wall time + 1 min (>= 1)",
    "attempt_growth": "each resubmission (retries) asks for this many times more time and memory (>= 1)",
    "model": "resource model file (YAML) from `python -m attention_dynamics.pipeline.resources calibrate`; "
             "null: the built-in one",
}


@dataclass(frozen=True)
class ResourceModel:
    """ln t_seed = Σ coef[φ] · φ(cell); worker memory = mem_base_mb + mem_per_n2_mb · (n/1000)²."""

    coef: dict
    sigma: float
    mem_base_mb: float
    mem_per_n2_mb: float
    source: str = "built-in"

    def seed_seconds(self, cell: dict) -> float:
        """Predicted (median) CPU seconds of one simulation of ``cell``."""
        phi = features(cell)
        return math.exp(sum(self.coef.get(name, 0.0) * phi[name] for name in FEATURES))

    def worker_mb(self, cell: dict) -> float:
        n = float(cell["n"])
        return self.mem_base_mb + self.mem_per_n2_mb * (n / 1000.0) ** 2

    def as_dict(self) -> dict:
        return {"coef": dict(self.coef), "sigma": self.sigma, "mem_base_mb": self.mem_base_mb,
                "mem_per_n2_mb": self.mem_per_n2_mb}

    @classmethod
    def load(cls, path: str | Path) -> "ResourceModel":
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        try:
            coef = {k: float(data["coef"].get(k, 0.0)) for k in FEATURES}
            return cls(coef=coef, sigma=float(data["sigma"]), mem_base_mb=float(data["mem_base_mb"]),
                       mem_per_n2_mb=float(data["mem_per_n2_mb"]), source=str(path))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"{path} is not a resource model file ({exc!r}); write one with "
                             "python -m attention_dynamics.pipeline.resources calibrate") from None


def features(cell: dict) -> dict[str, float]:
    """φ(cell) of the model (a cell dict with the keys of ``cell.CELL_DEFAULTS``)."""
    k = 1 if cell.get("init") == "uniform" else int(cell.get("k", 1))
    return {
        "const": 1.0,
        "log_n": math.log(float(cell["n"])),
        "log_beta": math.log(float(cell["beta"])),
        "log_k": math.log(max(k, 1)),
        "log_d": math.log(float(cell["d"])),
        "usa": 1.0 if cell.get("model") == "usa" else 0.0,
        "gaussian": 1.0 if cell.get("init") == "gaussian" else 0.0,
        "uniform": 1.0 if cell.get("init") == "uniform" else 0.0,
        "random_centres": 1.0 if cell.get("init") != "uniform" and cell.get("centres") == "random" else 0.0,
        "log_spacing": _log_spacing(cell, k),
        "loglog_tmax": math.log(max(math.log(float(cell["t_max"])), 1.0)),
    }


def _log_spacing(cell: dict, k: int) -> float:
    """ln of the angle between neighbouring circle centres (2π/k when spacing is null); 0 otherwise."""
    if cell.get("init") == "uniform" or cell.get("centres") == "random" or k < 2:
        return 0.0
    sp = cell.get("spacing")
    return math.log(float(sp) if sp else 2.0 * math.pi / k)


# Calibrated with `calibrate` on the cache entries of 251 cells, one seed each (every third cell of
# config/paper.yaml, every other one of config/config.yaml, all of config/test.yaml; two workers with
# the compiled kernels loaded before the fork, as a chunk job runs them, on a shared 2-core VM; 13.6
# CPU-s): median measured/predicted 0.98, 95th percentile 1.84, max 2.8. No uniform-init cell was
# measured (coefficient 0: priced like caps). Recipe: docs/slurm.md §5.
DEFAULT_MODEL = ResourceModel(
    coef={"const": -7.357332, "log_n": 0.495313, "log_beta": 0.066851, "log_k": 0.911736, "log_d": 0.055885,
          "usa": -0.118523, "gaussian": -0.17336, "uniform": 0.0, "random_centres": -0.365565,
          "log_spacing": 0.573573, "loglog_tmax": 0.17183},
    sigma=0.3118, mem_base_mb=156.0, mem_per_n2_mb=5.181)


def jobs_config(section, *, base: str = "jobs") -> dict:
    """The ``jobs`` section of the config with defaults filled in; ValueError naming the key."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ValueError(f"{base}: must be a mapping with keys {', '.join(JOBS_DEFAULTS)}, got {section!r}")
    unknown = sorted(set(section) - set(JOBS_DEFAULTS))
    if unknown:
        raise ValueError(f"{base}.{unknown[0]}: unknown key; allowed keys in {base}: {', '.join(JOBS_DEFAULTS)}")
    out = {**JOBS_DEFAULTS, **section}
    for key, lo, kind in (("cpu_minutes", 0.0, float), ("runtime_factor", 1.0, float),
                          ("attempt_growth", 1.0, float), ("cells_per_job", 1, int)):
        val = out[key]
        if isinstance(val, bool) or not isinstance(val, (int, float)) or (kind is int and float(val) != int(val)):
            raise ValueError(f"{base}.{key}: must be {'an integer' if kind is int else 'a number'}, got {val!r}")
        if not math.isfinite(val) or (val <= lo if key == "cpu_minutes" else val < lo):
            raise ValueError(f"{base}.{key}: must be {'>' if key == 'cpu_minutes' else '>='} {lo:g}, got {val!r}")
        out[key] = kind(val)
    if out["model"] is not None:
        if not isinstance(out["model"], str) or not Path(out["model"]).is_file():
            raise ValueError(f"{base}.model: must be null or the path of an existing model file, got {out['model']!r}")
        ResourceModel.load(out["model"])  # fails here, not in a job
    return out


def lpt_makespan(durations, workers: int) -> float:
    """Longest-processing-time-first schedule of ``durations`` on ``workers``: its makespan.

    (Graham's bound: at most 4/3 − 1/(3·workers) times the optimum.)
    """
    loads = [0.0] * max(1, int(workers))
    heapq.heapify(loads)
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + d)
    return max(loads)


@dataclass
class Chunk:
    """Cells of one ``simulate_chunk`` job, with their predicted costs.

    ``items`` are what ``attention-dynamics run-chunk --cells`` takes: {"path": "<sweep>/<cell path>",
    "cell": {...}, "seeds": S, "predicted": CPU-s of the cell}, frozen when the chunk was created."""

    name: str
    items: list[dict]
    worker_mb: float
    cfg: dict = field(repr=False, default_factory=lambda: dict(JOBS_DEFAULTS))

    @property
    def paths(self) -> list[str]:
        return [it["path"] for it in self.items]

    @property
    def n_tasks(self) -> int:
        return sum(int(it["seeds"]) for it in self.items)

    @property
    def cpu_seconds(self) -> float:
        return sum(float(it["predicted"]) for it in self.items)

    @property
    def max_threads(self) -> int:
        """Workers worth having: ≤ one per simulation, and ≥ MIN_WORKER_SECONDS predicted CPU-s each
        (else the job's serial start would leave the extra CPUs idle). Snakemake caps it at ``--cores``."""
        return max(1, min(self.n_tasks, int(self.cpu_seconds // MIN_WORKER_SECONDS)))

    def makespan(self, threads: int) -> float:
        seeds = [float(it["predicted"]) / int(it["seeds"]) for it in self.items for _ in range(int(it["seeds"]))]
        return lpt_makespan(seeds, threads)

    def runtime_min(self, threads: int, attempt: int = 1) -> int:
        """Minutes to request (see the module docstring)."""
        seconds = self.cfg["runtime_factor"] * self.makespan(threads) + START_SECONDS
        minutes = seconds * self.cfg["attempt_growth"] ** (max(int(attempt), 1) - 1) / 60.0
        return max(1, math.ceil(minutes - 1e-9))  # SLURM counts whole minutes

    def mem_mb(self, threads: int, attempt: int = 1) -> int:
        total = PARENT_MB + max(1, int(threads)) * self.worker_mb
        return math.ceil(total * self.cfg["attempt_growth"] ** (max(int(attempt), 1) - 1))

    def cells_json(self) -> str:
        """The ``--cells`` argument of ``attention-dynamics run-chunk``."""
        return json.dumps(self.items, sort_keys=True, separators=(",", ":"))


def cell_pkey(cell_json: str, seeds: int, base_seed: int) -> str:
    """What decides a cell's chunk: its parameters (canonical JSON, sweep included), seeds, base seed."""
    import hashlib

    return hashlib.sha256(f"{cell_json}|{int(seeds)}|{int(base_seed)}".encode()).hexdigest()[:24]


REGISTRY_FORMAT = 1


def read_registry(path) -> dict:
    """The chunk registry (``<results>/cache/chunks.json``): {"format", "chunks": {name: {"base_seed",
    "items"}}}; empty if missing or unreadable (then every cell is packed anew)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {"format": REGISTRY_FORMAT, "chunks": {}}
    if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT or not isinstance(data.get("chunks"), dict):
        return {"format": REGISTRY_FORMAT, "chunks": {}}
    return data


def plan_chunks(plan, jobs: dict | None = None, model: ResourceModel | None = None,
                registry: dict | None = None) -> tuple[dict[str, Chunk], dict]:
    """The chunks of ``plan`` (a sweep.Plan): (name -> :class:`Chunk`, the updated registry).

    A chunk, once created, never changes: a cell (by :func:`cell_pkey`) that the ``registry`` already
    assigns stays in its chunk, so adding β values or sweeps creates new chunks for the new cells
    only, and no existing chunk or cell job runs again (minimal re-runs). New cells are packed in
    plan order (sweep, fit group, β) up to ``jobs.cpu_minutes`` predicted CPU-minutes and
    ``jobs.cells_per_job`` cells, into chunks numbered after the existing ones. Chunks of the
    registry whose cells the plan no longer holds are returned too (they are never needed).
    """
    cfg = jobs_config(jobs)
    if model is None:
        model = ResourceModel.load(cfg["model"]) if cfg["model"] else DEFAULT_MODEL
    base_seed = int(plan.config["base_seed"])
    registry = registry or {"format": REGISTRY_FORMAT, "chunks": {}}
    chunks: dict[str, Chunk] = {}
    assigned: dict[str, str] = {}
    for name, rec in sorted(registry["chunks"].items()):
        items = rec["items"]
        chunks[name] = Chunk(name=name, items=items, cfg=cfg,
                             worker_mb=max(model.worker_mb(it["cell"]) for it in items))
        for it in items:
            assigned[cell_pkey(json.dumps(it["cell"], sort_keys=True, separators=(",", ":")), it["seeds"],
                               rec["base_seed"])] = name
    budget = 60.0 * cfg["cpu_minutes"]
    next_id = max((int(n) for n in chunks), default=-1) + 1
    new: list[Chunk] = []
    size = 0
    for c in plan.cells:
        if cell_pkey(c.json, c.seeds, base_seed) in assigned:
            continue
        cell = json.loads(c.json)
        item = {"path": f"{c.sweep}/{c.path}", "cell": cell, "seeds": c.seeds,
                "predicted": round(model.seed_seconds(cell) * c.seeds, 3)}
        length = len(json.dumps(item)) + 2
        current = new[-1] if new else None
        if (current is None or current.cpu_seconds + item["predicted"] > budget
                or len(current.items) >= cfg["cells_per_job"] or size + length > MAX_CELLS_JSON):
            current = Chunk(name=f"{next_id + len(new):03d}", items=[], worker_mb=0.0, cfg=cfg)
            new.append(current)
            size = 0
        current.items.append(item)
        current.worker_mb = max(current.worker_mb, model.worker_mb(cell))
        size += length
    registry = {"format": REGISTRY_FORMAT,
                "chunks": {**registry["chunks"],
                           **{ch.name: {"base_seed": base_seed, "items": ch.items} for ch in new}}}
    chunks.update({ch.name: ch for ch in new})
    return chunks, registry


def chunk_of_cells(plan, chunks: dict[str, Chunk]) -> dict[tuple[str, str], str]:
    """(sweep, cell path) -> chunk name, for the plan's cells (each cell is in exactly one chunk)."""
    base_seed = int(plan.config["base_seed"])
    by_key = {}
    for name, ch in chunks.items():
        for it in ch.items:
            by_key[cell_pkey(json.dumps(it["cell"], sort_keys=True, separators=(",", ":")), it["seeds"],
                             base_seed)] = name
    return {(c.sweep, c.path): by_key[cell_pkey(c.json, c.seeds, base_seed)] for c in plan.cells}


def write_registry(path, registry: dict) -> bool:
    """Write the registry atomically if it differs from the file; True if written."""
    from .io import atomic_write_text

    text = json.dumps(registry, sort_keys=True, separators=(",", ":"))
    try:
        if Path(path).read_text() == text:
            return False
    except OSError:
        pass
    atomic_write_text(text, path)
    return True


# ------------------------------------------------------------------------------------------
# calibration
# ------------------------------------------------------------------------------------------
def read_benchmarks(paths) -> list[dict]:
    """Per-cell measurements from benchmark files written by rule ``simulate_cell``
    (``results/benchmarks/cells/**/*.tsv``, with the columns ``cell``, ``seeds``, ``cpu_time``,
    ``max_rss``) or from cache entries (``results/cache/cells/**/entry.json``: also the cells of
    chunks that did not finish); files of other rules or older versions (no ``cell`` column) are
    skipped."""
    import csv

    rows = []
    files = []
    for p in paths:
        p = Path(p)
        files += sorted([*p.rglob("*.tsv"), *p.rglob("entry.json")]) if p.is_dir() else [p]
    for f in files:
        if f.name == "entry.json":
            try:
                rec = json.loads(f.read_text())
                cpu = [float(c) for c in rec["cpu_seconds"]]
                rows.append({"cell": rec["material"]["cell"], "seeds": len(cpu), "cpu_per_seed": sum(cpu) / len(cpu),
                             "max_rss_mb": float(rec["max_rss_mb"]), "file": str(f)})
            except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
                pass
            continue
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                if not r.get("cell") or not r.get("seeds"):
                    continue
                try:
                    seeds = int(r["seeds"])
                    rows.append({"cell": json.loads(r["cell"]), "seeds": seeds,
                                 "cpu_per_seed": float(r["cpu_time"]) / max(seeds, 1),
                                 "max_rss_mb": float(r["max_rss"]), "file": str(f)})
                except (ValueError, KeyError, TypeError):
                    continue
    return rows


def calibrate(rows: list[dict], *, min_seconds: float = 1e-3) -> tuple[ResourceModel, dict]:
    """Least-squares fit of the model on measured rows (see :func:`read_benchmarks`); returns the
    model and a report (cells used, median and 95th percentile of measured / predicted)."""
    import numpy as np

    rows = [r for r in rows if r["cpu_per_seed"] >= min_seconds]
    if len(rows) < 2 * len(FEATURES):
        raise ValueError(f"{len(rows)} measured cells: too few to fit {len(FEATURES)} coefficients "
                         f"(need {2 * len(FEATURES)})")
    X = np.array([[features(r["cell"])[f] for f in FEATURES] for r in rows], dtype=np.float64)
    y = np.log(np.array([r["cpu_per_seed"] for r in rows], dtype=np.float64))
    w = np.sqrt(np.array([r["seeds"] for r in rows], dtype=np.float64))  # a cell of S seeds: S samples' mean
    used = np.ptp(X, axis=0) > 0
    used[0] = True
    coef = np.zeros(len(FEATURES))
    sol, *_ = np.linalg.lstsq(X[:, used] * w[:, None], y * w, rcond=None)
    coef[used] = sol
    resid = y - X @ coef
    sigma = float(np.sqrt(np.average(resid ** 2, weights=w ** 2)))
    n = np.array([float(r["cell"]["n"]) for r in rows])
    rss = np.array([r["max_rss_mb"] for r in rows])
    ok = np.isfinite(rss)
    if ok.sum() >= 2 and np.ptp((n[ok] / 1000.0) ** 2) > 0:
        A = np.stack([np.ones(ok.sum()), (n[ok] / 1000.0) ** 2], axis=1)
        (m0, m1), *_ = np.linalg.lstsq(A, rss[ok], rcond=None)
        m1 = max(float(m1), 0.0)
        m0 = float(np.max(rss[ok] - m1 * (n[ok] / 1000.0) ** 2))  # an upper envelope, not the mean
    else:
        m0, m1 = (float(np.max(rss[ok])) if ok.any() else DEFAULT_MODEL.mem_base_mb), DEFAULT_MODEL.mem_per_n2_mb
    model = ResourceModel(coef={f: round(float(c), 6) for f, c in zip(FEATURES, coef)}, sigma=round(sigma, 4),
                          mem_base_mb=round(m0 * 1.1, 1), mem_per_n2_mb=round(m1 * 1.1, 3), source="calibrated")
    ratio = np.exp(resid)
    report = {"cells": len(rows), "seeds": int(sum(r["seeds"] for r in rows)),
              "measured_cpu_seconds": round(float(sum(r["cpu_per_seed"] * r["seeds"] for r in rows)), 2),
              "ratio_median": round(float(np.median(ratio)), 3),
              "ratio_p95": round(float(np.quantile(ratio, 0.95)), 3),
              "ratio_max": round(float(np.max(ratio)), 3),
              "unused_features": [f for f, u in zip(FEATURES, used) if not u]}
    return model, report


def _cmd_calibrate(a) -> int:
    import yaml

    rows = read_benchmarks(a.paths)
    model, report = calibrate(rows)
    text = ("# resource model for attention-dynamics (config key jobs.model); written by\n"
            f"#   python -m attention_dynamics.pipeline.resources calibrate {' '.join(a.paths)}\n"
            f"# fit: {json.dumps(report)}\n" + yaml.safe_dump(model.as_dict(), sort_keys=False))
    if a.output:
        from .io import atomic_write_text

        atomic_write_text(text, a.output)
        print(f"wrote {a.output}: {json.dumps(report)}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def _cmd_predict(a) -> int:
    from .config import deep_update, load_yaml_strict
    from .sweep import check_config

    config: dict = {}
    for f in a.configfile:
        deep_update(config, load_yaml_strict(f))
    plan = check_config(config, configfiles=a.configfile, check_results=False)
    cfg = jobs_config(config.get("jobs"))
    chunks, _ = plan_chunks(plan, cfg)  # as for a new results folder (no registry)
    print(f"{'chunk':28s} {'cells':>5s} {'sims':>6s} {'CPU-min':>8s} {'threads':>7s} {'wall-min':>8s} "
          f"{'runtime':>7s} {'mem_mb':>6s}")
    tot_cpu = tot_req = 0.0
    for ch in chunks.values():
        th = max(1, min(a.cores, ch.max_threads))
        rt = ch.runtime_min(th)
        tot_cpu += ch.cpu_seconds
        tot_req += rt * th * 60
        print(f"{ch.name:28s} {len(ch.items):5d} {ch.n_tasks:6d} {ch.cpu_seconds / 60:8.1f} {th:7d} "
              f"{ch.makespan(th) / 60:8.1f} {rt:7d} {ch.mem_mb(th):6d}")
    print(f"{len(chunks)} chunks; predicted {tot_cpu / 3600:.2f} CPU-h of simulations; requested "
          f"{tot_req / 3600:.2f} CPU-h (threads × runtime, first attempt) with --cores {a.cores}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m attention_dynamics.pipeline.resources",
                                description="Resource model of simulate_chunk jobs: calibrate, predict.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("calibrate", help="fit the model on benchmark files (results/benchmarks/cells/**/*.tsv)")
    c.add_argument("paths", nargs="+", help="benchmark folders or files")
    c.add_argument("-o", "--output", help="write the model file here (default: print it)")
    c.set_defaults(func=_cmd_calibrate)
    pr = sub.add_parser("predict", help="chunks, predicted CPU time and requests of a config")
    pr.add_argument("configfile", nargs="+")
    pr.add_argument("--cores", type=int, default=8, help="CPUs per chunk job (the profile's cores)")
    pr.set_defaults(func=_cmd_predict)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
