//! `nsring mount` end to end (root): the view as files, read with real `cat`, `ls` and `grep`
//! from inside two lab namespaces and from the initial one while real captures (nsring and
//! tcpdump) run; contents match `nsring ls --json`; files come and go with sockets; other
//! users can read; a dead mount left by a killed process is cleared; bad mount points are
//! refused. Every mount point is a fresh `nsrt-…` directory, unmounted by a guard.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nsring_capture::Sender;
use nsring_netns::NetNs;
use serde_json::Value;

mod common;

use common::{NSRING, Running, pair, start};

/// A mount point under the temp dir, with the `nsring mount` serving it; on drop the
/// process is stopped, anything still mounted is detached and the directory removed.
struct MountDir {
    dir: PathBuf,
    server: Option<Running>,
}

impl MountDir {
    fn new(tag: &str) -> MountDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nsrt-{}-mnt{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        MountDir { dir, server: None }
    }

    fn serve(&mut self) -> &Running {
        let mut cmd = Command::new(NSRING);
        cmd.arg("mount").arg(&self.dir);
        self.server = Some(start(cmd, "mounted the namespace view", Stdio::null()));
        self.server.as_ref().unwrap()
    }

    fn path(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    fn mounted(&self) -> bool {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(self.dir.to_str().unwrap()))
    }
}

