//! The view as text, the way PF_RING's `/proc/net/pf_ring` files show it: the namespace's
//! summary (`info`), one interface (`dev/<ifname>/info`), one socket (`<pid>-<ifname>.<id>`)
//! and an application's own figures (`stats/<pid>-<ifname>.<id>`). `nsring ls` prints these
//! blocks and `nsring mount` serves them as files, so both say the same thing.

use std::fmt::Write as _;

use nsring_netns::link::Link;

use crate::record::{self, SocketMode};
use crate::view::{Device, NamespaceView, NsId, SocketEntry};

/// `Key : Value` lines with the keys padded like PF_RING's /proc files.
pub fn kv(lines: &[(&str, String)]) -> String {
    let mut s = String::new();
    for (k, v) in lines {
        let _ = writeln!(s, "{k:<22} : {v}");
    }
    s
}

/// `Key:` lines padded to 19 columns, as PF_RING's `dev/<ifname>/info` (`Name:              eth1`).
pub fn colon_kv(lines: &[(&str, String)]) -> String {
    let mut s = String::new();
    for (k, v) in lines {
        let key = format!("{k}:");
        let _ = writeln!(s, "{key:<18} {v}");
    }
    s
}

/// An application's own figures as pfcount hands them to PF_RING
/// (`pfring_set_application_stats`): `Duration:` as days:hh:mm:ss:ms, `Packets:`, `Dropped:`,
/// `Bytes:`, at `now_unix_ns`. Transmit sockets add what they sent.
pub fn app_stats(s: &SocketEntry, now_unix_ns: u64) -> Option<String> {
    let r = s.record.as_ref()?;
    let c = &r.counters;
    let ms = now_unix_ns.saturating_sub(r.info.started_unix_ns) / 1_000_000;
    let mut t = format!(
        "Duration: {}\nPackets:  {}\nDropped:  {}\nBytes:    {}\n",
        dhmsm(ms),
        c.packets,
        c.drops,
        c.bytes
    );
    if r.info.mode != SocketMode::Rx {
        let _ = write!(t, "Sent:     {}\nErrors:   {}\n", c.sent, c.send_errors);
    }
    Some(t)
}

