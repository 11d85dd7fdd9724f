#!/usr/bin/env bash
# benches/updown.sh: how long `tcplab up` and `tcplab down` take, how many processes and threads
# they make and how much memory `up` needs, for the built-in course lab (as it is: Open vSwitch
# LANs, skipped when OVS is not running; and with `--switch linux`) and for a generated 200-node
# lab, next to a plain `ip` script building the course lab (benches/reference_ip_script.sh).
# A benchmark: it prints numbers and asserts nothing about them. Needs root; about a minute.
#
# usage: sudo benches/updown.sh [TCPLAB_BINARY]        (default: the repository's target/release/tcplab)
#   build first: cargo build --release
# environment:
#   RUNS=5      timed up/down pairs per scenario (after one warm-up pair)
#   SETTLE=1    seconds to wait after each down (see below)
#
# How it measures:
#   - wall clock of the whole process (fork+exec included), bash's $EPOCHREALTIME (microseconds,
#     no process of its own) read just before and after the command; median, min and max of RUNS;
#   - `down` returns before the kernel has freed the namespaces (cleanup_net runs later in a
#     kworker: about 0.1 s of CPU for 200 namespaces, over within about half a second here);
#     SETTLE seconds after each down keep that deferred work out of the next `up`'s time;
#   - processes and threads: one extra up/down pair under
#     `strace -f -ff -qq -e trace=execve,fork,vfork,clone,clone3`; a successful clone/clone3 with
#     CLONE_THREAD is a thread, any other successful fork/vfork/clone/clone3 is a process; execve
#     calls are counted too; the traced command itself (tcplab, or bash for the reference) is not;
#   - peak memory: one extra up under GNU time (`/usr/bin/time`, %M = max RSS; for the reference
#     script it is the largest single process, bash or one `ip`);
#   - phases: one extra `up` without -q, stderr to a file, so tcplab prints one line per phase.
# Reading the numbers: other work on the machine (builds, tests) moves wall-clock times a lot, so
# the load average is printed at start and end. On this project's machines / and /run are one
# ext4 without a journal, whose inode allocator skips inodes deleted in the last 30 s to 5 min:
# the files and directories `up` creates (/run/netns/<ns>, /etc/netns/<ns>/hosts) get slower
# to create the more up/down cycles ran just before; the timed pairs include that effect.
# Runtime: netns (plain namespaces), given explicitly (tcplab's default is docker when a Docker
# engine answers). Labs: the course lab runs as lab "benchtcpip" (the built-in topology under
# another name, so a `tcpip` lab of someone else is never touched), the generated one as
# "bench200", the reference script's namespaces are "tlref-*". All are isolated: no uplink is
# ever given. A trap takes down whatever this script brought up, whatever way it exits.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../target/release/tcplab}
RUNS=${RUNS:-5}
SETTLE=${SETTLE:-1}

COURSE_LAB=benchtcpip
GEN_LAB=bench200
GEN_LANS=10
GEN_PER_LAN=20
REF_PREFIX=tlref
# Mininet is not installable here. Its in-process time to build this topology, as reported for
# the course lab: 0.31 s (not measured here).
MININET_UP_MS=310
MININET_SOURCE="reported for the course lab (Mininet, in-process; not measured here)"
# The course's own script, adapted, measured on a machine of this kind (/work/shared/PLATFORM.md).
COURSE_SCRIPT_NOTE="the course's own script: about 14 s and about 277 processes (/work/shared/PLATFORM.md, not re-measured)"

