"""Many grid cells in one job: a process pool over (cell, seed) simulations inside one allocation.

This is what a ``simulate_chunk`` job runs (``attention-dynamics run-chunk``). Why not one job per
cell: a job costs ~1 CPU-s of interpreter start-up locally and ~3.5 s of ``srun`` + Snakemake
start-up on SLURM, against 0.15–1 s per simulation; why not Snakemake groups: the SLURM executor
runs group members one after the other (measured in docs/slurm.md).

How a chunk runs
----------------
1. For every cell, the entry of :mod:`attention_dynamics.pipeline.cellcache` is looked up; a valid
   one (a previous attempt finished that cell) is reused, not recomputed.
2. The simulations of the other cells, one task per (cell, seed), go to ``jobs`` worker
   processes (forked after the imports, so they start at once), longest predicted cell first
   (a cell's seeds one after the other, so that cells finish early and one by one).
3. When all seeds of a cell are back, the parent builds its four tables exactly as
   :func:`attention_dynamics.pipeline.cell.run_cell` does (same rows, same order: the numbers are
   those of a one-cell job) and writes its cache entry at once. A kill (SLURM time limit,
   scancel, preemption, out of memory) therefore loses only the cells in flight.
4. When every cell has an entry, the manifest (the rule's only output) is written atomically:
   cell path -> entry. Rule ``simulate_cell`` links each entry onto the per-cell outputs.

A cell that raises is reported and the others go on; the job then exits 1 without a manifest.
A worker that dies (killed by a signal, e.g. the kernel's out-of-memory killer) breaks the pool:
the simulations without a result are retried one at a time, each in a fresh worker process, so
the one that kills its worker again is identified and its cell alone fails. Worker processes run with one BLAS/OpenMP thread each (``threads`` of the rule =
worker count). Per seed, the worker measures its CPU time and peak resident memory (Linux:
``/proc/self/status`` VmHWM, reset before each task); both go into the entry and, through rule
``simulate_cell``, into ``results/benchmarks/cells/<sweep>/<cell>.tsv`` for the resource model
(:mod:`attention_dynamics.pipeline.resources`).
"""
from __future__ import annotations

import json
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CellSpec", "ChunkReport", "parse_cells", "run_chunk", "THREAD_ENV"]

# one thread per worker process for every threaded library (the pool is the parallelism)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass
class CellSpec:
    """One cell of a chunk: ``path`` is ``<sweep>/<cell path>`` below ``results/cells/``."""

    path: str
    cell: dict
    seeds: list[int]
    predicted: float = 0.0                 # predicted CPU seconds (ordering only)
    material: dict = field(default_factory=dict)


