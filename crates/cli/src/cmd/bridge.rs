//! `nsring bridge -i A -o B`: forward frames from one interface to another at ring speed,
//! each in any namespace (PF_RING's pfbridge), one way or both (`--both`), with an
//! optional filter and statistics once a second. The work is `nsring_capture::Forwarder`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{CaptureConfig, RingGeometry, TxConfig, Waker};
use nsring_capture::{ForwardCounters, ForwardTotals, Forwarder};
use nsring_netns::{NetNs, NsSpec};

use crate::out::{Out, json_line};
use crate::stats::{rate, thousands};
use crate::target::Target;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nsring bridge -i ns0/eth1 -o ns1/eth1              ns0's eth1 -> ns1's eth1
  nsring bridge -i ns0/eth1 -o ns1/eth1 --both       both ways (a transparent wire)
  nsring bridge -i eth1 -o eth2 -f 'not arp' --json  only some frames; JSON lines

Frames are taken as they arrive at -i (the bridge never reads back what it sends) and sent
whole on -o: VLAN tags are put back, and frames larger than the MTU that offloads built
(GSO on a veth) are sent with their virtio-net header, so the kernel segments them. Once a
second, per direction: frames forwarded per second, totals, ring drops, send errors;
a final line at the end (Ctrl-C, SIGTERM, --duration).")]
pub struct Args {
    /// Where frames come in: IFACE or NS/IFACE.
    #[arg(short = 'i', long = "interface", value_name = "TARGET", add = crate::complete::interface())]
    pub interface: String,
    /// Where they go out: IFACE or NS/IFACE.
    #[arg(short = 'o', long = "out-interface", value_name = "TARGET", add = crate::complete::interface())]
    pub out_interface: String,
    /// Forward both ways (also from -o to -i).
    #[arg(long)]
    pub both: bool,
    /// Forward only frames that match this filter (tcpdump syntax), in every direction.
    #[arg(short = 'f', long, value_name = "FILTER")]
    pub filter: Option<String>,
    /// The namespace of targets that do not name one.
    #[arg(short = 'n', long, value_name = "NS", add = crate::complete::netns())]
    pub netns: Option<NsSpec>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = crate::cmd::count::parse_secs)]
    pub duration: Option<Duration>,
    /// Seconds between statistics lines.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = crate::cmd::count::parse_secs)]
    pub interval: Duration,
    /// How long (ms) a frame may wait in a partly filled ring block before it is forwarded.
    #[arg(long, value_name = "MS", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub block_timeout_ms: u32,
    /// Ring blocks of 1 MiB per direction.
    #[arg(long, value_name = "N", default_value = "16", value_parser = clap::value_parser!(u32).range(2..=4096))]
    pub blocks: u32,
    /// Only the final statistics.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// JSON lines on stdout instead of text on stderr.
    #[arg(long)]
    pub json: bool,
}

/// One direction: its label, its counters, the thread that runs it.
struct Way {
    from: String,
    to: String,
    counters: Arc<ForwardCounters>,
    waker: Waker,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    prev: ForwardTotals,
}

