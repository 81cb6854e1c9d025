//! DNS message handling: decide, for one query from a client of one network, whether it is
//! answered from that network's records, forwarded upstream, refused or dropped, and build the
//! answer. No sockets here, so all of it is unit-tested without root.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::{RData, A, AAAA, OPT, PTR};
use simple_dns::{
    Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, OPCODE, QCLASS, QTYPE, RCODE, TYPE,
};

use super::table::NetTable;

/// Time-to-live of local answers: short, since containers come and go.
pub const TTL: u32 = 5;
/// Largest UDP answer without EDNS (RFC 1035).
pub const UDP_PLAIN_MAX: usize = 512;
/// Largest UDP answer we send to an EDNS client (the DNS flag day 2020 default).
pub const UDP_EDNS_MAX: usize = 1232;
/// Largest message over TCP (the 2-byte length prefix).
pub const TCP_MAX: usize = 65535;

/// How the query reached us (decides the size limit of the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: relay the query to the host's resolvers as it is.
    Forward,
    /// Not worth an answer (a response, or too short to carry an id).
    Drop,
}

/// Handles one query from a client already known to belong to `table`'s network.
pub fn handle(query: &[u8], transport: Transport, table: &mut NetTable) -> Outcome {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Outcome::Drop;
    }
    let packet = match Packet::parse(query) {
        Ok(packet) => packet,
        // simple-dns rejects query types it does not know; none of ours is one of those, so the
        // upstream resolver gets to judge the message.
        Err(_) => return Outcome::Forward,
    };
    if packet.opcode() != OPCODE::StandardQuery {
        return Outcome::Reply(error_reply(query, RCODE::NotImplemented));
    }
    let [question] = packet.questions.as_slice() else {
        return Outcome::Reply(error_reply(query, RCODE::FormatError));
    };
    if !matches!(question.qclass, QCLASS::CLASS(CLASS::IN) | QCLASS::ANY) {
        return Outcome::Forward;
    }
    let name = question.qname.to_string().to_ascii_lowercase();
    let limit = size_limit(&packet, transport);

    if question.qtype == QTYPE::TYPE(TYPE::PTR) {
        let Some(ip) = parse_reverse_name(&name) else {
            return Outcome::Forward;
        };
        if !table.owns_address(ip) {
            return Outcome::Forward;
        }
        return Outcome::Reply(match table.reverse(ip) {
            Some(target) => {
                let target = target.to_owned();
                let rdata = RData::PTR(PTR(Name::new_unchecked(&target)));
                build_answer(&packet, question, vec![rdata], RCODE::NoError, limit)
            }
            None => build_answer(&packet, question, Vec::new(), RCODE::NameError, limit),
        });
    }

    let want_v4 = matches!(question.qtype, QTYPE::TYPE(TYPE::A) | QTYPE::ANY);
    let want_v6 = matches!(question.qtype, QTYPE::TYPE(TYPE::AAAA) | QTYPE::ANY);
    let Some(entry) = table.lookup_rotating(&name, want_v4, want_v6) else {
        return Outcome::Forward;
    };
    let mut rdatas = Vec::new();
    if want_v4 {
        rdatas.extend(entry.v4.iter().map(|ip| {
            RData::A(A {
                address: u32::from(*ip),
            })
        }));
    }
    if want_v6 {
        rdatas.extend(entry.v6.iter().map(|ip| {
            RData::AAAA(AAAA {
                address: u128::from(*ip),
            })
        }));
    }
    // A known name without records of the asked type is NODATA (NOERROR, no answer), never
    // NXDOMAIN: a resolver that gets NXDOMAIN for AAAA drops the A answer too.
    Outcome::Reply(build_answer(
        &packet,
        question,
        rdatas,
        RCODE::NoError,
        limit,
    ))
}

