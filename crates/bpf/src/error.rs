//! Errors of the in-kernel counter.
#![allow(missing_docs)] // the variants say what their fields hold

use std::io;

use crate::translate::TranslateError;

/// Why an in-kernel counter could not be set up or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Entering or naming the namespace failed.
    #[error(transparent)]
    Netns(#[from] nsring_netns::Error),
    /// libpcap refused the filter, or the interface does not exist (the capture engine's
    /// own errors, from compiling the filter and opening the anchor socket).
    #[error(transparent)]
    Capture(#[from] nsring_capture::Error),
    /// The filter compiles, but its classic program cannot run in the kernel counter.
    #[error("filter '{filter}' cannot be counted in the kernel: {source}")]
    Translate {
        filter: String,
        #[source]
        source: TranslateError,
    },
    /// The verifier refused the translated program (a bug of the translation); `log` is
    /// the end of the verifier's log.
    #[error("the kernel's verifier refused the counting program for '{filter}': {log}")]
    Verifier {
        filter: String,
        log: String,
        #[source]
        source: io::Error,
    },
    /// A call needs a capability we lack; `needs` names it.
    #[error("{call} was refused: {needs}")]
    PermissionDenied {
        call: &'static str,
        needs: &'static str,
        #[source]
        source: io::Error,
    },
    /// Neither TCX nor a clsact qdisc could take the program.
    #[error("cannot attach the counting program to '{iface}' with {how}")]
    Attach {
        iface: String,
        how: &'static str,
        #[source]
        source: io::Error,
    },
    /// The interface was deleted or moved away while counting (as a capture ring says it).
    #[error(
        "interface '{name}' in namespace '{ns}' was removed (deleted, moved to another namespace, or its namespace is gone)"
    )]
    InterfaceGone { name: String, ns: String },
    /// The interface went down while counting (as a capture ring reports it).
    #[error("interface '{name}' in namespace '{ns}' went down")]
    InterfaceDown { name: String, ns: String },
    /// Any other failed system call.
    #[error("{call} failed{}", if what.is_empty() { String::new() } else { format!(" ({what})") })]
    Sys {
        call: &'static str,
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps a failed bpf(2) or traffic-control call; EPERM/EACCES become
    /// [`Error::PermissionDenied`] naming CAP_NET_ADMIN.
    pub(crate) fn sys(call: &'static str, what: impl Into<String>, source: io::Error) -> Error {
        Error::needing(call, NEEDS_NET_ADMIN, what, source)
    }

    /// Wraps a failed call; EPERM/EACCES become [`Error::PermissionDenied`] with `needs`.
    pub(crate) fn needing(
        call: &'static str,
        needs: &'static str,
        what: impl Into<String>,
        source: io::Error,
    ) -> Error {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied {
                call,
                needs,
                source,
            },
            _ => Error::Sys {
                call,
                what: what.into(),
                source,
            },
        }
    }

    /// True if the caller lacks a capability.
    pub fn is_permission_denied(&self) -> bool {
        match self {
            Error::PermissionDenied { .. } => true,
            Error::Capture(e) => e.is_permission_denied(),
            _ => false,
        }
    }

    /// True if the error means the kernel backend cannot run here at all (no bpf(2), no
    /// permission, no hook), so a ring capture is the way to count.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Translate { .. } | Error::Verifier { .. } | Error::Attach { .. } => true,
            Error::Sys { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP)
            ),
            e => e.is_permission_denied(),
        }
    }
}

/// What loading and attaching programs needs.
pub(crate) const NEEDS_NET_ADMIN: &str =
    "counting in the kernel needs CAP_NET_ADMIN and CAP_BPF (run as root)";
/// What the socket that holds the interface promiscuous needs.
pub(crate) const NEEDS_NET_RAW: &str =
    "the packet socket that holds the interface (promiscuous) needs CAP_NET_RAW (run as root)";

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