die() { echo "updown.sh: $*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "needs root (it creates network namespaces): run it with sudo"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[[ $SETTLE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SETTLE must be a number of seconds"
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
need strace strace
need /usr/bin/time time
need ip iproute2
need ping iputils-ping

# ---------------------------------------------------------------- clock and statistics
# stamp VAR: the time in microseconds into VAR, with no process of its own (bash 5's $EPOCHREALTIME).
if [ -n "${EPOCHREALTIME:-}" ]; then
    stamp() { local t=${EPOCHREALTIME/[.,]/}; printf -v "$1" '%d' $((10#$t)); }
    CLOCK="bash \$EPOCHREALTIME (us)"
else
    stamp() { printf -v "$1" '%d' $(($(date +%s%N) / 1000)); }
    CLOCK="date +%s%N"
fi

# stats FILE -> "median min max" in ms (one value in us per line)
stats() {
    sort -n "$1" | awk '{v[NR] = $1} END {
        if (NR == 0) { print "- - -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f %.1f %.1f\n", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}

# ---------------------------------------------------------------- the scenarios
TMP=$(mktemp -d /tmp/tcplab-updown.XXXXXX) || die "mktemp failed"
GEN_TOPO=$TMP/$GEN_LAB.toml
"$HERE/gen_topology.sh" "$GEN_LAB" "$GEN_LANS" "$GEN_PER_LAN" >"$GEN_TOPO" || die "generating the topology failed"
"$BIN" --runtime netns --topology "$GEN_TOPO" up --dry-run >/dev/null 2>"$TMP/err" || die "the generated topology is invalid: $(cat "$TMP/err")"

# Commands as arrays, so that timing, strace and GNU time run exactly the same thing.
# --runtime netns always: the default is docker whenever a Docker engine answers.
# course: the built-in topology as it is (its LANs are kind = "ovs", as in the course: Open vSwitch
# bridges, which need a running ovsdb-server/ovs-vswitchd); courselx: the same with
# `--switch linux` (Linux bridges in a switch namespace), what the reference script builds.
UP_course=("$BIN" -q --runtime netns --lab "$COURSE_LAB" up)
UP_courselx=("$BIN" -q --runtime netns --switch linux --lab "$COURSE_LAB" up)
UP_gen=("$BIN" -q --runtime netns --topology "$GEN_TOPO" up)
UP_ref=(bash "$HERE/reference_ip_script.sh" up "$REF_PREFIX")
DOWN_course=("$BIN" -q --lab "$COURSE_LAB" down)
DOWN_courselx=("${DOWN_course[@]}")
DOWN_gen=("$BIN" -q --lab "$GEN_LAB" down)
DOWN_ref=(bash "$HERE/reference_ip_script.sh" down "$REF_PREFIX")
# Sanity check run once after the warm-up up: a ping across the whole lab.
CHECK_course=("$BIN" --lab "$COURSE_LAB" exec slip ping -c 1 -W 2 -q 140.252.1.92)
CHECK_courselx=("${CHECK_course[@]}")
CHECK_gen=("$BIN" --lab "$GEN_LAB" exec l0h1 ping -c 1 -W 2 -q "10.10.$((GEN_LANS - 1)).$GEN_PER_LAN")
CHECK_ref=(bash "$HERE/reference_ip_script.sh" check "$REF_PREFIX")
# One more up without -q: tcplab prints its phases (stderr is a file, not a terminal).
PHASES_course=("$BIN" --runtime netns --lab "$COURSE_LAB" up)
PHASES_courselx=("$BIN" --runtime netns --switch linux --lab "$COURSE_LAB" up)
PHASES_gen=("$BIN" --runtime netns --topology "$GEN_TOPO" up)

SCENARIOS=(course courselx gen ref)
declare -A NAME NODES TITLE
NAME[course]="tcplab, course lab (OVS)";    NODES[course]=9
NAME[courselx]="tcplab, course lab (linux)"; NODES[courselx]=9
NAME[gen]="tcplab, $GEN_LAB";               NODES[gen]=$((GEN_LANS * GEN_PER_LAN))
NAME[ref]="ip script, course lab (linux)";  NODES[ref]=9
TITLE[course]="course lab: built-in topology as lab $COURSE_LAB, 9 nodes, netns runtime, isolated, its LANs Open vSwitch bridges (kind = \"ovs\")"
TITLE[courselx]="course lab with --switch linux: the same, LANs Linux bridges in a switch namespace (what the reference script builds)"
TITLE[gen]="generated lab $GEN_LAB: ${NODES[gen]} nodes, netns runtime, isolated, Linux bridges"
TITLE[ref]="reference: benches/reference_ip_script.sh, the course lab by plain ip commands (Linux bridges, namespaces $REF_PREFIX-*)"

# The built-in topology's OVS LANs need Open vSwitch running; this script does not start it.
SKIP_course=""
if "$BIN" --runtime netns --lab "$COURSE_LAB" up --dry-run 2>/dev/null | grep -q '^bridge .*(ovs,'; then
    [ -S /var/run/openvswitch/db.sock ] || SKIP_course="Open vSwitch is not running (no /var/run/openvswitch/db.sock)"
else
    NAME[course]="tcplab, course lab"
fi

lab_is_up() { "$BIN" --lab "$1" status >/dev/null 2>&1; }
ref_is_up() { local n; for n in sw aix solaris gemini gateway netb sun svr4 bsdi slip; do [ -e "/run/netns/$REF_PREFIX-$n" ] && return 0; done; return 1; }

# Refuse to start over something that exists already: the trap below removes only what is ours.
lab_is_up "$COURSE_LAB" && die "lab $COURSE_LAB is up already (a leftover?): \`$BIN --lab $COURSE_LAB down\` removes it"
lab_is_up "$GEN_LAB" && die "lab $GEN_LAB is up already (a leftover?): \`$BIN --lab $GEN_LAB down\` removes it"
ref_is_up && die "namespaces $REF_PREFIX-* exist already (a leftover?): \`$HERE/reference_ip_script.sh down\` removes them"

cleanup() {
    trap - EXIT INT TERM
    lab_is_up "$COURSE_LAB" && { "${DOWN_course[@]}" || echo "updown.sh: cleanup: down of $COURSE_LAB failed" >&2; }
    lab_is_up "$GEN_LAB" && { "${DOWN_gen[@]}" || echo "updown.sh: cleanup: down of $GEN_LAB failed" >&2; }
    ref_is_up && { "${DOWN_ref[@]}" || echo "updown.sh: cleanup: reference down failed" >&2; }
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "updown.sh: interrupted" >&2; exit 130' INT TERM

# run NAME ARRAYNAME: run a command quietly; on failure print its output and stop.
run() {
    local -n cmd=$2
    "${cmd[@]}" >"$TMP/out" 2>&1 || die "$1 failed: ${cmd[*]}: $(tail -n 5 "$TMP/out")"
}
settle() { sleep "$SETTLE"; }

# time_pairs S: warm-up pair (with the sanity ping), then RUNS timed pairs.
time_pairs() {
    local s=$1 i t0 t1 t2 t3
    run "$s warm-up up" "UP_$s"
    run "$s sanity ping" "CHECK_$s"
    run "$s warm-up down" "DOWN_$s"
    settle
    : >"$TMP/$s.up"; : >"$TMP/$s.down"
    local -n up=UP_$s down=DOWN_$s
    for ((i = 0; i < RUNS; i++)); do
        stamp t0; "${up[@]}" >"$TMP/out" 2>&1; local rc=$?; stamp t1
        [ $rc = 0 ] || die "$s up failed: $(tail -n 5 "$TMP/out")"
        stamp t2; "${down[@]}" >"$TMP/out" 2>&1; rc=$?; stamp t3
        [ $rc = 0 ] || die "$s down failed: $(tail -n 5 "$TMP/out")"
        echo $((t1 - t0)) >>"$TMP/$s.up"
        echo $((t3 - t2)) >>"$TMP/$s.down"
        settle
    done
}

declare -A R # results: R[<scenario>.<key>]

# count_tasks S KIND ARRAYNAME: processes, threads and execve calls made by the command (not
# itself) into R[S.KINDp], R[S.KINDt], R[S.KINDe]
count_tasks() {
    local s=$1 kind=$2 dir=$TMP/strace-$1-$2
    local -n cmd=$3
    mkdir -p "$dir"
    strace -f -ff -qq -e trace=execve,fork,vfork,clone,clone3 -o "$dir/t" "${cmd[@]}" >"$TMP/out" 2>&1 \
        || die "$s $kind under strace failed: $(tail -n 5 "$TMP/out")"
    cat "$dir"/t.* | awk '
        /^(clone3?|fork|vfork)\(/ && / = [1-9][0-9]*$/ { if (/CLONE_THREAD/) t++; else p++ }
        /^execve\(/ && / = 0$/ { e++ }
        END { printf "%d %d %d\n", p, t, (e > 0 ? e - 1 : 0) }' >"$TMP/count"
    read -r "R[$s.${kind}p]" "R[$s.${kind}t]" "R[$s.${kind}e]" <"$TMP/count"
}

# max_rss S KIND ARRAYNAME: the command under GNU time into R[S.KINDrss] (KiB), R[S.KINDusr],
# R[S.KINDsys] (CPU seconds)
max_rss() {
    local s=$1 kind=$2
    local -n cmd=$3
    /usr/bin/time -f '%M %U %S' -o "$TMP/time" "${cmd[@]}" >"$TMP/out" 2>&1 \
        || die "$s $kind under time failed: $(tail -n 5 "$TMP/out")"
    read -r "R[$s.${kind}rss]" "R[$s.${kind}usr]" "R[$s.${kind}sys]" < <(tail -n 1 "$TMP/time")
}


measure() { # measure S
    local s=$1
    say ""
    say "== ${TITLE[$s]}"
    time_pairs "$s"
    read -r "R[$s.upmed]" "R[$s.upmin]" "R[$s.upmax]" < <(stats "$TMP/$s.up")
    read -r "R[$s.dnmed]" "R[$s.dnmin]" "R[$s.dnmax]" < <(stats "$TMP/$s.down")
    say "   sanity ping across the lab: ok"
    say "   up   ms (x$RUNS): $(tr '\n' ' ' < <(awk '{printf "%.1f\n", $1 / 1000}' "$TMP/$s.up"))-> median ${R[$s.upmed]} (min ${R[$s.upmin]}, max ${R[$s.upmax]})"
    say "   down ms (x$RUNS): $(tr '\n' ' ' < <(awk '{printf "%.1f\n", $1 / 1000}' "$TMP/$s.down"))-> median ${R[$s.dnmed]} (min ${R[$s.dnmin]}, max ${R[$s.dnmax]})"

    if [ "$s" != ref ]; then
        local -n ph=PHASES_$s
        "${ph[@]}" >/dev/null 2>"$TMP/phases" || die "$s up (phases) failed: $(tail -n 5 "$TMP/phases")"
        say "   phases of one more up (tcplab's own timer):"
        sed 's/^/     /' "$TMP/phases"
        run "$s down" "DOWN_$s"
        settle
    fi

    max_rss "$s" up "UP_$s"
    max_rss "$s" down "DOWN_$s"
    settle
    say "   up under GNU time: max RSS ${R[$s.uprss]} KiB, CPU user ${R[$s.upusr]} s + sys ${R[$s.upsys]} s; down: max RSS ${R[$s.downrss]} KiB"

    count_tasks "$s" up "UP_$s"
    count_tasks "$s" down "DOWN_$s"
    settle
    say "   up under strace: ${R[$s.upp]} processes (${R[$s.upe]} execve), ${R[$s.upt]} threads"
    say "   down under strace: ${R[$s.downp]} processes (${R[$s.downe]} execve), ${R[$s.downt]} threads"
}

# ---------------------------------------------------------------- run
say "tcplab up/down benchmark: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "binary: $BIN ($("$BIN" --version 2>/dev/null), git $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "machine: $(uname -sr), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "method: whole-process wall clock by $CLOCK, $RUNS timed up/down pairs after 1 warm-up pair, ${SETTLE}s pause after each down"
say "generated topology: $GEN_LANS LANs (/24, 10.10.<k>.0/24) x $GEN_PER_LAN nodes = $((GEN_LANS * GEN_PER_LAN)) nodes:"
say "  per LAN 1 router + $((GEN_PER_LAN - 1)) hosts (default route via the router) on a Linux bridge;"
say "  routers chained r0-r1-...-r$((GEN_LANS - 1)) by $((GEN_LANS - 1)) /30 point-to-point lines, each with $((GEN_LANS - 1)) static routes"
say "  (made by benches/gen_topology.sh; sanity ping l0h1 -> 10.10.$((GEN_LANS - 1)).$GEN_PER_LAN crosses all $GEN_LANS routers)"

for s in "${SCENARIOS[@]}"; do
    skip=SKIP_$s
    if [ -n "${!skip:-}" ]; then
        say ""
        say "== ${TITLE[$s]}"
        say "   skipped: ${!skip}"
        continue
    fi
    measure "$s"
done

# ---------------------------------------------------------------- summary
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
say ""
say "== summary (ms: median of $RUNS whole-process wall-clock times; ratios: median up / the other's up)"
fmt='%-30s %5s %9s %9s %8s %6s %9s %8s %10s %10s %12s\n'
printf "$fmt" scenario nodes "up ms" "down ms" "up proc" "up thr" "down proc" "down thr" "up maxRSS" "up/Mininet" "up/ip-script"
for s in "${SCENARIOS[@]}"; do
    [ -n "${R[$s.upmed]:-}" ] || { printf "$fmt" "${NAME[$s]}" "${NODES[$s]}" skipped - - - - - - - -; continue; }
    mark=""; [ "$s" = gen ] && mark="*"
    printf "$fmt" "${NAME[$s]}" "${NODES[$s]}" "${R[$s.upmed]}" "${R[$s.dnmed]}" "${R[$s.upp]}" "${R[$s.upt]}" \
        "${R[$s.downp]}" "${R[$s.downt]}" "$(mib "${R[$s.uprss]}")" \
        "$(ratio "${R[$s.upmed]}" "$MININET_UP_MS")$mark" "$(ratio "${R[$s.upmed]}" "${R[ref.upmed]:-}")$mark"
done
printf "$fmt" "Mininet, course lab (constant)" 9 "$MININET_UP_MS" - - - - - - "1.00x" "$(ratio "$MININET_UP_MS" "${R[ref.upmed]:-}")"
for s in "${SCENARIOS[@]}"; do
    [ -n "${R[$s.upmed]:-}" ] || continue
    say "  ${NAME[$s]}: up min-max ${R[$s.upmin]}-${R[$s.upmax]} ms, down min-max ${R[$s.dnmin]}-${R[$s.dnmax]} ms"
done
say "  up proc / down proc = processes spawned (fork/vfork/clone without CLONE_THREAD), the command itself not counted;"
say "  thr = threads (clone/clone3 with CLONE_THREAD); maxRSS = GNU time %M (ip script: its largest single process)"
say "  * $GEN_LAB (${NODES[gen]} nodes) against 9-node course-lab references: not like for like"
say "  Mininet: ${MININET_UP_MS} ms, source: $MININET_SOURCE"
say "  also for reference: $COURSE_SCRIPT_NOTE"
say "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine moves wall-clock times: compare runs made under the same load)"
