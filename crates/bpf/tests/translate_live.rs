//! The translated programs checked as a whole against the kernel's own classic-BPF socket
//! filter, on the same live frames through a real veth pair (root).
//!
//! For every filter, on each end of the pair (a's outgoing frames, b's incoming ones):
//! - a capture ring with the classic filter (what `nsring count --backend ring` runs:
//!   libpcap's program, attached with SO_ATTACH_FILTER, run by the kernel's classic-BPF
//!   path) keeps some frames;
//! - a packet socket with the *translated* program (SO_ATTACH_BPF, socket hook) must keep
//!   exactly the same frames, byte for byte, in the same order;
//! - the in-kernel counter at the TC hook (TCX) must count exactly as many packets and
//!   bytes as the ring got.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use nsring_bpf::{CounterConfig, Counters, Hook, KernelCounter, Program};
use nsring_capture::{Capture, CaptureConfig, Direction, Sender};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;

const SRC: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x01];
const DST: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x02];

fn udp4(len: usize, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport)
        .write(&mut f, &vec![0x5a; len - 42])
        .unwrap();
    f
}

fn udp6(len: usize, dport: u16) -> Vec<u8> {
    let a = [0x20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let z = [0x20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv6(a, z, 64)
        .udp(40000, dport)
        .write(&mut f, &vec![0x6a; len - 62])
        .unwrap();
    f
}

fn vlan_udp4(len: usize, vid: u16, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, dport)
        .write(&mut f, &vec![0x7a; len - 46])
        .unwrap();
    f
}

fn tcp4(len: usize, dport: u16, syn: bool) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .tcp(40000, dport, 7, 1000);
    if syn {
        b = b.syn();
    }
    let mut f = Vec::new();
    b.write(&mut f, &vec![0x3c; len - 54]).unwrap();
    f
}

fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC);
    f.extend_from_slice(&[198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2]);
    f.resize(60, 0);
    f
}

/// The CLI tests' frame set, plus TCP, an IPv4 fragment and IPv4 options.
fn frames() -> Vec<Vec<u8>> {
    let mut frag = udp4(200, 9);
    frag[20] = 0x00;
    frag[21] = 0x20; // not the first fragment
    let mut opts = udp4(100, 9);
    opts[14] = 0x46;
    opts.splice(34..34, [1, 1, 1, 0]);
    let ip_len = (opts.len() - 14) as u16;
    opts[16..18].copy_from_slice(&ip_len.to_be_bytes());
    vec![
        udp4(60, 9),
        udp4(128, 9),
        udp4(1514, 9),
        udp4(1200, 53),
        udp4(400, 10),
        udp6(86, 9),
        udp6(1100, 9),
        arp(),
        arp(),
        vlan_udp4(64, 42, 9),
        vlan_udp4(1200, 42, 53),
        vlan_udp4(100, 7, 9),
        tcp4(80, 80, true),
        tcp4(1400, 9, false),
        frag,
        opts,
    ]
}

const FILTERS: &[&str] = &[
    "udp port 9",
    "vlan",
    "vlan 42 and udp",
    "not arp",
    "greater 1000",
    "tcp[tcpflags] & tcp-syn != 0",
    "ip[6:2] & 0x1fff != 0",
    "ip6 or arp",
    "inbound",
    "outbound",
    "udp[8:4] = 0x5a5a5a5a",
];

/// A packet socket on `iface` of `ns` whose filter is `filter` translated for the socket
/// hook, bound to every protocol (the program is attached before the bind, so nothing
/// unfiltered gets in).
fn ebpf_socket(ns: &NetNs, iface: &str, filter: &str, counters: &Counters) -> (OwnedFd, Program) {
    ns.run(|| {
        let ifindex = nsring_capture::sys::if_nametoindex(iface).unwrap();
        let classic = nsring_capture::filter::compile_for(filter, iface).unwrap();
        let hook = Hook::Socket { snaplen: 65535 };
        let prog = Program::load(filter, &classic, hook, None, counters).unwrap();
        let sock = nsring_capture::sys::packet_socket().unwrap();
        prog.attach_to_socket(sock.as_fd()).unwrap();
        nsring_capture::sys::bind_packet(sock.as_fd(), nsring_capture::sys::ETH_P_ALL, ifindex)
            .unwrap();
        (sock, prog)
    })
    .unwrap()
}

fn drain_socket(sock: &OwnedFd, into: &mut Vec<Vec<u8>>) {
    let mut buf = vec![0u8; 70_000];
    loop {
        match nix::sys::socket::recv(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            &mut buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => into.push(buf[..n].to_vec()),
            Err(_) => return,
        }
    }
}

/// One end of the pair, watched three ways, and an unfiltered ring that says when every
/// frame has passed.
struct End {
    witness: Capture,
    seen: usize,
    ring: Capture,
    ring_frames: Vec<Vec<u8>>,
    ring_bytes: u64,
    sock: OwnedFd,
    _prog: Program,
    sock_frames: Vec<Vec<u8>>,
    counter: KernelCounter,
}

