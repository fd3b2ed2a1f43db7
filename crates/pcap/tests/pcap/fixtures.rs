//! Hand-written capture files, annotated byte by byte, decoded to exact values; and the
//! writers' output compared with them.

use nsring_pcap::{
    CaptureReader, Direction, Format, InterfaceDesc, InterfaceStats, LinkType, PcapHeader,
    PcapWriter, PcapngWriter, SectionDesc, TsResolution,
};

use crate::common::read_all;

/// Classic pcap, little-endian, nanosecond magic, one record.
#[rustfmt::skip]
pub const PCAP_LE_NS: &[u8] = &[
    // file header
    0x4d, 0x3c, 0xb2, 0xa1, // magic 0xa1b23c4d (nanoseconds), little-endian
    0x02, 0x00, 0x04, 0x00, // version 2.4
    0x00, 0x00, 0x00, 0x00, // thiszone
    0x00, 0x00, 0x00, 0x00, // sigfigs
    0xff, 0xff, 0x00, 0x00, // snaplen 65535
    0x01, 0x00, 0x00, 0x00, // linktype 1 (Ethernet)
    // record 0 (offset 24)
    0x01, 0x00, 0x00, 0x00, // ts_sec 1
    0x02, 0x00, 0x00, 0x00, // ts_nsec 2
    0x04, 0x00, 0x00, 0x00, // caplen 4
    0x3c, 0x00, 0x00, 0x00, // orig_len 60
    0xde, 0xad, 0xbe, 0xef, // data
];

/// Classic pcap, big-endian, microsecond magic, snaplen 8, one record.
#[rustfmt::skip]
pub const PCAP_BE_US: &[u8] = &[
    0xa1, 0xb2, 0xc3, 0xd4, // magic 0xa1b2c3d4 (microseconds), big-endian
    0x00, 0x02, 0x00, 0x04, // version 2.4
    0x00, 0x00, 0x00, 0x00, // thiszone
    0x00, 0x00, 0x00, 0x00, // sigfigs
    0x00, 0x00, 0x00, 0x08, // snaplen 8
    0x00, 0x00, 0x00, 0x65, // linktype 101 (raw IP)
    // record 0 (offset 24)
    0x00, 0x00, 0x00, 0x0a, // ts_sec 10
    0x00, 0x00, 0x00, 0x07, // ts_usec 7
    0x00, 0x00, 0x00, 0x02, // caplen 2
    0x00, 0x00, 0x00, 0x08, // orig_len 8
    0xab, 0xcd,             // data
];

