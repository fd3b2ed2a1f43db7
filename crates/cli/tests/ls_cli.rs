//! `nsring ls` end to end (root): captures started in lab namespaces show in their
//! namespace's view (and only there) with live counters; tcpdump's socket shows with its
//! owner; records of killed captures and deleted namespaces go away; interfaces follow
//! `link set netns`; corrupt records are named and the rest is printed; `nsring send`
//! shows with its sent counter until it exits.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nsring_capture::{Capture, CaptureConfig, RingGeometry, Sender};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;
use serde_json::Value;

mod common;

use common::{NSRING, Running, pair, start};

/// A 100-byte Ethernet frame (locally administered MACs, an unassigned EtherType).
fn frame(i: u8) -> Vec<u8> {
    let mut f = vec![
        0x02, 0x6e, 0x73, 0x72, 0x74, 0x02, 0x02, 0x6e, 0x73, 0x72, 0x74, 0x01,
    ];
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(100, i);
    f
}

fn send(ns: &NetNs, n: u8) {
    let s = Sender::open(ns, "eth1").unwrap();
    for i in 0..n {
        s.send(&frame(i)).unwrap();
    }
}

/// `nsring count` on `target` (`NS/eth1`), from the initial namespace, bounded in time.
fn count_from_here(target: &str, extra: &[&str]) -> Running {
    let mut cmd = Command::new(NSRING);
    cmd.args([
        "count",
        "-i",
        target,
        "--duration",
        "60",
        "--interval",
        "3600",
        "--block-timeout-ms",
        "10",
    ])
    .args(extra);
    start(cmd, "capturing on", Stdio::null())
}

/// `nsring count -i eth1` run inside namespace `ns` (`ip netns exec` keeps the PID).
fn count_inside(ns: &str, extra: &[&str]) -> Running {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, NSRING])
        .args([
            "count",
            "-i",
            "eth1",
            "--duration",
            "60",
            "--interval",
            "3600",
            "--block-timeout-ms",
            "10",
        ])
        .args(extra);
    start(cmd, "capturing on", Stdio::null())
}

fn nsring(args: &[&str]) -> Output {
    Command::new(NSRING).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = nsring(args);
    assert!(
        o.status.success(),
        "nsring {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The JSON objects `nsring ls ... --json` prints, one per line.
fn json(args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.push("--json");
    common::json_lines(&ok(&a))
}

/// The sockets of one namespace's view.
fn sockets(ns: &str) -> Vec<Value> {
    let v = json(&["ls", "sockets", "--netns", ns]);
    assert_eq!(v.len(), 1);
    v[0]["sockets"].as_array().unwrap().clone()
}

/// Our record of process `pid` in a list of sockets.
fn record_of(socks: &[Value], pid: u32) -> Option<Value> {
    socks
        .iter()
        .find(|s| s["record"]["header"]["pid"] == pid)
        .map(|s| s["record"].clone())
}

/// Polls until `f` is true (bounded).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_capture_shows_in_its_namespace_only_with_growing_counters() {
    let (lab, _a, b) = pair("lsview");
    let na = lab.ns_name("a");
    let nb = lab.ns_name("b");
    let inside = count_inside(&na, &["-f", "ether proto 0x88b5"]);
    let outside = count_from_here(&format!("{na}/eth1"), &["--app-name", "from-init"]);

    let socks = sockets(&na);
    let r_in = record_of(&socks, inside.pid()).expect("the capture inside a shows in a");
    let r_out =
        record_of(&socks, outside.pid()).expect("the capture from the initial ns shows in a");
    assert_eq!(r_in["info"]["interfaces"][0], "eth1");
    assert_eq!(r_in["info"]["filter"], "ether proto 0x88b5");
    assert_eq!(r_in["info"]["app_name"], "nsring-count");
    assert_eq!(r_out["info"]["app_name"], "from-init");
    assert_eq!(r_in["info"]["backend"], "tpacket_v3");
    assert!(
        r_in["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}-eth1.", inside.pid()))
    );
    assert_eq!(r_in["counters"]["packets"], 0);

    send(&b, 10);
    eventually("counters to grow", || {
        let socks = sockets(&na);
        [inside.pid(), outside.pid()]
            .iter()
            .all(|&p| record_of(&socks, p).is_some_and(|r| r["counters"]["packets"] == 10))
    });
    let socks = sockets(&na);
    assert_eq!(
        record_of(&socks, inside.pid()).unwrap()["counters"]["bytes"],
        1000
    );

    // the text view: PID, interface, filter
    let text = ok(&["ls", "sockets", "--netns", &na]);
    assert!(
        text.contains(&format!("nsring-count[{}]", inside.pid())),
        "{text}"
    );
    assert!(
        text.contains(&format!("from-init[{}]", outside.pid())),
        "{text}"
    );
    assert!(text.contains("ether proto 0x88b5"), "{text}");
    let name = r_in["name"].as_str().unwrap();
    let one = ok(&["ls", "sockets", name, "--netns", &na]);
    assert!(one.contains("Bound Device(s)        : eth1"), "{one}");
    assert!(
        one.contains(&format!("PID                    : {}", inside.pid())),
        "{one}"
    );
    assert!(one.contains("Tot Packets            : 10"), "{one}");
    assert!(
        one.contains("BPF Filter             : ether proto 0x88b5"),
        "{one}"
    );

    // not in b's view, not in the initial namespace's
    assert!(record_of(&sockets(&nb), inside.pid()).is_none());
    let here = json(&["ls", "sockets"]);
    let here = here[0]["sockets"].as_array().unwrap();
    assert!(record_of(here, inside.pid()).is_none());
    assert!(record_of(here, outside.pid()).is_none());

    // --all-netns finds it under a's name
    let all = json(&["ls", "sockets", "--all-netns"]);
    let in_a: Vec<&Value> = all
        .iter()
        .filter(|v| record_of(v["sockets"].as_array().unwrap(), inside.pid()).is_some())
        .collect();
    assert_eq!(in_a.len(), 1);
    assert_eq!(in_a[0]["namespace"]["label"], na.as_str());

    // the devices view counts the sockets bound to eth1
    let devs = json(&["ls", "dev", "--netns", &na]);
    let eth1 = devs[0]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "eth1")
        .unwrap()
        .clone();
    assert_eq!(eth1["sockets"], 2);
    let devs_b = json(&["ls", "dev", "eth1", "--netns", &nb]);
    assert_eq!(
        devs_b[0]["device"]["sockets"], 0,
        "b's eth1 is another interface"
    );
}

