//! The virtio-net header (`struct virtio_net_hdr`, include/uapi/linux/virtio_net.h) that
//! `PACKET_VNET_HDR` puts in front of every frame, received and sent.
//!
//! On a veth (and any device with segmentation offload) a TCP sender's packets pass the
//! packet taps as one GSO frame of up to 64 KiB, larger than the MTU, with the checksum
//! still to be completed (`CHECKSUM_PARTIAL`). Read with a virtio-net header, such a frame
//! says how to cut it (`gso_type`, `gso_size`) and where its checksum goes (`csum_start`,
//! `csum_offset`); sent with the same header, the kernel segments it and completes the
//! checksum (af_packet.c `packet_snd` → `virtio_net_hdr_to_skb`). Without it, the frame is
//! too large to send (EMSGSIZE) and its checksum is wrong.
//!
//! Fields are little-endian (`vio_le()` on little-endian hosts; the legacy layout).

/// `sizeof(struct virtio_net_hdr)`.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is to be
/// completed.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the receiver checked the checksum.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_ECN`: a flag on top of the type.
pub const GSO_ECN: u8 = 0x80;

/// A parsed virtio-net header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_NONE`, TCPv4 (1), UDP (3), TCPv6 (4), UDP_L4 (5), possibly `| GSO_ECN`.
    pub gso_type: u8,
    /// Bytes of headers (up to the transport payload) when segmenting.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts, from the link-layer header.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads the header at the start of `b` (None if shorter than [`VNET_HDR_LEN`]).
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u16le = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16le(2),
            gso_size: u16le(4),
            csum_start: u16le(6),
            csum_offset: u16le(8),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// True for a GSO frame (to be segmented on the way out).
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// The header for the same frame with `n` bytes inserted before its network header (a
    /// VLAN tag put back): offsets into the frame move by `n`.
    pub fn shifted(mut self, n: u16) -> VnetHdr {
        if self.flags & F_NEEDS_CSUM != 0 {
            self.csum_start = self.csum_start.saturating_add(n);
        }
        if self.hdr_len != 0 {
            self.hdr_len = self.hdr_len.saturating_add(n);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        // a TCPv4 GSO frame: NEEDS_CSUM, gso TCPV4, hdr_len 66, gso_size 1448,
        // csum_start 34 (Ethernet + IPv4), csum_offset 16 (TCP checksum)
        let bytes = [0x01, 0x01, 66, 0, 0xa8, 0x05, 34, 0, 16, 0];
        let h = VnetHdr::parse(&bytes).unwrap();
        assert_eq!(h.flags, F_NEEDS_CSUM);
        assert_eq!(h.gso_size, 1448);
        assert_eq!(h.csum_start, 34);
        assert!(h.is_gso());
        assert_eq!(h.to_bytes(), bytes);
        let t = h.shifted(4);
        assert_eq!((t.csum_start, t.hdr_len), (38, 70));
        assert!(VnetHdr::parse(&bytes[..9]).is_none());
        let plain = VnetHdr::default();
        assert!(!plain.is_gso());
        assert_eq!(plain.shifted(4), plain, "nothing to move");
        assert!(
            !VnetHdr {
                gso_type: GSO_ECN,
                ..plain
            }
            .is_gso()
        );
    }
}
