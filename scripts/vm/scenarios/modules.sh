# modules: tcplab on a kernel that has loaded none of the lab's modules yet (veth, bridge,
# openvswitch, sch_netem), as a distribution kernel is right after boot. Records what tcplab
# does: whether the modules load on demand, or tcplab fails and says what to do.
. /vm/lib.sh

info "modules: loaded at boot: [$(modules_loaded)]"

# 1. Linux-bridge LANs: veth and bridge are modules on Debian's kernel.
if lab_up --switch linux 2>/tmp/modules-linux.err; then
  pass modules/linux-bridge
  info "modules: after 'up --switch linux': [$(modules_loaded)]"
else
  fail modules/linux-bridge "'tcplab --switch linux up' failed: $(tail -n1 /tmp/modules-linux.err)"
fi
lab_down

# 2. OVS LANs, with ovsdb-server and ovs-vswitchd started by hand while openvswitch is not
#    loaded. Whoever loads it (ovs-vswitchd's own generic-netlink lookup, or tcplab's) is
#    recorded; what counts is that the lab ends up on the kernel datapath.
ovs_start || { fail modules/openvswitch "could not start Open vSwitch"; exit 0; }
if module_loaded openvswitch; then
  info "modules: starting ovs-vswitchd loaded openvswitch (its generic-netlink lookup auto-loads it)"
else
  info "modules: ovs-vswitchd started without loading openvswitch"
fi
info "modules: before 'up' (OVS): [$(modules_loaded)]"
if lab_up 2>/tmp/modules-ovs.err; then
  dp=$(ovs-vsctl --bare --columns=datapath_type list bridge | grep . | sort -u | tr '\n' ' ')
  info "modules: after 'up' (OVS): [$(modules_loaded)], bridges' datapath_type: [${dp% }]"
  if module_loaded openvswitch && ! grep -q netdev <<<"$dp"; then
    pass modules/openvswitch
  else
    fail modules/openvswitch "the openvswitch module was not loaded: tcplab used datapath_type [${dp% }] instead of the kernel datapath"
  fi
else
  fail modules/openvswitch "'tcplab up' with OVS failed: $(tail -n1 /tmp/modules-ovs.err)"
  info "modules: after the failed 'up': [$(modules_loaded)]"
fi
lab_down

# 3. netem: only link conditions use it.
if ! has_link_set; then
  fail modules/sch_netem "tcplab has no 'link set' yet"
else
  module_loaded sch_netem && rmmod sch_netem 2>/dev/null
  lab_up
  if tcplab link set bsdi:bsdiside --delay 10ms >&2 2>/tmp/modules-netem.err; then
    if module_loaded sch_netem; then pass modules/sch_netem
    else fail modules/sch_netem "'link set --delay' worked without sch_netem loaded (some other mechanism)"; fi
  else
    fail modules/sch_netem "'tcplab link set --delay' failed: $(tail -n1 /tmp/modules-netem.err)"
  fi
  info "modules: after 'link set': [$(modules_loaded)]"
  lab_down
fi
exit 0
