//! nsring as a Wireshark extcap, with the real tshark (root): `tshark -D` lists the lab's
//! interfaces; `tshark -i NS/IFACE -c N -w FILE` captures exactly the frames sent, the same
//! ones a simultaneous `nsring dump` writes; tshark's `-f` filter is applied; the capture
//! ends cleanly (exit 0, nothing on stderr, no process or record left) when its FIFO's
//! reader goes away and on SIGTERM.
//!
//! tshark finds extcaps only in its system folder (Debian 12's 4.0 has no per-user one, and
//! ignores WIRESHARK_EXTCAP_DIR when run as root), so each tshark runs in a mount namespace
//! of its own where a temporary folder holding a link to the built binary is bind-mounted
//! over that folder: the system's folder is never touched.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nsring_capture::Sender;
use nsring_netns::NetNs;
use serde_json::Value;

mod common;

use common::{NSRING, pair};

/// The extcap folder tshark reads, from `tshark -G folders`.
fn extcap_folder() -> PathBuf {
    let out = Command::new("tshark")
        .args(["-G", "folders"])
        .output()
        .expect("tshark (Debian package tshark) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("Extcap path:"))
        .unwrap_or_else(|| panic!("no extcap path in tshark -G folders: {text}"));
    PathBuf::from(line.trim_start_matches("Extcap path:").trim())
}

/// A temporary extcap folder holding `nsring` (a link to the built binary); removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(tag: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("nsrt-extcap-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(NSRING, dir.join("nsring")).unwrap();
        Folder(dir)
    }

    /// `tshark ARGS` seeing only this folder's extcaps.
    fn tshark(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" "$2" && shift 2 && exec tshark "$@""#)
            .arg("sh")
            .arg(&self.0)
            .arg(extcap_folder())
            .args(args);
        cmd
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child killed and reaped on drop (a test that fails half-way leaves nothing running).
struct Kid(Option<Child>);

impl Kid {
    /// Waits (bounded) for it to exit; its status, stdout and stderr.
    fn finish(mut self, within: Duration) -> Output {
        let mut child = self.0.take().expect("not finished yet");
        let deadline = Instant::now() + within;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("still running after {within:?}: {out:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(cmd: &mut Command) -> Kid {
    Kid(Some(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

/// The nsring records of a namespace with application name `app`, as `ls` shows them.
fn records(ns: &str, app: &str) -> Vec<Value> {
    let out = Command::new(NSRING)
        .args(["ls", "sockets", "--netns", ns, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v = common::json_lines(&String::from_utf8(out.stdout).unwrap());
    v[0]["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["record"]["info"]["app_name"] == app)
        .map(|s| s["record"].clone())
        .collect()
}

/// Polls until `f` gives something (bounded).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the extcap's capture in `ns` has its socket open; its PID.
fn extcap_running(ns: &str) -> u32 {
    eventually("the extcap's capture socket", || {
        let r = records(ns, "nsring-extcap");
        r.first()
            .map(|r| r["header"]["pid"].as_u64().unwrap() as u32)
    })
}

/// Waits until process `pid` is gone and no extcap record is left in `ns`.
fn extcap_gone(ns: &str, pid: u32) {
    eventually("the extcap to end and its record to go", || {
        (!Path::new(&format!("/proc/{pid}")).exists() && records(ns, "nsring-extcap").is_empty())
            .then_some(())
    });
}

/// A 100-byte frame numbered `i`, EtherType 0x88b5 (local experimental).
fn frame(i: u8) -> Vec<u8> {
    let mut f = vec![
        0x02, 0x6e, 0x73, 0x72, 0x74, 0x02, 0x02, 0x6e, 0x73, 0x72, 0x74, 0x01,
    ];
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(100, i);
    f
}

/// A UDP frame to port 9 (198.18.0.1 -> 198.18.0.2) with payload byte `i`.
fn udp_frame(i: u8) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(
        [0x02, 0x6e, 0x73, 0x72, 0x74, 0x01],
        [0x02, 0x6e, 0x73, 0x72, 0x74, 0x02],
    )
    .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
    .udp(9, 9);
    let payload = [i; 20];
    let mut f = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut f, &payload).unwrap();
    f
}

fn send(ns: &NetNs, frames: &[Vec<u8>]) {
    let s = Sender::open(ns, "eth1").unwrap();
    for f in frames {
        s.send(f).unwrap();
    }
}

/// Every packet's bytes in a capture file.
fn packets(path: &Path) -> Vec<Vec<u8>> {
    let f = File::open(path).unwrap();
    let mut r = nsring_pcap::CaptureReader::open(BufReader::new(f)).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push(p.data.to_vec());
    }
    v
}

#[test]
fn tshark_lists_the_labs_interfaces_as_ns_slash_iface() {
    let (lab, _a, _b) = pair("exlist");
    let folder = Folder::new("list");
    let out = folder.tshark(&["-D"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for ns in [lab.ns_name("a"), lab.ns_name("b")] {
        let want = format!(". {ns}/eth1 (nsring: {ns}/eth1)");
        assert!(text.lines().any(|l| l.ends_with(&want)), "{want}\n{text}");
    }
    // the caller's own interfaces are dumpcap's to list: every nsring one has NS/IFACE
    for l in text.lines().filter(|l| l.contains("(nsring: ")) {
        let value = l.split_whitespace().nth(1).unwrap();
        assert!(value.contains('/'), "{l}");
    }
}

#[test]
fn tshark_captures_exactly_the_frames_sent_as_dump_does() {
    let (lab, _a, b) = pair("excap");
    let na = lab.ns_name("a");
    let target = format!("{na}/eth1");
    let folder = Folder::new("cap");
    let dir = &folder.0;
    let (theirs, ours) = (dir.join("tshark.pcapng"), dir.join("dump.pcapng"));
    const N: u8 = 25;
    let ts = spawn(&mut folder.tshark(&[
        "-i",
        &target,
        "-c",
        &N.to_string(),
        "-w",
        theirs.to_str().unwrap(),
    ]));
    let dump = spawn(Command::new(NSRING).args([
        "dump",
        "-i",
        &target,
        "-N",
        &N.to_string(),
        "--duration",
        "60",
        "--app-name",
        "nsrt-dump",
        "-w",
        ours.to_str().unwrap(),
    ]));
    let pid = extcap_running(&na);
    eventually("dump's socket", || {
        (!records(&na, "nsrt-dump").is_empty()).then_some(())
    });
    let sent: Vec<Vec<u8>> = (0..N).map(frame).collect();
    send(&b, &sent);
    let out = dump.finish(Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let out = ts.finish(Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(packets(&theirs), sent, "tshark's file");
    assert_eq!(packets(&ours), sent, "dump's file");
    extcap_gone(&na, pid);
}

#[test]
fn a_capture_filter_given_to_tshark_is_applied() {
    let (lab, _a, b) = pair("exfilt");
    let na = lab.ns_name("a");
    let folder = Folder::new("filt");
    let file = folder.0.join("udp.pcapng");
    let ts = spawn(&mut folder.tshark(&[
        "-i",
        &format!("{na}/eth1"),
        "-f",
        "udp port 9",
        "-c",
        "5",
        "-w",
        file.to_str().unwrap(),
    ]));
    let pid = extcap_running(&na);
    let r = records(&na, "nsring-extcap");
    assert_eq!(r[0]["info"]["filter"], "udp port 9", "{}", r[0]);
    // ten that do not match first: without the filter they would fill the file
    let others: Vec<Vec<u8>> = (0..10).map(frame).collect();
    let udp: Vec<Vec<u8>> = (0..5).map(udp_frame).collect();
    send(&b, &others);
    send(&b, &udp);
    let out = ts.finish(Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(packets(&file), udp);
    extcap_gone(&na, pid);
}

/// `nsring --capture ... --fifo P` started by hand, with a FIFO the test reads.
struct Direct {
    kid: Kid,
    reader: File,
    _folder: Folder,
}

fn direct(target: &str, tag: &str) -> Direct {
    let folder = Folder::new(tag);
    let fifo = folder.0.join("fifo");
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let kid = spawn(Command::new(NSRING).args([
        "--capture",
        "--extcap-interface",
        target,
        "--fifo",
        fifo.to_str().unwrap(),
    ]));
    let reader = File::open(&fifo).unwrap(); // blocks until nsring opens it
    Direct {
        kid,
        reader,
        _folder: folder,
    }
}

#[test]
fn the_capture_ends_when_the_fifos_reader_goes_away() {
    let (lab, _a, _b) = pair("expipe");
    let na = lab.ns_name("a");
    let d = direct(&format!("{na}/eth1"), "pipe");
    let pid = extcap_running(&na);
    let mut head = [0u8; 4];
    let mut reader = d.reader;
    reader.read_exact(&mut head).unwrap();
    assert_eq!(
        head,
        [0x0a, 0x0d, 0x0d, 0x0a],
        "a pcapng section header first"
    );
    drop(reader); // as dumpcap does when it stops: no packet will ever tell nsring
    let out = d.kid.finish(Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    extcap_gone(&na, pid);
}

#[test]
fn sigterm_ends_the_capture_with_a_complete_file() {
    let (lab, _a, b) = pair("exterm");
    let na = lab.ns_name("a");
    let mut d = direct(&format!("{na}/eth1"), "term");
    let pid = extcap_running(&na);
    let sent: Vec<Vec<u8>> = (0..7).map(frame).collect();
    send(&b, &sent);
    // the frames reach the FIFO within a ring block's timeout; then Wireshark's stop
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut all = Vec::new();
    d.reader.read_to_end(&mut all).unwrap();
    let out = d.kid.finish(Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = d._folder.0.join("all.pcapng");
    std::fs::write(&path, &all).unwrap();
    assert_eq!(packets(&path), sent);
    extcap_gone(&na, pid);
}

#[test]
fn wiresharks_questions_get_answers() {
    let (lab, _a, _b) = pair("exask");
    let target = format!("{}/eth1", lab.ns_name("a"));
    let ask = |args: &[&str]| {
        let out = Command::new(NSRING).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let dlts = ask(&["--extcap-dlts", "--extcap-interface", &target]);
    assert_eq!(dlts, "dlt {number=1}{name=EN10MB}{display=Ethernet}\n");
    // a capture filter is checked: silence if good, the reason (one line) if not
    let good = ask(&[
        "--extcap-capture-filter",
        "udp port 9",
        "--extcap-interface",
        &target,
    ]);
    assert_eq!(good, "");
    let bad = ask(&[
        "--extcap-capture-filter",
        "udp port",
        "--extcap-interface",
        &target,
    ]);
    assert_eq!(bad.lines().count(), 1, "{bad}");
    assert!(bad.contains("udp port"), "{bad}");
    // an interface that does not exist is a usage error, named
    let out = Command::new(NSRING)
        .args([
            "--extcap-dlts",
            "--extcap-interface",
            &format!("{}/nope0", lab.ns_name("a")),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope0"),
        "{out:?}"
    );
}
