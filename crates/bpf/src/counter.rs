//! [`KernelCounter`]: one count in the kernel — the filter compiled by libpcap on the
//! interface (Linux live semantics, exactly as a capture compiles it), translated for each
//! hook the direction needs, loaded, attached (TCX, or clsact where TCX is missing), and
//! read from its per-CPU map. Nothing is copied to user space.
//!
//! Beside the programs it holds a packet socket in the interface's namespace with
//! protocol 0 (it receives nothing): it keeps the interface promiscuous (a membership
//! the kernel drops with the socket) and names the count in the registry, whose record
//! gets the counters mirrored into its page at every read. A route-netlink subscription
//! tells when the interface goes away or down.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nsring_capture::Direction;
use nsring_capture::sys::{self as csys, SockFilter};
use nsring_netns::NetNs;
use nsring_netns::link::Rtnl;
use nsring_registry::record::{
    self, BpfInfo, Counter, Record, RecordInfo, RecordKind, unix_ns_now,
};

use crate::error::{Error, NEEDS_NET_RAW, Result};
use crate::program::{Counters, Program};
use crate::tc::{self, ClsactFilters, Swept};
use crate::tcx::TcxLink;
use crate::translate::{Hook, Value};
use crate::watch::{LinkState, LinkWatch};

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// TCX, or clsact where the kernel has no TCX.
    #[default]
    Auto,
    /// TCX only.
    Tcx,
    /// clsact + cls_bpf only (what older kernels get; for tests of the fallback).
    Clsact,
}

/// What a [`KernelCounter`] counts.
#[derive(Debug, Clone)]
pub struct CounterConfig {
    /// The interface, in the namespace given to [`KernelCounter::open`].
    pub interface: String,
    /// tcpdump syntax; `None` counts everything.
    pub filter: Option<String>,
    /// `in`: the ingress hook, `out`: egress, `both`: both, into one count.
    pub direction: Direction,
    /// Hold the interface promiscuous while counting.
    pub promiscuous: bool,
    /// TCX or clsact.
    pub attach: AttachMode,
    /// Record the count under /run/nsring for `nsring ls`.
    pub register: bool,
    /// The name `nsring ls` shows (default: the program's name).
    pub app_name: Option<String>,
    /// Keep every RATE-th accepted packet (counted apart; see [`Value::kept`]).
    pub sample_every: Option<NonZeroU32>,
}

impl CounterConfig {
    /// Counts everything in both directions on `interface`, promiscuous, registered.
    pub fn new(interface: impl Into<String>) -> CounterConfig {
        CounterConfig {
            interface: interface.into(),
            filter: None,
            direction: Direction::Both,
            promiscuous: true,
            attach: AttachMode::Auto,
            register: true,
            app_name: None,
            sample_every: None,
        }
    }
}

/// How the programs ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// One `bpf_link` per hook.
    Tcx,
    /// `cls_bpf` filters on a clsact qdisc.
    Clsact,
}

impl std::fmt::Display for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Attachment::Tcx => "tcx",
            Attachment::Clsact => "clsact",
        })
    }
}

#[derive(Debug)]
enum Attached {
    Tcx(Vec<TcxLink>),
    Clsact(ClsactFilters),
}

/// Makes a blocked [`KernelCounter::wait`] return at once, from any thread or a signal
/// handler (one `write(2)` to an eventfd).
#[derive(Debug, Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Requests the stop. Async-signal-safe (one `write(2)`).
    pub fn wake(&self) -> io::Result<()> {
        csys::eventfd_signal(self.fd.as_fd())
    }
}

/// A count running in the kernel. Dropping it detaches everything.
#[derive(Debug)]
pub struct KernelCounter {
    // Field order is drop order: the record goes first, then the programs come off.
    record: Option<Record>,
    record_error: Option<record::Error>,
    attached: Attached,
    programs: Vec<Program>,
    counters: Counters,
    watch: LinkWatch,
    _anchor: OwnedFd,
    wake: Arc<OwnedFd>,
    ifindex: u32,
    interface: String,
    namespace: String,
    stop: bool,
    swept: Vec<Swept>,
}

/// The classic program that accepts everything.
fn accept_all() -> Vec<SockFilter> {
    vec![SockFilter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: u32::MAX,
    }]
}

/// What is set up inside the namespace.
struct Inside {
    ifindex: u32,
    classic: Vec<SockFilter>,
    anchor: OwnedFd,
    watch: LinkWatch,
}

