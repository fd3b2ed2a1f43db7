//! The many-namespace part of `cargo xtask bench` (issue 9's Must-reach):
//! - Scale: N lab namespaces, each with a veth pair and traffic; one `nsring dump` over a
//!   pattern against N `tcpdump -w` (one per namespace via `ip netns exec`), run one after
//!   the other in alternating order: loss, memory (PSS from smaps_rollup plus ring memory not
//!   yet faulted in, both sides the same way), CPU, threads, time until every capture is open.
//! - Churn: while one `nsring dump` follows a pattern, namespaces are made, sent traffic and
//!   deleted, one after another: every packet sent is in the file, every departed interface
//!   has its statistics block, and the process's descriptors, mappings and /run/nsring
//!   records are back where they started.
//! - Discovery: `nsring count --all-netns` in a sandbox (private mount and PID namespaces)
//!   with thousands of processes in /proc: time until every capture is open, and the CPU
//!   the periodic look through /proc costs.
//!
//! Every namespace is `nsrt-m<pid>-…`; the patterns name only those. Nothing is sent or
//! captured outside the lab.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sh::{Sh, fail};

#[derive(Debug, Clone)]
pub struct Opts {
    pub namespaces: usize,
    pub pps: u64,
    pub secs: f64,
    pub size: usize,
    pub reps: usize,
    pub churn: usize,
    pub churn_packets: u64,
    pub procs: usize,
    pub file_dir: PathBuf,
    pub nsring: String,
    pub verbose: bool,
}

fn sh(args: &[&str]) -> Result<(), String> {
    Sh::new().output(args[0], &args[1..]).map(drop)
}

/// Makes lab namespace `name` with IPv6 off and a veth pair `a0` -- `b0` inside, both up.
/// Returns when the veth pair was made.
fn make_ns(name: &str) -> Result<Instant, String> {
    sh(&["ip", "netns", "add", name])?;
    for k in ["all", "default"] {
        let key = format!("net.ipv6.conf.{k}.disable_ipv6=1");
        sh(&["ip", "netns", "exec", name, "sysctl", "-qw", &key])?;
    }
    let made = Instant::now();
    sh(&[
        "ip", "-n", name, "link", "add", "a0", "type", "veth", "peer", "name", "b0",
    ])?;
    sh(&["ip", "-n", name, "link", "set", "a0", "up"])?;
    sh(&["ip", "-n", name, "link", "set", "b0", "up"])?;
    Ok(made)
}

fn del_ns(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

/// Lab namespaces `nsrt-m<pid>-<tag>-<i>`, removed on drop.
struct Labs {
    prefix: String,
    names: Vec<String>,
}

impl Labs {
    fn new(tag: &str) -> Labs {
        Labs {
            prefix: format!("nsrt-m{}-{tag}", std::process::id()),
            names: Vec::new(),
        }
    }

    fn name(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    /// Makes namespace `i`; returns its name and when its veth pair was made.
    fn add(&mut self, i: usize) -> Result<(String, Instant), String> {
        let n = self.name(i);
        self.names.push(n.clone());
        let made = make_ns(&n)?;
        Ok((n, made))
    }

    fn remove(&mut self, name: &str) {
        del_ns(name);
        self.names.retain(|n| n != name);
    }
}

impl Drop for Labs {
    fn drop(&mut self) {
        for n in self.names.drain(..) {
            del_ns(&n);
        }
    }
}

/// A child with its output lines, each with the moment it was read.
struct Watched {
    child: Child,
    out: mpsc::Receiver<(Instant, String)>,
    err: mpsc::Receiver<(Instant, String)>,
    /// wait4 took its exit status: the PID is not ours any more.
    reaped: bool,
}

impl Watched {
    fn spawn(mut cmd: Command) -> Result<Watched, String> {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let lines = |r: Box<dyn Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send((Instant::now(), l)).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().expect("piped")));
        let err = lines(Box::new(child.stderr.take().expect("piped")));
        Ok(Watched {
            child,
            out,
            err,
            reaped: false,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, then the exit status and CPU seconds (user + system) from wait4, and the
    /// output lines not read yet (stdout, stderr).
    fn stop(mut self) -> Result<Finished, String> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child that is not reaped yet (its PID cannot be reused).
        unsafe { libc::kill(pid, libc::SIGINT) };
        let (code, cpu_s) = wait_rusage(pid)?;
        self.reaped = true;
        let rest = |rx: &mpsc::Receiver<(Instant, String)>| {
            rx.iter().map(|(_, l)| l).collect::<Vec<String>>()
        };
        Ok(Finished {
            code,
            cpu_s,
            err: rest(&self.err),
        })
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a watched child ended.
struct Finished {
    code: i32,
    cpu_s: f64,
    err: Vec<String>,
}

fn wait_rusage(pid: libc::pid_t) -> Result<(i32, f64), String> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid pointers to status and rusage.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        return fail(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, tv(ru.ru_utime) + tv(ru.ru_stime)))
}

/// KiB of a process's memory, measured the same way for both sides: its PSS, plus the part
/// of its packet rings (`socket:[…]` mappings) not faulted in yet (the kernel allocated it
/// at setsockopt all the same).
fn memory_kib(pid: u32) -> Result<(u64, u64), String> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .map_err(|e| format!("smaps_rollup of {pid}: {e}"))?;
    let pss = field_kib(&rollup, "Pss:").unwrap_or(0);
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
        .map_err(|e| format!("smaps of {pid}: {e}"))?;
    let mut unfaulted = 0;
    let mut in_ring = false;
    let mut size = 0;
    for l in smaps.lines() {
        if l.contains('-') && l.split_whitespace().count() >= 5 && !l.ends_with("kB") {
            in_ring = l.trim_end().ends_with(']') && l.contains("socket:[");
            continue;
        }
        if !in_ring {
            continue;
        }
        if let Some(v) = field_kib(l, "Size:") {
            size = v;
        } else if let Some(rss) = field_kib(l, "Rss:") {
            unfaulted += size.saturating_sub(rss);
        }
    }
    Ok((pss, unfaulted))
}

fn field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

fn status_field(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| field_kib(&t, key))
        .unwrap_or(0)
}

