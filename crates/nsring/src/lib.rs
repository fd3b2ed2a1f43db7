//! nsring as a library: packet capture that is at home in network namespaces.
//!
//! This is the front door; it re-exports the crates that do the work:
//! - [`netns`] (`nsring-netns`): open, create, list and enter network namespaces, and manage
//!   their interfaces over netlink ([`NetNs`], [`NsSpec`]);
//! - [`capture`] (`nsring-capture`): TPACKET_V3 capture rings ([`Capture`],
//!   [`CaptureConfig`], [`Frame`]) and transmit sockets ([`Transmitter`], [`Sender`]) in any
//!   namespace, without the process ever entering it;
//! - [`registry`] (`nsring-registry`): the per-namespace view of packet sockets, what
//!   `nsring ls` shows;
//! - [`pcap`] (`nsring-pcap`): pcap and pcapng reading ([`CaptureReader`]) and writing
//!   ([`PcapngWriter`], [`PcapWriter`]);
//! - [`bpf`] (`nsring-bpf`): counting in the kernel, copying nothing: tcpdump filters as
//!   eBPF programs at an interface's traffic-control hooks (`nsring_bpf::KernelCounter`);
//! - [`containers`] (`nsring-containers`): container runtimes (Podman, Docker, containerd):
//!   a container's process by name or ID, the running containers, containers recognised
//!   from cgroups. [`NetNs::open`] uses it for `podman:web1`, `docker:ID`, `containerd:ID`;
//! - [`multi`] (`nsring-multi`): many captures in one process ([`Session`]), over
//!   namespaces and interfaces matched by pattern and followed as they come and go.
//!
//! Capturing and sending need `CAP_NET_RAW`, entering a named namespace `CAP_SYS_ADMIN`
//! (in practice: root). Every main type has an example in its documentation; this one puts
//! them together.
//!
//! # Capture from a namespace into a pcapng file
//!
//! ```no_run
//! use std::fs::File;
//! use std::io::BufWriter;
//! use std::time::Duration;
//!
//! use nsring::capture::frame::Dir;
//! use nsring::pcap::{Direction, InterfaceDesc, InterfaceStats, LinkType, SectionDesc};
//! use nsring::{Capture, CaptureConfig, NetNs, PcapngWriter};
//!
//! let ns = NetNs::open_str("ns0")?;
//! let mut cap = Capture::open(&ns, &CaptureConfig::new("eth1").filter("tcp port 443"))?;
//!
//! let file = BufWriter::new(File::create("eth1.pcapng")?);
//! let mut out = PcapngWriter::new(file, &SectionDesc::default())?;
//! let eth1 = out.add_interface(&InterfaceDesc {
//!     name: "eth1".into(),
//!     description: Some(format!("netns ns0 (inode {})", ns.inode())),
//!     linktype: LinkType::ETHERNET,
//!     snaplen: 262_144,
//!     tsresol_nanos: true,
//! })?;
//! let mut written = 0u64;
//! while written < 1000 {
//!     let Some(block) = cap.next_block(Some(Duration::from_secs(1)))? else {
//!         continue;
//!     };
//!     for frame in &block {
//!         let dir = match frame.direction() {
//!             Dir::In => Direction::Inbound,
//!             Dir::Out => Direction::Outbound,
//!         };
//!         out.write_packet(eth1, frame.timestamp_ns(), frame.wire_len(), frame.data(), Some(dir))?;
//!         written += 1;
//!     }
//! }
//! let kernel = cap.stats()?;
//! out.write_interface_stats(
//!     eth1,
//!     &InterfaceStats {
//!         ifrecv: Some(kernel.packets),
//!         ifdrop: Some(kernel.drops),
//!         ..Default::default()
//!     },
//! )?;
//! out.finish()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A container's namespace, by name
//!
//! ```no_run
//! use nsring::{Capture, CaptureConfig, NetNs};
//!
//! // `docker:web1`, `containerd:3f2a9c1b`, or a bare `web1` if only one runtime has it
//! let ns = NetNs::open_str("podman:web1")?;
//! if let Some(c) = ns.container() {
//!     println!("{} ({}), main process {:?}", c.label(), c.short_id(), c.pid);
//! }
//! let mut cap = Capture::open(&ns, &CaptureConfig::new("eth0"))?;
//! # let _ = cap.next_block(None)?;
//! // the runtimes can be asked directly too
//! let (running, notes) = nsring::containers::running();
//! for c in &running {
//!     println!("{} pid {:?}", c.label(), c.pid);
//! }
//! # let _ = notes;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Read it back
//!
//! ```no_run
//! let file = std::io::BufReader::new(std::fs::File::open("eth1.pcapng")?);
//! let mut reader = nsring::CaptureReader::open(file)?;
//! let mut packets = 0;
//! while let Some(_packet) = reader.next_packet()? {
//!     packets += 1;
//! }
//! println!("{packets} packets");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use nsring_bpf as bpf;
pub use nsring_capture as capture;
pub use nsring_containers as containers;
pub use nsring_multi as multi;
pub use nsring_netns as netns;
pub use nsring_pcap as pcap;
pub use nsring_registry as registry;

pub use nsring_capture::{Capture, CaptureConfig, Frame, Sender, Transmitter, TxConfig};
pub use nsring_multi::Session;
pub use nsring_netns::{NetNs, NsSpec};
pub use nsring_pcap::{CaptureReader, PcapWriter, PcapngWriter};

/// The README's Rust examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
