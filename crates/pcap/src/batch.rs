//! [`PacketBatch`]: packets gathered for one vectored write, their bytes borrowed.

use std::io::{self, IoSlice, Write};

/// Packets framed for the file but not yet written: the framing (record headers, pcapng
/// trailers) in a buffer of the batch, the packet bytes borrowed from the caller (a capture
/// ring, say), except pieces of at most [`PacketBatch::COPY_MAX`] bytes, which are copied
/// next to the framing (one more slice costs the kernel more than copying those).
/// [`PcapngWriter::write_batch`](crate::PcapngWriter::write_batch) and
/// [`PcapWriter::write_batch`](crate::PcapWriter::write_batch) hand it to the inner writer as
/// one gathered write (`writev` for a file), so the packet bytes are copied once, by the
/// kernel, straight from where they are.
///
/// Fill it with [`PcapngWriter::batch_packet`](crate::PcapngWriter::batch_packet) or
/// [`PcapWriter::batch_packet`](crate::PcapWriter::batch_packet); the batch then holds about
/// two slices per large packet (what is copied between two of them is one slice). Keep it
/// to about [`PacketBatch::MAX_SLICES`] slices: the kernel takes at most that many per
/// `writev`.
///
/// ```
/// use nsring_pcap::{PacketBatch, PcapHeader, PcapWriter};
/// let mut w = PcapWriter::new(Vec::new(), PcapHeader::default())?;
/// let ring = [0u8; 120];
/// let mut batch = PacketBatch::new();
/// w.batch_packet(&mut batch, 1_700_000_000_000_000_000, 60, &[&ring[..60]])?;
/// w.batch_packet(&mut batch, 1_700_000_000_000_000_001, 60, &[&ring[60..]])?;
/// assert_eq!((batch.packets(), batch.bytes()), (2, 2 * (16 + 60)));
/// w.write_batch(&mut batch)?;
/// assert_eq!(w.finish()?.len(), 24 + 2 * (16 + 60));
/// # Ok::<(), nsring_pcap::WriteError>(())
/// ```
#[derive(Debug, Default)]
pub struct PacketBatch<'a> {
    framing: Vec<u8>,
    pieces: Vec<Piece<'a>>,
    bytes: u64,
    packets: usize,
}

#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    /// `framing[start..end]`: framing and copied small pieces.
    Framing(usize, usize),
    Data(&'a [u8]),
}

impl<'a> PacketBatch<'a> {
    /// The most slices one `writev` takes on Linux (`IOV_MAX`).
    pub const MAX_SLICES: usize = 1024;
    /// Packet pieces up to this long are copied into the batch rather than borrowed.
    pub const COPY_MAX: usize = 256;

    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `bytes` of framing and small pieces, and `slices`
    /// slices.
    pub fn with_capacity(bytes: usize, slices: usize) -> Self {
        PacketBatch {
            framing: Vec::with_capacity(bytes),
            pieces: Vec::with_capacity(slices),
            bytes: 0,
            packets: 0,
        }
    }

    /// Empties the batch and frees it from what it borrowed, keeping its buffers: a batch
    /// can then outlive the ring block it was filled from, and be filled again from the
    /// next one without allocating.
    pub fn recycle<'b>(mut self) -> PacketBatch<'b> {
        self.clear();
        PacketBatch {
            framing: self.framing,
            // empty, so the closure never runs; collecting in place keeps the allocation
            pieces: self.pieces.into_iter().map(|_| Piece::Data(&[])).collect(),
            bytes: 0,
            packets: 0,
        }
    }

    /// Packets in the batch.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Bytes the batch will write.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Slices the batch will hand to the writer.
    pub fn slices(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.packets == 0
    }

    /// Forget every packet (keeping the buffers).
    pub fn clear(&mut self) {
        self.framing.clear();
        self.pieces.clear();
        self.bytes = 0;
        self.packets = 0;
    }

