"""Reliability of the pipeline (GitHub issue 6): interruption, atomic files, reproducibility,
bad input, numerical faults.

The end-to-end part runs one small sweep twice: once without interruption (``reference``) and
once killed with SIGKILL mid-job and started again with the same command (``interrupted``);
4 cells in 2 chunk jobs of 2 cells, 40–60 s in all on 2 shared cores.
"""
from __future__ import annotations

import base64
import contextlib
import errno
import io as _io
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from attention_dynamics import cli
from attention_dynamics.pipeline import cell
from attention_dynamics.pipeline import io
from attention_dynamics.pipeline import locks
from attention_dynamics.pipeline import paths
from attention_dynamics.pipeline import sweep as sw
from attention_dynamics.pipeline.config import load_yaml_strict

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "attention_dynamics"

# Three point-like caps at right angles, 4 β values. The solver needs 80–100 step attempts (accepted
# and rejected) up to β = 12 and 114–119 at β = 16 (measured, 8 seeds, numpy and numba engines, with
# the predictive factor also after rejections and the exact flow of the last two points):
# max_steps = 105 makes every β = 16 run fail, which the sweep must record and survive, and the
# fits must count. (Two caps no longer do: the flow takes their whole plateau in one step.)
SWEEP = """\
results: results
base_seed: 0
defaults:
  t_max: 1.0e+12
  theta_c: 0.1
sweeps:
  pairs:
    model: usa
    init: caps
    d: 2
    n: 9
    k: 3
    eps: 1.0e-5
    spacing: 1.5707963267949
    beta: [8, 10, 12, 16]
    max_steps: 105
    seeds: 8
fits:
  n_boot: 50
plots:
  max_panels: 2
  n_betas: 2
jobs:
  cells_per_job: 2   # two simulate_chunk jobs of two cells
"""
PLAN = sw.check_config(yaml.safe_load(SWEEP), check_results=False)
TABLES = ["runs", "events", "lifetimes", "trajectories", "fits"]
TARGETS = [f"results/tables/{t}.parquet" for t in TABLES]
PLOTS = [f"results/plots/pairs/{k}.png" for k in ("staircase", "clusters", "times", "lifetimes")]
CELL_TABLES = ["runs", "events", "lifetimes", "trajectories"]


def _command(wd: Path, targets, config: str = "sweep.yaml") -> list[str]:
    """`snakemake <targets> --configfile sweep.yaml --cores 2`, the workflow of this checkout run in ``wd``
    (its default profile applies: rerun-incomplete, keep-going, ...)."""
    return [sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
            "--configfile", str(wd / config), "--cores", "2"]


def _env():
    return {**os.environ, "MPLBACKEND": "Agg"}


def _cell_dir(wd: Path, c) -> Path:
    return wd / PLAN.cell_dir(c)


def _incomplete_paths(wd: Path) -> set[str]:
    """Outputs Snakemake has marked incomplete (.snakemake/incomplete/<urlsafe base64 of the path>)."""
    root = wd / ".snakemake" / "incomplete"
    out = set()
    for p in root.rglob("*") if root.is_dir() else []:
        if p.is_file() and p.name != "migration_underway":
            parts = [s.lstrip("@") for s in p.relative_to(root).parts]
            with contextlib.suppress(ValueError):
                out.add(base64.urlsafe_b64decode("".join(parts)).decode())
    return out


def _finished_cells(wd: Path) -> list:
    """Cells whose four tables exist and are not marked incomplete: Snakemake will keep them."""
    marked = _incomplete_paths(wd)
    done = []
    for c in PLAN.cells:
        files = [f"{PLAN.cell_dir(c)}/{t}.parquet" for t in CELL_TABLES]
        if all((wd / f).exists() for f in files) and not marked & set(files):
            done.append(c)
    return done


def _cached_cells(wd: Path) -> list[str]:
    """Cells a chunk job has finished and written to the cell cache (their entry.json exists)."""
    return sorted(json.loads(p.read_text())["material"]["cell"]["beta"].__repr__()
                  for p in (wd / "results" / "cache" / "cells").rglob("entry.json"))


def _cache_inodes(wd: Path) -> dict[str, int]:
    return {str(p): p.stat().st_ino for p in (wd / "results" / "cache" / "cells").rglob("*.cached")}


def _mtimes(wd: Path, cells) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for c in cells for p in sorted(_cell_dir(wd, c).glob("*.parquet"))}


def _job_count(text: str, rule: str) -> int:
    m = re.search(rf"^{rule}\s+(\d+)\s*$", text, re.M)
    return int(m.group(1)) if m else 0


