#!/usr/bin/env bash
# Runs tcplab inside a QEMU guest booting Debian's own cloud kernel, where the kernel has the
# openvswitch and sch_netem modules (the kernel users run), and checks the lab there.
#
#   scripts/vm-test.sh [--kernel bookworm|trixie] [--keep] [--prepare] [SCENARIO...]
#
# Scenarios (scripts/vm/scenarios/NAME.sh, run in this order when none are named):
#   modules kernel-ovs clean-down netem-delay netem-rate-serial netem-loss experiments
#
# Everything comes from Debian's package mirror (the one the host's apt sources name) and is
# cached under .vm-cache/ in the repository (VM_CACHE to move it): QEMU and cpio unpacked from
# their packages (nothing installed), the suite's linux-image-cloud-amd64 kernel, and a minbase
# debootstrap root with the test tools, turned once into an uncompressed initramfs. Each run
# appends a small archive holding the tcplab binary (TCPLAB_BIN, else target/{release,debug}/
# tcplab under CARGO_TARGET_DIR or ./target, else built with cargo) and scripts/vm/.
#
# The guest has no network device; its console goes to console.log, its results to a second
# serial port. Output: one line per check `PASS NAME` or `FAIL NAME: why`, lines starting with
# `#` for timings, then `N passed, M failed`. Exit 0 only when every check passed.
#
# --prepare fills the cache and boots nothing.
# --keep keeps the run directory (console.log, results.log, the initramfs) and prints its path.
# Environment: VM_MEM (MiB, default 1024), VM_SMP (default 2), VM_ACCEL (tcg|kvm, default:
# kvm only where /dev/kvm is a stock KVM, tcg otherwise), VM_BOOT_TIMEOUT (s, default 120),
# VM_TIMEOUT (s, whole guest run, default 900), VM_MIRROR (default: from the host's apt sources).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
KEEP=0
PREPARE=0
SCENARIOS=()
ALL_SCENARIOS=(modules kernel-ovs clean-down netem-delay netem-rate-serial netem-loss experiments)
CACHE=${VM_CACHE:-$REPO/.vm-cache}
MEM=${VM_MEM:-1024}
SMP=${VM_SMP:-2}
BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-120}
RUN_TIMEOUT=${VM_TIMEOUT:-900}
# The root's packages (the key of the cached root: change the list and the root is rebuilt).
ROOT_PKGS=iproute2,kmod,openvswitch-switch,iputils-ping,traceroute,netcat-openbsd,net-tools,iptables,ethtool,procps,iperf3,tcpdump

log() { printf 'vm-test: %s\n' "$*" >&2; }
die() { printf 'vm-test: %s\n' "$*" >&2; exit 2; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) [ $# -ge 2 ] || die "--kernel needs bookworm or trixie"; SUITE=$2; shift 2 ;;
    --kernel=*) SUITE=${1#--kernel=}; shift ;;
    --keep) KEEP=1; shift ;;
    --prepare) PREPARE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1: see --help" ;;
    *) SCENARIOS+=("$1"); shift ;;
  esac
done
case "$SUITE" in bookworm|trixie) ;; *) die "unknown kernel suite $SUITE: use bookworm or trixie" ;; esac
[ "${#SCENARIOS[@]}" -gt 0 ] || SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
  [ -f "$REPO/scripts/vm/scenarios/$s.sh" ] ||
    die "unknown scenario $s: the scenarios are ${ALL_SCENARIOS[*]}"
done
[ "$(id -u)" = 0 ] || die "run as root (debootstrap and the cached root need it)"

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# --- Debian's mirror, as the host's apt sources name it -----------------------------------
host_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
          2>/dev/null | grep -oE '(https?)://[^ ]+/debian/?( |$)' | grep -v -- '-security' |
          head -n1 | tr -d ' ') || true
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${VM_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR%/}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# apt with its own sources and lists for SUITE (the host's apt state is left alone).
suite_apt() {
  local suite=$1; shift
  local d=$CACHE/apt-$suite
  apt-get -q -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/parts" \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::Status="$d/status" \
    -o Acquire::Languages=none -o APT::Architecture=amd64 -o Debug::NoLocking=1 \
    -o APT::Sandbox::User=root "$@"
}
suite_apt_cache() {
  local suite=$1; shift
  local d=$CACHE/apt-$suite
  apt-cache -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/parts" \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::Status="$d/status" \
    -o APT::Architecture=amd64 "$@"
}
suite_apt_init() {
  local suite=$1 d=$CACHE/apt-$1
  [ -s "$d/lists.stamp" ] && return 0
  mkdir -p "$d/parts" "$d/lists/partial" "$d/cache/archives/partial"
  : >"$d/status"
  echo "deb [signed-by=$KEYRING] $MIRROR $suite main" >"$d/sources.list"
  log "apt lists of $suite from $MIRROR"
  suite_apt "$suite" update >&2
  date -u +%FT%TZ >"$d/lists.stamp"
}

