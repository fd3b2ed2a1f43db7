use std::io;

/// What can go wrong in a capture session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed ({what})")]
    Sys {
        /// The call.
        call: &'static str,
        /// What it was called on.
        what: String,
        #[source]
        /// The error.
        source: io::Error,
    },
    /// Opening a namespace (a target named it exactly).
    #[error(transparent)]
    Netns(#[from] nsring_netns::Error),
    /// Opening a capture that a target names exactly.
    #[error(transparent)]
    Capture(#[from] nsring_capture::Error),
    /// The targets cannot be captured as written.
    #[error("{0}")]
    Usage(String),
    /// A capture that a target names exactly does not fit in the ring budget.
    #[error(
        "{target} needs a ring of {need} bytes but only {left} of the {budget}-byte ring budget are left; raise --ring-budget or use smaller rings (--blocks, --block-kib)"
    )]
    Budget {
        /// The target, `NS/IFACE`.
        target: String,
        /// Bytes its ring needs (at least).
        need: u64,
        /// Bytes left.
        left: u64,
        /// The whole budget.
        budget: u64,
    },
}

impl Error {
    pub(crate) fn sys(call: &'static str, what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys {
            call,
            what: what.into(),
            source,
        }
    }

    /// True if the error means the user named something that cannot be captured as written
    /// (a usage error, exit status 2, for a command-line tool).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::Usage(_) | Error::Budget { .. } => true,
            Error::Netns(e) => e.is_usage(),
            Error::Capture(e) => matches!(
                e,
                nsring_capture::Error::NoInterface { .. }
                    | nsring_capture::Error::InvalidInterfaceName { .. }
                    | nsring_capture::Error::Filter { .. }
                    | nsring_capture::Error::Config(_)
            ),
            Error::Sys { .. } => false,
        }
    }
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
