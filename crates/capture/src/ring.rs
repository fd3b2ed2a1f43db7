//! The TPACKET_V3 RX ring protocol: which block is ours, handing it out as a [`Block`]
//! guard, and giving it back to the kernel when the guard drops.
//!
//! The protocol (net/packet/af_packet.c, `prb_*` functions; Documentation/networking/
//! packet_mmap.rst): the ring is `block_count` blocks of `block_size` bytes, filled by
//! the kernel in order. A block belongs to user space once its `block_status` has
//! `TP_STATUS_USER` (the kernel sets it after a write barrier in `prb_close_block`), and
//! goes back when user space stores `TP_STATUS_KERNEL`. The reader visits blocks in the
//! same order, so one cursor suffices.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::frame::{BlockDesc, Frame, Frames, field};
use crate::sys::{self, TP_STATUS_BLK_TMO, TP_STATUS_KERNEL, TP_STATUS_LOSING, TP_STATUS_USER};

/// What backs the ring's memory.
#[derive(Debug)]
enum Memory {
    /// The socket's mapping.
    Mapped { _map: sys::Mmap },
    /// Heap memory standing in for the kernel in tests (u64 for 8-byte alignment).
    #[cfg(test)]
    Heap { _mem: Box<[u64]> },
}

/// The reader's side of the ring.
#[derive(Debug)]
pub(crate) struct Ring {
    base: NonNull<u8>,
    block_size: usize,
    block_count: usize,
    cursor: usize,
    _memory: Memory,
}

// SAFETY: the ring memory is owned by `_memory` (which is Send), `base` points into it,
// and all access goes through `&mut Ring`; nothing ties it to the creating thread.
unsafe impl Send for Ring {}

impl Ring {
    /// A ring over the socket's mapping. The mapping must be exactly
    /// `block_size * block_count` bytes of a TPACKET_V3 RX ring of that geometry.
    pub fn mapped(map: sys::Mmap, block_size: usize, block_count: usize) -> Ring {
        assert_eq!(
            map.len(),
            block_size * block_count,
            "mapping and geometry disagree"
        );
        Ring {
            base: map.as_ptr(),
            block_size,
            block_count,
            cursor: 0,
            _memory: Memory::Mapped { _map: map },
        }
    }

    #[cfg(test)]
    pub fn heap(block_size: usize, block_count: usize) -> Ring {
        assert_eq!(block_size % 8, 0);
        let mut mem = vec![0u64; block_size * block_count / 8].into_boxed_slice();
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).expect("non-null");
        Ring {
            base,
            block_size,
            block_count,
            cursor: 0,
            _memory: Memory::Heap { _mem: mem },
        }
    }

    /// Test access to a block's bytes, playing the kernel.
    #[cfg(test)]
    pub fn block_bytes_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.block_count);
        // SAFETY: block `i` lies inside the heap allocation, and `&mut self` excludes any
        // live Block guard (which borrows the ring mutably) for the returned lifetime.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().add(i * self.block_size),
                self.block_size,
            )
        }
    }

    fn block_ptr(&self, i: usize) -> NonNull<u8> {
        debug_assert!(i < self.block_count);
        // SAFETY: i < block_count, so the offset stays inside the ring's memory.
        unsafe { self.base.add(i * self.block_size) }
    }

    /// The status word of block `i`, read with Acquire so that the block's contents the
    /// kernel wrote before setting TP_STATUS_USER are visible (pairs with the smp_wmb()
    /// before the status store in af_packet.c `prb_close_block`/`prb_flush_block`).
    fn status(&self, i: usize) -> u32 {
        let p = self.block_ptr(i).as_ptr().wrapping_add(field::BLK_STATUS);
        // SAFETY: `p` is 4-byte aligned (blocks are page aligned, offset 8) and lies inside
        // the ring; the kernel writes this word concurrently, which is why it is accessed
        // only atomically here and in `release`.
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.load(Ordering::Acquire)
    }

    /// True if the block under the cursor belongs to user space.
    pub fn ready(&self) -> bool {
        self.status(self.cursor) & TP_STATUS_USER != 0
    }

    /// Hands out the block under the cursor. Call only when [`Ring::ready`] is true.
    pub fn take(&mut self) -> Block<'_> {
        debug_assert!(self.ready());
        let index = self.cursor;
        Block {
            ptr: self.block_ptr(index),
            len: self.block_size,
            status: self.status(index),
            index,
            ring: self,
        }
    }

    pub fn block_count(&self) -> usize {
        self.block_count
    }
}

/// One block of the ring, ours until dropped: iterate its [`Frame`]s; dropping it gives
/// the block back to the kernel and moves on to the next one.
pub struct Block<'r> {
    ptr: NonNull<u8>,
    len: usize,
    status: u32,
    index: usize,
    ring: &'r mut Ring,
}

impl std::fmt::Debug for Block<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("index", &self.index)
            .field("frames", &self.len())
            .field("seq", &self.seq())
            .field("status", &self.status)
            .finish()
    }
}

