//! libpcap's reading rules, on files made to hit each one: every file is read by nsring
//! and by libpcap and the two must agree packet for packet, and on where an error stops
//! the reading.

use std::path::Path;

use crate::common::{TempDir, udp_frame};
use crate::reference::{self, Pkt, Read};

/// A classic pcap file under construction.
struct Pcap {
    big: bool,
    hdr_extra: usize,
    bytes: Vec<u8>,
}

impl Pcap {
    fn new(magic: u32, big: bool, version: (u16, u16), snaplen: u32, linktype: u32) -> Self {
        let mut p = Pcap {
            big,
            hdr_extra: if magic == 0xa1b2_cd34 { 8 } else { 0 },
            bytes: Vec::new(),
        };
        p.u32(magic);
        p.u16(version.0);
        p.u16(version.1);
        p.u32(0);
        p.u32(0);
        p.u32(snaplen);
        p.u32(linktype);
        p
    }

    fn eth(snaplen: u32) -> Self {
        Pcap::new(0xa1b2_c3d4, false, (2, 4), snaplen, 1)
    }

    fn u16(&mut self, v: u16) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }

    fn u32(&mut self, v: u32) {
        let b = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }

    /// A record with the given header fields and `data` (whose length may differ).
    fn raw(mut self, secs: u32, frac: u32, caplen: u32, len: u32, data: &[u8]) -> Self {
        self.u32(secs);
        self.u32(frac);
        self.u32(caplen);
        self.u32(len);
        self.bytes.extend(std::iter::repeat_n(0xee, self.hdr_extra));
        self.bytes.extend_from_slice(data);
        self
    }

    /// A whole frame of `n` bytes, captured in full.
    fn frame(self, secs: u32, n: usize, seq: u16) -> Self {
        let f = udp_frame(n.max(42), seq);
        self.raw(secs, 500, f.len() as u32, f.len() as u32, &f)
    }
}

/// Both readers on one file; they must agree. Returns what they read.
fn agree(dir: &Path, name: &str, file: &[u8]) -> Read {
    let path = dir.join(name);
    std::fs::write(&path, file).unwrap();
    let ours = reference::nsring(&path);
    let theirs = reference::libpcap(&path);
    reference::assert_same(name, &ours.pkts, &theirs.pkts);
    assert_eq!(
        ours.error.is_some(),
        theirs.error.is_some(),
        "{name}: nsring ended with {:?}, libpcap with {:?}",
        ours.error,
        theirs.error
    );
    ours
}

fn lens(r: &Read) -> Vec<(u32, u32)> {
    r.pkts.iter().map(|p| (p.caplen, p.len)).collect()
}

#[test]
fn caplen_above_snaplen_is_truncated_and_reading_goes_on() {
    let dir = TempDir::new("rules-trunc");
    for big in [false, true] {
        let f = Pcap::new(0xa1b2_c3d4, big, (2, 4), 60, 1)
            .frame(1, 100, 1)
            .frame(2, 60, 2)
            .frame(3, 1514, 3)
            .frame(4, 42, 4);
        let r = agree(dir.path(), &format!("trunc-{big}.pcap"), &f.bytes);
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(lens(&r), [(60, 100), (60, 60), (60, 1514), (42, 42)]);
        assert_eq!(r.pkts[2].data, udp_frame(1514, 3)[..60]);
    }
}