# --- QEMU and cpio, unpacked from the host suite's packages ---------------------------------
HOSTROOT=$CACHE/host-$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
QEMU=$HOSTROOT/usr/bin/qemu-system-x86_64
cpio_() {
  local c=$HOSTROOT/bin/cpio
  [ -x "$c" ] || c=$HOSTROOT/usr/bin/cpio
  "$c" "$@"
}
host_libpath() {
  local p="" d
  for d in "$HOSTROOT"/usr/lib/x86_64-linux-gnu "$HOSTROOT"/lib/x86_64-linux-gnu \
           "$HOSTROOT"/usr/lib/x86_64-linux-gnu/*/; do
    [ -d "$d" ] && p=${p:+$p:}$d
  done
  echo "$p"
}
fetch_host_tools() {
  [ -s "$HOSTROOT/.ready" ] && return 0
  local debs=$CACHE/host-debs
  mkdir -p "$debs/partial" "$HOSTROOT"
  local policy
  policy=$(apt-cache policy qemu-system-x86 2>/dev/null || true)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt-get update (the host's lists know no qemu-system-x86)"
    apt-get update -qq >&2
  fi
  log "downloading QEMU and cpio with the dependencies this host lacks"
  # --download-only resolves against what the host has installed: only the missing
  # libraries come along, and nothing is installed.
  apt-get install -y -qq --download-only --no-install-recommends \
    -o Dir::Cache::archives="$debs" qemu-system-x86 cpio >&2
  # The packages already installed are not downloaded: fetch the ones unpacked here anyway.
  (cd "$debs" && for p in qemu-system-x86 qemu-system-common qemu-system-data seabios cpio; do
     ls "$p"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p" >&2
   done)
  local f
  for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$HOSTROOT"; done
  LD_LIBRARY_PATH=$(host_libpath) "$QEMU" --version >/dev/null ||
    die "the unpacked QEMU does not run: see 'LD_LIBRARY_PATH=... $QEMU --version'"
  "$QEMU" --version 2>/dev/null | head -n1 >"$HOSTROOT/.ready" || echo qemu >"$HOSTROOT/.ready"
}

# --- the suite's cloud kernel ---------------------------------------------------------------
KDIR=$CACHE/$SUITE/kernel
fetch_kernel() {
  [ -s "$KDIR/.version" ] && return 0
  suite_apt_init "$SUITE"
  local pkg
  pkg=$(suite_apt_cache "$SUITE" depends linux-image-cloud-amd64 |
          awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$pkg" ] || die "no linux-image-*-cloud-amd64 found in $SUITE at $MIRROR"
  log "downloading $pkg"
  rm -rf "$KDIR" && mkdir -p "$KDIR/deb"
  (cd "$KDIR/deb" && suite_apt "$SUITE" download "$pkg" >&2)
  dpkg-deb -x "$KDIR"/deb/*.deb "$KDIR/x"
  local vm
  vm=$(ls "$KDIR"/x/boot/vmlinuz-* | head -n1)
  [ -f "$vm" ] || die "$pkg holds no /boot/vmlinuz-*"
  cp "$vm" "$KDIR/vmlinuz"
  basename "$vm" | sed 's/^vmlinuz-//' >"$KDIR/.version"
}

# --- the root: minbase debootstrap + the test tools + the kernel's modules, as a cpio -------
RDIR=$CACHE/$SUITE/root
BASE_CPIO=$CACHE/$SUITE/base.cpio
root_key() { echo "$ROOT_PKGS $(cat "$KDIR/.version") $MIRROR"; }
build_root() {
  if [ -s "$BASE_CPIO" ] && [ "$(cat "$CACHE/$SUITE/base.key" 2>/dev/null)" = "$(root_key)" ]; then
    return 0
  fi
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"; apt-get install -y -qq debootstrap >&2; }
  if [ "$(cat "$RDIR.key" 2>/dev/null)" != "$ROOT_PKGS $MIRROR" ]; then
    log "debootstrap --variant=minbase $SUITE (once; cached in $RDIR)"
    rm -rf "$RDIR" && mkdir -p "$RDIR"
    debootstrap --variant=minbase --include="$ROOT_PKGS" "$SUITE" "$RDIR" "$MIRROR" \
      >"$CACHE/$SUITE/debootstrap.log" 2>&1 ||
      die "debootstrap failed: see $CACHE/$SUITE/debootstrap.log"
    # Slim it: package files, lists, documentation.
    rm -rf "$RDIR"/var/cache/apt/archives/*.deb "$RDIR"/var/lib/apt/lists/* \
      "$RDIR"/usr/share/doc "$RDIR"/usr/share/man "$RDIR"/usr/share/info "$RDIR"/usr/share/locale
    echo "$ROOT_PKGS $MIRROR" >"$RDIR.key"
  fi
  local ver; ver=$(cat "$KDIR/.version")
  local mods=$KDIR/x/lib/modules/$ver
  [ -d "$mods" ] || mods=$KDIR/x/usr/lib/modules/$ver
  [ -d "$mods" ] || die "the kernel package holds no modules for $ver"
  rm -rf "$RDIR"/usr/lib/modules && mkdir -p "$RDIR/usr/lib/modules"
  cp -a "$mods" "$RDIR/usr/lib/modules/"
  # Only what a network lab can load: net, lib, crypto, arch, drivers/net (a third of the size).
  local d k=$RDIR/usr/lib/modules/$ver/kernel
  for d in "$k"/*; do
    case "${d##*/}" in net|lib|crypto|arch|drivers) ;; *) rm -rf "$d" ;; esac
  done
  for d in "$k"/drivers/*; do [ "${d##*/}" = net ] || rm -rf "$d"; done
  chroot "$RDIR" depmod -a "$ver"
  log "packing the root into $BASE_CPIO"
  (cd "$RDIR" && find . -xdev -mindepth 1 ! -path './proc/*' ! -path './sys/*' ! -path './dev/*' |
     LC_ALL=C sort | cpio_ --quiet -o -H newc -R 0:0) >"$BASE_CPIO.tmp"
  mv "$BASE_CPIO.tmp" "$BASE_CPIO"
  root_key >"$CACHE/$SUITE/base.key"
}