fn inside(cfg: &CounterConfig, ns: &str) -> Result<Inside> {
    let ifindex = csys::if_nametoindex(&cfg.interface).map_err(|e| match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => {
            Error::Capture(nsring_capture::Error::NoInterface {
                name: cfg.interface.clone(),
                ns: ns.to_owned(),
            })
        }
        _ => Error::sys("if_nametoindex", cfg.interface.clone(), e),
    })?;
    let watch = LinkWatch::open_here(ifindex)
        .map_err(|e| Error::sys("socket(NETLINK_ROUTE)", "link events", e))?;
    let classic = match &cfg.filter {
        Some(text) => nsring_capture::filter::compile_for(text, &cfg.interface)?,
        None => accept_all(),
    };
    let anchor = csys::packet_socket()
        .map_err(|e| Error::needing("socket(AF_PACKET)", NEEDS_NET_RAW, "", e))?;
    if cfg.promiscuous {
        csys::add_promisc(anchor.as_fd(), ifindex).map_err(|e| {
            Error::needing(
                "setsockopt PACKET_ADD_MEMBERSHIP",
                NEEDS_NET_RAW,
                "promiscuous",
                e,
            )
        })?;
    }
    Ok(Inside {
        ifindex,
        classic,
        anchor,
        watch,
    })
}

fn hooks(d: Direction) -> &'static [Hook] {
    match d {
        Direction::In => &[Hook::Ingress],
        Direction::Out => &[Hook::Egress],
        Direction::Both => &[Hook::Ingress, Hook::Egress],
    }
}

fn hook_name(h: Hook) -> &'static str {
    match h {
        Hook::Egress => "egress",
        _ => "ingress",
    }
}

/// Attaches every program with TCX (inside the namespace).
fn tcx_all(programs: &[Program], ifindex: u32) -> io::Result<Vec<TcxLink>> {
    programs
        .iter()
        .map(|p| TcxLink::attach_here(p, ifindex))
        .collect()
}

/// True if a TCX attach failed because this kernel has no TCX.
fn no_tcx(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        // 524 is the kernel's ENOTSUPP, which has no libc name
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(524)
    )
}

impl KernelCounter {
    /// Sets the count up in `ns` (use `NetNs::current()` for the caller's namespace).
    pub fn open(ns: &NetNs, cfg: &CounterConfig) -> Result<KernelCounter> {
        let namespace = ns.spec().to_string();
        let wake = csys::eventfd().map_err(|e| Error::sys("eventfd", "", e))?;
        let ins = ns.run(|| inside(cfg, &namespace))??;
        let sampling = cfg.sample_every.is_some_and(|n| n.get() > 1);
        let counters = Counters::create(sampling)?;
        let text = cfg.filter.as_deref().unwrap_or("");
        let programs = hooks(cfg.direction)
            .iter()
            .map(|&h| Program::load(text, &ins.classic, h, cfg.sample_every, &counters))
            .collect::<Result<Vec<_>>>()?;
        // Filters that killed nsring processes left on clsact qdiscs of this namespace go
        // first (best effort: only a kernel without TCX, or --kernel-attach clsact, leaves
        // any).
        let swept = tc::sweep(ns).unwrap_or_default();
        let iface = cfg.interface.as_str();
        let clsact = || -> Result<Attached> {
            let rtnl = Rtnl::open(ns)?;
            let refs: Vec<&Program> = programs.iter().collect();
            ClsactFilters::attach(rtnl, ins.ifindex, &refs)
                .map(Attached::Clsact)
                .map_err(|e| attach_error(iface, "clsact", e))
        };
        let attached = match cfg.attach {
            AttachMode::Clsact => clsact()?,
            mode => match ns.run(|| tcx_all(&programs, ins.ifindex))? {
                Ok(links) => Attached::Tcx(links),
                Err(e) if mode == AttachMode::Auto && no_tcx(&e) => clsact()?,
                Err(e) => return Err(attach_error(iface, "TCX", e)),
            },
        };
        let mut me = KernelCounter {
            record: None,
            record_error: None,
            attached,
            programs,
            counters,
            watch: ins.watch,
            _anchor: ins.anchor,
            wake: Arc::new(wake),
            ifindex: ins.ifindex,
            interface: cfg.interface.clone(),
            namespace,
            stop: false,
            swept,
        };
        if cfg.register {
            match Record::create(ns, me._anchor.as_fd(), &me.record_info(cfg)) {
                Ok(r) => me.record = Some(r),
                Err(e) => me.record_error = Some(e),
            }
        }
        Ok(me)
    }

    fn record_info(&self, cfg: &CounterConfig) -> RecordInfo {
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
        let mut info = RecordInfo::new(app, Some(&self.interface));
        info.kind = RecordKind::KernelCounter;
        info.ifindex = self.ifindex;
        info.direction = cfg.direction.to_string();
        info.promiscuous = cfg.promiscuous;
        info.filter = cfg.filter.clone();
        info.backend = format!("ebpf-{}", self.attachment());
        info.netns = self.namespace.clone();
        info.bpf = Some(self.bpf_info());
        info
    }

    /// The programs, links and map as the kernel numbers them.
    pub fn bpf_info(&self) -> BpfInfo {
        let link_ids = match &self.attached {
            Attached::Tcx(links) => links
                .iter()
                .filter_map(|l| l.info().ok().map(|i| i.id))
                .collect(),
            Attached::Clsact(_) => Vec::new(),
        };
        BpfInfo {
            attach: self.attachment().to_string(),
            hooks: self
                .programs
                .iter()
                .map(|p| hook_name(p.hook()).to_owned())
                .collect(),
            prog_ids: self.programs.iter().filter_map(Program::id).collect(),
            link_ids,
            map_id: self.counters.id().unwrap_or(0),
            insns: self.programs.first().map_or(0, Program::len),
        }
    }

