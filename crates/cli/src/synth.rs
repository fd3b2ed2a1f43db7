//! Synthetic frames for `nsring send`: Ethernet (optionally 802.1Q) / IPv4 or IPv6 /
//! UDP, TCP or ICMP echo, built with etherparse (checksums included), in a pool that
//! cycles through the flow variants (source IPs × destination IPs × ports) so the send
//! loop only copies.

use std::net::IpAddr;

use etherparse::{IpHeaders, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, VlanId};

/// The Ethernet minimum frame length without FCS.
pub const MIN_FRAME: usize = 60;
/// Frames in a pool at most, whatever the number of flow variants (the pool then covers
/// the first ones); also bounded to 64 MiB of frames.
pub const MAX_POOL: usize = 65_536;

/// The transport of synthetic frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Udp,
    Tcp,
    Icmp,
}

impl Proto {
    fn name(self, v6: bool) -> &'static str {
        match (self, v6) {
            (Proto::Udp, _) => "UDP",
            (Proto::Tcp, _) => "TCP",
            (Proto::Icmp, false) => "ICMP",
            (Proto::Icmp, true) => "ICMPv6",
        }
    }

    fn header_len(self) -> usize {
        match self {
            Proto::Udp | Proto::Icmp => 8,
            Proto::Tcp => 20,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Frame length without FCS, tag included.
    pub len: usize,
    pub proto: Proto,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// First source and destination address (same family).
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    /// Number of consecutive source / destination addresses.
    pub src_count: u32,
    pub dst_count: u32,
    /// Inclusive range of ports (source and destination alike; the ICMP echo id).
    pub ports: (u16, u16),
    pub vlan: Option<u16>,
    pub random_payload: bool,
}

impl Spec {
    pub fn is_v6(&self) -> bool {
        self.src_ip.is_ipv6()
    }

    /// Bytes of headers in front of the payload.
    pub fn header_len(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 }
            + if self.is_v6() { 40 } else { 20 }
            + self.proto.header_len()
    }

    /// "Ethernet/802.1Q/IPv6/TCP".
    pub fn describe(&self) -> String {
        format!(
            "Ethernet{}/{}/{}",
            if self.vlan.is_some() { "/802.1Q" } else { "" },
            if self.is_v6() { "IPv6" } else { "IPv4" },
            self.proto.name(self.is_v6())
        )
    }

    /// The number of distinct flows (source IP × destination IP × port).
    pub fn variants(&self) -> u64 {
        u64::from(self.src_count)
            * u64::from(self.dst_count)
            * (u64::from(self.ports.1 - self.ports.0) + 1)
    }

    /// Checks what does not need the interface: families, counts, the header room.
    pub fn check(&self) -> Result<(), String> {
        if self.src_ip.is_ipv6() != self.dst_ip.is_ipv6() {
            return Err(format!(
                "source {} and destination {} are not of the same IP version",
                self.src_ip, self.dst_ip
            ));
        }
        if self.len < MIN_FRAME {
            return Err(format!(
                "frame length {} is below {MIN_FRAME}, the Ethernet minimum without FCS",
                self.len
            ));
        }
        if self.len < self.header_len() {
            return Err(format!(
                "frame length {} cannot hold the {} bytes of {} headers; use -l {} or more",
                self.len,
                self.header_len(),
                self.describe(),
                self.header_len()
            ));
        }
        if self.ports.0 > self.ports.1 {
            return Err(format!(
                "port range {}-{} is empty",
                self.ports.0, self.ports.1
            ));
        }
        if self.src_count == 0 || self.dst_count == 0 {
            return Err("address counts (--src-count, --dst-count) must be at least 1".into());
        }
        Ok(())
    }
}

/// Address `base + i` in its family (wrapping).
fn nth(base: IpAddr, i: u32) -> IpAddr {
    match base {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(i).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(u128::from(i)).into()),
    }
}

