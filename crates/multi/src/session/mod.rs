//! [`Session`]: many captures in one process, on one thread, around one epoll set.
//!
//! The set holds every capture's socket (readable when a ring block is ready), one
//! route-netlink socket per followed namespace (interfaces appear, go, move), the mount
//! table (`/proc/self/mountinfo` signals a change: namespaces named, unmounted), a pidfd
//! for a namespace that only processes hold, and an eventfd to stop. Nothing is polled on
//! a timer except, with `--all-netns`, the cheap look through `/proc` for namespaces that
//! only a process holds. An idle session sleeps in `epoll_wait`.

mod opener;
mod world;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use nix::sys::epoll::{EpollEvent, EpollFlags};
use nsring_capture::{Block, CaptureConfig, Stats};
use serde::Serialize;

use crate::budget::{Budget, RingPolicy};
use crate::scan::Mounts;
use crate::select::Target;
use crate::sys::{Poller, Stopper};
use crate::{Error, Result};

use opener::Opener;
use world::{Cap, NsEntry};

/// How long a session drains when an interface named exactly goes: a deleted interface
/// goes down before it is unregistered, so "down" is told from "removed" only after this.
const FAULT_DRAIN: Duration = Duration::from_millis(300);

/// How often `/proc` is looked through for namespaces that only processes hold (with
/// [`NsMatch::All`](crate::NsMatch::All)); named and mounted ones are seen at once.
pub const DEFAULT_RESCAN: Duration = Duration::from_millis(500);

/// What a session captures and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to capture.
    pub targets: Vec<Target>,
    /// Every capture's settings; the interface and the ring are set per capture.
    pub config: CaptureConfig,
    /// How rings are sized, and the budget.
    pub ring: RingPolicy,
    /// How often `/proc` is looked through (only with `--all-netns`).
    pub rescan: Duration,
}

/// One capture, as the session reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetInfo {
    /// Unique within the session, in the order captures opened.
    pub id: u64,
    /// The namespace: its name, the path or `pid:PID` it was found by, or empty for the
    /// caller's own.
    pub netns: String,
    /// The namespace's nsfs inode.
    pub netns_inode: u64,
    /// Its iproute2 names.
    pub netns_names: Vec<String>,
    /// The container it belongs to (`podman container 3f2a9c1b2c3d`), when a target named
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The interface, `any` for all.
    pub interface: String,
    /// 0 for `any`.
    pub ifindex: u32,
    /// `ARPHRD_*`.
    pub link_type: u16,
    /// The bytes of its ring.
    pub ring_bytes: u64,
}

impl TargetInfo {
    /// `NS/IFACE` (only `IFACE` in the caller's own namespace).
    pub fn label(&self) -> String {
        if self.netns.is_empty() {
            self.interface.clone()
        } else {
            format!("{}/{}", self.netns, self.interface)
        }
    }
}

/// A capture's counters: what it handed over, and the kernel's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TargetStats {
    /// Packets handed to the [`Handler`] and taken by it.
    pub packets: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// The kernel's counters (read after each batch of blocks, on ticks, and at the end).
    pub kernel: Stats,
}

