//! Parsing of one TPACKET_V3 block: the block descriptor and the frames in it.
//!
//! Plain, bounds-checked code over a byte slice laid out like the kernel's
//! `struct tpacket_block_desc` followed, per frame, by `struct tpacket3_hdr`, `struct
//! sockaddr_ll` and the packet bytes (include/uapi/linux/if_packet.h), so it is tested
//! on synthetic blocks. All fields are in host byte order, as the kernel writes them.

use crate::sys::{
    BLOCK_DESC_LEN, PACKET_OUTGOING, SOCKADDR_LL_LEN, TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID, TPACKET3_HDR_LEN,
};

/// Byte offsets of the fields this crate reads.
pub(crate) mod field {
    // struct tpacket_block_desc { version, offset_to_priv, struct tpacket_hdr_v1 bh1 }
    pub const BLK_VERSION: usize = 0;
    pub const BLK_STATUS: usize = 8;
    pub const BLK_NUM_PKTS: usize = 12;
    pub const BLK_OFFSET_TO_FIRST_PKT: usize = 16;
    pub const BLK_LEN: usize = 20;
    pub const BLK_SEQ_NUM: usize = 24;
    // struct tpacket3_hdr
    pub const TP_NEXT_OFFSET: usize = 0;
    pub const TP_SEC: usize = 4;
    pub const TP_NSEC: usize = 8;
    pub const TP_SNAPLEN: usize = 12;
    pub const TP_LEN: usize = 16;
    pub const TP_STATUS: usize = 20;
    pub const TP_MAC: usize = 24;
    pub const TP_RXHASH: usize = 28;
    pub const TP_VLAN_TCI: usize = 32;
    pub const TP_VLAN_TPID: usize = 36;
    // struct sockaddr_ll, at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) = 48
    pub const SLL: usize = 48;
    pub const SLL_IFINDEX: usize = SLL + 4;
    pub const SLL_HATYPE: usize = SLL + 8;
    pub const SLL_PKTTYPE: usize = SLL + 10;
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The descriptor at the start of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockDesc {
    pub version: u32,
    pub status: u32,
    pub num_pkts: u32,
    pub offset_to_first_pkt: u32,
    pub blk_len: u32,
    pub seq_num: u64,
}

impl BlockDesc {
    /// Reads the descriptor; `None` if the slice is shorter than one.
    pub fn parse(block: &[u8]) -> Option<BlockDesc> {
        if block.len() < BLOCK_DESC_LEN {
            return None;
        }
        let seq = &block[field::BLK_SEQ_NUM..field::BLK_SEQ_NUM + 8];
        Some(BlockDesc {
            version: u32_at(block, field::BLK_VERSION),
            status: u32_at(block, field::BLK_STATUS),
            num_pkts: u32_at(block, field::BLK_NUM_PKTS),
            offset_to_first_pkt: u32_at(block, field::BLK_OFFSET_TO_FIRST_PKT),
            blk_len: u32_at(block, field::BLK_LEN),
            seq_num: u64::from_ne_bytes(seq.try_into().expect("8 bytes")),
        })
    }
}

/// Which way a packet went through the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Received by the interface (any `sll_pkttype` other than `PACKET_OUTGOING`).
    In,
    /// Sent by the interface (`PACKET_OUTGOING`).
    Out,
}

/// The kernel's `sll_pkttype` (include/uapi/linux/if_packet.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketType {
    /// `PACKET_HOST`: addressed to this host.
    Host,
    /// `PACKET_BROADCAST`: link-layer broadcast.
    Broadcast,
    /// `PACKET_MULTICAST`: link-layer multicast.
    Multicast,
    /// `PACKET_OTHERHOST`: addressed to another host (seen in promiscuous mode).
    OtherHost,
    /// `PACKET_OUTGOING`: sent by this host.
    Outgoing,
    /// `PACKET_LOOPBACK`: looped back (multicast sent by this host).
    Loopback,
    /// Any other value the kernel reports.
    Other(u8),
}

impl From<u8> for PacketType {
    fn from(v: u8) -> Self {
        match v {
            0 => PacketType::Host,
            1 => PacketType::Broadcast,
            2 => PacketType::Multicast,
            3 => PacketType::OtherHost,
            4 => PacketType::Outgoing,
            5 => PacketType::Loopback,
            n => PacketType::Other(n),
        }
    }
}