/// xorshift64*: a fast, seedable generator for payload bytes (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Builds frame `i` of the pool (flow variant `i`, sequence number `i`).
pub fn build(spec: &Spec, i: u64, rng: &mut Rng) -> Result<Vec<u8>, String> {
    let nports = u64::from(spec.ports.1 - spec.ports.0) + 1;
    let b = u64::from(spec.src_count);
    let c = u64::from(spec.dst_count);
    let v = i % spec.variants().max(1);
    let src = nth(spec.src_ip, (v % b) as u32);
    let dst = nth(spec.dst_ip, ((v / b) % c) as u32);
    let port = spec.ports.0 + ((v / (b * c)) % nports) as u16;
    let seq = i as u32;

    let ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => IpHeaders::Ipv4(
            Ipv4Header::new(0, 64, IpNumber::UDP, s.octets(), d.octets())
                .map_err(|e| e.to_string())?,
            Default::default(),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            },
            Default::default(),
        ),
        _ => return Err("mixed IP versions".into()),
    };
    let eth = PacketBuilder::ethernet2(spec.src_mac, spec.dst_mac);
    let step = match spec.vlan {
        Some(id) => eth
            .single_vlan(VlanId::try_new(id).map_err(|e| e.to_string())?)
            .ip(ip),
        None => eth.ip(ip),
    };
    let payload_len = spec.len - spec.header_len();
    let mut payload = vec![0u8; payload_len];
    if spec.random_payload {
        rng.fill(&mut payload);
    } else {
        // the sequence number first, then a recognisable pattern
        for (k, byte) in payload.iter_mut().enumerate() {
            *byte = (k % 251) as u8;
        }
        let n = payload_len.min(4);
        payload[..n].copy_from_slice(&seq.to_be_bytes()[..n]);
    }
    let mut out = Vec::with_capacity(spec.len);
    let r = match (spec.proto, spec.is_v6()) {
        (Proto::Udp, _) => step.udp(port, port).write(&mut out, &payload),
        (Proto::Tcp, _) => step
            .tcp(port, port, seq, 65535)
            .ack(0)
            .write(&mut out, &payload),
        (Proto::Icmp, false) => step
            .icmpv4_echo_request(port, seq as u16)
            .write(&mut out, &payload),
        (Proto::Icmp, true) => step
            .icmpv6_echo_request(port, seq as u16)
            .write(&mut out, &payload),
    };
    r.map_err(|e| format!("cannot build a {} frame: {e}", spec.describe()))?;
    debug_assert_eq!(out.len(), spec.len);
    Ok(out)
}

/// The pool: one frame per flow variant (at most [`MAX_POOL`] and 64 MiB), at least 256
/// frames with random payloads so they differ.
pub fn pool(spec: &Spec, seed: u64) -> Result<Vec<Vec<u8>>, String> {
    spec.check()?;
    let by_mem = ((64usize << 20) / spec.len.max(1)).max(1);
    let mut n = spec.variants().min(MAX_POOL as u64) as usize;
    if spec.random_payload {
        n = n.max(256);
    }
    let n = n.min(by_mem).max(1);
    let mut rng = Rng::new(seed);
    (0..n as u64).map(|i| build(spec, i, &mut rng)).collect()
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("'{s}' is not a MAC address like 02:00:5e:00:00:01"));
    }
    for (m, p) in mac.iter_mut().zip(&parts) {
        *m = (p.len() == 2)
            .then(|| u8::from_str_radix(p, 16).ok())
            .flatten()
            .ok_or_else(|| format!("'{s}' is not a MAC address like 02:00:5e:00:00:01"))?;
    }
    Ok(mac)
}

