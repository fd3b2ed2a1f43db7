//! `nsring exporter`: every namespace's interface counters and packet sockets as
//! Prometheus/OpenMetrics metrics over HTTP (the `nsring-exporter` crate does the work).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use nsring_exporter::{Select, Server, metrics};
use nsring_netns::NsPart;
use nsring_registry::RunDir;

use crate::out::Out;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  nsring exporter                          every namespace, on http://127.0.0.1:19911/metrics
  nsring exporter -n 'web-*' -n ns0        only these namespaces
  nsring exporter --once | grep eth1       one scrape on standard output

A scrape reads, for every chosen namespace: each interface's kernel counters
(nsring_interface_{receive,transmit}_{packets,bytes,drops,errors}_total, nsring_interface_up)
and each packet socket, nsring's and other programs' (nsring_socket_info with kind and app;
nsring_socket_receive_{packets,bytes,drops}_total and nsring_socket_transmit_* where known).
Labels: netns (never 'namespace', which Kubernetes scrapes rewrite), interface, owner
(APP[PID] or COMM[PID]), socket (its inode). The kernel tells no packet count for another
program's socket and no drops for one with a ring (tcpdump's): such a series is absent, never
0. nsring_exporter_scrape_duration_seconds says what a scrape costs.

Listens on loopback unless --listen says otherwise; port 0 picks a free one. The port is
outside 9100-9999, the range the Prometheus project hands out to exporters, which is full.
Ctrl-C or SIGTERM stops it.")]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = nsring_exporter::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Only this namespace: NAME, pid:PID, a path, or a pattern over names ('web-*');
    /// repeat for several. Default: every namespace of the host.
    #[arg(short = 'n', long, value_name = "NS", add = crate::complete::netns())]
    pub netns: Vec<NsPart>,
    /// Print one scrape on standard output and exit, without listening.
    #[arg(long)]
    pub once: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let select = Select::new(args.netns);
    let run = RunDir::new();
    if args.once {
        let text = metrics::render(metrics::collect(&select, &run)?);
        let mut out = Out::new();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let server = Server::bind(args.listen, select.clone(), run)?;
    let stopper = server.stopper();
    ctrlc::set_handler(move || stopper.stop()).context("cannot install the Ctrl-C handler")?;
    eprintln!(
        "nsring exporter: serving http://{}/metrics for {select}",
        server.local_addr()
    );
    server.serve()?;
    Ok(ExitCode::SUCCESS)
}
