//! The lab frame set the count tests send: sizes 60..1514, IPv4/IPv6/ARP, two VLAN 42
//! frames and one VLAN 7 frame.

use etherparse::PacketBuilder;
use nsring_capture::Sender;
use nsring_netns::NetNs;

pub const SRC: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x01];
pub const DST: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x02];

pub fn udp4(len: usize, dport: u16) -> Vec<u8> {
    let payload = vec![0x5a; len - 14 - 20 - 8];
    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

pub fn udp6(len: usize, dport: u16) -> Vec<u8> {
    let payload = vec![0x6a; len - 14 - 40 - 8];
    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv6(
            [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(40000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

pub fn vlan_udp4(len: usize, vid: u16, dport: u16) -> Vec<u8> {
    let payload = vec![0x7a; len - 18 - 20 - 8];
    let b = PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

pub fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2]);
    f.resize(60, 0);
    f
}

/// The mixed set.
pub fn frames() -> Vec<Vec<u8>> {
    vec![
        udp4(60, 9),
        udp4(128, 9),
        udp4(1514, 9),
        udp4(1200, 53),
        udp4(400, 10),
        udp6(86, 9),
        udp6(1100, 9),
        arp(),
        arp(),
        vlan_udp4(64, 42, 9),
        vlan_udp4(1200, 42, 53),
        vlan_udp4(100, 7, 9),
    ]
}

/// What the set holds per filter, as a live capture counts it (the tag of a VLAN frame is
/// taken out, so 'udp port 9' also matches the two tagged port-9 frames).
pub const FILTERS: &[(&str, u64)] = &[
    ("udp port 9", 7),
    ("vlan", 3),
    ("vlan 42 and udp", 2),
    ("not arp", 10),
    ("greater 1000", 4),
];

/// Sends `frames` from `iface` of `ns`.
pub fn send(ns: &NetNs, iface: &str, frames: &[Vec<u8>]) {
    let s = Sender::open(ns, iface).unwrap();
    for f in frames {
        s.send(f).unwrap();
    }
}
