//! ram-probe: the process the root tests place in an enforced cgroup. Each
//! command tries one socket path and prints one word per attempt: `ok`, or
//! the errno name (EPERM means ram said no; ECONNREFUSED means the packet got
//! through and nothing listened).
//!
//! ```text
//! ram-probe connect ADDR PORT
//! ram-probe sendto ADDR PORT
//! ram-probe raw-ping ADDR                       (raw ICMP echo: `reply` or `no-reply`/errno)
//! ram-probe raw-tcp ADDR PORT                   (a TCP exchange by hand on a raw IPPROTO_TCP socket)
//! ram-probe resolve RESOLVER NAME [a|aaaa] [udp|tcp]
//! ram-probe resolve-connect RESOLVER NAME PORT [a|aaaa] [udp|tcp]
//! ram-probe hold SECONDS                        (just stays alive: a process to find by name)
//! ram-probe serve-dns ADDR TTL [split] NAME=IP... (a tiny authoritative resolver, UDP and TCP on port 53;
//!                                                split: TCP answers in two segments;
//!                                                +OWNER=IP: an extra off-chain record in every answer;
//!                                                delay=MS: UDP answers wait MS first)
//! ram-probe expect-loop rounds=N|stop=FILE CHECK...
//! ram-probe raw-query RESOLVER NAME [a|aaaa] [udp|tcp] OUT   (writes the raw answer to OUT)
//! ```
//!
//! `expect-loop` repeats its checks (N rounds, or until FILE exists) and
//! prints `rounds=R attempts=A wrong=W` and the first wrong outcome. A check
//! is `connect,ADDR,PORT=WORD`, `sendto,ADDR,PORT=WORD` or
//! `resolve-connect,RESOLVER,NAME,PORT=WORD`, WORD being the expected output
//! (for resolve-connect, of the connect only).
//!
//! `serve-dns` stands in for dnsmasq where there is none (the QEMU guests).

use std::{
    io::{ErrorKind, Read, Write},
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{
        rdata::{A, AAAA, CNAME},
        Name, RData, Record, RecordType,
    },
};

const TIMEOUT: Duration = Duration::from_secs(2);

#[path = "../probe/bypass.rs"]
mod bypass;
#[path = "../probe/stream.rs"]
mod stream;

pub(crate) fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ECONNREFUSED) => "ECONNREFUSED".into(),
        Some(libc::ETIMEDOUT) | Some(libc::EAGAIN) => "ETIMEDOUT".into(),
        Some(libc::ENETUNREACH) => "ENETUNREACH".into(),
        Some(libc::EHOSTUNREACH) => "EHOSTUNREACH".into(),
        // A connect that timed out (SO_SNDTIMEO): nothing answered.
        Some(libc::EINPROGRESS) => "EINPROGRESS".into(),
        Some(n) => format!("errno{n}"),
        None if e.kind() == std::io::ErrorKind::TimedOut => "ETIMEDOUT".into(),
        None => format!("{e}"),
    }
}

