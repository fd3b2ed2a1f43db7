//! Creates a veth pair with one end in a new namespace, brings both ends up, gives them
//! addresses from 198.18.0.0/15, lists both namespaces' interfaces, then removes it all.
//!
//! Run as root: `cargo run -p nsring-netns --example create_veth -- [NAME]`
//! (NAME defaults to `nsrt-ex<pid>`; the pair is `nsrt<pid in hex>xa` / `…xb`: lab names
//! carry their creator's PID, so `cargo xtask test` can tell a running example's from a
//! leftover.)
use nsring_netns::{NetNs, link};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ns_name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("nsrt-ex{}", std::process::id()));
    let here = NetNs::current()?;
    let there = nsring_netns::add(&ns_name)?;
    let (a, b) = (
        format!("nsrt{:x}xa", std::process::id()),
        format!("nsrt{:x}xb", std::process::id()),
    );
    let result = run(&here, &there, &ns_name, (&a, &b));
    // The veth end left here goes away with its peer's namespace; delete it anyway, then
    // the namespace, whatever happened above.
    let _ = link::del(&here, &a);
    nsring_netns::del(&ns_name)?;
    result
}

fn run(
    here: &NetNs,
    there: &NetNs,
    ns_name: &str,
    (a, b): (&str, &str),
) -> Result<(), Box<dyn std::error::Error>> {
    // One request creates both ends: `a` here, `b` in the new namespace.
    link::add_veth(here, a, b, Some(there))?;
    link::set_up(here, a, true)?;
    link::set_up(there, b, true)?;
    link::set_up(there, "lo", true)?;
    link::add_addr(here, a, "198.18.99.1".parse()?, 30)?;
    link::add_addr(there, b, "198.18.99.2".parse()?, 30)?;

    for (label, ns) in [("here", here), (ns_name, there)] {
        println!("{label}:");
        for l in link::list(ns)? {
            let peer = l.peer.map(|p| {
                format!(
                    " peer {}@{}",
                    p.name.unwrap_or_else(|| format!("if{}", p.index)),
                    p.netns.unwrap_or_else(|| "same netns".into())
                )
            });
            println!(
                "  {:>3} {:<15} {:<8} {} mtu {} {}{}",
                l.index,
                l.name,
                l.kind.as_deref().unwrap_or("-"),
                l.mac.as_deref().unwrap_or("-"),
                l.mtu,
                if l.admin_up { "up" } else { "down" },
                peer.unwrap_or_default()
            );
        }
    }
    Ok(())
}
