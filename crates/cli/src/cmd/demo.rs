//! `nsring demo`: PF_RING's network-namespace page (the seed), step by step, on a lab of its
//! own. Every step prints the seed's command, the nsring command that does the same, and runs
//! that command (this same binary) so its real output is shown. The lab is removed at the end,
//! also on Ctrl-C or a failed step.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The lab: a namespace standing in for the seed's ns0 (named nsrt-demo<pid>-ns0), a 'wire'
namespace holding the far end of a veth pair, and the near end of that pair created in the
initial namespace (standing in for eth1) and moved into ns0. Addresses come from
198.18.0.0/15. Nothing is sent on any interface the demo did not create. Needs root.")]
pub struct Args {
    /// Packets to send into eth1 and count there.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub packets: u64,
    /// Their rate, in packets per second.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub pps: u64,
    /// Keep going without pausing between steps (the default; kept for scripts).
    #[arg(long, hide = true)]
    pub batch: bool,
}

/// What the demo created; removed on drop.
struct DemoLab {
    ns0: String,
    wire: String,
    eth1: String,
}

impl Drop for DemoLab {
    fn drop(&mut self) {
        // Deleting the namespaces destroys the veth pair wherever its ends are.
        for ns in [&self.ns0, &self.wire] {
            let _ = nsring_netns::del(ns);
        }
        if let Ok(init) = nsring_netns::NetNs::current() {
            let _ = nsring_netns::link::del(&init, &self.eth1);
        }
    }
}

/// Turns IPv6 off for the interfaces of a namespace (`net.ipv6.conf.{default,all}`).
fn quiet(ns: &str) -> anyhow::Result<()> {
    nsring_netns::NetNs::open(&nsring_netns::NsSpec::Name(ns.to_owned()))?
        .run(|| {
            ["default", "all"].iter().try_for_each(|conf| {
                std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1")
            })
        })?
        .with_context(|| format!("cannot turn IPv6 off in {ns}"))
}

fn me() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the nsring binary")
}

/// Prints a step header: the seed's command and ours.
fn step(n: u32, title: &str, seed: &str, ours: &str) {
    println!("\n── {n}. {title}");
    println!("   seed:   {seed}");
    println!("   nsring: {ours}");
}

/// Runs `nsring ARGS` and shows its output indented; fails if it fails.
fn nsring(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(me()?)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run nsring")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for line in text.lines().chain(err.lines()) {
        println!("   │ {line}");
    }
    if !out.status.success() {
        bail!("'nsring {}' failed ({})", args.join(" "), out.status);
    }
    Ok(text)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
    let check = || -> anyhow::Result<()> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted; the lab has been removed");
        }
        Ok(())
    };
    let pid = std::process::id();
    let lab = DemoLab {
        ns0: format!("nsrt-demo{pid}-ns0"),
        wire: format!("nsrt-demo{pid}-wire"),
        eth1: format!("nsrt{pid:x}i1"),
    };
    let (ns0, wire, eth1) = (lab.ns0.as_str(), lab.wire.as_str(), lab.eth1.as_str());
    println!("nsring demo: PF_RING's network-namespace walkthrough on a lab of its own.");
    println!("ns0 is '{ns0}'; eth1 is '{eth1}', one end of a veth pair whose other end");
    println!("('wire0') sits in '{wire}' and plays the network.");

    step(
        1,
        "Create a network namespace ns0",
        "ip netns add ns0",
        &format!("nsring netns add {ns0}"),
    );
    nsring(&["netns", "add", ns0])?;
    nsring(&["netns", "add", wire])?;
    // The lab's own setting, not a seed step: no IPv6 autoconfiguration chatter on its
    // links, so the counts below are exactly the demo's traffic.
    for ns in [ns0, wire] {
        quiet(ns)?;
    }
    check()?;

    step(
        2,
        "List all network namespaces",
        "ip netns list",
        "nsring netns list",
    );
    nsring(&["netns", "list"])?;
    check()?;

    step(
        3,
        "An interface for the host: a veth pair standing in for eth1",
        "(eth1 is a physical NIC in the seed)",
        &format!("nsring link add {eth1} type veth peer wire0 --peer-netns {wire}"),
    );
    nsring(&[
        "link",
        "add",
        eth1,
        "type",
        "veth",
        "peer",
        "wire0",
        "--peer-netns",
        wire,
    ])?;
    check()?;

    step(
        4,
        "Move eth1 into ns0",
        "ip link set eth1 netns ns0",
        &format!("nsring link set {eth1} netns {ns0}"),
    );
    nsring(&["link", "set", eth1, "netns", ns0])?;
    check()?;

    step(
        5,
        "Interfaces capture can bind, in the host and in ns0",
        "ls /proc/net/pf_ring/dev/ ; ip netns exec ns0 ls /proc/net/pf_ring/dev/",
        &format!("nsring devs ; nsring devs --netns {ns0}"),
    );
    let host = nsring(&["devs"])?;
    let inside = nsring(&["devs", "--netns", ns0])?;
    println!(
        "   → {eth1} is {} the host's list and {} ns0's: an interface belongs to one namespace.",
        if host.contains(eth1) {
            "still in"
        } else {
            "gone from"
        },
        if inside.contains(eth1) {
            "in"
        } else {
            "missing from"
        }
    );
    check()?;

    step(
        6,
        "Bring eth1 up inside ns0 and give both ends addresses",
        "ip netns exec ns0 ifconfig eth1 up",
        &format!("nsring link set {eth1} up --netns {ns0}"),
    );
    nsring(&["link", "set", eth1, "up", "--netns", ns0])?;
    nsring(&["link", "set", "lo", "up", "--netns", ns0])?;
    nsring(&[
        "link",
        "addr",
        "add",
        "198.18.0.1/24",
        "dev",
        eth1,
        "--netns",
        ns0,
    ])?;
    nsring(&["link", "set", "wire0", "up", "--netns", wire])?;
    nsring(&[
        "link",
        "addr",
        "add",
        "198.18.0.2/24",
        "dev",
        "wire0",
        "--netns",
        wire,
    ])?;
    check()?;

    step(
        7,
        "Run a command inside ns0",
        "ip netns exec ns0 CMD",
        &format!("nsring netns exec {ns0} ls /sys/class/net"),
    );
    nsring(&["netns", "exec", ns0, "ls", "/sys/class/net"])?;
    check()?;

    step(
        8,
        "Count packets on eth1 in ns0, from the host, without a wrapper",
        "ip netns exec ns0 pfcount -i eth1",
        &format!("nsring count -i {ns0}/{eth1} -N {}", args.packets),
    );
    count_with_traffic(&lab, &args, &stop)?;
    check()?;

    step(
        10,
        "Delete ns0: virtual interfaces are destroyed, physical ones return to the host",
        "ip netns del ns0",
        &format!("nsring netns del {ns0}"),
    );
    nsring(&["netns", "del", ns0])?;
    let host = nsring(&["link", "list"])?;
    println!(
        "   → {eth1} {} in the host (a veth is destroyed with its namespace, and so is its peer).",
        if host.contains(eth1) {
            "is back"
        } else {
            "is not"
        }
    );
    nsring(&["netns", "del", wire])?;
    drop(lab);
    println!("\nDone: the lab is gone (nsring netns list shows no nsrt-demo{pid}-* namespace).");
    std::io::stdout().flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Starts `nsring count` on ns0/eth1, drives traffic into it from the wire namespace with
