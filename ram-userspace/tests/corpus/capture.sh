#!/bin/bash
# Captures the answer corpus of tests/dns_agreement.rs from real resolvers:
# dnsmasq, unbound and a server on miekg/dns (CoreDNS's library; names
# written in full, and compressed), each serving local records inside a
# throwaway network namespace. Needs root, dnsmasq, unbound, a built
# ram-probe (target/debug/ram-probe) and ram-miekg-dns (built by the tests:
# target/miekg-dns/ram-miekg-dns). Run from the repository root:
#   bash ram-userspace/tests/corpus/capture.sh
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
probe=${PROBE:-target/debug/ram-probe}
miekg=${MIEKG:-target/miekg-dns/ram-miekg-dns}
ns=ram-capture-$$
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 127.0.0.53/8 dev lo 2>/dev/null || true

# dnsmasq: plain records, a CNAME chain, many A records (> 512 bytes).
many=()
for i in $(seq 1 40); do many+=("--host-record=many.registry.test,10.1.0.$i"); done
ip netns exec "$ns" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address=127.0.0.53 --port=53 --pid-file="$work/dnsmasq.pid" --log-facility=- \
    --host-record=registry.test,10.0.0.1,2001:db8::1 \
    --host-record=edge.cdn.test,10.0.0.2,2001:db8::2 \
    --cname=alias.registry.test,edge.cdn.test \
    --cname=alias2.registry.test,alias.registry.test \
    "${many[@]}" >"$work/dnsmasq.log" 2>&1 &
pids+=($!)

# unbound: local data in a static zone, including a CNAME chain.
cat >"$work/unbound.conf" <<CONF
server:
    interface: 127.0.0.54
    port: 53
    do-daemonize: no
    username: ""
    chroot: ""
    pidfile: ""
    use-syslog: no
    logfile: ""
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: yes
    local-zone: "unbound.test." static
    local-data: "registry.unbound.test. 300 IN A 10.2.0.1"
    local-data: "registry.unbound.test. 300 IN AAAA 2001:db8::21"
    local-data: "edge.unbound.test. 300 IN A 10.2.0.2"
    local-data: "alias.unbound.test. 300 IN CNAME edge.unbound.test."
CONF
ip netns exec "$ns" unbound -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 &
pids+=($!)

# miekg/dns: without compression (CoreDNS's default for answers that fit)
# and with it; a CNAME target in another case than its owner.
for port in 55:false 56:true; do
    ip netns exec "$ns" "$miekg" -listen "127.0.0.${port%%:*}:53" -compress="${port##*:}" \
        -a registry.miekg.test=10.3.0.1 -a registry.miekg.test=2001:db8::31 \
        -cname alias.miekg.test=Edge.CDN.miekg.test -a edge.cdn.miekg.test=10.3.0.2 \
        -a edge.cdn.miekg.test=10.3.0.3 >"$work/miekg-$port.log" 2>&1 &
    pids+=($!)
done
sleep 1

q() { ip netns exec "$ns" "$probe" raw-query "$@"; }
q 127.0.0.53 registry.test a "$out/dnsmasq-a.bin"
q 127.0.0.53 registry.test aaaa "$out/dnsmasq-aaaa.bin"
q 127.0.0.53 alias2.registry.test a "$out/dnsmasq-cname-chain.bin"
q 127.0.0.53 many.registry.test a "$out/dnsmasq-edns-large.bin"
q 127.0.0.53 many.registry.test a tcp "$out/dnsmasq-tcp-large.bin"
q 127.0.0.54 registry.unbound.test a "$out/unbound-a.bin"
q 127.0.0.54 registry.unbound.test aaaa "$out/unbound-aaaa.bin"
q 127.0.0.54 alias.unbound.test a "$out/unbound-cname.bin"
q 127.0.0.54 nothing.unbound.test a "$out/unbound-nxdomain.bin"
q 127.0.0.55 registry.miekg.test a "$out/miekg-uncompressed-a.bin"
q 127.0.0.55 registry.miekg.test aaaa "$out/miekg-uncompressed-aaaa.bin"
q 127.0.0.55 alias.miekg.test a "$out/miekg-uncompressed-cname.bin"
q 127.0.0.56 alias.miekg.test a "$out/miekg-compressed-cname.bin"
ls -l "$out"/*.bin
