//! What a capture asks of the kernel: [`CaptureConfig`] and its parts.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::sys;

/// tcpdump's default snapshot length: whole packets.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Which packets of an interface to capture, by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received packets only. Uses PACKET_IGNORE_OUTGOING, so the kernel does not even
    /// clone the interface's transmitted packets for this socket.
    In,
    /// Transmitted packets only (a BPF test on the packet type, in the kernel).
    Out,
    /// Both (the default).
    #[default]
    Both,
}

impl FromStr for Direction {
    type Err = Error;
    /// `in`/`rx`, `out`/`tx`, `both`/`rxtx`/`inout`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "in" | "rx" => Ok(Direction::In),
            "out" | "tx" => Ok(Direction::Out),
            "both" | "rxtx" | "inout" => Ok(Direction::Both),
            _ => Err(Error::Config(format!(
                "direction '{s}' is not one of in (rx), out (tx), both"
            ))),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Both => "both",
        })
    }
}

/// How a fanout group (a PF_RING "cluster") spreads packets over its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FanoutMode {
    /// By flow hash (PACKET_FANOUT_HASH, with PACKET_FANOUT_FLAG_DEFRAG so the fragments
    /// of one datagram stay together).
    Hash,
    /// Round robin (PACKET_FANOUT_LB).
    RoundRobin,
    /// By the CPU the packet arrived on (PACKET_FANOUT_CPU).
    Cpu,
    /// Fill one socket, spill to the next when it is full (PACKET_FANOUT_ROLLOVER).
    Rollover,
    /// Random (PACKET_FANOUT_RND).
    Random,
    /// By the receive queue recorded in the packet (PACKET_FANOUT_QM).
    Queue,
}

impl FanoutMode {
    pub(crate) fn kernel_type(self) -> u16 {
        match self {
            FanoutMode::Hash => sys::PACKET_FANOUT_HASH | sys::PACKET_FANOUT_FLAG_DEFRAG,
            FanoutMode::RoundRobin => sys::PACKET_FANOUT_LB,
            FanoutMode::Cpu => sys::PACKET_FANOUT_CPU,
            FanoutMode::Rollover => sys::PACKET_FANOUT_ROLLOVER,
            FanoutMode::Random => sys::PACKET_FANOUT_RND,
            FanoutMode::Queue => sys::PACKET_FANOUT_QM,
        }
    }
}

impl FromStr for FanoutMode {
    type Err = Error;
    /// PF_RING's cluster type names and the kernel's: `flow`/`hash`, `rr`/`lb`/
    /// `round-robin`, `cpu`, `rollover`, `random`/`rnd`, `queue`/`qm`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "flow" | "hash" => FanoutMode::Hash,
            "rr" | "lb" | "round-robin" => FanoutMode::RoundRobin,
            "cpu" => FanoutMode::Cpu,
            "rollover" => FanoutMode::Rollover,
            "random" | "rnd" => FanoutMode::Random,
            "queue" | "qm" => FanoutMode::Queue,
            _ => {
                return Err(Error::Config(format!(
                    "cluster type '{s}' is not one of flow, rr, cpu, rollover, random, queue"
                )));
            }
        })
    }
}

impl fmt::Display for FanoutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FanoutMode::Hash => "flow",
            FanoutMode::RoundRobin => "rr",
            FanoutMode::Cpu => "cpu",
            FanoutMode::Rollover => "rollover",
            FanoutMode::Random => "random",
            FanoutMode::Queue => "queue",
        })
    }
}

/// Membership in a fanout group. Groups are per namespace; every member must bind the
/// same interface with the same mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Fanout {
    /// The group id (PF_RING's cluster id).
    pub group: u16,
    /// How the group spreads packets over its members.
    pub mode: FanoutMode,
}

/// The shape of the TPACKET_V3 ring.
///
/// Defaults: 16 blocks of 1 MiB (16 MiB), 100 ms block timeout. Blocks of a MiB mean few
/// block hand-overs (one wake-up of the reader per block) and room for bursts: at
/// 1 Mpps of 128-byte captures (count's snaplen) a block holds ~5 ms of traffic, of full
/// 1514-byte frames ~0.7 ms, and the 16 blocks give the reader that much slack times 16.
/// Larger blocks cost more than they give: the kernel allocates each block as one
/// high-order page run, and 8 blocks of 4 MiB took ~100 ms of system time to set up and
/// tear down here (measured with `nsring count --block-kib 4096 --blocks 8`), against
/// ~40 ms for 16 x 1 MiB. The timeout bounds latency at low rates: a block that is not
/// full is handed over after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RingGeometry {
    /// Bytes per block: a power of two, at least one page.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// The nominal frame size the kernel checks the request against (TPACKET_V3 packs
    /// frames of any size into blocks; this only has to be a multiple of 16, at least
    /// 80, at most the block size).
    pub frame_size: u32,
    /// Milliseconds after which the kernel hands over a block that is not full
    /// (`tp_retire_blk_tov`; 0 lets the kernel choose from the link speed).
    pub block_timeout_ms: u32,
}

