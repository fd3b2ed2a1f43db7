//! Errors of the capture engine.

use std::io;

/// Why a capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Entering or naming the namespace failed (it does not exist, or setns was refused).
    #[error(transparent)]
    Netns(#[from] nsring_netns::Error),
    /// The interface does not exist in that namespace.
    #[error("no interface '{name}' in namespace '{ns}' (see 'nsring devs --netns {ns}')")]
    NoInterface {
        /// The interface name.
        name: String,
        /// The namespace, as the caller named it.
        ns: String,
    },
    /// The bound interface went down during the capture (it still exists).
    #[error("interface '{name}' in namespace '{ns}' went down")]
    InterfaceDown {
        /// The interface name.
        name: String,
        /// The namespace, as the caller named it.
        ns: String,
    },
    /// The bound interface left its namespace during the capture: it was deleted, moved
    /// to another namespace, or its namespace went away.
    #[error(
        "interface '{name}' in namespace '{ns}' was removed (deleted, moved to another namespace, or its namespace is gone)"
    )]
    InterfaceRemoved {
        /// The interface name.
        name: String,
        /// The namespace, as the caller named it.
        ns: String,
    },
    /// The interface name can not be a Linux interface name.
    #[error("invalid interface name '{name}': it {why}")]
    InvalidInterfaceName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// libpcap refused the filter expression; `message` is libpcap's own.
    #[error("invalid filter '{filter}': {message}")]
    Filter {
        /// The expression as given.
        filter: String,
        /// libpcap's message.
        message: String,
    },
    /// A configuration value is out of range.
    #[error("invalid capture setting: {0}")]
    Config(String),
    /// Creating the packet socket or one of its options needs a capability we lack.
    #[error("{call} on a packet socket was refused: capturing needs CAP_NET_RAW (run as root)")]
    PermissionDenied {
        /// The refused call (`socket`, `setsockopt(PACKET_RX_RING)`, ...).
        call: &'static str,
        /// `EPERM` or `EACCES`.
        #[source]
        source: io::Error,
    },
    /// The kernel could not allocate or map the ring.
    #[error(
        "could not allocate a {} MiB capture ring ({blocks} blocks of {} KiB); use fewer or smaller blocks",
        (*block_size as u64 * *blocks as u64) >> 20, block_size >> 10
    )]
    RingTooLarge {
        /// Bytes per block.
        block_size: u32,
        /// Number of blocks.
        blocks: u32,
        /// The kernel's errno (`ENOMEM`, ...).
        #[source]
        source: io::Error,
    },
    /// Joining a fanout group failed because the group exists with other settings.
    #[error(
        "cannot join fanout group {id}: it exists in this namespace with another mode, flags, or interface (or the interface is down)"
    )]
    FanoutMismatch {
        /// The group id.
        id: u16,
        /// The kernel's errno (`EINVAL`).
        #[source]
        source: io::Error,
    },
    /// Any other failed system call.
    #[error("{call} failed{}", if what.is_empty() { String::new() } else { format!(" ({what})") })]
    Sys {
        /// The system call.
        call: &'static str,
        /// What it was called on (may be empty).
        what: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps a failed system call; EPERM/EACCES become [`Error::PermissionDenied`].
    pub(crate) fn sys(call: &'static str, what: impl Into<String>, source: io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied { call, source },
            _ => Error::Sys {
                call,
                what: what.into(),
                source,
            },
        }
    }

    /// True if this error means "not allowed" (the caller lacks CAP_NET_RAW).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied { .. })
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True for [`Error::InterfaceDown`] and [`Error::InterfaceRemoved`]: the capture
    /// ended because its interface did, after every packet already in the ring was
    /// handed out.
    pub fn interface_gone(&self) -> bool {
        matches!(
            self,
            Error::InterfaceDown { .. } | Error::InterfaceRemoved { .. }
        )
    }
}
