# Shared by every benchmark; sourced, not run: the release binaries, a
# work directory removed on exit with every process started (ended by PID),
# and the helpers that turn timings into medians and ratios.
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

# Where a daemon's memory is read (set by the benchmark that starts it).
daemon=${daemon:-}

now() { date +%s%N; }
# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a/b }'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$daemon/status"; }

# One timed run of the command after OUT, as MB/s; OUT is checked against
# the source's SHA-256 (`sum`, of `bytes` bytes), so a fast wrong answer
# cannot count.
once() {
    local out=$1; shift
    rm -f "$out"
    local t0; t0=$(now)
    "$@" >/dev/null
    local ns=$(( $(now) - t0 ))
    [ "$(sha256sum < "$out" | cut -d' ' -f1)" = "$sum" ] || { echo "bench: $* produced a wrong file" >&2; exit 1; }
    awk -v b="$bytes" -v ns="$ns" 'BEGIN { printf "%.0f\n", b / (ns / 1e9) / 1e6 }'
}

# Results of interleaved rounds, by case: `runs[CASE]+="$(once ...) "`
# each round, then `med CASE` for the median.
declare -A runs
med() { tr ' ' '\n' <<<"${runs[$1]}" | grep . | median; }
