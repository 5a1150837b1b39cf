"""The Snakemake driver on a SLURM cluster: stop early with sbatch's own words, leave nothing behind,
say why jobs failed (issue 16). Called from the Snakefile; documented in docs/slurm.md.

* :func:`handle_previous_jobs` (start-up, before the DAG is built): jobs of an earlier driver of
  this working directory that are still queued or running (a driver killed with SIGKILL, a lost
  session) are found by their job name (the executor's run name, ``[<prefix>_]<uuid>``) and
  working directory, and waited for (default) or cancelled (``AD_PREVIOUS_JOBS=cancel``), so that
  the new run never submits the same cells while they still run.
* :func:`on_start` (``onstart``: the DAG is built, nothing submitted yet): SIGTERM cancels the
  jobs as Ctrl-C does (Snakemake's own SIGTERM handling only stops submitting and waits); on the
  SLURM executor, the pre-flight: every distinct request of the run (partition, account, CPUs,
  memory, time) goes through ``sbatch --test-only``, and a refusal stops the run before any
  submission with sbatch's message; a missing partition or account stops it too, with the commands
  that list the valid ones.
* :func:`failure_summary` (``onerror``): one line per failed SLURM job, the SLURM state first
  (TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, FAILED), then the job, rule and chunk, its log
  path and what to do.
* :func:`efficiency` (``onsuccess``/``onerror``, and ``python -m attention_dynamics.pipeline.slurm
  efficiency LOG``): per rule, the CPU time the jobs used against what they held,
  ``TotalCPU / (Elapsed × AllocCPUS)`` from ``sacct``.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SlurmPreflightError", "handle_previous_jobs", "on_start", "on_end", "install_sigterm_cancel",
           "preflight", "failure_summary", "efficiency", "main"]

RUN_NAME = re.compile(r"^(?:[A-Za-z0-9_-]{1,50}_)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NOT_A_RUN = ("-n", "--dry-run", "--dryrun", "--lint", "--report", "--summary", "--detailed-summary", "-S", "-D",
             "--list-rules", "--list", "-l", "--list-target-rules", "--lt", "--unlock", "--cleanup-metadata",
             "--list-changes", "--lc", "--dag", "--rulegraph", "--filegraph", "--containerize", "--archive",
             "--touch", "-t", "--delete-all-output", "--delete-temp-output", "--print-compilation", "--version")
WAIT_POLL_SECONDS = 10.0


class SlurmPreflightError(Exception):
    """sbatch refuses a request of this run, or the profile lacks a partition or an account."""


def _run(cmd: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _have(tool: str) -> bool:
    return shutil.which(tool) is not None


# ------------------------------------------------------------------------------------------
# jobs of an earlier driver
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueuedJob:
    jobid: str
    name: str
    state: str
    workdir: str
    comment: str

    def __str__(self) -> str:
        return f"{self.jobid} {self.state} {self.comment or self.name}"


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def queued_jobs(workdir: str | os.PathLike) -> list[QueuedJob]:
    """This user's queued or running jobs submitted by a Snakemake SLURM executor from ``workdir``."""
    if not _have("squeue"):
        return []
    try:
        out = _run(["squeue", "--me", "--noheader", "--states=PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,"
                    "REQUEUED,RESIZING", "--format=%i|%j|%T|%Z|%k"])
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    jobs = []
    for line in out.stdout.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5 and RUN_NAME.match(parts[1]) and _same_dir(parts[3], str(workdir)):
            jobs.append(QueuedJob(*parts))
    return jobs


def _lock_held(snakemake_dir: Path) -> bool:
    locks = snakemake_dir / "locks"
    return locks.is_dir() and any(locks.glob("*.lock"))


def is_real_run(argv=None) -> bool:
    """False for ``snakemake -n``, ``--lint``, ``--report``, ``--unlock`` and the like."""
    argv = sys.argv[1:] if argv is None else argv
    return not any(a in NOT_A_RUN or a.split("=")[0] in NOT_A_RUN for a in argv)


