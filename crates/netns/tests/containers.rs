//! Containers in the library, with real Podman containers (root): the discovery API names a
//! container's namespace from the runtime and from cgroups alone, and `NetNs::open` finds
//! it by name, ID prefix and bare name.

use nsring_netns::lab::podman::PodmanLab;
use nsring_netns::{DiscoverOptions, NetNs, NsSpec, TagSource};

#[test]
fn discovery_names_container_namespaces() {
    let mut lab = PodmanLab::new("disc");
    let id = lab.run("a");
    let name = lab.name("a");
    let pid = lab.pid("a");
    let ns = NetNs::open(&NsSpec::Pid(pid)).unwrap();

    // From the runtime: the name.
    let found = nsring_netns::discover(DiscoverOptions { runtimes: true }).unwrap();
    let info = found
        .namespaces
        .iter()
        .find(|i| i.inode == ns.inode())
        .expect("the container's namespace is found");
    assert!(!info.initial);
    assert!(info.holders.iter().any(|h| h.pid == pid), "{info:?}");
    let tag = info
        .containers
        .iter()
        .find(|t| t.id == id)
        .unwrap_or_else(|| panic!("no tag for {id} in {info:?} (notes {:?})", found.notes));
    assert_eq!(tag.source, TagSource::Api);
    assert_eq!(tag.label(), format!("podman:{name}"));
    assert_eq!(
        info.label(),
        info.names.first().cloned().unwrap_or(tag.label())
    );
    assert!(info.open().unwrap().same_as(&ns));
    // The initial namespace carries no container, whatever runs on the host's network.
    assert!(found.namespaces[0].initial && found.namespaces[0].containers.is_empty());

    // From cgroups alone: runtime and ID.
    let found = nsring_netns::discover(DiscoverOptions { runtimes: false }).unwrap();
    let info = found
        .namespaces
        .iter()
        .find(|i| i.inode == ns.inode())
        .unwrap();
    let tag = info
        .containers
        .iter()
        .find(|t| t.id == id)
        .expect("cgroup tag");
    assert_eq!(tag.source, TagSource::Cgroup);
    assert_eq!(tag.label(), format!("podman:{}", &id[..12]));
    eprintln!(
        "discovery of {} namespaces took {:?}",
        found.namespaces.len(),
        found.took
    );

    // Opening by runtime:name, ID prefix and bare name reaches the same namespace.
    for spec in [
        format!("podman:{name}"),
        format!("podman:{}", &id[..10]),
        name.clone(),
    ] {
        let opened = NetNs::open(&spec.parse().unwrap()).unwrap();
        assert!(opened.same_as(&ns), "{spec}");
        assert_eq!(opened.container().map(|c| c.id.as_str()), Some(id.as_str()));
    }
}
