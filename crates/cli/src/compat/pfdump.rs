//! `pfdump`: PF_RING's capture-to-pcap tool with its flags (`-w FILE` required, snaplen
//! `-s` 128 by default, `-t` seconds between statistics, `-d` seconds to capture) and its
//! output: `Capturing from IFACE [MAC][ifIndex: N]`, then every period
//! `N sec pkts P drop D bytes B | pkts P bytes B drop D` on standard output (bytes count 24
//! bytes of preamble, CRC and gap per packet, as pfdump does). The file is classic pcap
//! with microsecond timestamps, as libpcap's `pcap_dump` writes it.

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_capture::{Capture, CaptureConfig, FanoutMode, RingGeometry};
use nsring_netns::NetNs;
use nsring_pcap::{LinkType, PcapHeader, PcapWriter, TsResolution};

use super::{device, direction, number, parse};
use crate::target::Target;

const HELP: &str = "\
pfdump (nsring) - capture to a pcap file with PF_RING's flags

-h              Print this help
-i <device>     Device: IFACE or NS/IFACE (ns0/eth1)
-c <cluster id> Cluster id (a PACKET_FANOUT group)
-f <filter>     BPF filter (tcpdump syntax)
-e <direction>  0=RX+TX, 1=RX only, 2=TX only
-s <len>        Packet capture length (snaplen, default 128)
-w <dump file>  pcap dump file path
-a              Active packet wait (accepted, no effect)
-t <time>       Periodic stats dump period (sec, default 1)
-d <time>       Maximum capture duration (sec)
";

#[derive(Debug, clap::Parser)]
#[command(name = "pfdump", disable_help_flag = true, disable_version_flag = true)]
struct Flags {
    #[arg(short = 'h')]
    help: bool,
    #[arg(short = 'i')]
    device: Option<String>,
    #[arg(short = 'c')]
    cluster: Option<String>,
    #[arg(short = 'f')]
    filter: Option<String>,
    #[arg(short = 'e')]
    direction: Option<String>,
    #[arg(short = 's')]
    snaplen: Option<String>,
    #[arg(short = 'w')]
    write: Option<String>,
    #[arg(short = 'a')]
    _active: bool,
    #[arg(short = 't')]
    period: Option<String>,
    #[arg(short = 'd')]
    duration: Option<String>,
}

/// The totals a statistics line shows.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    pkts: u64,
    bytes: u64,
    drops: u64,
}

/// pfdump's line: `N sec pkts P drop D bytes B | pkts P bytes B drop D`.
fn line(n: u64, now: Totals, prev: Totals) -> String {
    format!(
        "{n} sec pkts {} drop {} bytes {} | pkts {} bytes {} drop {}",
        now.pkts - prev.pkts,
        now.drops - prev.drops,
        now.bytes - prev.bytes,
        now.pkts,
        now.bytes,
        now.drops
    )
}

pub fn run(name: &str, rest: &[OsString]) -> anyhow::Result<ExitCode> {
    let f: Flags = parse(name, rest)?;
    if f.help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    let dev = device(name, f.device)?;
    let path = f
        .write
        .ok_or_else(|| crate::usage(format!("{name}: give the dump file with -w FILE")))?;
    let snaplen: u32 = match &f.snaplen {
        Some(s) => number::<u32>(name, 's', s)?.clamp(1, 262_144),
        None => 128,
    };
    let period: u64 = match &f.period {
        Some(t) => number::<u64>(name, 't', t)?.max(1),
        None => 1,
    };
    let duration: Option<u64> = match &f.duration {
        Some(d) => Some(number(name, 'd', d)?),
        None => None,
    };
    let target = Target::parse(&dev, None)?;
    let Some(iface) = target.iface.clone() else {
        return Err(crate::usage(format!("{name} -i {dev}: give one interface")));
    };
    let ns = NetNs::open(&target.ns)?;
    let link = nsring_netns::link::get(&ns, &iface)?;
    let mut cfg = CaptureConfig::new(iface.as_str())
        .snaplen(snaplen)
        .app_name(name)
        .ring(RingGeometry {
            block_timeout_ms: 10,
            ..RingGeometry::default()
        });
    if let Some(e) = &f.direction {
        cfg = cfg.direction(direction(name, e)?.parse()?);
    }
    if let Some(x) = &f.filter {
        cfg = cfg.filter(x.clone());
    }
    if let Some(c) = &f.cluster {
        let id: u16 = number(name, 'c', c)?;
        if id > 0 {
            cfg = cfg.fanout(id, FanoutMode::Hash);
        }
    }
    let mut cap = Capture::open(&ns, &cfg).with_context(|| format!("cannot capture on {dev}"))?;
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create the dump file {path}"))?;
    let mut w = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        PcapHeader {
            linktype: LinkType::ETHERNET,
            snaplen,
            resolution: TsResolution::Micros,
        },
    )?;
    println!(
        "Capturing from {dev} [{}][ifIndex: {}]",
        link.mac
            .as_deref()
            .unwrap_or("00:00:00:00:00:00")
            .to_uppercase(),
        link.index
    );
    println!("# Device RX channels: {}", link.num_rx_queues);
    if let Some(x) = &f.filter {
        println!("Successfully set BPF filter '{x}'");
    }
    std::io::stdout().flush()?;

    let stop = Arc::new(AtomicBool::new(false));
    let (s, waker) = (Arc::clone(&stop), cap.waker());
    ctrlc::set_handler(move || {
        s.store(true, Ordering::Relaxed);
        let _ = waker.wake();
    })
    .context("cannot install the Ctrl-C handler")?;

    let start = Instant::now();
    let end = duration.map(|d| start + Duration::from_secs(d));
    let every = Duration::from_secs(period);
    let mut next = start + every;
    let (mut now, mut prev, mut n) = (Totals::default(), Totals::default(), 0u64);
    let mut tagged = Vec::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed) || end.is_some_and(|e| Instant::now() >= e);
        let wait = if stopping {
            Duration::ZERO
        } else {
            let until = end.map_or(next, |e| e.min(next));
            until.saturating_duration_since(Instant::now())
        };
        match cap.next_block(Some(wait))? {
            Some(block) => {
                for fr in &block {
                    if fr.vlan().is_some() {
                        fr.copy_with_vlan(&mut tagged);
                        w.write_packet(fr.timestamp_ns(), fr.wire_len(), &tagged)?;
                    } else {
                        w.write_packet(fr.timestamp_ns(), fr.wire_len(), fr.data())?;
                    }
                    now.pkts += 1;
                    now.bytes += u64::from(fr.wire_len()) + 24;
                }
            }
            None if stopping => break,
            None => {}
        }
        if Instant::now() >= next {
            now.drops = cap.stats()?.drops;
            n += 1;
            println!("{}", line(n, now, prev));
            std::io::stdout().flush()?;
            prev = now;
            next += every;
        }
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("Leaving...");
    }
    now.drops = cap.stats()?.drops;
    n += 1;
    println!("{}", line(n, now, prev));
    w.finish()?.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfdump_line() {
        let prev = Totals {
            pkts: 10,
            bytes: 1000,
            drops: 1,
        };
        let now = Totals {
            pkts: 25,
            bytes: 2500,
            drops: 3,
        };
        assert_eq!(
            line(2, now, prev),
            "2 sec pkts 15 drop 2 bytes 1500 | pkts 25 bytes 2500 drop 3"
        );
    }
}
