"""End to end on a real one-node SLURM (issues 4 and 16): the SLURM profile, chunk jobs, pre-flight,
retries with more time, cancelled jobs, a killed or terminated driver.

    sudo python -m pytest -m slurm tests/test_slurm.py -s      # as root; -s shows the timings

Brings SLURM up with scripts/slurm/start.sh (installs the Debian packages if missing; jobs run in
cgroups where the machine allows it), then, each in a temporary copy of the workflow:

* test_sweep_on_slurm_matches_local: config/test.yaml (its sweeps) locally and through the profile; equal
  tables; one SLURM job per chunk (none per cell), named after the run, the comment naming rule
  and chunk; the pre-flight and the efficiency summary in the output;
* test_bad_partition_is_stopped_by_the_preflight: sbatch's own words, nothing submitted;
* test_timeout_is_resubmitted_with_more_time: a chunk whose request is too short (a resource
  model that underestimates) hits TIMEOUT, is resubmitted with attempt_growth × more time, and the
  second attempt reuses the cells the first one finished;
* test_cancelled_chunk_keeps_the_other_cells: scancel of a running chunk; the other chunk's cells
  are kept, the cancelled chunk is resubmitted and reuses what it had finished;
* test_sigterm_cancels_the_jobs: SIGTERM to the driver cancels its running job;
* test_killed_driver_rerun_submits_nothing_twice: SIGKILL to the driver leaves its job running;
  the same command again waits for it and never submits the same chunk while it runs.

SLURM is stopped again at the end, unless it was already running. Skips (with the reason) when
not root, when neither the SLURM daemons nor apt-get are available, when the executor plugin is
not installed, or when the package install fails. AD_SLURM_RUN_TIMEOUT: seconds per Snakemake
run (default 420); AD_SLURM_KEEP=1 keeps the scratch folders.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
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
RUN_TIMEOUT = int(os.environ.get("AD_SLURM_RUN_TIMEOUT", "420"))
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
    # `timeout -s INT -k 30`: SIGINT lets Snakemake scancel its jobs; SIGKILL 30 s later if that hangs
    return ["timeout", "-s", "INT", "-k", "30", str(timeout), sys.executable, "-m", "snakemake", *args]


def _slurm_args(profile: Path = PROFILE) -> list[str]:
    return ["--profile", str(profile), "--workflow-profile", "none"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SNAKEMAKE_PROFILE", None)
    env.pop("AD_PREVIOUS_JOBS", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    return env


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    TIMINGS[what] = round(time.monotonic() - t0, 1)
    _log(f"{what}: rc={proc.returncode} in {TIMINGS[what]} s")
    (cwd / f"{what}.out").write_text(proc.stdout + proc.stderr)
    return proc


def _start(cmd: list[str], cwd: Path, what: str) -> tuple[subprocess.Popen, Path]:
    out = cwd / f"{what}.out"
    fh = open(out, "w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    return proc, out


def _tail(text: str, n: int = 60) -> str:
    return "\n".join(text.splitlines()[-n:])


def _copy_workflow(dest: Path, config_text: str | None = None) -> Path:
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "Snakefile", dest / "Snakefile")
    for d in ("config", "workflow", "profiles"):
        if (ROOT / d).exists():
            shutil.copytree(ROOT / d, dest / d, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))
    if config_text is not None:
        (dest / "config" / "case.yaml").write_text(config_text)
    return dest


def _profile(dest: Path, **changes) -> Path:
    """A copy of the SLURM profile with top-level keys or default-resources replaced."""
    import yaml

    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    for key, value in changes.items():
        if key in ("slurm_partition", "slurm_account"):
            if value is None:
                prof["default-resources"].pop(key)
            else:
                prof["default-resources"][key] = value
        else:
            prof[key.replace("_", "-")] = value
    folder = dest / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(prof))
    return folder


def _sacct(job_ids: list[str], since: float, want_final: bool = True, wait: float = 30.0) -> dict[str, dict]:
    """JobID -> {State, Comment, Timelimit, JobName, Start, End} from sacct for jobs submitted after
    ``since``; waits until every job is listed (and final). The submit-time check guards against ids
    reused after the controller state was wiped (stop.sh --purge)."""
    fields = ["JobID", "State", "Submit", "Comment", "Timelimit", "JobName", "Start", "End"]
    deadline = time.monotonic() + wait
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", ",".join(fields), "-j", ",".join(job_ids)],
                             capture_output=True, text=True)
        states = {}
        for line in out.stdout.splitlines():
            row = dict(zip(fields, line.split("|")))
            if len(row) != len(fields):
                continue
            try:
                recent = datetime.fromisoformat(row["Submit"]).timestamp() >= since - 1
            except ValueError:
                recent = True
            if recent:
                states[row["JobID"]] = row
        pending = [j for j in job_ids if j not in states
                   or (want_final and states[j]["State"].split()[0] in {"PENDING", "RUNNING", "COMPLETING"})]
        if not pending or time.monotonic() > deadline:
            return states
        time.sleep(1)


def _squeue_run_jobs(workdir: Path) -> list[tuple[str, str, str]]:
    """(jobid, state, comment) of this directory's queued/running jobs."""
    out = subprocess.run(["squeue", "--me", "-h", "-o", "%i|%T|%Z|%k"], capture_output=True, text=True)
    jobs = []
    for line in out.stdout.splitlines():
        jid, state, wd, comment = (line.split("|") + ["", "", ""])[:4]
        if os.path.realpath(wd) == os.path.realpath(workdir):
            jobs.append((jid, state, comment))
    return jobs


