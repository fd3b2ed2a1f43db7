//! `nsring count` end to end: real frames through real veth pairs in lab namespaces (root).
//!
//! Each test builds its own lab (removed on drop, also on panic), starts the built binary,
//! waits until it says it is capturing, sends a known set of frames with `nsring_capture::Sender`, and
//! checks the exact counts and bytes that count reports.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use nsring_capture::Sender;
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;

mod common;

use common::{NSRING, Running, pair, start};
const SRC: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x01];
const DST: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x02];

fn udp4(len: usize, dport: u16) -> Vec<u8> {
    let payload = vec![0x5a; len - 14 - 20 - 8];
    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

fn udp6(len: usize, dport: u16) -> Vec<u8> {
    let payload = vec![0x6a; len - 14 - 40 - 8];
    let b = PacketBuilder::ethernet2(SRC, DST)
        .ipv6(
            [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(40000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

fn vlan_udp4(len: usize, vid: u16, dport: u16) -> Vec<u8> {
    let payload = vec![0x7a; len - 18 - 20 - 8];
    let b = PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport);
    let mut f = Vec::new();
    b.write(&mut f, &payload).unwrap();
    f
}

fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2]);
    f.resize(60, 0);
    f
}

/// The mixed set: sizes 60..1514, IPv4/IPv6/ARP, two VLAN 42 frames and one VLAN 7 frame.
fn frames() -> Vec<Vec<u8>> {
    vec![
        udp4(60, 9),
        udp4(128, 9),
        udp4(1514, 9),
        udp4(1200, 53),
        udp4(400, 10),
        udp6(86, 9),
        udp6(1100, 9),
        arp(),
        arp(),
        vlan_udp4(64, 42, 9),
        vlan_udp4(1200, 42, 53),
        vlan_udp4(100, 7, 9),
    ]
}

fn send(ns: &NetNs, iface: &str, frames: &[Vec<u8>]) {
    let s = Sender::open(ns, iface).unwrap();
    for f in frames {
        s.send(f).unwrap();
    }
}

fn count(args: &[&str]) -> Running {
    let mut cmd = Command::new(NSRING);
    cmd.arg("count").args(args);
    start(cmd, "capturing on", Stdio::piped())
}

/// Waits for the capturer to exit by itself (bounded) and returns (status, stdout, stderr).
fn finish(mut r: Running, within: Duration) -> (i32, String, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read;
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

fn interrupt(r: &Running) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

fn final_json(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"final\""))
        .unwrap_or_else(|| panic!("no final JSON in {out:?}"));
    common::json_lines(line).remove(0)
}

fn run(args: &[&str]) -> Output {
    Command::new(NSRING).args(args).output().unwrap()
}

#[test]
fn counts_exact_packets_and_bytes() {
    let (lab, a, _b) = pair("cnt_exact");
    let target = format!("{}/eth1", lab.ns_name("b"));
    let set = frames();
    let r = count(&["-i", &target, "-N", &set.len().to_string(), "--json"]);
    send(&a, "eth1", &set);
    let (code, out, err) = finish(r, Duration::from_secs(10));
    assert_eq!(code, 0, "{err}");
    let v = final_json(&out);
    assert_eq!(v["packets"], set.len() as u64, "{out}");
    let bytes: usize = set.iter().map(Vec::len).sum();
    assert_eq!(
        v["bytes"], bytes as u64,
        "VLAN tags count as on the wire: {out}"
    );
    assert_eq!(v["drops"], 0);
}

#[test]
fn counts_inside_netns_exec_unchanged() {
    let (lab, a, _b) = pair("cnt_exec");
    let set = frames();
    let mut cmd = Command::new(NSRING);
    cmd.args([
        "netns",
        "exec",
        &lab.ns_name("b"),
        NSRING,
        "count",
        "-i",
        "eth1",
    ])
    .args(["-N", &set.len().to_string(), "--json"]);
    let r = start(cmd, "capturing on", Stdio::piped());
    send(&a, "eth1", &set);
    let (code, out, err) = finish(r, Duration::from_secs(10));
    assert_eq!(code, 0, "{err}");
    assert_eq!(final_json(&out)["packets"], set.len() as u64);
}

