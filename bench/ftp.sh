#!/usr/bin/env bash
# Benchmark: FTP and FTPS transfers through tether against lftp on this
# machine, in one run.
#
#   sudo bash bench/ftp.sh [SIZE_MIB] [ROUNDS]     (defaults: 512 MiB, 5 rounds)
#
# Starts its own vsftpd twice on free 127.0.0.1 ports (plain FTP, and
# explicit FTPS with a fresh certificate), a `tetherd --user` on a temporary
# socket, all ended by PID on exit, and logs in as a `tether-bench` user with
# a random password (needs root: vsftpd switches to the user). The files
# live in RAM (/dev/shm). Rounds are interleaved (tether up, lftp up, tether
# down, lftp down), each result checked against the source's SHA-256; the
# report gives median MB/s and tether/lftp (higher is better for tether).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-512}
ROUNDS=${2:-5}
[ "$(id -u)" = 0 ] || { echo "bench: vsftpd logins need root: sudo bash bench/ftp.sh" >&2; exit 1; }
for tool in vsftpd lftp openssl; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
        { echo "bench: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
source bench/common.sh

user=tether-bench
id "$user" >/dev/null 2>&1 || useradd --no-create-home --home-dir / --shell /bin/sh "$user"
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$user:$password" | chpasswd

shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=$work
files=$(mktemp -d "$shm/tether-bench-files.XXXXXX")
chmod 755 "$files"
trap 'rm -rf "$files"; cleanup' EXIT
mkdir -p "$files/local" "$files/remote" "$work/empty"
chown "$user" "$files/remote"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$files/local/src"
bytes=$(stat -c %s "$files/local/src")
sum=$(sha256sum < "$files/local/src" | cut -d' ' -f1)
cp "$files/local/src" "$files/remote/src"
chown "$user" "$files/remote/src"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" \
    -out "$work/cert.pem" -days 1 -subj /CN=localhost 2>/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# One vsftpd; TLS when $1 is "tls".
start_vsftpd() {
    local port=$1 tls=$2 conf=$work/vsftpd-$1.conf
    cat > "$conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$port
background=NO
local_enable=YES
write_enable=YES
anonymous_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=$work/empty
pam_service_name=vsftpd
CONF
    [ "$tls" = tls ] && cat >> "$conf" <<CONF
ssl_enable=YES
rsa_cert_file=$work/cert.pem
rsa_private_key_file=$work/key.pem
force_local_logins_ssl=YES
force_local_data_ssl=YES
CONF
    vsftpd "$conf" 2>>"$work/vsftpd.log" &
    pids+=($!)
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
}
plain_port=$(free_port)
start_vsftpd "$plain_port" plain
tls_port=$(free_port)
start_vsftpd "$tls_port" tls

export TETHER_SOCKET=$work/tether.sock
"$TETHERD" --user --socket "$TETHER_SOCKET" --state-dir "$work/state" 2>"$work/tetherd.log" &
daemon=$!
pids+=($daemon)
for _ in $(seq 100); do [ -S "$TETHER_SOCKET" ] && break; sleep 0.05; done
fingerprint=$(openssl x509 -in "$work/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
echo "$password" | "$TETHER" profile add plain --protocol ftp --allow-plaintext --host 127.0.0.1 \
    --port "$plain_port" --user "$user" --password-stdin >/dev/null
echo "$password" | "$TETHER" profile add tls --protocol ftps --host 127.0.0.1 --port "$tls_port" \
    --user "$user" --password-stdin --cert-fingerprint "$fingerprint" >/dev/null

# lftp as a person would use it: its defaults, TLS forced on for FTPS (the
# certificate is self-signed, so not verified), the password in a file
# only root reads.
lftp_rc() {
    local rc=$work/lftp-$1.rc
    {
        echo "set cmd:fail-exit true"
        echo "set net:max-retries 1"
        if [ "$1" = tls ]; then
            echo "set ftp:ssl-force true"
            echo "set ftp:ssl-protect-data true"
            echo "set ssl:verify-certificate false"
        else
            echo "set ftp:ssl-allow false"
        fi
        echo "open -u $user,$password -p $2 127.0.0.1"
    } > "$rc"
    chmod 600 "$rc"
    { cat "$rc"; echo "put $files/local/src -o $files/remote/up"; } > "$rc.up"
    { cat "$rc"; echo "get $files/remote/src -o $files/local/down"; } > "$rc.down"
    chmod 600 "$rc.up" "$rc.down"
}
lftp_rc plain "$plain_port"
lftp_rc tls "$tls_port"

for mode in plain tls; do
    rc=$work/lftp-$mode.rc
    "$TETHER" files "$mode" ls "$files/remote" >/dev/null   # the pooled connection, as in use
    for _ in $(seq "$ROUNDS"); do
        runs[$mode.up.t]+="$(once "$files/remote/up" "$TETHER" cp "$files/local/src" "$mode:$files/remote/up") "
        runs[$mode.up.l]+="$(once "$files/remote/up" lftp -f "$rc.up") "
        runs[$mode.down.t]+="$(once "$files/local/down" "$TETHER" cp "$mode:$files/remote/src" "$files/local/down") "
        runs[$mode.down.l]+="$(once "$files/local/down" lftp -f "$rc.down") "
    done
done

cat <<REPORT
tether vs lftp $(lftp --version | head -1 | awk '{print $4}') against vsftpd, ${SIZE_MIB} MiB in RAM, $ROUNDS interleaved rounds, median MB/s

| case | tether MB/s | lftp MB/s | tether/lftp |
|---|---|---|---|
| FTP upload | $(med plain.up.t) | $(med plain.up.l) | $(ratio "$(med plain.up.t)" "$(med plain.up.l)") |
| FTP download | $(med plain.down.t) | $(med plain.down.l) | $(ratio "$(med plain.down.t)" "$(med plain.down.l)") |
| FTPS upload | $(med tls.up.t) | $(med tls.up.l) | $(ratio "$(med tls.up.t)" "$(med tls.up.l)") |
| FTPS download | $(med tls.down.t) | $(med tls.down.l) | $(ratio "$(med tls.down.t)" "$(med tls.down.l)") |

tetherd RSS after the transfers: $(( $(rss_kib) / 1024 )) MiB
REPORT
