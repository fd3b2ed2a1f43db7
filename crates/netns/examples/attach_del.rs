//! Names the namespace of a process (like `ip netns attach`), then deletes the name and
//! prints who still holds the namespace and what happens to its interfaces.
//! Run as root: `unshare --net sleep 60 & sleep 1; cargo run -p nsring-netns --example attach_del -- $!`
//! (the pause lets `unshare` enter its new namespace before it is named).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pid: u32 = std::env::args()
        .nth(1)
        .ok_or("usage: attach_del PID")?
        .parse()?;
    let name = format!("nsrt-ex{}", std::process::id());
    let ns = nsring_netns::attach(&name, &nsring_netns::NsSpec::Pid(pid))?;
    println!("attached {name} (inode {})", ns.inode());
    println!("identify {pid}: {:?}", nsring_netns::identify(pid)?);
    drop(ns);
    let report = nsring_netns::del(&name)?;
    println!("deleted {name}; still held by {:?}", report.holders);
    for l in &report.links {
        println!("  {} ({:?}): {:?}", l.name, l.kind, l.fate);
    }
    Ok(())
}
