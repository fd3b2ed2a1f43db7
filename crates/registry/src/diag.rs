//! The kernel's view of packet sockets: `packet_diag` over `NETLINK_SOCK_DIAG`.
//!
//! Two layers:
//! - a small codec for the messages of `include/uapi/linux/packet_diag.h` in the style of
//!   netlink-packet-route: typed structs that [`Emitable::emit`] and parse back byte for
//!   byte, kernel values as `#[non_exhaustive]` enums with an `Other(n)` arm so unknown
//!   values survive a round trip, and unknown attributes kept as [`DefaultNla`];
//! - [`dump`] and [`packet_sockets`], which ask the kernel for every `AF_PACKET` socket of a
//!   namespace (the netlink socket is created inside it, and `net/packet/diag.c` reports
//!   only the sockets of the netlink socket's namespace) and turn the answer into
//!   [`PacketSocket`]s with interface names and owning processes.
//!
//! Byte order is the host's, as for all of netlink except `pdiag_num`, which the kernel
//! already converts with `ntohs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::time::Duration;

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTIPART, NLM_F_REQUEST,
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    NetlinkSerializable, Nla, NlaBuffer, NlasIterator, Parseable,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use nsring_netns::NetNs;
use serde::{Serialize, Serializer};

use crate::owners::{self, Owner, SocketOwners};

/// `SOCK_DIAG_BY_FAMILY` from `include/uapi/linux/sock_diag.h`.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `AF_PACKET`.
pub const AF_PACKET: u8 = 17;
/// `sock_diag` "no cookie" value (`INET_DIAG_NOCOOKIE` in both halves).
pub const SOCK_DIAG_NOCOOKIE: u64 = u64::MAX;

/// Basic `packet_sock` information: [`PacketDiagAttribute::Info`] and [`PacketDiagAttribute::Uid`].
pub const PACKET_SHOW_INFO: u32 = 0x01;
/// The membership list ([`PacketDiagAttribute::Mclist`]).
pub const PACKET_SHOW_MCLIST: u32 = 0x02;
/// Ring geometry ([`PacketDiagAttribute::RxRing`], [`PacketDiagAttribute::TxRing`]).
pub const PACKET_SHOW_RING_CFG: u32 = 0x04;
/// The fanout group ([`PacketDiagAttribute::Fanout`]).
pub const PACKET_SHOW_FANOUT: u32 = 0x08;
/// Socket memory ([`PacketDiagAttribute::MemInfo`]).
pub const PACKET_SHOW_MEMINFO: u32 = 0x10;
/// The classic BPF filter ([`PacketDiagAttribute::Filter`]).
pub const PACKET_SHOW_FILTER: u32 = 0x20;
/// Everything this codec understands.
pub const PACKET_SHOW_ALL: u32 = PACKET_SHOW_INFO
    | PACKET_SHOW_MCLIST
    | PACKET_SHOW_RING_CFG
    | PACKET_SHOW_FANOUT
    | PACKET_SHOW_MEMINFO
    | PACKET_SHOW_FILTER;

/// Attribute types (`enum { PACKET_DIAG_INFO, ... }`; note that INFO is 0).
pub const PACKET_DIAG_INFO: u16 = 0;
/// Attribute: the socket's memberships (`packet_diag_mclist` list).
pub const PACKET_DIAG_MCLIST: u16 = 1;
/// Attribute: the receive ring's configuration.
pub const PACKET_DIAG_RX_RING: u16 = 2;
/// Attribute: the transmit ring's configuration.
pub const PACKET_DIAG_TX_RING: u16 = 3;
/// Attribute: the fanout group (id, type, flags in one u32).
pub const PACKET_DIAG_FANOUT: u16 = 4;
/// Attribute: the owner's uid.
pub const PACKET_DIAG_UID: u16 = 5;
/// Attribute: the socket's memory (`SK_MEMINFO_*`).
pub const PACKET_DIAG_MEMINFO: u16 = 6;
/// Attribute: the classic BPF filter program.
pub const PACKET_DIAG_FILTER: u16 = 7;

/// `pdi_flags` bits of `struct packet_diag_info`.
pub const PDI_RUNNING: u32 = 0x1;
/// Info flag: `PACKET_AUXDATA` is on.
pub const PDI_AUXDATA: u32 = 0x2;
/// Info flag: `PACKET_ORIGDEV` is on.
pub const PDI_ORIGDEV: u32 = 0x4;
/// Info flag: `PACKET_VNET_HDR` is on.
pub const PDI_VNETHDR: u32 = 0x8;
/// Info flag: `PACKET_LOSS` is on (transmit: skip malformed frames).
pub const PDI_LOSS: u32 = 0x10;

/// `ETH_P_ALL`, the protocol of a socket that sees every packet.
pub const ETH_P_ALL: u16 = 0x0003;

/// Byte layouts of the fixed structures (offsets in bytes).
mod field {
    use std::ops::Range;

    // struct packet_diag_req
    pub const REQ_FAMILY: usize = 0;
    pub const REQ_PROTOCOL: usize = 1;
    pub const REQ_PAD: Range<usize> = 2..4;
    pub const REQ_INO: Range<usize> = 4..8;
    pub const REQ_SHOW: Range<usize> = 8..12;
    pub const REQ_COOKIE: Range<usize> = 12..20;
    pub const REQ_LEN: usize = 20;

    // struct packet_diag_msg
    pub const MSG_FAMILY: usize = 0;
    pub const MSG_TYPE: usize = 1;
    pub const MSG_NUM: Range<usize> = 2..4;
    pub const MSG_INO: Range<usize> = 4..8;
    pub const MSG_COOKIE: Range<usize> = 8..16;
    pub const MSG_LEN: usize = 16;

    // struct packet_diag_info: six u32
    pub const INFO_LEN: usize = 24;
    // struct packet_diag_ring: seven u32
    pub const RING_LEN: usize = 28;
    // struct packet_diag_mclist: index u32, count u32, type u16, alen u16, addr[MAX_ADDR_LEN=32]
    pub const MC_INDEX: Range<usize> = 0..4;
    pub const MC_COUNT: Range<usize> = 4..8;
    pub const MC_TYPE: Range<usize> = 8..10;
    pub const MC_ALEN: Range<usize> = 10..12;
    pub const MC_ADDR: Range<usize> = 12..44;
    pub const MC_LEN: usize = 44;
    // struct sock_filter: code u16, jt u8, jf u8, k u32
    pub const FILTER_INSN_LEN: usize = 8;
}

fn u16_at(buf: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_ne_bytes(buf[r].try_into().expect("2-byte range"))
}
fn u32_at(buf: &[u8], r: std::ops::Range<usize>) -> u32 {
    u32::from_ne_bytes(buf[r].try_into().expect("4-byte range"))
}
fn cookie_at(buf: &[u8], r: std::ops::Range<usize>) -> u64 {
    // sock_diag_save_cookie: cookie[0] = low 32 bits, cookie[1] = high 32 bits.
    let lo = u32_at(buf, r.start..r.start + 4);
    let hi = u32_at(buf, r.start + 4..r.start + 8);
    u64::from(lo) | (u64::from(hi) << 32)
}
fn put_cookie(buf: &mut [u8], r: std::ops::Range<usize>, cookie: u64) {
    buf[r.start..r.start + 4].copy_from_slice(&(cookie as u32).to_ne_bytes());
    buf[r.start + 4..r.start + 8].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
}
/// Splits `buf` into native-endian u32 words; the length must be a multiple of 4.
fn u32_words(buf: &[u8], what: &str) -> Result<Vec<u32>, DecodeError> {
    if !buf.len().is_multiple_of(4) {
        return Err(format!("{what}: {} bytes is not a whole number of u32", buf.len()).into());
    }
    Ok(buf
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().expect("chunk of 4")))
        .collect())
}
fn need(buf: &[u8], len: usize, what: &str) -> Result<(), DecodeError> {
    if buf.len() < len {
        Err(DecodeError::invalid_buffer(what, buf.len(), len))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Kernel enums
// ---------------------------------------------------------------------------------------

/// A packet socket's type (`sk_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketType {
    /// `SOCK_RAW`: frames with their link-layer header.
    Raw,
    /// `SOCK_DGRAM`: link-layer header removed ("cooked").
    Dgram,
    /// `SOCK_PACKET` (obsolete) or anything newer.
    Other(u8),
}

impl From<u8> for SocketType {
    fn from(v: u8) -> Self {
        match v {
            3 => SocketType::Raw,
            2 => SocketType::Dgram,
            n => SocketType::Other(n),
        }
    }
}
impl From<SocketType> for u8 {
    fn from(v: SocketType) -> u8 {
        match v {
            SocketType::Raw => 3,
            SocketType::Dgram => 2,
            SocketType::Other(n) => n,
        }
    }
}
impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketType::Raw => f.write_str("raw"),
            SocketType::Dgram => f.write_str("dgram"),
            SocketType::Other(10) => f.write_str("packet"),
            SocketType::Other(n) => write!(f, "type{n}"),
        }
    }
}

