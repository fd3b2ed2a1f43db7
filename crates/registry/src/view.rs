//! One namespace's view, put together: its interfaces, every packet socket the kernel knows
//! in it (packet_diag) with its owners, and nsring's records joined to those sockets by
//! socket inode. `nsring ls` prints it; the demo shows it.
//!
//! Only a namespace that cannot be entered or listed is an error; a missing packet_diag, an
//! unreadable or corrupt record are [`NamespaceView::problems`], and the rest is shown.

use std::collections::BTreeMap;

use nsring_netns::NetNs;
use nsring_netns::link::Link;
use serde::Serialize;

use crate::diag::{self, PacketSocket};
use crate::owners::{self, SocketOwners};
use crate::record::{self, RecordView, RunDir, SocketMode};

/// Which namespace a view is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NsId {
    /// How the user named it (`ns0`, `pid:42`, `(current)`), or its names.
    pub label: String,
    /// The nsfs inode.
    pub inode: u64,
    /// The netns cookie, if it could be learned.
    pub cookie: Option<u64>,
    /// Whether this is the initial namespace.
    pub initial: bool,
    /// The container whose namespace it is, where known (`podman:web1`), as one label for
    /// the surfaces that want one (the exporter); `ls` prints its own container objects.
    #[serde(skip)]
    pub container: Option<String>,
}

/// An interface and the number of packet sockets bound to it.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    #[serde(flatten)]
    /// The interface.
    pub link: Link,
    /// Packet sockets bound to this interface (ours and others).
    pub sockets: usize,
}

/// One packet socket: ours (with a record), someone else's (kernel only), or ours with no
/// kernel entry (packet_diag unavailable, or the socket is being closed).
#[derive(Debug, Clone, Serialize)]
pub struct SocketEntry {
    /// The socket inode (`socket:[INODE]`).
    pub inode: u64,
    /// Opened by nsring (it has a record).
    pub ours: bool,
    /// Our record: configuration and live counters.
    pub record: Option<RecordView>,
    /// What the kernel says about it.
    pub kernel: Option<PacketSocket>,
    /// Packets it received, where known: ours from the record; `None` for another
    /// process's socket, whose count the kernel does not tell (packet_diag has none).
    pub packets: Option<u64>,
    /// Packets the kernel dropped for it, where known: ours from the record; another
    /// process's only when it has no ring, where every drop lands in the socket's
    /// `sk_drops`. A full ring's drops are counted where nobody else can read them, so for
    /// another process's ring socket (tcpdump's) this is `None`, never a 0 that means
    /// "unknown".
    pub drops: Option<u64>,
}

impl SocketEntry {
    /// Ours: with our record (and the kernel's entry, if it has one yet).
    pub fn ours(record: RecordView, kernel: Option<PacketSocket>) -> SocketEntry {
        // a transmit-only socket receives nothing: no receive counts, rather than zeros
        let rx = record.info.mode != SocketMode::Tx;
        SocketEntry {
            inode: record.header.socket_inode,
            ours: true,
            packets: rx.then_some(record.counters.packets),
            drops: rx.then_some(record.counters.drops),
            record: Some(record),
            kernel,
        }
    }

    /// Another process's socket, as the kernel reports it.
    pub fn other(k: PacketSocket) -> SocketEntry {
        let ringless = k.info.is_some() && k.rx_ring.is_none();
        SocketEntry {
            inode: k.inode,
            ours: false,
            record: None,
            packets: None,
            drops: k
                .memory
                .and_then(|m| m.drops)
                .filter(|_| ringless)
                .map(u64::from),
            kernel: Some(k),
        }
    }

    /// `app[pid]` for ours, the owners from /proc (`tcpdump[4242]`) for others, `-` if
    /// unknown.
    pub fn owner_text(&self) -> String {
        if let Some(r) = &self.record {
            return format!("{}[{}]", r.info.app_name, r.header.pid);
        }
        self.kernel
            .as_ref()
            .map_or_else(|| "-".to_owned(), PacketSocket::owners_text)
    }

    /// The bound interface's name, `any`, or `if#N` when the name is unknown.
    pub fn ifname(&self) -> String {
        if let Some(r) = &self.record {
            return r.info.ifname().to_owned();
        }
        match &self.kernel {
            Some(k) if k.ifindex == 0 => "any".into(),
            Some(k) => k
                .ifname
                .clone()
                .unwrap_or_else(|| format!("if#{}", k.ifindex)),
            None => "-".into(),
        }
    }

    /// The bound interface index (0 = any).
    pub fn ifindex(&self) -> u32 {
        match (&self.kernel, &self.record) {
            (Some(k), _) => k.ifindex,
            (None, Some(r)) => r.info.ifindex,
            (None, None) => 0,
        }
    }
}

/// Everything `nsring ls` shows about one namespace.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceView {
    /// Which namespace this is.
    pub namespace: NsId,
    /// Its interfaces, with the number of packet sockets bound to each.
    pub devices: Vec<Device>,
    /// Ours first (by record name), then the others by inode.
    pub sockets: Vec<SocketEntry>,
    /// How many packet sockets the kernel reported (None: packet_diag failed).
    pub kernel_sockets: Option<usize>,
    /// What could not be read, one line each ("record 1-eth1.0 is corrupt: ...").
    pub problems: Vec<String>,
    /// Stale records (owner gone) removed while building this view.
    pub removed_stale: Vec<String>,
}

