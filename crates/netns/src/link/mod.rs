//! Interfaces in a namespace, over route netlink: list, look up, create veth pairs, move,
//! bring up and down, delete, add addresses. The subset of `ip link`/`ip addr` nsring needs.
//!
//! Every operation opens a route-netlink socket *inside* the namespace (with [`NetNs::run`],
//! or directly when the namespace is the caller's own), then talks to it from the calling
//! thread. Every request asks for an acknowledgement and a refusal comes back as an error
//! that carries the kernel's errno: `ENODEV` becomes [`Error::LinkNotFound`], `EEXIST`
//! [`Error::LinkExists`] (or [`Error::AddrExists`]), anything else [`Error::Netlink`] with the
//! errno as its [`io::Error`] source (so `EPERM` can be turned into advice about
//! `CAP_NET_ADMIN`).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use serde::Serialize;

use crate::{Error, NETNS_RUN_DIR, NetNs, NsSpec, Result};

mod stats;
pub use stats::LinkStats;

/// The kernel's limit for an interface name, without the trailing NUL (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;

/// How [`Peer::netns`] names the initial namespace when `pid:1` does not reach it.
pub const INITIAL: &str = "(initial)";

/// One interface, as `RTM_GETLINK` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// The interface index (`ifindex`), unique within its namespace.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// `IFLA_INFO_KIND`: `"veth"`, `"bridge"`, `"macvlan"`, ...; `None` for a physical
    /// interface (or `lo`).
    pub kind: Option<String>,
    /// The hardware address, `"aa:bb:cc:dd:ee:ff"`; `None` if the interface has none.
    pub mac: Option<String>,
    /// The MTU in bytes.
    pub mtu: u32,
    /// `IFF_UP`: the administrative state (`nsring link set DEV up`).
    pub admin_up: bool,
    /// RFC 2863 operational state: `"up"`, `"down"`, `"unknown"`, `"lowerlayerdown"`, ...
    pub oper_state: String,
    /// `ARPHRD_*` (1 = Ethernet, 772 = loopback).
    pub link_type: u16,
    /// How many sockets and users asked for promiscuous mode (0: not promiscuous).
    pub promiscuity: u32,
    /// Receive queues.
    pub num_rx_queues: u32,
    /// Transmit queues.
    pub num_tx_queues: u32,
    /// The other end of a veth pair, where known.
    pub peer: Option<Peer>,
    /// The index of the bridge or bond this interface is enslaved to.
    pub master: Option<u32>,
    /// Its traffic counters (`None` if the kernel sent none).
    pub stats: Option<LinkStats>,
}

/// The other end of a veth pair.
///
/// `netns_id` and `netns` are both `None` when the peer is in the same namespace.
#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    /// Its ifindex, in its own namespace.
    pub index: u32,
    /// Its name, if it could be looked up.
    pub name: Option<String>,
    /// The id the listed namespace gives to the peer's namespace (`IFLA_LINK_NETNSID`).
    pub netns_id: Option<i32>,
    /// The peer's namespace: its iproute2 name; `pid:1` for the initial namespace (or
    /// `(initial)` where PID 1 is not in it, in some sandboxes); `(current)` for the caller's
    /// own if the initial namespace cannot be found; `None` if it could not be resolved.
    pub netns: Option<String>,
}

/// Checks an interface name the way the kernel does (`dev_valid_name`): 1 to 15 bytes, not
/// `.` or `..`, no `/`, `:`, whitespace or NUL.
pub fn validate_ifname(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("is empty")
    } else if name.len() > IFNAME_MAX {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is '.' or '..'")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains(':') {
        Some("contains ':'")
    } else if name.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidIfName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// All interfaces of a namespace, by index, with veth peers resolved where possible.
pub fn list(ns: &NetNs) -> Result<Vec<Link>> {
    let mut rtnl = Rtnl::open(ns)?;
    let (mut links, raw) = dump(&mut rtnl, ns)?;
    let names: HashMap<u32, String> = links.iter().map(|l| (l.index, l.name.clone())).collect();
    let mut resolver = PeerResolver::new(ns);
    for link in &mut links {
        if let Some(p) = raw.get(&link.index) {
            link.peer = Some(resolver.resolve(&mut rtnl, p, &names));
        }
    }
    Ok(links)
}