fn json(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

fn thousands(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push('\'');
        }
        out.push(c);
    }
    out
}

// --- Scale --------------------------------------------------------------------------------

/// What one side of the Scale run measured.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub sent: u64,
    pub captured: u64,
    pub dropped: u64,
    pub pss_kib: u64,
    pub unfaulted_kib: u64,
    pub cpu_s: f64,
    pub open_s: f64,
    pub threads: u64,
    pub processes: usize,
    pub gen_pps: f64,
}

impl Side {
    fn memory_mib(&self) -> f64 {
        (self.pss_kib + self.unfaulted_kib) as f64 / 1024.0
    }
}

/// `nsring send` in every namespace at `pps` for `secs`: the aggregate rate reached.
fn generate(names: &[String], o: &Opts) -> Result<(u64, f64), String> {
    let count = (o.pps as f64 * o.secs).round() as u64;
    let start = Instant::now();
    let mut kids = Vec::new();
    for n in names {
        let child = Command::new(&o.nsring)
            .args(["send", "-q", "-i", &format!("{n}/a0")])
            .args(["-N", &count.to_string(), "--pps", &o.pps.to_string()])
            .args(["-l", &o.size.to_string()])
            .args(["--duration", &format!("{}", o.secs * 3.0 + 10.0)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start nsring send: {e}"))?;
        kids.push(child);
    }
    let mut sent = 0;
    for k in kids {
        let out = k.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stderr);
        // "Sent N packets (B bytes) in T s"
        let n = text
            .lines()
            .rev()
            .find_map(|l| {
                l.strip_prefix("Sent ")?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .ok_or_else(|| format!("nsring send said: {text}"))?;
        sent += n;
    }
    Ok((sent, sent as f64 / start.elapsed().as_secs_f64()))
}

/// One `nsring dump` over the pattern.
fn scale_nsring(labs: &Labs, o: &Opts) -> Result<Side, String> {
    let file = o
        .file_dir
        .join(format!("nsrt-m{}-scale.pcapng", std::process::id()));
    let mut cmd = Command::new(&o.nsring);
    cmd.args(["dump", "-q", "--json", "-i"])
        .arg(format!("{}-*/b0", labs.prefix))
        .arg("-w")
        .arg(&file);
    let start = Instant::now();
    let w = Watched::spawn(cmd)?;
    let mut opened = 0;
    let deadline = start + Duration::from_secs(120);
    let mut open_at = start;
    while opened < labs.names.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (t, l) = w
            .out
            .recv_timeout(left)
            .map_err(|_| format!("nsring dump opened only {opened} captures"))?;
        if json(&l).is_some_and(|v| v["type"] == "open") {
            opened += 1;
            open_at = t;
        }
    }
    let mut side = Side {
        open_s: (open_at - start).as_secs_f64(),
        processes: 1,
        ..Side::default()
    };
    let pid = w.pid();
    let sampler = sample_memory(vec![pid], o.secs);
    let (sent, pps) = generate(&labs.names, o)?;
    let (pss, unfaulted, threads) = sampler.join().map_err(|_| "sampler panicked")??;
    // tcpdump's blocks time out after 1 s (libpcap's default), nsring's after 100 ms: the
    // last packets are handed over before the stop, for both
    std::thread::sleep(Duration::from_millis(1500));
    let f = w.stop()?;
    let _ = std::fs::remove_file(&file);
    if f.code != 0 {
        return fail(format!("nsring dump exited with {}: {:?}", f.code, f.err));
    }
    // "N packets captured, D dropped by kernel"
    let last = f
        .err
        .iter()
        .rev()
        .find(|l| l.contains("packets captured"))
        .ok_or_else(|| format!("no final line from nsring dump: {:?}", f.err))?;
    let nums: Vec<u64> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse().ok())
        .collect();
    side.captured = nums.first().copied().unwrap_or(0);
    side.dropped = nums.get(1).copied().unwrap_or(0);
    let cpu = f.cpu_s;
    side.sent = sent;
    side.gen_pps = pps;
    side.pss_kib = pss;
    side.unfaulted_kib = unfaulted;
    side.threads = threads;
    side.cpu_s = cpu;
    Ok(side)
}

/// Samples the memory of `pids` (summed) halfway through the traffic, and their threads.
fn sample_memory(
    pids: Vec<u32>,
    secs: f64,
) -> std::thread::JoinHandle<Result<(u64, u64, u64), String>> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs_f64(secs / 2.0));
        let (mut pss, mut unf, mut threads) = (0, 0, 0);
        for p in pids {
            let (a, b) = memory_kib(p)?;
            pss += a;
            unf += b;
            threads += status_field(p, "Threads:");
        }
        Ok((pss, unf, threads))
    })
}

