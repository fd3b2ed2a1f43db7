//! `nsring ls`: PF_RING's `/proc/net/pf_ring` for any namespace, done in user space: a
//! summary (`info`), the interfaces (`dev`), and every packet socket (`sockets`): nsring's
//! own with their records' live counters, and everyone else's from the kernel
//! (packet_diag) with their owners.
//!
//! Exit status: 0 when the view was printed, even if some record was corrupt (a warning on
//! stderr names it); 2 when the namespace, interface or record asked for does not exist;
//! 1 when a namespace could not be read at all.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nsring_netns::{ContainerTag, DiscoverOptions, NetNs, NsSpec, TagSource};
use nsring_registry::record::{RunDir, SocketMode};
use nsring_registry::text;
use nsring_registry::view::{Device, NamespaceView, NsId, SocketEntry};
use serde_json::json;

use crate::out::{Out, json_line};

const AFTER_HELP: &str = "\
Examples:
  nsring ls                               summary, interfaces and sockets of this namespace
  nsring ls sockets --netns ns0           every packet socket of ns0 (tcpdump's too)
  nsring ls sockets 4242-eth1.0           one record, PF_RING style (or a socket inode)
  nsring ls dev eth1 --netns ns0          one interface, PF_RING style
  nsring ls --all-netns --json            every namespace, named and anonymous, as JSON
  nsring ls sockets --watch               refresh once a second (Ctrl-C stops)
  nsring ls --netns podman:web1           a container's namespace

A namespace that belongs to a container says which (`Container : podman:web1
(3f2a9c1b2c3d)`, `\"container\": {\"runtime\", \"id\", \"name\", \"source\"}` in --json; a pod's
namespace lists them all under \"containers\"): from the container's cgroup, named by its
runtime when it answers (DOCKER_HOST, CONTAINER_HOST and CONTAINERD_ADDRESS are honoured).

nsring's own sockets are recorded under /run/nsring/<netns-inode>/<pid>-<ifname>.<id>;
records whose owner is gone are removed by the next 'ls'. A corrupt record is named on
stderr and the rest is shown (exit 0); a namespace, interface or record that does not
exist is an error (exit 2).";

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = false,
    after_help = AFTER_HELP,
    after_long_help = crate::long_help(AFTER_HELP)
)]
pub struct Args {
    #[command(subcommand)]
    pub what: Option<What>,
    /// The namespace to show (NAME, pid:PID, a path or a container such as podman:web1); default: the current one.
    #[arg(long, short = 'n', value_name = "NS", global = true, add = crate::complete::netns())]
    pub netns: Option<NsSpec>,
    /// Every network namespace: named ones, and anonymous ones held by a process or a mount.
    #[arg(long, global = true)]
    pub all_netns: bool,
    /// One JSON object per namespace (per refresh with --watch), one per line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Refresh once a second until Ctrl-C.
    #[arg(long, global = true)]
    pub watch: bool,
    /// With --watch: stop after N refreshes.
    #[arg(long, value_name = "N", global = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// With --watch: seconds between refreshes.
    #[arg(long, value_name = "SECS", global = true, default_value = "1", value_parser = crate::cmd::count::parse_secs)]
    pub interval: Duration,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// The interfaces of the namespace (PF_RING's /proc/net/pf_ring/dev/).
    Dev {
        /// One interface, as a `Key : Value` block.
        iface: Option<String>,
    },
    /// Every packet socket of the namespace: nsring's with live counters, others with owners.
    Sockets {
        /// One socket, as a `Key : Value` block: a record name (`4242-eth1.0`) or a socket
        /// inode.
        record: Option<String>,
    },
}

