# netem-loss: 20% random loss on what leaves slip's end of the SLIP line: over 500 pings the
# number lost lies in the 99% interval of Binomial(500, 0.2).
. /vm/lib.sh

has_link_set || { fail netem-loss "tcplab has no 'link set' yet"; exit 0; }
ovs_start || { fail netem-loss "could not start Open vSwitch"; exit 0; }
lab_up 2>/tmp/nl-up.err || { fail netem-loss "'tcplab up' failed: $(tail -n1 /tmp/nl-up.err)"; exit 0; }
tcplab exec slip ping -c 1 -W 3 140.252.13.66 >/dev/null 2>&1   # ARP first
if ! tcplab link set slip:slipside --loss 20% >&2 2>/tmp/nl-set.err; then
  fail netem-loss "'tcplab link set slip:slipside --loss 20%' failed: $(tail -n1 /tmp/nl-set.err)"
  exit 0
fi
qd=$(ip netns exec tcplab-tcpip-slip tc qdisc show dev slipside 2>&1)
echo "$qd" >&2
if grep -q netem <<<"$qd" && grep -q 'loss 20%' <<<"$qd"; then pass netem-loss/qdisc
else fail netem-loss/qdisc "no netem with loss 20% on slip's slipside: $(tr '\n' ' ' <<<"$qd" | cut -c1-200)"; fi
out=$(tcplab exec slip ping -q -c 500 -i 0.02 -W 2 140.252.13.66 2>&1)
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' <<<"$out")
recv=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
# The 0.5% and 99.5% quantiles of Binomial(n, 0.2), from its probabilities.
bounds=$(awk -v n="${sent:-500}" -v p=0.2 'BEGIN {
  q = 1 - p; f = q ^ n; c = 0; lo = -1
  for (k = 0; k <= n; k++) {
    c += f
    if (lo < 0 && c >= 0.005) lo = k
    if (c >= 0.995) { hi = k; break }
    f = f * (n - k) / (k + 1) * p / q
  }
  print lo, hi }')
lo=${bounds% *} hi=${bounds#* }
lost=$(( ${sent:-0} - ${recv:-0} ))
info "netem-loss: $lost of ${sent:-?} lost, 99% interval [$lo, $hi]"
if [ "${sent:-0}" = 500 ] && [ "$lost" -ge "$lo" ] && [ "$lost" -le "$hi" ]; then pass netem-loss
else fail netem-loss "$lost of ${sent:-0} pings lost, want 500 sent and [$lo, $hi] lost"; fi
exit 0
