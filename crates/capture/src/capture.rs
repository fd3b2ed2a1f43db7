//! [`Capture`]: a TPACKET_V3 capture socket opened in a network namespace.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nsring_netns::NetNs;
use nsring_registry::record::{self, Counter, Record, RecordInfo};

use crate::config::{CaptureConfig, Direction};
use crate::error::{Error, Result};
use crate::filter;
use crate::ring::{Block, Ring};
use crate::sys;

/// Kernel counters of one capture, as totals since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Packets that passed the filter, whether they fitted in the ring or not
    /// (`tp_packets`, which the kernel reports with the drops included).
    pub packets: u64,
    /// Packets dropped because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring was full and the kernel froze the queue (`tp_freeze_q_cnt`).
    pub freezes: u64,
}

impl Stats {
    /// Packets that reached the ring.
    pub fn received(&self) -> u64 {
        self.packets.saturating_sub(self.drops)
    }
}

/// Makes a blocked [`Capture::next_block`] return promptly, from any thread or a signal
/// handler (it only writes to an eventfd). After a wake the capture drains: it keeps
/// returning the blocks the kernel hands over within about two block timeouts, then
/// [`Capture::finished`] turns true and `next_block` returns `None` at once.
#[derive(Debug, Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Requests the stop. Async-signal-safe (one `write(2)`).
    pub fn wake(&self) -> io::Result<()> {
        sys::eventfd_signal(self.fd.as_fd())
    }
}

/// An open capture: the socket, its mapped ring, and the reading state. `Send`, so it
/// can be opened on one thread and read on another.
///
/// Open a capture in a namespace and iterate its frames (the process itself never enters
/// the namespace; the socket is made there):
///
/// ```no_run
/// use std::time::Duration;
/// use nsring_capture::{Capture, CaptureConfig, frame::Dir};
/// use nsring_netns::NetNs;
///
/// let ns = NetNs::open_str("ns0")?; // /run/netns/ns0, or "pid:4242", or a path
/// let mut cap = Capture::open(&ns, &CaptureConfig::new("eth1"))?;
/// for _ in 0..10 {
///     // a block of frames, or None when the timeout passes without one
///     let Some(block) = cap.next_block(Some(Duration::from_secs(1)))? else {
///         continue;
///     };
///     for frame in &block {
///         let arrow = if frame.direction() == Dir::In { "<-" } else { "->" };
///         println!("{} {arrow} {} bytes", frame.timestamp_ns(), frame.wire_len());
///     }
/// } // dropping the block hands it back to the kernel
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Capture {
    // Field order is drop order: remove the record, unmap the ring, close the socket.
    /// The socket's record under /run/nsring (None if not registered or it failed).
    record: Option<Record>,
    record_error: Option<record::Error>,
    ring: Ring,
    fd: OwnedFd,
    wake: Arc<OwnedFd>,
    ifindex: u32,
    interface: Option<String>,
    namespace: String,
    app_name: Option<String>,
    snaplen: u32,
    block_timeout: Duration,
    totals: Stats,
    /// What the application was handed: packets (blocks' `num_pkts`), blocks, and the
    /// bytes it reported with `add_bytes`.
    rx_packets: u64,
    rx_blocks: u64,
    rx_bytes: u64,
    drain_until: Option<Instant>,
    finished: bool,
    /// The interface went down (false) or away (true): reported once the ring is drained.
    gone: Option<bool>,
}

/// What the namespace thread hands back.
struct Opened {
    fd: OwnedFd,
    map: sys::Mmap,
    ifindex: u32,
}