@dataclass
class ChunkReport:
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def parse_cells(text: str) -> list[CellSpec]:
    """The ``--cells`` JSON of ``run-chunk``: a list of {"path", "cell", "seeds"[, "predicted"]}."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--cells is not valid JSON ({exc})") from None
    if not isinstance(items, list) or not items:
        raise ValueError("--cells must be a non-empty JSON list of {path, cell, seeds}")
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not {"path", "cell", "seeds"} <= set(it):
            raise ValueError(f"--cells[{i}] must be an object with keys path, cell, seeds; got {it!r}")
        from .cell import seed_list

        out.append(CellSpec(path=str(it["path"]), cell=dict(it["cell"]), seeds=seed_list(it["seeds"]),
                            predicted=float(it.get("predicted", 0.0))))
    paths = [c.path for c in out]
    if len(set(paths)) != len(paths):
        raise ValueError("--cells lists a cell twice")
    return out


# ------------------------------------------------------------------------------------------
# worker side
# ------------------------------------------------------------------------------------------
def _reset_peak_rss() -> None:
    try:  # Linux: "5" resets the peak resident set size (VmHWM) of this process
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _simulate_seed(cell: dict, seed: int, base_seed: int):
    """One simulation, in a worker: (run_one result, CPU seconds, peak RSS in MB, start, end)."""
    from .cell import run_one

    _reset_peak_rss()
    start, t0 = time.time(), time.process_time()
    result = run_one(cell, seed, base_seed)
    return result, time.process_time() - t0, _peak_rss_mb(), start, time.time()


# ------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------
class _CellState:
    def __init__(self, spec: CellSpec):
        self.spec = spec
        self.results: dict[int, tuple] = {}
        self.cpu: dict[int, float] = {}
        self.rss = 0.0
        self.span = [float("inf"), float("-inf")]

    def add(self, seed: int, out) -> None:
        res, cpu, rss, start, end = out
        self.results[seed], self.cpu[seed], self.rss = res, cpu, max(self.rss, rss)
        self.span = [min(self.span[0], start), max(self.span[1], end)]

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.spec.seeds)


def _say(log, msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=log, flush=True)


def _finish_cell(st: _CellState, cache_root, log, report: ChunkReport) -> None:
    from .cell import cell_tables, seed_log_line
    from .cellcache import write_entry

    spec = st.spec
    ordered = [st.results[s] for s in spec.seeds]
    tables = cell_tables(ordered)
    lines = [seed_log_line(s, st.results[s][0]) for s in spec.seeds]
    stats = {"cpu_seconds": [round(st.cpu[s], 4) for s in spec.seeds], "max_rss_mb": round(st.rss, 1),
             "wall_seconds": round(st.span[1] - st.span[0], 3), "host": socket.gethostname(),
             "slurm_job_id": os.environ.get("SLURM_JOB_ID", "")}
    entry = write_entry(cache_root, spec.material, tables, lines, stats)
    cpu = sum(stats["cpu_seconds"])
    report.computed.append(spec.path)
    report.cpu_seconds += cpu
    pred = f" (predicted {spec.predicted:.1f})" if spec.predicted else ""
    _say(log, f"cell {spec.path}: {len(spec.seeds)} seeds, {cpu:.2f} CPU-s{pred}, peak {st.rss:.0f} MB "
              f"-> {entry.path}")


def _record_failure(st: _CellState, seed: int, exc: BaseException, log, report: ChunkReport) -> None:
    if st.spec.path not in report.failed:
        report.failed[st.spec.path] = f"{type(exc).__name__}: {exc}"
        _say(log, f"cell {st.spec.path}: FAILED at seed {seed}: {report.failed[st.spec.path]}")


def _run_inline(tasks, *, base_seed, cache_root, log, report) -> None:
    """One worker: everything in this process (no fork, no pickling)."""
    for st, s in tasks:
        if st.spec.path in report.failed:
            continue
        try:
            out = _simulate_seed(st.spec.cell, s, base_seed)
        except Exception as exc:  # reported, the other cells go on
            _record_failure(st, s, exc, log, report)
            continue
        st.add(s, out)
        if st.done:
            _finish_cell(st, cache_root, log, report)


def _run_pool(tasks, *, base_seed, jobs, cache_root, log, report):
    """``jobs`` forked worker processes; returns the tasks without a result if the pool broke
    (a worker was killed), in submission order, else []."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    lost = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_simulate_seed, st.spec.cell, s, base_seed): (i, st, s)
                   for i, (st, s) in enumerate(tasks)}
        for fut in as_completed(futures):
            i, st, s = futures[fut]
            try:
                out = fut.result()
            except BrokenProcessPool:
                lost.append((i, st, s))
                continue
            except Exception as exc:
                _record_failure(st, s, exc, log, report)
                continue
            st.add(s, out)
            if st.done and st.spec.path not in report.failed:
                _finish_cell(st, cache_root, log, report)
    return [(st, s) for _, st, s in sorted(lost, key=lambda t: t[0])]


def _compute(todo: list[_CellState], *, base_seed, jobs, cache_root, log, report) -> None:
    """Run every seed of ``todo`` (see the module docstring for what happens when a worker dies)."""
    tasks = [(st, s) for st in todo for s in st.spec.seeds]
    if jobs <= 1:
        _run_inline(tasks, base_seed=base_seed, cache_root=cache_root, log=log, report=report)
        return
    lost = _run_pool(tasks, base_seed=base_seed, jobs=jobs, cache_root=cache_root, log=log, report=report)
    if lost:
        _say(log, f"a worker process died (killed by a signal: out of memory?); the {len(lost)} simulation(s) "
                  f"without a result are retried one at a time, each in a fresh worker process")
    # One worker per pool from now on: the task in flight when the pool breaks is the one that
    # killed its worker; its cell is given up, the rest goes on in a new pool.
    while lost:
        lost = [(st, s) for st, s in lost if st.spec.path not in report.failed]
        if not lost:
            break
        again = _run_pool(lost, base_seed=base_seed, jobs=1, cache_root=cache_root, log=log, report=report)
        if again:
            st, s = again[0]
            report.failed[st.spec.path] = (f"seed {s} killed its worker process twice (a signal: out of memory? "
                                           f"peak so far {st.rss:.0f} MB)")
            _say(log, f"cell {st.spec.path}: FAILED: {report.failed[st.spec.path]}")
        lost = again


