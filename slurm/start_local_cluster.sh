#!/usr/bin/env bash
# Starts a one-node SLURM cluster on this machine (munged, slurmctld and slurmd; a `debug` partition with all its
# cores), for tests/test_slurm.py and for trying `benchmark.sh --slurm` before a real cluster. Needs root; installs
# Debian's slurm-wlm and munge if they are missing. Idempotent: a daemon already running is left as it is.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "error: run as root (it writes /etc/slurm and starts daemons)" >&2; exit 2; }
if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
  command -v apt-get > /dev/null || { echo "error: no slurmctld or munged here, and no apt-get to install them" >&2
                                      exit 2; }
  echo "# installing slurm-wlm and munge"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge > /dev/null
fi

host="$(hostname -s)"
cpus="$(nproc)"
conf=/etc/slurm/slurm.conf
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
wanted="$(cat <<CONF
# written by slurm/start_local_cluster.sh: one node, no cgroups, no accounting
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
MinJobAge=600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
)"
# running PIDFILE: whether the daemon whose pid the file holds is alive
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null; }

if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$wanted" ]; then
  echo "$wanted" > "$conf"
  echo "# wrote $conf"
  if running /run/slurmctld.pid; then scontrol reconfigure; fi  # daemons already up read it again
fi

if [ ! -f /etc/munge/munge.key ]; then
  mungekey --create > /dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2> /dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2> /dev/null || true
chmod 400 /etc/munge/munge.key
running /run/munge/munged.pid || { echo "# starting munged"; su -s /bin/sh munge -c munged; }
running /run/slurmctld.pid || { echo "# starting slurmctld"; slurmctld; }
running /run/slurmd.pid || { echo "# starting slurmd"; slurmd; }

for _ in $(seq 60); do  # the node registers within seconds
  state="$(sinfo -h -N -o %t -n "$host" 2> /dev/null || true)"
  case "$state" in
    idle*|mix*|alloc*) echo "# cluster up: node $host ($cpus CPUs), partition debug"; exit 0 ;;
    down*|drain*) scontrol update NodeName="$host" State=RESUME 2> /dev/null || true ;;
  esac
  sleep 1
done
echo "error: the node $host did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
exit 1
