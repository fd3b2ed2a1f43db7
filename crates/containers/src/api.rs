//! The Docker Engine API on a unix socket: Docker's own (`DOCKER_HOST`, default
//! `/var/run/docker.sock`) and the same API as Podman serves it (`podman system service`,
//! `CONTAINER_HOST`, default `/run/podman/podman.sock`).
//!
//! Two calls only, both documented and stable across API versions, so the unversioned
//! paths are used (the daemon answers with its current version):
//! `GET /containers/{name or id}/json` (inspect; resolves names, full IDs and unique ID
//! prefixes) and `GET /containers/json` (the running containers).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::http::{self, HttpError};
use crate::{Container, Error, Runtime};

/// How long one API request may take, connect to last byte.
pub const API_TIMEOUT: Duration = Duration::from_secs(5);

/// One runtime's API socket and where its path came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The runtime that serves it (Podman's service speaks the same API as Docker).
    pub runtime: Runtime,
    /// The unix socket's path.
    pub socket: PathBuf,
    /// The variable that named it (`DOCKER_HOST`, `CONTAINER_HOST`), or `None` for the
    /// runtime's default path.
    pub from_env: Option<&'static str>,
}

impl Endpoint {
    /// `unix:///path`, as the runtimes write it.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Where a runtime's API listens: `var` (a `unix://` URL) if set, else `default`.
    pub fn from_env(runtime: Runtime, var: &'static str, default: &str) -> Result<Endpoint, Error> {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => {
                let path = url.strip_prefix("unix://").ok_or_else(|| Error::Unsupported {
                    runtime,
                    what: format!(
                        "{var}={url}: nsring reaches runtimes on unix sockets only (unix:///path), \
                         since it must be on the container's host to enter its namespace"
                    ),
                })?;
                Ok(Endpoint {
                    runtime,
                    socket: PathBuf::from(path),
                    from_env: Some(var),
                })
            }
            _ => Ok(Endpoint {
                runtime,
                socket: PathBuf::from(default),
                from_env: None,
            }),
        }
    }

    /// True if the socket file is there (a daemon may still not listen on it).
    pub fn exists(&self) -> bool {
        Path::new(&self.socket).exists()
    }

    fn get(&self, path: &str) -> Result<http::Response, Error> {
        http::get(&self.socket, path, API_TIMEOUT).map_err(|e| match e {
            HttpError::Connect(source) if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Absent {
                    runtime: self.runtime,
                    why: format!("no socket at {}", self.socket.display()),
                }
            }
            HttpError::Connect(source) => Error::Connect {
                runtime: self.runtime,
                endpoint: self.url(),
                source,
            },
            HttpError::Timeout => Error::Timeout {
                runtime: self.runtime,
                endpoint: self.url(),
                secs: API_TIMEOUT.as_secs(),
            },
            HttpError::Io(source) => Error::Connect {
                runtime: self.runtime,
                endpoint: self.url(),
                source,
            },
            HttpError::Malformed(what) => Error::Protocol {
                runtime: self.runtime,
                endpoint: self.url(),
                what,
            },
        })
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<Option<T>, Error> {
        let resp = self.get(path)?;
        if resp.status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&resp.status) {
            let message = serde_json::from_slice::<ApiMessage>(&resp.body)
                .map(|m| m.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&resp.body).trim().to_owned());
            return Err(Error::Api {
                runtime: self.runtime,
                endpoint: self.url(),
                status: resp.status,
                message,
            });
        }
        serde_json::from_slice(&resp.body)
            .map(Some)
            .map_err(|e| Error::Protocol {
                runtime: self.runtime,
                endpoint: self.url(),
                what: format!("unexpected JSON from {path}: {e}"),
            })
    }

    /// The container with this name, ID or unique ID prefix; `None` if there is none.
    pub fn inspect(&self, name: &str) -> Result<Option<Container>, Error> {
        // Names and IDs are [A-Za-z0-9_.-] (the grammar checks), so the path needs no escaping.
        let Some(c) = self.json::<Inspect>(&format!("/containers/{name}/json"))? else {
            return Ok(None);
        };
        Ok(Some(c.into_container(self)))
    }

    /// Every running container (inspected one by one for its process).
    pub fn running(&self) -> Result<Vec<Container>, Error> {
        let list: Vec<Listed> = self.json("/containers/json")?.unwrap_or_default();
        let mut out = Vec::with_capacity(list.len());
        for l in list {
            // One may stop between the listing and the inspection: then it is not running.
            if let Some(c) = self.inspect(&l.id)?
                && c.pid.is_some()
            {
                out.push(c);
            }
        }
        Ok(out)
    }
}

#[derive(Deserialize)]
struct ApiMessage {
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Inspect {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub state: State,
    #[serde(default)]
    pub network_settings: Option<NetworkSettings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct State {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub pid: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkSettings {
    #[serde(default)]
    pub sandbox_key: String,
}

impl Inspect {
    pub(crate) fn into_container_from(self, runtime: Runtime, source: String) -> Container {
        let running = self.state.running;
        Container {
            runtime,
            name: Some(self.name.trim_start_matches('/').to_owned()).filter(|n| !n.is_empty()),
            id: self.id,
            pid: u32::try_from(self.state.pid)
                .ok()
                .filter(|p| *p > 0 && running),
            status: if self.state.status.is_empty() {
                if running { "running" } else { "stopped" }.to_owned()
            } else {
                self.state.status
            },
            netns_path: self
                .network_settings
                .map(|n| PathBuf::from(n.sandbox_key))
                .filter(|p| !p.as_os_str().is_empty()),
            namespace: None,
            source,
        }
    }

    fn into_container(self, ep: &Endpoint) -> Container {
        self.into_container_from(ep.runtime, ep.url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_json() {
        // Trimmed from `GET /containers/web1/json` of Docker 20.10 and Podman 4.3.
        let docker = r#"{"Id":"3f2a9c1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7",
            "Name":"/web1","State":{"Status":"running","Running":true,"Pid":4242},
            "NetworkSettings":{"SandboxKey":"/var/run/docker/netns/0a1b2c3d4e5f"}}"#;
        let c = serde_json::from_str::<Inspect>(docker)
            .unwrap()
            .into_container_from(Runtime::Docker, "unix:///var/run/docker.sock".into());
        assert_eq!(c.name.as_deref(), Some("web1"));
        assert_eq!(c.pid, Some(4242));
        assert_eq!(c.short_id(), "3f2a9c1b2c3d");
        assert_eq!(c.label(), "docker:web1");
        assert_eq!(
            c.netns_path.as_deref(),
            Some(Path::new("/var/run/docker/netns/0a1b2c3d4e5f"))
        );
        let stopped = r#"{"Id":"ab","Name":"db","State":{"Status":"exited","Running":false,"Pid":0},
            "NetworkSettings":{"SandboxKey":""}}"#;
        let c = serde_json::from_str::<Inspect>(stopped)
            .unwrap()
            .into_container_from(Runtime::Podman, "podman".into());
        assert_eq!(
            (c.pid, c.status.as_str(), c.netns_path),
            (None, "exited", None)
        );
    }

    #[test]
    fn endpoints_from_the_environment() {
        // Each case uses a variable name of its own: tests run in parallel.
        let ep = Endpoint::from_env(
            Runtime::Docker,
            "NSRING_TEST_UNSET_HOST",
            "/var/run/docker.sock",
        )
        .unwrap();
        assert_eq!(ep.url(), "unix:///var/run/docker.sock");
        assert_eq!(ep.from_env, None);
    }
}
