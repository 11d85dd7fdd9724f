# experiments: the experiments that exercise the kernel's own paths (ARP and proxy ARP, routing,
# fragmentation, ICMP errors and redirects, TCP's timers and congestion control, netem lines)
# run green on the netns runtime with OVS LANs on the kernel datapath of Debian's kernel. The
# guest holds only the packages of ROOT_PKGS (vm-test.sh): the application chapters' servers
# (DNS, TFTP, RIP, SNMP, FTP, SMTP, ...) are checked on the host's kernel by the test suite.
. /vm/lib.sh
GUEST_EXPERIMENTS="arp proxy-arp ping-slip traceroute routing-tables fragmentation
udp-port-unreachable tcp-handshake tcp-rst tcp-retransmit hop-by-hop tcp-mss icmp-redirect"

ovs_start || { fail experiments "could not start Open vSwitch"; exit 0; }
listed=$(tcplab experiment list 2>/dev/null | awk 'NF { print $1 }')
[ -n "$listed" ] || { fail experiments "'tcplab experiment list' listed nothing"; exit 0; }
names=""
for n in $GUEST_EXPERIMENTS; do
  if echo "$listed" | grep -qx "$n"; then names="$names $n"; else fail "experiments/$n" "not in the catalogue"; fi
done
lab_up 2>/tmp/ex-up.err || { fail experiments "'tcplab up' failed: $(tail -n1 /tmp/ex-up.err)"; exit 0; }
for n in $names; do
  t=$(date +%s.%N)
  if tcplab experiment run "$n" --out "/tmp/exp/$n" >/tmp/ex-$n.out 2>&1; then
    pass "experiments/$n"
  else
    cat "/tmp/ex-$n.out" >&2
    why=$(grep -m1 -E '^\s*FAIL' "/tmp/ex-$n.out" || tail -n1 "/tmp/ex-$n.out")
    fail "experiments/$n" "$(echo $why | cut -c1-200)"
  fi
  info "experiments: $n took $(since "$t") s"
done
lab_down
exit 0
