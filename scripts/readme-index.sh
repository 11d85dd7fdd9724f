#!/usr/bin/env bash
# Write the README's chapter index of the experiments (between its markers) anew from
# `tcplab experiment list --markdown`, after adding or renaming an experiment.
#   scripts/readme-index.sh [TCPLAB]     (default: target/debug/tcplab, built first)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/tcplab}
[ -n "${1:-}" ] || cargo build -q
index=$("$bin" experiment list --markdown)
INDEX="$index" python3 - <<'PY'
import os
p = "README.md"
s = open(p).read()
b, e = "<!-- experiments:begin -->", "<!-- experiments:end -->"
i, j = s.index(b) + len(b), s.index(e)
s = s[:i] + "\n\n" + os.environ["INDEX"].rstrip("\n") + "\n\n" + s[j:]
open(p, "w").write(s)
PY
echo "README.md: chapter index of $("$bin" experiment list | wc -l) experiments"
