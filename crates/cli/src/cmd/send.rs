//! `nsring send`: pfsend's job — synthetic frames or a replayed capture file, on an
//! interface of any namespace, in batches, at a steady rate or as fast as possible.

use std::fs::File;
use std::io::{BufReader, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{Transmitter, TxConfig, TxMode, TxStats};
use nsring_netns::{NetNs, NsSpec};

use crate::cmd::count::parse_secs;
use crate::out::{Out, json_line};
use crate::stats::{rate, thousands};
use crate::synth::{self, Proto, Spec};
use crate::target::Target;

const AFTER_HELP: &str = "\
Examples:
  nsring send -i ns0/eth1 -N 1000000                 1 M UDP frames of 60 bytes, top speed
  nsring send -i ns0/eth1 --pps 100000 --duration 10 -l 1514
  nsring send -i ns0/eth1 --src-count 100 --dst-count 10 --ports 1000-1999 --proto tcp -6
  nsring send -i ns0/eth1 -r trace.pcapng --speed 2 --loop 3

Synthetic frames go from the interface's MAC to 02:00:5e:00:00:02 (a unicast address no
interface has, so receivers drop them early), 198.18.0.1 -> 198.18.0.2 (2001:2::1 ->
2001:2::2 with -6), ports 9. --src-count/--dst-count make that many consecutive source/destination addresses
and --ports a range of ports; the frames cycle through every combination (at most 65536
pre-built frames). Lengths count the Ethernet header and a VLAN tag, not the FCS.

-r replays a pcap or pcapng file (Ethernet only; it is read into memory) at its own timing,
--speed times faster, or with --top-speed as fast as possible; --pps/--gbps pace it instead.
Once a second a 'TX rate' line goes to stderr (with --json, JSON lines to stdout).";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP,
    after_long_help = crate::long_help(AFTER_HELP))]
pub struct Args {
    /// Interface: IFACE or NS/IFACE (ns0/eth1).
    #[arg(short, long, value_name = "[NS/]IFACE", add = crate::complete::interface())]
    pub interface: String,
    /// The namespace of IFACE: NAME, pid:PID, a path or a container (podman:web1) (default: the current one).
    #[arg(short = 'n', long, value_name = "NS", add = crate::complete::netns())]
    pub netns: Option<NsSpec>,
    /// Frame length in bytes without FCS: 60 up to MTU + 14 (+ 4 with --vlan).
    #[arg(
        short = 'l',
        long = "length",
        value_name = "BYTES",
        default_value_t = 60
    )]
    pub length: usize,
    /// Frames to send; 0 sends until Ctrl-C or --duration.
    #[arg(short = 'N', long = "count", value_name = "N", default_value_t = 0)]
    pub count: u64,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Send at this many packets per second, steadily.
    #[arg(long, value_name = "PPS", conflicts_with = "gbps", value_parser = parse_rate)]
    pub pps: Option<f64>,
    /// Send at this many Gbit/s of frame bytes (8 bits per frame byte, no FCS/preamble).
    #[arg(long, value_name = "GBPS", value_parser = parse_rate)]
    pub gbps: Option<f64>,
    /// Transport of synthetic frames.
    #[arg(long, value_name = "PROTO", value_enum, default_value_t = Proto::Udp)]
    pub proto: Proto,
    /// IPv6 (default addresses 2001:2::1 -> 2001:2::2).
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Source MAC [default: the interface's].
    #[arg(long, value_name = "MAC", value_parser = crate::synth::parse_mac)]
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC.
    #[arg(long, value_name = "MAC", value_parser = crate::synth::parse_mac, default_value = "02:00:5e:00:00:02")]
    pub dst_mac: [u8; 6],
    /// First source IP [default: 198.18.0.1 or 2001:2::1].
    #[arg(long, value_name = "IP")]
    pub src_ip: Option<IpAddr>,
    /// First destination IP [default: 198.18.0.2 or 2001:2::2].
    #[arg(long, value_name = "IP")]
    pub dst_ip: Option<IpAddr>,
    /// Number of source IPs (consecutive from --src-ip).
    #[arg(long = "src-count", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub src_ips: u32,
    /// Number of destination IPs (consecutive from --dst-ip).
    #[arg(long = "dst-count", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub dst_ips: u32,
    /// Ports (source and destination; the ICMP echo id): A or A-B.
    #[arg(long, value_name = "A-B", default_value = "9", value_parser = crate::synth::parse_ports)]
    pub ports: (u16, u16),
    /// Tag synthetic frames with this 802.1Q VLAN id.
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u16).range(0..4095))]
    pub vlan: Option<u16>,
    /// Random payload bytes instead of a sequence number and a pattern.
    #[arg(long)]
    pub random_payload: bool,
    /// Replay this pcap or pcapng file instead of synthetic frames.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Replay at this multiple of the file's timing.
    #[arg(long, value_name = "X", requires = "file", conflicts_with = "top_speed", value_parser = parse_rate)]
    pub speed: Option<f64>,
    /// Replay as fast as possible, ignoring the file's timing.
    #[arg(long, requires = "file")]
    pub top_speed: bool,
    /// Play the file this many times; 0 loops until Ctrl-C, --duration or -N.
    #[arg(
        long = "loop",
        value_name = "N",
        default_value_t = 1,
        requires = "file"
    )]
    pub loops: u64,
    /// Transmit path: sendmmsg (default, faster on veth) or ring (PACKET_TX_RING).
    #[arg(long, value_name = "MODE", default_value = "sendmmsg", value_parser = parse_mode)]
    pub mode: TxMode,
    /// Bypass the qdisc (PACKET_QDISC_BYPASS): faster, but no shaping, and packet sockets
    /// on the sending interface do not see the frames.
    #[arg(long)]
    pub qdisc_bypass: bool,
    /// Frames per system call.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// JSON lines on stdout instead of the text rate lines.
    #[arg(long)]
    pub json: bool,
    /// No rate lines while running (only the final line).
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("'{s}' is not a positive number"))
}