#[test]
fn caplen_limits_follow_the_link_type() {
    let dir = TempDir::new("rules-max");
    // Snapshot length 0 and above the maximum both mean the maximum (256 KiB).
    for snaplen in [0, u32::MAX] {
        let big = vec![7u8; 262_144];
        let f = Pcap::eth(snaplen)
            .frame(1, 64, 1)
            .raw(2, 0, 262_144, 262_144, &big)
            .frame(3, 64, 3);
        let r = agree(dir.path(), &format!("max-ok-{snaplen}.pcap"), &f.bytes);
        assert_eq!(lens(&r), [(64, 64), (262_144, 262_144), (64, 64)]);
        // One byte more is an error, after the packets before it.
        let big = vec![7u8; 262_145];
        let f = Pcap::eth(snaplen)
            .frame(1, 64, 1)
            .raw(2, 0, 262_145, 262_145, &big)
            .frame(3, 64, 3);
        let r = agree(dir.path(), &format!("max-over-{snaplen}.pcap"), &f.bytes);
        assert_eq!(r.pkts.len(), 1);
        let e = r.error.unwrap();
        assert!(
            e.contains("captured length 262145, above the maximum of 262144"),
            "{e}"
        );
        assert!(e.contains("at byte 104"), "{e}");
    }
    // D-Bus messages may be up to 128 MiB.
    let msg = vec![1u8; 300_000];
    let f = Pcap::new(0xa1b2_c3d4, false, (2, 4), 0, 231).raw(1, 0, 300_000, 300_000, &msg);
    let r = agree(dir.path(), "dbus.pcap", &f.bytes);
    assert_eq!(lens(&r), [(300_000, 300_000)]);
    // A lying caplen far above any maximum: an error, not an allocation.
    let f = Pcap::eth(0)
        .frame(1, 64, 1)
        .raw(2, 0, u32::MAX, 64, &[0; 64]);
    let r = agree(dir.path(), "huge.pcap", &f.bytes);
    assert_eq!(r.pkts.len(), 1);
}

#[test]
fn seconds_are_unsigned() {
    let dir = TempDir::new("rules-secs");
    let f = Pcap::eth(0)
        .frame(0x7fff_ffff, 64, 1)
        .frame(0x8000_0000, 64, 2)
        .frame(u32::MAX, 64, 3);
    let r = agree(dir.path(), "secs.pcap", &f.bytes);
    let secs: Vec<i128> = r.pkts.iter().map(|p| p.ts_ns / 1_000_000_000).collect();
    // 2038-01-19, 2038-01-19 (one second later), 2106-02-07: never before 1970.
    assert_eq!(secs, [0x7fff_ffff, 0x8000_0000, 0xffff_ffff]);
    // tshark (Wireshark 4) reads them unsigned too.
    let path = dir.path().join("secs.pcap");
    let t = reference::tshark(&path).expect("tshark reads it");
    reference::assert_same("secs.pcap vs tshark", &r.pkts, &t);
}

#[test]
fn old_versions_swap_the_length_fields() {
    let dir = TempDir::new("rules-ver");
    let f = udp_frame(80, 1);
    for (version, name) in [((2, 0), "2.0"), ((2, 2), "2.2"), ((543, 0), "543.0")] {
        // Before 2.3 the record says wire length first, then captured length.
        let file = Pcap::new(0xa1b2_c3d4, false, version, 0, 1)
            .raw(1, 0, 100, 80, &f)
            .raw(2, 0, 80, 80, &f);
        let r = agree(dir.path(), &format!("v{name}.pcap"), &file.bytes);
        assert_eq!(lens(&r), [(80, 100), (80, 80)], "{name}");
    }
    // 2.3: swapped only where the captured length exceeds the wire length.
    let file = Pcap::new(0xa1b2_c3d4, false, (2, 3), 0, 1)
        .raw(1, 0, 80, 100, &f)
        .raw(2, 0, 100, 80, &f);
    let r = agree(dir.path(), "v2.3.pcap", &file.bytes);
    assert_eq!(lens(&r), [(80, 100), (80, 100)]);
    // Unknown versions are refused by both.
    for version in [(1, 0), (3, 0)] {
        let file = Pcap::new(0xa1b2_c3d4, false, version, 0, 1).frame(1, 64, 1);
        let r = agree(dir.path(), "vbad.pcap", &file.bytes);
        assert!(r.error.unwrap().contains("not supported"));
    }
}