def _wait_for(pred, what: str, timeout: float, poll: float = 0.5, proc=None, out: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"snakemake ended (rc={proc.returncode}) while waiting for {what}:\n"
                        f"{_tail(out.read_text()) if out else ''}")
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{_tail(out.read_text()) if out else ''}")


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
                                      check_exact=False, rtol=1e-12, atol=0, obj=name)
        meta_a = {k: v for k, v in (pq.read_schema(local / name).metadata or {}).items() if k not in IGNORED_METADATA}
        meta_b = {k: v for k, v in (pq.read_schema(remote / name).metadata or {}).items() if k not in IGNORED_METADATA}
        assert meta_a == meta_b, f"{name}: provenance metadata differs"


# ------------------------------------------------------------------------------------------------
def _sweep_only_config() -> str:
    """config/test.yaml without its reproductions (5 SLURM jobs fewer: the equality of the sweep's
    tables is what this test is about; the reproductions run through the same executor)."""
    import yaml

    config = yaml.safe_load((ROOT / TEST_CONFIG).read_text())
    config.pop("reproductions")
    return yaml.safe_dump(config)


def test_sweep_on_slurm_matches_local(slurm_cluster, workdir):
    local = _copy_workflow(workdir / "local", _sweep_only_config())
    remote = _copy_workflow(workdir / "slurm", _sweep_only_config())
    proc = _run(_snakemake_cmd("--cores", "2", "--configfile", "config/case.yaml"), local, "local_run")
    assert proc.returncode == 0, f"local run failed:\n{_tail(proc.stdout + proc.stderr)}"

    since = time.time()
    proc = _run(_snakemake_cmd(*_slurm_args(), "--configfile", "config/case.yaml"), remote, "slurm_run")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 124, f"SLURM run timed out after {RUN_TIMEOUT} s:\n{_tail(output)}"
    assert proc.returncode == 0, f"SLURM run failed:\n{_tail(output)}"
    assert "SLURM pre-flight: sbatch --test-only accepts" in output
    submitted = SUBMITTED.findall(output)
    rules = [re.search(r"/rule_([a-z_]+)/", log).group(1) for _, log in submitted]
    n_chunks = len(list((remote / "results" / "cache" / "chunks").rglob("[0-9][0-9][0-9].json")))
    n_cells = len(list((remote / "results" / "cells").rglob("runs.parquet")))
    _log(f"{len(submitted)} SLURM jobs ({', '.join(sorted(set(rules)))}) for {n_cells} cells in {n_chunks} chunks")
    assert rules.count("simulate_chunk") == n_chunks == 1 and n_cells == 7  # both sweeps: one job
    assert "simulate_cell" not in rules and "chunk_cells" not in rules  # local: milliseconds each

    jobs = _sacct([j for j, _ in submitted], since)
    assert all(jobs[j]["State"] == "COMPLETED" for j, _ in submitted), jobs
    comments = sorted(jobs[j]["Comment"] for j, r in zip([j for j, _ in submitted], rules) if r == "simulate_chunk")
    assert comments == ["rule_simulate_chunk_wildcards_000"]
    assert all(jobs[j]["JobName"].startswith("attention-dynamics_") for j, _ in submitted)
    assert re.search(r"simulate_chunk\s+1 job\(s\):.*TotalCPU / \(Elapsed × AllocCPUS\) = \d+%", output), _tail(output)
    _assert_tables_equal(local / "results" / "tables", remote / "results" / "tables")


