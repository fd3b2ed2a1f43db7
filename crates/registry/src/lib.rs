//! The per-namespace view of packet sockets: `/proc/net/pf_ring` done in user space.
//!
//! This crate owns:
//! - [`diag`]: the kernel's truth about every `AF_PACKET` socket of a namespace
//!   (`packet_diag` over `NETLINK_SOCK_DIAG`, asked from inside that namespace), with a
//!   small codec for its messages, and [`diag::packet_sockets`] for the friendly view;
//! - [`owners`]: which processes hold which sockets (one scan of `/proc/*/fd`);
//! - [`record`]: nsring's own sockets, recorded by their owners under
//!   `/run/nsring/<netns-inode>/<pid>-<ifname>.<id>` with live counters in a mapped page;
//! - [`view`]: one namespace's view put together (interfaces, the kernel's packet sockets,
//!   our records joined to them by socket inode), as `nsring ls` shows it;
//! - [`text`]: the view as PF_RING's `/proc/net/pf_ring` files word it, and [`tree`]: the
//!   view as that file tree (`info`, `dev/<ifname>/info`, one file per socket, `stats/`),
//!   which `nsring mount` serves;
//! - [`host`]: every namespace of the host at once: found and labelled, the interfaces a
//!   capture can bind in each (the Wireshark extcap list), their views with one `/proc`
//!   scan for all (the Prometheus exporter).
//!
//! It must not open capture sockets (that is the `nsring-capture` crate) and never runs `ip`.
//! Its only unsafe code is the record's shared counter page and one `getsockopt`, in
//! the small `sys` module.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod diag;
pub mod fuzzing;
pub mod host;
pub mod owners;
pub mod record;
mod sys;
pub mod text;
pub mod tree;
pub mod view;

pub use diag::{PacketSocket, packet_sockets};
pub use owners::Owner;
pub use record::{BpfInfo, Counter, Counters, Record, RecordInfo, RecordKind, RecordView, RunDir};
pub use view::{NamespaceView, SocketEntry, ViewOptions, namespace_view, namespace_view_with};
