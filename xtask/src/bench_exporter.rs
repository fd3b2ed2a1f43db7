//! `cargo xtask bench-exporter`: what one `nsring exporter` scrape costs with many
//! namespaces.
//!
//! Builds N namespaces (`nsrt-<pid>-bx<i>`), each with a veth pair (three interfaces with
//! lo), and an `nsring count` capture in every tenth (a socket and a record to read). Runs
//! two exporters from the release build side by side: one for all N namespaces (a pattern,
//! so every scrape also finds them among all of the host's) and one for a single one of
//! them, and scrapes them alternately, R times each after one warm-up scrape. Reports, per
//! exporter, the time of a scrape as an HTTP client sees it (best, median, worst), the
//! collection time the exporter reports itself (`nsring_exporter_scrape_duration_seconds`,
//! median), the answer's size and its number of series. Everything it made is removed at
//! the end, also after an error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sh::{Sh, fail};

const USAGE: &str = "\
usage: cargo xtask bench-exporter [--namespaces N] [--scrapes R]

  --namespaces N   namespaces to build, each with a veth pair [default: 100]
  --scrapes R      timed scrapes of each exporter, alternating [default: 20]
";

/// The namespaces and the captures in them; removed on drop.
struct Lab {
    names: Vec<String>,
    captures: Vec<Child>,
}

impl Lab {
    fn new(n: usize) -> Result<Lab, String> {
        let pid = std::process::id();
        let mut lab = Lab {
            names: Vec::new(),
            captures: Vec::new(),
        };
        let sh = Sh::new();
        for i in 0..n {
            let ns = format!("nsrt-{pid}-bx{i}");
            sh.output("ip", &["netns", "add", &ns])?;
            lab.names.push(ns.clone());
            sh.output(
                "ip",
                &[
                    "-n", &ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
                ],
            )?;
            sh.output("ip", &["-n", &ns, "link", "set", "veth0", "up"])?;
            sh.output("ip", &["-n", &ns, "link", "set", "veth1", "up"])?;
        }
        Ok(lab)
    }

    /// An `nsring count` on veth1 of every tenth namespace.
    fn capture(&mut self, nsring: &str) -> Result<(), String> {
        for ns in self.names.iter().step_by(10) {
            let child = Command::new(nsring)
                .args(["count", "-i", &format!("{ns}/veth1"), "--duration", "3600"])
                .args(["--interval", "3600", "-q"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {nsring}: {e}"))?;
            self.captures.push(child);
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.captures {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// An exporter on a loopback port of the kernel's choosing; killed on drop.
struct Exporter {
    child: Child,
    addr: SocketAddr,
    what: String,
}

impl Exporter {
    fn start(nsring: &str, netns: &str, what: String) -> Result<Exporter, String> {
        let mut child = Command::new(nsring)
            .args(["exporter", "--listen", "127.0.0.1:0", "-n", netns])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {nsring}: {e}"))?;
        let mut err = child.stderr.take().expect("piped");
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while err.read(&mut b).map_err(|e| e.to_string())? == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(Exporter { child, addr, what }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                fail(format!("the exporter did not say where it serves: {line}"))
            }
        }
    }

    /// One scrape: its time and its body.
    fn scrape(&self) -> Result<(Duration, String), String> {
        let t = Instant::now();
        let mut s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let took = t.elapsed();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| "an answer without headers".to_string())?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return fail(format!("{}: {head}", self.what));
        }
        Ok((took, body.to_owned()))
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exporter's own collection time in a scrape's text.
fn own_seconds(body: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix("nsring_exporter_scrape_duration_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

fn ms(d: f64) -> String {
    format!("{:.1} ms", d * 1e3)
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut n = 100usize;
    let mut reps = 20usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{what} needs a positive number"))
        };
        match a.as_str() {
            "--namespaces" => n = num("--namespaces")?,
            "--scrapes" => reps = num("--scrapes")?,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return fail(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    crate::require_root("bench-exporter")?;
    crate::install(crate::DEMO_PKGS)?;
    let sh = Sh::new().dir(crate::root());
    sh.run(
        &crate::cargo(),
        &["build", "--release", "--quiet", "-p", "nsring-cli"],
    )?;
    let nsring = crate::root()
        .join("target/release/nsring")
        .display()
        .to_string();
    eprintln!("bench-exporter: building {n} namespaces");
    let mut lab = Lab::new(n)?;
    lab.capture(&nsring)?;
    let pattern = format!("nsrt-{}-bx*", std::process::id());
    let exporters = [
        Exporter::start(&nsring, &pattern, format!("{n} namespaces"))?,
        Exporter::start(&nsring, &lab.names[0], "1 namespace".into())?,
    ];
    // the captures open their sockets meanwhile; one warm-up scrape each
    std::thread::sleep(Duration::from_secs(1));
    let mut bodies = Vec::new();
    for e in &exporters {
        bodies.push(e.scrape()?.1);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); exporters.len()];
    let mut own: Vec<Vec<f64>> = vec![Vec::new(); exporters.len()];
    for r in 0..reps {
        // alternate, and swap the order every other round
        let order: Vec<usize> = if r % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
        for i in order {
            let (t, body) = exporters[i].scrape()?;
            times[i].push(t.as_secs_f64());
            own[i].extend(own_seconds(&body));
            bodies[i] = body;
        }
    }
    println!(
        "exporter scrape ({n} namespaces with a veth pair each, {} nsring captures; {reps} scrapes each, alternating)",
        lab.captures.len()
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>16} {:>9} {:>7}",
        "scraping", "best", "median", "worst", "collect (median)", "bytes", "series"
    );
    for (i, e) in exporters.iter().enumerate() {
        let mut t = times[i].clone();
        t.sort_by(f64::total_cmp);
        let mut o = own[i].clone();
        o.sort_by(f64::total_cmp);
        let series = bodies[i]
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>16} {:>9} {:>7}",
            e.what,
            ms(t[0]),
            ms(t[t.len() / 2]),
            ms(t[t.len() - 1]),
            o.get(o.len() / 2).map_or("-".into(), |v| ms(*v)),
            bodies[i].len(),
            series
        );
    }
    Ok(())
}
