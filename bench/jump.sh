#!/usr/bin/env bash
# Benchmark: a jump host and a forward, tether against OpenSSH, in one run.
#
#   bash bench/jump.sh [ROUNDS] [MiB]
#
# One sshd (started here, see bench/lib.sh) is both the jump host and the
# server behind it: `behind` is a profile reached through the profile `bench`
# (tether's --jump), as `ssh -o ProxyCommand="ssh -W %h:%p ..."` (ssh -J with
# the same options) reaches it. A local TCP server sends MiB mebibytes to
# whoever connects; it is fetched through `tether forward -L` and `ssh -L`.
# Medians; ratios tether/OpenSSH (times: lower is better; throughput:
# higher is better).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-20}
MIB=${2:-200}
source bench/lib.sh

ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns/1e6 }'; }
time_one() { local t0; t0=$(now); "$@" >/dev/null; echo $(( $(now) - t0 )); }

"$TETHER" profile add behind --host 127.0.0.1 --port "$port" --user "$user" --key-file "$work/id" \
    --host-key "$fp" --jump bench >/dev/null
JUMP=(-o "ProxyCommand=${SSH[*]} -W %h:%p $target")

# (a) warm: a pooled connection through the jump against a direct one.
"$TETHER" exec behind -- true; "$TETHER" exec bench -- true
warm_j=$(for _ in $(seq "$ROUNDS"); do time_one "$TETHER" exec behind -- true; done | median)
warm_d=$(for _ in $(seq "$ROUNDS"); do time_one "$TETHER" exec bench -- true; done | median)

# (b) cold target behind a warm jump, and (c) both cold, against ssh -J.
cold_t=$(for _ in $(seq "$ROUNDS"); do "$TETHER" session close behind >/dev/null; time_one "$TETHER" exec behind -- true; done | median)
both_t=$(for _ in $(seq "$ROUNDS"); do "$TETHER" session close behind >/dev/null; "$TETHER" session close bench >/dev/null; time_one "$TETHER" exec behind -- true; done | median)
cold_s=$(for _ in $(seq "$ROUNDS"); do time_one "${SSH[@]}" "${JUMP[@]}" "$target" true; done | median)

# (d) throughput of a forward: MiB from a local server, through each.
src_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$src_port" "$MIB" <<'PY' &
import socket, sys, threading
port, mib = int(sys.argv[1]), int(sys.argv[2])
chunk = bytes(range(256)) * 4096
server = socket.create_server(("127.0.0.1", port))
def send(conn):
    with conn:
        try:
            for _ in range(mib):
                conn.sendall(chunk)
        except OSError:
            pass  # a readiness probe that hung up
while True:
    conn, _ = server.accept()
    threading.Thread(target=send, args=(conn,), daemon=True).start()
PY
pids+=($!)
fwd_t=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fwd_s=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TETHER" forward bench -L "$fwd_t:127.0.0.1:$src_port" 2>/dev/null &
pids+=($!)
"${SSH[@]}" -N -L "$fwd_s:127.0.0.1:$src_port" "$target" &
pids+=($!)
for p in "$fwd_t" "$fwd_s"; do for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.05; done; done
fetch() {
    python3 - "$1" "$MIB" <<'PY'
import socket, sys, time
port, mib = int(sys.argv[1]), int(sys.argv[2])
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", port))
got = 0
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    got += len(b)
assert got == mib << 20, got
print(round(got / (time.monotonic() - t0) / 1e6))
PY
}
rates_t=(); rates_s=()
for _ in $(seq 5); do rates_t+=("$(fetch "$fwd_t")"); rates_s+=("$(fetch "$fwd_s")"); done
rate_t=$(printf '%s\n' "${rates_t[@]}" | median)
rate_s=$(printf '%s\n' "${rates_s[@]}" | median)

cat <<REPORT
tether jump and forward vs OpenSSH $(ssh -V 2>&1 | cut -d, -f1), $ROUNDS rounds, medians, one sshd as jump and target

| case | tether | other | ratio |
|---|---|---|---|
| (a) warm exec through a jump vs warm direct (both tether), ms | $(ms "$warm_j") | $(ms "$warm_d") | $(ratio "$warm_j" "$warm_d") |
| (b) cold target behind a pooled jump vs ssh -J, ms | $(ms "$cold_t") | $(ms "$cold_s") | $(ratio "$cold_t" "$cold_s") |
| (c) both cold vs ssh -J, ms | $(ms "$both_t") | $(ms "$cold_s") | $(ratio "$both_t" "$cold_s") |
| (d) forward, $MIB MiB, tether forward -L vs ssh -L, MB/s | $rate_t | $rate_s | $(ratio "$rate_t" "$rate_s") |
REPORT
