"""Chunk runner, cell cache, resource model and SLURM driver helpers (issues 14.4 and 16), without SLURM.

The end-to-end behaviour on a real SLURM is in tests/test_slurm.py (marker slurm).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from attention_dynamics.pipeline import cell, cellcache, resources, runner, slurm
from attention_dynamics.pipeline import sweep as sw

ROOT = Path(__file__).resolve().parents[1]
# small and fast: two caps, one merge at t ≈ 1e2 (a few 10 ms per seed)
BASE = dict(model="usa", init="caps", n=8, k=2, d=3, eps=1e-3, spacing=1.2, t_max=1e6, per_decade=4)
TABLES = cellcache.TABLE_NAMES


def _specs(betas=(8.0, 9.0, 10.0), seeds=2, sweep="unit"):
    return [runner.CellSpec(path=f"{sweep}/beta~{b:g}", cell={"sweep": sweep, **BASE, "beta": b},
                            seeds=list(range(seeds)), predicted=b) for b in betas]


def _read(path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas().drop(columns=["wall_seconds"], errors="ignore")


def _silent():
    return open(os.devnull, "w")


# ------------------------------------------------------------------------------------------
# the runner computes what run_cell computes
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [1, 2])
def test_chunk_tables_equal_run_cell(tmp_path, jobs):
    """Every cell of a chunk (in a pool of 2 workers or in-process) has exactly the tables of a
    one-cell run_cell, and link-cell puts them at the per-cell paths as hard links."""
    specs = _specs()
    manifest = tmp_path / "chunk.json"
    report = runner.run_chunk(specs, base_seed=3, cache_root=tmp_path / "cache", jobs=jobs, manifest=manifest,
                              chunk="000", log=_silent())
    assert report.ok and sorted(report.computed) == sorted(s.path for s in specs) and not report.reused
    record = json.loads(manifest.read_text())
    assert set(record["cells"]) == {s.path for s in specs}
    for spec in specs:
        ref = tmp_path / "ref" / spec.path
        cell.run_cell(spec.cell, spec.seeds, ref, base_seed=3)
        out = tmp_path / "cells" / spec.path
        bench = tmp_path / "bench" / f"{spec.path}.tsv"
        assert runner.link_cell(manifest, spec.path, spec.cell, out, benchmark=bench, log=_silent()) == 0
        for t in TABLES:
            pd.testing.assert_frame_equal(_read(out / f"{t}.parquet"), _read(ref / f"{t}.parquet"), check_exact=True)
            entry_file = Path(record["cells"][spec.path]["entry"]) / f"{t}.parquet.cached"
            assert os.stat(out / f"{t}.parquet").st_ino == os.stat(entry_file).st_ino  # a hard link
        meta = pq.read_schema(out / "runs.parquet").metadata
        assert json.loads(meta[b"cell"]) == cell.canonical_cell(spec.cell)
        assert json.loads(meta[b"seeds"]) == spec.seeds and json.loads(meta[b"base_seed"]) == 3
        row = pd.read_csv(bench, sep="\t").iloc[0]
        assert row["seeds"] == 2 and row["cpu_time"] > 0 and row["max_rss"] > 0
        assert json.loads(row["cell"]) == cell.canonical_cell(spec.cell)


def test_finished_cells_are_reused_and_damaged_entries_recomputed(tmp_path):
    specs = _specs()
    cache = tmp_path / "cache"
    first = runner.run_chunk(specs, base_seed=0, cache_root=cache, jobs=1, log=_silent())
    assert len(first.computed) == 3
    # a resubmitted chunk: every cell reused, nothing simulated
    again = runner.run_chunk(_specs(), base_seed=0, cache_root=cache, jobs=1, log=_silent())
    assert sorted(again.reused) == sorted(s.path for s in specs) and not again.computed
    # one entry damaged (a flipped byte), one half-written (no entry.json): both recomputed
    mats = [cellcache.key_material(s.cell, s.seeds, 0) for s in specs]
    damaged, partial = (cellcache.entry_dir(cache, m) for m in mats[:2])
    f = damaged / "events.parquet.cached"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    (partial / "entry.json").unlink()
    third = runner.run_chunk(_specs(), base_seed=0, cache_root=cache, jobs=1, log=_silent())
    assert sorted(third.computed) == sorted([specs[0].path, specs[1].path]) and third.reused == [specs[2].path]
    assert cellcache.read_entry(damaged, mats[0]) is not None


def test_cache_key_holds_what_changes_numbers():
    c = {"sweep": "a", **BASE, "beta": 8.0}
    key = cellcache.entry_key(cellcache.key_material(c, 2, 0))
    variants = [cellcache.key_material(c, 3, 0), cellcache.key_material(c, [0, 2], 0),
                cellcache.key_material(c, 2, 1), cellcache.key_material({**c, "beta": 8.5}, 2, 0),
                cellcache.key_material({**c, "sweep": "b"}, 2, 0), cellcache.key_material({**c, "rtol": 1e-9}, 2, 0),
                {**cellcache.key_material(c, 2, 0), "code": "another package source"}]
    keys = {cellcache.entry_key(m) for m in variants}
    assert key not in keys and len(keys) == len(variants)
    # defaults written out or left implicit: the same cell, the same key
    implicit = {"sweep": "a", "n": 8, "k": 2, "d": 3, "eps": 1e-3, "spacing": 1.2, "t_max": 1e6, "per_decade": 4,
                "beta": 8.0}
    assert cellcache.entry_key(cellcache.key_material(implicit, 2, 0)) == key
    fp = cellcache.code_fingerprint()
    assert len(fp) == 64 and fp == cellcache.code_fingerprint()


def test_failing_cell_does_not_stop_the_others(tmp_path):
    """A cell that raises is reported; the others are computed and cached; no manifest."""
    specs = _specs(betas=(8.0, 9.0))
    bad = runner.CellSpec(path="unit/bad", cell={"sweep": "unit", **BASE, "beta": 8.0, "n": 1, "k": 2}, seeds=[0, 1])
    manifest = tmp_path / "m.json"
    report = runner.run_chunk([specs[0], bad, specs[1]], base_seed=0, cache_root=tmp_path / "cache", jobs=2,
                              manifest=manifest, log=_silent())
    assert list(report.failed) == ["unit/bad"] and "n must be >= k" in report.failed["unit/bad"]
    assert sorted(report.computed) == sorted(s.path for s in specs)
    assert not manifest.exists()
    assert runner.run_chunk(specs, base_seed=0, cache_root=tmp_path / "cache", jobs=1, log=_silent()).reused


def _dies_at_beta_9(cell_, seed, base_seed):
    if cell_["beta"] == 9.0:
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer does
    return _REAL_SIMULATE_SEED(cell_, seed, base_seed)


_REAL_SIMULATE_SEED = runner._simulate_seed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_killed_worker_loses_only_its_cell(tmp_path, monkeypatch):
    """A worker killed by a signal breaks the pool: the unfinished cells are retried in a new pool,
    the cell that kills its worker every time is given up, the others are computed."""
    monkeypatch.setattr(runner, "_simulate_seed", _dies_at_beta_9)
    log = tmp_path / "log"
    with open(log, "w") as fh:
        report = runner.run_chunk(_specs(betas=(8.0, 9.0, 10.0, 11.0)), base_seed=0, cache_root=tmp_path / "cache",
                                  jobs=2, manifest=tmp_path / "m.json", log=fh)
    assert list(report.failed) == ["unit/beta~9"], log.read_text()
    assert sorted(report.computed) == ["unit/beta~10", "unit/beta~11", "unit/beta~8"]
    assert "a worker process died" in log.read_text() and not (tmp_path / "m.json").exists()


def test_link_cell_refuses_a_missing_or_stale_entry(tmp_path):
    specs = _specs(betas=(8.0,))
    manifest = tmp_path / "m.json"
    assert runner.run_chunk(specs, base_seed=0, cache_root=tmp_path / "cache", jobs=1, manifest=manifest,
                            log=_silent()).ok
    text = manifest.read_text()
    spec = specs[0]
    # other parameters than the entry holds (the rule's params changed): refused, manifest removed
    assert runner.link_cell(manifest, spec.path, {**spec.cell, "beta": 8.5}, tmp_path / "o", log=_silent()) == 1
    assert not manifest.exists() and not (tmp_path / "o").exists()
    # the cache entry deleted: refused, manifest removed (the next run recomputes the cell)
    manifest.write_text(text)
    entry = Path(json.loads(text)["cells"][spec.path]["entry"])
    (entry / "runs.parquet.cached").unlink()
    assert runner.link_cell(manifest, spec.path, spec.cell, tmp_path / "o", log=_silent()) == 1
    assert not manifest.exists()
    # a cell the manifest does not list
    manifest.write_text(text)
    assert runner.link_cell(manifest, "unit/other", spec.cell, tmp_path / "o", log=_silent()) == 1


def test_parse_cells_rejects_bad_input():
    with pytest.raises(ValueError, match="not valid JSON"):
        runner.parse_cells("[{")
    with pytest.raises(ValueError, match="non-empty JSON list"):
        runner.parse_cells("[]")
    with pytest.raises(ValueError, match="keys path, cell, seeds"):
        runner.parse_cells('[{"path": "a"}]')
    with pytest.raises(ValueError, match="twice"):
        runner.parse_cells('[{"path": "a", "cell": {}, "seeds": 1}, {"path": "a", "cell": {}, "seeds": 2}]')
    (c,) = runner.parse_cells('[{"path": "a/b", "cell": {"n": 8}, "seeds": 3, "predicted": 1.5}]')
    assert c.seeds == [0, 1, 2] and c.predicted == 1.5


def test_lean_command_line_imports():
    """link-cell (one per grid cell) and --help run without numpy, scipy or pandas (issue 14.4)."""
    code = textwrap.dedent("""
        import sys
        from attention_dynamics import cli
        try:
            cli.main(["link-cell", "--help"])
        except SystemExit:
            pass
        import attention_dynamics.pipeline.runner, attention_dynamics.pipeline.io
        heavy = sorted(m for m in ("numpy", "scipy", "pandas", "pyarrow", "numba") if m in sys.modules)
        print("HEAVY:" + ",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:", out.stdout[-300:]


# ------------------------------------------------------------------------------------------
# resource model, packing, requests
# ------------------------------------------------------------------------------------------
def test_lpt_makespan_against_brute_force():
    rng = random.Random(1)
    for _ in range(60):
        d = [rng.uniform(0.1, 5.0) for _ in range(rng.randint(1, 7))]
        w = rng.randint(1, 3)
        best = min(max(sum(x for x, a in zip(d, assign) if a == k) for k in range(w))
                   for assign in itertools.product(range(w), repeat=len(d)))
        lpt = resources.lpt_makespan(d, w)
        assert best - 1e-12 <= lpt <= (4 / 3 - 1 / (3 * w)) * best + 1e-12  # Graham's bound
    assert resources.lpt_makespan([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0
    assert resources.lpt_makespan([], 4) == 0.0


def _plan(text):
    return sw.check_config(yaml.safe_load(text), check_results=False)


PLAN_TEXT = """
sweeps:
  a: {n: 16, k: 2, eps: 1.0e-5, spacing: 1.5, beta: {start: 5, stop: 40, num: 8}, model: [sa, usa], seeds: 10}
  b: {n: [16, 64], k: 3, spacing: 0.8, beta: [10, 20], seeds: 4}
"""


@pytest.mark.parametrize("cpu_minutes,max_cells", [(10.0, 200), (0.05, 200), (10.0, 3), (1e-6, 200)])
# 10 CPU-min: one chunk across both sweeps; 0.05: several; 3 cells; 1e-6: one cell each
def test_plan_chunks_covers_every_cell_once_within_budget(cpu_minutes, max_cells):
    plan = _plan(PLAN_TEXT)
    chunks, registry = resources.plan_chunks(plan, {"cpu_minutes": cpu_minutes, "cells_per_job": max_cells})
    paths = [p for ch in chunks.values() for p in ch.paths]
    assert paths == [f"{c.sweep}/{c.path}" for c in plan.cells]  # every cell exactly once, in plan order
    assert list(chunks) == [f"{i:03d}" for i in range(len(chunks))]
    of = resources.chunk_of_cells(plan, chunks)
    for name, ch in chunks.items():
        assert name == ch.name and 1 <= len(ch.items) <= max_cells
        assert ch.cpu_seconds <= 60 * cpu_minutes or len(ch.items) == 1  # over budget only when one cell is
        assert [s.path for s in runner.parse_cells(ch.cells_json())] == ch.paths
        assert all(of[tuple(p.split("/", 1))] == name for p in ch.paths)
    # deterministic; the registry reproduces the same chunks
    again, _ = resources.plan_chunks(plan, {"cpu_minutes": cpu_minutes, "cells_per_job": max_cells})
    assert {n: ch.paths for n, ch in again.items()} == {n: ch.paths for n, ch in chunks.items()}
    reread, same = resources.plan_chunks(plan, {"cpu_minutes": cpu_minutes, "cells_per_job": max_cells},
                                         registry=registry)
    assert {n: ch.items for n, ch in reread.items()} == {n: ch.items for n, ch in chunks.items()} and same == registry


def test_chunks_are_immutable_new_cells_go_to_new_chunks(tmp_path):
    """Adding β values (and changing a cell) leaves every existing chunk as it was: only new chunks
    appear, holding exactly the new or changed cells (so nothing that exists runs again)."""
    plan = _plan(PLAN_TEXT)
    chunks, registry = resources.plan_chunks(plan, {"cpu_minutes": 0.05})
    path = tmp_path / "chunks.json"
    assert resources.write_registry(path, registry) and not resources.write_registry(path, registry)
    bigger = _plan(PLAN_TEXT.replace("beta: [10, 20]", "beta: [10, 15, 20, 25]").replace("num: 8", "num: 15"))
    chunks2, registry2 = resources.plan_chunks(bigger, {"cpu_minutes": 0.05}, registry=resources.read_registry(path))
    for name, ch in chunks.items():
        assert chunks2[name].items == ch.items
    old = {p for ch in chunks.values() for p in ch.paths}
    added = [p for n, ch in chunks2.items() if n not in chunks for p in ch.paths]
    assert sorted(added) == sorted(f"{c.sweep}/{c.path}" for c in bigger.cells if f"{c.sweep}/{c.path}" not in old)
    assert min(int(n) for n in chunks2 if n not in chunks) == len(chunks)
    of = resources.chunk_of_cells(bigger, chunks2)
    assert len(of) == len(bigger.cells)
    # a changed parameter (here the seeds) makes a cell new: a new chunk, never an old one
    fewer = _plan(PLAN_TEXT.replace("seeds: 4", "seeds: 3"))
    chunks3, _ = resources.plan_chunks(fewer, {"cpu_minutes": 0.05}, registry=registry2)
    of3 = resources.chunk_of_cells(fewer, chunks3)
    assert {of3[(c.sweep, c.path)] for c in fewer.cells if c.sweep == "b"}.isdisjoint(chunks2)
    # another base seed: everything new
    reseeded = sw.check_config({**yaml.safe_load(PLAN_TEXT), "base_seed": 7}, check_results=False)
    chunks4, _ = resources.plan_chunks(reseeded, {"cpu_minutes": 0.05}, registry=registry2)
    assert set(resources.chunk_of_cells(reseeded, chunks4).values()).isdisjoint(chunks2)
    # an unreadable registry: packed anew
    path.write_text("{not json")
    assert resources.read_registry(path)["chunks"] == {}


def test_requests_grow_with_attempts_and_cover_the_makespan():
    plan = _plan(PLAN_TEXT)
    chunks, _ = resources.plan_chunks(plan, {"cpu_minutes": 10.0, "runtime_factor": 2.0, "attempt_growth": 3.0})
    (ch, *_) = chunks.values()
    for threads in (1, 2, 8):
        span = ch.makespan(threads)
        longest = max(it["predicted"] / it["seeds"] for it in ch.items)
        assert span >= ch.cpu_seconds / threads - 1e-9 and span >= longest - 1e-9
        need = 2.0 * span + resources.START_SECONDS
        for attempt in (1, 2, 3):
            minutes = ch.runtime_min(threads, attempt)
            assert need * 3 ** (attempt - 1) <= minutes * 60 + 1e-6 < need * 3 ** (attempt - 1) + 60
        total = resources.PARENT_MB + threads * ch.worker_mb
        for attempt in (1, 2):
            assert total * 3 ** (attempt - 1) <= ch.mem_mb(threads, attempt) < total * 3 ** (attempt - 1) + 1
    assert ch.runtime_min(1) >= ch.runtime_min(8)


@pytest.mark.parametrize("predicted,seeds,threads", [(5.0, 10, 1), (29.9, 10, 1), (60.0, 10, 2), (600.0, 10, 10),
                                                     (600.0, 4, 4), (1e5, 400, 400)])
def test_chunk_threads_keep_every_worker_busy(predicted, seeds, threads):
    """A chunk asks for one worker per MIN_WORKER_SECONDS predicted CPU-s (≥ 1, ≤ its simulations):
    a small chunk does not hold CPUs that would idle while the job starts."""
    ch = resources.Chunk(name="000", items=[{"path": "a/b", "cell": {}, "seeds": seeds, "predicted": predicted}],
                         worker_mb=200.0)
    assert ch.max_threads == threads
    assert resources.MIN_WORKER_SECONDS * ch.max_threads <= max(predicted, resources.MIN_WORKER_SECONDS) + 1e-9


def test_calibrate_recovers_a_known_model():
    rng = np.random.default_rng(5)
    truth = {"const": -6.0, "log_n": 0.3, "log_beta": 0.6, "log_k": 1.2, "log_d": 0.1, "usa": 0.05,
             "gaussian": -0.2, "uniform": 0.0, "random_centres": 0.2, "log_spacing": 1.0, "loglog_tmax": 0.3}
    model = resources.ResourceModel(coef=truth, sigma=0.0, mem_base_mb=200, mem_per_n2_mb=50)
    rows = []
    for i in range(300):
        c = {"n": int(rng.choice([16, 64, 256])), "beta": float(rng.uniform(5, 60)), "k": int(rng.choice([2, 3, 4])),
             "d": int(rng.choice([2, 3, 8])), "model": str(rng.choice(["sa", "usa"])),
             "init": str(rng.choice(["caps", "gaussian"])), "centres": str(rng.choice(["circle", "random"])),
             "spacing": float(rng.uniform(0.5, 2.0)), "t_max": float(10 ** rng.uniform(6, 60))}
        t = model.seed_seconds(c) * math.exp(rng.normal(0, 0.01))
        rows.append({"cell": c, "seeds": 2, "cpu_per_seed": t, "max_rss_mb": 200 + 50 * (c["n"] / 1000) ** 2})
    fit, report = resources.calibrate(rows)
    for name, value in truth.items():
        if name != "uniform":
            assert abs(fit.coef[name] - value) < 0.05, (name, fit.coef[name], value)
    assert report["unused_features"] == ["uniform"] and 0.005 < fit.sigma < 0.02
    assert 0.9 < report["ratio_median"] < 1.1
    assert fit.mem_base_mb >= 200 and fit.worker_mb({"n": 256}) >= 200 + 50 * 0.256 ** 2


def test_calibrate_reads_benchmark_files_and_cache_entries(tmp_path):
    """The calibration input written by a real chunk: entries and link-cell benchmark files."""
    specs = _specs(betas=(8.0, 9.0))
    manifest = tmp_path / "m.json"
    runner.run_chunk(specs, base_seed=0, cache_root=tmp_path / "cache", jobs=1, manifest=manifest, log=_silent())
    for s in specs:
        runner.link_cell(manifest, s.path, s.cell, tmp_path / "out" / s.path,
                         benchmark=tmp_path / "bench" / "cells" / f"{s.path}.tsv", log=_silent())
    (tmp_path / "bench" / "other.tsv").write_text("s\th:m:s\tcpu_time\n1.0\t0:00:01\t0.5\n")  # another rule: skipped
    for where in ("bench", "cache"):
        rows = resources.read_benchmarks([tmp_path / where])
        assert len(rows) == 2 and all(r["seeds"] == 2 and r["cpu_per_seed"] > 0 for r in rows)
        assert {r["cell"]["beta"] for r in rows} == {8.0, 9.0}


@pytest.mark.parametrize("section,key", [
    ({"cpu_minute": 3}, "jobs.cpu_minute"), ({"cpu_minutes": 0}, "jobs.cpu_minutes"),
    ({"cells_per_job": 1.5}, "jobs.cells_per_job"), ({"runtime_factor": 0.5}, "jobs.runtime_factor"),
    ({"attempt_growth": "x"}, "jobs.attempt_growth"), ({"model": "/nonexistent.yaml"}, "jobs.model"),
    ("fast", "jobs"),
])
def test_bad_jobs_section_names_the_key(section, key):
    with pytest.raises(sw.ConfigError) as err:
        sw.check_config({"sweeps": {"a": {"n": 8, "k": 2}}, "jobs": section}, check_results=False)
    assert err.value.key == key, str(err.value)


def test_jobs_section_does_not_change_the_config_hash():
    a = sw.check_config({"sweeps": {"a": {"n": 8, "k": 2}}}, check_results=False)
    b = sw.check_config({"sweeps": {"a": {"n": 8, "k": 2}}, "jobs": {"cpu_minutes": 1}}, check_results=False)
    assert a.hash == b.hash


def test_model_file_round_trip(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(resources.DEFAULT_MODEL.as_dict()))
    m = resources.ResourceModel.load(path)
    c = {"sweep": "a", **BASE, "beta": 20.0}
    assert m.seed_seconds(c) == pytest.approx(resources.DEFAULT_MODEL.seed_seconds(c))
    assert resources.jobs_config({"model": str(path)})["model"] == str(path)
    path.write_text("coef: 3\n")
    with pytest.raises(ValueError, match="not a resource model file"):
        resources.ResourceModel.load(path)


# ------------------------------------------------------------------------------------------
# SLURM driver helpers, with fake squeue/scancel
# ------------------------------------------------------------------------------------------
def test_sacct_durations():
    assert slurm._seconds("00:01.500") == 1.5
    assert slurm._seconds("01:02:03") == 3723.0
    assert slurm._seconds("2-00:00:01") == 172801.0
    assert slurm._seconds("") == 0.0


def test_run_names_and_real_runs():
    assert slurm.RUN_NAME.match("attention-dynamics_0c6fbc2e-3d3a-4b53-9a34-4d1c9d3c9a10")
    assert slurm.RUN_NAME.match("0c6fbc2e-3d3a-4b53-9a34-4d1c9d3c9a10")
    assert not slurm.RUN_NAME.match("my-interactive-job")
    assert slurm.is_real_run(["--profile", "p", "--cores", "2"])
    assert not slurm.is_real_run(["-n"]) and not slurm.is_real_run(["--dry-run"]) and not slurm.is_real_run(["--lint"])


def _fake_slurm(tmp_path, workdir, states):
    """squeue prints the jobs listed in a state file; scancel empties it and logs its arguments."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    jobs = tmp_path / "jobs.txt"
    name = "attention-dynamics_0c6fbc2e-3d3a-4b53-9a34-4d1c9d3c9a10"
    jobs.write_text("".join(f"{100 + i}|{name}|{s}|{workdir}|rule_simulate_chunk_wildcards_a_00{i}\n"
                            for i, s in enumerate(states))
                    + f"999|interactive|RUNNING|{workdir}|\n" + f"998|{name}|RUNNING|/elsewhere|\n")
    (bin_ / "squeue").write_text(f"#!/bin/sh\ncat {jobs}\n")
    (bin_ / "scancel").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/cancelled\n: > {jobs}\n")
    for f in bin_.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return bin_, jobs


def test_previous_jobs_are_waited_for_or_cancelled(tmp_path, monkeypatch):
    wd = tmp_path / "wd"
    wd.mkdir()
    bin_, jobs = _fake_slurm(tmp_path, wd, ["RUNNING", "PENDING"])
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    found = slurm.queued_jobs(wd)
    assert [j.jobid for j in found] == ["100", "101"]  # not the interactive job, not another directory
    msgs = []
    # a dry run only reports
    assert len(slurm.handle_previous_jobs(wd, log=msgs.append, argv=["-n"])) == 2 and jobs.read_text()
    # cancel
    assert len(slurm.handle_previous_jobs(wd, policy="cancel", log=msgs.append, poll=0.01, argv=[])) == 2
    assert (tmp_path / "cancelled").read_text().split() == ["100", "101"]
    # wait: returns once squeue no longer lists them
    bin_2 = tmp_path / "b2"
    jobs.write_text(f"100|0c6fbc2e-3d3a-4b53-9a34-4d1c9d3c9a10|RUNNING|{wd}|rule_x\n")
    calls = tmp_path / "calls"
    (bin_ / "squeue").write_text(f"#!/bin/sh\necho x >> {calls}\n[ $(wc -l < {calls}) -ge 3 ] && : > {jobs}\n"
                                 f"cat {jobs}\n")
    msgs.clear()
    assert len(slurm.handle_previous_jobs(wd, log=msgs.append, poll=0.01, argv=[])) == 1
    assert "waiting for 1 SLURM job" in msgs[0] and "finished" in msgs[-1]
    # a live driver holds the lock: its jobs are not leftovers
    (wd / ".snakemake" / "locks").mkdir(parents=True)
    (wd / ".snakemake" / "locks" / "0.input.lock").write_text("x")
    jobs.write_text(f"100|0c6fbc2e-3d3a-4b53-9a34-4d1c9d3c9a10|RUNNING|{wd}|rule_x\n")
    assert slurm.handle_previous_jobs(wd, policy="cancel", log=msgs.append, argv=[]) == []
    del bin_2


SNAKEMAKE_LOG = """\
SLURM run ID: attention-dynamics_0c6fbc2e-3d3a-4b53-9a34-4d1c9d3c9a10
Job 3 has been submitted with SLURM jobid 41 (log: /w/.snakemake/slurm_logs/rule_simulate_chunk/pairs_000/41.log).
Job 4 has been submitted with SLURM jobid 42 (log: /w/.snakemake/slurm_logs/rule_simulate_chunk/pairs_001/42.log).
Error in rule simulate_chunk:
    message: SLURM-job '41' failed, SLURM status is: 'TIMEOUT'. Detailed failure reason unavailable (status command is not 'sacct').
Error in rule simulate_chunk:
    message: SLURM-job '42' failed, SLURM status is: 'CANCELLED'. Detailed failure reason unavailable (status command is not 'sacct').
"""


def test_failure_summary_leads_with_the_state(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sacct: the log alone
    log = tmp_path / "x.snakemake.log"
    log.write_text(SNAKEMAKE_LOG)
    lines = slurm.failure_summary(log, out=lambda s: None)
    assert lines[1].lstrip().startswith("TIMEOUT") and "job 41" in lines[1]
    assert "/w/.snakemake/slurm_logs/rule_simulate_chunk/pairs_000/41.log" in lines[1]
    assert lines[2].lstrip().startswith("CANCELLED") and "42.log" in lines[2]
    assert slurm.failure_summary(tmp_path / "missing.log", out=lambda s: None) == []


# ------------------------------------------------------------------------------------------
# pre-flight and SIGTERM, with a fake sbatch/sacctmgr/sinfo on PATH (no SLURM needed)
# ------------------------------------------------------------------------------------------
def _fake_workflow(*requests, no_account=False):
    """What slurm.preflight reads of Snakemake's workflow: executor settings and the jobs to run."""
    from types import SimpleNamespace as NS

    jobs = [NS(name=rule, is_local=local, threads=threads, resources=res)
            for rule, local, threads, res in requests]
    return NS(executor_settings=NS(no_account=no_account, qos=None),
              dag=NS(needrun_jobs=lambda: jobs), executor_plugin=NS(name="slurm"))


def _fake_sbatch(tmp_path):
    """sbatch --test-only refuses partition "bogus" with SLURM's words, accepts the rest; every call
    is logged; sacctmgr lists the accounts attention and other; sinfo lists partition main."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = tmp_path / "sbatch_calls"
    (bin_ / "sbatch").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> {calls}
        case " $* " in
          *" -p bogus "*) echo "sbatch: error: invalid partition specified: bogus" >&2
                          echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2
                          exit 1;;
        esac
        echo "sbatch: Job 7 to start at 2026-01-01T00:00:00 using 2 processors on nodes vm in partition main" >&2
        """))
    (bin_ / "sacctmgr").write_text("#!/bin/sh\nprintf 'attention\\nother\\n'\n")
    (bin_ / "sinfo").write_text("#!/bin/sh\necho 'PARTITION AVAIL TIMELIMIT NODES(A/I/O/T) NODELIST'\n"
                                "echo 'main*     up    infinite  0/1/0/1        vm'\n")
    for f in bin_.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return bin_, calls


def test_preflight_stops_with_sbatchs_words(tmp_path, monkeypatch):
    bin_, calls = _fake_sbatch(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    chunk = {"slurm_partition": "main", "slurm_account": "attention", "mem_mb": 821, "runtime": 2}
    post = {**chunk, "mem_mb": 4000, "runtime": 30}
    ok = _fake_workflow(("simulate_chunk", False, 2, chunk), ("simulate_chunk", False, 2, dict(chunk)),
                        ("aggregate", False, 1, post), ("simulate_cell", True, 1, {}))
    msgs = []
    assert slurm.preflight(ok, log=msgs.append) == 2  # identical requests once; local jobs not at all
    lines = calls.read_text().splitlines()
    assert len(lines) == 2 and all(line.startswith("--test-only") for line in lines)
    assert "--cpus-per-task=2 -t 2 --mem 821 -p main -A attention" in lines[0]  # the largest request first
    assert "accepts all 2 distinct request(s)" in msgs[0]

    bad = _fake_workflow(("simulate_chunk", False, 2, {**chunk, "slurm_partition": "bogus"}))
    with pytest.raises(slurm.SlurmPreflightError) as err:
        slurm.preflight(bad, log=msgs.append)
    text = str(err.value)
    assert "sbatch: error: invalid partition specified: bogus" in text  # sbatch's own words
    assert "nothing was submitted" in text and "rule simulate_chunk (2 CPUs, 821 MB, 2 min, partition bogus" in text
    assert "the test was: sbatch --test-only" in text

    # no partition, no account, an account that is not the user's: stopped before any sbatch call
    calls.unlink()
    for res, words in [({k: v for k, v in chunk.items() if k != "slurm_partition"}, ["slurm_partition is not set",
                                                                                       "sinfo -s", "main*"]),
                       ({k: v for k, v in chunk.items() if k != "slurm_account"}, ["slurm_account is not set",
                                                                                     "sacctmgr", "attention"]),
                       ({**chunk, "slurm_account": "nobody"}, ["slurm_account nobody is not one of your accounts"])]:
        with pytest.raises(slurm.SlurmPreflightError) as err:
            slurm.preflight(_fake_workflow(("simulate_chunk", False, 2, res)), log=msgs.append)
        assert all(w in str(err.value) for w in words), str(err.value)
    assert not calls.exists()
    # slurm-no-account: no account needed
    no_acc = {k: v for k, v in chunk.items() if k != "slurm_account"}
    assert slurm.preflight(_fake_workflow(("simulate_chunk", False, 2, no_acc), no_account=True), log=msgs.append) == 1
    assert " -A " not in calls.read_text()


def test_sigterm_is_turned_into_ctrl_c():
    """After install_sigterm_cancel, SIGTERM raises KeyboardInterrupt in the driver's main thread:
    Snakemake's Ctrl-C path, which cancels every submitted job (scancel on SLURM)."""
    code = textwrap.dedent("""
        import os, signal, time
        from attention_dynamics.pipeline import slurm
        slurm.install_sigterm_cancel()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            print("no interrupt")
        except KeyboardInterrupt as exc:
            print("interrupted:", exc)
            # the cancellation (Snakemake's scancel) is not broken off by a second SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            print("cancelled")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.stdout.split("\n")[:2] == ["interrupted: signal SIGTERM", "cancelled"], out.stdout + out.stderr
