//! Classic pcap: the file header and the per-packet records, read by libpcap's rules
//! (`sf-pcap.c`):
//!
//! - versions 2.0 to 2.x and DG/UX's 543.0; before 2.3 (and in 543.0) the record's two
//!   length fields are in the other order, in 2.3 they may be (swapped back when the
//!   captured length exceeds the wire length);
//! - the "modified" (Kuznetzov) magic `a1b2cd34` has 24-byte record headers (ifindex,
//!   protocol, packet type), and on Ethernet its snapshot length counts 14 bytes more;
//! - the snapshot length is adjusted as libpcap does: 0 or more than the link type's
//!   maximum ([`LinkType::max_snaplen`]) means that maximum;
//! - a record whose captured length exceeds the link type's maximum is an error; one that
//!   exceeds only the snapshot length is read truncated to it (the rest is skipped) and
//!   reading goes on;
//! - seconds are unsigned 32-bit, as the format defines (valid to 2106; libpcap 1.10
//!   still reads them signed).

use std::io::{self, Read};

use super::{CaptureReader, Found, State, read_full};
use crate::bytes::{Cursor, Endian};
use crate::read::ReadError;
use crate::{Format, InterfaceInfo, LinkType};

/// Which order a record's captured and wire lengths are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lengths {
    /// caplen, then len (2.4 and later).
    InOrder,
    /// len, then caplen (before 2.3, and DG/UX 543.0).
    Swapped,
    /// 2.3: swapped only where caplen > len.
    MaybeSwapped,
}

/// What the file header settles for every record.
#[derive(Debug, Clone, Copy)]
pub(super) struct PcapState {
    pub(super) endian: Endian,
    pub(super) nanos: bool,
    /// Bytes of each record header: 16, or 24 for the modified format.
    pub(super) hdr_len: usize,
    pub(super) lengths: Lengths,
    /// The adjusted snapshot length: longer records are truncated to it.
    pub(super) snapshot: u32,
    /// The link type's maximum: longer records are an error.
    pub(super) max: u32,
}

/// The pcap magic numbers: (value, nanosecond timestamps, modified record header).
const MAGICS: [(u32, bool, bool); 3] = [
    (0xa1b2_c3d4, false, false),
    (0xa1b2_3c4d, true, false),
    (0xa1b2_cd34, false, true),
];

/// The pcap format a magic number announces: (byte order, nanoseconds, modified).
pub(super) fn sniff(magic: [u8; 4]) -> Option<(Endian, bool, bool)> {
    let le = u32::from_le_bytes(magic);
    let be = u32::from_be_bytes(magic);
    MAGICS.iter().find_map(|&(m, nanos, modified)| {
        if le == m {
            Some((Endian::Little, nanos, modified))
        } else if be == m {
            Some((Endian::Big, nanos, modified))
        } else {
            None
        }
    })
}

impl<R: Read> CaptureReader<R> {
    pub(super) fn open_pcap(
        &mut self,
        endian: Endian,
        nanos: bool,
        modified: bool,
    ) -> Result<(), ReadError> {
        let mut hdr = [0u8; 20];
        let got = self.fill(&mut hdr)?;
        if got < hdr.len() {
            return Err(ReadError::TruncatedHeader {
                expected: 24,
                got: 4 + got,
            });
        }
        let mut c = Cursor::new(&hdr, endian);
        let major = c.u16().unwrap_or(0);
        let minor = c.u16().unwrap_or(0);
        let _thiszone = c.u32();
        let _sigfigs = c.u32();
        let snaplen = c.u32().unwrap_or(0);
        let network = c.u32().unwrap_or(0);
        let lengths = match (major, minor) {
            (2, 0..=2) | (543, 0) => Lengths::Swapped,
            (2, 3) => Lengths::MaybeSwapped,
            (2, _) => Lengths::InOrder,
            _ => {
                return Err(ReadError::UnsupportedVersion {
                    offset: 0,
                    format: "pcap",
                    major,
                    minor,
                    expected: "2.x or 543.0",
                });
            }
        };
        // libpcap takes the link type from the low 16 bits; the upper ones carry the
        // FCS length and flags.
        let linktype = LinkType((network & 0xffff) as u16);
        let max = linktype.max_snaplen();
        let mut snapshot = if snaplen == 0 || snaplen > max {
            max
        } else {
            snaplen
        };
        if modified && linktype == LinkType::ETHERNET {
            // A cooked capture with a faked Ethernet header: 14 bytes past the snaplen.
            snapshot = snapshot.saturating_add(14);
        }
        self.format = Format::Pcap {
            nanos,
            big_endian: endian == Endian::Big,
        };
        self.state = State::Pcap(PcapState {
            endian,
            nanos,
            hdr_len: if modified { 24 } else { 16 },
            lengths,
            snapshot,
            max,
        });
        self.interfaces.push(InterfaceInfo {
            section: 0,
            id_in_section: 0,
            name: None,
            description: None,
            linktype,
            snaplen,
            tsresol: if nanos { 9 } else { 6 },
            tsoffset: 0,
            stats: None,
        });
        Ok(())
    }

