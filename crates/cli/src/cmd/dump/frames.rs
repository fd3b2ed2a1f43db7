//! A frame's bytes as they go into the file: borrowed from the ring in at most three
//! pieces, with the VLAN tag the kernel took out put back.

use nsring_capture::Frame;

/// A frame's bytes as libpcap hands them out, in at most three borrowed pieces: with a
/// VLAN tag the kernel took out put back after the MAC addresses, as
/// `Frame::copy_with_vlan` does, without copying the packet.
#[derive(Debug)]
pub(super) struct Parts<'a> {
    p: [&'a [u8]; 3],
    n: usize,
}

impl<'a> Parts<'a> {
    pub(super) fn one(data: &'a [u8]) -> Parts<'a> {
        Parts {
            p: [data, &[], &[]],
            n: 1,
        }
    }

    pub(super) fn as_slice(&self) -> &[&'a [u8]] {
        &self.p[..self.n]
    }

    /// Cut to at most `max` bytes in all.
    pub(super) fn truncate(&mut self, max: usize) {
        let mut left = max;
        for (i, part) in self.p[..self.n].iter_mut().enumerate() {
            if part.len() >= left {
                *part = &part[..left];
                self.n = i + 1;
                return;
            }
            left -= part.len();
        }
    }
}

/// The MAC addresses: a restored VLAN tag goes after them.
const VLAN_OFFSET: usize = 12;

/// The VLAN tag the kernel took out of `f`, as it goes back into the bytes.
pub(super) fn vlan_tag(f: &Frame<'_>) -> Option<[u8; 4]> {
    let (tpid, tci) = f.vlan()?;
    if f.data().len() < VLAN_OFFSET {
        return None;
    }
    let mut tag = [0u8; 4];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    Some(tag)
}

/// A frame's bytes with `tag` (from [`vlan_tag`]) put back after the MAC addresses.
pub(super) fn with_vlan<'a>(data: &'a [u8], tag: Option<&'a [u8; 4]>) -> Parts<'a> {
    match tag {
        Some(tag) if data.len() >= VLAN_OFFSET => {
            let (macs, rest) = data.split_at(VLAN_OFFSET);
            Parts {
                p: [macs, &tag[..], rest],
                n: 3,
            }
        }
        _ => Parts::one(data),
    }
}

#[cfg(test)]
mod tests {
    use super::Parts;

    fn cut(p: &[&[u8]], max: usize) -> Vec<Vec<u8>> {
        let mut parts = Parts {
            p: [
                p.first().copied().unwrap_or_default(),
                p.get(1).copied().unwrap_or_default(),
                p.get(2).copied().unwrap_or_default(),
            ],
            n: p.len(),
        };
        parts.truncate(max);
        parts.as_slice().iter().map(|s| s.to_vec()).collect()
    }

    #[test]
    fn parts_are_cut_to_the_snaplen_across_pieces() {
        let (a, t, b): (&[u8], &[u8], &[u8]) = (&[1, 2, 3], &[9, 9], &[4, 5, 6]);
        let all = [a, t, b];
        assert_eq!(cut(&all, 100), [a, t, b]);
        assert_eq!(cut(&all, 8), [a, t, b]);
        assert_eq!(cut(&all, 7), [a, t, &b[..2]]);
        assert_eq!(cut(&all, 5), [a, t]);
        assert_eq!(cut(&all, 4), [a, &t[..1]]);
        assert_eq!(cut(&all, 2), [&a[..2]]);
        assert_eq!(cut(&all, 0), [&a[..0]]);
        assert_eq!(cut(&[a], 2), [&a[..2]]);
        assert_eq!(cut(&[a], 9), [a]);
    }
}
