#!/usr/bin/env bash
# A real, single-host Slurm cluster on this machine, for development, tests and CI.
#
#   scripts/slurm-local.sh up       install (if missing), configure and start it; wait until its node is idle
#   scripts/slurm-local.sh down     cancel its jobs and stop the daemons it started
#   scripts/slurm-local.sh status   sinfo, or "not running" (exit status 3)
#
# One node (this host, `hostname -s`, with the CPUs and memory `slurmd -C` reports), one
# partition ("debug", the default), reached over loopback only. Everything it writes lives
# under $SLURM_LOCAL_DIR (default /var/lib/drivelab-slurm), configuration included: an
# existing /etc/slurm/slurm.conf is never read nor touched. Clients find the cluster
# through SLURM_CONF:
#   export SLURM_CONF=/var/lib/drivelab-slurm/etc/slurm.conf   (or: . /var/lib/drivelab-slurm/env)
#
# Needs root: when not root, it runs itself again under `sudo -n` (not for `status`, nor for
# an `up` that finds the cluster running as configured).
# Settings (environment):
#   SLURM_LOCAL_DIR      where configuration, state, spool, logs and pid files go
#   SLURM_LOCAL_INSTALL  0: never install packages (fail instead, naming them); default 1
#   SLURM_LOCAL_PORTS    slurmctld and slurmd ports, default "6817 6818"
#   SLURM_LOCAL_TIMEOUT  seconds `up` waits for the node to become idle, default 60
set -euo pipefail
# The daemons live in sbin, which a non-root user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
DIR=${SLURM_LOCAL_DIR:-/var/lib/drivelab-slurm}
CONF=$DIR/etc/slurm.conf
ENV_FILE=$DIR/env
RUN=$DIR/run
LOG=$DIR/log
PARTITION=debug
MAX_TIME=1-00:00:00
read -r CTLD_PORT SLURMD_PORT <<<"${SLURM_LOCAL_PORTS:-6817 6818}"
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
# Debian's packages: the two daemons, the client commands, MUNGE (Slurm's authentication).
# (`slurm-wlm` is the metapackage of these plus 30-odd optional plugins and -dev packages.)
PACKAGES=(slurmctld slurmd slurm-client munge)
MUNGE_SOCKET=/run/munge/munge.socket.2

say() { echo "slurm-local: $*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") up|down|status

  up      install slurmctld, slurmd, slurm-client and munge if missing (apt-get),
          write a one-node configuration under \$SLURM_LOCAL_DIR ($DIR),
          start munged (unless running), slurmctld and slurmd, and wait until the node is idle
  down    cancel the cluster's jobs, stop its daemons (and munged if \`up\` started it)
  status  print sinfo, or "not running" (exit status 3)

Clients: export SLURM_CONF=$CONF
EOF
  exit 2
}

# Run the whole command as root: the daemons, apt-get and the munge key need it.
as_root() {
  [ "$(id -u)" = 0 ] && return 0
  if ! command -v sudo >/dev/null 2>&1 || ! sudo -n true 2>/dev/null; then
    die "\`$1\` must run as root, and \`sudo -n\` is not allowed here (run it with sudo)"
  fi
  exec sudo -n env SLURM_LOCAL_DIR="$DIR" SLURM_LOCAL_INSTALL="${SLURM_LOCAL_INSTALL:-1}" \
    SLURM_LOCAL_PORTS="$CTLD_PORT $SLURMD_PORT" SLURM_LOCAL_TIMEOUT="$TIMEOUT" \
    bash "$SCRIPT" "$@"
}

# The pid in FILE when that process is alive (not a zombie) and is COMM; a stale file fails.
live_pid() {
  local file=$1 comm=$2 pid stat
  [ -r "$file" ] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the fields after "(comm) ": state first
  [ "${stat%% *}" != Z ] || return 1
  echo "$pid"
}

# Polls COMMAND (a function or command) every 0.1 s for up to SECONDS; fails with its last status.
wait_for() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

gone() { ! kill -0 "$1" 2>/dev/null; }

# Stops the processes whose pid files are given as FILE:COMM (all at once: SIGTERM, then
# SIGKILL to those still there after 10 s) and removes the files.
stop_daemons() {
  local spec pid stopping=()
  for spec in "$@"; do
    if pid=$(live_pid "${spec%%:*}" "${spec#*:}"); then
      kill -TERM "$pid" 2>/dev/null || true
      stopping+=("$pid:${spec#*:}")
    fi
    rm -f "${spec%%:*}"
  done
  for spec in ${stopping[@]+"${stopping[@]}"}; do
    pid=${spec%%:*}
    if ! wait_for 10 gone "$pid"; then
      say "${spec#*:} ($pid) ignored SIGTERM for 10 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped ${spec#*:} ($pid)"
  done
}

node_name() { hostname -s 2>/dev/null || hostname; }

# The packages whose commands are missing, space-separated.
missing_packages() {
  local cmd missing=""
  for cmd in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || missing+="${missing:+ }${cmd#*:}"
  done
  echo "$missing"
}

