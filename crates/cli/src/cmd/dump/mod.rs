//! `nsring dump`: pfdump's job — the capture engine of `count` writing pcapng (or pcap)
//! files, one interface block per (namespace, interface), from any number of namespaces,
//! as they come and go.

mod frames;
mod output;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use nsring_capture::Block;
use nsring_multi::{CloseReason, Handler, Note, Taken, TargetInfo, TargetStats};
use nsring_pcap::LinkType;

use crate::cmd::count::{CaptureArgs, Defaults, parse_secs};
use crate::out::{Out, json_line};
use crate::stats::{TargetLine, totals_of};
use output::{IfMeta, Output, PipeClosed};

/// Whole packets, as tcpdump.
const DUMP_SNAPLEN: u32 = 262_144;
/// Ring blocks (1 MiB each): 64 MiB, four times count's. Writing a file stalls now and
/// then (page-cache allocation, writeback) where counting does not; in the benchmark
/// (1514-byte frames to /dev/shm) 16 MiB dropped a few thousand packets in some runs of
/// 5 million, and 64 MiB none in any. Several exact -i share it; patterns take 1 MiB each.
const DUMP_BLOCKS: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// pcapng: interface blocks with names and namespaces, directions, drop statistics.
    Pcapng,
    /// Classic pcap with nanosecond timestamps (magic a1b23c4d).
    Pcap,
}

const AFTER_HELP: &str = "\
Examples:
  nsring dump -i ns0/eth1 -w eth1.pcapng
  nsring dump -i ns0/eth1 -i ns1/eth1 -f 'udp port 53' -w dns.pcapng
  nsring dump -i ns0/eth1 -w - | tshark -r -
  nsring dump -i ns0/eth1 -w ring.pcapng -C 100 -W 5
  nsring dump -i 'lab-*/eth0' -w lab.pcapng          every lab namespace, as they come and go
  nsring dump --all-netns -i 'veth*' --follow -w all.pcapng

pcapng (the default) gets an interface description block per captured interface, named after
the interface, with 'netns NAME (inode N)' as its description (and ', container podman:web1
(3f2a9c1b2c3d)' when the namespace belongs to one) and nanosecond timestamps,
enhanced packet blocks with the direction, and an interface statistics block per interface
(received, dropped by the kernel, written) when it leaves or the file ends. VLAN tags the
kernel took out are put back into the written bytes, as tcpdump does. Patterns and
--all-netns capture Ethernet interfaces only (another link type is captured when named
exactly), so that tcpdump can read the file (Wireshark reads any mix).

Many namespaces: an interface that appears and matches (a new namespace, a veth moved in) is
captured within a second, its description block added to the file; one that goes away
(namespace deleted, interface removed or moved) gets its statistics block, the rest goes on.
A namespace that nothing but nsring holds any more (unmounted, its processes gone) is let go,
so the kernel can tear it down. Ring memory comes from one budget (--ring-budget); each
capture a pattern finds gets a ring of 8 x 128 KiB unless --blocks/--block-kib say otherwise.
With --json, a line on stdout when a capture opens and when it closes (with its counts).
Classic pcap (--format pcap) holds one interface: it takes one exact -i.

Rotation: -C MB starts a new file after MB million bytes, -G SECS after SECS seconds; the
files are FILE, FILE1, FILE2, ... (numbered, never dated); -W N keeps the newest N and
deletes older ones. Each file is complete and valid on its own.

Packets go from the capture rings to the file in gathered writes of about 256 KiB, with no
copy in between (one thread, one epoll set over every ring); the file is flushed after every
ring block. If the file cannot keep up, the rings fill and the kernel counts the drops, per
interface (statistics blocks and the final line). Ctrl-C, SIGTERM, SIGHUP, --duration and -N
end the capture with a complete file; so does an interface named exactly that goes down or
away (then the reason is given and the exit status is 1). If the disk fills up, the file is
cut back to its last complete block (still a valid file) and nsring exits with status 1.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP,
    after_long_help = crate::long_help(AFTER_HELP))]
pub struct Args {
    #[command(flatten)]
    pub capture: CaptureArgs,
    /// Write to FILE, or '-' for standard output.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: String,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Pcapng)]
    pub format: Format,
    /// Start a new file after this many million bytes.
    #[arg(short = 'C', value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub file_size: Option<u64>,
    /// Start a new file after this many seconds.
    #[arg(short = 'G', value_name = "SECS", value_parser = parse_secs)]
    pub file_secs: Option<Duration>,
    /// Keep only the newest N files (with -C or -G).
    #[arg(short = 'W', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub file_count: Option<u32>,
    /// No start line and no open/close lines on stderr (the final statistics line is still
    /// printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// JSON lines on stdout when a capture opens and when it closes (not with -w -).
    #[arg(long)]
    pub json: bool,
}

/// The file's link type for an interface's `ARPHRD_*`, if a capture file can say it.
fn linktype(arphrd: u16) -> Option<LinkType> {
    match arphrd {
        1 | 772 => Some(LinkType::ETHERNET), // ARPHRD_ETHER, ARPHRD_LOOPBACK
        65534 => Some(LinkType::RAW),        // ARPHRD_NONE (tun, wireguard)
        _ => None,
    }
}

