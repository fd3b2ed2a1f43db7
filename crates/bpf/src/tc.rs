//! The fallback where the kernel has no TCX (before Linux 6.6): a `clsact` qdisc and
//! `cls_bpf` filters in direct-action mode, over route netlink (what `tc qdisc add dev X
//! clsact` and `tc filter add dev X ingress bpf da fd N` do).
//!
//! Unlike a TCX link, a filter outlives the process that added it. So every filter of
//! ours is named after its owner (`nsring-count:<pid-ns>:<pid>:<start time>:<q>`, `q` = 1
//! if that process created the qdisc), and [`sweep`] removes those whose owner is gone,
//! and the qdisc they created once nothing else is on it. A clsact qdisc that was there
//! before is shared, never replaced or removed; only our own filters go.
//!
//! Priorities: 1 at ingress (first, like a packet socket sees arriving packets) and 65535
//! at egress (last). Each of our filters has its own handle; several counts share the
//! priority (one `cls_bpf` instance runs all its filters in turn).

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use nsring_netns::NetNs;
use nsring_netns::link::Rtnl;

use crate::program::Program;
use crate::translate::Hook;

/// `TC_H_CLSACT`, the clsact qdisc's parent; its handle is `ffff:0`.
const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
const CLSACT_HANDLE: u32 = 0xFFFF_0000;
/// `TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / TC_H_MIN_EGRESS)`.
const INGRESS_PARENT: u32 = 0xFFFF_FFF2;
const EGRESS_PARENT: u32 = 0xFFFF_FFF3;
/// `htons(ETH_P_ALL)`, the low half of `tcm_info`.
const ETH_P_ALL_BE: u32 = 0x0300;
const INGRESS_PRIO: u16 = 1;
const EGRESS_PRIO: u16 = 0xFFFF;
/// The start of our filters' names.
pub const NAME_PREFIX: &str = "nsring-count:";

/// Who added a filter, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The owner's PID namespace (nsfs inode): its PID means something only there.
    pub pid_ns: u64,
    /// The owner's PID there.
    pub pid: u32,
    /// The owner's start time (clock ticks after boot, `/proc/PID/stat` field 22), so a
    /// reused PID is not mistaken for the owner.
    pub start: u64,
    /// The owner created the clsact qdisc.
    pub created_qdisc: bool,
}

impl Tag {
    /// The calling process's tag.
    pub fn mine(created_qdisc: bool) -> io::Result<Tag> {
        let pid = std::process::id();
        Ok(Tag {
            pid_ns: pid_ns_inode("self")?,
            pid,
            start: start_time("self")?,
            created_qdisc,
        })
    }

    /// The filter name that carries the tag.
    pub fn name(&self) -> String {
        format!(
            "{NAME_PREFIX}{}:{}:{}:{}",
            self.pid_ns,
            self.pid,
            self.start,
            u8::from(self.created_qdisc)
        )
    }

    /// The tag of a filter name, if it is one of ours.
    pub fn parse(name: &str) -> Option<Tag> {
        let mut it = name.strip_prefix(NAME_PREFIX)?.split(':');
        let tag = Tag {
            pid_ns: it.next()?.parse().ok()?,
            pid: it.next()?.parse().ok()?,
            start: it.next()?.parse().ok()?,
            created_qdisc: it.next()? == "1",
        };
        it.next().is_none().then_some(tag)
    }

    /// Whether the owner still runs: `None` if it lives in another PID namespace (its PID
    /// cannot be looked up from here).
    pub fn alive(&self) -> Option<bool> {
        if pid_ns_inode("self").ok()? != self.pid_ns {
            return None;
        }
        let pid = self.pid.to_string();
        Some(start_time(&pid).is_ok_and(|s| s == self.start))
    }
}

fn pid_ns_inode(pid: &str) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/pid")).map(|m| m.ino())
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold spaces).
fn start_time(pid: &str) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/PID/stat");
    let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    // after ')': state is field 3, so start time (22) is the 20th word
    rest.split_whitespace()
        .nth(19)
        .and_then(|w| w.parse().ok())
        .ok_or_else(bad)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filter {
    parent: u32,
    prio: u16,
    handle: u32,
}

fn header(msg: &mut TcMessage, ifindex: u32, parent: u32, handle: u32, info: u32) {
    msg.header.index = ifindex as i32;
    msg.header.parent = TcHandle::from(parent);
    msg.header.handle = TcHandle::from(handle);
    msg.header.info = info;
}

