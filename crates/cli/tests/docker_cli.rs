//! Docker containers by name, end to end, against real servers of the Docker Engine API:
//! a `dockerd` of the lab's own (with the containerd it starts, reached with `ctr`), and
//! Podman's Docker-compatible service (`podman system service`). Exact counts through
//! `docker:NAME/eth0`, a bare name, `containerd:ID` and Podman's socket as `DOCKER_HOST`;
//! a name that both Podman and Docker have is ambiguous; completion offers containers.
//!
//! One daemon serves every step (one test function: starting it is the slow part); the
//! labs' guards remove the containers, networks, images, stop the daemons and delete
//! their state.

use nsring_netns::lab::docker::DockerLab;
use nsring_netns::lab::podman::PodmanLab;
use nsring_netns::{NetNs, NsSpec};

mod common;

use common::complete::{CompletionDir, set};
use common::containers::{exact_count, fails, ok, with};

#[test]
fn docker_containers_by_name() {
    let mut docker = DockerLab::new("cli");
    let mut podman = PodmanLab::new("dk");
    let web = docker.name("web1");
    let id = docker.run("web1");
    let ns = NetNs::open(&NsSpec::Pid(docker.pid(&web))).unwrap();
    // Docker keeps the namespace under its exec root, not in /run/netns.
    let entries: Vec<_> = std::fs::read_dir(docker.netns_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        entries
            .iter()
            .any(|p| NetNs::open(&NsSpec::Path(p.clone())).unwrap().same_as(&ns)),
        "{entries:?}"
    );
    let mut env = podman.env();
    env.extend(docker.env());

    // Exact counts by docker:NAME, bare name (only Docker has it) and ID prefix.
    exact_count(&env, &ns, &format!("docker:{web}/eth0"), 300);
    exact_count(&env, &ns, &format!("{web}/eth0"), 200);
    exact_count(&env, &ns, &format!("docker:{}/eth0", &id[..12]), 100);

    // ls names the container, by docker:NAME and by PID (its cgroup, then the API).
    let pid = docker.pid(&web);
    for spec in [format!("docker:{web}"), format!("pid:{pid}")] {
        let ls = common::json_lines(&ok(&env, &["ls", "--netns", &spec, "--json"]));
        let c = &ls[0]["container"];
        assert_eq!(
            (&c["runtime"], &c["name"], &c["id"]),
            (
                &serde_json::json!("docker"),
                &serde_json::json!(web),
                &serde_json::json!(id)
            ),
            "{spec}: {ls:?}"
        );
    }
    // Without the daemon's socket only the cgroup speaks: runtime and ID, no name.
    let ls = common::json_lines(&ok(
        &with(&env, &[("DOCKER_HOST", "unix:///nonexistent/nsrt.sock")]),
        &["ls", "--netns", &format!("pid:{pid}"), "--json"],
    ));
    let c = &ls[0]["container"];
    assert_eq!(
        (&c["runtime"], &c["id"], &c["source"], c.get("name")),
        (
            &serde_json::json!("docker"),
            &serde_json::json!(id),
            &serde_json::json!("cgroup"),
            None
        ),
        "{ls:?}"
    );

    // count and dump name it: banner, JSON, pcapng interface description.
    let want_text = format!("container docker:{web} ({})", &id[..12]);
    for target in [format!("docker:{web}/eth0"), format!("pid:{pid}/eth0")] {
        let (out, err) = exact_count(&env, &ns, &target, 10);
        assert!(err.contains(&want_text), "{target}: {err}");
        let c = &common::containers::final_json(&out)["container"];
        assert_eq!(
            (&c["runtime"], &c["name"]),
            (&serde_json::json!("docker"), &serde_json::json!(web)),
            "{out}"
        );
        let (_, rows) = common::containers::dump_described(&env, &ns, &target, 5);
        let ns_label = target.rsplit_once('/').unwrap().0;
        let want = format!("eth0\tnetns {ns_label} (inode {}), {want_text}", ns.inode());
        assert!(rows.iter().all(|r| *r == want), "{target}: {rows:?}");
    }

    // containerd:ID, through the daemon's own containerd (namespace moby), with ctr.
    let ctr = with(
        &env,
        &[(
            "CONTAINERD_ADDRESS",
            docker.containerd_socket().to_str().unwrap(),
        )],
    );
    exact_count(&ctr, &ns, &format!("containerd:{}/eth0", &id[..12]), 100);
    exact_count(&ctr, &ns, &format!("containerd:{id}/eth0"), 50);
    fails(
        &ctr,
        &["count", "-i", "containerd:0000000000ff/eth0"],
        2,
        "no containerd container '0000000000ff'",
    );
    // The same container seen by Docker and by its containerd is one container: a bare ID
    // prefix is not ambiguous.
    exact_count(&ctr, &ns, &format!("{}/eth0", &id[..12]), 40);

    // A name both runtimes have: a usage error naming both.
    let shared = podman.name("both");
    podman.run("both");
    docker.run_named(&shared);
    let line = fails(
        &env,
        &["count", "-i", &format!("{shared}/eth0")],
        2,
        "matches several running containers",
    );
    assert!(
        line.contains(&format!("podman:{shared} ("))
            && line.contains(&format!("docker:{shared} (")),
        "{line}"
    );
    // With the runtime named, each is found.
    let pns = NetNs::open(&NsSpec::Pid(podman.pid("both"))).unwrap();
    let dns = NetNs::open(&NsSpec::Pid(docker.pid(&shared))).unwrap();
    assert!(!pns.same_as(&dns));
    exact_count(&env, &pns, &format!("podman:{shared}/eth0"), 30);
    exact_count(&env, &dns, &format!("docker:{shared}/eth0"), 20);

    // Podman's Docker-compatible API as a second server of the Docker API: docker:NAME
    // finds a Podman container there; as CONTAINER_HOST it is Podman's own socket.
    let url = podman.service();
    let pname = podman.name("svc");
    podman.run("svc");
    let sns = NetNs::open(&NsSpec::Pid(podman.pid("svc"))).unwrap();
    let via_api = with(&podman.env(), &[("DOCKER_HOST", &url)]);
    exact_count(&via_api, &sns, &format!("docker:{pname}/eth0"), 120);
    exact_count(
        &with(&podman.env(), &[("CONTAINER_HOST", &url)]),
        &sns,
        &format!("podman:{pname}/eth0"),
        60,
    );
    // The Podman CLI and the service at DOCKER_HOST report the same container: not
    // ambiguous by bare name.
    exact_count(&via_api, &sns, &format!("{pname}/eth0"), 25);

    // Completion offers the running containers as targets, and their interfaces. bash
    // splits words at ':', so what it puts in place is the part after the last ':'.
    let dir = CompletionDir::new("docker");
    // the part the names of this test's Docker containers share: no other container's
    let common_len = web
        .bytes()
        .zip(shared.bytes())
        .take_while(|(x, y)| x == y)
        .count();
    let mine = format!("docker:{}", &web[..common_len]);
    assert_eq!(
        dir.complete(&["nsring", "ls", "--netns", &mine], &env),
        set(&[&shared, &web]),
    );
    assert_eq!(
        dir.complete(&["nsring", "count", "-i", &format!("docker:{web}")], &env),
        set(&[&format!("{web}/eth0"), &format!("{web}/lo")]),
    );
    assert_eq!(
        dir.complete(&["nsring", "dump", "-i", &format!("podman:{pname}/")], &env),
        set(&[&format!("{pname}/eth0"), &format!("{pname}/lo")]),
    );
    assert_eq!(
        dir.complete(&["nsring", "netns", "exec", "dock"], &env),
        set(&[&format!("docker:{shared}"), &format!("docker:{web}"),]),
        "a word that starts like a runtime's prefix gets the runtime's containers"
    );

    // A stopped container: one line, exit 2.
    docker.stop(&web);
    fails(
        &env,
        &["count", "-i", &format!("docker:{web}/eth0")],
        2,
        "is not running",
    );
}
