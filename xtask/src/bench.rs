//! `cargo xtask bench`: nsring against tcpdump on a veth lab, in one run (DESIGN.md,
//! "Benchmark method").
//!
//! A lab of two namespaces joined by one veth pair; a generator bounded by count sends into
//! it from the sender namespace (pinned to CPU 0); capturers run one after another on the
//! receiving end (pinned to CPU 1), each repeated, on the same generator settings. Reported per
//! capturer and frame size: generated pps (the sender's own count and time), what the sender
//! keeps of its no-capture rate, captured pps, captured/generated, kernel drop %, and the
//! capturer's CPU time (getrusage of the child) per packet. Medians with min/max.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sh::{Sh, fail};
use crate::{BENCH_PKGS, install, require_root, root};

const HELP: &str = "\
usage: cargo xtask bench [--packets N] [--reps R] [--sizes 64,1514] [--json FILE]
                         [--capturers LIST] [--generators LIST] [--rate PPS]
                         [--file-dir DIR] [--forwarders LIST] [--suites LIST]
                         [--namespaces N] [--scale-pps PPS] [--scale-secs S] [--churn N]
                         [--procs N] [-v]

  --packets N      packets per run (default 5000000)
  --reps R         repetitions of every (generator, capturer, size) (default 3)
  --sizes LIST     frame sizes in bytes without FCS, 60..=1514 (default 64,1514)
  --capturers LIST some of: none,nsring,nsring-noreg,tcpdump,nsring-fanout2,nsring-dump,
                   tcpdump-file,kernel,kernel-filter (default all); nsring is count on the
                   ring, nsring-noreg the same without the registry; kernel is count
                   --backend kernel, kernel-filter the same with -f 'udp port 9' (every
                   frame matches); nsring-dump and tcpdump-file write every packet to a
                   file (--file-dir)
  --generators LIST some of: trafgen,nsring-send (default both, each with every capturer)
  --rate PPS       also check that `nsring send --pps PPS` holds its rate: 10 s of 64-byte
                   frames, the receiver's counter read every second (default 100000; 0: skip)
  --json FILE      also write the results as JSON
  --file-dir DIR   where the file capturers write (default /dev/shm)
  --forwarders LIST some of: nsring-bridge,tc-mirred (default both; none: skip): trafgen
                   sends --packets frames through a bridge namespace, the receiver counts
                   what came out (tc-mirred is the kernel forwarding by itself)
  --suites LIST    some of: veth,bridge,scale,churn,discovery (default all)
  --namespaces N   scale: lab namespaces, each with a veth pair and traffic (default 100)
  --scale-pps PPS  scale: 1514-byte frames per second in each namespace (default 1000)
  --scale-secs S   scale: seconds of traffic (default 10)
  --churn N        churn: namespaces made, sent traffic and deleted (default 200)
  --procs N        discovery: sleeping processes in the sandbox's /proc (default 4000)
  -v, --verbose    also print every run's numbers as it ends

The lab is two namespaces nsrt-b<pid>-tx / -rx joined by a veth pair (198.18.0.1/.2);
the sender is pinned to CPU 0, capturers to CPU 1. Needs root; installs netsniff-ng (trafgen)
and tcpdump if missing. With file capturers, virtio-balloon free page reporting is off for
the run (restored after), and each file run starts on memory touched just before; see
docs/DESIGN.md, \"Benchmark method\".

Many namespaces (issue 9): scale runs one `nsring dump` over 'nsrt-m<pid>-s-*/b0' against one
`tcpdump -w` per namespace, one after the other, alternating which goes first (--reps each);
churn makes, feeds and deletes namespaces under one `nsring dump --follow`; discovery runs
`nsring count --all-netns` in a private mount and PID namespace with --procs processes and 0.";

mod bridge;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

#[derive(Debug, Clone)]
struct Opts {
    packets: u64,
    reps: usize,
    sizes: Vec<usize>,
    capturers: Vec<Capturer>,
    generators: Vec<Generator>,
    json: Option<String>,
    rate: u64,
    file_dir: Option<String>,
    forwarders: Vec<bridge::Forwarder>,
    verbose: bool,
    suites: Vec<String>,
    namespaces: usize,
    scale_pps: u64,
    scale_secs: f64,
    churn: usize,
    procs: usize,
}

const SUITES: [&str; 5] = ["veth", "bridge", "scale", "churn", "discovery"];

/// What drives the lab: netsniff-ng's trafgen, or `nsring send` (same frames, both
/// bypassing the qdisc, as trafgen does by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generator {
    Trafgen,
    NsringSend,
}

impl Generator {
    const ALL: [Generator; 2] = [Generator::Trafgen, Generator::NsringSend];

