//! Container runtimes as nsring sees them.
//!
//! This crate owns:
//! - [`Runtime`], the runtimes nsring knows (Podman, Docker, containerd) and how they are
//!   spelled in a target (`podman:web1`);
//!
//! It must not open or enter namespaces (that is `nsring-netns`, which uses this crate to
//! turn `podman:web1` into a process) and it never changes a container.
#![forbid(unsafe_code)]

use std::fmt;

use serde::Serialize;

/// A container runtime nsring can ask about its containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
}

impl Runtime {
    /// Every runtime, in the order a plain name is looked up.
    pub const ALL: [Runtime; 3] = [Runtime::Podman, Runtime::Docker, Runtime::Containerd];

    /// The prefix of a target (`podman`, `docker`, `containerd`).
    pub fn prefix(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
        }
    }

    /// The runtime a target prefix names.
    pub fn from_prefix(prefix: &str) -> Option<Runtime> {
        Runtime::ALL.into_iter().find(|r| r.prefix() == prefix)
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}