    /// TCX or clsact.
    pub fn attachment(&self) -> Attachment {
        match self.attached {
            Attached::Tcx(_) => Attachment::Tcx,
            Attached::Clsact(_) => Attachment::Clsact,
        }
    }

    /// The counters now (one bpf(2) call), also stored into the registry record.
    pub fn read(&mut self) -> Result<Value> {
        let v = self.counters.read()?;
        if let Some(r) = &self.record {
            r.store(Counter::Packets, v.packets);
            r.store(Counter::Bytes, v.bytes);
            r.store(Counter::KernelPackets, v.packets);
            r.store(Counter::UpdatedUnixNs, unix_ns_now());
        }
        Ok(v)
    }

    /// Waits up to `timeout` for a stop request ([`Waker::wake`]): true if one came.
    /// Errors if the interface went away or down meanwhile.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        if self.stop {
            return Ok(true);
        }
        let (events, woken) = self.poll(timeout)?;
        if events {
            match self.link_state()? {
                Some(LinkState::Down) => {
                    // Deleting or moving an interface takes it down first; the removal
                    // follows (after RCU grace periods for a move): say "removed" if it
                    // comes within a second.
                    let gone = self.removed_within(Duration::from_secs(1))?;
                    let (name, ns) = (self.interface.clone(), self.namespace.clone());
                    return Err(if gone {
                        Error::InterfaceGone { name, ns }
                    } else {
                        Error::InterfaceDown { name, ns }
                    });
                }
                Some(LinkState::Gone) => {
                    return Err(Error::InterfaceGone {
                        name: self.interface.clone(),
                        ns: self.namespace.clone(),
                    });
                }
                _ => {}
            }
        }
        self.stop |= woken;
        Ok(self.stop)
    }

    /// poll(2) on the link events and the waker: (link events pending, woken). A signal
    /// that interrupts the wait is no error: the handler has written to the waker.
    fn poll(&self, timeout: Duration) -> Result<(bool, bool)> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        let mut ms = ms;
        loop {
            match csys::poll_ready(self.watch.as_fd(), Some(self.wake.as_fd()), ms) {
                Ok((events, woken)) => return Ok((events != 0, woken)),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => ms = 0,
                Err(e) => return Err(Error::sys("poll", "", e)),
            }
        }
    }

    /// Waits up to `limit` for the interface to be removed.
    fn removed_within(&mut self, limit: Duration) -> Result<bool> {
        let end = std::time::Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let now = self.watch.ask();
                return Ok(now.is_ok_and(|s| s == LinkState::Gone));
            }
            if self.poll(left)?.0 && self.link_state()? == Some(LinkState::Gone) {
                return Ok(true);
            }
        }
    }

    fn link_state(&mut self) -> Result<Option<LinkState>> {
        self.watch
            .poll_events()
            .map_err(|e| Error::sys("recv", "link events", e))
    }

    /// A handle that stops [`KernelCounter::wait`] from anywhere (a signal handler too).
    pub fn waker(&self) -> Waker {
        Waker {
            fd: Arc::clone(&self.wake),
        }
    }

    /// True once a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop
    }

    /// Detaches the programs now (dropping the counter does it too, quietly).
    pub fn detach(&mut self) -> Result<()> {
        match &mut self.attached {
            Attached::Tcx(links) => {
                for l in links.drain(..) {
                    let _ = l.detach(); // fails only if the interface is gone: detached
                }
                Ok(())
            }
            Attached::Clsact(f) => f
                .detach()
                .map_err(|e| Error::sys("RTM_DELTFILTER", self.interface.clone(), e)),
        }
    }

    /// The interface's index in its namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The record under /run/nsring, if registering worked.
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// Why registering failed, if it did (the count runs anyway).
    pub fn record_error(&self) -> Option<&record::Error> {
        self.record_error.as_ref()
    }

    /// Leftover filters of dead nsring processes that opening this counter removed.
    pub fn swept(&self) -> &[Swept] {
        &self.swept
    }

    /// Where the clsact filters are (empty with TCX).
    pub fn filters(&self) -> Vec<String> {
        match &self.attached {
            Attached::Clsact(f) => f.describe(),
            Attached::Tcx(_) => Vec::new(),
        }
    }
}

fn attach_error(iface: &str, how: &'static str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::PermissionDenied {
            call: if how == "TCX" {
                "bpf(BPF_LINK_CREATE)"
            } else {
                "RTM_NEWTFILTER"
            },
            needs: crate::error::NEEDS_NET_ADMIN,
            source: e,
        },
        _ => Error::Attach {
            iface: iface.to_owned(),
            how,
            source: e,
        },
    }
}
