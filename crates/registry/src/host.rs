//! Every network namespace on the host at once, for the surfaces that show them all: each
//! found, opened and labelled the way `nsring ls --all-netns` shows it; the interfaces a
//! capture can bind in each (the Wireshark extcap interface list); and each one's view
//! with its counters (the Prometheus exporter), built with one scan of `/proc` for all.
//!
//! A namespace that goes away while it is looked at is left out, never an error: a host's
//! namespaces come and go all the time.

use nsring_netns::link::Link;
use nsring_netns::{
    ContainerTag, DiscoverOptions, IfPart, NetNs, NsPart, NsSpec, Runtime, TagSource,
};

use crate::owners::{self, SocketOwners};
use crate::record::RunDir;
use crate::view::{self, NamespaceView, ViewOptions};

/// One namespace of the host, opened.
#[derive(Debug)]
pub struct HostNs {
    /// How `ls` names it: its iproute2 names (`ns0`, comma-separated if several),
    /// `(initial)`, `pid:PID` of a process in it, or the path of an nsfs mount of it.
    pub label: String,
    /// Its iproute2 names (`/run/netns/NAME`), sorted; empty for an anonymous one.
    pub names: Vec<String>,
    /// A spelling that opens it again from another process: its first name, the path of a
    /// mount of it (a container runtime's), or `pid:PID` of a process in it.
    pub spec: NsSpec,
    /// The nsfs inode.
    pub inode: u64,
    /// The initial network namespace.
    pub initial: bool,
    /// The caller's own.
    pub current: bool,
    /// Only a thread is in it (entered with `setns`), so it is not worth naming in a list
    /// of capture targets: its spelling dies with the thread.
    pub transient: bool,
    /// The containers it belongs to, as their processes' cgroups say (runtime and ID; the
    /// initial namespace has none). [`name_containers`] asks the runtimes for their names.
    pub containers: Vec<ContainerTag>,
    /// The open namespace.
    pub ns: NetNs,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The namespaces could not be listed at all.
    #[error("cannot list the network namespaces")]
    List(#[source] nsring_netns::Error),
    /// `/proc` could not be read for the socket owners.
    #[error("cannot find the owners of the packet sockets")]
    Owners(#[from] owners::Error),
}

/// Every network namespace a process or thread is in, that has a name, or that is bind
/// mounted somewhere (as `nsring_netns::discover` finds them, with the containers their
/// processes' cgroups name): the initial one first, then by inode.
pub fn namespaces() -> Result<Vec<HostNs>, Error> {
    let mut found = Vec::new();
    let discovery =
        nsring_netns::discover(DiscoverOptions { runtimes: false }).map_err(Error::List)?;
    for info in discovery.namespaces {
        let mut specs: Vec<NsSpec> = info.names.iter().cloned().map(NsSpec::Name).collect();
        specs.extend(info.mounts.iter().cloned().map(NsSpec::Path));
        specs.extend(info.holders.iter().map(|h| match h.tid {
            Some(tid) => NsSpec::Path(format!("/proc/{}/task/{tid}/ns/net", h.pid).into()),
            None => NsSpec::Pid(h.pid),
        }));
        let Some((spec, ns)) = specs
            .into_iter()
            .find_map(|s| NetNs::open(&s).ok().map(|ns| (s, ns)))
        else {
            continue; // gone since it was found
        };
        if ns.inode() != info.inode {
            continue; // the process moved on; it will be found under its new namespace
        }
        let label = if !info.names.is_empty() {
            info.names.join(",")
        } else if info.initial {
            "(initial)".into()
        } else if let Some(h) = info.holders.first() {
            format!("pid:{}", h.pid)
        } else if let Some(m) = info.mounts.first() {
            m.display().to_string()
        } else {
            format!("inode {}", info.inode)
        };
        let transient = info.names.is_empty()
            && info.mounts.is_empty()
            && info.holders.iter().all(|h| h.tid.is_some());
        found.push(HostNs {
            label,
            spec,
            inode: info.inode,
            initial: info.initial,
            current: info.current,
            transient,
            containers: info.containers,
            names: info.names,
            ns,
        });
    }
    Ok(found)
}

/// Gives the containers of `namespaces` their names: each runtime that has one of them is
/// asked once (`nsring_netns::name_tags`). A runtime that is not here leaves runtime and ID.
pub fn name_containers(namespaces: &mut [HostNs]) {
    let mut all: Vec<ContainerTag> = namespaces
        .iter()
        .flat_map(|h| h.containers.iter().cloned())
        .collect();
    nsring_netns::name_tags(&mut all);
    for h in namespaces.iter_mut() {
        for t in &mut h.containers {
            if let Some(named) = all.iter().find(|n| n.id == t.id && n.runtime == t.runtime) {
                *t = named.clone();
            }
        }
        h.containers
            .sort_by_key(|t| (t.source != TagSource::Api, t.label()));
    }
}

/// An interface a capture can bind, in a namespace of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureTarget {
    /// The namespace, as a target spells it (`ns0`, `pid:4242`, a path).
    pub netns: NsSpec,
    /// The interface's name.
    pub interface: String,
    /// Its hardware type (`ARPHRD_*`: 1 Ethernet, 772 loopback, 65534 none).
    pub link_type: u16,
}

impl CaptureTarget {
    /// `NS/IFACE`, as `-i` takes it (the target grammar's spelling, escaped where a name
    /// holds one of its special characters).
    pub fn target(&self) -> String {
        nsring_netns::Target {
            ns: Some(NsPart::Spec(self.netns.clone())),
            iface: IfPart::Name(self.interface.clone()),
        }
        .to_string()
    }
}

/// The interfaces of every namespace in `namespaces` except the caller's own and those only
/// a passing thread is in: what a capture tool that already lists the caller's interfaces
/// (Wireshark's dumpcap) can add. In namespace order, then by interface index.
pub fn capture_targets(namespaces: &[HostNs]) -> Vec<CaptureTarget> {
    let mut out = Vec::new();
    for h in namespaces.iter().filter(|h| !h.current && !h.transient) {
        let Ok(links) = nsring_netns::link::list_plain(&h.ns) else {
            continue; // gone meanwhile
        };
        let netns = spelling(h);
        out.extend(links.into_iter().map(|l: Link| CaptureTarget {
            netns: netns.clone(),
            interface: l.name,
            link_type: l.link_type,
        }));
    }
    out
}

/// How a target names `h` from another process: by its name if it has one, by its
/// container (`podman:web1`) where [`name_containers`] learned the name and the runtime
/// takes targets, else as it was opened (a mount's path, `pid:PID`).
fn spelling(h: &HostNs) -> NsSpec {
    if !h.names.is_empty() {
        return h.spec.clone();
    }
    h.containers
        .iter()
        .find_map(|t| {
            Some(NsSpec::Container {
                runtime: Runtime::from_prefix(&t.runtime)?,
                name: t.name.clone()?,
            })
        })
        .unwrap_or_else(|| h.spec.clone())
}

/// Every namespace's view, as the exporter reads them on each scrape.
#[derive(Debug, Default)]
pub struct Survey {
    /// The views, in the order of the namespaces given.
    pub views: Vec<NamespaceView>,
    /// Namespaces that could not be read (gone meanwhile, or no permission), with why.
    pub failed: Vec<(String, String)>,
}

/// The view of each of `namespaces` with the records of `run`, without veth peers, with one
/// scan of `/proc` for the owners of every namespace's sockets.
pub fn survey(namespaces: &[HostNs], run: &RunDir) -> Result<Survey, Error> {
    let owners: SocketOwners = owners::scan()?;
    let opts = ViewOptions {
        peers: false,
        owners: Some(&owners),
    };
    let mut s = Survey::default();
    for h in namespaces {
        match view::namespace_view_with(&h.ns, &h.label, run, &opts) {
            Ok(mut v) => {
                v.namespace.container = h.containers.first().map(ContainerTag::label);
                s.views.push(v);
            }
            Err(e) => s.failed.push((h.label.clone(), crate::view::chain(&e))),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target's spelling parses back to the same namespace and interface, special
    /// characters and all.
    #[test]
    fn capture_targets_spell_what_parses_back() {
        for (ns, iface) in [
            (NsSpec::Name("ns0".into()), "eth1"),
            (NsSpec::Name("a,b*c".into()), "eth1"),
            (NsSpec::Pid(42), "veth-x"),
            (NsSpec::Path("/run/docker/netns/0a1b".into()), "eth0"),
            (NsSpec::Name("ns0".into()), "we*ird,if"),
        ] {
            let t = CaptureTarget {
                netns: ns.clone(),
                interface: iface.into(),
                link_type: 1,
            };
            let text = t.target();
            let back = nsring_netns::Target::parse(&text).unwrap();
            let (bns, biface) = back.exact().unwrap();
            assert_eq!(biface.as_deref(), Some(iface), "{text}");
            match (&ns, &bns) {
                // a bare name reads back as "named namespace, else container"
                (NsSpec::Name(a), NsSpec::Plain(b)) => assert_eq!(a, b, "{text}"),
                _ => assert_eq!(ns, bns, "{text}"),
            }
        }
    }
}