/// All interfaces of a namespace, by index, with their counters, in one netlink dump:
/// [`list`] without looking up veth peers (every `peer` is `None`), for callers that ask
/// often and about many namespaces (the exporter, the extcap interface list).
pub fn list_plain(ns: &NetNs) -> Result<Vec<Link>> {
    let mut rtnl = Rtnl::open(ns)?;
    Ok(dump(&mut rtnl, ns)?.0)
}

/// `RTM_GETLINK` dump: the links by index, and the raw peer of each veth by owner index.
fn dump(rtnl: &mut Rtnl, ns: &NetNs) -> Result<(Vec<Link>, HashMap<u32, RawPeer>)> {
    let mut attempt = 0;
    let replies = loop {
        match rtnl.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        ) {
            // The link table changed during the dump: ask again, like iproute2 would.
            Err(e) if e.kind() == io::ErrorKind::Interrupted && attempt < 5 => attempt += 1,
            r => {
                break r.map_err(|e| {
                    netlink_err("RTM_GETLINK", format!("listing links in {}", label(ns)), e)
                })?;
            }
        }
    };
    let mut links = Vec::new();
    let mut raw: HashMap<u32, RawPeer> = HashMap::new();
    for reply in replies {
        if let RouteNetlinkMessage::NewLink(msg) = reply {
            let (link, peer) = parse_link(&msg);
            if let Some(p) = peer {
                raw.insert(p.owner, p);
            }
            links.push(link);
        }
    }
    links.sort_by_key(|l| l.index);
    Ok((links, raw))
}

/// One interface by name. A missing one is [`Error::LinkNotFound`].
pub fn get(ns: &NetNs, name: &str) -> Result<Link> {
    validate_ifname(name)?;
    let mut rtnl = Rtnl::open(ns)?;
    let msg = get_msg(&mut rtnl, ns, name)?;
    let (mut link, raw) = parse_link(&msg);
    if let Some(raw) = raw {
        let mut names = HashMap::new();
        if raw.netns_id.is_none() {
            // Same namespace: look the peer up by index.
            if let Ok(m) = get_by_index(&mut rtnl, raw.index) {
                names.insert(raw.index, parse_link(&m).0.name);
            }
        }
        link.peer = Some(PeerResolver::new(ns).resolve(&mut rtnl, &raw, &names));
    }
    Ok(link)
}

/// Moves interface `name` of `ns` into `target` (like `ip -n NS link set NAME netns TARGET`).
///
/// An interface of the same name in `target` is [`Error::LinkExists`]; interfaces that
/// cannot change namespace (`lo`, bridges, ...) are refused by the kernel with `EINVAL`.
pub fn set_netns(ns: &NetNs, name: &str, target: &NetNs) -> Result<()> {
    validate_ifname(name)?;
    let mut rtnl = Rtnl::open(ns)?;
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes
        .push(LinkAttribute::NetNsFd(target.as_fd().as_raw_fd()));
    rtnl.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
        .map(drop)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => not_found(ns, name),
            Some(libc::EEXIST) => Error::LinkExists {
                name: name.to_owned(),
                ns: target.spec().to_string(),
            },
            Some(libc::EINVAL) => netlink_err(
                "RTM_SETLINK",
                format!(
                    "moving '{name}' from {} to {} (this kind of interface cannot be moved)",
                    label(ns),
                    label(target)
                ),
                e,
            ),
            _ => netlink_err(
                "RTM_SETLINK",
                format!("moving '{name}' from {} to {}", label(ns), label(target)),
                e,
            ),
        })
}

/// Sets the administrative state of an interface (like `ip link set NAME up|down`).
pub fn set_up(ns: &NetNs, name: &str, up: bool) -> Result<()> {
    validate_ifname(name)?;
    let mut rtnl = Rtnl::open(ns)?;
    let mut msg = LinkMessage::default();
    msg.header.flags = if up {
        LinkFlags::Up
    } else {
        LinkFlags::empty()
    };
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    rtnl.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK)
        .map(drop)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => not_found(ns, name),
            _ => netlink_err(
                "RTM_SETLINK",
                format!(
                    "setting '{name}' {} in {}",
                    if up { "up" } else { "down" },
                    label(ns)
                ),
                e,
            ),
        })
}

