//! Which containers the namespaces of `count` and `dump` belong to, for their banners, JSON
//! lines and pcapng interface descriptions (docs/DESIGN.md, "Container identity in
//! outputs").
//!
//! The namespaces that exact targets name are looked at once, after the session opened
//! them and before the first packet: their processes' cgroups, and the runtimes for the
//! names (`nsring_netns::containers_of`). A namespace found later under `pid:PID` is
//! recognised from that process's cgroup alone (one small file, no runtime query inside the
//! capture loop). Others found by patterns or `--all-netns` are shown without a container.

use std::collections::BTreeMap;
use std::sync::Mutex;

use nsring_multi::{NsMatch, Target, TargetInfo};
use nsring_netns::{ContainerTag, DiscoverOptions, NetNs, NsSpec};

/// What is known, by namespace inode.
static KNOWN: Mutex<BTreeMap<u64, Vec<ContainerTag>>> = Mutex::new(BTreeMap::new());

fn known() -> std::sync::MutexGuard<'static, BTreeMap<u64, Vec<ContainerTag>>> {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Learns the containers of the namespaces `targets` name exactly (asking the runtimes for
/// names). Call it once the session has opened them: a namespace that cannot be opened is
/// skipped (the session has said why).
pub fn learn(targets: &[Target]) {
    for t in targets {
        let NsMatch::Exact(spec) = &t.ns else {
            continue;
        };
        if let Ok(ns) = NetNs::open(spec) {
            learn_ns(&ns);
        }
    }
}

/// Learns the containers of an open namespace; returns them.
pub fn learn_ns(ns: &NetNs) -> Vec<ContainerTag> {
    let tags = nsring_netns::containers_of(ns, DiscoverOptions { runtimes: true });
    known().insert(ns.inode(), tags.clone());
    tags
}

/// The containers of a capture's namespace, the first to be named first.
pub fn of(t: &TargetInfo) -> Vec<ContainerTag> {
    if let Some(tags) = known().get(&t.netns_inode) {
        return tags.clone();
    }
    // found later, as a process's namespace: that process's cgroup says
    let tags: Vec<ContainerTag> = match t.netns.parse::<NsSpec>() {
        Ok(NsSpec::Pid(pid)) if t.netns_inode != nsring_netns::PROC_NET_INIT_INO => {
            nsring_containers::cgroup::of_pid(pid)
                .map(|c| ContainerTag {
                    runtime: c.kind.to_string(),
                    id: c.id,
                    name: None,
                    namespace: None,
                    pod: c.pod,
                    source: nsring_netns::TagSource::Cgroup,
                })
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    };
    known().insert(t.netns_inode, tags.clone());
    tags
}

/// `podman:web1 (3f2a9c1b2c3d)`; several joined with `, `.
pub fn text(tags: &[ContainerTag]) -> String {
    tags.iter()
        .map(|t| format!("{} ({})", t.label(), t.id.get(..12).unwrap_or(&t.id)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `, container podman:web1 (3f2a9c1b2c3d)` to follow a namespace's description, or
/// nothing.
pub fn suffix(tags: &[ContainerTag]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(", container {}", text(tags))
    }
}