impl End {
    fn new(ns: &NetNs, filter: &str, dir: Direction, counters: &Counters) -> End {
        let geometry = nsring_capture::RingGeometry {
            block_timeout_ms: 5,
            ..nsring_capture::RingGeometry::default()
        };
        let plain = CaptureConfig::new("eth1")
            .direction(dir)
            .ring(geometry)
            .register(false);
        let witness = Capture::open(ns, &plain).unwrap();
        let ring = Capture::open(ns, &plain.clone().filter(filter).snaplen(65535)).unwrap();
        let (sock, prog) = ebpf_socket(ns, "eth1", filter, counters);
        let mut kc = CounterConfig::new("eth1");
        kc.filter = Some(filter.into());
        kc.direction = dir;
        kc.register = false;
        let counter = KernelCounter::open(ns, &kc).unwrap();
        End {
            witness,
            seen: 0,
            ring,
            ring_frames: Vec::new(),
            ring_bytes: 0,
            sock,
            _prog: prog,
            sock_frames: Vec::new(),
            counter,
        }
    }

    /// Reads what arrived: once the witness saw all `sent` frames, until the three views
    /// agree and stay so (or time runs out).
    fn settle(&mut self, sent: usize) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.seen < sent && Instant::now() < deadline {
            if let Some(block) = self
                .witness
                .next_block(Some(Duration::from_millis(20)))
                .unwrap()
            {
                self.seen += block.into_iter().count();
            }
        }
        let mut stable = 0;
        loop {
            while let Some(block) = self
                .ring
                .next_block(Some(Duration::from_millis(20)))
                .unwrap()
            {
                for f in &block {
                    self.ring_frames.push(f.data().to_vec());
                    self.ring_bytes += u64::from(f.wire_len());
                }
            }
            drain_socket(&self.sock, &mut self.sock_frames);
            let kernel = self.counter.read().unwrap().packets;
            let n = self.ring_frames.len() as u64;
            let agree = kernel == n && self.sock_frames.len() as u64 == n;
            stable = if agree { stable + 1 } else { 0 };
            if stable >= 3 || Instant::now() > deadline {
                return kernel;
            }
        }
    }
}

#[test]
fn translated_filters_keep_what_the_kernels_classic_filter_keeps() {
    let mut lab = Lab::new("bpf_live");
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "eth1", "b", "eth1");
    let set = frames();
    let sender = Sender::open(&a, "eth1").unwrap();
    // the rx counts of the CLI tests' filters on their frame set (the first 12 frames)
    let known = [
        ("udp port 9", 7 + 1),
        ("vlan", 3),
        ("vlan 42 and udp", 2),
        ("not arp", 10 + 4),
        ("greater 1000", 4 + 1),
    ];
    for filter in FILTERS {
        let counters = Counters::create(false).unwrap();
        let mut out = End::new(&a, filter, Direction::Out, &counters);
        let mut inn = End::new(&b, filter, Direction::In, &counters);
        for f in &set {
            sender.send(f).unwrap();
        }
        for (end, side) in [(&mut out, "a's egress"), (&mut inn, "b's ingress")] {
            let kernel = end.settle(set.len());
            let what = format!("filter '{filter}' at {side}");
            assert_eq!(
                end.sock_frames, end.ring_frames,
                "{what}: the translated socket filter kept other frames than the classic one"
            );
            let v = end.counter.read().unwrap();
            assert_eq!(kernel, end.ring_frames.len() as u64, "{what}: packets");
            assert_eq!(v.bytes, end.ring_bytes, "{what}: bytes");
            let expected = known.iter().find(|(f, _)| f == filter);
            if let (Some((_, n)), "b's ingress") = (expected, side) {
                assert_eq!(kernel, *n, "{what}: the expected count");
            }
        }
        assert!(
            !out.ring_frames.is_empty() || !inn.ring_frames.is_empty(),
            "filter '{filter}' matched nothing: the frame set does not exercise it"
        );
    }
}

/// Sampling's return path: at a packet socket, the translated program with
/// `sample_every = 3` lets exactly every third accepted frame in, and counts all of them.
#[test]
fn sampling_at_a_packet_socket_keeps_every_nth_accepted_frame() {
    let mut lab = Lab::new("bpf_sample");
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "eth1", "b", "eth1");
    let counters = Counters::create(true).unwrap();
    let every = std::num::NonZeroU32::new(3).unwrap();
    let (sock, _prog) = b
        .run(|| {
            let ifindex = nsring_capture::sys::if_nametoindex("eth1").unwrap();
            let classic = nsring_capture::filter::compile_for("udp", "eth1").unwrap();
            let hook = Hook::Socket { snaplen: 65535 };
            let prog = Program::load("udp", &classic, hook, Some(every), &counters).unwrap();
            let sock = nsring_capture::sys::packet_socket().unwrap();
            prog.attach_to_socket(sock.as_fd()).unwrap();
            let all = nsring_capture::sys::ETH_P_ALL;
            nsring_capture::sys::bind_packet(sock.as_fd(), all, ifindex).unwrap();
            (sock, prog)
        })
        .unwrap();
    // 30 UDP frames (numbered by length) and 30 ARP frames in between
    let sender = Sender::open(&a, "eth1").unwrap();
    for i in 0..30 {
        sender.send(&udp4(100 + i, 9)).unwrap();
        sender.send(&arp()).unwrap();
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while counters.read().unwrap().packets < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drain_socket(&sock, &mut got);
    let v = counters.read().unwrap();
    assert_eq!((v.packets, v.kept), (30, 10), "{v:?}");
    let lens: Vec<usize> = got.iter().map(Vec::len).collect();
    let every_third: Vec<usize> = (0..30).filter(|i| i % 3 == 2).map(|i| 100 + i).collect();
    assert_eq!(lens, every_third, "the 3rd, 6th, ... UDP frames");
    assert_eq!(v.kept_bytes, every_third.iter().sum::<usize>() as u64);
}
