//! `nsring`: namespace-native packet capture. The binary is argument parsing, one module per
//! subcommand (in `cmd/`), and output formatting; the work is done by the library crates.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod capture;
mod cmd;
mod compat;
mod complete;
mod decode;
mod error;
mod identity;
mod out;
mod stats;
mod synth;
mod target;

pub use error::{Usage, usage};

/// The one warning when a socket could not be recorded under /run/nsring (not writable,
/// say): the command goes on; `nsring ls` then shows the socket from the kernel's list only.
pub fn warn_unrecorded(command: &str, err: Option<&nsring_registry::record::Error>) {
    if let Some(e) = err {
        eprintln!(
            "nsring {command}: warning: not recorded under /run/nsring ({e}); going on: 'nsring ls' shows this socket without its counters"
        );
    }
}

/// A command's `--help` epilogue: its own text, then the target grammar.
pub fn long_help(text: &str) -> String {
    format!("{text}\n\n{}", nsring_netns::spec::HELP)
}

/// Packet capture that is at home in network namespaces.
///
/// A namespace is written NAME (iproute2's /run/netns/NAME, else a container's name), a path
/// (/proc/PID/ns/net), pid:PID or a container (podman:web1, docker:ID, containerd:ID); an
/// interface in a namespace is NS/IFACE (ns0/eth1). `nsring count --help` has the details.
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
    /// Forward frames from one interface to another at ring speed, any namespaces (pfbridge).
    Bridge(cmd::bridge::Args),
    /// One-way latency between two interfaces of any namespaces, both ends timed by one clock (pflatency).
    Latency(cmd::latency::Args),
    /// Serve the per-namespace view as files, like /proc/net/pf_ring (each reader sees its own namespace).
    Mount(cmd::mount::Args),
    /// Run the seed's walkthrough on a built-in lab: namespaces, a veth pair, capture, cleanup.
    Demo(cmd::demo::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(cmd::completions::Args),
    /// Print a manual page, or write all of them (nsring(1), nsring-COMMAND(1)) into a directory.
    Man(cmd::man::Args),
    /// Wireshark/tshark extcap: every namespace's interfaces in Wireshark's list, captured
    /// like `dump` (Wireshark runs `nsring --extcap-...` itself).
    Extcap(cmd::extcap::Args),
    /// Prometheus/OpenMetrics exporter: every namespace's interface counters and packet
    /// sockets on http://127.0.0.1:19911/metrics.
    Exporter(cmd::exporter::Args),
}

fn main() -> ExitCode {
    // A Tab in a shell runs `NSRING_COMPLETE=SHELL nsring -- WORDS`: answer and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::ENV_VAR)
        .bin("nsring")
        .completer("nsring")
        .complete();
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Called as pfcount, pfsend or pfdump: PF_RING's flags and output
    if let Some(code) = compat::dispatch(&argv) {
        return code;
    }
    // Wireshark runs an extcap with its own arguments and no subcommand
    if argv.get(1).is_some_and(|a| cmd::extcap::starts_extcap(a)) {
        argv.insert(1, "extcap".into());
    }
    run_args(argv)
}

/// Parses `argv` (the program's name first) as nsring's command line and runs it.
fn run_args(argv: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(argv) {
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
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::man::run(args, Cli::command()),
        Command::Mount(args) => cmd::mount::run(args),
        Command::Extcap(args) => cmd::extcap::run(args),
        Command::Exporter(args) => cmd::exporter::run(args),
        Command::Bridge(args) => cmd::bridge::run(args),
        Command::Latency(args) => cmd::latency::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => error::report(&err),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;
    use clap_complete::engine::ArgValueCompleter;

    use super::Cli;

    /// Every (short flag, long name) pair of `cmd` and its subcommands, with the command path.
    fn shorts(cmd: &clap::Command, path: &str, out: &mut BTreeMap<char, Vec<(String, String)>>) {
        for arg in cmd.get_arguments() {
            let long = arg.get_long().unwrap_or(arg.get_id().as_str()).to_string();
            let letters = arg.get_short().into_iter();
            for c in letters.chain(arg.get_all_short_aliases().unwrap_or_default()) {
                out.entry(c)
                    .or_default()
                    .push((long.clone(), path.to_string()));
            }
        }
        for sub in cmd.get_subcommands() {
            shorts(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn one_short_flag_means_one_thing_across_all_commands() {
        let mut cmd = Cli::command();
        cmd.build(); // propagates global arguments into the subcommands
        let mut all = BTreeMap::new();
        shorts(&cmd, "nsring", &mut all);
        let mut clashes = Vec::new();
        for (c, uses) in &all {
            let first = &uses[0].0;
            if let Some((other, path)) = uses.iter().find(|(l, _)| l != first) {
                let (_, path0) = uses.iter().find(|(l, _)| l == first).unwrap();
                clashes.push(format!(
                    "-{c}: --{first} in `{path0}`, --{other} in `{path}`"
                ));
            }
        }
        assert!(
            clashes.is_empty(),
            "short flags with two meanings:\n{}",
            clashes.join("\n")
        );
        // the vocabulary of docs/DESIGN.md, where these letters exist at all
        let want = [
            ('i', "interface"),
            ('n', "netns"),
            ('f', "filter"),
            ('e', "direction"),
            ('s', "snaplen"),
            ('N', "count"),
            ('c', "cluster-id"),
            ('J', "no-promisc"),
            ('w', "write"),
            ('r', "read"),
            ('v', "verbose"),
            ('q', "quiet"),
        ];
        for (c, long) in want {
            let uses = all.get(&c).unwrap_or_else(|| panic!("no command has -{c}"));
            assert_eq!(uses[0].0, long, "-{c}");
        }
        // --watch has no short letter, and send's -n (netns) is there
        let watch = all.values().flatten().find(|(l, _)| l == "watch");
        assert!(watch.is_none(), "--watch has a short flag");
        let send_n = &all[&'n'];
        assert!(send_n.iter().any(|(_, p)| p == "nsring send"), "send -n");
    }

    /// Every namespace and interface argument, in every command (also those added later),
    /// completes live values.
    #[test]
    fn every_namespace_and_interface_argument_completes_live_values() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let named = matches!(arg.get_long(), Some("netns" | "interface" | "peer-netns"))
                    || matches!(arg.get_value_names(), Some([v]) if v == "NS");
                if named && arg.get::<ArgValueCompleter>().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "nsring", &mut missing);
        assert!(
            missing.is_empty(),
            "no completer (add = crate::complete::netns() or interface()): {missing:?}"
        );
    }
}
