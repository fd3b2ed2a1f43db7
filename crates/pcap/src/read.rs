//! Reading pcap and pcapng files.

use std::io::{self, Read};
use std::ops::Range;

use crate::bytes::{Cursor, Endian, pad4};
use crate::pcapng_write::{
    BYTE_ORDER_MAGIC, EPB_FLAGS, EPB_TYPE, IDB_TYPE, IF_DESCRIPTION, IF_NAME, IF_TSOFFSET,
    IF_TSRESOL, ISB_ENDTIME, ISB_FILTERACCEPT, ISB_IFDROP, ISB_IFRECV, ISB_OSDROP, ISB_STARTTIME,
    ISB_TYPE, ISB_USRDELIV, OPT_ENDOFOPT, PB_TYPE, SHB_HARDWARE, SHB_OS, SHB_TYPE, SHB_USERAPPL,
    SPB_TYPE,
};
use crate::{Direction, InterfaceStats, LinkType, MAX_BLOCK_LEN};

/// The most interfaces a reader accepts over all sections of one file.
pub const MAX_INTERFACES: usize = 65_536;

/// Blocks up to this size are read straight into a buffer of their size; larger ones
/// grow the buffer only as bytes arrive, so a lying length field costs nothing.
const DIRECT_READ_MAX: usize = 256 * 1024;

