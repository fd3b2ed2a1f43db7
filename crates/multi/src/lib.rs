//! Many captures in one process: the machinery `nsring count`, `nsring dump` (and the
//! exporter and the file view after them) share to capture in many namespaces at once.
//!
//! This crate owns:
//! - [`select`]: targets whose namespace part and interface part may each match many
//!   (`NSPAT/IFPAT`, `--all-netns`), and which interfaces they take (Ethernet by default;
//!   `lo` and other link types only when named exactly);
//! - [`scan`]: the namespaces on the host, cheaply: nsfs mounts from the mount table,
//!   processes from one `stat` each;
//! - [`links`]: one namespace's interfaces, followed over route netlink;
//! - [`budget`]: one ring-memory budget for all captures, each ring sized once when it opens;
//! - [`Session`]: one thread, one epoll set over every ring, link socket, the mount table,
//!   pidfds and a stop eventfd; captures open as interfaces and namespaces appear, end
//!   cleanly (drained, final counters kept) when they go, and a namespace that nothing but
//!   this process holds any more is let go so the kernel can tear it down. A [`Handler`]
//!   gets the ring blocks, the open and close events and the notes.
//!
//! It must not write files or print anything (the commands do), and it opens sockets only
//! through `nsring-capture` and `nsring-netns`. Its only unsafe code is `pidfd_open` in
//! the small `sys` module.
//!
//! ```no_run
//! use nsring_multi::{Glob, IfMatch, NsMatch, Options, Session, Target, budget};
//! let opts = Options {
//!     targets: vec![Target {
//!         ns: NsMatch::Names(Glob::new("lab-*").expect("a glob")),
//!         iface: IfMatch::Ethernet,
//!         text: "lab-*".into(),
//!     }],
//!     config: nsring_capture::CaptureConfig::default(),
//!     ring: budget::RingPolicy {
//!         budget: budget::DEFAULT_BUDGET,
//!         preferred: budget::PATTERN_RING,
//!     },
//!     rescan: nsring_multi::DEFAULT_RESCAN,
//! };
//! let session = Session::new(opts)?;
//! println!("{} captures open", session.open_count());
//! # Ok::<(), nsring_multi::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
mod error;
pub mod links;
pub mod scan;
pub mod select;
mod session;
mod sys;

pub use budget::{Budget, RingPolicy};
pub use error::{Error, Result};
pub use select::{Glob, IfMatch, NsMatch, Target, Want};
pub use session::{
    CloseReason, DEFAULT_RESCAN, Handler, Note, Options, Session, Taken, TargetInfo, TargetStats,
};
pub use sys::Stopper;
