#!/usr/bin/env bash
# Benchmark: a tree of small files, tether cp -r against scp -r and sftp,
# in one run, interleaved.
#
#   bash bench/tree.sh [FILES] [ROUNDS]
#
# FILES files of 1-4 KiB (2000 by default) in 20 directories, in RAM
# (/dev/shm); the same sshd and options as bench/lib.sh. Reports median
# seconds and ratios (tether/other: lower is better), and tetherd's resident
# memory idle and after every round.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-2000}
ROUNDS=${2:-3}
source bench/lib.sh

shm=/dev/shm; [ -d "$shm" ] && [ -w "$shm" ] || shm=/tmp
files=$(mktemp -d "$shm/tether-bench-tree.XXXXXX")
chmod 755 "$files"
trap 'rm -rf "$files"; cleanup' EXIT
mkdir -p "$files/src" "$files/remote" "$files/back"
[ "$(id -u)" = 0 ] && chown "$user" "$files/remote"
python3 - "$files/src" "$FILES" <<'PY'
import os, random, sys
root, count = sys.argv[1], int(sys.argv[2])
random.seed(7)
for i in range(count):
    d = os.path.join(root, f"d{i % 20:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "wb") as f:
        f.write(os.urandom(random.randint(1024, 4096)))
PY
sum_of() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1); }
want=$(sum_of "$files/src")
rss_idle=$(rss_kib)
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns/1e9 }'; }
# One timed run of "$@"; the tree it made at $check must match the source.
timed() {
    local check=$1; shift
    local t0; t0=$(now)
    "$@" >/dev/null
    local ns=$(( $(now) - t0 ))
    [ "$(sum_of "$check")" = "$want" ] || { echo "bench: $* made a different tree" >&2; exit 1; }
    echo "$ns"
}
SCP=(scp -q -r -F /dev/null -i "$work/id" -P "$port" -o UserKnownHostsFile="$work/known_hosts"
     -o StrictHostKeyChecking=yes -o KexAlgorithms=curve25519-sha256 -o Ciphers=aes128-gcm@openssh.com
     -o BatchMode=yes -o LogLevel=ERROR)
up_t=(); up_s=(); down_t=(); down_s=()
for _ in $(seq "$ROUNDS"); do
    rm -rf "$files/remote/t"; up_t+=("$(timed "$files/remote/t" "$TETHER" cp -q -r "$files/src" "bench:$files/remote/t")")
    rm -rf "$files/remote/s"; up_s+=("$(timed "$files/remote/s" "${SCP[@]}" "$files/src" "$target:$files/remote/s")")
    rm -rf "$files/back/t"; down_t+=("$(timed "$files/back/t" "$TETHER" cp -q -r "bench:$files/remote/t" "$files/back/t")")
    rm -rf "$files/back/s"; down_s+=("$(timed "$files/back/s" "${SCP[@]}" "$target:$files/remote/s" "$files/back/s")")
done
rss_after=$(rss_kib)
m() { printf '%s\n' "$@" | median; }
ut=$(m "${up_t[@]}"); us=$(m "${up_s[@]}"); dt=$(m "${down_t[@]}"); ds=$(m "${down_s[@]}")
cat <<REPORT
a tree of $FILES files of 1-4 KiB, tether cp -r vs scp -r ($(ssh -V 2>&1 | cut -d, -f1)), $ROUNDS rounds, medians

| direction | tether s | scp s | scp/tether (speed-up) |
|---|---|---|---|
| upload | $(secs "$ut") | $(secs "$us") | $(ratio "$us" "$ut") |
| download | $(secs "$dt") | $(secs "$ds") | $(ratio "$ds" "$dt") |

tetherd RSS: $((rss_idle / 1024)) MiB idle, $((rss_after / 1024)) MiB after $((ROUNDS * FILES * 2)) file transfers
REPORT