/// Milliseconds as PF_RING writes durations: `days:hh:mm:ss:mmm`.
pub fn dhmsm(ms: u64) -> String {
    format!(
        "{}:{:02}:{:02}:{:02}:{:03}",
        ms / 86_400_000,
        (ms / 3_600_000) % 24,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}
/// The namespace's summary, PF_RING's `/proc/net/pf_ring/info`: version, backend, the ring
/// defaults (`ring_defaults`, from the capture engine, which this crate does not know), and
/// how many rings (packet sockets) the namespace has.
pub fn summary(v: &NamespaceView, ring_defaults: &str) -> String {
    kv(&[
        ("Namespace", ns_text(&v.namespace)),
        ("Version", format!("nsring {}", env!("CARGO_PKG_VERSION"))),
        ("Backend", "tpacket_v3 (AF_PACKET, no kernel module)".into()),
        ("Ring defaults", ring_defaults.to_owned()),
        ("Total rings", v.sockets.len().to_string()),
        ("nsring sockets", v.ours().to_string()),
        (
            "Packet sockets",
            v.kernel_sockets
                .map_or("? (packet_diag unavailable)".into(), |n| n.to_string()),
        ),
        ("Interfaces", v.devices.len().to_string()),
    ])
}

/// `label (inode N, cookie C)`.
pub fn ns_text(ns: &NsId) -> String {
    let mut s = format!("{} (inode {}", ns.label, ns.inode);
    if let Some(c) = ns.cookie {
        let _ = write!(s, ", cookie {c}");
    }
    s.push(')');
    s
}

/// The driver kind, or a name for the link type when there is none.
pub fn kind_name(l: &Link) -> &str {
    match (&l.kind, l.link_type) {
        (Some(k), _) => k,
        (None, 772) => "loopback",
        (None, 1) => "ether",
        (None, _) => "other",
    }
}

/// PF_RING's name for an ARPHRD link type: `Ethernet`, `Loopback`, else the number.
fn link_type_name(t: u16) -> String {
    match t {
        1 => "Ethernet".into(),
        772 => "Loopback".into(),
        n => n.to_string(),
    }
}

/// `up`/`down`/the operational state.
pub fn state(l: &Link) -> &str {
    if l.admin_up { &l.oper_state } else { "down" }
}

/// One interface as PF_RING's `/proc/net/pf_ring/dev/<ifname>/info` shows it: `Key:` padded
/// to 19 columns, PF_RING's keys first (`Name:`, `Index:`, `Address:`, `Type:`,
/// `# Bound Sockets:`, `Max # TX Queues:`, `# Used RX Queues:`), then what the namespace adds.
pub fn device_info(d: &Device, ns: &NsId) -> String {
    let l = &d.link;
    let mut lines = vec![
        ("Name", l.name.clone()),
        ("Index", l.index.to_string()),
        ("Address", l.mac.clone().unwrap_or_else(|| "-".into())),
        ("Polling Mode", "NAPI".into()),
        ("Type", link_type_name(l.link_type)),
        ("Family", kind_name(l).to_owned()),
        ("# Bound Sockets", d.sockets.to_string()),
        ("Max # TX Queues", l.num_tx_queues.to_string()),
        ("# Used RX Queues", l.num_rx_queues.to_string()),
        ("State", state(l).to_owned()),
        ("MTU", l.mtu.to_string()),
        ("Promiscuity", l.promiscuity.to_string()),
        ("Namespace", ns_text(ns)),
    ];
    if let Some(p) = &l.peer {
        let name = p.name.clone().unwrap_or_else(|| format!("if#{}", p.index));
        let ns = p.netns.clone().unwrap_or_else(|| match p.netns_id {
            Some(id) => format!("netns id {id}"),
            None => "same namespace".into(),
        });
        lines.push(("Peer", format!("{name} in {ns}")));
    }
    if let Some(m) = l.master {
        lines.push(("Master", format!("if#{m}")));
    }
    if let Some(st) = &l.stats {
        // the kernel's interface counters, as `ip -s link` shows them
        lines.extend([
            (
                "RX",
                format!(
                    "{} packets, {} bytes, {} dropped, {} errors",
                    st.rx_packets, st.rx_bytes, st.rx_dropped, st.rx_errors
                ),
            ),
            (
                "TX",
                format!(
                    "{} packets, {} bytes, {} dropped, {} errors",
                    st.tx_packets, st.tx_bytes, st.tx_dropped, st.tx_errors
                ),
            ),
        ]);
    }
    colon_kv(&lines)
}

/// "12.3 s ago" from a Unix time in ns.
fn ago(unix_ns: u64) -> String {
    let now = record::unix_ns_now();
    if unix_ns == 0 {
        return "-".into();
    }
    let secs = now.saturating_sub(unix_ns) as f64 / 1e9;
    format!(
        "{}.{:03} ({secs:.1} s ago)",
        unix_ns / 1_000_000_000,
        (unix_ns / 1_000_000) % 1000
    )
}

/// The lines of an in-kernel counter's eBPF side (none for a socket).
fn counter_lines(r: &crate::RecordView) -> Vec<(&'static str, String)> {
    let Some(b) = r.info.bpf.as_ref() else {
        return Vec::new();
    };
    if r.info.kind != crate::record::RecordKind::KernelCounter {
        return Vec::new();
    }
    let ids = |v: &[u32]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    vec![
        ("Counted In", "the kernel: nothing copied, no drops".into()),
        ("Attached With", b.attach.clone()),
        ("Hooks", b.hooks.join(", ")),
        ("Program IDs", ids(&b.prog_ids)),
        ("Link IDs", ids(&b.link_ids)),
        ("Map ID", b.map_id.to_string()),
        ("eBPF Instructions", b.insns.to_string()),
    ]
}

/// One socket as a `Key : Value` block, in PF_RING's words where it has them (`Bound
/// Device(s)`, `Appl. Name`, `Tot Packets`, `Tot Pkt Lost`, `TX: Send Ok`). A socket nsring
/// did not open says `Foreign : yes` and who holds it.
pub fn socket_info(s: &SocketEntry, ns: &NsId) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    if let Some(r) = &s.record {
        let i = &r.info;
        let rx = i.mode != SocketMode::Tx;
        let tx = i.mode != SocketMode::Rx;
        lines.extend([
            ("Record", r.name.clone()),
            ("Bound Device(s)", s.ifname()),
            ("Active", "1".into()),
            ("Appl. Name", i.app_name.clone()),
            ("PID", r.header.pid.to_string()),
            ("Socket Mode", i.mode.to_string()),
        ]);
        if rx {
            lines.extend([
                ("Capture Direction", i.direction.clone()),
                ("Snaplen", i.snaplen.to_string()),
                (
                    "Promiscuous",
                    if i.promiscuous { "yes" } else { "no" }.into(),
                ),
                (
                    "BPF Filter",
                    i.filter.clone().unwrap_or_else(|| "none".into()),
                ),
                (
                    "Cluster",
                    i.cluster
                        .as_ref()
                        .map_or("none".into(), |c| format!("{} ({})", c.id, c.kind)),
                ),
            ]);
        }
        lines.push(("Backend", i.backend.clone()));
        lines.extend(counter_lines(r));
        if let Some(g) = i.ring {
            let timeout = if rx {
                format!(", block timeout {} ms", g.block_timeout_ms)
            } else {
                String::new()
            };
            lines.push((
                "Ring",
                format!(
                    "{} blocks x {} KiB, frame {}{timeout}",
                    g.block_count,
                    g.block_size >> 10,
                    g.frame_size,
                ),
            ));
            lines.push(("Tot Memory", g.memory_bytes.to_string()));
        }
        let c = &r.counters;
        lines.push(("Start Time", ago(i.started_unix_ns)));
        if rx {
            lines.extend([
                ("Tot Packets", c.packets.to_string()),
                ("Tot Bytes", c.bytes.to_string()),
                ("Tot Pkt Lost", c.drops.to_string()),
                ("Ring Freezes", c.freezes.to_string()),
                ("Kernel Packets", c.kernel_packets.to_string()),
                ("Blocks", c.blocks.to_string()),
            ]);
        }
        if tx {
            // PF_RING's wording for the transmit counters
            lines.extend([
                ("TX: Send Ok", c.sent.to_string()),
                ("TX: Send Errors", c.send_errors.to_string()),
            ]);
            if !rx {
                lines.push(("Tot Bytes", c.bytes.to_string()));
            }
        }
        lines.extend([
            ("Last Update", ago(c.updated_unix_ns)),
            ("Opened As", format!("{} (nsring {})", i.netns, i.version)),
        ]);
    }
    lines.push(("Socket Inode", s.inode.to_string()));
    if let Some(k) = &s.kernel {
        if s.record.is_none() {
            lines.push(("Bound Device(s)", s.ifname()));
            lines.push((
                "Foreign",
                format!("yes, not opened by nsring (owner {})", s.owner_text()),
            ));
        }
        lines.extend([
            ("Owner(s)", k.owners_text()),
            ("Type", format!("{} protocol {}", k.sock_type, k.protocol)),
            (
                "TPACKET",
                format!(
                    "{}{}",
                    k.version.map_or("none".into(), |v| v.to_string()),
                    if k.running { ", running" } else { "" }
                ),
            ),
            (
                "RX Ring (kernel)",
                k.rx_ring.map_or("none".into(), |r| {
                    format!(
                        "{} blocks x {} KiB ({} bytes)",
                        r.block_nr,
                        r.block_size >> 10,
                        r.bytes()
                    )
                }),
            ),
            (
                "TX Ring (kernel)",
                k.tx_ring.map_or("none".into(), |r| {
                    format!(
                        "{} blocks x {} KiB ({} bytes)",
                        r.block_nr,
                        r.block_size >> 10,
                        r.bytes()
                    )
                }),
            ),
            (
                "Fanout (kernel)",
                k.fanout
                    .map_or("none".into(), |f| format!("{} ({})", f.id, f.kind)),
            ),
            ("Filter (kernel)", k.filter.to_string()),
            ("UID", k.uid.map_or("?".into(), |u| u.to_string())),
        ]);
        if s.record.is_none() {
            // the kernel tells another process's drops only for a socket without a ring
            lines.push(("Tot Packets", "unknown (the kernel does not tell)".into()));
            lines.push((
                "Tot Pkt Lost",
                s.drops
                    .map_or("unknown (a ring's drops are not told)".into(), |d| {
                        d.to_string()
                    }),
            ));
        }
    }
    lines.push(("Namespace", ns_text(ns)));
    kv(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_blocks() {
        assert_eq!(
            kv(&[("Tot Packets", "5".into())]),
            "Tot Packets            : 5\n"
        );
        assert_eq!(
            colon_kv(&[("Name", "eth1".into()), ("# Bound Sockets", "2".into())]),
            "Name:              eth1\n# Bound Sockets:   2\n"
        );
    }

    #[test]
    fn durations_as_pfring_writes_them() {
        assert_eq!(dhmsm(0), "0:00:00:00:000");
        assert_eq!(dhmsm(90_061_001), "1:01:01:01:001");
    }
}