pub(crate) fn connect(addr: IpAddr, port: u16) -> String {
    match TcpStream::connect_timeout(&SocketAddr::new(addr, port), TIMEOUT) {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

fn sendto(addr: IpAddr, port: u16) -> String {
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let socket = match UdpSocket::bind(bind) {
        Ok(s) => s,
        Err(e) => return errno_name(&e),
    };
    match socket.send_to(b"ram-probe", SocketAddr::new(addr, port)) {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

/// connect()+close() to ADDR:PORT as often as it can for MS milliseconds:
/// "connects=N failed=M per_s=R" (the bench's loop).
fn connect_loop(addr: IpAddr, port: u16, ms: u64) -> String {
    let target = SocketAddr::new(addr, port);
    let start = std::time::Instant::now();
    let limit = Duration::from_millis(ms);
    let (mut connects, mut failed) = (0u64, 0u64);
    while start.elapsed() < limit {
        for _ in 0..64 {
            match TcpStream::connect(target) {
                Ok(mut stream) => {
                    // The listener closes first (it accepts and drops), so
                    // its side keeps the TIME_WAIT and this loop never runs
                    // out of local ports; wait for that close, then close.
                    let mut byte = [0u8; 1];
                    let _ = std::io::Read::read(&mut stream, &mut byte);
                    drop(stream);
                    connects += 1;
                }
                Err(_) => failed += 1,
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    format!("connects={connects} failed={failed} per_s={:.0}", connects as f64 / secs)
}

/// CLOCK_MONOTONIC now, in ns (the clock the bench reads too).
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Says "ready" (so the bench changes the policy only once it loops), then
/// connects to ADDR:PORT over and over until the outcome is EXPECTED ("ok"
/// or an errno name), for at most MS ms, and prints the CLOCK_MONOTONIC
/// time of that first outcome: the bench's reload figure.
fn connect_until(addr: IpAddr, port: u16, expected: &str, ms: u64) -> String {
    println!("ready");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let start = std::time::Instant::now();
    let mut tries = 0u64;
    loop {
        let got = connect(addr, port);
        tries += 1;
        if got == expected {
            return format!("at_ns={} tries={tries}", monotonic_ns());
        }
        if start.elapsed() > Duration::from_millis(ms) {
            return format!("timeout last={got} tries={tries}");
        }
    }
}

/// Accepts TCP connections on ADDR:PORT and reads each to its end, one
/// thread per connection, until killed: the bench's bulk sink.
fn sink(addr: IpAddr, port: u16) -> String {
    let listener = match std::net::TcpListener::bind(SocketAddr::new(addr, port)) {
        Ok(l) => l,
        Err(e) => return format!("bind {}", errno_name(&e)),
    };
    loop {
        if let Ok((mut stream, _)) = listener.accept() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while std::io::Read::read(&mut stream, &mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    }
}

/// Writes to one TCP connection to ADDR:PORT for MS ms, 64 KiB at a time;
/// prints the bytes per second.
fn bulk_send(addr: IpAddr, port: u16, ms: u64) -> String {
    let mut stream = match TcpStream::connect(SocketAddr::new(addr, port)) {
        Ok(s) => s,
        Err(e) => return format!("connect {}", errno_name(&e)),
    };
    let chunk = vec![0x5au8; 1 << 16];
    let (start, limit) = (std::time::Instant::now(), Duration::from_millis(ms));
    let mut sent = 0u64;
    while start.elapsed() < limit {
        match std::io::Write::write(&mut stream, &chunk) {
            Ok(n) => sent += n as u64,
            Err(e) => return format!("write {} after {sent} bytes", errno_name(&e)),
        }
    }
    format!("bytes={sent} per_s={:.0}", sent as f64 / start.elapsed().as_secs_f64())
}

/// Receives UDP datagrams on ADDR:PORT and drops them, until killed.
fn udp_sink(addr: IpAddr, port: u16) -> String {
    let socket = match std::net::UdpSocket::bind(SocketAddr::new(addr, port)) {
        Ok(s) => s,
        Err(e) => return format!("bind {}", errno_name(&e)),
    };
    let mut buf = [0u8; 2048];
    loop {
        let _ = socket.recv_from(&mut buf);
    }
}

/// Sends 64-byte UDP datagrams to ADDR:PORT with sendto (no connect: each
/// one judged) for MS ms; prints the datagrams per second.
fn udp_send_loop(addr: IpAddr, port: u16, ms: u64) -> String {
    let bind = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let socket = match std::net::UdpSocket::bind(bind) {
        Ok(s) => s,
        Err(e) => return format!("bind {}", errno_name(&e)),
    };
    let (target, payload) = (SocketAddr::new(addr, port), [0x5au8; 64]);
    let (start, limit) = (std::time::Instant::now(), Duration::from_millis(ms));
    let (mut sent, mut failed) = (0u64, 0u64);
    while start.elapsed() < limit {
        for _ in 0..64 {
            match socket.send_to(&payload, target) {
                Ok(_) => sent += 1,
                Err(_) => failed += 1,
            }
        }
    }
    format!("sent={sent} failed={failed} per_s={:.0}", sent as f64 / start.elapsed().as_secs_f64())
}

/// Accepts TCP connections on ADDR:PORT and closes each at once, until
/// killed: the bench's listener (one thread, no work per connection).
fn accept_loop(addr: IpAddr, port: u16) -> String {
    let listener = match std::net::TcpListener::bind(SocketAddr::new(addr, port)) {
        Ok(l) => l,
        Err(e) => return format!("bind {}", errno_name(&e)),
    };
    loop {
        let _ = listener.accept();
    }
}

/// A UDP send from a socket bound to FROM (as a DNS server's, bound to
/// port 53) to ADDR:PORT.
fn sendto_from(from: SocketAddr, addr: IpAddr, port: u16) -> String {
    let socket = match UdpSocket::bind(from) {
        Ok(s) => s,
        Err(e) => return format!("bind {}", errno_name(&e)),
    };
    match socket.send_to(b"ram-probe", SocketAddr::new(addr, port)) {
        Ok(_) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

/// COUNT UDP sockets, each sending one datagram to ADDR:PORT then closed:
/// as many notes as sockets, to crowd a map of them.
fn socket_flood(addr: IpAddr, port: u16, count: u32) -> String {
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let mut sent = 0u32;
    for _ in 0..count {
        if let Ok(socket) = UdpSocket::bind(bind) {
            if socket.send_to(b"x", SocketAddr::new(addr, port)).is_ok() {
                sent += 1;
            }
        }
    }
    format!("sent={sent}")
}

fn raw_ping(addr: IpAddr) -> String {
    let IpAddr::V4(v4) = addr else {
        return "unsupported".into();
    };
    // SAFETY: plain socket syscalls on a descriptor owned here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            return errno_name(&std::io::Error::last_os_error());
        }
        let tv = libc::timeval { tv_sec: 1, tv_usec: 0 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const _,
            std::mem::size_of_val(&tv) as u32,
        );
        // Echo request, id 0x7261 ("ra"), seq 1, checksum filled below.
        let mut packet = [8u8, 0, 0, 0, 0x72, 0x61, 0, 1, b'r', b'a', b'm', b'!'];
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
        let dest = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
            sin_zero: [0; 8],
        };
        let sent = libc::sendto(
            fd,
            packet.as_ptr() as *const _,
            packet.len(),
            0,
            &dest as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&dest) as u32,
        );
        if sent < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return errno_name(&e);
        }
        let mut buf = [0u8; 256];
        for _ in 0..8 {
            let n = libc::recv(fd, buf.as_mut_ptr() as *mut _, buf.len(), 0);
            if n < 0 {
                break;
            }
            let ihl = ((buf[0] & 0x0f) as usize) * 4;
            // An echo reply (type 0) with our id; the raw socket also sees our own request on lo.
            if (n as usize) > ihl + 8 && buf[ihl] == 0 && buf[ihl + 4..ihl + 6] == [0x72, 0x61] {
                libc::close(fd);
                return "reply".into();
            }
        }
        libc::close(fd);
        "no-reply".into()
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One DNS exchange (EDNS, 4096-byte payload): the raw answer.
fn exchange(resolver: IpAddr, name: &str, record_type: RecordType, tcp: bool) -> Result<Vec<u8>, String> {
    let mut msg = Message::query();
    msg.metadata.id = std::process::id() as u16;
    msg.metadata.recursion_desired = true;
    let name = Name::from_ascii(name).map_err(|e| e.to_string())?;
    msg.add_query(Query::query(name, record_type));
    let mut edns = hickory_proto::op::Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    let bytes = msg.to_vec().map_err(|e| e.to_string())?;
    let server = SocketAddr::new(resolver, 53);
    let answer = if tcp {
        let mut stream = TcpStream::connect_timeout(&server, TIMEOUT).map_err(|e| errno_name(&e))?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).map_err(|e| errno_name(&e))?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).map_err(|e| errno_name(&e))?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).map_err(|e| errno_name(&e))?;
        buf
    } else {
        let bind: SocketAddr =
            if resolver.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
        let socket = UdpSocket::bind(bind).map_err(|e| errno_name(&e))?;
        socket.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        // Asked twice, as a stub resolver does (glibc's `attempts:2`): a
        // container target drops the answers of a container whose network
        // namespace ramd does not know yet, so that the next try teaches.
        let mut buf = vec![0u8; 4096];
        let mut attempt = 0;
        let n = loop {
            attempt += 1;
            socket.send_to(&bytes, server).map_err(|e| errno_name(&e))?;
            match socket.recv_from(&mut buf) {
                Ok((n, _)) => break n,
                Err(e) if attempt < 2 && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
                Err(e) => return Err(errno_name(&e)),
            }
        };
        buf.truncate(n);
        buf
    };
    Ok(answer)
}

/// UDP A queries for NAME, one after another, for MS milliseconds:
/// "answers=N failed=F per_s=R".
fn resolve_loop(resolver: IpAddr, name: &str, ms: u64) -> String {
    let start = std::time::Instant::now();
    let (mut answers, mut failed) = (0u64, 0u64);
    while start.elapsed() < Duration::from_millis(ms) {
        match query(resolver, name, RecordType::A, false) {
            Ok(addrs) if !addrs.is_empty() => answers += 1,
            _ => failed += 1,
        }
    }
    format!("answers={answers} failed={failed} per_s={:.0}", answers as f64 / start.elapsed().as_secs_f64())
}

fn query(resolver: IpAddr, name: &str, record_type: RecordType, tcp: bool) -> Result<Vec<IpAddr>, String> {
    let answer = exchange(resolver, name, record_type, tcp)?;
    let reply = Message::from_vec(&answer).map_err(|e| e.to_string())?;
    Ok(reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect())
}

/// Answers A/AAAA queries for `records` (other names: NXDOMAIN) until killed.
/// `split`: TCP answers go out as two segments, the length prefix first.
/// `extra`: records owned by other names, added to every answer that has
/// address records (off the question's CNAME chain: never to be learned).
/// `delay`: how long to wait before answering over UDP.
#[allow(clippy::too_many_arguments)]
fn serve_dns(
    addr: IpAddr,
    ttl: u32,
    records: Vec<(String, IpAddr)>,
    extra: Vec<(String, IpAddr)>,
    cnames: Vec<(String, String)>,
    split: bool,
    delay: Duration,
    nested: bool,
) -> ! {
    let answer = move |query: &[u8]| -> Option<Vec<u8>> {
        let request = Message::from_vec(query).ok()?;
        let question = request.queries.first()?.clone();
        let mut reply = Message::response(request.metadata.id, OpCode::Query);
        reply.metadata.message_type = MessageType::Response;
        reply.metadata.recursion_desired = request.metadata.recursion_desired;
        reply.metadata.authoritative = true;
        reply.add_query(question.clone());
        let mut wanted = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let mut owner = question.name().clone();
        if let Some((_, canonical)) = cnames.iter().find(|(alias, _)| *alias == wanted) {
            let target = Name::from_ascii(canonical).ok()?;
            reply.add_answer(Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target.clone()))));
            wanted = canonical.clone();
            owner = target;
        }
        let mut known = false;
        for (name, ip) in &records {
            if *name != wanted {
                continue;
            }
            known = true;
            let data = match (ip, question.query_type()) {
                (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                _ => continue,
            };
            reply.add_answer(Record::from_rdata(owner.clone(), ttl, data));
        }
        if !known {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        if !reply.answers.is_empty() {
            for (owner, ip) in &extra {
                let IpAddr::V4(v4) = ip else { continue };
                let owner = Name::from_ascii(owner).ok()?;
                reply.add_answer(Record::from_rdata(owner, ttl, RData::A(A(*v4))));
            }
        }
        reply.to_vec().ok()
    };
    let server = SocketAddr::new(addr, 53);
    let tcp = std::net::TcpListener::bind(server).unwrap_or_else(|e| panic!("bind tcp {server}: {e}"));
    let tcp_answer = answer.clone();
    std::thread::spawn(move || {
        for stream in tcp.incoming().flatten() {
            let mut stream = stream;
            let mut len = [0u8; 2];
            if stream.read_exact(&mut len).is_err() {
                continue;
            }
            let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
            if stream.read_exact(&mut query).is_err() {
                continue;
            }
            if let Some(reply) = tcp_answer(&query) {
                let prefix = (reply.len() as u16).to_be_bytes();
                if split {
                    let _ = stream.set_nodelay(true);
                    let _ = stream.write_all(&prefix);
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = stream.write_all(&reply);
                } else {
                    let mut framed = prefix.to_vec();
                    framed.extend_from_slice(&reply);
                    let _ = stream.write_all(&framed);
                }
            }
        }
    });
    let udp = UdpSocket::bind(server).unwrap_or_else(|e| panic!("bind udp {server}: {e}"));
    if nested {
        bypass::enter_own_netns().unwrap_or_else(|step| panic!("own namespace: step {step}"));
    }
    println!("serving");
    let mut buf = [0u8; 4096];
    loop {
        if let Ok((n, peer)) = udp.recv_from(&mut buf) {
            if let Some(reply) = answer(&buf[..n]) {
                std::thread::sleep(delay);
                let _ = udp.send_to(&reply, peer);
            }
        }
    }
}

/// One check of `expect-loop`: what to try and the word it must print.
struct Check {
    text: String,
    expected: String,
}

impl Check {
    fn parse(spec: &str) -> Check {
        let (what, expected) = spec.rsplit_once('=').unwrap_or_else(|| panic!("CHECK=WORD expected: {spec}"));
        Check { text: what.to_string(), expected: expected.to_string() }
    }

    fn run(&self) -> String {
        let parts: Vec<&str> = self.text.split(',').collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{s}: {e}"));
        let port = |s: &str| s.parse::<u16>().unwrap_or_else(|e| panic!("{s}: {e}"));
        match parts.as_slice() {
            ["connect", addr, p] => connect(ip(addr), port(p)),
            ["sendto", addr, p] => sendto(ip(addr), port(p)),
            ["resolve-connect", resolver, name, p] => match query(ip(resolver), name, RecordType::A, false) {
                Ok(addrs) if !addrs.is_empty() => connect(addrs[0], port(p)),
                Ok(_) => "no-address".into(),
                Err(e) => format!("resolve-failed:{e}"),
            },
            _ => panic!("unknown check {}", self.text),
        }
    }
}

fn expect_loop(until: &str, checks: &[Check]) -> String {
    let (rounds, stop_file) = match until.split_once('=') {
        Some(("rounds", n)) => (n.parse::<u64>().expect("rounds"), None),
        Some(("stop", path)) => (u64::MAX, Some(std::path::PathBuf::from(path))),
        _ => panic!("rounds=N or stop=FILE expected: {until}"),
    };
    let (mut done, mut attempts, mut wrong) = (0u64, 0u64, 0u64);
    let mut first_wrong = String::new();
    while done < rounds && !stop_file.as_ref().is_some_and(|f| f.exists()) {
        for check in checks {
            let got = check.run();
            attempts += 1;
            if got != check.expected {
                wrong += 1;
                if first_wrong.is_empty() {
                    first_wrong = format!(" first_wrong={}:{}->{got}", check.text, check.expected);
                }
            }
        }
        done += 1;
    }
    format!("rounds={done} attempts={attempts} wrong={wrong}{first_wrong}")
}

fn options(rest: &[String]) -> (RecordType, bool) {
    let record_type = if rest.iter().any(|a| a == "aaaa") { RecordType::AAAA } else { RecordType::A };
    (record_type, rest.iter().any(|a| a == "tcp"))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "in-own-netns") {
        // The rest runs in a network namespace of its own (made as root,
        // loopback up): as a runtime's container would, in its cgroup.
        if let Err(step) = bypass::enter_own_netns() {
            println!("no namespace (step {step})");
            return;
        }
        args.remove(0);
    }
    if args.first().is_some_and(|a| a == "after-ms") {
        // Waits before the rest: long enough for ramd to have looked at
        // this process (its forwarder scan).
        let ms: u64 = args.get(1).and_then(|m| m.parse().ok()).expect("after-ms MS ...");
        std::thread::sleep(Duration::from_millis(ms));
        args.drain(..2);
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("missing argument {i}: {args:?}"));
    let addr = |i: usize| arg(i).parse::<IpAddr>().unwrap_or_else(|e| panic!("{}: {e}", arg(i)));
    let port = |i: usize| arg(i).parse::<u16>().unwrap_or_else(|e| panic!("{}: {e}", arg(i)));
    let out = match arg(0).as_str() {
        "connect" => connect(addr(1), port(2)),
        "sendto" => sendto(addr(1), port(2)),
        "raw-ping" => raw_ping(addr(1)),
        "raw-icmp-reply-after" => bypass::raw_icmp_reply_after(addr(1), arg(2).parse().expect("ms")),
        "udp-echo-pair" => bypass::udp_echo_pair(addr(1), port(2), arg(3).parse().expect("ms")),
        "accept-loop" => accept_loop(addr(1), port(2)),
        "connect-loop" => connect_loop(addr(1), port(2), arg(3).parse().expect("ms")),
        "sink" => sink(addr(1), port(2)),
        "bulk-send" => bulk_send(addr(1), port(2), arg(3).parse().expect("ms")),
        "udp-sink" => udp_sink(addr(1), port(2)),
        "udp-send-loop" => udp_send_loop(addr(1), port(2), arg(3).parse().expect("ms")),
        "connect-until" => connect_until(addr(1), port(2), &arg(3), arg(4).parse().expect("ms")),
        "socket-flood" => socket_flood(addr(1), port(2), arg(3).parse().expect("count")),
        "sendto-from" => sendto_from(arg(1).parse().expect("ADDR:PORT"), addr(2), port(3)),
        "resolve" => {
            let (rt, tcp) = options(&args[3..]);
            match query(addr(1), &arg(2), rt, tcp) {
                Ok(addrs) => addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","),
                Err(e) => format!("resolve-failed:{e}"),
            }
        }
        "resolve-loop" => resolve_loop(addr(1), &arg(2), arg(3).parse().expect("ms")),
        "resolve-connect" => {
            let (rt, tcp) = options(&args[4..]);
            match query(addr(1), &arg(2), rt, tcp) {
                Ok(addrs) if addrs.is_empty() => "no-address".into(),
                // Connect at once: the address must already be learned.
                Ok(addrs) => format!("{} {}", addrs[0], connect(addrs[0], port(3))),
                Err(e) => format!("resolve-failed:{e}"),
            }
        }
        "serve-dns" => {
            let split = args.iter().any(|a| a == "split");
            // nested: binds in this namespace, then moves into a network
            // namespace of its own (its sockets stay where they were made).
            let nested = args.iter().any(|a| a == "nested");
            let delay = args
                .iter()
                .find_map(|a| a.strip_prefix("delay="))
                .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.parse().expect("delay in ms")));
            let parse = |r: &str| {
                let (name, ip) = r.split_once('=').unwrap_or_else(|| panic!("NAME=IP expected: {r}"));
                (name.to_ascii_lowercase(), ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
            };
            let given: Vec<&String> =
                args[3..].iter().filter(|r| *r != "split" && *r != "nested" && !r.starts_with("delay=")).collect();
            // ALIAS>NAME: ALIAS is a CNAME for NAME (answered with NAME's records).
            let cnames: Vec<(String, String)> = given
                .iter()
                .filter_map(|r| r.split_once('>'))
                .map(|(alias, name)| (alias.to_ascii_lowercase(), name.to_ascii_lowercase()))
                .collect();
            let given: Vec<&String> = given.into_iter().filter(|r| !r.contains('>')).collect();
            let records = given.iter().filter(|r| !r.starts_with('+')).map(|r| parse(r)).collect();
            let extra = given.iter().filter_map(|r| r.strip_prefix('+')).map(parse).collect();
            serve_dns(addr(1), arg(2).parse().expect("ttl"), records, extra, cnames, split, delay, nested)
        }
        "raw-query" => {
            let (rt, tcp) = options(&args[3..]);
            let out = args.last().expect("OUT");
            match exchange(addr(1), &arg(2), rt, tcp) {
                Ok(bytes) => {
                    std::fs::write(out, &bytes).unwrap_or_else(|e| panic!("{out}: {e}"));
                    format!("{} bytes", bytes.len())
                }
                Err(e) => format!("resolve-failed:{e}"),
            }
        }
        "listen" => bypass::listen(addr(1), port(2)),
        "udp-connect" => bypass::udp_connect(addr(1), port(2)),
        "inet-on-inet6" => bypass::inet_on_inet6(addr(1), port(2)),
        "tfo-sendto" => bypass::tfo_sendto(addr(1), port(2)),
        "tfo-connect" => bypass::tfo_connect(addr(1), port(2)),
        "mptcp-connect" => bypass::mptcp_connect(addr(1), port(2)),
        "uring-connect" => bypass::uring("connect", addr(1), port(2)),
        "uring-sendmsg" => bypass::uring("sendmsg", addr(1), port(2)),
        "ping-socket" => bypass::ping_socket(addr(1)),
        "raw-tcp" => bypass::raw_tcp(addr(1), port(2)),
        "lsrr-connect" => bypass::lsrr_connect(addr(1), addr(2), port(3), bypass::RouteSet::BeforeConnect),
        "srh-connect" => bypass::srh_connect(addr(1), addr(2), port(3), bypass::RouteSet::BeforeConnect),
        "lsrr-after-connect" => bypass::lsrr_connect(addr(1), addr(2), port(3), bypass::RouteSet::AfterConnect),
        "srh-after-connect" => bypass::srh_connect(addr(1), addr(2), port(3), bypass::RouteSet::AfterConnect),
        "udp-cmsg-connected" => bypass::udp_cmsg(addr(1), port(2), true),
        "udp-cmsg-sendto" => bypass::udp_cmsg(addr(1), port(2), false),
        "serve-dns-stream" => {
            let IpAddr::V4(forged) = addr(2) else { panic!("FORGED must be IPv4") };
            let records = args[3..]
                .iter()
                .map(|r| {
                    let (name, ip) = r.split_once('=').unwrap_or_else(|| panic!("NAME=IP expected: {r}"));
                    (name.to_ascii_lowercase(), ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
                })
                .collect();
            stream::serve(addr(1), forged, records)
        }
        "lsrr-padded" => {
            let hops: Vec<IpAddr> = args[3..args.len() - 1].iter().map(|a| a.parse().expect("hop")).collect();
            bypass::lsrr_padded(addr(1), arg(2).parse().expect("noops"), &hops, port(args.len() - 1))
        }
        "forge-as-resolver" => bypass::forge_as_resolver(addr(1), &arg(2), addr(3), port(4)),
        "packet-forge" => bypass::packet_forge(
            addr(1),
            &arg(2),
            addr(3),
            port(4),
            args.get(5).map_or("127.0.0.1".parse().expect("addr"), |_| addr(5)),
        ),
        "userns-packet-forge" => bypass::userns_packet_forge(addr(1), &arg(2), addr(3), port(4), addr(5)),
        "forge-in-own-netns" => bypass::forge_in_own_netns(addr(1), &arg(2), addr(3), port(4)),
        "raw-name-query" => bypass::raw_name_query(addr(1), &args[2..]),
        "klog-flood" => bypass::klog_flood(addr(1), arg(2).parse().expect("seconds"), arg(3).parse().expect("workers")),
        "raw-icmp6" => bypass::raw_icmp6(addr(1), arg(2).parse().expect("type")),
        "tcp-smuggle" => stream::smuggle(addr(1), &arg(2), arg(3).parse().expect("id")),
        "connect-name" => bypass::connect_name(&arg(1), port(2)),
        "await-udp" => bypass::await_udp(port(1), arg(2).parse().expect("seconds")),
        "forge-answer" => bypass::forge_answer(addr(1), port(2), addr(3), port(4), &arg(5), addr(6)),
        "hold-tcp" => bypass::hold_tcp(addr(1), port(2), arg(3).parse().expect("seconds")),
        "expect-loop" => {
            let checks: Vec<Check> = args[2..].iter().map(|c| Check::parse(c)).collect();
            expect_loop(&arg(1), &checks)
        }
        "hold" => {
            std::thread::sleep(Duration::from_secs(arg(1).parse().unwrap_or(60)));
            "held".into()
        }
        other => panic!("unknown command {other}"),
    };
    println!("{out}");
}
