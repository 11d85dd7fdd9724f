# clean-down: the guest's host namespace after `up` then `down` is what it was before `up`
# (links, namespaces, routes, iptables, OVS, the kernel datapath).
. /vm/lib.sh

ovs_start || { fail clean-down "could not start Open vSwitch"; exit 0; }
host_snapshot >/tmp/clean-before
if ! lab_up 2>/tmp/clean-up.err; then
  fail clean-down "'tcplab up' failed: $(tail -n1 /tmp/clean-up.err)"
  exit 0
fi
tcplab exec slip ping -c 1 -W 3 aix >/dev/null 2>&1   # some traffic: neighbours, flows
lab_down
# Host-side ends of veths may vanish a moment after down returns (namespace cleanup).
for i in $(seq 1 30); do
  host_snapshot >/tmp/clean-after
  cmp -s /tmp/clean-before /tmp/clean-after && break
  sleep 0.2
done
if cmp -s /tmp/clean-before /tmp/clean-after; then
  pass clean-down
else
  diff /tmp/clean-before /tmp/clean-after >&2
  fail clean-down "host differs after down: $(diff /tmp/clean-before /tmp/clean-after | grep '^[<>]' | head -n3 | tr '\n' ' ' | cut -c1-300)"
fi
exit 0