/// The TPACKET ring format the socket uses (`PACKET_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TpacketVersion {
    /// `TPACKET_V1`.
    V1,
    /// `TPACKET_V2`.
    V2,
    /// `TPACKET_V3`.
    V3,
    /// A version this code does not know.
    Other(u32),
}

impl From<u32> for TpacketVersion {
    fn from(v: u32) -> Self {
        match v {
            0 => TpacketVersion::V1,
            1 => TpacketVersion::V2,
            2 => TpacketVersion::V3,
            n => TpacketVersion::Other(n),
        }
    }
}
impl From<TpacketVersion> for u32 {
    fn from(v: TpacketVersion) -> u32 {
        match v {
            TpacketVersion::V1 => 0,
            TpacketVersion::V2 => 1,
            TpacketVersion::V3 => 2,
            TpacketVersion::Other(n) => n,
        }
    }
}
impl fmt::Display for TpacketVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpacketVersion::V1 => f.write_str("v1"),
            TpacketVersion::V2 => f.write_str("v2"),
            TpacketVersion::V3 => f.write_str("v3"),
            TpacketVersion::Other(n) => write!(f, "version{n}"),
        }
    }
}

/// How a fanout group spreads packets (`PACKET_FANOUT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FanoutType {
    /// By flow hash.
    Hash,
    /// Round robin (load balance).
    Lb,
    /// By CPU.
    Cpu,
    /// Fill one socket, then the next.
    Rollover,
    /// Random.
    Rnd,
    /// By recorded receive queue.
    Qm,
    /// Chosen by a classic BPF program.
    Cbpf,
    /// Chosen by an eBPF program.
    Ebpf,
    /// A type this code does not know.
    Other(u8),
}

impl From<u8> for FanoutType {
    fn from(v: u8) -> Self {
        match v {
            0 => FanoutType::Hash,
            1 => FanoutType::Lb,
            2 => FanoutType::Cpu,
            3 => FanoutType::Rollover,
            4 => FanoutType::Rnd,
            5 => FanoutType::Qm,
            6 => FanoutType::Cbpf,
            7 => FanoutType::Ebpf,
            n => FanoutType::Other(n),
        }
    }
}
impl From<FanoutType> for u8 {
    fn from(v: FanoutType) -> u8 {
        match v {
            FanoutType::Hash => 0,
            FanoutType::Lb => 1,
            FanoutType::Cpu => 2,
            FanoutType::Rollover => 3,
            FanoutType::Rnd => 4,
            FanoutType::Qm => 5,
            FanoutType::Cbpf => 6,
            FanoutType::Ebpf => 7,
            FanoutType::Other(n) => n,
        }
    }
}
impl fmt::Display for FanoutType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FanoutType::Hash => "hash",
            FanoutType::Lb => "lb",
            FanoutType::Cpu => "cpu",
            FanoutType::Rollover => "rollover",
            FanoutType::Rnd => "rnd",
            FanoutType::Qm => "qm",
            FanoutType::Cbpf => "cbpf",
            FanoutType::Ebpf => "ebpf",
            FanoutType::Other(n) => return write!(f, "fanout{n}"),
        };
        f.write_str(s)
    }
}

/// The kind of a membership (`PACKET_MR_*`) in [`PacketDiagMclist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MembershipType {
    /// `PACKET_MR_MULTICAST`: a multicast address.
    Multicast,
    /// `PACKET_MR_PROMISC`: promiscuous mode.
    Promisc,
    /// `PACKET_MR_ALLMULTI`: every multicast address.
    Allmulti,
    /// `PACKET_MR_UNICAST`: a unicast address.
    Unicast,
    /// A type this code does not know.
    Other(u16),
}

impl From<u16> for MembershipType {
    fn from(v: u16) -> Self {
        match v {
            0 => MembershipType::Multicast,
            1 => MembershipType::Promisc,
            2 => MembershipType::Allmulti,
            3 => MembershipType::Unicast,
            n => MembershipType::Other(n),
        }
    }
}
impl From<MembershipType> for u16 {
    fn from(v: MembershipType) -> u16 {
        match v {
            MembershipType::Multicast => 0,
            MembershipType::Promisc => 1,
            MembershipType::Allmulti => 2,
            MembershipType::Unicast => 3,
            MembershipType::Other(n) => n,
        }
    }
}
impl fmt::Display for MembershipType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipType::Multicast => f.write_str("multicast"),
            MembershipType::Promisc => f.write_str("promisc"),
            MembershipType::Allmulti => f.write_str("allmulti"),
            MembershipType::Unicast => f.write_str("unicast"),
            MembershipType::Other(n) => write!(f, "mr{n}"),
        }
    }
}

macro_rules! serialize_as_display {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_display!(SocketType, TpacketVersion, FanoutType, MembershipType);

// ---------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------

/// `struct packet_diag_req`: ask for a dump of the packet sockets of the netlink socket's
/// namespace. The kernel rejects a non-zero `protocol` and ignores `inode` and `cookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketDiagRequest {
    /// `sdiag_protocol`; must be 0 (the kernel reserves it for future filtering).
    pub protocol: u8,
    /// `pdiag_ino`.
    pub inode: u32,
    /// `pdiag_show`: `PACKET_SHOW_*` bits.
    pub show: u32,
    /// `pdiag_cookie`.
    pub cookie: u64,
}

impl Default for PacketDiagRequest {
    fn default() -> Self {
        PacketDiagRequest {
            protocol: 0,
            inode: 0,
            show: PACKET_SHOW_ALL,
            cookie: SOCK_DIAG_NOCOOKIE,
        }
    }
}

impl Emitable for PacketDiagRequest {
    fn buffer_len(&self) -> usize {
        field::REQ_LEN
    }
    fn emit(&self, buf: &mut [u8]) {
        buf[field::REQ_FAMILY] = AF_PACKET;
        buf[field::REQ_PROTOCOL] = self.protocol;
        buf[field::REQ_PAD].fill(0);
        buf[field::REQ_INO].copy_from_slice(&self.inode.to_ne_bytes());
        buf[field::REQ_SHOW].copy_from_slice(&self.show.to_ne_bytes());
        put_cookie(buf, field::REQ_COOKIE, self.cookie);
    }
}