/// Why a capture ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The session stopped (stop request, deadline, or the handler had enough).
    Stopped,
    /// The interface was removed or moved to another namespace.
    InterfaceGone,
    /// The interface, named exactly, went down.
    InterfaceDown,
    /// Nothing but this process held the namespace any more (unmounted, its processes
    /// gone): the capture was closed so the kernel can tear it down.
    NamespaceGone,
    /// The socket failed.
    Failed(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Stopped => f.write_str("stopped"),
            CloseReason::InterfaceGone => f.write_str("interface removed or moved away"),
            CloseReason::InterfaceDown => f.write_str("interface down"),
            CloseReason::NamespaceGone => f.write_str("namespace gone"),
            CloseReason::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// Something the user should hear about, said once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Note {
    /// A target matches no interface (yet).
    NothingMatches {
        /// The target as given.
        target: String,
    },
    /// An interface matches but is not captured.
    Skipped {
        /// The namespace.
        netns: String,
        /// The interface.
        interface: String,
        /// Why not.
        why: String,
    },
    /// The ring budget is spent: a matching interface is not captured.
    Refused {
        /// The namespace.
        netns: String,
        /// The interface.
        interface: String,
        /// Bytes its ring would take.
        need: u64,
        /// The whole budget.
        budget: u64,
    },
    /// A namespace went away between being found and being opened.
    Vanished {
        /// The namespace.
        netns: String,
    },
    /// A capture could not be recorded under /run/nsring (not writable, say): it works,
    /// and `nsring ls` shows it from the kernel's list only.
    Unrecorded {
        /// What went wrong.
        error: String,
    },
    /// A capture that a pattern found could not be opened.
    Failed {
        /// The namespace.
        netns: String,
        /// The interface.
        interface: String,
        /// What went wrong.
        error: String,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |ns: &str, i: &str| {
            if ns.is_empty() {
                i.to_owned()
            } else {
                format!("{ns}/{i}")
            }
        };
        match self {
            Note::NothingMatches { target } => write!(f, "nothing matches '{target}' (yet)"),
            Note::Skipped {
                netns,
                interface,
                why,
            } => write!(f, "not capturing {}: {why}", at(netns, interface)),
            Note::Refused {
                netns,
                interface,
                need,
                budget,
            } => write!(
                f,
                "not capturing {}: its ring ({} KiB) does not fit in what is left of the ring budget ({} MiB); raise --ring-budget",
                at(netns, interface),
                need >> 10,
                budget >> 20
            ),
            Note::Unrecorded { error } => write!(
                f,
                "warning: not recorded under /run/nsring ({error}); going on: 'nsring ls' shows this socket without its counters"
            ),
            Note::Vanished { netns } => {
                write!(
                    f,
                    "namespace {netns} went away before it could be opened; skipped"
                )
            }
            Note::Failed {
                netns,
                interface,
                error,
            } => write!(f, "cannot capture on {}: {error}", at(netns, interface)),
        }
    }
}

/// What the handler took of a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taken {
    /// Packets taken.
    pub packets: u64,
    /// Wire bytes of those packets.
    pub bytes: u64,
    /// Stop the session now (a packet limit was reached): no draining.
    pub stop: bool,
}

/// What a command does with the captures of a session. Every call happens on the thread
/// that runs the session, in order: a capture's `opened`, its blocks, its `closed`.
pub trait Handler {
    /// The handler's error; the session's own errors convert into it.
    type Error: From<Error>;

    /// A capture opened.
    fn opened(&mut self, target: &TargetInfo) -> Result<(), Self::Error>;

    /// One ring block of `target`; `stats` are its counters before the block.
    fn block(
        &mut self,
        target: &TargetInfo,
        stats: &TargetStats,
        block: &Block<'_>,
    ) -> Result<Taken, Self::Error>;

    /// A capture ended, with its final counters.
    fn closed(
        &mut self,
        target: &TargetInfo,
        stats: &TargetStats,
        why: &CloseReason,
    ) -> Result<(), Self::Error>;

    /// Something to tell the user.
    fn note(&mut self, note: &Note) -> Result<(), Self::Error>;