fn filter_msg(ifindex: u32, f: Filter) -> TcMessage {
    let mut m = TcMessage::default();
    header(
        &mut m,
        ifindex,
        f.parent,
        f.handle,
        (u32::from(f.prio) << 16) | ETH_P_ALL_BE,
    );
    m.attributes.push(TcAttribute::Kind("bpf".into()));
    m
}

fn clsact_msg(ifindex: u32) -> TcMessage {
    let mut m = TcMessage::default();
    header(&mut m, ifindex, TC_H_CLSACT, CLSACT_HANDLE, 0);
    m.attributes.push(TcAttribute::Kind("clsact".into()));
    m
}

/// Our filters on one interface; dropping this removes them (and the qdisc, if we made it
/// and nothing else is on it).
#[derive(Debug)]
pub struct ClsactFilters {
    rtnl: Rtnl,
    ifindex: u32,
    filters: Vec<Filter>,
    created_qdisc: bool,
}

impl ClsactFilters {
    /// Adds a filter per program (its hook says where) on `ifindex`, through `rtnl` (open
    /// in the interface's namespace), creating the clsact qdisc if there is none.
    pub fn attach(rtnl: Rtnl, ifindex: u32, progs: &[&Program]) -> io::Result<ClsactFilters> {
        let mut me = ClsactFilters {
            rtnl,
            ifindex,
            filters: Vec::new(),
            created_qdisc: false,
        };
        match me.rtnl.request(
            RouteNetlinkMessage::NewQueueDiscipline(clsact_msg(ifindex)),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        ) {
            Ok(_) => me.created_qdisc = true,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                if !has_clsact(&mut me.rtnl, ifindex)? {
                    return Err(io::Error::other(
                        "the interface has an 'ingress' qdisc, not clsact",
                    ));
                }
            }
            Err(e) => return Err(e),
        }
        let name = Tag::mine(me.created_qdisc)?.name();
        let mut next_handle = (std::process::id() & 0xffff) << 16;
        for prog in progs {
            let (parent, prio) = match prog.hook() {
                Hook::Egress => (EGRESS_PARENT, EGRESS_PRIO),
                _ => (INGRESS_PARENT, INGRESS_PRIO),
            };
            loop {
                next_handle = next_handle.wrapping_add(1).max(1);
                let f = Filter {
                    parent,
                    prio,
                    handle: next_handle,
                };
                let mut m = filter_msg(ifindex, f);
                m.attributes.push(TcAttribute::Options(vec![
                    TcOption::Bpf(TcFilterBpfOption::ProgFd(prog.as_fd().as_raw_fd() as u32)),
                    TcOption::Bpf(TcFilterBpfOption::ProgName(name.clone())),
                    TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
                ]));
                match me.rtnl.request(
                    RouteNetlinkMessage::NewTrafficFilter(m),
                    NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                ) {
                    Ok(_) => {
                        me.filters.push(f);
                        break;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                    Err(e) => return Err(e), // `me` drops: what was added goes
                }
            }
        }
        Ok(me)
    }

    /// Removes our filters (and the qdisc if we created it and it is now empty).
    pub fn detach(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for f in std::mem::take(&mut self.filters) {
            let r = self.rtnl.request(
                RouteNetlinkMessage::DelTrafficFilter(filter_msg(self.ifindex, f)),
                NLM_F_ACK,
            );
            match r {
                // gone with its interface: fine
                Err(e) if e.raw_os_error() != Some(libc::ENODEV) => {
                    first_err.get_or_insert(e);
                }
                _ => {}
            }
        }
        if std::mem::take(&mut self.created_qdisc) {
            remove_qdisc_if_empty(&mut self.rtnl, self.ifindex);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Where the filters are: `(hook, priority, handle)`.
    pub fn describe(&self) -> Vec<String> {
        self.filters
            .iter()
            .map(|f| {
                let hook = if f.parent == EGRESS_PARENT {
                    "egress"
                } else {
                    "ingress"
                };
                format!("{hook} pref {} handle {:#x}", f.prio, f.handle)
            })
            .collect()
    }
}

impl Drop for ClsactFilters {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

fn has_clsact(rtnl: &mut Rtnl, ifindex: u32) -> io::Result<bool> {
    Ok(clsact_ifindexes(rtnl)?.contains(&ifindex))
}

/// The interfaces of the socket's namespace that have a clsact qdisc.
fn clsact_ifindexes(rtnl: &mut Rtnl) -> io::Result<Vec<u32>> {
    let replies = rtnl.request(
        RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()),
        NLM_F_DUMP,
    )?;
    Ok(replies
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewQueueDiscipline(m)
                if m.attributes
                    .iter()
                    .any(|a| matches!(a, TcAttribute::Kind(k) if k == "clsact")) =>
            {
                u32::try_from(m.header.index).ok()
            }
            _ => None,
        })
        .collect())
}

