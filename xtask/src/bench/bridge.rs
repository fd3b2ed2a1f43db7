//! The bridge benchmark: trafgen sends into one end of `nsring bridge`, the receiver's
//! counter says what came out of the other; side by side with the kernel forwarding the
//! same frames itself (a `tc` u32 match-all filter with `action mirred egress redirect`;
//! matchall is not in every kernel), in the same run.
//!
//! Lab: `nsrt-b<pid>-s/tx0` — `nsrt-b<pid>-w/ba`, `nsrt-b<pid>-w/bb` — `nsrt-b<pid>-d/rx0`. The
//! sender is on CPU 0, the bridge process on CPU 1; tc-mirred forwards in the sender's
//! softirq, so it is the ceiling the path allows.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Proc, STOP, Stat, nsring_bin, stat, trafgen_conf};
use crate::sh::Sh;

/// What forwards between the bridge namespace's two interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarder {
    /// `nsring bridge -i w/ba -o w/bb`.
    Nsring,
    /// The kernel: an ingress `tc` filter on ba redirecting every frame to bb.
    TcMirred,
}

impl Forwarder {
    pub const ALL: [Forwarder; 2] = [Forwarder::Nsring, Forwarder::TcMirred];

    pub fn name(self) -> &'static str {
        match self {
            Forwarder::Nsring => "nsring-bridge",
            Forwarder::TcMirred => "tc-mirred",
        }
    }
}

/// Three namespaces, two veth pairs; removed on drop.
struct Lab {
    s: String,
    w: String,
    d: String,
}

impl Lab {
    fn new() -> Result<Lab, String> {
        let pid = std::process::id();
        let lab = Lab {
            s: format!("nsrt-b{pid}-s"),
            w: format!("nsrt-b{pid}-w"),
            d: format!("nsrt-b{pid}-d"),
        };
        let sh = Sh::new();
        for ns in [&lab.s, &lab.w, &lab.d] {
            sh.output("ip", &["netns", "add", ns])?;
            for key in ["all", "default"] {
                let k = format!("net.ipv6.conf.{key}.disable_ipv6=1");
                sh.output("ip", &["netns", "exec", ns, "sysctl", "-qw", &k])?;
            }
        }
        let link = |a: &str, a_if: &str, b: &str, b_if: &str| -> Result<(), String> {
            sh.output(
                "ip",
                &[
                    "-n", a, "link", "add", a_if, "type", "veth", "peer", b_if, "netns", b,
                ],
            )?;
            sh.output("ip", &["-n", a, "link", "set", a_if, "up"])?;
            sh.output("ip", &["-n", b, "link", "set", b_if, "up"])?;
            Ok(())
        };
        link(&lab.s, "tx0", &lab.w, "ba")?;
        link(&lab.w, "bb", &lab.d, "rx0")?;
        Ok(lab)
    }

    /// The receive counter of d/rx0.
    fn delivered(&self) -> Result<u64, String> {
        let out = Sh::new().output("ip", &["-n", &self.d, "-s", "-j", "link", "show", "rx0"])?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("cannot parse ip -j output: {e}"))?;
        v[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .ok_or_else(|| "ip -s -j link printed no rx packet counter".to_string())
    }

    fn tc(&self, on: bool) -> Result<(), String> {
        let sh = Sh::new();
        if on {
            sh.output(
                "ip",
                &[
                    "netns", "exec", &self.w, "tc", "qdisc", "add", "dev", "ba", "ingress",
                ],
            )?;
            sh.output(
                "ip",
                &[
                    "netns", "exec", &self.w, "tc", "filter", "add", "dev", "ba", "ingress",
                    "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred",
                    "egress", "redirect", "dev", "bb",
                ],
            )?;
        } else {
            sh.output(
                "ip",
                &[
                    "netns", "exec", &self.w, "tc", "qdisc", "del", "dev", "ba", "ingress",
                ],
            )?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.s, &self.w, &self.d] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    gen_pps: f64,
    sent: u64,
    delivered: u64,
    ring_drops: u64,
    cpu_s: f64,
    gen_s: f64,
}

fn one_run(lab: &Lab, f: Forwarder, conf: &str, packets: u64) -> Result<Sample, String> {
    let before = lab.delivered()?;
    let bridge = match f {
        Forwarder::Nsring => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", "1", &nsring_bin(), "bridge"])
                .args([
                    "-i",
                    &format!("{}/ba", lab.w),
                    "-o",
                    &format!("{}/bb", lab.w),
                ])
                .args(["--json", "-q", "--duration", "3600"]);
            Some(Proc::spawn(cmd, "bridging", Duration::from_secs(10))?)
        }
        Forwarder::TcMirred => {
            lab.tc(true)?;
            None
        }
    };
    let gen_result = super::trafgen_on(&lab.s, "tx0", conf, packets);
    // what is still in the ring or the veth goes through before the count is read
    std::thread::sleep(Duration::from_millis(300));
    let delivered = lab.delivered()? - before;
    let mut s = Sample {
        delivered,
        ..Sample::default()
    };
    match bridge {
        Some(p) => {
            let fin = p.stop()?;
            let last = fin
                .stdout
                .lines()
                .rev()
                .find(|l| l.contains("\"final\""))
                .ok_or_else(|| format!("nsring bridge printed no final line: {}", fin.stderr))?;
            let v: serde_json::Value =
                serde_json::from_str(last).map_err(|e| format!("bad JSON from bridge: {e}"))?;
            s.ring_drops = v["ring_drops"].as_u64().unwrap_or(0);
            s.cpu_s = fin.cpu_s;
        }
        None => lab.tc(false)?,
    }
    let (sent, secs) = gen_result?;
    s.sent = sent;
    s.gen_s = secs;
    s.gen_pps = sent as f64 / secs;
    Ok(s)
}