def test_bad_partition_is_stopped_by_the_preflight(slurm_cluster, workdir):
    wd = _copy_workflow(workdir / "bad_partition")
    profile = _profile(wd, slurm_partition="bogus")
    since = time.time()
    proc = _run(_snakemake_cmd(*_slurm_args(profile), "--configfile", TEST_CONFIG, timeout=180), wd,
                "bad_partition")
    output = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 124), _tail(output)
    assert "invalid partition specified: bogus" in output, _tail(output)  # sbatch's own words
    assert "nothing was submitted" in output
    assert not SUBMITTED.search(output)
    assert not _squeue_run_jobs(wd)
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", datetime.fromtimestamp(since - 1).isoformat(timespec="seconds"),
                          "-o", "JobID,WorkDir%200"], capture_output=True, text=True)
    assert str(wd) not in out.stdout, "a job was submitted"
    assert output.count("\n") < 150, f"{output.count(chr(10))} lines of output for a bad partition"

    # no account at all: stopped too, with the command that lists the user's accounts
    wd2 = _copy_workflow(workdir / "no_account")
    profile2 = _profile(wd2, slurm_account=None)
    proc = _run(_snakemake_cmd(*_slurm_args(profile2), "--configfile", TEST_CONFIG, timeout=180), wd2, "no_account")
    output = proc.stdout + proc.stderr
    assert proc.returncode not in (0, 124) and "slurm_account is not set" in output, _tail(output)
    assert "sacctmgr" in output and not SUBMITTED.search(output)


def _seconds_per_seed(cell: dict, seeds: int = 2) -> float:
    """CPU seconds of one simulation of ``cell`` on this machine (to size the slow chunks)."""
    from attention_dynamics.pipeline.cell import run_one

    run_one(cell, seeds, 0)  # not timed: the first simulation of a process loads the compiled kernels
    t0 = time.process_time()
    for s in range(seeds):
        run_one(cell, s, 0)
    return (time.process_time() - t0) / seeds


SLOW = {"model": "sa", "init": "caps", "d": 3, "n": 256, "k": 6, "eps": 1.0e-3, "spacing": 0.8, "t_max": 1.0e+60}


def _slow_config(betas, cpu_seconds_per_cell: float, **jobs) -> str:
    """A sweep whose cells each take about ``cpu_seconds_per_cell`` here (seeds chosen by measurement)."""
    per_seed = _seconds_per_seed({**SLOW, "beta": float(max(betas))})
    seeds = max(2, round(cpu_seconds_per_cell / per_seed))
    _log(f"slow cells: {per_seed:.2f} CPU-s per seed, {seeds} seeds per cell")
    import yaml

    return yaml.safe_dump({"results": "results", "sweeps": {"slow": {**SLOW, "beta": list(betas), "seeds": seeds}},
                           "jobs": jobs})


def test_timeout_is_resubmitted_with_more_time(slurm_cluster, workdir):
    """One chunk of 4 cells of ~28 CPU-s on 1 CPU, requested for 1 minute (a resource model that
    predicts nothing): TIMEOUT, then the second attempt gets 4 minutes and reuses finished cells."""
    wd = _copy_workflow(workdir / "timeout")
    model = wd / "config" / "fast_model.yaml"
    model.write_text("coef: {const: -30.0}\nsigma: 0.1\nmem_base_mb: 300\nmem_per_n2_mb: 50\n")
    (wd / "config" / "case.yaml").write_text(_slow_config([40, 45, 50, 55], 28.0, model=str(model),
                                                          attempt_growth=4.0))
    profile = _profile(wd, set_threads={"simulate_chunk": 1})
    since = time.time()
    proc = _run(_snakemake_cmd(*_slurm_args(profile), "--configfile", "config/case.yaml", "--until", "aggregate",
                               timeout=600), wd, "timeout_run")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, _tail(output)
    chunk_jobs = [j for j, log in SUBMITTED.findall(output) if "rule_simulate_chunk" in log]
    assert len(chunk_jobs) >= 2, _tail(output)
    jobs = _sacct(chunk_jobs, since)
    first, last = jobs[chunk_jobs[0]], jobs[chunk_jobs[-1]]
    assert first["State"] == "TIMEOUT" and first["Timelimit"] == "00:01:00", jobs
    assert last["State"] == "COMPLETED" and last["Timelimit"] >= "00:04:00", jobs
    assert f"SLURM-job '{chunk_jobs[0]}' failed, SLURM status is: 'TIMEOUT'" in output
    chunk_log = (wd / "results" / "logs" / "chunks" / "000.log").read_text()
    reused = [int(m) for m in re.findall(r"(\d+) reused from the cache", chunk_log)]
    assert reused and reused[-1] >= 1, chunk_log  # the finished cells were not computed again
    assert len(list((wd / "results" / "cells").rglob("runs.parquet"))) == 4


def _two_chunk_config(per_cell: float) -> str:
    return _slow_config([40, 45, 50, 55], per_cell, cells_per_job=2)  # two chunks of 2 cells