impl Parseable<[u8]> for PacketDiagRequest {
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, field::REQ_LEN, "packet_diag_req")?;
        if buf[field::REQ_FAMILY] != AF_PACKET {
            return Err(format!(
                "packet_diag_req: family {} is not AF_PACKET ({AF_PACKET})",
                buf[field::REQ_FAMILY]
            )
            .into());
        }
        Ok(PacketDiagRequest {
            protocol: buf[field::REQ_PROTOCOL],
            inode: u32_at(buf, field::REQ_INO),
            show: u32_at(buf, field::REQ_SHOW),
            cookie: cookie_at(buf, field::REQ_COOKIE),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------

/// `struct packet_diag_info` (`PACKET_DIAG_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PacketDiagInfo {
    /// Bound interface index; 0 = all interfaces.
    pub ifindex: u32,
    /// The ring format.
    pub version: TpacketVersion,
    /// `PACKET_RESERVE` headroom.
    pub reserve: u32,
    /// `PACKET_COPY_THRESH`.
    pub copy_thresh: u32,
    /// `PACKET_TIMESTAMP` (`SOF_TIMESTAMPING_*` bits).
    pub tstamp: u32,
    /// `PDI_*` bits.
    pub flags: u32,
}

impl PacketDiagInfo {
    /// Whether the socket is hooked into the receive path (bound to a protocol).
    pub fn running(&self) -> bool {
        self.flags & PDI_RUNNING != 0
    }
    /// Names of the set `PDI_*` flags.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [
            (PDI_RUNNING, "running"),
            (PDI_AUXDATA, "auxdata"),
            (PDI_ORIGDEV, "origdev"),
            (PDI_VNETHDR, "vnet_hdr"),
            (PDI_LOSS, "loss"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.flags & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, field::INFO_LEN, "packet_diag_info")?;
        // A longer structure from a newer kernel: its known prefix is read.
        let w = u32_words(&buf[..field::INFO_LEN], "packet_diag_info")?;
        Ok(PacketDiagInfo {
            ifindex: w[0],
            version: w[1].into(),
            reserve: w[2],
            copy_thresh: w[3],
            tstamp: w[4],
            flags: w[5],
        })
    }
    fn emit(&self, buf: &mut [u8]) {
        let w = [
            self.ifindex,
            self.version.into(),
            self.reserve,
            self.copy_thresh,
            self.tstamp,
            self.flags,
        ];
        for (chunk, v) in buf.chunks_exact_mut(4).zip(w) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

/// One `struct packet_diag_mclist` (`PACKET_ADD_MEMBERSHIP`), e.g. libpcap's promiscuous mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PacketDiagMclist {
    /// The interface of the membership.
    pub ifindex: u32,
    /// How many times this membership was added.
    pub count: u32,
    #[serde(rename = "type")]
    /// The membership's type.
    pub kind: MembershipType,
    /// Used bytes of `addr`.
    pub alen: u16,
    #[serde(skip)]
    /// The address (multicast, unicast), `alen` bytes of it used.
    pub addr: [u8; 32],
}

impl PacketDiagMclist {
    fn parse(buf: &[u8]) -> Self {
        PacketDiagMclist {
            ifindex: u32_at(buf, field::MC_INDEX),
            count: u32_at(buf, field::MC_COUNT),
            kind: u16_at(buf, field::MC_TYPE).into(),
            alen: u16_at(buf, field::MC_ALEN),
            addr: buf[field::MC_ADDR].try_into().expect("32-byte range"),
        }
    }
    fn emit(&self, buf: &mut [u8]) {
        buf[field::MC_INDEX].copy_from_slice(&self.ifindex.to_ne_bytes());
        buf[field::MC_COUNT].copy_from_slice(&self.count.to_ne_bytes());
        buf[field::MC_TYPE].copy_from_slice(&u16::from(self.kind).to_ne_bytes());
        buf[field::MC_ALEN].copy_from_slice(&self.alen.to_ne_bytes());
        buf[field::MC_ADDR].copy_from_slice(&self.addr);
    }
}

/// `struct packet_diag_ring` (`PACKET_DIAG_RX_RING` / `PACKET_DIAG_TX_RING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PacketDiagRing {
    /// Bytes per block.
    pub block_size: u32,
    /// Number of blocks.
    pub block_nr: u32,
    /// Frame size.
    pub frame_size: u32,
    /// Number of frames.
    pub frame_nr: u32,
    /// TPACKET_V3 block retire timeout in ms (0 for V1/V2).
    pub retire_tmo: u32,
    /// TPACKET_V3 per-block private area (0 for V1/V2).
    pub sizeof_priv: u32,
    /// TPACKET_V3 feature request word (0 for V1/V2).
    pub features: u32,
}

impl PacketDiagRing {
    /// Total mapped bytes of this ring.
    pub fn bytes(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.block_nr)
    }
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, field::RING_LEN, "packet_diag_ring")?;
        let w = u32_words(&buf[..field::RING_LEN], "packet_diag_ring")?;
        Ok(PacketDiagRing {
            block_size: w[0],
            block_nr: w[1],
            frame_size: w[2],
            frame_nr: w[3],
            retire_tmo: w[4],
            sizeof_priv: w[5],
            features: w[6],
        })
    }
    fn emit(&self, buf: &mut [u8]) {
        let w = [
            self.block_size,
            self.block_nr,
            self.frame_size,
            self.frame_nr,
            self.retire_tmo,
            self.sizeof_priv,
            self.features,
        ];
        for (chunk, v) in buf.chunks_exact_mut(4).zip(w) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
    }
}

/// `PACKET_DIAG_FANOUT`: the kernel reports `id | type << 16`. The fanout flags
/// (`PACKET_FANOUT_FLAG_*`, 0x1000..0x8000 of the upper half) are kept if a kernel ever
/// reports them; current kernels (`net/packet/diag.c`) do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fanout {
    /// The group id.
    pub id: u16,
    #[serde(rename = "type")]
    /// How the group spreads packets.
    pub kind: FanoutType,
    /// `PACKET_FANOUT_FLAG_*` bits.
    pub flags: u16,
}

