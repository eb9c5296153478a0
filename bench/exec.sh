#!/usr/bin/env bash
# Benchmark: tether exec against OpenSSH on this machine, in one run.
#
#   bash bench/exec.sh [ROUNDS]
#
# Starts its own sshd on a free 127.0.0.1 port and a `tetherd --user` on a
# temporary socket, both ended by PID on exit. Both clients use the same key
# exchange (curve25519-sha256), cipher (aes128-gcm) and an ed25519 key.
# Reports medians in milliseconds and tether/OpenSSH ratios (lower is better
# for tether), and the daemon's resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-30}
source bench/lib.sh

ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns/1e6 }'; }
time_one() { local t0; t0=$(now); "$@" >/dev/null; echo $(( $(now) - t0 )); }

rss_idle=$(rss_kib)

# (a) warm: a pooled tether connection against an OpenSSH ControlMaster.
"${SSH[@]}" -o ControlMaster=yes -o ControlPath="$work/ctl" -o ControlPersist=300 -fN "$target"
"$TETHER" exec bench -- true; "${SSH[@]}" -S "$work/ctl" "$target" true
warm_t=$(for _ in $(seq "$ROUNDS"); do time_one "$TETHER" exec bench -- true; done | median)
warm_s=$(for _ in $(seq "$ROUNDS"); do time_one "${SSH[@]}" -S "$work/ctl" "$target" true; done | median)

# (b) cold: a new connection and handshake each time, against a fresh ssh.
cold_t=$(for _ in $(seq "$ROUNDS"); do "$TETHER" session close bench >/dev/null; time_one "$TETHER" exec bench -- true; done | median)
cold_s=$(for _ in $(seq "$ROUNDS"); do time_one "${SSH[@]}" "$target" true; done | median)

# (c) 50 sequential commands, as a script loop would run them.
t0=$(now); for _ in $(seq 50); do "$TETHER" exec bench -- true; done; seq_t=$(( $(now) - t0 ))
t0=$(now); for _ in $(seq 50); do "${SSH[@]}" "$target" true; done; seq_s=$(( $(now) - t0 ))

# (d) 20 concurrent commands.
conc() { local t0; t0=$(now); for _ in $(seq 20); do "$@" >/dev/null & done; wait; echo $(( $(now) - t0 )); }
conc_t=$(for _ in $(seq 5); do conc "$TETHER" exec bench -- true; done | median)
conc_s=$(for _ in $(seq 5); do conc "${SSH[@]}" "$target" true; done | median)
# (e) the same on a cold pool: the connections they need are opened at once.
cold_conc_t=$(for _ in $(seq 5); do "$TETHER" session close bench >/dev/null; conc "$TETHER" exec bench -- true; done | median)

# Memory with 20 live connections: 20 profiles, one connection each.
for i in $(seq 20); do
    "$TETHER" profile add "b$i" --host "$host" --port "$port" --user "$user" --key-file "$work/id" --host-key "$fp" >/dev/null
    "$TETHER" exec "b$i" -- true
done
live=$("$TETHER" session list --json | grep -c '"profile"')
rss_live=$(rss_kib)

cat <<REPORT
tether exec vs OpenSSH $(ssh -V 2>&1 | cut -d, -f1), $ROUNDS rounds, medians, curve25519-sha256 + aes128-gcm, ed25519 key

| case | tether ms | OpenSSH ms | tether/OpenSSH |
|---|---|---|---|
| (a) warm: pooled vs ssh -S ControlMaster | $(ms "$warm_t") | $(ms "$warm_s") | $(ratio "$warm_t" "$warm_s") |
| (b) cold: new connection vs fresh ssh | $(ms "$cold_t") | $(ms "$cold_s") | $(ratio "$cold_t" "$cold_s") |
| (c) 50 sequential commands (total) | $(ms "$seq_t") | $(ms "$seq_s") | $(ratio "$seq_t" "$seq_s") |
| (d) 20 concurrent commands (wall) | $(ms "$conc_t") | $(ms "$conc_s") | $(ratio "$conc_t" "$conc_s") |
| (e) 20 concurrent on a cold pool vs 20 fresh ssh | $(ms "$cold_conc_t") | $(ms "$conc_s") | $(ratio "$cold_conc_t" "$conc_s") |

tetherd RSS: $((rss_idle / 1024)) MiB idle, $((rss_live / 1024)) MiB with $live live connections
REPORT
