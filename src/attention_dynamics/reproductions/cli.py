"""Command line of the reproductions, called by the Snakemake rules:
``python -m attention_dynamics.reproductions {staircase,emergence,emergence-aggregate,emergence-growth,phase,
meanfield-rates,meanfield-noise,meanfield-aggregate,summary}``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .config import reproductions_config
from .emergence import EMERGENCE_COLUMNS, EMERGENCE_SPECTRA_COLUMNS, emergence_cell, plot_emergence
from .phase_diagram import PHASE_COLUMNS, phase_diagram, plot_phase_diagram
from .staircase import STAIRCASE_CURVE_COLUMNS, STAIRCASE_STEP_COLUMNS, plot_staircase, staircase_tables
from .summary import write_summary

__all__ = ["main"]

# tables the summary reads (keyword arguments of summary_rows; --meanfield-emergence etc. on the command line)
SUMMARY_TABLES = ("runs", "lifetimes", "trajectories", "fits", "staircase", "emergence", "phase", "meanfield",
                  "meanfield_emergence", "emergence_growth")


def _read(path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def _concat_tables(paths, columns: dict, order: list[str]) -> pd.DataFrame:
    """Concatenate per-job tables in a stable order (an empty input gives the documented empty frame)."""
    frames = [f for f in (_read(p) for p in paths) if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    df = pd.concat(frames, ignore_index=True).reindex(columns=list(columns))
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def _counts(s: pd.Series) -> str:
    return ", ".join(f"{int(k)}×{int(v)}" for k, v in s.value_counts().sort_index().items())

def main(argv=None) -> int:
    """``python -m attention_dynamics.reproductions {staircase,emergence,phase,summary} …``"""
    import argparse
    import json
    import sys

    from ..pipeline.io import provenance, write_table, write_tables

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
    a.add_argument("--spectra", default=None, help="also write the angular power spectra S_l(t) here")
    a = sub.add_parser("emergence-aggregate")
    a.add_argument("--inputs", nargs="+", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("phase")
    a.add_argument("--base-seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a.add_argument("--plot", nargs="*", default=[])
    a = sub.add_parser("emergence-growth")
    a.add_argument("--spectra-inputs", nargs="*", default=[])
    a.add_argument("--emergence", required=True)
    a.add_argument("--meanfield", default=None)
    a.add_argument("--out-spectra", required=True)
    a.add_argument("--out-growth", required=True)
    a.add_argument("--plot-growth", nargs="*", default=[])
    a.add_argument("--plot-selection", nargs="*", default=[])
    a = sub.add_parser("meanfield-rates")
    a.add_argument("--d", type=int, required=True)
    a.add_argument("--out", required=True)
    a = sub.add_parser("meanfield-noise")
    a.add_argument("--d", type=int, required=True)
    a.add_argument("--beta", type=float, required=True)
    a.add_argument("--base-seed", type=int, default=0)
    a.add_argument("--out", required=True)
    a.add_argument("--profiles", required=True)
    a = sub.add_parser("meanfield-aggregate")
    a.add_argument("--rates", nargs="+", required=True)
    a.add_argument("--noise", nargs="+", required=True)
    a.add_argument("--profiles", nargs="+", required=True)
    a.add_argument("--out-rates", required=True)
    a.add_argument("--out-emergence", required=True)
    a.add_argument("--out-profiles", required=True)
    a.add_argument("--plot-heatmap", nargs="*", default=[])
    a.add_argument("--plot-peaks", nargs="*", default=[])
    a = sub.add_parser("summary")
    for t in SUMMARY_TABLES:
        a.add_argument(f"--{t.replace('_', '-')}", default=None)
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
        for k in ("fit_level", "band"):  # settings of the growth fits (rule emergence_growth), not of the runs
            c.pop(k)
        c["power_level"] = c["power_level"][args.d]
        if not args.spectra:
            c["spectrum_points"] = 0
        df, spectra = emergence_cell([args.beta], seeds, d=args.d, n=args.n, log=sys.stdout,
                                     base_seed=args.base_seed, **c)
        items = [(df, args.out, EMERGENCE_COLUMNS, prov)]
        if args.spectra:
            items.append((spectra, args.spectra, EMERGENCE_SPECTRA_COLUMNS, prov))
        write_tables(items)
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
    elif args.cmd == "emergence-growth":
        from .growth import EMERGENCE_GROWTH_COLUMNS, emergence_growth_table, plot_growth_rates, plot_selection

        c = cfg["emergence"]
        spectra = _concat_tables(args.spectra_inputs, EMERGENCE_SPECTRA_COLUMNS, ["model", "d", "n", "beta", "seed",
                                                                                  "t", "l"])
        emergence = _read(args.emergence)
        growth = emergence_growth_table(spectra, emergence, fit_level=float(c["fit_level"]), band=float(c["band"]))
        write_tables([(spectra, args.out_spectra, EMERGENCE_SPECTRA_COLUMNS, prov),
                      (growth, args.out_growth, EMERGENCE_GROWTH_COLUMNS, prov)])
        if args.plot_growth:
            plot_growth_rates(_read(args.meanfield) if args.meanfield else None, growth, args.plot_growth)
        if args.plot_selection:
            plot_selection(emergence, growth, args.plot_selection)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(growth[growth["in_band"]].groupby(["d", "n", "beta"]).agg(
                worst=("rel_error", lambda v: float(np.nanmax(np.abs(v)))), argmax=("argmax_measured", "first"),
                l_star=("l_star", "first"), p=("selection_pvalue", "first")).to_string())
    elif args.cmd == "meanfield-rates":
        from .meanfield import MEANFIELD_COLUMNS, meanfield_rates_table

        m = cfg["meanfield"]
        df = meanfield_rates_table(args.d, m["rate_betas"], m["rate_models"], convention=m["convention"],
                                   degrees=int(m["rate_degrees"]), epsilon=float(m["rate_epsilon"]),
                                   rtol=float(m["rate_rtol"]), log=sys.stdout)
        write_table(df, args.out, columns_doc=MEANFIELD_COLUMNS, meta=prov)
    elif args.cmd == "meanfield-noise":
        from .meanfield import MEANFIELD_EMERGENCE_COLUMNS, MEANFIELD_PROFILE_COLUMNS, meanfield_noise_table

        m = cfg["meanfield"]
        d = args.d
        df, profiles = meanfield_noise_table(
            [args.beta], int(m["seeds"]), d, profile_betas=m["profile_betas"] + [m["fig4_beta"]] * (d == 2),
            profile_seeds=max(int(m["profile_seeds"]), 1 if d == 2 and args.beta == m["fig4_beta"] else 0),
            log=sys.stdout, base_seed=args.base_seed, model=m["model"], convention=m["convention"],
            sigma=float(m["sigma"]), noise=int(m["noise_points"] if d == 2 else m["noise_degree"]),
            l_max=int(m["l_max_circle"] if d == 2 else m["l_max_sphere"]),
            max_tail=float(m["max_tail_circle"] if d == 2 else m["max_tail_sphere"]), horizon=float(m["horizon"]),
            power_level=float(m["power_level"]), peak_level=float(m["peak_level"]), n_times=int(m["n_times"]),
            profile_theta=int(m["profile_theta"]), profile_lat=int(m["profile_lat"]))
        write_tables([(df, args.out, MEANFIELD_EMERGENCE_COLUMNS, prov),
                      (profiles, args.profiles, MEANFIELD_PROFILE_COLUMNS, prov)])
    elif args.cmd == "meanfield-aggregate":
        from .meanfield import (MEANFIELD_COLUMNS, MEANFIELD_EMERGENCE_COLUMNS, MEANFIELD_PROFILE_COLUMNS,
                                plot_meanfield_heatmap, plot_meanfield_peaks)

        rates = _concat_tables(args.rates, MEANFIELD_COLUMNS, ["model", "d", "beta", "l"])
        em = _concat_tables(args.noise, MEANFIELD_EMERGENCE_COLUMNS, ["d", "beta", "seed"])
        prof = _concat_tables(args.profiles, MEANFIELD_PROFILE_COLUMNS, ["d", "beta", "seed", "t", "theta", "phi"])
        write_tables([(rates, args.out_rates, MEANFIELD_COLUMNS, prov), (em, args.out_emergence,
                      MEANFIELD_EMERGENCE_COLUMNS, prov), (prof, args.out_profiles, MEANFIELD_PROFILE_COLUMNS, prov)])
        if args.plot_heatmap:
            plot_meanfield_heatmap(prof, em, args.plot_heatmap, beta=float(cfg["meanfield"]["fig4_beta"]))
        if args.plot_peaks:
            plot_meanfield_peaks(em, args.plot_peaks)
        print("growth rates: max |rel. error| per d:",
              rates.groupby("d")["rel_error"].apply(lambda v: float(np.nanmax(np.abs(v)))).to_dict())
        with pd.option_context("display.width", 200):
            print(em.groupby(["d", "beta"]).agg(l_star=("l_star", "first"), peaks=("n_peaks", _counts),
                                                arcs=("n_arcs", _counts), degree=("dominant_degree", _counts)))
    elif args.cmd == "summary":
        tables = {t: (_read(getattr(args, t)) if getattr(args, t) else None) for t in SUMMARY_TABLES}
        print(write_summary(args.out, **tables))
    return 0


