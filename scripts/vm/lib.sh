# Helpers for the guest's scenarios (sourced; scripts/vm/scenarios/*.sh).
# A scenario prints `PASS NAME`, `FAIL NAME: why` and `INFO text` lines on stdout; anything
# else it prints (stderr, command output) goes to the guest's console.

# shellcheck shell=bash
export TCPLAB_RUNTIME=netns
LAB_NODES="aix solaris gemini gateway netb sun svr4 bsdi slip"

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
info() { echo "INFO $*"; }
# check NAME WHY CMD...: PASS when CMD succeeds, else FAIL with WHY.
check() {
  local name=$1 why=$2; shift 2
  if "$@" >&2; then pass "$name"; else fail "$name" "$why"; fi
}

# Loaded modules among the ones the lab may need, on one line.
modules_loaded() {
  local m out=""
  for m in openvswitch sch_netem veth bridge nf_conntrack ifb; do
    [ -d "/sys/module/$m" ] && out="$out $m"
  done
  echo "${out# }"
}
module_loaded() { [ -d "/sys/module/$1" ]; }

# Start ovsdb-server and ovs-vswitchd by hand (no systemd in the guest), as
# scripts/setup-host.sh does. Idempotent.
ovs_start() {
  mkdir -p /run/openvswitch /var/log/openvswitch /etc/openvswitch
  [ -s /etc/openvswitch/conf.db ] ||
    ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
  if ! [ -S /run/openvswitch/db.sock ]; then
    ovsdb-server /etc/openvswitch/conf.db --remote=punix:/run/openvswitch/db.sock \
      --pidfile --detach --log-file=/var/log/openvswitch/ovsdb-server.log >&2 || return 1
    ovs-vsctl --no-wait init >&2 || return 1
  fi
  if ! ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1; then
    ovs-vswitchd --pidfile --detach --log-file=/var/log/openvswitch/ovs-vswitchd.log >&2 ||
      return 1
  fi
  ovs-vsctl --timeout=20 show >/dev/null
}
# Stop ovs-vswitchd (the database stays).
ovs_stop_vswitchd() {
  ovs-appctl -t ovs-vswitchd exit >/dev/null 2>&1
  local i
  for i in $(seq 1 50); do
    ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  return 1
}

# Whether this tcplab has the link-conditions command (`tcplab link set`).
has_link_set() {
  tcplab link --help 2>&1 | grep -qE '^[[:space:]]+(- )?set([: ]|$)'
}

# A host-namespace snapshot of everything a lab could leave behind (stable across runs:
# no counters, no timestamps).
host_snapshot() {
  echo "## ip -o link"
  ip -o link | sed -E 's/ qlen [0-9]+//'
  echo "## ip netns"
  ip netns list
  echo "## ip route"
  ip route show table all
  echo "## iptables-save"
  iptables-save 2>&1 | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//'
  echo "## ovs-vsctl show"
  ovs-vsctl show 2>&1 | grep -v -E '^[0-9a-f-]{36}$|ovs_version'
  echo "## ovs-dpctl show"
  ovs-dpctl show 2>&1 | grep -v -E 'lookups:|masks:|cache:|caches:|flows:'
  echo "## /run/netns /etc/netns"
  ls -a /run/netns /etc/netns 2>&1
}

# Median of numbers, one a line on stdin.
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# RTTs in ms from ping's output on stdin, one a line.
ping_rtts() { sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p'; }
# within VALUE LOW HIGH: LOW <= VALUE <= HIGH.
within() { awk -v v="$1" -v a="$2" -v b="$3" 'BEGIN { exit !(v >= a && v <= b) }'; }

# Seconds since $1 (a `date +%s.%N` value).
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# The course lab up on the netns runtime (OVS LANs as the topology says).
lab_up() { tcplab --runtime netns up "$@" >&2; }
lab_down() { tcplab down >&2; }
