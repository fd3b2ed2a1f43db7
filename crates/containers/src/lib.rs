//! Container runtimes as nsring sees them.
//!
//! This crate owns:
//! - [`Runtime`], the runtimes nsring knows (Podman, Docker, containerd) and how they are
//!   spelled in a target (`podman:web1`);
//! - finding a container's main process by name or ID ([`find`], [`find_any`]) and listing
//!   the running ones ([`running`]), through each runtime's documented interface: the Docker
//!   Engine API on a unix socket (Docker's, and Podman's `podman system service`), Podman's
//!   CLI when its service is not running, and containerd's own client `ctr` (see
//!   docs/DESIGN.md, "Containers", for why);
//! - recognising containers from `/proc/PID/cgroup` without asking any runtime ([`cgroup`]).
//!
//! It must not open or enter namespaces (that is `nsring-netns`, which uses this crate to
//! turn `podman:web1` into a process) and it never changes a container.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

pub mod api;
pub mod cgroup;
pub mod cmd;
pub mod containerd;
mod http;
pub mod podman;

pub use api::Endpoint;

/// A container runtime nsring can ask about its containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Podman (`podman:NAME|ID`).
    Podman,
    /// Docker, or any server of the Docker Engine API (`docker:NAME|ID`).
    Docker,
    /// containerd (`containerd:ID`, any containerd namespace).
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

/// A container as its runtime describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    /// The runtime that runs it.
    pub runtime: Runtime,
    /// The full ID.
    pub id: String,
    /// Its name (Docker and Podman; containerd has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its main process, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The runtime's word for its state (`running`, `exited`, `created`, ...).
    pub status: String,
    /// The file the runtime keeps its network namespace on, if it says (Docker's and
    /// Podman's `SandboxKey`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns_path: Option<PathBuf>,
    /// containerd's namespace (`default`, `k8s.io`, `moby`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Where it was found: the API socket (`unix:///…`), `podman CLI` or `ctr at …`.
    #[serde(skip)]
    pub source: String,
}

impl Container {
    /// The first 12 characters of the ID, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// `runtime:name`, or `runtime:shortid` without a name: the spelling that finds it again.
    pub fn label(&self) -> String {
        format!(
            "{}:{}",
            self.runtime,
            self.name.as_deref().unwrap_or_else(|| self.short_id())
        )
    }

    /// True if `name` is its name, its ID or a prefix of its ID.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name) || self.id.starts_with(name)
    }
}

/// Errors of finding containers. Each says which runtime and where it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The runtime is not installed or not running here.
    #[error("{runtime} is not available here: {why}")]
    Absent {
        /// The runtime.
        runtime: Runtime,
        /// What is missing (its socket, its client).
        why: String,
    },
    /// A configuration nsring cannot use (a `tcp://` `DOCKER_HOST`, say).
    #[error("{what}")]
    Unsupported {
        /// The runtime.
        runtime: Runtime,
        /// What cannot be used, and why.
        what: String,
    },
    /// The API socket refused us.
    #[error("cannot connect to {runtime} at {endpoint}{}", advice(source))]
    Connect {
        /// The runtime.
        runtime: Runtime,
        /// The socket's URL (`unix:///…`).
        endpoint: String,
        /// What connecting said.
        #[source]
        source: io::Error,
    },
    /// No complete answer in time.
    #[error("{runtime} at {endpoint} did not answer within {secs} s (is the daemon hung?)")]
    Timeout {
        /// The runtime.
        runtime: Runtime,
        /// The socket's URL, or the client command.
        endpoint: String,
        /// The time allowed.
        secs: u64,
    },
    /// An answer that is not what the API documents.
    #[error("{runtime} at {endpoint}: {what}")]
    Protocol {
        /// The runtime.
        runtime: Runtime,
        /// The socket's URL.
        endpoint: String,
        /// What was wrong with the answer.
        what: String,
    },
    /// The API answered with an error status.
    #[error("{runtime} at {endpoint} answered {status}: {message}")]
    Api {
        /// The runtime.
        runtime: Runtime,
        /// The socket's URL.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// The runtime's client could not be started.
    #[error("cannot run '{command}'")]
    Command {
        /// The runtime.
        runtime: Runtime,
        /// The command line.
        command: String,
        /// Why it could not start.
        #[source]
        source: io::Error,
    },
    /// The runtime's client failed.
    #[error("'{command}' failed: {message}")]
    CommandFailed {
        /// The runtime.
        runtime: Runtime,
        /// The command line.
        command: String,
        /// The last line of its standard error.
        message: String,
    },
    /// No container of that name or ID.
    #[error("{}", not_found(runtime, name, searched, unreachable))]
    NotFound {
        /// The runtime asked, or `None` for a bare name (every runtime).
        runtime: Option<Runtime>,
        /// The name or ID asked for.
        name: String,
        /// The runtimes asked, and how (`docker at unix:///var/run/docker.sock`).
        searched: Vec<String>,
        /// Runtimes that could not be asked, and why.
        unreachable: Vec<String>,
    },
    /// The container exists but has no process (and so no network namespace).
    #[error("{runtime} container '{name}' is not running ({status}); start it first")]
    NotRunning {
        /// Its runtime.
        runtime: Runtime,
        /// The name or ID asked for.
        name: String,
        /// The runtime's word for its state (`exited`, `created`, ...).
        status: String,
    },
    /// A bare name that several running containers answer to.
    #[error(
        "'{name}' matches several running containers: {}; name one with its runtime prefix",
        candidates.join(", ")
    )]
    Ambiguous {
        /// The name asked for.
        name: String,
        /// `podman:web1 (3f2a9c1b2c3d)`, ...
        candidates: Vec<String>,
    },
}

