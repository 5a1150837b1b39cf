"""Parquet tables with provenance, written atomically (temporary file + rename)."""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["write_table", "read_provenance", "provenance", "git_commit", "atomic_write_text"]


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The current git commit of ``cwd`` (or of this package's checkout), or "" if none."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(config_hash: str = "", **extra) -> dict[str, str]:
    """Package version, git commit, config hash and creation time (UTC, ISO 8601)."""
    from . import __version__

    meta = {
        "attention_dynamics_version": __version__,
        "git_commit": git_commit(),
        "config_hash": config_hash,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "usa_time_convention": "GKPR24: e^{beta(<x,y>-1)}/n",
    }
    meta.update({k: (v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in extra.items()})
    return meta


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, columns_doc: dict[str, str] | None = None,
                meta: dict[str, str] | None = None) -> None:
    """Write ``df`` to Parquet at ``path`` atomically, with column docs and provenance metadata.

    Column descriptions go into each field's metadata (key ``description``); ``meta``
    goes into the file's key-value metadata. The file appears under its final name
    only once complete (write to a temporary file in the same folder, fsync, rename).
    """
    path = Path(path)
    table = pa.Table.from_pandas(df, preserve_index=False)
    if columns_doc:
        fields = [f.with_metadata({"description": columns_doc[f.name]}) if f.name in columns_doc else f
                  for f in table.schema]
        table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    all_meta = dict(table.schema.metadata or {})
    for k, v in (meta or {}).items():
        all_meta[k.encode()] = str(v).encode()
    table = table.replace_schema_metadata(all_meta)
    tmp = _atomic_target(path)
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write text to ``path`` atomically."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The key-value metadata stored by :func:`write_table` (pandas' own entry left out)."""
    md = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in md.items() if k != b"pandas"}