fn parse_mode(s: &str) -> Result<TxMode, String> {
    s.parse().map_err(|e: nsring_capture::Error| e.to_string())
}

/// When each frame may go.
#[derive(Debug)]
enum Pacer {
    /// As fast as possible.
    Top,
    /// `pps` frames a second, steadily: frame `s` is due at `(s + skipped) / pps` s; a
    /// backlog beyond `burst` frames (after a stall) is forgiven, not sent in a burst.
    Rate { pps: f64, burst: u64, skipped: u64 },
    /// A replayed file's timing: frame `s` is due at its offset in the file, divided by
    /// `speed`, plus one file length per completed loop.
    File {
        offsets_ns: Vec<u64>,
        span_ns: u64,
        speed: f64,
    },
}

impl Pacer {
    /// The time (since start) frame number `s` is due.
    fn due(&self, s: u64) -> Duration {
        match self {
            Pacer::Top => Duration::ZERO,
            Pacer::Rate { pps, skipped, .. } => Duration::from_secs_f64((s + skipped) as f64 / pps),
            Pacer::File {
                offsets_ns,
                span_ns,
                speed,
            } => {
                let n = offsets_ns.len() as u64;
                let (lap, i) = (s / n, (s % n) as usize);
                let ns = lap as f64 * *span_ns as f64 + offsets_ns[i] as f64;
                Duration::from_secs_f64(ns / speed / 1e9)
            }
        }
    }

    /// How many frames from number `sent` on are due at `elapsed` (at most `max`), and
    /// if none, how long until the next.
    fn ready(&mut self, sent: u64, elapsed: Duration, max: u64) -> (u64, Duration) {
        if let Pacer::Rate {
            pps,
            burst,
            skipped,
        } = self
        {
            let credit = (elapsed.as_secs_f64() * *pps) as u64;
            if credit > sent + *skipped + *burst {
                *skipped = credit - sent - *burst;
            }
        }
        let mut n = 0;
        while n < max && self.due(sent + n) <= elapsed {
            n += 1;
        }
        let wait = if n == 0 {
            self.due(sent).saturating_sub(elapsed)
        } else {
            Duration::ZERO
        };
        (n, wait)
    }
}

/// What goes on the wire: the frames and, for a file, their timing.
struct Plan {
    frames: Vec<Vec<u8>>,
    what: String,
    /// Total frames to send (0 = unbounded).
    total: u64,
    pacer: Pacer,
}

