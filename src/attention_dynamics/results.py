"""The result tables: what each one holds, their documentation, and loading them.

Every Parquet table the workflow writes is listed in :data:`TABLES` (name → what one row
is), and its columns come from :func:`table_columns`, the very dictionaries that fill the
Parquet field metadata when the table is written; ``docs/tables.md`` is generated from them
(:func:`tables_markdown`), so the three cannot drift (``tests/test_workflow.py`` checks the
Parquet files of a run against the dictionaries and the doc against the generator).

Loading::

    import attention_dynamics as ad
    tables = ad.load_results("results")      # {"runs": DataFrame, "fits": DataFrame, ...}
    runs = tables["runs"]
    runs.attrs["provenance"]["git_describe"] # commit of the code that wrote it ("-dirty": uncommitted changes)
    runs.attrs["columns"]["escape_time"]      # the column's description

Text columns with few distinct values (model, init, status, sweep, …) come back as pandas
categoricals; everything else has the dtype it was written with.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

__all__ = ["TABLES", "CATEGORICAL", "table_columns", "tables_markdown", "table_path", "load_table",
           "load_results", "main"]

# name -> (what one row is, where it comes from); the order of docs/tables.md and of load_results
TABLES = {
    "runs": ("One row per simulation (sweep, cell, β, seed).", "rule aggregate"),
    "events": ("One row per event of a simulation: merges of macroscopic clusters, absorptions of stragglers, "
               "joins of stragglers, splits (column kind).", "rule aggregate"),
    "lifetimes": ("One row per plateau (stretch of constant macroscopic cluster count) of a simulation.",
                  "rule aggregate"),
    "trajectories": ("Log-spaced samples of the energy and cluster count of every simulation.", "rule aggregate"),
    "fits": ("One row per (fit group, quantity): ln T = a + c·β + b·ln β over β and seeds, runs that reached "
             "t_max without the event included as censored (maximum likelihood; `attention_dynamics.analysis.fits`).",
             "rule fits"),
    "staircase_authors": ("GKPR24 §6 staircase in the authors' configuration (n = 5 on the circle): one row "
                          "per (parametrisation, β, merge), measured against the closest-pair-first prediction.",
                          "rule staircase_authors (config section reproductions)"),
    "staircase_authors_curves": ("The energy curves of that staircase: one row per (parametrisation, β, "
                                 "sample).", "rule staircase_authors (config section reproductions)"),
    "emergence": ("BPA24 emergence of clusters from iid uniform data: one row per (d, n, β, seed), the "
                  "observed counts next to l* and the finite-n linear prediction.",
                  "rules emergence_cell, emergence (config section reproductions)"),
    "phase_diagram": ("GLPR23 (β, t) phase diagram: one row per (β, t), the fraction of clustered pairs "
                      "averaged over independent uniform initial conditions.",
                      "rule phase_diagram (config section reproductions)"),
    "emergence_spectra": ("The angular power spectra of the emergence runs: one row per (model, d, n, β, seed, t, "
                          "l), the degree power S_l(t) of the particle configuration.",
                          "rules emergence_cell, emergence_growth (config section reproductions.emergence)"),
    "emergence_growth": ("BPA24 at finite n with particles: one row per (model, d, n, β, l): the growth rate of the "
                         "seed-averaged degree power in the linear window against λ_l, and the observed dominant "
                         "degrees and counts at formation against the finite-n prediction "
                         "(`attention_dynamics.reproductions.growth`).",
                         "rule emergence_growth (config section reproductions.emergence)"),
    "meanfield": ("Growth rates of the mean-field PDE solver: one row per (model, convention, d, β, l), the rate of "
                  "‖P_l ρ‖ measured from a single-mode start against λ_l(β, d).",
                  "rules meanfield_rates, meanfield (config section reproductions.meanfield)"),
    "meanfield_emergence": ("BPA24 Fig. 4 and its β sweep with the mean-field PDE: one row per (d, β, seed) of a "
                            "uniform density plus white noise run to the resolution stop: peaks (d = 2) and the "
                            "dominant degree of the linear phase next to l* and the finite-n prediction at n_eff "
                            "(`attention_dynamics.reproductions.meanfield`).",
                            "rules meanfield_noise, meanfield (config section reproductions.meanfield)"),
    "meanfield_profiles": ("Density snapshots of some of those runs (profile_betas × the first profile_seeds "
                           "seeds; d = 2 at fig4_beta always), long format: one row per (d, β, seed, t, grid point).",
                           "rules meanfield_noise, meanfield (config section reproductions.meanfield)"),
}

# text columns stored as categoricals by load_table (where present and textual)
CATEGORICAL = ("sweep", "model", "init", "status", "reason", "centres", "quantity", "theory", "parametrisation",
               "kind", "closed_by", "formation_status")


def table_columns(name: str) -> dict[str, str]:
    """Column → description of the table ``name`` (a key of :data:`TABLES`), in column order.

    These are the dictionaries the writers pass to :func:`attention_dynamics.pipeline.io.write_table`.
    """
    if name in ("runs", "events", "lifetimes", "trajectories"):
        from .pipeline.aggregate import EXTRA_RUN_COLUMNS
        from .pipeline.cell import TABLES as CELL_TABLES

        cols = dict(CELL_TABLES[name])
        if name == "runs":
            cols.update(EXTRA_RUN_COLUMNS)
        return cols
    if name == "fits":
        from .analysis.fits import FIT_COLUMNS

        return dict(FIT_COLUMNS)
    if name == "staircase_authors":
        from .reproductions.staircase import STAIRCASE_STEP_COLUMNS

        return dict(STAIRCASE_STEP_COLUMNS)
    if name == "staircase_authors_curves":
        from .reproductions.staircase import STAIRCASE_CURVE_COLUMNS

        return dict(STAIRCASE_CURVE_COLUMNS)
    if name == "emergence":
        from .reproductions.emergence import EMERGENCE_COLUMNS

        return dict(EMERGENCE_COLUMNS)
    if name == "phase_diagram":
        from .reproductions.phase_diagram import PHASE_COLUMNS

        return dict(PHASE_COLUMNS)
    if name == "emergence_spectra":
        from .reproductions.emergence import EMERGENCE_SPECTRA_COLUMNS

        return dict(EMERGENCE_SPECTRA_COLUMNS)
    if name == "emergence_growth":
        from .reproductions.growth import EMERGENCE_GROWTH_COLUMNS

        return dict(EMERGENCE_GROWTH_COLUMNS)
    if name in ("meanfield", "meanfield_emergence", "meanfield_profiles"):
        from .reproductions import meanfield as mf

        return dict({"meanfield": mf.MEANFIELD_COLUMNS, "meanfield_emergence": mf.MEANFIELD_EMERGENCE_COLUMNS,
                     "meanfield_profiles": mf.MEANFIELD_PROFILE_COLUMNS}[name])
    raise KeyError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")


PROVENANCE_DOC = {
    "attention_dynamics_version": "version of this package",
    "git_commit": "full commit hash of the checkout that ran (empty outside a git checkout)",
    "git_describe": "`git describe --always --dirty`: the commit, with `-dirty` if tracked files had "
                    "uncommitted changes",
    "git_dirty": "true / false (empty outside a git checkout)",
    "versions": "JSON: versions of Python, numpy, scipy, pandas, pyarrow, matplotlib and snakemake",
    "config_hash": "hash of what determines the simulations (`base_seed` and the normalised sweeps without "
                   "their descriptions)",
    "config": "the run's config as YAML (the files given to Snakemake, merged, with `--config` overrides)",
    "created_utc": "creation time (UTC, ISO 8601)",
    "usa_time_convention": "the USA time convention of every time column (GKPR24's e^{β(⟨x,y⟩−1)}/n)",
    "attention_dynamics_sha256": "SHA-256 of the whole file, computed with this value set to 64 zeros: "
                                 "`attention-dynamics verify results/` checks every table against it "
                                 "(attention_dynamics.pipeline.integrity)",
}


def tables_markdown() -> str:
    """The text of docs/tables.md: every column of every table the workflow writes."""
    from .pipeline.aggregate import EXTRA_RUN_COLUMNS

    lines = [
        "# Result tables",
        "",
        "Written by the Snakemake workflow to `results/tables/` (Parquet). Generated from the",
        "package (`python -m attention_dynamics.pipeline.aggregate --markdown docs/tables.md`);",
        "`tests/test_workflow.py` checks that this file is up to date and that the Parquet files of a",
        "run carry exactly these columns and descriptions (Parquet field metadata, key `description`).",
        "Load them all with `attention_dynamics.load_results(\"results\")` (README, *Reading the results*).",
        "",
        "Join keys: `sweep`, `cell_id`, `beta`, `seed` identify a simulation in the runs, events,",
        "lifetimes and trajectories tables; `group_id` (runs, fits) identifies a scaling-law fit group.",
        "Per-cell tables under `results/cells/<sweep>/<cell path>/` have the same columns without the",
        "runs extras; per-(d, n, β) emergence tables under `results/reproductions/emergence/` have the",
        "columns of `emergence.parquet`. The reproduction tables are written only when the config has a",
        "`reproductions:` section. Times are in GKPR24's convention for USA (`docs/science.md` §1).",
        "",
        "## Provenance (every table)",
        "",
        "Key-value metadata of every Parquet file (`attention-dynamics info <file>` prints it):",
        "",
        "| key | meaning |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in PROVENANCE_DOC.items()],
        "",
        "Aggregated tables also record `sweeps` and `n_cells`; fits the fit settings; reproduction",
        "tables their `reproductions` settings (JSON).",
        "",
    ]
    for name, (intro, source) in TABLES.items():
        lines += [f"## {name}.parquet", "", f"{intro} Written by {source}.", "",
                  "| column | description |", "|---|---|"]
        for c, doc in table_columns(name).items():
            extra = " *(added by aggregation)*" if name == "runs" and c in EXTRA_RUN_COLUMNS else ""
            lines.append(f"| `{c}` | {doc.replace('|', '∣')}{extra} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------
def table_path(name: str, results: str | os.PathLike = "results") -> Path:
    """Where the workflow writes table ``name``: ``<results>/tables/<name>.parquet``."""
    return Path(results) / "tables" / f"{name}.parquet"


def load_table(path: str | os.PathLike, *, categorical: bool = True) -> pd.DataFrame:
    """One Parquet table as a DataFrame, with ``attrs`` ``path``, ``provenance`` (the file's
    key-value metadata, ``versions`` parsed from JSON) and ``columns`` (column → description).

    ``categorical``: text columns named in :data:`CATEGORICAL` become pandas categoricals.
    """
    import pyarrow.parquet as pq

    from .pipeline.io import read_provenance

    table = pq.read_table(path)
    df = table.to_pandas()
    if categorical:
        for col in CATEGORICAL:
            if col in df.columns and (df[col].dtype == object or pd.api.types.is_string_dtype(df[col])):
                df[col] = df[col].astype("category")
    prov = read_provenance(path)
    if prov.get("versions", "").startswith("{"):
        prov["versions"] = json.loads(prov["versions"])
    df.attrs = {"path": str(path), "provenance": prov,
                "columns": {f.name: (f.metadata or {}).get(b"description", b"").decode() for f in table.schema}}
    return df


def load_results(results: str | os.PathLike = "results", tables=None, *,
                 categorical: bool = True) -> dict[str, pd.DataFrame]:
    """Every table of a results folder: ``{name: DataFrame}`` in the order of :data:`TABLES`.

    ``results``: the folder of the config's ``results:`` key (default ``results``, relative to
    the working directory). ``tables``: names to load (default: every table present; a name
    asked for but missing raises FileNotFoundError). Each DataFrame carries its provenance
    and column descriptions in ``df.attrs`` (see :func:`load_table`).
    """
    wanted = list(TABLES) if tables is None else [tables] if isinstance(tables, str) else list(tables)
    unknown = [t for t in wanted if t not in TABLES]
    if unknown:
        raise KeyError(f"unknown table {unknown[0]!r}; tables: {', '.join(TABLES)}")
    out = {}
    for name in wanted:
        path = table_path(name, results)
        if path.exists():
            out[name] = load_table(path, categorical=categorical)
        elif tables is not None:
            raise FileNotFoundError(f"{path}: no such table (has the workflow run with results: {results}?)")
    if not out:
        raise FileNotFoundError(f"no result tables in {Path(results) / 'tables'}")
    return out


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.results")
    p.add_argument("--markdown", metavar="PATH", help="write the table documentation (docs/tables.md)")
    args = p.parse_args(argv)
    if args.markdown:
        from .pipeline.io import atomic_write_text

        atomic_write_text(tables_markdown(), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