impl Fanout {
    /// Decodes the attribute's u32.
    pub fn from_u32(v: u32) -> Self {
        let upper = (v >> 16) as u16;
        Fanout {
            id: v as u16,
            kind: ((upper & 0xff) as u8).into(),
            flags: upper & 0xff00,
        }
    }
    /// Encodes the attribute's u32.
    pub fn to_u32(&self) -> u32 {
        let upper = u16::from(u8::from(self.kind)) | (self.flags & 0xff00);
        u32::from(self.id) | (u32::from(upper) << 16)
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SockFilter {
    /// The opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

/// A `PACKET_DIAG_*` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketDiagAttribute {
    /// `PACKET_DIAG_INFO`: version, reserve, flags.
    Info(PacketDiagInfo),
    /// A nest of `packet_diag_mclist` structures without attribute headers.
    Mclist(Vec<PacketDiagMclist>),
    /// `PACKET_DIAG_RX_RING`.
    RxRing(PacketDiagRing),
    /// `PACKET_DIAG_TX_RING`.
    TxRing(PacketDiagRing),
    /// `PACKET_DIAG_FANOUT`.
    Fanout(Fanout),
    /// The owner's uid, as seen from the netlink socket's user namespace.
    Uid(u32),
    /// `SK_MEMINFO_*` values (9 on current kernels).
    MemInfo(Vec<u32>),
    /// The classic filter program. Empty when the kernel will not tell (the netlink socket's
    /// opener lacks CAP_NET_ADMIN). Absent (no attribute) when no classic filter is attached;
    /// note an eBPF filter (`SO_ATTACH_BPF`) has no classic program and is not reported.
    Filter(Vec<SockFilter>),
    /// An attribute this code does not know, kept as it came.
    Other(DefaultNla),
}

impl Nla for PacketDiagAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Info(_) => field::INFO_LEN,
            Self::Mclist(v) => v.len() * field::MC_LEN,
            Self::RxRing(_) | Self::TxRing(_) => field::RING_LEN,
            Self::Fanout(_) | Self::Uid(_) => 4,
            Self::MemInfo(v) => v.len() * 4,
            Self::Filter(v) => v.len() * field::FILTER_INSN_LEN,
            Self::Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            Self::Info(_) => PACKET_DIAG_INFO,
            Self::Mclist(_) => PACKET_DIAG_MCLIST,
            Self::RxRing(_) => PACKET_DIAG_RX_RING,
            Self::TxRing(_) => PACKET_DIAG_TX_RING,
            Self::Fanout(_) => PACKET_DIAG_FANOUT,
            Self::Uid(_) => PACKET_DIAG_UID,
            Self::MemInfo(_) => PACKET_DIAG_MEMINFO,
            Self::Filter(_) => PACKET_DIAG_FILTER,
            Self::Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Self::Info(info) => info.emit(buf),
            Self::Mclist(v) => {
                for (chunk, mc) in buf.chunks_exact_mut(field::MC_LEN).zip(v) {
                    mc.emit(chunk);
                }
            }
            Self::RxRing(r) | Self::TxRing(r) => r.emit(buf),
            Self::Fanout(f) => buf.copy_from_slice(&f.to_u32().to_ne_bytes()),
            Self::Uid(uid) => buf.copy_from_slice(&uid.to_ne_bytes()),
            Self::MemInfo(v) => {
                for (chunk, x) in buf.chunks_exact_mut(4).zip(v) {
                    chunk.copy_from_slice(&x.to_ne_bytes());
                }
            }
            Self::Filter(v) => {
                for (chunk, insn) in buf.chunks_exact_mut(field::FILTER_INSN_LEN).zip(v) {
                    chunk[0..2].copy_from_slice(&insn.code.to_ne_bytes());
                    chunk[2] = insn.jt;
                    chunk[3] = insn.jf;
                    chunk[4..8].copy_from_slice(&insn.k.to_ne_bytes());
                }
            }
            Self::Other(nla) => nla.emit_value(buf),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for PacketDiagAttribute {
    fn parse(nla: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let v = nla.value();
        let with_ctx =
            |e: DecodeError, name: &str| -> DecodeError { format!("{name} attribute: {e}").into() };
        // The kernel starts MCLIST with nla_nest_start_noflag, so no attribute here carries
        // NLA_F_NESTED; one that does is not what this codec knows and is kept as is.
        if nla.nested_flag() && nla.kind() != PACKET_DIAG_MCLIST {
            return Ok(Self::Other(DefaultNla::parse(nla)?));
        }
        Ok(match nla.kind() {
            PACKET_DIAG_INFO => {
                Self::Info(PacketDiagInfo::parse(v).map_err(|e| with_ctx(e, "PACKET_DIAG_INFO"))?)
            }
            PACKET_DIAG_MCLIST => {
                if nla.nested_flag() || !v.len().is_multiple_of(field::MC_LEN) {
                    return Err(format!(
                        "PACKET_DIAG_MCLIST attribute: {} bytes is not a whole number of \
                         {}-byte packet_diag_mclist entries",
                        v.len(),
                        field::MC_LEN
                    )
                    .into());
                }
                Self::Mclist(
                    v.chunks_exact(field::MC_LEN)
                        .map(PacketDiagMclist::parse)
                        .collect(),
                )
            }
            PACKET_DIAG_RX_RING => Self::RxRing(
                PacketDiagRing::parse(v).map_err(|e| with_ctx(e, "PACKET_DIAG_RX_RING"))?,
            ),
            PACKET_DIAG_TX_RING => Self::TxRing(
                PacketDiagRing::parse(v).map_err(|e| with_ctx(e, "PACKET_DIAG_TX_RING"))?,
            ),
            PACKET_DIAG_FANOUT => Self::Fanout(Fanout::from_u32(
                exact_u32(v).map_err(|e| with_ctx(e, "PACKET_DIAG_FANOUT"))?,
            )),
            PACKET_DIAG_UID => Self::Uid(exact_u32(v).map_err(|e| with_ctx(e, "PACKET_DIAG_UID"))?),
            PACKET_DIAG_MEMINFO => Self::MemInfo(u32_words(v, "PACKET_DIAG_MEMINFO attribute")?),
            PACKET_DIAG_FILTER => {
                if !v.len().is_multiple_of(field::FILTER_INSN_LEN) {
                    return Err(format!(
                        "PACKET_DIAG_FILTER attribute: {} bytes is not a whole number of \
                         8-byte sock_filter instructions",
                        v.len()
                    )
                    .into());
                }
                Self::Filter(
                    v.chunks_exact(field::FILTER_INSN_LEN)
                        .map(|c| SockFilter {
                            code: u16_at(c, 0..2),
                            jt: c[2],
                            jf: c[3],
                            k: u32_at(c, 4..8),
                        })
                        .collect(),
                )
            }
            _ => Self::Other(DefaultNla::parse(nla)?),
        })
    }
}

fn exact_u32(v: &[u8]) -> Result<u32, DecodeError> {
    if v.len() != 4 {
        return Err(DecodeError::invalid_number(4, v.len()));
    }
    Ok(u32_at(v, 0..4))
}

/// `struct packet_diag_msg` and its attributes: one packet socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketDiagMessage {
    /// `pdiag_type`.
    pub sock_type: SocketType,
    /// `pdiag_num`: the bound protocol, host byte order (`ETH_P_ALL` = 3; 0 = none).
    pub protocol: u16,
    /// `pdiag_ino`: the socket inode, as in `/proc/PID/fd/N -> socket:[INODE]`.
    pub inode: u32,
    /// `pdiag_cookie`: the socket cookie (unique while the system runs).
    pub cookie: u64,
    /// The attributes that followed the message.
    pub attributes: Vec<PacketDiagAttribute>,
}

impl Emitable for PacketDiagMessage {
    fn buffer_len(&self) -> usize {
        field::MSG_LEN + self.attributes.as_slice().buffer_len()
    }
    fn emit(&self, buf: &mut [u8]) {
        buf[field::MSG_FAMILY] = AF_PACKET;
        buf[field::MSG_TYPE] = self.sock_type.into();
        buf[field::MSG_NUM].copy_from_slice(&self.protocol.to_ne_bytes());
        buf[field::MSG_INO].copy_from_slice(&self.inode.to_ne_bytes());
        put_cookie(buf, field::MSG_COOKIE, self.cookie);
        let mut at = field::MSG_LEN;
        for attr in &self.attributes {
            let len = attr.buffer_len();
            attr.emit(&mut buf[at..at + len]);
            // netlink-packet-core's emit drops NLA_F_NET_BYTEORDER when NLA_F_NESTED is
            // also set (set_nested_flag re-reads the masked type); put an unknown
            // attribute's type back exactly as it came.
            if let PacketDiagAttribute::Other(nla) = attr {
                buf[at + 2..at + 4].copy_from_slice(&nla.kind().to_ne_bytes());
            }
            at += len;
        }
    }
}

impl Parseable<[u8]> for PacketDiagMessage {
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need(buf, field::MSG_LEN, "packet_diag_msg")?;
        if buf[field::MSG_FAMILY] != AF_PACKET {
            return Err(format!(
                "packet_diag_msg: family {} is not AF_PACKET ({AF_PACKET})",
                buf[field::MSG_FAMILY]
            )
            .into());
        }
        let mut attributes = Vec::new();
        for nla in NlasIterator::new(&buf[field::MSG_LEN..]) {
            let nla = nla.map_err(|e| format!("packet_diag_msg attributes: {e}"))?;
            attributes.push(PacketDiagAttribute::parse(&nla)?);
        }
        Ok(PacketDiagMessage {
            sock_type: buf[field::MSG_TYPE].into(),
            protocol: u16_at(buf, field::MSG_NUM),
            inode: u32_at(buf, field::MSG_INO),
            cookie: cookie_at(buf, field::MSG_COOKIE),
            attributes,
        })
    }
}

/// A `SOCK_DIAG_BY_FAMILY` message of the `AF_PACKET` family: the payload type for
/// [`NetlinkMessage`]. Requests and responses share the message type; the
/// `NLM_F_REQUEST` flag of the header tells them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketDiag {
    /// A dump request (what we send).
    Request(PacketDiagRequest),
    /// One socket's description (what the kernel answers).
    Response(PacketDiagMessage),
}

impl NetlinkSerializable for PacketDiag {
    fn message_type(&self) -> u16 {
        SOCK_DIAG_BY_FAMILY
    }
    fn buffer_len(&self) -> usize {
        match self {
            PacketDiag::Request(r) => r.buffer_len(),
            PacketDiag::Response(m) => m.buffer_len(),
        }
    }
    fn serialize(&self, buf: &mut [u8]) {
        match self {
            PacketDiag::Request(r) => r.emit(buf),
            PacketDiag::Response(m) => m.emit(buf),
        }
    }
}

