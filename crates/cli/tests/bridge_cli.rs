//! `nsring bridge` end to end (root): real frames through real veths. Lab: s/eth1 — b/ea and
//! b/eb — d/eth1; the bridge joins b/ea and b/eb. Every frame s sends arrives at d byte for
//! byte (VLAN tags included) and none goes back; with --both each direction counts exactly
//! what entered it (the bridge never reads its own frames back); a real TCP transfer
//! through it completes, with GSO frames larger than the MTU forwarded; bad input is refused.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nsring_capture::{Capture, CaptureConfig, Direction, RingGeometry, Sender};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;
use serde_json::Value;

mod common;

use common::{NSRING, Running, start};

/// s —(eth1:ea)— b —(eb:eth1)— d.
fn lab(tag: &str) -> Lab {
    let mut lab = Lab::new(tag);
    for n in ["s", "b", "d"] {
        lab.netns(n);
    }
    lab.veth("s", "eth1", "b", "ea");
    lab.veth("b", "eb", "d", "eth1");
    lab
}

/// `nsring bridge -i b/ea -o b/eb --json EXTRA`, once it says it is bridging.
fn bridge(lab: &Lab, extra: &[&str]) -> Running {
    let nb = lab.ns_name("b");
    let mut cmd = Command::new(NSRING);
    cmd.args([
        "bridge",
        "-i",
        &format!("{nb}/ea"),
        "-o",
        &format!("{nb}/eb"),
    ])
    .args(["--duration", "120", "--json"])
    .args(extra);
    start(cmd, "bridging", Stdio::piped())
}

/// Stops the bridge with SIGINT; its final JSON line per direction, by "from" interface.
fn finish(mut r: Running) -> Vec<Value> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.pid() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "bridge did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let err: Vec<String> = r.lines.try_iter().collect();
    assert!(status.success(), "{status}: {err:?}");
    let mut out = String::new();
    r.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let finals: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "final")
        .collect();
    for f in &finals {
        assert_eq!(f["schema"], 1);
    }
    finals
}

fn final_from<'a>(finals: &'a [Value], iface: &str) -> &'a Value {
    finals
        .iter()
        .find(|f| f["from"].as_str().unwrap().ends_with(iface))
        .unwrap_or_else(|| panic!("no final line from {iface}: {finals:?}"))
}

/// Frame `i` of a test run: Ethernet, EtherType 0x88b5 (or 802.1Q VID 42 around it), 60 to
/// 1514 bytes, its index in the payload.
fn frame(i: u32, from: u8, tagged: bool) -> Vec<u8> {
    let mut f = vec![
        0x02,
        0x6e,
        0x73,
        0x72,
        0x74,
        0xff - from,
        0x02,
        0x6e,
        0x73,
        0x72,
        0x74,
        from,
    ];
    if tagged {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 42]);
    }
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&i.to_be_bytes());
    let len = 60 + (i as usize * 97) % (1514 - 60);
    f.resize(len.max(f.len()), (i % 251) as u8);
    f
}

fn send(ns: &NetNs, frames: &[Vec<u8>]) {
    let s = Sender::open(ns, "eth1").unwrap();
    for f in frames {
        s.send(f).unwrap();
    }
}

/// A capture of what arrives at `ns`/eth1 (tags put back), opened now.
struct Arrivals(Capture);

impl Arrivals {
    fn open(ns: &NetNs) -> Arrivals {
        let cfg = CaptureConfig::new("eth1")
            .direction(Direction::In)
            .register(false)
            .ring(RingGeometry {
                block_timeout_ms: 5,
                ..RingGeometry::default()
            });
        Arrivals(Capture::open(ns, &cfg).unwrap())
    }

    /// Frames until `want` have come and nothing more for `quiet`, or 15 s.
    fn collect(&mut self, want: usize, quiet: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = Instant::now();
        while Instant::now() < deadline {
            if got.len() >= want && last.elapsed() >= quiet {
                break;
            }
            if let Some(block) = self.0.next_block(Some(Duration::from_millis(20))).unwrap() {
                for f in &block {
                    let mut b = Vec::new();
                    f.copy_with_vlan(&mut b);
                    got.push(b);
                }
                last = Instant::now();
            }
        }
        got
    }
}

#[test]
fn one_way_every_frame_arrives_whole_and_none_comes_back() {
    let lab = lab("brone");
    let (s, d) = (lab.ns("s"), lab.ns("d"));
    let mut at_d = Arrivals::open(d);
    let mut at_s = Arrivals::open(s);
    let br = bridge(&lab, &[]);

    let from_s: Vec<Vec<u8>> = (0..200).map(|i| frame(i, 1, i % 10 == 3)).collect();
    send(s, &from_s);
    let got = at_d.collect(from_s.len(), Duration::from_millis(500));
    assert_eq!(got.len(), from_s.len(), "frames at d");
    assert!(got == from_s, "byte for byte, in order");

    // d's frames reach b/eb, but a one-way bridge does not carry them to s
    let from_d: Vec<Vec<u8>> = (0..50).map(|i| frame(i, 2, false)).collect();
    send(d, &from_d);
    let back = at_s.collect(0, Duration::from_millis(800));
    assert!(back.is_empty(), "{} frames came back to s", back.len());

    let finals = finish(br);
    assert_eq!(finals.len(), 1);
    let f = &finals[0];
    let bytes: usize = from_s.iter().map(Vec::len).sum();
    assert_eq!(f["received"], 200, "{f}");
    assert_eq!(f["forwarded"], 200, "{f}");
    assert_eq!(f["bytes"], bytes, "{f}");
    assert_eq!(f["vlan"], 20, "{f}");
    assert_eq!(f["send_errors"], 0, "{f}");
    assert_eq!(f["ring_drops"], 0, "{f}");
}

