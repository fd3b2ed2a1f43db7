//! The per-namespace view of packet sockets: `/proc/net/pf_ring` done in user space.
//!
//! This crate owns:
//! - [`diag`]: the kernel's truth about every `AF_PACKET` socket of a namespace
//!   (`packet_diag` over `NETLINK_SOCK_DIAG`, asked from inside that namespace), with a
//!   small codec for its messages, and [`diag::packet_sockets`] for the friendly view;
//! - [`owners`]: which processes hold which sockets (one scan of `/proc/*/fd`).
//!
//! It must not open capture sockets (that is the `ring` crate) and never runs `ip`.
//! It needs no unsafe code.
#![forbid(unsafe_code)]

pub mod diag;
pub mod owners;

pub use diag::{PacketSocket, packet_sockets};
pub use owners::Owner;
