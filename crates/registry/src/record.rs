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
//! # File format (little-endian)
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `NSRING\0R` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | offset of the counter area (64) |
//! | 16 | 4 | number of counter slots (16) |
//! | 20 | 4 | offset of the metadata (256) |
//! | 24 | 4 | length of the metadata |
//! | 28 | 4 | reserved (0) |
//! | 32 | 8 | owner PID (as the owner sees it) |
//! | 40 | 8 | netns inode |
//! | 48 | 8 | netns cookie |
//! | 56 | 8 | socket inode |
//! | 64 | 128 | counters: 16 u64 slots, see [`Counter`] |
//! | 256 | len | metadata: [`RecordInfo`] as JSON |
//!
//! The file is at least one page (4096 bytes) long, so the mapped page covers the whole
//! counter area.

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags, openat, renameat2};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use nsring_netns::NetNs;
use serde::{Deserialize, Serialize};

use crate::sys::{self, SharedPage};

/// Where the records live.
pub const RUN_DIR: &str = "/run/nsring";
/// The first 8 bytes of every record.
pub const MAGIC: [u8; 8] = *b"NSRING\0R";
/// The format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The size of the mapped page, and the smallest record file.
pub const PAGE: usize = 4096;
/// The number of u64 counter slots (room to grow without a new format).
pub const COUNTER_SLOTS: usize = 16;
/// The largest metadata a reader accepts (a long filter is a few KiB).
pub const MAX_META: usize = 256 * 1024;
/// The name of each namespace directory's metadata file (`inode=..`, `cookie=..`).
pub const NS_META: &str = "netns";

/// Byte ranges of the header.
mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..12;
    pub const COUNTERS_OFF: Range<usize> = 12..16;
    pub const COUNTERS_NUM: Range<usize> = 16..20;
    pub const META_OFF: Range<usize> = 20..24;
    pub const META_LEN: Range<usize> = 24..28;
    pub const RESERVED: Range<usize> = 28..32;
    pub const PID: Range<usize> = 32..40;
    pub const NETNS_INODE: Range<usize> = 40..48;
    pub const NETNS_COOKIE: Range<usize> = 48..56;
    pub const SOCKET_INODE: Range<usize> = 56..64;
    /// Where the counters start.
    pub const COUNTERS: usize = 64;
    /// Where the metadata starts.
    pub const META: usize = 256;
}

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
    pub packets: u64,
    pub bytes: u64,
    pub blocks: u64,
    pub kernel_packets: u64,
    pub drops: u64,
    pub freezes: u64,
    pub sent: u64,
    pub send_errors: u64,
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
    pub id: u16,
    /// `flow`, `rr`, `cpu`, `rollover`, `random`, `queue`.
    pub kind: String,
}

/// The ring's shape and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingInfo {
    pub block_size: u32,
    pub block_count: u32,
    pub frame_size: u32,
    pub block_timeout_ms: u32,
    /// Bytes of ring memory (block size × count).
    pub memory_bytes: u64,
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
    pub mode: SocketMode,
    /// `in`, `out` or `both`.
    pub direction: String,
    pub snaplen: u32,
    pub promiscuous: bool,
    /// The filter in tcpdump syntax, as given.
    pub filter: Option<String>,
    pub cluster: Option<Cluster>,
    pub ring: Option<RingInfo>,
    /// `tpacket_v3` (later `af_xdp`).
    pub backend: String,
    /// When the socket was opened, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// The namespace as the owner named it (`ns0`, `pid:42`, `(current)`).
    pub netns: String,
    /// The nsring version of the owner.
    pub version: String,
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
    pub netns_inode: u64,
    pub netns_cookie: u64,
    /// The socket's inode: the same number packet_diag and `/proc/PID/fd` report.
    pub socket_inode: u64,
}

/// Why a record file could not be read: the text says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Corrupt(pub String);

