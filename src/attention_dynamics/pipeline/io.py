"""Files the pipeline writes: Parquet tables with provenance, text and figures, all atomic.

Atomic writes
-------------
Every output file is first written to a temporary file *in the same folder*, named
``.<final name>.<host>-<pid>-<token>.tmp`` (hidden, and never matching a Snakemake
output), flushed to disk (fsync), given the usual permissions (0666 minus the umask,
like any newly created file), then renamed onto its final name (``os.replace``, atomic
on POSIX) and the folder is fsync'ed. A reader therefore sees either the old complete
file, the new complete file, or none: never a half-written table or figure. If the
writer fails, the temporary file is removed and the old file (if any) is untouched; if
the process is killed (SIGKILL, power loss), the temporary file stays behind and is
removed by the next writer of the same target or by :func:`remove_stale_temps`
(which the Snakefile runs at the start of every run) once its process is gone.

The helpers are :func:`atomic_path` (context manager for any writer), :func:`write_table`,
:func:`write_tables` (several tables: all written, then all renamed), :func:`atomic_write_text`
and :func:`atomic_savefig`. ``tests/test_reliability.py`` checks that the package writes
files only through them.

Every table also carries a SHA-256 of its whole file in its metadata
(:mod:`attention_dynamics.pipeline.integrity`). Snakemake's locks and which run owns them:
:mod:`attention_dynamics.pipeline.locks`.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "write_table", "write_tables", "read_provenance", "provenance", "git_commit", "git_describe",
    "library_versions", "atomic_path",
    "atomic_write_text", "atomic_savefig", "temp_name", "is_stale_temp", "remove_stale_temps", "STALE_TEMP_SECONDS",
]

# a temporary file not modified for this long is abandoned whatever its host (a write never
# pauses this long); on the writer's own host a temporary file is stale as soon as its process is gone
STALE_TEMP_SECONDS = 3600.0
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.tmp$")


def _git(args: list[str], cwd: str | os.PathLike | None) -> str | None:
    """Output of ``git <args>`` in ``cwd`` (default: this package's folder); None if git fails.

    ``GIT_OPTIONAL_LOCKS=0``: never write the index (jobs running in parallel, or the user's
    own ``git commit``, must not meet an ``index.lock`` of ours)."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=10,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The current git commit of ``cwd`` (or of this package's checkout), or "" if none."""
    return _git(["rev-parse", "HEAD"], cwd) or ""


def git_describe(cwd: str | os.PathLike | None = None) -> str:
    """What ``git describe --always --dirty`` prints: the commit (abbreviated, or the nearest
    tag), with ``-dirty`` when tracked files differ from it; "" outside a git checkout (e.g. an
    installed wheel). Computed without writing the index (see :func:`_git`)."""
    head = _git(["describe", "--always", "--abbrev=12"], cwd)
    if not head:
        return ""
    changes = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return head + ("-dirty" if changes else "")


# what provenance() records the version of (importlib.metadata distribution names)
VERSIONED = ("numpy", "scipy", "pandas", "pyarrow", "matplotlib", "snakemake")
# run-wide facts the Snakefile hands to every job through the environment (like PYTHONPATH):
# the config hash and the config as YAML text; explicit arguments of provenance() take precedence
ENV_CONFIG_HASH = "ATTENTION_DYNAMICS_CONFIG_HASH"
ENV_CONFIG_TEXT = "ATTENTION_DYNAMICS_CONFIG_YAML"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries the numbers depend on ("" if not installed)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = ""
    return out


def provenance(config_hash: str = "", config_text: str = "", **extra) -> dict[str, str]:
    """What made a table: package version, git commit and ``git describe --always --dirty``
    (``-dirty``: the checkout had uncommitted changes), library versions (JSON), config hash,
    config text (YAML) and creation time (UTC, ISO 8601), plus ``extra`` (non-strings as JSON).

    ``config_hash`` and ``config_text`` default to the environment variables
    ``ATTENTION_DYNAMICS_CONFIG_HASH`` and ``ATTENTION_DYNAMICS_CONFIG_YAML``, which the
    Snakefile sets for every job of a run.
    """
    from .. import __version__

    describe = git_describe()
    meta = {
        "attention_dynamics_version": __version__,
        "git_commit": git_commit(),
        "git_describe": describe,
        "git_dirty": "true" if describe.endswith("-dirty") else "false" if describe else "",
        "versions": json.dumps(library_versions()),
        "config_hash": config_hash or os.environ.get(ENV_CONFIG_HASH, ""),
        "config": config_text or os.environ.get(ENV_CONFIG_TEXT, ""),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "usa_time_convention": "GKPR24: e^{beta(<x,y>-1)}/n",
    }
    meta.update({k: (v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in extra.items()})
    return meta


# --------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname().split(".")[0]) or "host"


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary name next to ``path`` (``.<name>.<host>-<pid>-<token>.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host()}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale_temp(path: str | os.PathLike, *, now: float | None = None) -> bool:
    """True if ``path`` is a temporary file of :func:`temp_name` whose writer is gone.

    Gone: written on this host by a process that no longer exists, or not modified for
    :data:`STALE_TEMP_SECONDS` (any host).
    """
    path = Path(path)
    m = _TEMP_RE.match(path.name)
    if not m:
        return False
    if m["host"] == _host() and int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"])):
        return True
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_TEMP_SECONDS


def _remove_stale_siblings(path: Path) -> None:
    """Remove stale temporary files of the same target (left by a killed writer)."""
    try:
        siblings = list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))
    except OSError:
        return
    for p in siblings:
        if is_stale_temp(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def remove_stale_temps(root: str | os.PathLike) -> list[Path]:
    """Remove every stale temporary file below ``root`` (see :func:`is_stale_temp`); returns them."""
    removed = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.startswith(".") and f.endswith(".tmp"):
                p = Path(dirpath) / f
                if is_stale_temp(p):
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                        removed.append(p)
    return removed


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _new_temp(path: Path) -> Path:
    """Create an empty temporary file for ``path`` (mode 0666 minus the umask, like open())."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(path)
    while True:
        tmp = temp_name(path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


@contextlib.contextmanager
def _staged(paths):
    """Yield temporary paths for ``paths``; on success rename them all onto their targets."""
    paths = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for p in paths:
            tmps.append(_new_temp(p))
        yield tmps
        for tmp in tmps:
            _fsync_file(tmp)
        for tmp, p in zip(tmps, paths):
            os.replace(tmp, p)
        for folder in {p.parent for p in paths}:
            _fsync_dir(folder)
    finally:
        for tmp in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Context manager: write to the yielded temporary path; it becomes ``path`` on success.

    >>> with atomic_path("out.bin") as tmp:       # doctest: +SKIP
    ...     tmp.write_bytes(b"...")

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    with _staged([path]) as (tmp,):
        yield tmp


def _arrow_table(df: pd.DataFrame, columns_doc: dict[str, str] | None, meta: dict[str, str] | None) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    if columns_doc:
        fields = [f.with_metadata({"description": columns_doc[f.name]}) if f.name in columns_doc else f
                  for f in table.schema]
        table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    all_meta = dict(table.schema.metadata or {})
    for k, v in (meta or {}).items():
        all_meta[k.encode()] = str(v).encode()
    return table.replace_schema_metadata(all_meta)


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, columns_doc: dict[str, str] | None = None,
                meta: dict[str, str] | None = None) -> None:
    """Write ``df`` to Parquet at ``path`` atomically, with column docs and provenance metadata.

    Column descriptions go into each field's metadata (key ``description``); ``meta``
    goes into the file's key-value metadata. The file appears under its final name
    only once complete (temporary file in the same folder, fsync, rename).
    """
    write_tables([(df, path, columns_doc, meta)])


def write_tables(items) -> None:
    """Write several tables ``[(df, path, columns_doc, meta), ...]``: all to temporary files
    first, then all renamed, so a failure while writing any of them changes none of them."""
    from .integrity import CHECKSUM_KEY, PLACEHOLDER, sign

    items = list(items)
    tables = [_arrow_table(df, doc, {**(meta or {}), CHECKSUM_KEY: PLACEHOLDER}) for df, _, doc, meta in items]
    with _staged([p for _, p, _, _ in items]) as tmps:
        for table, tmp in zip(tables, tmps):
            pq.write_table(table, str(tmp))
            sign(tmp)  # SHA-256 of the whole file, in its footer (attention_dynamics.pipeline.integrity)


def atomic_write_text(text: str, path: str | os.PathLike, encoding: str = "utf-8") -> None:
    """Write text to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding) as fh:
            fh.write(text)


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> None:
    """``fig.savefig(path, **kwargs)``, atomically (the format comes from the suffix of ``path``)."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".").lower() or None)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)


def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The key-value metadata stored by :func:`write_table` (pandas' own entry and the checksum left out)."""
    md = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in md.items() if k not in (b"pandas", b"attention_dynamics_sha256")}

