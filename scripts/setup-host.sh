#!/usr/bin/env bash
# Installs and starts what tcplab needs on a Debian/Ubuntu machine, with or without systemd.
# Idempotent: what is already installed or running is left as it is.
#   scripts/setup-host.sh            packages + Docker engine + Open vSwitch
#   TCPLAB_NO_DOCKER=1 ...           skip docker.io/dockerd (netns runtime only)
set -euo pipefail
log() { printf 'setup: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "setup: run as root (sudo $0)" >&2; exit 1; }

PKGS=(iproute2 iptables nftables iputils-ping iputils-arping iputils-tracepath traceroute
      tcpdump tshark netcat-openbsd iperf3 ethtool procps psmisc debootstrap openvswitch-switch
      ca-certificates curl build-essential pkg-config)
[ -n "${TCPLAB_NO_DOCKER:-}" ] || PKGS+=(docker.io)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

has_systemd() { [ -d /run/systemd/system ]; }

# Open vSwitch: ovsdb-server + ovs-vswitchd
if ! ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
  if has_systemd; then
    systemctl start openvswitch-switch
  else
    log "starting Open vSwitch by hand (no systemd)"
    mkdir -p /var/run/openvswitch /var/log/openvswitch /etc/openvswitch
    [ -s /etc/openvswitch/conf.db ] ||
      ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
    pgrep -x ovsdb-server >/dev/null || ovsdb-server /etc/openvswitch/conf.db \
      --remote=punix:/var/run/openvswitch/db.sock --pidfile --detach \
      --log-file=/var/log/openvswitch/ovsdb-server.log
    ovs-vsctl --no-wait init
    pgrep -x ovs-vswitchd >/dev/null || ovs-vswitchd --pidfile --detach \
      --log-file=/var/log/openvswitch/ovs-vswitchd.log
  fi
  ovs-vsctl --timeout=10 show >/dev/null
fi

# Docker engine
if [ -z "${TCPLAB_NO_DOCKER:-}" ] && ! docker info >/dev/null 2>&1; then
  if has_systemd; then
    systemctl start docker
  else
    log "starting dockerd by hand (no systemd)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start: see /var/log/dockerd.log"; exit 1; }
fi

# Rust toolchain (only if missing)
if ! command -v cargo >/dev/null 2>&1; then
  # Debian's own rustc is too old for the 2024 edition: use rustup's stable toolchain.
  log "installing Rust with rustup (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  log "Rust installed: run '. \$HOME/.cargo/env' or open a new shell"
fi
log "ready"
