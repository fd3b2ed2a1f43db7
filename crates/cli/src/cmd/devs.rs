//! `nsring devs`: the interfaces a capture can bind in a namespace (pfcount's `-L`).

use std::io::Write;
use std::process::ExitCode;

use nsring_netns::{NetNs, NsSpec};

use crate::out::{Out, json_line};

const AFTER_HELP: &str = "Examples:\n  nsring devs\n  nsring devs --netns ns0 --json";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP,
    after_long_help = crate::long_help(AFTER_HELP))]
pub struct Args {
    /// The namespace to list (NAME, pid:PID, a path or a container such as podman:web1); default: the current one.
    #[arg(long, short = 'n', value_name = "NS", add = crate::complete::netns())]
    pub netns: Option<NsSpec>,
    /// Accepted for pfcount compatibility (`pfcount -L`): listing is what this command does.
    #[arg(short = 'L', hide = true)]
    pub list: bool,
    /// One JSON object per interface.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ns = NetNs::open(args.netns.as_ref().unwrap_or(&NsSpec::Current))?;
    let links = nsring_netns::link::list(&ns)?;
    let mut out = Out::new();
    if args.json {
        for l in &links {
            json_line(&mut out, l)?;
        }
    } else {
        writeln!(
            out,
            "{:<16} {:>6}  {:<17}  {:<9} {:<6} {:>5}  {:>7}",
            "NAME", "INDEX", "MAC", "TYPE", "STATE", "MTU", "RX/TX Q"
        )?;
        // `any` binds every interface of the namespace.
        writeln!(
            out,
            "{:<16} {:>6}  {:<17}  {:<9} {:<6} {:>5}  {:>7}",
            "any", 0, "-", "all", "-", "-", "-"
        )?;
        for l in &links {
            writeln!(
                out,
                "{:<16} {:>6}  {:<17}  {:<9} {:<6} {:>5}  {:>7}",
                l.name,
                l.index,
                l.mac.as_deref().unwrap_or("-"),
                nsring_registry::text::kind_name(l),
                if l.admin_up { &l.oper_state } else { "down" },
                l.mtu,
                format!("{}/{}", l.num_rx_queues, l.num_tx_queues),
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
