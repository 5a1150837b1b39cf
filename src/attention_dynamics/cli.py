"""Command line: ``attention-dynamics {simulate,run-cell,run-chunk,link-cell,info,verify}`` (also
``python -m attention_dynamics``; ``chunk-spec`` writes a chunk's cell list for ``run-chunk``).

Nothing heavy is imported before a command needs it: ``link-cell`` (one per grid cell in a sweep)
and ``--help`` run without numpy, scipy or pandas; ``run-cell``/``run-chunk`` import them once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["main"]


def _cell_from_args(a) -> dict:
    cell = {"model": a.model, "init": a.init, "d": a.d, "n": a.n, "k": a.k, "beta": a.beta,
            "t_max": a.t_max, "theta_c": a.theta_c, "delta": a.delta, "rtol": a.rtol,
            "centres": a.centres, "engine": a.engine}
    for key in ("eps", "spacing", "min_angle", "r", "sigma", "min_mass", "max_wall_seconds"):
        val = getattr(a, key)
        if val is not None:
            cell[key] = val
    if a.masses:
        cell["masses"] = [float(v) for v in a.masses.split(",")]
    return cell


def _add_cell_options(p: argparse.ArgumentParser) -> None:
    from .pipeline.cell import CELL_DEFAULTS as D

    g = p.add_argument_group("model and initial data")
    g.add_argument("--model", choices=["sa", "usa"], default=D["model"], help="SA (softmax) or USA (GKPR24 time)")
    g.add_argument("--init", choices=["caps", "gaussian", "uniform"], default=D["init"], help="initial data")
    g.add_argument("--n", type=int, default=D["n"], help="number of particles (default %(default)s)")
    g.add_argument("--d", type=int, default=D["d"], help="ambient dimension, points on S^(d-1) (default %(default)s)")
    g.add_argument("--k", type=int, default=D["k"], help="number of caps / mixture components (default %(default)s)")
    g.add_argument("--beta", type=float, default=D["beta"], help="inverse temperature (default %(default)s)")
    g.add_argument("--eps", type=float, help=f"cap radius in 1-cos units (default {D['eps']})")
    g.add_argument("--centres", choices=["circle", "random"], default=D["centres"],
                   help="cap centres on a great circle or random (default %(default)s)")
    g.add_argument("--spacing", type=float, help="angle between consecutive circle centres, rad (default 2pi/k)")
    g.add_argument("--min-angle", dest="min_angle", type=float, help="random centres: minimum pairwise angle")
    g.add_argument("--masses", help="comma-separated cluster masses, e.g. 3,7 (default equal)")
    g.add_argument("--r", type=float, help="gaussian mixture: centre radius sqrt(r)")
    g.add_argument("--sigma", type=float, help="gaussian mixture: standard deviation")
    s = p.add_argument_group("solver")
    s.add_argument("--t-max", dest="t_max", type=float, default=D["t_max"], help="horizon (default %(default)g)")
    s.add_argument("--theta-c", dest="theta_c", type=float, default=D["theta_c"],
                   help="single-linkage cluster angle, rad (default %(default)s)")
    s.add_argument("--delta", type=float, default=D["delta"], help="collapse radius (default %(default)g)")
    s.add_argument("--rtol", type=float, default=D["rtol"], help="relative tolerance (default %(default)g)")
    s.add_argument("--min-mass", dest="min_mass", type=float,
                   help="macroscopic cluster threshold, a fraction of the mass (default: per initial data)")
    s.add_argument("--max-wall-seconds", dest="max_wall_seconds", type=float,
                   help=f"wall-clock limit per simulation (default {D['max_wall_seconds']:g})")
    s.add_argument("--engine", choices=["auto", "numpy", "numba"], default=D["engine"],
                   help="integrator implementation; auto = numba when installed (default %(default)s)")


def _cmd_simulate(a) -> int:
    import numpy as np
    import pandas as pd

    from .pipeline.cell import cell_id, run_cell, run_one

    cell = _cell_from_args(a)
    if a.out:
        tables = run_cell(cell, [a.seed], a.out, base_seed=a.base_seed)
        row = tables["runs"].iloc[0].to_dict()
        events = tables["events"]
    else:
        row, events, _, _ = run_one(cell, a.seed, a.base_seed)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"cell {cell_id(cell)} seed {a.seed}: status={row['status']} {row['reason']}")
        print(f"  escape time      {row['escape_time']:.10g}   (censored: {row['escape_censored']})")
        print(f"  first merge time {row['first_merge_time']:.10g}")
        print(f"  merges {row['n_merges']}, absorptions {row['n_absorptions']}, macroscopic clusters "
              f"{row['n_clusters_initial']} -> {row['n_clusters_final']} (min_mass {row['min_mass']:.4g}), "
              f"censored at t_max: {row['censored']}, t_end {row['t_end']:.6g}")
        if row["formation_status"]:
            print(f"  formation: {row['formation_status']} at t = {row['formation_time']:.6g}, "
                  f"{row['n_clusters_formation']} clusters")
        print(f"  {row['n_steps']} steps ({row['n_rejected']} rejected), {row['n_rhs']} field evaluations, "
              f"{row['wall_seconds']:.3f} s")
        if len(events):
            cols = ["kind", "time", "n_clusters_before", "n_clusters_after", "mass_a", "mass_b", "gap_at_open"]
            print(events[cols].to_string(index=False))
    if a.out:
        print(f"tables written to {a.out}")
    return 0 if row["status"] == "ok" else 1


def _cmd_run_cell(a) -> int:
    from .pipeline.cell import run_cell

    try:
        cell = json.loads(a.cell)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--cell is not valid JSON ({exc})") from None
    if not isinstance(cell, dict):
        raise ValueError(f"--cell must be a JSON object of cell keys, got {a.cell!r}")
    run_cell(cell, a.seeds, a.out, base_seed=a.base_seed, meta={"config_hash": a.config_hash}, log=sys.stderr)
    return 0


def _single_threaded_libraries() -> None:
    """One BLAS/OpenMP thread per process (before numpy is imported): chunk workers are the parallelism."""
    import os

    from .pipeline.runner import THREAD_ENV

    for var in THREAD_ENV:
        os.environ[var] = "1"


def _cells_text(value: str) -> str:
    """``--cells`` is JSON, or ``@FILE`` holding it."""
    if value.startswith("@"):
        from pathlib import Path

        return Path(value[1:]).read_text()
    return value


def _cmd_chunk_spec(a) -> int:
    from .pipeline.io import atomic_write_text
    from .pipeline.runner import parse_cells

    text = _cells_text(a.cells)
    parse_cells(text)  # malformed: an error here, not in the job
    atomic_write_text(text, a.out)
    return 0


def _cmd_run_chunk(a) -> int:
    _single_threaded_libraries()
    from .pipeline.runner import parse_cells, run_chunk

    cells = parse_cells(_cells_text(a.cells))
    # the heavy modules and the compiled kernels once, before the workers are forked (they inherit
    # them: no worker pays ~0.5 CPU-s of kernel loading, and no simulation's CPU time includes it)
    from .pipeline import cell as _cell  # noqa: F401
    from .engine import simulate as _simulate  # noqa: F401

    try:
        from .engine import kernels
    except ImportError:  # no numba: the numpy engine
        pass
    else:
        kernels.warm_up()

    report = run_chunk(cells, base_seed=a.base_seed, cache_root=a.cache, jobs=a.jobs, manifest=a.manifest,
                       chunk=a.chunk, log=sys.stderr)
    return 0 if report.ok else 1


def _cmd_link_cell(a) -> int:
    from .pipeline.runner import link_cell

    try:
        cell = json.loads(a.cell)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--cell is not valid JSON ({exc})") from None
    return link_cell(a.manifest, a.path, cell, a.out, benchmark=a.benchmark, log=sys.stderr, seeds=a.seeds,
                     base_seed=a.base_seed)
_INFO_KEYS = ("attention_dynamics_version", "git_commit", "git_describe", "git_dirty", "config_hash", "created_utc",
              "usa_time_convention")


def _cmd_info(a) -> int:
    import pyarrow.parquet as pq

    from .pipeline.io import read_provenance

    from .pipeline.integrity import verify

    for path in a.paths:
        meta = read_provenance(path)
        pf = pq.ParquetFile(path)
        v = verify(path)
        print(f"{path}: {pf.metadata.num_rows} rows, {pf.metadata.num_columns} columns")
        print(f"  {'checksum':27s} {v.status}{': ' + v.reason if v.reason else ''}")
        for key in _INFO_KEYS:
            print(f"  {key:27s} {meta.get(key, '(missing)')}")
        try:
            versions = json.loads(meta.get("versions") or "{}")
        except json.JSONDecodeError:
            versions = {}
        print(f"  {'versions':27s} " + (", ".join(f"{k} {v or '-'}" for k, v in versions.items()) or "(missing)"))
        for key in sorted(set(meta) - {*_INFO_KEYS, "versions", "config"}):
            val = meta[key]
            print(f"  {key:27s} {val if len(val) < 100 else val[:97] + '...'}")
        config = meta.get("config", "")
        print(f"  {'config':27s} " + ("(YAML below)" if config else "(missing)"))
        for line in config.splitlines():
            print(f"    {line}")
        if a.columns:
            for field in pf.schema_arrow:
                desc = (field.metadata or {}).get(b"description", b"").decode()
                print(f"    {field.name:22s} {str(field.type):10s} {desc}")
    return 0


def _cmd_verify(a) -> int:
    from .pipeline.integrity import scan

    verdicts = [v for path in a.paths for v in scan(path)]
    for v in verdicts:
        if v.status != "ok" or a.verbose:
            print(f"{v.status.upper() if v.damaged else v.status:9s} {v.path}{': ' + v.reason if v.reason else ''}")
    counts = {s: sum(v.status == s for v in verdicts) for s in ("ok", "unsigned", "damaged")}
    print(f"{len(verdicts)} tables: {counts['ok']} ok, {counts['damaged']} damaged, {counts['unsigned']} without "
          "checksum" + (" (a damaged table is deleted and recomputed by the next snakemake run)"
                        if counts["damaged"] else ""))
    if not verdicts:
        print(f"attention-dynamics: error: no Parquet table in {' '.join(a.paths)}", file=sys.stderr)
        return 2
    return 1 if counts["damaged"] else 0


class _Version(argparse.Action):
    """``--version`` without importing importlib.metadata unless asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__

        parser.exit(message=f"{parser.prog} {__version__}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; given the ``command`` being run, the other commands' options (and the imports
    their defaults need) are left out."""
    p = argparse.ArgumentParser(prog="attention-dynamics",
                                description="Metastability in self-attention dynamics (SA/USA on the sphere).")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    ps = sub.add_parser("simulate", help="run one simulation and print its merges",
                        description="Run one simulation (one seed of one grid cell) and print escape and merge times.")
    if command in (None, "simulate"):
        _add_cell_options(ps)
    ps.add_argument("--seed", type=int, default=0, help="seed index (default %(default)s)")
    ps.add_argument("--base-seed", dest="base_seed", type=int, default=0, help="base seed (default %(default)s)")
    ps.add_argument("--out", help="folder to write runs/events/lifetimes/trajectories Parquet tables")
    ps.set_defaults(func=_cmd_simulate)

    pc = sub.add_parser("run-cell", help="run all seeds of one grid cell and write its Parquet tables")
    pc.add_argument("--cell", required=True, help="cell parameters as JSON (keys of cell.CELL_DEFAULTS)")
    pc.add_argument("--seeds", type=int, required=True, help="number of seeds (indices 0..N-1)")
    pc.add_argument("--base-seed", dest="base_seed", type=int, default=0)
    pc.add_argument("--config-hash", dest="config_hash", default="")
    pc.add_argument("--out", required=True, help="output folder")
    pc.set_defaults(func=_cmd_run_cell)

    pv = sub.add_parser("verify", help="check tables against their checksums (exit status 1 if any is damaged)",
                        description="Check every Parquet table (below the given folders) against the SHA-256 "
                                    "stored in it: damaged (truncated, changed) tables are listed and the exit "
                                    "status is 1.")
    pv.add_argument("paths", nargs="+", help="results folders or Parquet files")
    pv.add_argument("-v", "--verbose", action="store_true", help="list every table, not only the damaged ones")
    pv.set_defaults(func=_cmd_verify)

    pi = sub.add_parser("info", help="print the provenance stored in Parquet tables",
                        description="Print what made a table: package version, git commit (with -dirty if the "
                                    "checkout had uncommitted changes), library versions, config hash and the "
                                    "config itself, creation time, and whether the table matches its checksum.")
    pi.add_argument("paths", nargs="+", help="Parquet files written by the pipeline")
    pi.add_argument("--columns", action="store_true", help="also list the columns and their descriptions")
    pi.set_defaults(func=_cmd_info)

    pk = sub.add_parser("run-chunk", help="run many grid cells in a process pool, through the cell cache",
                        description="What a simulate_chunk job runs: every cell of --cells, one task per "
                                    "(cell, seed) on --jobs worker processes; finished cells go to the "
                                    "cache at once, cells already there are reused; the manifest is "
                                    "written when all are done (attention_dynamics.pipeline.runner).")
    pk.add_argument("--cells", required=True, help="JSON list of {path, cell, seeds[, predicted]}, or @FILE")
    pk.add_argument("--base-seed", dest="base_seed", type=int, default=0)
    pk.add_argument("--cache", required=True, help="cache folder (results/cache/cells)")
    pk.add_argument("--jobs", type=int, default=1, help="worker processes (default %(default)s)")
    pk.add_argument("--manifest", help="write this manifest (JSON) when every cell is done")
    pk.add_argument("--chunk", default="", help="chunk name, for the log")
    pk.set_defaults(func=_cmd_run_chunk)

    pq_ = sub.add_parser("chunk-spec", help="check and write the cell list of a chunk (its --cells file)")
    pq_.add_argument("--cells", required=True, help="JSON list of {path, cell, seeds[, predicted]}, or @FILE")
    pq_.add_argument("--out", required=True, help="file to write (atomically)")
    pq_.set_defaults(func=_cmd_chunk_spec)

    pl = sub.add_parser("link-cell", help="put a cell computed by a chunk at its per-cell output paths",
                        description="What a simulate_cell job runs: hard-link (or copy) the cache entry of "
                                    "one cell, named in its chunk's manifest, onto OUT/<table>.parquet.")
    pl.add_argument("--manifest", required=True, help="the chunk's manifest")
    pl.add_argument("--path", required=True, help="<sweep>/<cell path>, as in the manifest")
    pl.add_argument("--cell", required=True, help="the cell's parameters (JSON), checked against the entry")
    pl.add_argument("--out", required=True, help="output folder")
    pl.add_argument("--seeds", type=int, help="number of seeds the rule asks for (checked against the entry)")
    pl.add_argument("--base-seed", dest="base_seed", type=int, help="base seed (checked against the entry)")
    pl.add_argument("--benchmark", help="write the cell's measured CPU time and memory here (TSV)")
    pl.set_defaults(func=_cmd_link_cell)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`attention-dynamics info … | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as exc:  # bad input, a missing or unreadable file: a message, not a traceback
        print(f"attention-dynamics: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
