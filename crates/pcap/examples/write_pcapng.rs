//! Write a small pcapng file: one interface per (namespace, interface), packets with
//! direction flags, statistics at the end.
//!
//! `cargo run -p nsring-pcap --example write_pcapng -- /tmp/demo.pcapng` then
//! `tshark -r /tmp/demo.pcapng -T fields -e frame.len -e frame.interface_description`.

use std::fs::File;
use std::io::BufWriter;

use nsring_pcap::{Direction, InterfaceDesc, InterfaceStats, LinkType, PcapngWriter, SectionDesc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: write_pcapng FILE")?;
    let out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    let mut w = PcapngWriter::new(out, &SectionDesc::default())?;
    let veth0 = w.add_interface(&InterfaceDesc {
        name: "veth0".into(),
        description: Some("netns ns0 (inode 4026532177)".into()),
        linktype: LinkType::ETHERNET,
        snaplen: 262_144,
        tsresol_nanos: true,
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    for i in 0..3u64 {
        let frame = [0u8; 60];
        let dir = if i % 2 == 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        w.write_packet(veth0, now + i * 1000, 60, &frame, Some(dir))?;
    }
    w.write_interface_stats(
        veth0,
        &InterfaceStats {
            ifrecv: Some(3),
            ifdrop: Some(0),
            ..Default::default()
        },
    )?;
    w.finish()?;
    println!("wrote 3 packets to {path}");
    Ok(())
}
