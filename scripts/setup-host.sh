#!/usr/bin/env bash
# Installs and starts what tcplab needs on a Debian/Ubuntu machine, with or without systemd.
# Idempotent: what is already installed or running is left as it is.
#   scripts/setup-host.sh            packages + Docker engine + Open vSwitch
#   TCPLAB_NO_DOCKER=1 ...           skip docker.io/dockerd (netns runtime only)
#   TCPLAB_NO_SERVERS=1 ...          skip the application chapters' servers and clients
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

# The application chapters' servers and clients: the netns runtime runs this machine's programs,
# and each experiment starts the server it needs itself, on the lab's addresses only. Installing
# them must leave no server running or enabled here (no DNS, SNMP or FTP server on a student's
# machine): dnsmasq-base, busybox-static (telnetd, udhcpc), drill, tftp, telnet and tnftp ship no
# service; snmpd, vsftpd, bird2 and msmtp-mta do, so they are installed under a policy-rc.d that
# refuses every start, and their services are disabled afterwards. A package that would remove
# another (msmtp-mta replaces any other mail server, busybox-static replaces busybox) is skipped
# with a message: the experiment that needs it then runs on the docker runtime only.
SERVER_PKGS=(dnsmasq-base ldnsutils tftp-hpa busybox-static telnet bird2 snmp snmpd vsftpd tnftp msmtp-mta)
declare -A SERVICE_OF=([snmpd]=snmpd [vsftpd]=vsftpd [bird2]=bird [msmtp-mta]=msmtpd)

install_without_services() {
  local policy=/usr/sbin/policy-rc.d saved="" rc=0 p unit
  if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
  printf '#!/bin/sh\n# tcplab: no service starts while its servers are installed\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  # Put back whatever policy there was, even when the installation failed.
  if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
  [ "$rc" = 0 ] || { log "installing $* failed"; exit "$rc"; }
  for p in "$@"; do
    unit=${SERVICE_OF[$p]:-}
    [ -n "$unit" ] || continue
    if has_systemd; then
      systemctl disable --quiet "$unit.service" 2>/dev/null || true
      systemctl stop "$unit.service" 2>/dev/null || true
    elif command -v deb-systemd-helper >/dev/null; then
      deb-systemd-helper disable "$unit.service" >/dev/null 2>&1 || true
    fi
    [ ! -e "/etc/init.d/$unit" ] || update-rc.d "$unit" disable >/dev/null 2>&1 || true
    log "installed $p; its service $unit is disabled and was not started"
  done
}

if [ -z "${TCPLAB_NO_SERVERS:-}" ]; then
  wanted=()
  listed=""
  for p in "${SERVER_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    [ -n "$listed" ] || { apt-get update -qq; listed=1; }
    if ! sim=$(apt-get install -s --no-install-recommends "$p" 2>&1); then
      log "not installing $p: apt cannot install it here (the experiment needing it runs on the docker runtime)"
      continue
    fi
    removes=$(awk '/^Remv /{print $2}' <<<"$sim" | xargs)
    if [ -n "$removes" ]; then
      log "not installing $p: it would remove $removes (the experiment needing it runs on the docker runtime)"
      continue
    fi
    wanted+=("$p")
  done
  if [ "${#wanted[@]}" -gt 0 ]; then
    log "installing ${wanted[*]}"
    export DEBIAN_FRONTEND=noninteractive
    install_without_services "${wanted[@]}"
  fi
fi

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
