//! The reader's one error type.

use std::io;

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
    /// A pcapng block length is above [`MAX_BLOCK_LEN`](crate::MAX_BLOCK_LEN).
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
    /// A packet's captured length is above its link type's maximum
    /// ([`LinkType::max_snaplen`](crate::LinkType::max_snaplen)), as libpcap refuses it.
    #[error(
        "the packet at byte {offset} has captured length {caplen}, above the maximum of {max} for its link type; the file is corrupt"
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
    /// More interface description blocks than [`MAX_INTERFACES`](crate::MAX_INTERFACES).
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
            | CaplenTooLarge { offset, .. }
            | CaplenExceedsBlock { offset, .. }
            | Malformed { offset, .. }
            | UnknownInterface { offset, .. }
            | TooManyInterfaces { offset, .. }
            | TimestampOutOfRange { offset } => Some(*offset),
        }
    }
}