def handle_previous_jobs(workdir: str | os.PathLike = ".", *, policy: str | None = None, log=print,
                         poll: float = WAIT_POLL_SECONDS, argv=None) -> list[QueuedJob]:
    """Wait for (or cancel) the SLURM jobs an earlier, dead driver left running in ``workdir``.

    Does nothing while a Snakemake lock is held (a live driver: its jobs are not leftovers; Snakemake
    itself refuses a second run), in dry runs and the like (only a message), or without SLURM.
    ``policy``: ``wait`` (default; env ``AD_PREVIOUS_JOBS``), ``cancel`` or ``ignore``.
    Returns the jobs found.
    """
    policy = (policy or os.environ.get("AD_PREVIOUS_JOBS") or "wait").lower()
    if policy not in ("wait", "cancel", "ignore"):
        raise ValueError(f"AD_PREVIOUS_JOBS must be wait, cancel or ignore, got {policy!r}")
    workdir = Path(workdir)
    if policy == "ignore" or _lock_held(workdir / ".snakemake"):
        return []
    found = queued_jobs(workdir)
    if not found:
        return []
    listing = "\n".join(f"    {j}" for j in found)
    if not is_real_run(argv):
        log(f"{len(found)} SLURM job(s) of an earlier run of this directory are still queued or running:\n{listing}")
        return found
    if policy == "cancel":
        log(f"cancelling {len(found)} SLURM job(s) left by an earlier run of this directory (AD_PREVIOUS_JOBS=cancel; "
            f"the cells they finished are kept in the cell cache):\n{listing}")
        _run(["scancel", *[j.jobid for j in found]])
        deadline = time.monotonic() + 120
        while queued_jobs(workdir) and time.monotonic() < deadline:
            time.sleep(min(poll, 2.0))
        return found
    log(f"waiting for {len(found)} SLURM job(s) left by an earlier run of this directory (its driver is gone) to "
        f"finish, so that this run does not submit the same cells again; AD_PREVIOUS_JOBS=cancel cancels them "
        f"instead:\n{listing}")
    left = found
    while left:
        time.sleep(poll)
        now = queued_jobs(workdir)
        if {j.jobid for j in now} != {j.jobid for j in left}:
            log(f"  still waiting for {len(now)}: " + ", ".join(f"{j.jobid} {j.state}" for j in now) if now
                else "  they have finished; building the DAG")
        left = now
    return found