/// One table row: a frame size and a forwarder over the repetitions.
pub struct Row {
    size: usize,
    forwarder: &'static str,
    generated: Stat,
    delivered_pps: Stat,
    delivered_pct: Stat,
    ring_drops: Stat,
    cpu_ns: Option<Stat>,
}

/// Runs every forwarder `reps` times per size (interleaved, order rotated per repetition).
pub fn run(
    forwarders: &[Forwarder],
    sizes: &[usize],
    reps: usize,
    packets: u64,
    dir: &std::path::Path,
    verbose: bool,
) -> Result<Vec<Row>, String> {
    if forwarders.is_empty() {
        return Ok(Vec::new());
    }
    let lab = Lab::new()?;
    let mut rows = Vec::new();
    for &size in sizes {
        let conf = dir.join(format!("bridge{size}.cfg"));
        std::fs::write(&conf, trafgen_conf(size)).map_err(|e| e.to_string())?;
        let conf = conf.to_string_lossy().into_owned();
        let mut by: Vec<Vec<Sample>> = vec![Vec::new(); forwarders.len()];
        for rep in 0..reps {
            let n = forwarders.len();
            for k in 0..n {
                let i = (k + rep) % n;
                if STOP.load(Ordering::SeqCst) {
                    return Ok(rows);
                }
                let f = forwarders[i];
                eprint!(
                    "\rbench: bridge {size:>4} B {:<14} run {}/{}   ",
                    f.name(),
                    rep + 1,
                    reps
                );
                let started = Instant::now();
                let s = one_run(&lab, f, &conf, packets)?;
                if verbose {
                    eprintln!(
                        "\rbench: bridge {size:>4} B {:<14} run {}: sent {} at {:.0} kpps, delivered {}, ring drops {}, {:.1} s",
                        f.name(),
                        rep + 1,
                        s.sent,
                        s.gen_pps / 1e3,
                        s.delivered,
                        s.ring_drops,
                        started.elapsed().as_secs_f64()
                    );
                }
                by[i].push(s);
            }
        }
        for (&f, samples) in forwarders.iter().zip(by) {
            if samples.is_empty() {
                continue;
            }
            let st = |g: &dyn Fn(&Sample) -> f64| stat(samples.iter().map(g).collect());
            rows.push(Row {
                size,
                forwarder: f.name(),
                generated: st(&|s| s.gen_pps),
                delivered_pps: st(&|s| s.delivered as f64 / s.gen_s.max(1e-9)),
                delivered_pct: st(&|s| 100.0 * s.delivered as f64 / s.sent.max(1) as f64),
                ring_drops: st(&|s| s.ring_drops as f64),
                cpu_ns: (f == Forwarder::Nsring)
                    .then(|| st(&|s| 1e9 * s.cpu_s / s.delivered.max(1) as f64)),
            });
        }
    }
    eprintln!();
    Ok(rows)
}

pub fn print(rows: &[Row], packets: u64, reps: usize) {
    if rows.is_empty() {
        return;
    }
    println!(
        "\nbridge: trafgen -> ba | forwarder | bb -> receiver; {packets} packets per run, {reps} runs, median [min..max]"
    );
    println!(
        "{:>5} {:<14} {:>24} {:>24} {:>22} {:>12} {:>22}",
        "bytes",
        "forwarder",
        "sent kpps",
        "delivered kpps",
        "delivered %",
        "ring drops",
        "bridge CPU ns/pkt"
    );
    let k = |s: Stat| {
        format!(
            "{:.0} [{:.0}..{:.0}]",
            s.med / 1e3,
            s.min / 1e3,
            s.max / 1e3
        )
    };
    for r in rows {
        println!(
            "{:>5} {:<14} {:>24} {:>24} {:>22} {:>12.0} {:>22}",
            r.size,
            r.forwarder,
            k(r.generated),
            k(r.delivered_pps),
            format!(
                "{:.2} [{:.2}..{:.2}]",
                r.delivered_pct.med, r.delivered_pct.min, r.delivered_pct.max
            ),
            r.ring_drops.med,
            r.cpu_ns.map_or("-".into(), |c| format!(
                "{:.0} [{:.0}..{:.0}]",
                c.med, c.min, c.max
            )),
        );
    }
}

pub fn to_json(rows: &[Row]) -> serde_json::Value {
    let st = |s: Stat| serde_json::json!({"median": s.med, "min": s.min, "max": s.max});
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "frame_bytes": r.size,
                    "forwarder": r.forwarder,
                    "sent_pps": st(r.generated),
                    "delivered_pps": st(r.delivered_pps),
                    "delivered_pct": st(r.delivered_pct),
                    "ring_drops": st(r.ring_drops),
                    "bridge_cpu_ns_per_packet": r.cpu_ns.map(st),
                })
            })
            .collect(),
    )
}
