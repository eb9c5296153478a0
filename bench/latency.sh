#!/usr/bin/env bash
# Benchmark: transfers over a real round-trip time, tether against sftp and
# scp, in one run.
#
#   sudo bash bench/latency.sh [MiB] [FILES] [RTTS]   (defaults: 200, 2000, "20 100")
#
# This kernel has no netem: the delay comes from ../shared/tools/latency/net.sh
# (a network namespace joined by a veth pair, every packet held for half the
# round-trip time each way by an NFQUEUE delayer). For each RTT it runs
# bench/sftp.sh (MiB up and down), bench/tree.sh (FILES small files up and
# down, scp -r alongside) and the cold and concurrent cases of bench/exec.sh
# with their sshd inside the namespace and tether and OpenSSH's clients
# outside it. Root only; it removes the namespace on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-200}
FILES=${2:-2000}
RTTS=${3:-"20 100"}
NET=${NET:-../shared/tools/latency/net.sh}
[ "$(id -u)" = 0 ] || { echo "bench: latency.sh needs root (network namespaces)" >&2; exit 1; }
[ -f "$NET" ] || { echo "bench: $NET not found (set NET=path/to/net.sh)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$NET"
(set +e; net_down) 2>/dev/null || true  # what an interrupted run left
net_up
trap 'set +e; net_down 2>/dev/null; true' EXIT
export BENCH_NETNS=$NET_NS BENCH_HOST=$NET_THERE
for rtt in $RTTS; do
    set_delay "$rtt"
    echo "## $rtt ms round trip"
    echo
    bash bench/sftp.sh "$MIB" 1 | grep -v '^$'
    echo
    bash bench/tree.sh "$FILES" 1 | grep -v '^$'
    echo
    bash bench/exec.sh 5 | grep -E '^\| (case|---|\(b\)|\(d\)|\(e\))'
    echo
done