# ------------------------------------------------------------------------------------------
# start of a run: SIGTERM, pre-flight
# ------------------------------------------------------------------------------------------
def _raise_interrupt(signum, frame):
    # once: a second SIGTERM (``timeout`` forwarding it, a requeue, an impatient user) must not
    # interrupt the cancellation the first one started (measured: it broke off Snakemake's scancel)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install_sigterm_cancel() -> None:
    """SIGTERM (scancel or the time limit of a driver running under sbatch, ``kill``, ``timeout``)
    does what Ctrl-C does: Snakemake cancels every job it submitted, then exits. Only the first
    SIGTERM interrupts; later ones are ignored so that the cancellation runs to its end."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _executor_name(workflow) -> str:
    plugin = getattr(workflow, "executor_plugin", None)
    return getattr(plugin, "name", "") or ""


def _listing(cmd: list[str]) -> str:
    if not _have(cmd[0]):
        return f"({cmd[0]} not found)"
    try:
        out = _run(cmd, timeout=15)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"({exc})"
    text = (out.stdout or out.stderr).strip()
    return "\n".join(f"      {line}" for line in text.splitlines()[:20]) or "      (nothing)"


@dataclass(frozen=True)
class Request:
    rule: str
    partition: str
    account: str
    cpus: int
    mem_mb: int
    minutes: int
    qos: str = ""
    constraint: str = ""
    extra: str = ""

    def sbatch(self) -> list[str]:
        cmd = ["sbatch", "--test-only", "--job-name", "attention-dynamics-preflight", "--ntasks=1",
               f"--cpus-per-task={self.cpus}", "-t", str(self.minutes), "--mem", str(self.mem_mb)]
        if self.partition:
            cmd += ["-p", self.partition]
        if self.account:
            cmd += ["-A", self.account]
        if self.qos:
            cmd += [f"--qos={self.qos}"]
        if self.constraint:
            cmd += ["-C", self.constraint]
        if self.extra:
            cmd += shlex.split(self.extra)
        return [*cmd, "--wrap", "true"]


def _requests(workflow) -> list[Request]:
    settings = workflow.executor_settings
    out = {}
    for job in workflow.dag.needrun_jobs():
        if job.is_local:
            continue
        res = job.resources
        cpus = res.get("cpus_per_task") or job.threads
        req = Request(rule=job.name, partition=str(res.get("slurm_partition") or ""),
                      account=str(res.get("slurm_account") or ""), cpus=int(cpus), mem_mb=int(res.get("mem_mb") or 0),
                      minutes=int(res.get("runtime") or 0), qos=str(getattr(settings, "qos", "") or ""),
                      constraint=str(res.get("constraint") or ""), extra=str(res.get("slurm_extra") or ""))
        out.setdefault(req, None)
    return list(out)


def preflight(workflow, log=print) -> int:
    """The pre-flight of a SLURM run (see the module docstring); returns the requests checked."""
    settings = workflow.executor_settings
    requests = _requests(workflow)
    if not requests:
        return 0
    no_account = bool(getattr(settings, "no_account", False))
    problems = []
    if any(not r.partition for r in requests):
        rules = sorted({r.rule for r in requests if not r.partition})
        problems.append(f"slurm_partition is not set for rule(s) {', '.join(rules)}. Set it under default-resources "
                        f"in your profile (workflow/profiles/slurm/config.yaml). Partitions here "
                        f"(`sinfo -s`; the default one is marked *):\n{_listing(['sinfo', '-s'])}")
    if not no_account and any(not r.account for r in requests):
        rules = sorted({r.rule for r in requests if not r.account})
        problems.append(f"slurm_account is not set for rule(s) {', '.join(rules)}. Set it under default-resources "
                        f"in your profile (the executor's guess fails with plugin 2.8). Your accounts "
                        f"(`sacctmgr -n -P show assoc user=$USER format=account,partition`):\n"
                        + _listing(["sacctmgr", "-n", "-P", "show", "assoc", f"user={_user()}",
                                    "format=account,partition"])
                        + "\n    On a cluster without accounts, set slurm-no-account: true instead.")
    accounts = _user_accounts() if not no_account else set()
    wrong = sorted({r.account for r in requests if r.account and accounts and r.account.lower() not in accounts})
    if wrong:
        problems.append(f"slurm_account {', '.join(wrong)} is not one of your accounts ({', '.join(sorted(accounts))}; "
                        f"`sacctmgr -n -s list user $USER format=account`): the executor would refuse every job. "
                        f"Fix slurm_account under default-resources in your profile.")
    if problems:
        raise SlurmPreflightError("SLURM pre-flight: nothing was submitted.\n  " + "\n  ".join(problems))
    if not _have("sbatch"):
        return 0
    # the largest requests first; identical (partition, account, cpus, mem, time) only once
    requests.sort(key=lambda r: (-r.cpus, -r.mem_mb, -r.minutes))
    checked = 0
    for req in requests[:40]:
        cmd = req.sbatch()
        try:
            out = _run(cmd, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            log(f"SLURM pre-flight: could not run sbatch --test-only ({exc}); going on")
            return checked
        checked += 1
        if out.returncode != 0:
            said = (out.stderr or out.stdout).strip()
            raise SlurmPreflightError(
                f"SLURM pre-flight: sbatch refuses the jobs of rule {req.rule} ({req.cpus} CPUs, {req.mem_mb} MB, "
                f"{req.minutes} min, partition {req.partition or '-'}, account {req.account or '-'}); nothing was "
                f"submitted.\n  sbatch said:\n" + "\n".join(f"    {line}" for line in said.splitlines())
                + f"\n  the test was: {shlex.join(cmd)}")
    log(f"SLURM pre-flight: sbatch --test-only accepts all {checked} distinct request(s) of this run "
        f"(largest: {requests[0].cpus} CPUs, {requests[0].mem_mb} MB, {max(r.minutes for r in requests)} min)")
    return checked


def _user_accounts() -> set[str]:
    """The accounts the executor plugin accepts for this user (it checks the same way); empty if unknown."""
    if not _have("sacctmgr"):
        return set()
    try:
        out = _run(["sacctmgr", "-n", "-s", "list", "user", _user(), "format=account%256"], timeout=30)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip().lower() for line in out.stdout.splitlines() if line.strip()} if out.returncode == 0 else set()


def _user() -> str:
    import getpass

    return os.environ.get("USER") or getpass.getuser()


def on_start(workflow, log=print) -> None:
    """``onstart`` of the driver: SIGTERM cancels jobs; on SLURM, the pre-flight (raises
    :class:`SlurmPreflightError` to stop the run before any submission)."""
    install_sigterm_cancel()
    if _executor_name(workflow) == "slurm":
        preflight(workflow, log=log)


# ------------------------------------------------------------------------------------------
# after a run: what failed, what was used
# ------------------------------------------------------------------------------------------
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\S+) \(log: ([^)]+)\)")
FAILED = re.compile(r"SLURM-job '([^']+)' failed(?: due to a node failure)?, SLURM status is: '([A-Z_]+)'")
SBATCH_FAILED = re.compile(r"SLURM sbatch failed\. The error message was '([^']*)'|"
                           r"Job submission failed with exception: ([^\n]*)")
RULE_OF_ERROR = re.compile(r"^Error in rule (\S+):", re.M)
HINTS = {
    "TIMEOUT": "ran past its time limit; with retries left Snakemake resubmits it with jobs.attempt_growth × more "
               "time (cells it finished are reused); otherwise raise jobs.runtime_factor or retries",
    "OUT_OF_MEMORY": "went over its memory; with retries left it is resubmitted with jobs.attempt_growth × more "
                     "memory; otherwise raise retries or mem_mb",
    "CANCELLED": "was cancelled (scancel, an administrator, or preempted without requeue): run the same command "
                 "again; finished cells are kept",
    "NODE_FAIL": "its node failed: run again (the node is excluded); slurm-requeue: true lets SLURM requeue it",
    "PREEMPTED": "was preempted: slurm-requeue: true lets SLURM requeue it",
    "BOOT_FAIL": "its node failed to boot: run again",
    "DEADLINE": "missed its deadline",
    "FAILED": "exited with an error: see the job's log",
}


def _sacct(ids: list[str], fields: str) -> dict[str, dict]:
    """One row per job (its allocation line; TotalCPU there sums the job's steps; ``-X`` would
    report 0 CPU for jobs whose work ran in steps)."""
    if not ids or not _have("sacct"):
        return {}
    names = fields.split(",")
    out = {}
    for i in range(0, len(ids), 200):
        try:
            res = _run(["sacct", "-n", "-P", "-j", ",".join(ids[i:i + 200]), "-o", fields], timeout=60)
        except (OSError, subprocess.SubprocessError):
            return out
        for line in res.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == len(names) and "." not in parts[0]:
                row = dict(zip(names, parts))
                out[row[names[0]]] = row
    return out


FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE")


def _sacct_final(ids: list[str], fields: str, wait: float = 20.0) -> dict[str, dict]:
    """:func:`_sacct`, waiting up to ``wait`` s for accounting to hold every job in a final state."""
    deadline = time.monotonic() + wait
    first = True
    while True:
        rows = _sacct(ids, fields)
        done = all(j in rows and rows[j].get("State", "").split()[0] in FINAL for j in ids)
        # no row at all at the first try: no accounting here (sacct disabled); do not wait for it
        if done or time.monotonic() > deadline or not _have("sacct") or (first and not rows):
            return rows
        first = False
        time.sleep(1.0)


def _read_log(log_path) -> str:
    """The Snakemake log (``onsuccess``/``onerror`` get a list of log files)."""
    paths = log_path if isinstance(log_path, (list, tuple)) else [log_path]
    text = []
    for p in paths:
        try:
            text.append(Path(p).read_text(errors="replace"))
        except (OSError, TypeError):
            pass
    return "\n".join(text)


def failure_summary(log_path, out=print) -> list[str]:
    """Print one line per SLURM job of this run that failed, state first (see the module docstring)."""
    text = _read_log(log_path)
    logs = {sid: path for _, sid, path in SUBMITTED.findall(text)}
    lines = []
    for jobid, state in FAILED.findall(text):
        lines.append((state, jobid))
    sbatch = [a or b for a, b in SBATCH_FAILED.findall(text)]
    if not lines and not sbatch:
        return []
    info = _sacct_final([j for _, j in lines], "JobID,State,Comment,Elapsed,Timelimit,ReqMem,AllocCPUS,NodeList",
                        wait=10.0)
    report = ["SLURM jobs of this run that failed (state, job, rule and wildcards, log):"]
    for state, jobid in lines:
        row = info.get(jobid, {})
        comment = row.get("Comment", "")
        times = f"ran {row['Elapsed']} of {row['Timelimit']}" if row.get("Elapsed") else ""
        report.append(f"  {state:<14s} job {jobid:<8s} {comment or '?'}  {times}\n"
                      f"  {'':14s} log: {logs.get(jobid, '?')}\n"
                      f"  {'':14s} {HINTS.get(state, 'see the log')}")
    for msg in sorted(set(sbatch)):
        report.append(f"  {'NOT SUBMITTED':<14s} sbatch said: {msg}")
    for line in report:
        out(line)
    return report


def efficiency(log_path=None, job_ids=None, out=print) -> dict[str, dict]:
    """Per rule: jobs, CPUs × wall time held, CPU time used, and their ratio (sacct)."""
    if job_ids is None:
        job_ids = [sid for _, sid, _ in SUBMITTED.findall(_read_log(log_path))]
    job_ids = list(dict.fromkeys(job_ids))
    # accounting may lag behind the end of the last jobs (slurmctld -> slurmdbd): wait up to a minute
    rows = _sacct_final(job_ids, "JobID,Comment,State,AllocCPUS,ElapsedRaw,TotalCPU", wait=60.0)
    missing = [j for j in job_ids if j not in rows]
    per_rule: dict[str, dict] = {}
    for row in rows.values():
        rule = re.sub(r"^rule_", "", row["Comment"]).split("_wildcards_")[0] or "?"
        try:
            held = int(row["AllocCPUS"]) * int(row["ElapsedRaw"])
        except ValueError:
            continue
        r = per_rule.setdefault(rule, {"jobs": 0, "held_cpu_s": 0, "used_cpu_s": 0.0})
        r["jobs"] += 1
        r["held_cpu_s"] += held
        r["used_cpu_s"] += _seconds(row["TotalCPU"])
    for rule, r in sorted(per_rule.items()):
        r["efficiency"] = r["used_cpu_s"] / r["held_cpu_s"] if r["held_cpu_s"] else float("nan")
        out(f"  {rule:24s} {r['jobs']:4d} job(s): {r['used_cpu_s']:9.1f} CPU-s used of {r['held_cpu_s']:9d} held "
            f"(TotalCPU / (Elapsed × AllocCPUS) = {r['efficiency']:.0%})")
    if missing and _have("sacct"):
        out(f"  ({len(missing)} job(s) not in accounting yet: {', '.join(missing[:10])}; later: python -m "
            f"attention_dynamics.pipeline.slurm efficiency LOG)")
    return per_rule


def _seconds(text: str) -> float:
    """sacct durations: [D-]HH:MM:SS[.mmm] or MM:SS.mmm."""
    text = text.strip()
    if not text:
        return 0.0
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [float(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return days * 86400 + h * 3600 + m * 60 + s


def on_end(workflow, log_path, *, ok: bool, out=print) -> None:
    """``onsuccess``/``onerror`` of the driver on SLURM: the failed jobs (state first), then the CPU
    efficiency of the run's jobs per rule."""
    if _executor_name(workflow) != "slurm":
        return
    if not ok:
        failure_summary(log_path, out=out)
    out("CPU efficiency of this run's SLURM jobs (sacct):")
    efficiency(log_path, out=out)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m attention_dynamics.pipeline.slurm",
                                description="SLURM helpers of the attention-dynamics workflow.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("efficiency", help="CPU efficiency per rule of the SLURM jobs of a Snakemake log")
    e.add_argument("log", help=".snakemake/log/<date>.snakemake.log")
    f = sub.add_parser("failures", help="the failed SLURM jobs of a Snakemake log, state first")
    f.add_argument("log")
    q = sub.add_parser("leftovers", help="jobs of earlier runs of a working directory still queued or running")
    q.add_argument("workdir", nargs="?", default=".")
    a = p.parse_args(argv)
    if a.cmd == "efficiency":
        efficiency(a.log)
    elif a.cmd == "failures":
        failure_summary(a.log)
    else:
        for j in queued_jobs(a.workdir):
            print(j)
    return 0


if __name__ == "__main__":
    sys.exit(main())