#[test]
fn tcpdump_shows_as_a_foreign_socket_with_its_owner() {
    let (lab, _a, _b) = pair("lstcpdump");
    let na = lab.ns_name("a");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &na,
        "tcpdump",
        "-n",
        "-i",
        "eth1",
        "-w",
        "/dev/null",
    ]);
    let td = start(cmd, "listening on", Stdio::null());
    let socks = sockets(&na);
    let theirs = socks
        .iter()
        .find(|s| {
            s["kernel"]["owners"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["pid"] == td.pid()))
        })
        .expect("tcpdump's socket");
    assert_eq!(theirs["ours"], false);
    assert_eq!(theirs["kernel"]["ifname"], "eth1");
    // its counts are tcpdump's alone to know (a ring's drops are not told): null, not 0
    assert!(
        theirs["packets"].is_null() && theirs["drops"].is_null(),
        "{theirs}"
    );
    let text = ok(&["ls", "sockets", "--netns", &na]);
    let row = text
        .lines()
        .find(|l| l.contains(&format!("tcpdump[{}]", td.pid())))
        .unwrap_or_else(|| panic!("{text}"));
    // PACKETS, BYTES, DROPS/ERRS and RECORD are all '-'
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[cols.len() - 4..], ["-", "-", "-", "-"], "{row}");
    let inode = theirs["inode"].to_string();
    let one = ok(&["ls", "sockets", &inode, "--netns", &na]);
    assert!(
        one.contains(&format!("Owner(s)               : tcpdump[{}]", td.pid())),
        "{one}"
    );
}

/// Another process's packet socket without a ring: every drop is in its `sk_drops`, so
/// `ls` knows them exactly (frames sent minus frames the socket still holds).
#[test]
fn a_ringless_foreign_sockets_drops_are_known_exactly() {
    use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};
    let (lab, a, b) = pair("lsringless");
    let nb = lab.ns_name("b");
    let sock = b
        .run(|| {
            let s = socket::socket(
                AddressFamily::Packet,
                SockType::Raw,
                SockFlag::SOCK_NONBLOCK,
                SockProtocol::EthAll,
            )
            .unwrap();
            // the smallest buffer the kernel allows: a few frames fit, the rest are dropped
            socket::setsockopt(&s, socket::sockopt::RcvBuf, &1).unwrap();
            s
        })
        .unwrap();
    send(&a, 200);
    let mut held = 0u64;
    let mut buf = [0u8; 2048];
    while socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &mut buf,
        MsgFlags::empty(),
    )
    .is_ok()
    {
        held += 1;
    }
    assert!((1..200).contains(&held), "{held} frames held");
    let socks = sockets(&nb);
    let mine = socks
        .iter()
        .find(|s| {
            s["kernel"]["owners"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["pid"] == std::process::id()))
        })
        .expect("the test's socket");
    assert_eq!(mine["drops"], 200 - held, "{mine}");
    assert!(mine["packets"].is_null(), "{mine}");
}