impl Capture {
    /// Opens a capture in `ns` (use `NetNs::current()` for the caller's namespace).
    ///
    /// The socket is created on a thread inside `ns`, with protocol 0 so it receives
    /// nothing yet; then TPACKET_V3, the filter (so no unfiltered packet gets in), the
    /// ring, and only then the bind to ETH_P_ALL on the interface, the promiscuous
    /// membership and the fanout group (the kernel only accepts fanout on a bound socket;
    /// a new member may see packets for the microseconds between its bind and its join).
    pub fn open(ns: &NetNs, cfg: &CaptureConfig) -> Result<Capture> {
        cfg.validate()?;
        let namespace = ns.spec().to_string();
        let wake = sys::eventfd().map_err(|e| Error::sys("eventfd", "", e))?;
        let opened = ns.run(|| open_inside(cfg, &namespace))??;
        let block_size = cfg.ring.block_size as usize;
        let block_count = cfg.ring.block_count as usize;
        let (record, record_error) = if cfg.register {
            match Record::create(
                ns,
                &opened.fd,
                &record_info(cfg, &namespace, opened.ifindex),
            ) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        Ok(Capture {
            record,
            record_error,
            ring: Ring::mapped(opened.map, block_size, block_count),
            fd: opened.fd,
            wake: Arc::new(wake),
            ifindex: opened.ifindex,
            interface: cfg.bound_interface().map(str::to_owned),
            namespace,
            app_name: cfg.app_name.clone(),
            snaplen: cfg.snaplen,
            block_timeout: Duration::from_millis(u64::from(cfg.ring.block_timeout_ms.max(1))),
            totals: Stats::default(),
            rx_packets: 0,
            rx_blocks: 0,
            rx_bytes: 0,
            drain_until: None,
            finished: false,
            gone: None,
        })
    }

    /// The next block of packets, waiting at most `timeout` (`None`: until one comes or
    /// a [`Waker`] fires). `Ok(None)` means: timed out, woken, interrupted by a signal,
    /// or [`finished`](Capture::finished). Blocks the kernel has handed over are
    /// returned without a system call.
    ///
    /// When the interface goes down or leaves the namespace, the blocks already in the
    /// ring are still handed out; then the capture is finished and this returns
    /// [`Error::InterfaceDown`] or [`Error::InterfaceRemoved`] (see
    /// [`Error::interface_gone`]).
    pub fn next_block(&mut self, timeout: Option<Duration>) -> Result<Option<Block<'_>>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.ring.ready() {
                let block = self.ring.take();
                if let Some(rec) = &self.record {
                    // once per block: two relaxed stores into the record's page
                    self.rx_packets += block.len() as u64;
                    self.rx_blocks += 1;
                    rec.store(Counter::Packets, self.rx_packets);
                    rec.store(Counter::Blocks, self.rx_blocks);
                }
                return Ok(Some(block));
            }
            if self.finished {
                return self.gone_error().map_or(Ok(None), Err);
            }
            let now = Instant::now();
            if let Some(end) = self.drain_until
                && now >= end
            {
                self.finished = true;
                return self.gone_error().map_or(Ok(None), Err);
            }
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let until = match (deadline, self.drain_until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let ms = until.map_or(-1, |u| {
                let left = u.saturating_duration_since(now);
                left.as_millis().min(i32::MAX as u128) as i32
                    + i32::from(left.subsec_nanos() % 1_000_000 != 0)
            });
            let wake = self.drain_until.is_none().then(|| self.wake.as_fd());
            match sys::poll_ready(self.fd.as_fd(), wake, ms) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
                Err(e) => return Err(Error::sys("poll", "capture socket", e)),
                Ok((revents, woke)) => {
                    if revents & libc::POLLERR != 0 {
                        self.check_socket_error()?;
                        if self.gone.is_some() && self.drain_until.is_none() {
                            // Hand out what the ring still holds, then report. A deleted
                            // interface goes down before it is unregistered: wait long
                            // enough to tell the two apart.
                            let drain = (2 * self.block_timeout + Duration::from_millis(10))
                                .max(Duration::from_millis(300));
                            self.drain_until = Some(Instant::now() + drain);
                        }
                    }
                    if woke {
                        // two block timeouts: the kernel's timer closes a partly filled
                        // block within one, counted from its last reset
                        self.drain_until = Some(
                            Instant::now() + 2 * self.block_timeout + Duration::from_millis(10),
                        );
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn check_socket_error(&mut self) -> Result<()> {
        let err = sys::take_socket_error(self.fd.as_fd())
            .map_err(|e| Error::sys("getsockopt SO_ERROR", "", e))?;
        match err {
            0 => Ok(()),
            libc::ENETDOWN => {
                let removed =
                    sys::bound_ifindex(self.fd.as_fd()).map_or(true, |i| i != self.ifindex as i32);
                self.gone = Some(removed || self.gone == Some(true));
                Ok(())
            }
            e => Err(Error::sys(
                "recv",
                "capture socket",
                io::Error::from_raw_os_error(e),
            )),
        }
    }

    /// The error that ends a capture whose interface went down or away.
    fn gone_error(&mut self) -> Option<Error> {
        if self.gone == Some(false)
            && sys::bound_ifindex(self.fd.as_fd()).map_or(true, |i| i != self.ifindex as i32)
        {
            // it went down, then away
            self.gone = Some(true);
        }
        let name = self.interface.clone().unwrap_or_else(|| "any".into());
        let ns = self.namespace.clone();
        self.gone.map(|removed| {
            if removed {
                Error::InterfaceRemoved { name, ns }
            } else {
                Error::InterfaceDown { name, ns }
            }
        })
    }

    /// A handle that stops a blocked or future [`Capture::next_block`].
    pub fn waker(&self) -> Waker {
        Waker {
            fd: Arc::clone(&self.wake),
        }
    }

    /// True once a stop was requested (by a [`Waker`]) and seen.
    pub fn stop_requested(&self) -> bool {
        self.drain_until.is_some()
    }

    /// True once a stop was requested and the ring is drained: no more blocks will come.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Totals of the kernel's counters since the capture was opened. (The kernel resets
    /// its counters on every read; this accumulates them.)
    pub fn stats(&mut self) -> Result<Stats> {
        let st = sys::packet_stats(self.fd.as_fd())
            .map_err(|e| Error::sys("getsockopt PACKET_STATISTICS", "", e))?;
        self.totals.packets += u64::from(st.tp_packets);
        self.totals.drops += u64::from(st.tp_drops);
        self.totals.freezes += u64::from(st.tp_freeze_q_cnt);
        if let Some(rec) = &self.record {
            rec.store(Counter::KernelPackets, self.totals.packets);
            rec.store(Counter::Drops, self.totals.drops);
            rec.store(Counter::Freezes, self.totals.freezes);
            rec.store(Counter::UpdatedUnixNs, record::unix_ns_now());
        }
        Ok(self.totals)
    }

    /// Adds `bytes` to the byte count shown in `nsring ls` (the capture does not look at
    /// the frames itself). Call it once per block with the block's wire bytes: it is one
    /// relaxed store, no system call.
    #[inline]
    pub fn add_bytes(&mut self, bytes: u64) {
        self.rx_bytes += bytes;
        if let Some(rec) = &self.record {
            rec.store(Counter::Bytes, self.rx_bytes);
        }
    }

    /// The socket's record under `/run/nsring` (None if `register` was off or creating it
    /// failed; see [`Capture::record_error`]).
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// Why the socket could not be recorded (e.g. `/run/nsring` is not writable without
    /// root); the capture works without its record.
    pub fn record_error(&self) -> Option<&record::Error> {
        self.record_error.as_ref()
    }

    /// The bound interface's index in its namespace, 0 for all interfaces.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The bound interface, `None` for all interfaces.
    pub fn interface(&self) -> Option<&str> {
        self.interface.as_deref()
    }

    /// The namespace as it was named.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The application name given in the configuration, if any.
    pub fn app_name(&self) -> Option<&str> {
        self.app_name.as_deref()
    }

    /// The snapshot length asked of the kernel.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The number of blocks in the ring.
    pub fn block_count(&self) -> usize {
        self.ring.block_count()
    }
}

impl AsFd for Capture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The record of a capture: its configuration as `nsring ls` shows it.
fn record_info(cfg: &CaptureConfig, namespace: &str, ifindex: u32) -> RecordInfo {
    let app = cfg.app_name.clone().unwrap_or_else(|| {
        std::env::args()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "nsring".into())
    });
    let mut info = RecordInfo::new(app, cfg.bound_interface());
    info.ifindex = ifindex;
    info.direction = cfg.direction.to_string();
    info.snaplen = cfg.snaplen;
    info.promiscuous = cfg.promiscuous && ifindex != 0;
    info.filter = cfg.filter.clone();
    info.cluster = cfg.fanout.map(|f| record::Cluster {
        id: f.group,
        kind: f.mode.to_string(),
    });
    info.ring = Some(record::RingInfo {
        block_size: cfg.ring.block_size,
        block_count: cfg.ring.block_count,
        frame_size: cfg.ring.frame_size,
        block_timeout_ms: cfg.ring.block_timeout_ms,
        memory_bytes: cfg.ring.total_bytes(),
    });
    info.backend = "tpacket_v3".into();
    info.netns = namespace.to_owned();
    info
}

/// Looks up an interface in the calling thread's namespace.
pub(crate) fn ifindex_here(name: &str, ns: &str) -> Result<u32> {
    sys::if_nametoindex(name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => Error::NoInterface {
            name: name.to_owned(),
            ns: ns.to_owned(),
        },
        _ => Error::sys("if_nametoindex", name, e),
    })
}

/// Runs on the namespace's thread: every step that must happen inside it.
fn open_inside(cfg: &CaptureConfig, ns: &str) -> Result<Opened> {
    let iface = cfg.bound_interface();
    let ifindex = match iface {
        Some(name) => ifindex_here(name, ns)?,
        None => 0,
    };
    let program = match &cfg.filter {
        // "any" frames keep their own link layer; compile for Ethernet (lo is Ethernet)
        Some(text) => Some(filter::compile_for(text, iface.unwrap_or("lo"))?),
        None => None,
    };

    let fd = sys::packet_socket().map_err(|e| Error::sys("socket(AF_PACKET)", "", e))?;
    let sock = fd.as_fd();
    sys::set_packet_int(sock, sys::PACKET_VERSION, sys::TPACKET_V3)
        .map_err(|e| Error::sys("setsockopt PACKET_VERSION", "TPACKET_V3", e))?;

    // Direction "in": let the kernel skip our socket on transmit (PACKET_IGNORE_OUTGOING,
    // Linux 4.20); else, and for "out", test the packet type in the filter.
    let mut bpf_direction = cfg.direction;
    if cfg.direction == Direction::In {
        match sys::set_packet_int(sock, sys::PACKET_IGNORE_OUTGOING, 1) {
            Ok(()) => bpf_direction = Direction::Both,
            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {}
            Err(e) => return Err(Error::sys("setsockopt PACKET_IGNORE_OUTGOING", "", e)),
        }
    }
    let program = match program {
        Some(mut p) => {
            filter::set_snaplen(&mut p, cfg.snaplen);
            Some(filter::with_direction(p, bpf_direction))
        }
        None if cfg.snaplen < crate::config::DEFAULT_SNAPLEN
            || bpf_direction != Direction::Both =>
        {
            Some(filter::with_direction(
                filter::accept_all(cfg.snaplen),
                bpf_direction,
            ))
        }
        None => None,
    };
    if let Some(p) = &program {
        if p.len() > filter::MAX_INSNS {
            return Err(Error::Filter {
                filter: cfg.filter.clone().unwrap_or_default(),
                message: format!(
                    "compiles to {} instructions; the kernel takes at most {}",
                    p.len(),
                    filter::MAX_INSNS
                ),
            });
        }
        sys::attach_filter(sock, p)
            .map_err(|e| Error::sys("setsockopt SO_ATTACH_FILTER", "", e))?;
    }

    // Before the ring: the kernel refuses PACKET_VNET_HDR on a socket that has one (EBUSY).
    if cfg.vnet_hdr {
        sys::set_packet_int(sock, sys::PACKET_VNET_HDR, 1)
            .map_err(|e| Error::sys("setsockopt PACKET_VNET_HDR", "", e))?;
    }
    let ring_err = |source: io::Error| match source.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::ENOBUFS) | Some(libc::EAGAIN) => Error::RingTooLarge {
            block_size: cfg.ring.block_size,
            blocks: cfg.ring.block_count,
            source,
        },
        _ => Error::sys("setsockopt PACKET_RX_RING", "", source),
    };
    sys::set_rx_ring(sock, &cfg.ring.request()).map_err(ring_err)?;
    let len = cfg.ring.total_bytes() as usize;
    let map = sys::Mmap::ring(sock, len).map_err(|source| match source.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::EAGAIN) => Error::RingTooLarge {
            block_size: cfg.ring.block_size,
            blocks: cfg.ring.block_count,
            source,
        },
        _ => Error::sys("mmap", "capture ring", source),
    })?;

    sys::bind_packet(sock, sys::ETH_P_ALL, ifindex).map_err(|e| match e.raw_os_error() {
        Some(libc::ENODEV) => Error::NoInterface {
            name: iface.unwrap_or("any").to_owned(),
            ns: ns.to_owned(),
        },
        _ => Error::sys("bind", iface.unwrap_or("any"), e),
    })?;
    if cfg.promiscuous && ifindex != 0 {
        sys::add_promisc(sock, ifindex)
            .map_err(|e| Error::sys("setsockopt PACKET_ADD_MEMBERSHIP", "promiscuous", e))?;
    }
    if let Some(fanout) = cfg.fanout {
        let mut kind = fanout.mode.kernel_type();
        if cfg.direction == Direction::In {
            // the group's hook replaces ours, so it needs the flag itself
            kind |= sys::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        }
        let arg = u32::from(fanout.group) | (u32::from(kind) << 16);
        sys::set_packet_int(sock, sys::PACKET_FANOUT, arg as libc::c_int).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EALREADY) => Error::FanoutMismatch {
                    id: fanout.group,
                    source: e,
                },
                _ => Error::sys(
                    "setsockopt PACKET_FANOUT",
                    format!("group {}", fanout.group),
                    e,
                ),
            }
        })?;
    }
    Ok(Opened { fd, map, ifindex })
}
