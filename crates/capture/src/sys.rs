//! The syscall funnel: every system call of the capture engine goes through this module,
//! so the ring logic above it (block walking, frame parsing) is plain code over bytes
//! that unit tests drive with synthetic blocks, without root.
//!
//! The kernel ABI used here is the one of `include/uapi/linux/if_packet.h` and
//! `include/uapi/linux/filter.h`; the structures are re-declared with their C layout and
//! their sizes checked in tests.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

// --- include/uapi/linux/if_packet.h ---------------------------------------------------

/// The socket level of packet socket options.
pub const SOL_PACKET: libc::c_int = 263;
/// Option: join a membership (promiscuous mode) for the socket's lifetime.
pub const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
/// Option: set up the receive ring.
pub const PACKET_RX_RING: libc::c_int = 5;
/// Option: read (and reset) the socket's statistics.
pub const PACKET_STATISTICS: libc::c_int = 6;
/// Option: the ring's TPACKET version.
pub const PACKET_VERSION: libc::c_int = 10;
/// `PACKET_VNET_HDR`: a `struct virtio_net_hdr` before every frame, received and sent.
pub const PACKET_VNET_HDR: libc::c_int = 15;
/// Option: join a fanout group.
pub const PACKET_FANOUT: libc::c_int = 18;
/// Option: do not see the frames this host sends.
pub const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// The TPACKET_V3 ring version.
pub const TPACKET_V3: libc::c_int = 2;
/// Membership type: promiscuous mode.
pub const PACKET_MR_PROMISC: u16 = 1;
/// Every protocol (the protocol a capture socket binds).
pub const ETH_P_ALL: u16 = 0x0003;

/// `sll_pkttype` values.
pub const PACKET_OUTGOING: u8 = 4;

/// Fanout modes and flags (`PACKET_FANOUT_*`).
pub const PACKET_FANOUT_HASH: u16 = 0;
/// Fanout: round robin.
pub const PACKET_FANOUT_LB: u16 = 1;
/// Fanout: by the CPU the packet arrived on.
pub const PACKET_FANOUT_CPU: u16 = 2;
/// Fanout: fill one socket, then the next.
pub const PACKET_FANOUT_ROLLOVER: u16 = 3;
/// Fanout: random.
pub const PACKET_FANOUT_RND: u16 = 4;
/// Fanout: by the recorded receive queue.
pub const PACKET_FANOUT_QM: u16 = 5;
/// Fanout flag: outgoing packets are not spread to the group.
pub const PACKET_FANOUT_FLAG_IGNORE_OUTGOING: u16 = 0x4000;
/// Fanout flag: reassemble IP fragments before hashing.
pub const PACKET_FANOUT_FLAG_DEFRAG: u16 = 0x8000;

