//! The capture engine of nsring: AF_PACKET TPACKET_V3 sockets in any network namespace.
//!
//! This crate owns the capture socket ([`Capture`]): created on a thread inside the
//! namespace (the process never moves), bound to one interface or to all of them,
//! with a memory-mapped TPACKET_V3 ring whose blocks are handed out as [`Block`] guards
//! of borrowed [`Frame`]s (nothing is copied or allocated per packet), a BPF filter in
//! tcpdump syntax compiled by libpcap, fanout groups, direction, snaplen, promiscuous
//! mode and the kernel's statistics. [`Sender`] sends single frames.
//!
//! It must not parse packets beyond the link layer's VLAN tag, print anything, or run
//! external programs. Its unsafe code is in two places: [`sys`] (every system call) and
//! the ring protocol (`ring.rs`).
//!
//! ```no_run
//! use nsring_capture::{Capture, CaptureConfig};
//! let ns = nsring_netns::NetNs::open_str("ns0")?;
//! let mut cap = Capture::open(&ns, &CaptureConfig::new("eth1").snaplen(128))?;
//! let (mut pkts, mut bytes) = (0u64, 0u64);
//! while let Some(block) = cap.next_block(Some(std::time::Duration::from_secs(1)))? {
//!     for frame in &block {
//!         pkts += 1;
//!         bytes += u64::from(frame.wire_len());
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod capture;
pub mod config;
mod error;
pub mod filter;
pub mod forward;
pub mod frame;
mod ring;
pub mod sender;
pub mod sys;
pub mod tx;
pub mod vnet;

pub use capture::{Capture, Stats, Waker};
pub use config::{CaptureConfig, DEFAULT_SNAPLEN, Direction, Fanout, FanoutMode, RingGeometry};
pub use error::{Error, Result};
pub use forward::{ForwardCounters, ForwardTotals, Forwarder};
pub use frame::{Dir, Frame, Frames, PacketType};
pub use ring::Block;
pub use sender::Sender;
pub use tx::{Transmitter, TxConfig, TxMode, TxStats};