impl Default for RingGeometry {
    fn default() -> Self {
        RingGeometry {
            block_size: 1 << 20,
            block_count: 16,
            frame_size: 2048,
            block_timeout_ms: 100,
        }
    }
}

impl RingGeometry {
    /// The ring's total size in bytes.
    pub fn total_bytes(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_count)
    }

    /// Checks what net/packet/af_packet.c `packet_set_ring` would refuse with EINVAL, so
    /// the user gets a message instead of "Invalid argument".
    pub fn validate(&self) -> Result<()> {
        let page = 4096u32;
        let bad = |m: String| Err(Error::Config(m));
        if self.block_size < page || !self.block_size.is_power_of_two() {
            return bad(format!(
                "ring block size {} is not a power of two of at least 4096 bytes",
                self.block_size
            ));
        }
        if self.block_count == 0 {
            return bad("ring block count is 0".into());
        }
        if self.block_count > u32::MAX / self.block_size {
            return bad(format!(
                "ring of {} blocks of {} bytes is larger than 4 GiB",
                self.block_count, self.block_size
            ));
        }
        if self.frame_size < 80
            || !self.frame_size.is_multiple_of(16)
            || self.frame_size > self.block_size
        {
            return bad(format!(
                "ring frame size {} is not a multiple of 16 between 80 and the block size",
                self.frame_size
            ));
        }
        Ok(())
    }

    pub(crate) fn request(&self) -> sys::TpacketReq3 {
        sys::TpacketReq3 {
            tp_block_size: self.block_size,
            tp_block_nr: self.block_count,
            tp_frame_size: self.frame_size,
            tp_frame_nr: (self.block_size / self.frame_size) * self.block_count,
            tp_retire_blk_tov: self.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        }
    }
}

/// Everything [`crate::Capture::open`] needs besides the namespace.
///
/// Count the DNS packets of an interface for ten seconds, with the filter running in the
/// kernel and only the first 128 bytes of each packet copied:
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use nsring_capture::{Capture, CaptureConfig, Direction};
/// use nsring_netns::NetNs;
///
/// let cfg = CaptureConfig::new("eth1")
///     .filter("udp port 53")
///     .snaplen(128)
///     .direction(Direction::In)
///     .app_name("dns-counter");
/// let mut cap = Capture::open(&NetNs::open_str("ns0")?, &cfg)?;
/// let (mut packets, mut bytes) = (0u64, 0u64);
/// let end = Instant::now() + Duration::from_secs(10);
/// while Instant::now() < end {
///     if let Some(block) = cap.next_block(Some(Duration::from_millis(100)))? {
///         packets += block.len() as u64;
///         bytes += block.into_iter().map(|f| u64::from(f.wire_len())).sum::<u64>();
///     }
/// }
/// let kernel = cap.stats()?;
/// println!("{packets} packets, {bytes} bytes, {} dropped", kernel.drops);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaptureConfig {
    /// The interface to bind; `None` or `"any"` captures on every interface of the
    /// namespace (frames then keep each interface's own link-layer header, and a filter
    /// is compiled for Ethernet).
    pub interface: Option<String>,
    /// At most this many bytes of each packet are copied into the ring (the rest is
    /// counted in the wire length only). This is the main speed knob: the copy happens
    /// on the sending/receiving CPU, so a counter that needs only headers should ask for
    /// 64–128 bytes. Default 262144 (whole packets, like tcpdump).
    pub snaplen: u32,
    /// Put the interface in promiscuous mode while the capture is open (default true;
    /// ignored for "any"). The kernel drops the membership with the socket.
    pub promiscuous: bool,
    /// Which packets to see: received, sent, or both (default both).
    pub direction: Direction,
    /// A filter in tcpdump syntax, compiled by libpcap for the interface's link type.
    pub filter: Option<String>,
    /// Join this fanout group (PF_RING's cluster), if set.
    pub fanout: Option<Fanout>,
    /// The ring's shape.
    pub ring: RingGeometry,
    /// The application's name, shown in socket listings.
    pub app_name: Option<String>,
    /// Record the socket under `/run/nsring` for `nsring ls` (default true). The record's
    /// counters cost one relaxed store per ring block; turn it off to measure that.
    pub register: bool,
    /// Put a virtio-net header (`PACKET_VNET_HDR`, [`crate::vnet`]) in front of every frame
    /// in the ring, read with [`Frame::with_vnet_hdr`](crate::Frame::with_vnet_hdr): how a
    /// GSO frame is to be cut and where its checksum goes. For forwarding (default false).
    pub vnet_hdr: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interface: None,
            snaplen: DEFAULT_SNAPLEN,
            promiscuous: true,
            direction: Direction::Both,
            filter: None,
            fanout: None,
            ring: RingGeometry::default(),
            app_name: None,
            register: true,
            vnet_hdr: false,
        }
    }
}

