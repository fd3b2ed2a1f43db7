//! Reading pcap and pcapng files.

//!
//! One reader for both formats: [`CaptureReader`] here, the classic pcap records in
//! `classic`, the pcapng blocks in `ng`, the error type in `error`.

use std::io::{self, Read};
use std::ops::Range;

use crate::bytes::Endian;
use crate::pcapng_write::SHB_TYPE;
use crate::{Direction, InterfaceStats, LinkType};

mod classic;
mod error;
mod ng;

pub use error::ReadError;

/// The most interfaces a reader accepts over all sections of one file.
pub const MAX_INTERFACES: usize = 65_536;

/// Blocks up to this size are read straight into a buffer of their size; larger ones
/// grow the buffer only as bytes arrive, so a lying length field costs nothing.
const DIRECT_READ_MAX: usize = 256 * 1024;

/// The format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap.
    Pcap {
        /// Nanosecond magic (0xa1b23c4d) rather than microsecond.
        nanos: bool,
        /// Written big-endian.
        big_endian: bool,
    },
    /// pcapng (each section has its own byte order; see [`SectionInfo`]).
    Pcapng,
}

/// One pcapng section (pcap files have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    /// Byte offset of the section header block.
    pub offset: u64,
    /// The section is big-endian.
    pub big_endian: bool,
    /// Format version (major, minor).
    pub version: (u16, u16),
    /// `shb_hardware`.
    pub hardware: Option<String>,
    /// `shb_os`.
    pub os: Option<String>,
    /// `shb_userappl`.
    pub userappl: Option<String>,
}

/// A capture interface as described by a pcapng interface description block, or the
/// single implied interface of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Index of the pcapng section describing it (0 for pcap).
    pub section: u32,
    /// Its id within the section (what the file's packet blocks use).
    pub id_in_section: u32,
    /// `if_name`.
    pub name: Option<String>,
    /// `if_description`.
    pub description: Option<String>,
    /// Link type.
    pub linktype: LinkType,
    /// Snapshot length (0: no limit).
    pub snaplen: u32,
    /// The raw `if_tsresol` byte: 6 = µs (the default), 9 = ns; bit 7 set means a
    /// power of two (`2^-(v & 0x7f)` s).
    pub tsresol: u8,
    /// `if_tsoffset` in seconds, added to every timestamp.
    pub tsoffset: i64,
    /// The counters of the last interface statistics block seen for it.
    pub stats: Option<InterfaceStats>,
}

/// One packet, lent from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Index into [`CaptureReader::interfaces`] (unique across pcapng sections).
    pub interface: u32,
    /// Nanoseconds since the Unix epoch (0 for simple packet blocks, which have none).
    pub ts_ns: u64,
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// Direction from `epb_flags`, when the block carries one.
    pub direction: Option<Direction>,
}

/// Where a packet found by the block parser lies in the buffer.
#[derive(Debug)]
struct Found {
    interface: u32,
    ts_ns: u64,
    orig_len: u32,
    data: Range<usize>,
    direction: Option<Direction>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Pcap(classic::PcapState),
    Pcapng { endian: Endian },
}

/// Reads a pcap or pcapng file from any `R: Read`.
///
/// Wrap files in a `BufReader`: the reader issues small reads for headers. After the
/// first error the reader is fused and [`next_packet`](Self::next_packet) returns
/// `Ok(None)`.
///
/// ```
/// use nsring_pcap::{CaptureReader, PcapHeader, PcapWriter};
/// let mut w = PcapWriter::new(Vec::new(), PcapHeader::default())?;
/// w.write_packet(5, 3, b"abc")?;
/// let file = w.finish()?;
/// let mut r = CaptureReader::open(&file[..])?;
/// let p = r.next_packet()?.expect("one packet");
/// assert_eq!((p.ts_ns, p.data), (5, &b"abc"[..]));
/// assert!(r.next_packet()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CaptureReader<R> {
    r: R,
    offset: u64,
    peeked: Option<[u8; 4]>,
    buf: Vec<u8>,
    state: State,
    format: Format,
    interfaces: Vec<InterfaceInfo>,
    sections: Vec<SectionInfo>,
    /// Index in `interfaces` of interface 0 of the current section.
    section_base: usize,
    /// The largest pcapng block accepted: [`MAX_BLOCK_LEN`](crate::MAX_BLOCK_LEN), raised
    /// (as libpcap does) for link types whose packets may be larger.
    max_block: u32,
    fused: bool,
}