/// Parses `A-B` or `A` (a single port).
pub fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("'{s}' is not a port or a range like 1000-2000");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(format!(
            "port range '{s}' is empty (the first port is larger)"
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec() -> Spec {
        Spec {
            len: 60,
            proto: Proto::Udp,
            src_mac: [2, 0, 0x5e, 0, 0, 1],
            dst_mac: [2, 0, 0x5e, 0, 0, 2],
            src_ip: "198.18.0.1".parse().unwrap(),
            dst_ip: "198.18.0.2".parse().unwrap(),
            src_count: 1,
            dst_count: 1,
            ports: (9, 9),
            vlan: None,
            random_payload: false,
        }
    }

    #[test]
    fn every_kind_has_the_exact_length_and_parses() {
        for proto in [Proto::Udp, Proto::Tcp, Proto::Icmp] {
            for v6 in [false, true] {
                for vlan in [None, Some(42)] {
                    for len in [100usize, 1514] {
                        let mut s = spec();
                        s.proto = proto;
                        s.len = len;
                        s.vlan = vlan;
                        if v6 {
                            s.src_ip = "2001:2::1".parse().unwrap();
                            s.dst_ip = "2001:2::2".parse().unwrap();
                        }
                        let f = build(&s, 7, &mut Rng::new(1)).unwrap();
                        assert_eq!(f.len(), len, "{}", s.describe());
                        let p = SlicedPacket::from_ethernet(&f).unwrap();
                        assert_eq!(p.vlan().is_some(), vlan.is_some());
                        match p.net {
                            Some(NetSlice::Ipv4(_)) => assert!(!v6),
                            Some(NetSlice::Ipv6(_)) => assert!(v6),
                            _ => panic!("no IP"),
                        }
                        let t = p.transport.expect("transport");
                        match (proto, t) {
                            (Proto::Udp, TransportSlice::Udp(u)) => {
                                assert_eq!(u.destination_port(), 9)
                            }
                            (Proto::Tcp, TransportSlice::Tcp(_)) => {}
                            (Proto::Icmp, TransportSlice::Icmpv4(_)) => assert!(!v6),
                            (Proto::Icmp, TransportSlice::Icmpv6(_)) => assert!(v6),
                            (p, t) => panic!("{p:?} gave {t:?}"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_pool_cycles_through_flows() {
        let mut s = spec();
        s.src_count = 3;
        s.dst_count = 2;
        s.ports = (1000, 1001);
        let p = pool(&s, 1).unwrap();
        assert_eq!(p.len(), 12);
        let flows: std::collections::BTreeSet<(Vec<u8>, Vec<u8>, Vec<u8>)> = p
            .iter()
            .map(|f| (f[26..30].to_vec(), f[30..34].to_vec(), f[36..38].to_vec()))
            .collect();
        assert_eq!(flows.len(), 12);
        assert!(p.iter().any(|f| f[26..30] == [198, 18, 0, 3]));
        assert!(p.iter().any(|f| f[30..34] == [198, 18, 0, 3]));
    }

    #[test]
    fn bad_specs_say_why() {
        let mut s = spec();
        s.len = 59;
        assert!(s.check().unwrap_err().contains("Ethernet minimum"));
        s.len = 60;
        s.src_ip = "2001:2::1".parse().unwrap();
        assert!(s.check().unwrap_err().contains("same IP version"));
        s.dst_ip = "2001:2::2".parse().unwrap();
        s.proto = Proto::Tcp;
        assert!(s.check().unwrap_err().contains("use -l 74"));
        assert!(parse_mac("02:00:5e:00:00").is_err());
        assert_eq!(parse_mac("02:00:5e:00:00:0A").unwrap()[5], 10);
        assert_eq!(parse_ports("5-7").unwrap(), (5, 7));
        assert_eq!(parse_ports("53").unwrap(), (53, 53));
        assert!(parse_ports("7-5").is_err());
    }

    #[test]
    fn random_payloads_differ() {
        let mut s = spec();
        s.len = 200;
        s.random_payload = true;
        let p = pool(&s, 42).unwrap();
        assert_eq!(p.len(), 256);
        assert_ne!(p[0][42..], p[1][42..]);
    }
}
