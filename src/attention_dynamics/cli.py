"""Command line: ``attention-dynamics {simulate,run-cell,info,verify}`` (also ``python -m attention_dynamics``)."""
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


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="attention-dynamics",
                                description="Metastability in self-attention dynamics (SA/USA on the sphere).")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ps = sub.add_parser("simulate", help="run one simulation and print its merges",
                        description="Run one simulation (one seed of one grid cell) and print escape and merge times.")
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
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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
