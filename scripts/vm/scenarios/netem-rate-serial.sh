# netem-rate-serial: the book's SLIP line, 1200 bit/s with slip framing in both directions:
# a default ping (84-byte datagram, 86 bytes on the line, 10 bits a byte) has a median RTT
# within 5% of 1.43 s (TCP/IP Illustrated vol. 1, section 7.2), carried by netem.
. /vm/lib.sh

has_link_set || { fail netem-rate-serial "tcplab has no 'link set' yet"; exit 0; }
ovs_start || { fail netem-rate-serial "could not start Open vSwitch"; exit 0; }
lab_up 2>/tmp/nr-up.err || { fail netem-rate-serial "'tcplab up' failed: $(tail -n1 /tmp/nr-up.err)"; exit 0; }
tcplab exec slip ping -c 1 -W 3 140.252.13.66 >/dev/null 2>&1   # ARP before the line is slow
if ! tcplab link set slip bsdi --rate 1200bit --framing slip >&2 2>/tmp/nr-set.err; then
  fail netem-rate-serial "'tcplab link set slip bsdi --rate 1200bit --framing slip' failed: $(tail -n1 /tmp/nr-set.err)"
  exit 0
fi
bad=""
for end in slip:slipside bsdi:bsdiside; do
  qd=$(ip netns exec "tcplab-tcpip-${end%%:*}" tc qdisc show dev "${end#*:}" 2>&1)
  echo "$end: $qd" >&2
  grep -qE 'netem .*rate [0-9]' <<<"$qd" || bad="$bad $end"
done
if [ -z "$bad" ]; then pass netem-rate-serial/qdisc
else fail netem-rate-serial/qdisc "no netem with a rate on:$bad"; fi
rtts=$(tcplab exec slip ping -c 5 -i 2 -W 5 140.252.13.66 2>&1 | ping_rtts)
med=$(median <<<"$rtts")
info "netem-rate-serial: RTTs (ms): $(echo $rtts), median ${med:-none}"
if [ -n "$med" ] && within "$med" 1358.5 1501.5; then pass netem-rate-serial
else fail netem-rate-serial "median RTT ${med:-none} ms, want 1430 ms +-5%"; fi
exit 0