/// The largest answer this client takes over this transport.
fn size_limit(packet: &Packet<'_>, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => TCP_MAX,
        Transport::Udp => match packet.opt() {
            Some(opt) => usize::from(opt.udp_packet_size).clamp(UDP_PLAIN_MAX, UDP_EDNS_MAX),
            None => UDP_PLAIN_MAX,
        },
    }
}

/// An authoritative answer; drops records (and sets TC) until it fits `limit`.
fn build_answer(
    query: &Packet<'_>,
    question: &Question<'_>,
    mut rdatas: Vec<RData<'_>>,
    rcode: RCODE,
    limit: usize,
) -> Vec<u8> {
    let mut truncated = false;
    loop {
        let mut reply = Packet::new_reply(query.id());
        reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER | PacketFlag::RECURSION_AVAILABLE);
        if query.has_flags(PacketFlag::RECURSION_DESIRED) {
            reply.set_flags(PacketFlag::RECURSION_DESIRED);
        }
        if truncated {
            reply.set_flags(PacketFlag::TRUNCATION);
        }
        *reply.rcode_mut() = rcode;
        if query.opt().is_some() {
            *reply.opt_mut() = Some(OPT {
                opt_codes: Vec::new(),
                udp_packet_size: UDP_EDNS_MAX as u16,
                version: 0,
            });
        }
        reply.questions.push(question.clone());
        for rdata in &rdatas {
            reply.answers.push(ResourceRecord::new(
                question.qname.clone(),
                CLASS::IN,
                TTL,
                rdata.clone(),
            ));
        }
        match reply.build_bytes_vec_compressed() {
            Ok(bytes) if bytes.len() <= limit || rdatas.is_empty() => return bytes,
            Ok(_) => {
                // Keep as many whole records as fit; the client may retry over TCP for all.
                rdatas.pop();
                truncated = true;
            }
            Err(_) => return error_reply_for(query.id(), RCODE::ServerFailure),
        }
    }
}

/// A reply carrying only `rcode`, built from the raw query so it works for messages no parser
/// accepts: same id, opcode and RD bit, the question echoed when it can be delimited.
pub fn error_reply(query: &[u8], rcode: RCODE) -> Vec<u8> {
    if query.len() < 12 {
        return Vec::new();
    }
    let opcode_rd = query[2] & 0x79; // opcode bits and RD
    let question = question_end(query).map(|end| &query[12..end]);
    let mut reply = Vec::with_capacity(12 + question.map_or(0, <[u8]>::len));
    reply.extend_from_slice(&query[..2]);
    reply.push(0x80 | opcode_rd);
    reply.push(0x80 | (rcode as u8 & 0x0f));
    reply.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
    if let Some(question) = question {
        reply.extend_from_slice(question);
    }
    reply
}

fn error_reply_for(id: u16, rcode: RCODE) -> Vec<u8> {
    let mut header = vec![0u8; 12];
    header[..2].copy_from_slice(&id.to_be_bytes());
    header[2] = 0x80;
    header[3] = 0x80 | (rcode as u8 & 0x0f);
    header
}

/// End offset of the first question (name + type + class), when QDCOUNT ≥ 1 and it is complete.
fn question_end(query: &[u8]) -> Option<usize> {
    if u16::from_be_bytes([query[4], query[5]]) == 0 {
        return None;
    }
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None; // a compression pointer in a question: not worth echoing
        }
        at += 1 + len;
    }
    let end = at + 4;
    (end <= query.len()).then_some(end)
}