#[test]
fn records_of_killed_captures_and_deleted_namespaces_go_away() {
    let (lab, a, b) = pair("lsstale");
    let na = lab.ns_name("a");
    let nb = lab.ns_name("b");
    let mut victim = count_inside(&na, &[]);
    let name = record_of(&sockets(&na), victim.pid()).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = format!("/run/nsring/{}/{name}", a.inode());
    assert!(std::path::Path::new(&file).exists());
    victim.child.kill().unwrap(); // SIGKILL: no clean-up of its own
    victim.child.wait().unwrap();
    assert!(
        std::path::Path::new(&file).exists(),
        "the stale file is left behind"
    );
    assert!(record_of(&sockets(&na), victim.pid()).is_none());
    assert!(!std::path::Path::new(&file).exists(), "ls removed it");

    // a capture killed in b, then b deleted: its directory goes at the next ls
    let mut in_b = count_inside(&nb, &[]);
    assert!(record_of(&sockets(&nb), in_b.pid()).is_some());
    in_b.child.kill().unwrap();
    in_b.child.wait().unwrap();
    let dir_b = format!("/run/nsring/{}", b.inode());
    assert!(std::path::Path::new(&dir_b).exists());
    nsring_netns::del(&nb).unwrap();
    ok(&["ls", "sockets", "--all-netns"]);
    assert!(
        !std::path::Path::new(&dir_b).exists(),
        "the deleted namespace's records are gone"
    );
}

/// `nsring send -q -i eth1 ARGS` run inside namespace `ns`, with its stderr a pipe that
/// is already full: the sender runs freely (with `-q` it writes nothing until the end), but
/// its final `Sent ...` line blocks until the test reads the pipe, so its record can be seen
/// with the final counters before the process exits. Killed on drop.
struct HeldSend {
    child: Child,
    stderr: Option<std::io::PipeReader>,
}

impl HeldSend {
    fn start(ns: &str, extra: &[&str]) -> HeldSend {
        let (r, mut w) = std::io::pipe().unwrap();
        let size = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
        w.write_all(&vec![b'.'; size as usize]).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, NSRING, "send", "-q", "-i", "eth1"])
            .args(["--duration", "60"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(w)
            .spawn()
            .unwrap();
        HeldSend {
            child,
            stderr: Some(r),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the sender finish: reads its stderr to the end and waits for it. Returns what it
    /// wrote (after the filler) and whether it succeeded.
    fn finish(&mut self) -> (String, bool) {
        let mut r = self.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut all).unwrap();
            all
        });
        let status = self.child.wait().unwrap();
        let all = reader.join().unwrap();
        let text = String::from_utf8_lossy(&all)
            .trim_start_matches('.')
            .to_owned();
        (text, status.success())
    }
}

impl Drop for HeldSend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_sender_shows_with_its_sent_counter_until_it_exits() {
    const N: u64 = 300;
    let (lab, _a, _b) = pair("lssend");
    let na = lab.ns_name("a");
    let mut tx = HeldSend::start(&na, &["-N", &N.to_string(), "--pps", "150"]);
    let pid = tx.pid();