/// Creates a veth pair `name` (in `ns`) and `peer` (in `peer_ns`, or in `ns` if `None`),
/// both down, in one atomic request: on failure nothing is created.
pub fn add_veth(ns: &NetNs, name: &str, peer: &str, peer_ns: Option<&NetNs>) -> Result<()> {
    validate_ifname(name)?;
    validate_ifname(peer)?;
    let mut rtnl = Rtnl::open(ns)?;
    let mut peer_msg = LinkMessage::default();
    peer_msg
        .attributes
        .push(LinkAttribute::IfName(peer.to_owned()));
    if let Some(pns) = peer_ns {
        peer_msg
            .attributes
            .push(LinkAttribute::NetNsFd(pns.as_fd().as_raw_fd()));
    }
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
    ]));
    let peer_side = peer_ns.unwrap_or(ns);
    rtnl.request(
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    )
    .map(drop)
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => {
            // Which of the two names is taken? Ask; if `name` is free it was the peer.
            let (taken, in_ns) = if get(ns, name).is_ok() {
                (name, ns)
            } else {
                (peer, peer_side)
            };
            Error::LinkExists {
                name: taken.to_owned(),
                ns: in_ns.spec().to_string(),
            }
        }
        _ => netlink_err(
            "RTM_NEWLINK",
            format!(
                "creating veth '{name}' in {} with peer '{peer}' in {}",
                label(ns),
                label(peer_side)
            ),
            e,
        ),
    })
}

/// Deletes a virtual interface (like `ip link del NAME`). Deleting one end of a veth pair
/// deletes both. Physical interfaces cannot be deleted (the kernel says `EOPNOTSUPP`).
pub fn del(ns: &NetNs, name: &str) -> Result<()> {
    validate_ifname(name)?;
    let mut rtnl = Rtnl::open(ns)?;
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    rtnl.request(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK)
        .map(drop)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => not_found(ns, name),
            Some(libc::EOPNOTSUPP) => netlink_err(
                "RTM_DELLINK",
                format!(
                    "deleting '{name}' in {} (only virtual interfaces can be deleted; move a physical one instead)",
                    label(ns)
                ),
                e,
            ),
            _ => netlink_err("RTM_DELLINK", format!("deleting '{name}' in {}", label(ns)), e),
        })
}

/// Adds an address to an interface (like `ip addr add ADDR/PREFIX dev DEV`).
pub fn add_addr(ns: &NetNs, dev: &str, addr: IpAddr, prefix_len: u8) -> Result<()> {
    validate_ifname(dev)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(Error::InvalidPrefix { addr, prefix_len });
    }
    let mut rtnl = Rtnl::open(ns)?;
    let index = get_msg(&mut rtnl, ns, dev)?.header.index;
    let mut msg = AddressMessage::default();
    msg.header.family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    msg.header.prefix_len = prefix_len;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr));
    msg.attributes.push(AddressAttribute::Address(addr));
    rtnl.request(
        RouteNetlinkMessage::NewAddress(msg),
        NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    )
    .map(drop)
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => Error::AddrExists {
            addr: format!("{addr}/{prefix_len}"),
            dev: dev.to_owned(),
            ns: ns.spec().to_string(),
        },
        Some(libc::ENODEV) => not_found(ns, dev),
        _ => netlink_err(
            "RTM_NEWADDR",
            format!("adding {addr}/{prefix_len} to '{dev}' in {}", label(ns)),
            e,
        ),
    })
}

/// How a namespace is named in error messages. Deliberately avoids the word "namespace" in
/// netlink errors: the CLI reads an `EPERM` on a namespace operation as a lack of
/// `CAP_SYS_ADMIN`, while link operations need `CAP_NET_ADMIN`.
fn label(ns: &NetNs) -> String {
    match ns.spec() {
        NsSpec::Current => "the current netns".to_owned(),
        spec => format!("netns '{spec}'"),
    }
}

fn not_found(ns: &NetNs, name: &str) -> Error {
    Error::LinkNotFound {
        name: name.to_owned(),
        ns: ns.spec().to_string(),
    }
}