impl<R: Read> CaptureReader<R> {
    /// Sniff the format from the magic number and read the file header (pcap) or the
    /// first section header block (pcapng). Interface description blocks are read as
    /// [`next_packet`](Self::next_packet) meets them.
    pub fn open(mut r: R) -> Result<Self, ReadError> {
        let mut magic = [0u8; 4];
        let got =
            read_full(&mut r, &mut magic).map_err(|source| ReadError::Io { offset: 0, source })?;
        if got < 4 {
            return Err(ReadError::TruncatedHeader { expected: 4, got });
        }
        let mut reader = CaptureReader {
            r,
            offset: 4,
            peeked: None,
            buf: Vec::new(),
            state: State::Pcapng {
                endian: Endian::Little,
            },
            format: Format::Pcapng,
            interfaces: Vec::new(),
            sections: Vec::new(),
            section_base: 0,
            max_block: crate::MAX_BLOCK_LEN,
            fused: false,
        };
        if let Some((endian, nanos, modified)) = classic::sniff(magic) {
            reader.open_pcap(endian, nanos, modified)?;
        } else if u32::from_le_bytes(magic) == SHB_TYPE {
            reader.peeked = Some(magic);
            reader.offset = 0;
            reader.read_first_section()?;
        } else {
            return Err(ReadError::BadMagic { magic });
        }
        Ok(reader)
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Every interface seen so far (pcap: exactly one). [`Packet::interface`] indexes
    /// this slice. pcapng interfaces appear as their description blocks are read.
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        &self.interfaces
    }

    /// The pcapng sections seen so far.
    pub fn sections(&self) -> &[SectionInfo] {
        &self.sections
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next packet, `Ok(None)` at the end of the file (or after an error).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        if self.fused {
            return Ok(None);
        }
        let found = match self.state {
            State::Pcap(s) => self.next_pcap(s),
            State::Pcapng { .. } => self.next_pcapng(),
        };
        let found = match found {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.fused = true;
                return Ok(None);
            }
            Err(e) => {
                self.fused = true;
                return Err(e);
            }
        };
        let data = self.buf.get(found.data).unwrap_or(&[]);
        Ok(Some(Packet {
            interface: found.interface,
            ts_ns: found.ts_ns,
            orig_len: found.orig_len,
            data,
            direction: found.direction,
        }))
    }

    fn io(&self, source: io::Error) -> ReadError {
        ReadError::Io {
            offset: self.offset,
            source,
        }
    }

    /// Read into `dst`, draining the peeked magic first; returns bytes read (short only
    /// at end of file) and advances the offset.
    fn fill(&mut self, dst: &mut [u8]) -> Result<usize, ReadError> {
        let mut n = 0;
        if let Some(p) = self.peeked.take() {
            let k = dst.len().min(4);
            if let (Some(d), Some(s)) = (dst.get_mut(..k), p.get(..k)) {
                d.copy_from_slice(s);
            }
            n = k;
        }
        let rest = dst.get_mut(n..).unwrap_or(&mut []);
        let got = read_full(&mut self.r, rest).map_err(|e| self.io(e))?;
        n += got;
        self.offset += n as u64;
        Ok(n)
    }

    /// Replace the buffer's contents with up to `n` bytes from the reader; returns the
    /// count read (short only at end of file). Memory grows only with bytes present.
    fn fill_buf(&mut self, n: usize) -> Result<usize, ReadError> {
        self.buf.clear();
        let got = if n <= DIRECT_READ_MAX {
            self.buf.resize(n, 0);
            let got = read_full(&mut self.r, &mut self.buf).map_err(|e| ReadError::Io {
                offset: self.offset,
                source: e,
            })?;
            self.buf.truncate(got);
            got
        } else {
            (&mut self.r)
                .take(n as u64)
                .read_to_end(&mut self.buf)
                .map_err(|e| ReadError::Io {
                    offset: self.offset,
                    source: e,
                })?
        };
        self.offset += got as u64;
        Ok(got)
    }

    fn endian(&self) -> Endian {
        match self.state {
            State::Pcapng { endian } | State::Pcap(classic::PcapState { endian, .. }) => endian,
        }
    }
}

/// Read until `buf` is full or the reader reports end of file; retries on EINTR.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Packet<'_> {
    /// Copy the packet out of the reader's buffer.
    pub fn to_owned_packet(&self) -> OwnedPacket {
        OwnedPacket {
            interface: self.interface,
            ts_ns: self.ts_ns,
            orig_len: self.orig_len,
            data: self.data.to_vec(),
            direction: self.direction,
        }
    }
}

/// A packet that owns its bytes (see [`Packet`] for the fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    /// Index into [`CaptureReader::interfaces`].
    pub interface: u32,
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Direction, when known.
    pub direction: Option<Direction>,
}
