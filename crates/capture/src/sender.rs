//! [`Sender`]: the simplest transmit path, one `send(2)` per frame on a packet socket
//! bound to an interface of a namespace. For tests and low rates; for batches use
//! [`Transmitter`](crate::Transmitter).
//!
//! Like every socket of this crate it is recorded under `/run/nsring` in its namespace
//! (mode `TX only`, backend `send`) unless [`TxConfig::register`] is off; each frame costs
//! one relaxed store into the record next to its `send(2)`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use nsring_netns::NetNs;
use nsring_registry::record::{self, Counter, Record};

use crate::capture::ifindex_here;
use crate::config::validate_ifname;
use crate::error::{Error, Result};
use crate::sys;
use crate::tx::{TxConfig, TxStats, tx_record_info};

/// `PACKET_QDISC_BYPASS` (include/uapi/linux/if_packet.h).
const PACKET_QDISC_BYPASS: libc::c_int = 20;

/// A packet socket that sends whole link-layer frames and receives nothing, one at a time
/// (for batches, [`crate::Transmitter`]).
///
/// ```no_run
/// use nsring_capture::Sender;
/// use nsring_netns::NetNs;
///
/// let tx = Sender::open(&NetNs::open_str("ns0")?, "eth1")?;
/// let mut frame = [0u8; 60];
/// frame[..6].fill(0xff); // broadcast
/// frame[12..14].copy_from_slice(&[0x88, 0xb5]);
/// tx.send(&frame)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sender {
    // Field order is drop order: remove the record, then close the socket.
    record: Option<Record>,
    record_error: Option<record::Error>,
    fd: OwnedFd,
    ifindex: u32,
    /// Counters: atomics so a `&Sender` can be shared between threads.
    packets: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

impl Sender {
    /// Opens a sender on `interface` of `ns`, recorded under `/run/nsring` with the
    /// program's name.
    pub fn open(ns: &NetNs, interface: &str) -> Result<Sender> {
        Sender::open_with(ns, &TxConfig::new(interface))
    }

    /// Opens a sender as `cfg` says: its interface, `qdisc_bypass`, `app_name` and
    /// `register` apply; `mode` and `ring_frames` do not (a sender always uses `send(2)`).
    pub fn open_with(ns: &NetNs, cfg: &TxConfig) -> Result<Sender> {
        let interface = cfg.interface.as_str();
        validate_ifname(interface)?;
        let nsname = ns.spec().to_string();
        let (fd, ifindex) = ns.run(|| {
            let ifindex = ifindex_here(interface, &nsname)?;
            let fd = sys::packet_socket().map_err(|e| Error::sys("socket(AF_PACKET)", "", e))?;
            if cfg.qdisc_bypass {
                sys::set_packet_int(fd.as_fd(), PACKET_QDISC_BYPASS, 1)
                    .map_err(|e| Error::sys("setsockopt PACKET_QDISC_BYPASS", "", e))?;
            }
            // protocol 0: bound for sending, hooked for receiving nothing
            sys::bind_packet(fd.as_fd(), 0, ifindex)
                .map_err(|e| Error::sys("bind", interface, e))?;
            Ok::<_, Error>((fd, ifindex))
        })??;
        let (record, record_error) = if cfg.register {
            let info = tx_record_info(cfg.app_name.as_deref(), interface, &nsname, ifindex, "send");
            match Record::create(ns, &fd, &info) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        Ok(Sender {
            record,
            record_error,
            fd,
            ifindex,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// Sends one frame (link-layer header included) as is.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        let r = match sys::send(self.fd.as_fd(), frame) {
            Ok(n) if n == frame.len() => Ok(()),
            Ok(n) => Err(Error::sys(
                "send",
                format!("{n} of {} bytes", frame.len()),
                std::io::Error::from_raw_os_error(libc::EMSGSIZE),
            )),
            Err(e) => Err(Error::sys("send", "packet socket", e)),
        };
        // Relaxed: these are statistics; a reader sees them at its next look.
        if r.is_ok() {
            let n = self.packets.fetch_add(1, Ordering::Relaxed) + 1;
            self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
            if let Some(rec) = &self.record {
                rec.store(Counter::Sent, n);
                rec.store(Counter::Bytes, self.bytes.load(Ordering::Relaxed));
            }
        } else {
            let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(rec) = &self.record {
                rec.store(Counter::SendErrors, n);
            }
        }
        r
    }

    /// Frames sent and refused since the sender was opened (`retries` is always 0: a
    /// sender does not retry).
    pub fn stats(&self) -> TxStats {
        TxStats {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: 0,
        }
    }

    /// The index of the interface it sends on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The socket's record under `/run/nsring` (None if `register` was off or creating it
    /// failed; see [`Sender::record_error`]).
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// Why the socket could not be recorded; the sender works without its record.
    pub fn record_error(&self) -> Option<&record::Error> {
        self.record_error.as_ref()
    }
}

impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
