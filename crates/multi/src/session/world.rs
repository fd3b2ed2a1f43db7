//! The session's view of the host: the namespaces it follows, their interfaces, and the
//! captures open on them; what happens when any of them appears or goes.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nsring_capture::{Capture, RingGeometry};
use nsring_netns::{NetNs, NsSpec, PROC_NET_INIT_INO};

use super::{CAPTURE, CloseReason, Event, LINKS, Note, PROCESS, Session, TargetInfo, TargetStats};
use crate::links::{LinkEvent, LinkInfo, LinkWatch};
use crate::scan::{self, Mounts};
use crate::select::{ARPHRD_ETHER, IfMatch, NsMatch, Want};
use crate::sys::pidfd_open;
use crate::{Error, Result};

/// How long the start waits for a namespace's first list of interfaces.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);
/// The key of the `any` capture among a namespace's captures (no interface has index 0).
const ANY: u32 = 0;

/// A namespace the session follows.
#[derive(Debug)]
pub(super) struct NsEntry {
    inode: u64,
    handle: NetNs,
    /// How it is shown (empty: the caller's own namespace, named by no target).
    label: String,
    /// The container it belongs to, as `RUNTIME container SHORTID`, when a target named it.
    container: Option<String>,
    names: Vec<String>,
    /// The targets whose namespace part matches it.
    targets: Vec<usize>,
    watch: LinkWatch,
    links: BTreeMap<u32, LinkInfo>,
    /// Its first list of interfaces has come.
    listed: bool,
    /// Open captures by ifindex (`ANY` for `any`).
    caps: HashMap<u32, u64>,
    /// Watches the one process known to hold it, when nothing mounts it.
    pidfd: Option<OwnedFd>,
    /// Closed when nothing but this process holds it (not for a namespace that an exact
    /// target names and no mount or process was seen to hold).
    watch_holders: bool,
    /// Nothing holds it but this process: its captures are draining.
    gone: bool,
}

/// An open capture.
#[derive(Debug)]
pub(super) struct Cap {
    pub(super) capture: Capture,
    pub(super) info: TargetInfo,
    pub(super) stats: TargetStats,
    ring: RingGeometry,
    slot: u64,
    pub(super) drain_until: Option<Instant>,
    pub(super) reason: Option<CloseReason>,
    /// A target names it exactly: its going down or away ends the session.
    pub(super) exact: bool,
    /// It went away (true) or down (false), named exactly: the session's fault.
    pub(super) fault: Option<bool>,
}

impl Cap {
    /// Ends the capture at `until` (or earlier if already ending), for `why`.
    pub(super) fn drain(&mut self, until: Instant, why: CloseReason) {
        if self.reason.is_none() {
            self.reason = Some(why);
        }
        self.drain_until = Some(self.drain_until.map_or(until, |d| d.min(until)));
    }
}

/// How the start treats a failure: an exact target's is an error, a pattern's a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strict {
    Yes,
    No,
}

impl Session {
    /// The namespaces and captures there are at the start.
    pub(super) fn start(&mut self) -> Result<()> {
        let mut exact_inodes = vec![None; self.targets.len()];
        for (i, t) in self.targets.clone().iter().enumerate() {
            if let NsMatch::Exact(spec) = &t.ns {
                let ns = NetNs::open(spec)?;
                exact_inodes[i] = Some(ns.inode());
                // a bare name that turned out to be a container is shown as the container
                let label = match (spec, ns.container()) {
                    (NsSpec::Current, _) => String::new(),
                    (_, Some(_)) => ns.spec().to_string(),
                    (s, None) => s.to_string(),
                };
                let names = self
                    .mounts
                    .get(ns.inode())
                    .map(|m| m.names.clone())
                    .unwrap_or_default();
                self.exact_inodes = exact_inodes.clone();
                self.adopt(ns, label, names, true)?;
            }
        }
        self.exact_inodes = exact_inodes;
        let mounts = self.mounts.clone();
        self.adopt_mounted(&mounts);
        if self.all_netns {
            self.rescan_processes()?;
        }
        // the first list of every namespace, then what it matches
        let slots: Vec<u64> = self.namespaces.keys().copied().collect();
        let mut matched = vec![false; self.targets.len()];
        for slot in slots {
            self.wait_listed(slot)?;
            self.consider_all(slot, Strict::Yes, &mut matched)?;
        }
        for (i, t) in self.targets.clone().iter().enumerate() {
            if matched[i] {
                continue;
            }
            if let (NsMatch::Exact(spec), IfMatch::Name(name)) = (&t.ns, &t.iface) {
                return Err(nsring_capture::Error::NoInterface {
                    name: name.clone(),
                    ns: spec.to_string(),
                }
                .into());
            }
            self.unmatched.push(t.text.clone());
            self.note_once(Note::NothingMatches {
                target: t.text.clone(),
            });
        }
        Ok(())
    }

