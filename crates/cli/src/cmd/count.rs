//! `nsring count`: pfcount's job, in any namespace, without a wrapper.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{Capture, CaptureConfig, Direction, FanoutMode, RingGeometry};
use nsring_netns::{NetNs, NsSpec};

use crate::out::Out;
use crate::stats::{Reporter, Totals};
use crate::target::Target;

/// What count copies of each packet when it does not print packets: enough for any header
/// (the filter still sees whole packets; the wire length is counted from the kernel's header).
const COUNT_SNAPLEN: u32 = 128;

const AFTER_HELP: &str = "\
Examples:
  nsring count -i ns0/eth1                 count on eth1 of namespace ns0, from anywhere
  nsring count --netns pid:4242 -i eth0    count in a container's namespace
  nsring count -i eth1 -f 'udp port 53' -N 1000 --json
  nsring count -i ns0/eth1 --backend ring  count on a capture ring, as pfcount does

Backends: 'kernel' counts in the kernel (eBPF at the interface's traffic-control hooks,
attached with TCX, or a clsact qdisc where the kernel has no TCX): no packet is copied, the
traffic is not altered or delayed, and drops are always 0. 'ring' copies every packet into a
TPACKET_V3 ring, as pfcount does. 'auto' (the default) counts in the kernel when the job only
counts on one interface, and on the ring for -v, -c, 'any' and the ring settings; the first
line says which backend runs and why. With -N the kernel backend reads its counters every
few milliseconds and stops at the first figure at or above N, which it reports as read: it
may be a little above N.

Statistics go to stderr once a second (PF_RING's pfcount block) and once more at the end,
after the last packets are drained (Ctrl-C, SIGTERM and SIGHUP end the capture cleanly; if
the interface goes down or leaves the namespace, the final block is printed, then the
reason, and the exit status is 1). With --json, one JSON
object per second and a final one ({\"type\":\"final\",...}) go to stdout instead.

Filters use tcpdump syntax, compiled by libpcap and applied in the kernel before anything is
copied. On Linux, a live filter sees a VLAN-tagged frame with its tag already taken out by
the kernel (libpcap's semantics, so 'vlan' and 'vlan 42' work as with a live tcpdump), and the
tag is put back into captured bytes; a file read back with tcpdump -r may count differently.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP,
    after_long_help = crate::long_help(AFTER_HELP))]
pub struct Args {
    #[command(flatten)]
    pub capture: CaptureArgs,
    /// Print packets: 1 headers, 2 headers and payload.
    #[arg(short, long, value_name = "LEVEL", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub verbose: Option<u8>,
    /// JSON lines on stdout instead of the text statistics.
    #[arg(long)]
    pub json: bool,
    /// No statistics while running (only the final block).
    #[arg(short, long)]
    pub quiet: bool,
    /// Seconds between statistics.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    pub interval: Duration,
    /// Where to count: kernel (eBPF, nothing copied), ring (a capture ring), or auto.
    #[arg(long, value_name = "BACKEND", value_enum, default_value = "auto")]
    pub backend: crate::cmd::count_kernel::Backend,
    /// How the kernel backend attaches: auto (TCX, or clsact where the kernel has no TCX),
    /// tcx, or clsact (what kernels before 6.6 get).
    #[arg(long, value_name = "HOW", value_enum)]
    pub kernel_attach: Option<crate::cmd::count_kernel::Attach>,
}

/// The capture options `count` and `dump` share.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Interface: IFACE, NS/IFACE (ns0/eth1), or 'any' for every interface of the namespace
    /// (dump: repeat -i, or separate targets with commas, for several).
    #[arg(short, long, value_name = "[NS/]IFACE", required = true, add = crate::complete::interface())]
    pub interface: Vec<String>,
    /// The namespace of IFACE: NAME, pid:PID, a path or a container (podman:web1) (default: the current one).
    #[arg(short = 'n', long, value_name = "NS", add = crate::complete::netns())]
    pub netns: Option<NsSpec>,
    /// BPF filter in tcpdump syntax.
    #[arg(short, long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Direction: in (rx), out (tx) or both; pfcount's 0 (both), 1 (in), 2 (out) also work.
    #[arg(short = 'e', long, value_name = "DIR", default_value = "both", value_parser = parse_direction)]
    pub direction: Direction,
    /// Bytes of each packet to copy from the kernel [default: 128 for count, or whole packets with -v; whole packets for dump].
    #[arg(short = 's', long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=262144))]
    pub snaplen: Option<u32>,
    /// Stop after this many packets.
    #[arg(short = 'N', long = "count", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Join cluster (fanout group) ID: the group's sockets share the packets.
    #[arg(short = 'c', long = "cluster-id", value_name = "ID")]
    pub cluster: Option<u16>,
    /// How the cluster spreads packets: flow, rr, cpu, rollover, random, queue.
    #[arg(
        long,
        value_name = "TYPE",
        default_value = "flow",
        requires = "cluster"
    )]
    pub cluster_type: FanoutMode,
    /// Do not put the interface in promiscuous mode.
    #[arg(short = 'J', long = "no-promisc")]
    pub no_promisc: bool,
    /// Ring block size in KiB (a power of two) [default: 1024].
    #[arg(long, value_name = "KIB")]
    pub block_kib: Option<u32>,
    /// Number of ring blocks [default: 16 for count, 64 for dump].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub blocks: Option<u32>,
    /// Milliseconds after which a partly filled block is handed over [default: 100].
    #[arg(long, value_name = "MS")]
    pub block_timeout_ms: Option<u32>,
    /// The application name shown in socket listings [default: nsring-<command>].
    #[arg(long, value_name = "NAME")]
    pub app_name: Option<String>,
    /// Do not record this capture under /run/nsring (it then shows in `nsring ls` only as a
    /// kernel socket, without our details and counters).
    #[arg(long)]
    pub no_registry: bool,
}

