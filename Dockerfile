# tcplab node image: one lab host (router, switch host, client or server) per container.
#
# Built by tcplab itself (src/runtime/image/, through the Docker API) on top of a base imported
# from debootstrap, because no container registry is reachable; see images/README.md. By hand:
#   docker build -t tcplab/node:latest .          (from the repository root, base already imported)
# Written for the classic builder (Docker 20.10's API default): no BuildKit-only syntax.
ARG BASE=tcplab/base:bookworm
FROM ${BASE}

# Leave out documentation, man pages and translations of everything installed below.
COPY images/dpkg-nodoc /etc/dpkg/dpkg.cfg.d/tcplab-nodoc

# tini is PID 1: it reaps orphaned children (a plain `sleep` as PID 1 leaves zombies behind)
# and forwards SIGTERM, so `docker stop` is immediate.
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get -o Acquire::Languages=none update; \
    apt-get install -y --no-install-recommends \
        iproute2 iputils-ping iputils-arping iputils-tracepath traceroute tcpdump net-tools \
        curl telnet netcat-openbsd iperf3 ethtool procps tini; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log \
        /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old; \
    for t in ping tcpdump traceroute ip arp ss ethtool iperf3 nc curl telnet tini; do \
        command -v "$t" >/dev/null; \
    done

LABEL org.tcplab.image="node" \
      org.opencontainers.image.title="tcplab node" \
      org.opencontainers.image.description="Debian bookworm with TCP/IP teaching tools, tini as PID 1"

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sleep", "infinity"]
