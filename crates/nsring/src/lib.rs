//! nsring as a library: packet capture that is at home in network namespaces.
//!
//! This is the front door; it re-exports the crates that do the work:
//! - [`netns`] (`nsring-netns`): open, create, list and enter network namespaces, and manage
//!   their interfaces over netlink;
//! - [`capture`] (`nsring-capture`): TPACKET_V3 capture rings and transmit sockets in any
//!   namespace;
//! - [`registry`] (`nsring-registry`): the per-namespace view of packet sockets;
//! - [`pcap`] (`nsring-pcap`): pcap and pcapng reading and writing.
#![forbid(unsafe_code)]

pub use nsring_capture as capture;
pub use nsring_netns as netns;
pub use nsring_pcap as pcap;
pub use nsring_registry as registry;

pub use nsring_capture::{Capture, CaptureConfig, Frame, Sender, Transmitter, TxConfig};
pub use nsring_netns::{NetNs, NsSpec};
pub use nsring_pcap::{CaptureReader, PcapWriter, PcapngWriter};
