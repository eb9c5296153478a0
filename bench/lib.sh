# Shared setup for the benchmarks; sourced, not run.
#
# Starts its own sshd on a free 127.0.0.1 port and a `tetherd --user` on a
# temporary socket, both ended by PID on exit, and adds the profile `bench`.
# With BENCH_NETNS and BENCH_HOST (bench/latency.sh sets them), sshd runs in
# that network namespace and listens on that address instead.
# Sets: TETHER, work, user, port, fp, daemon, target, SSH (an ssh command
# line with the same algorithms tether uses: curve25519-sha256, aes128-gcm,
# an ed25519 key).
SSHD=${SSHD:-/usr/sbin/sshd}
[ -x "$SSHD" ] || { echo "bench: OpenSSH sshd not found (apt-get install openssh-server)" >&2; exit 1; }

source bench/common.sh

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
host=${BENCH_HOST:-127.0.0.1}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 22022)
ssh-keygen -q -t ed25519 -N '' -f "$work/host" -C host
ssh-keygen -q -t ed25519 -N '' -f "$work/id" -C bench
mkdir -p "$work/keys" && cp "$work/id.pub" "$work/keys/$user" && chmod 644 "$work/keys/$user"
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
cat > "$work/sshd_config" <<CONF
Port $port
ListenAddress $host
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
Subsystem sftp internal-sftp
CONF
${BENCH_NETNS:+ip netns exec "$BENCH_NETNS"} "$SSHD" -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
pids+=($!)
echo "[$host]:$port $(cat "$work/host.pub")" > "$work/known_hosts"

export TETHER_SOCKET=$work/tether.sock
"$TETHERD" --user --socket "$TETHER_SOCKET" --state-dir "$work/state" 2>"$work/tetherd.log" &
daemon=$!
pids+=($daemon)
for _ in $(seq 100); do [ -S "$TETHER_SOCKET" ] && break; sleep 0.05; done
for _ in $(seq 100); do (exec 3<>/dev/tcp/$host/$port) 2>/dev/null && break; sleep 0.05; done
fp=$(ssh-keygen -lf "$work/host.pub" | awk '{print $2}')
"$TETHER" profile add bench --host "$host" --port "$port" --user "$user" --key-file "$work/id" --host-key "$fp" >/dev/null

SSH=(ssh -F /dev/null -i "$work/id" -p "$port" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
     -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com -o BatchMode=yes -o LogLevel=ERROR)
target="$user@$host"
