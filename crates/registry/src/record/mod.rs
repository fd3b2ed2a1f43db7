//! nsring's own socket records: PF_RING's `/proc/net/pf_ring/<pid>-<ifname>.<id>`, kept in
//! user space under `/run/nsring/<netns-inode>/`.
//!
//! Every socket the `nsring-capture` crate opens is recorded in the directory of the namespace the
//! *socket* lives in (keyed by that namespace's nsfs inode, and checked against its netns
//! cookie, which unlike the inode is never reused), so a process in the initial namespace
//! capturing on `ns0/eth1` shows in `ns0`'s view.
//!
//! # Life of a record
//! - The owner creates the file under a hidden temporary name, takes an exclusive `flock`
//!   on it, writes it whole, maps its first page, and only then renames it to its final
//!   name (`renameat2(RENAME_NOREPLACE)`): a reader never sees a half-written record.
//! - The owner keeps the counters current with relaxed atomic stores into the mapped page
//!   (the `nsring-capture` crate does one per ring block, never one per packet, and no system call).
//! - Dropping the [`Record`] unlinks the file and closes it, which releases the lock.
//! - A reader that *can* take the lock knows the owner is gone (killed, crashed): the record
//!   is stale and the reader removes it. A directory whose namespace no longer exists holds
//!   only stale records, so [`RunDir::sweep`] empties and removes it.
//!
//! # Safety of the directory
//! `/run/nsring` and its subdirectories are created 0755, files 0644, and refused if they are
//! not directories owned by the caller (or root) that only the owner can write. Everything
//! below the base directory is opened relative to an open directory descriptor with
//! `O_NOFOLLOW`: a symlink planted in the tree is reported, never followed.
//!
//! # Files
//! The on-disk format and its versions are in [`format`](mod@format); the directory, the writer and
//! the reader in `dir`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nsring_netns::NetNs;
use serde::{Deserialize, Serialize};

use crate::sys;

mod dir;
pub mod format;

pub use dir::{DirScan, Problem, Record, RecordView, RunDir, SweepReport};
use format::field;
pub use format::{
    COMPAT_VERSION, COUNTER_SLOTS, FORMAT_VERSION, MAGIC, MAX_META, PAGE, Unreadable, decode,
    encode,
};

/// Where the records live.
pub const RUN_DIR: &str = "/run/nsring";
/// The name of each namespace directory's metadata file (`inode=..`, `cookie=..`).
pub const NS_META: &str = "netns";

/// The counter slots, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Packets handed to the application (the sum of the ring blocks' `num_pkts`).
    Packets = 0,
    /// Wire bytes of those packets, as the application counted them.
    Bytes = 1,
    /// Ring blocks handed to the application.
    Blocks = 2,
    /// The kernel's `tp_packets` (packets that passed the filter, drops included).
    KernelPackets = 3,
    /// Packets the kernel dropped because the ring was full.
    Drops = 4,
    /// Times the kernel froze the ring queue.
    Freezes = 5,
    /// Frames sent.
    Sent = 6,
    /// Frames that failed to send.
    SendErrors = 7,
    /// When the counters were last updated (ns since the Unix epoch).
    UpdatedUnixNs = 8,
}

impl Counter {
    /// The byte offset of this counter in the file and in the mapped page.
    pub const fn offset(self) -> usize {
        field::COUNTERS + 8 * self as usize
    }
}

/// A snapshot of a record's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Packets handed to the application.
    pub packets: u64,
    /// Wire bytes of those packets.
    pub bytes: u64,
    /// Ring blocks handed to the application.
    pub blocks: u64,
    /// The kernel's count of packets that passed the filter (drops included).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full.
    pub drops: u64,
    /// Times the kernel froze the ring queue.
    pub freezes: u64,
    /// Frames sent.
    pub sent: u64,
    /// Frames that failed to send.
    pub send_errors: u64,
    /// When the counters were last updated (ns since the Unix epoch; 0: never).
    pub updated_unix_ns: u64,
}