pub fn parse_direction(s: &str) -> Result<Direction, String> {
    match s {
        "0" => Ok(Direction::Both),
        "1" => Ok(Direction::In),
        "2" => Ok(Direction::Out),
        s => s.parse().map_err(|e: nsring_capture::Error| e.to_string()),
    }
}

pub fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0 && *x < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("'{s}' is not a positive number of seconds"))
}

/// Ring blocks of `count` (1 MiB each): it keeps up with a veth at any frame size.
pub const COUNT_BLOCKS: u32 = 16;

/// What a command uses where its capture options were not given.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub snaplen: u32,
    pub blocks: u32,
}

impl CaptureArgs {
    /// The interface target (`NS/IFACE`), parsed without touching the system.
    pub fn target(&self) -> anyhow::Result<Target> {
        match self.interface.as_slice() {
            [one] => Target::parse(one, self.netns.as_ref()),
            _ => Err(crate::usage(
                "give one interface (-i); 'nsring dump' takes several",
            )),
        }
    }

    /// Every -i target, parsed without touching the system; each given once.
    pub fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let mut v: Vec<Target> = Vec::new();
        for spec in &self.interface {
            for t in Target::parse_list(spec, self.netns.as_ref())? {
                if v.contains(&t) {
                    return Err(crate::usage(format!("{t} is given twice")));
                }
                v.push(t);
            }
        }
        Ok(v)
    }

    /// The ring's shape from --block-kib, --blocks (`default_blocks` if not given) and
    /// --block-timeout-ms.
    pub fn geometry(&self, default_blocks: u32) -> anyhow::Result<RingGeometry> {
        Ok(RingGeometry {
            block_size: self
                .block_kib
                .unwrap_or(1024)
                .checked_mul(1024)
                .ok_or_else(|| crate::usage("--block-kib is too large"))?,
            block_count: self.blocks.unwrap_or(default_blocks),
            block_timeout_ms: self.block_timeout_ms.unwrap_or(100),
            ..RingGeometry::default()
        })
    }

    /// The capture settings for `target`, with the command's defaults for what was not
    /// given.
    pub fn config(
        &self,
        target: &Target,
        defaults: Defaults,
        command: &str,
    ) -> anyhow::Result<CaptureConfig> {
        let mut cfg = CaptureConfig::new(target.iface_name())
            .snaplen(self.snaplen.unwrap_or(defaults.snaplen))
            .direction(self.direction)
            .promiscuous(!self.no_promisc)
            .ring(self.geometry(defaults.blocks)?)
            .app_name(
                self.app_name
                    .clone()
                    .unwrap_or_else(|| format!("nsring-{command}")),
            );
        if let Some(f) = &self.filter {
            cfg = cfg.filter(f.clone());
        }
        if self.no_registry {
            cfg = cfg.register(false);
        }
        if let Some(id) = self.cluster {
            cfg = cfg.fanout(id, self.cluster_type);
        }
        Ok(cfg)
    }

    /// A one-line description for the startup message.
    pub fn describe(&self, cfg: &CaptureConfig) -> String {
        format!(
            "snaplen {}, direction {}{}{}{}, ring {} x {} KiB",
            cfg.snaplen,
            cfg.direction,
            if cfg.promiscuous { ", promiscuous" } else { "" },
            cfg.filter
                .as_deref()
                .map(|f| format!(", filter '{f}'"))
                .unwrap_or_default(),
            cfg.fanout
                .map(|f| format!(", cluster {} ({})", f.group, f.mode))
                .unwrap_or_default(),
            cfg.ring.block_count,
            cfg.ring.block_size / 1024,
        )
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use crate::cmd::count_kernel::{self, Choice};
    let target = args.capture.target()?;
    let why = match count_kernel::choose(&args, &target)? {
        Choice::Ring(why) => why,
        Choice::Kernel(why) => {
            let ns = NetNs::open(&target.ns)?;
            match count_kernel::open(&args, &target, &ns)? {
                Ok(counter) => return count_kernel::run(&args, &target, &ns, counter, &why),
                Err(fallback) => fallback,
            }
        }
    };
    run_ring(args, target, &why)
}