/// One `tcpdump -w` per namespace, through `ip netns exec` (which execs tcpdump: the PID
/// is tcpdump's).
fn scale_tcpdump(labs: &Labs, o: &Opts) -> Result<Side, String> {
    let start = Instant::now();
    let mut procs = Vec::new();
    let mut files = Vec::new();
    for (i, n) in labs.names.iter().enumerate() {
        let file = o
            .file_dir
            .join(format!("nsrt-m{}-scale-{i}.pcap", std::process::id()));
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", n, "tcpdump", "-i", "b0", "-w"])
            .arg(&file);
        procs.push(Watched::spawn(cmd)?);
        files.push(file);
    }
    let deadline = start + Duration::from_secs(120);
    let mut open_at = start;
    for p in &procs {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (t, l) = p
                .err
                .recv_timeout(left)
                .map_err(|_| "a tcpdump did not start listening".to_string())?;
            if l.contains("listening on") {
                open_at = open_at.max(t);
                break;
            }
        }
    }
    let pids: Vec<u32> = procs.iter().map(Watched::pid).collect();
    let sampler = sample_memory(pids, o.secs);
    let (sent, pps) = generate(&labs.names, o)?;
    let (pss, unfaulted, threads) = sampler.join().map_err(|_| "sampler panicked")??;
    // tcpdump's blocks time out after 1 s (libpcap's default), nsring's after 100 ms: the
    // last packets are handed over before the stop, for both
    std::thread::sleep(Duration::from_millis(1500));
    let mut side = Side {
        sent,
        gen_pps: pps,
        pss_kib: pss,
        unfaulted_kib: unfaulted,
        threads,
        open_s: (open_at - start).as_secs_f64(),
        processes: procs.len(),
        ..Side::default()
    };
    for p in procs {
        let f = p.stop()?;
        side.cpu_s += f.cpu_s;
        // "N packets captured" / "M packets dropped by kernel"
        let num = |what: &str| {
            f.err
                .iter()
                .find(|l| l.ends_with(what))
                .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        };
        side.captured += num("packets captured").unwrap_or(0);
        side.dropped += num("packets dropped by kernel").unwrap_or(0);
    }
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    Ok(side)
}