    /// Reads namespace `slot`'s link socket until its first list is complete.
    fn wait_listed(&mut self, slot: u64) -> Result<()> {
        let deadline = Instant::now() + LIST_TIMEOUT;
        loop {
            let Some(ns) = self.namespaces.get_mut(&slot) else {
                return Ok(());
            };
            if ns.listed {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::sys(
                    "netlink",
                    format!("listing the interfaces of {}", ns.label),
                    std::io::ErrorKind::TimedOut.into(),
                ));
            }
            let mut fds = [nix::poll::PollFd::new(
                ns.watch.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ms = nix::poll::PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                .unwrap_or(nix::poll::PollTimeout::MAX);
            match nix::poll::poll(&mut fds, ms) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", "netlink", e.into())),
            }
            self.read_links(slot, false)?;
        }
    }

    /// Follows a namespace (or adds targets to one already followed): its link socket
    /// joins the epoll set; its first list of interfaces comes through it.
    fn adopt(
        &mut self,
        handle: NetNs,
        label: String,
        names: Vec<String>,
        exact: bool,
    ) -> Result<u64> {
        let inode = handle.inode();
        let targets = self.matching_targets(inode, &names);
        if let Some(&slot) = self.by_inode.get(&inode) {
            if let Some(ns) = self.namespaces.get_mut(&slot) {
                for t in targets {
                    if !ns.targets.contains(&t) {
                        ns.targets.push(t);
                    }
                }
            }
            return Ok(slot);
        }
        let watch = self.opener.run(&handle, LinkWatch::open)??;
        let slot = self.next_id;
        self.next_id += 1;
        self.poller.add(watch.as_fd(), LINKS | slot)?;
        let own = inode == self.own_inode;
        let mounted = self.mounts.get(inode).is_some();
        // an exact target's namespace that no mount or process is seen to hold (an nsfs
        // file kept open somewhere) is captured until the end
        let watch_holders = !own && (!exact || mounted || scan::a_process_in(inode).is_some());
        self.by_inode.insert(inode, slot);
        let container = handle
            .container()
            .map(|k| format!("{} container {}", k.runtime, k.short_id()));
        self.namespaces.insert(
            slot,
            NsEntry {
                inode,
                handle,
                label,
                container,
                names,
                targets,
                watch,
                links: BTreeMap::new(),
                listed: false,
                caps: HashMap::new(),
                pidfd: None,
                watch_holders,
                gone: false,
            },
        );
        self.check_holders(slot)?;
        Ok(slot)
    }