/// pcapng with two sections: a little-endian one (SHB, IDB with a power-of-two
/// `if_tsresol`, EPB with `epb_flags`, an unknown block, SPB, ISB) and a big-endian one
/// (SHB, IDB with microsecond default resolution, EPB).
/// Block offsets: SHB 0, IDB 40, EPB 80, unknown 132, SPB 148, ISB 168, SHB 220,
/// IDB 248, EPB 280, end 316.
#[rustfmt::skip]
pub const PCAPNG: &[u8] = &[
    // --- section 0, little-endian ---
    // SHB @0
    0x0a, 0x0d, 0x0d, 0x0a, // block type
    0x28, 0x00, 0x00, 0x00, // block total length 40
    0x4d, 0x3c, 0x2b, 0x1a, // byte-order magic 0x1a2b3c4d read little-endian
    0x01, 0x00, 0x00, 0x00, // version 1.0
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length -1
    0x04, 0x00, 0x02, 0x00, b'a', b'b', 0x00, 0x00, // shb_userappl "ab" + pad
    0x00, 0x00, 0x00, 0x00, // opt_endofopt
    0x28, 0x00, 0x00, 0x00, // block total length 40
    // IDB @40
    0x01, 0x00, 0x00, 0x00, // block type 1
    0x28, 0x00, 0x00, 0x00, // length 40
    0x01, 0x00, 0x00, 0x00, // linktype 1, reserved
    0x00, 0x00, 0x04, 0x00, // snaplen 262144
    0x02, 0x00, 0x02, 0x00, b'e', b'0', 0x00, 0x00, // if_name "e0"
    0x09, 0x00, 0x01, 0x00, 0x83, 0x00, 0x00, 0x00, // if_tsresol 2^-3 s
    0x00, 0x00, 0x00, 0x00, // opt_endofopt
    0x28, 0x00, 0x00, 0x00, // length 40
    // EPB @80
    0x06, 0x00, 0x00, 0x00, // block type 6
    0x34, 0x00, 0x00, 0x00, // length 52
    0x00, 0x00, 0x00, 0x00, // interface 0
    0x00, 0x00, 0x00, 0x00, // timestamp high
    0x11, 0x00, 0x00, 0x00, // timestamp low: 17 units of 1/8 s = 2.125 s
    0x05, 0x00, 0x00, 0x00, // captured length 5
    0x40, 0x00, 0x00, 0x00, // original length 64
    0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x00, // data + pad
    0x02, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00, // epb_flags: outbound
    0x00, 0x00, 0x00, 0x00, // opt_endofopt
    0x34, 0x00, 0x00, 0x00, // length 52
    // unknown block type 0xbad0 @132: skipped
    0xd0, 0xba, 0x00, 0x00,
    0x10, 0x00, 0x00, 0x00,
    0xaa, 0xbb, 0xcc, 0xdd,
    0x10, 0x00, 0x00, 0x00,
    // SPB @148
    0x03, 0x00, 0x00, 0x00, // block type 3
    0x14, 0x00, 0x00, 0x00, // length 20
    0x03, 0x00, 0x00, 0x00, // original length 3
    0x0a, 0x0b, 0x0c, 0x00, // data + pad
    0x14, 0x00, 0x00, 0x00, // length 20
    // ISB @168
    0x05, 0x00, 0x00, 0x00, // block type 5
    0x34, 0x00, 0x00, 0x00, // length 52
    0x00, 0x00, 0x00, 0x00, // interface 0
    0x00, 0x00, 0x00, 0x00, // timestamp high
    0x18, 0x00, 0x00, 0x00, // timestamp low: 24/8 = 3 s
    0x04, 0x00, 0x08, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, // isb_ifrecv 7
    0x05, 0x00, 0x08, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, // isb_ifdrop 1
    0x00, 0x00, 0x00, 0x00, // opt_endofopt
    0x34, 0x00, 0x00, 0x00, // length 52
    // --- section 1, big-endian ---
    // SHB @220
    0x0a, 0x0d, 0x0d, 0x0a, // block type
    0x00, 0x00, 0x00, 0x1c, // length 28
    0x1a, 0x2b, 0x3c, 0x4d, // byte-order magic, big-endian
    0x00, 0x01, 0x00, 0x00, // version 1.0
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length -1
    0x00, 0x00, 0x00, 0x1c, // length 28
    // IDB @248
    0x00, 0x00, 0x00, 0x01, // block type 1
    0x00, 0x00, 0x00, 0x20, // length 32
    0x00, 0x65, 0x00, 0x00, // linktype 101 (raw IP), reserved
    0x00, 0x00, 0x00, 0x00, // snaplen 0 (no limit)
    0x00, 0x03, 0x00, 0x01, b'd', 0x00, 0x00, 0x00, // if_description "d"
    0x00, 0x00, 0x00, 0x00, // opt_endofopt
    0x00, 0x00, 0x00, 0x20, // length 32
    // EPB @280
    0x00, 0x00, 0x00, 0x06, // block type 6
    0x00, 0x00, 0x00, 0x24, // length 36
    0x00, 0x00, 0x00, 0x00, // interface 0 of this section
    0x00, 0x00, 0x00, 0x01, // timestamp high
    0x00, 0x00, 0x00, 0x02, // timestamp low: 2^32 + 2 microseconds
    0x00, 0x00, 0x00, 0x04, // captured length 4
    0x00, 0x00, 0x00, 0x04, // original length 4
    0x45, 0x00, 0x00, 0x14, // data
    0x00, 0x00, 0x00, 0x24, // length 36
];

