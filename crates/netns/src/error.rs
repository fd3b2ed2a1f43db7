use std::io;
use std::path::PathBuf;

/// Errors of namespace and link operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A namespace name that iproute2 would refuse or that would escape `/run/netns`.
    #[error("invalid namespace name {name:?}: it {why}; use a single path component such as 'ns0'")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it ("contains '/'").
        why: &'static str,
    },
    /// A target that does not parse (see [`crate::spec`]).
    #[error(transparent)]
    Spec(#[from] crate::spec::ParseError),
    /// `x:y` where `x` is not a known prefix and no namespace is named `x:y`.
    #[error(
        "'{spec}': unknown prefix '{prefix}:' (known: pid:, name:, podman:, docker:, containerd:) \
         and no namespace is named '{spec}'; for a name with ':' write 'name:{spec}'"
    )]
    UnknownPrefix {
        /// The target as given.
        spec: String,
        /// The part before the first ':'.
        prefix: String,
    },
    /// A container could not be found or its runtime asked (see `nsring_containers::Error`).
    #[error(transparent)]
    Container(#[from] nsring_containers::Error),
    /// The namespace does not exist.
    #[error("network namespace '{spec}' does not exist (see 'nsring netns list')")]
    NotFound {
        /// The namespace as the user wrote it.
        spec: String,
    },
    /// `add` of a name that exists.
    #[error(
        "network namespace '{name}' already exists (delete it with 'nsring netns del {name}' or pick another name)"
    )]
    Exists {
        /// The name.
        name: String,
    },
    /// The path exists but is not a network namespace.
    #[error("{} is not a network namespace file", path.display())]
    NotANetNs {
        /// The file.
        path: PathBuf,
    },
    /// No process with that PID (it may have exited).
    #[error("no process with PID {pid} (it may have exited; see 'ps')")]
    ProcessNotFound {
        /// The PID.
        pid: u32,
    },
    /// `netns exec` could not run the command; the errno says why (`ENOENT`: not found).
    #[error("cannot run '{cmd}' in namespace '{ns}'")]
    Exec {
        /// The command.
        cmd: String,
        /// The namespace, as the user wrote it.
        ns: String,
        /// The errno of `execvp` (or of entering the namespace).
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{call} {what} failed")]
    Sys {
        /// The system call (`setns`, `open`, ...).
        call: &'static str,
        /// What it was called on (a path, a namespace).
        what: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// An interface name the kernel would refuse.
    #[error("interface name '{name}' {why}; use 1 to 15 bytes without '/', ':' or whitespace")]
    InvalidIfName {
        /// The name as given.
        name: String,
        /// What is wrong with it ("is longer than 15 bytes").
        why: &'static str,
    },
    /// No interface of that name in that namespace (the kernel said `ENODEV`).
    #[error("no interface '{name}' in {} (see 'nsring link list')", ns_phrase(ns))]
    LinkNotFound {
        /// The interface name.
        name: String,
        /// The namespace (`(current)` for the caller's).
        ns: String,
    },
    /// An interface of that name exists already (the kernel said `EEXIST`).
    #[error(
        "interface '{name}' already exists in {}; pick another name",
        ns_phrase(ns)
    )]
    LinkExists {
        /// The interface name.
        name: String,
        /// The namespace (`(current)` for the caller's).
        ns: String,
    },
    /// The interface already has that address.
    #[error("'{dev}' in {} already has address {addr}", ns_phrase(ns))]
    AddrExists {
        /// The address with its prefix length.
        addr: String,
        /// The interface.
        dev: String,
        /// The namespace (`(current)` for the caller's).
        ns: String,
    },
    /// A prefix length too long for the address family.
    #[error("invalid prefix length /{prefix_len} for {addr}: at most /32 for IPv4, /128 for IPv6")]
    InvalidPrefix {
        /// The address.
        addr: std::net::IpAddr,
        /// The prefix length given.
        prefix_len: u8,
    },
    /// The kernel refused a route-netlink request; `source` carries its errno.
    #[error("{what} failed (netlink {request})")]
    Netlink {
        /// The request (`RTM_NEWLINK`, ...).
        request: &'static str,
        /// What it was meant to do, in words.
        what: String,
        /// The kernel's errno.
        #[source]
        source: io::Error,
    },
}

/// "namespace 'ns0'", or "the current namespace" for the spelling of `NsSpec::Current`.
fn ns_phrase(ns: &str) -> String {
    if ns == "(current)" {
        "the current namespace".to_owned()
    } else {
        format!("namespace '{ns}'")
    }
}

impl Error {
    /// True if the user named something wrong (a bad or missing namespace, interface,
    /// container or spelling): a usage error (exit 2), not a failure of the system.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::NotFound { .. }
                | Error::Exists { .. }
                | Error::NotANetNs { .. }
                | Error::InvalidIfName { .. }
                | Error::LinkNotFound { .. }
                | Error::LinkExists { .. }
                | Error::AddrExists { .. }
                | Error::InvalidPrefix { .. }
                | Error::Spec(_)
                | Error::UnknownPrefix { .. }
        ) || matches!(self, Error::Container(e) if e.is_usage())
    }

    pub(crate) fn sys(call: &'static str, what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys {
            call,
            what: what.into(),
            source,
        }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
