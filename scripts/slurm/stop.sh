#!/usr/bin/env bash
# Stop the one-node SLURM started by scripts/slurm/start.sh: cancels the jobs
# still queued/running on it, then stops slurmd, slurmctld, slurmdbd, mariadbd
# and munged by the PIDs recorded in $AD_SLURM_STATE/run (SIGTERM, then SIGKILL
# after $AD_SLURM_STOP_TIMEOUT s).  Processes not recorded there are left
# alone.  Idempotent: stopping a stopped cluster is fine.
#
#   scripts/slurm/stop.sh            # stop the daemons
#   scripts/slurm/stop.sh --purge    # ...and delete the state dir (spool, logs);
#                                    # the accounting DB and /etc/slurm stay
set -euo pipefail

STATE=${AD_SLURM_STATE:-/var/lib/attention-dynamics-slurm}
GRACE=${AD_SLURM_STOP_TIMEOUT:-15}
log() { echo "[slurm-stop] $*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "must run as root"; exit 1; }
[[ -d $STATE/run ]] || { log "nothing to stop (no $STATE/run)"; exit 0; }

declare -A COMM=([munged]=munged [mariadbd]=mariadbd [slurmdbd]=slurmdbd
                 [slurmctld]=slurmctld [slurmd]=slurmd)
pid_of() {  # prints the recorded PID if it still runs the expected binary
  local f=$STATE/run/$1.pid pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ -r /proc/$pid/comm && $(</proc/$pid/comm) == "${COMM[$1]}"* ]] || return 1
  echo "$pid"
}

# Cancel leftover jobs first so that no slurmstepd outlives slurmd.
if pid_of slurmctld >/dev/null && command -v squeue >/dev/null; then
  jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
  if [[ -n $jobs ]]; then
    log "cancelling jobs: $(echo $jobs)"
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 50); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null || true) ]] && break; sleep 0.2
    done
  fi
fi

# stop_stage NAME...: SIGTERM the named daemons together, wait for all of them.
stop_stage() {
  local name pid t=$EPOCHREALTIME
  declare -A pids=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then pids[$name]=$pid; kill -TERM "$pid" 2>/dev/null || true
    else rm -f "$STATE/run/$name.pid"; fi
  done
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    for _ in $(seq $((GRACE * 10))); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    if [[ -d /proc/$pid ]]; then log "$name (pid $pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$STATE/run/$name.pid"
    log "stopped $name (pid $pid) after $(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t}") s"
  done
}
# slurmctld/slurmd first (slurmctld flushes accounting to slurmdbd), then
# slurmdbd, then what it needs.
stop_stage slurmd slurmctld
stop_stage slurmdbd
stop_stage mariadbd munged

if [[ ${1:-} == --purge ]]; then
  rm -rf "$STATE"; log "removed $STATE"
fi