# Under SLURM_LOCAL_INSTALL=0, missing packages are an error, not an installation.
check_may_install() {
  [ -z "$1" ] || [ "${SLURM_LOCAL_INSTALL:-1}" != 0 ] \
    || die "not installed: $1 (SLURM_LOCAL_INSTALL=0; install them with \`$SCRIPT up\` or apt-get install $1)"
}

ensure_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  check_may_install "$missing"
  command -v apt-get >/dev/null 2>&1 || die "not installed: $missing, and there is no apt-get to install them"
  say "installing $missing (apt-get)"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}")
  # Package lists may be missing or stale (their versions gone from the mirror): update once, then retry.
  "${apt[@]}" >"$LOG/apt.log" 2>&1 \
    || { apt-get update -qq >>"$LOG/apt.log" 2>&1 && "${apt[@]}" >>"$LOG/apt.log" 2>&1; } \
    || die "apt-get install ${PACKAGES[*]} failed (see $LOG/apt.log)"
}

munge_works() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

# MUNGE authenticates every Slurm message. A munged already running (a system service) is
# used as it is; otherwise start one, and remember that we did, for `down`.
ensure_munge() {
  if munge_works; then
    [ -e "$RUN/munged.ours" ] || say "using the running munged"
    return 0
  fi
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating the MUNGE key /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    (umask 077 && dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none)
    chown munge:munge /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  # A munged that died leaves its pid file and socket behind; --force lets a new one replace them.
  runuser -u munge -- munged --force --socket="$MUNGE_SOCKET" </dev/null >"$LOG/munged.out" 2>&1 \
    || die "munged did not start: $(tail -n 3 "$LOG/munged.out" | tr '\n' ' ')(see /var/log/munge/munged.log)"
  wait_for 10 munge_works || die "munged is not answering (see /var/log/munge/munged.log)"
  cat /run/munge/munged.pid >"$RUN/munged.ours"
  say "started munged ($(<"$RUN/munged.ours"))"
}

