"""Snakemake runs sharing a working directory: who owns which lock, and which locks are stale.

Snakemake locks its working directory while it runs: ``.snakemake/locks/<i>.input.lock`` and
``<i>.output.lock``, listing every input and output file of the run (the first free ``i``), so a
second run that would write the same files stops with "Directory cannot be locked". Two gaps:

* a run killed with SIGKILL (the OOM killer, a closed SSH session, a reboot) leaves its lock
  files behind, and the next ``snakemake`` stops until someone types ``--unlock`` — which also
  removes the locks of every *live* run in the folder;
* when a run ends, Snakemake removes the whole ``.snakemake/locks`` folder
  (``FilePersistence._delete_locks`` calls ``shutil.rmtree``), the locks of other live runs
  included, so a third run can start beside one of them on the same files.

What the Snakefile does about it:

1. **An owner record per run, before any lock.** While it reads the Snakefile — before Snakemake
   takes its lock — every run writes ``.snakemake/attention_dynamics/runs/<host>-<pid>-<start>.json``
   (:func:`register_run`): host, pid, process start time, boot id and its absolute results folder.
   A lock file belongs to the runs whose results folder holds one of its paths. The record is
   outside ``.snakemake/locks`` (Snakemake's clean-up does not reach it) and is removed when the
   process exits normally.
2. **A stale lock is removed only when its owner is provably gone** (:func:`clear_stale_locks`, at
   start-up): every run whose results folder holds one of the lock's paths is on this host and its
   process no longer exists (pid gone, pid reused — another start time — or the machine rebooted).
   A lock of a live run, of a run on another host, or that no record claims is left to
   Snakemake (and to ``--unlock``). There is no window: the record exists before the lock does.
3. **A run removes only its own lock files** (:func:`keep_other_runs_locks` replaces
   ``FilePersistence._delete_locks`` by one that deletes the files this run wrote;
   ``snakemake --unlock`` still removes every lock).
4. **One writing run per results folder** (:func:`claim_results`, at ``onstart``, before any job):
   a run marks its record as executing and stops if another live, executing run writes to the same
   results folder (or one inside the other) — whatever happened to the lock files (``--unlock``,
   ``--nolock``, the database persistence backend). Dry runs never reach ``onstart``.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import json
import os
import socket
from pathlib import Path

from .io import _pid_alive, atomic_write_text

__all__ = ["RUNS_DIR", "register_run", "clear_stale_locks", "keep_other_runs_locks", "claim_results",
           "runs_writing", "describe", "ResultsInUse"]

RUNS_DIR = Path("attention_dynamics") / "runs"  # below .snakemake/


def _proc_start(pid: int) -> str:
    """Start time of process ``pid`` (clock ticks since boot, from /proc), or "" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 (starttime), after "pid (comm)"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class ResultsInUse(RuntimeError):
    """Another live run writes to the same results folder."""


def _record_path(snakemake_dir, pid: int) -> Path:
    return Path(snakemake_dir) / RUNS_DIR / f"{socket.gethostname()}-{pid}-{_proc_start(pid) or 0}.json"


