#!/usr/bin/env bash
# benches/conditions.sh: how exactly `tcplab link set` conditions a line, and what a conditioned
# line costs, on the course lab (netns runtime, Linux bridges) brought up as lab "benchcond":
#   1. set vs measured: the serial RTT of the slip line at 1200 and 9600 bit/s (SLIP framing), a
#      one-way delay, a jitter, a random loss and an Ethernet-framed rate (as TCP goodput);
#   2. the CPU a conditions worker uses to pass UDP at 1, 10 and 100 Mbit/s, and the loss seen;
#   3. the highest TCP rate through a conditioned line, next to the same line without conditions;
#   4. the RTT a conditioned line adds when its conditions do nothing.
# A benchmark: it prints numbers and asserts nothing about them. Needs root; about three minutes.
# Installs iperf3 and jq when missing (the nodes of the netns runtime see the host's programs).
#
# usage: sudo benches/conditions.sh [TCPLAB_BINARY]    (default: the repository's target/release/tcplab)
#   build first: cargo build --release
# environment:
#   RUNS=3      runs of each timed transfer (TCP goodput, UDP cost, highest rate, added RTT); medians
#
# How it measures (all traffic stays inside the lab's namespaces; the lab has no uplink):
#   - RTT: ping's own per-reply times (`time=`), the median of each set of pings; the slip line's
#     ARP entries are made before conditions are set, so no ping waits for ARP; before the serial
#     rates both are REACHABLE too (an entry learnt from the other end's request starts STALE and
#     is probed 5 s after its first use: a 42-byte ARP frame on a 1200 bit/s line holds a ping up
#     to 250 ms); the worker's counters (`link show --json`) give the frames on the line other
#     than the pings, and how late the latest frame left its time (the worker's scheduling: under
#     load a late worker moves RTTs past what was set). The serial RTT is slip -> bsdi-bsdiside
#     (140.252.13.66) with `link set slip bsdi` (both directions): a default ping is 84 bytes of
#     IP, 86 on the line with SLIP's two END bytes, 10 bits a byte:
#     86 x 10 / rate each way (1433.3 ms RTT at 1200 bit/s, 179.2 ms at 9600 bit/s). ping prints
#     times of 100 ms and more in whole milliseconds, from 10 ms on to 0.1 ms.
#     Delay, jitter and loss are set on bsdi:bsdiside only (bsdi -> slip: the replies), so the
#     expected RTT is the one-way delay; with jitter J the delay is uniform in [delay-J, delay+J],
#     standard deviation J/sqrt(3); pings 100 ms apart, more than the 2J spread, so the order
#     the datapath keeps never holds one reply behind another.
#   - loss: 1000 pings 5 ms apart (`ping -q`); measured loss = 1 - received/transmitted; next to
#     it the interval holding 99 % of outcomes of 1000 trials at the set probability (exact
#     binomial quantiles 0.5 % and 99.5 %).
#   - rate: iperf3 TCP aix -> slip (the server in slip, `iperf3 -s -D`) for 5 s, the receiver's
#     goodput, median of RUNS; conditions on aix:eth1 (Ethernet framing: the rate counts whole
#     frames); expected goodput = rate x 1448/1514 (MSS 1448 with timestamps in a 1514-byte frame).
#   - worker CPU: utime + stime of the worker process (`tcplab link-worker`, found by its
#     --control name) from /proc/PID/stat, before and after an iperf3 UDP run of 5 s at the
#     offered rate, / clock ticks / wall seconds (100 % = one core); the receiver's loss from
#     iperf3's report, next to the frames the worker itself dropped or could not send (its
#     counters); conditions `--rate 100gbit` on aix:eth1, a worker that only passes frames.
#   - highest rate: iperf3 TCP aix -> slip for 5 s with `--rate 100gbit` on aix:eth1 and with no
#     conditions (the kernel path alone), receiver's goodput, median of RUNS.
#   - added RTT: 50 pings 20 ms apart aix -> slip without and with `--rate 100gbit` on aix:eth1,
#     RUNS alternating rounds; the median of all pings of each kind and the difference.
# Reading the numbers: the machine has few cores and other work (builds, tests) moves the CPU
# and throughput numbers a lot, so the load average is printed at start and end.
# A trap runs `tcplab --lab benchcond down` (which stops the workers) and stops the iperf3
# server this script started, whatever way it exits.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../target/release/tcplab}
RUNS=${RUNS:-3}
LAB=benchcond
DUR=5                       # seconds of each iperf3 run

