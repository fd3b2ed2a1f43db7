//! [`Forwarder`]: frames from one interface to another at ring speed, each end in any
//! namespace (PF_RING's pfbridge). A TPACKET_V3 capture on the way in, the batched
//! transmitter on the way out, one `sendmmsg` per ring block.
//!
//! - Both sockets carry a virtio-net header (`PACKET_VNET_HDR`, see [`crate::vnet`]): a GSO
//!   frame larger than the MTU (a veth passes a TCP sender's 64 KiB segments as one frame)
//!   goes out with its segmentation and checksum instructions, and the kernel cuts it on
//!   the way out, as a virtio NIC would.
//! - The capture takes received frames only (`PACKET_IGNORE_OUTGOING`), so in a two-way
//!   bridge the frames one direction sends on an interface are never read back by the
//!   other direction's capture there.
//! - A VLAN tag the kernel took out of a frame is put back before it is sent (the virtio-net
//!   offsets move with it); nothing else is copied: the transmitter reads the frames in the
//!   ring block.
//! - A frame the capture cut short (a filter's snaplen) cannot be forwarded whole: it is
//!   counted, not sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nsring_netns::NetNs;

use crate::capture::{Capture, Stats, Waker};
use crate::config::{CaptureConfig, Direction};
use crate::error::Result;
use crate::tx::{Transmitter, TxConfig};
use crate::vnet::{VNET_HDR_LEN, VnetHdr};

/// What one direction has done so far; shared with whoever reports it.
#[derive(Debug, Default)]
pub struct ForwardCounters {
    /// Frames handed out by the capture (after the filter).
    pub received: AtomicU64,
    /// Frames the kernel took for sending.
    pub forwarded: AtomicU64,
    /// Their bytes on the wire (without the virtio-net header).
    pub bytes: AtomicU64,
    /// GSO frames among those handed to the sender (larger than the MTU; the kernel cuts
    /// them).
    pub gso: AtomicU64,
    /// Forwarded frames whose VLAN tag was put back.
    pub vlan: AtomicU64,
    /// Frames the capture cut short (not forwarded).
    pub truncated: AtomicU64,
    /// Frames the sending side refused (too large for the interface).
    pub send_errors: AtomicU64,
    /// Frames the capture's ring had no room for, as of the last [`Forwarder::refresh`].
    pub ring_drops: AtomicU64,
}

/// A snapshot of [`ForwardCounters`] plus the capture's kernel drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForwardTotals {
    /// Frames handed out by the capture.
    pub received: u64,
    /// Frames sent.
    pub forwarded: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// GSO frames among them.
    pub gso: u64,
    /// Frames with a VLAN tag put back.
    pub vlan: u64,
    /// Frames not forwarded because the capture cut them short.
    pub truncated: u64,
    /// Frames the sending side refused.
    pub send_errors: u64,
    /// Frames the capture's ring had no room for (the kernel's count).
    pub ring_drops: u64,
}

impl ForwardCounters {
    /// The counters now.
    pub fn totals(&self) -> ForwardTotals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ForwardTotals {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            bytes: get(&self.bytes),
            gso: get(&self.gso),
            vlan: get(&self.vlan),
            truncated: get(&self.truncated),
            send_errors: get(&self.send_errors),
            ring_drops: get(&self.ring_drops),
        }
    }
}

/// One direction of a bridge: a capture on one interface, a transmitter on another.
#[derive(Debug)]
pub struct Forwarder {
    rx: Capture,
    tx: Transmitter,
    counters: Arc<ForwardCounters>,
    /// Frames whose VLAN tag is put back, rebuilt per block (buffers reused).
    scratch: Vec<Vec<u8>>,
}