#[derive(Debug, Clone, Default)]
pub struct ScaleReport {
    pub nsring: Vec<Side>,
    pub tcpdump: Vec<Side>,
}

pub fn scale(o: &Opts) -> Result<ScaleReport, String> {
    let mut labs = Labs::new("s");
    eprintln!(
        "bench: scale: making {} namespaces, each with a veth pair",
        o.namespaces
    );
    for i in 0..o.namespaces {
        labs.add(i)?;
    }
    let mut r = ScaleReport::default();
    for rep in 0..o.reps {
        // alternate which side goes first
        for k in 0..2 {
            let nsring_turn = (rep + k) % 2 == 0;
            let side = if nsring_turn {
                scale_nsring(&labs, o)?
            } else {
                scale_tcpdump(&labs, o)?
            };
            if o.verbose {
                eprintln!(
                    "bench: scale rep {rep} {}: {side:?}",
                    if nsring_turn { "nsring" } else { "tcpdump" }
                );
            }
            if nsring_turn {
                r.nsring.push(side);
            } else {
                r.tcpdump.push(side);
            }
        }
    }
    Ok(r)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

fn best(v: &[f64], lowest: bool) -> f64 {
    v.iter()
        .copied()
        .fold(None, |acc: Option<f64>, x| {
            Some(acc.map_or(x, |a| if lowest { a.min(x) } else { a.max(x) }))
        })
        .unwrap_or(0.0)
}

/// One row of the Scale table: how it is read from a side.
type Metric = fn(&Side) -> f64;

pub fn print_scale(r: &ScaleReport, o: &Opts) {
    let col = |sides: &[Side], f: Metric| {
        let v: Vec<f64> = sides.iter().map(f).collect();
        format!("{:.2} (best {:.2})", median(v.clone()), best(&v, true))
    };
    let sent: u64 = r.nsring.iter().map(|s| s.sent).sum();
    let pps = median(
        r.nsring
            .iter()
            .chain(&r.tcpdump)
            .map(|s| s.gen_pps)
            .collect(),
    );
    println!();
    println!(
        "Scale: {} namespaces, {}-byte frames, {} pps each for {} s (aggregate reached: {} pps), {} repetition(s), medians (best)",
        o.namespaces,
        o.size,
        o.pps,
        o.secs,
        thousands(pps as u64),
        o.reps
    );
    let rows: [(&str, Metric); 6] = [
        ("lost (sent - captured)", |s| {
            s.sent.saturating_sub(s.captured) as f64
        }),
        ("dropped by kernel", |s| s.dropped as f64),
        ("memory MiB (PSS + ring not faulted in)", Side::memory_mib),
        ("CPU s (user + system)", |s| s.cpu_s),
        ("time to all open, s", |s| s.open_s),
        ("threads", |s| s.threads as f64),
    ];
    println!(
        "{:<42} {:>30} {:>30}",
        "",
        "nsring dump (1 process)",
        format!("tcpdump -w ({} processes)", o.namespaces)
    );
    for (name, f) in rows {
        println!(
            "{name:<42} {:>30} {:>30}",
            col(&r.nsring, f),
            col(&r.tcpdump, f)
        );
    }
    let mem = |s: &[Side]| median(s.iter().map(Side::memory_mib).collect());
    let cpu = |s: &[Side]| median(s.iter().map(|x| x.cpu_s).collect());
    let lost: u64 = r
        .nsring
        .iter()
        .map(|s| s.sent.saturating_sub(s.captured) + s.dropped)
        .sum();
    println!(
        "must reach: zero loss for nsring: {} ({} of {} packets lost); memory at most half of tcpdump's: {} ({:.2}); CPU at most tcpdump's: {} ({:.2})",
        if lost == 0 { "yes" } else { "NO" },
        lost,
        thousands(sent),
        if mem(&r.nsring) * 2.0 <= mem(&r.tcpdump) {
            "yes"
        } else {
            "NO"
        },
        mem(&r.nsring) / mem(&r.tcpdump).max(1e-9),
        if cpu(&r.nsring) <= cpu(&r.tcpdump) {
            "yes"
        } else {
            "NO"
        },
        cpu(&r.nsring) / cpu(&r.tcpdump).max(1e-9),
    );
}

pub fn scale_json(r: &ScaleReport) -> serde_json::Value {
    let side = |s: &Side| {
        serde_json::json!({
            "sent": s.sent, "captured": s.captured, "dropped": s.dropped,
            "pss_kib": s.pss_kib, "ring_unfaulted_kib": s.unfaulted_kib,
            "cpu_s": s.cpu_s, "open_s": s.open_s, "threads": s.threads,
            "processes": s.processes, "generated_pps": s.gen_pps,
        })
    };
    serde_json::json!({
        "nsring": r.nsring.iter().map(side).collect::<Vec<_>>(),
        "tcpdump": r.tcpdump.iter().map(side).collect::<Vec<_>>(),
    })
}

// --- Churn --------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct ChurnReport {
    pub namespaces: usize,
    pub opened: usize,
    pub closed: usize,
    pub sent: u64,
    pub in_file: u64,
    /// Interfaces whose packets in the file are fewer than were sent to them.
    pub short: usize,
    pub isbs: usize,
    /// Statistics blocks whose counters match what was sent.
    pub isbs_exact: usize,
    pub open_ms: Vec<f64>,
    pub before: Resources,
    pub after: Resources,
    pub tcpdump_reads: bool,
}

