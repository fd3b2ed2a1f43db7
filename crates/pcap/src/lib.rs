//! pcap and pcapng writing and reading for nsring.
//!
//! This crate owns the capture-file formats: it turns packets into classic pcap
//! ([`PcapWriter`]) or pcapng ([`PcapngWriter`]) blocks, and turns files of either
//! format (any byte order, micro- or nanosecond timestamps, several pcapng sections)
//! back into packets ([`CaptureReader`]). It does no I/O of its own beyond the
//! `Read`/`Write` it is handed, opens no files, touches no sockets and never panics on
//! input: every malformed byte sequence becomes a [`ReadError`] carrying the byte offset
//! where it was found, and every I/O failure becomes a [`WriteError`] or [`ReadError`].
//!
//! # Writing
//!
//! Both writers build each header and statistics block whole in a reused buffer and hand
//! it to the inner writer with a single `write_all`. A packet goes out as consecutive
//! `write_all`s: its fixed header (built on the stack), the packet bytes straight from the
//! caller's slice or slices (no copy in this crate; behind a `BufWriter` that is the only
//! user-space copy, as stdio is for libpcap), and its trailer. Or packets are gathered
//! in a [`PacketBatch`] (their bytes borrowed, not copied) and written with one vectored
//! write: then the kernel's copy into the file is the only one.
//! Blocks are never interleaved, and if the output fails (a full disk, `ENOSPC`),
//! everything up to [`PcapngWriter::valid_len`] / [`PcapWriter::valid_len`] (the position
//! of the last successful flush) is a complete, valid capture file, and truncating the
//! file to that length removes any partial tail. After an error the writer refuses
//! further writes.
//!
//! Output is always little-endian, which every reader handles regardless of the host.
//!
//! # Reading
//!
//! [`CaptureReader::open`] sniffs the magic number and reads either format, as forgivingly
//! as libpcap reads it: every pcap variant libpcap knows (versions 2.0 to 2.4 with their
//! length fields in either order, DG/UX 543.0, the modified `a1b2cd34` records), records
//! longer than the snapshot length cut to it, seconds unsigned (to 2106), a packet above
//! its link type's maximum ([`LinkType::max_snaplen`]) an error; and pcapng files libpcap
//! refuses for limits of its own (several link types or snapshot lengths, sections of
//! either byte order) are read as Wireshark reads them. The test suite checks this packet
//! for packet against libpcap and tshark on a corpus of other writers' files. Packets are
//! lent out one at a time ([`CaptureReader::next_packet`]) from an internal buffer that is
//! reused, so a reader's memory is bounded by the largest block it accepts
//! ([`MAX_BLOCK_LEN`]) and grows only as bytes actually arrive.
//!
//! # Fuzzing
//!
//! [`fuzzing::fuzz_read`] is the harness of the AFL++ target `pcap_read` in `fuzz/`
//! (`cargo xtask fuzz`: coverage-guided, counted executions, on stable Rust); the test
//! suite runs it over tens of thousands of deterministic mutations of valid files and
//! over every input the fuzzer kept.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod bytes;
pub mod fuzzing;
mod pcap_write;
mod pcapng_write;
mod read;

pub use batch::PacketBatch;
pub use pcap_write::{PcapHeader, PcapWriter};
pub use pcapng_write::{InterfaceDesc, PcapngWriter, SectionDesc};
pub use read::{
    CaptureReader, Format, InterfaceInfo, MAX_INTERFACES, OwnedPacket, Packet, ReadError,
    SectionInfo,
};

use std::io;

/// The largest block (pcapng) or record (pcap) this crate writes or accepts: 16 MiB.
///
/// Real link layers stay far below it (libpcap's largest snapshot length is 256 KiB);
/// the cap keeps a corrupt length field from making a reader allocate without bound.
pub const MAX_BLOCK_LEN: u32 = 16 * 1024 * 1024;

/// libpcap's largest snapshot length for most link types (`MAXIMUM_SNAPLEN`): 256 KiB.
pub const MAX_SNAPLEN: u32 = 262_144;

/// The largest packet any link type allows ([`LinkType::max_snaplen`] of D-Bus): 128 MiB.
pub const MAX_PACKET_LEN: u32 = 128 * 1024 * 1024;

/// The `shb_userappl` this crate writes by default: `nsring <version>`.
pub const DEFAULT_USERAPPL: &str = concat!("nsring ", env!("CARGO_PKG_VERSION"));

