#!/usr/bin/env bash
# benches/docker_updown.sh: the course lab on docker + Open vSwitch.
# A benchmark: prints numbers, asserts nothing. Needs root, a running dockerd and OVS, and
# the node image (it is built first if missing). A few minutes.
#
# usage: sudo benches/docker_updown.sh [TCPLAB_BINARY]   (default target/release/tcplab)
# environment: RUNS=5 (timed runs per measurement), IMAGE_FROM_NOTHING=1 (also time
#   `tcplab image build` from nothing: removes and rebuilds tcplab/node and tcplab/base, ~35-50 s)
#
# What it measures (medians of RUNS, whole-process wall time from bash's $EPOCHREALTIME):
#   - `tcplab --runtime docker up` and `down` of the course lab (9 containers, 2 OVS bridges);
#   - the floor, measured in the same run on the same machine: nine concurrent
#     `docker run -d --network none` of the node image, and one `docker rm -f` of the nine;
#     the ratios up/floor and down/floor;
#   - `tcplab image build` when already built (and from nothing with IMAGE_FROM_NOTHING=1);
#   - iperf3 TCP throughput bsdi -> aix through the OVS bridge (userspace datapath here),
#     5 s per run, median of 3, and for comparison the same on the netns runtime with Linux
#     bridges.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../target/release/tcplab}
RUNS=${RUNS:-5}
LAB=benchdock
IMG=tcplab/node:latest
die() { echo "docker_updown.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$BIN" ] || die "no binary at $BIN: cargo build --release"
docker info >/dev/null 2>&1 || die "no Docker engine answers: scripts/setup-host.sh starts one"
ovs-vsctl --timeout=2 show >/dev/null 2>&1 || die "Open vSwitch is not running: scripts/setup-host.sh starts it"
T() { "$BIN" --lab "$LAB" "$@"; }
cleanup() {
  T -q down >/dev/null 2>&1
  "$BIN" --lab benchns -q down >/dev/null 2>&1
  docker rm -f $(docker ps -aq --filter label=tcplab.bench=floor) >/dev/null 2>&1
}
trap cleanup EXIT
now() { echo "${EPOCHREALTIME/./}"; }           # microseconds
ms() { echo "scale=1; $1 / 1000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
command -v iperf3 >/dev/null || apt-get install -y -qq iperf3 >/dev/null

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(docker version --format 'docker {{.Server.Version}}'), $(ovs-vsctl --version | head -1)"

# Image.
if [ "${IMAGE_FROM_NOTHING:-0}" = 1 ]; then
  docker rmi -f "$IMG" tcplab/base:bookworm >/dev/null 2>&1
  t0=$(now); "$BIN" -q image build; t1=$(now)
  echo "image build from nothing: $(ms $((t1 - t0))) ms"
else
  "$BIN" -q image build
fi
built=()
for _ in $(seq "$RUNS"); do t0=$(now); "$BIN" -q image build; t1=$(now); built+=($((t1 - t0))); done
echo "image build, already built: median $(ms $(printf '%s\n' "${built[@]}" | median)) ms"

# Floor: nine concurrent docker run -d, then docker rm -f of nine.
floor_up=(); floor_down=()
for _ in $(seq "$RUNS"); do
  t0=$(now)
  for i in $(seq 9); do docker run -d --network none --label tcplab.bench=floor --name "tlfloor$i" "$IMG" >/dev/null & done
  wait
  t1=$(now)
  docker rm -f $(for i in $(seq 9); do echo "tlfloor$i"; done) >/dev/null
  t2=$(now)
  floor_up+=($((t1 - t0))); floor_down+=($((t2 - t1)))
done
fu=$(printf '%s\n' "${floor_up[@]}" | median); fd=$(printf '%s\n' "${floor_down[@]}" | median)

# tcplab up/down, docker + ovs (one warm-up pair first).
T --runtime docker -q up && T -q down
ups=(); downs=()
for _ in $(seq "$RUNS"); do
  t0=$(now); T --runtime docker -q up || die "up failed"; t1=$(now); T -q down || die "down failed"; t2=$(now)
  ups+=($((t1 - t0))); downs+=($((t2 - t1)))
  sleep 0.5
done
mu=$(printf '%s\n' "${ups[@]}" | median); md=$(printf '%s\n' "${downs[@]}" | median)

# Throughput bsdi -> aix.
iperf() {  # lab runtime-args...
  local lab=$1; shift
  "$BIN" --lab "$lab" "$@" -q up >/dev/null || die "up for iperf failed"
  "$BIN" --lab "$lab" exec aix sh -c 'iperf3 -s -D -1 >/dev/null 2>&1' ; sleep 0.5
  local r=()
  for _ in 1 2 3; do
    "$BIN" --lab "$lab" exec aix sh -c 'pkill iperf3; iperf3 -s -D -1 >/dev/null 2>&1'; sleep 0.3
    r+=("$("$BIN" --lab "$lab" exec bsdi iperf3 -c 140.252.1.92 -t 5 -J 2>/dev/null | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9,3))')")
  done
  "$BIN" --lab "$lab" -q down >/dev/null
  printf '%s\n' "${r[@]}" | median
}
tp_ovs=$(iperf "$LAB" --runtime docker)
tp_linux=$(iperf benchns --runtime netns --switch linux)

echo
printf '%-44s %12s\n' "measurement (median of $RUNS)" "value"
printf '%-44s %9s ms\n' "tcplab up, docker + ovs" "$(ms "$mu")"
printf '%-44s %9s ms\n' "tcplab down, docker + ovs" "$(ms "$md")"
printf '%-44s %9s ms\n' "floor: 9 concurrent docker run -d" "$(ms "$fu")"
printf '%-44s %9s ms\n' "floor: docker rm -f of nine" "$(ms "$fd")"
printf '%-44s %12s\n' "up / floor (target <= 1.5, aim 1.2)" "$(echo "scale=2; $mu / $fu" | bc)"
printf '%-44s %12s\n' "down / floor" "$(echo "scale=2; $md / $fd" | bc)"
printf '%-44s %8s Gb/s\n' "iperf3 bsdi -> aix, docker + ovs (netdev)" "$tp_ovs"
printf '%-44s %8s Gb/s\n' "iperf3 bsdi -> aix, netns + linux bridge" "$tp_linux"
echo "reference: the course's script took about 14 s to bring the lab up here and 0.5 s to tear it down (PLATFORM.md)"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
