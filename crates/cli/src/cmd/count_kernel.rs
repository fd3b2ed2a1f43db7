//! `nsring count --backend kernel`: the count runs in the kernel (eBPF at the interface's
//! traffic-control hooks, `nsring-bpf`); this process only reads the counters. The choice
//! between it and the ring (`--backend auto`), and the loop that reports.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_bpf::{AttachMode, CounterConfig, KernelCounter, Value};
use nsring_netns::NetNs;

use crate::cmd::count::Args;
use crate::out::Out;
use crate::stats::{Reporter, Totals};
use crate::target::Target;

/// Where `count` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The kernel when the job only counts on one interface, else the ring.
    Auto,
    /// A TPACKET_V3 capture ring (every packet copied in, like pfcount).
    Ring,
    /// eBPF at the interface's traffic-control hooks: nothing is copied.
    Kernel,
}

/// How the kernel backend attaches (`--kernel-attach`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attach {
    /// TCX, or clsact where the kernel has no TCX.
    Auto,
    /// TCX only (Linux 6.6 and later).
    Tcx,
    /// A clsact qdisc and cls_bpf filters, as on kernels without TCX.
    Clsact,
}

/// What was chosen, and why (for the banner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Kernel(String),
    Ring(String),
}

/// What asks for the ring, in words; `None` if nothing does.
fn needs_ring(args: &Args, target: &Target) -> Option<&'static str> {
    let c = &args.capture;
    if args.verbose.is_some() {
        Some("-v prints packets")
    } else if c.cluster.is_some() {
        Some("a cluster (-c) shares packets between sockets")
    } else if target.iface.is_none() {
        Some("'any' is every interface of the namespace")
    } else if c.snaplen.is_some()
        || c.blocks.is_some()
        || c.block_kib.is_some()
        || c.block_timeout_ms.is_some()
    {
        Some("--snaplen, --blocks, --block-kib and --block-timeout-ms are ring settings")
    } else {
        None
    }
}

/// Picks the backend from the arguments alone (auto may still fall back to the ring when
/// the kernel backend cannot run here; see [`open`]).
pub fn choose(args: &Args, target: &Target) -> anyhow::Result<Choice> {
    if args.kernel_attach.is_some() && args.backend == Backend::Ring {
        return Err(crate::usage(
            "--kernel-attach is for the kernel backend, not --backend ring",
        ));
    }
    Ok(match (args.backend, needs_ring(args, target)) {
        (Backend::Ring, _) => Choice::Ring("--backend ring".into()),
        (Backend::Kernel, Some(why)) => {
            return Err(crate::usage(format!(
                "--backend kernel only counts: {why}; use --backend ring"
            )));
        }
        (Backend::Kernel, None) => Choice::Kernel("--backend kernel".into()),
        (Backend::Auto, Some(why)) => Choice::Ring(format!("auto: {why}")),
        (Backend::Auto, None) => Choice::Kernel("auto: one interface, counting only".into()),
    })
}

