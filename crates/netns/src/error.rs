use std::io;
use std::path::PathBuf;

/// Errors of namespace and link operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A namespace name that iproute2 would refuse or that would escape `/run/netns`.
    #[error("invalid namespace name {name:?}: it {why}; use a single path component such as 'ns0'")]
    InvalidName { name: String, why: &'static str },
    /// The namespace does not exist.
    #[error("network namespace '{spec}' does not exist (see 'nsring netns list')")]
    NotFound { spec: String },
    /// `add` of a name that exists.
    #[error(
        "network namespace '{name}' already exists (delete it with 'nsring netns del {name}' or pick another name)"
    )]
    Exists { name: String },
    /// The path exists but is not a network namespace.
    #[error("{} is not a network namespace file", path.display())]
    NotANetNs { path: PathBuf },
    /// A system call failed.
    #[error("{call} {what} failed")]
    Sys {
        call: &'static str,
        what: String,
        #[source]
        source: io::Error,
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
