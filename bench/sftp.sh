#!/usr/bin/env bash
# Benchmark: file transfer through tether against OpenSSH's sftp and scp on
# this machine, in one run.
#
#   bash bench/sftp.sh [SIZE_MIB] [ROUNDS]      (defaults: 1024 MiB, 3 rounds)
#
# The same sshd (internal-sftp) serves every client, and every client uses
# curve25519-sha256, aes128-gcm and an ed25519 key. tether is measured from
# the CLI's start to its exit, through the daemon, with a warm pooled
# connection; sftp and scp make their own connection each time (their
# handshake is ~10 ms of a multi-second transfer). Reports median MB/s and the
# tether/OpenSSH ratio (higher is better for tether), and the daemon's peak
# resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
source bench/lib.sh

# The files live in RAM (/dev/shm) where it is there, so that the figures
# measure the transfer and not the disk.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=$work
files=$(mktemp -d "$shm/tether-bench-files.XXXXXX")
chmod 755 "$files"
trap 'rm -rf "$files"; cleanup' EXIT
mkdir -p "$files/local" "$files/remote"
[ "$(id -u)" = 0 ] && chown "$user" "$files/remote"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$files/local/src"
bytes=$(stat -c %s "$files/local/src")
sum=$(sha256sum < "$files/local/src" | cut -d' ' -f1)

SFTP=(sftp -F /dev/null -i "$work/id" -P "$port" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
      -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com -o BatchMode=yes -o LogLevel=ERROR -q)
SCP=(scp -F /dev/null -i "$work/id" -P "$port" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes
     -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com -o BatchMode=yes -o LogLevel=ERROR -q)
sftp_put() { echo "put $files/local/src $files/remote/up" | "${SFTP[@]}" -b - "$target"; }
sftp_get() { echo "get $files/remote/src $files/local/down" | "${SFTP[@]}" -b - "$target"; }

cp "$files/local/src" "$files/remote/src"
[ "$(id -u)" = 0 ] && chown "$user" "$files/remote/src"
"$TETHER" exec bench -- true   # the pooled connection, as in use

# Rounds interleaved: a busy moment of this machine hits every client.
for _ in $(seq "$ROUNDS"); do
    runs[up.t]+="$(once "$files/remote/up" "$TETHER" cp "$files/local/src" "bench:$files/remote/up") "
    runs[up.s]+="$(once "$files/remote/up" sftp_put) "
    runs[up.c]+="$(once "$files/remote/up" "${SCP[@]}" "$files/local/src" "$target:$files/remote/up") "
    runs[down.t]+="$(once "$files/local/down" "$TETHER" cp "bench:$files/remote/src" "$files/local/down") "
    runs[down.s]+="$(once "$files/local/down" sftp_get) "
    runs[down.c]+="$(once "$files/local/down" "${SCP[@]}" "$target:$files/remote/src" "$files/local/down") "
done
up_t=$(med up.t); up_s=$(med up.s); up_c=$(med up.c)
down_t=$(med down.t); down_s=$(med down.s); down_c=$(med down.c)
peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$daemon/status")

cat <<REPORT
tether cp vs OpenSSH $(ssh -V 2>&1 | cut -d, -f1) sftp and scp, $SIZE_MIB MiB, $ROUNDS interleaved rounds, median MB/s, aes128-gcm

| direction | tether | sftp | scp | tether/sftp | tether/scp |
|---|---|---|---|---|---|
| upload | $up_t | $up_s | $up_c | $(ratio "$up_t" "$up_s") | $(ratio "$up_t" "$up_c") |
| download | $down_t | $down_s | $down_c | $(ratio "$down_t" "$down_s") | $(ratio "$down_t" "$down_c") |

tetherd peak RSS: $((peak / 1024)) MiB
REPORT
