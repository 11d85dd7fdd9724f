#!/usr/bin/env bash
# Reference for benches/updown.sh: the course lab (TCP/IP Illustrated, topologies/tcpip-illustrated.toml,
# isolated, no uplink) built by a plain shell script of iproute2 commands, one `ip` call per step,
# as a course script would write it. It builds what `tcplab up` builds:
#   - a switch namespace holding the two Linux bridges (net1, net2), IPv6 and bridge netfilter off;
#   - one namespace per node, lo up, the node's sysctls (forwarding on routers, rp_filter 0,
#     IPv6 off, icmp_ratelimit 0; proxy_arp 1 and proxy_delay 0 on netb's two interfaces);
#   - a veth per LAN member (switch side a port of its bridge), the two point-to-point lines;
#   - addresses, static routes, netb's proxy ARP entries (`ip neigh add proxy`).
# It does not write /etc/netns/<ns>/hosts files (tcplab does; that costs no process in tcplab).
# Every name starts with PREFIX (default tlref): it never touches tcplab's namespaces.
#
# usage: reference_ip_script.sh up|down|check [PREFIX]
#   up:    build it (fails if PREFIX-sw exists already)
#   down:  delete every namespace it made (missing ones are fine); the kernel removes the veths
#   check: one ping from slip across both routers and netb's proxy ARP to aix
set -eu

cmd=${1:?usage: reference_ip_script.sh up|down|check [PREFIX]}
P=${2:-tlref}
SW=$P-sw
NODES="aix solaris gemini gateway netb sun svr4 bsdi slip"

# Sysctls every node gets, and the forwarding value of each (no $(...): keep processes honest).
COMMON="net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv4.icmp_ratelimit=0"

# lan_port NODE BRIDGE: veth NODE-eth1 (switch side, a port of BRIDGE) <-> eth1 in the node.
lan_port() {
    ip -n "$SW" link add "$1-eth1" type veth peer name eth1 netns "$P-$1"
    ip -n "$SW" link set "$1-eth1" master "$2" up
    ip -n "$P-$1" link set eth1 up
}

# p2p NODE_A IF_A NODE_B IF_B: a veth line between two nodes.
p2p() {
    ip -n "$P-$1" link add "$2" type veth peer name "$4" netns "$P-$3"
    ip -n "$P-$1" link set "$2" up
    ip -n "$P-$3" link set "$4" up
}

up() {
    ip netns add "$SW"
    for n in $NODES; do
        ip netns add "$P-$n"
        ip -n "$P-$n" link set lo up
    done
    # -e: bridge netfilter keys may be absent
    ip netns exec "$SW" sysctl -q -e -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
        net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-arptables=0 net.bridge.bridge-nf-call-ip6tables=0
    for br in net1 net2; do
        ip -n "$SW" link add "$br" type bridge
        ip -n "$SW" link set "$br" up
    done
    for n in aix solaris gemini gateway netb; do lan_port "$n" net1; done
    for n in bsdi sun svr4; do lan_port "$n" net2; done
    p2p slip slipside bsdi bsdiside
    p2p sun sunside netb netbside

    for n in aix solaris gemini svr4 slip; do
        ip netns exec "$P-$n" sysctl -q -w net.ipv4.ip_forward=0 $COMMON
    done
    for n in gateway sun bsdi; do
        ip netns exec "$P-$n" sysctl -q -w net.ipv4.ip_forward=1 $COMMON
    done
    ip netns exec "$P-netb" sysctl -q -w net.ipv4.ip_forward=1 $COMMON \
        net.ipv4.conf.eth1.proxy_arp=1 net.ipv4.neigh.eth1.proxy_delay=0 \
        net.ipv4.conf.netbside.proxy_arp=1 net.ipv4.neigh.netbside.proxy_delay=0

    # The top LAN's three hosts.
    ip -n "$P-aix" addr add 140.252.1.92/24 dev eth1
    ip -n "$P-solaris" addr add 140.252.1.32/24 dev eth1
    ip -n "$P-gemini" addr add 140.252.1.11/24 dev eth1
    for n in aix solaris gemini; do
        ip -n "$P-$n" route add default via 140.252.1.4
        ip -n "$P-$n" route add 140.252.13.32/27 via 140.252.1.29
        ip -n "$P-$n" route add 140.252.13.64/27 via 140.252.1.29
    done
    # gateway (isolated: no default route).
    ip -n "$P-gateway" addr add 140.252.1.4/24 dev eth1
    ip -n "$P-gateway" route add 140.252.13.32/27 via 140.252.1.29
    ip -n "$P-gateway" route add 140.252.13.64/27 via 140.252.1.29
    # netb: proxy ARP between the top LAN and sun's line.
    ip -n "$P-netb" addr add 140.252.1.183/24 dev eth1
    ip -n "$P-netb" route add 140.252.1.29/32 dev netbside
    ip -n "$P-netb" route add default via 140.252.1.4 dev eth1
    ip -n "$P-netb" route add 140.252.13.32/27 via 140.252.1.29 dev netbside
    ip -n "$P-netb" route add 140.252.13.64/27 via 140.252.1.29 dev netbside
    ip -n "$P-netb" neigh add proxy 140.252.1.29 dev eth1
    for a in 140.252.1.92 140.252.1.32 140.252.1.11 140.252.1.4; do
        ip -n "$P-netb" neigh add proxy "$a" dev netbside
    done
    # sun
    ip -n "$P-sun" addr add 140.252.13.33/27 dev eth1
    ip -n "$P-sun" addr add 140.252.1.29/24 dev sunside
    ip -n "$P-sun" route add default via 140.252.1.4 dev sunside
    ip -n "$P-sun" route add 140.252.13.64/27 via 140.252.13.35 dev eth1
    # svr4
    ip -n "$P-svr4" addr add 140.252.13.34/27 dev eth1
    ip -n "$P-svr4" route add default via 140.252.13.33 dev eth1
    ip -n "$P-svr4" route add 140.252.13.64/27 via 140.252.13.35
    # bsdi
    ip -n "$P-bsdi" addr add 140.252.13.35/27 dev eth1
    ip -n "$P-bsdi" addr add 140.252.13.66/27 dev bsdiside
    ip -n "$P-bsdi" route add default via 140.252.13.33 dev eth1
    # slip
    ip -n "$P-slip" addr add 140.252.13.65/27 dev slipside
    ip -n "$P-slip" route add default via 140.252.13.66 dev slipside
}

down() {
    local n
    for n in $NODES sw; do
        if [ -e "/run/netns/$P-$n" ]; then ip netns delete "$P-$n"; fi
    done
}

case $cmd in
    up) up ;;
    down) down ;;
    check) ip netns exec "$P-slip" ping -c 1 -W 2 -q 140.252.1.92 >/dev/null ;;
    *) echo "usage: reference_ip_script.sh up|down|check [PREFIX]" >&2; exit 2 ;;
esac
