# kernel-ovs: the course lab with OVS LANs on the kernel datapath, as Debian's openvswitch-switch
# runs it (its ovs-ctl loads the openvswitch module, then starts the daemons).
. /vm/lib.sh

modprobe openvswitch || { fail kernel-ovs "modprobe openvswitch failed"; exit 0; }
ovs_start || { fail kernel-ovs "could not start Open vSwitch"; exit 0; }
t=$(date +%s.%N)
if ! lab_up 2>/tmp/kovs-up.err; then
  cat /tmp/kovs-up.err >&2
  fail kernel-ovs/up "'tcplab --runtime netns up' failed: $(tail -n1 /tmp/kovs-up.err)"
  exit 0
fi
pass kernel-ovs/up
info "kernel-ovs: up took $(since "$t") s"

# The datapath tcplab chose: every lab bridge on the kernel (system) datapath, none netdev,
# and the kernel's datapath lists each bridge.
bridges=$(ovs-vsctl list-br)
dpctl=$(ovs-dpctl show 2>&1)
bad=""
for br in $bridges; do
  dt=$(ovs-vsctl get bridge "$br" datapath_type | tr -d '"')
  case "$dt" in ""|system) ;; *) bad="$bad $br=$dt" ;; esac
  grep -qE "port [0-9]+: $br \(internal\)" <<<"$dpctl" || bad="$bad $br-not-in-ovs-dpctl"
done
if [ -z "$bridges" ]; then
  fail kernel-ovs/datapath "no OVS bridge after up"
elif [ -n "$bad" ]; then
  fail kernel-ovs/datapath "not on the kernel datapath:$bad"
else
  pass kernel-ovs/datapath
fi
info "kernel-ovs: bridges [$(echo $bridges)], ovs-dpctl: $(grep -c 'port ' <<<"$dpctl") ports in $(grep -c '@' <<<"$dpctl") datapath(s)"

# Transmit checksum offload: turned off only for the userspace datapath; on the kernel
# datapath it stays as the kernel set it (on, for a veth).
off=""
for n in aix bsdi sun; do
  tx=$(tcplab exec "$n" ethtool -k eth1 2>/dev/null | sed -n 's/^tx-checksumming: \([a-z]*\).*/\1/p')
  [ "$tx" = on ] || off="$off $n:eth1=$tx"
done
if [ -z "$off" ]; then pass kernel-ovs/tx-offload
else fail kernel-ovs/tx-offload "tx checksum offload changed on the kernel datapath:$off"; fi

# Full ping matrix between the nine hosts, by name (names resolve inside tcplab exec).
t=$(date +%s.%N)
: >/tmp/kovs-matrix
for a in $LAB_NODES; do
  # One exec per source (72 execs cost ~20 s more under emulation); names resolve inside it.
  tcplab exec "$a" sh -c 'for b in '"$LAB_NODES"'; do
      [ "$b" = "$(hostname)" ] && continue
      ping -c 1 -W 3 "$b" >/dev/null 2>&1 || echo "$(hostname)->$b"
    done' >>/tmp/kovs-matrix 2>&1 &
done
wait
if [ -s /tmp/kovs-matrix ]; then
  fail kernel-ovs/ping-matrix "no reply: $(tr '\n' ' ' </tmp/kovs-matrix)"
else
  pass kernel-ovs/ping-matrix
fi
info "kernel-ovs: ping matrix (72 pairs) took $(since "$t") s"

# traceroute -n slip -> aix: the book's hops.
want="140.252.13.66 140.252.13.33 140.252.1.183 140.252.1.92"
got=$(tcplab exec slip traceroute -n -q 1 -w 3 aix 2>&1 | awk 'NR > 1 { print $2 }' | tr '\n' ' ')
got=${got% }
if [ "$got" = "$want" ]; then pass kernel-ovs/traceroute
else fail kernel-ovs/traceroute "hops [$got], want [$want]"; fi

# Proxy ARP: aix holds 140.252.1.29 (sun) at netb's eth1 MAC.
mac=$(tcplab exec netb cat /sys/class/net/eth1/address 2>/dev/null)
tcplab exec aix ping -c 1 -W 3 140.252.1.29 >/dev/null 2>&1
neigh=$(tcplab exec aix ip neigh show 140.252.1.29 2>&1)
if [ -n "$mac" ] && grep -q "lladdr $mac" <<<"$neigh"; then pass kernel-ovs/proxy-arp
else fail kernel-ovs/proxy-arp "aix: '$neigh', netb eth1 MAC '$mac'"; fi

# 2 MB over TCP, aix -> slip, through the top LAN, netb, sun, the bottom LAN, bsdi, the SLIP line.
t=$(date +%s.%N)
head -c 2097152 /dev/urandom >/tmp/kovs-src
rm -f /tmp/kovs-dst
tcplab exec slip sh -c 'nc -l -p 7001 >/tmp/kovs-dst' &
srv=$!
for i in $(seq 1 50); do
  tcplab exec slip sh -c 'ss -ltn | grep -q ":7001 "' && break
  sleep 0.1
done
tcplab exec aix sh -c 'nc -N -w 10 slip 7001 </tmp/kovs-src' >&2
rc=$?
( sleep 20; kill "$srv" 2>/dev/null ) &
wait "$srv"
a=$(sha256sum </tmp/kovs-src | cut -d' ' -f1)
b=$(sha256sum </tmp/kovs-dst 2>/dev/null | cut -d' ' -f1)
if [ "$rc" = 0 ] && [ "$a" = "$b" ]; then pass kernel-ovs/tcp-2mb
else fail kernel-ovs/tcp-2mb "nc exit $rc, sent sha256 ${a:0:12}, received ${b:0:12} ($(stat -c %s /tmp/kovs-dst 2>/dev/null || echo 0) bytes)"; fi
info "kernel-ovs: 2 MB transfer took $(since "$t") s"

t=$(date +%s.%N)
if lab_down 2>/tmp/kovs-down.err; then pass kernel-ovs/down
else fail kernel-ovs/down "$(tail -n1 /tmp/kovs-down.err)"; fi
info "kernel-ovs: down took $(since "$t") s"
exit 0
