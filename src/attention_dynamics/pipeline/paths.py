"""Where the pipeline may write: the results folder and the names that become paths.

Checked at start-up (:func:`attention_dynamics.pipeline.sweep.check_config`), before any job:

- a name that becomes a path component (a sweep name, each component of ``results``) fits the
  file system (at most 255 bytes) and does not break Snakemake's wildcard matching (no ``{``/``}``
  in ``results``; no value ending in a pattern repeated 20 times, which Snakemake's
  ``PeriodicityDetector`` takes for an infinite recursion);
- ``results`` is not a place whose files belong to something else: the working directory or a
  folder above it, Snakemake's ``.snakemake`` folder, this package's source checkout (its root,
  ``src``, ``workflow``, ``config``, ``docs``, ``tests``, ``.git``) and, outside the working
  directory, the file-system root, a shared top-level folder itself (``/tmp``, ``/home``, …) or a
  system folder (``/etc``, ``/usr``, ``/bin``, …), also when reached through ``..`` or a symbolic
  link. A folder below the working directory, or anywhere else (``/tmp/myrun``,
  ``/scratch/me/run1``, ``../runs/a``: a warning says where it resolves) is fine;
- nothing inside an existing results folder is a symbolic link: the pipeline writes below
  ``results`` only, and a link (``results/logs -> /etc``) would carry its writes elsewhere. To
  keep results on another disk, point ``results`` there (or make ``results`` itself the link).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from .config import ConfigError

__all__ = ["NAME_MAX", "SYSTEM_DIRS", "check_name", "check_results_path", "check_results_writable",
           "links_inside"]

NAME_MAX = 255  # bytes in one path component (ext4, xfs, btrfs, NFS, Lustre)
PATH_MAX = 4096
# longest path the pipeline writes below results/ besides the cell path: logs/cells/<sweep>/<cell>.log etc.
_LONGEST_SUFFIX = len("benchmarks/reproductions/emergence/d0000/n0000000000/beta0.00000000000e-100.tsv")
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
               "/sys", "/usr", "/var/lib", "/var/log", "/var/cache", "/var/spool", "/var/mail", "/var/run",
               "/var/lock", "/var/backups", "/snap")
# shared top-level folders: fine to write *inside*, not directly into
_TOP_DIRS = ("/", "/home", "/tmp", "/var", "/opt", "/mnt", "/media", "/srv", "/scratch", "/data", "/root")
_SOURCE_DIRS = ("src", "workflow", "config", "docs", "tests", ".git")
# Snakemake's PeriodicityDetector(min_repeat=20): a wildcard value ending in 20 repeats of anything
_PERIODIC = re.compile(r"(.+)\1{19,}$")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_name(key: str, value: str, what: str, *, room: int = 0) -> None:
    """A value that becomes one path component and a Snakemake wildcard value (a sweep name)."""
    size = len(os.fsencode(value)) + room
    if size > NAME_MAX:
        raise ConfigError(key, f"{what} is {len(value)} characters long; with the suffixes the pipeline adds it "
                               f"must fit in {NAME_MAX} bytes (a file name), so at most {NAME_MAX - room}")
    m = _PERIODIC.search(value)
    if m:
        raise ConfigError(key, f"{what} ends in {m.group(1)!r} repeated {len(m.group(0)) // len(m.group(1))} "
                               "times, which Snakemake's wildcard matching rejects as an endless recursion "
                               "(PeriodicWildcardError): use fewer repeats")


def _source_root() -> Path | None:
    """The checkout this package runs from (the folder with the Snakefile), if any."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "Snakefile").exists() else None


def check_results_path(results: str, *, cwd: str | os.PathLike | None = None) -> list[str]:
    """Check the ``results`` value as a path (no disk writes); returns warnings.

    Raises :class:`ConfigError` (key ``results``) for a value that is empty, holds ``{`` or ``}``
    (Snakemake wildcards), a control character, a component over 255 bytes, or that resolves into a
    place the pipeline must not write (see the module docstring).
    """
    if not isinstance(results, str) or not results.strip():
        raise ConfigError("results", "must be a non-empty folder name")
    if "{" in results or "}" in results:
        raise ConfigError("results", f"{results!r} contains '{{' or '}}', which Snakemake reads as a wildcard: "
                                     "use a plain folder name")
    if any(ord(ch) < 32 for ch in results):
        raise ConfigError("results", f"{results!r} contains a control character (a line break?)")
    for part in Path(results).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise ConfigError("results", f"the component {part[:40]!r}… of {results!r} is {len(part)} characters "
                                         f"long; the file system allows {NAME_MAX} bytes per name")
    cwd = Path(cwd or os.getcwd()).resolve()
    real = Path(os.path.realpath(cwd / results))
    if len(str(real)) + 1 + _LONGEST_SUFFIX > PATH_MAX:
        raise ConfigError("results", f"{results!r} resolves to a path of {len(str(real))} characters: the files "
                                     f"below it would exceed the {PATH_MAX}-byte path limit")
    shown = f"{results!r}" + (f" (that is {str(real)!r})" if str(real) != results else "")
    if _inside(cwd, real):
        raise ConfigError("results", f"{shown} is the working directory or a folder above it: the pipeline would "
                                     "write its cells/, tables/, logs/ … among your files; name a folder of its "
                                     "own, e.g. results")
    if _inside(real, cwd / ".snakemake"):
        raise ConfigError("results", f"{shown} is inside .snakemake, Snakemake's own bookkeeping folder")
    src = _source_root()
    if src is not None and (_inside(src, real) or any(_inside(real, src / d) for d in _SOURCE_DIRS)):
        raise ConfigError("results", f"{shown} is inside the package's source checkout ({src}: its root or "
                                     f"{', '.join(_SOURCE_DIRS)}): name a folder of its own, e.g. results")
    if _inside(real, cwd):  # below the working directory, wherever that is (a CI workspace in /var/lib, …)
        return []
    if str(real) in _TOP_DIRS or any(_inside(real, Path(d)) for d in SYSTEM_DIRS):
        raise ConfigError("results", f"{shown} is the file-system root or a system folder ({', '.join(SYSTEM_DIRS[:6])}"
                                     ", …): name a folder of its own, e.g. /tmp/myrun or results")
    if not Path(results).is_absolute():
        return [f"results {results!r} is outside the working directory: the tables go to {real}"]
    return []


def check_results_writable(results: str) -> None:
    """The results folder can be created and written, and holds no symbolic link (reads the disk)."""
    p = Path(results).absolute()
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError("results", f"{results!r} is not writable: {str(probe)!r} exists and is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError("results", f"{results!r} is not writable (no write permission on {str(probe)!r})")
    try:  # os.access says yes to root even on some read-only mounts: try for real
        fd, tmp = tempfile.mkstemp(prefix=".write-test-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError("results", f"{results!r} is not writable ({exc.strerror} in {str(probe)!r})") from None
    links = links_inside(p) if p.is_dir() else []
    if links:
        target = os.readlink(links[0])
        raise ConfigError("results", f"{str(links[0])!r} is a symbolic link (to {target!r}) inside the results "
                                     f"folder{f' (and {len(links) - 1} more)' if len(links) > 1 else ''}: the pipeline "
                                     "does not write through links there; remove it (to keep results on another "
                                     "disk, point results: there or make the results folder itself the link)")


def links_inside(root: str | os.PathLike) -> list[Path]:
    """Symbolic links below ``root`` (not following any), in walk order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out.append(p)
    return out