# --- the tcplab binary ----------------------------------------------------------------------
find_tcplab() {
  if [ -n "${TCPLAB_BIN:-}" ]; then
    [ -x "$TCPLAB_BIN" ] || die "TCPLAB_BIN=$TCPLAB_BIN is not an executable"
    echo "$TCPLAB_BIN"; return
  fi
  local t=${CARGO_TARGET_DIR:-$REPO/target} b
  for b in "$t/release/tcplab" "$t/debug/tcplab"; do
    [ -x "$b" ] && { echo "$b"; return; }
  done
  log "no tcplab binary under $t: cargo build"
  (cd "$REPO" && cargo build --locked -q >&2) || die "cargo build failed"
  echo "$t/debug/tcplab"
}

# --- the run ---------------------------------------------------------------------------------
QPID=""
RUN=""
cleanup() {
  if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
    kill "$QPID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
  fi
  if [ -n "$RUN" ] && [ -d "$RUN" ]; then
    if [ "$KEEP" = 1 ]; then log "kept $RUN"; else rm -rf "$RUN"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CACHE"
fetch_host_tools
fetch_kernel
build_root
if [ "$PREPARE" = 1 ]; then log "cache ready in $(elapsed "$T0") s: $CACHE"; exit 0; fi
TCPLAB=$(find_tcplab)
log "prepared in $(elapsed "$T0") s (kernel $(cat "$KDIR/.version"), tcplab $TCPLAB)"

RUN=$(mktemp -d "${TMPDIR:-/tmp}/tcplab-vm.XXXXXX")
mkdir -p "$RUN/overlay/usr/local/bin" "$RUN/overlay/vm"
strip -o "$RUN/overlay/usr/local/bin/tcplab" "$TCPLAB" 2>/dev/null ||
  cp "$TCPLAB" "$RUN/overlay/usr/local/bin/tcplab"
cp -r "$REPO/scripts/vm/." "$RUN/overlay/vm/"
cp "$REPO/scripts/vm/init" "$RUN/overlay/init"
chmod +x "$RUN/overlay/init"
printf '%s\n' "${SCENARIOS[@]}" >"$RUN/overlay/vm/scenarios.list"
(cd "$RUN/overlay" && find . -mindepth 1 | LC_ALL=C sort | cpio_ --quiet -o -H newc -R 0:0) \
  >"$RUN/overlay.cpio"
cat "$BASE_CPIO" "$RUN/overlay.cpio" >"$RUN/initrd.cpio"
rm -rf "$RUN/overlay" "$RUN/overlay.cpio"

# Acceleration: a paravirtual KVM (kvm_pvm) runs only kernels built for it, and a stock
# kernel stalls in its decompressor there: use software emulation then.
ACCEL=${VM_ACCEL:-}
if [ -z "$ACCEL" ]; then
  if [ -d /sys/module/kvm_pvm ] || [ ! -w /dev/kvm ]; then ACCEL=tcg; else ACCEL=kvm; fi
fi
case "$ACCEL" in
  tcg) ACCEL_ARGS=(-accel tcg,thread=multi -cpu max) ;;
  kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
  *) die "VM_ACCEL=$ACCEL: use tcg or kvm" ;;