/// What the capturing process holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub fds: usize,
    pub mappings: usize,
    pub socket_mappings: usize,
    pub mapped_kib: u64,
    pub run_nsring: usize,
    pub threads: u64,
}

fn resources(pid: u32) -> Resources {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut r = Resources {
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        threads: status_field(pid, "Threads:"),
        ..Resources::default()
    };
    for l in maps.lines() {
        r.mappings += 1;
        if l.contains("socket:[") {
            r.socket_mappings += 1;
        }
        if let Some((a, b)) = l.split_whitespace().next().and_then(|x| x.split_once('-'))
            && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            r.mapped_kib += (b - a) / 1024;
        }
    }
    // this process's records: /run/nsring/<inode>/<pid>-<ifname>.<id>
    let prefix = format!("{pid}-");
    if let Ok(dirs) = std::fs::read_dir("/run/nsring") {
        for d in dirs.flatten() {
            if let Ok(files) = std::fs::read_dir(d.path()) {
                r.run_nsring += files
                    .flatten()
                    .filter(|f| f.file_name().to_string_lossy().starts_with(&prefix))
                    .count();
            }
        }
    }
    r
}

pub fn churn(o: &Opts) -> Result<ChurnReport, String> {
    let mut labs = Labs::new("c");
    let file = o
        .file_dir
        .join(format!("nsrt-m{}-churn.pcapng", std::process::id()));
    let mut cmd = Command::new(&o.nsring);
    cmd.args(["dump", "-q", "--json", "--follow", "-i"])
        .arg(format!("{}-*/b0", labs.prefix))
        .arg("-w")
        .arg(&file);
    let w = Watched::spawn(cmd)?;
    let pid = w.pid();
    // running: it says nothing matches yet
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (_, l) = w
            .err
            .recv_timeout(left)
            .map_err(|_| "nsring dump did not start".to_string())?;
        if l.contains("nothing matches") {
            break;
        }
    }
    let mut r = ChurnReport {
        namespaces: o.churn,
        before: resources(pid),
        ..ChurnReport::default()
    };
    eprintln!(
        "bench: churn: {} namespaces made, sent {} packets each, deleted",
        o.churn, o.churn_packets
    );
    let mut sent_to: HashMap<String, u64> = HashMap::new();
    let mut pending: Vec<(Instant, serde_json::Value)> = Vec::new();
    for i in 0..o.churn {
        let (name, made) = labs.add(i)?;
        let target = format!("{name}/b0");
        // wait for its open line
        let deadline = made + Duration::from_secs(30);
        loop {
            if let Some(k) = pending
                .iter()
                .position(|(_, v)| v["type"] == "open" && v["target"] == target.as_str())
            {
                let (t, _) = pending.remove(k);
                r.open_ms
                    .push(t.saturating_duration_since(made).as_secs_f64() * 1e3);
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let (t, l) = w.out.recv_timeout(left).map_err(|_| {
                let err: Vec<String> = w.err.try_iter().map(|(_, l)| l).collect();
                format!("{target} was not captured; nsring dump said: {err:?}")
            })?;
            if let Some(v) = json(&l) {
                if v["type"] == "open" && v["target"] == target.as_str() {
                    r.open_ms
                        .push(t.saturating_duration_since(made).as_secs_f64() * 1e3);
                    r.opened += 1;
                    break;
                }
                if v["type"] == "close" {
                    r.closed += 1;
                } else if v["type"] == "open" {
                    r.opened += 1;
                }
                pending.push((t, v));
            }
        }
        let out = Command::new(&o.nsring)
            .args(["send", "-q", "-i", &format!("{name}/a0")])
            .args(["-N", &o.churn_packets.to_string(), "-l", "200"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return fail(format!("nsring send in {name}: {out:?}"));
        }
        sent_to.insert(name.clone(), o.churn_packets);
        r.sent += o.churn_packets;
        labs.remove(&name);
    }
    // every capture closes
    let deadline = Instant::now() + Duration::from_secs(60);
    while r.closed < o.churn {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((_, l)) = w.out.recv_timeout(left) else {
            return fail(format!("only {} of {} captures closed", r.closed, o.churn));
        };
        if json(&l).is_some_and(|v| v["type"] == "close") {
            r.closed += 1;
        }
    }
    // the kernel's teardown and the last records go asynchronously: wait for them
    let deadline = Instant::now() + Duration::from_secs(30);
    r.after = resources(pid);
    while (r.after.fds, r.after.socket_mappings, r.after.run_nsring)
        != (r.before.fds, r.before.socket_mappings, r.before.run_nsring)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
        r.after = resources(pid);
    }
    let f = w.stop()?;
    if f.code != 0 {
        return fail(format!("nsring dump exited with {}: {:?}", f.code, f.err));
    }
    let blocks = pcapng_summary(&file)?;
    for (desc, packets, isb) in &blocks {
        let Some(name) = sent_to
            .keys()
            .find(|n| desc.contains(&format!("netns {n} ")))
        else {
            continue;
        };
        let want = sent_to[name];
        r.in_file += packets;
        if *packets < want {
            r.short += 1;
        }
        if let Some((recv, drop, deliv)) = isb {
            r.isbs += 1;
            if *recv == want && *drop == 0 && *deliv == want {
                r.isbs_exact += 1;
            }
        }
    }
    r.tcpdump_reads = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&file);
    Ok(r)
}