/// Reads a capture file into frames and their offsets from the first timestamp.
fn load_file(path: &PathBuf) -> anyhow::Result<(Vec<Vec<u8>>, Vec<u64>, u64)> {
    let shown = path.display();
    let f = File::open(path).with_context(|| format!("cannot open {shown}"))?;
    let mut r = nsring_pcap::CaptureReader::open(BufReader::with_capacity(1 << 20, f))
        .with_context(|| format!("cannot read {shown}"))?;
    let (mut frames, mut ts) = (Vec::new(), Vec::new());
    let mut truncated = 0u64;
    loop {
        let p = match r.next_packet() {
            Ok(Some(p)) => p.to_owned_packet(),
            Ok(None) => break,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot read {shown}")));
            }
        };
        let linktype = r
            .interfaces()
            .get(p.interface as usize)
            .map(|i| i.linktype)
            .unwrap_or(nsring_pcap::LinkType::ETHERNET);
        if linktype != nsring_pcap::LinkType::ETHERNET {
            anyhow::bail!(
                "{shown}: packet {} has link type {}; only Ethernet (1) frames can be replayed",
                frames.len() + 1,
                linktype.0
            );
        }
        if p.data.len() < 14 {
            anyhow::bail!(
                "{shown}: packet {} is {} bytes, shorter than an Ethernet header (14)",
                frames.len() + 1,
                p.data.len()
            );
        }
        if (p.data.len() as u64) < u64::from(p.orig_len) {
            truncated += 1;
        }
        ts.push(p.ts_ns);
        frames.push(p.data);
    }
    if frames.is_empty() {
        anyhow::bail!("{shown} holds no packets to replay");
    }
    if truncated > 0 {
        eprintln!(
            "nsring send: warning: {truncated} packets of {shown} were cut by the capture's snaplen; they are sent as captured"
        );
    }
    let t0 = ts[0];
    // out-of-order timestamps count as "at once" rather than going back in time
    let mut last = 0u64;
    let offsets: Vec<u64> = ts
        .iter()
        .map(|&t| {
            last = last.max(t.saturating_sub(t0));
            last
        })
        .collect();
    let n = offsets.len() as u64;
    let end = *offsets.last().unwrap_or(&0);
    // one lap lasts the file's span plus one mean gap, so loops keep the file's rhythm
    let span = if n > 1 {
        end + end / (n - 1)
    } else {
        1_000_000
    };
    Ok((frames, offsets, span))
}

fn plan(args: &Args, tx: &Transmitter, src_mac: [u8; 6], label: &str) -> anyhow::Result<Plan> {
    let rate_pps = |len: f64| {
        args.pps
            .or(args.gbps.map(|g| g * 1e9 / (8.0 * len.max(1.0))))
    };
    if let Some(path) = &args.file {
        let (frames, offsets, span) = load_file(path)?;
        if let Some((i, f)) = frames.iter().enumerate().find(|(_, f)| !tx.fits(f)) {
            anyhow::bail!(
                "{}: packet {} is {} bytes, more than {label} carries (MTU {} + 14{})",
                path.display(),
                i + 1,
                f.len(),
                tx.mtu(),
                if f.len() >= 14 && matches!(u16::from_be_bytes([f[12], f[13]]), 0x8100 | 0x88a8) {
                    " + 4 for the VLAN tag"
                } else {
                    ""
                }
            );
        }
        let n = frames.len() as u64;
        let mean_len = frames.iter().map(|f| f.len() as f64).sum::<f64>() / n as f64;
        let by_loops = if args.loops == 0 { 0 } else { n * args.loops };
        let total = match (args.count, by_loops) {
            (0, b) => b,
            (c, 0) => c,
            (c, b) => c.min(b),
        };
        let pacer = if let Some(pps) = rate_pps(mean_len) {
            Pacer::Rate {
                pps,
                burst: burst(pps, args.batch),
                skipped: 0,
            }
        } else if args.top_speed {
            Pacer::Top
        } else {
            Pacer::File {
                offsets_ns: offsets,
                span_ns: span,
                speed: args.speed.unwrap_or(1.0),
            }
        };
        return Ok(Plan {
            what: format!("{n} packets of {}", path.display()),
            frames,
            total,
            pacer,
        });
    }
    let (dsrc, ddst): (IpAddr, IpAddr) = if args.ipv6
        || args.src_ip.is_some_and(|a| a.is_ipv6())
        || args.dst_ip.is_some_and(|a| a.is_ipv6())
    {
        ("2001:2::1".parse()?, "2001:2::2".parse()?)
    } else {
        ("198.18.0.1".parse()?, "198.18.0.2".parse()?)
    };
    let spec = Spec {
        len: args.length,
        proto: args.proto,
        src_mac,
        dst_mac: args.dst_mac,
        src_ip: args.src_ip.unwrap_or(dsrc),
        dst_ip: args.dst_ip.unwrap_or(ddst),
        src_count: args.src_ips,
        dst_count: args.dst_ips,
        ports: args.ports,
        vlan: args.vlan,
        random_payload: args.random_payload,
    };
    if args.ipv6 && !spec.is_v6() {
        return Err(crate::usage("-6 was given with IPv4 addresses"));
    }
    spec.check().map_err(crate::usage)?;
    let max = tx.max_frame_len() + if args.vlan.is_some() { 4 } else { 0 };
    if args.length > max {
        return Err(crate::usage(format!(
            "frame length {} is above {max}, what {label} carries (MTU {} + 14{})",
            args.length,
            tx.mtu(),
            if args.vlan.is_some() {
                " + 4 for the VLAN tag"
            } else {
                ""
            }
        )));
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let frames = synth::pool(&spec, seed).map_err(|e| anyhow::anyhow!(e))?;
    let pacer = match rate_pps(args.length as f64) {
        Some(pps) => Pacer::Rate {
            pps,
            burst: burst(pps, args.batch),
            skipped: 0,
        },
        None => Pacer::Top,
    };
    Ok(Plan {
        what: format!(
            "{} frames of {} bytes, {} flows",
            spec.describe(),
            spec.len,
            spec.variants()
        ),
        frames,
        total: args.count,
        pacer,
    })
}

/// The backlog a rate pacer may catch up after a stall: 2 ms of traffic or one batch.
fn burst(pps: f64, batch: u32) -> u64 {
    ((pps * 0.002) as u64).max(u64::from(batch))
}

#[derive(Debug, serde::Serialize)]
struct JsonTx<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    interface: &'a str,
    #[serde(flatten)]
    stats: TxStats,
    elapsed_s: f64,
    pps: f64,
    gbps: f64,
    interval_pps: f64,
    interval_gbps: f64,
}

