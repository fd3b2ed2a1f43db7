//! The record file's bytes: its layout, and how records of other nsring versions are read.
//!
//! # File format (little-endian)
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `NSRING\0R` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | offset of the counter area (64) |
//! | 16 | 4 | number of counter slots (16) |
//! | 20 | 4 | offset of the metadata (256) |
//! | 24 | 4 | length of the metadata |
//! | 28 | 4 | oldest reader format that can read it (0: the format version itself) |
//! | 32 | 8 | owner PID (as the owner sees it) |
//! | 40 | 8 | netns inode |
//! | 48 | 8 | netns cookie |
//! | 56 | 8 | socket inode |
//! | 64 | 128 | counters: 16 u64 slots, see [`Counter`](super::Counter) |
//! | 256 | len | metadata: [`RecordInfo`] as JSON |
//!
//! The file is at least one page (4096 bytes) long, so the mapped page covers the whole
//! counter area.
//!
//! # Versions
//! A package upgrade replaces the binary while captures of the old one keep running, so
//! records of two versions live side by side, and a reader may be older or newer than the
//! writer. The header says two numbers: the format the writer used ([`FORMAT_VERSION`]), and
//! the oldest reader format that can still read it ([`COMPAT_VERSION`]). A new format that
//! only adds (a counter in a free slot, a metadata field, which old readers skip) keeps the
//! compatibility number; one that moves or changes what is there raises it. Added metadata
//! fields carry `#[serde(default)]`, so newer readers read older records.
//!
//! A reader reads every record whose compatibility number it reaches, whatever its format
//! number, and for one it cannot read says which nsring wrote it and that an upgrade shows
//! it ([`Unreadable::Newer`]), never calling it corrupt. Whether a record's owner is alive
//! is decided by the file lock, not by the bytes, so a record of any format is removed
//! once its owner is gone, and never while it is alive.

use serde::Deserialize;

use super::{Counters, Error, Header, RecordInfo, Result};

/// The first 8 bytes of every record.
pub const MAGIC: [u8; 8] = *b"NSRING\0R";
/// The format this code writes (and the newest it reads in full).
pub const FORMAT_VERSION: u32 = 1;
/// The oldest reader format that can read what this code writes.
pub const COMPAT_VERSION: u32 = 1;
/// The size of the mapped page, and the smallest record file.
pub const PAGE: usize = 4096;
/// The number of u64 counter slots (room to grow without a new format).
pub const COUNTER_SLOTS: usize = 16;
/// The largest metadata a reader accepts (a long filter is a few KiB).
pub const MAX_META: usize = 256 * 1024;

/// Byte ranges of the header.
pub(super) mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..12;
    pub const COUNTERS_OFF: Range<usize> = 12..16;
    pub const COUNTERS_NUM: Range<usize> = 16..20;
    pub const META_OFF: Range<usize> = 20..24;
    pub const META_LEN: Range<usize> = 24..28;
    pub const COMPAT: Range<usize> = 28..32;
    pub const PID: Range<usize> = 32..40;
    pub const NETNS_INODE: Range<usize> = 40..48;
    pub const NETNS_COOKIE: Range<usize> = 48..56;
    pub const SOCKET_INODE: Range<usize> = 56..64;
    /// Where the counters start.
    pub const COUNTERS: usize = 64;
    /// Where the metadata starts.
    pub const META: usize = 256;
}

/// Why a record file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unreadable {
    /// The bytes are not a record this or any nsring wrote; the text says what is wrong.
    #[error("is corrupt: {0}")]
    Corrupt(String),
    /// A newer nsring wrote it in a format this one cannot read.
    #[error(
        "is from a newer nsring{}: record format {format} needs a reader of format {needs} or \
         later, this nsring ({}) reads format {FORMAT_VERSION}; upgrade nsring to see it",
        writer.as_deref().map(|v| format!(" ({v})")).unwrap_or_default(),
        env!("CARGO_PKG_VERSION")
    )]
    Newer {
        /// The record's format.
        format: u32,
        /// The oldest reader format that can read it.
        needs: u32,
        /// The writer's nsring version, when its metadata says it.
        writer: Option<String>,
    },
}

