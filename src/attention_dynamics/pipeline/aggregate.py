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
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ..results import table_columns, tables_markdown  # the registry of every table (docs/tables.md)
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
    "max_steps": "most solver step attempts per simulation (more: status failed)",
    "max_wall_seconds": "wall-clock limit per simulation in seconds (more: status failed)",
    "n_seeds_cell": "number of seeds of the cell (seed indices 0 … n_seeds_cell − 1)",
}


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
        "max_steps": int(p["max_steps"]), "max_wall_seconds": float(p["max_wall_seconds"]),
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
    text = {"sweep", "cell_id", "model", "init", "status", "reason", "engine", "cell_path", "group_id", "centres",
            "masses", "kind", "closed_by", "formation_status"}
    booleans = {"escape_censored", "censored"}
    for col in df.columns:
        if col in text:
            df[col] = df[col].fillna("").astype(str)
        elif col in booleans:
            df[col] = df[col].astype("boolean").fillna(False).astype(bool)
        elif df[col].dtype == object:
            df[col] = pd.to_numeric(df[col])
    return df


def _repair_cells(cells: list[dict], files: dict[str, list[str]], base_seed: int | None, log=None) -> list[str]:
    """Verify every cell's tables against their checksums; recompute a cell with a damaged table
    (truncated, flipped bits: attention_dynamics.pipeline.integrity) in place, with its own seeds, so
    it holds the numbers a clean run gives. Without ``base_seed`` a damaged cell is an error."""
    from .cell import run_cell
    from .integrity import verify

    repaired = []
    for i, cell in enumerate(cells):
        bad = [v for v in (verify(fs[i]) for fs in files.values()) if v.damaged]
        if not bad:
            continue
        what = "; ".join(f"{v.path}: {v.reason}" for v in bad)
        if base_seed is None:
            raise ValueError(f"damaged cell table(s): {what}")
        folder = Path(next(iter(files.values()))[i]).parent
        paths = {t: files[t][i] if t in files else str(folder / f"{t}.parquet") for t in TABLE_NAMES}
        run_cell({"sweep": cell["sweep"], **cell["params"]}, int(cell["seeds"]), paths, base_seed=base_seed,
                 meta={"config_hash": ""})
        repaired.append(cell["path"])
        msg = f"recomputed cell {cell['sweep']}/{cell['path']}: {what}"
        print(msg, file=sys.stderr, flush=True)
        if log is not None:
            print(msg, file=log, flush=True)
    return repaired


def aggregate(cells: list[dict], files: dict[str, list[str]], out: dict[str, str], *, config_hash: str = "",
              meta: dict | None = None, log=None, base_seed: int | None = None) -> dict[str, pd.DataFrame]:
    """Concatenate per-cell tables.

    ``cells[i]`` (a dict with keys sweep, path, group, seeds, params) belongs to
    ``files[table][i]`` for every table. Writes ``out[table]`` for each table in
    ``out`` and returns the frames. Every cell file is first checked against its checksum;
    a damaged cell is recomputed (with ``base_seed``) or, without it, raises ValueError.
    """
    from .io import provenance, write_table

    for t, fs in files.items():
        if len(fs) != len(cells):
            raise ValueError(f"{t}: {len(fs)} files for {len(cells)} cells")
    _repair_cells(cells, files, base_seed, log)
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


def run_from_snakemake(smk) -> None:  # pragma: no cover - exercised through the workflow tests
    """Entry point of workflow/scripts/aggregate.py."""
    from .sweep import check_config

    plan = check_config(smk.config, check_results=False, horizons=False)
    cells = [{"sweep": c.sweep, "path": c.path, "group": c.group, "seeds": c.seeds, "params": c.params}
             for c in plan.cells]
    files = {t: list(getattr(smk.input, t)) for t in TABLE_NAMES}
    out = {t: getattr(smk.output, t) for t in TABLE_NAMES}
    with open(smk.log[0], "w") as log:
        aggregate(cells, files, out, config_hash=plan.hash, log=log, base_seed=plan.config["base_seed"])


def main(argv=None) -> int:
    """``--markdown docs/tables.md``: the command that regenerates the table documentation."""
    from ..results import main as results_main

    return results_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