def test_cancelled_chunk_keeps_the_other_cells(slurm_cluster, workdir):
    wd = _copy_workflow(workdir / "cancel")
    (wd / "config" / "case.yaml").write_text(_two_chunk_config(6.0))
    profile = _profile(wd, set_threads={"simulate_chunk": 1})
    since = time.time()
    proc, out = _start(_snakemake_cmd(*_slurm_args(profile), "--configfile", "config/case.yaml", "--until", "aggregate",
                                      timeout=400), wd, "cancel_run")
    log0 = wd / "results" / "logs" / "chunks" / "000.log"

    def first_cell_done():
        text = log0.read_text() if log0.exists() else ""
        jobs = [j for j, s, c in _squeue_run_jobs(wd) if c.endswith("_wildcards_000") and s == "RUNNING"]
        return jobs[0] if jobs and re.search(r"seeds, [\d.]+ CPU-s", text) else None

    victim = _wait_for(first_cell_done, "chunk slow/000 with one cell finished", 240, proc=proc, out=out)
    subprocess.run(["scancel", victim], check=True)
    proc.wait(timeout=400)
    output = out.read_text()
    assert proc.returncode == 0, _tail(output)  # retries: the cancelled chunk was resubmitted
    assert f"SLURM-job '{victim}' failed, SLURM status is: 'CANCELLED'" in output, _tail(output)
    assert _sacct([victim], since)[victim]["State"].startswith("CANCELLED")
    assert re.search(r"slurm_logs/rule_simulate_chunk/000/%s\.log" % victim, output)
    text = log0.read_text()
    # the resubmitted chunk reused what the cancelled one had finished (a cancelled job may go on
    # until KillWait: Snakemake inside the job holds SIGTERM until its job ends)
    assert int(re.findall(r"(\d+) reused from the cache", text)[-1]) >= 1, text
    assert len(list((wd / "results" / "cells").rglob("runs.parquet"))) == 4


def _chunk_submissions(output: str) -> list[tuple[str, str]]:
    """(SLURM job id, chunk) of every simulate_chunk submission in a Snakemake output."""
    return [(j, re.search(r"rule_simulate_chunk/([^/]+)/", log).group(1))
            for j, log in SUBMITTED.findall(output) if "rule_simulate_chunk" in log]


def test_sigterm_cancels_the_jobs(slurm_cluster, workdir):
    wd = _copy_workflow(workdir / "sigterm")
    (wd / "config" / "case.yaml").write_text(_slow_config([50], 40.0))
    since = time.time()
    proc, out = _start(_snakemake_cmd(*_slurm_args(), "--configfile", "config/case.yaml", "--until", "aggregate",
                                      timeout=300), wd, "sigterm_run")
    running = _wait_for(lambda: [j for j, s, _ in _squeue_run_jobs(wd) if s == "RUNNING"], "a running job", 120,
                        proc=proc, out=out)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    _wait_for(lambda: not _squeue_run_jobs(wd), "the jobs to be gone", 60)
    states = _sacct(running, since)
    assert all(states[j]["State"].startswith("CANCELLED") for j in running), states


def test_killed_driver_rerun_submits_nothing_twice(slurm_cluster, workdir):
    """SIGKILL to the driver (no clean-up at all) while a chunk runs: the job goes on; the same command
    again waits for it instead of submitting that chunk a second time."""
    wd = _copy_workflow(workdir / "killed")
    (wd / "config" / "case.yaml").write_text(_two_chunk_config(8.0))
    args = [*_slurm_args(), "--configfile", "config/case.yaml", "--until", "aggregate"]
    since = time.time()
    # snakemake itself (no `timeout` around it): SIGKILL must reach the driver
    proc, out = _start([sys.executable, "-m", "snakemake", *args], wd, "killed_first")
    _wait_for(lambda: [j for j, s, _ in _squeue_run_jobs(wd) if s == "RUNNING"], "a running chunk", 120, proc=proc,
              out=out)
    proc.kill()
    proc.wait()
    left = _squeue_run_jobs(wd)
    assert left, "the killed driver's jobs should still be there"
    first = _chunk_submissions(out.read_text())
    rerun = _run(_snakemake_cmd(*args, timeout=400), wd, "killed_rerun")
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, _tail(output)
    assert "left by an earlier run of this directory" in output, _tail(output)
    second = _chunk_submissions(output)
    jobs = _sacct([j for j, _ in first + second], since)
    # no chunk ran twice at the same time, and a chunk the killed driver's job finished was not resubmitted
    for chunk in {c for _, c in first + second}:
        runs = sorted((jobs[j]["Start"], jobs[j]["End"], j) for j, c in first + second if c == chunk)
        for (s1, e1, j1), (s2, e2, j2) in zip(runs, runs[1:]):
            assert e1 <= s2, f"chunk {chunk}: jobs {j1} and {j2} overlap: {runs}"
    finished_before = {c for j, c in first if jobs[j]["State"] == "COMPLETED"}
    assert not finished_before & {c for _, c in second}, (first, second, jobs)
    assert len(list((wd / "results" / "cells").rglob("runs.parquet"))) == 4
