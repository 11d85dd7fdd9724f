#!/usr/bin/env bash
# benches/soak.sh: whether many up / ping matrix / conditions / down cycles leave anything behind
# or slow down: CYCLES_NETNS cycles of the course lab on the netns runtime (Linux bridges), then
# CYCLES_DOCKER cycles on the docker runtime (its LANs Open vSwitch bridges, as in the course),
# with the machine's counters read after every `down`.
# A benchmark: it prints numbers and asserts nothing about them. Needs root; the docker soak
# needs a Docker engine and Open vSwitch running (it is skipped, with the reason, otherwise).
# A netns cycle takes about half a second here, a docker cycle about 2.5 s (debug build): the
# default 200 + 50 cycles about 4 minutes.
#
# usage: sudo benches/soak.sh [TCPLAB_BINARY]        (default: the repository's target/release/tcplab)
#   build first: cargo build --release
# environment:
#   CYCLES_NETNS=200    cycles on the netns runtime (0: skip)
#   CYCLES_DOCKER=50    cycles on the docker runtime (0: skip)
#   SETTLE=0            seconds to wait after each down before reading the counters
#
# One cycle (whole-process wall clock of each command, bash's $EPOCHREALTIME, in ms):
#   up      `tcplab --lab L --runtime R [--switch linux] -q up`
#   matrix  `tcplab --lab L status --json` for the addresses, then every node pings the first
#           address of every other node once (ping -c 1 -W 1): one `tcplab exec NODE sh -c '...'`
#           per source node, run one after the other; 9 nodes x 8 = 72 pings; `fail` counts the
#           pings without an answer (all of a node's pings when its exec itself fails)
#   link    `tcplab link set slip bsdi --delay 1ms` then `tcplab link clear`: starts and stops
#           the conditions workers of both ends of the slip line
#   down    `tcplab --lab L -q down`
#   cycle   the four together (the counters are read outside it)
#   err     tcplab commands of the cycle that exited non-zero (their message is printed)
# The machine's counters, read after each down (and once before the first cycle):
#   files   allocated file handles, the first field of /proc/sys/fs/file-nr
#   memMiB  MemAvailable of /proc/meminfo, MiB
#   netns   named network namespaces (entries of /run/netns)
#   lsns    network namespaces a process or a mount holds (`lsns -n -t net`; a namespace that
#           lost its /run/netns name but is still held by a process shows here)
#   links   network interfaces of the host's namespace (`ip -o link`)
#   ipt     iptables rules (`iptables-save`, lines starting with -A)
#   ovsIf ovsPt ovsBr   rows of Open vSwitch's Interface, Port and Bridge tables ("-": OVS not running)
#   tcplab  processes named tcplab (or as the binary given) on the machine, zombies included; by
#           name, not by command line, which would also count compilers building tcplab
#   wrk     `tcplab link-worker` processes of this soak's lab
#   zomb    zombie processes on the machine (any name: exited, not yet waited for; the
#           conditions workers are detached, so their parent is PID 1 once they exit)
#   left    what is still there under this soak's lab's name: namespaces tcplab-LAB[-*],
#           containers tcplab-LAB-*, Open vSwitch bridges LAB-* (0 after every down)
#   ctr     containers, running or not (`docker ps -aq`; "-": no Docker engine)
# At the end, per soak: the first and last ten cycles, every counter before the soak, after the
# first and after the last cycle with the difference last minus first (and its min and max over
# all cycles), and the median times of the first ten cycles against the last ten.
# Reading the numbers: the counters are the whole machine's, so other work on it (other labs,
# builds, tests) moves them; a leak shows as a steady climb over many cycles, not as one step.
# The load average is printed at start and end. Labs: "soakns" (netns) and "soakdk" (docker),
# the built-in topology under those names, isolated (no uplink). The script refuses to start
# when either is up, and a trap takes down whatever it brought up, whatever way it exits.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../target/release/tcplab}
CYCLES_NETNS=${CYCLES_NETNS:-200}
CYCLES_DOCKER=${CYCLES_DOCKER:-50}
SETTLE=${SETTLE:-0}

NS_LAB=soakns
DK_LAB=soakdk
PINGS=72 # the ping matrix of the course lab: 9 nodes, each pinging the 8 others