/// Errors of creating, reading and sweeping records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call on the registry directory or a record failed.
    #[error("{call} failed on {}", path.display())]
    Sys {
        call: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The directory is not safe to use (a symlink, another owner, writable by others).
    #[error("refusing to use {}: {why}; remove it (it is recreated as needed)", path.display())]
    Unsafe { path: PathBuf, why: String },
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

// ---------------------------------------------------------------------------------------
// Encoding (pure)
// ---------------------------------------------------------------------------------------

/// The bytes of a new record file: header, counters, metadata, zero padding to whole pages.
pub fn encode(header: &Header, counters: &Counters, info: &RecordInfo) -> Result<Vec<u8>> {
    let meta = serde_json::to_vec(info).expect("RecordInfo always serializes");
    if meta.len() > MAX_META {
        return Err(Error::TooLarge(meta.len()));
    }
    let len = (field::META + meta.len()).div_ceil(PAGE) * PAGE;
    let mut b = vec![0u8; len];
    b[field::MAGIC].copy_from_slice(&MAGIC);
    b[field::VERSION].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[field::COUNTERS_OFF].copy_from_slice(&(field::COUNTERS as u32).to_le_bytes());
    b[field::COUNTERS_NUM].copy_from_slice(&(COUNTER_SLOTS as u32).to_le_bytes());
    b[field::META_OFF].copy_from_slice(&(field::META as u32).to_le_bytes());
    b[field::META_LEN].copy_from_slice(&(meta.len() as u32).to_le_bytes());
    b[field::PID].copy_from_slice(&u64::from(header.pid).to_le_bytes());
    b[field::NETNS_INODE].copy_from_slice(&header.netns_inode.to_le_bytes());
    b[field::NETNS_COOKIE].copy_from_slice(&header.netns_cookie.to_le_bytes());
    b[field::SOCKET_INODE].copy_from_slice(&header.socket_inode.to_le_bytes());
    for (c, v) in counters.slots() {
        b[c.offset()..c.offset() + 8].copy_from_slice(&v.to_le_bytes());
    }
    b[field::META..field::META + meta.len()].copy_from_slice(&meta);
    Ok(b)
}

fn u32_at(b: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_le_bytes(b[r].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Parses a record file's bytes. Any outside bytes are accepted without panicking; what is
/// wrong is said in the [`Corrupt`] text.
pub fn decode(b: &[u8]) -> Result<(Header, Counters, RecordInfo), Corrupt> {
    let bad = |m: String| Err(Corrupt(m));
    if b.len() < field::META {
        return bad(format!(
            "truncated: {} bytes, the header alone is {}",
            b.len(),
            field::META
        ));
    }
    if b[field::MAGIC] != MAGIC {
        return bad("not an nsring record (wrong magic bytes)".into());
    }
    let version = u32_at(b, field::VERSION);
    if version != FORMAT_VERSION {
        return bad(format!(
            "format version {version}; this nsring reads version {FORMAT_VERSION}"
        ));
    }
    let coff = u32_at(b, field::COUNTERS_OFF) as usize;
    let cnum = u32_at(b, field::COUNTERS_NUM) as usize;
    let moff = u32_at(b, field::META_OFF) as usize;
    let mlen = u32_at(b, field::META_LEN) as usize;
    if coff != field::COUNTERS || cnum != COUNTER_SLOTS || moff != field::META {
        return bad(format!(
            "unexpected layout (counters at {coff}, {cnum} slots, metadata at {moff})"
        ));
    }
    if u32_at(b, field::RESERVED) != 0 {
        return bad("reserved header bytes are not zero".into());
    }
    if mlen > MAX_META {
        return bad(format!("metadata length {mlen} is larger than {MAX_META}"));
    }
    if moff + mlen > b.len() {
        return bad(format!(
            "truncated: metadata of {mlen} bytes at {moff} runs past the end of the {}-byte file",
            b.len()
        ));
    }
    let pid = u64_at(b, field::PID.start);
    let header = Header {
        pid: u32::try_from(pid).map_err(|_| Corrupt(format!("PID {pid} is out of range")))?,
        netns_inode: u64_at(b, field::NETNS_INODE.start),
        netns_cookie: u64_at(b, field::NETNS_COOKIE.start),
        socket_inode: u64_at(b, field::SOCKET_INODE.start),
    };
    let counters = Counters::from_slots(|c| u64_at(b, c.offset()));
    let info: RecordInfo = serde_json::from_slice(&b[moff..moff + mlen])
        .map_err(|e| Corrupt(format!("metadata is not valid: {e}")))?;
    Ok((header, counters, info))
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

// ---------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------

/// A live record, owned by the process that opened the socket. Counters are written with
/// [`Record::store`] (one relaxed atomic store, no system call). Dropping it removes the
/// file.
#[derive(Debug)]
pub struct Record {
    page: SharedPage,
    /// The locked file; closing it releases the lock.
    file: File,
    dir: OwnedFd,
    name: String,
    path: PathBuf,
    header: Header,
}

impl Record {
    /// Creates the record of `socket`, which lives in `ns`, under [`RUN_DIR`].
    pub fn create(ns: &NetNs, socket: impl AsFd, info: &RecordInfo) -> Result<Record> {
        RunDir::new().create(ns.inode(), socket, info)
    }

    /// Stores a counter (relaxed; readers see it at their next read).
    #[inline]
    pub fn store(&self, counter: Counter, value: u64) {
        self.page.store(counter.offset(), value);
    }

    /// The counters as they are now.
    pub fn counters(&self) -> Counters {
        Counters::from_slots(|c| self.page.load(c.offset()))
    }

    /// The file name (`<pid>-<ifname>.<id>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // Unlink while still holding the lock, so no reader ever sees our file unlocked.
        let _ = unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        let _ = &self.file;
        self.remove_dir_if_last();
    }
}

impl Record {
    /// The last record of a namespace takes the namespace's directory along (it holds only
    /// the metadata file then). A record created in it meanwhile makes the rmdir fail: the
    /// metadata is written back for it; or the creator finds the directory gone and tries
    /// again, as it does after a sweep.
    fn remove_dir_if_last(&self) {
        let Some(ns_dir) = self.path.parent() else {
            return;
        };
        match list_names(&self.dir, ns_dir) {
            Ok(names) if names.iter().all(|n| n == NS_META) => {}
            _ => return,
        }
        let _ = unlinkat(&self.dir, NS_META, UnlinkatFlags::NoRemoveDir);
        match std::fs::remove_dir(ns_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => {
                let (inode, cookie) = (self.header.netns_inode, self.header.netns_cookie);
                let _ = write_ns_meta(&self.dir, ns_dir, inode, cookie);
            }
        }
    }
}

/// The per-process part of record names.
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// The registry directory: [`RUN_DIR`], or another one for tests.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl Default for RunDir {
    fn default() -> Self {
        RunDir::new()
    }
}

/// What [`RunDir::scan`] found in one namespace's directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DirScan {
    /// The live records, by name.
    pub records: Vec<RecordView>,
    /// Records that could not be read, and other oddities, one line each.
    pub problems: Vec<Problem>,
    /// Names of stale records (owner gone) that were removed.
    pub removed: Vec<String>,
}

/// A record as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordView {
    pub name: String,
    pub header: Header,
    pub info: RecordInfo,
    pub counters: Counters,
}

