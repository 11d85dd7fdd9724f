#!/usr/bin/env bash
# The whole test suite, as CI runs it: every Rust test (unit tests anywhere; the integration
# tests build real labs as root and skip with a printed reason otherwise), then the lab inside
# a QEMU guest booting Debian's own kernel (kernel OVS datapath, netem; root only).
#   scripts/test.sh                    all of it
#   TCPLAB_NO_VM=1 scripts/test.sh     without the guest (or when not root)
#   VM_KERNEL=trixie scripts/test.sh   the guest on Debian trixie's kernel instead of bookworm's
set -euo pipefail
cd "$(dirname "$0")/.."
# --no-fail-fast: one failing test binary does not hide what the others would say.
cargo test --locked --no-fail-fast -- --test-threads=2
if [ -n "${TCPLAB_NO_VM:-}" ]; then
  echo "vm-test: skipped (TCPLAB_NO_VM is set)"
elif [ "$(id -u)" != 0 ]; then
  echo "vm-test: skipped: not root"
else
  TCPLAB_BIN=target/debug/tcplab scripts/vm-test.sh --kernel "${VM_KERNEL:-bookworm}"
fi
