"""Content-addressed store of finished grid cells: what a chunk job computed survives its failure.

A job of rule ``simulate_chunk`` runs many cells (:mod:`attention_dynamics.pipeline.runner`).
Each finished cell is written here first, as one *entry*, before anything else happens:

    <results>/cache/cells/<cell_id>/<key[:24]>/
        runs.parquet.cached  events.parquet.cached  lifetimes.parquet.cached  trajectories.parquet.cached
        log.txt              one line per seed (the per-cell log)
        entry.json           written last: the key material, SHA-256 of the log, timings

The key is the SHA-256 of the cell's canonical JSON (sweep name included, every default filled
in), the seed indices, the base seed and :func:`code_fingerprint` (the package's source and the
versions of Python, numpy, scipy, pandas, pyarrow, numba). Anything that could change the numbers
changes the key; the config hash, the other cells of the sweep and the chunk a cell was packed
into do not.

Why: Snakemake deletes every declared output of a failed job, and a job killed by SLURM
(TIMEOUT, CANCELLED, OUT_OF_MEMORY, preemption) fails as a whole. Entries are not declared
outputs, so the cells a killed chunk had finished stay here, and the resubmitted chunk
computes only the others. Rule ``simulate_cell`` then hard-links an entry's files onto the
per-cell outputs ``results/cells/<sweep>/<cell>/<table>.parquet`` (a copy where hard links are
not possible), so the cache costs no extra disk.

An entry is *valid* only if its ``entry.json`` exists (written atomically, after the tables), its
key material equals the one asked for, every table matches the checksum in its footer
(:mod:`attention_dynamics.pipeline.integrity`) and the log its SHA-256: a half-written or altered
entry is never used (:func:`read_entry`), it is recomputed. The files are named
``*.parquet.cached`` so that a glob over ``results/**/*.parquet`` never counts a cell twice.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHE_FORMAT", "TABLE_NAMES", "Entry", "code_fingerprint", "key_material", "entry_key", "entry_dir",
           "read_entry", "write_entry", "link_entry", "file_sha256"]

CACHE_FORMAT = 2
TABLE_NAMES = ("runs", "events", "lifetimes", "trajectories")
ENTRY_FILE = "entry.json"
LOG_FILE = "log.txt"
_VERSIONED = ("numpy", "scipy", "pandas", "pyarrow", "numba")
_FINGERPRINT: str | None = None


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def code_fingerprint() -> str:
    """SHA-256 of the package's Python source and the versions of the libraries the numbers depend on.

    Computed once per process (~100 small files). Any edit of the package, an upgrade of numpy,
    scipy, pandas, pyarrow or numba, or another Python changes it, and with it every cell key.
    """
    global _FINGERPRINT
    if _FINGERPRINT is None:
        from importlib import metadata

        h = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        h.update(f"python {sys.version_info[:3]}".encode())
        for dist in _VERSIONED:
            try:
                h.update(f"{dist} {metadata.version(dist)}".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{dist} -".encode())
        _FINGERPRINT = h.hexdigest()
    return _FINGERPRINT


def key_material(cell: dict, seeds, base_seed: int) -> dict:
    """Everything the numbers of a cell depend on (see the module docstring)."""
    from .cell import canonical_cell, seed_list

    return {"format": CACHE_FORMAT, "cell": canonical_cell(cell), "seeds": seed_list(seeds),
            "base_seed": int(base_seed), "code": code_fingerprint()}


def entry_key(material: dict) -> str:
    return hashlib.sha256(_canonical_json(material).encode()).hexdigest()


def entry_dir(cache_root: str | os.PathLike, material: dict) -> Path:
    """``<cache_root>/<cell_id>/<key[:24]>``: the cell id keeps entries of one cell together."""
    from .cell import cell_id

    return Path(cache_root) / cell_id(material["cell"]) / entry_key(material)[:24]


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    """A valid cache entry: its folder and its ``entry.json`` record."""

    path: Path
    record: dict

    def table(self, name: str) -> Path:
        return self.path / f"{name}.parquet.cached"

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE


def read_entry(path: str | os.PathLike, material: dict | None = None) -> Entry | None:
    """The entry in folder ``path`` if it is complete and intact (and, given ``material``, has
    exactly that key material); None otherwise. Reads every file once (SHA-256)."""
    from .integrity import verify

    path = Path(path)
    try:
        record = json.loads((path / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
        return None
    if material is not None and _canonical_json(record.get("material")) != _canonical_json(material):
        return None
    if any(verify(path / f"{t}.parquet.cached").status != "ok" for t in TABLE_NAMES):
        return None  # missing, truncated, altered, or unsigned
    try:
        if file_sha256(path / LOG_FILE) != record.get("log_sha256"):
            return None
    except OSError:
        return None
    return Entry(path, record)


def write_entry(cache_root: str | os.PathLike, material: dict, tables: dict, log_lines: list[str],
                stats: dict) -> Entry:
    """Write a finished cell: its four tables (atomically, as a set), its log, then ``entry.json``.

    ``stats`` (CPU seconds per seed, peak memory, host, ...) is stored in the record for
    the per-cell benchmark file and for recalibrating the resource model.
    """
    from .cell import write_cell
    from .io import atomic_write_text

    folder = entry_dir(cache_root, material)
    folder.mkdir(parents=True, exist_ok=True)
    cell = material["cell"]
    meta = {"config_hash": "", "cell": cell, "seeds": material["seeds"], "base_seed": material["base_seed"]}
    write_cell(cell, tables, {t: str(folder / f"{t}.parquet.cached") for t in TABLE_NAMES}, meta)
    atomic_write_text("".join(f"{line}\n" for line in log_lines), folder / LOG_FILE)
    record = {"format": CACHE_FORMAT, "key": entry_key(material), "material": material,
              "log_sha256": file_sha256(folder / LOG_FILE),
              "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **stats}
    atomic_write_text(json.dumps(record, indent=1, sort_keys=True), folder / ENTRY_FILE)
    return Entry(folder, record)


def link_entry(entry: Entry, out_dir: str | os.PathLike) -> list[Path]:
    """Put the entry's tables at ``out_dir/<table>.parquet`` (hard links, or copies), mtime now."""
    from .io import atomic_link

    out = []
    for t in TABLE_NAMES:
        dst = Path(out_dir) / f"{t}.parquet"
        atomic_link(entry.table(t), dst)
        out.append(dst)
    return out