/// Something wrong with one entry of a registry directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The entry's name (or the directory's).
    pub name: String,
    /// What is wrong, in words: "record 12-eth1.0 is corrupt: ..." without the prefix.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} {}", self.name, self.message)
    }
}

/// What [`RunDir::sweep`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Stale records removed, as `<inode>/<name>`.
    pub removed: Vec<String>,
    /// Namespace directories removed (their namespace is gone and nothing is left).
    pub removed_dirs: Vec<u64>,
    /// Directories of namespaces that were not found but still hold live records (the
    /// namespace is alive, held only by those sockets).
    pub orphans: Vec<u64>,
}

impl RunDir {
    /// The system's registry, [`RUN_DIR`].
    pub fn new() -> RunDir {
        RunDir::at(RUN_DIR)
    }

    /// A registry rooted elsewhere (tests).
    pub fn at(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ns_path(&self, inode: u64) -> PathBuf {
        self.path.join(inode.to_string())
    }

    /// Opens the base directory, creating it if asked. `None` if it does not exist.
    fn open_base(&self, create: bool) -> Result<Option<OwnedFd>> {
        if create {
            match nix::unistd::mkdir(&self.path, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("mkdir", &self.path)(e)),
            }
        }
        let fd = match nix::fcntl::open(&self.path, dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => return Err(open_dir_error(e, &self.path)),
        };
        check_dir(&fd, &self.path)?;
        Ok(Some(fd))
    }

