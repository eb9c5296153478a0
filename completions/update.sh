#!/usr/bin/env bash
# Regenerates the shell completions and manual pages from the clap
# definitions; tests/tests/generated.rs fails when these files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p tether -p tetherd
target/debug/tether completions bash > completions/tether.bash
target/debug/tether completions zsh > completions/_tether
target/debug/tether completions fish > completions/tether.fish
rm -f man/*.1
target/debug/tether man --out-dir man
target/debug/tetherd man > man/tetherd.8
# The README's endpoint table, between its markers.
python3 - <<'EOF'
import subprocess
table = subprocess.run(["target/debug/tether", "endpoints"], capture_output=True, text=True, check=True).stdout
readme = open("README.md").read()
start, end = "<!-- endpoints -->\n", "<!-- /endpoints -->"
head, rest = readme.split(start, 1)
_, tail = rest.split(end, 1)
open("README.md", "w").write(head + start + table + end + tail)
EOF
