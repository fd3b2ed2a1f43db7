//! Recognising a container from a process's cgroup (`/proc/PID/cgroup`), without asking any
//! runtime: enough to label an anonymous namespace `docker:3f2a9c1b2c3d` when the runtime's
//! API is not reachable (another user's socket, a runtime in another mount namespace).
//!
//! Each runtime names the cgroup of a container after its 64-hex-digit ID, in one of these
//! spellings (cgroup v1 lines `N:controllers:/path`, v2 the line `0::/path`):
//!
//! | runtime | cgroupfs driver | systemd driver |
//! |---|---|---|
//! | Docker | `/docker/<id>` | `/system.slice/docker-<id>.scope` |
//! | Podman | `/libpod_parent/libpod-<id>` | `/machine.slice/libpod-<id>.scope[/container]` |
//! | containerd (CRI) | `/kubepods/…/pod<uid>/<id>` | `…/kubepods-…-pod<uid>.slice/cri-containerd-<id>.scope`, `…:cri-containerd:<id>` |
//! | CRI-O | `/kubepods/…/pod<uid>/crio-<id>` | `…/crio-<id>.scope` |
//!
//! Kubernetes' cgroupfs layout (`/kubepods/<qos>/pod<uid>/<id>`) does not say which runtime
//! made the container: it is reported as [`Kind::Kubernetes`] with the pod's UID. The
//! runtimes' monitor processes (`libpod-conmon-<id>.scope`, `crio-conmon-<id>.scope`) are
//! not in the container and are not recognised.

use std::fmt;

use serde::Serialize;

/// Who made a container, as its cgroup tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Docker (`docker-<id>.scope`, `/docker/<id>`).
    Docker,
    /// Podman (`libpod-<id>.scope`, `/libpod_parent/libpod-<id>`).
    Podman,
    /// containerd's CRI plugin (`cri-containerd-<id>.scope`, `…:cri-containerd:<id>`).
    Containerd,
    /// CRI-O (`crio-<id>.scope`).
    #[serde(rename = "cri-o")]
    CriO,
    /// A Kubernetes pod's container whose runtime the cgroup does not name.
    Kubernetes,
}

impl Kind {
    /// The word for it in outputs (`docker`, `podman`, `containerd`, `cri-o`, `kubernetes`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Docker => "docker",
            Kind::Podman => "podman",
            Kind::Containerd => "containerd",
            Kind::CriO => "cri-o",
            Kind::Kubernetes => "kubernetes",
        }
    }

    /// The runtime nsring can ask about it, if any.
    pub fn runtime(self) -> Option<crate::Runtime> {
        match self {
            Kind::Docker => Some(crate::Runtime::Docker),
            Kind::Podman => Some(crate::Runtime::Podman),
            Kind::Containerd => Some(crate::Runtime::Containerd),
            Kind::CriO | Kind::Kubernetes => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container recognised from a cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct CgroupContainer {
    /// Who made it.
    pub kind: Kind,
    /// The full ID (64 hex digits).
    pub id: String,
    /// The Kubernetes pod's UID, when the cgroup is a pod's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl CgroupContainer {
    /// The first 12 digits of the ID.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// `docker:3f2a9c1b2c3d`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind, self.short_id())
    }
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `prefix<id>suffix` → id.
fn between<'a>(s: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix)?
        .strip_suffix(suffix)
        .filter(|id| is_id(id))
}

/// The pod UID in a path component: `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid>.slice`
/// (systemd, with `_` for `-`).
fn pod_uid(component: &str) -> Option<String> {
    let i = component.rfind("pod")?;
    let uid = component[i + 3..].trim_end_matches(".slice");
    (uid.len() == 36
        && uid
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '_'))
    .then(|| uid.replace('_', "-"))
}

/// The container named by one path component, given the component before it.
fn component(c: &str, parent: Option<&str>) -> Option<(Kind, String)> {
    let found = |k: Kind, id: &str| Some((k, id.to_owned()));
    if c.contains("conmon") {
        return None;
    }
    if let Some(id) = between(c, "docker-", ".scope") {
        return found(Kind::Docker, id);
    }
    if let Some(id) = between(c, "libpod-", ".scope").or_else(|| between(c, "libpod-", "")) {
        return found(Kind::Podman, id);
    }
    if let Some(id) = between(c, "cri-containerd-", ".scope") {
        return found(Kind::Containerd, id);
    }
    if let Some((_, id)) = c
        .rsplit_once(":cri-containerd:")
        .filter(|(_, id)| is_id(id))
    {
        return found(Kind::Containerd, id);
    }
    if let Some(id) = between(c, "crio-", ".scope").or_else(|| between(c, "crio-", "")) {
        return found(Kind::CriO, id);
    }
    if is_id(c) {
        return match parent {
            Some("docker") => found(Kind::Docker, c),
            Some("libpod_parent") => found(Kind::Podman, c),
            Some(p) if p.starts_with("pod") || p.contains("-pod") => found(Kind::Kubernetes, c),
            _ => None,
        };
    }
    None
}

