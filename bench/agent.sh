#!/usr/bin/env bash
# Benchmark: an ssh login through `tether agent` against the same login
# through OpenSSH's ssh-agent holding the same key, in one run.
#
#   bash bench/agent.sh [ROUNDS]
#
# Starts its own sshd, a `tetherd --user` and an ssh-agent, each ended by
# PID on exit. Both logins are the same `ssh ... true` (same key exchange,
# cipher and ed25519 key), only SSH_AUTH_SOCK differs; the two are
# interleaved round by round. Reports medians in milliseconds and the
# tether/ssh-agent ratio (lower is better for tether; the target is 1.1 or
# less).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-30}
source bench/lib.sh

"$TETHER" agent -s -a "$work/tether-agent.sock" >/dev/null
eval "$(ssh-agent -s -a "$work/ssh-agent.sock")" >/dev/null
pids+=("$SSH_AGENT_PID")
ssh-add -q "$work/id" 2>/dev/null

# Same ssh command line as the other benchmarks, without the key file.
LOGIN=()
for word in "${SSH[@]}"; do
    [ "$word" = "$work/id" ] && { unset 'LOGIN[${#LOGIN[@]}-1]'; continue; }
    LOGIN+=("$word")
done
LOGIN+=(-o "IdentityFile=$work/no-such-key" "$target" true)

login() { local t0; t0=$(now); SSH_AUTH_SOCK=$1 "${LOGIN[@]}" >/dev/null; echo $(( $(now) - t0 )); }
# Both work before anything is timed.
login "$work/tether-agent.sock" >/dev/null
login "$work/ssh-agent.sock" >/dev/null

t_file=$work/agent-t; s_file=$work/agent-s
for _ in $(seq "$ROUNDS"); do
    login "$work/tether-agent.sock" >>"$t_file"
    login "$work/ssh-agent.sock" >>"$s_file"
done
t=$(median < "$t_file")
s=$(median < "$s_file")
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns/1e6 }'; }

echo
echo "| case | tether agent ms | ssh-agent ms | tether/ssh-agent |"
echo "|---|---|---|---|"
echo "| ssh login + true (median of $ROUNDS) | $(ms "$t") | $(ms "$s") | $(ratio "$t" "$s") |"
echo
echo "tetherd RSS after the logins: $(( $(rss_kib) / 1024 )) MiB"