esac

: >"$RUN/console.log"
: >"$RUN/results.log"
log "booting $SUITE's kernel ($ACCEL, ${MEM} MiB, $SMP CPUs): ${SCENARIOS[*]}"
TBOOT=$(date +%s.%N)
LD_LIBRARY_PATH=$(host_libpath) "$QEMU" -L "$HOSTROOT/usr/share/seabios" -L "$HOSTROOT/usr/share/qemu" \
  "${ACCEL_ARGS[@]}" -smp "$SMP" -m "$MEM" -nodefaults -display none -no-reboot -nic none \
  -kernel "$KDIR/vmlinuz" -initrd "$RUN/initrd.cpio" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init mitigations=off vmtest.timeout=$RUN_TIMEOUT" \
  -serial "file:$RUN/console.log" -serial "file:$RUN/results.log" \
  </dev/null >"$RUN/qemu.log" 2>&1 &
QPID=$!

# Follow the results port: print checks as they come, stop at DONE, at QEMU's exit or at
# a timeout.
printed=0 booted=0 done_=0 why=""
PASSED=0 FAILED=0
emit() {
  local line=$1
  case "$line" in
    PASS\ *) PASSED=$((PASSED + 1)); echo "$line" ;;
    FAIL\ *) FAILED=$((FAILED + 1)); echo "$line" ;;
    BOOT\ *) booted=1; echo "# boot: $(elapsed "$TBOOT") s to the guest's init (${line#BOOT })" ;;
    TIME\ *) echo "# ${line#TIME }" ;;
    INFO\ *) echo "# ${line#INFO }" ;;
    DONE*) done_=1 ;;
  esac
}
while :; do
  n=$(wc -l <"$RUN/results.log")
  if [ "$n" -gt "$printed" ]; then
    while IFS= read -r line; do emit "${line%$'\r'}"; done \
      < <(sed -n "$((printed + 1)),${n}p" "$RUN/results.log")
    printed=$n
  fi
  [ "$done_" = 1 ] && break
  if ! kill -0 "$QPID" 2>/dev/null; then why="QEMU exited before the guest said it was done"; break; fi
  t=$(elapsed "$TBOOT")
  if [ "$booted" = 0 ] && awk -v t="$t" -v m="$BOOT_TIMEOUT" 'BEGIN { exit !(t > m) }'; then
    why="boot"; break
  fi
  if awk -v t="$t" -v m="$RUN_TIMEOUT" 'BEGIN { exit !(t > m + 30) }'; then
    why="the guest did not finish within ${RUN_TIMEOUT} s"; break
  fi
  sleep 0.5
done

if [ "$done_" = 1 ]; then
  # The guest powers itself off: give it a moment before the trap kills QEMU.
  for _ in $(seq 1 20); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.25; done
elif [ "$why" = boot ]; then
  last=$(tr -d '\r' <"$RUN/console.log" | grep -v '^\s*$' | tail -n1 | cut -c1-120 || true)
  echo "FAIL boot: the guest's init did not start within ${BOOT_TIMEOUT} s (accel $ACCEL; last console line: ${last:-none})"
  FAILED=$((FAILED + 1))
elif [ "$booted" = 0 ]; then
  last=$( (cat "$RUN/qemu.log"; tr -d '\r' <"$RUN/console.log") | grep -v '^\s*$' | tail -n1 | cut -c1-160 || true)
  echo "FAIL boot: $why (${last:-no output})"
  FAILED=$((FAILED + 1))
else
  echo "FAIL vm: $why (see console.log with --keep)"
  FAILED=$((FAILED + 1))
fi
echo "# guest: $SUITE kernel $(cat "$KDIR/.version"), ${MEM} MiB, $SMP CPUs, $ACCEL; run $(elapsed "$TBOOT") s, total $(elapsed "$T0") s"
if [ "$FAILED" -gt 0 ] && [ "$KEEP" = 0 ]; then
  echo "# the guest's console, last lines:"
  tr -d '\r' <"$RUN/console.log" | tail -n 25 | sed 's/^/#   /'
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
