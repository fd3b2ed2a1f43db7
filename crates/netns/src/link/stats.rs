//! An interface's traffic counters, as the kernel keeps them (`IFLA_STATS64`).

use netlink_packet_route::link::Stats64;
use serde::Serialize;

/// The counters `ip -s link` shows, since the interface was created. Drops and errors are
/// the driver's and the stack's (a full socket buffer is the socket's own drop, not
/// counted here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Received packets dropped (no buffer, a full queue, ...).
    pub rx_dropped: u64,
    /// Packets to send dropped.
    pub tx_dropped: u64,
    /// Bad packets received.
    pub rx_errors: u64,
    /// Packets that could not be sent.
    pub tx_errors: u64,
    /// Multicast packets received.
    pub multicast: u64,
}

impl From<&Stats64> for LinkStats {
    fn from(s: &Stats64) -> LinkStats {
        LinkStats {
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            rx_dropped: s.rx_dropped,
            tx_dropped: s.tx_dropped,
            rx_errors: s.rx_errors,
            tx_errors: s.tx_errors,
            multicast: s.multicast,
        }
    }
}