# Addresses of the course lab (/work/shared/TOPOLOGY.md)
SLIP=140.252.13.65          # slip, slipside
BSDI_SIDE=140.252.13.66     # bsdi, bsdiside (bsdi's end of the slip line)
AIX=140.252.1.92

die() { echo "conditions.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces): run it with sudo"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
[ -x "$BIN" ] || die "no tcplab binary at $BIN: run \`cargo build --release\` first, or pass its path"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ---------------------------------------------------------------- tools (installed only if missing)
apt_updated=0
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || die "cannot install $2"
}
need ping iputils-ping
need iperf3 iperf3
need jq jq
need pgrep procps

TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- lab, trap
TMP=$(mktemp -d /tmp/tcplab-conditions.XXXXXX) || die "mktemp failed"
IPERF_PID=$TMP/iperf3.pid

lab() { "$BIN" --lab "$LAB" "$@"; }
lab_is_up() { lab status >/dev/null 2>&1; }
node() { lab exec "$@"; } # node NODE CMD...

lab_is_up && die "lab $LAB is up already (a leftover?): \`$BIN --lab $LAB down\` removes it"

cleanup() {
    trap - EXIT INT TERM
    if [ -s "$IPERF_PID" ]; then
        kill "$(cat "$IPERF_PID")" 2>/dev/null
    fi
    lab -q down || echo "conditions.sh: cleanup: down of $LAB failed" >&2
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "conditions.sh: interrupted" >&2; exit 130' INT TERM

# set_cond ENDS... -- CONDITIONS...: `link set`, stopping on failure
set_cond() {
    local ends=()
    while [ "$1" != -- ]; do ends+=("$1"); shift; done
    shift
    lab -q link set "${ends[@]}" "$@" 2>"$TMP/err" || die "link set ${ends[*]} $*: $(cat "$TMP/err")"
}
clear_all() { lab -q link clear 2>"$TMP/err" || die "link clear: $(cat "$TMP/err")"; }

# ---------------------------------------------------------------- statistics
# rtts FILE: ping's output -> one RTT (ms) a line
rtts() { sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$1"; }
# median: of the numbers on stdin ("-" when none)
median() {
    sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "-"; exit }
        printf "%.3f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# summary: numbers on stdin -> "n min median max mean stddev"
summary() {
    sort -g | awk '{v[NR] = $1; s += $1; ss += $1 * $1} END {
        if (NR == 0) { print "0 - - - - -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        mean = s / NR; var = (NR > 1) ? (ss - NR * mean * mean) / (NR - 1) : 0
        if (var < 0) var = 0
        printf "%d %.3f %.3f %.3f %.3f %.3f\n", NR, v[1], m, v[NR], mean, sqrt(var) }'
}
# binom99 N P: the 0.5 % and 99.5 % quantiles of Binomial(N, P), as percentages of N
binom99() {
    awk -v n="$1" -v p="$2" 'BEGIN {
        pmf = (1 - p) ^ n; cdf = pmf; lo = -1; hi = -1
        for (k = 0; k <= n; k++) {
            if (lo < 0 && cdf >= 0.005) lo = k
            if (hi < 0 && cdf >= 0.995) { hi = k; break }
            pmf = pmf * (n - k) / (k + 1) * p / (1 - p); cdf += pmf
        }
        printf "%.1f %.1f\n", 100 * lo / n, 100 * hi / n }'
}
f1() { awk -v x="$1" 'BEGIN { if (x == "-" || x == "") print "-"; else printf "%.1f", x }'; }
f2() { awk -v x="$1" 'BEGIN { if (x == "-" || x == "") print "-"; else printf "%.2f", x }'; }
late_ms() { awk -v x="${1:-}" 'BEGIN { if (x == "") print "-"; else printf "%.1f", x / 1000 }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.3f", a - b }'; }

# ---------------------------------------------------------------- measurements
# ping_from NODE OUTFILE PING-ARGS...: ping in a node, its output to a file
ping_from() { local n=$1 out=$2; shift 2; node "$n" ping -n "$@" >"$out" 2>&1; }

# worker_pid NODE IFACE: the conditions worker of that end
worker_pid() { pgrep -f "link-worker.*/$LAB/$1/$2( |\$)" | head -n 1; }
# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/PID/stat; the name field may hold spaces)
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# end_stats END: the worker's counters of an end, "frames_in frames_out dropped send_errors late_max_us"
end_stats() {
    lab link show --json 2>/dev/null | jq -r --arg e "$1" \
        '.[] | select(.end == $e) | .stats | "\(.frames_in) \(.frames_out) \(.dropped) \(.send_errors) \(.late_max_us)"'
}
# neigh_state NODE IFACE ADDR: the NUD state of a neighbour entry (REACHABLE, STALE, ...)
neigh_state() { node "$1" ip neigh show "$3" dev "$2" 2>/dev/null | awk '{print $NF}'; }
# warm_arp: the slip line's ARP entries made, both REACHABLE (an entry learnt from the other's
# request starts STALE and is probed 5 s after its first use: a 42-byte ARP frame that would
# hold a ping for up to 250 ms at 1200 bit/s)
warm_arp() {
    local i
    ping_from slip "$TMP/p" -c 1 -W 3 "$BSDI_SIDE"
    ping_from bsdi "$TMP/p" -c 1 -W 3 "$SLIP"
    for ((i = 0; i < 50; i++)); do
        [ "$(neigh_state slip slipside "$BSDI_SIDE")" = REACHABLE ] &&
            [ "$(neigh_state bsdi bsdiside "$SLIP")" = REACHABLE ] && return 0
        sleep 0.2
    done
    say "  (note: the slip line's ARP entries did not both become REACHABLE within 10 s)"
}

# iperf_tcp OUTVAR: one TCP run aix -> slip, the receiver's goodput in Mbit/s
iperf_tcp() {
    node aix iperf3 -c "$SLIP" -t "$DUR" -J >"$TMP/iperf.json" 2>"$TMP/err" || { echo -; return; }
    jq -r '.end.sum_received.bits_per_second / 1e6' "$TMP/iperf.json" 2>/dev/null || echo -
}
# iperf_tcp_median: RUNS runs -> "median run1 run2 ..." (Mbit/s)
iperf_tcp_median() {
    local i runs=()
    for ((i = 0; i < RUNS; i++)); do runs+=("$(iperf_tcp)"); done
    printf '%s ' "$(printf '%s\n' "${runs[@]}" | grep -v '^-$' | median)" "${runs[@]}"
    echo
}

# ---------------------------------------------------------------- run
say "tcplab link conditions benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "binary: $BIN ($("$BIN" --version 2>/dev/null); built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC'); repository at git $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "machine: $(uname -sr), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "lab: the course lab as $LAB, --runtime netns --switch linux, isolated; $RUNS runs of each timed transfer ($DUR s each)"

"$BIN" --lab "$LAB" --runtime netns --switch linux -q up >"$TMP/out" 2>&1 || die "up failed: $(tail -n 5 "$TMP/out")"
node slip ping -n -c 1 -W 3 -q "$AIX" >"$TMP/out" 2>&1 || die "sanity ping slip -> aix failed: $(tail -n 3 "$TMP/out")"
node slip iperf3 -s -D -I "$IPERF_PID" >"$TMP/out" 2>&1 || die "iperf3 server in slip failed: $(cat "$TMP/out")"
sleep 0.5
say "datapath: $(lab link set aix:eth1 --rate 100gbit >/dev/null 2>&1; lab link show --json 2>/dev/null | jq -r '.[0].stats.datapath // "?"' 2>/dev/null)"
clear_all

# ---- 1. set vs measured
say ""
say "== 1. set vs measured"
T1='%-44s %-28s %-31s %s\n'
printf "$T1" "condition (where)" "expected" "measured" "how"

# base RTT slip -> bsdi, and ARP on the slip line made before any condition
ping_from slip "$TMP/p" -c 10 -i 0.2 "$BSDI_SIDE"
BASE_SLIP=$(rtts "$TMP/p" | median)
printf "$T1" "none (slip -> bsdi-bsdiside)" "-" "RTT $BASE_SLIP ms (median of 10)" "baseline"

for r in 1200 9600; do
    exp=$(awk -v r="$r" 'BEGIN { printf "%.1f", 2 * 86 * 10 / r * 1000 }')
    warm_arp
    set_cond slip bsdi -- --rate "${r}bit" --framing slip
    if [ "$r" = 1200 ]; then ping_from slip "$TMP/p" -c 5 -i 2 -W 5 "$BSDI_SIDE"
    else ping_from slip "$TMP/p" -c 5 -i 1 -W 3 "$BSDI_SIDE"; fi
    read -r n _ med _ _ _ < <(rtts "$TMP/p" | summary)
    read -r fa _ _ _ la < <(end_stats slip:slipside)
    read -r fb _ _ _ lb < <(end_stats bsdi:bsdiside)
    other=$(( ${fa:-0} + ${fb:-0} - 10 ))
    printf "$T1" "rate ${r}bit slip (slip bsdi, both ways)" "RTT $exp ms" "RTT $(f1 "$med") ms" \
        "median of $n/5 pings: $(rtts "$TMP/p" | tr '\n' ' ')(other frames on the line: $other; latest frame $(late_ms $((${la:-0} > ${lb:-0} ? ${la:-0} : ${lb:-0}))) ms late)"
    clear_all
done

for d in 10 100; do
    ping_from slip "$TMP/p" -c 1 -W 3 "$BSDI_SIDE"
    set_cond bsdi:bsdiside -- --delay "${d}ms"
    ping_from slip "$TMP/p" -c 10 -i 0.2 -W 3 "$BSDI_SIDE"
    read -r n mn med mx _ _ < <(rtts "$TMP/p" | summary)
    read -r _ _ _ _ late < <(end_stats bsdi:bsdiside)
    printf "$T1" "delay ${d}ms (bsdi:bsdiside)" "RTT $d.0 ms" "RTT $(f2 "$med") ms ($(f2 "$mn")-$(f2 "$mx"))" \
        "median of $n/10 pings, $(diff_ms "$med" "$d") ms; latest frame $(late_ms "$late") ms late"
    clear_all
done

ping_from slip "$TMP/p" -c 1 -W 3 "$BSDI_SIDE"
set_cond bsdi:bsdiside -- --delay 100ms --jitter 20ms
ping_from slip "$TMP/p" -c 100 -i 0.1 -W 3 "$BSDI_SIDE"
read -r n mn med mx mean sd < <(rtts "$TMP/p" | summary)
out=$(rtts "$TMP/p" | awk '$1 < 80 || $1 > 120 { k++ } END { print k + 0 }')
read -r _ _ _ _ late < <(end_stats bsdi:bsdiside)
printf "$T1" "delay 100ms jitter 20ms (bsdi:bsdiside)" "RTT 80-120, med 100 ms" "min $(f1 "$mn") med $(f1 "$med") max $(f1 "$mx") ms" \
    "$n/100 pings, $out outside 80-120; latest frame $(late_ms "$late") ms late"
printf "$T1" "  its standard deviation" "$(awk 'BEGIN { printf "%.2f ms (20/sqrt 3)", 20 / sqrt(3) }')" "$(f2 "$sd") ms (mean $(f1 "$mean"))" "sample stddev"
clear_all

for l in 5 20; do
    ping_from slip "$TMP/p" -c 1 -W 3 "$BSDI_SIDE"
    set_cond bsdi:bsdiside -- --loss "${l}%"
    ping_from slip "$TMP/p" -c 1000 -i 0.005 -W 1 -q "$BSDI_SIDE"
    read -r tx rx < <(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$TMP/p")
    read -r lo hi < <(binom99 1000 "$(awk -v l="$l" 'BEGIN { print l / 100 }')")
    meas=$(awk -v t="${tx:-0}" -v r="${rx:-0}" 'BEGIN { if (t > 0) printf "%.1f %% (%d of %d lost)", 100 * (t - r) / t, t - r, t; else print "-" }')
    printf "$T1" "loss $l% (bsdi:bsdiside)" "$l.0 %, 99% in [$lo, $hi]" "$meas" "1000 pings 5 ms apart"
    clear_all
done

for r in 1 10; do
    set_cond aix:eth1 -- --rate "${r}mbit"
    exp=$(awk -v r="$r" 'BEGIN { printf "%.3f", r * 1448 / 1514 }')
    read -r med runs < <(iperf_tcp_median)
    printf "$T1" "rate ${r}mbit ethernet (aix:eth1)" "goodput $exp Mbit/s" "goodput $(awk -v x="$med" 'BEGIN { printf "%.3f", x }') Mbit/s" "iperf3 TCP ${DUR}s, runs: $(for x in $runs; do printf '%.3f ' "$x"; done)"
    clear_all
done

# ---- 2. CPU cost of a worker that only passes frames
say ""
say "== 2. CPU of a conditioned line (--rate 100gbit on aix:eth1), iperf3 UDP aix -> slip, ${DUR}s a run, median of $RUNS"
T2='%-10s %-13s %-16s %-16s %s\n'
printf "$T2" offered "worker CPU %" "receiver loss %" "received Mbit/s" "runs (CPU % / loss % / frames the worker dropped or could not send)"
set_cond aix:eth1 -- --rate 100gbit
WPID=$(worker_pid aix eth1)
[ -n "$WPID" ] || die "no conditions worker found for aix:eth1"
for b in 1 10 100; do
    : >"$TMP/cpu"; : >"$TMP/loss"; : >"$TMP/rx"; runs=""
    for ((i = 0; i < RUNS; i++)); do
        read -r _ _ d0 e0 _ < <(end_stats aix:eth1)
        c0=$(cpu_ticks "$WPID"); t0=$EPOCHREALTIME
        node aix iperf3 -c "$SLIP" -u -b "${b}M" -t "$DUR" -J >"$TMP/iperf.json" 2>"$TMP/err"
        t1=$EPOCHREALTIME; c1=$(cpu_ticks "$WPID")
        read -r _ _ d1 e1 _ < <(end_stats aix:eth1)
        cpu=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v k="$TCK" 'BEGIN { printf "%.2f", 100 * (b - a) / k / (e - s) }')
        # the receiver's view: packets = the highest sequence number seen, lost = the gaps
        loss=$(jq -r '.end.sum_received.lost_percent // empty' "$TMP/iperf.json" 2>/dev/null)
        rx=$(jq -r '.end | (.sum_sent.bytes / .sum_sent.packets) as $len
            | (.sum_received.packets - .sum_received.lost_packets) * $len * 8 / .sum_received.seconds / 1e6' \
            "$TMP/iperf.json" 2>/dev/null)
        echo "$cpu" >>"$TMP/cpu"; echo "${loss:--}" >>"$TMP/loss"; echo "${rx:--}" >>"$TMP/rx"
        runs+="$cpu/$(f2 "${loss:--}")/$(( ${d1:-0} + ${e1:-0} - ${d0:-0} - ${e0:-0} )) "
    done
    printf "$T2" "${b} Mbit/s" "$(f2 "$(median <"$TMP/cpu")")" "$(f2 "$(grep -v '^-$' "$TMP/loss" | median)")" \
        "$(f2 "$(grep -v '^-$' "$TMP/rx" | median)")" "$runs"
done
say "  (CPU: the worker's utime+stime over the run's wall time, 100 % = one core; clock ticks $TCK/s)"

# ---- 3. highest TCP rate
say ""
say "== 3. highest TCP rate aix -> slip (iperf3 ${DUR}s, receiver's goodput, median of $RUNS)"
read -r med_c runs_c < <(iperf_tcp_median)
clear_all
read -r med_n runs_n < <(iperf_tcp_median)
printf '%-40s %10s Mbit/s   runs: %s\n' "conditioned (--rate 100gbit, aix:eth1)" "$(f1 "$med_c")" "$(for x in $runs_c; do printf '%.1f ' "$x"; done)"
printf '%-40s %10s Mbit/s   runs: %s\n' "no conditions" "$(f1 "$med_n")" "$(for x in $runs_n; do printf '%.1f ' "$x"; done)"

# ---- 4. added RTT
say ""
say "== 4. RTT added by a line whose conditions do nothing (--rate 100gbit on aix:eth1), aix -> slip"
: >"$TMP/without"; : >"$TMP/with"
ping_from aix "$TMP/p" -c 5 -i 0.2 "$SLIP" # warm ARP along the path
for ((i = 0; i < RUNS; i++)); do
    ping_from aix "$TMP/p" -c 50 -i 0.02 "$SLIP"; rtts "$TMP/p" >>"$TMP/without"
    set_cond aix:eth1 -- --rate 100gbit
    ping_from aix "$TMP/p" -c 50 -i 0.02 "$SLIP"; rtts "$TMP/p" >>"$TMP/with"
    clear_all
done
read -r n_wo mn_wo med_wo mx_wo _ _ < <(summary <"$TMP/without")
read -r n_w mn_w med_w mx_w _ _ < <(summary <"$TMP/with")
printf '%-16s median %s ms (min %s, max %s; %s pings in %s rounds of 50)\n' "without" "$med_wo" "$mn_wo" "$mx_wo" "$n_wo" "$RUNS"
printf '%-16s median %s ms (min %s, max %s; %s pings in %s rounds of 50)\n' "with" "$med_w" "$mn_w" "$mx_w" "$n_w" "$RUNS"
printf '%-16s %s ms\n' "added (median)" "$(diff_ms "$med_w" "$med_wo")"

say ""
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
