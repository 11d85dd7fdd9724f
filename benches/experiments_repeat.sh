#!/usr/bin/env bash
# benches/experiments_repeat.sh: how steady the book's experiments are. Each experiment runs RUNS
# times in a row (default 20) on one course lab per runtime, green, and each of its broken labs
# RUNS_BROKEN times (default 3), while LOAD busy loops (default: one per CPU) keep every core
# busy. Prints, per experiment: green runs / RUNS, red-as-expected runs per broken lab, and the
# median, min and max seconds of a green run; then the wall time of `experiment run --all` on
# the same lab. A benchmark: it prints numbers, it asserts nothing. Needs root.
#
# usage: sudo benches/experiments_repeat.sh [NAME...]     (default: every built-in experiment)
# environment:
#   TCPLAB=target/release/tcplab  the binary      RUNTIMES="netns docker"  the runtimes
#   RUNS=20  RUNS_BROKEN=3  LOAD=$(nproc)          LAB=brep  the labs' names (LAB<r><k>: brepn1, brepd1...)
#   FRESH=""    experiments (space-separated) run on a lab brought up anew before each run, for
#               those the kernel remembers across runs (icmp-redirect: a router sends one host
#               at most 9 redirects until 20 s pass without one)
#   PARALLEL=1  labs per runtime, each running its share of the experiments at the same time
#               (the runtimes run at the same time too); RUN_ALL=1 also times `run --all`
# Takes long: about RUNS x (the experiment's own time) per experiment and runtime, / PARALLEL.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${TCPLAB:-target/release/tcplab}
RUNS=${RUNS:-20}
RUNS_BROKEN=${RUNS_BROKEN:-3}
LOAD=${LOAD:-$(nproc)}
LAB=${LAB:-brep}
RUNTIMES=${RUNTIMES:-netns docker}
[ "$(id -u)" = 0 ] || { echo "experiments_repeat: needs root" >&2; exit 2; }
[ -x "$BIN" ] || { echo "experiments_repeat: no $BIN: cargo build --release, or TCPLAB=..." >&2; exit 2; }
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <("$BIN" experiment list | awk '{print $1}')
out=$(mktemp -d /tmp/tcplab-bench-rep.XXXXXX)
pids=()
stop_load() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; pids=(); }
cleanup() {
  stop_load
  for rt in $RUNTIMES; do
    for k in $(seq "${PARALLEL:-1}"); do "$BIN" --lab "$LAB${rt:0:1}$k" -q down >/dev/null 2>&1; done
  done
  rm -rf "$out"
}
trap cleanup EXIT
for _ in $(seq "$LOAD"); do (while :; do :; done) & pids+=($!); done
echo "load: $LOAD busy loops on $(nproc) CPUs; $RUNS green runs, $RUNS_BROKEN per broken lab"
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "-"; exit}; m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f", m, a[1], a[NR]}'; }
PARALLEL=${PARALLEL:-1}
RUN_ALL=${RUN_ALL:-0}
# bench_lab RUNTIME LAB NAME...: every named experiment on one lab, a line each.
bench_lab() {
  local rt=$1 lab=$2; shift 2
  "$BIN" --lab "$lab" --runtime "$rt" -q up >/dev/null 2>&1 || { echo "$rt: lab $lab does not come up"; return; }
  for n in "$@"; do
    local ok=0 t="$out/$lab-t" red="" k b r i t0
    : > "$t"
    for i in $(seq "$RUNS"); do
      if [[ " ${FRESH:-} " == *" $n "* ]]; then
        "$BIN" --lab "$lab" -q down >/dev/null 2>&1
        "$BIN" --lab "$lab" --runtime "$rt" -q up >/dev/null 2>&1
      fi
      t0=$(date +%s.%N)
      if "$BIN" --lab "$lab" -q experiment run "$n" --out "$out/$lab-$n-$i" >"$out/$lab-last" 2>&1; then
        ok=$((ok + 1)); awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {print a - b}' >> "$t"
      else
        cp "$out/$lab-last" "$FAILED/$rt-$n-run$i.txt"
      fi
      rm -rf "$out/$lab-$n-$i"
    done
    k=$(grep -c '^\[\[broken\]\]' "experiments/$n.toml" 2>/dev/null || true)
    for b in $(seq "$k"); do
      r=0
      for i in $(seq "$RUNS_BROKEN"); do
        if "$BIN" --lab "$lab" -q experiment run "$n" --broken "$b" --out "$out/$lab-$n-b$b-$i" >"$out/$lab-last" 2>&1; then
          r=$((r + 1))
        else
          cp "$out/$lab-last" "$FAILED/$rt-$n-broken$b-run$i.txt"
        fi
        rm -rf "$out/$lab-$n-b$b-$i"
      done
      red="$red$r/$RUNS_BROKEN "
    done
    printf '%-8s %-24s %5s/%-3s %-18s %s\n' "$rt" "$n" "$ok" "$RUNS" "${red:--}" "$(median < "$t")"
  done
  if [ "$RUN_ALL" = 1 ]; then
    t0=$(date +%s.%N)
    "$BIN" --lab "$lab" -q experiment run --all --out "$out/$lab-all" >/dev/null 2>&1
    echo "$rt: experiment run --all on $lab: exit $?, $(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.1f", a - b}') s"
  fi
  "$BIN" --lab "$lab" -q down >/dev/null 2>&1
}
FAILED=${FAILED:-/tmp/tcplab-bench-rep-failures}
mkdir -p "$FAILED"
printf '%-8s %-24s %8s %-18s %s\n' runtime experiment green "red per broken lab" "seconds (median min max)"
jobs_=()
for rt in $RUNTIMES; do
  for k in $(seq "$PARALLEL"); do
    share=()
    for j in "${!names[@]}"; do
      [ $((j % PARALLEL + 1)) = "$k" ] && share+=("${names[$j]}")
    done
    bench_lab "$rt" "$LAB${rt:0:1}$k" "${share[@]}" &
    jobs_+=($!)
  done
done
wait "${jobs_[@]}"
echo "failed runs' output: $FAILED"