def register_run(results: str, snakemake_dir: str | os.PathLike = ".snakemake") -> Path:
    """Record this process as a run writing to ``results`` (before Snakemake takes its lock).

    The record is removed when the process exits normally; a killed run's record stays and
    proves, once its process is gone, that its lock files are stale.
    """
    pid = os.getpid()
    path = _record_path(snakemake_dir, pid)
    owner = {"host": socket.gethostname(), "pid": pid, "start": _proc_start(pid), "boot_id": _boot_id(),
             "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "results": os.path.abspath(results), "executing": False}
    atomic_write_text(json.dumps(owner), path)
    atexit.register(_remove_quietly, path.absolute())
    return path


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _records(snakemake_dir) -> list[tuple[Path, dict]]:
    out = []
    folder = Path(snakemake_dir) / RUNS_DIR
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
            rec["pid"], rec["results"] = int(rec["pid"]), str(rec["results"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: claims nothing (its locks are left to --unlock)
        out.append((p, rec))
    return out


def _gone(rec: dict) -> str | None:
    """Why the run of ``rec`` provably no longer exists, or None (alive, or unknown: another host)."""
    if rec.get("host") != socket.gethostname():
        return None
    if rec.get("boot_id") and rec["boot_id"] != _boot_id():
        return "the machine has rebooted since"
    if rec["pid"] == os.getpid():
        return None
    if not _pid_alive(rec["pid"]):
        return "that process no longer exists"
    if rec.get("start") and _proc_start(rec["pid"]) not in ("", rec["start"]):
        return "that process no longer exists (its pid is used by another one)"
    return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _overlap(a: str, b: str) -> bool:
    return _inside(a, b) or _inside(b, a)


def _lock_paths(lock: Path) -> list[str]:
    try:
        return [os.path.abspath(line.strip()) for line in lock.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def clear_stale_locks(snakemake_dir: str | os.PathLike = ".snakemake") -> list[str]:
    """Remove the Snakemake lock files whose every owner is provably gone; returns what was done.

    The lock files are read before the owner records: a run writes its record before its lock,
    so a lock seen here has its record there. Records of gone runs are removed once none of
    their lock files is left.
    """
    locks_dir = Path(snakemake_dir) / "locks"
    locks = {p: _lock_paths(p) for p in sorted(locks_dir.glob("*.lock"))} if locks_dir.is_dir() else {}
    records = [(p, rec, _gone(rec)) for p, rec in _records(snakemake_dir) if rec["pid"] != os.getpid()
               or rec.get("host") != socket.gethostname()]
    done, removed_for = [], {}
    for lock, files in locks.items():
        owners = [(p, rec, why) for p, rec, why in records if any(_inside(f, rec["results"]) for f in files)]
        if not owners or any(why is None for _, _, why in owners):
            continue  # claimed by nobody, or by a run that may be alive: Snakemake decides
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        for p, rec, why in owners:
            removed_for.setdefault(p, (rec, why, []))[2].append(lock.name)
    for p, rec, why in records:
        if why is not None:
            left = [lock for lock, files in locks.items() if lock.exists()
                    and any(_inside(f, rec["results"]) for f in files)]
            if not left:
                _remove_quietly(p)
    for rec, why, names in removed_for.values():
        done.append(f"removed the lock left by a Snakemake run that was killed (pid {rec['pid']} on {rec['host']}, "
                    f"results {rec['results']}, started {rec.get('created_utc', '?')}; {why}): "
                    f"{', '.join(sorted(names))}; jobs it left unfinished are re-run")
    return done


def runs_writing(results: str, snakemake_dir: str | os.PathLike = ".snakemake", *,
                 executing_only: bool = True) -> list[dict]:
    """Other runs, not provably gone, whose results folder overlaps ``results`` (one inside the other);
    only those past ``onstart`` (executing) unless ``executing_only`` is False."""
    mine = os.path.abspath(results)
    out = []
    for _, rec in _records(snakemake_dir):
        if rec["pid"] == os.getpid() and rec.get("host") == socket.gethostname():
            continue
        if (rec.get("executing") or not executing_only) and _overlap(mine, rec["results"]) and _gone(rec) is None:
            out.append(rec)
    return out


def describe(rec: dict) -> str:
    return f"pid {rec['pid']} on {rec.get('host')}, started {rec.get('created_utc', '?')}, results {rec['results']}"


def claim_results(results: str, snakemake_dir: str | os.PathLike = ".snakemake") -> None:
    """Mark this run as executing (``onstart``), then stop if another live run is executing on the same
    results folder: two runs writing the same cells and tables would corrupt both."""
    path = _record_path(snakemake_dir, os.getpid())
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        register_run(results, snakemake_dir)
        rec = json.loads(path.read_text())
    rec["executing"] = True
    atomic_write_text(json.dumps(rec), path)
    others = runs_writing(results, snakemake_dir)
    if others:
        raise ResultsInUse(f"results folder {results} is being written by another Snakemake run "
                           f"({describe(others[0])}): wait until it has finished, or use another results folder "
                           "(do not use --unlock: that run is alive)")


def keep_other_runs_locks() -> bool:
    """Make Snakemake's file persistence delete only the lock files of this run (see the module docstring).

    ``snakemake --unlock`` (``cleanup_locks``) keeps its meaning: every lock is removed. Returns
    False (and changes nothing) if this Snakemake's persistence does not look as expected.
    """
    try:
        from snakemake.persistence.file import FilePersistence
    except ImportError:  # pragma: no cover - no snakemake
        return False
    if getattr(FilePersistence, "_attention_dynamics_own_locks", False):
        return True
    delete_all = getattr(FilePersistence, "_delete_locks", None)
    if delete_all is None or not hasattr(FilePersistence, "cleanup_locks"):
        return False

    def _delete_own_locks(self):
        own = getattr(self, "_lockfile", None)
        if own is None:  # not the persistence this was written for: its own behaviour
            return delete_all(self)
        for lockfile in list(own.values()):
            with contextlib.suppress(FileNotFoundError):
                os.remove(lockfile)
        own.clear()

    def cleanup_locks(self):  # snakemake --unlock: every lock, as documented
        delete_all(self)

    FilePersistence._delete_locks = _delete_own_locks
    FilePersistence.cleanup_locks = cleanup_locks
    FilePersistence._attention_dynamics_own_locks = True
    return True