    fn name(self) -> &'static str {
        match self {
            Generator::Trafgen => "trafgen",
            Generator::NsringSend => "nsring-send",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capturer {
    None,
    Nsring,
    Tcpdump,
    NsringFanout2,
    /// `nsring dump -w FILE`.
    NsringDump,
    /// `tcpdump -w FILE`.
    TcpdumpFile,
    /// `nsring count --no-registry`: the registry's cost, against `nsring`.
    NsringNoRegistry,
    /// `nsring count --backend kernel`: counted by eBPF at the interface, nothing copied.
    Kernel,
    /// The same with a filter (`udp port 9`, which every generated frame matches).
    KernelFilter,
}

impl Capturer {
    const ALL: [Capturer; 9] = [
        Capturer::None,
        Capturer::Nsring,
        Capturer::NsringNoRegistry,
        Capturer::Tcpdump,
        Capturer::NsringFanout2,
        Capturer::NsringDump,
        Capturer::TcpdumpFile,
        Capturer::Kernel,
        Capturer::KernelFilter,
    ];

    /// `nsring dump -w FILE` or `tcpdump -w FILE`.
    fn writes_file(self) -> bool {
        matches!(self, Capturer::NsringDump | Capturer::TcpdumpFile)
    }

    fn name(self) -> &'static str {
        match self {
            Capturer::None => "none",
            Capturer::Nsring => "nsring",
            Capturer::Tcpdump => "tcpdump",
            Capturer::NsringFanout2 => "nsring-fanout2",
            Capturer::NsringDump => "nsring-dump",
            Capturer::TcpdumpFile => "tcpdump-file",
            Capturer::NsringNoRegistry => "nsring-noreg",
            Capturer::Kernel => "kernel",
            Capturer::KernelFilter => "kernel-filter",
        }
    }
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        packets: 5_000_000,
        reps: 3,
        sizes: vec![64, 1514],
        capturers: Capturer::ALL.to_vec(),
        generators: Generator::ALL.to_vec(),
        json: None,
        rate: 100_000,
        file_dir: None,
        forwarders: bridge::Forwarder::ALL.to_vec(),
        verbose: false,
        suites: SUITES.iter().map(|s| s.to_string()).collect(),
        namespaces: 100,
        scale_pps: 1000,
        scale_secs: 10.0,
        churn: 200,
        procs: 4000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--packets" => {
                o.packets = val("--packets")?
                    .parse()
                    .map_err(|_| "--packets needs a positive number".to_string())?
            }
            "--reps" => {
                o.reps = val("--reps")?
                    .parse()
                    .map_err(|_| "--reps needs a positive number".to_string())?
            }
            "--sizes" => {
                o.sizes = val("--sizes")?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--sizes needs numbers like 64,1514".to_string())?;
                if o.sizes.iter().any(|s| !(60..=1514).contains(s)) {
                    return fail("--sizes: frame sizes must be within 60..=1514");
                }
            }
            "--capturers" => {
                let v = val("--capturers")?;
                o.capturers = v
                    .split(',')
                    .map(|c| {
                        Capturer::ALL
                            .into_iter()
                            .find(|k| k.name() == c.trim())
                            .ok_or_else(|| format!("unknown capturer '{c}'"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--generators" => {
                let v = val("--generators")?;
                o.generators = v
                    .split(',')
                    .map(|g| {
                        Generator::ALL
                            .into_iter()
                            .find(|k| k.name() == g.trim())
                            .ok_or_else(|| format!("unknown generator '{g}'"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--forwarders" => {
                let v = val("--forwarders")?;
                o.forwarders = if v == "none" {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|f| {
                            bridge::Forwarder::ALL
                                .into_iter()
                                .find(|k| k.name() == f.trim())
                                .ok_or_else(|| format!("unknown forwarder '{f}'"))
                        })
                        .collect::<Result<_, _>>()?
                };
            }
            "--json" => o.json = Some(val("--json")?),
            "--file-dir" => o.file_dir = Some(val("--file-dir")?),
            "-v" | "--verbose" => o.verbose = true,
            "--suites" => {
                o.suites = val("--suites")?
                    .split(',')
                    .map(|x| x.trim().to_string())
                    .collect();
                if let Some(bad) = o.suites.iter().find(|x| !SUITES.contains(&x.as_str())) {
                    return fail(format!("unknown suite '{bad}': use {}", SUITES.join(",")));
                }
            }
            "--namespaces" | "--scale-pps" | "--churn" | "--procs" => {
                let n: u64 = val(a)?
                    .parse()
                    .map_err(|_| format!("{a} needs a positive number"))?;
                match a.as_str() {
                    "--namespaces" => o.namespaces = n as usize,
                    "--scale-pps" => o.scale_pps = n,
                    "--churn" => o.churn = n as usize,
                    _ => o.procs = n as usize,
                }
            }
            "--scale-secs" => {
                o.scale_secs = val(a)?
                    .parse()
                    .ok()
                    .filter(|x: &f64| *x > 0.0)
                    .ok_or_else(|| "--scale-secs needs a positive number".to_string())?
            }
            "--rate" => {
                o.rate = val("--rate")?
                    .parse()
                    .map_err(|_| "--rate needs a number of packets per second".to_string())?
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => return fail(format!("unknown option '{other}'\n{HELP}")),
        }
    }
    if o.packets == 0 || o.reps == 0 {
        return fail("--packets and --reps must be positive");
    }
    Ok(o)
}

/// The lab: two namespaces and a veth pair, removed on drop (also after Ctrl-C).
struct Lab {
    tx: String,
    rx: String,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let pid = std::process::id();
        let lab = Lab {
            tx: format!("nsrt-b{pid}-tx"),
            rx: format!("nsrt-b{pid}-rx"),
        };
        let sh = Sh::new();
        for ns in [&lab.tx, &lab.rx] {
            sh.output("ip", &["netns", "add", ns])?;
            // No IPv6 autoconfiguration noise on the lab link.
            sh.output(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                ],
            )?;
            sh.output(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
        }
        sh.output(
            "ip",
            &[
                "-n", &lab.tx, "link", "add", "tx0", "type", "veth", "peer", "rx0", "netns",
                &lab.rx,
            ],
        )?;
        sh.output(
            "ip",
            &["-n", &lab.tx, "addr", "add", "198.18.0.1/30", "dev", "tx0"],
        )?;
        sh.output(
            "ip",
            &["-n", &lab.rx, "addr", "add", "198.18.0.2/30", "dev", "rx0"],
        )?;
        sh.output("ip", &["-n", &lab.tx, "link", "set", "tx0", "up"])?;
        sh.output("ip", &["-n", &lab.rx, "link", "set", "rx0", "up"])?;
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.tx, &self.rx] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A trafgen configuration: Ethernet/IPv4/UDP 198.18.0.1 → 198.18.0.2, port 9, `size` bytes.
fn trafgen_conf(size: usize) -> String {
    let ip_len = size - 14;
    let udp_len = ip_len - 20;
    let payload = udp_len - 8;
    format!(
        "{{\n  0x02, 0x00, 0x5e, 0x00, 0x00, 0x02,\n  0x02, 0x00, 0x5e, 0x00, 0x00, 0x01,\n  0x08, 0x00,\n  \
         0x45, 0x00, const16({ip_len}), const16(0), const16(0x4000), 64, 17, csumip(14, 33),\n  \
         198, 18, 0, 1, 198, 18, 0, 2,\n  const16(9), const16(9), const16({udp_len}), const16(0),\n  \
         fill(0x00, {payload}),\n}}\n"
    )
}

/// One capturer process, with its stderr collected by a thread.
struct Proc {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl Proc {
    fn spawn(mut cmd: Command, ready: &str, timeout: Duration) -> Result<Proc, String> {
        let prog = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {prog}: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = child.stdout.take().expect("piped");
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let mut p = Proc {
            child,
            stderr: rx,
            stdout,
        };
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.stderr.recv_timeout(left) {
                Ok(line) if line.contains(ready) => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    return fail(format!("{prog} did not become ready: {}", seen.join(" | ")));
                }
            }
        }
        Ok(p)
    }

    /// SIGINT, then wait4 for the exit status and the child's resource usage.
    fn stop(self) -> Result<Finished, String> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a PID of our own un-reaped child: the PID cannot be reused yet.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid pointers to status and rusage.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r != pid {
            return fail(format!("wait4 failed: {}", std::io::Error::last_os_error()));
        }
        let stdout = self.stdout.join().unwrap_or_default();
        let stderr: Vec<String> = self.stderr.try_iter().collect();
        let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
        let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if !ok {
            return fail(format!(
                "capturer exited with status {status:#x}: {}",
                stderr.join(" | ")
            ));
        }
        Ok(Finished {
            stdout,
            stderr: stderr.join("\n"),
            cpu_s: cpu,
        })
    }
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

struct Finished {
    stdout: String,
    stderr: String,
    cpu_s: f64,
}

/// What one capturer run measured.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    gen_pps: f64,
    captured: u64,
    drops: u64,
    cpu_s: f64,
    elapsed_s: f64,
}

fn nsring_bin() -> String {
    root()
        .join("target/release/nsring")
        .to_string_lossy()
        .into_owned()
}

/// Where the file capturers write (`--file-dir`, /dev/shm by default: RAM, so no disk is
/// measured); their files are removed after each run.
struct FileDir {
    path: std::path::PathBuf,
}

impl FileDir {
    fn new(dir: &str) -> Result<FileDir, String> {
        let path = std::path::PathBuf::from(dir);
        if !path.is_dir() {
            return fail(format!("--file-dir {dir}: not a directory"));
        }
        Ok(FileDir { path })
    }

    fn file(&self, c: Capturer) -> String {
        self.path
            .join(format!("nsring-bench-{}-{}", std::process::id(), c.name()))
            .to_string_lossy()
            .into_owned()
    }

    /// Touches `bytes` of memory through a file here, then frees it: the first time a VM
    /// uses memory, the host has to back it, which costs far more than the write. Done
    /// before every file run (with [`KeepFreedMemory`] on), so each finds memory the guest
    /// has just used.
    fn warm(&self, bytes: u64) -> Result<(), String> {
        let path = self
            .path
            .join(format!("nsring-bench-{}-warm", std::process::id()));
        let c = std::ffi::CString::new(self.path.to_string_lossy().as_bytes())
            .map_err(|_| "the file directory has a NUL in its name".to_string())?;
        // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a valid pointer to a statvfs to fill in.
        let known = unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0;
        // Leave a tenth free.
        let room = st.f_bavail as u64 * st.f_frsize as u64 / 10 * 9;
        fill_and_free(
            &path.to_string_lossy(),
            if known { bytes.min(room) } else { bytes },
        )
    }
}

const REPORTING_ORDER: &str = "/sys/module/page_reporting/parameters/page_reporting_order";

/// Free page reporting off for the bench, restored on drop.
///
/// With virtio-balloon free page reporting (on in these VMs), memory the guest has freed for
/// a couple of seconds goes back to the host, and the next use of it faults into the host
/// again. A file capturer allocates a page-cache page for every 4 KiB it writes, so with
/// reporting on, both file capturers spend most of their time in the host, and `dd` to
/// /dev/shm moves 0.4–2 GB/s, differently from run to run; with it off, a steady 2.3–2.7
/// GB/s. Reporting is turned off by raising its minimum order past the largest one
/// (the number of orders in /proc/buddyinfo).
struct KeepFreedMemory {
    old: Option<String>,
}

impl KeepFreedMemory {
    fn new() -> KeepFreedMemory {
        let Ok(old) = std::fs::read_to_string(REPORTING_ORDER) else {
            return KeepFreedMemory { old: None }; // no free page reporting here
        };
        let orders = std::fs::read_to_string("/proc/buddyinfo")
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.split_whitespace().count()))
            .map_or(11, |words| words.saturating_sub(4)); // "Node 0, zone NAME" and counts
        match std::fs::write(REPORTING_ORDER, orders.to_string()) {
            Ok(()) => {
                eprintln!(
                    "bench: free page reporting off during the run (it was order {}; restored after)",
                    old.trim()
                );
                KeepFreedMemory { old: Some(old) }
            }
            Err(e) => {
                eprintln!(
                    "bench: cannot turn free page reporting off ({e}); the file capturers' numbers include the host backing memory again"
                );
                KeepFreedMemory { old: None }
            }
        }
    }
}

impl Drop for KeepFreedMemory {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            let _ = std::fs::write(REPORTING_ORDER, old.trim());
        }
    }
}

