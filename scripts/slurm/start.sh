#!/usr/bin/env bash
# Bring up a real one-node SLURM cluster (with accounting, so `sacct` works) on
# this machine, as root, without systemd.  Meant for CI / local testing of the
# `workflow/profiles/slurm` Snakemake profile; NOT for production clusters.
#
#   sudo scripts/slurm/start.sh     # idempotent: a second run only checks
#   sudo scripts/slurm/stop.sh      # stops the daemons started here (by PID)
#
# What it does
#   1. installs (if missing) Debian's slurmctld slurmd slurm-client munge
#      slurmdbd mariadb-server (apt-get, no recommends, services not started
#      by the package scripts);
#   2. writes /etc/slurm/slurm.conf, cgroup.conf and slurmdbd.conf (marked as
#      managed by this script; refuses to overwrite foreign ones) with the real
#      hostname, CPU count and memory of the machine.  Like a production
#      cluster, jobs run in cgroups (proctrack/cgroup, task/cgroup,
#      jobacct_gather/cgroup; ConstrainCores, ConstrainRAMSpace: a job gets
#      the CPUs it asked for and is killed with OUT_OF_MEMORY above its --mem),
#      memory is a consumable resource (CR_Core_Memory) and accounting stores
#      job comments.  Where cgroups cannot be used (a container without a
#      writable cgroupfs) it falls back to proctrack/linuxproc + task/none,
#      which enforce neither (AD_SLURM_CGROUP=no forces that);
#   3. starts munged, mariadbd (creates slurm_acct_db and its user), slurmdbd,
#      registers the cluster with sacctmgr, starts slurmctld and slurmd, all in
#      the background with their PIDs in $AD_SLURM_STATE (default
#      /var/lib/attention-dynamics-slurm);
#   4. waits until `sinfo` shows the node idle and `sacct` answers.
#
# Environment knobs
#   AD_SLURM_STATE      state dir (PIDs, logs, spool)   [/var/lib/attention-dynamics-slurm]
#   AD_SLURM_CLUSTER    cluster name                    [attention]
#   AD_SLURM_PARTITION  partition name (default part.)  [main]
#   AD_SLURM_CPUS       CPUs of the node                [nproc]
#   AD_SLURM_MEM_MB     RealMemory of the node (MiB)    [MemTotal - 5 %]
#   AD_SLURM_FORCE=1    overwrite slurm configs not written by this script
#   AD_SLURM_NO_INSTALL=1  never call apt-get (fail if packages are missing)
#   AD_SLURM_TIMEOUT    seconds to wait for each daemon [60]
#   AD_SLURM_CGROUP     auto | yes | no: run jobs in cgroups        [auto]
set -euo pipefail

STATE=${AD_SLURM_STATE:-/var/lib/attention-dynamics-slurm}
CLUSTER=${AD_SLURM_CLUSTER:-attention}
PARTITION=${AD_SLURM_PARTITION:-main}
WAIT=${AD_SLURM_TIMEOUT:-60}
MARK="# managed by attention-dynamics scripts/slurm/start.sh"
T0=$EPOCHREALTIME