write_config() {
  local node=$1 out=$2 hw cpus mem
  # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  hw=$(SLURM_CONF=/dev/null slurmd -C | head -n1) || die "slurmd -C failed"
  [[ $hw =~ CPUs=([0-9]+) ]] || die "no CPUs in \`slurmd -C\`: $hw"
  cpus=${BASH_REMATCH[1]}
  [[ $hw =~ RealMemory=([0-9]+) ]] || die "no RealMemory in \`slurmd -C\`: $hw"
  mem=${BASH_REMATCH[1]}
  cat >"$out" <<EOF
# Written by drivelab's scripts/slurm-local.sh (rewritten by every \`up\`: edit the script, not this).
# A single-host cluster: this host is both controller and only compute node, over loopback.
ClusterName=drivelab
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Bind to 127.0.0.1 (the addresses above), not to every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
# Also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: a container without systemd or cgroup delegation has none to give. Job
# processes are tracked through /proc (parent pids), tasks are not pinned, and memory
# requests are scheduled but not enforced.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No accounting database (slurmdbd): \`sacct\` does not work. Finished jobs are listed in
# JobCompLoc (\`sacct --completion\` reads it) and stay visible to \`scontrol show job\` for MinJobAge.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
MinJobAge=600
SchedulerType=sched/backfill
# Look at pending jobs every second (defaults: 60 s, and 30 s for backfill): a job whose
# start was deferred (a requeued one, say) starts as soon as it may.
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobRequeue=1
ReturnToService=2
KillWait=5
InactiveLimit=0
MpiDefault=none
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 ${hw#NodeName=* } State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=$MAX_TIME DefMemPerCPU=$((mem / cpus)) State=UP
EOF
}

# The node's state as sinfo prints it (idle, mixed, allocated, down*, drained, ...).
node_state() { sinfo -h -N -n "$1" -o %T 2>/dev/null | head -n1; }

# Whether NODE can run jobs; with SINCE (seconds since the epoch), also whether a slurmd
# started since then has registered (slurmctld recovers a node's last state before that).
node_ready() {
  local node=$1 since=${2:-} started
  [[ $(node_state "$node") =~ ^(idle|mixed|allocated|completing)$ ]] || return 1
  [ -n "$since" ] || return 0
  [[ $(scontrol show node "$node" --oneliner 2>/dev/null) =~ SlurmdStartTime=([^ ]+) ]] || return 1
  started=$(date -d "${BASH_REMATCH[1]}" +%s 2>/dev/null) && [ "$started" -ge "$since" ]
}

# node_ready for `up`, which fails at once, with the end of its log, when a daemon has exited
# (a port in use, a bad configuration) rather than wait the whole timeout.
up_ready() {
  local daemon
  for daemon in slurmctld slurmd; do
    if [ -e "$RUN/$daemon.pid" ] && ! live_pid "$RUN/$daemon.pid" "$daemon" >/dev/null; then
      die "$daemon exited: $(tail -n 2 "$LOG/$daemon.log" 2>/dev/null | tr '\n' ' ')(see $LOG/$daemon.log)"
    fi
  done
  node_ready "$@"
}

jobs_gone() { [ -z "$(squeue -h -t RUNNING,COMPLETING,SUSPENDED -o %i 2>/dev/null)" ]; }

daemons_running() { live_pid "$RUN/slurmctld.pid" slurmctld >/dev/null && live_pid "$RUN/slurmd.pid" slurmd >/dev/null; }

# What $ENV_FILE holds, for shells (`. $ENV_FILE`) and for the tests.
env_lines() {
  printf 'export SLURM_CONF=%s\nexport SLURM_LOCAL_PARTITION=%s\nexport SLURM_LOCAL_NODE=%s\n' "$CONF" "$PARTITION" "$1"
}

print_usage() {
  cat <<EOF
Slurm is up: node $1, partition $PARTITION (default), logs in $LOG.
  export SLURM_CONF=$CONF        (or: . $ENV_FILE)
  sinfo; sbatch --wrap 'hostname'; squeue; scontrol show job ID
  (no accounting: sacct does not work; sacct --completion lists finished jobs)
  stop it: $SCRIPT down
EOF
}

# Starts DAEMON [ARGS] (it forks into the background). What it prints before it has its
# log file (a configuration error, say) goes to $LOG/DAEMON.out, not to our caller's pipes.
start_daemon() {
  local daemon=$1
  rm -f "$RUN/$daemon.pid"  # stale: the process is gone
  "$@" </dev/null >"$LOG/$daemon.out" 2>&1 \
    || die "$daemon did not start: $(tail -n 3 "$LOG/$daemon.out" | tr '\n' ' ')(see $LOG/$daemon.log)"
}

cmd_up() {
  local node new
  node=$(node_name)
  export SLURM_CONF=$CONF
  # Fast path, no root needed: running, with the configuration this script would write.
  if daemons_running && command -v slurmd >/dev/null 2>&1 && node_ready "$node"; then
    new=$(mktemp) && write_config "$node" "$new"
    if cmp -s "$new" "$CONF" && [ "$(env_lines "$node")" = "$(cat "$ENV_FILE" 2>/dev/null)" ]; then
      rm -f "$new"; print_usage "$node"; return 0
    fi
    rm -f "$new"
  fi
  check_may_install "$(missing_packages)"
  as_root up

  # The spool holds each job's script, which slurmstepd runs as the job's user: 0755, as Slurm's own.
  install -d -m 0755 "$DIR" "$DIR/etc" "$RUN" "$LOG" "$DIR/spool"
  install -d -m 0700 "$DIR/state"
  ensure_packages
  ensure_munge

  new=$(mktemp)
  write_config "$node" "$new"
  if ! cmp -s "$new" "$CONF"; then
    # A new configuration: daemons running with the old one restart (their jobs survive).
    [ -e "$CONF" ] && say "configuration changed: restarting the daemons"
    stop_daemons "$RUN/slurmd.pid:slurmd" "$RUN/slurmctld.pid:slurmctld"
    install -m 0644 "$new" "$CONF"
  fi
  rm -f "$new"
  env_lines "$node" >"$ENV_FILE"

  # Stale pid files (a crash, a reboot) are removed by live_pid's check failing.
  local since=""
  live_pid "$RUN/slurmctld.pid" slurmctld >/dev/null || start_daemon slurmctld
  if ! live_pid "$RUN/slurmd.pid" slurmd >/dev/null; then
    since=$(date +%s)
    start_daemon slurmd -N "$node"
  fi
  if ! wait_for "$TIMEOUT" up_ready "$node" "$since"; then
    # A node left down or drained (a crash, a changed configuration) is given back once.
    if [[ $(node_state "$node") =~ ^(down|drain) ]]; then
      scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
      wait_for 10 node_ready "$node" && { print_usage "$node"; return 0; }
    fi
    die "node $node is not idle after ${TIMEOUT} s (state: $(node_state "$node" || true); $(sinfo -h -R -o '%E' 2>/dev/null || true)); see $LOG/slurmctld.log and $LOG/slurmd.log"
  fi
  print_usage "$node"
}

cmd_down() {
  if ! daemons_running && [ ! -e "$RUN/munged.ours" ] && [ ! -e "$RUN/slurmctld.pid" ] && [ ! -e "$RUN/slurmd.pid" ]; then
    say "not running"; return 0
  fi
  as_root down
  export SLURM_CONF=$CONF
  # slurmd leaves running jobs alone when it stops: cancel them first, so nothing outlives `down`.
  local jobs
  jobs=$(daemons_running && squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
  if [ -n "${jobs// /}" ]; then
    say "cancelling the cluster's jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    wait_for 30 jobs_gone || say "jobs still ending: $(squeue -h -o %i | tr '\n' ' ')"
  fi
  local daemons=("$RUN/slurmd.pid:slurmd" "$RUN/slurmctld.pid:slurmctld")
  [ -e "$RUN/munged.ours" ] && daemons+=("$RUN/munged.ours:munged")
  stop_daemons "${daemons[@]}"
  say "stopped; configuration, job state and logs are kept in $DIR (remove it to forget them)"
}

cmd_status() {
  export SLURM_CONF=$CONF
  if [ -e "$CONF" ] && daemons_running && sinfo 2>/dev/null; then
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
