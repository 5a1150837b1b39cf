"""Every table carries a checksum of its whole file; damaged tables are found and recomputed.

Checksum
--------
Each Parquet file the pipeline writes (:func:`attention_dynamics.pipeline.io.write_tables`) holds,
in its footer's key-value metadata, ``attention_dynamics_sha256``: the SHA-256 of the *entire file*
as written with that value set to 64 ``0`` characters (:func:`sign`). So every byte is covered —
column data, the schema, row counts, statistics, the other metadata — and the check needs no
other file: read the bytes, put the 64 zeros back, hash, compare (:func:`verify`). A truncated
file, a flipped bit anywhere, or a file swapped in from elsewhere fails; one flipped bit that
changed a float silently (``2235.1345012633665`` → ``2235.134501263367``) is detected.
The cost is one read and one SHA-256 pass (≈ 1 GB/s) per file.

Where it is checked
-------------------
* **At start-up** (the Snakefile, :func:`remove_damaged`): every table below the results folder is
  verified and a damaged one is deleted, with a warning naming it, so the plain re-run recomputes it
  (Snakemake sees a missing output; for a cell file it re-runs that cell, then what reads it).
  Skipped while another run writes to the same results folder.
* **In aggregate** (:func:`attention_dynamics.pipeline.aggregate.aggregate`): each cell's four files
  are verified before they are read; a damaged cell is recomputed in place (same seeds, same numbers).
* **On demand**: ``attention-dynamics verify results/`` lists damaged tables (exit status 1).

Files written before checksums existed are "unsigned": they are only checked to open as Parquet.
"""
from __future__ import annotations

import hashlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHECKSUM_KEY", "sign", "verify", "check_bytes", "Verdict", "tables_below", "scan", "remove_damaged"]

CHECKSUM_KEY = "attention_dynamics_sha256"
PLACEHOLDER = "0" * 64
# the entry in the footer (thrift compact KeyValue): the key's bytes, then the value's field header
# (field 2, binary: 0x18) and length (64: 0x40), then the 64 hex digits
_ENTRY = CHECKSUM_KEY.encode() + b"\x18\x40"
_MAGIC = b"PAR1"


def _footer(data: bytes) -> tuple[int, int]:
    """(start, end) of the Parquet footer (the thrift FileMetaData) in ``data``; ValueError if the
    file is not a complete Parquet file (truncated, or not Parquet)."""
    if len(data) < 12 or data[:4] != _MAGIC or data[-4:] != _MAGIC:
        raise ValueError(f"not a complete Parquet file ({len(data)} bytes; truncated?)")
    length = int.from_bytes(data[-8:-4], "little")
    if length <= 0 or length > len(data) - 12:
        raise ValueError(f"footer length {length} does not fit in {len(data)} bytes (truncated?)")
    return len(data) - 8 - length, len(data) - 8


def _checksum_slot(data: bytes) -> int | None:
    """Offset of the 64 hex characters of the checksum value in ``data``, or None (unsigned)."""
    start, end = _footer(data)
    at = data.find(_ENTRY, start, end)
    if at < 0:
        if _near_key(data, start, end, _ENTRY):
            raise ValueError("the checksum entry's name is damaged")
        return None
    if at + len(_ENTRY) + 64 > end:
        raise ValueError("the checksum entry of the footer is cut off")
    return at + len(_ENTRY)


def _near_key(data: bytes, start: int, end: int, key: bytes) -> bool:
    """Whether ``key`` is in data[start:end] with one byte changed (a flipped bit in the entry's name
    must not pass for a file without checksum): one half of the key is then intact."""
    half = len(key) // 2
    for part, offset in ((key[:half], 0), (key[half:], half)):
        at = data.find(part, start, end)
        while at >= 0:
            window = data[at - offset:at - offset + len(key)]
            if len(window) == len(key) and sum(a != b for a, b in zip(window, key)) == 1:
                return True
            at = data.find(part, at + 1, end)
    return False


def sign(path: str | os.PathLike) -> str:
    """Write the SHA-256 into ``path``, a Parquet file written with ``CHECKSUM_KEY`` = :data:`PLACEHOLDER`
    in its metadata (the value keeps its length, so nothing else moves); returns the hex digest."""
    with open(path, "r+b") as fh:
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            slot = _checksum_slot(data)
            if slot is None or data[slot:slot + 64] != PLACEHOLDER.encode():
                raise ValueError(f"{path}: written without the {CHECKSUM_KEY} placeholder")
            digest = _sha256(data, slot)
        fh.seek(slot)
        fh.write(digest.encode())
    return digest


@dataclass(frozen=True)
class Verdict:
    path: Path
    status: str      # "ok", "unsigned" (no checksum: written before checksums) or "damaged"
    reason: str = ""

    @property
    def damaged(self) -> bool:
        return self.status == "damaged"


def check_bytes(data: bytes) -> tuple[str, str]:
    """(status, reason) of a table's bytes: see :class:`Verdict`."""
    try:
        slot = _checksum_slot(data)
    except ValueError as exc:
        return "damaged", str(exc)
    if slot is None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pq.ParquetFile(pa.BufferReader(bytes(data))).metadata
        except Exception as exc:  # noqa: BLE001 - any failure to open is damage
            return "damaged", f"does not open as Parquet ({exc})"
        return "unsigned", "no checksum (written before checksums existed)"
    stored = bytes(data[slot:slot + 64]).decode("ascii", "replace")
    actual = _sha256(data, slot)
    if actual != stored:
        return "damaged", f"content does not match its checksum (sha256 {actual[:12]}…, stored {stored[:12]}…)"
    return "ok", ""


def _sha256(data, slot: int) -> str:
    """SHA-256 of ``data`` with the 64 bytes at ``slot`` read as :data:`PLACEHOLDER` (no copy of ``data``)."""
    with memoryview(data) as view:
        h = hashlib.sha256(view[:slot])
        h.update(PLACEHOLDER.encode())
        h.update(view[slot + 64:])
    return h.hexdigest()


def verify(path: str | os.PathLike) -> Verdict:
    """Check one table against its embedded checksum (or, unsigned, that it opens as Parquet).
    The file is mapped, not read into memory, so a large table costs no memory."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return Verdict(path, *check_bytes(b""))
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return Verdict(path, *check_bytes(data))
    except OSError as exc:
        return Verdict(path, "damaged", f"cannot be read ({exc.strerror})")


def tables_below(root: str | os.PathLike) -> list[Path]:
    """The Parquet tables below ``root`` (temporary files of writers, hidden, left out), sorted."""
    out = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(files) if f.endswith(".parquet") and not f.startswith(".")]
    return out


def scan(root: str | os.PathLike) -> list[Verdict]:
    """:func:`verify` every table below ``root`` (a file: just that one)."""
    root = Path(root)
    return [verify(p) for p in ([root] if root.is_file() else tables_below(root))]


def remove_damaged(root: str | os.PathLike) -> list[str]:
    """Delete every damaged table below ``root`` (the re-run recomputes it); returns a message per file."""
    done = []
    for v in scan(root):
        if v.damaged:
            try:
                v.path.unlink()
            except FileNotFoundError:
                continue
            done.append(f"removed damaged table {v.path} ({v.reason}); it is recomputed")
    return done