/// Sets the count up in the kernel. With `--backend auto`, a kernel that cannot take it
/// (no bpf(2), no permission, a filter the translation cannot do) gives `Ok(Err(why))`:
/// count on the ring instead and say why.
pub fn open(
    args: &Args,
    target: &Target,
    ns: &NetNs,
) -> anyhow::Result<Result<KernelCounter, String>> {
    let c = &args.capture;
    let mut cfg = CounterConfig::new(target.iface_name());
    cfg.filter = c.filter.clone();
    cfg.direction = c.direction;
    cfg.promiscuous = !c.no_promisc;
    cfg.register = !c.no_registry;
    cfg.app_name = Some(c.app_name.clone().unwrap_or_else(|| "nsring-count".into()));
    cfg.attach = match args.kernel_attach.unwrap_or(Attach::Auto) {
        Attach::Auto => AttachMode::Auto,
        Attach::Tcx => AttachMode::Tcx,
        Attach::Clsact => AttachMode::Clsact,
    };
    match KernelCounter::open(ns, &cfg) {
        Ok(k) => Ok(Ok(k)),
        Err(e) if args.backend == Backend::Auto && e.is_unavailable() => Ok(Err(format!(
            "auto: the kernel backend cannot run here: {e}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// How often the counters are read at least: the registry record (what `nsring ls`
/// shows) is as fresh as this.
const READ_EVERY: Duration = Duration::from_millis(100);

fn totals(v: Value) -> Totals {
    Totals {
        packets: v.packets,
        bytes: v.bytes,
        drops: 0,
        freezes: 0,
    }
}

/// How long to wait before the next read with `-N n`: about half the time the rate seen
/// so far needs to reach `n`, between 1 and 50 ms (10 ms before any rate is known).
fn limit_wait(left: u64, pps: f64) -> Duration {
    if pps <= 0.0 {
        return Duration::from_millis(10);
    }
    Duration::from_secs_f64(left as f64 / pps / 2.0)
        .clamp(Duration::from_millis(1), Duration::from_millis(50))
}

/// Counts until `-N`, `--duration`, Ctrl-C or SIGTERM; the final block comes after the
/// last read. If the interface goes away, the final block still comes, then the error.
pub fn run(
    args: &Args,
    target: &Target,
    ns: &NetNs,
    mut counter: KernelCounter,
    why: &str,
) -> anyhow::Result<ExitCode> {
    let c = &args.capture;
    let waker = counter.waker();
    ctrlc::set_handler(move || {
        let _ = waker.wake();
    })
    .context("cannot install the Ctrl-C handler")?;
    let (label, tags) = crate::cmd::count::label(ns, target);
    let container = crate::identity::suffix(&tags);
    for s in counter.swept() {
        eprintln!(
            "nsring count: removed a leftover filter of nsring PID {} (gone) from {} of if#{}{}",
            s.owner_pid,
            s.hook,
            s.ifindex,
            if s.qdisc_removed {
                ", and the clsact qdisc it had created"
            } else {
                ""
            }
        );
    }
    if !args.quiet {
        let info = counter.bpf_info();
        eprintln!(
            "nsring count: capturing on {label} (netns inode {}{container}), backend kernel ({why}): eBPF at {} via {}, nothing copied, so drops are always 0; direction {}{}{}",
            ns.inode(),
            info.hooks.join(" and "),
            counter.attachment(),
            c.direction,
            if c.no_promisc { "" } else { ", promiscuous" },
            c.filter
                .as_deref()
                .map(|f| format!(", filter '{f}'"))
                .unwrap_or_default(),
        );
    }
    crate::warn_unrecorded("count", counter.record_error());

    let mut out = Out::new();
    let mut reporter =
        Reporter::new(&label, args.json, args.quiet).container(tags.into_iter().next());
    let deadline = c.duration.map(|d| reporter.start() + d);
    let mut last = Value::default();
    let mut last_at = Instant::now();
    let mut pps = 0.0;
    let result = loop {
        let now = Instant::now();
        let mut wait = reporter.until_due(args.interval).min(READ_EVERY);
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        if let Some(n) = c.limit {
            wait = wait.min(limit_wait(n.saturating_sub(last.packets), pps));
        }
        let stop = match counter.wait(wait) {
            Ok(stop) => stop,
            Err(e) => break Err(anyhow::Error::from(e)),
        };
        let v = match counter.read() {
            Ok(v) => v,
            Err(e) => break Err(e.into()),
        };
        let dt = last_at.elapsed().as_secs_f64();
        if dt > 0.0 && v.packets > last.packets {
            pps = (v.packets - last.packets) as f64 / dt;
        }
        (last, last_at) = (v, Instant::now());
        let reached = c.limit.is_some_and(|n| v.packets >= n);
        if stop || reached || deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        if reporter.until_due(args.interval).is_zero() {
            reporter.emit(&mut out, totals(v), false)?;
        }
    };
    // The last figures, read before the programs come off; then detach and report.
    if let Ok(v) = counter.read() {
        last = v;
    }
    let detached = counter.detach();
    drop(counter);
    reporter.emit(&mut out, totals(last), true)?;
    result?;
    detached?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_polling_follows_the_rate() {
        assert_eq!(limit_wait(100, 0.0), Duration::from_millis(10));
        assert_eq!(limit_wait(1, 1e9), Duration::from_millis(1));
        assert_eq!(limit_wait(1_000_000, 10.0), Duration::from_millis(50));
        assert_eq!(limit_wait(1000, 100_000.0), Duration::from_millis(5));
    }
}