/// Per interface description block of a pcapng file (one section): its description, the
/// packets that name it, and its last statistics block (ifrecv, ifdrop, usrdeliv).
type IfSummary = (String, u64, Option<(u64, u64, u64)>);

/// Walks the blocks of a pcapng file written on this machine (native byte order): a reader
/// of our own, apart from nsring's, to check its files.
fn pcapng_summary(path: &Path) -> Result<Vec<IfSummary>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(data.get(o..o + 4)?.try_into().ok()?))
    };
    let u64_at = |o: usize| -> Option<u64> {
        let lo = u64::from(u32_at(o)?);
        let hi = u64::from(u32_at(o + 4)?);
        Some(hi << 32 | lo)
    };
    let mut ifs: Vec<IfSummary> = Vec::new();
    let mut off = 0;
    while off + 12 <= data.len() {
        let (Some(kind), Some(len)) = (u32_at(off), u32_at(off + 4)) else {
            break;
        };
        let len = len as usize;
        if len < 12 || off + len > data.len() {
            return fail(format!("{}: a block runs past the end", path.display()));
        }
        let body = off + 8..off + len - 4;
        // options: code (u16), length (u16), value padded to 4
        let options = |mut o: usize| {
            let mut v = Vec::new();
            while o + 4 <= body.end {
                let code = u16::from_ne_bytes([data[o], data[o + 1]]);
                let l = u16::from_ne_bytes([data[o + 2], data[o + 3]]) as usize;
                if code == 0 || o + 4 + l > body.end {
                    break;
                }
                v.push((code, o + 4, l));
                o += 4 + l.div_ceil(4) * 4;
            }
            v
        };
        match kind {
            // interface description: linktype, reserved, snaplen, then options
            1 => {
                let desc = options(body.start + 8)
                    .into_iter()
                    .find(|(c, _, _)| *c == 3)
                    .map(|(_, at, l)| String::from_utf8_lossy(&data[at..at + l]).into_owned())
                    .unwrap_or_default();
                ifs.push((desc, 0, None));
            }
            // enhanced packet: interface id first
            6 => {
                let id = u32_at(body.start).unwrap_or(u32::MAX) as usize;
                if let Some(i) = ifs.get_mut(id) {
                    i.1 += 1;
                }
            }
            // interface statistics: id, timestamp (8), then options
            5 => {
                let id = u32_at(body.start).unwrap_or(u32::MAX) as usize;
                let opts = options(body.start + 12);
                let get = |code| {
                    opts.iter()
                        .find(|(c, _, _)| *c == code)
                        .and_then(|(_, at, _)| u64_at(*at))
                        .unwrap_or(u64::MAX)
                };
                if let Some(i) = ifs.get_mut(id) {
                    i.2 = Some((get(4), get(5), get(8)));
                }
            }
            _ => {}
        }
        off += len;
    }
    Ok(ifs)
}