fn advice(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (permission denied: run as root or as a member of the socket's group)"
        }
        io::ErrorKind::ConnectionRefused => " (nothing listens there: is the daemon running?)",
        _ => "",
    }
}

fn not_found(
    runtime: &Option<Runtime>,
    name: &str,
    searched: &[String],
    unreachable: &[String],
) -> String {
    let mut s = match runtime {
        Some(r) => format!("no {r} container '{name}' (asked {})", searched.join(", ")),
        None if searched.is_empty() => {
            format!("'{name}' is not a named namespace, and no container runtime is reachable")
        }
        None => format!(
            "'{name}' is neither a named namespace nor a running container (asked {})",
            searched.join(", ")
        ),
    };
    if !unreachable.is_empty() {
        s.push_str(&format!("; not asked: {}", unreachable.join("; ")));
    }
    s
}

impl Error {
    /// True if the user named something that is not there (no such container, runtime,
    /// several matches, not running): a usage error. Sockets that refuse or hang are not.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Absent { .. }
                | Error::Unsupported { .. }
                | Error::NotFound { .. }
                | Error::NotRunning { .. }
                | Error::Ambiguous { .. }
        )
    }
}

/// How one runtime is asked here: its API socket, or its own client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The Docker Engine API on a unix socket (Docker, or Podman's service).
    Api(Endpoint),
    /// The `podman` command (no service socket).
    PodmanCli,
    /// containerd through `ctr`, at this socket.
    Ctr(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Api(ep) => write!(f, "{} at {}", ep.runtime, ep.url()),
            Source::PodmanCli => f.write_str("podman (CLI)"),
            Source::Ctr(sock) => write!(f, "containerd at unix://{} (ctr)", sock.display()),
        }
    }
}

/// How `runtime` is asked on this host, from the environment (`DOCKER_HOST`,
/// `CONTAINER_HOST`, `CONTAINERD_ADDRESS`) and what is installed; [`Error::Absent`] if it
/// is not here at all.
pub fn source(runtime: Runtime) -> Result<Source, Error> {
    match runtime {
        Runtime::Docker => {
            let ep = Endpoint::from_env(Runtime::Docker, "DOCKER_HOST", "/var/run/docker.sock")?;
            if ep.from_env.is_none() && !ep.exists() {
                return Err(Error::Absent {
                    runtime,
                    why: format!(
                        "no socket at {} (is dockerd running? DOCKER_HOST names another)",
                        ep.socket.display()
                    ),
                });
            }
            Ok(Source::Api(ep))
        }
        Runtime::Podman => podman::source(),
        Runtime::Containerd => containerd::source(),
    }
}

/// The container `name` (a name, full ID or unique ID prefix) of `runtime`, running.
pub fn find(runtime: Runtime, name: &str) -> Result<Container, Error> {
    let src = source(runtime)?;
    let found = lookup(&src, name)?;
    match found {
        None => Err(Error::NotFound {
            runtime: Some(runtime),
            name: name.to_owned(),
            searched: vec![src.to_string()],
            unreachable: Vec::new(),
        }),
        Some(c) if c.pid.is_none() => Err(Error::NotRunning {
            runtime,
            name: name.to_owned(),
            status: c.status,
        }),
        Some(c) => Ok(c),
    }
}