    /// Opens a namespace's directory under `base`, creating it if asked.
    fn open_ns(&self, base: &OwnedFd, inode: u64, create: bool) -> Result<Option<OwnedFd>> {
        let name = inode.to_string();
        let path = self.ns_path(inode);
        if create {
            match mkdirat(base, name.as_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(sys_err("mkdir", &path)(e)),
            }
        }
        let fd = match openat(base, name.as_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(e) => return Err(open_dir_error(e, &path)),
        };
        check_dir(&fd, &path)?;
        Ok(Some(fd))
    }

    /// Creates the record of `socket`, which lives in the namespace of nsfs inode
    /// `netns_inode` (the caller vouches for that: the socket was created inside it).
    pub fn create(&self, netns_inode: u64, socket: impl AsFd, info: &RecordInfo) -> Result<Record> {
        let ifname = info.ifname().to_owned();
        let pid = std::process::id();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = format!("{pid}-{ifname}.{id}");
        if !valid_record_name(&name) {
            return Err(Error::BadInterface(ifname));
        }
        let sock_path = PathBuf::from("socket");
        let netns_cookie = sys::netns_cookie(socket.as_fd()).map_err(|source| Error::Sys {
            call: "getsockopt(SO_NETNS_COOKIE)",
            path: sock_path.clone(),
            source,
        })?;
        let socket_inode = fstat(socket.as_fd())
            .map_err(sys_err("fstat", &sock_path))?
            .st_ino;
        let header = Header {
            pid,
            netns_inode,
            netns_cookie,
            socket_inode,
        };
        let counters = Counters {
            updated_unix_ns: unix_ns_now(),
            ..Counters::default()
        };
        let bytes = encode(&header, &counters, info)?;

        // A concurrent sweep may remove an empty namespace directory between our mkdir and
        // our openat or rename; try again then.
        let mut last = None;
        for _ in 0..3 {
            match self.try_create(netns_inode, netns_cookie, &name, id, &bytes, header) {
                Ok(r) => return Ok(r),
                Err(e @ Error::Sys { .. }) if is_enoent(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("three attempts"))
    }

    fn try_create(
        &self,
        netns_inode: u64,
        netns_cookie: u64,
        name: &str,
        id: u32,
        bytes: &[u8],
        header: Header,
    ) -> Result<Record> {
        let base = self.open_base(true)?.expect("created");
        let dir = self.open_ns(&base, netns_inode, true)?.expect("created");
        let dir_path = self.ns_path(netns_inode);
        self.claim_dir(&dir, &dir_path, netns_inode, netns_cookie)?;

        let tmp = format!(".tmp-{}-{id}", header.pid);
        let tmp_path = dir_path.join(&tmp);
        let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let fd = openat(
            &dir,
            tmp.as_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(sys_err("open", &tmp_path))?;
        let file = File::from(fd);
        let cleanup = |e: Error| {
            let _ = unlinkat(&dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            e
        };
        fchmod(&file, Mode::from_bits_truncate(0o644))
            .map_err(sys_err("fchmod", &tmp_path))
            .map_err(cleanup)?;
        file.try_lock().map_err(|e| {
            cleanup(Error::Sys {
                call: "flock",
                path: tmp_path.clone(),
                source: io::Error::from(e),
            })
        })?;
        file.write_all_at(bytes, 0)
            .map_err(|source| Error::Sys {
                call: "write",
                path: tmp_path.clone(),
                source,
            })
            .map_err(cleanup)?;
        let page = SharedPage::map(&file, PAGE)
            .map_err(|source| Error::Sys {
                call: "mmap",
                path: tmp_path.clone(),
                source,
            })
            .map_err(cleanup)?;

        let path = dir_path.join(name);
        let mut tried_stale = false;
        loop {
            match renameat2(
                &dir,
                tmp.as_str(),
                &dir,
                name,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => break,
                // A stale record of an earlier process with our PID: remove it if its lock
                // is free, once.
                Err(Errno::EEXIST) if !tried_stale => {
                    tried_stale = true;
                    let _ = remove_if_stale(&dir, name);
                }
                Err(e) => return Err(cleanup(sys_err("rename", &path)(e))),
            }
        }
        Ok(Record {
            page,
            file,
            dir,
            name: name.to_owned(),
            path,
            header,
        })
    }

    /// Makes sure the directory's metadata names this namespace (by cookie); if it names
    /// an earlier namespace that had the same inode, its stale records are swept first.
    fn claim_dir(&self, dir: &OwnedFd, path: &Path, inode: u64, cookie: u64) -> Result<()> {
        if read_ns_meta(dir).is_some_and(|(i, c)| i == inode && c == cookie) {
            return Ok(());
        }
        let _ = scan_dir(dir, Some(cookie));
        write_ns_meta(dir, path, inode, cookie)
    }

    /// Reads the records of the namespace with nsfs inode `netns_inode`, removing stale
    /// ones. With `netns_cookie`, records of an earlier namespace that had the same inode
    /// are not shown (and removed when stale). A missing directory is an empty scan.
    pub fn scan(&self, netns_inode: u64, netns_cookie: Option<u64>) -> Result<DirScan> {
        let Some(base) = self.open_base(false)? else {
            return Ok(DirScan::default());
        };
        let Some(dir) = self.open_ns(&base, netns_inode, false)? else {
            return Ok(DirScan::default());
        };
        Ok(scan_dir(&dir, netns_cookie))
    }

    /// The namespace inodes that have a directory.
    pub fn namespaces(&self) -> Result<Vec<u64>> {
        let Some(base) = self.open_base(false)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<u64> = list_names(&base, &self.path)?
            .into_iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Cleans the directories of namespaces not in `alive` (the inodes of every namespace
    /// that still exists): stale records are removed, and a directory left with no record
    /// is removed. A directory that still holds live records is reported as an orphan (its
    /// namespace exists, kept alive by those very sockets, but nothing names it).
    pub fn sweep(&self, alive: &BTreeSet<u64>) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let Some(base) = self.open_base(false)? else {
            return Ok(report);
        };
        for inode in self.namespaces()? {
            if alive.contains(&inode) {
                continue;
            }
            let Ok(Some(dir)) = self.open_ns(&base, inode, false) else {
                continue;
            };
            let scan = scan_dir(&dir, None);
            report
                .removed
                .extend(scan.removed.iter().map(|n| format!("{inode}/{n}")));
            if !scan.records.is_empty() || !scan.problems.is_empty() {
                report.orphans.push(inode);
                continue;
            }
            // Only the metadata (and maybe temporaries of dead writers) are left.
            let _ = unlinkat(&dir, NS_META, UnlinkatFlags::NoRemoveDir);
            if unlinkat(&base, inode.to_string().as_str(), UnlinkatFlags::RemoveDir).is_ok() {
                report.removed_dirs.push(inode);
            }
        }
        Ok(report)
    }
}

fn is_enoent(e: &Error) -> bool {
    matches!(e, Error::Sys { source, .. } if source.raw_os_error() == Some(libc::ENOENT))
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn open_dir_error(e: Errno, path: &Path) -> Error {
    match e {
        Errno::ELOOP | Errno::ENOTDIR => Error::Unsafe {
            path: path.to_path_buf(),
            why: "it is a symlink or not a directory".into(),
        },
        e => sys_err("open", path)(e),
    }
}

/// Refuses a directory that is not a directory, that someone other than us or root owns,
/// or that others could write into.
fn check_dir(fd: &OwnedFd, path: &Path) -> Result<()> {
    let st = fstat(fd).map_err(sys_err("fstat", path))?;
    let unsafe_dir = |why: String| {
        Err(Error::Unsafe {
            path: path.to_path_buf(),
            why,
        })
    };
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFDIR {
        return unsafe_dir("it is not a directory".into());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if st.st_uid != 0 && st.st_uid != euid {
        return unsafe_dir(format!("it is owned by uid {}, not root", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return unsafe_dir(format!(
            "it is writable by group or others (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

/// The entry names of a directory (without `.` and `..`).
fn list_names(dir: &OwnedFd, path: &Path) -> Result<Vec<String>> {
    let dup = dir.try_clone().map_err(|source| Error::Sys {
        call: "dup",
        path: path.to_path_buf(),
        source,
    })?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(sys_err("opendir", path))?;
    let mut out = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(sys_err("readdir", path))?;
        let name: &CStr = entry.file_name();
        match name.to_str() {
            Ok(".") | Ok("..") => {}
            Ok(n) => out.push(n.to_owned()),
            // Not ours (we only write ASCII names); shown as a problem by the scan.
            Err(_) => out.push(name.to_string_lossy().into_owned()),
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a namespace directory's metadata file (through a temporary and a rename).
fn write_ns_meta(dir: &OwnedFd, path: &Path, inode: u64, cookie: u64) -> Result<()> {
    let tmp = format!(".netns-{}", std::process::id());
    let text = format!("inode={inode}\ncookie={cookie}\n");
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(sys_err("open", &path.join(&tmp)))?;
    let file = File::from(fd);
    let _ = fchmod(&file, Mode::from_bits_truncate(0o644));
    file.write_all_at(text.as_bytes(), 0)
        .map_err(|source| Error::Sys {
            call: "write",
            path: path.join(&tmp),
            source,
        })?;
    renameat2(dir, tmp.as_str(), dir, NS_META, RenameFlags::empty())
        .map_err(sys_err("rename", &path.join(NS_META)))?;
    Ok(())
}

/// `(inode, cookie)` from a directory's metadata file, if it is there and well formed.
fn read_ns_meta(dir: &OwnedFd) -> Option<(u64, u64)> {
    let fd = openat(
        dir,
        NS_META,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    File::from(fd).take(4096).read_to_string(&mut text).ok()?;
    let (mut inode, mut cookie) = (None, None);
    for line in text.lines() {
        match line.split_once('=') {
            Some(("inode", v)) => inode = v.trim().parse().ok(),
            Some(("cookie", v)) => cookie = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((inode?, cookie?))
}

/// What one directory entry turned out to be.
enum Entry {
    Live(Box<RecordView>),
    Stale,
    Problem(String),
    Skip,
}

/// Reads every record of a namespace directory (removing the stale ones).
fn scan_dir(dir: &OwnedFd, cookie: Option<u64>) -> DirScan {
    let mut scan = DirScan::default();
    let names = match list_names(dir, Path::new("registry directory")) {
        Ok(n) => n,
        Err(e) => {
            scan.problems.push(Problem {
                name: ".".into(),
                message: format!("directory cannot be listed: {e}"),
            });
            return scan;
        }
    };
    for name in names {
        if name == NS_META {
            continue;
        }
        if let Some(rest) = name
            .strip_prefix(".tmp-")
            .or_else(|| name.strip_prefix(".netns-"))
        {
            remove_dead_temporary(dir, &name, rest);
            continue;
        }
        match read_entry(dir, &name, cookie) {
            Entry::Live(r) => scan.records.push(*r),
            Entry::Stale => scan.removed.push(name),
            Entry::Problem(message) => scan.problems.push(Problem { name, message }),
            Entry::Skip => {}
        }
    }
    scan
}

/// A writer's temporary (`.tmp-<pid>-<id>`, `.netns-<pid>`) left behind by a dead process.
fn remove_dead_temporary(dir: &OwnedFd, name: &str, rest: &str) {
    let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
    let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
    if alive {
        return;
    }
    // Held locked by a writer that is half-way? Then it is alive, whatever /proc says.
    if name.starts_with(".tmp-")
        && let Ok(fd) = openat(dir, name, record_open_flags(), Mode::empty())
        && File::from(fd).try_lock().is_err()
    {
        return;
    }
    let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
}

fn record_open_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY
}

/// Removes `name` if no one holds its lock. True if it was removed.
fn remove_if_stale(dir: &OwnedFd, name: &str) -> bool {
    let Ok(fd) = openat(dir, name, record_open_flags(), Mode::empty()) else {
        return false;
    };
    let file = File::from(fd);
    if file.try_lock().is_err() {
        return false;
    }
    unlink_same(dir, name, &file)
}

/// Unlinks `name` if it is still the file `file` has open (another process may have
/// removed it and created a new one under the same name meanwhile).
fn unlink_same(dir: &OwnedFd, name: &str, file: &File) -> bool {
    let (Ok(a), Ok(b)) = (
        fstat(file),
        fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW),
    ) else {
        return false;
    };
    if a.st_ino != b.st_ino || a.st_dev != b.st_dev {
        return false;
    }
    unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).is_ok()
}

fn read_entry(dir: &OwnedFd, name: &str, cookie: Option<u64>) -> Entry {
    let fd = match openat(dir, name, record_open_flags(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Entry::Skip, // its owner just removed it
        Err(Errno::ELOOP) => {
            return Entry::Problem("is a symlink: not followed (remove it)".into());
        }
        Err(e) => return Entry::Problem(format!("cannot be opened: {}", io::Error::from(e))),
    };
    let file = File::from(fd);
    let st = match fstat(&file) {
        Ok(st) => st,
        Err(e) => return Entry::Problem(format!("cannot be examined: {}", io::Error::from(e))),
    };
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Entry::Problem("is not a regular file: ignored".into());
    }
    match file.try_lock() {
        // No owner holds it: stale.
        Ok(()) => {
            if unlink_same(dir, name, &file) {
                return Entry::Stale;
            }
            return Entry::Skip;
        }
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => {
            return Entry::Problem(format!("cannot be locked: {e}"));
        }
    }
    if !valid_record_name(name) {
        return Entry::Problem("has a name that is not <pid>-<ifname>.<id>: ignored".into());
    }
    let mut bytes = Vec::new();
    if let Err(e) = (&file)
        .take((field::META + MAX_META + PAGE) as u64)
        .read_to_end(&mut bytes)
    {
        return Entry::Problem(format!("cannot be read: {e}"));
    }
    match decode(&bytes) {
        Ok((header, counters, info)) => {
            if let Some(c) = cookie
                && header.netns_cookie != c
            {
                return Entry::Problem(format!(
                    "belongs to an earlier namespace with the same inode (cookie {} is not {c}): ignored",
                    header.netns_cookie
                ));
            }
            Entry::Live(Box::new(RecordView {
                name: name.to_owned(),
                header,
                info,
                counters,
            }))
        }
        Err(Corrupt(why)) => Entry::Problem(format!("is corrupt: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_info() -> RecordInfo {
        let mut i = RecordInfo::new("pfcount", Some("eth1"));
        i.ifindex = 3;
        i.snaplen = 128;
        i.filter = Some("udp port 53".into());
        i.cluster = Some(Cluster {
            id: 7,
            kind: "flow".into(),
        });
        i.ring = Some(RingInfo {
            block_size: 4 << 20,
            block_count: 8,
            frame_size: 2048,
            block_timeout_ms: 100,
            memory_bytes: 32 << 20,
        });
        i.started_unix_ns = 1_700_000_000_000_000_000;
        i
    }

    const HEADER: Header = Header {
        pid: 4242,
        netns_inode: 4026532000,
        netns_cookie: 9,
        socket_inode: 123456,
    };

    #[test]
    fn header_bytes_are_where_the_format_says() {
        let counters = Counters {
            packets: 0x0102,
            drops: 5,
            ..Counters::default()
        };
        let b = encode(&HEADER, &counters, &sample_info()).unwrap();
        assert_eq!(b.len(), PAGE);
        #[rustfmt::skip]
        let head: [u8; 64] = [
            b'N', b'S', b'R', b'I', b'N', b'G', 0, b'R', // magic
            1, 0, 0, 0,                 // format version 1
            64, 0, 0, 0,                // counters at 64
            16, 0, 0, 0,                // 16 slots
            0, 1, 0, 0,                 // metadata at 256
            b[24], b[25], b[26], b[27], // metadata length (checked below)
            0, 0, 0, 0,                 // reserved
            0x92, 0x10, 0, 0, 0, 0, 0, 0, // pid 4242
            0xa0, 0x00, 0x00, 0xf0, 0, 0, 0, 0, // netns inode 4026532000 (0xf00000a0)
            9, 0, 0, 0, 0, 0, 0, 0,     // cookie 9
            0x40, 0xe2, 0x01, 0, 0, 0, 0, 0, // socket inode 123456
        ];
        assert_eq!(b[..64], head);
        assert_eq!(b[64..72], [0x02, 0x01, 0, 0, 0, 0, 0, 0], "packets");
        assert_eq!(b[96..104], [5, 0, 0, 0, 0, 0, 0, 0], "drops (slot 4)");
        let mlen = u32::from_le_bytes(b[24..28].try_into().unwrap()) as usize;
        assert_eq!(b[256], b'{');
        assert_eq!(b[256 + mlen - 1], b'}');
        assert!(b[256 + mlen..].iter().all(|&x| x == 0));
    }

    #[test]
    fn round_trip() {
        let counters = Counters {
            packets: 10,
            bytes: 1000,
            blocks: 2,
            kernel_packets: 11,
            drops: 1,
            freezes: 1,
            sent: 0,
            send_errors: 0,
            updated_unix_ns: 5,
        };
        let info = sample_info();
        let b = encode(&HEADER, &counters, &info).unwrap();
        let (h, c, i) = decode(&b).unwrap();
        assert_eq!((h, c, i), (HEADER, counters, info));
    }

    #[test]
    fn long_metadata_takes_more_pages() {
        let mut info = sample_info();
        info.filter = Some("host 198.18.0.1 or ".repeat(400) + "host 198.18.0.2");
        let b = encode(&HEADER, &Counters::default(), &info).unwrap();
        assert_eq!(b.len() % PAGE, 0);
        assert!(b.len() > PAGE);
        assert_eq!(decode(&b).unwrap().2, info);
    }

    #[test]
    fn corrupt_files_are_described() {
        let good = encode(&HEADER, &Counters::default(), &sample_info()).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage\n".to_vec(), "truncated: 8 bytes"),
            (vec![0u8; 4096], "wrong magic"),
            (
                {
                    let mut b = good.clone();
                    b[8] = 2;
                    b
                },
                "format version 2",
            ),
            (good[..300].to_vec(), "runs past the end"),
            (
                {
                    let mut b = good.clone();
                    b[260] = b'!';
                    b
                },
                "metadata is not valid",
            ),
            (
                {
                    let mut b = good.clone();
                    b[16] = 17;
                    b
                },
                "unexpected layout",
            ),
            (
                {
                    let mut b = good.clone();
                    b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
                    b
                },
                "metadata length",
            ),
        ];
        for (bytes, want) in cases {
            let err = decode(&bytes).unwrap_err();
            assert!(err.0.contains(want), "{err} does not mention {want:?}");
        }
        // every prefix of a good file is refused or accepted, never a panic
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
    }

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