    /// The targets whose namespace part matches a namespace.
    fn matching_targets(&self, inode: u64, names: &[String]) -> Vec<usize> {
        self.targets
            .iter()
            .enumerate()
            .filter(|(i, t)| match &t.ns {
                NsMatch::Exact(_) => self.exact_inodes.get(*i).copied().flatten() == Some(inode),
                NsMatch::Names(g) => names.iter().any(|n| g.is_match(n)),
                NsMatch::All { include_host } => inode != PROC_NET_INIT_INO || *include_host,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Follows the mounted namespaces that a pattern matches and that are not followed yet,
    /// in the order of their names (then mount points).
    fn adopt_mounted(&mut self, mounts: &Mounts) {
        let mut found: Vec<(String, u64, std::path::PathBuf, Vec<String>)> = Vec::new();
        for (&inode, m) in &mounts.by_inode {
            if self.by_inode.contains_key(&inode)
                || self.matching_targets(inode, &m.names).is_empty()
            {
                continue;
            }
            let Some(path) = m.paths.first() else {
                continue;
            };
            let label = m
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| path.display().to_string());
            found.push((label, inode, path.clone(), m.names.clone()));
        }
        found.sort();
        for (label, inode, path, names) in found {
            self.adopt_path(&path, inode, label, names);
        }
    }

    /// Opens the namespace at `path`, if it still is `inode`, and follows it; if it went
    /// away meanwhile, says so once.
    fn adopt_path(&mut self, path: &Path, inode: u64, label: String, names: Vec<String>) {
        let opened = NetNs::open(&NsSpec::Path(path.to_path_buf()))
            .ok()
            .filter(|ns| ns.inode() == inode);
        let Some(ns) = opened else {
            self.note_once(Note::Vanished { netns: label });
            return;
        };
        if let Err(e) = self.adopt(ns, label.clone(), names, false) {
            if matches!(e, Error::Netns(nsring_netns::Error::NotFound { .. })) {
                self.note_once(Note::Vanished { netns: label });
            } else {
                self.note_once(Note::Failed {
                    netns: label,
                    interface: "*".into(),
                    error: e.to_string(),
                });
            }
        }
    }

    /// `--all-netns`: follows the namespaces that only processes hold.
    pub(super) fn rescan_processes(&mut self) -> Result<()> {
        for (inode, pid) in scan::process_namespaces() {
            if self.by_inode.contains_key(&inode)
                || self.matching_targets(inode, &[]).is_empty()
                || self.stopping.is_some()
            {
                continue;
            }
            let names = self
                .mounts
                .get(inode)
                .map(|m| m.names.clone())
                .unwrap_or_default();
            let label = names
                .first()
                .cloned()
                .unwrap_or_else(|| format!("pid:{pid}"));
            let path = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
            self.adopt_path(&path, inode, label, names);
        }
        self.next_rescan = Some(Instant::now() + self.rescan);
        Ok(())
    }

    /// The mount table changed: new namespaces to follow, followed ones that lost their
    /// last mount (then: a process holds them, or they are gone).
    pub(super) fn on_mounts(&mut self) -> Result<()> {
        let mounts = Mounts::read();
        let slots: Vec<u64> = self.namespaces.keys().copied().collect();
        self.mounts = mounts.clone();
        for slot in slots {
            let Some(ns) = self.namespaces.get_mut(&slot) else {
                continue;
            };
            if let Some(m) = mounts.get(ns.inode) {
                ns.names = m.names.clone();
                if ns.pidfd.is_some() {
                    self.check_holders(slot)?;
                }
            } else if ns.pidfd.is_none() && !ns.gone {
                self.check_holders(slot)?;
            }
        }
        if self.stopping.is_none() {
            self.adopt_mounted(&mounts);
        }
        Ok(())
    }

    /// Whether something but this process holds namespace `slot`: a mount, or a process
    /// (watched through a pidfd). If nothing does, its captures end.
    fn check_holders(&mut self, slot: u64) -> Result<()> {
        let Some(ns) = self.namespaces.get_mut(&slot) else {
            return Ok(());
        };
        if !ns.watch_holders || ns.gone {
            return Ok(());
        }
        if let Some(fd) = ns.pidfd.take() {
            self.poller.remove(fd.as_fd());
        }
        if self.mounts.get(ns.inode).is_some() {
            return Ok(());
        }
        loop {
            let Some(pid) = scan::a_process_in(ns.inode) else {
                self.namespace_gone(slot);
                return Ok(());
            };
            if let Some(fd) = pidfd_open(pid)? {
                self.poller.add(fd.as_fd(), PROCESS | slot)?;
                if let Some(ns) = self.namespaces.get_mut(&slot) {
                    ns.pidfd = Some(fd);
                }
                return Ok(());
            }
        }
    }

    /// The process that held namespace `slot` exited.
    pub(super) fn on_process_exit(&mut self, slot: u64) -> Result<()> {
        self.check_holders(slot)
    }

    /// Nothing but this process holds namespace `slot`: its captures drain, then it is let go.
    fn namespace_gone(&mut self, slot: u64) {
        let until = Instant::now() + self.drain_time();
        let Some(ns) = self.namespaces.get_mut(&slot) else {
            return;
        };
        ns.gone = true;
        for id in ns.caps.values() {
            if let Some(c) = self.caps.get_mut(id) {
                c.drain(until, CloseReason::NamespaceGone);
                if c.exact {
                    c.fault = Some(true);
                    self.faulted = true;
                }
            }
        }
    }

    /// Lets go of namespaces that are gone and whose captures have all ended: their link
    /// socket and handle are closed, so the kernel can tear them down.
    pub(super) fn forget_gone_namespaces(&mut self) -> Result<()> {
        let gone: Vec<u64> = self
            .namespaces
            .iter()
            .filter(|(_, ns)| ns.gone && ns.caps.is_empty())
            .map(|(s, _)| *s)
            .collect();
        for slot in gone {
            if let Some(ns) = self.namespaces.remove(&slot) {
                self.poller.remove(ns.watch.as_fd());
                if let Some(fd) = &ns.pidfd {
                    self.poller.remove(fd.as_fd());
                }
                self.by_inode.remove(&ns.inode);
            }
        }
        Ok(())
    }

    /// Link notifications of namespace `slot`.
    pub(super) fn on_links(&mut self, slot: u64) -> Result<()> {
        self.read_links(slot, true)
    }

    fn read_links(&mut self, slot: u64, open: bool) -> Result<()> {
        let Some(ns) = self.namespaces.get_mut(&slot) else {
            return Ok(());
        };
        let mut events = Vec::new();
        if let Err(e) = ns.watch.read(&mut self.link_buf, &mut events) {
            // the namespace is still followed through its holders; say it once
            let (netns, error) = (ns.label.clone(), e.to_string());
            self.note_once(Note::Failed {
                netns,
                interface: "*".into(),
                error,
            });
            return Ok(());
        }
        let until = Instant::now() + self.drain_time();
        let mut consider = Vec::new();
        let mut first_list = false;
        for e in events {
            let Some(ns) = self.namespaces.get_mut(&slot) else {
                return Ok(());
            };
            let departed: Vec<u32> = match e {
                LinkEvent::Present(info) => {
                    consider.push(info.index);
                    ns.links.insert(info.index, info);
                    Vec::new()
                }
                LinkEvent::Gone(index) => {
                    ns.links.remove(&index);
                    vec![index]
                }
                LinkEvent::Listed(present) => {
                    let gone: Vec<u32> = ns
                        .links
                        .keys()
                        .filter(|i| !present.contains(i))
                        .copied()
                        .collect();
                    for i in &gone {
                        ns.links.remove(i);
                    }
                    if !ns.listed {
                        ns.listed = true;
                        first_list = true;
                    }
                    gone
                }
            };
            for index in departed {
                if let Some(id) = ns.caps.get(&index)
                    && let Some(c) = self.caps.get_mut(id)
                {
                    c.drain(until, CloseReason::InterfaceGone);
                    if c.exact {
                        c.fault = Some(true);
                        self.faulted = true;
                    }
                }
            }
        }
        if !open || self.stopping.is_some() {
            return Ok(());
        }
        let mut matched = vec![false; self.targets.len()];
        if first_list {
            self.consider_all(slot, Strict::No, &mut matched)?;
        } else if self.namespaces.get(&slot).is_some_and(|ns| ns.listed) {
            for index in consider {
                self.consider(slot, index, Strict::No, &mut matched)?;
            }
        }
        Ok(())
    }

    /// Every interface of namespace `slot`, and its `any` capture.
    fn consider_all(&mut self, slot: u64, strict: Strict, matched: &mut [bool]) -> Result<()> {
        let Some(ns) = self.namespaces.get(&slot) else {
            return Ok(());
        };
        let any_targets: Vec<usize> = ns
            .targets
            .iter()
            .copied()
            .filter(|&t| self.targets[t].iface == IfMatch::Any)
            .collect();
        if !any_targets.is_empty() && !ns.caps.contains_key(&ANY) && !ns.gone {
            let exact = any_targets.iter().any(|&t| self.targets[t].is_exact());
            for t in any_targets {
                matched[t] = true;
            }
            let strict = if exact { strict } else { Strict::No };
            self.open_capture(slot, "any".into(), ANY, ARPHRD_ETHER, strict, exact)?;
        }
        let indexes: Vec<u32> = self
            .namespaces
            .get(&slot)
            .map(|ns| ns.links.keys().copied().collect())
            .unwrap_or_default();
        for index in indexes {
            self.consider(slot, index, strict, matched)?;
        }
        Ok(())
    }

    /// Whether interface `index` of namespace `slot` is to be captured, and if so opens it.
    fn consider(
        &mut self,
        slot: u64,
        index: u32,
        strict: Strict,
        matched: &mut [bool],
    ) -> Result<()> {
        let Some(ns) = self.namespaces.get(&slot) else {
            return Ok(());
        };
        let Some(link) = ns.links.get(&index) else {
            return Ok(());
        };
        if ns.gone || ns.caps.contains_key(&index) {
            return Ok(());
        }
        let mut want = Want::No;
        let mut exact = false;
        for &t in &ns.targets {
            match self.targets[t].iface.wants(&link.name, link.link_type) {
                Want::Capture => {
                    matched[t] = true;
                    exact |= self.targets[t].is_exact();
                    want = Want::Capture;
                }
                Want::Skip(why) => {
                    matched[t] = true;
                    if want == Want::No {
                        want = Want::Skip(why);
                    }
                }
                Want::No => {}
            }
        }
        match want {
            Want::Capture => {
                let (name, lt) = (link.name.clone(), link.link_type);
                let strict = if exact { strict } else { Strict::No };
                self.open_capture(slot, name, index, lt, strict, exact)
            }
            Want::Skip(why) => {
                let note = Note::Skipped {
                    netns: ns.label.clone(),
                    interface: link.name.clone(),
                    why,
                };
                self.note_once(note);
                Ok(())
            }
            Want::No => Ok(()),
        }
    }

    /// Opens a capture on interface `name` (index `index`, `ANY` for all) of namespace
    /// `slot`, with a ring from the budget.
    fn open_capture(
        &mut self,
        slot: u64,
        name: String,
        index: u32,
        link_type: u16,
        strict: Strict,
        exact: bool,
    ) -> Result<()> {
        let Some(ns) = self.namespaces.get(&slot) else {
            return Ok(());
        };
        let Some(ring) = self.budget.take() else {
            let (need, budget) = (self.budget.preferred_bytes(), self.budget.total());
            if strict == Strict::Yes {
                return Err(Error::Budget {
                    target: label(&ns.label, &name),
                    need,
                    left: self.budget.left(),
                    budget,
                });
            }
            let note = Note::Refused {
                netns: ns.label.clone(),
                interface: name,
                need,
                budget,
            };
            self.note_once(note);
            return Ok(());
        };
        let mut cfg = self.config.clone();
        cfg.interface = Some(name.clone());
        cfg.ring = ring;
        let opened = match self
            .opener
            .run(&ns.handle, move |ns| Capture::open(ns, &cfg))
        {
            Ok(r) => r,
            Err(e) => {
                self.budget.give_back(&ring);
                if strict == Strict::Yes {
                    return Err(e);
                }
                let note = Note::Failed {
                    netns: ns.label.clone(),
                    interface: name,
                    error: e.to_string(),
                };
                self.note_once(note);
                return Ok(());
            }
        };
        let capture = match opened {
            Ok(c) if index == ANY || c.ifindex() == index => c,
            Ok(_) => {
                // replaced under the same name meanwhile: its own notification follows
                self.budget.give_back(&ring);
                return Ok(());
            }
            Err(e) => {
                self.budget.give_back(&ring);
                if strict == Strict::Yes {
                    return Err(e.into());
                }
                if !matches!(e, nsring_capture::Error::NoInterface { .. }) {
                    let note = Note::Failed {
                        netns: ns.label.clone(),
                        interface: name,
                        error: e.to_string(),
                    };
                    self.note_once(note);
                }
                return Ok(());
            }
        };
        let unrecorded = capture.record_error().map(|e| Note::Unrecorded {
            error: e.to_string(),
        });
        let id = self.next_id;
        self.next_id += 1;
        if let Err(e) = self.poller.add(capture.as_fd(), CAPTURE | id) {
            self.budget.give_back(&ring);
            return Err(e);
        }
        let info = TargetInfo {
            id,
            netns: ns.label.clone(),
            netns_inode: ns.inode,
            netns_names: ns.names.clone(),
            container: ns.container.clone(),
            interface: name,
            ifindex: capture.ifindex(),
            link_type,
            ring_bytes: ring.total_bytes(),
        };
        if let Some(ns) = self.namespaces.get_mut(&slot) {
            ns.caps.insert(index, id);
        }
        self.events.push_back(Event::Opened(info.clone()));
        self.opened_total += 1;
        self.caps.insert(
            id,
            Cap {
                capture,
                info,
                stats: TargetStats::default(),
                ring,
                slot,
                drain_until: None,
                reason: None,
                exact,
                fault: None,
            },
        );
        if let Some(note) = unrecorded {
            self.note_once(note);
        }
        Ok(())
    }

    /// Closes capture `id` with its final counters and gives its ring back; an interface
    /// that is still there and matches (it came back while this one drained) is opened anew.
    pub(super) fn close_capture(&mut self, id: u64) {
        let Some(mut c) = self.caps.remove(&id) else {
            return;
        };
        self.poller.remove(c.capture.as_fd());
        if let Ok(k) = c.capture.stats() {
            c.stats.kernel = k;
        }
        self.budget.give_back(&c.ring);
        let index = if c.info.interface == "any" {
            ANY
        } else {
            c.info.ifindex
        };
        let mut again = false;
        if let Some(ns) = self.namespaces.get_mut(&c.slot) {
            if ns.caps.get(&index) == Some(&id) {
                ns.caps.remove(&index);
            }
            again = !ns.gone && index != ANY && ns.links.contains_key(&index);
        }
        let mut why = c.reason.take().unwrap_or(CloseReason::Stopped);
        if let Some(mut removed) = c.fault {
            // a deleted interface goes down first: gone from the socket's binding now?
            removed |= nsring_capture::sys::bound_ifindex(c.capture.as_fd())
                .map_or(true, |i| i != c.info.ifindex as i32);
            let name = c.info.interface.clone();
            let ns = match c.info.netns.as_str() {
                "" => NsSpec::Current.to_string(),
                n => n.to_owned(),
            };
            let e = if removed {
                why = CloseReason::InterfaceGone;
                nsring_capture::Error::InterfaceRemoved { name, ns }
            } else {
                why = CloseReason::InterfaceDown;
                nsring_capture::Error::InterfaceDown { name, ns }
            };
            self.fault.get_or_insert(e);
        }
        let slot = c.slot;
        self.events
            .push_back(Event::Closed(c.info.clone(), c.stats, why));
        drop(c);
        if again && self.stopping.is_none() && !self.halted {
            let mut matched = vec![false; self.targets.len()];
            let _ = self.consider(slot, index, Strict::No, &mut matched);
        }
    }
}

fn label(ns: &str, iface: &str) -> String {
    if ns.is_empty() {
        iface.to_owned()
    } else {
        format!("{ns}/{iface}")
    }
}
