#!/usr/bin/env bash
# benches/classroom.sh: a classroom on one server. Many copies of the course lab brought up at
# once, every other one NATed out of the same uplink (a fake one: a veth to a namespace on
# 198.51.100.0/24, never a real interface), the rest isolated. Prints, asserts nothing:
#   - the same lab's `up` time alone, then among all the others started at once;
#   - the wall time of all the `up`s started at once, and of all the `down`s;
#   - memory per lab (MemAvailable before and after, divided by the number of labs);
#   - how many uplinked labs reach the fake internet (aix pings 198.51.100.2);
#   - `tcplab ls` with every lab up.
# First N_NETNS labs on the netns runtime (Linux bridges), then N_DOCKER on docker (skipped
# with a line saying so when no Docker engine answers or the node image is missing).
#
# usage: benches/classroom.sh TCPLAB_BIN [N_NETNS (30)] [N_DOCKER (10)]
# Labs are named sNN (netns) and dNN (docker); the fake internet is tlbench-inet behind host
# interface tlbenchup. Everything is removed at the end (and on Ctrl-C).
set -u
BIN=${1:?usage: $0 TCPLAB_BIN [N_NETNS] [N_DOCKER]}
N_NETNS=${2:-30}
N_DOCKER=${3:-10}
INET=tlbench-inet
UP=tlbenchup
TMP=$(mktemp -d)

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
avail_kb() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }

inet_up() {
    if ip -o addr | grep -q ' 198\.51\.100\.' || ip route | grep -q '^198\.51\.100\.'; then
        echo "198.51.100.0/24 is in use on this host: no fake internet, no benchmark" >&2
        exit 2
    fi
    ip netns add $INET
    ip netns exec $INET sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add $UP type veth peer name inet0 netns $INET
    echo 1 > /proc/sys/net/ipv6/conf/$UP/disable_ipv6
    ip addr add 198.51.100.1/24 dev $UP
    ip link set $UP up
    ip netns exec $INET ip addr add 198.51.100.2/24 dev inet0
    ip netns exec $INET ip link set inet0 up
    ip netns exec $INET ip link set lo up
}

cleanup() {
    for f in "$TMP"/labs.*; do
        [ -f "$f" ] || continue
        while read -r lab; do "$BIN" -q --lab "$lab" down >/dev/null 2>&1 & done < "$f"
        wait
    done
    ip link del $UP 2>/dev/null
    ip netns del $INET 2>/dev/null
    rm -rf "$TMP"
}
trap 'cleanup; exit 130' INT TERM

# up_one RUNTIME LAB INDEX: bring one lab up (uplinked when INDEX is even), timing it into
# $TMP/time.LAB; the lab is remembered for the cleanup.
up_one() {
    local rt=$1 lab=$2 i=$3 extra=()
    [ "$rt" = netns ] && extra=(--switch linux)
    echo "$lab" >> "$TMP/labs.$rt"
    local t0 t1 uplink=()
    [ $((i % 2)) -eq 0 ] && uplink=("$UP")
    t0=$(now)
    if "$BIN" -q --runtime "$rt" "${extra[@]}" --lab "$lab" up "${uplink[@]}" > "$TMP/out.$lab" 2>&1; then
        t1=$(now)
        secs "$t0" "$t1" > "$TMP/time.$lab"
    else
        echo "failed: $(tail -1 "$TMP/out.$lab")" > "$TMP/time.$lab"
    fi
}

# bench RUNTIME PREFIX N
bench() {
    local rt=$1 p=$2 n=$3 names=() i
    for ((i = 0; i < n; i++)); do names+=("$(printf '%s%02d' "$p" "$i")"); done
    echo "== $rt: $n course labs (even ones NATed out of $UP, odd ones isolated)"

    up_one "$rt" "${names[0]}" 0
    echo "${names[0]} up alone:          $(cat "$TMP/time.${names[0]}") s"
    "$BIN" -q --lab "${names[0]}" down >/dev/null 2>&1
    : > "$TMP/labs.$rt"
    sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null
    sleep 2

    local mem0 t0 t1 mem1
    mem0=$(avail_kb)
    t0=$(now)
    for ((i = 0; i < n; i++)); do up_one "$rt" "${names[$i]}" "$i" & done
    wait
    t1=$(now)
    sleep 2
    mem1=$(avail_kb)
    echo "${names[0]} up among $n:      $(cat "$TMP/time.${names[0]}") s"
    echo "all $n ups at once, wall:  $(secs "$t0" "$t1") s"
    local ok=0 failed=0 times=()
    for l in "${names[@]}"; do
        if grep -q failed "$TMP/time.$l"; then
            failed=$((failed + 1)); echo "  $l $(cat "$TMP/time.$l")"
        else
            ok=$((ok + 1)); times+=("$(cat "$TMP/time.$l")")
        fi
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v ok=$ok -v f=$failed '
        { t[NR] = $1 } END { if (NR) printf "up times among them:     min %.2f  median %.2f  max %.2f s (%d up, %d failed)\n", t[1], t[int((NR + 1) / 2)], t[NR], ok, f }'
    awk -v a="$mem0" -v b="$mem1" -v n="$n" 'BEGIN {
        printf "memory:                  %.0f MB for %d labs, %.1f MB per lab (MemAvailable)\n", (a - b) / 1024, n, (a - b) / 1024 / n }'
    local reach=0 tried=0
    for ((i = 0; i < n; i += 2)); do
        tried=$((tried + 1))
        "$BIN" --lab "${names[$i]}" exec aix ping -n -c1 -W3 198.51.100.2 >/dev/null 2>&1 && reach=$((reach + 1))
    done
    echo "uplinked labs reaching the fake internet: $reach of $tried"
    echo "-- tcplab ls:"
    "$BIN" ls | sed 's/^/   /'
    t0=$(now)
    for l in "${names[@]}"; do "$BIN" -q --lab "$l" down > "$TMP/down.$l" 2>&1 & done
    wait
    t1=$(now)
    : > "$TMP/labs.$rt"
    echo "all $n downs at once, wall: $(secs "$t0" "$t1") s"
    echo "left on the host: $(ip -o link | grep -c 'tlu') uplink lines, $(ls /run/netns 2>/dev/null | grep -c "^tcplab-$p") namespaces, $(iptables-save | grep -c "TCPLAB-$p") rule lines"
}

inet_up
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f MB", $2 / 1024 }' /proc/meminfo), kernel $(uname -r)"
bench netns s "$N_NETNS"
if [ "$N_DOCKER" -gt 0 ]; then
    if ! docker info >/dev/null 2>&1; then
        echo "== docker: skipped (no Docker engine answers)"
    elif ! docker image inspect tcplab/node >/dev/null 2>&1; then
        echo "== docker: skipped (no tcplab/node image: run \`$BIN image build\`)"
    else
        bench docker d "$N_DOCKER"
    fi
fi
cleanup
