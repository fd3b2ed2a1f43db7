//! `nsring demo` runs the seed's walkthrough end to end and leaves nothing behind, also when
//! interrupted (root).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NSRING: &str = env!("CARGO_BIN_EXE_nsring");

/// Lab leftovers of the demo run with this PID: namespaces and initial-namespace links.
fn leftovers(pid: u32) -> Vec<String> {
    let ns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("nsrt-demo{pid}-")))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let links = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| *n == format!("nsrt{pid:x}i1"));
    ns.into_iter().chain(links).collect()
}

#[test]
fn demo_walks_the_seed_and_cleans_up() {
    let child = Command::new(NSRING)
        .args(["demo", "--packets", "3000", "--pps", "20000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "ip netns add ns0",
        "is gone from the host's list and in ns0's",
        "Sent 3000 packets (180000 bytes)",
        "Absolute Stats: [3'000 pkts total][0 pkts dropped][0.0% dropped]",
        "[3'000 pkts rcvd][180'000 bytes rcvd]",
        "is in ns0's view and not in the host's",
        "destroyed (veth)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn an_interrupted_demo_removes_its_lab() {
    let child = Command::new(NSRING)
        .args(["demo", "--packets", "200000", "--pps", "20000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the lab exists, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers(pid).is_empty() {
        assert!(Instant::now() < deadline, "the demo built no lab");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
}
