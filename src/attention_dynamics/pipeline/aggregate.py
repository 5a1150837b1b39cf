"""Concatenate the per-cell Parquet tables of a sweep into results/tables/*.parquet.

Every aggregated table keeps the per-cell columns (documented in
``attention_dynamics.pipeline.cell.TABLES``); the runs table gains the cell parameters that the
per-cell runs table does not carry (``EXTRA_RUN_COLUMNS``), among them ``group_id``, the
key of the scaling-law fits. Column descriptions travel as Parquet field metadata and
provenance (package version, git commit, config hash) as file metadata, via
:func:`attention_dynamics.pipeline.io.write_table`.
"""
from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq

from .sweep import TABLE_NAMES

__all__ = ["EXTRA_RUN_COLUMNS", "table_columns", "aggregate", "tables_markdown", "run_from_snakemake", "main"]

EXTRA_RUN_COLUMNS = {
    "cell_path": "path of the cell's folder below results/cells/<sweep>/ (deterministic, from the config)",
    "group_id": "hash of the sweep name and all cell parameters except β: the runs of one scaling-law fit",
    "centres": "circle (great circle, see spacing) or random (pairwise angle ≥ min_angle, per seed)",
    "min_angle": "random centres: minimum pairwise angle (rad); NaN otherwise",
    "masses": "per-cluster masses as JSON (empty string = equal masses)",
    "r": "gaussian: the component means are √r·w_q; NaN otherwise",
    "sigma": "gaussian: component standard deviation; NaN otherwise",
    "rtol": "relative tolerance of the integrator",
    "atol": "absolute tolerance of the integrator",
    "per_decade": "trajectory samples per decade of time",
    "max_steps": "most solver steps per simulation (more: status failed)",
    "n_seeds_cell": "number of seeds of the cell (seed indices 0 … n_seeds_cell − 1)",
}


def table_columns(name: str) -> dict[str, str]:
    """Column -> description of an aggregated table (runs, events, lifetimes, trajectories, fits)."""
    if name == "fits":
        from ..analysis.fits import FIT_COLUMNS

        return dict(FIT_COLUMNS)
    from .cell import TABLES

    cols = dict(TABLES[name])
    if name == "runs":
        cols.update(EXTRA_RUN_COLUMNS)
    return cols


def _cell_extra(cell: dict) -> dict:
    p = cell["params"]
    init, centres = p["init"], p["centres"]
    nan = float("nan")
    return {
        "cell_path": cell["path"],
        "group_id": cell["group"],
        "centres": centres if init != "uniform" else "",
        "min_angle": p["min_angle"] if init != "uniform" and centres == "random" else nan,
        "masses": json.dumps(p["masses"]) if p["masses"] is not None else "",
        "r": p["r"] if init == "gaussian" else nan,
        "sigma": p["sigma"] if init == "gaussian" else nan,
        "rtol": p["rtol"], "atol": p["atol"], "per_decade": int(p["per_decade"]),
        "max_steps": int(p["max_steps"]),
        "n_seeds_cell": int(cell["seeds"]),
    }


def _read(path: str) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    df = pd.concat(frames, ignore_index=True)
    return df.reindex(columns=columns)