/// One captured packet, borrowed from its ring block. Reading a field reads the kernel's
/// header in place; nothing is copied.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    /// The block, from this frame's header to the block's end.
    hdr: &'a [u8],
    /// The captured bytes (`tp_snaplen` of them from `tp_mac`).
    data: &'a [u8],
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("timestamp_ns", &self.timestamp_ns())
            .field("wire_len", &self.wire_len())
            .field("captured", &self.data.len())
            .field("ifindex", &self.ifindex())
            .field("direction", &self.direction())
            .field("vlan", &self.vlan())
            .finish()
    }
}

/// The 802.1Q tag length.
pub const VLAN_TAG_LEN: usize = 4;
/// Where libpcap re-inserts the tag: after the two MAC addresses.
const VLAN_OFFSET: usize = 12;

impl<'a> Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch (`tp_sec`, `tp_nsec`).
    #[inline]
    pub fn timestamp_ns(&self) -> u64 {
        u64::from(u32_at(self.hdr, field::TP_SEC)) * 1_000_000_000
            + u64::from(u32_at(self.hdr, field::TP_NSEC))
    }

    /// The captured bytes as the kernel stored them (for a VLAN frame whose tag the
    /// kernel took out, without the tag; see [`Frame::copy_with_vlan`]).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The captured bytes with the virtio-net header the kernel wrote just before them, on
    /// a capture opened with [`CaptureConfig::vnet_hdr`](crate::CaptureConfig::vnet_hdr)
    /// (on any other capture those 10 bytes are padding: meaningless). `None` if the frame
    /// leaves no room for one.
    #[inline]
    pub fn with_vnet_hdr(&self) -> Option<&'a [u8]> {
        let mac = usize::from(u16_at(self.hdr, field::TP_MAC));
        let start = mac.checked_sub(crate::vnet::VNET_HDR_LEN)?;
        if start < TPACKET3_HDR_LEN + SOCKADDR_LL_LEN {
            return None;
        }
        self.hdr.get(start..mac + self.data.len())
    }

    /// The kernel's `tp_len`: the packet's length without a tag the kernel took out.
    #[inline]
    pub fn kernel_len(&self) -> u32 {
        u32_at(self.hdr, field::TP_LEN)
    }

    /// The packet's length on the wire, counting a restored VLAN tag (+4), as libpcap's
    /// `len`.
    #[inline]
    pub fn wire_len(&self) -> u32 {
        self.kernel_len()
            + if self.restores_vlan() {
                VLAN_TAG_LEN as u32
            } else {
                0
            }
    }

    /// The number of captured bytes, counting a restored VLAN tag, as libpcap's `caplen`.
    #[inline]
    pub fn cap_len(&self) -> u32 {
        self.data.len() as u32
            + if self.restores_vlan() {
                VLAN_TAG_LEN as u32
            } else {
                0
            }
    }

    /// The frame's `tp_status` bits.
    #[inline]
    pub fn status(&self) -> u32 {
        u32_at(self.hdr, field::TP_STATUS)
    }

    /// The flow hash the kernel computed (`tp_rxhash`; 0 unless requested or fanout hashed).
    #[inline]
    pub fn rxhash(&self) -> u32 {
        u32_at(self.hdr, field::TP_RXHASH)
    }

    /// The interface the packet went through (`sll_ifindex`).
    #[inline]
    pub fn ifindex(&self) -> u32 {
        u32_at(self.hdr, field::SLL_IFINDEX)
    }

    /// The interface's ARPHRD_* type (`sll_hatype`).
    #[inline]
    pub fn hatype(&self) -> u16 {
        u16_at(self.hdr, field::SLL_HATYPE)
    }

    /// The kernel's packet type (`sll_pkttype`).
    #[inline]
    pub fn packet_type(&self) -> PacketType {
        PacketType::from(self.hdr[field::SLL_PKTTYPE])
    }

    /// In or out, from `sll_pkttype`.
    #[inline]
    pub fn direction(&self) -> Dir {
        if self.hdr[field::SLL_PKTTYPE] == PACKET_OUTGOING {
            Dir::Out
        } else {
            Dir::In
        }
    }

    /// The VLAN tag the kernel took out of the bytes, as (TPID, TCI): the TPID is
    /// `tp_vlan_tpid` when the kernel says it is valid, else 0x8100 (libpcap's rule).
    #[inline]
    pub fn vlan(&self) -> Option<(u16, u16)> {
        let status = self.status();
        let tci = u32_at(self.hdr, field::TP_VLAN_TCI);
        if tci == 0 && status & TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
            u16_at(self.hdr, field::TP_VLAN_TPID)
        } else {
            0x8100
        };
        Some((tpid, tci as u16))
    }

    /// True if the tag is put back into the bytes by [`Frame::copy_with_vlan`] (a tag
    /// exists and at least both MAC addresses were captured, as in libpcap).
    #[inline]
    fn restores_vlan(&self) -> bool {
        self.data.len() >= VLAN_OFFSET && self.vlan().is_some()
    }

    /// The packet as libpcap hands it out: the captured bytes with a VLAN tag the kernel
    /// took out put back after the MAC addresses. `out` is cleared first; reuse one
    /// buffer for all frames to avoid allocating per packet.
    pub fn copy_with_vlan(&self, out: &mut Vec<u8>) {
        out.clear();
        match self.vlan() {
            Some((tpid, tci)) if self.data.len() >= VLAN_OFFSET => {
                out.reserve(self.data.len() + VLAN_TAG_LEN);
                out.extend_from_slice(&self.data[..VLAN_OFFSET]);
                out.extend_from_slice(&tpid.to_be_bytes());
                out.extend_from_slice(&tci.to_be_bytes());
                out.extend_from_slice(&self.data[VLAN_OFFSET..]);
            }
            _ => out.extend_from_slice(self.data),
        }
    }
}

