//! `nsring extcap`: nsring as a Wireshark/tshark extcap provider. Wireshark runs the
//! executable it finds in its extcap folder with `--extcap-*` arguments (no subcommand:
//! `main` recognises them and comes here), reads the interface list, the link types and
//! the options of the capture dialog from standard output, and for a capture gives a FIFO
//! that nsring fills with pcapng, from the same engine as `nsring dump`.
//!
//! The protocol is Wireshark's `doc/extcap.4` (sentences `extcap`, `interface`, `dlt`,
//! `arg`, `value`); anything on standard error is shown to the user as an error, so a
//! capture keeps it quiet unless it fails.

use std::ffi::OsStr;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use nsring_capture::Direction;
use nsring_netns::NetNs;

use crate::cmd::count::parse_direction;
use crate::out::Out;
use crate::target::Target;

mod capture;

/// The hardware types a capture file can describe (as `nsring dump` writes them), with the
/// link type Wireshark is told: `(ARPHRD, DLT, name, description)`.
const LINK_TYPES: [(u16, u32, &str, &str); 3] = [
    (1, 1, "EN10MB", "Ethernet"),
    (772, 1, "EN10MB", "Ethernet (loopback)"),
    (65534, 12, "RAW", "Raw IP"),
];

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Wireshark and tshark run nsring this way themselves: make it visible to them, then pick an
'nsring: NS/IFACE' interface. As root (capturing in another namespace needs CAP_SYS_ADMIN
and CAP_NET_RAW):
  ln -s \"$(command -v nsring)\" /usr/lib/x86_64-linux-gnu/wireshark/extcap/nsring
  tshark -D                                  # ... 12. ns0/eth1 (nsring: ns0/eth1)
  tshark -i ns0/eth1 -f 'udp port 53' -w dns.pcapng
(`tshark -G folders` prints the extcap folder; Wireshark 4.2 and later also read
~/.local/lib/wireshark/extcap.) `cargo xtask install` and the Debian package make the link.

