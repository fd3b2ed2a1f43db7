//! Creates a named namespace, runs a closure inside it, deletes it.
//! Run as root: `cargo run -p nsring-netns --example add_del -- nsrt-example`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("nsrt-ex{}", std::process::id()));
    let ns = nsring_netns::add(&name)?;
    let inside = ns.run(|| std::fs::read_link("/proc/thread-self/ns/net"))??;
    println!(
        "created {name} (inode {}), inside it: {}",
        ns.inode(),
        inside.display()
    );
    nsring_netns::del(&name)?;
    println!("deleted {name}");
    Ok(())
}