impl NetlinkDeserializable for PacketDiag {
    type Error = DecodeError;
    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, DecodeError> {
        if header.message_type != SOCK_DIAG_BY_FAMILY {
            return Err(format!(
                "netlink message type {} is not SOCK_DIAG_BY_FAMILY ({SOCK_DIAG_BY_FAMILY})",
                header.message_type
            )
            .into());
        }
        if header.flags & NLM_F_REQUEST != 0 {
            Ok(PacketDiag::Request(PacketDiagRequest::parse(payload)?))
        } else {
            Ok(PacketDiag::Response(PacketDiagMessage::parse(payload)?))
        }
    }
}

impl From<PacketDiag> for NetlinkPayload<PacketDiag> {
    fn from(m: PacketDiag) -> Self {
        NetlinkPayload::InnerMessage(m)
    }
}

/// The dump request as bytes: `SOCK_DIAG_BY_FAMILY`, `NLM_F_REQUEST | NLM_F_DUMP`.
pub fn dump_request(req: PacketDiagRequest, sequence_number: u32) -> Vec<u8> {
    let mut msg = NetlinkMessage::from(PacketDiag::Request(req));
    msg.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.header.sequence_number = sequence_number;
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Splits one datagram from the kernel into netlink messages. Errors (never panics) on a
/// truncated or malformed datagram.
pub fn parse_datagram(mut buf: &[u8]) -> Result<Vec<NetlinkMessage<PacketDiag>>, DecodeError> {
    if buf.is_empty() {
        return Err("empty netlink datagram".into());
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let nl = NetlinkBuffer::new_checked(buf)?;
        let len = nl.length() as usize;
        out.push(NetlinkMessage::deserialize(&buf[..len])?);
        // NLMSG_ALIGN; the last message may end without padding.
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or(&[]);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Asking the kernel
// ---------------------------------------------------------------------------------------

/// Errors of [`dump`] and [`packet_sockets`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Entering the namespace failed (see the source).
    #[error("cannot enter the network namespace to ask for its packet sockets")]
    Netns(#[from] nsring_netns::Error),
    /// A socket call failed.
    #[error("packet_diag: {call} failed")]
    Sys {
        /// The socket call.
        call: &'static str,
        #[source]
        /// The errno.
        source: io::Error,
    },
    /// The kernel has no packet_diag (module not loaded, or CONFIG_PACKET_DIAG off).
    #[error(
        "the kernel does not support packet_diag: load it with 'modprobe packet_diag' \
         (CONFIG_PACKET_DIAG)"
    )]
    Unsupported(#[source] io::Error),
    /// The kernel answered the dump with an error.
    #[error("the kernel refused the packet_diag dump")]
    Kernel(#[source] io::Error),
    /// The kernel's answer could not be decoded.
    #[error("cannot decode the kernel's packet_diag answer")]
    Decode(#[source] DecodeError),
    /// The dump changed while it was read several times in a row.
    #[error("the packet socket list kept changing during the dump; try again")]
    Interrupted,
    /// Scanning /proc for socket owners failed.
    #[error(transparent)]
    Owners(#[from] owners::Error),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

const RECV_TIMEOUT: Duration = Duration::from_secs(5);
const RECV_BUF: usize = 64 * 1024;

fn sys(call: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Sys { call, source }
}

/// Opens a `NETLINK_SOCK_DIAG` socket inside `ns`.
fn diag_socket(ns: &NetNs) -> Result<Socket> {
    let sock = ns.run(|| -> Result<Socket> {
        let mut sock = Socket::new(NETLINK_SOCK_DIAG).map_err(sys("socket(NETLINK_SOCK_DIAG)"))?;
        sock.bind_auto().map_err(sys("bind"))?;
        Ok(sock)
    })??;
    let tv = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
        .map_err(|e| sys("setsockopt(SO_RCVTIMEO)")(e.into()))?;
    Ok(sock)
}

/// Dumps the raw `packet_diag` messages of every `AF_PACKET` socket in `ns`, asking for
/// `show` (`PACKET_SHOW_*` bits).
pub fn dump(ns: &NetNs, show: u32) -> Result<Vec<PacketDiagMessage>> {
    dump_with(
        ns,
        &PacketDiagRequest {
            show,
            ..PacketDiagRequest::default()
        },
    )
}

/// [`dump`] with a request of the caller's making (the kernel refuses a non-zero
/// `protocol` with EINVAL).
pub fn dump_with(ns: &NetNs, req: &PacketDiagRequest) -> Result<Vec<PacketDiagMessage>> {
    let sock = diag_socket(ns)?;
    // NLM_F_DUMP_INTR is not set by packet_diag today, but a dump that says it was
    // interrupted is retried rather than trusted.
    for seq in 1..=3 {
        match dump_once(&sock, req, seq)? {
            Some(msgs) => return Ok(msgs),
            None => continue,
        }
    }
    Err(Error::Interrupted)
}

fn dump_once(
    sock: &Socket,
    req: &PacketDiagRequest,
    seq: u32,
) -> Result<Option<Vec<PacketDiagMessage>>> {
    let bytes = dump_request(req.clone(), seq);
    sock.send_to(&bytes, &SocketAddr::new(0, 0), 0)
        .map_err(sys("send"))?;
    let mut out = Vec::new();
    let mut interrupted = false;
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
    loop {
        buf.clear();
        let n = sock.recv(&mut buf, libc::MSG_TRUNC).map_err(sys("recv"))?;
        if n > buf.len() {
            return Err(Error::Decode(
                format!("a {n}-byte netlink datagram did not fit the {RECV_BUF}-byte buffer")
                    .into(),
            ));
        }
        for msg in parse_datagram(&buf).map_err(Error::Decode)? {
            if msg.header.sequence_number != seq {
                continue; // a late answer to an earlier attempt
            }
            if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                interrupted = true;
            }
            match msg.payload {
                NetlinkPayload::Done(_) => {
                    return Ok(if interrupted { None } else { Some(out) });
                }
                NetlinkPayload::Error(e) => {
                    let err = e.to_io();
                    return Err(match err.raw_os_error() {
                        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => Error::Unsupported(err),
                        _ => Error::Kernel(err),
                    });
                }
                NetlinkPayload::InnerMessage(PacketDiag::Response(m)) => out.push(m),
                NetlinkPayload::InnerMessage(_) | NetlinkPayload::Noop => {}
                NetlinkPayload::Overrun(_) => {
                    return Err(Error::Decode("netlink overrun during the dump".into()));
                }
                _ => {}
            }
            if msg.header.flags & NLM_F_MULTIPART == 0 {
                // A single non-multipart answer ends the exchange.
                return Ok(Some(out));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The friendly view
// ---------------------------------------------------------------------------------------

/// The Ethernet protocol a packet socket is bound to (host byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(pub u16);

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("none"),
            ETH_P_ALL => f.write_str("all"),
            0x0800 => f.write_str("ip"),
            0x86dd => f.write_str("ipv6"),
            0x0806 => f.write_str("arp"),
            0x8100 => f.write_str("802.1q"),
            0x88cc => f.write_str("lldp"),
            0x888e => f.write_str("eapol"),
            n => write!(f, "0x{n:04x}"),
        }
    }
}
serialize_as_display!(Protocol);

/// What the kernel says about a socket's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum FilterState {
    /// No classic BPF filter (an eBPF one would not show here).
    None,
    /// A classic BPF program of this many instructions.
    Classic {
        /// The program's length.
        instructions: usize,
    },
    /// The kernel does not tell: reading filters needs CAP_NET_ADMIN.
    Hidden,
}

impl FilterState {
    /// Whether a (classic) filter is attached, if known.
    pub fn attached(&self) -> Option<bool> {
        match self {
            FilterState::None => Some(false),
            FilterState::Classic { .. } => Some(true),
            FilterState::Hidden => None,
        }
    }
}

impl fmt::Display for FilterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterState::None => f.write_str("none"),
            FilterState::Classic { instructions } => write!(f, "bpf({instructions})"),
            FilterState::Hidden => f.write_str("?"),
        }
    }
}

/// A socket's memory (`SK_MEMINFO_*`), where the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SocketMemory {
    /// `SK_MEMINFO_RMEM_ALLOC`: bytes queued for reading.
    pub rmem_alloc: u32,
    /// `SK_MEMINFO_RCVBUF`: the receive buffer size.
    pub rcvbuf: u32,
    /// `SK_MEMINFO_WMEM_ALLOC`: bytes being sent.
    pub wmem_alloc: u32,
    /// `SK_MEMINFO_SNDBUF`: the send buffer size.
    pub sndbuf: u32,
    /// `SK_MEMINFO_FWD_ALLOC`: memory reserved ahead.
    pub fwd_alloc: u32,
    /// `SK_MEMINFO_WMEM_QUEUED`: bytes queued for sending.
    pub wmem_queued: u32,
    /// `SK_MEMINFO_OPTMEM`: option memory.
    pub optmem: u32,
    /// `SK_MEMINFO_BACKLOG`: the backlog length.
    pub backlog: u32,
    /// `sk_drops` (kernels since 4.x report it).
    pub drops: Option<u32>,
}

impl SocketMemory {
    fn from_words(w: &[u32]) -> Option<Self> {
        if w.len() < 8 {
            return None;
        }
        Some(SocketMemory {
            rmem_alloc: w[0],
            rcvbuf: w[1],
            wmem_alloc: w[2],
            sndbuf: w[3],
            fwd_alloc: w[4],
            wmem_queued: w[5],
            optmem: w[6],
            backlog: w[7],
            drops: w.get(8).copied(),
        })
    }
}

/// One `AF_PACKET` socket of a namespace, as the kernel reports it, with its owners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketSocket {
    /// Socket inode (`socket:[INODE]`).
    pub inode: u64,
    /// Socket cookie.
    pub cookie: u64,
    /// `SOCK_RAW` (with link-layer header) or `SOCK_DGRAM` (without).
    pub sock_type: SocketType,
    /// The protocol the socket was opened for (`ETH_P_ALL`, ...).
    pub protocol: Protocol,
    /// Bound interface; 0 = any interface.
    pub ifindex: u32,
    /// The bound interface's name in the socket's namespace (None for "any" or when the
    /// interface vanished).
    pub ifname: Option<String>,
    /// Ring format (None when the kernel did not send PACKET_DIAG_INFO).
    pub version: Option<TpacketVersion>,
    /// Hooked into the receive path.
    pub running: bool,
    /// The rest of PACKET_DIAG_INFO.
    pub info: Option<PacketDiagInfo>,
    /// The receive ring, if one is set up.
    pub rx_ring: Option<PacketDiagRing>,
    /// The transmit ring, if one is set up.
    pub tx_ring: Option<PacketDiagRing>,
    /// The fanout group, if the kernel reports it.
    pub fanout: Option<Fanout>,
    /// The attached filter, as far as the kernel tells.
    pub filter: FilterState,
    /// The owner's uid.
    pub uid: Option<u32>,
    /// The socket's memory, where reported.
    pub memory: Option<SocketMemory>,
    /// Memberships (promiscuous, multicast, ...).
    pub memberships: Vec<PacketDiagMclist>,
    /// Processes holding a descriptor of this socket (empty if none could be found, e.g.
    /// a socket held only by a process whose /proc entries we cannot read).
    pub owners: Vec<Owner>,
}