/// The container a cgroup path belongs to (`/system.slice/docker-<id>.scope`).
pub fn parse_path(path: &str) -> Option<CgroupContainer> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    // The deepest component that names a container: Podman puts the payload in a
    // `container` child of its scope, so look from the end.
    for i in (0..parts.len()).rev() {
        let parent = i.checked_sub(1).map(|p| parts[p]);
        if let Some((kind, id)) = component(parts[i], parent) {
            // The pod is a parent, or (systemd's `slice:cri-containerd:id`) this one's head.
            let pod = parts[..=i]
                .iter()
                .rev()
                .find_map(|p| pod_uid(p.split(':').next().unwrap_or(p)));
            return Some(CgroupContainer { kind, id, pod });
        }
    }
    None
}

/// The container a process belongs to, from the text of its `/proc/PID/cgroup`.
pub fn parse(text: &str) -> Option<CgroupContainer> {
    text.lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(parse_path)
}

/// The container process `pid` is in, if its cgroup says; `None` too if it is gone.
pub fn of_pid(pid: u32) -> Option<CgroupContainer> {
    parse(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7";
    const UID: &str = "5f1e1c3a-8b2d-4c6e-9f0a-1b2c3d4e5f60";

    fn one(text: &str) -> (Kind, Option<String>) {
        let c = parse(text).unwrap_or_else(|| panic!("nothing in {text:?}"));
        assert_eq!(c.id, ID, "{text}");
        (c.kind, c.pod)
    }

    #[test]
    fn docker() {
        // cgroup v1, cgroupfs driver (Debian's docker.io without systemd), every controller.
        let v1 = format!(
            "12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        assert_eq!(one(&v1), (Kind::Docker, None));
        // cgroup v2, systemd driver.
        assert_eq!(
            one(&format!("0::/system.slice/docker-{ID}.scope\n")),
            (Kind::Docker, None)
        );
        let c = parse(&v1).unwrap();
        assert_eq!(c.label(), "docker:3f2a9c1b2c3d");
    }

    #[test]
    fn podman() {
        assert_eq!(
            one(&format!("4:memory:/libpod_parent/libpod-{ID}\n0::/\n")),
            (Kind::Podman, None)
        );
        assert_eq!(
            one(&format!("0::/machine.slice/libpod-{ID}.scope/container\n")),
            (Kind::Podman, None)
        );
        // Rootless, under the user's slice.
        assert_eq!(
            one(&format!(
                "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n"
            )),
            (Kind::Podman, None)
        );
        // conmon, the monitor, is not in the container.
        assert_eq!(
            parse(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n")),
            None
        );
    }

    #[test]
    fn kubernetes() {
        let sd = UID.replace('-', "_");
        assert_eq!(
            one(&format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{sd}.slice/cri-containerd-{ID}.scope\n"
            )),
            (Kind::Containerd, Some(UID.to_owned()))
        );
        assert_eq!(
            one(&format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{sd}.slice/crio-{ID}.scope\n"
            )),
            (Kind::CriO, Some(UID.to_owned()))
        );
        assert_eq!(
            one(&format!(
                "11:cpu,cpuacct:/kubepods/besteffort/pod{UID}/{ID}\n"
            )),
            (Kind::Kubernetes, Some(UID.to_owned()))
        );
        assert_eq!(
            one(&format!(
                "0::/system.slice/containerd.service/kubepods-besteffort-pod{sd}.slice:cri-containerd:{ID}\n"
            )),
            (Kind::Containerd, Some(UID.to_owned()))
        );
        assert_eq!(
            parse(&format!(
                "0::/kubepods/burstable/pod{UID}/crio-conmon-{ID}\n"
            )),
            None
        );
    }

    #[test]
    fn not_containers() {
        for text in [
            "0::/\n",
            "0::/user.slice/user-0.slice/session-1.scope\n",
            "4:memory:/process_api/2746e8556e941b8af7a1894621c6eb0c\n0::/\n",
            // An ID-like name under an unknown parent says nothing.
            &format!("0::/somewhere/{ID}\n"),
            &format!("0::/docker/{}\n", &ID[..63]),
            "garbage",
            "",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