fn fill_and_free(path: &str, bytes: u64) -> Result<(), String> {
    use std::io::Write;
    let result = (|| {
        let mut f = std::fs::File::create(path)?;
        let chunk = vec![0x5au8; 1 << 20];
        let mut left = bytes;
        while left > 0 && !STOP.load(Ordering::SeqCst) {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        Ok::<(), std::io::Error>(())
    })();
    let _ = std::fs::remove_file(path);
    result.map_err(|e| format!("cannot warm memory through {path}: {e}"))
}

/// What a file capturer writes in one run, at most (packets of `size` plus pcapng framing).
fn file_bytes(packets: u64, size: usize) -> u64 {
    packets * (size as u64 + 48)
}

fn start_capturers(c: Capturer, lab: &Lab, files: &FileDir) -> Result<Vec<Proc>, String> {
    let iface = format!("{}/rx0", lab.rx);
    let nsring = |extra: &[&str]| -> Result<Proc, String> {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "1", &nsring_bin(), "count", "-i", &iface, "--json"]);
        if !extra.contains(&"kernel") {
            cmd.args(["--backend", "ring"]);
        }
        cmd.args(extra);
        Proc::spawn(cmd, "capturing on", Duration::from_secs(10))
    };
    // tcpdump runs inside the namespace (it cannot be pointed at another one).
    let tcpdump = |file: &str| -> Result<Proc, String> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lab.rx, "taskset", "-c", "1"])
            .args(["tcpdump", "-i", "rx0", "-n", "-w", file]);
        Proc::spawn(cmd, "listening on", Duration::from_secs(10))
    };
    Ok(match c {
        Capturer::None => vec![],
        Capturer::Nsring => vec![nsring(&[])?],
        Capturer::NsringNoRegistry => vec![nsring(&["--no-registry"])?],
        Capturer::Kernel => vec![nsring(&["--backend", "kernel"])?],
        Capturer::KernelFilter => vec![nsring(&["--backend", "kernel", "-f", "udp port 9"])?],
        Capturer::NsringFanout2 => {
            let id = (std::process::id() % 60000 + 1).to_string();
            vec![
                nsring(&["-c", &id, "--cluster-type", "rr"])?,
                nsring(&["-c", &id, "--cluster-type", "rr"])?,
            ]
        }
        Capturer::NsringDump => {
            let mut cmd = Command::new("taskset");
            cmd.args([
                "-c",
                "1",
                &nsring_bin(),
                "dump",
                "-i",
                &iface,
                "-w",
                &files.file(c),
            ]);
            vec![Proc::spawn(cmd, "capturing on", Duration::from_secs(10))?]
        }
        Capturer::TcpdumpFile => vec![tcpdump(&files.file(c))?],
        Capturer::Tcpdump => vec![tcpdump("/dev/null")?],
    })
}

