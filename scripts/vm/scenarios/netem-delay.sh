# netem-delay: 100 ms of delay on what leaves bsdi's end of the SLIP line, through the
# kernel's netem: ping slip -> bsdi shows about 100 ms RTT (one-way semantics, not 200).
. /vm/lib.sh

has_link_set || { fail netem-delay "tcplab has no 'link set' yet"; exit 0; }
ovs_start || { fail netem-delay "could not start Open vSwitch"; exit 0; }
lab_up 2>/tmp/nd-up.err || { fail netem-delay "'tcplab up' failed: $(tail -n1 /tmp/nd-up.err)"; exit 0; }
if ! tcplab link set bsdi:bsdiside --delay 100ms >&2 2>/tmp/nd-set.err; then
  fail netem-delay "'tcplab link set bsdi:bsdiside --delay 100ms' failed: $(tail -n1 /tmp/nd-set.err)"
  exit 0
fi
qd=$(ip netns exec tcplab-tcpip-bsdi tc qdisc show dev bsdiside 2>&1)
echo "$qd" >&2
if grep -q 'netem' <<<"$qd" && grep -qE 'delay 100(\.0)?ms' <<<"$qd"; then pass netem-delay/qdisc
else fail netem-delay/qdisc "no netem with delay 100ms on bsdi's bsdiside: $(tr '\n' ' ' <<<"$qd" | cut -c1-200)"; fi
tcplab exec slip ping -c 1 -W 3 140.252.13.66 >/dev/null 2>&1   # ARP first
rtts=$(tcplab exec slip ping -c 10 -i 0.3 -W 3 140.252.13.66 2>&1 | ping_rtts)
med=$(median <<<"$rtts")
info "netem-delay: RTTs (ms): $(echo $rtts), median ${med:-none}"
if [ -n "$med" ] && within "$med" 95 105; then pass netem-delay
else fail netem-delay "median RTT ${med:-none} ms, want 100 ms +-5% (one-way delay)"; fi
exit 0