/// Iterates the frames of one block.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    block: &'a [u8],
    /// Offset of the next frame header.
    off: usize,
    left: u32,
}

impl<'a> Frames<'a> {
    /// Walks the frames of `block` (a whole block, descriptor included). A block whose
    /// descriptor or frame offsets do not fit in it yields the frames that do fit and
    /// then stops.
    pub(crate) fn new(block: &'a [u8]) -> Frames<'a> {
        match BlockDesc::parse(block) {
            Some(d) => Frames {
                block,
                off: d.offset_to_first_pkt as usize,
                left: d.num_pkts,
            },
            None => Frames {
                block,
                off: 0,
                left: 0,
            },
        }
    }

    /// Checks the frame header at `off` and returns the frame and the next offset.
    fn frame_at(&self, off: usize) -> Option<(Frame<'a>, usize)> {
        let hdr = self.block.get(off..)?;
        if hdr.len() < TPACKET3_HDR_LEN + SOCKADDR_LL_LEN {
            return None;
        }
        let mac = usize::from(u16_at(hdr, field::TP_MAC));
        let snaplen = u32_at(hdr, field::TP_SNAPLEN) as usize;
        let data = hdr.get(mac..mac.checked_add(snaplen)?)?;
        if mac < TPACKET3_HDR_LEN + SOCKADDR_LL_LEN {
            return None;
        }
        let next = u32_at(hdr, field::TP_NEXT_OFFSET) as usize;
        Some((Frame { hdr, data }, off.checked_add(next)?))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    #[inline]
    fn next(&mut self) -> Option<Frame<'a>> {
        if self.left == 0 {
            return None;
        }
        match self.frame_at(self.off) {
            Some((frame, next)) => {
                self.left -= 1;
                self.off = next;
                Some(frame)
            }
            None => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

#[cfg(test)]
pub(crate) mod synth {
    //! Builds blocks the way net/packet/af_packet.c `tpacket_rcv` + `prb_fill_curr_block`
    //! lays them out, for tests.
    use super::*;
    use crate::sys::{TP_STATUS_USER, TPACKET_ALIGNMENT};

    fn align(n: usize) -> usize {
        n.div_ceil(TPACKET_ALIGNMENT) * TPACKET_ALIGNMENT
    }

    #[derive(Debug, Clone)]
    pub struct SynthFrame {
        pub sec: u32,
        pub nsec: u32,
        pub len: u32,
        pub data: Vec<u8>,
        pub status: u32,
        pub vlan_tci: u32,
        pub vlan_tpid: u16,
        pub ifindex: i32,
        pub pkttype: u8,
    }

    impl SynthFrame {
        pub fn new(data: &[u8]) -> SynthFrame {
            SynthFrame {
                sec: 1_700_000_000,
                nsec: 123,
                len: data.len() as u32,
                data: data.to_vec(),
                status: TP_STATUS_USER,
                vlan_tci: 0,
                vlan_tpid: 0,
                ifindex: 7,
                pkttype: 0,
            }
        }
    }

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
    }
    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Writes a closed block with `frames` into `block` (zero-filled first).
    pub fn write_block(block: &mut [u8], seq: u64, status: u32, frames: &[SynthFrame]) {
        block.fill(0);
        put32(block, field::BLK_VERSION, 1);
        put32(block, field::BLK_NUM_PKTS, frames.len() as u32);
        put32(block, field::BLK_OFFSET_TO_FIRST_PKT, BLOCK_DESC_LEN as u32);
        block[field::BLK_SEQ_NUM..field::BLK_SEQ_NUM + 8].copy_from_slice(&seq.to_ne_bytes());
        let mut off = BLOCK_DESC_LEN;
        for (i, f) in frames.iter().enumerate() {
            // macoff as tpacket_rcv: TPACKET_ALIGN(hdrlen + 16) + 16 - 14 (Ethernet)
            let mac = align(TPACKET3_HDR_LEN + SOCKADDR_LL_LEN + 16) + 16 - 14;
            let total = align(mac + f.data.len());
            let h = &mut block[off..];
            let next = if i + 1 == frames.len() {
                0
            } else {
                total as u32
            };
            put32(h, field::TP_NEXT_OFFSET, next);
            put32(h, field::TP_SEC, f.sec);
            put32(h, field::TP_NSEC, f.nsec);
            put32(h, field::TP_SNAPLEN, f.data.len() as u32);
            put32(h, field::TP_LEN, f.len);
            put32(h, field::TP_STATUS, f.status);
            put16(h, field::TP_MAC, mac as u16);
            put32(h, field::TP_VLAN_TCI, f.vlan_tci);
            put16(h, field::TP_VLAN_TPID, f.vlan_tpid);
            put16(h, field::SLL, libc::AF_PACKET as u16);
            put32(h, field::SLL_IFINDEX, f.ifindex as u32);
            put16(h, field::SLL_HATYPE, 1);
            h[field::SLL_PKTTYPE] = f.pkttype;
            h[mac..mac + f.data.len()].copy_from_slice(&f.data);
            off += total;
        }
        put32(block, field::BLK_LEN, off as u32);
        // status last, as the kernel does (prb_close_block: smp_wmb then status)
        put32(block, field::BLK_STATUS, status);
    }
}

#[cfg(test)]
mod tests {
    use super::synth::*;
    use super::*;
    use crate::sys::{TP_STATUS_USER, TPACKET_ALIGNMENT};

    fn eth(len: usize, fill: u8) -> Vec<u8> {
        let mut v = vec![fill; len];
        v[..6].copy_from_slice(&[0xff; 6]);
        v[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        v[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        v
    }

    #[test]
    fn walks_every_frame_of_a_block() {
        let mut block = vec![0u8; 16384];
        let frames: Vec<SynthFrame> = [60usize, 61, 1514, 64]
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let mut f = SynthFrame::new(&eth(n, i as u8));
                f.nsec = i as u32;
                f.ifindex = 3 + i as i32;
                f.pkttype = if i == 1 { PACKET_OUTGOING } else { 0 };
                f
            })
            .collect();
        write_block(&mut block, 9, TP_STATUS_USER, &frames);
        let d = BlockDesc::parse(&block).unwrap();
        assert_eq!((d.num_pkts, d.seq_num, d.status), (4, 9, TP_STATUS_USER));
        let got: Vec<Frame<'_>> = Frames::new(&block).collect();
        assert_eq!(got.len(), 4);
        for (i, (g, want)) in got.iter().zip(&frames).enumerate() {
            assert_eq!(g.data(), &want.data[..], "frame {i}");
            assert_eq!(g.wire_len(), want.len);
            assert_eq!(g.cap_len(), want.data.len() as u32);
            assert_eq!(g.timestamp_ns(), 1_700_000_000 * 1_000_000_000 + i as u64);
            assert_eq!(g.ifindex(), 3 + i as u32);
            assert_eq!(g.vlan(), None);
            assert_eq!(g.hatype(), 1);
            let dir = if i == 1 { Dir::Out } else { Dir::In };
            assert_eq!(g.direction(), dir);
            // the packet data starts so that the network header is 16-aligned
            let mac_off = g.data().as_ptr() as usize - block.as_ptr() as usize;
            assert_eq!((mac_off + 14) % TPACKET_ALIGNMENT, 0);
        }
    }

    #[test]
    fn vlan_tag_is_restored_like_libpcap() {
        let plain = eth(100, 0xaa);
        let mut f = SynthFrame::new(&plain);
        f.status |= TP_STATUS_VLAN_VALID;
        f.vlan_tci = 42 | (5 << 13);
        let mut g = f.clone();
        g.status |= TP_STATUS_VLAN_TPID_VALID;
        g.vlan_tpid = 0x88a8;
        // tci 0 without VLAN_VALID: no tag
        let h = SynthFrame::new(&plain);
        let mut block = vec![0u8; 4096];
        write_block(&mut block, 1, TP_STATUS_USER, &[f, g, h]);
        let frames: Vec<_> = Frames::new(&block).collect();
        let mut buf = Vec::new();

        assert_eq!(frames[0].vlan(), Some((0x8100, 42 | (5 << 13))));
        assert_eq!(frames[0].wire_len(), 104);
        assert_eq!(frames[0].cap_len(), 104);
        assert_eq!(frames[0].data(), &plain[..]);
        frames[0].copy_with_vlan(&mut buf);
        let mut want = plain[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0xa0, 0x2a]);
        want.extend_from_slice(&plain[12..]);
        assert_eq!(buf, want);

        assert_eq!(frames[1].vlan(), Some((0x88a8, 42 | (5 << 13))));
        frames[1].copy_with_vlan(&mut buf);
        assert_eq!(&buf[12..16], &[0x88, 0xa8, 0xa0, 0x2a]);
        assert_eq!(buf.len(), 104);

        assert_eq!(frames[2].vlan(), None);
        frames[2].copy_with_vlan(&mut buf);
        assert_eq!(buf, plain);
        assert_eq!(frames[2].wire_len(), 100);
    }

    #[test]
    fn vlan_on_a_frame_cut_before_the_macs_is_not_inserted() {
        let mut f = SynthFrame::new(&[1, 2, 3, 4, 5, 6, 7, 8]);
        f.len = 100;
        f.vlan_tci = 7;
        let mut block = vec![0u8; 1024];
        write_block(&mut block, 1, TP_STATUS_USER, &[f]);
        let fr = Frames::new(&block).next().unwrap();
        assert_eq!(fr.vlan(), Some((0x8100, 7)));
        assert_eq!((fr.wire_len(), fr.cap_len()), (100, 8));
        let mut buf = vec![9; 3];
        fr.copy_with_vlan(&mut buf);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn truncated_capture_reports_wire_and_captured_lengths() {
        let full = eth(1514, 1);
        let mut f = SynthFrame::new(&full[..64]);
        f.len = 1514;
        let mut block = vec![0u8; 1024];
        write_block(&mut block, 1, TP_STATUS_USER, &[f]);
        let fr = Frames::new(&block).next().unwrap();
        assert_eq!(
            (fr.wire_len(), fr.cap_len(), fr.data().len()),
            (1514, 64, 64)
        );
    }

    #[test]
    fn corrupt_offsets_stop_the_walk_without_panicking() {
        let mut block = vec![0u8; 2048];
        let frames = vec![SynthFrame::new(&eth(60, 1)); 3];
        write_block(&mut block, 1, TP_STATUS_USER, &frames);
        // claim more packets than there are: the last frame's next_offset is 0, so the walk
        // would loop on it; num_pkts bounds it.
        block[field::BLK_NUM_PKTS..field::BLK_NUM_PKTS + 4].copy_from_slice(&5u32.to_ne_bytes());
        assert_eq!(Frames::new(&block).count(), 5);
        // a next_offset pointing outside the block ends the walk
        let first = BLOCK_DESC_LEN;
        block[first..first + 4].copy_from_slice(&100_000u32.to_ne_bytes());
        assert_eq!(Frames::new(&block).count(), 1);
        // a snaplen running past the block end yields nothing
        block[first + field::TP_SNAPLEN..first + field::TP_SNAPLEN + 4]
            .copy_from_slice(&4000u32.to_ne_bytes());
        assert_eq!(Frames::new(&block).count(), 0);
        // a block shorter than its descriptor yields nothing
        assert_eq!(Frames::new(&block[..20]).count(), 0);
        // offset_to_first_pkt past the end yields nothing
        block[field::BLK_OFFSET_TO_FIRST_PKT..field::BLK_OFFSET_TO_FIRST_PKT + 4]
            .copy_from_slice(&5000u32.to_ne_bytes());
        assert_eq!(Frames::new(&block).count(), 0);
    }
}