/// (captured, dropped) from a capturer's final output.
fn parse_final(c: Capturer, f: &Finished) -> Result<(u64, u64), String> {
    match c {
        Capturer::NsringDump => {
            // "N packets captured, D dropped by kernel"
            let line = f
                .stderr
                .lines()
                .find(|l| l.contains("packets captured"))
                .ok_or_else(|| format!("nsring dump printed no statistics: {}", f.stderr))?;
            let nums: Vec<u64> = line
                .split(|ch: char| !ch.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            match nums.as_slice() {
                [cap, drop, ..] => Ok((*cap, *drop)),
                _ => fail(format!("cannot parse nsring dump's '{line}'")),
            }
        }
        Capturer::Tcpdump | Capturer::TcpdumpFile => {
            let num = |key: &str| {
                f.stderr
                    .lines()
                    .find(|l| l.contains(key))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| format!("tcpdump printed no '{key}': {}", f.stderr))
            };
            Ok((num("packets captured")?, num("dropped by kernel")?))
        }
        _ => {
            let last = f
                .stdout
                .lines()
                .rev()
                .find(|l| l.contains("\"final\""))
                .ok_or_else(|| format!("nsring count printed no final JSON: {}", f.stderr))?;
            let v: serde_json::Value =
                serde_json::from_str(last).map_err(|e| format!("bad JSON from count: {e}"))?;
            let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
            Ok((get("packets"), get("drops")))
        }
    }
}

