//! containerd, through its own client `ctr` (shipped in the same Debian package).
//!
//! containerd's API is gRPC; a client would bring tonic, prost, h2 and tokio, many times
//! the size of nsring, for three read-only questions. `ctr` answers them in stable text:
//! `ctr namespaces ls -q`, `ctr -n NS tasks ls` (`TASK PID STATUS`) and
//! `ctr -n NS containers ls -q`. The socket is `CONTAINERD_ADDRESS`, else
//! `/run/containerd/containerd.sock`; Docker's own containerd (`…/containerd/containerd.sock`
//! under dockerd's exec root, namespace `moby`) is reached the same way.
//!
//! containerd has no container names: `containerd:ID` takes a full ID or a unique prefix,
//! searched in every containerd namespace.

use std::path::{Path, PathBuf};

use crate::cmd::{self, CLI_TIMEOUT};
use crate::{Container, Error, Runtime, Source};

/// The containerd socket: `CONTAINERD_ADDRESS` (a path, or `unix://path`) or the default.
pub fn address() -> PathBuf {
    match std::env::var("CONTAINERD_ADDRESS") {
        Ok(a) if !a.is_empty() => PathBuf::from(a.strip_prefix("unix://").unwrap_or(&a)),
        _ => PathBuf::from("/run/containerd/containerd.sock"),
    }
}

/// How containerd is asked: `ctr` at [`address`], if the socket is there and `ctr` is
/// installed.
pub fn source() -> Result<Source, Error> {
    let sock = address();
    if !sock.exists() {
        return Err(Error::Absent {
            runtime: Runtime::Containerd,
            why: format!(
                "no socket at {} (is containerd running? CONTAINERD_ADDRESS names another)",
                sock.display()
            ),
        });
    }
    if !cmd::in_path("ctr") {
        return Err(Error::Absent {
            runtime: Runtime::Containerd,
            why: "the 'ctr' command (containerd's client) is not installed".into(),
        });
    }
    Ok(Source::Ctr(sock))
}

fn ctr(sock: &Path, args: &[&str]) -> Result<String, Error> {
    let sock = sock.to_string_lossy();
    let mut argv = vec!["--address", &sock];
    argv.extend_from_slice(args);
    let out = cmd::run(Runtime::Containerd, "ctr", &argv, CLI_TIMEOUT)?;
    if !out.success {
        return Err(Error::CommandFailed {
            runtime: Runtime::Containerd,
            command: format!("ctr {}", argv.join(" ")),
            message: cmd::last_line(&out.stderr),
        });
    }
    Ok(out.stdout)
}

/// One line of `ctr tasks ls`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Task {
    pub id: String,
    pub pid: u32,
    pub status: String,
}

/// Parses `ctr tasks ls`: a `TASK PID STATUS` header, then one task a line.
pub(crate) fn parse_tasks(text: &str) -> Vec<Task> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (id, pid, status) = (f.next()?, f.next()?, f.next()?);
            let pid = pid.parse().ok()?; // skips the header
            Some(Task {
                id: id.to_owned(),
                pid,
                status: status.to_ascii_lowercase(),
            })
        })
        .collect()
}

fn namespaces(sock: &Path) -> Result<Vec<String>, Error> {
    Ok(ctr(sock, &["namespaces", "ls", "-q"])?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn container(sock: &Path, ns: &str, t: Task) -> Container {
    let running = t.status == "running";
    Container {
        runtime: Runtime::Containerd,
        id: t.id,
        name: None,
        pid: (running && t.pid > 0).then_some(t.pid),
        status: t.status,
        netns_path: None,
        namespace: Some(ns.to_owned()),
        source: format!("ctr at unix://{}", sock.display()),
    }
}

/// The container whose ID is `id` or starts with it, in any containerd namespace. Several
/// matches are [`Error::Ambiguous`].
pub fn find(sock: &Path, id: &str) -> Result<Option<Container>, Error> {
    let mut found = Vec::new();
    for ns in namespaces(sock)? {
        let tasks = parse_tasks(&ctr(sock, &["-n", &ns, "tasks", "ls"])?);
        let mut with_task = Vec::new();
        for t in tasks.into_iter().filter(|t| t.id.starts_with(id)) {
            with_task.push(t.id.clone());
            found.push(container(sock, &ns, t));
        }
        // A container without a task has never been started (or its task was deleted).
        for c in ctr(sock, &["-n", &ns, "containers", "ls", "-q"])?.lines() {
            let c = c.trim();
            if c.starts_with(id) && !with_task.iter().any(|t| t == c) {
                found.push(Container {
                    runtime: Runtime::Containerd,
                    id: c.to_owned(),
                    name: None,
                    pid: None,
                    status: "created (no task)".into(),
                    netns_path: None,
                    namespace: Some(ns.clone()),
                    source: format!("ctr at unix://{}", sock.display()),
                });
            }
        }
    }
    // An exact ID wins over longer IDs it is a prefix of.
    if let Some(i) = found.iter().position(|c| c.id == id) {
        return Ok(Some(found.swap_remove(i)));
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(Error::Ambiguous {
            name: format!("containerd:{id}"),
            candidates: found
                .iter()
                .map(|c| {
                    format!(
                        "{} (namespace {})",
                        c.id,
                        c.namespace.as_deref().unwrap_or("?")
                    )
                })
                .collect(),
        }),
    }
}

/// The running tasks of every containerd namespace.
pub fn running(sock: &Path) -> Result<Vec<Container>, Error> {
    let mut out = Vec::new();
    for ns in namespaces(sock)? {
        for t in parse_tasks(&ctr(sock, &["-n", &ns, "tasks", "ls"])?) {
            let c = container(sock, &ns, t);
            if c.pid.is_some() {
                out.push(c);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_table() {
        // `ctr -n moby tasks ls` of containerd 1.6.
        let text = "\
TASK                                                                PID     STATUS    
3f2a9c1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7    4242    RUNNING
web                                                                 0       STOPPED
";
        assert_eq!(
            parse_tasks(text),
            vec![
                Task {
                    id: "3f2a9c1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7".into(),
                    pid: 4242,
                    status: "running".into()
                },
                Task {
                    id: "web".into(),
                    pid: 0,
                    status: "stopped".into()
                }
            ]
        );
        assert!(parse_tasks("TASK PID STATUS\n").is_empty());
    }
}
