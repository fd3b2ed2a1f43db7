//! The memory-mapped TPACKET_V2 transmit ring (`PACKET_TX_RING`) of a
//! [`Transmitter`](super::Transmitter) in ring mode: slots filled in order, marked
//! SEND_REQUEST, and reaped when the kernel hands them back (net/packet/af_packet.c
//! `tpacket_snd`).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::TxStats;
use crate::error::{Error, Result};
use crate::sys;

// --- include/uapi/linux/if_packet.h (transmit side) -----------------------------------

const PACKET_TX_RING: libc::c_int = 13;
const PACKET_LOSS: libc::c_int = 14;
const TPACKET_V2: libc::c_int = 1;

const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_WRONG_FORMAT: u32 = 4;

/// `sizeof(struct tpacket2_hdr)`: the frame's data starts at `TPACKET_ALIGN(32)` = 32
/// (`tp_hdrlen - sizeof(struct sockaddr_ll)` in `tpacket_parse_header`).
const TPACKET2_HDR_LEN: usize = 32;
/// Offset of `tp_len` in `struct tpacket2_hdr`.
const TP_LEN: usize = 4;

/// `struct tpacket_req`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct TpacketReq {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
}

/// The mapped TPACKET_V2 transmit ring and where we are in it.
#[derive(Debug)]
pub(super) struct TxRing {
    pub(super) map: sys::Mmap,
    pub(super) block_size: usize,
    pub(super) frame_size: usize,
    pub(super) frame_nr: usize,
    /// Next slot to fill.
    head: usize,
    /// Oldest slot handed to the kernel and not yet seen back.
    tail: usize,
    pub(super) in_flight: usize,
    /// Length of the frame in each slot, for the byte count.
    lens: Vec<u32>,
}

impl TxRing {
    fn slot(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.frame_nr);
        // SAFETY: i < frame_nr and frame_nr * frame_size <= map.len() (checked in open),
        // so the offset stays inside the mapping.
        unsafe { self.map.as_ptr().as_ptr().add(i * self.frame_size) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // The kernel reads and writes `tp_status` concurrently, so it is only ever accessed
        // atomically (af_packet.c: smp_wmb/rmb around `__packet_{get,set}_status`).
        // SAFETY: a slot starts with `tp_status`, a 16-aligned u32 inside the mapping, which
        // lives as long as `self`.
        unsafe { AtomicU32::from_ptr(self.slot(i).cast::<u32>()) }
    }

    /// Copies `frame` into the head slot and hands it to the kernel (not yet kicked).
    pub(super) fn push(&mut self, frame: &[u8]) {
        let i = self.head;
        let p = self.slot(i);
        // The slot is ours: status AVAILABLE (checked by the caller), and the kernel does not
        // touch it until we set SEND_REQUEST. `tp_len` is a 4-aligned u32 at offset 4.
        // SAFETY: the data area starts at TPACKET2_HDR_LEN and `frame.len() <= frame_size -
        // TPACKET2_HDR_LEN` (checked in send_batch), so both writes stay inside the slot.
        unsafe {
            std::ptr::copy_nonoverlapping(frame.as_ptr(), p.add(TPACKET2_HDR_LEN), frame.len());
            p.add(TP_LEN)
                .cast::<u32>()
                .write_volatile(frame.len() as u32);
        }
        self.lens[i] = frame.len() as u32;
        // Release: the data and tp_len are visible before the kernel sees the request.
        self.status(i)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (i + 1) % self.frame_nr;
        self.in_flight += 1;
    }

    /// Collects the slots the kernel is done with, oldest first, into `stats`.
    pub(super) fn reap(&mut self, stats: &mut TxStats) -> usize {
        let mut n = 0;
        while self.in_flight > 0 {
            let st = self.status(self.tail).load(Ordering::Acquire);
            match st {
                TP_STATUS_AVAILABLE => {
                    stats.packets += 1;
                    stats.bytes += u64::from(self.lens[self.tail]);
                }
                TP_STATUS_WRONG_FORMAT => {
                    stats.errors += 1;
                    self.status(self.tail)
                        .store(TP_STATUS_AVAILABLE, Ordering::Release);
                }
                _ => break, // SEND_REQUEST or SENDING: still the kernel's
            }
            self.tail = (self.tail + 1) % self.frame_nr;
            self.in_flight -= 1;
            n += 1;
        }
        n
    }
}

impl TxRing {
    /// Sets up a TPACKET_V2 transmit ring of at least `ring_frames` slots for frames of up
    /// to `max_len` bytes on `sock`, and maps it.
    pub(super) fn open(sock: BorrowedFd<'_>, ring_frames: u32, max_len: usize) -> Result<TxRing> {
        sys::set_packet_int(sock, sys::PACKET_VERSION, TPACKET_V2)
            .map_err(|e| Error::sys("setsockopt PACKET_VERSION", "TPACKET_V2", e))?;
        sys::set_packet_int(sock, PACKET_LOSS, 1)
            .map_err(|e| Error::sys("setsockopt PACKET_LOSS", "", e))?;
        let frame_size = slot_size(max_len);
        let block_size = frame_size.max(1 << 16);
        let per_block = block_size / frame_size;
        let want = (ring_frames.max(1) as usize).div_ceil(per_block);
        let req = TpacketReq {
            tp_block_size: block_size as u32,
            tp_block_nr: want as u32,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: (want * per_block) as u32,
        };
        let too_large = |source: io::Error| Error::RingTooLarge {
            block_size: req.tp_block_size,
            blocks: req.tp_block_nr,
            source,
        };
        set_tx_ring(sock, &req).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOMEM) | Some(libc::ENOBUFS) => too_large(e),
            _ => Error::sys("setsockopt PACKET_TX_RING", "", e),
        })?;
        let len = block_size * want;
        let map = sys::Mmap::ring(sock, len).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOMEM) | Some(libc::EAGAIN) => too_large(e),
            _ => Error::sys("mmap", "transmit ring", e),
        })?;
        let frame_nr = want * per_block;
        debug_assert!(frame_nr * frame_size <= map.len());
        Ok(TxRing {
            map,
            block_size,
            frame_size,
            frame_nr,
            head: 0,
            tail: 0,
            in_flight: 0,
            lens: vec![0; frame_nr],
        })
    }
}

/// The ring's slot size for frames of up to `max_len` bytes: a power of two, at least 128.
fn slot_size(max_len: usize) -> usize {
    (TPACKET2_HDR_LEN + max_len).next_power_of_two().max(128)
}

fn set_tx_ring(fd: BorrowedFd<'_>, req: &TpacketReq) -> io::Result<()> {
    // SAFETY: `req` is a live, initialised struct tpacket_req of the size passed; the
    // kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            sys::SOL_PACKET,
            PACKET_TX_RING,
            (req as *const TpacketReq).cast(),
            size_of::<TpacketReq>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_and_slots() {
        assert_eq!(size_of::<TpacketReq>(), 16);
        assert_eq!(slot_size(60), 128);
        assert_eq!(slot_size(1518), 2048);
        assert_eq!(slot_size(9018), 16384);
    }
}
