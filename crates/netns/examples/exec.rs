//! Runs a command inside a named namespace like `ip netns exec`, and exits with its status.
//! Run as root: `cargo run -p nsring-netns --example exec -- NS CMD [ARGS...]`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((ns, argv)) = args.split_first().filter(|(_, a)| !a.is_empty()) else {
        return Err("usage: exec NS CMD [ARGS...]".into());
    };
    let status = nsring_netns::exec(&ns.parse()?, argv)?;
    std::process::exit(status.code());
}
