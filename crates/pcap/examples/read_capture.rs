//! Read a pcap or pcapng file and print its interfaces and packets.
//!
//! `cargo run -p nsring-pcap --example read_capture -- FILE`

use std::fs::File;
use std::io::BufReader;

use nsring_pcap::CaptureReader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: read_capture FILE")?;
    let mut r = CaptureReader::open(BufReader::new(File::open(&path)?))?;
    println!("{path}: {:?}", r.format());
    let mut n = 0u64;
    while let Some(p) = r.next_packet()? {
        println!(
            "{}.{:09} if={} len={} caplen={} dir={:?}",
            p.ts_ns / 1_000_000_000,
            p.ts_ns % 1_000_000_000,
            p.interface,
            p.orig_len,
            p.data.len(),
            p.direction
        );
        n += 1;
    }
    for (i, info) in r.interfaces().iter().enumerate() {
        println!(
            "interface {i}: name={:?} description={:?} linktype={} snaplen={} stats={:?}",
            info.name, info.description, info.linktype.0, info.snaplen, info.stats
        );
    }
    println!("{n} packets");
    Ok(())
}