impl Block<'_> {
    fn bytes(&self) -> &[u8] {
        // net/packet/af_packet.c only fills block `kactive_blk_num` after
        // `prb_dispatch_next_block` saw its status TP_STATUS_KERNEL.
        // SAFETY: the block is TP_STATUS_USER (Ring::ready before take), so the kernel leaves
        // it alone until Drop stores TP_STATUS_KERNEL; ptr..ptr+len is inside the ring; the
        // returned borrow borrows `self`, so it ends before Drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn desc(&self) -> BlockDesc {
        BlockDesc::parse(self.bytes()).expect("blocks are larger than their descriptor")
    }

    /// The frames in this block, in arrival order.
    #[inline]
    pub fn frames(&self) -> Frames<'_> {
        Frames::new(self.bytes())
    }

    /// The number of frames in this block (`num_pkts`).
    pub fn len(&self) -> usize {
        self.desc().num_pkts as usize
    }

    /// True if the block holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kernel's block sequence number (`seq_num`): consecutive, so a caller can see
    /// that it never skipped a block.
    pub fn seq(&self) -> u64 {
        self.desc().seq_num
    }

    /// True if the kernel closed this block because its timeout expired (not full).
    pub fn timed_out(&self) -> bool {
        self.status & TP_STATUS_BLK_TMO != 0
    }

    /// True if the kernel dropped packets while this block was being filled
    /// (`TP_STATUS_LOSING`, af_packet.c `prb_close_block`).
    pub fn losing(&self) -> bool {
        self.status & TP_STATUS_LOSING != 0
    }

    /// The ring slot of this block.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl<'b> IntoIterator for &'b Block<'_> {
    type Item = Frame<'b>;
    type IntoIter = Frames<'b>;
    fn into_iter(self) -> Frames<'b> {
        self.frames()
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        let p = self.ptr.as_ptr().wrapping_add(field::BLK_STATUS);
        // Gives the block back as net/packet/af_packet.c `prb_dispatch_next_block` expects;
        // Release orders all our reads of the block before the kernel may refill it.
        // SAFETY: `p` is the 4-aligned status word inside the ring, written by the kernel
        // too, hence atomic; no frame borrow is live (frames borrow `self`).
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.store(TP_STATUS_KERNEL, Ordering::Release);
        self.ring.cursor = (self.index + 1) % self.ring.block_count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::synth::{SynthFrame, write_block};

    const BS: usize = 4096;

    fn frame(n: usize, tag: u8) -> SynthFrame {
        SynthFrame::new(&vec![tag; n])
    }

    #[test]
    fn blocks_are_taken_in_order_and_given_back() {
        let mut ring = Ring::heap(BS, 3);
        assert!(!ring.ready(), "a fresh ring belongs to the kernel");
        write_block(
            ring.block_bytes_mut(0),
            10,
            TP_STATUS_USER,
            &[frame(60, 1), frame(70, 2)],
        );
        write_block(
            ring.block_bytes_mut(1),
            11,
            TP_STATUS_USER | TP_STATUS_BLK_TMO,
            &[frame(80, 3)],
        );
        assert!(ring.ready());
        {
            let b = ring.take();
            assert_eq!(
                (b.index(), b.len(), b.seq(), b.timed_out()),
                (0, 2, 10, false)
            );
            let lens: Vec<usize> = b.frames().map(|f| f.data().len()).collect();
            assert_eq!(lens, [60, 70]);
        }
        // block 0 went back to the kernel
        assert_eq!(
            BlockDesc::parse(ring.block_bytes_mut(0)).unwrap().status,
            TP_STATUS_KERNEL
        );
        assert!(ring.ready());
        {
            let b = ring.take();
            assert_eq!((b.index(), b.seq(), b.timed_out()), (1, 11, true));
            let tags: Vec<u8> = (&b).into_iter().map(|f| f.data()[0]).collect();
            assert_eq!(tags, [3]);
        }
        // block 2 is still the kernel's: nothing ready
        assert!(!ring.ready());
        // the kernel fills block 2 and then wraps to block 0
        write_block(
            ring.block_bytes_mut(2),
            12,
            TP_STATUS_USER | TP_STATUS_LOSING,
            &[],
        );
        write_block(ring.block_bytes_mut(0), 13, TP_STATUS_USER, &[frame(90, 4)]);
        {
            let b = ring.take();
            assert_eq!(
                (b.index(), b.seq(), b.is_empty(), b.losing()),
                (2, 12, true, true)
            );
            assert_eq!(b.frames().count(), 0);
        }
        {
            let b = ring.take();
            assert_eq!((b.index(), b.seq()), (0, 13), "the cursor wraps around");
            assert_eq!(b.frames().next().unwrap().data()[0], 4);
        }
        assert!(!ring.ready());
    }

    #[test]
    fn a_block_not_yet_closed_is_not_read() {
        let mut ring = Ring::heap(BS, 2);
        // the kernel is filling block 0: frames are there, status still KERNEL
        write_block(
            ring.block_bytes_mut(0),
            1,
            TP_STATUS_KERNEL,
            &[frame(60, 1)],
        );
        // and a later block is USER (cannot happen in order, but the reader must not skip)
        write_block(ring.block_bytes_mut(1), 2, TP_STATUS_USER, &[frame(60, 2)]);
        assert!(!ring.ready());
    }
}