def run_chunk(cells: list[CellSpec], *, base_seed: int, cache_root: str | os.PathLike, jobs: int,
              manifest: str | os.PathLike | None = None, chunk: str = "", log=None) -> ChunkReport:
    """Compute (or reuse) every cell of a chunk; write the manifest if all of them succeeded.

    See the module docstring. ``jobs`` worker processes (1: no pool, everything in this
    process). Returns a :class:`ChunkReport`; raises nothing for a failing cell.
    """
    from .cellcache import entry_dir, key_material, read_entry

    log = sys.stderr if log is None else log
    t0 = time.time()
    report = ChunkReport()
    todo, entries = [], {}
    for spec in cells:
        try:
            spec.material = key_material(spec.cell, spec.seeds, base_seed)
        except ValueError as exc:  # bad parameters: this cell fails, the others go on
            report.failed[spec.path] = f"{type(exc).__name__}: {exc}"
            continue
        entry = read_entry(entry_dir(cache_root, spec.material), spec.material)
        if entry is not None:
            report.reused.append(spec.path)
            entries[spec.path] = entry
        else:
            todo.append(_CellState(spec))
    n_tasks = sum(len(st.spec.seeds) for st in todo)
    workers = max(1, min(int(jobs), n_tasks))
    _say(log, f"chunk {chunk or '-'}: {len(cells)} cells, {len(report.reused)} reused from the cache, "
              f"{len(todo)} to compute ({n_tasks} simulations, "
              f"{sum(st.spec.predicted for st in todo):.0f} CPU-s predicted) on {workers} worker(s), "
              f"host {socket.gethostname()}{', SLURM job ' + os.environ['SLURM_JOB_ID'] if 'SLURM_JOB_ID' in os.environ else ''}")
    for path in report.reused:
        _say(log, f"cell {path}: reused {entries[path].path}")
    todo.sort(key=lambda st: -st.spec.predicted)  # longest first (stable: plan order among equals)
    _compute(todo, base_seed=base_seed, jobs=workers, cache_root=cache_root, log=log, report=report)
    cpu_self = resource.getrusage(resource.RUSAGE_SELF)
    _say(log, f"chunk {chunk or '-'}: {len(report.computed)} computed, {len(report.reused)} reused, "
              f"{len(report.failed)} failed; {report.cpu_seconds:.1f} CPU-s in simulations, "
              f"{cpu_self.ru_utime + cpu_self.ru_stime:.1f} CPU-s in this process, {time.time() - t0:.1f} s wall")
    if report.failed:
        for path, why in report.failed.items():
            _say(log, f"FAILED {path}: {why}")
        return report
    if manifest is not None:
        _write_manifest(manifest, chunk, cells, cache_root)
    return report


def _write_manifest(manifest, chunk: str, cells: list[CellSpec], cache_root) -> None:
    from .cellcache import entry_dir, entry_key
    from .io import atomic_write_text

    record = {"chunk": chunk, "cells": {spec.path: {"entry": str(entry_dir(cache_root, spec.material)),
                                                    "key": entry_key(spec.material)} for spec in cells}}
    atomic_write_text(json.dumps(record, indent=1, sort_keys=True), manifest)


# The driver's code fingerprint, exported by the Snakefile to its local jobs: a link job then need not
# hash the package and look up library versions itself (~0.05 of its ~0.1 CPU-s; issue 14.4).
CODE_ENV = "AD_DRIVER_CODE_FINGERPRINT"


def current_code() -> str:
    """This code's fingerprint (:func:`cellcache.code_fingerprint`), from ``$AD_DRIVER_CODE_FINGERPRINT``
    when the Snakemake driver of this checkout set it."""
    import re

    from .cellcache import code_fingerprint

    env = os.environ.get(CODE_ENV, "")
    return env if re.fullmatch(r"[0-9a-f]{64}", env) else code_fingerprint()


def entry_problem(manifest: str | os.PathLike, path: str, cell: dict | None = None, seeds=None,
                  base_seed: int | None = None):
    """(entry, None) if chunk ``manifest`` lists cell ``path`` with an intact cache entry computed by
    this code, for ``cell``/``seeds``/``base_seed`` where given; else (None, what is wrong)."""
    from .cellcache import read_entry

    try:
        record = json.loads(Path(manifest).read_text())
        where = record["cells"][path]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"it is not in chunk manifest {manifest} ({type(exc).__name__}: {exc})"
    entry = read_entry(where["entry"])
    if entry is None:
        return None, f"its cache entry {where['entry']} is missing or damaged"
    material = entry.record["material"]
    held = material["cell"]  # canonical: every key, plain types (numbers compare as numbers)
    if entry.record.get("key") != where.get("key"):
        return None, f"its cache entry {where['entry']} holds another key"
    if cell is not None and any(held.get(key, object()) != value for key, value in cell.items()):
        return None, "the chunk computed other parameters than the rule now asks for"
    if seeds is not None and material["seeds"] != list(range(int(seeds))):
        return None, f"the chunk computed seeds {material['seeds']}, the rule asks for {int(seeds)}"
    if base_seed is not None and material["base_seed"] != int(base_seed):
        return None, f"the chunk used base_seed {material['base_seed']}, the rule asks for {int(base_seed)}"
    if material["code"] != current_code():
        return None, "it was computed by another version of the package (or of numpy, scipy, ...)"
    return entry, None


