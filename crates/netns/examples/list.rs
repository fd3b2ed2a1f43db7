//! Lists named namespaces like `ip netns list`, then every namespace a process holds.
//! Run: `cargo run -p nsring-netns --example list`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    for n in nsring_netns::list()? {
        match n.id {
            Some(id) => println!("{} (id: {id})", n.name),
            None => println!("{}", n.name),
        }
    }
    println!("--- all network namespaces:");
    for info in nsring_netns::list_all()? {
        let pids: Vec<String> = info
            .holders
            .iter()
            .take(5)
            .map(|h| format!("{} ({})", h.pid, h.comm))
            .collect();
        println!(
            "{} names={:?} initial={} processes: {}",
            info.inode,
            info.names,
            info.initial,
            pids.join(", ")
        );
    }
    Ok(())
}
