//! Many namespaces at once (needs root): `count` and `dump` over patterns of lab namespaces,
//! exact counts per target, namespaces and interfaces that come and go while the capture
//! runs, pcapng files with interface blocks as interfaces join and statistics blocks as
//! they leave (read back by tcpdump and tshark), rotation with joins, resources that stay
//! bounded. Every pattern starts with the lab's own unique prefix, so nothing outside the
//! lab can match.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nsring_netns::lab::Lab;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nsring");
/// Generous: the machine is shared.
const WAIT: Duration = Duration::from_secs(20);

/// A lab with a generator namespace `g`; `attach` adds a namespace whose `eth0` is the peer
/// of `g`'s `v<short>`.
struct Net {
    lab: Lab,
}

impl Net {
    fn new(tag: &str) -> Net {
        let mut lab = Lab::new(tag);
        lab.netns("g");
        Net { lab }
    }

    fn name(&self, short: &str) -> String {
        self.lab.ns_name(short)
    }

    /// Namespace `short`, with `eth0` joined to the generator's `v<short>`.
    fn attach(&mut self, short: &str) -> String {
        self.lab.netns(short);
        self.lab.veth("g", &format!("v{short}"), short, "eth0");
        self.name(short)
    }

    /// Sends `n` frames of `len` bytes from the generator's `v<short>` to `short`'s eth0.
    fn send(&self, short: &str, n: u64, len: u32) {
        let out = Command::new(BIN)
            .args(["send", "-q", "-i"])
            .arg(format!("{}/v{short}", self.name("g")))
            .args(["-N", &n.to_string(), "-l", &len.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

/// A running `nsring count`/`dump` with `--json`: its stdout lines parsed as they come,
/// stderr kept; interrupted and reaped on drop.
struct Live {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    err: mpsc::Receiver<String>,
}

impl Live {
    fn start(args: &[&str]) -> Live {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&l).unwrap_or_else(|_| panic!("not JSON: {l}"));
                let _ = tx.send(v);
            }
        });
        let (etx, err) = mpsc::channel();
        let e = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(e).lines().map_while(Result::ok) {
                let _ = etx.send(l);
            }
        });
        Live {
            child,
            lines,
            seen: Vec::new(),
            err,
        }
    }

    /// Waits for a line of `kind` whose target is `target`; returns it.
    fn wait_for(&mut self, kind: &str, target: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        if let Some(v) = self
            .seen
            .iter()
            .find(|v| v["type"] == kind && v["target"] == target)
        {
            return v.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if v["type"] == kind && v["target"] == target {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no '{kind}' line for {target}; saw {:?}; stderr {:?}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> Vec<String> {
        self.err.try_iter().collect()
    }

    fn interrupt(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }

    /// Interrupts, waits for the exit; returns the exit code, every stdout line, stderr.
    fn finish(mut self) -> (i32, Vec<Value>, String) {
        self.interrupt();
        let deadline = Instant::now() + WAIT;
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "did not exit after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut all = std::mem::take(&mut self.seen);
        // the reader threads end with the pipes
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(5)) {
            all.push(v);
        }
        let err: Vec<String> = self.err.iter().collect();
        (code, all, err.join("\n"))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn finals(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|v| v["type"] == "final").collect()
}

fn final_of<'a>(lines: &'a [Value], target: &str) -> &'a Value {
    finals(lines)
        .into_iter()
        .find(|v| v["target"] == target)
        .unwrap_or_else(|| panic!("no final line for {target}: {lines:?}"))
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_pattern_counts_every_namespace_exactly() {
    let mut net = Net::new("pattern");
    let c: Vec<String> = ["c1", "c2", "c3"].iter().map(|s| net.attach(s)).collect();
    net.attach("x1"); // not matched: its name does not start with -c
    let pattern = format!("{}-c*/eth0", net.lab.prefix());
    let mut live = Live::start(&["count", "-i", &pattern, "--json", "--interval", "0.5"]);
    for name in &c {
        let open = live.wait_for("open", &format!("{name}/eth0"));
        assert_eq!(open["ring_bytes"], 1 << 20);
    }
    for (short, n) in [("c1", 10), ("c2", 20), ("c3", 30), ("x1", 5)] {
        net.send(short, n, 100);
    }
    // the packets are in the per-interval lines before the end
    let deadline = Instant::now() + WAIT;
    while live
        .seen
        .iter()
        .rev()
        .find(|v| v["type"] == "total")
        .is_none_or(|v| v["packets"] != 60)
    {
        assert!(Instant::now() < deadline, "{:?}", live.seen);
        if let Ok(v) = live.lines.recv_timeout(Duration::from_millis(200)) {
            live.seen.push(v);
        }
    }
    let (code, lines, err) = live.finish();
    assert_eq!(code, 0, "{err}");
    for (name, n) in c.iter().zip([10u64, 20, 30]) {
        let f = final_of(&lines, &format!("{name}/eth0"));
        assert_eq!(f["packets"], n, "{f}");
        assert_eq!(f["bytes"], n * 100, "{f}");
        assert_eq!(f["drops"], 0);
        assert_eq!(f["reason"], "stopped");
    }
    assert_eq!(finals(&lines).len(), 3, "x1 is not matched: {lines:?}");
    let total = lines.iter().find(|v| v["type"] == "final_total").unwrap();
    assert_eq!(total["packets"], 60);
    assert_eq!(total["opened"], 3);
}

#[test]
fn the_text_table_has_a_row_per_capture_and_the_total() {
    let mut net = Net::new("table");
    let a = net.attach("t1");
    let b = net.attach("t2");
    let pattern = format!("{}-t*/eth0", net.lab.prefix());
    let mut cmd = Command::new(BIN);
    cmd.args(["count", "-i", &pattern, "--duration", "30", "-N", "12"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let mut lines = err.lines().map_while(Result::ok);
    // the banner, then both captures open
    let mut opened = 0;
    for l in lines.by_ref() {
        if l.contains("nsring count: opened") {
            opened += 1;
            if opened == 2 {
                break;
            }
        }
    }
    net.send("t1", 5, 60);
    net.send("t2", 7, 60);
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success());
    // the final table: from the last line that opens one to the end
    let start = rest
        .iter()
        .rposition(|l| l.starts_with("========================= "))
        .unwrap_or_else(|| panic!("no table: {rest:?}"));
    let last = rest[start..].join("\n");
    let text = rest.join("\n");
    for (name, n) in [(&a, "5"), (&b, "7")] {
        assert!(
            last.lines()
                .any(|l| l.starts_with(name.as_str()) && l.split_whitespace().nth(2) == Some(n)),
            "{name}: {text}"
        );
    }
    assert!(
        last.lines()
            .any(|l| l.starts_with("TOTAL") && l.contains(" 12 ")),
        "{text}"
    );
}

#[test]
fn a_namespace_made_later_is_followed_and_its_end_is_clean() {
    let mut net = Net::new("follow");
    let pattern = format!("{}-n*/eth0", net.lab.prefix());
    let mut live = Live::start(&["count", "-i", &pattern, "--json", "--follow"]);
    // nothing matches yet: said once, and the capture keeps following
    let deadline = Instant::now() + WAIT;
    let mut err = Vec::new();
    while !err.iter().any(|l: &String| l.contains("nothing matches")) {
        assert!(Instant::now() < deadline, "{err:?}");
        err.extend(live.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let name = net.attach("n1");
    let made = Instant::now();
    let target = format!("{name}/eth0");
    live.wait_for("open", &target);
    let took = made.elapsed();
    assert!(took < Duration::from_secs(1), "captured after {took:?}");
    net.send("n1", 25, 200);
    let inode = nsring_netns::NetNs::open_str(&name).unwrap().inode();
    // deleted: nsring holds it no more than a moment, and says so with the final counts
    net.lab.remove("n1");
    let close = live.wait_for("close", &target);
    assert_eq!(close["reason"], "namespace gone", "{close}");
    assert_eq!(close["packets"], 25);
    assert_eq!(close["bytes"], 25 * 200);
    // the kernel tears it down: the generator's end of the veth goes with it
    let g = nsring_netns::NetNs::open_str(&net.name("g")).unwrap();
    let deadline = Instant::now() + WAIT;
    while nsring_netns::link::get(&g, "vn1").is_ok() {
        assert!(Instant::now() < deadline, "the namespace was not torn down");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !Path::new(&format!("/run/nsring/{inode}")).exists(),
        "its registry directory is left"
    );
    // and the capture goes on following
    let name2 = net.attach("n2");
    live.wait_for("open", &format!("{name2}/eth0"));
    net.send("n2", 3, 60);
    let (code, lines, err) = live.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(final_of(&lines, &format!("{name2}/eth0"))["packets"], 3);
    assert_eq!(final_of(&lines, &target)["packets"], 25);
}

#[test]
fn an_interface_moved_away_ends_its_capture_only() {
    let mut net = Net::new("moved");
    let m = net.attach("m1");
    net.lab.veth("g", "wm1", "m1", "eth1");
    net.lab.netns("y"); // where eth1 goes: not matched
    let pattern = format!("{m}/eth*");
    let mut live = Live::start(&["count", "-i", &pattern, "--json"]);
    live.wait_for("open", &format!("{m}/eth0"));
    live.wait_for("open", &format!("{m}/eth1"));
    let out = Command::new(BIN)
        .args(["send", "-q", "-N", "5", "-i"])
        .arg(format!("{}/wm1", net.name("g")))
        .output()
        .unwrap();
    assert!(out.status.success());
    let deadline = Instant::now() + WAIT;
    while !live
        .seen
        .iter()
        .any(|v| v["type"] == "stats" && v["target"] == format!("{m}/eth1") && v["packets"] == 5)
    {
        assert!(Instant::now() < deadline, "{:?}", live.seen);
        if let Ok(v) = live.lines.recv_timeout(Duration::from_millis(200)) {
            live.seen.push(v);
        }
    }
    nsring_netns::link::set_netns(net.lab.ns("m1"), "eth1", net.lab.ns("y")).unwrap();
    let close = live.wait_for("close", &format!("{m}/eth1"));
    assert_eq!(close["reason"], "interface removed or moved away");
    assert_eq!(close["packets"], 5);
    net.send("m1", 7, 60);
    let (code, lines, err) = live.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(final_of(&lines, &format!("{m}/eth0"))["packets"], 7);
    assert_eq!(final_of(&lines, &format!("{m}/eth1"))["packets"], 5);
}

#[test]
fn patterns_that_cannot_be_captured_as_written_are_usage_errors() {
    let net = Net::new("usage");
    let nothing = format!("{}-zz*/eth0", net.lab.prefix());
    let (code, err) = run(&["count", "-i", &nothing, "--duration", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("nothing matches") && err.contains("--follow"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, err) = run(&[
        "dump",
        "-i",
        &nothing,
        "--format",
        "pcap",
        "-w",
        "/dev/null",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--format pcapng"), "{err}");
    let (code, err) = run(&["count", "-i", "eth0", "--include-host"]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = run(&["count", "--all-netns", "-i", "ns0/eth0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn other_link_types_are_skipped_and_the_budget_refuses_with_a_note() {
    let mut net = Net::new("skip");
    let k1 = net.attach("k1");
    let k2 = net.attach("k2");
    let st = Command::new("ip")
        .args(["-n", &k1, "tuntap", "add", "dev", "tun0", "mode", "tun"])
        .status()
        .unwrap();
    assert!(st.success());
    let pattern = format!("{}-k*/*", net.lab.prefix());
    // one MiB: the first capture's whole ring; the other is refused
    let mut live = Live::start(&["count", "-i", &pattern, "--json", "--ring-budget", "1"]);
    let deadline = Instant::now() + WAIT;
    let mut err: Vec<String> = Vec::new();
    while !(err
        .iter()
        .any(|l| l.contains("tun0") && l.contains("not Ethernet"))
        && err.iter().any(|l| l.contains("--ring-budget")))
    {
        assert!(Instant::now() < deadline, "{err:?}");
        err.extend(live.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = err.iter().find(|l| l.contains("--ring-budget")).unwrap();
    let (taken, other) = if refused.contains(&format!("{k2}/eth0")) {
        (&k1, &k2)
    } else {
        (&k2, &k1)
    };
    assert!(refused.contains(&format!("{other}/eth0")), "{refused}");
    live.wait_for("open", &format!("{taken}/eth0"));
    let (code, lines, err) = live.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(finals(&lines).len(), 1, "{lines:?}");
    assert!(
        !err.contains("lo:"),
        "lo is never taken by a pattern: {err}"
    );
}

// --- dump ------------------------------------------------------------------------------

/// A private directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("nsrt-multi-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_all(
    path: &Path,
) -> (
    Vec<nsring_pcap::OwnedPacket>,
    Vec<nsring_pcap::InterfaceInfo>,
) {
    let f = std::fs::File::open(path).unwrap();
    let mut r = nsring_pcap::CaptureReader::open(BufReader::new(f)).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push(p.to_owned_packet());
    }
    (v, r.interfaces().to_vec())
}

/// Runs tcpdump or tshark on a file; checks it says nothing on stderr; returns stdout.
fn read_with(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let err: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("reading from file"))
        .filter(|l| !l.contains("Running as user \"root\""))
        .collect();
    assert!(out.status.success(), "{prog} {args:?}: {err:?}");
    assert!(err.is_empty(), "{prog} {args:?} warned: {err:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dump_adds_interfaces_as_they_join_and_statistics_as_they_leave() {
    let mut net = Net::new("dumpjoin");
    let d1 = net.attach("d1");
    let dir = TempDir::new("join");
    let file = dir.path("j.pcapng");
    let f = file.to_str().unwrap();
    let pattern = format!("{}-d*/eth0", net.lab.prefix());
    let mut live = Live::start(&["dump", "-i", &pattern, "--json", "-w", f]);
    live.wait_for("open", &format!("{d1}/eth0"));
    let d2 = net.attach("d2");
    live.wait_for("open", &format!("{d2}/eth0"));
    net.send("d1", 10, 100);
    net.send("d2", 20, 300);
    net.lab.remove("d2");
    let close = live.wait_for("close", &format!("{d2}/eth0"));
    assert_eq!(close["packets"], 20);
    net.send("d1", 5, 100);
    let (code, lines, err) = live.finish();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("35 packets captured, 0 dropped by kernel"),
        "{err}"
    );
    let close1 = lines
        .iter()
        .find(|v| v["type"] == "close" && v["target"] == format!("{d1}/eth0"))
        .unwrap();
    assert_eq!(close1["packets"], 15);

    let (pkts, ifs) = read_all(&file);
    assert_eq!(ifs.len(), 2);
    for (i, (name, n, len)) in [(&d1, 15u64, 100usize), (&d2, 20, 300)].iter().enumerate() {
        assert_eq!(ifs[i].name.as_deref(), Some("eth0"));
        let desc = ifs[i].description.as_deref().unwrap();
        assert!(desc.starts_with(&format!("netns {name} (inode ")), "{desc}");
        let mine: Vec<_> = pkts.iter().filter(|p| p.interface == i as u32).collect();
        assert_eq!(mine.len() as u64, *n);
        assert!(mine.iter().all(|p| p.data.len() == *len));
        let st = ifs[i].stats.as_ref().expect("a statistics block");
        assert_eq!(st.ifrecv, Some(*n));
        assert_eq!(st.usrdeliv, Some(*n));
        assert_eq!(st.ifdrop, Some(0));
    }
    let out = read_with("tcpdump", &["-n", "-r", f]);
    assert_eq!(out.lines().count(), 35);
    let out = read_with(
        "tshark",
        &["-r", f, "-T", "fields", "-e", "frame.interface_description"],
    );
    assert_eq!(out.lines().filter(|l| l.contains(&d2)).count(), 20);
}

#[test]
fn rotation_starts_each_file_with_the_interfaces_still_open() {
    let mut net = Net::new("rotjoin");
    let r1 = net.attach("r1");
    let r2 = net.attach("r2");
    let dir = TempDir::new("rot");
    let base = dir.path("r.pcapng");
    let pattern = format!("{}-r*/eth0", net.lab.prefix());
    let mut live = Live::start(&[
        "dump",
        "-i",
        &pattern,
        "--json",
        "--blocks",
        "8",
        "-C",
        "1",
        "-w",
        base.to_str().unwrap(),
    ]);
    live.wait_for("open", &format!("{r1}/eth0"));
    live.wait_for("open", &format!("{r2}/eth0"));
    net.send("r2", 4, 100);
    net.lab.remove("r2");
    live.wait_for("close", &format!("{r2}/eth0"));
    // 1100 x 1000 bytes: past one million, so a second file
    net.send("r1", 1100, 1000);
    let r3 = net.attach("r3");
    live.wait_for("open", &format!("{r3}/eth0"));
    net.send("r3", 3, 100);
    let (code, _, err) = live.finish();
    assert_eq!(code, 0, "{err}");
    let (p0, i0) = read_all(&base);
    let second = dir.path("r.pcapng1");
    let (p1, i1) = read_all(&second);
    assert!(!dir.path("r.pcapng2").exists());
    // the first file: r1 and r2 from the start; r2's statistics when it left
    assert_eq!(i0.len(), 2);
    assert!(i0[1].description.as_deref().unwrap().contains(&r2));
    assert_eq!(i0[1].stats.as_ref().unwrap().ifrecv, Some(4));
    // the second: r1, still open, first; then r3, which joined
    assert_eq!(i1.len(), 2, "{i1:?}");
    assert!(i1[0].description.as_deref().unwrap().contains(&r1));
    assert!(i1[1].description.as_deref().unwrap().contains(&r3));
    let n = |p: &[nsring_pcap::OwnedPacket], i: u32| p.iter().filter(|x| x.interface == i).count();
    assert_eq!(n(&p0, 1), 4);
    assert_eq!(n(&p0, 0) + n(&p1, 0), 1100);
    assert_eq!(n(&p1, 1), 3);
    for f in [&base, &second] {
        read_with("tcpdump", &["-n", "-r", f.to_str().unwrap()]);
        read_with("tshark", &["-r", f.to_str().unwrap()]);
    }
}

// --- resources -------------------------------------------------------------------------

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The registry directories of these namespaces that exist.
fn nsring_dirs(inodes: &[u64]) -> usize {
    inodes
        .iter()
        .filter(|i| Path::new(&format!("/run/nsring/{i}")).exists())
        .count()
}

#[test]
fn resources_stay_bounded_as_targets_grow_and_come_back() {
    let mut net = Net::new("bounded");
    let pattern = format!("{}-s*/eth0", net.lab.prefix());
    let live = Live::start(&["count", "-i", &pattern, "--json", "--follow", "-q"]);
    let mut live = live;
    let pid = live.child.id();
    // wait until it runs (the note that nothing matches yet)
    let deadline = Instant::now() + WAIT;
    let mut err: Vec<String> = Vec::new();
    while !err.iter().any(|l| l.contains("nothing matches")) {
        assert!(Instant::now() < deadline, "{err:?}");
        err.extend(live.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (fd0, threads0) = (fds(pid), status(pid, "Threads:"));
    let mut inodes = Vec::new();
    let mut names = Vec::new();
    let mut at = Vec::new();
    for round in 0..2 {
        for k in 0..8 {
            let short = format!("s{round}{k}");
            let name = net.attach(&short);
            names.push((short, name));
        }
        for (_, name) in &names {
            let open = live.wait_for("open", &format!("{name}/eth0"));
            inodes.push(open["netns_inode"].as_u64().unwrap());
        }
        at.push((fds(pid), status(pid, "Threads:"), status(pid, "VmRSS:")));
    }
    // per capture: the packet socket, its wake eventfd and registry record, the namespace's
    // handle and link socket: a handful, the same for every one
    let per = |(f, _, _): (usize, u64, u64), n: usize| (f - fd0) as f64 / n as f64;
    assert!(per(at[0], 8) <= 8.0, "{at:?} from {fd0}");
    assert!((at[1].0 - at[0].0) <= 8 * 8, "{at:?}");
    assert_eq!(at[0].1, threads0, "a thread per capture?");
    assert_eq!(at[1].1, threads0, "a thread per capture?");
    // 16 rings of 1 MiB, mapped but mostly untouched; the rest is small
    assert!(at[1].2 < 64 << 10, "RSS {} KiB", at[1].2);
    for (short, name) in &names {
        net.lab.remove(short);
        live.wait_for("close", &format!("{name}/eth0"));
    }
    // everything back where it started
    let deadline = Instant::now() + WAIT;
    while fds(pid) != fd0 || nsring_dirs(&inodes) > 0 {
        assert!(
            Instant::now() < deadline,
            "fds {} (start {fd0}), /run/nsring directories left: {}",
            fds(pid),
            nsring_dirs(&inodes)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(pid, "Threads:"), threads0);
    let (code, _, err) = live.finish();
    assert_eq!(code, 0, "{err}");
}

/// `--all-netns` in a sandbox of its own (private mount and PID namespaces, a tmpfs over
/// /run/netns, the host's nsfs mounts unmounted there): every namespace but the initial one,
/// named or held only by a process, one made after the start too; one whose process exits
/// is let go with its final counts.
#[test]
fn all_netns_takes_every_namespace_but_the_initial_one() {
    let p = format!("nsrt-{}-allnetns", std::process::id());
    let script = format!(
        r#"set -e
awk '$9 == "nsfs" {{ print $5 }}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
mkdir -p /run/netns
mount -t tmpfs nsrt-test /run/netns
v6off='sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1'
mk() {{
  ip netns add "$1"
  ip netns exec "$1" $v6off
  ip -n "$1" link add a0 type veth peer name b0
  ip -n "$1" link set a0 up
  ip -n "$1" link set b0 up
}}
opens() {{ grep -c '"type":"open"' "$out" || true; }}
until_n() {{ for i in $(seq 200); do [ "$(grep -c "$1" "$out" || true)" -ge "$2" ] && return 0; sleep 0.05; done; echo "timed out waiting for $2 x $1" >&2; cat "$out" >&2; exit 1; }}
out=$(mktemp)
mk {p}-a
unshare -n sh -c "$v6off; ip link add a0 type veth peer name b0; ip link set a0 up; ip link set b0 up; exec sleep 120" &
anon=$!
sleep 0.3
{bin} count --all-netns -i b0 --json -q > "$out" &
c=$!
until_n '"type":"open"' 2
mk {p}-b
until_n '"type":"open"' 3
{bin} send -q -i {p}-a/a0 -N 10 -l 100
{bin} send -q -i {p}-b/a0 -N 20 -l 100
{bin} send -q -i pid:$anon/a0 -N 30 -l 100
sleep 0.3
kill $anon
until_n '"type":"close"' 1
kill -INT $c
wait $c
cat "$out"
"#,
        bin = BIN
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "bash",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let opens: Vec<&Value> = lines.iter().filter(|v| v["type"] == "open").collect();
    assert_eq!(opens.len(), 3, "{lines:?}");
    assert!(
        opens
            .iter()
            .all(|v| v["netns_inode"] != nsring_netns::PROC_NET_INIT_INO),
        "the initial namespace is taken: {opens:?}"
    );
    let f = |t: &str| final_of(&lines, t)["packets"].as_u64().unwrap();
    assert_eq!(f(&format!("{p}-a/b0")), 10);
    assert_eq!(f(&format!("{p}-b/b0")), 20);
    let anon = finals(&lines)
        .into_iter()
        .find(|v| v["netns"].as_str().unwrap().starts_with("pid:"))
        .unwrap_or_else(|| panic!("no capture in the process's namespace: {lines:?}"));
    assert_eq!(anon["packets"], 30);
    assert_eq!(anon["reason"], "namespace gone");
}