    pub(super) fn next_pcap(&mut self, s: PcapState) -> Result<Option<Found>, ReadError> {
        let start = self.offset;
        let mut hdr = [0u8; 24];
        let hdr = hdr.get_mut(..s.hdr_len).unwrap_or(&mut []);
        let got = self.fill(hdr)?;
        if got == 0 {
            return Ok(None);
        }
        if got < hdr.len() {
            return Err(ReadError::TruncatedRecord {
                offset: start,
                expected: hdr.len() as u64,
                got: got as u64,
            });
        }
        let mut c = Cursor::new(hdr, s.endian);
        let secs = u64::from(c.u32().unwrap_or(0));
        let frac = u64::from(c.u32().unwrap_or(0));
        let mut caplen = c.u32().unwrap_or(0);
        let mut orig_len = c.u32().unwrap_or(0);
        let swap = match s.lengths {
            Lengths::InOrder => false,
            Lengths::Swapped => true,
            Lengths::MaybeSwapped => caplen > orig_len,
        };
        if swap {
            std::mem::swap(&mut caplen, &mut orig_len);
        }
        if caplen > s.max {
            return Err(ReadError::CaplenTooLarge {
                offset: start,
                caplen,
                max: s.max,
            });
        }
        let keep = caplen.min(s.snapshot);
        let hdr_len = s.hdr_len as u64;
        let got = self.fill_buf(keep as usize)?;
        let skipped = if keep < caplen {
            self.skip(u64::from(caplen - keep))?
        } else {
            0
        };
        if got < keep as usize || skipped < u64::from(caplen - keep) {
            return Err(ReadError::TruncatedRecord {
                offset: start,
                expected: hdr_len + u64::from(caplen),
                got: hdr_len + got as u64 + skipped,
            });
        }
        // secs < 2^32 and frac < 2^32, so neither product nor sum can overflow u64.
        let ts_ns = secs * 1_000_000_000 + if s.nanos { frac } else { frac * 1000 };
        Ok(Some(Found {
            interface: 0,
            ts_ns,
            orig_len,
            data: 0..keep as usize,
            direction: None,
        }))
    }

    /// Read and drop up to `n` bytes; returns how many there were.
    fn skip(&mut self, n: u64) -> Result<u64, ReadError> {
        let mut sink = [0u8; 4096];
        let mut done = 0u64;
        while done < n {
            let want = (n - done).min(sink.len() as u64) as usize;
            let buf = sink.get_mut(..want).unwrap_or(&mut []);
            let got = read_full(&mut self.r, buf).map_err(|e| self.io_at(e, done))?;
            done += got as u64;
            if got < want {
                break;
            }
        }
        self.offset += done;
        Ok(done)
    }

    fn io_at(&self, source: io::Error, extra: u64) -> ReadError {
        ReadError::Io {
            offset: self.offset + extra,
            source,
        }
    }
}
