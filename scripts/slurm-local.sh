#!/usr/bin/env bash
# A real Slurm cluster on this machine, for development, tests and CI: one host, or several
# hosts made of Linux namespaces.
#
#   scripts/slurm-local.sh up                 install (if missing), configure and start it; wait until its node is idle
#   scripts/slurm-local.sh up --nodes N       the same with N hosts on this machine, each a set of Linux namespaces
#   scripts/slurm-local.sh down               cancel its jobs and stop the daemons it started (and remove the hosts)
#   scripts/slurm-local.sh status             sinfo, or "not running" (exit status 3)
#   scripts/slurm-local.sh exec HOST -- CMD   run CMD on one of the hosts (inside all its namespaces)
#
# Without --nodes: one node (this host, `hostname -s`, with the CPUs and memory `slurmd -C`
# reports), one partition ("debug", the default), reached over loopback only.
#
# With --nodes N: hosts node1 ... nodeN, each with its own hostname (UTS namespace), process
# table (PID namespace, its own /proc), network (network namespace: a veth pair into a bridge
# this script creates, on a private subnet of its own), /tmp and /run (mount namespace, tmpfs);
# the rest of the file system is shared, as NFS home directories would be. Every host runs its
# own munged and slurmd, node1 slurmctld too; this machine, at the bridge's first address, is
# where the client commands run. Traffic goes only between the addresses this script gives out
# on its bridge. See "Several hosts on this machine" below.
#
# Everything it writes lives under $SLURM_LOCAL_DIR (default /var/lib/drivelab-slurm),
# configuration included: an existing /etc/slurm/slurm.conf is never read nor touched, nor is
# /etc/hosts. Clients find the cluster through SLURM_CONF:
#   export SLURM_CONF=/var/lib/drivelab-slurm/etc/slurm.conf   (or: . /var/lib/drivelab-slurm/env)
#
# Needs root: when not root, it runs itself again under `sudo -n` (not for `status`, nor for
# an `up` that finds the single-host cluster running as configured).
# Settings (environment):
#   SLURM_LOCAL_DIR      where configuration, state, spool, logs and pid files go
#   SLURM_LOCAL_INSTALL  0: never install packages (fail instead, naming them); default 1
#   SLURM_LOCAL_PORTS    slurmctld and slurmd ports, default "6817 6818"
#   SLURM_LOCAL_TIMEOUT  seconds `up` waits for the nodes to become idle, default 60
#   SLURM_LOCAL_SUBNET   with --nodes: the hosts' private IPv4 subnet, default 10.213.0.0/24
#                        (this machine .1, node<i> .<10+i>); nothing else on this machine may use it
#   SLURM_LOCAL_BRIDGE   with --nodes: the bridge's name, default dlslurm0 (at most 10 characters;
#                        the veths are <bridge>-<i>)
#   SLURM_LOCAL_KEEP     with --nodes: folders under /tmp the hosts still share with this machine,
#                        separated by ":" (a checkout and its virtual environment that lie there)
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
# Several hosts (`up --nodes N`): what was made is listed in $STATE, as it is made.
SUBNET=${SLURM_LOCAL_SUBNET:-10.213.0.0/24}
BRIDGE=${SLURM_LOCAL_BRIDGE:-dlslurm0}
KEEP=${SLURM_LOCAL_KEEP:-}
STATE=$RUN/hosts
HOSTS_MAX=200

say() { echo "slurm-local: $*" >&2; }
die() { say "error: $*"; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $(basename "$0") up|down|status
       $(basename "$0") up --nodes N
       $(basename "$0") exec HOST [--] [CMD [ARG...]]

  up          install slurmctld, slurmd, slurm-client and munge if missing (apt-get),
              write a one-node configuration under \$SLURM_LOCAL_DIR ($DIR),
              start munged (unless running), slurmctld and slurmd, and wait until the node is idle
  up --nodes N
              the same with N hosts (node1 ... nodeN) made of Linux namespaces, each with its own
              hostname, processes, network, /tmp and /run, on the bridge $BRIDGE ($SUBNET;
              SLURM_LOCAL_BRIDGE, SLURM_LOCAL_SUBNET); slurmctld runs on node1, and the
              client commands here (this machine has the subnet's first address)
  down        cancel the cluster's jobs, stop its daemons (and munged if \`up\` started it);
              for a cluster of several hosts, also remove the hosts, their bridge and veths
  status      print sinfo (and the hosts), or "not running" (exit status 3)
  exec HOST   run CMD (default: a shell) on HOST (node2, or just 2) of a cluster of several
              hosts, as root, inside all its namespaces, with SLURM_CONF set

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
    SLURM_LOCAL_SUBNET="$SUBNET" SLURM_LOCAL_BRIDGE="$BRIDGE" SLURM_LOCAL_KEEP="$KEEP" \
    bash "$SCRIPT" "$@"
}

# The pid in FILE when that process is alive (not a zombie) and is COMM; a stale file fails.
live_pid() {
  local file=$1 comm=$2 pid
  [ -r "$file" ] || return 1
  pid=$(<"$file")
  proc_is "$pid" "$comm" || return 1
  echo "$pid"
}

# Whether process PID is alive (not a zombie) and is COMM.
proc_is() {
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  pid_alive "$1"
}

# Whether process PID is alive (not a zombie).
pid_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # the fields after "(comm) ": state first
  [ "${stat%% *}" != Z ]
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

# The packages whose commands are missing, space-separated; with "hosts", also those that
# `up --nodes` needs (ip, and unshare and nsenter, which util-linux has).
missing_packages() {
  local cmd missing="" cmds=(slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge)
  [ "${1:-}" != hosts ] || cmds+=(ip:iproute2 unshare:util-linux nsenter:util-linux)
  for cmd in "${cmds[@]}"; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || [[ " $missing " == *" ${cmd#*:} "* ]] || missing+="${missing:+ }${cmd#*:}"
  done
  echo "$missing"
}

# Under SLURM_LOCAL_INSTALL=0, missing packages are an error, not an installation.
check_may_install() {
  [ -z "$1" ] || [ "${SLURM_LOCAL_INSTALL:-1}" != 0 ] \
    || die "not installed: $1 (SLURM_LOCAL_INSTALL=0; install them with \`$SCRIPT up\` or apt-get install $1)"
}

ensure_packages() {
  local missing packages=("${PACKAGES[@]}")
  [ "${1:-}" != hosts ] || packages+=(iproute2 util-linux)
  missing=$(missing_packages "${1:-}")
  [ -z "$missing" ] && return 0
  check_may_install "$missing"
  command -v apt-get >/dev/null 2>&1 || die "not installed: $missing, and there is no apt-get to install them"
  say "installing $missing (apt-get)"
  install -d -m 0755 "$LOG"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}")
  # Package lists may be missing or stale (their versions gone from the mirror): update once, then retry.
  "${apt[@]}" >"$LOG/apt.log" 2>&1 \
    || { apt-get update -qq >>"$LOG/apt.log" 2>&1 && "${apt[@]}" >>"$LOG/apt.log" 2>&1; } \
    || die "apt-get install ${packages[*]} failed (see $LOG/apt.log)"
}