def _read(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas().drop(columns=["wall_seconds"], errors="ignore")


def _hidden_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*")]


# ---------------------------------------------------------------------------------------------
# the two runs
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep run once, without interruption (also its plots: a sweep with failed runs)."""
    wd = tmp_path_factory.mktemp("reference")
    (wd / "sweep.yaml").write_text(SWEEP)
    t0 = time.perf_counter()
    out = subprocess.run(_command(wd, TARGETS + PLOTS), capture_output=True, text=True, timeout=600, cwd=wd,
                         env=_env())
    assert out.returncode == 0, out.stderr[-5000:]
    print(f"reference run: {time.perf_counter() - t0:.1f} s")
    return wd


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, reference):
    """The same sweep, killed with SIGKILL (Snakemake's whole process group, its jobs included) once a
    cell has been computed while a chunk job runs, then started again with the same command."""
    wd = tmp_path_factory.mktemp("interrupted")
    (wd / "sweep.yaml").write_text(SWEEP)
    cmd = _command(wd, TARGETS)
    log = wd / "first.log"
    timeline = {}
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=wd, env=_env(),
                                start_new_session=True)  # own process group: killpg reaches every job
    try:
        while True:
            text = log.read_text()
            # a cell is computed (in the cache), a chunk job runs (Snakemake has marked its manifest incomplete)
            running = [p for p in _incomplete_paths(wd) if p.startswith("results/cache/chunks/")]
            if _cached_cells(wd) and running:
                break
            assert proc.poll() is None, f"snakemake ended before it could be killed:\n{text[-3000:]}"
            assert time.perf_counter() - t0 < 300, text[-3000:]
            time.sleep(0.05)
        timeline["first_cell_finished_s"] = time.perf_counter() - t0
        os.killpg(proc.pid, signal.SIGKILL)
        timeline["killed_s"] = time.perf_counter() - t0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for _ in range(100):  # wait until no process of the group is left (the jobs were killed too)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("processes of the killed run are still alive")
    state = {
        "finished": _finished_cells(wd),
        "cached": _cached_cells(wd),
        "inodes": _cache_inodes(wd),
        "marked": _incomplete_paths(wd),
        "locks": sorted(p.name for p in (wd / ".snakemake" / "locks").glob("*")),
        "records": [json.loads(p.read_text()) for p in (wd / ".snakemake" / locks.RUNS_DIR).glob("*.json")],
        "log": log.read_text(),
    }
    state["mtimes"] = _mtimes(wd, state["finished"])
    manifests = [p for p in (wd / "results" / "cache" / "chunks").glob("[0-9][0-9][0-9].json")
                 if str(p.relative_to(wd)) not in state["marked"]]
    state["done_chunk_cells"] = sum(len(json.loads(p.read_text())["cells"]) for p in manifests)
    state["parquet_after_kill"] = sorted(str(p.relative_to(wd)) for p in (wd / "results").rglob("*.parquet"))
    for p in (wd / "results").rglob("*.parquet"):  # what a reader sees right after the kill
        pq.read_table(p)
    t1 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=wd, env=_env())
    timeline["restart_s"] = time.perf_counter() - t1
    state.update(wd=wd, restart=out, timeline=timeline)
    print(f"interrupted run: first cell finished at {timeline['first_cell_finished_s']:.1f} s, killed at "
          f"{timeline['killed_s']:.1f} s with {len(state['cached'])}/{len(PLAN.cells)} cells computed, "
          f"{len(state['finished'])} at their per-cell paths, and "
          f"{sum('cache/chunks/' in p for p in state['marked'])} chunk job(s) cut off; restart took {timeline['restart_s']:.1f} s")
    return state


def test_kill_left_a_stale_lock_and_cut_off_jobs(interrupted):
    """The scenario is the one a user meets: a lock left behind, a job cut off mid-way."""
    assert {"0.input.lock", "0.output.lock"} <= set(interrupted["locks"]), interrupted["locks"]
    [record] = interrupted["records"]  # the killed run's owner record, written before its lock
    assert record["executing"] and record["results"] == str(interrupted["wd"] / "results")
    assert len(interrupted["cached"]) >= 1
    assert interrupted["marked"], "no job was running when snakemake was killed"
    assert len(interrupted["cached"]) < len(PLAN.cells) and len(interrupted["finished"]) < len(PLAN.cells)


def test_restart_with_the_same_command_completes(interrupted):
    out = interrupted["restart"]
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-5000:]
    assert "removed the lock left by a Snakemake run that was killed" in text, text[-3000:]
    assert "LockException" not in text and "IncompleteFilesException" not in text
    wd = interrupted["wd"]
    assert not (wd / ".snakemake" / "locks").exists() or not list((wd / ".snakemake" / "locks").glob("*.lock"))
    assert not list((wd / ".snakemake" / locks.RUNS_DIR).glob("*.json"))  # the dead run's record, and ours


def test_finished_cells_are_not_recomputed(interrupted):
    wd = interrupted["wd"]
    finished = interrupted["finished"]
    assert _mtimes(wd, finished) == interrupted["mtimes"]  # not rewritten
    text = interrupted["restart"].stdout + interrupted["restart"].stderr
    assert _job_count(text, "simulate_cell") == len(PLAN.cells) - len(finished), text[-3000:]
    for c in finished:  # and Snakemake's log names none of them as a job
        assert f"output: {PLAN.cell_dir(c)}/runs.parquet" not in text
    # the cells the cut-off chunk had computed were reused, not computed again
    inodes = _cache_inodes(wd)
    assert all(inodes[p] == i for p, i in interrupted["inodes"].items()), "a cached cell was rewritten"
    logs = [p.read_text() for p in (wd / "results" / "logs" / "chunks").glob("*.log")]
    computed = sum(int(m) for t in logs for m in re.findall(r": (\d+) computed, \d+ reused", t))
    reused = sum(int(m) for t in logs for m in re.findall(r"(\d+) reused from the cache", t))
    # the final chunk logs: the cut-off chunk reused the cells it had computed before the kill
    assert reused == len(interrupted["cached"]) - interrupted["done_chunk_cells"] >= 1, logs
    assert computed + reused == len(PLAN.cells), logs


def test_no_partial_or_temporary_file_after_restart(interrupted):
    results = interrupted["wd"] / "results"
    files = sorted(results.rglob("*.parquet"))
    assert len(files) == 4 * len(PLAN.cells) + len(TABLES)
    for p in files:
        pq.read_table(p)  # every Parquet file opens
    assert _hidden_files(results) == []  # no temporary file left anywhere


def test_interrupted_run_equals_uninterrupted_run(interrupted, reference):
    """Also reproducibility: two runs of the same config on the same machine give equal tables."""
    wd = interrupted["wd"]
    for name in TABLES:
        a, b = wd / "results" / "tables" / f"{name}.parquet", reference / "results" / "tables" / f"{name}.parquet"
        pd.testing.assert_frame_equal(_read(a), _read(b), check_exact=True, obj=name)
        ma, mb = io.read_provenance(a), io.read_provenance(b)
        for m in (ma, mb):
            m.pop("created_utc")
        assert ma == mb, name
    for c in PLAN.cells:  # the per-cell tables too
        for t in CELL_TABLES:
            pd.testing.assert_frame_equal(_read(_cell_dir(wd, c) / f"{t}.parquet"),
                                          _read(_cell_dir(reference, c) / f"{t}.parquet"), check_exact=True)


def test_reference_run_leaves_no_temporary_files(reference):
    assert _hidden_files(reference / "results") == []
    for p in (reference / "results").rglob("*.parquet"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~_umask(), p  # readable like any new file


# ---------------------------------------------------------------------------------------------
# runs sharing a working directory (issue 15, item 1)
# ---------------------------------------------------------------------------------------------
def _lock_owners(wd: Path) -> dict[str, str]:
    """Lock file -> the results folder of its first path."""
    d = wd / ".snakemake" / "locks"
    return {p.name: p.read_text().split("/", 1)[0] for p in sorted(d.glob("*.lock"))} if d.is_dir() else {}


def _start(wd: Path, name: str, targets, log: Path) -> subprocess.Popen:
    cmd = _command(wd, targets, f"{name}.yaml")
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=wd, env=_env(), start_new_session=True)


# a job of the sweep has started (the cells are computed by simulate_chunk, then linked by simulate_cell)
CELL_JOB = re.compile(r"rule (?:chunk_cells|simulate_chunk|simulate_cell):")


def _wait(cond, proc, log: Path, what: str, timeout: float = 300.0):
    t0 = time.perf_counter()
    while not cond():
        assert proc.poll() is None, f"ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.perf_counter() - t0 < timeout, f"no {what} after {timeout} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.01)


def _concurrent_runs(wd: Path, reference: Path, *, kill_before_onstart: bool, others: bool) -> None:
    """Run A on results; frozen mid-job (SIGSTOP), run B on resultsB is started and killed (SIGKILL) —
    right after Snakemake wrote its lock (before onstart) or once a job ran —, A's command is typed again,
    and (``others``) a run C on resultsC finishes normally (Snakemake's clean-up used to delete every
    lock) and someone types --unlock and A's command once more. A's lock files and A itself
    must survive all of it and A's tables must equal those of a clean run (``reference``)."""
    for name in ("results", "resultsB", "resultsC"):
        (wd / f"{name}.yaml").write_text(SWEEP.replace("results: results", f"results: {name}"))
    a = _start(wd, "results", TARGETS, wd / "A.log")
    try:
        _wait(lambda: "rule simulate_chunk:" in (wd / "A.log").read_text(), a, wd / "A.log", "a job of A")
        os.killpg(a.pid, signal.SIGSTOP)  # A holds its lock, mid-job, for as long as this takes
        a_locks = _lock_owners(wd)
        assert set(a_locks.values()) == {"results"} and len(a_locks) == 2, a_locks
        b = _start(wd, "resultsB", [t.replace("results/", "resultsB/") for t in TARGETS], wd / "B.log")
        try:
            if kill_before_onstart:
                _wait(lambda: "resultsB" in _lock_owners(wd).values(), b, wd / "B.log", "B's lock")
            else:
                _wait(lambda: "rule simulate_chunk:" in (wd / "B.log").read_text(), b, wd / "B.log", "a job of B")
        finally:
            os.killpg(b.pid, signal.SIGKILL)
            b.wait()
        assert "resultsB" in _lock_owners(wd).values()  # B's lock is left behind
        [b_record] = [r for r in (json.loads(f.read_text()) for f in (wd / ".snakemake" / locks.RUNS_DIR).glob("*.json"))
                      if r["results"] == str(wd / "resultsB")]
        print(f"B killed {'after' if b_record['executing'] else 'before'} its onstart")

        again = subprocess.run(_command(wd, TARGETS, "results.yaml"),
                               capture_output=True, text=True, cwd=wd, env=_env(), timeout=300)
        text = again.stdout + again.stderr
        assert again.returncode != 0, text[-3000:]
        assert "removed the lock left by a Snakemake run that was killed" in text and "resultsB" in text, text[-3000:]
        assert f"another Snakemake run is writing to results (pid {a.pid}" in text, text[-3000:]
        assert "LockException" in text and not CELL_JOB.search(text), text[-3000:]
        assert _lock_owners(wd) == a_locks  # B's lock removed, A's kept

        if others:
            one_cell = "resultsC" + PLAN.cell_dir(PLAN.cells[0])[len("results"):] + "/runs.parquet"
            c = subprocess.run(_command(wd, [one_cell], "resultsC.yaml"), capture_output=True, text=True, cwd=wd,
                               env=_env(), timeout=300)
            assert c.returncode == 0, (c.stdout + c.stderr)[-3000:]
            assert _lock_owners(wd) == a_locks  # C removed its own lock files only

            u = subprocess.run(_command(wd, ["--unlock"], "results.yaml"), capture_output=True, text=True, cwd=wd,
                               env=_env(), timeout=300)
            assert u.returncode == 0 and _lock_owners(wd) == {}, u.stderr[-3000:]
            again = subprocess.run(_command(wd, TARGETS, "results.yaml"),
                                   capture_output=True, text=True, cwd=wd, env=_env(), timeout=300)
            text = again.stdout + again.stderr
            assert again.returncode != 0 and "ResultsInUse" in text, text[-3000:]
            assert not CELL_JOB.search(text)  # stopped at onstart, before any job
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(a.pid, signal.SIGCONT)
    assert a.wait(timeout=600) == 0, (wd / "A.log").read_text()[-3000:]
    for name in TABLES:
        pd.testing.assert_frame_equal(_read(wd / "results" / "tables" / f"{name}.parquet"),
                                      _read(reference / "results" / "tables" / f"{name}.parquet"),
                                      check_exact=True, obj=name)
    assert _lock_owners(wd) == {} and not list((wd / ".snakemake" / locks.RUNS_DIR).glob("*.json"))


def test_a_live_runs_lock_survives_other_runs(tmp_path, reference):
    _concurrent_runs(tmp_path, reference, kill_before_onstart=True, others=False)


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(5))
def test_a_live_runs_lock_survives_other_runs_repeated(tmp_path, reference, repeat):
    """The scenario 5 times, B killed before and after onstart in turn, with C and --unlock meanwhile."""
    _concurrent_runs(tmp_path, reference, kill_before_onstart=repeat % 2 == 0, others=True)


# ---------------------------------------------------------------------------------------------
# damaged tables (issue 15, item 4)
# ---------------------------------------------------------------------------------------------
def _silent_flip(path: Path) -> int:
    """Flip one bit of ``path`` where Parquet still reads the file but a value changes (the reported
    case), keeping the mtime; returns the byte offset."""
    data = path.read_bytes()
    before = pq.read_table(path).to_pandas()
    stat = path.stat()
    for offset in range(4, len(data) // 2):
        for bit in (0, 3):
            flipped = bytearray(data)
            flipped[offset] ^= 1 << bit
            path.write_bytes(flipped)
            try:
                after = pq.read_table(path).to_pandas()
            except Exception:  # noqa: BLE001 - a flip that breaks the file is not the silent case
                continue
            if after.shape == before.shape and not after.equals(before):
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
                return offset
    raise AssertionError("no silent bit flip found")


def _truncate(path: Path, keep_mtime: bool) -> None:
    stat = path.stat()
    path.write_bytes(path.read_bytes()[: stat.st_size // 2])
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_damaged_tables_are_found_and_recomputed_by_the_plain_rerun(tmp_path, reference):
    """Truncated (newer or unchanged mtime) and bit-flipped (unchanged mtime) cell and aggregated
    tables: `attention-dynamics verify` names them, the plain re-run deletes and recomputes them,
    and the tables equal a clean run's."""
    import shutil

    wd = tmp_path / "damaged"
    shutil.copytree(reference, wd, symlinks=True)
    cells = [_cell_dir(wd, c) for c in PLAN.cells]
    damaged = {
        cells[0] / "trajectories.parquet": lambda p: _truncate(p, keep_mtime=False),   # newer mtime
        cells[1] / "runs.parquet": _silent_flip,                                      # values change, same mtime
        wd / "results" / "tables" / "events.parquet": lambda p: _truncate(p, keep_mtime=True),
        wd / "results" / "tables" / "fits.parquet": _silent_flip,
    }
    for path, damage in damaged.items():
        damage(path)
    out = subprocess.run([sys.executable, "-m", "attention_dynamics", "verify", str(wd / "results")],
                         capture_output=True, text=True, cwd=wd)
    assert out.returncode == 1, out.stdout + out.stderr
    listed = {Path(line.split()[1].rstrip(":")) for line in out.stdout.splitlines() if line.startswith("DAMAGED")}
    assert listed == set(damaged), out.stdout
    assert f"{4 * len(PLAN.cells) + len(TABLES)} tables: {4 * len(PLAN.cells) + len(TABLES) - 4} ok, 4 damaged" in out.stdout

    rerun = subprocess.run(_command(wd, TARGETS + PLOTS), capture_output=True, text=True, cwd=wd, env=_env(),
                           timeout=600)
    text = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, text[-5000:]
    for path in damaged:
        assert f"removed damaged table {path.relative_to(wd)}" in text, text[-3000:]
    assert _job_count(text, "simulate_cell") == 2 and _job_count(text, "aggregate") == 1, text[-3000:]
    for name in TABLES:
        pd.testing.assert_frame_equal(_read(wd / "results" / "tables" / f"{name}.parquet"),
                                      _read(reference / "results" / "tables" / f"{name}.parquet"),
                                      check_exact=True, obj=name)
    for c in PLAN.cells:
        for t in CELL_TABLES:
            pd.testing.assert_frame_equal(_read(_cell_dir(wd, c) / f"{t}.parquet"),
                                          _read(_cell_dir(reference, c) / f"{t}.parquet"), check_exact=True)
    out = subprocess.run([sys.executable, "-m", "attention_dynamics", "verify", str(wd / "results")],
                         capture_output=True, text=True, cwd=wd)
    assert out.returncode == 0 and " 0 damaged" in out.stdout, out.stdout


def test_aggregate_recomputes_a_damaged_cell(tmp_path):
    """Damage after start-up (or while the start-up check was skipped): aggregate recomputes the cell."""
    from attention_dynamics.pipeline.aggregate import aggregate

    small = [c for c in PLAN.cells if c.params["beta"] in (8.0, 10.0)]
    cells = [{"sweep": c.sweep, "path": c.path, "group": c.group, "seeds": 2, "params": c.params} for c in small]
    files = {t: [str(tmp_path / c.path / f"{t}.parquet") for c in small] for t in CELL_TABLES}
    for c, d in zip(cells, small):
        cell.run_cell({"sweep": c["sweep"], **c["params"]}, 2, str(tmp_path / d.path))
    clean = {t: pq.read_table(files[t][1]).to_pandas() for t in CELL_TABLES}
    _truncate(Path(files["lifetimes"][1]), keep_mtime=True)
    out = {t: str(tmp_path / "tables" / f"{t}.parquet") for t in CELL_TABLES}
    with pytest.raises(ValueError, match="damaged cell table.*lifetimes.parquet: not a complete Parquet file"):
        aggregate(cells, files, out)  # without base_seed: a clear error, nothing written
    assert not (tmp_path / "tables").exists()
    tables = aggregate(cells, files, out, base_seed=0)
    for t in CELL_TABLES:
        pd.testing.assert_frame_equal(pq.read_table(files[t][1]).to_pandas().drop(columns="wall_seconds",
                                                                                  errors="ignore"),
                                      clean[t].drop(columns="wall_seconds", errors="ignore"), check_exact=True)
    assert len(tables["runs"]) == 4


def test_every_table_carries_a_checksum_of_the_whole_file(tmp_path):
    """Every single-bit flip and every truncation of a table is detected (`integrity.verify`)."""
    from attention_dynamics.pipeline import integrity

    path = tmp_path / "t.parquet"
    io.write_table(pd.DataFrame({"x": np.linspace(0, 1, 50), "s": ["a", "b"] * 25}), path, meta={"k": "v"})
    assert integrity.verify(path).status == "ok" and io.read_provenance(path) == {"k": "v"}
    data = path.read_bytes()
    for offset in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[offset] ^= 1 << bit
            assert integrity.check_bytes(bytes(flipped))[0] == "damaged", (offset, bit)
    for size in range(len(data)):
        assert integrity.check_bytes(data[:size])[0] == "damaged", size
    path.write_bytes(data[:-1])
    assert integrity.verify(path).reason == f"not a complete Parquet file ({len(data) - 1} bytes; truncated?)"
    old = tmp_path / "old.parquet"  # written before checksums: checked to open only
    pq.write_table(pa.table({"x": [1.0]}), old)
    assert integrity.verify(old).status == "unsigned"


# ---------------------------------------------------------------------------------------------
# numerical faults: recorded, never fatal; fits count them
# ---------------------------------------------------------------------------------------------
def test_failed_runs_are_recorded_and_the_sweep_goes_on(reference):
    runs = pq.read_table(reference / "results" / "tables" / "runs.parquet").to_pandas()
    assert len(runs) == PLAN.n_simulations() == 32
    bad = runs[runs["beta"] == 16.0]
    assert (bad["status"] == "failed").all() and len(bad) == 8
    assert bad["reason"].str.fullmatch(r"max_steps=105 reached at t=\S+").all(), bad["reason"].tolist()
    assert (bad["max_steps"] == 105).all()
    good = runs[runs["beta"] != 16.0]
    assert (good["status"] == "ok").all() and (good["reason"] == "").all()
    fits = pq.read_table(reference / "results" / "tables" / "fits.parquet").to_pandas()
    assert len(fits) == 2  # escape, first_merge
    assert (fits["n_runs"] == 32).all() and (fits["n_failed"] == 8).all()
    assert (fits["n_obs"] == 24).all() and (fits["n_beta"] == 3).all() and (fits["beta_max"] == 12.0).all()
    assert (fits["status"] == "ok").all()
    for p in PLOTS:  # the figures are drawn from the remaining runs
        assert (reference / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


SMALL = dict(model="usa", init="caps", d=2, n=8, k=2, eps=1e-5, spacing=1.5707963267949, beta=10.0, t_max=1e12)


def test_max_steps_fault_is_recorded_by_run_cell(tmp_path):
    tables = cell.run_cell(dict(SMALL, max_steps=5), 2, tmp_path)
    runs = tables["runs"]
    assert (runs["status"] == "failed").all()
    assert runs["reason"].str.startswith("max_steps=5 reached at t=").all()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{t}.parquet" for t in sorted(CELL_TABLES)]
    # the job's command exits 0: the sweep goes on
    assert cli.main(["run-cell", "--cell", '{"max_steps": 5, "n": 8, "k": 2, "spacing": 1.5}', "--seeds", "1",
                     "--out", str(tmp_path / "cli")]) == 0
    assert pq.read_table(tmp_path / "cli" / "runs.parquet").to_pandas()["status"].tolist() == ["failed"]


def test_step_size_underflow_is_recorded(monkeypatch):
    """A vector field that turns NaN: the step size collapses, the run is 'failed' with the reason."""
    sim = sys.modules["attention_dynamics.engine.simulate"]
    original, calls = sim.velocity, {"n": 0}

    def nan_after_30(*args, **kwargs):
        calls["n"] += 1
        v = original(*args, **kwargs)
        return v * np.nan if calls["n"] > 30 else v

    monkeypatch.setattr(sim, "velocity", nan_after_30)
    # the numpy engine calls simulate.velocity (the compiled one: tests/test_kernels.py)
    row, events, lifetimes, trajectory = cell.run_one({**SMALL, "engine": "numpy"}, 0)
    assert row["status"] == "failed"
    assert re.match(r"(step failed at t=\S+: .*|non-finite state at t=\S+)$", row["reason"]), row["reason"]
    assert len(trajectory) >= 1  # what was recorded before the fault is kept


def test_exception_in_integrator_is_recorded(monkeypatch, tmp_path):
    original = cell.simulate

    def flaky(x0, **kwargs):
        if kwargs["beta"] == 10.0 and flaky.calls == 1:
            flaky.calls += 1
            raise FloatingPointError("overflow encountered in exp")
        flaky.calls += 1
        return original(x0, **kwargs)

    flaky.calls = 0
    monkeypatch.setattr(cell, "simulate", flaky)
    tables = cell.run_cell(SMALL, 3, tmp_path)
    runs = tables["runs"]
    assert runs["status"].tolist() == ["ok", "error", "ok"]
    assert runs["reason"].tolist()[1] == "FloatingPointError: overflow encountered in exp"
    assert set(tables["events"]["seed"]) == {0, 2}
    from attention_dynamics.analysis.fits import fit_runs

    fits = fit_runs(pd.concat([runs.assign(beta=b) for b in (8.0, 10.0, 12.0)]), n_boot=0)
    assert (fits["n_failed"] == 3).all() and (fits["n_obs"] == 6).all()


# ---------------------------------------------------------------------------------------------
# reproducibility: seeds from the config and the cell only
# ---------------------------------------------------------------------------------------------
def test_adding_a_beta_value_changes_no_other_cell():
    base = yaml.safe_load(SWEEP)
    more = yaml.safe_load(SWEEP)
    more["sweeps"]["pairs"]["beta"] = [8, 9, 10, 12, 16]
    more["sweeps"]["other"] = dict(base["sweeps"]["pairs"], n=10)  # and a sweep before nothing
    a = sw.check_config(base, check_results=False)
    b = sw.check_config(more, check_results=False)
    assert len(b.cells) == len(a.cells) + 1 + len(a.cells)
    for c in a.cells:
        other = b.index[c.sweep, c.path]
        # same path, same job parameters (Snakemake's params trigger does not fire), same fit group
        assert (other.json, other.seeds, other.group) == (c.json, c.seeds, c.group)
    c = a.cells[1]
    for s in range(2):
        ra, rb = cell.run_one(json.loads(c.json), s), cell.run_one(json.loads(b.index[c.sweep, c.path].json), s)
        assert {k: v for k, v in ra[0].items() if k != "wall_seconds"} == \
            {k: v for k, v in rb[0].items() if k != "wall_seconds"}
        for x, y in zip(ra[1:], rb[1:]):
            pd.testing.assert_frame_equal(x, y, check_exact=True)


def test_seed_depends_on_config_and_cell_only():
    c = cell.canonical_cell(SMALL)
    ss = cell.seed_sequence(c, 3, base_seed=7)
    assert ss.entropy == 7 and ss.spawn_key[1] == 3
    assert cell.seed_sequence(dict(c, max_steps=10), 3, 7).spawn_key == ss.spawn_key  # a solver setting
    assert cell.seed_sequence(dict(c, sweep="x"), 3, 7).spawn_key == ss.spawn_key
    assert cell.seed_sequence(dict(c, n=9), 3, 7).spawn_key != ss.spawn_key
    text = (ROOT / "config" / "README.md").read_text()
    assert "## Seeds" in text and "seed_sequence" in text and "`max_steps`" in text


# ---------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_tables_failing_midway_changes_nothing(tmp_path, monkeypatch):
    old = tmp_path / "a.parquet"
    io.write_table(pd.DataFrame({"x": [1.0]}), old)
    before = old.read_bytes()
    real = io.pq.write_table
    calls = []

    def fail_on_second(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            with open(where, "wb") as fh:
                fh.write(b"PAR1 half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(io.pq, "write_table", fail_on_second)
    with pytest.raises(OSError, match="No space"):
        io.write_tables([(pd.DataFrame({"x": [2.0]}), old, None, None),
                         (pd.DataFrame({"y": [3.0]}), tmp_path / "b.parquet", None, None)])
    assert old.read_bytes() == before  # the first table was complete, but is not committed alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet"]  # no b, no temporary file


def test_new_table_failing_midway_leaves_no_file(tmp_path, monkeypatch):
    def broken(table, where, *args, **kwargs):
        with open(where, "wb") as fh:
            fh.write(b"PAR1")
        raise KeyboardInterrupt  # even an interrupt cleans up

    monkeypatch.setattr(io.pq, "write_table", broken)
    with pytest.raises(KeyboardInterrupt):
        io.write_table(pd.DataFrame({"x": [1]}), tmp_path / "sub" / "t.parquet")
    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_savefig(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    io.atomic_savefig(fig, tmp_path / "f.png", dpi=30)
    io.atomic_savefig(fig, tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    good = (tmp_path / "f.png").read_bytes()

    def half(fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(fig, "savefig", half)
    with pytest.raises(RuntimeError):
        io.atomic_savefig(fig, tmp_path / "f.png")
    with pytest.raises(RuntimeError):
        io.atomic_savefig(fig, tmp_path / "g.png")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]


def test_atomic_write_text(tmp_path):
    p = tmp_path / "summary.md"
    io.atomic_write_text("# one\n", p)
    with pytest.raises(TypeError):
        io.atomic_write_text(12345, p)  # fails after the temporary file was created
    assert p.read_text() == "# one\n" and [q.name for q in tmp_path.iterdir()] == ["summary.md"]
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_reader_never_sees_a_half_written_table(tmp_path):
    """A reader polling the file while it is rewritten 30 times reads complete tables only."""
    path = tmp_path / "t.parquet"
    n = 200_000
    io.write_table(pd.DataFrame({"x": np.zeros(n)}), path)
    errors, seen, stop = [], set(), threading.Event()

    def reader():
        while not stop.is_set():
            try:
                x = pq.read_table(path).column("x").to_numpy()
            except Exception as exc:  # noqa: BLE001 - any failure to read is what we look for
                errors.append(repr(exc))
                continue
            if len(x) != n or x.min() != x.max():
                errors.append(f"mixed content: {len(x)} rows")
            seen.add(float(x[0]))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, 31):
            io.write_table(pd.DataFrame({"x": np.full(n, float(i))}), path)
    finally:
        stop.set()
        t.join()
    assert not errors, errors[:3]
    assert len(seen) > 1  # the reader did overlap with the writes


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _temp(folder: Path, target: str, pid: int, host: str | None = None) -> Path:
    host = host or re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname().split(".")[0])
    p = folder / f".{target}.{host}-{pid}-0123abcd.tmp"
    p.write_bytes(b"PAR1 partial")
    return p


def test_stale_temporary_files_are_removed(tmp_path):
    dead = _temp(tmp_path, "runs.parquet", _dead_pid())
    live = _temp(tmp_path, "runs.parquet", os.getppid())
    foreign = _temp(tmp_path, "runs.parquet", 1234, host="elsewhere")
    old = _temp(tmp_path, "events.parquet", 1234, host="elsewhere")
    os.utime(old, (time.time() - 2 * io.STALE_TEMP_SECONDS,) * 2)
    other = tmp_path / ".hidden.tmp"  # not ours: never touched
    other.write_text("x")
    assert io.is_stale_temp(dead) and io.is_stale_temp(old)
    assert not io.is_stale_temp(live) and not io.is_stale_temp(foreign) and not io.is_stale_temp(other)
    # the next writer of the same target removes its stale temporary files, not the others
    io.write_table(pd.DataFrame({"x": [1]}), tmp_path / "runs.parquet")
    assert not dead.exists() and live.exists() and foreign.exists() and old.exists()
    # the sweep at the start of every run removes the rest
    sub = tmp_path / "cells" / "a"
    sub.mkdir(parents=True)
    dead2 = _temp(sub, "trajectories.parquet", _dead_pid())
    removed = io.remove_stale_temps(tmp_path)
    assert set(removed) == {old, dead2}
    assert live.exists() and foreign.exists() and other.exists()


# Every call that writes a file in the package must go through attention_dynamics.pipeline.io's atomic
# helpers. Known exceptions, each with its reason:
WRITERS = re.compile(r"\.to_parquet\(|\.to_csv\(|(?<!atomic_)savefig\(|\.write_text\(|\.write_bytes\("
                     r"|pq\.write_table\(|\bopen\([^)]*[\"'][wax]b?\+?[\"']|json\.dump\(|np\.save|shutil\.copy")
ALLOWED = {
    ("aggregate.py", 'with open(smk.log[0], "w") as log:'): "a job log: a stream, not a result",
    ("runner.py", 'with open("/proc/self/clear_refs", "w") as fh:'): "resets the kernel's peak-memory counter of "
                                                                    "the process: not a file",
    ("plots.py", "pdf.savefig(f, dpi=DPI)"): "pages of a PdfPages opened on an atomic_path temporary",
}


def test_every_writer_goes_through_the_atomic_helpers():
    offenders = []
    files = [p for p in PACKAGE.rglob("*.py") if p.name != "io.py"] + list((ROOT / "workflow" / "scripts").glob("*.py"))
    for path in files:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if WRITERS.search(code) and (path.name, line.strip()) not in ALLOWED:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "write through attention_dynamics.pipeline.io (atomic_path, write_table(s), " \
                          "atomic_write_text, atomic_savefig):\n" + "\n".join(offenders)


def test_reproduction_rules_stage_their_figures():
    """attention_dynamics.reproductions saves figures in place: every rule passes it a temporary
    name (params) and renames the figure onto its output with mv after the command succeeded."""
    text = (ROOT / "workflow" / "rules" / "reproductions.smk").read_text()
    plots = re.findall(r"--plot ([^>]*)>", text)
    assert len(plots) == 3
    for args in plots:
        assert "output." not in args and "params.png" in args and "params.pdf" in args, args
    assert text.count("&& mv -f {params.png:q} {output.png:q} && mv -f {params.pdf:q} {output.pdf:q}") == 3


# ---------------------------------------------------------------------------------------------
# stale Snakemake locks
# ---------------------------------------------------------------------------------------------
def _run_record(folder: Path, results: str, pid: int, **fields) -> Path:
    """An owner record as locks.register_run writes it, for process ``pid``."""
    rec = {"host": socket.gethostname(), "pid": pid, "start": locks._proc_start(pid), "boot_id": locks._boot_id(),
           "results": str(folder / results), "executing": True, **fields}
    path = folder / ".snakemake" / locks.RUNS_DIR / f"{rec['host']}-{pid}-{rec['start'] or 0}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def _lock(folder: Path, i: int, results: str) -> list[Path]:
    """Lock files as Snakemake writes them: <i>.input.lock and <i>.output.lock, one path a line."""
    d = folder / ".snakemake" / "locks"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for kind in ("input", "output"):
        f = d / f"{i}.{kind}.lock"
        f.write_text(f"{results}/cells/a/{kind}.parquet\n{results}/tables/runs.parquet\n")
        out.append(f)
    return out


def test_register_run_writes_a_record_before_any_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = locks.register_run("results")
    rec = json.loads(path.read_text())
    assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname() and not rec["executing"]
    assert rec["results"] == str(tmp_path / "results")
    assert path.absolute().parent == tmp_path / ".snakemake" / "attention_dynamics" / "runs"
    own = _lock(tmp_path, 0, "results")
    assert locks.clear_stale_locks() == [] and all(f.exists() for f in own)  # our own lock: kept
    assert locks.runs_writing("results") == []  # we are not "another" run
    locks.claim_results("results")
    assert json.loads(path.read_text())["executing"]


@pytest.mark.parametrize("case", ["dead", "reused", "rebooted"])
def test_lock_of_a_dead_run_is_removed(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    pid = _dead_pid() if case == "dead" else os.getppid()
    fields = {}
    if case == "reused":
        if not locks._proc_start(pid):
            pytest.skip("no /proc: pid reuse cannot be detected")
        fields["start"] = "1"
    if case == "rebooted":
        if not locks._boot_id():
            pytest.skip("no boot id on this system")
        fields["boot_id"] = "another-boot"
    record = _run_record(tmp_path, "results", pid, **fields)
    stale = _lock(tmp_path, 0, "results")
    msgs = locks.clear_stale_locks()
    assert len(msgs) == 1 and f"pid {pid}" in msgs[0] and "0.input.lock, 0.output.lock" in msgs[0]
    assert not any(f.exists() for f in stale) and not record.exists()


@pytest.mark.parametrize("case", ["alive", "other_host", "no_owner", "garbled", "a_live_run_shares_the_folder"])
def test_lock_of_a_live_or_unknown_run_is_kept(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    if case == "alive":
        _run_record(tmp_path, "results", os.getppid())
    elif case == "other_host":
        _run_record(tmp_path, "results", _dead_pid(), host="elsewhere")
    elif case == "garbled":
        (tmp_path / ".snakemake" / locks.RUNS_DIR).mkdir(parents=True)
        (tmp_path / ".snakemake" / locks.RUNS_DIR / "x.json").write_text('{"host": "')
    elif case == "a_live_run_shares_the_folder":  # a dead and a live run both claim it: not provably stale
        _run_record(tmp_path, "results", _dead_pid())
        _run_record(tmp_path, "results/sub", os.getppid())
    kept = _lock(tmp_path, 0, "results/sub" if case == "a_live_run_shares_the_folder" else "results")
    assert locks.clear_stale_locks() == []
    assert all(f.exists() for f in kept)


def test_only_the_dead_runs_lock_goes_when_runs_share_the_working_directory(tmp_path, monkeypatch):
    """The issue-15 report: run A (alive) on results, run B (killed) on resultsB in one folder."""
    monkeypatch.chdir(tmp_path)
    _run_record(tmp_path, "results", os.getppid())
    dead = _run_record(tmp_path, "resultsB", _dead_pid())
    a, b = _lock(tmp_path, 0, "results"), _lock(tmp_path, 1, "resultsB")
    msgs = locks.clear_stale_locks()
    assert len(msgs) == 1 and "resultsB" in msgs[0] and "1.input.lock, 1.output.lock" in msgs[0]
    assert all(f.exists() for f in a) and not any(f.exists() for f in b) and not dead.exists()
    # and a new run on results is told that A writes there, and stopped at onstart
    locks.register_run("results")
    assert [r["pid"] for r in locks.runs_writing("results")] == [os.getppid()]
    assert [r["pid"] for r in locks.runs_writing("results/cells")] == [os.getppid()]  # nested folders overlap
    assert locks.runs_writing("resultsB") == []
    with pytest.raises(locks.ResultsInUse, match=f"pid {os.getppid()}.*do not use --unlock"):
        locks.claim_results("results")


def test_a_finishing_run_removes_only_its_own_lock_files(tmp_path, monkeypatch):
    """Snakemake's own _delete_locks removes the whole locks folder (other live runs' locks too)."""
    from snakemake.persistence.file import FilePersistence

    monkeypatch.chdir(tmp_path)
    for name in ("_delete_locks", "cleanup_locks", "_attention_dynamics_own_locks"):
        if name in vars(FilePersistence):
            monkeypatch.setattr(FilePersistence, name, vars(FilePersistence)[name])  # restored afterwards
    other = _lock(tmp_path, 0, "results")
    persistence = FilePersistence(path=tmp_path / ".snakemake")
    persistence._write_locks("input", ["resultsB/x"])
    persistence._write_locks("output", ["resultsB/y"])
    assert locks.keep_other_runs_locks()
    persistence.unlock()  # what Snakemake does when a run ends
    assert all(f.exists() for f in other)
    assert sorted(p.name for p in (tmp_path / ".snakemake" / "locks").iterdir()) == ["0.input.lock", "0.output.lock"]
    persistence.cleanup_locks()  # snakemake --unlock: every lock
    assert not (tmp_path / ".snakemake" / "locks").exists()


# ---------------------------------------------------------------------------------------------
# bad input: docs/bad_inputs.md is the data of these tests
# ---------------------------------------------------------------------------------------------
DOC = (ROOT / "docs" / "bad_inputs.md").read_text()
CONFIG_ROWS = re.findall(r"^\| (?P<label>.+?) \| `(?P<example>[^`]+)` \| `(?P<message>config key .+)` \|$", DOC, re.M)
CLI_ROWS = re.findall(r"^\| (?P<label>.+?) \| `(?P<command>attention-dynamics [^`]+)` \| `(?P<message>.+)` \|$",
                      DOC, re.M)
GENERATED_ROWS = re.findall(r"^\| (?P<label>.+?) \| `(?P<file>b[\"'].+|\".+)` \| `(?P<message>\"config key .+)` \|$",
                            DOC, re.M)
CHECK_CPU_SECONDS = 5.0  # every bad input stops within this much CPU time


def test_bad_input_table_covers_the_issue():
    labels = " / ".join(label for label, _, _ in CONFIG_ROWS + GENERATED_ROWS)
    for needed in ["unknown top-level key", "unknown key in a sweep", "integer given as a string", "β = 0",
                   "β < 0", "β = ∞", "β = NaN", "n < k", "d < 2", "cap radius ε = 0", "cap radius ε ≥ 1",
                   "empty grid", "t_max = 0", "t_max = ∞", "sweep name reused", "results folder below a file",
                   "results folder without write permission",
                   # issue 15: inputs that hung or crashed the check, or passed it and failed in a job
                   "alias bomb", "n = k = 20000", "β range with a million values", "masses whose sum overflows",
                   "sweep name of 300 characters", "sweep name ending in 20 repeats", "results folder with a wildcard",
                   "results folder name over 255 bytes", "n too large", "per_decade too large", "d too large",
                   "seeds too many", "emergence n too large", "results folder is the working directory",
                   "results folder inside `.snakemake`", "results folder in a system folder",
                   "results folder escaping into a system folder", "results folder holding a symbolic link",
                   "θ_c so small", "text in a reproduction's β list", "YAML syntax error", "config not UTF-8"]:
        assert needed in labels, needed
    rows = DOC.count("\n| ") - DOC.count("\n| bad input")
    assert len(CONFIG_ROWS) + len(CLI_ROWS) + len(GENERATED_ROWS) == rows  # every row parsed
    assert len(CLI_ROWS) >= 5 and len(GENERATED_ROWS) >= 4


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _check_stops(tmp_path: Path, monkeypatch, text: bytes, message: str) -> None:
    """``text`` as a config file stops in load_yaml_strict + load_plan (what Snakemake's start-up and
    `sweep check` run) with exactly ``message``, within CHECK_CPU_SECONDS, writing nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    (tmp_path / "ro").mkdir()
    if "no write permission" in message:
        (tmp_path / "ro").chmod(0o500)
        monkeypatch.setattr(paths.os, "access", lambda p, mode: False)  # root may write anyway
    if "Read-only file system" in message:
        def erofs(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(paths.tempfile, "mkstemp", erofs)
    if "symbolic link" in message:
        (tmp_path / "out" / "logs").mkdir(parents=True)
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "out" / "logs" / "cells").symlink_to(tmp_path / "elsewhere")
    cfg = tmp_path / "config.yaml"
    cfg.write_bytes(text)
    before = _tree(tmp_path)
    t0 = time.process_time()
    with pytest.raises(sw.ConfigError) as err:
        sw.load_plan(load_yaml_strict(cfg), configfiles=[str(cfg)])
    cpu = time.process_time() - t0
    got = str(err.value).replace(str(cfg), "<file>").replace(str(tmp_path), "<cwd>")
    assert got.replace(str(tmp_path.parent), "<cwd-parent>") == message
    assert cpu < CHECK_CPU_SECONDS, f"{cpu:.2f} s of CPU"
    assert _tree(tmp_path) == before  # nothing written


@pytest.mark.parametrize("label,example,message", CONFIG_ROWS, ids=[r[0] for r in CONFIG_ROWS])
def test_bad_input_table(tmp_path, monkeypatch, label, example, message):
    """Each documented bad config stops in load_plan (before any job) with exactly the documented message."""
    _check_stops(tmp_path, monkeypatch, (example + "\n").encode(), message)


@pytest.mark.parametrize("label,file,message", GENERATED_ROWS, ids=[r[0] for r in GENERATED_ROWS])
def test_generated_bad_input_table(tmp_path, monkeypatch, label, file, message):
    """The documented configs that are built by a Python expression (alias bomb, long names, not UTF-8)."""
    text = eval(file, {"__builtins__": {"range": range}}, {})  # noqa: S307 - the repository's own documentation
    if isinstance(text, str):
        text = text.encode()
    _check_stops(tmp_path, monkeypatch, text, eval(message, {"__builtins__": {}}, {}))  # noqa: S307


def _cli_rows() -> list[tuple[str, bytes, str]]:
    rows = [(label, (example + "\n").encode(), message) for label, example, message in CONFIG_ROWS]
    for label, file, message in GENERATED_ROWS:
        text = eval(file, {"__builtins__": {"range": range}}, {})  # noqa: S307 - the repository's own documentation
        rows.append((label, text if isinstance(text, bytes) else text.encode(),
                     eval(message, {"__builtins__": {}}, {})))  # noqa: S307
    return rows


@pytest.mark.slow
def test_bad_inputs_through_the_sweep_check_cli(tmp_path):
    """Every documented bad config through `python -m attention_dynamics.pipeline.sweep check` (what a
    user runs without Snakemake): status 2, the message, at most CHECK_CPU_SECONDS of CPU each."""
    import resource

    slowest = []
    for i, (label, text, message) in enumerate(_cli_rows()):
        if any(w in message for w in ("no write permission", "Read-only file system", "symbolic link")):
            continue  # need a patched or prepared file system: test_bad_input_table covers them
        wd = tmp_path / f"case{i}"
        wd.mkdir()
        (wd / "blocker").write_text("a file where a folder should be")
        cfg = wd / "config.yaml"
        cfg.write_bytes(text)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, "-m", "attention_dynamics.pipeline.sweep", "check", str(cfg)],
                             capture_output=True, text=True, cwd=wd, timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        got = out.stderr.strip().replace(str(cfg), "<file>").replace(str(wd), "<cwd>")
        assert out.returncode == 2 and got == f"ConfigError: {message}".replace("<cwd-parent>", str(tmp_path)), \
            (label, out.stderr[-2000:])
        assert cpu < CHECK_CPU_SECONDS, (label, cpu)
        slowest.append((cpu, label))
    print("slowest (CPU s, interpreter included):", sorted(slowest)[-3:])


GOOD = {  # once rejected or failing, now accepted
    "spacing = 2π, the inclusive bound": "{sweeps: {a: {k: 1, spacing: 6.283185307179586}}}",
    "min_angle = π, the inclusive bound": "{sweeps: {a: {k: 1, centres: random, min_angle: 3.141592653589793}}}",
    "a results folder outside the working directory": "{results: ../../tmp/x, sweeps: {a: {}}}",
    "n = k = 20000 with the limit raised (linear-time circle check)":
        "{limits: {max_n: 20000}, sweeps: {a: {k: 20000, n: 20000}}}",
}


@pytest.mark.parametrize("label", sorted(GOOD))
def test_inputs_once_rejected_are_accepted(tmp_path, monkeypatch, label):
    monkeypatch.chdir(tmp_path)
    t0 = time.process_time()
    plan = sw.check_config(yaml.safe_load(GOOD[label]), check_results=False)
    assert time.process_time() - t0 < CHECK_CPU_SECONDS
    assert len(plan.cells) == 1
    if "spacing" in label:
        assert plan.cells[0].params["spacing"] == 2 * math.pi  # not rounded past the bound
    if "min_angle" in label:
        assert plan.cells[0].params["min_angle"] == math.pi
        cell.validate_cell(plan.cells[0].params)
    if "outside" in label:
        assert f"results '../../tmp/x' is outside the working directory: the tables go to " \
               f"{os.path.realpath(tmp_path / '../../tmp/x')}" in plan.warnings


def test_results_folder_in_the_source_checkout_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for where in (ROOT, ROOT / "src", ROOT / "config" / "out"):
        with pytest.raises(sw.ConfigError, match="inside the package's source checkout"):
            sw.check_config({"results": str(where), "sweeps": {"a": {}}}, check_results=False)


def test_engine_rejects_a_number_given_as_text():
    from attention_dynamics.engine.simulate import simulate

    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for bad in ("10", b"10", True):
        with pytest.raises(ValueError, match="beta must be a positive number"):
            simulate(x, beta=bad, t_max=1.0)


@pytest.mark.parametrize("label,command,message", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_bad_cli_input_table(tmp_path, capsys, label, command, message):
    """Each documented bad command stops before any compute with the documented message, status 2."""
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in shlex.split(command)[1:]]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "out").exists()


def test_sweep_check_cli_prints_the_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("sweeps: {a: {n: 2, k: 3}}\n")
    err = _io.StringIO()
    with contextlib.redirect_stderr(err):
        assert sw.main(["check", str(bad)]) == 2
    assert err.getvalue().strip() == ("ConfigError: config key 'sweeps.a.n': n=2 < k=3 (key k): caps/gaussian "
                                      "need at least one particle per cluster")
