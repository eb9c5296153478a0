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
SSHD=${SSHD:-/usr/sbin/sshd}
[ -x "$SSHD" ] || { echo "bench: OpenSSH sshd not found (apt-get install openssh-server)" >&2; exit 1; }

cargo build --release --quiet -p tetherd -p tether
TETHERD=$PWD/target/release/tetherd
TETHER=$PWD/target/release/tether

work=$(mktemp -d /tmp/tether-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -S "$work/ctl" ] && ssh -S "$work/ctl" -O exit x 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Log in as a user whose shell starts fast, so the figures measure the
# connection and not a login shell's rc files: as root, a dedicated
# `tether-bench` user with /bin/sh (created if missing); else yourself.
if [ "$(id -u)" = 0 ]; then
    user=tether-bench
    id "$user" >/dev/null 2>&1 || useradd --no-create-home --home-dir / --shell /bin/sh "$user"
    # "*": no password, but not locked (sshd refuses locked accounts).
    usermod -p "*" "$user"
else
    user=$(id -un)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 22022)
ssh-keygen -q -t ed25519 -N '' -f "$work/host" -C host
ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C bench
mkdir -p "$work/keys" && cp "$work/id.pub" "$work/keys/$user" && chmod 644 "$work/keys/$user"
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
cat > "$work/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $work/host
AuthorizedKeysFile $work/keys/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile none
MaxStartups 200:30:400
MaxSessions 20
CONF
"$SSHD" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
echo "[127.0.0.1]:$port $(cat "$work/host.pub")" > "$work/known_hosts"

export TETHER_SOCKET=$work/tether.sock
"$TETHERD" --user --socket "$TETHER_SOCKET" --state-dir "$work/state" 2>"$work/tetherd.log" &
daemon=$!
pids+=($daemon)
for _ in $(seq 100); do [ -S "$TETHER_SOCKET" ] && break; sleep 0.05; done
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
fp=$(ssh-keygen -lf "$work/host.pub" | awk '{print $2}')
"$TETHER" profile add bench --host 127.0.0.1 --port "$port" --user "$user" --key-file "$work/id" --host-key "$fp" >/dev/null

SSH=(ssh -F /dev/null -i "$work/id" -p "$port" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
     -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com -o BatchMode=yes -o LogLevel=ERROR)
target="$user@127.0.0.1"

now() { date +%s%N; }
# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns/1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a/b }'; }
time_one() { local t0; t0=$(now); "$@" >/dev/null; echo $(( $(now) - t0 )); }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$daemon/status"; }

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

# Memory with 20 live connections: 20 profiles, one connection each.
for i in $(seq 20); do
    "$TETHER" profile add "b$i" --host 127.0.0.1 --port "$port" --user "$user" --key-file "$work/id" --host-key "$fp" >/dev/null
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

tetherd RSS: $((rss_idle / 1024)) MiB idle, $((rss_live / 1024)) MiB with $live live connections
REPORT