def link_cell(manifest: str | os.PathLike, path: str, cell: dict, out_dir: str | os.PathLike,
              benchmark: str | os.PathLike | None = None, log=None, seeds=None, base_seed=None) -> int:
    """What rule ``simulate_cell`` runs: link the cache entry of cell ``path`` (from the chunk's
    manifest) onto ``out_dir/<table>.parquet``, write its log lines and benchmark file.

    The entry must be intact, hold exactly ``cell`` (the rule's current parameters, ``seeds``,
    ``base_seed``) and come from this code (:func:`entry_problem`). Otherwise the manifest is
    removed, so that the next ``snakemake`` computes the chunk again, and 1 is returned.
    """
    from .cellcache import link_entry

    log = sys.stderr if log is None else log
    entry, problem = entry_problem(manifest, path, cell, seeds, base_seed)
    if problem:
        Path(manifest).unlink(missing_ok=True)
        print(f"attention-dynamics: error: cell {path}: {problem}; removed {manifest} so that the next "
              "snakemake run computes it again", file=log)
        return 1
    log.write(entry.log.read_text())
    link_entry(entry, out_dir)
    if benchmark:
        write_benchmark(entry.record, benchmark)
    print(f"linked {entry.path} (computed {entry.record.get('created_utc', '?')} on {entry.record.get('host', '?')}"
          f"{', SLURM job ' + entry.record['slurm_job_id'] if entry.record.get('slurm_job_id') else ''})", file=log)
    return 0


def drop_stale_manifests(chunks: dict, results: str | os.PathLike, wanted=None) -> list[str]:
    """At start-up: a chunk whose manifest exists but which holds a cell without its per-cell
    files (deleted, or removed as damaged by the integrity check) whose cache entry cannot be
    linked (:func:`entry_problem`) gets its manifest removed, so that this run computes the
    chunk again. Only cells with missing files (and in ``wanted``, paths ``<sweep>/<cell>``, if
    given) are looked at; returns a message per manifest removed."""
    from .cellcache import TABLE_NAMES

    out = []
    for name, ch in chunks.items():
        manifest = Path(results) / "cache" / "chunks" / f"{name}.json"
        if not manifest.exists():
            continue
        for path in ch.paths:
            if wanted is not None and path not in wanted:
                continue
            folder = Path(results) / "cells" / path
            if all((folder / f"{t}.parquet").exists() for t in TABLE_NAMES):
                continue
            _, problem = entry_problem(manifest, path)
            if problem:
                manifest.unlink(missing_ok=True)
                out.append(f"chunk {name} runs again: cell {path} has no tables and {problem}")
                break
    return out


BENCHMARK_COLUMNS = ("s", "h:m:s", "max_rss", "max_vms", "max_uss", "max_pss", "io_in", "io_out", "mean_load",
                     "cpu_time", "seeds", "cpu_per_seed_max", "cell")


def write_benchmark(record: dict, path: str | os.PathLike) -> None:
    """A cell's measurements in Snakemake's benchmark format (s, h:m:s, max_rss in MB, ..., cpu_time)
    plus ``seeds``, ``cpu_per_seed_max`` and the cell's JSON (for recalibrating the resource model)."""
    from .io import atomic_write_text

    import datetime as _dt

    cpu = [float(c) for c in record.get("cpu_seconds", [])]
    wall = float(record.get("wall_seconds", 0.0))
    row = [f"{wall:.2f}", str(_dt.timedelta(seconds=int(wall))),
           f"{float(record.get('max_rss_mb', float('nan'))):.2f}", "NA", "NA", "NA", "NA", "NA", "NA",
           f"{sum(cpu):.2f}", str(len(cpu)), f"{max(cpu) if cpu else 0.0:.3f}",
           json.dumps(record["material"]["cell"], sort_keys=True, separators=(",", ":"))]
    atomic_write_text("\t".join(BENCHMARK_COLUMNS) + "\n" + "\t".join(row) + "\n", path)
