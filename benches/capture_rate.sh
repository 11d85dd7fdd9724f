#!/usr/bin/env bash
# capture_rate.sh - packets per second a capture sustains on one veth, against tcpdump.
#
# usage: capture_rate.sh [-r RUNS] [-t SECS] [-m gso|mtu] [-o DIR] [-N] TCPLAB_BIN
#
# Builds nothing: TCPLAB_BIN is a built binary (build it with --release) whose
#     TCPLAB_BIN [-q] --lab captest capture NODE IFACE -w FILE --duration SECS
# captures NODE's IFACE and prints, once its sockets are open, a line with
# "capturing on" or "listening on", and at the end "N packets captured" and
# "M dropped by (the) kernel" (tcpdump's wording works too).
#
# Two nodes, a and b, joined by a veth line va ($NET.1/24) - vb ($NET.2/24):
# by default the script writes a two-node topology and brings the lab
# "captest" up with `TCPLAB_BIN --topology FILE up` (namespaces
# tcplab-captest-a and tcplab-captest-b), and takes it down at the end; with -N
# it makes those two namespaces itself with ip(8) (for a stand-in binary that
# has no `up`, e.g. the scratch crate's `examples/capture.rs`).
#
# Then iperf3 TCP a -> b for SECS seconds while capturing on vb inside b, once
# per run with each tool in turn: tcplab, then `tcpdump -i vb -w FILE`; plus a
# run without capture as the baseline. The tools take turns run by run so that
# background load hits them alike. Prints medians over RUNS of: packets per
# second seen by the capture, packets dropped by the kernel, packets per second
# the interface carried, iperf3's throughput, the share of packets seen, and
# the capture process's CPU use during the iperf3 run (% of one core, and
# nanoseconds per packet seen).
#
#   -m gso  (default) offloads as the kernel sets them: TCP leaves in GSO
#           super-packets of up to 64 KiB, so few but large packets.
#   -m mtu  TSO/GSO/GRO off on both veth ends: MTU-sized packets, many more per second.
#   -o DIR  write the captures as files in DIR (use a tmpfs such as /dev/shm;
#           GSO mode writes about 1 GB per second of capture), removed after
#           each run. Without -o both tools write to /dev/null.
#
# Environment:
#   CAPTURE_CMD     how to run the tool under test; placeholders {bin} {node}
#                   {netns} {iface} {file} {secs}. Default:
#                   '{bin} --lab captest capture {node} {iface} -w {file} --duration {secs}'
#                   ({node} is "b", {netns} is "tcplab-captest-b"). With -N:
#                   '{bin} capture {netns} {iface} -w {file} --duration {secs}'.
#                   A tool that prints no "packets captured" line (e.g. run
#                   with -q) is counted from its file: give -o then.
#   TCPDUMP_BUFFER  tcpdump -B value in KiB (default: tcpdump's own, 2 MiB).
#   NET             the /24 used inside the namespaces (default 10.99.77; it
#                   must not be routed on the host).
#
# Traffic stays between the two namespaces of the lab; they are deleted on
# exit, whatever happens.
set -euo pipefail

RUNS=3
SECS=5
MODE=gso
OUTDIR=
OWN_NETNS=
while getopts "r:t:m:o:Nh" opt; do
    case $opt in
        r) RUNS=$OPTARG ;;
        t) SECS=$OPTARG ;;
        m) MODE=$OPTARG ;;
        o) OUTDIR=$OPTARG ;;
        N) OWN_NETNS=1 ;;
        *) sed -n '2,50p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n '2,10p' "$0"; exit 2; }
BIN=$1
if [ -n "$OWN_NETNS" ]; then
    CAPTURE_CMD=${CAPTURE_CMD:-'{bin} capture {netns} {iface} -w {file} --duration {secs}'}
else
    CAPTURE_CMD=${CAPTURE_CMD:-'{bin} --lab captest capture {node} {iface} -w {file} --duration {secs}'}
fi
NET=${NET:-10.99.77}