impl Counters {
    fn from_slots(get: impl Fn(Counter) -> u64) -> Counters {
        Counters {
            packets: get(Counter::Packets),
            bytes: get(Counter::Bytes),
            blocks: get(Counter::Blocks),
            kernel_packets: get(Counter::KernelPackets),
            drops: get(Counter::Drops),
            freezes: get(Counter::Freezes),
            sent: get(Counter::Sent),
            send_errors: get(Counter::SendErrors),
            updated_unix_ns: get(Counter::UpdatedUnixNs),
        }
    }

    fn slots(&self) -> [(Counter, u64); 9] {
        [
            (Counter::Packets, self.packets),
            (Counter::Bytes, self.bytes),
            (Counter::Blocks, self.blocks),
            (Counter::KernelPackets, self.kernel_packets),
            (Counter::Drops, self.drops),
            (Counter::Freezes, self.freezes),
            (Counter::Sent, self.sent),
            (Counter::SendErrors, self.send_errors),
            (Counter::UpdatedUnixNs, self.updated_unix_ns),
        ]
    }
}

/// What a socket does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketMode {
    /// Receive only (a capture).
    Rx,
    /// Transmit only.
    Tx,
    /// Both.
    RxTx,
}

impl fmt::Display for SocketMode {
    /// PF_RING's wording: `RX only`, `TX only`, `RX+TX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketMode::Rx => "RX only",
            SocketMode::Tx => "TX only",
            SocketMode::RxTx => "RX+TX",
        })
    }
}

/// A fanout group (PF_RING's cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The group id.
    pub id: u16,
    /// `flow`, `rr`, `cpu`, `rollover`, `random`, `queue`.
    pub kind: String,
}

/// The ring's shape and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingInfo {
    /// Bytes per block.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Frame size.
    pub frame_size: u32,
    /// Milliseconds after which a partly filled block is handed over.
    pub block_timeout_ms: u32,
    /// Bytes of ring memory (block size × count).
    pub memory_bytes: u64,
}

/// What a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// A packet socket (capture or transmit); the header names its inode.
    #[default]
    Socket,
    /// An in-kernel counter: eBPF programs at the interface's traffic-control hooks that
    /// count what the filter accepts (`nsring count --backend kernel`). The header names
    /// the packet socket that holds the interface promiscuous (and anchors the record in
    /// the namespace); the owner mirrors the kernel's counters into the record's page.
    KernelCounter,
}

/// The eBPF side of an in-kernel counter, numbered as `bpftool` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BpfInfo {
    /// `tcx` (a bpf_link per hook, gone with the process) or `clsact` (cls_bpf filters).
    pub attach: String,
    /// `ingress`, `egress` or both, in the order of `prog_ids`.
    pub hooks: Vec<String>,
    /// The programs' ids, one per hook.
    pub prog_ids: Vec<u32>,
    /// TCX link ids (empty for clsact).
    pub link_ids: Vec<u32>,
    /// The per-CPU counter map's id.
    pub map_id: u32,
    /// eBPF instructions per program.
    pub insns: usize,
}

/// The configuration part of a record, written once when the socket is opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInfo {
    /// The application's name (`nsring-count`, or what a library user chose).
    pub app_name: String,
    /// The bound interfaces; empty means every interface of the namespace (`any`).
    pub interfaces: Vec<String>,
    /// The bound interface's index, 0 for any.
    pub ifindex: u32,
    /// Receive, transmit or both.
    pub mode: SocketMode,
    /// `in`, `out` or `both`.
    pub direction: String,
    /// Bytes of each packet copied to the application.
    pub snaplen: u32,
    /// Whether the socket put the interface in promiscuous mode.
    pub promiscuous: bool,
    /// The filter in tcpdump syntax, as given.
    pub filter: Option<String>,
    /// The fanout group (PF_RING's cluster), if any.
    pub cluster: Option<Cluster>,
    /// The ring's shape (receive sockets).
    pub ring: Option<RingInfo>,
    /// `tpacket_v3` (later `af_xdp`).
    pub backend: String,
    /// When the socket was opened, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// The namespace as the owner named it (`ns0`, `pid:42`, `(current)`).
    pub netns: String,
    /// The nsring version of the owner.
    pub version: String,
    /// A packet socket or an in-kernel counter (records written before this field existed
    /// are sockets).
    #[serde(default)]
    pub kind: RecordKind,
    /// The programs and map of an in-kernel counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<BpfInfo>,
}

