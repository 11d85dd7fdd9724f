# Two images from one file:
# - node (the default, last stage): one lab host (router, switch host, client or server) per
#   container, for the docker runtime.
# - lab (`--target lab`): a whole course lab in one container, for a classroom server or one
#   Kubernetes pod per student: the tcplab binary built on the host, run with the netns runtime
#   and Linux bridges inside the container.
#
# Built by tcplab itself (src/runtime/image/, through the Docker API) on top of a base imported
# from debootstrap, because no container registry is reachable; see images/README.md. By hand:
#   docker build -t tcplab/node:latest .          (from the repository root, base already imported)
# The lab image, from the repository root, with a tcplab built by `cargo build --release`:
#   tar -c Dockerfile images -C target/release tcplab | docker build --target lab -t tcplab/lab -
# Written for the classic builder (Docker 20.10's API default): no BuildKit-only syntax. The
# classic builder builds every stage before the one it is asked for, so the lab stage is built
# (cheaply: no RUN) along with the node image, from whatever part of its files the context holds.
ARG BASE=tcplab/base:bookworm
FROM ${BASE} AS node

# Leave out documentation, man pages and translations of everything installed below.
COPY images/dpkg-nodoc /etc/dpkg/dpkg.cfg.d/tcplab-nodoc

# tini is PID 1: it reaps orphaned children (a plain `sleep` as PID 1 leaves zombies behind)
# and forwards SIGTERM, so `docker stop` is immediate.
# The servers and clients of the application chapters come from Debian's packages; an
# experiment starts each server itself, on the lab's addresses, with a configuration it writes:
#   dnsmasq-base   DNS (ch. 14), TFTP (15) and DHCP/BOOTP (16) server; no service of its own
#   ldnsutils      drill, a DNS client like dig (bind9-dnsutils would add 40 MB of ICU and XML)
#   tftp-hpa       the TFTP client
#   busybox-static telnetd (26), udhcpc (16); Debian's plain busybox has no telnetd
#   bird2          RIP (ch. 10)
#   snmp, snmpd    SNMP (ch. 25) agent and tools (get, walk)
#   vsftpd, tnftp  FTP (ch. 27) server and client
#   msmtp-mta      msmtpd, a minimal SMTP (ch. 28) server; curl is the client
# A policy-rc.d that refuses every start keeps the packages' own services (snmpd, vsftpd, bird,
# msmtpd) from being started while the image is built; it is removed afterwards.
# Net-SNMP's libraries depend on Perl's (for the agent's embedded Perl, which the experiments
# turn off): dpkg leaves out Perl's 45 MB of modules, and the PCI name list. /usr/bin/perl
# (perl-base, in every Debian) keeps its own modules.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    printf '%s\n' 'path-exclude /usr/lib/*/perl/5.*' \
        'path-exclude /usr/share/perl/5.*' 'path-exclude /usr/share/misc/pci.ids' \
        >/etc/dpkg/dpkg.cfg.d/tcplab-noperl; \
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; \
    chmod 755 /usr/sbin/policy-rc.d; \
    apt-get -o Acquire::Languages=none update; \
    apt-get install -y --no-install-recommends \
        iproute2 iputils-ping iputils-arping iputils-tracepath traceroute tcpdump net-tools \
        curl telnet netcat-openbsd iperf3 ethtool procps tini \
        dnsmasq-base ldnsutils tftp-hpa busybox-static bird2 snmp snmpd vsftpd tnftp msmtp-mta; \
    rm -f /usr/sbin/policy-rc.d; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log \
        /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old; \
    for t in ping tcpdump traceroute ip arp ss ethtool iperf3 nc curl telnet tini \
        dnsmasq drill tftp busybox bird birdc snmpget snmpd vsftpd tnftp msmtpd; do \
        command -v "$t" >/dev/null; \
    done; \
    for a in telnetd udhcpc udhcpd; do busybox --list | grep -qx "$a"; done

LABEL org.tcplab.image="node" \
      org.opencontainers.image.title="tcplab node" \
      org.opencontainers.image.description="Debian bookworm with TCP/IP teaching tools, tini as PID 1"

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sleep", "infinity"]

# ------------------------------------------------------------------------------------------
# A whole lab in one container. The context holds this file, images/ and the tcplab binary at
# its top (the tar command above); tcplab's own node build has neither the binary nor the
# entrypoint, which is why both are wildcards. Run it with NET_ADMIN, SYS_ADMIN and NET_RAW
# (not --privileged); images/README.md says how, and what each is for.
FROM node AS lab
COPY images/* tcplab* /opt/tcplab/
ENV PATH=/opt/tcplab:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TCPLAB_RUNTIME=netns
WORKDIR /root
LABEL org.tcplab.image="lab" \
      org.opencontainers.image.title="tcplab lab" \
      org.opencontainers.image.description="The course lab on network namespaces and Linux bridges, in one container"
HEALTHCHECK --interval=5s --timeout=5s CMD ["test", "-e", "/run/tcplab-lab/up"]
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/tcplab/lab-entrypoint"]
CMD []

# The default target: the node image, as the first stage made it.
FROM node