    /// How often [`Handler::tick`] is called (`None`: never).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called every [`Handler::tick_interval`] with every open capture and fresh counters.
    fn tick(&mut self, _open: &[(&TargetInfo, &TargetStats)]) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// What happened that the handler has not heard yet.
#[derive(Debug)]
enum Event {
    Opened(TargetInfo),
    Closed(TargetInfo, TargetStats, CloseReason),
    Note(Note),
}

/// Epoll tokens: the kind in the top byte, an id below.
const KIND_SHIFT: u32 = 56;
const STOP: u64 = 1 << KIND_SHIFT;
const MOUNTS: u64 = 2 << KIND_SHIFT;
const LINKS: u64 = 3 << KIND_SHIFT;
const CAPTURE: u64 = 4 << KIND_SHIFT;
const PROCESS: u64 = 5 << KIND_SHIFT;
const ID_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// Many captures, followed as namespaces and interfaces come and go.
#[derive(Debug)]
pub struct Session {
    targets: Vec<Target>,
    config: CaptureConfig,
    rescan: Duration,
    poller: Poller,
    stopper: Stopper,
    /// Kept open to be told of mount table changes.
    _mountinfo: Option<std::fs::File>,
    mounts: Mounts,
    namespaces: BTreeMap<u64, NsEntry>,
    by_inode: HashMap<u64, u64>,
    caps: BTreeMap<u64, Cap>,
    budget: Budget,
    next_id: u64,
    events: VecDeque<Event>,
    said: HashSet<String>,
    own_inode: u64,
    /// Whether an `--all-netns` target needs `/proc` looked through.
    all_netns: bool,
    next_rescan: Option<Instant>,
    deadline: Option<Instant>,
    /// Draining before the end, until then.
    stopping: Option<Instant>,
    halted: bool,
    unmatched: Vec<String>,
    /// The namespace each exact target names.
    exact_inodes: Vec<Option<u64>>,
    last_tick: Instant,
    opened_total: u64,
    /// Scratch room for reading link notifications.
    link_buf: Vec<u8>,
    /// An interface named exactly went down or away: the session is to stop.
    faulted: bool,
    /// What ended the session early (see [`Session::take_fault`]).
    fault: Option<nsring_capture::Error>,
    /// The thread that enters namespaces to open sockets there.
    opener: Opener,
}

impl Session {
    /// Finds what the targets match and opens those captures. A target that names one
    /// namespace and interface exactly must be there (else the error is returned); a pattern
    /// may match nothing (see [`Session::unmatched`]).
    pub fn new(opts: Options) -> Result<Session> {
        crate::sys::raise_nofile();
        let poller = Poller::new()?;
        let stopper = Stopper::new()?;
        poller.add(stopper.fd(), STOP)?;
        let mountinfo = std::fs::File::open("/proc/self/mountinfo").ok();
        if let Some(f) = &mountinfo {
            use std::os::fd::AsFd;
            poller.add_with(f.as_fd(), MOUNTS, EpollFlags::EPOLLPRI)?;
        }
        let own_inode = crate::scan::ns_of(std::process::id()).unwrap_or(0);
        let all_netns = opts
            .targets
            .iter()
            .any(|t| matches!(t.ns, crate::NsMatch::All { .. }));
        let mut s = Session {
            targets: opts.targets,
            config: opts.config,
            rescan: opts.rescan,
            poller,
            stopper,
            _mountinfo: mountinfo,
            mounts: Mounts::read(),
            namespaces: BTreeMap::new(),
            by_inode: HashMap::new(),
            caps: BTreeMap::new(),
            budget: Budget::new(opts.ring),
            next_id: 1,
            events: VecDeque::new(),
            said: HashSet::new(),
            own_inode,
            all_netns,
            next_rescan: None,
            deadline: None,
            stopping: None,
            halted: false,
            unmatched: Vec::new(),
            exact_inodes: Vec::new(),
            last_tick: Instant::now(),
            opened_total: 0,
            link_buf: Vec::new(),
            faulted: false,
            fault: None,
            opener: Opener::new()?,
        };
        s.start()?;
        Ok(s)
    }

    /// A handle that stops [`Session::run`] from any thread or a signal handler.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Stops by itself at `when` (as a [`Stopper`] would).
    pub fn stop_at(&mut self, when: Instant) {
        self.deadline = Some(when);
    }

    /// The targets that matched nothing when the session was made.
    pub fn unmatched(&self) -> &[String] {
        &self.unmatched
    }

    /// Captures open now.
    pub fn open_count(&self) -> usize {
        self.caps.len()
    }

    /// Captures opened since the start.
    pub fn opened_total(&self) -> u64 {
        self.opened_total
    }

    /// Namespaces followed now.
    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }

    /// Ring bytes in use, and the budget.
    pub fn ring_bytes(&self) -> (u64, u64) {
        (self.budget.used(), self.budget.total())
    }

    /// The open captures.
    pub fn open_targets(&self) -> impl Iterator<Item = &TargetInfo> {
        self.caps.values().map(|c| &c.info)
    }

    /// True if a target may still bring new captures (a pattern, `--all-netns`).
    pub fn follows(&self) -> bool {
        self.targets.iter().any(|t| !t.is_exact())
    }

