//! Prints every AF_PACKET socket of a namespace, as the kernel reports it, with its owners.
//!
//! ```text
//! cargo run -p nsring-registry --example packet_sockets -- [NAMESPACE]   # NAME, path or pid:PID
//! ```
use std::process::ExitCode;

use nsring_netns::{NetNs, NsSpec};

fn main() -> ExitCode {
    let spec = match std::env::args().nth(1) {
        None => NsSpec::Current,
        Some(arg) => match arg.parse::<NsSpec>() {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("packet_sockets: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let ns = match NetNs::open(&spec) {
        Ok(ns) => ns,
        Err(e) => return fail(&e),
    };
    let sockets = match nsring_registry::packet_sockets(&ns) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    println!("{} packet socket(s) in {spec}", sockets.len());
    println!(
        "{:>10} {:<5} {:<6} {:<12} {:<4} {:<24} {:<16} {:<8} {:>5}  OWNERS",
        "INODE", "TYPE", "PROTO", "IFACE", "VER", "RX RING", "FANOUT", "FILTER", "UID"
    );
    for s in &sockets {
        let iface = match (s.ifindex, &s.ifname) {
            (0, _) => "any".to_owned(),
            (_, Some(name)) => format!("{name}({})", s.ifindex),
            (i, None) => format!("#{i}"),
        };
        let ring = s.rx_ring.map_or("-".to_owned(), |r| {
            format!(
                "{}x{}KiB={}MiB",
                r.block_nr,
                r.block_size / 1024,
                r.bytes() / (1024 * 1024)
            )
        });
        let fanout = s
            .fanout
            .map_or("-".to_owned(), |f| format!("{}:{}", f.id, f.kind));
        println!(
            "{:>10} {:<5} {:<6} {:<12} {:<4} {:<24} {:<16} {:<8} {:>5}  {}",
            s.inode,
            s.sock_type.to_string(),
            s.protocol.to_string(),
            iface,
            s.version.map_or("-".to_owned(), |v| v.to_string()),
            ring,
            fanout,
            s.filter.to_string(),
            s.uid.map_or("-".to_owned(), |u| u.to_string()),
            s.owners_text()
        );
    }
    ExitCode::SUCCESS
}

/// Prints an error with its sources on one line.
fn fail(e: &dyn std::error::Error) -> ExitCode {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    eprintln!("packet_sockets: error: {msg}");
    ExitCode::FAILURE
}