impl Drop for MountDir {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            terminate(&s);
            drop(s);
        }
        while self.mounted() {
            if nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn terminate(r: &Running) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// Runs `argv` inside named namespace `ns` (`ip netns exec`), or here when `ns` is None.
fn run_in(ns: Option<&str>, argv: &[&str]) -> Output {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).args(argv);
            c
        }
        None => {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn text_in(ns: Option<&str>, argv: &[&str]) -> String {
    let o = run_in(ns, argv);
    assert!(
        o.status.success(),
        "{argv:?} in {ns:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `ls DIR` as a set of names.
fn listing(ns: Option<&str>, dir: &str) -> BTreeSet<String> {
    text_in(ns, &["ls", "-1", dir])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The one JSON object of `nsring ls [what] --netns NS --json` that has `key`.
fn ls_json(ns: Option<&str>, what: &[&str], key: &str) -> Value {
    let mut args = vec!["ls"];
    args.extend_from_slice(what);
    if let Some(ns) = ns {
        args.extend(["--netns", ns]);
    }
    args.push("--json");
    let o = Command::new(NSRING).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v.get(key).is_some())
        .unwrap_or_else(|| panic!("no '{key}' in ls {what:?} --json"))
}

/// The file names the sockets of `ls --json` get in the mount.
fn names_from_ls(ns: Option<&str>) -> BTreeSet<String> {
    let v = ls_json(ns, &["sockets"], "sockets");
    v["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s["record"]["name"].as_str() {
            Some(n) => n.to_owned(),
            None => {
                let k = &s["kernel"];
                let pid = k["owners"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["pid"].as_u64().unwrap())
                    .min()
                    .unwrap_or(0);
                let ifname = match k["ifindex"].as_u64().unwrap() {
                    0 => "any".to_owned(),
                    _ => k["ifname"].as_str().unwrap().to_owned(),
                };
                format!("{pid}-{ifname}.{}", s["inode"])
            }
        })
        .collect()
}

/// The socket files (`<pid>-<if>.<id>`) of a root listing.
fn socket_files(all: &BTreeSet<String>) -> BTreeSet<String> {
    all.iter()
        .filter(|n| !["info", "dev", "stats"].contains(&n.as_str()))
        .cloned()
        .collect()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 100-byte frame of an unassigned EtherType.
fn frame(i: u8) -> Vec<u8> {
    let mut f = vec![
        0x02, 0x6e, 0x73, 0x72, 0x74, 0x02, 0x02, 0x6e, 0x73, 0x72, 0x74, 0x01, 0x88, 0xb5,
    ];
    f.resize(100, i);
    f
}

fn send(ns: &NetNs, n: u8) {
    let s = Sender::open(ns, "eth1").unwrap();
    for i in 0..n {
        s.send(&frame(i)).unwrap();
    }
}

/// `key : value` of a PF_RING-style block.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

#[test]
fn each_reader_sees_its_namespace_and_the_files_match_ls() {
    let (lab, _a, b) = pair("mntview");
    let na = lab.ns_name("a");
    let nb = lab.ns_name("b");
    let mut m = MountDir::new("view");
    m.serve();

    // nsring count in a (from the initial namespace), tcpdump in b
    let mut cmd = Command::new(NSRING);
    cmd.args(["count", "-i", &format!("{na}/eth1"), "--duration", "60"])
        .args(["--interval", "3600", "--block-timeout-ms", "10"]);
    let count = start(cmd, "capturing on", Stdio::null());
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &nb,
        "tcpdump",
        "-n",
        "-i",
        "eth1",
        "-w",
        "/dev/null",
    ]);
    let td = start(cmd, "listening on", Stdio::null());

    // the same path, three views
    let root_a = listing(Some(&na), &m.path(""));
    let root_b = listing(Some(&nb), &m.path(""));
    let root_h = listing(None, &m.path(""));
    for r in [&root_a, &root_b, &root_h] {
        assert!(
            r.contains("info") && r.contains("dev") && r.contains("stats"),
            "{r:?}"
        );
    }
    let files_a = socket_files(&root_a);
    let files_b = socket_files(&root_b);
    assert_eq!(
        files_a,
        names_from_ls(Some(&na)),
        "a's files are ls's sockets"
    );
    assert_eq!(
        files_b,
        names_from_ls(Some(&nb)),
        "b's files are ls's sockets"
    );
    assert_eq!(files_a.len(), 1, "{files_a:?}");
    let ours = files_a.iter().next().unwrap().clone();
    assert!(
        ours.starts_with(&format!("{}-eth1.", count.pid())),
        "{ours}"
    );
    let theirs = format!("{}-eth1.", td.pid());
    assert!(
        files_b.iter().any(|f| f.starts_with(&theirs)),
        "tcpdump's file in b: {files_b:?}"
    );
    assert!(root_h.is_disjoint(&files_a) && root_h.is_disjoint(&files_b));
    assert_eq!(
        listing(Some(&na), &m.path("stats")),
        BTreeSet::from([ours.clone()]),
        "stats for nsring's socket only"
    );
    assert!(listing(Some(&nb), &m.path("stats")).is_empty());

    // info: rings and interfaces of the reader's namespace, as ls says
    let info_a = text_in(Some(&na), &["cat", &m.path("info")]);
    let ls_a = ls_json(Some(&na), &[], "nsring_sockets");
    assert_eq!(field(&info_a, "Total rings"), Some("1"), "{info_a}");
    assert_eq!(
        field(&info_a, "nsring sockets").unwrap(),
        ls_a["nsring_sockets"].to_string()
    );
    assert!(
        field(&info_a, "Namespace").unwrap().starts_with(&na),
        "{info_a}"
    );
    let info_b = text_in(Some(&nb), &["cat", &m.path("info")]);
    assert_eq!(field(&info_b, "nsring sockets"), Some("0"), "{info_b}");
    assert!(field(&info_b, "Namespace").unwrap().starts_with(&nb));

    // dev/: the reader's interfaces, PF_RING's dev/<if>/info
    let devs: BTreeSet<String> = ls_json(Some(&na), &["dev"], "devices")["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listing(Some(&na), &m.path("dev")), devs);
    let dev = text_in(Some(&na), &["cat", &m.path("dev/eth1/info")]);
    assert!(dev.contains("Name:              eth1\n"), "{dev}");
    assert!(dev.contains("# Bound Sockets:   1\n"), "{dev}");
    let ls_dev = ls_json(Some(&na), &["dev", "eth1"], "device");
    assert_eq!(
        field(&dev, "Index").unwrap(),
        ls_dev["device"]["index"].to_string()
    );
    assert!(
        !listing(None, &m.path("dev")).contains("eth1"),
        "not the host's"
    );

    // traffic: the socket file and stats count it exactly, as ls does
    send(&b, 25); // from b's end to the capture on a's

    eventually("25 packets in the record", || {
        ls_json(Some(&na), &["sockets"], "sockets")["sockets"][0]["record"]["counters"]["packets"]
            == 25
    });
    let sock = text_in(Some(&na), &["cat", &m.path(&ours)]);
    let rec = &ls_json(Some(&na), &["sockets"], "sockets")["sockets"][0]["record"];
    assert_eq!(field(&sock, "Tot Packets"), Some("25"), "{sock}");
    assert_eq!(field(&sock, "Tot Bytes"), Some("2500"), "{sock}");
    assert_eq!(
        field(&sock, "Tot Pkt Lost").unwrap(),
        rec["counters"]["drops"].to_string()
    );
    assert_eq!(field(&sock, "Bound Device(s)"), Some("eth1"));
    assert_eq!(field(&sock, "Appl. Name"), rec["info"]["app_name"].as_str());
    let stats = text_in(Some(&na), &["cat", &m.path(&format!("stats/{ours}"))]);
    assert_eq!(field(&stats, "Packets"), Some("25"), "{stats}");
    assert_eq!(field(&stats, "Bytes"), Some("2500"), "{stats}");
    assert!(field(&stats, "Duration").is_some(), "{stats}");
    // grep over every socket file, as monitoring scripts do with /proc/net/pf_ring
    let grep = text_in(
        Some(&na),
        &[
            "sh",
            "-c",
            &format!("grep -h 'Tot Packets' {}/*-*", m.path("")),
        ],
    );
    assert_eq!(grep.split_whitespace().last(), Some("25"), "{grep}");

    // tcpdump's file: foreign, with its owner
    let tfile = files_b.iter().find(|f| f.starts_with(&theirs)).unwrap();
    let t = text_in(Some(&nb), &["cat", &m.path(tfile)]);
    assert!(field(&t, "Foreign").unwrap().starts_with("yes"), "{t}");
    assert!(t.contains(&format!("tcpdump[{}]", td.pid())), "{t}");
    // a's reader cannot open b's file: it does not exist there
    assert!(!run_in(Some(&na), &["cat", &m.path(tfile)]).status.success());

    // another user reads it (allow_other)
    let nobody = text_in(
        None,
        &[
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "cat",
            &m.path("info"),
        ],
    );
    assert!(nobody.contains("Total rings"), "{nobody}");

    // a reader in a namespace that then disappears; the mount goes on
    let gone = text_in(None, &["unshare", "--net", "cat", &m.path("info")]);
    assert!(
        field(&gone, "Namespace").unwrap().starts_with("pid:"),
        "{gone}"
    );
    assert_eq!(field(&gone, "Total rings"), Some("0"));

    // files vanish with their sockets
    drop(count);
    drop(td);
    eventually("a's socket file to go", || {
        socket_files(&listing(Some(&na), &m.path(""))).is_empty()
    });
    eventually("b's socket file to go", || {
        socket_files(&listing(Some(&nb), &m.path(""))).is_empty()
    });
    assert!(listing(Some(&na), &m.path("stats")).is_empty());
    assert!(!run_in(Some(&na), &["cat", &m.path(&ours)]).status.success());
    assert!(text_in(None, &["cat", &m.path("info")]).contains("Total rings"));
}

#[test]
fn bad_mount_points_dead_mounts_and_clean_exit() {
    let nsring = |args: &[&str]| Command::new(NSRING).args(args).output().unwrap();
    let mut m = MountDir::new("life");

    // a missing mount point, a file
    let missing = m.path("nope");
    let o = nsring(&["mount", &missing]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not exist") && err.contains("mkdir"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let first = m.serve().pid();
    // in use by a live mount
    let o = nsring(&["mount", m.dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use"), "{err}");
    assert!(text_in(None, &["cat", &m.path("info")]).contains("Total rings"));

    // killed: the mount is dead (ENOTCONN) until the next 'nsring mount' clears it
    let dead = m.server.take().unwrap();
    drop(dead); // SIGKILL
    assert!(m.mounted(), "a killed server leaves its mount");
    let e = std::fs::read_dir(&m.dir).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    let mut cmd = Command::new(NSRING);
    cmd.arg("mount").arg(&m.dir);
    let second = start(cmd, "cleared a dead nsring mount", Stdio::null());
    assert_ne!(second.pid(), first);
    eventually("the new mount to serve", || {
        run_in(None, &["cat", &m.path("info")]).status.success()
    });
    // exactly one mount there now
    let n = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(m.dir.to_str().unwrap()))
        .count();
    assert_eq!(n, 1);

    // SIGTERM unmounts and exits 0, also with a reader holding a file open
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg(format!("exec sleep 30 < {}", m.path("info")))
        .spawn()
        .unwrap();
    eventually("the reader to hold the file", || {
        std::fs::read_dir(format!("/proc/{}/fd", holder.id()))
            .unwrap()
            .filter_map(Result::ok)
            .any(|f| std::fs::read_link(f.path()).is_ok_and(|p| p.ends_with(Path::new("info"))))
    });
    terminate(&second);
    let mut second = second;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = second.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "nsring mount did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!m.mounted(), "unmounted on SIGTERM");
    let _ = holder.kill();
    let _ = holder.wait();
    drop(second);
}
