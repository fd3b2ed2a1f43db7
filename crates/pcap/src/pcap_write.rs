//! Classic pcap writer.

use std::io::Write;

use crate::bytes::{put_u16, put_u32};
use crate::{LinkType, MAX_BLOCK_LEN, PacketBatch, Sink, TsResolution, WriteError};

/// The fields of a classic pcap file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapHeader {
    /// Link type of every record.
    pub linktype: LinkType,
    /// Snapshot length: no record holds more bytes than this.
    pub snaplen: u32,
    /// Timestamp resolution (nanoseconds by default).
    pub resolution: TsResolution,
}

impl Default for PcapHeader {
    fn default() -> Self {
        PcapHeader {
            linktype: LinkType::ETHERNET,
            snaplen: 262_144,
            resolution: TsResolution::Nanos,
        }
    }
}

/// Writes a classic pcap file (version 2.4, little-endian) to any `W: Write`.
///
/// The file header is written by [`PcapWriter::new`]; each packet record (16-byte
/// header plus data) is then handed to the inner writer whole, the data straight from the
/// caller's slices (no copy here). Wrap a file in a large `BufWriter` for throughput and call
/// [`PcapWriter::flush`] or [`PcapWriter::finish`] at the end.
///
/// ```
/// use nsring_pcap::{PcapHeader, PcapWriter};
/// let mut w = PcapWriter::new(Vec::new(), PcapHeader::default())?;
/// w.write_packet(1_700_000_000_123_456_789, 60, &[0u8; 60])?;
/// let bytes = w.finish()?;
/// assert_eq!(bytes.len(), 24 + 16 + 60);
/// # Ok::<(), nsring_pcap::WriteError>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    sink: Sink<W>,
    header: PcapHeader,
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header and return the writer.
    pub fn new(inner: W, header: PcapHeader) -> Result<Self, WriteError> {
        let mut sink = Sink::new(inner);
        let magic = match header.resolution {
            TsResolution::Nanos => 0xa1b2_3c4d,
            TsResolution::Micros => 0xa1b2_c3d4,
        };
        sink.buf.clear();
        put_u32(&mut sink.buf, magic);
        put_u16(&mut sink.buf, 2); // version major
        put_u16(&mut sink.buf, 4); // version minor
        put_u32(&mut sink.buf, 0); // thiszone
        put_u32(&mut sink.buf, 0); // sigfigs
        put_u32(&mut sink.buf, header.snaplen);
        put_u32(&mut sink.buf, u32::from(header.linktype.0));
        sink.commit("pcap file header")?;
        Ok(PcapWriter { sink, header })
    }

    /// The header this file was started with.
    pub fn header(&self) -> &PcapHeader {
        &self.header
    }

    /// Write one packet record: `ts_ns` nanoseconds since the epoch, the packet's
    /// original length on the wire, and the captured bytes (at most the snaplen).
    pub fn write_packet(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        data: &[u8],
    ) -> Result<(), WriteError> {
        self.write_packet_parts(ts_ns, orig_len, &[data])
    }

    /// [`write_packet`](Self::write_packet) with the captured bytes given as consecutive
    /// pieces, written straight from the slices: the only copy is the inner writer's.
    pub fn write_packet_parts(
        &mut self,
        ts_ns: u64,
        orig_len: u32,
        parts: &[&[u8]],
    ) -> Result<(), WriteError> {
        let head = self.frame(ts_ns, orig_len, parts)?;
        self.sink.commit_parts("packet record", &head, parts, &[])
    }

    /// Adds a packet record to `batch` instead of writing it (the same checks and bytes as
    /// [`write_packet_parts`](Self::write_packet_parts); the pieces are borrowed until
    /// [`write_batch`](Self::write_batch)).
    pub fn batch_packet<'a>(
        &mut self,
        batch: &mut PacketBatch<'a>,
        ts_ns: u64,
        orig_len: u32,
        parts: &[&'a [u8]],
    ) -> Result<(), WriteError> {
        let head = self.frame(ts_ns, orig_len, parts)?;
        batch.push(&head, parts, &[]);
        Ok(())
    }

    /// Writes the packets of `batch` with vectored writes and empties it. Like any write,
    /// it is part of the valid file after the next [`flush`](Self::flush).
    pub fn write_batch(&mut self, batch: &mut PacketBatch<'_>) -> Result<(), WriteError> {
        self.sink.commit_batch(batch)
    }

    /// Checks a packet and builds its record header.
    fn frame(&self, ts_ns: u64, orig_len: u32, parts: &[&[u8]]) -> Result<[u8; 16], WriteError> {
        self.sink.check()?;
        let caplen: usize = parts.iter().map(|p| p.len()).sum();
        if self.header.snaplen != 0 && caplen > self.header.snaplen as usize {
            return Err(WriteError::CaplenExceedsSnaplen {
                caplen,
                snaplen: self.header.snaplen,
            });
        }
        if caplen > orig_len as usize {
            return Err(WriteError::CaplenExceedsOrigLen { caplen, orig_len });
        }
        if caplen > MAX_BLOCK_LEN as usize - 16 {
            return Err(WriteError::TooLarge {
                what: "packet record",
                len: caplen + 16,
                max: MAX_BLOCK_LEN,
            });
        }
        let secs =
            u32::try_from(ts_ns / 1_000_000_000).map_err(|_| WriteError::TimestampOutOfRange {
                ts_ns,
                format: "pcap (32-bit seconds)",
            })?;
        let sub_ns = (ts_ns % 1_000_000_000) as u32;
        let frac = match self.header.resolution {
            TsResolution::Nanos => sub_ns,
            TsResolution::Micros => sub_ns / 1000,
        };
        let mut head = [0u8; 16];
        for (slot, v) in head
            .chunks_exact_mut(4)
            .zip([secs, frac, caplen as u32, orig_len])
        {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        Ok(head)
    }

    /// Flush the inner writer. On success the whole output so far is a valid file.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.sink.flush()
    }

    /// Bytes handed to the inner writer so far (whole records only).
    pub fn bytes_written(&self) -> u64 {
        self.sink.written
    }

    /// The length up to which the output is known to be a valid file: the position of
    /// the last successful [`flush`](Self::flush). After a write error, truncate there.
    pub fn valid_len(&self) -> u64 {
        self.sink.valid_len
    }

    /// A reference to the inner writer.
    pub fn get_ref(&self) -> &W {
        &self.sink.inner
    }

    /// Flush and return the inner writer.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.sink.flush()?;
        Ok(self.sink.inner)
    }
}