fn rate_line(now: TxStats, prev: TxStats, since_start: Duration, since_prev: Duration) -> String {
    let (s, d) = (
        since_start.as_secs_f64().max(1e-9),
        since_prev.as_secs_f64().max(1e-9),
    );
    let dp = now.packets - prev.packets;
    let db = now.bytes - prev.bytes;
    format!(
        "TX rate: [current {} pps/{:.2} Gbps][average {} pps/{:.2} Gbps][total {} pkts]",
        rate(dp as f64 / d),
        db as f64 * 8.0 / d / 1e9,
        rate(now.packets as f64 / s),
        now.bytes as f64 * 8.0 / s / 1e9,
        thousands(now.packets)
    )
}

fn json<'a>(
    kind: &'a str,
    label: &'a str,
    now: TxStats,
    prev: TxStats,
    since_start: Duration,
    since_prev: Duration,
) -> JsonTx<'a> {
    let (s, d) = (
        since_start.as_secs_f64().max(1e-9),
        since_prev.as_secs_f64().max(1e-9),
    );
    JsonTx {
        kind,
        interface: label,
        stats: now,
        elapsed_s: since_start.as_secs_f64(),
        pps: now.packets as f64 / s,
        gbps: now.bytes as f64 * 8.0 / s / 1e9,
        interval_pps: (now.packets - prev.packets) as f64 / d,
        interval_gbps: (now.bytes - prev.bytes) as f64 * 8.0 / d / 1e9,
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = Target::parse(&args.interface, args.netns.as_ref())?;
    let Some(iface) = target.iface.clone() else {
        return Err(crate::usage(
            "send needs one interface; 'any' is for capturing",
        ));
    };
    if args.file.is_none() && args.length < synth::MIN_FRAME {
        return Err(crate::usage(format!(
            "frame length {} is below {}, the Ethernet minimum without FCS",
            args.length,
            synth::MIN_FRAME
        )));
    }
    let ns = NetNs::open(&target.ns)?;
    let label = target.to_string();
    let mut tx = Transmitter::open(
        &ns,
        &TxConfig::new(iface.as_str())
            .mode(args.mode)
            .qdisc_bypass(args.qdisc_bypass)
            .ring_frames(args.batch.max(256) * 2)
            .app_name("nsring-send"),
    )?;
    crate::warn_unrecorded("send", tx.record_error());
    let src_mac = match args.src_mac {
        Some(m) => m,
        None => nsring_netns::link::get(&ns, &iface)?
            .mac
            .as_deref()
            .and_then(|m| synth::parse_mac(m).ok())
            .unwrap_or([0x02, 0x00, 0x5e, 0x00, 0x00, 0x01]),
    };
    let mut plan = plan(&args, &tx, src_mac, &label)?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    if !args.quiet && !args.json {
        eprintln!(
            "nsring send: sending {} on {label} (netns inode {}) via {}{}{}",
            plan.what,
            ns.inode(),
            args.mode,
            if args.qdisc_bypass {
                ", qdisc bypass"
            } else {
                ""
            },
            match &plan.pacer {
                Pacer::Rate { pps, .. } => format!(", {} pps", rate(*pps)),
                Pacer::File { speed, .. } => format!(", file timing x{speed}"),
                Pacer::Top => String::new(),
            }
        );
    }

    let mut out = Out::new();
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let (mut last, mut prev) = (start, TxStats::default());
    let pool_len = plan.frames.len() as u64;
    let mut sent = 0u64; // frames handed over (pool position)
    let batch_max = u64::from(args.batch);
    let interval = Duration::from_secs(1);
    loop {
        if stop.load(Ordering::Relaxed) || (plan.total != 0 && sent >= plan.total) {
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let mut max = batch_max;
        if plan.total != 0 {
            max = max.min(plan.total - sent);
        }
        if let Pacer::Rate { pps, .. } = plan.pacer {
            // at most ~1 ms of traffic per call, so the rate is smooth
            max = max.min(((pps / 1000.0) as u64).max(1));
        }
        let (n, wait) = plan.pacer.ready(sent, now - start, max);
        if n == 0 {
            let wait = wait
                .min(interval.saturating_sub(now - last))
                .min(deadline.map_or(wait, |d| d - now));
            if wait > Duration::from_micros(60) {
                std::thread::sleep(wait - Duration::from_micros(50));
            } else {
                std::hint::spin_loop();
            }
        } else {
            let frames = &plan.frames;
            tx.send_batch((sent..sent + n).map(|s| frames[(s % pool_len) as usize].as_slice()))?;
            sent += n;
        }
        let now = Instant::now();
        if now - last >= interval {
            let st = tx.stats();
            if args.json {
                json_line(
                    &mut out,
                    &json("stats", &label, st, prev, now - start, now - last),
                )?;
                out.flush()?;
            } else if !args.quiet {
                eprintln!("{}", rate_line(st, prev, now - start, now - last));
            }
            prev = st;
            last = now;
        }
    }
    tx.flush()?;
    let now = Instant::now();
    let st = tx.stats();
    if args.json {
        json_line(
            &mut out,
            &json("final", &label, st, prev, now - start, now - last),
        )?;
        out.flush()?;
    } else {
        if !args.quiet && now - last >= Duration::from_millis(200) {
            eprintln!("{}", rate_line(st, prev, now - start, now - last));
        }
        eprintln!(
            "Sent {} packets ({} bytes) in {:.2} s{}",
            st.packets,
            st.bytes,
            (now - start).as_secs_f64(),
            if st.errors > 0 {
                format!(", {} refused", st.errors)
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_pacer_spreads_and_forgives_stalls() {
        let mut p = Pacer::Rate {
            pps: 1000.0,
            burst: 5,
            skipped: 0,
        };
        // at t = 4.5 ms, frames 0..=4 are due
        assert_eq!(p.ready(0, Duration::from_micros(4_500), 100).0, 5);
        let (n, wait) = p.ready(5, Duration::from_micros(4_500), 100);
        assert_eq!(n, 0);
        assert_eq!(wait, Duration::from_micros(500));
        // a 1 s stall: only the burst (5) and the frame due now are sent, not 1000
        assert_eq!(p.ready(5, Duration::from_micros(1_004_500), 100).0, 6);
    }

    #[test]
    fn file_pacer_follows_offsets_and_loops() {
        let mut p = Pacer::File {
            offsets_ns: vec![0, 1_000_000, 3_000_000],
            span_ns: 4_000_000,
            speed: 2.0,
        };
        assert_eq!(p.due(1), Duration::from_micros(500));
        assert_eq!(p.due(2), Duration::from_micros(1500));
        assert_eq!(p.due(3), Duration::from_micros(2000));
        assert_eq!(p.ready(0, Duration::from_micros(600), 10).0, 2);
    }

    #[test]
    fn the_rate_line_has_pfsend_shape() {
        let now = TxStats {
            packets: 1_234_567,
            bytes: 74_074_020,
            ..Default::default()
        };
        let prev = TxStats {
            packets: 1_000_000,
            bytes: 60_000_000,
            ..Default::default()
        };
        assert_eq!(
            rate_line(now, prev, Duration::from_secs(5), Duration::from_secs(1)),
            "TX rate: [current 234'567.00 pps/0.11 Gbps][average 246'913.40 pps/0.12 Gbps][total 1'234'567 pkts]"
        );
    }
}