/// Resolves a target to (namespace, interface name), refusing `any`.
fn resolve(spec: &str, netns: Option<&NsSpec>, flag: &str) -> anyhow::Result<(Target, NetNs)> {
    let t = Target::parse(spec, netns)?;
    if t.iface.is_none() {
        return Err(crate::usage(format!(
            "{flag} {spec}: a bridge joins two interfaces, not 'any'"
        )));
    }
    let ns = NetNs::open(&t.ns)?;
    Ok((t, ns))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (a, a_ns) = resolve(&args.interface, args.netns.as_ref(), "-i")?;
    let (b, b_ns) = resolve(&args.out_interface, args.netns.as_ref(), "-o")?;
    if a_ns.same_as(&b_ns) && a.iface == b.iface {
        return Err(crate::usage(format!(
            "-i {a} and -o {b} are the same interface: a bridge needs two"
        )));
    }
    let ring = RingGeometry {
        block_count: args.blocks,
        block_timeout_ms: args.block_timeout_ms,
        ..RingGeometry::default()
    };
    let open = |from: &Target, from_ns: &NetNs, to: &Target, to_ns: &NetNs| {
        let mut cap = CaptureConfig::new(from.iface_name())
            .ring(ring)
            .app_name("nsring-bridge");
        if let Some(f) = &args.filter {
            cap = cap.filter(f.clone());
        }
        let tx = TxConfig::new(to.iface_name()).app_name("nsring-bridge");
        Forwarder::open(from_ns, &cap, to_ns, &tx)
            .with_context(|| format!("cannot bridge {from} -> {to}"))
    };
    let mut forwarders = vec![(a.to_string(), b.to_string(), open(&a, &a_ns, &b, &b_ns)?)];
    if args.both {
        forwarders.push((b.to_string(), a.to_string(), open(&b, &b_ns, &a, &a_ns)?));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut ways = Vec::new();
    for (from, to, mut fwd) in forwarders {
        let counters = fwd.counters();
        let waker = fwd.waker();
        let stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("bridge {from}"))
            .spawn(move || -> anyhow::Result<()> {
                let mut refreshed = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    fwd.step(Some(Duration::from_millis(200)))?;
                    if refreshed.elapsed() >= Duration::from_millis(250) {
                        fwd.refresh()?;
                        refreshed = Instant::now();
                    }
                }
                // what the ring still holds goes out too
                while fwd.step(Some(Duration::ZERO))? {}
                fwd.refresh()?;
                Ok(())
            })?;
        ways.push(Way {
            from,
            to,
            counters,
            waker,
            thread: Some(thread),
            prev: ForwardTotals::default(),
        });
    }
    let wakers: Vec<Waker> = ways.iter().map(|w| w.waker.clone()).collect();
    let s = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        s.store(true, Ordering::Relaxed);
        for w in &wakers {
            let _ = w.wake();
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    for w in &ways {
        eprintln!("nsring: bridging {} -> {}", w.from, w.to);
    }

    let mut out = Out::new();
    let start = Instant::now();
    let mut last = start;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let ended = ways
            .iter()
            .any(|w| w.thread.as_ref().is_some_and(|t| t.is_finished()));
        let expired = args.duration.is_some_and(|d| start.elapsed() >= d);
        if stop.load(Ordering::Relaxed) || ended || expired {
            break;
        }
        if last.elapsed() >= args.interval {
            let since = last.elapsed();
            last = Instant::now();
            for w in &mut ways {
                report(&mut out, w, &args, start.elapsed(), since, false)?;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in &ways {
        let _ = w.waker.wake();
    }
    let mut failed = None;
    let since = last.elapsed();
    for mut w in ways {
        match w.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(e))) => failed = Some(e),
            Some(Err(_)) => failed = Some(anyhow::anyhow!("a bridge thread panicked")),
        }
        report(&mut out, &mut w, &args, start.elapsed(), since, true)?;
    }
    out.flush()?;
    match failed {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// One statistics line (or JSON object) for one direction.
fn report(
    out: &mut Out,
    w: &mut Way,
    args: &Args,
    elapsed: Duration,
    since: Duration,
    last: bool,
) -> anyhow::Result<()> {
    let t = w.counters.totals();
    let d = t.forwarded.saturating_sub(w.prev.forwarded);
    let pps = d as f64 / since.as_secs_f64().max(1e-9);
    w.prev = t;
    if args.json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            from: &'a str,
            to: &'a str,
            #[serde(flatten)]
            totals: ForwardTotals,
            elapsed_s: f64,
            interval_forwarded: u64,
            interval_pps: f64,
        }
        json_line(
            out,
            &Line {
                kind: if last { "final" } else { "stats" },
                from: &w.from,
                to: &w.to,
                totals: t,
                elapsed_s: elapsed.as_secs_f64(),
                interval_forwarded: d,
                interval_pps: pps,
            },
        )?;
        out.flush()?;
    } else if last {
        eprintln!(
            "{} -> {}: {} frames forwarded ({} bytes) of {} received in {:.1} s \
             [{} GSO][{} VLAN][{} cut short][{} send errors][{} ring drops]",
            w.from,
            w.to,
            thousands(t.forwarded),
            thousands(t.bytes),
            thousands(t.received),
            elapsed.as_secs_f64(),
            thousands(t.gso),
            thousands(t.vlan),
            thousands(t.truncated),
            thousands(t.send_errors),
            thousands(t.ring_drops),
        );
    } else if !args.quiet {
        eprintln!(
            "{} -> {}: [{} pps][{} frames][{} bytes][{} ring drops][{} send errors]",
            w.from,
            w.to,
            rate(pps),
            thousands(t.forwarded),
            thousands(t.bytes),
            thousands(t.ring_drops),
            thousands(t.send_errors),
        );
    }
    Ok(())
}