The list has every interface of every namespace on the host except those of nsring's own
namespace (Wireshark lists those itself): named namespaces, containers' namespaces (as
pid:PID or the runtime's nsfs path), each interface as NS/IFACE, the spelling -i takes
everywhere in nsring. The capture dialog offers a capture filter (tcpdump syntax, joined
with 'and' to Wireshark's own capture filter), the snapshot length, the direction and
promiscuous mode. Packets come from a TPACKET_V3 ring of the namespace, as with 'nsring
dump', and are written to Wireshark's FIFO as pcapng. nsring stops cleanly, its socket and
record gone, when Wireshark stops the capture (SIGTERM), on Ctrl-C, or when the FIFO's
reader goes away.

By hand:
  nsring --extcap-interfaces
  nsring --extcap-config --extcap-interface ns0/eth1
  nsring --capture --extcap-interface ns0/eth1 --fifo /tmp/f --extcap-capture-filter icmp")]
pub struct Args {
    /// Print the interfaces, one 'interface' sentence each, after the 'extcap' sentence.
    #[arg(long)]
    pub extcap_interfaces: bool,
    /// The Wireshark version asking (accepted, not needed).
    #[arg(long, value_name = "VERSION")]
    pub extcap_version: Option<String>,
    /// The interface, as NS/IFACE, for --extcap-dlts, --extcap-config and --capture.
    #[arg(long, value_name = "NS/IFACE")]
    pub extcap_interface: Option<String>,
    /// Print the interface's link type ('dlt' sentence).
    #[arg(long, requires = "extcap_interface")]
    pub extcap_dlts: bool,
    /// Print the options of the capture dialog ('arg' and 'value' sentences).
    #[arg(long)]
    pub extcap_config: bool,
    /// Capture to --fifo until stopped.
    #[arg(long, requires_all = ["extcap_interface", "fifo"])]
    pub capture: bool,
    /// The FIFO Wireshark reads (pcapng is written to it).
    #[arg(long, value_name = "PATH")]
    pub fifo: Option<PathBuf>,
    /// Wireshark's capture filter (tcpdump syntax). Without --capture: checked, and an
    /// error printed on standard output if it is wrong (Wireshark colours the field).
    #[arg(long, value_name = "EXPR")]
    pub extcap_capture_filter: Option<String>,
    /// Control pipes (nsring has no toolbar controls; accepted and unused).
    #[arg(long, value_name = "PATH", hide = true)]
    pub extcap_control_in: Option<PathBuf>,
    #[arg(long, value_name = "PATH", hide = true)]
    pub extcap_control_out: Option<PathBuf>,
    /// Wireshark's debugging switches (accepted and unused).
    #[arg(long, hide = true)]
    pub debug: bool,
    #[arg(long, value_name = "PATH", hide = true)]
    pub debug_file: Option<PathBuf>,
    /// Dialog: a capture filter in tcpdump syntax, joined with 'and' to Wireshark's.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Dialog: bytes of each packet to keep.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1..=262144))]
    pub snaplen: Option<u32>,
    /// Dialog: in, out or both.
    #[arg(long, value_name = "DIR", value_parser = parse_direction)]
    pub direction: Option<Direction>,
    /// Dialog: do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
}

/// Whether `arg`, the first argument of the program, is one Wireshark starts an extcap
/// with: then `main` runs `nsring extcap` with all the arguments.
pub fn starts_extcap(arg: &OsStr) -> bool {
    let a = arg.to_string_lossy();
    a.starts_with("--extcap-") || a == "--capture" || a == "--fifo" || a == "--debug"
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.extcap_interfaces {
        interfaces(&mut Out::new())?;
    } else if args.extcap_dlts {
        dlts(&mut Out::new(), &interface(&args)?)?;
    } else if args.extcap_config {
        config(&mut Out::new())?;
    } else if args.capture {
        return capture::run(&args);
    } else if let Some(f) = &args.extcap_capture_filter {
        interface(&args)?;
        check_filter(&mut Out::new(), f)?;
    } else {
        return Err(crate::usage(
            "nsring extcap answers Wireshark: give --extcap-interfaces, --extcap-dlts, --extcap-config or --capture (see nsring extcap --help)",
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--extcap-interface`, parsed: an interface of a namespace.
fn interface(args: &Args) -> anyhow::Result<Target> {
    let text = args
        .extcap_interface
        .as_deref()
        .ok_or_else(|| crate::usage("--extcap-interface NS/IFACE is missing"))?;
    let t = Target::parse(text, None)?;
    if t.iface.is_none() {
        return Err(crate::usage(format!(
            "'{text}': name one interface (NS/IFACE), not 'any'"
        )));
    }
    Ok(t)
}

/// A value fit for an extcap sentence: `{` and `}` end a field, and a line ends the
/// sentence, so names holding them are left out of the list.
fn sentence_safe(s: &str) -> bool {
    !s.contains(['{', '}', '\n', '\r'])
}

fn interfaces(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "extcap {{version={}}}{{help=man:nsring-extcap(1)}}",
        env!("CARGO_PKG_VERSION")
    )?;
    // container names make better values (podman:web1/eth0); Wireshark asks once
    let mut namespaces = nsring_registry::host::namespaces()?;
    nsring_registry::host::name_containers(&mut namespaces);
    for t in nsring_registry::host::capture_targets(&namespaces) {
        let value = t.target();
        if !LINK_TYPES.iter().any(|l| l.0 == t.link_type) || !sentence_safe(&value) {
            continue;
        }
        writeln!(
            out,
            "interface {{value={value}}}{{display=nsring: {value}}}"
        )?;
    }
    out.flush()?;
    Ok(())
}

fn dlts(out: &mut impl Write, t: &Target) -> anyhow::Result<()> {
    let ns = NetNs::open(&t.ns)?;
    let link = nsring_netns::link::get(&ns, t.iface_name())?;
    let Some(&(_, dlt, name, display)) = LINK_TYPES.iter().find(|l| l.0 == link.link_type) else {
        anyhow::bail!(
            "{t} has hardware type {}, which nsring cannot describe in a capture file",
            link.link_type
        );
    };
    writeln!(
        out,
        "dlt {{number={dlt}}}{{name={name}}}{{display={display}}}"
    )?;
    out.flush()?;
    Ok(())
}

/// The capture dialog: what `Args`' dialog options take, with nsring dump's defaults.
fn config(out: &mut impl Write) -> anyhow::Result<()> {
    let lines = [
        "arg {number=0}{call=--filter}{display=Capture filter}{type=string}\
         {tooltip=tcpdump syntax; joined with 'and' to the capture filter Wireshark gives}\
         {group=Capture}",
        "arg {number=1}{call=--snaplen}{display=Snapshot length}{type=unsigned}\
         {range=1,262144}{default=262144}{tooltip=Bytes of each packet to keep}\
         {group=Capture}",
        "arg {number=2}{call=--direction}{display=Direction}{type=selector}\
         {tooltip=Packets received, sent, or both}{group=Capture}",
        "value {arg=2}{value=both}{display=Both}{default=true}",
        "value {arg=2}{value=in}{display=Received (in)}{default=false}",
        "value {arg=2}{value=out}{display=Sent (out)}{default=false}",
        "arg {number=3}{call=--no-promisc}{display=No promiscuous mode}{type=boolflag}\
         {default=false}{tooltip=Do not put the interface in promiscuous mode}\
         {group=Capture}",
    ];
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    Ok(())
}

/// Wireshark's check of a capture filter: nothing on standard output if it compiles, its
/// error (one line) if not.
fn check_filter(out: &mut impl Write, filter: &str) -> anyhow::Result<()> {
    if let Err(e) = nsring_capture::filter::check(filter) {
        let line = e.to_string().replace(['\n', '\r'], " ");
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// The capture filter: Wireshark's and the dialog's, joined with `and`.
fn joined_filter(args: &Args) -> Option<String> {
    let given: Vec<&str> = [
        args.extcap_capture_filter.as_deref(),
        args.filter.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|f| !f.is_empty())
    .collect();
    match given.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        many => Some(
            many.iter()
                .map(|f| format!("({f})"))
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    }
}

#[cfg(test)]
mod tests;
