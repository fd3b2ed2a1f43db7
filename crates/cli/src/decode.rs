//! Printing packets (`count -v 1|2`): one line of decoded headers, optionally a hex dump.

use std::io::{self, Write};

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use nsring_capture::{Dir, Frame};

/// Prints frames; keeps one scratch buffer for frames whose VLAN tag must be put back.
pub struct Printer {
    level: u8,
    label: String,
    scratch: Vec<u8>,
}

impl Printer {
    pub fn new(level: u8, label: &str) -> Printer {
        Printer {
            level,
            label: label.to_owned(),
            scratch: Vec::with_capacity(2048),
        }
    }

    pub fn print(&mut self, out: &mut impl Write, frame: &Frame<'_>) -> io::Result<()> {
        let bytes: &[u8] = if frame.vlan().is_some() {
            frame.copy_with_vlan(&mut self.scratch);
            &self.scratch
        } else {
            frame.data()
        };
        let dir = match frame.direction() {
            Dir::Out => "out",
            _ => "in",
        };
        writeln!(
            out,
            "{} {} {dir:<3} if{} {} len {} cap {}",
            clock(frame.timestamp_ns()),
            self.label,
            frame.ifindex(),
            describe(bytes),
            frame.wire_len(),
            frame.cap_len()
        )?;
        if self.level >= 2 {
            hexdump(out, bytes)?;
        }
        Ok(())
    }
}

/// `HH:MM:SS.nnnnnnnnn` (UTC) from nanoseconds since the epoch.
pub fn clock(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        ns % 1_000_000_000
    )
}

/// A one-line summary of an Ethernet frame: MACs, VLAN, network and transport headers.
pub fn describe(bytes: &[u8]) -> String {
    let Ok(p) = SlicedPacket::from_ethernet(bytes) else {
        return format!("[{} bytes, not Ethernet]", bytes.len());
    };
    let mut s = String::new();
    if let Some(LinkSlice::Ethernet2(eth)) = &p.link {
        s += &format!("{} > {}", mac(eth.source()), mac(eth.destination()));
    }
    if let Some(vlan) = &p.vlan() {
        let id = match vlan {
            etherparse::VlanSlice::SingleVlan(v) => v.vlan_identifier().value(),
            etherparse::VlanSlice::DoubleVlan(v) => v.outer.vlan_identifier().value(),
        };
        s += &format!(" vlan {id}");
    }
    let (src, dst) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        _ => {
            if let Some(LinkSlice::Ethernet2(eth)) = &p.link {
                let et = eth.ether_type();
                let name = match et.0 {
                    0x0806 => "ARP".to_string(),
                    0x88cc => "LLDP".to_string(),
                    n => format!("ethertype 0x{n:04x}"),
                };
                s += &format!(" {name}");
            }
            return s;
        }
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            s += &format!(
                " UDP {src}:{} > {dst}:{}",
                u.source_port(),
                u.destination_port()
            )
        }
        Some(TransportSlice::Tcp(t)) => {
            s += &format!(
                " TCP {src}:{} > {dst}:{}{}{}{}",
                t.source_port(),
                t.destination_port(),
                if t.syn() { " SYN" } else { "" },
                if t.fin() { " FIN" } else { "" },
                if t.rst() { " RST" } else { "" }
            )
        }
        Some(TransportSlice::Icmpv4(i)) => {
            s += &format!(" ICMP {src} > {dst} type {}", i.type_u8())
        }
        Some(TransportSlice::Icmpv6(i)) => {
            s += &format!(" ICMPv6 {src} > {dst} type {}", i.type_u8())
        }
        _ => s += &format!(" IP {src} > {dst}"),
    }
    s
}

fn mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// 16 bytes a line: offset, hex, ASCII.
pub fn hexdump(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        writeln!(out, "  {:04x}  {:<47}  {ascii}", i * 16, hex.join(" "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_udp_and_arp() {
        let udp = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
            .udp(1000, 9);
        let mut buf = Vec::new();
        udp.write(&mut buf, b"hello").unwrap();
        assert_eq!(
            describe(&buf),
            "02:00:00:00:00:01 > 02:00:00:00:00:02 UDP 198.18.0.1:1000 > 198.18.0.2:9"
        );
        let mut arp = vec![0xff; 6];
        arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend([0u8; 28]);
        assert!(describe(&arp).ends_with(" ARP"), "{}", describe(&arp));
    }

    #[test]
    fn clock_and_hexdump() {
        assert_eq!(clock(3_723_000_000_042), "01:02:03.000000042");
        let mut out = Vec::new();
        hexdump(&mut out, b"ABCDEFGHIJKLMNOPQ").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with("  0000  41 42"));
        assert!(text.contains("ABCDEFGHIJKLMNOP"));
    }
}