/// What went wrong while printing, for the exit status.
#[derive(Debug, Default)]
struct Outcome {
    /// Something named on the command line does not exist.
    missing: bool,
    /// A namespace could not be read.
    failed: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.all_netns && args.netns.is_some() {
        return Err(crate::usage("--netns and --all-netns exclude each other"));
    }
    if args.count.is_some() && !args.watch {
        return Err(crate::usage("--count needs --watch"));
    }
    if let Some(What::Dev { iface: Some(i) }) = &args.what {
        nsring_netns::link::validate_ifname(i)?;
    }
    // A missing namespace is an error before anything is printed.
    if !args.all_netns {
        NetNs::open(args.netns.as_ref().unwrap_or(&NsSpec::Current))?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    if args.watch {
        let s = Arc::clone(&stop);
        ctrlc::set_handler(move || s.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let run = RunDir::new();
    let mut names = Names::default();
    let mut out = Out::new();
    let clear = args.watch && !args.json && std::io::stdout().is_terminal();
    let mut outcome;
    let mut rounds = 0u64;
    loop {
        let started = Instant::now();
        if clear {
            write!(out, "\x1b[H\x1b[2J")?;
        } else if args.watch && rounds > 0 && !args.json {
            writeln!(out)?;
        }
        outcome = refresh(&args, &run, &mut names, &mut out)?;
        out.flush()?;
        rounds += 1;
        if !args.watch || args.count.is_some_and(|n| rounds >= n) {
            break;
        }
        while started.elapsed() < args.interval && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(args.interval));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(if outcome.missing {
        ExitCode::from(2)
    } else if outcome.failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A namespace to show: its label, the open namespace, the containers it belongs to.
struct Shown {
    label: String,
    ns: NetNs,
    containers: Vec<ContainerTag>,
}

/// The names of containers already asked of their runtimes: with --watch a runtime is asked
/// again only when a container it has not named yet appears.
#[derive(Default)]
struct Names(HashMap<String, ContainerTag>);

impl Names {
    /// Names the containers of every target that cgroups alone found.
    fn apply(&mut self, targets: &mut [Shown]) {
        let unknown = targets
            .iter()
            .flat_map(|t| &t.containers)
            .any(|c| c.source == TagSource::Cgroup && !self.0.contains_key(&c.id));
        if unknown {
            let mut all: Vec<ContainerTag> = targets
                .iter()
                .flat_map(|t| t.containers.iter().cloned())
                .filter(|c| !self.0.contains_key(&c.id))
                .collect();
            nsring_netns::name_tags(&mut all);
            // asked once: what stays unnamed (a runtime that is not here) is remembered too
            self.0.extend(all.into_iter().map(|c| (c.id.clone(), c)));
        }
        for t in targets.iter_mut() {
            for c in &mut t.containers {
                if c.source == TagSource::Cgroup
                    && let Some(named) = self.0.get(&c.id)
                {
                    *c = named.clone();
                }
            }
            t.containers
                .sort_by_key(|c| (c.source != TagSource::Api, c.label()));
        }
    }
}

/// The namespaces to show, each opened, with a label and its containers.
fn targets(args: &Args, names: &mut Names) -> anyhow::Result<Vec<Shown>> {
    let mut shown = if !args.all_netns {
        let spec = args.netns.clone().unwrap_or(NsSpec::Current);
        let ns = NetNs::open(&spec)?;
        let label = match &spec {
            NsSpec::Current => {
                let names = nsring_netns::identify(std::process::id()).unwrap_or_default();
                match (names.is_empty(), ns.is_initial()) {
                    (false, _) => names.join(","),
                    (true, true) => "(initial)".into(),
                    (true, false) => "(current)".into(),
                }
            }
            spec => spec.to_string(),
        };
        let containers = nsring_netns::containers_of(&ns, DiscoverOptions { runtimes: false });
        vec![Shown {
            label,
            ns,
            containers,
        }]
    } else {
        nsring_registry::host::namespaces()?
            .into_iter()
            .map(|h| Shown {
                label: h.label,
                ns: h.ns,
                containers: h.containers,
            })
            .collect()
    };
    names.apply(&mut shown);
    Ok(shown)
}

/// `"container"` (the first: named ones first) and, when there are several (a pod's),
/// `"containers"`, added to a JSON line of a namespace.
fn with_containers(mut v: serde_json::Value, tags: &[ContainerTag]) -> serde_json::Value {
    if let (Some(first), Some(map)) = (tags.first(), v.as_object_mut()) {
        map.insert("container".into(), json!(first));
        if tags.len() > 1 {
            map.insert("containers".into(), json!(tags));
        }
    }
    v
}

/// `podman:web1 (3f2a9c1b2c3d)`, several joined with `, `.
fn containers_text(tags: &[ContainerTag]) -> String {
    tags.iter()
        .map(|t| format!("{} ({})", t.label(), t.id.get(..12).unwrap_or(&t.id)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One refresh: every namespace's view, printed.
fn refresh(args: &Args, run: &RunDir, names: &mut Names, out: &mut Out) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let targets = targets(args, names)?;
    let containers: HashMap<u64, &[ContainerTag]> = targets
        .iter()
        .map(|t| (t.ns.inode(), t.containers.as_slice()))
        .collect();
    let tags = |v: &NamespaceView| -> &[ContainerTag] {
        containers.get(&v.namespace.inode).copied().unwrap_or(&[])
    };
    // Records of namespaces that no longer exist go away (best effort: needs root).
    let mut orphans = Vec::new();
    if let Ok(all) = nsring_netns::list_all() {
        let alive: BTreeSet<u64> = all.iter().map(|i| i.inode).collect();
        if let Ok(report) = run.sweep(&alive) {
            orphans = report.orphans;
        }
    }
    let mut views = Vec::new();
    for Shown { label, ns, .. } in &targets {
        crate::cmd::ls_kernel::sweep(ns, label);
        match nsring_registry::namespace_view(ns, label, run) {
            Ok(v) => views.push(v),
            Err(e) => {
                eprintln!("nsring: error: {}", chain(&e));
                outcome.failed = true;
            }
        }
    }
    if args.all_netns {
        for inode in orphans {
            if views.iter().any(|v| v.namespace.inode == inode) {
                continue;
            }
            views.push(orphan_view(run, inode));
        }
    }
    for v in &views {
        for p in &v.problems {
            eprintln!("nsring: warning: namespace {}: {p}", v.namespace.label);
        }
    }

    let multi = views.len() > 1 || args.all_netns;
    match &args.what {
        Some(What::Sockets { record: Some(key) }) => {
            let found = show_one(out, &views, multi, args.json, &tags, |v| {
                v.find_socket(key).map(|s| {
                    (
                        with_containers(json!({"namespace": v.namespace, "socket": s}), tags(v)),
                        text::socket_info(s, &v.namespace),
                    )
                })
            })?;
            if !found {
                missing(
                    args,
                    &views,
                    &format!("socket record or socket inode '{key}'"),
                    "sockets",
                );
                outcome.missing = true;
            }
        }
        Some(What::Dev { iface: Some(name) }) => {
            let found = show_one(out, &views, multi, args.json, &tags, |v| {
                v.find_device(name).map(|d| {
                    (
                        with_containers(json!({"namespace": v.namespace, "device": d}), tags(v)),
                        text::device_info(d, &v.namespace),
                    )
                })
            })?;
            if !found {
                missing(args, &views, &format!("interface '{name}'"), "dev");
                outcome.missing = true;
            }
        }
        Some(What::Dev { iface: None }) => {
            for v in &views {
                if args.json {
                    json_line(
                        out,
                        &with_containers(
                            json!({"namespace": v.namespace, "devices": v.devices}),
                            tags(v),
                        ),
                    )?;
                } else {
                    if multi {
                        heading(out, &v.namespace, tags(v))?;
                    }
                    out.write_all(devices_table(&v.devices).as_bytes())?;
                }
            }
        }
        Some(What::Sockets { record: None }) => {
            for v in &views {
                if args.json {
                    json_line(
                        out,
                        &with_containers(
                            json!({"namespace": v.namespace, "sockets": v.sockets}),
                            tags(v),
                        ),
                    )?;
                } else {
                    if multi {
                        heading(out, &v.namespace, tags(v))?;
                    }
                    out.write_all(sockets_table(&v.sockets).as_bytes())?;
                }
            }
        }
        None => {
            for v in &views {
                if args.json {
                    json_line(
                        out,
                        &with_containers(
                            json!({
                                "namespace": v.namespace,
                                "version": env!("CARGO_PKG_VERSION"),
                                "backend": "tpacket_v3",
                                "ring_defaults": nsring_capture::RingGeometry::default(),
                                "nsring_sockets": v.ours(),
                                "packet_sockets": v.kernel_sockets,
                                "devices": v.devices,
                                "sockets": v.sockets,
                                "problems": v.problems,
                            }),
                            tags(v),
                        ),
                    )?;
                } else {
                    if multi {
                        heading(out, &v.namespace, tags(v))?;
                    }
                    let summary = text::summary(v, &ring_defaults());
                    // the containers right after the namespace line
                    let (first, rest) = summary.split_once('\n').unwrap_or((&summary, ""));
                    writeln!(out, "{first}")?;
                    if !tags(v).is_empty() {
                        out.write_all(
                            text::kv(&[("Container", containers_text(tags(v)))]).as_bytes(),
                        )?;
                    }
                    out.write_all(rest.as_bytes())?;
                    writeln!(out, "\nDevices")?;
                    out.write_all(devices_table(&v.devices).as_bytes())?;
                    writeln!(out, "\nSockets")?;
                    out.write_all(sockets_table(&v.sockets).as_bytes())?;
                }
            }
        }
    }
    Ok(outcome)
}

/// Prints, for every view, the one item `find` picks (as JSON or as a `Key : Value` block);
/// returns whether any view had it.
fn show_one<'a>(
    out: &mut Out,
    views: &'a [NamespaceView],
    multi: bool,
    json: bool,
    tags: &dyn Fn(&'a NamespaceView) -> &'a [ContainerTag],
    find: impl Fn(&NamespaceView) -> Option<(serde_json::Value, String)>,
) -> anyhow::Result<bool> {
    let mut found = false;
    for v in views {
        let Some((value, text)) = find(v) else {
            continue;
        };
        found = true;
        if json {
            json_line(out, &value)?;
        } else {
            if multi {
                heading(out, &v.namespace, tags(v))?;
            }
            out.write_all(text.as_bytes())?;
        }
    }
    Ok(found)
}

/// Says that `what` is in none of the views, and where to look (`nsring ls SUB`).
fn missing(args: &Args, views: &[NamespaceView], what: &str, sub: &str) {
    let place = if args.all_netns {
        "any namespace".to_owned()
    } else {
        let ns = views.first().map_or("?", |v| v.namespace.label.as_str());
        format!("namespace {ns}")
    };
    eprintln!(
        "nsring: error: no {what} in {place} (see 'nsring ls {sub}{}')",
        ns_flag(args)
    );
}

fn ns_flag(args: &Args) -> String {
    match &args.netns {
        Some(ns) => format!(" --netns {ns}"),
        None if args.all_netns => " --all-netns".into(),
        None => String::new(),
    }
}

/// The records of a namespace that nothing names any more but that its sockets keep alive:
/// no kernel view (it cannot be entered), only what the records say.
fn orphan_view(run: &RunDir, inode: u64) -> NamespaceView {
    let scan = run.scan(inode, None).unwrap_or_default();
    let sockets: Vec<SocketEntry> = scan
        .records
        .into_iter()
        .map(|r| SocketEntry::ours(r, None))
        .collect();
    NamespaceView {
        namespace: NsId {
            label: format!("inode {inode} (unnamed, kept alive by its sockets)"),
            inode,
            cookie: None,
            initial: false,
            container: None,
        },
        devices: Vec::new(),
        sockets,
        kernel_sockets: None,
        problems: scan.problems.iter().map(ToString::to_string).collect(),
        removed_stale: scan.removed,
    }
}

fn heading(out: &mut Out, ns: &NsId, containers: &[ContainerTag]) -> std::io::Result<()> {
    if containers.is_empty() {
        writeln!(out, "== namespace {} (inode {}) ==", ns.label, ns.inode)
    } else {
        writeln!(
            out,
            "== namespace {} (inode {}), container {} ==",
            ns.label,
            ns.inode,
            containers_text(containers)
        )
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let _ = write!(s, ": {c}");
        cur = c.source();
    }
    s
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

/// A table: left-aligned columns, except those whose header starts with '>' (numbers).
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let right: Vec<bool> = headers.iter().map(|h| h.starts_with('>')).collect();
    let names: Vec<&str> = headers.iter().map(|h| h.trim_start_matches('>')).collect();
    let mut width: Vec<usize> = names.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = width[i] - c.chars().count();
            if right[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.push('\n');
        s
    };
    let mut s = line(&names);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        s.push_str(&line(&cells));
    }
    s
}

/// The capture engine's default ring, for the summary.
pub fn ring_defaults() -> String {
    let g = nsring_capture::RingGeometry::default();
    format!(
        "{} blocks x {} KiB = {} MiB, block timeout {} ms",
        g.block_count,
        g.block_size >> 10,
        g.total_bytes() >> 20,
        g.block_timeout_ms
    )
}

fn state(l: &nsring_netns::link::Link) -> &str {
    text::state(l)
}

fn devices_table(devs: &[Device]) -> String {
    let rows: Vec<Vec<String>> = devs
        .iter()
        .map(|d| {
            let l = &d.link;
            vec![
                l.name.clone(),
                l.index.to_string(),
                l.mac.clone().unwrap_or_else(|| "-".into()),
                text::kind_name(l).to_owned(),
                state(l).to_owned(),
                l.promiscuity.to_string(),
                format!("{}/{}", l.num_rx_queues, l.num_tx_queues),
                d.sockets.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "NAME", ">INDEX", "MAC", "TYPE", "STATE", ">PROMISC", ">RX/TX Q", ">SOCKETS",
        ],
        &rows,
    )
}

fn count(n: u64) -> String {
    n.to_string()
}

/// A count where known, `-` where nobody can know it (never a 0 that means "unknown").
fn known(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), count)
}

fn sockets_table(socks: &[SocketEntry]) -> String {
    let rows: Vec<Vec<String>> = socks
        .iter()
        .map(|s| {
            let (mode, filter, packets, bytes, drops, name) = match &s.record {
                // a transmit socket: frames sent, their bytes, and the frames refused
                Some(r) if r.info.mode == SocketMode::Tx => (
                    "tx".into(),
                    "-".into(),
                    count(r.counters.sent),
                    count(r.counters.bytes),
                    count(r.counters.send_errors),
                    r.name.clone(),
                ),
                Some(r) if r.info.mode == SocketMode::RxTx => (
                    format!("{}+tx", r.info.direction),
                    r.info.filter.clone().unwrap_or_else(|| "-".into()),
                    format!("{}+{}", r.counters.packets, r.counters.sent),
                    count(r.counters.bytes),
                    format!("{}+{}", r.counters.drops, r.counters.send_errors),
                    r.name.clone(),
                ),
                Some(r) => (
                    r.info.direction.clone(),
                    r.info.filter.clone().unwrap_or_else(|| "-".into()),
                    count(r.counters.packets),
                    count(r.counters.bytes),
                    count(r.counters.drops),
                    r.name.clone(),
                ),
                // another process's: only what the kernel tells (no count, drops only
                // without a ring), '-' for the rest
                None => (
                    "-".into(),
                    s.kernel
                        .as_ref()
                        .map_or("-".into(), |k| k.filter.to_string()),
                    known(s.packets),
                    "-".into(),
                    known(s.drops),
                    "-".into(),
                ),
            };
            let ring = match (&s.record, &s.kernel) {
                (Some(r), _) if crate::cmd::ls_kernel::is_counter(r) => {
                    crate::cmd::ls_kernel::ring_cell(r).unwrap_or_else(|| "ebpf".into())
                }
                (Some(r), _) if r.info.ring.is_some() => {
                    let g = r.info.ring.expect("checked");
                    format!("{}x{}K", g.block_count, g.block_size >> 10)
                }
                (_, Some(k)) => match (&k.version, &k.rx_ring) {
                    (Some(v), Some(rr)) => format!("{v} {}x{}K", rr.block_nr, rr.block_size >> 10),
                    (Some(v), None) => v.to_string(),
                    _ => "-".into(),
                },
                _ => "-".into(),
            };
            let cluster = match (&s.record, &s.kernel) {
                (Some(r), _) => r
                    .info
                    .cluster
                    .as_ref()
                    .map_or("-".into(), |c| format!("{}/{}", c.id, c.kind)),
                (None, Some(k)) => k
                    .fanout
                    .map_or("-".into(), |f| format!("{}/{}", f.id, f.kind)),
                _ => "-".into(),
            };
            vec![
                s.inode.to_string(),
                if s.ours { "nsring" } else { "other" }.into(),
                s.owner_text(),
                s.ifname(),
                mode,
                ring,
                cluster,
                shorten(&filter, 32),
                packets,
                bytes,
                drops,
                name,
            ]
        })
        .collect();
    table(
        &[
            ">INODE",
            "KIND",
            "OWNER",
            "IFACE",
            "DIR",
            "RING",
            "CLUSTER",
            "FILTER",
            ">PACKETS",
            ">BYTES",
            ">DROPS/ERRS",
            "RECORD",
        ],
        &rows,
    )
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["NAME", ">N"],
            &[
                vec!["a".into(), "1".into()],
                vec!["long".into(), "100".into()],
            ],
        );
        assert_eq!(t, "NAME    N\na       1\nlong  100\n");
    }

    #[test]
    fn shortened_cells() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
