//! Every reader error variant, each from a small edit of a valid fixture.

use std::io::{self, Read};

use nsring_pcap::{CaptureReader, ReadError};

use crate::common::{read_all, read_err};
use crate::fixtures::{PCAP_LE_NS, PCAPNG};

/// `base` with the bytes at each offset replaced.
fn patched(base: &[u8], edits: &[(usize, &[u8])]) -> Vec<u8> {
    let mut v = base.to_vec();
    for (at, bytes) in edits {
        v[*at..*at + bytes.len()].copy_from_slice(bytes);
    }
    v
}

#[test]
fn truncated_header() {
    for (data, expected, got) in [
        (&[][..], 4, 0),
        (&PCAP_LE_NS[..3], 4, 3),
        (&PCAP_LE_NS[..10], 24, 10),
        (&PCAP_LE_NS[..23], 24, 23),
        (&PCAPNG[..6], 28, 6),
        (&PCAPNG[..10], 28, 10),
    ] {
        match CaptureReader::open(data) {
            Err(ReadError::TruncatedHeader {
                expected: e,
                got: g,
            }) => assert_eq!((e, g), (expected, got)),
            other => panic!("{} bytes: {other:?}", data.len()),
        }
    }
    // A SHB cut after its byte-order magic is a truncated block.
    assert!(matches!(
        CaptureReader::open(&PCAPNG[..20]),
        Err(ReadError::TruncatedBlock {
            offset: 0,
            expected: 40,
            got: 20
        })
    ));
}

#[test]
fn bad_magic() {
    let e = CaptureReader::open(&b"GIF89a..."[..]).unwrap_err();
    assert!(matches!(
        e,
        ReadError::BadMagic {
            magic: [b'G', b'I', b'F', b'8']
        }
    ));
    assert!(e.to_string().contains("not a pcap or pcapng file"), "{e}");
    // Kuznetzov's modified pcap magic is read (24-byte record headers, as libpcap):
    // the 20-byte record of this file is then cut short.
    let modified = patched(PCAP_LE_NS, &[(0, &[0x34, 0xcd, 0xb2, 0xa1])]);
    assert!(matches!(
        read_err(&modified),
        ReadError::TruncatedRecord {
            offset: 24,
            expected: 24,
            got: 20
        }
    ));
}

#[test]
fn unsupported_versions() {
    let pcap3 = patched(PCAP_LE_NS, &[(4, &[3, 0])]);
    assert!(matches!(
        CaptureReader::open(&pcap3[..]),
        Err(ReadError::UnsupportedVersion {
            format: "pcap",
            major: 3,
            ..
        })
    ));
    let ng2 = patched(PCAPNG, &[(12, &[2, 0])]);
    assert!(matches!(
        CaptureReader::open(&ng2[..]),
        Err(ReadError::UnsupportedVersion {
            offset: 0,
            format: "pcapng",
            major: 2,
            ..
        })
    ));
    // In the second section (big-endian).
    let ng2b = patched(PCAPNG, &[(220 + 12, &[0, 2])]);
    assert!(matches!(
        read_err(&ng2b),
        ReadError::UnsupportedVersion {
            offset: 220,
            major: 2,
            ..
        }
    ));
}

#[test]
fn bad_byte_order_magic() {
    let data = patched(PCAPNG, &[(8, &[1, 2, 3, 4])]);
    assert!(matches!(
        CaptureReader::open(&data[..]),
        Err(ReadError::BadByteOrderMagic {
            offset: 0,
            value: 0x0403_0201
        })
    ));
}