impl PacketSocket {
    /// Builds the view of one socket from the kernel's message; `ifname` resolves an
    /// interface index in the socket's namespace. Pure: no system calls of its own.
    pub fn from_diag(
        msg: &PacketDiagMessage,
        ifname: impl Fn(u32) -> Option<String>,
        owners: &SocketOwners,
    ) -> Self {
        let mut s = PacketSocket {
            inode: u64::from(msg.inode),
            cookie: msg.cookie,
            sock_type: msg.sock_type,
            protocol: Protocol(msg.protocol),
            ifindex: 0,
            ifname: None,
            version: None,
            running: false,
            info: None,
            rx_ring: None,
            tx_ring: None,
            fanout: None,
            filter: FilterState::None,
            uid: None,
            memory: None,
            memberships: Vec::new(),
            owners: owners.get(u64::from(msg.inode)).to_vec(),
        };
        for attr in &msg.attributes {
            match attr {
                PacketDiagAttribute::Info(info) => {
                    s.ifindex = info.ifindex;
                    s.version = Some(info.version);
                    s.running = info.running();
                    s.info = Some(*info);
                }
                PacketDiagAttribute::Mclist(v) => s.memberships.clone_from(v),
                PacketDiagAttribute::RxRing(r) => s.rx_ring = Some(*r),
                PacketDiagAttribute::TxRing(r) => s.tx_ring = Some(*r),
                PacketDiagAttribute::Fanout(f) => s.fanout = Some(*f),
                PacketDiagAttribute::Uid(u) => s.uid = Some(*u),
                PacketDiagAttribute::MemInfo(w) => s.memory = SocketMemory::from_words(w),
                PacketDiagAttribute::Filter(v) if v.is_empty() => s.filter = FilterState::Hidden,
                PacketDiagAttribute::Filter(v) => {
                    s.filter = FilterState::Classic {
                        instructions: v.len(),
                    }
                }
                _ => {}
            }
        }
        if s.ifindex != 0 {
            s.ifname = ifname(s.ifindex);
        }
        s
    }

