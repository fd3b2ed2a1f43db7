//! Containers by name, end to end, with real Podman containers (root): capture in
//! `podman:NAME/eth0` and by bare name with exact counts, `netns exec` into a container, a
//! container stopped during a capture (ends with its final statistics), and the one-line errors for bad names.
//!
//! Starting containers is slow, so one lab serves every step (one test function); the lab's
//! guard removes the containers, the network, the image and restores `ip_forward`.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use nsring_capture::Sender;
use nsring_netns::lab::podman::PodmanLab;
use nsring_netns::{NetNs, NsSpec};

mod common;

use common::{NSRING, Running, start};

const SRC: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x01];
const DST: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x02];

/// `n` UDP frames to port 9, `len` bytes each, out of `eth0` of `ns`.
fn send(ns: &NetNs, n: usize, len: usize) {
    let payload = vec![0x5a; len - 14 - 20 - 8];
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, 9)
        .write(&mut f, &payload)
        .unwrap();
    let s = Sender::open(ns, "eth0").unwrap();
    for _ in 0..n {
        s.send(&f).unwrap();
    }
}

fn count(lab: &PodmanLab, args: &[&str]) -> Running {
    let mut cmd = Command::new(NSRING);
    cmd.envs(lab.env()).arg("count").args(args);
    start(cmd, "capturing on", Stdio::piped())
}

/// Waits (bounded) for the capturer to exit; returns (status, stdout, stderr).
fn finish(mut r: Running, within: Duration) -> (i32, String, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            let mut out = String::new();
            r.child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let err: Vec<String> = r.lines.try_iter().collect();
            return (st.code().unwrap_or(-1), out, err.join("\n"));
        }
        assert!(Instant::now() < deadline, "capturer did not finish in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn final_json(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"final\""))
        .unwrap_or_else(|| panic!("no final JSON in {out:?}"));
    common::json_lines(line).remove(0)
}

/// Counts exactly `n` frames sent out of the container's eth0, captured through `target`.
/// Outgoing only: Podman's bridge ports are in hairpin mode, so a flooded frame also comes
/// back in on eth0.
fn exact_count(lab: &PodmanLab, ns: &NetNs, target: &str, n: usize) {
    let r = count(
        lab,
        &[
            "-i",
            target,
            "-e",
            "out",
            "-f",
            "udp port 9",
            "-N",
            &n.to_string(),
            "--json",
        ],
    );
    send(ns, n, 200);
    let (code, out, err) = finish(r, Duration::from_secs(30));
    assert_eq!(code, 0, "{target}: {err}");
    let v = final_json(&out);
    assert_eq!(v["packets"], n as u64, "{target}: {out}");
    assert_eq!(v["bytes"], (n * 200) as u64, "{target}: {out}");
}

struct Fail {
    code: i32,
    stderr: String,
}

fn nsring(env: &[(&str, &str)], lab: &PodmanLab, args: &[&str]) -> Fail {
    let out = Command::new(NSRING)
        .envs(lab.env())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    Fail {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn fails(env: &[(&str, &str)], lab: &PodmanLab, args: &[&str], code: i32, what: &str) {
    let r = nsring(env, lab, args);
    assert_eq!(r.code, code, "nsring {args:?}: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {:?}", r.stderr);
    assert!(lines[0].starts_with("nsring: error: "), "{}", lines[0]);
    assert!(
        lines[0].contains(what),
        "{args:?}: {} lacks {what:?}",
        lines[0]
    );
}

#[test]
fn podman_containers_by_name() {
    let mut lab = PodmanLab::new("cli");
    let id = lab.run("web1");
    let name = lab.name("web1");
    let pid = lab.pid("web1");

    // The library opens the container's namespace: the same as its main process's.
    let ns = NetNs::open(&format!("podman:{name}").parse().unwrap()).unwrap();
    let by_pid = NetNs::open(&NsSpec::Pid(pid)).unwrap();
    assert!(ns.same_as(&by_pid));
    assert_eq!(ns.container().unwrap().id, id);
    let plain = NetNs::open(&NsSpec::Plain(name.clone())).unwrap();
    assert!(plain.same_as(&by_pid));
    assert_eq!(plain.spec().to_string(), format!("podman:{name}"));

    // Exact counts by runtime:name, by bare name and by ID prefix.
    exact_count(&lab, &ns, &format!("podman:{name}/eth0"), 300);
    exact_count(&lab, &ns, &format!("{name}/eth0"), 200);
    exact_count(&lab, &ns, &format!("podman:{}/eth0", &id[..12]), 100);

    // netns exec enters the container's namespace only.
    let out = Command::new(NSRING)
        .envs(lab.env())
        .args([
            "netns",
            "exec",
            &format!("podman:{name}"),
            "readlink",
            "/proc/self/ns/net",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{}]", ns.inode())
    );

    // Bad names: one line each, the right exit code.
    let missing = format!("{}-missing", lab.name("x"));
    fails(
        &[],
        &lab,
        &["count", "-i", &format!("podman:{missing}/eth0")],
        2,
        "no podman container",
    );
    fails(
        &[],
        &lab,
        &["count", "-i", &format!("{missing}/eth0")],
        2,
        "does not exist",
    );
    fails(
        &[],
        &lab,
        &["count", "-i", "nsrtfoo:bar/eth0"],
        2,
        "unknown prefix 'nsrtfoo:'",
    );
    fails(
        &[],
        &lab,
        &["count", "-i", "podman:a b/eth0"],
        2,
        "not a container name or ID",
    );
    let dir = std::env::temp_dir().join(format!("nsrt-{}-sock", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let absent = format!("unix://{}/absent.sock", dir.display());
    fails(
        &[("DOCKER_HOST", &absent)],
        &lab,
        &["count", "-i", "docker:web1/eth0"],
        2,
        "docker is not available here",
    );
    fails(
        &[("DOCKER_HOST", "tcp://198.18.0.1:2375")],
        &lab,
        &["count", "-i", "docker:web1/eth0"],
        2,
        "unix sockets only",
    );
    let hang = dir.join("hang.sock");
    let _listener = UnixListener::bind(&hang).unwrap();
    let hang_url = format!("unix://{}", hang.display());
    fails(
        &[("DOCKER_HOST", &hang_url)],
        &lab,
        &["count", "-i", "docker:web1/eth0"],
        1,
        "did not answer within 5 s",
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // A container stopped during a capture ends that capture cleanly.
    let r = count(
        &lab,
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
        &[],
        &lab,
        &["count", "-i", &format!("podman:{name}/eth0")],
        2,
        "is not running",
    );
}