    /// Adds one packet: its framing head, its data pieces, its framing tail.
    pub(crate) fn push(&mut self, head: &[u8], body: &[&'a [u8]], tail: &[u8]) {
        self.push_framing(head);
        for part in body.iter().filter(|p| !p.is_empty()) {
            if part.len() <= Self::COPY_MAX {
                self.push_framing(part);
            } else {
                self.pieces.push(Piece::Data(part));
                self.bytes += part.len() as u64;
            }
        }
        self.push_framing(tail);
        self.packets += 1;
    }

    fn push_framing(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        let start = self.framing.len();
        self.framing.extend_from_slice(b);
        let end = self.framing.len();
        match self.pieces.last_mut() {
            Some(Piece::Framing(_, e)) if *e == start => *e = end,
            _ => self.pieces.push(Piece::Framing(start, end)),
        }
        self.bytes += b.len() as u64;
    }

    /// Writes the whole batch to `w` with vectored writes, however they come back short.
    pub(crate) fn write_all_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = self
            .pieces
            .iter()
            .map(|p| match *p {
                Piece::Framing(s, e) => IoSlice::new(&self.framing[s..e]),
                Piece::Data(d) => IoSlice::new(d),
            })
            .collect();
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            match w.write_vectored(bufs) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the writer took no bytes",
                    ));
                }
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Direction, InterfaceDesc, LinkType, PcapHeader, PcapWriter, PcapngWriter, SectionDesc,
        WriteError,
    };

    /// Takes at most `max` bytes per call, only from the first two slices, and fails with
    /// `Interrupted` every third call: the batch must still come out whole and in order.
    struct Stingy {
        out: Vec<u8>,
        max: usize,
        calls: usize,
        fail_after: Option<usize>,
    }

    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.fail_after.is_some_and(|n| self.out.len() >= n) {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let mut n = 0;
            for b in bufs.iter().take(2) {
                let take = b.len().min(self.max - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.max {
                    break;
                }
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn stingy(max: usize, fail_after: Option<usize>) -> Stingy {
        Stingy {
            out: Vec::new(),
            max,
            calls: 0,
            fail_after,
        }
    }

    fn desc(name: &str) -> InterfaceDesc {
        InterfaceDesc {
            name: name.into(),
            description: Some("netns t".into()),
            linktype: LinkType::ETHERNET,
            snaplen: 0,
            tsresol_nanos: true,
        }
    }

    /// Interface, timestamp, pieces, direction.
    type Pkt<'a> = (u32, u64, Vec<&'a [u8]>, Option<Direction>);

    /// A varied run of packets: every padding, split and empty pieces, both directions and
    /// none.
    fn packets(ring: &[u8]) -> Vec<Pkt<'_>> {
        let dirs = [None, Some(Direction::Inbound), Some(Direction::Outbound)];
        (0..40usize)
            .map(|i| {
                let len = (i * 337) % 1000;
                let d = &ring[i..i + len];
                let cut = len / 3;
                let parts = match i % 3 {
                    0 => vec![d],
                    1 => vec![&d[..cut], &[][..], &d[cut..]],
                    _ => vec![&d[..cut], &d[cut..cut + len / 3], &d[cut + len / 3..]],
                };
                (
                    (i % 2) as u32,
                    1_700_000_000_000_000_000 + i as u64,
                    parts,
                    dirs[i % 3],
                )
            })
            .collect()
    }

    #[test]
    fn a_pcapng_batch_writes_the_bytes_of_packet_by_packet_writes() {
        let ring: Vec<u8> = (0..=255u8).cycle().take(1100).collect();
        let pk = packets(&ring);
        let mut one = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
        one.add_interface(&desc("a")).unwrap();
        one.add_interface(&desc("b")).unwrap();
        for (ifc, ts, parts, dir) in &pk {
            one.write_packet_parts(*ifc, *ts, 1514, parts, *dir)
                .unwrap();
        }
        let want = one.finish().unwrap();
        for max in [1usize, 5, 64, 1 << 20] {
            let mut w = PcapngWriter::new(stingy(max, None), &SectionDesc::default()).unwrap();
            w.add_interface(&desc("a")).unwrap();
            w.add_interface(&desc("b")).unwrap();
            let mut batch = PacketBatch::new();
            for (k, (ifc, ts, parts, dir)) in pk.iter().enumerate() {
                w.batch_packet(&mut batch, *ifc, *ts, 1514, parts, *dir)
                    .unwrap();
                if k % 7 == 6 {
                    w.write_batch(&mut batch).unwrap();
                    assert!(batch.is_empty());
                }
            }
            assert!(batch.slices() <= 3 * batch.packets() + 1);
            w.write_batch(&mut batch).unwrap();
            assert_eq!(w.bytes_written(), want.len() as u64);
            assert_eq!(w.finish().unwrap().out, want, "max {max}");
        }
    }

    #[test]
    fn a_pcap_batch_writes_the_bytes_of_packet_by_packet_writes() {
        let ring: Vec<u8> = (0..=255u8).cycle().take(1100).collect();
        let pk = packets(&ring);
        let mut one = PcapWriter::new(Vec::new(), PcapHeader::default()).unwrap();
        for (_, ts, parts, _) in &pk {
            one.write_packet_parts(*ts, 1514, parts).unwrap();
        }
        let want = one.finish().unwrap();
        let mut w = PcapWriter::new(stingy(13, None), PcapHeader::default()).unwrap();
        let mut batch = PacketBatch::new();
        for (_, ts, parts, _) in &pk {
            w.batch_packet(&mut batch, *ts, 1514, parts).unwrap();
        }
        // framing and small pieces between two large pieces are one slice
        let large: usize = pk
            .iter()
            .map(|p| {
                p.2.iter()
                    .filter(|d| d.len() > PacketBatch::COPY_MAX)
                    .count()
            })
            .sum();
        assert!(large > 10);
        assert!(batch.slices() <= 2 * large + 1);
        w.write_batch(&mut batch).unwrap();
        assert_eq!(w.finish().unwrap().out, want);
    }

    #[test]
    fn a_recycled_batch_keeps_its_buffers() {
        let mut b = PacketBatch::with_capacity(1000, 10);
        {
            let ring = vec![1u8; 500];
            b.push(&[0; 16], &[&ring[..]], &[]);
            b = b.recycle();
        }
        assert!(b.is_empty());
        assert_eq!((b.bytes(), b.slices()), (0, 0));
        assert!(b.framing.capacity() >= 1000 && b.pieces.capacity() >= 10);
    }

    #[test]
    fn small_packets_are_copied_into_one_slice() {
        let ring = [3u8; 64 * 10];
        let mut w = PcapWriter::new(Vec::new(), PcapHeader::default()).unwrap();
        let mut batch = PacketBatch::new();
        for (i, pkt) in ring.chunks(64).enumerate() {
            w.batch_packet(&mut batch, i as u64, 64, &[pkt]).unwrap();
        }
        assert_eq!((batch.slices(), batch.bytes()), (1, 10 * (16 + 64)));
        w.write_batch(&mut batch).unwrap();
        assert_eq!(w.finish().unwrap().len(), 24 + 10 * (16 + 64));
    }

    #[test]
    fn a_failed_batch_leaves_the_valid_length_and_latches() {
        let ring = [7u8; 1000];
        let mut w = PcapWriter::new(stingy(100, Some(500)), PcapHeader::default()).unwrap();
        w.write_packet(1, 100, &ring[..100]).unwrap();
        w.flush().unwrap();
        let valid = w.valid_len();
        assert_eq!(valid, 24 + 116);
        let mut batch = PacketBatch::new();
        for i in 0..8 {
            w.batch_packet(&mut batch, 2 + i, 100, &[&ring[..100]])
                .unwrap();
        }
        match w.write_batch(&mut batch) {
            Err(WriteError::Io {
                valid_len, source, ..
            }) => {
                assert_eq!(valid_len, valid);
                assert_eq!(source.raw_os_error(), Some(28));
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert_eq!(w.bytes_written(), valid);
        assert!(matches!(
            w.batch_packet(&mut batch, 9, 100, &[&ring[..100]]),
            Err(WriteError::Failed { .. })
        ));
    }

    #[test]
    fn batch_checks_are_those_of_single_writes() {
        let mut w = PcapngWriter::new(Vec::new(), &SectionDesc::default()).unwrap();
        let mut batch = PacketBatch::new();
        assert!(matches!(
            w.batch_packet(&mut batch, 0, 0, 4, &[&[0; 4]], None),
            Err(WriteError::UnknownInterface { interface: 0 })
        ));
        w.add_interface(&desc("a")).unwrap();
        assert!(matches!(
            w.batch_packet(&mut batch, 0, 0, 3, &[&[0; 2], &[0; 2]], None),
            Err(WriteError::CaplenExceedsOrigLen { caplen: 4, .. })
        ));
        assert!(batch.is_empty());
        assert_eq!(batch.bytes(), 0);
    }
}
