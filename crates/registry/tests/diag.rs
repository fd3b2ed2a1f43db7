//! The kernel's packet sockets, for real (root): sockets opened in lab namespaces must show
//! in their namespace's packet_diag dump, with the right details and owners, and nowhere
//! else.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;
use nsring_registry::diag::{
    self, FanoutType, FilterState, PACKET_SHOW_ALL, PacketDiagRequest, PacketSocket, SocketType,
    TpacketVersion,
};
use nsring_registry::packet_sockets;

/// An AF_PACKET/SOCK_RAW/ETH_P_ALL socket created inside `ns`.
fn packet_socket_in(ns: &NetNs) -> OwnedFd {
    ns.run(|| {
        socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
    })
    .expect("enter namespace")
    .expect("socket(AF_PACKET, SOCK_RAW, ETH_P_ALL): needs CAP_NET_RAW")
}

fn check(ret: libc::c_int, what: &str) {
    assert!(ret == 0, "{what}: {}", std::io::Error::last_os_error());
}

/// bind(2) to an interface index, all protocols.
fn bind_to(fd: &impl AsFd, ifindex: u32) {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: the fd is open for the call's duration; the pointer and length describe
    // `sll`, which lives on this stack frame.
    let ret = unsafe {
        libc::bind(
            fd.as_fd().as_raw_fd(),
            (&raw const sll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    check(ret, "bind(AF_PACKET)");
}

/// setsockopt(SOL_PACKET, PACKET_FANOUT, id | type << 16).
fn join_fanout(fd: &impl AsFd, id: u16, kind: u16) {
    let val: u32 = u32::from(id) | (u32::from(kind) << 16);
    // SAFETY: the fd is open; the pointer and length describe `val`, a u32 on this frame.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&raw const val).cast::<libc::c_void>(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    check(ret, "setsockopt(PACKET_FANOUT)");
}

/// SO_ATTACH_FILTER with a 4-instruction classic program ("ip"):
/// `ldh [12]; jeq #0x800, L1, L2; L1: ret #262144; L2: ret #0`.
fn attach_ip_filter(fd: &impl AsFd) -> usize {
    let mut prog = [
        libc::sock_filter {
            code: 0x28,
            jt: 0,
            jf: 0,
            k: 12,
        },
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: 0x0800,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 262_144,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: the fd is open; `fprog` points at `prog`, both alive for the call, and the
    // kernel copies the program before returning.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const fprog).cast::<libc::c_void>(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    check(ret, "setsockopt(SO_ATTACH_FILTER)");
    prog.len()
}

fn inode_of(fd: &impl AsFd) -> u64 {
    nix::sys::stat::fstat(fd.as_fd()).expect("fstat").st_ino
}

fn find(list: &[PacketSocket], inode: u64) -> Option<&PacketSocket> {
    list.iter().find(|s| s.inode == inode)
}

/// A fanout id unlikely to be in use by a parallel test (ids are per namespace anyway).
fn fanout_id(salt: u16) -> u16 {
    (std::process::id() as u16)
        .wrapping_mul(31)
        .wrapping_add(salt)
}

#[test]
fn our_socket_shows_with_owner_interface_fanout_and_filter() {
    let mut lab = Lab::new("pdiag");
    lab.netns("a");
    lab.netns("b");
    let (ia, _ib) = lab.veth("a", "pd0", "b", "pd1");
    let a = lab.ns("a");

    let fd = packet_socket_in(a);
    bind_to(&fd, ia);
    let id = fanout_id(1);
    join_fanout(&fd, id, libc::PACKET_FANOUT_CPU as u16);
    let insns = attach_ip_filter(&fd);
    let inode = inode_of(&fd);

    let list = packet_sockets(a).expect("packet_sockets in a");
    let s = find(&list, inode).unwrap_or_else(|| panic!("inode {inode} not in {list:#?}"));
    assert_eq!(s.sock_type, SocketType::Raw);
    assert_eq!(s.protocol.to_string(), "all");
    assert_eq!(s.ifindex, ia);
    assert_eq!(s.ifname.as_deref(), Some("pd0"));
    assert_eq!(
        s.version,
        Some(TpacketVersion::V1),
        "no PACKET_VERSION set: V1"
    );
    assert!(s.running);
    assert!(s.rx_ring.is_none() && s.tx_ring.is_none());
    let f = s.fanout.expect("fanout reported");
    assert_eq!((f.id, f.kind), (id, FanoutType::Cpu));
    assert_eq!(f.kind.to_string(), "cpu");
    assert_eq!(
        s.filter,
        FilterState::Classic {
            instructions: insns
        }
    );
    assert_eq!(s.uid, Some(nix::unistd::geteuid().as_raw()));
    assert!(s.memory.is_some_and(|m| m.rcvbuf > 0));

    let me = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let owner = s
        .owners
        .iter()
        .find(|o| o.pid == me)
        .unwrap_or_else(|| panic!("we are not among the owners {:?}", s.owners));
    assert_eq!(owner.comm, comm.trim_end());
    assert_eq!(owner.fds, vec![fd.as_raw_fd() as u32]);

    // Not in the other lab namespace, nor in the test process's own.
    let in_b = packet_sockets(lab.ns("b")).expect("packet_sockets in b");
    assert!(find(&in_b, inode).is_none(), "a's socket seen in b");
    let ours = NetNs::current().unwrap();
    let in_ours = packet_sockets(&ours).expect("packet_sockets in our namespace");
    assert!(
        find(&in_ours, inode).is_none(),
        "a's socket seen in our own namespace"
    );

    // Closed: gone from the dump.
    drop(fd);
    let after = packet_sockets(a).unwrap();
    assert!(find(&after, inode).is_none(), "closed socket still listed");
}

#[test]
fn each_namespace_sees_only_its_own() {
    let mut lab = Lab::new("pdsep");
    lab.netns("a");
    lab.netns("b");
    let (ia, ib) = lab.veth("a", "eth1", "b", "eth1");
    let fa = packet_socket_in(lab.ns("a"));
    bind_to(&fa, ia);
    let fb = packet_socket_in(lab.ns("b"));
    bind_to(&fb, ib);
    // An unbound one in b too: ifindex 0, "any".
    let fb_any = packet_socket_in(lab.ns("b"));
    let (xa, xb, xany) = (inode_of(&fa), inode_of(&fb), inode_of(&fb_any));

    let la = packet_sockets(lab.ns("a")).unwrap();
    let lb = packet_sockets(lab.ns("b")).unwrap();
    assert!(find(&la, xa).is_some() && find(&la, xb).is_none() && find(&la, xany).is_none());
    assert!(find(&lb, xb).is_some() && find(&lb, xany).is_some() && find(&lb, xa).is_none());
    assert_eq!(find(&la, xa).unwrap().ifname.as_deref(), Some("eth1"));
    assert_eq!(find(&lb, xb).unwrap().ifindex, ib);
    let any = find(&lb, xany).unwrap();
    assert_eq!((any.ifindex, any.ifname.as_deref()), (0, None));
    assert!(any.fanout.is_none());
    assert_eq!(any.filter, FilterState::None);
}

/// Kills and reaps a child on drop.
struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tcpdump_shows_with_its_name_and_a_v3_ring() {
    let mut lab = Lab::new("pdtcpd");
    lab.netns("a");
    lab.netns("b");
    let (_ia, ib) = lab.veth("a", "td0", "b", "td1");
    let name_b = lab.ns_name("b");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &name_b,
            "tcpdump",
            "-i",
            "td1",
            "-w",
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ip netns exec tcpdump (is tcpdump installed?)");
    let mut child = KillOnDrop(child);
    let pid = child.0.id();

    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let list = packet_sockets(lab.ns("b")).expect("packet_sockets in b");
        if let Some(s) = list
            .into_iter()
            .find(|s| s.owners.iter().any(|o| o.pid == pid) && s.rx_ring.is_some())
        {
            break s;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("tcpdump exited early: {status}");
        }
        assert!(Instant::now() < deadline, "tcpdump's socket never showed");
        std::thread::sleep(Duration::from_millis(100));
    };
    let owner = found.owners.iter().find(|o| o.pid == pid).unwrap();
    assert_eq!(owner.comm, "tcpdump");
    assert_eq!(owner.to_string(), format!("tcpdump[{pid}]"));
    assert_eq!(found.version, Some(TpacketVersion::V3));
    let ring = found.rx_ring.unwrap();
    assert!(ring.block_nr > 0 && ring.block_size > 0, "{ring:?}");
    assert!(
        ring.retire_tmo > 0,
        "a V3 ring has a block timeout: {ring:?}"
    );
    assert_eq!((found.ifindex, found.ifname.as_deref()), (ib, Some("td1")));
    assert!(found.tx_ring.is_none());
    // Not visible from a.
    let la = packet_sockets(lab.ns("a")).unwrap();
    assert!(find(&la, found.inode).is_none());

    drop(child);
    let lb = packet_sockets(lab.ns("b")).unwrap();
    assert!(
        lb.iter().all(|s| s.owners.iter().all(|o| o.pid != pid)),
        "tcpdump's socket outlived it"
    );
}

#[test]
fn real_kernel_messages_round_trip() {
    use netlink_packet_core::{Emitable, Parseable};
    let mut lab = Lab::new("pdrt");
    lab.netns("a");
    lab.netns("b");
    let (ia, _) = lab.veth("a", "rt0", "b", "rt1");
    let fd = packet_socket_in(lab.ns("a"));
    bind_to(&fd, ia);
    join_fanout(&fd, fanout_id(2), libc::PACKET_FANOUT_HASH as u16);
    attach_ip_filter(&fd);
    let msgs = diag::dump(lab.ns("a"), PACKET_SHOW_ALL).unwrap();
    assert!(!msgs.is_empty());
    for m in msgs {
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf);
        let back = diag::PacketDiagMessage::parse(&buf[..]).unwrap();
        assert_eq!(back, m);
    }
    drop(fd);
}

#[test]
fn kernel_errors_are_reported() {
    let mut lab = Lab::new("pderr");
    let ns = lab.netns("a");
    let req = PacketDiagRequest {
        protocol: 1, // the kernel reserves sdiag_protocol and refuses non-zero
        ..PacketDiagRequest::default()
    };
    match diag::dump_with(&ns, &req) {
        Err(diag::Error::Kernel(e)) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
        other => panic!("expected EINVAL from the kernel, got {other:?}"),
    }
    // An empty namespace has no packet sockets.
    assert!(packet_sockets(&ns).unwrap().is_empty());
}