/// Every filter at one of the clsact's hooks: (filter, kind, bpf program name).
fn filters(
    rtnl: &mut Rtnl,
    ifindex: u32,
    parent: u32,
) -> io::Result<Vec<(Filter, String, Option<String>)>> {
    let mut ask = TcMessage::default();
    header(&mut ask, ifindex, parent, 0, 0);
    let replies = rtnl.request(RouteNetlinkMessage::GetTrafficFilter(ask), NLM_F_DUMP)?;
    let mut out = Vec::new();
    for r in replies {
        let RouteNetlinkMessage::NewTrafficFilter(m) = r else {
            continue;
        };
        let handle = u32::from(m.header.handle);
        if handle == 0 {
            continue; // the classifier instance itself, not a filter
        }
        let mut kind = String::new();
        let mut name = None;
        for a in &m.attributes {
            match a {
                TcAttribute::Kind(k) => kind = k.clone(),
                TcAttribute::Options(opts) => {
                    for o in opts {
                        if let TcOption::Bpf(TcFilterBpfOption::ProgName(n)) = o {
                            name = Some(n.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let f = Filter {
            parent,
            prio: (m.header.info >> 16) as u16,
            handle,
        };
        out.push((f, kind, name));
    }
    Ok(out)
}

fn remove_qdisc_if_empty(rtnl: &mut Rtnl, ifindex: u32) {
    let empty = [INGRESS_PARENT, EGRESS_PARENT]
        .iter()
        .all(|&p| filters(rtnl, ifindex, p).is_ok_and(|f| f.is_empty()));
    if empty {
        let _ = rtnl.request(
            RouteNetlinkMessage::DelQueueDiscipline(clsact_msg(ifindex)),
            NLM_F_ACK,
        );
    }
}

/// A leftover filter [`sweep`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    /// The interface it was on.
    pub ifindex: u32,
    /// `ingress` or `egress`.
    pub hook: &'static str,
    /// The PID of the nsring process that left it.
    pub owner_pid: u32,
    /// The clsact qdisc the dead owner had created went too (nothing else was on it).
    pub qdisc_removed: bool,
}

/// Removes the filters that nsring processes which are gone left in `ns` (killed before
/// they could remove them), and the clsact qdiscs they created once empty.
pub fn sweep(ns: &NetNs) -> io::Result<Vec<Swept>> {
    let mut rtnl = Rtnl::open(ns).map_err(io::Error::other)?;
    let mut out = Vec::new();
    for ifindex in clsact_ifindexes(&mut rtnl)? {
        let mut created = false;
        let start = out.len();
        for (parent, hook) in [(INGRESS_PARENT, "ingress"), (EGRESS_PARENT, "egress")] {
            for (f, kind, name) in filters(&mut rtnl, ifindex, parent)? {
                let Some(tag) = name.as_deref().and_then(Tag::parse) else {
                    continue;
                };
                if kind != "bpf" || tag.alive() != Some(false) {
                    continue;
                }
                let del = RouteNetlinkMessage::DelTrafficFilter(filter_msg(ifindex, f));
                if rtnl.request(del, NLM_F_ACK).is_ok() {
                    created |= tag.created_qdisc;
                    out.push(Swept {
                        ifindex,
                        hook,
                        owner_pid: tag.pid,
                        qdisc_removed: false,
                    });
                }
            }
        }
        if created {
            remove_qdisc_if_empty(&mut rtnl, ifindex);
            let gone = !has_clsact(&mut rtnl, ifindex)?;
            for s in &mut out[start..] {
                s.qdisc_removed = gone;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_know_the_living() {
        let me = Tag::mine(true).unwrap();
        assert_eq!(Tag::parse(&me.name()), Some(me));
        assert_eq!(me.alive(), Some(true));
        let dead = Tag {
            start: me.start + 1,
            ..me
        };
        assert_eq!(dead.alive(), Some(false), "a reused PID is not the owner");
        let elsewhere = Tag {
            pid_ns: me.pid_ns + 1,
            ..me
        };
        assert_eq!(elsewhere.alive(), None);
        for bad in [
            "nsring-count:1:2:3",
            "other:1:2:3:0",
            "nsring-count:1:2:3:0:9",
            "",
        ] {
            assert_eq!(Tag::parse(bad), None, "{bad}");
        }
        assert!(start_time("self").unwrap() > 0);
    }
}