#[test]
fn both_ways_each_direction_counts_exactly_what_entered_it() {
    let lab = lab("brboth");
    let (s, d) = (lab.ns("s"), lab.ns("d"));
    let mut at_d = Arrivals::open(d);
    let mut at_s = Arrivals::open(s);
    let br = bridge(&lab, &["--both"]);

    let from_s: Vec<Vec<u8>> = (0..300).map(|i| frame(i, 1, false)).collect();
    let from_d: Vec<Vec<u8>> = (0..120).map(|i| frame(i, 2, i % 4 == 0)).collect();
    send(s, &from_s);
    send(d, &from_d);
    let got_d = at_d.collect(from_s.len(), Duration::from_millis(500));
    let got_s = at_s.collect(from_d.len(), Duration::from_millis(500));
    assert!(got_d == from_s, "s -> d: {} frames", got_d.len());
    assert!(got_s == from_d, "d -> s: {} frames", got_s.len());

    let finals = finish(br);
    assert_eq!(finals.len(), 2);
    let ab = final_from(&finals, "/ea");
    let ba = final_from(&finals, "/eb");
    // had a capture read its own direction's sends back, it would count them too
    assert_eq!(ab["received"], 300, "{ab}");
    assert_eq!(ab["forwarded"], 300, "{ab}");
    assert_eq!(ba["received"], 120, "{ba}");
    assert_eq!(ba["forwarded"], 120, "{ba}");
    assert_eq!(ba["vlan"], 30, "{ba}");
}

#[test]
fn tcp_crosses_the_bridge_with_gso_frames_larger_than_the_mtu() {
    let mut lab = lab("brtcp");
    lab.addr("s", "eth1", "198.18.13.1/24");
    lab.addr("d", "eth1", "198.18.13.2/24");
    let br = bridge(&lab, &["--both"]);

    const LEN: usize = 8 << 20;
    let listener: TcpListener = lab
        .ns("d")
        .run(|| TcpListener::bind("198.18.13.2:5001"))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut sum = 0u64;
        let mut n = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            let k = conn.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            for (j, b) in buf[..k].iter().enumerate() {
                sum = sum.wrapping_add(u64::from(*b) * ((n + j) as u64 % 7 + 1));
            }
            n += k;
        }
        (n, sum)
    });
    let data: Vec<u8> = (0..LEN).map(|i| (i * 31 % 253) as u8).collect();
    let want: u64 = data.iter().enumerate().fold(0u64, |s, (i, b)| {
        s.wrapping_add(u64::from(*b) * (i as u64 % 7 + 1))
    });
    let mut conn: TcpStream = lab
        .ns("s")
        .run(|| {
            TcpStream::connect_timeout(
                &"198.18.13.2:5001".parse().unwrap(),
                Duration::from_secs(10),
            )
        })
        .unwrap()
        .unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(&data).unwrap();
    drop(conn);
    let (n, sum) = server.join().unwrap();
    assert_eq!(n, LEN, "every byte crossed");
    assert_eq!(sum, want, "and unchanged");

    let finals = finish(br);
    let ab = final_from(&finals, "/ea");
    assert!(ab["gso"].as_u64().unwrap() > 0, "no GSO frame seen: {ab}");
    assert_eq!(ab["send_errors"], 0, "{ab}");
    assert!(
        ab["bytes"].as_u64().unwrap() > LEN as u64,
        "payload plus headers forwarded: {ab}"
    );
}

fn nsring(args: &[&str]) -> Output {
    Command::new(NSRING).args(args).output().unwrap()
}

#[test]
fn refuses_one_interface_twice_any_and_missing_ones() {
    let lab = lab("brbad");
    let nb = lab.ns_name("b");
    let ea = format!("{nb}/ea");
    for (args, what) in [
        (vec!["bridge", "-i", &ea, "-o", &ea], "same interface"),
        (
            vec!["bridge", "-i", "ea", "-o", "ea", "-n", &nb],
            "same interface",
        ),
        (
            vec!["bridge", "-i", &ea, "-o", &format!("{nb}/any")],
            "not 'any'",
        ),
        (
            vec!["bridge", "-i", &ea, "-o", &format!("{nb}/nope0")],
            "nope0",
        ),
        (vec!["bridge", "-i", &ea], "--out-interface"),
    ] {
        let o = nsring(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(what), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
