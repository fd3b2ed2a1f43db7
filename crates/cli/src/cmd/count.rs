//! `nsring count`: pfcount's job, in any namespace, without a wrapper.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use nsring_capture::{Block, CaptureConfig, Direction, FanoutMode, RingGeometry};
use nsring_multi::{CloseReason, Handler, Note, Taken, TargetInfo, TargetStats};
use nsring_netns::{NetNs, NsSpec};

use crate::out::{Out, json_line};
use crate::stats::{Reporter, Row, TargetLine, TotalLine, Totals, table, totals_of};
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
  nsring count -i 'lab-*/eth0'             every lab namespace's eth0, as they come and go
  nsring count --all-netns --follow        every namespace but the initial one

Backends: 'kernel' counts in the kernel (eBPF at the interface's traffic-control hooks,
attached with TCX, or a clsact qdisc where the kernel has no TCX): no packet is copied, the
traffic is not altered or delayed, and drops are always 0. 'ring' copies every packet into a
TPACKET_V3 ring, as pfcount does. 'auto' (the default) counts in the kernel when the job only
counts on one interface, and on the ring for several targets, -v, -c, 'any' and the ring
settings; the first
line says which backend runs and why. With -N the kernel backend reads its counters every
few milliseconds and stops at the first figure at or above N, which it reports as read: it
may be a little above N.

