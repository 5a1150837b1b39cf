"""Command line of the reproductions, called by the Snakemake rules:
``python -m attention_dynamics.reproductions {staircase,emergence,emergence-aggregate,phase,summary}``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import reproductions_config
from .emergence import EMERGENCE_COLUMNS, emergence_table, plot_emergence
from .phase_diagram import PHASE_COLUMNS, phase_diagram, plot_phase_diagram
from .staircase import STAIRCASE_CURVE_COLUMNS, STAIRCASE_STEP_COLUMNS, plot_staircase, staircase_tables
from .summary import write_summary

__all__ = ["main"]

def main(argv=None) -> int:
    """``python -m attention_dynamics.reproductions {staircase,emergence,phase,summary} …``"""
    import argparse
    import json
    import sys

    from ..pipeline.io import provenance, write_table

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.reproductions",
                                description="paper reproductions: staircase, emergence, phase diagram, summary")
    p.add_argument("--config", default=None, help="JSON of the reproductions: config section (default: defaults)")
    p.add_argument("--config-hash", default="", help="config hash for the provenance (default: the run's, "
                                                     "from the environment the Snakefile sets)")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("staircase")
    a.add_argument("--steps", required=True)
    a.add_argument("--curves", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("emergence")
    a.add_argument("--d", type=int, required=True)
    a.add_argument("--n", type=int, required=True)
    a.add_argument("--beta", type=float, required=True)
    a.add_argument("--base-seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a = sub.add_parser("emergence-aggregate")
    a.add_argument("--inputs", nargs="+", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("phase")
    a.add_argument("--base-seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("summary")
    for t in ("runs", "lifetimes", "trajectories", "fits", "staircase", "emergence", "phase"):
        a.add_argument(f"--{t}", default=None)
    a.add_argument("--out", required=True)
    args = p.parse_args(argv)
    given = json.loads(args.config) if args.config else {}
    cfg = reproductions_config(given)
    used = {part: cfg[part] for part in given} or cfg  # provenance: the settings this job was given
    prov = provenance(config_hash=args.config_hash, reproductions=used)  # hash: the run's (environment)

    if args.cmd == "staircase":
        c = cfg["staircase"]
        steps, curves = staircase_tables(c["betas"], lr=c["lr"], logtime=bool(c["logtime"]),
                                         record_every=int(c["record_every"]))
        write_table(steps, args.steps, columns_doc=STAIRCASE_STEP_COLUMNS, meta=prov)
        write_table(curves, args.curves, columns_doc=STAIRCASE_CURVE_COLUMNS, meta=prov)
        if args.plot:
            plot_staircase(steps, curves, args.plot)
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(steps.to_string(index=False))
    elif args.cmd == "emergence":
        c = dict(cfg["emergence"])
        betas_, seeds, ns = c.pop("betas"), int(c.pop("seeds")), c.pop("n")
        c.pop("d")
        if args.d not in ns or args.n not in ns[args.d]:
            p.error(f"--d {args.d} --n {args.n}: not in the configured reproductions.emergence.n = {ns}")
        df = emergence_table([args.beta], seeds, d=args.d, n=args.n, log=sys.stdout, base_seed=args.base_seed, **c)
        write_table(df, args.out, columns_doc=EMERGENCE_COLUMNS, meta=prov)
    elif args.cmd == "emergence-aggregate":
        import pyarrow.parquet as pq

        df = pd.concat([pq.read_table(f).to_pandas() for f in args.inputs], ignore_index=True)
        df = df.sort_values(["d", "n", "beta", "seed"], kind="stable").reset_index(drop=True)
        write_table(df, args.out, columns_doc=EMERGENCE_COLUMNS, meta=prov)
        if args.plot:
            plot_emergence(df, args.plot)
        summary = df.groupby(["d", "n", "beta"]).agg(l_star=("l_star", "first"), agree=("agree", "mean"),
                                                p_lin=("p_lin_count_l_star", "first"),
                                                agree_formation=("agree_formation", "mean"),
                                                agree_degree=("agree_degree", "mean"),
                                                p_lin_degree=("p_lin_degree_l_star", "first"),
                                                wall=("wall_formation", "mean"))
        print(summary.to_string())
    elif args.cmd == "phase":
        c = cfg["phase_diagram"]
        times = np.linspace(0.0, float(c["t_max"]), int(c["n_times"]))
        df = phase_diagram(c["betas"], times, n=int(c["n"]), d=int(c["d"]), n_systems=int(c["n_systems"]),
                           model=c["model"], threshold=float(c["threshold"]), base_seed=args.base_seed)
        write_table(df, args.out, columns_doc=PHASE_COLUMNS, meta=prov)
        if args.plot:
            plot_phase_diagram(df, args.plot)
    elif args.cmd == "summary":
        import pyarrow.parquet as pq

        tables = {}
        for t in ("runs", "lifetimes", "trajectories", "fits", "staircase", "emergence", "phase"):
            path = getattr(args, t)
            tables[t] = pq.read_table(path).to_pandas() if path else None
        print(write_summary(args.out, **tables))
    return 0