fn netlink_err(request: &'static str, what: String, source: io::Error) -> Error {
    Error::Netlink {
        request,
        what,
        source,
    }
}

fn get_msg(rtnl: &mut Rtnl, ns: &NetNs, name: &str) -> Result<LinkMessage> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    let replies = rtnl
        .request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => not_found(ns, name),
            _ => netlink_err(
                "RTM_GETLINK",
                format!("looking up '{name}' in {}", label(ns)),
                e,
            ),
        })?;
    first_link(replies).ok_or_else(|| not_found(ns, name))
}

fn get_by_index(rtnl: &mut Rtnl, index: u32) -> io::Result<LinkMessage> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    let replies = rtnl.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK)?;
    first_link(replies).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
}

fn first_link(replies: Vec<RouteNetlinkMessage>) -> Option<LinkMessage> {
    replies.into_iter().find_map(|r| match r {
        RouteNetlinkMessage::NewLink(m) => Some(m),
        _ => None,
    })
}

/// What a link message says about a veth peer, before names are looked up.
#[derive(Debug, Clone, PartialEq)]
struct RawPeer {
    owner: u32,
    index: u32,
    netns_id: Option<i32>,
}

fn oper_state(state: State) -> String {
    match state {
        State::Unknown => "unknown".into(),
        State::NotPresent => "notpresent".into(),
        State::Down => "down".into(),
        State::LowerLayerDown => "lowerlayerdown".into(),
        State::Testing => "testing".into(),
        State::Dormant => "dormant".into(),
        State::Up => "up".into(),
        State::Other(n) => format!("state{n}"),
        other => other.to_string().to_lowercase(),
    }
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_link(msg: &LinkMessage) -> (Link, Option<RawPeer>) {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        admin_up: msg.header.flags.contains(LinkFlags::Up),
        oper_state: "unknown".into(),
        link_type: u16::from(msg.header.link_layer_type),
        promiscuity: 0,
        num_rx_queues: 0,
        num_tx_queues: 0,
        peer: None,
        master: None,
        stats: None,
    };
    let mut peer_index = None;
    let mut peer_nsid = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Address(a) if !a.is_empty() => link.mac = Some(format_mac(a)),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::OperState(s) => link.oper_state = oper_state(*s),
            LinkAttribute::Promiscuity(p) => link.promiscuity = *p,
            LinkAttribute::NumRxQueues(q) => link.num_rx_queues = *q,
            LinkAttribute::NumTxQueues(q) => link.num_tx_queues = *q,
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::Link(i) => peer_index = Some(*i),
            LinkAttribute::LinkNetNsId(id) => peer_nsid = Some(*id),
            LinkAttribute::Stats64(st) => link.stats = Some(LinkStats::from(st)),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let peer = match (link.kind.as_deref(), peer_index) {
        (Some("veth"), Some(index)) if index != 0 => Some(RawPeer {
            owner: link.index,
            index,
            netns_id: peer_nsid,
        }),
        _ => None,
    };
    (link, peer)
}

/// Maps the namespace ids a namespace gives to its peers back to namespaces, by asking
/// (`RTM_GETNSID` with `NETNSA_FD`) for the id of every named namespace and of the initial
/// one. Built once, on first need; best effort.
struct PeerResolver<'a> {
    ns: &'a NetNs,
    ids: Option<HashMap<i32, (String, NetNs)>>,
    sockets: HashMap<i32, Option<Rtnl>>,
}

impl<'a> PeerResolver<'a> {
    fn new(ns: &'a NetNs) -> Self {
        PeerResolver {
            ns,
            ids: None,
            sockets: HashMap::new(),
        }
    }

    fn resolve(&mut self, rtnl: &mut Rtnl, raw: &RawPeer, local: &HashMap<u32, String>) -> Peer {
        let Some(id) = raw.netns_id else {
            return Peer {
                index: raw.index,
                name: local.get(&raw.index).cloned(),
                netns_id: None,
                netns: None,
            };
        };
        let ids = self.ids.get_or_insert_with(|| candidate_ids(rtnl, self.ns));
        let Some((spelling, target)) = ids.get(&id) else {
            return Peer {
                index: raw.index,
                name: None,
                netns_id: Some(id),
                netns: None,
            };
        };
        let sock = self
            .sockets
            .entry(id)
            .or_insert_with(|| Rtnl::open(target).ok());
        let name = sock
            .as_mut()
            .and_then(|s| get_by_index(s, raw.index).ok())
            .map(|m| parse_link(&m).0.name);
        Peer {
            index: raw.index,
            name,
            netns_id: Some(id),
            netns: Some(spelling.clone()),
        }
    }
}

