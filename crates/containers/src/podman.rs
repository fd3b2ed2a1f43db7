//! Podman: its API service when one listens (`CONTAINER_HOST`, else the default socket of
//! `podman system service`), else the `podman` command itself — on hosts without systemd the
//! service is usually not running, and the CLI reads the same container store.
//!
//! `podman container inspect` prints the Docker-compatible shape the API returns (`Id`,
//! `Name`, `State.Pid`, `NetworkSettings.SandboxKey`), so one decoder serves both.

use serde::Deserialize;

use crate::api::Inspect;
use crate::cmd::{self, CLI_TIMEOUT};
use crate::{Container, Endpoint, Error, Runtime, Source};

/// The socket `podman system service` listens on by default: root's, or the user's.
fn default_socket() -> String {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    match std::env::var("XDG_RUNTIME_DIR") {
        Ok(dir) if !root && !dir.is_empty() => format!("{dir}/podman/podman.sock"),
        _ => "/run/podman/podman.sock".to_owned(),
    }
}

/// How Podman is asked: `CONTAINER_HOST` (always), the default socket if a service listens
/// on it, else the CLI.
pub fn source() -> Result<Source, Error> {
    let ep = Endpoint::from_env(Runtime::Podman, "CONTAINER_HOST", &default_socket())?;
    if ep.from_env.is_some() || (ep.exists() && listening(&ep)) {
        return Ok(Source::Api(ep));
    }
    if cmd::in_path("podman") {
        return Ok(Source::PodmanCli);
    }
    Err(Error::Absent {
        runtime: Runtime::Podman,
        why: format!(
            "no 'podman' command, and no service at {} (CONTAINER_HOST names another)",
            ep.url()
        ),
    })
}

/// True if something accepts connections on the socket (a socket file may outlive its
/// service).
fn listening(ep: &Endpoint) -> bool {
    std::os::unix::net::UnixStream::connect(&ep.socket).is_ok()
}

fn podman(args: &[&str]) -> Result<cmd::Output, Error> {
    cmd::run(Runtime::Podman, "podman", args, CLI_TIMEOUT)
}

/// The container with this name, ID or unique ID prefix; `None` if there is none.
pub fn inspect(name: &str) -> Result<Option<Container>, Error> {
    let args = ["container", "inspect", "--format", "json", name];
    let out = podman(&args)?;
    if !out.success {
        if out
            .stderr
            .to_ascii_lowercase()
            .contains("no such container")
        {
            return Ok(None);
        }
        return Err(Error::CommandFailed {
            runtime: Runtime::Podman,
            command: format!("podman {}", args.join(" ")),
            message: cmd::last_line(&out.stderr),
        });
    }
    let list: Vec<Inspect> = decode(&out.stdout, "podman container inspect")?;
    Ok(list
        .into_iter()
        .next()
        .map(|c| c.into_container_from(Runtime::Podman, "podman (CLI)".into())))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ps {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    pid: i64,
    #[serde(default)]
    state: String,
}

/// The running containers.
pub fn running() -> Result<Vec<Container>, Error> {
    let args = ["ps", "--format", "json"];
    let out = podman(&args)?;
    if !out.success {
        return Err(Error::CommandFailed {
            runtime: Runtime::Podman,
            command: format!("podman {}", args.join(" ")),
            message: cmd::last_line(&out.stderr),
        });
    }
    let list: Vec<Ps> = decode(&out.stdout, "podman ps")?;
    Ok(list
        .into_iter()
        .filter_map(|p| {
            let pid = u32::try_from(p.pid).ok().filter(|p| *p > 0)?;
            Some(Container {
                runtime: Runtime::Podman,
                id: p.id,
                name: p.names.into_iter().next(),
                pid: Some(pid),
                status: if p.state.is_empty() {
                    "running".into()
                } else {
                    p.state
                },
                netns_path: None,
                namespace: None,
                source: "podman (CLI)".into(),
            })
        })
        .collect())
}

fn decode<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T, Error> {
    // `podman ps` prints `null`-free JSON, but an empty store may print nothing at all.
    let text = if text.trim().is_empty() { "[]" } else { text };
    serde_json::from_str(text).map_err(|e| Error::Protocol {
        runtime: Runtime::Podman,
        endpoint: "podman (CLI)".into(),
        what: format!("unexpected JSON from {what}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_json() {
        // Trimmed from `podman ps --format json` of Podman 4.3.
        let text = r#"[{"AutoRemove":false,"Command":["sleep","1000"],
            "Id":"9a8b7c6d5e4f30211203a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "Names":["web1"],"Pid":5151,"State":"running","Status":"Up 2 seconds"},
            {"Id":"00","Names":["gone"],"Pid":0,"State":"exited"}]"#;
        let list: Vec<Ps> = decode(text, "podman ps").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].names, ["web1"]);
        assert_eq!(list[0].pid, 5151);
        assert!(decode::<Vec<Ps>>("", "podman ps").unwrap().is_empty());
        assert!(decode::<Vec<Ps>>("{", "podman ps").is_err());
    }
}
