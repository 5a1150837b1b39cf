"""End-to-end test of the SLURM profile (GitHub issue 4) on a real one-node SLURM.

    pytest -m slurm tests/test_slurm.py -s        # as root; -s shows the timings

Brings SLURM up with scripts/slurm/start.sh (installs the Debian packages if
missing), runs the tiny sweep ``config/test.yaml`` through
``--profile workflow/profiles/slurm`` in a temporary copy of the workflow, checks
that the jobs went through sbatch (``sacct`` lists them) and that the tables in
``results/tables/`` equal those of a local run of the same config (up to the
``wall_*`` timing columns and the provenance timestamp), then checks that a failing job
makes Snakemake fail with the job's SLURM log path in its message.  SLURM is
stopped again at the end, unless it was already running before the test.

Skips (with the reason) when not root, when neither the SLURM daemons nor apt-get
are available, when the executor plugin is not installed, or when the package
install fails (e.g. no network).  Timeouts can be raised with
AD_SLURM_RUN_TIMEOUT (seconds per Snakemake run, default 480).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "scripts" / "slurm" / "start.sh"
STOP = ROOT / "scripts" / "slurm" / "stop.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
TEST_CONFIG = "config/test.yaml"
RUN_TIMEOUT = int(os.environ.get("AD_SLURM_RUN_TIMEOUT", "480"))
WALL_COLUMN = re.compile(r"^wall(_|$)")     # timings (wall_seconds, wall_formation, ...) differ between runs
IGNORED_METADATA = {b"created_utc", b"pandas"}  # provenance timestamp; pandas' own schema blob
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")
TIMINGS: dict[str, float] = {}


def _log(msg: str) -> None:
    print(f"[test_slurm] {msg}", file=sys.stderr, flush=True)


def _skip_reason() -> str | None:
    if sys.platform != "linux":
        return "SLURM test needs Linux"
    if os.geteuid() != 0:
        return "SLURM test needs root (installs packages and starts daemons)"
    if shutil.which("timeout") is None:
        return "coreutils `timeout` missing"
    have_daemons = all(shutil.which(b) for b in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd"))
    if not have_daemons and shutil.which("apt-get") is None:
        return "SLURM daemons not installed and no apt-get to install them"
    if not (ROOT / "Snakefile").is_file() or not (ROOT / TEST_CONFIG).is_file():
        return f"pipeline not present (Snakefile, {TEST_CONFIG})"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm not installed (pip install snakemake-executor-plugin-slurm)"
    return None


_reason = _skip_reason()
if _reason:
    pytestmark = [pytest.mark.slurm, pytest.mark.skip(reason=_reason)]


def _snakemake_cmd(*args: str, timeout: int = RUN_TIMEOUT) -> list[str]:
    # docs/science.md §7: wrap snakemake itself in `timeout -s INT -k 30` (SIGINT lets it
    # scancel its jobs; SIGKILL 30 s later if that hangs).
    return ["timeout", "-s", "INT", "-k", "30", str(timeout),
            sys.executable, "-m", "snakemake", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SNAKEMAKE_PROFILE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    TIMINGS[what] = round(time.monotonic() - t0, 1)
    _log(f"{what}: rc={proc.returncode} in {TIMINGS[what]} s")
    (cwd / f"{what}.out").write_text(proc.stdout + proc.stderr)
    return proc


def _tail(proc: subprocess.CompletedProcess, n: int = 60) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-n:])


def _copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "Snakefile", dest / "Snakefile")
    for d in ("config", "workflow", "profiles"):
        if (ROOT / d).exists():
            shutil.copytree(ROOT / d, dest / d, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))
    return dest


def _sacct(job_ids: list[str], since: float, want_final: bool = True, wait: float = 30.0) -> dict[str, str]:
    """JobID -> State from sacct (accounting, i.e. slurmdbd) for jobs submitted after
    ``since`` (epoch seconds); waits until every job is listed (and in a final state).

    ``sacct -j`` reports the most recent job of each id, and the submit-time check
    guards against ids reused after the controller state was wiped (stop.sh --purge).
    """
    deadline = time.monotonic() + wait
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,Submit", "-j", ",".join(job_ids)],
                             capture_output=True, text=True)
        states = {}
        for line in out.stdout.splitlines():
            parts = line.split("|")
            if len(parts) != 3:
                continue
            try:
                recent = datetime.fromisoformat(parts[2]).timestamp() >= since - 1
            except ValueError:  # "Unknown" while pending
                recent = True
            if recent:
                states[parts[0]] = parts[1]
        pending = [j for j in job_ids if j not in states
                   or (want_final and states[j].split()[0] in {"PENDING", "RUNNING", "COMPLETING"})]
        if not pending or time.monotonic() > deadline:
            return states
        time.sleep(1)


@pytest.fixture(scope="module")
def slurm_cluster():
    already_up = subprocess.run(["scontrol", "ping"], capture_output=True, text=True).returncode == 0 \
        if shutil.which("scontrol") else False
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=900)
    TIMINGS["slurm_start"] = round(time.monotonic() - t0, 1)
    _log(f"start.sh: rc={proc.returncode} in {TIMINGS['slurm_start']} s (already up: {already_up})")
    if proc.returncode != 0:
        out = proc.stdout + proc.stderr
        if "apt-get install failed" in out or "no apt-get" in out:
            pytest.skip(f"could not install SLURM packages:\n{out[-2000:]}")
        pytest.fail(f"scripts/slurm/start.sh failed:\n{out[-4000:]}")
    yield
    if not already_up:
        t0 = time.monotonic()
        subprocess.run(["bash", str(STOP)], capture_output=True, text=True, timeout=120)
        TIMINGS["slurm_stop"] = round(time.monotonic() - t0, 1)
    _log("timings (s): " + json.dumps(TIMINGS))


@pytest.fixture(scope="module")
def workdir(request):
    """A private scratch folder (not pytest's tmp_path: on a shared machine other pytest
    sessions rotate /tmp/pytest-of-<user> and may delete it during this long test).
    Kept when a test failed (path printed) or AD_SLURM_KEEP=1."""
    path = Path(tempfile.mkdtemp(prefix="ad-slurm-test-"))
    yield path
    if request.session.testsfailed or os.environ.get("AD_SLURM_KEEP") == "1":
        _log(f"kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def _assert_tables_equal(local: Path, remote: Path) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    names = sorted(p.name for p in local.glob("*.parquet"))
    assert names, f"local run wrote no tables in {local}"
    assert names == sorted(p.name for p in remote.glob("*.parquet"))
    for name in names:
        a, b = pd.read_parquet(local / name), pd.read_parquet(remote / name)
        drop = [c for c in a.columns if WALL_COLUMN.match(c)]
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop),
                                      check_exact=False, rtol=1e-9, atol=0, obj=name)
        meta_a = {k: v for k, v in (pq.read_schema(local / name).metadata or {}).items() if k not in IGNORED_METADATA}
        meta_b = {k: v for k, v in (pq.read_schema(remote / name).metadata or {}).items() if k not in IGNORED_METADATA}
        assert meta_a == meta_b, f"{name}: provenance metadata differs"


def test_tiny_sweep_on_slurm_matches_local(slurm_cluster, workdir):
    local = _copy_workflow(workdir / "local")
    remote = _copy_workflow(workdir / "slurm")

    # local reference run (the default workflow profile, as a user would run it)
    proc = _run(_snakemake_cmd("--cores", "2", "--configfile", TEST_CONFIG), local, "local_run")
    assert proc.returncode == 0, f"local run failed:\n{_tail(proc)}"

    # the same config through SLURM
    since = time.time()
    proc = _run(_snakemake_cmd("--profile", str(PROFILE), "--workflow-profile", "none",
                               "--configfile", TEST_CONFIG), remote, "slurm_run")
    assert proc.returncode != 124, f"SLURM run timed out after {RUN_TIMEOUT} s:\n{_tail(proc)}"
    assert proc.returncode == 0, f"SLURM run failed:\n{_tail(proc)}"

    output = proc.stdout + proc.stderr
    submitted = SUBMITTED.findall(output)
    assert submitted, f"no sbatch submission in the output:\n{_tail(proc)}"
    job_ids = [j for j, _ in submitted]
    n_cells = len(list((remote / "results" / "cells").rglob("runs.parquet")))
    _log(f"{len(job_ids)} SLURM submissions for {n_cells} cells (+ post-processing): {job_ids}")
    # grouping packs the cells: fewer submissions than cells
    assert 0 < len(job_ids) < n_cells, f"{len(job_ids)} submissions for {n_cells} cells: grouping not applied"

    states = _sacct(job_ids, since)
    assert set(states) >= set(job_ids), f"sacct does not list all jobs {job_ids}: {states}"
    assert all(states[j] == "COMPLETED" for j in job_ids), states

    _assert_tables_equal(local / "results" / "tables", remote / "results" / "tables")


FAILING_SNAKEFILE = """
rule all:
    input: "ok.txt", "boom.txt"