/// An error while reading a capture file. Offsets are byte positions in the file of the
/// start of the header, block or record at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The underlying reader failed.
    #[error("reading the capture file failed at byte {offset}")]
    Io {
        /// Where the read started.
        offset: u64,
        /// The reader's error.
        #[source]
        source: io::Error,
    },
    /// The file ends inside its file header (or is empty).
    #[error(
        "the capture file is too short: its header needs {expected} bytes but the file has {got}; it is empty or was cut off"
    )]
    TruncatedHeader {
        /// Bytes the header needs.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    #[error(
        "not a pcap or pcapng file: it starts with {magic:02x?}, expected a pcap magic (a1b2c3d4, a1b23c4d, either byte order) or the pcapng section header 0a0d0d0a"
    )]
    BadMagic {
        /// The first four bytes.
        magic: [u8; 4],
    },
    /// A pcapng section header's byte-order magic is neither 1a2b3c4d nor its reverse.
    #[error(
        "pcapng section header at byte {offset} has byte-order magic {value:#010x}, expected 0x1a2b3c4d; the file is corrupt"
    )]
    BadByteOrderMagic {
        /// Start of the section header block.
        offset: u64,
        /// The value found (read little-endian).
        value: u32,
    },
    /// The file or section declares a format version this reader does not know.
    #[error(
        "{format} version {major}.{minor} at byte {offset} is not supported (expected {expected})"
    )]
    UnsupportedVersion {
        /// Start of the header.
        offset: u64,
        /// "pcap" or "pcapng".
        format: &'static str,
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
        /// The version(s) supported.
        expected: &'static str,
    },
    /// A pcapng block length is not a multiple of 4.
    #[error(
        "pcapng block at byte {offset} has length {len}, not a multiple of 4; the file is corrupt"
    )]
    BlockLengthNotMultipleOf4 {
        /// Start of the block.
        offset: u64,
        /// The length field.
        len: u32,
    },
    /// A pcapng block length is smaller than its type allows.
    #[error(
        "pcapng block at byte {offset} has length {len}, below the minimum of {min} for its type; the file is corrupt"
    )]
    BlockTooSmall {
        /// Start of the block.
        offset: u64,
        /// The length field.
        len: u32,
        /// The smallest valid length.
        min: u32,
    },
    /// A pcapng block length is above [`MAX_BLOCK_LEN`].
    #[error(
        "pcapng block at byte {offset} claims {len} bytes, above the limit of {max}; the file is corrupt"
    )]
    BlockTooLarge {
        /// Start of the block.
        offset: u64,
        /// The length field.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The length at the end of a pcapng block differs from the one at its start.
    #[error(
        "pcapng block at byte {offset} starts with length {len} but ends with {trailer}; the file is corrupt"
    )]
    BlockLengthMismatch {
        /// Start of the block.
        offset: u64,
        /// Leading length field.
        len: u32,
        /// Trailing length field.
        trailer: u32,
    },
    /// The file ends inside a pcapng block.
    #[error(
        "pcapng block at byte {offset} is cut off: {got} of {expected} bytes present; the file was truncated"
    )]
    TruncatedBlock {
        /// Start of the block.
        offset: u64,
        /// Bytes the block needs.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// The file ends inside a pcap record.
    #[error(
        "pcap record at byte {offset} is cut off: {got} of {expected} bytes present; the file was truncated"
    )]
    TruncatedRecord {
        /// Start of the record.
        offset: u64,
        /// Bytes the record needs.
        expected: u64,
        /// Bytes present.
        got: u64,
    },
    /// A pcap record holds more bytes than the file's snapshot length.
    #[error(
        "pcap record at byte {offset} has captured length {caplen}, above the file's snapshot length {snaplen}; the file is corrupt"
    )]
    CaplenExceedsSnaplen {
        /// Start of the record.
        offset: u64,
        /// The record's captured length.
        caplen: u32,
        /// The file's snapshot length.
        snaplen: u32,
    },
    /// A pcap record's captured length is above [`MAX_BLOCK_LEN`].
    #[error(
        "pcap record at byte {offset} has captured length {caplen}, above the limit of {max}; the file is corrupt"
    )]
    CaplenTooLarge {
        /// Start of the record.
        offset: u64,
        /// The record's captured length.
        caplen: u32,
        /// The limit.
        max: u32,
    },
    /// A pcapng packet block's captured length runs past the block's end.
    #[error(
        "pcapng packet block at byte {offset} has captured length {caplen} but room for only {available} bytes; the file is corrupt"
    )]
    CaplenExceedsBlock {
        /// Start of the block.
        offset: u64,
        /// The captured length field.
        caplen: u32,
        /// Bytes of packet data the block can hold.
        available: usize,
    },
    /// A pcapng block's fixed fields or options are malformed.
    #[error("pcapng {block} at byte {offset} is malformed: {reason}")]
    Malformed {
        /// Start of the block.
        offset: u64,
        /// The block's kind.
        block: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pcapng block refers to an interface not described in its section.
    #[error(
        "pcapng block at byte {offset} refers to interface {interface}, but its section describes only {known}; the file is corrupt"
    )]
    UnknownInterface {
        /// Start of the block.
        offset: u64,
        /// The interface id in the block.
        interface: u32,
        /// Interfaces described in the section so far.
        known: usize,
    },
    /// More interface description blocks than [`MAX_INTERFACES`].
    #[error("pcapng interface description at byte {offset} exceeds the limit of {max} interfaces")]
    TooManyInterfaces {
        /// Start of the block.
        offset: u64,
        /// The limit.
        max: usize,
    },
    /// A timestamp does not fit in 64-bit nanoseconds since the epoch.
    #[error(
        "the timestamp of the block at byte {offset} is out of range (before 1970 or after 2554)"
    )]
    TimestampOutOfRange {
        /// Start of the block or record.
        offset: u64,
    },
}

