#!/usr/bin/env bash
# From a fresh Debian/Ubuntu machine to a running lab:
#   sudo scripts/quickstart.sh            # isolated lab
#   sudo scripts/quickstart.sh enp0s3     # NATed out of enp0s3
# Installs what is missing (scripts/setup-host.sh), builds tcplab, installs it to
# /usr/local/bin and brings the course lab up.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-host.sh
# rustup installs into $HOME/.cargo
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked
install -m 0755 target/release/tcplab /usr/local/bin/tcplab
tcplab up "$@"
tcplab status
echo
echo "try: tcplab exec sun ping -c3 aix    |  tcplab exec slip traceroute -n aix    |  tcplab down"