fn candidate_ids(rtnl: &mut Rtnl, ns: &NetNs) -> HashMap<i32, (String, NetNs)> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) {
        for entry in dir.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Ok(other) = NetNs::open(&NsSpec::Name(name.clone())) {
                candidates.push((name, other));
            }
        }
    }
    match NetNs::initial() {
        Ok(initial) => {
            let spelling = match initial.spec() {
                NsSpec::Pid(1) => "pid:1".to_owned(),
                // PID 1 lives elsewhere (a sandbox): no spelling reaches it; describe it.
                _ => INITIAL.to_owned(),
            };
            candidates.push((spelling, initial));
        }
        Err(_) => {
            if let Ok(here) = NetNs::current() {
                candidates.push((NsSpec::Current.to_string(), here));
            }
        }
    }
    let mut ids = HashMap::new();
    for (spelling, other) in candidates {
        if other.same_as(ns) {
            continue;
        }
        if let Ok(Some(id)) = nsid_of(rtnl, &other) {
            // Prefer a name over `pid:1` for the same namespace: names come first.
            ids.entry(id).or_insert((spelling, other));
        }
    }
    ids
}

/// The id `rtnl`'s namespace gives to `other` (`RTM_GETNSID` with `NETNSA_FD`, as
/// `ip netns list` asks), `None` if it has not assigned one.
pub(crate) fn nsid_of(rtnl: &mut Rtnl, other: &impl AsFd) -> io::Result<Option<i32>> {
    let mut msg = NsidMessage::default();
    let fd = u32::try_from(other.as_fd().as_raw_fd())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    msg.attributes.push(NsidAttribute::Fd(fd));
    let replies = rtnl.request(RouteNetlinkMessage::GetNsId(msg), NLM_F_ACK)?;
    for r in replies {
        if let RouteNetlinkMessage::NewNsId(m) = r {
            for a in m.attributes {
                if let NsidAttribute::Id(id) = a {
                    return Ok((id >= 0).then_some(id));
                }
            }
        }
    }
    Ok(None)
}

/// A route-netlink socket opened inside one namespace (it keeps talking to that namespace
/// from any thread). Other crates use it for the requests this module does not wrap
/// (traffic-control qdiscs and filters).
#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// Opens the socket inside `ns`.
    pub fn open(ns: &NetNs) -> Result<Rtnl> {
        fn socket() -> io::Result<Socket> {
            let mut sock = Socket::new(NETLINK_ROUTE)?;
            sock.bind_auto()?;
            sock.connect(&SocketAddr::new(0, 0))?;
            Ok(sock)
        }
        // Entering a namespace needs CAP_SYS_ADMIN, even the caller's own: don't, if
        // it is the caller's own (so `nsring link list` works unprivileged).
        let here = matches!(ns.spec(), NsSpec::Current)
            || NetNs::current().is_ok_and(|cur| cur.same_as(ns));
        let sock = if here { socket() } else { ns.run(socket)? };
        let sock =
            sock.map_err(|e| Error::sys("socket(NETLINK_ROUTE)", ns.spec().to_string(), e))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one request and collects the replies up to the final ACK (or `NLMSG_DONE` for a
    /// dump). A NACK becomes the kernel's errno; an inconsistent dump becomes `EINTR`.
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = seq;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;

        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut offset = 0;
            while offset < data.len() {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&data[offset..])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.payload {
                    NetlinkPayload::Done(done) => {
                        if done.code < 0 {
                            return Err(io::Error::from_raw_os_error(-done.code));
                        }
                        if interrupted {
                            return Err(io::Error::from(io::ErrorKind::Interrupted));
                        }
                        return Ok(replies);
                    }
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(replies),
                            Some(_) => Err(err.to_io()),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
