//! `nsring latency -o A -i B`: one-way latency from one interface to another, each in any
//! namespace (PF_RING's pflatency). Both ends run in this process and are timed by the same
//! clock: the kernel's packet timestamps (CLOCK_REALTIME), taken where a probe passes the
//! packet taps of -o on its way out and of -i on its way in. A probe's one-way time is the
//! difference of the two; no clock has to be synchronised with another machine.
//!
//! Probes are Ethernet frames to the broadcast address, EtherType 0x88b5 (local
//! experimental), carrying a session number and a sequence number; frames of other
//! sessions are ignored. The count and the rate are bounded.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{Capture, CaptureConfig, Direction, RingGeometry, Sender, TxConfig, Waker};
use nsring_netns::{NetNs, NsSpec};

use crate::out::{Out, json_line};
use crate::target::Target;

/// The probe's EtherType and the magic that opens its payload.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const MAGIC: &[u8; 8] = b"nsrtLAT1";
/// Ethernet header + magic + session + sequence.
const PROBE_MIN: usize = 14 + 8 + 8 + 8;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nsring latency -o ns0/eth1 -i ns1/eth1             100 probes, 10 a second
  nsring latency -o ns0/eth1 -i ns1/eth1 -N 10000 --rate 1000 --json

The one-way time of a probe is the kernel's timestamp where it arrives at -i minus the
kernel's timestamp where it leaves -o (both CLOCK_REALTIME, both in this process). Probes
that do not arrive within --wait after the last one was sent are lost. Prints min, avg,
max and the 50th, 90th and 99th percentiles in microseconds.")]
pub struct Args {
    /// Where probes leave: IFACE or NS/IFACE.
    #[arg(short = 'o', long = "out-interface", value_name = "TARGET", add = crate::complete::interface())]
    pub out_interface: String,
    /// Where they are received: IFACE or NS/IFACE.
    #[arg(short = 'i', long = "interface", value_name = "TARGET", add = crate::complete::interface())]
    pub interface: String,
    /// The namespace of targets that do not name one.
    #[arg(short = 'n', long, value_name = "NS", add = crate::complete::netns())]
    pub netns: Option<NsSpec>,
    /// Probes to send.
    #[arg(short = 'N', long, value_name = "N", default_value = "100", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub count: u64,
    /// Probes per second.
    #[arg(long, value_name = "PPS", default_value = "10", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// Probe length in bytes (frame without FCS).
    #[arg(short = 'l', long, value_name = "BYTES", default_value = "60", value_parser = clap::value_parser!(u16).range(60..=1514))]
    pub length: u16,
    /// Seconds to wait for the last probes after sending them.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = crate::cmd::count::parse_secs)]
    pub wait: Duration,
    /// One JSON object with the results instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Times (ns) each probe was seen at one tap, by sequence number; duplicates counted.
#[derive(Debug, Default)]
struct Seen {
    at: HashMap<u64, u64>,
    duplicates: u64,
    /// Frames the tap's ring had no room for (a loaded machine; the probes among them are
    /// counted as lost).
    drops: u64,
    /// The tap's interface went down or away.
    down: bool,
}

/// A capture of this session's probes at one tap, on a thread of its own.
struct Tap {
    waker: Waker,
    thread: std::thread::JoinHandle<anyhow::Result<Seen>>,
}

impl Tap {
    fn start(
        ns: &NetNs,
        t: &Target,
        dir: Direction,
        session: u64,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<Tap> {
        let cfg = CaptureConfig::new(t.iface_name())
            .direction(dir)
            .filter("ether proto 0x88b5")
            .app_name("nsring-latency")
            // Small blocks, many: at a low rate every block is retired by the timeout with a
            // probe or two in it, so the ring holds 32 blocks' worth of 10 ms (the times
            // are the kernel's, the timeout does not enter them).
            .ring(RingGeometry {
                block_size: 1 << 16,
                block_count: 32,
                block_timeout_ms: 10,
                ..RingGeometry::default()
            });
        let mut cap = Capture::open(ns, &cfg).with_context(|| format!("cannot capture on {t}"))?;
        let waker = cap.waker();
        let thread = std::thread::spawn(move || -> anyhow::Result<Seen> {
            let mut seen = Seen::default();
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                let timeout = if stopping {
                    Duration::ZERO
                } else {
                    Duration::from_millis(100)
                };
                let next = match cap.next_block(Some(timeout)) {
                    Ok(b) => b,
                    Err(e) if e.interface_gone() => {
                        seen.down = true;
                        return Ok(seen);
                    }
                    Err(e) => return Err(e.into()),
                };
                let Some(block) = next else {
                    if stopping {
                        break;
                    }
                    continue;
                };
                for f in &block {
                    if let Some(seq) = probe_seq(f.data(), session)
                        && seen.at.insert(seq, f.timestamp_ns()).is_some()
                    {
                        seen.duplicates += 1;
                    }
                }
            }
            seen.drops = cap.stats()?.drops;
            Ok(seen)
        });
        Ok(Tap { waker, thread })
    }