    /// `comm[pid]` of each owner, comma-separated (`tcpdump[4242]`), or `-`.
    pub fn owners_text(&self) -> String {
        if self.owners.is_empty() {
            return "-".to_owned();
        }
        self.owners
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Every `AF_PACKET` socket of `ns`, from the kernel, with interface names resolved inside
/// `ns` and owners found by one scan of `/proc`.
pub fn packet_sockets(ns: &NetNs) -> Result<Vec<PacketSocket>> {
    let msgs = dump(ns, PACKET_SHOW_ALL)?;
    let indexes: BTreeSet<u32> = msgs
        .iter()
        .flat_map(|m| &m.attributes)
        .filter_map(|a| match a {
            PacketDiagAttribute::Info(i) if i.ifindex != 0 => Some(i.ifindex),
            _ => None,
        })
        .collect();
    let names: BTreeMap<u32, String> = if indexes.is_empty() {
        BTreeMap::new()
    } else {
        ns.run(|| {
            indexes
                .iter()
                .filter_map(|&i| {
                    let name = nix::net::if_::if_indextoname(i).ok()?;
                    Some((i, name.to_string_lossy().into_owned()))
                })
                .collect()
        })?
    };
    let owners = owners::scan()?;
    let mut out: Vec<PacketSocket> = msgs
        .iter()
        .map(|m| PacketSocket::from_diag(m, |i| names.get(&i).cloned(), &owners))
        .collect();
    out.sort_by_key(|s| s.inode);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Annotated bytes, little-endian (x86_64, aarch64).

    #[rustfmt::skip]
    const REQUEST: [u8; 36] = [
        // nlmsghdr
        0x24, 0x00, 0x00, 0x00, // nlmsg_len = 36
        0x14, 0x00,             // nlmsg_type = SOCK_DIAG_BY_FAMILY (20)
        0x01, 0x03,             // nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP (0x301)
        0x07, 0x00, 0x00, 0x00, // nlmsg_seq = 7
        0x00, 0x00, 0x00, 0x00, // nlmsg_pid = 0
        // packet_diag_req
        0x11,                   // sdiag_family = AF_PACKET (17)
        0x00,                   // sdiag_protocol = 0
        0x00, 0x00,             // pad
        0x00, 0x00, 0x00, 0x00, // pdiag_ino = 0
        0x3f, 0x00, 0x00, 0x00, // pdiag_show = INFO|MCLIST|RING_CFG|FANOUT|MEMINFO|FILTER
        0xff, 0xff, 0xff, 0xff, // pdiag_cookie[0] = INET_DIAG_NOCOOKIE
        0xff, 0xff, 0xff, 0xff, // pdiag_cookie[1] = INET_DIAG_NOCOOKIE
    ];

    #[rustfmt::skip]
    const RESPONSE: [u8; 256] = [
        // nlmsghdr
        0x00, 0x01, 0x00, 0x00, // nlmsg_len = 256
        0x14, 0x00,             // nlmsg_type = SOCK_DIAG_BY_FAMILY
        0x02, 0x00,             // nlmsg_flags = NLM_F_MULTI
        0x07, 0x00, 0x00, 0x00, // nlmsg_seq = 7
        0x39, 0x30, 0x00, 0x00, // nlmsg_pid = 12345
        // packet_diag_msg
        0x11,                   // pdiag_family = AF_PACKET
        0x03,                   // pdiag_type = SOCK_RAW
        0x03, 0x00,             // pdiag_num = ETH_P_ALL (host order)
        0x44, 0x3d, 0x00, 0x00, // pdiag_ino = 15684
        0x2a, 0x10, 0x00, 0x00, // pdiag_cookie[0] = 0x102a
        0x01, 0x00, 0x00, 0x00, // pdiag_cookie[1] = 1
        // PACKET_DIAG_INFO: len 28, type 0
        0x1c, 0x00, 0x00, 0x00,
        0x05, 0x00, 0x00, 0x00, // pdi_index = 5
        0x02, 0x00, 0x00, 0x00, // pdi_version = TPACKET_V3
        0x00, 0x00, 0x00, 0x00, // pdi_reserve = 0
        0x00, 0x00, 0x00, 0x00, // pdi_copy_thresh = 0
        0x00, 0x00, 0x00, 0x00, // pdi_tstamp = 0
        0x03, 0x00, 0x00, 0x00, // pdi_flags = PDI_RUNNING | PDI_AUXDATA
        // PACKET_DIAG_UID: len 8, type 5
        0x08, 0x00, 0x05, 0x00,
        0xe8, 0x03, 0x00, 0x00, // uid = 1000
        // PACKET_DIAG_MCLIST: len 48, type 1, one packet_diag_mclist
        0x30, 0x00, 0x01, 0x00,
        0x05, 0x00, 0x00, 0x00, // pdmc_index = 5
        0x01, 0x00, 0x00, 0x00, // pdmc_count = 1
        0x01, 0x00,             // pdmc_type = PACKET_MR_PROMISC
        0x00, 0x00,             // pdmc_alen = 0
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // pdmc_addr[32]
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // PACKET_DIAG_RX_RING: len 32, type 2
        0x20, 0x00, 0x02, 0x00,
        0x00, 0x00, 0x04, 0x00, // pdr_block_size = 256 KiB
        0x08, 0x00, 0x00, 0x00, // pdr_block_nr = 8
        0x00, 0x00, 0x04, 0x00, // pdr_frame_size = 256 KiB
        0x08, 0x00, 0x00, 0x00, // pdr_frame_nr = 8
        0x64, 0x00, 0x00, 0x00, // pdr_retire_tmo = 100 ms
        0x00, 0x00, 0x00, 0x00, // pdr_sizeof_priv = 0
        0x00, 0x00, 0x00, 0x00, // pdr_features = 0
        // PACKET_DIAG_TX_RING: len 32, type 3 (a V2 ring)
        0x20, 0x00, 0x03, 0x00,
        0x00, 0x10, 0x00, 0x00, // pdr_block_size = 4096
        0x02, 0x00, 0x00, 0x00, // pdr_block_nr = 2
        0x00, 0x08, 0x00, 0x00, // pdr_frame_size = 2048
        0x04, 0x00, 0x00, 0x00, // pdr_frame_nr = 4
        0x00, 0x00, 0x00, 0x00, // pdr_retire_tmo
        0x00, 0x00, 0x00, 0x00, // pdr_sizeof_priv
        0x00, 0x00, 0x00, 0x00, // pdr_features
        // PACKET_DIAG_FANOUT: len 8, type 4
        0x08, 0x00, 0x04, 0x00,
        0x2a, 0x00, 0x00, 0x00, // id 42 | PACKET_FANOUT_HASH << 16
        // PACKET_DIAG_MEMINFO: len 40, type 6, SK_MEMINFO_VARS = 9 u32
        0x28, 0x00, 0x06, 0x00,
        0x00, 0x00, 0x00, 0x00, // rmem_alloc
        0x00, 0x40, 0x03, 0x00, // rcvbuf = 212992
        0x00, 0x00, 0x00, 0x00, // wmem_alloc
        0x00, 0x40, 0x03, 0x00, // sndbuf = 212992
        0x00, 0x00, 0x00, 0x00, // fwd_alloc
        0x00, 0x00, 0x00, 0x00, // wmem_queued
        0x00, 0x00, 0x00, 0x00, // optmem
        0x00, 0x00, 0x00, 0x00, // backlog
        0x07, 0x00, 0x00, 0x00, // drops = 7
        // PACKET_DIAG_FILTER: len 20, type 7, two sock_filter
        0x14, 0x00, 0x07, 0x00,
        0x28, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, // ldh [12]
        0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, // ret #262144
        // an attribute from a newer kernel: len 7, type 99, 3 bytes + 1 padding
        0x07, 0x00, 0x63, 0x00,
        0xaa, 0xbb, 0xcc, 0x00,
    ];

    #[rustfmt::skip]
    const DONE: [u8; 20] = [
        0x14, 0x00, 0x00, 0x00, // nlmsg_len = 20
        0x03, 0x00,             // NLMSG_DONE
        0x02, 0x00,             // NLM_F_MULTI
        0x07, 0x00, 0x00, 0x00, // seq 7
        0x39, 0x30, 0x00, 0x00, // pid 12345
        0x00, 0x00, 0x00, 0x00, // error = 0
    ];

    fn response_message() -> PacketDiagMessage {
        PacketDiagMessage {
            sock_type: SocketType::Raw,
            protocol: ETH_P_ALL,
            inode: 15684,
            cookie: 0x1_0000_102a,
            attributes: vec![
                PacketDiagAttribute::Info(PacketDiagInfo {
                    ifindex: 5,
                    version: TpacketVersion::V3,
                    reserve: 0,
                    copy_thresh: 0,
                    tstamp: 0,
                    flags: PDI_RUNNING | PDI_AUXDATA,
                }),
                PacketDiagAttribute::Uid(1000),
                PacketDiagAttribute::Mclist(vec![PacketDiagMclist {
                    ifindex: 5,
                    count: 1,
                    kind: MembershipType::Promisc,
                    alen: 0,
                    addr: [0; 32],
                }]),
                PacketDiagAttribute::RxRing(PacketDiagRing {
                    block_size: 256 * 1024,
                    block_nr: 8,
                    frame_size: 256 * 1024,
                    frame_nr: 8,
                    retire_tmo: 100,
                    sizeof_priv: 0,
                    features: 0,
                }),
                PacketDiagAttribute::TxRing(PacketDiagRing {
                    block_size: 4096,
                    block_nr: 2,
                    frame_size: 2048,
                    frame_nr: 4,
                    retire_tmo: 0,
                    sizeof_priv: 0,
                    features: 0,
                }),
                PacketDiagAttribute::Fanout(Fanout {
                    id: 42,
                    kind: FanoutType::Hash,
                    flags: 0,
                }),
                PacketDiagAttribute::MemInfo(vec![0, 212992, 0, 212992, 0, 0, 0, 0, 7]),
                PacketDiagAttribute::Filter(vec![
                    SockFilter {
                        code: 0x28,
                        jt: 0,
                        jf: 0,
                        k: 12,
                    },
                    SockFilter {
                        code: 0x06,
                        jt: 0,
                        jf: 0,
                        k: 262144,
                    },
                ]),
                PacketDiagAttribute::Other(DefaultNla::new(99, vec![0xaa, 0xbb, 0xcc])),
            ],
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn request_bytes() {
        let req = PacketDiagRequest::default();
        assert_eq!(dump_request(req.clone(), 7), REQUEST);
        let msgs = parse_datagram(&REQUEST).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].header.flags, NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(msgs[0].header.sequence_number, 7);
        assert_eq!(
            msgs[0].payload,
            NetlinkPayload::InnerMessage(PacketDiag::Request(req))
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn response_parses_and_emits_the_same_bytes() {
        let msgs = parse_datagram(&RESPONSE).unwrap();
        assert_eq!(msgs.len(), 1);
        let msg = &msgs[0];
        assert_eq!(msg.header.length, 256);
        assert_eq!(msg.header.port_number, 12345);
        let NetlinkPayload::InnerMessage(PacketDiag::Response(m)) = &msg.payload else {
            panic!("not a response: {msg:?}");
        };
        assert_eq!(*m, response_message());

        let mut back = vec![0; msg.buffer_len()];
        msg.serialize(&mut back);
        assert_eq!(back, RESPONSE);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn a_datagram_of_several_messages() {
        let mut dgram = RESPONSE.to_vec();
        dgram.extend_from_slice(&DONE);
        let msgs = parse_datagram(&dgram).unwrap();
        assert_eq!(msgs.len(), 2);
        assert!(matches!(msgs[1].payload, NetlinkPayload::Done(_)));
    }

    #[test]
    fn the_friendly_view() {
        let owners = SocketOwners::default();
        let names = |i: u32| (i == 5).then(|| "veth0".to_owned());
        let s = PacketSocket::from_diag(&response_message(), names, &owners);
        assert_eq!(s.inode, 15684);
        assert_eq!(s.protocol.to_string(), "all");
        assert_eq!(s.sock_type.to_string(), "raw");
        assert_eq!((s.ifindex, s.ifname.as_deref()), (5, Some("veth0")));
        assert_eq!(s.version, Some(TpacketVersion::V3));
        assert!(s.running);
        assert_eq!(s.rx_ring.unwrap().bytes(), 2 * 1024 * 1024);
        assert_eq!(s.tx_ring.unwrap().frame_nr, 4);
        assert_eq!(s.fanout.unwrap().kind.to_string(), "hash");
        assert_eq!(s.filter, FilterState::Classic { instructions: 2 });
        assert_eq!(s.uid, Some(1000));
        assert_eq!(s.memory.unwrap().drops, Some(7));
        assert_eq!(s.memberships[0].kind, MembershipType::Promisc);
        assert_eq!(s.owners_text(), "-");

        // No FILTER attribute: no filter; an empty one: the kernel would not say.
        let mut m = response_message();
        m.attributes
            .retain(|a| !matches!(a, PacketDiagAttribute::Filter(_)));
        let s = PacketSocket::from_diag(&m, names, &owners);
        assert_eq!(s.filter, FilterState::None);
        m.attributes.push(PacketDiagAttribute::Filter(vec![]));
        let s = PacketSocket::from_diag(&m, names, &owners);
        assert_eq!(s.filter, FilterState::Hidden);
        assert_eq!(s.filter.attached(), None);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for len in 0..RESPONSE.len() {
            let mut cut = RESPONSE[..len].to_vec();
            // As received (length field says 256): must fail.
            assert!(parse_datagram(&cut).is_err(), "accepted {len} bytes");
            // With the header's length fixed up: every cut inside an attribute must fail,
            // cuts at attribute boundaries parse to fewer attributes.
            if len >= 16 {
                cut[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
                if let Ok(msgs) = parse_datagram(&cut) {
                    let NetlinkPayload::InnerMessage(PacketDiag::Response(m)) = &msgs[0].payload
                    else {
                        panic!("{len}: not a response");
                    };
                    // The last attribute's padding is optional.
                    assert!(m.attributes.len() < 9 || len >= RESPONSE.len() - 1, "{len}");
                }
            }
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn wrong_sizes_are_errors() {
        // (offset of the attribute in RESPONSE, what a shorter length must do)
        let attr_at = |kind: u16| {
            let mut off = 16 + field::MSG_LEN;
            loop {
                let len = u16::from_ne_bytes([RESPONSE[off], RESPONSE[off + 1]]) as usize;
                if u16::from_ne_bytes([RESPONSE[off + 2], RESPONSE[off + 3]]) == kind {
                    return off;
                }
                off += (len + 3) & !3;
            }
        };
        for (kind, bad_len) in [
            (PACKET_DIAG_INFO, 4 + 20),
            (PACKET_DIAG_MCLIST, 4 + 40),
            (PACKET_DIAG_RX_RING, 4 + 24),
            (PACKET_DIAG_FANOUT, 4 + 2),
            (PACKET_DIAG_UID, 4 + 3),
            (PACKET_DIAG_MEMINFO, 4 + 34),
            (PACKET_DIAG_FILTER, 4 + 12),
        ] {
            let mut bytes = RESPONSE.to_vec();
            let off = attr_at(kind);
            bytes[off..off + 2].copy_from_slice(&(bad_len as u16).to_ne_bytes());
            // The attribute's tail now reads as the next attribute header; whatever that
            // produces, the shortened attribute itself must be refused.
            let err = PacketDiagMessage::parse(&bytes[16..]).unwrap_err();
            assert!(!err.to_string().is_empty(), "kind {kind}");
        }
        // Not AF_PACKET.
        let mut bytes = RESPONSE.to_vec();
        bytes[16] = 2;
        assert!(parse_datagram(&bytes).is_err());
        // Not SOCK_DIAG_BY_FAMILY.
        let mut bytes = RESPONSE.to_vec();
        bytes[4] = 21;
        assert!(parse_datagram(&bytes).is_err());
        // Length field smaller than a header.
        let mut bytes = RESPONSE.to_vec();
        bytes[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(parse_datagram(&bytes).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic xorshift fuzzer over mutated and random inputs.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                RESPONSE.to_vec()
            } else {
                (0..(next() % 300) as usize).map(|_| next() as u8).collect()
            };
            for _ in 0..(next() % 8) {
                if bytes.is_empty() {
                    break;
                }
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            if next() % 4 == 0 {
                let keep = (next() as usize) % (bytes.len() + 1);
                bytes.truncate(keep);
            }
            if let Ok(msgs) = parse_datagram(&bytes) {
                // Whatever parses must emit and parse back to itself.
                for m in msgs {
                    if let NetlinkPayload::InnerMessage(inner) = &m.payload {
                        let mut m2 = NetlinkMessage::from(inner.clone());
                        m2.header.flags = m.header.flags;
                        m2.finalize();
                        let mut buf = vec![0; m2.buffer_len()];
                        m2.serialize(&mut buf);
                        let again = parse_datagram(&buf).unwrap();
                        assert_eq!(again[0].payload, m.payload, "input {bytes:02x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn fanout_word() {
        let f = Fanout::from_u32(0x0003_002a);
        assert_eq!(
            f,
            Fanout {
                id: 42,
                kind: FanoutType::Rollover,
                flags: 0
            }
        );
        assert_eq!(f.to_u32(), 0x0003_002a);
        let g = Fanout::from_u32(0x9009_ffff);
        assert_eq!(g.kind, FanoutType::Other(9));
        assert_eq!(g.flags, 0x9000);
        assert_eq!(g.id, 0xffff);
        assert_eq!(g.to_u32(), 0x9009_ffff);
    }

    #[test]
    fn enums_survive_round_trips() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(SocketType::from(v)), v);
            assert_eq!(u8::from(FanoutType::from(v)), v);
        }
        for v in 0..=300u32 {
            assert_eq!(u32::from(TpacketVersion::from(v)), v);
        }
        for v in 0..=300u16 {
            assert_eq!(u16::from(MembershipType::from(v)), v);
        }
        assert_eq!(FanoutType::from(7).to_string(), "ebpf");
        assert_eq!(Protocol(3).to_string(), "all");
        assert_eq!(Protocol(0x1234).to_string(), "0x1234");
    }

    #[test]
    fn memory_needs_eight_words() {
        assert_eq!(SocketMemory::from_words(&[1; 7]), None);
        assert_eq!(SocketMemory::from_words(&[1; 8]).unwrap().drops, None);
        assert_eq!(
            SocketMemory::from_words(&[0, 1, 2, 3, 4, 5, 6, 7, 8])
                .unwrap()
                .drops,
            Some(8)
        );
    }
}
