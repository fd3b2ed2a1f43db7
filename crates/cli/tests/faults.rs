//! Faults around a running capture: the interface goes down, away or to another
//! namespace, the capturer gets SIGTERM or SIGHUP or is killed, /run/nsring cannot be
//! written, the output directory is read-only. Each ends with the final statistics, a
//! one-line reason and exit 1 where it failed, a valid file for dump, and exact counts.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{NSRING, Running, start};
use nsring_netns::lab::Lab;

const SRC: &str = "02:6e:73:72:74:66";

/// Two namespaces `a` and `b` joined by `eth1` -- `eth1`, by name.
fn pair(tag: &str) -> (Lab, String, String) {
    let (lab, _, _) = common::pair(tag);
    let (a, b) = (lab.ns_name("a"), lab.ns_name("b"));
    (lab, a, b)
}

fn filter() -> String {
    format!("ether src {SRC}")
}

/// `nsring send` of `n` frames of `len` bytes on `iface`, which must succeed.
fn send(iface: &str, n: u64, len: u32) {
    let out = Command::new(NSRING)
        .args(["send", "-q", "--src-mac", SRC, "-i", iface])
        .args(["-N", &n.to_string(), "-l", &len.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

fn nsring_bg(args: &[&str]) -> Running {
    let mut cmd = Command::new(NSRING);
    cmd.args(args);
    start(cmd, "capturing on", Stdio::null())
}

/// Waits (bounded) for the process to exit; returns its status and all its stderr.
fn finish(mut r: Running, within: Duration) -> (i32, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            let err: Vec<String> = r.lines.try_iter().collect();
            return (st.code().unwrap_or(-1), err.join("\n"));
        }
        assert!(
            Instant::now() < deadline,
            "did not exit in {within:?}: {:?}",
            r.lines.try_iter().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(r: &Running, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.pid() as i32), sig).unwrap();
}

/// The last line is the reason; the final statistics block comes before it.
fn assert_failed_with(code: i32, err: &str, reason: &str, packets: u64) {
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("nsring: error: "), "{err}");
    assert!(last.contains(reason), "{last:?} lacks {reason:?}");
    assert!(
        err.contains(&format!("[{packets} pkts rcvd]"))
            || err.contains(&format!("{packets} packets captured")),
        "no final statistics with {packets} packets: {err}"
    );
}

/// count: removed, moved to another namespace, down. Every packet sent before is counted.
#[test]
fn count_says_why_its_interface_ended() {
    for (case, reason) in [
        ("del", "was removed"),
        ("move", "was removed"),
        ("down", "went down"),
    ] {
        let (lab, a, b) = pair(&format!("fault-{case}"));
        let r = nsring_bg(&[
            "count",
            "--interval",
            "1000",
            "-i",
            &format!("{b}/eth1"),
            "-f",
            &filter(),
            "--block-timeout-ms",
            "10",
        ]);
        send(&format!("{a}/eth1"), 300, 100);
        std::thread::sleep(Duration::from_millis(300));
        let bs = b.clone();
        match case {
            "del" => ip(&["-n", &bs, "link", "del", "eth1"]),
            "move" => ip(&[
                "-n", &bs, "link", "set", "eth1", "netns", &a, "name", "moved1",
            ]),
            _ => ip(&["-n", &bs, "link", "set", "eth1", "down"]),
        }
        let (code, err) = finish(r, Duration::from_secs(10));
        assert_failed_with(code, &err, reason, 300);
        drop(lab);
    }
}

/// dump: the file is closed as after Ctrl-C (readable by tshark, every packet in it).
#[test]
fn dump_keeps_a_valid_file_when_its_interface_goes() {
    let (_lab, a, b) = pair("fault-dump");
    let dir = std::env::temp_dir().join(format!("nsrt-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gone.pcapng");
    let r = nsring_bg(&[
        "dump",
        "-i",
        &format!("{b}/eth1"),
        "-f",
        &filter(),
        "--block-timeout-ms",
        "10",
        "-w",
        file.to_str().unwrap(),
    ]);
    send(&format!("{a}/eth1"), 250, 200);
    std::thread::sleep(Duration::from_millis(300));
    ip(&["-n", &b, "link", "del", "eth1"]);
    let (code, err) = finish(r, Duration::from_secs(10));
    assert_failed_with(code, &err, "was removed", 250);
    assert_eq!(tshark_count(&file), 250);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tshark_count(file: &std::path::Path) -> usize {
    let out = Command::new("tshark")
        .args([
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark cannot read {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// SIGTERM and SIGHUP end count and dump like Ctrl-C: final statistics, exit 0, exact
/// counts, a valid file.
#[test]
fn sigterm_and_sighup_end_like_ctrl_c() {
    use nix::sys::signal::Signal;
    let (_lab, a, b) = pair("fault-sig");
    let dir = std::env::temp_dir().join(format!("nsrt-faults-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for sig in [Signal::SIGTERM, Signal::SIGHUP] {
        let r = nsring_bg(&[
            "count",
            "--interval",
            "1000",
            "-i",
            &format!("{b}/eth1"),
            "-f",
            &filter(),
        ]);
        let file = dir.join(format!("{sig}.pcapng"));
        let d = nsring_bg(&[
            "dump",
            "-i",
            &format!("{b}/eth1"),
            "-f",
            &filter(),
            "-w",
            file.to_str().unwrap(),
        ]);
        send(&format!("{a}/eth1"), 400, 64);
        std::thread::sleep(Duration::from_millis(300));
        signal(&r, sig);
        signal(&d, sig);
        let (code, err) = finish(r, Duration::from_secs(10));
        assert_eq!(code, 0, "count after {sig}: {err}");
        assert!(err.contains("[400 pkts rcvd]"), "count after {sig}: {err}");
        let (code, err) = finish(d, Duration::from_secs(10));
        assert_eq!(code, 0, "dump after {sig}: {err}");
        assert!(
            err.contains("400 packets captured"),
            "dump after {sig}: {err}"
        );
        assert_eq!(tshark_count(&file), 400);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records of this process's sockets under /run/nsring.
fn records_of(pid: u32) -> Vec<String> {
    let mut v = Vec::new();
    let Ok(top) = std::fs::read_dir("/run/nsring") else {
        return v;
    };
    for d in top.flatten() {
        let Ok(inner) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for f in inner.flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!("{pid}-")) {
                v.push(n);
            }
        }
    }
    v
}

/// kill -9 of count, dump and send: their records stay behind until the next reader
/// (`nsring ls`) sweeps them.
#[test]
fn killed_capturers_records_are_swept_by_the_next_reader() {
    use nix::sys::signal::Signal;
    let (_lab, a, b) = pair("fault-kill");
    let dir = std::env::temp_dir().join(format!("nsrt-faults-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("k.pcapng");
    let procs = [
        nsring_bg(&["count", "--interval", "1000", "-i", &format!("{b}/eth1")]),
        nsring_bg(&[
            "dump",
            "-i",
            &format!("{b}/eth1"),
            "-w",
            file.to_str().unwrap(),
        ]),
    ];
    let mut sender = Command::new(NSRING)
        .args(["send", "-i", &format!("{a}/eth1"), "--src-mac", SRC])
        .args(["--pps", "100", "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while records_of(sender.id()).is_empty() {
        assert!(Instant::now() < deadline, "send never recorded its socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut pids: Vec<u32> = procs.iter().map(Running::pid).collect();
    pids.push(sender.id());
    for &pid in &pids {
        assert!(!records_of(pid).is_empty(), "no record of {pid}");
    }
    for p in &procs {
        signal(p, Signal::SIGKILL);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sender.id() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    let _ = sender.wait();
    for mut p in procs {
        let _ = p.child.wait();
    }
    // The killed owners' records are still there: no one removed them.
    for &pid in &pids {
        assert!(
            !records_of(pid).is_empty(),
            "record of {pid} vanished by itself"
        );
    }
    let out = Command::new(NSRING)
        .args(["ls", "sockets", "--netns", &b])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(NSRING)
        .args(["ls", "sockets", "--netns", &a])
        .output()
        .unwrap();
    assert!(out.status.success());
    for &pid in &pids {
        assert!(records_of(pid).is_empty(), "record of {pid} not swept");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// /run/nsring cannot be written (a read-only mount over it, in a mount namespace of the
/// test's own): the capture runs and counts every packet, with one warning.
#[test]
fn an_unwritable_registry_is_one_warning() {
    let (_lab, a, b) = pair("fault-ro");
    let script = format!(
        "mkdir -p /run/nsring && mount -t tmpfs -o ro,mode=0755 nsrt-ro /run/nsring && exec {NSRING} count -i {b}/eth1 -f '{}' -N 200",
        filter()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let r = start(cmd, "capturing on", Stdio::null());
    send(&format!("{a}/eth1"), 200, 80);
    let (code, err) = finish(r, Duration::from_secs(10));
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("not recorded under /run/nsring"), "{err}");
    assert!(err.contains("[200 pkts rcvd]"), "{err}");
}

/// A read-only output directory: dump refuses at once and leaves nothing; one that turns
/// read-only while files rotate ends the dump with the files so far valid.
#[test]
fn a_read_only_output_directory() {
    let (_lab, a, b) = pair("fault-rodir");
    let dir = std::env::temp_dir().join(format!("nsrt-faults-rodir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mount = |opts: &str| {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "nsrt-rodir"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success());
    };
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    mount("ro,size=4m");
    let _guard = Unmount(dir.clone());
    let file = dir.join("x.pcapng");
    let out = Command::new(NSRING)
        .args([
            "dump",
            "-i",
            &format!("{b}/eth1"),
            "-w",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!file.exists());
    // A writable one rotating every 1 MB; then a read-only mount on top of it while the
    // dump runs: the next file cannot be created there.
    let st = Command::new("umount").arg(&dir).status().unwrap();
    assert!(st.success());
    mount("size=8m");
    let r = nsring_bg(&[
        "dump",
        "-i",
        &format!("{b}/eth1"),
        "-f",
        &filter(),
        "-C",
        "1",
        "-w",
        file.to_str().unwrap(),
        "--block-timeout-ms",
        "10",
    ]);
    send(&format!("{a}/eth1"), 1100, 1000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&dir).unwrap().count() < 2 {
        assert!(Instant::now() < deadline, "no rotation");
        std::thread::sleep(Duration::from_millis(20));
    }
    mount("ro,size=1m");
    send(&format!("{a}/eth1"), 1100, 1000);
    let (code, err) = finish(r, Duration::from_secs(10));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("Read-only file system"),
        "{err}"
    );
    assert!(err.contains("packets captured"), "{err}");
    let st = Command::new("umount").arg(&dir).status().unwrap();
    assert!(st.success());
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let mut head = [0u8; 4];
        let mut f = std::fs::File::open(e.path()).unwrap();
        if f.read(&mut head).unwrap() == 4 {
            assert!(tshark_count(&e.path()) > 0, "{}", e.path().display());
            files += 1;
        }
    }
    assert!(files >= 2, "{files} files");
}