#[test]
fn modified_format_has_longer_record_headers() {
    let dir = TempDir::new("rules-mod");
    for big in [false, true] {
        // Ethernet: the snapshot length counts 14 bytes more (a faked Ethernet header).
        let f = Pcap::new(0xa1b2_cd34, big, (2, 4), 60, 1)
            .frame(1, 74, 1)
            .frame(2, 100, 2)
            .frame(3, 42, 3);
        let r = agree(dir.path(), &format!("mod-{big}.pcap"), &f.bytes);
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(lens(&r), [(74, 74), (74, 100), (42, 42)]);
    }
}

#[test]
fn odd_fields_pass_through() {
    let dir = TempDir::new("rules-odd");
    let f = udp_frame(64, 1);
    // Microseconds of a million or more, captured longer than on the wire, zero bytes.
    let file = Pcap::eth(0)
        .raw(5, 1_500_000, 64, 64, &f)
        .raw(6, 0, 64, 10, &f)
        .raw(7, 0, 0, 64, &[]);
    let r = agree(dir.path(), "odd.pcap", &file.bytes);
    assert_eq!(r.pkts[0].ts_ns, 6_500_000_000);
    assert_eq!(lens(&r), [(64, 64), (64, 10), (0, 64)]);
}

#[test]
fn truncated_input_is_still_an_error_with_its_offset() {
    let dir = TempDir::new("rules-cut");
    let whole = Pcap::eth(60).frame(1, 64, 1).frame(2, 100, 2).bytes;
    // The second record starts at 24 + 16 + 64 = 104. Cut inside its header, inside
    // the bytes kept and inside the bytes skipped past the snapshot length.
    for cut in [104 + 8, 104 + 16 + 30, whole.len() - 1] {
        let r = agree(dir.path(), &format!("cut-{cut}.pcap"), &whole[..cut]);
        assert_eq!(r.pkts.len(), 1, "cut at {cut}");
        let e = r.error.unwrap();
        assert!(e.contains("pcap record at byte 104 is cut off"), "{e}");
    }
}

/// A pcapng packet longer than its interface's snapshot length: libpcap stops there,
/// Wireshark reads it whole, and so does nsring (the bytes are in the block).
#[test]
fn pcapng_packet_above_its_interface_snaplen_is_read_whole() {
    use nsring_pcap::{InterfaceDesc, LinkType, PcapngWriter, SectionDesc};
    let dir = TempDir::new("rules-ng");
    let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
    let id = w
        .add_interface(&InterfaceDesc {
            name: "veth0".into(),
            description: None,
            linktype: LinkType::ETHERNET,
            snaplen: 0,
            tsresol_nanos: true,
        })
        .unwrap();
    let f = udp_frame(100, 1);
    w.write_packet(id, 1_000, 100, &f, None).unwrap();
    let mut file = w.finish().unwrap();
    // Patch the interface's snaplen to 60: the IDB follows the section header; its
    // snaplen follows type, length, linktype and reserved.
    let shb_len = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
    let at = shb_len + 12;
    file[at..at + 4].copy_from_slice(&60u32.to_le_bytes());
    let path = dir.path().join("ng-over-snaplen.pcapng");
    std::fs::write(&path, &file).unwrap();
    let ours = reference::nsring(&path);
    assert!(ours.error.is_none(), "{:?}", ours.error);
    let t = reference::tshark(&path).expect("tshark reads it");
    reference::assert_same("ng-over-snaplen", &ours.pkts, &t);
    assert_eq!(ours.pkts[0].data, f);
    let lp = reference::libpcap(&path);
    assert!(lp.error.is_some(), "libpcap refuses it: {lp:?}");
}

/// Packets nsring reads from its own writers' output are what it wrote.
#[test]
fn helper_pkt_equality_is_exact() {
    let a = Pkt {
        ts_ns: 1,
        caplen: 1,
        len: 1,
        data: vec![1],
    };
    let mut b = a.clone();
    b.data = vec![2];
    let r = std::panic::catch_unwind(|| reference::assert_same("x", &[a], &[b]));
    assert!(r.is_err(), "differing bytes must fail the comparison");
}