impl RecordInfo {
    /// A record of a receive socket on `interface` (`None`: any), started now, with the
    /// rest at neutral values for the caller to fill in.
    pub fn new(app_name: impl Into<String>, interface: Option<&str>) -> RecordInfo {
        RecordInfo {
            app_name: app_name.into(),
            interfaces: interface.map(str::to_owned).into_iter().collect(),
            ifindex: 0,
            mode: SocketMode::Rx,
            direction: "both".into(),
            snaplen: 0,
            promiscuous: false,
            filter: None,
            cluster: None,
            ring: None,
            backend: "tpacket_v3".into(),
            started_unix_ns: unix_ns_now(),
            netns: "(current)".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: RecordKind::Socket,
            bpf: None,
        }
    }

    /// The interface part of the record's name: the bound interface, or `any`.
    pub fn ifname(&self) -> &str {
        self.interfaces.first().map_or("any", String::as_str)
    }
}

/// The fixed header of a record: who owns it and which socket of which namespace it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The owner's PID, in the owner's PID namespace.
    pub pid: u32,
    /// The nsfs inode of the socket's namespace.
    pub netns_inode: u64,
    /// The namespace's netns cookie (never reused, unlike the inode).
    pub netns_cookie: u64,
    /// The socket's inode: the same number packet_diag and `/proc/PID/fd` report.
    pub socket_inode: u64,
}

/// Errors of creating, reading and sweeping records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call on the registry directory or a record failed.
    #[error("{call} failed on {}", path.display())]
    Sys {
        /// The system call.
        call: &'static str,
        /// The file or directory it was called on.
        path: PathBuf,
        #[source]
        /// The errno.
        source: io::Error,
    },
    /// The directory is not safe to use (a symlink, another owner, writable by others).
    #[error("refusing to use {}: {why}; remove it (it is recreated as needed)", path.display())]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The interface name cannot be part of a file name.
    #[error("cannot record a socket on interface '{0}': not a valid interface name")]
    BadInterface(String),
    /// The metadata does not fit.
    #[error("record metadata of {0} bytes is larger than {MAX_META} bytes (a very long filter?)")]
    TooLarge(usize),
    /// Entering the namespace (to learn its cookie) failed.
    #[error(transparent)]
    Netns(#[from] nsring_netns::Error),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn sys_err(call: &'static str, path: &Path) -> impl FnOnce(Errno) -> Error {
    let path = path.to_path_buf();
    move |e| Error::Sys {
        call,
        path,
        source: io::Error::from(e),
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ns_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
}

/// The netns cookie of `ns`, from a socket made inside it.
pub fn netns_cookie(ns: &NetNs) -> Result<u64> {
    let path = PathBuf::from(format!("netns inode {}", ns.inode()));
    ns.run(|| {
        let s = std::os::unix::net::UnixDatagram::unbound().map_err(|source| Error::Sys {
            call: "socket(AF_UNIX)",
            path: path.clone(),
            source,
        })?;
        sys::netns_cookie(&s).map_err(|source| Error::Sys {
            call: "getsockopt(SO_NETNS_COOKIE)",
            path,
            source,
        })
    })?
}

/// Checks a record's file name: `<pid>-<ifname>.<id>`, one path component, not hidden.
pub fn valid_record_name(name: &str) -> bool {
    let Some((pid, rest)) = name.split_once('-') else {
        return false;
    };
    let Some((ifname, id)) = rest.rsplit_once('.') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|c| c.is_ascii_digit())
        && !id.is_empty()
        && id.bytes().all(|c| c.is_ascii_digit())
        && !ifname.is_empty()
        && ifname.len() <= 15
        && !ifname.contains('/')
        && !ifname.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names() {
        for ok in ["4242-eth1.0", "1-any.12", "77-veth-a.b.3"] {
            assert!(valid_record_name(ok), "{ok}");
        }
        for bad in [
            "", "netns", ".tmp-1-0", "x-eth1.0", "1-eth1", "1-.0", "1-eth1.x",
        ] {
            assert!(!valid_record_name(bad), "{bad}");
        }
    }
}