/// `nsring send`, and shows the per-namespace socket view while the capture runs.
fn count_with_traffic(lab: &DemoLab, args: &Args, stop: &AtomicBool) -> anyhow::Result<()> {
    let target = format!("{}/{}", lab.ns0, lab.eth1);
    let n = args.packets.to_string();
    // Bounded: the count ends after N packets, or after the time the traffic needs plus a margin.
    let limit = (args.packets / args.pps.max(1) + 10).to_string();
    let mut count = Command::new(me()?)
        .args(["count", "-i", &target, "-N", &n, "--duration", &limit])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start nsring count")?;
    let mut err = BufReader::new(count.stderr.take().context("no stderr")?);
    let mut first = String::new();
    err.read_line(&mut first)?;
    println!("   │ {}", first.trim_end());
    step(
        9,
        "The capture sockets, per namespace, while the capture runs",
        "ip netns exec ns0 ls /proc/net/pf_ring/ ; ls /proc/net/pf_ring/",
        &format!("nsring ls sockets --netns {} ; nsring ls sockets", lab.ns0),
    );
    let inside = nsring(&["ls", "sockets", "--netns", &lab.ns0])?;
    let host = nsring(&["ls", "sockets"])?;
    let pid = count.id().to_string();
    println!(
        "   → the capture (PID {pid}) is {} ns0's view and {} the host's, although it runs in the host:",
        if inside.contains(&pid) {
            "in"
        } else {
            "missing from"
        },
        if host.contains(&pid) {
            "also in"
        } else {
            "not in"
        },
    );
    println!("     a socket belongs to the namespace it was opened in.");
    let wire = format!("{}/wire0", lab.wire);
    let pps = args.pps.to_string();
    println!("   traffic: nsring send -i {wire} -N {n} --pps {pps}");
    let send = Command::new(me()?)
        .args(["send", "-i", &wire, "-N", &n, "--pps", &pps, "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start nsring send")?;

    let sent = send.wait_with_output().context("nsring send failed")?;
    let mut rest = String::new();
    err.read_to_string(&mut rest)?;
    let status = count.wait().context("nsring count failed")?;
    for line in String::from_utf8_lossy(&sent.stderr).lines() {
        println!("   │ {line}");
    }
    // The final statistics block of count.
    let last = rest
        .rfind("=========================\nAbsolute")
        .unwrap_or(0);
    for line in rest[last..].lines() {
        println!("   │ {line}");
    }
    if stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    if !sent.status.success() {
        bail!("nsring send failed ({})", sent.status);
    }
    if !status.success() {
        bail!("nsring count failed ({status}): {}", rest.trim());
    }
    Ok(())
}