    // it shows as ours, transmit only, on eth1, and its counter grows while it runs
    let mut seen = Vec::new();
    eventually("the sender's counter to reach N", || {
        if let Some(r) = record_of(&sockets(&na), pid) {
            let sent = r["counters"]["sent"].as_u64().unwrap();
            if seen.last() != Some(&sent) {
                seen.push(sent);
            }
        }
        seen.last() == Some(&N)
    });
    assert!(
        seen.len() >= 3 && seen.windows(2).all(|w| w[0] < w[1]),
        "the counter grows step by step: {seen:?}"
    );
    // the final value, while the process still holds the socket
    let socks = sockets(&na);
    let entry = socks
        .iter()
        .find(|s| s["record"]["header"]["pid"] == pid)
        .unwrap();
    assert_eq!(entry["ours"], true);
    let r = &entry["record"];
    assert_eq!(r["info"]["app_name"], "nsring-send");
    assert_eq!(r["info"]["mode"], "tx");
    assert_eq!(r["info"]["interfaces"][0], "eth1");
    assert_eq!(r["info"]["backend"], "sendmmsg");
    assert_eq!(r["counters"]["sent"], N);
    assert_eq!(r["counters"]["bytes"], N * 60);
    assert_eq!(r["counters"]["send_errors"], 0);
    assert_eq!(r["counters"]["packets"], 0);
    assert_eq!(entry["kernel"]["ifname"], "eth1", "the kernel agrees");
    let name = r["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with(&format!("{pid}-eth1.")), "{name}");

    // the table: owner, mode, sent count
    let text = ok(&["ls", "sockets", "--netns", &na]);
    let row = text
        .lines()
        .find(|l| l.contains(&format!("nsring-send[{pid}]")))
        .unwrap_or_else(|| panic!("no row for the sender:\n{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "nsring", "{row}");
    assert_eq!(cols[3], "eth1", "{row}");
    assert_eq!(cols[4], "tx", "{row}");
    assert!(
        cols.windows(3)
            .any(|w| w == [N.to_string(), (N * 60).to_string(), "0".to_owned()]),
        "packets, bytes and errors: {row}"
    );
    // one record, PF_RING style
    let one = ok(&["ls", "sockets", &name, "--netns", &na]);
    for want in [
        format!("PID                    : {pid}"),
        "Socket Mode            : TX only".to_owned(),
        "Bound Device(s)        : eth1".to_owned(),
        format!("TX: Send Ok            : {N}"),
        "TX: Send Errors        : 0".to_owned(),
    ] {
        assert!(one.contains(&want), "{want:?} missing in\n{one}");
    }
    assert!(!one.contains("BPF Filter"), "no capture lines: {one}");

    // it exits cleanly, and its record goes with it
    let file = format!("/run/nsring/{}/{name}", lab.ns("a").inode());
    assert!(std::path::Path::new(&file).exists());
    let (said, success) = tx.finish();
    assert!(success, "{said}");
    assert!(said.contains(&format!("Sent {N} packets")), "{said}");
    assert!(!std::path::Path::new(&file).exists(), "removed on exit");
    assert!(record_of(&sockets(&na), pid).is_none());
}

#[test]
fn a_killed_sender_is_removed_at_the_next_ls() {
    let (lab, _a, _b) = pair("lssendkill");
    let na = lab.ns_name("a");
    let mut tx = HeldSend::start(&na, &["-N", "100000", "--pps", "1000", "--mode", "ring"]);
    let pid = tx.pid();
    let mut name = String::new();
    eventually("the sender to send", || {
        record_of(&sockets(&na), pid).is_some_and(|r| {
            name = r["name"].as_str().unwrap().to_owned();
            r["counters"]["sent"].as_u64().unwrap() > 0
        })
    });
    let r = record_of(&sockets(&na), pid).unwrap();
    assert_eq!(r["info"]["backend"], "tpacket_v2 tx ring");
    assert!(r["info"]["ring"]["memory_bytes"].as_u64().unwrap() > 0);
    let file = format!("/run/nsring/{}/{name}", lab.ns("a").inode());
    tx.child.kill().unwrap(); // SIGKILL: no clean-up of its own
    tx.child.wait().unwrap();
    assert!(std::path::Path::new(&file).exists(), "left behind");
    assert!(record_of(&sockets(&na), pid).is_none());
    assert!(!std::path::Path::new(&file).exists(), "ls removed it");
}

#[test]
fn counters_match_the_captures_own_statistics() {
    let (lab, a, b) = pair("lsexact");
    let na = lab.ns_name("a");
    let cfg = CaptureConfig::new("eth1")
        .snaplen(64)
        .app_name("exact-test")
        .ring(RingGeometry {
            block_size: 1 << 16,
            block_count: 4,
            block_timeout_ms: 10,
            ..RingGeometry::default()
        });
    let mut cap = Capture::open(&a, &cfg).unwrap();
    assert!(cap.record_error().is_none(), "{:?}", cap.record_error());
    let name = cap.record().unwrap().name().to_owned();
    send(&b, 25);
    let (mut packets, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while packets < 25 && Instant::now() < deadline {
        let mut block_bytes = 0;
        if let Some(block) = cap.next_block(Some(Duration::from_millis(100))).unwrap() {
            for f in &block {
                packets += 1;
                block_bytes += u64::from(f.wire_len());
            }
        }
        bytes += block_bytes;
        cap.add_bytes(block_bytes);
    }
    let stats = cap.stats().unwrap();
    assert_eq!(packets, 25);
    let v = json(&["ls", "sockets", &name, "--netns", &na]);
    let c = &v[0]["socket"]["record"]["counters"];
    assert_eq!(c["packets"], packets);
    assert_eq!(c["bytes"], bytes);
    assert_eq!(c["kernel_packets"], stats.packets);
    assert_eq!(c["drops"], stats.drops);
    assert_eq!(c["freezes"], stats.freezes);
    assert_eq!(
        v[0]["socket"]["record"]["info"]["ring"]["block_size"],
        1 << 16
    );
    assert_eq!(v[0]["socket"]["kernel"]["rx_ring"]["block_size"], 1 << 16);
    drop(cap);
    assert!(
        sockets(&na).iter().all(|s| s["ours"] == false),
        "dropped: gone"
    );

    // and with registration off, nothing is recorded
    let cap = Capture::open(&a, &cfg.clone().register(false)).unwrap();
    assert!(cap.record().is_none());
    let socks = sockets(&na);
    assert_eq!(socks.len(), 1);
    assert_eq!(socks[0]["ours"], false, "the kernel still shows it");
}

#[test]
fn an_interface_moved_into_a_namespace_moves_in_the_views() {
    let mut lab = Lab::new("lsmove");
    lab.netns("a");
    let host = lab.host_veth("a", "peer0");
    let na = lab.ns_name("a");
    let names = |args: &[&str]| -> Vec<String> {
        json(args)[0]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let initial = lab.host_netns().try_clone().unwrap();
    assert!(
        initial.same_as(&NetNs::current().unwrap()),
        "the test runs in the namespace host_veth uses"
    );
    assert!(names(&["ls", "dev"]).contains(&host));
    assert!(!names(&["ls", "dev", "--netns", &na]).contains(&host));
    nsring_netns::link::set_netns(&initial, &host, lab.ns("a")).unwrap();
    assert!(!names(&["ls", "dev"]).contains(&host));
    assert!(names(&["ls", "dev", "--netns", &na]).contains(&host));
    let one = ok(&["ls", "dev", &host, "--netns", &na]);
    assert!(
        one.contains(&format!("Name:              {host}\n")),
        "{one}"
    );
    assert!(one.contains("Family:            veth\n"), "{one}");
}

#[test]
fn bad_input_is_named_and_the_rest_is_printed() {
    let (lab, a, _b) = pair("lsbad");
    let na = lab.ns_name("a");
    let c1 = count_inside(&na, &[]);
    let c2 = count_inside(&na, &[]);
    let socks = sockets(&na);
    let victim = record_of(&socks, c1.pid()).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // garbage over the live record's header (no truncation: the owner keeps its page)
    let path = format!("/run/nsring/{}/{victim}", a.inode());
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"garbage!garbage!", 0).unwrap();

    let o = nsring(&["ls", "sockets", "--netns", &na]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "record {victim} is corrupt: not an nsring record (wrong magic bytes)"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        out.contains(&format!("nsring-count[{}]", c2.pid())),
        "{out}"
    );

    // a missing namespace, record or interface: one line, exit 2
    for (args, want) in [
        (
            vec!["ls", "--netns", "nsrt-no-such-namespace"],
            "nsrt-no-such-namespace",
        ),
        (
            vec!["ls", "sockets", "999999-eth1.0", "--netns", &na],
            "no socket record or socket inode '999999-eth1.0'",
        ),
        (
            vec!["ls", "dev", "eth7", "--netns", &na],
            "no interface 'eth7'",
        ),
        (
            vec!["ls", "--netns", &na, "--all-netns"],
            "exclude each other",
        ),
    ] {
        let o = nsring(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        // one error line (the corrupt record above is still warned about)
        let errors = err
            .lines()
            .filter(|l| !l.starts_with("nsring: warning:"))
            .count();
        assert_eq!(errors, 1, "{args:?}: {err}");
    }
}

#[test]
fn watch_refreshes_and_stops() {
    let (lab, _a, b) = pair("lswatch");
    let na = lab.ns_name("a");
    let cap = count_inside(&na, &[]);
    let mut child = Command::new(NSRING)
        .args([
            "ls",
            "sockets",
            "--netns",
            &na,
            "--json",
            "--watch",
            "--count",
            "3",
            "--interval",
            "0.3",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    send(&b, 5);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "--watch --count 3 did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let rounds: Vec<Value> = common::json_lines(&out);
    assert_eq!(rounds.len(), 3);
    let packets: Vec<u64> = rounds
        .iter()
        .map(|r| {
            record_of(r["sockets"].as_array().unwrap(), cap.pid()).unwrap()["counters"]["packets"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(packets[0], 0);
    assert_eq!(packets[2], 5, "{packets:?}");
    let _ = std::io::stdout().flush();
}