def _coerce(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Stable dtypes whatever the cells held (an all-empty cell table comes back as object)."""
    text = {"sweep", "cell_id", "model", "init", "status", "reason", "cell_path", "group_id", "centres", "masses"}
    booleans = {"escape_censored", "censored"}
    for col in df.columns:
        if col in text:
            df[col] = df[col].fillna("").astype(str)
        elif col in booleans:
            df[col] = df[col].astype("boolean").fillna(False).astype(bool)
        elif df[col].dtype == object:
            df[col] = pd.to_numeric(df[col])
    return df


def aggregate(cells: list[dict], files: dict[str, list[str]], out: dict[str, str], *, config_hash: str = "",
              meta: dict | None = None, log=None) -> dict[str, pd.DataFrame]:
    """Concatenate per-cell tables.

    ``cells[i]`` (a dict with keys sweep, path, group, seeds, params) belongs to
    ``files[table][i]`` for every table. Writes ``out[table]`` for each table in
    ``out`` and returns the frames.
    """
    from .io import provenance, write_table

    for t, fs in files.items():
        if len(fs) != len(cells):
            raise ValueError(f"{t}: {len(fs)} files for {len(cells)} cells")
    sweeps = sorted({c["sweep"] for c in cells})
    prov = provenance(config_hash=config_hash, sweeps=sweeps, n_cells=str(len(cells)), **(meta or {}))
    result = {}
    for name in TABLE_NAMES:
        if name not in out:
            continue
        cols = table_columns(name)
        frames = []
        for cell, path in zip(cells, files[name]):
            df = _read(path)
            if name == "runs":
                for k, v in _cell_extra(cell).items():
                    df[k] = v
            frames.append(df)
        df = _coerce(_concat(frames, list(cols)), name)
        if name == "runs":
            df = df.sort_values(["sweep", "cell_path", "seed"], kind="stable").reset_index(drop=True)
        write_table(df, out[name], columns_doc=cols, meta=prov)
        if log is not None:
            print(f"{name}: {len(df)} rows from {len(frames)} cells -> {out[name]}", file=log, flush=True)
        result[name] = df
    return result


def tables_markdown() -> str:
    """The text of docs/tables.md: every column of every aggregated table."""
    from ..analysis.fits import FIT_COLUMNS

    intro = {
        "runs": "One row per simulation (sweep, cell, β, seed).",
        "events": "One row per merge event of a simulation.",
        "lifetimes": "One row per plateau (stretch of constant cluster count) of a simulation.",
        "trajectories": "Log-spaced samples of the energy and cluster count of every simulation.",
        "fits": "One row per (fit group, quantity): ln T = a + c·β + b·ln β over β and seeds, censored runs "
                "included as censored (maximum likelihood; see `attention_dynamics.analysis.fits`).",
    }
    lines = [
        "# Result tables",
        "",
        "Written by the Snakemake workflow to `results/tables/` (Parquet). Generated from the",
        "package (`python -m attention_dynamics.pipeline.aggregate --markdown`); `tests/test_workflow.py`",
        "checks that this file is up to date. Every column's description is also stored in the",
        "Parquet field metadata (key `description`), and every file carries provenance in its",
        "key-value metadata: `attention_dynamics_version`, `git_commit`, `config_hash`,",
        "`created_utc`, `usa_time_convention`, `sweeps`, `n_cells` (fits: also the fit settings).",
        "",
        "Join keys: `sweep`, `cell_id`, `beta`, `seed` identify a simulation in every table;",
        "`group_id` (runs, fits) identifies a scaling-law fit group. Per-cell tables under",
        "`results/cells/<sweep>/<cell path>/` have the same columns without the runs extras.",
        "",
    ]
    for name in (*TABLE_NAMES, "fits"):
        cols = table_columns(name) if name != "fits" else FIT_COLUMNS
        lines += [f"## {name}.parquet", "", intro[name], "", "| column | description |", "|---|---|"]
        for c, doc in cols.items():
            extra = " *(added by aggregation)*" if name == "runs" and c in EXTRA_RUN_COLUMNS else ""
            lines.append(f"| `{c}` | {doc.replace('|', '∣')}{extra} |")
        lines.append("")
    return "\n".join(lines)


def run_from_snakemake(smk) -> None:  # pragma: no cover - exercised through the workflow tests
    """Entry point of workflow/scripts/aggregate.py."""
    from .sweep import check_config

    plan = check_config(smk.config, check_results=False, horizons=False)
    cells = [{"sweep": c.sweep, "path": c.path, "group": c.group, "seeds": c.seeds, "params": c.params}
             for c in plan.cells]
    files = {t: list(getattr(smk.input, t)) for t in TABLE_NAMES}
    out = {t: getattr(smk.output, t) for t in TABLE_NAMES}
    with open(smk.log[0], "w") as log:
        aggregate(cells, files, out, config_hash=plan.hash, log=log)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.pipeline.aggregate")
    p.add_argument("--markdown", metavar="PATH", help="write the table documentation (docs/tables.md)")
    args = p.parse_args(argv)
    if args.markdown:
        from .io import atomic_write_text

        atomic_write_text(tables_markdown(), args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