#[test]
fn pcap_le_ns_decodes() {
    let (r, pkts) = read_all(PCAP_LE_NS).unwrap();
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanos: true,
            big_endian: false
        }
    );
    let ifs = r.interfaces();
    assert_eq!(ifs.len(), 1);
    assert_eq!(
        (ifs[0].linktype, ifs[0].snaplen, ifs[0].tsresol),
        (LinkType::ETHERNET, 65535, 9)
    );
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].interface, 0);
    assert_eq!(pkts[0].ts_ns, 1_000_000_002);
    assert_eq!(pkts[0].orig_len, 60);
    assert_eq!(pkts[0].data, [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(pkts[0].direction, None);
}

#[test]
fn pcap_be_us_decodes() {
    let (r, pkts) = read_all(PCAP_BE_US).unwrap();
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanos: false,
            big_endian: true
        }
    );
    assert_eq!(
        (r.interfaces()[0].linktype, r.interfaces()[0].snaplen),
        (LinkType::RAW, 8)
    );
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].ts_ns, 10_000_007_000);
    assert_eq!(
        (pkts[0].orig_len, &pkts[0].data[..]),
        (8, &[0xab, 0xcd][..])
    );
}

#[test]
fn pcapng_two_sections_decode() {
    let (r, pkts) = read_all(PCAPNG).unwrap();
    assert_eq!(r.format(), Format::Pcapng);
    let secs = r.sections();
    assert_eq!(secs.len(), 2);
    assert_eq!(
        (secs[0].offset, secs[0].big_endian, secs[0].version),
        (0, false, (1, 0))
    );
    assert_eq!(secs[0].userappl.as_deref(), Some("ab"));
    assert_eq!(
        (
            secs[1].offset,
            secs[1].big_endian,
            secs[1].userappl.as_deref()
        ),
        (220, true, None)
    );

    let ifs = r.interfaces();
    assert_eq!(ifs.len(), 2);
    assert_eq!((ifs[0].section, ifs[0].id_in_section), (0, 0));
    assert_eq!(ifs[0].name.as_deref(), Some("e0"));
    assert_eq!(ifs[0].description, None);
    assert_eq!(
        (ifs[0].linktype, ifs[0].snaplen, ifs[0].tsresol),
        (LinkType::ETHERNET, 262_144, 0x83)
    );
    assert_eq!(
        ifs[0].stats,
        Some(InterfaceStats {
            ts_ns: Some(3_000_000_000),
            ifrecv: Some(7),
            ifdrop: Some(1),
            ..Default::default()
        })
    );
    assert_eq!((ifs[1].section, ifs[1].id_in_section), (1, 0));
    assert_eq!(
        (ifs[1].name.as_deref(), ifs[1].description.as_deref()),
        (None, Some("d"))
    );
    assert_eq!(
        (ifs[1].linktype, ifs[1].snaplen, ifs[1].tsresol),
        (LinkType::RAW, 0, 6)
    );

    assert_eq!(pkts.len(), 3);
    assert_eq!(pkts[0].interface, 0);
    assert_eq!(pkts[0].ts_ns, 2_125_000_000);
    assert_eq!(
        (pkts[0].orig_len, &pkts[0].data[..]),
        (64, &[1, 2, 3, 4, 5][..])
    );
    assert_eq!(pkts[0].direction, Some(Direction::Outbound));
    // SPB: interface 0 of the section, no timestamp.
    assert_eq!(
        (pkts[1].interface, pkts[1].ts_ns, pkts[1].orig_len),
        (0, 0, 3)
    );
    assert_eq!(pkts[1].data, [0x0a, 0x0b, 0x0c]);
    assert_eq!(pkts[1].direction, None);
    // Second section: its interface 0 is global interface 1.
    assert_eq!(pkts[2].interface, 1);
    assert_eq!(pkts[2].ts_ns, ((1u64 << 32) + 2) * 1000);
    assert_eq!(
        (pkts[2].orig_len, &pkts[2].data[..]),
        (4, &[0x45, 0, 0, 0x14][..])
    );
}

#[test]
fn pcap_writer_matches_fixture() {
    let header = PcapHeader {
        linktype: LinkType::ETHERNET,
        snaplen: 65535,
        resolution: TsResolution::Nanos,
    };
    let mut w = PcapWriter::new(Vec::new(), header).unwrap();
    w.write_packet(1_000_000_002, 60, &[0xde, 0xad, 0xbe, 0xef])
        .unwrap();
    assert_eq!(w.finish().unwrap(), PCAP_LE_NS);
}

