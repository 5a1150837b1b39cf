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
import pyarrow.parquet as pq
import pytest
import yaml

from attention_dynamics import cli
from attention_dynamics.pipeline import cell
from attention_dynamics.pipeline import io
from attention_dynamics.pipeline import sweep as sw

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "attention_dynamics"

# Two point-like caps at a right angle, 4 β values. The solver needs 65–87 steps up to β = 12 and
# 101–106 at β = 16 (measured, both models, 8 seeds): max_steps = 95 makes every β = 16 run fail,
# which the sweep must record and survive, and the fits must count.
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
    n: 8
    k: 2
    eps: 1.0e-5
    spacing: 1.5707963267949
    beta: [8, 10, 12, 16]
    max_steps: 95
    seeds: 8
fits:
  n_boot: 50
plots:
  max_panels: 2
  n_betas: 2
jobs:
  max_cells: 2       # two simulate_chunk jobs of two cells
"""
PLAN = sw.check_config(yaml.safe_load(SWEEP), check_results=False)
TABLES = ["runs", "events", "lifetimes", "trajectories", "fits"]
TARGETS = [f"results/tables/{t}.parquet" for t in TABLES]
PLOTS = [f"results/plots/pairs/{k}.png" for k in ("staircase", "clusters", "times", "lifetimes")]
CELL_TABLES = ["runs", "events", "lifetimes", "trajectories"]


def _command(wd: Path, targets) -> list[str]:
    """`snakemake <targets> --configfile sweep.yaml --cores 2`, the workflow of this checkout run in ``wd``
    (its default profile applies: rerun-incomplete, keep-going, ...)."""
    return [sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(wd),
            "--configfile", str(wd / "sweep.yaml"), "--cores", "2"]


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
          f"{len(state['marked']) // 4} job(s) cut off; restart took {timeline['restart_s']:.1f} s")
    return state


def test_kill_left_a_stale_lock_and_cut_off_jobs(interrupted):
    """The scenario is the one a user meets: a lock left behind, a job cut off mid-way."""
    assert {"0.input.lock", "0.output.lock", io.OWNER_FILE} <= set(interrupted["locks"]), interrupted["locks"]
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
# numerical faults: recorded, never fatal; fits count them
# ---------------------------------------------------------------------------------------------
def test_failed_runs_are_recorded_and_the_sweep_goes_on(reference):
    runs = pq.read_table(reference / "results" / "tables" / "runs.parquet").to_pandas()
    assert len(runs) == PLAN.n_simulations() == 32
    bad = runs[runs["beta"] == 16.0]
    assert (bad["status"] == "failed").all() and len(bad) == 8
    assert bad["reason"].str.fullmatch(r"max_steps=95 reached at t=\S+").all(), bad["reason"].tolist()
    assert (bad["max_steps"] == 95).all()
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
    row, events, lifetimes, trajectory = cell.run_one(SMALL, 0)
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
}


def test_every_writer_goes_through_the_atomic_helpers():
    offenders = []
    files = [p for p in PACKAGE.glob("*.py") if p.name != "io.py"] + list((ROOT / "workflow" / "scripts").glob("*.py"))
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
def _locked(folder: Path, **owner) -> Path:
    locks = folder / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/a\n")
    (locks / "0.output.lock").write_text("results/b\n")
    if owner:
        (locks / io.OWNER_FILE).write_text(json.dumps(owner))
    return locks


def test_record_lock_owner(tmp_path):
    path = io.record_lock_owner(tmp_path / ".snakemake")
    owner = json.loads(path.read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert io.clear_stale_lock(tmp_path / ".snakemake") is None and path.exists()  # our own lock: kept


@pytest.mark.parametrize("case", ["dead", "reused", "rebooted"])
def test_lock_of_a_dead_run_is_removed(tmp_path, case):
    pid = _dead_pid() if case == "dead" else os.getppid()
    owner = {"host": socket.gethostname(), "pid": pid, "start": io._proc_start(pid), "boot_id": io._boot_id()}
    if case == "reused":
        if not owner["start"]:
            pytest.skip("no /proc: pid reuse cannot be detected")
        owner["start"] = "1"
    if case == "rebooted":
        if not owner["boot_id"]:
            pytest.skip("no boot id on this system")
        owner["boot_id"] = "another-boot"
    locks = _locked(tmp_path, **owner)
    msg = io.clear_stale_lock(tmp_path / ".snakemake")
    assert msg and f"pid {pid}" in msg
    assert list(locks.iterdir()) == []


@pytest.mark.parametrize("case", ["alive", "other_host", "no_owner", "garbled"])
def test_lock_of_a_live_or_unknown_run_is_kept(tmp_path, case):
    pid = os.getppid()
    owner = {"alive": {"host": socket.gethostname(), "pid": pid, "start": io._proc_start(pid)},
             "other_host": {"host": "elsewhere", "pid": _dead_pid()},
             "no_owner": {}, "garbled": {"host": socket.gethostname()}}[case]
    locks = _locked(tmp_path, **owner)
    before = sorted(p.name for p in locks.iterdir())
    assert io.clear_stale_lock(tmp_path / ".snakemake") is None
    assert sorted(p.name for p in locks.iterdir()) == before


# ---------------------------------------------------------------------------------------------
# bad input: docs/bad_inputs.md is the data of these tests
# ---------------------------------------------------------------------------------------------
DOC = (ROOT / "docs" / "bad_inputs.md").read_text()
CONFIG_ROWS = re.findall(r"^\| (?P<label>.+?) \| `(?P<example>[^`]+)` \| `(?P<message>config key .+)` \|$", DOC, re.M)
CLI_ROWS = re.findall(r"^\| (?P<label>.+?) \| `(?P<command>attention-dynamics [^`]+)` \| `(?P<message>.+)` \|$",
                      DOC, re.M)


def test_bad_input_table_covers_the_issue():
    labels = " / ".join(label for label, _, _ in CONFIG_ROWS)
    for needed in ["unknown top-level key", "unknown key in a sweep", "integer given as a string", "β = 0",
                   "β < 0", "β = ∞", "β = NaN", "n < k", "d < 2", "cap radius ε = 0", "cap radius ε ≥ 1",
                   "empty grid", "t_max = 0", "t_max = ∞", "sweep name reused", "results folder below a file",
                   "results folder without write permission"]:
        assert needed in labels, needed
    assert len(CONFIG_ROWS) == DOC.count("\n| ") - DOC.count("\n| bad input") - len(CLI_ROWS)  # every row parsed
    assert len(CLI_ROWS) >= 5


@pytest.mark.parametrize("label,example,message", CONFIG_ROWS, ids=[r[0] for r in CONFIG_ROWS])
def test_bad_input_table(tmp_path, monkeypatch, label, example, message):
    """Each documented bad config stops in load_plan (before any job) with exactly the documented message."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    (tmp_path / "ro").mkdir()
    if "no write permission" in message:
        (tmp_path / "ro").chmod(0o500)
        monkeypatch.setattr(sw.os, "access", lambda p, mode: False)  # root may write anyway
    if "Read-only file system" in message:
        def erofs(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(sw.tempfile, "mkstemp", erofs)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(example + "\n")
    with pytest.raises(sw.ConfigError) as err:
        sw.load_plan(yaml.safe_load(example), configfiles=[str(cfg)])
    got = str(err.value).replace(str(cfg), "<file>").replace(str(tmp_path), "<cwd>")
    assert got == message
    assert not (tmp_path / "results").exists() and not (tmp_path / "out").exists()


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