    /// Runs until stopped: a [`Stopper`], the [`Session::stop_at`] deadline, the handler
    /// (through [`Taken::stop`]), or, when every target is exact, the last capture ending.
    /// Every capture is reported closed, with its final counters, before this returns.
    pub fn run<H: Handler>(&mut self, h: &mut H) -> Result<(), H::Error> {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            self.flush(h)?;
            if self.done() {
                break;
            }
            let timeout = self.next_timeout(h.tick_interval());
            let n = self.poller.wait(&mut events, timeout)?;
            for ev in &events[..n] {
                let token = ev.data();
                let id = token & ID_MASK;
                match token & !ID_MASK {
                    CAPTURE => {
                        let err = ev.events().contains(EpollFlags::EPOLLERR);
                        self.flush(h)?;
                        self.read_capture(id, err, h)?;
                    }
                    LINKS => self.on_links(id)?,
                    MOUNTS => self.on_mounts()?,
                    PROCESS => self.on_process_exit(id)?,
                    STOP if self.stopper.take() => self.begin_stop(),
                    _ => {}
                }
                if self.halted {
                    break;
                }
            }
            if self.halted {
                self.close_all_now();
                continue;
            }
            if std::mem::take(&mut self.faulted) {
                self.begin_stop_after(FAULT_DRAIN);
            }
            self.timers(h)?;
        }
        self.flush(h)?;
        Ok(())
    }

    /// Hands queued events to the handler.
    fn flush<H: Handler>(&mut self, h: &mut H) -> Result<(), H::Error> {
        while let Some(e) = self.events.pop_front() {
            match e {
                Event::Opened(info) => h.opened(&info)?,
                Event::Closed(info, stats, why) => h.closed(&info, &stats, &why)?,
                Event::Note(n) => h.note(&n)?,
            }
        }
        Ok(())
    }

    fn done(&self) -> bool {
        if self.halted || self.stopping.is_some() {
            return self.caps.is_empty();
        }
        self.caps.is_empty() && !self.follows()
    }

    /// How long the loop may sleep: until the next drain ends, tick, rescan or deadline.
    fn next_timeout(&self, tick: Option<Duration>) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        at(self.deadline.filter(|_| self.stopping.is_none()));
        at(self.stopping);
        at(self.caps.values().filter_map(|c| c.drain_until).min());
        at(self.next_rescan);
        if !self.caps.is_empty() {
            at(tick.map(|t| self.last_tick + t));
        }
        next.map(|n| n.saturating_duration_since(now))
    }

    /// Starts draining every capture: each is closed two block timeouts from now.
    fn begin_stop(&mut self) {
        self.begin_stop_after(Duration::ZERO);
    }

    /// Starts draining every capture for two block timeouts, or `at_least`.
    fn begin_stop_after(&mut self, at_least: Duration) {
        if self.stopping.is_some() {
            return;
        }
        let until = Instant::now() + self.drain_time().max(at_least);
        self.stopping = Some(until);
        for c in self.caps.values_mut() {
            c.drain(until, CloseReason::Stopped);
        }
    }

    /// Why the session ended early, if an interface named exactly went down or away
    /// (`InterfaceDown` or `InterfaceRemoved`); taken once.
    pub fn take_fault(&mut self) -> Option<nsring_capture::Error> {
        self.fault.take()
    }

    /// Two block timeouts, and a little: the kernel hands over a partly filled block within
    /// one, counted from its last reset.
    fn drain_time(&self) -> Duration {
        2 * Duration::from_millis(u64::from(self.config.ring.block_timeout_ms.max(1)))
            + Duration::from_millis(10)
    }

    /// Deadlines: drains that ended, the stop deadline, ticks, rescans.
    fn timers<H: Handler>(&mut self, h: &mut H) -> Result<(), H::Error> {
        let now = Instant::now();
        if self.deadline.is_some_and(|d| now >= d) {
            self.begin_stop();
        }
        let ended: Vec<u64> = self
            .caps
            .iter()
            .filter(|(_, c)| c.drain_until.is_some_and(|d| now >= d))
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            self.flush(h)?;
            self.read_capture(id, false, h)?;
            self.close_capture(id);
        }
        self.forget_gone_namespaces()?;
        if self.next_rescan.is_some_and(|r| now >= r) {
            self.rescan_processes()?;
        }
        if let Some(every) = h.tick_interval()
            && !self.caps.is_empty()
            && now >= self.last_tick + every
        {
            self.last_tick = now;
            for c in self.caps.values_mut() {
                if let Ok(k) = c.capture.stats() {
                    c.stats.kernel = k;
                }
            }
            self.flush(h)?;
            let open: Vec<(&TargetInfo, &TargetStats)> =
                self.caps.values().map(|c| (&c.info, &c.stats)).collect();
            h.tick(&open)?;
        }
        Ok(())
    }

    /// Hands every ready block of capture `id` to the handler.
    fn read_capture<H: Handler>(&mut self, id: u64, err: bool, h: &mut H) -> Result<(), H::Error> {
        let Some(c) = self.caps.get_mut(&id) else {
            return Ok(());
        };
        if err {
            use std::os::fd::AsFd;
            match nsring_capture::sys::take_socket_error(c.capture.as_fd()) {
                // An interface named exactly went down or away: the session ends, after
                // the rings are drained, with that fault. (Removed or only down is told
                // by the socket's bound ifindex, looked at again when it closes.)
                Ok(libc::ENETDOWN) if c.exact => {
                    let removed = nsring_capture::sys::bound_ifindex(c.capture.as_fd())
                        .map_or(true, |i| i != c.info.ifindex as i32);
                    c.fault.get_or_insert(removed);
                    self.faulted = true;
                }
                // A pattern's interface went down (or is going away: the link
                // notifications say so): one that comes back up is captured again.
                Ok(0) | Ok(libc::ENETDOWN) => {}
                Ok(e) => {
                    let why = std::io::Error::from_raw_os_error(e).to_string();
                    c.drain(Instant::now(), CloseReason::Failed(why));
                }
                Err(e) => c.drain(Instant::now(), CloseReason::Failed(e.to_string())),
            }
        }
        let mut any = false;
        let mut failed = None;
        loop {
            let Cap {
                capture,
                info,
                stats,
                ..
            } = &mut *c;
            let block = match capture.next_block(Some(Duration::ZERO)) {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            };
            let taken = h.block(info, stats, &block)?;
            drop(block);
            any = true;
            stats.packets += taken.packets;
            stats.bytes += taken.bytes;
            capture.add_bytes(taken.bytes);
            if taken.stop {
                self.halted = true;
                break;
            }
        }
        if let Some(why) = failed {
            c.drain(Instant::now(), CloseReason::Failed(why));
        }
        if any && let Ok(k) = c.capture.stats() {
            c.stats.kernel = k;
        }
        Ok(())
    }

    /// Closes every capture at once (the handler asked to stop): blocks not yet read are
    /// not handed over.
    fn close_all_now(&mut self) {
        let ids: Vec<u64> = self.caps.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.caps.get_mut(&id) {
                c.reason = Some(CloseReason::Stopped);
            }
            self.close_capture(id);
        }
    }

    /// Says `note` unless it was said before.
    fn note_once(&mut self, note: Note) {
        if self.said.insert(note.to_string()) {
            self.events.push_back(Event::Note(note));
        }
    }
}

/// Tokens round-trip through the kind and id masks.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        for kind in [STOP, MOUNTS, LINKS, CAPTURE, PROCESS] {
            let t = kind | 12345;
            assert_eq!(t & !ID_MASK, kind);
            assert_eq!(t & ID_MASK, 12345);
        }
    }

    #[test]
    fn notes_read_as_sentences() {
        let n = Note::Refused {
            netns: "ns0".into(),
            interface: "eth1".into(),
            need: 1 << 20,
            budget: 64 << 20,
        };
        assert_eq!(
            n.to_string(),
            "not capturing ns0/eth1: its ring (1024 KiB) does not fit in what is left of the ring budget (64 MiB); raise --ring-budget"
        );
        let n = Note::NothingMatches {
            target: "nsrt-x-*/eth0".into(),
        };
        assert_eq!(n.to_string(), "nothing matches 'nsrt-x-*/eth0' (yet)");
    }
}