impl CaptureConfig {
    /// Defaults, on `interface` (`"any"` for all interfaces).
    pub fn new(interface: impl Into<String>) -> Self {
        CaptureConfig {
            interface: Some(interface.into()),
            ..Self::default()
        }
    }

    /// Sets [`snaplen`](Self::snaplen).
    pub fn snaplen(mut self, snaplen: u32) -> Self {
        self.snaplen = snaplen;
        self
    }

    /// Sets [`promiscuous`](Self::promiscuous).
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// Sets [`direction`](Self::direction).
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Sets [`filter`](Self::filter) (tcpdump syntax).
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Joins fanout group `group` with `mode` (see [`fanout`](Self::fanout)).
    pub fn fanout(mut self, group: u16, mode: FanoutMode) -> Self {
        self.fanout = Some(Fanout { group, mode });
        self
    }

    /// Sets [`ring`](Self::ring).
    pub fn ring(mut self, ring: RingGeometry) -> Self {
        self.ring = ring;
        self
    }

    /// Sets [`app_name`](Self::app_name).
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// Whether to record the socket under `/run/nsring` (see [`CaptureConfig::register`]).
    pub fn register(mut self, on: bool) -> Self {
        self.register = on;
        self
    }

    /// Sets [`vnet_hdr`](Self::vnet_hdr).
    pub fn vnet_hdr(mut self, on: bool) -> Self {
        self.vnet_hdr = on;
        self
    }

    /// The interface to bind, `None` for all of them.
    pub fn bound_interface(&self) -> Option<&str> {
        self.interface.as_deref().filter(|i| *i != "any")
    }

    /// Checks the settings that can be checked without the system.
    pub fn validate(&self) -> Result<()> {
        if self.snaplen == 0 {
            return Err(Error::Config("snaplen must be at least 1".into()));
        }
        if let Some(name) = self.bound_interface() {
            validate_ifname(name)?;
        }
        self.ring.validate()
    }
}

/// Checks a Linux interface name (the rule lives in `nsring_netns::link::validate_ifname`).
pub fn validate_ifname(name: &str) -> Result<()> {
    nsring_netns::link::validate_ifname(name).map_err(|e| match e {
        nsring_netns::Error::InvalidIfName { name, why } => {
            Error::InvalidInterfaceName { name, why }
        }
        other => Error::Netns(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ring_is_accepted_and_requests_match() {
        let g = RingGeometry::default();
        g.validate().unwrap();
        let r = g.request();
        assert_eq!(r.tp_frame_nr, (1 << 20) / 2048 * 16);
        assert_eq!(g.total_bytes(), 16 << 20);
    }

    #[test]
    fn bad_geometry_is_refused() {
        let d = RingGeometry::default();
        for g in [
            RingGeometry {
                block_size: 3000,
                ..d
            },
            RingGeometry {
                block_size: 6 << 20,
                ..d
            },
            RingGeometry {
                block_count: 0,
                ..d
            },
            RingGeometry {
                frame_size: 100,
                ..d
            },
            RingGeometry {
                frame_size: 64,
                ..d
            },
            RingGeometry {
                block_size: 1 << 30,
                block_count: 8,
                ..d
            },
        ] {
            assert!(matches!(g.validate(), Err(Error::Config(_))), "{g:?}");
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!("rx".parse::<Direction>().unwrap(), Direction::In);
        assert_eq!("tx".parse::<Direction>().unwrap(), Direction::Out);
        assert!("sideways".parse::<Direction>().is_err());
        assert_eq!("flow".parse::<FanoutMode>().unwrap(), FanoutMode::Hash);
        assert_eq!("rr".parse::<FanoutMode>().unwrap(), FanoutMode::RoundRobin);
        for m in ["flow", "rr", "cpu", "rollover", "random", "queue"] {
            assert_eq!(m.parse::<FanoutMode>().unwrap().to_string(), m);
        }
        assert_eq!(
            FanoutMode::Hash.kernel_type(),
            sys::PACKET_FANOUT_HASH | sys::PACKET_FANOUT_FLAG_DEFRAG
        );
    }

    #[test]
    fn interface_names() {
        assert!(validate_ifname("eth1").is_ok());
        assert!(validate_ifname(&"x".repeat(15)).is_ok());
        for bad in ["", "a/b", "a b", ".", "..", &"x".repeat(16)] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
        assert_eq!(CaptureConfig::new("any").bound_interface(), None);
        assert_eq!(CaptureConfig::new("eth1").bound_interface(), Some("eth1"));
        assert!(CaptureConfig::new("eth1").snaplen(0).validate().is_err());
    }
}