impl ReadError {
    /// The byte offset the error refers to, if it has one.
    pub fn offset(&self) -> Option<u64> {
        use ReadError::*;
        match self {
            TruncatedHeader { .. } | BadMagic { .. } => Some(0),
            Io { offset, .. }
            | BadByteOrderMagic { offset, .. }
            | UnsupportedVersion { offset, .. }
            | BlockLengthNotMultipleOf4 { offset, .. }
            | BlockTooSmall { offset, .. }
            | BlockTooLarge { offset, .. }
            | BlockLengthMismatch { offset, .. }
            | TruncatedBlock { offset, .. }
            | TruncatedRecord { offset, .. }
            | CaplenExceedsSnaplen { offset, .. }
            | CaplenTooLarge { offset, .. }
            | CaplenExceedsBlock { offset, .. }
            | Malformed { offset, .. }
            | UnknownInterface { offset, .. }
            | TooManyInterfaces { offset, .. }
            | TimestampOutOfRange { offset } => Some(*offset),
        }
    }
}

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
    Pcap {
        endian: Endian,
        nanos: bool,
        snaplen: u32,
    },
    Pcapng {
        endian: Endian,
    },
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
            fused: false,
        };
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        let pcap = match (le, be) {
            (0xa1b2_c3d4, _) => Some((Endian::Little, false)),
            (0xa1b2_3c4d, _) => Some((Endian::Little, true)),
            (_, 0xa1b2_c3d4) => Some((Endian::Big, false)),
            (_, 0xa1b2_3c4d) => Some((Endian::Big, true)),
            _ => None,
        };
        if let Some((endian, nanos)) = pcap {
            reader.open_pcap(endian, nanos)?;
        } else if le == SHB_TYPE {
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
            State::Pcap {
                endian,
                nanos,
                snaplen,
            } => self.next_pcap(endian, nanos, snaplen),
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

    fn open_pcap(&mut self, endian: Endian, nanos: bool) -> Result<(), ReadError> {
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
        if major != 2 {
            return Err(ReadError::UnsupportedVersion {
                offset: 0,
                format: "pcap",
                major,
                minor,
                expected: "2.x",
            });
        }
        self.format = Format::Pcap {
            nanos,
            big_endian: endian == Endian::Big,
        };
        self.state = State::Pcap {
            endian,
            nanos,
            snaplen,
        };
        self.interfaces.push(InterfaceInfo {
            section: 0,
            id_in_section: 0,
            name: None,
            description: None,
            linktype: LinkType((network & 0xffff) as u16),
            snaplen,
            tsresol: if nanos { 9 } else { 6 },
            tsoffset: 0,
            stats: None,
        });
        Ok(())
    }

    fn next_pcap(
        &mut self,
        endian: Endian,
        nanos: bool,
        snaplen: u32,
    ) -> Result<Option<Found>, ReadError> {
        let start = self.offset;
        let mut hdr = [0u8; 16];
        let got = self.fill(&mut hdr)?;
        if got == 0 {
            return Ok(None);
        }
        if got < hdr.len() {
            return Err(ReadError::TruncatedRecord {
                offset: start,
                expected: 16,
                got: got as u64,
            });
        }
        let mut c = Cursor::new(&hdr, endian);
        let secs = u64::from(c.u32().unwrap_or(0));
        let frac = u64::from(c.u32().unwrap_or(0));
        let caplen = c.u32().unwrap_or(0);
        let orig_len = c.u32().unwrap_or(0);
        if caplen > MAX_BLOCK_LEN {
            return Err(ReadError::CaplenTooLarge {
                offset: start,
                caplen,
                max: MAX_BLOCK_LEN,
            });
        }
        if snaplen != 0 && caplen > snaplen {
            return Err(ReadError::CaplenExceedsSnaplen {
                offset: start,
                caplen,
                snaplen,
            });
        }
        let got = self.fill_buf(caplen as usize)?;
        if got < caplen as usize {
            return Err(ReadError::TruncatedRecord {
                offset: start,
                expected: 16 + u64::from(caplen),
                got: 16 + got as u64,
            });
        }
        // secs < 2^32 and frac < 2^32, so neither product nor sum can overflow u64.
        let ts_ns = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        Ok(Some(Found {
            interface: 0,
            ts_ns,
            orig_len,
            data: 0..caplen as usize,
            direction: None,
        }))
    }

    fn read_first_section(&mut self) -> Result<(), ReadError> {
        // The first block is the SHB by construction (the magic matched).
        let start = self.offset;
        let Some((_shb, len)) = self.block_header(start)? else {
            return Err(ReadError::TruncatedHeader {
                expected: 28,
                got: 0,
            });
        };
        self.read_block_body(start, len)?;
        self.parse_shb(start, len)
    }

    /// Read a block header (type and length; for an SHB also the byte-order magic,
    /// left at the start of `buf`). Returns `None` at a clean end of file.
    fn block_header(&mut self, start: u64) -> Result<Option<(u32, u32)>, ReadError> {
        let mut hdr = [0u8; 8];
        let got = self.fill(&mut hdr)?;
        if got == 0 {
            return Ok(None);
        }
        let trunc = |got: usize| ReadError::TruncatedBlock {
            offset: start,
            expected: 12,
            got: got as u64,
        };
        if got < hdr.len() {
            if start == 0 {
                return Err(ReadError::TruncatedHeader { expected: 28, got });
            }
            return Err(trunc(got));
        }
        let [t0, t1, t2, t3, l0, l1, l2, l3] = hdr;
        let type_le = u32::from_le_bytes([t0, t1, t2, t3]);
        let endian = if type_le == SHB_TYPE {
            let mut bom = [0u8; 4];
            let got = self.fill(&mut bom)?;
            if got < 4 {
                if start == 0 {
                    return Err(ReadError::TruncatedHeader {
                        expected: 28,
                        got: 8 + got,
                    });
                }
                return Err(trunc(8 + got));
            }
            let endian = match u32::from_le_bytes(bom) {
                BYTE_ORDER_MAGIC => Endian::Little,
                v if v.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
                value => {
                    return Err(ReadError::BadByteOrderMagic {
                        offset: start,
                        value,
                    });
                }
            };
            self.state = State::Pcapng { endian };
            self.buf.clear();
            self.buf.extend_from_slice(&bom);
            endian
        } else {
            match self.state {
                State::Pcapng { endian } => endian,
                State::Pcap { endian, .. } => endian,
            }
        };
        let block_type = endian.u32([t0, t1, t2, t3]);
        let len = endian.u32([l0, l1, l2, l3]);
        let min = match block_type {
            SHB_TYPE => 28,
            IDB_TYPE => 20,
            EPB_TYPE => 32,
            SPB_TYPE => 16,
            ISB_TYPE => 24,
            PB_TYPE => 32,
            _ => 12,
        };
        if len < min {
            return Err(ReadError::BlockTooSmall {
                offset: start,
                len,
                min,
            });
        }
        if !len.is_multiple_of(4) {
            return Err(ReadError::BlockLengthNotMultipleOf4 { offset: start, len });
        }
        if len > MAX_BLOCK_LEN {
            return Err(ReadError::BlockTooLarge {
                offset: start,
                len,
                max: MAX_BLOCK_LEN,
            });
        }
        Ok(Some((block_type, len)))
    }

    /// Read the rest of a block of total length `len` whose 8-byte header (and for an
    /// SHB the byte-order magic, already in `buf`) has been read; check the trailing
    /// length and leave the body (everything between the header and the trailer) in
    /// `buf`.
    fn read_block_body(&mut self, start: u64, len: u32) -> Result<(), ReadError> {
        let already = self.offset - start; // 8, or 12 for an SHB
        let prefix = std::mem::take(&mut self.buf);
        let need = (u64::from(len) - already) as usize;
        let got = self.fill_buf(need)?;
        if got < need {
            return Err(ReadError::TruncatedBlock {
                offset: start,
                expected: u64::from(len),
                got: already + got as u64,
            });
        }
        if already > 8 {
            // Put the byte-order magic back in front of the body.
            let mut body = prefix;
            body.extend_from_slice(&self.buf);
            self.buf = body;
        }
        let endian = self.endian();
        let tail_at = self.buf.len().saturating_sub(4);
        let trailer = self
            .buf
            .get(tail_at..)
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .map(|t| endian.u32(t))
            .unwrap_or(0);
        if trailer != len {
            return Err(ReadError::BlockLengthMismatch {
                offset: start,
                len,
                trailer,
            });
        }
        self.buf.truncate(tail_at);
        Ok(())
    }

    fn endian(&self) -> Endian {
        match self.state {
            State::Pcapng { endian } | State::Pcap { endian, .. } => endian,
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<Found>, ReadError> {
        loop {
            let start = self.offset;
            let Some((block_type, len)) = self.block_header(start)? else {
                return Ok(None);
            };
            self.read_block_body(start, len)?;
            match block_type {
                SHB_TYPE => self.parse_shb(start, len)?,
                IDB_TYPE => self.parse_idb(start)?,
                ISB_TYPE => self.parse_isb(start)?,
                EPB_TYPE => return self.parse_epb(start, false).map(Some),
                PB_TYPE => return self.parse_epb(start, true).map(Some),
                SPB_TYPE => return self.parse_spb(start).map(Some),
                _ => {} // unknown or uninteresting block: skipped
            }
        }
    }

    fn parse_shb(&mut self, start: u64, _len: u32) -> Result<(), ReadError> {
        let endian = self.endian();
        let mut c = Cursor::new(&self.buf, endian);
        let short = || ReadError::Malformed {
            offset: start,
            block: "section header block",
            reason: "fixed fields cut short",
        };
        let _bom = c.u32().ok_or_else(short)?;
        let major = c.u16().ok_or_else(short)?;
        let minor = c.u16().ok_or_else(short)?;
        let _section_len = c.u64().ok_or_else(short)?;
        if major != 1 {
            return Err(ReadError::UnsupportedVersion {
                offset: start,
                format: "pcapng",
                major,
                minor,
                expected: "1.x",
            });
        }
        let mut info = SectionInfo {
            offset: start,
            big_endian: endian == Endian::Big,
            version: (major, minor),
            hardware: None,
            os: None,
            userappl: None,
        };
        parse_options(&mut c, start, "section header block", |code, v| {
            match code {
                SHB_HARDWARE => info.hardware = Some(string(v)),
                SHB_OS => info.os = Some(string(v)),
                SHB_USERAPPL => info.userappl = Some(string(v)),
                _ => {}
            }
            Ok(())
        })?;
        self.sections.push(info);
        self.section_base = self.interfaces.len();
        Ok(())
    }

    fn parse_idb(&mut self, start: u64) -> Result<(), ReadError> {
        const BLOCK: &str = "interface description block";
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(ReadError::TooManyInterfaces {
                offset: start,
                max: MAX_INTERFACES,
            });
        }
        let mut c = Cursor::new(&self.buf, self.endian());
        let short = || ReadError::Malformed {
            offset: start,
            block: BLOCK,
            reason: "fixed fields cut short",
        };
        let linktype = c.u16().ok_or_else(short)?;
        let _reserved = c.u16().ok_or_else(short)?;
        let snaplen = c.u32().ok_or_else(short)?;
        let endian = self.endian();
        let mut info = InterfaceInfo {
            section: self.sections.len().saturating_sub(1) as u32,
            id_in_section: (self.interfaces.len() - self.section_base) as u32,
            name: None,
            description: None,
            linktype: LinkType(linktype),
            snaplen,
            tsresol: 6,
            tsoffset: 0,
            stats: None,
        };
        parse_options(&mut c, start, BLOCK, |code, v| {
            match code {
                IF_NAME => info.name = Some(string(v)),
                IF_DESCRIPTION => info.description = Some(string(v)),
                IF_TSRESOL => match v {
                    [r] => info.tsresol = *r,
                    _ => return Err("if_tsresol is not 1 byte long"),
                },
                IF_TSOFFSET => match <[u8; 8]>::try_from(v) {
                    Ok(b) => info.tsoffset = endian.u64(b) as i64,
                    Err(_) => return Err("if_tsoffset is not 8 bytes long"),
                },
                _ => {}
            }
            Ok(())
        })?;
        self.interfaces.push(info);
        Ok(())
    }

    /// Global index of interface `id` of the current section.
    fn interface(&self, start: u64, id: u32) -> Result<usize, ReadError> {
        let known = self.interfaces.len() - self.section_base;
        if (id as usize) < known {
            Ok(self.section_base + id as usize)
        } else {
            Err(ReadError::UnknownInterface {
                offset: start,
                interface: id,
                known,
            })
        }
    }

    fn timestamp(&self, start: u64, index: usize, units: u64) -> Result<u64, ReadError> {
        let info = self.interfaces.get(index);
        let (tsresol, tsoffset) = info.map_or((6, 0), |i| (i.tsresol, i.tsoffset));
        units_to_ns(units, tsresol, tsoffset)
            .ok_or(ReadError::TimestampOutOfRange { offset: start })
    }

    fn parse_epb(&mut self, start: u64, obsolete: bool) -> Result<Found, ReadError> {
        let block = if obsolete {
            "packet block"
        } else {
            "enhanced packet block"
        };
        let mut c = Cursor::new(&self.buf, self.endian());
        let short = || ReadError::Malformed {
            offset: start,
            block,
            reason: "fixed fields cut short",
        };
        let id = if obsolete {
            let id = c.u16().ok_or_else(short)?;
            let _drops = c.u16().ok_or_else(short)?;
            u32::from(id)
        } else {
            c.u32().ok_or_else(short)?
        };
        let hi = c.u32().ok_or_else(short)?;
        let lo = c.u32().ok_or_else(short)?;
        let caplen = c.u32().ok_or_else(short)?;
        let orig_len = c.u32().ok_or_else(short)?;
        let data_at = c.pos();
        let available = c.remaining();
        let padded = pad4(caplen as usize).unwrap_or(usize::MAX);
        if padded > available {
            return Err(ReadError::CaplenExceedsBlock {
                offset: start,
                caplen,
                available,
            });
        }
        c.take(padded).ok_or_else(short)?;
        let mut direction = None;
        parse_options(&mut c, start, block, |code, v| {
            if code == EPB_FLAGS {
                match <[u8; 4]>::try_from(v) {
                    Ok(b) => direction = Direction::from_epb_flags(self.endian().u32(b)),
                    Err(_) => return Err("epb_flags is not 4 bytes long"),
                }
            }
            Ok(())
        })?;
        let index = self.interface(start, id)?;
        let ts_ns = self.timestamp(start, index, (u64::from(hi) << 32) | u64::from(lo))?;
        Ok(Found {
            interface: index as u32,
            ts_ns,
            orig_len,
            data: data_at..data_at + caplen as usize,
            direction,
        })
    }

    fn parse_spb(&mut self, start: u64) -> Result<Found, ReadError> {
        let mut c = Cursor::new(&self.buf, self.endian());
        let orig_len = c.u32().ok_or(ReadError::Malformed {
            offset: start,
            block: "simple packet block",
            reason: "fixed fields cut short",
        })?;
        let index = self.interface(start, 0)?;
        let snaplen = self.interfaces.get(index).map_or(0, |i| i.snaplen);
        let mut caplen = (orig_len as usize).min(c.remaining());
        if snaplen != 0 {
            caplen = caplen.min(snaplen as usize);
        }
        Ok(Found {
            interface: index as u32,
            ts_ns: 0,
            orig_len,
            data: 4..4 + caplen,
            direction: None,
        })
    }

    fn parse_isb(&mut self, start: u64) -> Result<(), ReadError> {
        const BLOCK: &str = "interface statistics block";
        let endian = self.endian();
        let mut c = Cursor::new(&self.buf, endian);
        let short = || ReadError::Malformed {
            offset: start,
            block: BLOCK,
            reason: "fixed fields cut short",
        };
        let id = c.u32().ok_or_else(short)?;
        let hi = c.u32().ok_or_else(short)?;
        let lo = c.u32().ok_or_else(short)?;
        let index = self.interface(start, id)?;
        let (tsresol, tsoffset) = self
            .interfaces
            .get(index)
            .map_or((6, 0), |i| (i.tsresol, i.tsoffset));
        let to_ns = |units: u64| units_to_ns(units, tsresol, tsoffset);
        let mut stats = InterfaceStats {
            ts_ns: Some(
                to_ns((u64::from(hi) << 32) | u64::from(lo))
                    .ok_or(ReadError::TimestampOutOfRange { offset: start })?,
            ),
            ..InterfaceStats::default()
        };
        parse_options(&mut c, start, BLOCK, |code, v| {
            let Ok(b) = <[u8; 8]>::try_from(v) else {
                return match code {
                    ISB_STARTTIME..=ISB_USRDELIV => Err("a statistics option is not 8 bytes long"),
                    _ => Ok(()),
                };
            };
            let n = endian.u64(b);
            let time = || {
                let hi = u64::from(endian.u32([b[0], b[1], b[2], b[3]]));
                let lo = u64::from(endian.u32([b[4], b[5], b[6], b[7]]));
                to_ns((hi << 32) | lo).ok_or("a statistics time is out of range")
            };
            match code {
                ISB_STARTTIME => stats.starttime_ns = Some(time()?),
                ISB_ENDTIME => stats.endtime_ns = Some(time()?),
                ISB_IFRECV => stats.ifrecv = Some(n),
                ISB_IFDROP => stats.ifdrop = Some(n),
                ISB_FILTERACCEPT => stats.filteraccept = Some(n),
                ISB_OSDROP => stats.osdrop = Some(n),
                ISB_USRDELIV => stats.usrdeliv = Some(n),
                _ => {}
            }
            Ok(())
        })?;
        if let Some(i) = self.interfaces.get_mut(index) {
            i.stats = Some(stats);
        }
        Ok(())
    }
}

/// Walk the options of a block from the cursor to the end (or `opt_endofopt`).
/// `f` returns `Err(reason)` for a malformed option value.
fn parse_options(
    c: &mut Cursor<'_>,
    start: u64,
    block: &'static str,
    mut f: impl FnMut(u16, &[u8]) -> Result<(), &'static str>,
) -> Result<(), ReadError> {
    let bad = |reason| ReadError::Malformed {
        offset: start,
        block,
        reason,
    };
    while c.remaining() > 0 {
        let (Some(code), Some(len)) = (c.u16(), c.u16()) else {
            return Err(bad("an option header is cut short"));
        };
        if code == OPT_ENDOFOPT {
            break;
        }
        let value = c
            .take(len as usize)
            .ok_or_else(|| bad("an option value runs past the end of the block"))?;
        let pad = pad4(len as usize).unwrap_or(0) - len as usize;
        c.take(pad)
            .ok_or_else(|| bad("an option's padding runs past the end of the block"))?;
        f(code, value).map_err(bad)?;
    }
    Ok(())
}

/// A string option: UTF-8 (lossy), without trailing NULs some writers add.
fn string(v: &[u8]) -> String {
    let end = v.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    String::from_utf8_lossy(v.get(..end).unwrap_or(&[])).into_owned()
}

/// Convert a timestamp in `if_tsresol` units plus an `if_tsoffset` in seconds to
/// nanoseconds since the epoch; `None` if it does not fit in a u64.
pub(crate) fn units_to_ns(units: u64, tsresol: u8, tsoffset: i64) -> Option<u64> {
    let units = u128::from(units);
    let exp = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        if exp <= 9 {
            units * 10u128.pow(9 - exp)
        } else {
            match 10u128.checked_pow(exp - 9) {
                Some(d) => units / d,
                None => 0,
            }
        }
    } else {
        // 2^-exp seconds per unit; units < 2^64 so units * 1e9 < 2^94.
        (units * 1_000_000_000) >> exp
    };
    let total = i128::try_from(ns)
        .ok()?
        .checked_add(i128::from(tsoffset) * 1_000_000_000)?;
    u64::try_from(total).ok()
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
