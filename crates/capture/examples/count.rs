//! Counts packets on an interface of a namespace, like a minimal pfcount.
//!
//! ```text
//! cargo run -p nsring-capture --example count -- NETNS IFACE [SECONDS] [FILTER]
//! ```
//! Only headers are touched: the kernel copies at most 64 bytes per packet into the
//! ring, and the loop reads the ring's frame headers in place.

use std::time::{Duration, Instant};

use nsring_capture::{Capture, CaptureConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ns, iface) = match (args.first(), args.get(1)) {
        (Some(ns), Some(i)) => (ns.as_str(), i.as_str()),
        _ => return Err("usage: count NETNS IFACE [SECONDS] [FILTER]".into()),
    };
    let secs: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let ns = nsring_netns::NetNs::open_str(ns)?;
    let mut cfg = CaptureConfig::new(iface)
        .snaplen(64)
        .app_name("count-example");
    if let Some(f) = args.get(3) {
        cfg = cfg.filter(f.clone());
    }
    let mut cap = Capture::open(&ns, &cfg)?;
    let waker = cap.waker();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        let _ = waker.wake();
    });
    let start = Instant::now();
    let (mut pkts, mut bytes) = (0u64, 0u64);
    while !cap.finished() {
        if let Some(block) = cap.next_block(None)? {
            for frame in &block {
                pkts += 1;
                bytes += u64::from(frame.wire_len());
            }
        }
    }
    let st = cap.stats()?;
    let t = start.elapsed().as_secs_f64();
    println!(
        "{pkts} packets, {bytes} bytes in {t:.2} s ({:.0} pps); kernel: {} passed the filter, {} dropped, {} ring freezes",
        pkts as f64 / t,
        st.packets,
        st.drops,
        st.freezes
    );
    Ok(())
}