pub fn print_churn(r: &ChurnReport) {
    let ms = |q: f64| {
        let mut v = r.open_ms.clone();
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!();
    println!(
        "Churn: {} namespaces made, sent traffic and deleted while one nsring dump follows them",
        r.namespaces
    );
    println!(
        "  captures opened {} / closed {}; packets sent {}, in the file {} (interfaces short: {})",
        r.opened,
        r.closed,
        thousands(r.sent),
        thousands(r.in_file),
        r.short
    );
    println!(
        "  statistics blocks {} of {} ({} with received = written = sent, 0 dropped); tcpdump reads the file: {}",
        r.isbs,
        r.namespaces,
        r.isbs_exact,
        if r.tcpdump_reads { "yes" } else { "NO" }
    );
    println!(
        "  namespace made -> capture open: median {:.1} ms, 90% {:.1} ms, max {:.1} ms",
        ms(0.5),
        ms(0.9),
        ms(1.0)
    );
    let (b, a) = (r.before, r.after);
    println!(
        "  before -> after: fds {} -> {}, ring mappings {} -> {}, mappings {} -> {}, mapped {} -> {} KiB, /run/nsring records {} -> {}, threads {} -> {}",
        b.fds,
        a.fds,
        b.socket_mappings,
        a.socket_mappings,
        b.mappings,
        a.mappings,
        b.mapped_kib,
        a.mapped_kib,
        b.run_nsring,
        a.run_nsring,
        b.threads,
        a.threads
    );
    let ok = r.in_file == r.sent
        && r.isbs_exact == r.namespaces
        && (a.fds, a.socket_mappings, a.run_nsring) == (b.fds, b.socket_mappings, b.run_nsring);
    println!(
        "must reach: every packet in the file, every ISB, resources back: {}",
        if ok { "yes" } else { "NO" }
    );
}

pub fn churn_json(r: &ChurnReport) -> serde_json::Value {
    let res = |x: &Resources| {
        serde_json::json!({
            "fds": x.fds, "mappings": x.mappings, "ring_mappings": x.socket_mappings,
            "mapped_kib": x.mapped_kib, "run_nsring_records": x.run_nsring, "threads": x.threads,
        })
    };
    serde_json::json!({
        "namespaces": r.namespaces, "opened": r.opened, "closed": r.closed,
        "sent": r.sent, "in_file": r.in_file, "isbs": r.isbs, "isbs_exact": r.isbs_exact,
        "open_ms": r.open_ms, "before": res(&r.before), "after": res(&r.after),
        "tcpdump_reads": r.tcpdump_reads,
    })
}

// --- Discovery ----------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct DiscoveryReport {
    pub procs: usize,
    pub named: usize,
    pub anonymous: usize,
    /// Seconds until every capture was open (start of `nsring count --all-netns`).
    pub open_s: f64,
    /// CPU seconds over the run, and its length.
    pub cpu_s: f64,
    pub run_s: f64,
}