[ "$(id -u)" -eq 0 ] || { echo "capture_rate.sh: needs root (namespaces, packet sockets)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "capture_rate.sh: $BIN is not an executable" >&2; exit 1; }
for t in ip iperf3 tcpdump ss awk sort sed; do
    command -v $t >/dev/null || { echo "capture_rate.sh: needs $t" >&2; exit 1; }
done
[ "$MODE" = gso ] || [ "$MODE" = mtu ] || { echo "capture_rate.sh: -m gso or -m mtu" >&2; exit 2; }
[ "$MODE" = gso ] || command -v ethtool >/dev/null || { echo "capture_rate.sh: -m mtu needs ethtool" >&2; exit 1; }
[ -z "$OUTDIR" ] || [ -d "$OUTDIR" ] || { echo "capture_rate.sh: $OUTDIR is not a directory" >&2; exit 1; }
# The range must not be one the host already uses.
if ip -4 route show to match "$NET.1" | grep -v '^default' | grep -q .; then
    echo "capture_rate.sh: the host already routes $NET.0/24; pick another with NET=10.99.N" >&2; exit 1
fi

NA=tcplab-captest-a
NB=tcplab-captest-b
for ns in $NA $NB; do
    if ip netns list | grep -q "^$ns\b"; then
        echo "capture_rate.sh: $ns exists already (an earlier run, or lab captest is up); remove it first" >&2
        exit 1
    fi
done
WORK=$(mktemp -d /tmp/tcplab-captest-rate.XXXXXX)
PIDS=()
LAB_UP=
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$LAB_UP" ]; then
        "$BIN" --lab captest down >/dev/null 2>&1 || echo "capture_rate.sh: '$BIN --lab captest down' failed" >&2
    fi
    ip netns del $NA 2>/dev/null || true
    ip netns del $NB 2>/dev/null || true
    [ -z "$OUTDIR" ] || rm -f "$OUTDIR"/tcplab-captest-*.pcap
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$OWN_NETNS" ]; then
    ip netns add $NA
    ip netns add $NB
    ip link add va netns $NA type veth peer name vb netns $NB
    ip -n $NA addr add "$NET.1/24" dev va
    ip -n $NB addr add "$NET.2/24" dev vb
    for x in "$NA va" "$NB vb" "$NA lo" "$NB lo"; do set -- $x; ip -n "$1" link set "$2" up; done
else
    cat >"$WORK/captest.toml" <<EOF
name = "captest"
description = "capture_rate.sh: two nodes on one veth line"

[nodes.a]
[nodes.b]

[[links]]
name = "ab"
a = { node = "a", interface = "va", address = "$NET.1/24" }
b = { node = "b", interface = "vb", address = "$NET.2/24" }
EOF
    LAB_UP=1
    "$BIN" --topology "$WORK/captest.toml" up >"$WORK/up.log" 2>&1 \
        || { echo "capture_rate.sh: '$BIN --topology $WORK/captest.toml up' failed:" >&2; cat "$WORK/up.log" >&2; exit 1; }
fi
for ns in $NA $NB; do
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
if [ "$MODE" = mtu ]; then
    ip netns exec $NA ethtool -K va tso off gso off gro off >/dev/null
    ip netns exec $NB ethtool -K vb tso off gso off gro off >/dev/null
fi
ip netns exec $NA ping -c 1 -W 2 "$NET.2" >/dev/null \
    || { echo "capture_rate.sh: a cannot ping b ($NET.2)" >&2; exit 1; }

iface_packets() {  # packets vb carried, both directions
    ip netns exec $NB sh -c 'echo $(( $(cat /sys/class/net/vb/statistics/rx_packets) + $(cat /sys/class/net/vb/statistics/tx_packets) ))'
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {  # PID -> user+system clock ticks so far (0 without a pid)
    if [ -n "$1" ] && [ -r "/proc/$1/stat" ]; then
        awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
    else
        echo 0
    fi
}

wait_ready() {  # LOG PID: wait for the tool to say its sockets are open; a
    # tool that says nothing (quiet) but is still running after 3 s is taken as ready
    local i
    for i in $(seq 30); do
        grep -qE 'listening on|capturing on' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { echo "capture_rate.sh: the capture ended at once:" >&2; cat "$1" >&2; return 1; }
        sleep 0.1
    done
    [ -n "${QUIET_NOTED:-}" ] || echo "capture_rate.sh: no 'capturing on' line from the tool; assuming it is ready after 3 s" >&2
    QUIET_NOTED=1
}

iperf() {  # prints Gbit/s
    ip netns exec $NB iperf3 -s -1 >/dev/null 2>&1 &
    local srv=$!
    PIDS+=("$srv")
    local i
    for i in $(seq 50); do
        [ -n "$(ip netns exec $NB ss -Hltn 'sport = :5201')" ] && break
        sleep 0.1
    done
    ip netns exec $NA iperf3 -c "$NET.2" -t "$SECS" -f g 2>&1 \
        | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") print $(i-1) }'
    wait "$srv" 2>/dev/null || true
}

count_file() {  # FILE -> packets in it, or nothing
    [ "$1" = /dev/null ] && return 0
    if command -v capinfos >/dev/null; then
        capinfos -c -M "$1" 2>/dev/null | awk '/Number of packets/ { print $NF }'
    else
        tcpdump -r "$1" 2>/dev/null | wc -l
    fi
}

one_run() {  # TOOL RUN: appends "captured dropped iface_pkts gbits cpu_ms" to $WORK/TOOL.rows
    local tool=$1 log="$WORK/$1.$2.log" file=/dev/null pid= before after gbits cap drop cpu0 cpu1 ms
    [ -n "$OUTDIR" ] && [ "$tool" != none ] && file="$OUTDIR/tcplab-captest-$tool.pcap"
    : >"$log"
    case $tool in
        tcpdump)
            local bopt=()
            [ -n "${TCPDUMP_BUFFER:-}" ] && bopt=(-B "$TCPDUMP_BUFFER")
            ip netns exec $NB tcpdump -i vb -n "${bopt[@]}" -w "$file" 2>"$log" &
            pid=$!
            ;;
        tcplab)
            local cmd=$CAPTURE_CMD
            cmd=${cmd//\{bin\}/$BIN}
            cmd=${cmd//\{node\}/b}
            cmd=${cmd//\{netns\}/$NB}
            cmd=${cmd//\{iface\}/vb}
            cmd=${cmd//\{file\}/$file}
            cmd=${cmd//\{secs\}/$((SECS + 6))}
            sh -c "exec $cmd" 2>"$log" &
            pid=$!
            ;;
    esac
    [ -n "$pid" ] && { PIDS+=("$pid"); wait_ready "$log" "$pid"; }
    before=$(iface_packets)
    cpu0=$(cpu_ticks "$pid")
    gbits=$(iperf)
    cpu1=$(cpu_ticks "$pid")
    after=$(iface_packets)
    cap=0 drop=0
    if [ -n "$pid" ]; then
        [ "$tool" = tcpdump ] && kill -INT "$pid"
        wait "$pid" || true
        cap=$(awk '/packets captured/ { print $1; exit }' "$log")
        drop=$(sed -nE 's/^(.*[^0-9])?([0-9]+) (packets )?dropped by (the )?kernel.*/\2/p' "$log" | head -1)
        [ -n "$cap" ] || cap=$(count_file "$file")
        if [ "$tool" = tcplab ] && [ "$(wc -l <"$log")" -gt 1000 ]; then
            echo "capture_rate.sh: the tool printed $(wc -l <"$log") lines (one per packet?): its numbers include printing;" \
                "run it quiet, e.g. CAPTURE_CMD='{bin} -q --lab captest capture {node} {iface} -w {file} --duration {secs}' with -o /dev/shm" >&2
        fi
        [ "$file" = /dev/null ] || rm -f "$file"
    fi
    ms=$(( (cpu1 - cpu0) * 1000 / CLK_TCK ))
    echo "${cap:-?} ${drop:-?} $((after - before)) ${gbits:-?} $ms" >>"$WORK/$tool.rows"
    echo "  run $2 $tool: captured ${cap:-?}, dropped ${drop:-?}, interface $((after - before)) packets, ${gbits:-?} Gbit/s, capture cpu ${ms} ms" >&2
}

median() {  # numbers on stdin ("?" ignored) -> median (upper median for even counts)
    { grep -v '^?$' || true; } | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "?"; else print v[int(NR / 2) + 1] }'
}

echo "capture_rate: $RUNS runs of iperf3 -t $SECS, mode $MODE, output ${OUTDIR:-/dev/null}, tcpdump buffer ${TCPDUMP_BUFFER:-default} KiB, kernel $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
TOOLS="none tcplab tcpdump"
for tool in $TOOLS; do : >"$WORK/$tool.rows"; done
for r in $(seq "$RUNS"); do
    for tool in $TOOLS; do one_run "$tool" "$r"; done
done
printf '%-8s %10s %9s %10s %7s %7s %7s %7s\n' tool pps_seen dropped iface_pps gbit/s seen% cpu% ns/pkt
for tool in $TOOLS; do
    cap=$(awk '{ print $1 }' "$WORK/$tool.rows" | median)
    drop=$(awk '{ print $2 }' "$WORK/$tool.rows" | median)
    pk=$(awk '{ print $3 }' "$WORK/$tool.rows" | median)
    gb=$(awk '{ print $4 }' "$WORK/$tool.rows" | median)
    seen=$(awk '$1 != "?" && $3 > 0 { printf "%.1f\n", 100 * $1 / $3 }' "$WORK/$tool.rows" | median)
    cpu=$(awk -v s="$SECS" '{ printf "%.0f\n", $5 / (10 * s) }' "$WORK/$tool.rows" | median)
    nspp=$(awk '$1 != "?" && $1 > 0 { printf "%.0f\n", $5 * 1e6 / $1 }' "$WORK/$tool.rows" | median)
    if [ "$tool" = none ]; then
        cap_pps=- seen=- drop=- cpu=- nspp=-
    elif [ "$cap" = "?" ]; then
        cap_pps="?"
    else
        cap_pps=$((cap / SECS))
    fi
    printf '%-8s %10s %9s %10s %7s %7s %7s %7s\n' "$tool" "$cap_pps" "$drop" "$((pk / SECS))" "$gb" "$seen" "$cpu" "$nspp"
    eval "pps_$tool=\$cap_pps"
done
# shellcheck disable=SC2154
case "$pps_tcplab/$pps_tcpdump" in
    *\?*|*/0) ;;
    *) awk -v a="$pps_tcplab" -v b="$pps_tcpdump" 'BEGIN { printf "ratio tcplab/tcpdump (pps seen): %.2f\n", a / b }' ;;
esac
