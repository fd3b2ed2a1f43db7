//! `nsring`: namespace-native packet capture. The binary is argument parsing, one module per
//! subcommand (in `cmd/`), and output formatting; the work is done by the library crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod decode;
mod error;
mod out;
mod stats;
mod synth;
mod target;

pub use error::{Usage, usage};

/// nsring — packet capture that is at home in network namespaces.
///
/// A namespace is written NAME (iproute2's /run/netns/NAME), a path (/proc/PID/ns/net),
/// or pid:PID; an interface in a namespace is NS/IFACE (ns0/eth1).
#[derive(Debug, Parser)]
#[command(
    name = "nsring",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage network namespaces (like `ip netns`; namespaces are shared with iproute2).
    Netns(cmd::netns::Args),
    /// List, move, create and configure interfaces (the part of `ip link`/`ip addr` nsring needs).
    Link(cmd::link::Args),
    /// Count packets on an interface of any namespace, with PF_RING-style statistics (pfcount).
    Count(cmd::count::Args),
    /// Send synthetic frames or replay a pcap/pcapng file, at a steady rate or top speed (pfsend).
    Send(cmd::send::Args),
    /// Capture to a pcapng or pcap file, from interfaces of any namespaces (pfdump, tcpdump -w).
    Dump(cmd::dump::Args),
    /// List the interfaces a capture can bind in a namespace (pfcount -L).
    Devs(cmd::devs::Args),
    /// The per-namespace view: summary, interfaces and every packet socket (/proc/net/pf_ring).
    Ls(cmd::ls::Args),
    /// Run the seed's walkthrough on a built-in lab: namespaces, a veth pair, capture, cleanup.
    Demo(cmd::demo::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return error::clap_error(e),
    };
    let result = match cli.command {
        Command::Netns(args) => cmd::netns::run(args),
        Command::Link(args) => cmd::link::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Count(args) => cmd::count::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Dump(args) => cmd::dump::run(args),
        Command::Devs(args) => cmd::devs::run(args),
        Command::Ls(args) => cmd::ls::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => error::report(&err),
    }
}