log() { printf '[slurm-start %5.1fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"

mkdir -p "$STATE"/{log,run,spool/slurmd,spool/slurmctld}

# ---------------------------------------------------------------- helpers ----
# alive NAME: true if the PID recorded for NAME runs a process whose comm is
# the expected binary.
declare -A COMM=([munged]=munged [mariadbd]=mariadbd [slurmdbd]=slurmdbd
                 [slurmctld]=slurmctld [slurmd]=slurmd)
alive() {
  local name=$1 pid comm
  [[ -s $STATE/run/$name.pid ]] || return 1
  pid=$(<"$STATE/run/$name.pid")
  [[ -r /proc/$pid/comm ]] || return 1
  comm=$(<"/proc/$pid/comm")
  # right after launch the process may still be `setsid`, not yet exec'ed into the daemon
  [[ $comm == "${COMM[$name]}"* || $comm == setsid ]]
}
# foreign NAME: PID of an instance of NAME not started by us (e.g. by an init
# script), empty if none.  Adopted so that we do not start a second copy.
foreign() { pgrep -x "${COMM[$1]}" | head -n1 || true; }

# launch NAME CMD...: start CMD (which must stay in the foreground) detached,
# stdout/stderr to the log dir, record its PID.
launch() {
  local name=$1; shift
  if alive "$name"; then log "$name already running (pid $(<"$STATE/run/$name.pid"))"; return 0; fi
  local f; f=$(foreign "$name")
  if [[ -n $f ]]; then
    log "$name already running outside this script (pid $f); adopting it"
    echo "$f" >"$STATE/run/$name.pid"; return 0
  fi
  setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 &
  echo $! >"$STATE/run/$name.pid"
  log "started $name (pid $!)"
}

# wait_for DESC NAME CMD...: poll CMD every 0.2 s until it succeeds; give up
# after $WAIT s or as soon as daemon NAME (if not "-") has died.
wait_for() {
  local desc=$1 name=$2; shift 2
  local deadline=$(( $(date +%s) + WAIT ))
  until "$@" >/dev/null 2>&1; do
    if [[ $name != - ]] && ! alive "$name"; then
      log "$name died while waiting for $desc; last log lines:"
      tail -n 15 "$STATE/log/$name".* 2>/dev/null >&2 || true; exit 1
    fi
    if (( $(date +%s) >= deadline )); then
      log "timed out after ${WAIT}s waiting for $desc; last log lines:"
      tail -n 15 "$STATE"/log/*.{log,out} 2>/dev/null >&2 || true; exit 1
    fi
    sleep 0.2
  done
  log "$desc: ok"
}

# write_conf PATH MODE OWNER: write stdin to PATH unless a foreign file exists.
write_conf() {
  local path=$1 mode=$2 owner=$3 tmp
  if [[ -e $path ]] && ! grep -qF "$MARK" "$path" && [[ ${AD_SLURM_FORCE:-0} != 1 ]]; then
    die "$path exists and was not written by this script (set AD_SLURM_FORCE=1 to overwrite)"
  fi
  tmp=$(mktemp "$path.XXXXXX")
  cat >"$tmp"; chmod "$mode" "$tmp"; chown "$owner" "$tmp"; mv -f "$tmp" "$path"
}

# ---------------------------------------------------------------- install ----
PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ ${AD_SLURM_NO_INSTALL:-0} != 1 ]] || die "missing packages: ${missing[*]} (AD_SLURM_NO_INSTALL=1)"
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
  log "installing ${missing[*]}"
  # Package maintainer scripts must not try to start services (no init here):
  # a policy-rc.d that denies everything, only for the duration of the install.
  own_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$STATE/log/apt.log" 2>&1; }
  if ! apt_install; then
    log "apt-get install failed; running apt-get update once and retrying"
    apt-get update -q >>"$STATE/log/apt.log" 2>&1 || true
    apt_install || { ((own_policy)) && rm -f /usr/sbin/policy-rc.d; tail -n 20 "$STATE/log/apt.log" >&2; die "apt-get install failed (see $STATE/log/apt.log)"; }
  fi
  ((own_policy)) && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
fi

# ---------------------------------------------------------------- configs ----
HOST=$(hostname -s)
CPUS=${AD_SLURM_CPUS:-$(nproc)}
if [[ -z ${AD_SLURM_MEM_MB:-} ]]; then
  mem=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
  for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
    if [[ -r $f ]] && [[ $(<"$f") =~ ^[0-9]+$ ]]; then
      c=$(( $(<"$f") / 1048576 )); (( c < mem )) && mem=$c
    fi
  done
  AD_SLURM_MEM_MB=$(( mem * 95 / 100 ))
fi
MEM=$AD_SLURM_MEM_MB

# cgroups: v1 controllers (freezer, memory, cpuset) or a v2 hierarchy, writable by root
cgroup_usable() {
  local probe
  if [[ -d /sys/fs/cgroup/freezer && -d /sys/fs/cgroup/memory && -d /sys/fs/cgroup/cpuset ]]; then
    probe=/sys/fs/cgroup/memory/ad-slurm-probe.$$
  elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    probe=/sys/fs/cgroup/ad-slurm-probe.$$
  else
    return 1
  fi
  mkdir "$probe" 2>/dev/null && rmdir "$probe"
}
case ${AD_SLURM_CGROUP:-auto} in
  yes) CGROUP=1 ;;
  no) CGROUP=0 ;;
  auto) if cgroup_usable; then CGROUP=1; else CGROUP=0; fi ;;
  *) die "AD_SLURM_CGROUP must be auto, yes or no" ;;
esac
if ((CGROUP)); then
  PROCTRACK=proctrack/cgroup; TASK=task/cgroup; GATHER=jobacct_gather/cgroup
else
  PROCTRACK=proctrack/linuxproc; TASK=task/none; GATHER=jobacct_gather/linux
fi

id slurm >/dev/null 2>&1 || die "user 'slurm' missing (should come with slurm packages)"
chown -R slurm:slurm "$STATE/spool/slurmctld"
chown slurm:slurm "$STATE/log" "$STATE/run"   # daemons write their own pid/log files there
mkdir -p /etc/slurm

# The DB password is generated once and kept in slurmdbd.conf (mode 600).
DBPASS=""
[[ -r /etc/slurm/slurmdbd.conf ]] && DBPASS=$(sed -n 's/^StoragePass=//p' /etc/slurm/slurmdbd.conf)
[[ -n $DBPASS ]] || DBPASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')

any_slurm_running=0
for d in slurmdbd slurmctld slurmd; do alive "$d" && any_slurm_running=1; done
if ((any_slurm_running)) && [[ -e /etc/slurm/slurm.conf ]]; then
  log "SLURM daemons already running; keeping the existing configs"
else
  write_conf /etc/slurm/slurm.conf 644 root:root <<EOF
$MARK
# One-node test cluster for the attention-dynamics Snakemake profile.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
SwitchType=switch/none
# cgroups where the machine allows them (a job gets its CPUs and memory, no more);
# otherwise linuxproc/none, which enforce neither (see AD_SLURM_CGROUP)
ProctrackType=$PROCTRACK
TaskPlugin=$TASK
JobAcctGatherType=$GATHER
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# sacct -o Comment shows the rule and wildcards the Snakemake executor puts there
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
# memory is consumable: --mem is reserved on the node (and enforced by cgroups)
SelectTypeParameters=CR_Core_Memory
# reject jobs that can never run here (e.g. more CPUs than the node has) at
# submission instead of leaving them pending forever
EnforcePartLimits=ALL
# do not drain the node if the hardware differs slightly from the numbers below
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$STATE/spool/slurmctld
SlurmdSpoolDir=$STATE/spool/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.daemon.pid
SlurmdPidFile=$STATE/run/slurmd.daemon.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=300
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  write_conf /etc/slurm/cgroup.conf 644 root:root <<EOF
$MARK
CgroupPlugin=autodetect
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedSwapSpace=0
EOF
  write_conf /etc/slurm/slurmdbd.conf 600 slurm:slurm <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
PidFile=$STATE/run/slurmdbd.daemon.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
  log "wrote /etc/slurm/slurm.conf (node $HOST, CPUs=$CPUS, RealMemory=$MEM MiB, partition $PARTITION, cgroups: $( ((CGROUP)) && echo yes || echo no)), cgroup.conf and slurmdbd.conf"
fi

# ------------------------------------------------------------------ munge ----
if [[ ! -s /etc/munge/munge.key ]]; then
  if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
  else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
alive munged || rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
wait_for "munge" munged bash -c 'munge -n | unmunge'

# ---------------------------------------------------------------- mariadb ----
mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
if [[ ! -d /var/lib/mysql/mysql ]]; then
  log "initialising MariaDB data dir"
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/log/mariadb-install.log" 2>&1
fi
# --skip-networking: slurmdbd talks to it over the unix socket only.
launch mariadbd /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql \
  --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mariadbd.pid --skip-networking
wait_for "mariadb" mariadbd mariadb-admin --socket=/run/mysqld/mysqld.sock ping
mariadb --socket=/run/mysqld/mysqld.sock <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF

# --------------------------------------------------------------- slurmdbd ----
launch slurmdbd /usr/sbin/slurmdbd -D
wait_for "slurmdbd" slurmdbd sacctmgr -n -i show cluster
if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
  log "registered cluster $CLUSTER"
fi
# An account for root and the invoking user, so that account-aware tools
# (the Snakemake SLURM executor guesses an account via sacctmgr) find one.
if ! sacctmgr -n -P show account format=account | grep -qx "$CLUSTER"; then
  sacctmgr -i add account "$CLUSTER" Cluster="$CLUSTER" Description=test Organization=test >/dev/null
fi
for u in root ${SUDO_USER:-}; do
  sacctmgr -n -P show assoc where user="$u" account="$CLUSTER" cluster="$CLUSTER" format=user | grep -qx "$u" \
    || sacctmgr -i add user "$u" Account="$CLUSTER" Cluster="$CLUSTER" >/dev/null
done

# --------------------------------------------------------- slurmctld/slurmd ----
launch slurmctld /usr/sbin/slurmctld -D -i
wait_for "slurmctld" slurmctld scontrol ping
launch slurmd /usr/sbin/slurmd -D
node_idle() {
  local st; st=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n1)
  case $st in
    idle|mix|alloc) return 0 ;;
    drain*|down*|drng*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true; return 1 ;;
    *) return 1 ;;
  esac
}
wait_for "node $HOST idle in sinfo" slurmd node_idle
wait_for "sacct" - sacct -n -X -S now-1minute

log "SLURM up: cluster=$CLUSTER partition=$PARTITION node=$HOST cpus=$CPUS mem=${MEM}MiB state=$STATE"
sinfo >&2
