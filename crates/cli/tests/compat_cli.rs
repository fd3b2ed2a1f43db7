//! PF_RING's command names (root): `pfcount`, `pfsend` and `pfdump` as links to nsring take
//! PF_RING's flags and print PF_RING's output, with exact counts through real veths;
//! `ip netns exec NS pfsend -i eth1 -n 1000 -r 1` runs unchanged.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nsring_capture::{Capture, CaptureConfig, Direction, RingGeometry, Sender};
use nsring_netns::NetNs;

mod common;

use common::{NSRING, Running, pair, start};

/// A directory of links named like PF_RING's tools, removed on drop.
struct Links(PathBuf);

impl Links {
    fn new(tag: &str) -> Links {
        let dir = std::env::temp_dir().join(format!("nsrt-{}-pf{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["pfcount", "pfsend", "pfdump"] {
            std::os::unix::fs::symlink(NSRING, dir.join(name)).unwrap();
        }
        Links(dir)
    }

    fn bin(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    fn run(&self, name: &str, args: &[&str]) -> Output {
        Command::new(self.bin(name))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Frames arriving at `ns`/eth1, counted.
fn arrivals(ns: &NetNs) -> Capture {
    let cfg = CaptureConfig::new("eth1")
        .direction(Direction::In)
        .register(false)
        .ring(RingGeometry {
            block_timeout_ms: 5,
            ..RingGeometry::default()
        });
    Capture::open(ns, &cfg).unwrap()
}

fn count_until(cap: &mut Capture, want: u64, quiet: Duration) -> u64 {
    let (mut n, mut last) = (0u64, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !(n >= want && last.elapsed() >= quiet) {
        if let Some(b) = cap.next_block(Some(Duration::from_millis(20))).unwrap() {
            n += (&b).into_iter().count() as u64;
            last = Instant::now();
        }
    }
    n
}

/// A UDP/IPv4 frame of `len` bytes (198.18.0.1 -> 198.18.0.2, port 9), or an ARP-typed one.
fn frame(udp: bool, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0x6e, 0x73, 0x72, 0x74, 0x01]);
    if udp {
        f.extend_from_slice(&[0x08, 0x00]);
        let ip_len = (len - 14) as u16;
        // the filter looks at the protocol, not the checksum
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
        ];
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0, 9, 0, 9]);
        f.extend_from_slice(&(ip_len - 20).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    } else {
        f.extend_from_slice(&[0x88, 0xb5]);
    }
    f.resize(len, 0);
    f
}

#[test]
fn pfsend_sends_exactly_n_and_says_so_as_pfsend_does() {
    let (lab, _a, b) = pair("pfsend");
    let links = Links::new("send");
    let na = lab.ns_name("a");
    let mut at_b = arrivals(&b);
    // as a PF_RING user types it, inside the namespace
    let o = Command::new("ip")
        .args(["netns", "exec", &na, &links.bin("pfsend")])
        .args(["-i", "eth1", "-n", "1000", "-r", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("Sending packets on eth1\n"), "{out}");
    assert!(
        out.contains("Rate set to 1.00 Gbit/s, 64-byte packets, 1488095.24 pps"),
        "{out}"
    );
    assert!(out.contains("Sent 1000 packets\n"), "{out}");
    assert_eq!(
        count_until(&mut at_b, 1000, Duration::from_millis(500)),
        1000
    );

    // from outside, a namespaced target and a length
    let o = links.run(
        "pfsend",
        &["-i", &format!("{na}/eth1"), "-n", "25", "-l", "200"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Sent 25 packets\n"));
    assert_eq!(count_until(&mut at_b, 25, Duration::from_millis(500)), 25);
}

#[test]
fn pfcount_counts_what_its_filter_and_direction_let_through() {
    let (lab, a, _b) = pair("pfcount");
    let links = Links::new("count");
    let nb = lab.ns_name("b");
    let mut cmd = Command::new(links.bin("pfcount"));
    cmd.args(["-i", &format!("{nb}/eth1"), "-e", "1", "-f", "udp"]);
    let r = start(cmd, "capturing on", Stdio::null());
    let s = Sender::open(&a, "eth1").unwrap();
    for i in 0..50 {
        s.send(&frame(i % 5 != 0, 100)).unwrap(); // 40 UDP, 10 not
    }
    std::thread::sleep(Duration::from_millis(700));
    let err = stop(r);
    // pfcount's final block
    assert!(
        err.contains("Absolute Stats: [40 pkts total][0 pkts dropped]"),
        "{err}"
    );
    assert!(err.contains("[40 pkts rcvd][4'000 bytes rcvd]"), "{err}");
}

#[test]
fn pfdump_writes_a_pcap_and_prints_its_lines() {
    let (lab, a, _b) = pair("pfdump");
    let links = Links::new("dump");
    let nb = lab.ns_name("b");
    let file = links.0.join("out.pcap");
    let mut child = Command::new(links.bin("pfdump"))
        .args([
            "-i",
            &format!("{nb}/eth1"),
            "-w",
            file.to_str().unwrap(),
            "-t",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_record(&nb, child.id());
    let s = Sender::open(&a, "eth1").unwrap();
    for _ in 0..40 {
        s.send(&frame(false, 300)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = wait_output(&mut child);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{:?} {out} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.starts_with(&format!("Capturing from {nb}/eth1 [")),
        "{out}"
    );
    let last = out.lines().last().unwrap();
    // 40 packets of 300 bytes, pfdump adding 24 per packet
    assert!(last.ends_with("| pkts 40 bytes 12960 drop 0"), "{out}");
    assert!(
        out.lines().filter(|l| l.contains(" sec pkts ")).count() >= 2,
        "{out}"
    );
    // the file: classic pcap, microseconds, snaplen 128, 40 records cut to 128 bytes
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 128);
    assert_eq!(bytes.len(), 24 + 40 * (16 + 128));
    let tshark = Command::new("tshark")
        .args([
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.len",
        ])
        .output()
        .unwrap();
    let lens = String::from_utf8_lossy(&tshark.stdout);
    assert_eq!(lens.lines().filter(|l| *l == "300").count(), 40, "{lens}");
}

#[test]
fn pf_tools_refuse_what_nsring_cannot_do_and_explain_themselves() {
    let links = Links::new("bad");
    for (tool, args, what) in [
        ("pfcount", vec![], "give the device with -i"),
        ("pfcount", vec!["-i", "lo", "-e", "5"], "-e 5"),
        ("pfcount", vec!["-i", "lo", "-x", "strings.txt"], "-x"),
        ("pfcount", vec!["-i", "lo", "-Y"], "pfcount -h"),
        ("pfsend", vec!["-i", "lo", "-d"], "daemon"),
        ("pfsend", vec!["-n", "5"], "give the device with -i"),
        ("pfdump", vec!["-i", "lo"], "-w FILE"),
    ] {
        let o = links.run(tool, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{tool} {args:?}: {err}");
        assert!(
            err.starts_with(&format!("{tool}: error: ")),
            "{tool} {args:?}: {err}"
        );
        assert!(err.contains(what), "{tool} {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{tool} {args:?}: {err}");
    }
    for tool in ["pfcount", "pfsend", "pfdump"] {
        let o = links.run(tool, &["-h"]);
        assert!(o.status.success());
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.starts_with(&format!("{tool} (nsring)")), "{out}");
        assert!(out.contains("-i <device>"), "{out}");
    }
}

/// SIGINT, then the stderr lines the process printed, once it has exited 0.
fn stop(mut r: Running) -> String {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.pid() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(100));
    let lines: Vec<String> = r.lines.try_iter().collect();
    assert!(status.success(), "{status}: {lines:?}");
    lines.join("\n")
}

fn wait_output(child: &mut std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// Waits until process `pid` has a capture record in namespace `ns` (its ring is bound by
/// then; the kernel lists the socket, with its owner, from the moment it is created).
fn wait_for_record(ns: &str, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = Command::new(NSRING)
            .args(["ls", "sockets", "--netns", ns, "--json"])
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&o.stdout).lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["sockets"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["record"]["header"]["pid"] == pid))
        });
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "no record of {pid} in {ns}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