impl Forwarder {
    /// Opens the capture `from` in `from_ns` and the transmitter `to` in `to_ns`. Both get
    /// virtio-net headers; the capture takes received frames only, whole (the snaplen is
    /// raised to the largest frame a ring takes).
    pub fn open(
        from_ns: &NetNs,
        from: &CaptureConfig,
        to_ns: &NetNs,
        to: &TxConfig,
    ) -> Result<Forwarder> {
        let mut from = from.clone();
        from.vnet_hdr = true;
        from.direction = Direction::In;
        let mut to = to.clone();
        to.vnet_hdr = true;
        let tx = Transmitter::open(to_ns, &to)?;
        let rx = Capture::open(from_ns, &from)?;
        Ok(Forwarder {
            rx,
            tx,
            counters: Arc::default(),
            scratch: Vec::new(),
        })
    }

    /// The counters, to read from another thread.
    pub fn counters(&self) -> Arc<ForwardCounters> {
        Arc::clone(&self.counters)
    }

    /// Wakes a [`Forwarder::step`] that is waiting for frames.
    pub fn waker(&self) -> Waker {
        self.rx.waker()
    }

    /// Reads the capture's kernel statistics into the counters' `ring_drops` (a system
    /// call: call it a few times a second, not per block).
    pub fn refresh(&mut self) -> Result<Stats> {
        let s = self.rx.stats()?;
        self.counters.ring_drops.store(s.drops, Ordering::Relaxed);
        Ok(s)
    }

    /// Forwards one ring block, waiting at most `timeout` for it. Returns false when no
    /// block came (timed out, woken, or the capture finished).
    pub fn step(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let Forwarder {
            rx,
            tx,
            counters,
            scratch,
        } = self;
        let Some(block) = rx.next_block(timeout)? else {
            return Ok(false);
        };
        // Frames with a tag the kernel took out are rebuilt with it; the rest are sent
        // from the ring as they are.
        let mut tagged = 0;
        let mut received = 0u64;
        for f in &block {
            received += 1;
            if let Some((tpid, tci)) = f.vlan()
                && f.cap_len() == f.wire_len()
                && let Some(v) = f.with_vnet_hdr()
            {
                if scratch.len() == tagged {
                    scratch.push(Vec::new());
                }
                let out = &mut scratch[tagged];
                out.clear();
                let hdr = VnetHdr::parse(v).unwrap_or_default().shifted(4);
                out.extend_from_slice(&hdr.to_bytes());
                let data = &v[VNET_HDR_LEN..];
                out.extend_from_slice(&data[..12]);
                out.extend_from_slice(&tpid.to_be_bytes());
                out.extend_from_slice(&tci.to_be_bytes());
                out.extend_from_slice(&data[12..]);
                tagged += 1;
            }
        }
        let mut frames: Vec<&[u8]> = Vec::with_capacity(received as usize);
        let (mut gso, mut truncated, mut next_tagged) = (0u64, 0u64, 0);
        for f in &block {
            if f.cap_len() != f.wire_len() {
                truncated += 1;
                continue;
            }
            let Some(v) = f.with_vnet_hdr() else {
                truncated += 1;
                continue;
            };
            if VnetHdr::parse(v).is_some_and(|h| h.is_gso()) {
                gso += 1;
            }
            if f.vlan().is_some() {
                frames.push(&scratch[next_tagged]);
                next_tagged += 1;
            } else {
                frames.push(v);
            }
        }
        let before = tx.stats();
        let sent = tx.send_batch(frames.iter().copied());
        drop(frames);
        drop(block); // the ring block goes back to the kernel
        sent?;
        let after = tx.stats();
        rx.add_bytes(after.bytes - before.bytes);
        let c = &counters;
        c.received.fetch_add(received, Ordering::Relaxed);
        c.forwarded
            .fetch_add(after.packets - before.packets, Ordering::Relaxed);
        c.bytes
            .fetch_add(after.bytes - before.bytes, Ordering::Relaxed);
        c.gso.fetch_add(gso, Ordering::Relaxed);
        c.vlan.fetch_add(tagged as u64, Ordering::Relaxed);
        c.truncated.fetch_add(truncated, Ordering::Relaxed);
        c.send_errors
            .fetch_add(after.errors - before.errors, Ordering::Relaxed);
        Ok(true)
    }
}