fn meta(t: &TargetInfo) -> Option<IfMeta> {
    Some(IfMeta {
        name: t.interface.clone(),
        description: crate::capture::ns_description(t),
        linktype: linktype(t.link_type)?,
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let c = &args.capture;
    if args.write == "-" && (args.file_size.is_some() || args.file_secs.is_some()) {
        return Err(crate::usage(
            "-C and -G rotate files; they cannot be used with -w - (standard output)",
        ));
    }
    if args.write == "-" && args.json {
        return Err(crate::usage(
            "--json writes to standard output, and so does -w -; write the capture to a file",
        ));
    }
    if args.file_count.is_some() && args.file_size.is_none() && args.file_secs.is_none() {
        return Err(crate::usage("-W needs -C or -G"));
    }
    let targets = c.targets()?;
    if args.format == Format::Pcap && (targets.len() > 1 || !targets[0].is_exact()) {
        return Err(crate::usage(
            "a pcap file cannot say which interface a packet came from: with several -i, a pattern or --all-netns, use --format pcapng",
        ));
    }
    let defaults = Defaults {
        snaplen: DUMP_SNAPLEN,
        blocks: DUMP_BLOCKS,
    };
    // every capture opens before the file is created: a bad interface leaves nothing behind
    let mut started = crate::capture::start(c, defaults, "dump")?;
    let mut first = Vec::new();
    for t in started.session.open_targets() {
        let Some(m) = meta(t) else {
            return Err(crate::usage(format!(
                "{} has hardware type {}, which nsring dump cannot describe in a capture file yet",
                t.label(),
                t.link_type
            )));
        };
        first.push((t.id, m));
    }
    let out = Output::new(&args, first)?;
    if !args.quiet {
        eprintln!(
            "nsring dump: capturing on {}, {}, writing {} to {}",
            crate::capture::describe_targets(&started),
            c.describe(&started.config, &started.ring),
            match args.format {
                Format::Pcapng => "pcapng",
                Format::Pcap => "pcap",
            },
            if args.write == "-" {
                "standard output"
            } else {
                &args.write
            },
        );
    }
    let mut d = Dumping {
        out,
        args: &args,
        single: started.single,
        events: args.json.then(Out::new),
        unwritable: Vec::new(),
    };
    let result = started
        .session
        .run(&mut d)
        .and_then(|()| d.out.close_file());
    let summary = |d: &Dumping<'_>| {
        eprintln!(
            "{} packets captured, {} dropped by kernel",
            d.out.written, d.out.left_drops
        );
    };
    match result {
        Ok(()) => {}
        Err(e) if e.is::<PipeClosed>() => {}
        Err(e) => {
            // What was written before the failure is a valid file; say how much.
            summary(&d);
            return Err(e);
        }
    }
    summary(&d);
    match started.session.take_fault() {
        // An interface named exactly went down or away: the file is closed as after
        // Ctrl-C (statistics blocks and all); then the reason, exit 1.
        Some(e) => Ok(crate::error::report(&e.into())),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// What `dump` does with the captures: their blocks into the file, an interface block as
/// each joins, a statistics block as each leaves.
struct Dumping<'a> {
    out: Output,
    args: &'a Args,
    single: bool,
    /// --json: open and close lines on stdout.
    events: Option<Out>,
    /// Captures whose link type a file cannot describe: their packets are not written.
    unwritable: Vec<u64>,
}

impl Dumping<'_> {
    fn event(
        &mut self,
        kind: &str,
        t: &TargetInfo,
        s: Option<&TargetStats>,
        why: Option<&CloseReason>,
    ) -> anyhow::Result<()> {
        if let Some(out) = self.events.as_mut() {
            let mut line = TargetLine::new(kind, t);
            if kind == "open" {
                line.ring_bytes = Some(t.ring_bytes);
            }
            line.totals = s.map(totals_of);
            line.reason = why.map(ToString::to_string);
            json_line(out, &line)?;
            out.flush()?;
        } else if !self.args.quiet && !self.single {
            match (s, why) {
                (Some(s), Some(why)) => eprintln!(
                    "nsring dump: closed {}: {} packets, {} dropped ({why})",
                    t.label(),
                    s.packets,
                    s.kernel.drops
                ),
                _ => eprintln!(
                    "nsring dump: opened {} ({})",
                    t.label(),
                    crate::capture::ns_description(t)
                ),
            }
        }
        Ok(())
    }
}

impl Handler for Dumping<'_> {
    type Error = anyhow::Error;

    fn opened(&mut self, t: &TargetInfo) -> anyhow::Result<()> {
        match meta(t) {
            Some(m) => self.out.join(t.id, m)?,
            None => {
                self.unwritable.push(t.id);
                eprintln!(
                    "nsring dump: not writing {}: hardware type {} cannot be described in a capture file",
                    t.label(),
                    t.link_type
                );
            }
        }
        self.event("open", t, None, None)
    }

    fn block(
        &mut self,
        t: &TargetInfo,
        s: &TargetStats,
        block: &Block<'_>,
    ) -> anyhow::Result<Taken> {
        let limit = self.args.capture.limit;
        if limit.is_some_and(|n| self.out.written >= n) || self.unwritable.contains(&t.id) {
            return Ok(Taken::default());
        }
        let before = self.out.written;
        let room = limit.map(|n| n.saturating_sub(before));
        let bytes = self.out.block(t.id, block, room)?;
        self.out.set_stats(t.id, s.kernel);
        self.out.flush()?;
        Ok(Taken {
            packets: self.out.written - before,
            bytes,
            stop: limit.is_some_and(|n| self.out.written >= n),
        })
    }

    fn closed(&mut self, t: &TargetInfo, s: &TargetStats, why: &CloseReason) -> anyhow::Result<()> {
        self.out.leave(t.id, s.kernel)?;
        self.event("close", t, Some(s), Some(why))
    }

    fn note(&mut self, note: &Note) -> anyhow::Result<()> {
        eprintln!("nsring dump: {note}");
        Ok(())
    }
}