/// Block and frame status bits (`TP_STATUS_*`).
pub const TP_STATUS_KERNEL: u32 = 0;
/// The block (or frame) belongs to user space.
pub const TP_STATUS_USER: u32 = 1 << 0;
/// Packets were dropped since the last block was handed over.
pub const TP_STATUS_LOSING: u32 = 1 << 2;
/// The frame's VLAN TCI is valid.
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// The block was handed over by the retire timer, not because it was full.
pub const TP_STATUS_BLK_TMO: u32 = 1 << 5;
/// The frame's VLAN TPID is valid.
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// `TPACKET_ALIGNMENT`.
pub const TPACKET_ALIGNMENT: usize = 16;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TpacketReq3 {
    /// Bytes per block (a multiple of the page size).
    pub tp_block_size: u32,
    /// Number of blocks.
    pub tp_block_nr: u32,
    /// Frame size (TPACKET_V3 packs frames; used only for the frame count check).
    pub tp_frame_size: u32,
    /// Number of frames (blocks × frames per block).
    pub tp_frame_nr: u32,
    /// Milliseconds after which a partly filled block is handed over.
    pub tp_retire_blk_tov: u32,
    /// Private bytes at the start of each block.
    pub tp_sizeof_priv: u32,
    /// Feature requests (`TP_FT_REQ_FILL_RXHASH`).
    pub tp_feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TpacketStatsV3 {
    /// Packets that passed the filter, drops included.
    pub tp_packets: u32,
    /// Packets dropped because the ring was full.
    pub tp_drops: u32,
    /// Times the ring queue was frozen.
    pub tp_freeze_q_cnt: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: u16,
    mr_alen: u16,
    mr_address: [u8; 8],
}

/// `struct sock_filter` (include/uapi/linux/filter.h): one classic BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

// --- layout of the ring (see ring.rs / frame.rs) ---------------------------------------

/// `sizeof(struct tpacket_block_desc)`.
pub const BLOCK_DESC_LEN: usize = 48;
/// `sizeof(struct tpacket3_hdr)`; the `sockaddr_ll` follows at `TPACKET_ALIGN(48)` = 48.
pub const TPACKET3_HDR_LEN: usize = 48;
/// `sizeof(struct sockaddr_ll)`.
pub const SOCKADDR_LL_LEN: usize = 20;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)`: protocol 0, so the socket receives
/// nothing until it is bound (net/packet/af_packet.c `packet_create`: no hook registered
/// when `proto == 0`).
pub fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative return is a new descriptor that
    // nothing else owns, so OwnedFd may take it.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            0,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn setsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
) -> io::Result<()> {
    // SAFETY: `v` points to a live, initialised `T` of `size_of::<T>()` bytes for the call;
    // the kernel only reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// An integer socket option of SOL_PACKET.
pub fn set_packet_int(fd: BorrowedFd<'_>, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    setsockopt(fd, SOL_PACKET, name, &value)
}

/// `PACKET_RX_RING` with a TPACKET_V3 request.
pub fn set_rx_ring(fd: BorrowedFd<'_>, req: &TpacketReq3) -> io::Result<()> {
    setsockopt(fd, SOL_PACKET, PACKET_RX_RING, req)
}

/// `SO_ATTACH_FILTER` with a classic BPF program.
pub fn attach_filter(fd: BorrowedFd<'_>, prog: &[SockFilter]) -> io::Result<()> {
    let len = libc::c_ushort::try_from(prog.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// `PACKET_ADD_MEMBERSHIP` of type `PACKET_MR_PROMISC` (dropped with the socket).
pub fn add_promisc(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let mreq = PacketMreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: PACKET_MR_PROMISC,
        ..PacketMreq::default()
    };
    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
}

/// `bind` to `protocol` (host order) on `ifindex` (0 = every interface of the namespace).
pub fn bind_packet(fd: BorrowedFd<'_>, protocol: u16, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a live sockaddr_ll and the length passed is its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `PACKET_STATISTICS`: the kernel's counters since the previous read (it resets them).
pub fn packet_stats(fd: BorrowedFd<'_>) -> io::Result<TpacketStatsV3> {
    let mut st = TpacketStatsV3::default();
    let mut len = size_of::<TpacketStatsV3>() as libc::socklen_t;
    // SAFETY: `st` is writable for `len` bytes and `len` is a live socklen_t; the kernel
    // writes at most `len` bytes and updates `len`.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            SOL_PACKET,
            PACKET_STATISTICS,
            (&mut st as *mut TpacketStatsV3).cast(),
            &mut len,
        )
    })?;
    Ok(st)
}

/// `if_nametoindex` in the calling thread's namespace.
pub fn if_nametoindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| io::Error::from_raw_os_error(e as i32))
}

/// Waits until `sock` is readable (or in error) or `wake` is readable, at most
/// `timeout_ms` (-1 = forever). Returns the socket's `revents` and whether `wake` fired.
pub fn poll_ready(
    sock: BorrowedFd<'_>,
    wake: Option<BorrowedFd<'_>>,
    timeout_ms: libc::c_int,
) -> io::Result<(libc::c_short, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            // a negative fd is ignored by poll(2)
            fd: wake.map_or(-1, |w| w.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a live array of two pollfd and we pass its length.
    cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) })?;
    Ok((fds[0].revents, fds[1].revents != 0))
}

/// The interface index a packet socket is bound to now (`getsockname`): the kernel sets
/// it to -1 when the interface leaves the namespace (`NETDEV_UNREGISTER` in
/// `net/packet/af_packet.c`'s `packet_notifier`), and leaves it when it only goes down.
pub fn bound_ifindex(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `sll` is writable for `len` bytes; the kernel writes at most that.
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    })?;
    Ok(sll.sll_ifindex)
}

/// Reads and clears a socket's pending error (`SO_ERROR`).
pub fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` is a writable c_int and `len` its size; the kernel writes at most that.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(err)
}

/// `send(fd, buf, 0)` on a bound packet socket: transmits one whole frame.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live slice; the kernel reads at most `buf.len()` bytes.
    let r = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// A non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) takes no pointers; a non-negative return is a new descriptor
    // that nothing else owns.
    unsafe {
        let fd = cvt(libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Adds 1 to an eventfd (makes it readable until read; we never read it).
pub fn eventfd_signal(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64, as eventfd(2) requires.
    let r = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if r == 8 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        // EAGAIN: the counter is saturated, i.e. already signalled.
        if e.raw_os_error() == Some(libc::EAGAIN) {
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// A shared, read-write mapping of a packet socket's ring; unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving the owner to another
// thread moves exclusive ownership with it (nothing is tied to the creating thread).
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd`'s ring (net/packet/af_packet.c `packet_mmap`: the whole
    /// ring must be mapped at offset 0 in one go).
    pub fn ring(fd: impl AsFd, len: usize) -> io::Result<Mmap> {
        // SAFETY: a fresh shared mapping chosen by the kernel (addr NULL); no existing
        // memory is affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mmap { ptr, len })
    }

    /// The start of the mapping.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty mapping.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no borrow of the mapping
        // outlives this value (blocks borrow the Capture that owns it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_sizes() {
        assert_eq!(size_of::<TpacketReq3>(), 28);
        assert_eq!(size_of::<TpacketStatsV3>(), 12);
        assert_eq!(size_of::<PacketMreq>(), 16);
        assert_eq!(size_of::<SockFilter>(), 8);
        assert_eq!(size_of::<SockFprog>(), 16);
        assert_eq!(size_of::<libc::sockaddr_ll>(), SOCKADDR_LL_LEN);
    }

    #[test]
    fn eventfd_signal_makes_it_readable() {
        let efd = eventfd().unwrap();
        let other = eventfd().unwrap();
        assert_eq!(
            poll_ready(other.as_fd(), Some(efd.as_fd()), 0).unwrap(),
            (0, false)
        );
        eventfd_signal(efd.as_fd()).unwrap();
        eventfd_signal(efd.as_fd()).unwrap();
        assert_eq!(
            poll_ready(other.as_fd(), Some(efd.as_fd()), 0).unwrap(),
            (0, true)
        );
        assert_eq!(poll_ready(other.as_fd(), None, 0).unwrap(), (0, false));
    }
}