impl NamespaceView {
    /// The number of nsring sockets in it.
    pub fn ours(&self) -> usize {
        self.sockets.iter().filter(|s| s.ours).count()
    }

    /// One socket by record name, or by socket inode (a number).
    pub fn find_socket(&self, key: &str) -> Option<&SocketEntry> {
        let inode = key.parse::<u64>().ok();
        self.sockets
            .iter()
            .find(|s| s.record.as_ref().is_some_and(|r| r.name == key) || Some(s.inode) == inode)
    }

    /// One interface by name.
    pub fn find_device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.link.name == name)
    }
}

/// Errors of [`namespace_view`]: the namespace's interfaces could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot list the interfaces of namespace '{label}'")]
    /// The interfaces could not be listed.
    Links {
        /// The namespace, as the caller named it.
        label: String,
        #[source]
        /// Why.
        source: nsring_netns::Error,
    },
}

/// How [`namespace_view_with`] builds a view.
#[derive(Debug, Clone, Copy)]
pub struct ViewOptions<'a> {
    /// Look up each veth's peer (its name and namespace): one more netlink exchange per
    /// peer namespace. `ls` shows peers; the exporter does not need them.
    pub peers: bool,
    /// The socket owners from one scan of `/proc`, shared by the views of many namespaces;
    /// `None` scans for this view alone.
    pub owners: Option<&'a SocketOwners>,
}

impl Default for ViewOptions<'_> {
    fn default() -> Self {
        ViewOptions {
            peers: true,
            owners: None,
        }
    }
}

/// Builds the view of `ns`, named `label` in the output, with the records of `run`.
pub fn namespace_view(ns: &NetNs, label: &str, run: &RunDir) -> Result<NamespaceView, Error> {
    namespace_view_with(ns, label, run, &ViewOptions::default())
}

/// [`namespace_view`] with [`ViewOptions`].
pub fn namespace_view_with(
    ns: &NetNs,
    label: &str,
    run: &RunDir,
    opts: &ViewOptions<'_>,
) -> Result<NamespaceView, Error> {
    let links = if opts.peers {
        nsring_netns::link::list(ns)
    } else {
        nsring_netns::link::list_plain(ns)
    }
    .map_err(|source| Error::Links {
        label: label.to_owned(),
        source,
    })?;
    let mut problems = Vec::new();
    let cookie = match record::netns_cookie(ns) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!(
                "cannot learn the namespace's cookie: {}",
                chain(&e)
            ));
            None
        }
    };
    let kernel = match kernel_sockets(ns, &links, opts.owners) {
        Ok(k) => Some(k),
        Err(e) => {
            problems.push(format!(
                "cannot list the kernel's packet sockets: {}",
                chain(&e)
            ));
            None
        }
    };
    let scan = match run.scan(ns.inode(), cookie) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("cannot read nsring's records: {}", chain(&e)));
            record::DirScan::default()
        }
    };
    problems.extend(scan.problems.iter().map(ToString::to_string));

    let kernel_count = kernel.as_ref().map(Vec::len);
    let mut by_inode: BTreeMap<u64, PacketSocket> = kernel
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.inode, s))
        .collect();
    let mut sockets: Vec<SocketEntry> = Vec::new();
    let mut records = scan.records;
    records.sort_by(|a, b| a.name.cmp(&b.name));
    for r in records {
        let kernel = by_inode.remove(&r.header.socket_inode);
        sockets.push(SocketEntry::ours(r, kernel));
    }
    sockets.extend(by_inode.into_values().map(SocketEntry::other));

    let devices = links
        .into_iter()
        .map(|link| Device {
            sockets: sockets.iter().filter(|s| s.ifindex() == link.index).count(),
            link,
        })
        .collect();
    Ok(NamespaceView {
        namespace: NsId {
            label: label.to_owned(),
            inode: ns.inode(),
            cookie,
            initial: ns.is_initial(),
            container: None,
        },
        devices,
        sockets,
        kernel_sockets: kernel_count,
        problems,
        removed_stale: scan.removed,
    })
}

/// The kernel's packet sockets of `ns`, their interfaces named from `links` (the
/// namespace's own list, so no second trip into it) and their owners from `owners` (or a
/// scan of `/proc` of its own).
fn kernel_sockets(
    ns: &NetNs,
    links: &[Link],
    owners: Option<&SocketOwners>,
) -> Result<Vec<PacketSocket>, diag::Error> {
    let msgs = diag::dump(ns, diag::PACKET_SHOW_ALL)?;
    let scanned;
    let owners = match owners {
        Some(o) => o,
        None if msgs.is_empty() => &SocketOwners::default(),
        None => {
            scanned = owners::scan()?;
            &scanned
        }
    };
    let name = |i: u32| links.iter().find(|l| l.index == i).map(|l| l.name.clone());
    let mut out: Vec<PacketSocket> = msgs
        .iter()
        .map(|m| PacketSocket::from_diag(m, name, owners))
        .collect();
    out.sort_by_key(|s| s.inode);
    Ok(out)
}

/// An error and its causes on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