die() { echo "soak.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces): run it with sudo"
[[ $CYCLES_NETNS =~ ^[0-9]+$ ]] || die "CYCLES_NETNS must be a whole number"
[[ $CYCLES_DOCKER =~ ^[0-9]+$ ]] || die "CYCLES_DOCKER must be a whole number"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SETTLE must be a number of seconds"
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
[ -x "$BIN" ] || die "no tcplab binary at $BIN: run \`cargo build --release\` first, or pass its path"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
COMM=$(basename "$BIN" | cut -c1-15) # the kernel's name of its processes

# ---------------------------------------------------------------- tools (installed only if missing)
apt_updated=0
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    say "installing $2 (for $1)"
    if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || die "cannot install $2"
}
need jq jq
need ip iproute2
need iptables-save iptables
need pgrep procps

# ---------------------------------------------------------------- clock
# stamp VAR: the time in microseconds into VAR, with no process of its own (bash 5's $EPOCHREALTIME).
if [ -n "${EPOCHREALTIME:-}" ]; then
    stamp() { local t=${EPOCHREALTIME/[.,]/}; printf -v "$1" '%d' $((10#$t)); }
    CLOCK="bash \$EPOCHREALTIME"
else
    stamp() { printf -v "$1" '%d' $(($(date +%s%N) / 1000)); }
    CLOCK="date +%s%N"
fi
ms() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); } # microseconds -> ms, one decimal

# ---------------------------------------------------------------- what can run
have_docker=0; docker info >/dev/null 2>&1 && have_docker=1
have_ovs=0; ovs-vsctl --timeout=2 show >/dev/null 2>&1 && have_ovs=1
have_lsns=0; command -v lsns >/dev/null 2>&1 && have_lsns=1
SKIP_docker=""
[ "$have_docker" = 1 ] || SKIP_docker="no Docker engine answers (scripts/setup-host.sh starts one)"
[ -z "$SKIP_docker" ] && [ "$have_ovs" = 0 ] && SKIP_docker="Open vSwitch is not running (scripts/setup-host.sh starts it)"

lab_is_up() { "$BIN" --lab "$1" status >/dev/null 2>&1; }
lab_is_up "$NS_LAB" && die "lab $NS_LAB is up already (a leftover?): \`$BIN --lab $NS_LAB down\` removes it"
lab_is_up "$DK_LAB" && die "lab $DK_LAB is up already (a leftover?): \`$BIN --lab $DK_LAB down\` removes it"

TMP=$(mktemp -d /tmp/tcplab-soak.XXXXXX) || die "mktemp failed"
cleanup() {
    trap - EXIT INT TERM
    local lab
    for lab in "$NS_LAB" "$DK_LAB"; do
        lab_is_up "$lab" && { "$BIN" -q --lab "$lab" down >/dev/null 2>&1 || echo "soak.sh: cleanup: down of $lab failed" >&2; }
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "soak.sh: interrupted" >&2; exit 130' INT TERM

# ---------------------------------------------------------------- counters
# counters LAB: the machine's counters, space-separated, in the order of COUNTERS.
COUNTERS=(files memMiB netns lsns links ipt ovsIf ovsPt ovsBr tcplab wrk zomb ctr left)
ovs_rows() { # ovs_rows TABLE
    if [ "$have_ovs" = 1 ]; then
        ovs-vsctl --timeout=5 --bare --columns=_uuid list "$1" 2>/dev/null | grep -c .
    else
        echo -
    fi
}
counters() {
    local lab=$1 files mem netns lsns links ipt tl wrk zomb ctr left
    read -r files _ </proc/sys/fs/file-nr
    mem=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
    netns=$(find /run/netns -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    if [ "$have_lsns" = 1 ]; then lsns=$(lsns -n -t net 2>/dev/null | wc -l); else lsns=-; fi
    links=$(ip -o link show | wc -l)
    ipt=$(iptables-save 2>/dev/null | grep -c '^-A')
    tl=$(ps -eo comm= | awk -v b="$COMM" '$1 == "tcplab" || $1 == b' | wc -l)
    wrk=$(ps -eo comm=,args= | awk -v b="$COMM" -v lab="/$lab/" '($1 == "tcplab" || $1 == b) && $3 == "link-worker" && index($0, lab)' | wc -l)
    zomb=$(ps -eo stat= | grep -c '^Z')
    if [ "$have_docker" = 1 ]; then ctr=$(docker ps -aq 2>/dev/null | wc -l); else ctr=-; fi
    left=$(find /run/netns -mindepth 1 -maxdepth 1 \( -name "tcplab-$lab" -o -name "tcplab-$lab-*" \) 2>/dev/null | wc -l)
    [ "$have_docker" = 1 ] && left=$((left + $(docker ps -a --format '{{.Names}}' 2>/dev/null | grep -c "^tcplab-$lab-")))
    [ "$have_ovs" = 1 ] && left=$((left + $(ovs-vsctl --timeout=5 list-br 2>/dev/null | grep -c "^$lab-")))
    echo "$files $mem $netns $lsns $links $ipt $(ovs_rows Interface) $(ovs_rows Port) $(ovs_rows Bridge) $tl $wrk $zomb $ctr $left"
}

# ---------------------------------------------------------------- one cycle
ERRS=0
# tl NAME ARGS...: run tcplab quietly; on failure print its message and count it in ERRS.
tl() {
    local what=$1; shift
    "$BIN" "$@" >"$TMP/out" 2>&1 && return 0
    ERRS=$((ERRS + 1))
    say "   cycle $CYCLE: $what failed: $(grep -v '^[[:space:]]*$' "$TMP/out" | tail -n 1)"
    return 1
}

# matrix LAB: every node pings the first address of every other node; the failures into FAIL.
matrix() {
    local lab=$1 src node addr out n
    FAIL=0
    "$BIN" --lab "$lab" status --json >"$TMP/status.json" 2>"$TMP/out" || {
        ERRS=$((ERRS + 1)); FAIL=$PINGS
        say "   cycle $CYCLE: status --json failed: $(tail -n 1 "$TMP/out")"
        return
    }
    jq -r '.nodes[] | [.name, ([.interfaces[].addresses[]][0] // "" | sub("/.*"; ""))] | @tsv' \
        "$TMP/status.json" >"$TMP/addrs"
    while IFS=$'\t' read -r src _; do
        local targets=()
        while IFS=$'\t' read -r node addr; do
            [ "$node" != "$src" ] && [ -n "$addr" ] && targets+=("$addr")
        done <"$TMP/addrs"
        out=$("$BIN" --lab "$lab" exec "$src" sh -c \
            'f=0; for a in "$@"; do ping -c 1 -W 1 -q "$a" >/dev/null 2>&1 || f=$((f + 1)); done; echo "$f"' \
            sh "${targets[@]}" 2>"$TMP/out" </dev/null)
        n=$(printf '%s\n' "$out" | tail -n 1)
        if [[ $n =~ ^[0-9]+$ ]]; then
            FAIL=$((FAIL + n))
        else
            ERRS=$((ERRS + 1)); FAIL=$((FAIL + ${#targets[@]}))
            say "   cycle $CYCLE: exec $src failed: $(tail -n 1 "$TMP/out")"
        fi
    done <"$TMP/addrs"
}

# cycle SOAK LAB UP_ARGS...: one cycle; appends its row to $TMP/SOAK.rows and prints it.
cycle() {
    local soak=$1 lab=$2; shift 2
    local t0 t1 t2 t3 t4
    ERRS=0; FAIL=0
    stamp t0
    tl up --lab "$lab" "$@" -q up
    stamp t1
    matrix "$lab"
    stamp t2
    tl "link set" --lab "$lab" -q link set slip bsdi --delay 1ms
    tl "link clear" --lab "$lab" -q link clear
    stamp t3
    if ! tl down --lab "$lab" -q down && lab_is_up "$lab"; then
        tl "second down" --lab "$lab" -q down
        lab_is_up "$lab" && die "lab $lab is still up after two downs: the soak stops at cycle $CYCLE"
    fi
    stamp t4
    [ "$SETTLE" = 0 ] || sleep "$SETTLE"
    local row
    row="$CYCLE $(ms $((t1 - t0))) $(ms $((t2 - t1))) $(ms $((t3 - t2))) $(ms $((t4 - t3))) $(ms $((t4 - t0))) $FAIL $ERRS $(counters "$lab")"
    echo "$row" >>"$TMP/$soak.rows"
    row_out $row
}

# ---------------------------------------------------------------- printing
FMT='%5s %7s %7s %7s %7s %7s %4s %3s %6s %6s %5s %4s %5s %4s %5s %5s %5s %6s %3s %4s %3s %4s\n'
row_head() { printf "$FMT" cycle up_ms mat_ms link_ms down_ms cyc_ms fail err "${COUNTERS[@]}"; }
row_out() { printf "$FMT" "$@"; }

# summary SOAK TITLE: first and last ten cycles, the counters' growth, time per cycle.
summary() {
    local soak=$1 rows=$TMP/$1.rows n
    say ""
    say "== $2: summary"
    [ -s "$rows" ] || { say "   no cycle ran"; return; }
    n=$(wc -l <"$rows")
    if [ "$n" -le 20 ]; then
        say "   all $n cycles:"
        row_head
        while read -r line; do row_out $line; done <"$rows"
    else
        say "   first ten and last ten of $n cycles:"
        row_head
        while read -r line; do row_out $line; done < <(head -n 10 "$rows")
        printf '%6s\n' ...
        while read -r line; do row_out $line; done < <(tail -n 10 "$rows")
    fi
    say ""
    say "   counters: before the soak, after the first and the last cycle, last minus first, min and max over all cycles"
    printf '   %-8s %9s %9s %9s %9s %9s %9s\n' counter before first last last-first min max
    local i col
    for i in "${!COUNTERS[@]}"; do
        col=$((i + 9))
        awk -v col="$col" -v name="${COUNTERS[$i]}" -v before="$(cut -d' ' -f$((i + 1)) "$TMP/$soak.before")" '
            NR == 1 { first = $col; min = $col; max = $col }
            { last = $col; if ($col != "-") { if ($col + 0 < min + 0) min = $col; if ($col + 0 > max + 0) max = $col } }
            END {
                d = (first == "-" || last == "-") ? "-" : sprintf("%+d", last - first)
                printf "   %-8s %9s %9s %9s %9s %9s %9s\n", name, before, first, last, d, min, max }' "$rows"
    done
    say ""
    local k=10
    [ "$n" -lt 20 ] && k=$(((n + 1) / 2))
    say "   median time (ms) of the first $k cycles against the last $k:"
    printf '   %-8s %9s %9s %9s\n' phase first last last/first
    for i in 2 3 4 5 6; do
        local name
        name=$(row_head | awk -v c="$i" '{ print $c }')
        paste <(head -n "$k" "$rows" | cut -d' ' -f"$i" | sort -n) <(tail -n "$k" "$rows" | cut -d' ' -f"$i" | sort -n) |
            awk -v name="$name" '{ a[NR] = $1; b[NR] = $2 }
                END {
                    ma = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
                    mb = (NR % 2) ? b[(NR + 1) / 2] : (b[NR / 2] + b[NR / 2 + 1]) / 2
                    printf "   %-8s %9.1f %9.1f %9s\n", name, ma, mb, (ma > 0 ? sprintf("%.2fx", mb / ma) : "-") }'
    done
    awk -v pings="$PINGS" '{ f += $7; e += $8 } END { printf "   ping failures: %d of %d pings; failed tcplab commands: %d\n", f, NR * pings, e }' "$rows"
}

# soak SOAK CYCLES LAB TITLE UP_ARGS...
soak() {
    local soak=$1 cycles=$2 lab=$3 title=$4; shift 4
    say ""
    say "== $title: $cycles cycles, lab $lab"
    counters "$lab" >"$TMP/$soak.before"
    say "   counters before the soak: $(paste -d= <(printf '%s\n' "${COUNTERS[@]}") <(tr ' ' '\n' <"$TMP/$soak.before") | tr '\n' ' ' | sed 's/ $//')"
    : >"$TMP/$soak.rows"
    row_head
    for ((CYCLE = 1; CYCLE <= cycles; CYCLE++)); do
        cycle "$soak" "$lab" "$@"
    done
}

# ---------------------------------------------------------------- run
say "tcplab soak: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "binary: $BIN ($("$BIN" --version 2>/dev/null), git $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "machine: $(uname -sr), $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "method: whole-process wall clock by $CLOCK; counters read after each down (SETTLE=${SETTLE}s after it)"

SOAKS=()
if [ "$CYCLES_NETNS" -gt 0 ]; then
    SOAKS+=(netns)
    soak netns "$CYCLES_NETNS" "$NS_LAB" "netns runtime, course lab with --switch linux (Linux bridges)" \
        --runtime netns --switch linux
fi
if [ "$CYCLES_DOCKER" -gt 0 ]; then
    if [ -n "$SKIP_docker" ]; then
        say ""
        say "== docker runtime: skipped: $SKIP_docker"
    else
        "$BIN" -q image build >"$TMP/out" 2>&1 || die "tcplab image build failed: $(tail -n 1 "$TMP/out")"
        SOAKS+=(docker)
        soak docker "$CYCLES_DOCKER" "$DK_LAB" "docker runtime, course lab as it is (Open vSwitch LANs)" \
            --runtime docker
    fi
fi

for s in "${SOAKS[@]}"; do
    case $s in
        netns) summary netns "netns runtime, lab $NS_LAB" ;;
        docker) summary docker "docker runtime, lab $DK_LAB" ;;
    esac
done
say ""
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (counters are the machine's: other work on it moves them)"