/// The bytes of a new record file: header, counters, metadata, zero padding to whole pages.
pub fn encode(header: &Header, counters: &Counters, info: &RecordInfo) -> Result<Vec<u8>> {
    let meta = serde_json::to_vec(info).expect("RecordInfo always serializes");
    if meta.len() > MAX_META {
        return Err(Error::TooLarge(meta.len()));
    }
    let len = (field::META + meta.len()).div_ceil(PAGE) * PAGE;
    let mut b = vec![0u8; len];
    b[field::MAGIC].copy_from_slice(&MAGIC);
    b[field::VERSION].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // 0 stands for "the format version itself" (what readers of format 1 expect there)
    let compat = if COMPAT_VERSION == FORMAT_VERSION {
        0
    } else {
        COMPAT_VERSION
    };
    b[field::COMPAT].copy_from_slice(&compat.to_le_bytes());
    b[field::COUNTERS_OFF].copy_from_slice(&(field::COUNTERS as u32).to_le_bytes());
    b[field::COUNTERS_NUM].copy_from_slice(&(COUNTER_SLOTS as u32).to_le_bytes());
    b[field::META_OFF].copy_from_slice(&(field::META as u32).to_le_bytes());
    b[field::META_LEN].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    b[field::PID].copy_from_slice(&u64::from(header.pid).to_le_bytes());
    b[field::NETNS_INODE].copy_from_slice(&header.netns_inode.to_le_bytes());
    b[field::NETNS_COOKIE].copy_from_slice(&header.netns_cookie.to_le_bytes());
    b[field::SOCKET_INODE].copy_from_slice(&header.socket_inode.to_le_bytes());
    for (c, v) in counters.slots() {
        b[c.offset()..c.offset() + 8].copy_from_slice(&v.to_le_bytes());
    }
    b[field::META..field::META + meta.len()].copy_from_slice(&meta);
    Ok(b)
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_le_bytes(b[r].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Parses a record file's bytes: any format whose compatibility number this code reaches.
/// Any outside bytes are accepted without panicking; what is wrong is said in the
/// [`Unreadable`] text.
pub fn decode(b: &[u8]) -> Result<(Header, Counters, RecordInfo), Unreadable> {
    let bad = |m: String| Err(Unreadable::Corrupt(m));
    if b.len() < field::META {
        return bad(format!(
            "truncated: {} bytes, the header alone is {}",
            b.len(),
            field::META
        ));
    }
    if b[field::MAGIC] != MAGIC {
        return bad("not an nsring record (wrong magic bytes)".into());
    }
    let format = u32_at(b, field::VERSION);
    let needs = match u32_at(b, field::COMPAT) {
        0 => format,
        n => n,
    };
    if format == 0 || needs > format {
        return bad(format!(
            "format version {format} with compatibility {needs} is not a valid pair"
        ));
    }
    let moff = u32_at(b, field::META_OFF) as usize;
    let mlen = u32_at(b, field::META_LEN) as usize;
    if needs > FORMAT_VERSION {
        return Err(Unreadable::Newer {
            format,
            needs,
            writer: writer_version(b, moff, mlen),
        });
    }
    // Every format readable here has format 1's layout.
    let coff = u32_at(b, field::COUNTERS_OFF) as usize;
    let cnum = u32_at(b, field::COUNTERS_NUM) as usize;
    if coff != field::COUNTERS || cnum != COUNTER_SLOTS || moff != field::META {
        return bad(format!(
            "unexpected layout (counters at {coff}, {cnum} slots, metadata at {moff})"
        ));
    }
    if mlen > MAX_META {
        return bad(format!("metadata length {mlen} is larger than {MAX_META}"));
    }
    if moff + mlen > b.len() {
        return bad(format!(
            "truncated: metadata of {mlen} bytes at {moff} runs past the end of the {}-byte file",
            b.len()
        ));
    }
    let pid = u64_at(b, field::PID.start);
    let header = Header {
        pid: u32::try_from(pid)
            .map_err(|_| Unreadable::Corrupt(format!("PID {pid} is out of range")))?,
        netns_inode: u64_at(b, field::NETNS_INODE.start),
        netns_cookie: u64_at(b, field::NETNS_COOKIE.start),
        socket_inode: u64_at(b, field::SOCKET_INODE.start),
    };
    let counters = Counters::from_slots(|c| u64_at(b, c.offset()));
    let info: RecordInfo = match serde_json::from_slice(&b[moff..moff + mlen]) {
        Ok(info) => info,
        // a newer format may say things (a new mode, say) this code has no word for
        Err(_) if format > FORMAT_VERSION => {
            return Err(Unreadable::Newer {
                format,
                needs: format,
                writer: writer_version(b, moff, mlen),
            });
        }
        Err(e) => return bad(format!("metadata is not valid: {e}")),
    };
    Ok((header, counters, info))
}

/// The writer's nsring version from a record's metadata, if it can be found at all.
fn writer_version(b: &[u8], moff: usize, mlen: usize) -> Option<String> {
    #[derive(Deserialize)]
    struct Version {
        version: String,
    }
    let meta = b.get(moff..moff.checked_add(mlen.min(MAX_META))?)?;
    let v: Version = serde_json::from_slice(meta).ok()?;
    Some(v.version.chars().take(40).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Cluster, Counter, RingInfo};

    fn sample_info() -> RecordInfo {
        let mut i = RecordInfo::new("pfcount", Some("eth1"));
        i.ifindex = 3;
        i.snaplen = 128;
        i.filter = Some("udp port 53".into());
        i.cluster = Some(Cluster {
            id: 7,
            kind: "flow".into(),
        });
        i.ring = Some(RingInfo {
            block_size: 4 << 20,
            block_count: 8,
            frame_size: 2048,
            block_timeout_ms: 100,
            memory_bytes: 32 << 20,
        });
        i.started_unix_ns = 1_700_000_000_000_000_000;
        i
    }

    const HEADER: Header = Header {
        pid: 4242,
        netns_inode: 4026532000,
        netns_cookie: 9,
        socket_inode: 123456,
    };

    #[test]
    fn kernel_counter_records_round_trip_and_old_records_are_sockets() {
        use crate::record::{BpfInfo, RecordKind};
        let mut info = sample_info();
        info.kind = RecordKind::KernelCounter;
        info.backend = "ebpf-tcx".into();
        info.bpf = Some(BpfInfo {
            attach: "tcx".into(),
            hooks: vec!["ingress".into(), "egress".into()],
            prog_ids: vec![11, 12],
            link_ids: vec![5, 6],
            map_id: 9,
            insns: 42,
        });
        let b = encode(&HEADER, &Counters::default(), &info).unwrap();
        assert_eq!(decode(&b).unwrap().2, info);
        let json = serde_json::to_string(&info).unwrap();
        assert!(json.contains(r#""kind":"kernel-counter""#), "{json}");
        // a record of an nsring from before in-kernel counters: no kind, no bpf
        let mut old: serde_json::Value = serde_json::to_value(sample_info()).unwrap();
        old.as_object_mut().unwrap().remove("kind");
        let back: RecordInfo = serde_json::from_value(old).unwrap();
        assert_eq!(back.kind, RecordKind::Socket);
        assert_eq!(back.bpf, None);
    }

    #[test]
    fn header_bytes_are_where_the_format_says() {
        let counters = Counters {
            packets: 0x0102,
            drops: 5,
            ..Counters::default()
        };
        let b = encode(&HEADER, &counters, &sample_info()).unwrap();
        assert_eq!(b.len(), PAGE);
        #[rustfmt::skip]
        let head: [u8; 64] = [
            b'N', b'S', b'R', b'I', b'N', b'G', 0, b'R', // magic
            1, 0, 0, 0,                 // format version 1
            64, 0, 0, 0,                // counters at 64
            16, 0, 0, 0,                // 16 slots
            0, 1, 0, 0,                 // metadata at 256
            b[24], b[25], b[26], b[27], // metadata length (checked below)
            0, 0, 0, 0,                 // compatibility: as the format (1)
            0x92, 0x10, 0, 0, 0, 0, 0, 0, // pid 4242
            0xa0, 0x00, 0x00, 0xf0, 0, 0, 0, 0, // netns inode 4026532000 (0xf00000a0)
            9, 0, 0, 0, 0, 0, 0, 0,     // cookie 9
            0x40, 0xe2, 0x01, 0, 0, 0, 0, 0, // socket inode 123456
        ];
        assert_eq!(b[..64], head);
        assert_eq!(b[64..72], [0x02, 0x01, 0, 0, 0, 0, 0, 0], "packets");
        assert_eq!(b[96..104], [5, 0, 0, 0, 0, 0, 0, 0], "drops (slot 4)");
        let mlen = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
        assert_eq!(b[256], b'{');
        assert_eq!(b[256 + mlen - 1], b'}');
        assert!(b[256 + mlen..].iter().all(|&x| x == 0));
    }

    #[test]
    fn round_trip() {
        let counters = Counters {
            packets: 10,
            bytes: 1000,
            blocks: 2,
            kernel_packets: 11,
            drops: 1,
            freezes: 1,
            sent: 0,
            send_errors: 0,
            updated_unix_ns: 5,
        };
        let info = sample_info();
        let b = encode(&HEADER, &counters, &info).unwrap();
        let (h, c, i) = decode(&b).unwrap();
        assert_eq!((h, c, i), (HEADER, counters, info));
    }

    #[test]
    fn long_metadata_takes_more_pages() {
        let mut info = sample_info();
        info.filter = Some("host 198.18.0.1 or ".repeat(400) + "host 198.18.0.2");
        let b = encode(&HEADER, &Counters::default(), &info).unwrap();
        assert_eq!(b.len() % PAGE, 0);
        assert!(b.len() > PAGE);
        assert_eq!(decode(&b).unwrap().2, info);
    }

    #[test]
    fn corrupt_files_are_described() {
        let good = encode(&HEADER, &Counters::default(), &sample_info()).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage\n".to_vec(), "truncated: 8 bytes"),
            (vec![0u8; 4096], "wrong magic"),
            (
                {
                    let mut b = good.clone();
                    b[8] = 0;
                    b
                },
                "format version 0",
            ),
            (
                {
                    let mut b = good.clone();
                    b[28] = 3; // needs a reader of format 3, but is format 1
                    b
                },
                "not a valid pair",
            ),
            (good[..300].to_vec(), "runs past the end"),
            (
                {
                    let mut b = good.clone();
                    b[260] = b'!';
                    b
                },
                "metadata is not valid",
            ),
            (
                {
                    let mut b = good.clone();
                    b[16] = 17;
                    b
                },
                "unexpected layout",
            ),
            (
                {
                    let mut b = good.clone();
                    b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
                    b
                },
                "metadata length",
            ),
        ];
        for (bytes, want) in cases {
            let err = decode(&bytes).unwrap_err();
            assert!(matches!(err, Unreadable::Corrupt(_)), "{err}");
            assert!(
                err.to_string().contains(want),
                "{err} does not mention {want:?}"
            );
        }
        // every prefix of a good file is refused or accepted, never a panic
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
    }

    /// A record as a later nsring might write it: format `format`, readable from format
    /// `needs` on, with a counter in a slot this code does not know and metadata fields
    /// (and, with `new_mode`, a socket mode) it has no word for.
    fn future(format: u32, needs: u32, new_mode: bool) -> Vec<u8> {
        let mut meta = serde_json::to_value(sample_info()).unwrap();
        meta["queue_id"] = 3.into();
        meta["version"] = "9.1.0".into();
        if new_mode {
            meta["mode"] = "xdp-redirect".into();
        }
        let meta = serde_json::to_vec(&meta).unwrap();
        let mut b = encode(&HEADER, &Counters::default(), &sample_info()).unwrap();
        b[field::VERSION].copy_from_slice(&format.to_le_bytes());
        b[field::COMPAT].copy_from_slice(&needs.to_le_bytes());
        b[field::META_LEN].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        b[field::META..field::META + meta.len()].copy_from_slice(&meta);
        b[field::COUNTERS + 8 * 12..][..8].copy_from_slice(&77u64.to_le_bytes());
        b[Counter::Packets.offset()..][..8].copy_from_slice(&5u64.to_le_bytes());
        b
    }

    #[test]
    fn a_newer_compatible_record_is_read_as_far_as_known() {
        let (h, c, i) = decode(&future(2, 1, false)).unwrap();
        assert_eq!(h, HEADER);
        assert_eq!(c.packets, 5);
        assert_eq!(i.version, "9.1.0");
        assert_eq!(i.filter, sample_info().filter);
    }

    #[test]
    fn a_newer_record_this_nsring_cannot_read_says_so() {
        for (bytes, needs) in [(future(3, 2, false), 2), (future(2, 1, true), 2)] {
            let err = decode(&bytes).unwrap_err();
            assert_eq!(
                err,
                Unreadable::Newer {
                    format: bytes[8].into(),
                    needs,
                    writer: Some("9.1.0".into())
                }
            );
            let text = err.to_string();
            assert!(
                text.starts_with("is from a newer nsring (9.1.0): record format"),
                "{text}"
            );
            assert!(text.ends_with("upgrade nsring to see it"), "{text}");
        }
        // even without readable metadata it is "newer", not "corrupt"
        let mut b = future(3, 3, false);
        b[field::META] = b'!';
        assert!(matches!(
            decode(&b),
            Err(Unreadable::Newer { writer: None, .. })
        ));
    }

    #[test]
    fn an_older_record_without_a_compatibility_number_is_read() {
        let mut b = encode(&HEADER, &Counters::default(), &sample_info()).unwrap();
        b[field::COMPAT].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode(&b).unwrap().0, HEADER);
    }
}