rule fine:
    output: "ok.txt"
    shell: "echo ok > {output}"

# named like the pipeline's rule so that the profile groups it ("sims")
rule simulate_cell:
    output: "boom.txt"
    log: "logs/boom.log"
    shell: "echo 'deliberate failure for test_slurm' > {log}; exit 3"
"""


def test_failing_job_reports_its_log(slurm_cluster, workdir):
    tmp_path = workdir / "failing"
    tmp_path.mkdir()
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    since = time.time()
    proc = _run(_snakemake_cmd("--profile", str(PROFILE), "--workflow-profile", "none", timeout=300),
                tmp_path, "slurm_failing_run")
    output = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 124, 137), f"expected a workflow error, got rc={proc.returncode}:\n{_tail(proc)}"
    assert re.search(r"Error in (group sims|rule simulate_cell)", output), _tail(proc)

    # the SLURM job of the failing rule: its log path is in the error message and exists
    failed = [(j, log) for j, log in SUBMITTED.findall(output) if "simulate_cell" in log]
    assert len(failed) == 1, f"expected one submission for simulate_cell:\n{_tail(proc)}"
    job_id, slurm_log = failed[0]
    error_block = output[output.index("Error in "):]
    assert slurm_log in error_block, f"SLURM log {slurm_log} not in the error message:\n{_tail(proc)}"
    assert Path(slurm_log).is_file(), f"{slurm_log} missing (it must be kept for failed jobs)"
    assert "logs/boom.log" in error_block
    assert "deliberate failure for test_slurm" in output  # show-failed-logs printed the rule log
    assert not (tmp_path / "boom.txt").exists()
    assert (tmp_path / "ok.txt").exists()  # keep-going: the independent job still ran

    states = _sacct([job_id], since)
    assert states.get(job_id, "").startswith("FAILED"), states