Statistics go to stderr once a second (PF_RING's pfcount block) and once more at the end,
after the last packets are drained (Ctrl-C, SIGTERM and SIGHUP end the capture cleanly; if
an interface named exactly goes down or leaves the namespace, the final block is printed,
then the reason, and the exit status is 1). With --json, one JSON object per second and a
final one ({\"type\":\"final\",...}) go to stdout instead.

Several targets (more than one -i, a pattern, --all-netns) are counted in one process, on
rings: a table (namespace, interface, packets, bytes, drops, state) every second and at the
end, with the total, and a line when a capture opens or closes. An interface that appears
and matches is captured within a second; one that a pattern found and that goes away
(namespace deleted, interface removed or moved) ends its capture with its final counts and
the rest goes on (one that goes down stays captured, for when it comes back up). With
--json: \"open\" and \"close\" lines (the close with the counts and the reason), \"stats\" per
capture and \"total\" every second, \"final\" per capture and \"final_total\" at the end.

A namespace that belongs to a container is named with it: in the banner ('container
podman:web1 (3f2a9c1b2c3d)') and as a \"container\" object (runtime, id, name, source) in
every --json line about it.

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
    /// in one socket; either part may be a pattern (* ? [..]: 'web-*/eth0', 'lab*/veth*').
    /// Repeat -i, or separate with commas, for several. With --all-netns: IFACE only.
    #[arg(
        short,
        long,
        value_name = "[NS/]IFACE",
        required_unless_present = "all_netns",
        add = crate::complete::interface()
    )]
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
    /// Ring block size in KiB, a power of two [default: 1024; 128 with patterns].
    #[arg(long, value_name = "KIB")]
    pub block_kib: Option<u32>,
    /// Number of ring blocks [default: 16 for count, 64 for dump, shared among several -i;
    /// 8 per capture with patterns].
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
    #[command(flatten)]
    pub many: ManyArgs,
}

/// The options of capturing in many namespaces at once.
#[derive(Debug, clap::Args)]
pub struct ManyArgs {
    /// Capture in every namespace on the host (named, anonymous, containers') except the
    /// initial one, with -i IFACE (or a pattern) in each [default: every Ethernet
    /// interface but lo]; namespaces and interfaces that appear later are captured too.
    #[arg(long)]
    pub all_netns: bool,
    /// With --all-netns, the initial namespace too.
    #[arg(long)]
    pub include_host: bool,
    /// Keep running when a pattern matches nothing yet (without it, that is an error, exit 2).
    #[arg(long)]
    pub follow: bool,
    /// MiB of ring memory all captures together may take; past it, new ones are refused
    /// with a message [default: 1024].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    pub ring_budget: Option<u64>,
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

    /// Every -i target (patterns too), or --all-netns, parsed without touching the system.
    pub fn targets(&self) -> anyhow::Result<Vec<nsring_multi::Target>> {
        crate::target::capture_targets(
            &self.interface,
            self.netns.as_ref(),
            self.many.all_netns,
            self.many.include_host,
        )
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
    pub fn config(&self, defaults: Defaults, command: &str) -> anyhow::Result<CaptureConfig> {
        let mut cfg = CaptureConfig::default()
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
    pub fn describe(&self, cfg: &CaptureConfig, ring: &RingGeometry) -> String {
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
            ring.block_count,
            ring.block_size / 1024,
        )
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use crate::cmd::count_kernel::{self, Backend, Choice};
    let targets = args.capture.targets()?;
    let why = if targets.len() == 1 && targets[0].is_exact() {
        let target = args.capture.target()?;
        match count_kernel::choose(&args, &target)? {
            Choice::Ring(why) => why,
            Choice::Kernel(why) => {
                let ns = NetNs::open(&target.ns)?;
                match count_kernel::open(&args, &target, &ns)? {
                    Ok(counter) => return count_kernel::run(&args, &target, &ns, counter, &why),
                    Err(fallback) => fallback,
                }
            }
        }
    } else if args.backend == Backend::Kernel {
        return Err(crate::usage(
            "--backend kernel counts on one interface; several targets, patterns and --all-netns count on rings (--backend ring)",
        ));
    } else {
        "several targets".into()
    };
    run_ring(args, &why)
}

/// How the banner and the statistics name the target: a bare name that turned out to be a
/// container is shown as the container; and the containers its namespace belongs to.
pub fn label(ns: &NetNs, target: &Target) -> (String, Vec<nsring_netns::ContainerTag>) {
    let label = match ns.container() {
        Some(_) => format!("{}/{}", ns.spec(), target.iface_name()),
        None => target.to_string(),
    };
    (label, crate::identity::learn_ns(ns))
}

/// A capture's namespace for the table: `pid:4242 (podman:web1)` when it belongs to a
/// container whose label is not already its name.
fn with_container(t: &TargetInfo) -> String {
    match crate::identity::of(t).first() {
        Some(c) if c.label() != t.netns => format!("{} ({})", t.netns, c.label()),
        _ => t.netns.clone(),
    }
}

/// Counts on capture rings, one target or many (`why` the banner gives for the choice).
fn run_ring(args: Args, why: &str) -> anyhow::Result<ExitCode> {
    let c = &args.capture;
    let snaplen = if args.verbose.is_some() {
        nsring_capture::DEFAULT_SNAPLEN
    } else {
        COUNT_SNAPLEN
    };
    let defaults = Defaults {
        snaplen,
        blocks: COUNT_BLOCKS,
    };
    let mut started = crate::capture::start(c, defaults, "count")?;
    if !args.quiet {
        eprintln!(
            "nsring count: capturing on {}, backend ring ({why}), {}",
            crate::capture::describe_targets(&started),
            c.describe(&started.config, &started.ring)
        );
    }
    let mut counting = Counting::new(&args, started.single);
    started.session.run(&mut counting)?;
    counting.finish()?;
    match started.session.take_fault() {
        // An interface named exactly went down or away: every packet its ring held is
        // counted above; the capture failed, so say why and exit 1.
        Some(e) => Ok(crate::error::report(&e.into())),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// What `count` does with the captures: counts (and with -v prints) their packets, and
/// reports: pfcount's block for one capture, a table (or JSON lines per capture) for several.
struct Counting<'a> {
    args: &'a Args,
    single: bool,
    out: Out,
    printers: HashMap<u64, crate::decode::Printer>,
    /// The one capture's reporter (single).
    reporter: Option<Reporter>,
    start: Instant,
    packets: u64,
    /// Every capture of the session: its label parts, last counters and state.
    rows: BTreeMap<u64, (TargetInfo, TargetStats, Option<CloseReason>)>,
}

impl<'a> Counting<'a> {
    fn new(args: &'a Args, single: bool) -> Counting<'a> {
        Counting {
            args,
            single,
            out: Out::new(),
            printers: HashMap::new(),
            reporter: None,
            start: Instant::now(),
            packets: 0,
            rows: BTreeMap::new(),
        }
    }

    fn reached(&self) -> bool {
        self.args.capture.limit.is_some_and(|n| self.packets >= n)
    }

    fn total(&self) -> Totals {
        self.rows
            .values()
            .fold(Totals::default(), |mut t, (_, s, _)| {
                let x = totals_of(s);
                t.packets += x.packets;
                t.bytes += x.bytes;
                t.drops += x.drops;
                t.freezes += x.freezes;
                t
            })
    }

    /// The report of several captures: the table on stderr, or JSON lines on stdout.
    fn report(&mut self, last: bool) -> anyhow::Result<()> {
        let since = self.start.elapsed();
        let open = self.rows.values().filter(|r| r.2.is_none()).count();
        if self.args.json {
            let (kind, total_kind) = if last {
                ("final", "final_total")
            } else {
                ("stats", "total")
            };
            for (t, s, why) in self.rows.values() {
                if !last && why.is_some() {
                    continue;
                }
                let mut line = TargetLine::new(kind, t);
                line.totals = Some(totals_of(s));
                line.reason = why.as_ref().map(ToString::to_string);
                json_line(&mut self.out, &line)?;
            }
            let total = TotalLine::new(total_kind, open, self.rows.len(), self.total(), since);
            json_line(&mut self.out, &total)?;
            self.out.flush()?;
        } else if last || !self.args.quiet {
            let rows: Vec<Row> = self
                .rows
                .values()
                .filter(|r| last || r.2.is_none())
                .map(|(t, s, why)| Row {
                    netns: with_container(t),
                    interface: t.interface.clone(),
                    totals: totals_of(s),
                    state: why.as_ref().map_or("open".into(), ToString::to_string),
                })
                .collect();
            self.out.flush()?;
            eprint!("{}", table(&rows, self.total(), since));
        }
        Ok(())
    }

    /// The final report.
    fn finish(&mut self) -> anyhow::Result<()> {
        if self.single {
            let t = self.total();
            if let Some(r) = self.reporter.as_mut() {
                r.emit(&mut self.out, t, true)?;
            }
            return Ok(());
        }
        self.report(true)
    }

    /// An open or close event: a JSON line, or a line on stderr.
    fn event(
        &mut self,
        kind: &str,
        t: &TargetInfo,
        s: Option<&TargetStats>,
        why: Option<&CloseReason>,
    ) -> anyhow::Result<()> {
        if self.args.json {
            let mut line = TargetLine::new(kind, t);
            if kind == "open" {
                line.ring_bytes = Some(t.ring_bytes);
            }
            line.totals = s.map(totals_of);
            line.reason = why.map(ToString::to_string);
            json_line(&mut self.out, &line)?;
            self.out.flush()?;
        } else if !self.args.quiet {
            match (s, why) {
                (Some(s), Some(why)) => eprintln!(
                    "nsring count: closed {}: {} packets, {} dropped ({why})",
                    t.label(),
                    s.packets,
                    s.kernel.drops
                ),
                _ => eprintln!(
                    "nsring count: opened {} ({})",
                    t.label(),
                    crate::capture::ns_description(t)
                ),
            }
        }
        Ok(())
    }
}

impl Handler for Counting<'_> {
    type Error = anyhow::Error;

    fn opened(&mut self, t: &TargetInfo) -> anyhow::Result<()> {
        if let Some(level) = self.args.verbose {
            self.printers
                .insert(t.id, crate::decode::Printer::new(level, &t.label()));
        }
        self.rows
            .insert(t.id, (t.clone(), TargetStats::default(), None));
        if self.single {
            if self.reporter.is_none() {
                self.reporter = Some(
                    Reporter::new(&t.label(), self.args.json, self.args.quiet)
                        .container(crate::identity::of(t).into_iter().next()),
                );
            }
            return Ok(());
        }
        self.event("open", t, None, None)
    }

    fn block(
        &mut self,
        t: &TargetInfo,
        _: &TargetStats,
        block: &Block<'_>,
    ) -> anyhow::Result<Taken> {
        let mut taken = Taken::default();
        let limit = self.args.capture.limit;
        let mut printer = self.printers.get_mut(&t.id);
        for frame in block {
            if limit.is_some_and(|n| self.packets >= n) {
                break;
            }
            self.packets += 1;
            taken.packets += 1;
            taken.bytes += u64::from(frame.wire_len());
            if let Some(p) = printer.as_mut() {
                p.print(&mut self.out, &frame)?;
            }
        }
        taken.stop = self.reached();
        Ok(taken)
    }

    fn closed(&mut self, t: &TargetInfo, s: &TargetStats, why: &CloseReason) -> anyhow::Result<()> {
        self.rows.insert(t.id, (t.clone(), *s, Some(why.clone())));
        self.printers.remove(&t.id);
        if self.single {
            return Ok(());
        }
        self.event("close", t, Some(s), Some(why))
    }

    fn note(&mut self, note: &Note) -> anyhow::Result<()> {
        self.out.flush()?;
        eprintln!("nsring count: {note}");
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.args.interval)
    }

    fn tick(&mut self, open: &[(&TargetInfo, &TargetStats)]) -> anyhow::Result<()> {
        for (t, s) in open {
            if let Some(row) = self.rows.get_mut(&t.id) {
                row.1 = **s;
            }
        }
        if self.reached() {
            return Ok(());
        }
        if self.single {
            let t = self.total();
            if let Some(r) = self.reporter.as_mut() {
                r.emit(&mut self.out, t, false)?;
            }
            return Ok(());
        }
        self.report(false)
    }
}