/// A link-layer header type (`LINKTYPE_*` of the tcpdump.org registry).
///
/// Any 16-bit value survives a round trip; the constants name the common ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    /// `LINKTYPE_NULL`: BSD loopback.
    pub const NULL: LinkType = LinkType(0);
    /// `LINKTYPE_ETHERNET`: IEEE 802.3 Ethernet.
    pub const ETHERNET: LinkType = LinkType(1);
    /// `LINKTYPE_RAW`: raw IPv4 or IPv6.
    pub const RAW: LinkType = LinkType(101);
    /// `LINKTYPE_LINUX_SLL`: Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// `LINKTYPE_DBUS`: D-Bus messages (up to 128 MiB each).
    pub const DBUS: LinkType = LinkType(231);
    /// `LINKTYPE_USBPCAP`: USB packets captured by USBPcap (up to 1 MiB each).
    pub const USBPCAP: LinkType = LinkType(249);
    /// `LINKTYPE_EBHSCR`: Elektrobit high-speed capture and replay (up to 8 MiB each).
    pub const EBHSCR: LinkType = LinkType(279);

    /// The largest packet libpcap accepts for this link type (`max_snaplen_for_dlt`):
    /// [`MAX_SNAPLEN`] for all but a few. A capture file's snapshot length of 0 or above
    /// it means this maximum; a packet longer than it is an error.
    pub fn max_snaplen(self) -> u32 {
        match self {
            LinkType::DBUS => MAX_PACKET_LEN,
            LinkType::EBHSCR => 8 * 1024 * 1024,
            LinkType::USBPCAP => 1024 * 1024,
            _ => MAX_SNAPLEN,
        }
    }
}

/// The direction of a packet relative to the capturing interface (pcapng `epb_flags`
/// bits 0-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by the interface (`epb_flags` direction 01).
    Inbound,
    /// Sent by the interface (`epb_flags` direction 10).
    Outbound,
}

impl Direction {
    /// The `epb_flags` word carrying this direction and nothing else.
    pub fn epb_flags(self) -> u32 {
        match self {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
        }
    }

    /// The direction encoded in bits 0-1 of an `epb_flags` word, `None` for 00
    /// ("not available") and for the invalid 11.
    pub fn from_epb_flags(flags: u32) -> Option<Direction> {
        match flags & 3 {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// Interface statistics, written as a pcapng interface statistics block (ISB) and read
/// back from one. Every field is optional, as in the format.
///
/// Times are nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceStats {
    /// The block's own timestamp: when the counters were taken. The writer uses
    /// `endtime_ns` (then the last packet's time, then 0) when this is `None`.
    pub ts_ns: Option<u64>,
    /// `isb_starttime`: start of the capture. The writer uses the first packet's time
    /// on the interface when this is `None`.
    pub starttime_ns: Option<u64>,
    /// `isb_endtime`: end of the capture. The writer uses the last packet's time on the
    /// interface when this is `None`.
    pub endtime_ns: Option<u64>,
    /// `isb_ifrecv`: packets received by the capture from the interface.
    pub ifrecv: Option<u64>,
    /// `isb_ifdrop`: packets dropped for lack of resources (the kernel ring's drops).
    pub ifdrop: Option<u64>,
    /// `isb_filteraccept`: packets accepted by the filter.
    pub filteraccept: Option<u64>,
    /// `isb_osdrop`: packets dropped by the operating system.
    pub osdrop: Option<u64>,
    /// `isb_usrdeliv`: packets delivered to the user.
    pub usrdeliv: Option<u64>,
}

/// An error while writing a capture file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The inner writer failed (full disk, closed pipe, ...).
    #[error(
        "writing the {what} failed; the output is valid up to byte {valid_len} (truncate it there, or free space and retry)"
    )]
    Io {
        /// What was being written: "pcapng section header block", "packet record", ...
        what: &'static str,
        /// Where the output ends in a valid state (the last successful flush).
        valid_len: u64,
        /// The error of the inner writer.
        #[source]
        source: io::Error,
    },
    /// A write was attempted after an earlier one failed.
    #[error(
        "an earlier write to this capture file failed; it is valid up to byte {valid_len} and takes no more packets"
    )]
    Failed {
        /// Where the output ends in a valid state.
        valid_len: u64,
    },
    /// The captured bytes are longer than the interface's snapshot length.
    #[error(
        "captured length {caplen} exceeds the snapshot length {snaplen}; cut the packet to the snaplen before writing"
    )]
    CaplenExceedsSnaplen {
        /// Bytes given.
        caplen: usize,
        /// The interface's snapshot length.
        snaplen: u32,
    },
    /// The captured bytes are longer than the original packet length.
    #[error("captured length {caplen} exceeds the original packet length {orig_len}")]
    CaplenExceedsOrigLen {
        /// Bytes given.
        caplen: usize,
        /// The original length given.
        orig_len: u32,
    },
    /// The block would be larger than [`MAX_BLOCK_LEN`].
    #[error("a {what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// A packet or statistics block names an interface that was never added.
    #[error(
        "interface id {interface} was not added to this pcapng file (add_interface returns the ids)"
    )]
    UnknownInterface {
        /// The id given.
        interface: u32,
    },
    /// More interfaces than a reader accepts ([`MAX_INTERFACES`]).
    #[error("a pcapng file holds at most {max} interfaces")]
    TooManyInterfaces {
        /// The limit.
        max: usize,
    },
    /// A string option is longer than the 65535 bytes an option can hold.
    #[error("the {option} option is {len} bytes long; pcapng options hold at most 65535 bytes")]
    OptionTooLong {
        /// The option's name (`if_name`, `shb_userappl`, ...).
        option: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The timestamp cannot be represented in the file format.
    #[error("timestamp {ts_ns} ns cannot be represented in {format}")]
    TimestampOutOfRange {
        /// The timestamp given.
        ts_ns: u64,
        /// The format that cannot represent it.
        format: &'static str,
    },
}