    fn finish(self) -> anyhow::Result<Seen> {
        let _ = self.waker.wake();
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("a capture thread panicked"))?
    }
}

/// Sends one probe; false if the interface kept refusing it (ENOBUFS/ENETDOWN: no carrier or
/// a full queue) for 50 ms: it is then lost, not an error.
fn send_probe(sender: &Sender, frame: &[u8]) -> nsring_capture::Result<bool> {
    let until = Instant::now() + Duration::from_millis(50);
    loop {
        match sender.send(frame) {
            Ok(()) => return Ok(true),
            Err(e) => {
                let transient = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .and_then(std::io::Error::raw_os_error)
                    .is_some_and(|c| c == libc::ENOBUFS || c == libc::ENETDOWN);
                if !transient {
                    return Err(e);
                }
                if Instant::now() >= until {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Probe `seq` of `session`, `len` bytes.
fn probe(session: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&[0x02, 0x6e, 0x73, 0x72, 0x74, 0x4c]);
    f.extend_from_slice(&ETHERTYPE);
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&session.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.resize(len.max(PROBE_MIN), 0);
    f
}

/// The sequence number of a probe of `session`, or None for any other frame.
fn probe_seq(b: &[u8], session: u64) -> Option<u64> {
    if b.len() < PROBE_MIN || b[12..14] != ETHERTYPE || &b[14..22] != MAGIC {
        return None;
    }
    let s = u64::from_be_bytes(b[22..30].try_into().ok()?);
    (s == session).then(|| u64::from_be_bytes(b[30..38].try_into().expect("8 bytes")))
}

/// The results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Probes the interface refused to send (a link without carrier, a full queue for
    /// 50 ms); counted as sent and lost.
    pub send_errors: u64,
    /// Probes that arrived but whose departure the -o tap did not see (not timed).
    pub untimed: u64,
    /// Frames the two taps' rings had no room for (on a loaded machine).
    pub tap_drops: u64,
    pub min_us: f64,
    pub avg_us: f64,
    pub max_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
}

/// The `p`th percentile (nearest rank) of sorted `v`.
fn percentile(v: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Puts the two taps' times together.
fn report(sent: u64, send_errors: u64, out: &Seen, at: &Seen) -> Report {
    let mut delays: Vec<u64> = Vec::with_capacity(at.at.len());
    let mut untimed = 0;
    for (seq, rx) in &at.at {
        match out.at.get(seq) {
            Some(tx) => delays.push(rx.saturating_sub(*tx)),
            None => untimed += 1,
        }
    }
    delays.sort_unstable();
    let us = |ns: u64| ns as f64 / 1e3;
    let received = at.at.len() as u64;
    let (min, max, avg, p50, p90, p99) = if delays.is_empty() {
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    } else {
        let sum: u128 = delays.iter().map(|&d| u128::from(d)).sum();
        (
            us(delays[0]),
            us(*delays.last().expect("not empty")),
            sum as f64 / delays.len() as f64 / 1e3,
            us(percentile(&delays, 50.0)),
            us(percentile(&delays, 90.0)),
            us(percentile(&delays, 99.0)),
        )
    };
    Report {
        sent,
        received,
        lost: sent.saturating_sub(received),
        duplicates: at.duplicates,
        send_errors,
        untimed,
        tap_drops: out.drops + at.drops,
        min_us: min,
        avg_us: avg,
        max_us: max,
        p50_us: p50,
        p90_us: p90,
        p99_us: p99,
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let from = Target::parse(&args.out_interface, args.netns.as_ref())?;
    let to = Target::parse(&args.interface, args.netns.as_ref())?;
    for (t, flag) in [(&from, "-o"), (&to, "-i")] {
        if t.iface.is_none() {
            return Err(crate::usage(format!(
                "{flag} {t}: give one interface, not 'any'"
            )));
        }
    }
    let from_ns = NetNs::open(&from.ns)?;
    let to_ns = NetNs::open(&to.ns)?;
    if from_ns.same_as(&to_ns) && from.iface == to.iface {
        return Err(crate::usage(format!(
            "-o {from} and -i {to} are the same interface: probes need a path from one interface to another"
        )));
    }
    let session = (u64::from(std::process::id()) << 32) ^ nsring_registry::record::unix_ns_now();
    let stop = Arc::new(AtomicBool::new(false));
    let out_tap = Tap::start(&from_ns, &from, Direction::Out, session, Arc::clone(&stop))?;
    let in_tap = Tap::start(&to_ns, &to, Direction::In, session, Arc::clone(&stop))?;
    let sender = Sender::open_with(
        &from_ns,
        &TxConfig::new(from.iface_name()).app_name("nsring-latency"),
    )
    .with_context(|| format!("cannot send on {from}"))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let i = Arc::clone(&interrupted);
    ctrlc::set_handler(move || i.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    if !args.json {
        eprintln!(
            "nsring: {} probes of {} bytes at {}/s from {from} to {to} \
             (kernel timestamps, CLOCK_REALTIME, both taps in this process)",
            args.count, args.length, args.rate
        );
    }
    let gap = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = Instant::now();
    let (mut sent, mut send_errors) = (0u64, 0u64);
    while sent < args.count && !interrupted.load(Ordering::Relaxed) {
        let due = start + gap.mul_f64(sent as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if !send_probe(&sender, &probe(session, sent, usize::from(args.length)))
            .with_context(|| format!("cannot send a probe on {from}"))?
        {
            send_errors += 1;
        }
        sent += 1;
    }
    let waited = Instant::now();
    while waited.elapsed() < args.wait && !interrupted.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let out_seen = out_tap.finish()?;
    let in_seen = in_tap.finish()?;
    for (seen, t) in [(&out_seen, &from), (&in_seen, &to)] {
        if seen.down {
            eprintln!("nsring: warning: {t} went down or away: no probe could be seen there after");
        }
    }
    let r = report(sent, send_errors, &out_seen, &in_seen);
    let mut out = Out::new();
    if args.json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            from: String,
            to: String,
            clock: &'a str,
            #[serde(flatten)]
            report: &'a Report,
        }
        json_line(
            &mut out,
            &Line {
                kind: "final",
                from: from.to_string(),
                to: to.to_string(),
                clock: "kernel packet timestamps (CLOCK_REALTIME)",
                report: &r,
            },
        )?;
    } else {
        writeln!(out, "Packets sent: {}", r.sent)?;
        writeln!(out, "Packets received: {}", r.received)?;
        if r.send_errors > 0 {
            writeln!(out, "Not sent (interface refused): {}", r.send_errors)?;
        }
        writeln!(
            out,
            "Lost: {} ({:.1}%)",
            r.lost,
            100.0 * r.lost as f64 / r.sent.max(1) as f64
        )?;
        if r.received > r.untimed {
            for (k, v) in [
                ("Min", r.min_us),
                ("Avg", r.avg_us),
                ("Max", r.max_us),
                ("p50", r.p50_us),
                ("p90", r.p90_us),
                ("p99", r.p99_us),
            ] {
                writeln!(out, "{k} delay: {v:.3} usec")?;
            }
        } else {
            writeln!(out, "No packets received => no stats")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_round_trip() {
        let p = probe(7, 42, 60);
        assert_eq!(p.len(), 60);
        assert_eq!(probe_seq(&p, 7), Some(42));
        assert_eq!(probe_seq(&p, 8), None, "another session");
        assert_eq!(probe_seq(&p[..37], 7), None);
        assert_eq!(probe(1, 2, 100).len(), 100);
    }

    #[test]
    fn figures() {
        let mut out = Seen::default();
        let mut at = Seen::default();
        for seq in 0..100u64 {
            out.at.insert(seq, 1_000_000 * seq);
            if seq != 5 {
                at.at.insert(seq, 1_000_000 * seq + 1000 * (seq + 1)); // 1..100 us
            }
        }
        at.at.insert(1000, 5); // never seen leaving
        let r = report(100, 0, &out, &at);
        assert_eq!((r.sent, r.received, r.lost, r.untimed), (100, 100, 0, 1));
        assert_eq!(r.min_us, 1.0);
        assert_eq!(r.max_us, 100.0);
        assert_eq!(r.p50_us, 51.0);
        // 99 delays: 1..=5 and 7..=100 us (seq 5 was lost); nearest ranks 50, 90, 99
        assert_eq!(r.p90_us, 91.0);
        assert_eq!(r.p99_us, 100.0);
        assert!(r.min_us <= r.avg_us && r.avg_us <= r.max_us);
        assert_eq!(percentile(&[3], 99.0), 3);
    }
}
