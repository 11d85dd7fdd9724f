# experiments: every experiment of the catalogue runs green on the netns runtime with OVS LANs
# on the kernel datapath.
. /vm/lib.sh

ovs_start || { fail experiments "could not start Open vSwitch"; exit 0; }
names=$(tcplab experiment list 2>/dev/null | awk 'NF { print $1 }' | grep -vE '^(NAME|name)$')
[ -n "$names" ] || { fail experiments "'tcplab experiment list' listed nothing"; exit 0; }
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