fn run_trafgen(lab: &Lab, conf: &str, packets: u64) -> Result<(u64, f64), String> {
    trafgen_on(&lab.tx, "tx0", conf, packets)
}

/// trafgen on `dev` of namespace `ns`: (sent, seconds) as it reports them.
fn trafgen_on(ns: &str, dev: &str, conf: &str, packets: u64) -> Result<(u64, f64), String> {
    let out = Sh::new().output(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "trafgen",
            "-o",
            dev,
            "-i",
            conf,
            "-n",
            &packets.to_string(),
            "-P",
            "1",
            "--no-sock-mem",
            "-Q",
        ],
    )?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // "     5000000 packets outgoing" and "           6 sec, 571520 usec on CPU0 (5000000 packets)"
    let sent = text
        .lines()
        .find(|l| l.contains("packets outgoing"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("trafgen printed no packet count: {text}"))?;
    let secs = text
        .lines()
        .find(|l| l.contains(" sec, ") && l.contains("usec"))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some(w.first()?.parse::<f64>().ok()? + w.get(2)?.parse::<f64>().ok()? / 1e6)
        })
        .ok_or_else(|| format!("trafgen printed no time: {text}"))?;
    Ok((sent, secs))
}

/// `nsring send` with trafgen's frame (same MACs, addresses, ports, size), qdisc bypassed
/// like trafgen's default; (sent, seconds) from its final JSON line.
fn run_nsring_send(lab: &Lab, size: usize, packets: u64) -> Result<(u64, f64), String> {
    let out = Sh::new().output(
        "taskset",
        &[
            "-c",
            "0",
            &nsring_bin(),
            "send",
            "-i",
            &format!("{}/tx0", lab.tx),
            "-N",
            &packets.to_string(),
            "-l",
            &size.to_string(),
            "--src-mac",
            "02:00:5e:00:00:01",
            "--dst-mac",
            "02:00:5e:00:00:02",
            "--qdisc-bypass",
            "--json",
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains("\"final\""))
        .ok_or_else(|| format!("nsring send printed no final JSON: {text}"))?;
    let v: serde_json::Value =
        serde_json::from_str(last).map_err(|e| format!("bad JSON from send: {e}"))?;
    let sent = v.get("packets").and_then(|x| x.as_u64()).unwrap_or(0);
    let secs = v.get("elapsed_s").and_then(|x| x.as_f64()).unwrap_or(0.0);
    Ok((sent, secs))
}

fn one_run(
    lab: &Lab,
    g: Generator,
    c: Capturer,
    conf: &str,
    size: usize,
    packets: u64,
    files: &FileDir,
) -> Result<Sample, String> {
    if c.writes_file() {
        // Memory left alone for minutes comes back cold: every file run starts on memory
        // touched a moment ago.
        files.warm(file_bytes(packets, size))?;
    }
    let procs = start_capturers(c, lab, files)?;
    let t0 = Instant::now();
    let gen_result = match g {
        Generator::Trafgen => run_trafgen(lab, conf, packets),
        Generator::NsringSend => run_nsring_send(lab, size, packets),
    };
    // Let the capturers drain what is still in flight before they are stopped.
    std::thread::sleep(Duration::from_millis(300));
    let elapsed = t0.elapsed().as_secs_f64();
    let mut s = Sample {
        elapsed_s: elapsed,
        ..Sample::default()
    };
    let mut finished = Vec::new();
    for p in procs {
        finished.push(p.stop());
    }
    let _ = std::fs::remove_file(files.file(c));
    let (sent, secs) = gen_result?;
    if sent != packets {
        return fail(format!("{} sent {sent} of {packets} packets", g.name()));
    }
    s.gen_pps = sent as f64 / secs;
    for f in finished {
        let f = f?;
        let (cap, drop) = parse_final(c, &f)?;
        s.captured += cap;
        s.drops += drop;
        s.cpu_s += f.cpu_s;
    }
    Ok(s)
}

#[derive(Debug, Clone, Copy)]
struct Stat {
    med: f64,
    min: f64,
    max: f64,
}

fn stat(mut v: Vec<f64>) -> Stat {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Stat {
        med,
        min: v[0],
        max: v[n - 1],
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    require_root("bench")?;
    install(BENCH_PKGS)?;
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return fail(
            "the benchmark pins the sender and the capturer to CPUs 0 and 1: it needs 2 CPUs",
        );
    }
    Sh::new().dir(root()).run(
        &crate::cargo(),
        &["build", "--release", "--quiet", "-p", "nsring-cli"],
    )?;
    // SAFETY: installing a handler that only stores to an atomic is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let lab = Lab::new()?;
    let dir = std::env::temp_dir().join(format!("nsring-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let writes_files = opts.capturers.iter().any(|c| c.writes_file());
    let files = FileDir::new(opts.file_dir.as_deref().unwrap_or("/dev/shm"))?;
    let _memory = writes_files.then(KeepFreedMemory::new);
    if writes_files {
        eprintln!("bench: capture files go to {}", files.path.display());
    }
    let veth = opts.suites.iter().any(|s| s == "veth");
    let mut rows = Vec::new();
    'outer: for &size in opts.sizes.iter().filter(|_| veth) {
        let conf = dir.join(format!("udp{size}.cfg"));
        std::fs::write(&conf, trafgen_conf(size)).map_err(|e| e.to_string())?;
        let conf = conf.to_string_lossy().into_owned();
        for &g in &opts.generators {
            let mut baseline: Option<Stat> = None;
            // Repetitions outermost, and the capturers in a different order in each: the
            // machine's state (page cache, memory just freed by a file writer) drifts over a
            // run, and a fixed order would hand that drift to the same capturer every time.
            let mut by_capturer: Vec<Vec<Sample>> = vec![Vec::new(); opts.capturers.len()];
            for rep in 0..opts.reps {
                let n = opts.capturers.len();
                for k in 0..n {
                    // rotated, and backwards every other repetition, so that no capturer
                    // always runs right before another
                    let k = if rep % 2 == 1 { n - 1 - k } else { k };
                    let i = (k + rep) % n;
                    let c = opts.capturers[i];
                    if STOP.load(Ordering::SeqCst) {
                        break 'outer;
                    }
                    eprint!(
                        "\rbench: {size:>4} B  {:<11} {:<15} run {}/{}   ",
                        g.name(),
                        c.name(),
                        rep + 1,
                        opts.reps
                    );
                    let s = one_run(&lab, g, c, &conf, size, opts.packets, &files)?;
                    if opts.verbose {
                        eprintln!(
                            "\rbench: {size:>4} B  {:<11} {:<15} run {}: generated {:.0} kpps, captured {}, dropped {}, {:.1} ns/pkt",
                            g.name(),
                            c.name(),
                            rep + 1,
                            s.gen_pps / 1e3,
                            s.captured,
                            s.drops,
                            1e9 * s.cpu_s / s.captured.max(1) as f64
                        );
                    }
                    by_capturer[i].push(s);
                }
            }
            for (&c, samples) in opts.capturers.iter().zip(by_capturer) {
                let generated = stat(samples.iter().map(|s| s.gen_pps).collect());
                if c == Capturer::None {
                    baseline = Some(generated);
                }
                let row = Row {
                    generator: g.name(),
                    capturer: c.name(),
                    size,
                    generated,
                    keeps: baseline.map(|b| generated.med / b.med),
                    keeps_best: baseline.map(|b| generated.max / b.max),
                    cap_pps: stat(
                        samples
                            .iter()
                            .map(|s| s.captured as f64 / s.elapsed_s.max(1e-9))
                            .collect(),
                    ),
                    ratio: stat(
                        samples
                            .iter()
                            .map(|s| s.captured as f64 / opts.packets as f64)
                            .collect(),
                    ),
                    drop_pct: stat(
                        samples
                            .iter()
                            .map(|s| 100.0 * s.drops as f64 / (s.captured + s.drops).max(1) as f64)
                            .collect(),
                    ),
                    ns_per_pkt: stat(
                        samples
                            .iter()
                            .map(|s| 1e9 * s.cpu_s / s.captured.max(1) as f64)
                            .collect(),
                    ),
                    captures: c != Capturer::None,
                };
                rows.push(row);
            }
        }
    }
    eprintln!();
    let bridge_rows = if STOP.load(Ordering::SeqCst) || !opts.suites.iter().any(|s| s == "bridge") {
        Vec::new()
    } else {
        bridge::run(
            &opts.forwarders,
            &opts.sizes,
            opts.reps,
            opts.packets,
            &dir,
            opts.verbose,
        )?
    };
    let rate = if veth && opts.rate > 0 && !STOP.load(Ordering::SeqCst) {
        eprintln!("bench: checking nsring send --pps {} for 10 s", opts.rate);
        Some(rate_check(&lab, opts.rate)?)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&dir);
    drop(lab);
    if veth {
        print_table(&rows, &opts);
    }
    bridge::print(&bridge_rows, opts.packets, opts.reps);
    if let Some(r) = &rate {
        println!(
            "\nnsring send --pps {}: receiver got {:.0} pps over {:.1} s ({:+.3}% of the target); \
             per second {:.0}..{:.0} pps ({:+.3}%..{:+.3}%)",
            r.target,
            r.average,
            r.seconds,
            100.0 * (r.average / r.target as f64 - 1.0),
            r.min,
            r.max,
            100.0 * (r.min / r.target as f64 - 1.0),
            100.0 * (r.max / r.target as f64 - 1.0),
        );
    }
    let many = crate::many::run(&opts_many(&opts, &files), &opts.suites, || {
        STOP.load(Ordering::SeqCst)
    })?;
    if let Some(path) = &opts.json {
        let mut json = to_json(&rows, &opts);
        json["bridge"] = bridge::to_json(&bridge_rows);
        for (k, v) in many {
            json[k] = v;
        }
        if let Some(r) = &rate {
            json["send_rate"] = serde_json::json!({
                "target_pps": r.target,
                "average_pps": r.average,
                "seconds": r.seconds,
                "per_second_min_pps": r.min,
                "per_second_max_pps": r.max,
            });
        }
        std::fs::write(path, json.to_string() + "\n")
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        eprintln!("bench: wrote {path}");
    }
    if STOP.load(Ordering::SeqCst) {
        return fail("interrupted; the table shows the finished rows");
    }
    Ok(())
}

/// The many-namespace suites' options, from the bench's.
fn opts_many(o: &Opts, files: &FileDir) -> crate::many::Opts {
    crate::many::Opts {
        namespaces: o.namespaces,
        pps: o.scale_pps,
        secs: o.scale_secs,
        size: 1514,
        reps: o.reps,
        churn: o.churn,
        churn_packets: 100,
        procs: o.procs,
        file_dir: files.path.clone(),
        nsring: nsring_bin(),
        verbose: o.verbose,
    }
}

struct Row {
    generator: &'static str,
    capturer: &'static str,
    size: usize,
    generated: Stat,
    /// Median rate with the capturer over the median without.
    keeps: Option<f64>,
    /// Best rate with the capturer over the best without (the "best of N").
    keeps_best: Option<f64>,
    cap_pps: Stat,
    ratio: Stat,
    drop_pct: Stat,
    ns_per_pkt: Stat,
    captures: bool,
}

fn print_table(rows: &[Row], o: &Opts) {
    println!(
        "nsring bench: {} packets per run, {} runs each, median [min..max]; sender CPU0, capturer CPU1; \
         keeps = the sender's rate with the capturer over without (medians; best: best runs)",
        o.packets, o.reps
    );
    println!(
        "{:<11} {:<15} {:>5} {:>26} {:>7} {:>6} {:>26} {:>9} {:>8} {:>24}",
        "generator",
        "capturer",
        "bytes",
        "generated kpps",
        "keeps",
        "best",
        "captured kpps",
        "capt/gen",
        "drop %",
        "capturer CPU ns/pkt"
    );
    for r in rows {
        let k = |s: Stat| {
            format!(
                "{:.0} [{:.0}..{:.0}]",
                s.med / 1e3,
                s.min / 1e3,
                s.max / 1e3
            )
        };
        let keeps = r.keeps.map_or("-".into(), |k| format!("{k:.3}"));
        let best = r.keeps_best.map_or("-".into(), |k| format!("{k:.3}"));
        if r.captures {
            println!(
                "{:<11} {:<15} {:>5} {:>26} {:>7} {:>6} {:>26} {:>9.4} {:>8.3} {:>24}",
                r.generator,
                r.capturer,
                r.size,
                k(r.generated),
                keeps,
                best,
                k(r.cap_pps),
                r.ratio.med,
                r.drop_pct.med,
                format!(
                    "{:.1} [{:.1}..{:.1}]",
                    r.ns_per_pkt.med, r.ns_per_pkt.min, r.ns_per_pkt.max
                )
            );
        } else {
            println!(
                "{:<11} {:<15} {:>5} {:>26} {:>7} {:>6}",
                r.generator,
                r.capturer,
                r.size,
                k(r.generated),
                keeps,
                best
            );
        }
    }
}

fn to_json(rows: &[Row], o: &Opts) -> serde_json::Value {
    let st = |s: Stat| serde_json::json!({"median": s.med, "min": s.min, "max": s.max});
    serde_json::json!({
        "generators": o.generators.iter().map(|g| g.name()).collect::<Vec<_>>(),
        "packets_per_run": o.packets,
        "reps": o.reps,
        "rows": rows.iter().map(|r| serde_json::json!({
            "generator": r.generator,
            "capturer": r.capturer,
            "frame_bytes": r.size,
            "generated_pps": st(r.generated),
            "sender_keeps": r.keeps,
            "sender_keeps_best": r.keeps_best,
            "captured_pps": if r.captures { st(r.cap_pps) } else { serde_json::Value::Null },
            "captured_over_generated": if r.captures { st(r.ratio) } else { serde_json::Value::Null },
            "kernel_drop_pct": if r.captures { st(r.drop_pct) } else { serde_json::Value::Null },
            "capturer_cpu_ns_per_packet": if r.captures { st(r.ns_per_pkt) } else { serde_json::Value::Null },
        })).collect::<Vec<_>>(),
    })
}

/// How well `nsring send --pps` held its rate, measured by the receiver.
struct RateCheck {
    target: u64,
    average: f64,
    seconds: f64,
    min: f64,
    max: f64,
}

/// The receive counter of rx0 (`ip -s -j link`), and when it was read.
fn rx_packets(lab: &Lab) -> Result<(u64, Instant), String> {
    let before = Instant::now();
    let out = Sh::new().output("ip", &["-n", &lab.rx, "-s", "-j", "link", "show", "rx0"])?;
    let after = Instant::now();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cannot parse ip -j output: {e}"))?;
    let n = v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .ok_or("ip -s -j link printed no rx packet counter")?;
    // The counter was read somewhere between the two instants.
    Ok((n, before + (after - before) / 2))
}

/// Runs `nsring send --pps target` for 12 s and reads the receiver's counter every second
/// from the 1st to the 11th: ten one-second rates and their average.
fn rate_check(lab: &Lab, target: u64) -> Result<RateCheck, String> {
    let iface = format!("{}/tx0", lab.tx);
    let mut child = Command::new("taskset")
        .args([
            "-c",
            "0",
            &nsring_bin(),
            "send",
            "-i",
            &iface,
            "-l",
            "64",
            "-q",
        ])
        .args(["--pps", &target.to_string(), "--duration", "12"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start nsring send: {e}"))?;
    let start = Instant::now();
    let mut samples = Vec::new();
    for i in 1..=11u32 {
        let at = start + Duration::from_secs(u64::from(i));
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        samples.push(rx_packets(lab)?);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return fail(format!("nsring send failed ({status}): {}", err.trim()));
    }
    if samples.len() < 2 {
        return fail("the rate check was interrupted");
    }
    let rates: Vec<f64> = samples
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) as f64 / (w[1].1 - w[0].1).as_secs_f64())
        .collect();
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let seconds = (last.1 - first.1).as_secs_f64();
    Ok(RateCheck {
        target,
        average: (last.0 - first.0) as f64 / seconds,
        seconds,
        min: rates.iter().copied().fold(f64::INFINITY, f64::min),
        max: rates.iter().copied().fold(0.0, f64::max),
    })
}