/// `nsring count --all-netns` in a sandbox: private mount and PID namespaces (so /proc and
/// the mount table hold only what the sandbox made), a tmpfs over /run/netns, `named`
/// namespaces made with `ip netns add`, `anonymous` ones held only by a process, and
/// `procs` sleeping processes.
pub fn discovery(o: &Opts, procs: usize) -> Result<DiscoveryReport, String> {
    let (named, anonymous) = (20usize, 5usize);
    let run_s = 5.0;
    let prefix = format!("nsrt-m{}-d", std::process::id());
    let script = format!(
        r#"set -e
# no namespace of the host's in view: its nsfs mounts go (privately), /run/netns is ours
awk '$9 == "nsfs" {{ print $5 }}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
mkdir -p /run/netns
mount -t tmpfs nsrt-bench /run/netns
for i in $(seq 1 {named}); do
  ip netns add {prefix}-$i
  ip netns exec {prefix}-$i sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n {prefix}-$i link add a0 type veth peer name b0
  ip -n {prefix}-$i link set b0 up
done
for i in $(seq 1 {anonymous}); do
  unshare -n sh -c 'ip link add a0 type veth peer name b0; ip link set b0 up; exec sleep 600' &
done
for i in $(seq 1 {procs}); do sleep 600 & done
sleep 1
echo READY
TIMEFORMAT='CPU %U %S'
time {nsring} count --all-netns -i b0 -J -q --json --duration {run_s}
"#,
        nsring = o.nsring
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--pid",
        "--fork",
        "--mount-proc",
        "--propagation",
        "private",
        "bash",
        "-c",
        &script,
    ]);
    let w = Watched::spawn(cmd)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut ready = None;
    let mut opened = 0;
    let mut open_at = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((t, l)) = w.out.recv_timeout(left) else {
            break;
        };
        if l == "READY" {
            ready = Some(t);
        } else if json(&l).is_some_and(|v| v["type"] == "open") {
            opened += 1;
            if opened == named + anonymous {
                open_at = Some(t);
            }
        } else if json(&l).is_some_and(|v| v["type"] == "final_total") {
            break;
        }
    }
    let f = w.stop()?;
    let cpu = f
        .err
        .iter()
        .find_map(|l| {
            let mut it = l.strip_prefix("CPU ")?.split_whitespace();
            Some(it.next()?.parse::<f64>().ok()? + it.next()?.parse::<f64>().ok()?)
        })
        .ok_or_else(|| format!("the sandbox said: {:?}", f.err))?;
    let (Some(ready), Some(open_at)) = (ready, open_at) else {
        return fail(format!(
            "--all-netns opened {opened} of {} captures: {:?}",
            named + anonymous,
            f.err
        ));
    };
    Ok(DiscoveryReport {
        procs,
        named,
        anonymous,
        open_s: (open_at - ready).as_secs_f64(),
        cpu_s: cpu,
        run_s,
    })
}

pub fn print_discovery(d: &[DiscoveryReport]) {
    println!();
    println!(
        "Discovery: nsring count --all-netns in a sandbox (own /proc and mount table), named namespaces from the mount table, anonymous ones from /proc every 500 ms"
    );
    println!(
        "{:>12} {:>8} {:>10} {:>22} {:>26}",
        "processes", "named", "anonymous", "start -> all open, s", "CPU while running, % of a core"
    );
    for r in d {
        println!(
            "{:>12} {:>8} {:>10} {:>22.3} {:>26.2}",
            r.procs,
            r.named,
            r.anonymous,
            r.open_s,
            100.0 * r.cpu_s / r.run_s
        );
    }
}

pub fn discovery_json(d: &[DiscoveryReport]) -> serde_json::Value {
    serde_json::Value::Array(
        d.iter()
            .map(|r| {
                serde_json::json!({
                    "processes": r.procs, "named": r.named, "anonymous": r.anonymous,
                    "open_s": r.open_s, "cpu_s": r.cpu_s, "run_s": r.run_s,
                })
            })
            .collect(),
    )
}

/// Runs the suites asked for (scale, churn, discovery), prints their tables, and returns
/// their JSON by name; `stop` says Ctrl-C was pressed.
pub fn run(
    o: &Opts,
    suites: &[String],
    stop: impl Fn() -> bool,
) -> Result<Vec<(&'static str, serde_json::Value)>, String> {
    let on = |s: &str| suites.iter().any(|x| x == s) && !stop();
    let mut out = Vec::new();
    if on("scale") {
        let r = scale(o)?;
        print_scale(&r, o);
        out.push(("scale", scale_json(&r)));
    }
    if on("churn") {
        let r = churn(o)?;
        print_churn(&r);
        out.push(("churn", churn_json(&r)));
    }
    if on("discovery") {
        eprintln!(
            "bench: discovery: --all-netns in a sandbox with 0 and {} processes",
            o.procs
        );
        let mut d = Vec::new();
        for procs in [0, o.procs] {
            d.push(discovery(o, procs)?);
        }
        print_discovery(&d);
        out.push(("discovery", discovery_json(&d)));
    }
    Ok(out)
}
