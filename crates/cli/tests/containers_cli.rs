//! Containers by name, end to end, with real Podman containers (root): capture in
//! `podman:NAME/eth0` and by bare name with exact counts, `netns exec` into a container, a
//! container stopped during a capture (ends with its final statistics), and the one-line errors for bad names.
//!
//! Starting containers is slow, so one lab serves every step (one test function); the lab's
//! guard removes the containers, the network, the image and restores `ip_forward`.

use std::os::unix::net::UnixListener;
use std::time::Duration;

use nsring_netns::lab::podman::PodmanLab;
use nsring_netns::{NetNs, NsSpec};

mod common;

use common::containers::{
    count, exact_count, exact_count_with, fails, final_json, finish, send, with,
};

/// The name Podman (its network backend) gives the namespace of process `pid` in
/// /run/netns (`netns-<uuid>`).
fn netns_name(pid: u32) -> String {
    let names = nsring_netns::identify(pid).unwrap();
    names
        .into_iter()
        .find(|n| n.starts_with("netns-"))
        .expect("Podman names its namespaces netns-<uuid>")
}

/// Deletes a namespace name on drop.
struct NameGuard(String);

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = nsring_netns::del(&self.0);
    }
}

#[test]
fn podman_containers_by_name() {
    let mut lab = PodmanLab::new("cli");
    let id = lab.run("web1");
    let name = lab.name("web1");
    let pid = lab.pid("web1");
    let env = lab.env();

    // The library opens the container's namespace: the same as its main process's.
    let ns = NetNs::open(&format!("podman:{name}").parse().unwrap()).unwrap();
    let by_pid = NetNs::open(&NsSpec::Pid(pid)).unwrap();
    assert!(ns.same_as(&by_pid));
    assert_eq!(ns.container().unwrap().id, id);
    let plain = NetNs::open(&NsSpec::Plain(name.clone())).unwrap();
    assert!(plain.same_as(&by_pid));
    assert_eq!(plain.spec().to_string(), format!("podman:{name}"));

    // Exact counts by runtime:name, by bare name and by ID prefix.
    exact_count(&env, &ns, &format!("podman:{name}/eth0"), 300);
    exact_count(&env, &ns, &format!("{name}/eth0"), 200);
    exact_count(&env, &ns, &format!("podman:{}/eth0", &id[..12]), 100);

    // ls names the container: by runtime:name, by PID (its cgroup, then Podman for the
    // name), in every namespace's heading and JSON line.
    let ls = common::json_lines(&common::containers::ok(
        &env,
        &["ls", "--netns", &format!("podman:{name}"), "--json"],
    ));
    assert_eq!(ls.len(), 1);
    let c = &ls[0]["container"];
    assert_eq!(
        (&c["runtime"], &c["name"], &c["id"], &c["source"]),
        (
            &serde_json::json!("podman"),
            &serde_json::json!(name),
            &serde_json::json!(id),
            &serde_json::json!("api")
        ),
        "{ls:?}"
    );
    let text = common::containers::ok(&env, &["ls", "--netns", &format!("pid:{pid}")]);
    let want = format!("podman:{name} ({})", &id[..12]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Container") && l.ends_with(&want)),
        "{text}"
    );
    let all = common::containers::ok(&env, &["ls", "dev", "--all-netns"]);
    assert!(
        all.lines().any(|l| l.starts_with("== namespace ")
            && l.contains(&format!("(inode {}), container {want}", ns.inode()))),
        "{all}"
    );
    let all = common::json_lines(&common::containers::ok(
        &env,
        &["ls", "sockets", "--all-netns", "--json"],
    ));
    let mine: Vec<_> = all
        .iter()
        .filter(|v| v["namespace"]["inode"] == ns.inode())
        .collect();
    assert_eq!(mine.len(), 1, "{all:?}");
    assert_eq!(mine[0]["container"]["name"], name.as_str());
    // a namespace of no container has no container field
    assert!(
        all.iter()
            .filter(|v| v["namespace"]["initial"] == true)
            .all(|v| v.get("container").is_none()),
        "{all:?}"
    );

    // count and dump name the container in the banner, the JSON lines and the pcapng
    // interface description, however the namespace was named.
    let want_text = format!("container podman:{name} ({})", &id[..12]);
    for target in [
        format!("podman:{name}/eth0"),
        format!("pid:{pid}/eth0"),
        format!("{}/eth0", netns_name(pid)),
    ] {
        // the kernel backend (the default for one interface) and the ring
        for more in [&[][..], &["--backend", "ring"]] {
            let (out, err) = exact_count_with(&env, &ns, &target, 20, more);
            assert!(err.contains(&want_text), "{target} {more:?}: {err}");
            let c = &final_json(&out)["container"];
            assert_eq!(
                (&c["runtime"], &c["name"], &c["id"]),
                (
                    &serde_json::json!("podman"),
                    &serde_json::json!(name),
                    &serde_json::json!(id)
                ),
                "{target} {more:?}: {out}"
            );
        }
        let (err, rows) = common::containers::dump_described(&env, &ns, &target, 10);
        assert!(err.contains(&want_text), "{target}: {err}");
        let ns_label = target.rsplit_once('/').unwrap().0;
        let want = format!("eth0\tnetns {ns_label} (inode {}), {want_text}", ns.inode());
        assert!(rows.iter().all(|r| *r == want), "{target}: {rows:?}");
    }
    // several targets: every open/close/final line carries it
    let r = count(
        &env,
        &[
            "-i",
            &format!("podman:{name}/eth0,podman:{name}/lo"),
            "-e",
            "out",
            "-f",
            "udp port 9",
            "--duration",
            "1",
            "--json",
        ],
    );
    let (code, out, err) = finish(r, Duration::from_secs(30));
    assert_eq!(code, 0, "{err}");
    let lines = common::json_lines(&out);
    let per_target: Vec<_> = lines
        .iter()
        .filter(|l| ["open", "final"].contains(&l["type"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(per_target.len(), 4, "{out}");
    for l in per_target {
        assert_eq!(l["container"]["name"], name.as_str(), "{l}");
    }

    // netns exec enters the container's namespace only.
    let out = common::containers::ok(
        &env,
        &[
            "netns",
            "exec",
            &format!("podman:{name}"),
            "readlink",
            "/proc/self/ns/net",
        ],
    );
    assert_eq!(out.trim(), format!("net:[{}]", ns.inode()));

    // netns attach gives the container's namespace a name (any NS spelling works).
    let attached = lab.name("att");
    let guard = NameGuard(attached.clone());
    common::containers::ok(
        &env,
        &["netns", "attach", &attached, &format!("podman:{name}")],
    );
    // (Podman's netavark names it too: netns-<uuid>.)
    let names = common::containers::ok(&env, &["netns", "identify", &pid.to_string()]);
    assert!(names.lines().any(|l| l == attached), "{names}");
    assert!(NetNs::open_str(&attached).unwrap().same_as(&ns));
    drop(guard);
    fails(
        &env,
        &["netns", "attach", &attached, &format!("podman:{name}-none")],
        2,
        "no podman container",
    );
    assert!(NetNs::open_str(&format!("name:{attached}")).is_err());

    // Bad names: one line each, the right exit code.
    let missing = format!("{}-missing", lab.name("x"));
    fails(
        &env,
        &["count", "-i", &format!("podman:{missing}/eth0")],
        2,
        "no podman container",
    );
    fails(
        &env,
        &["count", "-i", &format!("{missing}/eth0")],
        2,
        "does not exist",
    );
    fails(
        &env,
        &["count", "-i", "nsrtfoo:bar/eth0"],
        2,
        "unknown prefix 'nsrtfoo:'",
    );
    fails(
        &env,
        &["count", "-i", "podman:a b/eth0"],
        2,
        "not a container name or ID",
    );
    let dir = std::env::temp_dir().join(format!("nsrt-{}-sock", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let absent = format!("unix://{}/absent.sock", dir.display());
    fails(
        &with(&env, &[("DOCKER_HOST", &absent)]),
        &["count", "-i", "docker:web1/eth0"],
        2,
        "docker is not available here",
    );
    fails(
        &with(&env, &[("DOCKER_HOST", "tcp://198.18.0.1:2375")]),
        &["count", "-i", "docker:web1/eth0"],
        2,
        "unix sockets only",
    );
    let hang = dir.join("hang.sock");
    let _listener = UnixListener::bind(&hang).unwrap();
    let hang_url = format!("unix://{}", hang.display());
    fails(
        &with(&env, &[("DOCKER_HOST", &hang_url)]),
        &["count", "-i", "docker:web1/eth0"],
        1,
        "did not answer within 5 s",
    );
    // A socket file nothing listens on any more: refused, exit 1, says so.
    let dead = dir.join("dead.sock");
    drop(UnixListener::bind(&dead).unwrap());
    let dead_url = format!("unix://{}", dead.display());
    fails(
        &with(&env, &[("DOCKER_HOST", &dead_url)]),
        &["count", "-i", "docker:web1/eth0"],
        1,
        &format!("cannot connect to docker at {dead_url} (nothing listens there"),
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // A container stopped during a capture ends that capture cleanly.
    let r = count(
        &env,
        &[
            "-i",
            &format!("podman:{name}/eth0"),
            "-e",
            "out",
            "-f",
            "udp port 9",
            "--json",
        ],
    );
    send(&ns, 50, 100);
    drop((ns, plain, by_pid));
    // Wait until the 50 frames are counted before stopping.
    std::thread::sleep(Duration::from_millis(500));
    lab.stop("web1");
    let (code, out, err) = finish(r, Duration::from_secs(30));
    // The capture ends with every packet counted and says why (exit 1, as for any
    // interface that goes away).
    assert_eq!(code, 1, "{err}");
    assert_eq!(final_json(&out)["packets"], 50, "{out}");
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
    fails(
        &env,
        &["count", "-i", &format!("podman:{name}/eth0")],
        2,
        "is not running",
    );
}