/// Timestamp resolution of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TsResolution {
    /// Magic 0xa1b23c4d: the fraction field counts nanoseconds.
    #[default]
    Nanos,
    /// Magic 0xa1b2c3d4: the fraction field counts microseconds.
    Micros,
}

/// Shared state of both writers: the reused block buffer, the byte count, the failure
/// latch. Header and statistics blocks go through [`Sink::commit`] as one `write_all`;
/// packets through [`Sink::commit_parts`].
#[derive(Debug)]
struct Sink<W> {
    inner: W,
    buf: Vec<u8>,
    written: u64,
    valid_len: u64,
    failed: bool,
}

impl<W: io::Write> Sink<W> {
    fn new(inner: W) -> Self {
        Sink {
            inner,
            buf: Vec::with_capacity(4096),
            written: 0,
            valid_len: 0,
            failed: false,
        }
    }

    fn check(&self) -> Result<(), WriteError> {
        if self.failed {
            return Err(WriteError::Failed {
                valid_len: self.valid_len,
            });
        }
        Ok(())
    }

    /// Write `self.buf` (one whole block) with a single `write_all`.
    fn commit(&mut self, what: &'static str) -> Result<(), WriteError> {
        self.check()?;
        match self.inner.write_all(&self.buf) {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                Ok(())
            }
            Err(source) => {
                self.failed = true;
                Err(WriteError::Io {
                    what,
                    valid_len: self.valid_len,
                    source,
                })
            }
        }
    }

    /// Write one whole block given as consecutive pieces (`head`, the `body` slices,
    /// `tail`), one `write_all` each, with no copy here. `written` counts the block only
    /// once all of it went out; the first failure latches, as in [`Sink::commit`].
    fn commit_parts(
        &mut self,
        what: &'static str,
        head: &[u8],
        body: &[&[u8]],
        tail: &[u8],
    ) -> Result<(), WriteError> {
        self.check()?;
        let mut n = 0u64;
        let parts = std::iter::once(head)
            .chain(body.iter().copied())
            .chain(std::iter::once(tail));
        for part in parts {
            if let Err(source) = self.inner.write_all(part) {
                self.failed = true;
                return Err(WriteError::Io {
                    what,
                    valid_len: self.valid_len,
                    source,
                });
            }
            n += part.len() as u64;
        }
        self.written += n;
        Ok(())
    }

    /// Write a whole batch of packets (gathered, see [`PacketBatch`]) and empty it.
    /// `written` counts it only once all of it went out.
    fn commit_batch(&mut self, batch: &mut PacketBatch<'_>) -> Result<(), WriteError> {
        self.check()?;
        if let Err(source) = batch.write_all_to(&mut self.inner) {
            self.failed = true;
            return Err(WriteError::Io {
                what: "batch of packets",
                valid_len: self.valid_len,
                source,
            });
        }
        self.written += batch.bytes();
        batch.clear();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        self.check()?;
        match self.inner.flush() {
            Ok(()) => {
                self.valid_len = self.written;
                Ok(())
            }
            Err(source) => {
                self.failed = true;
                Err(WriteError::Io {
                    what: "buffered blocks (flush)",
                    valid_len: self.valid_len,
                    source,
                })
            }
        }
    }
}