#[test]
fn pcap_writer_micros_magic() {
    let header = PcapHeader {
        resolution: TsResolution::Micros,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::new(Vec::new(), header).unwrap();
    w.write_packet(10_000_007_999, 8, &[0xab, 0xcd]).unwrap();
    let out = w.finish().unwrap();
    assert_eq!(out[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
    // ts_usec 7: the sub-microsecond part is cut, not rounded.
    assert_eq!(out[24..32], [10, 0, 0, 0, 7, 0, 0, 0]);
}

/// The pcapng writer's bytes for a tiny file, annotated.
#[test]
fn pcapng_writer_matches_annotated_bytes() {
    let section = SectionDesc {
        userappl: Some("nsring 0.1.0".into()),
        os: None,
        hardware: None,
    };
    let mut w = PcapngWriter::new(Vec::new(), &section).unwrap();
    let id = w
        .add_interface(&InterfaceDesc {
            name: "veth0".into(),
            description: Some("ns".into()),
            linktype: LinkType::ETHERNET,
            snaplen: 96,
            tsresol_nanos: true,
        })
        .unwrap();
    assert_eq!(id, 0);
    w.write_packet(0, 0x1_0000_0002, 9, &[1, 2, 3], Some(Direction::Inbound))
        .unwrap();
    w.write_interface_stats(
        0,
        &InterfaceStats {
            ifrecv: Some(5),
            ifdrop: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    let out = w.finish().unwrap();
    #[rustfmt::skip]
    let expected: &[u8] = &[
        // SHB: 28 fixed + shb_userappl (4 + 12) + endofopt 4 = 48
        0x0a, 0x0d, 0x0d, 0x0a, 48, 0, 0, 0,
        0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        4, 0, 12, 0, b'n', b's', b'r', b'i', b'n', b'g', b' ', b'0', b'.', b'1', b'.', b'0',
        0, 0, 0, 0,
        48, 0, 0, 0,
        // IDB: 20 fixed + if_name (4 + 8) + if_description (4 + 4) + if_tsresol (4 + 4) + 4 = 52
        1, 0, 0, 0, 52, 0, 0, 0,
        1, 0, 0, 0, 96, 0, 0, 0,
        2, 0, 5, 0, b'v', b'e', b't', b'h', b'0', 0, 0, 0,
        3, 0, 2, 0, b'n', b's', 0, 0,
        9, 0, 1, 0, 9, 0, 0, 0,
        0, 0, 0, 0,
        52, 0, 0, 0,
        // EPB: 32 fixed + data 3 padded to 4 + epb_flags (4 + 4) + 4 = 48
        6, 0, 0, 0, 48, 0, 0, 0,
        0, 0, 0, 0, // interface
        1, 0, 0, 0, 2, 0, 0, 0, // timestamp high 1, low 2 (ns)
        3, 0, 0, 0, 9, 0, 0, 0, // caplen 3, orig 9
        1, 2, 3, 0,
        2, 0, 4, 0, 1, 0, 0, 0, // epb_flags inbound
        0, 0, 0, 0,
        48, 0, 0, 0,
        // ISB: 24 fixed + starttime, endtime, ifrecv, ifdrop (12 each) + 4 = 76
        5, 0, 0, 0, 76, 0, 0, 0,
        0, 0, 0, 0,
        1, 0, 0, 0, 2, 0, 0, 0, // timestamp = endtime = last packet
        2, 0, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, // isb_starttime (high, low)
        3, 0, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, // isb_endtime
        4, 0, 8, 0, 5, 0, 0, 0, 0, 0, 0, 0, // isb_ifrecv 5
        5, 0, 8, 0, 2, 0, 0, 0, 0, 0, 0, 0, // isb_ifdrop 2
        0, 0, 0, 0,
        76, 0, 0, 0,
    ];
    assert_eq!(out, expected);
    // And it reads back.
    let r = CaptureReader::open(&out[..]).unwrap();
    assert_eq!(r.sections()[0].userappl.as_deref(), Some("nsring 0.1.0"));
}