munge_works() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

ensure_munge_key() {
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating the MUNGE key /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    (umask 077 && dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none)
    chown munge:munge /etc/munge/munge.key
  fi
}

# MUNGE authenticates every Slurm message. A munged already running (a system service) is
# used as it is; otherwise start one, and remember that we did, for `down`.
ensure_munge() {
  if munge_works; then
    [ -e "$RUN/munged.ours" ] || say "using the running munged"
    return 0
  fi
  ensure_munge_key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  # A munged that died leaves its pid file and socket behind; --force lets a new one replace them.
  runuser -u munge -- munged --force --socket="$MUNGE_SOCKET" </dev/null >"$LOG/munged.out" 2>&1 \
    || die "munged did not start: $(tail -n 3 "$LOG/munged.out" | tr '\n' ' ')(see /var/log/munge/munged.log)"
  wait_for 10 munge_works || die "munged is not answering (see /var/log/munge/munged.log)"
  cat /run/munge/munged.pid >"$RUN/munged.ours"
  say "started munged ($(<"$RUN/munged.ours"))"
}

# HW: this machine as a node line of slurm.conf wants it, less the name; CPUS and MEMORY (MB).
read_hardware() {
  local hw
  # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
  hw=$(SLURM_CONF=/dev/null slurmd -C | head -n1) || die "slurmd -C failed"
  [[ $hw =~ CPUs=([0-9]+) ]] || die "no CPUs in \`slurmd -C\`: $hw"
  CPUS=${BASH_REMATCH[1]}
  [[ $hw =~ RealMemory=([0-9]+) ]] || die "no RealMemory in \`slurmd -C\`: $hw"
  MEMORY=${BASH_REMATCH[1]}
  HW=${hw#NodeName=* }
}

# The part of slurm.conf both kinds of cluster share, from AuthType on, given the MUNGE
# socket, slurmd's spool directory, pid file and log file, and slurmctld's pid file.
config_common() {
  cat <<EOF
AuthType=auth/munge
# Also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$1,cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$2
SlurmctldPidFile=$5
SlurmdPidFile=$3
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$4
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
EOF
}

write_config() {
  local node=$1 out=$2
  read_hardware
  {
    cat <<EOF
# Written by drivelab's scripts/slurm-local.sh (rewritten by every \`up\`: edit the script, not this).
# A single-host cluster: this host is both controller and only compute node, over loopback.
ClusterName=drivelab
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Bind to 127.0.0.1 (the addresses above), not to every interface.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
EOF
    config_common "$MUNGE_SOCKET" "$DIR/spool" "$RUN/slurmd.pid" "$LOG/slurmd.log" "$RUN/slurmctld.pid"
    cat <<EOF
NodeName=$node NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=$MAX_TIME DefMemPerCPU=$((MEMORY / CPUS)) State=UP
EOF
  } >"$out"
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
  [ ! -e "$STATE" ] || die "the cluster of $DIR has several hosts (\`up --nodes\`): remove it first ($SCRIPT down), or give this one another SLURM_LOCAL_DIR"
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

# Cancels the cluster's jobs and waits (30 s at most) until they have ended.
cancel_jobs() {
  local jobs
  jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ' || true)
  if [ -n "${jobs// /}" ]; then
    say "cancelling the cluster's jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    wait_for 30 jobs_gone || say "jobs still ending: $(squeue -h -o %i | tr '\n' ' ')"
  fi
}

cmd_down() {
  if [ -e "$STATE" ]; then
    down_hosts
    return
  fi
  if ! daemons_running && [ ! -e "$RUN/munged.ours" ] && [ ! -e "$RUN/slurmctld.pid" ] && [ ! -e "$RUN/slurmd.pid" ]; then
    say "not running"; return 0
  fi
  as_root down
  export SLURM_CONF=$CONF
  # slurmd leaves running jobs alone when it stops: cancel them first, so nothing outlives `down`.
  ! daemons_running || cancel_jobs
  local daemons=("$RUN/slurmd.pid:slurmd" "$RUN/slurmctld.pid:slurmctld")
  [ -e "$RUN/munged.ours" ] && daemons+=("$RUN/munged.ours:munged")
  stop_daemons "${daemons[@]}"
  say "stopped; configuration, job state and logs are kept in $DIR (remove it to forget them)"
}

cmd_status() {
  export SLURM_CONF=$CONF
  if [ -e "$STATE" ]; then
    status_hosts
    return
  fi
  if [ -e "$CONF" ] && daemons_running && sinfo 2>/dev/null; then
    return 0
  fi
  echo "not running"
  return 3
}

# ---------------------------------------------------------------------------------------
# Several hosts on this machine: `up --nodes N`.
#
# Each host is a set of namespaces held open by one long-lived process, its holder: PID 1 of
# the host's PID namespace, a bash loop that sleeps and, as an init does, reaps the processes
# orphaned there (daemons, job steps). Its pid is in $RUN/<host>.pid, so that
# `nsenter -t PID --all` enters the host (which is what `exec` does). Killing it (SIGKILL) ends
# every process of the host, and with the last of them go its namespaces, its mounts and its
# veth pair. Its parent, the `unshare --fork` that made the namespaces, kills it when it dies
# itself (--kill-child). Each host has its own:
#   UTS      hostname: node1 ... nodeN;
#   PID      process table, with its own /proc (--mount-proc);
#   network  loopback, and eth0: one end of a veth pair whose other end, <bridge>-<i>, is on
#            the bridge, at <subnet>.<10+i>. Its one route is the subnet's (no default route,
#            no IPv6): a host reaches the other hosts and this machine's address on the bridge,
#            nothing else;
#   mount    namespace, private (nothing propagates either way): tmpfs on /tmp and on /run,
#            and $DIR/etc/hosts bind-mounted on /etc/hosts, so that the cluster's names resolve
#            on its hosts while this machine's /etc/hosts stays as it is. The rest of the file
#            system is this machine's, shared by all the hosts as NFS home directories would be;
#   IPC      namespace (System V IPC, POSIX message queues).
# slurmctld runs on node1, which is also a compute node, and listens on node1's address only.
# This machine is the login node: it has the bridge's first address, <subnet>.1, and the client
# commands (sbatch, srun, sinfo) work from an ordinary shell with SLURM_CONF. (slurmctld is not
# run here because Slurm binds it to the address its host's name resolves to, which here is
# whatever this machine's /etc/hosts says; on node1 it is node1's address on the bridge.)
# slurmd and srun listen on every address of the host they run on (on a host: its loopback and
# its bridge address). slurmd answers srun at the address srun's request came from, which for
# an srun on this machine is its bridge address; bound to the address its name resolves to
# (NoInAddrAny), srun would not be there.
#
# MUNGE: each host runs its own munged (its socket in the host's own /run), and this machine one
# more, for the clients; all of them use /etc/munge/munge.key. Their socket has a name of this
# cluster's own, /run/munge/slurm-local-<bridge>.socket, so that this machine's munged is
# neither one already running here (the system's, the single-host cluster's) nor disturbed by
# one. On the hosts /run/munge/munge.socket.2 (munge's default) points to it.
#
# What `up` makes is listed in $STATE as it is made (bridge, hosts, this machine's munged),
# so that `down`, and an `up` that fails, remove exactly that.

HOST_PREFIX=node
# What a bridge or veth of this cluster has as its alias (`ip link`), and its holders among
# their arguments: nothing else is ever removed or killed.
LINK_ALIAS="drivelab slurm-local $DIR"
holder_tag() { echo "drivelab-slurm-host $1 $DIR"; }
host_socket() { echo "/run/munge/slurm-local-$1.socket"; }
# PID 1 of a host. bash reaps every child it has, adopted ones included, when one ends.
HOLDER_LOOP='trap "exit 0" TERM; while :; do sleep 86400 & wait $!; done'
# Run in a new host's UTS, mount and network namespaces: NAME ADDRESS/PREFIX HOSTS_FILE KEEP HOLD.
# The folders of KEEP (under /tmp) are bound at HOLD/<i> (a folder outside /tmp), and moved back
# to their paths on the new /tmp.
HOST_SETUP='set -eu
hostname "$1"
IFS=: read -r -a keep <<<"${4:-}"
i=0
for path in "${keep[@]}"; do
  [ -n "$path" ] || continue
  mkdir -p "$5/$i"
  mount --bind "$path" "$5/$i"
  i=$((i + 1))
done
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
i=0
for path in "${keep[@]}"; do
  [ -n "$path" ] || continue
  mkdir -p "$path"
  mount --move "$5/$i" "$path"
  i=$((i + 1))
done
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
install -d -m 1777 /run/lock
install -d -o munge -g munge -m 0755 /run/munge
mount --bind "$3" /etc/hosts
for conf in all default eth0; do
  f=/proc/sys/net/ipv6/conf/$conf/disable_ipv6
  [ ! -w "$f" ] || echo 1 >"$f"
done
ip link set lo up
ip addr add "$2" dev eth0
ip link set eth0 up'

# The address A.B.C.D as a number, and back.
ip_to_int() {
  local IFS=. a
  read -r -a a <<<"$1"
  echo $(((10#${a[0]} << 24) | (10#${a[1]} << 16) | (10#${a[2]} << 8) | 10#${a[3]}))
}
int_to_ip() { echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"; }

# Checks $SUBNET for N hosts; sets NET (its network address as a number) and PREFIX.
parse_subnet() {
  local nodes=$1 addr octet mask
  [[ $SUBNET =~ ^([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})/([0-9]{1,2})$ ]] \
    || die "SLURM_LOCAL_SUBNET=$SUBNET is not an IPv4 subnet such as 10.213.0.0/24"
  addr=${BASH_REMATCH[1]}
  PREFIX=$((10#${BASH_REMATCH[2]}))
  for octet in ${addr//./ }; do
    [ $((10#$octet)) -le 255 ] || die "SLURM_LOCAL_SUBNET=$SUBNET: $octet is not a byte"
  done
  [ "$PREFIX" -ge 8 ] && [ "$PREFIX" -le 28 ] \
    || die "SLURM_LOCAL_SUBNET=$SUBNET: give a prefix length from 8 to 28 (/24, say)"
  NET=$(ip_to_int "$addr")
  mask=$(((0xFFFFFFFF << (32 - PREFIX)) & 0xFFFFFFFF))
  [ $((NET & mask)) -eq "$NET" ] \
    || die "SLURM_LOCAL_SUBNET=$SUBNET has host bits set: did you mean $(int_to_ip $((NET & mask)))/$PREFIX?"
  # RFC 1918 only: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
  if ! { [ $((NET >> 24)) -eq 10 ] \
    || { [ $((NET >> 20)) -eq $(((172 << 4) | 1)) ] && [ "$PREFIX" -ge 12 ]; } \
    || { [ $((NET >> 16)) -eq $(((192 << 8) | 168)) ] && [ "$PREFIX" -ge 16 ]; }; }; then
    die "SLURM_LOCAL_SUBNET=$SUBNET is not a private subnet (within 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"
  fi
  [ $((10 + nodes)) -lt $(((1 << (32 - PREFIX)) - 1)) ] \
    || die "SLURM_LOCAL_SUBNET=$SUBNET is too small for $nodes hosts (they take .11 to .$((10 + nodes))): use a /24"
}
ctl_addr() { int_to_ip $((NET + 1)); }
host_addr() { int_to_ip $((NET + 10 + $1)); }

# Whether A.B.C.D[/LEN] and $NET/$PREFIX overlap.
overlaps() {
  local len=32 shorter
  [[ $1 != */* ]] || len=${1#*/}
  shorter=$((len < PREFIX ? len : PREFIX))
  [ $(($(ip_to_int "${1%/*}") >> (32 - shorter))) -eq $((NET >> (32 - shorter))) ]
}

# What on this machine uses addresses of $SUBNET already (an address, a route), if anything.
subnet_users() {
  local line dst dev addr
  while read -r line; do
    dst=${line%% *}
    [[ $dst =~ ^[0-9.]+(/[0-9]+)?$ ]] || continue  # "default", or a route type
    [[ " $line " != *" dev $BRIDGE "* ]] || continue
    ! overlaps "$dst" || echo "route $line;"
  done < <(ip -4 route show 2>/dev/null)
  while read -r _ dev _ addr _; do
    [ "$dev" != "$BRIDGE" ] || continue
    ! overlaps "$addr" || echo "address $addr of $dev;"
  done < <(ip -o -4 addr show 2>/dev/null)
}

link_exists() { [ -e "/sys/class/net/$1" ]; }
link_ours() { [ "$(cat "/sys/class/net/$1/ifalias" 2>/dev/null)" = "$LINK_ALIAS" ]; }
link_gone() { ! link_exists "$1"; }

# Turns IPv6 off on network interface DEV of this machine: the cluster speaks IPv4 only.
no_ipv6() {
  local f=/proc/sys/net/ipv6/conf/$1/disable_ipv6
  [ ! -w "$f" ] || echo 1 >"$f"
}

# Whether process PID is alive, is COMM, and has TAG among its arguments.
tagged_pid() {
  local arg
  proc_is "$1" "$2" || return 1
  while IFS= read -r -d '' arg; do
    [ "$arg" != "$3" ] || return 0
  done 2>/dev/null <"/proc/$1/cmdline"
  return 1
}

# The live processes named COMM in the PID namespace of process PID (their pids here).
ns_pids() {
  local ns p comm
  ns=$(readlink "/proc/$1/ns/pid" 2>/dev/null) || return 0
  for p in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$p/comm" || continue
    [ "$comm" = "$2" ] && [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] && proc_is "${p#/proc/}" "$2" \
      && echo "${p#/proc/}"
  done
  return 0
}

record() { echo "$*" >>"$STATE"; }
state_value() { awk -v k="$1" '$1 == k { print $2; exit }' "$STATE" 2>/dev/null || true; }
# "NAME ADDRESS VETH UNSHARE_PID", a line a host.
state_hosts() { awk '$1 == "host" { print $2, $3, $4, $5 }' "$STATE" 2>/dev/null || true; }

# The pid of HOST's holder, when it is alive.
holder_of() {
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  tagged_pid "$pid" bash "$(holder_tag "$1")" || return 1
  echo "$pid"
}

# Sets HOLDER once the `unshare` UPID has started the holder of host NAME; fails at once
# (with unshare's words) when unshare has ended.
holder_started() {
  local upid=$1 name=$2 child p
  if ! pid_alive "$upid"; then
    die "could not make the namespaces of host $name: $(tail -n 3 "$LOG/$name.holder.out" | tr '\n' ' ')(this needs root, and a kernel and container that allow new UTS, PID, network, mount and IPC namespaces)"
  fi
  tagged_pid "$upid" unshare "$(holder_tag "$name")" || return 1  # not yet
  child=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null) || child=""
  if [ -z "$child" ]; then  # a kernel without /proc/PID/task/TID/children: look for it
    for p in /proc/[0-9]*; do
      [[ $(cat "$p/stat" 2>/dev/null) =~ \)\ [A-Za-z]\ $upid\  ]] && child=${p#/proc/} && break
    done
  fi
  child=${child%% *}
  [ -n "$child" ] && tagged_pid "$child" bash "$(holder_tag "$name")" || return 1
  HOLDER=$child
}

munge_works_at() { munge -n -S "$1" 2>/dev/null | unmunge -S "$1" >/dev/null 2>&1; }
# Whether the munged of the host whose holder is PID answers at SOCKET.
host_munge_works() { nsenter -t "$1" --all -- sh -c 'munge -n -S "$1" | unmunge -S "$1"' sh "$2" >/dev/null 2>&1; }

# munged (as user munge, with the cluster's socket; its pid file, log and seed in DIR/munge/NAME),
# on this machine, or with PID on the host whose holder that is.
start_munged() {
  local name=$1 socket=$2 hpid=${3:-} dir=$DIR/munge/$1 pidfile enter=()
  install -d -o munge -g munge -m 0700 "$dir"
  pidfile=$dir/munged.pid
  if [ -n "$hpid" ]; then
    enter=(nsenter -t "$hpid" --all --)
    pidfile=/run/munge/munged.pid  # in the host's /run, which has the pid as the host sees it
  fi
  "${enter[@]}" runuser -u munge -- munged --force --socket="$socket" --key-file=/etc/munge/munge.key \
    --pid-file="$pidfile" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed" \
    </dev/null >"$LOG/$name.munged.out" 2>&1 \
    || die "munged on $name did not start: $(tail -n 3 "$LOG/$name.munged.out" | tr '\n' ' ')(see $dir/munged.log)"
  if [ -n "$hpid" ]; then
    nsenter -t "$hpid" --mount -- ln -sfn "$(basename "$socket")" "$MUNGE_SOCKET"
    wait_for 10 host_munge_works "$hpid" "$socket" || die "munged on $name is not answering (see $dir/munged.log)"
  else
    wait_for 10 munge_works_at "$socket" || die "munged on $name is not answering (see $dir/munged.log)"
  fi
}

# The bridge, with this machine's address on it.
make_bridge() {
  {
    ip link add name "$BRIDGE" type bridge \
      && ip link set dev "$BRIDGE" alias "$LINK_ALIAS" \
      && no_ipv6 "$BRIDGE" \
      && ip addr add "$(ctl_addr)/$PREFIX" dev "$BRIDGE" \
      && ip link set dev "$BRIDGE" up
  } >"$LOG/bridge.out" 2>&1 \
    || die "could not make the bridge $BRIDGE: $(tail -n 2 "$LOG/bridge.out" | tr '\n' ' ')(this needs root, allowed to change the network: in a container, CAP_NET_ADMIN)"
}

# Host I: its namespaces and holder, its veth pair into the bridge, its mounts and address, its munged.
start_host() {
  local i=$1 name=$HOST_PREFIX$1 addr veth=$BRIDGE-$1 upid hpid
  addr=$(host_addr "$i")
  setsid unshare --uts --ipc --net --pid --mount --fork --kill-child --mount-proc --propagation private \
    -- bash -c "$HOLDER_LOOP" "$(holder_tag "$name")" </dev/null >"$LOG/$name.holder.out" 2>&1 &
  upid=$!
  disown "$upid"  # no word from bash when `down` kills it
  record host "$name" "$addr" "$veth" "$upid"
  wait_for 10 holder_started "$upid" "$name" || die "the holder of host $name did not start (see $LOG/$name.holder.out)"
  hpid=$HOLDER
  echo "$hpid" >"$RUN/$name.pid"
  ip link add "$veth" type veth peer name eth0 netns "$hpid" >"$LOG/$name.setup.out" 2>&1 \
    || die "could not make the veth pair $veth for $name: $(tail -n 2 "$LOG/$name.setup.out" | tr '\n' ' ')"
  ip link set dev "$veth" alias "$LINK_ALIAS"
  no_ipv6 "$veth"
  ip link set dev "$veth" master "$BRIDGE" up
  nsenter -t "$hpid" --uts --mount --net -- bash -c "$HOST_SETUP" "$name" "$name" "$addr/$PREFIX" "$DIR/etc/hosts" "$KEEP" "$RUN/keep-$name" \
    >>"$LOG/$name.setup.out" 2>&1 \
    || die "could not set up host $name: $(tail -n 2 "$LOG/$name.setup.out" | tr '\n' ' ')"
  start_munged "$name" "$SOCK" "$hpid"
  say "host $name: $addr, holder $hpid"
}

# The hosts' /etc/hosts: this machine and the hosts, at their addresses on the bridge.
write_hosts_file() {
  local nodes=$1 i
  {
    echo "# Written by drivelab's scripts/slurm-local.sh: /etc/hosts on the cluster's hosts (bind-mounted there)."
    printf '127.0.0.1\tlocalhost\n%s\t%s\n' "$(ctl_addr)" "$(node_name)"
    for ((i = 1; i <= nodes; i++)); do
      printf '%s\t%s\n' "$(host_addr "$i")" "$HOST_PREFIX$i"
    done
  } >"$2"
}

write_config_hosts() {
  local nodes=$1 out=$2 i names=""
  read_hardware
  {
    cat <<EOF
# Written by drivelab's scripts/slurm-local.sh (rewritten by every \`up\`: edit the script, not this).
# A cluster of $nodes hosts on this machine, each a set of Linux namespaces, on the bridge $BRIDGE
# ($SUBNET): the hosts are at their NodeAddr, ${HOST_PREFIX}1 is also the controller, and this
# machine, at $(ctl_addr), is where clients (sbatch, srun) run.
ClusterName=drivelab
SlurmctldHost=${HOST_PREFIX}1($(host_addr 1))
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# slurmctld binds to the address its hostname resolves to (${HOST_PREFIX}1's, through the hosts'
# /etc/hosts); slurmd and srun bind to every address of the host they run on (a host's are its
# loopback and its address on the bridge).
CommunicationParameters=NoCtldInAddrAny
EOF
    # The pid files are in the hosts' own /run.
    config_common "$SOCK" "$DIR/spool/%n" /run/slurmd.pid "$LOG/slurmd-%n.log" /run/slurmctld.pid
    echo "# Each host has all of this machine's CPUs and memory: the hosts share them."
    for ((i = 1; i <= nodes; i++)); do
      echo "NodeName=$HOST_PREFIX$i NodeAddr=$(host_addr "$i") $HW State=UNKNOWN"
      names+=${names:+,}$HOST_PREFIX$i
    done
    echo "PartitionName=$PARTITION Nodes=$names Default=YES MaxTime=$MAX_TIME DefMemPerCPU=$((MEMORY / CPUS)) State=UP"
  } >"$out"
}

env_lines_hosts() {
  local names
  names=$(state_hosts | awk '{ print $1 }' | paste -sd, -)
  printf 'export SLURM_CONF=%s\nexport SLURM_LOCAL_PARTITION=%s\nexport SLURM_LOCAL_NODES=%s\n' "$CONF" "$PARTITION" "$names"
}

print_usage_hosts() {
  local nodes=$1 hosts=${HOST_PREFIX}1
  [ "$nodes" = 1 ] || hosts+=" ... $HOST_PREFIX$nodes"
  cat <<EOF
Slurm is up: hosts $hosts ($(host_addr 1) ...) on the bridge $BRIDGE ($SUBNET),
partition $PARTITION (default), slurmctld on node1; this machine is at $(ctl_addr). Logs in $LOG.
  export SLURM_CONF=$CONF        (or: . $ENV_FILE)
  sinfo; srun -N$nodes -l hostname; sbatch -N$nodes --wrap 'srun hostname'; squeue
  on a host: $SCRIPT exec node$nodes -- ps -e    (or: nsenter -t \$(cat $RUN/node$nodes.pid) --all)
  stop it: $SCRIPT down
EOF
}

# The pid of slurmctld (on the first host), when it runs.
ctld_pid() {
  local hpid pid
  hpid=$(holder_of "${HOST_PREFIX}1") || return 1
  pid=$(ns_pids "$hpid" slurmctld)
  [ -n "$pid" ] || return 1
  echo "${pid%%$'\n'*}"
}

# Whether every part of the cluster of hosts in $STATE runs: this machine's munged, on every
# host its holder, munged and slurmd, and slurmctld.
hosts_running() {
  local name addr veth upid hpid
  ctld_pid >/dev/null || return 1
  live_pid "$(state_value munged)" munged >/dev/null || return 1
  while read -r name addr veth upid; do
    hpid=$(holder_of "$name") || return 1
    [ -n "$(ns_pids "$hpid" slurmd)" ] && [ -n "$(ns_pids "$hpid" munged)" ] || return 1
  done < <(state_hosts)
}

# node_ready for each host, failing at once (with the end of its log) when a daemon has exited.
hosts_ready() {
  local nodes=$1 since=$2 i name hpid
  ctld_pid >/dev/null \
    || die "slurmctld exited: $(tail -n 2 "$LOG/slurmctld.log" 2>/dev/null | tr '\n' ' ')(see $LOG/slurmctld.log)"
  for ((i = 1; i <= nodes; i++)); do
    name=$HOST_PREFIX$i
    hpid=$(holder_of "$name") || die "host $name is gone (its holder ended; see $LOG/$name.holder.out)"
    [ -n "$(ns_pids "$hpid" slurmd)" ] \
      || die "slurmd on $name exited: $(tail -n 2 "$LOG/slurmd-$name.log" 2>/dev/null | tr '\n' ' ')(see $LOG/slurmd-$name.log)"
  done
  for ((i = 1; i <= nodes; i++)); do
    node_ready "$HOST_PREFIX$i" "$since" || return 1
  done
}

# Removes what $STATE lists: slurmctld, the hosts' holders (and so their daemons, namespaces,
# mounts and veths), the bridge, this machine's munged. Jobs are not cancelled here.
teardown_hosts() {
  local name addr veth upid hpid pid killed=() socket bridge
  [ -e "$STATE" ] || return 0
  # slurmctld saves its state as it stops. The hosts keep nothing: SIGKILL to a holder (PID 1
  # of its host) ends every process of the host, slurmd and munged included, and the host's
  # namespaces go with the last of them.
  if pid=$(ctld_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for 10 ended "$pid" slurmctld; then
      say "slurmctld ($pid) ignored SIGTERM for 10 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped slurmctld ($pid)"
  fi
  while read -r name addr veth upid; do
    if hpid=$(holder_of "$name"); then
      kill -KILL "$hpid" 2>/dev/null || true
      killed+=("$hpid:bash")
    fi
    if tagged_pid "$upid" unshare "$(holder_tag "$name")"; then
      kill -KILL "$upid" 2>/dev/null || true
      killed+=("$upid:unshare")
    fi
    rm -f "$RUN/$name.pid"
  done < <(state_hosts)
  for pid in ${killed[@]+"${killed[@]}"}; do
    wait_for 10 ended "${pid%%:*}" "${pid#*:}" || say "process ${pid%%:*} (${pid#*:}) is still there after SIGKILL"
  done
  # A veth pair goes with its network namespace, which the kernel frees a little later.
  while read -r name addr veth upid; do
    if ! wait_for 10 link_gone "$veth" && link_ours "$veth"; then
      ip link del "$veth" 2>/dev/null || say "could not remove the veth $veth"
    fi
    say "removed host $name ($addr)"
  done < <(state_hosts)
  bridge=$(state_value bridge)
  if [ -n "$bridge" ] && link_exists "$bridge" && link_ours "$bridge"; then
    ip link del "$bridge" && say "removed the bridge $bridge"
  fi
  socket=$(state_value socket)
  if [ -n "$(state_value munged)" ]; then
    stop_daemons "$(state_value munged):munged"
    [ -z "$socket" ] || munge_works_at "$socket" || rm -f "$socket" "$socket.lock"
  fi
  rm -f "$STATE"
}

ended() { ! proc_is "$1" "$2"; }

# The EXIT trap of `up --nodes`: when it fails, it removes what it made.
up_hosts_exit() {
  local rc=$1
  trap - EXIT INT TERM HUP
  if [ "$rc" != 0 ]; then
    set +e
    if [ "$rc" = 130 ]; then say "up interrupted: removing what it made"; else say "up failed: removing what it made"; fi
    teardown_hosts
    [ "$rc" = 130 ] || say "up failed (the reason is above)"
  fi
  exit "$rc"
}

cmd_up_hosts() {
  local nodes=$1 i new since bad
  if ! [[ $nodes =~ ^[1-9][0-9]{0,2}$ ]] || [ "$nodes" -gt "$HOSTS_MAX" ]; then
    say "--nodes takes a number of hosts from 1 to $HOSTS_MAX, not '$nodes'"
    usage
  fi
  [[ $BRIDGE =~ ^[A-Za-z][A-Za-z0-9_.]{0,9}$ ]] \
    || die "SLURM_LOCAL_BRIDGE=$BRIDGE: give a name of 1 to 10 letters, digits, '_' and '.' (the veths are named <bridge>-<i>)"
  [[ $DIR == /* ]] || die "SLURM_LOCAL_DIR=$DIR: give an absolute path (the hosts share it)"
  case "$(readlink -m "$DIR")/" in
    /tmp/* | /run/* | /var/run/*)
      die "SLURM_LOCAL_DIR=$DIR is under /tmp or /run, of which every host has its own: the hosts would not see it. Choose a folder elsewhere (/var/lib, /var/tmp, /srv, ...)" ;;
  esac
  parse_subnet "$nodes"
  SOCK=$(host_socket "$BRIDGE")
  check_may_install "$(missing_packages hosts)"
  as_root up --nodes "$nodes"
  locked up --nodes "$nodes"
  export SLURM_CONF=$CONF

  if [ ! -e "$STATE" ] && { live_pid "$RUN/slurmctld.pid" slurmctld >/dev/null || live_pid "$RUN/slurmd.pid" slurmd >/dev/null; }; then
    die "the single-host cluster of $DIR is running: stop it first ($SCRIPT down), or give this one another SLURM_LOCAL_DIR"
  fi
  if [ -e "$STATE" ]; then
    if [ "$(state_value nodes) $(state_value subnet) $(state_value bridge)" != "$nodes $SUBNET $BRIDGE" ]; then
      if hosts_running; then
        die "a cluster of $(state_value nodes) hosts on $(state_value bridge) ($(state_value subnet)) runs from $DIR: stop it first ($SCRIPT down), or give this one another SLURM_LOCAL_DIR"
      fi
    elif hosts_running; then
      new=$(mktemp)
      write_config_hosts "$nodes" "$new"
      if cmp -s "$new" "$CONF" && [ "$(env_lines_hosts)" = "$(cat "$ENV_FILE" 2>/dev/null)" ] \
        && wait_for 5 hosts_ready "$nodes" ""; then
        rm -f "$new"
        print_usage_hosts "$nodes"
        return 0
      fi
      rm -f "$new"
    fi
    say "making the cluster again: what is left of the last one is incomplete, or its configuration changed"
    cancel_jobs_if_ctld
    teardown_hosts
  fi

  ensure_packages hosts
  # What could be in the way: an interface of the same name, addresses or routes in the subnet.
  for bad in "$BRIDGE" $(for ((i = 1; i <= nodes; i++)); do echo "$BRIDGE-$i"; done); do
    if link_exists "$bad"; then
      link_ours "$bad" || die "a network interface named $bad exists already, not made by this script for $DIR: choose another bridge name (SLURM_LOCAL_BRIDGE)"
      ip link del "$bad"  # left over by this cluster
    fi
  done
  bad=$(subnet_users | paste -sd' ' -)
  [ -z "$bad" ] || die "SLURM_LOCAL_SUBNET=$SUBNET is in use on this machine (${bad%;}): choose a free private subnet, e.g. SLURM_LOCAL_SUBNET=10.214.0.0/24"
  for ((i = 1; i <= nodes; i++)); do
    [ "$(node_name)" != "$HOST_PREFIX$i" ] || die "this machine is named $HOST_PREFIX$i, as one of the hosts would be: rename it (hostname), or use fewer hosts"
  done
  ! munge_works_at "$SOCK" || die "a munged answers at $SOCK already (of another cluster whose bridge is also $BRIDGE?): choose another bridge name (SLURM_LOCAL_BRIDGE)"
  # The spool holds each job's script, which slurmstepd runs as the job's user: 0755, as Slurm's own.
  install -d -m 0755 "$DIR" "$DIR/etc" "$RUN" "$LOG" "$DIR/spool" "$DIR/munge"
  install -d -m 0700 "$DIR/state"
  ensure_munge_key

  trap 'up_hosts_exit $?' EXIT
  trap 'exit 130' INT TERM HUP
  : >"$STATE"
  record nodes "$nodes"
  record subnet "$SUBNET"
  record bridge "$BRIDGE"
  record socket "$SOCK"
  write_hosts_file "$nodes" "$DIR/etc/hosts"
  new=$(mktemp)
  write_config_hosts "$nodes" "$new"
  install -m 0644 "$new" "$CONF"
  rm -f "$new"
  for ((i = 1; i <= nodes; i++)); do install -d -m 0755 "$DIR/spool/$HOST_PREFIX$i"; done

  make_bridge
  say "bridge $BRIDGE: $SUBNET, this machine at $(ctl_addr)"
  record munged "$DIR/munge/controller/munged.pid"
  start_munged controller "$SOCK"
  for ((i = 1; i <= nodes; i++)); do start_host "$i"; done

  since=$(date +%s)
  nsenter -t "$(holder_of "${HOST_PREFIX}1")" --all -- slurmctld </dev/null >"$LOG/slurmctld.out" 2>&1 \
    || die "slurmctld did not start: $(tail -n 3 "$LOG/slurmctld.out" | tr '\n' ' ')(see $LOG/slurmctld.log)"
  for ((i = 1; i <= nodes; i++)); do
    nsenter -t "$(holder_of "$HOST_PREFIX$i")" --all -- slurmd -N "$HOST_PREFIX$i" </dev/null >"$LOG/slurmd-$HOST_PREFIX$i.out" 2>&1 \
      || die "slurmd on $HOST_PREFIX$i did not start: $(tail -n 3 "$LOG/slurmd-$HOST_PREFIX$i.out" | tr '\n' ' ')(see $LOG/slurmd-$HOST_PREFIX$i.log)"
  done
  if ! wait_for "$TIMEOUT" hosts_ready "$nodes" "$since"; then
    die "the hosts are not all idle after ${TIMEOUT} s ($(sinfo -h -N -o '%N %T' 2>/dev/null | tr '\n' ' ')$(sinfo -h -R -o '%E' 2>/dev/null || true)); see $LOG/slurmctld.log and $LOG/slurmd-*.log"
  fi
  env_lines_hosts >"$ENV_FILE"
  trap - EXIT INT TERM HUP
  print_usage_hosts "$nodes"
}

# Runs this script again with the same arguments, holding a lock: one `up --nodes` or `down`
# of a cluster of hosts at a time on this machine. (flock -o: what it starts does not hold it.)
LOCK=/run/lock/drivelab-slurm-local.lock
locked() {
  local rc=0
  [ -z "${SLURM_LOCAL_LOCKED:-}" ] && command -v flock >/dev/null 2>&1 && [ -d "${LOCK%/*}" ] || return 0
  SLURM_LOCAL_LOCKED=1 flock -o -w 300 -E 75 "$LOCK" bash "$SCRIPT" "$@" || rc=$?
  [ "$rc" != 75 ] || die "another \`up --nodes\` or \`down\` has held $LOCK for 300 s: try again when it has ended"
  exit "$rc"
}

cancel_jobs_if_ctld() {
  ! ctld_pid >/dev/null || cancel_jobs
}

down_hosts() {
  as_root down
  locked down
  export SLURM_CONF=$CONF
  # slurmd leaves running jobs alone when it stops (and the hosts end with it): cancel them first.
  cancel_jobs_if_ctld
  teardown_hosts
  rmdir "$RUN"/keep-*/* "$RUN"/keep-* 2>/dev/null || true  # the empty folders kept folders were moved through (never rm -r: a mount might live there)
  say "stopped and removed the hosts; configuration, job state and logs are kept in $DIR (remove it to forget them)"
}

status_hosts() {
  local name addr veth upid hpid missing=""
  if sinfo 2>/dev/null; then
    printf '%-10s %-16s %s\n' HOST ADDRESS HOLDER
    while read -r name addr veth upid; do
      hpid=$(holder_of "$name") || { hpid="(gone)"; missing+=" $name"; }
      printf '%-10s %-16s %s\n' "$name" "$addr" "$hpid"
    done < <(state_hosts)
    [ -n "$missing" ] || return 0
    echo "incomplete: host(s)$missing gone ($SCRIPT up --nodes $(state_value nodes) makes the cluster again)"
    return 1
  fi
  echo "not running"
  return 3
}

# Runs CMD (default: a shell) inside all the namespaces of HOST, in the current folder when
# the host has it (not under /tmp or /run, which are the host's own), else in /.
cmd_exec() {
  local host=${1:-} hpid names
  [ -n "$host" ] || usage
  shift
  [ "${1:-}" != -- ] || shift
  [[ ! $host =~ ^[0-9]+$ ]] || host=$HOST_PREFIX$host
  [ -e "$STATE" ] || die "no cluster of several hosts runs from $DIR (make one: $SCRIPT up --nodes N)"
  names=$(state_hosts | awk '{ print $1 }')
  [[ $'\n'$names$'\n' == *$'\n'$host$'\n'* ]] || die "no host $host in the cluster of $DIR (its hosts: ${names//$'\n'/ })"
  as_root exec "$host" -- "$@"
  hpid=$(holder_of "$host") \
    || die "host $host is gone (its holder ended): $SCRIPT up --nodes $(state_value nodes) makes the cluster again"
  [ $# -gt 0 ] || set -- "${SHELL:-/bin/sh}"
  export SLURM_CONF=$CONF
  exec nsenter -t "$hpid" --all -- /bin/sh -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' sh "$PWD" "$@"
}

case "${1:-}" in
  up)
    shift
    nodes=-
    while [ $# -gt 0 ]; do
      case $1 in
        --nodes) [ $# -ge 2 ] || usage; nodes=$2; shift 2 ;;
        --nodes=*) nodes=${1#--nodes=}; shift ;;
        *) say "up: unknown option '$1'"; usage ;;
      esac
    done
    if [ "$nodes" = - ]; then cmd_up; else cmd_up_hosts "$nodes"; fi
    ;;
  down) [ $# -eq 1 ] || usage; cmd_down ;;
  status) [ $# -eq 1 ] || usage; cmd_status ;;
  exec) shift; cmd_exec "$@" ;;
  *) usage ;;
esac