/// How the banner and the statistics name the target: a bare name that turned out to be a
/// container is shown as the container; and the container's runtime and short ID, if any.
pub fn label(ns: &NetNs, target: &Target) -> (String, String) {
    let label = match ns.container() {
        Some(_) => format!("{}/{}", ns.spec(), target.iface_name()),
        None => target.to_string(),
    };
    let container = ns
        .container()
        .map(|k| format!(", {} container {}", k.runtime, k.short_id()))
        .unwrap_or_default();
    (label, container)
}

/// Counts on a capture ring (`why` the banner gives for the choice).
fn run_ring(args: Args, target: Target, why: &str) -> anyhow::Result<ExitCode> {
    let c = &args.capture;
    let default_snaplen = if args.verbose.is_some() {
        nsring_capture::DEFAULT_SNAPLEN
    } else {
        COUNT_SNAPLEN
    };
    let cfg = c.config(
        &target,
        Defaults {
            snaplen: default_snaplen,
            blocks: COUNT_BLOCKS,
        },
        "count",
    )?;
    let ns = NetNs::open(&target.ns)?;
    let mut cap = Capture::open(&ns, &cfg)?;
    let waker = cap.waker();
    ctrlc::set_handler(move || {
        let _ = waker.wake();
    })
    .context("cannot install the Ctrl-C handler")?;
    let (label, container) = label(&ns, &target);
    if !args.quiet {
        eprintln!(
            "nsring count: capturing on {label} (netns inode {}{container}), backend ring ({why}), {}",
            ns.inode(),
            c.describe(&cfg)
        );
    }
    crate::warn_unrecorded("count", cap.record_error());

    let mut out = Out::new();
    let mut printer = args
        .verbose
        .map(|level| crate::decode::Printer::new(level, &label));
    let mut reporter = Reporter::new(&label, args.json, args.quiet);
    let deadline = c.duration.map(|d| reporter.start() + d);
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut gone = None;
    let reached = |packets: u64| c.limit.is_some_and(|n| packets >= n);
    let totals = |packets, bytes, k: nsring_capture::Stats| Totals {
        packets,
        bytes,
        drops: k.drops,
        freezes: k.freezes,
    };
    while !reached(packets) {
        let wait = deadline
            .map_or(args.interval, |d| {
                d.saturating_duration_since(Instant::now())
            })
            .min(reporter.until_due(args.interval))
            .max(Duration::from_millis(1));
        let mut block_bytes = None;
        let mut idle = false;
        match cap.next_block(Some(wait)) {
            Ok(Some(block)) => {
                let before = bytes;
                for frame in &block {
                    if reached(packets) {
                        break;
                    }
                    packets += 1;
                    bytes += u64::from(frame.wire_len());
                    if let Some(p) = printer.as_mut() {
                        p.print(&mut out, &frame)?;
                    }
                }
                block_bytes = Some(bytes - before);
            }
            Ok(None) => idle = true,
            Err(e) if e.interface_gone() => {
                gone = Some(e);
                break;
            }
            Err(e) => return Err(e.into()),
        }
        if idle && cap.finished() {
            break;
        }
        if let Some(n) = block_bytes {
            cap.add_bytes(n); // for `nsring ls`: one store per block
        }
        if deadline.is_some_and(|d| Instant::now() >= d) && !cap.stop_requested() {
            let _ = cap.waker().wake();
        }
        if reporter.until_due(args.interval).is_zero() && !reached(packets) {
            let k = cap.stats()?;
            reporter.emit(&mut out, totals(packets, bytes, k), false)?;
        }
    }
    let k = cap.stats()?;
    reporter.emit(&mut out, totals(packets, bytes, k), true)?;
    match gone {
        // The interface went down or away: every packet the ring held is counted above;
        // the capture failed, so say why and exit 1.
        Some(e) => Ok(crate::error::report(&e.into())),
        None => Ok(ExitCode::SUCCESS),
    }
}