/// Live tcpdump in the namespace, with the same filter, on the same frames.
fn tcpdump(ns: &str, filter: &str) -> Running {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        ns,
        "tcpdump",
        "--immediate-mode",
        // In immediate mode libpcap uses a TPACKET_V2 ring of snaplen-sized frames: with the
        // default 262144-byte snaplen its 2 MiB buffer holds 8 frames and drops a burst.
        "-s",
        "2048",
        "-B",
        "16384",
        "-n",
        "-i",
        "eth1",
        "-w",
        "/dev/null",
    ])
    .arg(filter);
    start(cmd, "listening on", Stdio::piped())
}

fn tcpdump_captured(err: &str) -> u64 {
    err.lines()
        .find(|l| l.contains("packets captured"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("tcpdump said: {err}"))
}

#[test]
fn filters_count_what_live_tcpdump_counts() {
    let (lab, a, _b) = pair("cnt_filter");
    let b_name = lab.ns_name("b");
    let target = format!("{b_name}/eth1");
    let set = frames();
    // What the frames above contain, per filter (checked against tcpdump too). A live
    // filter sees VLAN frames with the tag taken out, so 'udp port 9' matches the two
    // tagged port-9 frames as well: 5 untagged + 2 tagged.
    for (filter, expected) in [
        ("udp port 9", 7),
        ("vlan", 3),
        ("vlan 42 and udp", 2),
        ("not arp", 10),
        ("greater 1000", 4),
    ] {
        let ours = count(&["-i", &target, "-f", filter, "--json", "--duration", "30"]);
        let theirs = tcpdump(&b_name, filter);
        send(&a, "eth1", &set);
        std::thread::sleep(Duration::from_millis(400));
        interrupt(&ours);
        interrupt(&theirs);
        let (code, out, err) = finish(ours, Duration::from_secs(10));
        assert_eq!(code, 0, "{err}");
        let (_, _, terr) = finish(theirs, Duration::from_secs(10));
        let n = final_json(&out)["packets"].as_u64().unwrap();
        assert_eq!(
            n,
            tcpdump_captured(&terr),
            "filter '{filter}': nsring vs live tcpdump"
        );
        assert_eq!(n, expected, "filter '{filter}'");
    }
}

#[test]
fn direction_in_and_out() {
    let (lab, a, _b) = pair("cnt_dir");
    let target = format!("{}/eth1", lab.ns_name("a"));
    let set = frames();
    // On a's own eth1, the frames a sends are outgoing.
    let rx = count(&["-i", &target, "-e", "in", "--json", "--duration", "30"]);
    let tx = count(&["-i", &target, "-e", "out", "--json", "--duration", "30"]);
    let both = count(&["-i", &target, "-e", "0", "--json", "--duration", "30"]);
    send(&a, "eth1", &set);
    std::thread::sleep(Duration::from_millis(400));
    for r in [&rx, &tx, &both] {
        interrupt(r);
    }
    let n = |r| {
        final_json(&finish(r, Duration::from_secs(10)).1)["packets"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        n(rx),
        0,
        "rx-only saw the interface's own transmitted frames"
    );
    assert_eq!(n(tx), set.len() as u64);
    assert_eq!(n(both), set.len() as u64);
}

#[test]
fn namespaces_with_the_same_interface_name_are_told_apart() {
    let mut lab = Lab::new("cnt_ns");
    let a = lab.netns("a");
    lab.netns("b");
    lab.netns("c");
    lab.netns("d");
    lab.veth("a", "eth1", "b", "eth1");
    lab.veth("c", "eth1", "d", "eth1");
    let set = frames();
    let in_b = count(&[
        "-i",
        &format!("{}/eth1", lab.ns_name("b")),
        "--json",
        "--duration",
        "30",
    ]);
    let in_d = count(&[
        "--netns",
        &lab.ns_name("d"),
        "-i",
        "eth1",
        "--json",
        "--duration",
        "30",
    ]);
    send(&a, "eth1", &set);
    std::thread::sleep(Duration::from_millis(400));
    interrupt(&in_b);
    interrupt(&in_d);
    let n = |r| {
        final_json(&finish(r, Duration::from_secs(10)).1)["packets"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(n(in_b), set.len() as u64);
    assert_eq!(n(in_d), 0, "d's eth1 saw b's traffic");
}

#[test]
fn a_cluster_receives_every_packet_exactly_once() {
    let (lab, a, _b) = pair("cnt_cluster");
    let target = format!("{}/eth1", lab.ns_name("b"));
    let set: Vec<Vec<u8>> = (0..200)
        .map(|i| udp4(60 + i % 900, 9 + (i % 7) as u16))
        .collect();
    for mode in ["rr", "flow"] {
        let m1 = count(&[
            "-i",
            &target,
            "-c",
            "77",
            "--cluster-type",
            mode,
            "--json",
            "--duration",
            "30",
        ]);
        let m2 = count(&[
            "-i",
            &target,
            "-c",
            "77",
            "--cluster-type",
            mode,
            "--json",
            "--duration",
            "30",
        ]);
        send(&a, "eth1", &set);
        std::thread::sleep(Duration::from_millis(400));
        interrupt(&m1);
        interrupt(&m2);
        let n = |r| {
            final_json(&finish(r, Duration::from_secs(10)).1)["packets"]
                .as_u64()
                .unwrap()
        };
        let (x, y) = (n(m1), n(m2));
        assert_eq!(x + y, set.len() as u64, "{mode}: {x} + {y}");
        if mode == "rr" {
            assert!(x > 0 && y > 0, "round robin left a member empty: {x} + {y}");
        }
    }
}

#[test]
fn ctrl_c_prints_the_final_block_and_exits_0() {
    let (lab, a, _b) = pair("cnt_sigint");
    let r = count(&["-i", &format!("{}/eth1", lab.ns_name("b"))]);
    let set = frames();
    send(&a, "eth1", &set);
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&r);
    let (code, _out, err) = finish(r, Duration::from_secs(10));
    assert_eq!(code, 0, "{err}");
    let expected = format!("[{} pkts rcvd]", set.len());
    assert!(
        err.contains("Absolute Stats: [12 pkts total][0 pkts dropped][0.0% dropped]"),
        "{err}"
    );
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn bad_input_is_one_line_with_the_right_exit_code() {
    let (lab, _a, _b) = pair("cnt_bad");
    let b = lab.ns_name("b");
    // Namespaces this test could have left (other tests on the machine come and go).
    let ours = || -> Vec<String> {
        let own = b.trim_end_matches("-b").to_owned(); // this lab's names
        let mut v: Vec<String> = std::fs::read_dir("/run/netns")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&own) || n.starts_with("nsrt-missing"))
            .collect();
        v.sort();
        v
    };
    let before = ours();
    let t = format!("{b}/eth1");
    let t9 = format!("{b}/eth9");
    for (args, code, needle) in [
        (vec!["-i", &t9], 2, "no interface 'eth9'"),
        (vec!["-i", "nsrt-missing-ns/eth1"], 2, "does not exist"),
        (vec!["-i", &t, "-f", "udp poort 9"], 2, "invalid filter"),
        (vec!["-i", &t, "-s", "0"], 2, "snaplen"),
        (vec!["-i", &t, "-e", "sideways"], 2, "sideways"),
        (vec!["-i", &t, "--netns", &b], 2, "give the namespace once"),
        (
            vec!["-i", "averyveryverylongname"],
            2,
            "longer than 15 bytes",
        ),
        (vec!["-i", &t, "--block-kib", "3"], 2, "power of two"),
        (vec!["-i", &t, "--cluster-type", "rr"], 2, "cluster"),
    ] {
        let mut argv = vec!["count"];
        argv.extend(args);
        let out = run(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{argv:?}: {err}");
        assert!(err.contains(needle), "{argv:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{argv:?}: {err}");
    }
    assert_eq!(ours(), before);
}