/// The address a reverse-lookup name stands for (`4.3.2.1.in-addr.arpa`, nibbles + `ip6.arpa`).
pub fn parse_reverse_name(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        for (i, part) in parts.iter().rev().enumerate() {
            octets[i] = part.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(rest) = name.strip_suffix(".ip6.arpa") {
        let nibbles: Vec<&str> = rest.split('.').collect();
        if nibbles.len() != 32 {
            return None;
        }
        let mut value: u128 = 0;
        for nibble in nibbles.iter().rev() {
            if nibble.len() != 1 {
                return None;
            }
            value = (value << 4) | u128::from(u8::from_str_radix(nibble, 16).ok()?);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(value)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::store::{Endpoint, NetSubnet, NetworkRecord};

    fn table(replicas: usize) -> NetTable {
        let endpoints = (0..replicas)
            .map(|i| Endpoint {
                id: format!("c{i}"),
                names: vec![format!("p-web-{}", i + 1), "web".into()],
                ips: vec![IpAddr::V4(Ipv4Addr::new(
                    10,
                    9,
                    (i / 200) as u8,
                    (i % 200 + 2) as u8,
                ))],
                dns_servers: Vec::new(),
            })
            .collect();
        NetTable::build(
            &NetworkRecord {
                network: "n".into(),
                subnets: vec![NetSubnet {
                    gateway: "10.9.0.1".parse().expect("lit"),
                    subnet: "10.9.0.0/16".parse().expect("lit"),
                }],
                endpoints,
            },
            None,
        )
    }

    fn query(name: &str, qtype: TYPE, edns: bool) -> Vec<u8> {
        let mut packet = Packet::new_query(0x4242);
        packet.set_flags(PacketFlag::RECURSION_DESIRED);
        packet.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(qtype),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        if edns {
            *packet.opt_mut() = Some(OPT {
                opt_codes: Vec::new(),
                udp_packet_size: 4096,
                version: 0,
            });
        }
        packet.build_bytes_vec().expect("query builds")
    }

    fn reply(outcome: Outcome) -> Vec<u8> {
        match outcome {
            Outcome::Reply(bytes) => bytes,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn addresses(bytes: &[u8]) -> Vec<IpAddr> {
        let packet = Packet::parse(bytes).expect("reply parses");
        packet
            .answers
            .iter()
            .filter_map(|rr| match &rr.rdata {
                RData::A(a) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
                RData::AAAA(a) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_query_for_a_known_name_is_answered_authoritatively() {
        let mut t = table(1);
        let bytes = reply(handle(
            &query("P-Web-1", TYPE::A, false),
            Transport::Udp,
            &mut t,
        ));
        let packet = Packet::parse(&bytes).expect("parses");
        assert_eq!(packet.id(), 0x4242);
        assert_eq!(packet.rcode(), RCODE::NoError);
        assert!(packet.has_flags(PacketFlag::RESPONSE | PacketFlag::AUTHORITATIVE_ANSWER));
        assert!(packet.has_flags(PacketFlag::RECURSION_DESIRED));
        assert_eq!(
            addresses(&bytes),
            vec![IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2))]
        );
        assert_eq!(packet.answers[0].ttl, TTL);
    }

    #[test]
    fn aaaa_for_a_v4_only_name_is_nodata_not_nxdomain() {
        let mut t = table(1);
        let bytes = reply(handle(
            &query("web", TYPE::AAAA, false),
            Transport::Udp,
            &mut t,
        ));
        let packet = Packet::parse(&bytes).expect("parses");
        assert_eq!(packet.rcode(), RCODE::NoError);
        assert!(packet.answers.is_empty());
        let mx = reply(handle(
            &query("web", TYPE::MX, false),
            Transport::Udp,
            &mut t,
        ));
        assert!(Packet::parse(&mx).expect("parses").answers.is_empty());
    }

    #[test]
    fn unknown_names_are_forwarded() {
        let mut t = table(1);
        assert_eq!(
            handle(
                &query("example.org", TYPE::A, false),
                Transport::Udp,
                &mut t
            ),
            Outcome::Forward
        );
        // A PTR outside our subnets goes upstream too.
        assert_eq!(
            handle(
                &query("1.1.168.192.in-addr.arpa", TYPE::PTR, false),
                Transport::Udp,
                &mut t
            ),
            Outcome::Forward
        );
    }

    #[test]
    fn scaled_name_answers_every_replica_in_turn() {
        let mut t = table(3);
        let mut firsts = Vec::new();
        for _ in 0..3 {
            let bytes = reply(handle(
                &query("web", TYPE::A, false),
                Transport::Udp,
                &mut t,
            ));
            let ips = addresses(&bytes);
            assert_eq!(ips.len(), 3);
            firsts.push(ips[0]);
        }
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), 3, "each replica comes first once");
    }

    #[test]
    fn too_many_replicas_for_udp_truncate_but_fit_over_tcp() {
        let mut t = table(100);
        let bytes = reply(handle(
            &query("web", TYPE::A, false),
            Transport::Udp,
            &mut t,
        ));
        assert!(bytes.len() <= UDP_PLAIN_MAX);
        let packet = Packet::parse(&bytes).expect("parses");
        assert!(packet.has_flags(PacketFlag::TRUNCATION));
        assert!(!packet.answers.is_empty() && packet.answers.len() < 100);
        let edns = reply(handle(&query("web", TYPE::A, true), Transport::Udp, &mut t));
        assert!(edns.len() <= UDP_EDNS_MAX && edns.len() > UDP_PLAIN_MAX);
        let tcp = reply(handle(
            &query("web", TYPE::A, false),
            Transport::Tcp,
            &mut t,
        ));
        assert_eq!(addresses(&tcp).len(), 100);
        assert!(!Packet::parse(&tcp)
            .expect("parses")
            .has_flags(PacketFlag::TRUNCATION));
    }

    #[test]
    fn ptr_inside_the_subnet_is_answered_locally() {
        let mut t = table(2);
        let bytes = reply(handle(
            &query("3.0.9.10.in-addr.arpa", TYPE::PTR, false),
            Transport::Udp,
            &mut t,
        ));
        let packet = Packet::parse(&bytes).expect("parses");
        match &packet.answers[0].rdata {
            RData::PTR(ptr) => assert_eq!(ptr.0.to_string(), "p-web-2"),
            other => panic!("not a PTR: {other:?}"),
        }
        let missing = reply(handle(
            &query("99.0.9.10.in-addr.arpa", TYPE::PTR, false),
            Transport::Udp,
            &mut t,
        ));
        assert_eq!(
            Packet::parse(&missing).expect("parses").rcode(),
            RCODE::NameError
        );
    }

    #[test]
    fn malformed_and_odd_messages() {
        let mut t = table(1);
        assert_eq!(handle(&[1, 2, 3], Transport::Udp, &mut t), Outcome::Drop);
        // A response is never answered (no reflection loops).
        let mut response = query("web", TYPE::A, false);
        response[2] |= 0x80;
        assert_eq!(handle(&response, Transport::Udp, &mut t), Outcome::Drop);
        // Not a standard query.
        let mut notify = query("web", TYPE::A, false);
        notify[2] = (notify[2] & 0x87) | (4 << 3);
        let bytes = reply(handle(&notify, Transport::Udp, &mut t));
        assert_eq!(bytes[3] & 0x0f, RCODE::NotImplemented as u8);
        assert_eq!(&bytes[..2], &[0x42, 0x42]);
    }

    #[test]
    fn error_reply_echoes_the_question() {
        let q = query("web", TYPE::A, false);
        let bytes = error_reply(&q, RCODE::Refused);
        let packet = Packet::parse(&bytes).expect("parses");
        assert_eq!(packet.rcode(), RCODE::Refused);
        assert_eq!(packet.questions.len(), 1);
        assert_eq!(packet.questions[0].qname.to_string(), "web");
        assert!(error_reply(&[0; 5], RCODE::Refused).is_empty());
    }

    #[test]
    fn reverse_names_parse() {
        assert_eq!(
            parse_reverse_name("4.3.2.1.in-addr.arpa"),
            Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(
            parse_reverse_name(v6),
            Some("fd00::1".parse().expect("lit"))
        );
        assert_eq!(parse_reverse_name("1.2.3.in-addr.arpa"), None);
        assert_eq!(parse_reverse_name("x.2.3.4.in-addr.arpa"), None);
    }
}