#[test]
fn pcap_record_errors() {
    // (caplen above the snapshot length is read truncated: see libpcap_rules.rs.)
    // snaplen 0 (unlimited) but caplen above the cap.
    let data = patched(PCAP_LE_NS, &[(16, &[0, 0, 0, 0]), (32, &[0, 0, 0, 2])]);
    assert!(matches!(
        read_err(&data),
        ReadError::CaplenTooLarge {
            offset: 24,
            caplen: 0x0200_0000,
            ..
        }
    ));
    // Header cut short.
    assert!(matches!(
        read_err(&PCAP_LE_NS[..24 + 5]),
        ReadError::TruncatedRecord {
            offset: 24,
            expected: 16,
            got: 5
        }
    ));
    // Data cut short.
    assert!(matches!(
        read_err(&PCAP_LE_NS[..PCAP_LE_NS.len() - 1]),
        ReadError::TruncatedRecord {
            offset: 24,
            expected: 20,
            got: 19
        }
    ));
}

#[test]
fn block_length_errors() {
    // EPB @80 length 8: below its minimum of 32.
    let data = patched(PCAPNG, &[(84, &[8, 0, 0, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::BlockTooSmall {
            offset: 80,
            len: 8,
            min: 32
        }
    ));
    // Unknown block @132 length 13: not a multiple of 4.
    let data = patched(PCAPNG, &[(136, &[13, 0, 0, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::BlockLengthNotMultipleOf4 {
            offset: 132,
            len: 13
        }
    ));
    // Unknown block claiming 32 MiB.
    let data = patched(PCAPNG, &[(136, &[0, 0, 0, 2])]);
    assert!(matches!(
        read_err(&data),
        ReadError::BlockTooLarge {
            offset: 132,
            len: 0x0200_0000,
            ..
        }
    ));
    // Unknown block claiming 12 MiB in a short file: truncated, and without allocating 12 MiB.
    let data = patched(PCAPNG, &[(136, &[0, 0, 0xc0, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::TruncatedBlock { offset: 132, expected: 0x00c0_0000, got } if got == (PCAPNG.len() - 132) as u64
    ));
    // Trailing length differs.
    let data = patched(PCAPNG, &[(128, &[0x38, 0, 0, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::BlockLengthMismatch {
            offset: 80,
            len: 52,
            trailer: 56
        }
    ));
    // File cut inside the big-endian EPB @280, and inside a block header.
    assert!(matches!(
        read_err(&PCAPNG[..PCAPNG.len() - 2]),
        ReadError::TruncatedBlock {
            offset: 280,
            expected: 36,
            got: 34
        }
    ));
    assert!(matches!(
        read_err(&PCAPNG[..283]),
        ReadError::TruncatedBlock {
            offset: 280,
            expected: 12,
            got: 3
        }
    ));
    // The packets before the damage were delivered.
    let mut r = CaptureReader::open(&PCAPNG[..PCAPNG.len() - 2]).unwrap();
    assert_eq!(r.next_packet().unwrap().unwrap().orig_len, 64);
}

#[test]
fn packet_block_errors() {
    // EPB caplen 30: the block has room for 20 bytes of data and options.
    let data = patched(PCAPNG, &[(100, &[30, 0, 0, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::CaplenExceedsBlock {
            offset: 80,
            caplen: 30,
            available: 20
        }
    ));
    let data = patched(PCAPNG, &[(100, &[0xff, 0xff, 0xff, 0xff])]);
    assert!(matches!(
        read_err(&data),
        ReadError::CaplenExceedsBlock {
            offset: 80,
            caplen: u32::MAX,
            ..
        }
    ));
    // EPB on interface 3 of a section that describes one.
    let data = patched(PCAPNG, &[(88, &[3, 0, 0, 0])]);
    let e = read_err(&data);
    assert!(
        matches!(
            e,
            ReadError::UnknownInterface {
                offset: 80,
                interface: 3,
                known: 1
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.offset(), Some(80));
    // Second section: interface 1 does not exist there (only globally).
    let data = patched(PCAPNG, &[(288, &[0, 0, 0, 1])]);
    assert!(matches!(
        read_err(&data),
        ReadError::UnknownInterface {
            offset: 280,
            interface: 1,
            known: 1
        }
    ));
    // ISB on an unknown interface.
    let data = patched(PCAPNG, &[(176, &[9, 0, 0, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::UnknownInterface {
            offset: 168,
            interface: 9,
            ..
        }
    ));
    // SPB in a section with no interface: drop the IDB of section 0 by renaming it an
    // unknown block type; the EPB then fails first, so check an SPB-only file.
    let mut spb_only = PCAPNG[..40].to_vec();
    spb_only.extend_from_slice(&PCAPNG[148..168]);
    assert!(matches!(
        read_err(&spb_only),
        ReadError::UnknownInterface {
            offset: 40,
            interface: 0,
            known: 0
        }
    ));
}

#[test]
fn option_errors() {
    // if_name length 200 runs past the IDB.
    let data = patched(PCAPNG, &[(58, &[200, 0])]);
    let e = read_err(&data);
    assert!(
        matches!(
            e,
            ReadError::Malformed {
                offset: 40,
                block: "interface description block",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("runs past the end"), "{e}");
    // if_tsresol of 2 bytes.
    let data = patched(PCAPNG, &[(66, &[2, 0])]);
    assert!(matches!(
        read_err(&data),
        ReadError::Malformed {
            reason: "if_tsresol is not 1 byte long",
            ..
        }
    ));
    // Options libpcap never reads end their block's option list when malformed, not
    // the file: epb_flags of 3 bytes leaves the packet without a direction.
    let data = patched(PCAPNG, &[(118, &[3, 0])]);
    let (_, pkts) = crate::common::read_all(&data).unwrap();
    let (_, want) = crate::common::read_all(PCAPNG).unwrap();
    assert_eq!(pkts.len(), want.len());
    assert_eq!(pkts[0].direction, None);
    assert_eq!(pkts[0].data, want[0].data);
    // shb_userappl length 9: with its padding it runs past the block; the section
    // is read without it.
    let data = patched(PCAPNG, &[(26, &[9, 0])]);
    let r = CaptureReader::open(&data[..]).unwrap();
    assert_eq!(r.sections()[0].userappl, None);
}

#[test]
fn timestamp_out_of_range() {
    // if_tsresol 0 (seconds) and a timestamp of 2^32 * 5 + 17 seconds.
    let data = patched(PCAPNG, &[(68, &[0]), (92, &[5, 0, 0, 0])]);
    let e = read_err(&data);
    assert!(
        matches!(e, ReadError::TimestampOutOfRange { offset: 80 }),
        "{e:?}"
    );
}

#[test]
fn too_many_interfaces() {
    let mut data = PCAPNG[..40].to_vec();
    let idb: [u8; 20] = [1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0];
    for _ in 0..=nsring_pcap::MAX_INTERFACES {
        data.extend_from_slice(&idb);
    }
    let e = read_err(&data);
    assert!(
        matches!(
            e,
            ReadError::TooManyInterfaces {
                max: nsring_pcap::MAX_INTERFACES,
                ..
            }
        ),
        "{e:?}"
    );
}

struct Failing<'a>(&'a [u8]);

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn io_error_carries_offset_and_source() {
    let mut r = CaptureReader::open(Failing(&PCAP_LE_NS[..24])).unwrap();
    let e = r.next_packet().unwrap_err();
    assert!(matches!(e, ReadError::Io { offset: 24, .. }), "{e:?}");
    assert_eq!(
        std::error::Error::source(&e).unwrap().to_string(),
        "disk on fire"
    );
    // Fused after the error.
    assert!(r.next_packet().unwrap().is_none());
}

#[test]
fn unknown_blocks_only_is_valid() {
    let mut data = PCAPNG[..40].to_vec();
    data.extend_from_slice(&PCAPNG[132..148]);
    let (r, pkts) = read_all(&data).unwrap();
    assert_eq!((r.interfaces().len(), pkts.len()), (0, 0));
}