fn lookup(src: &Source, name: &str) -> Result<Option<Container>, Error> {
    match src {
        Source::Api(ep) => ep.inspect(name),
        Source::PodmanCli => podman::inspect(name),
        Source::Ctr(sock) => containerd::find(sock, name),
    }
}

/// The one running container, in any runtime, whose name or ID is `name` (a bare name that
/// is not a named namespace). Runtimes that are not here are skipped; ones that fail are
/// named in the error if nothing is found elsewhere.
pub fn find_any(name: &str) -> Result<Container, Error> {
    let mut running = Vec::new();
    let mut stopped = None;
    let mut searched = Vec::new();
    let mut unreachable = Vec::new();
    let mut failure = None;
    for runtime in Runtime::ALL {
        let src = match source(runtime) {
            Ok(s) => s,
            Err(Error::Absent { .. }) => continue,
            Err(e) => {
                unreachable.push(e.to_string());
                continue;
            }
        };
        searched.push(src.to_string());
        match lookup(&src, name) {
            Ok(Some(c)) if c.pid.is_some() => running.push(c),
            Ok(Some(c)) => stopped = stopped.or(Some(c)),
            Ok(None) => {}
            Err(e) => {
                unreachable.push(e.to_string());
                failure = failure.or(Some(e));
            }
        }
    }
    dedup_by_pid(&mut running);
    match running.len() {
        1 => Ok(running.remove(0)),
        0 => match (stopped, failure) {
            (Some(c), _) => Err(Error::NotRunning {
                runtime: c.runtime,
                name: name.to_owned(),
                status: c.status,
            }),
            // The only runtime asked failed: that is the error, not "not found".
            (None, Some(e)) if searched.len() == 1 => Err(e),
            _ => Err(Error::NotFound {
                runtime: None,
                name: name.to_owned(),
                searched,
                unreachable,
            }),
        },
        _ => Err(Error::Ambiguous {
            name: name.to_owned(),
            candidates: running
                .iter()
                .map(|c| format!("{} ({})", c.label(), c.short_id()))
                .collect(),
        }),
    }
}

/// The running containers of every runtime that can be asked, and one line per runtime
/// that is here but could not be asked (for a note; absent runtimes are not mentioned).
pub fn running() -> (Vec<Container>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for runtime in Runtime::ALL {
        match running_in(runtime) {
            Ok(mut v) => out.append(&mut v),
            Err(Error::Absent { .. }) => {}
            Err(e) => notes.push(e.to_string()),
        }
    }
    dedup_by_pid(&mut out);
    (out, notes)
}

/// The running containers of one runtime; [`Error::Absent`] if it is not here.
pub fn running_in(runtime: Runtime) -> Result<Vec<Container>, Error> {
    match source(runtime)? {
        Source::Api(ep) => ep.running(),
        Source::PodmanCli => podman::running(),
        Source::Ctr(sock) => containerd::running(&sock),
    }
}

/// One entry per container: the same main process reported by two runtimes is one
/// container seen twice (Podman's CLI and its Docker-compatible service at `DOCKER_HOST`;
/// Docker and its containerd, namespace `moby`). The first runtime in [`Runtime::ALL`]'s
/// order keeps it.
fn dedup_by_pid(found: &mut Vec<Container>) {
    let mut seen = std::collections::HashSet::new();
    found.retain(|c| c.pid.is_none_or(|pid| seen.insert(pid)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(runtime: Runtime, id: &str, pid: Option<u32>) -> Container {
        Container {
            runtime,
            id: id.into(),
            name: Some("web1".into()),
            pid,
            status: if pid.is_some() { "running" } else { "exited" }.into(),
            netns_path: None,
            namespace: None,
            source: String::new(),
        }
    }

    #[test]
    fn one_process_is_one_container_whoever_reports_it() {
        let mut found = vec![
            c(Runtime::Podman, "aa", Some(10)),
            c(Runtime::Docker, "aa", Some(10)), // Podman's service at DOCKER_HOST
            c(Runtime::Docker, "bb", Some(20)),
            c(Runtime::Containerd, "bb", Some(20)), // Docker's containerd, namespace moby
            c(Runtime::Docker, "cc", None),
            c(Runtime::Podman, "dd", None),
        ];
        dedup_by_pid(&mut found);
        let kept: Vec<(Runtime, &str)> = found.iter().map(|c| (c.runtime, c.id.as_str())).collect();
        assert_eq!(
            kept,
            [
                (Runtime::Podman, "aa"),
                (Runtime::Docker, "bb"),
                (Runtime::Docker, "cc"),
                (Runtime::Podman, "dd")
            ]
        );
    }
}
