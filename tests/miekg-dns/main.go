// A small authoritative DNS server built on miekg/dns, the library CoreDNS
// is built on, for ram's tests: it answers A and AAAA questions for the
// names it is given, following CNAMEs, and writes its answers with name
// compression off (as CoreDNS writes every answer that fits) or on.
//
//	ram-miekg-dns -listen 127.0.0.53:53 -compress=false \
//	    -a allowed.test=127.10.0.1 -cname alias.test=edge.cdn.test -a edge.cdn.test=127.10.0.3
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"

	"github.com/miekg/dns"
)

type pairs map[string][]string

func (p pairs) String() string { return fmt.Sprint(map[string][]string(p)) }

func (p pairs) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("NAME=VALUE expected: %q", v)
	}
	key := dns.Fqdn(strings.ToLower(name))
	p[key] = append(p[key], value)
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.53:53", "address:port for UDP and TCP")
	compress := flag.Bool("compress", false, "compress names in answers")
	ttl := flag.Uint("ttl", 60, "TTL of every record")
	truncateUDP := flag.Bool("truncate-udp", false,
		"answer over UDP with TC set and no records (as when nothing fits), so clients ask again over TCP")
	addrs, cnames := pairs{}, pairs{}
	flag.Var(addrs, "a", "NAME=ADDRESS (IPv4 or IPv6), repeatable")
	flag.Var(cnames, "cname", "NAME=TARGET, repeatable")
	flag.Parse()

	dns.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		m.Compress = *compress
		if len(req.Question) == 1 {
			q := req.Question[0]
			name := strings.ToLower(q.Name)
			for hops := 0; hops < 8; hops++ {
				target, ok := cnames[name]
				if !ok {
					break
				}
				hdr := dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: uint32(*ttl)}
				next := dns.Fqdn(target[0])
				m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr, Target: next})
				name = strings.ToLower(next)
			}
			for _, value := range addrs[name] {
				ip := net.ParseIP(value)
				hdr := dns.RR_Header{Name: name, Class: dns.ClassINET, Ttl: uint32(*ttl)}
				switch {
				case ip == nil:
				case ip.To4() != nil && q.Qtype == dns.TypeA:
					hdr.Rrtype = dns.TypeA
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.To4()})
				case ip.To4() == nil && q.Qtype == dns.TypeAAAA:
					hdr.Rrtype = dns.TypeAAAA
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
				}
			}
		}
		if *truncateUDP && w.LocalAddr().Network() == "udp" {
			m.Truncated = true
			m.Answer = nil
		}
		if err := w.WriteMsg(m); err != nil {
			log.Printf("write: %v", err)
		}
	})
	errs := make(chan error, 2)
	for _, network := range []string{"udp", "tcp"} {
		server := &dns.Server{Addr: *listen, Net: network}
		go func() { errs <- server.ListenAndServe() }()
	}
	log.Printf("serving on %s (compress=%v)", *listen, *compress)
	err := <-errs
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
